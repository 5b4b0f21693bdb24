//! `with_host_poll_interval`: while the running queue is outranked by a queue whose
//! tasks wait on something, the run loop returns to the host every host-poll interval
//! instead of every `driver_yield`, so those tasks' wakes (sockets, timers) are seen
//! sooner. Measured by the number of returns to the host (`driver_yields`) while a
//! background task keeps the loop busy: behaviour, with wide margins, not speed.

mod common;

use std::future::pending;
use std::time::{Duration, Instant};

use clockworker::{yield_maybe, ExecutorBuilder};
use common::{runtime, spin, Q};

const BUSY_FOR: Duration = Duration::from_millis(200);
const DRIVER_YIELD: Duration = Duration::from_millis(40);
const HOST_POLL: Duration = Duration::from_millis(2);

/// Runs a CPU-bound Bg task for `BUSY_FOR` (Fg weight `fg_weight`, Bg weight 4), with
/// one Fg task parked forever when `fg_parked`; returns the executor's driver yields.
fn driver_yields(fg_weight: u32, fg_parked: bool) -> u64 {
    let executor = ExecutorBuilder::new()
        .with_queue(Q::Fg, fg_weight)
        .with_queue(Q::Bg, 4)
        .with_driver_yield(DRIVER_YIELD)
        .with_host_poll_interval(HOST_POLL)
        .build()
        .unwrap();
    let fg = executor.queue(Q::Fg).unwrap();
    let bg = executor.queue(Q::Bg).unwrap();
    let parked = fg_parked.then(|| fg.spawn(pending::<()>()));
    runtime().block_on(executor.run_until(async move {
        bg.spawn(async {
            let start = Instant::now();
            while start.elapsed() < BUSY_FOR {
                spin(Duration::from_micros(50));
                yield_maybe().await;
            }
        })
        .await
        .unwrap();
    }));
    if let Some(parked) = parked {
        parked.abort();
    }
    executor.stats().driver_yields
}

#[test]
fn an_outranking_queue_with_parked_tasks_shortens_the_turns() {
    let short = driver_yields(8, true);
    // 200 ms at one return per 2 ms is ~100; an OS stall only lowers it.
    assert!(
        short >= 30,
        "only {short} returns to the host with Fg parked"
    );
}

#[test]
fn nothing_parked_or_nothing_outranking_keeps_driver_yield_turns() {
    // 200 ms at one return per 40 ms is ~5.
    let nothing_parked = driver_yields(8, false);
    assert!(
        nothing_parked <= 15,
        "{nothing_parked} returns with nothing parked"
    );
    let lower_weight_parked = driver_yields(1, true);
    assert!(
        lower_weight_parked <= 15,
        "{lower_weight_parked} returns although the parked queue does not outrank Bg"
    );
}
