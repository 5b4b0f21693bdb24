//! Polls that end without a clock read.
//!
//! Reading the TSC at the end of every poll cost ~39 ns of a task's ~240 in
//! `overhead_profile` (six polls; docs/OVERHEAD_ANALYSIS.md), far more than its
//! instructions. So after a poll that was measured alone and took less than
//! `SHORT_POLL_NS`, the next 4 to 11 polls may end unread: the wrapper leaves the
//! loop's clock (`Core::now_ns`) where it was, and the next read covers every poll
//! since the one before. While the runs that close show polls under `GROW_BELOW_NS`
//! on average (a read then costs as much as several polls), runs double in length, up
//! to 32 to 88 polls; a read that measures a poll of `SHORT_POLL_NS` or more puts them
//! back at 4 to 11.
//!
//! Which polls may end unread: those of a task that books nothing itself (not LAS, no
//! group) and whose queue's scheduler does not observe polls, when the task's last
//! measured poll was short (`TaskMeta::poll_flags`), or, for its first poll, when the
//! last first poll the executor measured of a task of the same future type was short
//! (`UnreadRun::first_polls_short`: the type stands in for the task's own history,
//! which a new task lacks). A new task of a type whose first polls run long (a batch
//! of heavy jobs) is measured alone, so a run of them cannot see a deadline late.
//!
//! What stays exact and what does not:
//! - **Service time and EEVDF's charge** stay exact in total: the read that closes a
//!   run charges the run's whole time to its queue. A run never crosses a slice (the
//!   loop closes it before `Ready::next` may switch queues), the end of a turn, or the
//!   poll of `run_until`'s future, and it is closed before a poll that may not end
//!   unread (`close_run_before_poll`), so that a task that books its own polls (LAS,
//!   groups) gets its own time only. A panic that leaves the loop closes its run too.
//! - **Poll counts and queue delays** are kept for every poll; the queue delay of a
//!   poll inside a run is measured from the run's last read (at most the run's length
//!   early).
//! - **The poll-time histogram is sampled within runs**, and its count stays the
//!   number of polls. When a run has used up its length, a read before the next poll
//!   of a task that may end unread closes it; every other time that poll is then
//!   measured alone and counts once for itself and once for each poll of the runs
//!   since the last such sample (the other times a new run starts with that poll, so
//!   a run costs one read, not two): it comes from the same tasks as the runs' polls,
//!   not chosen by their length, and run lengths vary so that it does not follow a
//!   rotation of tasks either. Every poll of a task that may not end unread is
//!   measured alone (a run open before it is closed first) and counts for itself.
//!   Runs cut short (a slice or turn ends, such a task comes) count their polls as
//!   long as the poll that started the first of them.
//! - **Deadlines** (slice end, driver yield, the batching of `run_until`'s future)
//!   are seen late only when a run's polls, of tasks whose last measured poll was
//!   short (or new tasks of a type whose last measured first poll was), turn out
//!   long, and then by at most the run: 11 polls, or 88 once runs grew (after polls
//!   under `GROW_BELOW_NS`; tokio's `current_thread` runtime sees its driver after
//!   61 polls every time, whatever their length). A run starts only when the
//!   deadline is further away than `UNREAD_GUARD_NS`, and than the longest run may
//!   be in polls as long as the longest a read measured lately
//!   (`UnreadRun::longest_ns`: a poll, or a run's mean when its close read it; halved
//!   at each turn). So once a run shows long polls, runs stop growing and stop
//!   starting near deadlines until those polls fade: a workload that changes from
//!   short polls to long ones pays one late deadline, not one per turn.

use std::any::TypeId;
use std::cell::Cell;

use super::Core;

/// Runs are `RUN_MIN..=RUN_MIN + 7` polls long, times `1 << growth` (see
/// `MAX_GROWTH`), varied so that the sampled poll never falls in step with a fixed
/// rotation of tasks (three tasks taking turns and runs of a fixed length would sample
/// the same task every time).
const RUN_MIN: u32 = 4;
/// The longest a run gets before it grows.
const RUN_MAX: u32 = RUN_MIN + 7;
/// Runs double in length, up to this many times (to 32..=88 polls), while the runs
/// that close show polls shorter than `GROW_BELOW_NS` on average: the clock read then
/// costs as much as several polls (~10 ns here), and the next run's expected time,
/// at most `RUN_MAX << MAX_GROWTH` polls of `GROW_BELOW_NS` (11 µs), stays below
/// `UNREAD_GUARD_NS`.
const MAX_GROWTH: u32 = 3;
/// A run whose polls took less than this on average lets the next runs grow.
const GROW_BELOW_NS: u64 = 125;
/// A measured poll shorter than this may start a run of unread polls.
pub(super) const SHORT_POLL_NS: u64 = 1_000;
/// A run starts only if the poll's deadline (`yield_deadline_ns`) is further away
/// than this.
const UNREAD_GUARD_NS: u64 = 16_000;

