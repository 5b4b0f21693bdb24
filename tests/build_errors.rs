//! `ExecutorBuilder::build` validation: one `BuildError` variant per cause, readable
//! messages, accepted boundaries, and the queue lookup error for unknown keys.

mod common;

use std::time::Duration;

use clockworker::{BuildError, ExecutorBuilder, SpawnError, MAX_DURATION_SETTING, MAX_WEIGHT};
use common::{block_on_local, Q};

fn assert_is_error<E: std::error::Error>(_: &E) {}

#[test]
fn no_queues_is_rejected() {
    let err = ExecutorBuilder::<u8>::new().build().unwrap_err();
    assert!(matches!(err, BuildError::NoQueues), "{err:?}");
    assert_is_error(&err);
    assert!(err.to_string().contains("no queues"), "{err}");
}

#[test]
fn zero_weight_is_rejected_and_names_the_queue() {
    let err = ExecutorBuilder::new()
        .with_queue(Q::Fg, 1)
        .with_queue(Q::Bg, 0)
        .build()
        .unwrap_err();
    assert!(matches!(err, BuildError::ZeroWeight(Q::Bg)), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("Bg"), "{msg}");
    assert!(msg.contains("weight 0"), "{msg}");
}

#[test]
fn weight_above_max_is_rejected_and_names_key_and_weight() {
    let err = ExecutorBuilder::new()
        .with_queue(7u8, MAX_WEIGHT + 1)
        .build()
        .unwrap_err();
    assert!(
        matches!(err, BuildError::WeightTooLarge { key: 7, weight } if weight == MAX_WEIGHT + 1),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains('7'), "{msg}");
    assert!(msg.contains(&(MAX_WEIGHT + 1).to_string()), "{msg}");
    assert!(msg.contains(&MAX_WEIGHT.to_string()), "{msg}");
}

#[test]
fn weight_u32_max_is_rejected() {
    let err = ExecutorBuilder::new()
        .with_queue("big", u32::MAX)
        .build()
        .unwrap_err();
    assert!(
        matches!(
            err,
            BuildError::WeightTooLarge {
                key: "big",
                weight: u32::MAX
            }
        ),
        "{err:?}"
    );
}

#[test]
fn max_weight_and_weight_one_are_accepted_and_work() {
    let executor = ExecutorBuilder::new()
        .with_queue(Q::Fg, MAX_WEIGHT)
        .with_queue(Q::Bg, 1)
        .build()
        .expect("MAX_WEIGHT is a valid weight");
    assert_eq!(executor.queue_stats(Q::Fg).unwrap().weight, MAX_WEIGHT);
    assert_eq!(executor.queue_stats(Q::Bg).unwrap().weight, 1);
    let fg = executor.queue(Q::Fg).unwrap();
    let bg = executor.queue(Q::Bg).unwrap();
    let sum = block_on_local(executor.run_until(async move {
        let a = fg.spawn(async { 1 });
        let b = bg.spawn(async { 2 });
        a.await.unwrap() + b.await.unwrap()
    }));
    assert_eq!(sum, 3);
}

#[test]
fn duplicate_key_is_rejected_and_names_the_key() {
    let err = ExecutorBuilder::new()
        .with_queue("db", 1)
        .with_queue("net", 2)
        .with_queue("db", 3)
        .build()
        .unwrap_err();
    assert!(matches!(err, BuildError::DuplicateQueue("db")), "{err:?}");
    assert!(err.to_string().contains("\"db\""), "{err}");
}

