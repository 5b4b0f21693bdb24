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
//! To see what is exported, hand the executor a recorder: here a thread-local one that
//! keeps the keys (name and labels) it is given.
//!
//! ```rust
//! # #[cfg(feature = "metrics")] // this example needs feature `metrics`
//! # fn main() {
//! use clockworker::ExecutorBuilder;
//! use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder};
//! use metrics::{SharedString, Unit};
//! use std::cell::RefCell;
//!
//! #[derive(Default)]
//! struct Keys(RefCell<Vec<String>>);
//!
//! impl Recorder for Keys {
//!     fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
//!     fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
//!     fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
//!     fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
//!         self.0.borrow_mut().push(key.to_string());
//!         Counter::noop()
//!     }
//!     fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
//!         self.0.borrow_mut().push(key.to_string());
//!         Gauge::noop()
//!     }
//!     fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
//!         Histogram::noop()
//!     }
//! }
//!
//! let executor = ExecutorBuilder::new().with_queue("fg", 1).build().unwrap();
//! executor.set_metrics_label("api");
//! let keys = Keys::default();
//! metrics::with_local_recorder(&keys, || executor.export_metrics());
//! let keys = keys.0.into_inner();
//! assert_eq!(keys.len(), 9 + 6); // one queue's metrics, then the executor's
//! assert_eq!(keys[0], "Key(clockworker_queue_weight, [executor = api, queue = fg])");
//! assert_eq!(keys[14], "Key(clockworker_executor_live_tasks, [executor = api])");
//! # }
//! # #[cfg(not(feature = "metrics"))]
//! # fn main() {}
//! ```
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

#[cfg(feature = "metrics")]
pub(crate) mod metrics;
#[cfg(feature = "tracing")]
pub(crate) mod spans;

#[cfg(feature = "metrics")]
pub use self::metrics::DEFAULT_METRICS_INTERVAL;
