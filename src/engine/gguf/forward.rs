//! The llama forward pass over plain `f32` buffers, with a preallocated key/value
//! cache.
//!
//! A block first runs RMSNorm, the fused Q/K/V projection, rotary position
//! embedding on adjacent pairs (the layout GGUF llama files use), grouped-query
//! attention over the cache, the output projection and a residual add. Then it
//! runs RMSNorm, the fused gate/up projection, SwiGLU, the down projection and
//! another residual add. A
//! call runs all its tokens through each block at once, and the buffers are reused
//! between calls, so a decode step allocates almost nothing.

use anyhow::{Result, bail};
use candle_core::{Device, Tensor};

use super::matmul::{Linear, Scratch};
use super::weights::{Block, Embedding, Hyper, Weights};
use assisters_kernels::attention::{Heads, KvCache, attend};
use assisters_kernels::ops::{add_in_place, rms_norm, rotate_pairs, swiglu};

/// A model plus its cache: the state of one conversation at a time.
pub struct Transformer {
    weights: Weights,
    caches: Vec<KvCache>,
    /// Rotary tables, `capacity` rows of `head_dim / 2`, row-major.
    cos: Vec<f32>,
    sin: Vec<f32>,
    capacity: usize,
    /// The tokens whose keys and values are in the cache, in order.
    cached: Vec<u32>,
    buffers: Buffers,
}

/// Activations of one call, `rows` rows each, kept between calls.
#[derive(Default)]
struct Buffers {
    /// The residual stream.
    x: Vec<f32>,
    normed: Vec<f32>,
    qkv: Vec<f32>,
    attended: Vec<f32>,
    projected: Vec<f32>,
    gate_up: Vec<f32>,
    hidden: Vec<f32>,
    logits: Vec<f32>,
    scratch: Scratch,
}

/// Resizes `buffer` to `len` values and returns them; callers overwrite them all.
fn sized(buffer: &mut Vec<f32>, len: usize) -> &mut [f32] {
    buffer.resize(len, 0.0);
    &mut buffer[..len]
}

impl Transformer {
    /// Wraps loaded weights with a cache of `capacity` positions.
    pub(crate) fn new(weights: Weights, capacity: usize) -> Result<Self> {
        let hyper = &weights.hyper;
        let capacity = capacity.clamp(1, hyper.context.max(1));
        let caches = (0..hyper.n_layer)
            .map(|_| KvCache::new(heads(hyper), capacity))
            .collect();
        let (cos, sin) = rotary_tables(hyper.rope_base, hyper.head_dim, capacity);
        Ok(Transformer {
            weights,
            caches,
            cos,
            sin,
            capacity,
            cached: Vec::new(),
            buffers: Buffers::default(),
        })
    }

    /// Returns how many positions the cache holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Returns the model's hyper-parameters.
    pub fn hyper(&self) -> &Hyper {
        &self.weights.hyper
    }

    /// Returns how many leading tokens of `tokens` are already in the cache, so a
    /// prompt that repeats the previous conversation skips recomputing it. At least
    /// one token is always left to compute, since its logits are needed.
    pub fn reusable_prefix(&self, tokens: &[u32]) -> usize {
        let shared = self
            .cached
            .iter()
            .zip(tokens)
            .take_while(|(a, b)| a == b)
            .count();
        shared.min(tokens.len().saturating_sub(1))
    }

    /// Forgets the cache contents after position `len`.
    pub fn truncate(&mut self, len: usize) {
        self.cached.truncate(len);
    }

