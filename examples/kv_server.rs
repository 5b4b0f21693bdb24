//! A TCP key-value server on tokio: requests in a foreground queue, a CPU-heavy
//! compaction loop in a background queue, and the statistics of each phase.
//!
//! ```text
//! cargo run --release --example kv_server -- --self-test            # runs end to end
//! cargo run --release --example kv_server -- --addr 127.0.0.1:7878 --seconds 30
//! printf 'SET a 1\nGET a\nDEL a\nGET a\n' | nc -q1 127.0.0.1 7878   # from another shell
//! ```
//!
//! The protocol is one line per request, one line per answer: `SET k v` → `OK`,
//! `GET k` → `VALUE v` or `NOT_FOUND`, `DEL k` → `DELETED` or `NOT_FOUND`, anything
//! else → `ERROR ...`. `DEL` leaves a tombstone; compaction removes it later.
//!
//! What it shows:
//!
//! - the executor runs as `LocalSet::block_on(&rt, executor.run_until(..))` on a tokio
//!   current_thread runtime;
//! - the accept loop is a task of queue `Requests` and spawns each connection with
//!   `clockworker::spawn`, which lands in the caller's queue: no `QueueHandle` is
//!   passed in;
//! - compaction is a task of queue `Compaction`; each pass splits the store into shards,
//!   spawns one task per shard into a `JoinSet` (they land in `Compaction` too) and
//!   joins them in the order they finish; a shard works in chunks of `--chunk-us` of
//!   CPU with `yield_maybe()` between them;
//! - the run has two phases of `--seconds / 2` each: requests only, then requests with
//!   compaction running. A snapshot of the stats is taken at each phase boundary and
//!   the difference (`later - earlier`) is printed per queue, so you see the service
//!   time, polls and queue delay (p50/p99) of requests against compaction in each phase.
//!   A task's queue delay runs from its wake to its poll; a connection is woken only
//!   when the loop returns to tokio and tokio sees the socket readable, so the round
//!   trips that the self-test clients print also hold the compaction chunk in progress
//!   when the request arrived.
//!
//! Options:
//!
//! - `--self-test`: `--clients` clients (tokio tasks on the same thread, outside the
//!   executor, as another program would be) send requests during both phases and check
//!   every answer; the program exits with status 1 if one is wrong. Listens on a free
//!   port unless `--addr` is given.
//! - `--seconds S` (default 4): how long to serve, both phases together.
//! - `--addr HOST:PORT` (default 127.0.0.1:7878), `--clients N` (default 4),
//!   `--chunk-us US` (default 50).
//!
//! Every setting of the executor:
//!
//! - weights: `Requests` 8, `Compaction` 1: when both have work, compaction gets about
//!   1/9 of the CPU time (and all the time the requests leave idle);
//! - `sched_latency` 200 µs and `min_slice` 50 µs: a queue's slice is
//!   `max(sched_latency / runnable queues, min_slice)`, so 100 µs (two chunks of
//!   compaction) while both queues are runnable. (`min_slice` defaults to 100 µs: with
//!   it, a `sched_latency` of 100 to 200 µs gives 100 µs slices, and one under 100 µs
//!   fails to build.)
//! - `driver_yield` 250 µs (the library's default): the run loop returns to tokio at
//!   least that often, so that tokio polls its sockets;
//! - `host_poll_interval` 50 µs (the library's default): while compaction runs and a
//!   connection task waits on tokio, the loop returns to tokio that often;
//! - `with_panic_on_task_panic(false)`: a panic in one connection's task is caught and
//!   ends that connection only (the library's default would take the server down).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use clockworker::{
    yield_maybe, Executor, ExecutorBuilder, ExecutorStats, JoinSet, QueueStats,
    DEFAULT_DRIVER_YIELD, DEFAULT_HOST_POLL_INTERVAL,
};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Queue {
    Requests,
    Compaction,
}

/// Shards of one compaction pass (one task each), and chunks of CPU work per shard.
const SHARDS: usize = 4;
const CHUNKS_PER_SHARD: u32 = 20;

struct Options {
    addr: Option<SocketAddr>,
    seconds: f64,
    self_test: bool,
    clients: usize,
    chunk: Duration,
}

