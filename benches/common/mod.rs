//! What every bench of clockworker shares: quick mode, a fixed-seed PRNG, busy-spinning,
//! percentiles and medians, the interleaved-round runner, and the output (a markdown
//! table on stdout, CSV and SVG under `target/clockworker-bench/`).
//!
//! Each bench includes this file with `#[path = "common/mod.rs"] mod common;` and uses
//! only part of it.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------
// clockworker, as most benches build it

/// An executor with one queue (key 0, weight 1, the default FIFO scheduler) and that
/// queue's handle.
pub fn one_queue_executor() -> (
    std::rc::Rc<clockworker::Executor<u8>>,
    clockworker::QueueHandle<u8>,
) {
    let executor = clockworker::ExecutorBuilder::new()
        .with_queue(0u8, 1)
        .build()
        .expect("executor");
    let queue = executor.queue(0).expect("queue");
    (executor, queue)
}

/// A tokio `current_thread` runtime with every driver on: how the benches host tokio
/// (and clockworker inside it).
pub fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// A yield that works under every executor, and in the future a host drives: wakes
/// itself and returns `Pending` once. A plain struct, so that a task's body awaiting it
/// costs the same on every executor.
pub struct NeutralYield(bool);

impl NeutralYield {
    pub fn new() -> Self {
        NeutralYield(false)
    }
}

impl std::future::Future for NeutralYield {
    type Output = ();
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if self.0 {
            return std::task::Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    }
}

// ---------------------------------------------------------------------------------
// glommio, the speed anchor

/// A glommio executor for this thread (its own io_uring runtime), or why it cannot
/// start here: benches print the reason and skip glommio's row.
#[cfg(all(target_os = "linux", not(any(loom, miri))))]
pub fn glommio_executor() -> Result<glommio::LocalExecutor, String> {
    glommio::LocalExecutorBuilder::default()
        .make()
        .map_err(|e| format!("glommio cannot start here (io_uring or locked memory): {e}"))
}

/// glommio is a dev-dependency on Linux only.
#[cfg(not(all(target_os = "linux", not(any(loom, miri)))))]
pub fn glommio_executor() -> Result<std::convert::Infallible, String> {
    Err("glommio is a dev-dependency on Linux only".to_string())
}

// ---------------------------------------------------------------------------------
// Quick mode

/// True when `CW_BENCH_QUICK` is set to anything but `0` or the empty string: CI runs
/// every bench this way, for seconds instead of minutes.
pub fn quick() -> bool {
    std::env::var("CW_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// `full` normally, `quick` in quick mode.
pub fn pick<T>(full: T, quick_value: T) -> T {
    if quick() {
        quick_value
    } else {
        full
    }
}

/// A `usize` from the environment, or `default`.
pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

// ---------------------------------------------------------------------------------
// Randomness: xorshift64*, seeded, no dependency

/// A small deterministic PRNG (xorshift64*): the same seed gives the same workload on
/// every run and every machine.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        // Spread the seed's bits and keep the state away from zero, which xorshift
        // never leaves.
        let mut state = seed ^ 0x9E37_79B9_7F4A_7C15;
        state = state.wrapping_mul(0xBF58_476D_1CE4_E5B9);
        Rng(state | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// A duration of `lo..=hi` microseconds, uniform.
    pub fn micros(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_micros(self.between(lo, hi))
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Exponentially distributed with the given mean (Poisson arrivals).
    pub fn exponential(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.unit()).ln()
    }
}

// ---------------------------------------------------------------------------------
// CPU work and the allocator

/// Burns the CPU for `d` of wall time, reading `Instant::now()` in a loop.
pub fn spin(d: Duration) {
    let end = Instant::now() + d;
    while Instant::now() < end {
        std::hint::spin_loop();
    }
}

/// Sleeps the calling thread until `deadline` (used by the load generators, which run
/// on their own thread and send at absolute times so that lateness does not add up).
pub fn sleep_until(deadline: Instant) {
    let now = Instant::now();
    if deadline > now {
        std::thread::sleep(deadline - now);
    }
}

/// Built with `RUSTFLAGS="--cfg bench_mimalloc"`, every configuration of every bench
/// allocates from mimalloc: a like-for-like comparison where glibc's allocator, which
/// every executor here calls once or twice per task, does not weigh in
/// (docs/OVERHEAD_ANALYSIS.md, eighth session: "the allocator's share").
#[cfg(bench_mimalloc)]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Keeps glibc from trimming the heap or using mmap for large blocks, so one
/// configuration's frees do not make the next one pay for page faults
/// (docs/PROFILING.md, "Measuring wall time on a shared machine"). Call first thing
/// in `main`, before any thread exists. Says so when the benches run on mimalloc
/// instead (`bench_mimalloc`), whose figures are not comparable with glibc's.
pub fn keep_heap() {
    #[cfg(bench_mimalloc)]
    println!("allocator: mimalloc (built with --cfg bench_mimalloc)");
    // SAFETY: mallopt only changes glibc allocator tunables; no other thread exists yet.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
        libc::mallopt(libc::M_MMAP_THRESHOLD, i32::MAX);
        libc::mallopt(libc::M_TOP_PAD, 64 << 20);
    }
}

// ---------------------------------------------------------------------------------
// Statistics

/// The latency percentiles every bench reports, with their column names.
pub const PERCENTILES: [(&str, f64); 4] = [
    ("p50", 0.50),
    ("p90", 0.90),
    ("p99", 0.99),
    ("p99.9", 0.999),
];

/// Nearest-rank percentile of sorted `xs` (`q` in 0..=1); NaN when empty.
pub fn percentile_sorted(xs: &[f64], q: f64) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    let rank = (q * xs.len() as f64).ceil().max(1.0) as usize;
    xs[rank.min(xs.len()) - 1]
}

