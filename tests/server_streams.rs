//! Streaming replies over real SSE: deltas, the final event, tool calls, 409 and
//! regenerate.

mod server_support;

use reqwest::StatusCode;
use serde_json::{Value, json};
use server_support::*;

#[tokio::test]
async fn stream_sends_deltas_final_and_done() {
    let server = start().await;
    let assistant = server.assistant(json!({"name": "Helper"})).await;
    let thread = server.thread().await;
    server.user_message(&thread, "hello").await;

    let (status, lines) = server.stream(&thread, &format!("assistant_id={assistant}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(lines.last().map(String::as_str), Some("[DONE]"));
    let parsed = events(&lines);
    let final_event = parsed.last().cloned().unwrap_or(Value::Null);
    assert_eq!(final_event["delta"], json!(false));
    assert_eq!(final_event["status"], json!("completed"));
    assert_eq!(final_event["role"], json!("assistant"));
    assert_eq!(final_event["assistant_id"], json!(assistant));
    let text = delta_text(&lines);
    assert!(text.starts_with("Hello! I'm Helper"), "{text}");
    assert_eq!(final_event["content"], json!(text));
    // Every delta has exactly the documented shape, with no `type`.
    let first = &parsed[0];
    let keys: Vec<_> = first.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
    assert_eq!(keys, ["content", "delta", "id", "role"]);
    assert_eq!(first["id"], final_event["id"]);
    assert!(lines[..lines.len() - 2].iter().all(|l| l.contains("\"delta\":true")));

    let history = server.messages(&thread).await;
    assert_eq!(history.len(), 2);
    assert_eq!(history[1]["content"], json!(text));
    assert_eq!(history[1]["id"], final_event["id"]);
    server.server.shutdown().await.unwrap_or_default();
}
