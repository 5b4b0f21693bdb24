//! clockworker: weighted task queues with EEVDF selection, inside any async runtime.
#![warn(missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod builder;
mod clock;
mod context;
mod controller;
mod core;

mod eevdf;
mod error;
mod executor;
mod host;
#[cfg(test)]
mod miri_tests;
#[cfg(any(feature = "metrics", feature = "tracing"))]
pub mod observe;
#[cfg(feature = "pool")]
pub mod pool;
mod queue;
mod ready;
mod remote;
mod remote_spawn;
pub mod scheduler;
mod stats;
mod sync;
mod task;
mod yield_now;

pub use builder::{
    ExecutorBuilder, DEFAULT_DRIVER_YIELD, DEFAULT_HOST_POLL_INTERVAL, DEFAULT_MIN_SLICE,
    DEFAULT_SCHED_LATENCY, MAX_DURATION_SETTING,
};
pub use controller::{BacklogController, WeightController};
pub use eevdf::MAX_WEIGHT;
pub use error::{BuildError, JoinError, SetWeightError, SpawnError};
pub use executor::Executor;
pub use queue::{QueueHandle, QueueKey};
pub use remote_spawn::{RemoteJoinHandle, RemoteSpawner};
pub use stats::{ExecutorStats, Log2Histogram, QueueStats};
pub use task::JoinHandle;
pub use yield_now::{yield_maybe, yield_now, YieldMaybe, YieldNow};

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// The host recipes' examples (docs/HOSTS.md), compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../docs/HOSTS.md")]
struct HostsDoctests;
