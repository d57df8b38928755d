//! The streaming kernels (elementwise, layout, layer norm, Adam, sum of squares): the same
//! bits on every instruction set and for every thread count, and the vectorised passes
//! against the scalar loops they replaced, bit for bit where they promise it.
mod common;
use common::*;
use ferroformer_kernels::ops::elementwise::*;
use ferroformer_kernels::ops::layernorm::{layernorm_backward, layernorm_backward_with, layernorm_forward};
use ferroformer_kernels::optim::adam::adam_update;
use ferroformer_kernels::parallel::set_min_parallel_flops;
use ferroformer_kernels::simd::{self, AdamStep, Isa};
use ferroformer_kernels::{Parallel, Serial};

/// Sizes around the vector widths and the 16 Ki-element task blocks.
const SIZES: [usize; 9] = [0, 1, 7, 16, 17, 65, 1000, 16 * 1024 + 3, 70_001];

/// Splits every call (threshold 0), as the determinism checks need. Results do not depend
/// on the threshold, so tests running beside these are unaffected.
fn split_everything() {
    set_min_parallel_flops(0);
}

fn bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}

#[test]
fn adam_step_is_the_scalar_loop_bit_for_bit_on_every_isa() {
    let mut rng = Rng::new(40);
    for &n in &[0usize, 1, 7, 16, 17, 65, 1000] {
        for (decoupled, wd) in [(true, 0.1f32), (false, 0.05), (false, 0.0)] {
            let (p0, m0, g) = (rng.vec(n), rng.vec(n), rng.vec(n));
            let v0: Vec<f32> = rng.vec(n).iter().map(|x| x.abs()).collect();
            let (lr, beta1, beta2, eps) = (1e-2f32, 0.9f32, 0.99f32, 1e-8f32);
            let c = AdamStep { step_size: 0.013, bc2_sqrt: 0.17, beta1, beta2, eps, weight_decay: wd, decay: 1.0 - lr * wd, decoupled };
            // The scalar loop the kernel used to run.
            let (mut pw, mut mw, mut vw) = (p0.clone(), m0.clone(), v0.clone());
            for i in 0..n {
                let mut p = pw[i];
                let mut gi = g[i];
                if decoupled {
                    p *= c.decay;
                } else if wd != 0.0 {
                    gi += wd * p;
                }
                let mi = beta1 * mw[i] + (1.0 - beta1) * gi;
                let vi = beta2 * vw[i] + (1.0 - beta2) * gi * gi;
                mw[i] = mi;
                vw[i] = vi;
                pw[i] = p - c.step_size * mi / (vi.sqrt() / c.bc2_sqrt + eps);
            }
            for isa in Isa::available() {
                let (mut p, mut m, mut v) = (p0.clone(), m0.clone(), v0.clone());
                simd::adam_step_with(isa, &mut p, &mut m, &mut v, &g, &c);
                assert_eq!((bits(&p), bits(&m), bits(&v)), (bits(&pw), bits(&mw), bits(&vw)), "{isa:?} n={n} decoupled={decoupled}");
            }
        }
    }
}

#[test]
fn pointwise_helpers_and_sum_squares_match_on_every_isa() {
    let mut rng = Rng::new(41);
    for &n in &SIZES {
        let (a, b) = (rng.vec(n), rng.vec(n));
        let want_add: Vec<f32> = a.iter().zip(&b).map(|(x, y)| x + y).collect();
        let want_mul: Vec<f32> = a.iter().zip(&b).map(|(x, y)| x * y).collect();
        let want_scale: Vec<f32> = a.iter().map(|x| x * -1.75).collect();
        let want_sq: f64 = a.iter().map(|&v| (v as f64) * (v as f64)).sum();
        let mut first_sq = None;
        for isa in Isa::available() {
            let mut out = vec![f32::NAN; n];
            simd::add_to_with(isa, &mut out, &a, &b);
            assert_eq!(bits(&out), bits(&want_add), "add_to {isa:?} n={n}");
            simd::mul_to_with(isa, &mut out, &a, &b);
            assert_eq!(bits(&out), bits(&want_mul), "mul_to {isa:?} n={n}");
            simd::scale_to_with(isa, &mut out, &a, -1.75);
            assert_eq!(bits(&out), bits(&want_scale), "scale_to {isa:?} n={n}");
            let sq = simd::sum_squares_with(isa, &a);
            assert!((sq - want_sq).abs() <= 1e-12 * want_sq.max(1.0), "sum_squares {isa:?} n={n}: {sq} vs {want_sq}");
            assert_eq!(*first_sq.get_or_insert(sq), sq, "sum_squares differs between instruction sets (n={n})");
        }
    }
    let with_nan = [1.0f32, f32::NAN, 2.0];
    assert!(simd::sum_squares(&with_nan).is_nan());
}

