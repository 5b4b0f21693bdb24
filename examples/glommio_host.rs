//! clockworker on glommio (io_uring), and glommio's two caveats: its preemption timer,
//! and wakes from other threads.
//!
//! glommio lets a task queue run until its `preempt_timer` expires (100 ms by default)
//! before it looks at timers and other queues. The clockworker run loop wakes itself at
//! every `driver_yield` and so stays runnable while clockworker is busy: with the
//! default, a glommio timer beside it fires about once per 100 ms. Build the glommio
//! executor with a `preempt_timer` of the order of clockworker's `driver_yield`
//! (1 ms here) and glommio's timers keep their pace.
//!
//! The program runs 100 ms of CPU-bound clockworker work beside a glommio ticker on a
//! 1 ms timer, with both settings, and prints the ticks.
//!
//! glommio 0.9 can also go to sleep with a wake from another thread queued: the woken
//! task then waits for glommio's next timer or I/O event. This is glommio's, not
//! clockworker's: a plain glommio task receiving from another thread stalls the same
//! way. A glommio timer that fires every few milliseconds bounds the wait. The program
//! sends 3,000 values from a thread, 20 times, to a plain glommio task beside a 500 ms
//! glommio ticker, and to a clockworker task beside a ticker of 500 ms and of 2 ms, and
//! prints the longest wait for one value.
//!
//! `cargo run --release --example glommio_host` (Linux with io_uring and at least
//! 512 KiB of locked memory, `ulimit -l`; prints why and exits otherwise).

#[cfg(target_os = "linux")]
mod host {
    use std::cell::Cell;
    use std::rc::Rc;
    use std::time::{Duration, Instant};

    use clockworker::{yield_maybe, ExecutorBuilder};
    use glommio::LocalExecutorBuilder;

    fn spin(d: Duration) {
        let start = Instant::now();
        while start.elapsed() < d {
            std::hint::spin_loop();
        }
    }

    /// 100 ms of busy clockworker work beside a glommio ticker; returns the ticks, or
    /// the reason glommio could not start.
    fn busy_beside_ticker(preempt_timer: Option<Duration>) -> Result<u32, String> {
        let mut builder = LocalExecutorBuilder::default();
        if let Some(t) = preempt_timer {
            builder = builder.preempt_timer(t);
        }
        let handle = builder
            .spawn(|| async {
                let executor = ExecutorBuilder::new()
                    .with_queue("requests", 8)
                    .with_queue("compaction", 1)
                    .build()
                    .expect("valid configuration");
                let ticks = Rc::new(Cell::new(0u32));
                let stop = Rc::new(Cell::new(false));
                let ticker = glommio::spawn_local({
                    let (ticks, stop) = (ticks.clone(), stop.clone());
                    async move {
                        while !stop.get() {
                            glommio::timer::sleep(Duration::from_millis(1)).await;
                            ticks.set(ticks.get() + 1);
                        }
                    }
                });
                // run() as a glommio task beside the ticker.
                let runner = glommio::spawn_local({
                    let executor = executor.clone();
                    async move { executor.run().await }
                });
                let busy = executor.queue("compaction").unwrap().spawn(async {
                    let start = Instant::now();
                    while start.elapsed() < Duration::from_millis(100) {
                        spin(Duration::from_micros(50));
                        yield_maybe().await;
                    }
                });
                // A foreground task on a glommio timer too.
                let request = executor.queue("requests").unwrap().spawn(async {
                    let start = Instant::now();
                    glommio::timer::sleep(Duration::from_millis(5)).await;
                    start.elapsed()
                });
                busy.await.unwrap();
                let slept = request.await.unwrap();
                let during = ticks.get();
                stop.set(true);
                ticker.await;
                executor.shutdown();
                runner.await;
                println!("    5 ms glommio sleep in a clockworker task took {slept:?}");
                during
            })
            .map_err(|e| e.to_string())?;
        handle.join().map_err(|e| e.to_string())
    }

    /// The longest wait for one value, receiving until the channel closes.
    async fn longest_wait(mut rx: tokio::sync::mpsc::Receiver<u32>) -> Duration {
        let mut worst = Duration::ZERO;
        let mut last = Instant::now();
        while rx.recv().await.is_some() {
            worst = worst.max(last.elapsed());
            last = Instant::now();
        }
        worst
    }

    /// `rounds` times, 3,000 values sent from another thread to a receiving task (a
    /// clockworker task, or a plain glommio one), beside a glommio timer that fires
    /// every `tick`; returns the longest wait for one value.
    fn cross_thread_wakes(
        tick: Duration,
        rounds: u32,
        through_clockworker: bool,
    ) -> Result<Duration, String> {
        let mut worst = Duration::ZERO;
        for _ in 0..rounds {
            let handle = LocalExecutorBuilder::default()
                .preempt_timer(Duration::from_millis(1))
                .spawn(move || async move {
                    let ticker = glommio::spawn_local(async move {
                        loop {
                            glommio::timer::sleep(tick).await;
                        }
                    })
                    .detach();
                    let (tx, rx) = tokio::sync::mpsc::channel::<u32>(4);
                    let sender = std::thread::spawn(move || {
                        for i in 0..3_000 {
                            tx.blocking_send(i).expect("receiver alive");
                        }
                    });
                    let worst = if through_clockworker {
                        let executor = ExecutorBuilder::new()
                            .with_queue("requests", 1)
                            .build()
                            .expect("valid configuration");
                        let receiver = executor.queue("requests").unwrap().spawn(longest_wait(rx));
                        executor.run_until(receiver).await.unwrap()
                    } else {
                        longest_wait(rx).await
                    };
                    sender.join().expect("sender thread");
                    ticker.cancel();
                    worst
                })
                .map_err(|e| e.to_string())?;
            worst = worst.max(handle.join().map_err(|e| e.to_string())?);
        }
        Ok(worst)
    }

    pub fn main() {
        for (label, preempt) in [
            ("default preempt_timer (100 ms)", None),
            ("preempt_timer(1 ms)", Some(Duration::from_millis(1))),
        ] {
            println!("glommio, {label}:");
            match busy_beside_ticker(preempt) {
                Ok(ticks) => println!(
                    "    glommio ticker (1 ms timer) during 100 ms of busy clockworker work: {ticks} ticks"
                ),
                Err(reason) => {
                    println!(
                        "skipping: glommio could not start ({reason}); it needs io_uring and a memlock limit of at least 512 KiB (ulimit -l)"
                    );
                    return;
                }
            }
        }
        println!("glommio, 3,000 values from another thread, 20 rounds:");
        for (receiver, tick, through_clockworker) in [
            ("a plain glommio task", Duration::from_millis(500), false),
            ("a clockworker task", Duration::from_millis(500), true),
            ("a clockworker task", Duration::from_millis(2), true),
        ] {
            match cross_thread_wakes(tick, 20, through_clockworker) {
                Ok(worst) => println!(
                    "    to {receiver}, beside a glommio timer every {tick:?}: longest wait for one value {worst:?}"
                ),
                Err(reason) => println!("skipping: glommio could not start ({reason})"),
            }
        }
    }
}

#[cfg(target_os = "linux")]
fn main() {
    host::main();
}

#[cfg(not(target_os = "linux"))]
fn main() {
    println!("skipping: glommio is Linux-only");
}
