//! The task lifecycle as a grid, in the spirit of tokio's `task_combinations`: every
//! mix of
//!
//! - what the future does: completes, stays pending forever, panics in its poll, or
//!   holds a value whose `Drop` panics;
//! - what happens to its `JoinHandle`: awaited, dropped (detached), aborted before the
//!   first poll, aborted by the task itself during its first poll, or aborted after
//!   its first poll;
//! - what happens to the executor: it runs until everything settles, it is shut down
//!   (from inside a task, while `run` runs), or it is dropped without ever running;
//! - how task panics are handled: caught (`with_panic_on_task_panic(false)`) or
//!   propagated out of `run`/`run_until` (the default);
//!
//! checking the handle's result (and its panic payload), how often the future was
//! polled, that the future, the output and a panic payload are each dropped exactly
//! once, which counter of the queue's stats the task ended in, that the executor holds
//! no task afterwards (`stats().live_tasks`), and that it still serves other tasks.
//!
//! A panic in a future's `Drop` *outside* its poll (the task was aborted before it
//! ran, or cancelled by shutdown or by dropping the executor) is caught before it
//! reaches the task cell: clockworker's task wrapper drops the future itself under
//! `catch_unwind`, because the cell drops the wrapper in the middle of its own
//! bookkeeping (`Runnable`'s `Drop`, then `Header::finish`). As in tokio, the handle
//! then resolves `JoinError::Panic` with that payload instead of `Cancelled`, the
//! task counts as panicked, and the panic is never re-raised out of `run`, `shutdown`
//! or the executor's `Drop`, in either panic mode. A value whose `Drop` panics while
//! the future completes is dropped inside the poll: that is an ordinary task panic.
//!
//! An output whose `Drop` panics gets the same treatment when nobody takes it (its
//! handle was dropped before or after the task finished): the panic is caught and
//! discarded, as tokio does, instead of aborting the process.

#[path = "../common/mod.rs"]
mod common;
mod outside_the_grid;
mod support;

use common::quiet_panics;

use std::cell::Cell;
use std::future::Future;
use std::rc::Rc;
use std::task::Poll;

