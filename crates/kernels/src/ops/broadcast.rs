//! Elementwise binary ops with NumPy / PyTorch broadcasting, and `where`. The output is
//! contiguous [shape]; each input is read through its strides over that shape (0 on a dim it
//! broadcasts along, so one kernel covers every broadcast pattern and the 0-d scalar).
//! Backward accumulates each input's gradient through the same strides, which sums it over
//! the dims that input was broadcast along.
//!
//! The walk goes run by run (`strided::Runs`: same-shape operands merge into one run, a
//! row broadcast [N, C] op [C] into N runs of C with the row re-read, a scalar operand into
//! runs with step 0), each op's run loops compiled separately so the contiguous ones
//! vectorise; every element is still computed by the same expression in the same order as
//! an element-by-element walk, so results do not depend on the layout or the thread count.

use super::strided::{check_view, Runs};
use crate::ops::elementwise::{for_blocks, SendMut, CHUNK, STREAM_FLOPS};
use crate::parallel::{Parallel, SendPtr};
use crate::simd;

/// The binary ops of [`binary_forward`]; the code is what the kernel table passes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum BinaryOp {
    Add = 0,
    Sub = 1,
    Mul = 2,
    Div = 3,
    Pow = 4,
    Maximum = 5,
    Minimum = 6,
    Eq = 7,
    Ne = 8,
    Lt = 9,
    Le = 10,
    Gt = 11,
    Ge = 12,
}

impl BinaryOp {
    pub fn from_code(code: u32) -> BinaryOp {
        use BinaryOp::*;
        const ALL: [BinaryOp; 13] = [Add, Sub, Mul, Div, Pow, Maximum, Minimum, Eq, Ne, Lt, Le, Gt, Ge];
        *ALL.get(code as usize).unwrap_or_else(|| panic!("binary op code {code} is not one of 0..13"))
    }
}

/// PyTorch's maximum / minimum: NaN in either operand gives NaN.
#[inline(always)]
fn nan_or(a: f32, b: f32, pick: f32) -> f32 {
    if a.is_nan() || b.is_nan() { f32::NAN } else { pick }
}

#[inline(always)]
fn apply(op: BinaryOp, a: f32, b: f32) -> f32 {
    use BinaryOp::*;
    let flag = |c: bool| if c { 1.0 } else { 0.0 };
    match op {
        Add => a + b,
        Sub => a - b,
        Mul => a * b,
        Div => a / b,
        Pow => a.powf(b),
        Maximum => nan_or(a, b, if a >= b { a } else { b }),
        Minimum => nan_or(a, b, if a <= b { a } else { b }),
        Eq => flag(a == b),
        Ne => flag(a != b),
        Lt => flag(a < b),
        Le => flag(a <= b),
        Gt => flag(a > b),
        Ge => flag(a >= b),
    }
}

/// (dL/da, dL/db) for one element given g = dL/dy, following PyTorch's derivatives.yaml:
/// maximum / minimum split g in half on ties; pow's exponent gradient is 0 where a == 0 and
/// b >= 0; its base gradient is 0 where b == 0; comparisons have no gradient.
#[inline(always)]
fn gradients(op: BinaryOp, g: f32, a: f32, b: f32) -> (f32, f32) {
    use BinaryOp::*;
    match op {
        Add => (g, g),
        Sub => (g, -g),
        Mul => (g * b, g * a),
        Div => (g / b, -g * a / (b * b)),
        Pow => {
            let da = if b == 0.0 { 0.0 } else { g * b * a.powf(b - 1.0) };
            let db = if a == 0.0 && b >= 0.0 { 0.0 } else { g * a.powf(b) * a.ln() };
            (da, db)
        }
        Maximum | Minimum => {
            let a_wins = if op == Maximum { a > b } else { a < b };
            if a == b {
                (0.5 * g, 0.5 * g)
            } else if a_wins {
                (g, 0.0)
            } else if a.is_nan() || b.is_nan() {
                (g, g) // the NaN flows back to both, as in PyTorch's masked formula
            } else {
                (0.0, g)
            }
        }
        Eq | Ne | Lt | Le | Gt | Ge => (0.0, 0.0),
    }
}

