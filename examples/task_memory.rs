//! Per-task memory: how many heap bytes an idle task costs beyond its future.
//!
//! A counting global allocator tracks the bytes requested (and, through glibc's
//! `malloc_usable_size`, the bytes malloc actually hands out) while N tasks are
//! spawned and then polled once, after which they sit parked. The future is
//! zero-sized, so every byte counted is the executor's: the task cell (`task::cell`:
//! its header with our metadata, then one slot that holds the `TaskFuture` wrapper
//! and, once the task completes, the output), the registry entry (the task's
//! address), the ready queue while the task waits for its first poll. A second run
//! with a 256-byte future shows the future is stored inline, in the same allocation.
//!
//! `cargo run --release --example task_memory [N]` (default 1,000,000).

use std::alloc::{GlobalAlloc, Layout, System};
use std::future::{poll_fn, Future};
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};
use std::task::Poll;

use clockworker::{yield_now, ExecutorBuilder};

struct Counting;

static REQUESTED: AtomicIsize = AtomicIsize::new(0);
static USABLE: AtomicIsize = AtomicIsize::new(0);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

fn usable(ptr: *mut u8) -> isize {
    // SAFETY: `ptr` was returned by the system allocator (glibc malloc) and is live.
    unsafe { libc::malloc_usable_size(ptr.cast()) as isize }
}

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            REQUESTED.fetch_add(layout.size() as isize, Ordering::Relaxed);
            USABLE.fetch_add(usable(ptr), Ordering::Relaxed);
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        REQUESTED.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        USABLE.fetch_sub(usable(ptr), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let before = usable(ptr);
        // SAFETY: same contract as the caller's.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            REQUESTED.fetch_add(
                new_size as isize - layout.size() as isize,
                Ordering::Relaxed,
            );
            USABLE.fetch_add(usable(new) - before, Ordering::Relaxed);
        }
        new
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[derive(Clone, Copy)]
struct Snapshot {
    requested: isize,
    usable: isize,
    allocations: usize,
    rss: isize,
}

/// Resident set size from /proc (bytes), 0 where unavailable.
fn rss() -> isize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: isize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    pages * unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as isize
}

/// The counters, then the RSS (whose reading allocates, after the counters are read).
fn snapshot() -> Snapshot {
    let mut snapshot = counters();
    snapshot.rss = rss();
    snapshot
}

/// The counters alone: allocates nothing.
fn counters() -> Snapshot {
    Snapshot {
        requested: REQUESTED.load(Ordering::Relaxed),
        usable: USABLE.load(Ordering::Relaxed),
        allocations: ALLOCATIONS.load(Ordering::Relaxed),
        rss: 0,
    }
}

/// Parks forever after its first poll, holding `payload`.
fn idle<const BYTES: usize>() -> impl Future<Output = ()> {
    let payload = [0u8; BYTES];
    poll_fn(move |_| {
        std::hint::black_box(&payload);
        Poll::Pending
    })
}

struct Figures {
    spawned: f64,
    parked: f64,
    usable_parked: f64,
    rss_parked: f64,
    allocations: f64,
}

fn measure<F: Future<Output = ()> + 'static>(n: usize, make: impl Fn() -> F) -> Figures {
    let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    let q = executor.queue(0).unwrap();
    // Warm up once so lazily built structures are not counted per task.
    drop(q.spawn(async {}));
    futures_lite::future::block_on(executor.run_until(yield_now()));
    let polls_before = executor.stats().polls;
    let base = snapshot();
    let handles: Vec<_> = (0..n).map(|_| q.spawn(make())).collect();
    // Handles are the caller's, not the task's: discount their Vec (detached tasks
    // cost the same; the handle itself is two words on the caller's side).
    let handles_bytes = (handles.capacity() * std::mem::size_of_val(&handles[0])) as f64;
    let spawned = snapshot();
    futures_lite::future::block_on(executor.run_until(async {
        // Every new task polled once (the warm-up task's poll came before).
        while executor.stats().polls < polls_before + n as u64 {
            yield_now().await;
        }
    }));
    let parked = snapshot();
    assert_eq!(executor.stats().live_tasks, n);
    let per = |a: isize, b: isize| (a - b) as f64 / n as f64;
    let figures = Figures {
        spawned: per(spawned.requested, base.requested) - handles_bytes / n as f64,
        parked: per(parked.requested, base.requested) - handles_bytes / n as f64,
        usable_parked: per(parked.usable, base.usable) - handles_bytes / n as f64,
        rss_parked: per(parked.rss, base.rss),
        allocations: (spawned.allocations - base.allocations) as f64 / n as f64,
    };
    drop(handles);
    drop(q);
    drop(executor);
    figures
}

/// Bytes of one task's own allocation (the task cell): the one allocation a spawn
/// makes once the executor's vectors have room.
fn cell_bytes<F: Future<Output = ()> + 'static>(make: impl Fn() -> F) -> isize {
    let executor = ExecutorBuilder::new().with_queue(0u8, 1).build().unwrap();
    let q = executor.queue(0).unwrap();
    let mut handles = Vec::with_capacity(4096);
    loop {
        let before = counters();
        handles.push(q.spawn(make()));
        let after = counters();
        if after.allocations - before.allocations == 1 {
            return after.requested - before.requested;
        }
        assert!(handles.len() < 4096, "every spawn allocated more than once");
    }
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    println!("{n} idle tasks; bytes per task beyond the future (heap, requested):");
    let zero = measure(n, idle::<0>);
    let big = measure(n, idle::<256>);
    println!(
        "  zero-sized future: {:.1} B after spawn, {:.1} B parked ({:.1} B by \
         malloc_usable_size, plus glibc's 8 B header per allocation; {:.1} B of RSS \
         incl. the caller's 16 B handle), {:.2} allocations per spawn",
        zero.spawned, zero.parked, zero.usable_parked, zero.rss_parked, zero.allocations
    );
    println!(
        "  256-byte future:   {:.1} B parked, i.e. {:.1} B more: the future sits inline \
         in the task's allocation",
        big.parked,
        big.parked - zero.parked
    );
    println!(
        "  of which the task cell (header, metadata, wrapper, output slot): {} B; the \
         rest is the registry's slot (one pointer) and the queues' spare capacity",
        cell_bytes(idle::<0>)
    );
    println!(
        "  1,000,000 parked tasks: {:.0} MiB",
        zero.usable_parked * 1e6 / (1024.0 * 1024.0)
    );
}
