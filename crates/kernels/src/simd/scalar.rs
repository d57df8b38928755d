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

// Instantiations (no CPU feature needed; `unsafe` only to share the dispatcher's shape).
pub(crate) unsafe fn dot(a: &[f32], b: &[f32]) -> f32 {
    // SAFETY: generic kernel over valid slices.
    unsafe { super::dot_generic::<Scalar>(a, b) }
}
pub(crate) unsafe fn axpy(y: &mut [f32], alpha: f32, x: &[f32]) {
    // SAFETY: generic kernel over valid slices.
    unsafe { super::axpy_generic::<Scalar>(y, alpha, x) }
}
pub(crate) unsafe fn add_assign(y: &mut [f32], x: &[f32]) {
    // SAFETY: generic kernel over valid slices.
    unsafe { super::add_assign_generic::<Scalar>(y, x) }
}
pub(crate) unsafe fn scale(x: &mut [f32], s: f32) {
    // SAFETY: generic kernel over a valid slice.
    unsafe { super::scale_generic::<Scalar>(x, s) }
}

/// 4x4 register tile of scalars.
#[allow(non_snake_case, clippy::too_many_arguments)]
pub(crate) unsafe fn sgemm_4x4__scalar(
    kc: usize, a: *const f32, b: *const f32, c: *mut f32, ldc: usize, rows: usize, cols: usize, add: bool,
) {
    // SAFETY: forwarded from the packed-sgemm driver's contract.
    unsafe { super::sgemm_micro_generic::<Scalar, 4, 4>(kc, a, b, c, ldc, rows, cols, add) }
}

pub(crate) unsafe fn max(x: &[f32]) -> f32 {
    // SAFETY: generic kernel, no CPU feature needed; slice valid.
    unsafe { super::max_generic::<Scalar>(x) }
}
pub(crate) unsafe fn sum(x: &[f32]) -> f32 {
    // SAFETY: as above.
    unsafe { super::sum_generic::<Scalar>(x) }
}
pub(crate) unsafe fn exp_shift(x: &mut [f32], shift: f32) -> f32 {
    // SAFETY: as above.
    unsafe { super::exp_shift_generic::<Scalar>(x, shift) }
}
pub(crate) unsafe fn norm_affine(out: &mut [f32], x: &[f32], w: &[f32], b: &[f32], mean: f32, rstd: f32) {
    // SAFETY: as above.
    unsafe { super::norm_affine_generic::<Scalar>(out, x, w, b, mean, rstd) }
}
pub(crate) unsafe fn dev_sums(x: &[f32], c: f32) -> (f32, f32) {
    // SAFETY: as above.
    unsafe { super::dev_sums_generic::<Scalar>(x, c) }
}
