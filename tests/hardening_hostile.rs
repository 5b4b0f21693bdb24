//! Hostile input: re-entrant and nested use of the run loop, and queue keys whose
//! `Hash`/`Eq` panic.
//!
//! Re-entrancy: `run`/`run_until` of an executor polled while that executor is already
//! being polled (from one of its tasks, or from the future `run_until` drives) panics
//! with a message that names the mistake, not with a `RefCell` borrow error; the
//! executor stays usable. Alternating two run futures of one executor (not nested) and
//! nesting a *different* executor are allowed and work.
//!
//! Keys: the run loop never touches keys (queues are indices inside), with any
//! feature on: weight controllers and the metrics export address queues by index, and
//! the `Debug` form of each key (for metrics labels and span fields) is taken once at
//! build, a panicking `Debug` giving the label `#index`. Keys are hashed only by
//! `ExecutorBuilder::build`, `Executor::queue`, `queue_stats`, `set_weight` and
//! `RemoteSpawner::spawn`. A panic there reaches the caller and leaves the executor's
//! state as it was.
//!
//! The overflow of weights at `MAX_WEIGHT` over a simulated year is a property test
//! of the EEVDF state machine (`src/eevdf/proptests.rs`).

mod common;

use common::{outputs_of, quiet_panics};

use std::cell::Cell;
use std::hash::{Hash, Hasher};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};

use clockworker::{yield_now, ExecutorBuilder, JoinError, QueueStats, WeightController};
use futures_lite::future::block_on;

/// The panic message the re-entrancy check gives (see `context::Entered::new`).
const REENTRANT: &str = "already running";

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// Panic messages this binary provokes on purpose.
const EXPECTED_PANICS: &[&str] = &["hostile key", "already running", "hostile Debug"];

#[test]
fn run_until_from_inside_its_own_task_panics_clearly() {
    let _watchdog = common::watchdog();
    quiet_panics(EXPECTED_PANICS);
    for caught in [true, false] {
        let executor = ExecutorBuilder::new()
            .with_queue(0u8, 1)
            .with_panic_on_task_panic(!caught)
            .build()
            .unwrap();
        let inner = executor.clone();
        let task = executor.queue(0).unwrap().spawn(async move {
            inner.run_until(async {}).await;
        });
        let message = if caught {
            let result = block_on(executor.run_until(task));
            panic_message(result.unwrap_err().into_panic())
        } else {
            let escaped = catch_unwind(AssertUnwindSafe(|| {
                block_on(executor.run_until(std::future::pending::<()>()))
            }));
            let message = panic_message(escaped.unwrap_err());
            assert!(matches!(block_on(task), Err(JoinError::Cancelled)));
            message
        };
        assert!(message.contains(REENTRANT), "message: {message}");
        assert!(
            message.contains("clockworker"),
            "names the crate: {message}"
        );
        // Still usable.
        let later = executor.queue(0).unwrap().spawn(async { 3 });
        assert_eq!(block_on(executor.run_until(later)).unwrap(), 3);
        assert_eq!(executor.stats().live_tasks, 0);
    }
}

#[test]
fn run_from_inside_its_own_task_panics_clearly() {
    let _watchdog = common::watchdog();
    quiet_panics(EXPECTED_PANICS);
    let executor = ExecutorBuilder::new()
        .with_queue(0u8, 1)
        .with_panic_on_task_panic(false)
        .build()
        .unwrap();
    let inner = executor.clone();
    let task = executor
        .queue(0)
        .unwrap()
        .spawn(async move { inner.run().await });
    let result = block_on(executor.run_until(task));
    let message = panic_message(result.unwrap_err().into_panic());
    assert!(message.contains(REENTRANT), "message: {message}");
}

/// The future `run_until` drives polls `run` of the same executor: nested, refused.
#[test]
fn run_polled_from_the_driven_future_panics_clearly() {
    let _watchdog = common::watchdog();
    quiet_panics(EXPECTED_PANICS);
    let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    let escaped = catch_unwind(AssertUnwindSafe(|| {
        block_on(executor.run_until(executor.run()));
    }));
    let message = panic_message(escaped.unwrap_err());
    assert!(message.contains(REENTRANT), "message: {message}");
    let later = executor.queue(0).unwrap().spawn(async { 4 });
    assert_eq!(block_on(executor.run_until(later)).unwrap(), 4);
}

/// Two run futures of one executor polled in turn by the host (not nested): each
/// turn runs alone, both finish.
#[test]
fn two_run_futures_polled_in_turn_both_finish() {
    let _watchdog = common::watchdog();
    let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    let q = executor.queue(0).unwrap();
    let a = q.spawn(async {
        for _ in 0..10 {
            yield_now().await;
        }
        1
    });
    let b = q.spawn(async {
        for _ in 0..20 {
            yield_now().await;
        }
        2
    });
    let (a, b) = block_on(futures_lite::future::zip(
        executor.run_until(a),
        executor.run_until(b),
    ));
    assert_eq!((a.unwrap(), b.unwrap()), (1, 2));
    assert_eq!(executor.stats().live_tasks, 0);
}

