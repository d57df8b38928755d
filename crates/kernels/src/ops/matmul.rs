//! Cache-blocked, packed sgemm with SIMD micro-kernels (see `crate::simd`).
//!
//! GotoBLAS / BLIS loop nest, per task (a batch entry and a block of output rows or columns:
//! threads split the longer of m and n, see `matmul_forward_with`):
//! ```text
//! for jc in cols step <= NC         // B panel columns (balanced panels)
//!   for pc in 0..k step KC          // k block: pack B[pc.., jc..] as KC x NC (NR-wide slivers)
//!     for ic in rows step MC        // pack A[ic.., pc..] as MC x KC (MR-tall slivers)
//!       for jr in 0..nc step NR     // one B sliver (KC x NR), reused by MC / MR A slivers
//!         for ir in 0..mc step MR   // micro-kernel: MR x NR register tile over kc
//! ```
//! Packing absorbs the transposes, so all four (trans_a, trans_b) combinations share the
//! micro-kernels. The block sizes are per instruction set ([`Blocking`]); the pack buffers
//! share one fixed-size stack array (no heap).
//!
//! Determinism: an output element is the k-blocks summed in pc order, each block reduced
//! p = 0..kc by the micro-kernel from zero; neither depends on the row / column split or on
//! which tile holds the element, so results are bit-identical for any thread count.
use std::mem::MaybeUninit;

use crate::parallel::{self, SendPtr};
use crate::simd::{self, Isa};
use crate::Parallel;

/// Floats of the pack buffers (A block then B panel), a stack array per task so that no call
/// allocates: 576 KiB on x86 (the addon's workers have 4 MiB, Node's main thread more), 280 KiB
/// on wasm (1 MiB stacks). Every [`Blocking`] fits: mc * kc + kc * nc <= PACK_FLOATS.
#[cfg(not(target_arch = "wasm32"))]
const PACK_FLOATS: usize = 48 * 256 + 256 * 528;
#[cfg(target_arch = "wasm32")]
const PACK_FLOATS: usize = 48 * 128 + 128 * 512;

/// The pack buffers' storage, aligned to a cache line. The B panel starts mc * kc floats in
/// (a multiple of 16) and its slivers are kc * NR floats (NR 48 or 16 on x86), so every B
/// vector the micro-kernel loads lies within one line: unaligned, a 64-byte load straddles
/// two lines and costs two L1 accesses (AVX-512 1.11x, AVX2 ~1.02x: bench/notes.md).
#[repr(C, align(64))]
struct PackBuffer([f32; PACK_FLOATS]);

/// Micro-kernel contract: see `simd::sgemm_micro_generic`.
type MicroKernel = unsafe fn(usize, *const f32, *const f32, *mut f32, usize, usize, usize, bool);

/// The loop nest over one task's block, compiled for one instruction set (see `sgemm_task`).
type TaskFn = unsafe fn(*mut f32, usize, View, View, (usize, usize), (usize, usize), usize, bool, (usize, usize, usize), Option<Epilogue>);

/// Work on finished output, `f(row0, rows, col0, cols)` over C[row0 .. row0 + rows,
/// col0 .. col0 + cols] (indices of the whole [m, n] output): called once per element, after
/// its last k block, on a block that the task has just written (mc x nc floats, still in L2),
/// so a fused linear's bias and activation need no pass of their own over the output.
pub type Epilogue<'a> = &'a (dyn Fn(usize, usize, usize, usize) + Sync);

