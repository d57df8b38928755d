//! Cross-entropy over logits with ignore index and label smoothing, mean over the targets
//! that are not ignored (PyTorch's reduction='mean'): per row
//! loss_r = (1 - eps) * (lse - x[t]) + eps * (lse - mean_j x[j]).
//!
//! Both directions split the rows over threads in blocks fixed by the sizes alone
//! ([`row_block`]); the forward sums each block's losses in f64, then the blocks in order, so
//! the loss has the same bits for any thread count.
//!
//! Per row the forward reads the logits twice (max, then one pass for both sums that the loss
//! needs: of e^(x - max) and of x - max) and the backward once (d += g·(e^(x - lse) - eps/vocab),
//! in place, or d = that where the caller's buffer holds nothing yet: no zero fill first). The row loops run inside each instruction set's `#[target_feature]` functions
//! (`row_kernels!`), one call per block of rows, with the exp of `simd::exp_approx_with` (its
//! clamp-free core `exp_in_range` in the forward's sum, whose arguments are <= 0) and its fused
//! multiply-adds where the ISA has FMA: the last bit may differ between instruction sets, never
//! between thread counts.
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::ops::activation::POINTWISE_FLOPS;
use crate::ops::elementwise::{for_blocks, CHUNK as BLOCK_ELEMENTS};
use crate::parallel::SendPtr;
use crate::simd::math::MulAdd;
use crate::simd::{self, exp_approx_with, exp_in_range, Isa, VecOps};
use crate::Parallel;

// The row loops below take two sizes from the instruction set's instantiation (`row_kernels!`):
// W floats per step, each position with its own f32 partial (two vectors: enough independent
// chains of adds, while the exp's constants and the partials still fit AVX2's 16 registers),
// and T floats per step of a row's last < W (vocab 65: 64 + 16 evaluations on AVX-512, not
// 64 + 32). A tail step reads the row's last T floats, overlapping what came before, and masks
// the positions before `first`; a row shorter than T goes through a padded copy.

/// Floats summed into the f32 partials before they join the row's f64 sum, so that a long row
/// keeps the partials' relative precision.
const SUM_SPAN: usize = 1024;

/// The tail steps of a row of `len` >= T floats after its whole W-steps: (at, first) for
/// T-float windows from `at` that end at the row's end, whose positions before `first` were
/// already covered. (No floating point here, so it needs no target features; the steps' math
/// is in plain functions, never closures, which would not inherit the caller's.)
#[inline(always)]
fn tail_steps<const W: usize, const T: usize>(len: usize) -> impl Iterator<Item = (usize, usize)> {
    let wide_end = len - len % W;
    (wide_end..len).step_by(T).map(move |at| {
        let end = (at + T).min(len);
        (end - T, T - (end - at))
    })
}

/// m[k] = max(m[k], x[k]) (a NaN x skipped).
#[inline(always)]
fn max_step<const N: usize, const W: usize>(m: &mut [f32; W], x: &[f32; N]) {
    for k in 0..N {
        m[k] = if x[k] > m[k] { x[k] } else { m[k] };
    }
}

