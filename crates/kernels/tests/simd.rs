//! Every SIMD helper variant available here against naive f64 twins over odd lengths.
mod common;
use common::*;
use ferroformer_kernels::simd::{self, Isa};

#[test]
fn helpers_match_naive_for_every_isa() {
    let mut rng = Rng::new(30);
    for isa in Isa::available() {
        for &n in &[0usize, 1, 3, 7, 16, 17, 65, 257, 1000] {
            let (a, b) = (rng.vec(n), rng.vec(n));
            let want: f64 = a.iter().zip(&b).map(|(&x, &y)| x as f64 * y as f64).sum();
            assert_close(&format!("dot {isa:?} n={n}"), &[simd::dot_with(isa, &a, &b)], &[want], 1e-5);
            let mut y = a.clone();
            simd::axpy_with(isa, &mut y, -0.75, &b);
            let w: Vec<f64> = a.iter().zip(&b).map(|(&x, &z)| x as f64 - 0.75 * z as f64).collect();
            assert_close(&format!("axpy {isa:?}"), &y, &w, 1e-6);
            let mut y = a.clone();
            simd::add_assign_with(isa, &mut y, &b);
            let w: Vec<f64> = a.iter().zip(&b).map(|(&x, &z)| x as f64 + z as f64).collect();
            assert_close(&format!("add_assign {isa:?}"), &y, &w, 1e-6);
            let mut y = a.clone();
            simd::scale_with(isa, &mut y, 1.5);
            let w: Vec<f64> = a.iter().map(|&x| x as f64 * 1.5).collect();
            assert_close(&format!("scale {isa:?}"), &y, &w, 1e-6);
        }
    }
}
