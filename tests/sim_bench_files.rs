//! The workloads of our benches (`sims/*.toml`) load, run, and show what their benches
//! are about (feature `sim`). Deterministic: virtual time, fixed seeds.
#![cfg(feature = "sim")]

use clockworker::sim::{simulate, Report, Workload};

fn load(name: &str) -> Workload {
    let path = format!("{}/sims/{name}.toml", env!("CARGO_MANIFEST_DIR"));
    Workload::load(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn run(w: &Workload) -> Report {
    simulate(w, w.seed()).unwrap()
}

#[test]
fn fairness_splits_one_two_four_eight_within_half_a_point() {
    let report = run(&load("fairness"));
    for (q, weight) in report.queues.iter().zip([1.0, 2.0, 4.0, 8.0]) {
        let due = weight / 15.0;
        let off = (q.cpu_share - due).abs() * 100.0;
        assert!(off < 0.5, "{}: {:.3} vs {due:.3}", q.name, q.cpu_share);
    }
}

#[test]
fn priority_requests_keep_their_latency_under_background_load() {
    let mut w = load("priority");
    w.set("duration_ms", "1000").unwrap();
    let loaded = run(&w);
    let request = loaded.class("fg", "request").unwrap();
    assert!(request.completed >= 890, "{}", request.completed);
    // The background still gets the CPU the requests leave (about 40%).
    let bg = &loaded.queues[1];
    assert!(bg.cpu_share > 0.3, "{}", bg.cpu_share);
    // Without its weight advantage (fg 1 : bg 1, eight busy tasks) requests wait more.
    w.set("queue.fg.weight", "1").unwrap();
    let equal = run(&w);
    let equal_p99 = equal.class("fg", "request").unwrap().latency.p99;
    assert!(
        equal_p99 > request.latency.p99,
        "{equal_p99:?} vs {:?}",
        request.latency.p99
    );
}

#[test]
fn tail_las_serves_thin_tasks_ahead_of_fat_ones() {
    let mut w = load("tail");
    w.set("duration_ms", "2000").unwrap();
    let las = run(&w);
    w.set("queue.q.scheduler", "runnable_fifo").unwrap();
    let fifo = run(&w);
    let thin = |r: &Report| r.class("q", "thin").unwrap().latency.p99;
    let fat = |r: &Report| r.class("q", "fat").unwrap().latency.p99;
    assert!(
        thin(&las) * 2 < thin(&fifo),
        "{:?} vs {:?}",
        thin(&las),
        thin(&fifo)
    );
    assert!(
        fat(&las) > fat(&fifo),
        "{:?} vs {:?}",
        fat(&las),
        fat(&fifo)
    );
}
