//! The ready side of the executor: every queue's scheduler, the EEVDF choice between
//! queues, and the running slice. Executor-thread only (lives in a `RefCell` in `Core`);
//! never calls user code, so no wake can re-enter it.

use crate::eevdf::Eevdf;
use crate::scheduler::{QueueScheduler, ReadyTask};
use crate::stats::Log2Histogram;
use crate::task::Runnable;

/// Ready-time stamp of a task that became ready while the loop was not running; its
/// queue delay is counted from the start of the loop's next turn.
pub(crate) const READY_WHILE_PARKED: u64 = u64::MAX;

/// How long a task that became ready at `ready_at_ns` (`READY_WHILE_PARKED`: while the
/// loop was not running, so from the start of the turn, `turn_start_ns`) has waited
/// when it is polled at `now_ns`: one sample of a queue's (and a group's) queue delay.
#[inline(always)]
pub(crate) fn queue_delay_ns(ready_at_ns: u64, now_ns: u64, turn_start_ns: u64) -> u64 {
    let ready_at = if ready_at_ns == READY_WHILE_PARKED {
        turn_start_ns
    } else {
        ready_at_ns
    };
    now_ns.saturating_sub(ready_at)
}

/// The slice being served: which queue, and until when.
#[derive(Debug, Clone, Copy)]
struct Slice {
    queue: usize,
    end_ns: u64,
}

/// Per-queue measurements kept with the ready state.
#[derive(Debug, Default, Clone)]
pub(crate) struct QueueMeasure {
    pub(crate) service_ns: u64,
    pub(crate) polls: u64,
    pub(crate) queue_delay: Log2Histogram,
    pub(crate) poll_time: Log2Histogram,
}

impl QueueMeasure {
    /// Counts a poll of a task that waited `waited_ns` (its time is booked apart).
    #[inline(always)]
    fn count_poll(&mut self, waited_ns: u64) {
        self.polls += 1;
        self.queue_delay.record(waited_ns);
    }
}

/// A task chosen to run, with what the loop needs after polling it.
pub(crate) struct Chosen {
    pub(crate) runnable: Runnable,
    pub(crate) queue: usize,
    /// The end of the running slice (u64::MAX with a single queue).
    pub(crate) slice_end_ns: u64,
    /// How long the task waited between becoming ready and now.
    pub(crate) waited_ns: u64,
    /// Whether the queue's scheduler wants a report after the poll.
    pub(crate) observed: bool,
}

pub(crate) struct Ready {
    queues: Vec<QueueScheduler>,
    observed: Vec<bool>,
    pub(crate) measures: Vec<QueueMeasure>,
    eevdf: Eevdf,
    slice: Option<Slice>,
    /// Set when a queue with an earlier virtual deadline became runnable during the
    /// running slice; the slice ends at the next poll boundary.
    preempt: bool,
    /// When set, `next` stops (returns `None`) once when the running slice ends and
    /// EEVDF picks another queue, recording that queue in `switched` (the new slice is
    /// set, and the next call serves it).
    stop_at_switch: bool,
    switched: Option<usize>,
}

impl Ready {
    pub(crate) fn new(queues: Vec<QueueScheduler>, eevdf: Eevdf) -> Self {
        let observed = queues.iter().map(QueueScheduler::wants_reports).collect();
        let measures = vec![QueueMeasure::default(); queues.len()];
        Ready {
            queues,
            observed,
            measures,
            eevdf,
            slice: None,
            preempt: false,
            stop_at_switch: false,
            switched: None,
        }
    }

    /// Whether queue `q`'s scheduler counts a task's service per burst (see
    /// `push_woken`).
    pub(crate) fn counts_per_burst(&self, q: usize) -> bool {
        self.queues[q].counts_per_burst()
    }

    /// Whether queue `q`'s scheduler is told of each poll (`Scheduler::observe`).
    pub(crate) fn is_observed(&self, q: usize) -> bool {
        self.observed[q]
    }

    /// Whether queue `q`'s scheduler asks for poll timing.
    pub(crate) fn is_timed(&self, q: usize) -> bool {
        self.queues[q].needs_timing()
    }

    /// Number of ready tasks in queue `q`.
    pub(crate) fn len(&self, q: usize) -> usize {
        self.queues[q].len()
    }

