//! Scaled dot-product attention, out = softmax(q·k^T * scale + masks) · v, flash style: the
//! [Tq, Tk] score matrix is never materialised. Forward keeps an online softmax over key
//! blocks and saves one log-sum-exp per query row; backward recomputes each block of
//! probabilities from q, k and that statistic. Memory is O(T) per head instead of O(T²).
//!
//! Tiling: QUERY_BLOCK query rows x KEY_BLOCK keys. Every product of a tile runs through one
//! register-blocked micro-kernel ([`micro_tile`], MR rows x NV vectors per instruction set)
//! reading its left operand by broadcast, so P and Pᵀ need no transpose; the right operand is
//! row-major: v, k, q and dout rows as they are, and for the scores a block of keys packed
//! transposed (and pre-scaled) into a stack panel. Forward tasks are (b, h, query block),
//! backward tasks are (b, h) pairs: each task writes only its own out/lse (forward) or
//! dq/dk/dv (backward) slices, and the tiling depends only on the shapes and the instruction
//! set, so the result is the same for any thread count.
//!
//! Dropout on the weights (as PyTorch's `dropout_p`): after the softmax, weight (b, h, i, j)
//! is kept (times 1/(1-p)) or zeroed by the dropout recipe (`ops::dropout`) at counter
//! `offset + ((b·H + h)·Tq + i)·Tk + j`, the element's index in [B, H, Tq, Tk], so the mask
//! is that of a dropout over the materialised weights, whatever the tiling, thread count or
//! instruction set. lse stays the statistic of the undropped softmax. p = 0 runs exactly the
//! code without it.
//!
//! Layouts: q, k, v, out and their gradients are read and written as rows of D floats through
//! a [`Layout`], so the same tasks serve per-head tensors [B, H, T, D] and the packed
//! projection of self-attention, qkv [B, T, 3, H, D] in and out [B, T, H, D] (flash-attn's
//! `qkvpacked` layout, what nanoGPT's `c_attn` and PyTorch's `in_proj` produce), with no copy
//! to split the heads out of it or to merge them back.
use crate::ops::dropout::DropoutMask;
use crate::parallel::{self, SendPtr};
use crate::simd::math::MulAdd;
use crate::simd::{self, Isa, VecOps};
use crate::Parallel;
use std::ops::Range;

/// Floating-point operations of `products` score-sized products ([tq, d] · [d, tk] or the
/// like) over `pairs` (batch, head) pairs; a causal mask skips about half of them.
fn products_flops(products: u64, pairs: usize, tq: usize, tk: usize, d: usize, causal: bool) -> u64 {
    let all = products * 2 * pairs as u64 * tq as u64 * tk as u64 * d as u64;
    if causal { all / 2 } else { all }
}

/// Query rows per tile (a forward item): a multiple of every register tile's strip, NV x LANES
/// (64, 32, 16, 8, 1), so that a transposed score tile, rows rounded up to a strip, fits.
const QUERY_BLOCK: usize = 64;
/// Keys per tile (the rows of the score product, the depth of tile · v). With QUERY_BLOCK it
/// sets a score tile, 64 x 64 floats = 16 KiB on the stack.
const KEY_BLOCK: usize = 64;
/// Head-size depth packed into a key panel at a time: [128, 64] floats = 32 KiB. Larger heads
/// take the score product in several depth slices.
const DEPTH_BLOCK: usize = 128;

/// Where the rows of an operand live: row t of head h in batch entry b starts at
/// `b·batch + h·head + t·row` floats into its buffer, its D floats contiguous.
#[derive(Clone, Copy)]
struct Layout {
    batch: usize,
    head: usize,
    row: usize,
}

impl Layout {
    /// Per-head tensors [B, H, T, D].
    fn heads(h: usize, t: usize, d: usize) -> Layout {
        Layout { batch: h * t * d, head: t * d, row: d }
    }

    /// One of `parts` slices of a [B, T, parts, H, D] buffer (the slice starting at the part).
    fn packed(parts: usize, h: usize, t: usize, d: usize) -> Layout {
        Layout { batch: t * parts * h * d, head: d, row: parts * h * d }
    }

    /// Offset of row t of pair bh = b·H + h.
    #[inline(always)]
    fn start(&self, h: usize, bh: usize, t: usize) -> usize {
        (bh / h) * self.batch + (bh % h) * self.head + t * self.row
    }

    /// Rows [t0, t0 + n) of pair bh (n >= 1) as one slice, row r at r·self.row.
    #[inline(always)]
    fn rows<'a>(&self, x: &'a [f32], dims: &Dims, bh: usize, t0: usize, n: usize) -> &'a [f32] {
        let start = self.start(dims.h, bh, t0);
        &x[start..start + (n - 1) * self.row + dims.d]
    }

    /// Asserts that a buffer of `len` floats holds every row of [b, h, t] pairs and times.
    fn assert_holds(&self, len: usize, b: usize, h: usize, t: usize, d: usize) {
        if b * h * t * d > 0 {
            assert!(self.start(h, b * h - 1, t - 1) + d <= len, "attention: buffer of {len} floats too short for its layout");
        }
    }
}

/// Shapes and scalars of one call, and the layouts of its operands: q (and dq), k and v (and
/// dk, dv), out (and dout).
#[derive(Clone, Copy)]
struct Dims {
    h: usize,
    tq: usize,
    tk: usize,
    d: usize,
    causal: bool,
    scale: f32,
    q_at: Layout,
    kv_at: Layout,
    out_at: Layout,
}

impl Dims {
    /// Per-head tensors: q and out [B, H, Tq, D], k and v [B, H, Tk, D].
    fn heads(h: usize, tq: usize, tk: usize, d: usize, causal: bool, scale: f32) -> Dims {
        let (q_at, kv_at) = (Layout::heads(h, tq, d), Layout::heads(h, tk, d));
        Dims { h, tq, tk, d, causal, scale, q_at, kv_at, out_at: q_at }
    }

    /// Self-attention on a packed projection: q, k, v in qkv [B, T, 3, H, D], out [B, T, H, D].
    fn packed(h: usize, t: usize, d: usize, causal: bool, scale: f32) -> Dims {
        let qkv_at = Layout::packed(3, h, t, d);
        Dims { h, tq: t, tk: t, d, causal, scale, q_at: qkv_at, kv_at: qkv_at, out_at: Layout::packed(1, h, t, d) }
    }

    /// Checks the operands against the layouts (the shims have already refused bad lengths
    /// with a message).
    fn assert_shapes(&self, q: &[f32], k: &[f32], v: &[f32], per_row: &[f32], key_mask: Option<&[u8]>, b: usize) {
        let Dims { h, tq, tk, d, .. } = *self;
        self.q_at.assert_holds(q.len(), b, h, tq, d);
        self.kv_at.assert_holds(k.len(), b, h, tk, d);
        self.kv_at.assert_holds(v.len(), b, h, tk, d);
        assert_eq!(per_row.len(), b * h * tq);
        if let Some(m) = key_mask {
            assert_eq!(m.len(), b * tk);
        }
    }
}

/// The weights' dropout of a call (None when p = 0) and the counter of weight (bh, i, j).
#[derive(Clone, Copy)]
struct WeightDropout {
    mask: DropoutMask,
    offset: u32,
    tq: usize,
    tk: usize,
}

impl WeightDropout {
    fn new(p: f32, seed: u32, offset: u32, tq: usize, tk: usize) -> Option<Self> {
        (p != 0.0).then(|| WeightDropout { mask: DropoutMask::new(p, seed), offset, tq, tk })
    }

    /// Counter of weight (bh, i, j): its index in [B, H, Tq, Tk] after `offset`, modulo 2^32
    /// as dropout's (wrapping arithmetic, so a 32-bit usize gives the same low bits).
    #[inline]
    fn counter(&self, bh: usize, i: usize, j: usize) -> u32 {
        let index = bh.wrapping_mul(self.tq).wrapping_add(i).wrapping_mul(self.tk).wrapping_add(j);
        self.offset.wrapping_add(index as u32)
    }
}

