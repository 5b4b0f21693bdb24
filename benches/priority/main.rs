//! Foreground latency while background work saturates the core.
//!
//! A generator thread sends foreground requests at 1,000 per second (fixed schedule,
//! fixed seed). A request is 1–3 CPU segments of 100–500 µs (busy-spinning on
//! `Instant`) followed by a 100–500 µs `tokio::time::sleep`. Eight background tasks
//! loop on CPU segments of the same size. Measured per request: queue delay (sent →
//! first poll) and total latency (sent → done); also the background segments (and
//! background CPU time) completed while requests were being sent.
//!
//! Configurations:
//! - `tokio fg only` / `tokio fg+bg`: one `LocalSet` on a current_thread runtime; the
//!   `LocalSet`'s main future receives requests and `spawn_local`s them. Tasks yield
//!   the way tokio users write it: `tokio::task::yield_now()` between segments, never
//!   inside one.
//! - `cw fg only` / `cw fg+bg (run_until)`: clockworker with queues Fg (weight 8) and
//!   Bg (weight 1), `rt.block_on(executor.run_until(dispatcher))`, the dispatcher
//!   spawning onto Fg.
//! - `cw fg+bg (run on LocalSet)`: the same executor, hosted the other way users do:
//!   `executor.run()` spawned onto a `LocalSet` beside a dispatcher task and a 1 ms
//!   housekeeping ticker.
//! - `cw latency fg 8 + bg 1 (run_until)`: as `run_until`, but Fg is a latency queue
//!   (`with_queue_latency(Fg, 8, 200 µs)`): it preempts the running slice when it
//!   becomes runnable, unless it has used more than its share.
//! - `two tokio runtimes`: fg on one thread, bg on another (the two-core answer).
//!
//! Inside clockworker a CPU segment runs in ~50 µs chunks with
//! `clockworker::yield_maybe().await` between them (how CPU-heavy work is written for
//! clockworker): it yields only when the slice is spent or a queue with an earlier
//! deadline (a request) became runnable.
//!
//! Reported: median over interleaved rounds of each percentile, the ratio of p99 total
//! latency to tokio fg-only's p99 from the same run, and background work relative to
//! tokio fg+bg's. Targets (reported, not asserted): clockworker fg+bg p99 total ≤ 1.10 ×
//! tokio fg-only p99, background work ≥ 90% of tokio fg+bg's.
//!
//! `CW_BENCH_QUICK=1` for a quick run; `PRIO_SECONDS`/`PRIO_ROUNDS` override the run
//! length and the number of rounds; `PRIO_DRIVER_YIELD_US`/`PRIO_SCHED_LATENCY_US` set
//! the clockworker executors' `driver_yield`/`sched_latency` (default 250 µs / 2 ms),
//! to test where foreground requests wait. An argument runs only the configurations
//! whose name contains it.

#[path = "../common/mod.rs"]
mod common;
mod runners;
mod workload;

use common::{Cell as C, Panel, Series, Table};
use runners::{
    run_cw_on_localset, run_cw_run_until, run_tokio, run_two_runtimes, CwDiag, RunResult,
};
use workload::{BG_TASKS, REQUESTS_PER_SECOND};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Config {
    TokioFg,
    TokioFgBg,
    CwFg,
    CwFgBgRunUntil,
    CwFgBgRunLocalSet,
    CwLatencyFgBg,
    TwoRuntimes,
}

const CONFIGS: [(Config, &str); 7] = [
    (Config::TokioFg, "tokio fg only"),
    (Config::TokioFgBg, "tokio fg+bg (one LocalSet)"),
    (Config::CwFg, "cw fg only"),
    (Config::CwFgBgRunUntil, "cw fg 8 + bg 1 (run_until)"),
    (
        Config::CwFgBgRunLocalSet,
        "cw fg 8 + bg 1 (run() on LocalSet)",
    ),
    (Config::CwLatencyFgBg, "cw latency fg 8 + bg 1 (run_until)"),
    (Config::TwoRuntimes, "two tokio runtimes, two threads"),
];

