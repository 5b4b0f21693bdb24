//! `Executor::run_until`: returns the future's output, leaves unfinished tasks for the
//! next run, refuses re-entrant use with a clear panic, and nests across executors.

mod common;

use std::cell::Cell;
use std::future::{poll_fn, Future};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

use clockworker::{yield_now, ExecutorBuilder};
use common::{block_on_local, panic_text, runtime, wait_until, CountPolls, Q};

#[test]
fn returns_the_output_of_its_future() {
    let _watchdog = common::watchdog();
    let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    let q = executor.queue(0).unwrap();
    let out = block_on_local(executor.run_until(async move {
        let h = q.spawn(async {
            tokio::time::sleep(Duration::from_millis(1)).await;
            20
        });
        yield_now().await;
        h.await.unwrap() + 22
    }));
    assert_eq!(out, 42);
}

#[test]
fn future_that_completes_immediately() {
    let _watchdog = common::watchdog();
    let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    assert_eq!(block_on_local(executor.run_until(async { "now" })), "now");
    assert_eq!(block_on_local(executor.run_until(std::future::ready(5))), 5);
    // Also with tasks around, which stay pending.
    let q = executor.queue(0).unwrap();
    let h = q.spawn(async { 1 });
    assert_eq!(block_on_local(executor.run_until(async { 2 })), 2);
    assert_eq!(block_on_local(executor.run_until(h)).unwrap(), 1);
}

#[test]
fn pending_tasks_resume_in_the_next_run_until() {
    let _watchdog = common::watchdog();
    let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    let q = executor.queue(0).unwrap();
    let polls = Rc::new(Cell::new(0));
    let (tx1, rx1) = tokio::sync::oneshot::channel::<u32>();
    let (tx2, rx2) = tokio::sync::oneshot::channel::<u32>();
    let h = q.spawn(CountPolls::new(
        async move { rx1.await.unwrap() + rx2.await.unwrap() },
        polls.clone(),
    ));
    let rt = runtime();
    let local = tokio::task::LocalSet::new();

    // First run: the task is polled once and parks on rx1.
    let p = polls.clone();
    let ok = local.block_on(
        &rt,
        executor.run_until(wait_until(Duration::from_secs(5), move || p.get() == 1)),
    );
    assert!(ok);
    assert_eq!(polls.get(), 1);

    // Woken between runs: nothing polls it until the executor runs again.
    tx1.send(10).unwrap();
    assert_eq!(polls.get(), 1);
    assert_eq!(executor.queue_stats(0).unwrap().ready, 1);

    // Second run: polled once more, parks on rx2.
    let p = polls.clone();
    let ok = local.block_on(
        &rt,
        executor.run_until(wait_until(Duration::from_secs(5), move || p.get() == 2)),
    );
    assert!(ok);
    assert!(!h.is_finished());

    // A run whose future completes at once does not lose the task either.
    assert_eq!(local.block_on(&rt, executor.run_until(async { 0 })), 0);

    tx2.send(32).unwrap();
    let out = local.block_on(&rt, executor.run_until(h));
    assert_eq!(out.unwrap(), 42);
    assert_eq!(polls.get(), 3, "one poll per wake, none lost or repeated");
}

#[test]
fn ready_tasks_resume_in_the_next_run_until() {
    let _watchdog = common::watchdog();
    let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    let q = executor.queue(0).unwrap();
    let rounds = Rc::new(Cell::new(0u32));
    let h = q.spawn({
        let rounds = rounds.clone();
        async move {
            while rounds.get() < 1000 {
                rounds.set(rounds.get() + 1);
                yield_now().await;
            }
        }
    });
    let rt = runtime();
    let local = tokio::task::LocalSet::new();
    let r = rounds.clone();
    local.block_on(
        &rt,
        executor.run_until(wait_until(Duration::from_secs(5), move || r.get() >= 10)),
    );
    let after_first = rounds.get();
    assert!((10..1000).contains(&after_first), "{after_first}");
    // Not driven between runs.
    assert_eq!(rounds.get(), after_first);
    local.block_on(&rt, executor.run_until(h)).unwrap();
    assert_eq!(rounds.get(), 1000);
}