/// max over a row (NaN skipped; -inf for an empty row), in 2W partials: a max's latency
/// is that of an add, and the loop has nothing else to hide it behind.
#[inline(always)]
unsafe fn row_max<S: VecOps, const W: usize, const T: usize>(x: &[f32]) -> f32 {
    let (mut m0, mut m1) = ([f32::NEG_INFINITY; W], [f32::NEG_INFINITY; W]);
    if x.len() < T {
        let mut padded = [f32::NEG_INFINITY; T];
        padded[..x.len()].copy_from_slice(x);
        max_step::<T, W>(&mut m0, &padded);
    } else {
        let mut pairs = x.chunks_exact(2 * W);
        for pair in &mut pairs {
            let (a, b) = pair.split_at(W);
            max_step::<W, W>(&mut m0, a.try_into().unwrap());
            max_step::<W, W>(&mut m1, b.try_into().unwrap());
        }
        if pairs.remainder().len() >= W {
            max_step::<W, W>(&mut m0, pairs.remainder()[..W].try_into().unwrap());
        }
        // A window's overlap with earlier steps does not change a max.
        for (at, _) in tail_steps::<W, T>(x.len()) {
            max_step::<T, W>(&mut m1, x[at..at + T].try_into().unwrap());
        }
    }
    let (p0, p1) = (m0.as_ptr(), m1.as_ptr());
    // SAFETY: offsets below W (LANES divides W); the caller's ISA.
    unsafe {
        let mut v = S::max(S::load(p0), S::load(p1));
        for j in 1..W / S::LANES {
            v = S::max(v, S::max(S::load(p0.add(j * S::LANES)), S::load(p1.add(j * S::LANES))));
        }
        S::reduce_max(v)
    }
}

/// Sum of W partials: whole vectors added in order, then the ISA's lane reduction.
#[inline(always)]
unsafe fn partials_sum<S: VecOps, const W: usize>(a: &[f32; W]) -> f32 {
    let p = a.as_ptr();
    // SAFETY: offsets below W (LANES divides W); the caller's ISA.
    unsafe {
        let mut v = S::load(p);
        for j in 1..W / S::LANES {
            v = S::add(v, S::load(p.add(j * S::LANES)));
        }
        S::reduce_sum(v)
    }
}

/// A row's sums over x - max in f64: of e^(x - max), and of x - max where SMOOTH (label
/// smoothing needs the row's mean), else 0.
#[derive(Clone, Copy)]
struct RowSums {
    exp: f64,
    dev: f64,
}

/// exp[k] += e^(x[k] - max) and, where SMOOTH, dev[k] += x[k] - max, for the positions from
/// `first` of a step of N floats.
#[inline(always)]
fn sums_step<M: MulAdd, const N: usize, const W: usize, const SMOOTH: bool>(exp: &mut [f32; W], dev: &mut [f32; W], x: &[f32; N], first: usize, max: f32) {
    for k in 0..N {
        let d = x[k] - max;
        // d <= 0: only its lower bound needs a clamp (NaN passes).
        exp[k] += if k >= first { exp_in_range::<M>(if d < -87.0 { -87.0 } else { d }) } else { 0.0 };
        if SMOOTH {
            dev[k] += if k >= first { d } else { 0.0 };
        }
    }
}

/// [`RowSums`] of a row whose max is finite.
#[inline(always)]
unsafe fn row_sums<S: VecOps + MulAdd, const W: usize, const T: usize, const SMOOTH: bool>(x: &[f32], max: f32) -> RowSums {
    let mut sums = RowSums { exp: 0.0, dev: 0.0 };
    for span in x.chunks(SUM_SPAN) {
        let (mut exp, mut dev) = ([0.0f32; W], [0.0f32; W]);
        if span.len() < T {
            // A short row at the end of a window, its padding masked as already covered.
            let mut padded = [max; T];
            padded[T - span.len()..].copy_from_slice(span);
            sums_step::<S, T, W, SMOOTH>(&mut exp, &mut dev, &padded, T - span.len(), max);
        } else {
            let mut wide = span.chunks_exact(W);
            for step in &mut wide {
                sums_step::<S, W, W, SMOOTH>(&mut exp, &mut dev, step.try_into().unwrap(), 0, max);
            }
            for (at, first) in tail_steps::<W, T>(span.len()) {
                sums_step::<S, T, W, SMOOTH>(&mut exp, &mut dev, span[at..at + T].try_into().unwrap(), first, max);
            }
        }
        // SAFETY: the caller's ISA.
        unsafe {
            sums.exp += partials_sum::<S, W>(&exp) as f64;
            if SMOOTH {
                sums.dev += partials_sum::<S, W>(&dev) as f64;
            }
        }
    }
    sums
}

