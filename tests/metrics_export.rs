//! Stats through the `metrics` facade (feature `metrics`): what an export publishes,
//! how often the run loop exports, and pool shards' labels. Run with
//! `cargo test --features metrics --test metrics_export`.
#![cfg(feature = "metrics")]

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, Key, KeyName, Metadata, Recorder, SharedString,
    Unit,
};

mod common;

use common::{observed_executor as executor, observed_workload as workload, runtime};

/// A metric's name and labels.
type Id = (String, BTreeMap<String, String>);

/// One counter or gauge (gauges keep their f64 bits).
#[derive(Default)]
struct Slot(AtomicU64);

impl CounterFn for Slot {
    fn increment(&self, value: u64) {
        self.0.fetch_add(value, Ordering::Relaxed);
    }
    fn absolute(&self, value: u64) {
        self.0.store(value, Ordering::Relaxed);
    }
}

impl GaugeFn for Slot {
    fn increment(&self, value: f64) {
        self.set(f64::from_bits(self.0.load(Ordering::Relaxed)) + value);
    }
    fn decrement(&self, value: f64) {
        self.set(f64::from_bits(self.0.load(Ordering::Relaxed)) - value);
    }
    fn set(&self, value: f64) {
        self.0.store(value.to_bits(), Ordering::Relaxed);
    }
}

#[derive(Default)]
struct Store {
    counters: HashMap<Id, Arc<Slot>>,
    gauges: HashMap<Id, Arc<Slot>>,
    /// Registrations per metric name: one per export.
    registrations: HashMap<String, usize>,
    described: HashMap<String, Option<Unit>>,
}

/// A recorder that keeps the latest value of every counter and gauge.
#[derive(Default, Clone)]
struct TestRecorder(Arc<Mutex<Store>>);

fn id(key: &Key) -> Id {
    let labels = key
        .labels()
        .map(|l| (l.key().to_owned(), l.value().to_owned()))
        .collect();
    (key.name().to_owned(), labels)
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl TestRecorder {
    fn counter(&self, name: &str, pairs: &[(&str, &str)]) -> Option<u64> {
        let store = self.0.lock().unwrap();
        let slot = store.counters.get(&(name.to_owned(), labels(pairs)))?;
        Some(slot.0.load(Ordering::Relaxed))
    }

    fn gauge(&self, name: &str, pairs: &[(&str, &str)]) -> Option<f64> {
        let store = self.0.lock().unwrap();
        let slot = store.gauges.get(&(name.to_owned(), labels(pairs)))?;
        Some(f64::from_bits(slot.0.load(Ordering::Relaxed)))
    }

    fn registrations(&self, name: &str) -> usize {
        let store = self.0.lock().unwrap();
        store.registrations.get(name).copied().unwrap_or(0)
    }

    fn executor_labels(&self) -> Vec<String> {
        let store = self.0.lock().unwrap();
        let mut labels: Vec<String> = store
            .counters
            .keys()
            .filter_map(|(_, labels)| labels.get("executor").cloned())
            .collect();
        labels.sort();
        labels.dedup();
        labels
    }
}

impl Recorder for TestRecorder {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, _: SharedString) {
        let mut store = self.0.lock().unwrap();
        store.described.insert(key.as_str().to_owned(), unit);
    }
    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, _: SharedString) {
        let mut store = self.0.lock().unwrap();
        store.described.insert(key.as_str().to_owned(), unit);
    }
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let mut store = self.0.lock().unwrap();
        *store
            .registrations
            .entry(key.name().to_owned())
            .or_default() += 1;
        Counter::from_arc(store.counters.entry(id(key)).or_default().clone())
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        let mut store = self.0.lock().unwrap();
        *store
            .registrations
            .entry(key.name().to_owned())
            .or_default() += 1;
        Gauge::from_arc(store.gauges.entry(id(key)).or_default().clone())
    }
    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

