//! IEEE half-precision conversions, bit for bit, for quantisation scales.

/// IEEE half to single precision (exact).
pub fn f16_to_f32(bits: u16) -> f32 {
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
pub fn f32_to_f16(value: f32) -> u16 {
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
    use candle_core::quantized::{GgmlDType, QTensor};
    use candle_core::{Device, Tensor};

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
