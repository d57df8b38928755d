//! SIMD by instruction set behind one small trait, as candle's `candle-core/src/cpu/`:
//! [`VecOps`] gives an associated vector type with load / store / splat / fma / add / mul /
//! max / reduce_sum, implemented once per instruction set (one file each). Kernels are
//! written once, generic over `VecOps`, with `#[inline(always)]`; each instruction-set file
//! instantiates them inside a `#[target_feature]` function so the intrinsics inline there.
//!
//! Dispatch: runtime on x86_64 ([`Isa::detect`], cached in a `OnceLock`), compile-time on
//! wasm32 (`simd128` when the crate is built with `-C target-feature=+simd128`).
//! Tests pick a variant explicitly with the `*_with(isa, ...)` entry points. Both entry points
//! and every ISA's instantiation of a helper come from one line of [`simd_helpers!`].

pub mod math;
pub mod scalar;
#[cfg(target_arch = "x86_64")]
pub mod avx2;
#[cfg(target_arch = "x86_64")]
pub mod avx512;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub mod wasm128;
mod streams;
pub use streams::{AdamStep, Compare};
use streams::*;

use math::{bias_act_with_grad_generic, pointwise_generic, pointwise_grad_generic};
pub use math::Pointwise;

/// The transpose of a 4x4 block of floats held as four SSE rows (SSE is part of every x86_64):
/// the packers' transposes ([`transpose_fours`]).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn transpose4_sse([r0, r1, r2, r3]: [std::arch::x86_64::__m128; 4]) -> [std::arch::x86_64::__m128; 4] {
    use std::arch::x86_64::*;
    // SAFETY: SSE is part of x86_64.
    unsafe {
        let (t0, t1) = (_mm_unpacklo_ps(r0, r1), _mm_unpacklo_ps(r2, r3)); // a0 b0 a1 b1, c0 d0 c1 d1
        let (t2, t3) = (_mm_unpackhi_ps(r0, r1), _mm_unpackhi_ps(r2, r3)); // a2 b2 a3 b3, c2 d2 c3 d3
        [_mm_movelh_ps(t0, t1), _mm_movehl_ps(t1, t0), _mm_movelh_ps(t2, t3), _mm_movehl_ps(t3, t2)]
    }
}

/// The packers' transpose (ops/matmul.rs's A and B slivers, ops/attention.rs's panels): lines
/// l < 4·⌊lines/4⌋ of `depth` floats, line l at `src + l·stride`, go to dst[p·width + l], times
/// `factor` when SCALE, four lines by four steps per group of SSE registers ([`transpose4_sse`];
/// a float at a time, packing took a large share of big products and of attention's
/// instructions). Returns the lines packed; the caller packs the rest.
///
/// # Safety
/// Lines l < lines are valid for `depth` reads, `dst` for (depth - 1)·width + lines writes.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn transpose_fours<const SCALE: bool>(
    dst: *mut f32, width: usize, src: *const f32, stride: usize, lines: usize, depth: usize, factor: f32,
) -> usize {
    use std::arch::x86_64::*;
    let d4 = depth - depth % 4;
    let mut l0 = 0;
    // SAFETY (whole body): indices l0 + l < lines and p < depth, per the contract above.
    unsafe {
        let f = _mm_set1_ps(factor);
        while l0 + 4 <= lines {
            let s = src.add(l0 * stride);
            for p in (0..d4).step_by(4) {
                let quad: [__m128; 4] = std::array::from_fn(|l| {
                    let x = _mm_loadu_ps(s.add(l * stride + p));
                    if SCALE { _mm_mul_ps(x, f) } else { x }
                });
                for (i, steps) in transpose4_sse(quad).into_iter().enumerate() {
                    _mm_storeu_ps(dst.add((p + i) * width + l0), steps);
                }
            }
            for p in d4..depth {
                for l in 0..4 {
                    let x = *s.add(l * stride + p);
                    *dst.add(p * width + l0 + l) = if SCALE { x * factor } else { x };
                }
            }
            l0 += 4;
        }
    }
    l0
}

/// Elsewhere the packers transpose every line themselves.
#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
pub(crate) unsafe fn transpose_fours<const SCALE: bool>(_: *mut f32, _: usize, _: *const f32, _: usize, _: usize, _: usize, _: f32) -> usize {
    0
}

