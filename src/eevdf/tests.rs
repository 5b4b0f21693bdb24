//! Simulations of the EEVDF state machine on a synthetic clock: "time" is the
//! service charged so far. Nothing sleeps.

use super::*;

const US: u64 = 1_000;
const MS: u64 = 1_000_000;
const SEC: u64 = 1_000_000_000;

/// xorshift64*, fixed seeds: a tiny deterministic PRNG (also used by the other
/// simulation test modules of `eevdf`).
pub(super) struct Rng(u64);

impl Rng {
    pub(super) fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub(super) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in `lo..=hi`.
    pub(super) fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
    /// True with probability `per_mille / 1000`.
    pub(super) fn chance(&mut self, per_mille: u64) -> bool {
        self.next() % 1000 < per_mille
    }
}

/// `n` weights drawn uniformly from `1..=max`.
pub(super) fn random_weights(rng: &mut Rng, n: usize, max: u64) -> Vec<u32> {
    (0..n).map(|_| rng.range(1, max) as u32).collect()
}

/// Recomputes the cached sums and counts from scratch.
pub(super) fn check_invariants(e: &Eevdf) {
    let mut load = 0u64;
    let mut key_sum = 0i128;
    let (mut active, mut delayed) = (0, 0);
    for (q, queue) in e.queues.iter().enumerate() {
        assert!(queue.rem < u64::from(queue.weight));
        let member = e.members.contains(&q);
        assert_eq!(member, queue.state != State::Idle, "queue {q}");
        match queue.state {
            State::Idle => continue,
            State::Active => active += 1,
            State::Delayed => delayed += 1,
        }
        load += u64::from(queue.weight);
        key_sum += i128::from(queue.weight) * e.key(q);
    }
    assert_eq!((e.load, e.key_sum), (load, key_sum));
    assert_eq!((e.active, e.delayed), (active, delayed));
    assert_eq!(e.members.len(), active + delayed);
    if let Some(r) = e.running {
        assert_eq!(e.queues[r].state, State::Active);
    }
}

/// Serves one slice of `q`: polls of `poll()` ns until the slice is used up.
/// Returns the service given.
fn serve_slice(e: &mut Eevdf, slice: u64, mut poll: impl FnMut() -> u64) -> u64 {
    let mut used = 0;
    while used < slice {
        let t = poll();
        e.charge(t);
        used += t;
    }
    used
}

/// Runs `slices` slices with every queue always runnable; returns service per queue.
fn run_busy(e: &mut Eevdf, slices: usize, mut poll: impl FnMut() -> u64) -> Vec<u64> {
    let mut service = vec![0; e.queues.len()];
    for _ in 0..slices {
        let p = e.pick().expect("runnable");
        service[p.queue] += serve_slice(e, p.slice_ns, &mut poll);
        e.finish(true);
    }
    service
}

/// Largest |share - w/Σw| in percentage points.
fn share_error_pp(service: &[u64], weights: &[u32]) -> f64 {
    let total: u64 = service.iter().sum();
    let wsum: u32 = weights.iter().sum();
    let errs = service
        .iter()
        .zip(weights)
        .map(|(&s, &w)| (s as f64 / total as f64 - f64::from(w) / f64::from(wsum)).abs() * 100.0);
    errs.fold(0.0, f64::max)
}

fn busy(weights: &[u32], latency: u64, min_slice: u64) -> Eevdf {
    let mut e = Eevdf::new(weights, latency, min_slice);
    for q in 0..weights.len() {
        assert!(!e.enqueue(q));
    }
    e
}

// ---- 1. shares ----

#[test]
fn shares_follow_weights_1_2_4_8() {
    let _watchdog = crate::test_watchdog::watchdog();
    let weights = [1, 2, 4, 8];
    let mut e = busy(&weights, 4 * MS, 100 * US);
    let service = run_busy(&mut e, 10_000, || 50 * US);
    let even = share_error_pp(&service, &weights);

    let mut e = busy(&weights, 4 * MS, 100 * US);
    let mut rng = Rng::new(1);
    let service = run_busy(&mut e, 10_000, || rng.range(10 * US, 300 * US));
    let uneven = share_error_pp(&service, &weights);
    check_invariants(&e);
    eprintln!("share error: even polls {even:.5} pp, uneven polls {uneven:.5} pp");
    assert!(even < 0.1 && uneven < 0.1, "{even} {uneven}");
}

