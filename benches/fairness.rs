//! How exactly clockworker splits the CPU by weight.
//!
//! Four queues with weights 1, 2, 4 and 8; each holds two CPU-bound tasks that spin
//! 10 µs and call `clockworker::yield_maybe().await` in a loop (so they yield only
//! when their queue's slice is spent or a preemption is pending). The executor runs at
//! the top of a tokio current_thread runtime (`rt.block_on(executor.run_until(..))`);
//! its driving future switches phases with `tokio::time::sleep`. A queue's share of a
//! phase is its `queue_stats(k).service_time` gained in the phase over all queues'.
//!
//! Phases:
//! 1. `steady`: all four queues busy for 1 s (quick mode: 0.2 s).
//! 2. `w8 idle`: the weight-8 queue's tasks park; the other three split the CPU 1:2:4.
//! 3. `w8 back, w1+w2 idle`: weight 8 returns after idling — it must not bring banked
//!    credit — while weights 1 and 2 park: 4:8.
//! 4. `all back`: all four again, 1:2:4:8 (the two queues that idled must not burst).
//!
//! Phases 2–4 last 0.25 s each (quick mode: 0.05 s). Target: every queue within ±0.5
//! percentage points of its share. Reported, never asserted.
//!
//! `CW_BENCH_QUICK=1` for a quick run; `FAIR_ROUNDS` overrides the number of rounds.

#[path = "common/mod.rs"]
mod common;

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use clockworker::{yield_maybe, ExecutorBuilder};
use common::{Cell as C, Panel, Series, Table};
use tokio::sync::Notify;

const WEIGHTS: [u32; 4] = [1, 2, 4, 8];
const TASKS_PER_QUEUE: usize = 2;
const SPIN: Duration = Duration::from_micros(10);
const TOLERANCE_PP: f64 = 0.5;

struct Phase {
    name: &'static str,
    active: [bool; 4],
    full: Duration,
    quick: Duration,
}

const PHASES: [Phase; 4] = [
    Phase {
        name: "steady",
        active: [true; 4],
        full: Duration::from_millis(1000),
        quick: Duration::from_millis(200),
    },
    Phase {
        name: "w8 idle",
        active: [true, true, true, false],
        full: Duration::from_millis(250),
        quick: Duration::from_millis(50),
    },
    Phase {
        name: "w8 back, w1+w2 idle",
        active: [false, false, true, true],
        full: Duration::from_millis(250),
        quick: Duration::from_millis(50),
    },
    Phase {
        name: "all back",
        active: [true; 4],
        full: Duration::from_millis(250),
        quick: Duration::from_millis(50),
    },
];

/// Whether each queue's tasks should run, and where parked tasks wait.
struct Control {
    active: [Cell<bool>; 4],
    resume: [Notify; 4],
    stop: Cell<bool>,
}

async fn worker(queue: usize, control: Rc<Control>) {
    loop {
        if control.stop.get() {
            return;
        }
        if !control.active[queue].get() {
            control.resume[queue].notified().await;
            continue;
        }
        common::spin(SPIN);
        yield_maybe().await;
    }
}

/// What one round measured.
struct Round {
    /// Each phase's shares (fractions of the phase's CPU), per queue.
    shares: Vec<[f64; 4]>,
    /// Per queue: the longest poll (upper bound of the highest log2 bucket), µs.
    longest_poll_us: [f64; 4],
    /// Per queue: polls.
    polls: [u64; 4],
}

/// One round of all phases.
#[inline(never)]
fn measured(quick: bool) -> Round {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut builder = ExecutorBuilder::new();
    for (k, &w) in WEIGHTS.iter().enumerate() {
        builder = builder.with_queue(k, w);
    }
    let executor = builder.build().expect("executor");
    let control = Rc::new(Control {
        active: std::array::from_fn(|_| Cell::new(true)),
        resume: std::array::from_fn(|_| Notify::new()),
        stop: Cell::new(false),
    });
    let mut handles = Vec::new();
    for k in 0..WEIGHTS.len() {
        let q = executor.queue(k).expect("queue");
        for _ in 0..TASKS_PER_QUEUE {
            handles.push(q.spawn(worker(k, control.clone())));
        }
    }
    let ex = executor.clone();
    let stats_ex = executor.clone();
    let service = move || -> [Duration; 4] {
        std::array::from_fn(|k| ex.queue_stats(k).expect("stats").service_time)
    };
    let shares = rt.block_on(executor.run_until(async move {
        let mut shares = Vec::new();
        for phase in &PHASES {
            for (k, &on) in phase.active.iter().enumerate() {
                let was = control.active[k].replace(on);
                if on && !was {
                    control.resume[k].notify_waiters();
                }
            }
            let before = service();
            tokio::time::sleep(if quick { phase.quick } else { phase.full }).await;
            let after = service();
            let gained: [f64; 4] = std::array::from_fn(|k| (after[k] - before[k]).as_secs_f64());
            let sum: f64 = gained.iter().sum();
            shares.push(gained.map(|g| g / sum));
        }
        control.stop.set(true);
        for k in 0..WEIGHTS.len() {
            control.resume[k].notify_waiters();
        }
        for h in handles {
            h.await.expect("worker");
        }
        shares
    }));
    let stats: Vec<_> = (0..4)
        .map(|k| stats_ex.queue_stats(k).expect("stats"))
        .collect();
    Round {
        shares,
        longest_poll_us: std::array::from_fn(|k| {
            stats[k]
                .poll_time
                .buckets()
                .last()
                .map_or(f64::NAN, |(upper, _)| common::micros(upper))
        }),
        polls: std::array::from_fn(|k| stats[k].polls),
    }
}

