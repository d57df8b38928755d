//! Strided views made contiguous, and their backward: the one layout kernel behind permute,
//! transpose, expand, narrow, slicing with steps, cat / stack / split and matmul's batch
//! broadcasting. A view of `inp` is (shape, strides, offset): element `[i0, .., ik]` lives at
//! `offset + sum i_d * strides[d]`. A stride of 0 repeats an element (expand, broadcasting);
//! its backward then sums. Shapes and strides are i32 so the kernel table can pass them as
//! buffers; at most [`MAX_DIMS`] dims.

use crate::ops::elementwise::for_rows;
use crate::parallel::{Parallel, SendPtr};
use crate::simd;

/// The most dims a strided or broadcast kernel walks (a fixed counter array: no allocation).
pub const MAX_DIMS: usize = 8;

/// A view walked as runs: its dims with size-1 dims dropped and neighbours merged wherever
/// every operand steps through them as through one dim (a contiguous copy, a transpose's
/// inner rows, a broadcast row all become a few long runs), the last merged dim being the
/// run. Kernels then work run by run (a copy, a SIMD pass, a loop with fixed steps) instead
/// of element by element, and split the runs over threads.
pub(crate) struct Runs<const N: usize> {
    /// Merged dims, outermost first; the last is the run (all 1 for a 0-d or empty view).
    ndim: usize,
    shape: [usize; MAX_DIMS],
    strides: [[isize; MAX_DIMS]; N],
    /// Elements in the view.
    pub total: usize,
}

impl<const N: usize> Runs<N> {
    #[allow(clippy::needless_range_loop)] // v indexes several arrays at once
    pub(crate) fn new(shape: &[i32], strides: [&[i32]; N]) -> Runs<N> {
        let ndim = shape.len();
        assert!(ndim <= MAX_DIMS, "strided kernels take at most {MAX_DIMS} dims, got {ndim}");
        for s in &strides {
            assert_eq!(s.len(), ndim, "strides need one entry per dim");
        }
        let mut r = Runs { ndim: 0, shape: [1; MAX_DIMS], strides: [[0; MAX_DIMS]; N], total: 1 };
        for d in 0..ndim {
            assert!(shape[d] >= 0, "negative dim in shape {shape:?}");
            let size = shape[d] as usize;
            r.total *= size;
            if size == 1 {
                continue;
            }
            let k = r.ndim;
            let merges = k > 0 && (0..N).all(|v| r.strides[v][k - 1] == strides[v][d] as isize * size as isize);
            if merges {
                r.shape[k - 1] *= size;
                for v in 0..N {
                    r.strides[v][k - 1] = strides[v][d] as isize;
                }
            } else {
                r.shape[k] = size;
                for v in 0..N {
                    r.strides[v][k] = strides[v][d] as isize;
                }
                r.ndim += 1;
            }
        }
        if r.ndim == 0 {
            r.ndim = 1; // a single element, or none: one run of length total
            r.shape[0] = r.total.min(1);
        }
        if r.total == 0 {
            r.shape[r.ndim - 1] = 0;
        }
        r
    }

    /// Elements per run.
    pub(crate) fn run_len(&self) -> usize {
        self.shape[self.ndim - 1]
    }

    /// Each operand's step along a run.
    pub(crate) fn run_steps(&self) -> [isize; N] {
        std::array::from_fn(|v| self.strides[v][self.ndim - 1])
    }

    /// Number of runs.
    pub(crate) fn runs(&self) -> usize {
        if self.total == 0 { 0 } else { self.shape[..self.ndim - 1].iter().product() }
    }

    /// Whether operand `v` reaches a distinct element from every index (no zero stride, no
    /// overlap): then tasks writing through it over disjoint runs never meet.
    pub(crate) fn injective(&self, v: usize) -> bool {
        let mut order = [0usize; MAX_DIMS];
        for (i, o) in order.iter_mut().enumerate().take(self.ndim) {
            *o = i;
        }
        let ord = &mut order[..self.ndim];
        ord.sort_unstable_by_key(|&d| self.strides[v][d].unsigned_abs());
        let mut extent = 0usize; // largest offset reachable through the smaller dims
        for &d in ord.iter() {
            if self.shape[d] <= 1 {
                continue;
            }
            let step = self.strides[v][d].unsigned_abs();
            if step <= extent {
                return false;
            }
            extent += step * (self.shape[d] - 1);
        }
        true
    }

