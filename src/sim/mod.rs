//! A scheduling simulator (feature `sim`): the **real** executor — the same builder
//! and settings, EEVDF choice, task schedulers, task wrapper and stats — on a virtual
//! clock, inside a virtual host. Only the clock and the host are simulated.
//!
//! - [`Host`]: the virtual host of this thread, a `block_on` loop with the rules of a
//!   real one ([`HostModel`]: what a return to it costs, how finely timers fire);
//!   executors built while it is installed read its virtual clock.
//! - [`cpu`] (a busy segment: moves the clock, cannot be preempted) and [`sleep`] (a
//!   timer of the host) are what simulated tasks do; [`yield_maybe`](crate::yield_maybe)
//!   and [`yield_now`](crate::yield_now) work as usual. [`call_at`] schedules an event
//!   of the outside world that comes through the host (an arrival on a socket),
//!   [`call_from_thread_at`] one that another thread sends, [`now`] reads the virtual
//!   clock.
//! - [`Rng`]: the seeded generator; one seed gives one run, bit for bit.
//! - [`Workload`]: a workload file (TOML: settings, queues, classes of tasks with
//!   their arrivals and shapes); [`simulate`] runs one and returns a [`Report`]
//!   (per queue and class: latency and queue-delay percentiles, CPU share, tasks
//!   completed), which [`latency_svg`] and [`sweep_svg`] draw. `examples/simulate.rs`
//!   is the command line, and `docs/SIMULATION.md` describes the format, the model, and how simulated figures
//!   compare with measured ones.
//!
//! Without the feature none of this is compiled, and the executor's clock read is the
//! same code as before.
//!
//! ```
//! use clockworker::sim::{self, Host, HostModel};
//! use clockworker::{yield_maybe, ExecutorBuilder};
//! use std::time::Duration;
//!
//! let host = Host::new(HostModel::tokio()).unwrap();
//! let executor = ExecutorBuilder::new().with_queue("fg", 3).with_queue("bg", 1).build().unwrap();
//! for key in ["fg", "bg"] {
//!     executor.queue(key).unwrap().spawn(async {
//!         loop {
//!             sim::cpu(Duration::from_micros(10)).await;
//!             yield_maybe().await;
//!         }
//!     });
//! }
//! let _ = host.run(executor.run(), Duration::from_secs(1)); // one virtual second
//! let fg = executor.queue_stats("fg").unwrap().service_time.as_secs_f64();
//! let bg = executor.queue_stats("bg").unwrap().service_time.as_secs_f64();
//! assert!((fg / (fg + bg) - 0.75).abs() < 0.01);
//! ```

mod error;
mod host;
mod model;
mod report;
mod rng;
mod run;
mod svg;
mod time;
mod workload;

pub use error::HostError;
pub use host::{call_at, call_from_thread_at, clock_reads, now, Host, HostStats, Stopped};
pub use model::{HostModel, DEFAULT_RETURN_COST, TOKIO_TIMER_RESOLUTION};
pub use report::{ClassReport, Percentiles, QueueReport, Report};
pub use rng::Rng;
pub use run::simulate;
pub use svg::{latency_svg, sweep_svg};
pub use time::{cpu, sleep, Cpu, Sleep};
pub use workload::{Dist, Workload, WorkloadError};
