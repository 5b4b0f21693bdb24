//! Wakes from other OS threads: the executor's inbox and its host handshake.
//!
//! Every test runs its body on a fresh thread under a watchdog: a lost wake shows up as
//! a failed test ("hung"), not as a test binary that never ends. Hosts: tokio's
//! current_thread `block_on`, and `futures_lite`'s `block_on`, which parks the thread
//! and so only makes progress if the wake really reaches it.

mod common;

use common::with_watchdog;

use std::future::{poll_fn, Future};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::task::{Poll, Waker};
use std::thread;
use std::time::Duration;

use clockworker::{ExecutorBuilder, JoinError};

fn tokio_block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("tokio runtime")
        .block_on(f)
}

#[test]
fn ten_thousand_messages_from_another_thread_arrive_in_order() {
    let _watchdog = common::watchdog();
    const N: u32 = 10_000;
    for host in ["tokio", "futures_lite"] {
        let got = with_watchdog(
            Duration::from_secs(20),
            "a wake from another thread was lost",
            move || {
                let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
                let q = executor.queue(0).unwrap();
                // Small capacity: the receiver empties the channel and parks over and
                // over, so most messages come with a wake from the sender's thread.
                let (tx, mut rx) = tokio::sync::mpsc::channel::<u32>(8);
                let sender = thread::spawn(move || {
                    for i in 0..N {
                        tx.blocking_send(i).expect("receiver alive");
                    }
                });
                let main = executor.run_until(q.spawn(async move {
                    let mut got = Vec::with_capacity(N as usize);
                    while let Some(v) = rx.recv().await {
                        got.push(v);
                    }
                    got
                }));
                let got = if host == "tokio" {
                    tokio_block_on(main)
                } else {
                    futures_lite::future::block_on(main)
                };
                sender.join().unwrap();
                eprintln!("{host}: {:?}", executor.stats());
                got.unwrap()
            },
        );
        assert_eq!(got.len(), N as usize, "{host}: all messages arrived");
        assert!(
            got.iter().copied().eq(0..N),
            "{host}: messages arrived in order"
        );
    }
}

/// Four threads start at once (a barrier) and each feeds its own clockworker task, two
/// tasks per queue; a fifth task receives from all four threads on one shared channel.
#[test]
fn wakes_from_four_threads_at_once() {
    let _watchdog = common::watchdog();
    const THREADS: usize = 4;
    const PER_THREAD: u32 = 2_500;
    let (own, shared) = with_watchdog(
        Duration::from_secs(20),
        "a wake from another thread was lost",
        || {
            let executor = ExecutorBuilder::new()
                .with_queue('a', 1)
                .with_queue('b', 2)
                .build()
                .unwrap();
            let barrier = Arc::new(Barrier::new(THREADS));
            let (shared_tx, mut shared_rx) = tokio::sync::mpsc::unbounded_channel::<(usize, u32)>();
            let mut receivers = Vec::new();
            let mut threads = Vec::new();
            for t in 0..THREADS {
                let (tx, rx) = tokio::sync::mpsc::channel::<u32>(4);
                receivers.push(rx);
                let barrier = barrier.clone();
                let shared_tx = shared_tx.clone();
                threads.push(thread::spawn(move || {
                    barrier.wait();
                    for i in 0..PER_THREAD {
                        tx.blocking_send(i).unwrap();
                        shared_tx.send((t, i)).unwrap();
                    }
                }));
            }
            drop(shared_tx);
            let handles: Vec<_> = receivers
                .into_iter()
                .enumerate()
                .map(|(t, mut rx)| {
                    let key = if t % 2 == 0 { 'a' } else { 'b' };
                    executor.queue(key).unwrap().spawn(async move {
                        let mut expected = 0;
                        while let Some(v) = rx.recv().await {
                            assert_eq!(v, expected, "thread {t}: out of order");
                            expected += 1;
                        }
                        expected
                    })
                })
                .collect();
            let shared = executor.queue('b').unwrap().spawn(async move {
                let mut next = [0u32; THREADS];
                while let Some((t, i)) = shared_rx.recv().await {
                    assert_eq!(i, next[t], "shared channel: thread {t} out of order");
                    next[t] += 1;
                }
                next
            });
            let out = tokio_block_on(executor.run_until(async {
                let mut own = Vec::new();
                for h in handles {
                    own.push(h.await.unwrap());
                }
                (own, shared.await.unwrap())
            }));
            for t in threads {
                t.join().unwrap();
            }
            out
        },
    );
    assert_eq!(own, vec![PER_THREAD; THREADS]);
    assert_eq!(shared, [PER_THREAD; THREADS]);
}