/// One instruction set's sgemm: the micro-kernel's tile (tasks split rows in multiples of mr,
/// columns in multiples of nr), its block sizes, and the loop nest compiled with that
/// instruction set enabled, so the packers and the micro-kernel inline into it.
/// - `kc`: depth of the packed slivers; each micro-kernel call runs kc steps per load and
///   store of its C tile. 256 on x86 (128 measured slower, 192 and 384 the same:
///   bench/notes.md); wasm keeps 128, the size its 4x8 kernel was tuned at.
/// - `mc`: rows of A packed per block, a multiple of mr (24-144 measured alike on the Xeon).
/// - `nc`: widest panel of B columns packed at once, a multiple of nr. Panels are balanced
///   (n = 600 at nc 528 is 336 + 264, not 528 + 72), because A is repacked once per panel
///   (cost ~ m*k*n / nc) while each B panel is packed once per task.
///
/// AVX2 takes BLIS's Zen blocking for its 6x16 kernel (mc 144, kc 256) with nc 384: the AVX2
/// machines we run on are AMD EPYCs with 512 KiB of L2, where nc 512 made the B panel alone
/// (kc x nc floats) fill L2, and each B sliver then came from L3 for its first of only
/// mc / mr = 8 uses. At 144 x 256 + 256 x 384 floats A block and B panel fit L2 together, and a
/// sliver serves 24 A slivers. On the Xeon (1.25 MiB L2) the two are alike (geomean 1.02x
/// over 22 products, within noise); the EPYC itself was not available to measure.
#[derive(Clone, Copy)]
struct Blocking {
    mr: usize,
    nr: usize,
    kc: usize,
    mc: usize,
    nc: usize,
    task: TaskFn,
}

fn blocking(isa: Isa) -> Blocking {
    let blk = match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => Blocking { mr: 8, nr: 48, kc: 256, mc: 48, nc: 528, task: sgemm_task_avx512 },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => Blocking { mr: 6, nr: 16, kc: 256, mc: 144, nc: 384, task: sgemm_task_avx2 },
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        Isa::Wasm128 => Blocking { mr: 4, nr: 8, kc: 128, mc: 48, nc: 512, task: sgemm_task_wasm128 },
        _ => Blocking { mr: 4, nr: 4, kc: 128, mc: 48, nc: 512, task: sgemm_task_scalar },
    };
    assert!(blk.mc % blk.mr == 0 && blk.nc % blk.nr == 0 && blk.mc * blk.kc + blk.kc * blk.nc <= PACK_FLOATS);
    blk
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

/// Packs one sliver: `lines` (<= W) source lines of `kc` steps into `dst` as [kc, W], line l
/// of step p at `dst[p * W + l]`, zero past `lines`. Source element (l, p) is at
/// `src[l * ls + p * ps]`, one of the strides being 1: an A sliver has lines = rows and steps =
/// k, a B sliver lines = columns. With `ls == 1` each step's lines are neighbours (a copy per
/// step); with `ps == 1` each line is contiguous in k and the sliver is a transpose, done in
/// 4x4 blocks of SSE registers on x86_64 (a float at a time, packing A would cost a large
/// share of a big product: bench/notes.md).
///
/// # Safety
/// `dst` valid for kc * W writes; every (l < lines, p < kc) source index inside `src`.
#[inline(always)]
unsafe fn pack_sliver<const W: usize>(dst: *mut f32, src: *const f32, ls: usize, ps: usize, lines: usize, kc: usize) {
    // SAFETY (whole body): per the contract above.
    unsafe {
        if ls == 1 {
            if lines == W {
                for p in 0..kc {
                    std::ptr::copy_nonoverlapping(src.add(p * ps), dst.add(p * W), W);
                }
            } else {
                for p in 0..kc {
                    let (s, d) = (src.add(p * ps), dst.add(p * W));
                    for l in 0..W {
                        *d.add(l) = if l < lines { *s.add(l) } else { 0.0 };
                    }
                }
            }
            return;
        }
        // Whole groups of four lines by SSE transposes, the rest one line at a time.
        let l0 = simd::transpose_fours::<false>(dst, W, src, ls, lines, kc, 1.0);
        for l in l0..W {
            let d = dst.add(l);
            if l < lines {
                let s = src.add(l * ls);
                for p in 0..kc {
                    *d.add(p * W) = *s.add(p);
                }
            } else {
                for p in 0..kc {
                    *d.add(p * W) = 0.0;
                }
            }
        }
    }
}

