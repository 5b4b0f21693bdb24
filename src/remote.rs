//! The part of an executor other threads may touch: the inbox of tasks woken
//! elsewhere, and the handshake that wakes the host runtime's task.
//!
//! Handshake: a waker pushes into `inbox`, then swaps `notified` to true and wakes the
//! host only if it was false. The run loop swaps `notified` back to false *before* it
//! drains the inbox. Both sides use read-modify-write on `notified`, so either the
//! pusher sees `false` (and wakes the host, which will poll the loop again), or the
//! loop's swap reads the pusher's `true` and therefore sees its push when draining.
//! No wake is lost and at most one host wake is issued per loop turn.
//!
//! The loom models at the end of this file check this claim, and the abort-request
//! path, over every interleaving (`RUSTFLAGS="--cfg loom" cargo test --release --lib
//! loom`). The atomics come from `crate::sync` so that loom can swap them.

use std::task::Waker;

use concurrent_queue::ConcurrentQueue;

use crate::sync::{AtomicBool, AtomicWaker, Ordering};
use crate::task::Runnable;

/// Cross-thread side of an executor. Generic over what the inbox carries only so that
/// the loom models can push plain numbers; the executor uses `Remote<Runnable>`.
pub(crate) struct Remote<T = Runnable> {
    /// Identifies the executor on its own thread (see `task::schedule`).
    pub(crate) executor_id: u64,
    inbox: ConcurrentQueue<T>,
    /// Registry keys of tasks whose `JoinHandle::abort` was called (from any thread).
    aborts: ConcurrentQueue<usize>,
    notified: AtomicBool,
    host: AtomicWaker,
}

impl<T> Remote<T> {
    pub(crate) fn new(executor_id: u64) -> Self {
        Remote {
            executor_id,
            inbox: ConcurrentQueue::unbounded(),
            aborts: ConcurrentQueue::unbounded(),
            notified: AtomicBool::new(false),
            host: AtomicWaker::new(),
        }
    }

    /// Hands a woken task to the executor from any thread.
    pub(crate) fn push(&self, runnable: T) {
        // The inbox is unbounded and never closed while a task exists (shutdown
        // cancels every task before the executor goes away), so this cannot fail.
        if let Err(err) = self.inbox.push(runnable) {
            // Unreachable by construction; keep the task rather than drop it on a
            // foreign thread (async-task would panic). Leaking is the lesser harm.
            std::mem::forget(err.into_inner());
            return;
        }
        self.notify();
    }

    /// Asks the executor to wake the task with registry key `key` so that the run
    /// loop sees its abort flag and drops it.
    pub(crate) fn request_abort(&self, key: usize) {
        // Unbounded and never closed: cannot fail.
        let _ = self.aborts.push(key);
        self.notify();
    }

    /// Takes one abort request.
    pub(crate) fn pop_abort(&self) -> Option<usize> {
        self.aborts.pop().ok()
    }

    /// Makes sure the host polls the run loop soon.
    pub(crate) fn notify(&self) {
        if !self.notified.swap(true, Ordering::AcqRel) {
            self.host.wake();
        }
    }

    /// Run loop side: called before draining. Returns whether anyone notified.
    pub(crate) fn take_notification(&self) -> bool {
        self.notified.swap(false, Ordering::AcqRel)
    }

    /// Cheap check used between polls: has another thread pushed since the last drain?
    pub(crate) fn is_notified(&self) -> bool {
        self.notified.load(Ordering::Relaxed)
    }

    /// Marks the host as already scheduled (the loop is about to wake itself), so
    /// wakes until the next turn do not wake it again.
    pub(crate) fn set_notified(&self) {
        self.notified.store(true, Ordering::Release);
    }

    /// Registers the host task's waker before the loop goes idle.
    pub(crate) fn register_host(&self, waker: &Waker) {
        self.host.register(waker);
    }

    /// Takes one task from the inbox.
    pub(crate) fn pop(&self) -> Option<T> {
        self.inbox.pop().ok()
    }
}

