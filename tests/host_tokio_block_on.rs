//! clockworker as the top-level future of tokio's current_thread `Runtime::block_on`,
//! without a `LocalSet`.
//!
//! - tokio timers and `tokio::sync::mpsc` work between clockworker tasks;
//! - `tokio::task::yield_now()` inside a clockworker task completes promptly. tokio
//!   does not wake such a task at once: it defers the wake until its scheduler is about
//!   to park. The task becomes runnable only after the run loop returned to tokio, so
//!   the loop must return as soon as nothing else is runnable, not at its next
//!   `driver_yield`;
//! - tokio tasks spawned beside `block_on` keep running while clockworker is busy.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clockworker::{yield_maybe, ExecutorBuilder};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio current_thread runtime")
}

#[test]
fn tasks_sleep_on_tokio_timers() {
    let _watchdog = common::watchdog();
    let rt = runtime();
    let executor = ExecutorBuilder::new()
        .with_queue("a", 1)
        .with_queue("b", 3)
        .build()
        .unwrap();
    let a = executor.queue("a").unwrap();
    let b = executor.queue("b").unwrap();
    let results = rt.block_on(executor.run_until(async move {
        let mut handles = Vec::new();
        for i in 0..20u64 {
            let ms = 1 + (i * 7) % 23;
            let q = if i % 2 == 0 { &a } else { &b };
            handles.push(q.spawn(async move {
                let start = Instant::now();
                tokio::time::sleep(Duration::from_millis(ms)).await;
                (ms, start.elapsed())
            }));
        }
        let mut out = Vec::new();
        for h in handles {
            out.push(h.await.unwrap());
        }
        out
    }));
    assert_eq!(results.len(), 20);
    for (ms, elapsed) in results {
        assert!(
            elapsed >= Duration::from_millis(ms),
            "{ms} ms sleep took {elapsed:?}"
        );
        assert!(elapsed < Duration::from_millis(ms) + Duration::from_secs(2));
    }
}

#[test]
fn tokio_mpsc_between_clockworker_tasks() {
    let _watchdog = common::watchdog();
    let rt = runtime();
    let executor = ExecutorBuilder::new()
        .with_queue("producer", 1)
        .with_queue("consumer", 1)
        .build()
        .unwrap();
    let producer = executor.queue("producer").unwrap();
    let consumer = executor.queue("consumer").unwrap();
    let (received, round_trips) = rt.block_on(executor.run_until(async move {
        // Bounded to 4: the producer parks on a full channel and the consumer on an
        // empty one, again and again; every wake is a clockworker-to-clockworker wake.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<u32>(4);
        let p = producer.spawn(async move {
            for i in 0..5_000 {
                tx.send(i).await.expect("receiver alive");
            }
        });
        let c = consumer.spawn(async move {
            let mut got = Vec::with_capacity(5_000);
            while let Some(v) = rx.recv().await {
                got.push(v);
            }
            got
        });

        // Request/response: a server task answers on a oneshot per request.
        let (req_tx, mut req_rx) =
            tokio::sync::mpsc::unbounded_channel::<(u64, tokio::sync::oneshot::Sender<u64>)>();
        let server = consumer.spawn(async move {
            while let Some((x, reply)) = req_rx.recv().await {
                reply.send(x * 2).unwrap();
            }
        });
        let client = producer.spawn(async move {
            let mut n = 0;
            for x in 0..1_000u64 {
                let (tx, rx) = tokio::sync::oneshot::channel();
                req_tx.send((x, tx)).unwrap();
                assert_eq!(rx.await.unwrap(), x * 2);
                n += 1;
            }
            n
        });

        p.await.unwrap();
        let got = c.await.unwrap();
        let n = client.await.unwrap();
        server.await.unwrap();
        (got, n)
    }));
    assert_eq!(received, (0..5_000).collect::<Vec<_>>());
    assert_eq!(round_trips, 1_000);
}