use clockworker::{Executor, JoinError, JoinHandle, QueueHandle};
use support::{
    build, drive, poll_once, settle, Count, Guard, Output, PanicMode, Slot, EXPECTED_PANICS, MODES,
    SUBJECT_QUEUE,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Behaviour {
    /// Returns an output (holding a drop guard) in its first poll.
    Completes,
    /// Pending forever after its first poll; never registers a waker elsewhere.
    PendingForever,
    /// Panics in its first poll with a payload holding a drop guard.
    PanicsInPoll,
    /// Holds a value whose `Drop` panics, and completes in its first poll: the value
    /// is dropped inside the poll (a task panic). If the future is dropped before
    /// (never polled), the value's panic happens while the task is cancelled.
    PanicsInDrop,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Handle {
    Awaited,
    Dropped,
    AbortBeforePoll,
    /// The task aborts itself through its own handle during its first poll.
    AbortDuringPoll,
    /// Aborted once the task was polled (from outside, or from another task while
    /// `run` runs); on a never-run executor, after it was dropped.
    AbortAfterPoll,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Exec {
    /// `run_until` a future that yields until every task settled.
    RunsToCompletion,
    /// `run`, stopped by a task that calls `shutdown` right after the subject's first
    /// poll (for `AbortAfterPoll`, that task aborts the subject first).
    ShutDown,
    /// Dropped without ever running.
    DroppedWithoutRunning,
}

const BEHAVIOURS: [Behaviour; 4] = [
    Behaviour::Completes,
    Behaviour::PendingForever,
    Behaviour::PanicsInPoll,
    Behaviour::PanicsInDrop,
];
const HANDLES: [Handle; 5] = [
    Handle::Awaited,
    Handle::Dropped,
    Handle::AbortBeforePoll,
    Handle::AbortDuringPoll,
    Handle::AbortAfterPoll,
];
const EXECS: [Exec; 3] = [
    Exec::RunsToCompletion,
    Exec::ShutDown,
    Exec::DroppedWithoutRunning,
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Case {
    behaviour: Behaviour,
    handle: Handle,
    exec: Exec,
    mode: PanicMode,
}

impl Case {
    fn all() -> Vec<Case> {
        let mut cases = Vec::new();
        for behaviour in BEHAVIOURS {
            for handle in HANDLES {
                for exec in EXECS {
                    for mode in MODES {
                        cases.push(Case {
                            behaviour,
                            handle,
                            exec,
                            mode,
                        });
                    }
                }
            }
        }
        cases
    }

    /// Whether the subject gets its first poll.
    fn polled(self) -> bool {
        self.exec != Exec::DroppedWithoutRunning && self.handle != Handle::AbortBeforePoll
    }
}

/// How a handle resolved; for a panic, whose payload it carried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Resolved {
    Ok,
    /// The payload of the poll's `panic_any(Payload(..))`.
    PanicInPoll,
    /// The payload of `PanicOnDrop`'s panic (in the poll, or while being cancelled).
    PanicInDrop,
    Cancelled,
    /// Not resolved while the executor was alive (checked with one poll); the handle
    /// is polled again after the executor is dropped.
    PendingThenCancelled,
    /// The handle was dropped: nothing to see.
    Detached,
}

/// What a case observed (or, from `expected`, must observe).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Outcome {
    resolved: Resolved,
    polls: usize,
    future_drops: usize,
    output_drops: usize,
    payload_drops: usize,
    /// A task panic left `run`/`run_until`.
    panic_escaped: bool,
    /// `live_tasks` once the executor settled or shut down (None: never ran).
    live_tasks: Option<usize>,
    /// Where the subject's queue counted it (None: the executor never ran).
    counted: Option<Counted>,
    /// Other tasks were unaffected: a task spawned afterwards completes (the executor
    /// still runs), or a task spawned next to the subject was cancelled with it, its
    /// future dropped once and its handle `Cancelled` (shut down or dropped).
    others_fine: bool,
}

/// Which of the subject queue's counters holds the task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Counted {
    Completed,
    Cancelled,
    Panicked,
    /// None of them: the task is still alive.
    Live,
}

fn expected(case: Case) -> Outcome {
    let polled = case.polled();
    let panics = matches!(
        case.behaviour,
        Behaviour::PanicsInPoll | Behaviour::PanicsInDrop
    );
    let caught = case.mode == PanicMode::Caught;
    let resolved = match (case.handle, polled, case.behaviour) {
        (Handle::Dropped, ..) => Resolved::Detached,
        // Cancelled unpolled, and the future's `Drop` panicked: the handle gets the
        // panic, in both modes (it is never re-raised).
        (_, false, Behaviour::PanicsInDrop) => Resolved::PanicInDrop,
        (_, false, _) => Resolved::Cancelled,
        // A task that completes in the poll where it aborts itself keeps its result,
        // as in tokio: the abort finds it finished.
        (_, true, Behaviour::Completes) => Resolved::Ok,
        (_, true, Behaviour::PanicsInPoll) if caught => Resolved::PanicInPoll,
        (_, true, Behaviour::PanicsInDrop) if caught => Resolved::PanicInDrop,
        // A propagated panic closes the task on its way out.
        (_, true, Behaviour::PanicsInPoll | Behaviour::PanicsInDrop) => Resolved::Cancelled,
        (Handle::Awaited, true, Behaviour::PendingForever)
            if case.exec == Exec::RunsToCompletion =>
        {
            Resolved::PendingThenCancelled
        }
        (_, true, Behaviour::PendingForever) => Resolved::Cancelled,
    };
    let completed = polled && case.behaviour == Behaviour::Completes;
    let still_live = polled
        && case.behaviour == Behaviour::PendingForever
        && matches!(case.handle, Handle::Awaited | Handle::Dropped)
        && case.exec == Exec::RunsToCompletion;
    let counted = match case.behaviour {
        _ if still_live => Counted::Live,
        Behaviour::Completes if polled => Counted::Completed,
        Behaviour::PanicsInPoll if polled => Counted::Panicked,
        Behaviour::PanicsInDrop => Counted::Panicked,
        _ => Counted::Cancelled,
    };
    Outcome {
        resolved,
        polls: usize::from(polled),
        future_drops: 1,
        output_drops: usize::from(completed),
        payload_drops: usize::from(polled && case.behaviour == Behaviour::PanicsInPoll),
        panic_escaped: polled && panics && !caught,
        live_tasks: match case.exec {
            Exec::DroppedWithoutRunning => None,
            _ => Some(usize::from(still_live)),
        },
        counted: match case.exec {
            Exec::DroppedWithoutRunning => None,
            _ => Some(counted),
        },
        others_fine: true,
    }
}

/// A panic payload.
struct Payload(#[allow(dead_code)] Guard);

/// The message `PanicOnDrop` panics with.
const DROP_PANIC: &str = "value dropped by the task panics in Drop";

/// Panics when dropped (after counting the drop as the future's).
struct PanicOnDrop(#[allow(dead_code)] Guard);

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        // The guard inside is still dropped (counted) while this panic unwinds.
        panic!("{}", DROP_PANIC);
    }
}

/// Counters of one case.
#[derive(Clone, Default)]
struct Counts {
    polls: Rc<Cell<usize>>,
    future: Count,
    output: Count,
    payload: Count,
}

/// The subject task's future.
fn subject(case: Case, counts: &Counts, slot: &Slot) -> impl Future<Output = Output> {
    let polls = counts.polls.clone();
    let output = counts.output.clone();
    let payload = counts.payload.clone();
    let slot = slot.clone();
    // Either a plain guard or one that panics when dropped: moved into the future
    // now, so that dropping the future unpolled drops it too.
    let bomb = case.behaviour == Behaviour::PanicsInDrop;
    let (future_guard, bomb) = match bomb {
        true => (None, Some(PanicOnDrop(counts.future.guard()))),
        false => (Some(counts.future.guard()), None),
    };
    async move {
        let _future_guard = future_guard;
        polls.set(polls.get() + 1);
        if case.handle == Handle::AbortDuringPoll {
            slot.borrow().as_ref().expect("handle stored").abort();
        }
        match case.behaviour {
            Behaviour::Completes => {}
            // Dropped here, inside the poll, before the output exists.
            Behaviour::PanicsInDrop => drop(bomb),
            Behaviour::PendingForever => std::future::pending::<()>().await,
            Behaviour::PanicsInPoll => std::panic::panic_any(Payload(payload.guard())),
        }
        Output(output.guard(), 42)
    }
}

fn classify(result: Result<Output, JoinError>) -> Resolved {
    match result {
        Ok(output) => {
            assert_eq!(output.1, 42);
            Resolved::Ok
        }
        Err(JoinError::Panic(payload)) => {
            if payload.is::<Payload>() {
                Resolved::PanicInPoll
            } else if payload.downcast_ref::<String>().map(String::as_str) == Some(DROP_PANIC) {
                Resolved::PanicInDrop
            } else {
                panic!("unexpected payload {:?}", JoinError::Panic(payload))
            }
        }
        Err(JoinError::Cancelled) => Resolved::Cancelled,
        Err(other) => panic!("unexpected JoinError {other:?}"),
    }
}

fn counted(executor: &Executor<u8>) -> Counted {
    let stats = executor.queue_stats(SUBJECT_QUEUE).unwrap();
    let counted = [
        (stats.completed, Counted::Completed),
        (stats.cancelled, Counted::Cancelled),
        (stats.panicked, Counted::Panicked),
    ];
    let total: u64 = counted.iter().map(|(n, _)| n).sum();
    assert!(total <= 1, "one task, counted {total} times");
    counted
        .into_iter()
        .find(|(n, _)| *n == 1)
        .map_or(Counted::Live, |(_, c)| c)
}

/// A task next to the subject that stays pending until cancelled.
struct Bystander {
    handle: JoinHandle<()>,
    drops: Count,
}

impl Bystander {
    fn spawn(q: &QueueHandle<u8>) -> Self {
        let drops = Count::default();
        let guard = drops.guard();
        let handle = q.spawn(async move {
            let _guard = guard;
            std::future::pending::<()>().await;
        });
        Bystander { handle, drops }
    }

    /// Cancelled with the subject: future dropped once, handle `Cancelled`.
    fn was_cancelled(self) -> bool {
        let resolved = poll_once(self.handle);
        matches!(resolved, Poll::Ready(Err(JoinError::Cancelled))) && self.drops.get() == 1
    }
}

/// Runs one case in this process and reports what it observed.
fn run_case(case: Case) -> Outcome {
    let counts = Counts::default();
    let executor = build(case.mode);
    let q = executor.queue(0).unwrap();
    let subject_q = executor.queue(SUBJECT_QUEUE).unwrap();
    let slot: Slot = Rc::default();
    let handle = subject_q.spawn(subject(case, &counts, &slot));
    *slot.borrow_mut() = Some(handle);
    let bystander = (case.exec != Exec::RunsToCompletion).then(|| Bystander::spawn(&q));
    match case.handle {
        Handle::AbortBeforePoll => slot.borrow().as_ref().unwrap().abort(),
        Handle::Dropped => drop(slot.borrow_mut().take()),
        _ => {}
    }
    let mut panic_escaped = false;
    let mut live_tasks = None;
    let mut counted_as = None;
    let mut others_fine = true;
    let mut executor = Some(executor);
    match case.exec {
        Exec::RunsToCompletion => {
            let ex = executor.as_ref().unwrap();
            panic_escaped |= drive(ex.run_until(settle()));
            if case.handle == Handle::AbortAfterPoll {
                slot.borrow().as_ref().unwrap().abort();
                panic_escaped |= drive(ex.run_until(settle()));
            }
            live_tasks = Some(ex.stats().live_tasks);
            counted_as = Some(counted(ex));
            let after = q.spawn(async { 5 });
            others_fine &= matches!(futures_lite::future::block_on(ex.run_until(after)), Ok(5));
        }
        Exec::ShutDown => {
            let ex = executor.as_ref().unwrap();
            let stopper = q.spawn({
                let (ex, slot) = (ex.clone(), slot.clone());
                async move {
                    if case.handle == Handle::AbortAfterPoll {
                        slot.borrow().as_ref().unwrap().abort();
                    }
                    ex.shutdown();
                }
            });
            drop(stopper);
            panic_escaped |= drive(ex.run());
            if panic_escaped {
                // The panic left `run` before the stopper ran.
                ex.shutdown();
            }
            live_tasks = Some(ex.stats().live_tasks);
            counted_as = Some(counted(ex));
        }
        Exec::DroppedWithoutRunning => {
            drop(executor.take());
        }
    }
    let handle = slot.borrow_mut().take();
    let resolved = match handle {
        None => {
            drop(executor.take());
            Resolved::Detached
        }
        Some(mut handle) => match poll_once(&mut handle) {
            Poll::Ready(result) => {
                drop(executor.take());
                classify(result)
            }
            Poll::Pending => {
                drop(executor.take());
                match poll_once(&mut handle) {
                    Poll::Ready(Err(JoinError::Cancelled)) => Resolved::PendingThenCancelled,
                    Poll::Ready(other) => {
                        panic!("{case:?}: after executor drop: {:?}", classify(other))
                    }
                    Poll::Pending => panic!("{case:?}: handle pending after executor drop"),
                }
            }
        },
    };
    drop((q, subject_q));
    if let Some(bystander) = bystander {
        others_fine &= bystander.was_cancelled();
    }
    Outcome {
        resolved,
        polls: counts.polls.get(),
        future_drops: counts.future.get(),
        output_drops: counts.output.get(),
        payload_drops: counts.payload.get(),
        panic_escaped,
        live_tasks,
        counted: counted_as,
        others_fine,
    }
}

fn check_in_process(filter: impl Fn(Case) -> bool) {
    quiet_panics(EXPECTED_PANICS);
    let mut failures = Vec::new();
    let mut ran = 0;
    for case in Case::all().into_iter().filter(|&c| filter(c)) {
        ran += 1;
        let want = expected(case);
        let got = run_case(case);
        if got != want {
            failures.push(format!("{case:?}\n   want {want:?}\n    got {got:?}"));
        }
    }
    assert!(ran > 0);
    assert!(
        failures.is_empty(),
        "{} of {ran} cases differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn completes() {
    let _watchdog = common::watchdog();
    check_in_process(|c| c.behaviour == Behaviour::Completes);
}

#[test]
fn pending_forever() {
    let _watchdog = common::watchdog();
    check_in_process(|c| c.behaviour == Behaviour::PendingForever);
}

#[test]
fn panics_in_poll() {
    let _watchdog = common::watchdog();
    check_in_process(|c| c.behaviour == Behaviour::PanicsInPoll);
}

#[test]
fn panics_in_drop_while_completing_is_a_task_panic() {
    let _watchdog = common::watchdog();
    check_in_process(|c| c.behaviour == Behaviour::PanicsInDrop && c.polled());
}

/// Formerly a process abort (when the task cell was async-task's, whose guard around
/// the future's drop aborted on a panic); now the handle resolves `Panic` with the
/// drop's payload, the executor carries on.
#[test]
fn panics_in_drop_of_an_unpolled_future_reach_the_handle() {
    let _watchdog = common::watchdog();
    let unpolled = |c: Case| c.behaviour == Behaviour::PanicsInDrop && !c.polled();
    // Never polled: the executor was dropped unrun (5 handle cases), or the task was
    // aborted first (2 executor cases); each in both panic modes.
    assert_eq!(
        Case::all().into_iter().filter(|&c| unpolled(c)).count(),
        2 * (5 + 2),
        "case count"
    );
    check_in_process(unpolled);
}
