//! `yield_maybe()` gives way as soon as another thread hands the executor work, even
//! when neither the slice nor the turn is over: the executor looks at cross-thread
//! wakes, spawns and the `run_until` future only between polls, so a CPU-bound task
//! that kept going would hold them up until its deadline.
//!
//! Both tests put the deadlines out of reach (a 60 s `driver_yield`; one queue, so no
//! slice end, or slices of 30 s) and let a busy task spin for at most `SPIN_CAP` in
//! 100 µs chunks, stopping early once it sees a flag set. The flag is set only by work
//! that another thread starts after `SEND_AFTER`; if `yield_maybe` ignored that work,
//! the busy task would spin to its cap.

mod common;

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clockworker::{yield_maybe, ExecutorBuilder};
use common::{runtime, spin};

const SPIN_CAP: Duration = Duration::from_secs(10);
const SEND_AFTER: Duration = Duration::from_millis(20);

/// Spins in 100 µs chunks with `yield_maybe()` between them until `flag` is set or
/// `SPIN_CAP` has passed; returns whether it stopped because of the flag.
async fn busy_until(flag: impl Fn() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < SPIN_CAP {
        if flag() {
            return true;
        }
        spin(Duration::from_micros(100));
        yield_maybe().await;
    }
    false
}

fn executor() -> Rc<clockworker::Executor<u8>> {
    ExecutorBuilder::new()
        .with_queue(0u8, 1)
        .with_driver_yield(Duration::from_secs(60))
        .build()
        .expect("executor")
}

#[test]
fn yield_maybe_gives_way_to_a_cross_thread_wake_of_the_run_until_future() {
    let _watchdog = common::watchdog();
    let executor = executor();
    let queue = executor.queue(0).unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let sender = std::thread::spawn(move || {
        std::thread::sleep(SEND_AFTER);
        tx.send(()).unwrap();
    });
    let received = Rc::new(Cell::new(false));
    let seen = received.clone();
    let stopped_by_flag = runtime().block_on(executor.run_until(async move {
        let busy = queue.spawn(busy_until(move || seen.get()));
        rx.await.unwrap();
        received.set(true);
        busy.await.unwrap()
    }));
    sender.join().unwrap();
    assert!(
        stopped_by_flag,
        "the busy task spun to its cap: yield_maybe never let the woken run_until future run"
    );
}

/// The remote task goes to a queue of its own (weight 8 against the busy queue's 1):
/// once the loop has seen it, EEVDF preempts the busy queue's slice. In one FIFO queue
/// it would wait behind the busy task, which had yielded before the loop looked.
#[test]
fn yield_maybe_gives_way_to_a_remote_spawn() {
    let _watchdog = common::watchdog();
    let executor = ExecutorBuilder::new()
        .with_queue(0u8, 1)
        .with_queue(1u8, 8)
        .with_driver_yield(Duration::from_secs(60))
        .with_sched_latency(Duration::from_secs(60))
        .build()
        .expect("executor");
    let queue = executor.queue(0).unwrap();
    let remote = executor.remote();
    let flag = Arc::new(AtomicBool::new(false));
    let set_by_remote = flag.clone();
    let sender = std::thread::spawn(move || {
        std::thread::sleep(SEND_AFTER);
        remote
            .spawn(
                1,
                async move { set_by_remote.store(true, Ordering::SeqCst) },
            )
            .unwrap()
    });
    let stopped_by_flag = runtime().block_on(executor.run_until(async move {
        queue
            .spawn(busy_until(move || flag.load(Ordering::SeqCst)))
            .await
            .unwrap()
    }));
    let remote_task = sender.join().unwrap();
    assert!(
        stopped_by_flag,
        "the busy task spun to its cap: yield_maybe never let the remotely spawned task run"
    );
    // The remote task finished; its handle reports it.
    futures_lite::future::block_on(remote_task).unwrap();
}

/// The other half of the contract: with nothing pending and the deadlines out of reach,
/// `yield_maybe()` completes at once, so a task that calls it in a loop is polled once.
/// Two queues, so the slice and preemption checks are live (a queue that always
/// yielded, or a preemption always reported, fails this).
#[test]
fn yield_maybe_does_not_yield_when_nothing_is_pending() {
    let _watchdog = common::watchdog();
    let executor = ExecutorBuilder::new()
        .with_queue(0u8, 1)
        .with_queue(1u8, 1)
        .with_driver_yield(Duration::from_secs(60))
        .with_sched_latency(Duration::from_secs(60))
        .with_min_slice(Duration::from_secs(30))
        .build()
        .unwrap();
    let task = executor.queue(0).unwrap().spawn(async {
        for _ in 0..1_000 {
            yield_maybe().await;
        }
    });
    runtime().block_on(executor.run_until(task)).unwrap();
    assert_eq!(
        executor.queue_stats(0).unwrap().polls,
        1,
        "yield_maybe gave way with nothing pending"
    );
}
