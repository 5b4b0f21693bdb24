//! The `metrics` export of an executor's stats (feature `metrics`): the methods that
//! set it up and trigger it. The export state is the executor's `metrics` field; the
//! export itself is `crate::observe::metrics`.

use std::rc::Rc;
use std::time::Duration;

use crate::queue::QueueKey;

use super::Executor;

impl<K: QueueKey> Executor<K> {
    /// Exports this executor's stats through the `metrics` facade now, to the
    /// recorder in force on this thread (see [`crate::observe`] for the names).
    ///
    /// ```rust
    /// # use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder};
    /// # use metrics::{SharedString, Unit};
    /// # #[derive(Default)]
    /// # struct Keys(std::cell::RefCell<Vec<String>>);
    /// # impl Recorder for Keys {
    /// #     fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    /// #     fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    /// #     fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    /// #     fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
    /// #         self.0.borrow_mut().push(key.to_string());
    /// #         Counter::noop()
    /// #     }
    /// #     fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
    /// #         self.0.borrow_mut().push(key.to_string());
    /// #         Gauge::noop()
    /// #     }
    /// #     fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
    /// #         Histogram::noop()
    /// #     }
    /// # }
    /// use clockworker::ExecutorBuilder;
    ///
    /// // `Keys` is a recorder that keeps the keys of the metrics it is handed (written
    /// // out in the `clockworker::observe` docs).
    /// let executor = ExecutorBuilder::new()
    ///     .with_queue("fg", 2)
    ///     .with_queue("bg", 1)
    ///     .build()
    ///     .unwrap();
    /// let keys = Keys::default();
    /// metrics::with_local_recorder(&keys, || executor.export_metrics());
    /// let keys = keys.0.into_inner();
    /// assert_eq!(keys.len(), 2 * 9 + 6); // 9 metrics per queue, 6 for the executor
    /// assert_eq!(keys.iter().filter(|key| key.ends_with("queue = bg])")).count(), 9);
    /// ```
    pub fn export_metrics(&self) {
        let queues = self
            .keys
            .iter()
            .enumerate()
            .map(|(queue, key)| self.core.queue_stats(queue, *key));
        let stats = self.core.executor_stats();
        if let Ok(mut metrics) = self.metrics.try_borrow_mut() {
            metrics.export(self.core.queue_names(), queues, &stats);
        }
    }

    /// How often the run loop exports stats (default
    /// [`DEFAULT_METRICS_INTERVAL`](crate::observe::DEFAULT_METRICS_INTERVAL)); `None`
    /// stops the periodic export ([`export_metrics`](Self::export_metrics) still
    /// works). Takes effect at the next turn of the run loop.
    ///
    /// ```rust
    /// # use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder};
    /// # use metrics::{SharedString, Unit};
    /// # #[derive(Default)]
    /// # struct Keys(std::cell::RefCell<Vec<String>>);
    /// # impl Recorder for Keys {
    /// #     fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    /// #     fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    /// #     fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    /// #     fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
    /// #         self.0.borrow_mut().push(key.to_string());
    /// #         Counter::noop()
    /// #     }
    /// #     fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
    /// #         self.0.borrow_mut().push(key.to_string());
    /// #         Gauge::noop()
    /// #     }
    /// #     fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
    /// #         Histogram::noop()
    /// #     }
    /// # }
    /// use clockworker::ExecutorBuilder;
    /// use std::time::Duration;
    ///
    /// // `Keys`: a recorder that keeps the keys of the metrics it is handed.
    /// let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    /// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// let (quiet, periodic) = (Keys::default(), Keys::default());
    /// executor.set_metrics_interval(None); // export only when asked
    /// metrics::with_local_recorder(&quiet, || runtime.block_on(executor.run_until(async {})));
    /// assert!(quiet.0.borrow().is_empty());
    /// executor.set_metrics_interval(Some(Duration::from_secs(10))); // first export at once
    /// metrics::with_local_recorder(&periodic, || runtime.block_on(executor.run_until(async {})));
    /// assert!(!periodic.0.borrow().is_empty());
    /// ```
    pub fn set_metrics_interval(&self, interval: Option<Duration>) {
        self.metrics.borrow_mut().set_interval(interval);
    }

    /// Sets the value of the `executor` label of this executor's metrics (default:
    /// its id, a number unique in the process).
    ///
    /// ```rust
    /// # use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder};
    /// # use metrics::{SharedString, Unit};
    /// # #[derive(Default)]
    /// # struct Keys(std::cell::RefCell<Vec<String>>);
    /// # impl Recorder for Keys {
    /// #     fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    /// #     fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    /// #     fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    /// #     fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
    /// #         self.0.borrow_mut().push(key.to_string());
    /// #         Counter::noop()
    /// #     }
    /// #     fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
    /// #         self.0.borrow_mut().push(key.to_string());
    /// #         Gauge::noop()
    /// #     }
    /// #     fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
    /// #         Histogram::noop()
    /// #     }
    /// # }
    /// use clockworker::ExecutorBuilder;
    ///
    /// // `Keys`: a recorder that keeps the keys of the metrics it is handed.
    /// let executor = ExecutorBuilder::new().with_queue("fg", 1).build().unwrap();
    /// executor.set_metrics_label("shard-0");
    /// let keys = Keys::default();
    /// metrics::with_local_recorder(&keys, || executor.export_metrics());
    /// let keys = keys.0.into_inner();
    /// assert!(keys.iter().all(|key| key.contains("executor = shard-0")));
    /// let weight = "Key(clockworker_queue_weight, [executor = shard-0, queue = fg])";
    /// assert!(keys.iter().any(|key| key == weight));
    /// ```
    pub fn set_metrics_label(&self, label: impl Into<String>) {
        self.metrics.borrow_mut().set_label(Rc::from(label.into()));
    }

    /// At the start of a turn: exports the stats when the periodic export is due.
    pub(super) fn export_metrics_if_due(&self) {
        let now = self.core.now_ns();
        let due = self
            .metrics
            .try_borrow_mut()
            .is_ok_and(|mut metrics| metrics.due(now));
        if due {
            self.export_metrics();
        }
    }
}