/// One run of `config`; a separate function so that a profiler can select it.
#[inline(never)]
fn measured(config: Config, seconds: f64) -> RunResult {
    match config {
        Config::TokioFg => run_tokio(seconds, false),
        Config::TokioFgBg => run_tokio(seconds, true),
        Config::CwFg => run_cw_run_until(seconds, false, false),
        Config::CwFgBgRunUntil => run_cw_run_until(seconds, true, false),
        Config::CwLatencyFgBg => run_cw_run_until(seconds, true, true),
        Config::CwFgBgRunLocalSet => run_cw_on_localset(seconds),
        Config::TwoRuntimes => run_two_runtimes(seconds),
    }
}

/// Per-round summary: queue-delay percentiles, total percentiles, bg work.
struct Summary {
    dispatch: [f64; 4],
    wait: [f64; 4],
    delay: [f64; 4],
    total: [f64; 4],
    bg_segments: f64,
    bg_cpu_ms: f64,
    requests: f64,
    cw: Option<CwDiag>,
}

fn summarize(r: RunResult) -> Summary {
    let mut dispatch: Vec<f64> = r.latencies.iter().map(|l| l.0).collect();
    let mut wait: Vec<f64> = r.latencies.iter().map(|l| l.1 - l.0).collect();
    let mut delay: Vec<f64> = r.latencies.iter().map(|l| l.1).collect();
    let mut total: Vec<f64> = r.latencies.iter().map(|l| l.2).collect();
    Summary {
        dispatch: common::percentiles(&mut dispatch),
        wait: common::percentiles(&mut wait),
        delay: common::percentiles(&mut delay),
        total: common::percentiles(&mut total),
        bg_segments: r.bg_segments as f64,
        bg_cpu_ms: r.bg_cpu.as_secs_f64() * 1e3,
        requests: r.latencies.len() as f64,
        cw: r.cw,
    }
}

