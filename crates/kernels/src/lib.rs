//! ferroformer kernels: llm.c-style `<op>_forward` / `<op>_backward` free functions over
//! slices. Outputs come first, then saved statistics, inputs, parameters, dimensions.
//! A kernel never allocates: the caller (a JS typed array in the addon, the wasm heap in
//! the browser) owns every buffer. Backward kernels accumulate (`+=`) into their `d*`
//! buffers, as the autograd tape sums gradients from several consumers.
//!
//! Kernels assume lengths were checked by the caller (the napi / wasm shims check every
//! length against the dimensions with [`check`]); they index with normal bounds checks, so a
//! wrong length panics rather than reading out of bounds.
//!
//! Threads are injected: kernels that split work take `par: &dyn Parallel`. The split is
//! always over independent output blocks, so results are bit-identical for any thread count.

pub mod check;
pub mod parallel;
pub mod simd;
pub mod ops;
pub mod optim;
/// Threads for the addon and the threaded wasm build (a wasm build without atomics has none).
#[cfg(any(not(target_arch = "wasm32"), target_feature = "atomics"))]
pub mod pool;

pub use parallel::{Parallel, Serial};