/// Packs `lines` source lines (see [`pack_sliver`]) as ceil(lines/W) slivers of [kc, W].
///
/// # Safety
/// `dst` valid for ceil(lines/W) * W * kc writes; every (l < lines, p < kc) source index,
/// `l * ls + p * ps`, inside `src`.
#[inline(always)]
unsafe fn pack_slivers<const W: usize>(dst: *mut f32, src: *const f32, ls: usize, ps: usize, lines: usize, kc: usize) {
    for s in 0..lines.div_ceil(W) {
        // SAFETY: sliver s occupies [s*kc*W, (s+1)*kc*W) of dst; its lines are source lines
        // s*W.. (caller's bounds).
        unsafe { pack_sliver::<W>(dst.add(s * kc * W), src.add(s * W * ls), ls, ps, W.min(lines - s * W), kc) };
    }
}

/// Packs A[i0..i0+mc, p0..p0+kc] into `dst` as ceil(mc/MR) slivers of [kc, MR] (lines = rows).
///
/// # Safety
/// `dst` must be valid for ceil(mc/MR) * MR * kc writes.
#[inline(always)]
unsafe fn pack_a<const MR: usize>(dst: *mut f32, a: View, i0: usize, mc: usize, p0: usize, kc: usize) {
    a.check_block(i0, mc, p0, kc);
    // SAFETY: the block is inside a.data (checked above); dst per the caller.
    unsafe { pack_slivers::<MR>(dst, a.data.as_ptr().add(i0 * a.rs + p0 * a.cs), a.rs, a.cs, mc, kc) };
}

/// Packs B[p0..p0+kc, j0..j0+nc] into `dst` as ceil(nc/NR) slivers of [kc, NR] (lines =
/// columns).
///
/// # Safety
/// `dst` must be valid for ceil(nc/NR) * NR * kc writes.
#[inline(always)]
unsafe fn pack_b<const NR: usize>(dst: *mut f32, b: View, p0: usize, kc: usize, j0: usize, nc: usize) {
    b.check_block(p0, kc, j0, nc);
    // SAFETY: the block is inside b.data (checked above); dst per the caller.
    unsafe { pack_slivers::<NR>(dst, b.data.as_ptr().add(p0 * b.rs + j0 * b.cs), b.cs, b.rs, nc, kc) };
}

/// The source of an A block, requested into L2 a few runs per micro-kernel call while the
/// block before it computes (x86; elsewhere nothing). In a training step A is an activation or
/// a gradient that comes from L3 or memory, and packing reads it as many short runs (a row's
/// kc floats, or a k step's mc floats), too short for the hardware prefetchers to ramp up on:
/// without this, packing waits on each run in turn.
struct BlockPrefetch {
    base: *const f32,
    runs: usize,
    run_stride: usize,
    run_floats: usize,
    next: usize,
    per_step: usize,
}

impl BlockPrefetch {
    /// A[i0..i0+mc, p0..p0+kc] over `steps` calls of [`step`](Self::step).
    fn new(a: View, (i0, mc): (usize, usize), (p0, kc): (usize, usize), steps: usize) -> Self {
        a.check_block(i0, mc, p0, kc);
        let base = a.data.as_ptr().wrapping_add(i0 * a.rs + p0 * a.cs);
        let (runs, run_stride, run_floats) = if a.cs == 1 { (mc, a.rs, kc) } else { (kc, a.cs, mc) };
        BlockPrefetch { base, runs, run_stride, run_floats, next: 0, per_step: runs.div_ceil(steps.max(1)) }
    }

    /// Requests the next share of the runs.
    #[inline(always)]
    fn step(&mut self) {
        let end = (self.next + self.per_step).min(self.runs);
        #[cfg(target_arch = "x86_64")]
        for run in self.next..end {
            let start = self.base.wrapping_add(run * self.run_stride) as *const i8;
            let bytes = self.run_floats * 4;
            let mut byte = 0;
            while byte < bytes {
                // SAFETY: a prefetch never faults; the run lies in A (checked in new).
                unsafe { std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T1 }>(start.wrapping_add(byte)) };
                byte += 64;
            }
            // SAFETY: as above (the run's last float, whose line the loop may have missed).
            unsafe { std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T1 }>(start.wrapping_add(bytes - 4)) };
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (self.base, self.run_stride, self.run_floats);
        self.next = end;
    }
}

