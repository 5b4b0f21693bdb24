//! `ArrivalFifo`: tasks run in the order they were spawned.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use super::{ReadyTask, Scheduler};

/// First in, first out by spawn order, kept across sleeps.
///
/// A task that was spawned earlier always runs before a ready task spawned later, even
/// if it slept in between: old requests are finished before new ones are started.
/// `push` and `pop` are O(log n) (a binary heap keyed by spawn order).
#[derive(Debug, Default)]
pub struct ArrivalFifo {
    ready: BinaryHeap<Reverse<ByArrival>>,
}

impl ArrivalFifo {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
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
