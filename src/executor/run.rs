//! Driving the run loop for `Executor::run` and `run_until`: one turn of the loop as
//! the host polls it, the weight controllers consulted at each turn, and the waker of
//! the future `run_until` drives.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake};

use crate::context::{with_current, Entered};
use crate::core::Stop;
use crate::eevdf::MAX_WEIGHT;
use crate::inbox::Inbox;
use crate::queue::QueueKey;
use crate::task::TaskRef;

use super::Executor;

impl<K: QueueKey> Executor<K> {
    /// One poll of the run loop by the host. `poll_main(woken)` drives the future
    /// `run`/`run_until` serve; it is called with `woken == true` whenever
    /// `main_woken` was set, and with `false` before returning to the host.
    pub(super) fn turn<T>(
        &self,
        cx: &mut Context<'_>,
        main_woken: &AtomicBool,
        mut poll_main: impl FnMut(bool) -> Poll<T>,
    ) -> Poll<T> {
        let _entered = Entered::new(&self.core);
        self.core.begin_turn();
        self.core.forget_parked(cx.waker());
        self.consult_controllers();
        #[cfg(feature = "metrics")]
        self.export_metrics_if_due();
        let mut polled = false;
        loop {
            let woken = main_woken.swap(false, Ordering::AcqRel);
            if let Poll::Ready(output) = poll_main(woken) {
                self.core.end_turn(None);
                return Poll::Ready(output);
            }
            if woken {
                // Keep the driven future's poll out of the next task's measured time.
                self.core.refresh_clock();
            }
            let stop = self.core.poll_tasks(cx, main_woken, &mut polled);
            // The driven future's poll, next, is no queue's time.
            self.core.close_unread_run();
            match stop {
                Stop::MainWoken => continue,
                stop => {
                    if let Poll::Ready(output) = poll_main(false) {
                        self.core.end_turn(None);
                        return Poll::Ready(output);
                    }
                    self.core.end_turn(Some(stop));
                    return Poll::Pending;
                }
            }
        }
    }

    /// Lets due weight controllers adjust their queues' weights.
    fn consult_controllers(&self) {
        let Ok(mut controllers) = self.controllers.try_borrow_mut() else {
            return;
        };
        if controllers.is_empty() {
            return;
        }
        let now = self.core.now_ns();
        for (queue, attached) in controllers.iter_mut() {
            if now < attached.next_ns {
                continue;
            }
            attached.next_ns = now.saturating_add(attached.interval_ns);
            // By queue index: a key's `Hash` or `Eq` is user code and may panic.
            let stats = self.core.queue_stats(*queue, attached.key);
            if let Some(weight) = attached.controller.weight(&stats) {
                self.core.set_weight(*queue, weight.clamp(1, MAX_WEIGHT));
            }
        }
    }
}

/// Waker of the `run_until` future: marks it woken and, when the wake comes from
/// outside the run loop, wakes the host.
pub(super) struct MainWake {
    pub(super) woken: AtomicBool,
    inbox: Arc<Inbox<TaskRef>>,
}

impl MainWake {
    /// Woken at first, so that the first turn polls the driven future.
    pub(super) fn new(inbox: Arc<Inbox<TaskRef>>) -> Arc<Self> {
        Arc::new(MainWake {
            woken: AtomicBool::new(true),
            inbox,
        })
    }
}

impl Wake for MainWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        let inside_loop =
            with_current(|core| core.is_some_and(|c| c.id() == self.inbox.executor_id()));
        if !inside_loop {
            self.inbox.notify();
        }
    }
}
