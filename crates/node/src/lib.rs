//! napi-rs shim over `ferroformer-kernels`: one export per kernel, JS name in camelCase
//! (`matmul_forward` -> `matmulForward`).
//!
//! Every export follows the same three steps (the `kernel!` macro):
//! 1. check every buffer's length against the dimensions, that ids and ranges fit, and that
//!    no output shares memory with another buffer; a failure throws a JS `RangeError`
//!    naming the op and the sizes, before the kernel touches anything;
//! 2. run the kernel on the typed arrays' own memory (`&[f32]` / `&mut [f32]` borrowed from
//!    the JS `Float32Array` for the duration of the call: zero copy, nothing kept after
//!    return);
//! 3. catch a panic (a kernel bug, or a `todo!()` not yet filled in) and throw it as a JS
//!    `Error`, so an unwind never crosses the FFI boundary and the process stays usable.
//!
//! Aliasing: napi hands out `&mut [f32]` for an output and `&[f32]` for an input even when
//! JS passes the same buffer (or two views of one `ArrayBuffer`) for both. The TypeScript
//! backend never does; for direct callers step 1 refuses any output that overlaps another
//! buffer, so the kernel never sees aliased slices. Inputs may share memory with each other
//! (`mulForward(out, x, x)`).
//!
//! Threads: one global rayon pool, rebuilt by `setThreads(n)`. Kernels that split work get
//! it through [`RayonParallel`]; with one thread, or below the work threshold of
//! `parallel::for_work`, they run on the calling (JS) thread.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, PoisonError, RwLock};

use ferroformer_kernels::ops::{
    activation, attention, cross_entropy, dropout, elementwise, embedding, layernorm, linear,
    matmul, softmax,
};
use ferroformer_kernels::optim::adam;
use ferroformer_kernels::{check, parallel, Parallel, Serial};
use napi::{Env, Error, Result, Status};
use napi_derive::napi;
use rayon::prelude::*;

/// A typed array the kernel writes into, borrowed for the call. Spelled as an alias because
/// napi-derive reads a literal `&mut T` parameter as a class instance; through the alias
/// it takes napi's `FromNapiValue for &mut [T]` (the typed array's own memory, no copy).
type Out<'a, T> = &'a mut [T];

// ---- threads ---------------------------------------------------------------------------

/// `Parallel` over a rayon pool: every task index runs once on the pool, and the call
/// returns when all are done. A panic in a task resumes on the calling thread, where the
/// export's `catch_unwind` turns it into a JS Error.
struct RayonParallel<'a>(&'a rayon::ThreadPool);

impl Parallel for RayonParallel<'_> {
    fn threads(&self) -> usize {
        self.0.current_num_threads()
    }

    fn for_each(&self, tasks: usize, f: &(dyn Fn(usize) + Sync)) {
        match tasks {
            0 => {}
            // One task gains nothing from a hand-off to the pool.
            1 => f(0),
            _ => {
                // `install` from the JS thread runs every task on the pool's threads.
                WORKER_TASKS.fetch_add(tasks, Ordering::Relaxed);
                self.0.install(|| (0..tasks).into_par_iter().for_each(f))
            }
        }
    }
}

/// Tasks handed to the pool's threads so far: shows which calls left the calling thread.
static WORKER_TASKS: AtomicUsize = AtomicUsize::new(0);

/// Diagnostics: kernel tasks run by pool threads (not the calling thread) so far.
#[napi]
pub fn worker_tasks() -> f64 {
    WORKER_TASKS.load(Ordering::Relaxed) as f64
}

/// Estimated flops below which a kernel call runs on the calling thread (all backends).
#[napi]
pub fn get_min_parallel_flops() -> f64 {
    parallel::min_parallel_flops() as f64
}

/// Sets that threshold (0 splits every call; the benchmark's crossover row uses it).
#[napi]
pub fn set_min_parallel_flops(env: &Env, flops: f64) -> Result<()> {
    if !(flops.fract() == 0.0 && flops >= 0.0 && flops <= u64::MAX as f64) {
        return Err(range_error(env, format!("setMinParallelFlops: flops must be an integer >= 0, got {flops}")));
    }
    parallel::set_min_parallel_flops(flops as u64);
    Ok(())
}

