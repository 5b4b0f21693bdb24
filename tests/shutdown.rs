//! `Executor::shutdown` and dropping the executor: `run` returns, every unfinished task
//! is cancelled (handle `Cancelled`, future dropped exactly once), later spawns are
//! refused, and futures that spawn, wake, abort or shut down from their `Drop` during
//! the cancellation do not break it.

mod common;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use clockworker::{yield_now, Executor, ExecutorBuilder, JoinError, JoinHandle, SpawnError};
use common::{block_on_local, runtime, spin, wait_until, DropCounter, OnDrop, Q};

/// Where a task spawned at shutdown time leaves its handle for the test.
type LateSlot = Rc<RefCell<Option<JoinHandle<()>>>>;

/// Handles of tasks spawned from a future's `Drop`.
type SpawnedInDrop = Rc<RefCell<Vec<JoinHandle<()>>>>;

fn assert_cancelled<T>(result: Result<T, JoinError>, what: &str) {
    match result {
        Err(JoinError::Cancelled) => {}
        Err(other) => panic!("{what}: expected Cancelled, got {other:?}"),
        Ok(_) => panic!("{what}: expected Cancelled, got Ok"),
    }
}

/// Spawns the three kinds of pending tasks shutdown must reach: one always ready
/// (yields in a loop), one parked on a long timer, one parked on a oneshot whose sender
/// is kept alive (returned). Each future holds a guard of `drops`.
fn spawn_pending_tasks(
    executor: &Executor<Q>,
    drops: &DropCounter,
) -> (Vec<JoinHandle<()>>, tokio::sync::oneshot::Sender<()>) {
    let fg = executor.queue(Q::Fg).unwrap();
    let bg = executor.queue(Q::Bg).unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let handles = vec![
        fg.spawn({
            let guard = drops.guard();
            async move {
                let _guard = guard;
                loop {
                    yield_now().await;
                }
            }
        }),
        bg.spawn({
            let guard = drops.guard();
            async move {
                let _guard = guard;
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
        }),
        fg.spawn({
            let guard = drops.guard();
            async move {
                let _guard = guard;
                let _ = rx.await;
            }
        }),
    ];
    (handles, tx)
}

fn two_queues() -> Rc<Executor<Q>> {
    ExecutorBuilder::new()
        .with_queue(Q::Fg, 2)
        .with_queue(Q::Bg, 1)
        .build()
        .unwrap()
}

#[test]
fn shutdown_from_outside_stops_run_and_cancels_everything() {
    let _watchdog = common::watchdog();
    let executor = two_queues();
    let drops = DropCounter::new();
    let (handles, tx) = spawn_pending_tasks(&executor, &drops);
    let never_polled = Rc::new(Cell::new(false));
    let rt = runtime();
    let local = tokio::task::LocalSet::new();
    let late: LateSlot = Rc::default();
    local.block_on(&rt, {
        let executor = executor.clone();
        let drops = drops.clone();
        let never_polled = never_polled.clone();
        let late = late.clone();
        async move {
            let stopper = tokio::task::spawn_local({
                let executor = executor.clone();
                async move {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    // Spawned just before the shutdown: never polled.
                    *late.borrow_mut() = Some(executor.queue(Q::Bg).unwrap().spawn({
                        let guard = drops.guard();
                        async move {
                            let _guard = guard;
                            never_polled.set(true);
                        }
                    }));
                    executor.shutdown();
                }
            });
            executor.run().await;
            stopper.await.unwrap();
        }
    });
    let late = late.borrow_mut().take().unwrap();
    assert!(executor.is_shut_down());
    assert_eq!(
        drops.count(),
        4,
        "every pending future dropped once, by the time run returns"
    );
    assert!(
        !never_polled.get(),
        "a task spawned before shutdown ran after it"
    );
    for h in handles {
        assert_cancelled(block_on_local(h), "pending task");
    }
    assert_cancelled(block_on_local(late), "never-polled task");
    assert_eq!(drops.count(), 4);
    let fg = executor.queue_stats(Q::Fg).unwrap();
    let bg = executor.queue_stats(Q::Bg).unwrap();
    assert_eq!(fg.cancelled + bg.cancelled, 4);
    assert_eq!(fg.completed + bg.completed, 0);
    assert_eq!(executor.stats().live_tasks, 0);
    drop(tx);
}

/// Shutdown called from a task: `run` returns and, by then, every other task is
/// cancelled, including the caller's own continuation. `spin_before` is how long the caller
/// busy-works in the same poll before calling shutdown.
fn check_shutdown_from_inside_a_task(spin_before: Duration) {
    let executor = ExecutorBuilder::new()
        .with_queue(Q::Fg, 2)
        .with_queue(Q::Bg, 1)
        .with_driver_yield(Duration::from_millis(1))
        .build()
        .unwrap();
    let drops = DropCounter::new();
    let (handles, tx) = spawn_pending_tasks(&executor, &drops);
    let resumed = Rc::new(Cell::new(false));
    let late: LateSlot = Rc::default();
    let caller = executor.queue(Q::Fg).unwrap().spawn({
        let executor = executor.clone();
        let guard = drops.guard();
        let resumed = resumed.clone();
        let late = late.clone();
        let drops = drops.clone();
        async move {
            let _guard = guard;
            for _ in 0..3 {
                yield_now().await;
            }
            spin(spin_before);
            // A task spawned in the same poll as the shutdown: never polled.
            *late.borrow_mut() = Some(executor.queue(Q::Bg).unwrap().spawn({
                let guard = drops.guard();
                async move {
                    let _guard = guard;
                    panic!("polled after shutdown");
                }
            }));
            executor.shutdown();
            assert!(executor.is_shut_down());
            yield_now().await;
            resumed.set(true);
        }
    });
    let rt = runtime();
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, executor.run());
    // Checked right after run() returns, before the executor goes away.
    let dropped_when_run_returned = drops.count();
    let live_when_run_returned = executor.stats().live_tasks;
    assert!(!resumed.get(), "the caller resumed after shutdown");
    assert_eq!(
        dropped_when_run_returned, 5,
        "futures dropped by the time run() returned (3 pending + caller + late spawn)"
    );
    assert_eq!(live_when_run_returned, 0);
    for h in handles {
        assert_cancelled(block_on_local(h), "pending task");
    }
    assert_cancelled(block_on_local(caller), "task that called shutdown");
    assert_cancelled(
        block_on_local(late.borrow_mut().take().unwrap()),
        "task spawned just before shutdown",
    );
    drop(tx);
}

