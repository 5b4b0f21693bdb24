//! `ExecutorBuilder`: queues, timing settings and their validation.

use std::collections::HashSet;
use std::rc::Rc;
use std::time::Duration;

use crate::controller::{AttachedController, WeightController};
use crate::core::Config;
use crate::eevdf::{Eevdf, MAX_WEIGHT};
use crate::error::BuildError;
use crate::executor::Executor;
use crate::queue::QueueKey;
use crate::ready::Ready;
use crate::scheduler::{QueueScheduler, RunnableFifo, Scheduler};
use crate::task::MAX_QUEUES;

/// Default target period in which every runnable queue gets a slice (2 ms): see
/// [`ExecutorBuilder::with_sched_latency`].
///
/// ```rust
/// use clockworker::{DEFAULT_MIN_SLICE, DEFAULT_SCHED_LATENCY};
///
/// // With two busy queues, each slice is max(2 ms / 2, 100 µs) = 1 ms.
/// let slice = (DEFAULT_SCHED_LATENCY / 2).max(DEFAULT_MIN_SLICE);
/// assert_eq!(slice, std::time::Duration::from_millis(1));
/// ```
pub const DEFAULT_SCHED_LATENCY: Duration = Duration::from_millis(2);
/// Default shortest slice, however many queues are runnable (100 µs): see
/// [`ExecutorBuilder::with_min_slice`].
///
/// ```rust
/// use clockworker::{DEFAULT_MIN_SLICE, DEFAULT_SCHED_LATENCY};
///
/// // With 40 busy queues, 2 ms / 40 = 50 µs would be too short: slices stay at 100 µs.
/// let slice = (DEFAULT_SCHED_LATENCY / 40).max(DEFAULT_MIN_SLICE);
/// assert_eq!(slice, DEFAULT_MIN_SLICE);
/// ```
pub const DEFAULT_MIN_SLICE: Duration = Duration::from_micros(100);
/// Default longest stretch the run loop keeps the thread before letting the host
/// runtime poll its I/O and timers (250 µs): see
/// [`ExecutorBuilder::with_driver_yield`].
///
/// It bounds how late the host sees a timer or a socket while tasks keep the loop
/// busy, and how long other tasks of the host (beside `executor.run()` in a `LocalSet`)
/// wait (up to one task poll longer, since the loop checks the time between polls).
/// A shorter value makes the host more responsive and spends more of the thread on
/// returns to the host; the default keeps that cost a small fraction of the thread.
/// Measured: see `docs/BENCHMARKS.md`, section *Driver yield*
/// (`docs/BENCHMARKS.md#driver-yield`).
///
/// ```rust
/// use clockworker::{ExecutorBuilder, DEFAULT_DRIVER_YIELD};
///
/// // Halve the host's worst-case wait for an I/O-heavy service.
/// let executor = ExecutorBuilder::new()
///     .with_queue("requests", 1)
///     .with_driver_yield(DEFAULT_DRIVER_YIELD / 2)
///     .build()
///     .unwrap();
/// assert_eq!(executor.queue_keys(), ["requests"]);
/// ```
pub const DEFAULT_DRIVER_YIELD: Duration = Duration::from_micros(250);
/// Default for [`ExecutorBuilder::with_host_poll_interval`]: how often the run loop
/// returns to the host while the running queue is outranked by a queue whose tasks
/// wait on something (50 µs).
///
/// ```rust
/// use clockworker::{DEFAULT_DRIVER_YIELD, DEFAULT_HOST_POLL_INTERVAL};
///
/// // Shorter than the driver yield, or it would have no effect.
/// assert!(DEFAULT_HOST_POLL_INTERVAL < DEFAULT_DRIVER_YIELD);
/// ```
pub const DEFAULT_HOST_POLL_INTERVAL: Duration = Duration::from_micros(50);
/// Longest accepted duration setting (one hour): keeps nanosecond arithmetic far from
/// overflow. A longer value makes [`ExecutorBuilder::build`] fail with
/// [`BuildError::InvalidDuration`].
///
/// ```rust
/// use clockworker::{BuildError, ExecutorBuilder, MAX_DURATION_SETTING};
/// use std::time::Duration;
///
/// let too_long = MAX_DURATION_SETTING + Duration::from_secs(1);
/// let result = ExecutorBuilder::new()
///     .with_queue(0u8, 1)
///     .with_sched_latency(too_long)
///     .build();
/// assert!(matches!(
///     result,
///     Err(BuildError::InvalidDuration { setting: "sched_latency", .. })
/// ));
/// ```
pub const MAX_DURATION_SETTING: Duration = Duration::from_secs(3600);

