//! Strided views made contiguous, and their backward: the one layout kernel behind permute,
//! transpose, expand, narrow, slicing with steps, cat / stack / split and matmul's batch
//! broadcasting. A view of `inp` is (shape, strides, offset): element `[i0, .., ik]` lives at
//! `offset + sum i_d * strides[d]`. A stride of 0 repeats an element (expand, broadcasting);
//! its backward then sums. Shapes and strides are i32 so the kernel table can pass them as
//! buffers; at most [`MAX_DIMS`] dims.

/// The most dims a strided or broadcast kernel walks (a fixed counter array: no allocation).
pub const MAX_DIMS: usize = 8;

/// Calls `f(linear, offsets)` for every index of `shape` in row-major order, where
/// `offsets[v] = base[v] + sum_d index_d * strides[v][d]`. Offsets are updated incrementally
/// (one add per step, one subtract per wrapped dim).
#[inline]
pub(crate) fn walk<const N: usize>(shape: &[i32], strides: [&[i32]; N], base: [isize; N], mut f: impl FnMut(usize, [usize; N])) {
    let ndim = shape.len();
    assert!(ndim <= MAX_DIMS, "strided kernels take at most {MAX_DIMS} dims, got {ndim}");
    for s in &strides {
        assert_eq!(s.len(), ndim, "strides need one entry per dim");
    }
    let total: usize = shape.iter().map(|&d| {
        assert!(d >= 0, "negative dim in shape {shape:?}");
        d as usize
    }).product();
    if total == 0 {
        return;
    }
    let mut counter = [0usize; MAX_DIMS];
    let mut off = base;
    for linear in 0..total {
        let mut at = [0usize; N];
        for v in 0..N {
            at[v] = off[v] as usize;
        }
        f(linear, at);
        // Advance the row-major counter from the last dim.
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

/// Panics unless every element of the view (shape, strides, offset) lies in `0..len` (the
/// shims ran the same check, `check::view`, before any call from JavaScript).
pub(crate) fn check_view(what: &str, len: usize, shape: &[i32], strides: &[i32], offset: i32) {
    if let Err(message) = crate::check::view(what, "its buffer", len, shape, strides, offset) {
        panic!("{message}");
    }
}

/// out [shape] (contiguous) = the view (shape, strides, offset) of inp.
pub fn strided_copy_forward(out: &mut [f32], inp: &[f32], shape: &[i32], strides: &[i32], offset: i32) {
    let total: usize = shape.iter().map(|&d| d.max(0) as usize).product();
    assert_eq!(out.len(), total, "strided_copy_forward: out length");
    check_view("strided_copy_forward", inp.len(), shape, strides, offset);
    walk(shape, [strides], [offset as isize], |i, [src]| out[i] = inp[src]);
}

/// Accumulates the contiguous dout [shape] into the view (shape, strides, offset) of dinp:
/// elements a zero stride repeats receive the sum of their copies. Also the forward of cat /
/// stack (each input accumulated into its window of a zeroed output).
pub fn strided_copy_backward(dinp: &mut [f32], dout: &[f32], shape: &[i32], strides: &[i32], offset: i32) {
    let total: usize = shape.iter().map(|&d| d.max(0) as usize).product();
    assert_eq!(dout.len(), total, "strided_copy_backward: dout length");
    check_view("strided_copy_backward", dinp.len(), shape, strides, offset);
    walk(shape, [strides], [offset as isize], |i, [dst]| dinp[dst] += dout[i]);
}

/// Whether [row, col] is kept by tril (col - row <= diagonal) or triu (col - row >= diagonal).
#[inline]
fn triangle_keeps(row: usize, col: usize, diagonal: i32, upper: bool) -> bool {
    let d = col as i64 - row as i64;
    if upper { d >= diagonal as i64 } else { d <= diagonal as i64 }
}

/// out [batch, rows, cols] = inp with the entries outside the triangle set to 0: tril keeps
/// col - row <= diagonal, triu (upper) keeps col - row >= diagonal. NaN outside is zeroed too
/// (PyTorch's tril writes zeros, it does not multiply).
pub fn triangle_forward(out: &mut [f32], inp: &[f32], batch: usize, rows: usize, cols: usize, diagonal: i32, upper: bool) {
    assert!(out.len() == batch * rows * cols && inp.len() == out.len());
    for (i, (o, &x)) in out.iter_mut().zip(inp).enumerate() {
        let (r, c) = ((i / cols) % rows, i % cols);
        *o = if triangle_keeps(r, c, diagonal, upper) { x } else { 0.0 };
    }
}

/// Accumulates dinp += dout inside the triangle (see [`triangle_forward`]).
pub fn triangle_backward(dinp: &mut [f32], dout: &[f32], batch: usize, rows: usize, cols: usize, diagonal: i32, upper: bool) {
    assert!(dinp.len() == batch * rows * cols && dout.len() == dinp.len());
    for (i, (d, &g)) in dinp.iter_mut().zip(dout).enumerate() {
        if triangle_keeps((i / cols) % rows, i % cols, diagonal, upper) {
            *d += g;
        }
    }
}