/// The max of a row and its [`RowSums`], or Err(max) where the max is -inf or NaN (the row's
/// log-sum-exp is then that max).
#[inline(always)]
unsafe fn row_stats<S: VecOps + MulAdd, const W: usize, const T: usize, const SMOOTH: bool>(x: &[f32]) -> Result<(f32, RowSums), f32> {
    // SAFETY: the caller's ISA.
    let max = unsafe { row_max::<S, W, T>(x) };
    if max == f32::NEG_INFINITY || max.is_nan() {
        return Err(max);
    }
    // SAFETY: as above.
    Ok((max, unsafe { row_sums::<S, W, T, SMOOTH>(x, max) }))
}

/// log-sum-exp of one row (max-subtracted), -inf / NaN where the max is.
#[inline(always)]
unsafe fn row_lse_generic<S: VecOps + MulAdd, const W: usize, const T: usize>(x: &[f32]) -> f64 {
    // SAFETY: the caller's ISA.
    match unsafe { row_stats::<S, W, T, false>(x) } {
        Ok((max, sums)) => max as f64 + sums.exp.ln(),
        Err(max) => max as f64,
    }
}

/// One call's logits [rows, vocab] and targets [rows], with the loss's settings.
struct Rows<'a> {
    logits: &'a [f32],
    targets: &'a [i32],
    vocab: usize,
    ignore_index: i32,
    eps: f64,
}

/// Forward over rows [r0, r0 + lse.len()): writes their log-sum-exp, returns the sum of the
/// losses of the rows not ignored and their count. SMOOTH: label smoothing (eps != 0).
#[inline(always)]
unsafe fn forward_rows<S: VecOps + MulAdd, const W: usize, const T: usize, const SMOOTH: bool>(rows: &Rows, r0: usize, lse: &mut [f32]) -> (f64, usize) {
    let (vocab, eps) = (rows.vocab, rows.eps);
    let (mut total, mut count) = (0.0f64, 0usize);
    for (i, l_out) in lse.iter_mut().enumerate() {
        let r = r0 + i;
        let x = &rows.logits[r * vocab..(r + 1) * vocab];
        // SAFETY: the caller's ISA.
        let stats = unsafe { row_stats::<S, W, T, SMOOTH>(x) };
        let ln_sum = stats.map_or(0.0, |(_, sums)| sums.exp.ln());
        *l_out = match stats {
            Ok((max, _)) => (max as f64 + ln_sum) as f32,
            Err(max) => max,
        };
        if rows.targets[r] == rows.ignore_index {
            continue;
        }
        let t = rows.targets[r] as usize;
        total += match stats {
            // lse - x[t] and lse - mean x from x - max, so that a common offset of the logits
            // does not cost digits: ln(sum) + (max - x[t]) and ln(sum) - mean(x - max).
            Ok((max, sums)) => {
                let loss = (1.0 - eps) * ((max as f64 - x[t] as f64) + ln_sum);
                if SMOOTH { loss + eps * (ln_sum - sums.dev / vocab as f64) } else { loss }
            }
            // Every logit -inf (or NaN): lse - x[t] is NaN, as in PyTorch.
            Err(_) => f64::NAN,
        };
        count += 1;
    }
    (total, count)
}

/// d[k] += g·(e^(x[k] - lse) - s) for the positions from `first` of a step of N floats; where
/// not ACC, d[k] = the same added to +0.0 (the bits of accumulating into a zeroed d, whatever
/// d held).
#[inline(always)]
fn grad_step<M: MulAdd, const N: usize, const ACC: bool>(d: &mut [f32; N], x: &[f32; N], first: usize, lse: f32, g: f32, s: f32) {
    for k in 0..N {
        let base = if ACC { d[k] } else { 0.0 };
        let new = M::mul_add(g, exp_approx_with::<M>(x[k] - lse) - s, base);
        d[k] = if k >= first { new } else { d[k] };
    }
}

