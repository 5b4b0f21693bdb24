//! Property tests (proptest) of the EEVDF state machine: random weights in
//! `1..=MAX_WEIGHT`, random runnable/idle patterns, random poll durations. They check
//! the bounds stated in the module docs through the public (crate) API only:
//!
//! - lag bound (a) at every poll boundary, exactly (numerators over `W_all`, 1 ns of
//!   rounding, as `tests.rs` does);
//! - long-run shares: with every queue always runnable, each queue's service is
//!   within `(N - 1)(S + q)` of its weighted share of the total (that is `-lag_i`),
//!   so the share error falls like `1 / total` and ends under 1 %;
//! - a simulated year with weights at `MAX_WEIGHT` and hour-long slices: no
//!   overflow (debug builds check every operation), lags still within bound (a).
//!
//! Failures shrink to a minimal schedule. Case counts are kept small enough for a
//! debug `cargo test` (about a second each); `PROPTEST_CASES` raises them. Not
//! under Miri, which would take hours on them and finds nothing in safe integer code.
#![cfg(not(miri))]

use proptest::prelude::*;

use super::*;

const US: u64 = 1_000;
const MS: u64 = 1_000_000;
const SEC: u64 = 1_000_000_000;
const YEAR: u64 = 365 * 24 * 3600 * SEC;

/// One slice of the schedule, applied to whichever queue `pick` chooses.
#[derive(Debug, Clone)]
struct Slice {
    /// Poll durations; the queue runs dry (no ready work) if they run out before the
    /// slice is used up.
    polls: Vec<u64>,
    /// The queue has no ready work left when its slice ends.
    goes_idle: bool,
    /// Queues (taken modulo N) that become runnable after the first poll; one that
    /// asks for preemption ends the slice at that poll boundary.
    wakes: Vec<usize>,
}

/// What bound (a) is stated in: `s_i`, `S`, `q`, `W_all`.
struct Bound {
    weights: Vec<u32>,
    w_all: u64,
    last_slice: Vec<u64>,
    big_s: u64,
    q: u64,
}

impl Bound {
    fn new(weights: &[u32]) -> Self {
        Bound {
            weights: weights.to_vec(),
            w_all: weights.iter().map(|&w| u64::from(w)).sum(),
            last_slice: vec![0; weights.len()],
            big_s: 0,
            q: 0,
        }
    }

    fn granted(&mut self, pick: Pick) {
        self.last_slice[pick.queue] = pick.slice_ns;
        self.big_s = self.big_s.max(pick.slice_ns);
    }

    fn charged(&mut self, ns: u64) {
        self.q = self.q.max(ns);
    }

    /// `(s_j + q)(1 - w_j / W_all)`, times `W_all`.
    fn debt_cap(&self, j: usize) -> i128 {
        let w = u64::from(self.weights[j]);
        i128::from(self.last_slice[j] + self.q) * i128::from(self.w_all - w)
    }

    /// (a): `-(s_i + q)(1 - w_i/W_all) < lag_i < Σ_{j≠i} (s_j + q)(1 - w_j/W_all)`.
    fn check(&self, e: &Eevdf) -> Result<(), TestCaseError> {
        let w_all = i128::from(self.w_all);
        let all_caps: i128 = (0..self.weights.len()).map(|j| self.debt_cap(j)).sum();
        let mut lag_sum = 0i128;
        for i in 0..self.weights.len() {
            let lag = i128::from(e.lag_ns(i));
            lag_sum += lag;
            let low = self.debt_cap(i);
            prop_assert!((lag + 1) * w_all > -low, "queue {i}: lag {lag} below (a)");
            prop_assert!(
                (lag - 1) * w_all < all_caps - low,
                "queue {i}: lag {lag} above (a)"
            );
        }
        // Lags sum to zero, up to one ns of rounding per queue.
        prop_assert!(
            lag_sum.abs() <= self.weights.len() as i128,
            "lag sum {lag_sum}"
        );
        Ok(())
    }

    /// `(N - 1)(S + q)`: the widest bound (a) allows on either side.
    fn widest(&self) -> u64 {
        (self.weights.len() as u64 - 1) * (self.big_s + self.q)
    }
}

/// Drives `e` through `schedule` as the run loop would, checking bound (a) after
/// every charge and every slice.
fn drive(weights: &[u32], e: &mut Eevdf, schedule: &[Slice]) -> Result<(), TestCaseError> {
    let n = weights.len();
    let mut bound = Bound::new(weights);
    for j in 0..n {
        e.enqueue(j);
    }
    for (k, slice) in schedule.iter().enumerate() {
        if e.runnable_count() == 0 {
            e.enqueue(k % n);
        }
        let pick = e.pick().expect("a runnable queue");
        prop_assert!(e.is_runnable(pick.queue));
        bound.granted(pick);
        let mut used = 0u64;
        let mut still_runnable = false;
        for (p, &t) in slice.polls.iter().enumerate() {
            e.charge(t);
            bound.charged(t);
            used += t;
            bound.check(e)?;
            let mut preempt = false;
            if p == 0 {
                for &w in &slice.wakes {
                    preempt |= e.enqueue(w % n);
                }
                bound.check(e)?;
            }
            if preempt || used >= pick.slice_ns {
                still_runnable = !slice.goes_idle;
                break;
            }
        }
        e.finish(still_runnable);
        bound.check(e)?;
    }
    Ok(())
}

