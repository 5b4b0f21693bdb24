//! A panic in a future's `Drop` while its task is cancelled (aborted before it ran,
//! cancelled by `shutdown`, or dropped with the executor) does not escape: the task
//! wrapper drops the future under `catch_unwind`, so the panic never cuts short the
//! task cell's bookkeeping around the drop (async-task, the cell before ours, aborted
//! the process on it). As in tokio, the handle resolves `JoinError::Panic` with that
//! payload; the task counts as panicked; the panic is never re-raised, in either
//! panic mode, so `shutdown` and the executor's `Drop` return normally and cancel
//! every other task. With the handle gone, the payload is dropped, once.

mod common;

use std::cell::Cell;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use clockworker::{yield_now, Executor, ExecutorBuilder, JoinError, JoinHandle, QueueHandle};
use common::{panic_text, DropCounter};
use futures_lite::future::block_on;

/// A payload that counts its drops (`Send`, as panic payloads are).
struct Payload {
    id: u32,
    drops: Arc<AtomicUsize>,
}

impl Drop for Payload {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

/// Held by a future: panics with a `Payload` when dropped.
struct Bomb(Option<Payload>);

impl Drop for Bomb {
    fn drop(&mut self) {
        if let Some(payload) = self.0.take() {
            std::panic::panic_any(payload);
        }
    }
}

#[derive(Clone, Default)]
struct PayloadDrops(Arc<AtomicUsize>);

impl PayloadDrops {
    fn bomb(&self, id: u32) -> Bomb {
        Bomb(Some(Payload {
            id,
            drops: self.0.clone(),
        }))
    }
    fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// Silences the default panic hook for the payloads this file provokes, so that any
/// other panic (a failing assertion) still prints.
fn quiet_bombs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let provoked = payload.is::<Payload>()
                || panic_text(payload).is_some_and(|text| text.contains("on purpose"));
            if !provoked {
                default(info);
            }
        }));
    });
}

fn executor(propagate: bool) -> Rc<Executor<u8>> {
    ExecutorBuilder::new()
        .with_queue(0, 1)
        .with_panic_on_task_panic(propagate)
        .build()
        .unwrap()
}

/// A task that parks forever, holding `bomb` (and nothing else).
fn spawn_bomb(q: &QueueHandle<u8>, bomb: Bomb) -> JoinHandle<()> {
    q.spawn(async move {
        let _bomb = bomb;
        std::future::pending::<()>().await;
    })
}

/// A task that parks forever holding a counted guard.
fn spawn_quiet(q: &QueueHandle<u8>, drops: &DropCounter) -> JoinHandle<()> {
    let guard = drops.guard();
    q.spawn(async move {
        let _guard = guard;
        std::future::pending::<()>().await;
    })
}

/// Polls a handle once (a resolved task's handle is ready at once).
fn resolved<T>(handle: JoinHandle<T>) -> Result<T, JoinError> {
    let mut handle = std::pin::pin!(handle);
    match handle
        .as_mut()
        .poll(&mut std::task::Context::from_waker(std::task::Waker::noop()))
    {
        std::task::Poll::Ready(result) => result,
        std::task::Poll::Pending => panic!("handle not resolved"),
    }
}

/// The id of the `Payload` a handle's panic carries.
fn panic_id<T: std::fmt::Debug>(result: Result<T, JoinError>) -> u32 {
    let payload = result.expect_err("task panicked").into_panic();
    payload.downcast_ref::<Payload>().expect("a Payload").id
}

#[test]
fn abort_before_the_first_poll_resolves_the_handle_with_the_drop_panic() {
    let _watchdog = common::watchdog();
    quiet_bombs();
    for propagate in [false, true] {
        let executor = executor(propagate);
        let q = executor.queue(0).unwrap();
        let payloads = PayloadDrops::default();
        let handle = spawn_bomb(&q, payloads.bomb(7));
        handle.abort();
        let observer = q.spawn(async {});
        // The loop drops the aborted task; the panic stays inside.
        let result = block_on(executor.run_until(async move {
            let result = handle.await;
            (result, observer.await)
        }));
        let (result, observer) = result;
        assert!(observer.is_ok(), "the other task ran");
        let err = result.expect_err("aborted");
        assert!(err.is_panic() && !err.is_cancelled());
        assert_eq!(err.to_string(), "task panicked");
        assert_eq!(panic_id::<()>(Err(err)), 7);
        assert_eq!(payloads.count(), 1, "payload dropped once, by us");
        let stats = executor.queue_stats(0).unwrap();
        assert_eq!(
            (stats.panicked, stats.cancelled),
            (1, 0),
            "propagate={propagate}"
        );
        assert_eq!(executor.stats().live_tasks, 0);
        let after = q.spawn(async { 3 });
        assert_eq!(block_on(executor.run_until(after)).unwrap(), 3);
    }
}

