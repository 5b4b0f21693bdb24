//! [`Pool`]: spawning onto the shards, and shutting them down.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, ThreadId};

use super::pinning::PinStatus;
use super::shard::StopSignal;
use super::{PoolSpawnError, ShutdownError};
use crate::error::SpawnError;
use crate::queue::QueueKey;
use crate::remote_spawn::{RemoteJoinHandle, RemoteSpawner};

/// A running shard, as the pool sees it.
pub(super) struct Shard<K> {
    pub(super) spawner: RemoteSpawner<K>,
    pub(super) stop: Arc<StopSignal>,
    pub(super) thread_id: ThreadId,
    pub(super) pin: PinStatus,
}

/// Where the joining of the shard threads stands.
pub(super) enum JoinState {
    /// Nobody has joined the threads yet.
    Running(Vec<thread::JoinHandle<()>>),
    /// A `shutdown` call took the handles and is joining them; later calls wait on
    /// `Pool::joined` until it is done.
    Joining,
    /// Every thread ended; the shards that panicked, with their panic messages.
    Joined(Vec<(usize, Option<String>)>),
}

/// N shard threads, each running one executor; see the [module docs](super).
///
/// `Send + Sync` (share it in an `Arc` to spawn from many threads). Dropping it shuts
/// every shard down, like [`shutdown`](Self::shutdown).
///
/// ```rust
/// use clockworker::pool::PoolBuilder;
/// use clockworker::ExecutorBuilder;
/// use std::sync::Arc;
///
/// let pool = Arc::new(
///     PoolBuilder::new(|_| ExecutorBuilder::new().with_queue("work", 1))
///         .shards(2)
///         .build()
///         .unwrap(),
/// );
/// // Spawn from several threads at once; await the handles anywhere.
/// let threads: Vec<_> = (0..2u64)
///     .map(|i| {
///         let pool = pool.clone();
///         std::thread::spawn(move || {
///             let handle = pool.spawn("work", async move { i * 10 }).unwrap();
///             futures_lite::future::block_on(handle).unwrap()
///         })
///     })
///     .collect();
/// let sum: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
/// assert_eq!(sum, 10);
/// pool.shutdown().unwrap();
/// ```
pub struct Pool<K> {
    pub(super) shards: Vec<Shard<K>>,
    pub(super) next: AtomicUsize,
    pub(super) shut_down: AtomicBool,
    pub(super) join: Mutex<JoinState>,
    /// Notified when `join` becomes `Joined`.
    pub(super) joined: Condvar,
}

impl<K: QueueKey + Send + Sync> Pool<K> {
    /// Number of shards.
    ///
    /// ```rust
    /// use clockworker::pool::PoolBuilder;
    /// use clockworker::ExecutorBuilder;
    ///
    /// let pool = PoolBuilder::new(|_| ExecutorBuilder::new().with_queue(0u8, 1))
    ///     .shards(2)
    ///     .build()
    ///     .unwrap();
    /// // One task per shard.
    /// let handles: Vec<_> = (0..pool.shards())
    ///     .map(|shard| pool.spawn_on(shard, 0, async move { shard * 2 }).unwrap())
    ///     .collect();
    /// let results: Vec<_> = handles
    ///     .into_iter()
    ///     .map(|handle| futures_lite::future::block_on(handle).unwrap())
    ///     .collect();
    /// assert_eq!(results, [0, 2]);
    /// # pool.shutdown().unwrap();
    /// ```
    pub fn shards(&self) -> usize {
        self.shards.len()
    }

