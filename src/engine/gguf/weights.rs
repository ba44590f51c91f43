//! Loading a llama-architecture GGUF file: hyper-parameters and weights.
//!
//! Q4_0, Q4_1 and Q8_0 matrices are read straight from the file into the packed
//! layout of `assisters_kernels::packed`, on all cores. Q5_0 and Q5_1 ones are converted to Q8_0
//! first, and any other format stays with candle's `QMatMul`. The Q, K and V
//! projections of a block become one matrix, and so do the gate and up projections,
//! so each needs one pass over its input.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use assisters_kernels::packed::{self, Packed};
use candle_core::Device;
use candle_core::quantized::gguf_file::Content;
use candle_core::quantized::{GgmlDType, QMatMul, QTensor};

use super::matmul::{Linear, Scratch};
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

/// Several matrices with the same input, run as one. An output row has the parts
/// side by side, part `i` starting at `offsets[i]`.
pub(crate) struct Fused {
    /// One packed matrix when every part could be packed in the same format, else
    /// the parts themselves.
    parts: Vec<Linear>,
    pub offsets: Vec<usize>,
    /// Values per output row.
    pub width: usize,
}

impl Fused {
    fn new(parts: Vec<Linear>) -> Result<Self> {
        let all_q4 = parts.iter().all(|p| matches!(p, Linear::Q4(_)));
        let all_q8 = parts.iter().all(|p| matches!(p, Linear::Q8(_)));
        if all_q4 || all_q8 {
            let (linear, offsets) = if all_q4 {
                let (packed, offsets) = packed::concat(unpack(parts, Linear::into_q4))?;
                (Linear::Q4(packed), offsets)
            } else {
                let (packed, offsets) = packed::concat(unpack(parts, Linear::into_q8))?;
                (Linear::Q8(packed), offsets)
            };
            let width = linear.rows();
            return Ok(Fused {
                parts: vec![linear],
                offsets,
                width,
            });
        }
        let mut offsets = Vec::with_capacity(parts.len());
        let mut width = 0;
        for part in &parts {
            offsets.push(width);
            width += part.rows();
        }
        Ok(Fused {
            parts,
            offsets,
            width,
        })
    }

    /// Writes the fused product for the `m` rows of `x` into `out` (`m * width`).
    pub fn forward(
        &self,
        x: &[f32],
        m: usize,
        scratch: &mut Scratch,
        out: &mut [f32],
    ) -> Result<()> {
        if let [single] = self.parts.as_slice() {
            return single.forward(x, m, scratch, out);
        }
        for (part, offset) in self.parts.iter().zip(&self.offsets) {
            let rows = part.rows();
            let mut result = vec![0f32; m * rows];
            part.forward(x, m, scratch, &mut result)?;
            for (dst, src) in out
                .chunks_exact_mut(self.width)
                .zip(result.chunks_exact(rows))
            {
                dst[*offset..offset + rows].copy_from_slice(src);
            }
        }
        Ok(())
    }
}

fn unpack<T>(parts: Vec<Linear>, get: fn(Linear) -> Option<Packed<T>>) -> Vec<Packed<T>> {
    parts.into_iter().filter_map(get).collect()
}

/// One transformer block.
pub(crate) struct Block {
    pub attn_norm: Vec<f32>,
    /// Q, K and V projections.
    pub qkv: Fused,
    pub wo: Linear,
    pub ffn_norm: Vec<f32>,
    /// Gate and up projections.
    pub gate_up: Fused,
    pub w_down: Linear,
    /// Width of the MLP's hidden layer.
    pub hidden: usize,
}

/// The token embedding table.
pub(crate) enum Embedding {
    /// A packed Q4_1 or Q8_0 matrix, shared with the output head when the file ties
    /// them.
    Packed(Arc<Linear>),
    Candle(Arc<QTensor>),
}

/// All weights of a model.
pub(crate) struct Weights {
    pub hyper: Hyper,
    pub embed: Embedding,
    pub blocks: Vec<Block>,
    pub norm: Vec<f32>,
    pub output: Arc<Linear>,
    /// Rows of the output head that are real vocabulary entries.
    pub vocab: usize,
}

/// Formats whose CPU kernels are scalar in candle; converted to Q8_0 when loading.
fn needs_conversion(dtype: GgmlDType) -> bool {
    matches!(dtype, GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q5_1)
}

/// Re-quantises a tensor to Q8_0 when its format has no fast kernel in candle.
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

impl Linear {
    fn into_q4(self) -> Option<Packed<packed::TileQ4>> {
        match self {
            Linear::Q4(packed) => Some(packed),
            _ => None,
        }
    }

    fn into_q8(self) -> Option<Packed<packed::TileQ8>> {
        match self {
            Linear::Q8(packed) => Some(packed),
            _ => None,
        }
    }
}

