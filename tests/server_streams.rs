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

    let (status, lines) = server
        .stream(&thread, &format!("assistant_id={assistant}"))
        .await;
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
    let keys: Vec<_> = first
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    assert_eq!(keys, ["content", "delta", "id", "role"]);
    assert_eq!(first["id"], final_event["id"]);
    assert!(
        lines[..lines.len() - 2]
            .iter()
            .all(|l| l.contains("\"delta\":true"))
    );

    let history = server.messages(&thread).await;
    assert_eq!(history.len(), 2);
    assert_eq!(history[1]["content"], json!(text));
    assert_eq!(history[1]["id"], final_event["id"]);
    server.server.shutdown().await.unwrap_or_default();
}

fn lookup_tool() -> Value {
    json!({"type": "function", "name": "lookup_user", "description": "Find a user",
           "parameters": {"type": "object", "properties": {"user_id": {"type": "string"}}}})
}

#[tokio::test]
async fn custom_tool_pauses_and_resumes() {
    let server = start().await;
    let assistant = server
        .assistant(json!({"name": "Helper", "tools": [lookup_tool()]}))
        .await;
    let thread = server.thread().await;
    server
        .user_message(&thread, "please lookup_user user_id=u42")
        .await;
    let query = format!("assistant_id={assistant}");

    let (status, lines) = server.stream(&thread, &query).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(lines.len(), 3, "{lines:?}");
    let call: Value = serde_json::from_str(&lines[0]).unwrap_or(Value::Null);
    assert_eq!(call["type"], json!("tool_call"));
    assert_eq!(call["name"], json!("lookup_user"));
    assert_eq!(call["arguments"], json!({"user_id": "u42"}));
    assert_eq!(call["status"], json!("requires_action"));
    let call_id = call["id"].as_str().unwrap_or_default().to_owned();
    assert!(call_id.starts_with("call_"));
    let action: Value = serde_json::from_str(&lines[1]).unwrap_or(Value::Null);
    assert_eq!(
        action,
        json!({"type": "requires_action", "message_id": call["message_id"],
               "tool_calls": [{"id": call_id, "name": "lookup_user", "arguments": {"user_id": "u42"}}]})
    );
    assert_eq!(lines[2], "[DONE]");

    // The saved message matches the stream.
    let history = server.messages(&thread).await;
    assert_eq!(history[1]["status"], json!("requires_action"));
    assert_eq!(
        history[1]["tool_calls"][0]["status"],
        json!("requires_action")
    );
    assert_eq!(history[1]["id"], call["message_id"]);

    // Reopening before the output arrives is a conflict.
    let url = server.url(&format!("/threads/{thread}/messages/stream?{query}"));
    let early = server.send(server.http.get(&url).bearer_auth(KEY)).await;
    assert_eq!(early.status, StatusCode::CONFLICT);
    assert_eq!(early.error().0, "tool_outputs_pending");

    let posted = server
        .post(
            &format!("/threads/{thread}/tool_outputs"),
            json!({"tool_call_id": call_id, "output": "{\"name\":\"Ada\"}"}),
        )
        .await;
    assert_eq!(posted.status, StatusCode::OK, "{}", posted.text);
    assert_eq!(posted.body["id"], call["message_id"]);
    assert_eq!(posted.body["tool_calls"][0]["status"], json!("completed"));
    assert_eq!(
        posted.body["tool_calls"][0]["output"],
        json!("{\"name\":\"Ada\"}")
    );
    let twice = server
        .post(
            &format!("/threads/{thread}/tool_outputs"),
            json!({"tool_call_id": call_id, "output": "again"}),
        )
        .await;
    assert_eq!(twice.status, StatusCode::CONFLICT);
    assert_eq!(twice.error().0, "tool_output_exists");

    let (status, lines) = server.stream(&thread, &query).await;
    assert_eq!(status, StatusCode::OK);
    let text = delta_text(&lines);
    assert_eq!(text, "The lookup_user tool returned: {\"name\":\"Ada\"}");
    let last = events(&lines).last().cloned().unwrap_or(Value::Null);
    assert_eq!(
        last["id"], call["message_id"],
        "the reply continues on the same message"
    );
    assert_eq!(last["status"], json!("completed"));
    assert_eq!(last["content"], json!(text));
    assert_eq!(last["tool_calls"][0]["output"], json!("{\"name\":\"Ada\"}"));
    assert_eq!(lines.last().map(String::as_str), Some("[DONE]"));

    let history = server.messages(&thread).await;
    assert_eq!(history.len(), 2);
    let mut saved = history[1].clone();
    let mut streamed = last.clone();
    if let (Some(saved), Some(streamed)) = (saved.as_object_mut(), streamed.as_object_mut()) {
        streamed.remove("delta");
        saved.remove("delta");
    }
    assert_eq!(saved, streamed, "reloaded history equals the final event");
}

