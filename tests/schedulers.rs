//! Task schedulers inside one queue: `RunnableFifo` (order of becoming ready),
//! `ArrivalFifo` (order of spawn), user-written schedulers, and the `observe` hook.

mod common;

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Duration;

use clockworker::scheduler::{ArrivalFifo, PollReport, ReadyTask, RunnableFifo, Scheduler};
use clockworker::{yield_now, ExecutorBuilder};
use common::{block_on_local, spin};

type Log = Rc<RefCell<Vec<usize>>>;

#[test]
fn runnable_fifo_polls_in_spawn_order() {
    let _watchdog = common::watchdog();
    const N: usize = 50;
    let executor = ExecutorBuilder::new()
        .with_queue_scheduler(0u8, 1, RunnableFifo::new())
        .build()
        .unwrap();
    let q = executor.queue(0).unwrap();
    let log: Log = Rc::default();
    let handles: Vec<_> = (0..N)
        .map(|i| {
            let log = log.clone();
            q.spawn(async move { log.borrow_mut().push(i) })
        })
        .collect();
    block_on_local(executor.run_until(async move {
        for h in handles {
            h.await.unwrap();
        }
    }));
    assert_eq!(*log.borrow(), (0..N).collect::<Vec<_>>());
}

#[test]
fn runnable_fifo_with_yield_now_is_round_robin() {
    let _watchdog = common::watchdog();
    const N: usize = 8;
    const ROUNDS: usize = 5;
    // The default scheduler is RunnableFifo.
    let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    let q = executor.queue(0).unwrap();
    let log: Log = Rc::default();
    let handles: Vec<_> = (0..N)
        .map(|i| {
            let log = log.clone();
            q.spawn(async move {
                for _ in 0..ROUNDS {
                    log.borrow_mut().push(i);
                    yield_now().await;
                }
            })
        })
        .collect();
    block_on_local(executor.run_until(async move {
        for h in handles {
            h.await.unwrap();
        }
    }));
    let expected: Vec<usize> = (0..ROUNDS).flat_map(|_| 0..N).collect();
    assert_eq!(*log.borrow(), expected);
}

/// Spawns `N` tasks that each park on a oneshot, then one task that completes all the
/// oneshots in reverse order in a single poll; returns the order in which the tasks
/// resumed.
fn resume_order_after_reverse_wakes<S: Scheduler>(scheduler: S) -> Vec<usize> {
    const N: usize = 10;
    let executor = ExecutorBuilder::new()
        .with_queue_scheduler(0u8, 1, scheduler)
        .build()
        .unwrap();
    let q = executor.queue(0).unwrap();
    let resumed: Log = Rc::default();
    let mut senders = Vec::new();
    let mut handles = Vec::new();
    for i in 0..N {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        senders.push(tx);
        let resumed = resumed.clone();
        handles.push(q.spawn(async move {
            rx.await.unwrap();
            resumed.borrow_mut().push(i);
        }));
    }
    // Spawned last, so under both policies it runs after every task parked once.
    let waker = q.spawn(async move {
        for tx in senders.into_iter().rev() {
            tx.send(()).unwrap();
        }
    });
    block_on_local(executor.run_until(async move {
        waker.await.unwrap();
        for h in handles {
            h.await.unwrap();
        }
    }));
    let order = resumed.borrow().clone();
    order
}

#[test]
fn arrival_fifo_runs_ready_tasks_in_spawn_order() {
    let _watchdog = common::watchdog();
    let order = resume_order_after_reverse_wakes(ArrivalFifo::new());
    assert_eq!(order, (0..10).collect::<Vec<_>>());
}

#[test]
fn runnable_fifo_runs_ready_tasks_in_wake_order() {
    let _watchdog = common::watchdog();
    // The same scenario under RunnableFifo: the order of becoming ready, i.e. reverse.
    // (This also shows the ArrivalFifo test above is not passing by accident.)
    let order = resume_order_after_reverse_wakes(RunnableFifo::new());
    assert_eq!(order, (0..10).rev().collect::<Vec<_>>());
}

