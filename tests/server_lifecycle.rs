//! Restarts on the same database file and graceful shutdown mid-stream.

mod server_support;

use std::time::Duration;

use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use server_support::*;

#[tokio::test]
async fn restart_keeps_everything_acknowledged() {
    let first = start().await;
    let assistant = first
        .assistant(json!({"name": "Keeper", "tools": ["web_search"]}))
        .await;
    let thread = first.thread().await;
    first.user_message(&thread, "hello").await;
    let (_, lines) = first
        .stream(&thread, &format!("assistant_id={assistant}"))
        .await;
    assert_eq!(lines.last().map(String::as_str), Some("[DONE]"));
    let assistants_before = first.get("/assisters").await.body;
    let messages_before = first.messages(&thread).await;
    let path = db_path(&first);
    let TestServer { server, dir, .. } = first;
    if let Err(err) = server.shutdown().await {
        panic!("shutdown failed: {err:#}");
    }

    let config = assisters::server::ServerConfig::new(path, KEY);
    let second = start_in(dir, config).await;
    assert_eq!(second.get("/assisters").await.body, assistants_before);
    assert_eq!(second.messages(&thread).await, messages_before);
    assert_eq!(
        second.get(&format!("/threads/{thread}")).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn shutdown_mid_stream_saves_incomplete_reply() {
    let server = start_with(|config| config.token_delay = Duration::from_millis(100)).await;
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
    let mut text = String::new();
    if let Some(Ok(chunk)) = body.next().await {
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let TestServer {
        server: running,
        dir,
        http,
        ..
    } = server;
    let reader = tokio::spawn(async move {
        while let Some(Ok(chunk)) = body.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
        text
    });
    let stopped = tokio::time::timeout(Duration::from_secs(15), running.shutdown()).await;
    assert!(
        matches!(stopped, Ok(Ok(()))),
        "shutdown did not finish cleanly"
    );
    let text = match reader.await {
        Ok(text) => text,
        Err(err) => panic!("{err}"),
    };
    let lines = data_lines(&text);
    assert_eq!(lines.last().map(String::as_str), Some("[DONE]"), "{text}");
    let error = events(&lines).last().cloned().unwrap_or(Value::Null);
    assert_eq!(
        error["error"]["code"],
        json!("server_shutting_down"),
        "{text}"
    );
    assert_eq!(error["error"]["type"], json!("api_error"));
    let streamed = delta_text(&lines);
    drop(http);

    let path = dir.path().join("assisters.db");
    let again = start_in(dir, assisters::server::ServerConfig::new(path, KEY)).await;
    let history = again.messages(&thread).await;
    assert_eq!(history.len(), 2);
    assert_eq!(history[1]["status"], json!("incomplete"));
    assert_eq!(
        history[1]["content"],
        json!(streamed),
        "saved text equals what was streamed"
    );
}

#[tokio::test]
async fn spawn_rejects_bad_config() {
    let dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(err) => panic!("{err}"),
    };
    let mut config = config_in(&dir);
    config.api_keys.clear();
    let err = assisters::server::spawn(config)
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("--api-key"), "{err}");

    let mut config = config_in(&dir);
    config.engine = assisters::server::EngineChoice::Named("nope".into());
    let err = assisters::server::spawn(config)
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("scripted"), "{err}");

    let mut config = config_in(&dir);
    config.script = Some(dir.path().join("missing.toml"));
    let err = assisters::server::spawn(config)
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("missing.toml"), "{err}");
}

#[tokio::test]
async fn custom_script_file_drives_replies() {
    let dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(err) => panic!("{err}"),
    };
    let script = dir.path().join("script.json");
    let written = std::fs::write(&script, r#"{"rules": [{"reply": "always {message}!"}]}"#);
    assert!(written.is_ok());
    let mut config = config_in(&dir);
    config.script = Some(script);
    let server = start_in(dir, config).await;
    let assistant = server.assistant(json!({"name": "S"})).await;
    let thread = server.thread().await;
    let reply = server
        .post(
            &format!("/threads/{thread}/messages"),
            json!({"content": "ping", "assistant_id": assistant}),
        )
        .await;
    assert_eq!(reply.body["content"], json!("always ping!"));
}
