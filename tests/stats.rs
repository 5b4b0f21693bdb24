//! `Executor::stats` and `Executor::queue_stats`: counters match what the test did,
//! timings are non-zero where work happened, histograms count every poll.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use clockworker::{yield_now, ExecutorBuilder};
use common::{block_on_local, runtime, spin, Q};

#[test]
fn counters_match_what_happened() {
    let _watchdog = common::watchdog();
    let executor = ExecutorBuilder::new()
        .with_queue(Q::Fg, 2)
        .with_queue(Q::Bg, 1)
        .with_panic_on_task_panic(false)
        .build()
        .unwrap();
    let fg = executor.queue(Q::Fg).unwrap();
    let bg = executor.queue(Q::Bg).unwrap();

    // Fg: 3 tasks x (2 yields + 1) = 9 polls, all complete.
    let fg_handles: Vec<_> = (0..3)
        .map(|_| {
            fg.spawn(async {
                for _ in 0..2 {
                    spin(Duration::from_micros(200));
                    yield_now().await;
                }
            })
        })
        .collect();
    // Bg: one panics on its first poll (1 poll), one completes after a yield (2 polls),
    // one parks forever (1 poll) and is cancelled by the shutdown below.
    let panicking = bg.spawn(async { panic!("counted") });
    let completing = bg.spawn(async {
        yield_now().await;
    });
    let parked = bg.spawn(std::future::pending::<()>());

    let before = executor.queue_stats(Q::Fg).unwrap();
    assert_eq!(before.spawned, 3);
    assert_eq!(
        before.ready, 3,
        "spawned tasks are ready before the executor runs"
    );
    assert_eq!(before.polls, 0);
    assert_eq!(executor.queue_stats(Q::Bg).unwrap().ready, 3);
    assert_eq!(executor.stats().live_tasks, 6);

    block_on_local(executor.run_until(async move {
        for h in fg_handles {
            h.await.unwrap();
        }
        assert!(panicking.await.unwrap_err().is_panic());
        completing.await.unwrap();
        // Let the parked task take its first poll.
        yield_now().await;
    }));
    assert_eq!(
        executor.stats().live_tasks,
        1,
        "only the parked task is alive"
    );
    executor.shutdown();
    assert!(block_on_local(parked).unwrap_err().is_cancelled());

    let fg = executor.queue_stats(Q::Fg).unwrap();
    assert_eq!(fg.key, Q::Fg);
    assert_eq!(fg.weight, 2);
    assert_eq!(fg.spawned, 3);
    assert_eq!(fg.completed, 3);
    assert_eq!(fg.cancelled, 0);
    assert_eq!(fg.panicked, 0);
    assert_eq!(fg.polls, 9);
    assert_eq!(fg.ready, 0);

    let bg = executor.queue_stats(Q::Bg).unwrap();
    assert_eq!(bg.key, Q::Bg);
    assert_eq!(bg.weight, 1);
    assert_eq!(bg.spawned, 3);
    assert_eq!(bg.completed, 1);
    assert_eq!(bg.cancelled, 1);
    assert_eq!(bg.panicked, 1);
    assert_eq!(bg.polls, 4);
    assert_eq!(bg.ready, 0);

    // Fg polls spun 2 x 200 µs per task.
    assert!(
        fg.service_time >= Duration::from_micros(6 * 200),
        "{:?}",
        fg.service_time
    );

    let ex = executor.stats();
    assert_eq!(ex.polls, fg.polls + bg.polls);
    assert!(ex.busy_time > Duration::ZERO);
    assert!(
        ex.busy_time >= fg.service_time + bg.service_time,
        "busy {:?} < service {:?} + {:?}",
        ex.busy_time,
        fg.service_time,
        bg.service_time
    );
    assert_eq!(ex.live_tasks, 0);

    for stats in [&fg, &bg] {
        assert_eq!(
            stats.poll_time.count(),
            stats.polls,
            "poll_time histogram of {:?}",
            stats.key
        );
        assert_eq!(
            stats.queue_delay.count(),
            stats.polls,
            "queue_delay histogram of {:?}",
            stats.key
        );
        let bucket_total: u64 = stats.poll_time.buckets().map(|(_, n)| n).sum();
        assert_eq!(bucket_total, stats.polls);
    }
    // The slowest Fg poll spun 200 µs; the histogram's bound is at least that.
    assert!(fg.poll_time.quantile(1.0).unwrap() >= Duration::from_micros(200));
    assert!(fg.queue_delay.quantile(0.5).is_some());
}

