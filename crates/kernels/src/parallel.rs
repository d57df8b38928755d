//! Thread injection. The kernels crate has no dependencies; both the napi addon (OS
//! threads) and the threaded wasm build (Web Workers) run [`Parallel`] on [`crate::pool`],
//! and the single-threaded build uses [`Serial`].
//!
//! Whether a call is worth splitting at all is decided here, once for every backend: a
//! kernel passes its estimated work to [`for_work`], which hands back [`Serial`] below
//! [`min_parallel_flops`]. Handing tasks to another thread costs a wake-up and a join
//! (microseconds natively, more for Web Workers); below the threshold that costs more than
//! the second thread saves, so more threads must never make a small model slower.

use std::sync::atomic::{AtomicU64, Ordering};

/// Runs `f(i)` for every `i` in `0..tasks`, possibly concurrently. Implementations must
/// run every index exactly once and return only when all have finished.
pub trait Parallel: Sync {
    /// Number of worker threads (1 for [`Serial`]); kernels use it to size their split.
    fn threads(&self) -> usize;
    fn for_each(&self, tasks: usize, f: &(dyn Fn(usize) + Sync));
}

/// Runs every task on the calling thread, in order.
pub struct Serial;

impl Parallel for Serial {
    fn threads(&self) -> usize {
        1
    }
    fn for_each(&self, tasks: usize, f: &(dyn Fn(usize) + Sync)) {
        for i in 0..tasks {
            f(i);
        }
    }
}

/// Default of [`min_parallel_flops`]: where a second thread starts to pay on an idle core.
/// - Natively, [`crate::pool`]'s workers spin between calls, so a hand-off costs a few µs:
///   a [64, 128] · [128, 128] product (2 MFLOP, 28 µs) already runs 1.4x faster on two
///   threads, and 4 MFLOP 1.5x (bench/notes.md).
/// - In wasm a hand-off to a Web Worker costs about 20 µs at best, and nothing below about
///   100 MFLOP gained while other processes held the second core (run 8 in
///   bench/RESULTS.md, load 9-16 on 2 cores). 16 MFLOP keeps every call of the browser demo
///   (its largest: [640, 64] · [64, 128] in evaluation, 10.5 MFLOP) on the calling thread.
#[cfg(not(target_arch = "wasm32"))]
pub const DEFAULT_MIN_PARALLEL_FLOPS: u64 = 4_000_000;
#[cfg(target_arch = "wasm32")]
pub const DEFAULT_MIN_PARALLEL_FLOPS: u64 = 16_000_000;

static MIN_PARALLEL_FLOPS: AtomicU64 = AtomicU64::new(DEFAULT_MIN_PARALLEL_FLOPS);

/// Estimated floating-point operations below which a kernel call runs on the calling thread.
pub fn min_parallel_flops() -> u64 {
    MIN_PARALLEL_FLOPS.load(Ordering::Relaxed)
}

/// Sets the threshold of [`for_work`] for the whole process (0 splits every call: the
/// benchmark's crossover row measures with it). Results do not depend on it.
pub fn set_min_parallel_flops(flops: u64) {
    MIN_PARALLEL_FLOPS.store(flops, Ordering::Relaxed);
}

/// The threads a kernel call of about `flops` floating-point operations should use: `par`,
/// or [`Serial`] (the calling thread, no hand-off) when the call is too small to gain from
/// more. Kernels split over independent output blocks, so this never changes results.
pub fn for_work(par: &dyn Parallel, flops: u64) -> &dyn Parallel {
    if flops < min_parallel_flops() {
        &Serial
    } else {
        par
    }
}

/// A raw pointer that may cross into `Parallel::for_each` tasks. Kernels use it to hand each
/// task a disjoint region of one output buffer (the borrow checker cannot see that the
/// regions chosen by task index never overlap).
///
/// Safety contract for users: every task must only form slices over regions that no other
/// task touches during the same `for_each`, and the pointee must outlive the call (it does:
/// `for_each` returns only after all tasks finish, while the `&mut` it came from is held).
#[derive(Clone, Copy)]
pub(crate) struct SendPtr(pub *mut f32);

// SAFETY: the pointer is only dereferenced over disjoint regions per task (see above).
unsafe impl Send for SendPtr {}
// SAFETY: as above; shared access never aliases a written region.
unsafe impl Sync for SendPtr {}

impl SendPtr {
    /// `len` elements starting `offset` elements after the base pointer.
    ///
    /// # Safety
    /// `offset + len` must be within the original buffer and the region must not be
    /// accessed by any other task while the slice lives.
    #[inline]
    pub(crate) unsafe fn slice_mut<'a>(self, offset: usize, len: usize) -> &'a mut [f32] {
        // SAFETY: forwarded to the caller (in bounds, disjoint across tasks).
        unsafe { std::slice::from_raw_parts_mut(self.0.add(offset), len) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Four;
    impl Parallel for Four {
        fn threads(&self) -> usize {
            4
        }
        fn for_each(&self, tasks: usize, f: &(dyn Fn(usize) + Sync)) {
            Serial.for_each(tasks, f)
        }
    }

    #[test]
    fn small_calls_run_on_the_calling_thread() {
        assert_eq!(min_parallel_flops(), DEFAULT_MIN_PARALLEL_FLOPS);
        assert_eq!(for_work(&Four, DEFAULT_MIN_PARALLEL_FLOPS - 1).threads(), 1);
        assert_eq!(for_work(&Four, DEFAULT_MIN_PARALLEL_FLOPS).threads(), 4);
        set_min_parallel_flops(0);
        assert_eq!(for_work(&Four, 0).threads(), 4);
        set_min_parallel_flops(DEFAULT_MIN_PARALLEL_FLOPS);
    }
}
