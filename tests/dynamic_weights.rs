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
