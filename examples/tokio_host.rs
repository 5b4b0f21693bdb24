//! clockworker on tokio: a current_thread runtime with a `LocalSet`, the two layouts.
//!
//! 1. `run_until` as the `LocalSet`'s future (recommended): each `driver_yield` goes
//!    back to tokio's `block_on`, which polls its I/O driver and timers first.
//! 2. `executor.run()` spawned as one `LocalSet` task beside others, ended with
//!    `shutdown()`.
//!
//! In both, a `LocalSet` ticker on a 1 ms tokio timer keeps ticking while the
//! clockworker queues are CPU-bound; the program prints how often.
//!
//! `cargo run --release --example tokio_host`

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use clockworker::{yield_maybe, Executor, ExecutorBuilder};

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Queue {
    Foreground,
    Background,
}

fn spin(d: Duration) {
    let start = Instant::now();
    while start.elapsed() < d {
        std::hint::spin_loop();
    }
}

fn new_executor() -> Rc<Executor<Queue>> {
    ExecutorBuilder::new()
        .with_queue(Queue::Foreground, 8)
        .with_queue(Queue::Background, 1)
        .with_driver_yield(Duration::from_micros(500))
        .build()
        .expect("valid configuration")
}

/// A tokio task outside clockworker: counts 1 ms timer ticks and the longest gap.
#[derive(Clone, Default)]
struct Ticker {
    ticks: Rc<Cell<u32>>,
    max_gap: Rc<Cell<Duration>>,
    stop: Rc<Cell<bool>>,
}

impl Ticker {
    fn spawn_local() -> Self {
        let ticker = Ticker::default();
        let t = ticker.clone();
        tokio::task::spawn_local(async move {
            let mut last = Instant::now();
            while !t.stop.get() {
                tokio::time::sleep(Duration::from_millis(1)).await;
                t.max_gap.set(t.max_gap.get().max(last.elapsed()));
                last = Instant::now();
                t.ticks.set(t.ticks.get() + 1);
            }
        });
        ticker
    }

    /// Stops it; returns (ticks, longest gap).
    fn stop(&self) -> (u32, Duration) {
        self.stop.set(true);
        (self.ticks.get(), self.max_gap.get())
    }
}

/// 100 ms of CPU-bound background work and a foreground task using tokio's timer and
/// channels; returns what the foreground task measured.
async fn workload(executor: &Executor<Queue>) -> Duration {
    let bg = executor.queue(Queue::Background).unwrap();
    let fg = executor.queue(Queue::Foreground).unwrap();
    let compaction = bg.spawn(async {
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(100) {
            spin(Duration::from_micros(50));
            yield_maybe().await;
        }
    });
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Instant>(16);
    let request = fg.spawn(async move {
        let mut worst = Duration::ZERO;
        while let Some(sent) = rx.recv().await {
            worst = worst.max(sent.elapsed());
        }
        worst
    });
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(4)).await;
        tx.send(Instant::now()).await.unwrap();
    }
    drop(tx);
    let worst = request.await.unwrap();
    compaction.await.unwrap();
    worst
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");

    // Layout 1: run_until on top of the LocalSet.
    let local = tokio::task::LocalSet::new();
    let executor = new_executor();
    let (worst, ticks, gap) = local.block_on(&rt, async {
        let ticker = Ticker::spawn_local();
        let worst = executor.run_until(workload(&executor)).await;
        let (ticks, gap) = ticker.stop();
        (worst, ticks, gap)
    });
    println!(
        "run_until on a LocalSet: worst foreground wake-up {worst:?}; LocalSet ticker {ticks} ticks, longest gap {gap:?}; {:?}",
        executor.stats()
    );

    // Layout 2: run() as one LocalSet task, shutdown() at the end.
    let local = tokio::task::LocalSet::new();
    let executor = new_executor();
    let (worst, ticks, gap) = local.block_on(&rt, async {
        let ticker = Ticker::spawn_local();
        let runner = tokio::task::spawn_local({
            let executor = executor.clone();
            async move { executor.run().await }
        });
        let worst = workload(&executor).await;
        let (ticks, gap) = ticker.stop();
        executor.shutdown();
        runner.await.unwrap();
        (worst, ticks, gap)
    });
    println!(
        "run() spawned on a LocalSet: worst foreground wake-up {worst:?}; LocalSet ticker {ticks} ticks, longest gap {gap:?}; {:?}",
        executor.stats()
    );
}
