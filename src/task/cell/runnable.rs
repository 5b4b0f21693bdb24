//! [`Runnable`], the executor's handle on a scheduled task, and [`TaskRef`], a
//! reference to a task woken on another thread, on its way through the inbox.

use std::marker::PhantomData;
use std::mem;
use std::ptr::NonNull;
use std::task::{RawWaker, Waker};

use super::waker::schedule_here;
use super::{Header, RUNNING, SCHEDULED, WOKEN_ELSEWHERE};
use crate::sync::Ordering;
use crate::task::TaskMeta;

/// A scheduled task: the right to poll it once. Exists only on the executor's thread
/// (`!Send`), at most one per task, while its future exists (`SCHEDULED` is set).
///
/// Dropping it instead of running it cancels the task: its future is dropped here and
/// its handle resolves `Cancelled`.
pub(crate) struct Runnable {
    header: NonNull<Header>,
    /// `!Send` and `!Sync`: the scheduling state it touches is the executor thread's.
    local: PhantomData<*mut ()>,
}

impl Runnable {
    /// # Safety
    /// Executor thread; the task's future exists, `SCHEDULED` is set, and no other
    /// `Runnable` of the task exists.
    #[inline(always)]
    pub(super) unsafe fn from_header(header: NonNull<Header>) -> Self {
        Runnable {
            header,
            local: PhantomData,
        }
    }

    #[inline(always)]
    fn header(&self) -> &Header {
        // SAFETY: the future's reference keeps the cell alive while a `Runnable`
        // exists.
        unsafe { self.header.as_ref() }
    }

    /// The task's metadata.
    #[inline(always)]
    pub(crate) fn metadata(&self) -> &TaskMeta {
        self.header().meta()
    }

    /// The task's address for the executor's registry (see [`LiveTask`]).
    #[inline(always)]
    pub(crate) fn live(&self) -> LiveTask {
        LiveTask(self.header)
    }

    /// A new waker of the task (the loom models hand one to another thread).
    #[cfg(all(test, loom))]
    pub(crate) fn waker(&self) -> Waker {
        let header = self.header();
        header.add_ref();
        let raw = RawWaker::new(
            self.header.as_ptr().cast_const().cast(),
            header.vtable.waker,
        );
        // SAFETY: the reference just taken goes to the waker; the vtable is the
        // task's own.
        unsafe { Waker::from_raw(raw) }
    }

    /// Polls the task once. Returns the task again when it was woken during the poll
    /// (it yielded, say): the caller queues it. `None` when it finished or waits for a
    /// wake.
    ///
    /// Should the poll unwind (a task panic the executor lets through), the task ends
    /// on the way out: its handle resolves `Cancelled`.
    #[inline]
    pub(crate) fn run(self) -> Option<Runnable> {
        let header = self.header;
        mem::forget(self);
        // SAFETY: the future's reference keeps the cell alive during the poll.
        let this = unsafe { header.as_ref() };
        let flags = &this.meta().flags;
        let before = flags.load(Ordering::Relaxed);
        flags.store((before & !SCHEDULED) | RUNNING, Ordering::Relaxed);
        let unwinding = EndOnUnwind(header);
        // SAFETY: executor thread, future in the slot: a `Runnable` existed.
        let finished = unsafe { (this.vtable.poll)(header) };
        mem::forget(unwinding);
        if finished {
            // SAFETY: executor thread; the poll dropped the future and stored the
            // output; nothing below touches the cell.
            unsafe { Header::finish(header, true) };
            return None;
        }
        let after = flags.load(Ordering::Relaxed);
        flags.store(after & !RUNNING, Ordering::Relaxed);
        if after & SCHEDULED != 0 {
            // SAFETY: woken during the poll: `SCHEDULED` stands for this `Runnable`.
            return Some(unsafe { Runnable::from_header(header) });
        }
        None
    }

