//! Counters and log2 histograms, cheap enough to stay on: every update is a plain
//! add on the executor thread.

use std::fmt;
use std::time::Duration;

/// Number of buckets: bucket `i` holds values in `[2^(i-1), 2^i)` ns (bucket 0 holds 0).
const BUCKETS: usize = 64;

/// A histogram of durations in power-of-two nanosecond buckets.
///
/// Recording is one add, so the executor keeps these on all the time: each
/// [`QueueStats`] has one of queue delays and one of poll times. Values are only
/// known to within a factor of two (the bucket they fell in).
///
/// ```rust
/// use clockworker::ExecutorBuilder;
///
/// let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
/// let queue = executor.queue(0).unwrap();
/// let tasks: Vec<_> = (0..3).map(|_| queue.spawn(async {})).collect();
/// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// runtime.block_on(executor.run_until(async { for task in tasks { task.await.unwrap() } }));
/// let stats = executor.queue_stats(0).unwrap();
/// assert_eq!(stats.poll_time.count(), 3);
/// println!("poll time: {:?}", stats.poll_time); // count, p50 and p99
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Log2Histogram {
    counts: [u64; BUCKETS],
}

impl Default for Log2Histogram {
    fn default() -> Self {
        Log2Histogram {
            counts: [0; BUCKETS],
        }
    }
}

impl Log2Histogram {
    #[inline]
    pub(crate) fn record(&mut self, ns: u64) {
        let bucket = (u64::BITS - ns.leading_zeros()) as usize;
        self.counts[bucket.min(BUCKETS - 1)] += 1;
    }

    /// Number of recorded values.
    ///
    /// ```rust
    /// use clockworker::{ExecutorBuilder, Log2Histogram};
    ///
    /// assert_eq!(Log2Histogram::default().count(), 0);
    ///
    /// let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    /// let queue = executor.queue(0).unwrap();
    /// let tasks: Vec<_> = (0..3).map(|_| queue.spawn(async {})).collect();
    /// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// runtime.block_on(executor.run_until(async { for task in tasks { task.await.unwrap() } }));
    /// // One queue delay per poll: three tasks, one poll each.
    /// assert_eq!(executor.queue_stats(0).unwrap().queue_delay.count(), 3);
    /// ```
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Upper bound of the bucket holding the `q`-quantile (`q` in 0..=1), or `None` when
    /// empty. Accurate to a factor of two, by construction. `q` outside 0..=1 is
    /// clamped into it.
    ///
    /// ```rust
    /// use clockworker::{ExecutorBuilder, Log2Histogram};
    /// use std::time::Duration;
    ///
    /// assert_eq!(Log2Histogram::default().quantile(0.99), None);
    ///
    /// let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    /// let task = executor.queue(0).unwrap().spawn(async {
    ///     std::thread::sleep(Duration::from_millis(1));
    /// });
    /// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// runtime.block_on(executor.run_until(task)).unwrap();
    /// let p99 = executor.queue_stats(0).unwrap().poll_time.quantile(0.99).unwrap();
    /// // The bucket's upper bound: at least the 1 ms poll, at most twice it (plus slack).
    /// assert!(p99 >= Duration::from_millis(1));
    /// ```
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (bucket, &count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Some(Duration::from_nanos(bucket_upper_ns(bucket)));
            }
        }
        None
    }

    /// `(upper bound, count)` of every non-empty bucket, in increasing order. The upper
    /// bound of a bucket is `2^i - 1` ns; the bucket holds values from half of that
    /// (rounded up) on.
    ///
    /// ```rust
    /// use clockworker::ExecutorBuilder;
    ///
    /// let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    /// let queue = executor.queue(0).unwrap();
    /// let tasks: Vec<_> = (0..3).map(|_| queue.spawn(async {})).collect();
    /// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// runtime.block_on(executor.run_until(async { for task in tasks { task.await.unwrap() } }));
    /// let poll_time = executor.queue_stats(0).unwrap().poll_time;
    /// let total: u64 = poll_time.buckets().map(|(_upper, count)| count).sum();
    /// assert_eq!(total, poll_time.count());
    /// for (upper, count) in poll_time.buckets() {
    ///     println!("<= {upper:?}: {count}");
    /// }
    /// ```
    pub fn buckets(&self) -> impl Iterator<Item = (Duration, u64)> + '_ {
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, &count)| count > 0)
            .map(|(bucket, &count)| (Duration::from_nanos(bucket_upper_ns(bucket)), count))
    }
}

fn bucket_upper_ns(bucket: usize) -> u64 {
    if bucket >= 63 {
        u64::MAX
    } else {
        (1u64 << bucket).saturating_sub(1)
    }
}

impl fmt::Debug for Log2Histogram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Log2Histogram")
            .field("count", &self.count())
            .field("p50", &self.quantile(0.5))
            .field("p99", &self.quantile(0.99))
            .finish()
    }
}

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
    /// Duration of each poll.
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

#[cfg(test)]
mod tests {
    use super::*;

    fn histogram(values: &[u64]) -> Log2Histogram {
        let mut histogram = Log2Histogram::default();
        for &ns in values {
            histogram.record(ns);
        }
        histogram
    }

    fn ns(d: Option<Duration>) -> u64 {
        d.expect("not empty").as_nanos() as u64
    }

    /// The q-quantile is the value of rank `ceil(q * n)` (1-based): with 3 values the
    /// median is the 2nd, and the 0.99-quantile of 2 values is the 2nd, never the 1st.
    #[test]
    fn quantile_takes_the_rank_rounded_up() {
        // One value per bucket: 1 (bucket upper 1), 100 (127), 10,000 (16,383).
        let three = histogram(&[1, 100, 10_000]);
        assert_eq!(ns(three.quantile(0.0)), 1, "q = 0 is the smallest value");
        assert_eq!(ns(three.quantile(0.34)), 127);
        assert_eq!(ns(three.quantile(0.5)), 127, "median of 3 is the 2nd");
        assert_eq!(ns(three.quantile(0.67)), 16_383);
        assert_eq!(ns(three.quantile(1.0)), 16_383);
        let two = histogram(&[1, 10_000]);
        assert_eq!(ns(two.quantile(0.5)), 1, "rank ceil(1.0) = 1");
        assert_eq!(ns(two.quantile(0.51)), 16_383);
        assert_eq!(
            ns(two.quantile(0.99)),
            16_383,
            "p99 of 2 values is the larger"
        );
    }

    #[test]
    fn quantile_clamps_q_and_is_none_when_empty() {
        assert_eq!(Log2Histogram::default().quantile(0.5), None);
        let h = histogram(&[1, 10_000]);
        assert_eq!(h.quantile(-1.0), h.quantile(0.0));
        assert_eq!(h.quantile(7.0), h.quantile(1.0));
        assert_eq!(h.count(), 2);
    }

    #[test]
    fn buckets_hold_values_up_to_their_upper_bound() {
        let h = histogram(&[0, 1, 2, 3, 4, 7, 8, u64::MAX]);
        let buckets: Vec<(u64, u64)> = h
            .buckets()
            .map(|(upper, count)| (upper.as_nanos() as u64, count))
            .collect();
        assert_eq!(
            buckets,
            [(0, 1), (1, 1), (3, 2), (7, 2), (15, 1), (u64::MAX, 1)]
        );
    }
}
