//! `assisters --local` before the scripting subcommands: the real binary, an
//! isolated home, and the server running inside the binary.
//!
//! The tests that generate text link the already fetched default model into the
//! isolated home and are skipped, saying why, when it is absent. The others use a
//! file that only looks like a GGUF file: the server starts and only generation
//! fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod local_support;

use local_support::{Home, hex_secrets, read_or_empty};
use serde_json::Value;

const QUESTION: &str = "What is the capital of France?";

/// Returns the thread id that `chat` prints on stderr.
fn thread_id(stderr: &str) -> String {
    let line = stderr
        .lines()
        .find_map(|line| line.strip_prefix("thread: "))
        .unwrap_or_else(|| panic!("no thread line in stderr: {stderr}"));
    line.split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}

fn names(list: &Value) -> Vec<String> {
    list["data"]
        .as_array()
        .unwrap_or_else(|| panic!("no data array: {list}"))
        .iter()
        .map(|assistant| assistant["name"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn chat_answers_and_state_persists() {
    let home = Home::new();
    if !home.link_default_model() {
        return;
    }
    let first = home.run(&["--local", "chat", "--assistant", "Assistant", QUESTION]);
    let reply = first.ok();
    assert!(!reply.trim().is_empty(), "empty reply: {first:#?}");
    let thread = thread_id(&first.stderr);

    let threads = home.run(&["--local", "--json", "threads", "list"]).json();
    let ids: Vec<&str> = threads["data"]
        .as_array()
        .unwrap_or_else(|| panic!("no data array: {threads}"))
        .iter()
        .filter_map(|thread| thread["id"].as_str())
        .collect();
    assert_eq!(ids, vec![thread.as_str()], "the thread of the first run");

    let shown = home
        .run(&["--local", "--json", "threads", "show", &thread])
        .json();
    let messages = shown["messages"].as_array().cloned().unwrap_or_default();
    assert_eq!(messages.len(), 2, "{shown}");
    assert_eq!(messages[0]["content"], QUESTION);
    assert_eq!(messages[1]["role"], "assistant");
    assert_eq!(messages[1]["content"].as_str(), Some(reply.trim_end()));

    let assistants = home
        .run(&["--local", "--json", "assistants", "list"])
        .json();
    assert_eq!(
        names(&assistants),
        vec!["Assistant"],
        "one starter assistant"
    );
    assert!(home.data_dir().join("local.db").is_file());

    let log = read_or_empty(&home.log_file());
    assert!(log.contains("local mode started"), "{log}");
    assert!(hex_secrets(&log).is_empty(), "a key-like value in the log");
    assert!(hex_secrets(&first.stdout).is_empty(), "{first:#?}");
    assert!(hex_secrets(&first.stderr).is_empty(), "{first:#?}");
}

#[test]
fn deleted_starter_is_not_recreated() {
    let home = Home::new();
    let model = home.fake_gguf();
    let model = model.to_str().unwrap();
    let list = |home: &Home| {
        home.run(&["--local", "--model", model, "--json", "assistants", "list"])
            .json()
    };
    let first = list(&home);
    assert_eq!(names(&first), vec!["Assistant"]);
    let starter = &first["data"][0];
    assert_eq!(starter["model"], "SmolLM2-135M-Instruct");
    assert!(
        !starter["instructions"]
            .as_str()
            .unwrap_or_default()
            .is_empty(),
        "{starter}"
    );
    let id = starter["id"].as_str().unwrap().to_owned();

    home.run(&["--local", "--model", model, "assistants", "delete", &id])
        .ok();
    let after = list(&home);
    assert!(names(&after).is_empty(), "recreated: {after}");
}

#[test]
fn missing_model_without_yes_names_options() {
    let home = Home::new();
    let run = home.run(&["--local", "assistants", "list"]);
    assert_eq!(run.code, Some(2), "{run:#?}");
    for needle in ["assisters model fetch", "--yes", "--model PATH"] {
        assert!(run.stderr.contains(needle), "{needle}: {run:#?}");
    }
    let expected = home.model_path();
    assert!(
        run.stderr.contains(&expected.display().to_string()),
        "{run:#?}"
    );
    assert!(!expected.exists(), "nothing was fetched without --yes");
}

#[test]
fn damaged_model_is_reported() {
    let home = Home::new();
    let path = home.model_path();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, b"GGUF truncated").unwrap();
    let run = home.run(&["--local", "threads", "list"]);
    assert_eq!(run.code, Some(2), "{run:#?}");
    assert!(run.stderr.contains("damaged"), "{run:#?}");
    assert!(run.stderr.contains("14 bytes"), "{run:#?}");
    assert!(run.stderr.contains("--yes"), "{run:#?}");
    assert!(!run.stderr.contains("panicked"), "{run:#?}");
}

#[test]
fn model_flag_checks_the_file() {
    let home = Home::new();
    let missing = home.dir.path().join("nowhere.gguf");
    let run = home.run(&[
        "--local",
        "--model",
        missing.to_str().unwrap(),
        "assistants",
        "list",
    ]);
    assert_eq!(run.code, Some(2), "{run:#?}");
    assert!(run.stderr.contains("nowhere.gguf"), "{run:#?}");

    let text = home.dir.path().join("notes.txt");
    std::fs::write(&text, "plain text").unwrap();
    let run = home.run(&[
        "--local",
        "--model",
        text.to_str().unwrap(),
        "assistants",
        "list",
    ]);
    assert_eq!(run.code, Some(2), "{run:#?}");
    assert!(run.stderr.contains("not a GGUF file"), "{run:#?}");
}

#[test]
fn model_flag_needs_local_mode() {
    let home = Home::new();
    let run = home.run(&[
        "--base-url",
        "http://127.0.0.1:9/v1",
        "--model",
        "m.gguf",
        "assistants",
        "list",
    ]);
    assert_eq!(run.code, Some(2), "{run:#?}");
    assert!(run.stderr.contains("add --local"), "{run:#?}");
}

#[test]
fn failed_model_load_reaches_chat() {
    let home = Home::new();
    let model = home.fake_gguf();
    let run = home.run(&[
        "--local",
        "--model",
        model.to_str().unwrap(),
        "chat",
        "--assistant",
        "Assistant",
        "hello",
    ]);
    assert_eq!(run.code, Some(1), "{run:#?}");
    assert!(
        run.stderr.contains("the embedded model is unavailable"),
        "{run:#?}"
    );
    assert!(!run.stderr.contains("panicked"), "{run:#?}");
}

#[test]
fn local_flags_parse_around_subcommands() {
    use assisters::cli::{AssistantsCommand, Cli, Command};
    use clap::{CommandFactory, Parser};

    Cli::command().debug_assert();
    let cli = Cli::try_parse_from([
        "assisters",
        "--local",
        "--model",
        "x.gguf",
        "-y",
        "chat",
        "--assistant",
        "A",
        "hi",
    ])
    .unwrap();
    assert!(cli.global.local);
    assert!(cli.global.yes);
    assert_eq!(
        cli.global.local_model.as_deref(),
        Some(std::path::Path::new("x.gguf"))
    );

    let cli = Cli::try_parse_from([
        "assisters",
        "assistants",
        "create",
        "--local",
        "--yes",
        "--name",
        "N",
        "--model",
        "label",
    ])
    .unwrap();
    assert!(cli.global.local, "--local is accepted after the subcommand");
    assert!(cli.global.yes, "--yes is accepted after the subcommand");
    assert_eq!(
        cli.global.local_model, None,
        "--model here is the assistant's"
    );
    let Some(Command::Assistants(AssistantsCommand::Create(fields))) = cli.command else {
        panic!("not assistants create");
    };
    assert_eq!(fields.model.as_deref(), Some("label"));
}

#[test]
fn fetch_keeps_a_present_model() {
    let home = Home::new();
    if !home.link_default_model() {
        return;
    }
    // An empty PATH: a fetch that ran pip would fail, and none must run.
    let empty = home.dir.path().join("empty-bin");
    std::fs::create_dir_all(&empty).unwrap();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_assisters"));
    home.isolate(&mut command);
    let output = command
        .env("PATH", &empty)
        .args(["model", "fetch"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("already"), "{stderr}");
    assert!(
        std::fs::symlink_metadata(home.model_path())
            .unwrap()
            .file_type()
            .is_symlink(),
        "the present file is left in place"
    );
}
