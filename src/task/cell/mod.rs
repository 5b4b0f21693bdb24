//! The task cell: one allocation per task, holding a header (the shared state word,
//! the join handle's waker, the vtable, [`TaskMeta`]) and a slot that holds the
//! wrapped future until it finishes, then its output until the handle takes it.
//!
//! Our own rather than async-task's because of where async-task spends its time on
//! our hot path: three locked compare-exchanges per poll and one per wake, all on one
//! atomic word, needed there because any thread may wake any task
//! (docs/OVERHEAD_ANALYSIS.md, "Our own task cell"). Here a task's scheduling state
//! belongs to its executor's thread, and only the rarer events that really cross
//! threads pay for atomics, as in glommio.
//!
//! # Two kinds of state
//!
//! - **Scheduling state**, owned by the executor's thread: `SCHEDULED` and `RUNNING`
//!   in `TaskMeta::flags`, beside `FUTURE_GONE`, read and written with plain loads and
//!   stores. Only the executor's thread touches it: through a [`Runnable`], which is
//!   `!Send`; through [`TaskRef::schedule_here`], which the run loop calls; and through
//!   a waker that checked it runs on that thread (`thread_id`, compared with the
//!   inbox's owner).
//! - **Shared state**, one atomic word (`Header::state`): the reference count and what
//!   the join handle needs from any thread: `HANDLE`, `FINISHED`, `COMPLETED`, and
//!   `AWAITER`/`REGISTERING` for its waker; and `WOKEN_ELSEWHERE`, which keeps a thread
//!   that wakes a task over and over from queueing more than one reference.
//!
//! A yield, or any wake on the executor's thread, thus costs no locked instruction: the
//! wake sets `SCHEDULED` (plain), and `Runnable::run` hands the task back when it sees
//! that bit after the poll. A wake on another thread never touches the scheduling
//! state: it takes a reference ([`TaskRef`]) and pushes it into the executor's inbox;
//! the run loop then schedules the task on its own thread.
//!
//! # References
//!
//! The count holds one reference per `Waker` and `TaskRef`, one for the join handle,
//! and one, "alive", for the future: taken at spawn, released by the executor's thread
//! once the future is gone and the cell is done with it (`Header::finish`). A
//! `Runnable` holds none of its own: it exists only while the future does. Whoever
//! releases the last reference frees the cell, on any thread: by then the slot is
//! empty (the future is gone, and the output was taken or dropped), and what is left
//! (`TaskMeta`, a waker) is `Send`.
//!
//! # The output
//!
//! The executor's thread writes the output into the slot, then sets `FINISHED |
//! COMPLETED` (release); the handle reads it after seeing `COMPLETED` (acquire). Who
//! drops an output nobody takes is decided on the state word: the task's end drops it
//! if `HANDLE` was already clear, otherwise the handle's drop does, after clearing
//! `HANDLE` and seeing `COMPLETED`. Either read-modify-write comes first, so exactly
//! one of them drops it.
//!
//! The loom models in `loom_models.rs` drive these handshakes
//! (`RUSTFLAGS="--cfg loom" cargo test --release --lib loom`).

mod handle;
#[cfg(all(test, loom))]
mod loom_models;
mod runnable;
mod waker;

use std::cell::UnsafeCell;
use std::future::Future;
use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::ptr::{self, addr_of_mut, NonNull};
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

pub(crate) use handle::TaskHandle;
pub(crate) use runnable::{LiveTask, Runnable, TaskRef};
use waker::WakerFns;

use super::{TaskMeta, FUTURE_GONE};
use crate::sync::{fence, AtomicUsize, Ordering};

/// `Header::state`: the join handle exists.
const HANDLE: usize = 1;
/// `Header::state`: the future returned its output, which is in the slot (unless the
/// handle took it, or nobody wanted it and it was dropped).
const COMPLETED: usize = 1 << 1;
/// `Header::state`: the future is gone (completed, panicked or cancelled). Set once, by
/// the executor's thread.
const FINISHED: usize = 1 << 2;
/// `Header::state`: the handle's waker is in `Header::awaiter`.
const AWAITER: usize = 1 << 3;
/// `Header::state`: the handle is writing `Header::awaiter`.
const REGISTERING: usize = 1 << 4;
/// `Header::state`: a wake from another thread is on its way through the inbox (a
/// `TaskRef`); further ones add nothing until the run loop takes it.
const WOKEN_ELSEWHERE: usize = 1 << 5;
/// `Header::state`: one reference; the count is the word's bits above the flags.
const REF: usize = 1 << 6;
/// The flag bits of `Header::state`.
const FLAGS: usize = REF - 1;

