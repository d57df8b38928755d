//! The streaming kernels at W6's sizes (nanoGPT Shakespeare-char: B 8, T 256, C 384, 6
//! heads) against the scalar loops they replaced, one thread:
//! `cargo run --release --example streams_bench`. Prints ms per call and the ratio.
//! `-- --tensor-ops` times only max along a dim, gather / index_select, comparisons and the
//! reductions over a middle dim, against their scalar loops, with 1 and 2 threads (every call
//! split); `FERROFORMER_ISA=avx2` runs the AVX2 path on an AVX-512 machine. Layer norm
//! backward's one-thread pass is also timed against the split path's two passes.
use ferroformer_kernels::ops::broadcast::binary_forward;
use ferroformer_kernels::ops::elementwise::*;
use ferroformer_kernels::ops::reduce::{reduce_forward, softmax_dim_forward};
use ferroformer_kernels::ops::strided::strided_copy_forward;
use ferroformer_kernels::ops::layernorm::layernorm_backward;
use ferroformer_kernels::optim::adam::adam_update;
use ferroformer_kernels::Serial;
use std::time::Instant;

#[path = "../tests/common/max_dim_loop.rs"]
mod max_dim_loop;

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

/// Hands a kernel two threads' split but runs the tasks in order on the calling thread: the
/// code path of a split call, timed against the one-thread path on the same core.
struct SplitOnOneThread;
impl ferroformer_kernels::Parallel for SplitOnOneThread {
    fn threads(&self) -> usize {
        2
    }
    fn for_each(&self, tasks: usize, f: &(dyn Fn(usize) + Sync)) {
        (0..tasks).for_each(f);
    }
}

/// Layer norm backward at W4 / W5's and W6's rows: the one-thread path (each row's dweight /
/// dbias inside the row loop) against the split path's two passes (rows, then column blocks),
/// rounds alternating, best of each.
fn layernorm_passes() {
    for (what, rows, c) in [("W4 [1024, 128]", 1024usize, 128usize), ("W5 [768, 128]", 768, 128), ("W6 [2048, 384]", 2048, 384)] {
        let n = rows * c;
        let (x, y, w, mean) = (data(n, 1), data(n, 2), data(c, 5), data(rows, 6));
        let rstd = vec![1.3f32; rows];
        let (mut d, mut dw, mut db) = (vec![0.0f32; n], vec![0.0f32; c], vec![0.0f32; c]);
        let (mut one, mut two) = (f64::MAX, f64::MAX);
        for _ in 0..5 {
            one = one.min(best_ms(20, || layernorm_backward(&mut d, &mut dw, &mut db, &y, &x, &w, &mean, &rstd, rows, c, &Serial)));
            two = two.min(best_ms(20, || layernorm_backward(&mut d, &mut dw, &mut db, &y, &x, &w, &mean, &rstd, rows, c, &SplitOnOneThread)));
        }
        println!("layernorm_backward {what:<15} two passes {two:8.3} ms   one pass {one:8.3} ms   {:5.2}x", two / one);
    }
}