#[test]
fn tiny_charges_add_up_exactly() {
    let _watchdog = crate::test_watchdog::watchdog();
    // 1 ns charges to weight 3: every 3 charges must move v by exactly SCALE.
    let mut e = busy(&[3], 4 * MS, 100 * US);
    e.pick().unwrap();
    let v0 = e.queues[0].v;
    for _ in 0..3_000 {
        e.charge(1);
    }
    e.charge(0);
    e.finish(true);
    assert_eq!(e.queues[0].v - v0, 1_000 * u128::from(SCALE));
    assert_eq!(e.queues[0].rem, 0);
}

/// Past 2^44 ns of service buffered in one slice, `ns * SCALE` no longer fits a `u64`
/// and `settle` divides in `u128`: still exactly, carrying the remainder. A 1 ns
/// slice first leaves a remainder (2^20 mod 3 = 1) for the long one to carry.
#[test]
fn a_slice_past_2_pow_44_ns_settles_exactly() {
    let _watchdog = crate::test_watchdog::watchdog();
    let mut e = busy(&[3], 4 * MS, 100 * US);
    let v0 = e.queues[0].v;
    e.pick().unwrap();
    e.charge(1);
    e.finish(true);
    assert_eq!(e.queues[0].rem, 1);
    let long = (1u64 << 45) + 7;
    e.pick().unwrap();
    e.charge(long);
    e.finish(true);
    let total = u128::from(1 + long) * u128::from(SCALE);
    assert_eq!(e.queues[0].v - v0, total / 3);
    assert_eq!(u128::from(e.queues[0].rem), total % 3);
}

// ---- 2. waking after a long idle ----

#[test]
fn long_idle_queue_gets_no_banked_credit() {
    let _watchdog = crate::test_watchdog::watchdog();
    let weights = [1, 2, 4, 2];
    let sleeper = 3;
    let mut e = Eevdf::new(&weights, 2 * MS, 100 * US);
    for q in 0..3 {
        e.enqueue(q);
    }
    let mut rng = Rng::new(2);
    let mut poll = || rng.range(10 * US, 300 * US);
    let mut ran = 0;
    while ran < 10 * SEC {
        ran += run_busy(&mut e, 1, &mut poll).iter().sum::<u64>();
    }
    assert_eq!(e.lag_ns(sleeper), 0);
    e.enqueue(sleeper);
    assert!(e.lag_ns(sleeper).abs() <= 1, "placed at V");

    // One more simulated second with all four runnable; W is constant, so the
    // sleeper's fair share accrues at w / W of each charge.
    let wsum = f64::from(weights.iter().sum::<u32>());
    let share = f64::from(weights[sleeper]) / wsum;
    let (mut got, mut fair, mut max_excess, mut total) = (0.0, 0.0, f64::MIN, 0);
    let (mut max_poll, mut slice) = (0, 0);
    while total < SEC {
        let p = e.pick().unwrap();
        let mut used = 0;
        while used < p.slice_ns {
            let t = poll();
            e.charge(t);
            used += t;
            total += t;
            max_poll = max_poll.max(t);
            fair += t as f64 * share;
            if p.queue == sleeper {
                got += t as f64;
                slice = p.slice_ns;
            }
            max_excess = max_excess.max(got - fair);
        }
        e.finish(true);
    }
    eprintln!(
        "woken queue: max excess over fair share {:.0} ns (slice {slice} + max poll {max_poll})",
        max_excess
    );
    assert!(max_excess < (slice + max_poll) as f64);
}

/// Queue 1 of two equal queues serves a slice, runs dry, and is back one poll into
/// queue 0's slice, over and over; a preemption it asks for is honoured. Returns
/// queue 1's share of the service (invariants checked after every slice).
pub(super) fn bursty_share(e: &mut Eevdf) -> f64 {
    let mut service = [0u64; 2];
    for _ in 0..5_000 {
        let p = e.pick().unwrap();
        if p.queue == 1 {
            service[1] += serve_slice(e, p.slice_ns, || 100 * US);
            e.finish(false);
        } else {
            e.charge(100 * US);
            service[0] += 100 * US;
            if !e.is_runnable(1) && e.enqueue(1) {
                e.finish(true);
                continue;
            }
            service[0] += serve_slice(e, p.slice_ns - 100 * US, || 100 * US);
            e.finish(true);
        }
        check_invariants(e);
    }
    service[1] as f64 / (service[0] + service[1]) as f64
}

#[test]
fn debt_survives_going_idle() {
    let _watchdog = crate::test_watchdog::watchdog();
    // Were the bursty queue's debt wiped by going idle, it would come back at V with
    // an earlier deadline, cut queue 0's slice after one poll each time and take ~90%.
    let share = bursty_share(&mut busy(&[1, 1], 2 * MS, 100 * US));
    eprintln!("bursty queue share {share:.4} (fair 0.5 while runnable)");
    assert!(share < 0.501, "{share}");
}

