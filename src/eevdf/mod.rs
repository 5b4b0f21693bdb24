//! Queue selection: EEVDF (earliest eligible virtual deadline first).
//!
//! A pure state machine: the run loop feeds it explicit nanosecond figures and
//! asks which queue runs next. No clocks, no futures, no allocation after `new`.
//!
//! # Rules
//!
//! Queue `i` has a weight `w_i` and a virtual time `v_i`; serving it `t` ns adds
//! `t * SCALE / w_i` to `v_i` (integer division, remainder carried, so many
//! small charges add up exactly). The *members* are the active queues (ready
//! work) and the delayed ones (see `finish`); `W` is the sum of their weights
//! and `V = Σ w_j v_j / W` their weighted average. The lag of member `i`, in ns
//! of service owed to it, is `lag_i = w_i (V - v_i) / SCALE`; lags sum to zero.
//!
//! * `pick`: among active members with `v_i <= V` (eligible, `lag_i >= 0`),
//!   the earliest virtual deadline `d_i = v_i + slice * SCALE / w_i`, ties to
//!   the lower index. `slice = max(sched_latency / active, min_slice)`. With one
//!   candidate, no search. Eligibility is compared exactly
//!   (`(v_i - base) W <= Σ w_j (v_j - base)`), so an eligible queue always
//!   exists (see invariants); the "smallest `v_i`" fallback is only a guard.
//! * `charge(t)`: the running queue was served `t` ns more.
//! * `finish(false)`: the running queue has no ready work. With `lag >= 0` it
//!   leaves, forfeiting its credit to the others. With `lag < 0` it stays a
//!   *delayed* member: counted in `V`, never picked, and dropped by the first
//!   `pick` that finds its lag `>= 0` (like Linux's DELAY_DEQUEUE). A queue
//!   thus cannot wipe a debt by going idle for a moment, and idle time turns
//!   into credit only within the one slice that repays the debt (at most
//!   `(S + q) w / W`, notation below).
//! * `enqueue(q)`: an idle `q` is placed at `V` (lag 0, no banked credit); a
//!   delayed `q` becomes active again with its debt. Preemption is asked for
//!   when `q` is eligible and its deadline is strictly earlier than the running
//!   queue's, both computed as `pick` would now, so a preemption never ends in
//!   picking the preempted queue again.
//! * *Cut*: while an active queue is not eligible (it came back in debt, or
//!   `pick` passed it over for that reason) but would win the pick once
//!   eligible (it is urgent, or its deadline is earlier than the running
//!   queue's), the running slice is cut at the service after which that queue
//!   becomes eligible (`cut_due`), so the next `pick` takes it then instead of
//!   at the end of a long slice. Without the cut, a bursty queue that went idle
//!   in debt and came back, or a heavy queue passed over for a small debt,
//!   waited for the whole slice of the queue running meanwhile (up to
//!   `sched_latency`) even when its debt was a few µs. A cut only ends a slice
//!   earlier, which the bounds below allow.
//! * `set_weight`: applied at once, or at `finish` for the running queue;
//!   `V - v_q` is scaled by `w_old / w_new`, which keeps `q`'s lag in ns, every
//!   other lag, and `V`.
//! * When the last active queue leaves, all members leave: with nobody being
//!   served there is nobody to owe.
//!
//! # Invariants
//!
//! * `key_sum == Σ_members w_j (v_j - base)`, `load == W`; the running queue's
//!   charges wait in `pending_ns` until `settle` (so `charge` is one add).
//! * After `pick`'s clean-up every delayed member has `lag < 0`, so the active
//!   members' lags sum to `> 0` (or all are members and sum to 0): some active
//!   member is eligible.
//! * `V` does not decrease (up to rounding below one virtual unit, < 0.01 ns):
//!   charges raise it, joins at `V` keep it, members leave only with `lag >= 0`,
//!   which raises it, and `set_weight` keeps it.
//! * Virtual times are `u128` compared through wrapping differences, so only
//!   the spread between members matters, never the elapsed time.
//!
//! # Bounds
//!
//! Contract with the caller: a slice of length `s` (from [`Pick`]) ends at the
//! first poll boundary where its charges reach `s`, or earlier (preemption,
//! queue dry). Let `q` be the longest single charge, `s_j` the slice last
//! granted to queue `j` (0 before its first), `S` the longest slice granted,
//! `N` the number of queues and `W_all` the sum of all weights. Weights are
//! constant over the period considered.
//!
//! **(a) Lag.** At every moment, for every member `i`:
//! `-(s_i + q)(1 - w_i/W_all) < lag_i < Σ_{j≠i} (s_j + q)(1 - w_j/W_all) <= (N-1)(S + q)`.
//! With two queues the upper side is `(s_j + q) w_i / W_all < S + q`: both sides
//! are within one slice plus one poll. With more queues the upper side is not
//! `S + q` in general: when polls outlast slices, a pick serves far more than
//! the `slice / w` its deadline assumed, and a heavy queue can fall behind by
//! several polls. A random search found `2.0 (S + q)` with all queues always
//! runnable (weights 1:2:…:512, 3 ms polls, 0.2 ms slices) and `3.6 (S + q)`
//! with light queues going idle while owed credit. With polls of at most
//! 100 µs (slices 10 µs..4 ms) it stayed below `S + q` (up to 0.999 of it).
//!
//! *Proof.* A lag falls only while its own queue runs: a charge `t` to another
//! queue raises it by `t w_i / W`; a join at `V` and `set_weight` change no
//! lag; a member leaves only with `lag >= 0`, which raises the others. A queue
//! starts a slice eligible (`lag >= 0`, exactly), is served less than `s_i + q`
//! in it, and each ns lowers its lag by `1 - w_i/W <= 1 - w_i/W_all`. Lags sum
//! to zero, so `lag_i = -Σ_{j≠i} lag_j` gives the upper side.
//!
//! **(b) Wait.** A queue `i` that becomes runnable from idle is picked after at
//! most `S (W_all - w_i) / w_i + (2N - 1)(S + q)` ns of service to the others.
//! Re-enqueued while delayed with debt `D` (`< s_i + q`), it waits at most
//! `D W_all / w_i` longer.
//!
//! *Proof.* `i` joins at `v_i = V`; `V` does not decrease, so `i` stays eligible
//! and each pick before its own takes some `j` with `d_j <= d_i`, hence
//! `v_j <= v_i + S / w_i` at that pick. `v_j` never decreases (service raises
//! it; `j` leaves with `v_j <= V` and rejoins at a later, larger `V`), so the
//! picks of `j` ahead of `i` serve `j` at most
//! `w_j (v_i + S/w_i - v_j(t0)) + S + q <= lag_j(t0)⁺ + S w_j/w_i + S + q`, and
//! nothing if the first term is negative. Summing over `j != i`, adding the
//! slice running at `t0` (`< S + q`), and using `Σ_{j≠i} lag_j(t0)⁺ =
//! Σ_{j≠i} lag_j(t0)⁻ < (N - 1)(S + q)` (zero sum, `lag_i = 0`, and (a)) gives
//! the bound. A delayed queue gains at least `t w_i / W_all` per ns served to
//! others, so it is eligible again after `D W_all / w_i`; from there the same
//! argument applies with `lag_i >= 0`.
//!
//! The tests check (a) at every poll and (b) at every pick of long random
//! simulations, and report how close they come (`cargo test -- --nocapture`).
//!
//! # Latency queues
//!
//! A latency queue (`set_latency(q, b)`) asks for slices of its own length `b`
//! (as `sched_setattr` gives a task its own slice in Linux): its deadlines are
//! `v + b SCALE / w`, so with a short `b` it comes early in deadline order and
//! never holds the CPU longer than `b` (plus one poll) per pick. In addition,
//! from becoming runnable until it runs dry it is *urgent*: if eligible,
//! `enqueue` asks to end the running slice at the next poll boundary, and every
//! `pick` that finds it eligible takes it before the deadline search (so a
//! burst longer than one slice is not sent to the back of deadline order after
//! its first slice). It is still charged like any queue, so it cannot take
//! more than its weighted share: overuse leaves it in debt (`lag < 0`), and a
//! queue in debt is not picked, urgent or not, until it has repaid.
//!
//! **(c) Latency guarantee.** A latency queue that becomes runnable from idle
//! is placed at `V`, hence eligible, hence picked at the first pick after it
//! became runnable (ties between several urgent queues go to the lowest index),
//! i.e. after at most the rest of the poll in progress. Coming back while in
//! debt `D`, it first waits the `D W_all / w` of (b). For the run loop this
//! gives: queue delay ≤ longest poll + the time the loop is away from its
//! queues (a driver round), provided the queue's demand stays within its share.
//!
//! # Lag tolerance
//!
//! With `set_lag_tolerance(T)`, "eligible" for `pick`, for the preemption test
//! of `enqueue` and for the cut means `lag_i >= -T` instead of `lag_i >= 0`;
//! delayed members still leave only with `lag >= 0`, and `finish` still keeps a
//! queue that runs dry in debt as a delayed member. Why: a queue that ran a
//! short burst beyond its share (a foreground request served while the
//! background was runnable) and went to wait on the host comes back owing
//! `t (1 - w_i/W)` for a burst of `t` — a few µs — and without a tolerance waits
//! until the queue running meanwhile repays it, which cooperative tasks do only
//! at their next yield: a whole chunk of work. The debt stays on the books, so
//! shares over time are unchanged; bound (a) loosens on its lower side to
//! `lag_i > -(T + (s_i + q)(1 - w_i/W_all))` (a slice now starts at `lag >= -T`),
//! and the upper side and (b) grow accordingly through the zero sum of lags
//! (the tests check the lower side and the shares).

