//! What simulated tasks do with virtual time: [`cpu`] burns it, [`sleep`] waits on a
//! timer of the virtual host.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::clock::virtual_time;

use super::host::{add_timer, deliver_thread_calls, TimerSlot};

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A busy segment of `d` of CPU: when awaited, it moves the virtual clock on by `d`
/// and completes at once. Like real CPU work it cannot be preempted: nothing else runs
/// meanwhile, and the executor sees one poll that long (to let other work in, await
/// [`yield_maybe`](crate::yield_maybe) between segments, as real code would).
///
/// Calls of other threads ([`call_from_thread_at`](super::call_from_thread_at)) that
/// fall inside the segment run at its end.
///
/// # Panics
///
/// When awaited on a thread without a [`Host`](super::Host), as tokio's timers panic
/// outside a runtime: there is no virtual clock to move.
///
/// ```
/// use clockworker::sim::{self, Host, HostModel};
/// use std::time::Duration;
///
/// let host = Host::new(HostModel::tokio()).unwrap();
/// host.run(sim::cpu(Duration::from_micros(40)), Duration::from_secs(1)).unwrap();
/// assert_eq!(sim::now(), Duration::from_micros(40));
/// ```
pub fn cpu(d: Duration) -> Cpu {
    Cpu { ns: nanos(d) }
}

/// Moves the virtual clock on by `ns` of CPU work, then runs what other threads sent
/// meanwhile. False when no host is installed.
pub(super) fn burn(ns: u64) -> bool {
    if !virtual_time::advance(ns) {
        return false;
    }
    deliver_thread_calls();
    true
}

/// The future of [`cpu`].
///
/// ```
/// use clockworker::sim::{cpu, Cpu};
/// let segment: Cpu = cpu(std::time::Duration::from_micros(5));
/// drop(segment);
/// ```
#[derive(Debug)]
#[must_use = "a CPU segment does nothing unless awaited"]
pub struct Cpu {
    ns: u64,
}

impl Future for Cpu {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        let ns = std::mem::take(&mut self.get_mut().ns);
        assert!(
            burn(ns),
            "clockworker::sim::cpu awaited outside a simulation: create a sim::Host on \
             this thread first"
        );
        Poll::Ready(())
    }
}

/// Waits `d` on a timer of the virtual host: the timer fires at the first multiple of
/// the host's resolution at or after the deadline, and reaches the task only when the
/// run loop is back in the host (as with tokio's `sleep`). A zero `d` completes at once.
///
/// # Panics
///
/// When polled on a thread without a [`Host`](super::Host).
///
/// ```
/// use clockworker::sim::{self, Host, HostModel};
/// use std::time::Duration;
///
/// let host = Host::new(HostModel::fine()).unwrap();
/// host.run(sim::sleep(Duration::from_micros(250)), Duration::from_secs(1)).unwrap();
/// assert_eq!(sim::now(), Duration::from_micros(250));
/// ```
pub fn sleep(d: Duration) -> Sleep {
    Sleep {
        ns: nanos(d),
        slot: None,
    }
}

/// The future of [`sleep`].
///
/// ```
/// use clockworker::sim::{sleep, Sleep};
/// let wait: Sleep = sleep(std::time::Duration::from_millis(1));
/// drop(wait);
/// ```
#[derive(Debug)]
#[must_use = "a sleep does nothing unless awaited"]
pub struct Sleep {
    ns: u64,
    /// The registered timer, after the first poll.
    slot: Option<Rc<TimerSlot>>,
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        match &this.slot {
            Some(slot) if slot.fired.get() => Poll::Ready(()),
            Some(slot) => {
                *slot.waker.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
            None if this.ns == 0 => Poll::Ready(()),
            None => {
                let slot = Rc::new(TimerSlot::default());
                *slot.waker.borrow_mut() = Some(cx.waker().clone());
                let deadline = virtual_time::now_ns().saturating_add(this.ns);
                let registered = add_timer(deadline, slot.clone());
                assert!(
                    registered.is_ok(),
                    "clockworker::sim::sleep polled outside a simulation: create a \
                     sim::Host on this thread first"
                );
                this.slot = Some(slot);
                Poll::Pending
            }
        }
    }
}
