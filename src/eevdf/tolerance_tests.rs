//! Lag tolerance: a queue owing less than the tolerance is served at once, a larger
//! debt is still repaid first, and shares over time do not move.

use super::tests::{bursty_share, Rng};
use super::*;

const US: u64 = 1_000;
const MS: u64 = 1_000_000;

/// Queue 0 (weight 8) serves a 50 µs burst beside queue 1 (weight 1) and runs dry
/// owing ~50 × (1 − 8/9) ≈ 5.6 µs; queue 1 is picked, and queue 0 comes back after
/// 1 µs of it. Returns whether that return asks for preemption, and the debt.
fn burst_then_return(tolerance_ns: u64) -> (bool, u64, Eevdf) {
    let mut e = Eevdf::new(&[8, 1], 2 * MS, 100 * US);
    e.set_lag_tolerance(tolerance_ns);
    assert!(!e.enqueue(0));
    assert!(!e.enqueue(1));
    assert_eq!(e.pick().unwrap().queue, 0);
    e.charge(50 * US);
    e.finish(false);
    let debt = u64::try_from(-e.lag_ns(0)).expect("in debt after the burst");
    assert_eq!(e.pick().unwrap().queue, 1);
    e.charge(US);
    let preempt = e.enqueue(0);
    (preempt, debt, e)
}

#[test]
fn a_debt_within_the_tolerance_does_not_wait() {
    let _watchdog = crate::test_watchdog::watchdog();
    let (preempt, debt, mut e) = burst_then_return(20 * US);
    assert!(debt > US && debt < 20 * US, "debt {debt} ns");
    assert!(
        preempt,
        "a debt of {debt} ns within 20 µs of tolerance must preempt"
    );
    e.finish(true);
    assert_eq!(e.pick().unwrap().queue, 0, "and be picked");
    assert!(e.lag_ns(0) < 0, "the debt stays on the books");
}

#[test]
fn without_tolerance_the_same_debt_waits_for_the_cut() {
    let _watchdog = crate::test_watchdog::watchdog();
    let (preempt, debt, mut e) = burst_then_return(0);
    assert!(!preempt, "strict EEVDF: a debtor does not preempt");
    // The cut falls once queue 1 has repaid the debt: ~debt × 9/8 of its service.
    let mut served = US;
    while !e.cut_due(0) {
        e.charge(100);
        served += 100;
        assert!(served < MS, "no cut");
    }
    assert!(
        served >= debt,
        "cut after {served} ns for a debt of {debt} ns"
    );
}

#[test]
fn a_debt_beyond_the_tolerance_waits_for_the_rest_only() {
    let _watchdog = crate::test_watchdog::watchdog();
    // Tolerance 2 µs of a ~5.6 µs debt: the cut falls after repaying the rest.
    let (preempt, debt, mut e) = burst_then_return(2 * US);
    assert!(!preempt);
    let mut served = US;
    while !e.cut_due(0) {
        e.charge(100);
        served += 100;
        assert!(served < MS, "no cut");
    }
    // Strict would cut after ~debt × 9/8 ≈ 6.3 µs; 2 µs of tolerance saves ~2.25.
    let strict = debt * 9 / 8;
    assert!(
        served + US < strict,
        "cut after {served} ns, strict would be {strict} ns"
    );
}

/// Queues of random weights run dry and come back at random; checks after every
/// charge that no lag falls below `-(T + (s_i + q)(1 - w_i/W_all))` (bound (a) with
/// the tolerance) and returns the service per queue while all were runnable.
fn churning_run(seed: u64, weights: &[u32], tolerance_ns: u64) -> Vec<u64> {
    let mut rng = Rng::new(seed);
    let mut e = Eevdf::new(weights, 2 * MS, 100 * US);
    e.set_lag_tolerance(tolerance_ns);
    let w_all: u32 = weights.iter().sum();
    let mut last_slice = vec![0u64; weights.len()];
    let mut longest_poll = 0u64;
    let mut service = vec![0u64; weights.len()];
    for q in 0..weights.len() {
        e.enqueue(q);
    }
    for _ in 0..20_000 {
        let Some(p) = e.pick() else {
            for q in 0..weights.len() {
                e.enqueue(q);
            }
            continue;
        };
        last_slice[p.queue] = p.slice_ns;
        let mut used = 0;
        let mut dry = false;
        while used < p.slice_ns {
            let t = rng.range(US, 80 * US);
            longest_poll = longest_poll.max(t);
            e.charge(t);
            used += t;
            service[p.queue] += t;
            for (i, &w) in weights.iter().enumerate() {
                let own =
                    (last_slice[i] + longest_poll) as f64 * (1.0 - f64::from(w) / f64::from(w_all));
                let floor = -(tolerance_ns as f64 + own);
                let lag = e.lag_ns(i) as f64;
                assert!(lag > floor - 1.0, "queue {i}: lag {lag} below {floor}");
            }
            // Bursty queues: the running one may run dry after any poll.
            if rng.range(0, 99) < 30 {
                dry = true;
                break;
            }
            if rng.range(0, 99) < 20 {
                // Someone else comes back (preemption honoured at once).
                let other = rng.range(0, weights.len() as u64 - 1) as usize;
                if !e.is_runnable(other) && e.enqueue(other) {
                    break;
                }
            }
        }
        e.finish(!dry);
        // Dry queues come back after a while.
        for q in 0..weights.len() {
            if !e.is_runnable(q) && rng.range(0, 99) < 50 {
                e.enqueue(q);
            }
        }
    }
    service
}