/// Tasks sleep for decreasing durations (task 0 longest), so their timers expire in
/// reverse spawn order. A blocker task, spawned last, then holds the thread in a single
/// poll until every timer has expired: the host processes all of them in one turn, and
/// every sleeper becomes ready before the loop picks the next task. Returns the order in
/// which the sleepers resumed.
fn resume_order_after_reverse_timers<S: Scheduler>(scheduler: S) -> Vec<usize> {
    const N: usize = 6;
    let executor = ExecutorBuilder::new()
        .with_queue_scheduler(0u8, 1, scheduler)
        .with_driver_yield(Duration::from_millis(200))
        .build()
        .unwrap();
    let q = executor.queue(0).unwrap();
    let resumed: Log = Rc::default();
    let handles: Vec<_> = (0..N)
        .map(|i| {
            let resumed = resumed.clone();
            q.spawn(async move {
                tokio::time::sleep(Duration::from_millis(2 * (N - i) as u64)).await;
                resumed.borrow_mut().push(i);
            })
        })
        .collect();
    let blocker = q.spawn(async { spin(Duration::from_millis(30)) });
    block_on_local(executor.run_until(async move {
        blocker.await.unwrap();
        for h in handles {
            h.await.unwrap();
        }
    }));
    let order = resumed.borrow().clone();
    order
}

#[test]
fn arrival_fifo_keeps_spawn_order_across_timer_sleeps() {
    let _watchdog = common::watchdog();
    let order = resume_order_after_reverse_timers(ArrivalFifo::new());
    assert_eq!(order, (0..6).collect::<Vec<_>>());
}

#[test]
fn runnable_fifo_follows_timer_expiry_order() {
    let _watchdog = common::watchdog();
    // Control for the test above: the timers really did make the tasks ready in reverse.
    let order = resume_order_after_reverse_timers(RunnableFifo::new());
    assert_eq!(order, (0..6).rev().collect::<Vec<_>>());
}

/// Last in, first out: a user policy.
#[derive(Default)]
struct Lifo {
    stack: Vec<ReadyTask>,
}

impl Scheduler for Lifo {
    fn push(&mut self, task: ReadyTask) {
        self.stack.push(task);
    }
    fn pop(&mut self) -> Option<ReadyTask> {
        self.stack.pop()
    }
    fn len(&self) -> usize {
        self.stack.len()
    }
}

#[test]
fn user_lifo_scheduler_runs_last_in_first_out() {
    let _watchdog = common::watchdog();
    const N: usize = 20;
    let executor = ExecutorBuilder::new()
        .with_queue_scheduler("lifo", 1, Lifo::default())
        .with_queue("other", 1)
        .build()
        .unwrap();
    let q = executor.queue("lifo").unwrap();
    let log: Log = Rc::default();
    let handles: Vec<_> = (0..N)
        .map(|i| {
            let log = log.clone();
            q.spawn(async move { log.borrow_mut().push(i) })
        })
        .collect();
    assert_eq!(executor.queue_stats("lifo").unwrap().ready, N);
    block_on_local(executor.run_until(async move {
        for h in handles {
            h.await.unwrap();
        }
    }));
    assert_eq!(*log.borrow(), (0..N).rev().collect::<Vec<_>>());
    assert_eq!(executor.queue_stats("lifo").unwrap().ready, 0);
}

/// `(group, arrival)` of every task a scheduler was given.
type Seen = Rc<RefCell<Vec<(Option<u64>, u64)>>>;

