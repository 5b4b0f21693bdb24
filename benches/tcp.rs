//! Loopback TCP ping-pong: what clockworker costs a real socket server.
//!
//! A server thread echoes 64-byte messages on 64 connections; a client thread with its
//! own tokio current_thread runtime drives them in a closed loop (each connection
//! writes a message, waits for the echo, writes the next) and times every round trip.
//! The server is one of:
//!
//! - `tokio`: a current_thread runtime and a `LocalSet`, one `spawn_local` task per
//!   connection (the baseline);
//! - `cw on tokio`: the same runtime and `LocalSet`, `executor.run_until(accept loop)`
//!   as the `LocalSet`'s future, one clockworker task per connection in a single queue;
//! - `monoio` and `cw on monoio`: the same two shapes on monoio's io_uring runtime,
//!   where io_uring is available (otherwise the reason is printed and they are left
//!   out).
//!
//! Each sample starts a fresh server thread and client thread, connects, warms up,
//! then measures for a fixed window. Configurations run in interleaved rounds after a
//! warm-up sample each; every figure is the median over rounds, and each clockworker
//! figure is also given as a ratio to its plain runtime from the same rounds.
//! Targets (reported, not asserted): `cw on tokio` within 3% of `tokio` requests/s,
//! and its p99 at most 1.05 × tokio's.
//!
//! Two cores here: the server thread and the client thread each keep one busy, so
//! wall-time figures move with whatever else runs on the machine. The server thread's
//! CPU time per request (`CLOCK_THREAD_CPUTIME_ID` over the whole sample, divided by
//! the messages it echoed) is reported beside them: it measures the server's own cost
//! and is far less sensitive to other processes.
//!
//! `CW_BENCH_QUICK=1` for a run of seconds. `TCP_SECONDS` (measured window per
//! sample, default 1), `TCP_ROUNDS` (default 15), `TCP_CONNECTIONS` (default 64) override;
//! `TCP_MONOIO=0` leaves the monoio pair out.
//! Output: a table on stdout and `target/clockworker-bench/tcp.csv`.

#[path = "common/mod.rs"]
mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc as std_mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::{Cell as C, Table};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MSG: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Server {
    Tokio,
    CwTokio,
    Monoio,
    CwMonoio,
}

