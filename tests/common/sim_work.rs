//! Work for the simulator's tests (feature `sim`): one microsecond, and a task that
//! keeps its queue busy.

use std::time::Duration;

use clockworker::sim;
use clockworker::yield_maybe;

/// One microsecond.
pub const US: Duration = Duration::from_micros(1);

/// A task that keeps the loop busy: `chunk` of virtual CPU, then `yield_maybe`,
/// forever (it gives the thread back only when the driver yield or its slice is due).
pub async fn busy(chunk: Duration) {
    loop {
        sim::cpu(chunk).await;
        yield_maybe().await;
    }
}
