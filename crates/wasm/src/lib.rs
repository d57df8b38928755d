//! The WebAssembly shim: one `extern "C"` export per kernel of `ferroformer_kernels`, over
//! buffers that ts/backend/wasm.ts allocated in linear memory with [`ff_alloc`].
//!
//! Every kernel export takes each buffer as (pointer, length in elements) followed by the
//! kernel's scalar arguments, and returns a status: 0 ok, 1 rejected. Before any kernel runs,
//! the shim checks every buffer against the dimensions (with `ferroformer_kernels::check`),
//! against linear memory, its alignment, and that no output overlaps another buffer; it also
//! checks the values a kernel would otherwise panic on (ids, targets, ranges). A rejected call
//! leaves its message in `ff_last_error_ptr/len`. This matters because the module is built
//! with `panic = "abort"`: a panic would trap and could leave the allocator half-updated, so
//! bad arguments must be refused here, never discovered inside a kernel.
//!
//! Dimensions and lengths are `usize` (32 bits on wasm32, an i32 on the JS side); booleans are
//! i32 (0 false); a null pointer (0) stands for an absent optional buffer (`None`).
//!
//! Two builds of this crate: plain simd128 (kernels on the calling thread), and with
//! `+atomics` over a shared, imported memory, where kernels split work across Web Workers
//! through [`pool`] (the `ff_set_workers` / `ff_worker_run` exports).

// One safety contract for every export, stated above: non-null pointers come from
// `ff_alloc` with at least the lengths given. Repeating it on ~30 exports says nothing more.
#![allow(clippy::missing_safety_doc)]

use std::alloc::{alloc, alloc_zeroed, dealloc, Layout};
use std::cell::RefCell;

use ferroformer_kernels::{check, ops, optim, Parallel};

#[cfg(any(target_feature = "atomics", test))]
mod pool;

/// Bumped whenever an export's signature changes, so the loader can refuse a stale module.
const ABI_VERSION: u32 = 1;

const OK: i32 = 0;
const REJECTED: i32 = 1;

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

fn set_error(message: String) {
    LAST_ERROR.with(|e| *e.borrow_mut() = message);
}

#[no_mangle]
pub extern "C" fn ff_abi_version() -> u32 {
    ABI_VERSION
}

/// Address of the UTF-8 message of the last rejected call (valid until the next call).
#[no_mangle]
pub extern "C" fn ff_last_error_ptr() -> *const u8 {
    LAST_ERROR.with(|e| e.borrow().as_ptr())
}

/// Byte length of that message; 0 when the last call succeeded.
#[no_mangle]
pub extern "C" fn ff_last_error_len() -> usize {
    LAST_ERROR.with(|e| e.borrow().len())
}

// ---- memory ------------------------------------------------------------------------------

/// Zero-filled allocation of `bytes` bytes; 0 on failure (message in last_error). A zero-size
/// request gets a dangling, aligned, non-null pointer (Rust's convention), so that 0 keeps
/// meaning "absent" in the kernel exports.
#[no_mangle]
pub extern "C" fn ff_alloc(bytes: usize, align: usize) -> *mut u8 {
    allocate(bytes, align, true)
}

/// [`ff_alloc`] without the zero-fill (a reused block keeps stale bytes): for outputs the
/// next kernel overwrites entirely, and for storage filled from JS at once.
#[no_mangle]
pub extern "C" fn ff_alloc_uninit(bytes: usize, align: usize) -> *mut u8 {
    allocate(bytes, align, false)
}

fn allocate(bytes: usize, align: usize, zeroed: bool) -> *mut u8 {
    set_error(String::new());
    let layout = match Layout::from_size_align(bytes, align) {
        Ok(layout) => layout,
        Err(_) => {
            set_error(format!("alloc: invalid layout, {bytes} bytes aligned to {align}"));
            return std::ptr::null_mut();
        }
    };
    if bytes == 0 {
        return align as *mut u8;
    }
    // SAFETY: the layout has a non-zero size.
    let ptr = unsafe { if zeroed { alloc_zeroed(layout) } else { alloc(layout) } };
    if ptr.is_null() {
        set_error(format!("alloc: out of memory allocating {bytes} bytes"));
    }
    ptr
}

/// Returns memory from [`ff_alloc`]; `bytes` and `align` must be the ones it was given.
///
/// # Safety
/// `ptr` must come from `ff_alloc(bytes, align)` and not have been freed already.
#[no_mangle]
pub unsafe extern "C" fn ff_free(ptr: *mut u8, bytes: usize, align: usize) {
    if bytes == 0 || ptr.is_null() {
        return;
    }
    if let Ok(layout) = Layout::from_size_align(bytes, align) {
        dealloc(ptr, layout);
    }
}

// ---- threads -------------------------------------------------------------------------------

/// Estimated flops below which a kernel call runs on the calling thread.
#[no_mangle]
pub extern "C" fn ff_min_parallel_flops() -> f64 {
    ferroformer_kernels::parallel::min_parallel_flops() as f64
}

/// Sets that threshold (0 splits every call); JS checks the value.
#[no_mangle]
pub extern "C" fn ff_set_min_parallel_flops(flops: f64) {
    ferroformer_kernels::parallel::set_min_parallel_flops(flops as u64);
}