/// The thread setting and, for more than one thread, its pool. Kernels clone the `Arc`
/// under a short read lock, so `setThreads` can swap the pool while a call on another
/// thread (a worker_threads Worker) still runs on the old one.
struct Threads {
    count: usize,
    pool: Option<Arc<rayon::ThreadPool>>,
}

impl Threads {
    fn new(count: usize) -> std::result::Result<Self, String> {
        // One thread runs on the caller: no pool, no cross-thread hand-off per kernel call.
        if count == 1 {
            return Ok(Threads { count, pool: None });
        }
        rayon::ThreadPoolBuilder::new()
            .num_threads(count)
            .thread_name(|i| format!("ferroformer-{i}"))
            .build()
            .map(|pool| Threads { count, pool: Some(Arc::new(pool)) })
            .map_err(|e| format!("setThreads: could not start {count} threads: {e}"))
    }
}

static THREADS: LazyLock<RwLock<Threads>> = LazyLock::new(|| {
    let available = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Starting threads can fail in a locked-down process; one thread always works.
    RwLock::new(Threads::new(available).unwrap_or(Threads { count: 1, pool: None }))
});

/// Upper bound for `setThreads`, far above any core count, so a stray large number fails
/// with a RangeError instead of trying to spawn that many OS threads.
const MAX_THREADS: usize = 1024;

/// Runs `f` with the current thread setting as a `&dyn Parallel`.
fn with_parallel<R>(f: impl FnOnce(&dyn Parallel) -> R) -> R {
    let pool = THREADS.read().unwrap_or_else(PoisonError::into_inner).pool.clone();
    match &pool {
        Some(pool) => f(&RayonParallel(pool)),
        None => f(&Serial),
    }
}

/// Worker threads used by matmul and attention.
#[napi]
pub fn get_threads() -> u32 {
    THREADS.read().unwrap_or_else(PoisonError::into_inner).count as u32
}

/// Sets the worker threads used by matmul and attention (an integer from 1 to 1024).
#[napi]
pub fn set_threads(env: &Env, n: f64) -> Result<()> {
    if !(n.fract() == 0.0 && n >= 1.0 && n <= MAX_THREADS as f64) {
        return Err(range_error(
            env,
            format!("setThreads: n must be an integer from 1 to {MAX_THREADS}, got {n}"),
        ));
    }
    let count = n as usize;
    if get_threads() as usize == count {
        return Ok(());
    }
    let threads = Threads::new(count).map_err(Error::from_reason)?;
    *THREADS.write().unwrap_or_else(PoisonError::into_inner) = threads;
    Ok(())
}

// ---- checks ----------------------------------------------------------------------------

/// A byte range of JS memory and whether the kernel writes through it.
struct Region {
    start: usize,
    end: usize,
    written: bool,
}

/// What the checks need from a borrowed typed array, or from an absent optional one.
trait Buffer {
    /// Element count; `None` for an absent optional buffer (nothing to check).
    fn elements(&self) -> Option<usize>;
    fn region(&self) -> Option<Region>;
}

fn region_of<T>(slice: &[T], written: bool) -> Region {
    let start = slice.as_ptr() as usize;
    Region { start, end: start + std::mem::size_of_val(slice), written }
}

impl<T> Buffer for &[T] {
    fn elements(&self) -> Option<usize> {
        Some(self.len())
    }
    fn region(&self) -> Option<Region> {
        Some(region_of(self, false))
    }
}

impl<T> Buffer for &mut [T] {
    fn elements(&self) -> Option<usize> {
        Some(self.len())
    }
    fn region(&self) -> Option<Region> {
        Some(region_of(self, true))
    }
}

impl<B: Buffer> Buffer for Option<B> {
    fn elements(&self) -> Option<usize> {
        self.as_ref().and_then(B::elements)
    }
    fn region(&self) -> Option<Region> {
        self.as_ref().and_then(B::region)
    }
}

