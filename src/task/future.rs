//! The wrapper around every spawned future: panic capture, the poll's end time and the
//! task's attained service, completion counters, and removal from the executor's task
//! registry when the future goes away.

use std::any::Any;
use std::future::Future;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use super::TaskMeta;
use crate::core::Core;

/// A task's output as stored in its cell: the future's output or its panic payload.
pub(crate) type TaskOutput<T> = Result<T, Box<dyn Any + Send + 'static>>;

pin_project! {
    /// Wraps a user future. Lives inside the task's allocation next to its metadata
    /// (hence the borrow of `meta`), and is dropped by async-task on the executor
    /// thread right after it completes or when the task is cancelled.
    pub(crate) struct TaskFuture<'m, F> {
        #[pin]
        future: F,
        meta: &'m TaskMeta,
        core: Rc<Core>,
        finished: bool,
    }

    impl<'m, F> PinnedDrop for TaskFuture<'m, F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if !*this.finished {
                let counters = &this.core.counters[this.meta.queue];
                counters.cancelled.set(counters.cancelled.get() + 1);
            }
            this.core.forget_task(this.meta.registry_key);
        }
    }
}

impl<'m, F> TaskFuture<'m, F> {
    pub(crate) fn new(future: F, meta: &'m TaskMeta, core: Rc<Core>) -> Self {
        TaskFuture {
            future,
            meta,
            core,
            finished: false,
        }
    }
}

impl<F: Future> Future for TaskFuture<'_, F> {
    type Output = TaskOutput<F::Output>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let future = this.future;
        let outcome = catch_unwind(AssertUnwindSafe(|| future.poll(cx)));
        // The one clock read of this poll: the run loop reuses it.
        let core = &**this.core;
        let ran = core.end_poll();
        if this.meta.timed {
            this.meta.charge(ran);
        }
        let counters = &core.counters[this.meta.queue];
        match outcome {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(output)) => {
                *this.finished = true;
                core.finished_in_poll.set(true);
                counters.completed.set(counters.completed.get() + 1);
                Poll::Ready(Ok(output))
            }
            Err(payload) => {
                *this.finished = true;
                core.finished_in_poll.set(true);
                counters.panicked.set(counters.panicked.get() + 1);
                if core.config.panic_on_task_panic {
                    // The default: the panic leaves `run`/`run_until`, as with tokio's
                    // `unhandled_panic = shutdown_runtime`. async-task closes the task
                    // on the way out, so its handle resolves `Cancelled`.
                    resume_unwind(payload)
                }
                Poll::Ready(Err(payload))
            }
        }
    }
}
