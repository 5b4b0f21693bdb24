//! The workload: the request schedule and its generator thread, the foreground and
//! background task bodies for tokio and for clockworker, and their counters.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clockworker::yield_maybe;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

use crate::common::{self, Rng};

pub(crate) const REQUESTS_PER_SECOND: u64 = 1_000;
pub(crate) const BG_TASKS: usize = 8;
/// CPU between two `yield_maybe()` calls inside clockworker.
pub(crate) const CHUNK: Duration = Duration::from_micros(50);
pub(crate) const SEED: u64 = 0x5EED_0001;

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) enum Q {
    Fg,
    Bg,
}

/// One foreground request, as the generator sends it.
pub(crate) struct Request {
    pub(crate) sent: Instant,
    /// Set by the dispatcher when it spawns the request.
    pub(crate) dispatched: Instant,
    pub(crate) segments: Vec<Duration>,
    pub(crate) sleep: Duration,
}

/// The requests of one run: send offsets and shapes, drawn from the fixed seed.
pub(crate) fn schedule(seconds: f64) -> Vec<(Duration, Vec<Duration>, Duration)> {
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
pub(crate) fn generator(seconds: f64) -> (UnboundedReceiver<Request>, std::thread::JoinHandle<()>) {
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

pub(crate) type Latencies = Rc<RefCell<Vec<(f64, f64, f64)>>>;

pub(crate) fn record(lat: &Latencies, req: &Request, first_poll: Instant) {
    let done = Instant::now();
    lat.borrow_mut().push((
        common::micros(req.dispatched - req.sent),
        common::micros(first_poll - req.sent),
        common::micros(done - req.sent),
    ));
}

/// Background counters, shared with the tasks (and across threads for two runtimes).
#[derive(Default)]
pub(crate) struct BgCount {
    pub(crate) segments: AtomicU64,
    pub(crate) cpu_ns: AtomicU64,
    pub(crate) stop: AtomicBool,
}

impl BgCount {
    pub(crate) fn add(&self, seg: Duration) {
        self.segments.fetch_add(1, Ordering::Relaxed);
        self.cpu_ns
            .fetch_add(seg.as_nanos() as u64, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> (u64, Duration) {
        (
            self.segments.load(Ordering::Relaxed),
            Duration::from_nanos(self.cpu_ns.load(Ordering::Relaxed)),
        )
    }
}

// ----- tokio tasks -------------------------------------------------------------------

pub(crate) async fn tokio_request(req: Request, lat: Latencies) {
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

pub(crate) async fn tokio_bg(index: usize, count: Arc<BgCount>) {
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
pub(crate) async fn cw_cpu(d: Duration) {
    let mut left = d;
    while !left.is_zero() {
        let chunk = left.min(CHUNK);
        common::spin(chunk);
        left -= chunk;
        yield_maybe().await;
    }
}

pub(crate) async fn cw_request(req: Request, lat: Latencies) {
    let first = Instant::now();
    for seg in &req.segments {
        cw_cpu(*seg).await;
    }
    tokio::time::sleep(req.sleep).await;
    record(&lat, &req, first);
}

pub(crate) async fn cw_bg(index: usize, count: Arc<BgCount>) {
    let mut rng = Rng::new(SEED ^ ((index as u64 + 1) * 0x1000));
    while !count.stop.load(Ordering::Relaxed) {
        let seg = rng.micros(100, 500);
        cw_cpu(seg).await;
        count.add(seg);
    }
}
