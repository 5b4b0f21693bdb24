//! The pool's errors: starting it, spawning onto it, and shards that panicked.

use std::any::Any;
use std::fmt;
use std::io;
use std::sync::Mutex;

use crate::error::BuildError;

/// Why [`PoolBuilder::build`](super::PoolBuilder::build) failed.
///
/// ```rust
/// use clockworker::pool::{PoolBuilder, PoolError};
/// use clockworker::ExecutorBuilder;
///
/// // Every shard must have the same queue keys, in the same order.
/// let error = PoolBuilder::new(|shard| {
///     let key = if shard == 0 { "a" } else { "b" };
///     ExecutorBuilder::new().with_queue(key, 1)
/// })
/// .shards(2)
/// .build()
/// .unwrap_err();
/// assert!(matches!(error, PoolError::LayoutMismatch { shard: 1 }));
/// println!("{error}");
/// ```
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
    /// A shard's host runtime ([`ShardHost::build`](super::ShardHost::build)) could
    /// not be built.
    Runtime {
        /// The shard.
        shard: usize,
        /// What the host said.
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
                    "shard {shard}: could not build its host runtime: {error}"
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
///
/// ```rust
/// use clockworker::pool::{spawn_local, PoolBuilder, PoolSpawnError};
/// use clockworker::ExecutorBuilder;
///
/// let pool = PoolBuilder::new(|_| ExecutorBuilder::new().with_queue("io", 1))
///     .shards(1)
///     .build()
///     .unwrap();
/// assert_eq!(pool.spawn("cpu", async {}).unwrap_err(), PoolSpawnError::UnknownQueue("cpu"));
/// // `spawn_local` works only on a shard's thread.
/// assert_eq!(spawn_local("io", async {}).unwrap_err(), PoolSpawnError::NotOnShard);
/// pool.shutdown().unwrap();
/// assert_eq!(pool.spawn("io", async {}).unwrap_err(), PoolSpawnError::ShutDown);
/// ```
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
    /// its run loop (see [`Pool::shutdown`](super::Pool::shutdown)).
    ShardStopped {
        /// The shard.
        shard: usize,
    },
    /// [`spawn_local`](super::spawn_local) was called off a shard thread, or with another key type.
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

/// Shards whose threads ended by a panic, as found by [`Pool::shutdown`](super::Pool::shutdown).
/// `Send + Sync`, so it converts into `io::Error` or other boxed errors.
///
/// A shard's thread ends by a panic when one of its tasks panics and the executor
/// propagates task panics (the default of
/// [`with_panic_on_task_panic`](crate::ExecutorBuilder::with_panic_on_task_panic)):
///
/// ```rust
/// use clockworker::pool::PoolBuilder;
/// use clockworker::ExecutorBuilder;
///
/// let pool = PoolBuilder::new(|_| ExecutorBuilder::new().with_queue(0u8, 1))
///     .shards(2)
///     .build()
///     .unwrap();
/// let doomed = pool.spawn_on(1, 0, async { panic!("corrupt page") }).unwrap();
/// assert!(futures_lite::future::block_on(doomed).is_err()); // the shard is gone
/// let error = pool.shutdown().unwrap_err();
/// assert_eq!(error.to_string(), "shard thread(s) panicked: shard 1 (\"corrupt page\")");
/// let as_io = std::io::Error::other(error); // `Send + Sync + 'static`
/// # drop(as_io);
/// ```
pub struct ShutdownError {
    /// Each payload sits in a `Mutex` only to make the error `Sync`.
    panics: Vec<(usize, Mutex<Box<dyn Any + Send + 'static>>)>,
}

impl ShutdownError {
    pub(super) fn new(panics: Vec<(usize, Box<dyn Any + Send + 'static>)>) -> Self {
        ShutdownError {
            panics: panics
                .into_iter()
                .map(|(shard, payload)| (shard, Mutex::new(payload)))
                .collect(),
        }
    }

    /// Each panicked shard with its panic message, if the payload was a string: what a
    /// later [`Pool::shutdown`](super::Pool::shutdown) call reports (the payloads
    /// themselves go to the call that joined the threads).
    pub(super) fn messages(&self) -> Vec<(usize, Option<String>)> {
        self.panics
            .iter()
            .map(|(shard, payload)| {
                let payload = payload
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                let message = crate::error::panic_message(payload.as_ref()).map(str::to_owned);
                (*shard, message)
            })
            .collect()
    }

    /// An error naming the same shards as [`messages`](Self::messages) did, whose
    /// payloads are the messages (`String`), or `()` for a payload without one.
    pub(super) fn from_messages(messages: &[(usize, Option<String>)]) -> Self {
        ShutdownError::new(
            messages
                .iter()
                .map(|(shard, message)| {
                    let payload: Box<dyn Any + Send> = match message {
                        Some(message) => Box::new(message.clone()),
                        None => Box::new(()),
                    };
                    (*shard, payload)
                })
                .collect(),
        )
    }

    /// The shards that panicked, in increasing order.
    ///
    /// ```rust
    /// use clockworker::pool::PoolBuilder;
    /// use clockworker::ExecutorBuilder;
    ///
    /// let pool = PoolBuilder::new(|_| ExecutorBuilder::new().with_queue(0u8, 1))
    ///     .shards(3)
    ///     .build()
    ///     .unwrap();
    /// for shard in [2, 0] {
    ///     let doomed = pool.spawn_on(shard, 0, async { panic!("bad input") }).unwrap();
    ///     let _ = futures_lite::future::block_on(doomed);
    /// }
    /// let error = pool.shutdown().unwrap_err();
    /// assert_eq!(error.shards().collect::<Vec<_>>(), [0, 2]);
    /// ```
    pub fn shards(&self) -> impl Iterator<Item = usize> + '_ {
        self.panics.iter().map(|(shard, _)| *shard)
    }

    /// Each panicked shard with its panic payload (for `std::panic::resume_unwind`).
    ///
    /// ```rust
    /// use clockworker::pool::PoolBuilder;
    /// use clockworker::ExecutorBuilder;
    ///
    /// let pool = PoolBuilder::new(|_| ExecutorBuilder::new().with_queue(0u8, 1))
    ///     .shards(1)
    ///     .build()
    ///     .unwrap();
    /// let doomed = pool.spawn(0, async { panic!("out of memory") }).unwrap();
    /// let _ = futures_lite::future::block_on(doomed);
    /// let panics = pool.shutdown().unwrap_err().into_panics();
    /// let (shard, payload) = &panics[0];
    /// assert_eq!(*shard, 0);
    /// assert_eq!(payload.downcast_ref::<&str>(), Some(&"out of memory"));
    /// ```
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
