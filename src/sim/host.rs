//! The virtual host: a small `block_on` loop that stands where tokio, smol or glommio
//! would, on the virtual clock.
//!
//! It polls the future it drives (normally an executor's `run`/`run_until`). Each time
//! that future returns `Pending` the loop is back in the host, which
//!
//! 1. charges the return's cost ([`HostModel::return_cost`]) to the virtual clock;
//! 2. delivers every event that is due: timers (at the host's resolution, rounded up
//!    like tokio's wheel) and scheduled calls (arrivals from the outside world);
//! 3. polls the future again if it was woken (a driver yield wakes itself; a
//!    delivered event wakes it too); otherwise the loop *parked*, and the host jumps
//!    the virtual clock to the next event.
//!
//! So, as in a real host, timers and arrivals reach the executor only when its run loop
//! returns to the host. What other threads send ([`call_from_thread_at`]) is different:
//! it is delivered as soon as the virtual clock passes it, also in the middle of a
//! poll (by [`cpu`](super::cpu)), and reaches the executor through its inbox. The
//! host's events live in a thread-local, as a real runtime's timer wheel does, so that
//! [`sleep`](super::sleep) and [`call_at`] find them.

use std::cell::{Cell, RefCell};
use std::cmp::Ordering as CmpOrdering;
use std::collections::BinaryHeap;
use std::future::Future;
use std::pin::pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use crate::clock::virtual_time;

use super::error::HostError;
use super::model::{next_tick, HostModel};

/// What the host counted while it drove a future.
///
/// ```
/// use clockworker::sim::HostStats;
/// let stats = HostStats::default();
/// assert_eq!(stats.returns, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HostStats {
    /// Times the driven future returned `Pending` to the host.
    pub returns: u64,
    /// Returns after which the future had not woken itself and the host jumped the
    /// clock to the next event.
    pub idle_jumps: u64,
    /// Timers fired.
    pub timers_fired: u64,
    /// Scheduled calls ([`call_at`]) run.
    pub calls_run: u64,
}

/// Why [`Host::run`] stopped before its future completed.
///
/// ```
/// use clockworker::sim::Stopped;
/// assert_ne!(Stopped::TimeLimit, Stopped::Stalled);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// The virtual clock reached the limit given to [`Host::run`].
    TimeLimit,
    /// The future parked and the host had no event left that could wake it.
    Stalled,
}

/// A timer registered by [`sleep`](super::sleep): fired by the host, polled by the task.
#[derive(Debug, Default)]
pub(super) struct TimerSlot {
    pub(super) fired: Cell<bool>,
    pub(super) waker: RefCell<Option<Waker>>,
}

enum What {
    Timer(Rc<TimerSlot>),
    Call(Box<dyn FnOnce()>),
}

/// An event of the host, ordered by time and then by registration (`seq`), so that one
/// seed gives one order.
struct Event {
    at_ns: u64,
    seq: u64,
    what: What,
}

impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        (self.at_ns, self.seq) == (other.at_ns, other.seq)
    }
}

impl Eq for Event {}

impl PartialOrd for Event {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}

impl Ord for Event {
    /// Reversed: `BinaryHeap` is a max-heap and the earliest event comes first.
    fn cmp(&self, other: &Self) -> CmpOrdering {
        (other.at_ns, other.seq).cmp(&(self.at_ns, self.seq))
    }
}

/// The installed host's state on this thread.
struct State {
    model: HostModel,
    events: BinaryHeap<Event>,
    /// Calls of other threads ([`call_from_thread_at`]): due as soon as the clock
    /// passes them, also in the middle of a poll.
    thread_events: BinaryHeap<Event>,
    next_seq: u64,
    stats: HostStats,
}

thread_local! {
    static STATE: RefCell<Option<State>> = const { RefCell::new(None) };
}

/// Runs `f` on the installed host's state, or returns `None` when there is none.
fn with_state<R>(f: impl FnOnce(&mut State) -> R) -> Option<R> {
    STATE.with(|state| state.borrow_mut().as_mut().map(f))
}

fn push(at_ns: u64, what: What, from_thread: bool) -> Result<(), HostError> {
    with_state(|state| {
        let seq = state.next_seq;
        state.next_seq += 1;
        let event = Event { at_ns, seq, what };
        if from_thread {
            state.thread_events.push(event);
        } else {
            state.events.push(event);
        }
    })
    .ok_or(HostError::NoHost)
}

/// Registers a timer with deadline `deadline_ns`, rounded up to the host's next tick.
pub(super) fn add_timer(deadline_ns: u64, slot: Rc<TimerSlot>) -> Result<(), HostError> {
    let model = with_state(|state| state.model).ok_or(HostError::NoHost)?;
    let at = next_tick(deadline_ns, model.timer_resolution, model.timer_phase);
    push(at, What::Timer(slot), false)
}

