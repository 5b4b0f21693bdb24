//! The virtual host's rules (feature `sim`): timers and arrivals reach the executor
//! only when its run loop returns to the host, timers fire at the host's resolution,
//! each return costs the model's return cost, and an idle loop jumps to the next event.
#![cfg(feature = "sim")]

mod common;

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use clockworker::sim::{self, Host, HostError, HostModel, Stopped};
use clockworker::{yield_now, Executor, ExecutorBuilder};
use common::sim_work::{busy, US};

/// A task that keeps the loop busy in polls of `chunk` each (`yield_now` after each).
async fn busy_polls(chunk: Duration) {
    loop {
        sim::cpu(chunk).await;
        yield_now().await;
    }
}

/// When a task that slept `d` (spawned at time 0 on an idle executor) runs again.
fn wake_time(model: HostModel, d: Duration) -> Duration {
    let host = Host::new(model).unwrap();
    let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    let task = executor.queue(0).unwrap().spawn(async move {
        sim::sleep(d).await;
        sim::now()
    });
    let woke = host.run(executor.run_until(task), Duration::from_secs(10));
    woke.unwrap().unwrap()
}

/// A host with fine-grained timers and, on it, an executor of one queue that returns
/// to the host every `driver_yield`.
fn fine_host_and_executor(driver_yield: Duration) -> (Host, Rc<Executor<u8>>) {
    let host = Host::new(HostModel::fine()).unwrap();
    let executor = ExecutorBuilder::new()
        .with_queue(0u8, 1)
        .with_driver_yield(driver_yield)
        .build()
        .unwrap();
    (host, executor)
}

#[test]
fn timers_fire_at_the_hosts_resolution() {
    // tokio's wheel rounds a deadline up to the next millisecond.
    assert_eq!(
        wake_time(HostModel::tokio(), 200 * US),
        Duration::from_millis(1)
    );
    assert_eq!(
        wake_time(HostModel::tokio(), 1_000 * US),
        Duration::from_millis(1)
    );
    assert_eq!(
        wake_time(HostModel::tokio(), 1_001 * US),
        Duration::from_millis(2)
    );
    // A fine-grained host fires at the deadline.
    assert_eq!(wake_time(HostModel::fine(), 200 * US), 200 * US);
    let coarse = HostModel::fine().with_timer_resolution(300 * US);
    assert_eq!(wake_time(coarse, 200 * US), 300 * US);
    assert_eq!(wake_time(coarse, 301 * US), 600 * US);
    // Ticks need not fall on multiples of the resolution: at 100, 400, 700 µs…
    let shifted = coarse.with_timer_phase(100 * US);
    assert_eq!(wake_time(shifted, 200 * US), 400 * US);
    assert_eq!(wake_time(shifted, 50 * US), 100 * US);
    assert_eq!(wake_time(shifted, 400 * US), 400 * US);
    assert_eq!(
        wake_time(shifted.with_timer_phase(700 * US), 50 * US),
        100 * US
    );
}

#[test]
fn timers_reach_a_busy_loop_only_when_it_returns_to_the_host() {
    let driver_yield = 500 * US;
    let (host, executor) = fine_host_and_executor(driver_yield);
    let queue = executor.queue(0).unwrap();
    let sleeper = queue.spawn(async {
        sim::sleep(10 * US).await;
        sim::now()
    });
    queue.spawn(busy_polls(100 * US));
    let woke = host.run(executor.run_until(sleeper), Duration::from_secs(1));
    let woke = woke.unwrap().unwrap();
    // Due at 10 µs, but the loop polls the busy task until its driver yield at 500 µs;
    // the host (0.3 µs later) fires the timer, and the woken task waits behind the
    // busy task's next 100 µs poll (FIFO: the busy task was requeued first).
    let cost = HostModel::fine().return_cost;
    assert_eq!(woke, driver_yield + cost + 100 * US);
    assert_eq!(executor.stats().driver_yields, 1);
    assert_eq!(host.stats().timers_fired, 1);
}