/// Keys a tile of query rows [i0, i0 + rows) may see: all, or up to the last row when causal.
#[inline]
fn visible_keys(causal: bool, i0: usize, rows: usize, tk: usize) -> usize {
    if causal { (i0 + rows).min(tk) } else { tk }
}

/// Whether the key padding mask hides every key of [j0, j0 + cols): the tile adds nothing.
#[inline]
fn all_padding(mask: Option<&[u8]>, j0: usize, cols: usize) -> bool {
    mask.is_some_and(|m| m[j0..j0 + cols].iter().all(|&keep| keep == 0))
}

// ---- products of a tile -------------------------------------------------------------------

/// C[i, 0..NV·LANES] (=|+=) Σ_p A[i, p] · B[p, 0..NV·LANES] for rows i < MR, p < `depth`:
/// the register tile of every product here (MR·NV accumulators). A element (i, p) is read by
/// broadcast from `a[i·ars + p·acs]`, so a tile or its transpose serves alike; B rows are
/// contiguous at stride `ldb`, C rows at stride `ldc`. The sum runs p = 0..depth in order.
///
/// # Safety
/// The ISA of `S` is available; A, B and C are valid for the elements described.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn micro_tile<S: VecOps, const MR: usize, const NV: usize>(
    depth: usize, a: *const f32, ars: usize, acs: usize, b: *const f32, ldb: usize, c: *mut f32, ldc: usize, add: bool,
) {
    let l = S::LANES;
    // SAFETY (whole body): per the contract above.
    unsafe {
        let mut acc = [[S::zero(); NV]; MR];
        let (mut pa, mut pb) = (a, b);
        // Four depth steps per iteration, the pointers bumped once: the loop's own
        // instructions (address arithmetic, count, branch) compete with the FMAs otherwise.
        // Row i's A is at pa + i·ars, a fixed displacement where the caller's ars is 1.
        for _ in 0..depth / 4 {
            for u in 0..4 {
                tile_step::<S, MR, NV>(&mut acc, pa.add(u * acs), ars, pb.add(u * ldb));
            }
            pa = pa.add(4 * acs);
            pb = pb.add(4 * ldb);
        }
        for _ in 0..depth % 4 {
            tile_step::<S, MR, NV>(&mut acc, pa, ars, pb);
            pa = pa.add(acs);
            pb = pb.add(ldb);
        }
        for (i, acc_row) in acc.iter().enumerate() {
            for (v, &x) in acc_row.iter().enumerate() {
                let cp = c.add(i * ldc + v * l);
                S::store(cp, if add { S::add(S::load(cp), x) } else { x });
            }
        }
    }
}

/// One depth step of [`micro_tile`]: acc[i] += A[i, p] · B[p, ..], A[i, p] at `a[i·ars]`.
///
/// # Safety
/// As [`micro_tile`], for one depth step.
#[inline(always)]
unsafe fn tile_step<S: VecOps, const MR: usize, const NV: usize>(acc: &mut [[S::V; NV]; MR], a: *const f32, ars: usize, b: *const f32) {
    // SAFETY: per micro_tile's contract.
    unsafe {
        let mut bv = [S::zero(); NV];
        for (v, x) in bv.iter_mut().enumerate() {
            *x = S::load(b.add(v * S::LANES));
        }
        for (i, acc_row) in acc.iter_mut().enumerate() {
            let av = S::splat(*a.add(i * ars));
            for v in 0..NV {
                acc_row[v] = S::fma(av, bv[v], acc_row[v]);
            }
        }
    }
}

/// What a causal mask leaves of a tile's product. Key c of the tile is visible to query r
/// iff c <= r + lead, where lead = i0 - j0 (the tile's first query minus its first key); a
/// product skips the register tiles and depth steps that only hidden pairs feed (their
/// weights are exactly 0, or, for scores, overwritten by the mask).
#[derive(Clone, Copy)]
enum Causal {
    /// The whole product: no causal mask, or a tile the diagonal does not cross.
    Whole,
    /// C rows are keys, its columns queries (score tiles): key row c needs queries r >= c - lead.
    KeysByQueries(isize),
    /// C rows are keys, the depth queries (dv, dk): key row c sums over queries r >= c - lead.
    KeysOverQueries(isize),
    /// C rows are queries, the depth keys (out, dq): query row r sums over keys c <= r + lead.
    QueriesOverKeys(isize),
}

/// C[m, n] (=|+=) A[m, depth] · B[depth, n], operands laid out as in [`micro_tile`], less
/// what `causal` skips: per block of MR rows (B, at most [128, 64] floats here, stays in L1),
/// the register tiles of [`row_strips`]; a last block of fewer rows goes in tiles of 4, 2 and
/// 1 rows (not an MR-row tile repeating its last row: the repeats cost FMAs, and their
/// clamped A addresses registers the MR-row loop spills). Each element's sum runs over its
/// block's depth range in order.
///
/// # Safety
/// As [`micro_tile`], for the whole [m, n] product.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn product<S: VecOps, const MR: usize, const NV: usize>(
    m: usize, n: usize, depth: usize, a: *const f32, ars: usize, acs: usize,
    b: *const f32, ldb: usize, c: *mut f32, ldc: usize, add: bool, causal: Causal,
) {
    let clamp = |x: isize, hi: usize| x.clamp(0, hi as isize) as usize;
    // SAFETY (whole body): every tile passed on lies inside the [m, n] product (caller).
    unsafe {
        for i in (0..m).step_by(MR) {
            let rows = MR.min(m - i);
            let (j_from, p_from, p_to) = match causal {
                Causal::Whole => (0, 0, depth),
                Causal::KeysByQueries(lead) => (clamp(i as isize - lead, n) / S::LANES * S::LANES, 0, depth),
                Causal::KeysOverQueries(lead) => (0, clamp(i as isize - lead, depth), depth),
                Causal::QueriesOverKeys(lead) => (0, 0, clamp((i + rows) as isize + lead, depth)),
            };
            let steps = p_to.saturating_sub(p_from);
            if steps == 0 && add {
                continue;
            }
            let b_p = b.add(p_from * ldb);
            let mut r = i;
            while r < i + rows {
                let (a_r, c_r) = (a.add(r * ars + p_from * acs), c.add(r * ldc));
                let strip = (n, j_from, steps, (a_r, ars, acs), (b_p, ldb), (c_r, ldc), add);
                // Branches on constants (closures do not inherit the caller's target features);
                // only the first test holds for a whole block.
                r += match i + rows - r {
                    left if left >= MR => row_strips::<S, MR, NV>(strip),
                    left if MR > 4 && left >= 4 => row_strips::<S, 4, NV>(strip),
                    left if MR > 2 && left >= 2 => row_strips::<S, 2, NV>(strip),
                    _ => row_strips::<S, 1, NV>(strip),
                };
            }
        }
    }
}

/// The operands of [`row_strips`]: n, the first column, depth steps, (A, its row and column
/// strides), (B, ldb), (C, ldc), add.
type Strip = (usize, usize, usize, (*const f32, usize, usize), (*const f32, usize), (*mut f32, usize), bool);