#[test]
fn unknown_queue_has_no_stats() {
    let _watchdog = common::watchdog();
    let executor = ExecutorBuilder::new().with_queue("a", 1).build().unwrap();
    assert!(executor.queue_stats("b").is_none());
    let a = executor.queue_stats("a").unwrap();
    assert_eq!(a.key, "a");
    assert_eq!(a.polls, 0);
    assert_eq!(a.poll_time.count(), 0);
    assert!(a.poll_time.quantile(0.5).is_none());
    let ex = executor.stats();
    assert_eq!(ex.polls, 0);
    assert_eq!(ex.busy_time, Duration::ZERO);
    assert_eq!(ex.live_tasks, 0);
}

#[test]
fn long_polls_show_in_driver_yields_and_max_gap() {
    let _watchdog = common::watchdog();
    let executor = ExecutorBuilder::new()
        .with_queue(0u8, 1)
        .with_driver_yield(Duration::from_millis(1))
        .build()
        .unwrap();
    let q = executor.queue(0).unwrap();
    block_on_local(executor.run_until(async move {
        q.spawn(async {
            spin(Duration::from_millis(5));
            yield_now().await;
            spin(Duration::from_millis(5));
        })
        .await
        .unwrap();
    }));
    let stats = executor.stats();
    assert!(stats.driver_yields >= 1, "{stats:?}");
    assert!(
        stats.max_driver_gap >= Duration::from_millis(5),
        "{stats:?}"
    );
    assert!(stats.busy_time >= Duration::from_millis(10), "{stats:?}");
    assert_eq!(stats.polls, 2);
}

#[test]
fn idle_time_is_measured() {
    let _watchdog = common::watchdog();
    let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    let q = executor.queue(0).unwrap();
    block_on_local(executor.run_until(async move {
        q.spawn(async {
            tokio::time::sleep(Duration::from_millis(30)).await;
        })
        .await
        .unwrap();
    }));
    let stats = executor.stats();
    assert!(stats.idle_time >= Duration::from_millis(20), "{stats:?}");
    assert!(stats.busy_time < stats.idle_time, "{stats:?}");
    assert_eq!(stats.polls, 2);
}

#[test]
fn queue_delay_reflects_waiting_behind_other_tasks() {
    let _watchdog = common::watchdog();
    // Ten tasks spinning 1 ms each, spawned together: the last one waits ~9 ms.
    let executor = ExecutorBuilder::new()
        .with_queue(0u8, 1)
        .with_driver_yield(Duration::from_millis(100))
        .build()
        .unwrap();
    let q = executor.queue(0).unwrap();
    block_on_local(executor.run_until(async move {
        let handles: Vec<_> = (0..10)
            .map(|_| q.spawn(async { spin(Duration::from_millis(1)) }))
            .collect();
        for h in handles {
            h.await.unwrap();
        }
    }));
    let stats = executor.queue_stats(0).unwrap();
    assert_eq!(stats.queue_delay.count(), 10);
    assert!(
        stats.queue_delay.quantile(1.0).unwrap() >= Duration::from_millis(8),
        "{:?}",
        stats.queue_delay.buckets().collect::<Vec<_>>()
    );
}

/// Dropping the future of an aborted task is not a poll of that task.
#[test]
fn aborting_a_task_does_not_count_a_poll() {
    let _watchdog = common::watchdog();
    let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    let q = executor.queue(0).unwrap();
    let never = q.spawn(async {});
    never.abort();
    block_on_local(executor.run_until(q.spawn(async {}))).unwrap();
    let stats = executor.queue_stats(0).unwrap();
    assert_eq!(stats.cancelled, 1);
    assert_eq!(stats.completed, 1);
    assert_eq!(stats.polls, 1, "only the completed task was polled");
    assert_eq!(stats.poll_time.count(), 1);
    assert_eq!(executor.stats().polls, 1);
}

