//! Several `run()` futures of one executor, each a task of the host: all of them end
//! after `shutdown()`, also those parked idle whose host waker the inbox no longer
//! holds (it keeps only the last one registered).

mod common;

use std::time::Duration;

use clockworker::{Executor, ExecutorBuilder};

/// Spawns `n` `run()` loops of `executor` as tasks of the current `LocalSet`.
fn spawn_run_loops(
    executor: &std::rc::Rc<Executor<u8>>,
    n: usize,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..n)
        .map(|_| {
            let executor = executor.clone();
            tokio::task::spawn_local(async move { executor.run().await })
        })
        .collect()
}

/// Waits (at most 5 s each) for every loop to end.
async fn assert_all_end(loops: Vec<tokio::task::JoinHandle<()>>) {
    for (index, run) in loops.into_iter().enumerate() {
        let ended = tokio::time::timeout(Duration::from_secs(5), run).await;
        assert!(
            ended.is_ok(),
            "run() loop {index} did not end after shutdown"
        );
    }
}

#[test]
fn every_run_loop_ends_after_shutdown() {
    let _watchdog = common::watchdog();
    let rt = common::runtime();
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async {
        let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
        let loops = spawn_run_loops(&executor, 3);
        // Every loop starts, finds nothing to do and parks.
        tokio::time::sleep(Duration::from_millis(10)).await;
        let task = executor.queue(0).unwrap().spawn(async { 5 });
        assert_eq!(task.await.unwrap(), 5, "one of the loops ran the task");
        tokio::time::sleep(Duration::from_millis(10)).await;
        executor.shutdown();
        assert_all_end(loops).await;
    });
}

#[test]
fn a_shutdown_from_a_task_ends_the_other_loops() {
    let _watchdog = common::watchdog();
    let rt = common::runtime();
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async {
        let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
        let loops = spawn_run_loops(&executor, 2);
        tokio::time::sleep(Duration::from_millis(10)).await;
        let stopper = executor.queue(0).unwrap().spawn({
            let executor = executor.clone();
            async move { executor.shutdown() }
        });
        let stopped = tokio::time::timeout(Duration::from_secs(5), stopper).await;
        assert!(stopped.is_ok(), "the stopping task did not run");
        assert_all_end(loops).await;
    });
}