#[test]
fn shutdown_from_inside_a_task() {
    let _watchdog = common::watchdog();
    check_shutdown_from_inside_a_task(Duration::ZERO);
}

/// The caller's poll outlasts `driver_yield` (1 ms here), so the run loop is due to
/// return to the host right after it. Any poll that ends past the deadline does (an OS
/// stall is enough), which makes the plain variant above fail now and then too.
#[test]
fn shutdown_from_inside_a_task_after_a_long_poll() {
    let _watchdog = common::watchdog();
    check_shutdown_from_inside_a_task(Duration::from_millis(5));
}

#[test]
fn shutdown_from_a_task_resolves_handles_awaited_by_run_until() {
    let _watchdog = common::watchdog();
    let executor = two_queues();
    let drops = DropCounter::new();
    let (mut handles, _tx) = spawn_pending_tasks(&executor, &drops);
    let parked = handles.pop().unwrap();
    let ex = executor.clone();
    drop(executor.queue(Q::Bg).unwrap().spawn(async move {
        yield_now().await;
        ex.shutdown();
    }));
    let result = block_on_local(executor.run_until(parked));
    assert_cancelled(result, "handle awaited by run_until");
    assert_eq!(drops.count(), 3);
    assert_eq!(executor.stats().live_tasks, 0);
}

#[test]
fn spawn_after_shutdown_is_refused_and_drops_the_future() {
    let _watchdog = common::watchdog();
    let executor = two_queues();
    let q = executor.queue(Q::Fg).unwrap();
    executor.shutdown();
    executor.shutdown(); // idempotent
    assert!(executor.is_shut_down());

    let drops = DropCounter::new();
    let err = q
        .try_spawn({
            let guard = drops.guard();
            async move {
                let _guard = guard;
            }
        })
        .unwrap_err();
    assert!(matches!(err, SpawnError::ShuttingDown), "{err:?}");
    assert!(err.to_string().contains("shut down"), "{err}");
    assert_eq!(drops.count(), 1, "try_spawn must drop the refused future");

    let ran = Rc::new(Cell::new(false));
    let h = q.spawn({
        let guard = drops.guard();
        let ran = ran.clone();
        async move {
            let _guard = guard;
            ran.set(true);
        }
    });
    assert_eq!(drops.count(), 2, "spawn must drop the refused future");
    assert!(h.is_finished());
    assert_cancelled(block_on_local(h), "spawn after shutdown");

    // A queue handle obtained after shutdown behaves the same.
    let bg = executor.queue(Q::Bg).unwrap();
    assert!(matches!(
        bg.try_spawn(async {}),
        Err(SpawnError::ShuttingDown)
    ));

    // run returns at once; run_until still drives its own future.
    block_on_local(executor.run());
    assert_eq!(block_on_local(executor.run_until(async { 8 })), 8);
    assert!(!ran.get());
    let stats = executor.queue_stats(Q::Fg).unwrap();
    assert_eq!(
        stats.spawned, 0,
        "refused spawns are not counted as spawned"
    );
}

