//! Writes a tiny llama-architecture GGUF file with random weights, a byte-level BPE
//! vocabulary and a chat template, so engine tests need no download.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use rand::{Rng, SeedableRng};

pub const DIM: usize = 64;
pub const N_HEAD: usize = 4;
pub const N_KV_HEAD: usize = 2;
pub const FFN: usize = 128;
pub const N_LAYER: usize = 2;
pub const CONTEXT: usize = 256;

/// The chat template of the tiny model: ChatML that rejects a leading assistant turn.
pub const TEMPLATE: &str = "{% if messages[0]['role'] == 'assistant' %}{{ raise_exception('the first message must not be the assistant') }}{% endif %}\
{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}{% endfor %}\
{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/// Merge rules of the tiny vocabulary, in priority order.
pub const MERGES: &[(&str, &str)] = &[
    ("h", "e"),
    ("l", "l"),
    ("he", "ll"),
    ("hell", "o"),
    ("Ġ", "w"),
    ("o", "r"),
    ("Ġw", "or"),
    ("1", "2"),
];

/// GPT-2's byte-to-character table: printable bytes stand for themselves, the rest
/// take characters from 256 upwards.
pub fn byte_chars() -> Vec<char> {
    let printable =
        |b: u32| (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b);
    let mut next = 256;
    (0u32..256)
        .map(|b| {
            if printable(b) {
                char::from_u32(b).unwrap_or('?')
            } else {
                let c = char::from_u32(next).unwrap_or('?');
                next += 1;
                c
            }
        })
        .collect()
}

/// The vocabulary: three control tokens, the 256 byte characters, then one token per
/// merge rule.
pub fn vocabulary() -> Vec<String> {
    let mut tokens: Vec<String> = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    tokens.extend(byte_chars().into_iter().map(String::from));
    tokens.extend(MERGES.iter().map(|(a, b)| format!("{a}{b}")));
    tokens
}

fn random(rng: &mut rand::rngs::StdRng, rows: usize, cols: usize, scale: f32) -> Tensor {
    let data: Vec<f32> = (0..rows * cols)
        .map(|_| rng.random_range(-scale..scale))
        .collect();
    Tensor::from_vec(data, (rows, cols), &Device::Cpu).expect("tensor")
}

fn quantized(tensor: &Tensor, dtype: GgmlDType) -> QTensor {
    QTensor::quantize(tensor, dtype).expect("quantize")
}

/// Writes the tiny model to `path`; matrices are stored as `dtype` (Q4_1 exercises
/// the conversion to Q8_0).
pub fn write_tiny_model(path: &Path, dtype: GgmlDType, seed: u64) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let tokens = vocabulary();
    let vocab = tokens.len();
    let head_dim = DIM / N_HEAD;
    let mut tensors: Vec<(String, QTensor)> = Vec::new();
    let ones = Tensor::ones(DIM, candle_core::DType::F32, &Device::Cpu).expect("ones");
    tensors.push((
        "token_embd.weight".into(),
        quantized(&random(&mut rng, vocab, DIM, 1.0), GgmlDType::Q8_0),
    ));
    tensors.push((
        "output_norm.weight".into(),
        QTensor::quantize(&ones, GgmlDType::F32).expect("f32"),
    ));
    for layer in 0..N_LAYER {
        let mut add = |name: &str, tensor: QTensor| {
            tensors.push((format!("blk.{layer}.{name}.weight"), tensor))
        };
        add(
            "attn_norm",
            QTensor::quantize(&ones, GgmlDType::F32).expect("f32"),
        );
        add(
            "ffn_norm",
            QTensor::quantize(&ones, GgmlDType::F32).expect("f32"),
        );
        add("attn_q", quantized(&random(&mut rng, DIM, DIM, 0.3), dtype));
        add(
            "attn_k",
            quantized(&random(&mut rng, N_KV_HEAD * head_dim, DIM, 0.3), dtype),
        );
        add(
            "attn_v",
            quantized(&random(&mut rng, N_KV_HEAD * head_dim, DIM, 0.3), dtype),
        );
        add(
            "attn_output",
            quantized(&random(&mut rng, DIM, DIM, 0.3), dtype),
        );
        add(
            "ffn_gate",
            quantized(&random(&mut rng, FFN, DIM, 0.3), dtype),
        );
        add("ffn_up", quantized(&random(&mut rng, FFN, DIM, 0.3), dtype));
        add(
            "ffn_down",
            quantized(&random(&mut rng, DIM, FFN, 0.3), dtype),
        );
    }
    let mut types = vec![Value::I32(3); 3];
    types.extend(std::iter::repeat_n(Value::I32(1), vocab - 3));
    let strings = |items: Vec<String>| Value::Array(items.into_iter().map(Value::String).collect());
    let metadata: Vec<(&str, Value)> = vec![
        ("general.architecture", Value::String("llama".into())),
        ("llama.block_count", Value::U32(N_LAYER as u32)),
        ("llama.context_length", Value::U32(CONTEXT as u32)),
        ("llama.embedding_length", Value::U32(DIM as u32)),
        ("llama.feed_forward_length", Value::U32(FFN as u32)),
        ("llama.attention.head_count", Value::U32(N_HEAD as u32)),
        (
            "llama.attention.head_count_kv",
            Value::U32(N_KV_HEAD as u32),
        ),
        ("llama.rope.freq_base", Value::F32(10000.0)),
        ("llama.attention.layer_norm_rms_epsilon", Value::F32(1e-5)),
        ("tokenizer.ggml.model", Value::String("gpt2".into())),
        ("tokenizer.ggml.pre", Value::String("smollm".into())),
        ("tokenizer.ggml.tokens", strings(tokens)),
        ("tokenizer.ggml.token_type", Value::Array(types)),
        (
            "tokenizer.ggml.merges",
            strings(MERGES.iter().map(|(a, b)| format!("{a} {b}")).collect()),
        ),
        ("tokenizer.ggml.bos_token_id", Value::U32(1)),
        ("tokenizer.ggml.eos_token_id", Value::U32(2)),
        ("tokenizer.chat_template", Value::String(TEMPLATE.into())),
    ];
    let metadata: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (*k, v)).collect();
    let tensors: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut file = std::fs::File::create(path).expect("create model file");
    gguf_file::write(&mut file, &metadata, &tensors).expect("write gguf");
}