/// p50, p90, p99 and p99.9 of `xs` (sorted in place).
pub fn percentiles(xs: &mut [f64]) -> [f64; 4] {
    xs.sort_by(f64::total_cmp);
    PERCENTILES.map(|(_, q)| percentile_sorted(xs, q))
}

/// Median of `xs` (the upper one for an even count); NaN when empty.
pub fn median(xs: &[f64]) -> f64 {
    let mut v: Vec<f64> = xs.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Element-wise median of equally long arrays (one per round).
pub fn median_each<const N: usize>(rounds: &[[f64; N]]) -> [f64; N] {
    std::array::from_fn(|i| median(&rounds.iter().map(|r| r[i]).collect::<Vec<_>>()))
}

pub fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

// ---------------------------------------------------------------------------------
// Interleaved rounds

/// Runs every configuration once per round, rotating which one goes first, after one
/// discarded warm-up sample each (when `warm_up`). `sample(config, round)` measures one
/// sample (round is `None` for the warm-up); the result is `samples[config][round]`.
///
/// Interleaving spreads slow drift of the machine (other tenants, frequency, the
/// allocator's state) over all configurations instead of charging it to whichever
/// ran last.
pub fn interleaved<S>(
    names: &[&str],
    rounds: usize,
    warm_up: bool,
    mut sample: impl FnMut(usize, Option<usize>) -> S,
) -> Vec<Vec<S>> {
    let n = names.len();
    if warm_up {
        for (c, name) in names.iter().enumerate() {
            eprintln!("  warm-up: {name}");
            drop(sample(c, None));
        }
    }
    let mut out: Vec<Vec<S>> = (0..n).map(|_| Vec::with_capacity(rounds)).collect();
    for round in 0..rounds {
        eprintln!("  round {}/{rounds}", round + 1);
        for i in 0..n {
            let c = (i + round) % n;
            out[c].push(sample(c, Some(round)));
        }
    }
    out
}

// ---------------------------------------------------------------------------------
// Tables and CSV

/// One cell: text, or a number shown with `decimals` places (CSV gets full precision).
#[derive(Debug, Clone)]
pub enum Cell {
    Text(String),
    Num(f64, usize),
}

impl Cell {
    pub fn text(s: impl Into<String>) -> Self {
        Cell::Text(s.into())
    }

    pub fn num(v: f64, decimals: usize) -> Self {
        Cell::Num(v, decimals)
    }

    fn display(&self) -> String {
        match self {
            Cell::Text(s) => s.clone(),
            Cell::Num(v, _) if v.is_nan() => "–".to_string(),
            Cell::Num(v, d) => group_thousands(&format!("{v:.d$}")),
        }
    }

    fn csv(&self) -> String {
        match self {
            Cell::Text(s) if s.contains([',', '"', '\n']) => {
                format!("\"{}\"", s.replace('"', "\"\""))
            }
            Cell::Text(s) => s.clone(),
            Cell::Num(v, _) if v.is_nan() => String::new(),
            Cell::Num(v, _) => format!("{v}"),
        }
    }
}

/// `1234567.8` → `1,234,567.8`.
fn group_thousands(s: &str) -> String {
    let (sign, rest) = s.strip_prefix('-').map_or(("", s), |r| ("-", r));
    let (int, frac) = rest
        .split_once('.')
        .map_or((rest, None), |(i, f)| (i, Some(f)));
    if int.len() <= 4 || !int.bytes().all(|b| b.is_ascii_digit()) {
        return s.to_string();
    }
    let mut out = String::new();
    for (i, ch) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    match frac {
        Some(f) => format!("{sign}{out}.{f}"),
        None => format!("{sign}{out}"),
    }
}

/// A table printed as markdown and saved as CSV.
#[derive(Debug, Clone)]
pub struct Table {
    pub title: String,
    pub headers: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
}

impl Table {
    pub fn new(title: impl Into<String>, headers: &[&str]) -> Self {
        Table {
            title: title.into(),
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<Cell>) {
        assert_eq!(
            cells.len(),
            self.headers.len(),
            "row width of {:?}",
            self.title
        );
        self.rows.push(cells);
    }

    /// Prints the table as markdown on stdout (first column left-aligned, the others
    /// right-aligned).
    pub fn print(&self) {
        let mut s = String::new();
        let _ = writeln!(s, "\n{}\n", self.title);
        let _ = writeln!(s, "| {} |", self.headers.join(" | "));
        let align: Vec<&str> = (0..self.headers.len())
            .map(|i| if i == 0 { "---" } else { "---:" })
            .collect();
        let _ = writeln!(s, "|{}|", align.join("|"));
        for row in &self.rows {
            let cells: Vec<String> = row.iter().map(Cell::display).collect();
            let _ = writeln!(s, "| {} |", cells.join(" | "));
        }
        print!("{s}");
        let _ = std::io::stdout().flush();
    }

    /// Writes the table as CSV to `target/clockworker-bench/<file>` and returns the path.
    pub fn write_csv(&self, file: &str) -> PathBuf {
        let mut s = self.headers.join(",");
        s.push('\n');
        for row in &self.rows {
            let cells: Vec<String> = row.iter().map(Cell::csv).collect();
            s.push_str(&cells.join(","));
            s.push('\n');
        }
        write_output(file, s.as_bytes())
    }
}

/// Where the benches write their CSV and SVG files: `CW_BENCH_OUT` if set, else
/// `clockworker-bench/` in the cargo target directory the bench was built into
/// (`target/` by default).
pub fn out_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CW_BENCH_OUT") {
        return PathBuf::from(dir);
    }
    // The executable lives in <target>/<profile>/deps/.
    let target = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.to_path_buf()))
        .unwrap_or_else(|| PathBuf::from("target"));
    target.join("clockworker-bench")
}

