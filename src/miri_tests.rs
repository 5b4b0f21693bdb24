//! Executor-level tests kept inside the crate so that `cargo +nightly miri test --lib`
//! checks our unsafe code on real paths: the task cell (`task::cell`: a future that
//! borrows its task's metadata, the slot that holds the future then the output, the
//! reference count, the join handle on any thread), the wake path through the thread-local registry and through the
//! cross-thread inbox, abort, shutdown, dropping the executor, the task wrapper's
//! in-place drop of a future whose `Drop` panics (`task::future`, `task::panic_slot`),
//! and the running task's metadata pointer that `clockworker::spawn` reads
//! (`Core::running_task`).
//!
//! No tokio: a hand-rolled `block_on` (thread park/unpark) is the host, so that Miri
//! runs only our code and std's. Sizes are small; they run in normal `cargo test` too.
//! Under Miri the executor's clock must not use quanta (its `cpuid` is unsupported):
//! `crate::clock` falls back to `std::time::Instant` under `cfg(miri)`.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};

use crate::test_watchdog::watchdog;
use crate::{spawn, yield_now, Executor, ExecutorBuilder, JoinError, JoinHandle};

/// The host: polls `future` on this thread, parking between polls until woken.
fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark {
        thread: Thread,
        woken: AtomicBool,
    }
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.woken.store(true, Ordering::Release);
            self.thread.unpark();
        }
    }
    let unpark = Arc::new(Unpark {
        thread: thread::current(),
        woken: AtomicBool::new(false),
    });
    let waker = Waker::from(unpark.clone());
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        while !unpark.woken.swap(false, Ordering::Acquire) {
            thread::park();
        }
    }
}

fn executor(catch_panics: bool) -> Rc<Executor<u8>> {
    ExecutorBuilder::new()
        .with_queue(0, 1)
        .with_queue(1, 3)
        .with_panic_on_task_panic(!catch_panics)
        .build()
        .expect("valid configuration")
}

/// Counts drops of the guards it hands out.
#[derive(Clone, Default)]
struct Drops(Rc<Cell<usize>>);

impl Drops {
    fn guard(&self) -> DropGuard {
        DropGuard(self.0.clone())
    }
    fn count(&self) -> usize {
        self.0.get()
    }
}

struct DropGuard(Rc<Cell<usize>>);

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

/// Pending until `wake_slot`'s waker is woken once; stores its waker there.
struct Parked {
    slot: Arc<Mutex<Option<Waker>>>,
    woken: Arc<AtomicBool>,
}

impl Future for Parked {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.woken.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        *self.slot.lock().unwrap() = Some(cx.waker().clone());
        Poll::Pending
    }
}

fn parked() -> (Parked, Arc<Mutex<Option<Waker>>>, Arc<AtomicBool>) {
    let slot = Arc::new(Mutex::new(None));
    let woken = Arc::new(AtomicBool::new(false));
    let future = Parked {
        slot: slot.clone(),
        woken: woken.clone(),
    };
    (future, slot, woken)
}

#[test]
fn spawn_yield_and_join_on_two_queues() {
    let _watchdog = watchdog();
    let executor = executor(false);
    let handles: Vec<JoinHandle<usize>> = (0..6)
        .map(|i| {
            executor.queue((i % 2) as u8).unwrap().spawn(async move {
                for _ in 0..3 {
                    yield_now().await;
                }
                i * 10
            })
        })
        .collect();
    let outputs = block_on(executor.run_until(async {
        let mut outputs = Vec::new();
        for handle in handles {
            outputs.push(handle.await.unwrap());
        }
        outputs
    }));
    assert_eq!(outputs, [0, 10, 20, 30, 40, 50]);
    assert_eq!(executor.stats().live_tasks, 0);
}

