//! Polls that end without a clock read (feature `sim`). After a poll under 1 µs,
//! the next few polls of tasks whose last measured poll was under 1 µs too may skip
//! the read, as may the first polls of new tasks of a future type whose last measured
//! first poll was under 1 µs; the read that ends the run charges all of it. Here, on
//! the virtual clock: service time stays exact, the poll-time histogram counts every
//! poll and its quantiles stay within one bucket of the exact ones, a task that books
//! its own polls gets its own time only, and deadlines stay as punctual as the polls
//! allow.
#![cfg(feature = "sim")]

mod common;

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use clockworker::sim::{self, Host, HostModel};
use clockworker::{yield_now, Executor, ExecutorBuilder, Log2Histogram, QueueHandle};
use common::sim_work::US;

const NS: Duration = Duration::from_nanos(1);

/// A task to run: how many polls, and how long poll `i` burns.
type PollsOf = (usize, fn(usize) -> Duration);

/// A task of `polls` polls, poll `i` burning `length(i)` of virtual CPU before it
/// yields; its last poll burns nothing and completes.
async fn polls_of(polls: usize, length: impl Fn(usize) -> Duration) {
    for i in 0..polls {
        sim::cpu(length(i)).await;
        yield_now().await;
    }
}

/// A task that burns `length` and yields, forever, counting its polls in `polls`.
async fn counted_polls(length: Duration, polls: Rc<Cell<u64>>) {
    loop {
        polls.set(polls.get() + 1);
        sim::cpu(length).await;
        yield_now().await;
    }
}

/// The log2 bucket a duration falls in, as `Log2Histogram` numbers them (a bucket's
/// upper bound is `2^i - 1` ns).
fn bucket(d: Duration) -> u32 {
    u64::BITS - (d.as_nanos() as u64).leading_zeros()
}

/// The exact `q`-quantile of `values`, ranked as `Log2Histogram::quantile` ranks.
fn exact_quantile(values: &mut [Duration], q: f64) -> Duration {
    values.sort();
    let rank = ((q * values.len() as f64).ceil() as usize).max(1);
    values[rank - 1]
}

/// Each `q`-quantile of the sampled `poll_time` falls in the bucket of the exact one
/// (of `lengths`, every poll's length) or a neighbouring one.
fn assert_quantiles_within_one_bucket(
    poll_time: &Log2Histogram,
    lengths: &mut [Duration],
    quantiles: &[f64],
) {
    for &q in quantiles {
        let exact = exact_quantile(lengths, q);
        let sampled = poll_time.quantile(q).unwrap();
        assert!(
            bucket(exact).abs_diff(bucket(sampled)) <= 1,
            "q {q}: exact {exact:?}, sampled bucket's bound {sampled:?}, histogram {poll_time}"
        );
    }
}

fn one_queue_on_a_fine_host() -> (Host, Rc<Executor<u8>>) {
    let host = Host::new(HostModel::fine()).unwrap();
    let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    (host, executor)
}

/// Runs `tasks` (each: its poll count and the length of poll `i`) to completion on
/// one queue; returns the queue's poll-time histogram, polls and service time, and
/// the length of every poll that ran.
fn run_to_completion(tasks: Vec<PollsOf>) -> (Log2Histogram, u64, Duration, Vec<Duration>) {
    let (host, executor) = one_queue_on_a_fine_host();
    let queue = executor.queue(0).unwrap();
    let mut lengths = Vec::new();
    let handles: Vec<_> = tasks
        .into_iter()
        .map(|(polls, length)| {
            lengths.extend((0..polls).map(length));
            lengths.push(Duration::ZERO); // the completing poll
            queue.spawn(polls_of(polls, length))
        })
        .collect();
    let all = async move {
        for handle in handles {
            handle.await.unwrap();
        }
    };
    host.run(executor.run_until(all), Duration::from_secs(10))
        .unwrap();
    let stats = executor.queue_stats(0).unwrap();
    (stats.poll_time, stats.polls, stats.service_time, lengths)
}

