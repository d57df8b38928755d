//! x86_64 AVX2 + FMA: 8 floats per __m256.
use super::VecOps;
use std::arch::x86_64::*;

pub struct Avx2;

impl VecOps for Avx2 {
    const LANES: usize = 8;
    type V = __m256;
    #[inline(always)]
    unsafe fn zero() -> __m256 {
        // SAFETY: AVX is available (callers run only after detection).
        unsafe { _mm256_setzero_ps() }
    }
    #[inline(always)]
    unsafe fn splat(x: f32) -> __m256 {
        // SAFETY: as above.
        unsafe { _mm256_set1_ps(x) }
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> __m256 {
        // SAFETY: p is valid for 8 floats (caller); unaligned load.
        unsafe { _mm256_loadu_ps(p) }
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: __m256) {
        // SAFETY: p is valid for 8 floats (caller); unaligned store.
        unsafe { _mm256_storeu_ps(p, v) }
    }
    #[inline(always)]
    unsafe fn add(a: __m256, b: __m256) -> __m256 {
        // SAFETY: AVX detected.
        unsafe { _mm256_add_ps(a, b) }
    }
    #[inline(always)]
    unsafe fn mul(a: __m256, b: __m256) -> __m256 {
        // SAFETY: AVX detected.
        unsafe { _mm256_mul_ps(a, b) }
    }
    #[inline(always)]
    unsafe fn fma(a: __m256, b: __m256, c: __m256) -> __m256 {
        // SAFETY: FMA detected.
        unsafe { _mm256_fmadd_ps(a, b, c) }
    }
    #[inline(always)]
    unsafe fn max(a: __m256, b: __m256) -> __m256 {
        // SAFETY: AVX detected.
        unsafe { _mm256_max_ps(a, b) }
    }
    #[inline(always)]
    unsafe fn reduce_sum(v: __m256) -> f32 {
        // SAFETY: AVX detected.
        unsafe {
            let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
            let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
            let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
            _mm_cvtss_f32(s)
        }
    }
    #[inline(always)]
    unsafe fn reduce_max(v: __m256) -> f32 {
        // SAFETY: AVX detected.
        unsafe {
            let s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
            let s = _mm_max_ps(s, _mm_movehl_ps(s, s));
            let s = _mm_max_ss(s, _mm_shuffle_ps(s, s, 1));
            _mm_cvtss_f32(s)
        }
    }
}

/// 6 rows x 16 columns: 12 ymm accumulators + 2 B vectors + 1 broadcast of 16 registers.
#[target_feature(enable = "avx2,fma")]
#[allow(non_snake_case, clippy::too_many_arguments)]
pub(crate) unsafe fn sgemm_6x16__avx2(
    kc: usize, a: *const f32, b: *const f32, c: *mut f32, ldc: usize, rows: usize, cols: usize, add: bool,
) {
    // SAFETY: AVX2 + FMA enabled; pointers per the packed-sgemm driver's contract.
    unsafe { super::sgemm_micro_generic::<Avx2, 6, 2>(kc, a, b, c, ldc, rows, cols, add) }
}

