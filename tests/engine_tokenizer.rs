//! The tokenizer built from SmolLM2's GGUF metadata against token ids that llama.cpp
//! produced for the same file (`tests/data/smollm2_token_ids.json`, written by
//! `tests/data/make_smollm2_token_ids.py`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use assisters::config::Paths;
use assisters::engine::gguf::GgufTokenizer;
use serde_json::Value;

#[tokio::test]
async fn matches_llama_cpp_on_smollm2() {
    let Some(paths) = Paths::discover() else {
        eprintln!("skipped: no home directory, so no default model path");
        return;
    };
    let path = match assisters::model::ensure_default_model(&paths, false).await {
        Ok(path) => path,
        Err(err) => {
            eprintln!("skipped: the default model cannot be obtained: {err:#}");
            return;
        }
    };
    let tokenizer = GgufTokenizer::from_file(&path).unwrap();
    let data: Value = serde_json::from_str(include_str!("data/smollm2_token_ids.json")).unwrap();
    let cases = data["cases"].as_array().unwrap();
    assert!(cases.len() >= 10);
    for case in cases {
        let text = case["text"].as_str().unwrap();
        let expected: Vec<u32> = case["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|id| id.as_u64().unwrap() as u32)
            .collect();
        assert_eq!(tokenizer.encode(text).unwrap(), expected, "text {text:?}");
        if !text.contains("<|") {
            assert_eq!(tokenizer.decode(&expected).unwrap(), text);
        }
    }
    assert_eq!(tokenizer.stop_ids.first(), Some(&2), "eos is <|im_end|>");
}