/// Writes `bytes` to `out_dir()/file`, creating the directory; returns the path.
pub fn write_output(file: &str, bytes: &[u8]) -> PathBuf {
    let dir = out_dir();
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    let path = dir.join(file);
    std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    path
}

// ---------------------------------------------------------------------------------
// Charts (plotters, SVG backend)

/// One named series of values, one value per category of its panel.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub values: Vec<f64>,
}

impl Series {
    pub fn new(name: impl Into<String>, values: Vec<f64>) -> Self {
        Series {
            name: name.into(),
            values,
        }
    }
}

/// A grouped bar chart: for each category, one bar per series.
#[derive(Debug, Clone)]
pub struct Panel {
    pub title: String,
    pub y_label: String,
    pub categories: Vec<String>,
    pub series: Vec<Series>,
    /// Logarithmic y axis (latencies spanning decades).
    pub log_y: bool,
}

const COLORS: [(u8, u8, u8); 8] = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
];

/// Draws `panels` one above the other into `target/clockworker-bench/<file>` (SVG).
pub fn bar_chart(file: &str, title: &str, panels: &[Panel]) -> PathBuf {
    let dir = out_dir();
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    let path = dir.join(file);
    if let Err(e) = draw_bar_chart(&path, title, panels) {
        panic!("draw {}: {e}", path.display());
    }
    path
}

