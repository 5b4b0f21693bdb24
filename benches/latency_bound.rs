//! Latency queues: the documented bound next to the observed queue delay.
//!
//! One clockworker executor on a tokio `current_thread` runtime. Eight background
//! queues (weight 1 each) are kept saturated by CPU-bound tasks that spin 100–300 µs
//! per poll and then call clockworker's `yield_now()`. A ninth queue, `Lat` (weight 1),
//! receives requests from another OS thread through `Executor::remote()` at ~500/s
//! (Poisson arrivals, fixed seed); a request notes its send time, and its task, once
//! polled, records the queue delay (send → first poll) and spins ~20 µs.
//!
//! Rows: `Lat` as a latency queue (`with_queue_latency(Lat, 1, B)`) for B = 200 µs,
//! 1 ms and 5 ms, and as an ordinary queue (`with_queue(Lat, 1)`) as the baseline.
//! Each row is run in interleaved rounds; percentiles are taken over the requests of
//! all its rounds.
//!
//! The guarantee (bound (c) in `src/eevdf/mod.rs`, `ExecutorBuilder::with_queue_latency`):
//! an idle latency queue within its share has its first task polled after at most the
//! poll in progress plus the time the run loop is away in the host. The bench measures
//! both terms in the same run — `q`, the longest background poll, and `h`, the longest
//! time between two polls of the run loop by tokio — and prints `q + h` beside the
//! observed delays. The baseline row has no such guarantee (an ordinary queue waits
//! for the deadline order, bound (b)).
//!
//! Two things blur wall-clock delays on a shared machine, so the table also shows:
//! - *from idle*: the requests sent while `Lat` was idle and out of debt (estimated
//!   from the executor's own charges, see `RequestLog::record`) — the only case bound
//!   (c) speaks about; a request sent while `Lat` still repays earlier requests first
//!   waits `debt · W_all / w` (bound (b)'s second clause).
//! - *bg polls after arrival*: how many background polls started between a request's
//!   arrival and its first poll. Bound (c) says none for a request from idle; unlike
//!   the delay, this count does not grow when the OS takes the CPU away.
//! - `send lag`, `longest request poll`, `executor preempted` (involuntary context
//!   switches of the executor's thread): how much of the tail is the machine's.
//!
//! `CW_BENCH_QUICK=1` for a quick run; `LAT_SECONDS` / `LAT_ROUNDS` override the run
//! length per sample and the number of rounds.

#[path = "common/mod.rs"]
mod common;

use std::cell::{Cell, RefCell};
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use clockworker::{yield_now, Executor, ExecutorBuilder};
use common::{Cell as C, Rng, Table};

const REQUESTS_PER_SECOND: f64 = 500.0;
const BG_QUEUES: u8 = 8;
const BG_TASKS_PER_QUEUE: usize = 2;
/// CPU per background poll, µs (uniform).
const BG_POLL_US: (u64, u64) = (100, 300);
/// CPU per request, once polled.
const REQUEST_CPU: Duration = Duration::from_micros(20);
const SEED: u64 = 0x5EED_0007;

/// Background polls started so far (all samples): a request compares the count at its
/// arrival with the count at its first poll, which no OS preemption can distort.
static BG_POLLS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// The executor of the sample running on this thread, so that request tasks (`Send`
    /// futures, which cannot hold it) read what it charged `Lat` so far.
    static EXECUTOR: RefCell<Option<Rc<Executor<Q>>>> = const { RefCell::new(None) };
}

