//! Cache-blocked, packed sgemm with SIMD micro-kernels (see `crate::simd`).
//!
//! GotoBLAS / BLIS loop nest, per task (a batch entry and a range of output rows):
//! ```text
//! for jc in 0..n step NC            // B panel columns
//!   for pc in 0..k step KC          // k block: pack B[pc.., jc..] as KC x NC (NR-wide slivers)
//!     for ic in rows step MC        // pack A[ic.., pc..] as MC x KC (MR-tall slivers)
//!       for jr in 0..nc step NR     // one B sliver (KC x NR) stays in L1
//!         for ir in 0..mc step MR   // micro-kernel: MR x NR register tile over kc
//! ```
//! Packing absorbs the transposes, so all four (trans_a, trans_b) combinations share the
//! micro-kernels. Pack buffers are fixed-size stack arrays (no heap): (MC*KC + KC*NC) floats.
//!
//! Determinism: an output element is the k-blocks summed in pc order, each block reduced
//! p = 0..kc by the micro-kernel from zero; neither depends on the row split or on which
//! tile holds the element, so results are bit-identical for any thread count.
use std::mem::MaybeUninit;

use crate::parallel::{self, SendPtr};
use crate::simd::{self, Isa};
use crate::Parallel;

// Block sizes (floats). Pack buffers take (MC*KC + KC*NC) * 4 bytes of stack: 507 KiB on
// x86 (rayon's workers have 2 MiB, Node's threads more), 248 KiB on wasm (1 MiB stacks).
/// k block: depth of the packed slivers. x86: a 32-wide B sliver (32 KiB) plus a 12-row A
/// sliver (12 KiB) fit the 48 KiB L1, and each micro-kernel call runs 256 k steps per load
/// and store of its C tile (the measurements are in bench/notes.md). wasm keeps 128, the size
/// its 4x8 kernel was tuned at.
#[cfg(not(target_arch = "wasm32"))]
const KC: usize = 256;
#[cfg(target_arch = "wasm32")]
const KC: usize = 128;
/// Rows of A packed per block; a multiple of every micro-kernel's MR (12, 6, 4).
const MC: usize = 48;
/// Columns of B packed per panel; a multiple of every micro-kernel's NR (32, 16, 8, 4).
/// Large because A is repacked once per panel (cost ~ m*k*n / NC), while each B panel is
/// packed once per task.
const NC: usize = 448;

/// Micro-kernel contract: see `simd::sgemm_micro_generic`.
type MicroKernel = unsafe fn(usize, *const f32, *const f32, *mut f32, usize, usize, usize, bool);

struct Blocking {
    mr: usize,
    nr: usize,
    kernel: MicroKernel,
}

fn blocking(isa: Isa) -> Blocking {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => Blocking { mr: 12, nr: 32, kernel: simd::avx512::sgemm_12x32__avx512 },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => Blocking { mr: 6, nr: 16, kernel: simd::avx2::sgemm_6x16__avx2 },
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        Isa::Wasm128 => Blocking { mr: 4, nr: 8, kernel: simd::wasm128::sgemm_4x8__wasm128 },
        _ => Blocking { mr: 4, nr: 4, kernel: simd::scalar::sgemm_4x4__scalar },
    }
}

/// A strided view of a logical [rows, cols] operand: element (r, c) is at r*rs + c*cs;
/// one of the strides is 1 (row-major or transposed storage).
#[derive(Clone, Copy)]
struct View<'a> {
    data: &'a [f32],
    rs: usize,
    cs: usize,
}

impl View<'_> {
    /// Asserts the block [r0, r0+rows) x [c0, c0+cols) lies inside `data`, so the packers
    /// can copy with raw pointers (one check per block instead of one per element).
    #[inline]
    fn check_block(&self, r0: usize, rows: usize, c0: usize, cols: usize) {
        if rows > 0 && cols > 0 {
            assert!((r0 + rows - 1) * self.rs + (c0 + cols - 1) * self.cs < self.data.len());
        }
    }
}