/// C[0..R, j_from..n] of a [`product`] by R-row register tiles: strips of NV vectors, then one
/// narrower tile for the vectors left, then a scalar tail for n not a multiple of LANES.
/// Returns R.
///
/// # Safety
/// As [`micro_tile`], for rows [0, R) and columns [j_from, n).
#[inline(always)]
unsafe fn row_strips<S: VecOps, const R: usize, const NV: usize>((n, j_from, steps, (a, ars, acs), (b, ldb), (c, ldc), add): Strip) -> usize {
    let l = S::LANES;
    let n_vectors = n - n % l;
    // SAFETY (whole body): per the contract above.
    unsafe {
        let mut j = j_from;
        while j + NV * l <= n {
            micro_tile::<S, R, NV>(steps, a, ars, acs, b.add(j), ldb, c.add(j), ldc, add);
            j += NV * l;
        }
        // The vectors left (fewer than NV) in one register tile of that width. The tests on
        // the constant NV drop the widths a tile never leaves (all but 1 when NV = 2).
        while j < n_vectors {
            let left = (n_vectors - j) / l;
            let (bj, cj) = (b.add(j), c.add(j));
            let nv = if NV > 3 && left >= 3 {
                micro_tile::<S, R, 3>(steps, a, ars, acs, bj, ldb, cj, ldc, add);
                3
            } else if NV > 2 && left >= 2 {
                micro_tile::<S, R, 2>(steps, a, ars, acs, bj, ldb, cj, ldc, add);
                2
            } else {
                micro_tile::<S, R, 1>(steps, a, ars, acs, bj, ldb, cj, ldc, add);
                1
            };
            j += nv * l;
        }
        for col in j..n {
            for r in 0..R {
                let mut sum = 0.0;
                for p in 0..steps {
                    sum += *a.add(r * ars + p * acs) * *b.add(p * ldb + col);
                }
                let cp = c.add(r * ldc + col);
                *cp = if add { *cp + sum } else { sum };
            }
        }
    }
    R
}

/// Packs `count` lines (line c at c·stride) transposed and times `factor` into `panel` as
/// [depth, width]: panel[p·width + c] = lines[c·stride + p0 + p]·factor, zero for
/// count <= c < width.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn pack_panel(panel: &mut [f32], lines: &[f32], stride: usize, p0: usize, depth: usize, count: usize, width: usize, factor: f32) {
    let panel = &mut panel[..depth * width];
    assert!(count <= width && (count == 0 || (count - 1) * stride + p0 + depth <= lines.len()));
    // SAFETY: lines c < count hold depth floats from p0 and the panel depth x width (asserted).
    let mut c = unsafe { simd::transpose_fours::<true>(panel.as_mut_ptr(), width, lines.as_ptr().add(p0), stride, count, depth, factor) };
    let line = |c: usize| &lines[c * stride + p0..c * stride + p0 + depth];
    // Four lines at a time: one 4-float store per depth step instead of four scattered ones.
    while c + 4 <= count {
        let (l0, l1, l2, l3) = (line(c), line(c + 1), line(c + 2), line(c + 3));
        for p in 0..depth {
            let dst = &mut panel[p * width + c..p * width + c + 4];
            dst.copy_from_slice(&[l0[p] * factor, l1[p] * factor, l2[p] * factor, l3[p] * factor]);
        }
        c += 4;
    }
    for c in c..count {
        for (p, &x) in line(c).iter().enumerate() {
            panel[p * width + c] = x * factor;
        }
    }
    if count < width {
        for p in 0..depth {
            panel[p * width + count..(p + 1) * width].fill(0.0);
        }
    }
}

/// Transposed scores: st [cols, width] = keys [cols, d] · (factor · rows_src [rows, d])ᵀ, zero
/// in columns rows..width, except the register tiles `causal` skips (left as they were: the
/// caller masks them). Key c is keys[c·key_stride..][..d], row r rows_src[r·row_stride..][..d].
/// The query-side rows go through `panel` DEPTH_BLOCK of d at a time; `packed` says the panel
/// already holds them (d <= DEPTH_BLOCK, packed once per query block for all its key tiles).
/// Keys are read in place, rows of the product.
///
/// # Safety
/// The ISA of `S` is available.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn scores<S: VecOps, const MR: usize, const NV: usize>(
    st: &mut [f32], width: usize, (keys, key_stride): (&[f32], usize), cols: usize, d: usize,
    (rows_src, row_stride): (&[f32], usize), rows: usize, factor: f32, panel: &mut [f32], packed: bool, causal: Causal,
) {
    assert!(st.len() >= cols * width && keys.len() >= (cols - 1) * key_stride + d && rows_src.len() >= (rows - 1) * row_stride + d);
    assert!(!packed || d <= DEPTH_BLOCK);
    let mut p0 = 0;
    loop {
        let depth = DEPTH_BLOCK.min(d - p0);
        if !packed {
            pack_panel(panel, rows_src, row_stride, p0, depth, rows, width, factor);
        }
        // SAFETY: keys hold cols rows of d at key_stride (asserted), the panel depth x width,
        // st cols x width.
        unsafe { product::<S, MR, NV>(cols, width, depth, keys.as_ptr().add(p0), key_stride, 1, panel.as_ptr(), width, st.as_mut_ptr(), width, p0 > 0, causal) };
        p0 += depth;
        if p0 >= d {
            break;
        }
    }
}

// ---- tasks --------------------------------------------------------------------------------

/// A task's block of query rows [i0, i0 + rows) of pair bh: its q rows, packed once as
/// scaled qᵀ for all its key tiles where the head fits a panel, and its batch's key mask.
struct QueryBlock<'a> {
    bh: usize,
    i0: usize,
    rows: usize,
    /// Columns of a transposed score tile: rows rounded up to the micro-kernel's strip.
    width: usize,
    /// Its q rows (row r at r·dims.q_at.row).
    q_rows: &'a [f32],
    key_mask: Option<&'a [u8]>,
    packed: bool,
    /// Granule of query rows in which a causal score tile skips the hidden queries of a key
    /// row, the instruction set's vector width: the elementwise loops over a key row (softmax,
    /// dS) start at such a boundary, so they read only computed scores, and start
    /// vector-aligned.
    chunk: usize,
}

impl<'a> QueryBlock<'a> {
    /// Block `blk` (QUERY_BLOCK rows) of pair bh, with strips of `strip` columns, rows skipped
    /// in `chunk`s (the vector width).
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn new(dims: &Dims, q: &'a [f32], key_mask: Option<&'a [u8]>, bh: usize, blk: usize, (strip, chunk): (usize, usize), q_panel: &mut [f32]) -> Self {
        let Dims { h, tq, tk, d, scale, .. } = *dims;
        let i0 = blk * QUERY_BLOCK;
        let rows = QUERY_BLOCK.min(tq - i0);
        let width = rows.next_multiple_of(strip);
        let q_rows = dims.q_at.rows(q, dims, bh, i0, rows);
        let packed = d <= DEPTH_BLOCK;
        if packed {
            pack_panel(q_panel, q_rows, dims.q_at.row, 0, d, rows, width, scale);
        }
        let key_mask = key_mask.map(|m| &m[(bh / h) * tk..(bh / h + 1) * tk]);
        QueryBlock { bh, i0, rows, width, q_rows, key_mask, packed, chunk }
    }

