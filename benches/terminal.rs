//! Measurements of the full-screen app in a real pseudo-terminal: the release binary
//! runs at 120x40 against a server in this process (scripted engine on a loopback
//! port), and its output is parsed with vt100 as a terminal would draw it.
//!
//! - first paint: from spawning the process to the first screen showing the
//!   assistants pane;
//! - idle RSS: `VmRSS` of `/proc/PID/status` after 2 s without input;
//! - idle working set: the memory the app touches in the next 2 s without input
//!   (`clear_refs`, then `Referenced` of `smaps_rollup`);
//! - CPU: `utime + stime` of `/proc/PID/stat` from pressing Enter until a
//!   5,000-token reply streamed at one token per 2 ms is on screen and finished;
//! - latency: for every 250th token (a marker word), the time from the engine
//!   handing it to the server until the parsed screen shows it.
//!
//! The bench replies to the device-attributes query as a terminal does, so the app's
//! keyboard-enhancement probe does not wait for its 2 s timeout (crossterm 0.29).
//!
//! Run with `cargo bench --bench terminal`. It prints a markdown table.
#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use assisters::api::types::AssistantCreate;
use assisters::api::{Client, ClientConfig};
use assisters::engine::scripted::Scripted;
use assisters::engine::{Engine, EngineEvent, EngineRequest, EngineStream, Script};
use assisters::server::{EngineChoice, ServerConfig, spawn};
use futures::StreamExt;
use portable_pty::{CommandBuilder, PtySize, native_pty_system};
use tokio_util::sync::CancellationToken;

const KEY: &str = "terminal-bench-key-0123456789";
const ROWS: u16 = 40;
const COLS: u16 = 120;
const TOKENS: usize = 5_000;
const MARK_EVERY: usize = 250;
const TOKEN_DELAY: Duration = Duration::from_millis(2);
const WAIT: Duration = Duration::from_secs(60);
/// Clock ticks per second of `/proc/PID/stat` (USER_HZ, 100 on Linux).
const TICKS_PER_SECOND: f64 = 100.0;

/// When each marker word left the engine.
type Sent = Arc<Mutex<BTreeMap<String, Instant>>>;

/// The scripted engine, noting when each marker word is handed to the server.
struct Recording {
    inner: Scripted,
    sent: Sent,
}

impl Engine for Recording {
    fn name(&self) -> &str {
        "scripted"
    }

    fn reply(&self, request: EngineRequest, cancel: CancellationToken) -> EngineStream {
        let sent = Arc::clone(&self.sent);
        let stream = self.inner.reply(request, cancel).map(move |event| {
            if let EngineEvent::Delta(text) = &event
                && let Some(word) = marker_in(text)
                && let Ok(mut sent) = sent.lock()
            {
                sent.insert(word, Instant::now());
            }
            event
        });
        Box::pin(stream)
    }
}

fn marker(index: usize) -> String {
    format!("mark{index:04}")
}

fn marker_in(text: &str) -> Option<String> {
    text.split_whitespace()
        .find(|word| word.starts_with("mark"))
        .map(str::to_owned)
}

/// Builds a markdown reply of `TOKENS` words: paragraphs of 40 words, a list and a
/// fenced code block, with a marker word every `MARK_EVERY` words.
fn long_reply() -> String {
    let words = [
        "the", "reply", "streams", "into", "the", "terminal", "while", "it", "grows",
    ];
    let mut text = String::new();
    for index in 1..=TOKENS {
        if index % MARK_EVERY == 0 {
            text.push_str(&marker(index));
        } else {
            text.push_str(words[index % words.len()]);
        }
        text.push(match index {
            i if i == TOKENS => '\n',
            i if i % 40 == 0 => '\n',
            _ => ' ',
        });
        if index % 40 == 0 {
            text.push('\n');
            if index == 1_000 {
                text.push_str("- one item\n- another item\n\n");
            }
            if index == 2_000 {
                text.push_str("```python\nfor step in range(3):\n    print(step)\n```\n\n");
            }
        }
    }
    text
}

fn write_script(path: &Path) {
    let script = format!(
        "[[rules]]\ncontains = \"long reply\"\nreply = '''\n{}'''\n",
        long_reply()
    );
    std::fs::write(path, script).unwrap_or_else(|err| panic!("script: {err}"));
}

/// Screen observations of the pty reader, with their times.
#[derive(Default)]
struct Seen {
    first_paint: Option<Instant>,
    markers: BTreeMap<String, Instant>,
    screen: String,
}

struct App {
    child: Box<dyn portable_pty::Child + Send + Sync>,
    pid: u32,
    writer: Arc<Mutex<Box<dyn Write + Send>>>,
    seen: Arc<Mutex<Seen>>,
    spawned: Instant,
}

