//! `Executor`: the public face of the run loop — `run`, `run_until`, `shutdown`, stats.

#[cfg(feature = "metrics")]
mod metrics;
mod run;

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::future::{poll_fn, Future};
use std::hash::Hash;
use std::pin::pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};

use crate::controller::AttachedController;
use crate::core::{Config, Core};
use crate::eevdf::MAX_WEIGHT;
use crate::error::{SetWeightError, SpawnError};
#[cfg(feature = "metrics")]
use crate::observe::metrics::MetricsExport;
use crate::queue::{group_id, key_labels, QueueHandle, QueueKey};
use crate::ready::Ready;
use crate::remote_spawn::RemoteSpawner;
use crate::schedule::{deregister_local, register_local};
use crate::stats::{ExecutorStats, GroupStats, QueueStats};
use run::MainWake;

/// Source of executor ids, unique in the process.
static NEXT_EXECUTOR_ID: AtomicU64 = AtomicU64::new(1);

/// A single-threaded executor with weighted queues, run inside a host runtime.
///
/// Built by [`ExecutorBuilder`](crate::ExecutorBuilder). It is `!Send` and `!Sync`: it
/// lives on the thread that built it, and its run loop is one future of the host
/// runtime on that thread. Dropping it cancels every task it still holds, as
/// [`shutdown`](Self::shutdown) does (a panic in a future's `Drop` goes to the task's
/// handle; the executor's `Drop` does not panic).
///
/// ```rust
/// use clockworker::ExecutorBuilder;
///
/// let executor = ExecutorBuilder::new().with_queue("work", 1).build().unwrap();
/// let work = executor.queue("work").unwrap();
/// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// let answer = runtime.block_on(executor.run_until(work.spawn(async { 6 * 7 })));
/// assert_eq!(answer.unwrap(), 42);
///
/// // Dropping the executor cancels the tasks it still holds.
/// let stuck = work.spawn(std::future::pending::<()>());
/// drop(executor);
/// assert!(runtime.block_on(stuck).unwrap_err().is_cancelled());
/// ```
///
/// ```compile_fail
/// fn assert_send<T: Send>() {}
/// assert_send::<clockworker::Executor<u8>>();
/// ```
pub struct Executor<K> {
    core: Rc<Core>,
    keys: Vec<K>,
    index: HashMap<K, usize>,
    /// Weight controllers, with the index of the queue each one steers.
    controllers: RefCell<Vec<(usize, AttachedController<K>)>>,
    #[cfg(feature = "metrics")]
    metrics: RefCell<MetricsExport>,
}

impl<K: QueueKey> Executor<K> {
    pub(crate) fn new(
        keys: Vec<K>,
        ready: Ready,
        config: Config,
        controllers: Vec<AttachedController<K>>,
    ) -> Rc<Self> {
        // Tasks keep their queue's index in a `u16` (see `TaskMeta`); the builder
        // refuses more queues with `BuildError::TooManyQueues`.
        debug_assert!(keys.len() <= crate::task::MAX_QUEUES);
        let id = NEXT_EXECUTOR_ID.fetch_add(1, Ordering::Relaxed);
        let core = Rc::new(Core::new(id, ready, key_labels(&keys), config));
        #[cfg(feature = "metrics")]
        let metrics = RefCell::new(MetricsExport::new(id, keys.len()));
        register_local(core.clone());
        let index: HashMap<K, usize> = keys.iter().enumerate().map(|(i, key)| (*key, i)).collect();
        // The builder checked that every controller names a queue.
        let controllers = controllers
            .into_iter()
            .filter_map(|attached| Some((*index.get(&attached.key)?, attached)))
            .collect();
        Rc::new(Executor {
            core,
            keys,
            index,
            controllers: RefCell::new(controllers),
            #[cfg(feature = "metrics")]
            metrics,
        })
    }