/// Configures and builds an [`Executor`].
///
/// Add at least one queue ([`with_queue`](Self::with_queue),
/// [`with_queue_scheduler`](Self::with_queue_scheduler),
/// [`with_queue_latency`](Self::with_queue_latency)), adjust the timing settings if
/// the defaults do not suit, and call [`build`](Self::build), which checks the whole
/// configuration at once and returns a [`BuildError`] naming what is wrong. The
/// executor is created on the calling thread and stays there.
///
/// ```rust
/// use clockworker::ExecutorBuilder;
/// use std::time::Duration;
///
/// #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
/// enum Queue { Foreground, Background }
///
/// let executor = ExecutorBuilder::new()
///     .with_queue(Queue::Foreground, 8)
///     .with_queue(Queue::Background, 1)
///     .with_driver_yield(Duration::from_micros(200))
///     .build()
///     .expect("valid configuration");
/// assert_eq!(executor.queue_keys(), [Queue::Foreground, Queue::Background]);
/// ```
pub struct ExecutorBuilder<K> {
    queues: Vec<QueueSpec<K>>,
    sched_latency: Duration,
    min_slice: Duration,
    driver_yield: Duration,
    host_poll_interval: Duration,
    lag_tolerance: Duration,
    panic_on_task_panic: bool,
    controllers: Vec<AttachedController<K>>,
}

/// One queue as configured.
struct QueueSpec<K> {
    key: K,
    weight: u32,
    scheduler: QueueScheduler,
    /// Latency bound, for latency queues.
    latency: Option<Duration>,
}

impl<K: QueueKey> Default for ExecutorBuilder<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: QueueKey> ExecutorBuilder<K> {
    /// A builder with no queues and the default settings (the `DEFAULT_*` constants,
    /// no lag tolerance, task panics propagated). Same as `Default::default()`.
    ///
    /// ```rust
    /// use clockworker::{BuildError, ExecutorBuilder};
    ///
    /// // A builder without queues does not build.
    /// let empty = ExecutorBuilder::<u8>::new().build();
    /// assert!(matches!(empty, Err(BuildError::NoQueues)));
    /// ```
    pub fn new() -> Self {
        ExecutorBuilder {
            queues: Vec::new(),
            sched_latency: DEFAULT_SCHED_LATENCY,
            min_slice: DEFAULT_MIN_SLICE,
            driver_yield: DEFAULT_DRIVER_YIELD,
            host_poll_interval: DEFAULT_HOST_POLL_INTERVAL,
            lag_tolerance: Duration::ZERO,
            panic_on_task_panic: true,
            controllers: Vec::new(),
        }
    }

    /// Adds a queue with `weight` (its share of the CPU relative to the other queues,
    /// 1..=[`MAX_WEIGHT`]) and the default [`RunnableFifo`] scheduler.
    ///
    /// Weights are relative: with queues of weight 3 and 1 both busy, the first gets
    /// 3/4 of the time polling tasks. A queue without ready tasks takes nothing, so an
    /// idle foreground leaves the whole core to the background.
    ///
    /// ```rust
    /// use clockworker::ExecutorBuilder;
    ///
    /// let executor = ExecutorBuilder::new()
    ///     .with_queue("interactive", 3)
    ///     .with_queue("batch", 1)
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(executor.queue_stats("interactive").unwrap().weight, 3);
    /// ```
    pub fn with_queue(self, key: K, weight: u32) -> Self {
        self.with_queue_scheduler(key, weight, RunnableFifo::new())
    }

