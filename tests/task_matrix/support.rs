//! What the grid and the tests outside it share: the executor of a case, drop
//! counters, the tasks' output type, and ways to drive a run loop.

use std::cell::RefCell;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use clockworker::{yield_now, Executor, ExecutorBuilder, JoinHandle};

/// How many times the driven future yields to let the executor settle: each yield lets
/// the loop poll at least one ready task, and no case has more than three polls to do.
pub(crate) const SETTLE_YIELDS: usize = 16;

/// How the executor treats task panics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PanicMode {
    Caught,
    Propagated,
}

pub(crate) const MODES: [PanicMode; 2] = [PanicMode::Caught, PanicMode::Propagated];

/// A `Send` drop counter (panic payloads must be `Send`).
#[derive(Clone, Default)]
pub(crate) struct Count(Arc<AtomicUsize>);

impl Count {
    pub(crate) fn guard(&self) -> Guard {
        Guard(self.0.clone())
    }
    pub(crate) fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// Counts its drop on its `Count`.
pub(crate) struct Guard(Arc<AtomicUsize>);

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// The task's output.
pub(crate) struct Output(#[allow(dead_code)] pub(crate) Guard, pub(crate) u32);

/// Where a task's own handle is kept, for tasks that abort themselves.
pub(crate) type Slot = Rc<RefCell<Option<JoinHandle<Output>>>>;

/// Yields `SETTLE_YIELDS` times, so the executor settles every task of a case.
pub(crate) async fn settle() {
    for _ in 0..SETTLE_YIELDS {
        yield_now().await;
    }
}

/// Polls `future` once with a waker that does nothing.
pub(crate) fn poll_once<F: Future>(future: F) -> Poll<F::Output> {
    let mut future = pin!(future);
    future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
}

/// Drives a `run`/`run_until` future; returns whether a panic escaped it.
pub(crate) fn drive(future: impl Future<Output = ()>) -> bool {
    let escaped = catch_unwind(AssertUnwindSafe(|| {
        futures_lite::future::block_on(future);
    }));
    escaped.is_err()
}

/// The queue of the subject, so that its stats count the subject alone; other tasks
/// of a case run on queue 0. Its weight gives it the earlier virtual deadline, so it
/// is chosen first, and the subject is polled before the tasks spawned after it.
pub(crate) const SUBJECT_QUEUE: u8 = 1;

/// The executor of a case: queue 0 (weight 1) and `SUBJECT_QUEUE` (weight 8).
pub(crate) fn build(mode: PanicMode) -> Rc<Executor<u8>> {
    ExecutorBuilder::new()
        .with_queue(0, 1)
        .with_queue(SUBJECT_QUEUE, 8)
        .with_panic_on_task_panic(mode == PanicMode::Propagated)
        .build()
        .unwrap()
}

/// Panic messages this binary provokes on purpose.
pub(crate) const EXPECTED_PANICS: &[&str] = &["panics in Drop", "output's Drop panics"];