impl Server {
    fn name(self) -> &'static str {
        match self {
            Server::Tokio => "tokio",
            Server::CwTokio => "cw on tokio",
            Server::Monoio => "monoio",
            Server::CwMonoio => "cw on monoio",
        }
    }

    /// The plain runtime a clockworker configuration is compared with.
    fn baseline(self) -> Server {
        match self {
            Server::Tokio | Server::CwTokio => Server::Tokio,
            Server::Monoio | Server::CwMonoio => Server::Monoio,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Params {
    connections: usize,
    warm_up: Duration,
    window: Duration,
}

/// One sample: requests per second and round-trip percentiles in µs.
#[derive(Clone, Copy, Debug)]
struct Sample {
    rps: f64,
    p50: f64,
    p99: f64,
    p999: f64,
    /// Server thread CPU time per echoed message, µs: the cost of serving a request,
    /// much less sensitive than wall time to other processes on a shared machine.
    cpu_us: f64,
}

/// Messages echoed by the server of the running sample (one server at a time).
static ECHOES: AtomicU64 = AtomicU64::new(0);

/// CPU time consumed by the calling thread, ns.
fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we pass and reads nothing else.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

// ---------------------------------------------------------------------------------
// Servers. Each runs on its own thread, serves exactly `connections` connections and
// returns when the client has closed them all.

async fn tokio_echo(mut sock: tokio::net::TcpStream) {
    sock.set_nodelay(true).expect("nodelay");
    let mut buf = [0u8; 4096];
    loop {
        match sock.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if sock.write_all(&buf[..n]).await.is_err() {
                    return;
                }
                ECHOES.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

fn serve_tokio(connections: usize, ready: std_mpsc::Sender<SocketAddr>) {
    let rt = common::tokio_rt();
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        ready.send(listener.local_addr().unwrap()).unwrap();
        let mut conns = Vec::with_capacity(connections);
        for _ in 0..connections {
            let (sock, _) = listener.accept().await.expect("accept");
            conns.push(tokio::task::spawn_local(tokio_echo(sock)));
        }
        for c in conns {
            c.await.expect("connection task");
        }
    });
}

fn serve_cw_tokio(connections: usize, ready: std_mpsc::Sender<SocketAddr>) {
    let rt = common::tokio_rt();
    let local = tokio::task::LocalSet::new();
    let (executor, queue) = common::one_queue_executor();
    local.block_on(
        &rt,
        executor.run_until(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            ready.send(listener.local_addr().unwrap()).unwrap();
            let mut conns = Vec::with_capacity(connections);
            for _ in 0..connections {
                let (sock, _) = listener.accept().await.expect("accept");
                conns.push(queue.spawn(tokio_echo(sock)));
            }
            for c in conns {
                c.await.expect("connection task");
            }
        }),
    );
}

#[cfg(target_os = "linux")]
mod uring {
    use super::*;
    use monoio::io::{AsyncReadRent, AsyncWriteRentExt};

    pub type Runtime = monoio::Runtime<monoio::IoUringDriver>;

    pub fn runtime() -> std::io::Result<Runtime> {
        monoio::RuntimeBuilder::<monoio::IoUringDriver>::new().build()
    }

    /// Why monoio cannot run here, if it cannot.
    pub fn unavailable() -> Option<String> {
        // Build on a scratch thread: a failed build may leave thread-locals behind.
        thread::spawn(|| runtime().err().map(|e| e.to_string()))
            .join()
            .unwrap_or_else(|_| Some("monoio runtime builder panicked".to_string()))
    }

    async fn echo(mut sock: monoio::net::TcpStream) {
        sock.set_nodelay(true).expect("nodelay");
        let mut buf = vec![0u8; 4096];
        loop {
            // monoio reads into the buffer's capacity and sets its length to what
            // was read; `write_all` then writes exactly those bytes back.
            let (res, b) = sock.read(buf).await;
            if !matches!(res, Ok(n) if n > 0) {
                return;
            }
            let (res, b) = sock.write_all(b).await;
            if res.is_err() {
                return;
            }
            ECHOES.fetch_add(1, Ordering::Relaxed);
            buf = b;
        }
    }

    fn listener() -> monoio::net::TcpListener {
        monoio::net::TcpListener::bind("127.0.0.1:0").expect("bind")
    }

    pub fn serve_monoio(connections: usize, ready: std_mpsc::Sender<SocketAddr>) {
        let mut rt = runtime().expect("monoio runtime");
        rt.block_on(async move {
            let listener = listener();
            ready.send(listener.local_addr().unwrap()).unwrap();
            let mut conns = Vec::with_capacity(connections);
            for _ in 0..connections {
                let (sock, _) = listener.accept().await.expect("accept");
                conns.push(monoio::spawn(echo(sock)));
            }
            for c in conns {
                c.await;
            }
        });
    }

    pub fn serve_cw_monoio(connections: usize, ready: std_mpsc::Sender<SocketAddr>) {
        let mut rt = runtime().expect("monoio runtime");
        let (executor, queue) = common::one_queue_executor();
        rt.block_on(executor.run_until(async move {
            let listener = listener();
            ready.send(listener.local_addr().unwrap()).unwrap();
            let mut conns = Vec::with_capacity(connections);
            for _ in 0..connections {
                let (sock, _) = listener.accept().await.expect("accept");
                conns.push(queue.spawn(echo(sock)));
            }
            for c in conns {
                c.await.expect("connection task");
            }
        }));
    }
}

// ---------------------------------------------------------------------------------
// Client: its own thread and tokio runtime, the same for every server.

/// Round-trip times (ns) of the requests that started inside the window.
async fn client_conn(addr: SocketAddr, measure_from: Instant, stop_at: Instant) -> Vec<u32> {
    let mut sock = tokio::net::TcpStream::connect(addr).await.expect("connect");
    sock.set_nodelay(true).expect("nodelay");
    let msg = [7u8; MSG];
    let mut back = [0u8; MSG];
    let mut times = Vec::with_capacity(1 << 16);
    loop {
        let start = Instant::now();
        if start >= stop_at {
            return times;
        }
        sock.write_all(&msg).await.expect("write");
        sock.read_exact(&mut back).await.expect("read");
        if start >= measure_from {
            times.push((start.elapsed().as_nanos()).min(u128::from(u32::MAX)) as u32);
        }
    }
}

fn run_client(addr: SocketAddr, p: Params) -> Sample {
    let rt = common::tokio_rt();
    rt.block_on(async move {
        // The window opens after the connections are made and the warm-up is over.
        let measure_from = Instant::now() + Duration::from_millis(50) + p.warm_up;
        let stop_at = measure_from + p.window;
        let tasks: Vec<_> = (0..p.connections)
            .map(|_| tokio::spawn(client_conn(addr, measure_from, stop_at)))
            .collect();
        let mut all: Vec<f64> = Vec::new();
        for t in tasks {
            all.extend(t.await.expect("client task").into_iter().map(f64::from));
        }
        let rps = all.len() as f64 / p.window.as_secs_f64();
        let [p50, _p90, p99, p999] = common::percentiles(&mut all);
        Sample {
            rps,
            p50: p50 / 1e3,
            p99: p99 / 1e3,
            p999: p999 / 1e3,
            cpu_us: f64::NAN,
        }
    })
}

fn sample(server: Server, p: Params) -> Sample {
    let (ready_tx, ready_rx) = std_mpsc::channel();
    let n = p.connections;
    ECHOES.store(0, Ordering::Relaxed);
    let server_thread = thread::Builder::new()
        .name(format!("server-{}", server.name()))
        .spawn(move || {
            let cpu_start = thread_cpu_ns();
            serve(server, n, ready_tx);
            thread_cpu_ns() - cpu_start
        })
        .expect("server thread");
    let addr = ready_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("server listening");
    let client = thread::Builder::new()
        .name("client".into())
        .spawn(move || run_client(addr, p))
        .expect("client thread");
    let mut out = client.join().expect("client panicked");
    let cpu_ns = server_thread.join().expect("server panicked");
    let echoes = ECHOES.swap(0, Ordering::Relaxed).max(1);
    out.cpu_us = cpu_ns as f64 / 1e3 / echoes as f64;
    out
}

fn serve(server: Server, n: usize, ready_tx: std_mpsc::Sender<SocketAddr>) {
    match server {
        Server::Tokio => serve_tokio(n, ready_tx),
        Server::CwTokio => serve_cw_tokio(n, ready_tx),
        #[cfg(target_os = "linux")]
        Server::Monoio => uring::serve_monoio(n, ready_tx),
        #[cfg(target_os = "linux")]
        Server::CwMonoio => uring::serve_cw_monoio(n, ready_tx),
        #[cfg(not(target_os = "linux"))]
        Server::Monoio | Server::CwMonoio => unreachable!("io_uring servers are Linux-only"),
    }
}

fn main() {
    common::keep_heap();
    let p = Params {
        connections: common::env_usize("TCP_CONNECTIONS", 64),
        warm_up: common::pick(Duration::from_millis(300), Duration::from_millis(100)),
        window: Duration::from_secs_f64(
            std::env::var("TCP_SECONDS")
                .ok()
                .and_then(|s| s.parse::<f64>().ok())
                .unwrap_or(common::pick(1.0, 0.3)),
        ),
    };
    let rounds = common::env_usize("TCP_ROUNDS", common::pick(15, 3)).max(1);

    let mut servers = vec![Server::Tokio, Server::CwTokio];
    let with_monoio = std::env::var("TCP_MONOIO").map_or(true, |v| v != "0");
    #[cfg(target_os = "linux")]
    if with_monoio {
        match uring::unavailable() {
            None => servers.extend([Server::Monoio, Server::CwMonoio]),
            Some(reason) => println!("skipping monoio: io_uring runtime unavailable: {reason}"),
        }
    }
    #[cfg(not(target_os = "linux"))]
    if with_monoio {
        println!("skipping monoio: io_uring is Linux-only");
    }

    println!(
        "tcp: {} connections, {MSG}-byte ping-pong, {:?} window per sample, median of {rounds} interleaved rounds",
        p.connections, p.window
    );
    let names: Vec<&str> = servers.iter().map(|s| s.name()).collect();
    let samples = common::interleaved(&names, rounds, true, |c, _round| sample(servers[c], p));

    let med = |c: usize, f: fn(&Sample) -> f64| {
        common::median(&samples[c].iter().map(f).collect::<Vec<_>>())
    };
    // Ratios per round (same round, same machine state), then their median.
    let ratio = |c: usize, base: usize, f: fn(&Sample) -> f64| {
        let per_round: Vec<f64> = samples[c]
            .iter()
            .zip(&samples[base])
            .map(|(s, b)| f(s) / f(b))
            .collect();
        common::median(&per_round)
    };

    let mut table = Table::new(
        format!(
            "Loopback TCP ping-pong, {} connections x {MSG} B (median of {rounds} rounds)",
            p.connections
        ),
        &[
            "server",
            "req/s",
            "p50 µs",
            "p99 µs",
            "p99.9 µs",
            "server CPU µs/req",
            "req/s vs plain",
            "p99 vs plain",
            "CPU/req vs plain",
        ],
    );
    for (c, server) in servers.iter().enumerate() {
        let base = servers
            .iter()
            .position(|s| *s == server.baseline())
            .expect("baseline present");
        table.row(vec![
            C::text(server.name()),
            C::num(med(c, |s| s.rps), 0),
            C::num(med(c, |s| s.p50), 1),
            C::num(med(c, |s| s.p99), 1),
            C::num(med(c, |s| s.p999), 1),
            C::num(med(c, |s| s.cpu_us), 2),
            C::num(ratio(c, base, |s| s.rps), 3),
            C::num(ratio(c, base, |s| s.p99), 3),
            C::num(ratio(c, base, |s| s.cpu_us), 3),
        ]);
    }
    table.print();
    let csv = table.write_csv("tcp.csv");
    println!("\nwrote {}", csv.display());

    let cw = servers.iter().position(|s| *s == Server::CwTokio).unwrap();
    let rps_ratio = ratio(cw, 0, |s| s.rps);
    let p99_ratio = ratio(cw, 0, |s| s.p99);
    let cpu_ratio = ratio(cw, 0, |s| s.cpu_us);
    println!(
        "cw on tokio server CPU per request: {:+.1}% vs tokio",
        (cpu_ratio - 1.0) * 100.0
    );
    println!(
        "targets: cw on tokio req/s within 3% of tokio: {} ({:+.1}%); p99 <= 1.05 x tokio: {} ({:.3})",
        if rps_ratio >= 0.97 { "met" } else { "NOT met" },
        (rps_ratio - 1.0) * 100.0,
        if p99_ratio <= 1.05 { "met" } else { "NOT met" },
        p99_ratio
    );
}