/// Largest accepted queue weight.
///
/// Why 10,000: *meaning* — a weight-1 queue beside a weight-10,000 one is
/// served one slice per ~10,001 (its share: 20 s apart at 2 ms slices), and
/// its wait bound (b) grows the same way; a wider range stops being a share
/// and becomes starvation. *Resolution* — one virtual unit is `w / SCALE` ns of
/// service, under 0.01 ns for every weight up to this value.
///
/// Overflow is not the binding limit. Over a year (3.15e16 ns) with weights
/// 10,000 and 1 together, `V` advances `3.15e16 * SCALE / 10_001 ≈ 2^61.5`
/// units; a weight-1 queue alone advances `2^74.8` (a `u64` would wrap after
/// 4.9 hours), hence `u128` virtual times compared by wrapping difference.
/// What must fit is the spread between members, at most `N (S + q) SCALE / w`
/// by bound (a), times weights: `(v_j - base) * W` and `w_j (v_j - base)`
/// summed stay under `N^2 * MAX_WEIGHT * (S + q) * 2^21`: `2^96` for 1,000
/// queues and one-hour slices, `2^110` after the one more weight factor in
/// `lag_ns` and `set_weight`, far inside `i128`. The test
/// `a_year_does_not_overflow` runs that year (and a year alone) in debug.
pub const MAX_WEIGHT: u32 = 10_000;

