//! EEVDF's CPU split, checked on the virtual clock (feature `sim`): the real executor
//! with always-busy queues, no wall clock involved, so the bounds can be tight and the
//! test cannot flake.
#![cfg(feature = "sim")]

mod common;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use clockworker::sim::{self, Host, HostModel};
use clockworker::{yield_maybe, ExecutorBuilder};
use common::sim_work::{busy, US};

/// Runs always-busy queues of `weights` (two tasks each, `chunk` polls) for `span` of
/// virtual time; returns every queue's service time at each `every` checkpoint.
fn run(weights: &[u32], chunk: Duration, span: Duration, every: Duration) -> Vec<Vec<Duration>> {
    let host = Host::new(HostModel::tokio()).unwrap();
    let mut builder = ExecutorBuilder::new();
    for (q, &w) in weights.iter().enumerate() {
        builder = builder.with_queue(q, w);
    }
    let executor = builder.build().unwrap();
    for q in 0..weights.len() {
        let queue = executor.queue(q).unwrap();
        queue.spawn(busy(chunk));
        queue.spawn(busy(chunk));
    }
    let samples = Rc::new(RefCell::new(Vec::new()));
    let checkpoints = (span.as_nanos() / every.as_nanos()) as u32;
    for i in 1..=checkpoints {
        let (ex, s) = (executor.clone(), samples.clone());
        let n = weights.len();
        sim::call_at(every * i, move || {
            let row = (0..n)
                .map(|q| ex.queue_stats(q).unwrap().service_time)
                .collect();
            s.borrow_mut().push(row);
        })
        .unwrap();
    }
    let _ = host.run(executor.run(), span + every);
    let out = samples.borrow().clone();
    out
}

/// The largest deviation, over all checkpoints and queues, of a queue's service from
/// its weighted share of all service so far.
fn worst_lag(weights: &[u32], samples: &[Vec<Duration>]) -> Duration {
    let total_weight: u32 = weights.iter().sum();
    let mut worst = Duration::ZERO;
    for row in samples {
        let total: Duration = row.iter().sum();
        for (q, &got) in row.iter().enumerate() {
            let due = total.mul_f64(f64::from(weights[q]) / f64::from(total_weight));
            worst = worst.max(got.abs_diff(due));
        }
    }
    worst
}

#[test]
fn weights_three_to_one_split_the_cpu_three_to_one() {
    let samples = run(
        &[3, 1],
        10 * US,
        Duration::from_secs(1),
        Duration::from_millis(5),
    );
    let last = samples.last().unwrap();
    let share = last[0].as_secs_f64() / (last[0] + last[1]).as_secs_f64();
    assert!((share - 0.75).abs() < 0.002, "share {share}");
    // Every 5 ms: no queue further from its share than one slice (2 ms / 2 queues)
    // plus one poll plus the driver yield's rounding.
    let lag = worst_lag(&[3, 1], &samples);
    assert!(lag <= Duration::from_micros(1_000 + 10 + 10), "lag {lag:?}");
}

#[test]
fn weights_one_two_four_eight_hold_to_half_a_point() {
    let weights = [1, 2, 4, 8];
    let samples = run(
        &weights,
        10 * US,
        Duration::from_secs(1),
        Duration::from_millis(10),
    );
    let last = samples.last().unwrap();
    let total: Duration = last.iter().sum();
    for (q, &w) in weights.iter().enumerate() {
        let share = last[q].as_secs_f64() / total.as_secs_f64();
        let due = f64::from(w) / 15.0;
        assert!((share - due).abs() < 0.005, "queue {q}: {share} vs {due}");
    }
    // Slices are 2 ms / 4 = 500 µs.
    let lag = worst_lag(&weights, &samples);
    assert!(lag <= Duration::from_micros(500 + 10 + 10), "lag {lag:?}");
}

