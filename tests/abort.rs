//! `JoinHandle::abort`: before the first poll, on parked tasks, from another task, from
//! the task itself, after completion, and from another OS thread. An aborted task's
//! future is dropped exactly once, on the executor's thread, and its handle resolves
//! `JoinError::Cancelled`.

mod common;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use clockworker::{yield_now, ExecutorBuilder, JoinError, JoinHandle};
use common::{block_on_local, wait_until, DropCounter, SendDropCounter};

const PATIENCE: Duration = Duration::from_secs(5);

#[test]
fn abort_before_first_poll() {
    let _watchdog = common::watchdog();
    let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    let q = executor.queue(0).unwrap();
    let drops = DropCounter::new();
    let polled = Rc::new(Cell::new(false));
    let h = q.spawn({
        let guard = drops.guard();
        let polled = polled.clone();
        async move {
            let _guard = guard;
            polled.set(true);
        }
    });
    h.abort();
    let result = block_on_local(executor.run_until({
        let drops = drops.clone();
        async move {
            let result = h.await;
            assert!(wait_until(PATIENCE, || drops.count() == 1).await);
            result
        }
    }));
    assert!(matches!(result, Err(JoinError::Cancelled)), "{result:?}");
    assert!(!polled.get(), "an aborted task must never be polled");
    assert_eq!(drops.count(), 1);
    let stats = executor.queue_stats(0).unwrap();
    assert_eq!(stats.cancelled, 1);
    assert_eq!(stats.completed, 0);
    assert_eq!(executor.stats().live_tasks, 0);
}

#[test]
fn abort_task_parked_on_never_ready_future() {
    let _watchdog = common::watchdog();
    let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    let q = executor.queue(0).unwrap();
    let drops = DropCounter::new();
    let polls = Rc::new(Cell::new(0));
    let h = q.spawn(common::CountPolls::new(
        {
            let guard = drops.guard();
            async move {
                let _guard = guard;
                std::future::pending::<()>().await;
            }
        },
        polls.clone(),
    ));
    let result = block_on_local(executor.run_until({
        let drops = drops.clone();
        let polls = polls.clone();
        async move {
            assert!(wait_until(PATIENCE, || polls.get() == 1).await);
            assert_eq!(drops.count(), 0);
            h.abort();
            let result = h.await;
            assert!(wait_until(PATIENCE, || drops.count() == 1).await);
            result
        }
    }));
    assert!(matches!(result, Err(JoinError::Cancelled)), "{result:?}");
    assert_eq!(drops.count(), 1, "future dropped exactly once");
    assert_eq!(polls.get(), 1, "never polled again after the abort");
    assert_eq!(executor.queue_stats(0).unwrap().cancelled, 1);
    assert_eq!(executor.stats().live_tasks, 0);
}

#[test]
fn abort_task_parked_on_oneshot_with_live_sender() {
    let _watchdog = common::watchdog();
    let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    let q = executor.queue(0).unwrap();
    let drops = DropCounter::new();
    let polled = Rc::new(Cell::new(false));
    let (tx, rx) = tokio::sync::oneshot::channel::<u32>();
    let h = q.spawn({
        let guard = drops.guard();
        let polled = polled.clone();
        async move {
            let _guard = guard;
            polled.set(true);
            rx.await.unwrap()
        }
    });
    let (result, tx) = block_on_local(executor.run_until({
        let drops = drops.clone();
        async move {
            assert!(wait_until(PATIENCE, || polled.get()).await);
            assert!(!tx.is_closed());
            h.abort();
            let result = h.await;
            assert!(wait_until(PATIENCE, || drops.count() == 1).await);
            // The receiver went away with the future.
            assert!(tx.is_closed(), "receiver not dropped by the abort");
            (result, tx)
        }
    }));
    assert!(matches!(result, Err(JoinError::Cancelled)), "{result:?}");
    assert_eq!(drops.count(), 1);
    // The sender is still alive here: it was not the sender that ended the task.
    assert!(tx.send(1).is_err());
}

