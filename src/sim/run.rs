//! Running a workload: the executor it describes, on a [`Host`], with its classes'
//! tasks arriving as the file says; every task's arrival, first poll and end recorded.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::clock::virtual_time;
use crate::{yield_maybe, yield_now, QueueHandle, QueueStats, RemoteSpawner};

use super::report::{ClassSamples, Report, Sample};
use super::time::burn as burn_cpu;
use super::workload::spec::{Arrival, Between, ClassSpec, Source};
use super::workload::{ms, us, Workload, WorkloadError};
use super::{call_at, call_from_thread_at, cpu, sleep, Host, HostModel, Rng};

/// Runs `workload` with `seed` on a new [`Host`] of this thread and reports what each
/// queue and class saw. One seed gives one report, bit for bit.
///
/// ```
/// use clockworker::sim::{simulate, Workload};
///
/// let workload = Workload::from_toml(r#"
///     duration_ms = 200
///     [[queue]]
///     name = "fg"
///     weight = 1
///     [[queue.class]]
///     name = "req"
///     arrival = { kind = "constant", rate_per_s = 1000 }
///     cpu = { dist = "fixed", us = 100 }
/// "#).unwrap();
/// let report = simulate(&workload, 1).unwrap();
/// let class = &report.queues[0].classes[0];
/// assert!(class.completed >= 199);
/// assert_eq!(class.latency.p50, std::time::Duration::from_micros(100));
/// ```
pub fn simulate(workload: &Workload, seed: u64) -> Result<Report, WorkloadError> {
    let spec = &workload.spec;
    let mut model = match spec.host.model {
        super::workload::spec::HostKind::Tokio => HostModel::tokio(),
        super::workload::spec::HostKind::Fine => HostModel::fine(),
    };
    if let Some(v) = spec.host.return_cost_us {
        model = model.with_return_cost(us(v));
    }
    if let Some(v) = spec.host.timer_resolution_us {
        model = model.with_timer_resolution(us(v));
    }
    let root = Rng::new(seed);
    // A real host's timer ticks count from its own start: unless the file fixes it,
    // where they fall against the arrivals is drawn from the seed.
    let phase = match spec.host.timer_phase_us {
        Some(v) => us(v),
        None => model.timer_resolution.mul_f64(root.fork(u64::MAX).unit()),
    };
    model = model.with_timer_phase(phase);
    let host = Host::new(model).map_err(WorkloadError::Host)?;
    let executor = workload
        .builder()
        .build()
        .map_err(WorkloadError::Settings)?;
    let end = workload.duration();
    let warmup = ms(spec.warmup_ms);
    let mut classes = Vec::new();
    for (q, queue) in spec.queues.iter().enumerate() {
        let handle = executor.queue(q).map_err(WorkloadError::Spawn)?;
        for class in &queue.classes {
            let index = classes.len() as u64;
            let rt = Rc::new(ClassRt {
                spec: class.clone(),
                queue: handle.clone(),
                queue_index: q,
                remote: executor.remote(),
                shared_group: class.group.as_ref().map(|g| handle.group(g)),
                shapes: RefCell::new(root.fork(index)),
                samples: RefCell::new(ClassSamples::default()),
                poll_cost: us(spec.host.poll_cost_us),
                warmup_ns: nanos(warmup),
                stop_ns: class
                    .stop_ms
                    .map_or(nanos(end), |s| nanos(ms(s)).min(nanos(end))),
                next_task: Cell::new(0),
            });
            start(&rt, root.fork(1_000_000 + index))?;
            classes.push(rt);
        }
    }
    let before: Rc<RefCell<Option<Vec<QueueStats<usize>>>>> = Rc::default();
    if warmup > Duration::ZERO {
        let (ex, b) = (executor.clone(), before.clone());
        let n = spec.queues.len();
        call_at(warmup, move || {
            *b.borrow_mut() = Some((0..n).filter_map(|q| ex.queue_stats(q)).collect());
        })
        .map_err(WorkloadError::Host)?;
    }
    let wall = std::time::Instant::now();
    let _ = host.run(executor.run(), end);
    let wall = wall.elapsed();
    let after: Vec<QueueStats<usize>> = (0..spec.queues.len())
        .filter_map(|q| executor.queue_stats(q))
        .collect();
    let before = before.borrow_mut().take();
    let report = Report::new(
        workload,
        seed,
        end.saturating_sub(warmup),
        wall,
        before.as_deref(),
        &after,
        classes.iter().map(|c| c.samples.take()).collect(),
        host.stats(),
        executor.stats(),
    );
    // Tasks hold queue handles, which hold the executor: cancel them to free it.
    executor.shutdown();
    drop(classes);
    drop(executor);
    drop(host);
    Ok(report)
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A class while it runs.
struct ClassRt {
    spec: ClassSpec,
    queue: QueueHandle<usize>,
    queue_index: usize,
    /// Spawns the tasks of `source = "thread"` classes, as another thread would.
    remote: RemoteSpawner<usize>,
    shared_group: Option<QueueHandle<usize>>,
    /// Draws the tasks' shapes, in order of arrival.
    shapes: RefCell<Rng>,
    samples: RefCell<ClassSamples>,
    poll_cost: Duration,
    warmup_ns: u64,
    /// No arrivals from here on; busy tasks stop.
    stop_ns: u64,
    next_task: Cell<u64>,
}

/// One task's shape: its CPU segments and what it waits between and after them.
struct Plan {
    segments: Vec<Duration>,
    waits: Vec<Duration>,
    after: Option<Duration>,
}

impl ClassRt {
    fn draw(&self, rng: &mut Rng) -> Plan {
        let s = &self.spec;
        let n = rng.between(u64::from(s.segments.min), u64::from(s.segments.max));
        let segments = (0..n).map(|_| s.cpu.sample(rng)).collect();
        let waits = match &s.wait {
            Some(wait) => (1..n).map(|_| wait.sample(rng)).collect(),
            None => Vec::new(),
        };
        let after = s.after.map(|a| a.sample(rng));
        Plan {
            segments,
            waits,
            after,
        }
    }

    /// The handle a new task is spawned with (its queue, and its group if any).
    fn handle(&self) -> QueueHandle<usize> {
        let n = self.next_task.get();
        self.next_task.set(n + 1);
        match (&self.shared_group, self.spec.group_per_task) {
            (Some(group), _) => group.clone(),
            (None, true) => self.queue.group(n),
            (None, false) => self.queue.clone(),
        }
    }

    fn record(&self, sample: Sample) {
        if sample.arrival_ns >= self.warmup_ns {
            self.samples.borrow_mut().done.push(sample);
        }
    }

    fn arrived(&self, at_ns: u64) {
        if at_ns >= self.warmup_ns {
            self.samples.borrow_mut().arrived += 1;
        }
    }
}

/// Schedules the class's first arrivals (or its busy tasks).
fn start(class: &Rc<ClassRt>, rng: Rng) -> Result<(), WorkloadError> {
    let start_ns = nanos(ms(class.spec.start_ms));
    if start_ns >= class.stop_ns {
        return Ok(());
    }
    let at = Duration::from_nanos(start_ns);
    let c = class.clone();
    let scheduled = match class.spec.arrival {
        Arrival::Busy { tasks } => call_at(at, move || {
            for _ in 0..tasks {
                let task_rng = c.shapes.borrow_mut().fork(c.next_task.get());
                let handle = c.handle();
                handle.spawn(Charged::new(c.poll_cost, busy(c.clone(), task_rng)));
            }
        }),
        Arrival::Closed { clients, think } => {
            for i in 0..clients {
                // Each client its own stream; they start spread over one think time.
                let mut client = rng.fork(u64::from(i));
                let first = start_ns.saturating_add(nanos(think.sample(&mut client)));
                let c = class.clone();
                let client = Rc::new(RefCell::new(client));
                let at = Duration::from_nanos(first);
                arrive_at(c.spec.source, at, move || send(&c, first, Some(client)))
                    .map_err(WorkloadError::Host)?;
            }
            Ok(())
        }
        _ => arrive_at(class.spec.source, at, move || open_loop(c, rng, start_ns)),
    };
    scheduled.map_err(WorkloadError::Host)
}

/// An open-loop source: sends what is due at `at_ns`, then schedules its next send.
fn open_loop(class: Rc<ClassRt>, mut rng: Rng, at_ns: u64) {
    let (count, gap_ns) = match class.spec.arrival {
        Arrival::Poisson { rate_per_s } => {
            let mean = 1e9 / rate_per_s;
            (1, (-mean * (1.0 - rng.unit()).ln()) as u64)
        }
        Arrival::Constant { rate_per_s } => (1, (1e9 / rate_per_s) as u64),
        Arrival::Bursts { every_ms, size } => (size, (every_ms * 1e6) as u64),
        Arrival::Closed { .. } | Arrival::Busy { .. } => return,
    };
    for _ in 0..count {
        send(&class, at_ns, None);
    }
    let next = at_ns.saturating_add(gap_ns.max(1));
    if next < class.stop_ns {
        let c = class.clone();
        let at = Duration::from_nanos(next);
        let _ = arrive_at(class.spec.source, at, move || open_loop(c, rng, next));
    }
}

/// Spawns one task of `class`, sent at `arrival_ns` (the host delivers it now, which
/// may be later: its latency counts from when it was sent); a closed-loop `client`
/// sends its next one a think time after this one ends.
fn send(class: &Rc<ClassRt>, arrival_ns: u64, client: Option<Rc<RefCell<Rng>>>) {
    class.arrived(arrival_ns);
    let plan = class.draw(&mut class.shapes.borrow_mut());
    let c = class.clone();
    let task = Charged::new(class.poll_cost, async move {
        let first_ns = virtual_time::now_ns();
        run_plan(&c.spec, &plan).await;
        let done_ns = virtual_time::now_ns();
        c.record(Sample {
            arrival_ns,
            first_ns,
            done_ns,
        });
        if let (Some(client), Arrival::Closed { think, .. }) = (client, c.spec.arrival) {
            let next = done_ns.saturating_add(nanos(think.sample(&mut client.borrow_mut())));
            if next < c.stop_ns {
                let c2 = c.clone();
                let at = Duration::from_nanos(next);
                let _ = arrive_at(c2.spec.source, at, move || send(&c2, next, Some(client)));
            }
        }
    });
    match class.spec.source {
        Source::Host => drop(class.handle().spawn(task)),
        Source::Thread => {
            // Detached, as a dispatcher would; an error means the executor shut down.
            let _ = class.remote.spawn(class.queue_index, Relay::new(task));
        }
    }
}

/// Schedules an arrival of a class whose tasks come from `source`.
fn arrive_at(
    source: Source,
    at: Duration,
    call: impl FnOnce() + 'static,
) -> Result<(), super::HostError> {
    match source {
        Source::Host => call_at(at, call),
        Source::Thread => call_from_thread_at(at, call),
    }
}

/// A task of a `source = "thread"` class while it crosses the `RemoteSpawner`.
type RelayedTask = Pin<Box<dyn Future<Output = ()>>>;

thread_local! {
    /// The tasks of `source = "thread"` classes on their way through a
    /// `RemoteSpawner`, by key: the spawner wants a `Send` future, so what crosses it
    /// is a [`Relay`] holding only the key, and the task itself stays on this thread.
    static RELAYED: RefCell<HashMap<u64, RelayedTask>> =
        RefCell::new(HashMap::new());
    static NEXT_RELAY: Cell<u64> = const { Cell::new(0) };
}

/// The `Send` stand-in for a task sent from another (simulated) thread: polls the task
/// it names in [`RELAYED`], on the executor's thread, which is the simulation's.
struct Relay(u64);

impl Relay {
    fn new(task: impl Future<Output = ()> + 'static) -> Self {
        let key = NEXT_RELAY.with(|next| {
            let key = next.get();
            next.set(key + 1);
            key
        });
        RELAYED.with(|tasks| tasks.borrow_mut().insert(key, Box::pin(task)));
        Relay(key)
    }
}

impl Future for Relay {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // Out of the table while it runs: the task may send others meanwhile.
        let Some(mut task) = RELAYED.with(|tasks| tasks.borrow_mut().remove(&self.0)) else {
            return Poll::Ready(());
        };
        let poll = task.as_mut().poll(cx);
        if poll.is_pending() {
            RELAYED.with(|tasks| tasks.borrow_mut().insert(self.0, task));
        }
        poll
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        // A cancelled relay drops its task here (outside the table's borrow).
        let task = RELAYED
            .try_with(|tasks| tasks.borrow_mut().remove(&self.0))
            .ok()
            .flatten();
        drop(task);
    }
}

