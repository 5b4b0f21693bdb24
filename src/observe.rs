//! Observability: stats exported through the [`metrics`](https://docs.rs/metrics)
//! facade (feature `metrics`) and a [`tracing`](https://docs.rs/tracing) span around
//! every task poll (feature `tracing`). Both features are off by default; without
//! them none of this is compiled and the run loop is unchanged.
//!
//! # Metrics (feature `metrics`)
//!
//! The run loop exports an executor's stats at the start of a turn (when the host
//! polls it) at most once per interval (`DEFAULT_METRICS_INTERVAL`, one second;
//! change it with `Executor::set_metrics_interval`), and `Executor::export_metrics`
//! exports them at once. An idle executor is not polled and so exports nothing until it wakes (its
//! stats do not change meanwhile). Export goes to the recorder in force on the
//! executor's thread (`metrics::set_global_recorder`, or a thread-local one).
//!
//! Every metric has the label `executor` (the executor's id by default; set it with
//! `Executor::set_metrics_label`; a `clockworker::pool` shard uses its thread name), and the per-queue ones also `queue` (the key's `Debug` form, without
//! the quotes of a string key's).
//! Counters are cumulative (set with `Counter::absolute`); times are nanoseconds.
//!
//! | name | kind | what |
//! |---|---|---|
//! | `clockworker_queue_weight` | gauge | the queue's weight |
//! | `clockworker_queue_ready_tasks` | gauge | tasks ready to run |
//! | `clockworker_queue_polls_total` | counter | task polls |
//! | `clockworker_queue_service_time_ns_total` | counter | CPU time polling the queue's tasks |
//! | `clockworker_queue_spawned_total` | counter | tasks spawned |
//! | `clockworker_queue_completed_total` | counter | tasks that ran to completion |
//! | `clockworker_queue_cancelled_total` | counter | tasks aborted or dropped by shutdown |
//! | `clockworker_queue_panicked_total` | counter | tasks whose poll panicked |
//! | `clockworker_queue_delay_p99_ns` | gauge | p99 of queue delay (ready → polled) over the polls since the previous export, as the upper bound of its power-of-two bucket; 0 when there were none |
//! | `clockworker_executor_polls_total` | counter | task polls |
//! | `clockworker_executor_busy_time_ns_total` | counter | time polling tasks |
//! | `clockworker_executor_idle_time_ns_total` | counter | time parked with nothing to run |
//! | `clockworker_executor_driver_yields_total` | counter | returns to the host with tasks ready: `driver_yield` or the host-poll interval elapsed, an outranked slice was about to begin, or tokio's budget ran out |
//! | `clockworker_executor_max_driver_gap_ns` | gauge | longest stretch without returning to the host |
//! | `clockworker_executor_live_tasks` | gauge | tasks spawned and not yet finished |
//!
//! # Tracing (feature `tracing`)
//!
//! Each task poll runs inside a span named `poll` (target `clockworker::poll`, level
//! `TRACE`) with the fields `executor` (id), `queue` (the key, as in the metrics) and
//! `task` (the task's arrival number: its spawn order in the executor, stable across
//! its polls). A span costs nothing but a level check when no subscriber wants it.
//! Dropping an aborted task's future is not a poll and has no span.
//!
//! tracing caches a callsite's interest process-wide at its first hit, and while one
//! dispatcher is registered it asks the hitting thread's default subscriber. A scoped
//! subscriber (`with_default`) on one thread and task polls on threads without one can
//! so disable the span everywhere; a global subscriber cannot. `tests/tracing_spans.rs`
//! runs its tests one at a time for this reason.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::{Rc, Weak};

use crate::core::Core;
use crate::executor::Executor;
use crate::queue::QueueKey;

#[cfg(feature = "metrics")]
pub use self::metrics_export::DEFAULT_METRICS_INTERVAL;

/// What the observability glue keeps about one executor of this thread.
struct Observed {
    /// Lets entries of dropped executors be purged.
    core: Weak<Core>,
    /// The queue keys' `Debug` forms, by queue index, for span fields.
    #[cfg(feature = "tracing")]
    queue_names: Vec<Rc<str>>,
    #[cfg(feature = "metrics")]
    metrics: metrics_export::State,
}

thread_local! {
    /// The executors of this thread (executors are `!Send`), by executor id.
    static OBSERVED: RefCell<HashMap<u64, Observed>> = RefCell::new(HashMap::new());
}

/// Runs `f` on the entry of `executor`, creating it on first use. `None` only while
/// the thread's locals are being destroyed.
fn with_entry<K: QueueKey, R>(
    executor: &Executor<K>,
    f: impl FnOnce(&mut Observed) -> R,
) -> Option<R> {
    let core = executor.core();
    OBSERVED
        .try_with(|observed| {
            let mut observed = observed.try_borrow_mut().ok()?;
            if !observed.contains_key(&core.id) {
                observed.retain(|_, entry| entry.core.strong_count() > 0);
                observed.insert(core.id, Observed::new(executor));
            }
            observed.get_mut(&core.id).map(f)
        })
        .ok()
        .flatten()
}

