//! The upstream engine against a small OpenAI-compatible mock server on loopback.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use assisters::api::types::{
    Assistant, FunctionKind, FunctionTool, Message, MessageStatus, Role, Settings, Tool,
    ToolCallRecord, ToolCallStatus,
};
use assisters::engine::upstream::{Upstream, UpstreamConfig};
use assisters::engine::{Engine, EngineEvent, EngineRequest};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// Each request the mock received: its `Authorization` header and its body.
type Requests = Arc<Mutex<Vec<(Option<String>, Value)>>>;

#[derive(Clone, Default)]
struct Seen {
    requests: Requests,
}

fn sse(events: &[Value], done: bool) -> String {
    let mut body: String = events.iter().map(|e| format!("data: {e}\n\n")).collect();
    if done {
        body.push_str("data: [DONE]\n\n");
    }
    body
}

fn chunk(delta: Value, finish: Option<&str>) -> Value {
    json!({"id": "c1", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
}

fn stream_response(body: String) -> Response {
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from(body))
        .unwrap()
}

async fn completions(State(seen): State<Seen>, headers: HeaderMap, body: String) -> Response {
    let request: Value = serde_json::from_str(&body).unwrap();
    let auth = headers
        .get("authorization")
        .map(|v| v.to_str().unwrap().to_owned());
    seen.requests.lock().unwrap().push((auth, request.clone()));
    let last_role = request["messages"]
        .as_array()
        .and_then(|m| m.last())
        .map(|m| m["role"].clone());
    match request["model"].as_str().unwrap() {
        "text" => stream_response(sse(
            &[
                chunk(json!({"role": "assistant", "content": ""}), None),
                chunk(json!({"content": "Hello"}), None),
                chunk(json!({"content": ", wörld"}), None),
                chunk(json!({}), Some("stop")),
            ],
            true,
        )),
        "tool" if last_role == Some(json!("tool")) => {
            let output = request["messages"].as_array().unwrap().last().unwrap()["content"].clone();
            stream_response(sse(&[chunk(json!({"content": format!("It is {}", output.as_str().unwrap())}), Some("stop"))], true))
        }
        "tool" => stream_response(sse(
            &[
                chunk(json!({"tool_calls": [{"index": 0, "id": "call_up1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}), None),
                chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\": "}}]}), None),
                chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"Oslo\"}"}}]}), None),
                chunk(json!({}), Some("tool_calls")),
            ],
            true,
        )),
        "ratelimit" => Response::builder()
            .status(StatusCode::TOO_MANY_REQUESTS)
            .header("retry-after", "7")
            .body(Body::from(r#"{"error":{"message":"Rate limit reached for requests","type":"requests","code":"rate_limit_exceeded"}}"#))
            .unwrap(),
        "badkey" => Response::builder()
            .status(StatusCode::UNAUTHORIZED)
            .body(Body::from(r#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error"}}"#))
            .unwrap(),
        "broken" => Response::builder()
            .status(StatusCode::SERVICE_UNAVAILABLE)
            .body(Body::from("upstream overloaded"))
            .unwrap(),
        "cut" => {
            // Send one event, then fail the body: the connection is reset mid-stream.
            let pieces = futures::stream::unfold(0u32, |step| async move {
                match step {
                    0 => Some((Ok(sse(&[chunk(json!({"content": "partial"}), None)], false)), 1)),
                    1 => {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        Some((Err(std::io::Error::other("connection reset")), 2))
                    }
                    _ => None,
                }
            });
            Response::builder()
                .header("content-type", "text/event-stream")
                .body(Body::from_stream(pieces))
                .unwrap()
        }
        "stream-error" => stream_response(sse(&[json!({"error": {"message": "model crashed"}})], false)),
        "slow" => {
            let pieces = futures::stream::unfold(0u32, |n| async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let data = sse(&[chunk(json!({"content": format!("t{n} ")}), None)], false);
                (n < 200).then_some((Ok::<_, std::io::Error>(data), n + 1))
            });
            Response::builder()
                .header("content-type", "text/event-stream")
                .body(Body::from_stream(pieces))
                .unwrap()
        }
        other => panic!("unexpected model {other}"),
    }
}

async fn mock() -> (String, Seen) {
    let seen = Seen::default();
    let app = axum::Router::new()
        .route("/v1/chat/completions", post(completions))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/v1"), seen)
}

fn engine(base: &str, model: &str, key: Option<&str>) -> Upstream {
    Upstream::new(UpstreamConfig {
        base_url: base.into(),
        model: Some(model.into()),
        key: key.map(str::to_owned),
        assister_id: None,
    })
    .unwrap()
}

fn weather_tool() -> Tool {
    Tool::Function(FunctionTool {
        kind: FunctionKind::Function,
        name: "get_weather".into(),
        description: "Current weather of a city".into(),
        parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
    })
}

fn assistant() -> Assistant {
    Assistant {
        id: "asst_1".into(),
        name: "Forecaster".into(),
        description: String::new(),
        instructions: "You report the weather.".into(),
        model: "ignored".into(),
        tools: vec![Tool::Builtin("web_search".into()), weather_tool()],
        settings: Settings {
            temperature: Some(0.2),
            top_p: None,
        },
        file_ids: Vec::new(),
        created_at: String::new(),
        updated_at: String::new(),
    }
}

fn message(role: Role, content: &str) -> Message {
    Message {
        id: "msg_1".into(),
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

async fn run(engine: &Upstream, messages: Vec<Message>) -> Vec<EngineEvent> {
    let request = EngineRequest {
        assistant: assistant(),
        messages,
    };
    let stream = engine.reply(request, CancellationToken::new());
    tokio::time::timeout(Duration::from_secs(10), stream.collect::<Vec<_>>())
        .await
        .unwrap()
}

fn error_text(events: &[EngineEvent]) -> String {
    match events.last() {
        Some(EngineEvent::Error(text)) => text.clone(),
        other => panic!("expected an error last, got {other:?} in {events:?}"),
    }
}

#[tokio::test]
async fn streams_text_and_sends_instructions_settings_and_key() {
    let (base, seen) = mock().await;
    let events = run(
        &engine(&base, "text", Some("sk-test-123")),
        vec![message(Role::User, "Hi")],
    )
    .await;
    assert_eq!(
        events,
        vec![
            EngineEvent::Delta("Hello".into()),
            EngineEvent::Delta(", wörld".into()),
            EngineEvent::Done
        ]
    );
    let requests = seen.requests.lock().unwrap();
    let (auth, body) = &requests[0];
    assert_eq!(auth.as_deref(), Some("Bearer sk-test-123"));
    assert_eq!(body["stream"], json!(true));
    assert_eq!(body["temperature"], json!(0.2));
    assert_eq!(
        body["messages"][0],
        json!({"role": "system", "content": "You report the weather."})
    );
    assert_eq!(
        body["messages"][1],
        json!({"role": "user", "content": "Hi"})
    );
    // Only function tools go upstream; built-ins have no schema.
    assert_eq!(body["tools"].as_array().map(Vec::len), Some(2));
    assert_eq!(body["tools"][0]["function"]["name"], json!("web_search"));
    assert_eq!(body["tools"][1]["function"]["name"], json!("get_weather"));
    assert!(body.get("assisterId").is_none());
}

#[tokio::test]
async fn tool_call_round_trip() {
    let (base, seen) = mock().await;
    let upstream = engine(&base, "tool", None);
    let events = run(&upstream, vec![message(Role::User, "Weather in Oslo?")]).await;
    assert_eq!(
        events,
        vec![
            EngineEvent::ToolCall {
                name: "get_weather".into(),
                arguments: json!({"city": "Oslo"})
            },
            EngineEvent::Done
        ]
    );
    let mut reply = message(Role::Assistant, "");
    reply.tool_calls.push(ToolCallRecord {
        id: "call_local7".into(),
        name: "get_weather".into(),
        arguments: json!({"city": "Oslo"}),
        status: ToolCallStatus::Completed,
        output: Some("-3 °C and snowing".into()),
    });
    let events = run(
        &upstream,
        vec![message(Role::User, "Weather in Oslo?"), reply],
    )
    .await;
    assert_eq!(
        events,
        vec![
            EngineEvent::Delta("It is -3 °C and snowing".into()),
            EngineEvent::Done
        ]
    );
    let requests = seen.requests.lock().unwrap();
    let messages = requests[1].1["messages"].as_array().unwrap().clone();
    assert_eq!(messages[2]["role"], json!("assistant"));
    assert_eq!(messages[2]["tool_calls"][0]["id"], json!("call_local7"));
    assert_eq!(
        messages[2]["tool_calls"][0]["function"]["arguments"],
        json!("{\"city\":\"Oslo\"}")
    );
    assert_eq!(
        messages[3],
        json!({"role": "tool", "tool_call_id": "call_local7", "content": "-3 °C and snowing"})
    );
}

#[tokio::test]
async fn rate_limit_carries_message_and_retry_after() {
    let (base, _) = mock().await;
    let events = run(
        &engine(&base, "ratelimit", None),
        vec![message(Role::User, "Hi")],
    )
    .await;
    let text = error_text(&events);
    assert!(
        text.contains("429") && text.contains("Rate limit reached for requests"),
        "{text}"
    );
    assert!(text.contains("retry after 7"), "{text}");
}

#[tokio::test]
async fn bad_key_is_reported_without_the_key() {
    let (base, _) = mock().await;
    let events = run(
        &engine(&base, "badkey", Some("sk-secret-999")),
        vec![message(Role::User, "Hi")],
    )
    .await;
    let text = error_text(&events);
    assert!(
        text.contains("401") && text.contains("Incorrect API key provided"),
        "{text}"
    );
    assert!(text.contains("ASSISTERS_UPSTREAM_KEY"), "{text}");
    assert!(!text.contains("sk-secret-999"), "{text}");
    let config = UpstreamConfig {
        base_url: base,
        model: None,
        key: Some("sk-secret-999".into()),
        assister_id: None,
    };
    assert!(!format!("{config:?}").contains("sk-secret-999"));
}

#[tokio::test]
async fn server_errors_and_error_events_reach_the_client() {
    let (base, _) = mock().await;
    let text = error_text(
        &run(
            &engine(&base, "broken", None),
            vec![message(Role::User, "Hi")],
        )
        .await,
    );
    assert!(
        text.contains("503") && text.contains("upstream overloaded"),
        "{text}"
    );
    let text = error_text(
        &run(
            &engine(&base, "stream-error", None),
            vec![message(Role::User, "Hi")],
        )
        .await,
    );
    assert!(text.contains("model crashed"), "{text}");
}

#[tokio::test]
async fn a_cut_stream_is_an_error_after_the_partial_text() {
    let (base, _) = mock().await;
    let events = run(&engine(&base, "cut", None), vec![message(Role::User, "Hi")]).await;
    assert_eq!(events.first(), Some(&EngineEvent::Delta("partial".into())));
    assert!(!events.contains(&EngineEvent::Done), "{events:?}");
    let text = error_text(&events);
    assert!(
        text.contains("broke off") || text.contains("before the reply was finished"),
        "{text}"
    );
}

#[tokio::test]
async fn cancelling_ends_the_stream() {
    let (base, _) = mock().await;
    let cancel = CancellationToken::new();
    let request = EngineRequest {
        assistant: assistant(),
        messages: vec![message(Role::User, "Hi")],
    };
    let mut stream = engine(&base, "slow", None).reply(request, cancel.clone());
    let first = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .unwrap();
    assert!(matches!(first, Some(EngineEvent::Delta(_))), "{first:?}");
    cancel.cancel();
    let rest = tokio::time::timeout(Duration::from_secs(1), stream.collect::<Vec<_>>())
        .await
        .unwrap();
    assert!(rest.len() <= 1, "{rest:?}");
    assert!(!rest.contains(&EngineEvent::Done));
}

#[tokio::test]
async fn assister_id_is_sent_when_configured() {
    let (base, seen) = mock().await;
    let upstream = Upstream::new(UpstreamConfig {
        base_url: base,
        model: Some("text".into()),
        key: None,
        assister_id: Some("ast_remote_1".into()),
    })
    .unwrap();
    run(&upstream, vec![message(Role::User, "Hi")]).await;
    assert_eq!(
        seen.requests.lock().unwrap()[0].1["assisterId"],
        json!("ast_remote_1")
    );
}

#[test]
fn upstream_url_is_checked() {
    assert!(
        UpstreamConfig::from_env(None, None)
            .unwrap_err()
            .contains("--upstream URL")
    );
    assert!(UpstreamConfig::from_env(Some("ftp://x"), None).is_err());
    let config = UpstreamConfig::from_env(Some("http://127.0.0.1:9/v1/"), Some("m")).unwrap();
    assert_eq!(config.base_url, "http://127.0.0.1:9/v1");
}
