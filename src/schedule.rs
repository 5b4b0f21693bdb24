//! The spawn and wake path: how a task enters its queue, and how it comes back to it
//! when woken.
//!
//! - **Spawn** ([`spawn`]) builds the task (one allocation, `task::cell`, holding its
//!   metadata, its wrapped future and its output) and has the core admit it.
//! - **Wake** ([`LocalQueues`], the `Schedule` of every task): a task woken during its
//!   own poll never gets here (`Runnable::run` hands it back to the run loop). Any
//!   other wake on the executor's thread finds the executor in this thread's list of
//!   executors and pushes the task straight into its queue's scheduler (no lock, no
//!   atomic). A wake during thread teardown, or while the executor is busy with its
//!   own state, goes through the executor's lock-free inbox, as wakes from other
//!   threads do (`task::cell`), and the run loop drains it.

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8};
use std::sync::Arc;

use crate::core::Core;
use crate::task::cell::{self, Schedule};
use crate::task::group::GroupAccount;
use crate::task::panic_slot::PanicSlot;
use crate::task::{JoinHandle, Runnable, TaskFuture, TaskMeta};

thread_local! {
    /// The executors created on this thread and not yet dropped (usually one).
    static LOCAL_CORES: RefCell<Vec<Rc<Core>>> = const { RefCell::new(Vec::new()) };
}

/// Makes `core` reachable from wakes on this thread.
pub(crate) fn register_local(core: Rc<Core>) {
    LOCAL_CORES.with(|cores| cores.borrow_mut().push(core));
}

/// Undoes [`register_local`]; a no-op during thread teardown.
pub(crate) fn deregister_local(id: u64) {
    let _ = LOCAL_CORES.try_with(|cores| {
        if let Ok(mut cores) = cores.try_borrow_mut() {
            cores.retain(|core| core.id() != id);
        }
    });
}

/// Runs `f` on the executor `executor_id` of this thread; `None` when there is none
/// (another thread, or the executor is gone).
pub(crate) fn with_local_core<R>(executor_id: u64, f: impl FnOnce(&Rc<Core>) -> R) -> Option<R> {
    let core = LOCAL_CORES
        .try_with(|cores| {
            let cores = cores.try_borrow().ok()?;
            cores.iter().find(|core| core.id() == executor_id).cloned()
        })
        .ok()
        .flatten()?;
    Some(f(&core))
}

/// Spawns `future` onto queue `queue` of `core`. Never fails: on a shut-down executor
/// the future is dropped at once and the handle resolves `Cancelled`.
pub(crate) fn spawn<F>(
    core: &Rc<Core>,
    queue: usize,
    group: Option<Arc<GroupAccount>>,
    future: F,
) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    if core.is_shut_down() {
        drop(future);
        return JoinHandle::cancelled();
    }
    if let Some(group) = &group {
        group.count_spawned();
    }
    let flags = core.task_flags(queue, group.is_some());
    let task = core.admit(queue, |registry_key| {
        let meta = TaskMeta {
            // Lossless: the builder refuses more than `MAX_QUEUES` queues.
            queue: queue as u16,
            aborted: AtomicBool::new(false),
            flags: AtomicU8::new(flags),
            registry_key,
            group,
            arrival: core.next_arrival(),
            inbox: core.inbox().clone(),
            ready_at_ns: AtomicU64::new(core.now_ns()),
            service_ns: AtomicU64::new(0),
            drop_panic: PanicSlot::new(),
        };
        let hooks = core.clone();
        cell::spawn::<_, _, LocalQueues>(meta, move |meta| TaskFuture::new(future, meta, hooks))
    });
    JoinHandle::new(task)
}

/// How a task woken on its executor's thread (outside its own poll) reaches its queue.
struct LocalQueues;

impl Schedule for LocalQueues {
    /// Finds the task's executor in this thread's list and pushes the task into its
    /// queue; gives the task back when the executor is busy with its own state or not
    /// reachable (thread teardown).
    #[inline]
    fn schedule(runnable: Runnable) -> Result<(), Runnable> {
        let mut slot = Some(runnable);
        let executor_id = slot.as_ref().map_or(0, |r| r.metadata().executor_id());
        let _ = LOCAL_CORES.try_with(|cores| {
            let Ok(cores) = cores.try_borrow() else {
                return;
            };
            if let Some(core) = cores.iter().find(|core| core.id() == executor_id) {
                core.try_push_local(&mut slot);
            }
        });
        match slot {
            None => Ok(()),
            Some(runnable) => Err(runnable),
        }
    }
}
