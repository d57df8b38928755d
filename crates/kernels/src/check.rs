//! The checks both shims (crates/node, crates/wasm) run before any kernel, in the order the
//! generated exports call them (scripts/gen-kernels.mjs): derived dims, scalar values, buffer
//! lengths, overlaps, then the values inside buffers (ids). Each failure is a message naming
//! the op and the values, which the napi shim throws as a RangeError and the wasm shim leaves
//! in `last_error` (ts/backend/check.ts mirrors these messages for the reference backend).

use crate::ops::linear::Activation;
use crate::ops::strided::MAX_DIMS;

pub type Checked<T = ()> = Result<T, String>;

/// `"<op>: <name> has length <got>, expected <want>"` unless `got == want`.
pub fn len(op: &str, name: &str, got: usize, want: usize) -> Checked {
    if got == want {
        Ok(())
    } else {
        Err(format!("{op}: {name} has length {got}, expected {want}"))
    }
}

/// Product of dimensions, or an error naming the op when it overflows usize.
pub fn product(op: &str, dims: &[usize]) -> Checked<usize> {
    dims.iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| format!("{op}: size {dims:?} overflows"))
}

/// Rows of a [rows, dim] table stored in `len` elements (an embedding table's vocabulary).
pub fn rows(op: &str, name: &str, len: usize, dim: usize) -> Checked<usize> {
    if dim == 0 || !len.is_multiple_of(dim) {
        return Err(format!("{op}: {name} has length {len}, not a multiple of dim {dim}"));
    }
    Ok(len / dim)
}

/// Every id is a row of a table with `rows` rows, or equals `ignore` (cross-entropy's
/// ignore_index): the kernels index with ids, and a wrong one would read another row.
pub fn ids(op: &str, name: &str, ids: &[i32], rows: usize, ignore: Option<i32>) -> Checked {
    match ids.iter().position(|&id| Some(id) != ignore && (id < 0 || id as usize >= rows)) {
        Some(i) => Err(format!("{op}: {name}[{i}] = {} is outside [0, {rows})", ids[i])),
        None => Ok(()),
    }
}

/// A contiguous buffer of `len` elements laid out as the i32 `shape` (a strided kernel's
/// output): non-negative dims, at most [`MAX_DIMS`] of them, `len` elements in all.
pub fn shape_len(op: &str, name: &str, got: usize, shape: &[i32]) -> Checked {
    if shape.len() > MAX_DIMS {
        return Err(format!("{op}: shape {shape:?} has {} dims, at most {MAX_DIMS}", shape.len()));
    }
    if shape.iter().any(|&d| d < 0) {
        return Err(format!("{op}: shape {shape:?} has a negative dim"));
    }
    let want = shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d as usize));
    let want = want.ok_or_else(|| format!("{op}: size {shape:?} overflows"))?;
    len(op, name, got, want)
}

/// Every element of the view (shape, strides, offset) of a buffer of `len` elements lies
/// inside it (shape already checked by [`shape_len`]).
pub fn view(op: &str, name: &str, len: usize, shape: &[i32], strides: &[i32], offset: i32) -> Checked {
    if shape.contains(&0) {
        return Ok(());
    }
    let (mut lo, mut hi) = (offset as i64, offset as i64);
    for (&d, &s) in shape.iter().zip(strides) {
        let span = (d as i64 - 1) * s as i64;
        if span < 0 { lo += span } else { hi += span }
    }
    if lo >= 0 && hi < len as i64 {
        Ok(())
    } else {
        Err(format!("{op}: the view of {name} (shape {shape:?}, strides {strides:?}, offset {offset}) reaches [{lo}, {hi}], outside its {len} elements"))
    }
}

/// `start + len <= dim` (narrow), or the kernel would slice past the axis.
pub fn within(op: &str, start: usize, len: usize, dim: usize) -> Checked {
    match start.checked_add(len) {
        Some(end) if end <= dim => Ok(()),
        _ => Err(format!("{op}: start {start} + len {len} exceeds dim {dim}")),
    }
}

/// A drop probability in [0, 1): p = 1 would scale the kept elements by 1 / 0.
pub fn probability(op: &str, name: &str, p: f32) -> Checked {
    if (0.0..1.0).contains(&p) { Ok(()) } else { Err(format!("{op}: {name} = {p} is outside [0, 1)")) }
}

/// Adam's step counts updates from 1 (bias correction divides by 1 - beta^step).
pub fn step(op: &str, step: u32) -> Checked {
    if step >= 1 { Ok(()) } else { Err(format!("{op}: step is 1-based, got {step}")) }
}

