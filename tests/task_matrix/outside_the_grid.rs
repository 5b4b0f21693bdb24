//! Task lifecycles the grid does not cover: futures and outputs whose own `Drop`
//! panics after the task completed, and an abort request left for a reused slot.

use std::cell::RefCell;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use clockworker::{yield_now, JoinHandle};

use crate::common::quiet_panics;
use crate::support::{
    build, drive, poll_once, settle, Count, Guard, Output, PanicMode, Slot, EXPECTED_PANICS, MODES,
};

/// A future whose own `Drop` panics (not a value it holds), dropped after it
/// completed: the wrapper drops it inside that last poll, so it is a task panic.
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

#[test]
fn future_panicking_in_drop_after_completing_is_a_task_panic() {
    let _watchdog = crate::common::watchdog();
    quiet_panics(EXPECTED_PANICS);
    // Caught: the handle gets the drop's panic (the output is lost, as in tokio).
    let executor = build(PanicMode::Caught);
    let q = executor.queue(0).unwrap();
    let handle = q.spawn(PanicsOnDropFuture);
    let result = futures_lite::future::block_on(executor.run_until(handle));
    let payload = result.expect_err("the drop panicked").into_panic();
    assert_eq!(
        payload.downcast_ref::<&str>(),
        Some(&"future's own Drop panics")
    );
    let stats = executor.queue_stats(0).unwrap();
    assert_eq!((stats.completed, stats.panicked), (0, 1));
    assert_eq!(executor.stats().live_tasks, 0);
    // Propagated (the default): it leaves `run_until`, like a panic in a poll.
    let executor = build(PanicMode::Propagated);
    let q = executor.queue(0).unwrap();
    let handle = q.spawn(PanicsOnDropFuture);
    assert!(drive(async {
        let _ = executor.run_until(handle).await;
    }));
    let after = q.spawn(async { 5 });
    assert_eq!(
        futures_lite::future::block_on(executor.run_until(after)).unwrap(),
        5
    );
    assert_eq!(executor.stats().live_tasks, 0);
}

/// Counts its drops, then panics: an output nobody may take.
struct CountedPanicsOnDropOutput(#[allow(dead_code)] Guard);

impl Drop for CountedPanicsOnDropOutput {
    fn drop(&mut self) {
        panic!("output's Drop panics");
    }
}

/// An output whose `Drop` panics, of a task whose handle was dropped before it
/// completed: the task cell drops that output itself at the task's end
/// (`Header::finish`, which finds `HANDLE` clear), in the middle of its own
/// bookkeeping, so the output's own wrapper (`TaskOutput`) catches the panic and
/// discards it (formerly SIGABRT, under async-task's abort-on-panic guard).
#[test]
fn output_panicking_in_drop_after_detach_is_discarded() {
    let _watchdog = crate::common::watchdog();
    quiet_panics(EXPECTED_PANICS);
    for mode in MODES {
        let executor = build(mode);
        let q = executor.queue(0).unwrap();
        let drops = Count::default();
        let guard = drops.guard();
        drop(q.spawn(async move { CountedPanicsOnDropOutput(guard) }));
        let escaped = drive(executor.run_until(settle()));
        assert!(!escaped, "{mode:?}: not a task panic");
        assert_eq!(drops.get(), 1, "{mode:?}: the output is dropped once");
        let stats = executor.queue_stats(0).unwrap();
        assert_eq!((stats.completed, stats.panicked), (1, 0), "{mode:?}");
        let after = q.spawn(async { 5 });
        assert_eq!(
            futures_lite::future::block_on(executor.run_until(after)).unwrap(),
            5
        );
        assert_eq!(executor.stats().live_tasks, 0);
    }
}

/// An output whose `Drop` panics, dropped with the handle of a finished task that was
/// not awaited: discarded too (the cell drops it inside `drop(handle)`, in
/// `TaskHandle`'s `Drop`, which finds `COMPLETED` set), as tokio's `JoinHandle` does;
/// the executor is not affected.
#[test]
fn output_panicking_in_drop_with_an_unawaited_handle_is_discarded() {
    let _watchdog = crate::common::watchdog();
    quiet_panics(EXPECTED_PANICS);
    let executor = build(PanicMode::Caught);
    let q = executor.queue(0).unwrap();
    let drops = Count::default();
    let guard = drops.guard();
    let handle = q.spawn(async move { CountedPanicsOnDropOutput(guard) });
    futures_lite::future::block_on(executor.run_until(settle()));
    assert!(handle.is_finished());
    let dropped = catch_unwind(AssertUnwindSafe(|| drop(handle)));
    assert!(
        dropped.is_ok(),
        "the output's panic stays inside drop(handle)"
    );
    assert_eq!(drops.get(), 1);
    // Awaited, the output is the caller's, and so is its `Drop`.
    let handle = q.spawn(async { PanicsOnDropOutput });
    let output = futures_lite::future::block_on(executor.run_until(handle)).unwrap();
    assert!(catch_unwind(AssertUnwindSafe(|| drop(output))).is_err());
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
    let _watchdog = crate::common::watchdog();
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