/// The rustdoc of `abort`: the task is never polled again, and its future is dropped
/// on the executor thread by the run loop's next turn. Here the loop runs one task poll
/// between two polls of the `run_until` future, so after one `yield_now` of that future
/// the aborted (and only) task's future must be gone.
#[test]
fn abort_drops_an_idle_task_future_by_the_next_turn() {
    let _watchdog = common::watchdog();
    let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    let q = executor.queue(0).unwrap();
    let drops = DropCounter::new();
    let polls = Rc::new(Cell::new(0));
    let h = q.spawn(common::CountPolls::new(
        {
            let guard = drops.guard();
            async move {
                let _guard = guard;
                std::future::pending::<()>().await;
            }
        },
        polls.clone(),
    ));
    let (at_once, after_one_turn) = block_on_local(executor.run_until({
        let drops = drops.clone();
        let polls = polls.clone();
        async move {
            assert!(wait_until(PATIENCE, || polls.get() == 1).await);
            h.abort();
            let at_once = drops.count();
            yield_now().await;
            (at_once, drops.count())
        }
    }));
    println!("dropped right after abort(): {at_once}, after one turn: {after_one_turn}");
    assert_eq!(after_one_turn, 1, "not dropped by the loop's next turn");
    assert_eq!(polls.get(), 1, "polled again after abort");
}

#[test]
fn abort_from_inside_another_task() {
    let _watchdog = common::watchdog();
    let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    let q = executor.queue(0).unwrap();
    let drops = DropCounter::new();
    let victim = q.spawn({
        let guard = drops.guard();
        async move {
            let _guard = guard;
            loop {
                yield_now().await;
            }
        }
    });
    let killer = q.spawn({
        let drops = drops.clone();
        async move {
            // Let the victim run a few rounds first.
            for _ in 0..3 {
                yield_now().await;
            }
            assert_eq!(drops.count(), 0);
            victim.abort();
            let result = victim.await;
            assert!(wait_until(PATIENCE, || drops.count() == 1).await);
            result
        }
    });
    let result = block_on_local(executor.run_until(killer)).unwrap();
    assert!(matches!(result, Err(JoinError::Cancelled)), "{result:?}");
    assert_eq!(drops.count(), 1);
    assert_eq!(executor.queue_stats(0).unwrap().cancelled, 1);
    assert_eq!(executor.queue_stats(0).unwrap().completed, 1);
}

#[test]
fn task_aborts_itself() {
    let _watchdog = common::watchdog();
    let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    let q = executor.queue(0).unwrap();
    let drops = DropCounter::new();
    let slot: Rc<RefCell<Option<JoinHandle<()>>>> = Rc::new(RefCell::new(None));
    let before = Rc::new(Cell::new(false));
    let after = Rc::new(Cell::new(false));
    let h = q.spawn({
        let guard = drops.guard();
        let slot = slot.clone();
        let before = before.clone();
        let after = after.clone();
        async move {
            let _guard = guard;
            before.set(true);
            slot.borrow().as_ref().expect("handle stored").abort();
            // Aborted while running: the task must not be resumed after this await.
            yield_now().await;
            after.set(true);
        }
    });
    // The task cannot run before the executor is driven, so the slot is filled first.
    *slot.borrow_mut() = Some(h);
    let result = block_on_local(executor.run_until({
        let drops = drops.clone();
        let slot = slot.clone();
        async move {
            assert!(wait_until(PATIENCE, || drops.count() == 1).await);
            let h = slot.borrow_mut().take().unwrap();
            h.await
        }
    }));
    assert!(before.get());
    assert!(!after.get(), "the task resumed after aborting itself");
    assert!(matches!(result, Err(JoinError::Cancelled)), "{result:?}");
    assert_eq!(drops.count(), 1);
}

