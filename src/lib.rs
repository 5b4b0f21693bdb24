//! clockworker: weighted task queues with EEVDF selection, inside any async runtime.
#![warn(missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks)]

// Modules, bottom layer first; a module imports only from layers below its own
// (docs/ARCHITECTURE.md). Leaves:
mod clock;
mod controller;
mod eevdf;
mod error;
mod host;
mod inbox;
#[cfg(any(feature = "metrics", feature = "tracing"))]
pub mod observe;
mod stats;
mod sync;
// In layer order: task, scheduler (the policies inside a queue), ready (all queues):
mod ready;
pub mod scheduler;
mod task;
// The run loop (core), then spawn: how tasks enter it and come back to it:
mod core;
mod spawn;
// What tasks and other threads hold (context, queue handle, remote spawner, yields):
mod context;
mod queue;
mod remote_spawn;
mod yield_now;
// The executor, then what builds (builder) and multiplies it (pool):
mod builder;
mod executor;
#[cfg(feature = "pool")]
pub mod pool;

#[cfg(test)]
mod miri_tests;

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