/// The open run of unread polls, if any (one per executor, in `Core`).
#[derive(Debug, Default)]
pub(super) struct UnreadRun {
    /// Polls that may still end unread.
    left: Cell<u32>,
    /// Polls that ended unread and are not yet in the poll-time histogram.
    polls: Cell<u32>,
    /// Polls that ended unread since the last clock read (`polls` spans two runs when
    /// a run went on without a sample, see `sample_due`).
    run_polls: Cell<u32>,
    /// Whether the next run that uses up its length is followed by a measured poll
    /// (its sample); toggled at each, so every other one is.
    sample_due: Cell<bool>,
    /// Their queue (a run never crosses a slice, so they share one).
    queue: Cell<usize>,
    /// The duration of the poll that started the run, for a run cut short.
    start_ns: Cell<u64>,
    /// State of the generator of run lengths (a linear congruential one: the lengths
    /// need only vary, not be unpredictable).
    seed: Cell<u32>,
    /// The longest time one clock read measured lately for one poll: a poll of a task
    /// that may end unread, or the mean of a run's polls when its close read them.
    /// Halved at each turn's start.
    longest_ns: Cell<u64>,
    /// The future type of the last first poll measured, if that poll was short: a
    /// new task of that type may end its first poll unread.
    short_first_poll: Cell<Option<TypeId>>,
    /// How many times runs have doubled in length (`0..=MAX_GROWTH`): one more at
    /// each run that closes with polls shorter than `GROW_BELOW_NS` on average, one
    /// less at a run whose polls were longer, back to none at a read that measured
    /// a poll (or a run's mean) of `SHORT_POLL_NS` or more.
    growth: Cell<u32>,
}

impl UnreadRun {
    /// Whether polls ended unread that are not yet in the poll-time histogram.
    #[inline(always)]
    pub(super) fn is_open(&self) -> bool {
        self.polls.get() != 0
    }

    /// At a turn's start: forgets a run a panic left open, and lets the longest
    /// poll measured lately fade (halved).
    pub(super) fn begin_turn(&self) {
        self.left.set(0);
        self.polls.set(0);
        self.run_polls.set(0);
        self.longest_ns.set(self.longest_ns.get() / 2);
    }

    /// A clock read measured a poll of `ns`.
    #[inline(always)]
    pub(super) fn note_measured(&self, ns: u64) {
        if ns > self.longest_ns.get() {
            self.longest_ns.set(ns);
        }
        if ns >= SHORT_POLL_NS {
            self.growth.set(0);
        }
    }

    /// A run's close read measured its polls at `mean_ns` each on average: the next
    /// runs grow when they were shorter than `GROW_BELOW_NS`, shrink otherwise.
    fn note_run_mean(&self, mean_ns: u64) {
        let growth = self.growth.get();
        if mean_ns < GROW_BELOW_NS {
            self.growth.set((growth + 1).min(MAX_GROWTH));
        } else {
            self.growth.set(growth.saturating_sub(1));
        }
        self.note_measured(mean_ns);
    }

    /// The longest the next run may get.
    #[inline(always)]
    fn max_length(&self) -> u32 {
        RUN_MAX << self.growth.get()
    }

    /// Whether the last first poll measured of a task whose future has type
    /// `future` was short.
    #[inline(always)]
    pub(super) fn first_polls_short(&self, future: TypeId) -> bool {
        self.short_first_poll.get() == Some(future)
    }

    /// A first poll of a task whose future has type `future` was measured: `short`
    /// says whether it was short. A long one stops tasks of that type from ending
    /// their first polls unread; a short one lets them, in place of the type noted
    /// before (one type at a time: a workload that spawns several types in turn
    /// gets its first polls measured, as before).
    #[inline(always)]
    pub(super) fn note_first_poll(&self, future: TypeId, short: bool) {
        if short {
            self.short_first_poll.set(Some(future));
        } else if self.short_first_poll.get() == Some(future) {
            self.short_first_poll.set(None);
        }
    }

    /// Counts a poll of `queue` that ended unread.
    #[inline(always)]
    pub(super) fn count_poll(&self, queue: usize) {
        self.polls.set(self.polls.get() + 1);
        self.run_polls.set(self.run_polls.get() + 1);
        self.queue.set(queue);
    }

    /// At a poll's clock read: how many polls of the run the poll stands for in the
    /// poll-time histogram, besides itself. Non-zero only for the sample after a run
    /// that used up its length (`close_run_before_poll`), or, for a cancelled task's
    /// drop, which is no poll, after polls that ended unread (`Core::account_poll`).
    #[inline(always)]
    pub(super) fn take_polls(&self) -> u32 {
        self.polls.replace(0)
    }

