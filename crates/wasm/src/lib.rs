//! The WebAssembly shim: one `extern "C"` export per kernel of `ferroformer_kernels`, over
//! buffers that ts/backend/wasm_storage.ts allocated in linear memory with [`ff_alloc`]. The
//! kernel exports are generated from the kernel table (scripts/kernel-table.mjs) into
//! `kernels.rs`; this file holds memory, errors, threads and what those exports call.
//!
//! Every kernel export takes each buffer as (pointer, length in elements) followed by the
//! kernel's scalar arguments, and returns a status: 0 ok, 1 rejected. Before any kernel runs,
//! the export runs the checks of `ferroformer_kernels::check` (the napi shim runs the same,
//! so messages agree), checks every buffer against linear memory and its alignment
//! ([`region`]) and that no output overlaps another buffer. A rejected call leaves its
//! message in `ff_last_error_ptr/len`. This matters because the module is built with
//! `panic = "abort"`: a panic would trap and could leave the allocator half-updated, so bad
//! arguments must be refused here, never discovered inside a kernel.
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

use ferroformer_kernels::check::{Checked, Region};
use ferroformer_kernels::Parallel;

mod kernels;
#[cfg(target_feature = "atomics")]
use ferroformer_kernels::pool;

/// Bumped whenever an export is added or removed or its signature changes, so the loader
/// refuses a stale module by name instead of failing at the first call of a missing export.
/// Must equal ABI_VERSION in ts/backend/wasm_load.ts.
const ABI_VERSION: u32 = 2;

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

/// Whether the thread that calls kernels may block while the workers finish (1: Node, a Web
/// Worker; 0, the default: a browser's main thread, where waiting must spin).
#[cfg(target_feature = "atomics")]
#[no_mangle]
pub extern "C" fn ff_set_caller_may_block(may_block: i32) {
    pool::set_caller_may_block(may_block != 0)
}

/// Entered by each Web Worker once its instance is set up; returns when the worker retires.
#[cfg(target_feature = "atomics")]
#[no_mangle]
pub extern "C" fn ff_worker_run(id: usize, epoch: u32) {
    pool::worker_run(id, epoch)
}

// ---- calls --------------------------------------------------------------------------------

/// Checks a buffer argument against linear memory and returns its bytes for the overlap check:
/// None for an absent optional buffer (null pointer) and for an empty one (no bytes to
/// overlap; JS passes the dangling pointer of a zero-size allocation).
pub(crate) fn region<T>(op: &str, name: &'static str, ptr: *const T, len: usize, written: bool, optional: bool)
    -> Checked<Option<Region>> {
    let start = ptr as usize;
    if (optional && start == 0) || len == 0 {
        return Ok(None);
    }
    if start == 0 {
        return Err(format!("{op}: {name} is a null pointer"));
    }
    let align = std::mem::align_of::<T>();
    if !start.is_multiple_of(align) {
        return Err(format!("{op}: {name} at {start:#x} is not aligned to {align}"));
    }
    let end = len.checked_mul(std::mem::size_of::<T>()).and_then(|bytes| start.checked_add(bytes));
    match end {
        Some(end) if end <= memory_bytes() => Ok(Some(Region { name, start, end, written })),
        _ => Err(format!("{op}: {name} ({len} elements at {start:#x}) lies outside linear memory ({} bytes)", memory_bytes())),
    }
}

/// # Safety
/// `ptr` was accepted by [`region`] with this `len`, and nothing writes it during the call.
pub(crate) unsafe fn slice<'a, T>(ptr: *const T, len: usize) -> &'a [T] {
    if len == 0 { &[] } else { std::slice::from_raw_parts(ptr, len) }
}

/// # Safety
/// As [`slice`], and no other argument overlaps it (`check::disjoint`).
pub(crate) unsafe fn slice_mut<'a, T>(ptr: *mut T, len: usize) -> &'a mut [T] {
    if len == 0 { &mut [] } else { std::slice::from_raw_parts_mut(ptr, len) }
}

/// A null pointer is None.
pub(crate) unsafe fn optional_slice<'a, T>(ptr: *const T, len: usize) -> Option<&'a [T]> {
    if ptr.is_null() { None } else { Some(slice(ptr, len)) }
}

pub(crate) unsafe fn optional_slice_mut<'a, T>(ptr: *mut T, len: usize) -> Option<&'a mut [T]> {
    if ptr.is_null() { None } else { Some(slice_mut(ptr, len)) }
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
pub(crate) fn status(body: impl FnOnce() -> Checked) -> i32 {
    set_error(String::new());
    match body() {
        Ok(()) => OK,
        Err(message) => {
            set_error(message);
            REJECTED
        }
    }
}

/// Single-threaded build: kernels run on the calling thread.
#[cfg(not(target_feature = "atomics"))]
pub(crate) fn par() -> &'static dyn Parallel {
    &ferroformer_kernels::Serial
}

/// Threaded build (shared memory): the calling thread plus the Web Workers in [`pool`].
#[cfg(target_feature = "atomics")]
pub(crate) fn par() -> &'static dyn Parallel {
    &WorkerPool
}

