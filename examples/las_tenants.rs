//! Two tenants share one queue under the LAS scheduler (least attained service first,
//! per task group): a light tenant sends many short requests, a heavy tenant runs a
//! few long CPU-bound jobs. The light tenant's requests are not stuck behind the heavy
//! jobs.
//!
//! ```text
//! cargo run --release --example las_tenants                # LAS, 2 s
//! cargo run --release --example las_tenants -- --fifo      # the same on a FIFO queue
//! ```
//!
//! What it shows:
//!
//! - each tenant is a task group of the one queue, `queue.group("light")` and
//!   `queue.group("heavy")`; LAS serves first the ready task whose *group* has had the
//!   least CPU time;
//! - each tenant is driven by one task of its group, which spawns its work with a
//!   `JoinSet`: `JoinSet::spawn` (like `clockworker::spawn`) puts a task in the queue
//!   and group of the task that calls it, so the work is charged to the right tenant
//!   without passing a handle around;
//! - the light tenant spawns `--burst` requests every millisecond (a tokio interval),
//!   each `--request-us` of CPU, and collects their results with `try_join_next`;
//! - the heavy tenant keeps `--jobs` jobs in flight, each `--job-ms` of CPU in chunks of
//!   `--chunk-us` with `yield_now()` between them (with a single queue, `yield_maybe()`
//!   would give way only when the host is due, every `driver_yield`; `yield_now()` lets
//!   the scheduler choose again after every chunk); it joins them in the order they
//!   finish and starts a new one each time;
//! - two phases of `--seconds / 2` each: both tenants, then (the heavy tenant's task
//!   aborted, which aborts its jobs) the light tenant alone, for comparison.
//!   Per-tenant `GroupStats` are snapshotted at each phase boundary and the difference
//!   (`later - earlier`) is printed, with the light requests' time from spawn to done.
//!
//! With `--fifo` the queue uses `RunnableFifo` (the default scheduler) instead: each
//! light request then waits behind every heavy job that is ready, one chunk each.
//!
//! LAS compares the service each group has had *since it began*, not over a recent
//! window. Both tenants start together here. Had the light tenant run alone first, its
//! service from then would count against it once the heavy tenant arrives: it would
//! queue behind the heavy jobs until they had had about as much (within a factor of
//! two: LAS files groups in power-of-two buckets of service). Run the light tenant
//! alone for a second before the heavy one and its p99 queue delay goes from a
//! fraction of a millisecond to several milliseconds.
//!
//! Every setting of the executor:
//!
//! - one queue, `"tenants"`, weight 1, scheduler `LAS::new()` with its default
//!   starvation guard (`DEFAULT_GUARD_EVERY`, 16: one pop in 16 serves the task that
//!   has waited longest, so the heavy jobs are never starved);
//! - `driver_yield` 250 µs (the library's default): the run loop returns to tokio at
//!   least that often, and after every poll that overran it (a heavy chunk of 500 µs
//!   does), so the light tenant's timer is seen on time;
//! - `sched_latency` and `min_slice` are left at their defaults (2 ms, 100 µs): they
//!   divide time between queues (a slice is `max(sched_latency / runnable queues,
//!   min_slice)`), and with a single queue they change nothing here;
//! - panics propagate (the library's default): a bug in this program stops it.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use clockworker::scheduler::{DEFAULT_GUARD_EVERY, LAS};
use clockworker::{yield_now, ExecutorBuilder, GroupStats, JoinSet, DEFAULT_DRIVER_YIELD};

const QUEUE: &str = "tenants";

struct Options {
    seconds: f64,
    fifo: bool,
    jobs: usize,
    job: Duration,
    chunk: Duration,
    burst: usize,
    request: Duration,
}

fn options() -> Options {
    let mut o = Options {
        seconds: 2.0,
        fifo: false,
        jobs: 3,
        job: Duration::from_millis(20),
        chunk: Duration::from_micros(500),
        burst: 4,
        request: Duration::from_micros(20),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .unwrap_or_else(|| panic!("{name} needs a value"))
        };
        let mut micros = |name: &str| {
            Duration::from_micros(value(name).parse().unwrap_or_else(|_| panic!("{name} US")))
        };
        match arg.as_str() {
            "--seconds" => o.seconds = value("--seconds").parse().expect("--seconds S"),
            "--fifo" => o.fifo = true,
            "--jobs" => o.jobs = value("--jobs").parse().expect("--jobs N"),
            "--job-ms" => o.job = micros("--job-ms") * 1000,
            "--chunk-us" => o.chunk = micros("--chunk-us"),
            "--burst" => o.burst = value("--burst").parse().expect("--burst N"),
            "--request-us" => o.request = micros("--request-us"),
            other => panic!(
                "unknown argument {other:?} (see the doc comment of examples/las_tenants.rs)"
            ),
        }
    }
    o
}

/// Burns `d` of CPU.
fn spin(d: Duration) {
    let start = Instant::now();
    while start.elapsed() < d {
        std::hint::spin_loop();
    }
}

