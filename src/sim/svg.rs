//! Plots of a simulation as SVG text: the latency distributions of a report, and p99
//! against a swept setting. Hand-written, no plotting dependency.

use std::fmt::Write;
use std::time::Duration;

use super::Report;

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 420.0;
/// Margins: left, right, top, bottom.
const MARGIN: (f64, f64, f64, f64) = (70.0, 170.0, 52.0, 50.0);
const COLOURS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

/// A plot area with a log-scale y axis or x axis, drawn into `out`.
struct Frame {
    out: String,
}

impl Frame {
    fn new(title: &str) -> Frame {
        let mut out = String::new();
        let _ = write!(
            out,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" \
             font-family=\"sans-serif\" font-size=\"12\">\n\
             <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
             <text x=\"{}\" y=\"20\" font-size=\"14\">{}</text>\n",
            MARGIN.0,
            escape(title)
        );
        let (x0, y0, x1, y1) = plot_box();
        let _ = writeln!(
            out,
            "<rect x=\"{x0}\" y=\"{y0}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#444\"/>",
            x1 - x0,
            y1 - y0
        );
        Frame { out }
    }

    fn text(&mut self, x: f64, y: f64, anchor: &str, text: &str) {
        let _ = writeln!(
            self.out,
            "<text x=\"{x:.1}\" y=\"{y:.1}\" text-anchor=\"{anchor}\">{}</text>",
            escape(text)
        );
    }

    fn grid(&mut self, x0: f64, y0: f64, x1: f64, y1: f64) {
        let _ = writeln!(
            self.out,
            "<line x1=\"{x0:.1}\" y1=\"{y0:.1}\" x2=\"{x1:.1}\" y2=\"{y1:.1}\" stroke=\"#ddd\"/>"
        );
    }

    fn line(&mut self, points: &[(f64, f64)], colour: &str, marks: bool) {
        let path: Vec<String> = points
            .iter()
            .map(|(x, y)| format!("{x:.1},{y:.1}"))
            .collect();
        let _ = writeln!(
            self.out,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.8\"/>",
            path.join(" ")
        );
        if marks {
            for (x, y) in points {
                let _ = writeln!(
                    self.out,
                    "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"3\" fill=\"{colour}\"/>"
                );
            }
        }
    }

    fn legend(&mut self, index: usize, label: &str) {
        let (_, y0, x1, _) = plot_box();
        let y = y0 + 10.0 + 18.0 * index as f64;
        let colour = COLOURS[index % COLOURS.len()];
        let _ = writeln!(
            self.out,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"12\" height=\"4\" fill=\"{colour}\"/>",
            x1 + 12.0,
            y - 4.0
        );
        self.text(x1 + 30.0, y, "start", label);
    }

    fn finish(mut self) -> String {
        self.out.push_str("</svg>\n");
        self.out
    }
}

