//! clockworker on smol's building blocks: `futures_lite::future::block_on`,
//! `async_io::block_on` (smol's own, which drives the reactor on this thread), and
//! `async_executor::LocalExecutor` with `run()` as one of its tasks.

mod common;

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use async_executor::LocalExecutor;
use async_io::Timer;
use clockworker::{yield_maybe, ExecutorBuilder, JoinError};
use futures_lite::future;

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Q {
    Hi,
    Lo,
}

fn spin(d: Duration) {
    let start = Instant::now();
    while start.elapsed() < d {
        std::hint::spin_loop();
    }
}

#[test]
fn futures_lite_block_on_run_until() {
    let _watchdog = common::watchdog();
    let executor = ExecutorBuilder::new()
        .with_queue(Q::Hi, 2)
        .with_queue(Q::Lo, 1)
        .build()
        .unwrap();
    let hi = executor.queue(Q::Hi).unwrap();
    let lo = executor.queue(Q::Lo).unwrap();
    let (received, yields) = future::block_on(executor.run_until(async move {
        let (tx, rx) = async_channel::bounded::<u32>(2);
        let producer = lo.spawn(async move {
            for i in 0..2_000 {
                tx.send(i).await.unwrap();
            }
        });
        let consumer = hi.spawn(async move {
            let mut got = Vec::new();
            while let Ok(v) = rx.recv().await {
                got.push(v);
            }
            got
        });
        // futures_lite's yield_now wakes at once; it must simply come back.
        let yielder = hi.spawn(async {
            for _ in 0..500 {
                future::yield_now().await;
            }
            500u32
        });
        producer.await.unwrap();
        (consumer.await.unwrap(), yielder.await.unwrap())
    }));
    assert_eq!(received, (0..2_000).collect::<Vec<_>>());
    assert_eq!(yields, 500);
}

/// async-io's timers inside clockworker tasks, hosted by `futures_lite`'s block_on
/// (async-io's fallback thread runs the reactor) and by `async_io::block_on` (the
/// reactor runs on this thread while the run loop is idle).
#[test]
fn async_io_timers_fire_and_never_early() {
    let _watchdog = common::watchdog();
    for use_async_io_block_on in [false, true] {
        let executor = ExecutorBuilder::new().with_queue(Q::Hi, 1).build().unwrap();
        let q = executor.queue(Q::Hi).unwrap();
        let main = executor.run_until(async move {
            let mut handles = Vec::new();
            for ms in [30u64, 1, 12, 5] {
                handles.push(q.spawn(async move {
                    let start = Instant::now();
                    Timer::after(Duration::from_millis(ms)).await;
                    (ms, start.elapsed())
                }));
            }
            let mut out = Vec::new();
            for h in handles {
                out.push(h.await.unwrap());
            }
            out
        });
        let results = if use_async_io_block_on {
            async_io::block_on(main)
        } else {
            future::block_on(main)
        };
        for (ms, elapsed) in results {
            assert!(
                elapsed >= Duration::from_millis(ms),
                "async_io::block_on={use_async_io_block_on}: {ms} ms timer fired after {elapsed:?}"
            );
            assert!(elapsed < Duration::from_millis(ms) + Duration::from_secs(2));
        }
    }
}

/// `run()` is one task of a `LocalExecutor`; a sibling ticker must keep running while
/// clockworker's tasks are CPU-bound (the loop hands the thread back every
/// `driver_yield`), and `shutdown()` from another sibling makes `run()` return.
#[test]
fn run_inside_local_executor_beside_other_tasks() {
    let _watchdog = common::watchdog();
    let local = LocalExecutor::new();
    future::block_on(local.run(async {
        let executor = ExecutorBuilder::new()
            .with_queue(Q::Hi, 1)
            .with_queue(Q::Lo, 1)
            .with_driver_yield(Duration::from_micros(500))
            .build()
            .unwrap();
        let ticks = Rc::new(Cell::new(0u64));
        let timer_ticks = Rc::new(Cell::new(0u64));
        let stop = Rc::new(Cell::new(false));
        // One sibling yields (woken at once), one sleeps on an async-io timer.
        let ticker = local.spawn({
            let (ticks, stop) = (ticks.clone(), stop.clone());
            async move {
                while !stop.get() {
                    future::yield_now().await;
                    ticks.set(ticks.get() + 1);
                }
            }
        });
        let timer_ticker = local.spawn({
            let (timer_ticks, stop) = (timer_ticks.clone(), stop.clone());
            async move {
                while !stop.get() {
                    Timer::after(Duration::from_millis(1)).await;
                    timer_ticks.set(timer_ticks.get() + 1);
                }
            }
        });
        let runner = local.spawn({
            let executor = executor.clone();
            async move { executor.run().await }
        });

        // Each busy task computes until both siblings advanced (at most 5 s).
        let mut handles = Vec::new();
        for key in [Q::Hi, Q::Lo] {
            let (ticks, timer_ticks) = (ticks.clone(), timer_ticks.clone());
            handles.push(executor.queue(key).unwrap().spawn(async move {
                let before = (ticks.get(), timer_ticks.get());
                let start = Instant::now();
                while (ticks.get() - before.0 < 50 || timer_ticks.get() - before.1 < 10)
                    && start.elapsed() < Duration::from_secs(5)
                {
                    spin(Duration::from_micros(20));
                    yield_maybe().await;
                }
                (ticks.get() - before.0, timer_ticks.get() - before.1, start.elapsed())
            }));
        }
        for h in handles {
            let (yield_ticks, timer_ticks, busy) = h.await.unwrap();
            eprintln!(
                "LocalExecutor siblings during {busy:?} busy: {yield_ticks} yield ticks, {timer_ticks} timer ticks"
            );
            assert!(yield_ticks >= 50, "yield ticker advanced {yield_ticks} times in 5 s");
            assert!(timer_ticks >= 10, "timer ticker advanced {timer_ticks} times in 5 s");
        }
        stop.set(true);
        ticker.await;
        timer_ticker.await;

        // Leave a task parked, then shut down from a sibling task.
        let parked = executor
            .queue(Q::Lo)
            .unwrap()
            .spawn(future::pending::<()>());
        local
            .spawn({
                let executor = executor.clone();
                async move {
                    Timer::after(Duration::from_millis(5)).await;
                    executor.shutdown();
                }
            })
            .await;
        let returned = future::or(async { runner.await; true }, async {
            Timer::after(Duration::from_secs(5)).await;
            false
        })
        .await;
        assert!(returned, "run() returned within 5 s of shutdown()");
        assert!(matches!(parked.await, Err(JoinError::Cancelled)));
        assert!(executor.stats().driver_yields > 0);
    }));
}
