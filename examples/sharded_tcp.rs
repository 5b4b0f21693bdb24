//! A sharded TCP echo server on `clockworker::pool`, with a built-in load generator.
//!
//! Each shard is a thread with its own tokio `current_thread` runtime and clockworker
//! executor, and its own listening socket on the same port (`SO_REUSEPORT`, through
//! `socket2`): the kernel spreads incoming connections over the shards, and each
//! connection then lives on one shard — no cross-thread hand-off per request.
//! Every shard runs two queues: `Accept` (its accept loop, a `Send` task spawned
//! through the pool) and `Conn` (one `!Send` task per connection, spawned from the
//! accept loop with `pool::spawn_local`).
//!
//! ```text
//! # load test: interleaved runs of 1 and 2 shards, median requests/s of each
//! cargo run --release --example sharded_tcp -- --shards 1,2 --runs 5 --secs 3
//! # server only, on a port of your choice, for 60 s
//! cargo run --release --example sharded_tcp -- --serve 127.0.0.1:7878 --secs 60
//! ```
//!
//! Protocol: fixed-size messages of `--size` bytes; the server answers each with a
//! message of the same size: the request itself, or, with `--work N`, the request
//! with its first 8 bytes replaced by N rounds of FNV-1a over it (a stand-in for the
//! CPU a real request costs).
//!
//! Load generator: `--clients` threads (each a tokio `current_thread` runtime), each
//! with `--conns` connections doing ping-pong: write a request, read the answer,
//! repeat. After a warm-up it counts round trips for `--secs` seconds. Every run
//! starts a fresh pool on a fresh port, and stops by itself; the load goes to
//! 127.0.0.1 only. On a machine with few cores the load generator competes with the
//! shards for them: with a cheap server (no `--work`), one shard plus the clients
//! may already use every core.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clockworker::pool::{self, Pool, PoolBuilder};
use clockworker::ExecutorBuilder;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Queue {
    /// The shard's accept loop.
    Accept,
    /// One task per connection.
    Conn,
}

#[derive(Debug, Clone)]
struct Options {
    shards: Vec<usize>,
    runs: usize,
    clients: usize,
    conns: usize,
    size: usize,
    work: u32,
    secs: f64,
    warmup: f64,
    pin: bool,
    serve: Option<SocketAddr>,
    /// Retry a window in which other processes used more than this many cores.
    max_others: Option<f64>,
}

const USAGE: &str = "usage: sharded_tcp [--shards N[,N..]] [--runs R] [--clients C] \
[--conns M] [--size BYTES] [--work ROUNDS] [--secs S] [--warmup S] [--pin] [--serve ADDR] \
[--max-others CORES]";

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        shards: vec![1, 2],
        runs: 3,
        clients: 2,
        conns: 32,
        size: 64,
        work: 0,
        secs: 3.0,
        warmup: 0.5,
        pin: false,
        serve: None,
        max_others: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--pin" {
            options.pin = true;
            continue;
        }
        if arg == "-h" || arg == "--help" {
            return Err(USAGE.to_owned());
        }
        let value = args
            .next()
            .ok_or_else(|| format!("{arg} needs a value\n{USAGE}"))?;
        let bad = |_| format!("bad value {value:?} for {arg}\n{USAGE}");
        match arg.as_str() {
            "--shards" => {
                options.shards = value
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()
                    .map_err(bad)?
            }
            "--runs" => options.runs = value.parse().map_err(bad)?,
            "--clients" => options.clients = value.parse().map_err(bad)?,
            "--conns" => options.conns = value.parse().map_err(bad)?,
            "--size" => options.size = value.parse().map_err(bad)?,
            "--work" => options.work = value.parse().map_err(|_| format!("bad --work {value}"))?,
            "--secs" => options.secs = value.parse().map_err(|_| format!("bad --secs {value}"))?,
            "--warmup" => {
                options.warmup = value.parse().map_err(|_| format!("bad --warmup {value}"))?
            }
            "--max-others" => {
                options.max_others = Some(
                    value
                        .parse()
                        .map_err(|_| format!("bad --max-others {value}"))?,
                )
            }
            "--serve" => {
                options.serve = Some(value.parse().map_err(|_| format!("bad address {value}"))?)
            }
            _ => return Err(format!("unknown option {arg}\n{USAGE}")),
        }
    }
    let positive = options.shards.iter().all(|&s| s > 0)
        && !options.shards.is_empty()
        && options.runs > 0
        && options.clients > 0
        && options.conns > 0
        && options.size >= 8
        && options.secs > 0.0
        && options.warmup >= 0.0;
    if !positive {
        return Err(format!("counts and durations must be positive\n{USAGE}"));
    }
    Ok(options)
}

