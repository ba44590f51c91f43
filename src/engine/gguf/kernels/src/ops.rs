//! Element-wise steps of the forward pass over plain `f32` slices, written in
//! fixed-size chunks so the compiler turns them into SIMD loops.

/// Lanes of the partial sums; eight `f32` fill one AVX register.
const LANES: usize = 8;

/// `out = x / sqrt(mean(x²) + eps) * weight`, for every row of `x` (row length
/// `weight.len()`).
pub fn rms_norm(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
    let dim = weight.len();
    for (row, dst) in x.chunks_exact(dim).zip(out.chunks_exact_mut(dim)) {
        let mean = dot(row, row) / dim as f32;
        let scale = 1.0 / (mean + eps).sqrt();
        for ((d, v), w) in dst.iter_mut().zip(row).zip(weight) {
            *d = v * scale * w;
        }
    }
}

/// `Σ a[i] * b[i]`, summed in eight lanes.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; LANES];
    let (a_chunks, b_chunks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = a_chunks
        .remainder()
        .iter()
        .zip(b_chunks.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in a_chunks.zip(b_chunks) {
        for i in 0..LANES {
            lanes[i] = x[i].mul_add(y[i], lanes[i]);
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// `y += alpha * x`.
pub fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    for (d, v) in y.iter_mut().zip(x) {
        *d = v.mul_add(alpha, *d);
    }
}

/// `y += x`, element by element.
pub fn add_in_place(y: &mut [f32], x: &[f32]) {
    for (d, v) in y.iter_mut().zip(x) {
        *d += v;
    }
}

/// `e^x` with a relative error below 3e-7 for `x` in -87..88 (checked by a test).
/// Beyond -87.3 or 88.3 it returns the value at that bound, so softmax and SiLU
/// never see an infinity.
///
/// Range reduction to `x = n ln 2 + r` with `|r| <= ln 2 / 2`, then the Cephes
/// `expf` polynomial for `e^r`; branch-free, so loops over it vectorise.
#[inline]
pub fn exp(x: f32) -> f32 {
    const LN2_HIGH: f32 = 0.693_359_4;
    const LN2_LOW: f32 = -2.121_944_4e-4;
    let x = x.clamp(-87.3, 88.3);
    let n = (x * std::f32::consts::LOG2_E + 0.5).floor();
    let r = n.mul_add(-LN2_LOW, n.mul_add(-LN2_HIGH, x));
    let mut p = 1.987_569_1e-4f32;
    p = p.mul_add(r, 1.398_199_9e-3);
    p = p.mul_add(r, 8.333_452e-3);
    p = p.mul_add(r, 4.166_579_6e-2);
    p = p.mul_add(r, 1.666_666_5e-1);
    p = p.mul_add(r, 0.5);
    let er = (p * r).mul_add(r, r) + 1.0;
    let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
    er * scale
}

/// SwiGLU over rows of `row_len` values that hold the gate projection at 0 and the
/// up projection at `up_at`, each `hidden` wide: `out = silu(gate) * up`.
pub fn swiglu(gate_up: &[f32], row_len: usize, up_at: usize, out: &mut [f32]) {
    let hidden = out.len() / (gate_up.len() / row_len).max(1);
    for (row, dst) in gate_up
        .chunks_exact(row_len)
        .zip(out.chunks_exact_mut(hidden))
    {
        let (gate, up) = (&row[..hidden], &row[up_at..up_at + hidden]);
        for ((d, g), u) in dst.iter_mut().zip(gate).zip(up) {
            *d = g / (1.0 + exp(-g)) * u;
        }
    }
}

/// Softmax of `x` in place.
pub fn softmax(x: &mut [f32]) {
    let max = x.iter().fold(f32::NEG_INFINITY, |acc, v| acc.max(*v));
    for v in x.iter_mut() {
        *v = exp(*v - max);
    }
    let sum: f32 = x.iter().sum();
    let inverse = 1.0 / sum;
    for v in x.iter_mut() {
        *v *= inverse;
    }
}

/// Rotates each adjacent pair `(x[2i], x[2i+1])` of every head in `x` by the angle
/// whose cosine and sine are `cos[i]`, `sin[i]` (the layout GGUF llama files use).
pub fn rotate_pairs(x: &mut [f32], cos: &[f32], sin: &[f32]) {
    let head_dim = 2 * cos.len();
    for head in x.chunks_exact_mut(head_dim) {
        for ((pair, c), s) in head.chunks_exact_mut(2).zip(cos).zip(sin) {
            let (even, odd) = (pair[0], pair[1]);
            pair[0] = even * c - odd * s;
            pair[1] = even * s + odd * c;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_close_to_std() {
        let mut worst = 0f32;
        for i in -87_000..=88_000 {
            let x = i as f32 / 1000.0;
            let expected = x.exp();
            let relative = ((exp(x) - expected) / expected).abs();
            worst = worst.max(relative);
        }
        assert!(worst < 3e-7, "worst relative error {worst}");
        assert_eq!(exp(0.0), 1.0);
        assert!(exp(-1000.0) > 0.0);
        assert!(exp(-1000.0) < 1e-37);
        assert!(exp(1000.0).is_finite());
        assert!(exp(f32::NEG_INFINITY) < 1e-37);
    }

    #[test]
    fn rms_norm_matches_formula() {
        let x: Vec<f32> = (0..2 * 19).map(|i| (i as f32 - 17.0) / 3.0).collect();
        let weight: Vec<f32> = (0..19).map(|i| 0.5 + i as f32 / 10.0).collect();
        let mut out = vec![0f32; x.len()];
        rms_norm(&x, &weight, 1e-5, &mut out);
        for (row, got) in x.chunks(19).zip(out.chunks(19)) {
            let mean = row.iter().map(|v| f64::from(v * v)).sum::<f64>() / 19.0;
            let scale = 1.0 / (mean + 1e-5).sqrt();
            for ((v, w), g) in row.iter().zip(&weight).zip(got) {
                let expected = (f64::from(*v) * scale * f64::from(*w)) as f32;
                assert!((g - expected).abs() < 1e-5, "{g} vs {expected}");
            }
        }
    }

    #[test]
    fn dot_handles_odd_lengths() {
        for len in [0, 1, 7, 8, 9, 33] {
            let a: Vec<f32> = (0..len).map(|i| i as f32 * 0.5).collect();
            let b: Vec<f32> = (0..len).map(|i| 3.0 - i as f32).collect();
            let expected: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!((dot(&a, &b) - expected).abs() < 1e-3, "len {len}");
        }
    }

    #[test]
    fn softmax_sums_to_one_and_keeps_order() {
        let mut x = vec![1.0, 3.0, -2.0, 3.0, 0.5];
        let expected: Vec<f64> = {
            let e: Vec<f64> = x.iter().map(|v: &f32| f64::from(*v).exp()).collect();
            let s: f64 = e.iter().sum();
            e.iter().map(|v| v / s).collect()
        };
        softmax(&mut x);
        for (got, want) in x.iter().zip(&expected) {
            assert!((f64::from(*got) - want).abs() < 1e-6, "{got} vs {want}");
        }
    }

    #[test]
    fn swiglu_matches_formula() {
        // Two rows of 5 gate values, 3 padding values, then 5 up values.
        let (hidden, up_at, row_len) = (5, 8, 13);
        let rows: Vec<f32> = (0..2 * row_len).map(|i| i as f32 / 3.0 - 4.5).collect();
        let mut out = vec![0f32; 2 * hidden];
        swiglu(&rows, row_len, up_at, &mut out);
        for (i, value) in out.iter().enumerate() {
            let (row, col) = (i / hidden, i % hidden);
            let g = f64::from(rows[row * row_len + col]);
            let up = f64::from(rows[row * row_len + up_at + col]);
            let expected = g / (1.0 + (-g).exp()) * up;
            assert!((f64::from(*value) - expected).abs() < 1e-5, "{i}");
        }
    }

    #[test]
    fn rotation_by_zero_and_quarter_turn() {
        let mut x = vec![1.0, 2.0, 3.0, 4.0];
        rotate_pairs(&mut x, &[1.0], &[0.0]);
        assert_eq!(x, vec![1.0, 2.0, 3.0, 4.0]);
        rotate_pairs(&mut x, &[0.0], &[1.0]);
        assert_eq!(x, vec![-2.0, 1.0, -4.0, 3.0]);
    }
}
