//! Preemption between queues, seen from a task: a task of the running queue spawns a
//! task on another queue, then calls `yield_maybe()`. Slices and turns are made 30 s
//! or longer, so the only reason for `yield_maybe` to give way is a preemption; the
//! tests check the order in which the two tasks ran, nothing timed.
//!
//! - a queue with an earlier virtual deadline preempts, and `yield_maybe` gives way
//!   to it at once;
//! - on a deadline tie the running queue keeps its slice;
//! - a latency queue preempts on arrival although its deadline is later.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use clockworker::{yield_maybe, Executor, ExecutorBuilder, JoinHandle};

mod common;

type Log = Rc<RefCell<Vec<&'static str>>>;

/// Runs the scenario on `builder` (queue 0 runs first; the newcomer goes to queue 1)
/// and returns the order of events.
fn newcomer_order(builder: ExecutorBuilder<u8>) -> Vec<&'static str> {
    let executor = builder
        .with_sched_latency(Duration::from_secs(60))
        .with_driver_yield(Duration::from_secs(60))
        .build()
        .unwrap();
    let log: Log = Rc::default();
    let running = spawn_running_task(&executor, &log);
    common::runtime()
        .block_on(executor.run_until(running))
        .unwrap();
    let log = log.borrow().clone();
    log
}

/// The task of queue 0 that spawns the newcomer on queue 1, then calls
/// `yield_maybe()`, logging each step.
fn spawn_running_task(executor: &Executor<u8>, log: &Log) -> JoinHandle<()> {
    let newcomer_queue = executor.queue(1).unwrap();
    executor.queue(0).unwrap().spawn({
        let log = log.clone();
        async move {
            let newcomer = newcomer_queue.spawn({
                let log = log.clone();
                async move { log.borrow_mut().push("newcomer ran") }
            });
            log.borrow_mut().push("spawned");
            yield_maybe().await;
            log.borrow_mut().push("running task went on");
            newcomer.await.unwrap();
        }
    })
}

const PREEMPTED: [&str; 3] = ["spawned", "newcomer ran", "running task went on"];
const KEPT: [&str; 3] = ["spawned", "running task went on", "newcomer ran"];

/// Weight 100 against 1: the newcomer's virtual deadline is 100 times earlier.
#[test]
fn yield_maybe_gives_way_to_a_queue_with_an_earlier_deadline() {
    let _watchdog = common::watchdog();
    let builder = ExecutorBuilder::new()
        .with_queue(0u8, 1)
        .with_queue(1u8, 100);
    assert_eq!(newcomer_order(builder), PREEMPTED);
}

/// Equal weights, and the running queue has been charged nothing yet: both deadlines
/// are equal, and a tie does not preempt.
#[test]
fn a_deadline_tie_does_not_preempt() {
    let _watchdog = common::watchdog();
    let builder = ExecutorBuilder::new().with_queue(0u8, 1).with_queue(1u8, 1);
    assert_eq!(newcomer_order(builder), KEPT);
}

/// The smallest step off the tie: weight 2 against 1 preempts.
#[test]
fn just_off_the_tie_preempts() {
    let _watchdog = common::watchdog();
    let builder = ExecutorBuilder::new().with_queue(0u8, 1).with_queue(1u8, 2);
    assert_eq!(newcomer_order(builder), PREEMPTED);
}

/// A latency queue of weight 1 and a 100 ms bound against a weight-10,000 queue: its
/// deadline (100 ms of virtual time) is far later than the running queue's (30 s /
/// 10,000 = 3 ms), yet it is served at the next poll boundary.
#[test]
fn a_latency_queue_preempts_although_its_deadline_is_later() {
    let _watchdog = common::watchdog();
    let builder = ExecutorBuilder::new()
        .with_queue(0u8, 10_000)
        .with_queue_latency(1u8, 1, Duration::from_millis(100));
    assert_eq!(newcomer_order(builder), PREEMPTED);
}

/// The same queue without the latency bound keeps waiting for its deadline.
#[test]
fn the_same_queue_without_a_latency_bound_waits() {
    let _watchdog = common::watchdog();
    let builder = ExecutorBuilder::new()
        .with_queue(0u8, 10_000)
        .with_queue(1u8, 1);
    assert_eq!(newcomer_order(builder), KEPT);
}

/// As above, with a third queue (weight 10,000, a task ready from the start) that
/// waits while queue 0 runs: when the latency queue's arrival ends the slice, the
/// latency queue is picked ahead of it, although both are eligible and the other one
/// has the earlier deadline.
#[test]
fn a_latency_queue_is_picked_ahead_of_an_eligible_queue_with_an_earlier_deadline() {
    let _watchdog = common::watchdog();
    let executor = ExecutorBuilder::new()
        .with_queue(0u8, 10_000)
        .with_queue_latency(1u8, 1, Duration::from_millis(100))
        .with_queue(2u8, 10_000)
        .with_sched_latency(Duration::from_secs(60))
        .with_driver_yield(Duration::from_secs(60))
        .build()
        .unwrap();
    let log: Log = Rc::default();
    let bystander = executor.queue(2).unwrap().spawn({
        let log = log.clone();
        async move { log.borrow_mut().push("bystander ran") }
    });
    let running = spawn_running_task(&executor, &log);
    common::runtime().block_on(executor.run_until(common::outputs_of(vec![running, bystander])));
    let log = log.borrow();
    assert_eq!(log[..2], ["spawned", "newcomer ran"], "{log:?}");
    assert_eq!(log.len(), 4);
}
