//! wasm32 simd128: 4 floats per v128. Selected at compile time (`-C target-feature=+simd128`);
//! baseline simd128 has no fused multiply-add, so fma is mul + add, except in the relaxed-SIMD
//! build (`+relaxed-simd`, build/ferroformer-relaxed.wasm).
use super::VecOps;
use core::arch::wasm32::*;

pub struct Wasm128;

impl VecOps for Wasm128 {
    const LANES: usize = 4;
    type V = v128;
    #[inline(always)]
    unsafe fn zero() -> v128 { f32x4_splat(0.0) }
    #[inline(always)]
    unsafe fn splat(x: f32) -> v128 { f32x4_splat(x) }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> v128 {
        // SAFETY: p is valid for 4 floats (caller); v128_load has no alignment requirement.
        unsafe { v128_load(p as *const v128) }
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: v128) {
        // SAFETY: p is valid for 4 floats (caller).
        unsafe { v128_store(p as *mut v128, v) }
    }
    #[inline(always)]
    unsafe fn add(a: v128, b: v128) -> v128 { f32x4_add(a, b) }
    #[inline(always)]
    unsafe fn mul(a: v128, b: v128) -> v128 { f32x4_mul(a, b) }
    /// mul + add on baseline simd128; `f32x4.relaxed_madd` in the relaxed-SIMD build (fused
    /// or not as the engine's hardware chooses: deterministic on one machine, not across).
    #[cfg(not(target_feature = "relaxed-simd"))]
    #[inline(always)]
    unsafe fn fma(a: v128, b: v128, c: v128) -> v128 { f32x4_add(f32x4_mul(a, b), c) }
    #[cfg(target_feature = "relaxed-simd")]
    #[inline(always)]
    unsafe fn fma(a: v128, b: v128, c: v128) -> v128 { f32x4_relaxed_madd(a, b, c) }
    #[inline(always)]
    unsafe fn max(a: v128, b: v128) -> v128 { f32x4_max(a, b) }
    #[inline(always)]
    unsafe fn reduce_sum(v: v128) -> f32 {
        (f32x4_extract_lane::<0>(v) + f32x4_extract_lane::<1>(v))
            + (f32x4_extract_lane::<2>(v) + f32x4_extract_lane::<3>(v))
    }
    #[inline(always)]
    unsafe fn reduce_max(v: v128) -> f32 {
        f32x4_extract_lane::<0>(v)
            .max(f32x4_extract_lane::<1>(v))
            .max(f32x4_extract_lane::<2>(v).max(f32x4_extract_lane::<3>(v)))
    }
}

pub(crate) unsafe fn dot(a: &[f32], b: &[f32]) -> f32 {
    // SAFETY: simd128 enabled at compile time; slices valid.
    unsafe { super::dot_generic::<Wasm128>(a, b) }
}
pub(crate) unsafe fn axpy(y: &mut [f32], alpha: f32, x: &[f32]) {
    // SAFETY: as above.
    unsafe { super::axpy_generic::<Wasm128>(y, alpha, x) }
}
pub(crate) unsafe fn add_assign(y: &mut [f32], x: &[f32]) {
    // SAFETY: as above.
    unsafe { super::add_assign_generic::<Wasm128>(y, x) }
}
pub(crate) unsafe fn scale(x: &mut [f32], s: f32) {
    // SAFETY: as above.
    unsafe { super::scale_generic::<Wasm128>(x, s) }
}

/// 4 rows x 8 columns: 8 accumulators + 2 B vectors + 1 broadcast.
#[allow(non_snake_case, clippy::too_many_arguments)]
pub(crate) unsafe fn sgemm_4x8__wasm128(
    kc: usize, a: *const f32, b: *const f32, c: *mut f32, ldc: usize, rows: usize, cols: usize, add: bool,
) {
    // SAFETY: simd128 enabled; pointers per the packed-sgemm driver's contract.
    unsafe { super::sgemm_micro_generic::<Wasm128, 4, 2>(kc, a, b, c, ldc, rows, cols, add) }
}

pub(crate) unsafe fn max(x: &[f32]) -> f32 {
    // SAFETY: simd128 enabled at compile time; slice valid.
    unsafe { super::max_generic::<Wasm128>(x) }
}
pub(crate) unsafe fn sum(x: &[f32]) -> f32 {
    // SAFETY: as above.
    unsafe { super::sum_generic::<Wasm128>(x) }
}
pub(crate) unsafe fn exp_shift(x: &mut [f32], shift: f32) -> f32 {
    // SAFETY: as above.
    unsafe { super::exp_shift_generic::<Wasm128>(x, shift) }
}
pub(crate) unsafe fn norm_affine(out: &mut [f32], x: &[f32], w: &[f32], b: &[f32], mean: f32, rstd: f32) {
    // SAFETY: as above.
    unsafe { super::norm_affine_generic::<Wasm128>(out, x, w, b, mean, rstd) }
}
pub(crate) unsafe fn dev_sums(x: &[f32], c: f32) -> (f32, f32) {
    // SAFETY: as above.
    unsafe { super::dev_sums_generic::<Wasm128>(x, c) }
}