/// `<op>: <name> has length <got>, expected <want>` unless the buffer holds `dims` elements.
fn expect_len(op: &str, name: &str, buf: &impl Buffer, dims: &[usize]) -> std::result::Result<(), String> {
    match buf.elements() {
        Some(got) => check::len(op, name, got, check::product(op, dims)?),
        None => Ok(()),
    }
}

/// Refuses an output that shares memory with any other buffer of the call.
fn expect_disjoint(op: &str, bufs: &[(&str, Option<Region>)]) -> std::result::Result<(), String> {
    for (i, (name_a, a)) in bufs.iter().enumerate() {
        for (name_b, b) in &bufs[i + 1..] {
            if let (Some(a), Some(b)) = (a, b) {
                if (a.written || b.written) && a.start < b.end && b.start < a.end {
                    return Err(format!("{op}: {name_a} and {name_b} share memory; an output must not overlap another buffer"));
                }
            }
        }
    }
    Ok(())
}

/// Every id is a row of a table with `rows` rows, or equals `ignore` (cross-entropy's
/// ignore_index): the kernels index with ids, and a wrong one would read another row.
fn expect_ids(op: &str, name: &str, ids: &[i32], rows: usize, ignore: Option<i32>) -> std::result::Result<(), String> {
    match ids.iter().position(|&id| Some(id) != ignore && (id < 0 || id as usize >= rows)) {
        Some(i) => Err(format!("{op}: {name}[{i}] = {} is out of range for {rows} rows", ids[i])),
        None => Ok(()),
    }
}

/// `start + len <= dim`, for narrow.
fn expect_within(op: &str, start: usize, len: usize, dim: usize) -> std::result::Result<(), String> {
    match start.checked_add(len) {
        Some(end) if end <= dim => Ok(()),
        _ => Err(format!("{op}: start {start} + len {len} exceeds dim {dim}")),
    }
}

