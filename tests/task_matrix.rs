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
//! checking the handle's result, how often the future was polled, that the future,
//! the output and a panic payload are each dropped exactly once, and that the
//! executor holds no task afterwards (`stats().live_tasks`).
//!
//! A panic in a future's `Drop` *outside* its poll aborts the process: async-task
//! drops futures under an abort-on-panic guard (`RawTask::drop_future`), and
//! clockworker does not catch it first. Those cases run in a child process (this
//! binary, re-run on one case) and assert that it dies with SIGABRT, so that a change
//! in this behaviour shows up here. A value whose `Drop` panics while the future
//! completes is dropped inside the poll: that is an ordinary task panic.

mod common;

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::os::unix::process::ExitStatusExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::{pin, Pin};
use std::process::Command;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use clockworker::{yield_now, Executor, ExecutorBuilder, JoinError, JoinHandle};

/// How many times the driven future yields to let the executor settle: each yield lets
/// the loop poll at least one ready task, and no case has more than three polls to do.
const SETTLE_YIELDS: usize = 16;

/// The environment variable that makes `child_runs_one_case` run a case.
const CHILD_CASE: &str = "CLOCKWORKER_MATRIX_CASE";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Behaviour {
    /// Returns an output (holding a drop guard) in its first poll.
    Completes,
    /// Pending forever after its first poll; never registers a waker elsewhere.
    PendingForever,
    /// Panics in its first poll with a payload holding a drop guard.
    PanicsInPoll,
    /// Holds a value whose `Drop` panics, and completes in its first poll: the value
    /// is dropped inside the poll. If the future is dropped before (never polled),
    /// the value's panic happens inside async-task's drop and aborts the process.
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PanicMode {
    Caught,
    Propagated,
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
const MODES: [PanicMode; 2] = [PanicMode::Caught, PanicMode::Propagated];

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

    /// Whether the process must abort: a `PanicsInDrop` future dropped unpolled.
    fn aborts_process(self) -> bool {
        self.behaviour == Behaviour::PanicsInDrop && !self.polled()
    }
}

/// How a handle resolved, without its payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Resolved {
    Ok,
    Panic,
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
        (_, false, _) => Resolved::Cancelled,
        // A task that completes in the poll where it aborts itself keeps its result,
        // as in tokio: the abort finds it finished.
        (_, true, Behaviour::Completes) => Resolved::Ok,
        (_, true, Behaviour::PanicsInPoll | Behaviour::PanicsInDrop) if caught => Resolved::Panic,
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
    }
}

/// A `Send` drop counter (panic payloads must be `Send`).
#[derive(Clone, Default)]
struct Count(Arc<AtomicUsize>);

impl Count {
    fn guard(&self) -> Guard {
        Guard(self.0.clone())
    }
    fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

struct Guard(Arc<AtomicUsize>);

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// The task's output.
struct Output(#[allow(dead_code)] Guard, u32);

/// A panic payload.
struct Payload(#[allow(dead_code)] Guard);

/// Panics when dropped (after counting the drop as the future's).
struct PanicOnDrop(#[allow(dead_code)] Guard);

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        // The guard inside is still dropped (counted) while this panic unwinds.
        panic!("value dropped by the task panics in Drop");
    }
}

type Slot = Rc<RefCell<Option<JoinHandle<Output>>>>;

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

async fn settle() {
    for _ in 0..SETTLE_YIELDS {
        yield_now().await;
    }
}

/// Polls `future` once with a waker that does nothing.
fn poll_once<F: Future>(future: F) -> Poll<F::Output> {
    let mut future = pin!(future);
    future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
}

/// Drives a `run`/`run_until` future; returns whether a panic escaped it.
fn drive(future: impl Future<Output = ()>) -> bool {
    let escaped = catch_unwind(AssertUnwindSafe(|| {
        futures_lite::future::block_on(future);
    }));
    escaped.is_err()
}

fn build(mode: PanicMode) -> Rc<Executor<u8>> {
    ExecutorBuilder::new()
        .with_queue(0, 1)
        .with_panic_on_task_panic(mode == PanicMode::Propagated)
        .build()
        .unwrap()
}

fn classify(result: Result<Output, JoinError>) -> Resolved {
    match result {
        Ok(output) => {
            assert_eq!(output.1, 42);
            Resolved::Ok
        }
        Err(JoinError::Panic(payload)) => {
            drop(payload);
            Resolved::Panic
        }
        Err(JoinError::Cancelled) => Resolved::Cancelled,
        Err(other) => panic!("unexpected JoinError {other:?}"),
    }
}

/// Runs one case in this process and reports what it observed.
fn run_case(case: Case) -> Outcome {
    let counts = Counts::default();
    let executor = build(case.mode);
    let q = executor.queue(0).unwrap();
    let slot: Slot = Rc::default();
    let handle = q.spawn(subject(case, &counts, &slot));
    *slot.borrow_mut() = Some(handle);
    match case.handle {
        Handle::AbortBeforePoll => slot.borrow().as_ref().unwrap().abort(),
        Handle::Dropped => drop(slot.borrow_mut().take()),
        _ => {}
    }
    let mut panic_escaped = false;
    let mut live_tasks = None;
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
    drop(q);
    Outcome {
        resolved,
        polls: counts.polls.get(),
        future_drops: counts.future.get(),
        output_drops: counts.output.get(),
        payload_drops: counts.payload.get(),
        panic_escaped,
        live_tasks,
    }
}

/// Panic messages this binary provokes on purpose.
const EXPECTED_PANICS: &[&str] = &["panics in Drop", "output's Drop panics"];

/// Keeps the default panic hook's report for every panic except the ones provoked on
/// purpose (and the matrix's non-string payloads), so that a failing assertion still shows.
fn quiet_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let text = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str));
            match text {
                Some(text) if !EXPECTED_PANICS.iter().any(|e| text.contains(e)) => default(info),
                _ => {}
            }
        }));
    });
}

