//! Quantised weight matrices repacked for the matmul kernels, and activations
//! quantised to 8 bits per value.
//!
//! A packed matrix stores its rows in groups of eight. For each group and each
//! 32-weight block along the input dimension, one tile holds the eight rows' scales
//! and their quantised values interleaved four at a time: bytes `4r..4r + 4` of a
//! 32-byte vector are four consecutive weights of row `r`. One vector multiplied by
//! four activation bytes broadcast to every row gives eight partial dot products at
//! once, which is how the SIMD kernels in `simd.rs` use it.
//!
//! Two formats are packed: Q4_1 (GGUF's `d * q + m`, `q` in 0..16), which also takes
//! Q4_0 (`d * (q - 8)`, so `m = -8d`), and Q8_0 (`d * q`, `q` signed). A tile keeps the
//! file's bytes per weight, so decode reads no more memory than llama.cpp does.

use anyhow::{Result, bail};

use crate::half::{f16_to_f32, f32_to_f16};

/// Weights per quantisation block along the input dimension.
pub const BLOCK: usize = 32;
/// Output rows per tile.
pub const GROUP: usize = 8;

/// Eight rows by 32 weights in Q4_1: `d * q + m` with `q` in 0..16.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[repr(C, align(32))]
pub struct TileQ4 {
    /// Vector `p`: the low nibble of byte `4r + i` is weight `8p + i` of row `r`, the
    /// high nibble is weight `8p + 4 + i`.
    pub qs: [[u8; 32]; 4],
    /// Per-row scale `d`, as IEEE half-precision bits.
    pub d: [u16; GROUP],
    /// Per-row minimum `m`, as IEEE half-precision bits.
    pub m: [u16; GROUP],
}

/// Eight rows by 32 weights in Q8_0: `d * q` with `q` a signed byte.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[repr(C, align(32))]
pub struct TileQ8 {
    /// Vector `j`: byte `4r + i` is weight `4j + i` of row `r`, as `i8` bits.
    pub qs: [[u8; 32]; 8],
    /// Per-row scale `d`, as IEEE half-precision bits.
    pub d: [u16; GROUP],
}

/// A matrix of `rows` outputs by `cols` inputs, as tiles ordered by row group, then
/// by block; the last group is padded with zero rows.
#[derive(Debug)]
pub struct Packed<T> {
    pub rows: usize,
    pub cols: usize,
    pub tiles: Vec<T>,
}

impl<T> Packed<T> {
    pub fn blocks(&self) -> usize {
        self.cols / BLOCK
    }

    pub fn groups(&self) -> usize {
        self.rows.div_ceil(GROUP)
    }

    /// Returns the tiles of one row group, in block order.
    pub fn group(&self, group: usize) -> &[T] {
        let blocks = self.blocks();
        &self.tiles[group * blocks..(group + 1) * blocks]
    }
}

/// Bytes of one GGUF block of each packed source format.
const Q4_0_BYTES: usize = 18;
const Q4_1_BYTES: usize = 20;
const Q8_0_BYTES: usize = 34;

/// Checks that `bytes` holds `rows * cols` weights in blocks of `block_bytes`.
fn check_size(bytes: &[u8], rows: usize, cols: usize, block_bytes: usize) -> Result<()> {
    if cols % BLOCK != 0 {
        bail!("{cols} columns are not a multiple of the {BLOCK}-weight block");
    }
    let expected = rows * cols / BLOCK * block_bytes;
    if bytes.len() != expected {
        bail!(
            "a {rows}x{cols} matrix needs {expected} bytes, got {}",
            bytes.len()
        );
    }
    Ok(())
}

/// Repacks a Q4_1 matrix stored as `rows` rows of `cols / 32` blocks each.
pub fn pack_q4_1(bytes: &[u8], rows: usize, cols: usize) -> Result<Packed<TileQ4>> {
    check_size(bytes, rows, cols, Q4_1_BYTES)?;
    Ok(pack_q4(bytes, rows, cols, Q4_1_BYTES, |block| {
        let d = u16::from_le_bytes([block[0], block[1]]);
        let m = u16::from_le_bytes([block[2], block[3]]);
        (d, m, &block[4..20])
    }))
}