#[test]
fn export_metrics_publishes_every_queue_and_executor_stat() {
    let _watchdog = common::watchdog();
    let rt = runtime();
    let executor = executor();
    executor.set_metrics_interval(None);
    executor.set_metrics_label("exec-a");
    workload(&rt, &executor);
    let recorder = TestRecorder::default();
    metrics::with_local_recorder(&recorder, || executor.export_metrics());

    let fg = [("executor", "exec-a"), ("queue", "fg")];
    let bg = [("executor", "exec-a"), ("queue", "bg")];
    let whole = [("executor", "exec-a")];
    let r = &recorder;
    assert_eq!(r.gauge("clockworker_queue_weight", &fg), Some(3.0));
    assert_eq!(r.gauge("clockworker_queue_weight", &bg), Some(1.0));
    assert_eq!(r.gauge("clockworker_queue_ready_tasks", &fg), Some(0.0));
    assert_eq!(r.counter("clockworker_queue_polls_total", &fg), Some(15));
    assert_eq!(r.counter("clockworker_queue_spawned_total", &fg), Some(5));
    assert_eq!(r.counter("clockworker_queue_completed_total", &fg), Some(5));
    assert_eq!(r.counter("clockworker_queue_cancelled_total", &fg), Some(0));
    assert_eq!(r.counter("clockworker_queue_panicked_total", &fg), Some(0));
    assert_eq!(r.counter("clockworker_queue_spawned_total", &bg), Some(2));
    assert_eq!(r.counter("clockworker_queue_panicked_total", &bg), Some(1));
    assert_eq!(r.counter("clockworker_queue_cancelled_total", &bg), Some(1));
    assert_eq!(r.counter("clockworker_queue_completed_total", &bg), Some(0));
    let service = r
        .counter("clockworker_queue_service_time_ns_total", &fg)
        .unwrap();
    let fg_stats = executor.queue_stats("fg").unwrap();
    assert_eq!(service, fg_stats.service_time.as_nanos() as u64);
    assert!(service > 0);
    // p99 over everything polled so far: the log2 bucket bound of the stats' own.
    let p99 = r.gauge("clockworker_queue_delay_p99_ns", &fg).unwrap();
    let expected = fg_stats.queue_delay.quantile(0.99).unwrap().as_nanos() as f64;
    assert_eq!(p99, expected);

    let stats = executor.stats();
    assert_eq!(
        r.counter("clockworker_executor_polls_total", &whole),
        Some(stats.polls)
    );
    assert_eq!(
        r.counter("clockworker_executor_busy_time_ns_total", &whole),
        Some(stats.busy_time.as_nanos() as u64)
    );
    assert!(r
        .counter("clockworker_executor_idle_time_ns_total", &whole)
        .is_some());
    assert!(r
        .counter("clockworker_executor_driver_yields_total", &whole)
        .is_some());
    assert!(r
        .gauge("clockworker_executor_max_driver_gap_ns", &whole)
        .is_some());
    assert_eq!(
        r.gauge("clockworker_executor_live_tasks", &whole),
        Some(0.0)
    );
    let store = recorder.0.lock().unwrap();
    assert_eq!(
        store
            .described
            .get("clockworker_queue_service_time_ns_total"),
        Some(&Some(Unit::Nanoseconds))
    );
}

#[test]
fn queue_delay_p99_covers_the_polls_since_the_previous_export() {
    let _watchdog = common::watchdog();
    let rt = runtime();
    let executor = executor();
    executor.set_metrics_interval(None);
    workload(&rt, &executor);
    let recorder = TestRecorder::default();
    let label = recorder_label(&recorder, &executor);
    let fg = [("executor", label.as_str()), ("queue", "fg")];
    assert!(recorder
        .gauge("clockworker_queue_delay_p99_ns", &fg)
        .is_some());
    // No poll since: the window is empty.
    metrics::with_local_recorder(&recorder, || executor.export_metrics());
    assert_eq!(
        recorder.gauge("clockworker_queue_delay_p99_ns", &fg),
        Some(0.0)
    );
    // Counters stay cumulative.
    assert_eq!(
        recorder.counter("clockworker_queue_polls_total", &fg),
        Some(15)
    );
}

