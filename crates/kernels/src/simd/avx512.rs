//! x86_64 AVX-512F: 16 floats per __m512.
use super::VecOps;
use std::arch::x86_64::*;

pub struct Avx512;

impl VecOps for Avx512 {
    const LANES: usize = 16;
    type V = __m512;
    #[inline(always)]
    unsafe fn zero() -> __m512 {
        // SAFETY: AVX-512F is available (callers run only after detection).
        unsafe { _mm512_setzero_ps() }
    }
    #[inline(always)]
    unsafe fn splat(x: f32) -> __m512 {
        // SAFETY: as above.
        unsafe { _mm512_set1_ps(x) }
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> __m512 {
        // SAFETY: p is valid for 16 floats (caller); unaligned load.
        unsafe { _mm512_loadu_ps(p) }
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: __m512) {
        // SAFETY: p is valid for 16 floats (caller); unaligned store.
        unsafe { _mm512_storeu_ps(p, v) }
    }
    #[inline(always)]
    unsafe fn add(a: __m512, b: __m512) -> __m512 {
        // SAFETY: AVX-512F detected.
        unsafe { _mm512_add_ps(a, b) }
    }
    #[inline(always)]
    unsafe fn mul(a: __m512, b: __m512) -> __m512 {
        // SAFETY: AVX-512F detected.
        unsafe { _mm512_mul_ps(a, b) }
    }
    #[inline(always)]
    unsafe fn fma(a: __m512, b: __m512, c: __m512) -> __m512 {
        // SAFETY: AVX-512F detected.
        unsafe { _mm512_fmadd_ps(a, b, c) }
    }
    #[inline(always)]
    unsafe fn max(a: __m512, b: __m512) -> __m512 {
        // SAFETY: AVX-512F detected.
        unsafe { _mm512_max_ps(a, b) }
    }
    #[inline(always)]
    unsafe fn reduce_sum(v: __m512) -> f32 {
        // SAFETY: AVX-512F detected.
        unsafe { _mm512_reduce_add_ps(v) }
    }
    #[inline(always)]
    unsafe fn reduce_max(v: __m512) -> f32 {
        // SAFETY: AVX-512F detected.
        unsafe { _mm512_reduce_max_ps(v) }
    }
}

/// 8 rows x 48 columns: 24 zmm accumulators + 3 B vectors + 1 broadcast of 32 registers.
/// Against 12x32 (same accumulators) a k step loads 8 + 3 values instead of 12 + 2 for its
/// 24 FMAs, which measured ~1.06x over the W1 / W4 / W6 shapes here (bench/notes.md). A tile
/// whose columns end inside the sliver (n = 128's last 32, n = 65's last 17) runs the 8x16 or
/// 8x32 body, so no FMAs go to the zero padding past 16-column steps.
#[target_feature(enable = "avx512f")]
#[allow(non_snake_case, clippy::too_many_arguments)]
pub(crate) unsafe fn sgemm_8x48__avx512(
    kc: usize, a: *const f32, b: *const f32, c: *mut f32, ldc: usize, rows: usize, cols: usize, add: bool,
) {
    use super::avx2::sgemm_micro_x86;
    // SAFETY: AVX-512F enabled; pointers per the packed-sgemm driver's contract.
    unsafe {
        match cols.div_ceil(16) {
            1 => sgemm_micro_x86::<Avx512, 8, 1, 48>(kc, a, b, c, ldc, rows, cols, add),
            2 => sgemm_micro_x86::<Avx512, 8, 2, 48>(kc, a, b, c, ldc, rows, cols, add),
            _ => sgemm_micro_x86::<Avx512, 8, 3, 48>(kc, a, b, c, ldc, rows, cols, add),
        }
    }
}
