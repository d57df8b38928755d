//! Reductions over one contiguous block of dims, seen as inp [outer, n, inner] -> out
//! [outer, inner] (the ops layer makes any set of reduced dims one block, by a strided copy
//! when they are not adjacent). Sums run in f64. Also max / min along one dim with the first
//! maximal index (PyTorch's `max(dim)`; its backward is `gather_backward`), and softmax /
//! log-softmax along any dim.
//!
//! Fast paths by layout: a reduction over the last dim (inner = 1) reads contiguous rows
//! (sums in eight interleaved f64 partials combined in a fixed order, the extremes and
//! log-sum-exp through the SIMD helpers), one over outer dims (inner > 1) sweeps whole rows of
//! a column tile into f64 / f32 accumulators in the same order as the element loop (the same
//! bits). Work splits over rows, column tiles or outer blocks, never changing a result.

use crate::ops::cross_entropy::row_lse;
use crate::ops::elementwise::{for_blocks, for_rows, SendMut, CHUNK, STREAM_FLOPS};
use crate::parallel::{Parallel, SendPtr};
use crate::simd;

/// The reductions of [`reduce_forward`]; the code is what the kernel table passes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum ReduceOp {
    Sum = 0,
    Mean = 1,
    /// Variance with `correction` subtracted from n in the divisor (0 = population).
    Var = 2,
    Amax = 3,
    Amin = 4,
    LogSumExp = 5,
}

impl ReduceOp {
    pub fn from_code(code: u32) -> ReduceOp {
        use ReduceOp::*;
        const ALL: [ReduceOp; 6] = [Sum, Mean, Var, Amax, Amin, LogSumExp];
        *ALL.get(code as usize).unwrap_or_else(|| panic!("reduce op code {code} is not one of 0..6"))
    }
}

/// max with NaN winning (PyTorch's amax / max propagate NaN).
#[inline]
fn nan_max(acc: f32, x: f32) -> f32 {
    if x.is_nan() || x > acc { x } else { acc }
}
#[inline]
fn nan_min(acc: f32, x: f32) -> f32 {
    if x.is_nan() || x < acc { x } else { acc }
}

fn extreme(inp: &[f32], base: usize, n: usize, inner: usize, max: bool) -> f32 {
    let mut acc = if max { f32::NEG_INFINITY } else { f32::INFINITY };
    for j in 0..n {
        let x = inp[base + j * inner];
        acc = if max { nan_max(acc, x) } else { nan_min(acc, x) };
        if acc.is_nan() {
            break;
        }
    }
    acc
}

fn mean(inp: &[f32], base: usize, n: usize, inner: usize) -> f64 {
    (0..n).map(|j| inp[base + j * inner] as f64).sum::<f64>() / n as f64
}

/// sum_i f(x[i]) in f64 over eight interleaved partial sums combined in a fixed order
/// (they vectorise; a single chain would wait on each add).
#[inline]
fn sum_f64(x: &[f32], f: impl Fn(f64) -> f64) -> f64 {
    let mut acc = [-0.0f64; 8];
    let mut blocks = x.chunks_exact(8);
    for blk in &mut blocks {
        for (a, &v) in acc.iter_mut().zip(blk) {
            *a += f(v as f64);
        }
    }
    for (a, &v) in acc.iter_mut().zip(blocks.remainder()) {
        *a += f(v as f64);
    }
    ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]))
}

/// max (min) of a contiguous row, NaN when the row holds one, ±inf when empty.
fn row_extreme(x: &[f32], max: bool) -> f32 {
    if x.iter().any(|v| v.is_nan()) {
        return f32::NAN;
    }
    if max {
        simd::max(x)
    } else {
        x.iter().fold(f32::INFINITY, |m, &v| m.min(v))
    }
}

/// One reduction of a contiguous row of n (the inner = 1 path).
fn reduce_row(op: ReduceOp, x: &[f32], correction: f32) -> f32 {
    let n = x.len() as f64;
    let y = match op {
        ReduceOp::Sum => sum_f64(x, |v| v),
        ReduceOp::Mean => sum_f64(x, |v| v) / n,
        ReduceOp::Var => {
            let m = sum_f64(x, |v| v) / n;
            sum_f64(x, |v| (v - m) * (v - m)) / (n - correction as f64)
        }
        ReduceOp::Amax => row_extreme(x, true) as f64,
        ReduceOp::Amin => row_extreme(x, false) as f64,
        ReduceOp::LogSumExp => {
            let m = row_extreme(x, true);
            if m.is_infinite() || m.is_nan() { m as f64 } else { row_lse(x) }
        }
    };
    y as f32
}

/// Columns per tile of the outer-dims path (f64 accumulators on the stack).
const TILE: usize = 256;