/// One task's block of C: rows [r0, r1) x columns [c0, c1) of op(A)·op(B), written at `c`
/// (element (r0, c0)) with row stride `ldc`.
///
/// # Safety
/// `c` valid for r1 - r0 rows of c1 - c0 floats at stride `ldc`, touched by no one else
/// during the call; `kernel` an MR x NR micro-kernel whose instruction set is available.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn sgemm_task<const MR: usize, const NR: usize, const PREFETCH_A: bool>(
    c: *mut f32, ldc: usize, a: View, b: View, (r0, r1): (usize, usize), (c0, c1): (usize, usize), k: usize,
    accumulate: bool, (kc_max, mc_max, nc_max): (usize, usize, usize), epilogue: Option<Epilogue>, kernel: MicroKernel,
) {
    // Uninitialised on purpose: packing writes every float the micro-kernels read, and
    // zeroing them per call would cost more than small matmuls themselves.
    let mut pack = MaybeUninit::<PackBuffer>::uninit();
    let a_pack = pack.as_mut_ptr() as *mut f32;
    // SAFETY: mc_max * kc_max + kc_max * nc_max <= PACK_FLOATS (`blocking`).
    let b_pack = unsafe { a_pack.add(mc_max * kc_max) };
    let width = c1 - c0;
    // Balanced panels, NR multiples: nc_step <= nc_max because nc_max is a multiple of NR.
    let nc_step = width.div_ceil(width.div_ceil(nc_max)).div_ceil(NR) * NR;
    for jc in (0..width).step_by(nc_step) {
        let nc = nc_step.min(width - jc);
        for pc in (0..k).step_by(kc_max) {
            let kc = kc_max.min(k - pc);
            let add = accumulate || pc > 0;
            // SAFETY: ceil(nc/NR)*NR <= nc_max and kc <= kc_max.
            unsafe { pack_b::<NR>(b_pack, b, pc, kc, c0 + jc, nc) };
            for ic in (r0..r1).step_by(mc_max) {
                let mc = mc_max.min(r1 - ic);
                // SAFETY: ceil(mc/MR)*MR <= mc_max (a multiple of MR) and kc <= kc_max.
                unsafe { pack_a::<MR>(a_pack, a, ic, mc, pc, kc) };
                // The A block packed next: this k block's next rows, else the first rows of the
                // next k block, else of the next panel's first k block.
                let next_k = if pc + kc_max < k { Some(pc + kc_max) } else if jc + nc_step < width { Some(0) } else { None };
                let next = if ic + mc_max < r1 {
                    Some(((ic + mc_max, mc_max.min(r1 - ic - mc_max)), (pc, kc)))
                } else {
                    next_k.map(|p| ((r0, mc_max.min(r1 - r0)), (p, kc_max.min(k - p))))
                };
                let calls = nc.div_ceil(NR) * mc.div_ceil(MR);
                let mut ahead = if PREFETCH_A { next.map(|(rows, depth)| BlockPrefetch::new(a, rows, depth, calls)) } else { None };
                for jr in (0..nc).step_by(NR) {
                    let cols = NR.min(nc - jr);
                    for ir in (0..mc).step_by(MR) {
                        let rows = MR.min(mc - ir);
                        // A few runs per micro-kernel call: a burst would hold the fill buffers.
                        if let Some(f) = ahead.as_mut() {
                            f.step();
                        }
                        // SAFETY: the slivers were packed above (kc*MR and kc*NR floats);
                        // the C tile (rows x cols at stride ldc) lies inside the task's block
                        // (row ic+ir-r0+rows <= r1-r0, column jc+jr+cols <= width); the
                        // kernel's ISA is available (caller).
                        unsafe {
                            kernel(
                                kc,
                                a_pack.add((ir / MR) * kc * MR),
                                b_pack.add((jr / NR) * kc * NR),
                                c.add((ic + ir - r0) * ldc + jc + jr),
                                ldc,
                                rows,
                                cols,
                                add,
                            )
                        };
                    }
                }
                if let (Some(f), true) = (epilogue, pc + kc == k) {
                    f(ic, mc, c0 + jc, nc);
                }
            }
        }
    }
}