#[test]
fn tasks_spawn_tasks_and_outputs_are_dropped_once() {
    let _watchdog = watchdog();
    let executor = executor(false);
    let q = executor.queue(0).unwrap();
    let drops = Drops::default();
    let outer = q.spawn({
        let (q, drops) = (q.clone(), drops.clone());
        async move {
            let inner = q.spawn({
                let drops = drops.clone();
                async move { drops.guard() }
            });
            // Detached: its output (a guard) is dropped by the task cell.
            drop(q.spawn({
                let drops = drops.clone();
                async move { drops.guard() }
            }));
            inner.await.unwrap()
        }
    });
    let guard = block_on(executor.run_until(outer)).unwrap();
    assert_eq!(drops.count(), 1, "the detached task's output");
    drop(guard);
    assert_eq!(drops.count(), 2);
    assert_eq!(executor.stats().live_tasks, 0);
}

#[test]
fn abort_before_during_and_after_polls() {
    let _watchdog = watchdog();
    let executor = executor(false);
    let q = executor.queue(0).unwrap();
    let drops = Drops::default();
    let polled = Rc::new(Cell::new(0));
    let spawn_pending = || {
        let (guard, polled) = (drops.guard(), polled.clone());
        q.spawn(async move {
            let _guard = guard;
            polled.set(polled.get() + 1);
            std::future::pending::<()>().await;
        })
    };
    let before = spawn_pending();
    before.abort();
    let parked = spawn_pending();
    let done = q.spawn(async { 5 });
    let result = block_on(executor.run_until(async {
        let before = before.await;
        yield_now().await;
        parked.abort();
        parked.abort();
        let parked = parked.await;
        let done_value = done.await;
        (before, parked, done_value)
    }));
    assert!(matches!(result.0, Err(JoinError::Cancelled)));
    assert!(matches!(result.1, Err(JoinError::Cancelled)));
    assert_eq!(result.2.unwrap(), 5);
    assert_eq!(polled.get(), 1, "only the second task was polled, once");
    assert_eq!(drops.count(), 2);
    assert_eq!(executor.stats().live_tasks, 0);
}

#[test]
fn abort_from_inside_the_task_itself() {
    let _watchdog = watchdog();
    let executor = executor(false);
    let q = executor.queue(1).unwrap();
    let slot: Rc<RefCell<Option<JoinHandle<()>>>> = Rc::default();
    let handle = q.spawn({
        let slot = slot.clone();
        async move {
            if let Some(me) = slot.borrow().as_ref() {
                me.abort();
            }
            yield_now().await;
            unreachable!("aborted tasks are not polled again");
        }
    });
    let watcher = q.spawn({
        let slot = slot.clone();
        async move {
            let handle = slot.borrow_mut().take().unwrap();
            handle.await
        }
    });
    *slot.borrow_mut() = Some(handle);
    let result = block_on(executor.run_until(watcher)).unwrap();
    assert!(matches!(result, Err(JoinError::Cancelled)), "{result:?}");
    assert_eq!(executor.stats().live_tasks, 0);
}

#[test]
fn caught_panic_resolves_the_handle() {
    let _watchdog = watchdog();
    let executor = executor(true);
    let q = executor.queue(0).unwrap();
    let drops = Drops::default();
    let handle = q.spawn({
        let guard = drops.guard();
        async move {
            let _guard = guard;
            yield_now().await;
            panic!("boom");
        }
    });
    let result = block_on(executor.run_until(handle));
    let payload = result.unwrap_err().into_panic();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom"));
    assert_eq!(drops.count(), 1);
    assert_eq!(executor.stats().live_tasks, 0);
}

