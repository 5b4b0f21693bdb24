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
mod ready_task;
mod runnable_fifo;

use std::any::Any;
use std::time::Duration;

pub use arrival_fifo::ArrivalFifo;
pub use las::{DEFAULT_GUARD_EVERY, LAS};
pub use ready_task::ReadyTask;
pub use runnable_fifo::RunnableFifo;

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

/// Slots a built-in queue always keeps when the run loop trims it (see
/// `QueueScheduler::release_spare`): enough for ordinary bursts to cost no
/// reallocation.
pub(crate) const SPARE_SLOTS_KEPT: usize = 1024;

/// How many slots a queue holding `len` tasks in `capacity` slots shrinks to, if it
/// should: when over four times what it holds (and over `SPARE_SLOTS_KEPT`), to
/// twice what it holds, so a queue that refills soon regrows at most once.
pub(crate) fn spare_to_keep(len: usize, capacity: usize) -> Option<usize> {
    let floor = SPARE_SLOTS_KEPT.max(len);
    (capacity > floor.saturating_mul(4)).then(|| SPARE_SLOTS_KEPT.max(len.saturating_mul(2)))
}

#[cfg(test)]
mod spare_tests {
    use super::{spare_to_keep, SPARE_SLOTS_KEPT as KEPT};

    #[test]
    fn queues_shrink_only_when_four_times_too_big_and_keep_twice_their_length() {
        assert_eq!(spare_to_keep(0, 100_000), Some(KEPT));
        assert_eq!(
            spare_to_keep(0, 4 * KEPT),
            None,
            "small queues keep their slots"
        );
        assert_eq!(spare_to_keep(10, 4 * KEPT + 1), Some(KEPT));
        assert_eq!(spare_to_keep(3_000, 12_000), None, "not four times too big");
        assert_eq!(spare_to_keep(3_000, 12_001), Some(6_000));
        assert_eq!(spare_to_keep(usize::MAX, usize::MAX), None);
    }
}

