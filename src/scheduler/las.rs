//! `LAS`: least attained service first, per group, in O(1).

use std::collections::VecDeque;

use super::{ReadyTask, Scheduler};

/// Number of service buckets: bucket `b` holds groups whose attained service has
/// `b` significant bits, i.e. lies in `[2^(b-1), 2^b)` ns (bucket 0: none yet).
const BUCKETS: usize = 64;

/// Default for [`LAS::with_starvation_guard`]: one pop in 16 serves the oldest
/// waiting task. Small enough that a heavy group under a flood of light ones still
/// gets one of every 16 polls of this queue; large enough that light tasks keep the
/// other 15 (the effect on tail latency is measured by `benches/tail.rs`).
///
/// ```rust
/// use clockworker::scheduler::{DEFAULT_GUARD_EVERY, LAS};
///
/// // Twice as much room for light tasks as the default, at the heavy groups' expense.
/// let las = LAS::new().with_starvation_guard(DEFAULT_GUARD_EVERY * 2);
/// # drop(las);
/// ```
pub const DEFAULT_GUARD_EVERY: u32 = 16;

/// Least Attained Service: the ready task whose *group* has been polled for the
/// least CPU time so far runs first.
///
/// Without knowing task sizes, short requests finish ahead of long ones, and a group
/// (a tenant, see [`QueueHandle::group`](crate::QueueHandle::group)) that floods the
/// queue competes mostly with itself. A task spawned without a group is its own group.
///
/// **Service per burst** ([`LAS::new`]). A task without a group is ranked by the CPU
/// time of its current *burst*: the polls since it last waited on something outside
/// itself. A wake from outside its own poll (a socket, a timer, a channel, another
/// task, another thread) starts a new burst at zero; a wake during its own poll
/// (`clockworker::yield_now`, `yield_maybe`, waking its own waker) goes on with the
/// burst. So a long-lived task that does a little work per event (an accept loop, a
/// dispatcher that spawns one task per request, a connection's read loop) keeps the
/// rank of a short task, while a CPU-heavy task that only yields keeps counting and
/// cannot reset itself. A yield through the host (`tokio::task::yield_now`) is a wait
/// on the host and starts a new burst: CPU-heavy tasks should yield with
/// `clockworker::yield_now` or `yield_maybe`. [`LAS::cumulative`] keeps the classic
/// rule (service over the task's whole life).
///
/// **Groups** are ranked by the service of the whole group: every poll of every task
/// of the group, bursts or not, while the group lives (while one of its tasks or a
/// handle from `group(..)` exists). It does not age otherwise: a tenant's account
/// starts at zero when its group is created again.
///
/// Service is kept in power-of-two buckets with a bitmask of non-empty buckets, FIFO
/// within a bucket, so `push` and `pop` are O(1) (one `trailing_zeros`, one deque
/// operation). A task is filed under its group's service when it becomes ready; when
/// `pop` meets a task whose group was served meanwhile (another task of the group
/// ran), the task is re-filed in its group's current bucket instead of running. Each
/// re-filing moves a task to a strictly higher bucket, so it happens at most 63 times
/// in a task's life: `pop` is amortised O(1).
///
/// **Starvation guard.** Every `guard_every`-th pop serves the task filed earliest
/// (the oldest front of all buckets; each bucket is in filing order) instead. Hence a
/// ready task, however much service it attained, is polled within
/// `guard_every × (n + 1)` pops of this queue after it was filed, where `n` is the
/// number of tasks filed before it that still wait: each guard pop removes one of them
/// (or it). Re-filing restarts that count, but happens only when the task's group
/// received service in between. This is the bound on how long a fat task waits, under
/// either rule: restarting other tasks' bursts moves them ahead of it in the buckets,
/// never past the guard.
///
/// **Memory.** The scheduler keeps no per-group state: only the ready tasks. Group
/// accounts live in the tasks' metadata and go away with the group's last task.
///
/// ```rust
/// use clockworker::scheduler::LAS;
/// use clockworker::ExecutorBuilder;
/// use std::{cell::RefCell, rc::Rc, time::Duration};
///
/// let executor = ExecutorBuilder::new()
///     .with_queue_scheduler("api", 1, LAS::new())
///     .build()
///     .unwrap();
/// let api = executor.queue("api").unwrap();
/// let done = Rc::new(RefCell::new(Vec::new()));
/// let spawn = |tenant: &'static str, name: &'static str, cpu_ms: u64| {
///     let log = done.clone();
///     api.group(tenant).spawn(async move {
///         std::thread::sleep(Duration::from_millis(cpu_ms)); // CPU-bound work
///         log.borrow_mut().push(name);
///     })
/// };
/// // Spawned in this order; a FIFO would run them in this order too.
/// let tasks = [spawn("heavy", "heavy 1", 2), spawn("heavy", "heavy 2", 0), spawn("light", "light", 0)];
/// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// runtime.block_on(executor.run_until(async { for task in tasks { task.await.unwrap() } }));
/// // Once "heavy 1" has used 2 ms, the light tenant goes ahead of the heavy one.
/// assert_eq!(*done.borrow(), ["heavy 1", "light", "heavy 2"]);
/// ```
#[allow(clippy::upper_case_acronyms)] // the policy's name, as in the literature
#[derive(Debug)]
pub struct LAS {
    buckets: Vec<VecDeque<Waiting>>,
    /// Bit `b` set when `buckets[b]` is not empty.
    nonempty: u64,
    len: usize,
    next_seq: u64,
    pops_since_guard: u32,
    guard_every: u32,
    /// Whether a task's own service restarts with each burst (see the type's docs).
    per_burst: bool,
}