// ---- threads (threaded build only) ---------------------------------------------------------

/// Sets how many workers take part in kernels and returns the epoch to start them with.
#[cfg(target_feature = "atomics")]
#[no_mangle]
pub extern "C" fn ff_set_workers(workers: usize) -> u32 {
    pool::set_workers(workers)
}

/// How many tasks workers (not the calling thread) have run so far.
#[cfg(target_feature = "atomics")]
#[no_mangle]
pub extern "C" fn ff_worker_tasks() -> usize {
    pool::worker_tasks()
}

/// Entered by each Web Worker once its instance is set up; returns when the worker retires.
#[cfg(target_feature = "atomics")]
#[no_mangle]
pub extern "C" fn ff_worker_run(id: usize, epoch: u32) {
    pool::worker_run(id, epoch)
}

// ---- argument checking -------------------------------------------------------------------

/// Most buffers any kernel takes (attention_backward has 10).
const MAX_BUFFERS: usize = 10;

/// The buffers of one call, checked as they are taken.
struct Buffers {
    op: &'static str,
    /// (name, first byte, byte length, is an output)
    taken: [(&'static str, usize, usize, bool); MAX_BUFFERS],
    count: usize,
}

impl Buffers {
    fn new(op: &'static str) -> Self {
        Buffers { op, taken: [("", 0, 0, false); MAX_BUFFERS], count: 0 }
    }

    /// Product of dimensions, refused when it overflows.
    fn size(&self, dims: &[usize]) -> Result<usize, String> {
        check::product(self.op, dims)
    }

    fn fail<T>(&self, message: String) -> Result<T, String> {
        Err(format!("{}: {message}", self.op))
    }

    /// Checks (ptr, len) and records it; returns the pointer to build the slice from.
    fn take<T>(&mut self, name: &'static str, ptr: *const T, len: usize, want: usize, output: bool)
        -> Result<*mut T, String> {
        check::len(self.op, name, len, want)?;
        let Some(bytes) = len.checked_mul(std::mem::size_of::<T>()) else {
            return self.fail(format!("{name} of {len} elements overflows"));
        };
        let start = ptr as usize;
        if start == 0 {
            return self.fail(format!("{name} is a null pointer"));
        }
        if !start.is_multiple_of(std::mem::align_of::<T>()) {
            return self.fail(format!("{name} at {start:#x} is not aligned to {}", std::mem::align_of::<T>()));
        }
        let end = start.checked_add(bytes);
        if end.is_none_or(|end| end > memory_bytes()) {
            return self.fail(format!("{name} ({bytes} bytes at {start:#x}) lies outside linear memory ({} bytes)", memory_bytes()));
        }
        // The kernels take `&mut` outputs next to `&` inputs, which must never alias.
        for &(other, other_start, other_bytes, other_output) in &self.taken[..self.count] {
            let overlaps = start < other_start + other_bytes && other_start < start + bytes;
            if overlaps && (output || other_output) {
                return self.fail(format!("{name} overlaps {other}"));
            }
        }
        if self.count == MAX_BUFFERS {
            return self.fail(format!("more than {MAX_BUFFERS} buffers"));
        }
        self.taken[self.count] = (name, start, bytes, output);
        self.count += 1;
        Ok(ptr as *mut T)
    }

    /// # Safety
    /// `ptr` must point at memory from `ff_alloc` that nothing else uses during the call.
    unsafe fn input<'a, T>(&mut self, name: &'static str, ptr: *const T, len: usize, want: usize)
        -> Result<&'a [T], String> {
        if len == 0 && want == 0 {
            return Ok(&[]);
        }
        let ptr = self.take(name, ptr, len, want, false)?;
        Ok(std::slice::from_raw_parts(ptr, len))
    }

    /// # Safety
    /// As [`Buffers::input`].
    unsafe fn output<'a, T>(&mut self, name: &'static str, ptr: *mut T, len: usize, want: usize)
        -> Result<&'a mut [T], String> {
        if len == 0 && want == 0 {
            return Ok(&mut []);
        }
        let ptr = self.take(name, ptr, len, want, true)?;
        Ok(std::slice::from_raw_parts_mut(ptr, len))
    }

    /// A null pointer means None.
    unsafe fn optional_input<'a, T>(&mut self, name: &'static str, ptr: *const T, len: usize, want: usize)
        -> Result<Option<&'a [T]>, String> {
        if ptr.is_null() { Ok(None) } else { self.input(name, ptr, len, want).map(Some) }
    }

    /// A null pointer means None.
    unsafe fn optional_output<'a, T>(&mut self, name: &'static str, ptr: *mut T, len: usize, want: usize)
        -> Result<Option<&'a mut [T]>, String> {
        if ptr.is_null() { Ok(None) } else { self.output(name, ptr, len, want).map(Some) }
    }
}

/// Current size of linear memory; buffers must lie inside it. Saturates: a full 4 GiB memory
/// has one byte more than a wasm32 usize can count.
#[cfg(target_arch = "wasm32")]
fn memory_bytes() -> usize {
    core::arch::wasm32::memory_size::<0>().saturating_mul(65536)
}

