//! Stats per phase and per tenant: the difference of two snapshots, and the figures of
//! each group, add up against the work the test counted itself.

mod common;

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use clockworker::{yield_now, ExecutorBuilder, JoinError, Log2Histogram};
use common::{block_on_local, spin};

/// Spawns `tasks` tasks through `queue`, each polled `polls` times, spinning `spin_us`
/// µs per poll; returns how many polls ran.
fn phase(
    executor: &clockworker::Executor<&'static str>,
    queue: &clockworker::QueueHandle<&'static str>,
    tasks: usize,
    polls: usize,
    spin_us: u64,
) -> u64 {
    let counted = Rc::new(Cell::new(0u64));
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let counted = counted.clone();
            queue.spawn(async move {
                for poll in 0..polls {
                    counted.set(counted.get() + 1);
                    spin(Duration::from_micros(spin_us));
                    if poll + 1 < polls {
                        yield_now().await;
                    }
                }
            })
        })
        .collect();
    block_on_local(executor.run_until(common::outputs_of(handles)));
    counted.get()
}

#[test]
fn a_snapshot_difference_is_the_work_of_the_phase() {
    let _watchdog = common::watchdog();
    let executor = ExecutorBuilder::new().with_queue("q", 1).build().unwrap();
    let queue = executor.queue("q").unwrap();
    phase(&executor, &queue, 7, 2, 0);
    let (queue_before, executor_before) = (executor.queue_stats("q").unwrap(), executor.stats());

    let polls = phase(&executor, &queue, 5, 3, 200);
    let queue_phase = executor.queue_stats("q").unwrap() - queue_before.clone();
    let executor_phase = executor.stats() - executor_before;

    assert_eq!(polls, 15);
    assert_eq!(queue_phase.polls, polls);
    assert_eq!((queue_phase.spawned, queue_phase.completed), (5, 5));
    assert_eq!(queue_phase.poll_time.count(), polls);
    assert_eq!(queue_phase.queue_delay.count(), polls);
    assert_eq!(executor_phase.polls, polls);
    // 15 polls of at least 200 µs each: the phase's CPU time, and none of the first.
    assert!(
        queue_phase.service_time >= Duration::from_micros(3_000),
        "{queue_phase}"
    );
    assert_eq!(executor_phase.busy_time, queue_phase.service_time);
    // The phase's polls all took 200 µs or more: no sample of the first phase's short
    // polls is left in the difference.
    let shortest = queue_phase.poll_time.buckets().next().unwrap().0;
    assert!(
        shortest >= Duration::from_micros(100),
        "{}",
        queue_phase.poll_time
    );
    // `since` and `-` agree, and a snapshot minus itself is empty.
    let now = executor.queue_stats("q").unwrap();
    assert_eq!(now.since(&queue_before).polls, queue_phase.polls);
    assert_eq!((now.clone() - now).poll_time, Log2Histogram::default());
}