/// A task of one executor runs another executor to completion: allowed.
#[test]
fn nesting_a_different_executor_works() {
    let _watchdog = common::watchdog();
    let outer = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    let task = outer.queue(0).unwrap().spawn(async {
        let inner = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
        let job = inner.queue(0).unwrap().spawn(async {
            yield_now().await;
            7
        });
        inner.run_until(job).await.unwrap()
    });
    assert_eq!(block_on(outer.run_until(task)).unwrap(), 7);
}

/// Makes every `Key` with `poisoned == true` panic in `Hash` and `Eq`; with the switch
/// on, every key panics.
static PANIC_ALL: AtomicBool = AtomicBool::new(false);

#[derive(Clone, Copy, Debug)]
struct Key {
    id: u8,
    poisoned: bool,
}

const A: Key = Key {
    id: 0,
    poisoned: false,
};
const B: Key = Key {
    id: 1,
    poisoned: false,
};
const POISON: Key = Key {
    id: 9,
    poisoned: true,
};

impl Key {
    fn check(&self) {
        if self.poisoned || PANIC_ALL.load(Ordering::SeqCst) {
            panic!("hostile key {}", self.id);
        }
    }
}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.check();
        self.id.hash(state);
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.check();
        other.check();
        self.id == other.id
    }
}

impl Eq for Key {}

/// A weight controller that keeps the weight and counts how often it is consulted
/// (at every turn of the run loop).
struct CountingController(Rc<Cell<u32>>);

impl WeightController<Key> for CountingController {
    fn weight(&mut self, _: &QueueStats<Key>) -> Option<u32> {
        self.0.set(self.0.get() + 1);
        None
    }

    fn interval(&self) -> std::time::Duration {
        std::time::Duration::from_nanos(1)
    }
}

/// A queue key whose `Debug` always panics.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct MuteKey(u8);

impl std::fmt::Debug for MuteKey {
    fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        panic!("hostile Debug of key {}", self.0)
    }
}

/// With `metrics` and `tracing` on, the keys' `Debug` is taken for labels: a
/// panicking one must neither fail the build nor reach the run loop; every task
/// completes and the stats add up.
#[test]
fn a_key_whose_debug_panics_does_not_break_the_executor() {
    let _watchdog = common::watchdog();
    quiet_panics(EXPECTED_PANICS);
    let executor = ExecutorBuilder::new()
        .with_queue(MuteKey(1), 1)
        .with_queue(MuteKey(2), 2)
        .build()
        .expect("build needs no Debug");
    #[cfg(feature = "metrics")]
    executor.set_metrics_interval(Some(std::time::Duration::ZERO));
    let handles: Vec<_> = (0..6u8)
        .map(|i| {
            let queue = executor.queue(MuteKey(1 + i % 2)).unwrap();
            queue.spawn(async move {
                yield_now().await;
                i
            })
        })
        .collect();
    let outputs = block_on(executor.run_until(outputs_of(handles)));
    assert_eq!(outputs, [0, 1, 2, 3, 4, 5]);
    #[cfg(feature = "metrics")]
    executor.export_metrics();
    for key in [MuteKey(1), MuteKey(2)] {
        let stats = executor.queue_stats(key).unwrap();
        assert_eq!((stats.spawned, stats.completed), (3, 3));
    }
}

