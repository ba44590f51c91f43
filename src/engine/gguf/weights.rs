//! Loading a llama-architecture GGUF file: hyper-parameters and weights.
//!
//! candle's CPU kernels for Q4_1, Q5_0 and Q5_1 are scalar loops, while Q8_0 has SIMD
//! ones; such tensors are converted to Q8_0 while loading, on all cores (Q4_1 block by
//! block, the others by dequantising and quantising). The conversion makes every
//! matmul several times faster.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use candle_core::quantized::gguf_file::Content;
use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Device, Tensor};

use super::meta::Meta;

/// The shape of a llama-architecture model.
#[derive(Debug, Clone, PartialEq)]
pub struct Hyper {
    pub n_layer: usize,
    pub n_head: usize,
    pub n_kv_head: usize,
    pub dim: usize,
    pub head_dim: usize,
    pub eps: f64,
    pub rope_base: f32,
    /// Context length the model was trained with.
    pub context: usize,
}

impl Hyper {
    pub(crate) fn from_meta(meta: &Meta<'_>) -> Result<Self> {
        let arch = meta.string("general.architecture")?;
        if arch != "llama" {
            bail!("general.architecture is {arch:?}; only \"llama\" models are supported");
        }
        let n = |key: &str| -> Result<usize> { Ok(meta.uint(&format!("llama.{key}"))? as usize) };
        let n_head = n("attention.head_count")?;
        let dim = n("embedding_length")?;
        let hyper = Hyper {
            n_layer: n("block_count")?,
            n_head,
            n_kv_head: meta
                .opt_uint("llama.attention.head_count_kv")
                .map_or(n_head, |v| v as usize),
            dim,
            head_dim: dim / n_head.max(1),
            eps: meta
                .opt_float("llama.attention.layer_norm_rms_epsilon")
                .unwrap_or(1e-5),
            rope_base: meta.opt_float("llama.rope.freq_base").unwrap_or(10_000.0) as f32,
            context: meta.opt_uint("llama.context_length").unwrap_or(2048) as usize,
        };
        hyper.validate()?;
        Ok(hyper)
    }

    fn validate(&self) -> Result<()> {
        if self.n_head == 0 || self.n_kv_head == 0 || self.n_layer == 0 {
            bail!("the model has no layers or no attention heads: {self:?}");
        }
        if self.dim % self.n_head != 0 || self.n_head % self.n_kv_head != 0 {
            bail!("attention heads do not divide the model width evenly: {self:?}");
        }
        if self.head_dim % 2 != 0 {
            bail!(
                "head size {} is odd, so rotary embedding cannot apply",
                self.head_dim
            );
        }
        Ok(())
    }
}

/// One transformer block.
pub(crate) struct Block {
    pub attn_norm: Tensor,
    pub wq: QMatMul,
    pub wk: QMatMul,
    pub wv: QMatMul,
    pub wo: QMatMul,
    pub ffn_norm: Tensor,
    pub w_gate: QMatMul,
    pub w_up: QMatMul,
    pub w_down: QMatMul,
}

/// All weights of a model.
pub(crate) struct Weights {
    pub hyper: Hyper,
    pub embed: Arc<QTensor>,
    pub blocks: Vec<Block>,
    pub norm: Tensor,
    pub output: QMatMul,
}

/// Formats whose CPU kernels are scalar in candle; converted to Q8_0 when loading.
fn needs_conversion(dtype: GgmlDType) -> bool {
    matches!(dtype, GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q5_1)
}

/// Re-quantises a tensor to Q8_0 when its format has no fast kernel.
pub fn to_fast_format(tensor: QTensor) -> Result<QTensor> {
    if !needs_conversion(tensor.dtype()) {
        return Ok(tensor);
    }
    let (_, k) = tensor.shape().dims2()?;
    if k % GgmlDType::Q8_0.block_size() != 0 {
        return Ok(tensor);
    }
    if let Some(converted) = super::requant::q4_1_to_q8_0(&tensor)? {
        return Ok(converted);
    }
    let dense = tensor.dequantize(&Device::Cpu)?;
    Ok(QTensor::quantize(&dense, GgmlDType::Q8_0)?)
}

impl Weights {
    /// Reads the weights of an opened GGUF file.
    pub(crate) fn load(path: &Path, content: &Content, hyper: Hyper) -> Result<Self> {
        let mut file = std::fs::File::open(path)
            .with_context(|| format!("cannot open model file {}", path.display()))?;
        let mut raw = |name: &str| -> Result<QTensor> {
            content
                .tensor(&mut file, name, &Device::Cpu)
                .map_err(|err| {
                    anyhow!("cannot read tensor `{name}` from {}: {err}", path.display())
                })
        };
        let embed = Arc::new(raw("token_embd.weight")?);
        let norm = raw("output_norm.weight")?.dequantize(&Device::Cpu)?;
        let output = if content.tensor_infos.contains_key("output.weight") {
            QMatMul::from_qtensor(to_fast_format(raw("output.weight")?)?)?
        } else {
            QMatMul::from_arc(embed.clone())?
        };
        let mut pending = Vec::with_capacity(hyper.n_layer);
        for layer in 0..hyper.n_layer {
            let mut get = |part: &str| raw(&format!("blk.{layer}.{part}.weight"));
            pending.push([
                get("attn_norm")?,
                get("attn_q")?,
                get("attn_k")?,
                get("attn_v")?,
                get("attn_output")?,
                get("ffn_norm")?,
                get("ffn_gate")?,
                get("ffn_up")?,
                get("ffn_down")?,
            ]);
        }
        let blocks = convert_blocks(pending)?;
        Ok(Weights {
            hyper,
            embed,
            blocks,
            norm,
            output,
        })
    }
}

/// Builds the blocks, converting their matrices on all cores.
fn convert_blocks(pending: Vec<[QTensor; 9]>) -> Result<Vec<Block>> {
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    let chunk = pending.len().div_ceil(workers).max(1);
    let mut groups: Vec<Vec<[QTensor; 9]>> = Vec::new();
    let mut rest = pending.into_iter();
    loop {
        let group: Vec<_> = rest.by_ref().take(chunk).collect();
        if group.is_empty() {
            break;
        }
        groups.push(group);
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = groups
            .into_iter()
            .map(|group| {
                scope.spawn(move || group.into_iter().map(block).collect::<Result<Vec<_>>>())
            })
            .collect();
        let mut blocks = Vec::new();
        for handle in handles {
            let converted = handle
                .join()
                .map_err(|_| anyhow!("a weight conversion thread panicked"))??;
            blocks.extend(converted);
        }
        Ok(blocks)
    })
}

fn block(parts: [QTensor; 9]) -> Result<Block> {
    let [attn_norm, wq, wk, wv, wo, ffn_norm, w_gate, w_up, w_down] = parts;
    let matrix = |tensor: QTensor| -> Result<QMatMul> {
        Ok(QMatMul::from_qtensor(to_fast_format(tensor)?)?)
    };
    Ok(Block {
        attn_norm: attn_norm.dequantize(&Device::Cpu)?,
        wq: matrix(wq)?,
        wk: matrix(wk)?,
        wv: matrix(wv)?,
        wo: matrix(wo)?,
        ffn_norm: ffn_norm.dequantize(&Device::Cpu)?,
        w_gate: matrix(w_gate)?,
        w_up: matrix(w_up)?,
        w_down: matrix(w_down)?,
    })
}
