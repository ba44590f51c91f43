//! The reply stream against a raw TCP mock that writes hand-made HTTP/1.1 and SSE
//! bytes: framing edge cases, skipped events, errors, cut connections and cancellation.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod client_support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use assisters::api::client::{RetryNotice, RetryReason};
use assisters::api::types::{StreamEvent, ToolCallStatus};
use assisters::api::{ApiError, Client, ClientConfig};
use client_support::{Step, chunk, chunked_sse_head, delta, error_body, json_response, sse_head};
use futures::StreamExt;

const KEY: &str = "sk-stream-test-key";

fn client(base_url: &str) -> Client {
    let mut config = ClientConfig::new(base_url, Some(KEY.to_owned()));
    config.read_timeout = Duration::from_secs(5);
    config.max_backoff = Duration::from_millis(20);
    Client::new(config).expect("client")
}

/// Opens the stream and collects every item, bounded by 10 seconds.
async fn collect(base_url: &str) -> Vec<Result<StreamEvent, ApiError>> {
    let stream = client(base_url)
        .stream("thread_1", "asst_1", false)
        .await
        .expect("stream opens");
    tokio::time::timeout(Duration::from_secs(10), stream.collect())
        .await
        .expect("stream ends in time")
}

fn text_of(items: &[Result<StreamEvent, ApiError>]) -> String {
    items
        .iter()
        .filter_map(|item| match item {
            Ok(StreamEvent::Delta { content, .. }) => Some(content.as_str()),
            _ => None,
        })
        .collect()
}

fn bytes(text: &str) -> Vec<u8> {
    text.as_bytes().to_vec()
}

/// Splits `data` into one write per piece, cutting at the given byte offsets.
fn split_at(data: &[u8], cuts: &[usize]) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut start = 0;
    for &cut in cuts {
        steps.push(Step::Write(data[start..cut].to_vec()));
        start = cut;
    }
    steps.push(Step::Write(data[start..].to_vec()));
    steps
}

#[tokio::test]
async fn split_mid_line_and_mid_character() {
    let text = "héllo wörld 🎉 done";
    let body = format!("data: {}\n\ndata: [DONE]\n\n", delta(text));
    let raw = body.as_bytes();
    let e_acute = body.find('é').unwrap();
    let emoji = body.find('🎉').unwrap();
    // Inside "data:", inside the two-byte é, inside the four-byte emoji, between the
    // two newlines that end the event, and inside "[DONE]".
    let end_of_event = body.find("\n\n").unwrap() + 1;
    let done = body.find("[DO").unwrap() + 3;
    let cuts = [2, e_acute + 1, emoji + 1, emoji + 3, end_of_event, done];
    for cut in [e_acute + 1, emoji + 1, emoji + 3] {
        assert!(
            !body.is_char_boundary(cut),
            "cut {cut} must split a character"
        );
    }
    let mut script = vec![sse_head()];
    script.extend(split_at(raw, &cuts));
    let mock = client_support::start(vec![script]).await;

    let items = collect(&mock.base_url).await;

    assert_eq!(text_of(&items), text);
    assert_eq!(items.len(), 2, "{items:?}");
    assert!(matches!(items[1], Ok(StreamEvent::Done)));
}

#[tokio::test]
async fn crlf_and_comment_lines() {
    let body = format!(
        ": keep-alive\r\n\r\ndata: {}\r\n\r\n:another comment\r\nid: 7\r\nretry: 1000\r\ndata: {}\r\n\r\n: ping\r\n\r\ndata: [DONE]\r\n\r\n",
        delta("one "),
        delta("two"),
    );
    let mock = client_support::start(vec![vec![sse_head(), Step::Write(bytes(&body))]]).await;

    let items = collect(&mock.base_url).await;

    assert_eq!(text_of(&items), "one two");
    assert_eq!(items.len(), 3, "{items:?}");
    assert!(matches!(items[2], Ok(StreamEvent::Done)));
}

