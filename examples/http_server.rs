//! An HTTP/1.1 server (hyper 1.x on tokio) whose connections run in a foreground
//! clockworker queue, while a background queue does CPU-heavy maintenance that would
//! otherwise saturate the core.
//!
//! ```text
//! cargo run --release --example http_server -- [--plain] [--bg N] [--chunk-us US]
//!     [--addr 127.0.0.1:8080] [--seconds S]
//!     [--driver-yield-us US] [--host-poll-us US] [--lag-tolerance-us US]
//!     [--sched-latency-us US] [--min-slice-us US]
//! ```
//!
//! - default: clockworker on a tokio current_thread runtime (inside a `LocalSet`), queue
//!   `Fg` (weight 8) serves the connections, queue `Bg` (weight 1) runs the background
//!   tasks. A background task works in chunks of `--chunk-us` µs of CPU (default 50)
//!   with `yield_maybe()` between them: it gives way only when its slice is spent, a
//!   request is waiting, or the loop is due back in tokio.
//! - `--plain` (or `HTTP_PLAIN=1`): clockworker off. Everything is a `spawn_local` task of
//!   one `LocalSet`, the background tasks doing the same chunks with
//!   `tokio::task::yield_now()` between them, the way one writes it for tokio.
//! - `--bg N`: number of background tasks (default 4; 0 for none).
//! - `--seconds S`: stop after S seconds and print statistics (default: run until killed).
//! - clockworker's settings: `--driver-yield-us` (default 250, the library's),
//!   `--host-poll-us` (50, the library's), `--lag-tolerance-us` (50; the library's is
//!   0), `--sched-latency-us` (100) and `--min-slice-us` (50). A request arriving
//!   while the background runs is seen when the loop next returns to tokio: with
//!   connections parked in `Fg`, which outranks `Bg`, that is every host-poll
//!   interval, and whenever a `Bg` slice is about to begin. The lag tolerance lets
//!   `Fg` serve it at once although its last burst left it owing `Bg` a few µs, and
//!   the short scheduling latency keeps each `Bg` slice to 50 µs (one chunk), so
//!   that when `Bg` is owed its 1/9 it takes it in short pieces.
//!
//! With `HTTP_DEBUG=1` the clockworker mode also prints each queue's poll-time
//! histogram on exit.
//!
//! `scripts/http-bench.sh` drives both modes, with and without background load, with
//! `wrk`, and prints latency and throughput.

use std::cell::Cell;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clockworker::{yield_maybe, ExecutorBuilder};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Queue {
    Fg,
    Bg,
}

struct Options {
    plain: bool,
    background_tasks: usize,
    chunk: Duration,
    addr: SocketAddr,
    seconds: Option<f64>,
    driver_yield: Duration,
    host_poll: Duration,
    lag_tolerance: Duration,
    sched_latency: Duration,
    min_slice: Duration,
}

fn options() -> Options {
    let mut o = Options {
        plain: std::env::var("HTTP_PLAIN").is_ok_and(|v| !v.is_empty() && v != "0"),
        background_tasks: 4,
        chunk: Duration::from_micros(50),
        addr: "127.0.0.1:8080".parse().unwrap(),
        seconds: None,
        driver_yield: clockworker::DEFAULT_DRIVER_YIELD,
        host_poll: clockworker::DEFAULT_HOST_POLL_INTERVAL,
        lag_tolerance: Duration::from_micros(50),
        sched_latency: Duration::from_micros(100),
        min_slice: Duration::from_micros(50),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .unwrap_or_else(|| panic!("{name} needs a value"))
        };
        match arg.as_str() {
            "--plain" => o.plain = true,
            "--bg" => o.background_tasks = value("--bg").parse().expect("--bg N"),
            "--chunk-us" => {
                o.chunk = Duration::from_micros(value("--chunk-us").parse().expect("--chunk-us US"))
            }
            "--addr" => o.addr = value("--addr").parse().expect("--addr HOST:PORT"),
            "--seconds" => o.seconds = Some(value("--seconds").parse().expect("--seconds S")),
            "--driver-yield-us" => {
                o.driver_yield = Duration::from_micros(
                    value("--driver-yield-us")
                        .parse()
                        .expect("--driver-yield-us US"),
                )
            }
            "--host-poll-us" => {
                o.host_poll = Duration::from_micros(
                    value("--host-poll-us").parse().expect("--host-poll-us US"),
                )
            }
            "--lag-tolerance-us" => {
                o.lag_tolerance = Duration::from_micros(
                    value("--lag-tolerance-us")
                        .parse()
                        .expect("--lag-tolerance-us US"),
                )
            }
            "--sched-latency-us" => {
                o.sched_latency = Duration::from_micros(
                    value("--sched-latency-us")
                        .parse()
                        .expect("--sched-latency-us US"),
                )
            }
            "--min-slice-us" => {
                o.min_slice = Duration::from_micros(
                    value("--min-slice-us").parse().expect("--min-slice-us US"),
                )
            }
            other => panic!(
                "unknown argument {other:?} (see the doc comment of examples/http_server.rs)"
            ),
        }
    }
    o
}

