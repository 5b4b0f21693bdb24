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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::test_support::ready_task;

    /// Pops by spawn order whatever the order of pushes, and keeps count.
    #[test]
    fn pops_by_arrival() {
        let mut fifo = ArrivalFifo::new();
        for arrival in [5, 1, 9, 3, 7, 0] {
            fifo.push(ready_task(arrival, None, 0));
        }
        assert_eq!(fifo.len(), 6);
        let order: Vec<u64> = std::iter::from_fn(|| fifo.pop())
            .map(|t| t.arrival())
            .collect();
        assert_eq!(order, [0, 1, 3, 5, 7, 9]);
        assert_eq!(fifo.len(), 0);
    }

    /// The heap's key agrees with itself: equal exactly when the spawn orders are.
    #[test]
    fn by_arrival_equality_and_order_agree() {
        let (a, b) = (
            ByArrival(ready_task(1, None, 0)),
            ByArrival(ready_task(2, None, 0)),
        );
        let a_again = ByArrival(ready_task(1, None, 0));
        assert!(a == a_again && a != b);
        assert_eq!(a.partial_cmp(&b), Some(Ordering::Less));
        assert_eq!(b.partial_cmp(&a), Some(Ordering::Greater));
        assert_eq!(a.partial_cmp(&a_again), Some(Ordering::Equal));
    }
}
