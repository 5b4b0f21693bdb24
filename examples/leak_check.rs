//! A workload for the leak check (`scripts/leak-check.sh` runs it under valgrind):
//! every way a task can end, and every way an executor can end, with wakes from other
//! threads, so that a task cell, a waker, an inbox entry or a registry entry that is
//! never freed shows up as a definite leak.
//!
//! - tasks that complete, with the handle awaited or dropped (detached);
//! - tasks that panic, caught (handle resolves `Panic`) and propagated out of
//!   `run_until`;
//! - tasks aborted before their first poll, while parked, and from another thread;
//! - tasks woken from other threads (the inbox), some of them after being aborted;
//! - wakers and handles that outlive their executor, woken and dropped afterwards;
//! - `shutdown` from outside and from inside a task, with tasks spawning from their
//!   `Drop` during the cancellation;
//! - an executor dropped without ever running, with spawned tasks;
//! - remote spawns from another thread;
//! - futures whose `Drop` panics while their task is cancelled (payload kept for the
//!   handle, taken, or dropped with a detached or dropped handle), and outputs whose
//!   `Drop` panics with nobody to take them.
//!
//! Also a plain run: `cargo run --example leak_check` prints what it did.

use std::future::poll_fn;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::thread;

use clockworker::{yield_now, ExecutorBuilder, JoinError};
use futures_lite::future::block_on;

/// Tasks per scenario: small, because valgrind runs the program about 50× slower.
const TASKS: usize = 200;

type WakerSlot = Arc<Mutex<Vec<Waker>>>;

/// A future that parks once (registering its waker in `slot`) and completes when
/// polled again.
fn park_once(slot: WakerSlot) -> impl std::future::Future<Output = ()> {
    let mut parked = false;
    poll_fn(move |cx| {
        if parked {
            return Poll::Ready(());
        }
        parked = true;
        slot.lock().unwrap().push(cx.waker().clone());
        Poll::Pending
    })
}

