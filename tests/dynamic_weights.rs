//! Weights that change at run time: `Executor::set_weight` and weight controllers.

mod common;

use std::time::Duration;

use clockworker::{
    BacklogController, BuildError, ExecutorBuilder, QueueStats, SetWeightError, WeightController,
    MAX_WEIGHT,
};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

#[test]
fn set_weight_validates_like_build() {
    let _watchdog = common::watchdog();
    let executor = ExecutorBuilder::new().with_queue("fg", 4).build().unwrap();
    assert_eq!(executor.set_weight("fg", 9), Ok(()));
    assert_eq!(executor.queue_stats("fg").unwrap().weight, 9);
    assert_eq!(
        executor.set_weight("nope", 1),
        Err(SetWeightError::UnknownQueue("nope"))
    );
    assert_eq!(
        executor.set_weight("fg", 0),
        Err(SetWeightError::ZeroWeight("fg"))
    );
    let err = executor.set_weight("fg", MAX_WEIGHT + 1).unwrap_err();
    assert_eq!(
        err,
        SetWeightError::WeightTooLarge {
            key: "fg",
            weight: MAX_WEIGHT + 1
        }
    );
    assert!(err.to_string().contains(&MAX_WEIGHT.to_string()));
    assert_eq!(
        executor.queue_stats("fg").unwrap().weight,
        9,
        "unchanged by errors"
    );
}

#[test]
fn a_controller_on_an_unknown_queue_is_a_build_error() {
    let _watchdog = common::watchdog();
    let err = ExecutorBuilder::new()
        .with_queue(1u8, 1)
        .with_weight_controller(2u8, BacklogController::new(1, 8, 10))
        .build()
        .unwrap_err();
    assert_eq!(err, BuildError::UnknownQueue(2));
    assert!(err.to_string().contains('2'));
}

/// Consulted every turn: the controller's interval is 1 ns.
#[derive(Clone)]
struct EveryTurn(BacklogController);

impl WeightController<&'static str> for EveryTurn {
    fn weight(&mut self, stats: &QueueStats<&'static str>) -> Option<u32> {
        self.0.weight(stats)
    }
    fn interval(&self) -> Duration {
        Duration::from_nanos(1)
    }
}

