//! `clockworker::spawn`: the spawned task lands in the caller's queue and group, joins
//! and aborts like any task, and outside a task the call panics with a message that
//! says what to use instead.

mod common;

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;

use clockworker::scheduler::{ReadyTask, RunnableFifo, Scheduler};
use clockworker::{spawn, yield_now, ExecutorBuilder, JoinError};
use common::{block_on_local, DropCounter};

/// A FIFO that logs the group of every task it is handed.
struct GroupLog(RunnableFifo, Rc<RefCell<Vec<Option<u64>>>>);

impl Scheduler for GroupLog {
    fn push(&mut self, task: ReadyTask) {
        self.1.borrow_mut().push(task.group());
        self.0.push(task);
    }
    fn pop(&mut self) -> Option<ReadyTask> {
        self.0.pop()
    }
    fn len(&self) -> usize {
        self.0.len()
    }
}

#[test]
fn lands_in_the_callers_queue_and_group() {
    let _watchdog = common::watchdog();
    let log = Rc::new(RefCell::new(Vec::new()));
    let executor = ExecutorBuilder::new()
        .with_queue("fg", 4)
        .with_queue_scheduler("bg", 1, GroupLog(RunnableFifo::new(), log.clone()))
        .build()
        .unwrap();
    let tenant = executor.queue("bg").unwrap().group("tenant-a");
    let parent = tenant.spawn(async {
        let children: Vec<_> = (0..3).map(|i| spawn(async move { i * 10 })).collect();
        let mut sum = 0;
        for child in children {
            sum += child.await.unwrap();
        }
        // A grandchild, spawned by a child, lands in the same place.
        sum + spawn(async { spawn(async { 5 }).await.unwrap() })
            .await
            .unwrap()
    });
    let total = block_on_local(executor.run_until(parent)).unwrap();
    assert_eq!(total, 35);

    let bg = executor.queue_stats("bg").unwrap();
    assert_eq!(
        (bg.spawned, bg.completed),
        (6, 6),
        "parent, 3 children, 2 below"
    );
    assert_eq!(executor.queue_stats("fg").unwrap().spawned, 0);
    let tenant_stats = tenant.group_stats().unwrap();
    assert_eq!((tenant_stats.spawned, tenant_stats.completed), (6, 6));
    let group = tenant_stats.group;
    let log = log.borrow();
    assert!(!log.is_empty());
    assert!(
        log.iter().all(|seen| *seen == Some(group)),
        "every push carried the tenant's group: {log:?}"
    );
}

#[test]
fn a_task_without_a_group_spawns_without_one() {
    let _watchdog = common::watchdog();
    let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    let queue = executor.queue(0).unwrap();
    let tenant = queue.group(1);
    let parent = queue.spawn(async { spawn(async { 2 }).await.unwrap() });
    assert_eq!(block_on_local(executor.run_until(parent)).unwrap(), 2);
    assert_eq!(tenant.group_stats().unwrap().spawned, 0);
    assert_eq!(executor.queue_stats(0).unwrap().completed, 2);
}

#[test]
fn an_aborted_contextual_task_is_cancelled_and_its_future_dropped() {
    let _watchdog = common::watchdog();
    let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    let drops = DropCounter::new();
    let parent = executor.queue(0).unwrap().spawn({
        let drops = drops.clone();
        async move {
            let guard = drops.guard();
            let child = spawn(async move {
                let _guard = guard;
                std::future::pending::<()>().await
            });
            yield_now().await; // the child runs once and parks
            child.abort();
            child.await
        }
    });
    let result = block_on_local(executor.run_until(parent)).unwrap();
    assert!(matches!(result, Err(JoinError::Cancelled)), "{result:?}");
    assert_eq!(drops.count(), 1);
    assert_eq!(executor.queue_stats(0).unwrap().cancelled, 1);
}

#[test]
fn outside_a_task_it_panics_and_names_the_alternative() {
    let _watchdog = common::watchdog();
    fn panic_text(run: impl FnOnce()) -> String {
        let payload = catch_unwind(AssertUnwindSafe(run)).expect_err("spawn must panic");
        common::panic_text(payload.as_ref()).expect("a text payload")
    }
    common::quiet_panics(&["clockworker::spawn"]);
    // No executor on this thread.
    let text = panic_text(|| drop(spawn(async {})));
    assert!(text.contains("clockworker::spawn"), "{text}");
    assert!(text.contains("QueueHandle"), "{text}");
    // Inside the future that run_until drives: not a task either.
    let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    let text = panic_text(|| block_on_local(executor.run_until(async { drop(spawn(async {})) })));
    assert!(text.contains("run_until"), "{text}");
    // The executor is intact.
    let task = executor.queue(0).unwrap().spawn(async { 1 });
    assert_eq!(block_on_local(executor.run_until(task)).unwrap(), 1);
}

#[test]
fn on_a_shut_down_executor_the_handle_resolves_cancelled() {
    let _watchdog = common::watchdog();
    let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    let drops = DropCounter::new();
    let parent = executor.queue(0).unwrap().spawn({
        let (executor, drops) = (executor.clone(), drops.clone());
        async move {
            executor.shutdown();
            let guard = drops.guard();
            spawn(async move { drop(guard) }).await
        }
    });
    let result = block_on_local(async {
        let run = executor.run();
        run.await;
        parent.await
    });
    // The parent finishes in the poll that shut the executor down, with the child's
    // result: cancelled, its future dropped at once.
    assert!(
        matches!(result, Ok(Err(JoinError::Cancelled))),
        "{result:?}"
    );
    assert_eq!(drops.count(), 1, "the refused child's future was dropped");
}