    /// The visible keys' tiles [j0, j0 + cols) in order, without those all padding.
    fn key_tiles(&self, dims: &Dims) -> impl Iterator<Item = (usize, usize)> + '_ {
        let keys = visible_keys(dims.causal, self.i0, self.rows, dims.tk);
        (0..keys).step_by(KEY_BLOCK).map(move |j0| (j0, KEY_BLOCK.min(keys - j0))).filter(|&(j0, cols)| !all_padding(self.key_mask, j0, cols))
    }

    /// The causal lead of key tile [j0, j0 + cols) (see [`Causal`]), None where every key of
    /// it is visible to every query row of the block.
    #[inline(always)]
    fn causal_lead(&self, dims: &Dims, j0: usize, cols: usize) -> Option<isize> {
        (dims.causal && j0 + cols > self.i0 + 1).then(|| self.i0 as isize - j0 as isize)
    }

    /// Where the elementwise loops over key row c of tile j0 start: the chunk holding the
    /// first query row that sees key j0 + c (0 unless causal). Rows before it come before the
    /// key; rows from it on that still do are masked -inf by then.
    #[inline(always)]
    fn first_row(&self, dims: &Dims, j0: usize, c: usize) -> usize {
        if dims.causal { (j0 + c).saturating_sub(self.i0).min(self.rows) / self.chunk * self.chunk } else { 0 }
    }

    /// st [cols, width] = the scaled, masked scores of keys [j0, j0 + cols) (transposed), their
    /// rows `keys` (key c at c·stride).
    ///
    /// # Safety
    /// The ISA of `S` is available.
    #[inline(always)]
    unsafe fn scores<S: VecOps, const MR: usize, const NV: usize>(&self, st: &mut [f32], dims: &Dims, keys: (&[f32], usize), j0: usize, cols: usize, q_panel: &mut [f32]) {
        let Dims { d, scale, q_at, .. } = *dims;
        let skip = self.causal_lead(dims, j0, cols).map_or(Causal::Whole, Causal::KeysByQueries);
        // SAFETY: the caller's ISA.
        unsafe { scores::<S, MR, NV>(st, self.width, keys, cols, d, (self.q_rows, q_at.row), self.rows, scale, q_panel, self.packed, skip) };
        self.mask(st, dims, j0, cols);
    }

    /// Masks transposed scores st[c, r] (query i0 + r, key j0 + c) from each key row's
    /// [`first_row`](Self::first_row) on: -inf where key j0 + c is padding or, when causal,
    /// comes after query i0 + r. Entries before first_row are left as they are (every reader
    /// starts there; they may not have been computed).
    #[inline(always)]
    fn mask(&self, st: &mut [f32], dims: &Dims, j0: usize, cols: usize) {
        for (c, key_row) in st.chunks_exact_mut(self.width).take(cols).enumerate() {
            let first = self.first_row(dims, j0, c);
            let hidden = if self.key_mask.is_some_and(|m| m[j0 + c] == 0) {
                self.rows
            } else if dims.causal {
                (j0 + c).saturating_sub(self.i0).min(self.rows)
            } else {
                0
            };
            key_row[first..hidden.max(first)].fill(f32::NEG_INFINITY);
        }
    }
}

/// A task's stack scratch, N score tiles and N panels (forward 1: scores and qᵀ; backward 2:
/// also dS and doutᵀ), zeroed once per run of items (not per item: results never read what
/// an earlier item left, as every tile and panel region is written before it is read).
struct Scratch<const N: usize> {
    tiles: [[f32; KEY_BLOCK * QUERY_BLOCK]; N],
    panels: [[f32; DEPTH_BLOCK * QUERY_BLOCK]; N],
}

impl<const N: usize> Scratch<N> {
    #[inline(always)]
    fn new() -> Self {
        Scratch { tiles: [[0.0; KEY_BLOCK * QUERY_BLOCK]; N], panels: [[0.0; DEPTH_BLOCK * QUERY_BLOCK]; N] }
    }
}

/// One forward call, shared by its tasks.
struct Forward<'a> {
    out: SendPtr,
    lse: SendPtr,
    q: &'a [f32],
    k: &'a [f32],
    v: &'a [f32],
    key_mask: Option<&'a [u8]>,
    dims: Dims,
    dropout: Option<WeightDropout>,
    blocks: usize,
}

/// Forward task (bh, query block of QUERY_BLOCK rows, packed once as scaled qᵀ), over its
/// visible keys KEY_BLOCK at a time: transposed scores [keys, rows] into a stack tile, so that
/// the online softmax runs across query rows in vectors: running row max m and sum l (the
/// old partial output is rescaled by e^(m_old - m_new)), out rows += tileᵀ · v_block; finally
/// out /= l and lse = m + ln l. With dropout, a tile is dropped after the softmax has summed it.
///
/// # Safety
/// The ISA of `S` is available; `task` < pairs · blocks, and no other task runs with it.
#[inline(always)]
unsafe fn forward_task<S: VecOps + MulAdd, const MR: usize, const NV: usize>(call: &Forward, task: usize, scratch: &mut Scratch<1>) {
    let dims = call.dims;
    let Dims { d, kv_at, .. } = dims;
    let Scratch { tiles: [tile], panels: [q_panel] } = scratch;
    let blk = QueryBlock::new(&dims, call.q, call.key_mask, task / call.blocks, task % call.blocks, (NV * S::LANES, S::LANES), q_panel);
    let QueryBlock { bh, i0, rows, width, .. } = blk;
    // SAFETY: task (bh, blk) owns rows [i0, i0 + rows) of pair bh in out and lse; regions of
    // different tasks are disjoint and in bounds by the caller's asserts. Out rows go through
    // a raw pointer: in a packed layout the rows of other heads lie between them.
    let lse_blk = unsafe { call.lse.slice_mut(bh * dims.tq + i0, rows) };
    let out_at = dims.out_at;
    let out_rows = unsafe { call.out.0.add(out_at.start(dims.h, bh, i0)) };
    // SAFETY: as above, row r < rows of this task's block.
    let out_row = |r: usize| unsafe { call.out.slice_mut(out_at.start(dims.h, bh, i0 + r), d) };
    let mut row_max = [f32::NEG_INFINITY; QUERY_BLOCK];
    let mut row_sum = [0.0f32; QUERY_BLOCK];
    // The first tile writes out rows (nothing to rescale), later ones add to them; rows that
    // never get a key are zeroed at the end.
    for (tile_index, (j0, cols)) in blk.key_tiles(&dims).enumerate() {
        let first_tile = tile_index == 0;
        let st = &mut tile[..cols * width];
        let (k_blk, v_blk) = (kv_at.rows(call.k, &dims, bh, j0, cols), kv_at.rows(call.v, &dims, bh, j0, cols));
        // SAFETY: the caller's ISA.
        unsafe { blk.scores::<S, MR, NV>(st, &dims, (k_blk, kv_at.row), j0, cols, q_panel) };
        let mut tile_max = [f32::NEG_INFINITY; QUERY_BLOCK];
        for (c, key_row) in st.chunks_exact(width).enumerate() {
            let first = blk.first_row(&dims, j0, c);
            // Not f32::max (a compare and a blend): NaN scores are passed over alike.
            for (m, &x) in tile_max[first..rows].iter_mut().zip(&key_row[first..rows]) {
                *m = if x > *m { x } else { *m };
            }
        }
        // f32::max passes NaN scores over; they reach the sum through the exp below, so the
        // row's output and lse become NaN, as PyTorch's softmax gives. A row with nothing
        // visible yet shifts by 0: e^(-inf - 0) = 0 leaves its sum and output at 0.
        let (mut shift, mut rescale) = ([0.0f32; QUERY_BLOCK], [0.0f32; QUERY_BLOCK]);
        for r in 0..rows {
            let new_max = row_max[r].max(tile_max[r]);
            shift[r] = if new_max == f32::NEG_INFINITY { 0.0 } else { new_max };
            rescale[r] = simd::exp_approx_with::<S>(row_max[r] - shift[r]);
            row_max[r] = new_max;
        }
        // Rows a key comes after get their e^-inf = 0 without the exp.
        let mut tile_sum = [0.0f32; QUERY_BLOCK];
        for (c, key_row) in st.chunks_exact_mut(width).enumerate() {
            let first = blk.first_row(&dims, j0, c);
            key_row[..first].fill(0.0);
            for ((x, &sh), sum) in key_row[first..rows].iter_mut().zip(&shift[first..rows]).zip(&mut tile_sum[first..rows]) {
                *x = simd::exp_approx_with::<S>(*x - sh);
                *sum += *x;
            }
        }
        if let Some(drop) = &call.dropout {
            // Rows before a key row's first chunk hold 0 already: no mask to hash there.
            for (c, key_row) in st.chunks_exact_mut(width).enumerate() {
                let first = blk.first_row(&dims, j0, c);
                for (r, x) in key_row[first..rows].iter_mut().enumerate() {
                    *x *= drop.mask.factor(drop.counter(bh, i0 + first + r, j0 + c));
                }
            }
        }
        for r in 0..rows {
            if !first_tile && rescale[r] != 1.0 {
                // SAFETY: the caller's ISA.
                unsafe { simd::scale_generic::<S>(out_row(r), rescale[r]) };
            }
            row_sum[r] = row_sum[r] * rescale[r] + tile_sum[r];
        }
        // out rows += tileᵀ [rows, cols] · v_blk [cols, d].
        let skip = blk.causal_lead(&dims, j0, cols).map_or(Causal::Whole, Causal::QueriesOverKeys);
        // SAFETY: st holds cols x width (rows <= width), v_blk cols rows of d, out this task's
        // rows of d.
        unsafe { product::<S, MR, NV>(rows, d, cols, st.as_ptr(), 1, width, v_blk.as_ptr(), kv_at.row, out_rows, out_at.row, !first_tile, skip) };
    }
    for r in 0..rows {
        if row_sum[r] > 0.0 {
            // SAFETY: the caller's ISA.
            unsafe { simd::scale_generic::<S>(out_row(r), 1.0 / row_sum[r]) };
            lse_blk[r] = row_max[r] + row_sum[r].ln();
        } else {
            // No visible key (or NaN scores): zeros, as the materialised softmax gave.
            // A NaN lse makes backward's rebuilt probabilities, hence the gradients, NaN.
            let nan = row_sum[r].is_nan();
            out_row(r).fill(if nan { f32::NAN } else { 0.0 });
            lse_blk[r] = if nan { f32::NAN } else { f32::NEG_INFINITY };
        }
    }
}