fn complete_detach_and_panic() {
    let executor = ExecutorBuilder::new()
        .with_queue(0u8, 1)
        .with_queue(1u8, 4)
        .with_panic_on_task_panic(false)
        .build()
        .unwrap();
    let mut handles = Vec::new();
    for i in 0..TASKS {
        let q = executor.queue((i % 2) as u8).unwrap();
        let handle = q.spawn(async move {
            yield_now().await;
            if i % 10 == 0 {
                panic!("task {i} panics on purpose (caught)");
            }
            vec![i; 4]
        });
        if i % 3 == 0 {
            drop(handle);
        } else {
            handles.push(handle);
        }
    }
    let (mut ok, mut panicked) = (0, 0);
    block_on(executor.run_until(async {
        for handle in handles {
            match handle.await {
                Ok(_) => ok += 1,
                Err(JoinError::Panic(_)) => panicked += 1,
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
        // The detached tasks may still be running.
        while executor.stats().live_tasks > 0 {
            yield_now().await;
        }
    }));
    assert_eq!(executor.stats().live_tasks, 0);
    println!("completed: {ok} awaited, {panicked} caught panics");
}

fn propagated_panic() {
    let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    let q = executor.queue(0).unwrap();
    let failing = q.spawn(async { panic!("propagated on purpose") });
    let others: Vec<_> = (0..10).map(|i| q.spawn(async move { i })).collect();
    let escaped = catch_unwind(AssertUnwindSafe(|| {
        block_on(executor.run_until(std::future::pending::<()>()))
    }));
    assert!(escaped.is_err());
    assert!(matches!(block_on(failing), Err(JoinError::Cancelled)));
    let sum: usize = block_on(executor.run_until(async {
        let mut sum = 0;
        for handle in others {
            sum += handle.await.unwrap();
        }
        sum
    }));
    assert_eq!(sum, 45);
    println!("propagated panic: executor still usable");
}

fn aborts_and_cross_thread_wakes() {
    let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    let q = executor.queue(0).unwrap();
    let slot: WakerSlot = Arc::default();
    let handles: Vec<_> = (0..TASKS)
        .map(|_| q.spawn(park_once(slot.clone())))
        .collect();
    // Aborted before the first poll.
    for handle in handles.iter().step_by(5) {
        handle.abort();
    }
    block_on(executor.run_until(async {
        for _ in 0..4 * TASKS {
            yield_now().await;
        }
    }));
    let wakers: Vec<Waker> = std::mem::take(&mut *slot.lock().unwrap());
    let handles = Arc::new(handles);
    // Another thread aborts some parked tasks and wakes every parked one.
    let remote = {
        let handles = handles.clone();
        thread::spawn(move || {
            for handle in handles.iter().skip(1).step_by(5) {
                handle.abort();
            }
            for waker in wakers {
                waker.wake_by_ref();
                waker.wake();
            }
        })
    };
    remote.join().unwrap();
    let handles = Arc::try_unwrap(handles).unwrap();
    let (mut ok, mut cancelled) = (0, 0);
    block_on(executor.run_until(async {
        for handle in handles {
            match handle.await {
                Ok(()) => ok += 1,
                Err(_) => cancelled += 1,
            }
        }
    }));
    assert_eq!(executor.stats().live_tasks, 0);
    println!("aborts and cross-thread wakes: {ok} completed, {cancelled} cancelled");
}

fn wakers_and_handles_outlive_the_executor() {
    let slot: WakerSlot = Arc::default();
    let (handles, wakers) = {
        let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
        let q = executor.queue(0).unwrap();
        let handles: Vec<_> = (0..TASKS)
            .map(|_| q.spawn(park_once(slot.clone())))
            .collect();
        block_on(executor.run_until(async {
            for _ in 0..2 * TASKS {
                yield_now().await;
            }
        }));
        let wakers: Vec<Waker> = std::mem::take(&mut *slot.lock().unwrap());
        (handles, wakers)
    };
    let cloned: Vec<Waker> = wakers.clone();
    thread::spawn(move || {
        for waker in cloned {
            waker.wake();
        }
    })
    .join()
    .unwrap();
    for waker in wakers {
        waker.wake();
    }
    let cancelled = handles
        .into_iter()
        .map(|handle| {
            handle.abort();
            block_on(handle)
        })
        .filter(|result| matches!(result, Err(JoinError::Cancelled)))
        .count();
    assert_eq!(cancelled, TASKS);
    println!("wakers and handles outlived the executor: {cancelled} cancelled");
}

struct SpawnOnDrop(Option<clockworker::QueueHandle<u8>>);

impl Drop for SpawnOnDrop {
    fn drop(&mut self) {
        if let Some(q) = self.0.take() {
            // Refused after shutdown: the future is dropped at once.
            drop(q.spawn(async {}));
        }
    }
}

fn shutdowns() {
    // From outside, with tasks that spawn from their Drop.
    let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    let q = executor.queue(0).unwrap();
    for _ in 0..TASKS {
        let guard = SpawnOnDrop(Some(q.clone()));
        drop(q.spawn(async move {
            let _guard = guard;
            std::future::pending::<()>().await;
        }));
    }
    block_on(executor.run_until(yield_now()));
    executor.shutdown();
    assert_eq!(executor.stats().live_tasks, 0);

    // From inside a task, while `run` runs.
    let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    let q = executor.queue(0).unwrap();
    let parked: Vec<_> = (0..TASKS)
        .map(|_| q.spawn(std::future::pending::<()>()))
        .collect();
    drop(q.spawn({
        let executor = executor.clone();
        async move {
            yield_now().await;
            executor.shutdown();
        }
    }));
    block_on(executor.run());
    assert!(parked
        .into_iter()
        .all(|h| matches!(block_on(h), Err(JoinError::Cancelled))));

    // Dropped without running.
    let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    let q = executor.queue(0).unwrap();
    let never: Vec<_> = (0..TASKS).map(|i| q.spawn(async move { i })).collect();
    drop(q);
    drop(executor);
    assert!(never
        .into_iter()
        .all(|h| matches!(block_on(h), Err(JoinError::Cancelled))));
    println!("shutdown from outside, from a task, and drop without running");
}

/// Panics with a boxed payload when dropped, so that a leaked payload shows.
struct DropBomb(usize);

impl Drop for DropBomb {
    fn drop(&mut self) {
        std::panic::panic_any(format!("drop panics on purpose ({})", self.0));
    }
}

fn drop_panics() {
    let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    let q = executor.queue(0).unwrap();
    let mut kept = Vec::new();
    for i in 0..TASKS {
        let bomb = DropBomb(i);
        let handle = q.spawn(async move {
            let _bomb = bomb;
            std::future::pending::<()>().await;
        });
        match i % 4 {
            0 => {
                handle.abort();
                kept.push(handle);
            }
            1 => drop(handle),
            _ => kept.push(handle),
        }
        // An output with a panicking `Drop`, detached: dropped by the executor.
        drop(q.spawn(async move { DropBomb(i) }));
    }
    block_on(executor.run_until(yield_now()));
    executor.shutdown();
    assert_eq!(executor.stats().live_tasks, 0);
    let mut panics = 0;
    for (n, handle) in kept.into_iter().enumerate() {
        if n % 2 == 0 {
            // Dropped unread: the payload goes with it.
            drop(handle);
        } else if matches!(block_on(handle), Err(JoinError::Panic(_))) {
            panics += 1;
        }
    }
    println!("drop panics during cancellation: {panics} reached awaited handles");
}

fn remote_spawns() {
    let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    let remote = executor.remote();
    let spawner = thread::spawn(move || {
        (0..TASKS)
            .map(|i| remote.spawn(0u8, async move { i }).unwrap())
            .collect::<Vec<_>>()
    });
    let handles = spawner.join().unwrap();
    let sum: usize = block_on(executor.run_until(async {
        let mut sum = 0;
        for handle in handles {
            sum += handle.await.unwrap();
        }
        sum
    }));
    assert_eq!(sum, TASKS * (TASKS - 1) / 2);
    // Spawns queued and never run: dropped with the executor.
    let remote = executor.remote();
    let late: Vec<_> = (0..10)
        .map(|i| remote.spawn(0u8, async move { i }).unwrap())
        .collect();
    drop(executor);
    let cancelled = late
        .into_iter()
        .map(block_on)
        .filter(|r| r.is_err())
        .count();
    println!("remote spawns: sum {sum}, {cancelled} of 10 late spawns cancelled");
}

/// For `scripts/leak-check.sh --self-test`: leaks one finished task's cell (its
/// handle forgotten), which the check must report.
fn plant_leak() {
    let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    let handle = executor.queue(0).unwrap().spawn(async { [7u8; 64] });
    block_on(executor.run_until(async {
        while !handle.is_finished() {
            yield_now().await;
        }
    }));
    std::mem::forget(handle);
    println!("planted a leak on purpose");
}

fn main() {
    // The panics provoked on purpose would clutter the output; others still show.
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let text = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("");
        if !(text.contains("on purpose") || text.contains("(caught)")) {
            default(info);
        }
    }));
    complete_detach_and_panic();
    propagated_panic();
    aborts_and_cross_thread_wakes();
    wakers_and_handles_outlive_the_executor();
    shutdowns();
    drop_panics();
    remote_spawns();
    if std::env::var_os("LEAK_CHECK_PLANT_LEAK").is_some() {
        plant_leak();
    }
    let _ = std::panic::take_hook();
    println!("leak_check: done");
}
