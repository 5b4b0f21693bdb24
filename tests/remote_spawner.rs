//! `RemoteSpawner`: `Send` futures spawned onto the executor from other threads.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clockworker::{ExecutorBuilder, JoinError, RemoteJoinHandle, RemoteSpawner, SpawnError};
use futures_lite::future::block_on;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn spawner_and_handles_are_send_and_sync() {
    let _watchdog = common::watchdog();
    fn send_sync<T: Send + Sync>() {}
    send_sync::<RemoteSpawner<u8>>();
    send_sync::<RemoteJoinHandle<u64>>();
}

/// 4 threads x N spawns, every task runs exactly once and every handle resolves Ok.
#[test]
fn no_task_is_lost_under_four_spawning_threads() {
    let _watchdog = common::watchdog();
    // The full 100,000 per thread in release; a quarter in debug to stay quick.
    const PER_THREAD: usize = if cfg!(debug_assertions) {
        25_000
    } else {
        100_000
    };
    let rt = runtime();
    let executor = ExecutorBuilder::new()
        .with_queue("a", 1)
        .with_queue("b", 2)
        .build()
        .unwrap();
    let spawner = executor.remote();
    let ran = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (spawner, ran) = (spawner.clone(), ran.clone());
            std::thread::spawn(move || {
                let handles: Vec<_> = (0..PER_THREAD)
                    .map(|i| {
                        let ran = ran.clone();
                        let key = if i % 2 == 0 { "a" } else { "b" };
                        spawner
                            .spawn(key, async move {
                                ran.fetch_add(1, Ordering::Relaxed);
                                t * PER_THREAD + i
                            })
                            .unwrap()
                    })
                    .collect();
                let mut sum = 0usize;
                for (i, h) in handles.into_iter().enumerate() {
                    let value = block_on(h).unwrap();
                    assert_eq!(value, t * PER_THREAD + i);
                    sum += 1;
                }
                sum
            })
        })
        .collect();
    let ex = executor.clone();
    let done = rt.block_on(executor.run_until(async move {
        tokio::task::spawn_blocking(move || threads.into_iter().map(|t| t.join().unwrap()).sum())
            .await
            .unwrap()
    }));
    let done: usize = done;
    assert_eq!(done, 4 * PER_THREAD);
    assert_eq!(ran.load(Ordering::Relaxed), 4 * PER_THREAD);
    let stats = (ex.queue_stats("a").unwrap(), ex.queue_stats("b").unwrap());
    assert_eq!(
        stats.0.completed + stats.1.completed,
        (4 * PER_THREAD) as u64
    );
}

#[test]
fn unknown_queue_and_shutdown_are_typed_errors() {
    let _watchdog = common::watchdog();
    let executor = ExecutorBuilder::new().with_queue(1u8, 1).build().unwrap();
    let spawner = executor.remote();
    assert!(matches!(
        spawner.spawn(9, async {}),
        Err(SpawnError::UnknownQueue(9))
    ));
    executor.shutdown();
    assert!(matches!(
        spawner.spawn(1, async {}),
        Err(SpawnError::ShuttingDown)
    ));
    drop(executor);
    let err = std::thread::spawn(move || spawner.spawn(1, async {}).map(drop))
        .join()
        .unwrap();
    assert!(matches!(err, Err(SpawnError::ShuttingDown)));
}

#[test]
fn spawns_queued_at_shutdown_resolve_cancelled() {
    let _watchdog = common::watchdog();
    let executor = ExecutorBuilder::new().with_queue(1u8, 1).build().unwrap();
    let spawner = executor.remote();
    // Queued, never run: the executor is not running.
    let handle = spawner.spawn(1, async { 5 }).unwrap();
    let waiter = std::thread::spawn(move || block_on(handle));
    std::thread::sleep(Duration::from_millis(20));
    drop(executor);
    assert!(matches!(waiter.join().unwrap(), Err(JoinError::Cancelled)));
}

#[test]
fn abort_before_and_after_start() {
    let _watchdog = common::watchdog();
    let rt = runtime();
    let executor = ExecutorBuilder::new().with_queue(1u8, 1).build().unwrap();
    let spawner = executor.remote();
    let before = spawner.spawn(1, async { 1 }).unwrap();
    before.abort();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let after = spawner
        .spawn(1, async move {
            let _ = rx.await;
            2
        })
        .unwrap();
    let results = rt.block_on(executor.run_until(async move {
        tokio::time::sleep(Duration::from_millis(5)).await;
        after.abort();
        let results = (before.await, after.await);
        drop(tx);
        results
    }));
    assert!(matches!(results.0, Err(JoinError::Cancelled)));
    assert!(matches!(results.1, Err(JoinError::Cancelled)));
}

#[test]
fn a_caught_panic_reaches_the_remote_handle() {
    let _watchdog = common::watchdog();
    let rt = runtime();
    let executor = ExecutorBuilder::new()
        .with_queue(1u8, 1)
        .with_panic_on_task_panic(false)
        .build()
        .unwrap();
    let handle = executor
        .remote()
        .spawn(1, async { panic!("remote boom") })
        .unwrap();
    let result = rt.block_on(executor.run_until(handle));
    let payload = result.unwrap_err().into_panic();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"remote boom"));
}
