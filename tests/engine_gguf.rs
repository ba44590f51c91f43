//! The embedded model engine on a tiny GGUF file written by the test itself.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod engine_support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use assisters::api::types::{Assistant, Message, MessageStatus, Role, Settings};
use assisters::engine::gguf::{GgufEngine, Loaded, ModelStatus, to_fast_format};
use assisters::engine::{Engine, EngineEvent, EngineRequest};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

fn tiny_model(dir: &tempfile::TempDir) -> PathBuf {
    let path = dir.path().join("tiny.gguf");
    engine_support::write_tiny_model(&path, GgmlDType::Q4_1, 42);
    path
}

fn assistant(temperature: f64) -> Assistant {
    Assistant {
        id: "asst_1".into(),
        name: "Tiny".into(),
        description: String::new(),
        instructions: "Be brief.".into(),
        model: "tiny".into(),
        tools: Vec::new(),
        settings: Settings {
            temperature: Some(temperature),
            top_p: Some(0.9),
        },
        file_ids: Vec::new(),
        created_at: String::new(),
        updated_at: String::new(),
    }
}

fn message(role: Role, content: &str) -> Message {
    Message {
        id: format!("msg_{content:.8}"),
        thread_id: "thread_1".into(),
        role,
        content: content.into(),
        created_at: String::new(),
        assistant_id: None,
        attachments: Vec::new(),
        tool_calls: Vec::new(),
        status: MessageStatus::Completed,
    }
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn loads_hyper_parameters_and_tokenizer() {
    let dir = tempfile::tempdir().unwrap();
    let loaded = Loaded::load(&tiny_model(&dir), 128).unwrap();
    let hyper = loaded.model.hyper();
    assert_eq!(
        (hyper.n_layer, hyper.n_head, hyper.n_kv_head, hyper.dim),
        (2, 4, 2, 64)
    );
    assert_eq!(loaded.model.capacity(), 128);
    assert_eq!(
        loaded.tokenizer.vocab_size(),
        engine_support::vocabulary().len()
    );
    assert_eq!(loaded.tokenizer.stop_ids.first(), Some(&2));
}

#[test]
fn tokenizer_uses_merges_specials_and_splits_digits() {
    let dir = tempfile::tempdir().unwrap();
    let loaded = Loaded::load(&tiny_model(&dir), 128).unwrap();
    let tokens = engine_support::vocabulary();
    let id = |text: &str| tokens.iter().position(|t| t == text).unwrap() as u32;
    let ids = loaded
        .tokenizer
        .encode("<|im_start|>hello world 12")
        .unwrap();
    // "12" has a merge rule, but digits are split before merging.
    let expected = vec![
        id("<|im_start|>"),
        id("hello"),
        id("Ġwor"),
        id("l"),
        id("d"),
        id("Ġ"),
        id("1"),
        id("2"),
    ];
    assert_eq!(ids, expected);
    assert_eq!(loaded.tokenizer.decode(&ids).unwrap(), "hello world 12");
    let unicode = loaded.tokenizer.encode("né ✓").unwrap();
    assert_eq!(loaded.tokenizer.decode(&unicode).unwrap(), "né ✓");
}

#[test]
fn cached_decoding_matches_a_full_forward_pass() {
    let dir = tempfile::tempdir().unwrap();
    let mut loaded = Loaded::load(&tiny_model(&dir), 64).unwrap();
    let tokens: Vec<u32> = (0..20).map(|i| 3 + (i * 37 % 250)).collect();
    let full = loaded.model.forward(&tokens).unwrap();
    loaded.model.truncate(0);
    let mut stepwise = Vec::new();
    loaded.model.forward(&tokens[..7]).unwrap();
    for token in &tokens[7..] {
        stepwise = loaded.model.forward(&[*token]).unwrap();
    }
    assert!(
        max_abs_diff(&full, &stepwise) < 1e-3,
        "diff {}",
        max_abs_diff(&full, &stepwise)
    );
    // A different history gives different logits: the cache is really used.
    loaded.model.truncate(0);
    let mut other = tokens.clone();
    other[0] = 200;
    let changed = loaded.model.forward(&other).unwrap();
    assert!(max_abs_diff(&full, &changed) > 1e-3);
}

#[test]
fn context_window_overflow_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let mut loaded = Loaded::load(&tiny_model(&dir), 16).unwrap();
    let err = loaded.model.forward(&[5; 17]).unwrap_err().to_string();
    assert!(err.contains("context window"), "{err}");
}

#[test]
fn q4_1_converts_to_q8_0_within_its_precision() {
    let data: Vec<f32> = (0..64 * 96)
        .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
        .collect();
    let dense = Tensor::from_vec(data, (64, 96), &Device::Cpu).unwrap();
    let q41 = QTensor::quantize(&dense, GgmlDType::Q4_1).unwrap();
    let before = q41
        .dequantize(&Device::Cpu)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let q80 = to_fast_format(q41).unwrap();
    assert_eq!(q80.dtype(), GgmlDType::Q8_0);
    let after = q80
        .dequantize(&Device::Cpu)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    // Q8_0 keeps 8 bits per value against a per-block scale of max|x|/127.
    assert!(max_abs_diff(&before, &after) <= 1.0 / 127.0 + 1e-6);
    let q40 = QTensor::quantize(&dense, GgmlDType::Q4_0).unwrap();
    assert_eq!(to_fast_format(q40).unwrap().dtype(), GgmlDType::Q4_0);
}

