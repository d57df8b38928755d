//! Portable fallback: one f32 per "vector", a*b+c not fused (no libm fma call).
use super::VecOps;

pub struct Scalar;

impl VecOps for Scalar {
    const LANES: usize = 1;
    type V = f32;
    #[inline(always)]
    unsafe fn zero() -> f32 { 0.0 }
    #[inline(always)]
    unsafe fn splat(x: f32) -> f32 { x }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> f32 {
        // SAFETY: the caller passes a pointer valid for one float.
        unsafe { *p }
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: f32) {
        // SAFETY: the caller passes a pointer valid for one float.
        unsafe { *p = v }
    }
    #[inline(always)]
    unsafe fn add(a: f32, b: f32) -> f32 { a + b }
    #[inline(always)]
    unsafe fn mul(a: f32, b: f32) -> f32 { a * b }
    #[inline(always)]
    unsafe fn fma(a: f32, b: f32, c: f32) -> f32 { a * b + c }
    #[inline(always)]
    unsafe fn max(a: f32, b: f32) -> f32 { a.max(b) }
    #[inline(always)]
    unsafe fn reduce_sum(v: f32) -> f32 { v }
    #[inline(always)]
    unsafe fn reduce_max(v: f32) -> f32 { v }
}

/// 4x4 register tile of scalars.
#[allow(non_snake_case, clippy::too_many_arguments)]
pub(crate) unsafe fn sgemm_4x4__scalar(
    kc: usize, a: *const f32, b: *const f32, c: *mut f32, ldc: usize, rows: usize, cols: usize, add: bool,
) {
    // SAFETY: forwarded from the packed-sgemm driver's contract.
    unsafe { super::sgemm_micro_generic::<Scalar, 4, 4>(kc, a, b, c, ldc, rows, cols, add) }
}

