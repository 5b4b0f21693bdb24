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

/// Default target period in which every runnable queue gets a slice.
pub const DEFAULT_SCHED_LATENCY: Duration = Duration::from_millis(2);
/// Default shortest slice, however many queues are runnable.
pub const DEFAULT_MIN_SLICE: Duration = Duration::from_micros(100);
/// Default longest stretch the run loop keeps the thread before letting the host
/// runtime poll its I/O and timers.
///
/// It bounds how late the host sees a timer or a socket while tasks keep the loop
/// busy, and how long other tasks of the host (beside `executor.run()` in a `LocalSet`)
/// wait. A return to tokio and back costs 0.2–0.4 µs of CPU measured here (a tokio
/// `current_thread` runtime with timers and I/O enabled, under `block_on` and in a
/// `LocalSet`), so 250 µs spends under 0.2% of the thread on it; 500 µs gave
/// requests spawned by a `LocalSet` task beside the loop a dispatch delay of ~350 µs
/// at p50 in the `priority` bench, 250 µs ~190 µs.
pub const DEFAULT_DRIVER_YIELD: Duration = Duration::from_micros(250);
/// Default for [`ExecutorBuilder::with_host_poll_interval`]: how often the run loop
/// returns to the host while the running queue is outranked by a queue whose tasks
/// wait on something.
pub const DEFAULT_HOST_POLL_INTERVAL: Duration = Duration::from_micros(50);
/// Longest accepted duration setting: keeps nanosecond arithmetic far from overflow.
pub const MAX_DURATION_SETTING: Duration = Duration::from_secs(3600);

/// Configures and builds an [`Executor`].
///
/// ```
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
/// # drop(executor);
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
    /// A builder with no queues and the default settings.
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
    pub fn with_queue(self, key: K, weight: u32) -> Self {
        self.with_queue_scheduler(key, weight, RunnableFifo::new())
    }

    /// Adds a queue with `weight` and a task scheduler of your choice.
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
    /// Guarantee (see `src/eevdf/mod.rs`, bound (c)): when work arrives for an idle
    /// latency queue whose demand stays within its share, its first task is polled
    /// after at most the poll in progress plus the time the run loop is away in the
    /// host (one `driver_yield` round). Tasks queued behind it in the same queue
    /// wait for it as usual; the queue's CPU share stays `weight / Σ weights`.
    pub fn with_queue_latency(mut self, key: K, weight: u32, bound: Duration) -> Self {
        self.queues.push(QueueSpec {
            key,
            weight,
            scheduler: QueueScheduler::from_user(RunnableFifo::new()),
            latency: Some(bound),
        });
        self
    }

    /// Target period in which every runnable queue gets one slice (default 2 ms): the
    /// slice is `max(sched_latency / runnable queues, min_slice)`.
    pub fn with_sched_latency(mut self, latency: Duration) -> Self {
        self.sched_latency = latency;
        self
    }

    /// Shortest slice (default 100 µs), however many queues are runnable.
    pub fn with_min_slice(mut self, min_slice: Duration) -> Self {
        self.min_slice = min_slice;
        self
    }

    /// Longest stretch the run loop polls tasks before returning to the host runtime
    /// so it can poll I/O and timers (default 250 µs, [`DEFAULT_DRIVER_YIELD`]).
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
    /// long. A return to tokio and back costs 0.2–0.4 µs here (under 1% at 50 µs).
    /// A value at or above `driver_yield` turns this off.
    pub fn with_host_poll_interval(mut self, interval: Duration) -> Self {
        self.host_poll_interval = interval;
        self
    }

    /// How much CPU time a queue may owe the others and still be served (default 0:
    /// strict EEVDF, a queue runs only once it has received no more than its share).
    ///
    /// A queue that ran a burst beyond its share and then waits on the host (a
    /// foreground queue serving a request while the background is runnable) comes
    /// back owing a few µs. With no tolerance it waits until the queue running
    /// meanwhile repays that, which a cooperative task can only do at its next yield:
    /// a whole chunk of background work, for a debt of a few µs. With a tolerance of
    /// at least the debt, it is served at once. Shares over time stay exact (the debt
    /// is still repaid); what grows is how far a queue may run ahead of its share
    /// before others get theirs, by at most `tolerance`. See `docs/LATENCY_QUEUES.md`
    /// for the measured effect on an HTTP server.
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
    pub fn with_panic_on_task_panic(mut self, panic: bool) -> Self {
        self.panic_on_task_panic = panic;
        self
    }

    /// Lets `controller` change the weight of queue `key` while the executor runs
    /// (see [`WeightController`]). A controller for a key that names no queue makes
    /// `build` fail with [`BuildError::UnknownQueue`].
    pub fn with_weight_controller(mut self, key: K, controller: impl WeightController<K>) -> Self {
        self.controllers
            .push(AttachedController::new(key, Box::new(controller)));
        self
    }

    /// Validates the configuration and creates the executor on this thread.
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
            return Err(BuildError::InvalidDuration {
                setting: "min_slice",
                value: self.min_slice,
                requirement: "must not exceed sched_latency",
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
