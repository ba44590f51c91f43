//! Dot products of one packed row group (eight output rows) with up to four rows of
//! quantised activations: an AVX2 kernel where the CPU has AVX2, FMA and F16C, and a
//! portable one elsewhere. Both sum the same integers and round the same float
//! operations in the same order, so their results are bit-identical.
//!
//! Q4_1 weights are unsigned nibbles, so `vpmaddubsw` multiplies them by the signed
//! activation bytes directly. Eight such pair sums per lane stay below 2^15, so
//! they are added in 16 bits. Q8_0 weights are signed, so the kernel multiplies their
//! absolute values by the activations carrying the weights' signs, as ggml does,
//! and widens every product pair to 32 bits.

use crate::half::f16_to_f32;
use crate::packed::{ActBlock, GROUP, TileQ4, TileQ8};

/// Per-row sums for `R` activation rows against the eight rows of a group.
pub type GroupSums<const R: usize> = [[f32; GROUP]; R];

/// Dot products of a Q4_1 row group (`tiles`, one per block) with `R` activation rows.
pub fn q4_group<const R: usize>(tiles: &[TileQ4], acts: [&[ActBlock]; R]) -> GroupSums<R> {
    #[cfg(target_arch = "x86_64")]
    if avx2_available() {
        #[allow(unsafe_code)]
        // SAFETY: the function needs AVX2, FMA and F16C, and the check above found
        // them on this CPU. It takes no pointers and does no unchecked indexing.
        return unsafe { avx2::q4_group(tiles, acts) };
    }
    std::array::from_fn(|r| portable::q4_group(tiles, acts[r]))
}

/// Dot products of a Q8_0 row group (`tiles`, one per block) with `R` activation rows.
pub fn q8_group<const R: usize>(tiles: &[TileQ8], acts: [&[ActBlock]; R]) -> GroupSums<R> {
    #[cfg(target_arch = "x86_64")]
    if avx2_available() {
        #[allow(unsafe_code)]
        // SAFETY: the check above found AVX2, FMA and F16C on this CPU.
        return unsafe { avx2::q8_group(tiles, acts) };
    }
    std::array::from_fn(|r| portable::q8_group(tiles, acts[r]))
}

#[cfg(target_arch = "x86_64")]
fn avx2_available() -> bool {
    std::is_x86_feature_detected!("avx2")
        && std::is_x86_feature_detected!("fma")
        && std::is_x86_feature_detected!("f16c")
}

/// The reference kernels, in plain integer and float arithmetic.
pub mod portable {
    use super::*;

    fn act_bytes(act: &ActBlock) -> [i32; 32] {
        let mut out = [0i32; 32];
        for (chunk, word) in out.chunks_exact_mut(4).zip(act.qs) {
            for (value, byte) in chunk.iter_mut().zip(word.to_le_bytes()) {
                *value = i32::from(byte as i8);
            }
        }
        out
    }

    pub fn q4_group(tiles: &[TileQ4], act: &[ActBlock]) -> [f32; GROUP] {
        let mut acc = [0f32; GROUP];
        for (tile, a) in tiles.iter().zip(act) {
            let x = act_bytes(a);
            for (lane, sum) in acc.iter_mut().enumerate() {
                let mut dot = 0i32;
                for (p, vector) in tile.qs.iter().enumerate() {
                    for i in 0..4 {
                        let byte = vector[4 * lane + i];
                        dot += i32::from(byte & 0x0F) * x[8 * p + i];
                        dot += i32::from(byte >> 4) * x[8 * p + 4 + i];
                    }
                }
                let d = f16_to_f32(tile.d[lane]);
                let m = f16_to_f32(tile.m[lane]);
                *sum = (dot as f32).mul_add(d * a.d, *sum);
                *sum = m.mul_add(a.s, *sum);
            }
        }
        acc
    }

