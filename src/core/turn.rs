//! A turn of the run loop: what happens between the host polling the loop and the
//! loop returning `Pending` to it. `begin_turn` reads the clock and sets the turn's
//! deadline, `poll_tasks` polls ready tasks as EEVDF and the queues' schedulers choose
//! them and books each poll, `end_turn` records why the turn stopped.

use std::cell::RefMut;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Context;
use std::time::Duration;

#[cfg(feature = "tracing")]
use crate::observe::spans;
use crate::ready::Ready;
use crate::scheduler::PollReport;
use crate::task::Runnable;

use super::{Core, Stop, UNREAD_END};

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
        // A run is normally closed by the last `end_turn`; not after a panic left the
        // loop.
        self.unread.begin_turn();
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
        self.close_unread_run();
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
    ///
    /// May return with a run of unread polls open: close it (`close_unread_run`)
    /// before polling the driven future, whose poll is no queue's time.
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
            if self.counters.len() > 1
                && self.unread.is_open()
                && !self.ready.borrow().continues_slice(self.now_ns.get())
            {
                // The slice may end here: its run of unread polls ends first. (With one
                // queue there are no slices, and the run ends with the turn.)
                self.close_unread_run();
            }
            let now = self.now_ns.get();
            let chosen = self.ready.borrow_mut().next(now, self.turn_start_ns.get());
            let Some(chosen) = chosen else {
                match self.nothing_chosen(cx, main_woken, *polled, &mut driver_deadline) {
                    Some(stop) => return stop,
                    None => continue,
                }
            };
            self.yield_deadline_ns
                .set(chosen.slice_end_ns.min(driver_deadline));
            let meta = chosen.runnable.metadata();
            if meta.aborted.load(Ordering::Acquire) {
                self.drop_aborted(chosen.runnable, chosen.queue);
                continue;
            }
            if chosen.observed {
                self.poll_report.set(Some((meta.group_id(), meta.arrival)));
            }
            self.finished_in_poll.set(false);
            self.set_running(meta);
            let unwinding = ClearRunningOnUnwind(self);
            #[cfg(feature = "tracing")]
            let span = spans::enter(self.id, &self.queue_names, chosen.queue, meta.arrival);
            let yielded = chosen.runnable.run();
            *polled = true;
            #[cfg(feature = "tracing")]
            spans::exit(span);
            std::mem::forget(unwinding);
            // A task panic that leaves `run` was booked by the `panic_propagates` hook.
            self.account_poll(chosen.queue, chosen.waited_ns, chosen.observed, yielded);
            if self.cancel_requested.get() {
                self.close_unread_run();
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

    /// `Ready::next` chose nothing: a slice switched to a queue that the host-poll
    /// rules may want the host to look at first, the inbox had work, or nothing is
    /// ready. `None`: choose again; `Some`: the turn stops. Out of line: the loop's
    /// hot path keeps its registers for the polls.
    #[cold]
    #[inline(never)]
    fn nothing_chosen(
        &self,
        cx: &mut Context<'_>,
        main_woken: &AtomicBool,
        polled: bool,
        driver_deadline: &mut u64,
    ) -> Option<Stop> {
        let switched = self.ready.borrow_mut().take_switched();
        if let Some(queue) = switched {
            // A slice begins in a queue outranked by tasks that wait on the host: give
            // the host a look first (or, at the turn's start, just after it had one,
            // shorten the turn), as `turn_deadline` would have had the slice begun with
            // the turn.
            if self.outranked_by_waiting(queue) {
                if polled {
                    return Some(self.yield_to_host(cx));
                }
                *driver_deadline = (*driver_deadline).min(
                    self.turn_start_ns
                        .get()
                        .saturating_add(self.config.host_poll_ns),
                );
                self.driver_deadline_ns.set(*driver_deadline);
            }
            return None;
        }
        if self.inbox.park(cx.waker()) {
            self.drain_inbox();
            return None;
        }
        if main_woken.load(Ordering::Acquire) {
            return Some(Stop::MainWoken);
        }
        self.remember_parked(cx.waker());
        Some(Stop::Idle)
    }

    /// Drops an aborted task instead of polling it: dropping the `Runnable` closes the
    /// task and drops its future here; the time it takes is booked, as no poll.
    #[cold]
    #[inline(never)]
    fn drop_aborted(&self, runnable: Runnable, queue: usize) {
        drop(runnable);
        self.account_poll(queue, 0, false, None);
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

    /// Books one `Runnable::run` of a task of queue `queue` that waited `waited_ns` to
    /// run: reads the clock if the task's wrapper did not (then the task was cancelled
    /// and its future only dropped, which is not a poll), charges the time to the queue,
    /// and reports the poll to the queue's scheduler when it is `observed`.
    ///
    /// Called after every `run`, or, when a task panic leaves `run` (the one way `run`
    /// unwinds: the wrapper catches every other panic), from the `panic_propagates`
    /// hook before it does. A guard on the loop's stack booking it instead kept the
    /// poll's fields in memory across `run` for the unwinding path and cost ~10
    /// instructions per poll (callgrind, docs/OVERHEAD_ANALYSIS.md).
    ///
    /// `yielded`: the task, when it was woken during the poll (`Runnable::run` gave it
    /// back); it is queued again.
    #[inline(always)]
    pub(super) fn account_poll(
        &self,
        queue: usize,
        waited_ns: u64,
        observed: bool,
        yielded: Option<Runnable>,
    ) {
        self.clear_running();
        let (end, polled) = match self.poll_end_ns.take() {
            Some(UNREAD_END) => return self.account_unread_poll(queue, waited_ns, yielded),
            Some(end) => (end, true),
            None => (self.clock.now_ns(), false),
        };
        // `now_ns` is the last read until here: the poll's start (a poll that ends
        // with a read was measured alone), or, for a cancelled task dropped during a
        // run, the run's start. Nothing moves it during a poll.
        let ran = end.saturating_sub(self.now_ns.get());
        self.now_ns.set(end);
        let unread = self.unread.take_polls();
        let Some(mut ready) = self.ready_after_poll(end, yielded) else {
            return;
        };
        ready.charge(queue, ran, polled.then_some(waited_ns));
        if unread != 0 {
            if polled {
                // The poll after a run that used up its length: the run's time was
                // charged before it, and it stands for the run's polls.
                ready.count_poll_times(queue, ran, u64::from(unread));
            } else {
                // A cancelled task was dropped (no poll) during a run: `ran` includes
                // the run's time, and the run's polls count as its first one.
                ready.count_poll_times(queue, self.unread.start_ns(), u64::from(unread));
            }
        }
        let report = if observed {
            self.poll_report.take()
        } else {
            None
        };
        if let (Some((group, arrival)), true) = (report, polled) {
            ready.observe(
                queue,
                &PollReport {
                    group,
                    arrival,
                    duration: Duration::from_nanos(ran),
                    finished: self.finished_in_poll.get(),
                },
            );
        }
    }

    /// `account_poll` of a poll that ended without a clock read: counts it (its time
    /// is charged when the run of unread polls closes).
    #[inline(always)]
    fn account_unread_poll(&self, queue: usize, waited_ns: u64, yielded: Option<Runnable>) {
        self.unread.count_poll(queue);
        if let Some(mut ready) = self.ready_after_poll(self.now_ns.get(), yielded) {
            ready.count_unread_poll(queue, waited_ns);
        }
    }

    /// After a poll that ended at `end_ns`: borrows the ready state and queues the task
    /// that was woken during the poll (`yielded`), if one was.
    #[inline(always)]
    fn ready_after_poll(
        &self,
        end_ns: u64,
        yielded: Option<Runnable>,
    ) -> Option<RefMut<'_, Ready>> {
        let Ok(mut ready) = self.ready.try_borrow_mut() else {
            // Unreachable: nothing holds the ready state across a poll. Keep the task.
            if let Some(runnable) = yielded {
                runnable.defer();
            }
            return None;
        };
        if let Some(runnable) = yielded {
            ready.push(runnable, end_ns);
        }
        Some(ready)
    }
}

/// Whether queue `a` outranks queue `b` for the host-poll rules: a higher weight, or
/// `a` is a latency queue.
fn outranks(ready: &Ready, a: usize, b: usize) -> bool {
    a != b && (ready.weight(a) > ready.weight(b) || ready.is_latency(a))
}

/// Clears `Core::running_task` should `Runnable::run` unwind: the task's allocation
/// may be freed on the way out, and `clockworker::spawn` reads the metadata through
/// that pointer. The poll itself is booked by the `panic_propagates` hook before the
/// panic leaves the wrapper (the one way `run` unwinds); this guard keeps the pointer
/// sound even if another way appeared. It holds only the core, which the loop keeps
/// in a register anyway, so it costs nothing on the normal path (`mem::forget`).
struct ClearRunningOnUnwind<'a>(&'a Core);

impl Drop for ClearRunningOnUnwind<'_> {
    #[cold]
    fn drop(&mut self) {
        self.0.clear_running();
    }
}
