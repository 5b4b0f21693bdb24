//! What other threads hand the run loop: tasks woken elsewhere, abort requests, spawn
//! jobs from [`RemoteSpawner`](crate::RemoteSpawner), and the handshake that wakes the
//! host runtime's task when any of them arrives.
//!
//! Generic over the task type and knowing nothing of the executor, so that the task
//! layer (whose metadata points here) and the loom models can both use it.
//!
//! # The handshake
//!
//! A sender pushes its item, then swaps `notified` to true and wakes the host only if
//! it was false. The run loop swaps `notified` back to false *before* it drains
//! ([`Inbox::drain`]). Both sides use read-modify-write on `notified`, so either the
//! sender sees `false` (and wakes the host, which polls the loop again), or the loop's
//! swap reads the sender's `true` and therefore sees its push when draining. Before the
//! loop goes idle it registers the host's waker and looks at `notified` once more
//! ([`Inbox::park`]). No item is lost, and the host is woken at most once per turn.
//!
//! The loom models in `loom_models.rs` drive these methods over every interleaving
//! (`RUSTFLAGS="--cfg loom" cargo test --release --lib loom`). The atomics come from
//! `crate::sync` so that loom can swap them.

#[cfg(all(test, loom))]
pub(crate) mod loom_models;

use std::task::Waker;

use concurrent_queue::ConcurrentQueue;

use crate::sync::{AtomicBool, AtomicWaker, Ordering};

/// A spawn request from another thread, run on the executor's thread by
/// [`Inbox::drain`]. It finds its executor by itself (see `crate::schedule`); dropping it
/// unrun cancels the spawn visibly.
pub(crate) type Job = Box<dyn FnOnce() + Send>;

/// The cross-thread side of one executor (see the module docs).
pub(crate) struct Inbox<T> {
    /// The executor this inbox belongs to.
    executor_id: u64,
    /// The executor's thread (`crate::thread_id`): the inbox is made there, and the
    /// executor never leaves it.
    owner_thread: u64,
    tasks: ConcurrentQueue<T>,
    /// Registry keys of tasks whose `JoinHandle::abort` was called (from any thread).
    aborts: ConcurrentQueue<usize>,
    jobs: ConcurrentQueue<Job>,
    notified: AtomicBool,
    host: AtomicWaker,
}

impl<T> Inbox<T> {
    pub(crate) fn new(executor_id: u64) -> Self {
        Inbox {
            executor_id,
            owner_thread: crate::thread_id::current(),
            tasks: ConcurrentQueue::unbounded(),
            aborts: ConcurrentQueue::unbounded(),
            jobs: ConcurrentQueue::unbounded(),
            notified: AtomicBool::new(false),
            host: AtomicWaker::new(),
        }
    }

    /// The id of the executor this inbox belongs to.
    pub(crate) fn executor_id(&self) -> u64 {
        self.executor_id
    }

    /// The thread the executor lives on.
    pub(crate) fn owner_thread(&self) -> u64 {
        self.owner_thread
    }

    /// Hands a woken task to the executor, from any thread. Once the executor is gone
    /// ([`close_tasks`](Self::close_tasks)) the task is dropped here instead: a woken
    /// task is only a reference by then (its future was dropped with the executor).
    pub(crate) fn push(&self, task: T) {
        if let Err(refused) = self.tasks.push(task) {
            drop(refused.into_inner());
            return;
        }
        self.notify();
    }

    /// Executor thread, when the executor goes away (after every future was dropped):
    /// refuses further woken tasks and drops the ones waiting, so that no reference to
    /// a task waits here for good (a task's metadata holds this inbox: a cycle).
    pub(crate) fn close_tasks(&self) {
        self.tasks.close();
        while let Ok(task) = self.tasks.pop() {
            drop(task);
        }
    }

    /// Asks the executor to wake the task with registry key `key`, so that the run
    /// loop sees its abort flag and drops it.
    pub(crate) fn request_abort(&self, key: usize) {
        // Unbounded and never closed: cannot fail.
        let _ = self.aborts.push(key);
        self.notify();
    }

    /// Hands a spawn job to the executor; gives it back once the jobs are closed
    /// (the executor shut down).
    pub(crate) fn push_job(&self, job: Job) -> Result<(), Job> {
        self.jobs.push(job).map_err(|err| err.into_inner())?;
        self.notify();
        Ok(())
    }

    /// Executor thread, at shutdown: refuses new jobs and drops the queued ones (each
    /// cancels its spawn).
    pub(crate) fn close_jobs(&self) {
        self.jobs.close();
        while let Ok(job) = self.jobs.pop() {
            drop(job);
        }
    }

    /// Makes sure the host polls the run loop soon.
    pub(crate) fn notify(&self) {
        if !self.notified.swap(true, Ordering::AcqRel) {
            self.host.wake();
        }
    }

    /// Run loop: if anyone notified since the last drain, runs every spawn job, then
    /// hands over every woken task and every abort request, in that order. Returns
    /// whether there was a notification.
    pub(crate) fn drain(&self, mut woken: impl FnMut(T), mut aborted: impl FnMut(usize)) -> bool {
        if !self.notified.swap(false, Ordering::AcqRel) {
            return false;
        }
        if !self.jobs.is_empty() {
            while let Ok(job) = self.jobs.pop() {
                job();
            }
        }
        while let Ok(task) = self.tasks.pop() {
            woken(task);
        }
        while let Ok(key) = self.aborts.pop() {
            aborted(key);
        }
        true
    }

    /// Run loop, with nothing ready: registers the host task's waker, then tells
    /// whether something arrived meanwhile (then drain again instead of going idle).
    /// `#[must_use]`: the loom models drive this re-check, and a caller that dropped
    /// its answer would lose wakes where the models cannot see it.
    #[must_use = "true: something arrived after the last drain; drain again instead of going idle"]
    pub(crate) fn park(&self, host: &Waker) -> bool {
        self.host.register(host);
        self.is_notified()
    }

    /// Cheap check used between polls: has another thread sent something since the
    /// last drain?
    pub(crate) fn is_notified(&self) -> bool {
        self.notified.load(Ordering::Relaxed)
    }

    /// Marks the host as already scheduled (the loop is about to wake itself), so
    /// sends until the next turn do not wake it again.
    pub(crate) fn set_notified(&self) {
        self.notified.store(true, Ordering::Release);
    }

    /// Takes one woken task without the handshake (shutdown empties the inbox).
    pub(crate) fn pop(&self) -> Option<T> {
        self.tasks.pop().ok()
    }
}
