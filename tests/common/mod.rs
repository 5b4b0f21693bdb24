//! Helpers shared by the integration tests: the host runtime, drop guards, bounded
//! waiting and busy-spinning.
//!
//! Every test binary compiles this module on its own and uses only part of it.
#![allow(dead_code)]

#[cfg(feature = "sim")]
pub mod sim_work;
mod watchdog;

#[allow(unused_imports)] // each test binary uses part of it
pub use watchdog::{test_time_limit, watchdog, watchdog_for, Watchdog};

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

/// Awaits every handle in order; panics on a task that did not complete.
pub async fn outputs_of<T>(handles: Vec<clockworker::JoinHandle<T>>) -> Vec<T> {
    let mut outputs = Vec::with_capacity(handles.len());
    for handle in handles {
        outputs.push(handle.await.expect("the task completed"));
    }
    outputs
}

/// A queue key type used by several tests.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Q {
    Fg,
    Bg,
}

/// The queue layout of the pool tests' shards: `Fg` (weight 4) and `Bg` (weight 1).
pub fn pool_layout(_shard: usize) -> clockworker::ExecutorBuilder<Q> {
    clockworker::ExecutorBuilder::new()
        .with_queue(Q::Fg, 4)
        .with_queue(Q::Bg, 1)
}

/// A tokio current_thread runtime with timers and I/O enabled.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// The executor of the observability tests: "fg" (weight 3) and "bg" (weight 1), task
/// panics reported through join handles.
pub fn observed_executor() -> Rc<clockworker::Executor<&'static str>> {
    clockworker::ExecutorBuilder::new()
        .with_queue("fg", 3)
        .with_queue("bg", 1)
        .with_panic_on_task_panic(false)
        .build()
        .expect("executor")
}

/// On an `observed_executor`: 5 tasks on "fg" that yield twice (3 polls each), and on
/// "bg" one task that panics and one that is aborted while parked.
pub fn observed_workload(
    rt: &tokio::runtime::Runtime,
    executor: &Rc<clockworker::Executor<&'static str>>,
) {
    let fg = executor.queue("fg").unwrap();
    let bg = executor.queue("bg").unwrap();
    rt.block_on(executor.run_until(async move {
        let handles: Vec<_> = (0..5)
            .map(|i| {
                fg.spawn(async move {
                    clockworker::yield_now().await;
                    clockworker::yield_now().await;
                    i
                })
            })
            .collect();
        let panics = bg.spawn(async { panic!("task panic on purpose") });
        let parked = bg.spawn(std::future::pending::<()>());
        for (i, handle) in handles.into_iter().enumerate() {
            assert_eq!(handle.await.unwrap(), i);
        }
        assert!(panics.await.unwrap_err().is_panic());
        parked.abort();
        assert!(matches!(
            parked.await,
            Err(clockworker::JoinError::Cancelled)
        ));
    }));
}

/// Runs `future` on a fresh tokio current_thread runtime inside a `LocalSet`, the host
/// every test uses unless it says otherwise.
pub fn block_on_local<F: Future>(future: F) -> F::Output {
    let rt = runtime();
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, future)
}

/// Counts how many guards made by it were dropped (single-threaded).
#[derive(Clone, Default)]
pub struct DropCounter {
    dropped: Rc<Cell<usize>>,
}

impl DropCounter {
    pub fn new() -> Self {
        Self::default()
    }

    /// A guard to move into a future: dropping the future drops it.
    pub fn guard(&self) -> DropGuard {
        DropGuard {
            dropped: self.dropped.clone(),
        }
    }

    pub fn count(&self) -> usize {
        self.dropped.get()
    }
}

/// Increments its counter when dropped.
pub struct DropGuard {
    dropped: Rc<Cell<usize>>,
}

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.dropped.set(self.dropped.get() + 1);
    }
}

/// A `Send` drop counter that also records the thread each guard was dropped on.
#[derive(Clone, Default)]
pub struct SendDropCounter {
    dropped: Arc<AtomicUsize>,
    threads: Arc<Mutex<Vec<ThreadId>>>,
}

impl SendDropCounter {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn guard(&self) -> SendDropGuard {
        SendDropGuard {
            counter: self.clone(),
        }
    }

    pub fn count(&self) -> usize {
        self.dropped.load(Ordering::SeqCst)
    }

    /// The threads guards were dropped on, in drop order.
    pub fn threads(&self) -> Vec<ThreadId> {
        self.threads.lock().unwrap().clone()
    }
}

pub struct SendDropGuard {
    counter: SendDropCounter,
}

impl Drop for SendDropGuard {
    fn drop(&mut self) {
        self.counter
            .threads
            .lock()
            .unwrap()
            .push(std::thread::current().id());
        self.counter.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

/// Wraps a future and counts its polls.
pub struct CountPolls<F> {
    future: Pin<Box<F>>,
    polls: Rc<Cell<usize>>,
}

impl<F: Future> CountPolls<F> {
    pub fn new(future: F, polls: Rc<Cell<usize>>) -> Self {
        CountPolls {
            future: Box::pin(future),
            polls,
        }
    }
}

impl<F: Future> Future for CountPolls<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.polls.set(self.polls.get() + 1);
        self.future.as_mut().poll(cx)
    }
}

/// Waits (inside whatever executor polls it) until `condition` holds, for at most
/// `timeout`. Yields with `clockworker::yield_now` first so that work already queued
/// gets a chance, then sleeps 1 ms at a time so that other threads and timers can make
/// progress. Returns whether the condition held.
pub async fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    let mut round = 0u32;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        if round < 100 {
            clockworker::yield_now().await;
        } else {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        round += 1;
    }
}

/// Burns CPU on this thread for `duration` of wall time.
pub fn spin(duration: Duration) {
    let start = Instant::now();
    while start.elapsed() < duration {
        std::hint::spin_loop();
    }
}

/// The text of a panic payload made by `panic!`, if it is a string.
pub fn panic_text(payload: &(dyn std::any::Any + Send)) -> Option<String> {
    payload
        .downcast_ref::<&'static str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
}

/// Installs (once per test binary) a panic hook that keeps the default report for
/// every panic except those provoked on purpose: string payloads containing one of
/// `expected`, and payloads that are not strings. A failing assertion still shows.
pub fn quiet_panics(expected: &'static [&'static str]) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let text = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str));
            match text {
                Some(text) if !expected.iter().any(|e| text.contains(e)) => default(info),
                _ => {}
            }
        }));
    });
}

/// Runs a closure when dropped: put it inside a future to act from that future's drop.
pub struct OnDrop<F: FnMut()>(pub F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)();
    }
}

/// Runs `body` on its own thread and fails (naming `what`) if it takes longer than
/// `limit`, instead of hanging the test run. A panic in `body` is re-raised here.
pub fn with_watchdog<T: Send + 'static>(
    limit: Duration,
    what: &'static str,
    body: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let worker = std::thread::spawn(move || {
        let out = body();
        let _ = done_tx.send(());
        out
    });
    match done_rx.recv_timeout(limit) {
        Ok(()) => worker.join().expect("test body panicked"),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => match worker.join() {
            Ok(_) => unreachable!("body finished without reporting"),
            Err(panic) => std::panic::resume_unwind(panic),
        },
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("hung for {limit:?}: {what}")
        }
    }
}

/// A yield that works in any future, clockworker task or not (the future `run_until`
/// drives, a host's task): wakes itself and returns `Pending` once.
pub async fn yield_self() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            return Poll::Ready(());
        }
        yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    })
    .await
}
