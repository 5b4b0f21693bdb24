//! Helpers of the stress tests: a per-thread PRNG, a wake source, drop counters, a
//! reentrancy check and a busy future.

use std::future::{poll_fn, Future};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

/// xorshift64: a tiny deterministic generator per thread.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Something to wait for, rung from any thread: a counter and the waiter's waker.
#[derive(Default)]
pub(crate) struct Bell {
    pub(crate) rings: AtomicU64,
    waker: Mutex<Option<Waker>>,
}

impl Bell {
    pub(crate) fn ring(&self) {
        self.rings.fetch_add(1, Ordering::AcqRel);
        self.wake();
    }

    /// Wakes the waiter without ringing (a spurious wake for it).
    pub(crate) fn wake(&self) {
        let waker = self.waker.lock().unwrap().clone();
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Waits until the bell rang past `seen` (or `stop` is set); returns the rings.
    pub(crate) fn wait<'a>(
        &'a self,
        seen: u64,
        stop: &'a AtomicBool,
    ) -> impl Future<Output = u64> + 'a {
        poll_fn(move |cx| {
            let ready = |rings: u64| rings != seen || stop.load(Ordering::Acquire);
            let rings = self.rings.load(Ordering::Acquire);
            if ready(rings) {
                return Poll::Ready(rings);
            }
            *self.waker.lock().unwrap() = Some(cx.waker().clone());
            // Re-check after publishing the waker: a ring in between is not lost.
            let rings = self.rings.load(Ordering::Acquire);
            if ready(rings) {
                Poll::Ready(rings)
            } else {
                Poll::Pending
            }
        })
    }
}

/// Counts drops (thread-safe).
#[derive(Clone, Default)]
pub(crate) struct Drops(Arc<AtomicUsize>);

pub(crate) struct DropGuard(Arc<AtomicUsize>);

impl Drops {
    pub(crate) fn guard(&self) -> DropGuard {
        DropGuard(self.0.clone())
    }
    pub(crate) fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Fails if a task is polled while it is already being polled.
pub(crate) struct NotReentrant<'a>(&'a AtomicBool);

impl<'a> NotReentrant<'a> {
    pub(crate) fn enter(flag: &'a AtomicBool) -> Self {
        assert!(
            !flag.swap(true, Ordering::AcqRel),
            "task polled twice at once"
        );
        NotReentrant(flag)
    }
}

impl Drop for NotReentrant<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// A future that resolves on the first poll after `deadline`, waking itself: a busy
/// task that keeps the loop turning (used to race aborts against polls).
pub(crate) struct BusyUntil(pub(crate) Instant);

impl Future for BusyUntil {
    type Output = ();
    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.0 {
            return Poll::Ready(());
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
