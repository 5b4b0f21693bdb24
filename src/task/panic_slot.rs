//! Where a task's panic waits for the task's handle: the panic of a poll (when the
//! executor catches task panics) or of a cancelled task's future `Drop`.
//!
//! The cell writes no output for a cancelled task, so its handle learns only "ended";
//! a task whose poll panicked completes with an empty output (`TaskOutput`). In both
//! cases the task wrapper catches the panic and leaves the payload here, in the task's
//! metadata (same allocation, alive as long as the handle is); the handle looks here
//! when it finds no value, and resolves `JoinError::Panic` instead of `Cancelled`.
//!
//! One pointer per task, in one of three states:
//! - null: nothing left (the common case, forever for almost every task);
//! - the address of `DETACHED_MARK`: the handle was dropped, no one will read;
//! - anything else: a payload, boxed once more to fit behind a thin pointer (this
//!   costs only on the rare panicking path).
//!
//! The executor thread writes a payload at most once per task (the future panics in a
//! poll or in its drop, and is gone after either); the handle, on any thread, either
//! takes it (only after the cell reported the future gone, `FINISHED`, which orders the
//! write before the read) or marks the slot when it is dropped. Every transition is
//! one atomic swap or compare-exchange with acquire/release, so a payload is dropped
//! exactly once whichever side comes last: `put` after the mark drops it at once, a
//! handle dropped after `put` drops it then.
//!
//! Why not free a leftover payload with the task's allocation instead of marking the
//! slot: a `Drop` on the metadata costs every task a few instructions when the cell
//! frees it (measured with callgrind on `overhead_profile`), while the mark costs only
//! tasks whose handle is dropped unawaited, one swap each.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};

/// A panic payload, as `catch_unwind` hands it out.
pub(crate) type Payload = Box<dyn Any + Send + 'static>;

/// Its address marks a slot whose handle is gone: no heap allocation can be there.
static DETACHED_MARK: u8 = 0;

fn detached() -> *mut Payload {
    ptr::addr_of!(DETACHED_MARK).cast_mut().cast()
}

/// A payload left by a cancelled task's future for its handle (see the module docs).
///
/// No `Drop`: the slot is empty or marked when the task's allocation is freed, because
/// the handle, which keeps the allocation alive, takes the payload or marks the slot
/// before it lets go. (A leaked handle leaks the allocation with it.)
pub(crate) struct PanicSlot(AtomicPtr<Payload>);

impl PanicSlot {
    pub(crate) const fn new() -> Self {
        PanicSlot(AtomicPtr::new(ptr::null_mut()))
    }

    /// Leaves `payload` for the handle, or drops it here when the handle is gone.
    /// Executor thread, at most once per task. Never panics: it runs inside the
    /// cell's bookkeeping (a task's cancellation or end).
    pub(crate) fn put(&self, payload: Payload) {
        let boxed = Box::into_raw(Box::new(payload));
        let stored =
            self.0
                .compare_exchange(ptr::null_mut(), boxed, Ordering::AcqRel, Ordering::Acquire);
        if let Err(current) = stored {
            debug_assert_eq!(current, detached(), "a task's future is dropped once");
            // SAFETY: `boxed` came from `Box::into_raw` above and the exchange failed,
            // so it was never published: we still own it.
            drop_quietly(*unsafe { Box::from_raw(boxed) });
        }
    }

    /// Takes the payload, if the task left one. Called by the handle once the cell
    /// reported the task ended, i.e. its future gone. Leaves the slot marked, as the
    /// handle is done with it.
    pub(crate) fn take(&self) -> Option<Payload> {
        let current = self.0.swap(detached(), Ordering::AcqRel);
        if current.is_null() || current == detached() {
            return None;
        }
        // SAFETY: any other pointer in the slot was stored by `put`, from
        // `Box::into_raw`, and the swap took it out, so only we own it now.
        Some(*unsafe { Box::from_raw(current) })
    }

    /// The handle is dropped without having taken a result: drops a payload left
    /// already (quietly, as an output nobody takes is dropped), and marks the slot so
    /// that a later `put` drops its payload itself.
    pub(crate) fn detach(&self) {
        if let Some(payload) = self.take() {
            drop_quietly(payload);
        }
    }
}

/// Drops a panic payload without letting a panic of its own `Drop` escape: callers may
/// be inside the cell's bookkeeping. Should dropping the payload panic, the
/// payload of that panic is dropped the same way, and so on.
pub(crate) fn drop_quietly(mut payload: Payload) {
    loop {
        match catch_unwind(AssertUnwindSafe(move || drop(payload))) {
            Ok(()) => return,
            Err(nested) => payload = nested,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;

    struct Counted(Arc<AtomicUsize>);

    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn payload(drops: &Arc<AtomicUsize>) -> Payload {
        Box::new(Counted(drops.clone()))
    }

    fn is_empty_or_marked(slot: &PanicSlot) -> bool {
        let current = slot.0.load(Ordering::SeqCst);
        current.is_null() || current == detached()
    }

    #[test]
    fn put_then_take_hands_over_the_payload_once() {
        let drops = Arc::new(AtomicUsize::new(0));
        let slot = PanicSlot::new();
        slot.put(payload(&drops));
        let taken = slot.take().expect("payload stored");
        assert!(taken.is::<Counted>());
        assert!(slot.take().is_none());
        slot.detach();
        assert_eq!(drops.load(Ordering::SeqCst), 0, "the taker owns it");
        drop(taken);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        assert!(is_empty_or_marked(&slot));
    }

    #[test]
    fn detach_after_put_drops_the_payload() {
        let drops = Arc::new(AtomicUsize::new(0));
        let slot = PanicSlot::new();
        slot.put(payload(&drops));
        slot.detach();
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        assert!(is_empty_or_marked(&slot));
    }

    #[test]
    fn put_after_detach_drops_the_payload_at_once() {
        let drops = Arc::new(AtomicUsize::new(0));
        let slot = PanicSlot::new();
        slot.detach();
        slot.put(payload(&drops));
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        assert!(is_empty_or_marked(&slot));
    }

    #[test]
    fn put_and_detach_race_from_two_threads() {
        for _ in 0..if cfg!(miri) { 10 } else { 200 } {
            let drops = Arc::new(AtomicUsize::new(0));
            let slot = Arc::new(PanicSlot::new());
            let handle_side = {
                let slot = slot.clone();
                std::thread::spawn(move || slot.detach())
            };
            slot.put(payload(&drops));
            handle_side.join().unwrap();
            assert_eq!(drops.load(Ordering::SeqCst), 1);
            assert!(is_empty_or_marked(&slot));
        }
    }

    #[test]
    fn a_payload_whose_drop_panics_does_not_escape_put() {
        struct Loud;
        impl Drop for Loud {
            fn drop(&mut self) {
                panic!("payload's Drop panics");
            }
        }
        // Must return normally: `put` runs where a panic would abort the process.
        let slot = PanicSlot::new();
        slot.detach();
        slot.put(Box::new(Loud));
        drop_quietly(Box::new(Loud));
    }
}