#[derive(Debug)]
struct Waiting {
    /// Order of becoming ready, for the starvation guard.
    seq: u64,
    task: ReadyTask,
}

impl Default for LAS {
    fn default() -> Self {
        Self::new()
    }
}

impl LAS {
    /// See `QueueScheduler::release_spare`; each service bucket is trimmed as a queue
    /// of its own.
    pub(crate) fn release_spare(&mut self) {
        for bucket in &mut self.buckets {
            if let Some(keep) = super::spare_to_keep(bucket.len(), bucket.capacity()) {
                bucket.shrink_to(keep);
            }
        }
    }

    /// An empty LAS scheduler with the default starvation guard
    /// ([`DEFAULT_GUARD_EVERY`]), counting a task's own service per burst (see the
    /// type's docs; [`cumulative`](Self::cumulative) for the classic rule).
    ///
    /// ```rust
    /// use clockworker::scheduler::{Scheduler, LAS};
    /// use clockworker::ExecutorBuilder;
    ///
    /// let las = LAS::new();
    /// assert!(las.is_empty() && las.needs_timing());
    /// let executor = ExecutorBuilder::new().with_queue_scheduler("tenants", 1, las).build();
    /// assert!(executor.is_ok());
    /// ```
    pub fn new() -> Self {
        LAS {
            buckets: (0..BUCKETS).map(|_| VecDeque::new()).collect(),
            nonempty: 0,
            len: 0,
            next_seq: 0,
            pops_since_guard: 0,
            guard_every: DEFAULT_GUARD_EVERY,
            per_burst: true,
        }
    }

    /// The classic rule: a task's service counts every poll of its life, whatever it
    /// waited for in between. A long-lived task that does a little work per event (an
    /// accept loop, a dispatcher) then ranks behind every fat task after a while, and
    /// so does the work it hands out; prefer [`new`](Self::new) unless that is what you
    /// want. Same starvation guard as `new`.
    ///
    /// ```rust
    /// use clockworker::scheduler::LAS;
    /// use clockworker::ExecutorBuilder;
    ///
    /// let executor = ExecutorBuilder::new()
    ///     .with_queue_scheduler("batch", 1, LAS::cumulative())
    ///     .build();
    /// assert!(executor.is_ok());
    /// ```
    pub fn cumulative() -> Self {
        LAS {
            per_burst: false,
            ..Self::new()
        }
    }

    /// Whether the task's own service restarts with each burst (`new`) or accumulates
    /// over its life (`cumulative`).
    pub(crate) fn counts_per_burst(&self) -> bool {
        self.per_burst
    }

    /// Every `guard_every`-th pop serves the longest-waiting task (0 disables the
    /// guard: pure LAS, where a heavy group can starve under sustained load).
    ///
    /// ```rust
    /// use clockworker::scheduler::LAS;
    /// use clockworker::ExecutorBuilder;
    ///
    /// // Every 4th pop serves the longest-waiting task, whatever its group's service.
    /// let executor = ExecutorBuilder::new()
    ///     .with_queue_scheduler("tenants", 1, LAS::new().with_starvation_guard(4))
    ///     .build();
    /// assert!(executor.is_ok());
    /// ```
    pub fn with_starvation_guard(mut self, guard_every: u32) -> Self {
        self.guard_every = guard_every;
        self
    }