fn options() -> Options {
    let mut o = Options {
        addr: None,
        seconds: 4.0,
        self_test: false,
        clients: 4,
        chunk: Duration::from_micros(50),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .unwrap_or_else(|| panic!("{name} needs a value"))
        };
        match arg.as_str() {
            "--self-test" => o.self_test = true,
            "--addr" => o.addr = Some(value("--addr").parse().expect("--addr HOST:PORT")),
            "--seconds" => o.seconds = value("--seconds").parse().expect("--seconds S"),
            "--clients" => o.clients = value("--clients").parse().expect("--clients N"),
            "--chunk-us" => {
                o.chunk = Duration::from_micros(value("--chunk-us").parse().expect("--chunk-us US"))
            }
            other => {
                panic!("unknown argument {other:?} (see the doc comment of examples/kv_server.rs)")
            }
        }
    }
    o
}

/// The store: a value, or a tombstone (`None`) left by `DEL` until compaction.
#[derive(Default)]
struct Store {
    map: RefCell<HashMap<String, Option<String>>>,
    compaction_passes: Cell<u64>,
    tombstones_removed: Cell<u64>,
}

impl Store {
    /// Executes one request line; returns the answer line (without its newline).
    fn execute(&self, line: &str) -> String {
        let mut words = line.splitn(3, ' ');
        let mut map = self.map.borrow_mut();
        match (words.next(), words.next(), words.next()) {
            (Some("SET"), Some(key), Some(value)) => {
                map.insert(key.to_owned(), Some(value.to_owned()));
                "OK".to_owned()
            }
            (Some("GET"), Some(key), None) => match map.get(key) {
                Some(Some(value)) => format!("VALUE {value}"),
                _ => "NOT_FOUND".to_owned(),
            },
            (Some("DEL"), Some(key), None) => match map.get_mut(key) {
                Some(slot @ Some(_)) => {
                    *slot = None;
                    "DELETED".to_owned()
                }
                _ => "NOT_FOUND".to_owned(),
            },
            _ => "ERROR expected SET k v, GET k or DEL k".to_owned(),
        }
    }
}

/// Accepts connections for ever; each one becomes a task of the caller's queue.
async fn accept_loop(listener: TcpListener, store: Rc<Store>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                // Lands in the queue of this task (`Requests`); the task is detached.
                clockworker::spawn(serve(stream, store.clone()));
            }
            Err(e) => eprintln!("accept: {e}"),
        }
    }
}

