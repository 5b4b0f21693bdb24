//! The runs: one function per configuration, each hosting the workload its own way
//! and returning what it measured.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clockworker::{Executor, ExecutorBuilder, QueueHandle};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::common;
use crate::workload::{
    cw_bg, cw_request, generator, tokio_bg, tokio_request, BgCount, Latencies, Request, BG_TASKS, Q,
};

/// Slice bound of the foreground latency queue in `cw latency fg 8 + bg 1`.
pub(crate) const LATENCY_BOUND: Duration = Duration::from_micros(200);

/// What one run measured.
#[derive(Default)]
pub(crate) struct RunResult {
    /// Per request, in µs: (dispatch delay (sent → spawned by the dispatcher), queue
    /// delay (sent → first poll), total latency (sent → done)).
    pub(crate) latencies: Vec<(f64, f64, f64)>,
    pub(crate) bg_segments: u64,
    pub(crate) bg_cpu: Duration,
    /// clockworker only.
    pub(crate) cw: Option<CwDiag>,
}

/// What clockworker's own statistics said about a run.
#[derive(Clone, Copy, Default)]
pub(crate) struct CwDiag {
    pub(crate) fg_delay_p50_us: f64,
    pub(crate) fg_delay_p99_us: f64,
    pub(crate) fg_poll_p99_us: f64,
    pub(crate) bg_poll_p99_us: f64,
    pub(crate) max_driver_gap_us: f64,
    pub(crate) driver_yields: f64,
    pub(crate) fg_share: f64,
}

/// The executor of every clockworker configuration: Fg weight 8 (a latency queue with
/// a `LATENCY_BOUND` slice when `latency_queue`), Bg weight 1, default slices;
/// `PRIO_DRIVER_YIELD_US` and `PRIO_SCHED_LATENCY_US` override `driver_yield` and
/// `sched_latency` (for investigations).
pub(crate) fn cw_executor(latency_queue: bool) -> Rc<Executor<Q>> {
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

/// The result of a run: the latencies, the background work done, and for clockworker
/// the executor's own statistics.
pub(crate) fn run_result(
    lat: &Latencies,
    bg_done: (u64, Duration),
    executor: Option<&Executor<Q>>,
) -> RunResult {
    RunResult {
        latencies: lat.take(),
        bg_segments: bg_done.0,
        bg_cpu: bg_done.1,
        cw: executor.map(cw_diag),
    }
}

pub(crate) fn cw_diag(executor: &Executor<Q>) -> CwDiag {
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

/// tokio: the LocalSet's main future dispatches; with `bg`, eight background tasks
/// share the LocalSet.
pub(crate) fn run_tokio(seconds: f64, bg: bool) -> RunResult {
    let rt = common::tokio_rt();
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
    run_result(&lat, bg_done, None)
}

/// The dispatcher for clockworker: receive requests, spawn them onto Fg, wait for all.
pub(crate) async fn cw_dispatch(
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
pub(crate) fn run_cw_run_until(seconds: f64, bg: bool, latency_queue: bool) -> RunResult {
    let rt = common::tokio_rt();
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
    run_result(&lat, bg_done, Some(&executor))
}

/// clockworker hosted as one task of a `LocalSet`, beside a dispatcher task and a
/// housekeeping ticker: `spawn_local(async move { executor.run().await })`.
pub(crate) fn run_cw_on_localset(seconds: f64) -> RunResult {
    let rt = common::tokio_rt();
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
    run_result(&lat, bg_done, Some(&executor))
}

/// Foreground on this thread's runtime, background on a second runtime and thread.
pub(crate) fn run_two_runtimes(seconds: f64) -> RunResult {
    let count = Arc::new(BgCount::default());
    let c = count.clone();
    let bg_thread = std::thread::spawn(move || {
        let rt = common::tokio_rt();
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
pub(crate) fn run_tokio_fg_with_count(seconds: f64, count: &Arc<BgCount>) -> RunResult {
    let rt = common::tokio_rt();
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
    run_result(&lat, bg_done, None)
}