    /// Adds a queue with `weight` and a task scheduler of your choice: a built-in one
    /// from [`scheduler`](crate::scheduler) or your own [`Scheduler`].
    ///
    /// ```rust
    /// use clockworker::scheduler::LAS;
    /// use clockworker::ExecutorBuilder;
    ///
    /// // Tenants share the "api" queue; the least-served tenant's task runs first.
    /// let executor = ExecutorBuilder::new()
    ///     .with_queue_scheduler("api", 4, LAS::new())
    ///     .with_queue("maintenance", 1)
    ///     .build()
    ///     .unwrap();
    /// let api = executor.queue("api").unwrap();
    /// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// let reply = runtime.block_on(executor.run_until(api.group("tenant-a").spawn(async { 7 })));
    /// assert_eq!(reply.unwrap(), 7);
    /// ```
    pub fn with_queue_scheduler<S: Scheduler>(mut self, key: K, weight: u32, scheduler: S) -> Self {
        self.queues.push(QueueSpec {
            key,
            weight,
            scheduler: QueueScheduler::from_user(scheduler),
            latency: None,
        });
        self
    }

    /// Adds a *latency queue*: like [`with_queue`](Self::with_queue), but the queue
    /// asks for slices of length `bound` (so its virtual deadlines come early and it
    /// never holds the thread longer than `bound` plus one poll at a time), and when
    /// it becomes runnable it ends the running slice at the next poll boundary and is
    /// served next — as long as it has not used more than its weighted share.
    ///
    /// Guarantee (bound (c) of the EEVDF notes, `src/eevdf/RULES.md` in the
    /// repository): when work arrives for an idle
    /// latency queue whose demand stays within its share, its first task is polled
    /// after at most the poll in progress plus the time the run loop is away in the
    /// host (one `driver_yield` round). Tasks queued behind it in the same queue
    /// wait for it as usual; the queue's CPU share stays `weight / Σ weights`.
    ///
    /// ```rust
    /// use clockworker::ExecutorBuilder;
    /// use std::time::Duration;
    ///
    /// // Control messages: little CPU, 50 µs slices, served ahead of bulk work on arrival.
    /// let executor = ExecutorBuilder::new()
    ///     .with_queue_latency("control", 1, Duration::from_micros(50))
    ///     .with_queue("bulk", 4)
    ///     .build()
    ///     .unwrap();
    /// let control = executor.queue("control").unwrap();
    /// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// let ack = runtime.block_on(executor.run_until(control.spawn(async { "ack" })));
    /// assert_eq!(ack.unwrap(), "ack");
    /// ```
    pub fn with_queue_latency(mut self, key: K, weight: u32, bound: Duration) -> Self {
        self.queues.push(QueueSpec {
            key,
            weight,
            scheduler: QueueScheduler::from_user(RunnableFifo::new()),
            latency: Some(bound),
        });
        self
    }

    /// Target period in which every runnable queue gets one slice (default 2 ms,
    /// [`DEFAULT_SCHED_LATENCY`]): the slice is
    /// `max(sched_latency / runnable queues, min_slice)`. Shorter slices interleave
    /// the queues more finely; longer ones switch less often. Must be greater than
    /// zero, at most [`MAX_DURATION_SETTING`], and at least `min_slice`.
    ///
    /// `min_slice` bounds the slice from below: with its default of 100 µs, a
    /// `sched_latency` of 100 µs still gives 100 µs slices to two runnable queues, and
    /// one below 100 µs fails to build
    /// ([`BuildError::MinSliceAboveSchedLatency`](crate::BuildError::MinSliceAboveSchedLatency))
    /// unless [`with_min_slice`](Self::with_min_slice) lowers it too, as below.
    ///
    /// ```rust
    /// use clockworker::ExecutorBuilder;
    /// use std::time::Duration;
    ///
    /// // Two busy queues take turns every 50 µs instead of every 1 ms.
    /// let executor = ExecutorBuilder::new()
    ///     .with_queue("requests", 8)
    ///     .with_queue("background", 1)
    ///     .with_sched_latency(Duration::from_micros(100))
    ///     .with_min_slice(Duration::from_micros(50))
    ///     .build();
    /// assert!(executor.is_ok());
    /// ```
    pub fn with_sched_latency(mut self, latency: Duration) -> Self {
        self.sched_latency = latency;
        self
    }