#[test]
fn service_time_is_exact_and_every_poll_is_counted() {
    let tasks = (0..10)
        .map(|_| (50, (|_| 300 * NS) as fn(usize) -> Duration))
        .collect();
    let (poll_time, polls, service, lengths) = run_to_completion(tasks);
    assert_eq!(polls, lengths.len() as u64);
    assert_eq!(poll_time.count(), polls, "{poll_time}");
    assert_eq!(service, lengths.iter().sum::<Duration>());
}

#[test]
fn sampled_quantiles_of_tasks_taking_turns_are_within_one_bucket() {
    // Three tasks take turns (FIFO), each always polling for its own length, in three
    // different buckets. Runs of a fixed length that is a multiple of three would
    // sample the same task every time.
    let tasks: Vec<PollsOf> = vec![
        (2_000, |_| 100 * NS),
        (2_000, |_| 400 * NS),
        (2_000, |_| 900 * NS),
    ];
    let (poll_time, polls, _, mut lengths) = run_to_completion(tasks);
    assert_eq!(poll_time.count(), polls);
    assert_quantiles_within_one_bucket(
        &poll_time,
        &mut lengths,
        &[0.1, 0.25, 0.5, 0.6, 0.75, 0.9, 0.99],
    );
}

#[test]
fn sampled_quantiles_of_mixed_lengths_are_within_one_bucket() {
    // Lengths from 50 ns to 3 µs, some polls past the 1 µs that ends a run, varying
    // from poll to poll within each task.
    let tasks: Vec<PollsOf> = vec![
        (1_500, |i| (50 + (i * 37) % 700) as u32 * NS),
        (1_500, |i| (200 + (i * 53) % 600) as u32 * NS),
        (1_500, |i| if i % 10 == 0 { 3 * US } else { 150 * NS }),
        (1_500, |i| (i % 5 + 1) as u32 * 180 * NS),
    ];
    let (poll_time, polls, service, mut lengths) = run_to_completion(tasks);
    assert_eq!(poll_time.count(), polls);
    assert_eq!(service, lengths.iter().sum::<Duration>());
    assert_quantiles_within_one_bucket(
        &poll_time,
        &mut lengths,
        &[0.05, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99],
    );
}

