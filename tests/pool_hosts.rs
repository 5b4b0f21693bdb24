//! `clockworker::pool` on other hosts than tokio: the built-in `SmolHost`, and a host
//! written here against the public `ShardHost` trait.
#![cfg(feature = "pool")]

use std::collections::HashSet;
use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use clockworker::pool::{
    current_executor, current_shard, spawn_local, PoolBuilder, PoolError, ShardHost, SmolHost,
};
use clockworker::JoinError;
use futures_lite::future::block_on;

mod common;

use common::{pool_layout as layout, Q};

/// Records the thread its drop ran on.
struct DropProbe(Arc<Mutex<Vec<ThreadId>>>);

impl Drop for DropProbe {
    fn drop(&mut self) {
        self.0.lock().unwrap().push(thread::current().id());
    }
}

#[test]
fn smol_host_spawns_on_each_shard_round_robin_and_shuts_down() {
    let _watchdog = common::watchdog();
    let pool = PoolBuilder::new(layout)
        .host(SmolHost)
        .shards(3)
        .thread_name("smol-shard")
        .build()
        .unwrap();
    // spawn_on: each task runs on its shard's thread, which knows its index.
    for shard in 0..3 {
        let (index, id, name) = block_on(
            pool.spawn_on(shard, Q::Fg, async {
                let me = thread::current();
                (current_shard(), me.id(), me.name().map(str::to_owned))
            })
            .unwrap(),
        )
        .unwrap();
        assert_eq!(index, Some(shard));
        assert_eq!(Some(id), pool.thread_id(shard));
        assert_eq!(
            name.as_deref(),
            Some(format!("smol-shard-{shard}").as_str())
        );
    }
    // Round-robin: 9 spawns, 3 per shard.
    let handles: Vec<_> = (0..9)
        .map(|_| {
            pool.spawn(Q::Bg, async { current_shard().unwrap() })
                .unwrap()
        })
        .collect();
    let mut per_shard = [0; 3];
    for handle in handles {
        per_shard[block_on(handle).unwrap()] += 1;
    }
    assert_eq!(per_shard, [3, 3, 3]);
    // smol's timers (async-io) and the shard's own executor work inside the tasks.
    let slept = pool
        .spawn_on(1, Q::Fg, async {
            let start = Instant::now();
            async_io::Timer::after(Duration::from_millis(5)).await;
            // A `!Send` task on the same shard, spawned from a `Send` one.
            let local = spawn_local(Q::Bg, async {
                let rc = std::rc::Rc::new(7);
                async_io::Timer::after(Duration::from_millis(1)).await;
                *rc
            })
            .unwrap();
            assert!(current_executor::<Q>().is_some());
            let seven = local.await.unwrap();
            (start.elapsed(), seven)
        })
        .unwrap();
    let (elapsed, seven) = block_on(slept).unwrap();
    assert!(elapsed >= Duration::from_millis(5));
    assert_eq!(seven, 7);
    // Shutdown cancels pending tasks on their shards' threads and joins them.
    let drops = Arc::new(Mutex::new(Vec::new()));
    let parked: Vec<_> = (0..3)
        .map(|shard| {
            let probe = DropProbe(drops.clone());
            pool.spawn_on(shard, Q::Bg, async move {
                let _probe = probe;
                std::future::pending::<()>().await;
            })
            .unwrap()
        })
        .collect();
    // Let every shard poll its parked task before shutting down.
    for shard in 0..3 {
        block_on(pool.spawn_on(shard, Q::Bg, async {}).unwrap()).unwrap();
    }
    let shard_threads: HashSet<_> = (0..3).map(|s| pool.thread_id(s).unwrap()).collect();
    pool.shutdown().unwrap();
    let drops = drops.lock().unwrap().clone();
    assert_eq!(drops.iter().copied().collect::<HashSet<_>>(), shard_threads);
    for handle in parked {
        assert!(matches!(block_on(handle), Err(JoinError::Cancelled)));
    }
}

/// A host written by a user: futures-lite's `block_on`, counting what the pool asks.
#[derive(Default, Clone)]
struct CountingHost(Arc<Counts>);

#[derive(Default)]
struct Counts {
    built: AtomicUsize,
    blocked_on: AtomicUsize,
    /// Shards whose runtime "fails" to build.
    fail: Option<usize>,
}

/// The per-shard runtime of `CountingHost`: just its shard index.
struct ShardRuntime {
    shard: usize,
}

impl ShardHost for CountingHost {
    type Runtime = ShardRuntime;

    fn build(&self, shard: usize) -> io::Result<ShardRuntime> {
        if self.0.fail == Some(shard) {
            return Err(io::Error::other("no runtime for this shard"));
        }
        self.0.built.fetch_add(1, Ordering::SeqCst);
        Ok(ShardRuntime { shard })
    }

    fn block_on<F: Future>(&self, runtime: &mut ShardRuntime, future: F) -> F::Output {
        // The run future is blocked on by the shard's own thread.
        assert_eq!(
            thread::current().name(),
            Some(format!("custom-{}", runtime.shard).as_str())
        );
        self.0.blocked_on.fetch_add(1, Ordering::SeqCst);
        block_on(future)
    }
}

#[test]
fn a_user_written_host_runs_the_shards() {
    let _watchdog = common::watchdog();
    let host = CountingHost::default();
    let pool = PoolBuilder::new(layout)
        .host(host.clone())
        .shards(2)
        .thread_name("custom")
        .build()
        .unwrap();
    assert_eq!(host.0.built.load(Ordering::SeqCst), 2);
    let handles: Vec<_> = (0..4)
        .map(|i| {
            pool.spawn(Q::Fg, async move { (i, current_shard()) })
                .unwrap()
        })
        .collect();
    for (i, handle) in handles.into_iter().enumerate() {
        assert_eq!(block_on(handle).unwrap(), (i, Some(i % 2)));
    }
    pool.shutdown().unwrap();
    assert_eq!(host.0.blocked_on.load(Ordering::SeqCst), 2);
}

#[test]
fn a_host_that_cannot_build_fails_the_pool_start() {
    let _watchdog = common::watchdog();
    let host = CountingHost(Arc::new(Counts {
        fail: Some(1),
        ..Counts::default()
    }));
    let error = PoolBuilder::new(layout)
        .host(host.clone())
        .shards(3)
        .thread_name("custom")
        .build()
        .unwrap_err();
    assert!(
        matches!(&error, PoolError::Runtime { shard: 1, error } if error.to_string() == "no runtime for this shard"),
        "{error:?}"
    );
    assert!(error.to_string().contains("host runtime"), "{error}");
    // The shards that did start were stopped and joined before `build` returned.
    assert_eq!(host.0.built.load(Ordering::SeqCst), 2);
    assert_eq!(host.0.blocked_on.load(Ordering::SeqCst), 2);
}
