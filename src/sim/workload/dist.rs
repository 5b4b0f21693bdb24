//! Distributions of durations in workload files (`{ dist = "uniform", min_us = 100,
//! max_us = 500 }`), checked as they are read, so that a bad one is reported at its line.

use std::time::Duration;

use serde::Deserialize;

use crate::sim::Rng;

/// A distribution of durations, in microseconds.
///
/// In a workload file: `{ dist = "fixed", us = 50 }`, `{ dist = "uniform", min_us =
/// 50, max_us = 100 }`, `{ dist = "exponential", mean_us = 200 }` or `{ dist =
/// "lognormal", median_us = 100, sigma = 0.5 }`.
///
/// ```
/// use clockworker::sim::{Dist, Rng};
/// use std::time::Duration;
///
/// let fixed = Dist::Fixed { us: 50.0 };
/// assert_eq!(fixed.sample(&mut Rng::new(1)), Duration::from_micros(50));
/// assert_eq!(fixed.mean_us(), 50.0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(try_from = "DistSpec")]
#[non_exhaustive]
pub enum Dist {
    /// Always `us`.
    Fixed {
        /// The duration, µs.
        us: f64,
    },
    /// Uniform in `[min_us, max_us]`.
    Uniform {
        /// Lower end, µs.
        min_us: f64,
        /// Upper end, µs.
        max_us: f64,
    },
    /// Exponential with mean `mean_us`.
    Exponential {
        /// The mean, µs.
        mean_us: f64,
    },
    /// Log-normal: `median_us × e^(sigma × N(0,1))`.
    Lognormal {
        /// The median, µs.
        median_us: f64,
        /// The standard deviation of the logarithm.
        sigma: f64,
    },
}

impl Dist {
    /// One draw.
    ///
    /// ```
    /// use clockworker::sim::{Dist, Rng};
    /// let d = Dist::Uniform { min_us: 1.0, max_us: 2.0 }.sample(&mut Rng::new(4));
    /// assert!(d.as_secs_f64() >= 1e-6 && d.as_secs_f64() <= 2e-6);
    /// ```
    pub fn sample(&self, rng: &mut Rng) -> Duration {
        let us = match *self {
            Dist::Fixed { us } => us,
            Dist::Uniform { min_us, max_us } => min_us + (max_us - min_us) * rng.unit(),
            Dist::Exponential { mean_us } => -mean_us * (1.0 - rng.unit()).ln(),
            Dist::Lognormal { median_us, sigma } => median_us * (sigma * rng.normal()).exp(),
        };
        Duration::from_nanos((us * 1e3).round().clamp(0.0, 1e18) as u64)
    }

    /// The mean, µs.
    ///
    /// ```
    /// use clockworker::sim::Dist;
    /// assert_eq!(Dist::Uniform { min_us: 100.0, max_us: 500.0 }.mean_us(), 300.0);
    /// ```
    pub fn mean_us(&self) -> f64 {
        match *self {
            Dist::Fixed { us } => us,
            Dist::Uniform { min_us, max_us } => (min_us + max_us) / 2.0,
            Dist::Exponential { mean_us } => mean_us,
            Dist::Lognormal { median_us, sigma } => median_us * (sigma * sigma / 2.0).exp(),
        }
    }
}

/// A distribution as written, before it is checked.
#[derive(Deserialize)]
#[serde(tag = "dist", rename_all = "lowercase", deny_unknown_fields)]
enum DistSpec {
    Fixed { us: f64 },
    Uniform { min_us: f64, max_us: f64 },
    Exponential { mean_us: f64 },
    Lognormal { median_us: f64, sigma: f64 },
}

/// Checks that `value` (named `name`) is a finite number ≥ 0.
pub(super) fn non_negative(name: &str, value: f64) -> Result<f64, String> {
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        Err(format!(
            "`{name}` must be a finite number >= 0, not {value}"
        ))
    }
}

impl TryFrom<DistSpec> for Dist {
    type Error = String;

    fn try_from(spec: DistSpec) -> Result<Self, String> {
        Ok(match spec {
            DistSpec::Fixed { us } => Dist::Fixed {
                us: non_negative("us", us)?,
            },
            DistSpec::Uniform { min_us, max_us } => {
                let (min_us, max_us) = (
                    non_negative("min_us", min_us)?,
                    non_negative("max_us", max_us)?,
                );
                if min_us > max_us {
                    return Err(format!("`min_us` ({min_us}) is above `max_us` ({max_us})"));
                }
                Dist::Uniform { min_us, max_us }
            }
            DistSpec::Exponential { mean_us } => Dist::Exponential {
                mean_us: non_negative("mean_us", mean_us)?,
            },
            DistSpec::Lognormal { median_us, sigma } => Dist::Lognormal {
                median_us: non_negative("median_us", median_us)?,
                sigma: non_negative("sigma", sigma)?,
            },
        })
    }
}
