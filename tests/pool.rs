//! `clockworker::pool`: shards on their own threads, round-robin spawns, graceful
//! shutdown, pinning, and the typed errors.
#![cfg(feature = "pool")]

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, ThreadId};
use std::time::Duration;

use clockworker::pool::{
    current_executor, current_shard, spawn_local, PinStatus, Pool, PoolBuilder, PoolError,
    PoolSpawnError,
};
use clockworker::{BuildError, ExecutorBuilder, JoinError};
use futures_lite::future::block_on;

mod common;

use common::{pool_layout as layout, Q};

fn pool(shards: usize) -> Pool<Q> {
    PoolBuilder::new(layout).shards(shards).build().unwrap()
}

/// Counts drops, and records the thread each drop happened on.
struct DropProbe {
    drops: Arc<Mutex<Vec<ThreadId>>>,
}

impl Drop for DropProbe {
    fn drop(&mut self) {
        self.drops.lock().unwrap().push(thread::current().id());
    }
}

#[test]
fn pool_is_send_and_sync() {
    let _watchdog = common::watchdog();
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Pool<Q>>();
    send_sync::<PoolBuilder<Q>>();
}

#[test]
fn spawn_on_runs_on_that_shards_thread() {
    let _watchdog = common::watchdog();
    let pool = PoolBuilder::new(layout)
        .shards(3)
        .thread_name("shard")
        .build()
        .unwrap();
    assert_eq!(pool.shards(), 3);
    let mut seen = Vec::new();
    for shard in 0..3 {
        let handle = pool
            .spawn_on(shard, Q::Fg, async {
                let me = thread::current();
                (me.id(), me.name().map(str::to_owned), current_shard())
            })
            .unwrap();
        let (id, name, index) = block_on(handle).unwrap();
        assert_eq!(Some(id), pool.thread_id(shard));
        assert_ne!(id, thread::current().id());
        assert_eq!(name.as_deref(), Some(format!("shard-{shard}").as_str()));
        assert_eq!(index, Some(shard));
        seen.push(id);
    }
    seen.sort_by_key(|id| format!("{id:?}"));
    seen.dedup();
    assert_eq!(seen.len(), 3, "three shards, three threads");
    assert_eq!(current_shard(), None, "the test thread is no shard");
    pool.shutdown().unwrap();
}

#[test]
fn spawn_round_robin_spreads_evenly() {
    let _watchdog = common::watchdog();
    let pool = pool(3);
    let handles: Vec<_> = (0..30)
        .map(|i| {
            let key = if i % 2 == 0 { Q::Fg } else { Q::Bg };
            pool.spawn(key, async { current_shard().unwrap() }).unwrap()
        })
        .collect();
    let mut per_shard: HashMap<usize, usize> = HashMap::new();
    for handle in handles {
        *per_shard.entry(block_on(handle).unwrap()).or_default() += 1;
    }
    assert_eq!(per_shard.len(), 3);
    assert!(per_shard.values().all(|&n| n == 10), "{per_shard:?}");
}