/// Polls counted per queue: the counters of the tasks of each queue.
type Counts = Vec<(&'static str, Rc<Cell<u64>>)>;

/// Two queues, "fg" and "bg", of the weights given, on a fine host, each with four
/// tasks polling 300 ns at a time (`counted_bursts` for "fg" when `bursty_fg`,
/// `counted_polls` otherwise), run for `time`; returns the executor and the tasks'
/// counters.
fn two_queues_of_short_polls(
    weights: (u32, u32),
    bursty_fg: bool,
    time: Duration,
) -> (Rc<Executor<&'static str>>, Counts) {
    let host = Host::new(HostModel::fine()).unwrap();
    let executor = ExecutorBuilder::new()
        .with_queue("fg", weights.0)
        .with_queue("bg", weights.1)
        .build()
        .unwrap();
    let mut counts = Vec::new();
    for key in ["fg", "bg"] {
        for _ in 0..4 {
            let polls = Rc::new(Cell::new(0));
            counts.push((key, polls.clone()));
            let queue = executor.queue(key).unwrap();
            if bursty_fg && key == "fg" {
                queue.spawn(counted_bursts(300 * NS, polls));
            } else {
                queue.spawn(counted_polls(300 * NS, polls));
            }
        }
    }
    let _ = host.run(executor.run(), time);
    (executor, counts)
}

/// How many 300 ns polls the tasks of queue `key` counted.
fn counted(counts: &Counts, key: &str) -> u64 {
    counts
        .iter()
        .filter(|(k, _)| *k == key)
        .map(|(_, n)| n.get())
        .sum()
}

#[test]
fn shares_and_service_stay_exact_with_short_polls_in_two_queues() {
    let (executor, counts) = two_queues_of_short_polls((3, 1), false, Duration::from_millis(500));
    let mut service = [Duration::ZERO; 2];
    for (key, stats) in ["fg", "bg"].into_iter().zip(&mut service) {
        let queue = executor.queue_stats(key).unwrap();
        let polls = counted(&counts, key);
        // Each poll burned 300 ns (the last one of each task, cut off by the end of
        // the run, burned it too: the count is taken before the burn).
        assert_eq!(queue.service_time, polls as u32 * 300 * NS, "{key}");
        assert_eq!(queue.polls, polls, "{key}");
        assert_eq!(queue.poll_time.count(), polls, "{key}");
        *stats = queue.service_time;
    }
    let fg_share = service[0].as_secs_f64() / (service[0] + service[1]).as_secs_f64();
    // Over 50 ms the last partial slice showed (0.7538, with a read after every poll
    // too); over 500 ms it is 0.75007.
    assert!((fg_share - 0.75).abs() < 0.001, "fg share {fg_share}");
}

/// Like `counted_polls`, but in bursts of five polls, then a 50 µs sleep: its queue
/// runs dry between bursts.
async fn counted_bursts(length: Duration, polls: Rc<Cell<u64>>) {
    loop {
        for _ in 0..5 {
            polls.set(polls.get() + 1);
            sim::cpu(length).await;
            yield_now().await;
        }
        sim::sleep(50 * US).await;
    }
}

#[test]
fn a_queue_that_runs_dry_in_a_run_keeps_its_own_time() {
    // The "fg" queue's tasks sleep between bursts of short polls, so the queue runs
    // dry while a run of its unread polls is open and the loop turns to "bg": the run
    // must be closed (and charged to "fg") before "bg" polls. (Equal weights: a switch
    // to a queue of lower weight would end the turn first, which closes the run too.)
    let (executor, counts) = two_queues_of_short_polls((1, 1), true, Duration::from_millis(20));
    for key in ["fg", "bg"] {
        let service = executor.queue_stats(key).unwrap().service_time;
        assert_eq!(service, counted(&counts, key) as u32 * 300 * NS, "{key}");
    }
}

#[test]
fn a_group_gets_its_own_polls_time_only() {
    // Tasks outside the group poll 300 ns at a time (their polls may end unread);
    // the group's task polls 700 ns: its time must not include theirs.
    let (host, executor) = one_queue_on_a_fine_host();
    let queue = executor.queue(0).unwrap();
    let group = queue.group("tenant");
    let group_polls = Rc::new(Cell::new(0));
    group.spawn(counted_polls(700 * NS, group_polls.clone()));
    for _ in 0..5 {
        queue.spawn(counted_polls(300 * NS, Rc::new(Cell::new(0))));
    }
    let _ = host.run(executor.run(), Duration::from_millis(20));
    let stats = group.group_stats().unwrap();
    assert!(group_polls.get() > 100, "{}", group_polls.get());
    assert_eq!(stats.service_time, group_polls.get() as u32 * 700 * NS);
}

/// A future that records how long each of its polls took on the virtual clock: polled
/// by the host, each poll of `executor.run()` is one turn of the run loop.
struct Turns<F> {
    inner: Pin<Box<F>>,
    lengths: Rc<RefCell<Vec<Duration>>>,
}

impl<F: Future> Future for Turns<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let start = sim::now();
        let poll = self.inner.as_mut().poll(cx);
        self.lengths.borrow_mut().push(sim::now() - start);
        poll
    }
}

/// How long each turn of the run loop took, on a fine host, with `tasks` tasks whose
/// poll `i` burns `length(i)`, forever, and a driver yield of 100 µs (10 ms in all).
fn turn_lengths(tasks: usize, length: fn(usize) -> Duration) -> Vec<Duration> {
    turns_of(|queue| {
        for _ in 0..tasks {
            queue.spawn(polls_of(usize::MAX, length));
        }
    })
}

/// How long each turn of the run loop took, on a fine host, with the tasks `spawn`
/// spawns on its one queue, and a driver yield of 100 µs (10 ms in all).
fn turns_of(spawn: impl FnOnce(&QueueHandle<u8>)) -> Vec<Duration> {
    let host = Host::new(HostModel::fine()).unwrap();
    let executor = ExecutorBuilder::new()
        .with_queue(0u8, 1)
        .with_driver_yield(100 * US)
        .build()
        .unwrap();
    spawn(&executor.queue(0).unwrap());
    let lengths = Rc::new(RefCell::new(Vec::new()));
    let turns = Turns {
        inner: Box::pin(executor.run()),
        lengths: lengths.clone(),
    };
    let _ = host.run(turns, Duration::from_millis(10));
    let lengths = lengths.take();
    assert!(lengths.len() > 50, "{} turns", lengths.len());
    lengths
}