/// The request handler: a small fixed response.
async fn hello(_req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(
        b"hello from clockworker\n",
    ))))
}

/// Serves one connection until the client closes it.
async fn serve(stream: tokio::net::TcpStream) {
    let _ = stream.set_nodelay(true);
    let io = TokioIo::new(stream);
    // Errors are the client's business (reset connections at the end of a load run).
    let _ = http1::Builder::new()
        .serve_connection(io, service_fn(hello))
        .await;
}

/// One chunk of "compaction": checksum a buffer over and over for `chunk` of CPU.
fn compact_chunk(buf: &mut [u64], chunk: Duration) {
    let start = Instant::now();
    let mut acc = 0u64;
    while start.elapsed() < chunk {
        for x in buf.iter_mut() {
            acc = acc.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(*x);
            *x = acc;
        }
    }
    std::hint::black_box(acc);
}

/// Accepts connections until `deadline`, handing each to `spawn`.
async fn accept_loop(
    listener: TcpListener,
    deadline: Option<Instant>,
    spawn: impl Fn(tokio::net::TcpStream),
) {
    loop {
        let accepted = match deadline {
            Some(d) => match tokio::time::timeout_at(d.into(), listener.accept()).await {
                Ok(accepted) => accepted,
                Err(_) => return,
            },
            None => listener.accept().await,
        };
        match accepted {
            Ok((stream, _)) => spawn(stream),
            Err(e) => eprintln!("accept: {e}"),
        }
    }
}

fn main() {
    let o = options();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let local = tokio::task::LocalSet::new();
    let listener = local
        .block_on(&rt, TcpListener::bind(o.addr))
        .expect("bind");
    let addr = listener.local_addr().unwrap();
    let deadline = o
        .seconds
        .map(|s| Instant::now() + Duration::from_secs_f64(s));
    let chunks_done = Rc::new(Cell::new(0u64));
    println!(
        "listening on http://{addr} ({}, {} background task(s) of {:?} chunks)",
        if o.plain {
            "plain LocalSet"
        } else {
            "clockworker"
        },
        o.background_tasks,
        o.chunk
    );

    if o.plain {
        local.block_on(&rt, async {
            for _ in 0..o.background_tasks {
                let chunks_done = chunks_done.clone();
                let chunk = o.chunk;
                tokio::task::spawn_local(async move {
                    let mut buf = vec![1u64; 512];
                    loop {
                        compact_chunk(&mut buf, chunk);
                        chunks_done.set(chunks_done.get() + 1);
                        tokio::task::yield_now().await;
                    }
                });
            }
            accept_loop(listener, deadline, |stream| {
                tokio::task::spawn_local(serve(stream));
            })
            .await;
        });
    } else {
        let executor = ExecutorBuilder::new()
            .with_queue(Queue::Fg, 8)
            .with_queue(Queue::Bg, 1)
            // Short background slices, a look at tokio's sockets before each one and
            // every host-poll interval, and no wait for a debt of a few µs: a request
            // waits at most about the background chunk in progress (see the module
            // docs).
            .with_sched_latency(o.sched_latency)
            .with_min_slice(o.min_slice)
            .with_driver_yield(o.driver_yield)
            .with_host_poll_interval(o.host_poll)
            .with_lag_tolerance(o.lag_tolerance)
            .build()
            .expect("valid configuration");
        let fg = executor.queue(Queue::Fg).unwrap();
        let bg = executor.queue(Queue::Bg).unwrap();
        for _ in 0..o.background_tasks {
            let chunks_done = chunks_done.clone();
            let chunk = o.chunk;
            bg.spawn(async move {
                let mut buf = vec![1u64; 512];
                loop {
                    compact_chunk(&mut buf, chunk);
                    chunks_done.set(chunks_done.get() + 1);
                    yield_maybe().await;
                }
            });
        }
        local.block_on(
            &rt,
            executor.run_until(accept_loop(listener, deadline, move |stream| {
                fg.spawn(serve(stream));
            })),
        );
        let stats = executor.stats();
        for key in [Queue::Fg, Queue::Bg] {
            let q = executor.queue_stats(key).unwrap();
            eprintln!(
                "queue {key:?}: weight {}, service {:?}, polls {}, queue delay p50 {:?} p99 {:?}, poll time p99 {:?}",
                q.weight,
                q.service_time,
                q.polls,
                q.queue_delay.quantile(0.5).unwrap_or_default(),
                q.queue_delay.quantile(0.99).unwrap_or_default(),
                q.poll_time.quantile(0.99).unwrap_or_default(),
            );
            if std::env::var_os("HTTP_DEBUG").is_some() {
                eprintln!(
                    "  poll time buckets: {:?}",
                    q.poll_time
                        .buckets()
                        .filter(|b| b.1 > 0)
                        .collect::<Vec<_>>()
                );
            }
        }
        eprintln!(
            "executor: busy {:?}, idle {:?}, driver yields {}, longest stretch away from tokio {:?}",
            stats.busy_time, stats.idle_time, stats.driver_yields, stats.max_driver_gap
        );
    }
    eprintln!("background chunks done: {}", chunks_done.get());
}