impl App {
    fn launch(home: &Path, base_url: &str) -> App {
        let pty = native_pty_system()
            .openpty(PtySize {
                rows: ROWS,
                cols: COLS,
                pixel_width: 0,
                pixel_height: 0,
            })
            .unwrap_or_else(|err| panic!("openpty: {err}"));
        let mut command = CommandBuilder::new(env!("CARGO_BIN_EXE_assisters"));
        command.env("HOME", home);
        command.env("XDG_CONFIG_HOME", home.join("config"));
        command.env("XDG_DATA_HOME", home.join("data"));
        command.env("XDG_STATE_HOME", home.join("state"));
        command.env("XDG_CACHE_HOME", home.join("cache"));
        command.env("ASSISTERS_BASE_URL", base_url);
        command.env("ASSISTERS_API_KEY", KEY);
        command.env("TERM", "xterm-256color");
        let mut reader = pty
            .master
            .try_clone_reader()
            .unwrap_or_else(|err| panic!("reader: {err}"));
        let writer = pty
            .master
            .take_writer()
            .unwrap_or_else(|err| panic!("writer: {err}"));
        let writer = Arc::new(Mutex::new(writer));
        let seen = Arc::new(Mutex::new(Seen::default()));
        let spawned = Instant::now();
        let child = pty
            .slave
            .spawn_command(command)
            .unwrap_or_else(|err| panic!("spawn: {err}"));
        let pid = child.process_id().unwrap_or_else(|| panic!("no pid"));
        let (sink, answer) = (Arc::clone(&seen), Arc::clone(&writer));
        std::thread::spawn(move || {
            let _keep_master_open = pty.master;
            let mut parser = vt100::Parser::new(ROWS, COLS, 0);
            let mut buffer = vec![0u8; 65_536];
            while let Ok(read) = reader.read(&mut buffer) {
                if read == 0 {
                    break;
                }
                let bytes = &buffer[..read];
                if bytes.windows(3).any(|w| w == b"\x1b[c")
                    && let Ok(mut writer) = answer.lock()
                {
                    // Primary device attributes, as a VT220-class terminal replies.
                    let _ = writer.write_all(b"\x1b[?62;22c");
                    let _ = writer.flush();
                }
                parser.process(bytes);
                observe(&sink, &parser.screen().contents());
            }
        });
        App {
            child,
            pid,
            writer,
            seen,
            spawned,
        }
    }

    fn send(&self, bytes: &str) {
        if let Ok(mut writer) = self.writer.lock() {
            writer
                .write_all(bytes.as_bytes())
                .unwrap_or_else(|err| panic!("write: {err}"));
            let _ = writer.flush();
        }
    }

    /// Waits until the screen shows `needle`; returns when the reader first saw it.
    fn wait_for(&self, needle: &str) -> Instant {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(seen) = self.seen.lock() {
                if let Some(at) = seen.markers.get(needle) {
                    return *at;
                }
                if seen.screen.contains(needle) {
                    return Instant::now();
                }
            }
            assert!(
                Instant::now() < deadline,
                "the screen never showed {needle:?}:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn screen(&self) -> String {
        self.seen
            .lock()
            .map(|s| s.screen.clone())
            .unwrap_or_default()
    }

    fn quit(mut self) {
        self.send("\u{3}");
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
    }
}

/// Records the first paint and the first time each marker word is on screen.
fn observe(seen: &Mutex<Seen>, screen: &str) {
    let now = Instant::now();
    let Ok(mut seen) = seen.lock() else {
        return;
    };
    if seen.first_paint.is_none() && screen.contains("Assistants") {
        seen.first_paint = Some(now);
    }
    for index in (MARK_EVERY..=TOKENS).step_by(MARK_EVERY) {
        let word = marker(index);
        if !seen.markers.contains_key(&word) && screen.contains(&word) {
            seen.markers.insert(word, now);
        }
    }
    seen.screen = screen.to_owned();
}

/// Returns `utime + stime` of a process, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |index: usize| fields.get(index).and_then(|f| f.parse::<u64>().ok());
    // utime and stime are fields 14 and 15 of the whole line; 12 and 13 after `)`.
    match (ticks(11), ticks(12)) {
        (Some(user), Some(system)) => (user + system) as f64 / TICKS_PER_SECOND,
        _ => panic!("cannot read CPU time of {pid} from {stat:?}"),
    }
}