fn check_in_process(filter: impl Fn(Case) -> bool) {
    quiet_panics();
    let mut failures = Vec::new();
    let mut ran = 0;
    for case in Case::all().into_iter().filter(|&c| filter(c)) {
        if case.aborts_process() {
            continue;
        }
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
    check_in_process(|c| c.behaviour == Behaviour::Completes);
}

#[test]
fn pending_forever() {
    check_in_process(|c| c.behaviour == Behaviour::PendingForever);
}

#[test]
fn panics_in_poll() {
    check_in_process(|c| c.behaviour == Behaviour::PanicsInPoll);
}

#[test]
fn panics_in_drop_while_completing_is_a_task_panic() {
    check_in_process(|c| c.behaviour == Behaviour::PanicsInDrop);
}

/// The cases that run in a child process: each must die with SIGABRT.
fn abort_cases() -> Vec<(String, Case)> {
    Case::all()
        .into_iter()
        .filter(|c| c.aborts_process())
        .map(|c| (format!("{c:?}"), c))
        .collect()
}

/// Child side: runs the case named by `CLOCKWORKER_MATRIX_CASE` (a no-op otherwise).
#[test]
fn child_runs_one_case() {
    let Ok(name) = std::env::var(CHILD_CASE) else {
        return;
    };
    if let Some(which) = name.strip_prefix("extra:") {
        run_extra(which);
        return;
    }
    let (_, case) = abort_cases()
        .into_iter()
        .find(|(n, _)| *n == name)
        .expect("known case");
    let _ = run_case(case);
}

/// Runs this test binary on one case; returns whether it died of SIGABRT.
fn child_aborts(name: &str) -> bool {
    let output = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_runs_one_case", "--test-threads=1"])
        .env(CHILD_CASE, name)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("run child");
    output.status.signal() == Some(libc::SIGABRT)
}

#[test]
fn panics_in_drop_of_an_unpolled_future_abort_the_process() {
    let cases = abort_cases();
    // Never polled: the executor was dropped unrun (5 handle cases), or the task was
    // aborted first (2 executor cases); each in both panic modes.
    assert_eq!(cases.len(), 2 * (5 + 2), "case count");
    let survived: Vec<_> = cases
        .iter()
        .filter(|(name, _)| !child_aborts(name))
        .map(|(name, _)| name.clone())
        .collect();
    assert!(
        survived.is_empty(),
        "expected SIGABRT (async-task aborts on a panic in a future's Drop), but \
         these survived: {survived:?}"
    );
}

/// A future whose own `Drop` panics (not a value it holds): async-task drops every
/// future outside its poll, also after completion, so any such task aborts the
/// process.
struct PanicsOnDropFuture;

impl Future for PanicsOnDropFuture {
    type Output = ();
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        Poll::Ready(())
    }
}

