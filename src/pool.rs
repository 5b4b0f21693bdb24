//! A thread-per-core pool: N shard threads, each a tokio `current_thread` runtime
//! running one clockworker [`Executor`] with the same queue layout.
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
//! CPU (if asked), builds a tokio `current_thread` runtime with every driver the tokio
//! build has (`enable_all`), calls the builder closure to get its
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
//! thread and its handle resolves `Cancelled`), drops the executor and its runtime,
//! and its thread ends; `shutdown` joins the threads.
//!
//! # Pinning
//!
//! [`PoolBuilder::pin_to_cores`] pins shard `i` to the `i`-th CPU the building thread
//! may run on (wrapping around), [`PoolBuilder::pin_to_cpus`] to a list of your own.
//! Pinning uses `sched_setaffinity` on Linux and is unsupported elsewhere. It is best
//! effort: a failure does not stop the pool; [`Pool::pin_status`] reports it.

use std::any::Any;
use std::cell::RefCell;
use std::fmt;
use std::future::{poll_fn, Future};
use std::io;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::task::Poll;
use std::thread::{self, ThreadId};

use atomic_waker::AtomicWaker;

use crate::builder::ExecutorBuilder;
use crate::error::{BuildError, SpawnError};
use crate::executor::Executor;
use crate::queue::QueueKey;
use crate::remote_spawn::{RemoteJoinHandle, RemoteSpawner};
use crate::task::JoinHandle;

/// Makes the executor builder of shard `i`.
type MakeBuilder<K> = dyn Fn(usize) -> ExecutorBuilder<K> + Send + Sync;

/// Configures and starts a [`Pool`].
pub struct PoolBuilder<K> {
    make: Arc<MakeBuilder<K>>,
    shards: Option<usize>,
    pinning: Pinning,
    name: String,
    stack_size: Option<usize>,
}

/// Which CPUs the shards are pinned to.
#[derive(Debug, Clone)]
enum Pinning {
    None,
    /// Shard `i` on the `i`-th CPU the building thread may run on.
    AllowedCpus,
    /// Shard `i` on `cpus[i % len]`.
    Cpus(Vec<usize>),
}

impl<K: QueueKey + Send + Sync> PoolBuilder<K> {
    /// A pool whose shard `i` runs the executor that `make(i)` configures. Every shard
    /// must have the same queue keys ([`PoolError::LayoutMismatch`] otherwise); the
    /// closure runs on the shard's own thread.
    pub fn new<F>(make: F) -> Self
    where
        F: Fn(usize) -> ExecutorBuilder<K> + Send + Sync + 'static,
    {
        PoolBuilder {
            make: Arc::new(make),
            shards: None,
            pinning: Pinning::None,
            name: "clockworker".to_owned(),
            stack_size: None,
        }
    }

    /// Number of shards (threads). Default: `std::thread::available_parallelism()`.
    pub fn shards(mut self, shards: usize) -> Self {
        self.shards = Some(shards);
        self
    }

    /// Pins shard `i` to the `i`-th CPU the building thread may run on (its
    /// `sched_getaffinity` set, in increasing order; wrapping around when there are
    /// more shards than CPUs). Best effort: see [`Pool::pin_status`].
    pub fn pin_to_cores(mut self) -> Self {
        self.pinning = Pinning::AllowedCpus;
        self
    }

    /// Pins shard `i` to `cpus[i % cpus.len()]` (an empty list pins nothing). Best
    /// effort: see [`Pool::pin_status`].
    pub fn pin_to_cpus(mut self, cpus: impl IntoIterator<Item = usize>) -> Self {
        let cpus: Vec<usize> = cpus.into_iter().collect();
        self.pinning = if cpus.is_empty() {
            Pinning::None
        } else {
            Pinning::Cpus(cpus)
        };
        self
    }

    /// Names the shard threads `"{prefix}-{i}"` (default prefix `"clockworker"`). With
    /// the `metrics` feature, the thread name is also the shard's `executor` label.
    pub fn thread_name(mut self, prefix: impl Into<String>) -> Self {
        self.name = prefix.into();
        self
    }