fn weights(max_queues: usize) -> impl Strategy<Value = Vec<u32>> {
    prop::collection::vec(1..=MAX_WEIGHT, 2..=max_queues)
}

/// Poll durations: mostly short, some long (up to 5 ms, longer than most slices).
fn poll_ns() -> impl Strategy<Value = u64> {
    prop_oneof![
        8 => 1..=300 * US,
        1 => MS..=5 * MS,
    ]
}

fn slice() -> impl Strategy<Value = Slice> {
    (
        prop::collection::vec(poll_ns(), 1..12),
        prop::bool::weighted(0.2),
        prop::collection::vec(0..16usize, 0..3),
    )
        .prop_map(|(polls, goes_idle, wakes)| Slice {
            polls,
            goes_idle,
            wakes,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Bound (a) with random weights, slices, polls, idle periods and wakes.
    #[test]
    fn lag_bound_holds_for_random_schedules(
        weights in weights(8),
        latency in 100 * US..=4 * MS,
        min_slice in 10 * US..=500 * US,
        schedule in prop::collection::vec(slice(), 1..300),
    ) {
        let _watchdog = crate::test_watchdog::watchdog();
        let mut e = Eevdf::new(&weights, latency, min_slice);
        drive(&weights, &mut e, &schedule)?;
    }

    /// Every queue always runnable: each one's service stays within `(N-1)(S+q)` of
    /// its share of the total, so shares converge to the weights.
    #[test]
    fn long_run_shares_converge_to_weights(
        weights in weights(6),
        latency in 100 * US..=4 * MS,
        min_slice in 10 * US..=500 * US,
        polls in prop::collection::vec(1..=300 * US, 1..64),
    ) {
        let _watchdog = crate::test_watchdog::watchdog();
        let n = weights.len();
        let mut e = Eevdf::new(&weights, latency, min_slice);
        let mut bound = Bound::new(&weights);
        for j in 0..n {
            e.enqueue(j);
        }
        let mut service = vec![0u64; n];
        let mut next = polls.iter().copied().cycle();
        // Enough service that the bound is under 1 % of it.
        let mut total = 0u64;
        let mut slices = 0;
        while slices < 200 || total < 100 * bound.widest() {
            let pick = e.pick().expect("always runnable");
            bound.granted(pick);
            let mut used = 0;
            while used < pick.slice_ns {
                let t = next.next().expect("cycle");
                e.charge(t);
                bound.charged(t);
                used += t;
            }
            service[pick.queue] += used;
            total += used;
            e.finish(true);
            slices += 1;
            prop_assert!(slices < 2_000_000, "no convergence after {slices} slices");
        }
        bound.check(&e)?;
        let w_all: u64 = weights.iter().map(|&w| u64::from(w)).sum();
        for (i, &w) in weights.iter().enumerate() {
            let fair = total as f64 * f64::from(w) / w_all as f64;
            let off = (service[i] as f64 - fair).abs();
            prop_assert!(
                off <= bound.widest() as f64 + n as f64,
                "queue {i} (weight {w}): {off} ns off its share, bound {}", bound.widest()
            );
            prop_assert!(off / total as f64 <= 0.01, "share error {}", off / total as f64);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    /// A simulated year with at least one queue at `MAX_WEIGHT` and one at weight 1,
    /// slices up to an hour (the longest duration setting) and charges of 5 to 60 minutes:
    /// the arithmetic does not overflow, and bound (a) and the zero lag sum hold.
    #[test]
    fn a_year_at_max_weight_does_not_overflow(
        others in prop::collection::vec(1..=MAX_WEIGHT, 0..4),
        latency in SEC..=3_600 * SEC,
        min_slice in MS..=60 * SEC,
        charges in prop::collection::vec(300 * SEC..=3_600 * SEC, 1..16),
        idle_every in 2..50usize,
    ) {
        let _watchdog = crate::test_watchdog::watchdog();
        let mut weights = vec![MAX_WEIGHT, 1];
        weights.extend(others);
        let n = weights.len();
        let mut e = Eevdf::new(&weights, latency, min_slice);
        let mut bound = Bound::new(&weights);
        for j in 0..n {
            e.enqueue(j);
        }
        let mut charges = charges.iter().copied().cycle();
        let (mut total, mut slices) = (0u64, 0usize);
        while total < YEAR {
            if e.runnable_count() == 0 {
                e.enqueue(slices % n);
            }
            let pick = e.pick().expect("runnable");
            bound.granted(pick);
            let mut used = 0;
            while used < pick.slice_ns {
                let t = charges.next().expect("cycle");
                e.charge(t);
                bound.charged(t);
                used += t;
            }
            total += used;
            slices += 1;
            // Now and then the queue goes idle, and another one wakes.
            let idle = slices % idle_every == 0;
            e.finish(!idle);
            if idle {
                e.enqueue((pick.queue + 1) % n);
            }
            bound.check(&e)?;
        }
    }
}
