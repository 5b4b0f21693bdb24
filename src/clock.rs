//! The executor's clock: nanoseconds since the executor was built.
//!
//! Read once per task poll. `quanta` reads the TSC where it is invariant (measured
//! here: 9.6 ns per read) and falls back to the OS monotonic clock elsewhere; std's
//! `Instant::now()` costs 26 ns per read on the same machine (see README, "Clock").
//! Under Miri, which cannot run quanta's `cpuid` probe, std's clock stands in.

/// A monotonic clock starting at zero.
#[derive(Debug, Clone)]
pub(crate) struct Clock {
    #[cfg(not(miri))]
    clock: quanta::Clock,
    #[cfg(not(miri))]
    epoch: u64,
    #[cfg(miri)]
    epoch: std::time::Instant,
}

impl Clock {
    #[cfg(not(miri))]
    pub(crate) fn new() -> Self {
        let clock = quanta::Clock::new();
        let epoch = clock.raw();
        Clock { clock, epoch }
    }

    #[cfg(miri)]
    pub(crate) fn new() -> Self {
        Clock {
            epoch: std::time::Instant::now(),
        }
    }

    /// Nanoseconds since the clock was created.
    #[cfg(not(miri))]
    #[inline]
    pub(crate) fn now_ns(&self) -> u64 {
        self.clock.delta_as_nanos(self.epoch, self.clock.raw())
    }

    /// Nanoseconds since the clock was created.
    #[cfg(miri)]
    pub(crate) fn now_ns(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}