/// Virtual-time units per ns of service at weight 1.
///
/// A power of two, over 100 × [`MAX_WEIGHT`] so rounding (at placement, in
/// deadlines, in `set_weight`) costs less than 0.01 ns of service; and
/// `ns * SCALE` fits `u64` for up to 2^44 ns (4.9 hours) of buffered service,
/// so settling a slice's charges needs `u128` only past that.
const SCALE: u64 = 1 << 20;

/// What `pick` chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pick {
    /// Index of the queue to serve.
    pub(crate) queue: usize,
    /// How long to serve it before coming back to `pick`.
    pub(crate) slice_ns: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Not a member: no ready work, no lag.
    Idle,
    /// Member with ready work.
    Active,
    /// Member without ready work, still owing service (`lag < 0`).
    Delayed,
}

#[derive(Debug, Clone)]
struct Queue {
    /// Virtual time; meaningful only while a member.
    v: u128,
    /// Remainder of `ns * SCALE / weight` carried to the next charge (< weight).
    rem: u64,
    weight: u32,
    /// Weight from the next slice on (differs from `weight` only while running).
    next_weight: u32,
    state: State,
    /// Cached `slice_ns * SCALE / weight` for `slice_for` (0 = stale).
    slice_v: u128,
    slice_for: u64,
    /// Latency queue: its own slice length, used for its deadline and its slices.
    latency_slice_ns: Option<u64>,
    /// Latency queue that became runnable and was not picked since.
    urgent: bool,
}

