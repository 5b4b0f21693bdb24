//! Tasks: one allocation per task (async-task's cell holds header, future and output),
//! per-task scheduling data in its metadata, the wrapper around the user's future,
//! the join handle, groups and the panic slot.
//!
//! This layer names no executor: a task's wrapper reaches the run loop through
//! [`TaskHooks`], and the spawn and wake path that builds tasks lives above the run
//! loop (`crate::spawn`).
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
    /// The executor's id (see `crate::spawn`), copied here to spare a pointer chase.
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
    /// Whether the queue's scheduler asks for timing: only then is `service_ns` (and
    /// the group's account) charged after each poll.
    pub(crate) timed: bool,
    /// CPU time polled so far (ns), kept for queues whose scheduler asks for timing.
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

    /// Adds a poll's duration to the task and its group (executor thread only).
    #[inline]
    pub(crate) fn charge(&self, ns: u64) {
        self.service_ns
            .store(self.service_ns() + ns, Ordering::Relaxed);
        if let Some(group) = &self.group {
            group.charge(ns);
        }
    }
}
