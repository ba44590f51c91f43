//! A scripted HTTP/1.1 server on 127.0.0.1 that writes hand-made bytes, for client
//! tests that need exact control over framing, timing and closing.
//!
//! Connection number N (from 0) gets script N, or with the last script
//! once they run out. Each script is a list of [`Step`]s; the mock records every
//! request head it reads and reports when the client closes a connection it holds.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// One thing the mock does on a connection.
#[derive(Debug, Clone)]
pub enum Step {
    /// Writes these bytes and flushes them as one TCP segment.
    Write(Vec<u8>),
    /// Waits before the next step.
    Sleep(Duration),
    /// Keeps the connection open, writing an SSE comment every 50 ms, until the client
    /// closes it, then reports on the `closed` channel. Gives up after 10 s.
    HoldUntilClientCloses,
}

/// A request head as the mock read it.
#[derive(Debug, Clone)]
pub struct SeenRequest {
    pub method: String,
    /// Path and query.
    pub target: String,
    /// Lower-case names.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl SeenRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

pub struct Mock {
    pub base_url: String,
    pub requests: Arc<Mutex<Vec<SeenRequest>>>,
    pub closed: mpsc::UnboundedReceiver<()>,
}

impl Mock {
    pub fn seen(&self) -> Vec<SeenRequest> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

/// Starts a mock that serves connection N with `scripts[N]`.
pub async fn start(scripts: Vec<Vec<Step>>) -> Mock {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind mock");
    let addr = listener.local_addr().expect("mock address");
    let requests = Arc::new(Mutex::new(Vec::new()));
    let (closed_tx, closed) = mpsc::unbounded_channel();
    let seen = Arc::clone(&requests);
    tokio::spawn(async move {
        for index in 0..1000 {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            let script = scripts
                .get(index)
                .or(scripts.last())
                .cloned()
                .unwrap_or_default();
            let seen = Arc::clone(&seen);
            let closed_tx = closed_tx.clone();
            tokio::spawn(async move { serve(socket, script, seen, closed_tx).await });
        }
    });
    Mock {
        base_url: format!("http://{addr}/v1"),
        requests,
        closed,
    }
}

async fn serve(
    mut socket: TcpStream,
    script: Vec<Step>,
    seen: Arc<Mutex<Vec<SeenRequest>>>,
    closed: mpsc::UnboundedSender<()>,
) {
    let _ = socket.set_nodelay(true);
    let Some(request) = read_request(&mut socket).await else {
        return;
    };
    if let Ok(mut all) = seen.lock() {
        all.push(request);
    }
    for step in script {
        match step {
            Step::Write(bytes) => {
                if socket.write_all(&bytes).await.is_err() || socket.flush().await.is_err() {
                    return;
                }
                // Separate writes must reach the client as separate reads.
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
            Step::Sleep(duration) => tokio::time::sleep(duration).await,
            Step::HoldUntilClientCloses => {
                if hold(&mut socket).await {
                    let _ = closed.send(());
                }
                return;
            }
        }
    }
    let _ = socket.shutdown().await;
}

/// Returns true once the client has closed the connection.
async fn hold(socket: &mut TcpStream) -> bool {
    let mut buffer = [0u8; 64];
    for _ in 0..200 {
        tokio::select! {
            read = socket.read(&mut buffer) => {
                if matches!(read, Ok(0) | Err(_)) {
                    return true;
                }
            }
            _ = tokio::time::sleep(Duration::from_millis(50)) => {
                if socket.write_all(b": ping\n\n").await.is_err() {
                    return true;
                }
            }
        }
    }
    false
}

async fn read_request(socket: &mut TcpStream) -> Option<SeenRequest> {
    let mut data = Vec::new();
    let mut buffer = [0u8; 4096];
    let head_end = loop {
        if let Some(end) = find(&data, b"\r\n\r\n") {
            break end;
        }
        let read = socket.read(&mut buffer).await.ok()?;
        if read == 0 || data.len() > 1 << 20 {
            return None;
        }
        data.extend_from_slice(&buffer[..read]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_owned();
    let target = first.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(0);
    let mut body = data[head_end + 4..].to_vec();
    while body.len() < length {
        let read = socket.read(&mut buffer).await.ok()?;
        if read == 0 {
            break;
        }
        body.extend_from_slice(&buffer[..read]);
    }
    Some(SeenRequest {
        method,
        target,
        headers,
        body: String::from_utf8_lossy(&body).to_string(),
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// Writes the head of a close-delimited SSE response.
pub fn sse_head() -> Step {
    Step::Write(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\nconnection: close\r\n\r\n"
            .to_vec(),
    )
}

/// Writes the head of a chunked SSE response.
pub fn chunked_sse_head() -> Step {
    Step::Write(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
            .to_vec(),
    )
}

/// Writes one chunk of a chunked body.
pub fn chunk(data: &[u8]) -> Step {
    let mut bytes = format!("{:x}\r\n", data.len()).into_bytes();
    bytes.extend_from_slice(data);
    bytes.extend_from_slice(b"\r\n");
    Step::Write(bytes)
}

/// Writes a whole JSON response with extra header lines (each ending in `\r\n`).
pub fn json_response(status: &str, extra_headers: &str, body: &str) -> Step {
    Step::Write(
        format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n{extra_headers}\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

/// Returns a contract error body.
pub fn error_body(code: &str, message: &str, kind: &str) -> String {
    serde_json::json!({"error": {"code": code, "message": message, "param": null, "type": kind}})
        .to_string()
}

/// Returns a delta event's `data:` payload.
pub fn delta(content: &str) -> String {
    serde_json::json!({"id": "msg_1", "role": "assistant", "content": content, "delta": true})
        .to_string()
}

/// The key of the in-process servers.
pub const SERVER_KEY: &str = "client-test-key-5ac1";

/// A real server on an ephemeral loopback port, with its database in a temp dir.
pub struct RealServer {
    pub server: assisters::server::RunningServer,
    pub base_url: String,
    pub dir: tempfile::TempDir,
}

/// Starts the real server after `change` adjusts its settings.
pub async fn real_server(change: impl FnOnce(&mut assisters::server::ServerConfig)) -> RealServer {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config =
        assisters::server::ServerConfig::new(dir.path().join("assisters.db"), SERVER_KEY);
    change(&mut config);
    let server = assisters::server::spawn(config)
        .await
        .expect("server starts");
    RealServer {
        base_url: server.base_url(),
        server,
        dir,
    }
}
