//! The key/value cache of one block and grouped-query attention over it.
//!
//! Each key/value head keeps its positions contiguously (`[head][position][dim]`),
//! so a query reads one plain run of memory per head. Every (query row, head) pair
//! is a separate unit of work with its own contiguous output, spread over the cores.

use std::cell::RefCell;
use std::sync::Mutex;

use crate::matmul::run_parts;
use crate::ops::{axpy, dot, softmax};

/// Head counts and sizes that attention needs.
#[derive(Debug, Clone, Copy)]
pub struct Heads {
    pub n_head: usize,
    pub n_kv_head: usize,
    pub head_dim: usize,
}

/// Keys and values of one block, `[n_kv_head][capacity][head_dim]` each.
pub struct KvCache {
    keys: Vec<f32>,
    values: Vec<f32>,
    capacity: usize,
    heads: Heads,
}

impl KvCache {
    pub fn new(heads: Heads, capacity: usize) -> Self {
        let len = heads.n_kv_head * capacity * heads.head_dim;
        KvCache {
            keys: vec![0.0; len],
            values: vec![0.0; len],
            capacity,
            heads,
        }
    }

    /// Stores the keys and values of position `position`; `k` and `v` hold every
    /// key/value head, one after the other.
    pub fn store(&mut self, position: usize, k: &[f32], v: &[f32]) {
        let hd = self.heads.head_dim;
        for head in 0..self.heads.n_kv_head {
            let at = (head * self.capacity + position) * hd;
            self.keys[at..at + hd].copy_from_slice(&k[head * hd..(head + 1) * hd]);
            self.values[at..at + hd].copy_from_slice(&v[head * hd..(head + 1) * hd]);
        }
    }

    /// The first `len` positions of key/value head `head`.
    fn head(&self, head: usize, len: usize) -> (&[f32], &[f32]) {
        let hd = self.heads.head_dim;
        let start = head * self.capacity * hd;
        (
            &self.keys[start..start + len * hd],
            &self.values[start..start + len * hd],
        )
    }
}

thread_local! {
    /// Attention weights of the unit a thread is working on.
    static SCORES: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Causal attention for `rows` query rows at positions `pos..pos + rows`, whose
/// keys and values are already in `cache`. Query row `i` is
/// `queries[i * stride..][..n_head * head_dim]`; its output goes to
/// `out[i * n_head * head_dim..]`, heads side by side.
pub fn attend(cache: &KvCache, queries: &[f32], stride: usize, pos: usize, out: &mut [f32]) {
    let heads = cache.heads;
    let hd = heads.head_dim;
    let group = heads.n_head / heads.n_kv_head;
    let scale = 1.0 / (hd as f32).sqrt();
    let parts: Vec<Mutex<&mut [f32]>> = out.chunks_mut(hd).map(Mutex::new).collect();
    run_parts(&parts, |unit, dst| {
        let (row, head) = (unit / heads.n_head, unit % heads.n_head);
        let query = &queries[row * stride + head * hd..][..hd];
        let (keys, values) = cache.head(head / group, pos + row + 1);
        SCORES.with(|cell| {
            let mut scores = cell.borrow_mut();
            scores.clear();
            scores.extend(keys.chunks_exact(hd).map(|key| dot(query, key) * scale));
            softmax(&mut scores);
            dst.fill(0.0);
            for (weight, value) in scores.iter().zip(values.chunks_exact(hd)) {
                axpy(*weight, value, dst);
            }
        });
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Attention in f64 straight from the formula, with explicit masking.
    fn reference(
        heads: Heads,
        keys: &[Vec<f32>],
        values: &[Vec<f32>],
        query: &[f32],
        visible: usize,
        head: usize,
    ) -> Vec<f64> {
        let hd = heads.head_dim;
        let kv = head / (heads.n_head / heads.n_kv_head);
        let q = &query[head * hd..(head + 1) * hd];
        let scores: Vec<f64> = (0..visible)
            .map(|t| {
                let k = &keys[t][kv * hd..(kv + 1) * hd];
                let s: f64 = q
                    .iter()
                    .zip(k)
                    .map(|(a, b)| f64::from(*a) * f64::from(*b))
                    .sum();
                s / (hd as f64).sqrt()
            })
            .collect();
        let max = scores.iter().cloned().fold(f64::MIN, f64::max);
        let exps: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
        let total: f64 = exps.iter().sum();
        let mut out = vec![0f64; hd];
        for (t, e) in exps.iter().enumerate() {
            for (o, v) in out.iter_mut().zip(&values[t][kv * hd..(kv + 1) * hd]) {
                *o += e / total * f64::from(*v);
            }
        }
        out
    }

    #[test]
    fn causal_grouped_attention_matches_formula() {
        let heads = Heads {
            n_head: 6,
            n_kv_head: 2,
            head_dim: 10,
        };
        let (pos, rows, capacity) = (3, 5, 12);
        let kv_len = heads.n_kv_head * heads.head_dim;
        let vector = |seed: usize, len: usize| -> Vec<f32> {
            (0..len)
                .map(|i| ((seed * 31 + i * 17) % 23) as f32 / 7.0 - 1.5)
                .collect()
        };
        let keys: Vec<Vec<f32>> = (0..pos + rows).map(|t| vector(t, kv_len)).collect();
        let values: Vec<Vec<f32>> = (0..pos + rows).map(|t| vector(t + 50, kv_len)).collect();
        let mut cache = KvCache::new(heads, capacity);
        for t in 0..pos + rows {
            cache.store(t, &keys[t], &values[t]);
        }
        // Query rows with three extra values each, as in a fused QKV output.
        let q_len = heads.n_head * heads.head_dim;
        let stride = q_len + 3;
        let queries: Vec<f32> = (0..rows).flat_map(|i| vector(i + 100, stride)).collect();
        let mut out = vec![0f32; rows * q_len];
        attend(&cache, &queries, stride, pos, &mut out);
        for row in 0..rows {
            let query = &queries[row * stride..row * stride + q_len];
            for head in 0..heads.n_head {
                let expected = reference(heads, &keys, &values, query, pos + row + 1, head);
                let got = &out[row * q_len + head * heads.head_dim..][..heads.head_dim];
                for (g, e) in got.iter().zip(&expected) {
                    assert!((f64::from(*g) - e).abs() < 1e-5, "row {row} head {head}");
                }
            }
        }
    }
}