    /// Polls and CPU time summed over all queues.
    pub(crate) fn totals(&self) -> (u64, u64) {
        self.measures.iter().fold((0, 0), |(polls, ns), m| {
            (polls + m.polls, ns + m.service_ns)
        })
    }

    pub(crate) fn weight(&self, q: usize) -> u32 {
        self.eevdf.weight(q)
    }

    /// Asks `next` to stop once each time a slice ends and another queue's begins
    /// (see `take_switched`), so that the loop can decide whether to return to the host
    /// before that queue is served.
    pub(crate) fn set_stop_at_switch(&mut self, stop: bool) {
        self.stop_at_switch = stop;
    }

    /// The queue whose new slice made the last `next` return `None`, if that is why it
    /// did; the next call to `next` serves it.
    pub(crate) fn take_switched(&mut self) -> Option<usize> {
        self.switched.take()
    }

    /// The queue of the running slice, if any.
    pub(crate) fn slice_queue(&self) -> Option<usize> {
        self.slice.map(|slice| slice.queue)
    }

    /// Whether queue `q` is a latency queue.
    pub(crate) fn is_latency(&self, q: usize) -> bool {
        self.eevdf.is_latency(q)
    }

    /// Whether the running slice should end at the next poll boundary: preemption by
    /// a queue that became runnable, or a waiting queue that has repaid its debt
    /// counting `in_poll_ns` of the poll in progress (see `Eevdf::cut_due`).
    pub(crate) fn preempt_pending(&self, in_poll_ns: u64) -> bool {
        self.preempt || self.eevdf.cut_due(in_poll_ns)
    }

    /// Takes a task that was woken while it was not running (I/O, a timer, a channel,
    /// another task), or just spawned, at `now_ns`: a new burst of the task begins,
    /// which restarts its attained service on queues whose scheduler counts service
    /// per burst (`LAS::new`). Returns true when this asks the running slice to end
    /// early (preemption).
    #[inline(always)]
    pub(crate) fn push_woken(&mut self, runnable: Runnable, now_ns: u64) -> bool {
        let meta = runnable.metadata();
        if self.counts_per_burst(meta.queue()) {
            meta.service_ns
                .store(0, std::sync::atomic::Ordering::Relaxed);
        }
        self.push(runnable, now_ns)
    }

    /// Takes a task that became ready at `now_ns` and goes on with its burst: it woke
    /// itself during its poll (a yield). Returns true when this asks the running slice
    /// to end early (preemption).
    #[inline(always)]
    pub(crate) fn push(&mut self, runnable: Runnable, now_ns: u64) -> bool {
        let meta = runnable.metadata();
        let q = meta.queue();
        meta.ready_at_ns
            .store(now_ns, std::sync::atomic::Ordering::Relaxed);
        self.queues[q].push(ReadyTask::new(runnable));
        if self.queues.len() > 1 && !self.eevdf.is_runnable(q) && self.eevdf.enqueue(q) {
            self.preempt = true;
            return true;
        }
        false
    }

    /// Chooses the next task at time `now_ns`: continue the running slice while it has
    /// time, work and no preemption; otherwise end it and let EEVDF pick a queue.
    #[inline]
    pub(crate) fn next(&mut self, now_ns: u64, turn_start_ns: u64) -> Option<Chosen> {
        if self.queues.len() == 1 {
            return self.pop_from(0, now_ns, turn_start_ns, u64::MAX);
        }
        loop {
            // The queue whose slice just ended, if one did.
            let mut ended = None;
            if let Some(slice) = self.slice {
                if self.slice_may_go_on(slice, now_ns) {
                    if let Some(chosen) =
                        self.pop_from(slice.queue, now_ns, turn_start_ns, slice.end_ns)
                    {
                        return Some(chosen);
                    }
                }
                let still_runnable = self.queues[slice.queue].len() > 0;
                self.eevdf.finish(still_runnable);
                self.slice = None;
                self.preempt = false;
                ended = Some(slice.queue);
            }
            let pick = self.eevdf.pick()?;
            self.slice = Some(Slice {
                queue: pick.queue,
                end_ns: now_ns.saturating_add(pick.slice_ns),
            });
            if self.stop_at_switch && ended.is_some_and(|queue| queue != pick.queue) {
                self.switched = Some(pick.queue);
                return None;
            }
        }
    }