/// Schedules `call` to run in the host at virtual time `at` (from the host's start),
/// exactly then if the run loop is parked, else at the loop's first return to the host
/// after `at`. This is how the outside world reaches the executor: a request arriving
/// on a socket, say, which `call` spawns as a task. Calls at the same instant run in
/// the order they were scheduled. Fails when no [`Host`] is installed on this thread.
///
/// ```
/// use clockworker::sim::{call_at, now, Host, HostModel};
/// use std::{cell::Cell, rc::Rc, time::Duration};
///
/// let host = Host::new(HostModel::tokio()).unwrap();
/// let seen = Rc::new(Cell::new(Duration::ZERO));
/// let s = seen.clone();
/// call_at(Duration::from_micros(70), move || s.set(now())).unwrap();
/// let _ = host.run(std::future::pending::<()>(), Duration::from_millis(1));
/// assert_eq!(seen.get(), Duration::from_micros(70));
/// ```
pub fn call_at(at: Duration, call: impl FnOnce() + 'static) -> Result<(), HostError> {
    let at_ns = u64::try_from(at.as_nanos()).unwrap_or(u64::MAX);
    push(at_ns, What::Call(Box::new(call)), false)
}

/// Schedules `call` to run at virtual time `at` as another thread would: as soon as
/// the virtual clock passes `at` — in the middle of a task's poll too (at the end of
/// the [`cpu`](super::cpu) segment that crosses `at`), or at once if the loop is
/// parked. Use it for what other threads hand the executor (a
/// [`RemoteSpawner`](crate::RemoteSpawner) spawn, a cross-thread wake): the executor
/// then sees it as it would see the real thing, through its inbox, at its next poll
/// boundary. Fails when no [`Host`] is installed on this thread.
///
/// ```
/// use clockworker::sim::{self, call_from_thread_at, Host, HostModel};
/// use std::{cell::Cell, rc::Rc, time::Duration};
///
/// let host = Host::new(HostModel::tokio()).unwrap();
/// let seen = Rc::new(Cell::new(Duration::ZERO));
/// let s = seen.clone();
/// call_from_thread_at(Duration::from_micros(70), move || s.set(sim::now())).unwrap();
/// // A 100 µs segment crosses 70 µs: the call runs at its end, inside the poll.
/// host.run(sim::cpu(Duration::from_micros(100)), Duration::from_secs(1)).unwrap();
/// assert_eq!(seen.get(), Duration::from_micros(100));
/// ```
pub fn call_from_thread_at(at: Duration, call: impl FnOnce() + 'static) -> Result<(), HostError> {
    let at_ns = u64::try_from(at.as_nanos()).unwrap_or(u64::MAX);
    push(at_ns, What::Call(Box::new(call)), true)
}

/// Runs the calls of other threads that are due (called as the clock moves on).
pub(super) fn deliver_thread_calls() {
    deliver(true);
}

/// The virtual time since the host was installed, or zero without one.
///
/// ```
/// use clockworker::sim::{now, Host, HostModel};
/// let _host = Host::new(HostModel::tokio()).unwrap();
/// assert_eq!(now(), std::time::Duration::ZERO);
/// ```
pub fn now() -> Duration {
    Duration::from_nanos(virtual_time::now_ns())
}

/// How many times executors on this thread read the virtual clock since the host was
/// installed: what the run loop's clock reads would cost on a real clock (one
/// `rdtsc`, ~10 ns on the machine of docs/BENCHMARKS.md, per read).
///
/// ```
/// use clockworker::sim::{clock_reads, Host, HostModel};
/// use clockworker::ExecutorBuilder;
/// use std::time::Duration;
///
/// let host = Host::new(HostModel::fine()).unwrap();
/// let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
/// let task = executor.queue(0).unwrap().spawn(async { 7 });
/// assert_eq!(clock_reads(), 0);
/// let output = host.run(executor.run_until(task), Duration::from_secs(1));
/// assert_eq!(output.unwrap().unwrap(), 7);
/// assert!(clock_reads() > 0); // at least the turn's start
/// ```
pub fn clock_reads() -> u64 {
    virtual_time::reads()
}

/// The host's waker: records that the driven future asked to be polled again.
struct HostWake(AtomicBool);

impl Wake for HostWake {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::Release);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.store(true, Ordering::Release);
    }
}

/// The virtual host of this thread: installs the virtual clock (at zero) and the event
/// list, and drives futures on them. Executors built on this thread while it exists
/// run on virtual time. Dropping it uninstalls both.
///
/// ```
/// use clockworker::sim::{self, Host, HostModel};
/// use clockworker::ExecutorBuilder;
/// use std::time::Duration;
///
/// let host = Host::new(HostModel::tokio()).unwrap();
/// let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
/// let task = executor.queue(0).unwrap().spawn(async {
///     sim::cpu(Duration::from_micros(30)).await;
///     sim::sleep(Duration::from_micros(200)).await; // tokio's wheel: fires at 1 ms
///     sim::now()
/// });
/// let done = host.run(executor.run_until(task), Duration::from_secs(1)).unwrap();
/// assert_eq!(done.unwrap(), Duration::from_millis(1));
/// ```
pub struct Host {
    /// Not `Send`: the host is this thread's.
    _thread: std::marker::PhantomData<*const ()>,
}