/// `body` with `$c` bound to `op` as a constant, so `apply` / `gradients` fold to one
/// operation inside each op's own copy of the loops.
macro_rules! with_op {
    ($op:expr, $c:ident => $body:expr) => {{
        use BinaryOp::*;
        match $op {
            Add => { const $c: BinaryOp = Add; $body }
            Sub => { const $c: BinaryOp = Sub; $body }
            Mul => { const $c: BinaryOp = Mul; $body }
            Div => { const $c: BinaryOp = Div; $body }
            Pow => { const $c: BinaryOp = Pow; $body }
            Maximum => { const $c: BinaryOp = Maximum; $body }
            Minimum => { const $c: BinaryOp = Minimum; $body }
            Eq => { const $c: BinaryOp = Eq; $body }
            Ne => { const $c: BinaryOp = Ne; $body }
            Lt => { const $c: BinaryOp = Lt; $body }
            Le => { const $c: BinaryOp = Le; $body }
            Gt => { const $c: BinaryOp = Gt; $body }
            Ge => { const $c: BinaryOp = Ge; $body }
        }
    }};
}

/// Position of element i of a run that starts at `base` with step `step`.
#[inline(always)]
fn at(base: usize, i: usize, step: isize) -> usize {
    (base as isize + i as isize * step) as usize
}

/// out[i] = f(a[ia + i*sa], b[ib + i*sb]) over one run, with contiguous and scalar operands
/// as separate loops (they vectorise).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn map_run<T>(out: &mut [T], a: &[f32], ia: usize, sa: isize, b: &[f32], ib: usize, sb: isize, f: impl Fn(f32, f32) -> T) {
    let n = out.len();
    match (sa, sb) {
        (1, 1) => {
            for ((o, &x), &y) in out.iter_mut().zip(&a[ia..ia + n]).zip(&b[ib..ib + n]) {
                *o = f(x, y);
            }
        }
        (1, 0) => {
            let y = b[ib];
            for (o, &x) in out.iter_mut().zip(&a[ia..ia + n]) {
                *o = f(x, y);
            }
        }
        (0, 1) => {
            let x = a[ia];
            for (o, &y) in out.iter_mut().zip(&b[ib..ib + n]) {
                *o = f(x, y);
            }
        }
        _ => {
            for (i, o) in out.iter_mut().enumerate() {
                *o = f(a[at(ia, i, sa)], b[at(ib, i, sb)]);
            }
        }
    }
}

/// out [shape] = a op b, a and b read through a_strides / b_strides over shape (0 where
/// broadcast). Comparisons write 1.0 / 0.0. Split over threads by output runs.
#[allow(clippy::too_many_arguments)]
pub fn binary_forward(out: &mut [f32], a: &[f32], b: &[f32], shape: &[i32], a_strides: &[i32], b_strides: &[i32], op: u32, par: &dyn Parallel) {
    let op = BinaryOp::from_code(op);
    let runs = Runs::new(shape, [a_strides, b_strides]);
    assert_eq!(out.len(), runs.total, "binary_forward: out length");
    check_view("binary_forward a", a.len(), shape, a_strides, 0);
    check_view("binary_forward b", b.len(), shape, b_strides, 0);
    let (len, [sa, sb]) = (runs.run_len(), runs.run_steps());
    let o = SendPtr(out.as_mut_ptr());
    with_op!(op, OP => runs.for_blocks(par, &|r0, r1| {
        runs.for_runs([0, 0], r0, r1, |run, [ia, ib]| {
            // SAFETY: output runs are disjoint and inside out.
            let dst = unsafe { o.slice_mut(run * len, len) };
            match (OP, sa, sb) {
                (Add, 1, 1) => simd::add_to(dst, &a[ia..ia + len], &b[ib..ib + len]),
                (Mul, 1, 1) => simd::mul_to(dst, &a[ia..ia + len], &b[ib..ib + len]),
                _ => map_run(dst, a, ia, sa, b, ib, sb, |x, y| apply(OP, x, y)),
            }
        });
    }))
}

