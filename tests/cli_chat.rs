//! `assisters chat` with the built binary against the real server: streaming, threads,
//! stdin, name resolution and custom tool handlers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cli_support;

use std::time::{Duration, Instant};

use cli_support::{Env, KEY, function_file, start, start_with};
use tokio::io::AsyncReadExt;

/// Returns the thread id from chat's stderr line `thread: ID (...)`.
fn thread_id_of(stderr: &str) -> String {
    let line = stderr
        .lines()
        .find_map(|line| line.strip_prefix("thread: "))
        .unwrap_or_else(|| panic!("no thread line in {stderr:?}"));
    line.split_whitespace().next().unwrap().to_owned()
}

async fn create_assistant(env: &Env, args: &[&str]) -> String {
    let mut all = vec!["--json", "assistants", "create"];
    all.extend_from_slice(args);
    env.run(&all).await.json()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_round_trip_by_name() {
    let env = start().await;
    let assistant_id = create_assistant(&env, &["--name", "Helper"]).await;

    let first = env.run(&["chat", "--assistant", "Helper", "hello"]).await;

    assert_eq!(
        first.ok(),
        "Hello! I'm Helper, a scripted assistant running on the local server. Ask me for `help` to see what I can do.\n"
    );
    let thread_id = thread_id_of(&first.stderr);
    assert!(thread_id.starts_with("thread_"), "{first:#?}");
    let thread = env
        .run(&["--json", "threads", "list", "--assistant", &assistant_id])
        .await
        .json();
    assert_eq!(
        thread["data"][0]["id"],
        thread_id.as_str(),
        "the new thread is tagged"
    );

    let second = env
        .run(&[
            "chat",
            "--assistant",
            &assistant_id,
            "--thread",
            &thread_id,
            "thank you",
        ])
        .await;
    assert_eq!(second.ok(), "You're welcome.\n");
    assert!(!second.stderr.contains("thread: "), "{second:#?}");
    let history = env
        .run(&["--json", "threads", "show", &thread_id])
        .await
        .json();
    assert_eq!(history["messages"].as_array().map(Vec::len), Some(4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_streams_before_the_reply_ends() {
    let env = start_with(|config| config.token_delay = Duration::from_millis(40)).await;
    create_assistant(&env, &["--name", "Helper"]).await;
    let vars = [
        ("ASSISTERS_BASE_URL", env.base_url.as_str()),
        ("ASSISTERS_API_KEY", KEY),
    ];
    let mut child = env
        .command(&["chat", "--assistant", "Helper", "help"], &vars)
        .spawn()
        .expect("binary starts");
    let mut stdout = child.stdout.take().expect("stdout");

    let mut first = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(20), stdout.read(&mut first))
        .await
        .expect("first bytes in time")
        .expect("read");
    let first_at = Instant::now();
    let mut rest = Vec::new();
    stdout.read_to_end(&mut rest).await.expect("rest");
    let status = child.wait().await.expect("exit");
    let ended_at = Instant::now();

    assert!(status.success());
    assert!(read > 0);
    // The help reply has dozens of pieces 40 ms apart, so text printed piece by piece
    // arrives well before the end.
    assert!(
        ended_at - first_at > Duration::from_millis(400),
        "stdout arrived all at once: {:?}",
        ended_at - first_at
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&first[..read]),
        String::from_utf8_lossy(&rest)
    );
    assert!(
        text.starts_with("Here is what this scripted assistant does:"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_reads_message_from_stdin() {
    let env = start().await;
    create_assistant(&env, &["--name", "Echo"]).await;
    let vars = [
        ("ASSISTERS_BASE_URL", env.base_url.as_str()),
        ("ASSISTERS_API_KEY", KEY),
    ];

    let run = env
        .run_with(
            &["chat", "--assistant", "Echo", "-"],
            &vars,
            Some("line one\nline two\n"),
        )
        .await;

    assert!(run.ok().contains("line one"), "{run:#?}");
    assert!(run.ok().contains("line two"), "{run:#?}");
    let empty = env
        .run_with(&["chat", "--assistant", "Echo", "-"], &vars, Some("\n"))
        .await;
    assert_eq!(empty.code, Some(2), "{empty:#?}");
    assert!(empty.stderr.contains("the message is empty"), "{empty:#?}");
    assert!(empty.stderr.contains("stdin"), "{empty:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_message_leaves_no_thread() {
    let env = start().await;
    create_assistant(&env, &["--name", "Helper"]).await;
    let too_long = "x".repeat(65_537);

    let run = env.run(&["chat", "--assistant", "Helper", &too_long]).await;

    assert_eq!(run.code, Some(1), "{run:#?}");
    assert!(run.stderr.contains("(param: content)"), "{run:#?}");
    assert!(!run.stderr.contains("thread: "), "{run:#?}");
    let threads = env.run(&["--json", "threads", "list"]).await.json();
    assert_eq!(threads["total"], 0, "{threads}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_name_errors() {
    let env = start().await;
    let first = create_assistant(&env, &["--name", "Twin"]).await;
    let second = create_assistant(&env, &["--name", "Twin"]).await;

    let ambiguous = env.run(&["chat", "--assistant", "Twin", "hello"]).await;
    assert_eq!(ambiguous.code, Some(2), "{ambiguous:#?}");
    assert!(ambiguous.stderr.contains(&first), "{ambiguous:#?}");
    assert!(ambiguous.stderr.contains(&second), "{ambiguous:#?}");

    let unknown = env.run(&["chat", "--assistant", "Nobody", "hello"]).await;
    assert_eq!(unknown.code, Some(1), "{unknown:#?}");
    assert!(
        unknown.stderr.starts_with("error: not_found: "),
        "{unknown:#?}"
    );
    assert!(unknown.stderr.contains("Nobody"), "{unknown:#?}");

    let missing_thread = env
        .run(&[
            "chat",
            "--assistant",
            &first,
            "--thread",
            "thread_missing",
            "hi",
        ])
        .await;
    assert_eq!(missing_thread.code, Some(1), "{missing_thread:#?}");
    assert!(
        missing_thread.stderr.starts_with("error: not_found: "),
        "{missing_thread:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_runs_configured_tool() {
    let env = start().await;
    let tool = function_file(env.home.path(), "lookup_user");
    create_assistant(&env, &["--name", "Directory", "--tool", &tool]).await;
    // The handler checks its stdin and prints a name for the user id it received.
    let script = "input=$(cat); case \"$input\" in *'\"user_id\":\"42\"'*) echo 'Ada Lovelace (42)';; *) echo \"bad input: $input\" >&2; exit 1;; esac";
    env.write_config(&format!(
        "[tools.lookup_user]\ncommand = [\"sh\", \"-c\", {}]\ntimeout_secs = 10\n",
        serde_json::to_string(script).unwrap()
    ));

    let run = env
        .run(&["chat", "--assistant", "Directory", "lookup_user user_id=42"])
        .await;

    assert!(
        run.ok()
            .contains("The lookup_user tool returned: Ada Lovelace (42)"),
        "{run:#?}"
    );
    assert!(
        run.stderr
            .contains("[tool call] lookup_user({\"user_id\":\"42\"})"),
        "{run:#?}"
    );
    assert!(
        run.stderr
            .contains("[tool output] lookup_user: Ada Lovelace (42)"),
        "{run:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_without_tool_handler_fails() {
    let env = start().await;
    let tool = function_file(env.home.path(), "lookup_user");
    create_assistant(&env, &["--name", "Directory", "--tool", &tool]).await;

    let run = env
        .run(&["chat", "--assistant", "Directory", "lookup_user user_id=7"])
        .await;

    assert_eq!(run.code, Some(1), "{run:#?}");
    assert!(
        run.stderr.contains("error: tool_not_configured: "),
        "{run:#?}"
    );
    assert!(run.stderr.contains("\"lookup_user\""), "{run:#?}");
    assert!(run.stderr.contains("[tools.lookup_user]"), "{run:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_reports_failing_tool() {
    let env = start().await;
    let tool = function_file(env.home.path(), "lookup_user");
    create_assistant(&env, &["--name", "Directory", "--tool", &tool]).await;
    env.write_config(
        "[tools.lookup_user]\ncommand = [\"sh\", \"-c\", \"echo database down >&2; exit 4\"]\n",
    );

    let run = env
        .run(&["chat", "--assistant", "Directory", "lookup_user user_id=7"])
        .await;

    assert_eq!(run.code, Some(1), "{run:#?}");
    assert!(
        run.stderr.contains("error: tool_failed: tool lookup_user"),
        "{run:#?}"
    );
    assert!(run.stderr.contains("database down"), "{run:#?}");
}