/// The light tenant: `burst` requests of `request` CPU every millisecond until `stop`.
/// Returns, per phase, each request's time from spawn to done.
async fn light_tenant(
    burst: usize,
    request: Duration,
    phase: Rc<Cell<usize>>,
    stop: Rc<Cell<bool>>,
) -> [Vec<Duration>; 2] {
    let mut requests = JoinSet::new();
    let mut done: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
    let mut record = |result: Result<(usize, Duration), _>| {
        let (phase, latency) = result.expect("a light request failed");
        done[phase].push(latency);
    };
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    while !stop.get() {
        tick.tick().await;
        for _ in 0..burst {
            let (spawned, phase) = (Instant::now(), phase.get());
            // In this task's queue and group: the light tenant.
            requests.spawn(async move {
                spin(request);
                (phase, spawned.elapsed())
            });
        }
        while let Some(result) = requests.try_join_next() {
            record(result);
        }
    }
    while let Some(result) = requests.join_next().await {
        record(result);
    }
    done
}

/// The heavy tenant: keeps `jobs` jobs of `job` CPU in flight, for ever. Each job
/// finished adds one to `finished`.
async fn heavy_tenant(jobs: usize, job: Duration, chunk: Duration, finished: Rc<Cell<u64>>) {
    let heavy_job = move || async move {
        let mut left = job;
        while !left.is_zero() {
            let step = chunk.min(left);
            spin(step);
            left -= step;
            yield_now().await; // lets LAS choose again
        }
    };
    // In this task's queue and group: the heavy tenant. Dropping the set (when this
    // task is aborted) aborts the jobs in flight.
    let mut set = JoinSet::new();
    for _ in 0..jobs {
        set.spawn(heavy_job());
    }
    while let Some(result) = set.join_next().await {
        result.expect("a heavy job failed");
        finished.set(finished.get() + 1);
        set.spawn(heavy_job());
    }
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn main() {
    let o = options();
    let builder = ExecutorBuilder::new().with_driver_yield(DEFAULT_DRIVER_YIELD);
    let executor = if o.fifo {
        builder.with_queue(QUEUE, 1)
    } else {
        let las = LAS::new().with_starvation_guard(DEFAULT_GUARD_EVERY);
        builder.with_queue_scheduler(QUEUE, 1, las)
    }
    .build()
    .expect("valid configuration");
    let queue = executor.queue(QUEUE).unwrap();
    // These handles keep each group's figures alive for the whole run.
    let light = queue.group("light");
    let heavy = queue.group("heavy");
    let phase_length = Duration::from_secs_f64(o.seconds / 2.0);
    println!(
        "queue {QUEUE:?} with {}: two phases of {phase_length:?}, both tenants, then the \
         light one alone",
        if o.fifo { "RunnableFifo" } else { "LAS" }
    );
    println!(
        "light: {} requests of {:?} every ms; heavy: {} jobs of {:?} in flight, chunks of {:?}",
        o.burst, o.request, o.jobs, o.job, o.chunk
    );

    let phase = Rc::new(Cell::new(0));
    let stop = Rc::new(Cell::new(false));
    let heavy_finished = Rc::new(Cell::new(0));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let (snapshots, latencies) = runtime.block_on(executor.run_until(async {
        let snapshot = || (light.group_stats().unwrap(), heavy.group_stats().unwrap());
        let start = snapshot();
        let light_task = light.spawn(light_tenant(
            o.burst,
            o.request,
            phase.clone(),
            stop.clone(),
        ));
        let heavy_task = heavy.spawn(heavy_tenant(o.jobs, o.job, o.chunk, heavy_finished.clone()));
        tokio::time::sleep(phase_length).await;
        heavy_task.abort();
        // Dropping its task's future drops its `JoinSet`, which aborts the jobs.
        assert!(heavy_task.await.unwrap_err().is_cancelled());
        let both = snapshot();
        phase.set(1);
        tokio::time::sleep(phase_length).await;
        let alone = snapshot();
        stop.set(true);
        let latencies = light_task.await.expect("the light tenant's task");
        ([start, both, alone], latencies)
    }));

    let [start, both, alone] = snapshots;
    let print = |name: &str, stats: GroupStats<&str>| {
        println!("{name} tenant: {stats}");
    };
    let mut failed = false;
    for (i, (from, to, title)) in [
        (&start, &both, "phase 1: both tenants"),
        (
            &both,
            &alone,
            "phase 2: the light tenant alone (heavy jobs aborted)",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        println!("\n== {title}");
        print("light", to.0.since(&from.0));
        print("heavy", to.1.since(&from.1));
        let mut sorted = latencies[i].clone();
        sorted.sort_unstable();
        match sorted.last() {
            Some(max) => println!(
                "light requests, spawn to done: {} done, p50 {:?}, p99 {:?}, max {:?}",
                sorted.len(),
                quantile(&sorted, 0.5),
                quantile(&sorted, 0.99),
                max
            ),
            None => {
                println!("FAILED: no light request in this phase");
                failed = true;
            }
        }
    }
    let p99 = |stats: &GroupStats<&str>| stats.queue_delay.quantile(0.99).unwrap_or_default();
    println!(
        "\nqueue delay p99 beside the heavy tenant: light {:?} (alone: {:?}), heavy {:?}; \
         {} heavy jobs finished",
        p99(&both.0.since(&start.0)),
        p99(&alone.0.since(&both.0)),
        p99(&both.1.since(&start.1)),
        heavy_finished.get()
    );
    if heavy_finished.get() == 0 {
        println!("FAILED: no heavy job finished");
        failed = true;
    }
    if failed {
        std::process::exit(1);
    }
}
