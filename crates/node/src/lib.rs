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
//! This file holds what is not per kernel: threads (one global rayon pool, rebuilt by
//! `setThreads(n)`; kernels that split work get it through [`RayonParallel`], and with one
//! thread, or below the work threshold of `parallel::for_work`, they run on the calling JS
//! thread), errors, and a test hook.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, PoisonError, RwLock};

use ferroformer_kernels::check::Checked;
use ferroformer_kernels::{parallel, Parallel, Serial};
use napi::{Env, Error, Result, Status};
use napi_derive::napi;
use rayon::prelude::*;

/// A typed array the kernel writes into, borrowed for the call. Spelled as an alias because
/// napi-derive reads a literal `&mut T` parameter as a class instance; through the alias
/// it takes napi's `FromNapiValue for &mut [T]` (the typed array's own memory, no copy).
pub(crate) type Out<'a, T> = &'a mut [T];

pub mod kernels;

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
pub(crate) fn with_parallel<R>(f: impl FnOnce(&dyn Parallel) -> R) -> R {
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
