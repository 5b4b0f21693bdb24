//! clockworker inside tokio's current_thread runtime and a `LocalSet`: the way
//! thread-per-core services run it today.
//!
//! - `run_until` as the top-level future of `LocalSet::block_on`;
//! - `run()` as one `spawn_local` task among others, which must keep running while
//!   clockworker's tasks keep the CPU busy (the run loop hands the thread back to the
//!   host every `driver_yield`);
//! - `shutdown()` called from another `LocalSet` task makes `run()` return, whether the
//!   loop is idle or busy;
//! - tokio timers inside clockworker tasks fire, never early.

mod common;

use std::cell::{Cell, RefCell};
use std::future::pending;
use std::rc::Rc;
use std::time::{Duration, Instant};

use clockworker::{yield_maybe, ExecutorBuilder, JoinError};
use tokio::task::LocalSet;

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Q {
    Fg,
    Bg,
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio current_thread runtime")
}

/// Burns the CPU for `d` without awaiting anything.
fn spin(d: Duration) {
    let start = Instant::now();
    while start.elapsed() < d {
        std::hint::spin_loop();
    }
}

/// CPU-bound work in 20 µs chunks separated by `yield_maybe()` (the only points where
/// the task lets anything else run), until `ticks` has advanced by `target` or `limit`
/// has passed. Returns how far `ticks` advanced. Counting ticks rather than time keeps
/// the tests meaningful on a loaded machine: there they just take a little longer.
async fn busy_until_ticks(ticks: Rc<Cell<u64>>, target: u64, limit: Duration) -> u64 {
    let start = Instant::now();
    let before = ticks.get();
    while ticks.get() - before < target && start.elapsed() < limit {
        spin(Duration::from_micros(20));
        yield_maybe().await;
    }
    ticks.get() - before
}

/// Driver yields per tick above which the host evidently does not poll its timers on
/// every return of the run loop. With a 1 ms tokio timer (which fires after 1–2 ms)
/// and a 500 µs `driver_yield`, a host that does sees 2–4 driver yields per tick.
const MAX_YIELDS_PER_TICK: u64 = 10;

#[test]
fn run_until_at_top_of_localset_block_on() {
    let _watchdog = common::watchdog();
    let rt = runtime();
    let local = LocalSet::new();
    let (sum, from_tokio) = local.block_on(&rt, async {
        let executor = ExecutorBuilder::new()
            .with_queue(Q::Fg, 4)
            .with_queue(Q::Bg, 1)
            .build()
            .expect("valid configuration");
        let fg = executor.queue(Q::Fg).unwrap();
        let bg = executor.queue(Q::Bg).unwrap();
        executor
            .run_until(async move {
                // !Send state shared by tasks of both queues.
                let shared = Rc::new(Cell::new(0u64));
                let mut handles = Vec::new();
                for i in 0..200u64 {
                    let q = if i % 4 == 0 { &bg } else { &fg };
                    let shared = shared.clone();
                    handles.push(q.spawn(async move {
                        tokio::task::yield_now().await;
                        tokio::time::sleep(Duration::from_millis(1)).await;
                        shared.set(shared.get() + 1);
                        i
                    }));
                }
                let mut sum = 0;
                for h in handles {
                    sum += h.await.expect("task completes");
                }
                assert_eq!(shared.get(), 200);
                // A clockworker task may hand work to the enclosing LocalSet and await it.
                let from_tokio = fg
                    .spawn(async {
                        tokio::task::spawn_local(async { 7u32 })
                            .await
                            .expect("LocalSet task completes")
                    })
                    .await
                    .expect("clockworker task completes");
                (sum, from_tokio)
            })
            .await
    });
    assert_eq!(sum, (0..200).sum::<u64>());
    assert_eq!(from_tokio, 7);
}