#[test]
fn abort_after_completion_keeps_the_result() {
    let _watchdog = common::watchdog();
    let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    let q = executor.queue(0).unwrap();
    let result = block_on_local(executor.run_until(async move {
        let h = q.spawn(async {
            yield_now().await;
            String::from("kept")
        });
        assert!(wait_until(PATIENCE, || h.is_finished()).await);
        h.abort();
        h.abort();
        assert!(h.is_finished());
        h.await
    }));
    assert_eq!(result.unwrap(), "kept");
    let stats = executor.queue_stats(0).unwrap();
    assert_eq!(stats.completed, 1);
    assert_eq!(stats.cancelled, 0);
}

#[test]
fn abort_twice_is_harmless() {
    let _watchdog = common::watchdog();
    let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    let q = executor.queue(0).unwrap();
    let drops = DropCounter::new();
    let h = q.spawn({
        let guard = drops.guard();
        async move {
            let _guard = guard;
            std::future::pending::<()>().await;
        }
    });
    let result = block_on_local(executor.run_until({
        let drops = drops.clone();
        async move {
            yield_now().await;
            h.abort();
            h.abort();
            let r = h.await;
            assert!(wait_until(PATIENCE, || drops.count() == 1).await);
            r
        }
    }));
    assert!(result.unwrap_err().is_cancelled());
    assert_eq!(drops.count(), 1);
}

#[test]
fn abort_from_another_os_thread_drops_the_future_on_the_executor_thread() {
    let _watchdog = common::watchdog();
    let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    let q = executor.queue(0).unwrap();
    let drops = SendDropCounter::new();
    let polled = Rc::new(Cell::new(false));
    let executor_thread = std::thread::current().id();
    let h: JoinHandle<u32> = q.spawn({
        let guard = drops.guard();
        let polled = polled.clone();
        async move {
            let _guard = guard;
            polled.set(true);
            std::future::pending::<()>().await;
            7
        }
    });
    let (to_thread, from_main) = std::sync::mpsc::channel::<JoinHandle<u32>>();
    let (back_tx, back_rx) = tokio::sync::oneshot::channel::<(JoinHandle<u32>, _)>();
    let aborter = std::thread::spawn(move || {
        let h = from_main.recv().unwrap();
        h.abort();
        let _ = back_tx.send((h, std::thread::current().id()));
    });
    let (result, aborter_thread) = block_on_local(executor.run_until({
        let drops = drops.clone();
        async move {
            assert!(wait_until(PATIENCE, || polled.get()).await);
            to_thread.send(h).unwrap();
            let (h, aborter_thread) = back_rx.await.unwrap();
            let result = h.await;
            assert!(
                wait_until(PATIENCE, || drops.count() == 1).await,
                "the future was not dropped after a cross-thread abort"
            );
            (result, aborter_thread)
        }
    }));
    aborter.join().unwrap();
    assert!(matches!(result, Err(JoinError::Cancelled)), "{result:?}");
    assert_eq!(drops.count(), 1);
    assert_ne!(aborter_thread, executor_thread);
    assert_eq!(
        drops.threads(),
        vec![executor_thread],
        "the future must be dropped on the executor thread"
    );
    assert_eq!(executor.stats().live_tasks, 0);
}

#[test]
fn handle_dropped_on_another_thread_detaches() {
    let _watchdog = common::watchdog();
    let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    let q = executor.queue(0).unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<u32>();
    let h: JoinHandle<()> = q.spawn(async move {
        yield_now().await;
        tx.send(3).unwrap();
    });
    std::thread::spawn(move || drop(h)).join().unwrap();
    let got = block_on_local(executor.run_until(rx));
    assert_eq!(
        got,
        Ok(3),
        "dropping the handle on another thread must not cancel"
    );
}

#[test]
fn join_error_api_for_cancelled() {
    let _watchdog = common::watchdog();
    let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    let q = executor.queue(0).unwrap();
    let h = q.spawn(std::future::pending::<()>());
    h.abort();
    let err = block_on_local(executor.run_until(h)).unwrap_err();
    assert!(err.is_cancelled());
    assert!(!err.is_panic());
    assert!(err.to_string().contains("cancelled"), "{err}");
    assert!(format!("{err:?}").contains("Cancelled"), "{err:?}");
    let err = err.try_into_panic().unwrap_err();
    assert!(err.is_cancelled());
    let e: Box<dyn std::error::Error> = Box::new(err);
    assert!(!e.to_string().is_empty());
}