/// Packs A[i0..i0+mc, p0..p0+kc] into `dst` as ceil(mc/mr) slivers of [kc, mr], zero-padded
/// past mc.
///
/// # Safety
/// `dst` must be valid for ceil(mc/mr) * mr * kc writes.
#[allow(clippy::too_many_arguments)]
unsafe fn pack_a(dst: *mut f32, a: View, i0: usize, mc: usize, p0: usize, kc: usize, mr: usize) {
    a.check_block(i0, mc, p0, kc);
    let src = a.data.as_ptr();
    for s in 0..mc.div_ceil(mr) {
        let rows = mr.min(mc - s * mr);
        let row0 = i0 + s * mr;
        // SAFETY: sliver s occupies [s*kc*mr, (s+1)*kc*mr) of dst (caller's bound); every
        // source index is inside the block checked above.
        unsafe {
            let base = dst.add(s * kc * mr);
            if a.cs == 1 {
                // Rows contiguous: stream each row of the sliver into its column.
                for r in 0..rows {
                    let row = src.add((row0 + r) * a.rs + p0);
                    for p in 0..kc {
                        *base.add(p * mr + r) = *row.add(p);
                    }
                }
            } else {
                // Transposed storage: the mr values of one k step are neighbours.
                for p in 0..kc {
                    let col = src.add((p0 + p) * a.cs + row0);
                    std::ptr::copy_nonoverlapping(col, base.add(p * mr), rows);
                }
            }
            if rows < mr {
                for p in 0..kc {
                    for r in rows..mr {
                        *base.add(p * mr + r) = 0.0;
                    }
                }
            }
        }
    }
}

/// Packs B[p0..p0+kc, j0..j0+nc] into `dst` as ceil(nc/nr) slivers of [kc, nr], zero-padded
/// past nc.
///
/// # Safety
/// `dst` must be valid for ceil(nc/nr) * nr * kc writes.
#[allow(clippy::too_many_arguments)]
unsafe fn pack_b(dst: *mut f32, b: View, p0: usize, kc: usize, j0: usize, nc: usize, nr: usize) {
    b.check_block(p0, kc, j0, nc);
    let src = b.data.as_ptr();
    for s in 0..nc.div_ceil(nr) {
        let cols = nr.min(nc - s * nr);
        let col0 = j0 + s * nr;
        // SAFETY: sliver s occupies [s*kc*nr, (s+1)*kc*nr) of dst (caller's bound); every
        // source index is inside the block checked above.
        unsafe {
            let base = dst.add(s * kc * nr);
            if b.cs == 1 {
                // Row-major B: each k step is a contiguous run of cols floats.
                for p in 0..kc {
                    std::ptr::copy_nonoverlapping(src.add((p0 + p) * b.rs + col0), base.add(p * nr), cols);
                }
            } else {
                // Transposed storage: each column is contiguous in k.
                for c in 0..cols {
                    let col = src.add((col0 + c) * b.cs + p0);
                    for p in 0..kc {
                        *base.add(p * nr + c) = *col.add(p);
                    }
                }
            }
            if cols < nr {
                for p in 0..kc {
                    for c in cols..nr {
                        *base.add(p * nr + c) = 0.0;
                    }
                }
            }
        }
    }
}

