//! The executor's shared state and its run loop, independent of the queue key type.
//!
//! Threads: everything here except `remote` is touched only on the executor's thread.
//! Borrows: `ready` and `tasks` are borrowed only for short stretches that never run
//! user code (no poll, no future drop, no waker call), so a wake or a spawn from inside
//! a task, or from a future's `Drop`, never meets a borrowed cell. Where it could (a
//! wake while `ready` is borrowed by our own bookkeeping), the wake falls back to the
//! inbox instead of panicking.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Waker};

use slab::Slab;

use crate::clock::Clock;
use crate::ready::Ready;
use crate::remote::Remote;
use crate::remote_spawn::SpawnQueue;
use crate::scheduler::PollReport;
use crate::task::group::GroupRegistry;
use crate::task::schedule::take_woken_while_running;
use crate::task::Runnable;

/// Ready-time stamp of a task that became ready while the loop was not running; its
/// queue delay is counted from the start of the loop's next turn.
pub(crate) const READY_WHILE_PARKED: u64 = u64::MAX;

/// How many times `cancel_all` yields the thread waiting for a wake in flight on
/// another thread before it gives up (each round is one `thread::yield_now`; a push in
/// flight lands within a few).
const MAX_CANCEL_WAIT_ROUNDS: u32 = 10_000;

/// Settings fixed at build time.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) driver_yield_ns: u64,
    /// See `ExecutorBuilder::with_host_poll_interval`.
    pub(crate) host_poll_ns: u64,
    pub(crate) panic_on_task_panic: bool,
}

/// Per-queue task counters, updated by the task wrapper.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) spawned: Cell<u64>,
    pub(crate) completed: Cell<u64>,
    pub(crate) cancelled: Cell<u64>,
    pub(crate) panicked: Cell<u64>,
}

/// Executor-wide measurements.
#[derive(Debug, Default)]
pub(crate) struct LoopMeasure {
    pub(crate) idle_ns: Cell<u64>,
    pub(crate) driver_yields: Cell<u64>,
    pub(crate) max_gap_ns: Cell<u64>,
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

pub(crate) struct Core {
    pub(crate) id: u64,
    pub(crate) remote: Arc<Remote>,
    pub(crate) config: Config,
    pub(crate) ready: RefCell<Ready>,
    /// One waker per live task, so shutdown can reach parked tasks.
    pub(crate) tasks: RefCell<Slab<Waker>>,
    /// Service accounts of task groups.
    pub(crate) groups: RefCell<GroupRegistry>,
    /// Spawn requests from other threads (`RemoteSpawner`).
    pub(crate) remote_spawns: Arc<SpawnQueue>,
    pub(crate) counters: Vec<Counters>,
    /// Per queue: whether its scheduler asks for poll timing (`needs_timing`), so its
    /// tasks' attained service is kept. Fixed at build time.
    pub(crate) timed: Box<[bool]>,
    pub(crate) measure: LoopMeasure,
    clock: Clock,
    /// Last clock reading (ns): the start of the current poll while one runs.
    now_ns: Cell<u64>,
    /// When the current turn of the run loop began.
    turn_start_ns: Cell<u64>,
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
    /// Set by a task's wrapper when its future finishes during the current poll.
    pub(crate) finished_in_poll: Cell<bool>,
    /// The clock reading a task's wrapper took at the end of its poll, if it did (a
    /// cancelled task is dropped without a poll, and then the loop reads the clock).
    poll_end_ns: Cell<Option<u64>>,
}

impl Core {
    pub(crate) fn new(id: u64, mut ready: Ready, queue_count: usize, config: Config) -> Self {
        let timed = (0..queue_count).map(|q| ready.is_timed(q)).collect();
        ready.set_stop_at_switch(queue_count > 1 && config.host_poll_ns < config.driver_yield_ns);
        Core {
            id,
            remote: Arc::new(Remote::new(id)),
            config,
            ready: RefCell::new(ready),
            tasks: RefCell::new(Slab::new()),
            groups: RefCell::new(GroupRegistry::default()),
            remote_spawns: Arc::new(SpawnQueue::new()),
            counters: (0..queue_count).map(|_| Counters::default()).collect(),
            timed,
            measure: LoopMeasure::default(),
            clock: Clock::new(),
            now_ns: Cell::new(0),
            turn_start_ns: Cell::new(0),
            driver_deadline_ns: Cell::new(u64::MAX),
            yield_deadline_ns: Cell::new(u64::MAX),
            polling: Cell::new(false),
            host_woken: Cell::new(false),
            idle_since_ns: Cell::new(None),
            shut_down: Cell::new(false),
            cancel_requested: Cell::new(false),
            next_arrival: Cell::new(0),
            finished_in_poll: Cell::new(false),
            poll_end_ns: Cell::new(None),
        }
    }

