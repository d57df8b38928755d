//! The streaming kernels at W6's sizes (nanoGPT Shakespeare-char: B 8, T 256, C 384, 6
//! heads) against the scalar loops they replaced, one thread:
//! `cargo run --release --example streams_bench`. Prints ms per call and the ratio.
use ferroformer_kernels::ops::broadcast::binary_forward;
use ferroformer_kernels::ops::elementwise::*;
use ferroformer_kernels::ops::reduce::{reduce_forward, softmax_dim_forward};
use ferroformer_kernels::ops::strided::strided_copy_forward;
use ferroformer_kernels::ops::layernorm::layernorm_backward;
use ferroformer_kernels::optim::adam::adam_update;
use ferroformer_kernels::Serial;
use std::time::Instant;

fn best_ms<F: FnMut()>(reps: usize, mut f: F) -> f64 {
    f();
    let mut best = f64::MAX;
    for _ in 0..7 {
        let t = Instant::now();
        for _ in 0..reps {
            f();
        }
        best = best.min(t.elapsed().as_secs_f64() * 1e3 / reps as f64);
    }
    best
}

fn data(n: usize, seed: usize) -> Vec<f32> {
    (0..n).map(|i| (((i * 7 + seed) % 13) as f32 - 6.0) * 0.05).collect()
}

fn report(what: &str, old: f64, new: f64) {
    println!("{what:<34} scalar loop {old:8.3} ms   now {new:8.3} ms   {:5.2}x", old / new);
}

/// The scalar loops of the previous kernels, kept here as the baseline.
mod old {
    /// The element-by-element walk the broadcast and strided kernels used.
    pub fn walk<const N: usize>(shape: &[i32], strides: [&[i32]; N], mut f: impl FnMut(usize, [usize; N])) {
        let ndim = shape.len();
        let total: usize = shape.iter().map(|&d| d as usize).product();
        let mut counter = [0usize; 8];
        let mut off = [0isize; N];
        for linear in 0..total {
            f(linear, std::array::from_fn(|v| off[v] as usize));
            let mut d = ndim;
            while d > 0 {
                d -= 1;
                counter[d] += 1;
                for v in 0..N {
                    off[v] += strides[v][d] as isize;
                }
                if counter[d] < shape[d] as usize {
                    break;
                }
                counter[d] = 0;
                for v in 0..N {
                    off[v] -= strides[v][d] as isize * shape[d] as isize;
                }
            }
        }
    }

    pub fn sum_squares(x: &[f32]) -> f64 {
        x.iter().map(|&v| (v as f64) * (v as f64)).sum()
    }

    #[allow(clippy::too_many_arguments)]
    pub fn adam(param: &mut [f32], m: &mut [f32], v: &mut [f32], grad: &[f32], step_size: f32, bc2_sqrt: f32, b1: f32, b2: f32, eps: f32, decay: f32) {
        for i in 0..param.len() {
            let p = param[i] * decay;
            let g = grad[i];
            let mi = b1 * m[i] + (1.0 - b1) * g;
            let vi = b2 * v[i] + (1.0 - b2) * g * g;
            m[i] = mi;
            v[i] = vi;
            param[i] = p - step_size * mi / (vi.sqrt() / bc2_sqrt + eps);
        }
    }

