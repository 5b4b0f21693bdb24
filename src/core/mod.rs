//! The run loop: the executor's state on its thread, independent of the queue key type.
//!
//! `Core`'s fields are private; the layers above reach it through methods: the spawn
//! and wake path (`crate::schedule`) admits and queues tasks, the executor drives turns
//! and reads stats. Tasks reach it through [`TaskHooks`], which it implements.
//!
//! Threads: everything here except `inbox` is touched only on the executor's thread.
//! Borrows: `ready` and `tasks` are borrowed only for short stretches that never run
//! user code (no poll, no future drop, no waker call), so a wake or a spawn from inside
//! a task, or from a future's `Drop`, never meets a borrowed cell. Where it could (a
//! wake while `ready` is borrowed by our own bookkeeping), the wake falls back to the
//! inbox instead of panicking.

use std::any::TypeId;
use std::cell::{Cell, RefCell};
use std::ptr::NonNull;
use std::rc::Rc;
use std::sync::Arc;
use std::task::Waker;
use std::time::Duration;

mod registry;
mod turn;
mod unread_polls;

use crate::clock::Clock;
use crate::inbox::Inbox;
use crate::ready::{queue_delay_ns, Ready, READY_WHILE_PARKED};
use crate::stats::{ExecutorStats, QueueStats};
use crate::task::cell::LiveTask;
use crate::task::group::{GroupAccount, GroupRegistry};
use crate::task::{
    Ending, PollTime, Runnable, TaskHooks, TaskMeta, TaskRef, BOOK_GROUP, BOOK_SERVICE,
};
use registry::TaskRegistry;
use unread_polls::UnreadRun;

/// `Core::poll_end_ns` of a poll that ended without a clock read.
const UNREAD_END: u64 = u64::MAX;

/// How many passes in a row `cancel_all` makes that find no task to drop before it
/// gives up (each followed by one `thread::yield_now`): a user scheduler may hand its
/// tasks back only on a later `pop`.
const MAX_CANCEL_WAIT_ROUNDS: u32 = 10_000;

/// Most run loops remembered as parked (see `Core::parked_loops`): loops dropped while
/// parked stay in the list, so it is bounded; one executor rarely has more than one or
/// two loops.
const MAX_PARKED_LOOPS: usize = 64;

/// Settings fixed at build time.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) driver_yield_ns: u64,
    /// See `ExecutorBuilder::with_host_poll_interval`.
    pub(crate) host_poll_ns: u64,
    pub(crate) panic_on_task_panic: bool,
}

/// Per-queue task counters, updated through the task hooks.
#[derive(Debug, Default)]
struct Counters {
    spawned: Cell<u64>,
    completed: Cell<u64>,
    cancelled: Cell<u64>,
    panicked: Cell<u64>,
}

/// Executor-wide measurements.
#[derive(Debug, Default)]
struct LoopMeasure {
    idle_ns: Cell<u64>,
    driver_yields: Cell<u64>,
    max_gap_ns: Cell<u64>,
}

/// Why a turn of the run loop stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub(crate) enum Stop {
    /// The `run_until` future was woken: poll it, then continue.
    MainWoken,
    /// `driver_yield` elapsed: return to the host, which polls us again at once.
    DriverYield,
    /// Nothing is ready: the host waker is registered.
    Idle,
}

