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

#[path = "common/mod.rs"]
mod common;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clockworker::{yield_maybe, Executor, ExecutorBuilder, QueueHandle};
use common::{Cell as C, Panel, Rng, Series, Table};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

const REQUESTS_PER_SECOND: u64 = 1_000;
const BG_TASKS: usize = 8;
/// CPU between two `yield_maybe()` calls inside clockworker.
const CHUNK: Duration = Duration::from_micros(50);
const SEED: u64 = 0x5EED_0001;
/// Slice bound of the foreground latency queue in `cw latency fg 8 + bg 1`.
const LATENCY_BOUND: Duration = Duration::from_micros(200);

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Q {
    Fg,
    Bg,
}

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

/// One foreground request, as the generator sends it.
struct Request {
    sent: Instant,
    /// Set by the dispatcher when it spawns the request.
    dispatched: Instant,
    segments: Vec<Duration>,
    sleep: Duration,
}

/// The requests of one run: send offsets and shapes, drawn from the fixed seed.
fn schedule(seconds: f64) -> Vec<(Duration, Vec<Duration>, Duration)> {
    let mut rng = Rng::new(SEED);
    let count = (seconds * REQUESTS_PER_SECOND as f64) as u64;
    (0..count)
        .map(|i| {
            let at = Duration::from_nanos(i * 1_000_000_000 / REQUESTS_PER_SECOND);
            let n = rng.between(1, 3);
            let segments = (0..n).map(|_| rng.micros(100, 500)).collect();
            (at, segments, rng.micros(100, 500))
        })
        .collect()
}

/// Starts the generator thread; returns the receiving end.
fn generator(seconds: f64) -> (UnboundedReceiver<Request>, std::thread::JoinHandle<()>) {
    let (tx, rx) = unbounded_channel();
    let plan = schedule(seconds);
    let thread = std::thread::spawn(move || {
        // Let the receiving side set up before the first request.
        std::thread::sleep(Duration::from_millis(5));
        let start = Instant::now();
        for (at, segments, sleep) in plan {
            common::sleep_until(start + at);
            let now = Instant::now();
            let req = Request {
                sent: now,
                dispatched: now,
                segments,
                sleep,
            };
            if tx.send(req).is_err() {
                return;
            }
        }
    });
    (rx, thread)
}

/// What one run measured.
#[derive(Default)]
struct RunResult {
    /// Per request, in µs: (dispatch delay (sent → spawned by the dispatcher), queue
    /// delay (sent → first poll), total latency (sent → done)).
    latencies: Vec<(f64, f64, f64)>,
    bg_segments: u64,
    bg_cpu: Duration,
    /// clockworker only.
    cw: Option<CwDiag>,
}

/// What clockworker's own statistics said about a run.
#[derive(Clone, Copy, Default)]
struct CwDiag {
    fg_delay_p50_us: f64,
    fg_delay_p99_us: f64,
    fg_poll_p99_us: f64,
    bg_poll_p99_us: f64,
    max_driver_gap_us: f64,
    driver_yields: f64,
    fg_share: f64,
}

type Latencies = Rc<RefCell<Vec<(f64, f64, f64)>>>;

fn record(lat: &Latencies, req: &Request, first_poll: Instant) {
    let done = Instant::now();
    lat.borrow_mut().push((
        common::micros(req.dispatched - req.sent),
        common::micros(first_poll - req.sent),
        common::micros(done - req.sent),
    ));
}

/// Background counters, shared with the tasks (and across threads for two runtimes).
#[derive(Default)]
struct BgCount {
    segments: AtomicU64,
    cpu_ns: AtomicU64,
    stop: AtomicBool,
}

impl BgCount {
    fn add(&self, seg: Duration) {
        self.segments.fetch_add(1, Ordering::Relaxed);
        self.cpu_ns
            .fetch_add(seg.as_nanos() as u64, Ordering::Relaxed);
    }

    fn snapshot(&self) -> (u64, Duration) {
        (
            self.segments.load(Ordering::Relaxed),
            Duration::from_nanos(self.cpu_ns.load(Ordering::Relaxed)),
        )
    }
}

// ----- tokio tasks -------------------------------------------------------------------

async fn tokio_request(req: Request, lat: Latencies) {
    let first = Instant::now();
    for (i, seg) in req.segments.iter().enumerate() {
        if i > 0 {
            tokio::task::yield_now().await;
        }
        common::spin(*seg);
    }
    tokio::time::sleep(req.sleep).await;
    record(&lat, &req, first);
}

async fn tokio_bg(index: usize, count: Arc<BgCount>) {
    let mut rng = Rng::new(SEED ^ ((index as u64 + 1) * 0x1000));
    while !count.stop.load(Ordering::Relaxed) {
        let seg = rng.micros(100, 500);
        common::spin(seg);
        count.add(seg);
        tokio::task::yield_now().await;
    }
}

// ----- clockworker tasks -------------------------------------------------------------