/// Runs `f` with Serial and with 2 and 3 threads (every call split) and asserts the same bits.
fn same_for_any_threads(what: &str, f: impl Fn(&dyn Parallel) -> Vec<f32>) {
    split_everything();
    let serial = bits(&f(&Serial));
    for t in [2, 3] {
        assert_eq!(bits(&f(&Threads(t))), serial, "{what}: {t} threads differ from one");
    }
}

#[test]
fn streaming_kernels_give_the_same_bits_for_any_thread_count() {
    let mut rng = Rng::new(42);
    for &n in &SIZES {
        let (a, b) = (rng.vec(n), rng.vec(n));
        same_for_any_threads("add_forward", |par| {
            let mut out = vec![0.0; n];
            add_forward(&mut out, &a, &b, par);
            out
        });
        same_for_any_threads("accumulate", |par| {
            let mut d = a.clone();
            accumulate(&mut d, &b, 1.0, par);
            accumulate(&mut d, &b, -0.3, par);
            d
        });
        same_for_any_threads("mul, scale", |par| {
            let mut out = vec![0.0; n];
            mul_forward(&mut out, &a, &b, par);
            let mut s = vec![0.0; n];
            scale_forward(&mut s, &out, 0.7, par);
            scale_inplace(&mut s, 1.5, par);
            s
        });
        split_everything();
        let s1 = sum_squares(&a, &Serial);
        assert_eq!(sum_squares(&a, &Threads(3)).to_bits(), s1.to_bits(), "sum_squares n={n}");
        let want: f64 = a.iter().map(|&v| (v as f64).powi(2)).sum();
        assert!((s1 - want).abs() <= 1e-12 * want.max(1.0));
        for decoupled in [false, true] {
            same_for_any_threads("adam_update", |par| {
                let (mut p, mut m, mut v) = (a.clone(), vec![0.0; n], vec![0.0; n]);
                for step in 1..=3 {
                    adam_update(&mut p, &mut m, &mut v, &b, 1e-3, 0.9, 0.99, 1e-8, 0.1, step, decoupled, par);
                }
                [p, m, v].concat()
            });
        }
    }
    for &(a, b, c, d) in &[(2, 64, 6, 64), (3, 5, 7, 9), (1, 1, 1, 1)] {
        let inp = rng.vec(a * b * c * d);
        same_for_any_threads("transpose12", |par| {
            let mut out = vec![0.0; inp.len()];
            transpose12_forward(&mut out, &inp, a, b, c, d, par);
            let mut back = inp.clone();
            transpose12_backward(&mut back, &out, a, b, c, d, par);
            [out, back].concat()
        });
    }
    for &(outer, dim, inner, start, len) in &[(512, 3, 384, 1, 1), (7, 9, 5, 2, 6)] {
        let inp = rng.vec(outer * dim * inner);
        same_for_any_threads("narrow", |par| {
            let mut out = vec![0.0; outer * len * inner];
            narrow_forward(&mut out, &inp, outer, dim, inner, start, len, par);
            let mut back = inp.clone();
            narrow_backward(&mut back, &out, outer, dim, inner, start, len, par);
            [out, back].concat()
        });
    }
    for &(rows, cols) in &[(300, 384), (5, 3)] {
        let (inp, bias) = (rng.vec(rows * cols), rng.vec(cols));
        same_for_any_threads("bias_add_forward", |par| {
            let mut out = vec![0.0; rows * cols];
            bias_add_forward(&mut out, &inp, &bias, rows, cols, par);
            out
        });
    }
}

#[test]
fn layernorm_is_the_same_for_any_thread_count_and_keeps_the_serial_parameter_sums() {
    let mut rng = Rng::new(43);
    for &(rows, dim) in &[(300, 384), (2, 1000), (5, 7), (1, 1)] {
        let inp: Vec<f32> = rng.vec(rows * dim).iter().map(|v| 3.0 + v).collect();
        let (w, b, dout) = (rng.vec(dim), rng.vec(dim), rng.vec(rows * dim));
        let run = |par: &dyn Parallel| {
            let (mut out, mut mean, mut rstd) = (vec![0.0; rows * dim], vec![0.0; rows], vec![0.0; rows]);
            layernorm_forward(&mut out, &mut mean, &mut rstd, &inp, &w, &b, rows, dim, 1e-5, par);
            let (mut di, mut dw, mut db) = (vec![0.5; rows * dim], vec![0.25; dim], vec![-0.5; dim]);
            layernorm_backward(&mut di, &mut dw, &mut db, &dout, &inp, &w, &mean, &rstd, rows, dim, par);
            (out, mean, rstd, di, dw, db)
        };
        same_for_any_threads("layernorm", |par| {
            let (out, mean, rstd, di, dw, db) = run(par);
            [out, mean, rstd, di, dw, db].concat()
        });
        // dweight and dbias add one row at a time in row order, as the serial loop did.
        let (_, mean, rstd, _, dw, db) = run(&Serial);
        let (mut want_w, mut want_b) = (vec![0.25f32; dim], vec![-0.5f32; dim]);
        for r in 0..rows {
            for i in 0..dim {
                let g = dout[r * dim + i];
                want_w[i] += g * ((inp[r * dim + i] - mean[r]) * rstd[r]);
                want_b[i] += g;
            }
        }
        assert_eq!((bits(&dw), bits(&db)), (bits(&want_w), bits(&want_b)), "rows={rows} dim={dim}");
    }
}

