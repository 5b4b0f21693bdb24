//! Queue keys and `QueueHandle`, the way tasks are spawned onto a queue.

use std::fmt;
use std::future::Future;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::Arc;

use crate::core::Core;
use crate::error::SpawnError;
use crate::schedule::spawn;
use crate::stats::GroupStats;
use crate::task::group::GroupAccount;
use crate::task::JoinHandle;

/// What can name a queue: small copyable values such as integers, enums or
/// `&'static str`. Implemented for every type with these bounds.
///
/// ```rust
/// use clockworker::{Executor, ExecutorBuilder, QueueKey};
/// use std::rc::Rc;
///
/// #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
/// enum Tenant { Free, Paid }
///
/// fn one_queue<K: QueueKey>(key: K) -> Rc<Executor<K>> {
///     ExecutorBuilder::new().with_queue(key, 1).build().unwrap()
/// }
/// assert_eq!(one_queue(Tenant::Paid).queue_keys(), [Tenant::Paid]);
/// assert_eq!(one_queue(7u32).queue_keys(), [7]);
/// assert_eq!(one_queue("api").queue_keys(), ["api"]);
/// ```
pub trait QueueKey: Copy + Eq + std::hash::Hash + fmt::Debug + 'static {}

impl<T: Copy + Eq + std::hash::Hash + fmt::Debug + 'static> QueueKey for T {}

/// Spawns tasks onto one queue of an executor, optionally tagged with a group.
///
/// Cheap to clone; may be kept inside tasks to spawn more work. Not `Send`: tasks are
/// spawned on the executor's thread.
///
/// ```rust
/// use clockworker::ExecutorBuilder;
///
/// let executor = ExecutorBuilder::new().with_queue("work", 1).build().unwrap();
/// let work = executor.queue("work").unwrap();
/// let inner = work.clone();
/// let parent = work.spawn(async move {
///     // A task may keep a handle and spawn more work on the queue.
///     inner.spawn(async { 20 }).await.unwrap() + 1
/// });
/// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// assert_eq!(runtime.block_on(executor.run_until(parent)).unwrap(), 21);
/// assert_eq!(executor.queue_stats("work").unwrap().spawned, 2);
/// ```
pub struct QueueHandle<K> {
    core: Rc<Core>,
    queue: usize,
    key: K,
    group: Option<Arc<GroupAccount>>,
}

impl<K: QueueKey> QueueHandle<K> {
    pub(crate) fn new(core: Rc<Core>, queue: usize, key: K) -> Self {
        QueueHandle {
            core,
            queue,
            key,
            group: None,
        }
    }

    /// The queue's key.
    ///
    /// ```rust
    /// use clockworker::ExecutorBuilder;
    ///
    /// let executor = ExecutorBuilder::new().with_queue("work", 1).build().unwrap();
    /// let work = executor.queue("work").unwrap();
    /// assert_eq!(work.key(), "work");
    /// assert_eq!(work.group("tenant-7").key(), "work"); // same queue
    /// ```
    pub fn key(&self) -> K {
        self.key
    }

    /// A handle on the same queue whose tasks belong to `group` (a tenant, a
    /// connection…). Schedulers that account by group, such as least attained service,
    /// treat the group's tasks as one.
    ///
    /// Handles made with equal `group` values (same hash) share one group:
    ///
    /// ```rust
    /// use clockworker::{scheduler::LAS, ExecutorBuilder};
    /// use std::{cell::RefCell, rc::Rc, time::Duration};
    ///
    /// let executor = ExecutorBuilder::new()
    ///     .with_queue_scheduler(0u8, 1, LAS::new())
    ///     .build()
    ///     .unwrap();
    /// let queue = executor.queue(0).unwrap();
    /// let order = Rc::new(RefCell::new(Vec::new()));
    /// let spawn = |tenant: &'static str, busy_ms: u64| {
    ///     let order = order.clone();
    ///     queue.group(tenant).spawn(async move {
    ///         std::thread::sleep(Duration::from_millis(busy_ms)); // charged to the tenant
    ///         order.borrow_mut().push(tenant);
    ///     })
    /// };
    /// let tasks = [spawn("a", 1), spawn("a", 0), spawn("b", 0)];
    /// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// runtime.block_on(executor.run_until(async { for task in tasks { task.await.unwrap() } }));
    /// // Tenant "a" has been served, so "b" goes ahead of a's second task.
    /// assert_eq!(*order.borrow(), ["a", "b", "a"]);
    /// ```
    pub fn group(&self, group: impl Hash) -> QueueHandle<K> {
        let account = self.core.group_account(self.queue, group_id(group));
        QueueHandle {
            core: self.core.clone(),
            queue: self.queue,
            key: self.key,
            group: Some(account),
        }
    }

