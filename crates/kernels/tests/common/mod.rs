//! Shared test helpers: deterministic data, relative error, finite differences, and a
//! scoped-thread `Parallel` for determinism checks.
#![allow(dead_code)]

use ferroformer_kernels::Parallel;

/// max|got - want| / (max|want| + 1e-6).
pub fn rel_err(got: &[f32], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len(), "length mismatch");
    let mut max_diff = 0.0f64;
    let mut max_want = 0.0f64;
    for (&g, &w) in got.iter().zip(want) {
        let diff = (g as f64 - w).abs();
        if !(diff <= max_diff) {
            max_diff = diff; // also propagates NaN
        }
        max_want = max_want.max(w.abs());
    }
    max_diff / (max_want + 1e-6)
}

pub fn assert_close(what: &str, got: &[f32], want: &[f64], tol: f64) {
    let e = rel_err(got, want);
    assert!(e <= tol, "{what}: rel_err {e:e} > {tol:e}");
}

/// Deterministic xorshift generator.
pub struct Rng(u64);
impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    /// Uniform in [-1, 1).
    pub fn unif(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    pub fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.unif()).collect()
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

pub fn to64(x: &[f32]) -> Vec<f64> {
    x.iter().map(|&v| v as f64).collect()
}

/// Central finite-difference gradient of a scalar f64 function.
pub fn fd_grad(f: impl Fn(&[f64]) -> f64, x: &[f64], h: f64) -> Vec<f64> {
    let mut xp = x.to_vec();
    (0..x.len())
        .map(|i| {
            let orig = xp[i];
            xp[i] = orig + h;
            let fp = f(&xp);
            xp[i] = orig - h;
            let fm = f(&xp);
            xp[i] = orig;
            (fp - fm) / (2.0 * h)
        })
        .collect()
}

/// `want = base + grad` for accumulation checks.
pub fn plus(base: &[f32], grad: &[f64]) -> Vec<f64> {
    base.iter().zip(grad).map(|(&b, &g)| b as f64 + g).collect()
}

/// Row-major strides of `shape` read as a broadcast operand of `out` (right-aligned; 0 where
/// the operand has size 1 or lacks the dim).
pub fn broadcast_strides(shape: &[usize], out: &[usize]) -> Vec<i32> {
    let lead = out.len() - shape.len();
    let mut strides = vec![0i32; out.len()];
    let mut acc = 1usize;
    for d in (0..shape.len()).rev() {
        strides[lead + d] = if shape[d] == 1 { 0 } else { acc as i32 };
        acc *= shape[d];
    }
    strides
}

/// Splits tasks round-robin-by-chunk over `n` scoped threads.
pub struct Threads(pub usize);
impl Parallel for Threads {
    fn threads(&self) -> usize {
        self.0
    }
    fn for_each(&self, tasks: usize, f: &(dyn Fn(usize) + Sync)) {
        let n = self.0.max(1);
        std::thread::scope(|s| {
            for t in 0..n {
                s.spawn(move || {
                    let mut i = t;
                    while i < tasks {
                        f(i);
                        i += n;
                    }
                });
            }
        });
    }
}