/// `d` of CPU in `CHUNK`s, with `yield_maybe()` after each: the time counted is CPU
/// done, not wall time, so a segment interrupted by a yield is still `d` of work.
async fn cw_cpu(d: Duration) {
    let mut left = d;
    while !left.is_zero() {
        let chunk = left.min(CHUNK);
        common::spin(chunk);
        left -= chunk;
        yield_maybe().await;
    }
}

async fn cw_request(req: Request, lat: Latencies) {
    let first = Instant::now();
    for seg in &req.segments {
        cw_cpu(*seg).await;
    }
    tokio::time::sleep(req.sleep).await;
    record(&lat, &req, first);
}

async fn cw_bg(index: usize, count: Arc<BgCount>) {
    let mut rng = Rng::new(SEED ^ ((index as u64 + 1) * 0x1000));
    while !count.stop.load(Ordering::Relaxed) {
        let seg = rng.micros(100, 500);
        cw_cpu(seg).await;
        count.add(seg);
    }
}

/// The executor of every clockworker configuration: Fg weight 8 (a latency queue with
/// a `LATENCY_BOUND` slice when `latency_queue`), Bg weight 1, default slices;
/// `PRIO_DRIVER_YIELD_US` and `PRIO_SCHED_LATENCY_US` override `driver_yield` and
/// `sched_latency` (for investigations).
fn cw_executor(latency_queue: bool) -> Rc<Executor<Q>> {
    let builder = ExecutorBuilder::new();
    let builder = if latency_queue {
        builder.with_queue_latency(Q::Fg, 8, LATENCY_BOUND)
    } else {
        builder.with_queue(Q::Fg, 8)
    };
    let mut builder = builder.with_queue(Q::Bg, 1);
    if let Some(us) = std::env::var("PRIO_DRIVER_YIELD_US")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        builder = builder.with_driver_yield(Duration::from_micros(us));
    }
    if let Some(us) = std::env::var("PRIO_SCHED_LATENCY_US")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        builder = builder.with_sched_latency(Duration::from_micros(us));
    }
    builder.build().expect("executor")
}

/// The result of a clockworker run: the latencies, the background work done, and the
/// executor's own statistics.
fn cw_result(lat: &Latencies, bg_done: (u64, Duration), executor: &Executor<Q>) -> RunResult {
    RunResult {
        latencies: lat.take(),
        bg_segments: bg_done.0,
        bg_cpu: bg_done.1,
        cw: Some(cw_diag(executor)),
    }
}

fn cw_diag(executor: &Executor<Q>) -> CwDiag {
    let fg = executor.queue_stats(Q::Fg).expect("fg stats");
    let bg = executor.queue_stats(Q::Bg).expect("bg stats");
    let s = executor.stats();
    let us = |d: Option<Duration>| d.map_or(f64::NAN, common::micros);
    let total = (fg.service_time + bg.service_time).as_secs_f64();
    CwDiag {
        fg_delay_p50_us: us(fg.queue_delay.quantile(0.5)),
        fg_delay_p99_us: us(fg.queue_delay.quantile(0.99)),
        fg_poll_p99_us: us(fg.poll_time.quantile(0.99)),
        bg_poll_p99_us: us(bg.poll_time.quantile(0.99)),
        max_driver_gap_us: common::micros(s.max_driver_gap),
        driver_yields: s.driver_yields as f64,
        fg_share: if total > 0.0 {
            fg.service_time.as_secs_f64() / total
        } else {
            f64::NAN
        },
    }
}

// ----- the runs ----------------------------------------------------------------------

fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// tokio: the LocalSet's main future dispatches; with `bg`, eight background tasks
/// share the LocalSet.
fn run_tokio(seconds: f64, bg: bool) -> RunResult {
    let rt = tokio_rt();
    let local = tokio::task::LocalSet::new();
    let lat: Latencies = Rc::default();
    let count = Arc::new(BgCount::default());
    let (mut rx, gen) = generator(seconds);
    let l = lat.clone();
    let c = count.clone();
    let bg_done = local.block_on(&rt, async move {
        let bg_tasks: Vec<_> = if bg {
            (0..BG_TASKS)
                .map(|i| tokio::task::spawn_local(tokio_bg(i, c.clone())))
                .collect()
        } else {
            Vec::new()
        };
        let mut fg = Vec::new();
        while let Some(mut req) = rx.recv().await {
            req.dispatched = Instant::now();
            fg.push(tokio::task::spawn_local(tokio_request(req, l.clone())));
        }
        let bg_done = c.snapshot();
        c.stop.store(true, Ordering::Relaxed);
        for h in fg.into_iter().chain(bg_tasks) {
            h.await.expect("task");
        }
        bg_done
    });
    gen.join().expect("generator");
    RunResult {
        latencies: lat.take(),
        bg_segments: bg_done.0,
        bg_cpu: bg_done.1,
        cw: None,
    }
}

