//! The task's waker: a pointer to its header and [`WakerFns`]' vtable.
//!
//! A wake on the executor's thread sets the task's scheduling state with plain loads
//! and stores and queues it through [`Schedule`]; a wake anywhere else sends a
//! reference through the executor's inbox (module docs of `task::cell`).

use std::marker::PhantomData;
use std::ptr::NonNull;
use std::task::{RawWaker, RawWakerVTable};

use super::{
    Header, Runnable, Schedule, TaskRef, FINISHED, REF, RUNNING, SCHEDULED, WOKEN_ELSEWHERE,
};
use crate::sync::Ordering;
use crate::task::FUTURE_GONE;
use crate::thread_id;

/// The waker functions of tasks scheduled by `S`.
pub(super) struct WakerFns<S>(PhantomData<S>);

impl<S: Schedule> WakerFns<S> {
    pub(super) const VTABLE: RawWakerVTable =
        RawWakerVTable::new(Self::clone, Self::wake, Self::wake_by_ref, Self::drop);

    /// # Safety (all four)
    /// `data` is a task header, and the waker owns a reference (`clone`, `wake`,
    /// `drop`) or borrows one (`wake_by_ref`, and `clone` of a lent waker).
    unsafe fn clone(data: *const ()) -> RawWaker {
        // SAFETY: see above.
        unsafe { header(data).as_ref() }.add_ref();
        RawWaker::new(data, &Self::VTABLE)
    }

    unsafe fn wake(data: *const ()) {
        // SAFETY: see `clone`; the reference is released after the wake.
        unsafe {
            wake::<S>(header(data));
            Header::release(header(data));
        }
    }

    unsafe fn wake_by_ref(data: *const ()) {
        // SAFETY: see `clone`.
        unsafe { wake::<S>(header(data)) }
    }

    unsafe fn drop(data: *const ()) {
        // SAFETY: see `clone`.
        unsafe { Header::release(header(data)) }
    }
}

#[inline(always)]
fn header(data: *const ()) -> NonNull<Header> {
    // SAFETY: a task waker's data pointer is its header, never null.
    unsafe { NonNull::new_unchecked(data.cast_mut().cast()) }
}

/// Wakes the task, from any thread.
///
/// The common wake, a task's own during its poll (a yield), only sets a bit: the
/// queueing of an idle task and the wake from another thread are out of line, so this
/// path saves no registers (~15 instructions per wake less; callgrind).
///
/// # Safety
/// The caller holds a reference to the task for the whole call.
#[inline(always)]
unsafe fn wake<S: Schedule>(header: NonNull<Header>) {
    // SAFETY: the caller's reference keeps the cell alive.
    let this = unsafe { header.as_ref() };
    if this.meta().inbox.owner_thread() == thread_id::current() {
        // SAFETY: on the executor's thread, with the cell alive.
        if let Some(runnable) = unsafe { schedule_here(header) } {
            queue::<S>(runnable);
        }
    } else {
        // SAFETY: the caller keeps the cell alive.
        unsafe { wake_elsewhere(header) };
    }
}

/// Executor thread: queues a task that was idle, or sends it through the inbox when the
/// executor cannot take it now.
#[inline(never)]
fn queue<S: Schedule>(runnable: Runnable) {
    if let Err(runnable) = S::schedule(runnable) {
        runnable.defer();
    }
}

/// Executor thread: marks the task scheduled. Returns its `Runnable` when the caller
/// must queue it; `None` when it is queued already, finished, or being polled (then
/// `Runnable::run` hands it back after the poll).
///
/// # Safety
/// Executor thread (the scheduling state is unsynchronised); the cell is alive.
#[inline(always)]
pub(super) unsafe fn schedule_here(header: NonNull<Header>) -> Option<Runnable> {
    // SAFETY: the caller keeps the cell alive.
    let meta = unsafe { header.as_ref() }.meta();
    let flags = meta.flags.load(Ordering::Relaxed);
    if flags & (SCHEDULED | FUTURE_GONE) != 0 {
        return None;
    }
    meta.flags.store(flags | SCHEDULED, Ordering::Relaxed);
    if flags & RUNNING != 0 {
        return None;
    }
    // SAFETY: the future is there (no `FUTURE_GONE`) and `SCHEDULED` was clear, so no
    // other `Runnable` of the task exists.
    Some(unsafe { Runnable::from_header(header) })
}

/// A wake on another thread: hands the executor a reference to the task, unless the
/// task is already gone or such a reference is already on its way (the run loop
/// clears `WOKEN_ELSEWHERE` before it schedules the task, so a wake after that sends
/// a new one).
///
/// # Safety
/// The caller holds a reference to the task for the whole call.
#[cold]
#[inline(never)]
unsafe fn wake_elsewhere(header: NonNull<Header>) {
    // SAFETY: the caller keeps the cell alive.
    let this = unsafe { header.as_ref() };
    let mut seen = this.state.load(Ordering::Relaxed);
    loop {
        if seen & (FINISHED | WOKEN_ELSEWHERE) != 0 {
            return;
        }
        // Release: what this thread did before the wake is seen by the poll it causes
        // (the run loop's acquire on the same word, `TaskRef::schedule_here`).
        match this.state.compare_exchange_weak(
            seen,
            (seen | WOKEN_ELSEWHERE) + REF,
            Ordering::AcqRel,
            Ordering::Relaxed,
        ) {
            Ok(_) => break,
            Err(now) => seen = now,
        }
    }
    // SAFETY: the reference just taken goes to the `TaskRef`.
    let task = unsafe { TaskRef::from_header(header) };
    this.meta().inbox.push(task);
}