/// One instruction set's vector arithmetic. All methods are `unsafe` because the x86
/// implementations may only run where [`Isa::is_available`] said yes, and `load` / `store`
/// take raw pointers that must be valid for `LANES` floats (no alignment needed).
pub trait VecOps {
    /// Floats per vector.
    const LANES: usize;
    type V: Copy;
    unsafe fn zero() -> Self::V;
    unsafe fn splat(x: f32) -> Self::V;
    unsafe fn load(p: *const f32) -> Self::V;
    unsafe fn store(p: *mut f32, v: Self::V);
    unsafe fn add(a: Self::V, b: Self::V) -> Self::V;
    unsafe fn mul(a: Self::V, b: Self::V) -> Self::V;
    /// a * b + c (fused where the instruction set has it, so rounding differs by ISA).
    unsafe fn fma(a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    unsafe fn max(a: Self::V, b: Self::V) -> Self::V;
    unsafe fn reduce_sum(v: Self::V) -> f32;
    unsafe fn reduce_max(v: Self::V) -> f32;
}

/// The instruction sets this crate has kernels for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    Scalar,
    /// x86_64 AVX2 + FMA.
    Avx2,
    /// x86_64 AVX-512F.
    Avx512,
    /// wasm32 simd128 (compile-time only).
    Wasm128,
}

impl Isa {
    /// Every variant, best last.
    pub const ALL: [Isa; 4] = [Isa::Scalar, Isa::Wasm128, Isa::Avx2, Isa::Avx512];

