//! Length checks used by the shims before any kernel runs. Each returns a message naming
//! the op, the buffer and both lengths, which the shims turn into a JS RangeError (napi)
//! or a `last_error` string (wasm).

/// `Err("<op>: <name> has length <got>, expected <want>")` when `got != want`.
pub fn len(op: &str, name: &str, got: usize, want: usize) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{op}: {name} has length {got}, expected {want}"))
    }
}

/// Product of dimensions, or an error naming the op when it overflows usize.
pub fn product(op: &str, dims: &[usize]) -> Result<usize, String> {
    dims.iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| format!("{op}: size {dims:?} overflows"))
}

/// The activation of a fused linear call from its code (0 identity, 1 ReLU, 2 GELU, 3 GELU
/// tanh), with each optional buffer present exactly when that activation needs it: `buffers`
/// lists (name, present, needed by the GELUs only) -- `pre` in forward is for the GELUs only,
/// `dpre` and `saved` in backward for any activation but the identity.
pub fn linear_activation(op: &str, code: u32, buffers: &[(&str, bool, bool)])
    -> Result<crate::ops::linear::Activation, String> {
    use crate::ops::linear::Activation;
    let act = Activation::from_code(code)
        .ok_or_else(|| format!("{op}: activation code {code} is not 0 (identity), 1 (ReLU), 2 (GELU) or 3 (GELU tanh)"))?;
    for &(name, present, gelu_only) in buffers {
        let needed = if gelu_only { act.keeps_pre() } else { act != Activation::Identity };
        if present != needed {
            let verb = if needed { "is required" } else { "must be null" };
            return Err(format!("{op}: {name} {verb} with activation {act:?}"));
        }
    }
    Ok(act)
}