/// A key's label or span value: its `Debug` form, without the quotes a string key's
/// `Debug` form has (`"fg"` → `fg`).
fn key_label<K: QueueKey>(key: &K) -> String {
    let debug = format!("{key:?}");
    match debug
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
    {
        Some(inner) if !inner.is_empty() => inner.to_owned(),
        _ => debug,
    }
}

impl Observed {
    fn new<K: QueueKey>(executor: &Executor<K>) -> Self {
        Observed {
            core: Rc::downgrade(executor.core()),
            #[cfg(feature = "tracing")]
            queue_names: executor
                .queue_keys()
                .iter()
                .map(|key| Rc::from(key_label(key)))
                .collect(),
            #[cfg(feature = "metrics")]
            metrics: metrics_export::State::new(executor),
        }
    }
}

/// Hook at the start of every turn of the run loop (`Executor::turn`): registers the
/// executor on first use and exports metrics when due.
pub(crate) fn on_turn<K: QueueKey>(executor: &Executor<K>) {
    #[cfg(feature = "metrics")]
    {
        let now = executor.core().now_ns();
        if with_entry(executor, |entry| entry.metrics.due(now)).unwrap_or(false) {
            metrics_export::export(executor);
        }
    }
    #[cfg(not(feature = "metrics"))]
    with_entry(executor, |_| ());
}

#[cfg(feature = "tracing")]
pub(crate) use self::spans::{end_poll_span, poll_span};

#[cfg(feature = "tracing")]
mod spans {
    use std::fmt;
    use std::rc::Rc;

    use super::OBSERVED;

    /// A queue as a span field: its key's `Debug` form, or its index when unknown.
    struct QueueName {
        name: Option<Rc<str>>,
        index: usize,
    }

    impl fmt::Display for QueueName {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match &self.name {
                Some(name) => f.write_str(name),
                None => write!(f, "#{}", self.index),
            }
        }
    }

    fn queue_name(executor: u64, index: usize) -> QueueName {
        let name = OBSERVED
            .try_with(|observed| {
                let observed = observed.try_borrow().ok()?;
                observed.get(&executor)?.queue_names.get(index).cloned()
            })
            .ok()
            .flatten();
        QueueName { name, index }
    }

    /// Hook around a task poll (`Core::poll_tasks`): enters the poll's span, if any
    /// subscriber may want `TRACE` spans. Without one, this is two loads and a
    /// compare: no `Span` is built (a disabled one still costs ~50 instructions).
    #[inline(always)]
    pub(crate) fn poll_span(
        executor: u64,
        queue: usize,
        task: u64,
    ) -> Option<tracing::span::EnteredSpan> {
        use tracing::level_filters::{LevelFilter, STATIC_MAX_LEVEL};
        let trace = tracing::Level::TRACE;
        if trace <= STATIC_MAX_LEVEL && trace <= LevelFilter::current() {
            Some(enter_poll_span(executor, queue, task))
        } else {
            None
        }
    }

    /// Hook after a task poll: exits the poll's span. `None` costs a compare (a plain
    /// `drop` of the `Option` is an out-of-line call).
    #[inline(always)]
    pub(crate) fn end_poll_span(span: Option<tracing::span::EnteredSpan>) {
        if let Some(span) = span {
            exit_poll_span(span);
        }
    }

    #[inline(never)]
    fn exit_poll_span(span: tracing::span::EnteredSpan) {
        drop(span);
    }

    /// Builds and enters the span; its field values are computed only when a
    /// subscriber wants it.
    #[inline(never)]
    fn enter_poll_span(executor: u64, queue: usize, task: u64) -> tracing::span::EnteredSpan {
        tracing::trace_span!(
            target: "clockworker::poll",
            "poll",
            executor,
            queue = %queue_name(executor, queue),
            task,
        )
        .entered()
    }
}

#[cfg(feature = "metrics")]
mod metrics_export {
    use std::rc::Rc;
    use std::time::Duration;

    use metrics::{Label, Unit};

    use super::with_entry;
    use crate::executor::Executor;
    use crate::queue::QueueKey;
    use crate::stats::Log2Histogram;

    /// How often the run loop exports an executor's stats unless told otherwise.
    pub const DEFAULT_METRICS_INTERVAL: Duration = Duration::from_secs(1);

    /// Buckets of `Log2Histogram` (bucket `b` holds `[2^(b-1), 2^b)` ns).
    const BUCKETS: usize = 64;

    /// Export state of one executor.
    pub(super) struct State {
        /// `None`: no periodic export.
        interval_ns: Option<u64>,
        /// Executor clock time of the next periodic export.
        next_ns: u64,
        /// Value of the `executor` label.
        label: Rc<str>,
        /// Queue-delay bucket counts at the previous export, by queue index.
        previous_delay: Vec<[u64; BUCKETS]>,
    }

