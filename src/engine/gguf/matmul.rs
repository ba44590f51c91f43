//! Weight matrices of the model and `x · Wᵀ`.
//!
//! Packed Q4_1 and Q8_0 matrices run on the kernels of `assisters-kernels`, on all
//! cores; any other format goes through candle's `QMatMul`.

use anyhow::{Result, bail};
use assisters_kernels::matmul::{q4_matmul, q8_matmul};
use assisters_kernels::packed::{GROUP, Packed, QuantizedRows, TileQ4, TileQ8};
use candle_core::quantized::QMatMul;
use candle_core::{Device, Module, Tensor};

/// A weight matrix of `rows` outputs by `cols` inputs.
pub(crate) enum Linear {
    Q4(Packed<TileQ4>),
    Q8(Packed<TileQ8>),
    Candle {
        matmul: QMatMul,
        rows: usize,
        cols: usize,
    },
}

impl Linear {
    /// Output count; for a packed matrix, rounded up to a whole row group.
    pub fn rows(&self) -> usize {
        match self {
            Linear::Q4(w) => w.groups() * GROUP,
            Linear::Q8(w) => w.groups() * GROUP,
            Linear::Candle { rows, .. } => *rows,
        }
    }

    /// Dequantises row `row` into `out`; only packed matrices store rows this way.
    pub fn row(&self, row: usize, out: &mut [f32]) -> Result<()> {
        match self {
            Linear::Q4(w) => w.row(row, out),
            Linear::Q8(w) => w.row(row, out),
            Linear::Candle { .. } => bail!("rows of an unpacked matrix cannot be read one by one"),
        }
        Ok(())
    }

    /// Writes `x · Wᵀ` for the `m` rows of `x` into `out` (`m * self.rows()` values,
    /// row-major). `scratch` keeps the quantised rows of `x` for packed matrices.
    pub fn forward(
        &self,
        x: &[f32],
        m: usize,
        scratch: &mut Scratch,
        out: &mut [f32],
    ) -> Result<()> {
        match self {
            Linear::Q4(w) => {
                scratch.input.quantize(x, m);
                q4_matmul(w, &scratch.input, &mut scratch.tiles, out);
            }
            Linear::Q8(w) => {
                scratch.input.quantize(x, m);
                q8_matmul(w, &scratch.input, &mut scratch.tiles, out);
            }
            Linear::Candle { matmul, cols, .. } => {
                let input = Tensor::from_slice(x, (m, *cols), &Device::Cpu)?;
                let result = matmul.forward(&input)?.flatten_all()?.to_vec1::<f32>()?;
                out.copy_from_slice(&result);
            }
        }
        Ok(())
    }
}

/// Buffers a matmul reuses between calls.
#[derive(Default)]
pub(crate) struct Scratch {
    input: QuantizedRows,
    /// Outputs of prefill units, unit by unit, before they move into place.
    tiles: Vec<f32>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use assisters_kernels::packed::{pack_q4_1, pack_q8_0};
    use candle_core::quantized::{GgmlDType, QTensor};

    fn sample(rows: usize, cols: usize, seed: usize) -> Vec<f32> {
        (0..rows * cols)
            .map(|i| (((i + seed) * 6007 % 1777) as f32 / 888.5 - 1.0) * 0.5)
            .collect()
    }

    fn quantized(rows: usize, cols: usize, dtype: GgmlDType) -> (QTensor, Vec<u8>) {
        let dense = Tensor::from_vec(sample(rows, cols, 1), (rows, cols), &Device::Cpu).unwrap();
        let q = QTensor::quantize(&dense, dtype).unwrap();
        let bytes = q.data().unwrap().into_owned();
        (q, bytes)
    }

    /// Compares a packed matmul with candle's on the same file bytes, for row counts
    /// that cover the single-row path, partial tiles of four and several row blocks.
    fn check_against_candle(dtype: GgmlDType) {
        // candle's Q4_1 kernel needs an even number of blocks per row.
        let (n, k) = (37, 128);
        let (q, bytes) = quantized(n, k, dtype);
        let linear = match dtype {
            GgmlDType::Q4_1 => Linear::Q4(pack_q4_1(&bytes, n, k).unwrap()),
            _ => Linear::Q8(pack_q8_0(&bytes, n, k).unwrap()),
        };
        let candle = Linear::Candle {
            matmul: QMatMul::from_qtensor(q).unwrap(),
            rows: n,
            cols: k,
        };
        let mut scratch = Scratch::default();
        for m in [1, 3, 4, 7, 33, 70] {
            let x = sample(m, k, m);
            let mut ours = vec![0f32; m * linear.rows()];
            linear.forward(&x, m, &mut scratch, &mut ours).unwrap();
            let mut theirs = vec![0f32; m * n];
            candle.forward(&x, m, &mut scratch, &mut theirs).unwrap();
            for row in 0..m {
                for col in 0..n {
                    let (a, b) = (ours[row * linear.rows() + col], theirs[row * n + col]);
                    assert!(
                        (a - b).abs() <= 2e-3 * (1.0 + b.abs()),
                        "{dtype:?} m={m} ({row},{col}): {a} vs {b}"
                    );
                }
            }
        }
    }

    #[test]
    fn q4_matmul_matches_candle() {
        check_against_candle(GgmlDType::Q4_1);
    }

    #[test]
    fn q8_matmul_matches_candle() {
        check_against_candle(GgmlDType::Q8_0);
    }
}