#[test]
fn group_stats_add_up_per_tenant() {
    let _watchdog = common::watchdog();
    let executor = ExecutorBuilder::new()
        .with_queue("api", 1)
        .with_panic_on_task_panic(false)
        .build()
        .unwrap();
    let api = executor.queue("api").unwrap();
    let (a, b) = (api.group("tenant-a"), api.group("tenant-b"));
    common::quiet_panics(&["on purpose"]);

    // tenant-a's polls spin 2 ms each: 24 ms in all, well above what tenant-b's
    // panicking poll costs even on a loaded machine (a debug build's unwinding took
    // over 3.6 ms once, when they spun 300 µs).
    let a_polls = phase(&executor, &a, 4, 3, 2_000);
    let b_polls = phase(&executor, &b, 2, 1, 0);
    let panicked = b.spawn(async { panic!("on purpose") });
    let parked = b.spawn(std::future::pending::<()>());
    block_on_local(executor.run_until(async {
        assert!(panicked.await.unwrap_err().is_panic());
        yield_now().await;
        parked.abort();
        assert!(matches!(parked.await, Err(JoinError::Cancelled)));
    }));

    let (sa, sb) = (a.group_stats().unwrap(), b.group_stats().unwrap());
    assert_eq!((sa.spawned, sa.completed, sa.polls), (4, 4, a_polls));
    assert_eq!(a_polls, 12);
    assert_eq!(
        (sb.spawned, sb.completed, sb.panicked, sb.cancelled),
        (4, 2, 1, 1)
    );
    assert_eq!(
        sb.polls,
        b_polls + 2,
        "the panicking poll and the parked one count"
    );
    assert_eq!(sa.queue_delay.count(), sa.polls);
    assert!(sa.service_time >= Duration::from_micros(12 * 2_000), "{sa}");
    assert!(sb.service_time < sa.service_time, "{sb}\n{sa}");
    // The queue's figures are the sum of its groups' (every task here has a group),
    // but for its CPU time, which also holds the drop of the aborted task's future.
    let queue = executor.queue_stats("api").unwrap();
    assert_eq!(queue.polls, sa.polls + sb.polls);
    assert_eq!(queue.spawned, sa.spawned + sb.spawned);
    assert!(queue.service_time >= sa.service_time + sb.service_time);
    // The executor finds the same account by key and group.
    let found = executor.group_stats("api", "tenant-a").unwrap();
    assert_eq!((found.group, found.polls), (sa.group, sa.polls));
    assert!(executor.group_stats("api", "nobody").is_none());
    // A group's phase: the difference of two of its snapshots.
    let before = a.group_stats().unwrap();
    phase(&executor, &a, 1, 2, 0);
    let later = a.group_stats().unwrap() - before;
    assert_eq!((later.spawned, later.polls), (1, 2));
}

#[test]
fn display_prints_quantiles_as_durations() {
    let _watchdog = common::watchdog();
    let executor = ExecutorBuilder::new().with_queue("q", 3).build().unwrap();
    let queue = executor.queue("q").unwrap();
    phase(&executor, &queue, 3, 2, 50);
    let text = executor.queue_stats("q").unwrap().to_string();
    assert!(
        text.starts_with("queue \"q\" (weight 3): 3 spawned, 3 completed"),
        "{text}"
    );
    assert!(text.contains("poll time: 6 samples, p50 ≤ "), "{text}");
    assert!(text.contains("µs"), "{text}");
    let text = executor.stats().to_string();
    assert!(text.starts_with("6 polls, busy "), "{text}");
    let tenant = queue.group(9);
    phase(&executor, &tenant, 1, 1, 0);
    let text = tenant.group_stats().unwrap().to_string();
    assert!(
        text.contains("of queue \"q\": 1 spawned, 1 completed"),
        "{text}"
    );
}

#[test]
fn quantiles_outside_zero_to_one_are_refused() {
    let _watchdog = common::watchdog();
    let executor = ExecutorBuilder::new().with_queue("q", 1).build().unwrap();
    let queue = executor.queue("q").unwrap();
    phase(&executor, &queue, 2, 1, 0);
    let histogram = executor.queue_stats("q").unwrap().poll_time;
    assert!(histogram.quantile(0.0).is_some());
    assert!(histogram.quantile(1.0).is_some());
    for q in [1.5, -0.1, f64::NAN, f64::INFINITY] {
        assert_eq!(histogram.quantile(q), None, "q = {q}");
    }
}

/// A group's queue delay is the time its tasks waited to be polled: a tenant's task
/// spawned behind a task that spins 20 ms waits at least that long.
#[test]
fn group_queue_delay_counts_the_wait_behind_other_tasks() {
    let _watchdog = common::watchdog();
    let executor = ExecutorBuilder::new().with_queue("api", 1).build().unwrap();
    let api = executor.queue("api").unwrap();
    let tenant = api.group("tenant");
    let hog = api.spawn(async { spin(Duration::from_millis(20)) });
    let light = tenant.spawn(async {});
    block_on_local(executor.run_until(async {
        hog.await.unwrap();
        light.await.unwrap();
    }));
    let waited = tenant
        .group_stats()
        .unwrap()
        .queue_delay
        .quantile(1.0)
        .unwrap();
    assert!(
        waited >= Duration::from_millis(10),
        "the tenant's task waited {waited:?} behind a 20 ms poll"
    );
}
