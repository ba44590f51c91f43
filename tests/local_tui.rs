//! The full-screen app in local mode: the real binary in a pseudo-terminal with no
//! key and no base URL configured, its screen parsed with vt100. Every wait is
//! bounded.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod local_support;

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use local_support::{Home, hex_secrets, read_or_empty};
use portable_pty::{CommandBuilder, PtySize, native_pty_system};

const ROWS: u16 = 30;
const COLS: u16 = 110;
const WAIT: Duration = Duration::from_secs(30);
/// Loading the model and generating a short reply in a debug build.
const REPLY_WAIT: Duration = Duration::from_secs(120);
const CTRL_C: &str = "\u{3}";
const CTRL_N: &str = "\u{e}";

/// The binary running in a pseudo-terminal.
struct Screen {
    parser: Arc<Mutex<vt100::Parser>>,
    writer: Box<dyn Write + Send>,
    child: Box<dyn portable_pty::Child + Send + Sync>,
}

impl Screen {
    fn launch(home: &Home, args: &[&str]) -> Screen {
        let pty = native_pty_system()
            .openpty(PtySize {
                rows: ROWS,
                cols: COLS,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("openpty");
        let mut command = CommandBuilder::new(env!("CARGO_BIN_EXE_assisters"));
        command.args(args);
        command.env_clear();
        let root = home.dir.path();
        command.env("PATH", std::env::var("PATH").unwrap_or_default());
        command.env("HOME", root);
        command.env("XDG_CONFIG_HOME", root.join("config"));
        command.env("XDG_DATA_HOME", root.join("data"));
        command.env("XDG_STATE_HOME", root.join("state"));
        command.env("XDG_CACHE_HOME", root.join("cache"));
        command.env("TERM", "xterm-256color");
        let child = pty.slave.spawn_command(command).expect("spawn");
        let mut reader = pty.master.try_clone_reader().expect("reader");
        let writer = pty.master.take_writer().expect("writer");
        let parser = Arc::new(Mutex::new(vt100::Parser::new(ROWS, COLS, 0)));
        let sink = Arc::clone(&parser);
        std::thread::spawn(move || {
            let _keep_master_open = pty.master;
            let mut buffer = [0u8; 8192];
            while let Ok(read) = reader.read(&mut buffer) {
                if read == 0 {
                    break;
                }
                if let Ok(mut parser) = sink.lock() {
                    parser.process(&buffer[..read]);
                }
            }
        });
        Screen {
            parser,
            writer,
            child,
        }
    }

    fn text(&self) -> String {
        self.parser
            .lock()
            .map(|p| p.screen().contents())
            .unwrap_or_default()
    }

    /// Returns the first line of the status bar (the second-to-last row).
    fn status_line(&self) -> String {
        let text = self.text();
        let rows: Vec<&str> = text.lines().collect();
        rows.iter()
            .rev()
            .nth(1)
            .map(|row| (*row).to_owned())
            .unwrap_or_default()
    }

    fn send(&mut self, bytes: &str) {
        self.writer.write_all(bytes.as_bytes()).expect("write");
        let _ = self.writer.flush();
        std::thread::sleep(Duration::from_millis(60));
    }

    fn typed(&mut self, text: &str) {
        for c in text.chars() {
            self.send(&c.to_string());
        }
    }

    /// Waits until `done` holds for the screen text; panics after `limit`.
    fn wait_until(&self, what: &str, limit: Duration, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let text = self.text();
            if done(&text) {
                return text;
            }
            if Instant::now() > deadline {
                panic!("the screen never showed {what}; it shows:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_for(&self, needle: &str) -> String {
        self.wait_until(&format!("{needle:?}"), WAIT, |text| text.contains(needle))
    }

    /// Waits for the process to end and returns its exit code.
    fn wait_exit(&mut self) -> u32 {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.exit_code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        panic!("the app did not exit; screen:\n{}", self.text());
    }
}

#[test]
fn unconfigured_app_runs_locally() {
    let home = Home::new();
    if !home.link_default_model() {
        return;
    }
    let mut screen = Screen::launch(&home, &[]);
    screen.wait_for("Assistants (1)");
    let status = screen.status_line();
    assert!(status.starts_with(" local"), "status bar: {status:?}");

    screen.send(CTRL_N);
    screen.typed("What is the capital of France?");
    screen.send("\r");
    screen.wait_until("the reply starting", WAIT, |text| {
        text.contains("connecting") || text.contains("streaming")
    });
    screen.wait_until("the reply ending", REPLY_WAIT, |text| {
        !text.contains("connecting") && !text.contains("streaming")
    });
    let status = screen.status_line();
    assert!(!status.contains("loading model"), "status bar: {status:?}");
    screen.send(CTRL_C);
    assert_eq!(screen.wait_exit(), 0);

    let threads = home.run(&["--local", "--json", "threads", "list"]).json();
    let thread = threads["data"][0]["id"].as_str().unwrap().to_owned();
    let shown = home
        .run(&["--local", "--json", "threads", "show", &thread])
        .json();
    let messages = shown["messages"].as_array().cloned().unwrap_or_default();
    assert_eq!(messages.len(), 2, "{shown}");
    assert_eq!(messages[1]["role"], "assistant");
    let reply = messages[1]["content"].as_str().unwrap_or_default();
    assert!(!reply.trim().is_empty(), "{shown}");
    let log = read_or_empty(&home.log_file());
    assert!(
        log.contains("no API key and no base URL configured"),
        "{log}"
    );
    assert!(hex_secrets(&log).is_empty(), "a key-like value in the log");
}

#[test]
fn model_failure_shows_in_status_bar() {
    let home = Home::new();
    let model = home.fake_gguf();
    let mut screen = Screen::launch(&home, &["--model", model.to_str().unwrap()]);
    screen.wait_for("Assistants (1)");
    screen.wait_for("model failed to load");
    let status = screen.status_line();
    assert!(status.starts_with(" local"), "status bar: {status:?}");
    assert!(
        status.contains("model failed to load"),
        "status bar: {status:?}"
    );
    screen.send(CTRL_C);
    assert_eq!(screen.wait_exit(), 0);
}

#[test]
fn declined_fetch_exits_with_usage_error() {
    let home = Home::new();
    let mut screen = Screen::launch(&home, &[]);
    let text = screen.wait_for("[y/N]");
    assert!(text.contains("98 MB"), "{text}");
    let shown = text.split_whitespace().collect::<String>();
    let path = home.model_path().display().to_string();
    assert!(shown.contains(&path), "the prompt names {path}:\n{text}");
    screen.send("n\r");
    assert_eq!(screen.wait_exit(), 2);
    let text = screen.text();
    assert!(text.contains("--yes"), "{text}");
    assert!(!home.model_path().exists(), "nothing was fetched");
}
