//! Typed errors: what went wrong when building an executor, spawning, or joining a task.

use std::any::Any;
use std::fmt;
use std::time::Duration;

use crate::eevdf::MAX_WEIGHT;

/// Why [`ExecutorBuilder::build`](crate::ExecutorBuilder::build) refused a configuration.
///
/// Every variant names the offending queue or setting, and `Display` says what to
/// change.
///
/// ```rust
/// use clockworker::{BuildError, ExecutorBuilder, MAX_WEIGHT};
///
/// let error = ExecutorBuilder::new()
///     .with_queue("bulk", MAX_WEIGHT + 1)
///     .build()
///     .unwrap_err();
/// assert_eq!(error, BuildError::WeightTooLarge { key: "bulk", weight: MAX_WEIGHT + 1 });
/// assert_eq!(
///     error.to_string(),
///     "queue \"bulk\" has weight 10001, above the maximum of 10000"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError<K> {
    /// No queue was added; an executor needs at least one.
    NoQueues,
    /// A queue was given weight 0; weights start at 1.
    ZeroWeight(K),
    /// A queue's weight is above [`MAX_WEIGHT`].
    WeightTooLarge {
        /// The queue.
        key: K,
        /// The weight that was asked for.
        weight: u32,
    },
    /// The same key was used for two queues.
    DuplicateQueue(K),
    /// More queues than an executor holds ([`MAX_QUEUES`](crate::MAX_QUEUES)).
    TooManyQueues {
        /// How many queues were added.
        count: usize,
        /// The most an executor holds.
        max: usize,
    },
    /// A weight controller was attached to a key that names no queue.
    UnknownQueue(K),
    /// A duration setting is zero or contradicts another setting.
    InvalidDuration {
        /// Which setting (`"sched_latency"`, `"min_slice"`, `"driver_yield"`,
        /// `"host_poll_interval"`, `"lag_tolerance"`, `"latency_bound"`).
        setting: &'static str,
        /// The value that was given.
        value: Duration,
        /// What a valid value looks like.
        requirement: &'static str,
    },
    /// `min_slice` is longer than `sched_latency`: the period in which every
    /// runnable queue gets a slice would be shorter than one slice. Either setting may
    /// be the one to change, and `min_slice` may be the default the caller never set.
    MinSliceAboveSchedLatency {
        /// The `min_slice` in force (given, or [`DEFAULT_MIN_SLICE`](crate::DEFAULT_MIN_SLICE)).
        min_slice: Duration,
        /// The `sched_latency` in force (given, or
        /// [`DEFAULT_SCHED_LATENCY`](crate::DEFAULT_SCHED_LATENCY)).
        sched_latency: Duration,
    },
}

impl<K: fmt::Debug> fmt::Display for BuildError<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::NoQueues => write!(f, "executor has no queues: add one with with_queue"),
            BuildError::ZeroWeight(key) => {
                write!(f, "queue {key:?} has weight 0: weights must be at least 1")
            }
            BuildError::WeightTooLarge { key, weight } => write!(
                f,
                "queue {key:?} has weight {weight}, above the maximum of {MAX_WEIGHT}"
            ),
            BuildError::DuplicateQueue(key) => write!(f, "queue {key:?} was added twice"),
            BuildError::TooManyQueues { count, max } => write!(
                f,
                "{count} queues were added; an executor holds at most {max}: \
                 put tenants in groups of one queue (QueueHandle::group) instead"
            ),
            BuildError::UnknownQueue(key) => {
                write!(
                    f,
                    "weight controller given for {key:?}, which names no queue"
                )
            }
            BuildError::InvalidDuration {
                setting,
                value,
                requirement,
            } => write!(f, "{setting} of {value:?} is invalid: {requirement}"),
            BuildError::MinSliceAboveSchedLatency {
                min_slice,
                sched_latency,
            } => write!(
                f,
                "min_slice ({min_slice:?}) is longer than sched_latency ({sched_latency:?}); a \
                 slice is max(sched_latency / runnable queues, min_slice), so lower \
                 min_slice with with_min_slice (default 100µs) to at most {sched_latency:?}, \
                 or raise sched_latency to at least {min_slice:?}"
            ),
        }
    }
}

impl<K: fmt::Debug> std::error::Error for BuildError<K> {}