/// A lone task doing 1000 `tokio::task::yield_now()`: each yield is a deferred wake
/// that tokio only delivers when the run loop has returned to it. With a 1 s
/// `driver_yield`, a loop that waited for its driver deadline instead of returning
/// when idle would need 1000 s; a loop that lost the deferred wake would hang.
#[test]
fn tokio_yield_now_completes_promptly() {
    let _watchdog = common::watchdog();
    let rt = runtime();
    let executor = ExecutorBuilder::new()
        .with_queue(0u8, 1)
        .with_driver_yield(Duration::from_secs(1))
        .build()
        .unwrap();
    let q = executor.queue(0).unwrap();
    let start = Instant::now();
    let yields = rt
        .block_on(async {
            tokio::time::timeout(
                Duration::from_secs(10),
                executor.run_until(q.spawn(async {
                    let mut n = 0u32;
                    for _ in 0..1_000 {
                        tokio::task::yield_now().await;
                        n += 1;
                    }
                    n
                })),
            )
            .await
        })
        .expect("1000 tokio yields finished within 10 s")
        .unwrap();
    let elapsed = start.elapsed();
    assert_eq!(yields, 1_000);
    assert!(
        elapsed < Duration::from_secs(3),
        "1000 tokio yields took {elapsed:?}"
    );

    // One poll per yield plus the final one, no spurious polls, and every turn of the
    // loop ended because nothing was runnable, not because of the driver deadline.
    let stats = executor.stats();
    let queue = executor.queue_stats(0).unwrap();
    eprintln!("1000 tokio yields in {elapsed:?}: {stats:?}");
    assert_eq!(stats.polls, 1_001);
    assert_eq!(queue.polls, 1_001);
    assert_eq!(queue.completed, 1);
    assert_eq!(stats.driver_yields, 0);
}

/// tokio yields mixed with a CPU-bound sibling: the yielding task only becomes
/// runnable again after the loop returns to tokio, i.e. once per `driver_yield` while
/// the sibling keeps the loop busy. It must still make progress and finish.
#[test]
fn tokio_yield_now_beside_busy_task_still_progresses() {
    let _watchdog = common::watchdog();
    let rt = runtime();
    let executor = ExecutorBuilder::new()
        .with_queue("yielder", 1)
        .with_queue("busy", 1)
        .with_driver_yield(Duration::from_micros(200))
        .build()
        .unwrap();
    let yielder = executor.queue("yielder").unwrap();
    let busy = executor.queue("busy").unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let spins = rt.block_on(executor.run_until({
        let stop = stop.clone();
        async move {
            let spinner = busy.spawn({
                let stop = stop.clone();
                async move {
                    let mut spins = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let t = Instant::now();
                        while t.elapsed() < Duration::from_micros(20) {}
                        spins += 1;
                        yield_maybe().await;
                    }
                    spins
                }
            });
            let y = yielder.spawn(async {
                for _ in 0..100 {
                    tokio::task::yield_now().await;
                }
            });
            tokio::time::timeout(Duration::from_secs(10), y)
                .await
                .expect("100 tokio yields beside a busy task finished")
                .unwrap();
            stop.store(true, Ordering::Relaxed);
            spinner.await.unwrap()
        }
    }));
    assert!(spins > 0);
    assert_eq!(executor.queue_stats("yielder").unwrap().completed, 1);
}