#[test]
fn layernorm_backward_in_one_pass_on_one_thread_gives_the_bits_of_the_column_blocks() {
    // One thread adds each row's dweight / dbias inside the row loop; two or three threads
    // run the rows, then column blocks (multiples of 64 columns) over all rows: every ISA must
    // give the same bits both ways, at widths below, between and above its vector widths.
    split_everything();
    let mut rng = Rng::new(44);
    for &(rows, dim) in &[(37, 7), (16, 13), (9, 16), (33, 100), (20, 200), (65, 384), (3, 1000)] {
        let inp: Vec<f32> = rng.vec(rows * dim).iter().map(|v| 3.0 + v).collect();
        let (w, b, dout) = (rng.vec(dim), rng.vec(dim), rng.vec(rows * dim));
        let (mut out, mut mean, mut rstd) = (vec![0.0; rows * dim], vec![0.0; rows], vec![0.0; rows]);
        layernorm_forward(&mut out, &mut mean, &mut rstd, &inp, &w, &b, rows, dim, 1e-5, &Serial);
        let (base_i, base_w, base_b) = (rng.vec(rows * dim), rng.vec(dim), rng.vec(dim));
        for isa in Isa::available() {
            let run = |par: &dyn Parallel| {
                let (mut di, mut dw, mut db) = (base_i.clone(), base_w.clone(), base_b.clone());
                layernorm_backward_with(isa, &mut di, &mut dw, &mut db, &dout, &inp, &w, &mean, &rstd, rows, dim, par);
                bits(&[di, dw, db].concat())
            };
            let one = run(&Serial);
            assert!(one == run(&Threads(1)), "{isa:?} rows={rows} dim={dim}: Threads(1) differs from Serial");
            for t in [2, 3] {
                assert!(one == run(&Threads(t)), "{isa:?} rows={rows} dim={dim}: {t} threads differ from one");
            }
        }
    }
}

// ---- run-based tensor kernels (broadcast, strided copies) ----------------------------------

use ferroformer_kernels::ops::broadcast::{binary_backward, binary_forward, where_forward};
use ferroformer_kernels::ops::strided::{strided_copy_backward, strided_copy_forward};

/// The offset of each element of `shape` (row-major) through `strides` from `offset`.
fn offsets(shape: &[usize], strides: &[i32], offset: i32) -> Vec<usize> {
    let total: usize = shape.iter().product();
    (0..total).map(|lin| {
        let mut rest = lin;
        let mut at = offset as isize;
        for d in (0..shape.len()).rev() {
            at += (rest % shape[d]) as isize * strides[d] as isize;
            rest /= shape[d];
        }
        at as usize
    }).collect()
}

/// Layouts each fast path takes: same shape, a row [C], a column [N, 1], a scalar on either
/// side, and a batch broadcast of a matrix.
const LAYOUTS: [(&[usize], &[usize], &[usize]); 6] = [
    (&[300, 70], &[300, 70], &[300, 70]),
    (&[300, 70], &[70], &[300, 70]),
    (&[300, 70], &[300, 1], &[300, 70]),
    (&[], &[300, 70], &[300, 70]),
    (&[300, 70], &[], &[300, 70]),
    (&[4, 1, 33, 17], &[5, 33, 17], &[4, 5, 33, 17]),
];