async fn collect(engine: &GgufEngine, request: EngineRequest) -> (String, Vec<EngineEvent>) {
    let mut stream = engine.reply(request, CancellationToken::new());
    let mut text = String::new();
    let mut events = Vec::new();
    while let Some(event) = tokio::time::timeout(Duration::from_secs(60), stream.next())
        .await
        .unwrap()
    {
        if let EngineEvent::Delta(piece) = &event {
            text.push_str(piece);
        }
        events.push(event);
    }
    (text, events)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_loads_in_background_and_streams_a_greedy_reply() {
    let dir = tempfile::tempdir().unwrap();
    let engine = GgufEngine::spawn_load(tiny_model(&dir), 256);
    assert_eq!(engine.name(), "gguf");
    let request = EngineRequest {
        assistant: assistant(0.0),
        messages: vec![message(Role::User, "hello")],
    };
    let (first, events) = collect(&engine, request.clone()).await;
    assert_eq!(engine.status(), ModelStatus::Ready);
    assert_eq!(events.last(), Some(&EngineEvent::Done), "{events:?}");
    assert!(
        events.iter().any(|e| matches!(e, EngineEvent::Delta(_))),
        "{events:?}"
    );
    // Greedy decoding is deterministic, with the cache reused or not.
    let (second, _) = collect(&engine, request).await;
    assert_eq!(first, second);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_stops_the_stream() {
    let dir = tempfile::tempdir().unwrap();
    let engine = GgufEngine::spawn_load(tiny_model(&dir), 256);
    // At temperature 1.0 the random model may sample its end token early, so a reply
    // can finish before the cancel reaches it. Such an attempt proves nothing and is
    // repeated, while a cancel that does not work lets every attempt finish.
    for attempt in 1..=5 {
        let cancel = CancellationToken::new();
        let request = EngineRequest {
            assistant: assistant(1.0),
            messages: vec![message(Role::User, "hello")],
        };
        let mut stream = engine.reply(request, cancel.clone());
        let first = tokio::time::timeout(Duration::from_secs(60), stream.next())
            .await
            .unwrap();
        assert!(
            matches!(first, Some(EngineEvent::Delta(_)) | Some(EngineEvent::Done)),
            "{first:?}"
        );
        if first == Some(EngineEvent::Done) {
            continue;
        }
        cancel.cancel();
        let started = Instant::now();
        let mut after = 0;
        let mut finished = false;
        while let Some(event) = tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .unwrap()
        {
            finished |= event == EngineEvent::Done;
            after += 1;
        }
        if finished {
            eprintln!("attempt {attempt}: the reply ended before the cancel reached it");
            continue;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        // Deltas sampled before the cancel may still be queued in the unbounded
        // channel, but generation must stop well before the 256-token window ends.
        assert!(after < 128, "{after} events after cancelling");
        return;
    }
    panic!("every reply ended on its own before the cancel reached it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_threads_drop_their_oldest_turns() {
    let dir = tempfile::tempdir().unwrap();
    let engine = GgufEngine::spawn_load(tiny_model(&dir), 96);
    let mut messages = Vec::new();
    for turn in 0..30 {
        messages.push(message(Role::User, &format!("question {turn} hello hello")));
        messages.push(message(Role::Assistant, &format!("answer {turn} world")));
    }
    messages.push(message(Role::User, "last"));
    let (_, events) = collect(
        &engine,
        EngineRequest {
            assistant: assistant(0.0),
            messages,
        },
    )
    .await;
    assert_eq!(events.last(), Some(&EngineEvent::Done), "{events:?}");
}

#[tokio::test]
async fn missing_model_reports_both_ways_out() {
    let engine = GgufEngine::spawn_load(PathBuf::from("/nonexistent/model.gguf"), 64);
    let request = EngineRequest {
        assistant: assistant(0.0),
        messages: vec![message(Role::User, "hi")],
    };
    let mut stream = engine.reply(request, CancellationToken::new());
    let event = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .unwrap();
    let Some(EngineEvent::Error(text)) = event else {
        panic!("expected an error, got {event:?}")
    };
    assert!(
        text.contains("assisters model fetch") && text.contains("--model PATH"),
        "{text}"
    );
    assert!(matches!(engine.status(), ModelStatus::Failed(_)));
}

#[test]
fn corrupt_model_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.gguf");
    std::fs::write(&path, b"not a model at all").unwrap();
    let err = format!("{:#}", Loaded::load(&path, 64).err().unwrap());
    assert!(
        err.contains("not a GGUF file") && err.contains("--model PATH"),
        "{err}"
    );
    let path = dir.path().join("cut.gguf");
    std::fs::write(&path, b"GGUF\x03\x00\x00\x00").unwrap();
    let err = format!("{:#}", Loaded::load(&path, 64).err().unwrap());
    assert!(err.contains("assisters model fetch"), "{err}");
}
