//! The host runtime of a shard thread: [`ShardHost`], with [`TokioHost`] (the default)
//! and [`SmolHost`].
//!
//! A shard thread asks its host for a runtime ([`ShardHost::build`]), builds its
//! executor, and then hands the host the shard's *run future* ([`ShardHost::block_on`]):
//! the executor's run loop, which ends once the pool shuts down, followed by the
//! executor's shutdown and drop. The run future is `!Send` and is made on the shard
//! thread, so a host only ever blocks on it there. When `block_on` returns, the shard
//! drops the runtime and its thread ends.

use std::future::Future;
use std::io;

/// What a pool shard runs its executor on: builds one runtime per shard thread and
/// blocks that thread on the shard's run future.
///
/// One value of the host is shared by all shard threads (hence `Send + Sync`); each
/// thread builds its own [`Runtime`](Self::Runtime), which never leaves the thread and
/// so need not be `Send`.
///
/// Writing a host for another runtime takes two methods; for example, one that drives
/// smol's reactor on the shard thread itself:
///
/// ```
/// use clockworker::pool::{PoolBuilder, ShardHost};
/// use clockworker::ExecutorBuilder;
///
/// struct AsyncIoHost;
///
/// impl ShardHost for AsyncIoHost {
///     type Runtime = ();
///     fn build(&self, _shard: usize) -> std::io::Result<()> {
///         Ok(())
///     }
///     fn block_on<F: std::future::Future>(&self, _: &mut (), future: F) -> F::Output {
///         async_io::block_on(future)
///     }
/// }
///
/// let pool = PoolBuilder::new(|_| ExecutorBuilder::new().with_queue("io", 1))
///     .host(AsyncIoHost)
///     .shards(1)
///     .build()
///     .unwrap();
/// let slept = pool.spawn("io", async {
///     async_io::Timer::after(std::time::Duration::from_millis(1)).await;
/// });
/// futures_lite::future::block_on(slept.unwrap()).unwrap();
/// pool.shutdown().unwrap();
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a shard host",
    note = "`TokioHost` is one only with clockworker's `tokio` feature; otherwise pick a host with `PoolBuilder::host`, e.g. `SmolHost`"
)]
pub trait ShardHost: Send + Sync + 'static {
    /// The per-shard runtime (a tokio runtime, an executor, or `()` when blocking on
    /// the future needs no state).
    ///
    /// ```rust
    /// use clockworker::pool::{ShardHost, SmolHost, TokioHost};
    ///
    /// // What each shard thread builds and keeps for the run loop.
    /// let _: <TokioHost as ShardHost>::Runtime = TokioHost.build(0).unwrap();
    /// let _: <SmolHost as ShardHost>::Runtime = ();
    /// ```
    type Runtime;

    /// Builds shard `shard`'s runtime, on the shard's thread, before its executor is
    /// built. An error stops the pool's start: [`PoolBuilder::build`] returns
    /// [`PoolError::Runtime`] for this shard.
    ///
    /// [`PoolBuilder::build`]: super::PoolBuilder::build
    /// [`PoolError::Runtime`]: super::PoolError::Runtime
    ///
    /// ```rust
    /// use clockworker::pool::{PoolBuilder, PoolError, ShardHost};
    /// use clockworker::ExecutorBuilder;
    /// use std::future::Future;
    ///
    /// /// A host that cannot start shard 1 (say, its NUMA node has no memory left).
    /// struct Picky;
    ///
    /// impl ShardHost for Picky {
    ///     type Runtime = ();
    ///     fn build(&self, shard: usize) -> std::io::Result<()> {
    ///         if shard == 1 {
    ///             return Err(std::io::Error::other("no runtime for shard 1"));
    ///         }
    ///         Ok(())
    ///     }
    ///     fn block_on<F: Future>(&self, _: &mut (), future: F) -> F::Output {
    ///         futures_lite::future::block_on(future)
    ///     }
    /// }
    ///
    /// let result = PoolBuilder::new(|_| ExecutorBuilder::new().with_queue(0u8, 1))
    ///     .host(Picky)
    ///     .shards(2)
    ///     .build();
    /// assert!(matches!(result, Err(PoolError::Runtime { shard: 1, .. })));
    /// ```
    fn build(&self, shard: usize) -> io::Result<Self::Runtime>;

    /// Runs `future` to completion on the calling (shard) thread, inside `runtime`, and
    /// returns its output. The future is `!Send` in general and is called once per
    /// shard. Whatever I/O or timers the host offers to tasks must be usable while it
    /// runs; a panic out of `future` should propagate (it ends the shard's thread and
    /// is reported by [`Pool::shutdown`](super::Pool::shutdown)).
    ///
    /// The host can wrap the run future, e.g. to observe how long a shard ran:
    ///
    /// ```rust
    /// use clockworker::pool::{PoolBuilder, ShardHost, SmolHost};
    /// use clockworker::ExecutorBuilder;
    /// use std::future::Future;
    /// use std::time::Instant;
    ///
    /// struct Timed;
    ///
    /// impl ShardHost for Timed {
    ///     type Runtime = ();
    ///     fn build(&self, _shard: usize) -> std::io::Result<()> {
    ///         Ok(())
    ///     }
    ///     fn block_on<F: Future>(&self, runtime: &mut (), future: F) -> F::Output {
    ///         let start = Instant::now();
    ///         let output = SmolHost.block_on(runtime, future);
    ///         eprintln!("shard ran for {:?}", start.elapsed());
    ///         output
    ///     }
    /// }
    ///
    /// let pool = PoolBuilder::new(|_| ExecutorBuilder::new().with_queue(0u8, 1))
    ///     .host(Timed)
    ///     .shards(1)
    ///     .build()
    ///     .unwrap();
    /// pool.shutdown().unwrap(); // prints "shard ran for ..."
    /// ```
    fn block_on<F: Future>(&self, runtime: &mut Self::Runtime, future: F) -> F::Output;
}

