//! End-to-end tests of the full-screen app: the real binary in a pseudo-terminal,
//! its screen parsed with vt100, against an in-process server with the scripted
//! engine on a loopback port. Every wait is bounded.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use assisters::api::types::{AssistantCreate, FunctionKind, FunctionTool, MessageCreate, Tool};
use assisters::api::{Client, ClientConfig};
use assisters::server::{RunningServer, ServerConfig, spawn};
use portable_pty::{CommandBuilder, PtySize, native_pty_system};

const KEY: &str = "tui-e2e-key-0123456789";
const ROWS: u16 = 40;
const COLS: u16 = 120;
const WAIT: Duration = Duration::from_secs(20);

struct Env {
    server: RunningServer,
    home: tempfile::TempDir,
    client: Client,
}

async fn start(token_delay: Duration) -> Env {
    let home = tempfile::tempdir().unwrap_or_else(|err| panic!("temp dir: {err}"));
    let mut config = ServerConfig::new(home.path().join("server.db"), KEY);
    config.token_delay = token_delay;
    let server = spawn(config)
        .await
        .unwrap_or_else(|err| panic!("server: {err:#}"));
    let client = Client::new(ClientConfig::new(server.base_url(), Some(KEY.to_owned())))
        .unwrap_or_else(|err| panic!("client: {err}"));
    let config_dir = home.path().join("config/assisters");
    std::fs::create_dir_all(&config_dir).unwrap_or_else(|err| panic!("config dir: {err}"));
    // The program is a shell on purpose: handlers run without one, so a test that
    // wants a script names the shell itself.
    let toml = "[tools.weather]\ncommand = [\"/bin/sh\", \"-c\", \"cat >/dev/null; echo sunny\"]\n";
    std::fs::write(config_dir.join("config.toml"), toml)
        .unwrap_or_else(|err| panic!("config: {err}"));
    Env {
        server,
        home,
        client,
    }
}

/// Creates an assistant with only a name, through the API.
async fn create_assistant(env: &Env, name: &str) {
    let body = AssistantCreate {
        name: name.to_owned(),
        ..AssistantCreate::default()
    };
    env.client
        .create_assistant(&body)
        .await
        .unwrap_or_else(|err| panic!("create {name}: {err}"));
}

/// The app running in a pseudo-terminal.
struct Screen {
    parser: Arc<Mutex<vt100::Parser>>,
    /// Every byte the app wrote.
    raw: Arc<Mutex<Vec<u8>>>,
    writer: Box<dyn Write + Send>,
    child: Box<dyn portable_pty::Child + Send + Sync>,
    master: Box<dyn portable_pty::MasterPty + Send>,
}

impl Screen {
    fn launch(env: &Env) -> Screen {
        Screen::launch_with(env, &[])
    }

    /// Launches the app with `extra` environment variables.
    fn launch_with(env: &Env, extra: &[(&str, &std::path::Path)]) -> Screen {
        let pty = native_pty_system()
            .openpty(PtySize {
                rows: ROWS,
                cols: COLS,
                pixel_width: 0,
                pixel_height: 0,
            })
            .unwrap_or_else(|err| panic!("openpty: {err}"));
        let mut command = CommandBuilder::new(env!("CARGO_BIN_EXE_assisters"));
        let home = env.home.path();
        command.env("HOME", home);
        command.env("XDG_CONFIG_HOME", home.join("config"));
        command.env("XDG_DATA_HOME", home.join("data"));
        command.env("XDG_STATE_HOME", home.join("state"));
        command.env("XDG_CACHE_HOME", home.join("cache"));
        command.env("ASSISTERS_BASE_URL", env.server.base_url());
        command.env("ASSISTERS_API_KEY", KEY);
        command.env("TERM", "xterm-256color");
        for (name, value) in extra {
            command.env(name, value);
        }
        let child = pty
            .slave
            .spawn_command(command)
            .unwrap_or_else(|err| panic!("spawn: {err}"));
        let mut reader = pty
            .master
            .try_clone_reader()
            .unwrap_or_else(|err| panic!("reader: {err}"));
        let writer = pty
            .master
            .take_writer()
            .unwrap_or_else(|err| panic!("writer: {err}"));
        let parser = Arc::new(Mutex::new(vt100::Parser::new(ROWS, COLS, 0)));
        let sink = Arc::clone(&parser);
        let raw = Arc::new(Mutex::new(Vec::new()));
        let raw_sink = Arc::clone(&raw);
        std::thread::spawn(move || {
            let mut buffer = [0u8; 8192];
            while let Ok(read) = reader.read(&mut buffer) {
                if read == 0 {
                    break;
                }
                if let Ok(mut parser) = sink.lock() {
                    parser.process(&buffer[..read]);
                }
                if let Ok(mut raw) = raw_sink.lock() {
                    raw.extend_from_slice(&buffer[..read]);
                }
            }
        });
        Screen {
            parser,
            raw,
            writer,
            child,
            master: pty.master,
        }
    }

