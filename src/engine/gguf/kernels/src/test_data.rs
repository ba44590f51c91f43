//! Deterministic matrices for the kernel tests.

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};

/// Returns `rows * cols` values in about `-period..period`, spread without a simple
/// pattern, different for each `seed`.
pub fn sample(rows: usize, cols: usize, seed: usize, period: usize) -> Vec<f32> {
    (0..rows * cols)
        .map(|i| (((i + seed) * 7919 % 1999) as f32 / 999.5 - 1.0) * (1.0 + (i % period) as f32))
        .collect()
}

/// Returns a sample matrix quantised to `dtype` by candle: its file bytes and the
/// values candle dequantises them to.
pub fn quantized(
    rows: usize,
    cols: usize,
    dtype: GgmlDType,
    seed: usize,
    period: usize,
) -> (Vec<u8>, Vec<f32>) {
    let values = sample(rows, cols, seed, period);
    let dense = Tensor::from_vec(values, (rows, cols), &Device::Cpu).unwrap();
    let q = QTensor::quantize(&dense, dtype).unwrap();
    let values = q
        .dequantize(&Device::Cpu)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    (q.data().unwrap().into_owned(), values)
}