#[tokio::test]
async fn unknown_and_invalid_events_are_skipped() {
    let body = format!(
        "data: {{\"type\":\"usage\",\"tokens\":12}}\n\n\
         event: ping\ndata: {{\"anything\":true}}\n\n\
         data: {{\"id\":\"msg_1\",\"content\":\"kept\",\"delta\":true,\"logprobs\":[1,2]}}\n\n\
         data: {{not json\n\n\
         data: {{\"neither\":\"type nor delta\"}}\n\n\
         data: {{\"type\":\"tool_call\",\"id\":\"call_1\",\"message_id\":\"msg_1\",\"name\":\"web_search\",\"arguments\":{{\"q\":\"x\"}},\"status\":\"in_progress\",\"extra\":1}}\n\n\
         data: {}\n\n\
         data: [DONE]\n\n",
        delta(" text"),
    );
    let mock = client_support::start(vec![vec![sse_head(), Step::Write(bytes(&body))]]).await;

    let items = collect(&mock.base_url).await;

    assert_eq!(items.len(), 4, "{items:?}");
    assert_eq!(text_of(&items), "kept text");
    let Ok(StreamEvent::ToolCall { name, status, .. }) = &items[1] else {
        panic!("expected the tool call, got {:?}", items[1]);
    };
    assert_eq!(name, "web_search");
    assert_eq!(*status, ToolCallStatus::InProgress);
    assert!(matches!(items[3], Ok(StreamEvent::Done)));
}

#[tokio::test]
async fn requires_action_is_typed() {
    let body = "data: {\"type\":\"requires_action\",\"message_id\":\"msg_9\",\"tool_calls\":[{\"id\":\"call_2\",\"name\":\"lookup_user\",\"arguments\":{\"user_id\":\"u1\"}}]}\n\ndata: [DONE]\n\n";
    let mock = client_support::start(vec![vec![sse_head(), Step::Write(bytes(body))]]).await;

    let items = collect(&mock.base_url).await;

    let Ok(StreamEvent::RequiresAction {
        message_id,
        tool_calls,
    }) = &items[0]
    else {
        panic!("expected requires_action, got {:?}", items[0]);
    };
    assert_eq!(message_id, "msg_9");
    assert_eq!(tool_calls.len(), 1);
    assert_eq!(tool_calls[0].name, "lookup_user");
    assert_eq!(tool_calls[0].arguments["user_id"], "u1");
}

#[tokio::test]
async fn error_event_ends_stream() {
    let error = error_body("server_error", "engine failed", "api_error");
    let body = format!(
        "data: {}\n\ndata: {error}\n\ndata: {}\n\ndata: [DONE]\n\n",
        delta("partial"),
        delta("never seen"),
    );
    let mock = client_support::start(vec![vec![sse_head(), Step::Write(bytes(&body))]]).await;

    let items = collect(&mock.base_url).await;

    assert_eq!(items.len(), 2, "{items:?}");
    assert_eq!(text_of(&items), "partial");
    let Err(err) = &items[1] else {
        panic!("expected the error, got {:?}", items[1]);
    };
    assert_eq!(err.code(), "server_error");
    assert_eq!(err.message(), "engine failed");
    assert_eq!(err.status(), Some(200));
}

#[tokio::test]
async fn end_without_done_is_transport_error() {
    let body = format!("data: {}\n\n", delta("half a reply"));
    let mock = client_support::start(vec![vec![sse_head(), Step::Write(bytes(&body))]]).await;

    let items = collect(&mock.base_url).await;

    assert_eq!(items.len(), 2, "{items:?}");
    assert_eq!(text_of(&items), "half a reply");
    let Err(ApiError::Transport(message)) = &items[1] else {
        panic!("expected a transport error, got {:?}", items[1]);
    };
    assert!(message.contains("stream ended before [DONE]"), "{message}");
}