    /// Stack size of the shard threads (default: the standard library's).
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = Some(bytes);
        self
    }

    /// Starts the shard threads and returns once all of them run their executor.
    /// On error, the shards already started are shut down and joined first.
    pub fn build(self) -> Result<Pool<K>, PoolError<K>> {
        let count = self
            .shards
            .unwrap_or_else(|| thread::available_parallelism().map_or(1, |n| n.get()));
        if count == 0 {
            return Err(PoolError::NoShards);
        }
        let cpus = self.shard_cpus(count);
        let mut starting: Vec<Starting<K>> = Vec::with_capacity(count);
        let mut failure = None;
        for (index, cpu) in cpus.into_iter().enumerate() {
            let (tx, rx) = mpsc::channel();
            let stop = Arc::new(StopSignal::default());
            let shard_stop = stop.clone();
            let make = self.make.clone();
            let name = format!("{}-{index}", self.name);
            let label = name.clone();
            let mut thread = thread::Builder::new().name(name);
            if let Some(bytes) = self.stack_size {
                thread = thread.stack_size(bytes);
            }
            let spawned = thread.spawn(move || {
                shard_main(ShardArgs {
                    index,
                    cpu,
                    make,
                    started: tx,
                    stop: shard_stop,
                    label,
                })
            });
            match spawned {
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
            threads.push(Some(thread));
        }
        Ok(Pool {
            shards,
            next: AtomicUsize::new(0),
            shut_down: AtomicBool::new(false),
            threads: Mutex::new(threads),
        })
    }

    /// The CPU each shard pins itself to, if any, or why none can be chosen.
    fn shard_cpus(&self, count: usize) -> Vec<ShardCpu> {
        match &self.pinning {
            Pinning::None => (0..count).map(|_| ShardCpu::None).collect(),
            Pinning::Cpus(cpus) => (0..count)
                .map(|i| ShardCpu::Cpu(cpus[i % cpus.len()]))
                .collect(),
            Pinning::AllowedCpus => match affinity::allowed_cpus() {
                Ok(cpus) if !cpus.is_empty() => (0..count)
                    .map(|i| ShardCpu::Cpu(cpus[i % cpus.len()]))
                    .collect(),
                Ok(_) => (0..count)
                    .map(|_| ShardCpu::Unknown(io::ErrorKind::NotFound.into()))
                    .collect(),
                Err(error) => (0..count)
                    .map(|_| ShardCpu::Unknown(io::Error::new(error.kind(), error.to_string())))
                    .collect(),
            },
        }
    }
}

impl<K: fmt::Debug> fmt::Debug for PoolBuilder<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolBuilder")
            .field("shards", &self.shards)
            .field("pinning", &self.pinning)
            .field("name", &self.name)
            .field("stack_size", &self.stack_size)
            .finish_non_exhaustive()
    }
}

/// What a shard is told about pinning.
enum ShardCpu {
    None,
    Cpu(usize),
    /// Pinning was asked for, but the CPUs could not be listed.
    Unknown(io::Error),
}

/// A shard thread being started.
struct Starting<K> {
    rx: mpsc::Receiver<Result<Started<K>, StartError<K>>>,
    stop: Arc<StopSignal>,
    thread: thread::JoinHandle<()>,
}

/// What a shard sends back once its executor runs.
struct Started<K> {
    spawner: RemoteSpawner<K>,
    keys: Vec<K>,
    pin: PinStatus,
}

/// Why a shard could not start.
enum StartError<K> {
    Runtime(io::Error),
    Build(BuildError<K>),
}

impl<K> StartError<K> {
    fn into_pool_error(self, shard: usize) -> PoolError<K> {
        match self {
            StartError::Runtime(error) => PoolError::Runtime { shard, error },
            StartError::Build(error) => PoolError::Build { shard, error },
        }
    }
}

struct ShardArgs<K> {
    index: usize,
    cpu: ShardCpu,
    make: Arc<MakeBuilder<K>>,
    started: mpsc::Sender<Result<Started<K>, StartError<K>>>,
    stop: Arc<StopSignal>,
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    label: String,
}

thread_local! {
    /// The shard running on this thread: its index and its executor (an
    /// `Rc<Executor<K>>`, typed at run time since the key type is generic).
    static CURRENT_SHARD: RefCell<Option<(usize, Rc<dyn Any>)>> = const { RefCell::new(None) };
}

