//! Task panics: caught (`with_panic_on_task_panic(false)`) they resolve the handle to
//! `JoinError::Panic` with the payload; by default they propagate out of `run_until`,
//! and the executor stays usable afterwards.

mod common;

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::time::Duration;

use clockworker::{yield_now, ExecutorBuilder, JoinError};
use common::{block_on_local, panic_text, runtime, DropCounter, Q};

#[test]
fn caught_panic_resolves_handle_with_payload() {
    let _watchdog = common::watchdog();
    let executor = ExecutorBuilder::new()
        .with_queue(0u8, 1)
        .with_panic_on_task_panic(false)
        .build()
        .unwrap();
    let q = executor.queue(0).unwrap();
    let drops = DropCounter::new();
    let (formatted, literal) = block_on_local(executor.run_until({
        let guard = drops.guard();
        async move {
            let formatted = q.spawn(async move {
                let _guard = guard;
                yield_now().await;
                if true {
                    panic!("task {} exploded", std::hint::black_box(7));
                }
                1u32
            });
            let literal = q.spawn(async {
                if true {
                    panic!("static message");
                }
            });
            (formatted.await, literal.await)
        }
    }));

    let err = formatted.unwrap_err();
    assert!(err.is_panic());
    assert!(!err.is_cancelled());
    assert!(err.to_string().contains("task 7 exploded"), "{err}");
    assert!(format!("{err:?}").contains("task 7 exploded"), "{err:?}");
    let payload = err.into_panic();
    assert_eq!(panic_text(&*payload).as_deref(), Some("task 7 exploded"));

    let err = literal.unwrap_err();
    let payload = err.try_into_panic().expect("a panic error");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"static message"));

    assert_eq!(
        drops.count(),
        1,
        "the panicked future is dropped exactly once"
    );
    let stats = executor.queue_stats(0).unwrap();
    assert_eq!(stats.panicked, 2);
    assert_eq!(stats.completed, 0);
    assert_eq!(stats.cancelled, 0);
    assert_eq!(executor.stats().live_tasks, 0);
}

#[test]
fn caught_panic_payload_can_be_resumed() {
    let _watchdog = common::watchdog();
    let executor = ExecutorBuilder::new()
        .with_queue(0u8, 1)
        .with_panic_on_task_panic(false)
        .build()
        .unwrap();
    let q = executor.queue(0).unwrap();
    let err = block_on_local(executor.run_until(q.spawn(async {
        std::panic::panic_any(1234u64);
    })))
    .unwrap_err();
    // A non-string payload: Display has no message but still says it panicked.
    assert!(err.to_string().contains("panicked"), "{err}");
    let resumed = catch_unwind(AssertUnwindSafe(|| resume_unwind(err.into_panic()))).unwrap_err();
    assert_eq!(resumed.downcast_ref::<u64>(), Some(&1234));
}

#[test]
fn other_tasks_keep_running_after_caught_panics() {
    let _watchdog = common::watchdog();
    let executor = ExecutorBuilder::new()
        .with_queue(Q::Fg, 2)
        .with_queue(Q::Bg, 1)
        .with_panic_on_task_panic(false)
        .build()
        .unwrap();
    let fg = executor.queue(Q::Fg).unwrap();
    let bg = executor.queue(Q::Bg).unwrap();
    let results = block_on_local(executor.run_until(async move {
        let mut handles = Vec::new();
        for i in 0..20u32 {
            let q = if i % 2 == 0 { &fg } else { &bg };
            handles.push(q.spawn(async move {
                for _ in 0..3 {
                    yield_now().await;
                }
                if i % 5 == 0 {
                    panic!("panic in task {i}");
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
                i
            }));
        }
        let mut results = Vec::new();
        for h in handles {
            results.push(h.await);
        }
        results
    }));
    for (i, result) in results.into_iter().enumerate() {
        if i % 5 == 0 {
            let payload = result.unwrap_err().into_panic();
            assert_eq!(panic_text(&*payload).unwrap(), format!("panic in task {i}"));
        } else {
            assert_eq!(result.unwrap(), i as u32);
        }
    }
    let fg = executor.queue_stats(Q::Fg).unwrap();
    let bg = executor.queue_stats(Q::Bg).unwrap();
    // Panicking tasks: 0, 5, 10, 15 -> 0 and 10 are on Fg (even), 5 and 15 on Bg.
    assert_eq!(fg.panicked, 2);
    assert_eq!(bg.panicked, 2);
    assert_eq!(fg.completed, 8);
    assert_eq!(bg.completed, 8);
    assert_eq!(fg.spawned, 10);
    assert_eq!(bg.spawned, 10);
}

#[test]
fn default_mode_propagates_task_panic_out_of_run_until() {
    let _watchdog = common::watchdog();
    let rt = runtime();
    let local = tokio::task::LocalSet::new();
    let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    let q = executor.queue(0).unwrap();
    let bad = q.spawn(async {
        yield_now().await;
        if true {
            panic!("default mode boom {}", 99);
        }
    });
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        local.block_on(&rt, executor.run_until(std::future::pending::<()>()))
    }));
    let payload = outcome.expect_err("the task panic must leave run_until");
    assert_eq!(
        panic_text(&*payload).as_deref(),
        Some("default mode boom 99")
    );
    assert_eq!(executor.queue_stats(0).unwrap().panicked, 1);
    assert!(bad.is_finished());
    let joined = local.block_on(&rt, executor.run_until(bad));
    assert!(
        joined.is_err(),
        "the panicked task's handle must resolve to an error"
    );
}

