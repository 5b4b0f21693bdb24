//! `with_host_poll_interval`: while the running queue is outranked by a queue whose
//! tasks wait on something, the run loop returns to the host every host-poll interval
//! instead of every `driver_yield`, so those tasks' wakes (sockets, timers) are seen
//! sooner. Measured by the number of returns to the host (`driver_yields`) while a
//! background task keeps the loop busy: behaviour, with wide margins, not speed.
//! And when a slice of such an outranked queue begins mid-turn, the loop first returns
//! to the host: measured by the order of events around a socket write.

mod common;

use std::cell::RefCell;
use std::future::pending;
use std::rc::Rc;
use std::time::{Duration, Instant};

use clockworker::{yield_maybe, Executor, ExecutorBuilder};
use common::{runtime, spin, Q};

const BUSY_FOR: Duration = Duration::from_millis(200);
const DRIVER_YIELD: Duration = Duration::from_millis(40);
const HOST_POLL: Duration = Duration::from_millis(2);
/// `driver_yield` and lag tolerance of the socket-write runs.
const LONG_TURN: Duration = Duration::from_secs(1);

/// Busy-spin chunk of the Bg task.
const CHUNK: Duration = Duration::from_micros(50);

/// What a run of `busy_bg` saw.
struct Turns {
    /// Returns to the host (`driver_yields`).
    returns: u64,
    /// `CHUNK`s of Bg work polled.
    chunks: u64,
}

/// Works in `CHUNK`s for `duration`, with `yield_maybe` between them; returns how many
/// chunks.
async fn work_in_chunks(duration: Duration) -> u64 {
    let start = Instant::now();
    let mut chunks = 0;
    while start.elapsed() < duration {
        spin(CHUNK);
        chunks += 1;
        yield_maybe().await;
    }
    chunks
}

/// Fg (weight 8) and Bg (weight 4), turns of `driver_yield`, host polls every
/// `HOST_POLL`.
fn fg8_bg4(driver_yield: Duration) -> Rc<Executor<Q>> {
    ExecutorBuilder::new()
        .with_queue(Q::Fg, 8)
        .with_queue(Q::Bg, 4)
        .with_driver_yield(driver_yield)
        .with_host_poll_interval(HOST_POLL)
        .build()
        .unwrap()
}

/// Runs a CPU-bound Bg task in `CHUNK`s for `BUSY_FOR` (Fg weight `fg_weight`, Bg
/// weight 4), with one Fg task parked forever when `fg_parked`.
fn busy_bg(fg_weight: u32, fg_parked: bool) -> Turns {
    busy_bg_beside(
        ExecutorBuilder::new().with_queue(Q::Fg, fg_weight),
        fg_parked,
    )
}

/// As `busy_bg`, with Fg as `with_fg` declares it.
fn busy_bg_beside(with_fg: ExecutorBuilder<Q>, fg_parked: bool) -> Turns {
    let executor = with_fg
        .with_queue(Q::Bg, 4)
        .with_driver_yield(DRIVER_YIELD)
        .with_host_poll_interval(HOST_POLL)
        .build()
        .unwrap();
    let fg = executor.queue(Q::Fg).unwrap();
    let bg = executor.queue(Q::Bg).unwrap();
    let parked = fg_parked.then(|| fg.spawn(pending::<()>()));
    let chunks = runtime().block_on(
        executor.run_until(async move { bg.spawn(work_in_chunks(BUSY_FOR)).await.unwrap() }),
    );
    if let Some(parked) = parked {
        parked.abort();
    }
    Turns {
        returns: executor.stats().driver_yields,
        chunks,
    }
}

#[test]
fn an_outranking_queue_with_parked_tasks_shortens_the_turns() {
    let _watchdog = common::watchdog();
    // Per return, at most HOST_POLL / CHUNK = 40 chunks while the thread runs (the
    // interval is wall time: a descheduled thread returns after fewer). Counted per
    // chunk, not per wall second, so a loaded machine cannot fail it; with turns of
    // DRIVER_YIELD it would be ~800.
    assert_short_turns(busy_bg(8, true), "Fg parked");
}

/// Turns of about `HOST_POLL`: at least one return to the host per 80 chunks of Bg
/// work (40 would be exact while the thread runs), with `parked` saying what waits.
fn assert_short_turns(Turns { returns, chunks }: Turns, parked: &str) {
    assert!(
        returns * 80 >= chunks,
        "{chunks} chunks of Bg work in only {returns} returns to the host with {parked}"
    );
}

