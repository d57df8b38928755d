//! Elementwise and layout helpers that the autograd ops are built from. Each is a streaming
//! pass through the SIMD helpers, split over threads in blocks fixed by the sizes alone, so
//! a result never depends on the thread count.

use crate::ops::heads::{split_heads_backward, split_heads_forward};
use crate::parallel::{self, Parallel, SendPtr};
use crate::simd;

/// Elements per task of a streaming kernel (64 KiB of f32).
pub(crate) const CHUNK: usize = 16 * 1024;

/// The cost of one element of a memory-bound pass, in the flops of `parallel::for_work`
/// (whose threshold was measured on sgemm, where a flop costs far less time than a trip to
/// memory): about 62 K elements natively (250 K in wasm) before a pass leaves the calling
/// thread.
pub(crate) const STREAM_FLOPS: u64 = 64;

/// Runs `f(start, len)` over `0..n` in blocks of CHUNK, on `par` when the pass is large
/// enough (`parallel::for_work`).
pub(crate) fn for_chunks(n: usize, par: &dyn Parallel, f: &(dyn Fn(usize, usize) + Sync)) {
    for_blocks(n, CHUNK, STREAM_FLOPS, par, f)
}

/// Runs `f(first, count)` over `0..items` in blocks of `per_block` items costing `item_flops`
/// each, on `par` when the pass is large enough.
pub(crate) fn for_blocks(items: usize, per_block: usize, item_flops: u64, par: &dyn Parallel, f: &(dyn Fn(usize, usize) + Sync)) {
    let per_block = per_block.max(1);
    let par = parallel::for_work(par, items as u64 * item_flops);
    par.for_each(items.div_ceil(per_block), &|blk| {
        let first = blk * per_block;
        f(first, per_block.min(items - first));
    });
}

/// Runs `f(first_row, rows)` over blocks of rows of `row_len` elements (about CHUNK elements
/// per block), on `par` when the pass is large enough.
pub(crate) fn for_rows(rows: usize, row_len: usize, par: &dyn Parallel, f: &(dyn Fn(usize, usize) + Sync)) {
    for_blocks(rows, (CHUNK / row_len.max(1)).max(1), row_len as u64 * STREAM_FLOPS, par, f)
}

/// out = a + b (same length).
pub fn add_forward(out: &mut [f32], a: &[f32], b: &[f32], par: &dyn Parallel) {
    assert!(out.len() == a.len() && out.len() == b.len());
    let o = SendPtr(out.as_mut_ptr());
    for_chunks(out.len(), par, &|s, n| {
        // SAFETY: chunks are disjoint and inside out.
        simd::add_to(unsafe { o.slice_mut(s, n) }, &a[s..s + n], &b[s..s + n]);
    });
}

/// dst += alpha * src (gradient accumulation, add backward).
pub fn accumulate(dst: &mut [f32], src: &[f32], alpha: f32, par: &dyn Parallel) {
    assert_eq!(dst.len(), src.len());
    let d = SendPtr(dst.as_mut_ptr());
    for_chunks(dst.len(), par, &|s, n| {
        // SAFETY: chunks are disjoint and inside dst.
        let dst = unsafe { d.slice_mut(s, n) };
        if alpha == 1.0 {
            simd::add_assign(dst, &src[s..s + n]);
        } else {
            simd::axpy(dst, alpha, &src[s..s + n]);
        }
    });
}

/// out = inp * s.
pub fn scale_forward(out: &mut [f32], inp: &[f32], s: f32, par: &dyn Parallel) {
    assert_eq!(out.len(), inp.len());
    let o = SendPtr(out.as_mut_ptr());
    for_chunks(out.len(), par, &|at, n| {
        // SAFETY: chunks are disjoint and inside out.
        simd::scale_to(unsafe { o.slice_mut(at, n) }, &inp[at..at + n], s);
    });
}

/// x *= s in place (gradient clipping).
pub fn scale_inplace(x: &mut [f32], s: f32, par: &dyn Parallel) {
    let p = SendPtr(x.as_mut_ptr());
    for_chunks(x.len(), par, &|at, n| {
        // SAFETY: chunks are disjoint and inside x.
        simd::scale(unsafe { p.slice_mut(at, n) }, s);
    });
}

/// out = a * b elementwise.
pub fn mul_forward(out: &mut [f32], a: &[f32], b: &[f32], par: &dyn Parallel) {
    assert!(out.len() == a.len() && out.len() == b.len());
    let o = SendPtr(out.as_mut_ptr());
    for_chunks(out.len(), par, &|s, n| {
        // SAFETY: chunks are disjoint and inside out.
        simd::mul_to(unsafe { o.slice_mut(s, n) }, &a[s..s + n], &b[s..s + n]);
    });
}

/// out[r, c] = inp[r, c] + bias[c]; inp, out: [rows, cols], bias: [cols]. Also adds a
/// [T, C] positional table to [B, T, C] with cols = T*C.
pub fn bias_add_forward(out: &mut [f32], inp: &[f32], bias: &[f32], rows: usize, cols: usize, par: &dyn Parallel) {
    assert!(out.len() == rows * cols && inp.len() == rows * cols && bias.len() == cols);
    let o = SendPtr(out.as_mut_ptr());
    for_rows(rows, cols, par, &|r0, nr| {
        for r in r0..r0 + nr {
            // SAFETY: row blocks are disjoint and inside out.
            simd::add_to(unsafe { o.slice_mut(r * cols, cols) }, &inp[r * cols..(r + 1) * cols], bias);
        }
    });
}