// ---- 5. preemption ----

#[test]
fn earlier_deadline_preempts_later_does_not() {
    let _watchdog = crate::test_watchdog::watchdog();
    // Queue 0 runs alone for 1 ms, then queue 1 arrives at V = v_0. With the
    // 4 ms latency shared by two, both deadlines are v_0 + 2 ms / w: the
    // heavier newcomer's is earlier (preempt), the lighter's later, and an
    // equal one ties (no preemption).
    for (weights, expect) in [([1, 2], true), ([2, 1], false), ([3, 3], false)] {
        let mut e = Eevdf::new(&weights, 4 * MS, 100 * US);
        assert!(!e.enqueue(0), "nothing running");
        assert!(!e.enqueue(0), "already runnable");
        assert_eq!(
            e.pick(),
            Some(Pick {
                queue: 0,
                slice_ns: 4 * MS
            })
        );
        e.charge(MS);
        assert!(!e.enqueue(0), "the running queue itself");
        assert_eq!(e.enqueue(1), expect, "{weights:?}");
        assert!(!e.enqueue(1), "no-op once runnable");
        e.finish(true);
        if expect {
            assert_eq!(e.pick().unwrap().queue, 1, "preemption picks another queue");
        }
    }
    // Three equal queues: queue 0 picked at lag 0, queue 2 arrives at V. Its
    // deadline V + s ties with v_0 + s while queue 0 is still at V, and is
    // earlier once queue 0 has run past V.
    for (ran, expect) in [(0, false), (10 * US, true)] {
        let mut e = Eevdf::new(&[1, 1, 1], 3 * MS, 100 * US);
        e.enqueue(0);
        e.enqueue(1);
        assert_eq!(e.pick().unwrap().queue, 0);
        e.charge(ran);
        assert_eq!(e.enqueue(2), expect, "ran {ran}");
    }
}

#[test]
fn returning_debtor_does_not_preempt() {
    let _watchdog = crate::test_watchdog::watchdog();
    let mut e = busy(&[1, 1], 4 * MS, 100 * US);
    let p = e.pick().unwrap();
    e.charge(p.slice_ns);
    e.finish(false); // lag < 0: stays as a delayed member
    assert!(!e.is_runnable(p.queue) && e.lag_ns(p.queue) < 0);
    let other = 1 - p.queue;
    assert_eq!(e.pick().unwrap().queue, other);
    e.charge(10 * US);
    assert!(!e.enqueue(p.queue), "still owes service, not eligible");
    assert!(e.lag_ns(p.queue) < 0);
}

/// Among eligible queues the earliest virtual deadline (`v + slice / w`) wins, not the
/// lowest index: both queues join at the same `v`, and the heavier one, listed
/// second, has the earlier deadline.
#[test]
fn pick_serves_the_earliest_deadline_not_the_lowest_index() {
    let _watchdog = crate::test_watchdog::watchdog();
    let mut e = busy(&[1, 8], 4 * MS, 100 * US);
    assert_eq!(e.pick().unwrap().queue, 1);
}

// ---- 6. single queue, nothing runnable, set_weight ----

#[test]
fn single_queue_and_empty() {
    let _watchdog = crate::test_watchdog::watchdog();
    let mut e = Eevdf::new(&[5, 7], 2 * MS, 100 * US);
    assert_eq!(e.pick(), None);
    assert!(!e.enqueue(1));
    for _ in 0..100 {
        assert_eq!(
            e.pick(),
            Some(Pick {
                queue: 1,
                slice_ns: 2 * MS
            })
        );
        assert_eq!(e.running(), Some(1));
        e.charge(3 * MS);
        assert_eq!(e.lag_ns(1), 0);
        e.finish(true);
    }
    assert_eq!(e.running(), None);
    assert_eq!(e.runnable_count(), 1);
    e.pick().unwrap();
    e.finish(false);
    assert_eq!(e.runnable_count(), 0);
    assert_eq!(e.pick(), None);
    check_invariants(&e);
    // min_slice wins over latency / n.
    let mut e = busy(&[1, 1, 1, 1], 2 * MS, 800 * US);
    assert_eq!(e.pick().unwrap().slice_ns, 800 * US);
}

