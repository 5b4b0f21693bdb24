//! `RunnableFifo`: tasks run in the order they became ready.

use std::collections::VecDeque;

use super::{ReadyTask, Scheduler};

/// First in, first out by the moment a task became ready (spawned, woken or yielded).
///
/// The default policy of every queue. A task that yields goes to the back, behind every
/// task that became ready before it. `push` and `pop` are O(1).
#[derive(Debug, Default)]
pub struct RunnableFifo {
    ready: VecDeque<ReadyTask>,
}

impl RunnableFifo {
    /// An empty FIFO.
    pub fn new() -> Self {
        Self::default()
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
