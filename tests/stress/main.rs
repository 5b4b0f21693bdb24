//! Stress: OS threads waking and aborting tasks in a loop while the executor runs;
//! duplicate and spurious wakes; wakers outliving the executor while other threads
//! still use them; a million parked tasks woken at once; recursive spawning; aborts
//! racing busy tasks.
//!
//! Bounded in count (every loop has a fixed number of rounds) and in time (each test
//! body runs under a watchdog that fails it as "hung" instead of hanging the suite).
//! The host is `futures_lite::future::block_on`, which parks its thread: a lost wake
//! there is a hang, not a slow test.
//!
//! The million-task test runs 1,000,000 tasks in release builds and 100,000 in debug
//! builds (`cfg(debug_assertions)`), to stay within a few seconds either way.

#[path = "../common/mod.rs"]
mod common;
mod parked_and_racing;
mod support;
mod wake_races;