#[test]
fn set_weight_keeps_lag_and_moves_shares() {
    let _watchdog = crate::test_watchdog::watchdog();
    let mut e = busy(&[1, 1, 2], 3 * MS, 100 * US);
    let mut rng = Rng::new(6);
    run_busy(&mut e, 101, || rng.range(10 * US, 300 * US));
    // Reweight a waiting queue: lag (ns) kept.
    let p = e.pick().unwrap();
    let other = (p.queue + 1) % 3;
    let before = e.lag_ns(other);
    e.set_weight(other, 4);
    assert!(
        (e.lag_ns(other) - before).abs() <= 1,
        "{before} {}",
        e.lag_ns(other)
    );
    // Reweight the running queue: deferred to the end of the slice.
    e.charge(p.slice_ns);
    e.set_weight(p.queue, 9);
    assert_eq!(e.weight(p.queue), 9);
    assert_ne!(e.queues[p.queue].weight, 9);
    let before = e.lag_ns(p.queue);
    e.finish(true);
    assert!((e.lag_ns(p.queue) - before).abs() <= 1);
    check_invariants(&e);

    let weights: Vec<u32> = (0..3).map(|q| e.weight(q)).collect();
    let service = run_busy(&mut e, 10_000, || rng.range(10 * US, 300 * US));
    let err = share_error_pp(&service, &weights);
    eprintln!("after set_weight {weights:?}: share error {err:.5} pp");
    assert!(err < 0.1);
}

#[test]
fn random_api_sequences_keep_invariants() {
    let _watchdog = crate::test_watchdog::watchdog();
    let mut rng = Rng::new(7);
    for _ in 0..200 {
        let n = rng.range(1, 6) as usize;
        let weights = random_weights(&mut rng, n, u64::from(MAX_WEIGHT));
        let mut e = Eevdf::new(&weights, rng.range(1, 3 * MS), rng.range(0, MS));
        for _ in 0..300 {
            let q = rng.range(0, n as u64 - 1) as usize;
            match (e.running(), rng.range(0, 5)) {
                (_, 0) => {
                    let preempt = e.enqueue(q);
                    assert!(!preempt || e.running().is_some_and(|r| r != q));
                }
                (_, 1) => e.set_weight(q, rng.range(1, u64::from(MAX_WEIGHT)) as u32),
                (None, _) => {
                    let pick = e.pick();
                    assert_eq!(pick.is_some(), e.runnable_count() > 0);
                }
                (Some(_), 2..=3) => e.charge(rng.range(0, 2 * MS)),
                (Some(_), _) => e.finish(rng.chance(500)),
            }
            check_invariants(&e);
            let lag_sum: i64 = (0..n).map(|j| e.lag_ns(j)).sum();
            assert!(lag_sum.abs() <= n as i64, "lags sum to {lag_sum}");
        }
    }
}

// ---- 7. a year without overflow ----

#[test]
fn a_year_does_not_overflow() {
    let _watchdog = crate::test_watchdog::watchdog();
    const YEAR: u64 = 365 * 24 * 3600 * SEC;
    // Weights MAX_WEIGHT and 1 together for a year: 50 s slices served in 1 s
    // charges, 3.2e7 charges.
    let weights = [MAX_WEIGHT, 1];
    let mut e = busy(&weights, 100 * SEC, 100 * US);
    let (mut service, mut total, mut max_slice) = ([0u64; 2], 0, 0);
    while total < YEAR {
        let p = e.pick().unwrap();
        max_slice = max_slice.max(p.slice_ns);
        let used = serve_slice(&mut e, p.slice_ns, || SEC);
        service[p.queue] += used;
        total += used;
        e.finish(true);
    }
    check_invariants(&e);
    // Shares still right: each queue within one slice + one charge of its
    // exact share (lag bound (a) with N = 2).
    for (q, &w) in weights.iter().enumerate() {
        let fair = total as f64 * f64::from(w) / f64::from(MAX_WEIGHT + 1);
        let off = service[q] as f64 - fair;
        eprintln!("year: queue {q} off its share by {:.3} s", off / 1e9);
        assert!(off.abs() < (max_slice + SEC) as f64);
    }
    // Then the weight-1 queue alone for another year (1,000 s charges): its
    // v passes 2^64, and the heavy queue still comes back at V.
    while e.is_runnable(0) {
        let p = e.pick().unwrap();
        e.finish(p.queue != 0); // the heavy queue runs dry
    }
    let mut alone = 0;
    while alone < YEAR {
        let p = e.pick().unwrap();
        assert_eq!(p.queue, 1);
        alone += serve_slice(&mut e, p.slice_ns, || 1_000 * SEC);
        e.finish(true);
    }
    assert!(e.queues[1].v > u128::from(u64::MAX));
    e.enqueue(0);
    assert!(e.lag_ns(0).abs() <= 1);
    check_invariants(&e);
}