/// Clears `CURRENT_SHARD` when the shard's run ends, also when a task panic unwinds.
struct CurrentShardGuard;

impl Drop for CurrentShardGuard {
    fn drop(&mut self) {
        let previous = CURRENT_SHARD.try_with(|current| current.borrow_mut().take());
        drop(previous);
    }
}

/// The body of a shard thread.
fn shard_main<K: QueueKey + Send + Sync>(args: ShardArgs<K>) {
    let ShardArgs {
        index,
        cpu,
        make,
        started,
        stop,
        label,
    } = args;
    let pin = match cpu {
        ShardCpu::None => PinStatus::NotRequested,
        ShardCpu::Cpu(cpu) => match affinity::pin_current_thread(cpu) {
            Ok(()) => PinStatus::Pinned { cpu },
            Err(error) => PinStatus::Failed {
                cpu: Some(cpu),
                error,
            },
        },
        ShardCpu::Unknown(error) => PinStatus::Failed { cpu: None, error },
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            let _ = started.send(Err(StartError::Runtime(error)));
            return;
        }
    };
    let executor = match make(index).build() {
        Ok(executor) => executor,
        Err(error) => {
            let _ = started.send(Err(StartError::Build(error)));
            return;
        }
    };
    #[cfg(feature = "metrics")]
    executor.set_metrics_label(label);
    #[cfg(not(feature = "metrics"))]
    drop(label);
    CURRENT_SHARD.with(|current| {
        *current.borrow_mut() = Some((index, executor.clone() as Rc<dyn Any>));
    });
    let clear = CurrentShardGuard;
    let report = Started {
        spawner: executor.remote(),
        keys: executor.queue_keys().to_vec(),
        pin,
    };
    if started.send(Ok(report)).is_err() {
        // The builder is gone (it cannot be, as it waits for this report); stop.
        executor.shutdown();
        return;
    }
    drop(started);
    runtime.block_on(async {
        executor.run_until(stop.wait()).await;
        // On this thread and inside the runtime: pending tasks' futures (and the
        // sockets and timers they hold) are dropped here.
        executor.shutdown();
    });
    drop(clear);
    let _context = runtime.enter();
    drop(executor);
}

/// Tells a shard to stop: its run loop drives `wait()` and returns once it resolves.
#[derive(Default)]
struct StopSignal {
    stopped: AtomicBool,
    waker: AtomicWaker,
}

impl StopSignal {
    fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
        self.waker.wake();
    }

    fn wait(&self) -> impl Future<Output = ()> + '_ {
        poll_fn(move |cx| {
            if self.stopped.load(Ordering::Acquire) {
                return Poll::Ready(());
            }
            self.waker.register(cx.waker());
            if self.stopped.load(Ordering::Acquire) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
    }
}

/// Whether and where a shard's thread was pinned.
#[derive(Debug)]
#[non_exhaustive]
pub enum PinStatus {
    /// The pool was not asked to pin.
    NotRequested,
    /// The shard's thread runs only on `cpu`.
    Pinned {
        /// The CPU number (as the kernel counts them).
        cpu: usize,
    },
    /// Pinning failed; the thread runs where the OS puts it.
    Failed {
        /// The CPU asked for, or `None` when the CPUs could not be listed.
        cpu: Option<usize>,
        /// What the OS said (`Unsupported` off Linux).
        error: io::Error,
    },
}

/// A running shard, as the pool sees it.
struct Shard<K> {
    spawner: RemoteSpawner<K>,
    stop: Arc<StopSignal>,
    thread_id: ThreadId,
    pin: PinStatus,
}

/// N shard threads, each running one executor; see the [module docs](self).
///
/// `Send + Sync` (share it in an `Arc` to spawn from many threads). Dropping it shuts
/// every shard down, like [`shutdown`](Self::shutdown).
pub struct Pool<K> {
    shards: Vec<Shard<K>>,
    next: AtomicUsize,
    shut_down: AtomicBool,
    threads: Mutex<Vec<Option<thread::JoinHandle<()>>>>,
}

impl<K: QueueKey + Send + Sync> Pool<K> {
    /// Number of shards.
    pub fn shards(&self) -> usize {
        self.shards.len()
    }

