//! What a simulation reports: per queue its CPU share and completions, per class the
//! latency and queue delay percentiles (exact, from every sample).

use std::fmt;
use std::time::Duration;

use crate::{ExecutorStats, QueueStats};

use super::workload::Workload;
use super::HostStats;

/// One task (or one round of a busy task): when it arrived, was first polled, ended.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample {
    pub(crate) arrival_ns: u64,
    pub(crate) first_ns: u64,
    pub(crate) done_ns: u64,
}

/// A class's samples (tasks that arrived after the warm-up).
#[derive(Debug, Default)]
pub(crate) struct ClassSamples {
    pub(crate) arrived: u64,
    pub(crate) done: Vec<Sample>,
}

/// Percentiles of a set of durations (nearest rank); zeros when it is empty.
///
/// ```
/// use clockworker::sim::Percentiles;
/// use std::time::Duration;
/// let ms = |v| Duration::from_millis(v);
/// let p = Percentiles::of(&mut (1..=100).map(ms).collect::<Vec<_>>());
/// assert_eq!((p.p50, p.p90, p.p99, p.max), (ms(50), ms(90), ms(99), ms(100)));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[non_exhaustive]
pub struct Percentiles {
    /// Median.
    pub p50: Duration,
    /// 90th percentile.
    pub p90: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// 99.9th percentile.
    pub p999: Duration,
    /// Largest.
    pub max: Duration,
    /// Mean.
    pub mean: Duration,
}

impl Percentiles {
    /// The percentiles of `values` (sorted in place).
    ///
    /// ```
    /// use clockworker::sim::Percentiles;
    /// assert_eq!(Percentiles::of(&mut []), Percentiles::default());
    /// ```
    pub fn of(values: &mut [Duration]) -> Percentiles {
        if values.is_empty() {
            return Percentiles::default();
        }
        values.sort_unstable();
        let rank = |q: f64| {
            let r = (q * values.len() as f64).ceil() as usize;
            values[r.clamp(1, values.len()) - 1]
        };
        let total: Duration = values.iter().sum();
        Percentiles {
            p50: rank(0.5),
            p90: rank(0.9),
            p99: rank(0.99),
            p999: rank(0.999),
            max: values[values.len() - 1],
            mean: total / values.len() as u32,
        }
    }
}

/// What one class of tasks saw.
///
/// ```
/// # use clockworker::sim::{simulate, Workload};
/// # let w = Workload::from_toml("duration_ms = 10\n[[queue]]\nname = \"q\"\nweight = 1\n[[queue.class]]\nname = \"c\"\narrival = { kind = \"constant\", rate_per_s = 1000 }\ncpu = { dist = \"fixed\", us = 10 }\n").unwrap();
/// let report = simulate(&w, 0).unwrap();
/// let class = &report.queues[0].classes[0];
/// assert_eq!(class.name, "c");
/// assert_eq!(class.latencies.len() as u64, class.completed);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClassReport {
    /// The class's name.
    pub name: String,
    /// Tasks (busy tasks: rounds) that arrived after the warm-up and ended.
    pub completed: u64,
    /// Tasks that arrived after the warm-up and had not ended when the run stopped.
    pub unfinished: u64,
    /// Arrival → end.
    pub latency: Percentiles,
    /// Arrival → first poll.
    pub queue_delay: Percentiles,
    /// Every latency, sorted (for plots).
    pub latencies: Vec<Duration>,
}

/// What one queue saw.
///
/// ```
/// # use clockworker::sim::{simulate, Workload};
/// # let w = Workload::from_toml("duration_ms = 10\n[[queue]]\nname = \"q\"\nweight = 1\n").unwrap();
/// let report = simulate(&w, 0).unwrap();
/// assert_eq!(report.queues[0].name, "q");
/// assert_eq!(report.queues[0].cpu_share, 0.0); // no work at all
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct QueueReport {
    /// The queue's name.
    pub name: String,
    /// Its weight at the end.
    pub weight: u32,
    /// Its part of all queues' service time after the warm-up (0 to 1).
    pub cpu_share: f64,
    /// Its service time after the warm-up.
    pub service_time: Duration,
    /// Tasks of the queue that ended after the warm-up (the executor's count).
    pub completed: u64,
    /// Its classes, in the file's order.
    pub classes: Vec<ClassReport>,
}

