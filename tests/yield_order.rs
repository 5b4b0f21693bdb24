//! Order of tasks that yield.
//!
//! `clockworker::yield_now()` goes through clockworker's own queue: under the default
//! `RunnableFifo`, N tasks that each loop {record id; yield} run in exact round-robin
//! order, whatever the host, and however often the loop returns to the host in
//! between.
//!
//! `tokio::task::yield_now()` goes through tokio: the wake is deferred until tokio is
//! about to park, then tokio wakes the deferred wakers last-in first-out. The order is
//! therefore tokio's, not the queue's; the executor only guarantees that every such
//! task is polled again and finishes. See the comment in
//! `tokio_yield_now_inside_clockworker_completes_without_starvation` for the order we
//! observe.

mod common;

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

use clockworker::{ExecutorBuilder, JoinHandle, QueueHandle};

const N: usize = 8;
const K: usize = 50;

/// Spawns tasks `ids` on `q`; each records its id then yields with `yield_fn`, K times.
fn spawn_recorders<Y, YF>(
    q: &QueueHandle<u8>,
    ids: impl IntoIterator<Item = usize>,
    log: &Rc<RefCell<Vec<usize>>>,
    yield_fn: YF,
) -> Vec<JoinHandle<usize>>
where
    YF: Fn() -> Y + Clone + 'static,
    Y: Future<Output = ()>,
{
    ids.into_iter()
        .map(|id| {
            let log = log.clone();
            let yield_fn = yield_fn.clone();
            q.spawn(async move {
                let mut done = 0;
                for _ in 0..K {
                    log.borrow_mut().push(id);
                    yield_fn().await;
                    done += 1;
                }
                done
            })
        })
        .collect()
}

fn round_robin(ids: &[usize], rounds: usize) -> Vec<usize> {
    (0..rounds).flat_map(|_| ids.iter().copied()).collect()
}

#[derive(Clone, Copy, Debug)]
enum Host {
    Tokio,
    FuturesLite,
}

fn block_on<F: Future>(host: Host, f: F) -> F::Output {
    match host {
        Host::Tokio => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f),
        Host::FuturesLite => futures_lite::future::block_on(f),
    }
}

#[test]
fn clockworker_yield_now_is_round_robin() {
    let _watchdog = common::watchdog();
    // A 1 ns driver_yield returns to the host after every single poll: the order must
    // survive the trips through the host too.
    for host in [Host::Tokio, Host::FuturesLite] {
        for driver_yield in [Duration::from_micros(500), Duration::from_nanos(1)] {
            let executor = ExecutorBuilder::new()
                .with_queue(0u8, 1)
                .with_driver_yield(driver_yield)
                .build()
                .unwrap();
            let q = executor.queue(0).unwrap();
            let log = Rc::new(RefCell::new(Vec::new()));
            let handles = spawn_recorders(&q, 0..N, &log, clockworker::yield_now);
            let done = block_on(
                host,
                executor.run_until(async move {
                    let mut done = Vec::new();
                    for h in handles {
                        done.push(h.await.unwrap());
                    }
                    done
                }),
            );
            assert_eq!(done, vec![K; N]);
            let expected = round_robin(&(0..N).collect::<Vec<_>>(), K);
            assert_eq!(
                *log.borrow(),
                expected,
                "{host:?}, driver_yield {driver_yield:?}: not round-robin"
            );
            assert_eq!(executor.stats().polls as usize, N * (K + 1));
        }
    }
}

/// Tasks spawned from inside a running task (so the loop is mid-turn) keep spawn order
/// too, and a task spawned later joins the end of the rotation.
#[test]
fn clockworker_yield_now_round_robin_for_tasks_spawned_while_running() {
    let _watchdog = common::watchdog();
    let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    let q = executor.queue(0).unwrap();
    let log = Rc::new(RefCell::new(Vec::new()));
    let done = block_on(
        Host::Tokio,
        executor.run_until({
            let (q, log) = (q.clone(), log.clone());
            async move {
                let handles = spawn_recorders(&q, 0..N, &log, clockworker::yield_now);
                let mut done = Vec::new();
                for h in handles {
                    done.push(h.await.unwrap());
                }
                done
            }
        }),
    );
    assert_eq!(done, vec![K; N]);
    assert_eq!(*log.borrow(), round_robin(&(0..N).collect::<Vec<_>>(), K));
}

