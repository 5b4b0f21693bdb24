//! The shape of a workload file, as serde reads it. Each table is checked as it is
//! read (`try_from`), so that a rule broken across fields is reported at the table's
//! line; unknown fields are errors.

use serde::Deserialize;
use toml::Spanned;

use super::dist::{non_negative, Dist};

fn zero() -> f64 {
    0.0
}

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WorkloadSpec {
    /// Virtual time simulated, ms.
    pub(crate) duration_ms: f64,
    /// Samples of tasks that arrived before this are left out, ms.
    #[serde(default = "zero")]
    pub(crate) warmup_ms: f64,
    /// The default seed (`--seed` overrides it).
    #[serde(default)]
    pub(crate) seed: u64,
    #[serde(default)]
    pub(crate) host: HostSpec,
    #[serde(default)]
    pub(crate) executor: ExecutorSpec,
    #[serde(rename = "queue")]
    pub(crate) queues: Vec<QueueSpec>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub(crate) enum HostKind {
    /// tokio's current_thread runtime: 1 ms timer wheel.
    #[default]
    Tokio,
    /// smol, glommio: fine-grained timers.
    Fine,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HostSpec {
    #[serde(default)]
    pub(crate) model: HostKind,
    pub(crate) return_cost_us: Option<f64>,
    pub(crate) timer_resolution_us: Option<f64>,
    /// Where the timer ticks fall; drawn from the seed when not given.
    pub(crate) timer_phase_us: Option<f64>,
    /// The executor's own cost per task poll (charged inside each poll).
    #[serde(default = "zero")]
    pub(crate) poll_cost_us: f64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExecutorSpec {
    pub(crate) sched_latency_us: Option<f64>,
    pub(crate) min_slice_us: Option<f64>,
    pub(crate) driver_yield_us: Option<f64>,
    pub(crate) host_poll_interval_us: Option<f64>,
    pub(crate) lag_tolerance_us: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub(crate) enum SchedulerKind {
    #[default]
    RunnableFifo,
    ArrivalFifo,
    Las,
    LasCumulative,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "QueueFields")]
pub(crate) struct QueueSpec {
    pub(crate) name: Spanned<String>,
    pub(crate) weight: u32,
    pub(crate) scheduler: SchedulerKind,
    pub(crate) las_guard: Option<u32>,
    pub(crate) latency_bound_us: Option<f64>,
    pub(crate) classes: Vec<ClassSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QueueFields {
    name: Spanned<String>,
    weight: u32,
    #[serde(default)]
    scheduler: SchedulerKind,
    las_guard: Option<u32>,
    latency_bound_us: Option<f64>,
    #[serde(rename = "class", default)]
    classes: Vec<ClassSpec>,
}

impl TryFrom<QueueFields> for QueueSpec {
    type Error = String;

    fn try_from(q: QueueFields) -> Result<Self, String> {
        let name = q.name.get_ref();
        let las = matches!(
            q.scheduler,
            SchedulerKind::Las | SchedulerKind::LasCumulative
        );
        if q.las_guard.is_some() && !las {
            return Err(format!(
                "queue `{name}`: `las_guard` needs scheduler = \"las\" or \"las_cumulative\""
            ));
        }
        if q.latency_bound_us.is_some() && q.scheduler != SchedulerKind::RunnableFifo {
            return Err(format!(
                "queue `{name}`: a latency queue (`latency_bound_us`) runs RunnableFifo; \
                 drop `scheduler` or the bound"
            ));
        }
        if let Some(bound) = q.latency_bound_us {
            non_negative("latency_bound_us", bound)?;
        }
        let mut seen = std::collections::HashSet::new();
        for class in &q.classes {
            if !seen.insert(class.name.as_str()) {
                return Err(format!(
                    "queue `{name}`: two classes are named `{}`",
                    class.name
                ));
            }
        }
        Ok(QueueSpec {
            name: q.name,
            weight: q.weight,
            scheduler: q.scheduler,
            las_guard: q.las_guard,
            latency_bound_us: q.latency_bound_us,
            classes: q.classes,
        })
    }
}

/// How tasks of a class arrive.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub(crate) enum Arrival {
    /// Open loop, exponential gaps.
    Poisson { rate_per_s: f64 },
    /// Open loop, equal gaps.
    Constant { rate_per_s: f64 },
    /// Open loop: `size` tasks at once every `every_ms`.
    Bursts { every_ms: f64, size: u32 },
    /// Closed loop: `clients` clients, each sending its next task `think` after its
    /// last one completed.
    Closed { clients: u32, think: Dist },
    /// `tasks` tasks that run the shape over and over.
    Busy { tasks: u32 },
}

/// Where a class's tasks come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Source {
    /// Through the host (a socket): spawned when the run loop returns to the host.
    #[default]
    Host,
    /// From another thread, through a `RemoteSpawner`: in the executor's inbox as soon
    /// as it is sent, seen at the loop's next poll boundary.
    Thread,
}

/// What a task does between CPU segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Between {
    #[default]
    None,
    YieldNow,
    YieldMaybe,
    /// Waits `wait` on a host timer.
    Sleep,
}

/// A count, fixed (`3`) or uniform in a range (`[1, 3]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "CountSpec")]
pub(crate) struct Count {
    pub(crate) min: u32,
    pub(crate) max: u32,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum CountSpec {
    Fixed(u32),
    Range([u32; 2]),
}

impl TryFrom<CountSpec> for Count {
    type Error = String;

    fn try_from(spec: CountSpec) -> Result<Self, String> {
        let (min, max) = match spec {
            CountSpec::Fixed(n) => (n, n),
            CountSpec::Range([min, max]) => (min, max),
        };
        at_most("segments", max)?;
        if min == 0 || min > max {
            return Err(format!(
                "`segments` must be >= 1, and a range [min, max] with min <= max (got {min}..{max})"
            ));
        }
        Ok(Count { min, max })
    }
}

/// Most tasks a class may start at once (busy tasks, clients, a burst), and most CPU
/// segments per task: far above any workload we simulate, low enough that a typo
/// cannot exhaust memory before the run starts.
pub(crate) const MAX_COUNT: u32 = 1_000_000;

/// Highest open-loop rate: one arrival every 100 ns, ten times what one executor
/// thread can spawn.
pub(crate) const MAX_RATE_PER_S: f64 = 1e7;

fn at_most(name: &str, value: u32) -> Result<u32, String> {
    if value > MAX_COUNT {
        return Err(format!("`{name}` must be at most {MAX_COUNT}, not {value}"));
    }
    Ok(value)
}

fn one() -> Count {
    Count { min: 1, max: 1 }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "ClassFields")]
pub(crate) struct ClassSpec {
    pub(crate) name: String,
    pub(crate) arrival: Arrival,
    pub(crate) source: Source,
    pub(crate) start_ms: f64,
    pub(crate) stop_ms: Option<f64>,
    pub(crate) group: Option<String>,
    pub(crate) group_per_task: bool,
    pub(crate) segments: Count,
    pub(crate) cpu: Dist,
    pub(crate) chunk_us: Option<f64>,
    pub(crate) between: Between,
    pub(crate) wait: Option<Dist>,
    pub(crate) after: Option<Dist>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClassFields {
    name: String,
    arrival: Arrival,
    #[serde(default)]
    source: Source,
    #[serde(default = "zero")]
    start_ms: f64,
    stop_ms: Option<f64>,
    group: Option<String>,
    #[serde(default)]
    group_per_task: bool,
    #[serde(default = "one")]
    segments: Count,
    cpu: Dist,
    chunk_us: Option<f64>,
    #[serde(default)]
    between: Between,
    wait: Option<Dist>,
    after: Option<Dist>,
}

fn positive(name: &str, value: f64) -> Result<f64, String> {
    if value.is_finite() && value > 0.0 {
        Ok(value)
    } else {
        Err(format!("`{name}` must be a finite number > 0, not {value}"))
    }
}

impl TryFrom<ClassFields> for ClassSpec {
    type Error = String;

    fn try_from(c: ClassFields) -> Result<Self, String> {
        let name = &c.name;
        let within = |e: String| format!("class `{name}`: {e}");
        match c.arrival {
            Arrival::Poisson { rate_per_s } | Arrival::Constant { rate_per_s } => {
                positive("rate_per_s", rate_per_s).map_err(within)?;
                if rate_per_s > MAX_RATE_PER_S {
                    return Err(within(format!(
                        "`rate_per_s` must be at most {MAX_RATE_PER_S}, not {rate_per_s}"
                    )));
                }
            }
            Arrival::Bursts { every_ms, size } => {
                positive("every_ms", every_ms).map_err(within)?;
                at_most("size", size).map_err(within)?;
                if size == 0 {
                    return Err(within("`size` must be >= 1".into()));
                }
            }
            Arrival::Closed { clients: 0, .. } => {
                return Err(within("`clients` must be >= 1".into()));
            }
            Arrival::Busy { tasks: 0 } => {
                return Err(within("`tasks` must be >= 1".into()));
            }
            Arrival::Closed { clients, .. } => {
                at_most("clients", clients).map_err(within)?;
            }
            Arrival::Busy { tasks } => {
                at_most("tasks", tasks).map_err(within)?;
            }
        }
        non_negative("start_ms", c.start_ms).map_err(within)?;
        if let Some(stop) = c.stop_ms {
            if !(stop.is_finite() && stop > c.start_ms) {
                return Err(within(format!(
                    "`stop_ms` ({stop}) must come after `start_ms` ({})",
                    c.start_ms
                )));
            }
        }
        if c.source == Source::Thread && (c.group.is_some() || c.group_per_task) {
            return Err(within(
                "tasks from another thread (source = \"thread\") come without a group: \
                 a RemoteSpawner spawns onto a queue"
                    .into(),
            ));
        }
        if c.group.is_some() && c.group_per_task {
            return Err(within(
                "`group` and `group_per_task` exclude each other".into(),
            ));
        }
        if let Some(chunk) = c.chunk_us {
            positive("chunk_us", chunk).map_err(within)?;
        }
        match (c.between, &c.wait) {
            (Between::Sleep, None) => {
                return Err(within(
                    "between = \"sleep\" needs `wait` (a distribution)".into(),
                ))
            }
            (Between::None | Between::YieldNow | Between::YieldMaybe, Some(_)) => {
                return Err(within(
                    "`wait` is only read with between = \"sleep\"".into(),
                ))
            }
            _ => {}
        }
        let gives_back = c.between != Between::None || c.chunk_us.is_some() || c.after.is_some();
        if matches!(c.arrival, Arrival::Busy { .. }) && !gives_back {
            return Err(within(
                "busy tasks must give the thread back: set `between`, `chunk_us` or `after`".into(),
            ));
        }
        Ok(ClassSpec {
            name: c.name,
            arrival: c.arrival,
            source: c.source,
            start_ms: c.start_ms,
            stop_ms: c.stop_ms,
            group: c.group,
            group_per_task: c.group_per_task,
            segments: c.segments,
            cpu: c.cpu,
            chunk_us: c.chunk_us,
            between: c.between,
            wait: c.wait,
            after: c.after,
        })
    }
}