impl Drop for PanicsOnDropFuture {
    fn drop(&mut self) {
        panic!("future's own Drop panics");
    }
}

/// An output whose `Drop` panics.
struct PanicsOnDropOutput;

impl Drop for PanicsOnDropOutput {
    fn drop(&mut self) {
        panic!("output's Drop panics");
    }
}

fn run_extra(which: &str) {
    let executor = build(PanicMode::Caught);
    let q = executor.queue(0).unwrap();
    match which {
        "future-completes" => {
            let handle = q.spawn(PanicsOnDropFuture);
            let _ = futures_lite::future::block_on(executor.run_until(handle));
        }
        "output-detached-before-completion" => {
            drop(q.spawn(async { PanicsOnDropOutput }));
            futures_lite::future::block_on(executor.run_until(settle()));
        }
        other => panic!("unknown extra case {other}"),
    }
}

#[test]
fn panics_in_drop_outside_a_poll_abort_the_process() {
    for which in ["future-completes", "output-detached-before-completion"] {
        assert!(
            child_aborts(&format!("extra:{which}")),
            "{which}: expected SIGABRT"
        );
    }
}

/// An output whose `Drop` panics, dropped with a handle of a finished task: the panic
/// leaves `drop(handle)` in the caller, and the executor is not affected.
#[test]
fn output_panicking_in_drop_with_the_handle_reaches_the_caller() {
    quiet_panics();
    let executor = build(PanicMode::Caught);
    let q = executor.queue(0).unwrap();
    let handle = q.spawn(async { PanicsOnDropOutput });
    futures_lite::future::block_on(executor.run_until(settle()));
    assert!(handle.is_finished());
    let dropped = catch_unwind(AssertUnwindSafe(|| drop(handle)));
    assert!(dropped.is_err(), "the output's panic reaches drop(handle)");
    let after = q.spawn(async { 5 });
    assert_eq!(
        futures_lite::future::block_on(executor.run_until(after)).unwrap(),
        5
    );
    assert_eq!(executor.stats().live_tasks, 0);
}

/// A task that aborts itself and completes in the same poll leaves an abort request
/// for its registry slot; a task spawned from its future's `Drop` takes that slot
/// before the request is drained. The request must not cancel the newcomer (it may
/// only wake it spuriously).
#[test]
fn stale_abort_request_spares_the_task_reusing_the_slot() {
    struct AbortSelfThenSpawnOnDrop {
        me: Slot,
        q: clockworker::QueueHandle<u8>,
        newcomer: Rc<RefCell<Option<JoinHandle<Output>>>>,
        output: Count,
    }
    impl Future for AbortSelfThenSpawnOnDrop {
        type Output = Output;
        fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Output> {
            self.me.borrow().as_ref().expect("handle stored").abort();
            Poll::Ready(Output(self.output.guard(), 42))
        }
    }
    impl Drop for AbortSelfThenSpawnOnDrop {
        fn drop(&mut self) {
            let output = self.output.clone();
            let handle = self.q.spawn(async move {
                yield_now().await;
                Output(output.guard(), 7)
            });
            *self.newcomer.borrow_mut() = Some(handle);
        }
    }
    let executor = build(PanicMode::Caught);
    let q = executor.queue(0).unwrap();
    let (me, newcomer, output): (Slot, Slot, Count) = Default::default();
    let handle = q.spawn(AbortSelfThenSpawnOnDrop {
        me: me.clone(),
        q: q.clone(),
        newcomer: newcomer.clone(),
        output: output.clone(),
    });
    *me.borrow_mut() = Some(handle);
    futures_lite::future::block_on(executor.run_until(settle()));
    let first = poll_once(me.borrow_mut().take().unwrap());
    let second = poll_once(newcomer.borrow_mut().take().expect("spawned from Drop"));
    assert!(
        matches!(first, Poll::Ready(Ok(Output(_, 42)))),
        "aborting itself while completing keeps the result"
    );
    assert!(
        matches!(second, Poll::Ready(Ok(Output(_, 7)))),
        "the task that reused the slot must not be cancelled"
    );
    drop((first, second));
    assert_eq!(output.get(), 2);
    assert_eq!(executor.stats().live_tasks, 0);
}