/// loom models of the handshake above and of the abort-request path.
///
/// The executor side of each model replays, step for step, what `Core` does with a
/// `Remote` (`crate::core`: `drain_inbox`, the idle branch of `poll_tasks`, the
/// driver-yield branch), since `Core` itself (`Rc`, `RefCell`, a clock) cannot run
/// under loom. The other side replays `Remote::push` (a task's waker on another
/// thread), `JoinHandle::abort` (`crate::task::join`) and the `run_until` future's
/// waker (`crate::executor::MainWake`). The inbox is the real `concurrent-queue`
/// running on loom's atomics; the host waker is loom's `AtomicWaker` (see
/// `crate::sync`).
///
/// Each model asserts "no lost wake": when the executor's turn ends idle, every item
/// pushed so far was either seen by that turn, or the host was woken and the next
/// turn (what the host's next poll runs) sees it.
#[cfg(all(test, loom))]
mod loom_models {
    use std::task::{Wake, Waker};

    use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use loom::sync::Arc;
    use loom::thread;

    use super::Remote;

    /// Default preemption bound: every interleaving with up to this many forced
    /// context switches is explored. Known handshake bugs (notify before push, no
    /// re-check after registering the host waker, a non-atomic take) fail at 2.
    /// Measured on the 2-core CI machine (release): bound 3 runs all models in 2 s,
    /// 4 in 21 s, 5 in 2 min; unbounded, the three-thread models run for over 10
    /// minutes because the queue's own atomics multiply the interleavings. Override
    /// with loom's `LOOM_MAX_PREEMPTIONS`.
    const PREEMPTION_BOUND: usize = 4;

    fn model(f: impl Fn() + Sync + Send + 'static) {
        let mut builder = loom::model::Builder::new();
        if builder.preemption_bound.is_none() {
            builder.preemption_bound = Some(PREEMPTION_BOUND);
        }
        builder.check(f);
    }

    /// The host task's waker: counts wakes.
    struct HostWake(AtomicUsize);

    impl Wake for HostWake {
        fn wake(self: std::sync::Arc<Self>) {
            self.wake_by_ref();
        }

        fn wake_by_ref(self: &std::sync::Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn host() -> (std::sync::Arc<HostWake>, Waker) {
        let host = std::sync::Arc::new(HostWake(AtomicUsize::new(0)));
        let waker = Waker::from(host.clone());
        (host, waker)
    }

    /// What a drain (`Core::drain_inbox`) found.
    #[derive(Default)]
    struct Seen {
        tasks: Vec<u32>,
        aborts: Vec<usize>,
    }

    /// `Core::drain_inbox`: nothing unless notified; then every woken task, then every
    /// abort request.
    fn drain(remote: &Remote<u32>, seen: &mut Seen) {
        if !remote.take_notification() {
            return;
        }
        while let Some(task) = remote.pop() {
            seen.tasks.push(task);
        }
        while let Some(key) = remote.pop_abort() {
            seen.aborts.push(key);
        }
    }

    /// A turn of the run loop with no task ready, as `Core::poll_tasks` runs it: drain,
    /// then (nothing ready) register the host waker, drain again while notified, and
    /// go idle. Returns whether the driven `run_until` future was woken (checked last,
    /// as `poll_tasks` does before returning `Stop::Idle`).
    fn idle_turn(remote: &Remote<u32>, host: &Waker, main_woken: &AtomicBool) -> (Seen, bool) {
        let mut seen = Seen::default();
        drain(remote, &mut seen);
        loop {
            remote.register_host(host);
            if remote.is_notified() {
                drain(remote, &mut seen);
                continue;
            }
            return (seen, main_woken.load(Ordering::Acquire));
        }
    }

    /// The turn the host runs after a wake: `begin_turn`, then `poll_tasks`' first
    /// drain.
    fn next_turn(remote: &Remote<u32>, seen: &mut Seen) {
        drain(remote, seen);
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
            let remote = Arc::new(Remote::<u32>::new(1));
            let (host, waker) = host();
            let pusher = {
                let remote = remote.clone();
                thread::spawn(move || remote.push(7))
            };
            let (mut seen, _) = idle_turn(&remote, &waker, &AtomicBool::new(false));
            pusher.join().unwrap();
            let wakes = host.0.load(Ordering::SeqCst);
            assert!(wakes <= 1, "one push woke the host {wakes} times");
            if seen.tasks.is_empty() {
                assert_eq!(wakes, 1, "push neither seen by the turn nor woke the host");
                next_turn(&remote, &mut seen);
                assert_eq!(seen.tasks, [7], "the host's next turn must find the push");
            } else {
                assert_eq!(seen.tasks, [7]);
            }
        });
    }

