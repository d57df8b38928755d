//! Elementwise and layout helpers that the autograd ops are built from.

/// out = a + b (same length).
pub fn add_forward(out: &mut [f32], a: &[f32], b: &[f32]) {
    assert!(out.len() == a.len() && out.len() == b.len());
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        *o = x + y;
    }
}

/// dst += alpha * src (gradient accumulation, add backward).
pub fn accumulate(dst: &mut [f32], src: &[f32], alpha: f32) {
    assert_eq!(dst.len(), src.len());
    if alpha == 1.0 {
        crate::simd::add_assign(dst, src);
    } else {
        crate::simd::axpy(dst, alpha, src);
    }
}

/// out = inp * s.
pub fn scale_forward(out: &mut [f32], inp: &[f32], s: f32) {
    assert_eq!(out.len(), inp.len());
    for (o, &x) in out.iter_mut().zip(inp) {
        *o = x * s;
    }
}

/// x *= s in place (gradient clipping).
pub fn scale_inplace(x: &mut [f32], s: f32) {
    crate::simd::scale(x, s);
}

/// out = a * b elementwise.
pub fn mul_forward(out: &mut [f32], a: &[f32], b: &[f32]) {
    assert!(out.len() == a.len() && out.len() == b.len());
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        *o = x * y;
    }
}

/// out[r, c] = inp[r, c] + bias[c]; inp, out: [rows, cols], bias: [cols]. Also adds a
/// [T, C] positional table to [B, T, C] with cols = T*C.
pub fn bias_add_forward(out: &mut [f32], inp: &[f32], bias: &[f32], rows: usize, cols: usize) {
    assert!(out.len() == rows * cols && inp.len() == rows * cols && bias.len() == cols);
    if cols == 0 {
        return;
    }
    for (orow, irow) in out.chunks_exact_mut(cols).zip(inp.chunks_exact(cols)) {
        for ((o, &x), &bb) in orow.iter_mut().zip(irow).zip(bias) {
            *o = x + bb;
        }
    }
}

/// Accumulates dbias[c] += sum_r dout[r, c].
pub fn bias_add_backward(dbias: &mut [f32], dout: &[f32], rows: usize, cols: usize) {
    assert!(dout.len() == rows * cols && dbias.len() == cols);
    if cols == 0 {
        return;
    }
    // Row-major sweep so dout is read contiguously; the per-column order over rows is fixed.
    for drow in dout.chunks_exact(cols) {
        for (d, &g) in dbias.iter_mut().zip(drow) {
            *d += g;
        }
    }
}

/// Swaps axes 1 and 2: inp [a, b, c, d] -> out [a, c, b, d] (split / merge attention heads).
pub fn transpose12_forward(out: &mut [f32], inp: &[f32], a: usize, b: usize, c: usize, d: usize) {
    assert!(out.len() == a * b * c * d && inp.len() == a * b * c * d);
    for ia in 0..a {
        for ib in 0..b {
            for ic in 0..c {
                let src = ((ia * b + ib) * c + ic) * d;
                let dst = ((ia * c + ic) * b + ib) * d;
                out[dst..dst + d].copy_from_slice(&inp[src..src + d]);
            }
        }
    }
}

/// Accumulates dinp [a, b, c, d] += dout [a, c, b, d] transposed back.
pub fn transpose12_backward(dinp: &mut [f32], dout: &[f32], a: usize, b: usize, c: usize, d: usize) {
    assert!(dinp.len() == a * b * c * d && dout.len() == a * b * c * d);
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

/// Narrow axis 1: inp [outer, dim, inner] -> out [outer, len, inner] from index `start`
/// (splits packed Q/K/V weights and activations).
pub fn narrow_forward(out: &mut [f32], inp: &[f32], outer: usize, dim: usize, inner: usize, start: usize, len: usize) {
    assert!(start + len <= dim);
    assert!(out.len() == outer * len * inner && inp.len() == outer * dim * inner);
    let run = len * inner;
    for o in 0..outer {
        let src = (o * dim + start) * inner;
        out[o * run..(o + 1) * run].copy_from_slice(&inp[src..src + run]);
    }
}

/// Accumulates dinp [outer, dim, inner] at [start, start+len) += dout [outer, len, inner].
pub fn narrow_backward(dinp: &mut [f32], dout: &[f32], outer: usize, dim: usize, inner: usize, start: usize, len: usize) {
    assert!(start + len <= dim);
    assert!(dout.len() == outer * len * inner && dinp.len() == outer * dim * inner);
    let run = len * inner;
    for o in 0..outer {
        let dst = (o * dim + start) * inner;
        for (x, &g) in dinp[dst..dst + run].iter_mut().zip(&dout[o * run..(o + 1) * run]) {
            *x += g;
        }
    }
}

/// Sum of squares in f64 (global gradient norm for clipping; callers sum over tensors).
pub fn sum_squares(x: &[f32]) -> f64 {
    x.iter().map(|&v| (v as f64) * (v as f64)).sum()
}
