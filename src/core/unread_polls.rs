//! Polls that end without a clock read.
//!
//! Reading the TSC at the end of every poll cost ~39 ns of a task's ~240 in
//! `overhead_profile` (six polls; docs/OVERHEAD_ANALYSIS.md), far more than its
//! instructions. So after a poll that was measured alone and took less than
//! `SHORT_POLL_NS`, the next 4 to 11 polls may end unread: the wrapper
//! leaves the loop's clock (`Core::now_ns`) where it was, and the next read covers
//! every poll since the one before.
//!
//! Which polls may end unread: those of a task whose last measured poll was short
//! (`TaskMeta::poll_flags`; a task's first poll is always read), that books nothing
//! itself (not LAS, no group) and whose queue's scheduler does not observe polls.
//!
//! What stays exact and what does not:
//! - **Service time and EEVDF's charge** stay exact in total: the read that closes a
//!   run charges the run's whole time to its queue. A run never crosses a slice (the
//!   loop closes it before `Ready::next` may switch queues), the end of a turn, or the
//!   poll of `run_until`'s future, and it is closed before a task that books its own
//!   polls is polled (`begin_booked_poll`), so their time is theirs alone. A panic that
//!   leaves the loop closes its run too.
//! - **Poll counts and queue delays** are kept for every poll; the queue delay of a
//!   poll inside a run is measured from the run's last read (at most the run's length
//!   early).
//! - **The poll-time histogram is sampled within runs**: its count stays the number
//!   of polls. A poll that is measured alone is recorded as itself; it is always so
//!   when its task may not end unread (a run open before it is closed first, see
//!   `begin_measured_poll`). The poll that starts a run is recorded once for itself
//!   and, when the run closes, once more for each poll of the run (the unread ones,
//!   and the one whose read closes it): those polls are of tasks whose last measured
//!   poll was short too, and the run's length varies, so which poll is the sample
//!   does not follow a rotation of tasks.
//! - **Deadlines** (slice end, driver yield, the batching of `run_until`'s future)
//!   are seen at most 11 polls late, each by a task whose last measured poll
//!   was short; a run starts only when the deadline is more than `UNREAD_GUARD_NS`
//!   away.

use std::cell::Cell;

use super::Core;

/// Runs are `RUN_MIN..=RUN_MIN + 7` polls long, varied so that the sampled poll never
/// falls in step with a fixed rotation of tasks (three tasks taking turns and runs of
/// a fixed length would sample the same task every time).
const RUN_MIN: u32 = 4;
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
    /// Polls that ended unread since the last clock read.
    polls: Cell<u32>,
    /// Their queue (a run never crosses a slice, so they share one).
    queue: Cell<usize>,
    /// The duration of the poll that started the run: the sample that stands for the
    /// run's polls in the poll-time histogram.
    sample_ns: Cell<u64>,
    /// State of the generator of run lengths (a linear congruential one: the lengths
    /// need only vary, not be unpredictable).
    seed: Cell<u32>,
}

impl UnreadRun {
    /// Whether polls ended unread since the last read.
    #[inline(always)]
    pub(super) fn is_open(&self) -> bool {
        self.polls.get() != 0
    }

    /// Forgets the run (a new turn after a panic left the loop).
    pub(super) fn reset(&self) {
        self.left.set(0);
        self.polls.set(0);
    }

    /// Counts a poll of `queue` that ended unread.
    #[inline(always)]
    pub(super) fn count_poll(&self, queue: usize) {
        self.polls.set(self.polls.get() + 1);
        self.queue.set(queue);
    }

    /// At a clock read: how many polls ended unread since the one before (zero if
    /// none), their queue, and the sample that stands for them. The run may go on
    /// (see `close` to end it).
    #[inline(always)]
    pub(super) fn take_polls(&self) -> (u32, usize, u64) {
        (
            self.polls.replace(0),
            self.queue.get(),
            self.sample_ns.get(),
        )
    }

    /// Ends the run: `take_polls`, and no more polls may end unread.
    #[inline(always)]
    fn close(&self) -> (u32, usize, u64) {
        self.left.set(0);
        self.take_polls()
    }

    /// The next run's length.
    fn next_length(&self) -> u32 {
        let seed = self
            .seed
            .get()
            .wrapping_mul(1_664_525)
            .wrapping_add(1_013_904_223);
        self.seed.set(seed);
        RUN_MIN + (seed >> 29)
    }
}

impl Core {
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

    /// After a measured poll of `ran_ns`, shorter than `SHORT_POLL_NS`: lets the next
    /// polls end unread when the poll was measured alone (no unread poll before it, so
    /// it is a sample of the poll-time histogram) and its deadline is more than
    /// `UNREAD_GUARD_NS` past the poll's start (`now_ns`, under a µs before its end).
    #[cold]
    #[inline(never)]
    pub(super) fn maybe_start_unread_run(&self, ran_ns: u64) {
        if !self.unread.is_open()
            && self.now_ns.get().saturating_add(UNREAD_GUARD_NS) <= self.yield_deadline_ns.get()
        {
            self.unread.left.set(self.unread.next_length());
            self.unread.sample_ns.set(ran_ns);
        }
    }

    /// Ends a run of unread polls, if one is open: reads the clock and charges the
    /// time since the last read to the run's queue (its polls were counted as they
    /// ended, and its sample now stands for them in the poll-time histogram). Called
    /// before a slice may end, before a poll that must be measured alone, before the
    /// poll of `run_until`'s future, and at the end of a turn.
    #[cold]
    #[inline(never)]
    pub(crate) fn close_unread_run(&self) {
        let (polls, queue, sample_ns) = self.unread.close();
        if polls == 0 {
            return;
        }
        let now = self.clock.now_ns();
        let ran = now.saturating_sub(self.now_ns.get());
        self.now_ns.set(now);
        if let Ok(mut ready) = self.ready.try_borrow_mut() {
            ready.charge_run(queue, ran, None, sample_ns, u64::from(polls));
        }
    }
}
