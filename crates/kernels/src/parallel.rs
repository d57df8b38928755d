//! Thread injection. The kernels crate has no dependencies; both the napi addon (OS
//! threads) and the threaded wasm build (Web Workers) run [`Parallel`] on [`crate::pool`],
//! and the single-threaded build uses [`Serial`].
//!
//! Whether a call is worth splitting at all is decided here, once for every backend: a
//! kernel passes its estimated work to [`for_work`], which hands back [`Serial`] below
//! [`min_parallel_flops`]. Handing tasks to another thread costs a wake-up and a join
//! (microseconds natively, more for Web Workers); below the threshold that costs more than
//! the second thread saves, so more threads must never make a small model slower. Above it,
//! a call takes one more thread per [`flops_per_thread`] only: on a many-core machine a call
//! cut into more pieces than its work pays for waits on more hand-offs than it gains
//! (bench/notes.md, 16 cores).

use std::sync::atomic::{AtomicU64, Ordering};

/// Runs `f(i)` for every `i` in `0..tasks`, possibly concurrently. Implementations must
/// run every index exactly once and return only when all have finished.
pub trait Parallel: Sync {
    /// Number of worker threads (1 for [`Serial`]); kernels use it to size their split.
    fn threads(&self) -> usize;
    fn for_each(&self, tasks: usize, f: &(dyn Fn(usize) + Sync));
    /// [`Parallel::for_each`] on at most `threads` threads (the calling one included). The
    /// default ignores the bound; a pool that can leave workers out overrides it.
    fn for_each_on(&self, threads: usize, tasks: usize, f: &(dyn Fn(usize) + Sync)) {
        let _ = threads;
        self.for_each(tasks, f)
    }
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

/// Work per thread beyond the second: a quarter of [`min_parallel_flops`] (1 MFLOP natively,
/// about 7 µs of one core's sgemm). On 16 cores a [128, 128] · [128, 128] product (4 MFLOP)
/// ran fastest on 4-8 threads and 1.5x slower on 16; a [256, 128] · [128, 128] one on 8
/// (bench/notes.md). Two cores never reach the bound: a call that splits at all gets 2.
pub fn flops_per_thread() -> u64 {
    min_parallel_flops() / 4
}

/// `par` limited to its first `threads` threads, for one kernel call ([`for_work`]).
#[derive(Clone, Copy)]
pub struct Limited<'a> {
    par: &'a dyn Parallel,
    threads: usize,
}

impl Parallel for Limited<'_> {
    fn threads(&self) -> usize {
        self.threads
    }
    fn for_each(&self, tasks: usize, f: &(dyn Fn(usize) + Sync)) {
        self.for_each_on(self.threads, tasks, f)
    }
    /// The tighter bound wins when a limited `par` is limited again (a kernel calling another).
    fn for_each_on(&self, threads: usize, tasks: usize, f: &(dyn Fn(usize) + Sync)) {
        let threads = threads.min(self.threads);
        if threads <= 1 {
            Serial.for_each(tasks, f)
        } else {
            self.par.for_each_on(threads, tasks, f)
        }
    }
}

/// The threads a kernel call of about `flops` floating-point operations should use: none but
/// the calling thread (no hand-off) when the call is too small to gain from more, else one
/// per [`flops_per_thread`], at least 2 and at most `par`'s. Kernels split over independent
/// output blocks, so this never changes results.
pub fn for_work(par: &dyn Parallel, flops: u64) -> Limited<'_> {
    let min = min_parallel_flops();
    let threads = if flops < min {
        1
    } else if min == 0 {
        par.threads()
    } else {
        usize::try_from(flops / flops_per_thread().max(1)).unwrap_or(usize::MAX).max(2)
    };
    Limited { par, threads: threads.min(par.threads()) }
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

    /// 16 threads that remember the bound of the last `for_each_on`.
    struct Sixteen(AtomicU64);
    impl Parallel for Sixteen {
        fn threads(&self) -> usize {
            16
        }
        fn for_each(&self, tasks: usize, f: &(dyn Fn(usize) + Sync)) {
            Serial.for_each(tasks, f)
        }
        fn for_each_on(&self, threads: usize, tasks: usize, f: &(dyn Fn(usize) + Sync)) {
            self.0.store(threads as u64, Ordering::Relaxed);
            Serial.for_each(tasks, f)
        }
    }

    /// One test: the threshold is process-wide state.
    #[test]
    fn threads_follow_the_work() {
        const MIN: u64 = DEFAULT_MIN_PARALLEL_FLOPS;
        assert_eq!(min_parallel_flops(), MIN);
        assert_eq!(for_work(&Four, MIN - 1).threads(), 1);
        assert_eq!(for_work(&Four, MIN).threads(), 4);
        assert_eq!(for_work(&Serial, MIN).threads(), 1);
        // On 16 threads: 2 from the threshold's work, then one per quarter of it.
        let sixteen = Sixteen(AtomicU64::new(0));
        assert_eq!(for_work(&sixteen, MIN - 1).threads(), 1);
        assert_eq!(for_work(&sixteen, MIN).threads(), 4);
        assert_eq!(for_work(&sixteen, 2 * MIN + MIN / 8 - 1).threads(), 8);
        assert_eq!(for_work(&sixteen, 100 * MIN).threads(), 16);
        // The pool is asked for the bound, every task runs, and a nested limit keeps the tighter.
        let ran = std::sync::atomic::AtomicUsize::new(0);
        for_work(&sixteen, MIN).for_each(7, &|_| {
            ran.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!((ran.load(Ordering::Relaxed), sixteen.0.load(Ordering::Relaxed)), (7, 4));
        let outer = for_work(&sixteen, 100 * MIN);
        for_work(&outer, MIN).for_each(3, &|_| {});
        assert_eq!(sixteen.0.load(Ordering::Relaxed), 4);
        for_work(&sixteen, MIN).for_each_on(16, 3, &|_| {});
        assert_eq!(sixteen.0.load(Ordering::Relaxed), 4);
        // 0 splits every call over every thread.
        set_min_parallel_flops(0);
        assert_eq!(for_work(&Four, 0).threads(), 4);
        assert_eq!(for_work(&sixteen, 1).threads(), 16);
        set_min_parallel_flops(MIN);
    }
}
