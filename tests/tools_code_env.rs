//! Code run by code_interpreter does not see the server's environment: a secret set
//! in the server process is absent in the child. This file contains one test, so that
//! setting the variable races with no other test thread.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod server_support;

use std::time::Duration;

use assisters::server::tools::python::{CodeLimits, find_python};
use serde_json::json;
use server_support::{events, start_with};

const SECRET_NAME: &str = "ASSISTERS_TEST_SECRET";
const SECRET_VALUE: &str = "s3cr3t-value-that-must-not-leak";

#[allow(unsafe_code)]
fn set_secret() {
    // SAFETY: this runs at the start of the only test of this binary, before the
    // runtime or any other thread that could read the environment is started.
    unsafe { std::env::set_var(SECRET_NAME, SECRET_VALUE) };
}

#[test]
fn an_environment_secret_does_not_reach_the_code() {
    if find_python().is_none() {
        eprintln!("skipped: python3 is not on PATH, so code_interpreter cannot run");
        return;
    }
    set_secret();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let server = start_with(|config| {
            config.allow_code_interpreter = true;
            config.code_limits = CodeLimits {
                timeout: Duration::from_secs(2),
                ..CodeLimits::default()
            };
        })
        .await;
        let assistant = server
            .assistant(json!({"name": "Runner", "tools": ["code_interpreter"]}))
            .await;
        let thread = server.thread().await;
        let code = format!(
            "import os\nprint(os.environ.get('{SECRET_NAME}', 'absent'))\nprint(sorted(os.environ))"
        );
        server
            .user_message(&thread, &format!("run it\n```python\n{code}\n```"))
            .await;
        let (_, data) = server
            .stream(&thread, &format!("assistant_id={assistant}"))
            .await;
        let events = events(&data);
        let result = events.iter().find(|e| e["type"] == "tool_result").unwrap();
        assert_eq!(result["status"], "completed", "{result}");
        let outcome: serde_json::Value =
            serde_json::from_str(result["output"].as_str().unwrap()).unwrap();
        let stdout = outcome["stdout"].as_str().unwrap();
        assert!(stdout.starts_with("absent\n"), "{stdout}");
        assert!(!stdout.contains(SECRET_VALUE), "{stdout}");
        assert!(!data.concat().contains(SECRET_VALUE));
        server.server.shutdown().await.unwrap();
    });
}