/// Spawns, at each of its polls, 16 new tasks, each of whose only poll burns
/// `first(i)` (`i`: the number spawned before it) and completes: every task it spawns
/// has the same future type, and they come in batches.
async fn spawn_new_tasks(queue: QueueHandle<u8>, first: fn(usize) -> Duration) {
    for batch in 0.. {
        for i in batch * 16..(batch + 1) * 16 {
            queue.spawn(async move { sim::cpu(first(i)).await });
        }
        yield_now().await;
    }
}

/// Eight tasks of 500 ns polls, forever, beside `spawn_new_tasks(first)`.
fn turns_with_new_tasks(first: fn(usize) -> Duration) -> Vec<Duration> {
    turns_of(|queue| {
        for _ in 0..8 {
            queue.spawn(polls_of(usize::MAX, |_| 500 * NS));
        }
        queue.spawn(spawn_new_tasks(queue.clone(), first));
    })
}

/// Every turn of `lengths` lasts the 100 µs driver yield, and at most one `poll` more.
fn assert_every_turn_within_a_poll(lengths: &[Duration], poll: Duration) {
    let longest = lengths.iter().max().unwrap();
    assert!(*longest >= 100 * US, "{longest:?}");
    assert!(*longest <= 100 * US + poll, "{longest:?}");
}

/// At most one turn of `lengths` sees the 100 µs driver yield late by more than one
/// `poll`, and that one by at most `polls` of them.
fn assert_late_once_by_at_most(lengths: &[Duration], polls: u32, poll: Duration) {
    let longest = lengths.iter().max().unwrap();
    assert!(*longest <= 100 * US + polls * poll, "{longest:?}");
    let late = lengths
        .iter()
        .filter(|turn| **turn > 100 * US + poll)
        .count();
    assert!(
        late <= 1,
        "{late} turns late by more than a poll: {lengths:?}"
    );
}

#[test]
fn short_polls_see_the_driver_yield_within_a_poll() {
    // A run starts only when the deadline is 16 µs away, and ends (at most 11 polls of
    // 500 ns) before it: the read that sees the deadline is at most one poll late, as
    // with a read after every poll.
    assert_every_turn_within_a_poll(&turn_lengths(8, |_| 500 * NS), 500 * NS);
}

#[test]
fn a_long_poll_after_short_ones_delays_the_driver_yield_once_by_at_most_a_run() {
    // Each task alternates 200 ns and 20 µs polls: its 20 µs polls come after a short
    // measured one, so they may end unread. The first run that holds them may see the
    // driver yield late, by at most the run (11 polls, and the poll whose read ends
    // it); once it has shown them, runs stop starting near the deadline, and every
    // later turn ends within one poll of it, as with a read after every poll.
    let lengths = turn_lengths(16, |i| if i % 2 == 0 { 200 * NS } else { 20 * US });
    let first = lengths.iter().take(5).max().unwrap();
    assert!(*first <= 100 * US + 12 * 20 * US, "{first:?}");
    let later = lengths.iter().skip(5).max().unwrap();
    assert!(*later <= 100 * US + 20 * US, "{later:?}");
}

#[test]
fn new_tasks_whose_first_polls_are_long_see_the_driver_yield_within_a_poll() {
    // New tasks keep arriving among short polls, in batches, each with a 20 µs first
    // poll. A first poll may end unread only when the last measured first poll of the
    // same future type was short, which these never are: each is measured alone, and
    // every turn ends within one poll of the deadline, as with a read after every
    // poll. (Were new tasks let end their first polls unread, a run of them would see
    // the deadline up to eleven 20 µs polls late.)
    let lengths = turns_with_new_tasks(|_| 20 * US);
    let longest = lengths.iter().max().unwrap();
    assert!(*longest <= 100 * US + 20 * US, "{longest:?}");
}