/// Asserts `err` is `InvalidDuration` for `setting` with `value`, and that its message
/// names both.
fn assert_invalid_duration(err: BuildError<u8>, setting: &str, value: Duration) {
    match &err {
        BuildError::InvalidDuration {
            setting: s,
            value: v,
            ..
        } => {
            assert_eq!(*s, setting, "{err:?}");
            assert_eq!(*v, value, "{err:?}");
        }
        other => panic!("expected InvalidDuration for {setting}, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains(setting), "{msg}");
    assert!(msg.contains(&format!("{value:?}")), "{msg}");
}

fn one_queue() -> ExecutorBuilder<u8> {
    ExecutorBuilder::new().with_queue(0u8, 1)
}

#[test]
fn zero_durations_are_rejected() {
    let err = one_queue()
        .with_sched_latency(Duration::ZERO)
        .build()
        .unwrap_err();
    assert_invalid_duration(err, "sched_latency", Duration::ZERO);

    let err = one_queue()
        .with_min_slice(Duration::ZERO)
        .build()
        .unwrap_err();
    assert_invalid_duration(err, "min_slice", Duration::ZERO);

    let err = one_queue()
        .with_driver_yield(Duration::ZERO)
        .build()
        .unwrap_err();
    assert_invalid_duration(err, "driver_yield", Duration::ZERO);

    let err = one_queue()
        .with_host_poll_interval(Duration::ZERO)
        .build()
        .unwrap_err();
    assert_invalid_duration(err, "host_poll_interval", Duration::ZERO);
}

#[test]
fn durations_over_the_maximum_are_rejected() {
    let over = MAX_DURATION_SETTING + Duration::from_nanos(1);

    let err = one_queue().with_sched_latency(over).build().unwrap_err();
    assert_invalid_duration(err, "sched_latency", over);

    // min_slice over the maximum is also above sched_latency; either way it must be
    // reported against min_slice.
    let err = one_queue()
        .with_sched_latency(MAX_DURATION_SETTING)
        .with_min_slice(over)
        .build()
        .unwrap_err();
    assert_invalid_duration(err, "min_slice", over);

    let err = one_queue().with_driver_yield(over).build().unwrap_err();
    assert_invalid_duration(err, "driver_yield", over);

    let err = one_queue()
        .with_driver_yield(Duration::MAX)
        .build()
        .unwrap_err();
    assert_invalid_duration(err, "driver_yield", Duration::MAX);

    let err = one_queue().with_lag_tolerance(over).build().unwrap_err();
    assert_invalid_duration(err, "lag_tolerance", over);
}

#[test]
fn boundary_durations_are_accepted() {
    one_queue()
        .with_sched_latency(MAX_DURATION_SETTING)
        .with_min_slice(MAX_DURATION_SETTING)
        .with_driver_yield(MAX_DURATION_SETTING)
        .build()
        .expect("the maximum itself is valid, and min_slice == sched_latency is valid");
    one_queue()
        .with_sched_latency(Duration::from_nanos(1))
        .with_min_slice(Duration::from_nanos(1))
        .with_driver_yield(Duration::from_nanos(1))
        .build()
        .expect("1 ns is valid");
    one_queue()
        .with_lag_tolerance(Duration::ZERO)
        .build()
        .expect("no lag tolerance (strict EEVDF) is valid");
    one_queue()
        .with_lag_tolerance(MAX_DURATION_SETTING)
        .build()
        .expect("the maximum lag tolerance is valid");
}

#[test]
fn min_slice_above_sched_latency_is_rejected() {
    let err = one_queue()
        .with_sched_latency(Duration::from_millis(1))
        .with_min_slice(Duration::from_millis(2))
        .build()
        .unwrap_err();
    assert_eq!(
        err,
        BuildError::MinSliceAboveSchedLatency {
            min_slice: Duration::from_millis(2),
            sched_latency: Duration::from_millis(1),
        }
    );

    // The default min_slice (100 µs) with a shorter sched_latency is just as invalid,
    // and the message names both settings and the way out.
    let err = one_queue()
        .with_sched_latency(Duration::from_micros(50))
        .build()
        .unwrap_err();
    assert_eq!(
        err,
        BuildError::MinSliceAboveSchedLatency {
            min_slice: clockworker::DEFAULT_MIN_SLICE,
            sched_latency: Duration::from_micros(50),
        }
    );
    let message = err.to_string();
    for needle in [
        "min_slice (100µs)",
        "sched_latency (50µs)",
        "with_min_slice",
        "at most 50µs",
    ] {
        assert!(
            message.contains(needle),
            "{needle:?} missing from: {message}"
        );
    }
}

#[test]
fn u8_keys_work_and_unknown_u8_is_reported() {
    let executor = ExecutorBuilder::new()
        .with_queue(3u8, 2)
        .with_queue(9u8, 1)
        .build()
        .unwrap();
    assert_eq!(executor.queue_keys(), &[3, 9]);
    let err = executor.queue(4).unwrap_err();
    assert!(matches!(err, SpawnError::UnknownQueue(4)), "{err:?}");
    assert_is_error(&err);
    assert!(err.to_string().contains('4'), "{err}");

    let q = executor.queue(9).unwrap();
    assert_eq!(q.key(), 9);
    let out = block_on_local(executor.run_until(q.spawn(async { 99u8 })));
    assert_eq!(out.unwrap(), 99);
}

#[test]
fn enum_keys_work_and_unknown_enum_is_reported() {
    let executor = ExecutorBuilder::new().with_queue(Q::Fg, 4).build().unwrap();
    let err = executor.queue(Q::Bg).unwrap_err();
    assert!(matches!(err, SpawnError::UnknownQueue(Q::Bg)), "{err:?}");
    assert!(err.to_string().contains("Bg"), "{err}");

    let q = executor.queue(Q::Fg).unwrap();
    assert_eq!(q.key(), Q::Fg);
    let out = block_on_local(executor.run_until(q.spawn(async { "fg" })));
    assert_eq!(out.unwrap(), "fg");
}

#[test]
fn str_keys_work_and_unknown_str_is_reported() {
    let executor = ExecutorBuilder::new()
        .with_queue("requests", 8)
        .with_queue("compaction", 1)
        .build()
        .unwrap();
    let err = executor.queue("flush").unwrap_err();
    assert!(matches!(err, SpawnError::UnknownQueue("flush")), "{err:?}");
    assert!(err.to_string().contains("\"flush\""), "{err}");

    let requests = executor.queue("requests").unwrap();
    let compaction = executor.queue("compaction").unwrap();
    let out = block_on_local(executor.run_until(async move {
        let a = requests.spawn(async { 20 });
        let b = compaction.spawn(async { 22 });
        a.await.unwrap() + b.await.unwrap()
    }));
    assert_eq!(out, 42);
    assert_eq!(executor.queue_stats("requests").unwrap().completed, 1);
    assert_eq!(executor.queue_stats("compaction").unwrap().completed, 1);
}

#[test]
fn tuple_keys_work() {
    let executor = ExecutorBuilder::new()
        .with_queue((0u16, 'a'), 1)
        .with_queue((0u16, 'b'), 1)
        .build()
        .unwrap();
    assert!(executor.queue((0, 'a')).is_ok());
    assert!(matches!(
        executor.queue((1, 'a')),
        Err(SpawnError::UnknownQueue((1, 'a')))
    ));
}

#[test]
fn more_queues_than_an_executor_holds_is_rejected_with_the_limit() {
    let mut builder = ExecutorBuilder::new();
    for key in 0..=clockworker::MAX_QUEUES as u32 {
        builder = builder.with_queue(key, 1);
    }
    let err = builder.build().unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("65537 queues") && msg.contains("at most 65536"),
        "{msg}"
    );
    match err {
        BuildError::TooManyQueues { count, max } => {
            assert_eq!((count, max), (clockworker::MAX_QUEUES + 1, 65_536));
        }
        other => panic!("expected TooManyQueues, got {other:?}"),
    }
}

#[test]
fn exactly_max_queues_is_accepted_and_the_last_queue_runs_tasks() {
    let _watchdog = common::watchdog();
    let mut builder = ExecutorBuilder::new();
    for key in 0..clockworker::MAX_QUEUES as u32 {
        builder = builder.with_queue(key, 1);
    }
    let executor = builder.build().expect("MAX_QUEUES queues are allowed");
    let last = executor
        .queue(clockworker::MAX_QUEUES as u32 - 1)
        .expect("the last queue");
    let task = last.spawn(async { 7 });
    assert_eq!(block_on_local(executor.run_until(task)).unwrap(), 7);
    let stats = executor
        .queue_stats(clockworker::MAX_QUEUES as u32 - 1)
        .unwrap();
    assert_eq!(stats.completed, 1, "the task was counted in its own queue");
}