/// The run loop's state (see the module docs).
pub(crate) struct Core {
    id: u64,
    inbox: Arc<Inbox<TaskRef>>,
    config: Config,
    ready: RefCell<Ready>,
    /// Each live task's address, so that shutdown and aborts can reach parked tasks.
    tasks: RefCell<TaskRegistry<LiveTask>>,
    /// Service accounts of task groups.
    groups: RefCell<GroupRegistry>,
    counters: Box<[Counters]>,
    /// The queues' keys as text (`Debug` forms, see `queue::key_labels`), by index.
    queue_names: Box<[Rc<str>]>,
    /// Per queue, the flags a new task starts with (`TaskMeta::initial_flags`):
    /// `[ungrouped, grouped]`, a task of a group booking each poll to its account.
    /// Fixed at build time.
    task_flags: Box<[[u8; 2]]>,
    measure: LoopMeasure,
    clock: Clock,
    /// Last clock reading (ns): the start of the current poll while one runs.
    now_ns: Cell<u64>,
    /// When the current turn of the run loop began.
    turn_start_ns: Cell<u64>,
    /// When the future `run_until` drives was last polled (see `MAIN_POLL_EVERY`).
    main_polled_ns: Cell<u64>,
    /// When the current turn must return to the host.
    driver_deadline_ns: Cell<u64>,
    /// When the running task should give way: the earlier of its slice end and the
    /// driver-yield deadline. Read by `yield_maybe`.
    yield_deadline_ns: Cell<u64>,
    /// True while the run loop is inside a poll of the host (tasks may be running).
    polling: Cell<bool>,
    /// True once the host was woken for a wake that happened outside a poll.
    host_woken: Cell<bool>,
    /// Set while the loop is idle (parked on the host waker), since `idle_since_ns`.
    idle_since_ns: Cell<Option<u64>>,
    shut_down: Cell<bool>,
    /// Shutdown was requested from inside a task: cancel after that poll.
    cancel_requested: Cell<bool>,
    next_arrival: Cell<u64>,
    /// Set through the task hooks when a task's future finishes during the current poll.
    finished_in_poll: Cell<bool>,
    /// The group and arrival of the task being polled, kept only while its queue's
    /// scheduler wants a report of the poll (`Scheduler::observe`).
    poll_report: Cell<Option<(Option<u64>, u64)>>,
    /// The metadata of the task being polled, `None` between polls (for
    /// `clockworker::spawn`). Set right before `Runnable::run` and cleared when the
    /// poll is booked (and by a guard should `run` unwind), so it is `Some`
    /// only while the task's allocation is alive (see `running_task`).
    running_task: Cell<Option<NonNull<TaskMeta>>>,
    /// The host wakers of run loops (`run`/`run_until` futures) parked idle, so that
    /// `shutdown` wakes every one of them: the inbox keeps only the last registered
    /// waker, and a `run` future whose waker was replaced would otherwise never see the
    /// shutdown. A loop leaves the list when its next turn starts.
    parked_loops: RefCell<Vec<Waker>>,
    /// The clock reading a task's wrapper took at the end of its poll, if it did (a
    /// cancelled task is dropped without a poll, and then the loop reads the clock).
    poll_end_ns: Cell<Option<u64>>,
    /// The open run of polls that end without a clock read (see `unread_polls`).
    unread: UnreadRun,
}

impl Core {
    pub(crate) fn new(
        id: u64,
        mut ready: Ready,
        queue_names: Box<[Rc<str>]>,
        config: Config,
    ) -> Self {
        let queue_count = queue_names.len();
        let task_flags = (0..queue_count)
            .map(|q| {
                let books = if ready.is_timed(q) { BOOK_SERVICE } else { 0 };
                let observed = ready.is_observed(q);
                [
                    TaskMeta::initial_flags(books, observed),
                    TaskMeta::initial_flags(books | BOOK_GROUP, observed),
                ]
            })
            .collect();
        ready.set_stop_at_switch(queue_count > 1 && config.host_poll_ns < config.driver_yield_ns);
        Core {
            id,
            inbox: Arc::new(Inbox::new(id)),
            config,
            ready: RefCell::new(ready),
            tasks: RefCell::new(TaskRegistry::default()),
            groups: RefCell::new(GroupRegistry::default()),
            counters: (0..queue_count).map(|_| Counters::default()).collect(),
            queue_names,
            task_flags,
            measure: LoopMeasure::default(),
            clock: Clock::new(),
            now_ns: Cell::new(0),
            turn_start_ns: Cell::new(0),
            main_polled_ns: Cell::new(0),
            driver_deadline_ns: Cell::new(u64::MAX),
            yield_deadline_ns: Cell::new(u64::MAX),
            polling: Cell::new(false),
            host_woken: Cell::new(false),
            idle_since_ns: Cell::new(None),
            shut_down: Cell::new(false),
            cancel_requested: Cell::new(false),
            next_arrival: Cell::new(0),
            finished_in_poll: Cell::new(false),
            poll_report: Cell::new(None),
            running_task: Cell::new(None),
            parked_loops: RefCell::new(Vec::new()),
            poll_end_ns: Cell::new(None),
            unread: UnreadRun::default(),
        }
    }

