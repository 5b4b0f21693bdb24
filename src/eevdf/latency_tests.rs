//! Simulation tests of latency queues (module docs, "Latency queues", bound (c)).

use super::tests::Rng;
use super::*;

const BUSY: usize = 8;
const LATENCY: usize = BUSY;
const LATENCY_SLICE: u64 = 100_000;

fn setup(latency_weight: u32) -> Eevdf {
    let mut weights = vec![1; BUSY];
    weights.push(latency_weight);
    let mut e = Eevdf::new(&weights, 4_000_000, 200_000);
    e.set_latency(LATENCY, LATENCY_SLICE);
    for q in 0..BUSY {
        e.enqueue(q);
    }
    e
}

/// Bursty latency queue beside 8 saturating queues: every time it becomes
/// runnable it is picked at the very next pick (bound (c): one poll of delay).
#[test]
fn a_waking_latency_queue_is_picked_after_the_poll_in_progress() {
    let _watchdog = crate::test_watchdog::watchdog();
    let mut rng = Rng::new(0x5eed_1a7e);
    let mut e = setup(1);
    let mut latency_work = 0u32; // polls of ready work in the latency queue
    let mut waiting_since_poll: Option<u64> = None;
    let mut polls = 0u64;
    let mut wakes = 0u64;
    let mut service = [0u64; BUSY + 1];
    let mut worst_wait_polls = 0u64;
    let mut refused = 0u64;
    while polls < 200_000 {
        let pick = e.pick().expect("busy queues are always runnable");
        if let Some(since) = waiting_since_poll.take() {
            assert_eq!(pick.queue, LATENCY, "a woken latency queue was passed over");
            worst_wait_polls = worst_wait_polls.max(polls - since);
        }
        let mut used = 0;
        let mut preempted = false;
        while used < pick.slice_ns && !preempted {
            let ran = rng.range(10_000, 300_000);
            e.charge(ran);
            used += ran;
            service[pick.queue] += ran;
            polls += 1;
            if pick.queue == LATENCY {
                latency_work -= 1;
                if latency_work == 0 {
                    break;
                }
            } else if latency_work == 0 && rng.range(0, 99) < 2 {
                // Work arrives for the idle latency queue during this poll.
                latency_work = rng.range(1, 3) as u32;
                wakes += 1;
                preempted = e.enqueue(LATENCY);
                if preempted {
                    waiting_since_poll = Some(polls);
                } else {
                    // Only a latency queue in debt (back within one slice of
                    // its last one) is refused; it waits to repay, as in (b).
                    assert!(e.lag_ns(LATENCY) < 0, "eligible latency queue not urgent");
                    refused += 1;
                }
            }
        }
        e.finish(pick.queue != LATENCY || latency_work > 0);
    }
    assert!(wakes > 1_000, "only {wakes} wakes simulated");
    assert!(
        refused * 2 < wakes,
        "{refused} of {wakes} wakes found the queue in debt"
    );
    assert_eq!(
        worst_wait_polls, 0,
        "picked after {worst_wait_polls} extra polls"
    );
    // Bursty demand well under its share: it never exceeds 1/9 of the CPU.
    let total: u64 = service.iter().sum();
    let share = service[LATENCY] as f64 / total as f64;
    assert!(
        share < 1.0 / 9.0,
        "latency queue took {:.3} of the CPU",
        share
    );
}

/// A latency queue that is always busy gets its weighted share, not more: being
/// urgent on wake-up does not turn into extra service.
#[test]
fn a_saturating_latency_queue_gets_only_its_share() {
    let _watchdog = crate::test_watchdog::watchdog();
    let mut rng = Rng::new(0xfeed_beef);
    let mut e = setup(2);
    e.enqueue(LATENCY);
    let mut service = [0u64; BUSY + 1];
    for _ in 0..50_000 {
        let pick = e.pick().expect("runnable");
        let mut used = 0;
        while used < pick.slice_ns {
            let ran = rng.range(10_000, 60_000);
            e.charge(ran);
            used += ran;
            service[pick.queue] += ran;
        }
        e.finish(true);
    }
    let total: u64 = service.iter().sum();
    let share = service[LATENCY] as f64 / total as f64;
    let target = 2.0 / 10.0;
    assert!(
        (share - target).abs() < 0.001,
        "latency queue share {share:.4}, target {target:.4}"
    );
}

/// Its slices are its own length: it never keeps the CPU past `LATENCY_SLICE`
/// plus one poll.
#[test]
fn latency_queue_slices_are_its_own_length() {
    let _watchdog = crate::test_watchdog::watchdog();
    let mut e = setup(1);
    e.enqueue(LATENCY);
    let mut latency_picks = 0;
    for _ in 0..1_000 {
        let pick = e.pick().expect("runnable");
        if pick.queue == LATENCY {
            assert_eq!(pick.slice_ns, LATENCY_SLICE);
            latency_picks += 1;
        } else {
            assert_eq!(pick.slice_ns, 4_000_000 / (BUSY as u64 + 1));
        }
        e.charge(pick.slice_ns);
        e.finish(true);
    }
    assert!(latency_picks > 0);
}

/// A latency queue whose burst is cut short (here: preempted by an ordinary queue
/// waking with an earlier deadline) stays urgent until it runs dry: once it has repaid
/// the debt of its partial slice it is picked first again. Were it urgent only until
/// its first pick, its long slice (5 ms, so a late deadline) would send the rest of its
/// burst to the back of deadline order: ~8 × 5 ms of others' service.
#[test]
fn a_preempted_latency_burst_stays_urgent_until_the_queue_runs_dry() {
    let _watchdog = crate::test_watchdog::watchdog();
    const MS: u64 = 1_000_000;
    const US: u64 = 1_000;
    // 8 saturating queues, one idle ordinary queue, one latency queue; all weight 1.
    let mut e = Eevdf::new(&[1; 10], 2 * MS, 100 * US);
    let (ordinary, lat) = (8, 9);
    e.set_latency(lat, 5 * MS);
    for q in 0..8 {
        e.enqueue(q);
    }
    // A busy queue is running when the latency queue's burst arrives.
    let first = e.pick().unwrap();
    e.charge(50 * US);
    assert!(e.enqueue(lat), "an eligible latency queue preempts");
    e.finish(true);
    assert_eq!(e.pick().unwrap().queue, lat);
    e.charge(100 * US);
    assert!(
        e.enqueue(ordinary),
        "the ordinary queue's deadline is earlier"
    );
    e.finish(true); // preempted; the burst goes on
    assert!(e.lag_ns(lat) < 0, "the partial slice left a debt");
    // Serve the others slice by slice until the latency queue comes back.
    let mut others = 0;
    loop {
        let p = e.pick().unwrap();
        if p.queue == lat {
            break;
        }
        assert!(
            others < 8 * MS,
            "latency queue not picked after {others} ns"
        );
        let ran = p.slice_ns.min(150 * US);
        e.charge(ran);
        others += ran;
        e.finish(true);
    }
    // Its debt (100 µs × 9/10) is repaid after 900 µs served to the others, at the
    // end of the slice (150 µs polls here) in which that happens.
    eprintln!(
        "latency queue picked again after {others} ns of the others' service (first: {first:?})"
    );
    assert!(others <= 900 * US + 150 * US, "{others}");
}
