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

/// 4 rows x 8 columns: 8 accumulators + 2 B vectors + 1 broadcast.
#[allow(non_snake_case, clippy::too_many_arguments)]
pub(crate) unsafe fn sgemm_4x8__wasm128(
    kc: usize, a: *const f32, b: *const f32, c: *mut f32, ldc: usize, rows: usize, cols: usize, add: bool,
) {
    // SAFETY: simd128 enabled; pointers per the packed-sgemm driver's contract.
    unsafe { super::sgemm_micro_generic::<Wasm128, 4, 2>(kc, a, b, c, ldc, rows, cols, add) }
}

