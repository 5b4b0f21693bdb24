//! Property test of the public API against a model: random sequences of spawn, wake
//! (on the executor's thread or from another thread, real or spurious), abort, drop of
//! the handle, run and shutdown, on two weighted queues. After each run, the tasks that
//! completed, the tasks still alive (`stats().live_tasks`) and the polls must be what
//! the model says; at the end (executor dropped) every handle must resolve as the model
//! says, and every future must have been dropped exactly once.
//!
//! Targets of wakes, aborts and handle drops are drawn among the tasks that exist (a
//! wake or an abort among the live ones), so nearly every operation does something.
//! Order is checked where the contract defines it: within one queue (`RunnableFifo`,
//! the default), a run polls tasks in the order they became ready. Spawns and wakes on
//! this thread queue a task at once; wakes from another thread reach the queue when the
//! next run drains the inbox, after the tasks already queued.
//!
//! The model: a task completes in the first run after it became ready (spawned, or its
//! gate opened) unless it was aborted before that run, the executor was shut down, or
//! it waits forever; an aborted task is never polled again and resolves `Cancelled`;
//! a shutdown or the executor's drop cancels every task not finished; spawning after
//! shutdown gives a handle that resolves `Cancelled` and drops the future at once.

mod common;

use common::quiet_panics;

use std::cell::Cell;
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use clockworker::{yield_now, Executor, ExecutorBuilder, JoinError, JoinHandle};
use proptest::prelude::*;
use proptest::sample::Index;

/// Upper bound on the yields of one settling run (each lets the loop poll a task).
const MAX_SETTLE_YIELDS: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Completes in its first poll.
    Immediate,
    /// Waits for its gate to open, then completes.
    Gated,
    /// Pending until cancelled.
    Forever,
    /// Panics in its first poll (the executor catches task panics).
    Panics,
}

#[derive(Debug, Clone)]
enum Op {
    Spawn {
        queue: u8,
        kind: Kind,
    },
    /// Opens a live task's gate and wakes it, on this thread or from another one.
    Wake {
        task: Index,
        remote: bool,
    },
    /// Wakes a live task without opening its gate.
    SpuriousWake {
        task: Index,
    },
    /// Aborts a live task.
    Abort {
        task: Index,
    },
    /// Drops the handle of a task that still has one.
    DropHandle {
        task: Index,
    },
    Run,
    Shutdown,
}

fn op() -> impl Strategy<Value = Op> {
    let kind = prop_oneof![
        Just(Kind::Immediate),
        Just(Kind::Gated),
        Just(Kind::Forever),
        Just(Kind::Panics),
    ];
    prop_oneof![
        6 => (0..2u8, kind).prop_map(|(queue, kind)| Op::Spawn { queue, kind }),
        4 => (any::<Index>(), any::<bool>()).prop_map(|(task, remote)| Op::Wake { task, remote }),
        1 => any::<Index>().prop_map(|task| Op::SpuriousWake { task }),
        2 => any::<Index>().prop_map(|task| Op::Abort { task }),
        1 => any::<Index>().prop_map(|task| Op::DropHandle { task }),
        3 => Just(Op::Run),
        1 => Just(Op::Shutdown),
    ]
}

/// What the model expects of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Not finished: waiting for a run (or its gate), or aborted and not yet dropped.
    Live {
        aborted: bool,
    },
    Completed,
    Panicked,
    Cancelled,
}

/// A task as the test sees it.
struct Task {
    queue: u8,
    kind: Kind,
    state: State,
    gate_open: bool,
    handle: Option<JoinHandle<usize>>,
    /// Set by the future when it completes.
    finished: Rc<Cell<bool>>,
    polls: Rc<Cell<usize>>,
    gate: Arc<AtomicBool>,
    waker: Arc<Mutex<Option<Waker>>>,
    drops: Arc<AtomicUsize>,
    /// Polls the model expects so far.
    expected_polls: usize,
    /// Woken (really or spuriously) since its last poll: polled again at the next run.
    woken: bool,
}

struct Guard(Arc<AtomicUsize>);

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// The ids of the tasks, in the order they were polled.
type PollLog = Rc<std::cell::RefCell<Vec<usize>>>;

/// A wake on the executor's thread of task `id`, already woken from another thread
/// since the last run: the task is queued now, no longer when the inbox is drained.
fn here_after_remote(id: usize, queued_remote: &mut Vec<usize>, queued_here: &mut Vec<usize>) {
    if let Some(at) = queued_remote.iter().position(|&queued| queued == id) {
        queued_remote.remove(at);
        queued_here.push(id);
    }
}

