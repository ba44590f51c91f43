//! The numeric kernels of the assisters embedded model engine: quantised weight
//! matrices packed for SIMD matmuls, activations quantised to 8 bits, attention over
//! a key/value cache and the element-wise steps of a llama block.
//!
//! They live in their own crate so that test builds of the application can compile
//! them with full optimisation (a `[profile.dev.package]` override), as they do
//! candle. Unoptimised, decode ran at 1 token/s instead of over 100.

pub mod attention;
pub mod half;
pub mod matmul;
pub mod ops;
pub mod packed;
pub mod simd;
#[cfg(test)]
mod test_data;