    /// Runs `tokens` at the end of the cached ones and returns the logits of the last.
    pub fn forward(&mut self, tokens: &[u32]) -> Result<Vec<f32>> {
        let pos = self.cached.len();
        let len = tokens.len();
        if len == 0 {
            bail!("forward needs at least one token");
        }
        if pos + len > self.capacity {
            bail!(
                "{} tokens do not fit in the context window of {} tokens",
                pos + len,
                self.capacity
            );
        }
        let weights = &self.weights;
        let dim = weights.hyper.dim;
        let buffers = &mut self.buffers;
        embed(weights, tokens, sized(&mut buffers.x, len * dim))?;
        let half = weights.hyper.head_dim / 2;
        let rotary = Rotary {
            cos: &self.cos[pos * half..(pos + len) * half],
            sin: &self.sin[pos * half..(pos + len) * half],
        };
        for (block, cache) in weights.blocks.iter().zip(self.caches.iter_mut()) {
            run_block(&weights.hyper, block, cache, pos, len, &rotary, buffers)?;
        }
        let last = &buffers.x[(len - 1) * dim..len * dim];
        let normed = sized(&mut buffers.normed, dim);
        rms_norm(last, &weights.norm, weights.hyper.eps as f32, normed);
        let logits = sized(&mut buffers.logits, weights.output.rows());
        weights
            .output
            .forward(normed, 1, &mut buffers.scratch, logits)?;
        self.cached.extend_from_slice(tokens);
        Ok(logits[..weights.vocab].to_vec())
    }
}

fn heads(hyper: &Hyper) -> Heads {
    Heads {
        n_head: hyper.n_head,
        n_kv_head: hyper.n_kv_head,
        head_dim: hyper.head_dim,
    }
}

/// Writes the embedding of each token into its row of `out`.
fn embed(weights: &Weights, tokens: &[u32], out: &mut [f32]) -> Result<()> {
    if let Some(bad) = tokens.iter().find(|&&t| t as usize >= weights.vocab) {
        bail!(
            "token id {bad} is outside the vocabulary of {} tokens",
            weights.vocab
        );
    }
    let dim = weights.hyper.dim;
    match &weights.embed {
        Embedding::Packed(table) => {
            for (token, row) in tokens.iter().zip(out.chunks_exact_mut(dim)) {
                table.row(*token as usize, row)?;
            }
        }
        Embedding::Candle(table) => {
            let ids = Tensor::new(tokens, &Device::Cpu)?;
            let rows = table.embedding(&ids)?.flatten_all()?.to_vec1::<f32>()?;
            out.copy_from_slice(&rows);
        }
    }
    Ok(())
}

/// Cosines and sines of the positions of one call, `head_dim / 2` per position.
struct Rotary<'a> {
    cos: &'a [f32],
    sin: &'a [f32],
}

fn run_block(
    hyper: &Hyper,
    block: &Block,
    cache: &mut KvCache,
    pos: usize,
    len: usize,
    rotary: &Rotary<'_>,
    b: &mut Buffers,
) -> Result<()> {
    attention_step(hyper, block, cache, pos, len, rotary, b)?;
    mlp_step(hyper, block, len, b)
}

/// RMSNorm, Q/K/V, rotary, attention and the output projection, added to `b.x`.
fn attention_step(
    hyper: &Hyper,
    block: &Block,
    cache: &mut KvCache,
    pos: usize,
    len: usize,
    rotary: &Rotary<'_>,
    b: &mut Buffers,
) -> Result<()> {
    let (dim, eps) = (hyper.dim, hyper.eps as f32);
    let normed = sized(&mut b.normed, len * dim);
    rms_norm(&b.x, &block.attn_norm, eps, normed);
    let width = block.qkv.width;
    let qkv = sized(&mut b.qkv, len * width);
    block.qkv.forward(normed, len, &mut b.scratch, qkv)?;
    let (q_at, k_at, v_at) = (
        block.qkv.offsets[0],
        block.qkv.offsets[1],
        block.qkv.offsets[2],
    );
    let (q_len, kv_len) = (
        hyper.n_head * hyper.head_dim,
        hyper.n_kv_head * hyper.head_dim,
    );
    let half = hyper.head_dim / 2;
    for (i, row) in qkv.chunks_exact_mut(width).enumerate() {
        let cos = &rotary.cos[i * half..(i + 1) * half];
        let sin = &rotary.sin[i * half..(i + 1) * half];
        rotate_pairs(&mut row[q_at..q_at + q_len], cos, sin);
        rotate_pairs(&mut row[k_at..k_at + kv_len], cos, sin);
        cache.store(
            pos + i,
            &row[k_at..k_at + kv_len],
            &row[v_at..v_at + kv_len],
        );
    }
    let attended = sized(&mut b.attended, len * q_len);
    attend(cache, &qkv[q_at..], width, pos, attended);
    let stream = Stream {
        x: &mut b.x,
        projected: &mut b.projected,
        scratch: &mut b.scratch,
    };
    residual(&block.wo, &b.attended, len, dim, stream)
}

