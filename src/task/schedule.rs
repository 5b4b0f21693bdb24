//! The wake path: where a woken task goes.
//!
//! Each thread keeps a small list of the executors that live on it. A wake on that
//! thread finds its executor there and pushes the task straight into its queue's
//! scheduler (no lock, no atomic). Any other wake — from another thread, during
//! thread teardown, or while the executor is busy with its own state — goes through
//! the executor's lock-free inbox, which the run loop drains.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use async_task::ScheduleInfo;

use super::Runnable;
use crate::core::Core;

thread_local! {
    /// The executors created on this thread and not yet dropped (usually one).
    static LOCAL_CORES: RefCell<Vec<Rc<Core>>> = const { RefCell::new(Vec::new()) };

    /// A task that was woken during its own poll (it yielded, or another thread woke
    /// it meanwhile). async-task reschedules such a task from inside `Runnable::run`,
    /// on the executor's thread, so the run loop that just polled it takes it from
    /// here right after `run` returns: no registry lookup on the most common wake.
    static WOKEN_WHILE_RUNNING: Cell<Option<Runnable>> = const { Cell::new(None) };
}

/// Takes the task that woke itself during the poll that just ended, if any.
#[inline]
pub(crate) fn take_woken_while_running() -> Option<Runnable> {
    WOKEN_WHILE_RUNNING.try_with(Cell::take).ok().flatten()
}

/// Makes `core` reachable from wakes on this thread.
pub(crate) fn register_local(core: Rc<Core>) {
    LOCAL_CORES.with(|cores| cores.borrow_mut().push(core));
}

/// Undoes [`register_local`]; a no-op during thread teardown.
pub(crate) fn deregister_local(id: u64) {
    let _ = LOCAL_CORES.try_with(|cores| {
        if let Ok(mut cores) = cores.try_borrow_mut() {
            cores.retain(|core| core.id != id);
        }
    });
}

/// The schedule function of every task: called by async-task when a task is woken
/// (or yields), on whichever thread the wake happened.
///
/// Kept small: the common case (a task woken during its own poll, e.g. a yield) only
/// parks the task in the stash; every other wake goes to [`schedule_elsewhere`], out of
/// line, so this function needs no stack frame of its own.
#[inline]
pub(crate) fn schedule(runnable: Runnable, info: ScheduleInfo) {
    if info.woken_while_running {
        let mut slot = Some(runnable);
        // The stash is empty (the loop takes it after every poll); should it not be,
        // the previous occupant takes the ordinary path. During thread teardown the
        // stash is gone and the task itself does.
        let _ = WOKEN_WHILE_RUNNING.try_with(|stash| slot = stash.replace(slot.take()));
        if let Some(other) = slot {
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
    let executor_id = slot.as_ref().map_or(0, |r| r.metadata().executor_id);
    let _ = LOCAL_CORES.try_with(|cores| {
        let Ok(cores) = cores.try_borrow() else {
            return;
        };
        if let Some(core) = cores.iter().find(|core| core.id == executor_id) {
            core.try_push_local(&mut slot);
        }
    });
    if let Some(runnable) = slot {
        // The slow path (another thread, or the executor busy with its own state)
        // already pays for atomics; one more reference count is fine here.
        let remote = runnable.metadata().remote.clone();
        remote.push(runnable);
    }
}
