//! `Executor`: the public face of the run loop — `run`, `run_until`, `shutdown`, stats.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
#[cfg(feature = "metrics")]
use std::time::Duration;

use crate::context::{with_current, Entered};
use crate::controller::AttachedController;
use crate::core::{Config, Core, Stop};
use crate::eevdf::MAX_WEIGHT;
use crate::error::{SetWeightError, SpawnError};
use crate::inbox::Inbox;
#[cfg(feature = "metrics")]
use crate::observe::metrics::MetricsExport;
use crate::queue::{QueueHandle, QueueKey};
use crate::ready::Ready;
use crate::remote_spawn::RemoteSpawner;
use crate::spawn::{deregister_local, register_local};
use crate::stats::{ExecutorStats, QueueStats};
use crate::task::Runnable;

/// Source of executor ids, unique in the process.
static NEXT_EXECUTOR_ID: AtomicU64 = AtomicU64::new(1);

/// A single-threaded executor with weighted queues, run inside a host runtime.
///
/// Built by [`ExecutorBuilder`](crate::ExecutorBuilder). It is `!Send` and `!Sync`: it
/// lives on the thread that built it, and its run loop is one future of the host
/// runtime on that thread. Dropping it cancels every task it still holds, as
/// [`shutdown`](Self::shutdown) does (a panic in a future's `Drop` goes to the task's
/// handle; the executor's `Drop` does not panic).
///
/// ```compile_fail
/// fn assert_send<T: Send>() {}
/// assert_send::<clockworker::Executor<u8>>();
/// ```
pub struct Executor<K> {
    core: Rc<Core>,
    keys: Vec<K>,
    index: HashMap<K, usize>,
    /// Weight controllers, with the index of the queue each one steers.
    controllers: RefCell<Vec<(usize, AttachedController<K>)>>,
    #[cfg(feature = "metrics")]
    metrics: RefCell<MetricsExport>,
}

impl<K: QueueKey> Executor<K> {
    pub(crate) fn new(
        keys: Vec<K>,
        ready: Ready,
        config: Config,
        controllers: Vec<AttachedController<K>>,
    ) -> Rc<Self> {
        // Tasks keep their queue's index in a `u32` (see `TaskMeta`). Unreachable in
        // practice: that many queues would not fit in memory.
        assert!(
            u32::try_from(keys.len()).is_ok(),
            "an executor holds at most u32::MAX queues"
        );
        let id = NEXT_EXECUTOR_ID.fetch_add(1, Ordering::Relaxed);
        #[cfg(any(feature = "metrics", feature = "tracing"))]
        let labels = crate::observe::key_labels(&keys);
        let core = Rc::new(Core::new(
            id,
            ready,
            keys.len(),
            config,
            #[cfg(feature = "tracing")]
            crate::observe::spans::PollSpans::new(id, labels.clone()),
        ));
        register_local(core.clone());
        let index: HashMap<K, usize> = keys.iter().enumerate().map(|(i, key)| (*key, i)).collect();
        // The builder checked that every controller names a queue.
        let controllers = controllers
            .into_iter()
            .filter_map(|attached| Some((*index.get(&attached.key)?, attached)))
            .collect();
        Rc::new(Executor {
            core,
            keys,
            index,
            controllers: RefCell::new(controllers),
            #[cfg(feature = "metrics")]
            metrics: RefCell::new(MetricsExport::new(id, labels)),
        })
    }

    /// A handle that spawns onto the queue named `key`.
    pub fn queue(&self, key: K) -> Result<QueueHandle<K>, SpawnError<K>> {
        match self.index.get(&key) {
            Some(&queue) => Ok(QueueHandle::new(self.core.clone(), queue, key)),
            None => Err(SpawnError::UnknownQueue(key)),
        }
    }