#[test]
fn lags_stay_within_the_loosened_bound() {
    let _watchdog = crate::test_watchdog::watchdog();
    let mut rng = Rng::new(7);
    for seed in 0..20 {
        let n = rng.range(2, 5) as usize;
        let weights: Vec<u32> = (0..n).map(|_| rng.range(1, 16) as u32).collect();
        churning_run(seed, &weights, 50 * US);
    }
}

#[test]
fn shares_over_time_do_not_move() {
    let _watchdog = crate::test_watchdog::watchdog();
    // All queues always runnable: the tolerance changes only who goes first.
    let weights = [1u32, 2, 4, 8];
    for tolerance in [0, 20 * US, 200 * US] {
        let mut e = Eevdf::new(&weights, 2 * MS, 100 * US);
        e.set_lag_tolerance(tolerance);
        for q in 0..weights.len() {
            e.enqueue(q);
        }
        let mut rng = Rng::new(3);
        let mut service = [0u64; 4];
        for _ in 0..20_000 {
            let p = e.pick().unwrap();
            let mut used = 0;
            while used < p.slice_ns {
                let t = rng.range(10 * US, 300 * US);
                e.charge(t);
                used += t;
            }
            service[p.queue] += used;
            e.finish(true);
        }
        let total: u64 = service.iter().sum();
        for (q, &w) in weights.iter().enumerate() {
            let share = service[q] as f64 / total as f64;
            let fair = f64::from(w) / 15.0;
            assert!(
                (share - fair).abs() < 0.001,
                "tolerance {tolerance}: queue {q} share {share:.5}, fair {fair:.5}"
            );
        }
    }
}

#[test]
fn a_bursty_queue_gains_nothing_from_the_tolerance() {
    let _watchdog = crate::test_watchdog::watchdog();
    // As `debt_survives_going_idle`, with 100 µs of tolerance.
    let mut e = Eevdf::new(&[1, 1], 2 * MS, 100 * US);
    e.set_lag_tolerance(100 * US);
    e.enqueue(0);
    e.enqueue(1);
    let share = bursty_share(&mut e);
    assert!(share < 0.51, "bursty queue share {share:.4}, fair 0.5");
}

/// The tolerance is in ns of lag, whatever the weights: a debtor is eligible exactly
/// while its debt (as `lag_ns` reports it) is at most the tolerance. Checked 50 ns on
/// either side, for the weight-8 debtor of `burst_then_return` and for a weight-1
/// debtor beside weight 8, where a tolerance scaled by the wrong weight would be off
/// by far more.
#[test]
fn eligibility_flips_at_the_tolerance_in_ns_of_lag() {
    let _watchdog = crate::test_watchdog::watchdog();
    for weights in [[8, 1], [1, 8]] {
        let mut e = Eevdf::new(&weights, 2 * MS, 100 * US);
        e.enqueue(0);
        let p = e.pick().unwrap();
        e.enqueue(1);
        e.charge(p.slice_ns / 2);
        e.finish(false);
        let debt = u64::try_from(-e.lag_ns(0)).expect("queue 0 in debt");
        assert!(debt > US, "weights {weights:?}: debt {debt} ns");
        e.set_lag_tolerance(debt + 50);
        assert!(e.eligible(0), "weights {weights:?}: debt {debt} ns");
        e.set_lag_tolerance(debt - 50);
        assert!(!e.eligible(0), "weights {weights:?}: debt {debt} ns");
    }
}
