//! [`Log2Histogram`]: durations in power-of-two buckets, one add per sample.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Number of buckets: bucket `i` holds values in `[2^(i-1), 2^i)` ns (bucket 0 holds 0).
const BUCKETS: usize = 64;

/// A histogram of durations in power-of-two nanosecond buckets.
///
/// Recording is one add, so the executor keeps these on all the time: each
/// [`QueueStats`](crate::QueueStats) has one of queue delays and one of poll times. Values are only
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
        self.counts[bucket_of(ns)] += 1;
    }

    /// Records `ns` `times` times.
    pub(crate) fn record_many(&mut self, ns: u64, times: u64) {
        self.counts[bucket_of(ns)] += times;
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
    /// the histogram is empty or `q` is not in 0..=1 (NaN included). Accurate to a
    /// factor of two, by construction.
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
    /// // Outside 0..=1: refused, not clamped.
    /// assert_eq!(executor.queue_stats(0).unwrap().poll_time.quantile(1.5), None);
    /// ```
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let total = self.count();
        if total == 0 || !(0.0..=1.0).contains(&q) {
            return None;
        }
        let rank = ((q * total as f64).ceil() as u64).max(1);
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

impl Log2Histogram {
    /// The samples of `self` that `earlier` does not hold, bucket by bucket: for two
    /// snapshots of one histogram, the samples recorded between them.
    ///
    /// ```rust
    /// use clockworker::ExecutorBuilder;
    ///
    /// let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    /// let queue = executor.queue(0).unwrap();
    /// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// runtime.block_on(executor.run_until(queue.spawn(async {}))).unwrap();
    /// let before = executor.queue_stats(0).unwrap().poll_time;
    /// runtime.block_on(executor.run_until(queue.spawn(async {}))).unwrap();
    /// let after = executor.queue_stats(0).unwrap().poll_time;
    /// assert_eq!((before.count(), after.since(&before).count()), (1, 1));
    /// ```
    pub fn since(&self, earlier: &Log2Histogram) -> Log2Histogram {
        let mut counts = [0; BUCKETS];
        for (bucket, count) in counts.iter_mut().enumerate() {
            *count = self.counts[bucket].saturating_sub(earlier.counts[bucket]);
        }
        Log2Histogram { counts }
    }
}

/// `count`, then p50, p90, p99 and the largest sample, each as the upper bound of its
/// bucket (`≤`), in the units `Duration`'s `Debug` picks: `12 samples, p50 ≤ 1.023µs,
/// p90 ≤ 4.095µs, p99 ≤ 16.383µs, max ≤ 16.383µs`; `no samples` when empty.
///
/// ```rust
/// use clockworker::Log2Histogram;
///
/// assert_eq!(Log2Histogram::default().to_string(), "no samples");
/// ```
impl fmt::Display for Log2Histogram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.count();
        if count == 0 {
            return f.write_str("no samples");
        }
        let at = |q| self.quantile(q).unwrap_or_default();
        write!(
            f,
            "{count} sample{}, p50 ≤ {:?}, p90 ≤ {:?}, p99 ≤ {:?}, max ≤ {:?}",
            if count == 1 { "" } else { "s" },
            at(0.5),
            at(0.9),
            at(0.99),
            at(1.0)
        )
    }
}

/// A [`Log2Histogram`] that can sit in shared task metadata (which must be `Sync`):
/// written only on the executor's thread, with relaxed loads and stores.
pub(crate) struct AtomicLog2Histogram {
    counts: [AtomicU64; BUCKETS],
}

impl AtomicLog2Histogram {
    pub(crate) fn new() -> Self {
        AtomicLog2Histogram {
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    /// Records `ns` (executor thread only, hence load + store).
    #[inline]
    pub(crate) fn record(&self, ns: u64) {
        let count = &self.counts[bucket_of(ns)];
        count.store(count.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }

    /// The counts as a [`Log2Histogram`].
    pub(crate) fn snapshot(&self) -> Log2Histogram {
        Log2Histogram {
            counts: std::array::from_fn(|bucket| self.counts[bucket].load(Ordering::Relaxed)),
        }
    }
}

impl fmt::Debug for AtomicLog2Histogram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.snapshot(), f)
    }
}

/// The bucket of a sample of `ns` nanoseconds.
#[inline]
fn bucket_of(ns: u64) -> usize {
    ((u64::BITS - ns.leading_zeros()) as usize).min(BUCKETS - 1)
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
    fn quantile_refuses_q_outside_zero_to_one_and_is_none_when_empty() {
        assert_eq!(Log2Histogram::default().quantile(0.5), None);
        let h = histogram(&[1, 10_000]);
        for q in [-1.0, 7.0, f64::NAN, f64::NEG_INFINITY] {
            assert_eq!(h.quantile(q), None, "q = {q}");
        }
        assert!(h.quantile(0.0).is_some() && h.quantile(1.0).is_some());
        assert_eq!(h.count(), 2);
    }

    #[test]
    fn since_keeps_only_the_later_samples() {
        let before = histogram(&[1, 100]);
        let after = histogram(&[1, 100, 100, 10_000]);
        let delta = after.since(&before);
        assert_eq!(delta.count(), 2);
        assert_eq!(ns(delta.quantile(0.0)), 127);
        assert_eq!(before.since(&after).count(), 0, "saturates, never wraps");
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
