//! Handing the thread back to the host runtime.

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