    /// Spawns `future` onto queue `key` of shard `shard`. The future runs on that
    /// shard's thread; the handle may be awaited from anywhere.
    ///
    /// ```rust
    /// use clockworker::pool::{current_shard, PoolBuilder, PoolSpawnError};
    /// use clockworker::ExecutorBuilder;
    ///
    /// let pool = PoolBuilder::new(|_| ExecutorBuilder::new().with_queue(0u8, 1))
    ///     .shards(2)
    ///     .build()
    ///     .unwrap();
    /// let handle = pool.spawn_on(1, 0, async { current_shard() }).unwrap();
    /// assert_eq!(futures_lite::future::block_on(handle).unwrap(), Some(1));
    /// assert!(matches!(
    ///     pool.spawn_on(2, 0, async {}),
    ///     Err(PoolSpawnError::ShardOutOfRange { shard: 2, shards: 2 })
    /// ));
    /// # pool.shutdown().unwrap();
    /// ```
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
    ///
    /// ```rust
    /// use clockworker::pool::{current_shard, PoolBuilder};
    /// use clockworker::ExecutorBuilder;
    /// use futures_lite::future::block_on;
    ///
    /// let pool = PoolBuilder::new(|_| ExecutorBuilder::new().with_queue(0u8, 1))
    ///     .shards(2)
    ///     .build()
    ///     .unwrap();
    /// let first = block_on(pool.spawn(0, async { current_shard() }).unwrap()).unwrap();
    /// let second = block_on(pool.spawn(0, async { current_shard() }).unwrap()).unwrap();
    /// assert_ne!(first, second); // two shards, taken in turn
    /// # pool.shutdown().unwrap();
    /// ```
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

    /// The id of shard `shard`'s thread, or `None` when there is no such shard.
    ///
    /// ```rust
    /// use clockworker::pool::PoolBuilder;
    /// use clockworker::ExecutorBuilder;
    ///
    /// let pool = PoolBuilder::new(|_| ExecutorBuilder::new().with_queue(0u8, 1))
    ///     .shards(1)
    ///     .build()
    ///     .unwrap();
    /// let ran_on = pool.spawn_on(0, 0, async { std::thread::current().id() }).unwrap();
    /// let ran_on = futures_lite::future::block_on(ran_on).unwrap();
    /// assert_eq!(pool.thread_id(0), Some(ran_on));
    /// assert_eq!(pool.thread_id(1), None);
    /// # pool.shutdown().unwrap();
    /// ```
    pub fn thread_id(&self, shard: usize) -> Option<ThreadId> {
        self.shards.get(shard).map(|s| s.thread_id)
    }

    /// Whether shard `shard`'s thread was pinned, and where (`None` when there is no
    /// such shard).
    ///
    /// ```rust
    /// use clockworker::pool::{PinStatus, PoolBuilder};
    /// use clockworker::ExecutorBuilder;
    ///
    /// let pool = PoolBuilder::new(|_| ExecutorBuilder::new().with_queue(0u8, 1))
    ///     .shards(1)
    ///     .build()
    ///     .unwrap();
    /// assert!(matches!(pool.pin_status(0), Some(PinStatus::NotRequested)));
    /// # pool.shutdown().unwrap();
    /// ```
    pub fn pin_status(&self, shard: usize) -> Option<&PinStatus> {
        self.shards.get(shard).map(|s| &s.pin)
    }

    /// True once [`shutdown`](Self::shutdown) was called.
    ///
    /// ```rust
    /// use clockworker::pool::{PoolBuilder, PoolSpawnError};
    /// use clockworker::ExecutorBuilder;
    ///
    /// let pool = PoolBuilder::new(|_| ExecutorBuilder::new().with_queue(0u8, 1))
    ///     .shards(1)
    ///     .build()
    ///     .unwrap();
    /// assert!(!pool.is_shut_down());
    /// pool.shutdown().unwrap();
    /// assert!(pool.is_shut_down());
    /// assert!(matches!(pool.spawn(0, async {}), Err(PoolSpawnError::ShutDown)));
    /// ```
    pub fn is_shut_down(&self) -> bool {
        self.shut_down.load(Ordering::Acquire)
    }

