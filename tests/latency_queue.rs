//! A latency queue beside 8 saturating background queues: work arriving for it is
//! polled after about one background poll, while the same queue configured as an
//! ordinary queue waits for EEVDF to come round to it.
//!
//! The comparison is relative (same machine, same run), so it holds on a noisy
//! machine; the absolute figures are printed for the record, not asserted.

mod common;

use std::time::{Duration, Instant};

use clockworker::{yield_maybe, ExecutorBuilder};

const BACKGROUND: u8 = 8;
const LATENCY: u8 = 100;

fn spin(d: Duration) {
    let start = Instant::now();
    while start.elapsed() < d {
        std::hint::spin_loop();
    }
}

/// Runs the scenario; returns the latency queue's queue-delay p50 and p99 and the
/// number of its tasks that ran.
fn scenario(latency_queue: bool) -> (Duration, Duration, u64) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let mut builder = ExecutorBuilder::new();
    for q in 0..BACKGROUND {
        builder = builder.with_queue(q, 1);
    }
    builder = if latency_queue {
        builder.with_queue_latency(LATENCY, 1, Duration::from_micros(200))
    } else {
        builder.with_queue(LATENCY, 1)
    };
    let executor = builder.build().unwrap();
    let ex = executor.clone();
    rt.block_on(executor.run_until(async move {
        for q in 0..BACKGROUND {
            let queue = ex.queue(q).unwrap();
            queue.spawn(async {
                loop {
                    spin(Duration::from_micros(50));
                    yield_maybe().await;
                }
            });
        }
        let latency = ex.queue(LATENCY).unwrap();
        let deadline = Instant::now() + Duration::from_millis(400);
        while Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(2)).await;
            latency.spawn(async { spin(Duration::from_micros(20)) });
        }
        let stats = ex.queue_stats(LATENCY).unwrap();
        ex.shutdown();
        (
            stats.queue_delay.quantile(0.5).unwrap_or_default(),
            stats.queue_delay.quantile(0.99).unwrap_or_default(),
            stats.completed,
        )
    }))
}

#[test]
fn latency_queue_is_served_ahead_of_saturating_background_queues() {
    let _watchdog = common::watchdog();
    let (latency_p50, latency_p99, latency_done) = scenario(true);
    let (plain_p50, plain_p99, plain_done) = scenario(false);
    eprintln!(
        "queue delay p50/p99 (log2-bucket upper bounds): latency queue {latency_p50:?}/\
         {latency_p99:?} ({latency_done} tasks), ordinary queue {plain_p50:?}/{plain_p99:?} \
         ({plain_done} tasks)"
    );
    assert!(latency_done > 20 && plain_done > 20, "too few samples");
    // The median, not the p99: with ~100 samples on a shared machine the p99 is the
    // worst OS stall of the run, whichever queue it hit.
    assert!(
        latency_p50 < plain_p50,
        "latency queue p50 {latency_p50:?} not below ordinary queue p50 {plain_p50:?}"
    );
}