    /// Whether this machine (x86: at runtime; wasm: this build) can run the variant.
    pub fn is_available(self) -> bool {
        match self {
            Isa::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma"),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => std::is_x86_feature_detected!("avx512f"),
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            Isa::Wasm128 => true,
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// The best available variant, detected once per process; the environment variable
    /// `FERROFORMER_ISA` (`scalar`, `avx2`, `avx512`) picks another one where available, so
    /// benchmarks can time the AVX2 path of every kernel on an AVX-512 machine.
    pub fn detect() -> Isa {
        static BEST: std::sync::OnceLock<Isa> = std::sync::OnceLock::new();
        *BEST.get_or_init(|| {
            let best = Isa::ALL.iter().rev().copied().find(|isa| isa.is_available()).unwrap_or(Isa::Scalar);
            let named = |name: String| Isa::available().find(|isa| format!("{isa:?}").eq_ignore_ascii_case(&name));
            std::env::var("FERROFORMER_ISA").ok().and_then(named).unwrap_or(best)
        })
    }

    /// Every variant available here, for tests.
    pub fn available() -> impl Iterator<Item = Isa> {
        Isa::ALL.into_iter().filter(|isa| isa.is_available())
    }
}

// ---- generic kernels, instantiated per instruction set -----------------------------------

/// sum_i a[i] * b[i] over the common length. Four accumulators hide FMA latency; the
/// combination order is fixed, so the result depends only on the ISA and the length.
#[inline(always)]
pub(crate) unsafe fn dot_generic<S: VecOps>(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let l = S::LANES;
    let mut i = 0;
    // SAFETY (whole body): every pointer offset below is < n, the common length.
    unsafe {
        let (mut s0, mut s1, mut s2, mut s3) = (S::zero(), S::zero(), S::zero(), S::zero());
        while i + 4 * l <= n {
            s0 = S::fma(S::load(pa.add(i)), S::load(pb.add(i)), s0);
            s1 = S::fma(S::load(pa.add(i + l)), S::load(pb.add(i + l)), s1);
            s2 = S::fma(S::load(pa.add(i + 2 * l)), S::load(pb.add(i + 2 * l)), s2);
            s3 = S::fma(S::load(pa.add(i + 3 * l)), S::load(pb.add(i + 3 * l)), s3);
            i += 4 * l;
        }
        while i + l <= n {
            s0 = S::fma(S::load(pa.add(i)), S::load(pb.add(i)), s0);
            i += l;
        }
        let mut sum = S::reduce_sum(S::add(S::add(s0, s1), S::add(s2, s3)));
        while i < n {
            sum += *pa.add(i) * *pb.add(i);
            i += 1;
        }
        sum
    }
}

/// y += alpha * x over the common length.
#[inline(always)]
pub(crate) unsafe fn axpy_generic<S: VecOps>(y: &mut [f32], alpha: f32, x: &[f32]) {
    let n = y.len().min(x.len());
    let (py, px) = (y.as_mut_ptr(), x.as_ptr());
    let l = S::LANES;
    let mut i = 0;
    // SAFETY (whole body): every offset is < n, the common length; y and x cannot overlap
    // (one is &mut).
    unsafe {
        let va = S::splat(alpha);
        while i + l <= n {
            S::store(py.add(i), S::fma(va, S::load(px.add(i)), S::load(py.add(i))));
            i += l;
        }
        while i < n {
            *py.add(i) += alpha * *px.add(i);
            i += 1;
        }
    }
}

/// x = max(x, 0) in place, NaN kept (PyTorch's relu: the test is `x <= 0`, false for NaN).
/// Plain code, vectorised by the caller's `#[target_feature]`.
#[inline(always)]
#[allow(clippy::extra_unused_type_parameters)] // the ISA is the caller's #[target_feature]
pub(crate) unsafe fn relu_inplace_generic<S: VecOps>(x: &mut [f32]) {
    for v in x.iter_mut() {
        *v = if *v <= 0.0 { 0.0 } else { *v };
    }
}

/// d = g where y > 0 (or NaN), else 0, over the common length: ReLU's gradient read from its
/// output `y` (the same sign as its input).
#[inline(always)]
#[allow(clippy::extra_unused_type_parameters)] // the ISA is the caller's #[target_feature]
pub(crate) unsafe fn relu_grad_to_generic<S: VecOps>(d: &mut [f32], g: &[f32], y: &[f32]) {
    for ((d, &g), &y) in d.iter_mut().zip(g).zip(y) {
        *d = if y <= 0.0 { 0.0 } else { g };
    }
}

/// sums[c] += Σ_r x[r·cols + c], the rows of x in order (a bias gradient): the same bits as
/// adding x row after row into sums, but each block of rows is summed in registers with one
/// load and store of `sums`, where row-by-row adds load and store all of sums every row (the
/// stores, not the reads of x, were the cost: bench/notes.md).
#[inline(always)]
pub(crate) unsafe fn column_sums_add_generic<S: VecOps>(sums: &mut [f32], x: &[f32], cols: usize) {
    /// Rows per block: their slice of x (16 rows of a 128-float column block: 8 KiB) is
    /// read once, and sums loaded and stored once per block.
    const ROWS: usize = 16;
    /// Vectors per column block, the accumulators held in registers.
    const NV: usize = 8;
    if cols == 0 || sums.len() < cols {
        return;
    }
    let rows = x.len() / cols;
    let l = S::LANES;
    let (ps, px) = (sums.as_mut_ptr(), x.as_ptr());
    // SAFETY (whole body): column offsets < cols <= sums.len(), x offsets < rows * cols.
    unsafe {
        for r0 in (0..rows).step_by(ROWS) {
            let r1 = (r0 + ROWS).min(rows);
            let mut c = 0;
            while c + NV * l <= cols {
                let mut acc = [S::zero(); NV];
                for (v, a) in acc.iter_mut().enumerate() {
                    *a = S::load(ps.add(c + v * l));
                }
                for r in r0..r1 {
                    let row = px.add(r * cols + c);
                    for (v, a) in acc.iter_mut().enumerate() {
                        *a = S::add(*a, S::load(row.add(v * l)));
                    }
                }
                for (v, &a) in acc.iter().enumerate() {
                    S::store(ps.add(c + v * l), a);
                }
                c += NV * l;
            }
            while c + l <= cols {
                let mut a = S::load(ps.add(c));
                for r in r0..r1 {
                    a = S::add(a, S::load(px.add(r * cols + c)));
                }
                S::store(ps.add(c), a);
                c += l;
            }
            while c < cols {
                let mut a = *ps.add(c);
                for r in r0..r1 {
                    a += *px.add(r * cols + c);
                }
                *ps.add(c) = a;
                c += 1;
            }
        }
    }
}

/// y += x over the common length (gradient accumulation).
#[inline(always)]
pub(crate) unsafe fn add_assign_generic<S: VecOps>(y: &mut [f32], x: &[f32]) {
    let n = y.len().min(x.len());
    let (py, px) = (y.as_mut_ptr(), x.as_ptr());
    let l = S::LANES;
    let mut i = 0;
    // SAFETY (whole body): offsets < n, the common length.
    unsafe {
        while i + l <= n {
            S::store(py.add(i), S::add(S::load(py.add(i)), S::load(px.add(i))));
            i += l;
        }
        while i < n {
            *py.add(i) += *px.add(i);
            i += 1;
        }
    }
}

/// x *= s.
#[inline(always)]
pub(crate) unsafe fn scale_generic<S: VecOps>(x: &mut [f32], s: f32) {
    let n = x.len();
    let p = x.as_mut_ptr();
    let l = S::LANES;
    let mut i = 0;
    // SAFETY (whole body): offsets < n = x.len().
    unsafe {
        let vs = S::splat(s);
        while i + l <= n {
            S::store(p.add(i), S::mul(S::load(p.add(i)), vs));
            i += l;
        }
        while i < n {
            *p.add(i) *= s;
            i += 1;
        }
    }
}

/// max_i x[i] (-inf for an empty slice). NaN handling follows the ISA's max instruction.
#[inline(always)]
pub(crate) unsafe fn max_generic<S: VecOps>(x: &[f32]) -> f32 {
    let n = x.len();
    let p = x.as_ptr();
    let l = S::LANES;
    let mut i = 0;
    // SAFETY (whole body): offsets < n = x.len().
    unsafe {
        let mut m = f32::NEG_INFINITY;
        if n >= l {
            let mut acc = S::splat(f32::NEG_INFINITY);
            while i + l <= n {
                acc = S::max(acc, S::load(p.add(i)));
                i += l;
            }
            m = S::reduce_max(acc);
        }
        while i < n {
            if *p.add(i) > m {
                m = *p.add(i);
            }
            i += 1;
        }
        m
    }
}

/// sum_i x[i], lanes accumulated separately then combined in a fixed order.
#[inline(always)]
pub(crate) unsafe fn sum_generic<S: VecOps>(x: &[f32]) -> f32 {
    let n = x.len();
    let p = x.as_ptr();
    let l = S::LANES;
    let mut i = 0;
    // SAFETY (whole body): offsets < n = x.len().
    unsafe {
        let (mut s0, mut s1) = (S::zero(), S::zero());
        while i + 2 * l <= n {
            s0 = S::add(s0, S::load(p.add(i)));
            s1 = S::add(s1, S::load(p.add(i + l)));
            i += 2 * l;
        }
        while i + l <= n {
            s0 = S::add(s0, S::load(p.add(i)));
            i += l;
        }
        let mut sum = S::reduce_sum(S::add(s0, s1));
        while i < n {
            sum += *p.add(i);
            i += 1;
        }
        sum
    }
}

/// e^x for x <= 88, within ~2 ulp (Cephes' expf polynomial after a range reduction by
/// n = round(x / ln 2)); exactly 0 below -87 (so -inf gives 0). Branch-free scalar code that
/// the ISA files' `#[target_feature]` wrappers autovectorise. Two roundings per step, so the
/// same bits on every instruction set (softmax, cross-entropy).
#[inline(always)]
pub(crate) fn exp_approx(x: f32) -> f32 {
    exp_approx_with::<math::Unfused>(x)
}

/// [`exp_approx`] with the multiply-adds of `M`: fused where the instruction set has FMA
/// (AVX2, AVX-512: about a third fewer instructions; attention measured 3-15% faster), the
/// same bits as `exp_approx` where it has not (scalar, simd128). So the last bit may differ
/// between instruction sets, as the products' sums already do; never between thread counts.
#[inline(always)]
pub(crate) fn exp_approx_with<M: math::MulAdd>(x: f32) -> f32 {
    let y = exp_in_range::<M>(x.clamp(-87.0, 88.0));
    if x < -87.0 { 0.0 } else { y }
}

/// [`exp_approx_with`] for x already in [-87, 88] (NaN gives NaN): without the clamp and the
/// zero below -87, for a caller that bounds x itself (cross-entropy's sum of e^(x - max),
/// where a term of e^-87 instead of 0 beside the max's 1 changes no bit).
#[inline(always)]
pub(crate) fn exp_in_range<M: math::MulAdd>(x: f32) -> f32 {
    use math::{exp_reduced, LN2_HI, LN2_LO, ROUND_MAGIC};
    let t = M::mul_add(x, std::f32::consts::LOG2_E, ROUND_MAGIC);
    let n = t - ROUND_MAGIC;
    let ni = (t.to_bits() as i32).wrapping_sub(0x4B40_0000);
    // x - n·ln2 in two steps (n·LN2_HI is exact); -n·c + x rounds as x - n·c does.
    let r = M::mul_add(-n, LN2_LO, M::mul_add(-n, LN2_HI, x));
    exp_reduced::<M>(r) * f32::from_bits(((ni + 127) << 23) as u32)
}

/// x[i] = e^(x[i] - shift) for all i (see [`exp_approx`]); returns their sum.
#[inline(always)]
pub(crate) unsafe fn exp_shift_generic<S: VecOps>(x: &mut [f32], shift: f32) -> f32 {
    for v in x.iter_mut() {
        *v = exp_approx(*v - shift);
    }
    // SAFETY: valid slice; the caller's ISA.
    unsafe { sum_generic::<S>(x) }
}

/// out[i] = (x[i] - mean) * rstd * w[i] + b[i] over the common length (layer norm's output).
#[inline(always)]
pub(crate) unsafe fn norm_affine_generic<S: VecOps>(out: &mut [f32], x: &[f32], w: &[f32], b: &[f32], mean: f32, rstd: f32) {
    let n = out.len().min(x.len()).min(w.len()).min(b.len());
    let (po, px, pw, pb) = (out.as_mut_ptr(), x.as_ptr(), w.as_ptr(), b.as_ptr());
    let l = S::LANES;
    let mut i = 0;
    // SAFETY (whole body): offsets < n, the common length; out is &mut so cannot alias.
    unsafe {
        let (vm, vr) = (S::splat(-mean), S::splat(rstd));
        while i + l <= n {
            let xh = S::mul(S::add(S::load(px.add(i)), vm), vr);
            S::store(po.add(i), S::fma(xh, S::load(pw.add(i)), S::load(pb.add(i))));
            i += l;
        }
        while i < n {
            *po.add(i) = (*px.add(i) - mean) * rstd * *pw.add(i) + *pb.add(i);
            i += 1;
        }
    }
}

/// (sum_i (x[i] - c), sum_i (x[i] - c)^2): layer norm's shifted sums.
#[inline(always)]
pub(crate) unsafe fn dev_sums_generic<S: VecOps>(x: &[f32], c: f32) -> (f32, f32) {
    let n = x.len();
    let p = x.as_ptr();
    let l = S::LANES;
    let mut i = 0;
    // SAFETY (whole body): offsets < n = x.len().
    unsafe {
        let vc = S::splat(-c);
        let (mut s0, mut s1, mut q0, mut q1) = (S::zero(), S::zero(), S::zero(), S::zero());
        while i + 2 * l <= n {
            let d0 = S::add(S::load(p.add(i)), vc);
            let d1 = S::add(S::load(p.add(i + l)), vc);
            s0 = S::add(s0, d0);
            s1 = S::add(s1, d1);
            q0 = S::fma(d0, d0, q0);
            q1 = S::fma(d1, d1, q1);
            i += 2 * l;
        }
        while i + l <= n {
            let d0 = S::add(S::load(p.add(i)), vc);
            s0 = S::add(s0, d0);
            q0 = S::fma(d0, d0, q0);
            i += l;
        }
        let (mut sum, mut sq) = (S::reduce_sum(S::add(s0, s1)), S::reduce_sum(S::add(q0, q1)));
        while i < n {
            let d = *p.add(i) - c;
            sum += d;
            sq += d * d;
            i += 1;
        }
        (sum, sq)
    }
}

/// One k step of [`sgemm_micro_generic`]: NV loads of B, MR broadcasts of A, MR * NV FMAs.
/// (A function, not a closure: a closure would not inherit the caller's target features.)
///
/// # Safety
/// `a` valid for MR floats, `b` for NV * LANES; the ISA available.
#[inline(always)]
unsafe fn sgemm_step<S: VecOps, const MR: usize, const NV: usize>(acc: &mut [[S::V; NV]; MR], a: *const f32, b: *const f32) {
    // SAFETY: per the contract above.
    unsafe {
        let mut bv = [S::zero(); NV];
        for (v, slot) in bv.iter_mut().enumerate() {
            *slot = S::load(b.add(v * S::LANES));
        }
        for (r, acc_row) in acc.iter_mut().enumerate() {
            let av = S::splat(*a.add(r));
            for v in 0..NV {
                acc_row[v] = S::fma(av, bv[v], acc_row[v]);
            }
        }
    }
}

/// Register-blocked sgemm micro-kernel: C[0..rows, 0..cols] (+)= A_sliver · B_sliver.
/// `a`: packed [kc, MR] (MR rows per k step), `b`: packed [kc, NV * LANES], both
/// zero-padded past rows / cols. `c` has row stride `ldc`. `add` adds into C, otherwise
/// overwrites. The k reduction runs p = 0..kc in order from a zero accumulator, so a C
/// element's value does not depend on which tile or thread computed it.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn sgemm_micro_generic<S: VecOps, const MR: usize, const NV: usize>(
    kc: usize, a: *const f32, b: *const f32, c: *mut f32, ldc: usize, rows: usize, cols: usize, add: bool,
) {
    let l = S::LANES;
    let nr = NV * l;
    // SAFETY (whole body): the packed slivers hold kc * MR and kc * nr floats; C holds
    // rows x cols at stride ldc (the caller guarantees rows <= MR, cols <= nr).
    unsafe {
        // The C tile is read (add) or written only after the k loop; fetching its lines now
        // overlaps the cache misses of a C larger than L2 with the loop instead of stalling
        // on them at the end (measured in bench/notes.md).
        #[cfg(target_arch = "x86_64")]
        for r in 0..rows {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            let row = c.add(r * ldc) as *const i8;
            _mm_prefetch::<_MM_HINT_T0>(row);
            _mm_prefetch::<_MM_HINT_T0>(row.add(cols * 4 - 4));
        }
        let mut acc = [[S::zero(); NV]; MR];
        let (mut pa, mut pb) = (a, b);
        // Four steps per iteration: the loop's own instructions (pointer bumps, count, branch)
        // compete with the FMAs for issue slots otherwise.
        for _ in 0..kc / 4 {
            for u in 0..4 {
                sgemm_step::<S, MR, NV>(&mut acc, pa.add(u * MR), pb.add(u * nr));
            }
            pa = pa.add(4 * MR);
            pb = pb.add(4 * nr);
        }
        for _ in 0..kc % 4 {
            sgemm_step::<S, MR, NV>(&mut acc, pa, pb);
            pa = pa.add(MR);
            pb = pb.add(nr);
        }
        if rows == MR && cols == nr {
            for (r, acc_row) in acc.iter().enumerate() {
                for v in 0..NV {
                    let cp = c.add(r * ldc + v * l);
                    let x = if add { S::add(S::load(cp), acc_row[v]) } else { acc_row[v] };
                    S::store(cp, x);
                }
            }
        } else {
            // Edge tile: spill to a stack tile, copy the valid part.
            let mut tile = [[0.0f32; 64]; MR];
            for (r, acc_row) in acc.iter().enumerate() {
                for v in 0..NV {
                    S::store(tile[r].as_mut_ptr().add(v * l), acc_row[v]);
                }
            }
            for (r, tile_row) in tile.iter().enumerate().take(rows) {
                for (j, &t) in tile_row.iter().enumerate().take(cols) {
                    let cp = c.add(r * ldc + j);
                    *cp = if add { *cp + t } else { t };
                }
            }
        }
    }
}

// ---- dispatched helpers used by the kernels -----------------------------------------------

/// The call of one helper on `isa`, which must be available (detected, or asserted).
macro_rules! dispatch {
    ($isa:expr, $name:ident ( $($arg:expr),* )) => {{
        match $isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: Isa::Avx512 is only returned / accepted when detected at runtime.
            Isa::Avx512 => unsafe { on_avx512::$name($($arg),*) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above for AVX2 + FMA.
            Isa::Avx2 => unsafe { on_avx2::$name($($arg),*) },
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            // SAFETY: simd128 is enabled at compile time.
            Isa::Wasm128 => unsafe { on_wasm128::$name($($arg),*) },
            // SAFETY: the scalar variant needs no CPU feature.
            _ => unsafe { on_scalar::$name($($arg),*) },
        }
    }};
}

/// Each helper once: its best-ISA entry point, its explicit-ISA twin for tests, and the
/// `#[target_feature]` instantiation of its generic body for every instruction set (one
/// module per ISA below), so a new helper is one line here plus its `*_generic` body.
macro_rules! simd_helpers {
    ($(
        $(#[$doc:meta])*
        fn $name:ident / $with:ident ( $($arg:ident : $ty:ty),* ) $(-> $ret:ty)? = $generic:ident;
    )*) => {
        /// The helpers compiled for AVX-512F (x86_64, chosen at run time).
        #[cfg(target_arch = "x86_64")]
        mod on_avx512 {
            use super::*;
            $(
                #[target_feature(enable = "avx512f")]
                pub(super) unsafe fn $name($($arg: $ty),*) $(-> $ret)? {
                    // SAFETY: AVX-512F is enabled here and was detected by the dispatcher.
                    unsafe { $generic::<avx512::Avx512>($($arg),*) }
                }
            )*
        }

        /// The helpers compiled for AVX2 + FMA (x86_64, chosen at run time).
        #[cfg(target_arch = "x86_64")]
        mod on_avx2 {
            use super::*;
            $(
                #[target_feature(enable = "avx2,fma")]
                pub(super) unsafe fn $name($($arg: $ty),*) $(-> $ret)? {
                    // SAFETY: AVX2 + FMA are enabled here and were detected by the dispatcher.
                    unsafe { $generic::<avx2::Avx2>($($arg),*) }
                }
            )*
        }

        /// The helpers over simd128 (enabled at compile time).
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        mod on_wasm128 {
            use super::*;
            $(
                pub(super) unsafe fn $name($($arg: $ty),*) $(-> $ret)? {
                    // SAFETY: simd128 is enabled for the whole build.
                    unsafe { $generic::<wasm128::Wasm128>($($arg),*) }
                }
            )*
        }

        /// The helpers without SIMD (`unsafe` only to share the dispatcher's shape).
        mod on_scalar {
            use super::*;
            $(
                pub(super) unsafe fn $name($($arg: $ty),*) $(-> $ret)? {
                    // SAFETY: no CPU feature needed.
                    unsafe { $generic::<scalar::Scalar>($($arg),*) }
                }
            )*
        }

        $(
            $(#[$doc])*
            /// Runs on the best instruction set of this machine.
            #[inline]
            pub fn $name($($arg: $ty),*) $(-> $ret)? {
                dispatch!(Isa::detect(), $name($($arg),*))
            }

            #[doc = concat!("[`", stringify!($name), "`] on an explicit instruction set (tests); panics if `isa` is not available here.")]
            pub fn $with(isa: Isa, $($arg: $ty),*) $(-> $ret)? {
                assert!(isa.is_available(), "{isa:?} is not available on this machine");
                dispatch!(isa, $name($($arg),*))
            }
        )*
    };
}

simd_helpers! {
    /// sum_i a[i] * b[i] over the common length.
    fn dot / dot_with(a: &[f32], b: &[f32]) -> f32 = dot_generic;
    /// y += alpha * x over the common length.
    fn axpy / axpy_with(y: &mut [f32], alpha: f32, x: &[f32]) = axpy_generic;
    /// y += x over the common length.
    fn add_assign / add_assign_with(y: &mut [f32], x: &[f32]) = add_assign_generic;
    /// sums[c] += the sum over x's rows [rows, cols] of column c, rows in order.
    fn column_sums_add / column_sums_add_with(sums: &mut [f32], x: &[f32], cols: usize) = column_sums_add_generic;
    /// x = max(x, 0) in place, NaN kept.
    fn relu_inplace / relu_inplace_with(x: &mut [f32]) = relu_inplace_generic;
    /// d = g where y > 0 (or NaN), else 0 (ReLU's gradient from its output).
    fn relu_grad_to / relu_grad_to_with(d: &mut [f32], g: &[f32], y: &[f32]) = relu_grad_to_generic;
    /// x *= s.
    fn scale / scale_with(x: &mut [f32], s: f32) = scale_generic;
    /// max_i x[i] (-inf when empty).
    fn max / max_with(x: &[f32]) -> f32 = max_generic;
    /// sum_i x[i].
    fn sum / sum_with(x: &[f32]) -> f32 = sum_generic;
    /// x[i] = e^(x[i] - shift), returns the sum (see `exp_approx`).
    fn exp_shift / exp_shift_with(x: &mut [f32], shift: f32) -> f32 = exp_shift_generic;
    /// out = (x - mean) * rstd * w + b.
    fn norm_affine / norm_affine_with(out: &mut [f32], x: &[f32], w: &[f32], b: &[f32], mean: f32, rstd: f32) = norm_affine_generic;
    /// (sum_i (x[i] - c), sum_i (x[i] - c)^2).
    fn dev_sums / dev_sums_with(x: &[f32], c: f32) -> (f32, f32) = dev_sums_generic;
    /// out = a + b.
    fn add_to / add_to_with(out: &mut [f32], a: &[f32], b: &[f32]) = add_to_generic;
    /// out = a * b.
    fn mul_to / mul_to_with(out: &mut [f32], a: &[f32], b: &[f32]) = mul_to_generic;
    /// out = x * s.
    fn scale_to / scale_to_with(out: &mut [f32], x: &[f32], s: f32) = scale_to_generic;
    /// sum_i x[i]^2 in f64 (fixed order, the same bits on every instruction set).
    fn sum_squares / sum_squares_with(x: &[f32]) -> f64 = sum_squares_generic;
    /// One Adam / AdamW update of param, m, v (the same bits on every instruction set).
    fn adam_step / adam_step_with(param: &mut [f32], m: &mut [f32], v: &mut [f32], grad: &[f32], c: &AdamStep) = adam_step_generic;
    /// Layer norm backward's row sums (sum g, sum g * xhat), g = go * w, xhat = (x - mu) * rs.
    fn ln_row_sums / ln_row_sums_with(go: &[f32], w: &[f32], x: &[f32], mu: f32, rs: f32) -> (f32, f32) = ln_row_sums_generic;
    /// dinp += (go * w - mean_g - xhat * mean_gx) * rs over one row.
    fn ln_row_dinp / ln_row_dinp_with(dinp: &mut [f32], go: &[f32], w: &[f32], x: &[f32], row: (f32, f32), means: (f32, f32)) = ln_row_dinp_generic;
    /// dweight += go * xhat, dbias += go over one row (or a column block of it).
    fn ln_row_dparams / ln_row_dparams_with(dweight: &mut [f32], dbias: &mut [f32], go: &[f32], x: &[f32], mu: f32, rs: f32) = ln_row_dparams_generic;
    /// out[i] = f(inp[i]) (vectorised f32 math, `simd::math`).
    fn pointwise / pointwise_with(out: &mut [f32], inp: &[f32], f: Pointwise) = pointwise_generic;
    /// d[i] (+)= g[i] * f'(x[i]); accumulates when `accumulate`.
    fn pointwise_grad / pointwise_grad_with(d: &mut [f32], g: &[f32], x: &[f32], f: Pointwise, accumulate: bool) = pointwise_grad_generic;
    /// Per row of `cols`, x = t + bias: out = f(x), t = f'(x) (a fused linear's epilogue).
    fn bias_act_with_grad / bias_act_with_grad_with(t: &mut [f32], out: &mut [f32], bias: Option<&[f32]>, cols: usize, f: Pointwise) = bias_act_with_grad_generic;
    /// Index of the first maximum (`min`: minimum) of a non-empty x, or of its first NaN.
    fn arg_extreme / arg_extreme_with(x: &[f32], min: bool) -> usize = arg_extreme_generic;
    /// One row j of a column-wise max / min with indices: best[c], at[c] = x[c], j where x[c] wins.
    fn arg_extreme_step / arg_extreme_step_with(best: &mut [f32], at: &mut [i32], x: &[f32], j: i32, min: bool) = arg_extreme_step_generic;
    /// One row of a column-wise amax / amin (NaN wins).
    fn extreme_step / extreme_step_with(acc: &mut [f32], x: &[f32], min: bool) = extreme_step_generic;
    /// acc += x in f64.
    fn add_f64 / add_f64_with(acc: &mut [f64], x: &[f32]) = add_f64_generic;
    /// acc += (x - mean)^2 in f64.
    fn add_sq_dev_f64 / add_sq_dev_f64_with(acc: &mut [f64], x: &[f32], mean: &[f64]) = add_sq_dev_f64_generic;
    /// out = (a op b) as 0 / 1; an operand of length 1 is repeated.
    fn compare_to / compare_to_with(out: &mut [u8], a: &[f32], b: &[f32], op: Compare) = compare_to_generic;
}
