#![doc = include_str!("RULES.md")]

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
///
/// ```rust
/// use clockworker::{BuildError, ExecutorBuilder, MAX_WEIGHT};
///
/// let widest = ExecutorBuilder::new()
///     .with_queue("urgent", MAX_WEIGHT)
///     .with_queue("idle", 1)
///     .build();
/// assert!(widest.is_ok());
///
/// let too_heavy = ExecutorBuilder::new().with_queue("urgent", MAX_WEIGHT + 1).build();
/// assert!(matches!(too_heavy, Err(BuildError::WeightTooLarge { .. })));
/// ```
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
mod random_tests;

#[cfg(test)]
mod latency_tests;

#[cfg(test)]
mod cut_tests;

#[cfg(test)]
mod tolerance_tests;

#[cfg(test)]
mod proptests;
