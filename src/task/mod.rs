//! Tasks: one allocation per task (`cell`: header, future, then output),
//! per-task scheduling data in its metadata, the wrapper around the user's future,
//! the join handle, groups and the panic slot.
//!
//! This layer names no executor: a task's wrapper reaches the run loop through
//! [`TaskHooks`], and the spawn and wake path that builds tasks lives above the run
//! loop (`crate::schedule`).
//!
//! Who touches what:
//! - The future is polled and dropped only on the executor's thread.
//! - A waker may be used on any thread. On the executor's thread it pushes the task
//!   straight into its queue's scheduler; elsewhere it goes through the executor's
//!   lock-free inbox (`TaskMeta::inbox`).
//! - Every live task has an entry (a waker) in the executor's task registry, so that
//!   shutdown can reach tasks that are parked on I/O and drop their futures.

pub(crate) mod cell;
mod future;
pub(crate) mod group;
mod hooks;
mod join;
pub(crate) mod panic_slot;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

use crate::inbox::Inbox;
pub(crate) use future::TaskFuture;
use group::GroupAccount;
pub(crate) use hooks::{Ending, PollTime, TaskHooks};
pub use join::JoinHandle;
use panic_slot::PanicSlot;

pub(crate) use cell::{Runnable, TaskRef};

/// `TaskMeta::flags`: the queue's scheduler asks for timing, so `service_ns` is kept.
pub(crate) const BOOK_SERVICE: u8 = 1;
/// `TaskMeta::flags`: the task has a group, whose account books each poll.
pub(crate) const BOOK_GROUP: u8 = 2;
/// `TaskMeta::flags`: the task was never polled, and its polls are not all read: its
/// first poll may end without a clock read when the last first poll the executor
/// measured of a task of the same future type was short (`core::unread_polls`).
/// Cleared by the wrapper after the first poll, on the executor thread.
const FIRST_POLL: u8 = 4;
/// `TaskMeta::flags`: the user's future is gone (it completed or panicked, or its
/// drop began). Set once, on the executor's thread, by the task's wrapper.
pub(crate) const FUTURE_GONE: u8 = 8;
/// The flags that ask a poll to book something (see `TaskMeta::book_poll`).
const BOOKS_AFTER_POLL: u8 = BOOK_SERVICE | BOOK_GROUP;
/// `TaskMeta::flags`: the task's last poll that ended with a clock read was short, so
/// its next poll may end without one (the executor decides; `core::unread_polls`).
/// Written by the wrapper on the executor thread.
const SHORT_POLLS: u8 = 16;
/// `TaskMeta::flags`: every poll of the task ends with a clock read, because its
/// queue's scheduler is told each poll's duration (`Scheduler::observe`). Fixed at
/// spawn.
const READS_EVERY_POLL: u8 = 32;

/// The task's flags as its wrapper reads them for a poll (`TaskMeta::poll_flags`).
pub(crate) struct PollFlags {
    /// The poll books something besides the queue's figures (`book_poll`).
    pub(crate) books: bool,
    /// Every poll ends with a clock read: the task books its polls, or its queue's
    /// scheduler observes them.
    pub(crate) reads_every_poll: bool,
    /// The task's last measured poll was short: this one may end unread.
    pub(crate) was_short: bool,
    /// The task's first poll, of a task whose polls are not all read: it may end
    /// unread when the executor's last measured first poll of the same future type
    /// was short.
    pub(crate) first: bool,
}

/// What the executor keeps about a task, inside the task's own allocation.
///
/// Its size is part of every task's memory (docs/BENCHMARKS.md, "Memory per task"):
/// the queue, the abort flag, the flags and the registry key share one word; the
/// executor's id is read through the inbox rather than kept per task.
pub(crate) struct TaskMeta {
    /// Index of the queue the task belongs to (see `queue()`). A `u16`: the builder
    /// refuses more than [`MAX_QUEUES`] queues.
    pub(crate) queue: u16,
    /// Set by `JoinHandle::abort`: the run loop drops the task instead of polling it.
    pub(crate) aborted: AtomicBool,
    /// `BOOK_*` (what each poll books besides the queue's figures) and
    /// `READS_EVERY_POLL`, fixed at spawn; `FIRST_POLL`, `SHORT_POLLS` and
    /// `FUTURE_GONE`; the task cell's scheduling state, `cell::SCHEDULED` and
    /// `cell::RUNNING`. Atomic only because the metadata must be `Sync`: written at
    /// spawn and then only on the executor's thread (the wrapper, the cell's
    /// `Runnable` and a waker that checked its thread), with plain loads and stores
    /// (`Relaxed`, never a read-modify-write).
    pub(crate) flags: AtomicU8,
    /// The task's entry in the executor's task registry.
    pub(crate) registry_key: u32,
    /// The group the task was spawned in, if any: its shared service account.
    pub(crate) group: Option<Arc<GroupAccount>>,
    /// Spawn order in the executor.
    pub(crate) arrival: u64,
    /// The executor's cross-thread side: where wakes from other threads and abort
    /// requests go, and the executor's id.
    pub(crate) inbox: Arc<Inbox<TaskRef>>,
    /// When the task last became ready (executor clock, ns), for queue-delay stats.
    /// Atomic only because the metadata must be `Sync`; all accesses are on the
    /// executor thread and use `Relaxed`.
    pub(crate) ready_at_ns: AtomicU64,
    /// CPU time polled so far (ns), kept for queues whose scheduler asks for timing.
    /// The group's account (service, polls, queue delay) is kept on every queue.
    pub(crate) service_ns: AtomicU64,
    /// The panic of the future's `Drop` when the task was cancelled, for the handle.
    pub(crate) drop_panic: PanicSlot,
}

