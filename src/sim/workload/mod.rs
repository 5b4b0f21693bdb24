//! Workload files: the executor's settings, its queues, and per queue the classes of
//! tasks that arrive (see `docs/SIMULATION.md` for the format, field by field).

mod dist;
mod error;
pub(crate) mod spec;

use std::path::Path;
use std::time::Duration;

use toml::{Table, Value};

pub use dist::Dist;
pub use error::WorkloadError;
use error::{field_in_message, key_before, line_column};
use spec::WorkloadSpec;

use crate::ExecutorBuilder;

/// A workload read from a TOML file: checked, ready to [`simulate`](super::simulate).
///
/// ```
/// use clockworker::sim::Workload;
///
/// let workload = Workload::from_toml(r#"
///     duration_ms = 100
///     [[queue]]
///     name = "fg"
///     weight = 1
///     [[queue.class]]
///     name = "req"
///     arrival = { kind = "poisson", rate_per_s = 1000 }
///     cpu = { dist = "exponential", mean_us = 100 }
/// "#).unwrap();
/// assert_eq!(workload.queue_names(), vec!["fg"]);
/// ```
#[derive(Debug, Clone)]
pub struct Workload {
    pub(crate) spec: WorkloadSpec,
    /// The document as a table, for [`Workload::set`].
    table: Table,
}