/// Repacks a Q4_0 matrix as Q4_1 with `m = -8d`. Multiplying a half by -8 is exact
/// while the result fits in a half.
///
/// NOTE: a scale above 8188 would overflow `m` to infinity; no check rejects it.
pub fn pack_q4_0(bytes: &[u8], rows: usize, cols: usize) -> Result<Packed<TileQ4>> {
    check_size(bytes, rows, cols, Q4_0_BYTES)?;
    Ok(pack_q4(bytes, rows, cols, Q4_0_BYTES, |block| {
        let d = u16::from_le_bytes([block[0], block[1]]);
        let m = f32_to_f16(-8.0 * f16_to_f32(d));
        (d, m, &block[2..18])
    }))
}

/// Packs 4-bit blocks, which `split` turns into `d`, `m` and 16 bytes of nibbles.
/// The low nibble of byte `j` is weight `j`, and the high nibble is weight `j + 16`.
fn pack_q4(
    bytes: &[u8],
    rows: usize,
    cols: usize,
    block_bytes: usize,
    split: impl Fn(&[u8]) -> (u16, u16, &[u8]),
) -> Packed<TileQ4> {
    let blocks = cols / BLOCK;
    let groups = rows.div_ceil(GROUP);
    let mut tiles = vec![TileQ4::default(); groups * blocks];
    for (row, row_bytes) in bytes.chunks_exact(blocks * block_bytes).enumerate() {
        let (group, lane) = (row / GROUP, row % GROUP);
        let row_tiles = &mut tiles[group * blocks..(group + 1) * blocks];
        for (tile, block) in row_tiles
            .iter_mut()
            .zip(row_bytes.chunks_exact(block_bytes))
        {
            let (d, m, nibbles) = split(block);
            tile.d[lane] = d;
            tile.m[lane] = m;
            let weight = |e: usize| {
                let byte = nibbles[e % 16];
                if e < 16 { byte & 0x0F } else { byte >> 4 }
            };
            for (p, vector) in tile.qs.iter_mut().enumerate() {
                for i in 0..4 {
                    let low = weight(8 * p + i);
                    let high = weight(8 * p + 4 + i);
                    vector[4 * lane + i] = low | (high << 4);
                }
            }
        }
    }
    Packed { rows, cols, tiles }
}

/// Repacks a Q8_0 matrix.
pub fn pack_q8_0(bytes: &[u8], rows: usize, cols: usize) -> Result<Packed<TileQ8>> {
    check_size(bytes, rows, cols, Q8_0_BYTES)?;
    let blocks = cols / BLOCK;
    let groups = rows.div_ceil(GROUP);
    let mut tiles = vec![TileQ8::default(); groups * blocks];
    for (row, row_bytes) in bytes.chunks_exact(blocks * Q8_0_BYTES).enumerate() {
        let (group, lane) = (row / GROUP, row % GROUP);
        let row_tiles = &mut tiles[group * blocks..(group + 1) * blocks];
        for (tile, block) in row_tiles.iter_mut().zip(row_bytes.chunks_exact(Q8_0_BYTES)) {
            tile.d[lane] = u16::from_le_bytes([block[0], block[1]]);
            for (j, vector) in tile.qs.iter_mut().enumerate() {
                vector[4 * lane..4 * lane + 4].copy_from_slice(&block[2 + 4 * j..6 + 4 * j]);
            }
        }
    }
    Ok(Packed { rows, cols, tiles })
}

/// Concatenates matrices with the same number of columns, the rows of each after
/// those of the previous one. Each part starts at a new row group, so a part whose
/// row count is not a multiple of eight leaves zero rows after it.
pub fn concat<T: Clone>(parts: Vec<Packed<T>>) -> Result<(Packed<T>, Vec<usize>)> {
    let cols = parts.first().map_or(0, |part| part.cols);
    if parts.iter().any(|part| part.cols != cols) {
        bail!("matrices to fuse have different column counts");
    }
    let mut offsets = Vec::with_capacity(parts.len());
    let mut tiles = Vec::new();
    let mut rows = 0;
    for part in parts {
        offsets.push(rows);
        rows += part.groups() * GROUP;
        tiles.extend(part.tiles);
    }
    Ok((Packed { rows, cols, tiles }, offsets))
}