    /// Changes the terminal's size, as a user dragging the window would.
    fn resize(&mut self, rows: u16, cols: u16) {
        if let Ok(mut parser) = self.parser.lock() {
            parser.screen_mut().set_size(rows, cols);
        }
        self.master
            .resize(PtySize {
                rows,
                cols,
                pixel_width: 0,
                pixel_height: 0,
            })
            .unwrap_or_else(|err| panic!("resize: {err}"));
    }

    fn text(&self) -> String {
        self.parser
            .lock()
            .map(|p| p.screen().contents())
            .unwrap_or_default()
    }

    fn raw_output(&self) -> Vec<u8> {
        self.raw.lock().map(|raw| raw.clone()).unwrap_or_default()
    }

    fn send(&mut self, bytes: &str) {
        self.writer
            .write_all(bytes.as_bytes())
            .unwrap_or_else(|err| panic!("write: {err}"));
        let _ = self.writer.flush();
        std::thread::sleep(Duration::from_millis(60));
    }

    fn typed(&mut self, text: &str) {
        for c in text.chars() {
            self.send(&c.to_string());
        }
    }

    async fn wait_for(&self, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let text = self.text();
            if text.contains(needle) {
                return text;
            }
            if Instant::now() > deadline {
                panic!("screen never showed {needle:?}; it shows:\n{text}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn wait_exit(&mut self) {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = self.child.kill();
        panic!("the app did not exit; screen:\n{}", self.text());
    }
}

const CTRL_C: &str = "\u{3}";
const CTRL_N: &str = "\u{e}";
const CTRL_S: &str = "\u{13}";
const ESC: &str = "\u{1b}";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_edit_chat_restart() {
    let env = start(Duration::ZERO).await;
    let mut screen = Screen::launch(&env);
    screen.wait_for("Assistants (0)").await;

    screen.send("n");
    screen.wait_for("New assistant").await;
    screen.typed("E2E Bot");
    screen.send(CTRL_S);
    screen.wait_for("Assistants (1)").await;
    let page = env
        .client
        .list_assistants(10, 0)
        .await
        .unwrap_or_else(|err| panic!("list: {err}"));
    assert_eq!(page.data.len(), 1);
    assert_eq!(page.data[0].name, "E2E Bot");

    screen.send("e");
    screen.wait_for("Edit E2E Bot").await;
    screen.typed("Answer in haiku.");
    screen.send(CTRL_S);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let saved = env
        .client
        .get_assistant(&page.data[0].id)
        .await
        .unwrap_or_else(|err| panic!("get: {err}"));
    assert_eq!(saved.instructions, "Answer in haiku.");
    assert_eq!(saved.name, "E2E Bot", "unchanged fields are kept");

    screen.send(CTRL_N);
    screen.typed("hello there");
    screen.send("\r");
    let text = screen.wait_for("Assistant · ").await;
    assert!(text.contains("hello there"), "{text}");
    let deadline = Instant::now() + WAIT;
    while screen.text().contains("streaming") && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A stored message with escape sequences must not retitle or clear the screen.
    let threads = env
        .client
        .list_threads(&Default::default())
        .await
        .unwrap_or_else(|err| panic!("threads: {err}"));
    let thread_id = threads.data[0].id.clone();
    let hostile = MessageCreate::user("evil\u{1b}]0;pwned\u{7}\u{1b}[2J end-of-evil");
    env.client
        .create_message(&thread_id, &hostile)
        .await
        .unwrap_or_else(|err| panic!("post: {err}"));
    screen.send("\t");
    screen.send("\t");
    screen.send("\r");
    let text = screen.wait_for("end-of-evil").await;
    assert!(
        text.contains("Assistants (1)"),
        "the screen was cleared:\n{text}"
    );
    let raw = String::from_utf8_lossy(&screen.raw_output()).into_owned();
    assert!(
        !raw.contains("]0;pwned"),
        "a title change reached the terminal"
    );
    assert!(
        !raw.contains("\u{1b}[2J end-of-evil"),
        "a clear-screen reached the terminal"
    );

    screen.send(CTRL_C);
    screen.wait_exit().await;

    let mut again = Screen::launch(&env);
    let text = again.wait_for("end-of-evil").await;
    assert!(
        text.contains("hello there"),
        "the history of the last thread is back:\n{text}"
    );
    again.send(CTRL_C);
    again.wait_exit().await;
    let _ = env.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stream_and_approve_tool() {
    let env = start(Duration::from_millis(150)).await;
    let tool = Tool::Function(FunctionTool {
        kind: FunctionKind::Function,
        name: "weather".into(),
        description: "Weather now".into(),
        parameters: serde_json::json!({"type": "object"}),
    });
    let body = AssistantCreate {
        name: "Tool Bot".into(),
        tools: Some(vec![tool]),
        ..AssistantCreate::default()
    };
    env.client
        .create_assistant(&body)
        .await
        .unwrap_or_else(|err| panic!("create: {err}"));
    let mut screen = Screen::launch(&env);
    screen.wait_for("Tool Bot").await;

    screen.send(CTRL_N);
    screen.typed("tell me a long story");
    screen.send("\r");
    screen.wait_for("streaming").await;
    screen.send(ESC);
    screen.wait_for("stopped").await;

    screen.send(CTRL_N);
    screen.typed("use weather please");
    screen.send("\r");
    screen.wait_for("Run tool?").await;
    screen.send("y");
    let text = screen.wait_for("sunny").await;
    assert!(text.contains("weather"), "{text}");
    screen.send(CTRL_C);
    screen.wait_exit().await;
    let _ = env.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_screen_takes_typed_message() {
    let env = start(Duration::ZERO).await;
    create_assistant(&env, "Ready Bot").await;
    let mut screen = Screen::launch(&env);
    screen.wait_for("Ready Bot").await;

    // No key first: the letters of "hello there" (e, d, n, q) must not act on the list.
    screen.typed("hello there");
    screen.send("\r");
    let text = screen.wait_for("I'm Ready Bot").await;
    assert!(!text.contains("Edit Ready Bot"), "{text}");
    screen.send(CTRL_C);
    screen.wait_exit().await;
    let _ = env.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_key_binding_stops_before_screen() {
    let env = start(Duration::ZERO).await;
    let config = env.home.path().join("config/assisters/config.toml");
    std::fs::write(
        &config,
        "theme = {}\n\n[keys]\n\"ctrl-t\" = \"no_such_action\"\n",
    )
    .unwrap_or_else(|err| panic!("config: {err}"));
    let mut screen = Screen::launch(&env);
    screen.wait_exit().await;
    // The pty reader may still be parsing the last output when the process is gone.
    let text = screen.wait_for("no_such_action").await;
    assert!(text.contains("config.toml"), "{text}");
    assert!(text.contains("line 4"), "{text}");
    assert!(text.contains("no_such_action"), "{text}");
    let raw = String::from_utf8_lossy(&screen.raw_output()).into_owned();
    assert!(
        !raw.contains("\u{1b}[?1049h"),
        "the alternate screen was entered"
    );
    let _ = env.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resize_redraws_whole_screen() {
    let env = start(Duration::ZERO).await;
    create_assistant(&env, "Wide Bot").await;
    let mut screen = Screen::launch(&env);
    screen.wait_for("Wide Bot").await;

    screen.resize(24, 80);
    let deadline = Instant::now() + WAIT;
    let narrow = loop {
        let text = screen.text();
        let right_edges = text
            .lines()
            .filter(|line| line.trim_end().chars().count() == 80)
            .count();
        if right_edges > 10 || Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let lines: Vec<&str> = narrow.lines().collect();
    assert_eq!(lines.len(), 24, "{narrow}");
    assert!(narrow.contains("Wide Bot"), "{narrow}");
    let too_wide = lines
        .iter()
        .filter(|line| line.chars().count() > 80)
        .count();
    assert_eq!(too_wide, 0, "{narrow}");

    // Typing after the resize still reaches the composer of the smaller screen.
    screen.typed("hi");
    screen.send("\r");
    screen.wait_for("I'm Wide Bot").await;
    screen.send(CTRL_C);
    screen.wait_exit().await;
    let _ = env.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_editor_replaces_draft() {
    let env = start(Duration::ZERO).await;
    create_assistant(&env, "Draft Bot").await;
    // The editor appends a line to the draft file it is given, and records that it ran.
    let editor = env.home.path().join("editor.sh");
    let ran = env.home.path().join("editor-ran");
    let script = format!(
        "#!/bin/sh\nprintf ' from the editor' >> \"$1\"\ntouch '{}'\n",
        ran.display()
    );
    std::fs::write(&editor, script).unwrap_or_else(|err| panic!("editor: {err}"));
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&editor, std::fs::Permissions::from_mode(0o755))
            .unwrap_or_else(|err| panic!("chmod: {err}"));
    }
    // An empty $VISUAL counts as unset, so $EDITOR is used.
    let mut screen = Screen::launch_with(
        &env,
        &[
            ("VISUAL", std::path::Path::new("")),
            ("EDITOR", editor.as_path()),
        ],
    );
    screen.wait_for("Draft Bot").await;

    screen.typed("hello");
    screen.send("\u{5}");
    screen.wait_for("hello from the editor").await;
    assert!(ran.exists(), "the editor never ran");

    // Keys after the editor reach the app again.
    screen.typed(" and more");
    screen.wait_for("hello from the editor and more").await;
    screen.send("\r");
    screen.wait_for("I'm Draft Bot").await;
    screen.send(CTRL_C);
    screen.wait_exit().await;
    let _ = env.server.shutdown().await;
}