fn main() {
    if std::env::args().any(|a| a == "--tensor-ops") {
        tensor_ops::run();
        return;
    }
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
    layernorm_passes();
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

/// Max along a dim, gather / index_select, comparisons and middle-dim reductions at W6's
/// sizes: the scalar loops they replaced against the kernels on 1 and 2 threads.
mod tensor_ops {
    use super::{best_ms, data};
    use ferroformer_kernels::ops::broadcast::compare_forward;
    use ferroformer_kernels::ops::index::*;
    use ferroformer_kernels::ops::reduce::{max_dim_forward, reduce_forward};
    use ferroformer_kernels::parallel::set_min_parallel_flops;
    use ferroformer_kernels::simd::Isa;
    use ferroformer_kernels::{Parallel, Serial};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// The calling thread and one scoped thread taking tasks from a shared counter (a thread
    /// start per call, ~20-50 µs, which the addon's pool does not pay).
    struct Two;
    impl Parallel for Two {
        fn threads(&self) -> usize {
            2
        }
        fn for_each(&self, tasks: usize, f: &(dyn Fn(usize) + Sync)) {
            let next = AtomicUsize::new(0);
            let work = || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= tasks {
                    break;
                }
                f(i);
            };
            std::thread::scope(|s| {
                s.spawn(work);
                work();
            });
        }
    }

    fn report(what: &str, old: f64, one: f64, two: f64) {
        println!("{what:<44} loop {old:7.3} ms   1 thread {one:7.3} ms ({:5.2}x)   2 threads {two:7.3} ms ({:5.2}x)", old / one, old / two);
    }

    /// Times `old` against `new` on Serial and on Two.
    fn case(what: &str, reps: usize, old: impl FnMut(), mut new: impl FnMut(&dyn Parallel)) {
        let o = best_ms(reps, old);
        let one = best_ms(reps, || new(&Serial));
        let two = best_ms(reps, || new(&Two));
        report(what, o, one, two);
    }

    /// The loops these kernels ran before.
    mod old {
        pub use crate::max_dim_loop::max_dim_loop;

        fn checked(id: i32, n: usize) -> usize {
            assert!(id >= 0 && (id as usize) < n, "index {id} out of range");
            id as usize
        }

        pub fn gather(out: &mut [f32], inp: &[f32], index: &[i32], outer: usize, n: usize, k: usize, inner: usize) {
            for o in 0..outer {
                for j in 0..k {
                    for i in 0..inner {
                        let at = (o * k + j) * inner + i;
                        out[at] = inp[(o * n + checked(index[at], n)) * inner + i];
                    }
                }
            }
        }

        pub fn gather_backward(dinp: &mut [f32], dout: &[f32], index: &[i32], outer: usize, n: usize, k: usize, inner: usize) {
            for o in 0..outer {
                for j in 0..k {
                    for i in 0..inner {
                        let at = (o * k + j) * inner + i;
                        dinp[(o * n + checked(index[at], n)) * inner + i] += dout[at];
                    }
                }
            }
        }

        pub fn index_select(out: &mut [f32], inp: &[f32], index: &[i32], outer: usize, n: usize, k: usize, inner: usize) {
            for o in 0..outer {
                for (j, &id) in index.iter().enumerate() {
                    let src = (o * n + checked(id, n)) * inner;
                    let dst = (o * k + j) * inner;
                    out[dst..dst + inner].copy_from_slice(&inp[src..src + inner]);
                }
            }
        }

        #[allow(clippy::too_many_arguments)]
        pub fn index_select_backward(dinp: &mut [f32], dout: &[f32], index: &[i32], outer: usize, n: usize, k: usize, inner: usize) {
            for o in 0..outer {
                for (j, &id) in index.iter().enumerate() {
                    let row = checked(id, n);
                    let (dst, src) = ((o * n + row) * inner, (o * k + j) * inner);
                    ferroformer_kernels::simd::add_assign(&mut dinp[dst..dst + inner], &dout[src..src + inner]);
                }
            }
        }

        /// compare_forward's run loop (baseline x86-64 code, one thread) for a contiguous a
        /// and b with step sb (0: a scalar or a broadcast row).
        pub fn less(out: &mut [u8], a: &[f32], b: &[f32], len: usize, sb: usize) {
            for (r, dst) in out.chunks_exact_mut(len).enumerate() {
                let (a, ib) = (&a[r * len..(r + 1) * len], if sb == 0 { 0 } else { r * len });
                if sb == 0 {
                    let y = b[ib];
                    for (o, &x) in dst.iter_mut().zip(a) {
                        *o = (if x < y { 1.0f32 } else { 0.0 }) as u8;
                    }
                } else {
                    for ((o, &x), &y) in dst.iter_mut().zip(a).zip(&b[ib..ib + len]) {
                        *o = (if x < y { 1.0f32 } else { 0.0 }) as u8;
                    }
                }
            }
        }

        /// reduce_forward's column path: per tile, a `&dyn Fn` per element into f64.
        pub fn column_sums(out: &mut [f32], inp: &[f32], outer: usize, n: usize, inner: usize, var: bool) {
            const TILE: usize = 256;
            for o in 0..outer {
                for c0 in (0..inner).step_by(TILE) {
                    let nc = TILE.min(inner - c0);
                    let row = |j: usize| &inp[(o * n + j) * inner + c0..][..nc];
                    let column_sums = |acc: &mut [f64], f: &dyn Fn(usize, f64) -> f64| {
                        for j in 0..n {
                            for (c, (a, &v)) in acc.iter_mut().zip(row(j)).enumerate() {
                                *a += f(c, v as f64);
                            }
                        }
                    };
                    let mut acc = [-0.0f64; TILE];
                    let acc = &mut acc[..nc];
                    column_sums(acc, &|_, v| v);
                    if var {
                        acc.iter_mut().for_each(|a| *a /= n as f64);
                        let mut dev = [-0.0f64; TILE];
                        column_sums(&mut dev[..nc], &|c, v| (v - acc[c]).powi(2));
                        for (a, d) in acc.iter_mut().zip(&dev) {
                            *a = d / (n as f64 - 1.0);
                        }
                    }
                    for (y, a) in out[o * inner + c0..][..nc].iter_mut().zip(acc.iter()) {
                        *y = *a as f32;
                    }
                }
            }
        }
    }

    pub fn run() {
        set_min_parallel_flops(0);
        println!("instruction set {:?}", Isa::detect());
        let (b, t, c, h) = (8usize, 256usize, 384usize, 6usize);
        let n = b * t * c;
        let x = &data(n, 1)[..];
        let f32s = |len: usize| vec![0.0f32; len];
        let i32s = |len: usize| vec![0i32; len];
        let (mut v2, mut ix2) = (f32s(b * t), i32s(b * t));
        case("max(dim=-1) [B*T, C] with indices", 10, || { std::hint::black_box(old::max_dim_loop(x, b * t, c, 1, false)); },
            |par| max_dim_forward(&mut v2, &mut ix2, x, b * t, c, 1, false, par));
        let (mut v, mut v2, mut ix2) = (f32s(b * c), f32s(b * c), i32s(b * c));
        case("max(dim=1) [B, T, C] with indices", 10, || { std::hint::black_box(old::max_dim_loop(x, b, t, c, false)); },
            |par| max_dim_forward(&mut v2, &mut ix2, x, b, t, c, false, par));
        case("sum(dim=1) [B, T, C]", 10, || old::column_sums(&mut v, x, b, t, c, false),
            |par| reduce_forward(&mut v2, x, b, t, c, 0, 0.0, par));
        case("var(dim=1) [B, T, C]", 10, || old::column_sums(&mut v, x, b, t, c, true),
            |par| reduce_forward(&mut v2, x, b, t, c, 2, 1.0, par));
        // Indices: a pseudo-random position along the gathered dim.
        let ids = |len: usize, n: usize| -> Vec<i32> { (0..len).map(|i| ((i * 7919 + 13) % n) as i32).collect() };
        let (mut y, mut y2) = (f32s(n), f32s(n));
        let last = ids(n, c);
        case("gather(dim=-1) [B*T, C]", 10, || old::gather(&mut y, x, &last, b * t, c, c, 1),
            |par| gather_forward(&mut y2, x, &last, b * t, c, c, 1, par));
        let mid = ids(n, t);
        case("gather(dim=1) [B, T, C]", 10, || old::gather(&mut y, x, &mid, b, t, t, c),
            |par| gather_forward(&mut y2, x, &mid, b, t, t, c, par));
        case("gather backward (scatter_add) dim=1 [B, T, C]", 10, || old::gather_backward(&mut y, x, &mid, b, t, t, c),
            |par| gather_backward(&mut y2, x, &mid, b, t, t, c, par));
        // An embedding: [65, C] table, B*T ids (W6's vocabulary), and a middle-dim select.
        let (vocab, tok) = (65usize, ids(b * t, 65));
        let table = data(vocab * c, 3);
        case("index_select(0) [65, C] by B*T ids", 10, || old::index_select(&mut y, &table, &tok, 1, vocab, b * t, c),
            |par| index_select_forward(&mut y2, &table, &tok, 1, vocab, b * t, c, par));
        let (mut dt, mut dt2) = (f32s(vocab * c), f32s(vocab * c));
        case("index_select backward [65, C] by B*T ids", 10, || old::index_select_backward(&mut dt, x, &tok, 1, vocab, b * t, c),
            |par| index_select_backward(&mut dt2, x, &tok, 1, vocab, b * t, c, -1, par));
        let sel = ids(t, t);
        case("index_select(1) [B, T, C]", 10, || old::index_select(&mut y, x, &sel, b, t, t, c),
            |par| index_select_forward(&mut y2, x, &sel, b, t, t, c, par));
        // Comparisons: [B, H, T, T] < scalar, [B, H, T, T] < same shape, [B*T, C] < [C].
        let tt = b * h * t * t;
        let (s1, s2) = (data(tt, 4), data(tt, 5));
        let (mut m, mut m2) = (vec![0u8; tt], vec![0u8; tt]);
        let sh4 = [b as i32, h as i32, t as i32, t as i32];
        let st4 = [(h * t * t) as i32, (t * t) as i32, t as i32, 1];
        case("lt [B, H, T, T] < scalar", 5, || old::less(&mut m, &s1, &s2, t, 0),
            |par| compare_forward(&mut m2, &s1, &s2[..1], &sh4, &st4, &[0; 4], 9, par));
        case("lt [B, H, T, T] < [B, H, T, T]", 5, || old::less(&mut m, &s1, &s2, t, 1),
            |par| compare_forward(&mut m2, &s1, &s2, &sh4, &st4, &st4, 9, par));
        let (mut m, mut m2) = (vec![0u8; n], vec![0u8; n]);
        let row = data(c, 6);
        let (sh2, st2) = ([(b * t) as i32, c as i32], [c as i32, 1]);
        case("lt [B*T, C] < [C]", 10, || {
            for (dst, a) in m.chunks_exact_mut(c).zip(x.chunks_exact(c)) {
                old::less(dst, a, &row, c, 1);
            }
            std::hint::black_box(&mut m);
        }, |par| compare_forward(&mut m2, x, &row, &sh2, &st2, &[0, 1], 9, par));
    }
}