#[test]
fn user_scheduler_sees_group_and_arrival() {
    let _watchdog = common::watchdog();
    /// FIFO that records what it is told about each task.
    struct Recording {
        ready: VecDeque<ReadyTask>,
        seen: Seen,
    }
    impl Scheduler for Recording {
        fn push(&mut self, task: ReadyTask) {
            self.seen.borrow_mut().push((task.group(), task.arrival()));
            self.ready.push_back(task);
        }
        fn pop(&mut self) -> Option<ReadyTask> {
            self.ready.pop_front()
        }
        fn len(&self) -> usize {
            self.ready.len()
        }
    }
    let seen: Seen = Rc::default();
    let executor = ExecutorBuilder::new()
        .with_queue_scheduler(
            0u8,
            1,
            Recording {
                ready: VecDeque::new(),
                seen: seen.clone(),
            },
        )
        .build()
        .unwrap();
    let q = executor.queue(0).unwrap();
    let t1 = q.group("tenant-1");
    let t1_again = q.group("tenant-1");
    let t2 = q.group(2u32);
    let handles = vec![
        q.spawn(async {}),
        t1.spawn(async {}),
        t2.spawn(async {}),
        t1_again.spawn(async {}),
    ];
    block_on_local(executor.run_until(async move {
        for h in handles {
            h.await.unwrap();
        }
    }));
    let seen = seen.borrow();
    assert_eq!(seen.len(), 4);
    let arrivals: Vec<u64> = seen.iter().map(|(_, a)| *a).collect();
    assert!(
        arrivals.windows(2).all(|w| w[0] < w[1]),
        "arrival must increase with spawn order: {arrivals:?}"
    );
    assert_eq!(seen[0].0, None);
    let g1 = seen[1].0.expect("grouped task has a group");
    let g2 = seen[2].0.expect("grouped task has a group");
    assert_ne!(g1, g2, "different groups must differ");
    assert_eq!(
        seen[3].0,
        Some(g1),
        "the same group value gives the same group"
    );
}

/// FIFO that asks for timing and counts what it observes.
struct Observing {
    ready: VecDeque<ReadyTask>,
    timing: bool,
    seen: Rc<Observations>,
}

/// What an `Observing` scheduler counted, shared with the test.
#[derive(Default)]
struct Observations {
    observed: Cell<u64>,
    finished: Cell<u64>,
    observed_time: Cell<Duration>,
    max_attained: Cell<Duration>,
}

impl Observing {
    /// The scheduler, and what it counts.
    fn new(timing: bool) -> (Self, Rc<Observations>) {
        let seen = Rc::<Observations>::default();
        let scheduler = Observing {
            ready: VecDeque::new(),
            timing,
            seen: seen.clone(),
        };
        (scheduler, seen)
    }
}

impl Scheduler for Observing {
    fn push(&mut self, task: ReadyTask) {
        self.ready.push_back(task);
    }
    fn pop(&mut self) -> Option<ReadyTask> {
        let task = self.ready.pop_front()?;
        let seen = &self.seen;
        seen.max_attained
            .set(seen.max_attained.get().max(task.attained_service()));
        Some(task)
    }
    fn len(&self) -> usize {
        self.ready.len()
    }
    fn needs_timing(&self) -> bool {
        self.timing
    }
    fn observe(&mut self, report: &PollReport) {
        let seen = &self.seen;
        seen.observed.set(seen.observed.get() + 1);
        if report.finished {
            seen.finished.set(seen.finished.get() + 1);
        }
        seen.observed_time
            .set(seen.observed_time.get() + report.duration);
    }
}

/// Runs `TASKS` tasks of `YIELDS` yields each (each poll spinning `SPIN`) on a queue
/// with `scheduler`, and returns the queue's poll count.
fn run_observed(scheduler: Observing) -> u64 {
    const TASKS: usize = 5;
    const YIELDS: usize = 3;
    let executor = ExecutorBuilder::new()
        .with_queue_scheduler(0u8, 1, scheduler)
        .build()
        .unwrap();
    let q = executor.queue(0).unwrap();
    let handles: Vec<_> = (0..TASKS)
        .map(|_| {
            q.spawn(async {
                for _ in 0..YIELDS {
                    spin(Duration::from_micros(300));
                    yield_now().await;
                }
            })
        })
        .collect();
    block_on_local(executor.run_until(async move {
        for h in handles {
            h.await.unwrap();
        }
    }));
    let polls = executor.queue_stats(0).unwrap().polls;
    assert_eq!(polls, (TASKS * (YIELDS + 1)) as u64);
    polls
}