/// `TaskMeta::flags`: the task is queued (a `Runnable` exists), or was woken during its
/// poll. Executor thread only.
pub(super) const SCHEDULED: u8 = 64;
/// `TaskMeta::flags`: the task is being polled. Executor thread only.
pub(super) const RUNNING: u8 = 128;

/// How the executor takes a task woken on its own thread. Implemented above the task
/// layer (`crate::schedule`), so that this module names no executor.
pub(crate) trait Schedule: 'static {
    /// Queues `runnable`, or gives it back when the executor cannot take it now (busy
    /// with its own state, or no longer reachable from this thread); the cell then
    /// sends the task through the inbox instead (`Runnable::defer`).
    fn schedule(runnable: Runnable) -> Result<(), Runnable>;
}

/// A `Schedule` for tests: it never queues a task itself, so a wake on the executor's
/// thread goes through the inbox (`Runnable::defer`).
#[cfg(test)]
pub(crate) struct ThroughInbox;

#[cfg(test)]
impl Schedule for ThroughInbox {
    fn schedule(runnable: Runnable) -> Result<(), Runnable> {
        Err(runnable)
    }
}

/// The start of every task's allocation; the rest is the slot (`TaskCell`).
#[repr(C)]
pub(crate) struct Header {
    /// Reference count and shared flags (see the module docs).
    state: AtomicUsize,
    /// The join handle's waker. Written by the handle while it holds `REGISTERING`;
    /// taken by the executor's thread when the task finishes, if `AWAITER` was set and
    /// `REGISTERING` was not.
    awaiter: UnsafeCell<Option<Waker>>,
    vtable: &'static VTable,
    meta: TaskMeta,
}

/// What needs the future's, the output's or the schedule's type.
struct VTable {
    /// Polls the future once; `true` when it finished (then dropped, its output in the
    /// slot).
    poll: unsafe fn(NonNull<Header>) -> bool,
    drop_future: unsafe fn(NonNull<Header>),
    drop_output: unsafe fn(NonNull<Header>),
    /// Where the slot, and so the output, is: bytes from the header's start. Data
    /// rather than a function: the join handle reads the output through it.
    slot_offset: usize,
    dealloc: unsafe fn(NonNull<Header>),
    waker: &'static RawWakerVTable,
}

/// A whole task allocation: header, then the slot.
#[repr(C)]
struct TaskCell<F, T, S> {
    header: Header,
    slot: MaybeUninit<Slot<F, T>>,
    schedule: PhantomData<fn(S)>,
}

/// The future until it finishes, then its output; the state says which (and whether
/// either is there at all).
union Slot<F, T> {
    _future: std::mem::ManuallyDrop<F>,
    _output: std::mem::ManuallyDrop<T>,
}