    #[inline(always)]
    fn pop_from(
        &mut self,
        q: usize,
        now_ns: u64,
        turn_start_ns: u64,
        slice_end_ns: u64,
    ) -> Option<Chosen> {
        let task = self.queues[q].pop()?;
        let runnable = task.into_runnable();
        let ready_at = runnable.metadata().ready_at_ns();
        Some(Chosen {
            runnable,
            queue: q,
            waited_ns: queue_delay_ns(ready_at, now_ns, turn_start_ns),
            slice_end_ns,
            observed: self.observed[q],
        })
    }

    /// Accounts `ran_ns` of CPU to queue `q`: a poll of a task that waited
    /// `waited_ns` to run, or (`None`) the drop of a cancelled task's future.
    #[inline]
    pub(crate) fn charge(&mut self, q: usize, ran_ns: u64, waited_ns: Option<u64>) {
        let measure = &mut self.measures[q];
        measure.service_ns += ran_ns;
        if let Some(waited_ns) = waited_ns {
            measure.count_poll(waited_ns);
            measure.poll_time.record(ran_ns);
        }
        self.charge_slice(ran_ns);
    }

    /// Accounts `ran_ns` of CPU to queue `q`: the time of polls that ended without a
    /// clock read (see `core::unread_polls`), counted as they ended.
    pub(crate) fn charge_time(&mut self, q: usize, ran_ns: u64) {
        self.measures[q].service_ns += ran_ns;
        self.charge_slice(ran_ns);
    }

    /// Charges `ran_ns` to the running slice's queue in EEVDF, if a slice runs.
    #[inline(always)]
    fn charge_slice(&mut self, ran_ns: u64) {
        if self.slice.is_some() {
            self.eevdf.charge(ran_ns);
        }
    }

    /// Counts `polls` more polls of queue `q` in its poll-time histogram, each as long
    /// as `ns` (polls that ended without a clock read, see `core::unread_polls`).
    pub(crate) fn count_poll_times(&mut self, q: usize, ns: u64, polls: u64) {
        self.measures[q].poll_time.record_many(ns, polls);
    }

    /// Counts a poll of queue `q` that ended without a clock read, by a task that
    /// waited `waited_ns`: its time is charged when the run of unread polls closes.
    #[inline]
    pub(crate) fn count_unread_poll(&mut self, q: usize, waited_ns: u64) {
        self.measures[q].count_poll(waited_ns);
    }

    /// Whether `next` at `now_ns` would go on with the running slice (with several
    /// queues): a run of unread polls must be closed before a slice ends.
    #[inline]
    pub(crate) fn continues_slice(&self, now_ns: u64) -> bool {
        self.slice.is_some_and(|slice| {
            self.slice_may_go_on(slice, now_ns) && self.queues[slice.queue].len() > 0
        })
    }

    /// Whether `slice` may serve another task at `now_ns`: not preempted, not over,
    /// not cut (`next`, and `continues_slice` asks the same).
    #[inline(always)]
    fn slice_may_go_on(&self, slice: Slice, now_ns: u64) -> bool {
        !self.preempt && now_ns < slice.end_ns && !self.eevdf.cut_due(0)
    }

    /// Lets the user scheduler of queue `q` see a poll report.
    #[inline]
    pub(crate) fn observe(&mut self, q: usize, report: &crate::scheduler::PollReport) {
        self.queues[q].observe(report);
    }

    /// Gives back the spare memory of empty built-in queues (see
    /// `QueueScheduler::release_spare`). Called when the run loop parks or its
    /// `run_until` future completes.
    pub(crate) fn release_spare(&mut self) {
        for queue in &mut self.queues {
            queue.release_spare();
        }
    }

    /// Removes every ready task (for shutdown) and forgets the running slice.
    pub(crate) fn drain_all(&mut self, into: &mut Vec<Runnable>) {
        for queue in &mut self.queues {
            while let Some(task) = queue.pop() {
                into.push(task.into_runnable());
            }
        }
        if self.slice.take().is_some() {
            self.eevdf.finish(false);
        }
        // Empty queues leave the runnable set one pick at a time.
        while self.eevdf.pick().is_some() {
            self.eevdf.finish(false);
        }
        self.preempt = false;
    }

    pub(crate) fn set_weight(&mut self, q: usize, weight: u32) {
        self.eevdf.set_weight(q, weight);
    }
}