/// Turns block `blk`'s transposed tile of scaled, masked scores of keys from j0 into
/// probabilities e^(s - lse_row) (exactly 0 where masked, and for rows whose lse is -inf),
/// rows r < rows of each key row.
#[inline(always)]
fn probs_from_lse<S: MulAdd>(st: &mut [f32], blk: &QueryBlock, dims: &Dims, j0: usize, lse: &[f32]) {
    for (c, key_row) in st.chunks_exact_mut(blk.width).enumerate() {
        let first = blk.first_row(dims, j0, c);
        key_row[..first].fill(0.0);
        for (x, &row_lse) in key_row[first..blk.rows].iter_mut().zip(&lse[first..]) {
            *x = if row_lse == f32::NEG_INFINITY { 0.0 } else { simd::exp_approx_with::<S>(*x - row_lse) };
        }
    }
}

/// One attention_probs call, shared by its tasks.
struct Probs<'a> {
    probs: SendPtr,
    q: &'a [f32],
    k: &'a [f32],
    lse: &'a [f32],
    key_mask: Option<&'a [u8]>,
    dims: Dims,
    blocks: usize,
}

/// Probabilities of task (bh, query block): every visible key tile rebuilt as in backward,
/// transposed into the [rows, tk] slab (zeros past the causal diagonal).
///
/// # Safety
/// As [`forward_task`].
#[inline(always)]
unsafe fn probs_task<S: VecOps + MulAdd, const MR: usize, const NV: usize>(call: &Probs, task: usize, scratch: &mut Scratch<1>) {
    let dims = call.dims;
    let Scratch { tiles: [tile], panels: [q_panel] } = scratch;
    let blk = QueryBlock::new(&dims, call.q, call.key_mask, task / call.blocks, task % call.blocks, (NV * S::LANES, S::LANES), q_panel);
    let QueryBlock { bh, i0, rows, width, .. } = blk;
    let tk = dims.tk;
    // SAFETY: task (bh, blk) owns rows [i0, i0 + rows) of the [bh] slab of probs.
    let probs_blk = unsafe { call.probs.slice_mut((bh * dims.tq + i0) * tk, rows * tk) };
    let lse_blk = &call.lse[bh * dims.tq + i0..bh * dims.tq + i0 + rows];
    probs_blk.fill(0.0);
    for (j0, cols) in blk.key_tiles(&dims) {
        let st = &mut tile[..cols * width];
        // SAFETY: the caller's ISA.
        unsafe { blk.scores::<S, MR, NV>(st, &dims, (dims.kv_at.rows(call.k, &dims, bh, j0, cols), dims.kv_at.row), j0, cols, q_panel) };
        probs_from_lse::<S>(st, &blk, &dims, j0, lse_blk);
        for (c, key_row) in st.chunks_exact(width).enumerate() {
            for (r, &x) in key_row[..rows].iter().enumerate() {
                probs_blk[r * tk + j0 + c] = x;
            }
        }
    }
}

/// One backward call, shared by its tasks.
struct Backward<'a> {
    dq: SendPtr,
    dk: SendPtr,
    dv: SendPtr,
    dout: &'a [f32],
    q: &'a [f32],
    k: &'a [f32],
    v: &'a [f32],
    out: &'a [f32],
    lse: &'a [f32],
    key_mask: Option<&'a [u8]>,
    dims: Dims,
    dropout: Option<WeightDropout>,
    /// dq, dk and dv are written, not added to: a task's first product into a row writes it,
    /// and it zeroes the rows no product reaches, instead of the caller zero-filling buffers.
    overwrite: bool,
}