    #[inline]
    fn bucket_of(service_ns: u64) -> usize {
        ((u64::BITS - service_ns.leading_zeros()) as usize).min(BUCKETS - 1)
    }

    /// Files `task` at the back of its group's current bucket.
    #[inline]
    fn file(&mut self, task: ReadyTask) {
        let bucket = Self::bucket_of(task.group_attained_service_ns());
        let seq = self.next_seq;
        self.next_seq += 1;
        self.buckets[bucket].push_back(Waiting { seq, task });
        self.nonempty |= 1 << bucket;
    }

    /// Takes the front task of a non-empty bucket.
    #[inline]
    fn take_front(&mut self, bucket: usize) -> ReadyTask {
        let queue = &mut self.buckets[bucket];
        let waiting = queue
            .pop_front()
            .expect("the non-empty mask names only non-empty buckets");
        if queue.is_empty() {
            self.nonempty &= !(1 << bucket);
        }
        waiting.task
    }

    /// The non-empty bucket whose front waited longest.
    fn oldest_bucket(&self) -> usize {
        let mut bits = self.nonempty;
        let mut best = (u64::MAX, 0);
        while bits != 0 {
            let bucket = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            if let Some(front) = self.buckets[bucket].front() {
                if front.seq < best.0 {
                    best = (front.seq, bucket);
                }
            }
        }
        best.1
    }
}

impl Scheduler for LAS {
    #[inline]
    fn push(&mut self, task: ReadyTask) {
        self.file(task);
        self.len += 1;
    }

    #[inline]
    fn pop(&mut self) -> Option<ReadyTask> {
        if self.nonempty == 0 {
            return None;
        }
        self.pops_since_guard += 1;
        if self.guard_every != 0 && self.pops_since_guard >= self.guard_every {
            self.pops_since_guard = 0;
            let bucket = self.oldest_bucket();
            let task = self.take_front(bucket);
            self.len -= 1;
            return Some(task);
        }
        loop {
            let bucket = self.nonempty.trailing_zeros() as usize;
            let task = self.take_front(bucket);
            if Self::bucket_of(task.group_attained_service_ns()) > bucket {
                self.file(task);
                continue;
            }
            self.len -= 1;
            return Some(task);
        }
    }

    #[inline]
    fn len(&self) -> usize {
        self.len
    }