/// Picks among the tasks for which `eligible` holds, if any.
fn pick(tasks: &[Task], index: &Index, eligible: impl Fn(&Task) -> bool) -> Option<usize> {
    let candidates: Vec<usize> = (0..tasks.len()).filter(|&i| eligible(&tasks[i])).collect();
    (!candidates.is_empty()).then(|| candidates[index.index(candidates.len())])
}

fn is_live(task: &Task) -> bool {
    matches!(task.state, State::Live { aborted: false })
}

fn task_future(id: usize, task: &Task, log: &PollLog) -> impl Future<Output = usize> {
    let (kind, finished, polls) = (task.kind, task.finished.clone(), task.polls.clone());
    let log = log.clone();
    let (gate, waker) = (task.gate.clone(), task.waker.clone());
    let guard = Guard(task.drops.clone());
    poll_fn(move |cx: &mut Context<'_>| {
        let _ = &guard;
        polls.set(polls.get() + 1);
        log.borrow_mut().push(id);
        let ready = match kind {
            Kind::Immediate => true,
            Kind::Panics => std::panic::panic_any(id),
            Kind::Forever => false,
            Kind::Gated => {
                *waker.lock().unwrap() = Some(cx.waker().clone());
                gate.load(Ordering::Acquire)
            }
        };
        if ready {
            finished.set(true);
            Poll::Ready(id)
        } else {
            Poll::Pending
        }
    })
}

/// Runs the executor until no task is ready (the abort inbox and wakes from other
/// threads are drained at the start of every loop turn).
fn settle(executor: &Rc<Executor<u8>>) {
    futures_lite::future::block_on(executor.run_until(async {
        let mut quiet = 0;
        for _ in 0..MAX_SETTLE_YIELDS {
            yield_now().await;
            let ready: usize = [0, 1]
                .iter()
                .map(|&k| executor.queue_stats(k).unwrap().ready)
                .sum();
            quiet = if ready == 0 { quiet + 1 } else { 0 };
            if quiet >= 2 {
                return;
            }
        }
        panic!("executor did not settle");
    }));
}

fn poll_now<F: Future>(future: F) -> Poll<F::Output> {
    let mut future = pin!(future);
    future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
}

