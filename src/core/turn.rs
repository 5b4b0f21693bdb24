//! A turn of the run loop: what happens between the host polling the loop and the
//! loop returning `Pending` to it. `begin_turn` reads the clock and sets the turn's
//! deadline, `poll_tasks` polls ready tasks as EEVDF and the queues' schedulers choose
//! them and books each poll, `end_turn` records why the turn stopped.

use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Context;
use std::time::Duration;

#[cfg(feature = "tracing")]
use crate::observe::spans;
use crate::ready::Ready;
use crate::scheduler::PollReport;
use crate::task::self_wake;

use super::{Core, Stop};

/// The future `run_until` drives is polled when it was woken and this many task polls
/// have run since it was last polled, or `MAIN_POLL_WITHIN_NS` have passed, whichever
/// comes first (and whenever the loop would park or return to the host). A future
/// that joins many short tasks then finds a batch of them finished at each poll, instead
/// of being polled, and re-registering its waker, after every one; tokio's
/// `current_thread` runtime polls its `block_on` future every 61 tasks for the same
/// reason (its `event_interval`), whatever their length.
const MAIN_POLL_EVERY: u32 = 32;
/// See `MAIN_POLL_EVERY`: what the wait for a woken driven future is bounded by, in
/// ns, besides the poll in progress.
const MAIN_POLL_WITHIN_NS: u64 = 20_000;

impl Core {
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
            Some(Stop::Idle) => {
                self.idle_since_ns.set(Some(end));
                self.release_spare();
            }
            Some(Stop::DriverYield) => {
                let yields = &self.measure.driver_yields;
                yields.set(yields.get() + 1);
            }
            // `run_until`'s future completed: the loop may not run again for long.
            None => self.release_spare(),
            Some(Stop::MainWoken) => {}
        }
    }

    /// Gives back the spare memory of empty queues; at the end of a turn that leaves
    /// the loop waiting (parked, or `run_until` done), never on the hot path.
    #[cold]
    fn release_spare(&self) {
        if let Ok(mut ready) = self.ready.try_borrow_mut() {
            ready.release_spare();
        }
    }

    /// Polls ready tasks until the driven future is woken, the driver-yield deadline
    /// passes, or nothing is ready. Call between `begin_turn` and `end_turn`;
    /// `polled` says whether a task was polled earlier in this turn (the turn may call
    /// this again after polling the driven future), and is set when one is.
    pub(crate) fn poll_tasks(
        &self,
        cx: &mut Context<'_>,
        main_woken: &AtomicBool,
        polled: &mut bool,
    ) -> Stop {
        let mut driver_deadline = self.driver_deadline_ns.get();
        let mut polls_since_main = 0;
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
                if self.inbox.park(cx.waker()) {
                    self.drain_inbox();
                    continue;
                }
                if main_woken.load(Ordering::Acquire) {
                    return Stop::MainWoken;
                }
                self.remember_parked(cx.waker());
                return Stop::Idle;
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
            self.set_running(meta);
            #[cfg(feature = "tracing")]
            let span = spans::enter(self.id, &self.queue_names, chosen.queue, meta.arrival);
            chosen.runnable.run();
            *polled = true;
            #[cfg(feature = "tracing")]
            spans::exit(span);
            // Accounts the poll here, or while a propagated task panic unwinds.
            drop(accounting);
            if self.cancel_requested.get() {
                self.cancel_all();
            }
            let end = self.now_ns.get();
            polls_since_main += 1;
            if main_woken.load(Ordering::Acquire)
                && (polls_since_main >= MAIN_POLL_EVERY
                    || end.saturating_sub(self.main_polled_ns.get()) >= MAIN_POLL_WITHIN_NS)
            {
                return Stop::MainWoken;
            }
            if end >= driver_deadline || crate::host::budget_spent(|| self.any_ready()) {
                return self.yield_to_host(cx);
            }
            if self.inbox.is_notified() {
                self.drain_inbox();
            }
        }
    }

    /// Returns to the host with work still ready: the host polls the loop again at once.
    fn yield_to_host(&self, cx: &mut Context<'_>) -> Stop {
        self.inbox.set_notified();
        crate::host::yield_to_host(cx);
        Stop::DriverYield
    }

    /// Whether any queue holds a ready task (tasks woken from other threads and still
    /// in the inbox are not counted: the loop drains them on its next turn either way).
    #[cold]
    #[inline(never)]
    fn any_ready(&self) -> bool {
        let Ok(ready) = self.ready.try_borrow() else {
            return true;
        };
        (0..self.counters.len()).any(|q| ready.len(q) > 0)
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
        self.running_task.set(None);
        let (end, polled) = match self.poll_end_ns.take() {
            Some(end) => (end, true),
            None => (self.clock.now_ns(), false),
        };
        let ran = end.saturating_sub(poll.start_ns);
        self.now_ns.set(end);
        let yielded = self_wake::take();
        let Ok(mut ready) = self.ready.try_borrow_mut() else {
            // Unreachable: nothing holds the ready state across a poll. Keep the task.
            if let Some(runnable) = yielded {
                self.inbox.push(runnable);
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
                    duration: Duration::from_nanos(ran),
                    finished: self.finished_in_poll.get(),
                },
            );
        }
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
