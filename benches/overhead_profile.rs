//! Per-task overhead: 50,000 tasks × 5 yields, spawned in a loop then all joined.
//!
//! Table 1 uses `tokio::task::yield_now()` inside the tasks (what tokio users write):
//! tokio `LocalSet` (baseline) vs clockworker + RunnableFifo and clockworker + LAS on
//! the same runtime.
//! Table 2 uses a runtime-neutral yield (wake self, return `Pending` once), so smol's
//! `LocalExecutor` and glommio can take part: tokio `LocalSet`, smol `LocalExecutor`,
//! glommio's `LocalExecutor` (its own io_uring runtime, the speed anchor; skipped with
//! the reason printed where io_uring or locked memory is unavailable), clockworker on
//! tokio (`run_until`, and `run()` spawned as a `LocalSet` task) and clockworker on smol.
//! glommio runs twice: with `spawn_local`, which polls a task at once inside the spawn
//! when it goes to the running queue (its first poll skips the queue), and with
//! `spawn_local_into` that queue, which queues it as every other row's spawn does
//! (`glommio-queued`; see `benches/overhead.rs`).
//! Both tables also run tokio's leanest setup, `tokio-lean`: a `current_thread` runtime
//! with no driver enabled and `tokio::spawn`, what a tokio user who only spawns gets.
//!
//! Rounds are interleaved after a warm-up and each figure is the median over rounds.
//! Each sample builds its runtime and executor outside the timed part; glibc is told
//! not to trim or mmap so that one configuration's frees do not tax the next one's
//! allocations (see docs/PROFILING.md, "Measuring wall time on a shared machine").
//!
//! Usage: `cargo bench --bench overhead_profile [-- CONFIG]`, CONFIG one of `tokio`,
//! `tokio-lean`, `fifo`, `las`, `tokio-neutral`, `tokio-lean-neutral`, `smol`,
//! `glommio`, `glommio-queued`, `fifo-neutral`, `fifo-run`, `cw-smol`;
//! `OVH_TASKS` (default 50000), `OVH_ITERS` (yields per task, default 5),
//! `OVH_ROUNDS` (default 15). With one configuration named, only it runs (for profilers).

#[path = "common/mod.rs"]
mod common;

use std::rc::Rc;
use std::time::{Duration, Instant};

use clockworker::scheduler::{RunnableFifo, Scheduler, LAS};
use clockworker::{ExecutorBuilder, QueueHandle};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Yield {
    Tokio,
    Neutral,
}

async fn task_body(iters: usize, kind: Yield) {
    for _ in 0..iters {
        match kind {
            Yield::Tokio => tokio::task::yield_now().await,
            Yield::Neutral => common::NeutralYield::new().await,
        }
    }
}

#[derive(Clone, Copy)]
struct Params {
    tasks: usize,
    iters: usize,
}

fn run_tokio(p: Params, kind: Yield) -> Duration {
    let rt = common::tokio_rt();
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let start = Instant::now();
        let handles: Vec<_> = (0..p.tasks)
            .map(|_| tokio::task::spawn_local(task_body(p.iters, kind)))
            .collect();
        for h in handles {
            h.await.expect("task");
        }
        start.elapsed()
    })
}

/// tokio's leanest configuration: a `current_thread` runtime with no I/O or time
/// driver, tasks spawned with `tokio::spawn` (no `LocalSet`).
fn run_tokio_lean(p: Params, kind: Yield) -> Duration {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime");
    rt.block_on(async move {
        let start = Instant::now();
        let handles: Vec<_> = (0..p.tasks)
            .map(|_| tokio::spawn(task_body(p.iters, kind)))
            .collect();
        for h in handles {
            h.await.expect("task");
        }
        start.elapsed()
    })
}

/// glommio, spawning with `spawn_local_into` the running queue when `QUEUED`, with
/// `spawn_local` otherwise (a constant, so each row's loop has one spawn call).
#[cfg(all(target_os = "linux", not(any(loom, miri))))]
fn run_glommio<const QUEUED: bool>(p: Params) -> Duration {
    let executor = common::glommio_executor().expect("probed in main");
    executor.run(async move {
        let queue = glommio::executor().current_task_queue();
        let start = Instant::now();
        let handles: Vec<_> = (0..p.tasks)
            .map(|_| {
                let task = task_body(p.iters, Yield::Neutral);
                if QUEUED {
                    glommio::spawn_local_into(task, queue).expect("the running queue")
                } else {
                    glommio::spawn_local(task)
                }
            })
            .collect();
        for h in handles {
            h.await;
        }
        start.elapsed()
    })
}

#[cfg(not(all(target_os = "linux", not(any(loom, miri)))))]
fn run_glommio<const QUEUED: bool>(_: Params) -> Duration {
    unreachable!("the glommio rows are skipped where glommio cannot start")
}

fn run_cw_tokio(p: Params, kind: Yield) -> Duration {
    run_cw_tokio_with(p, kind, RunnableFifo::new())
}