/// Backward task bh: per block of query rows (scaled qᵀ and doutᵀ packed once), per tile of
/// the keys it sees, transposed as in forward: Pᵀ = e^(scaled masked k·qᵀ - lse),
/// dPᵀ = v·doutᵀ, dSᵀ = Pᵀ ∘ (dPᵀ - δ) · scale with δ_r = dout_r · out_r, then
/// dv += Pᵀ·dout, dk += dSᵀ·q, dq rows += dS·k.
///
/// # Safety
/// The ISA of `S` is available; bh < pairs, and no other task runs with it.
#[inline(always)]
unsafe fn backward_task<S: VecOps + MulAdd, const MR: usize, const NV: usize>(call: &Backward, bh: usize, scratch: &mut Scratch<2>) {
    let dims = &call.dims;
    let Dims { h, tq, d, scale, q_at, kv_at, out_at, .. } = *dims;
    let Scratch { tiles: [p_tile, ds_tile], panels: [q_panel, go_panel] } = scratch;
    let overwrite = call.overwrite;
    let zero_rows = |grad: SendPtr, at: Layout, t0: usize, n: usize| {
        for row in t0..t0 + n {
            // SAFETY: task bh alone writes pair bh's rows (see below), rows < T in bounds.
            unsafe { grad.slice_mut(at.start(h, bh, row), d) }.fill(0.0);
        }
    };
    let blocks = tq.div_ceil(QUERY_BLOCK);
    if overwrite {
        // A row's first product writes it (0 + x is x bit for bit: a product's sum is never
        // -0), so only the key rows no query block reaches are zeroed: past the causal
        // diagonal and in tiles all padding.
        let keys = visible_keys(dims.causal, (blocks - 1) * QUERY_BLOCK, tq - (blocks - 1) * QUERY_BLOCK, dims.tk);
        let key_mask = call.key_mask.map(|m| &m[(bh / h) * dims.tk..(bh / h + 1) * dims.tk]);
        for j0 in (0..keys).step_by(KEY_BLOCK) {
            let cols = KEY_BLOCK.min(keys - j0);
            if all_padding(key_mask, j0, cols) {
                zero_rows(call.dk, kv_at, j0, cols);
                zero_rows(call.dv, kv_at, j0, cols);
            }
        }
        zero_rows(call.dk, kv_at, keys, dims.tk - keys);
        zero_rows(call.dv, kv_at, keys, dims.tk - keys);
    }
    let mut delta = [0.0f32; QUERY_BLOCK];
    for blk_index in 0..blocks {
        let blk = QueryBlock::new(dims, call.q, call.key_mask, bh, blk_index, (NV * S::LANES, S::LANES), q_panel);
        // Key tiles before `seen` were visited by an earlier block (blocks see prefixes of the
        // same tiles), so under overwrite the later ones get their first dk, dv rows here; dq's
        // rows get theirs from the block's first tile.
        let seen = if blk_index == 0 { 0 } else { visible_keys(dims.causal, (blk_index - 1) * QUERY_BLOCK, QUERY_BLOCK, dims.tk) };
        let mut dq_written = !overwrite;
        let QueryBlock { i0, rows, width, q_rows: q_blk, packed, .. } = blk;
        let (go_blk, out_blk) = (out_at.rows(call.dout, dims, bh, i0, rows), out_at.rows(call.out, dims, bh, i0, rows));
        let lse_blk = &call.lse[bh * tq + i0..bh * tq + i0 + rows];
        for (r, delta_r) in delta[..rows].iter_mut().enumerate() {
            let at = r * out_at.row..r * out_at.row + d;
            // SAFETY (the generic helper): the caller's ISA.
            *delta_r = unsafe { simd::dot_generic::<S>(&go_blk[at.clone()], &out_blk[at]) };
        }
        if packed {
            pack_panel(go_panel, go_blk, out_at.row, 0, d, rows, width, 1.0);
        }
        for (j0, cols) in blk.key_tiles(dims) {
            let (k_blk, v_blk) = (kv_at.rows(call.k, dims, bh, j0, cols), kv_at.rows(call.v, dims, bh, j0, cols));
            let (pt, dst) = (&mut p_tile[..cols * width], &mut ds_tile[..cols * width]);
            let lead = blk.causal_lead(dims, j0, cols);
            // SAFETY: the caller's ISA.
            unsafe {
                // Pᵀ[c, r] = e^(k_c · scale·q_r - lse_r), masked entries 0.
                blk.scores::<S, MR, NV>(pt, dims, (k_blk, kv_at.row), j0, cols, q_panel);
                probs_from_lse::<S>(pt, &blk, dims, j0, lse_blk);
                // dPᵀ[c, r] = v_c · dout_r, then dSᵀ = Pᵀ ∘ (dPᵀ - δ_r) * scale in place.
                let skip = lead.map_or(Causal::Whole, Causal::KeysByQueries);
                scores::<S, MR, NV>(dst, width, (v_blk, kv_at.row), cols, d, (go_blk, out_at.row), rows, 1.0, go_panel, packed, skip);
            }
            // Chunks of rows a key comes after: dS = 0 (their dP is unset, and P is 0 there).
            for (c, (ds_row, p_row)) in dst.chunks_exact_mut(width).zip(pt.chunks_exact_mut(width)).enumerate() {
                let first = blk.first_row(dims, j0, c);
                ds_row[..first].fill(0.0);
                match &call.dropout {
                    None => {
                        for ((x, &pj), &dr) in ds_row[first..rows].iter_mut().zip(&p_row[first..rows]).zip(&delta[first..rows]) {
                            *x = pj * (*x - dr) * scale;
                        }
                    }
                    Some(drop) => {
                        // dS = P ∘ (dP ∘ D - δ_r) * scale, then P becomes P ∘ D for dv.
                        for r in first..rows {
                            let factor = drop.mask.factor(drop.counter(bh, i0 + r, j0 + c));
                            ds_row[r] = p_row[r] * (ds_row[r] * factor - delta[r]) * scale;
                            p_row[r] *= factor;
                        }
                    }
                }
            }
            let (by_key, by_query) = match lead {
                Some(lead) => (Causal::KeysOverQueries(lead), Causal::QueriesOverKeys(lead)),
                None => (Causal::Whole, Causal::Whole),
            };
            // dv rows += Pᵀ · dout rows; dk rows += dSᵀ · q rows; dq rows += dS · k rows.
            // SAFETY: pt and dst hold cols x width (rows <= width), the row and key blocks rows
            // (cols) rows of d at their strides. Task bh alone writes pair bh's rows of dq, dk
            // and dv (raw pointers: in a packed layout other heads' rows lie between them, and
            // dq, dk, dv may be parts of one buffer), in bounds by the caller's asserts.
            unsafe {
                let (dv_rows, dk_rows) = (call.dv.0.add(kv_at.start(h, bh, j0)), call.dk.0.add(kv_at.start(h, bh, j0)));
                let dq_rows = call.dq.0.add(q_at.start(h, bh, i0));
                let kv_add = !overwrite || j0 < seen;
                product::<S, MR, NV>(cols, d, rows, pt.as_ptr(), width, 1, go_blk.as_ptr(), out_at.row, dv_rows, kv_at.row, kv_add, by_key);
                product::<S, MR, NV>(cols, d, rows, dst.as_ptr(), width, 1, q_blk.as_ptr(), q_at.row, dk_rows, kv_at.row, kv_add, by_key);
                product::<S, MR, NV>(rows, d, cols, dst.as_ptr(), 1, width, k_blk.as_ptr(), kv_at.row, dq_rows, q_at.row, dq_written, by_query);
            }
            dq_written = true;
        }
        if !dq_written {
            zero_rows(call.dq, q_at, i0, rows);
        }
    }
}

/// The three tasks compiled for one instruction set and register tile.
struct Tasks {
    forward: unsafe fn(&Forward, Range<usize>),
    probs: unsafe fn(&Probs, Range<usize>),
    backward: unsafe fn(&Backward, Range<usize>),
}