#[test]
fn nothing_parked_or_nothing_outranking_keeps_driver_yield_turns() {
    let _watchdog = common::watchdog();
    // 200 ms at one return per 40 ms is ~5; load and OS stalls only lower it.
    let nothing_parked = busy_bg(8, false).returns;
    assert!(
        nothing_parked <= 15,
        "{nothing_parked} returns with nothing parked"
    );
    let lower_weight_parked = busy_bg(1, true).returns;
    assert!(
        lower_weight_parked <= 15,
        "{lower_weight_parked} returns although the parked queue does not outrank Bg"
    );
}

#[test]
fn a_parked_queue_of_equal_weight_does_not_shorten_the_turns() {
    let _watchdog = common::watchdog();
    // Fg weighs what Bg weighs (4): it does not outrank Bg, parked task or not.
    let returns = busy_bg(4, true).returns;
    assert!(
        returns <= 15,
        "{returns} returns although the parked Fg only equals Bg's weight"
    );
}

#[test]
fn ended_tasks_of_an_outranking_queue_do_not_shorten_the_turns() {
    let _watchdog = common::watchdog();
    // Fg's tasks all ended before Bg's work (two completed, one aborted): none is left
    // to wait on the host, so the turns last `driver_yield` (~5 returns in 200 ms) as
    // with nothing parked.
    let executor = fg8_bg4(DRIVER_YIELD);
    let fg = executor.queue(Q::Fg).unwrap();
    let bg = executor.queue(Q::Bg).unwrap();
    let completed: Vec<_> = (0..2).map(|_| fg.spawn(async {})).collect();
    let aborted = fg.spawn(pending::<()>());
    aborted.abort();
    runtime().block_on(executor.run_until(async move {
        common::outputs_of(completed).await;
        assert!(aborted.await.unwrap_err().is_cancelled());
        bg.spawn(work_in_chunks(BUSY_FOR)).await.unwrap();
    }));
    let returns = executor.stats().driver_yields;
    assert!(
        returns <= 15,
        "{returns} returns although every Fg task had ended"
    );
}

#[test]
fn a_latency_queue_with_parked_tasks_shortens_the_turns_whatever_its_weight() {
    let _watchdog = common::watchdog();
    // Fg weighs 1 against Bg's 4, but a latency queue outranks any queue for the
    // host-poll rule: its parked task's wakes are looked for every HOST_POLL, as in
    // `an_outranking_queue_with_parked_tasks_shortens_the_turns`.
    let latency_fg = ExecutorBuilder::new().with_queue_latency(Q::Fg, 1, CHUNK);
    assert_short_turns(busy_bg_beside(latency_fg, true), "latency Fg parked");
}

#[test]
fn a_queue_is_not_outranked_by_its_own_parked_tasks() {
    let _watchdog = common::watchdog();
    // Fg (weight 8) busy with a task of its own parked, Bg (weight 4) without tasks:
    // nothing outranks the running Fg slice, so turns last `driver_yield` (~5
    // returns in 200 ms); counting the slice as Bg's would make them HOST_POLL short.
    let executor = fg8_bg4(DRIVER_YIELD);
    let fg = executor.queue(Q::Fg).unwrap();
    let parked = fg.spawn(pending::<()>());
    runtime()
        .block_on(executor.run_until(fg.spawn(work_in_chunks(BUSY_FOR))))
        .unwrap();
    parked.abort();
    let returns = executor.stats().driver_yields;
    assert!(
        returns <= 15,
        "{returns} returns although only Fg's own task waits"
    );
}