/// What a simulation reports; `Display` prints it as a table (everything but the wall
/// time, so that one seed prints one text).
///
/// ```
/// # use clockworker::sim::{simulate, Workload};
/// # let w = Workload::from_toml("duration_ms = 10\n[[queue]]\nname = \"q\"\nweight = 1\n").unwrap();
/// let report = simulate(&w, 3).unwrap();
/// assert_eq!(report.seed, 3);
/// println!("{report}");
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Report {
    /// The seed of the run.
    pub seed: u64,
    /// The virtual time measured (the run less its warm-up).
    pub measured: Duration,
    /// The wall time the simulation took.
    pub wall: Duration,
    /// Per queue, in the file's order.
    pub queues: Vec<QueueReport>,
    /// What the host counted.
    pub host: HostStats,
    /// The executor's own statistics at the end (whole run).
    pub executor: ExecutorStats,
}

impl Report {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        workload: &Workload,
        seed: u64,
        measured: Duration,
        wall: Duration,
        before: Option<&[QueueStats<usize>]>,
        after: &[QueueStats<usize>],
        samples: Vec<ClassSamples>,
        host: HostStats,
        executor: ExecutorStats,
    ) -> Report {
        let delta = |q: usize| -> (Duration, u64) {
            let a = &after[q];
            match before.and_then(|b| b.get(q)) {
                Some(b) => (
                    a.service_time.saturating_sub(b.service_time),
                    a.completed - b.completed,
                ),
                None => (a.service_time, a.completed),
            }
        };
        let total: Duration = (0..after.len()).map(|q| delta(q).0).sum();
        let mut samples = samples.into_iter();
        let queues = workload
            .spec
            .queues
            .iter()
            .enumerate()
            .map(|(q, spec)| {
                let (service, completed) = delta(q);
                let classes = spec
                    .classes
                    .iter()
                    .map(|class| class_report(&class.name, samples.next().unwrap_or_default()))
                    .collect();
                QueueReport {
                    name: spec.name.get_ref().clone(),
                    weight: after[q].weight,
                    cpu_share: if total.is_zero() {
                        0.0
                    } else {
                        service.as_secs_f64() / total.as_secs_f64()
                    },
                    service_time: service,
                    completed,
                    classes,
                }
            })
            .collect();
        Report {
            seed,
            measured,
            wall,
            queues,
            host,
            executor,
        }
    }

    /// Several runs of one workload (other seeds) summarized the way our benches
    /// summarize their rounds: every percentile, share and count is the median of the
    /// runs' (the upper median for an even count); `latencies` pools every run's
    /// samples; host and executor counts are the first run's; `seed` the first seed.
    /// `None` for no runs, or runs of different workloads.
    ///
    /// ```
    /// # use clockworker::sim::{simulate, Report, Workload};
    /// # let w = Workload::from_toml(r#"
    /// # duration_ms = 20
    /// # [[queue]]
    /// # name = "q"
    /// # weight = 1
    /// # [[queue.class]]
    /// # name = "c"
    /// # arrival = { kind = "poisson", rate_per_s = 5000 }
    /// # cpu = { dist = "exponential", mean_us = 50 }
    /// # "#).unwrap();
    /// let runs: Vec<Report> = (1..=3).map(|seed| simulate(&w, seed).unwrap()).collect();
    /// let median = Report::median(&runs).unwrap();
    /// let mut p99s: Vec<_> = runs.iter().map(|r| r.queues[0].classes[0].latency.p99).collect();
    /// p99s.sort();
    /// assert_eq!(median.queues[0].classes[0].latency.p99, p99s[1]);
    /// ```
    pub fn median(runs: &[Report]) -> Option<Report> {
        let first = runs.first()?;
        let same_shape = runs.iter().all(|r| {
            r.queues.len() == first.queues.len()
                && r.queues.iter().zip(&first.queues).all(|(a, b)| {
                    a.name == b.name
                        && a.classes.len() == b.classes.len()
                        && a.classes
                            .iter()
                            .zip(&b.classes)
                            .all(|(x, y)| x.name == y.name)
                })
        });
        if !same_shape {
            return None;
        }
        let queues = first
            .queues
            .iter()
            .enumerate()
            .map(|(q, queue)| {
                let runs_q: Vec<&QueueReport> = runs.iter().map(|r| &r.queues[q]).collect();
                let classes = queue
                    .classes
                    .iter()
                    .enumerate()
                    .map(|(c, class)| {
                        let of: Vec<&ClassReport> = runs_q.iter().map(|r| &r.classes[c]).collect();
                        let pick = |f: &dyn Fn(&Percentiles) -> Duration, delay: bool| {
                            median_of(
                                of.iter()
                                    .map(|r| f(if delay { &r.queue_delay } else { &r.latency })),
                            )
                        };
                        let percentiles = |delay: bool| Percentiles {
                            p50: pick(&|p| p.p50, delay),
                            p90: pick(&|p| p.p90, delay),
                            p99: pick(&|p| p.p99, delay),
                            p999: pick(&|p| p.p999, delay),
                            max: pick(&|p| p.max, delay),
                            mean: pick(&|p| p.mean, delay),
                        };
                        let mut latencies: Vec<Duration> = of
                            .iter()
                            .flat_map(|r| r.latencies.iter().copied())
                            .collect();
                        latencies.sort_unstable();
                        ClassReport {
                            name: class.name.clone(),
                            completed: median_of(of.iter().map(|r| r.completed)),
                            unfinished: median_of(of.iter().map(|r| r.unfinished)),
                            latency: percentiles(false),
                            queue_delay: percentiles(true),
                            latencies,
                        }
                    })
                    .collect();
                let mut shares: Vec<f64> = runs_q.iter().map(|r| r.cpu_share).collect();
                shares.sort_by(f64::total_cmp);
                QueueReport {
                    name: queue.name.clone(),
                    weight: queue.weight,
                    cpu_share: shares[shares.len() / 2],
                    service_time: median_of(runs_q.iter().map(|r| r.service_time)),
                    completed: median_of(runs_q.iter().map(|r| r.completed)),
                    classes,
                }
            })
            .collect();
        Some(Report {
            seed: first.seed,
            measured: first.measured,
            wall: runs.iter().map(|r| r.wall).sum(),
            queues,
            host: first.host,
            executor: first.executor.clone(),
        })
    }

    /// The class `class` of queue `queue`, if there is one.
    ///
    /// ```
    /// # use clockworker::sim::{simulate, Workload};
    /// # let w = Workload::from_toml("duration_ms = 10\n[[queue]]\nname = \"q\"\nweight = 1\n").unwrap();
    /// let report = simulate(&w, 0).unwrap();
    /// assert!(report.class("q", "nope").is_none());
    /// ```
    pub fn class(&self, queue: &str, class: &str) -> Option<&ClassReport> {
        self.queues
            .iter()
            .find(|q| q.name == queue)?
            .classes
            .iter()
            .find(|c| c.name == class)
    }
}