/// Why a spawn or queue lookup failed.
///
/// ```rust
/// use clockworker::{ExecutorBuilder, SpawnError};
///
/// let executor = ExecutorBuilder::new().with_queue("io", 1).build().unwrap();
/// assert!(matches!(executor.queue("cpu"), Err(SpawnError::UnknownQueue("cpu"))));
///
/// let io = executor.queue("io").unwrap();
/// executor.shutdown();
/// assert!(matches!(io.try_spawn(async {}), Err(SpawnError::ShuttingDown)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SpawnError<K> {
    /// No queue with this key exists in the executor.
    UnknownQueue(K),
    /// The executor was shut down (or dropped); it takes no new tasks.
    ShuttingDown,
}

impl<K: fmt::Debug> fmt::Display for SpawnError<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpawnError::UnknownQueue(key) => write!(f, "no queue with key {key:?}"),
            SpawnError::ShuttingDown => write!(f, "executor is shut down and takes no new tasks"),
        }
    }
}

impl<K: fmt::Debug> std::error::Error for SpawnError<K> {}

/// Why a [`JoinHandle`](crate::JoinHandle) resolved without the task's output.
///
/// A task whose future panics while it is being dropped for a cancellation (aborted,
/// or its executor shut down or dropped, before it finished) resolves `Panic` with
/// that payload rather than `Cancelled`, as in tokio. Such a panic never aborts the
/// process and is never re-raised by the executor, whatever
/// [`with_panic_on_task_panic`](crate::ExecutorBuilder::with_panic_on_task_panic)
/// says: it reaches the handle, or is dropped with the payload if the handle is gone.
///
/// ```rust
/// use clockworker::{ExecutorBuilder, JoinError};
///
/// let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
/// let task = executor.queue(0).unwrap().spawn(std::future::pending::<()>());
/// task.abort();
/// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// match runtime.block_on(executor.run_until(task)) {
///     Ok(()) => unreachable!("the task never completes"),
///     Err(JoinError::Cancelled) => {} // aborted
///     Err(error) => panic!("unexpected: {error}"),
/// }
/// ```
#[non_exhaustive]
pub enum JoinError {
    /// The task was aborted, or the executor shut down (or was dropped) before it
    /// finished, and dropping its future went without a panic.
    Cancelled,
    /// The task panicked: in a poll (when the executor catches task panics), while its
    /// future was dropped after completing (ditto; the output is lost), or while its
    /// future was dropped for a cancellation (always). This holds the panic payload.
    Panic(Box<dyn Any + Send + 'static>),
}

impl JoinError {
    /// True when the task was cancelled: aborted, or its executor shut down or dropped
    /// before it finished.
    ///
    /// ```rust
    /// use clockworker::ExecutorBuilder;
    ///
    /// let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    /// let task = executor.queue(0).unwrap().spawn(async { 1 });
    /// executor.shutdown(); // cancels the task before it ever ran
    /// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// let error = runtime.block_on(task).unwrap_err();
    /// assert!(error.is_cancelled() && !error.is_panic());
    /// ```
    pub fn is_cancelled(&self) -> bool {
        matches!(self, JoinError::Cancelled)
    }

    /// True when the task panicked (and the panic was caught: see
    /// [`ExecutorBuilder::with_panic_on_task_panic`](crate::ExecutorBuilder::with_panic_on_task_panic)).
    ///
    /// ```rust
    /// use clockworker::ExecutorBuilder;
    ///
    /// let executor = ExecutorBuilder::new()
    ///     .with_queue(0u8, 1)
    ///     .with_panic_on_task_panic(false) // resolve the handle instead of unwinding
    ///     .build()
    ///     .unwrap();
    /// let task = executor.queue(0).unwrap().spawn(async { panic!("disk full") });
    /// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// let error = runtime.block_on(executor.run_until(task)).unwrap_err();
    /// assert!(error.is_panic());
    /// assert_eq!(error.to_string(), "task panicked: disk full");
    /// ```
    pub fn is_panic(&self) -> bool {
        matches!(self, JoinError::Panic(_))
    }

