//! Threads waking and aborting tasks while the executor runs; duplicate and spurious
//! wakes; wakers outliving the executor.

use std::cell::Cell;
use std::future::poll_fn;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::thread;
use std::time::Duration;

use clockworker::{yield_now, ExecutorBuilder, JoinError, JoinHandle};
use futures_lite::future::block_on;

use crate::common::with_watchdog;
use crate::support::*;

#[test]
fn threads_wake_and_abort_tasks_while_the_executor_runs() {
    let _watchdog = crate::common::watchdog();
    const TASKS: usize = 256;
    const THREADS: usize = 4;
    const OPS_PER_THREAD: usize = 20_000;
    /// One operation in this many is an abort.
    const ABORT_EVERY: u64 = 500;
    with_watchdog(
        Duration::from_secs(60),
        "a wake was lost or a loop did not end",
        || {
            let executor = ExecutorBuilder::new()
                .with_queue(0u8, 1)
                .with_queue(1u8, 4)
                .build()
                .unwrap();
            let bells: Arc<Vec<Bell>> = Arc::new((0..TASKS).map(|_| Bell::default()).collect());
            let in_poll: Arc<Vec<AtomicBool>> =
                Arc::new((0..TASKS).map(|_| AtomicBool::new(false)).collect());
            let stop = Arc::new(AtomicBool::new(false));
            let drops = Drops::default();
            let polls = Rc::new(Cell::new(0u64));
            let handles: Vec<JoinHandle<u64>> = (0..TASKS)
                .map(|i| {
                    let (bells, in_poll, stop) = (bells.clone(), in_poll.clone(), stop.clone());
                    let (guard, polls) = (drops.guard(), polls.clone());
                    executor.queue((i % 2) as u8).unwrap().spawn(async move {
                        let _guard = guard;
                        let mut seen = 0;
                        loop {
                            let rings = {
                                let _poll = NotReentrant::enter(&in_poll[i]);
                                polls.set(polls.get() + 1);
                                if stop.load(Ordering::Acquire) {
                                    return seen;
                                }
                                seen
                            };
                            seen = bells[i].wait(rings, &stop).await;
                            if seen % 7 == 0 {
                                yield_now().await;
                            }
                        }
                    })
                })
                .collect();
            let handles = Arc::new(handles);
            let aborted: Arc<Vec<AtomicBool>> =
                Arc::new((0..TASKS).map(|_| AtomicBool::new(false)).collect());
            let done = Arc::new(Bell::default());
            let workers: Vec<_> = (0..THREADS)
                .map(|t| {
                    let (bells, handles, aborted, done) = (
                        bells.clone(),
                        handles.clone(),
                        aborted.clone(),
                        done.clone(),
                    );
                    thread::spawn(move || {
                        let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (t as u64 + 1));
                        for op in 0..OPS_PER_THREAD {
                            if op % 16 == 0 {
                                // Let the executor's thread run between bursts.
                                thread::yield_now();
                            }
                            let i = rng.below(TASKS);
                            match rng.next() % ABORT_EVERY {
                                0 => {
                                    aborted[i].store(true, Ordering::Release);
                                    handles[i].abort();
                                }
                                // Duplicate wakes: ring, then wake again.
                                1..=50 => {
                                    bells[i].ring();
                                    bells[i].wake();
                                }
                                // Spurious wake: nothing changed for the task.
                                51..=100 => bells[i].wake(),
                                _ => bells[i].ring(),
                            }
                        }
                        done.ring();
                    })
                })
                .collect();
            let never_stop = AtomicBool::new(false);
            block_on(executor.run_until(async {
                let mut finished = 0;
                while finished < THREADS as u64 {
                    finished = done.wait(finished, &never_stop).await;
                }
            }));
            for worker in workers {
                worker.join().expect("worker thread");
            }
            stop.store(true, Ordering::Release);
            for bell in bells.iter() {
                bell.wake();
            }
            let handles = Arc::try_unwrap(handles).unwrap_or_else(|_| panic!("workers are gone"));
            let results = block_on(executor.run_until(async {
                let mut results = Vec::new();
                for handle in handles {
                    results.push(handle.await);
                }
                results
            }));
            let mut cancelled = 0;
            for (i, result) in results.iter().enumerate() {
                if aborted[i].load(Ordering::Acquire) {
                    assert!(
                        matches!(result, Err(JoinError::Cancelled)),
                        "task {i} aborted but {result:?}"
                    );
                    cancelled += 1;
                } else {
                    assert!(result.is_ok(), "task {i}: {result:?}");
                }
            }
            assert!(cancelled > 0, "some aborts happened");
            assert_eq!(drops.count(), TASKS, "every future dropped exactly once");
            assert_eq!(executor.stats().live_tasks, 0);
            assert_eq!(
                executor.queue_stats(0).unwrap().cancelled
                    + executor.queue_stats(1).unwrap().cancelled,
                cancelled as u64
            );
            eprintln!(
                "{} polls, {cancelled} tasks aborted, {} wakes",
                polls.get(),
                bells
                    .iter()
                    .map(|b| b.rings.load(Ordering::Relaxed))
                    .sum::<u64>()
            );
        },
    );
}

