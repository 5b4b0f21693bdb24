//! `JoinSet`: results in order of completion, every task reported once, `abort_all`,
//! and dropping the set aborts what is left.

mod common;

use std::cell::RefCell;
use std::rc::Rc;

use clockworker::{yield_now, ExecutorBuilder, JoinError, JoinSet};
use common::{block_on_local, DropCounter};

async fn yields(n: usize) {
    for _ in 0..n {
        yield_now().await;
    }
}

#[test]
fn results_come_in_order_of_completion() {
    let _watchdog = common::watchdog();
    let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    let queue = executor.queue(0).unwrap();
    // The finishing order, as the tasks themselves record it.
    let finished = Rc::new(RefCell::new(Vec::new()));
    let joined = block_on_local(executor.run_until({
        let finished = finished.clone();
        async move {
            let mut set = JoinSet::new();
            for (id, n) in [(0, 40), (1, 3), (2, 25), (3, 0), (4, 12), (5, 7)] {
                let finished = finished.clone();
                set.spawn_on(&queue, async move {
                    yields(n).await;
                    finished.borrow_mut().push(id);
                    id
                });
            }
            assert_eq!(set.len(), 6);
            let mut joined = Vec::new();
            while let Some(result) = set.join_next().await {
                joined.push(result.unwrap());
            }
            assert!(set.is_empty());
            joined
        }
    }));
    assert_eq!(joined, [3, 1, 5, 4, 2, 0]);
    assert_eq!(joined, *finished.borrow());
}

#[test]
fn joins_while_tasks_are_still_being_added() {
    let _watchdog = common::watchdog();
    let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    let queue = executor.queue(0).unwrap();
    let total = block_on_local(executor.run_until(queue.clone().spawn(async move {
        let mut set = JoinSet::new();
        let mut total = 0;
        for round in 0..50u64 {
            set.spawn(async move {
                yields((round % 7) as usize).await;
                round
            });
            if round % 3 == 0 {
                if let Some(result) = set.join_next().await {
                    total += result.unwrap();
                }
            }
        }
        while let Some(result) = set.join_next().await {
            total += result.unwrap();
        }
        total
    })));
    assert_eq!(total.unwrap(), (0..50).sum::<u64>());
    let stats = executor.queue_stats(0).unwrap();
    assert_eq!((stats.spawned, stats.completed), (51, 51));
}

#[test]
fn panics_and_aborts_are_reported_through_the_set() {
    let _watchdog = common::watchdog();
    let executor = ExecutorBuilder::new()
        .with_queue(0u8, 1)
        .with_panic_on_task_panic(false)
        .build()
        .unwrap();
    let queue = executor.queue(0).unwrap();
    common::quiet_panics(&["on purpose"]);
    let outcomes = block_on_local(executor.run_until(async {
        let mut set = JoinSet::new();
        set.spawn_on(&queue, async {
            yields(2).await;
            panic!("on purpose")
        });
        set.spawn_on(&queue, async { Ok::<u8, ()>(1) });
        let mut outcomes = Vec::new();
        while let Some(result) = set.join_next().await {
            outcomes.push(match result {
                Ok(_) => "ok",
                Err(error) if error.is_panic() => "panic",
                Err(_) => "cancelled",
            });
        }
        outcomes
    }));
    assert_eq!(outcomes, ["ok", "panic"]);
}

#[test]
fn abort_all_cancels_what_has_not_finished() {
    let _watchdog = common::watchdog();
    let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    let queue = executor.queue(0).unwrap();
    let drops = DropCounter::new();
    let (done, cancelled) = block_on_local(executor.run_until(async {
        let mut set = JoinSet::new();
        set.spawn_on(&queue, async { 1 });
        for _ in 0..3 {
            let guard = drops.guard();
            set.spawn_on(&queue, async move {
                let _guard = guard;
                std::future::pending::<u32>().await
            });
        }
        // Let the first finish and the others park.
        let first = set.join_next().await.unwrap().unwrap();
        set.abort_all();
        assert_eq!(set.len(), 3, "aborted tasks stay until joined");
        let mut cancelled = 0;
        while let Some(result) = set.join_next().await {
            assert!(matches!(result, Err(JoinError::Cancelled)), "{result:?}");
            cancelled += 1;
        }
        (first, cancelled)
    }));
    assert_eq!((done, cancelled), (1, 3));
    assert_eq!(drops.count(), 3);
    assert_eq!(executor.queue_stats(0).unwrap().cancelled, 3);
}

#[test]
fn dropping_the_set_aborts_its_tasks() {
    let _watchdog = common::watchdog();
    let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    let queue = executor.queue(0).unwrap();
    let drops = DropCounter::new();
    let mut set = JoinSet::new();
    for _ in 0..4 {
        let guard = drops.guard();
        set.spawn_on(&queue, async move {
            let _guard = guard;
            std::future::pending::<()>().await
        });
    }
    block_on_local(executor.run_until(yields(2)));
    assert_eq!(executor.stats().live_tasks, 4, "all four parked");
    drop(set);
    block_on_local(executor.run_until(yields(2)));
    assert_eq!(drops.count(), 4);
    assert_eq!(executor.stats().live_tasks, 0);
    assert_eq!(executor.queue_stats(0).unwrap().cancelled, 4);
}

#[test]
fn a_spawn_refused_by_shutdown_is_reported_once() {
    let _watchdog = common::watchdog();
    let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    let queue = executor.queue(0).unwrap();
    executor.shutdown();
    let mut set = JoinSet::new();
    set.spawn_on(&queue, async { 1 });
    assert_eq!(set.len(), 1);
    let result = set
        .try_join_next()
        .expect("reported without running anything");
    assert!(matches!(result, Err(JoinError::Cancelled)), "{result:?}");
    assert!(set.is_empty());
    assert!(set.try_join_next().is_none());
}