/// Only this test flips `PANIC_ALL`; the tests of this binary that use `Key` run in
/// it, one after the other.
#[test]
fn panicking_key_hash_and_eq_do_not_corrupt_the_executor() {
    let _watchdog = common::watchdog();
    quiet_panics(EXPECTED_PANICS);

    // A poisoned key in the builder: `build` panics, nothing is left behind.
    let built = catch_unwind(|| {
        ExecutorBuilder::new()
            .with_queue(A, 1)
            .with_queue(POISON, 2)
            .build()
    });
    assert!(built.is_err(), "build hashes the keys");

    let consulted = Rc::new(Cell::new(0));
    let executor = ExecutorBuilder::new()
        .with_queue(A, 1)
        .with_queue(B, 3)
        .with_panic_on_task_panic(false)
        .with_weight_controller(A, CountingController(consulted.clone()))
        .build()
        .unwrap();
    let qa = executor.queue(A).unwrap();
    let qb = executor.queue(B).unwrap();
    let parked = Rc::new(Cell::new(0));
    let pending: Vec<_> = (0..4)
        .map(|i| {
            let parked = parked.clone();
            [&qa, &qb][i % 2].spawn(async move {
                parked.set(parked.get() + 1);
                yield_now().await;
                i
            })
        })
        .collect();

    // Every key-taking method with a poisoned key, then with all keys panicking.
    let hostile_calls = |key: Key| {
        let calls: [&dyn Fn(); 3] = [
            &|| drop(executor.queue(key)),
            &|| {
                let _ = executor.queue_stats(key);
            },
            &|| {
                let _ = executor.set_weight(key, 5);
            },
        ];
        for call in calls {
            assert!(catch_unwind(AssertUnwindSafe(call)).is_err());
        }
    };
    hostile_calls(POISON);
    PANIC_ALL.store(true, Ordering::SeqCst);
    hostile_calls(A);
    let consulted_before = consulted.get();
    // A task that looks up a queue with a hostile key panics like any task.
    let hostile_task = qa.spawn({
        let executor = executor.clone();
        async move {
            let _ = executor.queue(B);
        }
    });
    let outputs = block_on(executor.run_until(async {
        let hostile = hostile_task.await;
        let mut outputs = Vec::new();
        for handle in pending {
            outputs.push(handle.await.unwrap());
        }
        (hostile, outputs)
    }));
    PANIC_ALL.store(false, Ordering::SeqCst);
    assert!(
        consulted.get() > consulted_before,
        "the weight controller was consulted while every key panicked"
    );
    assert!(outputs.0.unwrap_err().is_panic());
    assert_eq!(outputs.1, [0, 1, 2, 3], "the run loop never needed a key");

    // Everything still works and adds up.
    assert_eq!(executor.queue(A).unwrap().key().id, 0);
    executor.set_weight(B, 2).unwrap();
    let more = executor.queue(B).unwrap().spawn(async { 9 });
    assert_eq!(block_on(executor.run_until(more)).unwrap(), 9);
    let a = executor.queue_stats(A).unwrap();
    let b = executor.queue_stats(B).unwrap();
    assert_eq!((a.spawned, a.completed, a.panicked), (3, 2, 1));
    assert_eq!((b.spawned, b.completed), (3, 3));
    assert_eq!(b.weight, 2);
    assert_eq!(executor.stats().live_tasks, 0);

    // The remote spawner hashes on the caller's thread: the panic stays there.
    let remote = executor.remote();
    let from_thread = std::thread::spawn(move || {
        catch_unwind(AssertUnwindSafe(|| {
            let _ = remote.spawn(POISON, async {});
        }))
        .is_err()
    });
    assert!(from_thread.join().unwrap());
    executor.shutdown();
    assert_eq!(executor.stats().live_tasks, 0);
}

thread_local! {
    /// An executor kept in a thread-local, dropped during the thread's teardown.
    static KEPT: std::cell::RefCell<Option<std::rc::Rc<clockworker::Executor<u8>>>> =
        const { std::cell::RefCell::new(None) };
}

/// An executor dropped during thread-local teardown (after or before the crate's own
/// thread-locals), with parked tasks whose `Drop` wakes and spawns: no panic, no
/// abort, every future dropped.
#[test]
fn executor_dropped_during_thread_local_teardown() {
    let _watchdog = common::watchdog();
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;
    static DROPS: AtomicUsize = AtomicUsize::new(0);
    struct Noisy(clockworker::QueueHandle<u8>, Option<std::task::Waker>);
    impl Drop for Noisy {
        fn drop(&mut self) {
            DROPS.fetch_add(1, Ordering::SeqCst);
            if let Some(waker) = self.1.take() {
                waker.wake();
            }
            drop(self.0.spawn(async {}));
        }
    }
    let wakers: Arc<std::sync::Mutex<Vec<std::task::Waker>>> = Arc::default();
    let outside = wakers.clone();
    std::thread::spawn(move || {
        let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
        let q = executor.queue(0).unwrap();
        assert_eq!(DROPS.load(Ordering::SeqCst), 0);
        for _ in 0..16 {
            let mut noisy = Noisy(q.clone(), None);
            let wakers = wakers.clone();
            drop(q.spawn(std::future::poll_fn(move |cx| {
                // Through a reference to the whole value, so the closure owns it.
                let noisy: &mut Noisy = &mut noisy;
                noisy.1 = Some(cx.waker().clone());
                wakers.lock().unwrap().push(cx.waker().clone());
                std::task::Poll::<()>::Pending
            })));
        }
        block_on(executor.run_until(async {
            for _ in 0..64 {
                yield_now().await;
            }
        }));
        assert_eq!(DROPS.load(Ordering::SeqCst), 0, "all parked, none dropped");
        KEPT.with(|kept| *kept.borrow_mut() = Some(executor));
    })
    .join()
    .expect("thread teardown with a live executor");
    assert_eq!(DROPS.load(Ordering::SeqCst), 16);
    // The tasks' wakers outlived the thread and the executor.
    for waker in outside.lock().unwrap().drain(..) {
        waker.wake();
    }
}