    /// LAS orders by attained service, which the executor keeps only for queues that
    /// ask for timing. The per-poll report itself is not needed (`observe` is a no-op).
    fn needs_timing(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::test_support::ready_task;
    use crate::task::group::GroupRegistry;

    fn drain(las: &mut LAS) -> Vec<u64> {
        std::iter::from_fn(|| las.pop().map(|t| t.arrival())).collect()
    }

    #[test]
    fn least_served_group_first_fifo_within_a_bucket() {
        let _watchdog = crate::test_watchdog::watchdog();
        let mut las = LAS::new().with_starvation_guard(0);
        las.push(ready_task(0, None, 5_000_000)); // 5 ms
        las.push(ready_task(1, None, 3_000)); // 3 µs
        las.push(ready_task(2, None, 0));
        las.push(ready_task(3, None, 2_500)); // same power-of-two bucket as 3 µs
        las.push(ready_task(4, None, 0));
        assert_eq!(las.len(), 5);
        assert_eq!(drain(&mut las), vec![2, 4, 1, 3, 0]);
        assert_eq!(las.len(), 0);
        assert!(las.is_empty());
    }

    #[test]
    fn tasks_of_a_group_share_its_service() {
        let _watchdog = crate::test_watchdog::watchdog();
        let mut groups = GroupRegistry::default();
        let heavy = groups.account(0, 1);
        let light = groups.account(0, 2);
        heavy.record_poll(10_000_000, 0);
        let mut las = LAS::new().with_starvation_guard(0);
        // A fresh task of the heavy group counts as heavy, although it never ran.
        las.push(ready_task(0, Some(heavy.clone()), 0));
        las.push(ready_task(1, Some(light.clone()), 0));
        assert_eq!(drain(&mut las), vec![1, 0]);
    }

    #[test]
    fn a_task_whose_group_was_served_meanwhile_is_refiled() {
        let _watchdog = crate::test_watchdog::watchdog();
        let mut groups = GroupRegistry::default();
        let flood = groups.account(0, 1);
        let mut las = LAS::new().with_starvation_guard(0);
        for arrival in 0..100 {
            las.push(ready_task(arrival, Some(flood.clone()), 0));
        }
        // The flooding group's first task runs for 1 ms...
        assert_eq!(las.pop().map(|t| t.arrival()), Some(0));
        flood.record_poll(1_000_000, 0);
        // ...then another tenant's task arrives: it runs before the other 99.
        las.push(ready_task(1_000, None, 0));
        assert_eq!(las.pop().map(|t| t.arrival()), Some(1_000));
        assert_eq!(drain(&mut las), (1..100).collect::<Vec<_>>());
    }

    #[test]
    fn starvation_guard_serves_a_heavy_task_within_its_bound() {
        let _watchdog = crate::test_watchdog::watchdog();
        const GUARD: u32 = 8;
        let mut las = LAS::new().with_starvation_guard(GUARD);
        las.push(ready_task(0, None, 1 << 40));
        // Sustained load: a fresh light task arrives before every pop.
        let mut next = 1;
        let mut pops = 0;
        loop {
            las.push(ready_task(next, None, 0));
            next += 1;
            pops += 1;
            if las.pop().map(|t| t.arrival()) == Some(0) {
                break;
            }
            assert!(pops < 1_000, "heavy task starved");
        }
        // Filed first with no one ahead (n = 0): within GUARD × 1 pops.
        assert!(pops <= GUARD, "heavy task served after {pops} pops");
        // 1 + pops pushed, pops popped (the last by the guard): one task left.
        assert_eq!(las.len(), 1, "len after a guard pop");
    }

    /// `LAS::new()` (and `Default`) come with the default guard: under sustained
    /// load a heavy task is served within `DEFAULT_GUARD_EVERY` pops.
    #[test]
    fn new_and_default_have_the_default_starvation_guard() {
        let _watchdog = crate::test_watchdog::watchdog();
        for mut las in [LAS::new(), LAS::default()] {
            las.push(ready_task(0, None, 1 << 40));
            let mut served_after = None;
            for pops in 1..=10 * DEFAULT_GUARD_EVERY as u64 {
                las.push(ready_task(pops, None, 0));
                if las.pop().map(|t| t.arrival()) == Some(0) {
                    served_after = Some(pops);
                    break;
                }
            }
            assert_eq!(
                served_after,
                Some(u64::from(DEFAULT_GUARD_EVERY)),
                "the heavy task starved: no default guard"
            );
        }
    }

    /// Service up to `u64::MAX` ns files into the last bucket, behind the lighter ones.
    #[test]
    fn the_largest_service_goes_to_the_last_bucket() {
        let _watchdog = crate::test_watchdog::watchdog();
        assert_eq!(LAS::bucket_of(u64::MAX), BUCKETS - 1);
        assert_eq!(LAS::bucket_of(1 << 63), BUCKETS - 1);
        assert_eq!(LAS::bucket_of(1 << 62), BUCKETS - 1);
        assert_eq!(LAS::bucket_of(1), 1);
        let mut las = LAS::new().with_starvation_guard(0);
        las.push(ready_task(0, None, u64::MAX));
        las.push(ready_task(1, None, 1 << 40));
        assert_eq!(drain(&mut las), vec![1, 0]);
    }

    #[test]
    fn without_the_guard_a_heavy_task_starves_under_sustained_load() {
        let _watchdog = crate::test_watchdog::watchdog();
        let mut las = LAS::new().with_starvation_guard(0);
        las.push(ready_task(0, None, 1 << 40));
        for next in 1..10_000 {
            las.push(ready_task(next, None, 0));
            assert_ne!(las.pop().map(|t| t.arrival()), Some(0));
        }
        assert_eq!(las.len(), 1);
    }

    #[test]
    fn guard_bound_holds_with_many_waiting_tasks() {
        let _watchdog = crate::test_watchdog::watchdog();
        const GUARD: u32 = 4;
        let mut las = LAS::new().with_starvation_guard(GUARD);
        // n = 20 heavy tasks filed before the watched one (all equally heavy).
        for arrival in 0..=20 {
            las.push(ready_task(arrival, None, 1 << 40));
        }
        let mut pops = 0;
        let mut next = 100;
        loop {
            las.push(ready_task(next, None, 0));
            next += 1;
            pops += 1;
            if las.pop().map(|t| t.arrival()) == Some(20) {
                break;
            }
            assert!(pops <= GUARD * 21, "not served after {pops} pops");
        }
    }
}