impl Packed<TileQ4> {
    /// Dequantises row `row` into `out` (`cols` values).
    pub fn row(&self, row: usize, out: &mut [f32]) {
        let (group, lane) = (row / GROUP, row % GROUP);
        for (tile, dst) in self.group(group).iter().zip(out.chunks_exact_mut(BLOCK)) {
            let d = f16_to_f32(tile.d[lane]);
            let m = f16_to_f32(tile.m[lane]);
            for (p, vector) in tile.qs.iter().enumerate() {
                for i in 0..4 {
                    let byte = vector[4 * lane + i];
                    dst[8 * p + i] = f32::from(byte & 0x0F) * d + m;
                    dst[8 * p + 4 + i] = f32::from(byte >> 4) * d + m;
                }
            }
        }
    }
}

impl Packed<TileQ8> {
    /// Dequantises row `row` into `out` (`cols` values).
    pub fn row(&self, row: usize, out: &mut [f32]) {
        let (group, lane) = (row / GROUP, row % GROUP);
        for (tile, dst) in self.group(group).iter().zip(out.chunks_exact_mut(BLOCK)) {
            let d = f16_to_f32(tile.d[lane]);
            for (j, vector) in tile.qs.iter().enumerate() {
                for i in 0..4 {
                    dst[4 * j + i] = f32::from(vector[4 * lane + i] as i8) * d;
                }
            }
        }
    }
}

/// 32 activations quantised to `d * q`, `q` in -127..=127.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[repr(C)]
pub struct ActBlock {
    /// The 32 `q` bytes, four per `i32` (little-endian), ready to broadcast.
    pub qs: [i32; 8],
    pub d: f32,
    /// `d` times the sum of the `q`s, for the `m` term of Q4_1.
    pub s: f32,
}

/// Rows of activations quantised block by block.
#[derive(Debug, Default)]
pub struct QuantizedRows {
    pub rows: usize,
    pub blocks: usize,
    pub data: Vec<ActBlock>,
}

impl QuantizedRows {
    /// Quantises `rows` rows of `x` (row-major), reusing the buffer.
    pub fn quantize(&mut self, x: &[f32], rows: usize) {
        let cols = x.len() / rows.max(1);
        self.rows = rows;
        self.blocks = cols / BLOCK;
        self.data.clear();
        self.data.extend(x.chunks_exact(BLOCK).map(quantize_block));
    }

    pub fn row(&self, row: usize) -> &[ActBlock] {
        &self.data[row * self.blocks..(row + 1) * self.blocks]
    }
}