/// A listening socket on `addr` that other sockets of this process may share.
fn reuseport_listener(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

/// What one shard served.
#[derive(Default)]
struct ShardCounters {
    connections: AtomicU64,
    requests: AtomicU64,
}

/// How each connection is served.
#[derive(Clone, Copy)]
struct Service {
    size: usize,
    work: u32,
}

/// A running server: the pool and its per-shard counters.
struct Server {
    pool: Pool<Queue>,
    addr: SocketAddr,
    counters: Vec<Arc<ShardCounters>>,
}

fn start_server(
    shards: usize,
    addr: SocketAddr,
    pin: bool,
    service: Service,
) -> io::Result<Server> {
    let mut builder = PoolBuilder::new(|_shard| {
        ExecutorBuilder::new()
            .with_queue(Queue::Accept, 2)
            .with_queue(Queue::Conn, 8)
    })
    .shards(shards)
    .thread_name("echo");
    if pin {
        builder = builder.pin_to_cores();
    }
    let pool = builder.build().map_err(io::Error::other)?;
    for shard in 0..shards {
        if let Some(clockworker::pool::PinStatus::Failed { cpu, error }) = pool.pin_status(shard) {
            eprintln!("shard {shard}: not pinned (cpu {cpu:?}): {error}");
        }
    }
    // The first listener picks the port (when `addr` has port 0); the others join it.
    let first = reuseport_listener(addr)?;
    let addr = first.local_addr()?;
    let mut listeners = vec![first];
    for _ in 1..shards {
        listeners.push(reuseport_listener(addr)?);
    }
    let mut counters = Vec::new();
    for (shard, listener) in listeners.into_iter().enumerate() {
        let served = Arc::new(ShardCounters::default());
        counters.push(served.clone());
        pool.spawn_on(shard, Queue::Accept, accept_loop(listener, service, served))
            .map_err(io::Error::other)?;
    }
    Ok(Server {
        pool,
        addr,
        counters,
    })
}

/// A shard's accept loop: a `Send` future (it came through the pool); each connection
/// becomes a `!Send` task of the same shard.
async fn accept_loop(listener: TcpListener, service: Service, served: Arc<ShardCounters>) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("listener: {error}");
            return;
        }
    };
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                eprintln!("accept: {error}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        served.connections.fetch_add(1, Ordering::Relaxed);
        let _ = stream.set_nodelay(true);
        let served = served.clone();
        if pool::spawn_local(Queue::Conn, answer(stream, service, served)).is_err() {
            return; // the shard is shutting down
        }
    }
}

/// Serves one connection: answers each request until the client hangs up.
async fn answer(mut stream: tokio::net::TcpStream, service: Service, served: Arc<ShardCounters>) {
    let mut buf = vec![0u8; service.size];
    loop {
        if stream.read_exact(&mut buf).await.is_err() {
            return;
        }
        if service.work > 0 {
            let hash = fnv1a_rounds(&buf, service.work);
            buf[..8].copy_from_slice(&hash.to_le_bytes());
        }
        if stream.write_all(&buf).await.is_err() {
            return;
        }
        served.requests.fetch_add(1, Ordering::Relaxed);
    }
}

