//! [`PoolBuilder`]: the pool's configuration, and starting the shard threads.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;

use super::handle::{JoinState, Pool, Shard};
use super::host::{ShardHost, TokioHost};
use super::pinning::Pinning;
use super::shard::{shard_main, MakeBuilder, ShardArgs, StartError, Started, StopSignal};
use super::PoolError;
use crate::builder::ExecutorBuilder;
use crate::queue::QueueKey;

/// Configures and starts a [`Pool`].
///
/// `H` is the host each shard runs its executor on: [`TokioHost`] (the default, a tokio
/// `current_thread` runtime per shard), [`SmolHost`](super::SmolHost), or your own
/// [`ShardHost`], chosen with [`host`](Self::host).
///
/// ```rust
/// use clockworker::pool::PoolBuilder;
/// use clockworker::ExecutorBuilder;
///
/// let pool = PoolBuilder::new(|_shard| {
///     ExecutorBuilder::new().with_queue("requests", 8).with_queue("compaction", 1)
/// })
/// .shards(2)
/// .thread_name("storage")
/// .build()
/// .expect("pool starts");
/// assert_eq!(pool.shards(), 2);
/// pool.shutdown().unwrap();
/// ```
pub struct PoolBuilder<K, H = TokioHost> {
    make: Arc<MakeBuilder<K>>,
    host: Arc<H>,
    shards: Option<usize>,
    pinning: Pinning,
    name: String,
    stack_size: Option<usize>,
}

impl<K: QueueKey + Send + Sync> PoolBuilder<K> {
    /// A pool whose shard `i` runs the executor that `make(i)` configures, on a tokio
    /// `current_thread` runtime (see [`host`](Self::host) for others). Every shard
    /// must have the same queue keys ([`PoolError::LayoutMismatch`] otherwise); the
    /// closure runs on the shard's own thread.
    ///
    /// The closure may vary the settings per shard, as long as the keys stay the same:
    ///
    /// ```rust
    /// use clockworker::pool::PoolBuilder;
    /// use clockworker::ExecutorBuilder;
    ///
    /// // Shard 0 also serves the admin API: its background gets a smaller share there.
    /// let pool = PoolBuilder::new(|shard| {
    ///     let background = if shard == 0 { 1 } else { 4 };
    ///     ExecutorBuilder::new()
    ///         .with_queue("requests", 8)
    ///         .with_queue("background", background)
    /// })
    /// .shards(2)
    /// .build()
    /// .unwrap();
    /// # pool.shutdown().unwrap();
    /// ```
    pub fn new<F>(make: F) -> Self
    where
        F: Fn(usize) -> ExecutorBuilder<K> + Send + Sync + 'static,
    {
        PoolBuilder {
            make: Arc::new(make),
            host: Arc::new(TokioHost),
            shards: None,
            pinning: Pinning::None,
            name: "clockworker".to_owned(),
            stack_size: None,
        }
    }
}

impl<K: QueueKey + Send + Sync, H> PoolBuilder<K, H> {
    /// Runs every shard on `host` instead: each shard thread builds its own runtime with
    /// [`ShardHost::build`] and blocks on its run loop with [`ShardHost::block_on`].
    ///
    /// ```rust
    /// use clockworker::pool::{PoolBuilder, SmolHost};
    /// use clockworker::ExecutorBuilder;
    ///
    /// let pool = PoolBuilder::new(|_| ExecutorBuilder::new().with_queue(0u8, 1))
    ///     .host(SmolHost)
    ///     .shards(1)
    ///     .build()
    ///     .unwrap();
    /// let handle = pool.spawn(0, async { "on smol" }).unwrap();
    /// assert_eq!(futures_lite::future::block_on(handle).unwrap(), "on smol");
    /// # pool.shutdown().unwrap();
    /// ```
    pub fn host<H2: ShardHost>(self, host: H2) -> PoolBuilder<K, H2> {
        PoolBuilder {
            make: self.make,
            host: Arc::new(host),
            shards: self.shards,
            pinning: self.pinning,
            name: self.name,
            stack_size: self.stack_size,
        }
    }