/// With two queues, EEVDF decides how the queues interleave, but within each queue the
/// tasks still rotate in exact round-robin order.
#[test]
fn clockworker_yield_now_round_robin_within_each_queue() {
    let _watchdog = common::watchdog();
    let executor = ExecutorBuilder::new()
        .with_queue(0u8, 1)
        .with_queue(1u8, 3)
        .with_sched_latency(Duration::from_micros(200))
        .with_min_slice(Duration::from_micros(20))
        .build()
        .unwrap();
    let q0 = executor.queue(0).unwrap();
    let q1 = executor.queue(1).unwrap();
    let log = Rc::new(RefCell::new(Vec::new()));
    // Even ids on queue 0, odd ids on queue 1, spawned interleaved.
    let mut handles = Vec::new();
    for id in 0..N {
        let q = if id % 2 == 0 { &q0 } else { &q1 };
        handles.extend(spawn_recorders(q, [id], &log, clockworker::yield_now));
    }
    let done = block_on(
        Host::Tokio,
        executor.run_until(async move {
            let mut done = Vec::new();
            for h in handles {
                done.push(h.await.unwrap());
            }
            done
        }),
    );
    assert_eq!(done, vec![K; N]);
    let log = log.borrow();
    for parity in [0, 1] {
        let ids: Vec<usize> = (0..N).filter(|id| id % 2 == parity).collect();
        let sub: Vec<usize> = log.iter().copied().filter(|id| id % 2 == parity).collect();
        assert_eq!(sub, round_robin(&ids, K), "queue {parity}: not round-robin");
    }
}

/// `tokio::task::yield_now()` inside clockworker tasks, run by tokio.
///
/// Observed (tokio 1.54, current_thread, `run_until` at the top of `block_on`): the
/// first round runs in spawn order 0..N; each task's `yield_now` defers its waker
/// (tokio's defer list is a stack), the loop runs out of ready tasks and returns
/// to tokio, which wakes the deferred wakers last-in first-out. clockworker queues
/// each woken task as it comes, so the next round runs N-1..0, the one after 0..N-1
/// again: the order reverses every round (a "boustrophedon"). Every round contains
/// every task once, so no task ever runs two rounds ahead of another.
///
/// Asserted: what the executor guarantees: every task completes its K iterations,
/// with exactly one poll per yield (plus the last), and no task starves.
#[test]
fn tokio_yield_now_inside_clockworker_completes_without_starvation() {
    let _watchdog = common::watchdog();
    for run_mode in ["block_on", "localset"] {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
        let q = executor.queue(0).unwrap();
        let log = Rc::new(RefCell::new(Vec::new()));
        let handles = spawn_recorders(&q, 0..N, &log, tokio::task::yield_now);
        let join_all = async move {
            let mut done = Vec::new();
            for h in handles {
                done.push(h.await.unwrap());
            }
            done
        };
        let done = if run_mode == "block_on" {
            rt.block_on(executor.run_until(join_all))
        } else {
            // run() as a LocalSet task beside the joining future.
            let local = tokio::task::LocalSet::new();
            local.block_on(&rt, async {
                let runner = tokio::task::spawn_local({
                    let executor = executor.clone();
                    async move { executor.run().await }
                });
                let done = join_all.await;
                executor.shutdown();
                runner.await.unwrap();
                done
            })
        };
        assert_eq!(
            done,
            vec![K; N],
            "{run_mode}: every task did its K iterations"
        );
        assert_eq!(
            executor.queue_stats(0).unwrap().polls as usize,
            N * (K + 1),
            "{run_mode}: one poll per yield"
        );

        let log = log.borrow();
        let rounds: Vec<&[usize]> = log.chunks(N).collect();
        eprintln!(
            "{run_mode}: first rounds of tokio-yield order: {:?}",
            &rounds[..4.min(rounds.len())]
        );
        // No starvation: over any stretch of 2N consecutive records, every task
        // appears; and at every point no task is more than 2 iterations ahead of any
        // other.
        for window in log.windows(2 * N) {
            for id in 0..N {
                assert!(
                    window.contains(&id),
                    "{run_mode}: task {id} starved: {window:?}"
                );
            }
        }
        let mut count = [0usize; N];
        for &id in log.iter() {
            count[id] += 1;
            let (lo, hi) = (count.iter().min().unwrap(), count.iter().max().unwrap());
            assert!(hi - lo <= 2, "{run_mode}: iteration spread {count:?}");
        }
    }
}
