//! Task groups: tasks spawned through the same `QueueHandle::group(..)` key share one
//! service account, so group-aware schedulers (LAS) treat a tenant as one.
//!
//! An account is reference-counted by the tasks (and handles) of its group and goes
//! away with the last of them; the registry only keeps weak references and sweeps
//! dead ones when it has doubled since the last sweep, so its size stays within twice
//! the number of live groups (plus a small constant).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

/// The shared service account of one group.
#[derive(Debug)]
pub(crate) struct GroupAccount {
    /// The hash of the group key given to `QueueHandle::group`.
    pub(crate) id: u64,
    /// CPU time (ns) the group's tasks were polled for. Written only on the executor
    /// thread; atomic because task metadata must be `Sync`.
    service_ns: AtomicU64,
}

impl GroupAccount {
    pub(crate) fn service_ns(&self) -> u64 {
        self.service_ns.load(Ordering::Relaxed)
    }

    /// Adds a poll's duration (executor thread only, hence load + store).
    #[inline]
    pub(crate) fn charge(&self, ns: u64) {
        self.service_ns
            .store(self.service_ns() + ns, Ordering::Relaxed);
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
        let account = Arc::new(GroupAccount {
            id,
            service_ns: AtomicU64::new(0),
        });
        self.accounts.insert((queue, id), Arc::downgrade(&account));
        if self.accounts.len() >= self.sweep_at.max(MIN_SWEEP_LEN) {
            self.accounts.retain(|_, weak| weak.strong_count() > 0);
            self.sweep_at = self.accounts.len() * 2;
        }
        account
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
        a.charge(5);
        assert_eq!(b.service_ns(), 5);
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