    /// Runs tasks until [`shutdown`](Self::shutdown) is called (from a task, or from
    /// other code on this thread), then returns. Returns at once on a shut-down executor.
    pub async fn run(&self) {
        let never_woken = AtomicBool::new(false);
        poll_fn(|cx| {
            self.turn(cx, &never_woken, |_| {
                if self.core.is_shut_down() {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            })
        })
        .await
    }

    /// Runs tasks while driving `future`, and returns its output as soon as it
    /// completes. Tasks still pending stay in their queues and resume on the next
    /// `run`/`run_until`.
    pub async fn run_until<F: Future>(&self, future: F) -> F::Output {
        let mut future = pin!(future);
        let main = Arc::new(MainWake {
            woken: AtomicBool::new(true),
            inbox: self.core.inbox().clone(),
        });
        let main_waker = Waker::from(main.clone());
        poll_fn(|cx| {
            self.turn(cx, &main.woken, |woken| {
                if !woken {
                    return Poll::Pending;
                }
                future.as_mut().poll(&mut Context::from_waker(&main_waker))
            })
        })
        .await
    }

    /// One poll of the run loop by the host. `poll_main(woken)` drives the future
    /// `run`/`run_until` serve; it is called with `woken == true` whenever
    /// `main_woken` was set, and with `false` before returning to the host.
    fn turn<T>(
        &self,
        cx: &mut Context<'_>,
        main_woken: &AtomicBool,
        mut poll_main: impl FnMut(bool) -> Poll<T>,
    ) -> Poll<T> {
        let _entered = Entered::new(&self.core);
        self.core.begin_turn();
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
            match self.core.poll_tasks(cx, main_woken, &mut polled) {
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

    /// Stops the executor: new spawns are refused (`try_spawn` errs, `spawn` returns a
    /// handle that resolves `Cancelled`), every task not yet finished is cancelled (its
    /// future dropped on this thread, its handle resolving `Cancelled`), and `run`
    /// returns. Called from inside a task, the cancellation happens right after that
    /// task's poll. Idempotent.
    ///
    /// A future whose `Drop` panics during the cancellation does not stop it, and the
    /// panic leaves neither `shutdown` nor `run`, whatever
    /// [`with_panic_on_task_panic`](crate::ExecutorBuilder::with_panic_on_task_panic)
    /// says: its handle resolves [`JoinError::Panic`](crate::JoinError) with the payload
    /// (dropped here if the handle is gone), the task counts as panicked, and every
    /// other task is still cancelled. The same holds when the executor is dropped.
    pub fn shutdown(&self) {
        self.core.shutdown();
    }

    /// Changes a queue's weight from the next queue choice on. The queue's lag is
    /// rescaled (as Linux does on reweight), so the change brings neither a burst of
    /// service nor a penalty.
    pub fn set_weight(&self, key: K, weight: u32) -> Result<(), SetWeightError<K>> {
        let &queue = self
            .index
            .get(&key)
            .ok_or(SetWeightError::UnknownQueue(key))?;
        if weight == 0 {
            return Err(SetWeightError::ZeroWeight(key));
        }
        if weight > MAX_WEIGHT {
            return Err(SetWeightError::WeightTooLarge { key, weight });
        }
        self.core.set_weight(queue, weight);
        Ok(())
    }

    /// A `Send + Sync` spawner for other threads: spawns `Send` futures onto this
    /// executor's queues (see [`RemoteSpawner`]).
    pub fn remote(&self) -> RemoteSpawner<K> {
        RemoteSpawner::new(self.core.inbox().clone(), self.index.clone())
    }

    /// True once [`shutdown`](Self::shutdown) was called.
    pub fn is_shut_down(&self) -> bool {
        self.core.is_shut_down()
    }

    /// Executor-wide statistics.
    pub fn stats(&self) -> ExecutorStats {
        self.core.executor_stats()
    }

    /// Statistics of the queue named `key`, or `None` when there is no such queue.
    pub fn queue_stats(&self, key: K) -> Option<QueueStats<K>> {
        let &queue = self.index.get(&key)?;
        Some(self.core.queue_stats(queue, key))
    }

    /// The keys of all queues, in the order they were added.
    pub fn queue_keys(&self) -> &[K] {
        &self.keys
    }

    /// Exports this executor's stats through the `metrics` facade now, to the
    /// recorder in force on this thread (see [`crate::observe`] for the names).
    #[cfg(feature = "metrics")]
    pub fn export_metrics(&self) {
        let queues = self
            .keys
            .iter()
            .enumerate()
            .map(|(queue, key)| self.core.queue_stats(queue, *key));
        let stats = self.core.executor_stats();
        if let Ok(mut metrics) = self.metrics.try_borrow_mut() {
            metrics.export(queues, &stats);
        }
    }

    /// How often the run loop exports stats (default
    /// [`DEFAULT_METRICS_INTERVAL`](crate::observe::DEFAULT_METRICS_INTERVAL)); `None`
    /// stops the periodic export ([`export_metrics`](Self::export_metrics) still
    /// works). Takes effect at the next turn of the run loop.
    #[cfg(feature = "metrics")]
    pub fn set_metrics_interval(&self, interval: Option<Duration>) {
        self.metrics.borrow_mut().set_interval(interval);
    }

    /// Sets the value of the `executor` label of this executor's metrics (default:
    /// its id, a number unique in the process).
    #[cfg(feature = "metrics")]
    pub fn set_metrics_label(&self, label: impl Into<String>) {
        self.metrics.borrow_mut().set_label(Rc::from(label.into()));
    }

    /// At the start of a turn: exports the stats when the periodic export is due.
    #[cfg(feature = "metrics")]
    fn export_metrics_if_due(&self) {
        let now = self.core.now_ns();
        let due = self
            .metrics
            .try_borrow_mut()
            .is_ok_and(|mut metrics| metrics.due(now));
        if due {
            self.export_metrics();
        }
    }
}

impl<K> Drop for Executor<K> {
    fn drop(&mut self) {
        self.core.shutdown();
        deregister_local(self.core.id());
    }
}

impl<K: fmt::Debug> fmt::Debug for Executor<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Executor")
            .field("queues", &self.keys)
            .field("shut_down", &self.core.is_shut_down())
            .finish()
    }
}

/// Waker of the `run_until` future: marks it woken and, when the wake comes from
/// outside the run loop, wakes the host.
struct MainWake {
    woken: AtomicBool,
    inbox: Arc<Inbox<Runnable>>,
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