    /// The executor's id, unique in the process.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// The cross-thread side: where other threads send wakes, aborts and spawn jobs.
    pub(crate) fn inbox(&self) -> &Arc<Inbox<TaskRef>> {
        &self.inbox
    }

    pub(crate) fn is_shut_down(&self) -> bool {
        self.shut_down.get()
    }

    /// The next spawn number.
    pub(crate) fn next_arrival(&self) -> u64 {
        let arrival = self.next_arrival.get();
        self.next_arrival.set(arrival + 1);
        arrival
    }

    /// The last clock reading: the start of the running poll, or the end of the last.
    pub(crate) fn now_ns(&self) -> u64 {
        self.now_ns.get()
    }

    /// The queues' keys as text, by index (see `queue::key_labels`).
    #[cfg(feature = "metrics")]
    pub(crate) fn queue_names(&self) -> &[Rc<str>] {
        &self.queue_names
    }

    /// The flags a new task of queue `queue` starts with (`TaskMeta::initial_flags`);
    /// `grouped`: it belongs to a task group, whose account books each poll.
    pub(crate) fn task_flags(&self, queue: usize, grouped: bool) -> u8 {
        self.task_flags[queue][usize::from(grouped)]
    }

    /// The live service account of group `id` in queue `queue`, created if needed.
    pub(crate) fn group_account(&self, queue: usize, id: u64) -> Arc<GroupAccount> {
        self.groups.borrow_mut().account(queue, id)
    }

    /// The live account of group `id` in queue `queue`, if there is one.
    pub(crate) fn find_group(&self, queue: usize, id: u64) -> Option<Arc<GroupAccount>> {
        self.groups.borrow().find(queue, id)
    }

    /// The queue and group of the task being polled, or `None` outside a task poll
    /// (between polls, in the future `run_until` drives, while futures are dropped).
    pub(crate) fn running_task(&self) -> Option<(usize, Option<Arc<GroupAccount>>)> {
        let meta = self.running_task.get()?;
        // SAFETY: `running_task` points at the metadata inside the allocation of the
        // task being polled: set right before its `Runnable::run`, cleared as soon as
        // that returns or unwinds (`account_poll`, `ClearRunningOnUnwind`). The cell
        // keeps the allocation alive, and the metadata in place, for the whole of `run`
        // (the future's reference is released only at its end, `task::cell`), and this
        // is called on the executor's thread from inside that poll (user code of the
        // task, or a `Drop` it runs). The metadata is only read, through `&`.
        let meta = unsafe { meta.as_ref() };
        Some((meta.queue(), meta.group.clone()))
    }

    /// Marks the task whose metadata is `meta` as being polled, until `account_poll`.
    #[inline(always)]
    pub(crate) fn set_running(&self, meta: &TaskMeta) {
        self.running_task.set(Some(NonNull::from(meta)));
    }

    /// No task is being polled any more (its `run` returned or unwinds).
    #[inline(always)]
    pub(crate) fn clear_running(&self) {
        self.running_task.set(None);
    }

