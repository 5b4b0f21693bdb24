//! Cost of the basic operations, one at a time, on five executors: tokio's `LocalSet`,
//! smol's `LocalExecutor`, glommio's `LocalExecutor` (its own io_uring runtime, the
//! speed anchor), clockworker hosted by tokio and clockworker hosted by smol. The
//! glommio rows are skipped, with the reason printed, where io_uring or locked memory
//! is unavailable, and they sit out the cross-thread wake: glommio 0.9 may sleep with a
//! wake from another thread queued until its next timer or I/O event
//! (`examples/glommio_host.rs`), which would time glommio's timer, not its wake.
//!
//! glommio has two rows because its `spawn_local` polls the new task at once, inside
//! the spawn, when it goes to the queue that is running (glommio 0.9,
//! `LocalExecutor::spawn` → `spawn_and_run` → `run_right_away`): its `spawn` figure
//! includes the task's first poll (here, the whole empty task), and its tasks skip one
//! trip through the queue. Every other row's spawn only queues the task, as tokio's
//! does. The `glommio, queued spawn` row spawns with `spawn_local_into` the running
//! queue, which queues the task (`spawn_and_schedule`): the same work as the others.
//!
//! Operations (N tasks per sample unless said otherwise):
//! - `spawn`: spawning N empty tasks (only the spawn loop is timed; the tasks then run
//!   to completion untimed);
//! - `spawn+yield+join`: spawning N tasks that yield once, then joining them all;
//! - `yield`: 100 tasks yielding Y times each; time per yield;
//! - `cross-thread wake`: N tasks parked on a flag; another thread sets the flags and
//!   calls their wakers; time per task from the first wake to the last task joined.
//!
//! Each task yields the way users of that executor write it: `tokio::task::yield_now()`
//! on tokio, `futures_lite::future::yield_now()` on smol, `clockworker::yield_now()`
//! on clockworker (whatever its host), `futures_lite::future::yield_now()` on glommio.
//!
//! Every figure is the median over interleaved rounds of one sample per configuration;
//! runtimes and executors are built outside the timed part, and glibc is kept from
//! trimming the heap between samples (docs/PROFILING.md, "Measuring wall time on a shared machine").
//!
//! `cargo bench --bench overhead [-- OP [CONFIG]]`, OP one of `spawn`, `join`, `yield`,
//! `wake`, CONFIG one of `tokio`, `smol`, `glommio`, `glommio-queued`, `cw-tokio`,
//! `cw-smol`: runs only those (for a profiler; the timed part of each sample is the
//! function `measured`).
//! `CW_BENCH_QUICK=1` for a quick run; `OVH_ROUNDS` overrides the number of rounds.

#[path = "common/mod.rs"]
mod common;

use std::cell::Cell;
use std::future::{poll_fn, Future};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use atomic_waker::AtomicWaker;
use common::{Cell as C, Panel, Series, Table};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Host {
    Tokio,
    Smol,
    Glommio,
    GlommioQueued,
    CwTokio,
    CwSmol,
}

impl Host {
    fn is_glommio(self) -> bool {
        matches!(self, Host::Glommio | Host::GlommioQueued)
    }
}

const HOSTS: [(Host, &str, &str); 6] = [
    (Host::Tokio, "tokio LocalSet", "tokio"),
    (Host::Smol, "smol LocalExecutor", "smol"),
    (
        Host::Glommio,
        "glommio LocalExecutor (own runtime)",
        "glommio",
    ),
    (
        Host::GlommioQueued,
        "glommio, queued spawn (spawn_local_into)",
        "glommio-queued",
    ),
    (Host::CwTokio, "clockworker on tokio", "cw-tokio"),
    (Host::CwSmol, "clockworker on smol", "cw-smol"),
];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Op {
    Spawn,
    Join,
    Yield,
    Wake,
}

const OPS: [(Op, &str, &str); 4] = [
    (Op::Spawn, "spawn", "spawn"),
    (Op::Join, "spawn+yield+join", "join"),
    (Op::Yield, "yield", "yield"),
    (Op::Wake, "cross-thread wake", "wake"),
];

#[derive(Clone, Copy, Debug)]
struct Sizes {
    spawn_tasks: usize,
    join_tasks: usize,
    yield_tasks: usize,
    yields_per_task: usize,
    wake_tasks: usize,
}

impl Sizes {
    /// How many operations one sample of `op` performs.
    fn ops(&self, op: Op) -> usize {
        match op {
            Op::Spawn => self.spawn_tasks,
            Op::Join => self.join_tasks,
            Op::Yield => self.yield_tasks * self.yields_per_task,
            Op::Wake => self.wake_tasks,
        }
    }
}

