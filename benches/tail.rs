//! Thin tasks behind fat ones: least attained service (LAS) against FIFO.
//!
//! A generator thread sends tasks with Poisson arrivals (fixed seed) at a rate that
//! loads the core to ~70%: 99% thin tasks (one CPU segment of 50–100 µs) and 1% fat
//! tasks (20 segments of 500 µs with a yield between, 10 ms of CPU in all). A
//! dispatcher on the executor thread spawns each on arrival; each fat task gets its own
//! group (`queue.group(id)`), each thin task is its own group. Latency is sent → done.
//!
//! Configurations, all on a tokio current_thread runtime:
//! - `tokio LocalSet`: `spawn_local`, `tokio::task::yield_now()` between fat segments;
//! - `CW+RunnableFifo` and `CW+LAS`: one clockworker queue with that scheduler,
//!   `rt.block_on(executor.run_until(dispatcher))`, `clockworker::yield_now()` between
//!   fat segments;
//! - `CW+LAS, no starvation guard`: `LAS::new().with_starvation_guard(0)`, to show what
//!   the guard (one pop in 16 serves the oldest waiting task) costs thin tasks;
//! - `CW+LAS, dispatcher in queue` and `CW+LAS cumulative, dispatcher in queue`: the
//!   dispatcher is itself a task of the LAS queue, as a server would run its accept
//!   loop, `run_until` drives only its handle. `LAS::new()` counts the dispatcher's
//!   service per burst (each message starts one); `LAS::cumulative()`, the classic
//!   rule, over its whole life, so it sinks behind the fat tasks.
//!
//! Reported: thin and fat latency p50/p90/p99/p99.9 (median over interleaved rounds),
//! thin p99 relative to CW+RunnableFifo's and to tokio's, fat p99 relative to FIFO's,
//! and whether every task completed; then, for the dispatcher in the queue, its thin
//! p99 against the dispatcher-outside run of the same rule. Targets (reported, not
//! asserted): with the dispatcher in the LAS queue, thin p99 ≤ 0.12 × tokio's and
//! ≤ 1.2 × the dispatcher-outside figure, fat p99 ≤ 2 × FIFO's.
//!
//! `CW_BENCH_QUICK=1` for a quick run; `TAIL_FAT_PERCENT` (default 1; 2 before
//! 2026-12-07) sets the share of fat tasks, `TAIL_GUARD` the LAS starvation guard of
//! every LAS configuration but the guard-less one; `TAIL_SECONDS`, `TAIL_ROUNDS`, `TAIL_LOAD`
//! override the run length, the rounds and the load.

#[path = "common/mod.rs"]
mod common;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use clockworker::scheduler::{RunnableFifo, Scheduler, DEFAULT_GUARD_EVERY, LAS};
use clockworker::ExecutorBuilder;
use common::{Cell as C, Panel, Rng, Series, Table};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

const SEED: u64 = 0x7A11_0003;
const FAT_SEGMENTS: u32 = 20;
const FAT_SEGMENT: Duration = Duration::from_micros(500);
const THIN_MIN_US: u64 = 50;
const THIN_MAX_US: u64 = 100;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Config {
    Tokio,
    CwFifo,
    CwLas,
    CwLasNoGuard,
    CwLasInside,
    CwLasCumulativeInside,
}

const CONFIGS: [(Config, &str); 6] = [
    (Config::Tokio, "tokio LocalSet"),
    (Config::CwFifo, "CW+RunnableFifo"),
    (Config::CwLas, "CW+LAS"),
    (Config::CwLasNoGuard, "CW+LAS, no starvation guard"),
    (Config::CwLasInside, "CW+LAS, dispatcher in queue"),
    (
        Config::CwLasCumulativeInside,
        "CW+LAS cumulative, dispatcher in queue",
    ),
];

/// Where the dispatcher runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Dispatcher {
    /// The future `run_until` drives: outside every queue.
    Outside,
    /// A task of the queue.
    InQueue,
}

#[derive(Clone, Copy)]
enum Kind {
    /// One CPU segment of this length.
    Thin(Duration),
    /// `FAT_SEGMENTS` segments of `FAT_SEGMENT`; the id names its group.
    Fat(u64),
}

