//! One seed gives one result, bit for bit; another seed another (feature `sim`).
#![cfg(feature = "sim")]

use clockworker::sim::{simulate, Report, Workload};

/// Everything a report says except the wall time it took.
fn fingerprint(report: &Report) -> String {
    let mut out = format!("{:?} {:?}\n", report.host, report.executor);
    for q in &report.queues {
        out += &format!(
            "{} {} {:?} {}\n",
            q.name, q.cpu_share, q.service_time, q.completed
        );
        for c in &q.classes {
            out += &format!(
                "{} {} {} {:?} {:?} {:?}\n",
                c.name, c.completed, c.unfinished, c.latency, c.queue_delay, c.latencies
            );
        }
    }
    out
}

/// Two queues, random shapes, groups, sleeps and yields: every source of randomness.
const MIXED: &str = r#"duration_ms = 300
warmup_ms = 20

[[queue]]
name = "fg"
weight = 4

[[queue.class]]
name = "req"
arrival = { kind = "poisson", rate_per_s = 2000 }
segments = [1, 3]
cpu = { dist = "lognormal", median_us = 60, sigma = 0.8 }
between = "sleep"
wait = { dist = "exponential", mean_us = 300 }
group_per_task = true

[[queue.class]]
name = "client"
arrival = { kind = "closed", clients = 3, think = { dist = "uniform", min_us = 100, max_us = 900 } }
cpu = { dist = "exponential", mean_us = 80 }
chunk_us = 20
after = { dist = "uniform", min_us = 50, max_us = 150 }

[[queue]]
name = "bg"
weight = 1
scheduler = "las"

[[queue.class]]
name = "batch"
arrival = { kind = "busy", tasks = 3 }
cpu = { dist = "uniform", min_us = 100, max_us = 500 }
chunk_us = 50
group = "tenant"

[[queue.class]]
name = "burst"
arrival = { kind = "bursts", every_ms = 7, size = 4 }
cpu = { dist = "fixed", us = 30 }
between = "yield_now"
segments = 2
"#;

#[test]
fn the_same_seed_gives_the_same_report() {
    let workload = Workload::from_toml(MIXED).unwrap();
    let (first, second) = (
        simulate(&workload, 42).unwrap(),
        simulate(&workload, 42).unwrap(),
    );
    // What `simulate` prints, too (the wall time is left out of it).
    assert_eq!(first.to_string(), second.to_string());
    let a = fingerprint(&first);
    let b = fingerprint(&second);
    assert_eq!(a, b);
    let c = fingerprint(&simulate(&workload, 43).unwrap());
    assert_ne!(a, c, "the seed must matter");
}

#[test]
fn every_class_of_the_mixed_workload_gets_work_done() {
    let report = simulate(&Workload::from_toml(MIXED).unwrap(), 1).unwrap();
    for q in &report.queues {
        for c in &q.classes {
            assert!(c.completed > 10, "{}/{}: {}", q.name, c.name, c.completed);
        }
    }
}