    /// Two threads push while the loop goes idle: neither push is stranded, and the
    /// host is woken at most once per turn.
    #[test]
    fn loom_two_pushers_race_idle_turn() {
        model(|| {
            let remote = Arc::new(Remote::<u32>::new(1));
            let (host, waker) = host();
            let pushers: Vec<_> = [1, 2]
                .into_iter()
                .map(|item| {
                    let remote = remote.clone();
                    thread::spawn(move || remote.push(item))
                })
                .collect();
            let (mut seen, _) = idle_turn(&remote, &waker, &AtomicBool::new(false));
            for pusher in pushers {
                pusher.join().unwrap();
            }
            let wakes = host.0.load(Ordering::SeqCst);
            if seen.tasks.len() < 2 {
                assert!(wakes >= 1, "a push was stranded without a host wake");
                next_turn(&remote, &mut seen);
            }
            assert_eq!(sorted(&seen.tasks), [1, 2]);
            // One wake per `false -> true` flip of `notified`; the turn flips it back
            // at most twice (the first drain and one re-drain per observed push).
            assert!(wakes <= 2, "{wakes} host wakes for two pushes");
        });
    }

    /// The loop returns to the host at its driver-yield deadline: it sets `notified`
    /// and wakes itself, so a push meanwhile does not wake the host again, and the
    /// next turn still drains it.
    #[test]
    fn loom_push_races_driver_yield() {
        model(|| {
            let remote = Arc::new(Remote::<u32>::new(1));
            let (host, waker) = host();
            let pusher = {
                let remote = remote.clone();
                thread::spawn(move || remote.push(7))
            };
            let mut seen = Seen::default();
            drain(&remote, &mut seen);
            // `poll_tasks` at the deadline: `set_notified`, then `yield_to_host`.
            remote.set_notified();
            waker.wake_by_ref();
            pusher.join().unwrap();
            next_turn(&remote, &mut seen);
            assert_eq!(seen.tasks, [7], "push lost across a driver yield");
            let wakes = host.0.load(Ordering::SeqCst);
            assert!((1..=2).contains(&wakes), "{wakes} host wakes");
        });
    }

