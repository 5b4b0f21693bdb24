//! [`TaskHandle`]: the join side of a task cell, usable from any thread.
//!
//! # The handle's waker
//!
//! Only the handle writes `Header::awaiter`, and only while it holds `REGISTERING`,
//! which it takes with a compare-exchange that fails once `FINISHED` is set. It then
//! sets `AWAITER` and drops `REGISTERING` in one exchange, which fails if the task
//! finished meanwhile: the handle then takes its waker back and reads the result
//! itself. The task's end (`Header::finish`) sets `FINISHED` and takes the waker only
//! if it saw `AWAITER` without `REGISTERING`. So the slot has one user at a time, and
//! either the end wakes the handle or the handle sees the end.

use std::marker::PhantomData;
use std::ptr::{self, NonNull};
use std::task::{Context, Poll};

use super::{Header, AWAITER, COMPLETED, FINISHED, HANDLE, REGISTERING};
use crate::sync::Ordering;
use crate::task::TaskMeta;

/// The join side of a task whose output is a `T`.
pub(crate) struct TaskHandle<T> {
    header: NonNull<Header>,
    /// The output was taken: nothing is left for `drop` to drop.
    taken: bool,
    output: PhantomData<T>,
}

// SAFETY: the handle touches the shared state word (atomics), the awaiter slot under
// the `REGISTERING` protocol, the metadata (`Sync`), and the output, which it moves
// out or drops on its own thread: sound to send when `T` is `Send`.
unsafe impl<T: Send> Send for TaskHandle<T> {}
// SAFETY: `&TaskHandle` gives only the metadata and `is_finished` (atomic).
unsafe impl<T: Send> Sync for TaskHandle<T> {}
// The output is never pinned: it is moved out of the cell.
impl<T> Unpin for TaskHandle<T> {}

impl<T> TaskHandle<T> {
    /// # Safety
    /// The caller hands over the handle's reference (and `HANDLE` is set).
    pub(super) unsafe fn from_header(header: NonNull<Header>) -> Self {
        TaskHandle {
            header,
            taken: false,
            output: PhantomData,
        }
    }

    fn header(&self) -> &Header {
        // SAFETY: the handle's reference keeps the cell alive.
        unsafe { self.header.as_ref() }
    }

    /// The task's metadata.
    pub(crate) fn metadata(&self) -> &TaskMeta {
        self.header().meta()
    }

    /// Whether the task's future is gone (it completed, panicked or was cancelled).
    pub(crate) fn is_finished(&self) -> bool {
        self.header().state.load(Ordering::Acquire) & FINISHED != 0
    }

    /// `Ready(Some(output))` once the task completed, `Ready(None)` once it ended
    /// without an output; until then, arranges for `cx`'s waker to be woken at the end.
    /// Not to be polled again after `Ready`.
    pub(crate) fn poll_output(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let state = &self.header().state;
        let mut seen = state.load(Ordering::Acquire);
        // Take the awaiter slot, unless the task finished.
        loop {
            if seen & FINISHED != 0 {
                return Poll::Ready(self.take_output(seen));
            }
            match state.compare_exchange_weak(
                seen,
                seen | REGISTERING,
                Ordering::Acquire,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(now) => seen = now,
            }
        }
        let slot = self.header().awaiter.get();
        // SAFETY: `REGISTERING` is ours: nothing else touches the slot.
        unsafe {
            match &*slot {
                Some(waker) if waker.will_wake(cx.waker()) => {}
                _ => *slot = Some(cx.waker().clone()),
            }
        }
        seen |= REGISTERING;
        loop {
            if seen & FINISHED != 0 {
                // The task ended while we held the slot, so it left the waker to us.
                // SAFETY: `REGISTERING` is still ours.
                drop(unsafe { (*slot).take() });
                let now = state.fetch_and(!(REGISTERING | AWAITER), Ordering::AcqRel);
                return Poll::Ready(self.take_output(now));
            }
            match state.compare_exchange_weak(
                seen,
                (seen | AWAITER) & !REGISTERING,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Poll::Pending,
                Err(now) => seen = now,
            }
        }
    }

    /// After `FINISHED` was seen (acquire) in `state`: moves the output out if the task
    /// completed.
    fn take_output(&mut self, state: usize) -> Option<T> {
        if state & COMPLETED == 0 || self.taken {
            return None;
        }
        self.taken = true;
        let header = self.header;
        // SAFETY: `COMPLETED` was published after the output was written, and the task
        // does not touch it while `HANDLE` is set: it is ours, moved out once (`taken`).
        Some(unsafe { ptr::read(Header::output::<T>(header)) })
    }
}

impl<T> Drop for TaskHandle<T> {
    fn drop(&mut self) {
        let header = self.header;
        if !self.taken {
            let before = self.header().state.fetch_and(!HANDLE, Ordering::AcqRel);
            if before & COMPLETED != 0 {
                // SAFETY: the task completed while `HANDLE` was set, so it left the
                // output to us, and nobody took it.
                unsafe { (self.header().vtable.drop_output)(header) };
            }
        }
        // SAFETY: the handle's reference, not used again.
        unsafe { Header::release(header) };
    }
}
