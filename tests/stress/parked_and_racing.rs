//! A crowd of parked tasks woken at once, recursive spawning, and aborts racing busy
//! tasks.

use std::cell::Cell;
use std::future::poll_fn;
use std::pin::pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::{Duration, Instant};

use clockworker::{yield_now, ExecutorBuilder, JoinError, JoinHandle};
use futures_lite::future::block_on;

use crate::common::with_watchdog;
use crate::support::*;

/// Tasks parked and woken at once in `parked_tasks_woken_at_once`.
#[cfg(not(debug_assertions))]
const PARKED_TASKS: usize = 1_000_000;
#[cfg(debug_assertions)]
const PARKED_TASKS: usize = 100_000;

/// thread, half from another thread through the inbox — and all complete.
#[test]
fn parked_tasks_woken_at_once() {
    with_watchdog(
        Duration::from_secs(120),
        "a wake was lost or a loop did not end",
        || {
            let start = Instant::now();
            let executor = ExecutorBuilder::new()
                .with_queue(0u8, 1)
                .with_queue(1u8, 2)
                .build()
                .unwrap();
            let parked: Rc<Cell<Vec<Waker>>> = Rc::default();
            let completed = Rc::new(Cell::new(0usize));
            let queues = [executor.queue(0).unwrap(), executor.queue(1).unwrap()];
            for i in 0..PARKED_TASKS {
                let (parked, completed) = (parked.clone(), completed.clone());
                let mut waiting = false;
                // Detached: the task's own drop is what the counter observes.
                drop(queues[i % 2].spawn(poll_fn(move |cx: &mut Context<'_>| {
                    if waiting {
                        completed.set(completed.get() + 1);
                        return Poll::Ready(());
                    }
                    waiting = true;
                    let mut wakers = parked.take();
                    wakers.push(cx.waker().clone());
                    parked.set(wakers);
                    Poll::Pending
                })));
            }
            let spawned = start.elapsed();
            block_on(executor.run_until(async {
                let mut rounds = 0;
                loop {
                    let count = {
                        let wakers = parked.take();
                        let count = wakers.len();
                        parked.set(wakers);
                        count
                    };
                    if count == PARKED_TASKS {
                        break;
                    }
                    rounds += 1;
                    assert!(rounds < 100 * PARKED_TASKS, "tasks did not park");
                    yield_now().await;
                }
            }));
            assert_eq!(executor.stats().live_tasks, PARKED_TASKS);
            let parked_at = start.elapsed();
            let mut wakers = parked.take();
            let remote_half = wakers.split_off(PARKED_TASKS / 2);
            let waker_thread = thread::spawn(move || {
                for waker in remote_half {
                    waker.wake();
                }
            });
            for waker in wakers {
                waker.wake();
            }
            waker_thread.join().unwrap();
            block_on(executor.run_until(async {
                while completed.get() < PARKED_TASKS {
                    yield_now().await;
                }
            }));
            assert_eq!(executor.stats().live_tasks, 0);
            eprintln!(
                "{PARKED_TASKS} tasks: spawned in {spawned:?}, all parked at {parked_at:?}, \
             all done at {:?}",
                start.elapsed()
            );
        },
    );
}