    /// Sends the task through the executor's inbox instead of queueing it now (the
    /// executor cannot take it at the moment): the run loop schedules it again from
    /// there.
    pub(crate) fn defer(self) {
        let header = self.header;
        mem::forget(self);
        // SAFETY: as in `header()`.
        let this = unsafe { header.as_ref() };
        let flags = &this.meta().flags;
        flags.store(
            flags.load(Ordering::Relaxed) & !SCHEDULED,
            Ordering::Relaxed,
        );
        this.add_ref();
        // SAFETY: the reference just taken goes to the `TaskRef`.
        let task = unsafe { TaskRef::from_header(header) };
        this.meta().inbox.push(task);
    }
}

impl Drop for Runnable {
    /// Cancels the task: drops its future here, on the executor's thread.
    fn drop(&mut self) {
        // SAFETY: a `Runnable` means the future is in the slot, on this thread; the
        // `Runnable` is not used again.
        unsafe { Header::cancel(self.header) }
    }
}

/// Ends the task when its poll unwinds out of `Runnable::run`.
struct EndOnUnwind(NonNull<Header>);

impl Drop for EndOnUnwind {
    #[cold]
    fn drop(&mut self) {
        // SAFETY: the poll unwound: the future is still in the slot (dropped only by a
        // poll that returned `Ready`), on this thread, and nothing uses the cell after.
        unsafe { Header::cancel(self.0) }
    }
}

/// A task's address while its future exists, without a reference of its own: the
/// executor's registry keeps one per live task, and removes it when the future goes
/// (`TaskHooks::forget_task`, before the cell lets go of the future's reference), so an
/// entry found there always points at a live cell.
#[derive(Clone, Copy)]
pub(crate) struct LiveTask(NonNull<Header>);

impl LiveTask {
    /// Wakes the task, as its waker would.
    ///
    /// # Safety
    /// The task's future still exists (its registry entry is still there).
    pub(crate) unsafe fn wake(self) {
        // SAFETY: the future's reference keeps the cell alive.
        let vtable = unsafe { self.0.as_ref() }.vtable.waker;
        let raw = RawWaker::new(self.0.as_ptr().cast_const().cast(), vtable);
        // SAFETY: the waker borrows the future's reference and is never dropped
        // (`ManuallyDrop`), so it releases nothing.
        let waker = mem::ManuallyDrop::new(unsafe { Waker::from_raw(raw) });
        waker.wake_by_ref();
    }
}

/// A reference to a task, sent through the executor's inbox by a wake on another
/// thread (or deferred by the executor's own thread). The run loop turns it into a
/// `Runnable` with [`TaskRef::schedule_here`]; dropping it anywhere only releases the
/// reference.
pub(crate) struct TaskRef {
    header: NonNull<Header>,
}

// SAFETY: a `TaskRef` touches only the shared state word (its reference) on whatever
// thread holds it; `schedule_here`, which touches the scheduling state, is for the
// executor's thread. Freeing the cell from any thread is sound (module docs).
unsafe impl Send for TaskRef {}
// SAFETY: `&TaskRef` allows nothing.
unsafe impl Sync for TaskRef {}

impl TaskRef {
    /// # Safety
    /// The caller hands over one reference it owns.
    #[inline(always)]
    pub(super) unsafe fn from_header(header: NonNull<Header>) -> Self {
        TaskRef { header }
    }

    /// Executor thread: the task's wake arrives. Returns its `Runnable` when the caller
    /// must queue it (see `waker::schedule_here`).
    pub(crate) fn schedule_here(self) -> Option<Runnable> {
        debug_assert_eq!(
            // SAFETY: our reference keeps the cell alive.
            unsafe { self.header.as_ref() }.meta().inbox.owner_thread(),
            crate::thread_id::current(),
            "a task's wake is taken on its executor's thread"
        );
        // SAFETY: our reference keeps the cell alive.
        let this = unsafe { self.header.as_ref() };
        // A wake from elsewhere after this point sends a new reference.
        this.state.fetch_and(!WOKEN_ELSEWHERE, Ordering::AcqRel);
        // SAFETY: executor thread (the inbox is drained only there), cell alive.
        unsafe { schedule_here(self.header) }
        // `self` drops its reference here; a returned `Runnable` lives on under the
        // future's.
    }
}

impl Drop for TaskRef {
    fn drop(&mut self) {
        // SAFETY: the reference this `TaskRef` owns, not used again.
        unsafe { Header::release(self.header) }
    }
}
