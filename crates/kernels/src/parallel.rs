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
