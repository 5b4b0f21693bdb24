//! Spawning and joining: outputs come back through `JoinHandle`, `!Send` futures work,
//! tasks spawn tasks, dropped handles detach, `is_finished`, and many tasks.

mod common;

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

use clockworker::{yield_now, ExecutorBuilder, QueueHandle};
use common::{block_on_local, wait_until, DropCounter, Q};

#[test]
fn outputs_come_back_through_join_handles() {
    let _watchdog = common::watchdog();
    let executor = ExecutorBuilder::new()
        .with_queue(Q::Fg, 2)
        .with_queue(Q::Bg, 1)
        .build()
        .unwrap();
    let fg = executor.queue(Q::Fg).unwrap();
    let bg = executor.queue(Q::Bg).unwrap();
    let (a, b, c) = block_on_local(executor.run_until(async move {
        let a = fg.spawn(async { 41u64 + 1 });
        let b = bg.spawn(async {
            yield_now().await;
            String::from("hello")
        });
        let c = fg.spawn(async {
            tokio::time::sleep(Duration::from_millis(2)).await;
            vec![1, 2, 3]
        });
        let d = bg.spawn(async {});
        // Await in the reverse order of completion on purpose.
        let c = c.await.unwrap();
        let () = d.await.unwrap();
        let b = b.await.unwrap();
        let a = a.await.unwrap();
        (a, b, c)
    }));
    assert_eq!(a, 42);
    assert_eq!(b, "hello");
    assert_eq!(c, vec![1, 2, 3]);
}

#[test]
fn handle_spawned_before_running_resolves_during_run_until() {
    let _watchdog = common::watchdog();
    let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    let q = executor.queue(0).unwrap();
    let h = q.spawn(async { 5 });
    assert!(
        !h.is_finished(),
        "nothing runs before the executor is driven"
    );
    assert_eq!(block_on_local(executor.run_until(h)).unwrap(), 5);
}

#[test]
fn not_send_futures_and_outputs_work() {
    let _watchdog = common::watchdog();
    let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    let q = executor.queue(0).unwrap();
    let shared: Rc<RefCell<Vec<u32>>> = Rc::new(RefCell::new(Vec::new()));
    let out = block_on_local(executor.run_until({
        let shared = shared.clone();
        async move {
            let mut handles = Vec::new();
            for i in 0..4u32 {
                let shared = shared.clone();
                // The future holds an Rc across an await, and returns an Rc.
                handles.push(q.spawn(async move {
                    let local = Rc::new(Cell::new(i));
                    yield_now().await;
                    shared.borrow_mut().push(local.get());
                    Rc::new(local.get() * 10)
                }));
            }
            let mut outs = Vec::new();
            for h in handles {
                let rc: Rc<u32> = h.await.unwrap();
                outs.push(*rc);
            }
            outs
        }
    }));
    assert_eq!(out, vec![0, 10, 20, 30]);
    let mut seen = shared.borrow().clone();
    seen.sort();
    assert_eq!(seen, vec![0, 1, 2, 3]);
}

/// Spawns a binary tree of tasks of `depth` levels below this one, each node spawning
/// its two children (alternating queues) and summing their leaf counts.
fn tree(
    queues: Rc<[QueueHandle<Q>; 2]>,
    depth: u32,
    nodes: Rc<Cell<u32>>,
) -> Pin<Box<dyn Future<Output = u64>>> {
    Box::pin(async move {
        nodes.set(nodes.get() + 1);
        if depth == 0 {
            yield_now().await;
            return 1;
        }
        let left = queues[0].spawn(tree(queues.clone(), depth - 1, nodes.clone()));
        let right = queues[1].spawn(tree(queues.clone(), depth - 1, nodes.clone()));
        left.await.unwrap() + right.await.unwrap()
    })
}

#[test]
fn tasks_spawn_tasks_recursively() {
    let _watchdog = common::watchdog();
    let executor = ExecutorBuilder::new()
        .with_queue(Q::Fg, 1)
        .with_queue(Q::Bg, 1)
        .build()
        .unwrap();
    let queues = Rc::new([
        executor.queue(Q::Fg).unwrap(),
        executor.queue(Q::Bg).unwrap(),
    ]);
    let nodes = Rc::new(Cell::new(0));
    let root = queues[0].spawn(tree(queues.clone(), 8, nodes.clone()));
    let leaves = block_on_local(executor.run_until(root)).unwrap();
    assert_eq!(leaves, 256);
    assert_eq!(nodes.get(), 511);
    let fg = executor.queue_stats(Q::Fg).unwrap();
    let bg = executor.queue_stats(Q::Bg).unwrap();
    assert_eq!(fg.spawned + bg.spawned, 511);
    assert_eq!(fg.completed + bg.completed, 511);
    assert_eq!(executor.stats().live_tasks, 0);
}

