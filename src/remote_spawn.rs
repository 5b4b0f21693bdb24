//! `RemoteSpawner`: spawn `Send` futures onto an executor's queues from any thread.
//!
//! A remote spawn is a job (the future, boxed, and the queue index) pushed into a
//! lock-free queue; the caller's thread then notifies the host through the same
//! handshake as cross-thread wakes. The run loop drains the jobs between polls and
//! spawns each one locally; the local `JoinHandle` (which is `Send` for `Send`
//! outputs) travels back to the caller's `RemoteJoinHandle` through a small slot.
//!
//! No job is lost: shutdown closes the job queue first (later spawns get
//! `SpawnError::ShuttingDown`), then drops the jobs still queued on the executor
//! thread, which resolves their handles to `Cancelled`.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use crate::error::{JoinError, SpawnError};
use crate::inbox::{Inbox, Job};
use crate::schedule::{spawn, with_local_core};
use crate::task::{JoinHandle, TaskRef};

/// Spawns `Send` futures onto an executor's queues from any thread.
///
/// Obtained from [`Executor::remote`](crate::Executor::remote); `Send + Sync + Clone`.
/// The executor must be running (`run`/`run_until` polled by its host) for the
/// tasks to start.
///
/// ```rust
/// use clockworker::ExecutorBuilder;
///
/// let executor = ExecutorBuilder::new().with_queue("io", 1).build().unwrap();
/// let remote = executor.remote();
/// let (done_sender, done) = tokio::sync::oneshot::channel();
/// let worker = std::thread::spawn(move || {
///     let handle = remote.spawn("io", async { std::thread::current().id() }).unwrap();
///     // Blocks this thread until the executor's thread has run the task.
///     let ran_on = futures_lite::future::block_on(handle).unwrap();
///     done_sender.send(ran_on).unwrap();
/// });
/// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// let ran_on = runtime.block_on(executor.run_until(done)).unwrap();
/// assert_eq!(ran_on, std::thread::current().id()); // the executor's thread
/// worker.join().unwrap();
/// ```
pub struct RemoteSpawner<K> {
    inbox: Arc<Inbox<TaskRef>>,
    index: Arc<HashMap<K, usize>>,
}

impl<K> Clone for RemoteSpawner<K> {
    fn clone(&self) -> Self {
        RemoteSpawner {
            inbox: self.inbox.clone(),
            index: self.index.clone(),
        }
    }
}

impl<K: fmt::Debug> fmt::Debug for RemoteSpawner<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteSpawner")
            .field("queues", &self.index.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl<K: crate::QueueKey> RemoteSpawner<K> {
    pub(crate) fn new(inbox: Arc<Inbox<TaskRef>>, index: HashMap<K, usize>) -> Self {
        RemoteSpawner {
            inbox,
            index: Arc::new(index),
        }
    }

    /// Spawns `future` onto the queue named `key`. Errors: `UnknownQueue`, or
    /// `ShuttingDown` once the executor was shut down or dropped (the future is then
    /// dropped on this thread).
    ///
    /// ```rust
    /// use clockworker::{ExecutorBuilder, SpawnError};
    ///
    /// let executor = ExecutorBuilder::new().with_queue("io", 1).build().unwrap();
    /// let remote = executor.remote();
    /// assert!(matches!(remote.spawn("disk", async {}), Err(SpawnError::UnknownQueue("disk"))));
    /// let handle = remote.spawn("io", async { "done" }).unwrap();
    /// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// assert_eq!(runtime.block_on(executor.run_until(handle)).unwrap(), "done");
    /// drop(executor);
    /// assert!(matches!(remote.spawn("io", async {}), Err(SpawnError::ShuttingDown)));
    /// ```
    pub fn spawn<F>(&self, key: K, future: F) -> Result<RemoteJoinHandle<F::Output>, SpawnError<K>>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let &queue = self.index.get(&key).ok_or(SpawnError::UnknownQueue(key))?;
        let slot = Arc::new(Mutex::new(Slot::Waiting {
            waker: None,
            aborted: false,
        }));
        let delivery = Delivery(slot.clone());
        let executor_id = self.inbox.executor_id();
        // Run by the executor's run loop, on its thread, which is where it finds its
        // core. Should it not (it always does), the delivery is dropped unrun and the
        // handle resolves `Cancelled`.
        let job: Job = Box::new(move || {
            with_local_core(executor_id, |core| {
                delivery.deliver(spawn(core, queue, None, future));
            });
        });
        if self.inbox.push_job(job).is_err() {
            return Err(SpawnError::ShuttingDown);
        }
        Ok(RemoteJoinHandle { slot })
    }
}