    /// Shortest slice (default 100 µs, [`DEFAULT_MIN_SLICE`]), however many queues are
    /// runnable: the slice is `max(sched_latency / runnable queues, min_slice)`. Must
    /// not exceed `sched_latency`; lower both to get slices under 100 µs.
    ///
    /// ```rust
    /// use clockworker::{BuildError, ExecutorBuilder};
    /// use std::time::Duration;
    ///
    /// let result = ExecutorBuilder::new()
    ///     .with_queue(0u8, 1)
    ///     .with_min_slice(Duration::from_millis(5)) // above the 2 ms sched_latency
    ///     .build();
    /// assert!(matches!(
    ///     result,
    ///     Err(BuildError::MinSliceAboveSchedLatency { .. })
    /// ));
    /// ```
    pub fn with_min_slice(mut self, min_slice: Duration) -> Self {
        self.min_slice = min_slice;
        self
    }

    /// Longest stretch the run loop polls tasks before returning to the host runtime
    /// so it can poll I/O and timers (default 250 µs, [`DEFAULT_DRIVER_YIELD`]).
    ///
    /// The loop checks the time between task polls, so a single long poll can
    /// overrun it; [`ExecutorStats::max_driver_gap`](crate::ExecutorStats::max_driver_gap)
    /// records the longest stretch actually seen.
    ///
    /// ```rust
    /// use clockworker::ExecutorBuilder;
    /// use std::time::Duration;
    ///
    /// let executor = ExecutorBuilder::new()
    ///     .with_queue(0u8, 1)
    ///     .with_driver_yield(Duration::from_micros(100))
    ///     .build()
    ///     .unwrap();
    /// let queue = executor.queue(0).unwrap();
    /// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// runtime.block_on(executor.run_until(queue.spawn(async {}))).unwrap();
    /// assert_eq!(executor.stats().polls, 1);
    /// ```
    pub fn with_driver_yield(mut self, driver_yield: Duration) -> Self {
        self.driver_yield = driver_yield;
        self
    }

    /// How often the run loop returns to the host while the queue it serves is
    /// outranked — by a queue of higher weight, or by a latency queue — that has tasks
    /// waiting on something (a socket, a timer, a channel): default 50 µs
    /// ([`DEFAULT_HOST_POLL_INTERVAL`]), instead of every `driver_yield`.
    ///
    /// The run loop learns of a socket or timer only when the host polls its driver,
    /// i.e. when the loop returns to it. With background work running and foreground
    /// tasks parked on the host, a shorter turn lets the foreground see its wakes
    /// sooner; with nothing parked in an outranking queue, turns stay `driver_yield`
    /// long. Each return costs the host one poll of its driver, a small fraction of
    /// the interval (measured: see `docs/BENCHMARKS.md`, section *Driver yield*,
    /// `docs/BENCHMARKS.md#driver-yield`). A value at or above `driver_yield` turns
    /// this off.
    ///
    /// ```rust
    /// use clockworker::ExecutorBuilder;
    /// use std::time::Duration;
    ///
    /// // While the background runs and foreground tasks wait on sockets, return to the
    /// // host every 20 µs (instead of every 250 µs) so their wakes are seen sooner.
    /// let executor = ExecutorBuilder::new()
    ///     .with_queue("foreground", 8)
    ///     .with_queue("background", 1)
    ///     .with_host_poll_interval(Duration::from_micros(20))
    ///     .build();
    /// assert!(executor.is_ok());
    /// ```
    pub fn with_host_poll_interval(mut self, interval: Duration) -> Self {
        self.host_poll_interval = interval;
        self
    }