/// Polls `future` once inside `catch_unwind` from the current task's context, and
/// returns the panic message if polling panicked.
async fn poll_once_catching<F: Future>(future: F) -> Option<String> {
    let mut future = pin!(future);
    poll_fn(|cx| {
        let outcome = catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx).is_ready()));
        Poll::Ready(match outcome {
            Ok(_) => None,
            Err(payload) => Some(panic_text(&*payload).unwrap_or_default()),
        })
    })
    .await
}

#[test]
fn run_until_from_inside_own_task_panics_clearly() {
    let _watchdog = common::watchdog();
    let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    let q = executor.queue(0).unwrap();
    let h = q.spawn({
        let ex = executor.clone();
        async move {
            let nested_until = poll_once_catching(ex.run_until(async { 1 })).await;
            let nested_run = poll_once_catching(ex.run()).await;
            // The task goes on normally after the refused calls.
            yield_now().await;
            (nested_until, nested_run)
        }
    });
    let (nested_until, nested_run) = block_on_local(executor.run_until(h)).unwrap();
    for (what, message) in [("run_until", nested_until), ("run", nested_run)] {
        let message = message.unwrap_or_else(|| panic!("re-entrant {what} did not panic"));
        assert!(
            message.contains("already running"),
            "re-entrant {what} panic message is unclear: {message:?}"
        );
    }
    // The executor is intact afterwards.
    let q = executor.queue(0).unwrap();
    assert_eq!(
        block_on_local(executor.run_until(q.spawn(async { 3 }))).unwrap(),
        3
    );
}

#[test]
fn run_until_from_inside_its_own_main_future_panics_clearly() {
    let _watchdog = common::watchdog();
    let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    let message = block_on_local(executor.run_until({
        let ex = executor.clone();
        async move { poll_once_catching(ex.run_until(async {})).await }
    }));
    let message = message.expect("re-entrant run_until did not panic");
    assert!(message.contains("already running"), "{message:?}");
}

#[test]
fn run_until_re_entrance_propagates_in_default_mode() {
    let _watchdog = common::watchdog();
    let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    let q = executor.queue(0).unwrap();
    drop(q.spawn({
        let ex = executor.clone();
        async move { ex.run_until(async {}).await }
    }));
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        block_on_local(executor.run_until(std::future::pending::<()>()))
    }));
    let message = panic_text(&*outcome.expect_err("must panic")).unwrap_or_default();
    assert!(message.contains("already running"), "{message:?}");
}

