//! How punctually the run loop gives the thread back to tokio when its tasks' polls are
//! short: the rule that lets polls of short tasks end without a clock read
//! (`src/core/unread_polls.rs`) must not make the driver yield, and so tokio's timers
//! and I/O, late.
//!
//! Workloads, each 16 tasks on one queue of an executor whose `run()` is a task of a
//! tokio `LocalSet` (default settings), beside a tokio task that sleeps 300 µs in a
//! loop and records how late each sleep ends:
//! - `tiny`: every poll only yields (~30 ns), so runs of unread polls grow to their
//!   longest (up to 88 polls);
//! - `short`: every poll spins 200 ns, then yields;
//! - `alternating`: polls alternate 200 ns and 20 µs, so a task's long poll comes
//!   after a short measured one (the case where unread polls could hide long ones);
//! - `long`: every poll spins 20 µs.
//!
//! Printed per workload (medians of interleaved rounds): driver yields per second, the
//! longest stretch the loop kept the thread (`ExecutorStats::max_driver_gap`, worst
//! round), and the sleeps' lateness (p50, p99, max). tokio's timer wheel rounds a
//! deadline up to the next millisecond, so a sleep is ~0.7 ms late even on an idle
//! thread; compare workloads and builds, not against zero.
//!
//! `cargo bench --bench driver_gap`; `CW_BENCH_QUICK=1` for a quick run;
//! `GAP_ROUNDS` and `GAP_SLEEPS` override the rounds and the sleeps per sample.

#[path = "common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use clockworker::yield_now;
use common::{Cell, Table};

const TASKS: usize = 16;
const SHORT: Duration = Duration::from_nanos(200);
const LONG: Duration = Duration::from_micros(20);
const SLEEP: Duration = Duration::from_micros(300);

#[derive(Clone, Copy)]
enum Workload {
    Tiny,
    Short,
    Alternating,
    Long,
}

impl Workload {
    const ALL: [Workload; 4] = [
        Workload::Tiny,
        Workload::Short,
        Workload::Alternating,
        Workload::Long,
    ];

    fn name(self) -> &'static str {
        match self {
            Workload::Tiny => "tiny (yield only)",
            Workload::Short => "short (200 ns polls)",
            Workload::Alternating => "alternating (200 ns, 20 µs)",
            Workload::Long => "long (20 µs polls)",
        }
    }

    /// How long poll `i` of a task spins (zero: it does not spin at all).
    fn poll_length(self, i: u64) -> Duration {
        match self {
            Workload::Tiny => Duration::ZERO,
            Workload::Short => SHORT,
            Workload::Alternating if i % 2 == 0 => SHORT,
            Workload::Alternating | Workload::Long => LONG,
        }
    }
}

/// One sample's figures.
struct Sample {
    yields_per_s: f64,
    longest_turn_us: f64,
    /// p50, p99 and max lateness of the sleeps, µs.
    lateness_us: [f64; 3],
}

fn sample(workload: Workload, sleeps: usize) -> Sample {
    let runtime = common::tokio_rt();
    let (executor, queue) = common::one_queue_executor();
    for _ in 0..TASKS {
        queue.spawn(async move {
            let mut i = 0;
            loop {
                let length = workload.poll_length(i);
                if !length.is_zero() {
                    common::spin(length);
                }
                yield_now().await;
                i += 1;
            }
        });
    }
    let local = tokio::task::LocalSet::new();
    let (mut lateness, elapsed) = local.block_on(&runtime, async {
        let runner = executor.clone();
        tokio::task::spawn_local(async move { runner.run().await });
        let start = Instant::now();
        let mut lateness = Vec::with_capacity(sleeps);
        for _ in 0..sleeps {
            let asleep = Instant::now();
            tokio::time::sleep(SLEEP).await;
            lateness.push(common::micros(asleep.elapsed().saturating_sub(SLEEP)));
        }
        (lateness, start.elapsed())
    });
    let stats = executor.stats();
    executor.shutdown();
    lateness.sort_by(f64::total_cmp);
    Sample {
        yields_per_s: stats.driver_yields as f64 / elapsed.as_secs_f64(),
        longest_turn_us: common::micros(stats.max_driver_gap),
        lateness_us: [
            common::percentile_sorted(&lateness, 0.50),
            common::percentile_sorted(&lateness, 0.99),
            *lateness.last().expect("at least one sleep"),
        ],
    }
}

fn main() {
    let rounds = common::env_usize("GAP_ROUNDS", common::pick(5, 1));
    let sleeps = common::env_usize("GAP_SLEEPS", common::pick(400, 20));
    println!(
        "driver_gap: {TASKS} tasks, {rounds} interleaved rounds of {sleeps} sleeps of \
         {SLEEP:?} each; medians over rounds"
    );
    let names: Vec<&str> = Workload::ALL.iter().map(|w| w.name()).collect();
    let samples = common::interleaved(&names, rounds, true, |c, _| {
        sample(Workload::ALL[c], sleeps)
    });
    let mut table = Table::new(
        "Returns to tokio and timer lateness (µs)",
        &[
            "workload",
            "driver yields / s",
            "longest turn (worst round)",
            "sleep late p50",
            "sleep late p99",
            "sleep late max",
        ],
    );
    for (workload, samples) in Workload::ALL.iter().zip(&samples) {
        let yields: Vec<f64> = samples.iter().map(|s| s.yields_per_s).collect();
        let late: Vec<[f64; 3]> = samples.iter().map(|s| s.lateness_us).collect();
        let late = common::median_each(&late);
        let longest = samples
            .iter()
            .map(|s| s.longest_turn_us)
            .fold(0.0, f64::max);
        table.row(vec![
            Cell::text(workload.name()),
            Cell::num(common::median(&yields), 0),
            Cell::num(longest, 1),
            Cell::num(late[0], 1),
            Cell::num(late[1], 1),
            Cell::num(late[2], 1),
        ]);
    }
    table.print();
    let csv = table.write_csv("driver_gap.csv");
    println!("\nwrote {}", csv.display());
}
