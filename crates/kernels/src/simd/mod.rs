//! SIMD by instruction set behind one small trait (as candle's `cpu` module): see the
//! kernels helper for the trait; one file per instruction set.