#[test]
fn spawn_from_a_task_after_shutdown_is_refused() {
    let _watchdog = common::watchdog();
    let executor = two_queues();
    let q = executor.queue(Q::Fg).unwrap();
    let observed = Rc::new(RefCell::new(None));
    let caller = q.spawn({
        let ex = executor.clone();
        let q = q.clone();
        let observed = observed.clone();
        async move {
            ex.shutdown();
            let refused = matches!(q.try_spawn(async {}), Err(SpawnError::ShuttingDown));
            let h = q.spawn(async {});
            *observed.borrow_mut() = Some((refused, h));
        }
    });
    let rt = runtime();
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, executor.run());
    let (refused, h) = observed.borrow_mut().take().unwrap();
    assert!(refused);
    assert_cancelled(local.block_on(&rt, h), "spawn from a task after shutdown");
    // The caller finished in the poll that called shutdown.
    assert!(caller.is_finished());
}

#[test]
fn dropping_the_executor_without_running_cancels_everything() {
    let _watchdog = common::watchdog();
    let executor = two_queues();
    let fg = executor.queue(Q::Fg).unwrap();
    let drops = DropCounter::new();
    let polled = Rc::new(Cell::new(false));
    let handles: Vec<_> = (0..5)
        .map(|_| {
            let guard = drops.guard();
            let polled = polled.clone();
            fg.spawn(async move {
                let _guard = guard;
                polled.set(true);
            })
        })
        .collect();
    assert_eq!(drops.count(), 0);
    drop(executor);
    assert_eq!(drops.count(), 5, "dropping the executor drops every future");
    assert!(!polled.get());
    for h in handles {
        assert_cancelled(block_on_local(h), "task of a dropped executor");
    }
    // The queue handle outlives the executor: spawning is refused.
    assert!(matches!(
        fg.try_spawn(async {}),
        Err(SpawnError::ShuttingDown)
    ));
    assert_cancelled(
        block_on_local(fg.spawn(async { 1 })),
        "spawn on dropped executor",
    );
}

#[test]
fn dropping_the_executor_cancels_parked_tasks() {
    let _watchdog = common::watchdog();
    let executor = two_queues();
    let drops = DropCounter::new();
    let (handles, tx) = spawn_pending_tasks(&executor, &drops);
    let rt = runtime();
    let local = tokio::task::LocalSet::new();
    // Let every task be polled at least once and park.
    local.block_on(
        &rt,
        executor.run_until(async { tokio::time::sleep(Duration::from_millis(5)).await }),
    );
    assert_eq!(drops.count(), 0);
    drop(executor);
    assert_eq!(drops.count(), 3);
    for h in handles {
        assert_cancelled(local.block_on(&rt, h), "parked task of a dropped executor");
    }
    assert!(tx.is_closed());
}