fn draw_bar_chart(
    path: &std::path::Path,
    title: &str,
    panels: &[Panel],
) -> Result<(), Box<dyn std::error::Error>> {
    use plotters::prelude::*;

    let panel_height = 380;
    let height = 50 + panel_height * panels.len() as u32;
    // Wide enough for the category labels (configuration names run to ~35 characters).
    let most = panels.iter().map(|p| p.categories.len()).max().unwrap_or(1) as u32;
    let width = (190 * most + 120).max(1000);
    let root = SVGBackend::new(path, (width, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 22))?;
    let areas = root.split_evenly((panels.len().max(1), 1));
    for (area, panel) in areas.iter().zip(panels) {
        let n = panel.categories.len().max(1);
        let finite = || {
            panel
                .series
                .iter()
                .flat_map(|s| s.values.iter().copied())
                .filter(|v| v.is_finite() && *v > 0.0)
        };
        let max = finite().fold(0.0f64, f64::max).max(1e-9);
        let min = finite().fold(f64::INFINITY, f64::min);
        let x_range = -0.5f64..(n as f64 - 0.5);
        let label = |x: &f64| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < n {
                panel.categories[i as usize].clone()
            } else {
                String::new()
            }
        };
        let width = 0.8 / panel.series.len().max(1) as f64;
        let bar = |ci: usize, si: usize| {
            let left = ci as f64 - 0.4 + si as f64 * width;
            (left + width * 0.08, left + width * 0.92)
        };
        let mut builder = ChartBuilder::on(area);
        builder
            .caption(&panel.title, ("sans-serif", 17))
            .margin(12)
            .x_label_area_size(34)
            .y_label_area_size(70);
        if panel.log_y {
            // Start one decade below the smallest bar so that every bar shows.
            let floor = 10f64.powf((min.min(max) / 2.0).log10().floor());
            // Room above the tallest bar for the legend.
            let ceil = 10f64.powf((max * 8.0).log10().ceil());
            let mut chart = builder.build_cartesian_2d(x_range, (floor..ceil).log_scale())?;
            chart
                .configure_mesh()
                .disable_x_mesh()
                .x_labels(n)
                .x_label_formatter(&label)
                .y_desc(panel.y_label.as_str())
                .draw()?;
            for (si, s) in panel.series.iter().enumerate() {
                let (r, g, b) = COLORS[si % COLORS.len()];
                let color = RGBColor(r, g, b);
                chart
                    .draw_series(
                        s.values
                            .iter()
                            .enumerate()
                            .filter(|(_, v)| v.is_finite() && **v > 0.0)
                            .map(|(ci, &v)| {
                                let (x0, x1) = bar(ci, si);
                                Rectangle::new([(x0, floor), (x1, v)], color.filled())
                            }),
                    )?
                    .label(s.name.as_str())
                    .legend(move |(x, y)| {
                        Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled())
                    });
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .draw()?;
        } else {
            let mut chart = builder.build_cartesian_2d(x_range, 0f64..max * 1.15)?;
            chart
                .configure_mesh()
                .disable_x_mesh()
                .x_labels(n)
                .x_label_formatter(&label)
                .y_desc(panel.y_label.as_str())
                .draw()?;
            for (si, s) in panel.series.iter().enumerate() {
                let (r, g, b) = COLORS[si % COLORS.len()];
                let color = RGBColor(r, g, b);
                chart
                    .draw_series(
                        s.values
                            .iter()
                            .enumerate()
                            .filter(|(_, v)| v.is_finite())
                            .map(|(ci, &v)| {
                                let (x0, x1) = bar(ci, si);
                                Rectangle::new([(x0, 0.0), (x1, v)], color.filled())
                            }),
                    )?
                    .label(s.name.as_str())
                    .legend(move |(x, y)| {
                        Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled())
                    });
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .draw()?;
        }
    }
    root.present()?;
    Ok(())
}