    /// A handle that spawns onto the queue named `key`.
    ///
    /// ```rust
    /// use clockworker::{ExecutorBuilder, SpawnError};
    ///
    /// let executor = ExecutorBuilder::new().with_queue("io", 1).build().unwrap();
    /// let io = executor.queue("io").unwrap();
    /// assert_eq!(io.key(), "io");
    /// assert!(matches!(executor.queue("cpu"), Err(SpawnError::UnknownQueue("cpu"))));
    /// ```
    pub fn queue(&self, key: K) -> Result<QueueHandle<K>, SpawnError<K>> {
        match self.index.get(&key) {
            Some(&queue) => Ok(QueueHandle::new(self.core.clone(), queue, key)),
            None => Err(SpawnError::UnknownQueue(key)),
        }
    }

    /// Runs tasks until [`shutdown`](Self::shutdown) is called (from a task, or from
    /// other code on this thread), then returns. Returns at once on a shut-down executor.
    ///
    /// `run` suits a loop that is one task of the host among others, here in a tokio
    /// `LocalSet`:
    ///
    /// ```rust
    /// use clockworker::ExecutorBuilder;
    ///
    /// let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    /// let queue = executor.queue(0).unwrap();
    /// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// let local = tokio::task::LocalSet::new();
    /// local.block_on(&runtime, async {
    ///     let runner = executor.clone();
    ///     let run = tokio::task::spawn_local(async move { runner.run().await });
    ///     assert_eq!(queue.spawn(async { 2 + 2 }).await.unwrap(), 4);
    ///     executor.shutdown(); // from outside the executor's tasks: `run` returns
    ///     run.await.unwrap();
    /// });
    /// assert!(executor.is_shut_down());
    /// ```
    ///
    /// # Panics
    ///
    /// As [`run_until`](Self::run_until): by default a task's panic leaves `run` with
    /// the task's payload, while
    /// [`with_panic_on_task_panic(false)`](crate::ExecutorBuilder::with_panic_on_task_panic)
    /// turns it into a [`JoinError::Panic`](crate::JoinError::Panic) on the task's
    /// handle; and polling `run` while the same executor is already being polled (from
    /// inside one of its own tasks, say) panics:
    ///
    /// ```rust
    /// use clockworker::ExecutorBuilder;
    /// use std::panic::{catch_unwind, AssertUnwindSafe};
    ///
    /// let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    /// let same = executor.clone();
    /// // A task that runs its own executor: that poll panics, and (by default) the
    /// // task's panic leaves the outer `run`.
    /// executor.queue(0).unwrap().spawn(async move { same.run().await });
    /// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// let payload = catch_unwind(AssertUnwindSafe(|| runtime.block_on(executor.run())));
    /// let message = *payload.unwrap_err().downcast::<&str>().unwrap();
    /// assert!(message.contains("already running"));
    /// ```
    pub async fn run(&self) {
        let never_woken = AtomicBool::new(false);
        poll_fn(|cx| {
            self.turn(cx, &never_woken, |_| {
                if self.core.is_shut_down() {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            })
        })
        .await
    }

    /// Runs tasks while driving `future`, and returns its output as soon as it
    /// completes. Tasks still pending stay in their queues and resume on the next
    /// `run`/`run_until`.
    ///
    /// ```rust
    /// use clockworker::ExecutorBuilder;
    ///
    /// let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    /// let (sender, receiver) = tokio::sync::oneshot::channel();
    /// let waiter = executor.queue(0).unwrap().spawn(async move { receiver.await.unwrap() + 1 });
    /// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// // Returns as soon as its own future is done; `waiter` is still pending.
    /// assert_eq!(runtime.block_on(executor.run_until(async { "done" })), "done");
    /// assert!(!waiter.is_finished());
    /// sender.send(41).unwrap();
    /// // The next run picks `waiter` up again.
    /// assert_eq!(runtime.block_on(executor.run_until(waiter)).unwrap(), 42);
    /// ```
    ///
    /// `future` runs on the executor's thread between task polls. Once woken, it is
    /// polled at the next poll boundary if it was last polled 20 µs ago or more;
    /// otherwise when 20 µs have passed or 32 task polls have run since its last poll,
    /// whichever comes first (and whenever no task is ready, or the loop returns to the
    /// host). A future woken now and then (a dispatcher receiving requests) is polled
    /// right after the poll in progress; one woken again and again (joining thousands
    /// of short tasks) finds a batch of them done at each poll, instead of being polled
    /// after every one. tokio's `block_on` and `LocalSet::run_until` batch the same
    /// way, by 61 tasks.
    ///
    /// ```rust
    /// use clockworker::ExecutorBuilder;
    ///
    /// let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    /// let queue = executor.queue(0).unwrap();
    /// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// let sum: u64 = runtime.block_on(executor.run_until(async {
    ///     let handles: Vec<_> = (0..1_000u64).map(|i| queue.spawn(async move { i })).collect();
    ///     let mut sum = 0;
    ///     for handle in handles {
    ///         sum += handle.await.unwrap();
    ///     }
    ///     sum
    /// }));
    /// assert_eq!(sum, 499_500);
    /// ```
    ///
    /// # Panics
    ///
    /// By default
    /// ([`with_panic_on_task_panic(true)`](crate::ExecutorBuilder::with_panic_on_task_panic))
    /// a task's panic is not caught: it leaves `run_until` with the task's own payload,
    /// and the task's handle resolves [`JoinError::Cancelled`](crate::JoinError::Cancelled).
    /// With `with_panic_on_task_panic(false)` the run loop catches it and carries on,
    /// and the task's handle resolves [`JoinError::Panic`](crate::JoinError::Panic)
    /// with the payload. (A panic in a future's `Drop` during a cancellation never
    /// leaves `run_until`: see [`shutdown`](Self::shutdown).)
    ///
    /// `run_until` also panics when polled while the same executor is already being
    /// polled: called from inside one of its own tasks, or from inside the future
    /// another `run`/`run_until` of the same executor is driving. Running a *different*
    /// executor there is fine: executors nest.
    ///
    /// ```rust
    /// use clockworker::ExecutorBuilder;
    /// use std::panic::{catch_unwind, AssertUnwindSafe};
    ///
    /// let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    /// let task = executor.queue(0).unwrap().spawn(async { panic!("disk full") });
    /// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// // The task's panic unwinds out of `run_until`, with its payload.
    /// let payload = catch_unwind(AssertUnwindSafe(|| {
    ///     runtime.block_on(executor.run_until(std::future::pending::<()>()))
    /// }))
    /// .unwrap_err();
    /// assert_eq!(payload.downcast_ref::<&str>(), Some(&"disk full"));
    /// assert!(runtime.block_on(task).unwrap_err().is_cancelled());
    /// ```
    ///
    /// With `with_panic_on_task_panic(false)`, the same panic goes to the task's handle:
    ///
    /// ```rust
    /// use clockworker::{ExecutorBuilder, JoinError};
    ///
    /// let executor = ExecutorBuilder::new()
    ///     .with_queue(0u8, 1)
    ///     .with_panic_on_task_panic(false)
    ///     .build()
    ///     .unwrap();
    /// let queue = executor.queue(0).unwrap();
    /// let task = queue.spawn(async { panic!("disk full") });
    /// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// let (result, next) = runtime.block_on(executor.run_until(async {
    ///     (task.await, queue.spawn(async { 1 }).await)
    /// }));
    /// match result {
    ///     Err(JoinError::Panic(payload)) => {
    ///         assert_eq!(payload.downcast_ref(), Some(&"disk full"));
    ///     }
    ///     _ => unreachable!("the task panicked"),
    /// }
    /// assert_eq!(next.unwrap(), 1); // the executor kept running
    /// ```
    pub async fn run_until<F: Future>(&self, future: F) -> F::Output {
        let mut future = pin!(future);
        let main = MainWake::new(self.core.inbox().clone());
        let main_waker = Waker::from(main.clone());
        poll_fn(|cx| {
            self.turn(cx, &main.woken, |woken| {
                if !woken {
                    return Poll::Pending;
                }
                future.as_mut().poll(&mut Context::from_waker(&main_waker))
            })
        })
        .await
    }

    /// Stops the executor: new spawns are refused (`try_spawn` errs, `spawn` returns a
    /// handle that resolves `Cancelled`), every task not yet finished is cancelled (its
    /// future dropped on this thread, its handle resolving `Cancelled`), and `run`
    /// returns. Called from inside a task, the cancellation happens right after that
    /// task's poll. Idempotent.
    ///
    /// A future whose `Drop` panics during the cancellation does not stop it, and the
    /// panic leaves neither `shutdown` nor `run`, whatever
    /// [`with_panic_on_task_panic`](crate::ExecutorBuilder::with_panic_on_task_panic)
    /// says: its handle resolves [`JoinError::Panic`](crate::JoinError) with the payload
    /// (dropped here if the handle is gone), the task counts as panicked, and every
    /// other task is still cancelled. The same holds when the executor is dropped.
    ///
    /// ```rust
    /// use clockworker::{ExecutorBuilder, SpawnError};
    ///
    /// let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    /// let queue = executor.queue(0).unwrap();
    /// let forever = queue.spawn(std::future::pending::<()>());
    /// let stopper = executor.clone();
    /// queue.spawn(async move { stopper.shutdown() });
    /// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// runtime.block_on(executor.run()); // returns once a task called `shutdown`
    /// assert!(runtime.block_on(forever).unwrap_err().is_cancelled());
    /// assert!(matches!(queue.try_spawn(async {}), Err(SpawnError::ShuttingDown)));
    /// ```
    pub fn shutdown(&self) {
        self.core.shutdown();
    }

    /// Changes a queue's weight from the next queue choice on. The queue's lag is
    /// rescaled (as Linux does on reweight), so the change brings neither a burst of
    /// service nor a penalty.
    ///
    /// ```rust
    /// use clockworker::{ExecutorBuilder, SetWeightError};
    ///
    /// let executor = ExecutorBuilder::new().with_queue("bulk", 1).build().unwrap();
    /// executor.set_weight("bulk", 4).unwrap();
    /// assert_eq!(executor.queue_stats("bulk").unwrap().weight, 4);
    /// assert!(matches!(executor.set_weight("bulk", 0), Err(SetWeightError::ZeroWeight("bulk"))));
    /// assert!(matches!(executor.set_weight("web", 2), Err(SetWeightError::UnknownQueue("web"))));
    /// ```
    pub fn set_weight(&self, key: K, weight: u32) -> Result<(), SetWeightError<K>> {
        let &queue = self
            .index
            .get(&key)
            .ok_or(SetWeightError::UnknownQueue(key))?;
        if weight == 0 {
            return Err(SetWeightError::ZeroWeight(key));
        }
        if weight > MAX_WEIGHT {
            return Err(SetWeightError::WeightTooLarge { key, weight });
        }
        self.core.set_weight(queue, weight);
        Ok(())
    }

    /// A `Send + Sync` spawner for other threads: spawns `Send` futures onto this
    /// executor's queues (see [`RemoteSpawner`]).
    ///
    /// ```rust
    /// use clockworker::ExecutorBuilder;
    ///
    /// let executor = ExecutorBuilder::new().with_queue("io", 1).build().unwrap();
    /// let remote = executor.remote();
    /// let handle = std::thread::spawn(move || remote.spawn("io", async { 6 * 7 }).unwrap())
    ///     .join()
    ///     .unwrap();
    /// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// assert_eq!(runtime.block_on(executor.run_until(handle)).unwrap(), 42);
    /// ```
    pub fn remote(&self) -> RemoteSpawner<K> {
        RemoteSpawner::new(self.core.inbox().clone(), self.index.clone())
    }

    /// True once [`shutdown`](Self::shutdown) was called.
    ///
    /// ```rust
    /// use clockworker::ExecutorBuilder;
    ///
    /// let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    /// assert!(!executor.is_shut_down());
    /// executor.shutdown();
    /// executor.shutdown(); // idempotent
    /// assert!(executor.is_shut_down());
    /// ```
    pub fn is_shut_down(&self) -> bool {
        self.core.is_shut_down()
    }

    /// Executor-wide statistics.
    ///
    /// ```rust
    /// use clockworker::ExecutorBuilder;
    ///
    /// let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    /// let queue = executor.queue(0).unwrap();
    /// let tasks: Vec<_> = (0..3).map(|i| queue.spawn(async move { i })).collect();
    /// assert_eq!(executor.stats().live_tasks, 3);
    /// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// runtime.block_on(executor.run_until(async {
    ///     for task in tasks {
    ///         task.await.unwrap();
    ///     }
    /// }));
    /// let stats = executor.stats();
    /// assert_eq!((stats.polls, stats.live_tasks), (3, 0));
    /// ```
    pub fn stats(&self) -> ExecutorStats {
        self.core.executor_stats()
    }

    /// Statistics of the queue named `key`, or `None` when there is no such queue.
    ///
    /// ```rust
    /// use clockworker::ExecutorBuilder;
    ///
    /// let executor = ExecutorBuilder::new()
    ///     .with_queue("fast", 2)
    ///     .with_queue("slow", 1)
    ///     .build()
    ///     .unwrap();
    /// let task = executor.queue("fast").unwrap().spawn(async {});
    /// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// runtime.block_on(executor.run_until(task)).unwrap();
    /// let fast = executor.queue_stats("fast").unwrap();
    /// assert_eq!((fast.weight, fast.spawned, fast.completed), (2, 1, 1));
    /// assert_eq!(executor.queue_stats("slow").unwrap().polls, 0);
    /// assert!(executor.queue_stats("missing").is_none());
    /// ```
    pub fn queue_stats(&self, key: K) -> Option<QueueStats<K>> {
        let &queue = self.index.get(&key)?;
        Some(self.core.queue_stats(queue, key))
    }

    /// The figures of group `group` of the queue named `key` (see [`GroupStats`]), or
    /// `None` when there is no such queue, or the group is not alive: no task of it
    /// and no handle from [`QueueHandle::group`] exists.
    ///
    /// ```rust
    /// use clockworker::ExecutorBuilder;
    ///
    /// let executor = ExecutorBuilder::new().with_queue("api", 1).build().unwrap();
    /// let tenant = executor.queue("api").unwrap().group(7);
    /// let task = tenant.spawn(async { 1 });
    /// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// runtime.block_on(executor.run_until(task)).unwrap();
    /// assert_eq!(executor.group_stats("api", 7).unwrap().completed, 1);
    /// drop(tenant); // the group's last handle: its account goes
    /// assert!(executor.group_stats("api", 7).is_none());
    /// ```
    pub fn group_stats(&self, key: K, group: impl Hash) -> Option<GroupStats<K>> {
        let &queue = self.index.get(&key)?;
        let account = self.core.find_group(queue, group_id(group))?;
        Some(account.stats(key))
    }

    /// The keys of all queues, in the order they were added.
    ///
    /// ```rust
    /// use clockworker::ExecutorBuilder;
    ///
    /// let executor = ExecutorBuilder::new()
    ///     .with_queue(3u8, 1)
    ///     .with_queue(1, 1)
    ///     .with_queue(2, 1)
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(executor.queue_keys(), [3, 1, 2]); // not sorted
    /// ```
    pub fn queue_keys(&self) -> &[K] {
        &self.keys
    }
}

impl<K> Drop for Executor<K> {
    fn drop(&mut self) {
        self.core.shutdown();
        deregister_local(self.core.id());
        // Wakes from other threads that arrive from now on find the executor gone.
        self.core.inbox().close_tasks();
    }
}

impl<K: fmt::Debug> fmt::Debug for Executor<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Executor")
            .field("queues", &self.keys)
            .field("shut_down", &self.core.is_shut_down())
            .finish()
    }
}
