//! Thread injection. The kernels crate has no dependencies; the napi addon implements
//! [`Parallel`] over a rayon pool, the wasm build (for now) uses [`Serial`].

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
