//! clockworker on glommio (io_uring), and glommio's caveat: its preemption timer.
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