/// The executor a sample runs on, as the timed code reaches it.
#[derive(Clone)]
enum Spawner {
    Tokio,
    Smol(Rc<async_executor::LocalExecutor<'static>>),
    #[cfg(all(target_os = "linux", not(any(loom, miri))))]
    Glommio,
    /// Spawns into this queue with `spawn_local_into`, which queues the task.
    #[cfg(all(target_os = "linux", not(any(loom, miri))))]
    GlommioQueued(glommio::TaskQueueHandle),
    Cw(clockworker::QueueHandle<u8>),
}

/// Runs `$body` with `$spawn` (spawn a future, keep its handle), `$join` (await a
/// handle) and `$yield_now` (the yield users of that executor write) bound to the
/// executor of `$spawner`, so that every timed loop is compiled once per executor:
/// through an enum of spawners and handles each operation would also pay a dispatch,
/// and a handle the size of the largest executor's, unequally by row (4-9 ns per
/// spawn; docs/BENCHMARKS.md, "Against glommio and tokio's leanest setup").
macro_rules! with_spawner {
    ($spawner:expr, |$spawn:ident, $join:ident, $yield_now:ident| $body:expr) => {
        match $spawner {
            Spawner::Tokio => {
                let $spawn = |f| tokio::task::spawn_local(f);
                let $join =
                    |h: tokio::task::JoinHandle<()>| async move { h.await.expect("tokio task") };
                let $yield_now = tokio::task::yield_now;
                $body
            }
            Spawner::Smol(ex) => {
                let $spawn = |f| ex.spawn(f);
                let $join = |t: async_executor::Task<()>| t;
                let $yield_now = futures_lite::future::yield_now;
                $body
            }
            #[cfg(all(target_os = "linux", not(any(loom, miri))))]
            Spawner::Glommio => {
                let $spawn = |f| glommio::spawn_local(f);
                let $join = |t: glommio::Task<()>| t;
                let $yield_now = futures_lite::future::yield_now;
                $body
            }
            #[cfg(all(target_os = "linux", not(any(loom, miri))))]
            Spawner::GlommioQueued(queue) => {
                let $spawn = |f| glommio::spawn_local_into(f, queue).expect("the running queue");
                let $join = |t: glommio::Task<()>| t;
                let $yield_now = futures_lite::future::yield_now;
                $body
            }
            Spawner::Cw(q) => {
                let $spawn = |f| q.spawn(f);
                let $join = |h: clockworker::JoinHandle<()>| async move {
                    h.await.expect("clockworker task")
                };
                let $yield_now = clockworker::yield_now;
                $body
            }
        }
    };
}

/// Builds the host (and executor) for `host`, then drives `body(spawner)` on it; the
/// body times itself.
fn on_host<F, Fut>(host: Host, body: F) -> Duration
where
    F: FnOnce(Spawner) -> Fut,
    Fut: Future<Output = Duration>,
{
    match host {
        Host::Tokio => {
            let rt = common::tokio_rt();
            let local = tokio::task::LocalSet::new();
            local.block_on(&rt, body(Spawner::Tokio))
        }
        Host::Smol => {
            let ex = Rc::new(async_executor::LocalExecutor::new());
            futures_lite::future::block_on(ex.run(body(Spawner::Smol(ex.clone()))))
        }
        #[cfg(all(target_os = "linux", not(any(loom, miri))))]
        Host::Glommio => {
            let ex = common::glommio_executor().expect("probed in main");
            ex.run(body(Spawner::Glommio))
        }
        #[cfg(all(target_os = "linux", not(any(loom, miri))))]
        Host::GlommioQueued => {
            let ex = common::glommio_executor().expect("probed in main");
            ex.run(async move {
                let queue = glommio::executor().current_task_queue();
                body(Spawner::GlommioQueued(queue)).await
            })
        }
        #[cfg(not(all(target_os = "linux", not(any(loom, miri)))))]
        Host::Glommio | Host::GlommioQueued => {
            unreachable!("the glommio rows are skipped where glommio cannot start")
        }
        Host::CwTokio => {
            let rt = common::tokio_rt();
            let local = tokio::task::LocalSet::new();
            let (executor, queue) = common::one_queue_executor();
            local.block_on(&rt, executor.run_until(body(Spawner::Cw(queue))))
        }
        Host::CwSmol => {
            let (executor, queue) = common::one_queue_executor();
            futures_lite::future::block_on(executor.run_until(body(Spawner::Cw(queue))))
        }
    }
}

/// Spawning: only the spawn loop is timed; the tasks then run and are joined untimed.
async fn op_spawn(s: Spawner, n: usize) -> Duration {
    with_spawner!(s, |spawn, join, _yield_now| {
        let mut handles = Vec::with_capacity(n);
        let start = Instant::now();
        for _ in 0..n {
            handles.push(spawn(async {}));
        }
        let elapsed = start.elapsed();
        for h in handles {
            join(h).await;
        }
        elapsed
    })
}

/// Spawns `n` tasks that are the executor's yield future itself (one yield each), then
/// joins them all; all timed.
async fn op_join(s: Spawner, n: usize) -> Duration {
    with_spawner!(s, |spawn, join, yield_now| {
        let mut handles = Vec::with_capacity(n);
        let start = Instant::now();
        for _ in 0..n {
            handles.push(spawn(yield_now()));
        }
        for h in handles {
            join(h).await;
        }
        start.elapsed()
    })
}

/// Spawns `tasks` tasks that yield `yields` times each, then joins them; all timed.
async fn op_yield(s: Spawner, tasks: usize, yields: usize) -> Duration {
    with_spawner!(s, |spawn, join, yield_now| {
        let mut handles = Vec::with_capacity(tasks);
        let start = Instant::now();
        for _ in 0..tasks {
            handles.push(spawn(async move {
                for _ in 0..yields {
                    yield_now().await;
                }
            }));
        }
        for h in handles {
            join(h).await;
        }
        start.elapsed()
    })
}

/// A flag another thread sets, with the waker of the task waiting for it.
#[derive(Default)]
struct Signal {
    fired: AtomicBool,
    waker: AtomicWaker,
}

impl Signal {
    fn fire(&self) {
        self.fired.store(true, Ordering::Release);
        self.waker.wake();
    }

