//! loom models of the inbox handshake, the abort path and remote spawn jobs.
//!
//! The executor side calls the real [`Inbox::drain`] and [`Inbox::park`] in the order
//! the run loop does (`Core::poll_tasks`: drain; then, with nothing ready, park and
//! drain again while notified; at the driver-yield deadline, `set_notified` and a
//! self-wake). The other side calls the real [`Inbox::push`], [`Inbox::request_abort`]
//! and [`Inbox::push_job`] as a task's waker, `JoinHandle::abort` and
//! `RemoteSpawner::spawn` do. The queues are the real `concurrent-queue` on loom's
//! atomics; the host waker is loom's `AtomicWaker` (see `crate::sync`).
//!
//! Each model asserts "nothing lost": when the executor's turn ends idle, every item
//! sent so far was either seen by that turn, or the host was woken and the next turn
//! (what the host's next poll runs) sees it.

use std::task::{Wake, Waker};

use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

use super::Inbox;

/// Default preemption bound: every interleaving with up to this many forced context
/// switches is explored. Known handshake bugs (notify before push, no re-check after
/// registering the host waker, a non-atomic take) fail at 2. Unbounded, the
/// three-thread models run for over 10 minutes because the queues' own atomics
/// multiply the interleavings. Override with loom's `LOOM_MAX_PREEMPTIONS`.
const PREEMPTION_BOUND: usize = 4;

/// Runs `f` under loom with `PREEMPTION_BOUND` (the task cell's models use it too).
pub(crate) fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(PREEMPTION_BOUND);
    }
    builder.check(f);
}

/// The host task's waker: counts wakes (the task cell's models use it as a join
/// handle's waker).
pub(crate) struct HostWake(pub(crate) AtomicUsize);