/// out rows [r0, r1) of one batch entry: row r - r0 of out_rows starts at (r - r0) * ldc.
#[allow(clippy::too_many_arguments)]
fn sgemm_rows(
    out_rows: &mut [f32], ldc: usize, a: View, b: View, r0: usize, r1: usize, k: usize, n: usize,
    accumulate: bool, blk: &Blocking,
) {
    let (mr, nr) = (blk.mr, blk.nr);
    // Uninitialised on purpose: packing writes every float the micro-kernels read, and
    // zeroing 248 KiB per call would cost more than small matmuls themselves.
    let mut a_pack = MaybeUninit::<[f32; MC * KC]>::uninit();
    let mut b_pack = MaybeUninit::<[f32; KC * NC]>::uninit();
    let (a_pack, b_pack) = (a_pack.as_mut_ptr() as *mut f32, b_pack.as_mut_ptr() as *mut f32);
    let c = out_rows.as_mut_ptr();
    assert!(ldc >= n && (r1 == r0 || out_rows.len() >= (r1 - r0 - 1) * ldc + n));
    for jc in (0..n).step_by(NC) {
        let nc = NC.min(n - jc);
        for pc in (0..k).step_by(KC) {
            let kc = KC.min(k - pc);
            let add = accumulate || pc > 0;
            // SAFETY: ceil(nc/nr)*nr <= NC (NC is a multiple of nr) and kc <= KC.
            unsafe { pack_b(b_pack, b, pc, kc, jc, nc, nr) };
            for ic in (r0..r1).step_by(MC) {
                let mc = MC.min(r1 - ic);
                // SAFETY: ceil(mc/mr)*mr <= MC (MC is a multiple of mr) and kc <= KC.
                unsafe { pack_a(a_pack, a, ic, mc, pc, kc, mr) };
                for jr in (0..nc).step_by(nr) {
                    let cols = nr.min(nc - jr);
                    for ir in (0..mc).step_by(mr) {
                        let rows = mr.min(mc - ir);
                        // SAFETY: the slivers were packed above (kc*mr and kc*nr floats);
                        // the C tile (rows x cols at stride n) lies inside out_rows
                        // (row ic+ir-r0+rows <= r1-r0, column jc+jr+cols <= n); the
                        // kernel's ISA was checked available by matmul_forward_with.
                        unsafe {
                            (blk.kernel)(
                                kc,
                                a_pack.add((ir / mr) * kc * mr),
                                b_pack.add((jr / nr) * kc * nr),
                                c.add((ic + ir - r0) * ldc + jc + jr),
                                ldc,
                                rows,
                                cols,
                                add,
                            )
                        };
                    }
                }
            }
        }
    }
}

/// One-thread C (=|+=) A·B on sub-blocks, for kernels that tile their own work (attention):
/// C is [m, n] at row stride `ldc`; A is [m, k] with element (i, p) at `a[i*a_rs + p*a_cs]`,
/// B is [k, n] with (p, j) at `b[p*b_rs + j*b_cs]` (one stride of each is 1). Best ISA.
#[allow(clippy::too_many_arguments)]
pub(crate) fn sgemm_block(
    c: &mut [f32], ldc: usize, a: &[f32], a_rs: usize, a_cs: usize, b: &[f32], b_rs: usize, b_cs: usize,
    m: usize, k: usize, n: usize, accumulate: bool,
) {
    assert!((a_rs == 1 || a_cs == 1) && (b_rs == 1 || b_cs == 1));
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for r in 0..m {
                c[r * ldc..r * ldc + n].fill(0.0);
            }
        }
        return;
    }
    let blk = blocking(Isa::detect());
    let a_view = View { data: a, rs: a_rs, cs: a_cs };
    let b_view = View { data: b, rs: b_rs, cs: b_cs };
    sgemm_rows(c, ldc, a_view, b_view, 0, m, k, n, accumulate, &blk);
}

/// out[b] (=|+=) op(a[b]) · op(b[b]) for b in 0..batch.
/// op(a) is [m, k]: a is stored [batch, m, k], or [batch, k, m] when `trans_a`.
/// op(b) is [k, n]: b is stored [batch, k, n], or [batch, n, k] when `trans_b`.
/// out is [batch, m, n]; `accumulate` adds into it instead of overwriting.
#[allow(clippy::too_many_arguments)]
pub fn matmul_forward(
    out: &mut [f32], a: &[f32], b: &[f32],
    batch: usize, m: usize, k: usize, n: usize,
    trans_a: bool, trans_b: bool, accumulate: bool, par: &dyn Parallel,
) {
    matmul_forward_with(Isa::detect(), out, a, b, batch, m, k, n, trans_a, trans_b, accumulate, par)
}