/// The reductions of columns c0..c0 + out.len() of block o (the inner > 1 path): whole rows
/// of the tile are swept in j order into per-column accumulators through the SIMD row
/// helpers, so each column sees the same operations in the same order as the element loop.
#[allow(clippy::too_many_arguments)]
fn reduce_columns(op: ReduceOp, out: &mut [f32], inp: &[f32], o: usize, n: usize, inner: usize, c0: usize, correction: f32) {
    let nc = out.len();
    let row = |j: usize| &inp[(o * n + j) * inner + c0..][..nc];
    let mut acc = [-0.0f64; TILE];
    let acc = &mut acc[..nc];
    match op {
        ReduceOp::Sum | ReduceOp::Mean | ReduceOp::Var => {
            for j in 0..n {
                simd::add_f64(acc, row(j));
            }
            if op != ReduceOp::Sum {
                acc.iter_mut().for_each(|a| *a /= n as f64);
            }
            if op == ReduceOp::Var {
                let mut dev = [-0.0f64; TILE];
                let dev = &mut dev[..nc];
                for j in 0..n {
                    simd::add_sq_dev_f64(dev, row(j), acc);
                }
                for (a, d) in acc.iter_mut().zip(dev.iter()) {
                    *a = d / (n as f64 - correction as f64);
                }
            }
            for (y, a) in out.iter_mut().zip(acc.iter()) {
                *y = *a as f32;
            }
        }
        ReduceOp::Amax | ReduceOp::Amin | ReduceOp::LogSumExp => {
            let min = op == ReduceOp::Amin;
            out.fill(if min { f32::INFINITY } else { f32::NEG_INFINITY });
            for j in 0..n {
                simd::extreme_step(out, row(j), min);
            }
            if op == ReduceOp::LogSumExp {
                for j in 0..n {
                    for ((a, &v), &m) in acc.iter_mut().zip(row(j)).zip(out.iter()) {
                        *a += if m.is_finite() { (v as f64 - m as f64).exp() } else { 0.0 };
                    }
                }
                for (y, s) in out.iter_mut().zip(acc.iter()) {
                    if y.is_finite() {
                        *y = (*y as f64 + s.ln()) as f32; // all -inf gives -inf; +inf or NaN give themselves
                    }
                }
            }
        }
    }
}

/// out [outer, inner] = reduce over n of inp [outer, n, inner]. `correction` is Var's
/// divisor correction (n - correction); ignored by the others.
#[allow(clippy::too_many_arguments)]
pub fn reduce_forward(out: &mut [f32], inp: &[f32], outer: usize, n: usize, inner: usize, op: u32, correction: f32, par: &dyn Parallel) {
    assert!(out.len() == outer * inner && inp.len() == outer * n * inner, "reduce_forward: lengths");
    let op = ReduceOp::from_code(op);
    let o = SendPtr(out.as_mut_ptr());
    if inner == 1 {
        for_rows(outer, n, par, &|r0, nr| {
            for r in r0..r0 + nr {
                // SAFETY: row blocks are disjoint; out[r] is inside out.
                unsafe { o.slice_mut(r, 1)[0] = reduce_row(op, &inp[r * n..(r + 1) * n], correction) };
            }
        });
    } else {
        let tiles = inner.div_ceil(TILE);
        for_blocks(outer * tiles, 1, (n * TILE) as u64 * STREAM_FLOPS, par, &|t0, nt| {
            for t in t0..t0 + nt {
                let (ob, c0) = (t / tiles, (t % tiles) * TILE);
                // SAFETY: tiles are disjoint column ranges of out.
                let dst = unsafe { o.slice_mut(ob * inner + c0, TILE.min(inner - c0)) };
                reduce_columns(op, dst, inp, ob, n, inner, c0, correction);
            }
        });
    }
}

