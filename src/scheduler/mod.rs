//! Task schedulers: the policy that orders ready tasks *inside* one queue.
//!
//! The executor first chooses a queue (EEVDF, see `eevdf.rs`), then asks that queue's
//! scheduler for a task with [`Scheduler::pop`]. A task that becomes ready (spawned, woken,
//! or yielding) is handed over with [`Scheduler::push`]. Built-in policies are dispatched
//! statically; a user policy is boxed behind `dyn Scheduler`.
//!
//! Each queue has its own scheduler, chosen with
//! [`ExecutorBuilder::with_queue_scheduler`](crate::ExecutorBuilder::with_queue_scheduler):
//!
//! | scheduler | order | cost |
//! |---|---|---|
//! | [`RunnableFifo`] (default) | by the moment a task became ready | O(1) |
//! | [`ArrivalFifo`] | by spawn order, kept across sleeps | O(log n) |
//! | [`LAS`] | least CPU time attained by the task's group first | amortised O(1) |
//! | your [`Scheduler`] | yours | yours |
//!
//! ```rust
//! use clockworker::scheduler::{ArrivalFifo, LAS};
//! use clockworker::ExecutorBuilder;
//!
//! let executor = ExecutorBuilder::new()
//!     .with_queue("events", 4) // RunnableFifo
//!     .with_queue_scheduler("requests", 8, ArrivalFifo::new())
//!     .with_queue_scheduler("tenants", 2, LAS::new())
//!     .build()
//!     .unwrap();
//! let tenants = executor.queue("tenants").unwrap();
//! let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
//! let out = runtime.block_on(executor.run_until(tenants.group(42).spawn(async { 1 })));
//! assert_eq!(out.unwrap(), 1);
//! ```

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
///
/// A `ReadyTask` cannot be made outside the executor, and its accessors are the
/// information a policy may order by. Here, a FIFO that logs each task's spawn order
/// as it becomes ready:
///
/// ```rust
/// use clockworker::scheduler::{ReadyTask, RunnableFifo, Scheduler};
/// use clockworker::ExecutorBuilder;
/// use std::{cell::RefCell, rc::Rc};
///
/// struct Logged(RunnableFifo, Rc<RefCell<Vec<u64>>>);
///
/// impl Scheduler for Logged {
///     fn push(&mut self, task: ReadyTask) {
///         self.1.borrow_mut().push(task.arrival());
///         self.0.push(task);
///     }
///     fn pop(&mut self) -> Option<ReadyTask> { self.0.pop() }
///     fn len(&self) -> usize { self.0.len() }
/// }
///
/// let log = Rc::new(RefCell::new(Vec::new()));
/// let executor = ExecutorBuilder::new()
///     .with_queue_scheduler(0u8, 1, Logged(RunnableFifo::new(), log.clone()))
///     .build()
///     .unwrap();
/// let queue = executor.queue(0).unwrap();
/// let (first, second) = (queue.spawn(async {}), queue.spawn(async {}));
/// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// runtime.block_on(executor.run_until(async { (first.await, second.await) }));
/// let log = log.borrow();
/// assert_eq!(log.len(), 2);
/// assert!(log[0] < log[1]);
/// ```
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
    /// or `None` when it was spawned without one. Tasks spawned through handles made
    /// with the same group value share one id.
    ///
    /// The examples on `ReadyTask`'s methods use `Tap`, a [`RunnableFifo`] that calls a
    /// closure on every task it is given (defined in hidden lines; see
    /// [`ReadyTask`] for a scheduler written out in full).
    ///
    /// ```rust
    /// # use clockworker::scheduler::{ReadyTask, RunnableFifo, Scheduler};
    /// # use clockworker::ExecutorBuilder;
    /// # use std::{cell::RefCell, rc::Rc};
    /// # struct Tap<F>(RunnableFifo, F);
    /// # impl<F: FnMut(&ReadyTask) + 'static> Scheduler for Tap<F> {
    /// #     fn push(&mut self, task: ReadyTask) { (self.1)(&task); self.0.push(task) }
    /// #     fn pop(&mut self) -> Option<ReadyTask> { self.0.pop() }
    /// #     fn len(&self) -> usize { self.0.len() }
    /// #     fn needs_timing(&self) -> bool { true }
    /// # }
    /// # let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// let groups = Rc::new(RefCell::new(Vec::new()));
    /// let seen = groups.clone();
    /// let tap = Tap(RunnableFifo::new(), move |task: &ReadyTask| seen.borrow_mut().push(task.group()));
    /// let executor = ExecutorBuilder::new().with_queue_scheduler(0u8, 1, tap).build().unwrap();
    /// let queue = executor.queue(0).unwrap();
    /// let tasks = [queue.group("alice").spawn(async {}), queue.group("alice").spawn(async {}),
    ///              queue.spawn(async {})];
    /// runtime.block_on(executor.run_until(async { for task in tasks { task.await.unwrap() } }));
    /// let groups = groups.borrow();
    /// assert!(groups[0].is_some());
    /// assert_eq!(groups[0], groups[1]);
    /// assert_eq!(groups[2], None);
    /// ```
    pub fn group(&self) -> Option<u64> {
        self.meta().group_id()
    }

    /// CPU time the task's whole group has been polled for (all its tasks, past and
    /// present, while the group lives); the task's own service when it has no group.
    /// Like [`attained_service`](Self::attained_service), kept only on queues whose
    /// scheduler asks for timing.
    ///
    /// A task of a group that already ran is ready with its group's service on record,
    /// even before its own first poll:
    ///
    /// ```rust
    /// # use clockworker::scheduler::{ReadyTask, RunnableFifo, Scheduler};
    /// # use clockworker::ExecutorBuilder;
    /// # use std::{cell::RefCell, rc::Rc};
    /// # struct Tap<F>(RunnableFifo, F);
    /// # impl<F: FnMut(&ReadyTask) + 'static> Scheduler for Tap<F> {
    /// #     fn push(&mut self, task: ReadyTask) { (self.1)(&task); self.0.push(task) }
    /// #     fn pop(&mut self) -> Option<ReadyTask> { self.0.pop() }
    /// #     fn len(&self) -> usize { self.0.len() }
    /// #     fn needs_timing(&self) -> bool { true }
    /// # }
    /// # let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// let service = Rc::new(RefCell::new(Vec::new()));
    /// let seen = service.clone();
    /// let tap = Tap(RunnableFifo::new(),
    ///               move |task: &ReadyTask| seen.borrow_mut().push(task.group_attained_service()));
    /// let executor = ExecutorBuilder::new().with_queue_scheduler(0u8, 1, tap).build().unwrap();
    /// let tenant = executor.queue(0).unwrap().group("tenant");
    /// let busy = tenant.spawn(async { std::thread::sleep(std::time::Duration::from_millis(1)) });
    /// runtime.block_on(executor.run_until(busy)).unwrap();
    /// let later = tenant.spawn(async {}); // becomes ready carrying the group's 1 ms
    /// runtime.block_on(executor.run_until(later)).unwrap();
    /// assert!(service.borrow()[1] >= std::time::Duration::from_millis(1));
    /// ```
    pub fn group_attained_service(&self) -> Duration {
        Duration::from_nanos(self.meta().group_service_ns())
    }

    /// [`group_attained_service`](Self::group_attained_service) in nanoseconds, for
    /// policies that compare or bucket it (as [`LAS`] does) without converting.
    ///
    /// ```rust
    /// # use clockworker::scheduler::{ReadyTask, RunnableFifo, Scheduler};
    /// # use clockworker::ExecutorBuilder;
    /// # use std::{cell::RefCell, rc::Rc};
    /// # struct Tap<F>(RunnableFifo, F);
    /// # impl<F: FnMut(&ReadyTask) + 'static> Scheduler for Tap<F> {
    /// #     fn push(&mut self, task: ReadyTask) { (self.1)(&task); self.0.push(task) }
    /// #     fn pop(&mut self) -> Option<ReadyTask> { self.0.pop() }
    /// #     fn len(&self) -> usize { self.0.len() }
    /// #     fn needs_timing(&self) -> bool { true }
    /// # }
    /// # let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// let service_ns = Rc::new(RefCell::new(Vec::new()));
    /// let seen = service_ns.clone();
    /// let tap = Tap(RunnableFifo::new(),
    ///               move |task: &ReadyTask| seen.borrow_mut().push(task.group_attained_service_ns()));
    /// let executor = ExecutorBuilder::new().with_queue_scheduler(0u8, 1, tap).build().unwrap();
    /// let tenant = executor.queue(0).unwrap().group(7u32);
    /// let busy = tenant.spawn(async { std::thread::sleep(std::time::Duration::from_millis(1)) });
    /// runtime.block_on(executor.run_until(busy)).unwrap();
    /// runtime.block_on(executor.run_until(tenant.spawn(async {}))).unwrap();
    /// assert_eq!(service_ns.borrow()[0], 0); // nothing had run yet
    /// assert!(service_ns.borrow()[1] >= 1_000_000);
    /// ```
    #[inline]
    pub fn group_attained_service_ns(&self) -> u64 {
        self.meta().group_service_ns()
    }

    /// Spawn order within the executor: a task spawned earlier has a smaller number.
    /// It stays the same across the task's polls (it is what [`ArrivalFifo`] orders by).
    ///
    /// ```rust
    /// # use clockworker::scheduler::{ReadyTask, RunnableFifo, Scheduler};
    /// # use clockworker::ExecutorBuilder;
    /// # use std::{cell::RefCell, rc::Rc};
    /// # struct Tap<F>(RunnableFifo, F);
    /// # impl<F: FnMut(&ReadyTask) + 'static> Scheduler for Tap<F> {
    /// #     fn push(&mut self, task: ReadyTask) { (self.1)(&task); self.0.push(task) }
    /// #     fn pop(&mut self) -> Option<ReadyTask> { self.0.pop() }
    /// #     fn len(&self) -> usize { self.0.len() }
    /// #     fn needs_timing(&self) -> bool { true }
    /// # }
    /// # let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// let arrivals = Rc::new(RefCell::new(Vec::new()));
    /// let seen = arrivals.clone();
    /// let tap = Tap(RunnableFifo::new(), move |task: &ReadyTask| seen.borrow_mut().push(task.arrival()));
    /// let executor = ExecutorBuilder::new().with_queue_scheduler(0u8, 1, tap).build().unwrap();
    /// let queue = executor.queue(0).unwrap();
    /// // One task that is ready twice (it yields once), spawned before another.
    /// let first = queue.spawn(clockworker::yield_now());
    /// let second = queue.spawn(async {});
    /// runtime.block_on(executor.run_until(async { (first.await, second.await) }));
    /// let arrivals = arrivals.borrow();
    /// assert_eq!(arrivals.len(), 3);
    /// assert_eq!(arrivals[0], arrivals[2]); // the same task, pushed again after its yield
    /// assert!(arrivals[0] < arrivals[1]);
    /// ```
    pub fn arrival(&self) -> u64 {
        self.meta().arrival
    }

    /// CPU time the task has been polled for so far (each poll is timed with the one
    /// clock read the executor makes per poll). Kept only on queues whose scheduler
    /// asks for timing ([`Scheduler::needs_timing`]); zero on the others, which then
    /// pay nothing for it.
    ///
    /// ```rust
    /// # use clockworker::scheduler::{ReadyTask, RunnableFifo, Scheduler};
    /// # use clockworker::ExecutorBuilder;
    /// # use std::{cell::RefCell, rc::Rc};
    /// # struct Tap<F>(RunnableFifo, F);
    /// # impl<F: FnMut(&ReadyTask) + 'static> Scheduler for Tap<F> {
    /// #     fn push(&mut self, task: ReadyTask) { (self.1)(&task); self.0.push(task) }
    /// #     fn pop(&mut self) -> Option<ReadyTask> { self.0.pop() }
    /// #     fn len(&self) -> usize { self.0.len() }
    /// #     fn needs_timing(&self) -> bool { true }
    /// # }
    /// # let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// let service = Rc::new(RefCell::new(Vec::new()));
    /// let seen = service.clone();
    /// let tap = Tap(RunnableFifo::new(),
    ///               move |task: &ReadyTask| seen.borrow_mut().push(task.attained_service()));
    /// let executor = ExecutorBuilder::new().with_queue_scheduler(0u8, 1, tap).build().unwrap();
    /// let task = executor.queue(0).unwrap().spawn(async {
    ///     std::thread::sleep(std::time::Duration::from_millis(1)); // a 1 ms first poll
    ///     clockworker::yield_now().await; // ready again, with that poll on record
    /// });
    /// runtime.block_on(executor.run_until(task)).unwrap();
    /// let service = service.borrow();
    /// assert_eq!(service[0], std::time::Duration::ZERO);
    /// assert!(service[1] >= std::time::Duration::from_millis(1));
    /// ```
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
///
/// Reports are made only for user schedulers whose
/// [`needs_timing`](Scheduler::needs_timing) is true. Here, a FIFO that adds up the
/// poll time of each group:
///
/// ```rust
/// use clockworker::scheduler::{PollReport, ReadyTask, RunnableFifo, Scheduler};
/// use clockworker::ExecutorBuilder;
/// use std::{cell::RefCell, collections::HashMap, rc::Rc, time::Duration};
///
/// type Totals = Rc<RefCell<HashMap<Option<u64>, Duration>>>;
/// struct PerGroup(RunnableFifo, Totals);
///
/// impl Scheduler for PerGroup {
///     fn push(&mut self, task: ReadyTask) { self.0.push(task) }
///     fn pop(&mut self) -> Option<ReadyTask> { self.0.pop() }
///     fn len(&self) -> usize { self.0.len() }
///     fn needs_timing(&self) -> bool { true }
///     fn observe(&mut self, report: &PollReport) {
///         *self.1.borrow_mut().entry(report.group).or_default() += report.duration;
///     }
/// }
///
/// let totals = Totals::default();
/// let executor = ExecutorBuilder::new()
///     .with_queue_scheduler(0u8, 1, PerGroup(RunnableFifo::new(), totals.clone()))
///     .build()
///     .unwrap();
/// let slow = executor.queue(0).unwrap().spawn(async {
///     std::thread::sleep(Duration::from_millis(1));
/// });
/// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// runtime.block_on(executor.run_until(slow)).unwrap();
/// assert!(totals.borrow()[&None] >= Duration::from_millis(1));
/// ```
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
///
/// A complete scheduler, last in first out, plugged into a queue with
/// [`ExecutorBuilder::with_queue_scheduler`](crate::ExecutorBuilder::with_queue_scheduler):
///
/// ```rust
/// use clockworker::scheduler::{ReadyTask, Scheduler};
/// use clockworker::ExecutorBuilder;
/// use std::{cell::RefCell, rc::Rc};
///
/// /// The task that became ready last runs first.
/// #[derive(Default)]
/// struct Lifo(Vec<ReadyTask>);
///
/// impl Scheduler for Lifo {
///     fn push(&mut self, task: ReadyTask) { self.0.push(task) }
///     fn pop(&mut self) -> Option<ReadyTask> { self.0.pop() }
///     fn len(&self) -> usize { self.0.len() }
/// }
///
/// let executor = ExecutorBuilder::new()
///     .with_queue_scheduler("stack", 1, Lifo::default())
///     .build()
///     .unwrap();
/// let stack = executor.queue("stack").unwrap();
/// let order = Rc::new(RefCell::new(Vec::new()));
/// let handles: Vec<_> = (0..3)
///     .map(|i| {
///         let order = order.clone();
///         stack.spawn(async move { order.borrow_mut().push(i) })
///     })
///     .collect();
/// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// runtime.block_on(executor.run_until(async {
///     for handle in handles { handle.await.unwrap() }
/// }));
/// assert_eq!(*order.borrow(), [2, 1, 0]);
/// ```
pub trait Scheduler: 'static {
    /// Takes a task that just became ready: spawned, woken, or back after a yield.
    /// The scheduler must keep it until [`pop`](Self::pop) hands it back (dropping it
    /// cancels the task).
    ///
    /// A wrapper that counts pushes before delegating to a built-in scheduler:
    ///
    /// ```rust
    /// use clockworker::scheduler::{ReadyTask, RunnableFifo, Scheduler};
    /// use clockworker::ExecutorBuilder;
    /// use std::{cell::Cell, rc::Rc};
    ///
    /// struct Counted(RunnableFifo, Rc<Cell<u32>>);
    ///
    /// impl Scheduler for Counted {
    ///     fn push(&mut self, task: ReadyTask) {
    ///         self.1.set(self.1.get() + 1);
    ///         self.0.push(task);
    ///     }
    ///     fn pop(&mut self) -> Option<ReadyTask> { self.0.pop() }
    ///     fn len(&self) -> usize { self.0.len() }
    /// }
    ///
    /// let pushes = Rc::new(Cell::new(0));
    /// let executor = ExecutorBuilder::new()
    ///     .with_queue_scheduler(0u8, 1, Counted(RunnableFifo::new(), pushes.clone()))
    ///     .build()
    ///     .unwrap();
    /// let task = executor.queue(0).unwrap().spawn(clockworker::yield_now());
    /// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// runtime.block_on(executor.run_until(task)).unwrap();
    /// assert_eq!(pushes.get(), 2); // spawned, then back after its yield
    /// ```
    fn push(&mut self, task: ReadyTask);
    /// Gives back the task to poll next, or `None` when no task is held.
    ///
    /// The executor calls it when the queue's turn comes; the task returned is polled
    /// at once. On an empty scheduler it returns `None`:
    ///
    /// ```rust
    /// use clockworker::scheduler::{ArrivalFifo, Scheduler};
    ///
    /// assert!(ArrivalFifo::new().pop().is_none());
    /// ```
    fn pop(&mut self) -> Option<ReadyTask>;
    /// Number of tasks held. The executor reads it to know whether the queue has work
    /// (it is the `ready` count of [`QueueStats`](crate::QueueStats)), so it must be
    /// exact.
    ///
    /// ```rust
    /// use clockworker::scheduler::{RunnableFifo, Scheduler};
    ///
    /// assert_eq!(RunnableFifo::new().len(), 0);
    /// ```
    fn len(&self) -> usize;
    /// True when no task is held.
    ///
    /// ```rust
    /// use clockworker::scheduler::{Scheduler, LAS};
    ///
    /// assert!(LAS::new().is_empty());
    /// ```
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Whether the executor should call [`observe`](Scheduler::observe) after each poll
    /// of this queue's tasks and keep their attained service
    /// ([`ReadyTask::attained_service`]). Asked once, when the executor is built.
    /// Default: false (no per-poll report, no service accounting).
    ///
    /// ```rust
    /// use clockworker::scheduler::{RunnableFifo, Scheduler, LAS};
    ///
    /// assert!(LAS::new().needs_timing()); // it orders by attained service
    /// assert!(!RunnableFifo::new().needs_timing());
    /// ```
    fn needs_timing(&self) -> bool {
        false
    }
    /// Called after each poll of one of this queue's tasks when
    /// [`needs_timing`](Scheduler::needs_timing) is true. Default: nothing.
    ///
    /// Here, a FIFO that counts the tasks of its queue that finished:
    ///
    /// ```rust
    /// use clockworker::scheduler::{PollReport, ReadyTask, RunnableFifo, Scheduler};
    /// use clockworker::ExecutorBuilder;
    /// use std::{cell::Cell, rc::Rc};
    ///
    /// struct Finished(RunnableFifo, Rc<Cell<u32>>);
    ///
    /// impl Scheduler for Finished {
    ///     fn push(&mut self, task: ReadyTask) { self.0.push(task) }
    ///     fn pop(&mut self) -> Option<ReadyTask> { self.0.pop() }
    ///     fn len(&self) -> usize { self.0.len() }
    ///     fn needs_timing(&self) -> bool { true }
    ///     fn observe(&mut self, report: &PollReport) {
    ///         if report.finished {
    ///             self.1.set(self.1.get() + 1);
    ///         }
    ///     }
    /// }
    ///
    /// let finished = Rc::new(Cell::new(0));
    /// let executor = ExecutorBuilder::new()
    ///     .with_queue_scheduler(0u8, 1, Finished(RunnableFifo::new(), finished.clone()))
    ///     .build()
    ///     .unwrap();
    /// let task = executor.queue(0).unwrap().spawn(clockworker::yield_now());
    /// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// runtime.block_on(executor.run_until(task)).unwrap();
    /// assert_eq!(finished.get(), 1); // two polls, one of them the last
    /// ```
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
