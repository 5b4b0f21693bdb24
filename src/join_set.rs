//! [`JoinSet`]: a set of tasks whose results are awaited in the order they finish.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use slab::Slab;

use crate::context;
use crate::error::JoinError;
use crate::queue::{QueueHandle, QueueKey};
use crate::task::JoinHandle;

/// A set of tasks on this thread's executor, awaited in the order they finish, as
/// tokio's `JoinSet`.
///
/// - [`spawn`](Self::spawn) adds a task on the caller's queue and group (as
///   [`clockworker::spawn`](crate::spawn)); [`spawn_on`](Self::spawn_on) on a given
///   queue handle (and its group).
/// - [`join_next`](Self::join_next) gives the result of the next task to finish:
///   its output, [`JoinError::Cancelled`] or [`JoinError::Panic`]; `None` once the set
///   is empty.
/// - [`abort_all`](Self::abort_all) cancels every task still in the set; they stay
///   in it until joined (each then gives `Cancelled`, unless it finished first).
/// - Dropping the set aborts every task still in it.
///
/// Every task spawned through the set is reported exactly once by `join_next`, also
/// one refused because the executor was shut down (it gives `Cancelled`).
///
/// A `JoinSet` belongs to the thread of its executor (it is `!Send`), like the tasks'
/// futures. The tasks run only while that executor's run loop runs: awaiting
/// `join_next` from outside the executor, with no `run`/`run_until` polled, waits for
/// good.
///
/// # Examples
///
/// ```rust
/// use clockworker::{yield_now, ExecutorBuilder, JoinSet};
///
/// let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
/// let queue = executor.queue(0).unwrap();
/// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// let order = runtime.block_on(executor.run_until(async {
///     let mut set = JoinSet::new();
///     for (id, yields) in [(1, 30), (2, 0), (3, 10)] {
///         set.spawn_on(&queue, async move {
///             for _ in 0..yields {
///                 yield_now().await;
///             }
///             id
///         });
///     }
///     let mut order = Vec::new();
///     while let Some(result) = set.join_next().await {
///         order.push(result.unwrap());
///     }
///     order
/// }));
/// assert_eq!(order, [2, 3, 1]); // in the order they finished
/// ```
pub struct JoinSet<T> {
    /// The tasks not yet joined, each with its spawn number.
    tasks: Slab<(u64, JoinHandle<T>)>,
    finished: Rc<Finished>,
    next_id: u64,
}

/// What the tasks of one set tell it: which of them finished, and whom to wake.
#[derive(Default)]
struct Finished {
    /// `(slab key, spawn number)` of tasks whose future is gone (completed, panicked or
    /// dropped), in that order. The spawn number tells a stale entry (its key reused
    /// by a later task) from a current one.
    tasks: RefCell<VecDeque<(usize, u64)>>,
    waker: Cell<Option<Waker>>,
}

/// Lives inside a task's future; when the future goes away, for whatever reason, it
/// tells the set.
struct Notify {
    finished: Rc<Finished>,
    key: usize,
    id: u64,
}

impl Drop for Notify {
    fn drop(&mut self) {
        if let Ok(mut tasks) = self.finished.tasks.try_borrow_mut() {
            tasks.push_back((self.key, self.id));
        }
        if let Some(waker) = self.finished.waker.take() {
            waker.wake();
        }
    }
}