#[test]
fn nested_executors_work() {
    let _watchdog = common::watchdog();
    let outer = ExecutorBuilder::new()
        .with_queue(Q::Fg, 2)
        .with_queue(Q::Bg, 1)
        .build()
        .unwrap();
    let inner = ExecutorBuilder::new()
        .with_queue("a", 1)
        .with_queue("b", 1)
        .build()
        .unwrap();
    let outer_bg_ran = Rc::new(Cell::new(0u32));
    let bg = outer.queue(Q::Bg).unwrap();
    let sibling = bg.spawn({
        let ran = outer_bg_ran.clone();
        async move {
            for _ in 0..20 {
                ran.set(ran.get() + 1);
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
            "sibling done"
        }
    });
    let fg = outer.queue(Q::Fg).unwrap();
    let nested = fg.spawn({
        let inner = inner.clone();
        async move {
            let a = inner.queue("a").unwrap();
            let b = inner.queue("b").unwrap();
            inner
                .run_until(async move {
                    let mut handles = Vec::new();
                    for i in 0..10u64 {
                        let q = if i % 2 == 0 { &a } else { &b };
                        handles.push(q.spawn(async move {
                            yield_now().await;
                            clockworker::yield_maybe().await;
                            tokio::time::sleep(Duration::from_millis(1)).await;
                            i * i
                        }));
                    }
                    let mut sum = 0;
                    for h in handles {
                        sum += h.await.unwrap();
                    }
                    sum
                })
                .await
        }
    });
    let (nested_sum, sibling) = block_on_local(
        outer.run_until(async move { (nested.await.unwrap(), sibling.await.unwrap()) }),
    );
    assert_eq!(nested_sum, (0..10u64).map(|i| i * i).sum::<u64>());
    assert_eq!(sibling, "sibling done");
    assert_eq!(outer_bg_ran.get(), 20);
    let a = inner.queue_stats("a").unwrap();
    let b = inner.queue_stats("b").unwrap();
    assert_eq!(a.completed + b.completed, 10);
    assert_eq!(outer.queue_stats(Q::Fg).unwrap().completed, 1);
    // Inner tasks are not counted by the outer executor.
    assert_eq!(outer.queue_stats(Q::Bg).unwrap().completed, 1);
    assert_eq!(outer.queue_stats(Q::Fg).unwrap().spawned, 1);
}

#[test]
fn inner_executor_can_run_outer_tasks_via_handles() {
    let _watchdog = common::watchdog();
    // Executor B, run from a task of A, awaits a handle of an A task: A's task becomes
    // ready while B's loop runs, and completes once control returns to A.
    let a = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    let b = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    let qa = a.queue(0).unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<u32>();
    let a_task = qa.spawn(async move { rx.await.unwrap() * 2 });
    let runner = qa.spawn({
        let b = b.clone();
        async move {
            let qb = b.queue(0).unwrap();
            let sent = b
                .run_until(async move {
                    qb.spawn(async move {
                        yield_now().await;
                        tx.send(21).is_ok()
                    })
                    .await
                    .unwrap()
                })
                .await;
            sent
        }
    });
    let (sent, doubled) =
        block_on_local(a.run_until(async move { (runner.await.unwrap(), a_task.await.unwrap()) }));
    assert!(sent);
    assert_eq!(doubled, 42);
}

#[test]
fn a_woken_future_waits_no_longer_than_the_task_poll_that_passes_20_us() {
    let _watchdog = common::watchdog();
    // A turn long enough that the return to the host is not what ends the wait.
    let executor = ExecutorBuilder::new()
        .with_queue(0u8, 1)
        .with_driver_yield(Duration::from_millis(500))
        .build()
        .unwrap();
    let q = executor.queue(0).unwrap();
    // The only ready task: polls of 2 ms, far past the driven future's 20 µs bound.
    let polls = Rc::new(Cell::new(0u32));
    let counted = polls.clone();
    let spinner = q.spawn(async move {
        for _ in 0..4 {
            counted.set(counted.get() + 1);
            common::spin(Duration::from_millis(2));
            yield_now().await;
        }
    });
    block_on_local(executor.run_until(async move {
        for _ in 0..2 {
            let before = polls.get();
            common::yield_self().await;
            assert_eq!(
                polls.get() - before,
                1,
                "the driven future, woken, waited for more than the poll that took 2 ms"
            );
        }
        spinner.await.unwrap();
    }));
}

#[test]
fn a_future_joining_short_tasks_finds_them_finished_in_batches() {
    let _watchdog = common::watchdog();
    const TASKS: usize = 2_000;
    let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    let q = executor.queue(0).unwrap();
    let main_polls = Rc::new(Cell::new(0));
    let joined = block_on_local(executor.run_until(CountPolls::new(
        async move {
            let handles: Vec<_> = (0..TASKS).map(|i| q.spawn(async move { i })).collect();
            let mut sum = 0;
            for h in handles {
                sum += h.await.unwrap();
            }
            sum
        },
        main_polls.clone(),
    )));
    assert_eq!(joined, TASKS * (TASKS - 1) / 2);
    // Polled after every task that finished, as it once was, it would be polled
    // ~2,000 times; with batches of up to 32 polls or 20 µs, ~60–200 times. Half of
    // 2,000 leaves room for a machine that stalls the test thread often.
    assert!(
        main_polls.get() <= TASKS / 2,
        "the driven future was polled {} times to join {TASKS} one-poll tasks",
        main_polls.get()
    );
}