/// EEVDF queue selection; see the module docs.
pub(crate) struct Eevdf {
    queues: Box<[Queue]>,
    /// Indices of active and delayed queues, in no particular order.
    members: Vec<usize>,
    active: usize,
    delayed: usize,
    /// `W`: sum of the members' weights.
    load: u64,
    /// Origin for `key_sum`; moved to the picked queue's `v` at each pick.
    base: u128,
    /// `Σ_members w_j (v_j - base)`, not counting `pending_ns`.
    key_sum: i128,
    running: Option<usize>,
    /// Service charged to the running queue and not yet folded into its `v`.
    pending_ns: u64,
    /// Service to the running queue (counted like `pending_ns`) after which an
    /// active queue that was not eligible becomes eligible: the slice should end
    /// there so `pick` can weigh it (`u64::MAX`: no such queue).
    cut_ns: u64,
    /// `max(sched_latency / active, min_slice, 1)`.
    slice_ns: u64,
    sched_latency_ns: u64,
    min_slice_ns: u64,
    /// A queue may start a slice while it owes up to this much service (see
    /// `set_lag_tolerance`); 0: strictly eligible queues only.
    lag_tolerance_ns: u64,
}

impl Eevdf {
    /// `weights[i]` is queue i's weight (1..=MAX_WEIGHT; caller validated).
    /// All queues start idle.
    pub(crate) fn new(weights: &[u32], sched_latency_ns: u64, min_slice_ns: u64) -> Self {
        let queues = weights
            .iter()
            .map(|&weight| {
                debug_assert!((1..=MAX_WEIGHT).contains(&weight));
                Queue {
                    v: 0,
                    rem: 0,
                    weight,
                    next_weight: weight,
                    state: State::Idle,
                    slice_v: 0,
                    slice_for: 0,
                    latency_slice_ns: None,
                    urgent: false,
                }
            })
            .collect();
        let mut e = Eevdf {
            queues,
            members: Vec::with_capacity(weights.len()),
            active: 0,
            delayed: 0,
            load: 0,
            base: 0,
            key_sum: 0,
            running: None,
            pending_ns: 0,
            cut_ns: u64::MAX,
            slice_ns: 1,
            sched_latency_ns,
            min_slice_ns,
            lag_tolerance_ns: 0,
        };
        e.update_slice();
        e
    }

    /// Lets a queue start a slice (be picked, preempt, or end a slice by a cut) while
    /// its lag is down to `-tolerance_ns` instead of 0 (see "Lag tolerance" in the
    /// module docs).
    pub(crate) fn set_lag_tolerance(&mut self, tolerance_ns: u64) {
        self.lag_tolerance_ns = tolerance_ns;
    }

    /// Makes `q` a latency queue with slices of `slice_ns` (see "Latency queues" in
    /// the module docs).
    pub(crate) fn set_latency(&mut self, q: usize, slice_ns: u64) {
        let queue = &mut self.queues[q];
        queue.latency_slice_ns = Some(slice_ns.max(1));
        queue.slice_for = 0;
    }

    /// Queue `q` gains ready work: placed at `V` if idle, keeping its debt if
    /// delayed. Returns true when the running slice (of another queue) should
    /// end at its next poll boundary: `q` is eligible and its deadline is
    /// earlier, or `q` is an eligible latency queue. No-op returning false if `q`
    /// is already runnable.
    pub(crate) fn enqueue(&mut self, q: usize) -> bool {
        match self.queues[q].state {
            State::Active => return false,
            State::Delayed => {
                self.delayed -= 1;
                self.queues[q].state = State::Active;
            }
            State::Idle => {
                self.settle();
                let v = self.avg_floor();
                let queue = &mut self.queues[q];
                queue.v = v;
                queue.rem = 0;
                queue.state = State::Active;
                let w = queue.weight;
                self.key_sum += i128::from(w) * self.key(q);
                self.load += u64::from(w);
                self.members.push(q);
            }
        }
        self.active += 1;
        self.update_slice();
        self.queues[q].urgent = self.queues[q].latency_slice_ns.is_some();
        let Some(r) = self.running else {
            return false;
        };
        self.settle();
        if !self.eligible(q) {
            // Back with a debt: the running slice ends once it is repaid.
            self.arm_cut(q);
            return false;
        }
        if self.queues[q].urgent {
            return true;
        }
        // Both deadlines as `pick` would compute them now, so a preemption
        // never ends in picking the preempted queue again.
        let d_q = self.key(q) + self.slice_v(q) as i128;
        let d_r = self.key(r) + self.slice_v(r) as i128;
        d_q < d_r
    }