/// Accumulates dbias[c] += sum_r dout[r, c].
pub fn bias_add_backward(dbias: &mut [f32], dout: &[f32], rows: usize, cols: usize) {
    assert!(dout.len() == rows * cols && dbias.len() == cols);
    if cols == 0 {
        return;
    }
    // Each column sums the rows in order (the bits of adding row after row).
    simd::column_sums_add(dbias, dout, cols);
}

/// Swaps axes 1 and 2: inp [a, b, c, d] -> out [a, c, b, d] (split / merge attention heads):
/// `split_heads_forward` over the whole axis.
pub fn transpose12_forward(out: &mut [f32], inp: &[f32], a: usize, b: usize, c: usize, d: usize, par: &dyn Parallel) {
    split_heads_forward(out, inp, a, b, c, d, c, 0, par);
}

/// Accumulates dinp [a, b, c, d] += dout [a, c, b, d] transposed back.
pub fn transpose12_backward(dinp: &mut [f32], dout: &[f32], a: usize, b: usize, c: usize, d: usize, par: &dyn Parallel) {
    split_heads_backward(dinp, dout, a, b, c, d, c, 0, par);
}

/// Narrow axis 1: inp [outer, dim, inner] -> out [outer, len, inner] from index `start`
/// (splits packed Q/K/V weights and activations).
#[allow(clippy::too_many_arguments)]
pub fn narrow_forward(out: &mut [f32], inp: &[f32], outer: usize, dim: usize, inner: usize, start: usize, len: usize, par: &dyn Parallel) {
    assert!(start + len <= dim);
    assert!(out.len() == outer * len * inner && inp.len() == outer * dim * inner);
    let run = len * inner;
    let o = SendPtr(out.as_mut_ptr());
    for_rows(outer, run, par, &|o0, no| {
        for i in o0..o0 + no {
            let src = (i * dim + start) * inner;
            // SAFETY: runs of out are disjoint and inside it.
            unsafe { o.slice_mut(i * run, run) }.copy_from_slice(&inp[src..src + run]);
        }
    });
}

/// Accumulates dinp [outer, dim, inner] at [start, start+len) += dout [outer, len, inner].
#[allow(clippy::too_many_arguments)]
pub fn narrow_backward(dinp: &mut [f32], dout: &[f32], outer: usize, dim: usize, inner: usize, start: usize, len: usize, par: &dyn Parallel) {
    assert!(start + len <= dim);
    assert!(dout.len() == outer * len * inner && dinp.len() == outer * dim * inner);
    let run = len * inner;
    let di = SendPtr(dinp.as_mut_ptr());
    for_rows(outer, run, par, &|o0, no| {
        for i in o0..o0 + no {
            // SAFETY: the windows of dinp are disjoint and inside it.
            simd::add_assign(unsafe { di.slice_mut((i * dim + start) * inner, run) }, &dout[i * run..(i + 1) * run]);
        }
    });
}

/// Partial sums of [`sum_squares`]: at most this many, so they fit on the stack.
const SUM_PARTS: usize = 64;

/// Sum of squares in f64 (global gradient norm for clipping; callers sum over tensors).
/// The buffer is cut into at most SUM_PARTS blocks (of at least CHUNK) fixed by its length,
/// each summed by the SIMD helper, the partial sums added in block order: the same bits on
/// every instruction set and thread count.
pub fn sum_squares(x: &[f32], par: &dyn Parallel) -> f64 {
    let n = x.len();
    let block = n.div_ceil(SUM_PARTS).max(CHUNK);
    let parts = n.div_ceil(block);
    let mut partial = [0.0f64; SUM_PARTS];
    let out = SendMut(partial.as_mut_ptr());
    let par = parallel::for_work(par, n as u64 * STREAM_FLOPS);
    par.for_each(parts, &|p| {
        let s = p * block;
        let v = simd::sum_squares(&x[s..n.min(s + block)]);
        // SAFETY: one task per part writes its own slot of `partial`, which outlives the call.
        unsafe { out.slice_mut(p, 1)[0] = v };
    });
    partial[..parts].iter().sum()
}

/// A pointer to a buffer of `T` whose disjoint parts tasks write: `parallel::SendPtr` for the
/// outputs that are not f32 (partial sums, indices, masks).
pub(crate) struct SendMut<T>(pub *mut T);
impl<T> Clone for SendMut<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for SendMut<T> {}
// SAFETY: tasks only form slices over disjoint regions, and the buffer outlives `for_each`.
unsafe impl<T> Send for SendMut<T> {}
// SAFETY: as above.
unsafe impl<T> Sync for SendMut<T> {}

impl<T> SendMut<T> {
    /// `len` elements from `offset`.
    ///
    /// # Safety
    /// The region is inside the buffer and no other task touches it while the slice lives.
    pub(crate) unsafe fn slice_mut<'a>(self, offset: usize, len: usize) -> &'a mut [T] {
        // SAFETY: forwarded to the caller.
        unsafe { std::slice::from_raw_parts_mut(self.0.add(offset), len) }
    }
}