    /// Spawns `future` onto queue `key` of shard `shard`. The future runs on that
    /// shard's thread; the handle may be awaited from anywhere.
    pub fn spawn_on<F>(
        &self,
        shard: usize,
        key: K,
        future: F,
    ) -> Result<RemoteJoinHandle<F::Output>, PoolSpawnError<K>>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let target = self
            .shards
            .get(shard)
            .ok_or(PoolSpawnError::ShardOutOfRange {
                shard,
                shards: self.shards.len(),
            })?;
        if self.shut_down.load(Ordering::Acquire) {
            return Err(PoolSpawnError::ShutDown);
        }
        target
            .spawner
            .spawn(key, future)
            .map_err(|error| match error {
                SpawnError::UnknownQueue(key) => PoolSpawnError::UnknownQueue(key),
                // `ShuttingDown`: the pool is shutting down, or this shard's thread ended
                // (a task panic propagated out of its run loop).
                _ if self.shut_down.load(Ordering::Acquire) => PoolSpawnError::ShutDown,
                _ => PoolSpawnError::ShardStopped { shard },
            })
    }

    /// Spawns `future` onto queue `key` of the next shard, round-robin.
    pub fn spawn<F>(
        &self,
        key: K,
        future: F,
    ) -> Result<RemoteJoinHandle<F::Output>, PoolSpawnError<K>>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let shard = self.next.fetch_add(1, Ordering::Relaxed) % self.shards.len();
        self.spawn_on(shard, key, future)
    }

    /// The id of shard `shard`'s thread.
    pub fn thread_id(&self, shard: usize) -> Option<ThreadId> {
        self.shards.get(shard).map(|s| s.thread_id)
    }

    /// Whether shard `shard`'s thread was pinned, and where.
    pub fn pin_status(&self, shard: usize) -> Option<&PinStatus> {
        self.shards.get(shard).map(|s| &s.pin)
    }

    /// True once [`shutdown`](Self::shutdown) was called.
    pub fn is_shut_down(&self) -> bool {
        self.shut_down.load(Ordering::Acquire)
    }

    /// Shuts every shard down and joins their threads: new spawns fail with
    /// [`PoolSpawnError::ShutDown`]; each shard, on its own thread, cancels its pending
    /// tasks (their handles resolve `Cancelled`), drops its executor and runtime, and
    /// ends. Returns the panics of shards whose thread ended by a panic (a task panic
    /// with `with_panic_on_task_panic(true)`, the default).
    ///
    /// Idempotent. Called from a task on a shard, that shard is told to stop but not
    /// joined (it ends after the calling task's poll); a call made while another is
    /// joining returns without waiting for it.
    pub fn shutdown(&self) -> Result<(), ShutdownError> {
        self.shut_down.store(true, Ordering::Release);
        for shard in &self.shards {
            shard.stop.stop();
        }
        let threads = std::mem::take(
            &mut *self
                .threads
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
        let me = thread::current().id();
        let mut panics = Vec::new();
        for (shard, thread) in threads.into_iter().enumerate() {
            let Some(thread) = thread else { continue };
            if thread.thread().id() == me {
                continue;
            }
            if let Err(payload) = thread.join() {
                panics.push((shard, payload));
            }
        }
        if panics.is_empty() {
            Ok(())
        } else {
            Err(ShutdownError::new(panics))
        }
    }
}

