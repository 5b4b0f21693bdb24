//! A `tracing` span per task poll (feature `tracing`). Run with
//! `cargo test --features tracing --test tracing_spans`.
#![cfg(feature = "tracing")]

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

mod common;

use common::{observed_executor as executor, observed_workload as workload, runtime};

/// Held by each test of this file for its whole run.
///
/// `tracing` caches a callsite's interest globally, when the callsite is first hit.
/// While a single dispatcher is registered, that interest is asked of the *current
/// thread's* default subscriber. So a test thread without a subscriber that reaches
/// the `poll` span first, while another test's scoped subscriber is the only one (and
/// has raised the max level to `TRACE`), caches "never" for every thread: the other
/// test then sees no spans. A CI run failed so ("one span per poll", 0 against 16).
/// Running the tests of this binary one at a time removes that race; a process with
/// one global subscriber, as in production, never meets it.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What a `poll` span carried.
#[derive(Debug, Default, Clone)]
struct PollSpan {
    target: String,
    queue: Option<String>,
    task: Option<u64>,
    executor: Option<u64>,
}

impl Visit for PollSpan {
    fn record_u64(&mut self, field: &Field, value: u64) {
        match field.name() {
            "task" => self.task = Some(value),
            "executor" => self.executor = Some(value),
            _ => {}
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "queue" {
            self.queue = Some(format!("{value:?}"));
        }
    }
}

/// Counts spans, entries and exits.
#[derive(Default)]
struct Counting {
    next_id: AtomicU64,
    spans: Mutex<Vec<PollSpan>>,
    other_spans: AtomicUsize,
    entered: AtomicUsize,
    exited: AtomicUsize,
}

#[derive(Clone, Default)]
struct CountingSubscriber(Arc<Counting>);

impl Subscriber for CountingSubscriber {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        if span.metadata().name() == "poll" {
            let mut record = PollSpan {
                target: span.metadata().target().to_owned(),
                ..PollSpan::default()
            };
            span.record(&mut record);
            self.0.spans.lock().unwrap().push(record);
        } else {
            self.0.other_spans.fetch_add(1, Ordering::Relaxed);
        }
        Id::from_u64(self.0.next_id.fetch_add(1, Ordering::Relaxed) + 1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, _: &Event<'_>) {}
    fn enter(&self, _: &Id) {
        self.0.entered.fetch_add(1, Ordering::Relaxed);
    }
    fn exit(&self, _: &Id) {
        self.0.exited.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn every_task_poll_gets_a_span_with_its_queue_and_task() {
    let _watchdog = common::watchdog();
    let _serial = one_at_a_time();
    let rt = runtime();
    let executor = executor();
    let subscriber = CountingSubscriber::default();
    let counts = subscriber.0.clone();
    tracing::subscriber::with_default(subscriber, || workload(&rt, &executor));

    let spans = counts.spans.lock().unwrap().clone();
    let polls = executor.stats().polls;
    assert_eq!(spans.len() as u64, polls, "one span per poll");
    assert_eq!(counts.entered.load(Ordering::Relaxed), spans.len());
    assert_eq!(counts.exited.load(Ordering::Relaxed), spans.len());
    assert_eq!(counts.other_spans.load(Ordering::Relaxed), 0);
    let mut polls_per_task: HashMap<(String, u64), usize> = HashMap::new();
    for span in &spans {
        assert_eq!(span.target, "clockworker::poll");
        assert!(span.executor.is_some());
        let queue = span.queue.clone().expect("queue field");
        let task = span.task.expect("task field");
        *polls_per_task.entry((queue, task)).or_default() += 1;
    }
    // 5 tasks on fg, polled 3 times each.
    let mut fg: Vec<usize> = polls_per_task
        .iter()
        .filter(|((q, _), _)| q == "fg")
        .map(|(_, n)| *n)
        .collect();
    fg.sort();
    assert_eq!(fg, vec![3; 5], "{polls_per_task:?}");
    // On bg, the panicking task once; the parked one once or never (it may be
    // aborted before the scheduler reaches it): as many as the queue's stats say.
    let bg: usize = polls_per_task
        .iter()
        .filter(|((q, _), _)| q == "bg")
        .map(|(_, n)| *n)
        .sum();
    assert_eq!(bg as u64, executor.queue_stats("bg").unwrap().polls);
    assert!(bg >= 1);
    // Arrival numbers: spawn order, distinct per task, stable across its polls.
    let mut tasks: Vec<u64> = polls_per_task.keys().map(|(_, t)| *t).collect();
    tasks.sort();
    tasks.dedup();
    assert_eq!(tasks.len(), polls_per_task.len());
    assert!(tasks.iter().all(|&t| t < 7));
}

#[test]
fn without_a_subscriber_nothing_is_recorded_and_tasks_run() {
    let _watchdog = common::watchdog();
    let _serial = one_at_a_time();
    let rt = runtime();
    let executor = executor();
    workload(&rt, &executor);
    assert_eq!(executor.queue_stats("fg").unwrap().completed, 5);
    let before = executor.stats().polls;
    // A subscriber installed later sees only later polls.
    let subscriber = CountingSubscriber::default();
    let counts = subscriber.0.clone();
    tracing::subscriber::with_default(subscriber, || workload(&rt, &executor));
    let after = executor.stats().polls;
    assert_eq!(counts.spans.lock().unwrap().len() as u64, after - before);
}
