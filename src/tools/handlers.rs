//! Runs one custom tool call through its configured handler.
//!
//! Both handler kinds receive `{"tool_call_id", "arguments"}` as JSON:
//!
//! - a `command` handler is a program run without a shell, with the JSON on stdin; its
//!   stdout, minus trailing line breaks, is the output. A non-zero exit is an error
//!   quoting the start of its stderr.
//! - a `url` handler receives the JSON as a POST and responds with `{"tool_call_id", "output"}`.
//!
//! Each run is bounded by the handler's `timeout_secs` and `max_output_bytes`. A
//! command that runs too long is killed, and output over the cap is an error rather
//! than a silent cut, so the assistant never works from a truncated answer.

use std::process::Stdio;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use crate::api::types::PendingToolCall;
use crate::config::ToolHandler;

/// Maximum bytes of a failing command's stderr quoted in the error.
const STDERR_EXCERPT: usize = 2048;

/// Failure of a tool handler.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ToolError {
    #[error("tool handler has neither command nor url")]
    NoHandler,
    #[error("cannot start tool command {program:?}: {reason}")]
    Spawn { program: String, reason: String },
    #[error("tool command {program:?} exited with {status}: {stderr}")]
    Exit {
        program: String,
        status: String,
        stderr: String,
    },
    #[error("tool handler timed out after {0} s; raise timeout_secs in its [tools.NAME] table")]
    Timeout(u64),
    #[error(
        "tool output is larger than {0} bytes; raise max_output_bytes in its [tools.NAME] table"
    )]
    OutputTooLarge(usize),
    #[error("tool URL {url} failed: {reason}")]
    Http { url: String, reason: String },
    #[error("tool URL {url} responded with an invalid body: {reason}")]
    InvalidAnswer { url: String, reason: String },
}

/// Input sent to a handler.
#[derive(Debug, Serialize)]
struct HandlerInput<'a> {
    tool_call_id: &'a str,
    arguments: &'a serde_json::Value,
}

/// Response body of a URL handler.
#[derive(Debug, Deserialize)]
struct HandlerAnswer {
    #[serde(default)]
    tool_call_id: Option<String>,
    output: String,
}

/// Runs `call` through `handler` and returns the tool's output.
pub async fn run_handler(
    handler: &ToolHandler,
    call: &PendingToolCall,
) -> Result<String, ToolError> {
    let input = HandlerInput {
        tool_call_id: &call.id,
        arguments: &call.arguments,
    };
    let payload = serde_json::to_vec(&input).unwrap_or_default();
    let limit = Duration::from_secs(handler.timeout_secs);
    tracing::info!(tool = %call.name, call_id = %call.id, "running tool handler");
    let result = match (&handler.command, &handler.url) {
        (Some(command), _) => run_command(command, &payload, limit, handler.max_output_bytes).await,
        (None, Some(url)) => {
            post_url(url, &payload, limit, handler.max_output_bytes, &call.id).await
        }
        (None, None) => Err(ToolError::NoHandler),
    };
    if let Err(err) = &result {
        tracing::warn!(tool = %call.name, call_id = %call.id, error = %err, "tool handler failed");
    }
    result
}