/// Throws a RangeError into JS and returns the error that tells napi-rs one is pending
/// (a returned `Error` alone would reach JS as a plain `Error`).
fn range_error(env: &Env, message: String) -> Error {
    match env.throw_range_error(&message, None) {
        Ok(()) => Error::new(Status::PendingException, message),
        Err(_) => Error::new(Status::InvalidArg, message),
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("unknown panic")
}

/// The body of every export: the checks' verdict, then the kernel under `catch_unwind`.
fn run<R>(env: &Env, op: &str, checked: std::result::Result<(), String>, kernel: impl FnOnce() -> R) -> Result<R> {
    checked.map_err(|message| range_error(env, message))?;
    // AssertUnwindSafe: after a panic the only state left behind is the JS buffers, which
    // hold partial results the caller must discard anyway (the call threw).
    catch_unwind(AssertUnwindSafe(kernel)).map_err(|payload| {
        Error::new(Status::GenericFailure, format!("{op}: kernel panicked: {}", panic_message(&*payload)))
    })
}

/// `kernel!(env, "op", { buf: [dims..], .. } and { extra checks; .. } => call)`: checks each
/// buffer's length against the product of its dims (absent optional buffers skip), then the
/// extra checks (each a `Result<(), String>`), then that no output overlaps another buffer,
/// and runs `call` under `catch_unwind`.
macro_rules! kernel {
    ($env:expr, $op:literal,
     { $($buf:ident: [$($dim:expr),* $(,)?]),+ $(,)? }
     $(and { $($extra:expr);+ $(;)? })?
     => $call:expr) => {{
        let checked = (|| -> std::result::Result<(), String> {
            $( expect_len($op, stringify!($buf), &$buf, &[$($dim),*])?; )+
            $( $( $extra?; )+ )?
            expect_disjoint($op, &[$( (stringify!($buf), Buffer::region(&$buf)) ),+])
        })();
        run($env, $op, checked, || $call)
    }};
}

// Dimensions arrive as u32 (JS numbers; the TypeScript layer validates them as
// non-negative integers) and scalars as f64, narrowed to the kernels' f32.

// ---- matmul ----------------------------------------------------------------------------

#[napi]
#[allow(clippy::too_many_arguments)]
pub fn matmul_forward(
    env: &Env, out: Out<f32>, a: &[f32], b: &[f32], batch: u32, m: u32, k: u32, n: u32,
    trans_a: bool, trans_b: bool, accumulate: bool,
) -> Result<()> {
    let (batch, m, k, n) = (batch as usize, m as usize, k as usize, n as usize);
    kernel!(env, "matmulForward", { out: [batch, m, n], a: [batch, m, k], b: [batch, k, n] }
        => with_parallel(|par| matmul::matmul_forward(out, a, b, batch, m, k, n, trans_a, trans_b, accumulate, par)))
}

#[napi]
#[allow(clippy::too_many_arguments)]
pub fn matmul_backward(
    env: &Env, da: Option<&mut [f32]>, db: Option<&mut [f32]>, dout: &[f32], a: &[f32], b: &[f32],
    batch: u32, m: u32, k: u32, n: u32, trans_a: bool, trans_b: bool,
) -> Result<()> {
    let (batch, m, k, n) = (batch as usize, m as usize, k as usize, n as usize);
    kernel!(env, "matmulBackward", {
        da: [batch, m, k], db: [batch, k, n], dout: [batch, m, n], a: [batch, m, k], b: [batch, k, n]
    } => with_parallel(|par| matmul::matmul_backward(da, db, dout, a, b, batch, m, k, n, trans_a, trans_b, par)))
}

// ---- softmax, layernorm, attention -----------------------------------------------------

#[napi]
pub fn softmax_forward(env: &Env, out: Out<f32>, inp: &[f32], mask: Option<&[u8]>, rows: u32, cols: u32) -> Result<()> {
    let (rows, cols) = (rows as usize, cols as usize);
    kernel!(env, "softmaxForward", { out: [rows, cols], inp: [rows, cols], mask: [rows, cols] }
        => softmax::softmax_forward(out, inp, mask, rows, cols))
}

#[napi]
pub fn softmax_backward(env: &Env, dinp: Out<f32>, dout: &[f32], out: &[f32], rows: u32, cols: u32) -> Result<()> {
    let (rows, cols) = (rows as usize, cols as usize);
    kernel!(env, "softmaxBackward", { dinp: [rows, cols], dout: [rows, cols], out: [rows, cols] }
        => softmax::softmax_backward(dinp, dout, out, rows, cols))
}

#[napi]
#[allow(clippy::too_many_arguments)]
pub fn layernorm_forward(
    env: &Env, out: Out<f32>, mean: Out<f32>, rstd: Out<f32>, inp: &[f32], weight: &[f32],
    bias: &[f32], rows: u32, dim: u32, eps: f64,
) -> Result<()> {
    let (rows, dim) = (rows as usize, dim as usize);
    kernel!(env, "layernormForward", {
        out: [rows, dim], mean: [rows], rstd: [rows], inp: [rows, dim], weight: [dim], bias: [dim]
    } => layernorm::layernorm_forward(out, mean, rstd, inp, weight, bias, rows, dim, eps as f32))
}

#[napi]
#[allow(clippy::too_many_arguments)]
pub fn layernorm_backward(
    env: &Env, dinp: Out<f32>, dweight: Out<f32>, dbias: Out<f32>, dout: &[f32], inp: &[f32],
    weight: &[f32], mean: &[f32], rstd: &[f32], rows: u32, dim: u32,
) -> Result<()> {
    let (rows, dim) = (rows as usize, dim as usize);
    kernel!(env, "layernormBackward", {
        dinp: [rows, dim], dweight: [dim], dbias: [dim], dout: [rows, dim], inp: [rows, dim],
        weight: [dim], mean: [rows], rstd: [rows]
    } => layernorm::layernorm_backward(dinp, dweight, dbias, dout, inp, weight, mean, rstd, rows, dim))
}

#[napi]
#[allow(clippy::too_many_arguments)]
pub fn attention_forward(
    env: &Env, out: Out<f32>, lse: Out<f32>, q: &[f32], k: &[f32], v: &[f32],
    key_mask: Option<&[u8]>, b: u32, h: u32, tq: u32, tk: u32, d: u32, causal: bool, scale: f64,
) -> Result<()> {
    let (b, h, tq, tk, d) = (b as usize, h as usize, tq as usize, tk as usize, d as usize);
    kernel!(env, "attentionForward", {
        out: [b, h, tq, d], lse: [b, h, tq], q: [b, h, tq, d], k: [b, h, tk, d],
        v: [b, h, tk, d], key_mask: [b, tk]
    } => with_parallel(|par| attention::attention_forward(
        out, lse, q, k, v, key_mask, b, h, tq, tk, d, causal, scale as f32, par)))
}

#[napi]
#[allow(clippy::too_many_arguments)]
pub fn attention_probs(
    env: &Env, probs: Out<f32>, q: &[f32], k: &[f32], lse: &[f32], key_mask: Option<&[u8]>,
    b: u32, h: u32, tq: u32, tk: u32, d: u32, causal: bool, scale: f64,
) -> Result<()> {
    let (b, h, tq, tk, d) = (b as usize, h as usize, tq as usize, tk as usize, d as usize);
    kernel!(env, "attentionProbs", {
        probs: [b, h, tq, tk], q: [b, h, tq, d], k: [b, h, tk, d], lse: [b, h, tq], key_mask: [b, tk]
    } => with_parallel(|par| attention::attention_probs(
        probs, q, k, lse, key_mask, b, h, tq, tk, d, causal, scale as f32, par)))
}

#[napi]
#[allow(clippy::too_many_arguments)]
pub fn attention_backward(
    env: &Env, dq: Out<f32>, dk: Out<f32>, dv: Out<f32>, dout: &[f32], q: &[f32], k: &[f32],
    v: &[f32], out: &[f32], lse: &[f32], key_mask: Option<&[u8]>,
    b: u32, h: u32, tq: u32, tk: u32, d: u32, causal: bool, scale: f64,
) -> Result<()> {
    let (b, h, tq, tk, d) = (b as usize, h as usize, tq as usize, tk as usize, d as usize);
    kernel!(env, "attentionBackward", {
        dq: [b, h, tq, d], dk: [b, h, tk, d], dv: [b, h, tk, d], dout: [b, h, tq, d],
        q: [b, h, tq, d], k: [b, h, tk, d], v: [b, h, tk, d], out: [b, h, tq, d], lse: [b, h, tq],
        key_mask: [b, tk]
    } => with_parallel(|par| attention::attention_backward(
        dq, dk, dv, dout, q, k, v, out, lse, key_mask, b, h, tq, tk, d, causal, scale as f32, par)))
}

// ---- fused linear ------------------------------------------------------------------------

#[napi]
#[allow(clippy::too_many_arguments)]
pub fn linear_forward(
    env: &Env, out: Out<f32>, pre: Option<&mut [f32]>, x: &[f32], weight: &[f32], bias: Option<&[f32]>,
    rows: u32, in_features: u32, out_features: u32, activation: u32,
) -> Result<()> {
    let (rows, in_f, out_f) = (rows as usize, in_features as usize, out_features as usize);
    let act = check::linear_activation("linearForward", activation, &[("pre", pre.is_some(), true)]);
    kernel!(env, "linearForward", {
        out: [rows, out_f], pre: [rows, out_f], x: [rows, in_f], weight: [out_f, in_f], bias: [out_f]
    } and { act.as_ref().map(|_| ()).map_err(String::clone) } => with_parallel(|par| linear::linear_forward(
        out, pre, x, weight, bias, rows, in_f, out_f, *act.as_ref().expect("checked before the call"), par)))
}

#[napi]
#[allow(clippy::too_many_arguments)]
pub fn linear_backward(
    env: &Env, dx: Option<&mut [f32]>, dweight: Option<&mut [f32]>, dbias: Option<&mut [f32]>,
    dpre: Option<&mut [f32]>, dout: &[f32], x: &[f32], weight: &[f32], saved: Option<&[f32]>,
    rows: u32, in_features: u32, out_features: u32, activation: u32,
) -> Result<()> {
    let (rows, in_f, out_f) = (rows as usize, in_features as usize, out_features as usize);
    let act = check::linear_activation("linearBackward", activation,
        &[("dpre", dpre.is_some(), false), ("saved", saved.is_some(), false)]);
    kernel!(env, "linearBackward", {
        dx: [rows, in_f], dweight: [out_f, in_f], dbias: [out_f], dpre: [rows, out_f], dout: [rows, out_f],
        x: [rows, in_f], weight: [out_f, in_f], saved: [rows, out_f]
    } and { act.as_ref().map(|_| ()).map_err(String::clone) } => with_parallel(|par| linear::linear_backward(
        dx, dweight, dbias, dpre.unwrap_or(&mut []), dout, x, weight, saved.unwrap_or(&[]), rows, in_f, out_f,
        *act.as_ref().expect("checked before the call"), par)))
}

// ---- activations, embedding, loss, dropout ----------------------------------------------

#[napi]
pub fn relu_forward(env: &Env, out: Out<f32>, inp: &[f32]) -> Result<()> {
    let n = out.len();
    kernel!(env, "reluForward", { out: [n], inp: [n] } => activation::relu_forward(out, inp))
}

#[napi]
pub fn relu_backward(env: &Env, dinp: Out<f32>, dout: &[f32], inp: &[f32]) -> Result<()> {
    let n = dinp.len();
    kernel!(env, "reluBackward", { dinp: [n], dout: [n], inp: [n] } => activation::relu_backward(dinp, dout, inp))
}

#[napi]
pub fn gelu_forward(env: &Env, out: Out<f32>, inp: &[f32]) -> Result<()> {
    let n = out.len();
    kernel!(env, "geluForward", { out: [n], inp: [n] } => activation::gelu_forward(out, inp))
}

#[napi]
pub fn gelu_backward(env: &Env, dinp: Out<f32>, dout: &[f32], inp: &[f32]) -> Result<()> {
    let n = dinp.len();
    kernel!(env, "geluBackward", { dinp: [n], dout: [n], inp: [n] } => activation::gelu_backward(dinp, dout, inp))
}

#[napi]
pub fn gelu_tanh_forward(env: &Env, out: Out<f32>, inp: &[f32]) -> Result<()> {
    let n = out.len();
    kernel!(env, "geluTanhForward", { out: [n], inp: [n] } => activation::gelu_tanh_forward(out, inp))
}

#[napi]
pub fn gelu_tanh_backward(env: &Env, dinp: Out<f32>, dout: &[f32], inp: &[f32]) -> Result<()> {
    let n = dinp.len();
    kernel!(env, "geluTanhBackward", { dinp: [n], dout: [n], inp: [n] } => activation::gelu_tanh_backward(dinp, dout, inp))
}

#[napi]
pub fn embedding_forward(env: &Env, out: Out<f32>, ids: &[i32], table: &[f32], dim: u32) -> Result<()> {
    let (n, dim) = (ids.len(), dim as usize);
    // The table's row count is implied by its length; it must still be whole rows.
    let vocab = table.len() / dim.max(1);
    kernel!(env, "embeddingForward", { out: [n, dim], ids: [n], table: [vocab, dim] }
        and { expect_ids("embeddingForward", "ids", ids, vocab, None) }
        => embedding::embedding_forward(out, ids, table, dim))
}

#[napi]
pub fn embedding_backward(env: &Env, dtable: Out<f32>, dout: &[f32], ids: &[i32], dim: u32) -> Result<()> {
    let (n, dim) = (ids.len(), dim as usize);
    let vocab = dtable.len() / dim.max(1);
    kernel!(env, "embeddingBackward", { dtable: [vocab, dim], dout: [n, dim], ids: [n] }
        and { expect_ids("embeddingBackward", "ids", ids, vocab, None) }
        => embedding::embedding_backward(dtable, dout, ids, dim))
}

#[napi]
#[allow(clippy::too_many_arguments)]
pub fn cross_entropy_forward(
    env: &Env, loss: Out<f32>, lse: Out<f32>, logits: &[f32], targets: &[i32], rows: u32,
    vocab: u32, ignore_index: i32, label_smoothing: f64,
) -> Result<()> {
    let (rows, vocab) = (rows as usize, vocab as usize);
    kernel!(env, "crossEntropyForward", { loss: [1], lse: [rows], logits: [rows, vocab], targets: [rows] }
        and { expect_ids("crossEntropyForward", "targets", targets, vocab, Some(ignore_index)) }
        => cross_entropy::cross_entropy_forward(
            loss, lse, logits, targets, rows, vocab, ignore_index, label_smoothing as f32))
}

#[napi]
#[allow(clippy::too_many_arguments)]
pub fn cross_entropy_backward(
    env: &Env, dlogits: Out<f32>, dloss: &[f32], logits: &[f32], lse: &[f32], targets: &[i32],
    rows: u32, vocab: u32, ignore_index: i32, label_smoothing: f64,
) -> Result<()> {
    let (rows, vocab) = (rows as usize, vocab as usize);
    kernel!(env, "crossEntropyBackward", {
        dlogits: [rows, vocab], dloss: [1], logits: [rows, vocab], lse: [rows], targets: [rows]
    } and { expect_ids("crossEntropyBackward", "targets", targets, vocab, Some(ignore_index)) }
        => cross_entropy::cross_entropy_backward(
            dlogits, dloss, logits, lse, targets, rows, vocab, ignore_index, label_smoothing as f32))
}

/// The dropout RNG (exported so tests can compare it with the TypeScript mirror).
#[napi]
pub fn random_u32(env: &Env, seed: u32, counter: u32) -> Result<u32> {
    run(env, "randomU32", Ok(()), || dropout::random_u32(seed, counter))
}

#[napi]
pub fn dropout_forward(env: &Env, out: Out<f32>, keep: Out<u8>, inp: &[f32], p: f64, seed: u32, offset: u32) -> Result<()> {
    let n = out.len();
    kernel!(env, "dropoutForward", { out: [n], keep: [n], inp: [n] }
        => dropout::dropout_forward(out, keep, inp, p as f32, seed, offset))
}

#[napi]
pub fn dropout_backward(env: &Env, dinp: Out<f32>, dout: &[f32], keep: &[u8], p: f64) -> Result<()> {
    let n = dinp.len();
    kernel!(env, "dropoutBackward", { dinp: [n], dout: [n], keep: [n] }
        => dropout::dropout_backward(dinp, dout, keep, p as f32))
}

// ---- elementwise and layout ------------------------------------------------------------

#[napi]
pub fn add_forward(env: &Env, out: Out<f32>, a: &[f32], b: &[f32]) -> Result<()> {
    let n = out.len();
    kernel!(env, "addForward", { out: [n], a: [n], b: [n] } => elementwise::add_forward(out, a, b))
}

/// dst += alpha * src.
#[napi]
pub fn accumulate(env: &Env, dst: Out<f32>, src: &[f32], alpha: f64) -> Result<()> {
    let n = dst.len();
    kernel!(env, "accumulate", { dst: [n], src: [n] } => elementwise::accumulate(dst, src, alpha as f32))
}

#[napi]
pub fn scale_forward(env: &Env, out: Out<f32>, inp: &[f32], s: f64) -> Result<()> {
    let n = out.len();
    kernel!(env, "scaleForward", { out: [n], inp: [n] } => elementwise::scale_forward(out, inp, s as f32))
}

#[napi]
pub fn scale_inplace(env: &Env, x: Out<f32>, s: f64) -> Result<()> {
    let n = x.len();
    kernel!(env, "scaleInplace", { x: [n] } => elementwise::scale_inplace(x, s as f32))
}

#[napi]
pub fn mul_forward(env: &Env, out: Out<f32>, a: &[f32], b: &[f32]) -> Result<()> {
    let n = out.len();
    kernel!(env, "mulForward", { out: [n], a: [n], b: [n] } => elementwise::mul_forward(out, a, b))
}

#[napi]
pub fn bias_add_forward(env: &Env, out: Out<f32>, inp: &[f32], bias: &[f32], rows: u32, cols: u32) -> Result<()> {
    let (rows, cols) = (rows as usize, cols as usize);
    kernel!(env, "biasAddForward", { out: [rows, cols], inp: [rows, cols], bias: [cols] }
        => elementwise::bias_add_forward(out, inp, bias, rows, cols))
}

#[napi]
pub fn bias_add_backward(env: &Env, dbias: Out<f32>, dout: &[f32], rows: u32, cols: u32) -> Result<()> {
    let (rows, cols) = (rows as usize, cols as usize);
    kernel!(env, "biasAddBackward", { dbias: [cols], dout: [rows, cols] }
        => elementwise::bias_add_backward(dbias, dout, rows, cols))
}

#[napi]
pub fn transpose12_forward(env: &Env, out: Out<f32>, inp: &[f32], a: u32, b: u32, c: u32, d: u32) -> Result<()> {
    let (a, b, c, d) = (a as usize, b as usize, c as usize, d as usize);
    kernel!(env, "transpose12Forward", { out: [a, c, b, d], inp: [a, b, c, d] }
        => elementwise::transpose12_forward(out, inp, a, b, c, d))
}

#[napi]
pub fn transpose12_backward(env: &Env, dinp: Out<f32>, dout: &[f32], a: u32, b: u32, c: u32, d: u32) -> Result<()> {
    let (a, b, c, d) = (a as usize, b as usize, c as usize, d as usize);
    kernel!(env, "transpose12Backward", { dinp: [a, b, c, d], dout: [a, c, b, d] }
        => elementwise::transpose12_backward(dinp, dout, a, b, c, d))
}

#[napi]
#[allow(clippy::too_many_arguments)]
pub fn narrow_forward(
    env: &Env, out: Out<f32>, inp: &[f32], outer: u32, dim: u32, inner: u32, start: u32, len: u32,
) -> Result<()> {
    let (outer, dim, inner, start, len) = (outer as usize, dim as usize, inner as usize, start as usize, len as usize);
    kernel!(env, "narrowForward", { out: [outer, len, inner], inp: [outer, dim, inner] }
        and { expect_within("narrowForward", start, len, dim) }
        => elementwise::narrow_forward(out, inp, outer, dim, inner, start, len))
}

#[napi]
#[allow(clippy::too_many_arguments)]
pub fn narrow_backward(
    env: &Env, dinp: Out<f32>, dout: &[f32], outer: u32, dim: u32, inner: u32, start: u32, len: u32,
) -> Result<()> {
    let (outer, dim, inner, start, len) = (outer as usize, dim as usize, inner as usize, start as usize, len as usize);
    kernel!(env, "narrowBackward", { dinp: [outer, dim, inner], dout: [outer, len, inner] }
        and { expect_within("narrowBackward", start, len, dim) }
        => elementwise::narrow_backward(dinp, dout, outer, dim, inner, start, len))
}

/// Sum of squares, accumulated in f64.
#[napi]
pub fn sum_squares(env: &Env, x: &[f32]) -> Result<f64> {
    run(env, "sumSquares", Ok(()), || elementwise::sum_squares(x))
}

// ---- optimiser -------------------------------------------------------------------------

#[napi]
#[allow(clippy::too_many_arguments)]
pub fn adam_update(
    env: &Env, param: Out<f32>, m: Out<f32>, v: Out<f32>, grad: &[f32], lr: f64, beta1: f64,
    beta2: f64, eps: f64, weight_decay: f64, step: u32, decoupled: bool,
) -> Result<()> {
    let n = param.len();
    kernel!(env, "adamUpdate", { param: [n], m: [n], v: [n], grad: [n] }
        => adam::adam_update(param, m, v, grad, lr as f32, beta1 as f32, beta2 as f32, eps as f32,
            weight_decay as f32, step, decoupled))
}

// ---- test hook -------------------------------------------------------------------------

/// Panics inside the export's `catch_unwind`, so the tests can check that a kernel panic
/// reaches JS as an Error and leaves the addon usable. Not part of the Backend API.
#[napi(js_name = "__panicForTest")]
pub fn panic_for_test(env: &Env) -> Result<()> {
    run(env, "__panicForTest", Ok(()), || panic!("deliberate panic from the test hook"))
}