/// The most queues an executor holds (65,536): a task keeps its queue's index in a
/// `u16`, a word it shares with its registry key and flags. More is refused with
/// [`BuildError::TooManyQueues`](crate::BuildError::TooManyQueues).
///
/// ```rust
/// assert_eq!(clockworker::MAX_QUEUES, 65_536);
/// ```
pub const MAX_QUEUES: usize = u16::MAX as usize + 1;

impl TaskMeta {
    /// Index of the queue the task belongs to.
    #[inline(always)]
    pub(crate) fn queue(&self) -> usize {
        self.queue as usize
    }

    /// The `BOOK_*` flags fixed at spawn.
    #[inline(always)]
    pub(crate) fn books(&self) -> u8 {
        self.flags.load(Ordering::Relaxed) & BOOKS_AFTER_POLL
    }

    /// What the wrapper needs around a poll, from one load of the flags before it (none
    /// of these changes during the poll).
    #[inline(always)]
    pub(crate) fn poll_flags(&self) -> PollFlags {
        let flags = self.flags.load(Ordering::Relaxed);
        PollFlags {
            books: flags & BOOKS_AFTER_POLL != 0,
            reads_every_poll: flags & (BOOKS_AFTER_POLL | READS_EVERY_POLL) != 0,
            was_short: flags & SHORT_POLLS != 0,
            first: flags & FIRST_POLL != 0,
        }
    }

    /// The flags a new task starts with, given what its polls book (`BOOK_*`) and
    /// whether its queue's scheduler observes every poll: `READS_EVERY_POLL` when it
    /// does, `FIRST_POLL` when nothing asks for every poll's duration.
    pub(crate) fn initial_flags(books: u8, observed: bool) -> u8 {
        if observed {
            books | READS_EVERY_POLL
        } else if books & BOOKS_AFTER_POLL != 0 {
            books
        } else {
            books | FIRST_POLL
        }
    }

    /// Records whether the task's last measured poll was short (a first poll let end
    /// unread counts as short: its type's first polls were), and that its first poll
    /// is over. Executor thread only (as `set_future_gone`).
    #[inline(always)]
    pub(crate) fn set_polls_short(&self, short: bool) {
        let flags = self.flags.load(Ordering::Relaxed) & !(SHORT_POLLS | FIRST_POLL);
        let new = if short { flags | SHORT_POLLS } else { flags };
        self.flags.store(new, Ordering::Relaxed);
    }

    /// Whether the user's future is gone (completed, panicked, or dropped).
    #[inline(always)]
    pub(crate) fn future_gone(&self) -> bool {
        self.flags.load(Ordering::Relaxed) & FUTURE_GONE != 0
    }

    /// Records that the user's future is gone (or its drop begins). Executor thread
    /// only, which is the only writer after spawn: a plain load and store suffice.
    #[inline(always)]
    pub(crate) fn set_future_gone(&self) {
        let flags = self.flags.load(Ordering::Relaxed);
        self.flags.store(flags | FUTURE_GONE, Ordering::Relaxed);
    }

    /// The id of the executor the task belongs to.
    #[inline(always)]
    pub(crate) fn executor_id(&self) -> u64 {
        self.inbox.executor_id()
    }

    /// When the task last became ready (see the field).
    pub(crate) fn ready_at_ns(&self) -> u64 {
        self.ready_at_ns.load(Ordering::Relaxed)
    }

    pub(crate) fn service_ns(&self) -> u64 {
        self.service_ns.load(Ordering::Relaxed)
    }

    /// The group's id, if the task has a group.
    pub(crate) fn group_id(&self) -> Option<u64> {
        self.group.as_ref().map(|group| group.id)
    }

    /// Service of the task's group, or of the task itself when it has none.
    pub(crate) fn group_service_ns(&self) -> u64 {
        match &self.group {
            Some(group) => group.service_ns(),
            None => self.service_ns(),
        }
    }

    /// Books a poll of `ran_ns` into the task's service (when its queue's scheduler
    /// asks for timing) and its group's account (when it has a group). Called only
    /// when `PollFlags::books`.
    #[inline]
    pub(crate) fn book_poll<H: TaskHooks>(&self, hooks: &H, ran_ns: u64) {
        if self.books() & BOOK_SERVICE != 0 {
            self.service_ns
                .store(self.service_ns() + ran_ns, Ordering::Relaxed);
        }
        if let Some(group) = &self.group {
            group.record_poll(ran_ns, hooks.queue_delay_ns(self.ready_at_ns()));
        }
    }

    /// Counts the end of the task, in its queue (through `hooks`) and its group.
    #[inline]
    pub(crate) fn ended<H: TaskHooks>(&self, hooks: &H, ending: Ending) {
        hooks.task_ended(self.queue(), ending);
        if let Some(group) = &self.group {
            group.count_ending(ending);
        }
    }
}
