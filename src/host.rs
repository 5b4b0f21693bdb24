//! Handing the thread back to the host runtime.
//!
//! The run loop is one task of the host runtime. It returns to the host (a *driver
//! yield*: it wakes itself and returns `Pending`) in three cases, checked after every
//! task poll: `driver_yield` has elapsed since the host polled it; nothing is ready
//! (then it parks on the host waker instead of waking itself); or, inside tokio, the
//! host's cooperative budget is spent while tasks are still ready.
//!
//! # tokio's coop budget
//!
//! tokio gives each poll of one of its tasks a budget of 128 operations on tokio
//! resources (channel receives and sends, socket reads and writes, timers, …). Once it
//! is spent, the next such operation returns `Pending` even when it could complete,
//! and tokio *defers* its waker: the task is woken when tokio next polls its I/O
//! driver. The run loop is one tokio task, so the clockworker tasks polled in one turn
//! share one budget.
//!
//! Left alone, that made every task polled after the budget ran out waste its poll
//! (its ready channel or socket said `Pending`), and made the task that spent it wait
//! for the next `driver_yield` — or longer, since the deferred wake fires only when
//! the loop returns to tokio. What clockworker does instead ([`budget_spent`]): after
//! each poll, when the budget is spent and other tasks are ready, the run loop ends
//! its turn at once, as at a `driver_yield` (counted in `ExecutorStats::driver_yields`).
//! tokio then polls its driver, runs the deferred wakes, and polls the loop again with a
//! fresh budget. When the budget is spent and nothing else is ready, the loop parks as
//! usual and the deferred wake brings it back. So:
//!
//! - a task never sees `Pending` from a ready tokio resource unless *it* spent the
//!   budget within its own poll — the same 128 operations a `LocalSet` task gets per
//!   poll, after which it goes to the back of its queue like any task that yielded;
//! - the loop returns to tokio at least every 128 budget units, about as often as
//!   tokio's own scheduler polls its driver (every 61 task polls); the check is one
//!   read of tokio's thread-local budget per poll (its measured cost:
//!   `docs/BENCHMARKS.md#tokio-coop-budget-check`);
//! - tokio's protection stays: a task whose tokio operations are always ready still
//!   returns `Pending` every 128 operations, so it cannot monopolise the thread.
//!
//! Polls of tasks that do not touch tokio resources cost nothing against the budget.
//! To opt the whole executor out of tokio's budget, run the loop inside
//! `tokio::task::coop::unconstrained(executor.run())`; then tasks never see a
//! coop-forced `Pending`, and only `driver_yield` and `yield_maybe` bound their turns.
//!
//! Why not a fresh budget per task poll, as `LocalSet` does: tokio has no public way to
//! grant one, and even with one, a task that spends it is only woken when tokio next
//! polls its driver — so the loop has to return to tokio anyway for that task to go on.
//! Wrapping each poll in `unconstrained` would lift the protection above.
//!
//! Outside a tokio runtime (smol, monoio, glommio) there is no budget and nothing of
//! this applies; without the `tokio` feature the check compiles to nothing.

use std::task::Context;

/// Makes the host poll the run loop again *after* it has polled its own I/O and
/// timers, then returns (the caller returns `Pending`).
///
/// With the `tokio` feature and inside a tokio runtime, the wake goes through tokio's
/// deferred-wake list (what `tokio::task::yield_now` does): tokio wakes it only once
/// its driver has run. A plain self-wake would put the run loop straight back in the
/// run queue: a `LocalSet` polls up to 61 tasks per tick before it lets tokio poll
/// its driver, so timers and sockets would wait ~61 driver yields. Elsewhere (smol,
/// monoio, glommio, or without the feature) it is a self-wake.
pub(crate) fn yield_to_host(cx: &mut Context<'_>) {
    #[cfg(feature = "tokio")]
    {
        let mut deferred = std::pin::pin!(tokio::task::yield_now());
        if std::future::Future::poll(deferred.as_mut(), cx).is_pending() {
            return;
        }
    }
    cx.waker().wake_by_ref();
}

/// Called after each task poll: true when the run loop should return to the host now
/// because tokio's cooperative budget for this turn is spent and tasks are still ready
/// (`any_ready`, asked only then; see the module docs). Outside tokio, or without the
/// `tokio` feature, always false.
///
/// Cost on the hot path: one read of tokio's thread-local budget cell.
#[inline(always)]
pub(crate) fn budget_spent(any_ready: impl FnOnce() -> bool) -> bool {
    #[cfg(feature = "tokio")]
    {
        if !tokio::task::coop::has_budget_remaining() {
            return any_ready();
        }
    }
    #[cfg(not(feature = "tokio"))]
    let _ = any_ready;
    false
}