    /// Admits a new task of queue `queue`: `build` receives the task's registry key
    /// and returns the task's `Runnable` and whatever the caller keeps (its handle).
    /// The task is registered (so shutdown reaches it), counted, and queued.
    ///
    /// `build` must not run user code: the registry is borrowed meanwhile.
    ///
    /// Panics when the executor already holds `u32::MAX` live tasks (over 400 GiB of
    /// them): the registry's keys are `u32`.
    #[inline]
    pub(crate) fn admit<T>(&self, queue: usize, build: impl FnOnce(u32) -> (Runnable, T)) -> T {
        let mut registry = self.tasks.borrow_mut();
        let key = registry
            .reserve()
            .expect("an executor holds at most u32::MAX live tasks");
        let (runnable, kept) = build(key);
        registry.fill(key, runnable.live());
        drop(registry);
        let spawned = &self.counters[queue].spawned;
        spawned.set(spawned.get() + 1);
        self.push_ready(runnable);
        kept
    }

    /// Reads the clock outside a task poll, after the driven future was polled.
    pub(crate) fn refresh_clock(&self) {
        let now = self.clock.now_ns();
        self.now_ns.set(now);
        self.main_polled_ns.set(now);
    }

    pub(crate) fn is_polling(&self) -> bool {
        self.polling.get()
    }

    /// Whether the running task should yield now (see `yield_maybe`): a queue with an
    /// earlier deadline became runnable (preemption), another thread handed the loop
    /// work (a wake, a spawn, an abort, or a wake of the `run_until` future: the loop
    /// looks at it only between polls, and EEVDF then decides who runs), or the slice
    /// or the turn is over.
    pub(crate) fn should_yield(&self) -> bool {
        let now = self.clock.now_ns();
        let in_poll = now.saturating_sub(self.now_ns.get());
        let preempt = self
            .ready
            .try_borrow()
            .map(|ready| ready.preempt_pending(in_poll))
            .unwrap_or(false);
        preempt || self.inbox.is_notified() || now >= self.yield_deadline_ns.get()
    }

    /// Queues a task that became ready on this thread (spawn, or a local wake).
    pub(crate) fn push_ready(&self, runnable: Runnable) {
        let mut slot = Some(runnable);
        self.try_push_local(&mut slot);
        if let Some(runnable) = slot {
            runnable.defer();
        }
    }

    /// Pushes the task in `slot` into its queue unless the ready state is borrowed by
    /// the executor itself, in which case the task is left in `slot`.
    #[inline]
    pub(crate) fn try_push_local(&self, slot: &mut Option<Runnable>) {
        let Ok(mut ready) = self.ready.try_borrow_mut() else {
            return;
        };
        if let Some(runnable) = slot.take() {
            // A wake outside a poll (host timer or I/O, a deferred wake) is stamped
            // "since the loop last ran"; the loop counts its delay from the next turn.
            let stamp = if self.polling.get() {
                self.now_ns.get()
            } else {
                READY_WHILE_PARKED
            };
            ready.push_woken(runnable, stamp);
        }
        drop(ready);
        if !self.polling.get() && !self.host_woken.get() {
            self.host_woken.set(true);
            self.inbox.notify();
        }
    }

    /// Spawns the tasks other threads sent, moves tasks woken on other threads into
    /// their queues, and wakes aborted tasks so the loop meets them and drops them.
    fn drain_inbox(&self) {
        self.inbox.drain(
            |woken: TaskRef| match self.ready.try_borrow_mut() {
                // Its queue delay counts from the start of this turn.
                Ok(mut ready) => {
                    if let Some(runnable) = woken.schedule_here() {
                        let _ = ready.push_woken(runnable, READY_WHILE_PARKED);
                    }
                }
                // Unreachable: nothing holds the ready state while the inbox is
                // drained. Keep the task for the next drain.
                Err(_) => self.inbox.push(woken),
            },
            // The key may already belong to a newer task (the aborted one finished
            // meanwhile): that task gets a spurious wake, which futures tolerate.
            |key| self.wake_registered(key),
        );
    }

    /// Stops new spawns and cancels every task. From inside a task, the cancellation
    /// happens right after that task's poll.
    pub(crate) fn shutdown(&self) {
        self.shut_down.set(true);
        self.inbox.close_jobs();
        if self.polling.get() {
            self.cancel_requested.set(true);
        } else {
            self.cancel_all();
        }
        self.inbox.notify();
        let parked = std::mem::take(&mut *self.parked_loops.borrow_mut());
        for waker in parked {
            waker.wake();
        }
    }

