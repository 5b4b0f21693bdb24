//! The executor's statistics: snapshots of counters and histograms that are cheap
//! enough to stay on (every update is a plain add on the executor thread).
//!
//! Every snapshot is cumulative since the executor (or the group) began. The
//! difference of two snapshots, `later.since(&earlier)` or `later - earlier`, gives
//! the figures of the interval between them: one phase of a program.

mod histogram;

use std::fmt;
use std::ops::Sub;
use std::time::Duration;

pub(crate) use histogram::AtomicLog2Histogram;
pub use histogram::Log2Histogram;

/// Per-queue statistics, as returned by
/// [`Executor::queue_stats`](crate::Executor::queue_stats).
///
/// A snapshot: the counters are cumulative since the executor was built; `ready` and
/// `weight` are as of the call.
///
/// ```rust
/// use clockworker::ExecutorBuilder;
///
/// let executor = ExecutorBuilder::new().with_queue("jobs", 2).build().unwrap();
/// let jobs = executor.queue("jobs").unwrap();
/// let done = jobs.spawn(async { 1 });
/// let aborted = jobs.spawn(async { 2 });
/// aborted.abort();
/// assert_eq!(executor.queue_stats("jobs").unwrap().ready, 2); // not run yet
/// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// let (done, aborted) = runtime.block_on(executor.run_until(async { (done.await, aborted.await) }));
/// assert!(done.is_ok() && aborted.unwrap_err().is_cancelled());
///
/// let stats = executor.queue_stats("jobs").unwrap();
/// assert_eq!((stats.key, stats.weight), ("jobs", 2));
/// assert_eq!((stats.spawned, stats.completed, stats.cancelled), (2, 1, 1));
/// assert_eq!(stats.ready, 0);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct QueueStats<K> {
    /// The queue's key.
    pub key: K,
    /// The queue's weight.
    pub weight: u32,
    /// CPU time spent polling this queue's tasks.
    pub service_time: Duration,
    /// Polls of this queue's tasks.
    pub polls: u64,
    /// Tasks spawned onto the queue.
    pub spawned: u64,
    /// Tasks that ran to completion.
    pub completed: u64,
    /// Tasks cancelled (aborted, or dropped by shutdown) before completing. A cancelled
    /// task whose future panics while being dropped counts as panicked instead.
    pub cancelled: u64,
    /// Tasks that panicked: in a poll, or in their future's `Drop` (after completing,
    /// or while being cancelled).
    pub panicked: u64,
    /// Tasks ready to run right now.
    pub ready: usize,
    /// Time from becoming ready to being polled.
    pub queue_delay: Log2Histogram,
    /// Duration of each poll, one count per poll.
    ///
    /// Sampled where polls are short: after a poll of under 1 µs, the next few polls
    /// (4 to 11) of tasks whose last measured poll was under 1 µs too may end without
    /// a clock read, as may the first polls of new tasks of a future type whose last
    /// measured first poll was under 1 µs. The poll measured right after every other
    /// such run counts once for itself and once for each poll of the two runs before
    /// it (it comes from the same tasks, and run lengths vary, so it is a fair
    /// sample). Every other poll counts with its own duration: the polls of tasks
    /// whose last measured poll took 1 µs or more, and every poll in queues with a
    /// timed scheduler ([`LAS`](crate::scheduler::LAS)), in task groups, or whose
    /// scheduler observes polls. `service_time` stays exact: the read that ends a run
    /// charges all of it. Read from inside a task while a run is open, `service_time`
    /// lags by that run (at most 11 polls) and `poll_time` by up to two runs, until
    /// they close, at the latest when the run loop's turn ends.
    /// docs/OVERHEAD_ANALYSIS.md measures what this saves; `tests/sim_short_polls.rs`
    /// checks that the sampled quantiles stay within one bucket of the exact ones.
    pub poll_time: Log2Histogram,
}

/// Executor-wide statistics, as returned by [`Executor::stats`](crate::Executor::stats).
///
/// ```rust
/// use clockworker::{yield_now, ExecutorBuilder};
///
/// let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
/// let queue = executor.queue(0).unwrap();
/// let _parked = queue.spawn(std::future::pending::<()>()); // never finishes
/// let task = queue.spawn(yield_now()); // two polls
/// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// runtime.block_on(executor.run_until(task)).unwrap();
///
/// let stats = executor.stats();
/// assert_eq!(stats.polls, 3);
/// assert_eq!(stats.live_tasks, 1);
/// println!("busy {:?}, idle {:?}", stats.busy_time, stats.idle_time);
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ExecutorStats {
    /// Task polls.
    pub polls: u64,
    /// Time spent polling tasks.
    pub busy_time: Duration,
    /// Time the run loop was parked with nothing to run.
    pub idle_time: Duration,
    /// Times the run loop returned to the host runtime with tasks still ready: because
    /// `driver_yield` (or the host-poll interval) elapsed, because a slice of a queue
    /// outranked by tasks waiting on the host was about to begin, or because tokio's
    /// cooperative budget was spent.
    pub driver_yields: u64,
    /// Longest stretch the run loop kept the thread before returning to the host.
    pub max_driver_gap: Duration,
    /// Tasks alive (spawned and not yet finished or cancelled).
    pub live_tasks: usize,
}

