//! Task schedulers: the policy that orders ready tasks *inside* one queue.
//!
//! The executor first chooses a queue (EEVDF, see `eevdf.rs`), then asks that queue's
//! scheduler for a task with [`Scheduler::pop`]. A task that becomes ready (spawned, woken,
//! or yielding) is handed over with [`Scheduler::push`]. Built-in policies are dispatched
//! statically; a user policy is boxed behind `dyn Scheduler`.

mod arrival_fifo;
mod las;
mod runnable_fifo;

use std::any::Any;
use std::time::Duration;

pub use arrival_fifo::ArrivalFifo;
pub use las::{DEFAULT_GUARD_EVERY, LAS};
pub use runnable_fifo::RunnableFifo;

use crate::task::{Runnable, TaskMeta};

/// A task that is ready to be polled, as seen by a [`Scheduler`].
///
/// Schedulers store these and hand them back from [`Scheduler::pop`]. Dropping a
/// `ReadyTask` instead of returning it cancels the task (its handle resolves
/// `Cancelled`), so a scheduler must keep every task it is given.
pub struct ReadyTask {
    runnable: Runnable,
}

impl ReadyTask {
    pub(crate) fn new(runnable: Runnable) -> Self {
        ReadyTask { runnable }
    }

    pub(crate) fn into_runnable(self) -> Runnable {
        self.runnable
    }

    fn meta(&self) -> &TaskMeta {
        self.runnable.metadata()
    }

    /// The group the task was spawned in (see [`QueueHandle::group`](crate::QueueHandle::group)),
    /// or `None` when it was spawned without one.
    pub fn group(&self) -> Option<u64> {
        self.meta().group_id()
    }

    /// CPU time the task's whole group has been polled for (all its tasks, past and
    /// present, while the group lives); the task's own service when it has no group.
    /// Like [`attained_service`](Self::attained_service), kept only on queues whose
    /// scheduler asks for timing.
    pub fn group_attained_service(&self) -> Duration {
        Duration::from_nanos(self.meta().group_service_ns())
    }

    /// [`group_attained_service`](Self::group_attained_service) in nanoseconds.
    #[inline]
    pub fn group_attained_service_ns(&self) -> u64 {
        self.meta().group_service_ns()
    }

    /// Spawn order within the executor: a task spawned earlier has a smaller number.
    pub fn arrival(&self) -> u64 {
        self.meta().arrival
    }

    /// CPU time the task has been polled for so far (each poll is timed with the one
    /// clock read the executor makes per poll). Kept only on queues whose scheduler
    /// asks for timing ([`Scheduler::needs_timing`]); zero on the others, which then
    /// pay nothing for it.
    pub fn attained_service(&self) -> Duration {
        Duration::from_nanos(self.meta().service_ns())
    }
}

impl std::fmt::Debug for ReadyTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadyTask")
            .field("group", &self.group())
            .field("arrival", &self.arrival())
            .finish()
    }
}

/// What the executor reports to [`Scheduler::observe`] after polling a task.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct PollReport {
    /// The task's group, as [`ReadyTask::group`].
    pub group: Option<u64>,
    /// The task's spawn order, as [`ReadyTask::arrival`].
    pub arrival: u64,
    /// How long this poll took.
    pub duration: Duration,
    /// True when the task finished (completed, panicked or was cancelled) in this poll.
    pub finished: bool,
}

/// An ordering policy for the ready tasks of one queue.
///
/// Only [`push`](Scheduler::push), [`pop`](Scheduler::pop) and [`len`](Scheduler::len) are
/// required. The executor calls these on its own thread only, never re-entrantly.
pub trait Scheduler: 'static {
    /// Takes a task that just became ready.
    fn push(&mut self, task: ReadyTask);
    /// Gives back the task to poll next, or `None` when no task is held.
    fn pop(&mut self) -> Option<ReadyTask>;
    /// Number of tasks held.
    fn len(&self) -> usize;
    /// True when no task is held.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Whether the executor should call [`observe`](Scheduler::observe) after each poll
    /// of this queue's tasks and keep their attained service
    /// ([`ReadyTask::attained_service`]). Asked once, when the executor is built.
    /// Default: false (no per-poll report, no service accounting).
    fn needs_timing(&self) -> bool {
        false
    }
    /// Called after each poll of one of this queue's tasks when
    /// [`needs_timing`](Scheduler::needs_timing) is true. Default: nothing.
    fn observe(&mut self, report: &PollReport) {
        let _ = report;
    }
}