    /// Choose the active queue to serve next and mark it running.
    pub(crate) fn pick(&mut self) -> Option<Pick> {
        debug_assert!(self.running.is_none(), "pick during a slice");
        if self.active == 0 {
            return None;
        }
        if self.delayed > 0 {
            self.drop_repaid();
        }
        let q = if self.members.len() == 1 {
            self.members[0]
        } else if let Some(urgent) = self.urgent_eligible() {
            urgent
        } else if self.active == 1 {
            // One active queue among debtors: it is the only candidate.
            let mut members = self.members.iter().copied();
            let active = members.find(|&j| self.queues[j].state == State::Active);
            active.expect("an active member")
        } else {
            self.search()
        };
        // Rebase on the chosen queue so keys stay small.
        let k = self.key(q);
        self.key_sum -= k * i128::from(self.load);
        self.base = self.queues[q].v;
        self.running = Some(q);
        self.cut_ns = u64::MAX;
        if self.active > 1 {
            for i in 0..self.members.len() {
                let j = self.members[i];
                if j != q && self.queues[j].state == State::Active && !self.eligible(j) {
                    self.arm_cut(j);
                }
            }
        }
        let queue = &self.queues[q];
        Some(Pick {
            queue: q,
            slice_ns: queue.latency_slice_ns.unwrap_or(self.slice_ns),
        })
    }

    /// Charge `ran_ns` of service to the running queue. One addition: the
    /// conversion to virtual time happens once per slice, in `settle`.
    #[inline]
    pub(crate) fn charge(&mut self, ran_ns: u64) {
        debug_assert!(self.running.is_some(), "charge outside a slice");
        self.pending_ns = self.pending_ns.saturating_add(ran_ns);
    }

    /// End the running slice; `still_runnable == false` when the queue has no
    /// ready work left.
    pub(crate) fn finish(&mut self, still_runnable: bool) {
        debug_assert!(self.running.is_some(), "finish outside a slice");
        self.settle();
        self.cut_ns = u64::MAX;
        let Some(r) = self.running.take() else {
            return;
        };
        if !still_runnable {
            self.queues[r].urgent = false;
            self.active -= 1;
            if self.active == 0 {
                self.clear_members();
            } else if !self.repaid(r) {
                self.queues[r].state = State::Delayed;
                self.delayed += 1;
            } else {
                self.remove_member(r);
            }
            self.update_slice();
        }
        if self.queues[r].next_weight != self.queues[r].weight {
            self.apply_weight(r);
        }
    }

    #[cfg(test)] // used by the simulation tests only
    /// Which queue is running a slice, if any.
    pub(crate) fn running(&self) -> Option<usize> {
        self.running
    }

    /// Whether the running slice should end at this poll boundary because a
    /// waiting queue has repaid its debt and become eligible (so `pick` can
    /// choose it if its deadline is earlier), counting `extra_ns` of service not
    /// charged yet (the poll in progress).
    #[inline]
    pub(crate) fn cut_due(&self, extra_ns: u64) -> bool {
        self.cut_ns != u64::MAX && self.pending_ns.saturating_add(extra_ns) >= self.cut_ns
    }

    /// Whether `q` is a latency queue (see `set_latency`).
    pub(crate) fn is_latency(&self, q: usize) -> bool {
        self.queues[q].latency_slice_ns.is_some()
    }

    /// Whether `q` has ready work (delayed members do not).
    pub(crate) fn is_runnable(&self, q: usize) -> bool {
        self.queues[q].state == State::Active
    }

    #[cfg(test)] // used by the simulation tests only
    /// Number of queues with ready work.
    pub(crate) fn runnable_count(&self) -> usize {
        self.active
    }

    /// `q`'s weight as last set (it applies from the next slice on).
    pub(crate) fn weight(&self, q: usize) -> u32 {
        self.queues[q].next_weight
    }

    /// Change `q`'s weight. Takes effect now, or at `finish` if `q` is running.
    /// `V - v_q` is scaled by `w_old / w_new`, so `q`'s lag in ns, and `V`, stay.
    pub(crate) fn set_weight(&mut self, q: usize, weight: u32) {
        debug_assert!((1..=MAX_WEIGHT).contains(&weight));
        self.queues[q].next_weight = weight;
        if self.running != Some(q) {
            self.apply_weight(q);
        }
    }

