//! Tasks: one allocation per task (async-task's cell holds header, future and output),
//! per-task scheduling data in its metadata, the join handle, and the wake path.
//!
//! Who touches what:
//! - The future is polled and dropped only on the executor's thread (async-task's
//!   `spawn_local` checks this).
//! - A waker may be used on any thread. On the executor's thread it pushes the task
//!   straight into its queue's scheduler (`schedule::schedule`); elsewhere it goes
//!   through the executor's lock-free inbox (`crate::remote`).
//! - Every live task has an entry (a waker) in the executor's task registry, so that
//!   shutdown can reach tasks that are parked on I/O and drop their futures.

mod future;
pub(crate) mod group;
mod join;
pub(crate) mod panic_slot;
pub(crate) mod schedule;

use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use async_task::{Builder, WithInfo};

use crate::core::Core;
use crate::remote::Remote;
use future::TaskFuture;
use group::GroupAccount;
pub use join::JoinHandle;
use panic_slot::PanicSlot;

/// The executor's handle on a ready task.
pub(crate) type Runnable = async_task::Runnable<TaskMeta>;

/// What the executor keeps about a task, inside the task's own allocation.
pub(crate) struct TaskMeta {
    /// Index of the queue the task belongs to (see `queue()`). A `u32` so that it
    /// shares a word with the two flags below: the panic slot then fits in the
    /// metadata without growing the task cell (136 bytes, 144 with glibc's header).
    pub(crate) queue: u32,
    /// The group the task was spawned in, if any: its shared service account.
    pub(crate) group: Option<Arc<GroupAccount>>,
    /// Spawn order in the executor.
    pub(crate) arrival: u64,
    /// The executor's id (see `schedule`), copied here to spare a pointer chase.
    pub(crate) executor_id: u64,
    /// The task's entry in the executor's task registry.
    pub(crate) registry_key: usize,
    /// The executor's cross-thread side: where wakes from other threads and abort
    /// requests go.
    pub(crate) remote: Arc<Remote>,
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

/// Spawns `future` onto queue `queue` of `core`. Never fails: on a shut-down executor
/// the future is dropped at once and the handle resolves `Cancelled`.
pub(crate) fn spawn<F>(
    core: &Rc<Core>,
    queue: usize,
    group: Option<Arc<GroupAccount>>,
    future: F,
) -> JoinHandle<F::Output>
where
    F: std::future::Future + 'static,
    F::Output: 'static,
{
    if core.is_shut_down() {
        drop(future);
        return JoinHandle::cancelled();
    }
    let mut registry = core.tasks.borrow_mut();
    let entry = registry.vacant_entry();
    let registry_key = entry.key();
    let meta = TaskMeta {
        // Lossless: `Executor::new` refuses more than `u32::MAX` queues.
        queue: queue as u32,
        group,
        arrival: core.next_arrival(),
        registry_key,
        executor_id: core.id,
        remote: core.remote.clone(),
        aborted: AtomicBool::new(false),
        ready_at_ns: AtomicU64::new(core.now_ns()),
        timed: core.timed[queue],
        service_ns: AtomicU64::new(0),
        drop_panic: PanicSlot::new(),
    };
    let task_core = core.clone();
    let schedule = WithInfo(schedule::schedule);
    // SAFETY: `spawn_unchecked` lets the future be `!Send` and borrow the metadata.
    // - The future borrows only the metadata, which async-task keeps alive for as long
    //   as the future exists (both live in the task's allocation).
    // - The future is `!Send`, so its `Runnable` must be run and dropped on this
    //   thread. Runnables only ever leave this thread by being pushed into the inbox
    //   (`Remote::push`), which only this executor's thread pops; `Core::cancel_all`
    //   (run by shutdown and by `Executor::drop`) keeps draining until every task's
    //   future is gone, including tasks whose wake is in flight on another thread, so
    //   no Runnable outlives the executor and none is dropped elsewhere.
    // - The schedule function is `Send + Sync + 'static`.
    // - Spawning happens only through `Rc<Core>` (this thread) and never after
    //   shutdown, so no task appears after `cancel_all` ran for the last time.
    let (runnable, task) = unsafe {
        Builder::new().metadata(meta).spawn_unchecked(
            move |meta| TaskFuture::new(future, meta, task_core),
            schedule,
        )
    };
    entry.insert(runnable.waker());
    drop(registry);
    core.counters[queue]
        .spawned
        .set(core.counters[queue].spawned.get() + 1);
    core.push_ready(runnable);
    JoinHandle::new(task)
}