#[tokio::test]
async fn builtin_tool_fails_and_reply_goes_on() {
    let server = start().await;
    let assistant = server
        .assistant(json!({"name": "Helper", "tools": ["web_search"]}))
        .await;
    let thread = server.thread().await;
    server
        .user_message(&thread, "use web_search query=rust")
        .await;
    let (status, lines) = server
        .stream(&thread, &format!("assistant_id={assistant}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let parsed = events(&lines);
    assert_eq!(parsed[0]["type"], json!("tool_call"));
    assert_eq!(parsed[0]["status"], json!("in_progress"));
    assert_eq!(parsed[0]["name"], json!("web_search"));
    assert_eq!(
        parsed[1],
        json!({"type": "tool_result", "tool_call_id": parsed[0]["id"], "name": "web_search",
               "output": "web_search is not configured on this server", "status": "failed"})
    );
    let text = delta_text(&lines);
    assert!(
        text.contains("web_search is not configured on this server"),
        "{text}"
    );
    let last = parsed.last().cloned().unwrap_or(Value::Null);
    assert_eq!(last["status"], json!("completed"));
    assert_eq!(last["tool_calls"][0]["status"], json!("failed"));
    assert_eq!(lines.last().map(String::as_str), Some("[DONE]"));
}

#[tokio::test]
async fn blocking_create_returns_reply() {
    let server = start().await;
    let assistant = server.assistant(json!({"name": "Helper"})).await;
    let thread = server.thread().await;
    let reply = server
        .post(
            &format!("/threads/{thread}/messages"),
            json!({"assistant_id": assistant, "role": "user", "content": "thanks"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body["role"], json!("assistant"));
    assert_eq!(reply.body["content"], json!("You're welcome."));
    assert_eq!(reply.body["status"], json!("completed"));
    let history = server.messages(&thread).await;
    assert_eq!(history.len(), 2);
    assert_eq!(history[0]["content"], json!("thanks"));
    assert_eq!(history[1], reply.body);
}

#[tokio::test]
async fn blocking_create_with_custom_tool_requires_action() {
    let server = start().await;
    let assistant = server
        .assistant(json!({"name": "Helper", "tools": [lookup_tool()]}))
        .await;
    let thread = server.thread().await;
    let reply = server
        .post(
            &format!("/threads/{thread}/messages"),
            json!({"assistant_id": assistant, "content": "lookup_user"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body["status"], json!("requires_action"));
    assert_eq!(
        reply.body["tool_calls"][0]["status"],
        json!("requires_action")
    );
    assert_eq!(reply.body["tool_calls"][0]["arguments"], json!({}));
    assert!(reply.body["tool_calls"][0].get("output").is_none());
}

#[tokio::test]
async fn second_stream_conflicts_unless_regenerate() {
    let server = start().await;
    let assistant = server.assistant(json!({"name": "Helper"})).await;
    let thread = server.thread().await;
    server.user_message(&thread, "hello").await;
    let query = format!("assistant_id={assistant}");
    let (_, first) = server.stream(&thread, &query).await;
    let first_id = events(&first)
        .last()
        .map(|e| e["id"].clone())
        .unwrap_or(Value::Null);

    let url = server.url(&format!("/threads/{thread}/messages/stream?{query}"));
    let again = server.send(server.http.get(&url).bearer_auth(KEY)).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.text);
    assert_eq!(
        again.error(),
        ("reply_exists".into(), "invalid_request_error".into(), None)
    );

    let (status, second) = server
        .stream(&thread, &format!("{query}&regenerate=true"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let second_id = events(&second)
        .last()
        .map(|e| e["id"].clone())
        .unwrap_or(Value::Null);
    assert_ne!(first_id, second_id);
    let history = server.messages(&thread).await;
    assert_eq!(history.len(), 2, "the old reply is replaced");
    assert_eq!(history[1]["id"], second_id);
}

#[tokio::test]
async fn stream_request_errors() {
    let server = start().await;
    let assistant = server.assistant(json!({"name": "Helper"})).await;
    let thread = server.thread().await;
    let get = |query: String| {
        let url = server.url(&format!("/threads/{thread}/messages/stream{query}"));
        server.send(server.http.get(url).bearer_auth(KEY))
    };
    let reply = get(String::new()).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.error().2.as_deref(), Some("assistant_id"));
    let reply = get(format!("?assistant_id={assistant}&regenerate=yes")).await;
    assert_eq!(reply.error().2.as_deref(), Some("regenerate"));
    let reply = get(format!("?assistant_id={assistant}")).await;
    assert_eq!(reply.status, StatusCode::CONFLICT);
    assert_eq!(reply.error().0, "no_user_message");
    let reply = get("?assistant_id=asst_nope".into()).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.error().2.as_deref(), Some("assistant_id"));
    let url = server.url(&format!(
        "/threads/thread_nope/messages/stream?assistant_id={assistant}"
    ));
    let reply = server.send(server.http.get(url).bearer_auth(KEY)).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert!(reply.text.contains("thread_nope"));
}

#[tokio::test]
async fn disconnect_saves_incomplete_reply() {
    let server =
        start_with(|config| config.token_delay = std::time::Duration::from_millis(50)).await;
    let assistant = server.assistant(json!({"name": "Helper"})).await;
    let thread = server.thread().await;
    server.user_message(&thread, "help").await;
    let url = server.url(&format!(
        "/threads/{thread}/messages/stream?assistant_id={assistant}"
    ));
    let response = server.http.get(url).bearer_auth(KEY).send().await;
    let mut body = match response {
        Ok(response) => response.bytes_stream(),
        Err(err) => panic!("{err}"),
    };
    use futures::StreamExt;
    let first = body.next().await;
    assert!(matches!(first, Some(Ok(_))));
    drop(body);

    let mut status = Value::Null;
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let history = server.messages(&thread).await;
        if history.len() == 2 {
            status = history[1]["status"].clone();
            let content = history[1]["content"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            assert!(content.starts_with("Here"), "{content}");
            assert!(content.len() < 200, "the reply was cut short: {content}");
            break;
        }
    }
    assert_eq!(status, json!("incomplete"));
    // The thread is free again, and the cut reply counts as a reply.
    let (code, _) = server
        .stream(&thread, &format!("assistant_id={assistant}"))
        .await;
    assert_eq!(code, StatusCode::CONFLICT);
}

#[tokio::test]
async fn concurrent_run_on_thread_conflicts() {
    let server =
        start_with(|config| config.token_delay = std::time::Duration::from_millis(30)).await;
    let assistant = server.assistant(json!({"name": "Helper"})).await;
    let thread = server.thread().await;
    server.user_message(&thread, "help").await;
    let query = format!("assistant_id={assistant}");
    let running = server.stream(&thread, &query);
    let second = async {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let url = server.url(&format!(
            "/threads/{thread}/messages/stream?{query}&regenerate=true"
        ));
        let stream = server.send(server.http.get(url).bearer_auth(KEY)).await;
        let post = server
            .post(
                &format!("/threads/{thread}/messages"),
                json!({"content": "x"}),
            )
            .await;
        (stream, post)
    };
    let ((status, lines), (stream, post)) = tokio::join!(running, second);
    assert_eq!(status, StatusCode::OK);
    assert_eq!(lines.last().map(String::as_str), Some("[DONE]"));
    assert_eq!(stream.status, StatusCode::CONFLICT);
    assert_eq!(stream.error().0, "run_in_progress");
    assert_eq!(post.status, StatusCode::CONFLICT);
    assert_eq!(post.error().0, "run_in_progress");
}

#[tokio::test]
async fn twenty_concurrent_streams() {
    let server = start().await;
    let assistant = server.assistant(json!({"name": "Helper"})).await;
    let mut threads = Vec::new();
    for index in 0..20 {
        let thread = server.thread().await;
        server.user_message(&thread, &format!("echo {index}")).await;
        threads.push(thread);
    }
    let query = format!("assistant_id={assistant}");
    let runs = threads.iter().map(|thread| server.stream(thread, &query));
    let results = futures::future::join_all(runs).await;
    for (index, (status, lines)) in results.iter().enumerate() {
        assert_eq!(*status, StatusCode::OK);
        assert!(delta_text(lines).contains(&format!("> echo {index}")));
        assert_eq!(lines.last().map(String::as_str), Some("[DONE]"));
    }
}