/// [`Tasks`] per instruction set and register tile (MR rows x NV vectors), each module
/// compiled with its features enabled so that the generic bodies inline into it. AVX-512 has
/// two: 4 x 4 zmm (one 64-float strip per row: v, k, q and dout rows of a 64-wide head in one
/// load each) for heads a multiple of 64, else 8 x 2 (32-float strips, so a 32-wide head still
/// gets 16 accumulators); AVX2 6 x 2 ymm (12 of its 16 registers), simd128 4 x 2, scalar 4 x 1.
/// Their strips must divide QUERY_BLOCK, the widest a transposed score tile gets.
macro_rules! tasks_for {
    ($( #[cfg($($cfg:tt)*)] $module:ident = $vec:ty, $mr:literal x $nv:literal $(, $feature:literal)?; )*) => {$(
        #[cfg($($cfg)*)]
        mod $module {
            use super::*;
            const _: () = assert!(QUERY_BLOCK.is_multiple_of($nv * <$vec as VecOps>::LANES));
            $(#[target_feature(enable = $feature)])?
            pub(super) unsafe fn forward(call: &Forward, items: Range<usize>) {
                let mut scratch = Scratch::new();
                for item in items {
                    // SAFETY: the dispatcher checked the ISA; the item contract is the caller's.
                    unsafe { forward_task::<$vec, $mr, $nv>(call, item, &mut scratch) }
                }
            }
            $(#[target_feature(enable = $feature)])?
            pub(super) unsafe fn probs(call: &Probs, items: Range<usize>) {
                let mut scratch = Scratch::new();
                for item in items {
                    // SAFETY: as above.
                    unsafe { probs_task::<$vec, $mr, $nv>(call, item, &mut scratch) }
                }
            }
            $(#[target_feature(enable = $feature)])?
            pub(super) unsafe fn backward(call: &Backward, items: Range<usize>) {
                let mut scratch = Scratch::new();
                for bh in items {
                    // SAFETY: as above.
                    unsafe { backward_task::<$vec, $mr, $nv>(call, bh, &mut scratch) }
                }
            }
            pub(super) const TASKS: Tasks = Tasks { forward, probs, backward };
        }
    )*};
}

tasks_for! {
    #[cfg(target_arch = "x86_64")]
    on_avx512 = simd::avx512::Avx512, 8 x 2, "avx512f";
    #[cfg(target_arch = "x86_64")]
    on_avx512_wide = simd::avx512::Avx512, 4 x 4, "avx512f";
    #[cfg(target_arch = "x86_64")]
    on_avx2 = simd::avx2::Avx2, 6 x 2, "avx2,fma";
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    on_wasm128 = simd::wasm128::Wasm128, 4 x 2;
    #[cfg(all())]
    on_scalar = simd::scalar::Scalar, 4 x 1;
}

/// Runs `run` over `items` split into consecutive runs, one on a single thread, else about
/// four per thread (enough for stealing to even out causal rows of unequal work), so that a
/// task's scratch is set up once per run rather than per item. Items are independent: the
/// split never changes results.
fn for_each_run(par: &dyn Parallel, items: usize, run: &(dyn Fn(Range<usize>) + Sync)) {
    let threads = par.threads().max(1);
    let per_run = if threads == 1 { items.max(1) } else { (items / (4 * threads)).max(1) };
    par.for_each(items.div_ceil(per_run), &|r| run(r * per_run..((r + 1) * per_run).min(items)));
}

/// The tasks of `isa` (which must be available here) for heads of size d (only AVX-512
/// picks its tile by d).
#[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))]
fn tasks(isa: Isa, d: usize) -> Tasks {
    assert!(isa.is_available(), "attention: {isa:?} is not available on this machine");
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 if d.is_multiple_of(64) => on_avx512_wide::TASKS,
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => on_avx512::TASKS,
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => on_avx2::TASKS,
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        Isa::Wasm128 => on_wasm128::TASKS,
        _ => on_scalar::TASKS,
    }
}

// ---- entry points -------------------------------------------------------------------------

/// q: [B, H, Tq, D], k, v: [B, H, Tk, D], out: [B, H, Tq, D], lse: [B, H, Tq] saved for
/// backward (log Σ_j e^(scaled score), -inf for a row with no key left). key_mask: [B, Tk],
/// 1 attend / 0 padding, or None. `causal` masks key j > query i (top-left aligned, as
/// PyTorch's is_causal). A query row with no key left gets zeros.
///
/// Per task (b, h, block of QUERY_BLOCK rows): online softmax over key tiles (see
/// `forward_task`); tiles past the causal diagonal or all padding are skipped.
///
/// Dropout p in [0, 1) on the weights (module docs): out = (P ∘ M / (1 - p)) · v, lse that
/// of P. p = 0 skips it.
#[allow(clippy::too_many_arguments)]
pub fn attention_forward(
    out: &mut [f32], lse: &mut [f32],
    q: &[f32], k: &[f32], v: &[f32], key_mask: Option<&[u8]>,
    b: usize, h: usize, tq: usize, tk: usize, d: usize, causal: bool, scale: f32,
    dropout_p: f32, seed: u32, offset: u32,
    par: &dyn Parallel,
) {
    attention_forward_with(Isa::detect(), out, lse, q, k, v, key_mask, b, h, tq, tk, d, causal, scale, dropout_p, seed, offset, par)
}

/// [`attention_forward`] on an explicit instruction set (tests, benchmarks); panics if `isa`
/// is not available here.
#[allow(clippy::too_many_arguments)]
pub fn attention_forward_with(
    isa: Isa, out: &mut [f32], lse: &mut [f32],
    q: &[f32], k: &[f32], v: &[f32], key_mask: Option<&[u8]>,
    b: usize, h: usize, tq: usize, tk: usize, d: usize, causal: bool, scale: f32,
    dropout_p: f32, seed: u32, offset: u32,
    par: &dyn Parallel,
) {
    assert_eq!(out.len(), q.len());
    let dims = Dims::heads(h, tq, tk, d, causal, scale);
    forward_in(isa, out, lse, (q, k, v), key_mask, b, dims, (dropout_p, seed, offset), par);
}

/// Self-attention on the packed projection: qkv [B, T, 3, H, D] holds q, k and v (x·W_qkvᵀ
/// reshaped, as nanoGPT's `c_attn` and PyTorch's packed `in_proj` give them), out is
/// [B, T, H, D] (the heads side by side, as the output projection reads them), lse
/// [B, H, T]. Otherwise [`attention_forward`] with Tq = Tk = T, the same bits.
#[allow(clippy::too_many_arguments)]
pub fn attention_packed_forward(
    out: &mut [f32], lse: &mut [f32], qkv: &[f32], key_mask: Option<&[u8]>,
    b: usize, h: usize, t: usize, d: usize, causal: bool, scale: f32,
    dropout_p: f32, seed: u32, offset: u32,
    par: &dyn Parallel,
) {
    attention_packed_forward_with(Isa::detect(), out, lse, qkv, key_mask, b, h, t, d, causal, scale, dropout_p, seed, offset, par)
}

/// [`attention_packed_forward`] on an explicit instruction set (tests).
#[allow(clippy::too_many_arguments)]
pub fn attention_packed_forward_with(
    isa: Isa, out: &mut [f32], lse: &mut [f32], qkv: &[f32], key_mask: Option<&[u8]>,
    b: usize, h: usize, t: usize, d: usize, causal: bool, scale: f32,
    dropout_p: f32, seed: u32, offset: u32,
    par: &dyn Parallel,
) {
    assert!(qkv.len() == 3 * b * t * h * d && out.len() == b * t * h * d);
    let dims = Dims::packed(h, t, d, causal, scale);
    forward_in(isa, out, lse, split_packed(qkv, h * d), key_mask, b, dims, (dropout_p, seed, offset), par);
}

/// q, k and v of a packed qkv [B, T, 3, H, D]: the buffer from each part's first float (the
/// layout's strides do the rest).
fn split_packed(qkv: &[f32], part: usize) -> (&[f32], &[f32], &[f32]) {
    if qkv.is_empty() {
        return (qkv, qkv, qkv);
    }
    (qkv, &qkv[part..], &qkv[2 * part..])
}

/// The forward pass on operands laid out as `dims` says.
#[allow(clippy::too_many_arguments)]
fn forward_in(
    isa: Isa, out: &mut [f32], lse: &mut [f32], (q, k, v): (&[f32], &[f32], &[f32]), key_mask: Option<&[u8]>,
    b: usize, dims: Dims, (dropout_p, seed, offset): (f32, u32, u32), par: &dyn Parallel,
) {
    let Dims { h, tq, tk, d, causal, .. } = dims;
    let tasks = tasks(isa, d);
    let dropout = WeightDropout::new(dropout_p, seed, offset, tq, tk);
    dims.assert_shapes(q, k, v, lse, key_mask, b);
    dims.out_at.assert_holds(out.len(), b, h, tq, d);
    let pairs = b * h;
    if pairs == 0 || tq == 0 {
        return;
    }
    // Two products: scores q·kᵀ and probabilities · v.
    let par = &parallel::for_work(par, products_flops(2, pairs, tq, tk, d, causal));
    let blocks = tq.div_ceil(QUERY_BLOCK);
    let call = Forward { out: SendPtr(out.as_mut_ptr()), lse: SendPtr(lse.as_mut_ptr()), q, k, v, key_mask, dims, dropout, blocks };
    // SAFETY: `tasks` checked the ISA; each item runs once, on its own rows.
    for_each_run(par, pairs * blocks, &|items| unsafe { (tasks.forward)(&call, items) });
}

/// The attention weights [B, H, Tq, Tk] of a forward pass, rebuilt from q, k and its lse:
/// for visualisation (attention maps); training never needs them.
#[allow(clippy::too_many_arguments)]
pub fn attention_probs(
    probs: &mut [f32], q: &[f32], k: &[f32], lse: &[f32], key_mask: Option<&[u8]>,
    b: usize, h: usize, tq: usize, tk: usize, d: usize, causal: bool, scale: f32,
    par: &dyn Parallel,
) {
    attention_probs_with(Isa::detect(), probs, q, k, lse, key_mask, b, h, tq, tk, d, causal, scale, par)
}

/// [`attention_probs`] on an explicit instruction set (tests); panics if `isa` is not
/// available here.
#[allow(clippy::too_many_arguments)]
pub fn attention_probs_with(
    isa: Isa, probs: &mut [f32], q: &[f32], k: &[f32], lse: &[f32], key_mask: Option<&[u8]>,
    b: usize, h: usize, tq: usize, tk: usize, d: usize, causal: bool, scale: f32,
    par: &dyn Parallel,
) {
    let tasks = tasks(isa, d);
    let dims = Dims::heads(h, tq, tk, d, causal, scale);
    dims.assert_shapes(q, k, k, lse, key_mask, b);
    assert_eq!(probs.len(), b * h * tq * tk);
    let pairs = b * h;
    if pairs == 0 || tq == 0 {
        return;
    }
    let par = &parallel::for_work(par, products_flops(1, pairs, tq, tk, d, causal));
    let blocks = tq.div_ceil(QUERY_BLOCK);
    let call = Probs { probs: SendPtr(probs.as_mut_ptr()), q, k, lse, key_mask, dims, blocks };
    // SAFETY: `tasks` checked the ISA; each item runs once, on its own rows.
    for_each_run(par, pairs * blocks, &|items| unsafe { (tasks.probs)(&call, items) });
}

/// Accumulates dq [B,H,Tq,D], dk [B,H,Tk,D], dv [B,H,Tk,D] from dout [B,H,Tq,D], given the
/// forward's inputs, its output `out` and `lse`, and the same masks.
///
/// Per (b, h) task (tasks own their dq/dk/dv slabs), per tile of keys x query rows:
/// P = e^(scaled masked q·k^T - lse) recomputed, dP = dout·v^T, then
/// dS = P ∘ (dP - δ) * scale with δ_r = dout_r · out_r (= Σ_j P_rj dP_rj), and three
/// accumulating products: dv += P^T·dout, dk += dS^T·q, dq += dS·k.
///
/// Dropout: the same p, seed and offset as forward. With D = M / (1 - p) (the same mask,
/// rebuilt per tile) and out = (P ∘ D) · v: dv += (P ∘ D)^T · dout; the gradient reaching P
/// is D ∘ (dout · v^T); and δ_r, which is Σ_j P_rj D_rj (dout_r · v_j) = dout_r · out_r, is
/// still the dot product of dout and out.
#[allow(clippy::too_many_arguments)]
pub fn attention_backward(
    dq: &mut [f32], dk: &mut [f32], dv: &mut [f32],
    dout: &[f32], q: &[f32], k: &[f32], v: &[f32], out: &[f32], lse: &[f32],
    key_mask: Option<&[u8]>,
    b: usize, h: usize, tq: usize, tk: usize, d: usize, causal: bool, scale: f32,
    dropout_p: f32, seed: u32, offset: u32,
    par: &dyn Parallel,
) {
    attention_backward_with(Isa::detect(), dq, dk, dv, dout, q, k, v, out, lse, key_mask, b, h, tq, tk, d, causal, scale, dropout_p, seed, offset, par)
}

/// [`attention_backward`] on an explicit instruction set (tests, benchmarks); panics if
/// `isa` is not available here.
#[allow(clippy::too_many_arguments)]
pub fn attention_backward_with(
    isa: Isa, dq: &mut [f32], dk: &mut [f32], dv: &mut [f32],
    dout: &[f32], q: &[f32], k: &[f32], v: &[f32], out: &[f32], lse: &[f32],
    key_mask: Option<&[u8]>,
    b: usize, h: usize, tq: usize, tk: usize, d: usize, causal: bool, scale: f32,
    dropout_p: f32, seed: u32, offset: u32,
    par: &dyn Parallel,
) {
    assert!(dq.len() == q.len() && dout.len() == q.len() && out.len() == q.len());
    assert!(dk.len() == k.len() && dv.len() == v.len());
    let grads = (SendPtr(dq.as_mut_ptr()), SendPtr(dk.as_mut_ptr()), SendPtr(dv.as_mut_ptr()));
    let dims = Dims::heads(h, tq, tk, d, causal, scale);
    backward_in(isa, (grads, false), dout, (q, k, v), out, lse, key_mask, b, dims, (dropout_p, seed, offset), par);
}

/// Backward of [`attention_packed_forward`]: accumulates dqkv [B, T, 3, H, D] from dout
/// [B, T, H, D], given qkv, the forward's out and lse, and the same masks; or, unless
/// `accumulate`, overwrites it (a gradient buffer nothing has written yet needs no zero fill).
/// Otherwise [`attention_backward`], the same bits.
#[allow(clippy::too_many_arguments)]
pub fn attention_packed_backward(
    dqkv: &mut [f32], dout: &[f32], qkv: &[f32], out: &[f32], lse: &[f32], key_mask: Option<&[u8]>,
    b: usize, h: usize, t: usize, d: usize, causal: bool, scale: f32,
    dropout_p: f32, seed: u32, offset: u32, accumulate: bool,
    par: &dyn Parallel,
) {
    attention_packed_backward_with(Isa::detect(), dqkv, dout, qkv, out, lse, key_mask, b, h, t, d, causal, scale, dropout_p, seed, offset, accumulate, par)
}

/// [`attention_packed_backward`] on an explicit instruction set (tests).
#[allow(clippy::too_many_arguments)]
pub fn attention_packed_backward_with(
    isa: Isa, dqkv: &mut [f32], dout: &[f32], qkv: &[f32], out: &[f32], lse: &[f32], key_mask: Option<&[u8]>,
    b: usize, h: usize, t: usize, d: usize, causal: bool, scale: f32,
    dropout_p: f32, seed: u32, offset: u32, accumulate: bool,
    par: &dyn Parallel,
) {
    assert!(qkv.len() == 3 * b * t * h * d && dqkv.len() == qkv.len());
    assert!(out.len() == b * t * h * d && dout.len() == out.len());
    // dq, dk and dv are the three parts of one buffer: pointers, no overlapping &mut slices.
    let base = dqkv.as_mut_ptr();
    let part = if dqkv.is_empty() { 0 } else { h * d };
    // SAFETY: part and 2·part are within dqkv when it is not empty (3·part <= its length).
    let grads = unsafe { (SendPtr(base), SendPtr(base.add(part)), SendPtr(base.add(2 * part))) };
    let dims = Dims::packed(h, t, d, causal, scale);
    backward_in(isa, (grads, !accumulate), dout, split_packed(qkv, h * d), out, lse, key_mask, b, dims, (dropout_p, seed, offset), par);
}

/// The backward pass on operands laid out as `dims` says; `grads` (dq, dk, dv) point at
/// buffers laid out as q, k and v, each at least as long as its operand's slice, written
/// instead of accumulated into when `overwrite`.
#[allow(clippy::too_many_arguments)]
fn backward_in(
    isa: Isa, ((dq, dk, dv), overwrite): ((SendPtr, SendPtr, SendPtr), bool), dout: &[f32], (q, k, v): (&[f32], &[f32], &[f32]),
    out: &[f32], lse: &[f32], key_mask: Option<&[u8]>, b: usize, dims: Dims, (dropout_p, seed, offset): (f32, u32, u32),
    par: &dyn Parallel,
) {
    let Dims { h, tq, tk, d, causal, .. } = dims;
    let tasks = tasks(isa, d);
    let dropout = WeightDropout::new(dropout_p, seed, offset, tq, tk);
    dims.assert_shapes(q, k, v, lse, key_mask, b);
    dims.out_at.assert_holds(out.len(), b, h, tq, d);
    dims.out_at.assert_holds(dout.len(), b, h, tq, d);
    let pairs = b * h;
    if pairs == 0 || tq == 0 || tk == 0 || d == 0 {
        return;
    }
    // Five products: scores recomputed, dP = dout·vᵀ, dv, dk and dq.
    let par = &parallel::for_work(par, products_flops(5, pairs, tq, tk, d, causal));
    let call = Backward { dq, dk, dv, dout, q, k, v, out, lse, key_mask, dims, dropout, overwrite };
    // SAFETY: `tasks` checked the ISA; each item runs once, on its own (b, h) rows.
    for_each_run(par, pairs, &|items| unsafe { (tasks.backward)(&call, items) });
}