/// [`sgemm_task`] per instruction set, each compiled with its features enabled. AVX-512 fetches
/// the next A block ahead ([`BlockPrefetch`]: 1.0-1.16x on the W4 and W6 training products
/// with cold operands, bench/notes.md); AVX2 does not, because its blocking already fills the
/// 512 KiB L2 of the EPYCs it runs on with an A block and a B panel (see [`Blocking`]), and a
/// third block there would evict the panel (not measured: no such machine here).
macro_rules! sgemm_task_for {
    ($( $(#[$attr:meta])* $name:ident = $mr:literal x $nr:literal, prefetch_a $prefetch:literal, $kernel:path; )*) => {$(
        $(#[$attr])*
        #[allow(clippy::too_many_arguments)]
        unsafe fn $name(
            c: *mut f32, ldc: usize, a: View, b: View, rows: (usize, usize), cols: (usize, usize),
            k: usize, accumulate: bool, sizes: (usize, usize, usize), epilogue: Option<Epilogue>,
        ) {
            // SAFETY: the micro-kernel matches the tile; its ISA is enabled here and was
            // checked available by the caller; `c` and the block sizes per the caller.
            unsafe { sgemm_task::<$mr, $nr, $prefetch>(c, ldc, a, b, rows, cols, k, accumulate, sizes, epilogue, $kernel) }
        }
    )*};
}

sgemm_task_for! {
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    sgemm_task_avx512 = 8 x 48, prefetch_a true, simd::avx512::sgemm_8x48__avx512;
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    sgemm_task_avx2 = 6 x 16, prefetch_a false, simd::avx2::sgemm_6x16__avx2;
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    sgemm_task_wasm128 = 4 x 8, prefetch_a false, simd::wasm128::sgemm_4x8__wasm128;
    sgemm_task_scalar = 4 x 4, prefetch_a false, simd::scalar::sgemm_4x4__scalar;
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
    matmul_forward_epilogue_with(isa, out, a, b, batch, m, k, n, trans_a, trans_b, accumulate, None, 0, par)
}

/// [`matmul_forward`] (batch 1) with `epilogue` run over each block of the output as it is
/// finished (see [`Epilogue`]); every element passes through it exactly once, whatever the
/// blocking or the thread count. `epilogue_flops` (its estimated cost) joins the product's in
/// deciding whether the call is split over threads.
#[allow(clippy::too_many_arguments)]
pub fn matmul_forward_epilogue(
    out: &mut [f32], a: &[f32], b: &[f32], m: usize, k: usize, n: usize,
    trans_a: bool, trans_b: bool, accumulate: bool, epilogue: Epilogue, epilogue_flops: u64, par: &dyn Parallel,
) {
    matmul_forward_epilogue_with(Isa::detect(), out, a, b, 1, m, k, n, trans_a, trans_b, accumulate, Some(epilogue), epilogue_flops, par)
}

#[allow(clippy::too_many_arguments)]
fn matmul_forward_epilogue_with(
    isa: Isa, out: &mut [f32], a: &[f32], b: &[f32],
    batch: usize, m: usize, k: usize, n: usize,
    trans_a: bool, trans_b: bool, accumulate: bool, epilogue: Option<Epilogue>, epilogue_flops: u64, par: &dyn Parallel,
) {
    let Some(shape) = Product::check(isa, out, a, b, batch, m, k, n, accumulate, epilogue) else { return };
    let par = &parallel::for_work(par, shape.flops() + epilogue_flops);
    Product::new(isa, out, a, b, shape, trans_a, trans_b, accumulate, epilogue, par.threads()).run_all(par);
}

/// One product's dimensions (batch, m, k, n), all non-zero.
#[derive(Clone, Copy)]
struct Shape(usize, usize, usize, usize);

impl Shape {
    fn flops(self) -> u64 {
        2 * self.0 as u64 * self.1 as u64 * self.2 as u64 * self.3 as u64
    }
}

/// One matmul cut into tasks for `threads` threads: blocks of output rows or columns per
/// batch entry, each an independent [`sgemm_task`]. Several products can share one parallel
/// job (see [`matmul_backward_with`]).
struct Product<'a> {
    blk: Blocking,
    out: SendPtr,
    a: &'a [f32],
    b: &'a [f32],
    shape: Shape,
    trans_a: bool,
    trans_b: bool,
    accumulate: bool,
    epilogue: Option<Epilogue<'a>>,
    by_cols: bool,
    len: usize,
    step: usize,
    tasks_per_batch: usize,
}

impl<'a> Product<'a> {
    /// Checks the operands; finishes the calls with nothing to multiply (an empty output, or
    /// k = 0: zeros unless accumulating, then the epilogue) and returns None for them.
    #[allow(clippy::too_many_arguments)]
    fn check(isa: Isa, out: &mut [f32], a: &[f32], b: &[f32], batch: usize, m: usize, k: usize, n: usize,
        accumulate: bool, epilogue: Option<Epilogue>) -> Option<Shape> {
        assert!(isa.is_available(), "matmul: {isa:?} is not available on this machine");
        assert!(out.len() == batch * m * n && a.len() == batch * m * k && b.len() == batch * k * n);
        // Epilogue indices are those of one [m, n] output.
        assert!(epilogue.is_none() || batch == 1, "matmul: an epilogue needs batch 1");
        if batch == 0 || m == 0 || n == 0 {
            return None;
        }
        if k == 0 {
            if !accumulate {
                out.fill(0.0);
            }
            if let Some(f) = epilogue {
                f(0, m, 0, n);
            }
            return None;
        }
        Some(Shape(batch, m, k, n))
    }

    #[allow(clippy::too_many_arguments)]
    fn new(isa: Isa, out: &'a mut [f32], a: &'a [f32], b: &'a [f32], shape: Shape, trans_a: bool, trans_b: bool,
        accumulate: bool, epilogue: Option<Epilogue<'a>>, threads: usize) -> Self {
        let Shape(batch, m, _, n) = shape;
        let blk = blocking(isa);
        // Enough chunks per batch entry that every thread has work. Row chunks each pack all of
        // op(B) ([k, n]), column chunks all of op(A) ([m, k]), so the longer of m and n is split:
        // a weight gradient with few rows (dW = dYᵀ·X, m = out_features) splits its columns.
        // Chunks are whole micro-tiles where the matrix allows.
        let threads = threads.max(1);
        let chunks = if batch >= threads { 1 } else { threads.div_ceil(batch) };
        let by_cols = chunks > 1 && n > m;
        let (len, unit) = if by_cols { (n, blk.nr) } else { (m, blk.mr) };
        let step = len.div_ceil(chunks).div_ceil(unit) * unit;
        let tasks_per_batch = len.div_ceil(step);
        let out = SendPtr(out.as_mut_ptr());
        Product { blk, out, a, b, shape, trans_a, trans_b, accumulate, epilogue, by_cols, len, step, tasks_per_batch }
    }

    fn tasks(&self) -> usize {
        self.shape.0 * self.tasks_per_batch
    }

    /// Every task, as one parallel job of its own.
    fn run_all(&self, par: &dyn Parallel) {
        par.for_each(self.tasks(), &|task| self.run(task));
    }

    /// Runs task `task` (< `tasks()`); each task writes its own block of the output.
    fn run(&self, task: usize) {
        let Shape(_, m, k, n) = self.shape;
        let bi = task / self.tasks_per_batch;
        let lo = (task % self.tasks_per_batch) * self.step;
        let span = (lo, (lo + self.step).min(self.len));
        let (rows, cols) = if self.by_cols { ((0, m), span) } else { (span, (0, n)) };
        let a_b = &self.a[bi * m * k..(bi + 1) * m * k];
        let b_b = &self.b[bi * k * n..(bi + 1) * k * n];
        let a_view = if self.trans_a { View { data: a_b, rs: 1, cs: m } } else { View { data: a_b, rs: k, cs: 1 } };
        let b_view = if self.trans_b { View { data: b_b, rs: 1, cs: k } } else { View { data: b_b, rs: n, cs: 1 } };
        let blk = &self.blk;
        // SAFETY: task (bi, chunk) owns the block rows x cols of out[bi] (within its m x n;
        // out's length batch*m*n was asserted by `check`), disjoint from every other task's
        // block; the ISA was asserted available there too.
        unsafe {
            let c = self.out.0.add(bi * m * n + rows.0 * n + cols.0);
            (blk.task)(c, n, a_view, b_view, rows, cols, k, self.accumulate, (blk.kc, blk.mc, blk.nc), self.epilogue)
        };
    }
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
    matmul_backward_into(isa, da, true, db, true, dout, a, b, batch, m, k, n, trans_a, trans_b, par)
}

/// [`matmul_backward_with`] where da (db) is overwritten instead of accumulated unless
/// `accumulate_da` (`accumulate_db`): a gradient buffer nothing has written yet then needs no
/// zero fill first (the same values; 0 + x is x).
#[allow(clippy::too_many_arguments)]
pub fn matmul_backward_into(
    isa: Isa, da: Option<&mut [f32]>, accumulate_da: bool, db: Option<&mut [f32]>, accumulate_db: bool, dout: &[f32], a: &[f32], b: &[f32],
    batch: usize, m: usize, k: usize, n: usize,
    trans_a: bool, trans_b: bool, par: &dyn Parallel,
) {
    let grad_a = da.map(|g| if !trans_a { (g, dout, b, m, n, k, false, !trans_b, accumulate_da) } else { (g, b, dout, k, n, m, trans_b, true, accumulate_da) });
    let grad_b = db.map(|g| if !trans_b { (g, a, dout, k, m, n, !trans_a, false, accumulate_db) } else { (g, dout, a, n, m, k, true, trans_a, accumulate_db) });
    match (grad_a, grad_b) {
        (Some(ga), Some(gb)) => gradient_pair(isa, ga, gb, batch, par),
        (ga, gb) => {
            for (out, left, right, rows, depth, cols, trans_left, trans_right, accumulate) in ga.into_iter().chain(gb) {
                matmul_forward_with(isa, out, left, right, batch, rows, depth, cols, trans_left, trans_right, accumulate, par);
            }
        }
    }
}

/// out (+)= op(left) [rows, depth] · op(right) [depth, cols] per batch entry: (out, left,
/// right, rows, depth, cols, trans_left, trans_right, accumulate).
type Gradient<'g> = (&'g mut [f32], &'g [f32], &'g [f32], usize, usize, usize, bool, bool, bool);

