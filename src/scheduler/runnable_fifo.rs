//! `RunnableFifo`: tasks run in the order they became ready.

use std::collections::VecDeque;

use super::{ReadyTask, Scheduler};

/// First in, first out by the moment a task became ready (spawned, woken or yielded).
///
/// The default policy of every queue. A task that yields goes to the back, behind every
/// task that became ready before it. `push` and `pop` are O(1).
///
/// A task that yields lets a task spawned after it finish first (compare
/// [`ArrivalFifo`](super::ArrivalFifo)):
///
/// ```rust
/// use clockworker::scheduler::{RunnableFifo};
/// use clockworker::{yield_now, ExecutorBuilder};
/// use std::{cell::RefCell, rc::Rc};
///
/// let executor = ExecutorBuilder::new()
///     .with_queue_scheduler(0u8, 1, RunnableFifo::new())
///     .build()
///     .unwrap();
/// let queue = executor.queue(0).unwrap();
/// let done = Rc::new(RefCell::new(Vec::new()));
/// let log = done.clone();
/// let older = queue.spawn(async move {
///     yield_now().await; // back of the queue, behind `newer`
///     log.borrow_mut().push("older");
/// });
/// let log = done.clone();
/// let newer = queue.spawn(async move { log.borrow_mut().push("newer") });
/// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// runtime.block_on(executor.run_until(async { (older.await, newer.await) }));
/// assert_eq!(*done.borrow(), ["newer", "older"]);
/// ```
#[derive(Debug, Default)]
pub struct RunnableFifo {
    ready: VecDeque<ReadyTask>,
}

impl RunnableFifo {
    /// An empty FIFO. [`ExecutorBuilder::with_queue`](crate::ExecutorBuilder::with_queue)
    /// uses one; naming it is the same.
    ///
    /// ```rust
    /// use clockworker::scheduler::{RunnableFifo, Scheduler};
    /// use clockworker::ExecutorBuilder;
    ///
    /// let fifo = RunnableFifo::new();
    /// assert!(fifo.is_empty());
    /// let executor = ExecutorBuilder::new().with_queue_scheduler(0u8, 1, fifo).build();
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

impl Scheduler for RunnableFifo {
    #[inline]
    fn push(&mut self, task: ReadyTask) {
        self.ready.push_back(task);
    }

    #[inline]
    fn pop(&mut self) -> Option<ReadyTask> {
        self.ready.pop_front()
    }

    #[inline]
    fn len(&self) -> usize {
        self.ready.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::test_support::ready_task;
    use crate::scheduler::SPARE_SLOTS_KEPT;

    /// After a burst, an emptied queue gives back all but `SPARE_SLOTS_KEPT` slots;
    /// a queue that still holds most of its burst keeps its memory.
    #[test]
    fn an_emptied_queue_gives_back_its_burst_capacity() {
        let mut fifo = RunnableFifo::new();
        // 5,000 tasks: a capacity of 8,192, over four times what a nearly empty queue
        // keeps (small enough for Miri, which runs this test too).
        for arrival in 0..5_000 {
            fifo.push(ready_task(arrival, None, 0));
        }
        let full = fifo.ready.capacity();
        fifo.release_spare();
        assert_eq!(fifo.ready.capacity(), full, "a full queue keeps its slots");
        while fifo.len() > 10 {
            drop(fifo.pop());
        }
        fifo.release_spare();
        assert!(fifo.ready.capacity() >= 10);
        assert!(
            fifo.ready.capacity() < 2 * SPARE_SLOTS_KEPT,
            "kept {} slots for 10 tasks",
            fifo.ready.capacity()
        );
        let order: Vec<u64> = std::iter::from_fn(|| fifo.pop().map(|t| t.arrival())).collect();
        assert_eq!(
            order,
            (4_990..5_000).collect::<Vec<_>>(),
            "tasks kept, in order"
        );
    }
}
