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
    unsafe { sgemm_x8::<4>(kc, a, b, c, ldc, rows, cols, add) }
}

/// `super::sgemm_micro_generic`'s contract and sums (p = 0..kc in order from zero, so the
/// same bits), for MR x 8 tiles, with one k step per loop iteration. Not the generic body:
/// that one unrolls k by four for x86, and in wasm LLVM then hoists the loads of all four
/// steps above their FMAs and chains each accumulator through four dependent FMAs; V8, which
/// allocates the 16 v128 registers of x64 per function, spills a third of them inside the
/// loop (relaxed SIMD: 0.6-0.7x the GFLOP/s of this loop at the W5 products).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn sgemm_x8<const MR: usize>(
    kc: usize, a: *const f32, b: *const f32, c: *mut f32, ldc: usize, rows: usize, cols: usize, add: bool,
) {
    // SAFETY (whole body): the packed slivers hold kc * MR and kc * 8 floats; C holds
    // rows x cols at stride ldc (the caller guarantees rows <= MR, cols <= 8).
    unsafe {
        let mut acc = [[Wasm128::zero(); 2]; MR];
        let (mut pa, mut pb) = (a, b);
        for _ in 0..kc {
            let (b0, b1) = (Wasm128::load(pb), Wasm128::load(pb.add(4)));
            for (r, acc_row) in acc.iter_mut().enumerate() {
                let av = v128_load32_splat(pa.add(r) as *const u32);
                acc_row[0] = Wasm128::fma(av, b0, acc_row[0]);
                acc_row[1] = Wasm128::fma(av, b1, acc_row[1]);
            }
            pa = pa.add(MR);
            pb = pb.add(8);
        }
        if rows == MR && cols == 8 {
            for (r, acc_row) in acc.iter().enumerate() {
                for (v, &sum) in acc_row.iter().enumerate() {
                    let cp = c.add(r * ldc + 4 * v);
                    Wasm128::store(cp, if add { Wasm128::add(Wasm128::load(cp), sum) } else { sum });
                }
            }
            return;
        }
        // Edge tile: spill to a stack tile, copy the valid part.
        let mut tile = [[0.0f32; 8]; MR];
        for (r, acc_row) in acc.iter().enumerate() {
            Wasm128::store(tile[r].as_mut_ptr(), acc_row[0]);
            Wasm128::store(tile[r].as_mut_ptr().add(4), acc_row[1]);
        }
        for (r, tile_row) in tile.iter().enumerate().take(rows) {
            let c_row = std::slice::from_raw_parts_mut(c.add(r * ldc), cols);
            for (cv, &t) in c_row.iter_mut().zip(tile_row) {
                *cv = if add { *cv + t } else { t };
            }
        }
    }
}