    /// Remembers the host waker of a run loop that goes idle (see `parked_loops`).
    pub(crate) fn remember_parked(&self, waker: &Waker) {
        let mut loops = self.parked_loops.borrow_mut();
        if loops.iter().any(|parked| parked.will_wake(waker)) {
            return;
        }
        if loops.len() >= MAX_PARKED_LOOPS {
            // Loops dropped while parked never come back to leave the list.
            loops.remove(0);
        }
        loops.push(waker.clone());
    }

    /// A run loop whose host waker is `waker` is running a turn: no longer parked.
    #[inline]
    pub(crate) fn forget_parked(&self, waker: &Waker) {
        let mut loops = self.parked_loops.borrow_mut();
        if !loops.is_empty() {
            loops.retain(|parked| !parked.will_wake(waker));
        }
    }

    /// Wakes the live task registered under `key`, if there is one (the registry is
    /// not borrowed during the wake, which reaches the queue's scheduler).
    fn wake_registered(&self, key: usize) {
        let task = self.tasks.borrow().get(key).copied();
        if let Some(task) = task {
            // SAFETY: executor thread; a task in the registry has its future (the
            // entry goes before the future does).
            unsafe { task.wake() };
        }
    }

    /// Drops every task's future on this thread: wakes each registered task (so parked
    /// ones become ready), then drops all ready tasks, until no task is left. Dropping a
    /// future may wake or spawn others; the loop runs until the registry is empty.
    ///
    /// Every task keeps its registry entry until its future is dropped, and waking it
    /// here schedules it on this thread (a wake from another thread at the same moment
    /// only adds a reference to the inbox, which is drained here too), so each pass
    /// finds every live task unless a scheduler hides tasks from `pop`.
    pub(crate) fn cancel_all(&self) {
        self.cancel_requested.set(false);
        let mut doomed: Vec<Runnable> = Vec::new();
        let mut idle_rounds = 0;
        loop {
            let keys = self.tasks.borrow().keys();
            if keys.is_empty() {
                return;
            }
            for key in keys {
                // Looked up one at a time: a wake reaches the queue's scheduler, which
                // may drop (cancel) other tasks meanwhile.
                self.wake_registered(key);
            }
            self.ready.borrow_mut().drain_all(&mut doomed);
            while let Some(woken) = self.inbox.pop() {
                doomed.extend(woken.schedule_here());
            }
            if doomed.is_empty() {
                // Every live task was woken on this thread above, so a scheduler holds
                // them back from `pop` (perhaps for a call or two: try again). One
                // that hides them for good would keep us here forever; after a while,
                // stop (its tasks are dropped with it, on this thread, when the
                // executor goes).
                idle_rounds += 1;
                if idle_rounds > MAX_CANCEL_WAIT_ROUNDS {
                    return;
                }
                std::thread::yield_now();
            } else {
                idle_rounds = 0;
            }
            // Dropping a Runnable closes its task and drops its future here.
            doomed.clear();
        }
    }

    /// Marks the start and end of a poll of the host (see `context::Entered`).
    pub(crate) fn set_polling(&self, polling: bool) {
        self.polling.set(polling);
    }

    /// Changes queue `queue`'s weight (in range: the caller checked).
    pub(crate) fn set_weight(&self, queue: usize, weight: u32) {
        self.ready.borrow_mut().set_weight(queue, weight);
    }

    /// Executor-wide statistics.
    pub(crate) fn executor_stats(&self) -> ExecutorStats {
        let m = &self.measure;
        let (polls, busy_ns) = self.ready.borrow().totals();
        ExecutorStats {
            polls,
            busy_time: Duration::from_nanos(busy_ns),
            idle_time: Duration::from_nanos(m.idle_ns.get()),
            driver_yields: m.driver_yields.get(),
            max_driver_gap: Duration::from_nanos(m.max_gap_ns.get()),
            live_tasks: self.tasks.borrow().len(),
        }
    }