    #[cfg(test)] // used by the simulation tests only
    /// `q`'s lag in ns of service (positive = owed service); 0 when idle.
    pub(crate) fn lag_ns(&self, q: usize) -> i64 {
        if self.queues[q].state == State::Idle {
            return 0;
        }
        let mut sum = self.key_sum;
        let mut key = self.key(q);
        if let (Some(r), true) = (self.running, self.pending_ns > 0) {
            let queue = &self.queues[r];
            let w = u128::from(queue.weight);
            let dv = (u128::from(self.pending_ns) * u128::from(SCALE) + u128::from(queue.rem)) / w;
            let dv = dv as i128;
            sum += i128::from(queue.weight) * dv;
            if r == q {
                key += dv;
            }
        }
        let load = i128::from(self.load);
        let lag =
            (sum - key * load) * i128::from(self.queues[q].weight) / (load * i128::from(SCALE));
        lag.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
    }

    // ---- helpers ----

    /// `v_q - base` as a signed number.
    fn key(&self, q: usize) -> i128 {
        self.queues[q].v.wrapping_sub(self.base) as i128
    }

    /// `v_q <= V`, exactly: `(v_q - base) W <= Σ w_j (v_j - base)`.
    fn repaid(&self, q: usize) -> bool {
        self.key(q) * i128::from(self.load) <= self.key_sum
    }

    /// Whether `q` may start a slice: `lag_q >= -lag_tolerance`, i.e.
    /// `(v_q - base) W - Σ w_j (v_j - base) <= tolerance * SCALE * W / w_q`.
    fn eligible(&self, q: usize) -> bool {
        self.excess(q) <= 0
    }

    /// How far `q` is from eligible, in units of `Σ w_j (v_j - base)` (each ns of
    /// service to the running queue adds `SCALE`); `<= 0` when eligible.
    fn excess(&self, q: usize) -> i128 {
        let gap = self.key(q) * i128::from(self.load) - self.key_sum;
        if self.lag_tolerance_ns == 0 || gap <= 0 {
            return gap;
        }
        let allowance =
            i128::from(self.lag_tolerance_ns) * i128::from(SCALE) * i128::from(self.load)
                / i128::from(self.queues[q].weight);
        gap - allowance
    }

    /// Ends the running slice (see `cut_due`) once the running queue has been
    /// served what active queue `q`, not eligible now, needs to become eligible,
    /// if `q` would then win the pick (urgent, or an earlier deadline):
    /// each ns served raises `Σ w_j (v_j - base)` by `SCALE` (up to the carried
    /// remainder, hence the extra ns), and `q` is eligible once that sum reaches
    /// `(v_q - base) W`.
    fn arm_cut(&mut self, q: usize) {
        let Some(r) = self.running else {
            return;
        };
        // Only for a queue that would then win the pick: urgent, or with the
        // earlier deadline (both as `pick` would compute them now).
        if !self.queues[q].urgent {
            let d_q = self.key(q) + self.slice_v(q) as i128;
            let d_r = self.key(r) + self.slice_v(r) as i128;
            if d_q >= d_r {
                return;
            }
        }
        let gap = self.excess(q);
        let need = if gap <= 0 {
            0
        } else {
            u64::try_from(gap / i128::from(SCALE) + 1).unwrap_or(u64::MAX - 1)
        };
        self.cut_ns = self.cut_ns.min(self.pending_ns.saturating_add(need));
    }

    /// `floor(V)`, or `base` when there are no members.
    fn avg_floor(&self) -> u128 {
        if self.load == 0 {
            return self.base;
        }
        let off = self.key_sum.div_euclid(i128::from(self.load));
        self.base.wrapping_add(off as u128)
    }

    /// Fold the buffered charges into the running queue's `v` (exactly: the
    /// division remainder is carried in `rem`).
    fn settle(&mut self) {
        let ns = std::mem::take(&mut self.pending_ns);
        if self.cut_ns != u64::MAX {
            self.cut_ns = self.cut_ns.saturating_sub(ns);
        }
        let (Some(r), true) = (self.running, ns > 0) else {
            return;
        };
        let queue = &mut self.queues[r];
        let w = u64::from(queue.weight);
        let dv = match ns.checked_mul(SCALE).and_then(|x| x.checked_add(queue.rem)) {
            Some(num) => {
                queue.rem = num % w;
                u128::from(num / w)
            }
            None => {
                let num = u128::from(ns) * u128::from(SCALE) + u128::from(queue.rem);
                queue.rem = (num % u128::from(w)) as u64;
                num / u128::from(w)
            }
        };
        queue.v = queue.v.wrapping_add(dv);
        self.key_sum += i128::from(queue.weight) * dv as i128;
    }

