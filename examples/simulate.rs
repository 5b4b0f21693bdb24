//! Runs a workload file on the scheduling simulator (the real executor on a virtual
//! clock and host) and prints per queue and class the latency and queue-delay
//! percentiles, the CPU share and the tasks completed; writes an SVG of the latency
//! distributions. With `--sweep PARAM=V1,V2,…` it runs once per value and prints one
//! row per value and class, with an SVG of p99 against the setting.
//!
//! ```text
//! cargo run --release --features sim --example simulate -- sims/priority.toml
//! cargo run --release --features sim --example simulate -- sims/priority.toml \
//!     --seed 7 --sweep executor.driver_yield_us=50,100,250,500,1000
//! ```
//!
//! `--runs N` runs seeds `SEED`, `SEED + 1`, … `SEED + N - 1` and reports the median
//! of each figure over the runs, as the benches report the median of their rounds.
//!
//! `PARAM` is a setting's path in the file: `executor.sched_latency_us`,
//! `queue.fg.weight`, `queue.fg.class.request.arrival.rate_per_s`, `host.model`, …
//! SVGs go to `--out DIR` (default `target/clockworker-sim/`). Exit status: 0 on
//! success, 1 when the workload is invalid, 2 on bad arguments.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clockworker::sim::{latency_svg, simulate, sweep_svg, Report, Workload};

const USAGE: &str =
    "usage: simulate FILE [--seed N] [--runs N] [--sweep PARAM=V1,V2,...] [--out DIR]";

struct Args {
    file: PathBuf,
    seed: Option<u64>,
    runs: u64,
    sweep: Option<(String, Vec<String>)>,
    out: PathBuf,
}

fn parse_args() -> Result<Args, String> {
    let mut file = None;
    let mut seed = None;
    let mut runs = 1;
    let mut sweep = None;
    let mut out = PathBuf::from("target/clockworker-sim");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--seed" => {
                let v = value("--seed")?;
                seed = Some(
                    v.parse()
                        .map_err(|_| format!("--seed: not a number: {v}"))?,
                );
            }
            "--runs" => {
                let v = value("--runs")?;
                runs = v
                    .parse()
                    .map_err(|_| format!("--runs: not a number: {v}"))?;
                if runs == 0 {
                    return Err("--runs must be at least 1".into());
                }
            }
            "--sweep" => {
                let v = value("--sweep")?;
                let (param, values) = v
                    .split_once('=')
                    .ok_or(format!("--sweep wants PARAM=V1,V2,...; got {v}"))?;
                let values: Vec<String> = values.split(',').map(str::to_string).collect();
                if param.is_empty() || values.iter().any(String::is_empty) {
                    return Err(format!("--sweep wants PARAM=V1,V2,...; got {v}"));
                }
                sweep = Some((param.to_string(), values));
            }
            "--out" => out = PathBuf::from(value("--out")?),
            "-h" | "--help" => return Err(String::new()),
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
            path if file.is_none() => file = Some(PathBuf::from(path)),
            extra => return Err(format!("unexpected argument {extra}")),
        }
    }
    let file = file.ok_or("no workload file given")?;
    Ok(Args {
        file,
        seed,
        runs,
        sweep,
        out,
    })
}

/// Prints a line to stdout; a closed stdout (`| head`) ends the output quietly.
macro_rules! say {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

fn write_svg(dir: &Path, name: &str, svg: &str) {
    let path = dir.join(name);
    match std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&path, svg)) {
        Ok(()) => say!("wrote {}", path.display()),
        Err(e) => eprintln!("simulate: cannot write {}: {e}", path.display()),
    }
}

fn us(d: std::time::Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e6)
}

fn print_sweep(param: &str, values: &[String], rows: &[Report]) {
    say!(
        "{:<14} {:<12} {:<12} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        param,
        "queue",
        "class",
        "cpu share",
        "completed",
        "lat p50",
        "lat p90",
        "lat p99",
        "lat p99.9",
        "delay p99"
    );
    for (value, report) in values.iter().zip(rows) {
        for q in &report.queues {
            for c in &q.classes {
                say!(
                    "{:<14} {:<12} {:<12} {:>8.2}% {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
                    value,
                    q.name,
                    c.name,
                    q.cpu_share * 100.0,
                    c.completed,
                    us(c.latency.p50),
                    us(c.latency.p90),
                    us(c.latency.p99),
                    us(c.latency.p999),
                    us(c.queue_delay.p99)
                );
            }
        }
    }
    say!("(latencies and delays in µs)");
}

/// `runs` runs from `seed` on, summarized by their medians.
fn run(workload: &Workload, seed: u64, runs: u64) -> Result<Report, String> {
    let reports = (0..runs)
        .map(|i| simulate(workload, seed.wrapping_add(i)).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    Report::median(&reports).ok_or_else(|| "no run to report".to_string())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("simulate: {message}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let fail = |e: &dyn std::fmt::Display| {
        eprintln!("simulate: {}: {e}", args.file.display());
        ExitCode::from(1)
    };
    let mut workload = match Workload::load(&args.file) {
        Ok(w) => w,
        Err(e) => return fail(&e),
    };
    let seed = args.seed.unwrap_or(workload.seed());
    let stem = args
        .file
        .file_stem()
        .map_or("workload".into(), |s| s.to_string_lossy().into_owned());
    let Some((param, values)) = &args.sweep else {
        let report = match run(&workload, seed, args.runs) {
            Ok(r) => r,
            Err(e) => return fail(&e),
        };
        if args.runs > 1 {
            say!(
                "{}: medians of {} runs, seeds {seed} to {}",
                args.file.display(),
                args.runs,
                seed.wrapping_add(args.runs - 1)
            );
        }
        say!("{}: {report}", args.file.display());
        // On stderr: stdout is the same, byte for byte, for the same file and seed.
        eprintln!(
            "simulated in {:.3} s of wall time",
            report.wall.as_secs_f64()
        );
        write_svg(
            &args.out,
            &format!("{stem}.svg"),
            &latency_svg(&report, &stem),
        );
        return ExitCode::SUCCESS;
    };
    let mut rows = Vec::new();
    for value in values {
        if let Err(e) = workload.set(param, value) {
            return fail(&e);
        }
        match run(&workload, seed, args.runs) {
            Ok(r) => rows.push(r),
            Err(e) => return fail(&e),
        }
    }
    say!(
        "{}: seed {seed}{}, sweep of {param} ({:.1} ms of virtual time each)",
        args.file.display(),
        if args.runs > 1 {
            format!(" (medians of {} runs from it)", args.runs)
        } else {
            String::new()
        },
        workload.duration().as_secs_f64() * 1e3
    );
    print_sweep(param, values, &rows);
    let wall: std::time::Duration = rows.iter().map(|r| r.wall).sum();
    eprintln!("simulated in {:.3} s of wall time", wall.as_secs_f64());
    let labels: Vec<&str> = values.iter().map(String::as_str).collect();
    let name = format!("{stem}-sweep-{}.svg", param.replace('.', "_"));
    write_svg(&args.out, &name, &sweep_svg(param, &labels, &rows));
    ExitCode::SUCCESS
}
