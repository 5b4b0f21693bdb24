//! `ArrivalFifo`: tasks run in the order they were spawned.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use super::{ReadyTask, Scheduler};

/// First in, first out by spawn order, kept across sleeps.
///
/// A task that was spawned earlier always runs before a ready task spawned later, even
/// if it slept in between: old requests are finished before new ones are started.
/// `push` and `pop` are O(log n) (a binary heap keyed by spawn order).
///
/// A task that yields still finishes before a task spawned after it (compare
/// [`RunnableFifo`](super::RunnableFifo)):
///
/// ```rust
/// use clockworker::scheduler::{ArrivalFifo};
/// use clockworker::{yield_now, ExecutorBuilder};
/// use std::{cell::RefCell, rc::Rc};
///
/// let executor = ExecutorBuilder::new()
///     .with_queue_scheduler(0u8, 1, ArrivalFifo::new())
///     .build()
///     .unwrap();
/// let queue = executor.queue(0).unwrap();
/// let done = Rc::new(RefCell::new(Vec::new()));
/// let log = done.clone();
/// let older = queue.spawn(async move {
///     yield_now().await; // ready again, still ahead of `newer`
///     log.borrow_mut().push("older");
/// });
/// let log = done.clone();
/// let newer = queue.spawn(async move { log.borrow_mut().push("newer") });
/// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// runtime.block_on(executor.run_until(async { (older.await, newer.await) }));
/// assert_eq!(*done.borrow(), ["older", "newer"]);
/// ```
#[derive(Debug, Default)]
pub struct ArrivalFifo {
    ready: BinaryHeap<Reverse<ByArrival>>,
}

impl ArrivalFifo {
    /// An empty queue.
    ///
    /// ```rust
    /// use clockworker::scheduler::{ArrivalFifo, Scheduler};
    /// use clockworker::ExecutorBuilder;
    ///
    /// let fifo = ArrivalFifo::new();
    /// assert_eq!(fifo.len(), 0);
    /// let executor = ExecutorBuilder::new().with_queue_scheduler("requests", 1, fifo).build();
    /// assert!(executor.is_ok());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// See `QueueScheduler::release_spare`.
    pub(crate) fn release_spare(&mut self) {
        if let Some(keep) = super::spare_to_keep(self.ready.len(), self.ready.capacity()) {
            self.ready.shrink_to(keep);
        }
    }
}

#[derive(Debug)]
struct ByArrival(ReadyTask);

impl PartialEq for ByArrival {
    fn eq(&self, other: &Self) -> bool {
        self.0.arrival() == other.0.arrival()
    }
}

impl Eq for ByArrival {}

impl PartialOrd for ByArrival {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ByArrival {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.arrival().cmp(&other.0.arrival())
    }
}

impl Scheduler for ArrivalFifo {
    fn push(&mut self, task: ReadyTask) {
        self.ready.push(Reverse(ByArrival(task)));
    }

    fn pop(&mut self) -> Option<ReadyTask> {
        self.ready.pop().map(|Reverse(ByArrival(task))| task)
    }

    fn len(&self) -> usize {
        self.ready.len()
    }
}
