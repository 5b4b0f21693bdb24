//! Task groups: tasks spawned through the same `QueueHandle::group(..)` key share one
//! account, so group-aware schedulers (LAS) treat a tenant as one, and its figures
//! (`GroupStats`) are kept on every queue.
//!
//! An account is reference-counted by the tasks (and handles) of its group and goes
//! away with the last of them; the registry only keeps weak references and sweeps
//! dead ones when it has doubled since the last sweep, so its size stays within twice
//! the number of live groups (plus a small constant).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::hooks::Ending;
use crate::stats::{AtomicLog2Histogram, GroupStats};

/// The shared account of one group. Written only on the executor thread (hence load +
/// store); atomic because task metadata must be `Sync`.
#[derive(Debug)]
pub(crate) struct GroupAccount {
    /// The hash of the group key given to `QueueHandle::group`.
    pub(crate) id: u64,
    /// CPU time (ns) the group's tasks were polled for.
    service_ns: AtomicU64,
    polls: AtomicU64,
    spawned: AtomicU64,
    completed: AtomicU64,
    cancelled: AtomicU64,
    panicked: AtomicU64,
    queue_delay: AtomicLog2Histogram,
}

/// Adds one to `counter` (executor thread only).
fn bump(counter: &AtomicU64, by: u64) {
    counter.store(counter.load(Ordering::Relaxed) + by, Ordering::Relaxed);
}

impl GroupAccount {
    fn new(id: u64) -> Self {
        GroupAccount {
            id,
            service_ns: AtomicU64::new(0),
            polls: AtomicU64::new(0),
            spawned: AtomicU64::new(0),
            completed: AtomicU64::new(0),
            cancelled: AtomicU64::new(0),
            panicked: AtomicU64::new(0),
            queue_delay: AtomicLog2Histogram::new(),
        }
    }

    pub(crate) fn service_ns(&self) -> u64 {
        self.service_ns.load(Ordering::Relaxed)
    }

    /// Books a poll of `ran_ns` by a task that waited `waited_ns` to run.
    #[inline]
    pub(crate) fn record_poll(&self, ran_ns: u64, waited_ns: u64) {
        bump(&self.service_ns, ran_ns);
        bump(&self.polls, 1);
        self.queue_delay.record(waited_ns);
    }

    /// Counts a task spawned in the group.
    pub(crate) fn count_spawned(&self) {
        bump(&self.spawned, 1);
    }

    /// Counts the end of one of the group's tasks.
    pub(crate) fn count_ending(&self, ending: Ending) {
        let counter = match ending {
            Ending::Completed => &self.completed,
            Ending::Cancelled => &self.cancelled,
            Ending::Panicked | Ending::PanickedWhileCancelled => &self.panicked,
        };
        bump(counter, 1);
    }

    /// The group's figures, for the queue named `key`.
    pub(crate) fn stats<K>(&self, key: K) -> GroupStats<K> {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        GroupStats {
            key,
            group: self.id,
            service_time: Duration::from_nanos(load(&self.service_ns)),
            polls: load(&self.polls),
            spawned: load(&self.spawned),
            completed: load(&self.completed),
            cancelled: load(&self.cancelled),
            panicked: load(&self.panicked),
            queue_delay: self.queue_delay.snapshot(),
        }
    }
}

/// Smallest size at which the registry sweeps dead accounts.
const MIN_SWEEP_LEN: usize = 64;

/// The executor's groups, by queue and group id.
#[derive(Debug, Default)]
pub(crate) struct GroupRegistry {
    accounts: HashMap<(usize, u64), Weak<GroupAccount>>,
    sweep_at: usize,
}

impl GroupRegistry {
    /// The live account of group `id` in queue `queue`, created if needed.
    pub(crate) fn account(&mut self, queue: usize, id: u64) -> Arc<GroupAccount> {
        if let Some(account) = self.accounts.get(&(queue, id)).and_then(Weak::upgrade) {
            return account;
        }
        let account = Arc::new(GroupAccount::new(id));
        self.accounts.insert((queue, id), Arc::downgrade(&account));
        if self.accounts.len() >= self.sweep_at.max(MIN_SWEEP_LEN) {
            self.accounts.retain(|_, weak| weak.strong_count() > 0);
            self.sweep_at = self.accounts.len() * 2;
        }
        account
    }

    /// The live account of group `id` in queue `queue`, if there is one.
    pub(crate) fn find(&self, queue: usize, id: u64) -> Option<Arc<GroupAccount>> {
        self.accounts.get(&(queue, id)).and_then(Weak::upgrade)
    }

    /// Number of entries (live or not yet swept), for tests.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.accounts.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_key_same_account_until_dropped() {
        let mut registry = GroupRegistry::default();
        let a = registry.account(0, 7);
        let b = registry.account(0, 7);
        assert!(Arc::ptr_eq(&a, &b));
        let other_queue = registry.account(1, 7);
        assert!(!Arc::ptr_eq(&a, &other_queue));
        a.record_poll(5, 1);
        assert_eq!(b.service_ns(), 5);
        assert_eq!(b.stats(()).polls, 1);
        drop((a, b));
        let fresh = registry.account(0, 7);
        assert_eq!(fresh.service_ns(), 0, "a dead group's service is forgotten");
    }

    #[test]
    fn registry_stays_bounded_by_live_groups() {
        let mut registry = GroupRegistry::default();
        let live: Vec<_> = (0..10).map(|id| registry.account(0, id)).collect();
        for id in 10..100_000 {
            drop(registry.account(0, id));
        }
        assert!(
            registry.len() <= 2 * live.len() + MIN_SWEEP_LEN,
            "registry holds {} entries for {} live groups",
            registry.len(),
            live.len()
        );
        for (id, account) in live.iter().enumerate() {
            assert!(Arc::ptr_eq(account, &registry.account(0, id as u64)));
        }
    }
}