/// The default host: a tokio `current_thread` runtime per shard, with every driver the
/// tokio build has (`enable_all`), so tasks on the shard use tokio's sockets and timers.
/// Inside it the run loop returns to tokio through its deferred-wake list, as any
/// clockworker executor does inside tokio.
///
/// It is a host only with the `tokio` feature (on by default). Without it,
/// [`PoolBuilder::new`](super::PoolBuilder::new) still starts from `TokioHost`, but
/// the pool builds only once another host is chosen with
/// [`host`](super::PoolBuilder::host), e.g. [`SmolHost`].
///
/// ```rust
/// use clockworker::pool::{PoolBuilder, TokioHost};
/// use clockworker::ExecutorBuilder;
/// use std::time::Duration;
///
/// let pool = PoolBuilder::new(|_| ExecutorBuilder::new().with_queue(0u8, 1))
///     .host(TokioHost) // the default; naming it changes nothing
///     .shards(1)
///     .build()
///     .unwrap();
/// // tokio's timers (and sockets) work in the shard's tasks. (Make the timer inside the
/// // task: `tokio::time::sleep` needs the runtime where it is called.)
/// let slept = pool.spawn(0, async {
///     tokio::time::sleep(Duration::from_millis(1)).await;
/// });
/// let slept = slept.unwrap();
/// futures_lite::future::block_on(slept).unwrap();
/// pool.shutdown().unwrap();
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioHost;

#[cfg(feature = "tokio")]
impl ShardHost for TokioHost {
    type Runtime = tokio::runtime::Runtime;

    fn build(&self, _shard: usize) -> io::Result<Self::Runtime> {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    }

    fn block_on<F: Future>(&self, runtime: &mut Self::Runtime, future: F) -> F::Output {
        runtime.block_on(future)
    }
}

/// A host without a runtime of its own: the shard thread blocks on its run future with
/// futures-lite's `block_on` (the thread parks while nothing is ready, and wakes from
/// any thread), as smol's building blocks do.
///
/// smol's I/O and timers (`async-io`) work in tasks on this host: with no thread inside
/// `async_io::block_on`, async-io drives its reactor from a thread of its own and wakes
/// the shard from there. To drive that reactor on the shard threads instead, write a
/// host around `async_io::block_on` (see [`ShardHost`]). tokio's sockets
/// and timers do not work here (there is no tokio runtime); tokio's channels do.
///
/// ```rust
/// use clockworker::pool::{PoolBuilder, SmolHost};
/// use clockworker::ExecutorBuilder;
/// use std::time::Duration;
///
/// let pool = PoolBuilder::new(|_| ExecutorBuilder::new().with_queue(0u8, 1))
///     .host(SmolHost)
///     .shards(1)
///     .build()
///     .unwrap();
/// let slept = pool.spawn(0, async {
///     async_io::Timer::after(Duration::from_millis(1)).await;
/// });
/// futures_lite::future::block_on(slept.unwrap()).unwrap();
/// pool.shutdown().unwrap();
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct SmolHost;

impl ShardHost for SmolHost {
    type Runtime = ();

    fn build(&self, _shard: usize) -> io::Result<()> {
        Ok(())
    }

    fn block_on<F: Future>(&self, _runtime: &mut (), future: F) -> F::Output {
        futures_lite::future::block_on(future)
    }
}
