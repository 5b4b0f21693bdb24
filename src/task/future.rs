//! The wrapper around every spawned future: panic capture, the poll's end time and the
//! task's attained service, completion counters, and removal from the executor's task
//! registry when the future goes away.
//!
//! The wrapper drops the user future itself, in place and under `catch_unwind`: the
//! task cell (`task::cell`) drops the wrapper in the middle of its own bookkeeping
//! (cancelling a task, ending it), which a panic must not cut short, and a panic in a
//! future's `Drop` must reach the task's handle, not whoever cancelled it. Dropped
//! here:
//! - when the future completes or panics, inside its last poll: a panic in its `Drop`
//!   is then a task panic like any other (as in tokio);
//! - when the task is cancelled (aborted, or its executor shut down or dropped), from
//!   the wrapper's own `Drop`: a panic there is caught, counted as a task panic, and
//!   left for the task's handle (`TaskMeta::drop_panic`), never re-raised.
//!
//! The task's result gets the same care (`TaskOutput`): the cell drops the result of a
//! task whose handle is gone at the task's end, or in `drop(handle)`, so its `Drop`
//! catches panics. A
//! caught poll panic is not a result: its payload goes to the handle through
//! `TaskMeta::drop_panic`.

use std::any::TypeId;
use std::future::Future;
use std::mem::ManuallyDrop;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use super::hooks::{Ending, PollTime, TaskHooks};
use super::panic_slot::drop_quietly;
use super::TaskMeta;

/// A task's result as stored in its cell: the future's output, or nothing when the
/// poll panicked (the executor catches task panics, and the payload waits for the
/// handle in `TaskMeta::drop_panic`, as a cancelled future's `Drop` panic does).
///
/// Why not `Result<T, Payload>`: the output shares the cell's slot with the future, so
/// with a payload here the slot of a task with a small result grows from 16 to 24
/// bytes, and every task pays for it (docs/BENCHMARKS.md, "Memory per task").
///
/// Nobody takes the result of a task whose handle was dropped: the cell drops it (when
/// the task completes, or in `drop(handle)` for a finished task), in the middle of its
/// own bookkeeping. So dropping a `TaskOutput` drops the result under `catch_unwind`
/// and discards a panic, as tokio does with an output no `JoinHandle` wants. A handle
/// that awaits the task takes the result out with `into_output`, which drops nothing,
/// so the common path pays nothing for this.
pub(crate) struct TaskOutput<T>(ManuallyDrop<Option<T>>);

impl<T> TaskOutput<T> {
    #[inline(always)]
    fn new(output: Option<T>) -> Self {
        TaskOutput(ManuallyDrop::new(output))
    }

    /// Takes the output out, leaving nothing to drop; `None` when the poll panicked.
    #[inline(always)]
    pub(crate) fn into_output(self) -> Option<T> {
        let mut this = ManuallyDrop::new(self);
        // SAFETY: `this` is never dropped, so the output is taken out exactly once.
        unsafe { ManuallyDrop::take(&mut this.0) }
    }
}

impl<T> Drop for TaskOutput<T> {
    /// Out of line: the cell's drop of an output nobody took stays small; the awaited
    /// case never gets here.
    #[inline(never)]
    fn drop(&mut self) {
        // SAFETY: `drop` runs once and nothing uses the result afterwards.
        let dropped = catch_unwind(AssertUnwindSafe(|| unsafe {
            ManuallyDrop::drop(&mut self.0)
        }));
        if let Err(payload) = dropped {
            drop_quietly(payload);
        }
    }
}

pin_project! {
    /// Wraps a user future. Lives inside the task's allocation next to its metadata
    /// (hence the borrow of `meta`), and is dropped by the cell on the executor
    /// thread right after it completes or when the task is cancelled.
    pub(crate) struct TaskFuture<'m, F, H: TaskHooks> {
        // Dropped by the wrapper (see the module docs), exactly once, in place: the
        // first of the poll that finishes it and the wrapper's `Drop`, which
        // `TaskMeta::future_gone` tells apart.
        #[pin]
        future: ManuallyDrop<F>,
        // Whether `future` was dropped (or its drop began) is the metadata's
        // `future_gone` flag: one bit there instead of a word here.
        meta: &'m TaskMeta,
        hooks: Rc<H>,
    }

    impl<'m, F, H: TaskHooks> PinnedDrop for TaskFuture<'m, F, H> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if this.meta.future_gone() {
                return;
            }
            // Cancelled before finishing: the future is still there.
            future_going(this.meta, &**this.hooks);
            // SAFETY: `future_gone` was false, so the future was never dropped, and it
            // is set now, so nothing touches the future again.
            let dropped = catch_unwind(AssertUnwindSafe(|| unsafe { drop_in_place(this.future) }));
            match dropped {
                Ok(()) => this.meta.ended(&**this.hooks, Ending::Cancelled),
                Err(payload) => {
                    // Not re-raised, whatever `panic_on_task_panic` says: this may run in
                    // `shutdown` or in the executor's `Drop`, which must cancel every
                    // other task too. The handle resolves `Panic` with the payload.
                    this.meta.ended(&**this.hooks, Ending::PanickedWhileCancelled);
                    this.meta.drop_panic.put(payload);
                }
            }
        }
    }
}

