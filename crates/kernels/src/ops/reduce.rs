//! Reductions over one contiguous block of dims, seen as inp [outer, n, inner] -> out
//! [outer, inner] (the ops layer makes any set of reduced dims one block, by a strided copy
//! when they are not adjacent). Sums run in f64. Also max / min along one dim with the first
//! maximal index (PyTorch's `max(dim)`; its backward is `gather_backward`), and softmax /
//! log-softmax along any dim.

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

/// out [outer, inner] = reduce over n of inp [outer, n, inner]. `correction` is Var's
/// divisor correction (n - correction); ignored by the others.
pub fn reduce_forward(out: &mut [f32], inp: &[f32], outer: usize, n: usize, inner: usize, op: u32, correction: f32) {
    assert!(out.len() == outer * inner && inp.len() == outer * n * inner, "reduce_forward: lengths");
    let op = ReduceOp::from_code(op);
    for o in 0..outer {
        for i in 0..inner {
            let base = o * n * inner + i;
            let at = |j: usize| inp[base + j * inner] as f64;
            let y = match op {
                ReduceOp::Sum => (0..n).map(at).sum::<f64>(),
                ReduceOp::Mean => mean(inp, base, n, inner),
                ReduceOp::Var => {
                    let m = mean(inp, base, n, inner);
                    (0..n).map(|j| (at(j) - m).powi(2)).sum::<f64>() / (n as f64 - correction as f64)
                }
                ReduceOp::Amax => extreme(inp, base, n, inner, true) as f64,
                ReduceOp::Amin => extreme(inp, base, n, inner, false) as f64,
                ReduceOp::LogSumExp => {
                    let m = extreme(inp, base, n, inner, true) as f64;
                    if m.is_infinite() || m.is_nan() {
                        m // all -inf gives -inf; +inf or NaN give themselves
                    } else {
                        m + (0..n).map(|j| (at(j) - m).exp()).sum::<f64>().ln()
                    }
                }
            };
            out[o * inner + i] = y as f32;
        }
    }
}

/// Accumulates dinp [outer, n, inner] += d reduce / d inp * dout [outer, inner]; `out` is the
/// forward's output. Amax / amin spread dout evenly over every element equal to the extreme
/// (PyTorch's convention for ties).
#[allow(clippy::too_many_arguments)]
pub fn reduce_backward(
    dinp: &mut [f32], dout: &[f32], inp: &[f32], out: &[f32],
    outer: usize, n: usize, inner: usize, op: u32, correction: f32,
) {
    assert!(dout.len() == outer * inner && out.len() == dout.len(), "reduce_backward: dout / out lengths");
    assert!(inp.len() == outer * n * inner && dinp.len() == inp.len(), "reduce_backward: inp / dinp lengths");
    let op = ReduceOp::from_code(op);
    for o in 0..outer {
        for i in 0..inner {
            let base = o * n * inner + i;
            let g = dout[o * inner + i] as f64;
            let y = out[o * inner + i];
            match op {
                ReduceOp::Sum | ReduceOp::Mean => {
                    let d = if op == ReduceOp::Mean { g / n as f64 } else { g } as f32;
                    for j in 0..n {
                        dinp[base + j * inner] += d;
                    }
                }
                ReduceOp::Var => {
                    let m = mean(inp, base, n, inner);
                    let scale = 2.0 * g / (n as f64 - correction as f64);
                    for j in 0..n {
                        dinp[base + j * inner] += (scale * (inp[base + j * inner] as f64 - m)) as f32;
                    }
                }
                ReduceOp::Amax | ReduceOp::Amin => {
                    let ties = (0..n).filter(|&j| inp[base + j * inner] == y).count();
                    if ties > 0 {
                        let d = (g / ties as f64) as f32;
                        for j in 0..n {
                            if inp[base + j * inner] == y {
                                dinp[base + j * inner] += d;
                            }
                        }
                    }
                }
                ReduceOp::LogSumExp => {
                    for j in 0..n {
                        let x = inp[base + j * inner] as f64;
                        dinp[base + j * inner] += (g * (x - y as f64).exp()) as f32;
                    }
                }
            }
        }
    }
}

/// out [outer, inner] = max (or min) over n of inp [outer, n, inner], indices [outer, inner]
/// its position: the first maximal one on ties, the first NaN when there is one (PyTorch).
/// Backward: `gather_backward` with these indices (n_idx = 1).
pub fn max_dim_forward(out: &mut [f32], indices: &mut [i32], inp: &[f32], outer: usize, n: usize, inner: usize, min: bool) {
    assert!(out.len() == outer * inner && indices.len() == out.len() && inp.len() == outer * n * inner && n > 0,
        "max_dim_forward: lengths (n must be > 0)");
    for o in 0..outer {
        for i in 0..inner {
            let base = o * n * inner + i;
            let (mut best, mut at) = (inp[base], 0usize);
            for j in 1..n {
                if best.is_nan() {
                    break;
                }
                let x = inp[base + j * inner];
                if x.is_nan() || (if min { x < best } else { x > best }) {
                    best = x;
                    at = j;
                }
            }
            out[o * inner + i] = best;
            indices[o * inner + i] = at as i32;
        }
    }
}

/// softmax (or log-softmax) of inp [outer, n, inner] along n into out; a row of all -inf
/// gives NaN, as in PyTorch.
pub fn softmax_dim_forward(out: &mut [f32], inp: &[f32], outer: usize, n: usize, inner: usize, log: bool) {
    assert!(out.len() == outer * n * inner && inp.len() == out.len(), "softmax_dim_forward: lengths");
    for o in 0..outer {
        for i in 0..inner {
            let base = o * n * inner + i;
            let m = extreme(inp, base, n, inner, true) as f64;
            let sum: f64 = (0..n).map(|j| (inp[base + j * inner] as f64 - m).exp()).sum();
            let log_sum = sum.ln();
            for j in 0..n {
                let z = inp[base + j * inner] as f64 - m;
                out[base + j * inner] = if log { z - log_sum } else { z.exp() / sum } as f32;
            }
        }
    }
}

/// Accumulates dinp given the forward's out: softmax dx = y (dy - sum(dy y)); log-softmax
/// dx = dy - exp(y) sum(dy).
pub fn softmax_dim_backward(dinp: &mut [f32], dout: &[f32], out: &[f32], outer: usize, n: usize, inner: usize, log: bool) {
    let len = outer * n * inner;
    assert!(dinp.len() == len && dout.len() == len && out.len() == len, "softmax_dim_backward: lengths");
    for o in 0..outer {
        for i in 0..inner {
            let base = o * n * inner + i;
            let at = |v: &[f32], j: usize| v[base + j * inner] as f64;
            if log {
                let s: f64 = (0..n).map(|j| at(dout, j)).sum();
                for j in 0..n {
                    dinp[base + j * inner] += (at(dout, j) - at(out, j).exp() * s) as f32;
                }
            } else {
                let s: f64 = (0..n).map(|j| at(dout, j) * at(out, j)).sum();
                for j in 0..n {
                    dinp[base + j * inner] += (at(out, j) * (at(dout, j) - s)) as f32;
                }
            }
        }
    }
}