#[test]
fn spawn_from_many_threads_loses_nothing() {
    let _watchdog = common::watchdog();
    let pool = Arc::new(pool(2));
    let ran = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (pool, ran) = (pool.clone(), ran.clone());
            thread::spawn(move || {
                let handles: Vec<_> = (0..2_000)
                    .map(|i| {
                        let ran = ran.clone();
                        pool.spawn(Q::Fg, async move {
                            ran.fetch_add(1, Ordering::Relaxed);
                            i
                        })
                        .unwrap()
                    })
                    .collect();
                for (i, handle) in handles.into_iter().enumerate() {
                    assert_eq!(block_on(handle).unwrap(), i);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(ran.load(Ordering::Relaxed), 8_000);
    Arc::try_unwrap(pool).unwrap().shutdown().unwrap();
}

#[test]
fn tasks_reach_their_shards_executor_and_spawn_local_tasks() {
    let _watchdog = common::watchdog();
    let pool = pool(2);
    for shard in 0..2 {
        let handle = pool
            .spawn_on(shard, Q::Fg, async move {
                // A `!Send` task on the same shard, spawned from a `Send` one.
                let local = spawn_local(Q::Bg, async {
                    let rc = Rc::new(current_shard());
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    *rc
                })
                .unwrap();
                let weight = {
                    let executor = current_executor::<Q>().expect("on a shard");
                    executor.queue_stats(Q::Fg).unwrap().weight
                };
                assert!(current_executor::<u32>().is_none(), "other key type");
                (local.await.unwrap(), weight)
            })
            .unwrap();
        assert_eq!(block_on(handle).unwrap(), (Some(shard), 4));
    }
    assert_eq!(
        spawn_local(Q::Fg, async {}).unwrap_err(),
        PoolSpawnError::NotOnShard
    );
    pool.shutdown().unwrap();
}

#[test]
fn shutdown_cancels_pending_tasks_on_their_shards_and_joins() {
    let _watchdog = common::watchdog();
    let pool = pool(2);
    let drops = Arc::new(Mutex::new(Vec::new()));
    let started = Arc::new(AtomicUsize::new(0));
    let mut handles = Vec::new();
    for i in 0..10 {
        let probe = DropProbe {
            drops: drops.clone(),
        };
        let started = started.clone();
        handles.push(
            pool.spawn_on(i % 2, Q::Bg, async move {
                let _probe = probe;
                started.fetch_add(1, Ordering::SeqCst);
                std::future::pending::<()>().await;
            })
            .unwrap(),
        );
    }
    while started.load(Ordering::SeqCst) < 10 {
        thread::sleep(Duration::from_millis(1));
    }
    let shard_threads = [pool.thread_id(0).unwrap(), pool.thread_id(1).unwrap()];
    pool.shutdown().unwrap();
    // Every future was dropped, on its shard's thread, before `shutdown` returned.
    let drops = drops.lock().unwrap().clone();
    assert_eq!(drops.len(), 10);
    assert!(drops.iter().all(|id| shard_threads.contains(id)));
    for handle in handles {
        assert!(matches!(block_on(handle), Err(JoinError::Cancelled)));
    }
    assert!(pool.is_shut_down());
    assert_eq!(
        pool.spawn_on(0, Q::Fg, async {}).unwrap_err(),
        PoolSpawnError::ShutDown
    );
    assert_eq!(
        pool.spawn(Q::Fg, async {}).unwrap_err(),
        PoolSpawnError::ShutDown
    );
    // Idempotent.
    pool.shutdown().unwrap();
}

#[test]
fn dropping_the_pool_shuts_it_down() {
    let _watchdog = common::watchdog();
    let pool = pool(2);
    let drops = Arc::new(Mutex::new(Vec::new()));
    let probe = DropProbe {
        drops: drops.clone(),
    };
    let handle = pool
        .spawn_on(1, Q::Fg, async move {
            let _probe = probe;
            std::future::pending::<()>().await;
        })
        .unwrap();
    let shard = pool.thread_id(1).unwrap();
    drop(pool);
    assert_eq!(*drops.lock().unwrap(), vec![shard]);
    assert!(matches!(block_on(handle), Err(JoinError::Cancelled)));
}

#[test]
fn shutdown_from_a_task_on_a_shard_does_not_deadlock() {
    let _watchdog = common::watchdog();
    let pool = Arc::new(pool(2));
    let inner = pool.clone();
    let handle = pool
        .spawn_on(0, Q::Fg, async move { inner.shutdown().is_ok() })
        .unwrap();
    // Shard 0 stops after this task's poll, so the result is delivered or cancelled.
    assert!(matches!(
        block_on(handle),
        Ok(true) | Err(JoinError::Cancelled)
    ));
    assert!(pool.is_shut_down());
    // The call from shard 0 told both shards to stop (it cannot wait for itself).
    assert_eq!(
        pool.spawn_on(1, Q::Fg, async {}).unwrap_err(),
        PoolSpawnError::ShutDown
    );
}

#[test]
fn a_shard_ended_by_a_task_panic_is_reported() {
    let _watchdog = common::watchdog();
    let pool = pool(2);
    let handle = pool
        .spawn_on(1, Q::Fg, async { panic!("boom on shard 1") })
        .unwrap();
    assert!(block_on(handle).is_err());
    // The panic propagated out of shard 1's run loop and ended its thread.
    let mut stopped = false;
    for _ in 0..1000 {
        match pool.spawn_on(1, Q::Fg, async {}) {
            Err(PoolSpawnError::ShardStopped { shard: 1 }) => {
                stopped = true;
                break;
            }
            Ok(h) => {
                let _ = block_on(h);
                thread::sleep(Duration::from_millis(1));
            }
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert!(stopped);
    // Shard 0 still works.
    assert_eq!(
        block_on(pool.spawn_on(0, Q::Fg, async { 7 }).unwrap()).unwrap(),
        7
    );
    let error = pool.shutdown().unwrap_err();
    assert_eq!(error.shards().collect::<Vec<_>>(), vec![1]);
    assert!(error.to_string().contains("boom on shard 1"), "{error}");
}

#[test]
fn spawn_errors_are_typed() {
    let _watchdog = common::watchdog();
    let pool = pool(2);
    assert_eq!(
        pool.spawn_on(2, Q::Fg, async {}).unwrap_err(),
        PoolSpawnError::ShardOutOfRange {
            shard: 2,
            shards: 2
        }
    );
    let pool = PoolBuilder::new(|_| ExecutorBuilder::new().with_queue("a", 1))
        .shards(1)
        .build()
        .unwrap();
    assert_eq!(
        pool.spawn("b", async {}).unwrap_err(),
        PoolSpawnError::UnknownQueue("b")
    );
    let message = pool.spawn_on(5, "a", async {}).unwrap_err().to_string();
    assert!(message.contains("out of range"), "{message}");
}

#[test]
fn build_errors_are_typed() {
    let _watchdog = common::watchdog();
    let no_shards = PoolBuilder::new(layout).shards(0).build().unwrap_err();
    assert!(matches!(no_shards, PoolError::NoShards));

    let no_queues = PoolBuilder::new(|_| ExecutorBuilder::<Q>::new())
        .shards(2)
        .build()
        .unwrap_err();
    assert!(
        matches!(
            no_queues,
            PoolError::Build {
                shard: 0,
                error: BuildError::NoQueues
            }
        ),
        "{no_queues:?}"
    );

    let zero_weight_on_one = PoolBuilder::new(|shard| {
        ExecutorBuilder::new().with_queue(Q::Fg, if shard == 1 { 0 } else { 1 })
    })
    .shards(2)
    .build()
    .unwrap_err();
    assert!(matches!(
        zero_weight_on_one,
        PoolError::Build {
            shard: 1,
            error: BuildError::ZeroWeight(Q::Fg)
        }
    ));

    let mismatch = PoolBuilder::new(|shard| {
        let builder = ExecutorBuilder::new().with_queue(Q::Fg, 1);
        if shard == 2 {
            builder
        } else {
            builder.with_queue(Q::Bg, 1)
        }
    })
    .shards(3)
    .build()
    .unwrap_err();
    assert!(matches!(mismatch, PoolError::LayoutMismatch { shard: 2 }));

    let panicked = PoolBuilder::new(|shard| {
        assert_ne!(shard, 1, "the builder closure panics on shard 1");
        layout(shard)
    })
    .shards(2)
    .build()
    .unwrap_err();
    assert!(matches!(panicked, PoolError::ShardPanicked { shard: 1 }));
    assert!(panicked.to_string().contains("shard 1"));
}

#[test]
fn thread_spawn_failure_is_an_error_not_a_panic() {
    let _watchdog = common::watchdog();
    // A 1 PiB stack cannot be mapped: the OS refuses the thread.
    let error = PoolBuilder::new(layout)
        .shards(2)
        .stack_size(1 << 50)
        .build()
        .unwrap_err();
    match error {
        PoolError::ThreadSpawn { shard: 0, error } => {
            assert!(
                std::error::Error::source(&PoolError::<Q>::ThreadSpawn { shard: 0, error })
                    .is_some()
            )
        }
        other => panic!("expected ThreadSpawn, got {other:?}"),
    }
}

#[cfg(target_os = "linux")]
#[test]
fn pin_to_cores_pins_each_shard_to_its_cpu() {
    let _watchdog = common::watchdog();
    let pool = PoolBuilder::new(layout)
        .shards(2)
        .pin_to_cores()
        .build()
        .unwrap();
    for shard in 0..2 {
        let cpu = match pool.pin_status(shard).unwrap() {
            PinStatus::Pinned { cpu } => *cpu,
            other => panic!("shard {shard} not pinned: {other:?}"),
        };
        // SAFETY: sched_getcpu has no preconditions.
        let running_on = block_on(
            pool.spawn_on(shard, Q::Fg, async { unsafe { libc::sched_getcpu() } })
                .unwrap(),
        )
        .unwrap();
        assert_eq!(usize::try_from(running_on).ok(), Some(cpu));
    }
    pool.shutdown().unwrap();
}

#[test]
fn pinning_failure_is_reported_and_the_pool_still_runs() {
    let _watchdog = common::watchdog();
    // CPU 100000 does not exist (and is beyond CPU_SETSIZE).
    let pool = PoolBuilder::new(layout)
        .shards(1)
        .pin_to_cpus([100_000])
        .build()
        .unwrap();
    assert!(matches!(
        pool.pin_status(0),
        Some(PinStatus::Failed {
            cpu: Some(100_000),
            ..
        })
    ));
    assert!(pool.pin_status(1).is_none());
    assert_eq!(
        block_on(pool.spawn(Q::Fg, async { 1 }).unwrap()).unwrap(),
        1
    );

    let unpinned = PoolBuilder::new(layout).shards(1).build().unwrap();
    assert!(matches!(
        unpinned.pin_status(0),
        Some(PinStatus::NotRequested)
    ));
}

#[test]
fn shards_serve_tokio_io_and_timers() {
    let _watchdog = common::watchdog();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let pool = pool(2);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let server = pool
        .spawn_on(0, Q::Fg, async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 5];
            stream.read_exact(&mut buf).await.unwrap();
            stream.write_all(&buf).await.unwrap();
        })
        .unwrap();
    let client = pool
        .spawn_on(1, Q::Fg, async move {
            tokio::time::sleep(Duration::from_millis(5)).await;
            let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            stream.write_all(b"hello").await.unwrap();
            let mut buf = [0u8; 5];
            stream.read_exact(&mut buf).await.unwrap();
            buf
        })
        .unwrap();
    assert_eq!(&block_on(client).unwrap(), b"hello");
    block_on(server).unwrap();
    pool.shutdown().unwrap();
}

/// Records its drop, on the dropping thread, after `delay`: slow enough that a shutdown
/// call returning early would see it missing.
struct SlowDropProbe {
    delay: Duration,
    drops: Arc<Mutex<Vec<ThreadId>>>,
}

impl Drop for SlowDropProbe {
    fn drop(&mut self) {
        thread::sleep(self.delay);
        self.drops.lock().unwrap().push(thread::current().id());
    }
}

/// Spawns, on each of `shards` of `pool`, a pending task holding a `SlowDropProbe`,
/// and waits until all of them run; returns where their drops are recorded.
fn park_slow_probes(
    pool: &Pool<Q>,
    shards: impl IntoIterator<Item = usize>,
    delay: Duration,
) -> Arc<Mutex<Vec<ThreadId>>> {
    let drops = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let mut parked = 0;
    for shard in shards {
        let probe = SlowDropProbe {
            delay,
            drops: drops.clone(),
        };
        let tx = tx.clone();
        pool.spawn_on(shard, Q::Bg, async move {
            let _probe = probe;
            tx.send(()).unwrap();
            std::future::pending::<()>().await;
        })
        .unwrap();
        parked += 1;
    }
    for _ in 0..parked {
        rx.recv().unwrap();
    }
    drops
}

#[test]
fn concurrent_shutdowns_all_wait_for_every_shard() {
    let _watchdog = common::watchdog();
    let pool = Arc::new(pool(2));
    let drops = park_slow_probes(&pool, 0..2, Duration::from_millis(50));
    let barrier = Arc::new(std::sync::Barrier::new(3));
    let callers: Vec<_> = (0..3)
        .map(|_| {
            let pool = pool.clone();
            let drops = drops.clone();
            let barrier = barrier.clone();
            thread::spawn(move || {
                barrier.wait();
                pool.shutdown().unwrap();
                // Whichever call joined, each one returns only after both shards ended,
                // i.e. after both slow drops ran.
                drops.lock().unwrap().len()
            })
        })
        .collect();
    for caller in callers {
        assert_eq!(caller.join().unwrap(), 2);
    }
    // And a call after the others still returns at once, with the same answer.
    pool.shutdown().unwrap();
}

#[test]
fn concurrent_shutdowns_all_report_a_panicked_shard() {
    let _watchdog = common::watchdog();
    let pool = Arc::new(pool(2));
    let handle = pool
        .spawn_on(0, Q::Fg, async { panic!("shard 0 fell over") })
        .unwrap();
    assert!(block_on(handle).is_err());
    let drops = park_slow_probes(&pool, [1], Duration::from_millis(30));
    let barrier = Arc::new(std::sync::Barrier::new(2));
    let callers: Vec<_> = (0..2)
        .map(|_| {
            let pool = pool.clone();
            let barrier = barrier.clone();
            let drops = drops.clone();
            thread::spawn(move || {
                barrier.wait();
                let error = pool.shutdown().unwrap_err();
                assert_eq!(drops.lock().unwrap().len(), 1);
                assert_eq!(error.shards().collect::<Vec<_>>(), vec![0]);
                assert!(error.to_string().contains("shard 0 fell over"), "{error}");
            })
        })
        .collect();
    for caller in callers {
        caller.join().unwrap();
    }
}