struct Job {
    sent: Instant,
    kind: Kind,
}

/// Share of fat tasks: `TAIL_FAT_PERCENT` (default 1, the workload of issue #15;
/// the bench ran with 2 before 2026-12-07).
fn fat_fraction() -> f64 {
    env_f64("TAIL_FAT_PERCENT", 1.0) / 100.0
}

/// The starvation guard of the LAS configurations that have one: `TAIL_GUARD`
/// (default `DEFAULT_GUARD_EVERY`), to compare guards in one command.
fn guard() -> u32 {
    env_f64("TAIL_GUARD", f64::from(DEFAULT_GUARD_EVERY)) as u32
}

fn env_f64(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Mean CPU per task, in µs.
fn mean_work_us() -> f64 {
    let thin = (THIN_MIN_US + THIN_MAX_US) as f64 / 2.0;
    let fat = FAT_SEGMENTS as f64 * FAT_SEGMENT.as_secs_f64() * 1e6;
    (1.0 - fat_fraction()) * thin + fat_fraction() * fat
}

/// Send offsets and kinds of one run, drawn from the fixed seed.
fn plan(seconds: f64, load: f64) -> Vec<(Duration, Kind)> {
    let mut rng = Rng::new(SEED);
    let mean_gap_us = mean_work_us() / load;
    let mut at = 0.0;
    let mut out = Vec::new();
    let mut fat_id = 0;
    let fat_fraction = fat_fraction();
    while at < seconds * 1e6 {
        let kind = if rng.unit() < fat_fraction {
            fat_id += 1;
            Kind::Fat(fat_id)
        } else {
            Kind::Thin(rng.micros(THIN_MIN_US, THIN_MAX_US))
        };
        out.push((Duration::from_nanos((at * 1e3) as u64), kind));
        at += rng.exponential(mean_gap_us);
    }
    out
}

fn generator(seconds: f64, load: f64) -> (UnboundedReceiver<Job>, std::thread::JoinHandle<()>) {
    let (tx, rx) = unbounded_channel();
    let plan = plan(seconds, load);
    let thread = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(5));
        let start = Instant::now();
        for (at, kind) in plan {
            common::sleep_until(start + at);
            if tx
                .send(Job {
                    sent: Instant::now(),
                    kind,
                })
                .is_err()
            {
                return;
            }
        }
    });
    (rx, thread)
}

/// Latencies of one run in µs: (thin, fat), and how many tasks were sent.
#[derive(Default)]
struct RunResult {
    thin: Vec<f64>,
    fat: Vec<f64>,
    sent_thin: usize,
    sent_fat: usize,
}

type Results = Rc<RefCell<RunResult>>;

fn done(results: &Results, sent: Instant, fat: bool) {
    let us = common::micros(sent.elapsed());
    let mut r = results.borrow_mut();
    if fat {
        r.fat.push(us);
    } else {
        r.thin.push(us);
    }
}

fn count_sent(results: &Results, kind: Kind) {
    let mut r = results.borrow_mut();
    match kind {
        Kind::Thin(_) => r.sent_thin += 1,
        Kind::Fat(_) => r.sent_fat += 1,
    }
}

fn run_tokio(seconds: f64, load: f64) -> RunResult {
    let rt = common::tokio_rt();
    let local = tokio::task::LocalSet::new();
    let results: Results = Rc::default();
    let (mut rx, gen) = generator(seconds, load);
    let r = results.clone();
    local.block_on(&rt, async move {
        let mut handles = Vec::new();
        while let Some(job) = rx.recv().await {
            count_sent(&r, job.kind);
            let r = r.clone();
            handles.push(tokio::task::spawn_local(async move {
                match job.kind {
                    Kind::Thin(d) => {
                        common::spin(d);
                        done(&r, job.sent, false);
                    }
                    Kind::Fat(_) => {
                        for i in 0..FAT_SEGMENTS {
                            if i > 0 {
                                tokio::task::yield_now().await;
                            }
                            common::spin(FAT_SEGMENT);
                        }
                        done(&r, job.sent, true);
                    }
                }
            }));
        }
        for h in handles {
            h.await.expect("task");
        }
    });
    gen.join().expect("generator");
    Rc::try_unwrap(results).ok().expect("results").into_inner()
}