/// Allocates a task: `make` builds its future from a reference to the metadata, which
/// lives in the same allocation (hence `'static`: the future is always dropped before
/// the cell is freed). The task starts scheduled; the caller queues the `Runnable`.
pub(crate) fn spawn<F, T, S>(
    meta: TaskMeta,
    make: impl FnOnce(&'static TaskMeta) -> F,
) -> (Runnable, TaskHandle<T>)
where
    F: Future<Output = T> + 'static,
    T: 'static,
    S: Schedule,
{
    // Allocated uninitialised and filled in place: a `Box::new` of the whole cell built
    // it on the stack first and copied it over, uninitialised slot included.
    let cell = Box::into_raw(Box::<TaskCell<F, T, S>>::new_uninit()).cast::<TaskCell<F, T, S>>();
    // SAFETY: `cell` is a fresh allocation sized and aligned for a `TaskCell`; the
    // header is written before anything reads it, the slot is `MaybeUninit` and the
    // schedule marker is zero-sized.
    unsafe {
        addr_of_mut!((*cell).header).write(Header {
            // The handle's reference and the future's.
            state: AtomicUsize::new(HANDLE | (2 * REF)),
            awaiter: UnsafeCell::new(None),
            vtable: &TaskCell::<F, T, S>::VTABLE,
            meta,
        });
    }
    // SAFETY: `cell` is a live allocation that nothing else references yet. The
    // metadata is never moved nor freed before the future is dropped (the cell frees
    // itself only when no reference is left, and the future holds one, "alive"), so a
    // `'static` borrow of it never dangles while the future can use it.
    let meta: &'static TaskMeta = unsafe { &(*cell).header.meta };
    // Set here, in the cell, rather than in `meta` before it moves there: a byte
    // written into the value just before it is copied out word by word stalls the copy
    // (the store cannot be forwarded to the wider load; ~5 ns per spawn, perf).
    let flags = meta.flags.load(Ordering::Relaxed);
    meta.flags.store(flags | SCHEDULED, Ordering::Relaxed);
    let future = make(meta);
    // SAFETY: the slot is uninitialised memory of `cell` sized and aligned for `F`
    // (a union field sits at offset 0); writing the future there pins it for good.
    unsafe { ptr::write(addr_of_mut!((*cell).slot).cast::<F>(), future) };
    // SAFETY: `Box::into_raw` never returns null.
    let header = unsafe { NonNull::new_unchecked(cell.cast::<Header>()) };
    // SAFETY: the two references the state starts with go to these two.
    unsafe {
        (
            Runnable::from_header(header),
            TaskHandle::from_header(header),
        )
    }
}

impl<F, T, S> TaskCell<F, T, S>
where
    F: Future<Output = T>,
    S: Schedule,
{
    const VTABLE: VTable = VTable {
        poll: Self::poll,
        drop_future: Self::drop_future,
        drop_output: Self::drop_output,
        slot_offset: std::mem::offset_of!(Self, slot),
        dealloc: Self::dealloc,
        waker: &WakerFns::<S>::VTABLE,
    };

    /// The slot of the task whose header is `header`.
    #[inline(always)]
    fn slot(header: NonNull<Header>) -> *mut MaybeUninit<Slot<F, T>> {
        let cell = header.cast::<Self>().as_ptr();
        // SAFETY: `header` is the start of a `TaskCell<F, T, S>` (the vtable that
        // called us was made for exactly this type); no reference is created.
        unsafe { addr_of_mut!((*cell).slot) }
    }

    /// # Safety
    /// Executor thread; the future is in the slot and nothing else uses it.
    unsafe fn poll(header: NonNull<Header>) -> bool {
        let future = Self::slot(header).cast::<F>();
        let raw = RawWaker::new(header.as_ptr().cast_const().cast(), &WakerFns::<S>::VTABLE);
        // SAFETY: the waker is only lent to the poll (never dropped: `ManuallyDrop`),
        // so it needs no reference of its own; the vtable's functions uphold the
        // `RawWaker` contract for this data pointer.
        let waker = std::mem::ManuallyDrop::new(unsafe { Waker::from_raw(raw) });
        let mut cx = Context::from_waker(&waker);
        // SAFETY: the future stays in the slot until dropped there: pinned.
        let pinned = unsafe { Pin::new_unchecked(&mut *future) };
        match pinned.poll(&mut cx) {
            Poll::Pending => false,
            Poll::Ready(output) => {
                // SAFETY: the future finished and is not used again; the output takes
                // its place in the slot.
                unsafe {
                    ptr::drop_in_place(future);
                    ptr::write(Self::slot(header).cast::<T>(), output);
                }
                true
            }
        }
    }

    /// # Safety
    /// Executor thread; the future is in the slot and is never used again.
    unsafe fn drop_future(header: NonNull<Header>) {
        // SAFETY: as the caller promises.
        unsafe { ptr::drop_in_place(Self::slot(header).cast::<F>()) }
    }

    /// # Safety
    /// The output is in the slot, the caller owns it, and it is never used again.
    unsafe fn drop_output(header: NonNull<Header>) {
        // SAFETY: as the caller promises.
        unsafe { ptr::drop_in_place(Self::slot(header).cast::<T>()) }
    }

    /// # Safety
    /// The last reference is gone, and the slot is empty.
    unsafe fn dealloc(header: NonNull<Header>) {
        // SAFETY: the allocation came from `Box::into_raw` of this very type in
        // `spawn`; the slot is `MaybeUninit`, so only the header is dropped.
        drop(unsafe { Box::from_raw(header.cast::<Self>().as_ptr()) });
    }
}

impl Header {
    #[inline(always)]
    fn meta(&self) -> &TaskMeta {
        &self.meta
    }

    /// The output in the slot of the task whose header is `header`.
    #[inline(always)]
    fn output<T>(header: NonNull<Header>) -> *mut T {
        // SAFETY: `header` points at a live cell (the caller holds a reference), whose
        // slot starts `slot_offset` bytes in; the pointer keeps the allocation's
        // provenance.
        let offset = unsafe { header.as_ref() }.vtable.slot_offset;
        header
            .as_ptr()
            .cast::<u8>()
            .wrapping_add(offset)
            .cast::<T>()
    }

    /// Takes one more reference (a waker's clone, a `TaskRef`).
    #[inline]
    fn add_ref(&self) {
        let before = self.state.fetch_add(REF, Ordering::Relaxed);
        // As `Arc` does: a count this high means wakers are being leaked in a loop.
        if before > isize::MAX as usize {
            std::process::abort();
        }
    }

    /// Releases one reference, and frees the cell if it was the last.
    ///
    /// # Safety
    /// The caller owns a reference and uses nothing of the cell afterwards.
    #[inline]
    unsafe fn release(header: NonNull<Header>) {
        // SAFETY: the caller's reference keeps the cell alive until this returns.
        let this = unsafe { header.as_ref() };
        let before = this.state.fetch_sub(REF, Ordering::Release);
        if before & !FLAGS == REF {
            // Every other owner's last use happened before its release: see them all.
            fence(Ordering::Acquire);
            // SAFETY: no reference is left; the slot is empty (module docs).
            unsafe { (this.vtable.dealloc)(header) };
        }
    }

    /// Executor thread: drops the future, which is still in the slot, and ends the
    /// task without an output (its handle resolves `Cancelled`).
    ///
    /// # Safety
    /// Executor thread, with the future in the slot; the caller uses nothing of the
    /// cell afterwards.
    unsafe fn cancel(header: NonNull<Header>) {
        // SAFETY: as the caller promises; `finish` then marks the future gone.
        unsafe {
            (header.as_ref().vtable.drop_future)(header);
            Header::finish(header, false);
        }
    }

    /// Executor thread, once the future is gone (`completed`: its output is in the
    /// slot): publishes the end, drops an output nobody will take, wakes the handle's
    /// waker, and releases the future's reference (in the same exchange that publishes
    /// the end, unless a waker must be woken first).
    ///
    /// # Safety
    /// Executor thread, once per task, with the future gone from the slot; the caller
    /// uses nothing of the cell afterwards.
    unsafe fn finish(header: NonNull<Header>, completed: bool) {
        // SAFETY: the future's reference keeps the cell alive until `release`.
        let this = unsafe { header.as_ref() };
        let flags = this.meta.flags.load(Ordering::Relaxed);
        this.meta.flags.store(
            (flags | FUTURE_GONE) & !(SCHEDULED | RUNNING),
            Ordering::Relaxed,
        );
        let set = if completed {
            FINISHED | COMPLETED
        } else {
            FINISHED
        };
        // Usually no handle's waker waits: then one exchange publishes the end and
        // gives up the future's reference.
        let mut output_dropped = false;
        let mut seen = this.state.load(Ordering::Acquire);
        while seen & AWAITER == 0 {
            if completed && seen & HANDLE == 0 && !output_dropped {
                // The handle is gone, and `HANDLE` never comes back: nobody will take
                // the output, and nobody else touches it.
                // SAFETY: the output is in the slot and is ours.
                unsafe { (this.vtable.drop_output)(header) };
                output_dropped = true;
            }
            match this.state.compare_exchange_weak(
                seen,
                (seen | set) - REF,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    if seen & !FLAGS == REF {
                        // The last reference: the exchange acquired every other
                        // owner's release.
                        // SAFETY: no reference is left; the slot is empty.
                        unsafe { (this.vtable.dealloc)(header) };
                    }
                    return;
                }
                Err(now) => seen = now,
            }
        }
        let before = this.state.fetch_or(set, Ordering::AcqRel);
        if completed && before & HANDLE == 0 && !output_dropped {
            // SAFETY: the handle is gone and saw no `COMPLETED`: nobody else will
            // touch the output.
            unsafe { (this.vtable.drop_output)(header) };
        }
        if before & (AWAITER | REGISTERING) == AWAITER {
            // SAFETY: the handle stored a waker and let go of the slot; `FINISHED`,
            // now set, keeps it from taking the slot again.
            let awaiter = unsafe { (*this.awaiter.get()).take() };
            if let Some(awaiter) = awaiter {
                awaiter.wake();
            }
        }
        // SAFETY: the future's reference, which this call gives up.
        unsafe { Header::release(header) };
    }
}
