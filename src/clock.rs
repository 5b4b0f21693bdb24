//! The executor's clock: nanoseconds since the executor was built.
//!
//! Read once per task poll, so its cost is paid on every poll. `quanta` reads the TSC
//! where it is invariant, which is cheaper than std's `Instant::now()` (a call into the
//! OS monotonic clock), and falls back to the OS clock elsewhere. Measured: see
//! `docs/BENCHMARKS.md`, section *Clock reads* (`docs/BENCHMARKS.md#clock-reads`).
//! Under Miri, which cannot run quanta's `cpuid` probe, std's clock stands in.
//!
//! With the `sim` feature, a clock created on a thread where a virtual clock is
//! installed ([`virtual_time`]) reads that instead: the simulator's virtual
//! nanoseconds. Without the feature none of it exists and `now_ns` is the code above.

/// A monotonic clock starting at zero.
#[derive(Debug, Clone)]
pub(crate) struct Clock {
    #[cfg(not(miri))]
    clock: quanta::Clock,
    #[cfg(not(miri))]
    epoch: u64,
    #[cfg(miri)]
    epoch: std::time::Instant,
    /// Created while a virtual clock was installed on this thread: read that one.
    #[cfg(feature = "sim")]
    simulated: bool,
}

impl Clock {
    #[cfg(not(miri))]
    pub(crate) fn new() -> Self {
        let clock = quanta::Clock::new();
        let epoch = clock.raw();
        Clock {
            clock,
            epoch,
            #[cfg(feature = "sim")]
            simulated: virtual_time::installed(),
        }
    }

    #[cfg(miri)]
    pub(crate) fn new() -> Self {
        Clock {
            epoch: std::time::Instant::now(),
            #[cfg(feature = "sim")]
            simulated: virtual_time::installed(),
        }
    }

    /// Nanoseconds since the clock was created.
    #[cfg(not(miri))]
    #[inline]
    pub(crate) fn now_ns(&self) -> u64 {
        #[cfg(feature = "sim")]
        if self.simulated {
            return virtual_time::read_by_executor();
        }
        self.clock.delta_as_nanos(self.epoch, self.clock.raw())
    }

    /// Nanoseconds since the clock was created.
    #[cfg(miri)]
    pub(crate) fn now_ns(&self) -> u64 {
        #[cfg(feature = "sim")]
        if self.simulated {
            return virtual_time::read_by_executor();
        }
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// The virtual clock of the simulator (feature `sim`): one per thread, in nanoseconds
/// from the moment it was installed. Only the simulator moves it; executors built on
/// the thread while it is installed read it instead of the real clock.
#[cfg(feature = "sim")]
pub(crate) mod virtual_time {
    use std::cell::Cell;

    thread_local! {
        /// The virtual time in ns, or `None` when no virtual clock is installed.
        static NOW: Cell<Option<u64>> = const { Cell::new(None) };
        /// How many times executors read the virtual clock since it was installed.
        static READS: Cell<u64> = const { Cell::new(0) };
    }

    /// Installs a virtual clock at zero on this thread (replacing one already there).
    pub(crate) fn install() {
        NOW.with(|now| now.set(Some(0)));
        READS.with(|reads| reads.set(0));
    }

    /// An executor's clock read: the virtual time, counted in `reads`.
    pub(crate) fn read_by_executor() -> u64 {
        READS.with(|reads| reads.set(reads.get() + 1));
        now_ns()
    }

    /// How many times executors read the virtual clock since it was installed.
    pub(crate) fn reads() -> u64 {
        READS.with(Cell::get)
    }

    /// Removes this thread's virtual clock.
    pub(crate) fn uninstall() {
        NOW.with(|now| now.set(None));
    }

    /// Whether a virtual clock is installed on this thread.
    pub(crate) fn installed() -> bool {
        NOW.with(|now| now.get().is_some())
    }

    /// The virtual time (0 when no virtual clock is installed).
    pub(crate) fn now_ns() -> u64 {
        NOW.with(|now| now.get().unwrap_or(0))
    }

    /// Moves the virtual time on by `ns`; false (and nothing moves) when no virtual
    /// clock is installed.
    pub(crate) fn advance(ns: u64) -> bool {
        NOW.with(|now| match now.get() {
            Some(t) => {
                now.set(Some(t.saturating_add(ns)));
                true
            }
            None => false,
        })
    }

    /// Moves the virtual time forward to `ns` (never backward).
    pub(crate) fn advance_to(ns: u64) {
        NOW.with(|now| {
            if let Some(t) = now.get() {
                now.set(Some(t.max(ns)));
            }
        });
    }
}