/// Exports once and returns the executor's default label (its id).
fn recorder_label(
    recorder: &TestRecorder,
    executor: &clockworker::Executor<&'static str>,
) -> String {
    metrics::with_local_recorder(recorder, || executor.export_metrics());
    let labels = recorder.executor_labels();
    assert_eq!(labels.len(), 1, "{labels:?}");
    assert!(labels[0].parse::<u64>().is_ok(), "default label is the id");
    labels[0].clone()
}

#[test]
fn the_run_loop_exports_at_most_once_per_interval() {
    let _watchdog = common::watchdog();
    const INTERVAL: Duration = Duration::from_millis(20);
    let rt = runtime();
    let executor = executor();
    executor.set_metrics_interval(Some(INTERVAL));
    let recorder = TestRecorder::default();
    let _guard = metrics::set_default_local_recorder(&recorder);
    let fg = executor.queue("fg").unwrap();
    let start = Instant::now();
    // ~100 turns of the run loop: a task waking every millisecond.
    rt.block_on(executor.run_until(async move {
        fg.spawn(async {
            for _ in 0..100 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await
        .unwrap();
    }));
    let elapsed = start.elapsed();
    let exports = recorder.registrations("clockworker_executor_polls_total");
    let most = (elapsed.as_nanos() / INTERVAL.as_nanos()) as usize + 1;
    assert!(exports >= 2, "{exports} exports in {elapsed:?}");
    assert!(exports <= most, "{exports} exports in {elapsed:?}");
    // Exported from the run loop, without an explicit call.
    let label = recorder.executor_labels().pop().unwrap();
    let fg = [("executor", label.as_str()), ("queue", "fg")];
    assert!(
        recorder
            .counter("clockworker_queue_polls_total", &fg)
            .unwrap()
            > 0
    );
}

#[test]
fn the_default_interval_exports_at_the_first_turn_and_none_disables_it() {
    let _watchdog = common::watchdog();
    let rt = runtime();
    let recorder = TestRecorder::default();
    let _guard = metrics::set_default_local_recorder(&recorder);

    let quiet = executor();
    quiet.set_metrics_interval(None);
    workload(&rt, &quiet);
    assert_eq!(
        recorder.registrations("clockworker_executor_polls_total"),
        0
    );

    let chatty = executor();
    workload(&rt, &chatty);
    assert_eq!(
        clockworker::observe::DEFAULT_METRICS_INTERVAL,
        Duration::from_secs(1)
    );
    // The workload takes far less than the default second: one export, at the
    // first turn.
    assert_eq!(
        recorder.registrations("clockworker_executor_polls_total"),
        1
    );
}

#[cfg(feature = "pool")]
#[test]
fn pool_shards_are_labelled_by_thread_name() {
    let _watchdog = common::watchdog();
    use clockworker::pool::{current_executor, PoolBuilder};

    // The only test of this file that installs the global recorder: shard threads
    // have no local one.
    let recorder = TestRecorder::default();
    metrics::set_global_recorder(recorder.clone()).unwrap();
    let pool = PoolBuilder::new(|_| clockworker::ExecutorBuilder::new().with_queue("q", 2))
        .shards(2)
        .thread_name("obs")
        .build()
        .unwrap();
    for shard in 0..2 {
        let handle = pool
            .spawn_on(shard, "q", async {
                current_executor::<&'static str>().unwrap().export_metrics();
            })
            .unwrap();
        futures_lite::future::block_on(handle).unwrap();
        let name = format!("obs-{shard}");
        let q = [("executor", name.as_str()), ("queue", "q")];
        assert_eq!(recorder.gauge("clockworker_queue_weight", &q), Some(2.0));
        assert_eq!(
            recorder.counter("clockworker_queue_spawned_total", &q),
            Some(1)
        );
    }
    pool.shutdown().unwrap();
}
