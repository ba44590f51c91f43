//! Frame-time benchmark of the full-screen app on ratatui's `TestBackend` at 120x40:
//! one frame of threads of 100, 1,000 and 10,000 messages, and the cost of appending
//! the 5,000 deltas of one reply with a redraw after each, and with a redraw after
//! every 8 deltas (what 60 frames a second draw of a reply at 500 tokens a second).
//!
//! Run with `cargo bench --bench tui`. It prints markdown tables.
#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use assisters::api::types::{Message, MessageStatus, Role, StreamEvent};
use assisters::config::Config;
use assisters::tui::action::Action;
use assisters::tui::app::{App, StreamState};
use assisters::tui::panes::draw;
use assisters::tui::transcript::{ActiveReply, Entry};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

const WIDTH: u16 = 120;
const HEIGHT: u16 = 40;

fn message(index: usize) -> Message {
    let role = if index % 2 == 0 {
        Role::User
    } else {
        Role::Assistant
    };
    let content = if index % 10 == 5 {
        format!(
            "Reply {index} with **bold**, a list:\n\n- one\n- two\n\n```rust\nfn f() -> u32 {{ {index} }}\n```\n"
        )
    } else {
        format!(
            "Message {index}: the quick brown fox jumps over the lazy dog, twice over, to fill a line or two of text."
        )
    };
    Message {
        id: format!("msg_{index}"),
        thread_id: "thread_1".into(),
        role,
        content,
        created_at: "2024-05-20T12:00:00Z".into(),
        assistant_id: None,
        attachments: Vec::new(),
        tool_calls: Vec::new(),
        status: MessageStatus::Completed,
    }
}

fn app_with(messages: usize) -> App {
    let mut app = App::new(
        "local".into(),
        &Config::default(),
        Instant::now(),
        BTreeMap::new(),
    );
    app.update(Action::Resize(WIDTH, HEIGHT));
    app.transcript.thread_id = Some("thread_1".into());
    app.transcript.entries = (0..messages).map(|i| Entry::new(message(i))).collect();
    app
}

fn terminal() -> Terminal<TestBackend> {
    match Terminal::new(TestBackend::new(WIDTH, HEIGHT)) {
        Ok(terminal) => terminal,
        Err(err) => panic!("test backend: {err}"),
    }
}

fn frame(terminal: &mut Terminal<TestBackend>, app: &App) {
    if let Err(err) = terminal.draw(|f| draw(f, app)) {
        panic!("draw: {err}");
    }
}

/// Returns the first frame's time and the mean of the next `rounds` frames.
fn frame_times(messages: usize, rounds: u32) -> (Duration, Duration) {
    let app = app_with(messages);
    let mut terminal = terminal();
    let start = Instant::now();
    frame(&mut terminal, &app);
    let first = start.elapsed();
    let start = Instant::now();
    for _ in 0..rounds {
        frame(&mut terminal, &app);
    }
    (first, start.elapsed() / rounds)
}

/// Returns the total time of appending `tokens` deltas, drawing a frame after every
/// `per_frame` of them, and the worst time of one such step. A frame after each delta
/// is the worst case: the app itself draws at most 60 frames a second. Every 40 words
/// end a line: with `break_after` "\n\n" they end a paragraph, and with "\n" the
/// whole reply is one paragraph of soft-broken lines, which stays open to the end.
fn stream_cost(tokens: usize, per_frame: usize, break_after: &str) -> (Duration, Duration) {
    let mut app = app_with(1_000);
    app.stream = Some(StreamState {
        id: 1,
        thread_id: "thread_1".into(),
        assistant_id: "asst_1".into(),
        connecting: false,
    });
    app.transcript.active = Some(ActiveReply::new(Instant::now()));
    let mut terminal = terminal();
    let mut worst = Duration::ZERO;
    let start = Instant::now();
    for index in 0..tokens {
        let one = Instant::now();
        let text = if index % 40 == 39 {
            format!("word.{break_after}")
        } else {
            format!("w{index} ")
        };
        app.update(Action::StreamEvent {
            stream_id: 1,
            event: Ok(StreamEvent::Delta {
                id: "msg_x".into(),
                content: text,
            }),
        });
        if index % per_frame == per_frame - 1 || index + 1 == tokens {
            frame(&mut terminal, &app);
        }
        worst = worst.max(one.elapsed());
    }
    (start.elapsed(), worst)
}

fn main() {
    println!("| case | first frame | frame (mean) |");
    println!("|---|---|---|");
    for messages in [100, 1_000, 10_000] {
        let (first, mean) = frame_times(messages, 200);
        println!(
            "| {messages} messages, 120x40 | {:.2} ms | {:.3} ms |",
            ms(first),
            ms(mean)
        );
    }
    println!();
    println!("| case | total | per delta (mean) | per step (worst) |");
    println!("|---|---|---|---|");
    let cases = [
        (1, "\n\n", "redraw after each"),
        (8, "\n\n", "redraw after every 8"),
        (8, "\n", "one paragraph, redraw after every 8"),
    ];
    for (per_frame, break_after, label) in cases {
        let (total, worst) = stream_cost(5_000, per_frame, break_after);
        println!(
            "| 5,000 deltas, {label} | {:.3} s | {:.3} ms | {:.2} ms |",
            total.as_secs_f64(),
            ms(total) / 5_000.0,
            ms(worst)
        );
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1_000.0
}