    /// How much CPU time a queue may owe the others and still be served (default 0:
    /// strict EEVDF, a queue runs only once it has received no more than its share).
    ///
    /// A queue that ran a burst beyond its share and then waits on the host (a
    /// foreground queue serving a request while the background is runnable) comes
    /// back owing a small debt of service. With no tolerance it waits until the queue
    /// running meanwhile repays that, which a cooperative task can only do at its next
    /// yield: a whole chunk of background work, for a debt far smaller than the chunk.
    /// With a tolerance of at least the debt, it is served at once. Shares over time
    /// stay exact (the debt is still repaid); what grows is how far a queue may run
    /// ahead of its share before others get theirs, by at most `tolerance`. See
    /// `docs/LATENCY_QUEUES.md` for the measured effect on an HTTP server.
    ///
    /// Zero turns it off; otherwise at most [`MAX_DURATION_SETTING`].
    ///
    /// ```rust
    /// use clockworker::ExecutorBuilder;
    /// use std::time::Duration;
    ///
    /// // A request burst that overran its share by up to 50 µs is not held back.
    /// let executor = ExecutorBuilder::new()
    ///     .with_queue("requests", 8)
    ///     .with_queue("background", 1)
    ///     .with_lag_tolerance(Duration::from_micros(50))
    ///     .build();
    /// assert!(executor.is_ok());
    /// ```
    pub fn with_lag_tolerance(mut self, tolerance: Duration) -> Self {
        self.lag_tolerance = tolerance;
        self
    }

    /// Whether a panicking task makes `run`/`run_until` panic (`true`, the default), or
    /// is caught so that its handle resolves to [`JoinError::Panic`](crate::JoinError).
    /// This covers panics in a poll, and in the future's `Drop` right after it
    /// completed (dropped inside that poll). A panic in the future's `Drop` when the task
    /// is cancelled (abort, shutdown, the executor dropped) always goes to the handle
    /// and is never re-raised, as in tokio: cancellation must reach every task.
    ///
    /// With `false`, a task panic is caught and the executor keeps running:
    ///
    /// ```rust
    /// use clockworker::ExecutorBuilder;
    ///
    /// let executor = ExecutorBuilder::new()
    ///     .with_queue(0u8, 1)
    ///     .with_panic_on_task_panic(false)
    ///     .build()
    ///     .unwrap();
    /// let queue = executor.queue(0).unwrap();
    /// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// let result = runtime.block_on(executor.run_until(queue.spawn(async {
    ///     panic!("boom");
    /// })));
    /// let error = result.unwrap_err();
    /// assert!(error.is_panic());
    /// assert_eq!(executor.queue_stats(0).unwrap().panicked, 1);
    /// ```
    ///
    /// With the default (`true`), the panic leaves `run_until`:
    ///
    /// ```rust
    /// use clockworker::ExecutorBuilder;
    /// use std::panic::{catch_unwind, AssertUnwindSafe};
    ///
    /// let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    /// let queue = executor.queue(0).unwrap();
    /// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// let outcome = catch_unwind(AssertUnwindSafe(|| {
    ///     runtime.block_on(executor.run_until(queue.spawn(async { panic!("boom") })))
    /// }));
    /// assert!(outcome.is_err());
    /// ```
    pub fn with_panic_on_task_panic(mut self, panic: bool) -> Self {
        self.panic_on_task_panic = panic;
        self
    }

    /// Lets `controller` change the weight of queue `key` while the executor runs
    /// (see [`WeightController`]). A controller for a key that names no queue makes
    /// `build` fail with [`BuildError::UnknownQueue`].
    ///
    /// ```rust
    /// use clockworker::{BacklogController, BuildError, ExecutorBuilder};
    ///
    /// // The background queue's weight grows from 1 by one per 100 ready tasks, up to 8.
    /// let executor = ExecutorBuilder::new()
    ///     .with_queue("requests", 8)
    ///     .with_queue("background", 1)
    ///     .with_weight_controller("background", BacklogController::new(1, 8, 100))
    ///     .build();
    /// assert!(executor.is_ok());
    ///
    /// let typo = ExecutorBuilder::new()
    ///     .with_queue("background", 1)
    ///     .with_weight_controller("backgruond", BacklogController::new(1, 8, 100))
    ///     .build();
    /// assert!(matches!(typo, Err(BuildError::UnknownQueue("backgruond"))));
    /// ```
    pub fn with_weight_controller(mut self, key: K, controller: impl WeightController<K>) -> Self {
        self.controllers
            .push(AttachedController::new(key, Box::new(controller)));
        self
    }