fn check(weights: (u32, u32), ops: Vec<Op>) -> Result<(), TestCaseError> {
    let executor = ExecutorBuilder::new()
        .with_queue(0u8, weights.0)
        .with_queue(1u8, weights.1)
        .with_panic_on_task_panic(false)
        .build()
        .unwrap();
    let mut tasks: Vec<Task> = Vec::new();
    let mut shut_down = false;
    let log = PollLog::default();
    // Tasks queued since the last run: by a spawn or a wake on this thread, and by a
    // wake from another thread (queued when the run drains the inbox). A wake on this
    // thread queues a task at once even while a wake from elsewhere is on its way
    // (that one then finds it queued): the task moves from the second list to the first.
    let (mut queued_here, mut queued_remote): (Vec<usize>, Vec<usize>) = (vec![], vec![]);
    for op in ops {
        match op {
            Op::Spawn { queue, kind } => {
                let mut task = Task {
                    queue,
                    kind,
                    state: State::Live { aborted: false },
                    gate_open: false,
                    handle: None,
                    finished: Rc::default(),
                    polls: Rc::default(),
                    gate: Arc::default(),
                    waker: Arc::default(),
                    drops: Arc::default(),
                    expected_polls: 0,
                    woken: false,
                };
                let future = task_future(tasks.len(), &task, &log);
                task.handle = Some(executor.queue(queue).unwrap().spawn(future));
                if shut_down {
                    task.state = State::Cancelled;
                    prop_assert_eq!(task.drops.load(Ordering::SeqCst), 1);
                } else {
                    queued_here.push(tasks.len());
                }
                tasks.push(task);
            }
            Op::Wake { task, remote } => {
                let Some(id) = pick(&tasks, &task, is_live) else {
                    continue;
                };
                let task = &mut tasks[id];
                task.gate_open = true;
                task.gate.store(true, Ordering::Release);
                let waker = task.waker.lock().unwrap().clone();
                if let Some(waker) = waker {
                    if !task.woken && !shut_down {
                        if remote {
                            queued_remote.push(id);
                        } else {
                            queued_here.push(id);
                        }
                    } else if !remote {
                        here_after_remote(id, &mut queued_remote, &mut queued_here);
                    }
                    task.woken = true;
                    if remote {
                        std::thread::spawn(move || waker.wake()).join().unwrap();
                    } else {
                        waker.wake();
                    }
                }
            }
            Op::SpuriousWake { task } => {
                let Some(id) = pick(&tasks, &task, is_live) else {
                    continue;
                };
                let task = &mut tasks[id];
                let waker = task.waker.lock().unwrap().clone();
                if let Some(waker) = waker {
                    if !task.woken && !shut_down {
                        queued_here.push(id);
                    } else {
                        here_after_remote(id, &mut queued_remote, &mut queued_here);
                    }
                    task.woken = true;
                    waker.wake();
                }
            }
            Op::Abort { task } => {
                let Some(id) = pick(&tasks, &task, |t| is_live(t) && t.handle.is_some()) else {
                    continue;
                };
                let task = &mut tasks[id];
                let Some(handle) = &task.handle else { continue };
                handle.abort();
                if let State::Live { .. } = task.state {
                    task.state = State::Live { aborted: true };
                }
            }
            Op::DropHandle { task } => {
                if let Some(id) = pick(&tasks, &task, |t| t.handle.is_some()) {
                    tasks[id].handle = None;
                }
            }
            Op::Run => {
                log.borrow_mut().clear();
                settle(&executor);
                // Within each queue: polled in the order they became ready, aborted
                // tasks left out (dropped, never polled), nothing else polled.
                let polled = std::mem::take(&mut *log.borrow_mut());
                let queued: Vec<usize> = queued_here
                    .drain(..)
                    .chain(queued_remote.drain(..))
                    .collect();
                for queue in 0..2u8 {
                    let in_queue = |id: &usize| tasks[*id].queue == queue;
                    let expected: Vec<usize> = queued
                        .iter()
                        .copied()
                        .filter(|id| {
                            in_queue(id) && tasks[*id].state == State::Live { aborted: false }
                        })
                        .collect();
                    let got: Vec<usize> = polled.iter().copied().filter(in_queue).collect();
                    prop_assert_eq!(&got, &expected, "poll order of queue {}", queue);
                }
                let mut live = 0;
                for task in &mut tasks {
                    task.state = match task.state {
                        State::Live { aborted: true } => State::Cancelled,
                        State::Live { aborted: false } if shut_down => State::Cancelled,
                        State::Live { aborted: false } => {
                            let parked = task.kind == Kind::Gated && !task.gate_open;
                            if task.expected_polls == 0 || task.woken {
                                task.expected_polls += 1;
                            }
                            task.woken = false;
                            match task.kind {
                                Kind::Immediate => State::Completed,
                                Kind::Panics => State::Panicked,
                                Kind::Gated if !parked => State::Completed,
                                Kind::Gated | Kind::Forever => {
                                    live += 1;
                                    State::Live { aborted: false }
                                }
                            }
                        }
                        done => done,
                    };
                }
                for (i, task) in tasks.iter().enumerate() {
                    prop_assert_eq!(
                        task.finished.get(),
                        task.state == State::Completed,
                        "task {} ({:?}) finished flag vs model {:?}",
                        i,
                        task.kind,
                        task.state
                    );
                    prop_assert_eq!(
                        task.polls.get(),
                        task.expected_polls,
                        "task {} ({:?}) polls",
                        i,
                        task.kind
                    );
                }
                prop_assert_eq!(executor.stats().live_tasks, live, "live tasks after run");
            }
            Op::Shutdown => {
                executor.shutdown();
                shut_down = true;
                queued_here.clear();
                queued_remote.clear();
                for task in &mut tasks {
                    if let State::Live { .. } = task.state {
                        task.state = State::Cancelled;
                    }
                }
                prop_assert_eq!(executor.stats().live_tasks, 0);
            }
        }
    }
    drop(executor);
    for (i, task) in tasks.iter_mut().enumerate() {
        let expected = match task.state {
            State::Live { .. } | State::Cancelled => State::Cancelled,
            done => done,
        };
        prop_assert_eq!(
            task.drops.load(Ordering::SeqCst),
            1,
            "task {} ({:?}): future drops",
            i,
            task.kind
        );
        let Some(handle) = task.handle.take() else {
            continue;
        };
        let got = match poll_now(handle) {
            Poll::Pending => {
                return Err(TestCaseError::fail(format!("task {i}: handle pending")));
            }
            Poll::Ready(Ok(value)) => {
                prop_assert_eq!(value, i);
                State::Completed
            }
            Poll::Ready(Err(JoinError::Panic(payload))) => {
                prop_assert_eq!(payload.downcast_ref::<usize>(), Some(&i));
                State::Panicked
            }
            Poll::Ready(Err(_)) => State::Cancelled,
        };
        prop_assert_eq!(got, expected, "task {} ({:?}) result", i, task.kind);
    }
    Ok(())
}

/// Panic messages this binary provokes on purpose.
const EXPECTED_PANICS: &[&str] = &[];

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn random_api_sequences_match_the_model(
        weights in (1..=10_000u32, 1..=10_000u32),
        ops in prop::collection::vec(op(), 1..80),
    ) {
        let _watchdog = common::watchdog();
        quiet_panics(EXPECTED_PANICS);
        check(weights, ops)?;
    }
}