fn run_cw_tokio_with<S: Scheduler>(p: Params, kind: Yield, scheduler: S) -> Duration {
    let rt = common::tokio_rt();
    let local = tokio::task::LocalSet::new();
    let executor = ExecutorBuilder::new()
        .with_queue_scheduler(0u8, 1, scheduler)
        .build()
        .expect("executor");
    let queue = executor.queue(0).expect("queue");
    let ex = executor.clone();
    local.block_on(&rt, async move {
        ex.run_until(spawn_and_join(&queue, p, kind)).await
    })
}

/// The timed part of every clockworker configuration: spawns `p.tasks` tasks on
/// `queue`, then joins them in order.
async fn spawn_and_join(queue: &QueueHandle<u8>, p: Params, kind: Yield) -> Duration {
    let start = Instant::now();
    let handles: Vec<_> = (0..p.tasks)
        .map(|_| queue.spawn(task_body(p.iters, kind)))
        .collect();
    for h in handles {
        h.await.expect("task");
    }
    start.elapsed()
}

/// clockworker's `run()` spawned as a task of the `LocalSet`, the way a server hosts it
/// beside its other tokio tasks; the spawning and joining happen in another `LocalSet`
/// task, so every join is a wake across the two executors.
fn run_cw_tokio_as_task(p: Params) -> Duration {
    let rt = common::tokio_rt();
    let local = tokio::task::LocalSet::new();
    let (executor, queue) = common::one_queue_executor();
    local.block_on(&rt, async move {
        let runner = executor.clone();
        let run = tokio::task::spawn_local(async move { runner.run().await });
        let elapsed = spawn_and_join(&queue, p, Yield::Neutral).await;
        executor.shutdown();
        run.await.expect("run() ends after shutdown");
        elapsed
    })
}

fn run_smol(p: Params) -> Duration {
    let ex = Rc::new(async_executor::LocalExecutor::new());
    let inner = ex.clone();
    futures_lite::future::block_on(ex.run(async move {
        let start = Instant::now();
        let handles: Vec<_> = (0..p.tasks)
            .map(|_| inner.spawn(task_body(p.iters, Yield::Neutral)))
            .collect();
        for h in handles {
            h.await;
        }
        start.elapsed()
    }))
}

fn run_cw_smol(p: Params) -> Duration {
    let (executor, queue) = common::one_queue_executor();
    futures_lite::future::block_on(executor.run_until(spawn_and_join(&queue, p, Yield::Neutral)))
}

#[derive(Clone, Copy)]
struct Config {
    name: &'static str,
    arg: &'static str,
    run: fn(Params) -> Duration,
}

const TOKIO_YIELD: &[Config] = &[
    Config {
        name: "Tokio baseline",
        arg: "tokio",
        run: |p| run_tokio(p, Yield::Tokio),
    },
    Config {
        name: "tokio, no drivers, tokio::spawn",
        arg: "tokio-lean",
        run: |p| run_tokio_lean(p, Yield::Tokio),
    },
    Config {
        name: "CW+RunnableFifo",
        arg: "fifo",
        run: |p| run_cw_tokio(p, Yield::Tokio),
    },
    Config {
        name: "CW+LAS",
        arg: "las",
        run: |p| run_cw_tokio_with(p, Yield::Tokio, LAS::new()),
    },
];

const NEUTRAL_YIELD: &[Config] = &[
    Config {
        name: "tokio LocalSet",
        arg: "tokio-neutral",
        run: |p| run_tokio(p, Yield::Neutral),
    },
    Config {
        name: "tokio, no drivers, tokio::spawn",
        arg: "tokio-lean-neutral",
        run: |p| run_tokio_lean(p, Yield::Neutral),
    },
    Config {
        name: "smol LocalExecutor",
        arg: "smol",
        run: run_smol,
    },
    Config {
        name: "glommio LocalExecutor (own runtime)",
        arg: "glommio",
        run: run_glommio::<false>,
    },
    Config {
        name: "glommio, queued spawn (spawn_local_into)",
        arg: "glommio-queued",
        run: run_glommio::<true>,
    },
    Config {
        name: "CW on tokio",
        arg: "fifo-neutral",
        run: |p| run_cw_tokio(p, Yield::Neutral),
    },
    Config {
        name: "CW on tokio, run() as a LocalSet task",
        arg: "fifo-run",
        run: run_cw_tokio_as_task,
    },
    Config {
        name: "CW on smol",
        arg: "cw-smol",
        run: run_cw_smol,
    },
];

