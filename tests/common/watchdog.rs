//! The watchdog every test that waits on the executor arms: a lost wake fails the test
//! binary within seconds, naming the test, instead of hanging the run.
//!
//! One file for both kinds of tests: the integration tests include it through
//! `tests/common`, the library's unit tests through `#[path]` in `src/lib.rs`
//! (`crate::test_watchdog`). Each uses only part of it.
#![allow(dead_code)]

use std::time::Duration;

/// How long a test may run before its [`watchdog`] fails the test binary: 30 s (10 min
/// under Miri), or `CLOCKWORKER_TEST_TIMEOUT` seconds. No test needs more than a few seconds, even
/// in a debug build on a loaded machine; a test still running after this is waiting
/// for a wake that was lost.
pub fn test_time_limit() -> Duration {
    std::env::var("CLOCKWORKER_TEST_TIMEOUT")
        .ok()
        .and_then(|secs| secs.parse().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(if cfg!(miri) { 600 } else { 30 }))
}

/// Disarms its watchdog when dropped (at the end of the test, also when it panics).
#[must_use = "the watchdog is disarmed as soon as this guard is dropped"]
pub struct Watchdog {
    _disarm: std::sync::mpsc::Sender<()>,
}

/// Arms a watchdog for the calling test (call it first thing in the test): if the
/// returned guard is still alive after [`test_time_limit`], it prints the test's name
/// (the name of the thread libtest runs it on) to stderr and exits the test binary
/// with status 124, instead of letting a lost wake hang the run. Works with plain
/// `cargo test`; the body stays on the test's thread, so `!Send` state is fine.
pub fn watchdog() -> Watchdog {
    watchdog_for(test_time_limit())
}

/// [`watchdog`] with an explicit limit.
pub fn watchdog_for(limit: Duration) -> Watchdog {
    let test = std::thread::current()
        .name()
        .unwrap_or("<a test on an unnamed thread>")
        .to_string();
    let (disarm, armed) = std::sync::mpsc::channel::<()>();
    std::thread::Builder::new()
        .name(format!("watchdog of {test}"))
        .spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = armed.recv_timeout(limit) {
                use std::io::Write;
                // Straight to the process's stderr: libtest captures `eprintln!`.
                let _ = writeln!(
                    std::io::stderr(),
                    "\nWATCHDOG: test `{test}` still running after {limit:?} (a lost wake?); \
                     exiting the test binary with status 124"
                );
                std::process::exit(124);
            }
        })
        .expect("watchdog thread");
    Watchdog { _disarm: disarm }
}