    /// The panic payload, for `std::panic::resume_unwind`.
    ///
    /// # Panics
    /// When the error is not a panic (check [`is_panic`](Self::is_panic) first, or use
    /// [`try_into_panic`](Self::try_into_panic)).
    ///
    /// ```rust
    /// use clockworker::ExecutorBuilder;
    ///
    /// let executor = ExecutorBuilder::new()
    ///     .with_queue(0u8, 1)
    ///     .with_panic_on_task_panic(false) // resolve the handle instead of unwinding
    ///     .build()
    ///     .unwrap();
    /// let task = executor.queue(0).unwrap().spawn(async { panic!("disk full") });
    /// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// let error = runtime.block_on(executor.run_until(task)).unwrap_err();
    /// let payload = error.into_panic();
    /// assert_eq!(payload.downcast_ref::<&str>(), Some(&"disk full"));
    /// // Or re-raise it on this thread: std::panic::resume_unwind(payload)
    /// ```
    pub fn into_panic(self) -> Box<dyn Any + Send + 'static> {
        match self.try_into_panic() {
            Ok(payload) => payload,
            Err(_) => panic!("JoinError::into_panic called on a cancelled task's error"),
        }
    }

    /// The panic payload, or the error itself when it is not a panic.
    ///
    /// ```rust
    /// use clockworker::ExecutorBuilder;
    ///
    /// let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    /// let task = executor.queue(0).unwrap().spawn(async {});
    /// task.abort();
    /// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// let error = runtime.block_on(executor.run_until(task)).unwrap_err();
    /// match error.try_into_panic() {
    ///     Ok(payload) => std::panic::resume_unwind(payload),
    ///     Err(not_a_panic) => assert!(not_a_panic.is_cancelled()),
    /// }
    /// ```
    pub fn try_into_panic(self) -> Result<Box<dyn Any + Send + 'static>, JoinError> {
        match self {
            JoinError::Panic(payload) => Ok(payload),
            other => Err(other),
        }
    }
}

/// The panic message, when the payload is a string (as `panic!` makes it).
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> Option<&str> {
    payload
        .downcast_ref::<&'static str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::Cancelled => write!(f, "task was cancelled"),
            JoinError::Panic(payload) => match panic_message(payload.as_ref()) {
                Some(msg) => write!(f, "task panicked: {msg}"),
                None => write!(f, "task panicked"),
            },
        }
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::Cancelled => write!(f, "JoinError::Cancelled"),
            JoinError::Panic(payload) => match panic_message(payload.as_ref()) {
                Some(msg) => write!(f, "JoinError::Panic({msg:?})"),
                None => write!(f, "JoinError::Panic(..)"),
            },
        }
    }
}

impl std::error::Error for JoinError {}

/// Why [`Executor::set_weight`](crate::Executor::set_weight) refused a weight.
///
/// ```rust
/// use clockworker::{ExecutorBuilder, SetWeightError};
///
/// let executor = ExecutorBuilder::new().with_queue("bulk", 1).build().unwrap();
/// assert_eq!(executor.set_weight("bulk", 0), Err(SetWeightError::ZeroWeight("bulk")));
/// assert_eq!(executor.set_weight("blk", 4), Err(SetWeightError::UnknownQueue("blk")));
/// assert_eq!(executor.set_weight("bulk", 4), Ok(()));
/// assert_eq!(executor.queue_stats("bulk").unwrap().weight, 4);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SetWeightError<K> {
    /// No queue with this key exists in the executor.
    UnknownQueue(K),
    /// Weight 0 was asked for; weights start at 1.
    ZeroWeight(K),
    /// The weight is above [`MAX_WEIGHT`].
    WeightTooLarge {
        /// The queue.
        key: K,
        /// The weight that was asked for.
        weight: u32,
    },
}

impl<K: fmt::Debug> fmt::Display for SetWeightError<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetWeightError::UnknownQueue(key) => write!(f, "no queue with key {key:?}"),
            SetWeightError::ZeroWeight(key) => {
                write!(
                    f,
                    "queue {key:?} cannot get weight 0: weights must be at least 1"
                )
            }
            SetWeightError::WeightTooLarge { key, weight } => write!(
                f,
                "queue {key:?} cannot get weight {weight}: the maximum is {MAX_WEIGHT}"
            ),
        }
    }
}

impl<K: fmt::Debug> std::error::Error for SetWeightError<K> {}