async fn run_command(
    command: &[String],
    payload: &[u8],
    limit: Duration,
    cap: usize,
) -> Result<String, ToolError> {
    let Some((program, args)) = command.split_first() else {
        return Err(ToolError::NoHandler);
    };
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|err| ToolError::Spawn {
            program: program.clone(),
            reason: err.to_string(),
        })?;
    let stdin = child.stdin.take();
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let write = async {
        // A program that exits without reading stdin closes the pipe, which is not an error.
        if let Some(mut stdin) = stdin {
            let _ = stdin.write_all(payload).await;
        }
    };
    let work = async {
        let ((), out, err) = tokio::join!(
            write,
            read_capped(stdout, cap),
            read_capped(stderr, STDERR_EXCERPT)
        );
        let status = child.wait().await;
        (out, err, status)
    };
    let Ok((out, err, status)) = tokio::time::timeout(limit, work).await else {
        // Dropping the child on return kills it.
        return Err(ToolError::Timeout(limit.as_secs()));
    };
    let status = status.map_err(|err| ToolError::Spawn {
        program: program.clone(),
        reason: err.to_string(),
    })?;
    let (stdout, over) = out;
    // Checked before the exit status, because the program may die of SIGPIPE once reading
    // stops.
    if over {
        return Err(ToolError::OutputTooLarge(cap));
    }
    if !status.success() {
        let (stderr, _) = err;
        return Err(ToolError::Exit {
            program: program.clone(),
            status: status.to_string(),
            stderr: String::from_utf8_lossy(&stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&stdout)
        .trim_end_matches(['\n', '\r'])
        .to_owned())
}

/// Reads up to `cap` bytes and reports whether there was more; reading stops at the
/// cap so a runaway program cannot fill memory.
async fn read_capped(pipe: Option<impl AsyncRead + Unpin>, cap: usize) -> (Vec<u8>, bool) {
    let Some(pipe) = pipe else {
        return (Vec::new(), false);
    };
    let mut data = Vec::new();
    let limit = u64::try_from(cap).unwrap_or(u64::MAX).saturating_add(1);
    let _ = pipe.take(limit).read_to_end(&mut data).await;
    let over = data.len() > cap;
    data.truncate(cap);
    (data, over)
}

async fn post_url(
    url: &str,
    payload: &[u8],
    limit: Duration,
    cap: usize,
    call_id: &str,
) -> Result<String, ToolError> {
    let http_error = |reason: String| ToolError::Http {
        url: url.to_owned(),
        reason,
    };
    let client = reqwest::Client::builder()
        .timeout(limit)
        .build()
        .map_err(|err| http_error(err.to_string()))?;
    let response = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(payload.to_vec())
        .send()
        .await
        .map_err(|err| {
            if err.is_timeout() {
                ToolError::Timeout(limit.as_secs())
            } else {
                http_error(err.without_url().to_string())
            }
        })?;
    let status = response.status();
    if !status.is_success() {
        return Err(http_error(format!("responded {status}")));
    }
    let body = read_body_capped(response, cap)
        .await
        .map_err(|err| match err {
            BodyError::TooLarge => ToolError::OutputTooLarge(cap),
            BodyError::Read(reason) => http_error(reason),
        })?;
    let invalid = |reason: String| ToolError::InvalidAnswer {
        url: url.to_owned(),
        reason,
    };
    let answer: HandlerAnswer = serde_json::from_slice(&body)
        .map_err(|err| invalid(format!("expected {{\"tool_call_id\", \"output\"}}: {err}")))?;
    if let Some(answered) = &answer.tool_call_id
        && answered != call_id
    {
        return Err(invalid(format!(
            "tool_call_id {answered:?} does not match the call {call_id:?}"
        )));
    }
    Ok(answer.output)
}

enum BodyError {
    TooLarge,
    Read(String),
}

/// Reads a response body, failing once it passes `cap` bytes plus room for the JSON
/// envelope around the output.
async fn read_body_capped(
    mut response: reqwest::Response,
    cap: usize,
) -> Result<Vec<u8>, BodyError> {
    let envelope_room = 4096;
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                body.extend_from_slice(&chunk);
                if body.len() > cap.saturating_add(envelope_room) {
                    return Err(BodyError::TooLarge);
                }
            }
            Ok(None) => return Ok(body),
            Err(err) => return Err(BodyError::Read(err.without_url().to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Approval;

    fn command_handler(command: &[&str], timeout_secs: u64, cap: usize) -> ToolHandler {
        ToolHandler {
            command: Some(command.iter().map(|part| (*part).to_owned()).collect()),
            url: None,
            timeout_secs,
            max_output_bytes: cap,
            approval: Approval::Always,
        }
    }

    fn call() -> PendingToolCall {
        PendingToolCall {
            id: "call_1".into(),
            name: "lookup_user".into(),
            arguments: serde_json::json!({"user_id": "u1"}),
        }
    }

    #[tokio::test]
    async fn command_gets_json_on_stdin() {
        let handler = command_handler(&["cat"], 5, 1024);
        let output = run_handler(&handler, &call()).await;
        let value: serde_json::Value =
            serde_json::from_str(&output.unwrap_or_default()).unwrap_or_default();
        assert_eq!(value["tool_call_id"], "call_1");
        assert_eq!(value["arguments"]["user_id"], "u1");
    }

    #[tokio::test]
    async fn command_runs_without_shell() {
        let handler = command_handler(&["echo", "$HOME;", "ok"], 5, 1024);
        let output = run_handler(&handler, &call()).await;
        assert_eq!(output, Ok("$HOME; ok".to_owned()));
    }

    #[tokio::test]
    async fn failing_command_quotes_stderr() {
        let handler = command_handler(&["sh", "-c", "echo broken >&2; exit 3"], 5, 1024);
        let Err(ToolError::Exit { status, stderr, .. }) = run_handler(&handler, &call()).await
        else {
            panic!("expected an exit error");
        };
        assert!(status.contains('3'), "{status}");
        assert_eq!(stderr, "broken");
    }

    #[tokio::test]
    async fn slow_command_times_out() {
        let handler = command_handler(&["sleep", "5"], 1, 1024);
        let started = std::time::Instant::now();
        let result = run_handler(&handler, &call()).await;
        assert_eq!(result, Err(ToolError::Timeout(1)));
        assert!(started.elapsed() < Duration::from_secs(3));
    }

    #[tokio::test]
    async fn large_output_is_rejected() {
        let handler = command_handler(&["head", "-c", "5000", "/dev/zero"], 5, 100);
        assert_eq!(
            run_handler(&handler, &call()).await,
            Err(ToolError::OutputTooLarge(100))
        );
    }

    #[tokio::test]
    async fn missing_program_is_named() {
        let handler = command_handler(&["/nonexistent/tool-program"], 5, 100);
        let message = run_handler(&handler, &call())
            .await
            .err()
            .map(|err| err.to_string())
            .unwrap_or_default();
        assert!(message.contains("/nonexistent/tool-program"), "{message}");
    }
    /// Serves one HTTP request on 127.0.0.1 with `answer(request_body)` after
    /// `delay`, and returns the handler URL.
    async fn one_shot_server(
        delay: Duration,
        answer: impl FnOnce(&str) -> (u16, String) + Send + 'static,
    ) -> String {
        use tokio::io::AsyncReadExt;
        let Ok(listener) = tokio::net::TcpListener::bind("127.0.0.1:0").await else {
            panic!("bind");
        };
        let url = format!(
            "http://{}/tool",
            listener
                .local_addr()
                .map(|a| a.to_string())
                .unwrap_or_default()
        );
        tokio::spawn(async move {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let mut data = Vec::new();
            let mut buffer = [0u8; 4096];
            let body = loop {
                let Ok(read) = socket.read(&mut buffer).await else {
                    return;
                };
                if read == 0 {
                    return;
                }
                data.extend_from_slice(&buffer[..read]);
                let text = String::from_utf8_lossy(&data).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let length = head
                        .lines()
                        .find_map(|line| {
                            line.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if body.len() >= length {
                        break body.to_owned();
                    }
                }
            };
            tokio::time::sleep(delay).await;
            let (status, reply) = answer(&body);
            let response = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{reply}",
                reply.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
        });
        url
    }

    fn url_handler(url: String, timeout_secs: u64) -> ToolHandler {
        ToolHandler {
            command: None,
            url: Some(url),
            timeout_secs,
            max_output_bytes: 1024,
            approval: Approval::Ask,
        }
    }

    #[tokio::test]
    async fn url_handler_posts_call() {
        let url = one_shot_server(Duration::ZERO, |body| {
            let input: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
            let output = format!(
                "user {}",
                input["arguments"]["user_id"].as_str().unwrap_or("?")
            );
            let id = input["tool_call_id"].clone();
            (
                200,
                serde_json::json!({"tool_call_id": id, "output": output}).to_string(),
            )
        })
        .await;
        let output = run_handler(&url_handler(url, 5), &call()).await;
        assert_eq!(output, Ok("user u1".to_owned()));
    }

    #[tokio::test]
    async fn url_handler_checks_answer() {
        let wrong_id = one_shot_server(Duration::ZERO, |_| {
            (
                200,
                r#"{"tool_call_id":"call_other","output":"x"}"#.to_owned(),
            )
        })
        .await;
        let result = run_handler(&url_handler(wrong_id, 5), &call()).await;
        assert!(
            matches!(result, Err(ToolError::InvalidAnswer { .. })),
            "{result:?}"
        );

        let failing = one_shot_server(Duration::ZERO, |_| (500, "{}".to_owned())).await;
        let result = run_handler(&url_handler(failing, 5), &call()).await;
        let message = result.err().map(|err| err.to_string()).unwrap_or_default();
        assert!(message.contains("500"), "{message}");

        let slow = one_shot_server(Duration::from_secs(3), |_| (200, "{}".to_owned())).await;
        let result = run_handler(&url_handler(slow, 1), &call()).await;
        assert_eq!(result, Err(ToolError::Timeout(1)));
    }
}
