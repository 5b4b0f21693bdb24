//! Counters and log2 histograms, cheap enough to stay on: every update is a plain
//! add on the executor thread.

use std::fmt;
use std::time::Duration;

/// Number of buckets: bucket `i` holds values in `[2^(i-1), 2^i)` ns (bucket 0 holds 0).
const BUCKETS: usize = 64;

/// A histogram of durations in power-of-two nanosecond buckets.
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
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Upper bound of the bucket holding the `q`-quantile (`q` in 0..=1), or `None` when
    /// empty. Accurate to a factor of two, by construction.
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

    /// `(upper bound, count)` of every non-empty bucket, in increasing order.
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