/// Statistics of one task group (a tenant, a connection: see
/// [`QueueHandle::group`](crate::QueueHandle::group)), as returned by
/// [`QueueHandle::group_stats`](crate::QueueHandle::group_stats) and
/// [`Executor::group_stats`](crate::Executor::group_stats).
///
/// Kept on every queue, whatever its scheduler. A group's figures live as long as the
/// group does: while one of its tasks or a handle from `group(..)` is alive. Keep the
/// handle to keep counting across quiet spells.
///
/// ```rust
/// use clockworker::ExecutorBuilder;
///
/// let executor = ExecutorBuilder::new().with_queue("api", 1).build().unwrap();
/// let tenant = executor.queue("api").unwrap().group("tenant-7");
/// let tasks: Vec<_> = (0..3).map(|i| tenant.spawn(async move { i })).collect();
/// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// runtime.block_on(executor.run_until(async {
///     for task in tasks {
///         task.await.unwrap();
///     }
/// }));
/// let stats = tenant.group_stats().unwrap();
/// assert_eq!((stats.spawned, stats.completed, stats.polls), (3, 3, 3));
/// assert_eq!(stats.queue_delay.count(), 3);
/// println!("{stats}");
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct GroupStats<K> {
    /// The key of the group's queue.
    pub key: K,
    /// The group's id: the hash of the value given to `QueueHandle::group`.
    pub group: u64,
    /// CPU time spent polling the group's tasks (dropping the future of a cancelled
    /// task counts toward its queue's `service_time` only).
    pub service_time: Duration,
    /// Polls of the group's tasks.
    pub polls: u64,
    /// Tasks spawned in the group.
    pub spawned: u64,
    /// Tasks that ran to completion.
    pub completed: u64,
    /// Tasks cancelled (aborted, or dropped by shutdown) before they finished.
    pub cancelled: u64,
    /// Tasks whose poll panicked, or whose future's `Drop` panicked as it was
    /// cancelled.
    pub panicked: u64,
    /// Time from becoming ready to being polled, one sample per poll.
    pub queue_delay: Log2Histogram,
}

impl<K: Copy> QueueStats<K> {
    /// The figures of the interval since `earlier`, a snapshot of the same queue: the
    /// counters, times and histograms are differences; `key`, `weight` and `ready` are
    /// `self`'s (they are states, not sums). Also written `self - earlier`.
    ///
    /// ```rust
    /// use clockworker::ExecutorBuilder;
    ///
    /// let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    /// let queue = executor.queue(0).unwrap();
    /// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// runtime.block_on(executor.run_until(queue.spawn(async {}))).unwrap();
    /// let warm_up = executor.queue_stats(0).unwrap();
    /// let tasks: Vec<_> = (0..5).map(|_| queue.spawn(async {})).collect();
    /// runtime.block_on(executor.run_until(async {
    ///     for task in tasks {
    ///         task.await.unwrap();
    ///     }
    /// }));
    /// let phase = executor.queue_stats(0).unwrap() - warm_up;
    /// assert_eq!((phase.spawned, phase.completed, phase.polls), (5, 5, 5));
    /// ```
    pub fn since(&self, earlier: &QueueStats<K>) -> QueueStats<K> {
        QueueStats {
            key: self.key,
            weight: self.weight,
            service_time: self.service_time.saturating_sub(earlier.service_time),
            polls: self.polls.saturating_sub(earlier.polls),
            spawned: self.spawned.saturating_sub(earlier.spawned),
            completed: self.completed.saturating_sub(earlier.completed),
            cancelled: self.cancelled.saturating_sub(earlier.cancelled),
            panicked: self.panicked.saturating_sub(earlier.panicked),
            ready: self.ready,
            queue_delay: self.queue_delay.since(&earlier.queue_delay),
            poll_time: self.poll_time.since(&earlier.poll_time),
        }
    }
}

impl ExecutorStats {
    /// The figures of the interval since `earlier`: the counters and times are
    /// differences; `max_driver_gap` (a maximum since the executor was built, which no
    /// difference recovers) and `live_tasks` (a state) are `self`'s. Also written
    /// `self - earlier`.
    ///
    /// ```rust
    /// use clockworker::ExecutorBuilder;
    ///
    /// let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    /// let queue = executor.queue(0).unwrap();
    /// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// runtime.block_on(executor.run_until(queue.spawn(async {}))).unwrap();
    /// let before = executor.stats();
    /// runtime.block_on(executor.run_until(queue.spawn(clockworker::yield_now()))).unwrap();
    /// assert_eq!((executor.stats() - before).polls, 2);
    /// ```
    pub fn since(&self, earlier: &ExecutorStats) -> ExecutorStats {
        ExecutorStats {
            polls: self.polls.saturating_sub(earlier.polls),
            busy_time: self.busy_time.saturating_sub(earlier.busy_time),
            idle_time: self.idle_time.saturating_sub(earlier.idle_time),
            driver_yields: self.driver_yields.saturating_sub(earlier.driver_yields),
            max_driver_gap: self.max_driver_gap,
            live_tasks: self.live_tasks,
        }
    }
}