/// [`matmul_forward`] with an explicit micro-kernel instruction set (tests, benchmarks).
/// Panics if `isa` is not available on this machine.
#[allow(clippy::too_many_arguments)]
pub fn matmul_forward_with(
    isa: Isa, out: &mut [f32], a: &[f32], b: &[f32],
    batch: usize, m: usize, k: usize, n: usize,
    trans_a: bool, trans_b: bool, accumulate: bool, par: &dyn Parallel,
) {
    assert!(isa.is_available(), "matmul: {isa:?} is not available on this machine");
    assert!(out.len() == batch * m * n && a.len() == batch * m * k && b.len() == batch * k * n);
    if batch == 0 || m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            out.fill(0.0);
        }
        return;
    }
    let blk = blocking(isa);
    let par = parallel::for_work(par, 2 * batch as u64 * m as u64 * k as u64 * n as u64);
    // Enough row chunks that every thread has work; chunks are MR multiples so micro-tiles
    // are full where the matrix allows.
    let threads = par.threads().max(1);
    let chunks_per_batch = if batch >= threads { 1 } else { threads.div_ceil(batch) };
    let rows_per_task = m.div_ceil(chunks_per_batch).div_ceil(blk.mr) * blk.mr;
    let tasks_per_batch = m.div_ceil(rows_per_task);
    let out_ptr = SendPtr(out.as_mut_ptr());
    par.for_each(batch * tasks_per_batch, &|task| {
        let bi = task / tasks_per_batch;
        let r0 = (task % tasks_per_batch) * rows_per_task;
        let r1 = (r0 + rows_per_task).min(m);
        let a_b = &a[bi * m * k..(bi + 1) * m * k];
        let b_b = &b[bi * k * n..(bi + 1) * k * n];
        let a_view = if trans_a { View { data: a_b, rs: 1, cs: m } } else { View { data: a_b, rs: k, cs: 1 } };
        let b_view = if trans_b { View { data: b_b, rs: 1, cs: k } } else { View { data: b_b, rs: n, cs: 1 } };
        // SAFETY: task (bi, chunk) owns out rows [r0, r1) of batch bi, disjoint from every
        // other task's rows and inside out (length batch*m*n asserted above).
        let out_rows = unsafe { out_ptr.slice_mut(bi * m * n + r0 * n, (r1 - r0) * n) };
        sgemm_rows(out_rows, n, a_view, b_view, r0, r1, k, n, accumulate, &blk);
    });
}

/// Accumulates: da += dout · op(b)^T (in a's storage layout), db += op(a)^T · dout (in b's
/// storage layout). Either gradient may be skipped with `None`. Dimensions as in forward.
///
/// Both are forward matmuls with `accumulate`, the transposes chosen so each writes its
/// gradient in the operand's own storage layout:
/// - da, a stored [m, k]: dout [m, n] · op(b)^T [n, k]; a stored [k, m]: op(b) [k, n] · dout^T.
/// - db, b stored [k, n]: op(a)^T [k, m] · dout [m, n]; b stored [n, k]: dout^T · op(a) [m, k].
#[allow(clippy::too_many_arguments)]
pub fn matmul_backward(
    da: Option<&mut [f32]>, db: Option<&mut [f32]>, dout: &[f32], a: &[f32], b: &[f32],
    batch: usize, m: usize, k: usize, n: usize,
    trans_a: bool, trans_b: bool, par: &dyn Parallel,
) {
    matmul_backward_with(Isa::detect(), da, db, dout, a, b, batch, m, k, n, trans_a, trans_b, par)
}

/// [`matmul_backward`] with an explicit instruction set (tests).
#[allow(clippy::too_many_arguments)]
pub fn matmul_backward_with(
    isa: Isa, da: Option<&mut [f32]>, db: Option<&mut [f32]>, dout: &[f32], a: &[f32], b: &[f32],
    batch: usize, m: usize, k: usize, n: usize,
    trans_a: bool, trans_b: bool, par: &dyn Parallel,
) {
    if let Some(da) = da {
        if !trans_a {
            matmul_forward_with(isa, da, dout, b, batch, m, n, k, false, !trans_b, true, par);
        } else {
            matmul_forward_with(isa, da, b, dout, batch, k, n, m, trans_b, true, true, par);
        }
    }
    if let Some(db) = db {
        if !trans_b {
            matmul_forward_with(isa, db, a, dout, batch, k, m, n, !trans_a, false, true, par);
        } else {
            matmul_forward_with(isa, db, dout, a, batch, n, m, k, true, trans_a, true, par);
        }
    }
}