/// Off wasm (the shim's own unit tests) there is no linear memory to bound pointers by.
#[cfg(not(target_arch = "wasm32"))]
fn memory_bytes() -> usize {
    usize::MAX
}

/// Runs one export's checks and kernel call, turning a refusal into a status and a message.
fn run(op: &'static str, body: impl FnOnce(&mut Buffers) -> Result<(), String>) -> i32 {
    set_error(String::new());
    match body(&mut Buffers::new(op)) {
        Ok(()) => OK,
        Err(message) => {
            set_error(message);
            REJECTED
        }
    }
}

/// Single-threaded build: kernels run on the calling thread.
#[cfg(not(target_feature = "atomics"))]
fn par() -> &'static dyn Parallel {
    &ferroformer_kernels::Serial
}

/// Threaded build (shared memory): the calling thread plus the Web Workers in [`pool`].
#[cfg(target_feature = "atomics")]
fn par() -> &'static dyn Parallel {
    &pool::Pool
}

fn flag(value: i32) -> bool {
    value != 0
}

/// Embedding ids and cross-entropy targets index rows of a table: out of range would panic.
fn check_indices(op: &str, name: &str, ids: &[i32], rows: usize, allowed: Option<i32>) -> Result<(), String> {
    match ids.iter().position(|&id| Some(id) != allowed && (id < 0 || id as usize >= rows)) {
        None => Ok(()),
        Some(i) => Err(format!("{op}: {name}[{i}] = {} is outside [0, {rows})", ids[i])),
    }
}

/// Rows of a [rows, dim] table stored in `len` elements.
fn table_rows(op: &str, name: &str, len: usize, dim: usize) -> Result<usize, String> {
    if dim == 0 || !len.is_multiple_of(dim) {
        return Err(format!("{op}: {name} has length {len}, not a multiple of dim {dim}"));
    }
    Ok(len / dim)
}

fn check_dropout_p(op: &str, p: f32) -> Result<(), String> {
    if (0.0..1.0).contains(&p) { Ok(()) } else { Err(format!("{op}: p = {p} is outside [0, 1)")) }
}

// ---- kernels -----------------------------------------------------------------------------
// Each export: size the buffers from the dimensions, take every buffer, call the kernel.