    pub fn q8_group(tiles: &[TileQ8], act: &[ActBlock]) -> [f32; GROUP] {
        let mut acc = [0f32; GROUP];
        for (tile, a) in tiles.iter().zip(act) {
            let x = act_bytes(a);
            for (lane, sum) in acc.iter_mut().enumerate() {
                let mut dot = 0i32;
                for (j, vector) in tile.qs.iter().enumerate() {
                    for i in 0..4 {
                        dot += i32::from(vector[4 * lane + i] as i8) * x[4 * j + i];
                    }
                }
                let d = f16_to_f32(tile.d[lane]);
                *sum = (dot as f32).mul_add(d * a.d, *sum);
            }
        }
        acc
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::*;

    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) fn q4_group<const R: usize>(
        tiles: &[TileQ4],
        acts: [&[ActBlock]; R],
    ) -> GroupSums<R> {
        let low_mask = _mm256_set1_epi8(0x0F);
        let ones = _mm256_set1_epi16(1);
        let mut acc = [_mm256_setzero_ps(); R];
        for (block, tile) in tiles.iter().enumerate() {
            let a: [&ActBlock; R] = std::array::from_fn(|r| &acts[r][block]);
            let mut dots = [_mm256_setzero_si256(); R];
            for (p, bytes) in tile.qs.iter().enumerate() {
                let packed: __m256i = bytemuck::cast(*bytes);
                let low = _mm256_and_si256(packed, low_mask);
                let high = _mm256_and_si256(_mm256_srli_epi16::<4>(packed), low_mask);
                for r in 0..R {
                    let x_low = _mm256_set1_epi32(a[r].qs[2 * p]);
                    let x_high = _mm256_set1_epi32(a[r].qs[2 * p + 1]);
                    dots[r] = _mm256_add_epi16(dots[r], _mm256_maddubs_epi16(low, x_low));
                    dots[r] = _mm256_add_epi16(dots[r], _mm256_maddubs_epi16(high, x_high));
                }
            }
            let d = _mm256_cvtph_ps(bytemuck::cast(tile.d));
            let m = _mm256_cvtph_ps(bytemuck::cast(tile.m));
            for r in 0..R {
                let dot = _mm256_cvtepi32_ps(_mm256_madd_epi16(dots[r], ones));
                let scale = _mm256_mul_ps(d, _mm256_set1_ps(a[r].d));
                acc[r] = _mm256_fmadd_ps(dot, scale, acc[r]);
                acc[r] = _mm256_fmadd_ps(m, _mm256_set1_ps(a[r].s), acc[r]);
            }
        }
        acc.map(bytemuck::cast)
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) fn q8_group<const R: usize>(
        tiles: &[TileQ8],
        acts: [&[ActBlock]; R],
    ) -> GroupSums<R> {
        let ones = _mm256_set1_epi16(1);
        let mut acc = [_mm256_setzero_ps(); R];
        for (block, tile) in tiles.iter().enumerate() {
            let a: [&ActBlock; R] = std::array::from_fn(|r| &acts[r][block]);
            let mut dots = [_mm256_setzero_si256(); R];
            for (j, bytes) in tile.qs.iter().enumerate() {
                let weights: __m256i = bytemuck::cast(*bytes);
                let magnitude = _mm256_sign_epi8(weights, weights);
                for r in 0..R {
                    let x = _mm256_set1_epi32(a[r].qs[j]);
                    let signed = _mm256_sign_epi8(x, weights);
                    let pairs = _mm256_maddubs_epi16(magnitude, signed);
                    dots[r] = _mm256_add_epi32(dots[r], _mm256_madd_epi16(pairs, ones));
                }
            }
            let d = _mm256_cvtph_ps(bytemuck::cast(tile.d));
            for r in 0..R {
                let dot = _mm256_cvtepi32_ps(dots[r]);
                let scale = _mm256_mul_ps(d, _mm256_set1_ps(a[r].d));
                acc[r] = _mm256_fmadd_ps(dot, scale, acc[r]);
            }
        }
        acc.map(bytemuck::cast)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packed::{QuantizedRows, pack_q4_1, pack_q8_0};
    use candle_core::quantized::GgmlDType;

    fn sample(rows: usize, cols: usize, seed: usize) -> Vec<f32> {
        crate::test_data::sample(rows, cols, seed, 5)
    }

    fn file_bytes(rows: usize, cols: usize, dtype: GgmlDType) -> (Vec<u8>, Vec<f32>) {
        crate::test_data::quantized(rows, cols, dtype, 5, 5)
    }

    /// `sum_k w[row][k] * dequantised x[k]`, in f64.
    fn reference(weights: &[f32], x: &QuantizedRows, row: usize, act_row: usize) -> f32 {
        let cols = x.blocks * 32;
        let mut sum = 0f64;
        for (b, block) in x.row(act_row).iter().enumerate() {
            for (j, word) in block.qs.iter().enumerate() {
                for (i, byte) in word.to_le_bytes().iter().enumerate() {
                    let k = b * 32 + 4 * j + i;
                    let value = f64::from(*byte as i8) * f64::from(block.d);
                    sum += f64::from(weights[row * cols + k]) * value;
                }
            }
        }
        sum as f32
    }

    fn check_close(got: f32, expected: f32, what: &str) {
        let tolerance = 1e-4 * (1.0 + expected.abs());
        assert!(
            (got - expected).abs() <= tolerance,
            "{what}: {got} vs {expected}"
        );
    }

    #[test]
    fn q4_kernel_matches_reference_and_portable() {
        // 11 rows: one full group and a padded one; 3 activation rows.
        let (rows, cols) = (11, 160);
        let (bytes, weights) = file_bytes(rows, cols, GgmlDType::Q4_1);
        let packed = pack_q4_1(&bytes, rows, cols).unwrap();
        let mut x = QuantizedRows::default();
        x.quantize(&sample(3, cols, 17), 3);
        for group in 0..packed.groups() {
            let tiles = packed.group(group);
            let sums = q4_group(tiles, [x.row(0), x.row(1), x.row(2)]);
            for (r, lanes) in sums.iter().enumerate() {
                assert_eq!(*lanes, portable::q4_group(tiles, x.row(r)), "row {r}");
                for (lane, got) in lanes.iter().enumerate() {
                    let row = group * GROUP + lane;
                    if row < rows {
                        check_close(*got, reference(&weights, &x, row, r), "q4");
                    } else {
                        assert_eq!(*got, 0.0, "padding row {row}");
                    }
                }
            }
        }
    }

    #[test]
    fn q8_kernel_matches_reference_and_portable() {
        let (rows, cols) = (19, 96);
        let (bytes, weights) = file_bytes(rows, cols, GgmlDType::Q8_0);
        let packed = pack_q8_0(&bytes, rows, cols).unwrap();
        let mut x = QuantizedRows::default();
        x.quantize(&sample(4, cols, 29), 4);
        for group in 0..packed.groups() {
            let tiles = packed.group(group);
            let sums = q8_group(tiles, [x.row(0), x.row(1), x.row(2), x.row(3)]);
            let single = q8_group(tiles, [x.row(2)]);
            assert_eq!(single[0], sums[2]);
            for (r, lanes) in sums.iter().enumerate() {
                assert_eq!(*lanes, portable::q8_group(tiles, x.row(r)), "row {r}");
                for (lane, got) in lanes.iter().enumerate() {
                    let row = group * GROUP + lane;
                    if row < rows {
                        check_close(*got, reference(&weights, &x, row, r), "q8");
                    }
                }
            }
        }
    }

    #[test]
    fn q4_kernel_survives_extreme_values() {
        // All nibbles 15 against activations of ±127: the largest 16-bit partial sums.
        let (rows, cols) = (8, 64);
        let mut bytes = Vec::new();
        for _ in 0..rows * cols / 32 {
            bytes.extend(crate::half::f32_to_f16(1.0).to_le_bytes());
            bytes.extend(0u16.to_le_bytes());
            bytes.extend([0xFF; 16]);
        }
        let packed = pack_q4_1(&bytes, rows, cols).unwrap();
        for sign in [1.0f32, -1.0] {
            let mut x = QuantizedRows::default();
            x.quantize(&vec![sign; cols], 1);
            let sums = q4_group(packed.group(0), [x.row(0)]);
            for got in sums[0] {
                check_close(got, sign * 15.0 * cols as f32, "extreme");
            }
        }
    }
}