impl<T: 'static> JoinSet<T> {
    /// An empty set.
    ///
    /// ```rust
    /// let set = clockworker::JoinSet::<u32>::new();
    /// assert!(set.is_empty());
    /// ```
    pub fn new() -> Self {
        JoinSet {
            tasks: Slab::new(),
            finished: Rc::new(Finished::default()),
            next_id: 0,
        }
    }

    /// Spawns `future` on the queue and group of the calling task, as
    /// [`clockworker::spawn`](crate::spawn), and adds it to the set. Returns nothing:
    /// the result comes from [`join_next`](Self::join_next).
    ///
    /// # Panics
    ///
    /// Outside a task of a clockworker executor (the future driven by
    /// [`Executor::run_until`](crate::Executor::run_until) included), as
    /// [`clockworker::spawn`](crate::spawn); use [`spawn_on`](Self::spawn_on) there.
    ///
    /// ```rust
    /// use clockworker::{ExecutorBuilder, JoinSet};
    ///
    /// let executor = ExecutorBuilder::new().with_queue("bg", 1).build().unwrap();
    /// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// let parent = executor.queue("bg").unwrap().spawn(async {
    ///     let mut set = JoinSet::new();
    ///     for i in 1..=3u64 {
    ///         set.spawn(async move { i * i });
    ///     }
    ///     let mut sum = 0;
    ///     while let Some(square) = set.join_next().await {
    ///         sum += square.unwrap();
    ///     }
    ///     sum
    /// });
    /// assert_eq!(runtime.block_on(executor.run_until(parent)).unwrap(), 14);
    /// assert_eq!(executor.queue_stats("bg").unwrap().completed, 4);
    /// ```
    #[track_caller]
    pub fn spawn<F>(&mut self, future: F)
    where
        F: Future<Output = T> + 'static,
    {
        self.insert(|future| context::spawn(future), future);
    }

    /// Spawns `future` through `queue` (on its queue, and in its group if it has one)
    /// and adds it to the set.
    ///
    /// ```rust
    /// use clockworker::{ExecutorBuilder, JoinSet};
    ///
    /// let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    /// let queue = executor.queue(0).unwrap();
    /// let mut set = JoinSet::new();
    /// set.spawn_on(&queue, async { "done" });
    /// assert_eq!(set.len(), 1);
    /// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// let result = runtime.block_on(executor.run_until(set.join_next()));
    /// assert_eq!(result.unwrap().unwrap(), "done");
    /// assert!(set.is_empty());
    /// ```
    pub fn spawn_on<K, F>(&mut self, queue: &QueueHandle<K>, future: F)
    where
        K: QueueKey,
        F: Future<Output = T> + 'static,
    {
        self.insert(|future| queue.spawn(future), future);
    }

    /// Wraps `future` so that its end is reported, spawns it with `spawn`, and keeps
    /// the handle.
    #[track_caller]
    fn insert<F, S>(&mut self, spawn: S, future: F)
    where
        F: Future<Output = T> + 'static,
        S: FnOnce(Tracked<F>) -> JoinHandle<T>,
    {
        let key = self.tasks.vacant_key();
        let id = self.next_id;
        self.next_id += 1;
        let notify = Notify {
            finished: self.finished.clone(),
            key,
            id,
        };
        let handle = spawn(Tracked {
            future,
            _notify: notify,
        });
        let inserted = self.tasks.insert((id, handle));
        debug_assert_eq!(inserted, key, "nothing else inserts meanwhile");
    }

    /// Waits for the next task of the set to finish and gives its result; `None` when
    /// the set is empty. Results come in the order the tasks finished.
    ///
    /// Cancel-safe: dropping the returned future before it completes loses no result.
    ///
    /// ```rust
    /// use clockworker::{ExecutorBuilder, JoinError, JoinSet};
    ///
    /// let executor = ExecutorBuilder::new()
    ///     .with_queue(0u8, 1)
    ///     .with_panic_on_task_panic(false)
    ///     .build()
    ///     .unwrap();
    /// let queue = executor.queue(0).unwrap();
    /// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// runtime.block_on(executor.run_until(async {
    ///     let mut set = JoinSet::new();
    ///     set.spawn_on(&queue, async { panic!("boom") });
    ///     let result: Result<(), JoinError> = set.join_next().await.unwrap();
    ///     assert!(result.unwrap_err().is_panic());
    ///     assert!(set.join_next().await.is_none());
    /// }));
    /// ```
    pub async fn join_next(&mut self) -> Option<Result<T, JoinError>> {
        poll_fn(|cx| self.poll_join_next(cx)).await
    }

    /// Polls for the next task to finish: `Ready(None)` when the set is empty,
    /// `Ready(Some(result))` for a finished task, `Pending` (waking `cx` when one
    /// finishes) otherwise.
    ///
    /// ```rust
    /// use clockworker::JoinSet;
    /// use std::task::{Context, Poll};
    ///
    /// let mut set = JoinSet::<()>::new();
    /// let mut cx = Context::from_waker(std::task::Waker::noop());
    /// assert!(matches!(set.poll_join_next(&mut cx), Poll::Ready(None)));
    /// ```
    pub fn poll_join_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<T, JoinError>>> {
        if self.tasks.is_empty() {
            return Poll::Ready(None);
        }
        // Register first: a task finishing from here on wakes this caller.
        self.finished.waker.set(Some(cx.waker().clone()));
        let reported = self.finished.tasks.borrow().len();
        for _ in 0..reported {
            let Some((key, id)) = self.finished.tasks.borrow_mut().pop_front() else {
                break;
            };
            let Some((current, handle)) = self.tasks.get_mut(key) else {
                continue;
            };
            if *current != id {
                continue;
            }
            match Pin::new(handle).poll(cx) {
                Poll::Ready(result) => {
                    self.tasks.remove(key);
                    return Poll::Ready(Some(result));
                }
                // Its future is gone but its result is not stored yet: the handle now
                // holds this caller's waker; look again at the next poll.
                Poll::Pending => self.finished.tasks.borrow_mut().push_back((key, id)),
            }
        }
        Poll::Pending
    }

    /// The result of a task that has finished, if there is one, without waiting.
    ///
    /// ```rust
    /// use clockworker::{ExecutorBuilder, JoinSet};
    ///
    /// let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    /// let queue = executor.queue(0).unwrap();
    /// let mut set = JoinSet::new();
    /// set.spawn_on(&queue, async { 7 });
    /// assert!(set.try_join_next().is_none()); // not run yet
    /// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// runtime.block_on(executor.run_until(clockworker::yield_now()));
    /// assert_eq!(set.try_join_next().unwrap().unwrap(), 7);
    /// ```
    pub fn try_join_next(&mut self) -> Option<Result<T, JoinError>> {
        let mut cx = Context::from_waker(Waker::noop());
        let result = match self.poll_join_next(&mut cx) {
            Poll::Ready(result) => result,
            Poll::Pending => None,
        };
        // Do not leave the no-op waker registered in place of a real one.
        self.finished.waker.take();
        result
    }

    /// Aborts every task still in the set (see [`JoinHandle::abort`]). They stay in
    /// the set: `join_next` gives each one's result, `Cancelled` unless it finished
    /// first.
    ///
    /// ```rust
    /// use clockworker::{ExecutorBuilder, JoinSet};
    ///
    /// let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    /// let queue = executor.queue(0).unwrap();
    /// let mut set = JoinSet::new();
    /// set.spawn_on(&queue, std::future::pending::<()>());
    /// set.abort_all();
    /// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// let result = runtime.block_on(executor.run_until(set.join_next()));
    /// assert!(result.unwrap().unwrap_err().is_cancelled());
    /// ```
    pub fn abort_all(&mut self) {
        for (_, (_, handle)) in &self.tasks {
            handle.abort();
        }
    }

    /// The number of tasks in the set: spawned and not yet joined.
    ///
    /// ```rust
    /// use clockworker::{ExecutorBuilder, JoinSet};
    ///
    /// let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    /// let mut set = JoinSet::new();
    /// set.spawn_on(&executor.queue(0).unwrap(), async {});
    /// assert_eq!(set.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// True when the set holds no task.
    ///
    /// ```rust
    /// assert!(clockworker::JoinSet::<()>::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }
}

impl<T: 'static> Default for JoinSet<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Drop for JoinSet<T> {
    /// Aborts every task still in the set.
    fn drop(&mut self) {
        for (_, (_, handle)) in &self.tasks {
            handle.abort();
        }
    }
}

impl<T> fmt::Debug for JoinSet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinSet")
            .field("len", &self.tasks.len())
            .finish()
    }
}

pin_project_lite::pin_project! {
    /// A task's future inside a set: the user's future and the guard that reports its
    /// end when it is dropped (completed, panicked or cancelled).
    struct Tracked<F> {
        #[pin]
        future: F,
        _notify: Notify,
    }
}

impl<F: Future> Future for Tracked<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.project().future.poll(cx)
    }
}