#[test]
fn a_long_poll_is_never_cut_so_the_split_is_only_as_fine_as_the_polls() {
    // 1 ms polls against 2 ms of sched latency: the split still converges.
    let samples = run(
        &[3, 1],
        1_000 * US,
        Duration::from_secs(2),
        Duration::from_millis(100),
    );
    let last = samples.last().unwrap();
    let share = last[0].as_secs_f64() / (last[0] + last[1]).as_secs_f64();
    assert!((share - 0.75).abs() < 0.005, "share {share}");
}

/// Whether each queue's tasks run, and the wakers of those that wait to.
struct Phases {
    active: Vec<std::cell::Cell<bool>>,
    parked: RefCell<Vec<std::task::Waker>>,
}

/// Waits until queue `q` is active again.
fn resumed(phases: &Rc<Phases>, q: usize) -> impl std::future::Future<Output = ()> {
    let phases = phases.clone();
    std::future::poll_fn(move |cx| {
        if phases.active[q].get() {
            std::task::Poll::Ready(())
        } else {
            phases.parked.borrow_mut().push(cx.waker().clone());
            std::task::Poll::Pending
        }
    })
}

#[test]
fn queues_that_idle_come_back_without_banked_credit() {
    // benches/fairness: weights 1:2:4:8, two 10 µs tasks per queue; w8 idles, then
    // w1 and w2 idle while w8 returns, then all run again.
    let weights = [1u32, 2, 4, 8];
    let plan: [[bool; 4]; 4] = [
        [true; 4],
        [true, true, true, false],
        [false, false, true, true],
        [true; 4],
    ];
    let phase_len = Duration::from_millis(250);
    let host = Host::new(HostModel::tokio()).unwrap();
    let mut builder = ExecutorBuilder::new();
    for (q, &w) in weights.iter().enumerate() {
        builder = builder.with_queue(q, w);
    }
    let executor = builder.build().unwrap();
    let phases = Rc::new(Phases {
        active: (0..4).map(|_| std::cell::Cell::new(true)).collect(),
        parked: RefCell::new(Vec::new()),
    });
    for q in 0..4 {
        for _ in 0..2 {
            let p = phases.clone();
            executor.queue(q).unwrap().spawn(async move {
                loop {
                    resumed(&p, q).await;
                    sim::cpu(10 * US).await;
                    yield_maybe().await;
                }
            });
        }
    }
    let marks: Rc<RefCell<Vec<Vec<Duration>>>> = Rc::default();
    for (i, next) in plan
        .iter()
        .enumerate()
        .skip(1)
        .map(Some)
        .chain([None])
        .enumerate()
    {
        let (ex, p, m) = (executor.clone(), phases.clone(), marks.clone());
        let next = next.map(|(_, active)| *active);
        sim::call_at(phase_len * (i as u32 + 1), move || {
            m.borrow_mut().push(
                (0..4)
                    .map(|q| ex.queue_stats(q).unwrap().service_time)
                    .collect(),
            );
            if let Some(active) = next {
                for (q, on) in active.iter().enumerate() {
                    p.active[q].set(*on);
                }
                for waker in p.parked.borrow_mut().drain(..) {
                    waker.wake();
                }
            }
        })
        .unwrap();
    }
    let _ = host.run(executor.run(), phase_len * 4 + Duration::from_millis(1));
    let marks = marks.borrow();
    assert_eq!(marks.len(), 4);
    let zero = vec![Duration::ZERO; 4];
    for (i, active) in plan.iter().enumerate() {
        let before = if i == 0 { &zero } else { &marks[i - 1] };
        let got: Vec<Duration> = (0..4).map(|q| marks[i][q] - before[q]).collect();
        let total: Duration = got.iter().sum();
        let weight_sum: u32 = (0..4).filter(|&q| active[q]).map(|q| weights[q]).sum();
        for q in 0..4 {
            let due = if active[q] {
                f64::from(weights[q]) / f64::from(weight_sum)
            } else {
                0.0
            };
            let share = got[q].as_secs_f64() / total.as_secs_f64();
            assert!(
                (share - due).abs() < 0.005,
                "phase {i}, queue of weight {}: {share:.4} vs {due:.4}",
                weights[q]
            );
        }
    }
}
