//! A thread-per-core pool: N shard threads, each running one clockworker [`Executor`]
//! with the same queue layout inside a host runtime of its own — a tokio
//! `current_thread` runtime by default, or any [`ShardHost`].
//!
//! ```
//! use clockworker::pool::PoolBuilder;
//! use clockworker::ExecutorBuilder;
//!
//! #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
//! enum Queue { Requests, Compaction }
//!
//! let pool = PoolBuilder::new(|_shard| {
//!     ExecutorBuilder::new()
//!         .with_queue(Queue::Requests, 8)
//!         .with_queue(Queue::Compaction, 1)
//! })
//! .shards(2)
//! .build()
//! .expect("pool starts");
//! // `Send` futures, onto a chosen shard or round-robin; handles are awaitable anywhere.
//! let on_one = pool.spawn_on(1, Queue::Requests, async { 6 * 7 }).unwrap();
//! let anywhere = pool.spawn(Queue::Compaction, async { "done" }).unwrap();
//! assert_eq!(futures_lite::future::block_on(on_one).unwrap(), 42);
//! assert_eq!(futures_lite::future::block_on(anywhere).unwrap(), "done");
//! pool.shutdown().expect("no shard panicked");
//! ```
//!
//! # Threads and lifetimes
//!
//! [`PoolBuilder::build`] starts one thread per shard. Each thread pins itself to its
//! CPU (if asked), builds its host runtime ([`ShardHost::build`]; with the default
//! [`TokioHost`], a tokio `current_thread` runtime with every driver the tokio build
//! has, `enable_all`), calls the builder closure to get its
//! [`ExecutorBuilder`] (so queue schedulers and weight controllers need not be
//! `Send`), builds the executor, and sends its [`RemoteSpawner`] back. `build`
//! returns once every shard is running, or shuts the started ones down and returns
//! the first shard's error.
//!
//! Tasks spawned through the pool are `Send` futures (they travel to the shard). A
//! task running on a shard may spawn `!Send` tasks onto the same shard with
//! [`spawn_local`], or reach the shard's executor with [`current_executor`] (stats,
//! weights, queue handles): that is how a shard's accept loop hands each connection to
//! a task of its own executor.
//!
//! [`Pool::shutdown`] (also run by `Drop`) stops every shard *from its own thread*:
//! the shard's run loop is `executor.run_until(stop)`, and once `stop` fires the shard
//! calls [`Executor::shutdown`] (every pending task's future is dropped on the shard
//! thread, inside its host runtime, and its handle resolves `Cancelled`), drops the
//! executor and its runtime, and its thread ends; `shutdown` returns once every shard
//! thread has ended, also when several threads call it at once.
//!
//! # Hosts
//!
//! A shard's host is whatever blocks its thread on the run loop and serves the tasks'
//! I/O and timers: [`TokioHost`] (the default), [`SmolHost`] (futures-lite's
//! `block_on`; smol's async-io sockets and timers), or your own [`ShardHost`], chosen
//! with [`PoolBuilder::host`]:
//!
//! ```
//! use clockworker::pool::{PoolBuilder, SmolHost};
//! use clockworker::ExecutorBuilder;
//!
//! let pool = PoolBuilder::new(|_| ExecutorBuilder::new().with_queue("work", 1))
//!     .host(SmolHost)
//!     .shards(2)
//!     .build()
//!     .expect("pool starts");
//! let handle = pool.spawn("work", async { 1 + 1 }).unwrap();
//! assert_eq!(futures_lite::future::block_on(handle).unwrap(), 2);
//! pool.shutdown().unwrap();
//! ```
//!
//! # Pinning
//!
//! [`PoolBuilder::pin_to_cores`] pins shard `i` to the `i`-th CPU the building thread
//! may run on (wrapping around), [`PoolBuilder::pin_to_cpus`] to a list of your own.
//! Pinning uses `sched_setaffinity` on Linux and is unsupported elsewhere. It is best
//! effort: a failure does not stop the pool; [`Pool::pin_status`] reports it.

mod builder;
mod error;
mod handle;
mod host;
mod local;
mod pinning;
mod shard;

pub use builder::PoolBuilder;
pub use error::{PoolError, PoolSpawnError, ShutdownError};
pub use handle::Pool;
pub use host::{ShardHost, SmolHost, TokioHost};
pub use local::{current_executor, current_shard, spawn_local};
pub use pinning::PinStatus;

#[cfg(doc)]
use crate::{Executor, ExecutorBuilder, RemoteSpawner};