impl Wake for HostWake {
    fn wake(self: std::sync::Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &std::sync::Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A counting waker, and the count behind it.
pub(crate) fn host() -> (std::sync::Arc<HostWake>, Waker) {
    let host = std::sync::Arc::new(HostWake(AtomicUsize::new(0)));
    let waker = Waker::from(host.clone());
    (host, waker)
}

/// What the executor's drains found.
#[derive(Default)]
struct Seen {
    tasks: Vec<u32>,
    aborts: Vec<usize>,
}

fn drain(inbox: &Inbox<u32>, seen: &mut Seen) {
    inbox.drain(|task| seen.tasks.push(task), |key| seen.aborts.push(key));
}

/// A turn of the run loop with no task ready: drain, then park, draining again while
/// something arrived. Returns whether the driven `run_until` future was woken
/// (checked last, as `poll_tasks` does before it returns `Stop::Idle`).
fn idle_turn(inbox: &Inbox<u32>, host: &Waker, main_woken: &AtomicBool) -> (Seen, bool) {
    let mut seen = Seen::default();
    drain(inbox, &mut seen);
    while inbox.park(host) {
        drain(inbox, &mut seen);
    }
    (seen, main_woken.load(Ordering::Acquire))
}

fn sorted<T: Ord + Clone>(items: &[T]) -> Vec<T> {
    let mut items = items.to_vec();
    items.sort();
    items
}

/// A wake from another thread races the loop going idle.
#[test]
fn loom_push_races_idle_turn() {
    model(|| {
        let inbox = Arc::new(Inbox::<u32>::new(1));
        let (host, waker) = host();
        let pusher = {
            let inbox = inbox.clone();
            thread::spawn(move || inbox.push(7))
        };
        let (mut seen, _) = idle_turn(&inbox, &waker, &AtomicBool::new(false));
        pusher.join().unwrap();
        let wakes = host.0.load(Ordering::SeqCst);
        assert!(wakes <= 1, "one push woke the host {wakes} times");
        if seen.tasks.is_empty() {
            assert_eq!(wakes, 1, "push neither seen by the turn nor woke the host");
            drain(&inbox, &mut seen);
            assert_eq!(seen.tasks, [7], "the host's next turn must find the push");
        } else {
            assert_eq!(seen.tasks, [7]);
        }
    });
}

/// Two threads push while the loop goes idle: neither push is stranded, and the host
/// is woken at most once per flip of `notified`.
#[test]
fn loom_two_pushers_race_idle_turn() {
    model(|| {
        let inbox = Arc::new(Inbox::<u32>::new(1));
        let (host, waker) = host();
        let pushers: Vec<_> = [1, 2]
            .into_iter()
            .map(|item| {
                let inbox = inbox.clone();
                thread::spawn(move || inbox.push(item))
            })
            .collect();
        let (mut seen, _) = idle_turn(&inbox, &waker, &AtomicBool::new(false));
        for pusher in pushers {
            pusher.join().unwrap();
        }
        let wakes = host.0.load(Ordering::SeqCst);
        if seen.tasks.len() < 2 {
            assert!(wakes >= 1, "a push was stranded without a host wake");
            drain(&inbox, &mut seen);
        }
        assert_eq!(sorted(&seen.tasks), [1, 2]);
        // One wake per `false -> true` flip of `notified`; the turn flips it back at
        // most twice (the first drain and one re-drain per observed push).
        assert!(wakes <= 2, "{wakes} host wakes for two pushes");
    });
}

/// The loop returns to the host at its driver-yield deadline: it sets `notified` and
/// wakes itself, so a push meanwhile does not wake the host again, and the next turn
/// still drains it.
#[test]
fn loom_push_races_driver_yield() {
    model(|| {
        let inbox = Arc::new(Inbox::<u32>::new(1));
        let (host, waker) = host();
        let pusher = {
            let inbox = inbox.clone();
            thread::spawn(move || inbox.push(7))
        };
        let mut seen = Seen::default();
        drain(&inbox, &mut seen);
        // `Core::yield_to_host`: `set_notified`, then the self-wake.
        inbox.set_notified();
        waker.wake_by_ref();
        pusher.join().unwrap();
        drain(&inbox, &mut seen);
        assert_eq!(seen.tasks, [7], "push lost across a driver yield");
        let wakes = host.0.load(Ordering::SeqCst);
        assert!((1..=2).contains(&wakes), "{wakes} host wakes");
    });
}

/// `JoinHandle::abort` from two threads at once, while the loop goes idle: exactly
/// one abort request reaches the loop (this turn or, after a host wake, the next), and
/// the loop then sees the task's abort flag set.
#[test]
fn loom_concurrent_aborts_race_idle_turn() {
    model(|| {
        let inbox = Arc::new(Inbox::<u32>::new(1));
        let aborted = Arc::new(AtomicBool::new(false));
        let (host, waker) = host();
        let abort = |inbox: Arc<Inbox<u32>>, aborted: Arc<AtomicBool>| {
            move || {
                // `JoinHandle::abort`, for a task with registry key 3.
                if !aborted.swap(true, Ordering::AcqRel) {
                    inbox.request_abort(3);
                }
            }
        };
        let first = thread::spawn(abort(inbox.clone(), aborted.clone()));
        let second = thread::spawn(abort(inbox.clone(), aborted.clone()));
        let (mut seen, _) = idle_turn(&inbox, &waker, &AtomicBool::new(false));
        // The loop found the key: it wakes the task and, about to poll it, reads the
        // flag (`poll_tasks`: `meta.aborted.load(Acquire)`) — it must be set.
        if !seen.aborts.is_empty() {
            assert!(
                aborted.load(Ordering::Acquire),
                "abort request before its flag"
            );
        }
        first.join().unwrap();
        second.join().unwrap();
        if seen.aborts.is_empty() {
            assert!(host.0.load(Ordering::SeqCst) >= 1, "abort request stranded");
            drain(&inbox, &mut seen);
        }
        assert_eq!(seen.aborts, [3], "exactly one abort request per task");
    });
}

/// An abort and a cross-thread wake of the same task, from two threads, racing the
/// loop: both reach it.
#[test]
fn loom_abort_races_wake_of_same_task() {
    model(|| {
        let inbox = Arc::new(Inbox::<u32>::new(1));
        let aborted = Arc::new(AtomicBool::new(false));
        let (host, waker) = host();
        let waking = {
            let inbox = inbox.clone();
            thread::spawn(move || inbox.push(3))
        };
        let aborting = {
            let (inbox, aborted) = (inbox.clone(), aborted.clone());
            thread::spawn(move || {
                if !aborted.swap(true, Ordering::AcqRel) {
                    inbox.request_abort(3);
                }
            })
        };
        let (mut seen, _) = idle_turn(&inbox, &waker, &AtomicBool::new(false));
        waking.join().unwrap();
        aborting.join().unwrap();
        if seen.tasks.is_empty() || seen.aborts.is_empty() {
            assert!(host.0.load(Ordering::SeqCst) >= 1, "wake or abort stranded");
            drain(&inbox, &mut seen);
        }
        assert_eq!((seen.tasks, seen.aborts), (vec![3], vec![3]));
    });
}

/// A remote spawn job racing the loop going idle runs this turn or, after a host
/// wake, the next.
#[test]
fn loom_remote_spawn_races_idle_turn() {
    model(|| {
        let inbox = Arc::new(Inbox::<u32>::new(1));
        let ran = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (host, waker) = host();
        let spawner = {
            let (inbox, ran) = (inbox.clone(), ran.clone());
            thread::spawn(move || {
                let job = Box::new(move || {
                    ran.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                });
                assert!(inbox.push_job(job).is_ok(), "jobs are open");
            })
        };
        idle_turn(&inbox, &waker, &AtomicBool::new(false));
        spawner.join().unwrap();
        if ran.load(std::sync::atomic::Ordering::SeqCst) == 0 {
            assert!(host.0.load(Ordering::SeqCst) >= 1, "remote spawn stranded");
            drain(&inbox, &mut Seen::default());
        }
        assert_eq!(ran.load(std::sync::atomic::Ordering::SeqCst), 1);
    });
}

/// Shutdown (`close_jobs`) racing a remote spawn: the job is either refused (it comes
/// back to the spawner, whose caller gets `ShuttingDown`) or dropped by the shutdown
/// (its handle resolves `Cancelled`); never left in the queue, never run after.
#[test]
fn loom_remote_spawn_races_shutdown() {
    model(|| {
        let inbox = Arc::new(Inbox::<u32>::new(1));
        let dropped = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let ran = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let spawner = {
            let (inbox, dropped, ran) = (inbox.clone(), dropped.clone(), ran.clone());
            thread::spawn(move || {
                let guard = DropCount(dropped);
                let job = Box::new(move || {
                    ran.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    drop(guard);
                });
                inbox.push_job(job).is_ok()
            })
        };
        inbox.close_jobs();
        spawner.join().unwrap();
        inbox.notify();
        drain(&inbox, &mut Seen::default());
        let seq = std::sync::atomic::Ordering::SeqCst;
        assert_eq!(
            dropped.load(seq),
            1,
            "the job was neither refused nor dropped"
        );
        assert_eq!(ran.load(seq), 0, "a job ran after the close");
    });
}

/// Counts its drops.
struct DropCount(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl Drop for DropCount {
    fn drop(&mut self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The `run_until` future woken from another thread (`MainWake`: set its flag, then
/// notify) while the loop goes idle: the turn sees it, or the host is woken.
#[test]
fn loom_main_future_woken_races_idle_turn() {
    model(|| {
        let inbox = Arc::new(Inbox::<u32>::new(1));
        let main_woken = Arc::new(AtomicBool::new(false));
        let (host, waker) = host();
        let waking = {
            let (inbox, main_woken) = (inbox.clone(), main_woken.clone());
            thread::spawn(move || {
                main_woken.store(true, Ordering::Release);
                inbox.notify();
            })
        };
        let (_, saw_main) = idle_turn(&inbox, &waker, &main_woken);
        waking.join().unwrap();
        assert!(
            saw_main || host.0.load(Ordering::SeqCst) >= 1,
            "run_until's wake lost"
        );
    });
}