/// `rounds` passes of 64-bit FNV-1a over `data`.
fn fnv1a_rounds(data: &[u8], rounds: u32) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for round in 0..rounds {
        hash ^= u64::from(round);
        for &byte in data {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

/// What one measured window saw.
struct Measured {
    /// Round trips per second.
    rate: f64,
    /// CPU time of the whole process (shards and load generator) per wall second:
    /// 2.0 means two cores busy.
    cores: Option<f64>,
    /// CPU time of every other process on the machine per wall second (Linux).
    others: Option<f64>,
}

/// Busy CPU time of the whole machine so far, from `/proc/stat` (Linux only).
fn machine_busy() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    let total: u64 = fields.iter().take(8).sum();
    // idle and iowait are not busy.
    let idle = fields.get(3)? + fields.get(4)?;
    // SAFETY: sysconf only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let ticks = u64::try_from(ticks).ok().filter(|&t| t > 0)?;
    Some(Duration::from_secs_f64(
        (total - idle) as f64 / ticks as f64,
    ))
}

/// CPU time (user + system) of this process so far.
#[cfg(unix)]
fn process_cpu() -> Option<Duration> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `usage` points to writable memory the size of a `rusage`, which
    // `getrusage` fills in.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: zero-initialised, then filled in by a successful `getrusage`.
    let usage = unsafe { usage.assume_init() };
    let micros = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    Some(micros(usage.ru_utime) + micros(usage.ru_stime))
}

#[cfg(not(unix))]
fn process_cpu() -> Option<Duration> {
    None
}

