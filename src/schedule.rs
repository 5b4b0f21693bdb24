//! The spawn and wake path: how a task enters its queue, and how it comes back to it
//! when woken.
//!
//! - **Spawn** ([`spawn`]) builds the task (one async-task allocation holding its
//!   metadata, its wrapped future and its output) and has the core admit it.
//! - **Wake** ([`schedule`], async-task's schedule function of every task): a task
//!   woken during its own poll goes to the self-wake stash (`task::self_wake`), which
//!   the run loop empties after the poll. Any other wake on the executor's thread
//!   finds the executor in this thread's list of executors and pushes the task
//!   straight into its queue's scheduler (no lock, no atomic). A wake from another
//!   thread, during thread teardown, or while the executor is busy with its own state
//!   goes through the executor's lock-free inbox, which the run loop drains.

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8};
use std::sync::Arc;

use async_task::{Builder, ScheduleInfo, WithInfo};

use crate::core::Core;
use crate::task::group::GroupAccount;
use crate::task::panic_slot::PanicSlot;
use crate::task::{self_wake, JoinHandle, Runnable, TaskFuture, TaskMeta, BOOK_GROUP};

thread_local! {
    /// The executors created on this thread and not yet dropped (usually one).
    static LOCAL_CORES: RefCell<Vec<Rc<Core>>> = const { RefCell::new(Vec::new()) };
}

/// Makes `core` reachable from wakes on this thread.
pub(crate) fn register_local(core: Rc<Core>) {
    LOCAL_CORES.with(|cores| cores.borrow_mut().push(core));
}

/// Undoes [`register_local`]; a no-op during thread teardown.
pub(crate) fn deregister_local(id: u64) {
    let _ = LOCAL_CORES.try_with(|cores| {
        if let Ok(mut cores) = cores.try_borrow_mut() {
            cores.retain(|core| core.id() != id);
        }
    });
}

/// Runs `f` on the executor `executor_id` of this thread; `None` when there is none
/// (another thread, or the executor is gone).
pub(crate) fn with_local_core<R>(executor_id: u64, f: impl FnOnce(&Rc<Core>) -> R) -> Option<R> {
    let core = LOCAL_CORES
        .try_with(|cores| {
            let cores = cores.try_borrow().ok()?;
            cores.iter().find(|core| core.id() == executor_id).cloned()
        })
        .ok()
        .flatten()?;
    Some(f(&core))
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
    F: Future + 'static,
    F::Output: 'static,
{
    if core.is_shut_down() {
        drop(future);
        return JoinHandle::cancelled();
    }
    let mut books = core.books(queue);
    if let Some(group) = &group {
        group.count_spawned();
        books |= BOOK_GROUP;
    }
    let task = core.admit(queue, |registry_key| {
        let meta = TaskMeta {
            // Lossless: the builder refuses more than `MAX_QUEUES` queues.
            queue: queue as u16,
            aborted: AtomicBool::new(false),
            flags: AtomicU8::new(books),
            registry_key,
            group,
            arrival: core.next_arrival(),
            inbox: core.inbox().clone(),
            ready_at_ns: AtomicU64::new(core.now_ns()),
            service_ns: AtomicU64::new(0),
            drop_panic: PanicSlot::new(),
        };
        let hooks = core.clone();
        // SAFETY: `spawn_unchecked` lets the future be `!Send` and borrow the metadata.
        // - The future borrows only the metadata, which async-task keeps alive for as
        //   long as the future exists (both live in the task's allocation).
        // - The future is `!Send`, so its `Runnable` must be run and dropped on this
        //   thread. Runnables only ever leave this thread by being pushed into the
        //   inbox (`Inbox::push`), which only this executor's thread pops;
        //   `Core::cancel_all` (run by shutdown and by `Executor::drop`) keeps draining
        //   until every task's future is gone, including tasks whose wake is in flight
        //   on another thread, so no Runnable outlives the executor and none is dropped
        //   elsewhere.
        // - The schedule function is `Send + Sync + 'static`.
        // - Spawning happens only through `Rc<Core>` (this thread) and never after
        //   shutdown, so no task appears after `cancel_all` ran for the last time.
        unsafe {
            Builder::new().metadata(meta).spawn_unchecked(
                move |meta| TaskFuture::new(future, meta, hooks),
                WithInfo(schedule),
            )
        }
    });
    JoinHandle::new(task)
}

/// The schedule function of every task: called by async-task when a task is woken
/// (or yields), on whichever thread the wake happened.
///
/// Kept small: the common case (a task woken during its own poll, e.g. a yield) only
/// parks the task in the stash; every other wake goes to [`schedule_elsewhere`], out of
/// line, so this function needs no stack frame of its own.
#[inline]
fn schedule(runnable: Runnable, info: ScheduleInfo) {
    if info.woken_while_running {
        if let Some(other) = self_wake::stash(runnable) {
            schedule_elsewhere(other);
        }
        return;
    }
    schedule_elsewhere(runnable);
}

/// Any wake but the common one: on this thread through the executor's queues, from
/// elsewhere (or while the executor is busy with its own state) through the inbox.
#[inline(never)]
fn schedule_elsewhere(runnable: Runnable) {
    let mut slot = Some(runnable);
    let executor_id = slot.as_ref().map_or(0, |r| r.metadata().executor_id());
    let _ = LOCAL_CORES.try_with(|cores| {
        let Ok(cores) = cores.try_borrow() else {
            return;
        };
        if let Some(core) = cores.iter().find(|core| core.id() == executor_id) {
            core.try_push_local(&mut slot);
        }
    });
    if let Some(runnable) = slot {
        // The slow path (another thread, or the executor busy with its own state)
        // already pays for atomics; one more reference count is fine here.
        let inbox = runnable.metadata().inbox.clone();
        inbox.push(runnable);
    }
}
