//! The part of an executor other threads may touch: the inbox of tasks woken
//! elsewhere, and the handshake that wakes the host runtime's task.
//!
//! Handshake: a waker pushes into `inbox`, then swaps `notified` to true and wakes the
//! host only if it was false. The run loop swaps `notified` back to false *before* it
//! drains the inbox. Both sides use read-modify-write on `notified`, so either the
//! pusher sees `false` (and wakes the host, which will poll the loop again), or the
//! loop's swap reads the pusher's `true` and therefore sees its push when draining.
//! No wake is lost and at most one host wake is issued per loop turn.

use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Waker;

use atomic_waker::AtomicWaker;
use concurrent_queue::ConcurrentQueue;

use crate::task::Runnable;

/// Cross-thread side of an executor.
pub(crate) struct Remote {
    /// Identifies the executor on its own thread (see `task::schedule`).
    pub(crate) executor_id: u64,
    inbox: ConcurrentQueue<Runnable>,
    /// Registry keys of tasks whose `JoinHandle::abort` was called (from any thread).
    aborts: ConcurrentQueue<usize>,
    notified: AtomicBool,
    host: AtomicWaker,
}

impl Remote {
    pub(crate) fn new(executor_id: u64) -> Self {
        Remote {
            executor_id,
            inbox: ConcurrentQueue::unbounded(),
            aborts: ConcurrentQueue::unbounded(),
            notified: AtomicBool::new(false),
            host: AtomicWaker::new(),
        }
    }

    /// Hands a woken task to the executor from any thread.
    pub(crate) fn push(&self, runnable: Runnable) {
        // The inbox is unbounded and never closed while a task exists (shutdown
        // cancels every task before the executor goes away), so this cannot fail.
        if let Err(err) = self.inbox.push(runnable) {
            // Unreachable by construction; keep the task rather than drop it on a
            // foreign thread (async-task would panic). Leaking is the lesser harm.
            std::mem::forget(err.into_inner());
            return;
        }
        self.notify();
    }

    /// Asks the executor to wake the task with registry key `key` so that the run
    /// loop sees its abort flag and drops it.
    pub(crate) fn request_abort(&self, key: usize) {
        // Unbounded and never closed: cannot fail.
        let _ = self.aborts.push(key);
        self.notify();
    }

    /// Takes one abort request.
    pub(crate) fn pop_abort(&self) -> Option<usize> {
        self.aborts.pop().ok()
    }

    /// Makes sure the host polls the run loop soon.
    pub(crate) fn notify(&self) {
        if !self.notified.swap(true, Ordering::AcqRel) {
            self.host.wake();
        }
    }

    /// Run loop side: called before draining. Returns whether anyone notified.
    pub(crate) fn take_notification(&self) -> bool {
        self.notified.swap(false, Ordering::AcqRel)
    }

    /// Cheap check used between polls: has another thread pushed since the last drain?
    pub(crate) fn is_notified(&self) -> bool {
        self.notified.load(Ordering::Relaxed)
    }

    /// Marks the host as already scheduled (the loop is about to wake itself), so
    /// wakes until the next turn do not wake it again.
    pub(crate) fn set_notified(&self) {
        self.notified.store(true, Ordering::Release);
    }

    /// Registers the host task's waker before the loop goes idle.
    pub(crate) fn register_host(&self, waker: &Waker) {
        self.host.register(waker);
    }

    /// Takes one task from the inbox.
    pub(crate) fn pop(&self) -> Option<Runnable> {
        self.inbox.pop().ok()
    }
}
