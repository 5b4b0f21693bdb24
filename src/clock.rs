//! The executor's clock: nanoseconds since the executor was built.
//!
//! Read once per task poll. `quanta` reads the TSC where it is invariant (measured
//! here: 9.6 ns per read) and falls back to the OS monotonic clock elsewhere; std's
//! `Instant::now()` costs 26 ns per read on the same machine (see README, "Clock").

/// A monotonic clock starting at zero.
#[derive(Debug, Clone)]
pub(crate) struct Clock {
    clock: quanta::Clock,
    epoch: u64,
}

impl Clock {
    pub(crate) fn new() -> Self {
        let clock = quanta::Clock::new();
        let epoch = clock.raw();
        Clock { clock, epoch }
    }

    /// Nanoseconds since the clock was created.
    #[inline]
    pub(crate) fn now_ns(&self) -> u64 {
        self.clock.delta_as_nanos(self.epoch, self.clock.raw())
    }
}
