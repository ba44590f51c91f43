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
    /// Rotary tables, `capacity` rows of `head_dim / 2`, row-major.
    cos: Vec<f32>,
    sin: Vec<f32>,
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
        let half = self.weights.hyper.head_dim / 2;
        let cos = &self.cos[pos * half..(pos + len) * half];
        let sin = &self.sin[pos * half..(pos + len) * half];
        for (index, block) in self.weights.blocks.iter().enumerate() {
            let step = Step {
                pos,
                len,
                cos,
                sin,
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
    cos: &'a [f32],
    sin: &'a [f32],
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
    let rotary = Some((step.cos, step.sin));
    let q = split_heads(&block.wq.forward(&h)?, (len, hyper.n_head, hd), rotary)?;
    let k = split_heads(&block.wk.forward(&h)?, (len, hyper.n_kv_head, hd), rotary)?;
    let v = split_heads(&block.wv.forward(&h)?, (len, hyper.n_kv_head, hd), None)?;
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

/// Splits a projection `(len, heads * head_dim)` into `(heads, len, head_dim)`, and
/// with `rotary` (per position, `head_dim / 2` cosines and sines) rotates each
/// adjacent pair `(x[2i], x[2i+1])` by its position's angle. One pass over plain
/// memory instead of a dozen small tensor operations per step.
fn split_heads(
    t: &Tensor,
    (len, heads, hd): (usize, usize, usize),
    rotary: Option<(&[f32], &[f32])>,
) -> Result<Tensor> {
    let data = t.flatten_all()?.to_vec1::<f32>()?;
    let half = hd / 2;
    let mut out = vec![0f32; heads * len * hd];
    for head in 0..heads {
        for row in 0..len {
            let start = (row * heads + head) * hd;
            let src = &data[start..start + hd];
            let dst = &mut out[(head * len + row) * hd..][..hd];
            let Some((cos, sin)) = rotary else {
                dst.copy_from_slice(src);
                continue;
            };
            let cos = &cos[row * half..(row + 1) * half];
            let sin = &sin[row * half..(row + 1) * half];
            for i in 0..half {
                let (even, odd) = (src[2 * i], src[2 * i + 1]);
                dst[2 * i] = even * cos[i] - odd * sin[i];
                dst[2 * i + 1] = even * sin[i] + odd * cos[i];
            }
        }
    }
    Ok(Tensor::from_vec(out, (heads, len, hd), &Device::Cpu)?)
}

/// Cosines and sines of `position * base^(-2i/head_dim)`, `(capacity, head_dim / 2)`.
fn rotary_tables(base: f32, head_dim: usize, capacity: usize) -> Result<(Vec<f32>, Vec<f32>)> {
    let half = head_dim / 2;
    let inv_freq: Vec<f32> = (0..half)
        .map(|i| 1.0 / base.powf(2.0 * i as f32 / head_dim as f32))
        .collect();
    let mut angles = Vec::with_capacity(capacity * half);
    for position in 0..capacity {
        angles.extend(inv_freq.iter().map(|freq| position as f32 * freq));
    }
    let angles = Tensor::from_vec(angles, (capacity, half), &Device::Cpu)?;
    let flat = |t: Tensor| -> Result<Vec<f32>> { Ok(t.flatten_all()?.to_vec1::<f32>()?) };
    Ok((flat(angles.cos()?)?, flat(angles.sin()?)?))
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
