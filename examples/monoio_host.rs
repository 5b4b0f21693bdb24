//! clockworker on monoio (io_uring), and monoio's one caveat: it fires timers only
//! when its task queue is empty.
//!
//! monoio processes its timer wheel only when it parks, and it parks only when no task
//! is ready. At each `driver_yield` the run loop wakes itself, so monoio's queue is
//! never empty while clockworker has work: io_uring completions are still reaped
//! (sockets and files keep working), but `monoio::time::sleep` — in clockworker tasks
//! and in plain monoio tasks alike — does not fire until clockworker runs out of work.
//!
//! The fix shown here, [`TimerFriendly`]: host the run loop in a wrapper that turns the
//! loop's self-wake into a wake through io_uring (a byte written to a socket pair whose
//! other end has a read in flight). Then nothing is in monoio's run queue at the driver
//! yield, monoio parks for a moment, fires due timers, reaps the read and polls the loop
//! again. Cost: one `write` and one io_uring read per `driver_yield`.
//!
//! The program runs 100 ms of CPU-bound clockworker work beside a monoio ticker on a
//! 1 ms timer, without and with the wrapper, and prints the ticks.
//!
//! `cargo run --release --example monoio_host` (Linux with io_uring; prints why and
//! exits otherwise).

#[cfg(target_os = "linux")]
mod host {
    use std::cell::Cell;
    use std::future::Future;
    use std::io::Write as _;
    use std::pin::Pin;
    use std::rc::Rc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::task::{Context, Poll, Wake, Waker};
    use std::time::{Duration, Instant};

    use clockworker::{yield_maybe, ExecutorBuilder};
    use monoio::io::AsyncReadRent;

    type Runtime = monoio::Runtime<monoio::time::TimeDriver<monoio::IoUringDriver>>;

    /// Hosts a clockworker run future (`run()` or `run_until(..)`) on monoio so that
    /// monoio's timers fire while clockworker is busy (see the module docs).
    pub struct TimerFriendly<F> {
        inner: Pin<Box<F>>,
        wake: Arc<LoopWake>,
        waker: Waker,
        kick_tx: std::os::unix::net::UnixStream,
        kick_rx: Option<monoio::net::UnixStream>,
        kicking: Option<Pin<Box<dyn Future<Output = monoio::net::UnixStream>>>>,
    }

    /// The waker the run loop sees: a wake during its own poll (a driver yield) is
    /// only noted; any other wake goes to monoio's waker.
    struct LoopWake {
        in_poll: AtomicBool,
        self_woken: AtomicBool,
        host: Mutex<Option<Waker>>,
    }

    impl Wake for LoopWake {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }

        fn wake_by_ref(self: &Arc<Self>) {
            if self.in_poll.load(Ordering::Acquire) {
                self.self_woken.store(true, Ordering::Release);
                return;
            }
            if let Some(host) = self.host.lock().unwrap().as_ref() {
                host.wake_by_ref();
            }
        }
    }

    impl<F: Future> TimerFriendly<F> {
        pub fn new(inner: F) -> std::io::Result<Self> {
            let (tx, rx) = std::os::unix::net::UnixStream::pair()?;
            tx.set_nonblocking(true)?;
            rx.set_nonblocking(true)?;
            let wake = Arc::new(LoopWake {
                in_poll: AtomicBool::new(false),
                self_woken: AtomicBool::new(false),
                host: Mutex::new(None),
            });
            Ok(TimerFriendly {
                inner: Box::pin(inner),
                waker: Waker::from(wake.clone()),
                wake,
                kick_tx: tx,
                kick_rx: Some(monoio::net::UnixStream::from_std(rx)?),
                kicking: None,
            })
        }
    }

    impl<F: Future> Future for TimerFriendly<F> {
        type Output = F::Output;

        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
            let this = &mut *self;
            {
                let mut host = this.wake.host.lock().unwrap();
                if !host.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    *host = Some(cx.waker().clone());
                }
            }
            if let Some(kick) = this.kicking.as_mut() {
                if let Poll::Ready(rx) = kick.as_mut().poll(cx) {
                    this.kick_rx = Some(rx);
                    this.kicking = None;
                }
            }
            this.wake.in_poll.store(true, Ordering::Release);
            let out = this
                .inner
                .as_mut()
                .poll(&mut Context::from_waker(&this.waker));
            this.wake.in_poll.store(false, Ordering::Release);
            if out.is_ready() {
                return out;
            }
            if this.wake.self_woken.swap(false, Ordering::AcqRel) && this.kicking.is_none() {
                // A driver yield: come back through io_uring, after monoio has parked
                // (and fired its due timers).
                let mut rx = this.kick_rx.take().expect("no kick in flight");
                if (&this.kick_tx).write_all(&[1]).is_err() {
                    this.kick_rx = Some(rx);
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                let mut kick: Pin<Box<dyn Future<Output = _>>> = Box::pin(async move {
                    let (_, _buf) = rx.read(vec![0u8; 64]).await;
                    rx
                });
                match kick.as_mut().poll(cx) {
                    Poll::Ready(rx) => {
                        this.kick_rx = Some(rx);
                        cx.waker().wake_by_ref();
                    }
                    Poll::Pending => this.kicking = Some(kick),
                }
            }
            // A kick in flight wakes us; so do the run loop's own wakes.
            Poll::Pending
        }
    }

    fn spin(d: Duration) {
        let start = Instant::now();
        while start.elapsed() < d {
            std::hint::spin_loop();
        }
    }

    /// 100 ms of CPU-bound clockworker work beside a monoio ticker; returns the ticks.
    fn busy_beside_ticker(rt: &mut Runtime, wrap: bool) -> u32 {
        let executor = ExecutorBuilder::new()
            .with_queue("requests", 8)
            .with_queue("compaction", 1)
            .build()
            .expect("valid configuration");
        let compaction = executor.queue("compaction").unwrap();
        let requests = executor.queue("requests").unwrap();
        rt.block_on(async {
            let ticks = Rc::new(Cell::new(0u32));
            let stop = Rc::new(Cell::new(false));
            let ticker = monoio::spawn({
                let (ticks, stop) = (ticks.clone(), stop.clone());
                async move {
                    while !stop.get() {
                        monoio::time::sleep(Duration::from_millis(1)).await;
                        ticks.set(ticks.get() + 1);
                    }
                }
            });
            let work = async {
                let busy = compaction.spawn(async {
                    let start = Instant::now();
                    while start.elapsed() < Duration::from_millis(100) {
                        spin(Duration::from_micros(50));
                        yield_maybe().await;
                    }
                });
                // A foreground task on a monoio timer, too.
                let request = requests.spawn(async {
                    let start = Instant::now();
                    monoio::time::sleep(Duration::from_millis(5)).await;
                    start.elapsed()
                });
                busy.await.unwrap();
                let slept = request.await.unwrap();
                println!("    5 ms monoio sleep in a clockworker task took {slept:?}");
            };
            if wrap {
                TimerFriendly::new(executor.run_until(work))
                    .expect("socket pair")
                    .await;
            } else {
                executor.run_until(work).await;
            }
            let during = ticks.get();
            stop.set(true);
            ticker.await;
            during
        })
    }

    pub fn main() {
        let mut rt: Runtime = match monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
            .enable_timer()
            .build()
        {
            Ok(rt) => rt,
            Err(err) => {
                println!("skipping: monoio's io_uring runtime is unavailable here: {err}");
                return;
            }
        };
        println!("block_on(run_until(..)):");
        let ticks = busy_beside_ticker(&mut rt, false);
        println!(
            "    monoio ticker (1 ms timer) during 100 ms of busy clockworker work: {ticks} ticks"
        );
        println!("block_on(TimerFriendly::new(run_until(..))):");
        let ticks = busy_beside_ticker(&mut rt, true);
        println!(
            "    monoio ticker (1 ms timer) during 100 ms of busy clockworker work: {ticks} ticks"
        );
    }
}

#[cfg(target_os = "linux")]
fn main() {
    host::main();
}

#[cfg(not(target_os = "linux"))]
fn main() {
    println!("skipping: monoio's io_uring driver is Linux-only");
}
