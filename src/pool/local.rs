//! What a task learns about the shard it runs on: [`current_shard`],
//! [`current_executor`], and [`spawn_local`] onto the shard's own executor.

use std::any::Any;
use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;

use super::PoolSpawnError;
use crate::error::SpawnError;
use crate::executor::Executor;
use crate::queue::QueueKey;
use crate::task::JoinHandle;

thread_local! {
    /// The shard running on this thread: its index and its executor (an
    /// `Rc<Executor<K>>`, typed at run time since the key type is generic).
    static CURRENT_SHARD: RefCell<Option<(usize, Rc<dyn Any>)>> = const { RefCell::new(None) };
}

/// Marks the calling thread as shard `index` running `executor`, until the returned
/// guard is dropped (also when a task panic unwinds).
pub(super) fn enter<K: QueueKey>(index: usize, executor: Rc<Executor<K>>) -> CurrentShardGuard {
    CURRENT_SHARD.with(|current| {
        *current.borrow_mut() = Some((index, executor as Rc<dyn Any>));
    });
    CurrentShardGuard(())
}

/// Clears the calling thread's shard when dropped.
pub(super) struct CurrentShardGuard(());

impl Drop for CurrentShardGuard {
    fn drop(&mut self) {
        let previous = CURRENT_SHARD.try_with(|current| current.borrow_mut().take());
        drop(previous);
    }
}

/// The index of the pool shard running on this thread, if any.
///
/// ```rust
/// use clockworker::pool::{current_shard, PoolBuilder};
/// use clockworker::ExecutorBuilder;
///
/// let pool = PoolBuilder::new(|_| ExecutorBuilder::new().with_queue(0u8, 1))
///     .shards(2)
///     .build()
///     .unwrap();
/// let on_shard = pool.spawn_on(1, 0, async { current_shard() }).unwrap();
/// assert_eq!(futures_lite::future::block_on(on_shard).unwrap(), Some(1));
/// assert_eq!(current_shard(), None); // this thread is no shard
/// # pool.shutdown().unwrap();
/// ```
pub fn current_shard() -> Option<usize> {
    CURRENT_SHARD
        .try_with(|current| current.borrow().as_ref().map(|(index, _)| *index))
        .ok()
        .flatten()
}

/// The executor of the pool shard running on this thread, if any and if its key type
/// is `K`. Tasks use it to reach their shard's queues, stats and weights.
///
/// Hold it (or the [`QueueHandle`](crate::QueueHandle)s it gives) only in `!Send`
/// tasks; a task spawned through the pool must drop it before its next `.await`.
///
/// ```rust
/// use clockworker::pool::{current_executor, PoolBuilder};
/// use clockworker::ExecutorBuilder;
///
/// let pool = PoolBuilder::new(|_| {
///     ExecutorBuilder::new().with_queue("requests", 8).with_queue("background", 1)
/// })
/// .shards(1)
/// .build()
/// .unwrap();
/// let weight = pool.spawn("requests", async {
///     // The `Rc<Executor>` is dropped at the end of the statement, before any `.await`.
///     let executor = current_executor::<&str>().expect("on a shard, with &str keys");
///     executor.set_weight("background", 2).unwrap();
///     executor.queue_stats("background").unwrap().weight
/// });
/// assert_eq!(futures_lite::future::block_on(weight.unwrap()).unwrap(), 2);
/// # pool.shutdown().unwrap();
/// ```
pub fn current_executor<K: QueueKey>() -> Option<Rc<Executor<K>>> {
    CURRENT_SHARD
        .try_with(|current| {
            let current = current.borrow();
            let (_, executor) = current.as_ref()?;
            executor.clone().downcast::<Executor<K>>().ok()
        })
        .ok()
        .flatten()
}

/// Spawns a task, whose future may be `!Send`, onto queue `key` of the pool shard
/// running on this thread. Errors: [`PoolSpawnError::NotOnShard`] off a shard thread
/// (or for a key type other than the shard's), `UnknownQueue`, `ShutDown`.
///
/// ```rust
/// use clockworker::pool::{spawn_local, PoolBuilder};
/// use clockworker::ExecutorBuilder;
/// use std::rc::Rc;
///
/// let pool = PoolBuilder::new(|_| ExecutorBuilder::new().with_queue(0u8, 1))
///     .shards(1)
///     .build()
///     .unwrap();
/// let total = pool.spawn(0, async {
///     // A `!Send` future (it holds an `Rc`), kept on this shard.
///     let local = spawn_local(0u8, async {
///         let shared = Rc::new(20);
///         *shared + 1
///     });
///     local.unwrap().await.unwrap() * 2
/// });
/// assert_eq!(futures_lite::future::block_on(total.unwrap()).unwrap(), 42);
/// # pool.shutdown().unwrap();
/// ```
pub fn spawn_local<K, F>(key: K, future: F) -> Result<JoinHandle<F::Output>, PoolSpawnError<K>>
where
    K: QueueKey,
    F: Future + 'static,
    F::Output: 'static,
{
    let executor = current_executor::<K>().ok_or(PoolSpawnError::NotOnShard)?;
    let queue = executor.queue(key).map_err(|error| match error {
        SpawnError::UnknownQueue(key) => PoolSpawnError::UnknownQueue(key),
        _ => PoolSpawnError::ShutDown,
    })?;
    queue
        .try_spawn(future)
        .map_err(|_| PoolSpawnError::ShutDown)
}
