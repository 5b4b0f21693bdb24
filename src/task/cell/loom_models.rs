//! loom models of the task cell's handshakes across threads.
//!
//! The executor's side is the model's main thread (the inbox is made there, so it owns
//! the tasks: `thread_id` under loom tells loom's threads apart); the other side is a
//! spawned loom thread, which takes the cross-thread paths exactly as a real foreign
//! thread would. The cell's atomics are loom's (`crate::sync`), and so are the
//! inbox's queue and host waker. The awaiter slot and the slot are plain `UnsafeCell`s
//! and memory: loom does not check accesses to them, so the models assert outcomes
//! that a broken handoff would change (an output dropped twice or never, a handle
//! never woken, a cell never freed).
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test --release --lib loom`.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool as StdAtomicBool, AtomicU64, AtomicU8};
use std::sync::Arc as StdArc;
use std::task::{Context, Poll};

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

use super::{spawn, Runnable, TaskHandle, ThroughInbox};
use crate::inbox::loom_models::{host as counting_waker, model};
use crate::inbox::Inbox;
use crate::task::panic_slot::PanicSlot;
use crate::task::{TaskMeta, TaskRef};

/// An output that counts its drops.
struct Output(Arc<AtomicUsize>);

impl Drop for Output {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Returns `Pending` for its first `pending` polls, then an `Output`.
struct PendingThen {
    pending: usize,
    drops: Arc<AtomicUsize>,
}

impl Future for PendingThen {
    type Output = Output;

    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Output> {
        if self.pending == 0 {
            return Poll::Ready(Output(self.drops.clone()));
        }
        self.pending -= 1;
        Poll::Pending
    }
}

/// A task on a fresh inbox: its runnable (scheduled), its handle, the inbox, and the
/// count of its output's drops.
type Spawned = (
    Runnable,
    TaskHandle<Output>,
    StdArc<Inbox<TaskRef>>,
    Arc<AtomicUsize>,
);

fn spawn_task(pending: usize) -> Spawned {
    let inbox = StdArc::new(Inbox::new(0));
    let meta = TaskMeta {
        queue: 0,
        aborted: StdAtomicBool::new(false),
        flags: AtomicU8::new(0),
        registry_key: 0,
        group: None,
        arrival: 0,
        inbox: inbox.clone(),
        ready_at_ns: AtomicU64::new(0),
        service_ns: AtomicU64::new(0),
        drop_panic: PanicSlot::new(),
    };
    let output_drops = Arc::new(AtomicUsize::new(0));
    let drops = output_drops.clone();
    let (runnable, handle) =
        spawn::<_, _, ThroughInbox>(meta, move |_| PendingThen { pending, drops });
    (runnable, handle, inbox, output_drops)
}

/// The executor's side: takes every woken task from the inbox and polls it. Returns
/// the references it took and the polls that made.
fn drain_and_run(inbox: &Inbox<TaskRef>) -> (usize, usize) {
    let mut polls = 0;
    let mut woken = Vec::new();
    inbox.drain(|task| woken.push(task), |_| {});
    let refs = woken.len();
    for task in woken {
        let mut next = task.schedule_here();
        while let Some(runnable) = next {
            polls += 1;
            next = runnable.run();
        }
    }
    (refs, polls)
}

/// The cell is freed: the inbox's only owner left is the model.
fn assert_freed(inbox: &StdArc<Inbox<TaskRef>>) {
    assert_eq!(
        StdArc::strong_count(inbox),
        1,
        "the task cell was not freed"
    );
}

/// The handle, polled on another thread while the task completes, either reads the
/// output or is woken, and then reads it.
#[test]
fn loom_handle_poll_races_completion() {
    model(|| {
        let (runnable, mut handle, inbox, output_drops) = spawn_task(0);
        let joiner = thread::spawn(move || {
            let (wake, waker) = counting_waker();
            match handle.poll_output(&mut Context::from_waker(&waker)) {
                Poll::Ready(output) => {
                    assert!(output.is_some());
                    None
                }
                Poll::Pending => Some((handle, wake, waker)),
            }
        });
        assert!(runnable.run().is_none(), "the task completes in one poll");
        if let Some((mut handle, wake, waker)) = joiner.join().unwrap() {
            assert_eq!(wake.0.load(Ordering::SeqCst), 1, "the handle was not woken");
            let again = handle.poll_output(&mut Context::from_waker(&waker));
            assert!(matches!(again, Poll::Ready(Some(_))));
        }
        assert_eq!(output_drops.load(Ordering::SeqCst), 1);
        assert_freed(&inbox);
    });
}

/// The handle dropped on another thread while the task completes: the output is
/// dropped exactly once (by the task's end or by the handle), and the cell is freed.
#[test]
fn loom_handle_drop_races_completion() {
    model(|| {
        let (runnable, handle, inbox, output_drops) = spawn_task(0);
        let dropper = thread::spawn(move || drop(handle));
        assert!(runnable.run().is_none());
        dropper.join().unwrap();
        assert_eq!(output_drops.load(Ordering::SeqCst), 1);
        assert_freed(&inbox);
    });
}

/// `wakes` wakes from another thread (by reference, then the last by value), racing
/// with two drains of the executor: the task completes on its second poll, so the
/// wakes make exactly one poll however they interleave; no drain finds more than one
/// reference to the task (`WOKEN_ELSEWHERE`); the cell is freed.
fn wakes_from_elsewhere_make_one_poll(wakes: usize) {
    model(move || {
        let (runnable, handle, inbox, output_drops) = spawn_task(1);
        let waker = runnable.waker();
        assert!(runnable.run().is_none(), "first poll: pending, not woken");
        let waking = thread::spawn(move || {
            for _ in 1..wakes {
                waker.wake_by_ref();
            }
            waker.wake();
        });
        let (refs_before, polls_before) = drain_and_run(&inbox);
        waking.join().unwrap();
        let (refs_after, polls_after) = drain_and_run(&inbox);
        assert!(
            refs_before <= 1 && refs_after <= 1,
            "one reference on its way at a time"
        );
        assert_eq!(
            polls_before + polls_after,
            1,
            "the wakes made exactly one poll"
        );
        assert!(handle.is_finished());
        drop(handle);
        assert_eq!(output_drops.load(Ordering::SeqCst), 1);
        assert_freed(&inbox);
    });
}

#[test]
fn loom_wake_from_elsewhere_is_not_lost() {
    wakes_from_elsewhere_make_one_poll(1);
}

#[test]
fn loom_repeated_wakes_from_elsewhere_queue_one_reference() {
    wakes_from_elsewhere_make_one_poll(2);
}

/// A waker used and dropped on another thread while the executor cancels the task
/// and goes away (closing the inbox): the future is dropped once, on the executor's
/// thread, and the cell is freed by whichever side lets go last.
#[test]
fn loom_wake_from_elsewhere_races_cancel_and_executor_drop() {
    model(|| {
        let (runnable, handle, inbox, output_drops) = spawn_task(1);
        let waker = runnable.waker();
        drop(handle);
        let waking = thread::spawn(move || waker.wake());
        drop(runnable); // cancels: the future is dropped here, without an output
        inbox.close_tasks();
        waking.join().unwrap();
        assert_eq!(output_drops.load(Ordering::SeqCst), 0, "no output was made");
        assert_freed(&inbox);
    });
}