/// Runs the load generator against `addr` and measures one window.
fn generate_load(addr: SocketAddr, options: &Options) -> io::Result<Measured> {
    let requests = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..options.clients)
        .map(|_| {
            let (requests, stop) = (requests.clone(), stop.clone());
            let (conns, size) = (options.conns, options.size);
            std::thread::spawn(move || -> io::Result<()> {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                runtime.block_on(async move {
                    let tasks: Vec<_> = (0..conns)
                        .map(|_| {
                            tokio::spawn(ping_pong(addr, size, requests.clone(), stop.clone()))
                        })
                        .collect();
                    for task in tasks {
                        task.await.map_err(io::Error::other)??;
                    }
                    Ok(())
                })
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(options.warmup));
    let (start, before) = (Instant::now(), requests.load(Ordering::Relaxed));
    let (cpu_before, machine_before) = (process_cpu(), machine_busy());
    std::thread::sleep(Duration::from_secs_f64(options.secs));
    let (elapsed, after) = (start.elapsed(), requests.load(Ordering::Relaxed));
    let (cpu_after, machine_after) = (process_cpu(), machine_busy());
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client
            .join()
            .map_err(|_| io::Error::other("client thread panicked"))??;
    }
    let per_second = |b: Option<Duration>, a: Option<Duration>| {
        Some(a?.saturating_sub(b?).as_secs_f64() / elapsed.as_secs_f64())
    };
    let cores = per_second(cpu_before, cpu_after);
    let machine = per_second(machine_before, machine_after);
    let others = match (machine, cores) {
        (Some(machine), Some(cores)) => Some((machine - cores).max(0.0)),
        _ => None,
    };
    Ok(Measured {
        rate: (after - before) as f64 / elapsed.as_secs_f64(),
        cores,
        others,
    })
}

/// One connection: write a message, read it back, until told to stop.
async fn ping_pong(
    addr: SocketAddr,
    size: usize,
    requests: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) -> io::Result<()> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let message = vec![7u8; size];
    let mut reply = vec![0u8; size];
    while !stop.load(Ordering::Relaxed) {
        stream.write_all(&message).await?;
        stream.read_exact(&mut reply).await?;
        requests.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    let mid = xs.len() / 2;
    if xs.len() % 2 == 1 {
        xs[mid]
    } else {
        (xs[mid - 1] + xs[mid]) / 2.0
    }
}

fn print_shares(server: &Server) {
    let total: u64 = server
        .counters
        .iter()
        .map(|c| c.requests.load(Ordering::Relaxed))
        .sum();
    for (shard, counters) in server.counters.iter().enumerate() {
        let requests = counters.requests.load(Ordering::Relaxed);
        println!(
            "    shard {shard}: {} connections, {:.0}% of the requests",
            counters.connections.load(Ordering::Relaxed),
            100.0 * requests as f64 / total.max(1) as f64
        );
    }
}

fn serve(addr: SocketAddr, options: &Options) -> io::Result<()> {
    let shards = options.shards[0];
    let server = start_server(shards, addr, options.pin, service(options))?;
    println!(
        "echo server on {} with {shards} shard(s) for {} s",
        server.addr, options.secs
    );
    std::thread::sleep(Duration::from_secs_f64(options.secs));
    print_shares(&server);
    server.pool.shutdown().map_err(io::Error::other)
}

fn service(options: &Options) -> Service {
    Service {
        size: options.size,
        work: options.work,
    }
}

/// One run with a fresh server of `shards` shards; with `--max-others`, repeated
/// (up to 20 times) while other processes disturb the window.
fn measure_once(run: usize, shards: usize, options: &Options) -> io::Result<f64> {
    for attempt in 1.. {
        let localhost = (Ipv4Addr::LOCALHOST, 0).into();
        let server = start_server(shards, localhost, options.pin, service(options))?;
        let measured = generate_load(server.addr, options)?;
        let rate = measured.rate;
        print!("run {run}: {shards} shard(s): {rate:.0} requests/s");
        if let Some(cores) = measured.cores {
            print!(
                ", {cores:.2} cores busy, {:.1} CPU-us per request (server + clients)",
                cores * 1e6 / rate
            );
        }
        if let Some(others) = measured.others {
            print!(", other processes {others:.2} cores");
        }
        println!();
        print_shares(&server);
        server.pool.shutdown().map_err(io::Error::other)?;
        let disturbed = match (options.max_others, measured.others) {
            (Some(max), Some(others)) => others > max,
            _ => false,
        };
        if !disturbed || attempt >= 20 {
            return Ok(rate);
        }
        println!("    (disturbed by other processes: measuring again)");
    }
    unreachable!("the loop returns")
}

fn bench(options: &Options) -> io::Result<()> {
    println!(
        "sharded_tcp: {} client thread(s) x {} connections, {}-byte messages, work {}, \
         {} s per run after {} s warm-up, {} interleaved run(s){}",
        options.clients,
        options.conns,
        options.size,
        options.work,
        options.secs,
        options.warmup,
        options.runs,
        if options.pin { ", shards pinned" } else { "" }
    );
    let mut results: Vec<Vec<f64>> = vec![Vec::new(); options.shards.len()];
    for run in 0..options.runs {
        for (i, &shards) in options.shards.iter().enumerate() {
            let rate = measure_once(run, shards, options)?;
            results[i].push(rate);
        }
    }
    println!("\n| shards | median requests/s | min | max | vs first |");
    println!("|---:|---:|---:|---:|---:|");
    let base = median(results[0].clone());
    for (shards, rates) in options.shards.iter().zip(&results) {
        let min = rates.iter().copied().fold(f64::INFINITY, f64::min);
        let max = rates.iter().copied().fold(0.0, f64::max);
        let med = median(rates.clone());
        println!(
            "| {shards} | {med:.0} | {min:.0} | {max:.0} | {:.2}x |",
            med / base
        );
    }
    Ok(())
}

fn main() {
    let options = match parse_options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    let result = match options.serve {
        Some(addr) => serve(addr, &options),
        None => bench(&options),
    };
    if let Err(error) = result {
        eprintln!("sharded_tcp: {error}");
        std::process::exit(1);
    }
}
