//! The tokenizer, built from a GGUF file's own metadata: a byte-level BPE with the
//! pre-tokenizer that `tokenizer.ggml.pre` names, and the control tokens as special
//! tokens so that a rendered chat template encodes to their ids.

use anyhow::{Context, Result, anyhow, bail};
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{BPE, Vocab};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::tokenizer::SplitDelimiterBehavior;
use tokenizers::{AddedToken, Tokenizer};

use super::meta::Meta;

/// GPT-2's word pattern: contractions, letters, numbers, other symbols, spaces.
const GPT2_PATTERN: &str =
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";
/// Llama 3's pattern: numbers in groups of at most three digits.
const LLAMA3_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Qwen 2's pattern: like Llama 3's, but every digit on its own.
const QWEN2_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// One digit: models that split numbers into single digits before the word pattern.
const DIGIT_PATTERN: &str = r"\p{N}";

/// GGUF token types (`tokenizer.ggml.token_type`).
const TOKEN_CONTROL: u64 = 3;
const TOKEN_USER_DEFINED: u64 = 4;

/// A tokenizer and the ids the engine needs.
pub struct GgufTokenizer {
    pub tokenizer: Tokenizer,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    /// Ids that end a reply: `eos`, plus end-of-turn markers.
    pub stop_ids: Vec<u32>,
    tokens: Vec<String>,
}

impl GgufTokenizer {
    /// Reads only the metadata of a GGUF file and builds its tokenizer.
    pub fn from_file(path: &std::path::Path) -> Result<Self> {
        crate::model::check_model_file(path)?;
        let mut file = std::fs::File::open(path)
            .with_context(|| format!("cannot open model file {}", path.display()))?;
        let content = candle_core::quantized::gguf_file::Content::read(&mut file)
            .map_err(|err| anyhow!("{} is not a readable GGUF file: {err}", path.display()))?;
        Self::from_meta(&Meta::new(&content.metadata))
    }

    /// Builds the tokenizer from GGUF metadata.
    pub(crate) fn from_meta(meta: &Meta<'_>) -> Result<Self> {
        let kind = meta.string("tokenizer.ggml.model")?;
        if kind != "gpt2" {
            // NOTE: SentencePiece-style vocabularies (`llama`) are not built yet.
            bail!(
                "tokenizer.ggml.model is {kind:?}; only byte-level BPE (\"gpt2\") \
                 vocabularies are supported"
            );
        }
        let tokens: Vec<String> = meta
            .strings("tokenizer.ggml.tokens")?
            .into_iter()
            .map(str::to_owned)
            .collect();
        let merges = meta
            .strings("tokenizer.ggml.merges")?
            .into_iter()
            .map(split_merge)
            .collect::<Result<Vec<_>>>()?;
        let vocab: Vocab = tokens
            .iter()
            .enumerate()
            .map(|(id, token)| (token.clone(), id as u32))
            .collect();
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .build()
            .map_err(|err| anyhow!("cannot build the BPE model: {err}"))?;
        let mut tokenizer = Tokenizer::new(bpe);
        let pre = meta.opt_string("tokenizer.ggml.pre").unwrap_or("default");
        tokenizer.with_pre_tokenizer(Some(pre_tokenizer(pre)?));
        tokenizer.with_decoder(Some(ByteLevelDecoder::default()));
        add_marked_tokens(&mut tokenizer, meta, &tokens)?;
        let id = |key: &str| meta.opt_uint(key).map(|id| id as u32);
        let bos = id("tokenizer.ggml.bos_token_id");
        let eos = id("tokenizer.ggml.eos_token_id");
        let mut stop_ids: Vec<u32> = eos.into_iter().collect();
        for marker in [
            "<|im_end|>",
            "<|eot_id|>",
            "<|end|>",
            "<end_of_turn>",
            "<|endoftext|>",
        ] {
            if let Some(id) = tokens.iter().position(|token| token == marker) {
                if !stop_ids.contains(&(id as u32)) {
                    stop_ids.push(id as u32);
                }
            }
        }
        Ok(GgufTokenizer {
            tokenizer,
            bos,
            eos,
            stop_ids,
            tokens,
        })
    }

    /// Encodes text; special-token markers in it become their ids.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let encoding = self
            .tokenizer
            .encode(text, false)
            .map_err(|err| anyhow!("cannot tokenize: {err}"))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// Decodes ids to text, leaving special tokens out.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.tokenizer
            .decode(ids, true)
            .map_err(|err| anyhow!("cannot decode: {err}"))
    }

    /// Returns the text of a token as stored in the vocabulary.
    pub fn token(&self, id: u32) -> Option<&str> {
        self.tokens.get(id as usize).map(String::as_str)
    }

    /// Returns the vocabulary size.
    pub fn vocab_size(&self) -> usize {
        self.tokens.len()
    }
}

/// Splits a merge rule `"a b"` into its two halves.
fn split_merge(rule: &str) -> Result<(String, String)> {
    let (left, right) = rule
        .split_once(' ')
        .with_context(|| format!("merge rule {rule:?} has no space"))?;
    Ok((left.to_owned(), right.to_owned()))
}

/// The regex patterns applied before BPE, by `tokenizer.ggml.pre` name.
fn patterns(pre: &str) -> &'static [&'static str] {
    match pre {
        "smollm" | "starcoder" | "refact" | "command-r" | "codeshell" | "exaone" | "minerva-7b" => {
            &[DIGIT_PATTERN, GPT2_PATTERN]
        }
        "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "pixtral" => &[LLAMA3_PATTERN],
        "qwen2" | "deepseek-r1-qwen" => &[QWEN2_PATTERN],
        _ => &[GPT2_PATTERN],
    }
}

fn pre_tokenizer(pre: &str) -> Result<Sequence> {
    let mut steps = Vec::new();
    for pattern in patterns(pre) {
        let split = Split::new(
            SplitPattern::Regex((*pattern).to_owned()),
            SplitDelimiterBehavior::Isolated,
            false,
        )
        .map_err(|err| anyhow!("bad pre-tokenizer pattern: {err}"))?;
        steps.push(PreTokenizerWrapper::Split(split));
    }
    steps.push(PreTokenizerWrapper::ByteLevel(ByteLevel::new(
        false, false, false,
    )));
    Ok(Sequence::new(steps))
}

/// Registers control tokens as special and user-defined ones as plain added tokens,
/// so that the text of a chat template never gets split inside them.
fn add_marked_tokens(tokenizer: &mut Tokenizer, meta: &Meta<'_>, tokens: &[String]) -> Result<()> {
    let Some(types) = meta.opt_uints("tokenizer.ggml.token_type")? else {
        return Ok(());
    };
    let mut special = Vec::new();
    let mut plain = Vec::new();
    for (token, kind) in tokens.iter().zip(types) {
        match kind {
            TOKEN_CONTROL => special.push(AddedToken::from(token.clone(), true)),
            TOKEN_USER_DEFINED => plain.push(AddedToken::from(token.clone(), false)),
            _ => {}
        }
    }
    tokenizer
        .add_special_tokens(special)
        .map_err(|err| anyhow!("cannot add the control tokens: {err}"))?;
    tokenizer
        .add_tokens(plain)
        .map_err(|err| anyhow!("cannot add the user-defined tokens: {err}"))?;
    Ok(())
}
