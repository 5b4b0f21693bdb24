//! The simulator's random numbers: SplitMix64, small, fast and the same everywhere, so
//! that one seed gives one run bit for bit.

/// A SplitMix64 generator (Steele, Lea and Flood's mixer of a Weyl sequence).
///
/// ```
/// use clockworker::sim::Rng;
/// let (mut a, mut b) = (Rng::new(7), Rng::new(7));
/// assert_eq!(a.next_u64(), b.next_u64());
/// let u = a.unit();
/// assert!((0.0..1.0).contains(&u));
/// ```
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator started from `seed`.
    ///
    /// ```
    /// let mut rng = clockworker::sim::Rng::new(1);
    /// let _ = rng.next_u64();
    /// ```
    pub fn new(seed: u64) -> Self {
        Rng { state: seed }
    }

    /// An independent stream for `index` (a class, a task) derived from this seed.
    ///
    /// ```
    /// use clockworker::sim::Rng;
    /// let root = Rng::new(1);
    /// assert_ne!(root.fork(0).next_u64(), root.fork(1).next_u64());
    /// ```
    pub fn fork(&self, index: u64) -> Rng {
        let mut mixer = Rng::new(self.state ^ index.wrapping_mul(0xA076_1D64_78BD_642F));
        Rng::new(mixer.next_u64())
    }

    /// The next 64 random bits.
    ///
    /// ```
    /// let mut rng = clockworker::sim::Rng::new(3);
    /// assert_ne!(rng.next_u64(), rng.next_u64());
    /// ```
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)` (53 random bits).
    ///
    /// ```
    /// let mut rng = clockworker::sim::Rng::new(9);
    /// assert!(rng.unit() < 1.0);
    /// ```
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `[min, max]` (inclusive; `min` when `max < min`).
    ///
    /// ```
    /// let mut rng = clockworker::sim::Rng::new(9);
    /// let n = rng.between(1, 3);
    /// assert!((1..=3).contains(&n));
    /// ```
    pub fn between(&mut self, min: u64, max: u64) -> u64 {
        if max <= min {
            return min;
        }
        let span = max - min + 1;
        min + self.next_u64() % span
    }

    /// A standard normal variate (Box–Muller).
    ///
    /// ```
    /// let mut rng = clockworker::sim::Rng::new(9);
    /// assert!(rng.normal().is_finite());
    /// ```
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.unit(); // in (0, 1]: ln is finite
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}
