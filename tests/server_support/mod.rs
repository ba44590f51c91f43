//! Helpers shared by the `server_*` tests: a real server on an ephemeral loopback
//! port with a database in a temporary directory, and a raw HTTP client.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use assisters::server::{RunningServer, ServerConfig, spawn};
use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

pub const KEY: &str = "test-key-0123456789";

pub struct TestServer {
    pub server: RunningServer,
    pub http: reqwest::Client,
    pub base: String,
    pub dir: tempfile::TempDir,
}

pub fn config_in(dir: &tempfile::TempDir) -> ServerConfig {
    ServerConfig::new(dir.path().join("assisters.db"), KEY)
}

pub async fn start() -> TestServer {
    start_with(|_| {}).await
}

pub async fn start_with(change: impl FnOnce(&mut ServerConfig)) -> TestServer {
    let dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(err) => panic!("cannot create a temporary directory: {err}"),
    };
    let mut config = config_in(&dir);
    change(&mut config);
    start_in(dir, config).await
}

pub async fn start_in(dir: tempfile::TempDir, config: ServerConfig) -> TestServer {
    let server = match spawn(config).await {
        Ok(server) => server,
        Err(err) => panic!("cannot start the server: {err:#}"),
    };
    let base = server.base_url();
    TestServer {
        server,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap_or_default(),
        base,
        dir,
    }
}

pub fn db_path(server: &TestServer) -> PathBuf {
    server.dir.path().join("assisters.db")
}

/// A response as the tests look at it.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Returns `(code, type, param)` of an error body.
    pub fn error(&self) -> (String, String, Option<String>) {
        let error = &self.body["error"];
        (
            error["code"].as_str().unwrap_or("<none>").to_owned(),
            error["type"].as_str().unwrap_or("<none>").to_owned(),
            error["param"].as_str().map(str::to_owned),
        )
    }
}

impl TestServer {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Sends a request with the test key; `body` is sent as JSON when given.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let mut request = self.http.request(method, self.url(path)).bearer_auth(KEY);
        if let Some(body) = body {
            request = request.json(&body);
        }
        self.send(request).await
    }

    /// Sends a raw body with the test key.
    pub async fn raw(&self, method: Method, path: &str, body: impl Into<reqwest::Body>) -> Reply {
        let request = self
            .http
            .request(method, self.url(path))
            .bearer_auth(KEY)
            .header("content-type", "application/json")
            .body(body);
        self.send(request).await
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        let response = match request.send().await {
            Ok(response) => response,
            Err(err) => panic!("request failed without an HTTP answer: {err}"),
        };
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
            text,
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.call(Method::DELETE, path, None).await
    }

    /// Creates an assistant and returns its id.
    pub async fn assistant(&self, body: Value) -> String {
        let reply = self.post("/assisters", body).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
        reply.body["id"].as_str().unwrap_or_default().to_owned()
    }

    /// Creates a thread and returns its id.
    pub async fn thread(&self) -> String {
        let reply = self.post("/threads", json!({})).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
        reply.body["id"].as_str().unwrap_or_default().to_owned()
    }

    /// Posts a user message and returns its id.
    pub async fn user_message(&self, thread: &str, content: &str) -> String {
        let reply = self
            .post(
                &format!("/threads/{thread}/messages"),
                json!({"content": content}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
        reply.body["id"].as_str().unwrap_or_default().to_owned()
    }

    /// Opens the stream and returns the status and the `data:` payloads, read until
    /// the connection ends (at most 20 s).
    pub async fn stream(&self, thread: &str, query: &str) -> (StatusCode, Vec<String>) {
        let url = self.url(&format!("/threads/{thread}/messages/stream?{query}"));
        let response = self
            .http
            .get(url)
            .bearer_auth(KEY)
            .header("accept", "text/event-stream")
            .send()
            .await;
        let response = match response {
            Ok(response) => response,
            Err(err) => panic!("stream request failed: {err}"),
        };
        let status = response.status();
        let mut text = String::new();
        let mut body = response.bytes_stream();
        let read = tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(Ok(chunk)) = body.next().await {
                text.push_str(&String::from_utf8_lossy(&chunk));
            }
        })
        .await;
        assert!(read.is_ok(), "stream did not end; read so far: {text}");
        (status, data_lines(&text))
    }

    pub async fn messages(&self, thread: &str) -> Vec<Value> {
        let reply = self
            .get(&format!("/threads/{thread}/messages?limit=100"))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        reply.body["data"].as_array().cloned().unwrap_or_default()
    }
}

/// Returns the payloads of the `data:` lines of an SSE body.
pub fn data_lines(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| {
            line.strip_prefix("data: ")
                .or_else(|| line.strip_prefix("data:"))
        })
        .map(str::to_owned)
        .collect()
}

/// Parses every payload except `[DONE]`.
pub fn events(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .filter(|line| line.as_str() != "[DONE]")
        .map(|line| serde_json::from_str(line).unwrap_or(Value::Null))
        .collect()
}

/// Concatenates the content of the delta events.
pub fn delta_text(lines: &[String]) -> String {
    events(lines)
        .iter()
        .filter(|e| e["delta"] == json!(true))
        .map(|e| e["content"].as_str().unwrap_or_default().to_owned())
        .collect()
}