/// Returns a `/proc/PID/status` field such as `VmRSS`, in KiB.
/// Returns the KiB of memory that the process touched in the next `idle`: its idle
/// working set. Writing 1 to `clear_refs` clears the referenced bit of every page it
/// has mapped, and `smaps_rollup` then counts the pages touched since.
fn working_set_kib(pid: u32, idle: Duration) -> Option<u64> {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "1").ok()?;
    std::thread::sleep(idle);
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    rollup
        .lines()
        .find_map(|line| line.strip_prefix("Referenced:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

struct Figures {
    first_paint: Duration,
    rss_kib: u64,
    rss_anon_kib: u64,
    rss_file_kib: u64,
    working_set_kib: Option<u64>,
    cpu: f64,
    stream_time: Duration,
    latencies: Vec<Duration>,
    last_latency: Duration,
}

async fn measure() -> Figures {
    let home = tempfile::tempdir().unwrap_or_else(|err| panic!("temp dir: {err}"));
    let script_path = home.path().join("script.toml");
    write_script(&script_path);
    let script = Script::load(&script_path).unwrap_or_else(|err| panic!("script: {err}"));
    let sent: Sent = Arc::default();
    let engine = Recording {
        inner: Scripted::new(script, TOKEN_DELAY),
        sent: Arc::clone(&sent),
    };
    let mut config = ServerConfig::new(home.path().join("server.db"), KEY);
    config.engine = EngineChoice::Instance(Arc::new(engine));
    config.rate_limit = 1_000_000;
    let server = spawn(config)
        .await
        .unwrap_or_else(|err| panic!("server: {err:#}"));
    let client = Client::new(ClientConfig::new(server.base_url(), Some(KEY.to_owned())))
        .unwrap_or_else(|err| panic!("client: {err}"));
    let body = AssistantCreate {
        name: "Bench Bot".into(),
        ..AssistantCreate::default()
    };
    client
        .create_assistant(&body)
        .await
        .unwrap_or_else(|err| panic!("create: {err}"));

    let app = App::launch(home.path(), &server.base_url());
    let (pid, spawned, seen) = (app.pid, app.spawned, Arc::clone(&app.seen));
    let measured = tokio::task::spawn_blocking(move || {
        app.wait_for("Bench Bot");
        let first_paint = seen
            .lock()
            .ok()
            .and_then(|s| s.first_paint)
            .map(|at| at.duration_since(spawned))
            .unwrap_or_else(|| panic!("no first paint"));
        std::thread::sleep(Duration::from_secs(2));
        let rss_kib = status_kib(pid, "VmRSS");
        let rss_anon_kib = status_kib(pid, "RssAnon");
        let rss_file_kib = status_kib(pid, "RssFile");
        let working_set_kib = working_set_kib(pid, Duration::from_secs(2));

        app.send("\u{e}");
        std::thread::sleep(Duration::from_millis(200));
        app.send("long reply please");
        std::thread::sleep(Duration::from_millis(200));
        let cpu_before = cpu_seconds(pid);
        let started = Instant::now();
        app.send("\r");
        let last = app.wait_for(&marker(TOKENS));
        let deadline = Instant::now() + WAIT;
        while app.screen().contains("streaming") && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        // Let the last frame finish before reading the counters.
        std::thread::sleep(Duration::from_millis(100));
        let cpu = cpu_seconds(pid) - cpu_before;
        let stream_time = last.duration_since(started);
        let shown = seen.lock().map(|s| s.markers.clone()).unwrap_or_default();
        app.quit();
        let figures = Figures {
            first_paint,
            rss_kib,
            rss_anon_kib,
            rss_file_kib,
            working_set_kib,
            cpu,
            stream_time,
            latencies: Vec::new(),
            last_latency: Duration::ZERO,
        };
        (figures, shown)
    })
    .await
    .unwrap_or_else(|err| panic!("measuring: {err}"));
    let (mut figures, shown) = measured;
    let sent = sent.lock().map(|s| s.clone()).unwrap_or_default();
    let mut latencies = Vec::new();
    for (word, sent_at) in &sent {
        let shown_at = shown
            .get(word)
            .unwrap_or_else(|| panic!("{word} was sent but never shown"));
        latencies.push(shown_at.saturating_duration_since(*sent_at));
    }
    assert_eq!(
        latencies.len(),
        TOKENS / MARK_EVERY,
        "markers sent: {sent:?}"
    );
    figures.last_latency = latencies.last().copied().unwrap_or_default();
    figures.latencies = latencies;
    let _ = server.shutdown().await;
    figures
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|err| panic!("runtime: {err}"));
    let figures = runtime.block_on(measure());
    let all: Vec<String> = figures
        .latencies
        .iter()
        .map(|latency| format!("{:.0}", ms(*latency)))
        .collect();
    eprintln!("token to screen per marker, ms: {}", all.join(" "));
    let mut sorted = figures.latencies.clone();
    sorted.sort();
    let median = sorted[sorted.len() / 2];
    let worst = sorted.last().copied().unwrap_or_default();
    println!("| measure | result | target |");
    println!("|---|---|---|");
    println!(
        "| first paint | {:.1} ms | 20 ms |",
        ms(figures.first_paint)
    );
    println!(
        "| idle RSS after 2 s | {:.1} MiB ({:.1} MiB anonymous, {:.1} MiB file-backed) | 7 MiB |",
        mib(figures.rss_kib),
        mib(figures.rss_anon_kib),
        mib(figures.rss_file_kib)
    );
    if let Some(kib) = figures.working_set_kib {
        println!(
            "| memory touched in the next 2 s idle (working set) | {:.1} MiB | |",
            mib(kib)
        );
    }
    println!(
        "| CPU for a {TOKENS}-token reply ({:.1} s from Enter to the last token) | {:.2} s | 0.5 s |",
        figures.stream_time.as_secs_f64(),
        figures.cpu
    );
    println!(
        "| token to screen ({} markers) | median {:.1} ms, worst {:.1} ms, last token {:.1} ms | 50 ms |",
        figures.latencies.len(),
        ms(median),
        ms(worst),
        ms(figures.last_latency)
    );
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1_000.0
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1_024.0
}
