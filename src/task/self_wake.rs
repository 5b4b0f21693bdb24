//! The stash for a task woken during its own poll (it yielded, or another thread woke
//! it meanwhile): the most common wake.
//!
//! async-task reschedules such a task from inside `Runnable::run`, on the executor's
//! thread, so the schedule function parks it here and the run loop, which just polled
//! it, takes it back right after `run` returns: no executor lookup, no queue push
//! inside the poll.
//!
//! The stash holds the task as a raw pointer (`Runnable::into_raw`), not as a
//! `Runnable`: a thread-local without drop glue needs no destructor, so every access is
//! a plain load or store at a fixed offset, with no lazy-registration state to check
//! (~10 instructions per yield less; callgrind, docs/OVERHEAD_ANALYSIS.md). Nothing is
//! left in it to leak: the loop that called `run` empties it right after (or, for a
//! task panic that leaves `run`, just before), and nothing else stashes.

use std::cell::Cell;
use std::ptr::NonNull;

use super::Runnable;

thread_local! {
    static WOKEN_WHILE_RUNNING: Cell<Option<NonNull<()>>> = const { Cell::new(None) };
}

/// Parks `runnable` in the stash. Returns the task the caller must schedule the
/// ordinary way instead: a previous occupant (the loop empties the stash after every
/// poll, so there is none in practice).
#[inline]
pub(crate) fn stash(runnable: Runnable) -> Option<Runnable> {
    let previous = WOKEN_WHILE_RUNNING.with(|stash| stash.replace(Some(runnable.into_raw())));
    // SAFETY: every pointer in the stash came from `Runnable::into_raw` of a `Runnable`
    // of this crate's metadata type, on this thread, and leaves it exactly once (here
    // or in `take`), so it is turned back into its `Runnable` once.
    previous.map(|raw| unsafe { Runnable::from_raw(raw) })
}

/// Takes the task that woke itself during the poll that just ended, if any.
#[inline]
pub(crate) fn take() -> Option<Runnable> {
    let raw = WOKEN_WHILE_RUNNING.with(Cell::take)?;
    // SAFETY: as in `stash`: the pointer came from `Runnable::into_raw` and leaves the
    // stash only here or in `stash`, so it becomes a `Runnable` exactly once.
    Some(unsafe { Runnable::from_raw(raw) })
}
