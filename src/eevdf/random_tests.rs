//! Random simulations of the EEVDF state machine (checks 3 and 4 of the rules): with
//! random weights, polls, wakes and preemption, every queue's lag stays within bound
//! (a) and every wait within bound (b).

use super::tests::{check_invariants, random_weights, Rng};
use super::*;

const US: u64 = 1_000;
const MS: u64 = 1_000_000;

#[derive(Clone, Copy)]
struct Config {
    /// Queues run dry and wake up at random (else all stay runnable).
    churn: bool,
    /// Per mille: a queue picked with credit serves one tiny poll and runs
    /// dry, forfeiting the credit to the others.
    forfeit: u64,
    /// Longest poll (1 in 200 polls is 1 ms..=this; the others 1..=300 µs).
    long_poll: u64,
}

#[derive(Debug)]
struct Figures {
    /// Min over all checks of lag / lower bound of (a) (bound: > -1).
    low: f64,
    /// Max over all checks of lag / upper bound of (a) (bound: < 1).
    high: f64,
    /// Max over all checks of lag / (S + q), for comparison with the lag bound of src/eevdf/RULES.md.
    high_s_q: f64,
    /// Max over waits of wait / bound (b).
    wait: f64,
    waits: usize,
}

impl Figures {
    fn new() -> Self {
        Figures {
            low: 0.0,
            high: f64::MIN,
            high_s_q: f64::MIN,
            wait: 0.0,
            waits: 0,
        }
    }
    fn merge(&mut self, o: &Figures) {
        self.low = self.low.min(o.low);
        self.high = self.high.max(o.high);
        self.high_s_q = self.high_s_q.max(o.high_s_q);
        self.wait = self.wait.max(o.wait);
        self.waits += o.waits;
    }
}

/// Drives `e` like the run loop: picks, polls of random length, random wakes
/// (a requested preemption ends the slice after the current poll), random
/// runs dry. Asserts bounds (a) and (b) at every step.
fn random_run(seed: u64, weights: &[u32], slices: usize, cfg: Config) -> Figures {
    let n = weights.len();
    let w_all: u64 = weights.iter().map(|&w| u64::from(w)).sum();
    let mut rng = Rng::new(seed);
    let mut e = Eevdf::new(
        weights,
        rng.range(100 * US, 4 * MS),
        rng.range(10 * US, 500 * US),
    );
    let mut sim = Bounds {
        weights,
        w_all,
        last_slice: vec![0; n],
        big_s: 0,
        q: 0,
        fig: Figures::new(),
    };
    // When each waiting queue became runnable, and the debt it came back with.
    let mut joined: Vec<Option<(u64, u64)>> = vec![None; n];
    let mut now = 0u64;
    let wake = |e: &mut Eevdf, j: usize, now: u64, joined: &mut [Option<(u64, u64)>]| {
        let preempt = e.enqueue(j);
        joined[j] = Some((now, (-e.lag_ns(j)).max(0) as u64));
        preempt
    };
    for j in 0..n {
        wake(&mut e, j, now, &mut joined);
    }
    for _ in 0..slices {
        if e.runnable_count() == 0 {
            wake(
                &mut e,
                rng.range(0, n as u64 - 1) as usize,
                now,
                &mut joined,
            );
        }
        let p = e.pick().unwrap();
        let i = p.queue;
        sim.last_slice[i] = p.slice_ns;
        sim.big_s = sim.big_s.max(p.slice_ns);
        if let Some((t0, debt)) = joined[i].take() {
            sim.check_wait(i, now - t0, debt);
        }
        let forfeit = e.lag_ns(i) > 0 && rng.chance(cfg.forfeit);
        let mut used = 0;
        let still_runnable = loop {
            let t = match (forfeit, rng.chance(5)) {
                (true, _) => rng.range(1, 10 * US),
                (false, true) => rng.range(MS, cfg.long_poll),
                (false, false) => rng.range(1, 300 * US),
            };
            e.charge(t);
            used += t;
            now += t;
            sim.q = sim.q.max(t);
            let mut preempt = false;
            if cfg.churn {
                for j in 0..n {
                    if !e.is_runnable(j) && rng.chance(20) {
                        preempt |= wake(&mut e, j, now, &mut joined);
                    }
                }
            }
            sim.check_lags(&e);
            if forfeit || (cfg.churn && rng.chance(50)) {
                break false;
            }
            if preempt || used >= p.slice_ns {
                break true;
            }
        };
        e.finish(still_runnable);
        check_invariants(&e);
        sim.check_lags(&e);
    }
    sim.fig
}

