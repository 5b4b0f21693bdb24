//! tokio's cooperative budget inside clockworker.
//!
//! tokio gives each poll of a host task a budget of about 128 operations on its
//! resources (channels, sockets, timers). The run loop is *one* host task, so all
//! clockworker tasks share that budget: once it is spent, tokio resources return
//! `Pending` and defer the wake until tokio is about to park. The run loop must return
//! to tokio when that leaves nothing runnable, and work must go on at the next turn.

mod common;

use std::time::{Duration, Instant};

use clockworker::{yield_maybe, ExecutorBuilder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio current_thread runtime")
}

/// 10,000 messages already in the channel: every `recv` is ready except when the
/// budget runs out. With a 1 s `driver_yield`, only an idle return gets them through.
#[test]
fn prefilled_channel_drains_past_the_budget() {
    let _watchdog = common::watchdog();
    let rt = runtime();
    let executor = ExecutorBuilder::new()
        .with_queue(0u8, 1)
        .with_driver_yield(Duration::from_secs(1))
        .build()
        .unwrap();
    let q = executor.queue(0).unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u32>();
    for i in 0..10_000 {
        tx.send(i).unwrap();
    }
    drop(tx);
    let start = Instant::now();
    let got = rt
        .block_on(async {
            tokio::time::timeout(
                Duration::from_secs(10),
                executor.run_until(q.spawn(async move {
                    let mut got = Vec::new();
                    while let Some(v) = rx.recv().await {
                        got.push(v);
                    }
                    got
                })),
            )
            .await
        })
        .expect("drained within 10 s")
        .unwrap();
    let elapsed = start.elapsed();
    let stats = executor.stats();
    eprintln!("10,000 recvs in {elapsed:?}: {stats:?}");
    assert_eq!(got, (0..10_000).collect::<Vec<_>>());
    assert!(elapsed < Duration::from_secs(3));
    // The budget forced the task to give way many times (10,000 / 128 ≈ 79), each
    // time through an idle return, never a driver deadline.
    assert!(stats.polls > 10_000 / 200, "polls: {}", stats.polls);
    assert_eq!(stats.driver_yields, 0);
}

/// Same, with a CPU-bound sibling that keeps the loop busy: the receiver gets a new
/// budget only when the loop returns to tokio on its `driver_yield`; it must finish.
#[test]
fn budget_exhaustion_beside_busy_task_still_progresses() {
    let _watchdog = common::watchdog();
    let rt = runtime();
    let executor = ExecutorBuilder::new()
        .with_queue("rx", 1)
        .with_queue("busy", 1)
        .with_driver_yield(Duration::from_micros(200))
        .build()
        .unwrap();
    let rxq = executor.queue("rx").unwrap();
    let busy = executor.queue("busy").unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u32>();
    for i in 0..5_000 {
        tx.send(i).unwrap();
    }
    drop(tx);
    let count = rt.block_on(async {
        tokio::time::timeout(
            Duration::from_secs(10),
            executor.run_until(async {
                let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
                let spinner = busy.spawn(async move {
                    while !*stop_rx.borrow() {
                        let t = Instant::now();
                        while t.elapsed() < Duration::from_micros(20) {}
                        yield_maybe().await;
                    }
                });
                let n = rxq
                    .spawn(async move {
                        let mut n = 0u32;
                        while let Some(v) = rx.recv().await {
                            assert_eq!(v, n);
                            n += 1;
                        }
                        n
                    })
                    .await
                    .unwrap();
                stop_tx.send(true).unwrap();
                spinner.await.unwrap();
                n
            }),
        )
        .await
    });
    assert_eq!(count.expect("finished within 10 s"), 5_000);
}

/// The design brief's check: a busy TCP echo over loopback, server and clients all
/// clockworker tasks, with a CPU-bound background task on another queue.
#[test]
fn busy_tcp_echo_inside_clockworker() {
    let _watchdog = common::watchdog();
    const CLIENTS: usize = 4;
    // The background task is always runnable, so the loop sees socket readiness only
    // when it returns to tokio, once per `driver_yield`: every round trip costs about
    // two driver turns. Keep the count modest.
    const ROUNDS: usize = 100;
    const MSG: usize = 256;

    let rt = runtime();
    let executor = ExecutorBuilder::new()
        .with_queue("net", 4)
        .with_queue("background", 1)
        .with_driver_yield(Duration::from_micros(200))
        .build()
        .unwrap();
    let net = executor.queue("net").unwrap();
    let background = executor.queue("background").unwrap();
    let result = rt.block_on(async {
        tokio::time::timeout(
            Duration::from_secs(20),
            executor.run_until(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let addr = listener.local_addr().unwrap();
                let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
                let spinner = background.spawn(async move {
                    let mut chunks = 0u64;
                    while !*stop_rx.borrow() {
                        let t = Instant::now();
                        while t.elapsed() < Duration::from_micros(50) {}
                        chunks += 1;
                        yield_maybe().await;
                    }
                    chunks
                });
                let server = net.spawn({
                    let net = net.clone();
                    async move {
                        let mut conns = Vec::new();
                        for _ in 0..CLIENTS {
                            let (mut sock, _) = listener.accept().await.unwrap();
                            conns.push(net.spawn(async move {
                                let mut buf = vec![0u8; 4096];
                                let mut echoed = 0usize;
                                loop {
                                    let n = sock.read(&mut buf).await.unwrap();
                                    if n == 0 {
                                        return echoed;
                                    }
                                    sock.write_all(&buf[..n]).await.unwrap();
                                    echoed += n;
                                }
                            }));
                        }
                        let mut total = 0;
                        for c in conns {
                            total += c.await.unwrap();
                        }
                        total
                    }
                });
                let mut clients = Vec::new();
                for c in 0..CLIENTS {
                    clients.push(net.spawn(async move {
                        let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
                        sock.set_nodelay(true).unwrap();
                        let mut back = vec![0u8; MSG];
                        for r in 0..ROUNDS {
                            let msg: Vec<u8> = (0..MSG).map(|i| (i + r + c) as u8).collect();
                            sock.write_all(&msg).await.unwrap();
                            sock.read_exact(&mut back).await.unwrap();
                            assert_eq!(back, msg, "client {c} round {r}");
                        }
                        ROUNDS
                    }));
                }
                let mut rounds = 0;
                for c in clients {
                    rounds += c.await.unwrap();
                }
                let echoed = server.await.unwrap();
                stop_tx.send(true).unwrap();
                let chunks = spinner.await.unwrap();
                (rounds, echoed, chunks)
            }),
        )
        .await
    });
    let (rounds, echoed, chunks) = result.expect("TCP echo finished within 20 s");
    assert_eq!(rounds, CLIENTS * ROUNDS);
    assert_eq!(echoed, CLIENTS * ROUNDS * MSG);
    assert!(chunks > 0, "the background task ran");
    eprintln!("tcp echo: {:?}", executor.stats());
}
