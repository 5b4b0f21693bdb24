//! Every scheduling setting of the builder takes effect, not only passes validation:
//! `with_sched_latency` and `with_min_slice` set the length of the slices,
//! `with_lag_tolerance` lets a queue with a small debt be served at once, and a
//! `WeightController` is consulted once per `interval`, not every turn.
//!
//! The slice tests measure how long each queue keeps the thread (the wall time of a
//! run of consecutive polls of one queue) and compare the median with the expected
//! slice, against defaults 50 to 100 times shorter, so a loaded machine cannot blur
//! the difference. The other tests check orders and counts only.

mod common;

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use clockworker::{yield_maybe, yield_now, ExecutorBuilder, QueueStats, WeightController};
use common::{runtime, spin};

/// One busy task per queue `0..queues`, each polling in 20 µs chunks until `run_for`
/// has passed; returns the median wall time a queue kept the thread before another
/// queue's task ran (the first and last runs, cut by the start and end, left out).
fn median_run(builder: ExecutorBuilder<u8>, queues: u8, run_for: Duration) -> Duration {
    let executor = builder.build().expect("executor");
    let log: Rc<RefCell<Vec<(u8, Instant)>>> = Rc::default();
    let handles: Vec<_> = (0..queues)
        .map(|q| {
            let log = log.clone();
            executor.queue(q).unwrap().spawn(async move {
                let start = Instant::now();
                while start.elapsed() < run_for {
                    log.borrow_mut().push((q, Instant::now()));
                    spin(Duration::from_micros(20));
                    yield_now().await;
                }
            })
        })
        .collect();
    runtime().block_on(executor.run_until(common::outputs_of(handles)));
    let log = log.borrow();
    let mut runs = Vec::new();
    let mut first = 0;
    for i in 1..=log.len() {
        if i == log.len() || log[i].0 != log[first].0 {
            runs.push(log[i - 1].1 - log[first].1);
            first = i;
        }
    }
    assert!(runs.len() >= 5, "only {} runs: no switching?", runs.len());
    let mut inner = runs[1..runs.len() - 1].to_vec();
    inner.sort();
    inner[inner.len() / 2]
}

/// Two equal queues and `sched_latency` 100 ms: slices of 50 ms (the default, 2 ms,
/// gives 1 ms).
#[test]
fn sched_latency_sets_the_slice_length() {
    let _watchdog = common::watchdog();
    let builder = ExecutorBuilder::new()
        .with_queue(0u8, 1)
        .with_queue(1u8, 1)
        .with_sched_latency(Duration::from_millis(100));
    let median = median_run(builder, 2, Duration::from_millis(600));
    assert!(
        median >= Duration::from_millis(25),
        "median run {median:?}: sched_latency 100 ms over 2 queues should give 50 ms slices"
    );
}

/// Four equal queues, `sched_latency` 100 ms and `min_slice` 100 ms: slices of
/// 100 ms, not 100 ms / 4 = 25 ms.
#[test]
fn min_slice_bounds_the_slice_from_below() {
    let _watchdog = common::watchdog();
    let mut builder = ExecutorBuilder::new();
    for q in 0..4u8 {
        builder = builder.with_queue(q, 1);
    }
    let builder = builder
        .with_sched_latency(Duration::from_millis(100))
        .with_min_slice(Duration::from_millis(100));
    let median = median_run(builder, 4, Duration::from_millis(1_300));
    assert!(
        median >= Duration::from_millis(60),
        "median run {median:?}: min_slice 100 ms should give 100 ms slices, not 25 ms"
    );
}