/// Futures whose `Drop` spawns, try-spawns, wakes another task, aborts another task or
/// calls shutdown again, all while the executor is cancelling.
fn build_drop_side_effects(
    executor: &Rc<Executor<Q>>,
    drops: &DropCounter,
    with_shutdown_in_drop: bool,
) -> (Vec<JoinHandle<()>>, SpawnedInDrop, Rc<Cell<bool>>) {
    let fg = executor.queue(Q::Fg).unwrap();
    let bg = executor.queue(Q::Bg).unwrap();
    let spawned_in_drop: SpawnedInDrop = Rc::default();
    let try_spawn_refused = Rc::new(Cell::new(false));
    let mut handles = Vec::new();

    // A task parked on a oneshot; its sender lives in another task's future, so
    // dropping that future wakes this one.
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    handles.push(bg.spawn({
        let guard = drops.guard();
        async move {
            let _guard = guard;
            let _ = rx.await;
            std::future::pending::<()>().await;
        }
    }));
    handles.push(fg.spawn({
        let guard = drops.guard();
        async move {
            let _guard = guard;
            let _tx = tx;
            std::future::pending::<()>().await;
        }
    }));

    // A task whose drop spawns and try-spawns.
    handles.push(fg.spawn({
        let guard = drops.guard();
        let bg = bg.clone();
        let drops = drops.clone();
        let spawned_in_drop = spawned_in_drop.clone();
        let try_spawn_refused = try_spawn_refused.clone();
        let on_drop = OnDrop(move || {
            let guard = drops.guard();
            spawned_in_drop.borrow_mut().push(bg.spawn(async move {
                let _guard = guard;
                std::future::pending::<()>().await;
            }));
            let guard = drops.guard();
            let refused = bg.try_spawn(async move {
                let _guard = guard;
            });
            try_spawn_refused.set(matches!(refused, Err(SpawnError::ShuttingDown)));
        });
        async move {
            let _guard = guard;
            let _on_drop = on_drop;
            loop {
                yield_now().await;
            }
        }
    }));

    // A task whose drop aborts another, parked, task.
    let victim = bg.spawn({
        let guard = drops.guard();
        async move {
            let _guard = guard;
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
    });
    handles.push(fg.spawn({
        let guard = drops.guard();
        let victim = RefCell::new(Some(victim));
        let on_drop = OnDrop(move || {
            if let Some(victim) = victim.borrow_mut().take() {
                victim.abort();
            }
        });
        async move {
            let _guard = guard;
            let _on_drop = on_drop;
            std::future::pending::<()>().await;
        }
    }));

    if with_shutdown_in_drop {
        let ex = executor.clone();
        handles.push(bg.spawn({
            let guard = drops.guard();
            let on_drop = OnDrop(move || ex.shutdown());
            async move {
                let _guard = guard;
                let _on_drop = on_drop;
                std::future::pending::<()>().await;
            }
        }));
    }
    (handles, spawned_in_drop, try_spawn_refused)
}

/// Runs the side-effect futures, then shuts down from a host task (`from_task` false)
/// or from one of the executor's own tasks (`from_task` true, so the cancellation runs
/// inside the run loop's poll).
fn check_drop_side_effects_during_shutdown(from_task: bool) {
    let executor = two_queues();
    let drops = DropCounter::new();
    let (handles, spawned_in_drop, try_spawn_refused) =
        build_drop_side_effects(&executor, &drops, true);
    let rt = runtime();
    let local = tokio::task::LocalSet::new();
    if from_task {
        let ex = executor.clone();
        drop(executor.queue(Q::Bg).unwrap().spawn(async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            ex.shutdown();
        }));
    }
    if from_task {
        // Driven by run_until rather than run, so that this test does not depend on
        // `run` returning only after the cancellation (see
        // `shutdown_from_inside_a_task_after_a_long_poll`).
        let d = drops.clone();
        let all_dropped = local.block_on(
            &rt,
            executor.run_until(wait_until(Duration::from_secs(5), move || d.count() == 8)),
        );
        assert!(all_dropped, "only {} of 8 futures dropped", drops.count());
    } else {
        local.block_on(&rt, async {
            let ex = executor.clone();
            tokio::task::spawn_local(async move {
                tokio::time::sleep(Duration::from_millis(10)).await;
                ex.shutdown();
            });
            executor.run().await;
        });
    }
    // 6 spawned tasks (incl. the victim) + 2 futures created in a drop.
    assert_eq!(drops.count(), 8);
    assert!(try_spawn_refused.get());
    for h in handles {
        assert_cancelled(local.block_on(&rt, h), "task");
    }
    for h in spawned_in_drop.borrow_mut().drain(..) {
        assert_cancelled(local.block_on(&rt, h), "spawned from a drop");
    }
    assert_eq!(executor.stats().live_tasks, 0);
    assert_eq!(drops.count(), 8);
}

#[test]
fn drop_side_effects_during_shutdown_from_outside() {
    let _watchdog = common::watchdog();
    check_drop_side_effects_during_shutdown(false);
}

#[test]
fn drop_side_effects_during_shutdown_from_a_task() {
    let _watchdog = common::watchdog();
    check_drop_side_effects_during_shutdown(true);
}