/// RMSNorm, gate/up, SwiGLU and the down projection, added to `b.x`.
fn mlp_step(hyper: &Hyper, block: &Block, len: usize, b: &mut Buffers) -> Result<()> {
    let (dim, eps) = (hyper.dim, hyper.eps as f32);
    let normed = sized(&mut b.normed, len * dim);
    rms_norm(&b.x, &block.ffn_norm, eps, normed);
    let width = block.gate_up.width;
    let gate_up = sized(&mut b.gate_up, len * width);
    block
        .gate_up
        .forward(normed, len, &mut b.scratch, gate_up)?;
    let hidden = sized(&mut b.hidden, len * block.hidden);
    swiglu(gate_up, width, block.gate_up.offsets[1], hidden);
    let stream = Stream {
        x: &mut b.x,
        projected: &mut b.projected,
        scratch: &mut b.scratch,
    };
    residual(&block.w_down, &b.hidden, len, dim, stream)
}

/// The buffers a residual add writes.
struct Stream<'a> {
    x: &'a mut Vec<f32>,
    projected: &'a mut Vec<f32>,
    scratch: &'a mut Scratch,
}

/// Adds `input · Wᵀ` to the residual stream.
fn residual(w: &Linear, input: &[f32], len: usize, dim: usize, s: Stream<'_>) -> Result<()> {
    let rows = w.rows();
    let projected = sized(s.projected, len * rows);
    w.forward(input, len, s.scratch, projected)?;
    for (x, p) in s.x.chunks_exact_mut(dim).zip(projected.chunks_exact(rows)) {
        add_in_place(x, &p[..dim]);
    }
    Ok(())
}

/// Cosines and sines of `position * base^(-2i/head_dim)`, `(capacity, head_dim / 2)`.
fn rotary_tables(base: f32, head_dim: usize, capacity: usize) -> (Vec<f32>, Vec<f32>) {
    let half = head_dim / 2;
    let inv_freq: Vec<f32> = (0..half)
        .map(|i| 1.0 / base.powf(2.0 * i as f32 / head_dim as f32))
        .collect();
    let mut cos = Vec::with_capacity(capacity * half);
    let mut sin = Vec::with_capacity(capacity * half);
    for position in 0..capacity {
        for freq in &inv_freq {
            let angle = position as f32 * freq;
            cos.push(angle.cos());
            sin.push(angle.sin());
        }
    }
    (cos, sin)
}

#[cfg(test)]
mod tests {
    use super::super::{Loaded, MAX_CONTEXT, argmax};

    /// A chat prompt of 276 tokens and the first 48 tokens llama.cpp decodes greedily
    /// after it with the default model. Token 54 is a near tie (logits 24.04 and 23.98
    /// in llama.cpp), so the check stops well before it.
    const REFERENCE: &str = include_str!("testdata/smollm2_greedy.json");

    #[test]
    fn greedy_decoding_matches_llama_cpp() {
        let Some(paths) = crate::config::Paths::discover() else {
            eprintln!("skipped: no data directory");
            return;
        };
        let path = crate::model::default_model_path(&paths);
        if !path.is_file() {
            eprintln!("skipped: {} is absent", path.display());
            return;
        }
        let reference: serde_json::Value = serde_json::from_str(REFERENCE).unwrap();
        let ids = |key: &str| -> Vec<u32> {
            let values = reference[key].as_array().unwrap();
            values.iter().map(|v| v.as_u64().unwrap() as u32).collect()
        };
        let (prompt, expected) = (ids("prompt"), ids("greedy"));
        let mut loaded = Loaded::load(&path, MAX_CONTEXT).unwrap();
        let mut logits = Vec::new();
        for chunk in prompt.chunks(128) {
            logits = loaded.model.forward(chunk).unwrap();
        }
        let mut generated = Vec::new();
        for _ in 0..expected.len() {
            let next = argmax(&logits);
            generated.push(next);
            logits = loaded.model.forward(&[next]).unwrap();
        }
        assert_eq!(generated, expected);
    }
}