/// Queue 0 (weight 10) runs 50 ms while queue 1 (weight 1) waits, then parks: it
/// comes back owing about 5 ms of service to queue 1. Queue 1's task wakes it and
/// calls `yield_maybe`. With a lag tolerance above the debt, queue 0 is eligible at
/// once and, with the earlier deadline, preempts; with none, queue 1 keeps the thread
/// until the debt is repaid (its task finishes first).
fn lag_tolerance_order(tolerance: Duration) -> Vec<&'static str> {
    let executor = ExecutorBuilder::new()
        .with_queue(0u8, 10)
        .with_queue(1u8, 1)
        .with_sched_latency(Duration::from_secs(60))
        .with_driver_yield(Duration::from_secs(60))
        .with_lag_tolerance(tolerance)
        .build()
        .unwrap();
    let log: Rc<RefCell<Vec<&'static str>>> = Rc::default();
    let parked: Rc<RefCell<Option<Waker>>> = Rc::default();
    let fg = executor.queue(0).unwrap().spawn({
        let (log, parked) = (log.clone(), parked.clone());
        async move {
            spin(Duration::from_millis(50));
            log.borrow_mut().push("fg ran 50 ms");
            let mut waited = false;
            poll_fn(|cx| {
                if waited {
                    return Poll::Ready(());
                }
                waited = true;
                *parked.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            })
            .await;
            log.borrow_mut().push("fg resumed");
        }
    });
    let bg = executor.queue(1).unwrap().spawn({
        let log = log.clone();
        async move {
            let waker = parked.borrow_mut().take().expect("fg ran first and parked");
            waker.wake();
            log.borrow_mut().push("bg woke fg");
            yield_maybe().await;
            log.borrow_mut().push("bg went on");
        }
    });
    runtime().block_on(executor.run_until(common::outputs_of(vec![fg, bg])));
    let log = log.borrow().clone();
    log
}

#[test]
fn lag_tolerance_lets_a_queue_with_a_small_debt_preempt() {
    let _watchdog = common::watchdog();
    assert_eq!(
        lag_tolerance_order(Duration::from_secs(1)),
        ["fg ran 50 ms", "bg woke fg", "fg resumed", "bg went on"],
        "with a 1 s tolerance the 5 ms debt should not hold queue 0 back"
    );
}

#[test]
fn without_lag_tolerance_a_debt_waits_to_be_repaid() {
    let _watchdog = common::watchdog();
    assert_eq!(
        lag_tolerance_order(Duration::ZERO),
        ["fg ran 50 ms", "bg woke fg", "bg went on", "fg resumed"]
    );
}

/// Counts its consultations; never changes the weight.
struct Counting {
    calls: Rc<Cell<u32>>,
    interval: Duration,
}

impl WeightController<u8> for Counting {
    fn weight(&mut self, _stats: &QueueStats<u8>) -> Option<u32> {
        self.calls.set(self.calls.get() + 1);
        None
    }

    fn interval(&self) -> Duration {
        self.interval
    }
}

/// Runs 2,000 polls of 50 µs with a 10 µs `driver_yield` (so about one turn per
/// poll) under a counting controller; returns (consultations, driver yields, wall
/// time of the run).
fn consultations(interval: Duration) -> (u32, u64, Duration) {
    let calls = Rc::new(Cell::new(0));
    let executor = ExecutorBuilder::new()
        .with_queue(0u8, 1)
        .with_driver_yield(Duration::from_micros(10))
        .with_weight_controller(
            0,
            Counting {
                calls: calls.clone(),
                interval,
            },
        )
        .build()
        .unwrap();
    let task = executor.queue(0).unwrap().spawn(async {
        for _ in 0..2_000 {
            spin(Duration::from_micros(50));
            yield_now().await;
        }
    });
    let start = Instant::now();
    runtime().block_on(executor.run_until(task)).unwrap();
    let elapsed = start.elapsed();
    (calls.get(), executor.stats().driver_yields, elapsed)
}

#[test]
fn weight_controller_is_consulted_once_per_interval() {
    let _watchdog = common::watchdog();
    let (calls, turns, _) = consultations(Duration::from_secs(3_600));
    assert!(turns >= 500, "only {turns} driver yields: the test is void");
    assert_eq!(
        calls, 1,
        "interval 1 h, but consulted {calls} times in {turns} turns"
    );

    let (calls, turns, elapsed) = consultations(Duration::from_millis(5));
    let most = elapsed.as_millis() as u32 / 5 + 1;
    assert!(
        (2..=most).contains(&calls),
        "interval 5 ms over {elapsed:?} ({turns} turns): {calls} consultations, expected 2..={most}"
    );
}