    fn update_slice(&mut self) {
        let share = self.sched_latency_ns / self.active.max(1) as u64;
        self.slice_ns = share.max(self.min_slice_ns).max(1);
    }

    /// A latency queue that woke and is eligible, if any (lowest index first).
    fn urgent_eligible(&self) -> Option<usize> {
        self.members.iter().copied().find(|&j| {
            let queue = &self.queues[j];
            queue.urgent && queue.state == State::Active && self.eligible(j)
        })
    }

    /// `slice_ns * SCALE / w_q`, cached per queue for the current slice.
    fn slice_v(&mut self, q: usize) -> u128 {
        let slice = self.queues[q].latency_slice_ns.unwrap_or(self.slice_ns);
        let queue = &mut self.queues[q];
        if queue.slice_for != slice {
            queue.slice_v = u128::from(slice) * u128::from(SCALE) / u128::from(queue.weight);
            queue.slice_for = slice;
        }
        queue.slice_v
    }

    /// The eligible active member with the earliest deadline (lower index on
    /// ties); if none is eligible (unreachable, see invariants) the active one
    /// with the smallest `v`.
    fn search(&mut self) -> usize {
        let mut best: Option<(i128, usize)> = None;
        let mut lowest: Option<(i128, usize)> = None;
        for i in 0..self.members.len() {
            let j = self.members[i];
            if self.queues[j].state != State::Active {
                continue;
            }
            let key = self.key(j);
            if lowest.is_none() || Some((key, j)) < lowest {
                lowest = Some((key, j));
            }
            if self.eligible(j) {
                let d = key + self.slice_v(j) as i128;
                if best.is_none() || Some((d, j)) < best {
                    best = Some((d, j));
                }
            }
        }
        debug_assert!(best.is_some(), "no eligible queue");
        best.or(lowest).expect("an active member exists").1
    }

    /// Remove delayed members whose lag has come back to >= 0.
    fn drop_repaid(&mut self) {
        let mut i = 0;
        while i < self.members.len() {
            let j = self.members[i];
            if self.queues[j].state == State::Delayed && self.repaid(j) {
                self.delayed -= 1;
                self.remove_member(j);
                // Removing a member with lag >= 0 raises V: rescan from the start.
                i = 0;
            } else {
                i += 1;
            }
        }
    }

    fn remove_member(&mut self, q: usize) {
        let w = self.queues[q].weight;
        self.key_sum -= i128::from(w) * self.key(q);
        self.load -= u64::from(w);
        self.queues[q].state = State::Idle;
        let pos = self.members.iter().position(|&m| m == q).expect("member");
        self.members.swap_remove(pos);
    }

    fn clear_members(&mut self) {
        self.base = self.avg_floor();
        for &m in &self.members {
            self.queues[m].state = State::Idle;
        }
        self.members.clear();
        self.key_sum = 0;
        self.load = 0;
        self.delayed = 0;
    }

    fn apply_weight(&mut self, q: usize) {
        let (old, new) = (self.queues[q].weight, self.queues[q].next_weight);
        if old == new {
            return;
        }
        if self.queues[q].state != State::Idle {
            self.settle();
            // v' = V - (V - v) * old / new, with V = base + key_sum / W.
            let (s, w) = (self.key_sum, i128::from(self.load));
            let key = self.key(q);
            let (old_i, new_i) = (i128::from(old), i128::from(new));
            let new_key = (s * new_i - old_i * (s - key * w)).div_euclid(w * new_i);
            self.key_sum += new_i * new_key - old_i * key;
            self.load = self.load - u64::from(old) + u64::from(new);
            self.queues[q].v = self.base.wrapping_add(new_key as u128);
        }
        let queue = &mut self.queues[q];
        queue.weight = new;
        queue.rem = 0;
        queue.slice_for = 0;
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod latency_tests;

#[cfg(test)]
mod cut_tests;

#[cfg(test)]
mod tolerance_tests;

#[cfg(test)]
mod proptests;
