//! Elementwise and layout helpers that the autograd ops are built from.

/// out = a + b (same length).
pub fn add_forward(out: &mut [f32], a: &[f32], b: &[f32]) {
    let _ = (out, a, b);
    todo!()
}

/// dst += alpha * src (gradient accumulation, add backward).
pub fn accumulate(dst: &mut [f32], src: &[f32], alpha: f32) {
    let _ = (dst, src, alpha);
    todo!()
}

/// out = inp * s.
pub fn scale_forward(out: &mut [f32], inp: &[f32], s: f32) {
    let _ = (out, inp, s);
    todo!()
}

/// x *= s in place (gradient clipping).
pub fn scale_inplace(x: &mut [f32], s: f32) {
    let _ = (x, s);
    todo!()
}

/// out = a * b elementwise.
pub fn mul_forward(out: &mut [f32], a: &[f32], b: &[f32]) {
    let _ = (out, a, b);
    todo!()
}

/// out[r, c] = inp[r, c] + bias[c]; inp, out: [rows, cols], bias: [cols]. Also adds a
/// [T, C] positional table to [B, T, C] with cols = T*C.
pub fn bias_add_forward(out: &mut [f32], inp: &[f32], bias: &[f32], rows: usize, cols: usize) {
    let _ = (out, inp, bias, rows, cols);
    todo!()
}

/// Accumulates dbias[c] += sum_r dout[r, c].
pub fn bias_add_backward(dbias: &mut [f32], dout: &[f32], rows: usize, cols: usize) {
    let _ = (dbias, dout, rows, cols);
    todo!()
}

/// Swaps axes 1 and 2: inp [a, b, c, d] -> out [a, c, b, d] (split / merge attention heads).
pub fn transpose12_forward(out: &mut [f32], inp: &[f32], a: usize, b: usize, c: usize, d: usize) {
    let _ = (out, inp, a, b, c, d);
    todo!()
}

/// Accumulates dinp [a, b, c, d] += dout [a, c, b, d] transposed back.
pub fn transpose12_backward(dinp: &mut [f32], dout: &[f32], a: usize, b: usize, c: usize, d: usize) {
    let _ = (dinp, dout, a, b, c, d);
    todo!()
}

/// Narrow axis 1: inp [outer, dim, inner] -> out [outer, len, inner] from index `start`
/// (splits packed Q/K/V weights and activations).
pub fn narrow_forward(out: &mut [f32], inp: &[f32], outer: usize, dim: usize, inner: usize, start: usize, len: usize) {
    let _ = (out, inp, outer, dim, inner, start, len);
    todo!()
}

/// Accumulates dinp [outer, dim, inner] at [start, start+len) += dout [outer, len, inner].
pub fn narrow_backward(dinp: &mut [f32], dout: &[f32], outer: usize, dim: usize, inner: usize, start: usize, len: usize) {
    let _ = (dinp, dout, outer, dim, inner, start, len);
    todo!()
}

/// Sum of squares in f64 (global gradient norm for clipping; callers sum over tensors).
pub fn sum_squares(x: &[f32]) -> f64 {
    let _ = x;
    todo!()
}