impl<K> Drop for Pool<K> {
    fn drop(&mut self) {
        self.shut_down.store(true, Ordering::Release);
        for shard in &self.shards {
            shard.stop.stop();
        }
        let threads = std::mem::take(
            self.threads
                .get_mut()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
        let me = thread::current().id();
        for thread in threads.into_iter().flatten() {
            if thread.thread().id() != me {
                // A shard's panic was the caller's to collect with `shutdown`.
                let _ = thread.join();
            }
        }
    }
}

impl<K: fmt::Debug> fmt::Debug for Pool<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("shards", &self.shards.len())
            .field("shut_down", &self.shut_down.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// The index of the pool shard running on this thread, if any.
pub fn current_shard() -> Option<usize> {
    CURRENT_SHARD
        .try_with(|current| current.borrow().as_ref().map(|(index, _)| *index))
        .ok()
        .flatten()
}

/// The executor of the pool shard running on this thread, if any and if its key type
/// is `K`. Tasks use it to reach their shard's queues, stats and weights.
///
/// Hold it (or the [`QueueHandle`](crate::QueueHandle)s it gives) only in `!Send`
/// tasks; a task spawned through the pool must drop it before its next `.await`.
pub fn current_executor<K: QueueKey>() -> Option<Rc<Executor<K>>> {
    CURRENT_SHARD
        .try_with(|current| {
            let current = current.borrow();
            let (_, executor) = current.as_ref()?;
            executor.clone().downcast::<Executor<K>>().ok()
        })
        .ok()
        .flatten()
}

/// Spawns a task, whose future may be `!Send`, onto queue `key` of the pool shard
/// running on this thread. Errors: [`PoolSpawnError::NotOnShard`] off a shard thread
/// (or for a key type other than the shard's), `UnknownQueue`, `ShutDown`.
pub fn spawn_local<K, F>(key: K, future: F) -> Result<JoinHandle<F::Output>, PoolSpawnError<K>>
where
    K: QueueKey,
    F: Future + 'static,
    F::Output: 'static,
{
    let executor = current_executor::<K>().ok_or(PoolSpawnError::NotOnShard)?;
    let queue = executor.queue(key).map_err(|error| match error {
        SpawnError::UnknownQueue(key) => PoolSpawnError::UnknownQueue(key),
        _ => PoolSpawnError::ShutDown,
    })?;
    queue
        .try_spawn(future)
        .map_err(|_| PoolSpawnError::ShutDown)
}

/// Why [`PoolBuilder::build`] failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum PoolError<K> {
    /// `shards(0)` was asked for.
    NoShards,
    /// A shard's executor configuration was refused (no queues, weight 0, …).
    Build {
        /// The shard.
        shard: usize,
        /// Why its `ExecutorBuilder::build` failed.
        error: BuildError<K>,
    },
    /// Shard `shard` has other queue keys, or another order, than shard 0.
    LayoutMismatch {
        /// The first shard whose layout differs.
        shard: usize,
    },
    /// The OS refused to start a shard thread.
    ThreadSpawn {
        /// The shard.
        shard: usize,
        /// What the OS said.
        error: io::Error,
    },
    /// A shard's tokio runtime could not be built.
    Runtime {
        /// The shard.
        shard: usize,
        /// What tokio said.
        error: io::Error,
    },
    /// A shard's thread panicked while starting (in the builder closure).
    ShardPanicked {
        /// The shard.
        shard: usize,
    },
}

impl<K: fmt::Debug> fmt::Display for PoolError<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoolError::NoShards => write!(f, "a pool needs at least one shard"),
            PoolError::Build { shard, error } => write!(f, "shard {shard}: {error}"),
            PoolError::LayoutMismatch { shard } => write!(
                f,
                "shard {shard} has other queue keys than shard 0: every shard needs the same layout"
            ),
            PoolError::ThreadSpawn { shard, error } => {
                write!(f, "shard {shard}: could not start its thread: {error}")
            }
            PoolError::Runtime { shard, error } => {
                write!(
                    f,
                    "shard {shard}: could not build its tokio runtime: {error}"
                )
            }
            PoolError::ShardPanicked { shard } => {
                write!(f, "shard {shard}: its thread panicked while starting")
            }
        }
    }
}

impl<K: fmt::Debug> std::error::Error for PoolError<K> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PoolError::ThreadSpawn { error, .. } | PoolError::Runtime { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// Why a spawn through the pool failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PoolSpawnError<K> {
    /// The shard index is not below the number of shards.
    ShardOutOfRange {
        /// The index asked for.
        shard: usize,
        /// Number of shards.
        shards: usize,
    },
    /// The shards have no queue with this key.
    UnknownQueue(K),
    /// The pool (or the shard's executor) was shut down.
    ShutDown,
    /// The shard's thread ended while the pool runs: a task panic propagated out of
    /// its run loop (see [`Pool::shutdown`]).
    ShardStopped {
        /// The shard.
        shard: usize,
    },
    /// [`spawn_local`] was called off a shard thread, or with another key type.
    NotOnShard,
}

