//! Which executor is polling on this thread right now (for `yield_maybe`, for the
//! `run_until` future's waker and for [`spawn`]), and the guard that marks a poll of
//! the run loop.

use std::cell::RefCell;
use std::rc::Rc;

use crate::core::Core;
use crate::schedule;
use crate::task::JoinHandle;

thread_local! {
    /// The executor whose run loop is being polled on this thread, innermost first.
    static CURRENT: RefCell<Option<Rc<Core>>> = const { RefCell::new(None) };
}

/// Marks `core` as polling on this thread until dropped, restoring the previous value
/// (executors may nest: a task of one may `run_until` another). Also restores state
/// when a task panic unwinds through the run loop.
pub(crate) struct Entered {
    core: Rc<Core>,
    previous: Option<Rc<Core>>,
}

impl Entered {
    /// # Panics
    /// When the same executor is already being polled: `run`/`run_until` were called
    /// from inside one of its own tasks, or two of its run futures were polled at once.
    pub(crate) fn new(core: &Rc<Core>) -> Self {
        assert!(
            !core.is_polling(),
            "clockworker: Executor::run/run_until polled while the same executor is already \
             running (called from inside one of its own tasks, or two run futures of one \
             executor polled at once); an executor runs one loop at a time"
        );
        core.set_polling(true);
        let previous = CURRENT.with(|current| current.borrow_mut().replace(core.clone()));
        Entered {
            core: core.clone(),
            previous,
        }
    }
}

impl Drop for Entered {
    fn drop(&mut self) {
        self.core.set_polling(false);
        let previous = self.previous.take();
        let _ = CURRENT.try_with(|current| *current.borrow_mut() = previous);
    }
}

/// Runs `f` with the executor polling on this thread, if any.
pub(crate) fn with_current<R>(f: impl FnOnce(Option<&Rc<Core>>) -> R) -> R {
    let mut f = Some(f);
    let result = CURRENT.try_with(|current| {
        let current = current.borrow();
        (f.take().expect("called once"))(current.as_ref())
    });
    match result {
        Ok(r) => r,
        Err(_) => (f.take().expect("not yet called"))(None),
    }
}

/// Spawns a task onto the queue, and into the group, of the task that calls it, as
/// tokio's `spawn_local` does onto the current `LocalSet`. The future may be `!Send`;
/// it runs on this executor's thread.
///
/// On an executor that was shut down, the future is dropped at once and the handle
/// resolves to [`JoinError::Cancelled`](crate::JoinError::Cancelled), as with
/// [`QueueHandle::spawn`](crate::QueueHandle::spawn).
///
/// # Panics
///
/// Outside a task of a clockworker executor: on a thread where no executor is
/// running, and also in the future that [`Executor::run_until`](crate::Executor::run_until)
/// drives, which belongs to no queue. There, spawn through a
/// [`QueueHandle`](crate::QueueHandle) from [`Executor::queue`](crate::Executor::queue).
///
/// # Examples
///
/// ```rust
/// use clockworker::ExecutorBuilder;
///
/// let executor = ExecutorBuilder::new()
///     .with_queue("requests", 4)
///     .with_queue("compaction", 1)
///     .build()
///     .unwrap();
/// let compaction = executor.queue("compaction").unwrap();
/// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// let parent = compaction.spawn(async {
///     // Spawned from a task of queue "compaction": lands in that queue too.
///     let child = clockworker::spawn(async { 6 * 7 });
///     child.await.unwrap()
/// });
/// assert_eq!(runtime.block_on(executor.run_until(parent)).unwrap(), 42);
/// assert_eq!(executor.queue_stats("compaction").unwrap().completed, 2);
/// assert_eq!(executor.queue_stats("requests").unwrap().spawned, 0);
/// ```
#[track_caller]
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: std::future::Future + 'static,
    F::Output: 'static,
{
    let target = with_current(|core| {
        let core = core?;
        // On a shut-down executor `schedule::spawn` drops the future and returns a
        // cancelled handle, whatever the queue: no need for a running task.
        let (queue, group) = if core.is_shut_down() {
            (0, None)
        } else {
            core.running_task()?
        };
        Some((core.clone(), queue, group))
    });
    // Spawned outside `with_current`: dropping a refused future runs user code, which
    // must not meet `CURRENT` borrowed.
    match target {
        Some((core, queue, group)) => schedule::spawn(&core, queue, group, future),
        None => outside_a_task(),
    }
}

#[cold]
#[track_caller]
fn outside_a_task() -> ! {
    panic!(
        "clockworker::spawn called outside a task of a clockworker executor (the future \
         driven by Executor::run_until is not a task); spawn through a QueueHandle from \
         Executor::queue instead"
    )
}