#[test]
fn observe_is_called_once_per_poll_with_timing() {
    let _watchdog = common::watchdog();
    let (scheduler, seen) = Observing::new(true);
    let polls = run_observed(scheduler);
    assert_eq!(seen.observed.get(), polls, "observe calls != polls");
    assert_eq!(seen.finished.get(), 5, "one finished report per task");
    // 15 polls spun 300 µs each.
    assert!(
        seen.observed_time.get() >= Duration::from_micros(15 * 300),
        "reported poll durations too small: {:?}",
        seen.observed_time.get()
    );
    // A task popped after three 300 µs polls has attained at least 900 µs.
    assert!(
        seen.max_attained.get() >= Duration::from_micros(900),
        "attained_service not fed: {:?}",
        seen.max_attained.get()
    );
}

/// A poll whose panic leaves `run_until` (the default) is reported too, as finished,
/// with its duration: the loop books it before the panic unwinds through it.
#[test]
fn a_propagated_panic_poll_is_observed() {
    let _watchdog = common::watchdog();
    let (scheduler, seen) = Observing::new(true);
    let executor = ExecutorBuilder::new()
        .with_queue_scheduler(0u8, 1, scheduler)
        .build()
        .unwrap();
    let q = executor.queue(0).unwrap();
    drop(q.spawn(async {
        spin(Duration::from_millis(2));
        panic!("after 2 ms of work");
    }));
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        block_on_local(executor.run_until(std::future::pending::<()>()))
    }));
    assert!(outcome.is_err());
    assert_eq!(seen.observed.get(), 1);
    assert_eq!(seen.finished.get(), 1);
    assert!(
        seen.observed_time.get() >= Duration::from_millis(2),
        "{:?}",
        seen.observed_time.get()
    );
}

/// A report's `finished` is the polled task's own ending: a poll in which another
/// task is cancelled (its scheduler drops it, as `Scheduler::push` allows) reports the
/// polled task as going on.
#[test]
fn a_report_is_finished_only_when_the_polled_task_ends() {
    let _watchdog = common::watchdog();
    /// Keeps its tasks until `shed` is set, then drops (cancels) each task pushed.
    struct Shedding {
        ready: VecDeque<ReadyTask>,
        shed: Rc<Cell<bool>>,
    }
    impl Scheduler for Shedding {
        fn push(&mut self, task: ReadyTask) {
            if !self.shed.get() {
                self.ready.push_back(task);
            }
        }
        fn pop(&mut self) -> Option<ReadyTask> {
            self.ready.pop_front()
        }
        fn len(&self) -> usize {
            self.ready.len()
        }
    }
    let shed = Rc::new(Cell::new(false));
    let (observing, seen) = Observing::new(true);
    let executor = ExecutorBuilder::new()
        .with_queue_scheduler(0u8, 1, observing)
        .with_queue_scheduler(
            1u8,
            1,
            Shedding {
                ready: VecDeque::new(),
                shed: shed.clone(),
            },
        )
        .build()
        .unwrap();
    let parked: Rc<RefCell<Option<Waker>>> = Rc::default();
    let victim = executor.queue(1).unwrap().spawn({
        let parked = parked.clone();
        std::future::poll_fn(move |cx| {
            *parked.borrow_mut() = Some(cx.waker().clone());
            Poll::<()>::Pending
        })
    });
    let shedder = executor.queue(0).unwrap().spawn(async move {
        while parked.borrow().is_none() {
            yield_now().await;
        }
        shed.set(true);
        // Its scheduler drops the woken victim: cancelled inside this poll.
        let waker = parked.borrow_mut().take().unwrap();
        waker.wake();
        yield_now().await;
    });
    block_on_local(executor.run_until(async move {
        shedder.await.unwrap();
        assert!(victim.await.unwrap_err().is_cancelled());
    }));
    assert_eq!(
        seen.finished.get(),
        1,
        "finished reports in {} observed polls of one task",
        seen.observed.get()
    );
}

/// FIFO that records, at each push, the task's attained service and its group's.
struct Recording {
    ready: VecDeque<ReadyTask>,
    timing: bool,
    /// (attained_service, group_attained_service) per push.
    seen: Rc<RefCell<Vec<(Duration, Duration)>>>,
}