    /// Validates the configuration and creates the executor on this thread.
    ///
    /// The executor is returned in an `Rc`: tasks and the code driving the run loop
    /// usually share it. It is `!Send`; use [`Executor::remote`] to spawn onto it from
    /// other threads.
    ///
    /// ```rust
    /// use clockworker::{BuildError, ExecutorBuilder};
    ///
    /// let duplicate = ExecutorBuilder::new()
    ///     .with_queue("a", 1)
    ///     .with_queue("a", 2)
    ///     .build();
    /// assert!(matches!(duplicate, Err(BuildError::DuplicateQueue("a"))));
    ///
    /// let executor = ExecutorBuilder::new().with_queue("a", 1).build().unwrap();
    /// assert!(!executor.is_shut_down());
    /// ```
    pub fn build(self) -> Result<Rc<Executor<K>>, BuildError<K>> {
        self.validate()?;
        let weights: Vec<u32> = self.queues.iter().map(|q| q.weight).collect();
        let keys: Vec<K> = self.queues.iter().map(|q| q.key).collect();
        let mut eevdf = Eevdf::new(
            &weights,
            duration_ns(self.sched_latency),
            duration_ns(self.min_slice),
        );
        eevdf.set_lag_tolerance(duration_ns(self.lag_tolerance));
        for (index, queue) in self.queues.iter().enumerate() {
            if let Some(bound) = queue.latency {
                eevdf.set_latency(index, duration_ns(bound));
            }
        }
        let schedulers = self.queues.into_iter().map(|q| q.scheduler).collect();
        let config = Config {
            driver_yield_ns: duration_ns(self.driver_yield),
            host_poll_ns: duration_ns(self.host_poll_interval),
            panic_on_task_panic: self.panic_on_task_panic,
        };
        Ok(Executor::new(
            keys,
            Ready::new(schedulers, eevdf),
            config,
            self.controllers,
        ))
    }

    fn validate(&self) -> Result<(), BuildError<K>> {
        if self.queues.is_empty() {
            return Err(BuildError::NoQueues);
        }
        if self.queues.len() > MAX_QUEUES {
            return Err(BuildError::TooManyQueues {
                count: self.queues.len(),
                max: MAX_QUEUES,
            });
        }
        let mut seen = HashSet::new();
        for queue in &self.queues {
            let (key, weight) = (queue.key, queue.weight);
            if let Some(bound) = queue.latency {
                check_duration("latency_bound", bound)?;
            }
            if weight == 0 {
                return Err(BuildError::ZeroWeight(key));
            }
            if weight > MAX_WEIGHT {
                return Err(BuildError::WeightTooLarge { key, weight });
            }
            if !seen.insert(key) {
                return Err(BuildError::DuplicateQueue(key));
            }
        }
        for attached in &self.controllers {
            if !seen.contains(&attached.key) {
                return Err(BuildError::UnknownQueue(attached.key));
            }
        }
        check_duration("sched_latency", self.sched_latency)?;
        check_duration("min_slice", self.min_slice)?;
        check_duration("driver_yield", self.driver_yield)?;
        check_duration("host_poll_interval", self.host_poll_interval)?;
        check_duration_or_zero("lag_tolerance", self.lag_tolerance)?;
        if self.min_slice > self.sched_latency {
            return Err(BuildError::MinSliceAboveSchedLatency {
                min_slice: self.min_slice,
                sched_latency: self.sched_latency,
            });
        }
        Ok(())
    }
}

fn check_duration<K>(setting: &'static str, value: Duration) -> Result<(), BuildError<K>> {
    check_duration_bounds(setting, value, false)
}

/// As `check_duration`, for settings where zero means "off".
fn check_duration_or_zero<K>(setting: &'static str, value: Duration) -> Result<(), BuildError<K>> {
    check_duration_bounds(setting, value, true)
}

fn check_duration_bounds<K>(
    setting: &'static str,
    value: Duration,
    zero_allowed: bool,
) -> Result<(), BuildError<K>> {
    if (value.is_zero() && !zero_allowed) || value > MAX_DURATION_SETTING {
        return Err(BuildError::InvalidDuration {
            setting,
            value,
            requirement: if zero_allowed {
                "must be at most one hour"
            } else {
                "must be greater than zero and at most one hour"
            },
        });
    }
    Ok(())
}

fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
