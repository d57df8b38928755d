//! Forward / backward kernels, one module per op family.
pub mod activation;
pub mod attention;
pub mod cross_entropy;
pub mod dropout;
pub mod elementwise;
pub mod embedding;
pub mod layernorm;
pub mod linear;
pub mod matmul;
pub mod softmax;