/// A raw `Waker` taken out of a clockworker task and woken 20,000 times from another
/// thread, partly while the task is being polled, partly after it completed. Extra
/// wakes only cause extra polls (coalesced while the task is already scheduled); the
/// task completes exactly when its condition holds; late wakes are no-ops.
#[test]
fn waker_cloned_out_and_woken_many_times_from_another_thread() {
    let _watchdog = common::watchdog();
    const WAKES: usize = 20_000;
    let (polls, queue_polls) = with_watchdog(
        Duration::from_secs(20),
        "a wake from another thread was lost",
        || {
            let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
            let q = executor.queue(0).unwrap();
            let slot: Arc<Mutex<Option<Waker>>> = Arc::new(Mutex::new(None));
            let done = Arc::new(AtomicBool::new(false));
            let wakes_sent = Arc::new(AtomicUsize::new(0));

            let task = q.spawn({
                let (slot, done) = (slot.clone(), done.clone());
                let mut polls = 0usize;
                poll_fn(move |cx| {
                    polls += 1;
                    if done.load(Ordering::Acquire) {
                        return Poll::Ready(polls);
                    }
                    *slot.lock().unwrap() = Some(cx.waker().clone());
                    Poll::Pending
                })
            });
            // A bystander task that must not be disturbed.
            let bystander = q.spawn(async {
                let mut n = 0u32;
                for _ in 0..200 {
                    clockworker::yield_now().await;
                    n += 1;
                }
                n
            });
            let waker_thread = thread::spawn({
                let (slot, done, wakes_sent) = (slot.clone(), done.clone(), wakes_sent.clone());
                move || {
                    let waker = loop {
                        if let Some(w) = slot.lock().unwrap().clone() {
                            break w;
                        }
                        thread::yield_now();
                    };
                    for i in 0..WAKES {
                        match i % 3 {
                            0 => waker.wake_by_ref(),
                            1 => {
                                // Clone then wake by value: another path of the vtable.
                                let copy = waker.clone();
                                copy.wake();
                            }
                            _ => drop(waker.clone()),
                        }
                        wakes_sent.fetch_add(1, Ordering::Relaxed);
                    }
                    done.store(true, Ordering::Release);
                    waker.wake_by_ref();
                    // Spurious wakes after completion (the task may already be gone).
                    for _ in 0..1_000 {
                        waker.wake_by_ref();
                    }
                    waker.wake();
                }
            });
            let (polls, bystander) = tokio_block_on(
                executor.run_until(async { (task.await.unwrap(), bystander.await.unwrap()) }),
            );
            waker_thread.join().expect("waker thread did not panic");
            assert_eq!(bystander, 200);
            // Late wakes: the executor keeps running fine afterwards.
            let after = tokio_block_on(executor.run_until(q.spawn(async { 5 })));
            assert_eq!(after.unwrap(), 5);
            let stats = executor.queue_stats(0).unwrap();
            assert_eq!(stats.completed, 3);
            (polls, stats.polls)
        },
    );
    eprintln!("{WAKES} cross-thread wakes caused {polls} polls");
    assert!(polls >= 2, "the task was polled again after being woken");
    assert!(polls <= WAKES + 2, "more polls ({polls}) than wakes");
    // task + bystander (201 polls) + the last task (1 poll).
    assert_eq!(queue_polls as usize, polls + 201 + 1);
}

/// A waker that outlives its executor (and the host runtime): woken, cloned and
/// dropped on another thread afterwards. The task was cancelled when the executor was
/// dropped; its waker must be inert, not a crash.
#[test]
fn waker_outliving_the_executor_is_harmless() {
    with_watchdog(
        Duration::from_secs(20),
        "a wake from another thread was lost",
        || {
            let (waker, handle, main_waker) = {
                let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
                let q = executor.queue(0).unwrap();
                let slot: Arc<Mutex<Option<Waker>>> = Arc::new(Mutex::new(None));
                let handle = q.spawn({
                    let slot = slot.clone();
                    poll_fn(move |cx| {
                        *slot.lock().unwrap() = Some(cx.waker().clone());
                        Poll::<()>::Pending
                    })
                });
                // The run_until future's own waker escapes too.
                let main_waker = tokio_block_on(executor.run_until(async {
                    while slot.lock().unwrap().is_none() {
                        clockworker::yield_now().await;
                    }
                    poll_fn(|cx| Poll::Ready(cx.waker().clone())).await
                }));
                let waker = slot.lock().unwrap().take().unwrap();
                drop(q);
                drop(executor);
                (waker, handle, main_waker)
            };
            // The task was cancelled by the executor's drop.
            assert!(handle.is_finished());
            assert!(matches!(
                futures_lite::future::block_on(handle),
                Err(JoinError::Cancelled)
            ));
            // Wake and drop on another thread, then on this one.
            let copy = waker.clone();
            let main_copy = main_waker.clone();
            thread::spawn(move || {
                for _ in 0..100 {
                    waker.wake_by_ref();
                    main_waker.wake_by_ref();
                }
                let (copy, main_copy) = (waker.clone(), main_waker.clone());
                copy.wake();
                main_copy.wake();
                drop(waker);
                drop(main_waker);
            })
            .join()
            .expect("waking a dead executor's task from another thread did not panic");
            copy.wake();
            main_copy.wake();
        },
    );
}

