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
pub trait WeightController<K>: 'static {
    /// The weight the queue should have now, or `None` to keep it.
    fn weight(&mut self, stats: &QueueStats<K>) -> Option<u32>;

    /// How often to be consulted (default: every 10 ms).
    fn interval(&self) -> Duration {
        Duration::from_millis(10)
    }
}

/// Grows a queue's weight with its backlog: `base + ready_tasks / tasks_per_step`,
/// capped at `max`. For a background queue (compaction, flushing) that should stay
/// polite while it keeps up and claim more of the core when work piles up.
#[derive(Debug, Clone)]
pub struct BacklogController {
    base: u32,
    max: u32,
    tasks_per_step: usize,
}

impl BacklogController {
    /// Weight `base` when the queue is empty, one more per `tasks_per_step` ready
    /// tasks, never above `max`. `tasks_per_step` of 0 is taken as 1.
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