    async fn wait(&self) {
        poll_fn(|cx| {
            if self.fired.load(Ordering::Acquire) {
                return Poll::Ready(());
            }
            self.waker.register(cx.waker());
            if self.fired.load(Ordering::Acquire) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await
    }
}

async fn op_wake(
    s: Spawner,
    n: usize,
    signals: Vec<Arc<Signal>>,
    go: mpsc::Sender<()>,
    started: mpsc::Receiver<Instant>,
) -> Duration {
    let parked = Rc::new(Cell::new(0usize));
    with_spawner!(s, |spawn, join, _yield_now| {
        let mut handles = Vec::with_capacity(n);
        for sig in signals {
            handles.push(spawn(wait_counting_park(sig, parked.clone())));
        }
        while parked.get() < n {
            common::NeutralYield::new().await;
        }
        go.send(()).expect("waker thread");
        for h in handles {
            join(h).await;
        }
        let end = Instant::now();
        let start = started.recv().expect("start instant");
        end.saturating_duration_since(start)
    })
}

/// Waits for `sig`, counting in `parked` the first time the wait is pending.
async fn wait_counting_park(sig: Arc<Signal>, parked: Rc<Cell<usize>>) {
    let mut first = true;
    let wait = sig.wait();
    let mut wait = std::pin::pin!(wait);
    poll_fn(|cx: &mut Context<'_>| {
        let r = wait.as_mut().poll(cx);
        if first && r.is_pending() {
            first = false;
            parked.set(parked.get() + 1);
        }
        r
    })
    .await;
}

/// One sample of `op` on `host`; a separate function so that callgrind's
/// `--toggle-collect='*measured*'` counts only the samples.
#[inline(never)]
fn measured(op: Op, host: Host, z: Sizes) -> Duration {
    match op {
        Op::Spawn => on_host(host, |s| op_spawn(s, z.spawn_tasks)),
        Op::Join => on_host(host, |s| op_join(s, z.join_tasks)),
        Op::Yield => on_host(host, |s| op_yield(s, z.yield_tasks, z.yields_per_task)),
        Op::Wake => {
            let n = z.wake_tasks;
            let signals: Vec<Arc<Signal>> = (0..n).map(|_| Arc::new(Signal::default())).collect();
            let (go_tx, go_rx) = mpsc::channel::<()>();
            let (start_tx, start_rx) = mpsc::channel::<Instant>();
            let remote = signals.clone();
            let waker_thread = std::thread::spawn(move || {
                if go_rx.recv().is_err() {
                    return;
                }
                let start = Instant::now();
                for sig in &remote {
                    sig.fire();
                }
                let _ = start_tx.send(start);
            });
            let d = on_host(host, |s| op_wake(s, n, signals, go_tx, start_rx));
            waker_thread.join().expect("waker thread");
            d
        }
    }
}

fn main() {
    common::keep_heap();
    let quick = common::quick();
    let z = Sizes {
        spawn_tasks: common::pick(100_000, 10_000),
        join_tasks: common::pick(100_000, 10_000),
        yield_tasks: 100,
        yields_per_task: common::pick(1_000, 100),
        wake_tasks: common::pick(20_000, 2_000),
    };
    let rounds = common::env_usize("OVH_ROUNDS", common::pick(21, 3)).max(1);

    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let ops: Vec<_> = match args.first() {
        Some(a) => OPS.iter().filter(|o| o.2 == a).copied().collect(),
        None => OPS.to_vec(),
    };
    let mut hosts: Vec<_> = match args.get(1) {
        Some(a) => HOSTS.iter().filter(|h| h.2 == a).copied().collect(),
        None => HOSTS.to_vec(),
    };
    if ops.is_empty() || hosts.is_empty() {
        eprintln!(
            "usage: overhead [spawn|join|yield|wake [tokio|smol|glommio|glommio-queued|cw-tokio|cw-smol]]"
        );
        std::process::exit(2);
    }
    // Probed only when glommio runs: starting it sets up io_uring and locked memory,
    // which would otherwise change the process the other rows run in.
    let wants_glommio = hosts.iter().any(|h| h.0.is_glommio());
    if let (true, Err(reason)) = (wants_glommio, common::glommio_executor().map(drop)) {
        println!("SKIPPED glommio rows: {reason}");
        hosts.retain(|h| !h.0.is_glommio());
        if hosts.is_empty() {
            return;
        }
    }

    println!(
        "overhead: spawn {} tasks; spawn+yield+join {} tasks; yield {} tasks x {} yields; \
         cross-thread wake {} tasks; median of {rounds} interleaved rounds{}",
        z.spawn_tasks,
        z.join_tasks,
        z.yield_tasks,
        z.yields_per_task,
        z.wake_tasks,
        if quick { " (quick mode)" } else { "" }
    );

    let names: Vec<&str> = hosts.iter().map(|h| h.1).collect();
    let mut table = Table::new(
        "Per-operation cost (ns/op, median of interleaved rounds; ratio = median / tokio's median, same run)",
        &["operation", "configuration", "ns/op", "ratio to tokio", "min ns/op", "max ns/op"],
    );
    let mut panel_series: Vec<Vec<f64>> = vec![Vec::new(); hosts.len()];
    for &(op, op_name, _) in &ops {
        eprintln!("{op_name}:");
        // glommio sits out the cross-thread wake (see the module docs).
        let runs: Vec<usize> = (0..hosts.len())
            .filter(|&i| !(op == Op::Wake && hosts[i].0.is_glommio()))
            .collect();
        let run_names: Vec<&str> = runs.iter().map(|&i| names[i]).collect();
        let samples = common::interleaved(&run_names, rounds, !quick, |c, _| {
            let d = measured(op, hosts[runs[c]].0, z);
            d.as_nanos() as f64 / z.ops(op) as f64
        });
        let medians: Vec<f64> = samples.iter().map(|s| common::median(s)).collect();
        let tokio = runs
            .iter()
            .position(|&i| hosts[i].0 == Host::Tokio)
            .map(|r| medians[r]);
        for (i, series) in panel_series.iter_mut().enumerate() {
            let Some(r) = runs.iter().position(|&run| run == i) else {
                series.push(f64::NAN);
                continue;
            };
            let min = samples[r].iter().copied().fold(f64::INFINITY, f64::min);
            let max = samples[r].iter().copied().fold(0.0, f64::max);
            table.row(vec![
                C::text(op_name),
                C::text(hosts[i].1),
                C::num(medians[r], 1),
                C::num(tokio.map_or(f64::NAN, |t| medians[r] / t), 2),
                C::num(min, 1),
                C::num(max, 1),
            ]);
            series.push(medians[r]);
        }
    }
    table.print();
    let csv = table.write_csv("overhead.csv");
    let svg = common::bar_chart(
        "overhead.svg",
        "clockworker overhead: ns per operation (median of interleaved rounds)",
        &[Panel {
            title: "ns per operation, lower is better".into(),
            y_label: "ns/op (log scale)".into(),
            categories: ops.iter().map(|o| o.1.to_string()).collect(),
            series: hosts
                .iter()
                .zip(panel_series)
                .map(|(h, v)| Series::new(h.1, v))
                .collect(),
            log_y: true,
        }],
    );
    println!("\nwrote {} and {}", csv.display(), svg.display());
}
