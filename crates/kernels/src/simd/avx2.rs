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
/// A tile of at most 8 columns (n = 65's last sliver) runs the 6x8 body instead.
#[target_feature(enable = "avx2,fma")]
#[allow(non_snake_case, clippy::too_many_arguments)]
pub(crate) unsafe fn sgemm_6x16__avx2(
    kc: usize, a: *const f32, b: *const f32, c: *mut f32, ldc: usize, rows: usize, cols: usize, add: bool,
) {
    // SAFETY: AVX2 + FMA enabled; pointers per the packed-sgemm driver's contract.
    unsafe {
        if cols <= 8 {
            sgemm_micro_x86::<Avx2, 6, 1, 16>(kc, a, b, c, ldc, rows, cols, add)
        } else {
            sgemm_micro_x86::<Avx2, 6, 2, 16>(kc, a, b, c, ldc, rows, cols, add)
        }
    }
}

/// The x86 micro-kernels' body (AVX2 and AVX-512): `super::sgemm_micro_generic`'s contract
/// and sums, except that the packed B sliver is `LDB` floats wide while the tile computes only
/// its first NV vectors. A tile whose columns end inside a sliver (the last sliver of an n
/// that is not a multiple of the sliver width) calls the narrowest NV that covers them, so
/// n = 65 does 80 columns of work on AVX-512's 64-wide slivers instead of 128. Which NV a
/// tile runs does not change its sums (each column is its own chain of FMAs).
///
/// # Safety
/// As `super::sgemm_micro_generic`, with `b` packed [kc, LDB], cols <= NV * LANES <= LDB;
/// the ISA of `S` available.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn sgemm_micro_x86<S: VecOps, const MR: usize, const NV: usize, const LDB: usize>(
    kc: usize, a: *const f32, b: *const f32, c: *mut f32, ldc: usize, rows: usize, cols: usize, add: bool,
) {
    let l = S::LANES;
    // SAFETY (whole body): the packed slivers hold kc * MR and kc * LDB floats; C holds
    // rows x cols at stride ldc (rows <= MR, cols <= NV * LANES).
    unsafe {
        // The C tile is read (add) or written only after the k loop; fetching its lines now
        // overlaps the cache misses of a C larger than L2 with the loop (bench/notes.md).
        for r in 0..rows {
            let row = c.add(r * ldc) as *const i8;
            let mut byte = 0;
            while byte < cols * 4 {
                _mm_prefetch::<_MM_HINT_T0>(row.add(byte));
                byte += 64;
            }
            _mm_prefetch::<_MM_HINT_T0>(row.add(cols * 4 - 4));
        }
        let mut acc = [[S::zero(); NV]; MR];
        let (mut pa, mut pb) = (a, b);
        // Four steps per iteration: the loop's own instructions (pointer bumps, count, branch)
        // compete with the FMAs for issue slots otherwise.
        for _ in 0..kc / 4 {
            for u in 0..4 {
                super::sgemm_step::<S, MR, NV>(&mut acc, pa.add(u * MR), pb.add(u * LDB));
            }
            pa = pa.add(4 * MR);
            pb = pb.add(4 * LDB);
        }
        for _ in 0..kc % 4 {
            super::sgemm_step::<S, MR, NV>(&mut acc, pa, pb);
            pa = pa.add(MR);
            pb = pb.add(LDB);
        }
        if rows == MR && cols == NV * l {
            for (r, acc_row) in acc.iter().enumerate() {
                for (v, &x) in acc_row.iter().enumerate() {
                    let cp = c.add(r * ldc + v * l);
                    S::store(cp, if add { S::add(S::load(cp), x) } else { x });
                }
            }
        } else {
            // Edge tile: spill to a stack tile, copy the valid part.
            let mut tile = [[0.0f32; 64]; MR];
            for (tile_row, acc_row) in tile.iter_mut().zip(&acc) {
                for (v, &x) in acc_row.iter().enumerate() {
                    S::store(tile_row.as_mut_ptr().add(v * l), x);
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