/// `d = max|x| / 127`, `q = round(x / d)`, the same rounding as ggml's Q8_0 and Q8_1.
fn quantize_block(x: &[f32]) -> ActBlock {
    let amax = x.iter().fold(0f32, |acc, v| acc.max(v.abs()));
    let d = amax / 127.0;
    let inverse = if d != 0.0 { 1.0 / d } else { 0.0 };
    let mut bytes = [0u8; BLOCK];
    let mut sum = 0i32;
    for (byte, value) in bytes.iter_mut().zip(x) {
        let q = (value * inverse).round() as i8;
        sum += i32::from(q);
        *byte = q as u8;
    }
    let mut qs = [0i32; 8];
    for (word, four) in qs.iter_mut().zip(bytes.chunks_exact(4)) {
        *word = i32::from_le_bytes([four[0], four[1], four[2], four[3]]);
    }
    ActBlock {
        qs,
        d,
        s: d * sum as f32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::quantized::GgmlDType;

    fn sample(rows: usize, cols: usize, seed: usize) -> Vec<f32> {
        crate::test_data::sample(rows, cols, seed, 7)
    }

    /// Returns the sample matrix in `dtype`: its file bytes and candle's dequantised values.
    fn quantized(rows: usize, cols: usize, dtype: GgmlDType) -> (Vec<u8>, Vec<f32>) {
        crate::test_data::quantized(rows, cols, dtype, 3, 7)
    }

    #[test]
    fn packed_rows_match_candle() {
        // 13 rows leave a partial last group.
        let (rows, cols) = (13, 96);
        let mut out = vec![0f32; cols];
        let (bytes, expected) = quantized(rows, cols, GgmlDType::Q4_1);
        let q4_1 = pack_q4_1(&bytes, rows, cols).unwrap();
        for row in 0..rows {
            q4_1.row(row, &mut out);
            assert_eq!(
                out,
                expected[row * cols..(row + 1) * cols],
                "Q4_1 row {row}"
            );
        }
        let (bytes, expected) = quantized(rows, cols, GgmlDType::Q8_0);
        let q8_0 = pack_q8_0(&bytes, rows, cols).unwrap();
        for row in 0..rows {
            q8_0.row(row, &mut out);
            assert_eq!(
                out,
                expected[row * cols..(row + 1) * cols],
                "Q8_0 row {row}"
            );
        }
    }

    #[test]
    fn q4_0_packs_as_q4_1_exactly() {
        let (rows, cols) = (9, 64);
        let (bytes, expected) = quantized(rows, cols, GgmlDType::Q4_0);
        let packed = pack_q4_0(&bytes, rows, cols).unwrap();
        let mut out = vec![0f32; cols];
        for row in 0..rows {
            packed.row(row, &mut out);
            assert_eq!(out, expected[row * cols..(row + 1) * cols], "row {row}");
        }
    }

    #[test]
    fn wrong_sizes_are_rejected() {
        let err = pack_q4_1(&[0; 40], 2, 64).unwrap_err().to_string();
        assert!(err.contains("needs 80 bytes, got 40"), "{err}");
        let err = pack_q8_0(&[0; 34], 1, 48).unwrap_err().to_string();
        assert!(err.contains("48 columns"), "{err}");
    }

    #[test]
    fn concat_starts_each_part_at_a_group() {
        let (bytes, _) = quantized(12, 64, GgmlDType::Q8_0);
        let a = pack_q8_0(&bytes, 12, 64).unwrap();
        let b = pack_q8_0(&bytes[..34 * 2 * 5], 5, 64).unwrap();
        let (fused, offsets) = concat(vec![a, b]).unwrap();
        assert_eq!(offsets, vec![0, 16]);
        assert_eq!(fused.rows, 24);
        let mut first = vec![0f32; 64];
        let mut again = vec![0f32; 64];
        fused.row(0, &mut first);
        fused.row(16, &mut again);
        assert_eq!(first, again);
    }

    #[test]
    fn activation_blocks_round_like_ggml() {
        let x = sample(1, 64, 11);
        let mut rows = QuantizedRows::default();
        rows.quantize(&x, 1);
        assert_eq!(rows.blocks, 2);
        for (block, values) in rows.row(0).iter().zip(x.chunks_exact(BLOCK)) {
            let amax = values.iter().fold(0f32, |a, v| a.max(v.abs()));
            assert_eq!(block.d, amax / 127.0);
            let bytes: Vec<i8> = block
                .qs
                .iter()
                .flat_map(|w| w.to_le_bytes())
                .map(|b| b as i8)
                .collect();
            let mut sum = 0;
            for (q, v) in bytes.iter().zip(values) {
                assert_eq!(*q, (v / block.d).round() as i8, "{v}");
                assert!((f32::from(*q) * block.d - v).abs() <= block.d / 2.0 + 1e-6);
                sum += i32::from(*q);
            }
            assert_eq!(block.s, block.d * sum as f32);
        }
    }

    #[test]
    fn zero_block_quantizes_to_zero() {
        let mut rows = QuantizedRows::default();
        rows.quantize(&[0.0; 32], 1);
        assert_eq!(rows.data[0], ActBlock::default());
    }
}