impl<K: fmt::Debug> fmt::Display for PoolSpawnError<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoolSpawnError::ShardOutOfRange { shard, shards } => {
                write!(f, "shard {shard} is out of range: the pool has {shards}")
            }
            PoolSpawnError::UnknownQueue(key) => write!(f, "no queue with key {key:?}"),
            PoolSpawnError::ShutDown => write!(f, "the pool is shut down and takes no new tasks"),
            PoolSpawnError::ShardStopped { shard } => {
                write!(f, "shard {shard} stopped (a task panic ended its thread)")
            }
            PoolSpawnError::NotOnShard => {
                write!(f, "not on a pool shard thread with this key type")
            }
        }
    }
}

impl<K: fmt::Debug> std::error::Error for PoolSpawnError<K> {}

/// Shards whose threads ended by a panic, as found by [`Pool::shutdown`].
/// `Send + Sync`, so it converts into `io::Error` or other boxed errors.
pub struct ShutdownError {
    /// Each payload sits in a `Mutex` only to make the error `Sync`.
    panics: Vec<(usize, Mutex<Box<dyn Any + Send + 'static>>)>,
}

impl ShutdownError {
    fn new(panics: Vec<(usize, Box<dyn Any + Send + 'static>)>) -> Self {
        ShutdownError {
            panics: panics
                .into_iter()
                .map(|(shard, payload)| (shard, Mutex::new(payload)))
                .collect(),
        }
    }

    /// The shards that panicked, in increasing order.
    pub fn shards(&self) -> impl Iterator<Item = usize> + '_ {
        self.panics.iter().map(|(shard, _)| *shard)
    }

    /// Each panicked shard with its panic payload (for `std::panic::resume_unwind`).
    pub fn into_panics(self) -> Vec<(usize, Box<dyn Any + Send + 'static>)> {
        self.panics
            .into_iter()
            .map(|(shard, payload)| {
                let payload = payload
                    .into_inner()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                (shard, payload)
            })
            .collect()
    }
}

impl fmt::Debug for ShutdownError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShutdownError")
            .field("shards", &self.shards().collect::<Vec<_>>())
            .finish()
    }
}

impl fmt::Display for ShutdownError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "shard thread(s) panicked:")?;
        for (shard, payload) in &self.panics {
            let payload = payload
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            match crate::error::panic_message(payload.as_ref()) {
                Some(message) => write!(f, " shard {shard} ({message:?})")?,
                None => write!(f, " shard {shard}")?,
            }
        }
        Ok(())
    }
}

impl std::error::Error for ShutdownError {}

/// CPU affinity of the calling thread.
mod affinity {
    use std::io;

    /// The CPUs the calling thread may run on, in increasing order.
    #[cfg(target_os = "linux")]
    pub(super) fn allowed_cpus() -> io::Result<Vec<usize>> {
        // SAFETY: `cpu_set_t` is a plain array of integers; all zeroes is a valid
        // (empty) set.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: `set` is a valid, writable `cpu_set_t` and the size passed is its
        // size; pid 0 names the calling thread.
        let rc =
            unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok((0..set_size())
            // SAFETY: `cpu` is below `CPU_SETSIZE`, so `CPU_ISSET` reads inside `set`.
            .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
            .collect())
    }

    /// Restricts the calling thread to `cpu`.
    #[cfg(target_os = "linux")]
    pub(super) fn pin_current_thread(cpu: usize) -> io::Result<()> {
        if cpu >= set_size() {
            return Err(io::ErrorKind::InvalidInput.into());
        }
        // SAFETY: as in `allowed_cpus`, all zeroes is a valid empty set.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: `cpu < CPU_SETSIZE` (checked above), so `CPU_SET` writes inside `set`.
        unsafe { libc::CPU_SET(cpu, &mut set) };
        // SAFETY: `set` is a valid `cpu_set_t` and the size passed is its size; pid 0
        // names the calling thread.
        let rc =
            unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    #[cfg(target_os = "linux")]
    fn set_size() -> usize {
        usize::try_from(libc::CPU_SETSIZE).unwrap_or(0)
    }

    #[cfg(not(target_os = "linux"))]
    pub(super) fn allowed_cpus() -> io::Result<Vec<usize>> {
        Err(io::ErrorKind::Unsupported.into())
    }

    #[cfg(not(target_os = "linux"))]
    pub(super) fn pin_current_thread(_cpu: usize) -> io::Result<()> {
        Err(io::ErrorKind::Unsupported.into())
    }
}
