//! The cut: a queue that is runnable but not eligible is weighed again as soon as the
//! running queue has been served what it takes to make it eligible, not at the end of
//! the running slice.

use super::*;

const US: u64 = 1_000;
const MS: u64 = 1_000_000;

/// Queue 0 (weight 8) serves a 1 ms slice beside queue 1 (weight 1) and runs dry:
/// it owes about 1 ms × (1 − 8/9) ≈ 111 µs and stays a delayed member. Queue 1 is
/// picked (alone, a 2 ms slice). Queue 0 comes back 10 µs later: not eligible, so
/// no preemption; it is eligible after 111 µs × 9/8 ≈ 125 µs of service to queue 1
/// in all, and the cut must fall there, not at the end of queue 1's 2 ms.
#[test]
fn returning_debtor_is_weighed_once_repaid() {
    let _watchdog = crate::test_watchdog::watchdog();
    let mut e = Eevdf::new(&[8, 1], 2 * MS, 100 * US);
    assert!(!e.enqueue(0));
    assert!(!e.enqueue(1));
    let p = e.pick().unwrap();
    assert_eq!(p.queue, 0);
    e.charge(p.slice_ns);
    e.finish(false);
    let debt = u64::try_from(-e.lag_ns(0)).expect("in debt");
    let p = e.pick().unwrap();
    assert_eq!(p.queue, 1);
    e.charge(10 * US);
    assert!(!e.enqueue(0), "a debtor does not preempt");
    assert!(!e.cut_due(0));
    // The poll in progress counts: after `need` more ns the cut is due.
    let mut served = 10 * US;
    while !e.cut_due(0) {
        assert!(
            served < p.slice_ns,
            "no cut within queue 1's slice of {}",
            p.slice_ns
        );
        e.charge(US);
        served += US;
    }
    let expected = debt * 9 / 8;
    eprintln!("debt {debt} ns, cut after {served} ns of service to queue 1 (expected {expected})");
    assert!(
        served.abs_diff(expected) <= 2 * US,
        "cut at {served}, expected {expected}"
    );
    assert!(e.lag_ns(0) >= 0, "eligible at the cut");
    e.finish(true);
    assert_eq!(e.pick().unwrap().queue, 0, "the repaid queue runs next");
}

/// The in-poll service passed to `cut_due` brings the cut forward exactly as charges do.
#[test]
fn cut_counts_the_poll_in_progress() {
    let _watchdog = crate::test_watchdog::watchdog();
    let mut e = Eevdf::new(&[8, 1], 2 * MS, 100 * US);
    e.enqueue(0);
    e.enqueue(1);
    let p = e.pick().unwrap();
    e.charge(p.slice_ns);
    e.finish(false);
    e.pick().unwrap();
    e.enqueue(0);
    assert!(!e.cut_due(0));
    assert!(
        e.cut_due(MS),
        "1 ms of a poll in progress repays a ~111 µs debt"
    );
    e.charge(MS);
    assert!(e.cut_due(0));
}

/// Nothing waiting in debt: no cut, the slice runs its length.
#[test]
fn no_cut_without_a_waiting_debtor() {
    let _watchdog = crate::test_watchdog::watchdog();
    let mut e = Eevdf::new(&[8, 1], 2 * MS, 100 * US);
    e.enqueue(1);
    let p = e.pick().unwrap();
    e.charge(p.slice_ns - 1);
    assert!(!e.cut_due(0));
    // An idle queue joining at V is eligible: it preempts (earlier deadline) or
    // waits for the slice end, but never arms a cut.
    assert!(e.enqueue(0), "weight 8 at V has the earlier deadline");
    assert!(!e.cut_due(u64::MAX / 2));
}

/// Honouring every cut keeps the shares: queues 0–2 (weights 1, 2, 4) always
/// runnable, queue 3 (weight 8) running dry after each of its slices and back one
/// 50 µs poll later, so it returns in debt again and again and the cut ends the
/// slice in progress each time. Its share stays at (not above) its weight's, and
/// the others split the rest by weight.
#[test]
fn shares_hold_when_cuts_end_slices() {
    let _watchdog = crate::test_watchdog::watchdog();
    let weights = [1u32, 2, 4, 8];
    let mut e = Eevdf::new(&weights, 4 * MS, 100 * US);
    for q in 0..weights.len() {
        e.enqueue(q);
    }
    let mut service = [0u64; 4];
    let (mut cuts, mut slices) = (0u64, 0u64);
    for _ in 0..20_000 {
        let p = e.pick().unwrap();
        slices += 1;
        let mut used = 0;
        while used < p.slice_ns {
            if e.cut_due(0) {
                cuts += 1;
                break;
            }
            e.charge(50 * US);
            used += 50 * US;
            if p.queue != 3 && !e.is_runnable(3) {
                e.enqueue(3);
            }
        }
        service[p.queue] += used;
        e.finish(p.queue != 3);
    }
    let total: u64 = service.iter().sum();
    let share = |q: usize| service[q] as f64 / total as f64 * 100.0;
    let others: u64 = service[..3].iter().sum();
    let worst_others = (0..3)
        .map(|q| (service[q] as f64 / others as f64 - f64::from(weights[q]) / 7.0).abs() * 100.0)
        .fold(0.0, f64::max);
    eprintln!(
        "{cuts} cuts in {slices} slices; bursty queue {:.3} % (weight share 53.333 %); \
         others split by weight within {worst_others:.4} pp",
        share(3)
    );
    assert!(cuts > 1_000, "the bursty queue should trigger cuts: {cuts}");
    assert!(share(3) < 53.333 + 0.1, "{}", share(3));
    assert!(worst_others < 0.1, "{worst_others} pp");
}

