//! How a simulated host behaves: the cost of returning to it, and its timers' ticks.

use std::time::Duration;

/// What a return of the run loop to the host costs by default: the 0.2–0.4 µs
/// measured for a driver yield on tokio (its deferred-wake list plus a driver poll).
pub const DEFAULT_RETURN_COST: Duration = Duration::from_nanos(300);

/// The resolution of tokio's timer wheel: a deadline is rounded up to the next 1 ms.
pub const TOKIO_TIMER_RESOLUTION: Duration = Duration::from_millis(1);

/// How the simulated host behaves: what a return to it costs, and how finely its
/// timers fire.
///
/// ```
/// use clockworker::sim::HostModel;
/// use std::time::Duration;
///
/// let tokio = HostModel::tokio();
/// assert_eq!(tokio.timer_resolution, Duration::from_millis(1));
/// let fast = HostModel::fine().with_return_cost(Duration::from_nanos(100));
/// assert_eq!(fast.timer_resolution, Duration::ZERO);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct HostModel {
    /// Virtual time charged each time the run loop returns to the host.
    pub return_cost: Duration,
    /// Timers fire at the first tick at or after their deadline, ticks coming every
    /// `timer_resolution` (zero: exactly at the deadline).
    pub timer_resolution: Duration,
    /// When the first tick comes (ticks at `timer_phase + k × timer_resolution`): a
    /// real host's ticks count from when its runtime started, which has no relation
    /// to when the workload's arrivals began.
    pub timer_phase: Duration,
}

impl HostModel {
    /// tokio's current_thread runtime: 1 ms timer wheel, [`DEFAULT_RETURN_COST`].
    ///
    /// ```
    /// use clockworker::sim::{HostModel, DEFAULT_RETURN_COST};
    /// assert_eq!(HostModel::tokio().return_cost, DEFAULT_RETURN_COST);
    /// ```
    pub fn tokio() -> Self {
        HostModel {
            return_cost: DEFAULT_RETURN_COST,
            timer_resolution: TOKIO_TIMER_RESOLUTION,
            timer_phase: Duration::ZERO,
        }
    }

    /// A host with fine-grained timers (smol's `async-io`, glommio): timers fire
    /// exactly at their deadline (once the loop is back in the host);
    /// [`DEFAULT_RETURN_COST`].
    ///
    /// ```
    /// use clockworker::sim::HostModel;
    /// assert!(HostModel::fine().timer_resolution.is_zero());
    /// ```
    pub fn fine() -> Self {
        HostModel {
            return_cost: DEFAULT_RETURN_COST,
            timer_resolution: Duration::ZERO,
            timer_phase: Duration::ZERO,
        }
    }

    /// The same model with another return cost.
    ///
    /// ```
    /// use clockworker::sim::HostModel;
    /// use std::time::Duration;
    /// let free = HostModel::tokio().with_return_cost(Duration::ZERO);
    /// assert!(free.return_cost.is_zero());
    /// ```
    pub fn with_return_cost(mut self, cost: Duration) -> Self {
        self.return_cost = cost;
        self
    }

    /// The same model with another timer resolution.
    ///
    /// ```
    /// use clockworker::sim::HostModel;
    /// use std::time::Duration;
    /// let coarse = HostModel::fine().with_timer_resolution(Duration::from_millis(4));
    /// assert_eq!(coarse.timer_resolution, Duration::from_millis(4));
    /// ```
    pub fn with_timer_resolution(mut self, resolution: Duration) -> Self {
        self.timer_resolution = resolution;
        self
    }

    /// The same model with the timer ticks shifted by `phase` (taken modulo the
    /// resolution).
    ///
    /// ```
    /// use clockworker::sim::HostModel;
    /// use std::time::Duration;
    /// let shifted = HostModel::tokio().with_timer_phase(Duration::from_micros(400));
    /// assert_eq!(shifted.timer_phase, Duration::from_micros(400));
    /// ```
    pub fn with_timer_phase(mut self, phase: Duration) -> Self {
        self.timer_phase = phase;
        self
    }
}

impl Default for HostModel {
    /// [`HostModel::tokio`].
    fn default() -> Self {
        HostModel::tokio()
    }
}

/// The first tick at or after `ns`, ticks at `phase + k × step` (`ns` when `step` is
/// zero).
pub(super) fn next_tick(ns: u64, step: Duration, phase: Duration) -> u64 {
    let step = u64::try_from(step.as_nanos()).unwrap_or(u64::MAX);
    if step == 0 {
        return ns;
    }
    let phase = u64::try_from(phase.as_nanos()).unwrap_or(0) % step;
    // Count ticks from `phase - step` (< 0 is not representable: shift by one step).
    let shifted = ns.saturating_add(step - phase);
    shifted
        .div_ceil(step)
        .saturating_mul(step)
        .saturating_sub(step - phase)
}