#[test]
fn default_mode_propagates_task_panic_out_of_run() {
    let _watchdog = common::watchdog();
    let rt = runtime();
    let local = tokio::task::LocalSet::new();
    let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    let q = executor.queue(0).unwrap();
    drop(q.spawn(async { panic!("from run") }));
    let outcome = catch_unwind(AssertUnwindSafe(|| local.block_on(&rt, executor.run())));
    let payload = outcome.expect_err("the task panic must leave run");
    assert_eq!(panic_text(&*payload).as_deref(), Some("from run"));
}

/// After a task panic propagated out of `run_until`, the same executor (on the same
/// host runtime) runs old and new tasks to completion.
#[test]
fn executor_is_usable_after_a_propagated_panic() {
    let _watchdog = common::watchdog();
    let rt = runtime();
    let local = tokio::task::LocalSet::new();
    let executor = ExecutorBuilder::new()
        .with_queue(Q::Fg, 2)
        .with_queue(Q::Bg, 1)
        .build()
        .unwrap();
    let fg = executor.queue(Q::Fg).unwrap();
    let bg = executor.queue(Q::Bg).unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<u32>();
    // Parked across the panic, woken after it.
    let parked = bg.spawn(async move { rx.await.unwrap() + 1 });
    // Ready across the panic: keeps yielding.
    let busy = fg.spawn(async {
        for _ in 0..50 {
            yield_now().await;
        }
        "busy done"
    });
    drop(fg.spawn(async {
        yield_now().await;
        panic!("one bad task");
    }));
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        local.block_on(&rt, executor.run_until(std::future::pending::<()>()))
    }));
    assert_eq!(
        panic_text(&*outcome.unwrap_err()).as_deref(),
        Some("one bad task")
    );

    tx.send(41).unwrap();
    let (a, b, c, d) = local.block_on(
        &rt,
        executor.run_until(async {
            let new_fg = fg.spawn(async { 5 });
            let new_bg = bg.spawn(async {
                tokio::time::sleep(Duration::from_millis(1)).await;
                6
            });
            (
                parked.await.unwrap(),
                busy.await.unwrap(),
                new_fg.await.unwrap(),
                new_bg.await.unwrap(),
            )
        }),
    );
    assert_eq!((a, b, c, d), (42, "busy done", 5, 6));
    let fg_stats = executor.queue_stats(Q::Fg).unwrap();
    assert_eq!(fg_stats.panicked, 1);
    assert_eq!(fg_stats.completed, 2);
    assert_eq!(executor.queue_stats(Q::Bg).unwrap().completed, 2);
    assert_eq!(executor.stats().live_tasks, 0);

    // And it still shuts down cleanly.
    executor.shutdown();
    local.block_on(&rt, executor.run());
}

/// Same, but the executor moves on to a brand-new host runtime after the panic.
#[test]
fn executor_is_usable_on_a_new_runtime_after_a_propagated_panic() {
    let _watchdog = common::watchdog();
    let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    let q = executor.queue(0).unwrap();
    drop(q.spawn(async { panic!("first runtime") }));
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        block_on_local(executor.run_until(std::future::pending::<()>()))
    }));
    assert!(outcome.is_err());
    let out = block_on_local(executor.run_until(async {
        let h = q.spawn(async {
            tokio::time::sleep(Duration::from_millis(1)).await;
            yield_now().await;
            3
        });
        h.await
    }));
    assert_eq!(out.unwrap(), 3);
}

#[test]
fn panic_is_not_a_cancellation_in_join_error() {
    let _watchdog = common::watchdog();
    let executor = ExecutorBuilder::new()
        .with_queue(0u8, 1)
        .with_panic_on_task_panic(false)
        .build()
        .unwrap();
    let q = executor.queue(0).unwrap();
    let err: JoinError =
        block_on_local(executor.run_until(q.spawn(async { panic!("x") }))).unwrap_err();
    assert!(matches!(err, JoinError::Panic(_)));
}
