//! The web_search tool through the real server: against a SearXNG-style mock on the
//! loopback interface, and on a server started without `--search-url`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod server_support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{Query, State};
use axum::routing::get;
use serde_json::{Value, json};
use server_support::{TestServer, events, start_with};

type Seen = Arc<Mutex<Vec<HashMap<String, String>>>>;

/// Starts a mock search endpoint; returns its URL and the queries it received.
async fn mock_search() -> (String, Seen) {
    let seen: Seen = Arc::default();
    async fn search(
        State(seen): State<Seen>,
        Query(query): Query<HashMap<String, String>>,
    ) -> Json<Value> {
        seen.lock().unwrap().push(query);
        Json(json!({
            "query": "lighthouse",
            "results": [
                {"title": "Lighthouse keeping", "url": "http://127.0.0.1/keeping",
                 "content": "Lamps were trimmed every evening.", "engine": "mock"},
                {"title": "Fresnel lens", "url": "http://127.0.0.1/fresnel",
                 "content": "A lens made of concentric rings."}
            ]
        }))
    }
    let app = axum::Router::new()
        .route("/search", get(search))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/search"), seen)
}

/// Sends a message naming web_search and returns the stream's events.
async fn ask(server: &TestServer, message: &str) -> Vec<Value> {
    let assistant = server
        .assistant(json!({"name": "Searcher", "tools": ["web_search"]}))
        .await;
    let thread = server.thread().await;
    server.user_message(&thread, message).await;
    let (status, data) = server
        .stream(&thread, &format!("assistant_id={assistant}"))
        .await;
    assert_eq!(status, 200);
    events(&data)
}

fn tool_result(events: &[Value]) -> &Value {
    events
        .iter()
        .find(|e| e["type"] == "tool_result")
        .unwrap_or_else(|| panic!("no tool result in {events:?}"))
}

fn reply(events: &[Value]) -> String {
    let last = events
        .iter()
        .find(|e| e["delta"] == false)
        .unwrap_or_else(|| panic!("the reply did not finish: {events:?}"));
    last["content"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn results_from_the_search_endpoint_reach_the_reply() {
    let (url, seen) = mock_search().await;
    let server = start_with(|config| config.search_url = Some(url)).await;
    let events = ask(&server, "web_search query=\"lighthouse history\"").await;
    let call = events.iter().find(|e| e["type"] == "tool_call").unwrap();
    assert_eq!(call["arguments"]["query"], "lighthouse history");
    let result = tool_result(&events);
    assert_eq!(result["status"], "completed", "{result}");
    let output = result["output"].as_str().unwrap();
    assert!(
        output.starts_with("[1] Lighthouse keeping\nhttp://127.0.0.1/keeping\nLamps were trimmed"),
        "{output}"
    );
    assert!(output.contains("[2] Fresnel lens"), "{output}");
    assert!(reply(&events).contains("Lighthouse keeping"));
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].get("q").map(String::as_str),
        Some("lighthouse history")
    );
    assert_eq!(seen[0].get("format").map(String::as_str), Some("json"));
}

#[tokio::test]
async fn without_a_search_url_the_call_fails_and_the_reply_goes_on() {
    let server = start_with(|_| {}).await;
    let events = ask(&server, "web_search query=lighthouse").await;
    let result = tool_result(&events);
    assert_eq!(result["status"], "failed");
    assert_eq!(
        result["output"],
        "web_search is not configured on this server"
    );
    let text = reply(&events);
    assert!(
        text.contains("web_search is not configured on this server"),
        "{text}"
    );
    assert!(
        !events.iter().any(|e| e.get("error").is_some()),
        "{events:?}"
    );
}

#[tokio::test]
async fn an_unreachable_endpoint_is_a_failed_call() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/search", listener.local_addr().unwrap());
    drop(listener);
    let server = start_with(|config| config.search_url = Some(url)).await;
    let events = ask(&server, "web_search query=lighthouse").await;
    let result = tool_result(&events);
    assert_eq!(result["status"], "failed");
    let output = result["output"].as_str().unwrap();
    assert!(output.contains("cannot be reached"), "{output}");
    assert!(!reply(&events).is_empty());
}