/// out [shape] (u8) = 1 where `a op b` holds, else 0, for a comparison op (Eq..Ge): PyTorch's
/// bool result, usable as a `where` / `masked_fill` mask. Runs with contiguous or repeated
/// operands go through the SIMD comparison; split over threads by output runs, a long run
/// in pieces of CHUNK.
#[allow(clippy::too_many_arguments)]
pub fn compare_forward(out: &mut [u8], a: &[f32], b: &[f32], shape: &[i32], a_strides: &[i32], b_strides: &[i32], op: u32, par: &dyn Parallel) {
    let op = BinaryOp::from_code(op);
    let cmp = match op {
        BinaryOp::Eq => simd::Compare::Eq,
        BinaryOp::Ne => simd::Compare::Ne,
        BinaryOp::Lt => simd::Compare::Lt,
        BinaryOp::Le => simd::Compare::Le,
        BinaryOp::Gt => simd::Compare::Gt,
        BinaryOp::Ge => simd::Compare::Ge,
        _ => panic!("compare_forward: {op:?} is not a comparison"),
    };
    let runs = Runs::new(shape, [a_strides, b_strides]);
    assert_eq!(out.len(), runs.total, "compare_forward: out length");
    check_view("compare_forward a", a.len(), shape, a_strides, 0);
    check_view("compare_forward b", b.len(), shape, b_strides, 0);
    let (len, [sa, sb]) = (runs.run_len(), runs.run_steps());
    // Runs longer than CHUNK are cut into pieces, so that one long run (same shapes, a scalar
    // operand) splits over threads as well as many short ones.
    let per_run = len.div_ceil(CHUNK).max(1);
    let piece = len.div_ceil(per_run);
    let o = SendMut(out.as_mut_ptr());
    for_blocks(runs.runs() * per_run, CHUNK / piece.max(1), piece as u64 * STREAM_FLOPS, par, &|p0, np| {
        let p1 = p0 + np;
        runs.for_runs([0, 0], p0 / per_run, (p1 - 1) / per_run + 1, |run, [ia, ib]| {
            for p in (run * per_run).max(p0)..((run + 1) * per_run).min(p1) {
                let start = (p - run * per_run) * piece;
                let n = piece.min(len - start);
                // SAFETY: pieces are disjoint and inside out.
                let dst = unsafe { o.slice_mut(run * len + start, n) };
                let (ia, ib) = (at(ia, start, sa), at(ib, start, sb));
                if matches!(sa, 0 | 1) && matches!(sb, 0 | 1) {
                    // An operand with step 0 is its one repeated element.
                    let span = |step: isize| if step == 0 { 1 } else { n };
                    simd::compare_to(dst, &a[ia..ia + span(sa)], &b[ib..ib + span(sb)], cmp);
                } else {
                    with_op!(op, OP => map_run(dst, a, ia, sa, b, ib, sb, |x, y| apply(OP, x, y) as u8));
                }
            }
        });
    });
}

/// Accumulates da += dL/da and db += dL/db (either may be absent), each summed over the dims
/// its strides broadcast (stride 0), in the order of an element-by-element walk. Split over
/// threads when neither present gradient is broadcast (no two runs then meet).
#[allow(clippy::too_many_arguments)]
pub fn binary_backward(
    da: Option<&mut [f32]>, db: Option<&mut [f32]>, dout: &[f32], a: &[f32], b: &[f32],
    shape: &[i32], a_strides: &[i32], b_strides: &[i32], op: u32, par: &dyn Parallel,
) {
    let op = BinaryOp::from_code(op);
    let runs = Runs::new(shape, [a_strides, b_strides]);
    assert_eq!(dout.len(), runs.total, "binary_backward: dout length");
    check_view("binary_backward a", a.len(), shape, a_strides, 0);
    check_view("binary_backward b", b.len(), shape, b_strides, 0);
    if let Some(da) = da.as_deref() {
        assert_eq!(da.len(), a.len(), "binary_backward: da length");
    }
    if let Some(db) = db.as_deref() {
        assert_eq!(db.len(), b.len(), "binary_backward: db length");
    }
    let disjoint = (da.is_none() || runs.injective(0)) && (db.is_none() || runs.injective(1));
    let (len, [sa, sb]) = (runs.run_len(), runs.run_steps());
    let (pa, pb) = (da.map(|d| SendPtr(d.as_mut_ptr())), db.map(|d| SendPtr(d.as_mut_ptr())));
    let add_runs = |r0: usize, r1: usize| with_op!(op, OP => runs.for_runs([0, 0], r0, r1, |run, [ia, ib]| {
        let g = &dout[run * len..(run + 1) * len];
        // SAFETY (every slice below): inside da / db (check_view and the length asserts); tasks
        // run over disjoint runs of injective views (or on one thread).
        if (sa, sb) == (1, 1) {
            let (xa, xb) = (&a[ia..ia + len], &b[ib..ib + len]);
            match (pa, pb) {
                (Some(pa), Some(pb)) => {
                    let (da, db) = unsafe { (pa.slice_mut(ia, len), pb.slice_mut(ib, len)) };
                    for i in 0..len {
                        let (ga, gb) = gradients(OP, g[i], xa[i], xb[i]);
                        da[i] += ga;
                        db[i] += gb;
                    }
                }
                (Some(pa), None) => {
                    let da = unsafe { pa.slice_mut(ia, len) };
                    for i in 0..len {
                        da[i] += gradients(OP, g[i], xa[i], xb[i]).0;
                    }
                }
                (None, Some(pb)) => {
                    let db = unsafe { pb.slice_mut(ib, len) };
                    for i in 0..len {
                        db[i] += gradients(OP, g[i], xa[i], xb[i]).1;
                    }
                }
                (None, None) => {}
            }
        } else {
            for (i, &gi) in g.iter().enumerate() {
                let (ja, jb) = (at(ia, i, sa), at(ib, i, sb));
                let (ga, gb) = gradients(OP, gi, a[ja], b[jb]);
                if let Some(pa) = pa {
                    unsafe { pa.slice_mut(ja, 1)[0] += ga };
                }
                if let Some(pb) = pb {
                    unsafe { pb.slice_mut(jb, 1)[0] += gb };
                }
            }
        }
    }));
    if disjoint {
        runs.for_blocks(par, &add_runs);
    } else {
        add_runs(0, runs.runs());
    }
}

