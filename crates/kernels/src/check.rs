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
