//! A small number that names the current thread, cheaper to read than
//! `std::thread::current().id()` (one thread-local load, no reference count).
//!
//! A task's waker compares it with its executor's to tell a wake on the executor's
//! own thread (plain, unsynchronised state) from one elsewhere (`task::cell`). Ids
//! are never reused: a thread that ends does not hand its id to a later one.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

/// The last id handed out; 0 is never an id.
static LAST_ID: AtomicU64 = AtomicU64::new(0);

#[cfg(not(loom))]
thread_local! {
    /// This thread's id, 0 until first asked for. Const-initialised and without drop
    /// glue: reading it is a plain load at a fixed offset, valid even while the thread's
    /// other thread-locals are being torn down.
    static THREAD_ID: Cell<u64> = const { Cell::new(0) };
}

// loom runs a model's threads on one OS thread: its own thread-locals tell them apart.
#[cfg(loom)]
loom::thread_local! {
    static THREAD_ID: Cell<u64> = Cell::new(0);
}

/// The current thread's id (never 0).
#[inline(always)]
pub(crate) fn current() -> u64 {
    let id = THREAD_ID.with(Cell::get);
    if id != 0 {
        return id;
    }
    assign()
}

#[cold]
#[inline(never)]
fn assign() -> u64 {
    let id = LAST_ID.fetch_add(1, Ordering::Relaxed) + 1;
    THREAD_ID.with(|cell| cell.set(id));
    id
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::current;

    #[test]
    fn ids_are_stable_per_thread_and_differ_between_threads() {
        let here = current();
        assert_ne!(here, 0);
        assert_eq!(here, current());
        let there = std::thread::spawn(current).join().unwrap();
        assert_ne!(there, 0);
        assert_ne!(here, there);
    }
}