impl Workload {
    /// Reads and checks a workload file.
    ///
    /// ```no_run
    /// let workload = clockworker::sim::Workload::load("sims/priority.toml").unwrap();
    /// ```
    pub fn load(path: impl AsRef<Path>) -> Result<Workload, WorkloadError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|error| WorkloadError::Read {
            path: path.to_path_buf(),
            error,
        })?;
        Workload::from_toml(&text)
    }

    /// Reads and checks a workload from its text. Errors name the line, and the field
    /// where it can be told.
    ///
    /// ```
    /// use clockworker::sim::Workload;
    /// let err = Workload::from_toml("duration_ms = -1\n[[queue]]\nname = \"q\"\nweight = 1\n");
    /// assert!(err.unwrap_err().to_string().contains("line 1"));
    /// ```
    pub fn from_toml(text: &str) -> Result<Workload, WorkloadError> {
        let spec: WorkloadSpec = toml::from_str(text).map_err(|e| invalid(text, &e))?;
        let table: Table = text.parse().map_err(|e| invalid(text, &e))?;
        check(text, &spec)?;
        let workload = Workload { spec, table };
        // The builder's own rules (min_slice <= sched_latency, weights in range, ...).
        workload
            .builder()
            .build()
            .map_err(WorkloadError::Settings)?;
        Ok(workload)
    }

    /// The seed the file gives (0 if none).
    ///
    /// ```
    /// # let w = clockworker::sim::Workload::from_toml("duration_ms = 1\nseed = 9\n[[queue]]\nname = \"q\"\nweight = 1\n").unwrap();
    /// assert_eq!(w.seed(), 9);
    /// ```
    pub fn seed(&self) -> u64 {
        self.spec.seed
    }

    /// The virtual time a run simulates.
    ///
    /// ```
    /// # let w = clockworker::sim::Workload::from_toml("duration_ms = 1\n[[queue]]\nname = \"q\"\nweight = 1\n").unwrap();
    /// assert_eq!(w.duration(), std::time::Duration::from_millis(1));
    /// ```
    pub fn duration(&self) -> Duration {
        ms(self.spec.duration_ms)
    }

    /// The queues' names, in the file's order.
    ///
    /// ```
    /// # let w = clockworker::sim::Workload::from_toml("duration_ms = 1\n[[queue]]\nname = \"q\"\nweight = 1\n").unwrap();
    /// assert_eq!(w.queue_names(), vec!["q"]);
    /// ```
    pub fn queue_names(&self) -> Vec<&str> {
        self.spec
            .queues
            .iter()
            .map(|q| q.name.get_ref().as_str())
            .collect()
    }

    /// Sets one setting, named by its path in the file (`executor.sched_latency_us`,
    /// `queue.fg.weight`, `queue.fg.class.req.arrival.rate_per_s`: an array of tables
    /// is indexed by its elements' `name`), to `value` written as in TOML (`8`,
    /// `"las"`; a bare word is taken as a string). The workload is checked again.
    ///
    /// ```
    /// use clockworker::sim::Workload;
    /// let mut w = Workload::from_toml(
    ///     "duration_ms = 1\n[[queue]]\nname = \"fg\"\nweight = 1\n").unwrap();
    /// w.set("duration_ms", "20").unwrap();
    /// assert_eq!(w.duration(), std::time::Duration::from_millis(20));
    /// assert!(w.set("queue.nope.weight", "2").is_err());
    /// ```
    pub fn set(&mut self, param: &str, value: &str) -> Result<(), WorkloadError> {
        let sweep_error = |message: String| WorkloadError::Sweep {
            param: param.to_string(),
            message,
        };
        let value = parse_value(value);
        let mut table = self.table.clone();
        set_path(&mut table, param, value).map_err(sweep_error)?;
        let text = toml::to_string(&table).map_err(|e| sweep_error(e.to_string()))?;
        let changed = Workload::from_toml(&text).map_err(|e| sweep_error(e.to_string()))?;
        *self = changed;
        Ok(())
    }

    /// Builds the executor the workload describes (queue keys are queue indices).
    pub(crate) fn builder(&self) -> ExecutorBuilder<usize> {
        use crate::scheduler::{ArrivalFifo, RunnableFifo, LAS};
        use spec::SchedulerKind;
        let mut b = ExecutorBuilder::new();
        let e = &self.spec.executor;
        if let Some(v) = e.sched_latency_us {
            b = b.with_sched_latency(us(v));
        }
        if let Some(v) = e.min_slice_us {
            b = b.with_min_slice(us(v));
        }
        if let Some(v) = e.driver_yield_us {
            b = b.with_driver_yield(us(v));
        }
        if let Some(v) = e.host_poll_interval_us {
            b = b.with_host_poll_interval(us(v));
        }
        if let Some(v) = e.lag_tolerance_us {
            b = b.with_lag_tolerance(us(v));
        }
        for (i, q) in self.spec.queues.iter().enumerate() {
            let las = |las: LAS| match q.las_guard {
                Some(every) => las.with_starvation_guard(every),
                None => las,
            };
            b = match (q.latency_bound_us, q.scheduler) {
                (Some(bound), _) => b.with_queue_latency(i, q.weight, us(bound)),
                (None, SchedulerKind::RunnableFifo) => {
                    b.with_queue_scheduler(i, q.weight, RunnableFifo::new())
                }
                (None, SchedulerKind::ArrivalFifo) => {
                    b.with_queue_scheduler(i, q.weight, ArrivalFifo::new())
                }
                (None, SchedulerKind::Las) => b.with_queue_scheduler(i, q.weight, las(LAS::new())),
                (None, SchedulerKind::LasCumulative) => {
                    b.with_queue_scheduler(i, q.weight, las(LAS::cumulative()))
                }
            };
        }
        b
    }
}

/// `v` µs as a `Duration` (checked finite and >= 0 before).
pub(crate) fn us(v: f64) -> Duration {
    Duration::from_nanos((v * 1e3).round().clamp(0.0, 1e18) as u64)
}

/// `v` ms as a `Duration`.
pub(crate) fn ms(v: f64) -> Duration {
    us(v * 1e3)
}

/// Longest run: an hour of virtual time (a busy workload simulates about 300× faster
/// than real time, so this is minutes of wall time, not days).
const MAX_MS: f64 = 3_600_000.0;

/// A TOML error as a `WorkloadError::Invalid`.
fn invalid(text: &str, e: &toml::de::Error) -> WorkloadError {
    let start = e.span().map_or(0, |s| s.start);
    let (line, column) = line_column(text, start);
    let message = e.message().to_string();
    let field = field_in_message(&message).or_else(|| key_before(text, start));
    WorkloadError::Invalid {
        line,
        column,
        field,
        message,
    }
}