/// The scheduler of one queue: built-ins dispatched statically, user policies boxed.
///
/// `repr(u8)` gives the enum a tag byte of its own: without it the variant is encoded
/// in a niche of the first field (a `VecDeque`'s capacity) and every push and pop
/// decodes it before dispatching (~8 instructions each; callgrind,
/// docs/OVERHEAD_ANALYSIS.md).
#[repr(u8)]
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

    /// Gives back the memory of a built-in scheduler's queue that is more than four
    /// times what it holds (see [`spare_to_keep`]): a burst of a million ready tasks
    /// would otherwise keep 8 MiB of queue after they all went idle. The run loop
    /// calls this when it parks (nothing ready), so the hot path never pays for it.
    /// User schedulers keep their memory as they choose.
    pub(crate) fn release_spare(&mut self) {
        match self {
            QueueScheduler::RunnableFifo(s) => s.release_spare(),
            QueueScheduler::ArrivalFifo(s) => s.release_spare(),
            QueueScheduler::Las(s) => s.release_spare(),
            QueueScheduler::Custom(_) => {}
        }
    }

    /// Whether a task's attained service restarts when it is woken from outside its
    /// own poll (the per-burst rule of `LAS::new`).
    pub(crate) fn counts_per_burst(&self) -> bool {
        matches!(self, QueueScheduler::Las(las) if las.counts_per_burst())
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

#[cfg(test)]
mod tests {
    use super::test_support::ready_task;
    use super::*;

    /// A user scheduler with only the three required methods.
    #[derive(Default)]
    struct Lifo(Vec<ReadyTask>);

    impl Scheduler for Lifo {
        fn push(&mut self, task: ReadyTask) {
            self.0.push(task)
        }
        fn pop(&mut self) -> Option<ReadyTask> {
            self.0.pop()
        }
        fn len(&self) -> usize {
            self.0.len()
        }
    }

    /// The provided methods of a scheduler that defines only the required ones:
    /// `is_empty` follows `len`, no timing is asked for, and reports are not wanted.
    #[test]
    fn provided_methods_default_to_len_and_no_timing() {
        let mut lifo = Lifo::default();
        assert!(lifo.is_empty());
        lifo.push(ready_task(0, None, 0));
        assert!(!lifo.is_empty());
        assert!(!lifo.needs_timing());
        let queue = QueueScheduler::from_user(lifo);
        assert!(matches!(queue, QueueScheduler::Custom(_)));
        assert!(!queue.needs_timing() && !queue.wants_reports());
    }

    /// A user scheduler that asks for timing gets the executor's poll reports; one
    /// that does not, none (`provided_methods_default_to_len_and_no_timing`).
    #[test]
    fn a_timed_user_scheduler_receives_the_reports() {
        struct Timed(Lifo, std::rc::Rc<std::cell::Cell<u32>>);
        impl Scheduler for Timed {
            fn push(&mut self, task: ReadyTask) {
                self.0.push(task)
            }
            fn pop(&mut self) -> Option<ReadyTask> {
                self.0.pop()
            }
            fn len(&self) -> usize {
                self.0.len()
            }
            fn needs_timing(&self) -> bool {
                true
            }
            fn observe(&mut self, _report: &PollReport) {
                self.1.set(self.1.get() + 1);
            }
        }
        let reports = std::rc::Rc::new(std::cell::Cell::new(0));
        let mut queue = QueueScheduler::from_user(Timed(Lifo::default(), reports.clone()));
        assert!(queue.needs_timing() && queue.wants_reports());
        let report = PollReport {
            group: None,
            arrival: 0,
            duration: Duration::from_micros(1),
            finished: false,
        };
        queue.observe(&report);
        assert_eq!(reports.get(), 1);
    }

    /// The built-ins are recognised and dispatched statically; each answers for
    /// itself whether it needs timing and counts service per burst.
    #[test]
    fn built_ins_are_recognised() {
        let fifo = QueueScheduler::from_user(RunnableFifo::new());
        assert!(matches!(fifo, QueueScheduler::RunnableFifo(_)));
        assert!(!fifo.needs_timing() && !fifo.counts_per_burst() && !fifo.wants_reports());
        let arrival = QueueScheduler::from_user(ArrivalFifo::new());
        assert!(matches!(arrival, QueueScheduler::ArrivalFifo(_)));
        assert!(!arrival.needs_timing() && !arrival.counts_per_burst());
        let las = QueueScheduler::from_user(LAS::new());
        assert!(matches!(las, QueueScheduler::Las(_)));
        assert!(las.needs_timing() && las.counts_per_burst() && !las.wants_reports());
        let cumulative = QueueScheduler::from_user(LAS::cumulative());
        assert!(cumulative.needs_timing() && !cumulative.counts_per_burst());
    }

    /// Push, pop and len reach the scheduler inside, for each kind.
    #[test]
    fn dispatch_reaches_the_scheduler() {
        for mut queue in [
            QueueScheduler::from_user(RunnableFifo::new()),
            QueueScheduler::from_user(ArrivalFifo::new()),
            QueueScheduler::from_user(LAS::new()),
            QueueScheduler::from_user(Lifo::default()),
        ] {
            assert_eq!(queue.len(), 0);
            assert!(queue.pop().is_none());
            queue.push(ready_task(4, None, 0));
            queue.push(ready_task(5, None, 0));
            assert_eq!(queue.len(), 2);
            let mut popped: Vec<u64> = std::iter::from_fn(|| queue.pop())
                .map(|t| t.arrival())
                .collect();
            popped.sort_unstable();
            assert_eq!(popped, [4, 5]);
            assert_eq!(queue.len(), 0);
        }
    }
}

/// Ready tasks made without an executor, for scheduler unit tests.
#[cfg(test)]
pub(crate) mod test_support {
    use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8};
    use std::sync::Arc;

    use super::ReadyTask;
    use crate::inbox::Inbox;
    use crate::task::cell::ThroughInbox;
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
            aborted: AtomicBool::new(false),
            flags: AtomicU8::new(crate::task::BOOK_SERVICE),
            registry_key: 0,
            group,
            arrival,
            inbox: Arc::new(Inbox::new(0)),
            ready_at_ns: AtomicU64::new(0),
            service_ns: AtomicU64::new(service_ns),
            drop_panic: PanicSlot::new(),
        };
        let (runnable, _handle) =
            crate::task::cell::spawn::<_, _, ThroughInbox>(meta, |_| std::future::ready(()));
        ReadyTask::new(runnable)
    }
}