/// The dispatcher for clockworker: receive requests, spawn them onto Fg, wait for all.
async fn cw_dispatch(
    mut rx: UnboundedReceiver<Request>,
    fg: QueueHandle<Q>,
    lat: Latencies,
    count: Arc<BgCount>,
) -> (u64, Duration) {
    let mut handles = Vec::new();
    while let Some(mut req) = rx.recv().await {
        req.dispatched = Instant::now();
        handles.push(fg.spawn(cw_request(req, lat.clone())));
    }
    let bg_done = count.snapshot();
    count.stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.await.expect("request");
    }
    bg_done
}

/// clockworker hosted at the top of `block_on`: `rt.block_on(executor.run_until(..))`.
fn run_cw_run_until(seconds: f64, bg: bool, latency_queue: bool) -> RunResult {
    let rt = tokio_rt();
    let executor = cw_executor(latency_queue);
    let fg = executor.queue(Q::Fg).expect("fg");
    let bgq = executor.queue(Q::Bg).expect("bg");
    let lat: Latencies = Rc::default();
    let count = Arc::new(BgCount::default());
    let (rx, gen) = generator(seconds);
    let bg_tasks: Vec<_> = if bg {
        (0..BG_TASKS)
            .map(|i| bgq.spawn(cw_bg(i, count.clone())))
            .collect()
    } else {
        Vec::new()
    };
    let (l, c) = (lat.clone(), count.clone());
    let bg_done = rt.block_on(executor.run_until(async move {
        let done = cw_dispatch(rx, fg, l, c).await;
        for h in bg_tasks {
            h.await.expect("bg");
        }
        done
    }));
    gen.join().expect("generator");
    cw_result(&lat, bg_done, &executor)
}

/// clockworker hosted as one task of a `LocalSet`, beside a dispatcher task and a
/// housekeeping ticker: `spawn_local(async move { executor.run().await })`.
fn run_cw_on_localset(seconds: f64) -> RunResult {
    let rt = tokio_rt();
    let local = tokio::task::LocalSet::new();
    let executor = cw_executor(false);
    let fg = executor.queue(Q::Fg).expect("fg");
    let bgq = executor.queue(Q::Bg).expect("bg");
    let lat: Latencies = Rc::default();
    let count = Arc::new(BgCount::default());
    let (rx, gen) = generator(seconds);
    let (l, c, ex) = (lat.clone(), count.clone(), executor.clone());
    let bg_done = local.block_on(&rt, async move {
        let bg_tasks: Vec<_> = (0..BG_TASKS)
            .map(|i| bgq.spawn(cw_bg(i, c.clone())))
            .collect();
        let runner = {
            let ex = ex.clone();
            tokio::task::spawn_local(async move { ex.run().await })
        };
        let ticks = Rc::new(Cell::new(0u64));
        let ticking = Rc::new(Cell::new(true));
        let ticker = {
            let (ticks, ticking) = (ticks.clone(), ticking.clone());
            tokio::task::spawn_local(async move {
                while ticking.get() {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    ticks.set(ticks.get() + 1);
                }
            })
        };
        let dispatcher = tokio::task::spawn_local(cw_dispatch(rx, fg, l, c));
        let done = dispatcher.await.expect("dispatcher");
        for h in bg_tasks {
            h.await.expect("bg");
        }
        ticking.set(false);
        ticker.await.expect("ticker");
        ex.shutdown();
        runner.await.expect("run");
        done
    });
    gen.join().expect("generator");
    cw_result(&lat, bg_done, &executor)
}

/// Foreground on this thread's runtime, background on a second runtime and thread.
fn run_two_runtimes(seconds: f64) -> RunResult {
    let count = Arc::new(BgCount::default());
    let c = count.clone();
    let bg_thread = std::thread::spawn(move || {
        let rt = tokio_rt();
        let local = tokio::task::LocalSet::new();
        local.block_on(&rt, async move {
            let tasks: Vec<_> = (0..BG_TASKS)
                .map(|i| tokio::task::spawn_local(tokio_bg(i, c.clone())))
                .collect();
            for t in tasks {
                t.await.expect("bg");
            }
        });
    });
    let mut r = run_tokio_fg_with_count(seconds, &count);
    count.stop.store(true, Ordering::Relaxed);
    bg_thread.join().expect("bg thread");
    r.cw = None;
    r
}

/// tokio fg only, reading another thread's background counters when sending ends.
fn run_tokio_fg_with_count(seconds: f64, count: &Arc<BgCount>) -> RunResult {
    let rt = tokio_rt();
    let local = tokio::task::LocalSet::new();
    let lat: Latencies = Rc::default();
    let (mut rx, gen) = generator(seconds);
    let (l, c) = (lat.clone(), count.clone());
    let bg_done = local.block_on(&rt, async move {
        let mut fg = Vec::new();
        while let Some(mut req) = rx.recv().await {
            req.dispatched = Instant::now();
            fg.push(tokio::task::spawn_local(tokio_request(req, l.clone())));
        }
        let done = c.snapshot();
        for h in fg {
            h.await.expect("task");
        }
        done
    });
    gen.join().expect("generator");
    RunResult {
        latencies: lat.take(),
        bg_segments: bg_done.0,
        bg_cpu: bg_done.1,
        cw: None,
    }
}

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
