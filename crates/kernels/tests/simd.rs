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

/// The softmax and layer-norm helpers (max, exp_shift, dev_sums, norm_affine) per ISA.
#[test]
fn softmax_and_norm_helpers_match_naive_for_every_isa() {
    let mut rng = Rng::new(31);
    for isa in Isa::available() {
        for &n in &[0usize, 1, 3, 7, 16, 17, 65, 257, 1000] {
            let a: Vec<f32> = rng.vec(n).iter().map(|v| 30.0 * v).collect();
            let want_max = a.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            assert_eq!(simd::max_with(isa, &a), want_max, "max {isa:?} n={n}");
            let mut e = a.clone();
            let sum = simd::exp_shift_with(isa, &mut e, want_max);
            let w: Vec<f64> = a.iter().map(|&x| ((x - want_max) as f64).exp()).collect();
            assert_close(&format!("exp_shift {isa:?} n={n}"), &e, &w, 1e-6);
            // Relative accuracy of every element, not only of the largest.
            for (g, x) in e.iter().zip(&w) {
                assert!(((*g as f64) - x).abs() <= 1e-6 * x + 1e-37, "exp_shift {isa:?}: {g} vs {x}");
            }
            assert_close(&format!("exp_shift sum {isa:?}"), &[sum], &[w.iter().sum::<f64>()], 1e-6);
            let c = 0.25f32;
            let (s1, s2) = simd::dev_sums_with(isa, &a, c);
            let w1: f64 = a.iter().map(|&x| x as f64 - c as f64).sum();
            let w2: f64 = a.iter().map(|&x| (x as f64 - c as f64).powi(2)).sum();
            assert_close(&format!("dev_sums {isa:?}"), &[s1, s2], &[w1, w2], 1e-5);
            let (wt, bs) = (rng.vec(n), rng.vec(n));
            let mut out = vec![0.0; n];
            simd::norm_affine_with(isa, &mut out, &a, &wt, &bs, 0.5, 0.125);
            let w: Vec<f64> = (0..n).map(|i| (a[i] as f64 - 0.5) * 0.125 * wt[i] as f64 + bs[i] as f64).collect();
            assert_close(&format!("norm_affine {isa:?}"), &out, &w, 1e-6);
        }
        // exp of -inf and of very negative arguments is exactly 0.
        let mut e = vec![f32::NEG_INFINITY, -100.0, -87.5, 0.0];
        simd::exp_shift_with(isa, &mut e, 0.0);
        assert_eq!(&e[..3], &[0.0, 0.0, 0.0]);
        assert_eq!(e[3], 1.0);
    }
}

/// column_sums_add gives the bits of adding the rows one after another, on every ISA, for
/// widths around its register blocks and row counts around its row blocks.
#[test]
fn column_sums_add_matches_row_by_row_adds_bit_for_bit() {
    let mut rng = Rng::new(32);
    for isa in Isa::available() {
        for &cols in &[1usize, 3, 4, 8, 17, 31, 64, 127, 128, 129, 385, 1024] {
            for &rows in &[0usize, 1, 15, 16, 17, 33, 100] {
                let x = rng.vec(rows * cols);
                let start = rng.vec(cols);
                let mut want = start.clone();
                for row in x.chunks_exact(cols) {
                    for (w, &v) in want.iter_mut().zip(row) {
                        *w += v;
                    }
                }
                let mut got = start.clone();
                simd::column_sums_add_with(isa, &mut got, &x, cols);
                let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&got), bits(&want), "column_sums_add {isa:?} rows={rows} cols={cols}");
            }
        }
    }
}