/// One measured sample; a separate function so profilers can select it.
#[inline(never)]
fn measured(c: &Config, p: Params) -> Duration {
    (c.run)(p)
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

/// Runs `configs` in interleaved rounds; returns each configuration's median.
fn measure(configs: &[Config], p: Params, rounds: usize) -> Vec<Duration> {
    for c in configs {
        (c.run)(p); // warm-up: page in the heap and the code
    }
    let mut samples = vec![Vec::new(); configs.len()];
    for round in 0..rounds {
        // Rotate the starting configuration so none always runs after the same one.
        for i in 0..configs.len() {
            let idx = (i + round) % configs.len();
            samples[idx].push(measured(&configs[idx], p));
        }
    }
    samples.into_iter().map(median).collect()
}

fn ns_per_task(d: Duration, p: Params) -> f64 {
    d.as_nanos() as f64 / p.tasks as f64
}

fn print_table(title: &str, configs: &[Config], medians: &[Duration], p: Params) {
    println!("\n{title}");
    println!("| configuration | median | ns/task | ratio to tokio |");
    println!("|---|---:|---:|---:|");
    let base = medians[0].as_secs_f64();
    for (c, m) in configs.iter().zip(medians) {
        println!(
            "| {} | {:.2} ms | {:.0} | {:.3} |",
            c.name,
            m.as_secs_f64() * 1e3,
            ns_per_task(*m, p),
            m.as_secs_f64() / base
        );
    }
}

fn main() {
    common::keep_heap();
    let p = Params {
        tasks: common::env_usize("OVH_TASKS", 50_000),
        iters: common::env_usize("OVH_ITERS", 5),
    };
    let rounds = common::env_usize("OVH_ROUNDS", 15).max(1);
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();

    // Probed only when glommio runs: starting it sets up io_uring and locked memory,
    // which would otherwise change the process the other configurations run in.
    let glommio = match only.first() {
        Some(arg) if !arg.starts_with("glommio") => Err("not asked for".to_string()),
        _ => common::glommio_executor().map(drop),
    };
    if let Some(arg) = only.first() {
        let all = TOKIO_YIELD.iter().chain(NEUTRAL_YIELD);
        let Some(c) = all.into_iter().find(|c| c.arg == arg) else {
            eprintln!(
                "unknown configuration {arg:?}; use tokio, tokio-lean, fifo, las, tokio-neutral, \
                 tokio-lean-neutral, smol, glommio, glommio-queued, fifo-neutral, fifo-run or cw-smol"
            );
            std::process::exit(2);
        };
        if let (Err(reason), true) = (&glommio, c.arg.starts_with("glommio")) {
            println!("SKIPPED {}: {reason}", c.arg);
            return;
        }
        // Warm up (page in the heap, calibrate clocks) outside `measured`, so that
        // `valgrind --tool=callgrind --toggle-collect='*measured*'` counts only the
        // measured samples.
        (c.run)(p);
        let mut samples: Vec<Duration> = (0..rounds).map(|_| measured(c, p)).collect();
        samples.sort();
        let m = samples[samples.len() / 2];
        println!(
            "{}: {:.2} ms ({:.0} ns/task)",
            c.name,
            m.as_secs_f64() * 1e3,
            ns_per_task(m, p)
        );
        return;
    }

    println!(
        "overhead_profile: {} tasks x {} yields, median of {} interleaved rounds",
        p.tasks, p.iters, rounds
    );
    let m = measure(TOKIO_YIELD, p, rounds);
    let of = |arg: &str| {
        m[TOKIO_YIELD
            .iter()
            .position(|c| c.arg == arg)
            .expect("a configuration")]
    };
    let base = of("tokio");
    println!();
    println!("Tokio baseline:          {:.2}ms", base.as_secs_f64() * 1e3);
    for (label, median) in [("CW+RunnableFifo:", of("fifo")), ("CW+LAS:", of("las"))] {
        println!(
            "{label:<25}{:.2}ms ({:+.1}%)",
            median.as_secs_f64() * 1e3,
            (median.as_secs_f64() / base.as_secs_f64() - 1.0) * 100.0
        );
    }
    println!(
        "LAS / FIFO:              {:.2}",
        of("las").as_secs_f64() / of("fifo").as_secs_f64()
    );
    println!();
    println!("Per-Task Overhead (vs tokio; negative = cheaper):");
    for (label, median) in [("RunnableFifo:", of("fifo")), ("LAS:", of("las"))] {
        println!(
            "{label:<14}{:.0}ns/task",
            ns_per_task(median, p) - ns_per_task(base, p)
        );
    }
    print_table("With tokio::task::yield_now()", TOKIO_YIELD, &m, p);
    let neutral: Vec<Config> = NEUTRAL_YIELD
        .iter()
        .filter(|c| !c.arg.starts_with("glommio") || glommio.is_ok())
        .copied()
        .collect();
    if let Err(reason) = &glommio {
        println!("\nSKIPPED glommio rows: {reason}");
    }
    let m = measure(&neutral, p, rounds);
    print_table("With a runtime-neutral yield", &neutral, &m, p);
    if glommio.is_ok() {
        let of = |arg: &str| {
            m[neutral
                .iter()
                .position(|c| c.arg == arg)
                .expect("a configuration")]
        };
        // Against each glommio row: its own spawn (which polls the task at once), then
        // its queued spawn.
        let anchors = [
            ("\nclockworker / glommio", "glommio"),
            ("clockworker / glommio with queued spawns", "glommio-queued"),
        ];
        for (lead, anchor) in anchors {
            let ratio = |arg: &str| of(arg).as_secs_f64() / of(anchor).as_secs_f64();
            println!(
                "{lead}, same rounds: on tokio {:.2} (run() as a task {:.2}), on smol {:.2}",
                ratio("fifo-neutral"),
                ratio("fifo-run"),
                ratio("cw-smol")
            );
        }
    }
}
