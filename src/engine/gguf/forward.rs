//! The llama forward pass on candle tensors, with a preallocated key/value cache.
//!
//! Per block: RMSNorm, the Q/K/V projections, rotary position embedding on adjacent
//! pairs (the layout GGUF llama files use), grouped-query attention over the cache,
//! the output projection and a residual add; then RMSNorm, a SwiGLU MLP and another
//! residual add. New keys and values are written into fixed-size buffers in place,
//! so a step costs the same however long the context already is, apart from the
//! attention itself.

use anyhow::{Result, bail};
use candle_core::{D, DType, Device, Module, Tensor};

use super::weights::{Block, Weights};

/// A model plus its cache: the state of one conversation at a time.
pub struct Transformer {
    weights: Weights,
    /// Per block: keys and values, each `(n_kv_head, capacity, head_dim)`.
    cache: Vec<(Tensor, Tensor)>,
    /// Rotary tables, `(capacity, head_dim / 2)`.
    cos: Tensor,
    sin: Tensor,
    capacity: usize,
    /// The tokens whose keys and values are in the cache, in order.
    cached: Vec<u32>,
}

impl Transformer {
    /// Wraps loaded weights with a cache of `capacity` positions.
    pub(crate) fn new(weights: Weights, capacity: usize) -> Result<Self> {
        let hyper = &weights.hyper;
        let capacity = capacity.clamp(1, hyper.context.max(1));
        let shape = (hyper.n_kv_head, capacity, hyper.head_dim);
        let mut cache = Vec::with_capacity(hyper.n_layer);
        for _ in 0..hyper.n_layer {
            cache.push((
                Tensor::zeros(shape, DType::F32, &Device::Cpu)?,
                Tensor::zeros(shape, DType::F32, &Device::Cpu)?,
            ));
        }
        let (cos, sin) = rotary_tables(hyper.rope_base, hyper.head_dim, capacity)?;
        Ok(Transformer {
            weights,
            cache,
            cos,
            sin,
            capacity,
            cached: Vec::new(),
        })
    }

    /// Returns how many positions the cache holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Returns the model's hyper-parameters.
    pub fn hyper(&self) -> &super::weights::Hyper {
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
        let ids = Tensor::new(tokens, &Device::Cpu)?;
        let mut x = self.weights.embed.embedding(&ids)?;
        let mask = causal_mask(pos, len)?;
        let cos = self.cos.narrow(0, pos, len)?;
        let sin = self.sin.narrow(0, pos, len)?;
        for (index, block) in self.weights.blocks.iter().enumerate() {
            let step = Step {
                pos,
                len,
                cos: &cos,
                sin: &sin,
                mask: mask.as_ref(),
            };
            x = run_block(&self.weights.hyper, block, &self.cache[index], &step, &x)?;
        }
        let last = x.narrow(0, len - 1, 1)?;
        let last = rms_norm(&last, &self.weights.norm, self.weights.hyper.eps)?;
        let logits = self.weights.output.forward(&last)?;
        self.cached.extend_from_slice(tokens);
        Ok(logits.squeeze(0)?.to_vec1::<f32>()?)
    }
}

/// What every block of one forward step shares.
struct Step<'a> {
    pos: usize,
    len: usize,
    cos: &'a Tensor,
    sin: &'a Tensor,
    mask: Option<&'a Tensor>,
}

