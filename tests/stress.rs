//! Stress: OS threads waking and aborting tasks in a loop while the executor runs;
//! duplicate and spurious wakes; wakers outliving the executor while other threads
//! still use them; a million parked tasks woken at once; recursive spawning.
//!
//! Bounded in count (every loop has a fixed number of rounds) and in time (each test
//! body runs under a watchdog that fails it as "hung" instead of hanging the suite).
//! The host is `futures_lite::future::block_on`, which parks its thread: a lost wake
//! there is a hang, not a slow test.
//!
//! The million-task test runs 1,000,000 tasks in release builds and 100,000 in debug
//! builds (`cfg(debug_assertions)`), to stay within a few seconds either way.

mod common;

use common::with_watchdog;

use std::cell::Cell;
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::{Duration, Instant};

use clockworker::{yield_now, ExecutorBuilder, JoinError, JoinHandle};
use futures_lite::future::block_on;

/// Tasks parked and woken at once in `parked_tasks_woken_at_once`.
#[cfg(not(debug_assertions))]
const PARKED_TASKS: usize = 1_000_000;
#[cfg(debug_assertions)]
const PARKED_TASKS: usize = 100_000;

/// xorshift64: a tiny deterministic generator per thread.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Something to wait for, rung from any thread: a counter and the waiter's waker.
#[derive(Default)]
struct Bell {
    rings: AtomicU64,
    waker: Mutex<Option<Waker>>,
}

impl Bell {
    fn ring(&self) {
        self.rings.fetch_add(1, Ordering::AcqRel);
        self.wake();
    }

    /// Wakes the waiter without ringing (a spurious wake for it).
    fn wake(&self) {
        let waker = self.waker.lock().unwrap().clone();
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Waits until the bell rang past `seen` (or `stop` is set); returns the rings.
    fn wait<'a>(&'a self, seen: u64, stop: &'a AtomicBool) -> impl Future<Output = u64> + 'a {
        poll_fn(move |cx| {
            let ready = |rings: u64| rings != seen || stop.load(Ordering::Acquire);
            let rings = self.rings.load(Ordering::Acquire);
            if ready(rings) {
                return Poll::Ready(rings);
            }
            *self.waker.lock().unwrap() = Some(cx.waker().clone());
            // Re-check after publishing the waker: a ring in between is not lost.
            let rings = self.rings.load(Ordering::Acquire);
            if ready(rings) {
                Poll::Ready(rings)
            } else {
                Poll::Pending
            }
        })
    }
}

/// Counts drops (thread-safe).
#[derive(Clone, Default)]
struct Drops(Arc<AtomicUsize>);

struct DropGuard(Arc<AtomicUsize>);

impl Drops {
    fn guard(&self) -> DropGuard {
        DropGuard(self.0.clone())
    }
    fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Fails if a task is polled while it is already being polled.
struct NotReentrant<'a>(&'a AtomicBool);

impl<'a> NotReentrant<'a> {
    fn enter(flag: &'a AtomicBool) -> Self {
        assert!(
            !flag.swap(true, Ordering::AcqRel),
            "task polled twice at once"
        );
        NotReentrant(flag)
    }
}

impl Drop for NotReentrant<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

#[test]
fn threads_wake_and_abort_tasks_while_the_executor_runs() {
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

/// `PARKED_TASKS` tasks park, then are all woken at once — half on the executor's
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

/// A future that resolves on the first poll after `deadline`, waking itself: a busy
/// task that keeps the loop turning (used to race aborts against polls).
struct BusyUntil(Instant);

impl Future for BusyUntil {
    type Output = ();
    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.0 {
            return Poll::Ready(());
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// Aborts from other threads racing busy tasks that are polled continuously: every
/// aborted task resolves `Cancelled`, or `Ok` if it finished first; nothing leaks.
#[test]
fn aborts_race_busy_tasks() {
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
