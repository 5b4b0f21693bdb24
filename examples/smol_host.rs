//! clockworker on smol's building blocks: `async_io::block_on` (which drives smol's
//! reactor and timers on this thread) with `run_until`, and an
//! `async_executor::LocalExecutor` with `executor.run()` as one of its tasks.
//!
//! Timers (`async_io::Timer`) and channels (`async_channel`) work inside clockworker
//! tasks; CPU-bound work yields with `yield_maybe()`.
//!
//! `cargo run --release --example smol_host`

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use async_executor::LocalExecutor;
use async_io::Timer;
use clockworker::{yield_maybe, ExecutorBuilder};

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

fn main() {
    let executor = ExecutorBuilder::new()
        .with_queue(Queue::Foreground, 8)
        .with_queue(Queue::Background, 1)
        .build()
        .expect("valid configuration");
    let fg = executor.queue(Queue::Foreground).unwrap();
    let bg = executor.queue(Queue::Background).unwrap();

    // 1. async_io::block_on + run_until.
    let (requests, chunks) = async_io::block_on(executor.run_until(async {
        let chunks = Rc::new(Cell::new(0u32));
        let compaction = bg.spawn({
            let chunks = chunks.clone();
            async move {
                let start = Instant::now();
                while start.elapsed() < Duration::from_millis(50) {
                    spin(Duration::from_micros(50));
                    chunks.set(chunks.get() + 1);
                    yield_maybe().await;
                }
            }
        });
        let (tx, rx) = async_channel::bounded::<u32>(8);
        let server = fg.spawn(async move {
            let mut served = 0;
            while let Ok(_request) = rx.recv().await {
                served += 1;
            }
            served
        });
        for i in 0..20 {
            Timer::after(Duration::from_millis(2)).await;
            tx.send(i).await.unwrap();
        }
        drop(tx);
        let served = server.await.unwrap();
        compaction.await.unwrap();
        (served, chunks.get())
    }));
    println!(
        "async_io::block_on + run_until: {requests} requests served beside {chunks} background chunks; {:?}",
        executor.stats()
    );

    // 2. run() as a task of smol's LocalExecutor, beside a ticker of its own.
    let local = Rc::new(LocalExecutor::new());
    let ticks = async_io::block_on(local.run(async {
        let ticks = Rc::new(Cell::new(0u32));
        let ticker = local.spawn({
            let ticks = ticks.clone();
            async move {
                for _ in 0..20 {
                    Timer::after(Duration::from_millis(1)).await;
                    ticks.set(ticks.get() + 1);
                }
            }
        });
        let runner = local.spawn({
            let executor = executor.clone();
            async move { executor.run().await }
        });
        let busy = bg.spawn(async {
            let start = Instant::now();
            while start.elapsed() < Duration::from_millis(50) {
                spin(Duration::from_micros(50));
                yield_maybe().await;
            }
        });
        busy.await.unwrap();
        ticker.await;
        executor.shutdown();
        runner.await;
        ticks.get()
    }));
    println!("LocalExecutor with run() as a task: ticker beside it ticked {ticks} times");
}