/// The (upper) median of `values`; the default for none.
fn median_of<T: Ord + Copy + Default>(values: impl Iterator<Item = T>) -> T {
    let mut values: Vec<T> = values.collect();
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or_default()
}

fn class_report(name: &str, samples: ClassSamples) -> ClassReport {
    let ns = Duration::from_nanos;
    let mut latencies: Vec<Duration> = samples
        .done
        .iter()
        .map(|s| ns(s.done_ns - s.arrival_ns))
        .collect();
    let mut delays: Vec<Duration> = samples
        .done
        .iter()
        .map(|s| ns(s.first_ns - s.arrival_ns))
        .collect();
    let completed = samples.done.len() as u64;
    ClassReport {
        name: name.to_string(),
        completed,
        unfinished: samples.arrived.saturating_sub(completed),
        latency: Percentiles::of(&mut latencies),
        queue_delay: Percentiles::of(&mut delays),
        latencies,
    }
}

/// `d` in µs, to one decimal.
pub(crate) fn micros(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e6)
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "seed {}: {:.1} ms of virtual time measured; host returns {}, idle jumps {}; \
             executor polls {}, driver yields {}",
            self.seed,
            self.measured.as_secs_f64() * 1e3,
            self.host.returns,
            self.host.idle_jumps,
            self.executor.polls,
            self.executor.driver_yields
        )?;
        writeln!(
            f,
            "{:<12} {:>6} {:>9} {:>9} | {:<12} {:>9} {:>6} | {:>9} {:>9} {:>9} {:>9} | {:>9} {:>9} {:>9} {:>9}",
            "queue", "weight", "cpu share", "completed", "class", "completed", "unfin.",
            "lat p50", "lat p90", "lat p99", "lat p99.9", "delay p50", "delay p90", "delay p99",
            "delay p99.9"
        )?;
        for q in &self.queues {
            let head = format!(
                "{:<12} {:>6} {:>8.2}% {:>9}",
                q.name,
                q.weight,
                q.cpu_share * 100.0,
                q.completed
            );
            if q.classes.is_empty() {
                writeln!(f, "{head} |")?;
            }
            for c in &q.classes {
                let (l, d) = (&c.latency, &c.queue_delay);
                writeln!(
                    f,
                    "{head} | {:<12} {:>9} {:>6} | {:>9} {:>9} {:>9} {:>9} | {:>9} {:>9} {:>9} {:>9}",
                    c.name,
                    c.completed,
                    c.unfinished,
                    micros(l.p50),
                    micros(l.p90),
                    micros(l.p99),
                    micros(l.p999),
                    micros(d.p50),
                    micros(d.p90),
                    micros(d.p99),
                    micros(d.p999)
                )?;
            }
        }
        write!(f, "(latencies and delays in µs)")
    }
}
