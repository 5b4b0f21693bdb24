//! An open-loop HTTP/1.1 load generator for `examples/http_server.rs`: requests leave
//! at a fixed rate whatever the server does, and each latency is counted from the
//! moment its request was *due*, so a server that stalls is charged for every request
//! it held up (no coordinated omission).
//!
//! ```text
//! cargo run --release --example http_load -- [--addr 127.0.0.1:8080] [--rate 50000]
//!     [--conns 64] [--seconds 5] [--warmup 1]
//! ```
//!
//! One thread, busy-polling non-blocking sockets (give it a core of its own): request
//! `i` is due at `start + i / rate`; it goes out on an idle keep-alive connection, or,
//! with none idle, waits in a backlog for the first one to free up (its latency keeps
//! counting). Responses are recognised by their length, which the first request
//! measures (the server's responses must all have the same length, as the example's
//! do). Prints one line:
//!
//! ```text
//! sent 250000 done 250000 rate 49999 p50 31 p90 44 p99 120 p99.9 310 max 900 (µs) backlog max 3
//! ```
//!
//! wrk is a closed loop (each connection waits for its answer before sending again),
//! so at saturation its latencies follow the throughput; oha's open loop needs more
//! than one core of this machine to keep its own schedule. This client measures what
//! a request arriving at a given rate waits, on one core.

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n";

struct Options {
    addr: SocketAddr,
    rate: f64,
    conns: usize,
    seconds: f64,
    warmup: f64,
}

fn options() -> Options {
    let mut o = Options {
        addr: "127.0.0.1:8080".parse().unwrap(),
        rate: 50_000.0,
        conns: 64,
        seconds: 5.0,
        warmup: 1.0,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        let bad = |what: &str| -> ! { panic!("{arg} {value:?}: expected {what}") };
        match arg.as_str() {
            "--addr" => o.addr = value.parse().unwrap_or_else(|_| bad("HOST:PORT")),
            "--rate" => o.rate = value.parse().unwrap_or_else(|_| bad("requests/s")),
            "--conns" => o.conns = value.parse().unwrap_or_else(|_| bad("a count")),
            "--seconds" => o.seconds = value.parse().unwrap_or_else(|_| bad("seconds")),
            "--warmup" => o.warmup = value.parse().unwrap_or_else(|_| bad("seconds")),
            other => panic!("unknown argument {other:?} (see examples/http_load.rs)"),
        }
    }
    assert!(
        o.rate > 0.0 && o.conns > 0 && o.seconds > 0.0,
        "rate, conns and seconds must be > 0"
    );
    o
}

/// Sends one request on a blocking connection and returns the length of the response
/// (headers plus `content-length` body).
fn response_length(addr: SocketAddr) -> usize {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.write_all(REQUEST).expect("write");
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).expect("read");
        assert!(n > 0, "the server closed the connection");
        buf.extend_from_slice(&chunk[..n]);
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let headers = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        let body: usize = headers
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .expect("a content-length header")
            .trim()
            .parse()
            .expect("a numeric content-length");
        return end + 4 + body;
    }
}

/// A keep-alive connection with at most one request in flight.
struct Conn {
    stream: TcpStream,
    /// When the request in flight was due, if one is.
    due: Option<Instant>,
    /// Bytes of the response in flight received so far.
    received: usize,
}

fn main() {
    let o = options();
    let response_len = response_length(o.addr);
    let mut conns: Vec<Conn> = (0..o.conns)
        .map(|_| {
            let stream = TcpStream::connect(o.addr).expect("connect");
            stream.set_nodelay(true).expect("nodelay");
            stream.set_nonblocking(true).expect("nonblocking");
            Conn {
                stream,
                due: None,
                received: 0,
            }
        })
        .collect();
    let mut idle: Vec<usize> = (0..o.conns).rev().collect();
    let mut busy: Vec<usize> = Vec::with_capacity(o.conns);
    let mut backlog: VecDeque<Instant> = VecDeque::new();
    let mut backlog_max = 0usize;
    let total = (o.rate * o.seconds).round() as u64;
    let start = Instant::now();
    let due_at = |i: u64| start + Duration::from_secs_f64(i as f64 / o.rate);
    let measure_from = start + Duration::from_secs_f64(o.warmup.min(o.seconds));
    let mut latencies_ns: Vec<u64> = Vec::with_capacity(total as usize);
    let (mut sent, mut done) = (0u64, 0u64);
    let mut buf = vec![0u8; 64 * 1024];

    let send = |conn: &mut Conn, due: Instant| {
        // 31 bytes on an idle connection: the socket buffer always takes them.
        conn.stream.write_all(REQUEST).expect("write");
        conn.due = Some(due);
        conn.received = 0;
    };

    while done < total {
        // Give the CPU to whatever else is runnable here, above all the kernel's
        // softirq thread that delivers the server's packets to our sockets: a client
        // spinning through its time slice held those back for up to a scheduler tick.
        std::thread::yield_now();
        let now = Instant::now();
        // Requests that fell due: out on an idle connection, or into the backlog.
        while sent < total && due_at(sent) <= now {
            let due = due_at(sent);
            sent += 1;
            match idle.pop() {
                Some(c) => {
                    send(&mut conns[c], due);
                    busy.push(c);
                }
                None => {
                    backlog.push_back(due);
                    backlog_max = backlog_max.max(backlog.len());
                }
            }
        }
        // Responses: a connection whose response is complete takes the oldest backlog
        // request, or goes idle.
        let mut i = 0;
        while i < busy.len() {
            let c = busy[i];
            let conn = &mut conns[c];
            match conn.stream.read(&mut buf) {
                Ok(0) => panic!("the server closed a connection"),
                Ok(n) => conn.received += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => panic!("read: {e}"),
            }
            assert!(
                conn.received <= response_len,
                "a response longer than the first one ({response_len} bytes)"
            );
            if conn.received < response_len {
                i += 1;
                continue;
            }
            let end = Instant::now();
            let due = conn.due.take().expect("a request in flight");
            done += 1;
            if due >= measure_from {
                latencies_ns.push(end.duration_since(due).as_nanos() as u64);
            }
            if let Some(next) = backlog.pop_front() {
                send(conn, next);
                i += 1;
            } else {
                busy.swap_remove(i);
                idle.push(c);
            }
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    latencies_ns.sort_unstable();
    let pct = |p: f64| -> f64 {
        if latencies_ns.is_empty() {
            return f64::NAN;
        }
        let rank = ((p / 100.0) * latencies_ns.len() as f64).ceil() as usize;
        latencies_ns[rank.clamp(1, latencies_ns.len()) - 1] as f64 / 1_000.0
    };
    println!(
        "sent {sent} done {done} rate {:.0} p50 {:.1} p90 {:.1} p99 {:.1} p99.9 {:.1} max {:.1} (µs) backlog max {backlog_max}",
        done as f64 / elapsed,
        pct(50.0),
        pct(90.0),
        pct(99.0),
        pct(99.9),
        pct(100.0),
    );
}