#[test]
fn binary_kernels_equal_an_element_walk_bit_for_bit_for_any_thread_count() {
    let mut rng = Rng::new(44);
    for &(sa, sb, so) in &LAYOUTS {
        let (na, nb, n) = (sa.iter().product::<usize>(), sb.iter().product::<usize>(), so.iter().product::<usize>());
        let a: Vec<f32> = rng.vec(na).iter().map(|x| x + 1.5).collect();
        let mut b: Vec<f32> = rng.vec(nb).iter().map(|x| x + 1.5).collect();
        b[0] = a[0]; // a tie for maximum / minimum
        let (ast, bst) = (broadcast_strides(sa, so), broadcast_strides(sb, so));
        let (ia, ib) = (offsets(so, &ast, 0), offsets(so, &bst, 0));
        let shape: Vec<i32> = so.iter().map(|&d| d as i32).collect();
        let dy = rng.vec(n);
        for op in [0u32, 1, 2, 3, 4, 5, 6, 9] {
            // The element-by-element walk: out[i] from a[ia[i]], b[ib[i]]; gradients added in order.
            let (mut want, mut wda, mut wdb) = (vec![0.0f32; n], vec![0.5f32; na], vec![0.5f32; nb]);
            let mut probe = [0.0f32; 1];
            for i in 0..n {
                binary_forward(&mut probe, &a[ia[i]..ia[i] + 1], &b[ib[i]..ib[i] + 1], &[1], &[1], &[1], op, &Serial);
                want[i] = probe[0];
                let (mut ga, mut gb) = ([0.0f32], [0.0f32]);
                binary_backward(Some(&mut ga), Some(&mut gb), &dy[i..i + 1], &a[ia[i]..ia[i] + 1], &b[ib[i]..ib[i] + 1], &[1], &[1], &[1], op, &Serial);
                wda[ia[i]] += ga[0];
                wdb[ib[i]] += gb[0];
            }
            same_for_any_threads("binary", |par| {
                let mut out = vec![0.0f32; n];
                binary_forward(&mut out, &a, &b, &shape, &ast, &bst, op, par);
                assert_eq!(bits(&out), bits(&want), "binary_forward op {op} {sa:?} {sb:?}");
                let (mut da, mut db) = (vec![0.5f32; na], vec![0.5f32; nb]);
                binary_backward(Some(&mut da), Some(&mut db), &dy, &a, &b, &shape, &ast, &bst, op, par);
                assert_eq!((bits(&da), bits(&db)), (bits(&wda), bits(&wdb)), "binary_backward op {op} {sa:?} {sb:?}");
                [out, da, db].concat()
            });
        }
        let cond: Vec<u8> = (0..na).map(|i| (i % 3 == 0) as u8).collect();
        same_for_any_threads("where", |par| {
            let mut out = vec![0.0f32; n];
            where_forward(&mut out, &cond, &a, &b, &shape, &ast, &ast, &bst, par);
            for i in 0..n {
                assert_eq!(out[i], if cond[ia[i]] != 0 { a[ia[i]] } else { b[ib[i]] });
            }
            out
        });
    }
}