    pub fn transpose12_backward(dinp: &mut [f32], dout: &[f32], a: usize, b: usize, c: usize, d: usize) {
        for ia in 0..a {
            for ib in 0..b {
                for ic in 0..c {
                    let dst = ((ia * b + ib) * c + ic) * d;
                    let src = ((ia * c + ic) * b + ib) * d;
                    for (x, &g) in dinp[dst..dst + d].iter_mut().zip(&dout[src..src + d]) {
                        *x += g;
                    }
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub fn layernorm_backward(dinp: &mut [f32], dweight: &mut [f32], dbias: &mut [f32], dout: &[f32], inp: &[f32], weight: &[f32], mean: &[f32], rstd: &[f32], rows: usize, dim: usize) {
        for r in 0..rows {
            let x = &inp[r * dim..(r + 1) * dim];
            let go = &dout[r * dim..(r + 1) * dim];
            let (mu, rs) = (mean[r], rstd[r]);
            let (mut sum_g, mut sum_gx) = (0.0f64, 0.0f64);
            for i in 0..dim {
                let xhat = (x[i] - mu) * rs;
                let g = go[i] * weight[i];
                sum_g += g as f64;
                sum_gx += (g * xhat) as f64;
            }
            let mean_g = (sum_g / dim as f64) as f32;
            let mean_gx = (sum_gx / dim as f64) as f32;
            let di = &mut dinp[r * dim..(r + 1) * dim];
            for i in 0..dim {
                let xhat = (x[i] - mu) * rs;
                let g = go[i] * weight[i];
                dbias[i] += go[i];
                dweight[i] += go[i] * xhat;
                di[i] += (g - mean_g - xhat * mean_gx) * rs;
            }
        }
    }
}

fn main() {
    let (b, t, c, h) = (8usize, 256usize, 384usize, 6usize);
    let n = b * t * c;
    let (x, y) = (data(n, 1), data(n, 2));
    let mut d = vec![0.0f32; n];
    report("sum_squares [B,T,C]", best_ms(10, || { std::hint::black_box(old::sum_squares(&x)); }),
        best_ms(10, || { std::hint::black_box(sum_squares(&x, &Serial)); }));
    // W5's c_attn weight (in cache) and W6's c_fc weight (from memory).
    for (what, np) in [("adam_update [3C, C] W5", 49_152usize), ("adam_update [4C, C] W6", 589_824)] {
        let (g, mut p, mut m, mut v) = (data(np, 3), data(np, 4), vec![0.0f32; np], vec![0.0f32; np]);
        let oa = best_ms(20, || old::adam(&mut p, &mut m, &mut v, &g, 1e-3, 0.1, 0.9, 0.99, 1e-8, 0.9999));
        let na = best_ms(20, || adam_update(&mut p, &mut m, &mut v, &g, 1e-3, 0.9, 0.99, 1e-8, 0.1, 3, true, &Serial));
        report(what, oa, na);
    }
    let hd = c / h;
    report("transpose12_backward [B,T,H,D]", best_ms(10, || old::transpose12_backward(&mut d, &y, b, t, h, hd)),
        best_ms(10, || transpose12_backward(&mut d, &y, b, t, h, hd, &Serial)));
    report("accumulate [B,T,C]", best_ms(10, || { for (a, &s) in d.iter_mut().zip(&x) { *a += s; } }),
        best_ms(10, || accumulate(&mut d, &x, 1.0, &Serial)));
    let rows = b * t;
    let (w, mean, rstd) = (data(c, 5), data(rows, 6), vec![1.3f32; rows]);
    let (mut dw, mut db) = (vec![0.0f32; c], vec![0.0f32; c]);
    report("layernorm_backward [B*T, C]", best_ms(10, || old::layernorm_backward(&mut d, &mut dw, &mut db, &y, &x, &w, &mean, &rstd, rows, c)),
        best_ms(10, || layernorm_backward(&mut d, &mut dw, &mut db, &y, &x, &w, &mean, &rstd, rows, c, &Serial)));
    let shape = [(b * t) as i32, c as i32];
    for (what, bst) in [("binary add [B*T, C] + [B*T, C]", [c as i32, 1]), ("binary mul [B*T, C] * [C]", [0, 1]), ("binary div [B*T, C] / scalar", [0, 0])] {
        let op = if what.contains("add") { 0 } else if what.contains("mul") { 2 } else { 3 };
        let ast = [c as i32, 1];
        report(what, best_ms(10, || old::walk(&shape, [&ast, &bst], |i, [ia, ib]| d[i] = match op { 0 => x[ia] + y[ib], 2 => x[ia] * y[ib], _ => x[ia] / y[ib] })),
            best_ms(10, || binary_forward(&mut d, &x, &y, &shape, &ast, &bst, op, &Serial)));
    }
    // transpose(1, 2) of [B, T, H, D] through the strided copy.
    let (vshape, vstrides) = ([b as i32, h as i32, t as i32, hd as i32], [(t * c) as i32, hd as i32, c as i32, 1]);
    report("strided copy transpose(1, 2)", best_ms(10, || old::walk(&vshape, [&vstrides], |i, [s]| d[i] = x[s])),
        best_ms(10, || strided_copy_forward(&mut d, &x, &vshape, &vstrides, 0, &Serial)));
    // Sums over the last dim and over the outer dim, and softmax along the last dim, against
    // the element loop (f64, one column at a time, strided reads).
    let column_loop = |out: &mut [f32], outer: usize, n: usize, inner: usize| {
        for o in 0..outer {
            for i in 0..inner {
                out[o * inner + i] = (0..n).map(|j| x[(o * n + j) * inner + i] as f64).sum::<f64>() as f32;
            }
        }
    };
    let mut r = vec![0.0f32; b * t];
    report("sum over the last dim [B*T, C]", best_ms(10, || column_loop(&mut r, b * t, c, 1)),
        best_ms(10, || reduce_forward(&mut r, &x, b * t, c, 1, 0, 0.0, &Serial)));
    let mut r = vec![0.0f32; c];
    report("sum over the outer dim [B*T, C]", best_ms(10, || column_loop(&mut r, 1, b * t, c)),
        best_ms(10, || reduce_forward(&mut r, &x, 1, b * t, c, 0, 0.0, &Serial)));
    let softmax_loop = |out: &mut [f32], rows: usize, n: usize| {
        for row in 0..rows {
            let v = &x[row * n..(row + 1) * n];
            let m = v.iter().fold(f32::NEG_INFINITY, |a, &e| a.max(e)) as f64;
            let sum: f64 = v.iter().map(|&e| (e as f64 - m).exp()).sum();
            for (o, &e) in out[row * n..(row + 1) * n].iter_mut().zip(v) {
                *o = ((e as f64 - m).exp() / sum) as f32;
            }
        }
    };
    report("softmax along the last dim [B*T, C]", best_ms(10, || softmax_loop(&mut d, b * t, c)),
        best_ms(10, || softmax_dim_forward(&mut d, &x, b * t, c, 1, false, &Serial)));
}