fn run_cw<S: Scheduler>(seconds: f64, load: f64, scheduler: S, at: Dispatcher) -> RunResult {
    let rt = common::tokio_rt();
    let executor = ExecutorBuilder::new()
        .with_queue_scheduler(0u8, 1, scheduler)
        .build()
        .expect("executor");
    let queue = executor.queue(0).expect("queue");
    let results: Results = Rc::default();
    let (mut rx, gen) = generator(seconds, load);
    let r = results.clone();
    let spawner = queue.clone();
    let dispatcher = async move {
        let queue = spawner;
        let mut handles = Vec::new();
        while let Some(job) = rx.recv().await {
            count_sent(&r, job.kind);
            let r = r.clone();
            let handle = match job.kind {
                Kind::Thin(d) => queue.spawn(async move {
                    common::spin(d);
                    done(&r, job.sent, false);
                }),
                Kind::Fat(id) => queue.group(id).spawn(async move {
                    for i in 0..FAT_SEGMENTS {
                        if i > 0 {
                            clockworker::yield_now().await;
                        }
                        common::spin(FAT_SEGMENT);
                    }
                    done(&r, job.sent, true);
                }),
            };
            handles.push(handle);
        }
        for h in handles {
            h.await.expect("task");
        }
    };
    match at {
        Dispatcher::Outside => rt.block_on(executor.run_until(dispatcher)),
        Dispatcher::InQueue => {
            let task = queue.spawn(dispatcher);
            rt.block_on(executor.run_until(task))
                .expect("dispatcher task");
        }
    }
    gen.join().expect("generator");
    Rc::try_unwrap(results).ok().expect("results").into_inner()
}

/// `LAS::new()` with the guard of this run (see `guard`).
fn las() -> LAS {
    LAS::new().with_starvation_guard(guard())
}

/// One run of `config`; a separate function so that a profiler can select it.
#[inline(never)]
fn measured(config: Config, seconds: f64, load: f64) -> RunResult {
    match config {
        Config::Tokio => run_tokio(seconds, load),
        Config::CwFifo => run_cw(seconds, load, RunnableFifo::new(), Dispatcher::Outside),
        Config::CwLas => run_cw(seconds, load, las(), Dispatcher::Outside),
        Config::CwLasNoGuard => run_cw(
            seconds,
            load,
            LAS::new().with_starvation_guard(0),
            Dispatcher::Outside,
        ),
        Config::CwLasInside => run_cw(seconds, load, las(), Dispatcher::InQueue),
        Config::CwLasCumulativeInside => run_cw(
            seconds,
            load,
            LAS::cumulative().with_starvation_guard(guard()),
            Dispatcher::InQueue,
        ),
    }
}

struct Summary {
    thin: [f64; 4],
    fat: [f64; 4],
    all_done: bool,
    thin_count: f64,
    fat_count: f64,
}

