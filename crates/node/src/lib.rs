//! napi-rs shim over `ferroformer-kernels`. The kernel exports are generated from the kernel
//! table (scripts/kernel-table.mjs) into `kernels.rs`, one per kernel, JS name in camelCase
//! (`matmul_forward` -> `matmulForward`); each
//! 1. runs the checks of `ferroformer_kernels::check` (lengths against the dimensions, ids and
//!    ranges, no output sharing memory with another buffer); a failure throws a JS
//!    `RangeError` naming the op and the sizes, before the kernel touches anything;
//! 2. runs the kernel on the typed arrays' own memory (`&[f32]` / `&mut [f32]` borrowed from
//!    the JS `Float32Array` for the duration of the call: zero copy, nothing kept after
//!    return);
//! 3. catches a panic (a kernel bug) and throws it as a JS `Error` ([`run`]), so an unwind
//!    never crosses the FFI boundary and the process stays usable.
//!
//! Aliasing: napi hands out `&mut [f32]` for an output and `&[f32]` for an input even when
//! JS passes the same buffer (or two views of one `ArrayBuffer`) for both; step 1 refuses
//! any output that overlaps another buffer, so the kernel never sees aliased slices.
//!
//! This file holds what is not per kernel: threads (the kernels crate's [`pool`], the calling
//! JS thread plus `setThreads(n) - 1` workers; with one thread, or below the work threshold
//! of `parallel::for_work`, kernels run on the calling thread alone), errors, and a test
//! hook.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{LazyLock, Mutex, PoisonError};

use ferroformer_kernels::check::Checked;
use ferroformer_kernels::{parallel, pool, Parallel};
use napi::{Env, Error, Result, Status};
use napi_derive::napi;

/// A typed array the kernel writes into, borrowed for the call. Spelled as an alias because
/// napi-derive reads a literal `&mut T` parameter as a class instance; through the alias
/// it takes napi's `FromNapiValue for &mut [T]` (the typed array's own memory, no copy).
pub(crate) type Out<'a, T> = &'a mut [T];

pub mod kernels;

// ---- threads ---------------------------------------------------------------------------

/// Diagnostics: kernel tasks run by pool threads (not the calling thread) so far.
#[napi]
pub fn worker_tasks() -> f64 {
    pool::worker_tasks() as f64
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

/// The thread count: the calling JS thread plus `count - 1` workers of [`pool`].
static THREADS: Mutex<usize> = Mutex::new(1);

/// Starts `count - 1` workers for a new setting (those of the previous one retire).
fn start_threads(count: usize) -> std::result::Result<(), String> {
    pool::start_os_threads(count).map_err(|e| format!("setThreads: {e}"))
}

/// Once, at the first kernel call or thread query: as many threads as cores.
static DEFAULT_THREADS: LazyLock<()> = LazyLock::new(|| {
    // The JS thread may block while the workers finish (Node's threads all may).
    pool::set_caller_may_block(true);
    let available = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut count = THREADS.lock().unwrap_or_else(PoisonError::into_inner);
    // Starting threads can fail in a locked-down process; one thread always works.
    if available > 1 && start_threads(available).is_ok() {
        *count = available;
    }
});

/// Upper bound for `setThreads`, far above any core count, so a stray large number fails
/// with a RangeError instead of trying to spawn that many OS threads.
const MAX_THREADS: usize = 1024;

/// Runs `f` with the current thread setting as a `&dyn Parallel`.
pub(crate) fn with_parallel<R>(f: impl FnOnce(&dyn Parallel) -> R) -> R {
    LazyLock::force(&DEFAULT_THREADS);
    f(&pool::Pool)
}

/// Threads used by the kernels that split their work (the calling thread included).
#[napi]
pub fn get_threads() -> u32 {
    LazyLock::force(&DEFAULT_THREADS);
    *THREADS.lock().unwrap_or_else(PoisonError::into_inner) as u32
}

/// Sets the threads used by the kernels that split their work (an integer from 1 to 1024).
#[napi]
pub fn set_threads(env: &Env, n: f64) -> Result<()> {
    if !(n.fract() == 0.0 && n >= 1.0 && n <= MAX_THREADS as f64) {
        return Err(range_error(
            env,
            format!("setThreads: n must be an integer from 1 to {MAX_THREADS}, got {n}"),
        ));
    }
    LazyLock::force(&DEFAULT_THREADS);
    let mut count = THREADS.lock().unwrap_or_else(PoisonError::into_inner);
    if *count == n as usize {
        return Ok(());
    }
    start_threads(n as usize).map_err(|message| {
        *count = 1;
        Error::from_reason(message)
    })?;
    *count = n as usize;
    Ok(())
}

// ---- calls ---------------------------------------------------------------------------

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

/// The end of every export: the checks' verdict (a RangeError), else the kernel, given what
/// the checks produced, under `catch_unwind`.
fn run<T, R>(env: &Env, op: &str, checked: Checked<T>, kernel: impl FnOnce(T) -> R) -> Result<R> {
    let value = checked.map_err(|message| range_error(env, message))?;
    // AssertUnwindSafe: after a panic the only state left behind is the JS buffers, which
    // hold partial results the caller must discard anyway (the call threw).
    catch_unwind(AssertUnwindSafe(|| kernel(value))).map_err(|payload| {
        Error::new(Status::GenericFailure, format!("{op}: kernel panicked: {}", panic_message(&*payload)))
    })
}

// ---- test hook -------------------------------------------------------------------------

/// Panics inside the export's `catch_unwind`, so the tests can check that a kernel panic
/// reaches JS as an Error and leaves the addon usable. Not part of the Backend API.
#[napi(js_name = "__panicForTest")]
pub fn panic_for_test(env: &Env) -> Result<()> {
    run(env, "__panicForTest", Ok(()), |()| panic!("deliberate panic from the test hook"))
}
