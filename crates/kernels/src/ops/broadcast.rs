//! Elementwise binary ops with NumPy / PyTorch broadcasting, and `where`. The output is
//! contiguous [shape]; each input is read through its strides over that shape (0 on a dim it
//! broadcasts along, so one kernel covers every broadcast pattern and the 0-d scalar).
//! Backward accumulates each input's gradient through the same strides, which sums it over
//! the dims that input was broadcast along.

use super::strided::{check_view, walk};

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
#[inline]
fn nan_or(a: f32, b: f32, pick: f32) -> f32 {
    if a.is_nan() || b.is_nan() { f32::NAN } else { pick }
}

#[inline]
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
#[inline]
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

fn total(shape: &[i32]) -> usize {
    shape.iter().map(|&d| d.max(0) as usize).product()
}

/// out [shape] = a op b, a and b read through a_strides / b_strides over shape (0 where
/// broadcast). Comparisons write 1.0 / 0.0.
pub fn binary_forward(out: &mut [f32], a: &[f32], b: &[f32], shape: &[i32], a_strides: &[i32], b_strides: &[i32], op: u32) {
    let op = BinaryOp::from_code(op);
    assert_eq!(out.len(), total(shape), "binary_forward: out length");
    check_view("binary_forward a", a.len(), shape, a_strides, 0);
    check_view("binary_forward b", b.len(), shape, b_strides, 0);
    walk(shape, [a_strides, b_strides], [0, 0], |i, [ia, ib]| out[i] = apply(op, a[ia], b[ib]));
}

/// out [shape] (u8) = 1 where `a op b` holds, else 0, for a comparison op (Eq..Ge): PyTorch's
/// bool result, usable as a `where` / `masked_fill` mask.
pub fn compare_forward(out: &mut [u8], a: &[f32], b: &[f32], shape: &[i32], a_strides: &[i32], b_strides: &[i32], op: u32) {
    let op = BinaryOp::from_code(op);
    assert!((op as u32) >= BinaryOp::Eq as u32, "compare_forward: {op:?} is not a comparison");
    assert_eq!(out.len(), total(shape), "compare_forward: out length");
    check_view("compare_forward a", a.len(), shape, a_strides, 0);
    check_view("compare_forward b", b.len(), shape, b_strides, 0);
    walk(shape, [a_strides, b_strides], [0, 0], |i, [ia, ib]| out[i] = apply(op, a[ia], b[ib]) as u8);
}

/// Accumulates da += dL/da and db += dL/db (either may be absent), each summed over the dims
/// its strides broadcast (stride 0).
#[allow(clippy::too_many_arguments)]
pub fn binary_backward(
    mut da: Option<&mut [f32]>, mut db: Option<&mut [f32]>, dout: &[f32], a: &[f32], b: &[f32],
    shape: &[i32], a_strides: &[i32], b_strides: &[i32], op: u32,
) {
    let op = BinaryOp::from_code(op);
    assert_eq!(dout.len(), total(shape), "binary_backward: dout length");
    check_view("binary_backward a", a.len(), shape, a_strides, 0);
    check_view("binary_backward b", b.len(), shape, b_strides, 0);
    if let Some(da) = da.as_deref() {
        assert_eq!(da.len(), a.len(), "binary_backward: da length");
    }
    if let Some(db) = db.as_deref() {
        assert_eq!(db.len(), b.len(), "binary_backward: db length");
    }
    walk(shape, [a_strides, b_strides], [0, 0], |i, [ia, ib]| {
        let (ga, gb) = gradients(op, dout[i], a[ia], b[ib]);
        if let Some(da) = da.as_deref_mut() {
            da[ia] += ga;
        }
        if let Some(db) = db.as_deref_mut() {
            db[ib] += gb;
        }
    });
}

/// out [shape] = cond ? a : b (cond u8, nonzero = take a), each read through its strides.
/// Also masked_fill: a = x, b = the fill value as a 0-d tensor.
#[allow(clippy::too_many_arguments)]
pub fn where_forward(
    out: &mut [f32], cond: &[u8], a: &[f32], b: &[f32],
    shape: &[i32], cond_strides: &[i32], a_strides: &[i32], b_strides: &[i32],
) {
    assert_eq!(out.len(), total(shape), "where_forward: out length");
    check_view("where_forward cond", cond.len(), shape, cond_strides, 0);
    check_view("where_forward a", a.len(), shape, a_strides, 0);
    check_view("where_forward b", b.len(), shape, b_strides, 0);
    walk(shape, [cond_strides, a_strides, b_strides], [0, 0, 0], |i, [ic, ia, ib]| {
        out[i] = if cond[ic] != 0 { a[ia] } else { b[ib] };
    });
}

/// Accumulates dout into da where cond is set and into db elsewhere (either may be absent),
/// summed over broadcast dims.
#[allow(clippy::too_many_arguments)]
pub fn where_backward(
    mut da: Option<&mut [f32]>, mut db: Option<&mut [f32]>, dout: &[f32], cond: &[u8],
    shape: &[i32], cond_strides: &[i32], a_strides: &[i32], b_strides: &[i32],
) {
    assert_eq!(dout.len(), total(shape), "where_backward: dout length");
    check_view("where_backward cond", cond.len(), shape, cond_strides, 0);
    if let Some(da) = da.as_deref() {
        check_view("where_backward da", da.len(), shape, a_strides, 0);
    }
    if let Some(db) = db.as_deref() {
        check_view("where_backward db", db.len(), shape, b_strides, 0);
    }
    walk(shape, [cond_strides, a_strides, b_strides], [0, 0, 0], |i, [ic, ia, ib]| {
        if cond[ic] != 0 {
            if let Some(da) = da.as_deref_mut() {
                da[ia] += dout[i];
            }
        } else if let Some(db) = db.as_deref_mut() {
            db[ib] += dout[i];
        }
    });
}