    /// Statistics of queue `queue`, whose key is `key`.
    pub(crate) fn queue_stats<K>(&self, queue: usize, key: K) -> QueueStats<K> {
        let ready = self.ready.borrow();
        let measure = &ready.measures[queue];
        let counters = &self.counters[queue];
        QueueStats {
            key,
            weight: ready.weight(queue),
            service_time: Duration::from_nanos(measure.service_ns),
            polls: measure.polls,
            spawned: counters.spawned.get(),
            completed: counters.completed.get(),
            cancelled: counters.cancelled.get(),
            panicked: counters.panicked.get(),
            ready: ready.len(queue),
            queue_delay: measure.queue_delay.clone(),
            poll_time: measure.poll_time.clone(),
        }
    }
}

impl TaskHooks for Core {
    fn queue_delay_ns(&self, ready_at_ns: u64) -> u64 {
        // `now_ns` is still the start of the poll: the loop moves it on after the poll.
        queue_delay_ns(ready_at_ns, self.now_ns.get(), self.turn_start_ns.get())
    }

    #[inline]
    fn begin_poll(&self, may_end_unread: bool) {
        self.close_run_before_poll(may_end_unread);
    }

    #[inline]
    fn end_poll(&self) -> u64 {
        let end = self.clock.now_ns();
        self.poll_end_ns.set(Some(end));
        end.saturating_sub(self.now_ns.get())
    }

    #[inline]
    fn end_poll_maybe_unread(&self, may_skip_read: bool) -> PollTime {
        if may_skip_read && self.take_unread_poll() {
            self.poll_end_ns.set(Some(UNREAD_END));
            return PollTime::Unread;
        }
        let ran_ns = self.end_poll();
        self.unread.note_measured(ran_ns);
        let short = ran_ns < unread_polls::SHORT_POLL_NS;
        if short {
            self.maybe_start_unread_run(ran_ns);
        }
        PollTime::Read { short }
    }

    #[inline]
    fn first_poll_may_end_unread(&self, future: TypeId) -> bool {
        self.unread.first_polls_short(future)
    }

    #[inline]
    fn note_first_poll(&self, future: TypeId, short: bool) {
        self.unread.note_first_poll(future, short);
    }

    fn forget_task(&self, key: usize) {
        if let Ok(mut tasks) = self.tasks.try_borrow_mut() {
            tasks.remove(key);
        }
    }

    #[inline]
    fn task_ended(&self, queue: usize, ending: Ending) {
        let c = &self.counters[queue];
        let counter = match ending {
            Ending::Completed => &c.completed,
            Ending::Cancelled => &c.cancelled,
            Ending::Panicked | Ending::PanickedWhileCancelled => &c.panicked,
        };
        counter.set(counter.get() + 1);
        if ending.in_poll() {
            self.finished_in_poll.set(true);
        }
    }

    fn propagates_panics(&self) -> bool {
        self.config.panic_on_task_panic
    }

    #[cold]
    fn panic_propagates(&self, queue: usize, ready_at_ns: u64) {
        use std::io::Write;
        // The loop books a poll after `Runnable::run` returns, which this one will not.
        // `observed: true` only has the booking look for a report, which exists when
        // the queue's scheduler wants one.
        self.account_poll(queue, self.queue_delay_ns(ready_at_ns), true, None);
        // The poll may have ended unread: its run's time is booked before the panic
        // leaves the loop (the next turn starts a new one).
        self.close_unread_run();
        let name = self.queue_names.get(queue).map_or("?", |name| name);
        // Written, not `eprintln!`: a closed stderr must not turn this into a new panic.
        let _ = writeln!(
            std::io::stderr(),
            "clockworker: the panic above is a task's, in queue {name}; it now leaves \
             Executor::run/run_until because the executor propagates task panics (the \
             default). To get it from the task's JoinHandle as JoinError::Panic instead, \
             build the executor with ExecutorBuilder::with_panic_on_task_panic(false)."
        );
    }
}
