//! Queue keys and `QueueHandle`, the way tasks are spawned onto a queue.

use std::fmt;
use std::future::Future;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::rc::Rc;
use std::sync::Arc;

use crate::core::Core;
use crate::error::SpawnError;
use crate::spawn::spawn;
use crate::task::group::GroupAccount;
use crate::task::JoinHandle;

/// What can name a queue: small copyable values such as integers, enums or
/// `&'static str`. Implemented for every type with these bounds.
pub trait QueueKey: Copy + Eq + std::hash::Hash + fmt::Debug + 'static {}

impl<T: Copy + Eq + std::hash::Hash + fmt::Debug + 'static> QueueKey for T {}

/// Spawns tasks onto one queue of an executor, optionally tagged with a group.
///
/// Cheap to clone; may be kept inside tasks to spawn more work. Not `Send`: tasks are
/// spawned on the executor's thread.
pub struct QueueHandle<K> {
    core: Rc<Core>,
    queue: usize,
    key: K,
    group: Option<Arc<GroupAccount>>,
}

impl<K: QueueKey> QueueHandle<K> {
    pub(crate) fn new(core: Rc<Core>, queue: usize, key: K) -> Self {
        QueueHandle {
            core,
            queue,
            key,
            group: None,
        }
    }

    /// The queue's key.
    pub fn key(&self) -> K {
        self.key
    }

    /// A handle on the same queue whose tasks belong to `group` (a tenant, a
    /// connection…). Schedulers that account by group, such as least attained service,
    /// treat the group's tasks as one.
    pub fn group(&self, group: impl Hash) -> QueueHandle<K> {
        let mut hasher = DefaultHasher::new();
        group.hash(&mut hasher);
        let account = self.core.group_account(self.queue, hasher.finish());
        QueueHandle {
            core: self.core.clone(),
            queue: self.queue,
            key: self.key,
            group: Some(account),
        }
    }

    /// Spawns a task. The future may be `!Send`; it runs on the executor's thread.
    ///
    /// Never fails: once the executor is shut down, the future is dropped and the
    /// handle resolves to [`JoinError::Cancelled`](crate::JoinError::Cancelled). Use
    /// [`try_spawn`](Self::try_spawn) to be told instead.
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        spawn(&self.core, self.queue, self.group.clone(), future)
    }

    /// Spawns a task, or returns [`SpawnError::ShuttingDown`] (and drops the future)
    /// when the executor no longer takes tasks.
    pub fn try_spawn<F>(&self, future: F) -> Result<JoinHandle<F::Output>, SpawnError<K>>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        if self.core.is_shut_down() {
            return Err(SpawnError::ShuttingDown);
        }
        Ok(self.spawn(future))
    }
}

impl<K: Clone> Clone for QueueHandle<K> {
    fn clone(&self) -> Self {
        QueueHandle {
            core: self.core.clone(),
            queue: self.queue,
            key: self.key.clone(),
            group: self.group.clone(),
        }
    }
}

impl<K: fmt::Debug> fmt::Debug for QueueHandle<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueueHandle")
            .field("key", &self.key)
            .field("group", &self.group.as_ref().map(|group| group.id))
            .finish()
    }
}
