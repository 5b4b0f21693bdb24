//! One tenant floods a LAS queue with 1,000 long tasks; another tenant's short tasks
//! still complete within a bound counted in polls (not wall time, which is noisy here).
//!
//! Bound: when a short task is spawned, at most the running poll plus the starvation
//! guard's pops run before it. The 20 short tasks need 20 polls; among the first
//! 20 + g pops at most ceil((20 + g) / 16) go to the guard (default 1 in 16), so
//! g ≤ 2 guard pops and the flood gets at most 1 + 2 = 3 polls while the 20 short
//! tasks are served. Under RunnableFifo the same short tasks wait behind the flood.

mod common;

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use clockworker::scheduler::{RunnableFifo, Scheduler, LAS};
use clockworker::{yield_now, ExecutorBuilder};

const FLOOD_TASKS: usize = 1_000;
const FLOOD_SEGMENTS: usize = 5;
const SHORT_TASKS: usize = 20;
/// The bound derived above.
const MAX_FLOOD_POLLS_WHILE_SHORT_WAIT: u64 = 3;

fn spin(d: Duration) {
    let start = Instant::now();
    while start.elapsed() < d {
        std::hint::spin_loop();
    }
}

/// Returns, for each short task, how many flood polls ran between its spawn and its
/// completion; and the flood's total polls once every task finished.
fn flood_then_short<S: Scheduler>(scheduler: S) -> (Vec<u64>, u64) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let executor = ExecutorBuilder::new()
        .with_queue_scheduler(0u8, 1, scheduler)
        .build()
        .unwrap();
    let queue = executor.queue(0).unwrap();
    rt.block_on(executor.run_until(async move {
        let flood_polls = Rc::new(Cell::new(0u64));
        let flood = queue.group("tenant-a");
        let mut flood_handles = Vec::new();
        for _ in 0..FLOOD_TASKS {
            let polls = flood_polls.clone();
            flood_handles.push(flood.spawn(async move {
                for _ in 0..FLOOD_SEGMENTS {
                    polls.set(polls.get() + 1);
                    spin(Duration::from_micros(20));
                    yield_now().await;
                }
            }));
        }
        // Let the flood get going: ~10 ms of its polls run first. LAS compares the
        // tenants' service in wall time, so the margin must exceed what an OS
        // preemption in the middle of one short task's poll charges tenant b (at 10
        // flood polls, 200 µs, a loaded CI machine broke the bound).
        while flood_polls.get() < 500 {
            yield_now().await;
        }
        let short = queue.group("tenant-b");
        let mut short_handles = Vec::new();
        for _ in 0..SHORT_TASKS {
            let polls = flood_polls.clone();
            let at_spawn = flood_polls.get();
            short_handles.push(short.spawn(async move {
                spin(Duration::from_micros(5));
                polls.get() - at_spawn
            }));
        }
        let mut waits = Vec::new();
        for handle in short_handles {
            waits.push(handle.await.unwrap());
        }
        for handle in flood_handles {
            handle.await.unwrap();
        }
        (waits, flood_polls.get())
    }))
}

#[test]
fn short_tasks_of_another_tenant_overtake_a_flood_under_las() {
    let _watchdog = common::watchdog();
    let (waits, _) = flood_then_short(LAS::new());
    let worst = *waits.iter().max().unwrap();
    assert!(
        worst <= MAX_FLOOD_POLLS_WHILE_SHORT_WAIT,
        "a short task waited for {worst} flood polls (bound {MAX_FLOOD_POLLS_WHILE_SHORT_WAIT}): {waits:?}"
    );
}

#[test]
fn under_fifo_the_same_short_tasks_wait_behind_the_flood() {
    let _watchdog = common::watchdog();
    // The control: shows the test above measures what LAS changes.
    let (waits, _) = flood_then_short(RunnableFifo::new());
    let best = *waits.iter().min().unwrap();
    assert!(
        best > 100 * MAX_FLOOD_POLLS_WHILE_SHORT_WAIT,
        "under FIFO a short task waited only {best} flood polls: {waits:?}"
    );
}

#[test]
fn every_flood_task_completes_under_las() {
    let _watchdog = common::watchdog();
    let (waits, flood_polls) = flood_then_short(LAS::new().with_starvation_guard(4));
    assert_eq!(waits.len(), SHORT_TASKS);
    assert_eq!(flood_polls, (FLOOD_TASKS * FLOOD_SEGMENTS) as u64);
}