fn run_block(
    hyper: &super::weights::Hyper,
    block: &Block,
    cache: &(Tensor, Tensor),
    step: &Step<'_>,
    x: &Tensor,
) -> Result<Tensor> {
    let (len, hd) = (step.len, hyper.head_dim);
    let h = rms_norm(x, &block.attn_norm, hyper.eps)?;
    let heads = |t: Tensor, n: usize| -> Result<Tensor> {
        Ok(t.reshape((len, n, hd))?.transpose(0, 1)?.contiguous()?)
    };
    let q = heads(block.wq.forward(&h)?, hyper.n_head)?;
    let k = heads(block.wk.forward(&h)?, hyper.n_kv_head)?;
    let v = heads(block.wv.forward(&h)?, hyper.n_kv_head)?;
    let q = rotate(&q, step.cos, step.sin)?;
    let k = rotate(&k, step.cos, step.sin)?;
    let (k_cache, v_cache) = cache;
    k_cache.slice_set(&k, 1, step.pos)?;
    v_cache.slice_set(&v, 1, step.pos)?;
    let total = step.pos + len;
    let keys = k_cache.narrow(1, 0, total)?;
    let values = v_cache.narrow(1, 0, total)?;
    let group = hyper.n_head / hyper.n_kv_head;
    let q = (q.reshape((hyper.n_kv_head, group * len, hd))? * (1.0 / (hd as f64).sqrt()))?;
    let mut scores = q.matmul(&keys.t()?)?;
    if let Some(mask) = step.mask {
        scores = scores
            .reshape((hyper.n_kv_head, group, len, total))?
            .broadcast_add(mask)?
            .reshape((hyper.n_kv_head, group * len, total))?;
    }
    let probs = softmax_last(&scores)?;
    let attended = probs
        .matmul(&values)?
        .reshape((hyper.n_head, len, hd))?
        .transpose(0, 1)?
        .contiguous()?
        .reshape((len, hyper.dim))?;
    let x = (x + block.wo.forward(&attended)?)?;
    let h = rms_norm(&x, &block.ffn_norm, hyper.eps)?;
    let gate = block.w_gate.forward(&h)?.silu()?;
    let up = block.w_up.forward(&h)?;
    let down = block.w_down.forward(&(gate * up)?)?;
    Ok((x + down)?)
}

/// `x / sqrt(mean(x²) + eps) * weight`, over the last dimension.
fn rms_norm(x: &Tensor, weight: &Tensor, eps: f64) -> Result<Tensor> {
    let scale = (x.sqr()?.mean_keepdim(D::Minus1)? + eps)?.sqrt()?.recip()?;
    Ok(x.broadcast_mul(&scale)?.broadcast_mul(weight)?)
}

fn softmax_last(x: &Tensor) -> Result<Tensor> {
    let max = x.max_keepdim(D::Minus1)?;
    let exp = x.broadcast_sub(&max)?.exp()?;
    let sum = exp.sum_keepdim(D::Minus1)?;
    Ok(exp.broadcast_div(&sum)?)
}

/// Rotates adjacent pairs `(x[2i], x[2i+1])` of `x: (heads, len, head_dim)` by the
/// angles of their positions.
fn rotate(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    let (heads, len, hd) = x.dims3()?;
    let pairs = x.reshape((heads, len, hd / 2, 2))?;
    let even = pairs.narrow(3, 0, 1)?;
    let odd = pairs.narrow(3, 1, 1)?;
    let cos = cos.reshape((len, hd / 2, 1))?;
    let sin = sin.reshape((len, hd / 2, 1))?;
    let new_even = (even.broadcast_mul(&cos)? - odd.broadcast_mul(&sin)?)?;
    let new_odd = (even.broadcast_mul(&sin)? + odd.broadcast_mul(&cos)?)?;
    Ok(Tensor::cat(&[new_even, new_odd], 3)?.reshape((heads, len, hd))?)
}

/// Cosines and sines of `position * base^(-2i/head_dim)`, `(capacity, head_dim / 2)`.
fn rotary_tables(base: f32, head_dim: usize, capacity: usize) -> Result<(Tensor, Tensor)> {
    let half = head_dim / 2;
    let inv_freq: Vec<f32> = (0..half)
        .map(|i| 1.0 / base.powf(2.0 * i as f32 / head_dim as f32))
        .collect();
    let mut angles = Vec::with_capacity(capacity * half);
    for position in 0..capacity {
        angles.extend(inv_freq.iter().map(|freq| position as f32 * freq));
    }
    let angles = Tensor::from_vec(angles, (capacity, half), &Device::Cpu)?;
    Ok((angles.cos()?, angles.sin()?))
}

/// The mask that hides later positions from earlier ones: `(len, pos + len)`, or
/// `None` for a single token, which may see everything.
fn causal_mask(pos: usize, len: usize) -> Result<Option<Tensor>> {
    if len == 1 {
        return Ok(None);
    }
    let total = pos + len;
    let mut mask = Vec::with_capacity(len * total);
    for row in 0..len {
        mask.extend((0..total).map(|col| {
            if col > pos + row {
                f32::NEG_INFINITY
            } else {
                0.0
            }
        }));
    }
    Ok(Some(Tensor::from_vec(mask, (len, total), &Device::Cpu)?))
}
