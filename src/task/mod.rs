//! Tasks: one allocation per task (async-task's cell holds header, future and output),
//! per-task scheduling data in its metadata, the wrapper around the user's future,
//! the join handle, groups and the panic slot.
//!
//! This layer names no executor: a task's wrapper reaches the run loop through
//! [`TaskHooks`], and the spawn and wake path that builds tasks lives above the run
//! loop (`crate::schedule`).
//!
//! Who touches what:
//! - The future is polled and dropped only on the executor's thread.
//! - A waker may be used on any thread. On the executor's thread it pushes the task
//!   straight into its queue's scheduler; elsewhere it goes through the executor's
//!   lock-free inbox (`TaskMeta::inbox`).
//! - Every live task has an entry (a waker) in the executor's task registry, so that
//!   shutdown can reach tasks that are parked on I/O and drop their futures.

mod future;
pub(crate) mod group;
mod hooks;
mod join;
pub(crate) mod panic_slot;
pub(crate) mod self_wake;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crate::inbox::Inbox;
pub(crate) use future::TaskFuture;
use group::GroupAccount;
pub(crate) use hooks::{Ending, TaskHooks};
pub use join::JoinHandle;
use panic_slot::PanicSlot;

/// The executor's handle on a ready task.
pub(crate) type Runnable = async_task::Runnable<TaskMeta>;

/// `TaskMeta::books`: the queue's scheduler asks for timing, so `service_ns` is kept.
pub(crate) const BOOK_SERVICE: u8 = 1;
/// `TaskMeta::books`: the task has a group, whose account books each poll.
pub(crate) const BOOK_GROUP: u8 = 2;
/// `TaskMeta::books`: the queue's scheduler counts service per burst, so a wake from
/// outside the task's poll restarts `service_ns` (`LAS::new`).
pub(crate) const BOOK_BURST: u8 = 4;

/// What the executor keeps about a task, inside the task's own allocation.
pub(crate) struct TaskMeta {
    /// Index of the queue the task belongs to (see `queue()`). A `u32` so that it
    /// shares a word with the two flags below: the panic slot then fits in the
    /// metadata without growing the task cell (its size: docs/BENCHMARKS.md, "Memory per
    /// task").
    pub(crate) queue: u32,
    /// The group the task was spawned in, if any: its shared service account.
    pub(crate) group: Option<Arc<GroupAccount>>,
    /// Spawn order in the executor.
    pub(crate) arrival: u64,
    /// The executor's id (see `crate::schedule`), copied here to spare a pointer chase.
    pub(crate) executor_id: u64,
    /// The task's entry in the executor's task registry.
    pub(crate) registry_key: usize,
    /// The executor's cross-thread side: where wakes from other threads and abort
    /// requests go.
    pub(crate) inbox: Arc<Inbox<Runnable>>,
    /// Set by `JoinHandle::abort`: the run loop drops the task instead of polling it.
    pub(crate) aborted: AtomicBool,
    /// When the task last became ready (executor clock, ns), for queue-delay stats.
    /// Atomic only because the metadata must be `Sync`; all accesses are on the
    /// executor thread and use `Relaxed`.
    pub(crate) ready_at_ns: AtomicU64,
    /// What each poll books besides the queue's figures (`BOOK_SERVICE`,
    /// `BOOK_GROUP`): one test after the poll for the common case of neither.
    pub(crate) books: u8,
    /// CPU time polled so far (ns), kept for queues whose scheduler asks for timing.
    /// The group's account (service, polls, queue delay) is kept on every queue.
    pub(crate) service_ns: AtomicU64,
    /// The panic of the future's `Drop` when the task was cancelled, for the handle.
    pub(crate) drop_panic: PanicSlot,
}

impl TaskMeta {
    /// Index of the queue the task belongs to.
    #[inline(always)]
    pub(crate) fn queue(&self) -> usize {
        self.queue as usize
    }

    /// When the task last became ready (see the field).
    pub(crate) fn ready_at_ns(&self) -> u64 {
        self.ready_at_ns.load(Ordering::Relaxed)
    }

    pub(crate) fn service_ns(&self) -> u64 {
        self.service_ns.load(Ordering::Relaxed)
    }

    /// The group's id, if the task has a group.
    pub(crate) fn group_id(&self) -> Option<u64> {
        self.group.as_ref().map(|group| group.id)
    }

    /// Service of the task's group, or of the task itself when it has none.
    pub(crate) fn group_service_ns(&self) -> u64 {
        match &self.group {
            Some(group) => group.service_ns(),
            None => self.service_ns(),
        }
    }

    /// Books a poll of `ran_ns` into the task's service (when its queue's scheduler
    /// asks for timing) and its group's account (when it has a group). Called only
    /// when `books` is not zero.
    #[inline]
    pub(crate) fn book_poll<H: TaskHooks>(&self, hooks: &H, ran_ns: u64) {
        if self.books & BOOK_SERVICE != 0 {
            self.service_ns
                .store(self.service_ns() + ran_ns, Ordering::Relaxed);
        }
        if let Some(group) = &self.group {
            group.record_poll(ran_ns, hooks.queue_delay_ns(self.ready_at_ns()));
        }
    }

    /// Counts the end of the task, in its queue (through `hooks`) and its group.
    #[inline]
    pub(crate) fn ended<H: TaskHooks>(&self, hooks: &H, ending: Ending) {
        hooks.task_ended(self.queue(), ending);
        if let Some(group) = &self.group {
            group.count_ending(ending);
        }
    }
}