/// Reads tensors of one GGUF file; each loading thread has its own.
struct Reader<'a> {
    path: &'a Path,
    content: &'a Content,
    file: File,
    /// The bytes of the last tensor read raw, reused for the next one.
    buffer: Vec<u8>,
}

impl<'a> Reader<'a> {
    fn open(path: &'a Path, content: &'a Content) -> Result<Self> {
        let file = File::open(path)
            .with_context(|| format!("cannot open model file {}", path.display()))?;
        Ok(Reader {
            path,
            content,
            file,
            buffer: Vec::new(),
        })
    }

    fn tensor(&mut self, name: &str) -> Result<QTensor> {
        self.content
            .tensor(&mut self.file, name, &Device::Cpu)
            .map_err(|err| {
                anyhow!(
                    "cannot read tensor `{name}` from {}: {err}",
                    self.path.display()
                )
            })
    }

    /// Reads a 1-D tensor as `f32` values.
    fn vector(&mut self, name: &str) -> Result<Vec<f32>> {
        Ok(self
            .tensor(name)?
            .dequantize(&Device::Cpu)?
            .flatten_all()?
            .to_vec1::<f32>()?)
    }

    /// Reads a matrix, packed when its format allows.
    fn linear(&mut self, name: &str) -> Result<Linear> {
        let info = self
            .content
            .tensor_infos
            .get(name)
            .ok_or_else(|| anyhow!("{} has no tensor `{name}`", self.path.display()))?;
        let (rows, cols) = info.shape.dims2()?;
        if cols % packed::BLOCK == 0 {
            let dtype = info.ggml_dtype;
            match dtype {
                GgmlDType::Q4_1 | GgmlDType::Q4_0 | GgmlDType::Q8_0 => {
                    let bytes = self.raw(
                        name,
                        info.offset,
                        rows * cols / dtype.block_size() * dtype.type_size(),
                    )?;
                    return Ok(match dtype {
                        GgmlDType::Q4_1 => Linear::Q4(packed::pack_q4_1(bytes, rows, cols)?),
                        GgmlDType::Q4_0 => Linear::Q4(packed::pack_q4_0(bytes, rows, cols)?),
                        _ => Linear::Q8(packed::pack_q8_0(bytes, rows, cols)?),
                    });
                }
                GgmlDType::Q5_0 | GgmlDType::Q5_1 => {
                    let tensor = to_fast_format(self.tensor(name)?)?;
                    return Ok(Linear::Q8(packed::pack_q8_0(&tensor.data()?, rows, cols)?));
                }
                _ => {}
            }
        }
        Ok(Linear::Candle {
            matmul: QMatMul::from_qtensor(self.tensor(name)?)?,
            rows,
            cols,
        })
    }

    /// Reads `len` bytes of tensor data at `offset` into the reader's buffer.
    fn raw(&mut self, name: &str, offset: u64, len: usize) -> Result<&[u8]> {
        use std::io::{Read, Seek, SeekFrom};
        self.buffer.resize(len, 0);
        let start = self.content.tensor_data_offset + offset;
        self.file
            .seek(SeekFrom::Start(start))
            .and_then(|_| self.file.read_exact(&mut self.buffer))
            .map_err(|err| {
                anyhow!(
                    "cannot read tensor `{name}` ({len} bytes at offset {start}) from {}: {err}",
                    self.path.display()
                )
            })?;
        Ok(&self.buffer)
    }

    fn block(&mut self, layer: usize) -> Result<Block> {
        let name = |part: &str| format!("blk.{layer}.{part}.weight");
        let gate = self.linear(&name("ffn_gate"))?;
        // The real row count: a packed matrix pads its rows to a whole group.
        let hidden = match self.content.tensor_infos.get(&name("ffn_gate")) {
            Some(info) => info.shape.dims2()?.0,
            None => gate.rows(),
        };
        Ok(Block {
            attn_norm: self.vector(&name("attn_norm"))?,
            qkv: Fused::new(vec![
                self.linear(&name("attn_q"))?,
                self.linear(&name("attn_k"))?,
                self.linear(&name("attn_v"))?,
            ])?,
            wo: self.linear(&name("attn_output"))?,
            ffn_norm: self.vector(&name("ffn_norm"))?,
            gate_up: Fused::new(vec![gate, self.linear(&name("ffn_up"))?])?,
            w_down: self.linear(&name("ffn_down"))?,
            hidden,
        })
    }

    /// Reads the embedding table and the output head, which is the same matrix when
    /// the file has no `output.weight`.
    fn embedding_and_head(&mut self) -> Result<(Embedding, Arc<Linear>, usize)> {
        let name = "token_embd.weight";
        let tied = !self.content.tensor_infos.contains_key("output.weight");
        let table = self.linear(name)?;
        let vocab = match &table {
            Linear::Q4(p) => p.rows,
            Linear::Q8(p) => p.rows,
            Linear::Candle { rows, .. } => *rows,
        };
        let table = Arc::new(table);
        let embed = if matches!(*table, Linear::Candle { .. }) {
            Embedding::Candle(Arc::new(self.tensor(name)?))
        } else {
            Embedding::Packed(table.clone())
        };
        let output = if tied {
            table
        } else {
            Arc::new(self.linear("output.weight")?)
        };
        Ok((embed, output, vocab))
    }
}