#[test]
fn dropping_the_handle_detaches_the_task() {
    let _watchdog = common::watchdog();
    let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    let q = executor.queue(0).unwrap();
    let steps = Rc::new(Cell::new(0));
    let drops = DropCounter::new();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let result = block_on_local(executor.run_until({
        let steps = steps.clone();
        let guard = drops.guard();
        async move {
            let h = q.spawn(async move {
                let _guard = guard;
                for _ in 0..3 {
                    yield_now().await;
                    steps.set(steps.get() + 1);
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
                steps.set(steps.get() + 1);
                tx.send("done").unwrap();
            });
            drop(h);
            // If dropping the handle had cancelled the task, the sender would be dropped
            // and this would be an error.
            rx.await
        }
    }));
    assert_eq!(result, Ok("done"));
    assert_eq!(steps.get(), 4);
    assert_eq!(
        drops.count(),
        1,
        "the finished future is dropped exactly once"
    );
    assert_eq!(executor.queue_stats(0).unwrap().completed, 1);
    assert_eq!(executor.queue_stats(0).unwrap().cancelled, 0);
}

#[test]
fn detached_task_completes_even_when_dropped_before_first_poll() {
    let _watchdog = common::watchdog();
    let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    let q = executor.queue(0).unwrap();
    let ran = Rc::new(Cell::new(false));
    drop(q.spawn({
        let ran = ran.clone();
        async move { ran.set(true) }
    }));
    let ok = block_on_local(executor.run_until({
        let ran = ran.clone();
        wait_until(Duration::from_secs(5), move || ran.get())
    }));
    assert!(ok, "the detached task never ran");
}

#[test]
fn is_finished_before_and_after() {
    let _watchdog = common::watchdog();
    let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    let q = executor.queue(0).unwrap();
    let polled = Rc::new(Cell::new(false));
    let (tx, rx) = tokio::sync::oneshot::channel::<u32>();
    let h = q.spawn({
        let polled = polled.clone();
        async move {
            polled.set(true);
            rx.await.unwrap() * 2
        }
    });
    assert!(!h.is_finished(), "not finished before its first poll");
    let out = block_on_local(executor.run_until(async move {
        assert!(wait_until(Duration::from_secs(5), || polled.get()).await);
        assert!(!h.is_finished(), "not finished while parked on the channel");
        tx.send(21).unwrap();
        assert!(
            wait_until(Duration::from_secs(5), || h.is_finished()).await,
            "is_finished never became true"
        );
        // is_finished does not consume the result.
        assert!(h.is_finished());
        h.await
    }));
    assert_eq!(out.unwrap(), 42);
}

#[test]
fn debug_shows_whether_the_task_finished() {
    let _watchdog = common::watchdog();
    let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    let h = executor.queue(0).unwrap().spawn(async { 1 });
    let before = format!("{h:?}");
    let after = block_on_local(executor.run_until(async move {
        assert!(wait_until(Duration::from_secs(5), || h.is_finished()).await);
        format!("{h:?}")
    }));
    assert_eq!(before, "JoinHandle { finished: false }");
    assert_eq!(after, "JoinHandle { finished: true }");
}

#[test]
fn ten_thousand_tasks_all_complete() {
    let _watchdog = common::watchdog();
    const N: u64 = 10_000;
    let executor = ExecutorBuilder::new()
        .with_queue(Q::Fg, 3)
        .with_queue(Q::Bg, 1)
        .build()
        .unwrap();
    let fg = executor.queue(Q::Fg).unwrap();
    let bg = executor.queue(Q::Bg).unwrap();
    let ran = Rc::new(Cell::new(0u64));
    let sum = block_on_local(executor.run_until({
        let ran = ran.clone();
        async move {
            let handles: Vec<_> = (0..N)
                .map(|i| {
                    let q = if i % 3 == 0 { &bg } else { &fg };
                    let ran = ran.clone();
                    q.spawn(async move {
                        yield_now().await;
                        ran.set(ran.get() + 1);
                        i
                    })
                })
                .collect();
            let mut sum = 0;
            for h in handles {
                sum += h.await.unwrap();
            }
            sum
        }
    }));
    assert_eq!(sum, N * (N - 1) / 2);
    assert_eq!(ran.get(), N);
    let fg = executor.queue_stats(Q::Fg).unwrap();
    let bg = executor.queue_stats(Q::Bg).unwrap();
    assert_eq!(fg.completed + bg.completed, N);
    assert_eq!(bg.completed, N.div_ceil(3));
    assert_eq!(executor.stats().live_tasks, 0);
}