/// Backward over the rows of `dlogits` (rows [r0, r0 + dlogits.len() / vocab)), `g` the
/// scale dloss / count: adds to them where ACC, else writes them (ignored rows zero).
#[inline(always)]
#[allow(clippy::extra_unused_type_parameters)] // the ISA is the caller's #[target_feature]
unsafe fn backward_rows<S: VecOps + MulAdd, const W: usize, const T: usize, const ACC: bool>(rows: &Rows, r0: usize, lse: &[f32], g: f64, dlogits: &mut [f32]) {
    let (vocab, eps) = (rows.vocab, rows.eps);
    let smooth = eps / vocab as f64;
    let (g32, s32) = (g as f32, smooth as f32);
    for (i, d) in dlogits.chunks_exact_mut(vocab.max(1)).enumerate() {
        let r = r0 + i;
        if rows.targets[r] == rows.ignore_index {
            if !ACC {
                d.fill(0.0);
            }
            continue;
        }
        let x = &rows.logits[r * vocab..(r + 1) * vocab];
        let (t, l) = (rows.targets[r] as usize, lse[r]);
        let d_t = if ACC { d[t] } else { 0.0 };
        if vocab < T {
            let (mut d_pad, mut x_pad) = ([0.0f32; T], [0.0f32; T]);
            if ACC {
                d_pad[..vocab].copy_from_slice(d);
            }
            x_pad[..vocab].copy_from_slice(x);
            grad_step::<S, T, ACC>(&mut d_pad, &x_pad, 0, l, g32, s32);
            d.copy_from_slice(&d_pad[..vocab]);
        } else {
            for (dc, xc) in d.chunks_exact_mut(W).zip(x.chunks_exact(W)) {
                grad_step::<S, W, ACC>(dc.try_into().unwrap(), xc.try_into().unwrap(), 0, l, g32, s32);
            }
            // A tail window's positions before `first` keep what the steps before wrote.
            for (at, first) in tail_steps::<W, T>(vocab) {
                grad_step::<S, T, ACC>((&mut d[at..at + T]).try_into().unwrap(), x[at..at + T].try_into().unwrap(), first, l, g32, s32);
            }
        }
        // The target's element, where p - (1 - eps) may cancel, redone in f64.
        let p_t = (x[t] as f64 - l as f64).exp();
        d[t] = d_t + (g * (p_t - (1.0 - eps) - smooth)) as f32;
    }
}

/// One instruction set's row loops.
#[derive(Clone, Copy)]
struct RowKernels {
    forward: unsafe fn(&Rows, usize, &mut [f32]) -> (f64, usize),
    backward: unsafe fn(&Rows, usize, &[f32], f64, &mut [f32], bool),
    lse: unsafe fn(&[f32]) -> f64,
}