/// Accumulates dinp [outer, n, inner] += d reduce / d inp * dout [outer, inner]; `out` is the
/// forward's output. Amax / amin spread dout evenly over every element equal to the extreme
/// (PyTorch's convention for ties). Sum and mean add dout's rows, split over rows of dinp;
/// the others work one column at a time (as the element loop), split over blocks of columns.
#[allow(clippy::too_many_arguments)]
pub fn reduce_backward(
    dinp: &mut [f32], dout: &[f32], inp: &[f32], out: &[f32],
    outer: usize, n: usize, inner: usize, op: u32, correction: f32, par: &dyn Parallel,
) {
    assert!(dout.len() == outer * inner && out.len() == dout.len(), "reduce_backward: dout / out lengths");
    assert!(inp.len() == outer * n * inner && dinp.len() == inp.len(), "reduce_backward: inp / dinp lengths");
    let op = ReduceOp::from_code(op);
    let di = SendPtr(dinp.as_mut_ptr());
    if matches!(op, ReduceOp::Sum | ReduceOp::Mean) {
        // Rows (o, j) of dinp each add dout's row o: split over rows.
        for_rows(outer * n, inner, par, &|r0, nr| {
            for r in r0..r0 + nr {
                // SAFETY: row blocks are disjoint and inside dinp.
                let drow = unsafe { di.slice_mut(r * inner, inner) };
                let g = &dout[(r / n.max(1)) * inner..][..inner];
                if op == ReduceOp::Sum {
                    simd::add_assign(drow, g);
                } else {
                    for (x, &g) in drow.iter_mut().zip(g) {
                        *x += (g as f64 / n as f64) as f32;
                    }
                }
            }
        });
        return;
    }
    for_columns(outer, n, inner, par, &|base| {
        let (o, i) = (base / (n * inner), base % inner);
        let (g, y) = (dout[o * inner + i] as f64, out[o * inner + i]);
        let at = |j: usize| base + j * inner;
        // SAFETY: inside dinp; each column is written by one task only.
        let add = |j: usize, d: f32| unsafe { di.slice_mut(at(j), 1)[0] += d };
        match op {
            ReduceOp::Sum | ReduceOp::Mean => unreachable!("added by rows above"),
            ReduceOp::Var => {
                let m = mean(inp, base, n, inner);
                let scale = 2.0 * g / (n as f64 - correction as f64);
                for j in 0..n {
                    add(j, (scale * (inp[at(j)] as f64 - m)) as f32);
                }
            }
            ReduceOp::Amax | ReduceOp::Amin => {
                let ties = (0..n).filter(|&j| inp[at(j)] == y).count();
                if ties > 0 {
                    let d = (g / ties as f64) as f32;
                    for j in 0..n {
                        if inp[at(j)] == y {
                            add(j, d);
                        }
                    }
                }
            }
            ReduceOp::LogSumExp => {
                for j in 0..n {
                    add(j, (g * (inp[at(j)] as f64 - y as f64).exp()) as f32);
                }
            }
        }
    });
}

/// out [outer, inner] = max (or min) over n of inp [outer, n, inner], indices [outer, inner]
/// its position: the first maximal one on ties, the first NaN when there is one (PyTorch).
/// Along the last dim (inner = 1) each row is one SIMD scan, split over rows; along another
/// dim column tiles sweep whole rows, split over tiles. Backward: `gather_backward` with
/// these indices (k = 1).
#[allow(clippy::too_many_arguments)]
pub fn max_dim_forward(out: &mut [f32], indices: &mut [i32], inp: &[f32], outer: usize, n: usize, inner: usize, min: bool, par: &dyn Parallel) {
    assert!(out.len() == outer * inner && indices.len() == out.len() && inp.len() == outer * n * inner && n > 0,
        "max_dim_forward: lengths (n must be > 0)");
    let (o, ix) = (SendPtr(out.as_mut_ptr()), SendMut(indices.as_mut_ptr()));
    if inner == 1 {
        for_rows(outer, n, par, &|r0, nr| {
            // SAFETY: row blocks are disjoint ranges of out and indices.
            let (best, at) = unsafe { (o.slice_mut(r0, nr), ix.slice_mut(r0, nr)) };
            for (r, (b, a)) in (r0..r0 + nr).zip(best.iter_mut().zip(at.iter_mut())) {
                let row = &inp[r * n..(r + 1) * n];
                let p = simd::arg_extreme(row, min);
                (*b, *a) = (row[p], p as i32);
            }
        });
        return;
    }
    let tiles = inner.div_ceil(TILE);
    for_blocks(outer * tiles, 1, (n * TILE) as u64 * STREAM_FLOPS, par, &|t0, nt| {
        for t in t0..t0 + nt {
            let (ob, c0) = (t / tiles, (t % tiles) * TILE);
            let (start, nc) = (ob * inner + c0, TILE.min(inner - c0));
            // SAFETY: tiles are disjoint column ranges of out and indices.
            let (best, at) = unsafe { (o.slice_mut(start, nc), ix.slice_mut(start, nc)) };
            let row = |j: usize| &inp[(ob * n + j) * inner + c0..][..nc];
            best.copy_from_slice(row(0));
            at.fill(0);
            for j in 1..n {
                simd::arg_extreme_step(best, at, row(j), j as i32, min);
            }
        }
    });
}

/// Softmax (log-softmax) of one contiguous row in f32 through the SIMD max / exp helpers; a
/// row whose max is not finite (all -inf, a +inf, a NaN) gives NaN, as PyTorch.
fn softmax_row(out: &mut [f32], x: &[f32], log: bool) {
    let m = row_extreme(x, true);
    if !m.is_finite() {
        out.fill(f32::NAN);
        return;
    }
    out.copy_from_slice(x);
    let sum = simd::exp_shift(out, m);
    if log {
        let shift = m + sum.ln();
        for (o, &v) in out.iter_mut().zip(x) {
            *o = v - shift;
        }
    } else {
        simd::scale(out, 1.0 / sum);
    }
}