/// The rules that span the whole file.
fn check(text: &str, spec: &WorkloadSpec) -> Result<(), WorkloadError> {
    let at_key = |key: &str, message: String| {
        let offset = text.find(key).unwrap_or(0);
        let (line, column) = line_column(text, offset);
        WorkloadError::Invalid {
            line,
            column,
            field: Some(key.to_string()),
            message,
        }
    };
    if !(spec.duration_ms.is_finite() && spec.duration_ms > 0.0 && spec.duration_ms <= MAX_MS) {
        return Err(at_key(
            "duration_ms",
            format!(
                "must be a number > 0 and at most {MAX_MS} (an hour of virtual time), not {}",
                spec.duration_ms
            ),
        ));
    }
    if !(spec.warmup_ms.is_finite() && spec.warmup_ms >= 0.0 && spec.warmup_ms < spec.duration_ms) {
        return Err(at_key(
            "warmup_ms",
            format!("must be >= 0 and below duration_ms, not {}", spec.warmup_ms),
        ));
    }
    let numbers = [
        ("return_cost_us", spec.host.return_cost_us),
        ("timer_resolution_us", spec.host.timer_resolution_us),
        ("timer_phase_us", spec.host.timer_phase_us),
        ("poll_cost_us", Some(spec.host.poll_cost_us)),
        ("sched_latency_us", spec.executor.sched_latency_us),
        ("min_slice_us", spec.executor.min_slice_us),
        ("driver_yield_us", spec.executor.driver_yield_us),
        ("host_poll_interval_us", spec.executor.host_poll_interval_us),
        ("lag_tolerance_us", spec.executor.lag_tolerance_us),
    ];
    for (key, value) in numbers {
        if let Some(v) = value {
            if !(v.is_finite() && v >= 0.0) {
                return Err(at_key(
                    key,
                    format!("must be a finite number >= 0, not {v}"),
                ));
            }
        }
    }
    if spec.queues.is_empty() {
        return Err(WorkloadError::Invalid {
            line: 1,
            column: 1,
            field: Some("queue".into()),
            message: "a workload needs at least one [[queue]]".into(),
        });
    }
    for (i, q) in spec.queues.iter().enumerate() {
        let earlier = spec.queues[..i]
            .iter()
            .any(|p| p.name.get_ref() == q.name.get_ref());
        if earlier {
            let (line, column) = line_column(text, q.name.span().start);
            return Err(WorkloadError::Invalid {
                line,
                column,
                field: Some("name".into()),
                message: format!("two queues are named `{}`", q.name.get_ref()),
            });
        }
    }
    Ok(())
}

/// A value as written on the command line: TOML if it parses, else a string.
fn parse_value(text: &str) -> Value {
    format!("v = {text}")
        .parse::<Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| Value::String(text.to_string()))
}

/// Sets `path` (dot-separated; an array of tables is indexed by `name`) in `table`.
fn set_path(table: &mut Table, path: &str, value: Value) -> Result<(), String> {
    let parts: Vec<&str> = path.split('.').collect();
    let (last, walk) = parts.split_last().ok_or("empty setting")?;
    let mut here = table;
    for (i, part) in walk.iter().enumerate() {
        let next = here
            .entry(part.to_string())
            .or_insert_with(|| Value::Table(Table::new()));
        here = match next {
            Value::Table(t) => t,
            Value::Array(items) => return set_in_array(items, &parts[i + 1..], value),
            _ => return Err(format!("`{part}` is not a table")),
        };
    }
    here.insert(last.to_string(), value);
    Ok(())
}

/// `rest[0]` names an element of `items` (by its `name`); the rest is set inside it.
fn set_in_array(items: &mut [Value], rest: &[&str], value: Value) -> Result<(), String> {
    let (name, inner) = rest.split_first().ok_or("an array needs an element name")?;
    let item = items
        .iter_mut()
        .find(|item| item.get("name").and_then(Value::as_str) == Some(name))
        .ok_or_else(|| format!("no element named `{name}`"))?;
    let Value::Table(t) = item else {
        return Err(format!("`{name}` is not a table"));
    };
    if inner.is_empty() {
        return Err(format!("name a field of `{name}`"));
    }
    set_path(t, &inner.join("."), value)
}