/// The heart of "living inside the host": `run()` is one LocalSet task, clockworker's
/// tasks never block but never stop computing either, and a LocalSet ticker driven by
/// a tokio timer must still advance while they compute. It can only do so if the run
/// loop returns `Pending` to tokio regularly (every `driver_yield`) so tokio polls its
/// timer driver and the ticker.
#[test]
fn spawned_run_leaves_other_localset_tasks_running_while_busy() {
    let _watchdog = common::watchdog();
    let rt = runtime();
    let local = LocalSet::new();
    local.block_on(&rt, async {
        let executor = ExecutorBuilder::new()
            .with_queue(Q::Fg, 2)
            .with_queue(Q::Bg, 1)
            .with_driver_yield(Duration::from_micros(500))
            .build()
            .unwrap();

        let ticks = Rc::new(Cell::new(0u64));
        let max_tick_gap = Rc::new(Cell::new(Duration::ZERO));
        let stop = Rc::new(Cell::new(false));
        let ticker = tokio::task::spawn_local({
            let (ticks, max_tick_gap, stop) = (ticks.clone(), max_tick_gap.clone(), stop.clone());
            async move {
                let mut last = Instant::now();
                while !stop.get() {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    let now = Instant::now();
                    max_tick_gap.set(max_tick_gap.get().max(now - last));
                    last = now;
                    ticks.set(ticks.get() + 1);
                }
            }
        });
        let runner = tokio::task::spawn_local({
            let executor = executor.clone();
            async move { executor.run().await }
        });

        // Three CPU-bound tasks in two queues; each computes until the ticker has
        // advanced 5 times since it started (or 10 s have passed).
        let mut handles = Vec::new();
        for key in [Q::Fg, Q::Fg, Q::Bg] {
            let ticks = ticks.clone();
            handles.push(executor.queue(key).unwrap().spawn(async move {
                let start = Instant::now();
                let advanced = busy_until_ticks(ticks, 5, Duration::from_secs(10)).await;
                (advanced, start.elapsed())
            }));
        }
        // Awaited from outside clockworker (this is the LocalSet's main future).
        let mut windows = Vec::new();
        for h in handles {
            windows.push(h.await.expect("busy task completes"));
        }

        let stats = executor.stats();
        eprintln!(
            "ticker: {} ticks, max gap {:?}; (ticks, busy time) per task {:?}; executor {:?}",
            ticks.get(),
            max_tick_gap.get(),
            windows,
            stats
        );
        for (advanced, _) in &windows {
            // The busy tasks never block, so the LocalSet ticker can advance only if
            // the run loop hands the thread back to tokio. (How often tokio then runs
            // its timers is tokio's business: see
            // `spawned_run_gives_localset_timers_every_driver_yield`.)
            assert!(
                *advanced >= 5,
                "the LocalSet ticker advanced only {advanced} times in 10 s of busy tasks"
            );
        }
        assert!(stats.driver_yields > 0);

        stop.set(true);
        ticker.await.unwrap();

        // shutdown() from a LocalSet task (the run loop is idle now) ends run().
        tokio::task::spawn_local({
            let executor = executor.clone();
            async move { executor.shutdown() }
        })
        .await
        .unwrap();
        tokio::time::timeout(Duration::from_secs(5), runner)
            .await
            .expect("run() returned after shutdown()")
            .unwrap();
    });
}