/// Recursive spawning: a chain where each task spawns the next and awaits it (all
/// alive at once), a binary tree summing its leaves, and a relay where each task
/// spawns its successor and finishes (few alive at once).
#[test]
fn recursive_spawning() {
    let _watchdog = crate::common::watchdog();
    const CHAIN: u32 = 20_000;
    const TREE_DEPTH: u32 = 14;
    const RELAY: u32 = 100_000;
    with_watchdog(
        Duration::from_secs(60),
        "a wake was lost or a loop did not end",
        || {
            let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
            let q = executor.queue(0).unwrap();

            fn chain(q: clockworker::QueueHandle<u8>, left: u32) -> JoinHandle<u32> {
                let next = q.clone();
                q.spawn(async move {
                    if left == 0 {
                        return 0;
                    }
                    chain(next, left - 1).await.unwrap() + 1
                })
            }
            fn tree(q: clockworker::QueueHandle<u8>, depth: u32) -> JoinHandle<u64> {
                let inner = q.clone();
                q.spawn(async move {
                    if depth == 0 {
                        return 1;
                    }
                    let left = tree(inner.clone(), depth - 1);
                    let right = tree(inner, depth - 1);
                    left.await.unwrap() + right.await.unwrap()
                })
            }
            fn relay(q: clockworker::QueueHandle<u8>, left: u32, done: Rc<Cell<u32>>) {
                let next = q.clone();
                drop(q.spawn(async move {
                    done.set(done.get() + 1);
                    if left > 0 {
                        relay(next, left - 1, done);
                    }
                }));
            }

            let depth = block_on(executor.run_until(chain(q.clone(), CHAIN))).unwrap();
            assert_eq!(depth, CHAIN);
            let leaves = block_on(executor.run_until(tree(q.clone(), TREE_DEPTH))).unwrap();
            assert_eq!(leaves, 1 << TREE_DEPTH);
            let done = Rc::new(Cell::new(0));
            let max_live = Rc::new(Cell::new(0usize));
            relay(q.clone(), RELAY, done.clone());
            block_on(executor.run_until({
                let (done, max_live, executor) = (done.clone(), max_live.clone(), executor.clone());
                async move {
                    while done.get() <= RELAY {
                        max_live.set(max_live.get().max(executor.stats().live_tasks));
                        yield_now().await;
                    }
                }
            }));
            assert_eq!(done.get(), RELAY + 1);
            assert!(
                max_live.get() <= 2,
                "relay kept {} tasks alive",
                max_live.get()
            );
            assert_eq!(executor.stats().live_tasks, 0);
        },
    );
}

/// Aborts from other threads racing busy tasks that are polled continuously: every
/// aborted task resolves `Cancelled`, or `Ok` if it finished first; nothing leaks.
#[test]
fn aborts_race_busy_tasks() {
    let _watchdog = crate::common::watchdog();
    const ROUNDS: usize = 20;
    const TASKS: usize = 32;
    with_watchdog(
        Duration::from_secs(60),
        "a wake was lost or a loop did not end",
        || {
            for _ in 0..ROUNDS {
                let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
                let q = executor.queue(0).unwrap();
                let drops = Drops::default();
                let deadline = Instant::now() + Duration::from_millis(20);
                let handles: Arc<Vec<JoinHandle<()>>> = Arc::new(
                    (0..TASKS)
                        .map(|_| {
                            let guard = drops.guard();
                            q.spawn(async move {
                                let _guard = guard;
                                BusyUntil(deadline).await;
                            })
                        })
                        .collect(),
                );
                let aborter = {
                    let handles = handles.clone();
                    thread::spawn(move || {
                        for (i, handle) in handles.iter().enumerate() {
                            if i % 2 == 0 {
                                handle.abort();
                            }
                            thread::sleep(Duration::from_micros(200));
                        }
                    })
                };
                block_on(executor.run_until(pin!(BusyUntil(deadline + Duration::from_millis(5)))));
                aborter.join().unwrap();
                let handles =
                    Arc::try_unwrap(handles).unwrap_or_else(|_| panic!("aborter is gone"));
                let results = block_on(executor.run_until(async {
                    let mut results = Vec::new();
                    for handle in handles {
                        results.push(handle.await);
                    }
                    results
                }));
                for (i, result) in results.iter().enumerate() {
                    match (i % 2, result) {
                        (0, Err(JoinError::Cancelled) | Ok(())) | (1, Ok(())) => {}
                        _ => panic!("task {i}: {result:?}"),
                    }
                }
                assert_eq!(drops.count(), TASKS);
                assert_eq!(executor.stats().live_tasks, 0);
            }
        },
    );
}
