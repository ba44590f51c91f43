//! Q4_1 to Q8_0 conversion straight from the file's bytes, block by block.
//!
//! Converting through candle (dequantise the whole matrix to f32, then quantise)
//! allocates and faults in four bytes per weight. This module expands one 32-weight
//! block at a time on the stack instead. It uses the same arithmetic as candle's
//! `to_float` and `from_float` (candle-core 0.11), so the bytes are identical.

use std::borrow::Cow;

use anyhow::Result;
use assisters_kernels::half::{f16_to_f32, f32_to_f16};
use candle_core::Device;
use candle_core::quantized::{GgmlDType, QStorage, QTensor};

/// Weights per block, in both formats.
const BLOCK: usize = 32;
/// Bytes of a Q4_1 block: f16 scale, f16 minimum, 16 bytes of nibbles.
const Q4_1_BYTES: usize = 20;
/// Bytes of a Q8_0 block: f16 scale, 32 signed bytes.
const Q8_0_BYTES: usize = 34;

/// Converts a Q4_1 tensor to Q8_0; `None` for any other format.
pub(crate) fn q4_1_to_q8_0(tensor: &QTensor) -> Result<Option<QTensor>> {
    if tensor.dtype() != GgmlDType::Q4_1 {
        return Ok(None);
    }
    let data = tensor.data()?;
    if data.len() % Q4_1_BYTES != 0 {
        return Ok(None);
    }
    let blocks = data.len() / Q4_1_BYTES;
    let mut out = vec![0u8; blocks * Q8_0_BYTES];
    for (src, dst) in data
        .chunks_exact(Q4_1_BYTES)
        .zip(out.chunks_exact_mut(Q8_0_BYTES))
    {
        convert_block(src, dst);
    }
    let storage = QStorage::from_data(Cow::Owned(out), &Device::Cpu, GgmlDType::Q8_0)?;
    Ok(Some(QTensor::new(storage, tensor.shape().clone())?))
}

fn convert_block(src: &[u8], dst: &mut [u8]) {
    let d = f16_to_f32(u16::from_le_bytes([src[0], src[1]]));
    let m = f16_to_f32(u16::from_le_bytes([src[2], src[3]]));
    let mut values = [0f32; BLOCK];
    for (j, byte) in src[4..].iter().enumerate() {
        values[j] = f32::from(byte & 0x0F) * d + m;
        values[j + BLOCK / 2] = f32::from(byte >> 4) * d + m;
    }
    let amax = values.iter().fold(0f32, |acc, x| acc.max(x.abs()));
    let scale = amax / 127.0;
    let inverse = if scale != 0.0 { 1.0 / scale } else { 0.0 };
    dst[..2].copy_from_slice(&f32_to_f16(scale).to_le_bytes());
    for (q, x) in dst[2..].iter_mut().zip(values) {
        *q = (f32::round(x * inverse) as i8) as u8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Tensor;

    /// A Q4_1 tensor made by candle from varied values, including zero rows.
    fn sample_q4_1() -> QTensor {
        let rows = 8;
        let cols = 256;
        let values: Vec<f32> = (0..rows * cols)
            .map(|i| {
                let row = i / cols;
                if row == 3 {
                    0.0
                } else {
                    ((i * 7919 % 1000) as f32 / 500.0 - 1.0) * 10f32.powi(row as i32 - 4)
                }
            })
            .collect();
        let dense = Tensor::from_vec(values, (rows, cols), &Device::Cpu).unwrap();
        QTensor::quantize(&dense, GgmlDType::Q4_1).unwrap()
    }

    #[test]
    fn conversion_matches_candle_bytes() {
        let q4 = sample_q4_1();
        let ours = q4_1_to_q8_0(&q4).unwrap().unwrap();
        let dense = q4.dequantize(&Device::Cpu).unwrap();
        let theirs = QTensor::quantize(&dense, GgmlDType::Q8_0).unwrap();
        assert_eq!(ours.dtype(), GgmlDType::Q8_0);
        assert_eq!(ours.shape(), theirs.shape());
        assert_eq!(ours.data().unwrap(), theirs.data().unwrap());
    }
}