/// Both gradients of a backward. On an even number of threads they run as one parallel job,
/// each product cut for half the threads: at 2 threads each runs whole on a thread of its
/// own, so neither operand is packed twice and the call costs one hand-off instead of two.
/// The two products have the same flops (2·m·k·n each), so the halves balance; the tiling of
/// each is that of any thread count, so the bits do not change.
fn gradient_pair(isa: Isa, (oa, la, ra, ma, ka, na, tla, tra, acc_a): Gradient, (ob, lb, rb, mb, kb, nb, tlb, trb, acc_b): Gradient,
    batch: usize, par: &dyn Parallel) {
    let shape_a = Product::check(isa, oa, la, ra, batch, ma, ka, na, acc_a, None);
    let shape_b = Product::check(isa, ob, lb, rb, batch, mb, kb, nb, acc_b, None);
    let par = &parallel::for_work(par, shape_a.map_or(0, Shape::flops) + shape_b.map_or(0, Shape::flops));
    let threads = par.threads();
    match (shape_a, shape_b) {
        (Some(sa), Some(sb)) if threads.is_multiple_of(2) => {
            let pa = Product::new(isa, oa, la, ra, sa, tla, tra, acc_a, None, threads / 2);
            let pb = Product::new(isa, ob, lb, rb, sb, tlb, trb, acc_b, None, threads / 2);
            let first = pa.tasks();
            par.for_each(first + pb.tasks(), &|task| if task < first { pa.run(task) } else { pb.run(task - first) });
        }
        (sa, sb) => {
            if let Some(s) = sa {
                Product::new(isa, oa, la, ra, s, tla, tra, acc_a, None, threads).run_all(par);
            }
            if let Some(s) = sb {
                Product::new(isa, ob, lb, rb, s, tlb, trb, acc_b, None, threads).run_all(par);
            }
        }
    }
}
