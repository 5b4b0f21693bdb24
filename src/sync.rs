//! The synchronisation primitives of the cross-thread side (`crate::inbox`), from one
//! place: std's atomics and the `atomic-waker` crate in normal builds, loom's under
//! `--cfg loom`, so that loom models explore every interleaving of our handshake.
//!
//! Under loom, `concurrent-queue` switches to loom's atomics by itself (its `loom`
//! feature, enabled in `Cargo.toml` for `cfg(loom)` only), so the inbox the models
//! exercise is the real one. `atomic-waker` has no loom mode: the models use loom's
//! `AtomicWaker`, which keeps the same contract (a `wake` that finds no waker is not
//! remembered; a `wake` after `register` returns reaches that waker; both synchronise
//! with each other), implemented with a loom mutex.
//!
//! Normal builds are untouched: the names below are plain re-exports.

#[cfg(not(loom))]
pub(crate) use atomic_waker::AtomicWaker;
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{fence, AtomicBool, AtomicUsize, Ordering};

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicBool, AtomicUsize, Ordering};

/// loom's `AtomicWaker` behind `atomic-waker`'s signatures.
#[cfg(loom)]
pub(crate) struct AtomicWaker(loom::future::AtomicWaker);

#[cfg(loom)]
impl AtomicWaker {
    pub(crate) fn new() -> Self {
        AtomicWaker(loom::future::AtomicWaker::new())
    }

    pub(crate) fn register(&self, waker: &std::task::Waker) {
        self.0.register_by_ref(waker);
    }

    pub(crate) fn wake(&self) {
        self.0.wake();
    }
}
