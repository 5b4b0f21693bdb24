//! Cooperative yields: `yield_maybe` (only when the queue's time is up) and `yield_now`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::context::with_current;

/// Yields to the executor only when the running queue's slice is spent, a queue with an
/// earlier deadline is waiting (preemption), another thread has handed the executor
/// work (a wake, a spawn, or a wake of the `run_until` future, which the executor
/// looks at only between polls), or the host runtime is due a turn; otherwise
/// completes at once. Outside a clockworker executor it completes at once.
///
/// Call it between segments of CPU-heavy work: it costs one clock read when there is
/// no reason to yield.
///
/// A background loop that calls it stays polite: the foreground task, spawned after
/// it, is done long before the loop's 5 ms of work.
///
/// ```rust
/// use clockworker::{yield_maybe, ExecutorBuilder};
/// use std::time::{Duration, Instant};
///
/// let executor = ExecutorBuilder::new()
///     .with_queue("foreground", 8)
///     .with_queue("background", 1)
///     .build()
///     .unwrap();
/// let background = executor.queue("background").unwrap().spawn(async {
///     let start = Instant::now();
///     while start.elapsed() < Duration::from_millis(5) {
///         std::hint::black_box((0..1_000u64).sum::<u64>()); // a chunk of CPU work
///         yield_maybe().await;
///     }
///     Instant::now()
/// });
/// let foreground = executor.queue("foreground").unwrap().spawn(async { Instant::now() });
/// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// let (bg_done, fg_done) = runtime.block_on(executor.run_until(async {
///     (background.await.unwrap(), foreground.await.unwrap())
/// }));
/// assert!(fg_done < bg_done);
/// ```
pub fn yield_maybe() -> YieldMaybe {
    YieldMaybe { yielded: false }
}

/// Always yields once: the task goes to the back of its queue (under `RunnableFifo`)
/// and runs again after the tasks that were ready before it. Works in any runtime: it
/// wakes itself and returns `Pending` once.
///
/// ```rust
/// use clockworker::{yield_now, ExecutorBuilder};
/// use std::{cell::RefCell, rc::Rc};
///
/// let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
/// let queue = executor.queue(0).unwrap();
/// let steps = Rc::new(RefCell::new(Vec::new()));
/// let log = steps.clone();
/// let a = queue.spawn(async move {
///     log.borrow_mut().push("a1");
///     yield_now().await; // lets `b` run
///     log.borrow_mut().push("a2");
/// });
/// let log = steps.clone();
/// let b = queue.spawn(async move { log.borrow_mut().push("b") });
/// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// runtime.block_on(executor.run_until(async { (a.await, b.await) }));
/// assert_eq!(*steps.borrow(), ["a1", "b", "a2"]);
/// ```
pub fn yield_now() -> YieldNow {
    YieldNow { yielded: false }
}

/// Future of [`yield_maybe`].
///
/// Outside a clockworker executor it is ready at its first poll:
///
/// ```rust
/// use clockworker::{yield_maybe, YieldMaybe};
/// use futures_lite::future::{block_on, poll_once};
///
/// let mut future: YieldMaybe = yield_maybe();
/// assert_eq!(block_on(poll_once(&mut future)), Some(()));
/// ```
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct YieldMaybe {
    yielded: bool,
}

impl Future for YieldMaybe {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        let should_yield = with_current(|core| core.is_some_and(|core| core.should_yield()));
        if !should_yield {
            return Poll::Ready(());
        }
        self.yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// Future of [`yield_now`]: `Pending` at its first poll (after waking its task),
/// ready at the next, in any runtime.
///
/// ```rust
/// use clockworker::{yield_now, YieldNow};
/// use futures_lite::future::{block_on, poll_once};
///
/// let mut future: YieldNow = yield_now();
/// assert_eq!(block_on(poll_once(&mut future)), None);
/// assert_eq!(block_on(poll_once(&mut future)), Some(()));
/// ```
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