/// The quantities bounds (a) and (b) are stated in, tracked during a run.
struct Bounds<'a> {
    weights: &'a [u32],
    w_all: u64,
    /// `s_i`: slice last granted to each queue (0 before its first pick).
    last_slice: Vec<u64>,
    /// `S` and `q` so far.
    big_s: u64,
    q: u64,
    fig: Figures,
}

impl Bounds<'_> {
    /// `(s_j + q)(1 - w_j / W_all)`, as a numerator over `W_all`.
    fn debt_cap(&self, j: usize) -> i128 {
        let w = u64::from(self.weights[j]);
        i128::from(self.last_slice[j] + self.q) * i128::from(self.w_all - w)
    }

    /// (a): `-(s_i + q)(1 - w_i/W_all) < lag_i < Σ_{j≠i} (s_j + q)(1 - w_j/W_all)`,
    /// compared exactly (times `W_all`), with 1 ns for rounding.
    fn check_lags(&mut self, e: &Eevdf) {
        let w_all = i128::from(self.w_all);
        let all_caps: i128 = (0..self.weights.len()).map(|j| self.debt_cap(j)).sum();
        for i in 0..self.weights.len() {
            let lag = i128::from(e.lag_ns(i));
            let low = self.debt_cap(i);
            let high = all_caps - low;
            assert!(
                (lag + 1) * w_all > -low,
                "queue {i}: lag {lag} below bound (a)"
            );
            assert!(
                (lag - 1) * w_all < high,
                "queue {i}: lag {lag} above bound (a)"
            );
            if low > 0 {
                self.fig.low = self.fig.low.min((lag * w_all) as f64 / low as f64);
            }
            if high > 0 {
                self.fig.high = self.fig.high.max((lag * w_all) as f64 / high as f64);
            }
            let s_q = (self.big_s + self.q) as f64;
            self.fig.high_s_q = self.fig.high_s_q.max(lag as f64 / s_q);
        }
    }

    /// (b): `wait <= S (W_all - w_i) / w_i + (2N - 1)(S + q) + D W_all / w_i`.
    fn check_wait(&mut self, i: usize, waited: u64, debt: u64) {
        let n = self.weights.len() as u64;
        let (s, q, w_all) = (self.big_s, self.q, self.w_all);
        let wi = u64::from(self.weights[i]);
        let bound = s * (w_all - wi) / wi + (2 * n - 1) * (s + q) + debt * w_all / wi;
        assert!(
            waited <= bound,
            "queue {i} waited {waited} > bound (b) {bound}"
        );
        self.fig.wait = self.fig.wait.max(waited as f64 / bound as f64);
        self.fig.waits += 1;
    }
}

/// `runs` random runs of 2..=12 queues with weights drawn from five families.
fn random_runs(seed: u64, runs: u64, slices: usize, cfg: Config) -> Figures {
    let mut all = Figures::new();
    let mut rng = Rng::new(seed);
    for run in 0..runs {
        let n = rng.range(2, 12) as usize;
        let weights = match run % 5 {
            0 => random_weights(&mut rng, n, u64::from(MAX_WEIGHT)),
            1 => random_weights(&mut rng, n, 16),
            2 => (0..n)
                .map(|j| if j == 0 { 1 } else { MAX_WEIGHT })
                .collect(),
            3 => (0..n)
                .map(|j| if j == 0 { MAX_WEIGHT } else { 1 })
                .collect(),
            _ => (0..n).map(|j| 1 << (j % 14)).collect(),
        };
        all.merge(&random_run(rng.next(), &weights, slices, cfg));
    }
    eprintln!("{all:?}");
    all
}

#[test]
fn lag_bound_holds_with_random_weights_and_polls() {
    let _watchdog = crate::test_watchdog::watchdog();
    let cfg = Config {
        churn: false,
        forfeit: 0,
        long_poll: 5 * MS,
    };
    random_runs(3, 40, 2_000, cfg);
}

#[test]
fn wait_and_lag_bounds_hold_with_random_wakes_and_preemption() {
    let _watchdog = crate::test_watchdog::watchdog();
    let cfg = Config {
        churn: true,
        forfeit: 300,
        long_poll: 5 * MS,
    };
    let fig = random_runs(4, 40, 2_000, cfg);
    assert!(fig.waits > 10_000);
}

/// Longer search, for `cargo test --release -- --ignored`.
#[test]
#[ignore]
fn bounds_hold_in_long_random_search() {
    for (churn, forfeit) in [(false, 0), (true, 0), (true, 300), (true, 900)] {
        for long_poll in [MS, 5 * MS] {
            let cfg = Config {
                churn,
                forfeit,
                long_poll,
            };
            random_runs(5, 2_000, 4_000, cfg);
        }
    }
}