fn main() {
    common::keep_heap();
    let quick = common::quick();
    let seconds: f64 = std::env::var("PRIO_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(common::pick(3.0, 0.3));
    let rounds = common::env_usize("PRIO_ROUNDS", common::pick(5, 1)).max(1);
    let only: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let configs: Vec<(Config, &str)> = CONFIGS
        .iter()
        .copied()
        .filter(|(_, name)| match only.as_deref() {
            Some(o) => name.contains(o),
            None => true,
        })
        .collect();
    println!(
        "priority: {REQUESTS_PER_SECOND} fg requests/s for {seconds} s (1-3 x 100-500 us CPU, then \
         100-500 us sleep), {BG_TASKS} bg tasks; median of {rounds} interleaved rounds{}",
        if quick { " (quick mode)" } else { "" }
    );

    let names: Vec<&str> = configs.iter().map(|c| c.1).collect();
    let warm = seconds.min(0.5);
    let samples = common::interleaved(&names, rounds, !quick, |c, round| {
        let s = if round.is_some() { seconds } else { warm };
        summarize(measured(configs[c].0, s))
    });

    let med = |c: usize, f: &dyn Fn(&Summary) -> f64| {
        common::median(&samples[c].iter().map(f).collect::<Vec<_>>())
    };
    let find = |cfg: Config| configs.iter().position(|c| c.0 == cfg);
    let tokio_p99 = find(Config::TokioFg).map(|i| med(i, &|s| s.total[2]));
    let tokio_bg = find(Config::TokioFgBg).map(|i| med(i, &|s| s.bg_cpu_ms));

    let mut table = Table::new(
        "Foreground latency (µs) and background work; medians of interleaved rounds",
        &[
            "configuration",
            "delay p50",
            "delay p90",
            "delay p99",
            "delay p99.9",
            "total p50",
            "total p90",
            "total p99",
            "total p99.9",
            "p99 / tokio fg-only p99",
            "bg segments",
            "bg CPU ms",
            "bg / tokio fg+bg",
            "requests",
        ],
    );
    let mut delay_series = vec![Vec::new(); 4];
    let mut total_series = vec![Vec::new(); 4];
    for (i, &(_, name)) in configs.iter().enumerate() {
        let delay = common::median_each(&samples[i].iter().map(|s| s.delay).collect::<Vec<_>>());
        let total = common::median_each(&samples[i].iter().map(|s| s.total).collect::<Vec<_>>());
        let bg_cpu = med(i, &|s| s.bg_cpu_ms);
        let mut row = vec![C::text(name)];
        row.extend(delay.iter().map(|&v| C::num(v, 0)));
        row.extend(total.iter().map(|&v| C::num(v, 0)));
        row.push(C::num(tokio_p99.map_or(f64::NAN, |t| total[2] / t), 2));
        row.push(C::num(med(i, &|s| s.bg_segments), 0));
        row.push(C::num(bg_cpu, 0));
        row.push(C::num(tokio_bg.map_or(f64::NAN, |t| bg_cpu / t), 2));
        row.push(C::num(med(i, &|s| s.requests), 0));
        table.row(row);
        for p in 0..4 {
            delay_series[p].push(delay[p]);
            total_series[p].push(total[p]);
        }
    }
    table.print();

    let mut split = Table::new(
        "Where the queue delay goes (µs): dispatch = sent → spawned by the dispatcher, \
         run queue = spawned → first poll",
        &[
            "configuration",
            "dispatch p50",
            "dispatch p90",
            "dispatch p99",
            "run queue p50",
            "run queue p90",
            "run queue p99",
        ],
    );
    for (i, &(_, name)) in configs.iter().enumerate() {
        let dispatch =
            common::median_each(&samples[i].iter().map(|s| s.dispatch).collect::<Vec<_>>());
        let wait = common::median_each(&samples[i].iter().map(|s| s.wait).collect::<Vec<_>>());
        let mut row = vec![C::text(name)];
        row.extend(dispatch[..3].iter().map(|&v| C::num(v, 0)));
        row.extend(wait[..3].iter().map(|&v| C::num(v, 0)));
        split.row(row);
    }
    split.print();

    let mut diag = Table::new(
        "clockworker's own statistics (medians over rounds; log2 histograms: upper bucket bounds)",
        &[
            "configuration",
            "Fg queue delay p50 µs",
            "Fg queue delay p99 µs",
            "Fg poll p99 µs",
            "Bg poll p99 µs",
            "max driver gap µs",
            "driver yields",
            "Fg share of CPU",
        ],
    );
    for (i, &(_, name)) in configs.iter().enumerate() {
        let d: Vec<CwDiag> = samples[i].iter().filter_map(|s| s.cw).collect();
        if d.is_empty() {
            continue;
        }
        let m = |f: &dyn Fn(&CwDiag) -> f64| common::median(&d.iter().map(f).collect::<Vec<_>>());
        diag.row(vec![
            C::text(name),
            C::num(m(&|d| d.fg_delay_p50_us), 0),
            C::num(m(&|d| d.fg_delay_p99_us), 0),
            C::num(m(&|d| d.fg_poll_p99_us), 0),
            C::num(m(&|d| d.bg_poll_p99_us), 0),
            C::num(m(&|d| d.max_driver_gap_us), 0),
            C::num(m(&|d| d.driver_yields), 0),
            C::num(m(&|d| d.fg_share), 3),
        ]);
    }
    diag.print();

    let csv = table.write_csv("priority.csv");
    let diag_csv = diag.write_csv("priority_cw_stats.csv");
    let split_csv = split.write_csv("priority_delay_split.csv");
    let cats: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let series = |v: Vec<Vec<f64>>| {
        common::PERCENTILES
            .iter()
            .zip(v)
            .map(|((p, _), vals)| Series::new(*p, vals))
            .collect()
    };
    let svg = common::bar_chart(
        "priority.svg",
        "priority: foreground latency with and without background load (µs, log scale)",
        &[
            Panel {
                title: "total latency, sent → done".into(),
                y_label: "µs".into(),
                categories: cats.clone(),
                series: series(total_series),
                log_y: true,
            },
            Panel {
                title: "queue delay, sent → first poll".into(),
                y_label: "µs".into(),
                categories: cats,
                series: series(delay_series),
                log_y: true,
            },
        ],
    );
    println!(
        "\nwrote {}, {}, {} and {}",
        csv.display(),
        split_csv.display(),
        diag_csv.display(),
        svg.display()
    );
}