/// An abort from another thread must wake an executor that is parked with nothing to
/// do: here the executor sits in `run()`, and only the aborted future's drop (on the
/// executor thread) calls `shutdown`, which makes `run()` return.
#[test]
fn abort_from_another_thread_wakes_an_idle_executor() {
    let _watchdog = common::watchdog();
    let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    let q = executor.queue(0).unwrap();
    let polled = Rc::new(Cell::new(false));
    let drops = SendDropCounter::new();
    let h: JoinHandle<()> = q.spawn({
        let on_drop = common::OnDrop({
            let executor = executor.clone();
            move || executor.shutdown()
        });
        let guard = drops.guard();
        let polled = polled.clone();
        async move {
            let _on_drop = on_drop;
            let _guard = guard;
            polled.set(true);
            std::future::pending::<()>().await;
        }
    });
    let (to_thread, from_main) = std::sync::mpsc::channel::<JoinHandle<()>>();
    let aborter = std::thread::spawn(move || {
        let h = from_main.recv().unwrap();
        // Give the executor time to go idle first.
        std::thread::sleep(Duration::from_millis(20));
        h.abort();
    });
    let finished = block_on_local({
        let executor = executor.clone();
        async move {
            tokio::task::spawn_local(async move {
                to_thread.send(h).unwrap();
            });
            tokio::time::timeout(Duration::from_secs(5), executor.run())
                .await
                .is_ok()
        }
    });
    aborter.join().unwrap();
    assert!(polled.get());
    assert!(
        finished,
        "run() never returned: the cross-thread abort did not wake the idle executor"
    );
    assert_eq!(drops.count(), 1);
    assert_eq!(drops.threads(), vec![std::thread::current().id()]);
}

/// `abort` only requests the cancellation: until the run loop has dropped the future,
/// the task is not finished (the docs promise `is_finished` turns true once the future
/// is gone). Checked from a task (the loop is busy until it yields), before the next
/// turn, and from outside the executor before it runs at all.
#[test]
fn is_finished_turns_true_only_once_the_aborted_future_is_dropped() {
    let _watchdog = common::watchdog();
    let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    let q = executor.queue(0).unwrap();
    let drops = DropCounter::new();
    let before_run = q.spawn({
        let guard = drops.guard();
        async move {
            let _guard = guard;
            std::future::pending::<()>().await
        }
    });
    before_run.abort();
    assert!(
        !before_run.is_finished(),
        "is_finished after abort, before the executor ran"
    );
    assert_eq!(drops.count(), 0);
    block_on_local(executor.run_until({
        let drops = drops.clone();
        let parked_drops = DropCounter::new();
        let q = q.clone();
        async move {
            let parked = q.spawn({
                let guard = parked_drops.guard();
                async move {
                    let _guard = guard;
                    std::future::pending::<()>().await
                }
            });
            // Let it be polled once and park.
            yield_now().await;
            yield_now().await;
            assert!(!parked.is_finished());
            parked.abort();
            // Nothing ran since the abort: its future is still alive.
            assert_eq!(parked_drops.count(), 0, "dropped before the loop got to it");
            assert!(
                !parked.is_finished(),
                "is_finished right after abort, before the future was dropped"
            );
            assert!(wait_until(PATIENCE, || parked_drops.count() == 1).await);
            assert!(parked.is_finished(), "future dropped, but not finished");
            assert_eq!(drops.count(), 1);
            assert!(before_run.is_finished());
            assert!(matches!(parked.await, Err(JoinError::Cancelled)));
            assert!(matches!(before_run.await, Err(JoinError::Cancelled)));
        }
    }));
}
