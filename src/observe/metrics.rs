//! Export of an executor's stats through the `metrics` facade (feature `metrics`; see
//! the parent module's docs for the names). The export state ([`MetricsExport`]) is a
//! field of the `Executor`, which hands it the stats to export.

use std::rc::Rc;
use std::time::Duration;

use ::metrics::{Label, Unit};

use crate::stats::{ExecutorStats, Log2Histogram, QueueStats};

/// How often the run loop exports an executor's stats unless told otherwise.
///
/// ```
/// assert_eq!(
///     clockworker::observe::DEFAULT_METRICS_INTERVAL,
///     std::time::Duration::from_secs(1)
/// );
/// ```
pub const DEFAULT_METRICS_INTERVAL: Duration = Duration::from_secs(1);

/// Buckets of `Log2Histogram` (bucket `b` holds `[2^(b-1), 2^b)` ns).
const BUCKETS: usize = 64;

/// Export state of one executor.
pub(crate) struct MetricsExport {
    /// `None`: no periodic export.
    interval_ns: Option<u64>,
    /// Executor clock time of the next periodic export.
    next_ns: u64,
    /// Value of the `executor` label.
    label: Rc<str>,
    /// Queue-delay bucket counts at the previous export, by queue index.
    previous_delay: Vec<[u64; BUCKETS]>,
}

impl MetricsExport {
    /// State for an executor with id `executor` and `queues` queues.
    pub(crate) fn new(executor: u64, queues: usize) -> Self {
        MetricsExport {
            interval_ns: Some(duration_ns(DEFAULT_METRICS_INTERVAL)),
            next_ns: 0,
            label: Rc::from(executor.to_string()),
            previous_delay: vec![[0; BUCKETS]; queues],
        }
    }

    /// Whether a periodic export is due at `now_ns`; if so, schedules the next one.
    pub(crate) fn due(&mut self, now_ns: u64) -> bool {
        let Some(interval) = self.interval_ns else {
            return false;
        };
        if now_ns < self.next_ns {
            return false;
        }
        self.next_ns = now_ns.saturating_add(interval);
        true
    }

    /// Sets the periodic export interval (`None`: none), due at once.
    pub(crate) fn set_interval(&mut self, interval: Option<Duration>) {
        self.interval_ns = interval.map(duration_ns);
        self.next_ns = 0;
    }

    /// Sets the value of the `executor` label.
    pub(crate) fn set_label(&mut self, label: Rc<str>) {
        self.label = label;
    }

    /// Exports `queues` (by queue index, labelled with `queue_labels`) and `executor`
    /// to the recorder in force on this thread.
    pub(crate) fn export<K>(
        &mut self,
        queue_labels: &[Rc<str>],
        queues: impl Iterator<Item = QueueStats<K>>,
        executor: &ExecutorStats,
    ) {
        describe();
        let executor_labels = vec![Label::new("executor", self.label.to_string())];
        for (index, stats) in queues.enumerate() {
            let (Some(queue_label), Some(previous)) =
                (queue_labels.get(index), self.previous_delay.get_mut(index))
            else {
                break;
            };
            let mut labels = executor_labels.clone();
            labels.push(Label::new("queue", queue_label.to_string()));
            export_queue(&labels, &stats, previous);
        }
        let stats = executor;
        let labels = executor_labels.iter();
        ::metrics::counter!("clockworker_executor_polls_total", labels.clone())
            .absolute(stats.polls);
        ::metrics::counter!("clockworker_executor_busy_time_ns_total", labels.clone())
            .absolute(duration_ns(stats.busy_time));
        ::metrics::counter!("clockworker_executor_idle_time_ns_total", labels.clone())
            .absolute(duration_ns(stats.idle_time));
        ::metrics::counter!("clockworker_executor_driver_yields_total", labels.clone())
            .absolute(stats.driver_yields);
        ::metrics::gauge!("clockworker_executor_max_driver_gap_ns", labels.clone())
            .set(duration_ns(stats.max_driver_gap) as f64);
        ::metrics::gauge!("clockworker_executor_live_tasks", labels).set(stats.live_tasks as f64);
    }
}

/// Exports one queue's stats; `previous` holds its queue-delay buckets at the previous
/// export and is updated.
fn export_queue<K>(labels: &[Label], stats: &QueueStats<K>, previous: &mut [u64; BUCKETS]) {
    let labels = labels.iter();
    ::metrics::gauge!("clockworker_queue_weight", labels.clone()).set(f64::from(stats.weight));
    ::metrics::gauge!("clockworker_queue_ready_tasks", labels.clone()).set(stats.ready as f64);
    ::metrics::counter!("clockworker_queue_polls_total", labels.clone()).absolute(stats.polls);
    ::metrics::counter!("clockworker_queue_service_time_ns_total", labels.clone())
        .absolute(duration_ns(stats.service_time));
    ::metrics::counter!("clockworker_queue_spawned_total", labels.clone()).absolute(stats.spawned);
    ::metrics::counter!("clockworker_queue_completed_total", labels.clone())
        .absolute(stats.completed);
    ::metrics::counter!("clockworker_queue_cancelled_total", labels.clone())
        .absolute(stats.cancelled);
    ::metrics::counter!("clockworker_queue_panicked_total", labels.clone())
        .absolute(stats.panicked);
    let delay = bucket_counts(&stats.queue_delay);
    let p99 = windowed_p99(&delay, previous);
    *previous = delay;
    ::metrics::gauge!("clockworker_queue_delay_p99_ns", labels).set(p99 as f64);
}

fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Bucket counts of a histogram, indexed by bucket.
fn bucket_counts(histogram: &Log2Histogram) -> [u64; BUCKETS] {
    let mut counts = [0; BUCKETS];
    for (upper, count) in histogram.buckets() {
        let upper = u64::try_from(upper.as_nanos()).unwrap_or(u64::MAX);
        // Bucket b < 63 has upper bound 2^b - 1; the last one, u64::MAX.
        let bucket = if upper == u64::MAX {
            BUCKETS - 1
        } else {
            (upper + 1).trailing_zeros() as usize
        };
        counts[bucket.min(BUCKETS - 1)] += count;
    }
    counts
}

/// Upper bound (ns) of the bucket holding the 99th percentile of
/// `now - before`, or 0 without samples.
fn windowed_p99(now: &[u64; BUCKETS], before: &[u64; BUCKETS]) -> u64 {
    let delta: Vec<u64> = now
        .iter()
        .zip(before)
        .map(|(n, b)| n.saturating_sub(*b))
        .collect();
    let total: u64 = delta.iter().sum();
    if total == 0 {
        return 0;
    }
    let rank = total.saturating_mul(99).div_ceil(100).max(1);
    let mut seen = 0;
    for (bucket, count) in delta.iter().enumerate() {
        seen += count;
        if seen >= rank {
            return if bucket >= BUCKETS - 1 {
                u64::MAX
            } else {
                (1u64 << bucket) - 1
            };
        }
    }
    0
}

fn describe() {
    use ::metrics::{describe_counter, describe_gauge};
    describe_gauge!("clockworker_queue_weight", "the queue's weight");
    describe_gauge!(
        "clockworker_queue_ready_tasks",
        Unit::Count,
        "tasks ready to run"
    );
    describe_counter!("clockworker_queue_polls_total", Unit::Count, "task polls");
    describe_counter!(
        "clockworker_queue_service_time_ns_total",
        Unit::Nanoseconds,
        "CPU time polling the queue's tasks"
    );
    describe_counter!(
        "clockworker_queue_spawned_total",
        Unit::Count,
        "tasks spawned"
    );
    describe_counter!(
        "clockworker_queue_completed_total",
        Unit::Count,
        "tasks that ran to completion"
    );
    describe_counter!(
        "clockworker_queue_cancelled_total",
        Unit::Count,
        "tasks aborted or dropped by shutdown"
    );
    describe_counter!(
        "clockworker_queue_panicked_total",
        Unit::Count,
        "tasks whose poll panicked"
    );
    describe_gauge!(
        "clockworker_queue_delay_p99_ns",
        Unit::Nanoseconds,
        "p99 queue delay over the polls since the previous export (log2 bucket bound)"
    );
    describe_counter!(
        "clockworker_executor_polls_total",
        Unit::Count,
        "task polls"
    );
    describe_counter!(
        "clockworker_executor_busy_time_ns_total",
        Unit::Nanoseconds,
        "time polling tasks"
    );
    describe_counter!(
        "clockworker_executor_idle_time_ns_total",
        Unit::Nanoseconds,
        "time parked with nothing to run"
    );
    describe_counter!(
        "clockworker_executor_driver_yields_total",
        Unit::Count,
        "returns to the host runtime to let it poll I/O and timers"
    );
    describe_gauge!(
        "clockworker_executor_max_driver_gap_ns",
        Unit::Nanoseconds,
        "longest stretch without returning to the host runtime"
    );
    describe_gauge!(
        "clockworker_executor_live_tasks",
        Unit::Count,
        "tasks spawned and not yet finished"
    );
}

#[cfg(test)]
mod tests {
    use super::{windowed_p99, BUCKETS};

    #[test]
    fn p99_of_the_window_only() {
        let mut before = [0; BUCKETS];
        let mut now = [0; BUCKETS];
        // Before: 1000 long delays (bucket 20). Window: 100 short (bucket 4).
        before[20] = 1000;
        now[20] = 1000;
        now[4] = 100;
        assert_eq!(windowed_p99(&now, &before), 15);
        // 99 short and 2 long in the window: the long ones are the top 1 %+.
        now[20] = 1002;
        now[4] = 99;
        assert_eq!(windowed_p99(&now, &before), (1 << 20) - 1);
        assert_eq!(windowed_p99(&before, &before), 0);
    }
}