#[test]
fn shutdown_from_localset_task_ends_idle_run() {
    let _watchdog = common::watchdog();
    let rt = runtime();
    let local = LocalSet::new();
    local.block_on(&rt, async {
        let executor = ExecutorBuilder::new().with_queue(Q::Fg, 1).build().unwrap();
        let q = executor.queue(Q::Fg).unwrap();
        let dropped = Rc::new(Cell::new(false));
        // A task parked forever on a tokio timer: the run loop has nothing to do and
        // waits on the host waker.
        let parked = q.spawn({
            let guard = DropFlag(dropped.clone());
            async move {
                let _guard = guard;
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
        });
        let runner = tokio::task::spawn_local({
            let executor = executor.clone();
            async move { executor.run().await }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!runner.is_finished(), "run() returned before shutdown()");
        assert!(!parked.is_finished());

        tokio::task::spawn_local({
            let executor = executor.clone();
            async move { executor.shutdown() }
        })
        .await
        .unwrap();
        tokio::time::timeout(Duration::from_secs(5), runner)
            .await
            .expect("run() returned after shutdown() from a LocalSet task")
            .unwrap();
        assert!(dropped.get(), "the parked task's future was dropped");
        assert!(matches!(parked.await, Err(JoinError::Cancelled)));
    });
}

#[test]
fn shutdown_from_localset_task_ends_busy_run() {
    let _watchdog = common::watchdog();
    let rt = runtime();
    let local = LocalSet::new();
    local.block_on(&rt, async {
        let executor = ExecutorBuilder::new()
            .with_queue(Q::Fg, 1)
            .with_queue(Q::Bg, 1)
            .build()
            .unwrap();
        // Never finishes on its own, never blocks.
        let spinner = executor.queue(Q::Bg).unwrap().spawn(async {
            loop {
                spin(Duration::from_micros(50));
                yield_maybe().await;
            }
        });
        let runner = tokio::task::spawn_local({
            let executor = executor.clone();
            async move { executor.run().await }
        });
        // This LocalSet task only gets the thread when the busy loop hands it back.
        let stopper = tokio::task::spawn_local({
            let executor = executor.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                executor.shutdown();
            }
        });
        tokio::time::timeout(Duration::from_secs(5), runner)
            .await
            .expect("run() returned after shutdown() while a task was spinning")
            .unwrap();
        stopper.await.unwrap();
        assert!(matches!(spinner.await, Err(JoinError::Cancelled)));
        assert!(executor.stats().polls > 1);
    });
}

#[test]
fn tokio_sleep_inside_tasks_fires_and_never_early() {
    let _watchdog = common::watchdog();
    let rt = runtime();
    let local = LocalSet::new();
    local.block_on(&rt, async {
        let executor = ExecutorBuilder::new()
            .with_queue(Q::Fg, 3)
            .with_queue(Q::Bg, 1)
            .build()
            .unwrap();
        let runner = tokio::task::spawn_local({
            let executor = executor.clone();
            async move { executor.run().await }
        });
        let finished = Rc::new(RefCell::new(Vec::new()));
        let requested_ms = [40u64, 2, 25, 10, 1, 60];
        let mut handles = Vec::new();
        for (i, &ms) in requested_ms.iter().enumerate() {
            let key = if i % 2 == 0 { Q::Fg } else { Q::Bg };
            let finished = finished.clone();
            handles.push(executor.queue(key).unwrap().spawn(async move {
                let start = tokio::time::Instant::now();
                tokio::time::sleep(Duration::from_millis(ms)).await;
                let elapsed = start.elapsed();
                finished.borrow_mut().push(ms);
                elapsed
            }));
        }
        for (h, &ms) in handles.into_iter().zip(&requested_ms) {
            let elapsed = h.await.unwrap();
            assert!(
                elapsed >= Duration::from_millis(ms),
                "sleep({ms} ms) woke after only {elapsed:?}"
            );
            assert!(
                elapsed < Duration::from_millis(ms) + Duration::from_secs(2),
                "sleep({ms} ms) took {elapsed:?}"
            );
        }
        // Deadlines at least 8 ms apart fire in deadline order.
        let mut sorted = requested_ms.to_vec();
        sorted.sort_unstable();
        let order = finished.borrow().clone();
        let pos = |ms: u64| order.iter().position(|&x| x == ms).unwrap();
        for pair in [(2, 10), (10, 25), (25, 40), (40, 60)] {
            assert!(pos(pair.0) < pos(pair.1), "completion order {order:?}");
        }

        // A second round on the same, now idle, run loop: a timer is what wakes it.
        let again = executor.queue(Q::Bg).unwrap().spawn(async {
            let start = Instant::now();
            tokio::time::sleep(Duration::from_millis(15)).await;
            start.elapsed()
        });
        assert!(again.await.unwrap() >= Duration::from_millis(15));

        executor.shutdown();
        tokio::time::timeout(Duration::from_secs(5), runner)
            .await
            .expect("run() returned after shutdown()")
            .unwrap();
    });
}

/// `run_until` returns as soon as its own future (here a tokio timer) is done, even
/// with tasks still pending; they stay put and a later `run_until` resumes them.
#[test]
fn run_until_returns_with_pending_tasks_left_for_next_run() {
    let _watchdog = common::watchdog();
    let rt = runtime();
    let local = LocalSet::new();
    local.block_on(&rt, async {
        let executor = ExecutorBuilder::new().with_queue(Q::Fg, 1).build().unwrap();
        let q = executor.queue(Q::Fg).unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<u32>();
        let waiter = q.spawn(async move { rx.await.unwrap() + 1 });
        let forever = q.spawn(pending::<()>());
        executor
            .run_until(tokio::time::sleep(Duration::from_millis(5)))
            .await;
        assert!(!waiter.is_finished());
        tx.send(41).unwrap();
        let out = executor.run_until(waiter).await.unwrap();
        assert_eq!(out, 42);
        assert!(!forever.is_finished());
    });
}

struct DropFlag(Rc<Cell<bool>>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

/// A LocalSet task (outside clockworker, same thread) feeds a clockworker task through
/// a tokio channel while `run()` is an idle LocalSet task: each send wakes the task
/// from outside the run loop, which must wake the host task that runs the loop.
#[test]
fn localset_task_feeds_clockworker_task() {
    let _watchdog = common::watchdog();
    let rt = runtime();
    let local = LocalSet::new();
    local.block_on(&rt, async {
        let executor = ExecutorBuilder::new().with_queue(Q::Fg, 1).build().unwrap();
        let runner = tokio::task::spawn_local({
            let executor = executor.clone();
            async move { executor.run().await }
        });
        let (tx, mut rx) = tokio::sync::mpsc::channel::<u32>(1);
        let consumer = executor.queue(Q::Fg).unwrap().spawn(async move {
            let mut got = Vec::new();
            while let Some(v) = rx.recv().await {
                got.push(v);
            }
            got
        });
        let feeder = tokio::task::spawn_local(async move {
            for i in 0..1_000 {
                tx.send(i).await.unwrap();
                if i % 100 == 0 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        });
        let got = tokio::time::timeout(Duration::from_secs(10), consumer)
            .await
            .expect("all values arrived")
            .unwrap();
        feeder.await.unwrap();
        assert_eq!(got, (0..1_000).collect::<Vec<_>>());
        executor.shutdown();
        runner.await.unwrap();
    });
}

/// A busy clockworker task beside a LocalSet ticker on a 1 ms tokio timer, until the
/// ticker advanced 20 times (at most 5 s). Returns (ticks, longest gap between ticks,
/// driver yields) over the busy stretch.
async fn ticker_while_busy(executor: &Rc<clockworker::Executor<Q>>) -> (u64, Duration, u64) {
    let ticks = Rc::new(Cell::new(0u64));
    let gaps = Rc::new(RefCell::new(Vec::new()));
    let stop = Rc::new(Cell::new(false));
    let ticker = tokio::task::spawn_local({
        let (ticks, gaps, stop) = (ticks.clone(), gaps.clone(), stop.clone());
        async move {
            let mut last = Instant::now();
            while !stop.get() {
                tokio::time::sleep(Duration::from_millis(1)).await;
                let now = Instant::now();
                gaps.borrow_mut().push(now - last);
                last = now;
                ticks.set(ticks.get() + 1);
            }
        }
    });
    // Let the ticker start before the busy stretch.
    tokio::time::sleep(Duration::from_millis(2)).await;
    let yields_before = executor.stats().driver_yields;
    let gaps_before = gaps.borrow().len();
    let busy = executor.queue(Q::Fg).unwrap().spawn(busy_until_ticks(
        ticks.clone(),
        20,
        Duration::from_secs(5),
    ));
    let window = busy.await.unwrap();
    let max_gap = gaps.borrow()[gaps_before..]
        .iter()
        .copied()
        .max()
        .unwrap_or_default();
    stop.set(true);
    ticker.await.unwrap();
    (
        window,
        max_gap,
        executor.stats().driver_yields - yields_before,
    )
}

/// Recommended LocalSet layout: `run_until` as the future of `LocalSet::block_on`.
/// Each driver yield then returns to tokio's `block_on`, which polls its timer driver
/// before polling the LocalSet again: a LocalSet task on a 1 ms timer keeps ticking
/// at close to its rate while clockworker is CPU-bound.
#[test]
fn run_until_on_top_gives_localset_timers_every_driver_yield() {
    let _watchdog = common::watchdog();
    let rt = runtime();
    let local = LocalSet::new();
    let (window, max_gap, yields) = local.block_on(&rt, async {
        let executor = ExecutorBuilder::new().with_queue(Q::Fg, 1).build().unwrap();
        executor.run_until(ticker_while_busy(&executor)).await
    });
    eprintln!("run_until on top: {window} ticks, max gap {max_gap:?}, {yields} driver yields");
    assert!(
        window >= 20,
        "LocalSet ticker advanced only {window} times in 5 s"
    );
    assert!(
        yields <= window * MAX_YIELDS_PER_TICK,
        "{yields} driver yields for {window} ticks"
    );
}

/// `run()` as a `spawn_local` task: at every `driver_yield` the loop returns to tokio
/// through tokio's deferred-wake list, so tokio polls its timer driver before the loop
/// runs again. With a plain self-wake, `LocalSet` would re-poll the loop up to 61 times
/// per tick first (observed before the fix: 553 driver yields for 9 ticks in 300 ms).
#[test]
fn spawned_run_gives_localset_timers_every_driver_yield() {
    let _watchdog = common::watchdog();
    let rt = runtime();
    let local = LocalSet::new();
    let (window, max_gap, yields) = local.block_on(&rt, async {
        let executor = ExecutorBuilder::new().with_queue(Q::Fg, 1).build().unwrap();
        let runner = tokio::task::spawn_local({
            let executor = executor.clone();
            async move { executor.run().await }
        });
        let out = ticker_while_busy(&executor).await;
        executor.shutdown();
        runner.await.unwrap();
        out
    });
    eprintln!("spawned run(): {window} ticks, max gap {max_gap:?}, {yields} driver yields");
    assert!(
        window >= 20,
        "LocalSet ticker advanced only {window} times in 5 s"
    );
    assert!(
        yields <= window * MAX_YIELDS_PER_TICK,
        "{yields} driver yields for {window} ticks: timers ran only every ~{} driver yields",
        yields / window.max(1)
    );
}