#[test]
fn arrivals_reach_a_busy_loop_only_when_it_returns_to_the_host() {
    let (host, executor) = fine_host_and_executor(300 * US);
    let queue = executor.queue(0).unwrap();
    queue.spawn(busy_polls(50 * US));
    let seen = Rc::new(Cell::new(None));
    let (q, s) = (queue.clone(), seen.clone());
    sim::call_at(20 * US, move || {
        // The arrival is delivered here; the task it spawns runs in the next turn.
        q.spawn(async move { s.set(Some(sim::now())) });
    })
    .unwrap();
    let _ = host.run(executor.run(), Duration::from_millis(2));
    let seen = seen.get().expect("the arrival ran");
    // Sent at 20 µs, delivered at the driver yield (300 µs) plus the return cost,
    // polled after the busy task's next 50 µs poll.
    assert_eq!(seen, 300 * US + HostModel::fine().return_cost + 50 * US);
    assert_eq!(host.stats().calls_run, 1);
}

/// A future that wakes itself `left` times before completing.
struct SelfWaking {
    left: u32,
}

impl Future for SelfWaking {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.left == 0 {
            return Poll::Ready(());
        }
        self.left -= 1;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[test]
fn each_return_to_the_host_costs_the_return_cost() {
    let cost = Duration::from_nanos(700);
    let host = Host::new(HostModel::fine().with_return_cost(cost)).unwrap();
    host.run(SelfWaking { left: 10 }, Duration::from_secs(1))
        .unwrap();
    assert_eq!(sim::now(), 10 * cost);
    assert_eq!(host.stats().returns, 10);
    assert_eq!(host.stats().idle_jumps, 0);
}

#[test]
fn a_busy_executors_time_is_its_cpu_plus_its_returns() {
    let cost = Duration::from_nanos(300);
    let host = Host::new(HostModel::tokio().with_return_cost(cost)).unwrap();
    let executor = ExecutorBuilder::new()
        .with_queue(0u8, 1)
        .with_driver_yield(250 * US)
        .build()
        .unwrap();
    executor.queue(0).unwrap().spawn(busy(7 * US));
    let stopped = host.run(executor.run(), Duration::from_millis(20));
    assert_eq!(stopped.err(), Some(Stopped::TimeLimit));
    let stats = executor.stats();
    let returns = u32::try_from(host.stats().returns).unwrap();
    assert!(returns >= 70, "{returns} returns");
    assert_eq!(sim::now(), stats.busy_time + returns * cost);
    assert_eq!(stats.idle_time, Duration::ZERO);
}

#[test]
fn an_idle_loop_jumps_to_the_next_event() {
    let host = Host::new(HostModel::fine()).unwrap();
    let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    let task = executor.queue(0).unwrap().spawn(async move {
        for _ in 0..3 {
            sim::sleep(Duration::from_secs(100)).await;
            l.borrow_mut().push(sim::now());
        }
    });
    let started = std::time::Instant::now();
    host.run(executor.run_until(task), Duration::from_secs(1_000))
        .unwrap()
        .unwrap();
    let secs = Duration::from_secs;
    // The next sleep starts in the poll the timer woke (the return cost comes after
    // the poll, while the loop waits anyway).
    assert_eq!(*log.borrow(), vec![secs(100), secs(200), secs(300)]);
    assert_eq!(host.stats().idle_jumps, 3);
    assert_eq!(host.stats().timers_fired, 3);
    assert_eq!(executor.stats().idle_time, secs(300));
    // 300 virtual seconds, simulated (not slept).
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_loop_with_nothing_left_to_wait_for_stalls() {
    let host = Host::new(HostModel::tokio()).unwrap();
    let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    let forever = executor
        .queue(0)
        .unwrap()
        .spawn(std::future::pending::<()>());
    let stopped = host.run(executor.run_until(forever), Duration::from_secs(1));
    assert_eq!(stopped.err(), Some(Stopped::Stalled));
}

#[test]
fn one_host_per_thread_and_calls_need_one() {
    assert_eq!(sim::call_at(US, || {}), Err(HostError::NoHost));
    let host = Host::new(HostModel::tokio()).unwrap();
    assert_eq!(
        Host::new(HostModel::tokio()).err(),
        Some(HostError::AlreadyInstalled)
    );
    assert_eq!(sim::call_at(US, || {}), Ok(()));
    drop(host);
    assert_eq!(sim::now(), Duration::ZERO);
}

#[test]
fn an_executor_built_without_a_host_keeps_the_real_clock() {
    let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    let host = Host::new(HostModel::fine()).unwrap();
    let task = executor.queue(0).unwrap().spawn(async {
        std::thread::sleep(Duration::from_millis(2));
    });
    host.run(executor.run_until(task), Duration::from_secs(1))
        .unwrap()
        .unwrap();
    // Its measures are real time; the virtual clock never moved past the returns.
    assert!(executor.stats().busy_time >= Duration::from_millis(2));
    assert!(sim::now() < Duration::from_micros(10));
}

#[test]
fn another_threads_spawn_is_seen_at_the_next_poll_boundary() {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    let (host, executor) = fine_host_and_executor(300 * US);
    executor.queue(0).unwrap().spawn(busy_polls(50 * US));
    let polled_at = Arc::new(AtomicU64::new(0));
    let (remote, p) = (executor.remote(), polled_at.clone());
    sim::call_from_thread_at(20 * US, move || {
        // Sent at 20 µs, while the busy task's first poll (0-50 µs) runs: in the inbox
        // at 50 µs, drained right after that poll, queued behind the busy task.
        let task = async move {
            p.store(sim::now().as_nanos() as u64, Ordering::Relaxed);
        };
        remote.spawn(0, task).unwrap();
    })
    .unwrap();
    let _ = host.run(executor.run(), Duration::from_millis(1));
    // Through the host, it would have waited for the driver yield at 300 µs.
    assert_eq!(polled_at.load(Ordering::Relaxed), 100_000);
    assert_eq!(host.stats().calls_run, 1);
}

#[test]
fn another_threads_call_wakes_a_parked_loop_at_its_time() {
    let host = Host::new(HostModel::tokio()).unwrap();
    let seen = Rc::new(Cell::new(Duration::ZERO));
    let s = seen.clone();
    sim::call_from_thread_at(Duration::from_micros(1_234), move || s.set(sim::now())).unwrap();
    let _ = host.run(std::future::pending::<()>(), Duration::from_secs(1));
    // Not rounded to the timer wheel: it is no timer.
    assert_eq!(seen.get(), Duration::from_micros(1_234));
}

/// The driven future of `run_until`, woken (by its own yield) while `ready` tasks of
/// polls of `poll_cpu` each are ready: how many task polls run before it runs again.
fn task_polls_before_the_driven_future_runs(poll_cpu: Duration) -> u32 {
    let host = Host::new(HostModel::fine()).unwrap();
    let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    let q = executor.queue(0).unwrap();
    let polls = Rc::new(Cell::new(0u32));
    for _ in 0..100 {
        let counted = polls.clone();
        q.spawn(async move {
            loop {
                counted.set(counted.get() + 1);
                if !poll_cpu.is_zero() {
                    sim::cpu(poll_cpu).await;
                }
                yield_now().await;
            }
        });
    }
    let main = async move {
        common::yield_self().await;
        polls.get()
    };
    let waited = host.run(executor.run_until(main), Duration::from_secs(1));
    executor.shutdown();
    waited.unwrap()
}

#[test]
fn a_woken_driven_future_runs_after_32_task_polls_or_20_us_whichever_first() {
    let _watchdog = common::watchdog();
    // Polls that take no virtual time: the count bound.
    assert_eq!(task_polls_before_the_driven_future_runs(Duration::ZERO), 32);
    // 1 µs polls: the 20 µs bound, reached at the end of the 20th.
    assert_eq!(task_polls_before_the_driven_future_runs(US), 20);
    // A poll past 20 µs: at once after it.
    assert_eq!(task_polls_before_the_driven_future_runs(50 * US), 1);
}