#[tokio::test]
async fn cut_connection_is_transport_error() {
    // A chunk header announcing 0x40 bytes, then only a few of them before the close.
    let first = format!("data: {}\n\n", delta("before the cut"));
    let script = vec![
        chunked_sse_head(),
        chunk(first.as_bytes()),
        Step::Write(b"40\r\ndata: {\"id\"".to_vec()),
    ];
    let mock = client_support::start(vec![script]).await;

    let items = collect(&mock.base_url).await;

    assert_eq!(items.len(), 2, "{items:?}");
    assert_eq!(text_of(&items), "before the cut");
    let Err(err) = &items[1] else {
        panic!("expected an error, got {:?}", items[1]);
    };
    assert_eq!(err.code(), "transport_error");
    assert!(err.message().contains("127.0.0.1"), "{err}");
    assert!(!err.to_string().contains(KEY));
}

#[tokio::test]
async fn dropping_stream_closes_connection() {
    let first = format!("data: {}\n\n", delta("first"));
    let script = vec![
        sse_head(),
        Step::Write(bytes(&first)),
        Step::HoldUntilClientCloses,
    ];
    let mut mock = client_support::start(vec![script]).await;
    let mut stream = client(&mock.base_url)
        .stream("thread_1", "asst_1", false)
        .await
        .expect("stream opens");

    let item = tokio::time::timeout(Duration::from_secs(5), stream.next()).await;
    assert!(
        matches!(item, Ok(Some(Ok(StreamEvent::Delta { .. })))),
        "{item:?}"
    );
    drop(stream);

    let closed = tokio::time::timeout(Duration::from_secs(5), mock.closed.recv()).await;
    assert_eq!(
        closed,
        Ok(Some(())),
        "the mock did not see the connection close"
    );
}

#[tokio::test]
async fn stream_request_has_accept_and_query() {
    let mock = client_support::start(vec![vec![
        sse_head(),
        Step::Write(bytes("data: [DONE]\n\n")),
    ]])
    .await;
    let stream = client(&mock.base_url)
        .stream("thread_1", "asst_1", true)
        .await
        .expect("stream opens");
    let items: Vec<_> = stream.collect().await;
    assert_eq!(items.len(), 1);

    let seen = mock.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, "GET");
    assert_eq!(
        seen[0].target,
        "/v1/threads/thread_1/messages/stream?assistant_id=asst_1&regenerate=true"
    );
    assert_eq!(seen[0].header("accept"), Some("text/event-stream"));
    assert_eq!(
        seen[0].header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
}

#[tokio::test]
async fn stream_open_error_is_api_error() {
    let conflict = error_body(
        "conflict",
        "the latest user message already has a reply",
        "invalid_request_error",
    );
    let mock =
        client_support::start(vec![vec![json_response("409 Conflict", "", &conflict)]]).await;

    let result = client(&mock.base_url)
        .stream("thread_1", "asst_1", false)
        .await;

    let err = result.err().expect("a 409 is an error");
    assert_eq!(err.status(), Some(409));
    assert_eq!(err.code(), "conflict");
    assert_eq!(mock.seen().len(), 1, "a 409 is not retried");
}

#[tokio::test]
async fn stream_open_retries_429() {
    let limited = error_body("rate_limit_exceeded", "slow down", "rate_limit_error");
    let scripts = vec![
        vec![json_response(
            "429 Too Many Requests",
            "retry-after: 0\r\n",
            &limited,
        )],
        vec![
            sse_head(),
            Step::Write(bytes(&format!("data: {}\n\ndata: [DONE]\n\n", delta("ok")))),
        ],
    ];
    let mock = client_support::start(scripts).await;
    let notices: Arc<Mutex<Vec<RetryNotice>>> = Arc::default();
    let recorded = Arc::clone(&notices);
    let client = client(&mock.base_url).with_retry_observer(Arc::new(move |notice| {
        recorded.lock().unwrap().push(notice.clone());
    }));

    let stream = client
        .stream("thread_1", "asst_1", false)
        .await
        .expect("opens after retry");
    let items: Vec<_> = stream.collect().await;

    assert_eq!(text_of(&items), "ok");
    let notices = notices.lock().unwrap().clone();
    assert_eq!(notices.len(), 1);
    assert_eq!(notices[0].attempt, 1);
    assert_eq!(notices[0].reason, RetryReason::RateLimited);
    assert_eq!(mock.seen().len(), 2);
}