impl Weights {
    /// Reads the weights of an opened GGUF file, the blocks on all cores.
    pub(crate) fn load(path: &Path, content: &Content, hyper: Hyper) -> Result<Self> {
        let workers = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, 8);
        let next = std::sync::atomic::AtomicUsize::new(0);
        let n_layer = hyper.n_layer;
        let (head, mut blocks) = std::thread::scope(|scope| -> Result<_> {
            let handles: Vec<_> = (0..workers)
                .map(|_| {
                    scope.spawn(|| -> Result<Vec<(usize, Block)>> {
                        let mut reader = Reader::open(path, content)?;
                        let mut done = Vec::new();
                        loop {
                            let layer = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            if layer >= n_layer {
                                return Ok(done);
                            }
                            done.push((layer, reader.block(layer)?));
                        }
                    })
                })
                .collect();
            // The head is the largest single job, so this thread takes it first.
            let head = Reader::open(path, content).and_then(|mut reader| {
                let (embed, output, vocab) = reader.embedding_and_head()?;
                Ok((embed, output, vocab, reader.vector("output_norm.weight")?))
            });
            let mut blocks = Vec::with_capacity(n_layer);
            for handle in handles {
                let done = handle
                    .join()
                    .map_err(|_| anyhow!("a weight loading thread panicked"))??;
                blocks.extend(done);
            }
            Ok((head?, blocks))
        })?;
        blocks.sort_by_key(|(layer, _)| *layer);
        let (embed, output, vocab, norm) = head;
        Ok(Weights {
            hyper,
            embed,
            blocks: blocks.into_iter().map(|(_, block)| block).collect(),
            norm,
            output,
            vocab,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Tensor;

    fn matrix(rows: usize, cols: usize, seed: usize, dtype: GgmlDType) -> QTensor {
        let values: Vec<f32> = (0..rows * cols)
            .map(|i| (((i + seed) * 4099 % 1013) as f32 / 506.5 - 1.0) * 0.25)
            .collect();
        let dense = Tensor::from_vec(values, (rows, cols), &Device::Cpu).unwrap();
        QTensor::quantize(&dense, dtype).unwrap()
    }

    fn packed_q8(tensor: &QTensor) -> Linear {
        let (rows, cols) = tensor.shape().dims2().unwrap();
        Linear::Q8(packed::pack_q8_0(&tensor.data().unwrap(), rows, cols).unwrap())
    }

    fn candle(tensor: QTensor) -> Linear {
        let (rows, cols) = tensor.shape().dims2().unwrap();
        Linear::Candle {
            matmul: QMatMul::from_qtensor(tensor).unwrap(),
            rows,
            cols,
        }
    }

    /// Runs each part on its own and checks that the fused output contains the same
    /// values at the part's offset.
    fn check_fused(parts: Vec<Linear>, alone: Vec<Linear>, packed: bool) {
        let fused = Fused::new(parts).unwrap();
        assert_eq!(fused.parts.len() == 1, packed);
        let (m, cols) = (3, 64);
        let x: Vec<f32> = (0..m * cols).map(|i| (i % 13) as f32 / 6.0 - 1.0).collect();
        let mut scratch = Scratch::default();
        let mut out = vec![0f32; m * fused.width];
        fused.forward(&x, m, &mut scratch, &mut out).unwrap();
        for (part, offset) in alone.iter().zip(&fused.offsets) {
            let rows = part.rows();
            let mut expected = vec![0f32; m * rows];
            part.forward(&x, m, &mut scratch, &mut expected).unwrap();
            for row in 0..m {
                let got = &out[row * fused.width + offset..][..rows];
                assert_eq!(got, &expected[row * rows..(row + 1) * rows], "row {row}");
            }
        }
    }

    #[test]
    fn fused_packed_parts_match_separate_products() {
        let a = matrix(12, 64, 1, GgmlDType::Q8_0);
        let b = matrix(5, 64, 2, GgmlDType::Q8_0);
        check_fused(
            vec![packed_q8(&a), packed_q8(&b)],
            vec![packed_q8(&a), packed_q8(&b)],
            true,
        );
    }

    #[test]
    fn fused_mixed_formats_run_part_by_part() {
        let a = matrix(12, 64, 1, GgmlDType::Q8_0);
        let b = || matrix(6, 64, 3, GgmlDType::F16);
        check_fused(
            vec![packed_q8(&a), candle(b())],
            vec![packed_q8(&a), candle(b())],
            false,
        );
    }
}