    /// Spawns a task. The future may be `!Send`; it runs on the executor's thread.
    ///
    /// Never fails: once the executor is shut down, the future is dropped and the
    /// handle resolves to [`JoinError::Cancelled`](crate::JoinError::Cancelled). Use
    /// [`try_spawn`](Self::try_spawn) to be told instead.
    ///
    /// ```rust
    /// use clockworker::ExecutorBuilder;
    /// use std::rc::Rc;
    ///
    /// let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    /// let queue = executor.queue(0).unwrap();
    /// let shared = Rc::new(5); // `!Send`, and fine in a task
    /// let task = queue.spawn(async move { *shared * 2 });
    /// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// assert_eq!(runtime.block_on(executor.run_until(task)).unwrap(), 10);
    ///
    /// executor.shutdown();
    /// let late = queue.spawn(async { 1 }); // dropped at once
    /// assert!(runtime.block_on(late).unwrap_err().is_cancelled());
    /// ```
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        spawn(&self.core, self.queue, self.group.clone(), future)
    }

    /// Spawns a task, or returns [`SpawnError::ShuttingDown`] (and drops the future)
    /// when the executor no longer takes tasks.
    ///
    /// ```rust
    /// use clockworker::{ExecutorBuilder, SpawnError};
    ///
    /// let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    /// let queue = executor.queue(0).unwrap();
    /// let task = queue.try_spawn(async { "accepted" }).unwrap();
    /// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// assert_eq!(runtime.block_on(executor.run_until(task)).unwrap(), "accepted");
    ///
    /// executor.shutdown();
    /// assert!(matches!(queue.try_spawn(async {}), Err(SpawnError::ShuttingDown)));
    /// ```
    pub fn try_spawn<F>(&self, future: F) -> Result<JoinHandle<F::Output>, SpawnError<K>>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        if self.core.is_shut_down() {
            return Err(SpawnError::ShuttingDown);
        }
        Ok(self.spawn(future))
    }

    /// The figures of this handle's group (see [`GroupStats`]), or `None` for a
    /// handle without a group. The handle keeps the group alive, so its figures keep
    /// counting while it exists.
    ///
    /// ```rust
    /// use clockworker::ExecutorBuilder;
    ///
    /// let executor = ExecutorBuilder::new().with_queue("api", 1).build().unwrap();
    /// let api = executor.queue("api").unwrap();
    /// assert!(api.group_stats().is_none()); // no group
    /// let tenant = api.group("tenant-a");
    /// let task = tenant.spawn(async { clockworker::yield_now().await });
    /// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// runtime.block_on(executor.run_until(task)).unwrap();
    /// let stats = tenant.group_stats().unwrap();
    /// assert_eq!((stats.key, stats.spawned, stats.completed, stats.polls), ("api", 1, 1, 2));
    /// ```
    pub fn group_stats(&self) -> Option<GroupStats<K>> {
        Some(self.group.as_ref()?.stats(self.key))
    }
}

impl<K: Clone> Clone for QueueHandle<K> {
    fn clone(&self) -> Self {
        QueueHandle {
            core: self.core.clone(),
            queue: self.queue,
            key: self.key.clone(),
            group: self.group.clone(),
        }
    }
}

impl<K: fmt::Debug> fmt::Debug for QueueHandle<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueueHandle")
            .field("key", &self.key)
            .field("group", &self.group.as_ref().map(|group| group.id))
            .finish()
    }
}

/// The id of a group: the hash of its key.
pub(crate) fn group_id(group: impl Hash) -> u64 {
    let mut hasher = DefaultHasher::new();
    group.hash(&mut hasher);
    hasher.finish()
}

/// The labels of queue keys, by queue index: each key's `Debug` form, without the
/// quotes a string key's has (`"fg"` → `fg`). A key whose `Debug` panics is labelled
/// by its index (`#2`) instead: a hostile key must not break the run loop.
pub(crate) fn key_labels<K: fmt::Debug>(keys: &[K]) -> Box<[Rc<str>]> {
    keys.iter()
        .enumerate()
        .map(|(index, key)| {
            catch_unwind(AssertUnwindSafe(|| key_label(key)))
                .unwrap_or_else(|payload| {
                    // A payload whose own `Drop` panics is leaked rather than let out.
                    if let Err(nested) = catch_unwind(AssertUnwindSafe(|| drop(payload))) {
                        std::mem::forget(nested);
                    }
                    format!("#{index}")
                })
                .into()
        })
        .collect()
}

fn key_label<K: fmt::Debug>(key: &K) -> String {
    let debug = format!("{key:?}");
    match debug
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
    {
        Some(inner) if !inner.is_empty() => inner.to_owned(),
        _ => debug,
    }
}