    /// Calls `f(run, offsets)` for runs `first..end` in row-major order, `offsets[v]` being
    /// operand v's position of the run's first element (`base[v]` plus its strides).
    #[allow(clippy::needless_range_loop)] // v indexes several arrays at once
    pub(crate) fn for_runs(&self, base: [isize; N], first: usize, end: usize, mut f: impl FnMut(usize, [usize; N])) {
        let outer = self.ndim - 1;
        let mut counter = [0usize; MAX_DIMS];
        let mut off = base;
        let mut rest = first;
        for d in (0..outer).rev() {
            counter[d] = rest % self.shape[d];
            rest /= self.shape[d];
            for v in 0..N {
                off[v] += counter[d] as isize * self.strides[v][d];
            }
        }
        for run in first..end {
            f(run, std::array::from_fn(|v| off[v] as usize));
            let mut d = outer;
            while d > 0 {
                d -= 1;
                counter[d] += 1;
                for v in 0..N {
                    off[v] += self.strides[v][d];
                }
                if counter[d] < self.shape[d] {
                    break;
                }
                counter[d] = 0;
                for v in 0..N {
                    off[v] -= self.strides[v][d] * self.shape[d] as isize;
                }
            }
        }
    }

    /// Runs `f(first_run, end_run)` over blocks of runs of about CHUNK elements, on `par` when
    /// the view is large enough.
    pub(crate) fn for_blocks(&self, par: &dyn Parallel, f: &(dyn Fn(usize, usize) + Sync)) {
        let len = self.run_len();
        for_rows(self.runs(), len, par, &|r0, nr| f(r0, r0 + nr));
    }
}

/// Panics unless every element of the view (shape, strides, offset) lies in `0..len` (the
/// shims ran the same check, `check::view`, before any call from JavaScript).
pub(crate) fn check_view(what: &str, len: usize, shape: &[i32], strides: &[i32], offset: i32) {
    if let Err(message) = crate::check::view(what, "its buffer", len, shape, strides, offset) {
        panic!("{message}");
    }
}

/// out [shape] (contiguous) = the view (shape, strides, offset) of inp: one copy per run
/// where the view's innermost merged dim is contiguous (transpose of the outer dims, narrow,
/// cat's windows), split over threads by output runs.
pub fn strided_copy_forward(out: &mut [f32], inp: &[f32], shape: &[i32], strides: &[i32], offset: i32, par: &dyn Parallel) {
    let runs = Runs::new(shape, [strides]);
    assert_eq!(out.len(), runs.total, "strided_copy_forward: out length");
    check_view("strided_copy_forward", inp.len(), shape, strides, offset);
    let (len, [step]) = (runs.run_len(), runs.run_steps());
    let o = SendPtr(out.as_mut_ptr());
    runs.for_blocks(par, &|r0, r1| {
        runs.for_runs([offset as isize], r0, r1, |run, [src]| {
            // SAFETY: output runs are disjoint and inside out (length total = runs * len).
            let dst = unsafe { o.slice_mut(run * len, len) };
            match step {
                1 => dst.copy_from_slice(&inp[src..src + len]),
                0 => dst.fill(inp[src]),
                _ => {
                    for (i, d) in dst.iter_mut().enumerate() {
                        *d = inp[(src as isize + i as isize * step) as usize];
                    }
                }
            }
        });
    });
}

/// Accumulates the contiguous dout [shape] into the view (shape, strides, offset) of dinp:
/// elements a zero stride repeats receive the sum of their copies, added in row-major order.
/// Also the forward of cat / stack (each input accumulated into its window of a zeroed
/// output). Split over threads only when the view reaches each element of dinp once.
pub fn strided_copy_backward(dinp: &mut [f32], dout: &[f32], shape: &[i32], strides: &[i32], offset: i32, par: &dyn Parallel) {
    let runs = Runs::new(shape, [strides]);
    assert_eq!(dout.len(), runs.total, "strided_copy_backward: dout length");
    check_view("strided_copy_backward", dinp.len(), shape, strides, offset);
    let (len, [step]) = (runs.run_len(), runs.run_steps());
    let d = SendPtr(dinp.as_mut_ptr());
    let add_runs = |r0: usize, r1: usize| {
        runs.for_runs([offset as isize], r0, r1, |run, [dst]| {
            let g = &dout[run * len..(run + 1) * len];
            // SAFETY (the three arms): every element is inside dinp (check_view); tasks run over
            // disjoint runs of an injective view (or on one thread), so no two tasks form
            // slices over the same element.
            match step {
                1 => simd::add_assign(unsafe { d.slice_mut(dst, len) }, g),
                0 => {
                    let x = unsafe { &mut d.slice_mut(dst, 1)[0] };
                    *x = g.iter().fold(*x, |acc, &v| acc + v);
                }
                _ => {
                    for (i, &v) in g.iter().enumerate() {
                        unsafe { d.slice_mut((dst as isize + i as isize * step) as usize, 1)[0] += v };
                    }
                }
            }
        });
    };
    if runs.injective(0) {
        runs.for_blocks(par, &add_runs);
    } else {
        add_runs(0, runs.runs());
    }
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