#[test]
fn drop_side_effects_when_the_executor_is_dropped() {
    let _watchdog = common::watchdog();
    let executor = two_queues();
    let drops = DropCounter::new();
    let (handles, spawned_in_drop, try_spawn_refused) =
        build_drop_side_effects(&executor, &drops, false);
    let rt = runtime();
    let local = tokio::task::LocalSet::new();
    local.block_on(
        &rt,
        executor.run_until(async { tokio::time::sleep(Duration::from_millis(5)).await }),
    );
    assert_eq!(drops.count(), 0);
    drop(executor);
    // 5 spawned tasks (incl. the victim) + 2 futures created in a drop.
    assert_eq!(drops.count(), 7);
    assert!(try_spawn_refused.get());
    for h in handles {
        assert_cancelled(local.block_on(&rt, h), "task");
    }
    for h in spawned_in_drop.borrow_mut().drain(..) {
        assert_cancelled(local.block_on(&rt, h), "spawned from a drop");
    }
}

#[test]
fn run_returns_when_shutdown_while_idle() {
    let _watchdog = common::watchdog();
    let executor = two_queues();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let drops = DropCounter::new();
    let parked = executor.queue(Q::Bg).unwrap().spawn({
        let guard = drops.guard();
        async move {
            let _guard = guard;
            let _ = rx.await;
        }
    });
    let start = std::time::Instant::now();
    block_on_local({
        let executor = executor.clone();
        async move {
            tokio::task::spawn_local({
                let executor = executor.clone();
                async move {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    executor.shutdown();
                }
            });
            executor.run().await;
        }
    });
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(drops.count(), 1);
    assert_cancelled(block_on_local(parked), "idle parked task");
    drop(tx);
}

/// `shutdown` waits for tasks it cannot see only for a while: a user scheduler that
/// keeps its tasks from `pop` (here, always) makes it give up after its bounded wait
/// instead of spinning forever (the watchdog fails the test then).
#[test]
fn shutdown_gives_up_on_tasks_a_scheduler_never_hands_back() {
    use clockworker::scheduler::{ReadyTask, Scheduler};
    let _watchdog = common::watchdog();
    struct Hiding(Vec<ReadyTask>);
    impl Scheduler for Hiding {
        fn push(&mut self, task: ReadyTask) {
            self.0.push(task)
        }
        fn pop(&mut self) -> Option<ReadyTask> {
            None
        }
        fn len(&self) -> usize {
            self.0.len()
        }
    }
    let executor = ExecutorBuilder::new()
        .with_queue_scheduler(Q::Fg, 1, Hiding(Vec::new()))
        .build()
        .unwrap();
    let _task = executor.queue(Q::Fg).unwrap().spawn(async {});
    executor.shutdown();
    assert!(executor.is_shut_down());
}

/// `shutdown` keeps waiting while a scheduler holds tasks back for a moment: a user
/// scheduler whose `pop` hands nothing back every other call (so one round of the
/// cancellation sees no task) still has its task's future dropped before `shutdown`
/// returns, because shutdown tries again instead of giving up after that round.
#[test]
fn shutdown_waits_for_a_scheduler_that_hands_tasks_back_late() {
    use clockworker::scheduler::{ReadyTask, Scheduler};
    let _watchdog = common::watchdog();
    struct Stingy {
        tasks: Vec<ReadyTask>,
        /// Whether the next `pop` hides the tasks.
        hide: bool,
    }
    impl Scheduler for Stingy {
        fn push(&mut self, task: ReadyTask) {
            self.tasks.push(task)
        }
        fn pop(&mut self) -> Option<ReadyTask> {
            self.hide = !self.hide;
            if self.hide {
                None
            } else {
                self.tasks.pop()
            }
        }
        fn len(&self) -> usize {
            self.tasks.len()
        }
    }
    let executor = ExecutorBuilder::new()
        .with_queue_scheduler(
            Q::Fg,
            1,
            Stingy {
                tasks: Vec::new(),
                hide: false,
            },
        )
        .build()
        .unwrap();
    let drops = DropCounter::new();
    let guard = drops.guard();
    let task = executor.queue(Q::Fg).unwrap().spawn(async move {
        let _guard = guard;
    });
    executor.shutdown();
    assert_eq!(drops.count(), 1, "the task's future outlived shutdown");
    assert_cancelled(block_on_local(task), "task held back by its scheduler");
}
