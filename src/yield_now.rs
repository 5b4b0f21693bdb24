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
pub fn yield_maybe() -> YieldMaybe {
    YieldMaybe { yielded: false }
}

/// Always yields once: the task goes to the back of its queue (under `RunnableFifo`)
/// and runs again after the tasks that were ready before it. Works in any runtime: it
/// wakes itself and returns `Pending` once.
pub fn yield_now() -> YieldNow {
    YieldNow { yielded: false }
}

/// Future of [`yield_maybe`].
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

/// Future of [`yield_now`].
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