    /// Shuts every shard down and waits until all shard threads ended: new spawns fail
    /// with [`PoolSpawnError::ShutDown`]; each shard, on its own thread, cancels its
    /// pending tasks (their handles resolve `Cancelled`), drops its executor and
    /// runtime, and ends. Returns the panics of shards whose thread ended by a panic (a
    /// task panic with `with_panic_on_task_panic(true)`, the default).
    ///
    /// Idempotent, and safe to call from several threads at once: one call joins the
    /// threads and gets the panic payloads; every other call waits until it is done
    /// and then reports the same shards, with each payload replaced by its message
    /// (a `String`, or `()` when the payload was not a string).
    ///
    /// Called from a task on one of this pool's shards, it tells every shard to stop
    /// and returns `Ok(())` at once, without waiting (the calling shard can end only
    /// after the calling task's poll); a later call from outside, or dropping the
    /// pool, joins the threads.
    ///
    /// ```rust
    /// use clockworker::pool::PoolBuilder;
    /// use clockworker::{ExecutorBuilder, JoinError};
    /// use futures_lite::future::block_on;
    ///
    /// let pool = PoolBuilder::new(|_| ExecutorBuilder::new().with_queue(0u8, 1))
    ///     .shards(1)
    ///     .build()
    ///     .unwrap();
    /// // A task that never finishes is cancelled by the shutdown.
    /// let stuck = pool.spawn(0, std::future::pending::<()>()).unwrap();
    /// pool.shutdown().expect("no shard panicked");
    /// assert!(matches!(block_on(stuck), Err(JoinError::Cancelled)));
    /// ```
    pub fn shutdown(&self) -> Result<(), ShutdownError> {
        self.stop_all();
        if self.on_a_shard_thread() {
            return Ok(());
        }
        let mut state = self.join_state();
        loop {
            match &mut *state {
                JoinState::Running(threads) => {
                    let threads = std::mem::take(threads);
                    *state = JoinState::Joining;
                    drop(state);
                    let result = join_all(threads, None);
                    let messages = match &result {
                        Ok(()) => Vec::new(),
                        Err(error) => error.messages(),
                    };
                    *self.join_state() = JoinState::Joined(messages);
                    self.joined.notify_all();
                    return result;
                }
                JoinState::Joining => {
                    state = self
                        .joined
                        .wait(state)
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                }
                JoinState::Joined(messages) if messages.is_empty() => return Ok(()),
                JoinState::Joined(messages) => {
                    return Err(ShutdownError::from_messages(messages));
                }
            }
        }
    }
}

impl<K> Pool<K> {
    /// Marks the pool shut down and tells every shard to stop.
    fn stop_all(&self) {
        self.shut_down.store(true, Ordering::Release);
        for shard in &self.shards {
            shard.stop.stop();
        }
    }

    /// Whether the calling thread is one of this pool's shards.
    fn on_a_shard_thread(&self) -> bool {
        let me = thread::current().id();
        self.shards.iter().any(|shard| shard.thread_id == me)
    }

    fn join_state(&self) -> MutexGuard<'_, JoinState> {
        self.join
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Joins `threads` (skipping the thread `skip`, which cannot join itself) and collects
/// the panics of those that ended by one.
fn join_all(
    threads: Vec<thread::JoinHandle<()>>,
    skip: Option<ThreadId>,
) -> Result<(), ShutdownError> {
    let mut panics = Vec::new();
    for (shard, thread) in threads.into_iter().enumerate() {
        if Some(thread.thread().id()) == skip {
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

impl<K> Drop for Pool<K> {
    fn drop(&mut self) {
        self.stop_all();
        // No `shutdown` can be running (this is the last reference), so the state is
        // `Running` or `Joined`. Dropped on a shard thread (a task held the last
        // reference), that shard is told to stop and left to end by itself.
        let state = self
            .join
            .get_mut()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let JoinState::Running(threads) = state {
            let threads = std::mem::take(threads);
            // A shard's panic was the caller's to collect with `shutdown`.
            let _ = join_all(threads, Some(thread::current().id()));
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