/// Wakes racing the executor's drop: a thread hammers the waker of a parked task while
/// the executor is dropped on its own thread. Repeated to give the race a chance.
#[test]
fn wakes_racing_executor_drop_are_harmless() {
    with_watchdog(
        Duration::from_secs(20),
        "a wake from another thread was lost",
        || {
            for round in 0..50 {
                let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
                let q = executor.queue(0).unwrap();
                let slot: Arc<Mutex<Option<Waker>>> = Arc::new(Mutex::new(None));
                let polls = Arc::new(AtomicUsize::new(0));
                let handle = q.spawn({
                    let (slot, polls) = (slot.clone(), polls.clone());
                    poll_fn(move |cx| {
                        polls.fetch_add(1, Ordering::Relaxed);
                        *slot.lock().unwrap() = Some(cx.waker().clone());
                        Poll::<()>::Pending
                    })
                });
                tokio_block_on(executor.run_until(async {
                    while slot.lock().unwrap().is_none() {
                        clockworker::yield_now().await;
                    }
                }));
                let waker = slot.lock().unwrap().take().unwrap();
                let stop = Arc::new(AtomicBool::new(false));
                let hammer = thread::spawn({
                    let stop = stop.clone();
                    move || {
                        let mut n = 0u64;
                        while !stop.load(Ordering::Relaxed) || n < 1_000 {
                            waker.wake_by_ref();
                            n += 1;
                        }
                        waker.wake();
                    }
                });
                // Let some wakes land in the inbox (the loop is not running), then drop.
                thread::sleep(Duration::from_micros(200));
                drop(q);
                drop(executor);
                stop.store(true, Ordering::Relaxed);
                hammer.join().unwrap_or_else(|_| {
                    panic!("round {round}: waking while the executor dropped panicked")
                });
                assert!(matches!(
                    futures_lite::future::block_on(handle),
                    Err(JoinError::Cancelled)
                ));
            }
        },
    );
}

/// The `run_until` future itself (not a task) waits on a channel fed from another
/// thread: its waker must wake the parked host, under both hosts.
#[test]
fn run_until_future_woken_from_another_thread() {
    let _watchdog = common::watchdog();
    for host in ["tokio", "futures_lite"] {
        let sum = with_watchdog(
            Duration::from_secs(20),
            "a wake from another thread was lost",
            move || {
                let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
                let (tx, mut rx) = tokio::sync::mpsc::channel::<u64>(2);
                let sender = thread::spawn(move || {
                    for i in 0..2_000 {
                        tx.blocking_send(i).unwrap();
                    }
                });
                let main = executor.run_until(async move {
                    let mut sum = 0;
                    while let Some(v) = rx.recv().await {
                        sum += v;
                    }
                    sum
                });
                let sum = if host == "tokio" {
                    tokio_block_on(main)
                } else {
                    futures_lite::future::block_on(main)
                };
                sender.join().unwrap();
                sum
            },
        );
        assert_eq!(sum, (0..2_000).sum::<u64>(), "{host}");
    }
}

/// `JoinHandle<T>` is `Send` when `T` is: awaited on another thread, it is woken
/// from the executor's thread when the task completes; aborted from another thread,
/// the task's future is still dropped on the executor's thread.
#[test]
fn join_handle_awaited_and_aborted_from_another_thread() {
    with_watchdog(
        Duration::from_secs(20),
        "a wake from another thread was lost",
        || {
            let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
            let q = executor.queue(0).unwrap();
            let executor_thread = thread::current().id();

            let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
            let answer = q.spawn(async move {
                go_rx.await.unwrap();
                String::from("forty-two")
            });
            let dropped_on = Arc::new(Mutex::new(None));
            let doomed = q.spawn({
                let probe = DropProbe(dropped_on.clone());
                async move {
                    let _probe = probe;
                    std::future::pending::<()>().await
                }
            });
            let awaiter = thread::spawn(move || futures_lite::future::block_on(answer));
            let aborter = thread::spawn(move || {
                doomed.abort();
                drop(doomed);
            });
            tokio_block_on(executor.run_until(async {
                // Let both threads get going, then release the first task.
                tokio::time::sleep(Duration::from_millis(5)).await;
                go_tx.send(()).unwrap();
                while dropped_on.lock().unwrap().is_none() || !awaiter.is_finished() {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }));
            aborter.join().unwrap();
            assert_eq!(awaiter.join().unwrap().unwrap(), "forty-two");
            assert_eq!(
                *dropped_on.lock().unwrap(),
                Some(executor_thread),
                "the aborted task's future was dropped on the executor's thread"
            );
            let stats = executor.queue_stats(0).unwrap();
            assert_eq!((stats.completed, stats.cancelled), (1, 1));
        },
    );
}

/// Records the thread that drops it.
struct DropProbe(Arc<Mutex<Option<thread::ThreadId>>>);

impl Drop for DropProbe {
    fn drop(&mut self) {
        *self.0.lock().unwrap() = Some(thread::current().id());
    }
}