impl Host {
    /// Installs a host with `model` on this thread, its virtual clock at zero. Fails
    /// when one is installed already.
    ///
    /// ```
    /// use clockworker::sim::{Host, HostError, HostModel};
    /// let first = Host::new(HostModel::tokio()).unwrap();
    /// assert_eq!(Host::new(HostModel::tokio()).err(), Some(HostError::AlreadyInstalled));
    /// drop(first);
    /// assert!(Host::new(HostModel::fine()).is_ok());
    /// ```
    pub fn new(model: HostModel) -> Result<Host, HostError> {
        STATE.with(|state| {
            let mut state = state.borrow_mut();
            if state.is_some() {
                return Err(HostError::AlreadyInstalled);
            }
            *state = Some(State {
                model,
                events: BinaryHeap::new(),
                thread_events: BinaryHeap::new(),
                next_seq: 0,
                stats: HostStats::default(),
            });
            virtual_time::install();
            Ok(Host {
                _thread: std::marker::PhantomData,
            })
        })
    }

    /// What the host counted so far.
    ///
    /// ```
    /// use clockworker::sim::{Host, HostModel};
    /// use std::time::Duration;
    /// let host = Host::new(HostModel::tokio()).unwrap();
    /// let _ = host.run(std::future::pending::<()>(), Duration::from_millis(1));
    /// assert_eq!(host.stats().returns, 1);
    /// ```
    pub fn stats(&self) -> HostStats {
        with_state(|state| state.stats).unwrap_or_default()
    }

    /// Drives `future` until it completes, the virtual clock reaches `limit`, or it
    /// parks with no event left to wake it (see the module docs for the loop's rules).
    ///
    /// ```
    /// use clockworker::sim::{self, Host, HostModel, Stopped};
    /// use std::time::Duration;
    ///
    /// let host = Host::new(HostModel::fine()).unwrap();
    /// let slept = host.run(sim::sleep(Duration::from_micros(5)), Duration::from_secs(1));
    /// assert_eq!(slept, Ok(()));
    /// let stuck = host.run(std::future::pending::<()>(), Duration::from_secs(1));
    /// assert_eq!(stuck, Err(Stopped::Stalled));
    /// ```
    pub fn run<F: Future>(&self, future: F, limit: Duration) -> Result<F::Output, Stopped> {
        let limit_ns = u64::try_from(limit.as_nanos()).unwrap_or(u64::MAX);
        let return_ns = with_state(|state| state.model.return_cost)
            .map_or(0, |cost| u64::try_from(cost.as_nanos()).unwrap_or(u64::MAX));
        let wake = Arc::new(HostWake(AtomicBool::new(false)));
        let waker = Waker::from(wake.clone());
        let mut cx = Context::from_waker(&waker);
        let mut future = pin!(future);
        loop {
            wake.0.store(false, Ordering::Release);
            if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
                return Ok(output);
            }
            virtual_time::advance(return_ns);
            with_state(|state| state.stats.returns += 1);
            loop {
                deliver_due();
                if wake.0.load(Ordering::Acquire) {
                    break;
                }
                let next = with_state(|state| {
                    let host = state.events.peek().map(|e| e.at_ns);
                    let thread = state.thread_events.peek().map(|e| e.at_ns);
                    host.into_iter().chain(thread).min()
                });
                let Some(next) = next.flatten() else {
                    return Err(Stopped::Stalled);
                };
                if next > limit_ns {
                    virtual_time::advance_to(limit_ns);
                    return Err(Stopped::TimeLimit);
                }
                virtual_time::advance_to(next);
                with_state(|state| state.stats.idle_jumps += 1);
            }
            if virtual_time::now_ns() >= limit_ns {
                return Err(Stopped::TimeLimit);
            }
        }
    }
}

/// Fires the timers and runs the calls that are due (other threads' first), earliest
/// first. Events they add that are due too are delivered in the same round.
fn deliver_due() {
    deliver(true);
    deliver(false);
}

/// Delivers the due events of one list: other threads' calls, or the host's events.
fn deliver(from_thread: bool) {
    loop {
        let now = virtual_time::now_ns();
        let event = with_state(|state| {
            let events = if from_thread {
                &mut state.thread_events
            } else {
                &mut state.events
            };
            if events.peek().is_some_and(|e| e.at_ns <= now) {
                let event = events.pop();
                match event.as_ref().map(|e| &e.what) {
                    Some(What::Timer(_)) => state.stats.timers_fired += 1,
                    Some(What::Call(_)) => state.stats.calls_run += 1,
                    None => {}
                }
                event
            } else {
                None
            }
        })
        .flatten();
        // The state is released: what runs here may schedule new events.
        match event.map(|e| e.what) {
            Some(What::Timer(slot)) => {
                slot.fired.set(true);
                if let Some(waker) = slot.waker.borrow_mut().take() {
                    waker.wake();
                }
            }
            Some(What::Call(call)) => call(),
            None => return,
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        // Events may hold tasks' wakers and spawn closures: drop them outside the borrow.
        let state = STATE.with(|state| state.borrow_mut().take());
        drop(state);
        virtual_time::uninstall();
    }
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("now", &now())
            .field("stats", &self.stats())
            .finish()
    }
}
