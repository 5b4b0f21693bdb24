//! One workload file per arrival kind (`sims/arrivals/*.toml`), each checked against
//! what its arrivals and shapes imply (feature `sim`).
#![cfg(feature = "sim")]

use std::time::Duration;

use clockworker::sim::{simulate, Report, Workload};

const US: Duration = Duration::from_micros(1);

fn run(file: &str) -> Report {
    let path = format!("{}/sims/arrivals/{file}", env!("CARGO_MANIFEST_DIR"));
    let workload = Workload::load(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    simulate(&workload, workload.seed()).unwrap()
}

#[test]
fn poisson_arrivals_come_at_their_rate_and_rarely_queue() {
    let report = run("poisson.toml");
    let class = report.class("q", "req").unwrap();
    // 2 s at 2,000/s: 4,000 expected, standard deviation ~63.
    assert!(
        (3_750..=4_250).contains(&class.completed),
        "{}",
        class.completed
    );
    // M/D/1 at 10% load: mean wait 50 µs × 0.1 / (2 × 0.9) ≈ 2.8 µs.
    let wait = class.latency.mean.saturating_sub(50 * US);
    assert!(wait > Duration::ZERO && wait < 6 * US, "mean wait {wait:?}");
    assert_eq!(class.latency.p50, 50 * US);
    // Some arrivals do land on a busy core.
    assert!(class.latency.max >= 60 * US, "{:?}", class.latency.max);
}

#[test]
fn constant_arrivals_never_wait() {
    let report = run("constant.toml");
    let class = report.class("q", "req").unwrap();
    assert_eq!(class.completed, 500);
    assert_eq!(class.unfinished, 0);
    assert_eq!(class.latency.p50, 100 * US);
    assert_eq!(class.latency.max, 100 * US);
    assert_eq!(class.queue_delay.max, Duration::ZERO);
}

#[test]
fn a_burst_is_served_one_task_after_another() {
    let report = run("bursts.toml");
    let class = report.class("q", "burst").unwrap();
    assert_eq!(class.completed, 1_000);
    // The k-th task of a burst ends after k × 100 µs.
    assert_eq!(class.latency.p50, 500 * US);
    assert_eq!(class.latency.p90, 900 * US);
    assert_eq!(class.latency.max, 1_000 * US);
    assert_eq!(class.queue_delay.max, 900 * US);
}

#[test]
fn closed_loop_clients_wait_for_their_last_task() {
    let report = run("closed.toml");
    let class = report.class("q", "client").unwrap();
    // All four start together at 1 ms (one think time): 100, 200, 300, 400 µs; then
    // each client's cycle is its task plus 1 ms of thinking.
    assert_eq!(class.latency.max, 400 * US);
    assert!(class.unfinished <= 4, "{} in flight", class.unfinished);
    // About 4 × 1 s / 1.1 ms tasks (fewer: the first cycles queue).
    assert!(
        (3_500..=3_640).contains(&class.completed),
        "{}",
        class.completed
    );
}

#[test]
fn busy_tasks_share_the_core_by_weight() {
    let report = run("busy.toml");
    let share = report.queues[0].cpu_share;
    assert!((share - 0.75).abs() < 0.005, "share {share}");
    assert!(report.class("three", "spin").unwrap().completed > 50_000);
    // Always busy: the loop never idles.
    assert_eq!(report.host.idle_jumps, 0);
}
