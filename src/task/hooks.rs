//! The seam between a task and its executor: what a task's wrapper tells the run loop.
//!
//! The task layer names no executor type. A task's wrapper (`TaskFuture`) holds an
//! `Rc<H>` for some `H: TaskHooks`, which the executor's core implements; calls are
//! dispatched statically and inlined, so the seam costs nothing at run time.

use std::any::TypeId;

/// How a task ended, as its wrapper reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// The future returned `Ready` in this poll.
    Completed,
    /// The future panicked in this poll.
    Panicked,
    /// The task was cancelled and its future dropped without a panic.
    Cancelled,
    /// The task was cancelled and its future's `Drop` panicked (the payload waits for
    /// the handle in the task's metadata).
    PanickedWhileCancelled,
}

impl Ending {
    /// Whether the task ended inside a poll (rather than by being dropped).
    pub(crate) fn in_poll(self) -> bool {
        matches!(self, Ending::Completed | Ending::Panicked)
    }
}

/// What `TaskHooks::end_poll` saw of a poll.
#[derive(Debug, Clone, Copy)]
pub(crate) enum PollTime {
    /// The poll ended without a clock read.
    Unread,
    /// The poll ended with a clock read (and was measured alone); `short`: it took
    /// less than `unread_polls::SHORT_POLL_NS`.
    Read { short: bool },
}

/// What a task's wrapper needs from its executor (implemented by the run loop's core).
pub(crate) trait TaskHooks: 'static {
    /// Called before each poll of a task, with `PollFlags::may_end_unread`: the
    /// executor measures what it left unmeasured before the poll when the poll must be
    /// measured alone.
    fn begin_poll(&self, may_end_unread: bool);

    /// Called at the end of every poll of a task whose polls are all read
    /// (`PollFlags::reads_every_poll`): reads the clock once for the poll (the run
    /// loop reuses the reading) and returns the poll's duration in ns.
    fn end_poll(&self) -> u64;

    /// Called at the end of every poll of any other task: reads the clock as
    /// `end_poll` does, or, if `may_skip_read` (the task's last measured poll was
    /// short, or it is a first poll that `first_poll_may_end_unread` allowed) and the
    /// executor allows it, skips the read.
    fn end_poll_maybe_unread(&self, may_skip_read: bool) -> PollTime;

    /// Before a task's first poll (of a task whose polls are not all read): whether
    /// it may end unread, because the last first poll the executor measured of a task
    /// whose future has type `future` was short.
    fn first_poll_may_end_unread(&self, future: TypeId) -> bool;

    /// A task's first poll ended with a clock read: its future has type `future`, and
    /// `short` says whether the poll was short.
    fn note_first_poll(&self, future: TypeId, short: bool);

    /// How long a task polled now waited since it became ready at `ready_at_ns` (its
    /// `TaskMeta::ready_at_ns`), as the queue's `queue_delay` counts it. Called only
    /// for tasks in a group.
    fn queue_delay_ns(&self, ready_at_ns: u64) -> u64;

    /// The task's future is gone (finished, panicked or dropped): forget the task's
    /// registry entry `key`.
    fn forget_task(&self, key: usize);

    /// Counts the end of a task of queue `queue`.
    fn task_ended(&self, queue: usize, ending: Ending);

    /// Whether a panic in a task's poll leaves `run`/`run_until` (the default) rather
    /// than resolving its handle to `JoinError::Panic`.
    fn propagates_panics(&self) -> bool;

    /// A panic of a task of queue `queue` (ready since `ready_at_ns`) is about to
    /// leave `run`/`run_until`: book the poll, which the run loop's booking after the
    /// poll will not see, and say how to catch task panics instead.
    fn panic_propagates(&self, queue: usize, ready_at_ns: u64);
}