/// The scheduler of one queue: built-ins dispatched statically, user policies boxed.
pub(crate) enum QueueScheduler {
    RunnableFifo(RunnableFifo),
    ArrivalFifo(ArrivalFifo),
    Las(LAS),
    Custom(Box<dyn Scheduler>),
}

macro_rules! dispatch {
    ($self:expr, $s:ident => $e:expr) => {
        match $self {
            QueueScheduler::RunnableFifo($s) => $e,
            QueueScheduler::ArrivalFifo($s) => $e,
            QueueScheduler::Las($s) => $e,
            QueueScheduler::Custom($s) => $e,
        }
    };
}

impl QueueScheduler {
    /// Wraps a scheduler given by the user, recognising the built-ins so they are
    /// dispatched without a virtual call.
    pub(crate) fn from_user<S: Scheduler>(scheduler: S) -> Self {
        let mut slot = Some(scheduler);
        let any: &mut dyn Any = &mut slot;
        if let Some(fifo) = any.downcast_mut::<Option<RunnableFifo>>() {
            return QueueScheduler::RunnableFifo(fifo.take().expect("slot is filled"));
        }
        if let Some(fifo) = any.downcast_mut::<Option<ArrivalFifo>>() {
            return QueueScheduler::ArrivalFifo(fifo.take().expect("slot is filled"));
        }
        if let Some(las) = any.downcast_mut::<Option<LAS>>() {
            return QueueScheduler::Las(las.take().expect("slot is filled"));
        }
        QueueScheduler::Custom(Box::new(slot.expect("slot is filled")))
    }

    #[inline(always)]
    pub(crate) fn push(&mut self, task: ReadyTask) {
        dispatch!(self, s => s.push(task))
    }

    #[inline(always)]
    pub(crate) fn pop(&mut self) -> Option<ReadyTask> {
        dispatch!(self, s => s.pop())
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        dispatch!(self, s => s.len())
    }

    pub(crate) fn needs_timing(&self) -> bool {
        dispatch!(self, s => s.needs_timing())
    }

    /// Whether the run loop should build a poll report for [`observe`](Self::observe):
    /// only user schedulers that ask for timing; the built-ins ignore reports.
    pub(crate) fn wants_reports(&self) -> bool {
        matches!(self, QueueScheduler::Custom(s) if s.needs_timing())
    }

    #[inline]
    pub(crate) fn observe(&mut self, report: &PollReport) {
        if let QueueScheduler::Custom(s) = self {
            s.observe(report)
        }
    }
}

/// Ready tasks made without an executor, for scheduler unit tests.
#[cfg(test)]
pub(crate) mod test_support {
    use std::sync::atomic::{AtomicBool, AtomicU64};
    use std::sync::Arc;

    use super::ReadyTask;
    use crate::inbox::Inbox;
    use crate::task::group::GroupAccount;
    use crate::task::panic_slot::PanicSlot;
    use crate::task::TaskMeta;

    /// A ready task with spawn order `arrival`, in `group`, that was polled for
    /// `service_ns` so far. It never runs; dropping it cancels it.
    pub(crate) fn ready_task(
        arrival: u64,
        group: Option<Arc<GroupAccount>>,
        service_ns: u64,
    ) -> ReadyTask {
        let meta = TaskMeta {
            queue: 0,
            group,
            arrival,
            registry_key: 0,
            executor_id: 0,
            inbox: Arc::new(Inbox::new(0)),
            aborted: AtomicBool::new(false),
            ready_at_ns: AtomicU64::new(0),
            timed: true,
            service_ns: AtomicU64::new(service_ns),
            drop_panic: PanicSlot::new(),
        };
        let (runnable, task) = async_task::Builder::new()
            .metadata(meta)
            .spawn(|_| async {}, |_runnable| {});
        task.detach();
        ReadyTask::new(runnable)
    }
}
