//! Weight controllers: policies that change a queue's weight while the executor runs
//! (glommio's `Shares::Dynamic`, Seastar's `set_shares` driven by a backlog).

use std::time::Duration;

use crate::eevdf::MAX_WEIGHT;
use crate::stats::QueueStats;

/// Decides a queue's weight from its statistics.
///
/// Attached with
/// [`ExecutorBuilder::with_weight_controller`](crate::ExecutorBuilder::with_weight_controller);
/// the run loop consults it at the start of a turn once [`interval`](Self::interval)
/// has passed since the last time. A new weight is applied like
/// [`Executor::set_weight`](crate::Executor::set_weight): from the next queue choice,
/// lag rescaled, no burst and no penalty. Weights outside `1..=MAX_WEIGHT` are
/// clamped into it.
///
/// A controller that doubles the weight of a queue whose tasks wait too long:
///
/// ```rust
/// use clockworker::{ExecutorBuilder, QueueStats, WeightController};
/// use std::time::Duration;
///
/// struct DelayTarget(Duration);
///
/// impl<K> WeightController<K> for DelayTarget {
///     fn weight(&mut self, stats: &QueueStats<K>) -> Option<u32> {
///         let p99 = stats.queue_delay.quantile(0.99)?; // None: no polls yet, keep
///         (p99 > self.0).then(|| stats.weight.saturating_mul(2))
///     }
///     fn interval(&self) -> Duration {
///         Duration::from_millis(100)
///     }
/// }
///
/// let executor = ExecutorBuilder::new()
///     .with_queue("requests", 4)
///     .with_queue("background", 1)
///     .with_weight_controller("requests", DelayTarget(Duration::from_millis(1)))
///     .build()
///     .unwrap();
/// # drop(executor);
/// ```
pub trait WeightController<K>: 'static {
    /// The weight the queue should have now, or `None` to keep it.
    ///
    /// ```rust
    /// use clockworker::{ExecutorBuilder, QueueStats, WeightController};
    ///
    /// /// Pins the queue's weight, whatever `set_weight` did meanwhile.
    /// struct Fixed(u32);
    ///
    /// impl<K> WeightController<K> for Fixed {
    ///     fn weight(&mut self, stats: &QueueStats<K>) -> Option<u32> {
    ///         (stats.weight != self.0).then_some(self.0)
    ///     }
    /// }
    ///
    /// let executor = ExecutorBuilder::new()
    ///     .with_queue(0u8, 1)
    ///     .with_weight_controller(0, Fixed(5))
    ///     .build()
    ///     .unwrap();
    /// let task = executor.queue(0).unwrap().spawn(async {});
    /// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// runtime.block_on(executor.run_until(task)).unwrap();
    /// assert_eq!(executor.queue_stats(0).unwrap().weight, 5);
    /// ```
    fn weight(&mut self, stats: &QueueStats<K>) -> Option<u32>;

    /// How often to be consulted (default: every 10 ms).
    ///
    /// ```rust
    /// use clockworker::{BacklogController, WeightController};
    /// use std::time::Duration;
    ///
    /// let backlog = BacklogController::new(1, 8, 100);
    /// assert_eq!(WeightController::<u8>::interval(&backlog), Duration::from_millis(10));
    /// ```
    fn interval(&self) -> Duration {
        Duration::from_millis(10)
    }
}

/// Grows a queue's weight with its backlog: `base + ready_tasks / tasks_per_step`,
/// capped at `max`. For a background queue (compaction, flushing) that should stay
/// polite while it keeps up and claim more of the core when work piles up.
///
/// ```rust
/// use clockworker::{BacklogController, ExecutorBuilder};
///
/// let executor = ExecutorBuilder::new()
///     .with_queue("requests", 8)
///     .with_queue("compaction", 1)
///     .with_weight_controller("compaction", BacklogController::new(1, 8, 100))
///     .build()
///     .unwrap();
/// let compaction = executor.queue("compaction").unwrap();
/// let jobs: Vec<_> = (0..250).map(|_| compaction.spawn(async {})).collect();
/// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// // The controller is consulted as the run loop starts: 250 ready tasks, 1 + 2 = 3.
/// runtime.block_on(executor.run_until(async {}));
/// assert_eq!(executor.queue_stats("compaction").unwrap().weight, 3);
/// # drop(jobs);
/// ```
#[derive(Debug, Clone)]
pub struct BacklogController {
    base: u32,
    max: u32,
    tasks_per_step: usize,
}

impl BacklogController {
    /// Weight `base` when the queue is empty, one more per `tasks_per_step` ready
    /// tasks, never above `max`. `tasks_per_step` of 0 is taken as 1. `base` and `max`
    /// are clamped into `1..=MAX_WEIGHT`, and a `max` below `base` acts as `base`.
    ///
    /// ```rust
    /// use clockworker::{BacklogController, ExecutorBuilder};
    ///
    /// // Weight 2 while idle, +1 per 10 ready tasks, at most 20.
    /// let controller = BacklogController::new(2, 20, 10);
    /// let executor = ExecutorBuilder::new()
    ///     .with_queue("flush", 2)
    ///     .with_weight_controller("flush", controller)
    ///     .build();
    /// assert!(executor.is_ok());
    /// ```
    pub fn new(base: u32, max: u32, tasks_per_step: usize) -> Self {
        BacklogController {
            base: base.clamp(1, MAX_WEIGHT),
            max: max.clamp(1, MAX_WEIGHT),
            tasks_per_step: tasks_per_step.max(1),
        }
    }
}

impl<K> WeightController<K> for BacklogController {
    fn weight(&mut self, stats: &QueueStats<K>) -> Option<u32> {
        let steps = u32::try_from(stats.ready / self.tasks_per_step).unwrap_or(u32::MAX);
        let weight = self.base.saturating_add(steps).min(self.max.max(self.base));
        (weight != stats.weight).then_some(weight)
    }
}

/// A controller attached to one queue, with its schedule.
pub(crate) struct AttachedController<K> {
    pub(crate) key: K,
    pub(crate) controller: Box<dyn WeightController<K>>,
    pub(crate) interval_ns: u64,
    pub(crate) next_ns: u64,
}

impl<K: 'static> AttachedController<K> {
    pub(crate) fn new(key: K, controller: Box<dyn WeightController<K>>) -> Self {
        let interval_ns = u64::try_from(controller.interval().as_nanos()).unwrap_or(u64::MAX);
        AttachedController {
            key,
            controller,
            interval_ns: interval_ns.max(1),
            next_ns: 0,
        }
    }
}