/// Fg task `writer` writes a byte to a socket whose other end Fg task `reader` waits
/// on, then ends; Bg tasks are ready throughout, in chunks of 2 ms with `yield_maybe`
/// between them. Returns the events in order: "write", "read", and one "bg" per chunk.
/// (Fg owes a little service after the writer's poll, more if the OS stalls it; a
/// lag tolerance of a second lets it run again at once whatever the stall, and turns
/// of a second keep the host out unless asked, so that what is measured is only
/// whether the host is asked before Bg runs.)
fn events_around_a_socket_write(host_poll: Duration) -> Vec<&'static str> {
    let executor = ExecutorBuilder::new()
        .with_queue(Q::Fg, 8)
        .with_queue(Q::Bg, 1)
        .with_driver_yield(LONG_TURN)
        .with_host_poll_interval(host_poll)
        .with_lag_tolerance(LONG_TURN)
        .build()
        .unwrap();
    let fg = executor.queue(Q::Fg).unwrap();
    let bg = executor.queue(Q::Bg).unwrap();
    let events = Rc::new(RefCell::new(Vec::new()));
    runtime().block_on(executor.run_until(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut tx, mut rx) = tokio::net::UnixStream::pair().unwrap();
        let log = events.clone();
        let reader = fg.spawn(async move {
            let mut byte = [0u8];
            rx.read_exact(&mut byte).await.unwrap();
            log.borrow_mut().push("read");
        });
        // Let the reader park on its socket before anything else runs.
        clockworker::yield_now().await;
        for _ in 0..2 {
            let log = events.clone();
            bg.spawn(async move {
                for _ in 0..10 {
                    spin(Duration::from_millis(2));
                    log.borrow_mut().push("bg");
                    yield_maybe().await;
                }
            });
        }
        let log = events.clone();
        fg.spawn(async move {
            tx.write_all(&[1]).await.unwrap();
            log.borrow_mut().push("write");
        });
        reader.await.unwrap();
        events.take()
    }))
}

/// The event right after "write".
fn after_write<'a>(events: &'a [&'static str]) -> Option<&'a &'static str> {
    let write = events.iter().position(|e| *e == "write").expect("write");
    events.get(write + 1)
}

#[test]
fn a_bg_slice_beginning_mid_turn_lets_the_host_deliver_fg_wakes_first() {
    let _watchdog = common::watchdog();
    let events = events_around_a_socket_write(HOST_POLL);
    assert_eq!(
        after_write(&events),
        Some(&"read"),
        "the readable socket waited for Bg: {events:?}"
    );
}

#[test]
fn with_host_polls_off_the_bg_slice_runs_before_the_host_is_asked() {
    let _watchdog = common::watchdog();
    // The control: the same run with the rule off (interval = driver_yield) serves Bg
    // for the rest of the turn before tokio sees the socket.
    let events = events_around_a_socket_write(LONG_TURN);
    assert_eq!(
        after_write(&events),
        Some(&"bg"),
        "expected Bg chunks between the write and the read: {events:?}"
    );
}

/// Rounds of `busy_after_idle`.
const ROUNDS: u64 = 5;
/// Work per round of `busy_after_idle`.
const ROUND_WORK: Duration = Duration::from_millis(10);

/// One Fg task (weight 8) parked forever, and a task of queue `busy` (Bg weighs 4)
/// that `ROUNDS` times sleeps on a host timer, so that the loop goes idle, then works
/// `ROUND_WORK` in `CHUNK`s: each round's work begins with a turn that starts idle (no
/// slice running), woken by the host. Turns of `driver_yield` last a second.
fn busy_after_idle(busy: Q) -> Turns {
    let executor = fg8_bg4(LONG_TURN);
    let parked = executor.queue(Q::Fg).unwrap().spawn(pending::<()>());
    let worker = executor.queue(busy).unwrap();
    let chunks = runtime().block_on(executor.run_until(async move {
        worker
            .spawn(async {
                let mut chunks = 0;
                for _ in 0..ROUNDS {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    chunks += work_in_chunks(ROUND_WORK).await;
                }
                chunks
            })
            .await
            .unwrap()
    }));
    parked.abort();
    Turns {
        returns: executor.stats().driver_yields,
        chunks,
    }
}

#[test]
fn a_turn_starting_idle_with_an_outranked_queue_ready_is_short() {
    let _watchdog = common::watchdog();
    // With no slice running, the ready queues decide the turn: Bg is ready and
    // outranked by Fg, whose task waits, so each round returns to the host every
    // HOST_POLL from its first turn on (as `an_outranking_queue_with_parked_tasks_
    // shortens_the_turns`); a full first turn would do each round's work in one.
    assert_short_turns(busy_after_idle(Q::Bg), "Fg parked, Bg woken by the host");
}

#[test]
fn a_turn_starting_idle_with_only_the_outranking_queue_ready_is_long() {
    let _watchdog = common::watchdog();
    // Fg's own task is the one ready: nothing outranks Fg, and Bg, which Fg outranks,
    // has nothing ready, so the turns last `driver_yield` (a second, against 10 ms of
    // work a round). Counting the empty Bg would cut each round's first turn short:
    // one return per round.
    let Turns { returns, chunks } = busy_after_idle(Q::Fg);
    assert!(
        returns < ROUNDS,
        "{returns} returns to the host in {ROUNDS} rounds ({chunks} chunks) with only Fg ready"
    );
}
