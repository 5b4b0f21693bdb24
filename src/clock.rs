//! The executor's clock: nanoseconds since the executor was built.
//!
//! Read once per task poll, so its cost is paid on every poll. `quanta` reads the TSC
//! where it is invariant, which is cheaper than std's `Instant::now()` (a call into the
//! OS monotonic clock), and falls back to the OS clock elsewhere. Measured: see
//! `docs/BENCHMARKS.md`, section *Clock reads* (`docs/BENCHMARKS.md#clock-reads`).
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
