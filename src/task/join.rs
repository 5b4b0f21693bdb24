//! `JoinHandle`: awaits a task's result, aborts it, or detaches it when dropped.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use super::cell::TaskHandle;
use super::future::TaskOutput;
use super::TaskMeta;
use crate::error::JoinError;

type Inner<T> = TaskHandle<TaskOutput<T>>;

/// An owned permission to await a spawned task's result.
///
/// Awaiting it gives `Ok(output)`, `Err(JoinError::Cancelled)` when the task was aborted
/// or the executor shut down first, or `Err(JoinError::Panic(..))` when the task panicked
/// and the executor catches task panics, or when the task's future panicked while it was
/// dropped for a cancellation (see [`JoinError`]). Dropping the handle detaches the task:
/// it keeps running and its output (or such a panic's payload) is dropped.
///
/// An output nobody takes (the handle was dropped before or after the task finished)
/// is dropped by the executor or by `drop(handle)`; a panic in its `Drop` is then
/// caught and discarded, as tokio does, rather than aborting the process.
///
/// The task runs only while a run loop of its executor runs
/// ([`Executor::run`](crate::Executor::run) or
/// [`run_until`](crate::Executor::run_until), polled by the host). Awaiting the handle
/// anywhere else, with no such loop polled, waits for good, as awaiting a tokio
/// `JoinHandle` of a `LocalSet` that nobody drives does. Await it inside the future
/// given to `run_until`, or inside another task.
///
/// Under the default [`with_panic_on_task_panic(true)`](crate::ExecutorBuilder::with_panic_on_task_panic),
/// a task's panic leaves `run`/`run_until`, and the task's own handle then resolves
/// [`JoinError::Cancelled`].
///
/// ```rust
/// use clockworker::ExecutorBuilder;
///
/// let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
/// let queue = executor.queue(0).unwrap();
/// let (sender, receiver) = std::sync::mpsc::channel();
/// // Dropping a handle detaches its task: it still runs.
/// drop(queue.spawn(async move { sender.send("detached task ran").unwrap() }));
/// let answer = queue.spawn(async { 40 + 2 });
/// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// // Awaiting a handle gives the task's output, or a `JoinError`.
/// assert_eq!(runtime.block_on(executor.run_until(answer)).unwrap(), 42);
/// assert_eq!(receiver.try_recv(), Ok("detached task ran"));
/// ```
pub struct JoinHandle<T> {
    /// `None` once the result was taken, or when the spawn was refused.
    task: Option<Inner<T>>,
}

impl<T> JoinHandle<T> {
    pub(crate) fn new(task: Inner<T>) -> Self {
        JoinHandle { task: Some(task) }
    }

    /// A handle for a spawn that was refused because the executor is shut down.
    pub(crate) fn cancelled() -> Self {
        JoinHandle { task: None }
    }

    fn meta(&self) -> Option<&TaskMeta> {
        Some(self.task.as_ref()?.metadata())
    }

    /// Cancels the task, as tokio's `JoinHandle::abort` does: the task is not polled
    /// again; the run loop drops its future on the executor's thread at its next turn
    /// (also when the task is parked on I/O or a timer), and only then does the handle
    /// resolve to [`JoinError::Cancelled`] and [`is_finished`](Self::is_finished) turn
    /// true. Callable from any thread. No effect on a task that already finished: its
    /// result stays available.
    ///
    /// Should the future's `Drop` panic, the handle resolves [`JoinError::Panic`] with
    /// that payload instead, the task counts as panicked in the queue's stats, and the
    /// run loop carries on: the panic is not re-raised out of `run`/`run_until`, even
    /// with the default `with_panic_on_task_panic(true)`.
    ///
    /// ```rust
    /// use clockworker::{yield_now, ExecutorBuilder};
    ///
    /// let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    /// let queue = executor.queue(0).unwrap();
    /// let stuck = queue.spawn(std::future::pending::<u32>());
    /// let quick = queue.spawn(async { 7 });
    /// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// let (stuck, quick) = runtime.block_on(executor.run_until(async move {
    ///     while !quick.is_finished() {
    ///         yield_now().await;
    ///     }
    ///     stuck.abort(); // its future is dropped at the run loop's next turn
    ///     quick.abort(); // no effect: it already finished
    ///     (stuck.await, quick.await)
    /// }));
    /// assert!(stuck.unwrap_err().is_cancelled());
    /// assert_eq!(quick.unwrap(), 7);
    /// ```
    pub fn abort(&self) {
        let (Some(task), Some(meta)) = (self.task.as_ref(), self.meta()) else {
            return;
        };
        if task.is_finished() || meta.aborted.swap(true, Ordering::AcqRel) {
            return;
        }
        meta.inbox.request_abort(meta.registry_key as usize);
    }

    /// Why a task ended without a value: its poll panicked, or it was cancelled and its
    /// future panicked while being dropped (the payload is in `TaskMeta::drop_panic`),
    /// or it was cancelled.
    #[cold]
    #[inline(never)]
    fn closed_error(&self) -> JoinError {
        match self.meta().and_then(|meta| meta.drop_panic.take()) {
            Some(payload) => JoinError::Panic(payload),
            None => JoinError::Cancelled,
        }
    }

    /// True once the task completed, panicked or was cancelled (its future is gone).
    ///
    /// ```rust
    /// use clockworker::{yield_now, ExecutorBuilder};
    ///
    /// let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    /// let task = executor.queue(0).unwrap().spawn(async { "done" });
    /// assert!(!task.is_finished()); // the executor has not run yet
    /// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// runtime.block_on(executor.run_until(async {
    ///     while !task.is_finished() {
    ///         yield_now().await;
    ///     }
    /// }));
    /// // The output waits in the handle until it is awaited.
    /// assert_eq!(runtime.block_on(task).unwrap(), "done");
    /// ```
    pub fn is_finished(&self) -> bool {
        self.task.as_ref().is_none_or(|task| task.is_finished())
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let Some(task) = this.task.as_mut() else {
            return Poll::Ready(Err(JoinError::Cancelled));
        };
        let result = match task.poll_output(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Some(output)) => match output.into_output() {
                Some(value) => Ok(value),
                // The poll panicked: the payload waits in the panic slot.
                None => Err(this.closed_error()),
            },
            // Closed without an output: cancelled, unless dropping the future panicked.
            Poll::Ready(None) => Err(this.closed_error()),
        };
        this.task = None;
        Poll::Ready(result)
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        if let Some(meta) = self.meta() {
            // No one will take a payload the future's `Drop` may leave (see `PanicSlot`).
            meta.drop_panic.detach();
        }
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}