/// Which activations need an optional buffer of a fused linear call.
#[derive(Clone, Copy)]
pub enum NeededBy {
    /// The GELUs only, whose backward reads the derivative forward saves (`act_grad`).
    Gelu,
    /// Every activation but the identity (backward's `dpre` and `saved`).
    Any,
}

/// The activation of a fused linear call from its code (0 identity, 1 ReLU, 2 GELU, 3 GELU
/// tanh), with each optional buffer (name, present, needed by) present exactly when the
/// activation needs it.
pub fn linear_activation(op: &str, code: u32, buffers: &[(&str, bool, NeededBy)]) -> Checked<Activation> {
    let act = Activation::from_code(code)
        .ok_or_else(|| format!("{op}: activation code {code} is not 0 (identity), 1 (ReLU), 2 (GELU) or 3 (GELU tanh)"))?;
    for &(name, present, needed_by) in buffers {
        let needed = match needed_by {
            NeededBy::Gelu => act.saves_act_grad(),
            NeededBy::Any => act != Activation::Identity,
        };
        if present != needed {
            let verb = if needed { "is required" } else { "must be null" };
            return Err(format!("{op}: {name} {verb} with activation {}", activation_name(act)));
        }
    }
    Ok(act)
}

/// The activation's name in the JavaScript API.
fn activation_name(act: Activation) -> &'static str {
    match act {
        Activation::Identity => "identity",
        Activation::Relu => "relu",
        Activation::Gelu => "gelu",
        Activation::GeluTanh => "gelu_tanh",
    }
}

/// A buffer's bytes in memory and whether the kernel writes through them.
#[derive(Clone, Copy)]
pub struct Region {
    pub name: &'static str,
    pub start: usize,
    pub end: usize,
    pub written: bool,
}

impl Region {
    pub fn of<T>(name: &'static str, slice: &[T], written: bool) -> Region {
        let start = slice.as_ptr() as usize;
        Region { name, start, end: start + std::mem::size_of_val(slice), written }
    }
}

/// Refuses a written buffer that overlaps another buffer of the call (absent ones are None,
/// empty ones have no bytes to share):
/// the kernels take `&mut` outputs next to `&` inputs, which must never alias. Inputs may
/// share memory with each other (`mul_forward(out, x, x)`).
pub fn disjoint(op: &str, regions: &[Option<Region>]) -> Checked {
    for (i, a) in regions.iter().enumerate() {
        for b in &regions[i + 1..] {
            if let (Some(a), Some(b)) = (a, b) {
                if (a.written || b.written) && a.start < a.end && b.start < b.end && a.start < b.end && b.start < a.end {
                    return Err(format!("{op}: {} and {} overlap; an output must not share memory with another buffer", a.name, b.name));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_op_and_values() {
        assert_eq!(len("addForward", "a", 3, 4).unwrap_err(), "addForward: a has length 3, expected 4");
        assert_eq!(rows("embeddingForward", "table", 7, 2).unwrap_err(), "embeddingForward: table has length 7, not a multiple of dim 2");
        assert_eq!(ids("embeddingForward", "ids", &[0, 3], 3, None).unwrap_err(), "embeddingForward: ids[1] = 3 is outside [0, 3)");
        assert!(ids("crossEntropyForward", "targets", &[-100, 2], 3, Some(-100)).is_ok());
        assert_eq!(within("narrowForward", 3, 3, 5).unwrap_err(), "narrowForward: start 3 + len 3 exceeds dim 5");
        assert_eq!(probability("dropoutForward", "p", 1.0).unwrap_err(), "dropoutForward: p = 1 is outside [0, 1)");
        assert_eq!(step("adamUpdate", 0).unwrap_err(), "adamUpdate: step is 1-based, got 0");
        assert_eq!(
            linear_activation("linearForward", 1, &[("pre", true, NeededBy::Gelu)]).unwrap_err(),
            "linearForward: pre must be null with activation relu",
        );
        assert_eq!(
            linear_activation("linearForward", 3, &[("pre", false, NeededBy::Gelu)]).unwrap_err(),
            "linearForward: pre is required with activation gelu_tanh",
        );
        assert!(product("matmulForward", &[usize::MAX, 2]).unwrap_err().starts_with("matmulForward: size"));
    }

    #[test]
    fn only_a_written_buffer_may_not_overlap() {
        let x = [0f32; 8];
        let (a, b) = (Region::of("a", &x[..4], false), Region::of("b", &x[2..], false));
        assert!(disjoint("op", &[Some(a), Some(b), None]).is_ok());
        let out = Region { written: true, name: "out", ..b };
        assert_eq!(disjoint("op", &[Some(a), Some(out)]).unwrap_err(),
            "op: a and out overlap; an output must not share memory with another buffer");
    }
}