/// softmax (or log-softmax) of inp [outer, n, inner] along n into out; a row of all -inf
/// gives NaN, as in PyTorch. Along the last dim (inner = 1) rows run in f32 through the SIMD
/// helpers, split over threads; along another dim in f64, one column at a time, split over
/// blocks of columns.
pub fn softmax_dim_forward(out: &mut [f32], inp: &[f32], outer: usize, n: usize, inner: usize, log: bool, par: &dyn Parallel) {
    assert!(out.len() == outer * n * inner && inp.len() == out.len(), "softmax_dim_forward: lengths");
    if inner == 1 {
        let o = SendPtr(out.as_mut_ptr());
        for_rows(outer, n, par, &|r0, nr| {
            for r in r0..r0 + nr {
                // SAFETY: row blocks are disjoint and inside out.
                softmax_row(unsafe { o.slice_mut(r * n, n) }, &inp[r * n..(r + 1) * n], log);
            }
        });
        return;
    }
    let o = SendPtr(out.as_mut_ptr());
    for_columns(outer, n, inner, par, &|base| {
        let m = extreme(inp, base, n, inner, true) as f64;
        let sum: f64 = (0..n).map(|j| (inp[base + j * inner] as f64 - m).exp()).sum();
        let log_sum = sum.ln();
        for j in 0..n {
            let z = inp[base + j * inner] as f64 - m;
            // SAFETY: inside out; each column is written by one task only.
            unsafe { o.slice_mut(base + j * inner, 1)[0] = if log { z - log_sum } else { z.exp() / sum } as f32 };
        }
    });
}

/// Runs `f(base)` for every column (o, i) of [outer, n, inner], base = its first element
/// o * n * inner + i, split over threads in blocks of columns (each column whole in one
/// task, so its arithmetic and result do not depend on the split).
fn for_columns(outer: usize, n: usize, inner: usize, par: &dyn Parallel, f: &(dyn Fn(usize) + Sync)) {
    for_blocks(outer * inner, (CHUNK / n.max(1)).max(1), n as u64 * STREAM_FLOPS, par, &|c0, nc| {
        for c in c0..c0 + nc {
            f((c / inner) * n * inner + c % inner);
        }
    });
}

/// Accumulates dinp given the forward's out: softmax dx = y (dy - sum(dy y)); log-softmax
/// dx = dy - exp(y) sum(dy). Along the last dim in f32 SIMD rows split over threads; along
/// another dim in f64 per column, split over blocks of columns.
#[allow(clippy::too_many_arguments)]
pub fn softmax_dim_backward(dinp: &mut [f32], dout: &[f32], out: &[f32], outer: usize, n: usize, inner: usize, log: bool, par: &dyn Parallel) {
    let len = outer * n * inner;
    assert!(dinp.len() == len && dout.len() == len && out.len() == len, "softmax_dim_backward: lengths");
    if inner == 1 {
        let di = SendPtr(dinp.as_mut_ptr());
        for_rows(outer, n, par, &|r0, nr| {
            for r in r0..r0 + nr {
                let (g, y) = (&dout[r * n..(r + 1) * n], &out[r * n..(r + 1) * n]);
                // SAFETY: row blocks are disjoint and inside dinp.
                let d = unsafe { di.slice_mut(r * n, n) };
                if log {
                    let s = simd::sum(g);
                    for ((d, &g), &y) in d.iter_mut().zip(g).zip(y) {
                        *d += g - y.exp() * s;
                    }
                } else {
                    let s = simd::dot(g, y);
                    for ((d, &g), &y) in d.iter_mut().zip(g).zip(y) {
                        *d += y * (g - s);
                    }
                }
            }
        });
        return;
    }
    let di = SendPtr(dinp.as_mut_ptr());
    for_columns(outer, n, inner, par, &|base| {
        let at = |v: &[f32], j: usize| v[base + j * inner] as f64;
        // SAFETY (both writes): inside dinp; each column is written by one task only.
        let add = |j: usize, d: f64| unsafe { di.slice_mut(base + j * inner, 1)[0] += d as f32 };
        if log {
            let s: f64 = (0..n).map(|j| at(dout, j)).sum();
            for j in 0..n {
                add(j, at(dout, j) - at(out, j).exp() * s);
            }
        } else {
            let s: f64 = (0..n).map(|j| at(dout, j) * at(out, j)).sum();
            for j in 0..n {
                add(j, at(out, j) * (at(dout, j) - s));
            }
        }
    });
}