impl<K: Copy> GroupStats<K> {
    /// The figures of the interval since `earlier`, a snapshot of the same group (all
    /// of them differences but `key` and `group`). Also written `self - earlier`.
    ///
    /// ```rust
    /// use clockworker::ExecutorBuilder;
    ///
    /// let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    /// let tenant = executor.queue(0).unwrap().group(1);
    /// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// runtime.block_on(executor.run_until(tenant.spawn(async {}))).unwrap();
    /// let before = tenant.group_stats().unwrap();
    /// runtime.block_on(executor.run_until(tenant.spawn(async {}))).unwrap();
    /// let phase = tenant.group_stats().unwrap() - before;
    /// assert_eq!((phase.spawned, phase.completed), (1, 1));
    /// ```
    pub fn since(&self, earlier: &GroupStats<K>) -> GroupStats<K> {
        GroupStats {
            key: self.key,
            group: self.group,
            service_time: self.service_time.saturating_sub(earlier.service_time),
            polls: self.polls.saturating_sub(earlier.polls),
            spawned: self.spawned.saturating_sub(earlier.spawned),
            completed: self.completed.saturating_sub(earlier.completed),
            cancelled: self.cancelled.saturating_sub(earlier.cancelled),
            panicked: self.panicked.saturating_sub(earlier.panicked),
            queue_delay: self.queue_delay.since(&earlier.queue_delay),
        }
    }
}

impl<K: Copy> Sub for QueueStats<K> {
    type Output = QueueStats<K>;

    /// `self.since(&earlier)`.
    fn sub(self, earlier: QueueStats<K>) -> QueueStats<K> {
        self.since(&earlier)
    }
}

impl Sub for ExecutorStats {
    type Output = ExecutorStats;

    /// `self.since(&earlier)`.
    fn sub(self, earlier: ExecutorStats) -> ExecutorStats {
        self.since(&earlier)
    }
}

impl<K: Copy> Sub for GroupStats<K> {
    type Output = GroupStats<K>;

    /// `self.since(&earlier)`.
    fn sub(self, earlier: GroupStats<K>) -> GroupStats<K> {
        self.since(&earlier)
    }
}

/// One line: `1204 polls, busy 3.2ms, idle 1.01s, 12 driver yields, longest without
/// the host 310µs, 3 live tasks`.
///
/// ```rust
/// let stats = clockworker::ExecutorStats::default();
/// assert!(stats.to_string().starts_with("0 polls, busy 0ns"));
/// ```
impl fmt::Display for ExecutorStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} polls, busy {:?}, idle {:?}, {} driver yields, longest without the host \
             {:?}, {} live tasks",
            self.polls,
            self.busy_time,
            self.idle_time,
            self.driver_yields,
            self.max_driver_gap,
            self.live_tasks
        )
    }
}

/// Two lines: the queue's key, weight and task counts, then its CPU time, queue delay
/// and poll time.
///
/// ```rust
/// use clockworker::ExecutorBuilder;
///
/// let executor = ExecutorBuilder::new().with_queue("jobs", 2).build().unwrap();
/// let text = executor.queue_stats("jobs").unwrap().to_string();
/// assert!(text.starts_with("queue \"jobs\" (weight 2): 0 spawned"));
/// ```
impl<K: fmt::Debug> fmt::Display for QueueStats<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "queue {:?} (weight {}): {} spawned, {} completed, {} cancelled, {} panicked, \
             {} ready",
            self.key,
            self.weight,
            self.spawned,
            self.completed,
            self.cancelled,
            self.panicked,
            self.ready
        )?;
        write!(
            f,
            "  {} polls, {:?} of CPU; queue delay: {}; poll time: {}",
            self.polls, self.service_time, self.queue_delay, self.poll_time
        )
    }
}

/// Two lines: the group's queue and id with its task counts, then its CPU time and
/// queue delay.
impl<K: fmt::Debug> fmt::Display for GroupStats<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "group {:#x} of queue {:?}: {} spawned, {} completed, {} cancelled, {} panicked",
            self.group, self.key, self.spawned, self.completed, self.cancelled, self.panicked
        )?;
        write!(
            f,
            "  {} polls, {:?} of CPU; queue delay: {}",
            self.polls, self.service_time, self.queue_delay
        )
    }
}