/// Serves one connection until the client closes it.
async fn serve(stream: TcpStream, store: Rc<Store>) {
    let _ = stream.set_nodelay(true);
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let mut answer = store.execute(&line);
        answer.push('\n');
        if write.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// Compaction for ever: one pass after another, each split into `SHARDS` tasks.
async fn compaction_loop(store: Rc<Store>, chunk: Duration) {
    loop {
        let mut shards = JoinSet::new();
        for shard in 0..SHARDS {
            // Lands in this task's queue, `Compaction`.
            shards.spawn(compact_shard(store.clone(), shard, chunk));
        }
        // In the order the shards finish. If this task is aborted, dropping `shards`
        // aborts the shards still running.
        while let Some(removed) = shards.join_next().await {
            let removed = removed.expect("a compaction shard failed");
            store
                .tombstones_removed
                .set(store.tombstones_removed.get() + removed);
        }
        store
            .compaction_passes
            .set(store.compaction_passes.get() + 1);
    }
}

fn shard_of(key: &str) -> usize {
    let hash = key
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    hash as usize % SHARDS
}

/// Rewrites (checksums) one shard in chunks of CPU work, then drops the tombstones that
/// are still tombstones. Returns how many it dropped.
async fn compact_shard(store: Rc<Store>, shard: usize, chunk: Duration) -> u64 {
    // The shard as it is now; no borrow of the store is held across an `.await`.
    let entries: Vec<(String, Option<String>)> = store
        .map
        .borrow()
        .iter()
        .filter(|(key, _)| shard_of(key) == shard)
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    let mut checksum = 0u64;
    let mut next = 0;
    for _ in 0..CHUNKS_PER_SHARD {
        let start = Instant::now();
        while start.elapsed() < chunk {
            if let Some((key, value)) = entries.get(next % entries.len().max(1)) {
                let bytes = key.bytes().chain(value.iter().flat_map(|v| v.bytes()));
                for b in bytes {
                    checksum = (checksum ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
                }
                next += 1;
            }
        }
        // Gives way only when compaction's slice is spent, a request is waiting, or
        // tokio is due a turn.
        yield_maybe().await;
    }
    std::hint::black_box(checksum);
    // A key set again since the snapshot is no longer a tombstone: keep it.
    let mut map = store.map.borrow_mut();
    let mut removed = 0;
    for (key, value) in entries {
        if value.is_none() && matches!(map.get(&key), Some(None)) {
            map.remove(&key);
            removed += 1;
        }
    }
    removed
}

/// A client connection for the self-test: sends a request, checks the answer, and
/// records the round trip under the current phase.
struct Client {
    lines: Lines<BufReader<OwnedReadHalf>>,
    write: OwnedWriteHalf,
    phase: Rc<Cell<usize>>,
    round_trips: Rc<RefCell<[Vec<Duration>; 2]>>,
}

impl Client {
    async fn ask(&mut self, request: &str, expected: &str) -> Result<(), String> {
        let start = Instant::now();
        let phase = self.phase.get();
        self.write
            .write_all(format!("{request}\n").as_bytes())
            .await
            .map_err(|e| format!("{request:?}: write: {e}"))?;
        let answer = self
            .lines
            .next_line()
            .await
            .map_err(|e| format!("{request:?}: read: {e}"))?
            .ok_or_else(|| format!("{request:?}: connection closed"))?;
        self.round_trips.borrow_mut()[phase].push(start.elapsed());
        if answer.starts_with(expected) {
            Ok(())
        } else {
            Err(format!(
                "{request:?}: answered {answer:?}, expected {expected:?}"
            ))
        }
    }
}

/// One self-test client: sets, reads and deletes its own keys until `stop`, checking
/// every answer. Returns the number of requests.
async fn run_client(
    id: usize,
    addr: SocketAddr,
    phase: Rc<Cell<usize>>,
    stop: Rc<Cell<bool>>,
    round_trips: Rc<RefCell<[Vec<Duration>; 2]>>,
) -> Result<u64, String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("client {id}: connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (read, write) = stream.into_split();
    let mut client = Client {
        lines: BufReader::new(read).lines(),
        write,
        phase,
        round_trips,
    };
    client.ask("PING", "ERROR").await?;
    let mut requests = 1;
    let mut i = 0u64;
    while !stop.get() {
        let key = format!("c{id}-k{}", i % 64);
        client.ask(&format!("SET {key} v{i}"), "OK").await?;
        client
            .ask(&format!("GET {key}"), &format!("VALUE v{i}"))
            .await?;
        requests += 2;
        if i % 8 == 0 {
            // Leaves a tombstone for compaction.
            client.ask(&format!("DEL {key}"), "DELETED").await?;
            client.ask(&format!("GET {key}"), "NOT_FOUND").await?;
            client.ask(&format!("DEL {key}"), "NOT_FOUND").await?;
            requests += 3;
        }
        i += 1;
    }
    Ok(requests)
}

/// The stats at one instant.
struct Snapshot {
    executor: ExecutorStats,
    requests: QueueStats<Queue>,
    compaction: QueueStats<Queue>,
}

impl Snapshot {
    fn take(executor: &Executor<Queue>) -> Self {
        Snapshot {
            executor: executor.stats(),
            requests: executor.queue_stats(Queue::Requests).unwrap(),
            compaction: executor.queue_stats(Queue::Compaction).unwrap(),
        }
    }

    /// Prints the figures of the phase between `earlier` and `self`.
    fn print_since(&self, earlier: &Snapshot, title: &str) {
        println!("\n== {title}");
        println!("executor: {}", self.executor.since(&earlier.executor));
        println!("{}", self.requests.since(&earlier.requests));
        println!("{}", self.compaction.since(&earlier.compaction));
    }
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn main() {
    let o = options();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let local = tokio::task::LocalSet::new();
    let default_addr = if o.self_test {
        "127.0.0.1:0"
    } else {
        "127.0.0.1:7878"
    };
    let addr = o.addr.unwrap_or_else(|| default_addr.parse().unwrap());
    let listener = local.block_on(&rt, TcpListener::bind(addr)).expect("bind");
    let addr = listener.local_addr().unwrap();
    let phase_length = Duration::from_secs_f64(o.seconds / 2.0);

    let executor = ExecutorBuilder::new()
        .with_queue(Queue::Requests, 8)
        .with_queue(Queue::Compaction, 1)
        // Slices of max(200 µs / 2, 50 µs) = 100 µs while both queues are runnable.
        .with_sched_latency(Duration::from_micros(200))
        .with_min_slice(Duration::from_micros(50))
        .with_driver_yield(DEFAULT_DRIVER_YIELD)
        .with_host_poll_interval(DEFAULT_HOST_POLL_INTERVAL)
        .with_panic_on_task_panic(false)
        .build()
        .expect("valid configuration");
    let requests = executor.queue(Queue::Requests).unwrap();
    let background = executor.queue(Queue::Compaction).unwrap();
    let store = Rc::new(Store::default());
    println!(
        "listening on {addr}: two phases of {phase_length:?}, requests only then with \
         compaction{}",
        if o.self_test {
            format!(" ({} self-test clients)", o.clients)
        } else {
            String::new()
        }
    );

    let phase = Rc::new(Cell::new(0));
    let stop = Rc::new(Cell::new(false));
    let round_trips = Rc::new(RefCell::new([Vec::new(), Vec::new()]));
    let (snapshots, client_results) = local.block_on(
        &rt,
        executor.run_until(async {
            // `run_until`'s own future is not a task: spawn through queue handles here.
            let server = requests.spawn(accept_loop(listener, store.clone()));
            let clients: Vec<_> = (0..if o.self_test { o.clients } else { 0 })
                .map(|id| {
                    tokio::task::spawn_local(run_client(
                        id,
                        addr,
                        phase.clone(),
                        stop.clone(),
                        round_trips.clone(),
                    ))
                })
                .collect();
            let start = Snapshot::take(&executor);
            tokio::time::sleep(phase_length).await;
            let quiet = Snapshot::take(&executor);
            phase.set(1);
            let compaction = background.spawn(compaction_loop(store.clone(), o.chunk));
            tokio::time::sleep(phase_length).await;
            let busy = Snapshot::take(&executor);
            stop.set(true);
            let mut results = Vec::new();
            for client in clients {
                results.push(client.await.expect("client task"));
            }
            // Aborting the loop drops its JoinSet, which aborts the shards in flight.
            compaction.abort();
            assert!(compaction.await.unwrap_err().is_cancelled());
            server.abort();
            ([start, quiet, busy], results)
        }),
    );

    let [start, quiet, busy] = snapshots;
    let round_trips = round_trips.borrow();
    for (i, (from, to, title)) in [
        (&start, &quiet, "phase 1: requests only"),
        (&quiet, &busy, "phase 2: requests while compaction runs"),
    ]
    .into_iter()
    .enumerate()
    {
        to.print_since(from, title);
        if o.self_test {
            let mut sorted = round_trips[i].clone();
            sorted.sort_unstable();
            if let (Some(_), Some(max)) = (sorted.first(), sorted.last()) {
                println!(
                    "clients: {} round trips, p50 {:?}, p99 {:?}, max {:?}",
                    sorted.len(),
                    quantile(&sorted, 0.5),
                    quantile(&sorted, 0.99),
                    max
                );
            }
        }
    }
    println!(
        "\ncompaction: {} passes, {} tombstones removed; {} keys in the store",
        store.compaction_passes.get(),
        store.tombstones_removed.get(),
        store.map.borrow().len()
    );

    if o.self_test {
        let mut failed = false;
        for (id, result) in client_results.iter().enumerate() {
            match result {
                Ok(requests) => println!("client {id}: {requests} requests, all answers right"),
                Err(e) => {
                    println!("client {id}: FAILED: {e}");
                    failed = true;
                }
            }
        }
        if round_trips.iter().any(Vec::is_empty) {
            println!("FAILED: a phase saw no request");
            failed = true;
        }
        if store.compaction_passes.get() == 0 {
            println!("FAILED: no compaction pass completed");
            failed = true;
        }
        if failed {
            std::process::exit(1);
        }
        println!("self-test passed");
    }
}