/// A debtor with no ready work is nobody to cut for: at the pick, only *active*
/// queues that are not eligible arm a cut. Queue 0 (weight 8) serves its slice and
/// runs dry, staying a delayed member in debt with the earlier deadline; queues 1 and
/// 2 are picked in turn and must run their whole slice (queue 0 arms its cut when it
/// has work again, see `returning_debtor_is_weighed_once_repaid`).
#[test]
fn a_debtor_without_ready_work_arms_no_cut() {
    let _watchdog = crate::test_watchdog::watchdog();
    let mut e = Eevdf::new(&[8, 1, 1], 2 * MS, 100 * US);
    for q in 0..3 {
        e.enqueue(q);
    }
    let p = e.pick().unwrap();
    assert_eq!(p.queue, 0);
    e.charge(p.slice_ns);
    e.finish(false);
    assert!(e.lag_ns(0) < 0, "queue 0 stays a member in debt");
    assert!(!e.is_runnable(0));
    let p = e.pick().unwrap();
    assert_ne!(p.queue, 0);
    assert!(
        !e.cut_due(u64::MAX / 2),
        "a cut armed for queue 0, which has nothing to run"
    );
}

/// A debtor whose deadline is later than the running queue's would not win the pick
/// once repaid, so it arms no cut: the running slice runs its length. Two queues of
/// weight 1: queue 0 serves its slice and runs dry, in debt; queue 1 is picked and
/// queue 0 comes back, its deadline a slice behind queue 1's.
#[test]
fn a_debtor_with_the_later_deadline_arms_no_cut() {
    let _watchdog = crate::test_watchdog::watchdog();
    let mut e = Eevdf::new(&[1, 1], 2 * MS, 100 * US);
    e.enqueue(0);
    e.enqueue(1);
    let p = e.pick().unwrap();
    assert_eq!(p.queue, 0);
    e.charge(p.slice_ns);
    e.finish(false);
    let p = e.pick().unwrap();
    assert_eq!(p.queue, 1);
    e.charge(US);
    assert!(!e.enqueue(0), "a debtor does not preempt");
    assert!(e.lag_ns(0) < 0);
    assert!(
        !e.cut_due(u64::MAX / 2),
        "a cut armed for a debtor that would lose the pick once repaid"
    );
}

/// The cut falls in the very ns the debtor becomes eligible, or the one after (the
/// carried remainder): charged 1 ns at a time, with charges folded in at every step
/// as a wake in the middle of the slice would (`enqueue` settles), and with or
/// without a lag tolerance. Debtor and running queue as in
/// `returning_debtor_is_weighed_once_repaid`, after bursts of several lengths.
#[test]
fn the_cut_falls_when_the_debtor_becomes_eligible_to_the_ns() {
    let _watchdog = crate::test_watchdog::watchdog();
    for tolerance_ns in [0, 2 * US] {
        for burst in [50 * US, 77 * US + 3, 130 * US] {
            let mut e = Eevdf::new(&[8, 1], 2 * MS, 100 * US);
            e.set_lag_tolerance(tolerance_ns);
            e.enqueue(0);
            e.enqueue(1);
            assert_eq!(e.pick().unwrap().queue, 0);
            e.charge(burst);
            e.finish(false);
            assert_eq!(e.pick().unwrap().queue, 1);
            e.charge(US);
            assert!(
                !e.enqueue(0),
                "burst {burst}: the debt exceeds the tolerance"
            );
            let case = format!("burst {burst} ns, tolerance {tolerance_ns} ns");
            let mut eligible_at = None;
            let mut served = 0u64;
            while !e.cut_due(0) {
                assert!(served < MS, "{case}: no cut");
                e.charge(1);
                served += 1;
                e.settle();
                if eligible_at.is_none() && e.eligible(0) {
                    eligible_at = Some(served);
                }
            }
            let eligible_at = eligible_at.unwrap_or(served);
            assert!(
                e.eligible(0),
                "{case}: cut after {served} ns, not eligible yet"
            );
            assert!(
                served <= eligible_at + 1,
                "{case}: eligible after {eligible_at} ns, cut only after {served}"
            );
        }
    }
}