/// A poll that panics (and propagates, the default) still took CPU time and was a poll.
#[test]
fn propagated_panic_poll_is_counted() {
    let _watchdog = common::watchdog();
    let rt = runtime();
    let local = tokio::task::LocalSet::new();
    let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    let q = executor.queue(0).unwrap();
    drop(q.spawn(async {
        spin(Duration::from_millis(5));
        panic!("after 5 ms of work");
    }));
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        local.block_on(&rt, executor.run_until(std::future::pending::<()>()))
    }));
    assert!(outcome.is_err());
    let stats = executor.queue_stats(0).unwrap();
    assert_eq!(stats.panicked, 1);
    assert_eq!(stats.polls, 1, "{stats:?}");
    assert_eq!(stats.poll_time.count(), 1, "{stats:?}");
    assert_eq!(stats.queue_delay.count(), 1, "{stats:?}");
    assert!(stats.service_time >= Duration::from_millis(5), "{stats:?}");
    // The loop is usable afterwards, with the poll booked once.
    let after = q.spawn(async { 7 });
    let seven = local.block_on(&rt, executor.run_until(after)).unwrap();
    assert_eq!(seven, 7);
    assert_eq!(executor.queue_stats(0).unwrap().polls, 2);
}

/// A task woken while the run loop is parked (by a host timer, and by another thread)
/// counts its queue delay from the turn that follows the wake, not from the
/// executor's start nor from when it parked: after 300 ms asleep, every delay stays
/// far below 300 ms. (The delay is measured inside the turn, so a slow host does not
/// lengthen it.)
#[test]
fn queue_delay_of_a_task_woken_while_parked_counts_from_the_wake() {
    let _watchdog = common::watchdog();
    let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    let q = executor.queue(0).unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let sender = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(600));
        tx.send(()).unwrap();
    });
    let timer = q.spawn(async { tokio::time::sleep(Duration::from_millis(300)).await });
    let remote = q.spawn(rx);
    runtime().block_on(executor.run_until(async move {
        timer.await.unwrap();
        remote.await.unwrap().unwrap();
    }));
    sender.join().unwrap();
    let stats = executor.queue_stats(0).unwrap();
    assert_eq!(stats.polls, 4, "two polls per task");
    let longest = stats.queue_delay.quantile(1.0).unwrap();
    assert!(
        longest < Duration::from_millis(150),
        "a queue delay of up to {longest:?} after sleeping 300 and 600 ms: {:?}",
        stats.queue_delay.buckets().collect::<Vec<_>>()
    );
    assert!(executor.stats().idle_time >= Duration::from_millis(500));
}

/// The poll of the driven (`run_until`) future is not booked to the task polled after
/// it: the loop reads the clock again after polling a woken driven future. The driven
/// future spins 20 ms each time it is woken, between polls of a task that does
/// nothing; none of the task's polls may look like 20 ms.
#[test]
fn a_task_poll_does_not_include_the_driven_futures_poll() {
    let _watchdog = common::watchdog();
    let executor = ExecutorBuilder::new().with_queue(Q::Fg, 1).build().unwrap();
    let fg = executor.queue(Q::Fg).unwrap();
    let task = fg.spawn(async {
        for _ in 0..10 {
            yield_now().await;
        }
    });
    runtime().block_on(executor.run_until(async {
        for _ in 0..5 {
            spin(Duration::from_millis(20));
            futures_lite::future::yield_now().await;
        }
        task.await.unwrap();
    }));
    // Booked to the task, the driven future's five 20 ms spins would make five task
    // polls of 20 ms or more. Two are allowed for a loaded machine, where the OS may
    // stop the thread inside a poll (one of the 11 polls took over 10 ms once).
    let poll_time = executor.queue_stats(Q::Fg).unwrap().poll_time;
    let long_polls: u64 = poll_time
        .buckets()
        .filter(|&(upper, _)| upper >= Duration::from_millis(20))
        .map(|(_, polls)| polls)
        .sum();
    assert!(
        long_polls <= 2,
        "{long_polls} task polls of 20 ms or more: the driven future's time was booked \
         to them ({poll_time:?})"
    );
}
