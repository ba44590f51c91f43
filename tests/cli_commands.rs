//! The `assistants` and `threads` subcommands, exit codes and configuration errors,
//! running the built binary against the real server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cli_support;

use cli_support::{KEY, function_file, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assistants_crud_json_and_tables() {
    let env = start().await;
    let tool = function_file(env.home.path(), "lookup_user");

    let created = env
        .run(&[
            "--json",
            "assistants",
            "create",
            "--name",
            "Support",
            "--instructions",
            "Be brief.\nAlways cite.",
            "--tool",
            "web_search",
            "--tool",
            &tool,
            "--temperature",
            "0.4",
        ])
        .await
        .json();
    let id = created["id"].as_str().expect("id").to_owned();
    assert!(id.starts_with("asst_"), "{id}");
    assert_eq!(created["tools"][0], "web_search");
    assert_eq!(created["tools"][1]["name"], "lookup_user");
    assert_eq!(created["settings"]["temperature"], 0.4);

    let table = env.run(&["assistants", "list"]).await;
    let lines: Vec<&str> = table.ok().lines().collect();
    assert!(lines[0].starts_with("ID"), "{table:#?}");
    assert!(
        lines[1].contains(&id) && lines[1].contains("Support"),
        "{table:#?}"
    );
    assert!(lines[1].contains("web_search, lookup_user()"), "{table:#?}");
    assert_eq!(lines.last(), Some(&"1-1 of 1"));

    let list = env.run(&["--json", "assistants", "list"]).await.json();
    assert_eq!(list["total"], 1);
    assert_eq!(list["has_more"], false);
    assert_eq!(list["data"][0]["id"], id.as_str());

    let shown = env.run(&["assistants", "show", &id]).await;
    assert!(
        shown
            .ok()
            .contains("instructions:\n  Be brief.\n  Always cite.\n"),
        "{shown:#?}"
    );
    assert!(shown.ok().contains("temperature  0.4"), "{shown:#?}");

    let updated = env
        .run(&[
            "--json",
            "assistants",
            "update",
            &id,
            "--name",
            "Billing",
            "--top-p",
            "0.8",
        ])
        .await
        .json();
    assert_eq!(updated["name"], "Billing");
    assert_eq!(updated["instructions"], "Be brief.\nAlways cite.");
    assert_eq!(updated["settings"]["top_p"], 0.8);
    assert_eq!(
        updated["settings"]["temperature"], 0.4,
        "the other setting is kept"
    );

    let deleted = env.run(&["assistants", "delete", &id]).await;
    assert_eq!(deleted.ok(), format!("deleted {id}\n"));
    let gone = env.run(&["assistants", "show", &id]).await;
    assert_eq!(gone.code, Some(1), "{gone:#?}");
    assert!(gone.stderr.starts_with("error: not_found: "), "{gone:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn threads_commands() {
    let env = start().await;
    let assistant = env
        .run(&["--json", "assistants", "create", "--name", "Helper"])
        .await
        .json();
    let assistant_id = assistant["id"].as_str().unwrap();

    let thread = env
        .run(&[
            "--json",
            "threads",
            "create",
            "--assistant",
            assistant_id,
            "--metadata",
            "topic=billing",
        ])
        .await
        .json();
    let thread_id = thread["id"].as_str().unwrap().to_owned();
    assert_eq!(thread["metadata"]["assistant_id"], assistant_id);
    assert_eq!(thread["metadata"]["topic"], "billing");
    env.run(&["threads", "create"]).await.ok();

    let filtered = env
        .run(&["--json", "threads", "list", "--assistant", assistant_id])
        .await
        .json();
    assert_eq!(filtered["total"], 1);
    assert_eq!(filtered["data"][0]["id"], thread_id.as_str());
    let table = env.run(&["threads", "list"]).await;
    assert!(table.ok().contains(&thread_id), "{table:#?}");
    assert!(table.ok().contains("topic=billing"), "{table:#?}");
    assert!(table.ok().ends_with("1-2 of 2\n"), "{table:#?}");

    let chat = env
        .run(&[
            "chat",
            "--assistant",
            "Helper",
            "--thread",
            &thread_id,
            "hello",
        ])
        .await;
    chat.ok();
    let shown = env.run(&["threads", "show", &thread_id]).await;
    let text = shown.ok();
    assert!(
        text.starts_with(&format!("thread {thread_id}")),
        "{shown:#?}"
    );
    assert!(text.contains("[user] msg_"), "{shown:#?}");
    assert!(text.contains("\nhello\n"), "{shown:#?}");
    assert!(text.contains("[assistant] msg_"), "{shown:#?}");
    let json = env
        .run(&["--json", "threads", "show", &thread_id])
        .await
        .json();
    assert_eq!(json["thread"]["id"], thread_id.as_str());
    assert_eq!(json["messages"].as_array().map(Vec::len), Some(2));

    let deleted = env
        .run(&["--json", "threads", "delete", &thread_id])
        .await
        .json();
    assert_eq!(deleted["deleted"], true);
    let gone = env.run(&["threads", "show", &thread_id]).await;
    assert_eq!(gone.code, Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_errors_exit_2() {
    let env = start().await;
    let cases: &[(&[&str], &str)] = &[
        (&["assistants"], "Usage"),
        (&["--bogus-flag"], "--bogus-flag"),
        (&["chat", "hello"], "--assistant"),
        (&["assistants", "create", "--description", "x"], "--name"),
        (&["assistants", "update", "asst_1"], "at least one of"),
        (
            &[
                "assistants",
                "create",
                "--name",
                "x",
                "--tool",
                "@/nonexistent/t.json",
            ],
            "/nonexistent/t.json",
        ),
        (&["threads", "create", "--metadata", "novalue"], "KEY=VALUE"),
        (&["--local", "assistants", "list"], "assisters model fetch"),
        (
            &["--base-url", "ftp://127.0.0.1/v1", "assistants", "list"],
            "ftp://127.0.0.1/v1",
        ),
    ];
    for (args, expected) in cases {
        let run = env.run(args).await;
        assert_eq!(run.code, Some(2), "{args:?}: {run:#?}");
        assert!(run.stderr.contains(expected), "{args:?}: {run:#?}");
        assert!(run.stdout.is_empty(), "{args:?}: {run:#?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_config_errors_exit_2() {
    let env = start().await;
    let db = env.home.path().join("serve.db");
    let db = db.to_string_lossy();
    let script = env.home.path().join("bad-script.toml");
    std::fs::write(&script, "rules = 5\n").expect("script written");
    let script = script.to_string_lossy();
    let base: &[&str] = &["serve", "--listen", "127.0.0.1:0", "--db", &db];
    let cases: &[(&[&str], &str)] = &[
        (&[], "--api-key"),
        (&["--api-key", " "], "--api-key"),
        (&["--api-key", "k", "--script", &script], "bad-script.toml"),
        (&["--api-key", "k", "--rate-limit", "0"], "--rate-limit"),
    ];
    for (extra, expected) in cases {
        let args: Vec<&str> = base.iter().chain(extra.iter()).copied().collect();
        let run = env.run_with(&args, &[], None).await;
        assert_eq!(run.code, Some(2), "{args:?}: {run:#?}");
        assert!(run.stderr.contains(expected), "{args:?}: {run:#?}");
        assert!(!run.stderr.contains("server_error"), "{args:?}: {run:#?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_errors_exit_1() {
    let env = start().await;

    let invalid = env
        .run(&[
            "assistants",
            "create",
            "--name",
            "Hot",
            "--temperature",
            "9",
        ])
        .await;
    assert_eq!(invalid.code, Some(1), "{invalid:#?}");
    assert!(
        invalid.stderr.starts_with("error: invalid_request_error: "),
        "{invalid:#?}"
    );
    assert!(
        invalid.stderr.contains("(param: settings.temperature)"),
        "{invalid:#?}"
    );

    let unknown_file = env
        .run(&[
            "assistants",
            "create",
            "--name",
            "Docs",
            "--file-id",
            "file_missing",
        ])
        .await;
    assert_eq!(unknown_file.code, Some(1), "{unknown_file:#?}");
    assert!(
        unknown_file.stderr.contains("(param: file_ids[0])"),
        "{unknown_file:#?}"
    );
    assert!(
        unknown_file.stderr.contains("file_missing"),
        "{unknown_file:#?}"
    );

    let wrong_key = env
        .run_with(
            &["assistants", "list"],
            &[
                ("ASSISTERS_BASE_URL", &env.base_url),
                ("ASSISTERS_API_KEY", "wrong-key-3b1"),
            ],
            None,
        )
        .await;
    assert_eq!(wrong_key.code, Some(1), "{wrong_key:#?}");
    assert!(
        wrong_key.stderr.starts_with("error: invalid_api_key: "),
        "{wrong_key:#?}"
    );
    assert!(!wrong_key.stderr.contains("wrong-key-3b1"));

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = format!("http://{}/v1", listener.local_addr().unwrap());
    drop(listener);
    let refused = env.run(&["--base-url", &closed, "threads", "create"]).await;
    assert_eq!(refused.code, Some(1), "{refused:#?}");
    assert!(
        refused
            .stderr
            .starts_with("error: transport_error: request to 127.0.0.1:"),
        "{refused:#?}"
    );
    assert!(refused.stderr.contains("--base-url"), "{refused:#?}");
}

/// Serves one 429 with `Retry-After: 1`, then an empty page, each on its own
/// connection, on 127.0.0.1; returns the base URL.
fn limited_then_ok_server() -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}/v1", listener.local_addr().expect("address"));
    let limited = r#"{"error":{"code":"rate_limit_exceeded","message":"slow down","param":null,"type":"rate_limit_error"}}"#;
    let page = r#"{"data":[],"total":0,"has_more":false}"#;
    std::thread::spawn(move || {
        for (status, extra, body) in [
            ("429 Too Many Requests", "retry-after: 1\r\n", limited),
            ("200 OK", "", page),
        ] {
            let Ok((mut socket, _)) = listener.accept() else {
                return;
            };
            let mut head = [0u8; 4096];
            let _ = socket.read(&mut head);
            let reply = format!(
                "HTTP/1.1 {status}\r\n{extra}content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(reply.as_bytes());
        }
    });
    base
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_wait_is_reported() {
    let env = start().await;
    let base = limited_then_ok_server();
    let run = env.run(&["--base-url", &base, "assistants", "list"]).await;
    assert_eq!(run.code, Some(0), "{run:#?}");
    assert!(run.stderr.contains("retrying in"), "{run:#?}");
    assert!(run.stderr.contains("rate limited"), "{run:#?}");
    assert!(run.stdout.contains("no items"), "{run:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_key_is_usage_error() {
    let env = start().await;
    let run = env
        .run_with(
            &["assistants", "list"],
            &[("ASSISTERS_BASE_URL", &env.base_url)],
            None,
        )
        .await;
    assert_eq!(run.code, Some(2), "{run:#?}");
    assert!(run.stderr.contains("no API key"), "{run:#?}");
    assert!(run.stderr.contains("ASSISTERS_API_KEY"), "{run:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_config_names_line() {
    let env = start().await;
    let path = env.write_config("base_url = \"http://127.0.0.1:1/v1\"\n\nmystery = 3\n");

    let run = env.run(&["assistants", "list"]).await;

    assert_eq!(run.code, Some(2), "{run:#?}");
    assert!(run.stderr.contains(&path.display().to_string()), "{run:#?}");
    assert!(run.stderr.contains("line 3"), "{run:#?}");
    assert!(run.stderr.contains("mystery"), "{run:#?}");

    let other = env.home.path().join("other.toml");
    std::fs::write(&other, "[tools.x]\ntimeout_secs = \"slow\"\n").unwrap();
    let explicit = env
        .run(&["--config", other.to_str().unwrap(), "assistants", "list"])
        .await;
    assert_eq!(explicit.code, Some(2), "{explicit:#?}");
    assert!(explicit.stderr.contains("other.toml"), "{explicit:#?}");
    assert!(explicit.stderr.contains("line 2"), "{explicit:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_file_supplies_connection() {
    let env = start().await;
    env.write_config(&format!(
        "default_profile = \"local\"\n\n[profiles.local]\nbase_url = \"{}\"\napi_key = \"{KEY}\"\n",
        env.base_url
    ));

    let run = env
        .run_with(&["--json", "assistants", "list"], &[], None)
        .await;

    assert_eq!(run.json()["total"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_strip_escape_sequences() {
    let env = start().await;
    env.run(&[
        "assistants",
        "create",
        "--name",
        "Evil\u{1b}]0;pwned\u{7}\u{1b}[2JName",
    ])
    .await
    .ok();

    let table = env.run(&["assistants", "list"]).await;

    assert!(table.ok().contains("EvilName"), "{table:#?}");
    assert!(!table.stdout.contains('\u{1b}'), "{table:#?}");
    let json = env.run(&["--json", "assistants", "list"]).await.json();
    assert_eq!(
        json["data"][0]["name"],
        "Evil\u{1b}]0;pwned\u{7}\u{1b}[2JName"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_file_is_private_and_keyless() {
    let env = start().await;
    env.run(&["assistants", "list"]).await.ok();

    let log = env.state_dir().join("assisters.log");
    let text =
        std::fs::read_to_string(&log).unwrap_or_else(|err| panic!("{}: {err}", log.display()));
    assert!(!text.contains(KEY));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&log).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