impl Scheduler for Recording {
    fn push(&mut self, task: ReadyTask) {
        let service = (task.attained_service(), task.group_attained_service());
        self.seen.borrow_mut().push(service);
        self.ready.push_back(task);
    }
    fn pop(&mut self) -> Option<ReadyTask> {
        self.ready.pop_front()
    }
    fn len(&self) -> usize {
        self.ready.len()
    }
    fn needs_timing(&self) -> bool {
        self.timing
    }
}

/// What a `Recording` queue (`timing` as given) saw of a task in a group that spins
/// `SPIN` in its first poll, then yields: (attained, group's attained) at the spawn
/// and after the yield.
fn service_of_a_grouped_task(timing: bool) -> Vec<(Duration, Duration)> {
    const SPIN: Duration = Duration::from_millis(1);
    let seen = Rc::default();
    let executor = ExecutorBuilder::new()
        .with_queue_scheduler(
            0u8,
            1,
            Recording {
                ready: VecDeque::new(),
                timing,
                seen: Rc::clone(&seen),
            },
        )
        .build()
        .unwrap();
    let task = executor.queue(0).unwrap().group("tenant").spawn(async {
        spin(SPIN);
        yield_now().await;
    });
    block_on_local(executor.run_until(task)).unwrap();
    let seen = seen.borrow().clone();
    assert_eq!(seen.len(), 2, "pushed at the spawn and after the yield");
    assert!(
        seen[1].1 >= SPIN,
        "the group's account is kept on every queue: {seen:?}"
    );
    seen
}

#[test]
fn a_timed_queue_books_the_service_of_a_task_in_a_group() {
    let _watchdog = common::watchdog();
    let seen = service_of_a_grouped_task(true);
    assert_eq!(seen[0].0, Duration::ZERO);
    assert!(
        seen[1].0 >= Duration::from_millis(1),
        "the first poll's 1 ms is not on record: {seen:?}"
    );
}

#[test]
fn an_untimed_queue_keeps_a_tasks_service_at_zero_even_in_a_group() {
    let _watchdog = common::watchdog();
    let seen = service_of_a_grouped_task(false);
    assert_eq!(
        (seen[0].0, seen[1].0),
        (Duration::ZERO, Duration::ZERO),
        "attained_service is zero on queues that do not ask for timing"
    );
}

/// `observe` is documented to be called only when `needs_timing` is true.
#[test]
fn observe_is_not_called_without_timing() {
    let _watchdog = common::watchdog();
    let (scheduler, seen) = Observing::new(false);
    let polls = run_observed(scheduler);
    assert_eq!(polls, 20);
    assert_eq!(
        seen.observed.get(),
        0,
        "observe called although needs_timing is false"
    );
    // attained_service is documented as kept only for schedulers that need timing.
    assert_eq!(
        seen.max_attained.get(),
        Duration::ZERO,
        "attained_service charged although needs_timing is false"
    );
}

/// Under LAS, a group's tasks share one account: once one task of the "heavy" group
/// has run 5 ms, its siblings (which never ran) wait behind a light group's tasks,
/// although all were spawned before them.
#[test]
fn las_charges_a_poll_to_the_group_of_the_task() {
    let _watchdog = common::watchdog();
    let executor = ExecutorBuilder::new()
        .with_queue_scheduler(0u8, 1, clockworker::scheduler::LAS::new())
        .build()
        .unwrap();
    let q = executor.queue(0).unwrap();
    let heavy = q.group("heavy");
    let light = q.group("light");
    let order: Rc<RefCell<Vec<String>>> = Rc::default();
    let log = |name: String| {
        let order = order.clone();
        move || order.borrow_mut().push(name)
    };
    let mut handles = Vec::new();
    let first = log("heavy 0".into());
    handles.push(heavy.spawn(async move {
        spin(Duration::from_millis(5));
        first();
    }));
    for i in 1..4 {
        let done = log(format!("heavy {i}"));
        handles.push(heavy.spawn(async move { done() }));
    }
    for i in 0..3 {
        let done = log(format!("light {i}"));
        handles.push(light.spawn(async move { done() }));
    }
    block_on_local(executor.run_until(common::outputs_of(handles)));
    assert_eq!(
        *order.borrow(),
        ["heavy 0", "light 0", "light 1", "light 2", "heavy 1", "heavy 2", "heavy 3"]
    );
}
