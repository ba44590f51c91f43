//! Q4_1 to Q8_0 conversion straight from the file's bytes, block by block.
//!
//! Converting through candle (dequantise the whole matrix to f32, then quantise)
//! allocates and faults in four bytes per weight. This module expands one 32-weight
//! block at a time on the stack instead. It uses the same arithmetic as candle's
//! `to_float` and `from_float` (candle-core 0.11), so the bytes are identical.

use std::borrow::Cow;

use anyhow::Result;
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

/// IEEE half to single precision (exact).
fn f16_to_f32(bits: u16) -> f32 {
    let sign = u32::from(bits & 0x8000) << 16;
    let exp = u32::from((bits >> 10) & 0x1F);
    let man = u32::from(bits & 0x03FF);
    let magnitude = match (exp, man) {
        (0, 0) => 0,
        (0, _) => {
            // Subnormal: man * 2^-24, exact in f32.
            let magnitude = man as f32 * 2f32.powi(-24);
            return if sign != 0 { -magnitude } else { magnitude };
        }
        (0x1F, 0) => 0x7F80_0000,
        (0x1F, _) => 0x7FC0_0000 | (man << 13),
        _ => ((exp + 112) << 23) | (man << 13),
    };
    f32::from_bits(sign | magnitude)
}

/// Single to half precision, rounding to nearest even.
fn f32_to_f16(value: f32) -> u16 {
    let x = value.to_bits();
    let sign = ((x & 0x8000_0000) >> 16) as u16;
    let exp = x & 0x7F80_0000;
    let man = x & 0x007F_FFFF;
    if exp == 0x7F80_0000 {
        let nan = if man != 0 { 0x0200 } else { 0 };
        return sign | 0x7C00 | nan | (man >> 13) as u16;
    }
    let half_exp = ((exp >> 23) as i32) - 127 + 15;
    if half_exp >= 0x1F {
        return sign | 0x7C00;
    }
    if half_exp <= 0 {
        if 14 - half_exp > 24 {
            return sign;
        }
        let man = man | 0x0080_0000;
        let shift = (14 - half_exp) as u32;
        let mut half_man = man >> shift;
        let round_bit = 1u32 << (shift - 1);
        if man & round_bit != 0 && man & (3 * round_bit - 1) != 0 {
            half_man += 1;
        }
        return sign | half_man as u16;
    }
    let bits = ((half_exp as u32) << 10) | (man >> 13);
    let round_bit = 0x0000_1000;
    if man & round_bit != 0 && man & (3 * round_bit - 1) != 0 {
        sign | (bits + 1) as u16
    } else {
        sign | bits as u16
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

    #[test]
    fn half_round_trip_is_exact() {
        for bits in 0..=u16::MAX {
            let exp = (bits >> 10) & 0x1F;
            if exp == 0x1F {
                continue;
            }
            let value = f16_to_f32(bits);
            let back = f32_to_f16(value);
            assert_eq!(back, bits, "{bits:#06x} -> {value} -> {back:#06x}");
        }
    }

    #[test]
    fn single_to_half_matches_candle() {
        let values: Vec<f32> = (0..4096u32)
            .map(|i| {
                f32::from_bits(0x3000_0000 + i.wrapping_mul(0x0004_1F3B))
                    * if i % 2 == 0 { 1.0 } else { -1.0 }
            })
            .chain([1e-8, 6.1e-5, 65504.0, 65520.0, 1e6, 0.0])
            .collect();
        let dense = Tensor::from_vec(values.clone(), values.len(), &Device::Cpu).unwrap();
        let candle = QTensor::quantize(&dense, GgmlDType::F16).unwrap();
        let bytes = candle.data().unwrap();
        for (value, pair) in values.iter().zip(bytes.chunks_exact(2)) {
            let expected = u16::from_le_bytes([pair[0], pair[1]]);
            assert_eq!(f32_to_f16(*value), expected, "{value}");
        }
    }
}