/// (source shape, view shape, strides, offset).
type View = (&'static [usize], &'static [usize], &'static [i32], i32);

#[test]
fn strided_copies_equal_an_element_walk_for_any_thread_count() {
    let mut rng = Rng::new(45);
    // (source shape, view shape, strides, offset): transpose12, a permute with a strided
    // innermost dim, a narrow of the last dim, a step slice, an expand, a 0-d view.
    let views: [View; 6] = [
        (&[8, 64, 6, 16], &[8, 6, 64, 16], &[6144, 16, 96, 1], 0),
        (&[30, 40, 5], &[5, 30, 40], &[1, 200, 5], 0),
        (&[50, 3, 48], &[50, 1, 48], &[144, 48, 1], 48),
        (&[40, 40], &[20, 13], &[80, 3], 1),
        (&[70], &[300, 70], &[0, 1], 0),
        (&[5], &[], &[], 3),
    ];
    for &(src, shape, strides, offset) in &views {
        let x = rng.vec(src.iter().product());
        let at = offsets(shape, strides, offset);
        let shape: Vec<i32> = shape.iter().map(|&d| d as i32).collect();
        let dy = rng.vec(at.len());
        let mut want_back = vec![0.25f32; x.len()];
        for (i, &j) in at.iter().enumerate() {
            want_back[j] += dy[i];
        }
        same_for_any_threads("strided copy", |par| {
            let mut y = vec![0.0f32; at.len()];
            strided_copy_forward(&mut y, &x, &shape, strides, offset, par);
            assert_eq!(bits(&y), bits(&at.iter().map(|&j| x[j]).collect::<Vec<_>>()), "forward {shape:?} {strides:?}");
            let mut back = vec![0.25f32; x.len()];
            strided_copy_backward(&mut back, &dy, &shape, strides, offset, par);
            assert_eq!(bits(&back), bits(&want_back), "backward {shape:?} {strides:?}");
            [y, back].concat()
        });
    }
}

// ---- reductions and softmax along a dim ------------------------------------------------------

use ferroformer_kernels::ops::reduce::{reduce_backward, reduce_forward, softmax_dim_backward, softmax_dim_forward};

/// The element loop the outer-dims path must equal bit for bit: each column in j order, f64
/// sums from -0.0 (as Rust's f64 `Sum`), NaN-propagating extremes.
fn reduce_column_loop(op: u32, x: &[f32], outer: usize, n: usize, inner: usize, correction: f32) -> Vec<f32> {
    let mut out = vec![0.0f32; outer * inner];
    for o in 0..outer {
        for i in 0..inner {
            let col: Vec<f32> = (0..n).map(|j| x[(o * n + j) * inner + i]).collect();
            let sum = |f: &dyn Fn(f64) -> f64| col.iter().map(|&v| f(v as f64)).sum::<f64>();
            let ext = |max: bool| col.iter().fold(if max { f32::NEG_INFINITY } else { f32::INFINITY }, |a, &v| {
                if v.is_nan() || (if max { v > a } else { v < a }) { v } else { a }
            });
            let mean = sum(&|v| v) / n as f64;
            out[o * inner + i] = match op {
                0 => sum(&|v| v) as f32,
                1 => mean as f32,
                2 => (sum(&|v| (v - mean).powi(2)) / (n as f64 - correction as f64)) as f32,
                3 => ext(true),
                4 => ext(false),
                _ => {
                    let m = ext(true) as f64;
                    if m.is_finite() { (m + sum(&|v| (v - m).exp()).ln()) as f32 } else { m as f32 }
                }
            };
        }
    }
    out
}

#[test]
fn reductions_over_outer_dims_equal_the_element_loop_and_last_dim_ones_are_close() {
    let mut rng = Rng::new(46);
    for &(outer, n, inner) in &[(1usize, 300usize, 700usize), (3, 17, 5), (2, 5, 300), (400, 130, 1), (3, 1, 1)] {
        let mut x = rng.vec(outer * n * inner);
        x[0] = f32::NAN; // one NaN column (or row): NaN out for every op
        for op in 0..6u32 {
            let correction = if op == 2 && n > 1 { 1.0 } else { 0.0 };
            let want = reduce_column_loop(op, &x, outer, n, inner, correction);
            same_for_any_threads("reduce", |par| {
                let mut out = vec![0.0f32; outer * inner];
                reduce_forward(&mut out, &x, outer, n, inner, op, correction, par);
                if inner > 1 {
                    assert_eq!(bits(&out), bits(&want), "reduce {op} [{outer}, {n}, {inner}]");
                } else {
                    assert!(out[0].is_nan(), "reduce {op}: NaN row");
                    assert_close(&format!("reduce {op} [{outer}, {n}, 1]"), &out[1..], &to64(&want[1..]), 1e-6);
                }
                let (dy, mut dx) = (rng_vec(outer * inner, op), vec![0.5f32; x.len()]);
                reduce_backward(&mut dx, &dy, &x, &out, outer, n, inner, op, correction, par);
                [out, dx].concat()
            });
        }
    }
}

/// Deterministic data for closures that cannot borrow the test's generator.
fn rng_vec(n: usize, seed: u32) -> Vec<f32> {
    Rng::new(seed as u64 + 100).vec(n)
}

#[test]
fn softmax_along_the_last_dim_matches_f64_and_keeps_nan_rows() {
    let mut rng = Rng::new(47);
    let (rows, n) = (300usize, 65usize);
    let mut x: Vec<f32> = rng.vec(rows * n).iter().map(|v| 8.0 * v).collect();
    x[n..2 * n].fill(f32::NEG_INFINITY); // row 1: nothing visible
    x[2 * n + 3] = f32::NAN; // row 2: a NaN
    for log in [false, true] {
        let y = {
            let mut y = vec![0.0f32; x.len()];
            softmax_dim_forward(&mut y, &x, rows, n, 1, log, &Serial);
            y
        };
        assert!(y[n..3 * n].iter().all(|v| v.is_nan()), "all -inf and NaN rows give NaN");
        for r in [0usize, 3, rows - 1] {
            let row: Vec<f64> = x[r * n..(r + 1) * n].iter().map(|&v| v as f64).collect();
            let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let lse = m + row.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
            let want: Vec<f64> = row.iter().map(|v| if log { v - lse } else { (v - lse).exp() }).collect();
            assert_close(&format!("softmax log={log} row {r}"), &y[r * n..(r + 1) * n], &want, 1e-6);
        }
        let dy = rng.vec(x.len());
        same_for_any_threads("softmax_dim", |par| {
            let mut out = vec![0.0f32; x.len()];
            softmax_dim_forward(&mut out, &x, rows, n, 1, log, par);
            let mut dx = vec![0.0f32; x.len()];
            softmax_dim_backward(&mut dx, &dy, &out, rows, n, 1, log, par);
            let r = 5;
            let (g, yv) = (&dy[r * n..(r + 1) * n], &out[r * n..(r + 1) * n]);
            let s: f64 = if log { g.iter().map(|&v| v as f64).sum() } else { g.iter().zip(yv).map(|(&a, &b)| a as f64 * b as f64).sum() };
            let want: Vec<f64> = (0..n).map(|j| if log { g[j] as f64 - (yv[j] as f64).exp() * s } else { yv[j] as f64 * (g[j] as f64 - s) }).collect();
            assert_close("softmax backward row", &dx[r * n..(r + 1) * n], &want, 1e-5);
            [out, dx].concat()
        });
    }
}

// ---- max along a dim, gather / index_select, comparisons -------------------------------------

use ferroformer_kernels::ops::broadcast::compare_forward;
use ferroformer_kernels::ops::index::{gather_backward, gather_forward, index_select_backward, index_select_forward};
use ferroformer_kernels::ops::reduce::max_dim_forward;
use ferroformer_kernels::simd::Compare;
#[path = "common/max_dim_loop.rs"]
mod max_dim_loop;
use max_dim_loop::max_dim_loop;

/// Rows full of ties, signed zeros, infinities and NaN at chosen places, from a few values so
/// that maxima repeat.
fn hard_values(rng: &mut Rng, len: usize) -> Vec<f32> {
    const PICK: [f32; 8] = [0.0, -0.0, 1.5, -2.0, 1.5, f32::NEG_INFINITY, 3.0, -0.0];
    (0..len).map(|_| PICK[rng.below(PICK.len())]).collect()
}

fn ibits(x: &[i32]) -> Vec<u32> {
    x.iter().map(|&v| v as u32).collect()
}

#[test]
fn arg_extreme_helpers_equal_the_scalar_scan_on_every_isa() {
    let mut rng = Rng::new(50);
    for &n in &[1usize, 2, 31, 32, 33, 63, 64, 65, 100, 384, 1000] {
        for case in 0..6 {
            let mut x = if case < 3 { rng.vec(n) } else { hard_values(&mut rng, n) };
            match case {
                1 | 4 => x[rng.below(n)] = f32::NAN,
                2 | 5 => {
                    x[rng.below(n)] = f32::NAN;
                    x[rng.below(n)] = f32::NAN;
                }
                _ => {}
            }
            for min in [false, true] {
                let (want_v, want_i) = max_dim_loop(&x, 1, n, 1, min);
                for isa in Isa::available() {
                    let p = simd::arg_extreme_with(isa, &x, min);
                    assert_eq!((x[p].to_bits(), p as i32), (want_v[0].to_bits(), want_i[0]), "{isa:?} n={n} case={case} min={min}");
                }
            }
        }
    }
    // Column steps, amax steps and f64 column sums against their plain loops.
    let (rows, cols) = (9usize, 70usize);
    let x = hard_values(&mut rng, rows * cols);
    let mut y = rng.vec(rows * cols);
    y[5] = f32::NAN;
    for isa in Isa::available() {
        for min in [false, true] {
            let (want_v, want_i) = max_dim_loop(&x, 1, rows, cols, min);
            let (mut best, mut at) = (x[..cols].to_vec(), vec![0i32; cols]);
            for j in 1..rows {
                simd::arg_extreme_step_with(isa, &mut best, &mut at, &x[j * cols..(j + 1) * cols], j as i32, min);
            }
            assert_eq!((bits(&best), ibits(&at)), (bits(&want_v), ibits(&want_i)), "arg_extreme_step {isa:?} min={min}");
            let mut acc = vec![if min { f32::INFINITY } else { f32::NEG_INFINITY }; cols];
            let mut want = acc.clone();
            for j in 0..rows {
                simd::extreme_step_with(isa, &mut acc, &y[j * cols..(j + 1) * cols], min);
                for (w, &v) in want.iter_mut().zip(&y[j * cols..(j + 1) * cols]) {
                    *w = if v.is_nan() || (if min { v < *w } else { v > *w }) { v } else { *w };
                }
            }
            assert_eq!(bits(&acc), bits(&want), "extreme_step {isa:?} min={min}");
        }
        let (mut sum, mut dev) = (vec![-0.0f64; cols], vec![-0.0f64; cols]);
        let mean: Vec<f64> = (0..cols).map(|c| c as f64 * 0.01).collect();
        let (mut want_sum, mut want_dev) = (sum.clone(), dev.clone());
        for j in 0..rows {
            let row = &y[j * cols..(j + 1) * cols];
            simd::add_f64_with(isa, &mut sum, row);
            simd::add_sq_dev_f64_with(isa, &mut dev, row, &mean);
            for c in 0..cols {
                want_sum[c] += row[c] as f64;
                want_dev[c] += (row[c] as f64 - mean[c]).powi(2);
            }
        }
        let b64 = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!((b64(&sum), b64(&dev)), (b64(&want_sum), b64(&want_dev)), "f64 column sums {isa:?}");
    }
}

#[test]
fn max_dim_equals_the_scalar_loop_for_any_thread_count() {
    let mut rng = Rng::new(51);
    for &(outer, n, inner) in &[(300usize, 384usize, 1usize), (7, 65, 1), (4, 1, 1), (8, 40, 300), (3, 17, 5), (1, 300, 700), (2, 1, 9)] {
        for hard in [false, true] {
            let mut x = if hard { hard_values(&mut rng, outer * n * inner) } else { rng.vec(outer * n * inner) };
            let at = rng.below(x.len());
            x[at] = f32::NAN;
            for min in [false, true] {
                let (want_v, want_i) = max_dim_loop(&x, outer, n, inner, min);
                same_for_any_threads("max_dim_forward", |par| {
                    let (mut v, mut i) = (vec![f32::NAN; outer * inner], vec![-1i32; outer * inner]);
                    max_dim_forward(&mut v, &mut i, &x, outer, n, inner, min, par);
                    assert_eq!((bits(&v), ibits(&i)), (bits(&want_v), ibits(&want_i)), "[{outer}, {n}, {inner}] min={min} hard={hard}");
                    v
                });
            }
        }
    }
}

#[test]
fn gather_and_index_select_equal_their_loops_for_any_thread_count() {
    let mut rng = Rng::new(52);
    // (outer, n, k, inner): along the last dim, a middle dim with a row of 300 (several column
    // blocks), the first dim, and one element.
    for &(outer, n, k, inner) in &[(40usize, 50usize, 70usize, 1usize), (3, 20, 30, 300), (1, 9, 600, 65), (1, 1, 1, 1)] {
        let x = rng.vec(outer * n * inner);
        let index: Vec<i32> = (0..outer * k * inner).map(|_| rng.below(n) as i32).collect();
        let dy = rng.vec(outer * k * inner);
        // The loops the kernels ran before (repeated indices add in j order).
        let (mut want_y, mut want_dx) = (vec![0.0f32; dy.len()], vec![0.25f32; x.len()]);
        for o in 0..outer {
            for j in 0..k {
                for i in 0..inner {
                    let at = (o * k + j) * inner + i;
                    let src = (o * n + index[at] as usize) * inner + i;
                    want_y[at] = x[src];
                    want_dx[src] += dy[at];
                }
            }
        }
        same_for_any_threads("gather", |par| {
            let (mut y, mut dx) = (vec![f32::NAN; dy.len()], vec![0.25f32; x.len()]);
            gather_forward(&mut y, &x, &index, outer, n, k, inner, par);
            gather_backward(&mut dx, &dy, &index, outer, n, k, inner, par);
            assert_eq!((bits(&y), bits(&dx)), (bits(&want_y), bits(&want_dx)), "gather [{outer}, {n}, {k}, {inner}]");
            [y, dx].concat()
        });
        let sel: Vec<i32> = (0..k).map(|_| rng.below(n) as i32).collect();
        let padding = sel[0];
        let (mut want_y, mut want_dx) = (vec![0.0f32; dy.len()], vec![0.25f32; x.len()]);
        for o in 0..outer {
            for (j, &id) in sel.iter().enumerate() {
                let (src, dst) = ((o * n + id as usize) * inner, (o * k + j) * inner);
                want_y[dst..dst + inner].copy_from_slice(&x[src..src + inner]);
                if id != padding {
                    for i in 0..inner {
                        want_dx[src + i] += dy[dst + i];
                    }
                }
            }
        }
        same_for_any_threads("index_select", |par| {
            let (mut y, mut dx) = (vec![f32::NAN; dy.len()], vec![0.25f32; x.len()]);
            index_select_forward(&mut y, &x, &sel, outer, n, k, inner, par);
            index_select_backward(&mut dx, &dy, &sel, outer, n, k, inner, padding, par);
            assert_eq!((bits(&y), bits(&dx)), (bits(&want_y), bits(&want_dx)), "index_select [{outer}, {n}, {k}, {inner}]");
            [y, dx].concat()
        });
    }
}

#[test]
fn comparisons_equal_an_element_walk_on_every_isa_and_thread_count() {
    let mut rng = Rng::new(53);
    let ops = [(7u32, Compare::Eq), (8, Compare::Ne), (9, Compare::Lt), (10, Compare::Le), (11, Compare::Gt), (12, Compare::Ge)];
    let cmp = |op: u32, x: f32, y: f32| match op {
        7 => x == y,
        8 => x != y,
        9 => x < y,
        10 => x <= y,
        11 => x > y,
        _ => x >= y,
    } as u8;
    // The helper on every instruction set: contiguous, a repeated right or left operand.
    for &n in &[1usize, 15, 16, 17, 64, 1000] {
        let (mut a, b) = (hard_values(&mut rng, n), hard_values(&mut rng, n));
        a[n / 2] = f32::NAN;
        for &(code, op) in &ops {
            for isa in Isa::available() {
                for (x, y) in [(&a[..], &b[..]), (&a[..], &b[..1]), (&a[..1], &b[..])] {
                    let mut out = vec![9u8; n];
                    simd::compare_to_with(isa, &mut out, x, y, op);
                    let at = |v: &[f32], i: usize| if v.len() == 1 { v[0] } else { v[i] };
                    let want: Vec<u8> = (0..n).map(|i| cmp(code, at(x, i), at(y, i))).collect();
                    assert_eq!(out, want, "compare_to {isa:?} {op:?} n={n} lens {} {}", x.len(), y.len());
                }
            }
        }
    }
    // The kernel over the broadcast layouts and a transposed operand, any thread count.
    // (output shape, a's strides, b's strides, [a's length, b's length])
    type Layout = (Vec<usize>, Vec<i32>, Vec<i32>, Vec<usize>);
    let mut layouts: Vec<Layout> = LAYOUTS.iter()
        .map(|&(sa, sb, so)| (so.to_vec(), broadcast_strides(sa, so), broadcast_strides(sb, so), vec![sa.iter().product(), sb.iter().product()]))
        .collect();
    layouts.push((vec![70, 300], vec![1, 70], vec![300, 1], vec![21_000, 21_000]));
    for (so, ast, bst, lens) in &layouts {
        let (a, b) = (hard_values(&mut rng, lens[0]), hard_values(&mut rng, lens[1]));
        let (ia, ib) = (offsets(so, ast, 0), offsets(so, bst, 0));
        let shape: Vec<i32> = so.iter().map(|&d| d as i32).collect();
        for &(code, _) in &ops {
            let want: Vec<u8> = ia.iter().zip(&ib).map(|(&i, &j)| cmp(code, a[i], b[j])).collect();
            same_for_any_threads("compare_forward", |par| {
                let mut out = vec![9u8; want.len()];
                compare_forward(&mut out, &a, &b, &shape, ast, bst, code, par);
                assert_eq!(out, want, "compare_forward {code} {so:?} {ast:?} {bst:?}");
                out.iter().map(|&v| v as f32).collect()
            });
        }
    }
}

#[test]
fn softmax_along_a_middle_dim_equals_the_column_loop_for_any_thread_count() {
    let mut rng = Rng::new(54);
    let (outer, n, inner) = (4usize, 50usize, 300usize);
    let mut x: Vec<f32> = rng.vec(outer * n * inner).iter().map(|v| 6.0 * v).collect();
    for j in 0..n {
        x[j * inner + 7] = f32::NEG_INFINITY; // column 7 of block 0 sees nothing
    }
    x[(n / 2) * inner + 9] = f32::NAN;
    let dy = rng.vec(x.len());
    for log in [false, true] {
        // The per-column f64 loop (one column at a time, in j order).
        let (mut want, mut want_dx) = (vec![0.0f32; x.len()], vec![0.5f32; x.len()]);
        for o in 0..outer {
            for i in 0..inner {
                let at = |j: usize| (o * n + j) * inner + i;
                let m = (0..n).map(|j| x[at(j)]).fold(f32::NEG_INFINITY, |a, v| if v.is_nan() || v > a { v } else { a }) as f64;
                let sum: f64 = (0..n).map(|j| (x[at(j)] as f64 - m).exp()).sum();
                for j in 0..n {
                    let z = x[at(j)] as f64 - m;
                    want[at(j)] = if log { z - sum.ln() } else { z.exp() / sum } as f32;
                }
                let (g, y) = (|j: usize| dy[at(j)] as f64, |j: usize| want[at(j)] as f64);
                let s: f64 = if log { (0..n).map(g).sum() } else { (0..n).map(|j| g(j) * y(j)).sum() };
                for j in 0..n {
                    want_dx[at(j)] += if log { g(j) - y(j).exp() * s } else { y(j) * (g(j) - s) } as f32;
                }
            }
        }
        same_for_any_threads("softmax_dim middle", |par| {
            let (mut y, mut dx) = (vec![0.0f32; x.len()], vec![0.5f32; x.len()]);
            softmax_dim_forward(&mut y, &x, outer, n, inner, log, par);
            softmax_dim_backward(&mut dx, &dy, &y, outer, n, inner, log, par);
            let nan_free = |v: &[f32]| v.iter().map(|f| if f.is_nan() { u32::MAX } else { f.to_bits() }).collect::<Vec<_>>();
            assert_eq!((nan_free(&y), nan_free(&dx)), (nan_free(&want), nan_free(&want_dx)), "log={log}");
            [y, dx].concat()
        });
    }
}