    /// Number of shards (threads). Default: `std::thread::available_parallelism()`.
    ///
    /// ```rust
    /// use clockworker::pool::{PoolBuilder, PoolError};
    /// use clockworker::ExecutorBuilder;
    ///
    /// let make = |_| ExecutorBuilder::new().with_queue(0u8, 1);
    /// let pool = PoolBuilder::new(make).shards(3).build().unwrap();
    /// assert_eq!(pool.shards(), 3);
    /// # pool.shutdown().unwrap();
    /// assert!(matches!(PoolBuilder::new(make).shards(0).build(), Err(PoolError::NoShards)));
    /// ```
    pub fn shards(mut self, shards: usize) -> Self {
        self.shards = Some(shards);
        self
    }

    /// Pins shard `i` to the `i`-th CPU the building thread may run on (its
    /// `sched_getaffinity` set, in increasing order; wrapping around when there are
    /// more shards than CPUs). Best effort: see [`Pool::pin_status`].
    ///
    /// ```rust
    /// use clockworker::pool::{PinStatus, PoolBuilder};
    /// use clockworker::ExecutorBuilder;
    ///
    /// let pool = PoolBuilder::new(|_| ExecutorBuilder::new().with_queue(0u8, 1))
    ///     .shards(1)
    ///     .pin_to_cores()
    ///     .build()
    ///     .unwrap(); // a pinning failure does not fail the build
    /// match pool.pin_status(0).unwrap() {
    ///     PinStatus::Pinned { cpu } => println!("shard 0 runs on CPU {cpu}"),
    ///     PinStatus::Failed { error, .. } => println!("not pinned: {error}"),
    ///     _ => unreachable!("pinning was asked for"),
    /// }
    /// # pool.shutdown().unwrap();
    /// ```
    pub fn pin_to_cores(mut self) -> Self {
        self.pinning = Pinning::AllowedCpus;
        self
    }

    /// Pins shard `i` to `cpus[i % cpus.len()]` (an empty list pins nothing). Best
    /// effort: see [`Pool::pin_status`].
    ///
    /// ```rust
    /// use clockworker::pool::{PinStatus, PoolBuilder};
    /// use clockworker::ExecutorBuilder;
    ///
    /// // Both shards on CPU 0 (shard 1 wraps around the one-entry list).
    /// let pool = PoolBuilder::new(|_| ExecutorBuilder::new().with_queue(0u8, 1))
    ///     .shards(2)
    ///     .pin_to_cpus([0])
    ///     .build()
    ///     .unwrap();
    /// for shard in 0..2 {
    ///     assert!(matches!(
    ///         pool.pin_status(shard),
    ///         Some(PinStatus::Pinned { cpu: 0 } | PinStatus::Failed { cpu: Some(0), .. })
    ///     ));
    /// }
    /// # pool.shutdown().unwrap();
    /// ```
    pub fn pin_to_cpus(mut self, cpus: impl IntoIterator<Item = usize>) -> Self {
        self.pinning = Pinning::cpus(cpus.into_iter().collect());
        self
    }

    /// Names the shard threads `"{prefix}-{i}"` (default prefix `"clockworker"`). With
    /// the `metrics` feature, the thread name is also the shard's `executor` label.
    ///
    /// ```rust
    /// use clockworker::pool::PoolBuilder;
    /// use clockworker::ExecutorBuilder;
    ///
    /// let pool = PoolBuilder::new(|_| ExecutorBuilder::new().with_queue(0u8, 1))
    ///     .shards(1)
    ///     .thread_name("db")
    ///     .build()
    ///     .unwrap();
    /// let name = pool.spawn(0, async { std::thread::current().name().map(String::from) });
    /// let name = futures_lite::future::block_on(name.unwrap()).unwrap();
    /// assert_eq!(name.as_deref(), Some("db-0"));
    /// # pool.shutdown().unwrap();
    /// ```
    pub fn thread_name(mut self, prefix: impl Into<String>) -> Self {
        self.name = prefix.into();
        self
    }

    /// Stack size of the shard threads (default: the standard library's).
    ///
    /// ```rust
    /// use clockworker::pool::PoolBuilder;
    /// use clockworker::ExecutorBuilder;
    ///
    /// // Room for deeply recursive parsers in the shards' tasks.
    /// let pool = PoolBuilder::new(|_| ExecutorBuilder::new().with_queue(0u8, 1))
    ///     .shards(1)
    ///     .stack_size(8 << 20)
    ///     .build()
    ///     .unwrap();
    /// # pool.shutdown().unwrap();
    /// ```
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = Some(bytes);
        self
    }
}