/// The generic row loops instantiated per instruction set, inside `#[target_feature]`
/// functions so that `exp_approx_with`'s scalar body vectorises there, with the step sizes
/// W and T of that instruction set (two vectors and one; the scalar and simd128 builds'
/// loops are vectorised for 128-bit registers).
macro_rules! row_kernels {
    ($( #[cfg($($cfg:tt)*)] $module:ident = $vec:ty, $w:literal / $t:literal $(, $feature:literal)?; )*) => {$(
        #[cfg($($cfg)*)]
        mod $module {
            use super::*;
            $(#[target_feature(enable = $feature)])?
            unsafe fn forward(rows: &Rows, r0: usize, lse: &mut [f32]) -> (f64, usize) {
                // SAFETY: the dispatcher checked the ISA.
                unsafe {
                    if rows.eps != 0.0 {
                        forward_rows::<$vec, $w, $t, true>(rows, r0, lse)
                    } else {
                        forward_rows::<$vec, $w, $t, false>(rows, r0, lse)
                    }
                }
            }
            $(#[target_feature(enable = $feature)])?
            unsafe fn backward(rows: &Rows, r0: usize, lse: &[f32], g: f64, dlogits: &mut [f32], accumulate: bool) {
                // SAFETY: as above.
                unsafe {
                    if accumulate {
                        backward_rows::<$vec, $w, $t, true>(rows, r0, lse, g, dlogits)
                    } else {
                        backward_rows::<$vec, $w, $t, false>(rows, r0, lse, g, dlogits)
                    }
                }
            }
            $(#[target_feature(enable = $feature)])?
            unsafe fn lse(x: &[f32]) -> f64 {
                // SAFETY: as above.
                unsafe { row_lse_generic::<$vec, $w, $t>(x) }
            }
            pub(super) const KERNELS: RowKernels = RowKernels { forward, backward, lse };
        }
    )*};
}

row_kernels! {
    #[cfg(target_arch = "x86_64")]
    on_avx512 = simd::avx512::Avx512, 32 / 16, "avx512f";
    #[cfg(target_arch = "x86_64")]
    on_avx2 = simd::avx2::Avx2, 16 / 8, "avx2,fma";
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    on_wasm128 = simd::wasm128::Wasm128, 8 / 4;
    #[cfg(all())]
    on_scalar = simd::scalar::Scalar, 8 / 4;
}

/// The row loops of `isa`, which must be available here.
fn row_kernels(isa: Isa) -> RowKernels {
    assert!(isa.is_available(), "cross-entropy: {isa:?} is not available on this machine");
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => on_avx512::KERNELS,
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => on_avx2::KERNELS,
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        Isa::Wasm128 => on_wasm128::KERNELS,
        _ => on_scalar::KERNELS,
    }
}

/// log-sum-exp of one row, max-subtracted: SIMD max, then e^(x - max) summed in f32
/// partials over spans of the row, the spans in f64. -inf / NaN where the row's max is.
#[inline]
pub(crate) fn row_lse(x: &[f32]) -> f64 {
    // SAFETY: row_kernels returns an available ISA's loops.
    unsafe { (row_kernels(Isa::detect()).lse)(x) }
}

/// Most row blocks of one call: the forward keeps one partial sum per block on the stack.
const MAX_BLOCKS: usize = 64;

/// Rows per block: about BLOCK_ELEMENTS logits, and at most MAX_BLOCKS blocks.
fn row_block(rows: usize, vocab: usize) -> usize {
    rows.div_ceil(MAX_BLOCKS).max(BLOCK_ELEMENTS.div_ceil(vocab.max(1))).max(1)
}

/// logits: [rows, vocab], targets: [rows]; loss: [1] (the mean; NaN when every target is
/// ignored, as PyTorch); lse: [rows] log-sum-exp saved for backward (computed for every
/// row, ignored or not).
#[allow(clippy::too_many_arguments)]
pub fn cross_entropy_forward(
    loss: &mut [f32], lse: &mut [f32], logits: &[f32], targets: &[i32],
    rows: usize, vocab: usize, ignore_index: i32, label_smoothing: f32, par: &dyn Parallel,
) {
    cross_entropy_forward_with(Isa::detect(), loss, lse, logits, targets, rows, vocab, ignore_index, label_smoothing, par)
}

/// [`cross_entropy_forward`] on an explicit instruction set (tests, benchmarks); panics if
/// `isa` is not available here.
#[allow(clippy::too_many_arguments)]
pub fn cross_entropy_forward_with(
    isa: Isa, loss: &mut [f32], lse: &mut [f32], logits: &[f32], targets: &[i32],
    rows: usize, vocab: usize, ignore_index: i32, label_smoothing: f32, par: &dyn Parallel,
) {
    assert!(loss.len() == 1 && lse.len() == rows && targets.len() == rows);
    assert_eq!(logits.len(), rows * vocab);
    let kernels = row_kernels(isa);
    let call = Rows { logits, targets, vocab, ignore_index, eps: label_smoothing as f64 };
    let per_block = row_block(rows, vocab);
    // Per block: its losses' sum (f64 bits) and how many rows counted.
    let sums: [AtomicU64; MAX_BLOCKS] = [const { AtomicU64::new(0) }; MAX_BLOCKS];
    let counts: [AtomicUsize; MAX_BLOCKS] = [const { AtomicUsize::new(0) }; MAX_BLOCKS];
    let lse_ptr = SendPtr(lse.as_mut_ptr());
    for_blocks(rows, per_block, vocab as u64 * POINTWISE_FLOPS, par, &|r0, n| {
        // SAFETY: blocks own disjoint rows [r0, r0 + n) of lse, in bounds (asserted above);
        // row_kernels checked the ISA.
        let (total, count) = unsafe { (kernels.forward)(&call, r0, lse_ptr.slice_mut(r0, n)) };
        sums[r0 / per_block].store(total.to_bits(), Ordering::Relaxed);
        counts[r0 / per_block].store(count, Ordering::Relaxed);
    });
    let blocks = rows.div_ceil(per_block);
    let total: f64 = sums[..blocks].iter().map(|s| f64::from_bits(s.load(Ordering::Relaxed))).sum();
    let count: usize = counts[..blocks].iter().map(|c| c.load(Ordering::Relaxed)).sum();
    loss[0] = if count == 0 { f32::NAN } else { (total / count as f64) as f32 };
}

/// Accumulates dlogits += dloss[0] * (softmax - ((1-eps)·onehot + eps/vocab)) / count for
/// rows whose target is not ignored (count = number of such rows); unless `accumulate`,
/// overwrites dlogits with it instead (ignored rows, or all rows when every target is
/// ignored, zero), with the bits of accumulating into zeros: a gradient buffer nothing has
/// written yet needs no zero fill.
#[allow(clippy::too_many_arguments)]
pub fn cross_entropy_backward(
    dlogits: &mut [f32], dloss: &[f32], logits: &[f32], lse: &[f32], targets: &[i32],
    rows: usize, vocab: usize, ignore_index: i32, label_smoothing: f32, accumulate: bool, par: &dyn Parallel,
) {
    cross_entropy_backward_with(Isa::detect(), dlogits, dloss, logits, lse, targets, rows, vocab, ignore_index, label_smoothing, accumulate, par)
}

/// [`cross_entropy_backward`] on an explicit instruction set (tests, benchmarks); panics if
/// `isa` is not available here.
#[allow(clippy::too_many_arguments)]
pub fn cross_entropy_backward_with(
    isa: Isa, dlogits: &mut [f32], dloss: &[f32], logits: &[f32], lse: &[f32], targets: &[i32],
    rows: usize, vocab: usize, ignore_index: i32, label_smoothing: f32, accumulate: bool, par: &dyn Parallel,
) {
    assert!(dloss.len() == 1 && lse.len() == rows && targets.len() == rows);
    assert!(logits.len() == rows * vocab && dlogits.len() == rows * vocab);
    let count = targets.iter().filter(|&&t| t != ignore_index).count();
    if count == 0 {
        if !accumulate {
            dlogits.fill(0.0);
        }
        return;
    }
    let kernels = row_kernels(isa);
    let call = Rows { logits, targets, vocab, ignore_index, eps: label_smoothing as f64 };
    let g = dloss[0] as f64 / count as f64;
    let dlogits_ptr = SendPtr(dlogits.as_mut_ptr());
    for_blocks(rows, row_block(rows, vocab), vocab as u64 * POINTWISE_FLOPS, par, &|r0, n| {
        // SAFETY: blocks own disjoint rows [r0, r0 + n) of dlogits, in bounds (asserted
        // above); row_kernels checked the ISA.
        unsafe { (kernels.backward)(&call, r0, lse, g, dlogits_ptr.slice_mut(r0 * vocab, n * vocab), accumulate) }
    });
}