    /// The duration of the poll that started the run.
    pub(super) fn start_ns(&self) -> u64 {
        self.start_ns.get()
    }

    /// Whether the run that just used up its length is followed by its sample; every
    /// other one is, and the others go on as a new run at once.
    fn take_sample_due(&self) -> bool {
        let due = self.sample_due.get();
        self.sample_due.set(!due);
        due
    }

    /// The next run's length.
    fn next_length(&self) -> u32 {
        let seed = self
            .seed
            .get()
            .wrapping_mul(1_664_525)
            .wrapping_add(1_013_904_223);
        self.seed.set(seed);
        (RUN_MIN + (seed >> 29)) << self.growth.get()
    }
}

impl Core {
    /// Before a task's poll: closes an open run when the poll may not end unread
    /// (`may_end_unread` false: it is measured alone, and counts only for itself), or
    /// when the run has used up its length (then the poll is measured alone and is the
    /// run's sample).
    #[inline(always)]
    pub(super) fn close_run_before_poll(&self, may_end_unread: bool) {
        if self.unread.is_open() {
            if !may_end_unread {
                self.close_unread_run();
            } else if self.unread.left.get() == 0 {
                self.run_used_up();
            }
        }
    }

    /// Whether the poll ending now skips the clock read (and uses one of the run's
    /// unread polls if so).
    #[inline(always)]
    pub(super) fn take_unread_poll(&self) -> bool {
        let left = self.unread.left.get();
        if left == 0 {
            return false;
        }
        self.unread.left.set(left - 1);
        true
    }

    /// After a poll measured alone that took `ran_ns`, shorter than `SHORT_POLL_NS`:
    /// lets the next polls end unread when a run may start (`run_may_start`).
    #[inline(always)]
    pub(super) fn maybe_start_unread_run(&self, ran_ns: u64) {
        if self.run_may_start() {
            self.unread.left.set(self.unread.next_length());
            self.unread.start_ns.set(ran_ns);
        }
    }

    /// Whether the deadline is further past the last read (`now_ns`) than
    /// `UNREAD_GUARD_NS` and than the longest run may be, in polls as long as the
    /// longest measured lately.
    #[inline(always)]
    fn run_may_start(&self) -> bool {
        let longest_run = self
            .unread
            .longest_ns
            .get()
            .saturating_mul(u64::from(self.unread.max_length()));
        let guard = UNREAD_GUARD_NS.max(longest_run);
        self.now_ns.get().saturating_add(guard) <= self.yield_deadline_ns.get()
    }

    /// Before a poll that may end unread, when the open run has used up its length:
    /// reads the clock and charges the run's time (`charge_run_time`). Every other
    /// time the poll is then measured alone, the sample that stands for the polls of
    /// the runs since the last one; the other times a new run starts at once, this
    /// poll its first, when a run may start. One read per run instead of two, and
    /// still a sample per ~15 unread polls.
    #[cold]
    #[inline(never)]
    fn run_used_up(&self) {
        self.charge_run_time();
        if !self.unread.take_sample_due() && self.run_may_start() {
            self.unread.left.set(self.unread.next_length());
        }
    }

    /// Reads the clock and charges the time since the last read, the time of the
    /// run's unread polls, to their queue. Alone, before a poll, this ends a run that
    /// used up its length: that poll is the run's sample, and its booking counts the
    /// run's polls (`account_poll`); `close_unread_run` counts them itself.
    #[cold]
    #[inline(never)]
    fn charge_run_time(&self) {
        let now = self.clock.now_ns();
        let ran = now.saturating_sub(self.now_ns.get());
        self.now_ns.set(now);
        let polls = u64::from(self.unread.run_polls.replace(0)).max(1);
        self.unread.note_run_mean(ran / polls);
        if let Ok(mut ready) = self.ready.try_borrow_mut() {
            ready.charge_time(self.unread.queue.get(), ran);
        }
    }

    /// Ends a run of unread polls, if one is open: reads the clock, charges the time
    /// since the last read to the run's queue, and counts its polls in the poll-time
    /// histogram as long as the poll that started the run. Called before a slice may
    /// end, before a poll that may not end unread, before the poll of `run_until`'s
    /// future, and at the end of a turn.
    #[cold]
    #[inline(never)]
    pub(crate) fn close_unread_run(&self) {
        self.unread.left.set(0);
        if !self.unread.is_open() {
            return;
        }
        self.charge_run_time();
        let polls = self.unread.take_polls();
        if let Ok(mut ready) = self.ready.try_borrow_mut() {
            let queue = self.unread.queue.get();
            ready.count_poll_times(queue, self.unread.start_ns(), u64::from(polls));
        }
    }
}