/// out [shape] = cond ? a : b (cond u8, nonzero = take a), each read through its strides.
/// Also masked_fill: a = x, b = the fill value as a 0-d tensor. Split over output runs.
#[allow(clippy::too_many_arguments)]
pub fn where_forward(
    out: &mut [f32], cond: &[u8], a: &[f32], b: &[f32],
    shape: &[i32], cond_strides: &[i32], a_strides: &[i32], b_strides: &[i32], par: &dyn Parallel,
) {
    let runs = Runs::new(shape, [cond_strides, a_strides, b_strides]);
    assert_eq!(out.len(), runs.total, "where_forward: out length");
    check_view("where_forward cond", cond.len(), shape, cond_strides, 0);
    check_view("where_forward a", a.len(), shape, a_strides, 0);
    check_view("where_forward b", b.len(), shape, b_strides, 0);
    let (len, [sc, sa, sb]) = (runs.run_len(), runs.run_steps());
    let o = SendPtr(out.as_mut_ptr());
    runs.for_blocks(par, &|r0, r1| {
        runs.for_runs([0, 0, 0], r0, r1, |run, [ic, ia, ib]| {
            // SAFETY: output runs are disjoint and inside out.
            let dst = unsafe { o.slice_mut(run * len, len) };
            for (i, d) in dst.iter_mut().enumerate() {
                *d = if cond[at(ic, i, sc)] != 0 { a[at(ia, i, sa)] } else { b[at(ib, i, sb)] };
            }
        });
    });
}

/// Accumulates dout into da where cond is set and into db elsewhere (either may be absent),
/// summed over broadcast dims in the order of an element-by-element walk.
#[allow(clippy::too_many_arguments)]
pub fn where_backward(
    mut da: Option<&mut [f32]>, mut db: Option<&mut [f32]>, dout: &[f32], cond: &[u8],
    shape: &[i32], cond_strides: &[i32], a_strides: &[i32], b_strides: &[i32],
) {
    let runs = Runs::new(shape, [cond_strides, a_strides, b_strides]);
    assert_eq!(dout.len(), runs.total, "where_backward: dout length");
    check_view("where_backward cond", cond.len(), shape, cond_strides, 0);
    if let Some(da) = da.as_deref() {
        check_view("where_backward da", da.len(), shape, a_strides, 0);
    }
    if let Some(db) = db.as_deref() {
        check_view("where_backward db", db.len(), shape, b_strides, 0);
    }
    let (len, [sc, sa, sb]) = (runs.run_len(), runs.run_steps());
    runs.for_runs([0, 0, 0], 0, runs.runs(), |run, [ic, ia, ib]| {
        for (i, &g) in dout[run * len..(run + 1) * len].iter().enumerate() {
            if cond[at(ic, i, sc)] != 0 {
                if let Some(da) = da.as_deref_mut() {
                    da[at(ia, i, sa)] += g;
                }
            } else if let Some(db) = db.as_deref_mut() {
                db[at(ib, i, sb)] += g;
            }
        }
    });
}