/// A caught poll panic's payload waits for the handle in the task's panic slot. Both
/// orders of "handle dropped" and "payload left" free it exactly once: dropped before
/// the panic (the slot is marked, the payload dropped at once), dropped after it
/// without reading (the handle drops it).
#[test]
fn caught_panic_payloads_nobody_reads_are_freed_once() {
    let _watchdog = watchdog();
    /// A panic payload (it must be `Send`) that counts its drops.
    struct Payload(Arc<AtomicUsize>);
    impl Drop for Payload {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let executor = executor(true);
    let q = executor.queue(0).unwrap();
    let dropped = Arc::new(AtomicUsize::new(0));
    let spawn_bomb = |payload: Payload| {
        q.spawn(async move {
            yield_now().await;
            std::panic::panic_any(payload);
        })
    };
    drop(spawn_bomb(Payload(dropped.clone())));
    let unread = spawn_bomb(Payload(dropped.clone()));
    block_on(executor.run_until(async {
        while executor.stats().live_tasks > 0 {
            yield_now().await;
        }
    }));
    let count = || dropped.load(Ordering::SeqCst);
    assert_eq!(count(), 1, "the detached task's payload is dropped at once");
    assert!(unread.is_finished());
    drop(unread);
    assert_eq!(count(), 2, "the unread payload goes with its handle");
    assert_eq!(executor.queue_stats(0).unwrap().panicked, 2);
}

#[test]
fn propagated_panic_leaves_the_executor_usable() {
    let _watchdog = watchdog();
    let executor = executor(false);
    let q = executor.queue(0).unwrap();
    let failing = q.spawn(async { panic!("out of run_until") });
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        block_on(executor.run_until(std::future::pending::<()>()))
    }));
    assert!(outcome.is_err());
    assert!(matches!(block_on(failing), Err(JoinError::Cancelled)));
    let later = q.spawn(async { 1 });
    assert_eq!(block_on(executor.run_until(later)).unwrap(), 1);
}

#[test]
fn wakes_from_another_thread_go_through_the_inbox() {
    let _watchdog = watchdog();
    let executor = executor(false);
    let q = executor.queue(0).unwrap();
    let (future, slot, woken) = parked();
    let handle = q.spawn(async move {
        future.await;
        7
    });
    let waker_thread = thread::spawn(move || loop {
        let waker = slot.lock().unwrap().take();
        if let Some(waker) = waker {
            woken.store(true, Ordering::Release);
            // A duplicate and a spurious wake, by reference then by value.
            waker.wake_by_ref();
            waker.wake();
            return;
        }
        thread::yield_now();
    });
    assert_eq!(block_on(executor.run_until(handle)).unwrap(), 7);
    waker_thread.join().unwrap();
    assert_eq!(executor.stats().live_tasks, 0);
}