#[test]
fn abort_of_a_parked_task_resolves_the_handle_with_the_drop_panic() {
    let _watchdog = common::watchdog();
    quiet_bombs();
    let executor = executor(true);
    let q = executor.queue(0).unwrap();
    let payloads = PayloadDrops::default();
    let handle = spawn_bomb(&q, payloads.bomb(8));
    block_on(executor.run_until(yield_now()));
    assert!(!handle.is_finished());
    handle.abort();
    // Propagated mode, yet the panic does not leave run_until.
    let result = block_on(executor.run_until(handle));
    assert_eq!(panic_id(result), 8);
    assert_eq!(payloads.count(), 1);
}

#[test]
fn shutdown_cancels_every_task_when_several_drops_panic() {
    let _watchdog = common::watchdog();
    quiet_bombs();
    for propagate in [false, true] {
        for parked_first in [false, true] {
            let executor = executor(propagate);
            let q = executor.queue(0).unwrap();
            let payloads = PayloadDrops::default();
            let quiet = DropCounter::new();
            let mut bombs = Vec::new();
            let mut others = Vec::new();
            for id in 0..3 {
                others.push(spawn_quiet(&q, &quiet));
                bombs.push(spawn_bomb(&q, payloads.bomb(id)));
            }
            others.push(spawn_quiet(&q, &quiet));
            // A detached one too: its payload has no one to go to.
            drop(spawn_bomb(&q, payloads.bomb(99)));
            if parked_first {
                block_on(executor.run_until(yield_now()));
            }
            let shutdown = catch_unwind(AssertUnwindSafe(|| executor.shutdown()));
            assert!(shutdown.is_ok(), "shutdown must not panic");
            assert_eq!(quiet.count(), 4, "every other future dropped once");
            assert_eq!(
                payloads.count(),
                1,
                "only the detached task's payload is gone"
            );
            assert_eq!(executor.stats().live_tasks, 0);
            let stats = executor.queue_stats(0).unwrap();
            assert_eq!((stats.panicked, stats.cancelled), (4, 4));
            for handle in others {
                assert!(matches!(resolved(handle), Err(JoinError::Cancelled)));
            }
            let ids: Vec<u32> = bombs.into_iter().map(|h| panic_id(resolved(h))).collect();
            assert_eq!(ids, [0, 1, 2]);
            assert_eq!(payloads.count(), 4);
            // run returns at once on a shut-down executor, without a panic.
            block_on(executor.run());
        }
    }
}

#[test]
fn shutdown_from_inside_a_task_does_not_raise_drop_panics_out_of_run() {
    let _watchdog = common::watchdog();
    quiet_bombs();
    let executor = executor(true);
    let q = executor.queue(0).unwrap();
    let payloads = PayloadDrops::default();
    let quiet = DropCounter::new();
    let bomb = spawn_bomb(&q, payloads.bomb(1));
    let other = spawn_quiet(&q, &quiet);
    let stopper = q.spawn({
        let executor = executor.clone();
        async move {
            yield_now().await;
            executor.shutdown();
        }
    });
    let run = catch_unwind(AssertUnwindSafe(|| block_on(executor.run())));
    assert!(run.is_ok(), "run returns normally");
    assert!(stopper.is_finished());
    assert_eq!(panic_id(resolved(bomb)), 1);
    assert!(matches!(resolved(other), Err(JoinError::Cancelled)));
    assert_eq!(quiet.count(), 1);
}

#[test]
fn dropping_the_executor_without_running_reports_drop_panics() {
    let _watchdog = common::watchdog();
    quiet_bombs();
    for propagate in [false, true] {
        let executor = executor(propagate);
        let q = executor.queue(0).unwrap();
        let payloads = PayloadDrops::default();
        let quiet = DropCounter::new();
        let before = spawn_quiet(&q, &quiet);
        let bomb = spawn_bomb(&q, payloads.bomb(5));
        let after = spawn_quiet(&q, &quiet);
        drop(spawn_bomb(&q, payloads.bomb(6)));
        let dropped = catch_unwind(AssertUnwindSafe(move || drop(executor)));
        assert!(dropped.is_ok(), "the executor's Drop must not panic");
        assert_eq!(quiet.count(), 2);
        assert_eq!(payloads.count(), 1, "the detached task's payload");
        assert!(matches!(resolved(before), Err(JoinError::Cancelled)));
        assert!(matches!(resolved(after), Err(JoinError::Cancelled)));
        assert_eq!(panic_id(resolved(bomb)), 5);
        assert_eq!(payloads.count(), 2);
        assert!(matches!(
            block_on(q.spawn(async { 1 })),
            Err(JoinError::Cancelled)
        ));
    }
}