    /// `JoinHandle::abort` from two threads at once, while the loop goes idle: exactly
    /// one abort request reaches the loop (this turn or, after a host wake, the next),
    /// and the loop then sees the task's abort flag set.
    #[test]
    fn loom_concurrent_aborts_race_idle_turn() {
        model(|| {
            let remote = Arc::new(Remote::<u32>::new(1));
            let aborted = Arc::new(AtomicBool::new(false));
            let (host, waker) = host();
            let abort = |remote: Arc<Remote<u32>>, aborted: Arc<AtomicBool>| {
                move || {
                    // `JoinHandle::abort`, for a task with registry key 3.
                    if !aborted.swap(true, Ordering::AcqRel) {
                        remote.request_abort(3);
                    }
                }
            };
            let first = thread::spawn(abort(remote.clone(), aborted.clone()));
            let second = thread::spawn(abort(remote.clone(), aborted.clone()));
            let (mut seen, _) = idle_turn(&remote, &waker, &AtomicBool::new(false));
            // The loop found the key: it wakes the task and, polling it, reads the flag
            // (`poll_tasks`: `meta.aborted.load(Acquire)`) — it must be set.
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
                next_turn(&remote, &mut seen);
            }
            assert_eq!(seen.aborts, [3], "exactly one abort request per task");
        });
    }

    /// An abort and a cross-thread wake of the same task, from two threads, racing the
    /// loop: both reach it.
    #[test]
    fn loom_abort_races_wake_of_same_task() {
        model(|| {
            let remote = Arc::new(Remote::<u32>::new(1));
            let aborted = Arc::new(AtomicBool::new(false));
            let (host, waker) = host();
            let waking = {
                let remote = remote.clone();
                thread::spawn(move || remote.push(3))
            };
            let aborting = {
                let (remote, aborted) = (remote.clone(), aborted.clone());
                thread::spawn(move || {
                    if !aborted.swap(true, Ordering::AcqRel) {
                        remote.request_abort(3);
                    }
                })
            };
            let (mut seen, _) = idle_turn(&remote, &waker, &AtomicBool::new(false));
            waking.join().unwrap();
            aborting.join().unwrap();
            if seen.tasks.is_empty() || seen.aborts.is_empty() {
                assert!(host.0.load(Ordering::SeqCst) >= 1, "wake or abort stranded");
                next_turn(&remote, &mut seen);
            }
            assert_eq!((seen.tasks, seen.aborts), (vec![3], vec![3]));
        });
    }

    /// `RemoteSpawner::spawn` (`crate::remote_spawn`): a job pushed into a queue of
    /// its own, then `Remote::notify`; the loop's `drain_inbox` runs the jobs after
    /// `take_notification`, skipping the queue when `is_empty`. A job racing the loop
    /// going idle is run this turn or, after a host wake, the next.
    #[test]
    fn loom_remote_spawn_races_idle_turn() {
        model(|| {
            let remote = Arc::new(Remote::<u32>::new(1));
            let jobs = Arc::new(concurrent_queue::ConcurrentQueue::<u32>::unbounded());
            let (host, waker) = host();
            let spawner = {
                let (remote, jobs) = (remote.clone(), jobs.clone());
                thread::spawn(move || {
                    jobs.push(5).unwrap();
                    remote.notify();
                })
            };
            let drain_jobs = |ran: &mut Vec<u32>| {
                if remote.take_notification() && !jobs.is_empty() {
                    while let Ok(job) = jobs.pop() {
                        ran.push(job);
                    }
                }
            };
            let mut ran = Vec::new();
            drain_jobs(&mut ran);
            loop {
                remote.register_host(&waker);
                if !remote.is_notified() {
                    break;
                }
                drain_jobs(&mut ran);
            }
            spawner.join().unwrap();
            if ran.is_empty() {
                assert!(host.0.load(Ordering::SeqCst) >= 1, "remote spawn stranded");
                drain_jobs(&mut ran);
            }
            assert_eq!(ran, [5]);
        });
    }

    /// Shutdown (`SpawnQueue::close`, then dropping the queued jobs) racing a remote
    /// spawn: the job is either refused (the caller gets `ShuttingDown`) or drained
    /// by the shutdown (its handle resolves `Cancelled`); never left in the queue.
    #[test]
    fn loom_remote_spawn_races_shutdown() {
        model(|| {
            let jobs = Arc::new(concurrent_queue::ConcurrentQueue::<u32>::unbounded());
            let spawner = {
                let jobs = jobs.clone();
                thread::spawn(move || jobs.push(5).is_ok())
            };
            jobs.close();
            let mut dropped = 0;
            while jobs.pop().is_ok() {
                dropped += 1;
            }
            let accepted = spawner.join().unwrap();
            assert_eq!(
                usize::from(accepted),
                dropped,
                "a job accepted after the drain"
            );
            assert!(jobs.is_empty());
        });
    }

    /// The `run_until` future woken from another thread (`MainWake`: set its flag,
    /// then notify) while the loop goes idle: the turn returns `MainWoken`, or the
    /// host is woken.
    #[test]
    fn loom_main_future_woken_races_idle_turn() {
        model(|| {
            let remote = Arc::new(Remote::<u32>::new(1));
            let main_woken = Arc::new(AtomicBool::new(false));
            let (host, waker) = host();
            let waking = {
                let (remote, main_woken) = (remote.clone(), main_woken.clone());
                thread::spawn(move || {
                    main_woken.store(true, Ordering::Release);
                    remote.notify();
                })
            };
            let (_, saw_main) = idle_turn(&remote, &waker, &main_woken);
            waking.join().unwrap();
            assert!(
                saw_main || host.0.load(Ordering::SeqCst) >= 1,
                "run_until's wake lost"
            );
        });
    }
}