/// Where a remote spawn's local `JoinHandle` lands.
enum Slot<T> {
    /// Not spawned yet; `aborted` when `abort` came first.
    Waiting { waker: Option<Waker>, aborted: bool },
    /// Spawned on the executor thread.
    Spawned(JoinHandle<T>),
    /// The result was taken, or the job was dropped unrun (shutdown).
    Done,
}

/// The job's end of the slot: delivers the local handle, or, if the job is dropped
/// without running (shutdown), marks the spawn cancelled and wakes the awaiter.
struct Delivery<T>(Arc<Mutex<Slot<T>>>);

impl<T> Delivery<T> {
    /// Executor thread: hands the local handle over (aborting it if asked to).
    fn deliver(self, handle: JoinHandle<T>) {
        self.settle(Some(handle));
    }

    fn settle(&self, handle: Option<JoinHandle<T>>) {
        let mut guard = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let Slot::Waiting { waker, aborted } = &mut *guard else {
            return;
        };
        let (waker, aborted) = (waker.take(), *aborted);
        *guard = match handle {
            Some(handle) => {
                if aborted {
                    handle.abort();
                }
                Slot::Spawned(handle)
            }
            None => Slot::Done,
        };
        drop(guard);
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl<T> Drop for Delivery<T> {
    fn drop(&mut self) {
        // A no-op after `deliver`; otherwise the job never ran.
        self.settle(None);
    }
}

/// Awaits a remotely spawned task's result from any thread; `Send` when the output
/// is. Resolves like [`JoinHandle`]: `Ok(output)`, `Err(Cancelled)` (aborted, or the
/// executor shut down before or after the task started), or `Err(Panic(..))`.
/// Dropping it detaches the task.
///
/// ```rust
/// use clockworker::ExecutorBuilder;
///
/// let executor = ExecutorBuilder::new().with_queue("io", 1).build().unwrap();
/// let handle = executor.remote().spawn("io", async { 1 }).unwrap();
/// executor.shutdown(); // before the run loop took the task in
/// let result = futures_lite::future::block_on(handle);
/// assert!(result.unwrap_err().is_cancelled());
/// ```
pub struct RemoteJoinHandle<T> {
    slot: Arc<Mutex<Slot<T>>>,
}

impl<T> RemoteJoinHandle<T> {
    /// Cancels the task (before it starts, or as [`JoinHandle::abort`] once it runs).
    ///
    /// ```rust
    /// use clockworker::ExecutorBuilder;
    ///
    /// let executor = ExecutorBuilder::new().with_queue("io", 1).build().unwrap();
    /// let handle = executor.remote().spawn("io", std::future::pending::<()>()).unwrap();
    /// handle.abort(); // before the task even started
    /// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// let result = runtime.block_on(executor.run_until(handle));
    /// assert!(result.unwrap_err().is_cancelled());
    /// ```
    pub fn abort(&self) {
        let mut guard = self
            .slot
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match &mut *guard {
            Slot::Waiting { aborted, .. } => *aborted = true,
            Slot::Spawned(handle) => handle.abort(),
            Slot::Done => {}
        }
    }
}

impl<T> Future for RemoteJoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut guard = self
            .slot
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match &mut *guard {
            Slot::Waiting { waker, .. } => {
                match waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => *waker = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
            Slot::Spawned(handle) => {
                let result = std::task::ready!(Pin::new(handle).poll(cx));
                *guard = Slot::Done;
                Poll::Ready(result)
            }
            Slot::Done => Poll::Ready(Err(JoinError::Cancelled)),
        }
    }
}

impl<T> fmt::Debug for RemoteJoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteJoinHandle").finish_non_exhaustive()
    }
}