fn plot_box() -> (f64, f64, f64, f64) {
    (MARGIN.0, MARGIN.2, WIDTH - MARGIN.1, HEIGHT - MARGIN.3)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Powers of ten spanning `[lo, hi]` (both > 0).
fn decades(lo: f64, hi: f64) -> (f64, f64) {
    let lo = 10f64.powf(lo.max(1e-3).log10().floor());
    let hi = 10f64.powf(hi.max(lo * 10.0).log10().ceil());
    (lo, hi.max(lo * 10.0))
}

fn label_us(v: f64) -> String {
    if v >= 1_000.0 {
        format!("{} ms", v / 1_000.0)
    } else {
        format!("{v} µs")
    }
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Decades of the tail shown by [`latency_svg`]: up to the 99.99th percentile.
const TAIL_DECADES: f64 = 4.0;

/// How far into the tail fraction `f` lies: `-log10(1 - f)`, capped at [`TAIL_DECADES`].
fn tail_depth(f: f64) -> f64 {
    (-(1.0 - f).max(10f64.powf(-TAIL_DECADES)).log10()).clamp(0.0, TAIL_DECADES)
}

/// The latency distribution of every class with samples: latency (log scale) against
/// the fraction of tasks done by then, on a scale that gives the median, p90, p99,
/// p99.9 and p99.99 equal room, so that the tail can be read.
///
/// ```
/// # use clockworker::sim::{simulate, Workload};
/// # let w = Workload::from_toml("duration_ms = 10\n[[queue]]\nname = \"q\"\nweight = 1\n[[queue.class]]\nname = \"c\"\narrival = { kind = \"poisson\", rate_per_s = 5000 }\ncpu = { dist = \"exponential\", mean_us = 50 }\n").unwrap();
/// let report = simulate(&w, 0).unwrap();
/// let svg = clockworker::sim::latency_svg(&report, "example");
/// assert!(svg.starts_with("<svg") && svg.contains("q/c"));
/// ```
pub fn latency_svg(report: &Report, title: &str) -> String {
    let classes: Vec<(String, &[Duration])> = report
        .queues
        .iter()
        .flat_map(|q| {
            q.classes
                .iter()
                .filter(|c| !c.latencies.is_empty())
                .map(move |c| (format!("{}/{}", q.name, c.name), c.latencies.as_slice()))
        })
        .collect();
    let mut frame = Frame::new(&format!(
        "{title}: latency distribution (seed {})",
        report.seed
    ));
    let (x0, y0, x1, y1) = plot_box();
    let lo = classes
        .iter()
        .filter_map(|(_, l)| l.first())
        .map(|d| us(*d))
        .fold(f64::INFINITY, f64::min);
    let hi = classes
        .iter()
        .filter_map(|(_, l)| l.last())
        .map(|d| us(*d))
        .fold(0.0, f64::max);
    let (lo, hi) = if lo.is_finite() {
        decades(lo, hi)
    } else {
        (1.0, 10.0)
    };
    let x_of =
        |v: f64| x0 + (v.max(lo).log10() - lo.log10()) / (hi.log10() - lo.log10()) * (x1 - x0);
    let y_of = |f: f64| y1 - tail_depth(f) / TAIL_DECADES * (y1 - y0);
    let mut tick = lo;
    while tick <= hi * 1.0001 {
        let x = x_of(tick);
        frame.grid(x, y0, x, y1);
        frame.text(x, y1 + 16.0, "middle", &label_us(tick));
        tick *= 10.0;
    }
    for f in [0.0, 0.5, 0.9, 0.99, 0.999, 0.9999] {
        let y = y_of(f);
        frame.grid(x0, y, x1, y);
        frame.text(x0 - 6.0, y + 4.0, "end", &format!("{f}"));
    }
    frame.text(
        (x0 + x1) / 2.0,
        HEIGHT - 12.0,
        "middle",
        "latency (arrival → end), log scale",
    );
    frame.text(8.0, y0 - 10.0, "start", "fraction of tasks done");
    for (i, (label, latencies)) in classes.iter().enumerate() {
        let n = latencies.len();
        // 400 points, evenly spread over the (tail-stretched) fraction axis.
        let points: Vec<(f64, f64)> = (0..=400)
            .map(|step| {
                let f = 1.0 - 10f64.powf(-TAIL_DECADES * f64::from(step) / 400.0);
                let rank = ((f * n as f64).ceil() as usize).clamp(1, n);
                (x_of(us(latencies[rank - 1])), y_of(rank as f64 / n as f64))
            })
            .collect();
        frame.line(&points, COLOURS[i % COLOURS.len()], false);
        frame.legend(i, label);
    }
    frame.finish()
}

/// p99 latency (log scale) of every class against the values of a swept setting:
/// `rows` holds one report per value, in the order of `values`.
///
/// ```
/// # use clockworker::sim::{simulate, Workload};
/// # let mut w = Workload::from_toml("duration_ms = 10\n[[queue]]\nname = \"q\"\nweight = 1\n[[queue.class]]\nname = \"c\"\narrival = { kind = \"poisson\", rate_per_s = 5000 }\ncpu = { dist = \"exponential\", mean_us = 50 }\n").unwrap();
/// let mut rows = Vec::new();
/// for v in ["1000", "5000"] {
///     w.set("queue.q.class.c.arrival.rate_per_s", v).unwrap();
///     rows.push(simulate(&w, 0).unwrap());
/// }
/// let svg = clockworker::sim::sweep_svg("rate", &["1000", "5000"], &rows);
/// assert!(svg.contains("<polyline"));
/// ```
pub fn sweep_svg(param: &str, values: &[&str], rows: &[Report]) -> String {
    let mut frame = Frame::new(&format!("p99 latency against {param}"));
    let (x0, y0, x1, y1) = plot_box();
    let Some(first) = rows.first() else {
        return frame.finish();
    };
    let series: Vec<(String, Vec<f64>)> = first
        .queues
        .iter()
        .flat_map(|q| {
            q.classes
                .iter()
                .map(move |c| (q.name.clone(), c.name.clone()))
        })
        .map(|(q, c)| {
            let p99s = rows
                .iter()
                .map(|r| r.class(&q, &c).map_or(0.0, |c| us(c.latency.p99)))
                .collect();
            (format!("{q}/{c}"), p99s)
        })
        .filter(|(_, p99s): &(String, Vec<f64>)| p99s.iter().any(|v| *v > 0.0))
        .collect();
    let all = series
        .iter()
        .flat_map(|(_, v)| v.iter().copied().filter(|v| *v > 0.0));
    let (lo, hi) = all.fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    let (lo, hi) = if lo.is_finite() {
        decades(lo, hi)
    } else {
        (1.0, 10.0)
    };
    let y_of =
        |v: f64| y1 - (v.max(lo).log10() - lo.log10()) / (hi.log10() - lo.log10()) * (y1 - y0);
    let n = values.len().max(1);
    let x_of = |i: usize| x0 + (i as f64 + 0.5) / n as f64 * (x1 - x0);
    let mut tick = lo;
    while tick <= hi * 1.0001 {
        let y = y_of(tick);
        frame.grid(x0, y, x1, y);
        frame.text(x0 - 6.0, y + 4.0, "end", &label_us(tick));
        tick *= 10.0;
    }
    for (i, value) in values.iter().enumerate() {
        frame.text(x_of(i), y1 + 16.0, "middle", value);
    }
    frame.text((x0 + x1) / 2.0, HEIGHT - 12.0, "middle", param);
    frame.text(8.0, y0 - 10.0, "start", "p99 latency, log scale");
    for (i, (label, p99s)) in series.iter().enumerate() {
        let points: Vec<(f64, f64)> = p99s
            .iter()
            .enumerate()
            .filter(|(_, v)| **v > 0.0)
            .map(|(k, v)| (x_of(k), y_of(*v)))
            .collect();
        frame.line(&points, COLOURS[i % COLOURS.len()], true);
        frame.legend(i, label);
    }
    frame.finish()
}