#[test]
fn backlog_controller_grows_weight_with_backlog_and_shrinks_it_after() {
    let _watchdog = common::watchdog();
    let rt = runtime();
    let executor = ExecutorBuilder::new()
        .with_queue("fg", 8)
        .with_queue("bg", 1)
        .with_driver_yield(Duration::from_micros(200))
        .with_weight_controller("bg", EveryTurn(BacklogController::new(1, 6, 10)))
        .build()
        .unwrap();
    let bg = executor.queue("bg").unwrap();
    let ex = executor.clone();
    let (max_seen, after) = rt.block_on(executor.run_until(async move {
        let max_seen = std::rc::Rc::new(std::cell::Cell::new(0));
        let mut handles = Vec::new();
        // 100 tasks x 3 polls of 100 us: ~30 ms of work over ~150 turns, so the
        // backlog is visible at many turn starts.
        for _ in 0..100 {
            let (ex, max_seen) = (ex.clone(), max_seen.clone());
            handles.push(bg.spawn(async move {
                for _ in 0..3 {
                    let weight = ex.queue_stats("bg").unwrap().weight;
                    max_seen.set(max_seen.get().max(weight));
                    let start = std::time::Instant::now();
                    while start.elapsed() < Duration::from_micros(100) {}
                    clockworker::yield_now().await;
                }
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
        // Two more turns with an empty queue.
        tokio::time::sleep(Duration::from_millis(1)).await;
        tokio::time::sleep(Duration::from_millis(1)).await;
        (max_seen.get(), ex.queue_stats("bg").unwrap().weight)
    }));
    assert_eq!(
        max_seen, 6,
        "~100 ready tasks / 10 per step = +10, capped at 6"
    );
    assert_eq!(after, 1, "back to base once the backlog is gone");
}

/// A controller's output is clamped into 1..=MAX_WEIGHT and applied.
#[test]
fn controller_output_is_clamped() {
    let _watchdog = common::watchdog();
    struct Wild(u32);
    impl WeightController<u8> for Wild {
        fn weight(&mut self, _stats: &QueueStats<u8>) -> Option<u32> {
            Some(self.0)
        }
        fn interval(&self) -> Duration {
            Duration::from_nanos(1)
        }
    }
    let rt = runtime();
    for (asked, applied) in [(0, 1), (u32::MAX, MAX_WEIGHT), (7, 7)] {
        let executor = ExecutorBuilder::new()
            .with_queue(0u8, 3)
            .with_weight_controller(0u8, Wild(asked))
            .build()
            .unwrap();
        rt.block_on(
            executor.run_until(async { tokio::time::sleep(Duration::from_millis(1)).await }),
        );
        assert_eq!(executor.queue_stats(0).unwrap().weight, applied);
    }
}

/// Queue "a"'s share of one window, in percent: of the CPU time booked
/// (`service_time`), and of the work done (50 µs segments).
///
/// On a loaded machine the OS may stop the test thread inside a poll: the stall is
/// booked to that queue, and EEVDF repays it over the next slices, so a window that
/// ends before the repayment skews the time share one way and the work share the
/// other. A weight that did not take effect gives about 50% by both.
struct Share {
    by_time: f64,
    by_work: f64,
}

impl Share {
    /// The one of the two shares closer to `target`.
    fn closer_to(&self, target: f64) -> f64 {
        if (self.by_time - target).abs() <= (self.by_work - target).abs() {
            self.by_time
        } else {
            self.by_work
        }
    }
}

/// Measured CPU shares follow a weight change. Queues "a" and "b" each run 4 busy
/// tasks (50 µs polls); after 300 ms at 1:1, `change` moves "a" to weight 4 (by
/// `set_weight`, or through a controller), then 300 ms more. Returns "a"'s share in
/// each window.
fn shares_around_a_change(
    builder: ExecutorBuilder<&'static str>,
    change: impl FnOnce(&clockworker::Executor<&'static str>) + 'static,
) -> (Share, Share) {
    use std::cell::Cell;
    use std::rc::Rc;
    let executor = builder
        .with_queue("a", 1)
        .with_queue("b", 1)
        .build()
        .unwrap();
    let stop = Rc::new(Cell::new(false));
    let segments = [Rc::new(Cell::new(0u64)), Rc::new(Cell::new(0u64))];
    for (key, done) in ["a", "b"].into_iter().zip(&segments) {
        let queue = executor.queue(key).unwrap();
        for _ in 0..4 {
            let (stop, done) = (stop.clone(), done.clone());
            drop(queue.spawn(async move {
                while !stop.get() {
                    common::spin(Duration::from_micros(50));
                    done.set(done.get() + 1);
                    clockworker::yield_now().await;
                }
            }));
        }
    }
    // (a's service, b's service, a's segments, b's segments) so far.
    let progress = move |ex: &clockworker::Executor<&'static str>| {
        let a = ex.queue_stats("a").unwrap().service_time.as_secs_f64();
        let b = ex.queue_stats("b").unwrap().service_time.as_secs_f64();
        (a, b, segments[0].get() as f64, segments[1].get() as f64)
    };
    let share = |(a0, b0, sa0, sb0): (f64, f64, f64, f64),
                 (a1, b1, sa1, sb1): (f64, f64, f64, f64)| {
        let (a, b, sa, sb) = (a1 - a0, b1 - b0, sa1 - sa0, sb1 - sb0);
        Share {
            by_time: 100.0 * a / (a + b),
            by_work: 100.0 * sa / (sa + sb),
        }
    };
    let ex = executor.clone();
    runtime().block_on(executor.run_until(async move {
        let window = Duration::from_millis(300);
        let start = progress(&ex);
        tokio::time::sleep(window).await;
        let middle = progress(&ex);
        change(&ex);
        // Let the change take effect (a controller is consulted within 10 ms).
        tokio::time::sleep(Duration::from_millis(30)).await;
        let after_change = progress(&ex);
        tokio::time::sleep(window).await;
        let end = progress(&ex);
        stop.set(true);
        (share(start, middle), share(after_change, end))
    }))
}

/// Asserts that queue "a" had about half the CPU before the change and about 80%
/// after it (`how` names the change).
fn assert_shares_moved((before, after): (Share, Share), how: &str) {
    let at_one_to_one = before.closer_to(50.0);
    assert!(
        (30.0..=70.0).contains(&at_one_to_one),
        "at 1:1 queue a had {:.1}% of the CPU time and {:.1}% of the work, expected 50",
        before.by_time,
        before.by_work
    );
    let at_four_to_one = after.closer_to(80.0);
    assert!(
        (65.0..=95.0).contains(&at_four_to_one),
        "{how} queue a had {:.1}% of the CPU time and {:.1}% of the work (was {at_one_to_one:.1}%), expected 80",
        after.by_time,
        after.by_work
    );
}

#[test]
fn set_weight_moves_the_measured_cpu_share() {
    let _watchdog = common::watchdog();
    let shares = shares_around_a_change(ExecutorBuilder::new(), |ex| {
        ex.set_weight("a", 4).unwrap();
    });
    assert_shares_moved(shares, "after set_weight to 4:1");
}

/// Returns the weight the test put in its cell, once set.
struct Settable(std::rc::Rc<std::cell::Cell<Option<u32>>>);

impl WeightController<&'static str> for Settable {
    fn weight(&mut self, stats: &QueueStats<&'static str>) -> Option<u32> {
        self.0.get().filter(|&weight| weight != stats.weight)
    }
}

#[test]
fn a_controller_moves_the_measured_cpu_share() {
    let _watchdog = common::watchdog();
    let wanted = std::rc::Rc::new(std::cell::Cell::new(None));
    let builder = ExecutorBuilder::new().with_weight_controller("a", Settable(wanted.clone()));
    let shares = shares_around_a_change(builder, move |_| wanted.set(Some(4)));
    assert_shares_moved(shares, "with the controller at 4:1");
}
