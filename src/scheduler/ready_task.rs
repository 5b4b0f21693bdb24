//! [`ReadyTask`]: a ready task as a [`Scheduler`](super::Scheduler) sees it, and what
//! a policy may order it by.

use std::time::Duration;

use crate::task::{Runnable, TaskMeta};

/// A task that is ready to be polled, as seen by a [`Scheduler`](super::Scheduler).
///
/// Schedulers store these and hand them back from [`Scheduler::pop`](super::Scheduler::pop). Dropping a
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
    /// The examples on `ReadyTask`'s methods use `Tap`, a [`RunnableFifo`](super::RunnableFifo) that calls a
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
    /// policies that compare or bucket it (as [`LAS`](super::LAS) does) without converting.
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
    /// It stays the same across the task's polls (it is what [`ArrivalFifo`](super::ArrivalFifo) orders by).
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
    /// asks for timing ([`Scheduler::needs_timing`](super::Scheduler::needs_timing));
    /// zero on the others, which then pay nothing for it. On a
    /// [`LAS::new`](super::LAS::new) queue it counts the current burst only: it
    /// restarts at zero when the task is woken from outside its own poll.
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::scheduler::test_support::ready_task;
    use crate::task::group::GroupRegistry;

    /// What a user scheduler reads from a task: its group, its spawn order, its own
    /// service and its group's (its own when it has no group).
    #[test]
    fn a_task_reports_its_group_arrival_and_service() {
        let mut groups = GroupRegistry::default();
        let tenant = groups.account(0, 7);
        tenant.record_poll(5_000, 0);
        let grouped = ready_task(3, Some(tenant.clone()), 1_000);
        assert_eq!(grouped.group(), Some(7));
        assert_eq!(grouped.arrival(), 3);
        assert_eq!(grouped.attained_service(), Duration::from_nanos(1_000));
        assert_eq!(grouped.group_attained_service_ns(), 5_000);
        assert_eq!(
            grouped.group_attained_service(),
            Duration::from_nanos(5_000)
        );

        let alone = ready_task(9, None, 2_000);
        assert_eq!(alone.group(), None);
        assert_eq!(alone.arrival(), 9);
        assert_eq!(alone.group_attained_service_ns(), 2_000);
        assert_eq!(alone.group_attained_service(), Duration::from_nanos(2_000));
    }

    #[test]
    fn debug_shows_group_and_arrival() {
        let mut groups = GroupRegistry::default();
        let task = ready_task(3, Some(groups.account(0, 7)), 0);
        assert_eq!(
            format!("{task:?}"),
            "ReadyTask { group: Some(7), arrival: 3 }"
        );
    }
}