    impl State {
        pub(super) fn new<K: QueueKey>(executor: &Executor<K>) -> Self {
            State {
                interval_ns: Some(duration_ns(DEFAULT_METRICS_INTERVAL)),
                next_ns: 0,
                label: Rc::from(executor.core().id.to_string()),
                previous_delay: vec![[0; BUCKETS]; executor.queue_keys().len()],
            }
        }

        /// Whether a periodic export is due at `now_ns`; if so, schedules the next one.
        pub(super) fn due(&mut self, now_ns: u64) -> bool {
            let Some(interval) = self.interval_ns else {
                return false;
            };
            if now_ns < self.next_ns {
                return false;
            }
            self.next_ns = now_ns.saturating_add(interval);
            true
        }
    }

    impl<K: QueueKey> Executor<K> {
        /// Exports this executor's stats through the `metrics` facade now, to the
        /// recorder in force on this thread (see [`crate::observe`] for the names).
        pub fn export_metrics(&self) {
            export(self);
        }

        /// How often the run loop exports stats (default
        /// [`DEFAULT_METRICS_INTERVAL`]); `None` stops the periodic export
        /// ([`export_metrics`](Self::export_metrics) still works). Takes effect at
        /// the next turn of the run loop.
        pub fn set_metrics_interval(&self, interval: Option<Duration>) {
            with_entry(self, |entry| {
                entry.metrics.interval_ns = interval.map(duration_ns);
                entry.metrics.next_ns = 0;
            });
        }

        /// Sets the value of the `executor` label of this executor's metrics (default:
        /// its id, a number unique in the process).
        pub fn set_metrics_label(&self, label: impl Into<String>) {
            let label: Rc<str> = Rc::from(label.into());
            with_entry(self, |entry| entry.metrics.label = label);
        }
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
        use metrics::{describe_counter, describe_gauge};
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

    /// Exports every stat of `executor` to the recorder in force on this thread.
    pub(super) fn export<K: QueueKey>(executor: &Executor<K>) {
        let Some((label, mut previous)) = with_entry(executor, |entry| {
            (
                entry.metrics.label.clone(),
                std::mem::take(&mut entry.metrics.previous_delay),
            )
        }) else {
            return;
        };
        let keys = executor.queue_keys();
        previous.resize(keys.len(), [0; BUCKETS]);
        describe();
        let executor_labels = vec![Label::new("executor", label.to_string())];
        for (index, key) in keys.iter().enumerate() {
            let Some(stats) = executor.queue_stats(*key) else {
                continue;
            };
            let mut labels = executor_labels.clone();
            labels.push(Label::new("queue", super::key_label(key)));
            let labels = labels.iter();
            metrics::gauge!("clockworker_queue_weight", labels.clone())
                .set(f64::from(stats.weight));
            metrics::gauge!("clockworker_queue_ready_tasks", labels.clone())
                .set(stats.ready as f64);
            metrics::counter!("clockworker_queue_polls_total", labels.clone())
                .absolute(stats.polls);
            metrics::counter!("clockworker_queue_service_time_ns_total", labels.clone())
                .absolute(duration_ns(stats.service_time));
            metrics::counter!("clockworker_queue_spawned_total", labels.clone())
                .absolute(stats.spawned);
            metrics::counter!("clockworker_queue_completed_total", labels.clone())
                .absolute(stats.completed);
            metrics::counter!("clockworker_queue_cancelled_total", labels.clone())
                .absolute(stats.cancelled);
            metrics::counter!("clockworker_queue_panicked_total", labels.clone())
                .absolute(stats.panicked);
            let delay = bucket_counts(&stats.queue_delay);
            let p99 = windowed_p99(&delay, &previous[index]);
            previous[index] = delay;
            metrics::gauge!("clockworker_queue_delay_p99_ns", labels).set(p99 as f64);
        }
        with_entry(executor, |entry| entry.metrics.previous_delay = previous);
        let stats = executor.stats();
        let labels = executor_labels.iter();
        metrics::counter!("clockworker_executor_polls_total", labels.clone()).absolute(stats.polls);
        metrics::counter!("clockworker_executor_busy_time_ns_total", labels.clone())
            .absolute(duration_ns(stats.busy_time));
        metrics::counter!("clockworker_executor_idle_time_ns_total", labels.clone())
            .absolute(duration_ns(stats.idle_time));
        metrics::counter!("clockworker_executor_driver_yields_total", labels.clone())
            .absolute(stats.driver_yields);
        metrics::gauge!("clockworker_executor_max_driver_gap_ns", labels.clone())
            .set(duration_ns(stats.max_driver_gap) as f64);
        metrics::gauge!("clockworker_executor_live_tasks", labels).set(stats.live_tasks as f64);
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
}