fn main() {
    common::keep_heap();
    let quick = common::quick();
    let seconds: f64 = std::env::var("TAIL_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(common::pick(4.0, 0.4));
    let load = env_f64("TAIL_LOAD", 0.7);
    let rounds = common::env_usize("TAIL_ROUNDS", common::pick(5, 1)).max(1);
    let rate = load / mean_work_us() * 1e6;
    println!(
        "tail: {:.0} tasks/s for {seconds} s ({:.0}% thin of {THIN_MIN_US}-{THIN_MAX_US} us, {:.0}% fat of \
         {FAT_SEGMENTS} x {} us; load {:.0}%; LAS guard every {} pops); median of {rounds} \
         interleaved rounds{}",
        rate,
        (1.0 - fat_fraction()) * 100.0,
        fat_fraction() * 100.0,
        FAT_SEGMENT.as_micros(),
        load * 100.0,
        guard(),
        if quick { " (quick mode)" } else { "" }
    );
    let names: Vec<&str> = CONFIGS.iter().map(|c| c.1).collect();
    let warm = seconds.min(0.5);
    let samples = common::interleaved(&names, rounds, !quick, |c, round| {
        let s = if round.is_some() { seconds } else { warm };
        let mut r = measured(CONFIGS[c].0, s, load);
        Summary {
            all_done: r.thin.len() == r.sent_thin && r.fat.len() == r.sent_fat,
            thin_count: r.thin.len() as f64,
            fat_count: r.fat.len() as f64,
            thin: common::percentiles(&mut r.thin),
            fat: common::percentiles(&mut r.fat),
        }
    });
    let thin: Vec<[f64; 4]> = samples
        .iter()
        .map(|s| common::median_each(&s.iter().map(|x| x.thin).collect::<Vec<_>>()))
        .collect();
    let fat: Vec<[f64; 4]> = samples
        .iter()
        .map(|s| common::median_each(&s.iter().map(|x| x.fat).collect::<Vec<_>>()))
        .collect();
    let (tokio, fifo) = (0, 1);

    let mut table = Table::new(
        "Latency sent → done (µs), medians of interleaved rounds",
        &[
            "configuration",
            "thin p50",
            "thin p90",
            "thin p99",
            "thin p99.9",
            "fat p50",
            "fat p90",
            "fat p99",
            "fat p99.9",
            "thin p99 / FIFO",
            "thin p99 / tokio",
            "fat p99 / FIFO",
            "thin done",
            "fat done",
            "all completed",
        ],
    );
    for (i, &(_, name)) in CONFIGS.iter().enumerate() {
        let mut row = vec![C::text(name)];
        row.extend(thin[i].iter().map(|&v| C::num(v, 0)));
        row.extend(fat[i].iter().map(|&v| C::num(v, 0)));
        row.push(C::num(thin[i][2] / thin[fifo][2], 3));
        row.push(C::num(thin[i][2] / thin[tokio][2], 3));
        row.push(C::num(fat[i][2] / fat[fifo][2], 2));
        let med = |f: &dyn Fn(&Summary) -> f64| {
            common::median(&samples[i].iter().map(f).collect::<Vec<_>>())
        };
        row.push(C::num(med(&|s| s.thin_count), 0));
        row.push(C::num(med(&|s| s.fat_count), 0));
        row.push(C::text(if samples[i].iter().all(|s| s.all_done) {
            "yes"
        } else {
            "NO"
        }));
        table.row(row);
    }
    table.print();
    let (outside, inside, cumulative) = (2, 4, 5);
    println!(
        "\ndispatcher in the LAS queue: thin p99 {:.0} µs = {:.3} x tokio's, {:.2} x the \
         dispatcher-outside run (LAS::new); fat p99 {:.2} x FIFO's. Cumulative rule: thin \
         p99 {:.3} x tokio's.",
        thin[inside][2],
        thin[inside][2] / thin[tokio][2],
        thin[inside][2] / thin[outside][2],
        fat[inside][2] / fat[fifo][2],
        thin[cumulative][2] / thin[tokio][2],
    );
    let csv = table.write_csv("tail.csv");
    let cats: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let series = |v: &[[f64; 4]]| -> Vec<Series> {
        common::PERCENTILES
            .iter()
            .enumerate()
            .map(|(p, (name, _))| Series::new(*name, v.iter().map(|x| x[p]).collect()))
            .collect()
    };
    let svg = common::bar_chart(
        "tail.svg",
        "tail: thin and fat task latency, LAS vs FIFO (µs, log scale)",
        &[
            Panel {
                title: "thin tasks (one 50–100 µs segment)".into(),
                y_label: "µs".into(),
                categories: cats.clone(),
                series: series(&thin),
                log_y: true,
            },
            Panel {
                title: "fat tasks (20 × 500 µs segments)".into(),
                y_label: "µs".into(),
                categories: cats,
                series: series(&fat),
                log_y: true,
            },
        ],
    );
    println!("\nwrote {} and {}", csv.display(), svg.display());
}