    pub(crate) fn is_shut_down(&self) -> bool {
        self.shut_down.get()
    }

    pub(crate) fn next_arrival(&self) -> u64 {
        let arrival = self.next_arrival.get();
        self.next_arrival.set(arrival + 1);
        arrival
    }

    /// The last clock reading: the start of the running poll, or the end of the last.
    pub(crate) fn now_ns(&self) -> u64 {
        self.now_ns.get()
    }

    /// Called by a task's wrapper at the end of its poll: reads the clock once for the
    /// poll, leaves the reading for the run loop, and returns the poll's duration.
    #[inline]
    pub(crate) fn end_poll(&self) -> u64 {
        let end = self.clock.now_ns();
        self.poll_end_ns.set(Some(end));
        end.saturating_sub(self.now_ns.get())
    }

    /// Reads the clock outside a task poll (after the driven future was polled).
    pub(crate) fn refresh_clock(&self) {
        self.now_ns.set(self.clock.now_ns());
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
        preempt || self.remote.is_notified() || now >= self.yield_deadline_ns.get()
    }

    /// Queues a task that became ready on this thread (spawn, or a local wake).
    pub(crate) fn push_ready(&self, runnable: Runnable) {
        let mut slot = Some(runnable);
        self.try_push_local(&mut slot);
        if let Some(runnable) = slot {
            self.remote.push(runnable);
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
            ready.push(runnable, stamp);
        }
        drop(ready);
        if !self.polling.get() && !self.host_woken.get() {
            self.host_woken.set(true);
            self.remote.notify();
        }
    }

    /// Called by a task's wrapper when its future is dropped.
    pub(crate) fn forget_task(&self, key: usize) {
        let waker = self
            .tasks
            .try_borrow_mut()
            .ok()
            .and_then(|mut tasks| tasks.try_remove(key));
        drop(waker);
    }

    /// Moves tasks woken on other threads into their queues, wakes aborted tasks so
    /// the loop meets them and drops them, and spawns tasks sent by other threads.
    fn drain_inbox(self: &Rc<Self>) {
        if !self.remote.take_notification() {
            return;
        }
        if !self.remote_spawns.is_empty() {
            self.remote_spawns.run_jobs(self);
        }
        {
            let mut ready = self.ready.borrow_mut();
            while let Some(runnable) = self.remote.pop() {
                ready.push(runnable, READY_WHILE_PARKED);
            }
        }
        while let Some(key) = self.remote.pop_abort() {
            // The key may already belong to a newer task (the aborted one finished
            // meanwhile): that task gets a spurious wake, which futures tolerate.
            let waker = self.tasks.borrow().get(key).cloned();
            if let Some(waker) = waker {
                waker.wake();
            }
        }
    }

    /// Stops new spawns and cancels every task. From inside a task, the cancellation
    /// happens right after that task's poll.
    pub(crate) fn shutdown(&self) {
        self.shut_down.set(true);
        self.remote_spawns.close();
        if self.polling.get() {
            self.cancel_requested.set(true);
        } else {
            self.cancel_all();
        }
        self.remote.notify();
    }