#[test]
fn new_tasks_whose_first_polls_turn_long_delay_the_driver_yield_once_by_at_most_a_run() {
    // The first 2,000 new tasks take 300 ns in their first polls, so later tasks of
    // their type may end their first polls unread; then the first polls take 20 µs.
    // As with a task whose polls turn long: the first run that holds them may see the
    // driver yield late, by at most the run (here one turn took 186 µs, four such
    // polls); after that, turns end within one poll of it.
    let lengths = turns_with_new_tasks(|i| if i < 2_000 { 300 * NS } else { 20 * US });
    assert_late_once_by_at_most(&lengths, 12, 20 * US);
}

#[test]
fn service_time_is_exact_and_every_poll_is_counted_with_new_tasks_in_runs() {
    // 3,000 short tasks of one type, of one or two polls: most first polls may end
    // unread. Service stays exact, every poll is counted, and the sampled quantiles
    // stay within one bucket.
    let tasks = (0..3_000)
        .map(|i| {
            if i % 2 == 0 {
                (1, (|_| 400 * NS) as fn(usize) -> Duration)
            } else {
                (0, (|_| Duration::ZERO) as fn(usize) -> Duration)
            }
        })
        .collect();
    let (poll_time, polls, service, mut lengths) = run_to_completion(tasks);
    assert_eq!(polls, lengths.len() as u64);
    assert_eq!(poll_time.count(), polls, "{poll_time}");
    assert_eq!(service, lengths.iter().sum::<Duration>());
    assert_quantiles_within_one_bucket(&poll_time, &mut lengths, &[0.25, 0.5, 0.75, 0.9]);
}

#[test]
fn runs_of_very_short_polls_grow_and_stay_exact() {
    // Polls of 20 to 110 ns, under the 125 ns that lets runs grow: they double up to
    // 32..=88 polls. Here that is one clock read per ~13 polls (4,650 for 60,003,
    // most of them polls measured alone in the last 16 µs before each deadline);
    // runs that never grew read once per ~4 (14,148). Service stays exact, every poll
    // is counted, the sampled quantiles stay within one bucket.
    let tasks: Vec<PollsOf> = vec![
        (20_000, |_| 20 * NS),
        (20_000, |i| (30 + (i * 7) % 80) as u32 * NS),
        (20_000, |i| if i % 3 == 0 { 100 * NS } else { 40 * NS }),
    ];
    let (poll_time, polls, service, mut lengths) = run_to_completion(tasks);
    let reads = sim::clock_reads();
    assert_eq!(polls, lengths.len() as u64);
    assert_eq!(poll_time.count(), polls, "{poll_time}");
    assert_eq!(service, lengths.iter().sum::<Duration>());
    assert_quantiles_within_one_bucket(
        &poll_time,
        &mut lengths,
        &[0.05, 0.25, 0.5, 0.75, 0.9, 0.99],
    );
    assert!(reads * 10 < polls, "{reads} clock reads for {polls} polls");
}

#[test]
fn very_short_polls_see_the_driver_yield_within_a_poll() {
    // Runs grown to up to 88 polls of 50 ns still start only when the deadline is
    // 16 µs away: every turn ends within one poll of it.
    assert_every_turn_within_a_poll(&turn_lengths(8, |_| 50 * NS), 50 * NS);
}

#[test]
fn very_short_polls_that_turn_long_delay_the_driver_yield_once_by_at_most_a_grown_run() {
    // Sixteen tasks poll 50 ns at a time, 2,050 times each, then 20 µs at a time (the
    // change falls inside a turn). The runs grew while polls were short; the first run
    // that holds long polls may see the driver yield late, by at most the run (88
    // polls, and the poll whose read ends it: here one turn took 700 µs, 30 such
    // polls; runs that never grow allow 11); its read puts runs back at their
    // shortest and stops them near the deadline, so every later turn ends within one
    // poll of it.
    let lengths = turn_lengths(16, |i| if i < 2_050 { 50 * NS } else { 20 * US });
    assert_late_once_by_at_most(&lengths, 89, 20 * US);
}
