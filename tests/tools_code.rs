//! The code_interpreter tool through the real server: a fenced Python block that the
//! user asks to run is executed in a confined child process, and its stdout, stderr,
//! exit status and limit come back as a tool result in the stream.
//!
//! Skipped, with the reason printed, when `python3` is not installed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod server_support;

use std::time::{Duration, Instant};

use assisters::server::tools::python::{CodeLimits, find_python};
use serde_json::{Value, json};
use server_support::{TestServer, events, start_with};

fn python_missing() -> bool {
    if find_python().is_none() {
        eprintln!("skipped: python3 is not on PATH, so code_interpreter cannot run");
        return true;
    }
    false
}

async fn server(allow: bool) -> TestServer {
    start_with(|config| {
        config.allow_code_interpreter = allow;
        config.code_limits = CodeLimits {
            timeout: Duration::from_secs(2),
            cpu_seconds: 2,
            memory_bytes: 256 * 1024 * 1024,
            output_bytes: 4096,
        };
    })
    .await
}

/// Asks the assistant to run `code`; returns the tool result event and the reply text.
async fn run_code(server: &TestServer, code: &str) -> (Value, String) {
    let assistant = server
        .assistant(json!({"name": "Runner", "tools": ["code_interpreter"]}))
        .await;
    let thread = server.thread().await;
    server
        .user_message(
            &thread,
            &format!("Please run this:\n```python\n{code}\n```"),
        )
        .await;
    let (status, data) = server
        .stream(&thread, &format!("assistant_id={assistant}"))
        .await;
    assert_eq!(status, 200);
    let events = events(&data);
    let call = events
        .iter()
        .find(|e| e["type"] == "tool_call")
        .unwrap_or_else(|| panic!("no tool call in {data:?}"));
    assert_eq!(call["name"], "code_interpreter");
    assert_eq!(call["arguments"]["code"], format!("{code}\n"));
    let result = events
        .iter()
        .find(|e| e["type"] == "tool_result")
        .cloned()
        .unwrap_or_else(|| panic!("no tool result in {data:?}"));
    let reply = events
        .iter()
        .find(|e| e["delta"] == false)
        .unwrap_or_else(|| panic!("the reply did not finish: {data:?}"));
    (
        result,
        reply["content"].as_str().unwrap_or_default().to_owned(),
    )
}

fn outcome(result: &Value) -> Value {
    let output = result["output"].as_str().unwrap_or_default();
    serde_json::from_str(output)
        .unwrap_or_else(|err| panic!("output is not JSON ({err}): {output}"))
}

#[tokio::test]
async fn python_prints_a_value() {
    if python_missing() {
        return;
    }
    let server = server(true).await;
    let (result, reply) = run_code(&server, "print(6 * 7)").await;
    assert_eq!(result["status"], "completed", "{result}");
    let outcome = outcome(&result);
    assert_eq!(outcome["stdout"], "42\n");
    assert_eq!(outcome["exit_code"], 0);
    assert_eq!(outcome["limit"], Value::Null);
    assert!(reply.contains("42"), "{reply}");
}

#[tokio::test]
async fn errors_come_back_with_stderr_and_exit_code() {
    if python_missing() {
        return;
    }
    let server = server(true).await;
    let (result, _) = run_code(
        &server,
        "import sys\nprint('oops', file=sys.stderr)\nsys.exit(3)",
    )
    .await;
    assert_eq!(result["status"], "failed", "{result}");
    let outcome = outcome(&result);
    assert_eq!(outcome["stderr"], "oops\n");
    assert_eq!(outcome["exit_code"], 3);
}

#[tokio::test]
async fn an_endless_loop_is_stopped_by_the_timeout() {
    if python_missing() {
        return;
    }
    let server = server(true).await;
    let started = Instant::now();
    let (result, reply) = run_code(&server, "while True:\n    pass").await;
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(result["status"], "failed", "{result}");
    let limit = outcome(&result)["limit"].clone();
    assert!(limit == "timeout" || limit == "cpu", "{result}");
    assert!(!reply.is_empty());
}

#[tokio::test]
async fn a_huge_allocation_hits_the_memory_limit() {
    if python_missing() {
        return;
    }
    let server = server(true).await;
    let (result, _) = run_code(
        &server,
        "block = bytearray(2 * 1024 * 1024 * 1024)\nprint(len(block))",
    )
    .await;
    assert_eq!(result["status"], "failed", "{result}");
    let outcome = outcome(&result);
    assert_eq!(outcome["limit"], "memory", "{outcome}");
    assert!(
        outcome["stderr"]
            .as_str()
            .unwrap_or_default()
            .contains("MemoryError")
    );
    assert_eq!(outcome["stdout"], "");
}

#[tokio::test]
async fn long_output_is_capped() {
    if python_missing() {
        return;
    }
    let server = server(true).await;
    let (result, _) = run_code(&server, "print('x' * 100000)").await;
    let outcome = outcome(&result);
    assert_eq!(outcome["truncated"], true);
    assert_eq!(outcome["stdout"].as_str().map(str::len), Some(4096));
}

#[tokio::test]
async fn the_network_is_unreachable_when_isolation_is_permitted() {
    if python_missing() {
        return;
    }
    let server = server(true).await;
    let port = server.server.addr.port();
    let code = format!(
        "import socket\ns = socket.socket()\ns.settimeout(1)\ntry:\n    s.connect(('127.0.0.1', {port}))\n    print('connected')\nexcept OSError as err:\n    print('refused', err)"
    );
    let (result, _) = run_code(&server, &code).await;
    let outcome = outcome(&result);
    if outcome["network_isolated"] != true {
        eprintln!(
            "skipped: this machine does not permit a network namespace; the server logged so"
        );
        return;
    }
    let stdout = outcome["stdout"].as_str().unwrap_or_default();
    assert!(stdout.starts_with("refused"), "{outcome}");
}

#[tokio::test]
async fn disabled_interpreter_names_the_flag() {
    let server = server(false).await;
    let (result, reply) = run_code(&server, "print(1)").await;
    assert_eq!(result["status"], "failed");
    let output = result["output"].as_str().unwrap_or_default();
    assert!(output.contains("--allow-code-interpreter"), "{output}");
    assert!(reply.contains("--allow-code-interpreter"), "{reply}");
}
