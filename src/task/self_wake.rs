//! The stash for a task woken during its own poll (it yielded, or another thread woke
//! it meanwhile): the most common wake.
//!
//! async-task reschedules such a task from inside `Runnable::run`, on the executor's
//! thread, so the schedule function parks it here and the run loop, which just polled
//! it, takes it back right after `run` returns: no executor lookup, no queue push
//! inside the poll.

use std::cell::Cell;

use super::Runnable;

thread_local! {
    static WOKEN_WHILE_RUNNING: Cell<Option<Runnable>> = const { Cell::new(None) };
}

/// Parks `runnable` in the stash. Returns the task the caller must schedule the
/// ordinary way instead: a previous occupant (the loop empties the stash after every
/// poll, so there is none in practice), or `runnable` itself during thread teardown.
#[inline]
pub(crate) fn stash(runnable: Runnable) -> Option<Runnable> {
    let mut slot = Some(runnable);
    let _ = WOKEN_WHILE_RUNNING.try_with(|stash| slot = stash.replace(slot.take()));
    slot
}

/// Takes the task that woke itself during the poll that just ended, if any.
#[inline]
pub(crate) fn take() -> Option<Runnable> {
    WOKEN_WHILE_RUNNING.try_with(Cell::take).ok().flatten()
}