fn target(phase: &Phase) -> [f64; 4] {
    let sum: u32 = (0..4)
        .filter(|&k| phase.active[k])
        .map(|k| WEIGHTS[k])
        .sum();
    std::array::from_fn(|k| {
        if phase.active[k] {
            f64::from(WEIGHTS[k]) / f64::from(sum)
        } else {
            0.0
        }
    })
}

fn main() {
    common::keep_heap();
    let quick = common::quick();
    let rounds = common::env_usize("FAIR_ROUNDS", common::pick(5, 1)).max(1);
    println!(
        "fairness: queues with weights {WEIGHTS:?}, {TASKS_PER_QUEUE} CPU-bound tasks each \
         (spin {} µs, yield_maybe), default slices; median of {rounds} rounds{}",
        SPIN.as_micros(),
        if quick { " (quick mode)" } else { "" }
    );
    let samples = common::interleaved(&["fairness"], rounds, false, |_, _| measured(quick));
    let rounds_shares: Vec<Vec<[f64; 4]>> = samples[0].iter().map(|r| r.shares.clone()).collect();

    let mut table = Table::new(
        "Share of the CPU per queue (percent; median over rounds; error = measured − target, \
         worst = largest |error| in any round)",
        &[
            "phase",
            "queue weight",
            "target %",
            "measured %",
            "error pp",
            "worst pp",
            "within ±0.5 pp",
        ],
    );
    let mut all_within = true;
    let mut panels = Vec::new();
    for (p, phase) in PHASES.iter().enumerate() {
        let t = target(phase);
        let per_round: Vec<[f64; 4]> = rounds_shares.iter().map(|r| r[p]).collect();
        let med = common::median_each(&per_round);
        for k in 0..4 {
            if !phase.active[k] {
                continue;
            }
            let err = (med[k] - t[k]) * 100.0;
            let worst = per_round
                .iter()
                .map(|r| (r[k] - t[k]) * 100.0)
                .fold(0.0f64, |a, e| if e.abs() > a.abs() { e } else { a });
            let ok = worst.abs() <= TOLERANCE_PP;
            all_within &= ok;
            table.row(vec![
                C::text(phase.name),
                C::num(f64::from(WEIGHTS[k]), 0),
                C::num(t[k] * 100.0, 2),
                C::num(med[k] * 100.0, 2),
                C::num(err, 3),
                C::num(worst, 3),
                C::text(if ok { "yes" } else { "NO" }),
            ]);
        }
        panels.push(Panel {
            title: format!("phase: {}", phase.name),
            y_label: "% of CPU".into(),
            categories: WEIGHTS.iter().map(|w| format!("weight {w}")).collect(),
            series: vec![
                Series::new("target", t.iter().map(|x| x * 100.0).collect()),
                Series::new("measured (median)", med.iter().map(|x| x * 100.0).collect()),
            ],
            log_y: false,
        });
    }
    table.print();
    println!(
        "\nevery queue within ±{TOLERANCE_PP} pp in every round: {}",
        if all_within { "yes" } else { "NO" }
    );
    let csv = table.write_csv("fairness.csv");
    let mut polls = Table::new(
        "Polls per queue (clockworker's stats, all phases; longest = upper bound of the \
         highest log2 bucket, worst round). A poll here lasts at most one slice plus one \
         10 µs step, unless the OS takes the thread away in the middle of it: that time is \
         charged to the queue too",
        &["queue weight", "polls (median)", "longest poll µs"],
    );
    for (k, w) in WEIGHTS.iter().enumerate() {
        let n: Vec<f64> = samples[0].iter().map(|r| r.polls[k] as f64).collect();
        let longest = samples[0]
            .iter()
            .map(|r| r.longest_poll_us[k])
            .fold(0.0f64, f64::max);
        polls.row(vec![
            C::num(f64::from(*w), 0),
            C::num(common::median(&n), 0),
            C::num(longest, 0),
        ]);
    }
    polls.print();
    let svg = common::bar_chart(
        "fairness.svg",
        "fairness: CPU share per queue, weights 1:2:4:8",
        &panels,
    );
    println!("\nwrote {} and {}", csv.display(), svg.display());
}