#[no_mangle]
pub unsafe extern "C" fn ff_matmul_forward(
    out: *mut f32, out_len: usize, a: *const f32, a_len: usize, b: *const f32, b_len: usize,
    batch: usize, m: usize, k: usize, n: usize, trans_a: i32, trans_b: i32, accumulate: i32,
) -> i32 {
    run("matmul_forward", |c| {
        let out = c.output("out", out, out_len, c.size(&[batch, m, n])?)?;
        let a = c.input("a", a, a_len, c.size(&[batch, m, k])?)?;
        let b = c.input("b", b, b_len, c.size(&[batch, k, n])?)?;
        ops::matmul::matmul_forward(out, a, b, batch, m, k, n, flag(trans_a), flag(trans_b), flag(accumulate), par());
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn ff_matmul_backward(
    da: *mut f32, da_len: usize, db: *mut f32, db_len: usize, dout: *const f32, dout_len: usize,
    a: *const f32, a_len: usize, b: *const f32, b_len: usize,
    batch: usize, m: usize, k: usize, n: usize, trans_a: i32, trans_b: i32,
) -> i32 {
    run("matmul_backward", |c| {
        let (a_size, b_size) = (c.size(&[batch, m, k])?, c.size(&[batch, k, n])?);
        let da = c.optional_output("da", da, da_len, a_size)?;
        let db = c.optional_output("db", db, db_len, b_size)?;
        let dout = c.input("dout", dout, dout_len, c.size(&[batch, m, n])?)?;
        let a = c.input("a", a, a_len, a_size)?;
        let b = c.input("b", b, b_len, b_size)?;
        ops::matmul::matmul_backward(da, db, dout, a, b, batch, m, k, n, flag(trans_a), flag(trans_b), par());
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn ff_softmax_forward(
    out: *mut f32, out_len: usize, inp: *const f32, inp_len: usize, mask: *const u8, mask_len: usize,
    rows: usize, cols: usize,
) -> i32 {
    run("softmax_forward", |c| {
        let size = c.size(&[rows, cols])?;
        let out = c.output("out", out, out_len, size)?;
        let inp = c.input("inp", inp, inp_len, size)?;
        let mask = c.optional_input("mask", mask, mask_len, size)?;
        ops::softmax::softmax_forward(out, inp, mask, rows, cols);
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn ff_softmax_backward(
    dinp: *mut f32, dinp_len: usize, dout: *const f32, dout_len: usize, out: *const f32, out_len: usize,
    rows: usize, cols: usize,
) -> i32 {
    run("softmax_backward", |c| {
        let size = c.size(&[rows, cols])?;
        let dinp = c.output("dinp", dinp, dinp_len, size)?;
        let dout = c.input("dout", dout, dout_len, size)?;
        let out = c.input("out", out, out_len, size)?;
        ops::softmax::softmax_backward(dinp, dout, out, rows, cols);
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn ff_layernorm_forward(
    out: *mut f32, out_len: usize, mean: *mut f32, mean_len: usize, rstd: *mut f32, rstd_len: usize,
    inp: *const f32, inp_len: usize, weight: *const f32, weight_len: usize, bias: *const f32, bias_len: usize,
    rows: usize, dim: usize, eps: f32,
) -> i32 {
    run("layernorm_forward", |c| {
        let size = c.size(&[rows, dim])?;
        let out = c.output("out", out, out_len, size)?;
        let mean = c.output("mean", mean, mean_len, rows)?;
        let rstd = c.output("rstd", rstd, rstd_len, rows)?;
        let inp = c.input("inp", inp, inp_len, size)?;
        let weight = c.input("weight", weight, weight_len, dim)?;
        let bias = c.input("bias", bias, bias_len, dim)?;
        ops::layernorm::layernorm_forward(out, mean, rstd, inp, weight, bias, rows, dim, eps);
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn ff_layernorm_backward(
    dinp: *mut f32, dinp_len: usize, dweight: *mut f32, dweight_len: usize, dbias: *mut f32, dbias_len: usize,
    dout: *const f32, dout_len: usize, inp: *const f32, inp_len: usize, weight: *const f32, weight_len: usize,
    mean: *const f32, mean_len: usize, rstd: *const f32, rstd_len: usize, rows: usize, dim: usize,
) -> i32 {
    run("layernorm_backward", |c| {
        let size = c.size(&[rows, dim])?;
        let dinp = c.output("dinp", dinp, dinp_len, size)?;
        let dweight = c.output("dweight", dweight, dweight_len, dim)?;
        let dbias = c.output("dbias", dbias, dbias_len, dim)?;
        let dout = c.input("dout", dout, dout_len, size)?;
        let inp = c.input("inp", inp, inp_len, size)?;
        let weight = c.input("weight", weight, weight_len, dim)?;
        let mean = c.input("mean", mean, mean_len, rows)?;
        let rstd = c.input("rstd", rstd, rstd_len, rows)?;
        ops::layernorm::layernorm_backward(dinp, dweight, dbias, dout, inp, weight, mean, rstd, rows, dim);
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn ff_attention_forward(
    out: *mut f32, out_len: usize, lse: *mut f32, lse_len: usize,
    q: *const f32, q_len: usize, k: *const f32, k_len: usize, v: *const f32, v_len: usize,
    key_mask: *const u8, key_mask_len: usize,
    b: usize, h: usize, tq: usize, tk: usize, d: usize, causal: i32, scale: f32,
) -> i32 {
    run("attention_forward", |c| {
        let (q_size, kv_size) = (c.size(&[b, h, tq, d])?, c.size(&[b, h, tk, d])?);
        let out = c.output("out", out, out_len, q_size)?;
        let lse = c.output("lse", lse, lse_len, c.size(&[b, h, tq])?)?;
        let q = c.input("q", q, q_len, q_size)?;
        let k = c.input("k", k, k_len, kv_size)?;
        let v = c.input("v", v, v_len, kv_size)?;
        let key_mask = c.optional_input("key_mask", key_mask, key_mask_len, c.size(&[b, tk])?)?;
        ops::attention::attention_forward(out, lse, q, k, v, key_mask, b, h, tq, tk, d, flag(causal), scale, par());
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn ff_attention_probs(
    probs: *mut f32, probs_len: usize, q: *const f32, q_len: usize, k: *const f32, k_len: usize,
    lse: *const f32, lse_len: usize, key_mask: *const u8, key_mask_len: usize,
    b: usize, h: usize, tq: usize, tk: usize, d: usize, causal: i32, scale: f32,
) -> i32 {
    run("attention_probs", |c| {
        let probs = c.output("probs", probs, probs_len, c.size(&[b, h, tq, tk])?)?;
        let q = c.input("q", q, q_len, c.size(&[b, h, tq, d])?)?;
        let k = c.input("k", k, k_len, c.size(&[b, h, tk, d])?)?;
        let lse = c.input("lse", lse, lse_len, c.size(&[b, h, tq])?)?;
        let key_mask = c.optional_input("key_mask", key_mask, key_mask_len, c.size(&[b, tk])?)?;
        ops::attention::attention_probs(probs, q, k, lse, key_mask, b, h, tq, tk, d, flag(causal), scale, par());
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn ff_attention_backward(
    dq: *mut f32, dq_len: usize, dk: *mut f32, dk_len: usize, dv: *mut f32, dv_len: usize,
    dout: *const f32, dout_len: usize, q: *const f32, q_len: usize, k: *const f32, k_len: usize,
    v: *const f32, v_len: usize, out: *const f32, out_len: usize, lse: *const f32, lse_len: usize,
    key_mask: *const u8, key_mask_len: usize,
    b: usize, h: usize, tq: usize, tk: usize, d: usize, causal: i32, scale: f32,
) -> i32 {
    run("attention_backward", |c| {
        let (q_size, kv_size) = (c.size(&[b, h, tq, d])?, c.size(&[b, h, tk, d])?);
        let dq = c.output("dq", dq, dq_len, q_size)?;
        let dk = c.output("dk", dk, dk_len, kv_size)?;
        let dv = c.output("dv", dv, dv_len, kv_size)?;
        let dout = c.input("dout", dout, dout_len, q_size)?;
        let q = c.input("q", q, q_len, q_size)?;
        let k = c.input("k", k, k_len, kv_size)?;
        let v = c.input("v", v, v_len, kv_size)?;
        let out = c.input("out", out, out_len, q_size)?;
        let lse = c.input("lse", lse, lse_len, c.size(&[b, h, tq])?)?;
        let key_mask = c.optional_input("key_mask", key_mask, key_mask_len, c.size(&[b, tk])?)?;
        ops::attention::attention_backward(
            dq, dk, dv, dout, q, k, v, out, lse, key_mask, b, h, tq, tk, d, flag(causal), scale, par());
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn ff_linear_forward(
    out: *mut f32, out_len: usize, pre: *mut f32, pre_len: usize, x: *const f32, x_len: usize,
    weight: *const f32, weight_len: usize, bias: *const f32, bias_len: usize,
    rows: usize, in_f: usize, out_f: usize, activation: u32,
) -> i32 {
    run("linear_forward", |c| {
        let act = check::linear_activation(c.op, activation, &[("pre", !pre.is_null(), true)])?;
        let out_size = c.size(&[rows, out_f])?;
        let out = c.output("out", out, out_len, out_size)?;
        let pre = c.optional_output("pre", pre, pre_len, out_size)?;
        let x = c.input("x", x, x_len, c.size(&[rows, in_f])?)?;
        let weight = c.input("weight", weight, weight_len, c.size(&[out_f, in_f])?)?;
        let bias = c.optional_input("bias", bias, bias_len, out_f)?;
        ops::linear::linear_forward(out, pre, x, weight, bias, rows, in_f, out_f, act, par());
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn ff_linear_backward(
    dx: *mut f32, dx_len: usize, dweight: *mut f32, dweight_len: usize, dbias: *mut f32, dbias_len: usize,
    dpre: *mut f32, dpre_len: usize, dout: *const f32, dout_len: usize, x: *const f32, x_len: usize,
    weight: *const f32, weight_len: usize, saved: *const f32, saved_len: usize,
    rows: usize, in_f: usize, out_f: usize, activation: u32,
) -> i32 {
    run("linear_backward", |c| {
        let act = check::linear_activation(c.op, activation,
            &[("dpre", !dpre.is_null(), false), ("saved", !saved.is_null(), false)])?;
        let (x_size, w_size, out_size) = (c.size(&[rows, in_f])?, c.size(&[out_f, in_f])?, c.size(&[rows, out_f])?);
        let dx = c.optional_output("dx", dx, dx_len, x_size)?;
        let dweight = c.optional_output("dweight", dweight, dweight_len, w_size)?;
        let dbias = c.optional_output("dbias", dbias, dbias_len, out_f)?;
        let dpre = c.optional_output("dpre", dpre, dpre_len, out_size)?.unwrap_or(&mut []);
        let dout = c.input("dout", dout, dout_len, out_size)?;
        let x = c.input("x", x, x_len, x_size)?;
        let weight = c.input("weight", weight, weight_len, w_size)?;
        let saved = c.optional_input("saved", saved, saved_len, out_size)?.unwrap_or(&[]);
        ops::linear::linear_backward(dx, dweight, dbias, dpre, dout, x, weight, saved, rows, in_f, out_f, act, par());
        Ok(())
    })
}

// Pointwise kernels: every buffer has the length of the first one.

#[no_mangle]
pub unsafe extern "C" fn ff_relu_forward(out: *mut f32, out_len: usize, inp: *const f32, inp_len: usize) -> i32 {
    run("relu_forward", |c| {
        let out = c.output("out", out, out_len, out_len)?;
        let inp = c.input("inp", inp, inp_len, out_len)?;
        ops::activation::relu_forward(out, inp);
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn ff_relu_backward(
    dinp: *mut f32, dinp_len: usize, dout: *const f32, dout_len: usize, inp: *const f32, inp_len: usize,
) -> i32 {
    run("relu_backward", |c| {
        let dinp = c.output("dinp", dinp, dinp_len, dinp_len)?;
        let dout = c.input("dout", dout, dout_len, dinp_len)?;
        let inp = c.input("inp", inp, inp_len, dinp_len)?;
        ops::activation::relu_backward(dinp, dout, inp);
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn ff_gelu_forward(out: *mut f32, out_len: usize, inp: *const f32, inp_len: usize) -> i32 {
    run("gelu_forward", |c| {
        let out = c.output("out", out, out_len, out_len)?;
        let inp = c.input("inp", inp, inp_len, out_len)?;
        ops::activation::gelu_forward(out, inp);
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn ff_gelu_backward(
    dinp: *mut f32, dinp_len: usize, dout: *const f32, dout_len: usize, inp: *const f32, inp_len: usize,
) -> i32 {
    run("gelu_backward", |c| {
        let dinp = c.output("dinp", dinp, dinp_len, dinp_len)?;
        let dout = c.input("dout", dout, dout_len, dinp_len)?;
        let inp = c.input("inp", inp, inp_len, dinp_len)?;
        ops::activation::gelu_backward(dinp, dout, inp);
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn ff_gelu_tanh_forward(out: *mut f32, out_len: usize, inp: *const f32, inp_len: usize) -> i32 {
    run("gelu_tanh_forward", |c| {
        let out = c.output("out", out, out_len, out_len)?;
        let inp = c.input("inp", inp, inp_len, out_len)?;
        ops::activation::gelu_tanh_forward(out, inp);
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn ff_gelu_tanh_backward(
    dinp: *mut f32, dinp_len: usize, dout: *const f32, dout_len: usize, inp: *const f32, inp_len: usize,
) -> i32 {
    run("gelu_tanh_backward", |c| {
        let dinp = c.output("dinp", dinp, dinp_len, dinp_len)?;
        let dout = c.input("dout", dout, dout_len, dinp_len)?;
        let inp = c.input("inp", inp, inp_len, dinp_len)?;
        ops::activation::gelu_tanh_backward(dinp, dout, inp);
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn ff_embedding_forward(
    out: *mut f32, out_len: usize, ids: *const i32, ids_len: usize, table: *const f32, table_len: usize, dim: usize,
) -> i32 {
    run("embedding_forward", |c| {
        let vocab = table_rows(c.op, "table", table_len, dim)?;
        let out = c.output("out", out, out_len, c.size(&[ids_len, dim])?)?;
        let ids = c.input("ids", ids, ids_len, ids_len)?;
        let table = c.input("table", table, table_len, table_len)?;
        check_indices(c.op, "ids", ids, vocab, None)?;
        ops::embedding::embedding_forward(out, ids, table, dim);
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn ff_embedding_backward(
    dtable: *mut f32, dtable_len: usize, dout: *const f32, dout_len: usize, ids: *const i32, ids_len: usize, dim: usize,
) -> i32 {
    run("embedding_backward", |c| {
        let vocab = table_rows(c.op, "dtable", dtable_len, dim)?;
        let dtable = c.output("dtable", dtable, dtable_len, dtable_len)?;
        let dout = c.input("dout", dout, dout_len, c.size(&[ids_len, dim])?)?;
        let ids = c.input("ids", ids, ids_len, ids_len)?;
        check_indices(c.op, "ids", ids, vocab, None)?;
        ops::embedding::embedding_backward(dtable, dout, ids, dim);
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn ff_cross_entropy_forward(
    loss: *mut f32, loss_len: usize, lse: *mut f32, lse_len: usize, logits: *const f32, logits_len: usize,
    targets: *const i32, targets_len: usize, rows: usize, vocab: usize, ignore_index: i32, label_smoothing: f32,
) -> i32 {
    run("cross_entropy_forward", |c| {
        let loss = c.output("loss", loss, loss_len, 1)?;
        let lse = c.output("lse", lse, lse_len, rows)?;
        let logits = c.input("logits", logits, logits_len, c.size(&[rows, vocab])?)?;
        let targets = c.input("targets", targets, targets_len, rows)?;
        check_indices(c.op, "targets", targets, vocab, Some(ignore_index))?;
        ops::cross_entropy::cross_entropy_forward(loss, lse, logits, targets, rows, vocab, ignore_index, label_smoothing);
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn ff_cross_entropy_backward(
    dlogits: *mut f32, dlogits_len: usize, dloss: *const f32, dloss_len: usize, logits: *const f32, logits_len: usize,
    lse: *const f32, lse_len: usize, targets: *const i32, targets_len: usize,
    rows: usize, vocab: usize, ignore_index: i32, label_smoothing: f32,
) -> i32 {
    run("cross_entropy_backward", |c| {
        let size = c.size(&[rows, vocab])?;
        let dlogits = c.output("dlogits", dlogits, dlogits_len, size)?;
        let dloss = c.input("dloss", dloss, dloss_len, 1)?;
        let logits = c.input("logits", logits, logits_len, size)?;
        let lse = c.input("lse", lse, lse_len, rows)?;
        let targets = c.input("targets", targets, targets_len, rows)?;
        check_indices(c.op, "targets", targets, vocab, Some(ignore_index))?;
        ops::cross_entropy::cross_entropy_backward(dlogits, dloss, logits, lse, targets, rows, vocab, ignore_index, label_smoothing);
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn ff_dropout_forward(
    out: *mut f32, out_len: usize, keep: *mut u8, keep_len: usize, inp: *const f32, inp_len: usize,
    p: f32, seed: u32, offset: u32,
) -> i32 {
    run("dropout_forward", |c| {
        check_dropout_p(c.op, p)?;
        let out = c.output("out", out, out_len, out_len)?;
        let keep = c.output("keep", keep, keep_len, out_len)?;
        let inp = c.input("inp", inp, inp_len, out_len)?;
        ops::dropout::dropout_forward(out, keep, inp, p, seed, offset);
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn ff_dropout_backward(
    dinp: *mut f32, dinp_len: usize, dout: *const f32, dout_len: usize, keep: *const u8, keep_len: usize, p: f32,
) -> i32 {
    run("dropout_backward", |c| {
        check_dropout_p(c.op, p)?;
        let dinp = c.output("dinp", dinp, dinp_len, dinp_len)?;
        let dout = c.input("dout", dout, dout_len, dinp_len)?;
        let keep = c.input("keep", keep, keep_len, dinp_len)?;
        ops::dropout::dropout_backward(dinp, dout, keep, p);
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn ff_add_forward(
    out: *mut f32, out_len: usize, a: *const f32, a_len: usize, b: *const f32, b_len: usize,
) -> i32 {
    run("add_forward", |c| {
        let out = c.output("out", out, out_len, out_len)?;
        let a = c.input("a", a, a_len, out_len)?;
        let b = c.input("b", b, b_len, out_len)?;
        ops::elementwise::add_forward(out, a, b);
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn ff_accumulate(dst: *mut f32, dst_len: usize, src: *const f32, src_len: usize, alpha: f32) -> i32 {
    run("accumulate", |c| {
        let dst = c.output("dst", dst, dst_len, dst_len)?;
        let src = c.input("src", src, src_len, dst_len)?;
        ops::elementwise::accumulate(dst, src, alpha);
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn ff_scale_forward(out: *mut f32, out_len: usize, inp: *const f32, inp_len: usize, s: f32) -> i32 {
    run("scale_forward", |c| {
        let out = c.output("out", out, out_len, out_len)?;
        let inp = c.input("inp", inp, inp_len, out_len)?;
        ops::elementwise::scale_forward(out, inp, s);
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn ff_scale_inplace(x: *mut f32, x_len: usize, s: f32) -> i32 {
    run("scale_inplace", |c| {
        let x = c.output("x", x, x_len, x_len)?;
        ops::elementwise::scale_inplace(x, s);
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn ff_mul_forward(
    out: *mut f32, out_len: usize, a: *const f32, a_len: usize, b: *const f32, b_len: usize,
) -> i32 {
    run("mul_forward", |c| {
        let out = c.output("out", out, out_len, out_len)?;
        let a = c.input("a", a, a_len, out_len)?;
        let b = c.input("b", b, b_len, out_len)?;
        ops::elementwise::mul_forward(out, a, b);
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn ff_bias_add_forward(
    out: *mut f32, out_len: usize, inp: *const f32, inp_len: usize, bias: *const f32, bias_len: usize,
    rows: usize, cols: usize,
) -> i32 {
    run("bias_add_forward", |c| {
        let size = c.size(&[rows, cols])?;
        let out = c.output("out", out, out_len, size)?;
        let inp = c.input("inp", inp, inp_len, size)?;
        let bias = c.input("bias", bias, bias_len, cols)?;
        ops::elementwise::bias_add_forward(out, inp, bias, rows, cols);
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn ff_bias_add_backward(
    dbias: *mut f32, dbias_len: usize, dout: *const f32, dout_len: usize, rows: usize, cols: usize,
) -> i32 {
    run("bias_add_backward", |c| {
        let dbias = c.output("dbias", dbias, dbias_len, cols)?;
        let dout = c.input("dout", dout, dout_len, c.size(&[rows, cols])?)?;
        ops::elementwise::bias_add_backward(dbias, dout, rows, cols);
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn ff_transpose12_forward(
    out: *mut f32, out_len: usize, inp: *const f32, inp_len: usize, a: usize, b: usize, cc: usize, d: usize,
) -> i32 {
    run("transpose12_forward", |c| {
        let size = c.size(&[a, b, cc, d])?;
        let out = c.output("out", out, out_len, size)?;
        let inp = c.input("inp", inp, inp_len, size)?;
        ops::elementwise::transpose12_forward(out, inp, a, b, cc, d);
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn ff_transpose12_backward(
    dinp: *mut f32, dinp_len: usize, dout: *const f32, dout_len: usize, a: usize, b: usize, cc: usize, d: usize,
) -> i32 {
    run("transpose12_backward", |c| {
        let size = c.size(&[a, b, cc, d])?;
        let dinp = c.output("dinp", dinp, dinp_len, size)?;
        let dout = c.input("dout", dout, dout_len, size)?;
        ops::elementwise::transpose12_backward(dinp, dout, a, b, cc, d);
        Ok(())
    })
}

/// `start + len` must stay within `dim`, or the kernel would slice past the axis.
fn check_narrow(op: &str, dim: usize, start: usize, len: usize) -> Result<(), String> {
    match start.checked_add(len) {
        Some(end) if end <= dim => Ok(()),
        _ => Err(format!("{op}: start {start} + len {len} exceeds dim {dim}")),
    }
}

#[no_mangle]
pub unsafe extern "C" fn ff_narrow_forward(
    out: *mut f32, out_len: usize, inp: *const f32, inp_len: usize,
    outer: usize, dim: usize, inner: usize, start: usize, len: usize,
) -> i32 {
    run("narrow_forward", |c| {
        check_narrow(c.op, dim, start, len)?;
        let out = c.output("out", out, out_len, c.size(&[outer, len, inner])?)?;
        let inp = c.input("inp", inp, inp_len, c.size(&[outer, dim, inner])?)?;
        ops::elementwise::narrow_forward(out, inp, outer, dim, inner, start, len);
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn ff_narrow_backward(
    dinp: *mut f32, dinp_len: usize, dout: *const f32, dout_len: usize,
    outer: usize, dim: usize, inner: usize, start: usize, len: usize,
) -> i32 {
    run("narrow_backward", |c| {
        check_narrow(c.op, dim, start, len)?;
        let dinp = c.output("dinp", dinp, dinp_len, c.size(&[outer, dim, inner])?)?;
        let dout = c.input("dout", dout, dout_len, c.size(&[outer, len, inner])?)?;
        ops::elementwise::narrow_backward(dinp, dout, outer, dim, inner, start, len);
        Ok(())
    })
}

/// Returns the sum of squares, or NaN with a non-empty last_error when the buffer is refused
/// (a NaN sum with an empty last_error is a genuine NaN in the data).
#[no_mangle]
pub unsafe extern "C" fn ff_sum_squares(x: *const f32, x_len: usize) -> f64 {
    let mut sum = f64::NAN;
    run("sum_squares", |c| {
        let x = c.input("x", x, x_len, x_len)?;
        sum = ops::elementwise::sum_squares(x);
        Ok(())
    });
    sum
}

#[no_mangle]
pub unsafe extern "C" fn ff_adam_update(
    param: *mut f32, param_len: usize, m: *mut f32, m_len: usize, v: *mut f32, v_len: usize,
    grad: *const f32, grad_len: usize,
    lr: f32, beta1: f32, beta2: f32, eps: f32, weight_decay: f32, step: u32, decoupled: i32,
) -> i32 {
    run("adam_update", |c| {
        if step == 0 {
            return c.fail("step is 1-based, got 0".to_string());
        }
        let param = c.output("param", param, param_len, param_len)?;
        let m = c.output("m", m, m_len, param_len)?;
        let v = c.output("v", v, v_len, param_len)?;
        let grad = c.input("grad", grad, grad_len, param_len)?;
        optim::adam::adam_update(param, m, v, grad, lr, beta1, beta2, eps, weight_decay, step, flag(decoupled));
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn last_error() -> String {
        LAST_ERROR.with(|e| e.borrow().clone())
    }

    #[test]
    fn a_short_buffer_is_refused_with_the_op_and_lengths() {
        let (mut out, a, b) = (vec![0f32; 4], vec![0f32; 6], vec![0f32; 12]);
        let status = unsafe {
            ff_matmul_forward(out.as_mut_ptr(), 4, a.as_ptr(), 6, b.as_ptr(), 12, 1, 2, 6, 2, 0, 0, 0)
        };
        assert_eq!(status, REJECTED);
        assert_eq!(last_error(), "matmul_forward: a has length 6, expected 12");
    }

    #[test]
    fn an_output_overlapping_an_input_is_refused() {
        let mut x = vec![0f32; 8];
        let status = unsafe { ff_add_forward(x.as_mut_ptr(), 4, x.as_ptr().add(2), 4, x.as_ptr(), 4) };
        assert_eq!(status, REJECTED);
        assert_eq!(last_error(), "add_forward: a overlaps out");
    }

    #[test]
    fn overflowing_dimensions_are_refused() {
        let status = unsafe {
            ff_matmul_forward(std::ptr::null_mut(), 0, std::ptr::null(), 0, std::ptr::null(), 0,
                usize::MAX, 2, 2, 2, 0, 0, 0)
        };
        assert_eq!(status, REJECTED);
        assert!(last_error().starts_with("matmul_forward: size"), "{}", last_error());
    }

    #[test]
    fn out_of_range_ids_and_targets_are_refused() {
        let (mut out, ids, table) = (vec![0f32; 4], vec![0i32, 3], vec![0f32; 6]);
        let status = unsafe { ff_embedding_forward(out.as_mut_ptr(), 4, ids.as_ptr(), 2, table.as_ptr(), 6, 2) };
        assert_eq!(status, REJECTED);
        assert_eq!(last_error(), "embedding_forward: ids[1] = 3 is outside [0, 3)");

        let (mut loss, mut lse, logits, targets) = (vec![0f32; 1], vec![0f32; 2], vec![0f32; 6], vec![-100i32, 5]);
        let status = unsafe {
            ff_cross_entropy_forward(loss.as_mut_ptr(), 1, lse.as_mut_ptr(), 2, logits.as_ptr(), 6,
                targets.as_ptr(), 2, 2, 3, -100, 0.0)
        };
        assert_eq!(status, REJECTED);
        assert_eq!(last_error(), "cross_entropy_forward: targets[1] = 5 is outside [0, 3)");
    }

    #[test]
    fn alloc_zero_fills_and_zero_bytes_is_not_null() {
        let ptr = ff_alloc(64, 4);
        assert!(!ptr.is_null());
        assert!(unsafe { std::slice::from_raw_parts(ptr, 64) }.iter().all(|&b| b == 0));
        unsafe { ff_free(ptr, 64, 4) };
        assert_eq!(ff_alloc(0, 4) as usize, 4);
        assert!(ff_alloc(4, 3).is_null());
        assert_eq!(last_error(), "alloc: invalid layout, 4 bytes aligned to 3");
    }
}
