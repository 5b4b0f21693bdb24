//! A single-threaded async executor with **weighted task queues**, that runs *inside*
//! the async runtime you already use (tokio, smol, monoio, glommio).
//!
//! # Why
//!
//! Thread-per-core services (databases, proxies, storage engines, multi-tenant
//! servers) run foreground requests and background work (compaction, flushing,
//! another tenant's batch) on the same core. In a plain single-threaded runtime they
//! share one FIFO, and a burst of background work sits in front of every request.
//! clockworker lets you say "requests get 8 parts of this core, compaction gets 1" and
//! keeps that promise slice by slice:
//!
//! - each **queue** has a key (any `Copy + Eq + Hash + Debug` value: an enum, an
//!   integer, a `&'static str`) and a **weight** (1..=[`MAX_WEIGHT`]); when several
//!   queues have work, each gets CPU time in proportion to its weight;
//! - the queue to serve next is chosen by **EEVDF** (earliest eligible virtual
//!   deadline first, the policy of Linux's CPU scheduler): a queue that has received
//!   less than its share is eligible, and among those the earliest deadline wins, so a
//!   queue that wakes up is served promptly without banking credit while it slept;
//! - inside a queue, a **task scheduler** orders the ready tasks:
//!   [`scheduler::RunnableFifo`] (the default), [`scheduler::ArrivalFifo`],
//!   [`scheduler::LAS`], or your own [`scheduler::Scheduler`].
//!
//! clockworker does not own the thread. Its run loop is one future of the host
//! runtime, which keeps doing what it is good at: I/O and timers. The loop hands the
//! thread back to the host at least every `driver_yield` (see
//! [`DEFAULT_DRIVER_YIELD`]), whenever nothing is ready, and on tokio when tokio's
//! cooperative budget is spent. Tasks may be `!Send` and may use the host's sockets,
//! timers and channels. Scheduling is cooperative: a task gives the thread back only
//! at an `.await`, so CPU-heavy work should call [`yield_maybe`] between chunks.
//!
//! # Quick start
//!
//! ```rust
//! use clockworker::{yield_maybe, ExecutorBuilder};
//!
//! #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
//! enum Queue { Foreground, Background }
//!
//! let executor = ExecutorBuilder::new()
//!     .with_queue(Queue::Foreground, 8) // 8 parts of the core when both are busy
//!     .with_queue(Queue::Background, 1) // 1 part
//!     .build()
//!     .expect("valid configuration");
//! let foreground = executor.queue(Queue::Foreground).unwrap();
//! let background = executor.queue(Queue::Background).unwrap();
//!
//! let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
//! let local = tokio::task::LocalSet::new();
//! // `run_until` polls the executor's tasks until this future completes.
//! let (sum, reply) = local.block_on(&runtime, executor.run_until(async move {
//!     let compaction = background.spawn(async {
//!         let mut sum = 0u64;
//!         for i in 0..1_000 {
//!             sum += i;
//!             yield_maybe().await; // yields only when the queue's slice is spent
//!         }
//!         sum
//!     });
//!     // Tasks may be `!Send` (an `Rc` here) and use the host's timers.
//!     let request = foreground.spawn(async {
//!         tokio::time::sleep(std::time::Duration::from_millis(1)).await;
//!         std::rc::Rc::new("pong")
//!     });
//!     // A `JoinHandle` is a future of `Result<T, JoinError>`.
//!     (compaction.await.unwrap(), request.await.unwrap())
//! }));
//! assert_eq!(sum, 499_500);
//! assert_eq!(*reply, "pong");
//! assert_eq!(executor.queue_stats(Queue::Background).unwrap().completed, 1);
//! ```
//!
//! # Hosts
//!
//! The run loop is [`Executor::run_until`] (until a future completes) or
//! [`Executor::run`] (until [`Executor::shutdown`]), awaited inside the host:
//!
//! - **tokio** (`current_thread`): `LocalSet::block_on(&rt, executor.run_until(..))`
//!   or `rt.block_on(..)`, or `executor.run()` as one `spawn_local` task beside others;
//!   with the `tokio` feature the loop returns to tokio so that it polls its I/O
//!   driver and timers at every driver yield.
//! - **smol**: `async_io::block_on(executor.run_until(..))`, or `executor.run()` as a
//!   task of an `async_executor::LocalExecutor`.
//! - **monoio**: `rt.block_on(executor.run_until(..))`; monoio fires timers only when
//!   it is idle, so a busy executor needs the wrapper shown in `examples/monoio_host.rs`.
//! - **glommio**: `run_until` inside a task of `LocalExecutorBuilder::spawn`, with
//!   glommio's `preempt_timer` set near the executor's `driver_yield`.
//!
//! Each host's details and pitfalls: see `docs/HOSTS.md` in the repository.
//!
//! # Panics
//!
//! **By default a panicking task is not caught: its panic propagates out of
//! `run`/`run_until`**, as if the code had run inline. Build with
//! [`ExecutorBuilder::with_panic_on_task_panic(false)`](ExecutorBuilder::with_panic_on_task_panic)
//! to catch it instead: the task's [`JoinHandle`] then resolves to
//! [`JoinError::Panic`] with the payload, and the executor keeps running. A panic in a
//! future's `Drop` while its task is being cancelled (abort, shutdown, executor
//! dropped) always goes to the handle and is never re-raised.
//!
//! # Feature flags
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `tokio` | yes | inside a tokio runtime, return to tokio through its deferred-wake list at every driver yield (so tokio polls its I/O and timers before the loop resumes), and end a turn when tokio's cooperative budget is spent; [`pool::TokioHost`] |
//! | `pool` | yes | [`pool`]: N shard threads, each running one executor inside its own host runtime, optionally pinned to a CPU |
//! | `metrics` | no | export queue and executor stats through the `metrics` facade (module `observe`) |
//! | `tracing` | no | a `tracing` span (level `TRACE`) around every task poll (module `observe`) |
//! | `sim` | no | [`sim`]: the real executor on a virtual clock inside a virtual host, and workload files to run on it |
//!
//! Without `tokio`, the executor still runs inside tokio, but with a plain self-wake
//! at each driver yield and no view of tokio's budget; a pool then needs another
//! host, such as [`pool::SmolHost`].
//!
//! # Map of the crate
//!
//! - Building: [`ExecutorBuilder`] (queues, weights, timing settings), checked by
//!   [`ExecutorBuilder::build`] into a [`BuildError`]; the defaults are the
//!   `DEFAULT_*` constants ([`DEFAULT_SCHED_LATENCY`], [`DEFAULT_MIN_SLICE`],
//!   [`DEFAULT_DRIVER_YIELD`], [`DEFAULT_HOST_POLL_INTERVAL`]).
//! - Running: [`Executor`] (`run`, `run_until`, `shutdown`, `set_weight`, stats).
//! - Spawning: [`QueueHandle`] from [`Executor::queue`] (`spawn`, `try_spawn`, task
//!   groups with [`QueueHandle::group`]), giving a [`JoinHandle`] that resolves to the
//!   output or a [`JoinError`]; from inside a task, [`spawn`] onto the caller's queue
//!   and group, and a [`JoinSet`] to await tasks in the order they finish; from other
//!   threads, [`RemoteSpawner`] from [`Executor::remote`], giving a
//!   [`RemoteJoinHandle`]. Errors: [`SpawnError`].
//! - Yielding: [`yield_maybe`] (only when the queue's time is up) and [`yield_now`]
//!   (always).
//! - Weights at run time: [`Executor::set_weight`] ([`SetWeightError`]), or a
//!   [`WeightController`] such as [`BacklogController`].
//! - Measuring: [`ExecutorStats`], [`QueueStats`], [`GroupStats`] (per tenant) and
//!   their [`Log2Histogram`]s; `later - earlier` gives the figures of one phase.
//! - [`scheduler`]: the [`Scheduler`](scheduler::Scheduler) trait and the built-in
//!   task schedulers.
//! - [`pool`] (feature `pool`): [`pool::PoolBuilder`] and [`pool::Pool`], a
//!   thread-per-core pool of executors.
//! - `observe` (features `metrics`, `tracing`): what is exported and traced.
#![warn(missing_docs)]
// The crate docs link to `pool` items, which exist only with that (default) feature.
#![cfg_attr(not(feature = "pool"), allow(rustdoc::broken_intra_doc_links))]
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
mod thread_id;
// In layer order: task, scheduler (the policies inside a queue), ready (all queues):
mod ready;
pub mod scheduler;
mod task;
// The run loop (core), then schedule: how tasks enter it and come back to it:
mod core;
mod schedule;
// What tasks and other threads hold (context, queue handle, remote spawner, yields):
mod context;
mod join_set;
mod queue;
mod remote_spawn;
mod yield_now;
// The executor, then what builds (builder) and multiplies it (pool):
mod builder;
mod executor;
#[cfg(feature = "pool")]
pub mod pool;
// The simulator drives the whole executor from above:
#[cfg(feature = "sim")]
pub mod sim;

#[cfg(test)]
mod miri_tests;
/// The tests' watchdog, shared with the integration tests (`tests/common`).
#[cfg(test)]
#[path = "../tests/common/watchdog.rs"]
mod test_watchdog;

pub use builder::{
    ExecutorBuilder, DEFAULT_DRIVER_YIELD, DEFAULT_HOST_POLL_INTERVAL, DEFAULT_MIN_SLICE,
    DEFAULT_SCHED_LATENCY, MAX_DURATION_SETTING,
};
pub use context::spawn;
pub use controller::{BacklogController, WeightController};
pub use eevdf::MAX_WEIGHT;
pub use error::{BuildError, JoinError, SetWeightError, SpawnError};
pub use executor::Executor;
pub use join_set::JoinSet;
pub use queue::{QueueHandle, QueueKey};
pub use remote_spawn::{RemoteJoinHandle, RemoteSpawner};
pub use stats::{ExecutorStats, GroupStats, Log2Histogram, QueueStats};
pub use task::{JoinHandle, MAX_QUEUES};
pub use yield_now::{yield_maybe, yield_now, YieldMaybe, YieldNow};

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// The host recipes' examples (docs/HOSTS.md), compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../docs/HOSTS.md")]
struct HostsDoctests;