/// Service the executor has charged to `Lat` so far (zero off the executor's thread).
fn lat_service() -> Duration {
    EXECUTOR.with(|executor| {
        executor
            .borrow()
            .as_ref()
            .and_then(|e| e.queue_stats(Q::Lat))
            .map_or(Duration::ZERO, |stats| stats.service_time)
    })
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Q {
    Lat,
    Bg(u8),
}

/// The queue `Lat` of a row: a latency queue with this bound, or an ordinary queue.
const ROWS: [(&str, Option<Duration>); 4] = [
    ("latency, B = 200 µs", Some(Duration::from_micros(200))),
    ("latency, B = 1 ms", Some(Duration::from_millis(1))),
    ("latency, B = 5 ms", Some(Duration::from_millis(5))),
    ("ordinary queue (baseline)", None),
];

/// What one sample measured.
struct Sample {
    /// Queue delay of every request, µs.
    delays: Vec<f64>,
    /// Queue delay of the requests sent while `Lat` was idle and out of debt (see
    /// `RequestLog::record`), µs: the case bound (c) covers.
    from_idle: Vec<f64>,
    /// Background polls started between each request's arrival and its first poll.
    overtaken: Vec<u64>,
    /// The same, for the requests sent from idle (bound (c): zero).
    idle_overtaken: Vec<u64>,
    /// Per request, send → end of the remote spawn on the sending thread, µs.
    send_lag: Vec<f64>,
    /// Involuntary context switches of the executor's thread during the sample (the
    /// OS running something else on its core), when the OS reports them.
    preempted: Option<i64>,
    /// Longest background poll (`q`).
    longest_poll: Duration,
    /// Longest poll of a request (20 µs of CPU, longer in wall time when the OS
    /// preempts the thread inside it).
    longest_request_poll: Duration,
    /// Longest time between two polls of the run loop (`h`).
    longest_host_round: Duration,
    driver_yields: u64,
}

/// What the request tasks record (they run one at a time, on the executor's thread).
#[derive(Default)]
struct RequestLog {
    delays: Vec<f64>,
    from_idle: Vec<f64>,
    /// Background polls started after each request arrived, before its first poll.
    overtaken: Vec<u64>,
    /// The same, for the requests sent from idle.
    idle_overtaken: Vec<u64>,
    /// The previous request: when it finished, `Lat`'s charged service and its
    /// estimated debt (ns) at its first poll.
    previous: Option<(Instant, Duration, f64)>,
    longest_poll: Duration,
}

impl RequestLog {
    /// Records a request sent at `sent`, spawned (its remote spawn returned) when
    /// `BG_POLLS` read `pushed` (unset if it ran before that), first polled at
    /// `polled` when `BG_POLLS` read `bg_polls` and `Lat`'s charged service (the
    /// executor's stats) was `service`; called at the end of its one poll.
    ///
    /// `bg_polls - pushed` is how many background polls *started* after the request
    /// arrived and before its first poll (a lower bound: polls started inside the
    /// spawn call are missed) — a count no OS preemption distorts.
    ///
    /// The request counts as sent *from idle* when the previous one had finished and
    /// `Lat`'s debt was repaid. The debt is estimated from the executor's charges: a
    /// poll charged `t` adds `t (1 - w/W_all)` (here 8/9 t), and the saturating
    /// background repays it at `w/W_all` (1/9) per ns of wall time. Requests sent in a
    /// burst (the sending thread runs late under load and catches up) pile up debt,
    /// which only the previous request's charge would miss.
    fn record(
        &mut self,
        sent: Instant,
        pushed: Option<u64>,
        polled: Instant,
        bg_polls: u64,
        service: Duration,
    ) {
        let done = Instant::now();
        let poll = done - polled;
        self.delays.push(common::micros(polled - sent));
        let overtaken = pushed.map_or(0, |at_push| bg_polls.saturating_sub(at_push));
        self.overtaken.push(overtaken);
        let share = 1.0 / f64::from(u32::from(BG_QUEUES) + 1);
        // Debt after the previous request, repaid until `at`.
        let debt_at = |at: Instant| -> f64 {
            self.previous
                .map_or(0.0, |(finished, service_before, debt)| {
                    let charged = service.saturating_sub(service_before).as_nanos() as f64;
                    let after = debt + charged * (1.0 - share);
                    let repaid = at.saturating_duration_since(finished).as_nanos() as f64 * share;
                    (after - repaid).max(0.0)
                })
        };
        let idle = self
            .previous
            .is_none_or(|(finished, ..)| finished <= sent && debt_at(sent) == 0.0);
        if idle {
            self.from_idle.push(common::micros(polled - sent));
            self.idle_overtaken.push(overtaken);
        }
        let debt = debt_at(polled);
        self.previous = Some((done, service, debt));
        self.longest_poll = self.longest_poll.max(poll);
    }
}

/// Send offsets of one run's requests: Poisson arrivals at `REQUESTS_PER_SECOND`.
fn arrivals(seconds: f64, seed: u64) -> Vec<Duration> {
    let mut rng = Rng::new(seed);
    let mean = 1.0 / REQUESTS_PER_SECOND;
    let mut at = 0.0;
    let mut out = Vec::new();
    loop {
        at += rng.exponential(mean);
        if at >= seconds {
            return out;
        }
        out.push(Duration::from_secs_f64(at));
    }
}

fn run_sample(bound: Option<Duration>, seconds: f64, seed: u64) -> Sample {
    let mut builder = ExecutorBuilder::new();
    builder = match bound {
        Some(bound) => builder.with_queue_latency(Q::Lat, 1, bound),
        None => builder.with_queue(Q::Lat, 1),
    };
    for i in 0..BG_QUEUES {
        builder = builder.with_queue(Q::Bg(i), 1);
    }
    let executor = builder.build().expect("valid layout");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime");

    // Background: always ready, 100–300 µs per poll.
    let longest_poll = Rc::new(Cell::new(Duration::ZERO));
    for q in 0..BG_QUEUES {
        let queue = executor.queue(Q::Bg(q)).expect("queue exists");
        for t in 0..BG_TASKS_PER_QUEUE {
            let longest = longest_poll.clone();
            let mut rng = Rng::new(seed ^ (u64::from(q) << 8 | t as u64));
            drop(queue.spawn(async move {
                loop {
                    BG_POLLS.fetch_add(1, Ordering::SeqCst);
                    let start = Instant::now();
                    common::spin(rng.micros(BG_POLL_US.0, BG_POLL_US.1));
                    longest.set(longest.get().max(start.elapsed()));
                    yield_now().await;
                }
            }));
        }
    }

    // Requests, from another thread.
    let log = Arc::new(Mutex::new(RequestLog::default()));
    let spawner = executor.remote();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let plan = arrivals(seconds, seed);
    let sink = log.clone();
    let generator = std::thread::spawn(move || {
        let mut send_lag = Vec::with_capacity(plan.len());
        // Let the run loop start (and the background saturate the thread) first.
        std::thread::sleep(Duration::from_millis(20));
        let start = Instant::now();
        for at in plan {
            common::sleep_until(start + at);
            let sink = sink.clone();
            let pushed = Arc::new(OnceLock::<u64>::new());
            let pushed_seen = pushed.clone();
            let sent = Instant::now();
            let spawned = spawner.spawn(Q::Lat, async move {
                let polled = Instant::now();
                let bg_polls = BG_POLLS.load(Ordering::SeqCst);
                let service = lat_service();
                common::spin(REQUEST_CPU);
                let pushed = pushed_seen.get().copied();
                sink.lock()
                    .unwrap()
                    .record(sent, pushed, polled, bg_polls, service);
            });
            let now = Instant::now();
            let _ = pushed.set(BG_POLLS.load(Ordering::SeqCst));
            send_lag.push(common::micros(now - sent));
            drop(spawned.expect("executor runs"));
        }
        // Let the last requests run.
        std::thread::sleep(Duration::from_millis(20));
        let _ = done_tx.send(());
        send_lag
    });

    // The run loop, timed from outside: `h` is the longest stretch between the end of
    // one poll by tokio and the start of the next. The background keeps it from ever
    // parking, so every such stretch is a round through tokio.
    EXECUTOR.with(|e| *e.borrow_mut() = Some(executor.clone()));
    let mut run = pin!(executor.run_until(async {
        let _ = done_rx.await;
    }));
    let mut left: Option<Instant> = None;
    let mut longest_host_round = Duration::ZERO;
    let switches_before = involuntary_switches();
    runtime.block_on(poll_fn(|cx| {
        if let Some(left) = left {
            longest_host_round = longest_host_round.max(left.elapsed());
        }
        let polled = run.as_mut().poll(cx);
        left = Some(Instant::now());
        polled
    }));
    let preempted = involuntary_switches()
        .zip(switches_before)
        .map(|(after, before)| after - before);
    let send_lag = generator.join().expect("generator thread");
    EXECUTOR.with(|e| e.borrow_mut().take());
    let driver_yields = executor.stats().driver_yields;
    executor.shutdown();
    let log = std::mem::take(&mut *log.lock().unwrap());
    Sample {
        delays: log.delays,
        from_idle: log.from_idle,
        overtaken: log.overtaken,
        idle_overtaken: log.idle_overtaken,
        send_lag,
        preempted,
        longest_poll: longest_poll.get(),
        longest_request_poll: log.longest_poll,
        longest_host_round,
        driver_yields,
    }
}

/// Involuntary context switches of the calling thread so far (Linux).
fn involuntary_switches() -> Option<i64> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: `rusage` is plain integers, all zeroes is valid; getrusage writes
        // into the struct we pass and reads nothing else.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `usage` is a valid, writable `rusage`.
        let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
        if rc == 0 {
            return Some(usage.ru_nivcsw as i64);
        }
    }
    None
}