/// The user future is about to be dropped (it finished, panicked, or the task was
/// cancelled): records it in the metadata, so no later path touches the future, and
/// takes the task out of the executor's registry.
#[inline(always)]
fn future_going<H: TaskHooks>(meta: &TaskMeta, hooks: &H) {
    meta.set_future_gone();
    hooks.forget_task(meta.registry_key as usize);
}

/// After a task's first poll (of a task whose polls are not all read): records how it
/// went for the task's next poll and, when it was measured, for the next first polls
/// of its future's type. A first poll let end unread counts as short: its type's
/// first polls were. Out of line: once per task.
#[cold]
#[inline(never)]
fn first_poll_ended<H: TaskHooks>(meta: &TaskMeta, hooks: &H, future: TypeId, time: PollTime) {
    let short = match time {
        PollTime::Read { short } => {
            hooks.note_first_poll(future, short);
            short
        }
        PollTime::Unread => true,
    };
    meta.set_polls_short(short);
}

/// Drops the user future in place.
///
/// # Safety
/// The future must not have been dropped before, and must not be used afterwards.
#[inline]
unsafe fn drop_in_place<F>(future: Pin<&mut ManuallyDrop<F>>) {
    // SAFETY: dropping a pinned value in place, without moving it, is what the pinning
    // contract asks for; the caller guarantees it happens once and is the last use.
    unsafe { ManuallyDrop::drop(future.get_unchecked_mut()) }
}

impl<'m, F, H: TaskHooks> TaskFuture<'m, F, H> {
    pub(crate) fn new(future: F, meta: &'m TaskMeta, hooks: Rc<H>) -> Self {
        TaskFuture {
            future: ManuallyDrop::new(future),
            meta,
            hooks,
        }
    }
}

impl<F: Future + 'static, H: TaskHooks> Future for TaskFuture<'_, F, H> {
    type Output = TaskOutput<F::Output>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut future = this.future;
        let hooks = &**this.hooks;
        let meta = *this.meta;
        let flags = meta.poll_flags();
        let may_end_unread =
            flags.was_short || (flags.first && hooks.first_poll_may_end_unread(TypeId::of::<F>()));
        hooks.begin_poll(may_end_unread);
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: `ManuallyDrop<F>` is an `F` in place; the projection neither moves
            // it nor hands out anything but a pinned reference. `future_gone` is
            // false whenever the task is polled (a finished task has no `Runnable`).
            let poll = unsafe { future.as_mut().map_unchecked_mut(|f| &mut **f) }.poll(cx);
            if poll.is_ready() {
                future_going(meta, hooks);
                // SAFETY: not dropped before (it was just polled), and `future_gone`
                // keeps every later path away from it.
                unsafe { drop_in_place(future.as_mut()) };
            }
            poll
        }));
        // The one clock read of this poll (the run loop reuses it), which the executor
        // may skip for a task that books nothing itself and whose polls are short.
        if flags.reads_every_poll {
            let ran_ns = hooks.end_poll();
            if flags.books {
                meta.book_poll(hooks, ran_ns);
            }
        } else {
            let time = hooks.end_poll_maybe_unread(may_end_unread);
            if flags.first {
                first_poll_ended(meta, hooks, TypeId::of::<F>(), time);
            } else if let PollTime::Read { short } = time {
                if short != flags.was_short {
                    meta.set_polls_short(short);
                }
            }
        }
        match outcome {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(output)) => {
                meta.ended(hooks, Ending::Completed);
                Poll::Ready(TaskOutput::new(Some(output)))
            }
            Err(payload) => {
                if !meta.future_gone() {
                    // The poll panicked: drop what is left of the future now, still under
                    // a guard. Should its `Drop` panic too, the poll's panic is the one
                    // reported.
                    future_going(meta, hooks);
                    // SAFETY: `future_gone` was false: never dropped; and it is set now.
                    let dropped =
                        catch_unwind(AssertUnwindSafe(|| unsafe { drop_in_place(future) }));
                    if let Err(second) = dropped {
                        drop_quietly(second);
                    }
                }
                meta.ended(hooks, Ending::Panicked);
                if hooks.propagates_panics() {
                    hooks.panic_propagates(meta.queue(), meta.ready_at_ns());
                    // The default: the panic leaves `run`/`run_until`, as with tokio's
                    // `unhandled_panic = shutdown_runtime`. `Runnable::run` ends the task
                    // on the way out, so its handle resolves `Cancelled`.
                    resume_unwind(payload)
                }
                // The handle finds the payload where a cancelled future's `Drop` panic
                // waits (the future is gone, so nothing else is put there).
                meta.drop_panic.put(payload);
                Poll::Ready(TaskOutput::new(None))
            }
        }
    }
}