/// Duplicate wakes of a scheduled task are merged; wakes of a finished task are
/// ignored; a task woken during its own poll runs again once.
#[test]
fn duplicate_and_spurious_wakes_are_harmless() {
    with_watchdog(
        Duration::from_secs(20),
        "a wake was lost or a loop did not end",
        || {
            let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
            let q = executor.queue(0).unwrap();
            let slot: Arc<Mutex<Option<Waker>>> = Arc::default();
            let polls = Rc::new(Cell::new(0));
            let handle = q.spawn({
                let (slot, polls) = (slot.clone(), polls.clone());
                poll_fn(move |cx| {
                    polls.set(polls.get() + 1);
                    match polls.get() {
                        1 => {
                            *slot.lock().unwrap() = Some(cx.waker().clone());
                            Poll::Pending
                        }
                        2 => {
                            // Woken during its own poll, many times: runs once more.
                            for _ in 0..1_000 {
                                cx.waker().wake_by_ref();
                            }
                            Poll::Pending
                        }
                        _ => Poll::Ready(()),
                    }
                })
            });
            let result = block_on(executor.run_until(async {
                while slot.lock().unwrap().is_none() {
                    yield_now().await;
                }
                let waker = slot.lock().unwrap().clone().unwrap();
                // 1,000 wakes on this thread and 1,000 from another, all before the
                // task runs again: one poll.
                for _ in 0..1_000 {
                    waker.wake_by_ref();
                }
                let remote = waker.clone();
                thread::spawn(move || {
                    for _ in 0..1_000 {
                        remote.wake_by_ref();
                    }
                })
                .join()
                .unwrap();
                let handle = handle;
                let result = handle.await;
                // Wakes after completion: ignored.
                waker.wake_by_ref();
                thread::spawn(move || waker.wake()).join().unwrap();
                for _ in 0..10 {
                    yield_now().await;
                }
                result
            }));
            assert!(result.is_ok());
            assert_eq!(
                polls.get(),
                3,
                "parked, woken (many times), woken during poll"
            );
            assert_eq!(executor.stats().live_tasks, 0);
        },
    );
}

/// Wakers of parked tasks are woken from several threads while the executor is
/// dropped, and after it is gone: harmless, every future dropped once, every handle
/// `Cancelled`.
#[test]
fn wakers_outlive_the_executor_under_load() {
    let _watchdog = crate::common::watchdog();
    const ROUNDS: usize = 20;
    const TASKS: usize = 64;
    const THREADS: usize = 3;
    with_watchdog(
        Duration::from_secs(60),
        "a wake was lost or a loop did not end",
        || {
            for round in 0..ROUNDS {
                let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
                let q = executor.queue(0).unwrap();
                let drops = Drops::default();
                let wakers: Arc<Mutex<Vec<Waker>>> = Arc::default();
                let handles: Vec<_> = (0..TASKS)
                    .map(|_| {
                        let (guard, wakers) = (drops.guard(), wakers.clone());
                        let mut parked = false;
                        q.spawn(poll_fn(move |cx| {
                            let _ = &guard;
                            if !parked {
                                parked = true;
                                wakers.lock().unwrap().push(cx.waker().clone());
                            }
                            Poll::<()>::Pending
                        }))
                    })
                    .collect();
                block_on(executor.run_until(async {
                    while wakers.lock().unwrap().len() < TASKS {
                        yield_now().await;
                    }
                }));
                let stop = Arc::new(AtomicBool::new(false));
                let hammers: Vec<_> = (0..THREADS)
                    .map(|_| {
                        let (wakers, stop) = (wakers.lock().unwrap().clone(), stop.clone());
                        thread::spawn(move || {
                            let mut n = 0u64;
                            while !stop.load(Ordering::Relaxed) || n < 2_000 {
                                wakers[(n as usize) % wakers.len()].wake_by_ref();
                                n += 1;
                            }
                            // The last clones are dropped here, after the executor.
                            drop(wakers);
                        })
                    })
                    .collect();
                thread::sleep(Duration::from_micros(100 * (round as u64 % 5)));
                drop(q);
                drop(executor);
                assert_eq!(drops.count(), TASKS, "round {round}: futures dropped once");
                stop.store(true, Ordering::Relaxed);
                for hammer in hammers {
                    hammer
                        .join()
                        .expect("waking a dropped executor's tasks panicked");
                }
                for handle in handles {
                    assert!(matches!(block_on(handle), Err(JoinError::Cancelled)));
                }
                drop(wakers);
                assert_eq!(drops.count(), TASKS);
            }
        },
    );
}