    /// Drops every task's future on this thread: wakes each registered task (so parked
    /// ones become ready), then drops all ready tasks, until no task is left. Dropping a
    /// future may wake or spawn others; the loop runs until the registry is empty.
    ///
    /// A task woken on another thread at the same moment may be between "scheduled" and
    /// "pushed into the inbox"; it keeps its registry entry (removed only when its
    /// future is dropped), so the loop waits for that push instead of missing it.
    pub(crate) fn cancel_all(&self) {
        self.cancel_requested.set(false);
        let mut doomed: Vec<Runnable> = Vec::new();
        let mut idle_rounds = 0;
        loop {
            let wakers: Vec<Waker> = self.tasks.borrow().iter().map(|(_, w)| w.clone()).collect();
            if wakers.is_empty() {
                return;
            }
            for waker in wakers {
                waker.wake();
            }
            self.ready.borrow_mut().drain_all(&mut doomed);
            while let Some(runnable) = self.remote.pop() {
                doomed.push(runnable);
            }
            if doomed.is_empty() {
                // Every live task is scheduled by another thread whose push has not
                // landed yet: give that thread the CPU. A scheduler that hides tasks
                // from `pop` would keep us here forever; after a while, stop (its
                // tasks are dropped with it, on this thread, when the executor goes).
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

    /// Starts a turn: the host just polled the run loop. Reads the clock and sets the
    /// deadline by which the loop returns to the host.
    pub(crate) fn begin_turn(&self) {
        let turn_start = self.clock.now_ns();
        self.now_ns.set(turn_start);
        self.turn_start_ns.set(turn_start);
        self.driver_deadline_ns
            .set(turn_start.saturating_add(self.config.driver_yield_ns));
        if self.counters.len() > 1 {
            // The slice running on from the last turn (with none, the queues that are
            // ready) decides this turn's length, once per turn: nothing of it runs
            // per poll.
            let running = self.ready.borrow().slice_queue();
            self.driver_deadline_ns.set(self.turn_deadline(running));
        }
        if let Some(since) = self.idle_since_ns.take() {
            let idle = &self.measure.idle_ns;
            idle.set(idle.get() + turn_start.saturating_sub(since));
        }
        self.host_woken.set(false);
        if self.cancel_requested.get() {
            // A shutdown from inside a task whose poll then panicked out of the loop.
            self.cancel_all();
        }
    }

    /// Ends a turn: the run loop returns to the host because of `stop` (or, with
    /// `None`, because the future it drives completed).
    pub(crate) fn end_turn(&self, stop: Option<Stop>) {
        let end = self.now_ns.get();
        let gap = end.saturating_sub(self.turn_start_ns.get());
        if gap > self.measure.max_gap_ns.get() {
            self.measure.max_gap_ns.set(gap);
        }
        match stop {
            Some(Stop::Idle) => self.idle_since_ns.set(Some(end)),
            Some(Stop::DriverYield) => {
                let yields = &self.measure.driver_yields;
                yields.set(yields.get() + 1);
            }
            Some(Stop::MainWoken) | None => {}
        }
    }

    /// Polls ready tasks until the driven future is woken, the driver-yield deadline
    /// passes, or nothing is ready. Call between `begin_turn` and `end_turn`;
    /// `polled` says whether a task was polled earlier in this turn (the turn may call
    /// this again after polling the driven future), and is set when one is.
    pub(crate) fn poll_tasks(
        self: &Rc<Self>,
        cx: &mut Context<'_>,
        main_woken: &AtomicBool,
        polled: &mut bool,
    ) -> Stop {
        let mut driver_deadline = self.driver_deadline_ns.get();
        self.drain_inbox();
        loop {
            let now = self.now_ns.get();
            let chosen = self.ready.borrow_mut().next(now, self.turn_start_ns.get());
            let Some(chosen) = chosen else {
                let switched = self.ready.borrow_mut().take_switched();
                if let Some(queue) = switched {
                    // A slice begins in a queue outranked by tasks that wait on the
                    // host: give the host a look first (or, at the turn's start, just
                    // after it had one, shorten the turn), as `turn_deadline` would
                    // have had the slice begun with the turn.
                    if self.outranked_by_waiting(queue) {
                        if *polled {
                            return self.yield_to_host(cx);
                        }
                        driver_deadline = driver_deadline.min(
                            self.turn_start_ns
                                .get()
                                .saturating_add(self.config.host_poll_ns),
                        );
                        self.driver_deadline_ns.set(driver_deadline);
                    }
                    continue;
                }
                self.remote.register_host(cx.waker());
                if self.remote.is_notified() {
                    self.drain_inbox();
                    continue;
                }
                return if main_woken.load(Ordering::Acquire) {
                    Stop::MainWoken
                } else {
                    Stop::Idle
                };
            };
            self.yield_deadline_ns
                .set(chosen.slice_end_ns.min(driver_deadline));
            let meta = chosen.runnable.metadata();
            if meta.aborted.load(Ordering::Acquire) {
                // Dropping the Runnable closes the task and drops its future here.
                let accounting = PollAccounting::cancellation(self, chosen.queue, now);
                drop(chosen.runnable);
                drop(accounting);
                continue;
            }
            let accounting = PollAccounting {
                core: self,
                queue: chosen.queue,
                start_ns: now,
                waited_ns: chosen.waited_ns,
                report: chosen.observed.then(|| (meta.group_id(), meta.arrival)),
            };
            self.finished_in_poll.set(false);
            #[cfg(feature = "tracing")]
            let span = crate::observe::poll_span(self.id, chosen.queue, meta.arrival);
            chosen.runnable.run();
            *polled = true;
            #[cfg(feature = "tracing")]
            crate::observe::end_poll_span(span);
            // Accounts the poll here, or while a propagated task panic unwinds.
            drop(accounting);
            if self.cancel_requested.get() {
                self.cancel_all();
            }
            let end = self.now_ns.get();
            if main_woken.load(Ordering::Acquire) {
                return Stop::MainWoken;
            }
            if end >= driver_deadline || crate::host::budget_spent(self) {
                return self.yield_to_host(cx);
            }
            if self.remote.is_notified() {
                self.drain_inbox();
            }
        }
    }

    /// Returns to the host with work still ready: the host polls the loop again at once.
    fn yield_to_host(&self, cx: &mut Context<'_>) -> Stop {
        self.remote.set_notified();
        crate::host::yield_to_host(cx);
        Stop::DriverYield
    }

    /// When the current turn returns to the host: after `driver_yield`, or after
    /// `host_poll_interval` while the queue served (the running slice's queue, or with
    /// no slice running, any queue with ready tasks) is outranked by a queue whose live
    /// tasks are not ready, i.e. wait on something the host may deliver. Decided at the
    /// start of each turn; a slice that starts mid-turn in a queue so outranked first
    /// returns to the host (see `poll_tasks`), so that its turn is decided the same way.
    #[cold]
    #[inline(never)]
    fn turn_deadline(&self, running: Option<usize>) -> u64 {
        let full = self
            .turn_start_ns
            .get()
            .saturating_add(self.config.driver_yield_ns);
        if self.counters.len() == 1 || self.config.host_poll_ns >= self.config.driver_yield_ns {
            return full;
        }
        let short = match running {
            Some(queue) => self.outranked_by_waiting(queue),
            None => {
                let any_ready = |q: usize| self.ready.borrow().len(q) > 0;
                (0..self.counters.len()).any(|q| any_ready(q) && self.outranked_by_waiting(q))
            }
        };
        if short {
            full.min(
                self.turn_start_ns
                    .get()
                    .saturating_add(self.config.host_poll_ns),
            )
        } else {
            full
        }
    }

    /// Whether queue `served` is outranked (see `outranks`) by a queue with live tasks
    /// that are not ready: tasks that wait on something the host may deliver (a socket,
    /// a timer), which the loop learns of only when it returns to the host.
    #[cold]
    #[inline(never)]
    fn outranked_by_waiting(&self, served: usize) -> bool {
        let ready = self.ready.borrow();
        (0..self.counters.len())
            .any(|q| outranks(&ready, q, served) && self.waits_on_host(&ready, q))
    }

    /// Whether queue `q` has live tasks that are not ready.
    fn waits_on_host(&self, ready: &Ready, q: usize) -> bool {
        let c = &self.counters[q];
        let ended = c.completed.get() + c.cancelled.get() + c.panicked.get();
        c.spawned.get().saturating_sub(ended) > ready.len(q) as u64
    }

    /// Books one `Runnable::run`: reads the clock if the task's wrapper did not (then
    /// the task was cancelled and its future only dropped, which is not a poll), and
    /// charges the time to the queue.
    #[inline(always)]
    fn account_poll(&self, poll: &PollAccounting<'_>) {
        let (end, polled) = match self.poll_end_ns.take() {
            Some(end) => (end, true),
            None => (self.clock.now_ns(), false),
        };
        let ran = end.saturating_sub(poll.start_ns);
        self.now_ns.set(end);
        let yielded = take_woken_while_running();
        let Ok(mut ready) = self.ready.try_borrow_mut() else {
            // Unreachable: nothing holds the ready state across a poll. Keep the task.
            if let Some(runnable) = yielded {
                self.remote.push(runnable);
            }
            return;
        };
        if let Some(runnable) = yielded {
            ready.push(runnable, end);
        }
        ready.charge(poll.queue, ran, polled.then_some(poll.waited_ns));
        if let (Some((group, arrival)), true) = (poll.report, polled) {
            ready.observe(
                poll.queue,
                &PollReport {
                    group,
                    arrival,
                    duration: std::time::Duration::from_nanos(ran),
                    finished: self.finished_in_poll.get(),
                },
            );
        }
    }

    /// Marks the start and end of a poll of the host (see `executor::Entered`).
    pub(crate) fn set_polling(&self, polling: bool) {
        self.polling.set(polling);
    }
}

/// Whether queue `a` outranks queue `b` for the host-poll rules: a higher weight, or
/// `a` is a latency queue.
fn outranks(ready: &Ready, a: usize, b: usize) -> bool {
    a != b && (ready.weight(a) > ready.weight(b) || ready.is_latency(a))
}

/// What the run loop knows about a task poll in progress; dropping it books the poll
/// (see `Core::account_poll`), also when a task panic unwinds through the loop.
struct PollAccounting<'a> {
    core: &'a Core,
    queue: usize,
    start_ns: u64,
    waited_ns: u64,
    report: Option<(Option<u64>, u64)>,
}

impl<'a> PollAccounting<'a> {
    /// Accounting for dropping an aborted task's future: CPU time, but no poll.
    fn cancellation(core: &'a Core, queue: usize, start_ns: u64) -> Self {
        PollAccounting {
            core,
            queue,
            start_ns,
            waited_ns: 0,
            report: None,
        }
    }
}

impl Drop for PollAccounting<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        self.core.account_poll(self);
    }
}
