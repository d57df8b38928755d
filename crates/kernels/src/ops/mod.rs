//! Forward / backward kernels, one module per op family.
pub mod activation;
pub mod attention;
pub mod broadcast;
pub mod cross_entropy;
pub mod dropout;
pub mod elementwise;
pub mod embedding;
pub mod heads;
pub mod index;
pub mod layernorm;
pub mod linear;
pub mod matmul;
pub mod reduce;
pub mod softmax;
pub mod strided;
pub mod unary;
