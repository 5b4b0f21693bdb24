//! LAS counts a task's service per burst (`LAS::new`): a long-lived task woken from
//! outside (a dispatcher reading a channel) ranks as a fresh task again, while a task
//! that only yields keeps counting. `LAS::cumulative` keeps the classic rule.
//!
//! Order-based, no timing thresholds: what is checked is who runs first.

mod common;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use clockworker::scheduler::LAS;
use clockworker::{yield_now, ExecutorBuilder};
use common::{block_on_local, spin};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    /// A poll of fat task `n`.
    Fat(u8),
    /// A fat task sent the dispatcher a message.
    Sent,
    /// The dispatcher took a message.
    Received,
}

/// A dispatcher that has used 6 ms of CPU over earlier messages, then three fat tasks
/// (200 µs per poll, yielding between polls, 2 ms in all); the first fat task sends the
/// dispatcher a message after its third poll. Returns how many fat polls ran between
/// the send and the dispatcher taking the message.
fn fat_polls_before_the_dispatcher_runs(las: LAS) -> usize {
    let executor = ExecutorBuilder::new()
        .with_queue_scheduler(0u8, 1, las)
        .build()
        .unwrap();
    let queue = executor.queue(0).unwrap();
    let log = Rc::new(RefCell::new(Vec::new()));
    let (to_dispatcher, mut inbox) = tokio::sync::mpsc::unbounded_channel::<()>();
    let dispatcher = queue.spawn({
        let log = log.clone();
        async move {
            let mut received = 0;
            while inbox.recv().await.is_some() {
                received += 1;
                if received <= 6 {
                    spin(Duration::from_millis(1)); // warm-up: 6 ms of service
                } else {
                    log.borrow_mut().push(Event::Received);
                }
            }
        }
    });
    block_on_local(executor.run_until(async {
        // Warm-up: six messages, each a wake from outside the dispatcher.
        for _ in 0..6 {
            to_dispatcher.send(()).unwrap();
            yield_now().await;
            tokio::task::yield_now().await;
        }
        let fat: Vec<_> = (0..3u8)
            .map(|n| {
                let (log, to_dispatcher) = (log.clone(), to_dispatcher.clone());
                queue.spawn(async move {
                    for poll in 0..10 {
                        log.borrow_mut().push(Event::Fat(n));
                        spin(Duration::from_micros(200));
                        if n == 0 && poll == 2 {
                            log.borrow_mut().push(Event::Sent);
                            to_dispatcher.send(()).unwrap();
                        }
                        yield_now().await;
                    }
                })
            })
            .collect();
        for task in fat {
            task.await.unwrap();
        }
        drop(to_dispatcher);
    }));
    block_on_local(executor.run_until(dispatcher)).unwrap();
    let log = log.borrow();
    let sent = log.iter().position(|e| *e == Event::Sent).expect("sent");
    let received = log
        .iter()
        .position(|e| *e == Event::Received)
        .expect("received");
    assert!(received > sent, "{log:?}");
    log[sent..received]
        .iter()
        .filter(|e| matches!(e, Event::Fat(_)))
        .count()
}

#[test]
fn a_dispatcher_woken_from_outside_runs_before_fat_tasks() {
    let _watchdog = common::watchdog();
    let waited = fat_polls_before_the_dispatcher_runs(LAS::new());
    assert_eq!(waited, 0, "fat polls ran before the dispatcher's new burst");
}

#[test]
fn under_the_cumulative_rule_the_dispatcher_waits_behind_fat_tasks() {
    let _watchdog = common::watchdog();
    // The classic rule ranks the dispatcher by its 6 ms of past service: behind the
    // fat tasks (at most 2 ms each) until they finish or the starvation guard (one
    // pop in 16) serves it.
    let waited = fat_polls_before_the_dispatcher_runs(LAS::cumulative());
    assert!(
        waited >= 1,
        "the dispatcher ran at once under the cumulative rule"
    );
}

#[test]
fn a_task_that_only_yields_keeps_its_service() {
    let _watchdog = common::watchdog();
    // A hog yields after every 300 µs; a second task arrives once the hog has used
    // about 1.5 ms and runs 100 µs per poll. If yielding reset the hog's service, the
    // two would alternate; under the burst rule the newcomer runs all its polls first.
    let executor = ExecutorBuilder::new()
        .with_queue_scheduler(0u8, 1, LAS::new().with_starvation_guard(0))
        .build()
        .unwrap();
    let queue = executor.queue(0).unwrap();
    let log = Rc::new(RefCell::new(Vec::new()));
    let hog = queue.spawn({
        let (log, queue) = (log.clone(), queue.clone());
        async move {
            let mut newcomer = None;
            for poll in 0..12 {
                log.borrow_mut().push('h');
                spin(Duration::from_micros(300));
                if poll == 4 {
                    let log = log.clone();
                    newcomer = Some(queue.spawn(async move {
                        for _ in 0..4 {
                            log.borrow_mut().push('n');
                            spin(Duration::from_micros(100));
                            yield_now().await;
                        }
                    }));
                }
                yield_now().await;
            }
            newcomer.unwrap().await.unwrap();
        }
    });
    block_on_local(executor.run_until(hog)).unwrap();
    let log: String = log.borrow().iter().collect();
    assert_eq!(
        log, "hhhhhnnnnhhhhhhh",
        "the newcomer's polls all ran before the hog's"
    );
}