fn main() {
    common::keep_heap();
    let quick = common::quick();
    let seconds: f64 = std::env::var("LAT_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(common::pick(2.0, 0.25));
    let rounds = common::env_usize("LAT_ROUNDS", common::pick(2, 1)).max(1);
    println!(
        "latency_bound: {BG_QUEUES} background queues (weight 1, {BG_TASKS_PER_QUEUE} tasks \
         each, {}-{} µs per poll, then yield_now) + queue Lat (weight 1) receiving \
         ~{REQUESTS_PER_SECOND} requests/s from another thread ({} µs CPU each); {seconds} s \
         x {rounds} interleaved round(s) per row{}",
        BG_POLL_US.0,
        BG_POLL_US.1,
        REQUEST_CPU.as_micros(),
        if quick { " (quick mode)" } else { "" }
    );
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        println!("load average at start: {}", load.trim());
    }
    let names: Vec<&str> = ROWS.iter().map(|r| r.0).collect();
    let samples = common::interleaved(&names, rounds, false, |row, round| {
        let seed = SEED ^ round.unwrap_or(0) as u64;
        run_sample(ROWS[row].1, seconds, seed)
    });

    let mut table = Table::new(
        "Queue delay of Lat (send → first poll, µs) vs. the guarantee \
         \"delay ≤ q + h\" (q: longest background poll, h: longest host round, both measured)",
        &[
            "Lat queue",
            "bound B µs",
            "requests",
            "p50",
            "p99",
            "p99.9",
            "max",
            "q µs",
            "h µs",
            "q + h µs",
            "p99 ≤ q + h",
            "from idle: n",
            "from idle: p99",
            "from idle: max",
            "from idle: max ≤ q + h",
            "bg polls after arrival: max (share > 0)",
            "from idle: bg polls after arrival: max (share > 0)",
            "send lag max",
            "longest request poll µs",
            "executor preempted",
            "driver yields",
        ],
    );
    for (row, (name, bound)) in ROWS.iter().enumerate() {
        let pooled = |f: fn(&Sample) -> &Vec<f64>| -> Vec<f64> {
            samples[row]
                .iter()
                .flat_map(|s| f(s).iter().copied())
                .collect()
        };
        let mut delays = pooled(|s| &s.delays);
        let [p50, _, p99, p999] = common::percentiles(&mut delays);
        let max = delays.last().copied().unwrap_or(f64::NAN);
        // "max (share of requests with any)" of a count of overtaking polls.
        let overtaken = |f: fn(&Sample) -> &Vec<u64>| -> String {
            let counts: Vec<u64> = samples[row]
                .iter()
                .flat_map(|s| f(s).iter().copied())
                .collect();
            let max = counts.iter().copied().max().unwrap_or(0);
            let any = counts.iter().filter(|&&n| n > 0).count();
            let share = 100.0 * any as f64 / counts.len().max(1) as f64;
            format!("{max} ({share:.1}%)")
        };
        let mut from_idle = pooled(|s| &s.from_idle);
        let [_, _, idle_p99, _] = common::percentiles(&mut from_idle);
        let idle_max = from_idle.last().copied().unwrap_or(f64::NAN);
        let send_lag_max = pooled(|s| &s.send_lag).into_iter().fold(f64::NAN, f64::max);
        let q = samples[row]
            .iter()
            .map(|s| s.longest_poll)
            .max()
            .unwrap_or_default();
        let h = samples[row]
            .iter()
            .map(|s| s.longest_host_round)
            .max()
            .unwrap_or_default();
        let guarantee = common::micros(q + h);
        let request_poll = samples[row]
            .iter()
            .map(|s| s.longest_request_poll)
            .max()
            .unwrap_or_default();
        let verdict = |v: f64| match bound {
            None => "n/a".to_string(),
            Some(_) if v <= guarantee => "yes".to_string(),
            Some(_) => "NO".to_string(),
        };
        let yields: u64 = samples[row].iter().map(|s| s.driver_yields).sum();
        let preempted: Option<i64> = samples[row].iter().map(|s| s.preempted).sum();
        table.row(vec![
            C::text(*name),
            bound.map_or(C::text("–"), |b| C::num(common::micros(b), 0)),
            C::num(delays.len() as f64, 0),
            C::num(p50, 1),
            C::num(p99, 1),
            C::num(p999, 1),
            C::num(max, 1),
            C::num(common::micros(q), 1),
            C::num(common::micros(h), 1),
            C::num(guarantee, 1),
            C::text(verdict(p99)),
            C::num(from_idle.len() as f64, 0),
            C::num(idle_p99, 1),
            C::num(idle_max, 1),
            C::text(verdict(idle_max)),
            C::text(overtaken(|s| &s.overtaken)),
            C::text(overtaken(|s| &s.idle_overtaken)),
            C::num(send_lag_max, 1),
            C::num(common::micros(request_poll), 1),
            preempted.map_or(C::text("–"), |n| C::num(n as f64, 0)),
            C::num(yields as f64, 0),
        ]);
    }
    table.print();
    let path = table.write_csv("latency_bound.csv");
    println!("\nCSV: {}", path.display());
}