/// [`pool::Pool`], each task first brought up to the size of linear memory that the calling
/// thread saw when it handed out the job.
///
/// When one thread grows a shared memory, V8 tells the other threads' instances only through
/// an interrupt, handled at their next stack check: at the entry of a function (optimised
/// code leaves it out of leaf functions) or a loop header of optimised code, but not in the
/// pool's worker loop, which runs as baseline code for good (it is entered once). Until then
/// a worker's bulk memory instructions (`memory.copy`, `memory.fill`: a `copy_from_slice` or
/// `fill` of variable length) are bounds-checked against the old size, so a task that copies
/// into a buffer allocated since then traps with "memory access out of bounds" although the
/// pages are there (plain loads and stores rely on guard pages and are not affected).
/// `memory.grow(0)` makes V8 update the calling instance at once. Today every kernel's task
/// calls further functions, whose entry check does it anyway; a task closure with all inlined
/// would trap (`node scripts/soak-wasm-threads.mjs --engine-check` shows the engine's side).
#[cfg(target_feature = "atomics")]
struct WorkerPool;

#[cfg(target_feature = "atomics")]
impl Parallel for WorkerPool {
    fn threads(&self) -> usize {
        pool::Pool.threads()
    }

    fn for_each(&self, tasks: usize, f: &(dyn Fn(usize) + Sync)) {
        self.for_each_on(usize::MAX, tasks, f)
    }

    fn for_each_on(&self, threads: usize, tasks: usize, f: &(dyn Fn(usize) + Sync)) {
        let pages = core::arch::wasm32::memory_size::<0>();
        pool::Pool.for_each_on(threads, tasks, &|index| {
            if core::arch::wasm32::memory_size::<0>() < pages {
                core::arch::wasm32::memory_grow::<0>(0);
            }
            f(index)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use super::kernels::*;

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
        assert_eq!(last_error(), "matmulForward: a has length 6, expected 12");
    }

    #[test]
    fn an_output_overlapping_an_input_is_refused() {
        let mut x = vec![0f32; 8];
        let status = unsafe { ff_add_forward(x.as_mut_ptr(), 4, x.as_ptr().add(2), 4, x.as_ptr(), 4) };
        assert_eq!(status, REJECTED);
        assert_eq!(last_error(), "addForward: out and a overlap; an output must not share memory with another buffer");
    }

    #[test]
    fn overflowing_dimensions_are_refused() {
        let status = unsafe {
            ff_matmul_forward(std::ptr::null_mut(), 0, std::ptr::null(), 0, std::ptr::null(), 0,
                usize::MAX, 2, 2, 2, 0, 0, 0)
        };
        assert_eq!(status, REJECTED);
        assert!(last_error().starts_with("matmulForward: size"), "{}", last_error());
    }

    #[test]
    fn out_of_range_ids_and_targets_are_refused() {
        let (mut out, ids, table) = (vec![0f32; 4], vec![0i32, 3], vec![0f32; 6]);
        let status = unsafe { ff_embedding_forward(out.as_mut_ptr(), 4, ids.as_ptr(), 2, table.as_ptr(), 6, 2) };
        assert_eq!(status, REJECTED);
        assert_eq!(last_error(), "embeddingForward: ids[1] = 3 is outside [0, 3)");

        let (mut loss, mut lse, logits, targets) = (vec![0f32; 1], vec![0f32; 2], vec![0f32; 6], vec![-100i32, 5]);
        let status = unsafe {
            ff_cross_entropy_forward(loss.as_mut_ptr(), 1, lse.as_mut_ptr(), 2, logits.as_ptr(), 6,
                targets.as_ptr(), 2, 2, 3, -100, 0.0)
        };
        assert_eq!(status, REJECTED);
        assert_eq!(last_error(), "crossEntropyForward: targets[1] = 5 is outside [0, 3)");
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