/// Join handles on other threads: one awaited there while the task completes here
/// (the handle's waker handshake, `task::cell::handle`), one dropped there after its
/// task completed (it drops the output), one dropped there before (the task's end
/// drops it). Every output is dropped once, on one side or the other.
#[test]
fn handles_awaited_and_dropped_on_other_threads() {
    let _watchdog = watchdog();
    let executor = executor(false);
    let q = executor.queue(0).unwrap();
    // Outputs cross threads here: a `Send` drop count.
    struct Output(Arc<AtomicUsize>);
    impl Drop for Output {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let drops = Arc::new(AtomicUsize::new(0));
    let count = || drops.load(Ordering::SeqCst);
    let (future, slot, woken) = parked();
    let awaited = q.spawn({
        let guard = Output(drops.clone());
        async move {
            future.await;
            guard
        }
    });
    let finished_first = q.spawn({
        let guard = Output(drops.clone());
        async move { guard }
    });
    let dropped_first = q.spawn({
        let guard = Output(drops.clone());
        async move {
            yield_now().await;
            guard
        }
    });
    thread::spawn(move || drop(dropped_first)).join().unwrap();
    let joiner = thread::spawn(move || block_on(awaited).map(drop).is_ok());
    block_on(executor.run_until(async {
        while count() == 0 || !finished_first.is_finished() || slot.lock().unwrap().is_none() {
            yield_now().await;
        }
    }));
    assert_eq!(count(), 1, "the output whose handle was dropped first");
    thread::spawn(move || drop(finished_first)).join().unwrap();
    assert_eq!(count(), 2, "the output its dropped handle left");
    let waker = slot.lock().unwrap().take().unwrap();
    woken.store(true, Ordering::Release);
    waker.wake();
    // Until the joiner has the output and dropped it.
    block_on(executor.run_until(async {
        while count() < 3 {
            yield_now().await;
        }
    }));
    assert!(
        joiner.join().unwrap(),
        "the handle awaited elsewhere got the output"
    );
    assert_eq!(count(), 3);
    assert_eq!(executor.stats().live_tasks, 0);
}

#[test]
fn abort_from_another_thread() {
    let _watchdog = watchdog();
    let executor = executor(false);
    let q = executor.queue(0).unwrap();
    let drops = Drops::default();
    let handle = q.spawn({
        let guard = drops.guard();
        async move {
            let _guard = guard;
            std::future::pending::<()>().await;
        }
    });
    let result = block_on(executor.run_until(async move {
        yield_now().await;
        let handle = thread::spawn(move || {
            handle.abort();
            handle
        })
        .join()
        .unwrap();
        handle.await
    }));
    assert!(matches!(result, Err(JoinError::Cancelled)));
    assert_eq!(drops.count(), 1);
    assert_eq!(executor.stats().live_tasks, 0);
}

#[test]
fn shutdown_from_a_task_cancels_the_others() {
    let _watchdog = watchdog();
    let executor = executor(false);
    let drops = Drops::default();
    let pending: Vec<_> = (0..4)
        .map(|i| {
            let guard = drops.guard();
            executor.queue(i % 2).unwrap().spawn(async move {
                let _guard = guard;
                std::future::pending::<()>().await;
            })
        })
        .collect();
    let stopper = executor.queue(1).unwrap().spawn({
        let executor = executor.clone();
        async move {
            yield_now().await;
            executor.shutdown();
        }
    });
    block_on(executor.run());
    assert_eq!(drops.count(), 4);
    for handle in pending {
        assert!(matches!(block_on(handle), Err(JoinError::Cancelled)));
    }
    assert!(block_on(stopper).is_ok());
    let refused = executor.queue(0).unwrap().spawn(async { 1 });
    assert!(matches!(block_on(refused), Err(JoinError::Cancelled)));
    assert_eq!(executor.stats().live_tasks, 0);
}

/// Handles and wakers outlive the executor: the handle's metadata pointer stays
/// valid (the task cell lives while the handle does), abort and wakes are harmless.
#[test]
fn handles_and_wakers_outlive_the_executor() {
    let _watchdog = watchdog();
    let executor = executor(false);
    let q = executor.queue(0).unwrap();
    let drops = Drops::default();
    let (future, slot, _woken) = parked();
    let parked_handle = q.spawn({
        let guard = drops.guard();
        async move {
            let _guard = guard;
            future.await;
        }
    });
    block_on(executor.run_until(yield_now()));
    // Spawned after the loop last ran: never polled.
    let never_polled = q.spawn({
        let guard = drops.guard();
        async move {
            let _guard = guard;
        }
    });
    let waker = slot.lock().unwrap().take().expect("polled once");
    drop(q);
    drop(executor);
    assert_eq!(drops.count(), 2, "dropping the executor drops every future");
    assert!(parked_handle.is_finished());
    parked_handle.abort();
    waker.wake_by_ref();
    thread::spawn(move || waker.wake()).join().unwrap();
    assert!(matches!(block_on(parked_handle), Err(JoinError::Cancelled)));
    assert!(matches!(block_on(never_polled), Err(JoinError::Cancelled)));
}

#[test]
fn dropping_the_executor_without_running() {
    let _watchdog = watchdog();
    let drops = Drops::default();
    let executor = executor(false);
    let handles: Vec<_> = (0..3)
        .map(|_| {
            let guard = drops.guard();
            executor.queue(0).unwrap().spawn(async move {
                let _guard = guard;
                1
            })
        })
        .collect();
    drop(executor);
    assert_eq!(drops.count(), 3);
    for handle in handles {
        assert!(matches!(block_on(handle), Err(JoinError::Cancelled)));
    }
}

/// A future that wakes, spawns and aborts from its `Drop` during shutdown.
#[test]
fn drop_side_effects_during_shutdown() {
    let _watchdog = watchdog();
    struct OnDrop<F: FnMut()>(F);
    impl<F: FnMut()> Drop for OnDrop<F> {
        fn drop(&mut self) {
            (self.0)();
        }
    }
    let executor = executor(false);
    let q = executor.queue(0).unwrap();
    let spawned_in_drop = Rc::new(AtomicUsize::new(0));
    let victim = q.spawn(std::future::pending::<()>());
    let victim = Rc::new(victim);
    let _noisy = q.spawn({
        let (q, victim, spawned) = (q.clone(), victim.clone(), spawned_in_drop.clone());
        let on_drop = OnDrop(move || {
            victim.abort();
            // Refused after shutdown: the future is dropped at once.
            drop(q.spawn(async {}));
            spawned.fetch_add(1, Ordering::Relaxed);
        });
        async move {
            let _on_drop = on_drop;
            std::future::pending::<()>().await;
        }
    });
    block_on(executor.run_until(yield_now()));
    executor.shutdown();
    assert_eq!(spawned_in_drop.load(Ordering::Relaxed), 1);
    assert_eq!(executor.stats().live_tasks, 0);
    drop(executor);
}

#[test]
#[should_panic(expected = "already running")]
fn run_inside_its_own_task_panics_clearly() {
    let _watchdog = watchdog();
    let executor = executor(true);
    let inner = executor.clone();
    let task = executor.queue(0).unwrap().spawn(async move {
        inner.run_until(async {}).await;
    });
    let result = block_on(executor.run_until(task));
    // Caught panics would land here; the re-entrancy check fires in the outer poll.
    std::panic::resume_unwind(result.unwrap_err().into_panic());
}

/// A future whose `Drop` panics while its task is cancelled: the wrapper's in-place
/// drop of the `ManuallyDrop` future under `catch_unwind`, and the payload's trip
/// through the task's `PanicSlot` to a handle on this thread, on another thread, or
/// to no one (detached) — for abort before the first poll, shutdown of parked tasks,
/// and dropping the executor.
#[test]
fn drop_panics_during_cancellation_reach_the_handle() {
    let _watchdog = watchdog();
    struct Bomb(u32);
    impl Drop for Bomb {
        fn drop(&mut self) {
            std::panic::panic_any(self.0);
        }
    }
    fn bomb(q: &crate::QueueHandle<u8>, id: u32) -> JoinHandle<()> {
        let bomb = Bomb(id);
        q.spawn(async move {
            let _bomb = bomb;
            std::future::pending::<()>().await;
        })
    }
    fn payload_id(result: Result<(), JoinError>) -> u32 {
        *result
            .expect_err("the drop panicked")
            .into_panic()
            .downcast::<u32>()
            .expect("a u32 payload")
    }
    for propagate in [false, true] {
        let executor = executor(!propagate);
        let q = executor.queue(0).unwrap();
        let drops = Drops::default();
        let aborted = bomb(&q, 1);
        aborted.abort();
        let parked = bomb(&q, 2);
        let elsewhere = bomb(&q, 3);
        drop(bomb(&q, 4));
        let quiet = q.spawn({
            let guard = drops.guard();
            async move {
                let _guard = guard;
                std::future::pending::<()>().await;
            }
        });
        assert_eq!(payload_id(block_on(executor.run_until(aborted))), 1);
        let waiter = thread::spawn(move || payload_id(block_on(elsewhere)));
        executor.shutdown();
        assert_eq!(payload_id(block_on(parked)), 2);
        assert_eq!(waiter.join().unwrap(), 3);
        assert!(matches!(block_on(quiet), Err(JoinError::Cancelled)));
        assert_eq!(drops.count(), 1);
        assert_eq!(executor.queue_stats(0).unwrap().panicked, 4);
        // Never run, then dropped.
        let executor2 = self::executor(!propagate);
        let never = bomb(&executor2.queue(0).unwrap(), 5);
        drop(bomb(&executor2.queue(0).unwrap(), 6));
        drop(executor2);
        assert_eq!(payload_id(block_on(never)), 5);
    }
}

/// Task results are `TaskOutput`s (a `ManuallyDrop` result): taken out by an awaiting
/// handle without a drop, or dropped under `catch_unwind` when nobody takes them — by
/// the executor for a task detached before it completed, by `drop(handle)` for a
/// finished one — where a panic in the output's `Drop` must not abort the process.
#[test]
fn outputs_nobody_takes_are_dropped_quietly() {
    let _watchdog = watchdog();
    struct Loud(#[allow(dead_code)] DropGuard);
    impl Drop for Loud {
        fn drop(&mut self) {
            panic!("output's Drop panics on purpose");
        }
    }
    let executor = executor(true);
    let q = executor.queue(0).unwrap();
    let drops = Drops::default();
    let detached = drops.guard();
    drop(q.spawn(async move { Loud(detached) }));
    let finished = drops.guard();
    let finished = q.spawn(async move { Loud(finished) });
    let awaited = drops.guard();
    let awaited = q.spawn(async move { (awaited, 7) });
    let (_guard, seven) = block_on(executor.run_until(awaited)).unwrap();
    assert_eq!(seven, 7);
    block_on(executor.run_until(yield_now()));
    assert!(finished.is_finished());
    assert_eq!(drops.count(), 1, "the detached task's output");
    drop(finished);
    assert_eq!(drops.count(), 2, "the unawaited handle's output");
    assert_eq!(executor.stats().live_tasks, 0);
}

/// `clockworker::spawn` reads the running task's metadata through a pointer the run
/// loop sets around each poll: from the task's body, from a task of a nested executor
/// and back, and from the `Drop` of the task's own future as it completes (the task's
/// allocation is freed right after, its handle being gone).
#[test]
fn contextual_spawn_reads_the_running_task() {
    let _watchdog = watchdog();
    struct SpawnOnDrop(Rc<Cell<u32>>);
    impl Drop for SpawnOnDrop {
        fn drop(&mut self) {
            let seen = self.0.clone();
            drop(spawn(async move { seen.set(seen.get() + 100) }));
        }
    }
    let executor = ExecutorBuilder::new()
        .with_queue(0u8, 1)
        .with_queue(1u8, 2)
        .build()
        .unwrap();
    let seen = Rc::new(Cell::new(0));
    let tenant = executor.queue(1).unwrap().group("tenant");
    let outer = {
        let seen = seen.clone();
        tenant.spawn(async move {
            let child = spawn(async { 1 });
            let inner = ExecutorBuilder::new().with_queue(7u8, 1).build().unwrap();
            let nested = inner
                .queue(7)
                .unwrap()
                .spawn(async { spawn(async { 2 }).await });
            let nested = inner.run_until(nested).await.unwrap().unwrap();
            // Back in the outer task: its own pointer again.
            let after = spawn(async { 4 }).await.unwrap();
            seen.set(seen.get() + child.await.unwrap() + nested + after);
        })
    };
    let last = {
        let guard = SpawnOnDrop(seen.clone());
        executor.queue(1).unwrap().spawn(async move {
            let _guard = guard;
            yield_now().await;
        })
    };
    drop(last);
    // The nested executor may return to its host (the outer task) at its driver-yield
    // deadline, which under Miri passes within one poll: wait for the outcome itself.
    block_on(executor.run_until(async {
        outer.await.unwrap();
        for _ in 0..10_000 {
            if seen.get() == 107 {
                break;
            }
            yield_now().await;
        }
    }));
    assert_eq!(seen.get(), 107);
    let grouped = executor.queue_stats(1).unwrap();
    assert_eq!((grouped.spawned, grouped.completed), (5, 5));
    assert_eq!(executor.queue_stats(0).unwrap().spawned, 0);
}

/// A task panic that leaves `run_until` frees the task's allocation on the way out;
/// the running-task pointer must not outlive it: `clockworker::spawn` from the future
/// the next `run_until` drives (not a task) finds no running task and says so, and a
/// task spawned afterwards runs. Under Miri a dangling pointer would be reported here.
#[test]
fn no_running_task_survives_a_propagated_panic() {
    use std::panic::{catch_unwind, AssertUnwindSafe};
    let _watchdog = watchdog();
    let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    let q = executor.queue(0).unwrap();
    drop(q.spawn(async {
        yield_now().await;
        panic!("leaves run_until");
    }));
    let first = catch_unwind(AssertUnwindSafe(|| {
        block_on(executor.run_until(std::future::pending::<()>()))
    }));
    assert!(first.is_err());
    let next = q.spawn(async { 5 });
    let (outside, five) = block_on(executor.run_until(async {
        let outside = catch_unwind(|| drop(spawn(async {}))).is_err();
        (outside, next.await.unwrap())
    }));
    assert!(outside, "spawn outside a task must be refused");
    assert_eq!(five, 5);
    assert_eq!(executor.queue_stats(0).unwrap().panicked, 1);
}