/// With `run_until` at the top of `block_on`, tokio polls its timer driver each time
/// the run loop returns to it, so a tokio task ticking every millisecond keeps ticking
/// while clockworker's tasks are CPU-bound: a few driver yields per tick. The busy task
/// computes until the ticker advanced 30 times (at most 5 s), so a loaded machine makes
/// the test slower, not flaky.
#[test]
fn tokio_tasks_beside_block_on_keep_running_while_busy() {
    let _watchdog = common::watchdog();
    let rt = runtime();
    let executor = ExecutorBuilder::new()
        .with_queue(0u8, 1)
        .with_driver_yield(Duration::from_micros(500))
        .build()
        .unwrap();
    let q = executor.queue(0).unwrap();
    let ticks = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (window, busy) = rt.block_on(async {
        let ticker = tokio::spawn({
            let (ticks, stop) = (ticks.clone(), stop.clone());
            async move {
                while !stop.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    ticks.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        let out = executor
            .run_until(q.spawn({
                let ticks = ticks.clone();
                async move {
                    let before = ticks.load(Ordering::Relaxed);
                    let start = Instant::now();
                    while ticks.load(Ordering::Relaxed) - before < 30
                        && start.elapsed() < Duration::from_secs(5)
                    {
                        let t = Instant::now();
                        while t.elapsed() < Duration::from_micros(20) {}
                        yield_maybe().await;
                    }
                    (ticks.load(Ordering::Relaxed) - before, start.elapsed())
                }
            }))
            .await
            .unwrap();
        stop.store(true, Ordering::Relaxed);
        ticker.await.unwrap();
        out
    });
    let stats = executor.stats();
    eprintln!("tokio ticker beside block_on: {window} ticks in {busy:?} busy; {stats:?}");
    assert!(
        window >= 30,
        "tokio ticker advanced only {window} times in 5 s"
    );
    // 2–4 expected with a 1 ms timer and a 500 µs driver_yield.
    assert!(
        stats.driver_yields <= window * 10,
        "{} driver yields for {window} ticks",
        stats.driver_yields
    );
}

/// The host drops the run future (a timeout, a `select!` arm that lost) and calls it
/// again later: the tasks are untouched and continue where they were.
#[test]
fn run_future_dropped_by_host_then_resumed() {
    let _watchdog = common::watchdog();
    let rt = runtime();
    let executor = ExecutorBuilder::new()
        .with_queue(0u8, 1)
        .with_queue(1u8, 1)
        .build()
        .unwrap();
    let counter = Arc::new(AtomicU64::new(0));
    let mut handles = Vec::new();
    for i in 0..4u8 {
        let counter = counter.clone();
        handles.push(executor.queue(i % 2).unwrap().spawn(async move {
            for _ in 0..40 {
                tokio::time::sleep(Duration::from_millis(1)).await;
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    // A busy task too, so the run future is also dropped between driver turns.
    let spinner = executor.queue(1).unwrap().spawn(async {
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(60) {
            let t = Instant::now();
            while t.elapsed() < Duration::from_micros(20) {}
            yield_maybe().await;
        }
    });
    rt.block_on(async {
        for _ in 0..3 {
            let cut = tokio::time::timeout(Duration::from_millis(10), executor.run()).await;
            assert!(cut.is_err(), "run() only returns after shutdown()");
            // Nothing runs while no run future is polled.
            let frozen = counter.load(Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(5)).await;
            assert_eq!(counter.load(Ordering::Relaxed), frozen);
        }
        let progressed = counter.load(Ordering::Relaxed);
        assert!(progressed > 0, "tasks progressed while run() was polled");
        assert!(progressed < 160);
        tokio::time::timeout(
            Duration::from_secs(10),
            executor.run_until(async {
                for h in handles {
                    h.await.unwrap();
                }
                spinner.await.unwrap();
            }),
        )
        .await
        .expect("tasks finished after the run future was dropped three times");
    });
    assert_eq!(counter.load(Ordering::Relaxed), 160);
    assert_eq!(executor.stats().live_tasks, 0);
}

/// Work sent to tokio's blocking pool comes back from one of its threads: a cross-
/// thread wake of the awaiting clockworker task.
#[test]
fn spawn_blocking_results_come_back() {
    let _watchdog = common::watchdog();
    let rt = runtime();
    let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    let q = executor.queue(0).unwrap();
    let total = rt.block_on(async {
        tokio::time::timeout(
            Duration::from_secs(10),
            executor.run_until(async {
                let mut handles = Vec::new();
                for i in 0..16u64 {
                    handles.push(q.spawn(async move {
                        tokio::task::spawn_blocking(move || {
                            std::thread::sleep(Duration::from_millis(2));
                            i * i
                        })
                        .await
                        .unwrap()
                    }));
                }
                let mut total = 0;
                for h in handles {
                    total += h.await.unwrap();
                }
                total
            }),
        )
        .await
        .expect("blocking results arrived")
    });
    assert_eq!(total, (0..16u64).map(|i| i * i).sum::<u64>());
}