#[test]
fn a_handle_dropped_before_the_drop_panic_leaves_nothing_behind() {
    let _watchdog = common::watchdog();
    quiet_bombs();
    let executor = executor(true);
    let q = executor.queue(0).unwrap();
    let payloads = PayloadDrops::default();
    let handle = spawn_bomb(&q, payloads.bomb(1));
    block_on(executor.run_until(yield_now()));
    drop(handle);
    executor.shutdown();
    assert_eq!(
        payloads.count(),
        1,
        "dropped when the future's Drop panicked"
    );
    assert_eq!(executor.queue_stats(0).unwrap().panicked, 1);
    assert_eq!(executor.stats().live_tasks, 0);
}

#[test]
fn a_handle_dropped_after_the_drop_panic_drops_the_payload() {
    let _watchdog = common::watchdog();
    quiet_bombs();
    let executor = executor(false);
    let q = executor.queue(0).unwrap();
    let payloads = PayloadDrops::default();
    let handle = spawn_bomb(&q, payloads.bomb(1));
    handle.abort();
    block_on(executor.run_until(yield_now()));
    assert!(handle.is_finished());
    assert_eq!(payloads.count(), 0, "kept for the handle");
    drop(handle);
    assert_eq!(payloads.count(), 1);
}

#[test]
fn the_payload_reaches_a_handle_awaited_on_another_thread() {
    let _watchdog = common::watchdog();
    quiet_bombs();
    let executor = executor(true);
    let q = executor.queue(0).unwrap();
    let payloads = PayloadDrops::default();
    let bomb = payloads.bomb(11);
    // A Send future, so that its handle is Send.
    let handle = q.spawn(async move {
        let _bomb = bomb;
        std::future::pending::<()>().await;
    });
    let waiter = std::thread::spawn(move || {
        block_on(handle).map_err(|err| {
            let payload = err.into_panic().downcast::<Payload>().expect("a Payload");
            payload.id
        })
    });
    block_on(executor.run_until(yield_now()));
    executor.shutdown();
    assert_eq!(waiter.join().unwrap(), Err(11));
    assert_eq!(payloads.count(), 1);
}

#[test]
fn a_payload_whose_own_drop_panics_is_no_abort_either() {
    let _watchdog = common::watchdog();
    quiet_bombs();
    /// Panics when dropped; itself the payload of the future's drop panic.
    struct LoudPayload;
    impl Drop for LoudPayload {
        fn drop(&mut self) {
            panic!("payload dropped on purpose with a panic");
        }
    }
    struct LoudBomb;
    impl Drop for LoudBomb {
        fn drop(&mut self) {
            std::panic::panic_any(LoudPayload);
        }
    }
    let executor = executor(true);
    let q = executor.queue(0).unwrap();
    // Detached: the executor drops the payload, quietly.
    drop(q.spawn(async {
        let _bomb = LoudBomb;
        std::future::pending::<()>().await;
    }));
    let polled = Rc::new(Cell::new(false));
    let after = q.spawn({
        let polled = polled.clone();
        async move { polled.set(true) }
    });
    let kept = q.spawn(async {
        let _bomb = LoudBomb;
        std::future::pending::<()>().await;
    });
    executor.shutdown();
    assert!(!polled.get());
    assert!(matches!(resolved(after), Err(JoinError::Cancelled)));
    assert_eq!(executor.stats().live_tasks, 0);
    // Kept for a handle that is then dropped unread: dropped there, quietly too.
    assert!(kept.is_finished());
    let dropped = catch_unwind(AssertUnwindSafe(move || drop(kept)));
    assert!(dropped.is_ok());
}

/// The executor dropped while a propagated task panic unwinds through its owner: the
/// cancellation, and the drop panic it catches, happen during unwinding. The original
/// panic still arrives, and the drop panic still reaches the handle.
#[test]
fn executor_dropped_while_a_task_panic_unwinds() {
    let _watchdog = common::watchdog();
    quiet_bombs();
    let payloads = PayloadDrops::default();
    let (bomb_handle_tx, bomb_handle_rx) = std::sync::mpsc::channel();
    let unwound = catch_unwind(AssertUnwindSafe(|| {
        let executor = executor(true);
        let q = executor.queue(0).unwrap();
        bomb_handle_tx
            .send(spawn_bomb(&q, payloads.bomb(3)))
            .unwrap();
        let failing = q.spawn(async { panic!("task panics on purpose") });
        drop(q);
        // Unwinds out of here, dropping the last `Rc<Executor>` on the way.
        block_on(executor.run_until(failing)).ok();
    }));
    let payload = unwound.expect_err("the task panic propagates");
    assert_eq!(
        panic_text(&*payload).as_deref(),
        Some("task panics on purpose")
    );
    let handle = bomb_handle_rx.recv().unwrap();
    assert_eq!(panic_id(resolved(handle)), 3);
    assert_eq!(payloads.count(), 1);
}