impl<K: QueueKey + Send + Sync, H: ShardHost> PoolBuilder<K, H> {
    /// Starts the shard threads and returns once all of them run their executor.
    /// On error, the shards already started are shut down and joined first.
    ///
    /// ```rust
    /// use clockworker::pool::{PoolBuilder, PoolError};
    /// use clockworker::{BuildError, ExecutorBuilder};
    ///
    /// // Every shard's executor configuration is checked on its own thread.
    /// let error = PoolBuilder::new(|_| ExecutorBuilder::new().with_queue(0u8, 0))
    ///     .shards(2)
    ///     .build()
    ///     .unwrap_err();
    /// assert!(matches!(error, PoolError::Build { error: BuildError::ZeroWeight(0), .. }));
    /// ```
    pub fn build(self) -> Result<Pool<K>, PoolError<K>> {
        let count = self
            .shards
            .unwrap_or_else(|| thread::available_parallelism().map_or(1, |n| n.get()));
        if count == 0 {
            return Err(PoolError::NoShards);
        }
        let cpus = self.pinning.shard_cpus(count);
        let mut starting: Vec<Starting<K>> = Vec::with_capacity(count);
        let mut failure = None;
        for (index, cpu) in cpus.into_iter().enumerate() {
            let (tx, rx) = mpsc::channel();
            let stop = Arc::new(StopSignal::default());
            let args = ShardArgs {
                index,
                cpu,
                make: self.make.clone(),
                host: self.host.clone(),
                started: tx,
                stop: stop.clone(),
                label: format!("{}-{index}", self.name),
            };
            let mut thread = thread::Builder::new().name(args.label.clone());
            if let Some(bytes) = self.stack_size {
                thread = thread.stack_size(bytes);
            }
            match thread.spawn(move || shard_main(args)) {
                Ok(thread) => starting.push(Starting { rx, stop, thread }),
                Err(error) => {
                    failure = Some(PoolError::ThreadSpawn {
                        shard: index,
                        error,
                    });
                    break;
                }
            }
        }
        // Collect every started shard's report, even after a failure, so that all of
        // them can be stopped and joined.
        let mut started = Vec::with_capacity(starting.len());
        for (index, shard) in starting.into_iter().enumerate() {
            let report = match shard.rx.recv() {
                Ok(Ok(report)) => Ok(report),
                Ok(Err(error)) => Err(error.into_pool_error(index)),
                // The builder closure (or the executor's build) panicked.
                Err(mpsc::RecvError) => Err(PoolError::ShardPanicked { shard: index }),
            };
            match report {
                Ok(report) => started.push((report, shard.stop, shard.thread)),
                Err(error) => {
                    failure.get_or_insert(error);
                    shard.stop.stop();
                    let _ = shard.thread.join();
                }
            }
        }
        if failure.is_none() {
            let layout = &started[0].0.keys;
            if let Some(index) = started.iter().position(|(r, ..)| &r.keys != layout) {
                failure = Some(PoolError::LayoutMismatch { shard: index });
            }
        }
        if let Some(error) = failure {
            for (_, stop, _) in &started {
                stop.stop();
            }
            for (_, _, thread) in started {
                let _ = thread.join();
            }
            return Err(error);
        }
        let mut shards = Vec::with_capacity(started.len());
        let mut threads = Vec::with_capacity(started.len());
        for (report, stop, thread) in started {
            shards.push(Shard {
                spawner: report.spawner,
                stop,
                thread_id: thread.thread().id(),
                pin: report.pin,
            });
            threads.push(thread);
        }
        Ok(Pool {
            shards,
            next: AtomicUsize::new(0),
            shut_down: AtomicBool::new(false),
            join: Mutex::new(JoinState::Running(threads)),
            joined: Default::default(),
        })
    }
}

impl<K: fmt::Debug, H> fmt::Debug for PoolBuilder<K, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolBuilder")
            .field("shards", &self.shards)
            .field("pinning", &self.pinning)
            .field("name", &self.name)
            .field("stack_size", &self.stack_size)
            .finish_non_exhaustive()
    }
}

/// A shard thread being started.
struct Starting<K> {
    rx: mpsc::Receiver<Result<Started<K>, StartError<K>>>,
    stop: Arc<StopSignal>,
    thread: thread::JoinHandle<()>,
}