/// A busy task: runs shapes back to back (with `between` after every segment) until
/// its class stops; each shape is recorded as one completion.
async fn busy(class: Rc<ClassRt>, mut rng: Rng) {
    loop {
        let start_ns = virtual_time::now_ns();
        if start_ns >= class.stop_ns {
            return;
        }
        let plan = class.draw(&mut rng);
        for (i, segment) in plan.segments.iter().enumerate() {
            burn(*segment, class.spec.chunk_us.map(us)).await;
            let wait = plan.waits.get(i).copied().unwrap_or_else(|| {
                class
                    .spec
                    .wait
                    .map_or(Duration::ZERO, |w| w.sample(&mut rng))
            });
            between(class.spec.between, wait).await;
        }
        if let Some(after) = plan.after {
            sleep(after).await;
        }
        class.record(Sample {
            arrival_ns: start_ns,
            first_ns: start_ns,
            done_ns: virtual_time::now_ns(),
        });
    }
}

/// A request's shape: segments with `between` among them, then the `after` wait.
async fn run_plan(spec: &ClassSpec, plan: &Plan) {
    for (i, segment) in plan.segments.iter().enumerate() {
        if i > 0 {
            let wait = plan.waits.get(i - 1).copied().unwrap_or_default();
            between(spec.between, wait).await;
        }
        burn(*segment, spec.chunk_us.map(us)).await;
    }
    if let Some(after) = plan.after {
        sleep(after).await;
    }
}

/// `d` of CPU; in `chunk`s with `yield_maybe` after each when `chunk` is set (as CPU
/// work is written for clockworker).
async fn burn(d: Duration, chunk: Option<Duration>) {
    let Some(chunk) = chunk else {
        cpu(d).await;
        return;
    };
    let mut left = d;
    while !left.is_zero() {
        let step = left.min(chunk);
        cpu(step).await;
        left -= step;
        yield_maybe().await;
    }
}

async fn between(how: Between, wait: Duration) {
    match how {
        Between::None => {}
        Between::YieldNow => yield_now().await,
        Between::YieldMaybe => yield_maybe().await,
        Between::Sleep => sleep(wait).await,
    }
}

pin_project_lite::pin_project! {
    /// A task's future with the executor's own cost per poll charged at each poll.
    struct Charged<F> {
        cost_ns: u64,
        #[pin]
        future: F,
    }
}

impl<F> Charged<F> {
    fn new(cost: Duration, future: F) -> Self {
        Charged {
            cost_ns: nanos(cost),
            future,
        }
    }
}

impl<F: Future> Future for Charged<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        burn_cpu(*this.cost_ns);
        this.future.poll(cx)
    }
}
