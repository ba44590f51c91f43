//! Screen snapshots of every pane, dialog and the help overlay, at 80x24 and 120x40,
//! drawn on ratatui's `TestBackend` from fixed data.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

use crate::api::ApiError;
use crate::api::types::*;

use super::super::action::Action;
use super::super::app::tests::{loaded_app, message, open_app};
use super::super::app::{App, Dialog, Focus};
use super::super::transcript::{ActiveReply, Entry};
use super::draw;

const SIZES: [(u16, u16); 2] = [(80, 24), (120, 40)];

fn screen(app: &mut App, width: u16, height: u16) -> String {
    app.update(Action::Resize(width, height));
    let mut terminal = match Terminal::new(TestBackend::new(width, height)) {
        Ok(terminal) => terminal,
        Err(err) => panic!("test backend: {err}"),
    };
    if let Err(err) = terminal.draw(|frame| draw(frame, app)) {
        panic!("draw: {err}");
    }
    terminal.backend().to_string()
}

fn snapshot_both(name: &str, mut build: impl FnMut() -> App) {
    for (width, height) in SIZES {
        let mut app = build();
        let text = screen(&mut app, width, height);
        insta::assert_snapshot!(format!("{name}_{width}x{height}"), text);
    }
}

fn key(app: &mut App, code: KeyCode) {
    app.update(Action::Key(KeyEvent::new(code, KeyModifiers::NONE)));
}

/// Builds an app whose thread has markdown, code, a table and a tool call.
fn rich_app() -> App {
    let mut app = open_app();
    let mut reply = message(
        "msg_5",
        Role::Assistant,
        "## Weather\n\nIt is *sunny* in **Oslo**:\n\n- high 21°\n- low 12°\n\n| day | sky |\n|---|---|\n| Mon | ☀ |\n\n```rust\nfn main() { println!(\"hi\"); }\n```\n\n> stay hydrated",
    );
    reply.tool_calls.push(ToolCallRecord {
        id: "call_1".into(),
        name: "weather".into(),
        arguments: serde_json::json!({"city": "Oslo"}),
        status: ToolCallStatus::Completed,
        output: Some("sunny\nwind 3 m/s".into()),
    });
    app.transcript.entries.push(Entry::new(message(
        "msg_4",
        Role::User,
        "Weather in Oslo? 你好 😀",
    )));
    app.transcript.entries.push(Entry::new(reply));
    app
}

#[test]
fn main_screen() {
    snapshot_both("main", rich_app);
}

#[test]
fn empty_start() {
    snapshot_both("empty", || {
        let mut app = super::super::app::tests::loaded_app();
        app.assistants.items.clear();
        app.threads = Default::default();
        app
    });
}

#[test]
fn streaming_reply() {
    snapshot_both("streaming", || {
        let mut app = open_app();
        let mut active = ActiveReply::new(app.now);
        active.content = "Counting: one, two, thr".into();
        active.tokens = 7;
        app.transcript.active = Some(active);
        app.stream = Some(super::super::app::StreamState {
            id: 1,
            thread_id: "thread_1".into(),
            assistant_id: "asst_1".into(),
            connecting: false,
        });
        app
    });
}

#[test]
fn history_focused_and_scrolled() {
    snapshot_both("history_scrolled", || {
        let mut app = rich_app();
        for i in 0..30 {
            app.transcript.entries.push(Entry::new(message(
                &format!("m{i}"),
                Role::Assistant,
                &format!("filler {i}"),
            )));
        }
        app.focus = Focus::Main;
        app.update(Action::Resize(80, 24));
        key(&mut app, KeyCode::Char('g'));
        app.transcript.unseen_below = true;
        app
    });
}

#[test]
fn tools_unfolded() {
    snapshot_both("tools_unfolded", || {
        let mut app = rich_app();
        app.focus = Focus::Main;
        key(&mut app, KeyCode::Char(']'));
        key(&mut app, KeyCode::Enter);
        app
    });
}

#[test]
fn instruction_editor() {
    snapshot_both("editor", || {
        let mut app = loaded_app();
        key(&mut app, KeyCode::Char('e'));
        app
    });
}

#[test]
fn long_draft_wraps_in_composer() {
    snapshot_both("composer_wrapped", || {
        let mut app = rich_app();
        app.focus = Focus::Composer;
        let words = "a draft long enough to wrap over several rows of the composer";
        app.update(Action::Paste(format!("{words}, {words}, {words}")));
        app
    });
}

#[test]
fn up_moves_between_wrapped_rows() {
    let mut app = rich_app();
    app.focus = Focus::Composer;
    let words = "a draft long enough to wrap over several rows of the composer";
    app.update(Action::Paste(format!("{words}, {words}, {words}")));
    screen(&mut app, 80, 24);
    let end = app.composer.textarea.cursor();
    key(&mut app, KeyCode::Up);
    let up = app.composer.textarea.cursor();
    assert_eq!(up.0, 0, "the draft is one line");
    assert!(up.1 < end.1, "Up left the cursor at {up:?}");
    assert!(up.1 > 0, "Up went to the line's start, not one row up");
}

#[test]
fn long_instructions_wrap_in_editor() {
    snapshot_both("editor_wrapped", || {
        let mut app = loaded_app();
        if let Some(assistant) = app.assistants.items.first_mut() {
            assistant.instructions = "Answer in short sentences. "
                .repeat(12)
                .trim_end()
                .to_owned();
        }
        key(&mut app, KeyCode::Char('e'));
        app
    });
}

#[test]
fn editor_with_field_error() {
    snapshot_both("editor_error", || {
        let mut app = loaded_app();
        key(&mut app, KeyCode::Char('e'));
        key(&mut app, KeyCode::Char('!'));
        app.update(Action::Key(KeyEvent::new(
            KeyCode::Char('s'),
            KeyModifiers::CONTROL,
        )));
        let err = ApiError::Api {
            status: 400,
            code: "invalid_value".into(),
            message: "instructions are too long".into(),
            param: Some("instructions".into()),
            kind: String::new(),
            retry_after: None,
        };
        app.update(Action::AssistantSaved(Err(err)));
        app
    });
}

#[test]
fn confirm_delete_dialog() {
    snapshot_both("dialog_delete", || {
        let mut app = loaded_app();
        key(&mut app, KeyCode::Char('d'));
        app
    });
}

#[test]
fn discard_changes_dialog() {
    snapshot_both("dialog_discard", || {
        let mut app = loaded_app();
        app.dialogs.push(Dialog::DiscardChanges);
        app
    });
}

#[test]
fn tool_approval_dialog() {
    snapshot_both("dialog_tool", || {
        let mut app = open_app();
        let call = PendingToolCall {
            id: "call_1".into(),
            name: "weather".into(),
            arguments: serde_json::json!({"city": "Oslo"}),
        };
        app.dialogs.push(Dialog::ToolApproval { call });
        app
    });
}

#[test]
fn help_overlay() {
    snapshot_both("help", || {
        let mut app = loaded_app();
        key(&mut app, KeyCode::Char('?'));
        app
    });
}

#[test]
fn error_in_status_bar() {
    snapshot_both("status_error", || {
        let mut app = open_app();
        app.show_error("x", &ApiError::Transport("connection refused".into()));
        app
    });
}

#[test]
fn escape_sequences_are_not_drawn() {
    let mut app = open_app();
    let hostile = "before\u{1b}]0;pwned\u{7}\u{1b}[2J\u{1b}[31mred\u{9b}1mafter\tTab";
    app.transcript
        .entries
        .push(Entry::new(message("msg_9", Role::Assistant, hostile)));
    app.assistants.items[0].name = "Evil\u{1b}[2JName".into();
    let text = screen(&mut app, 120, 40);
    assert!(!text.contains('\u{1b}'), "{text}");
    assert!(!text.contains('\u{9b}'), "{text}");
    assert!(text.contains("before␛␛␛red␛after"), "{text}");
    assert!(text.contains("Evil␛Name"), "{text}");
}

#[test]
fn rate_limit_refills_after_reset() {
    let mut app = open_app();
    let observed_at = app.now;
    app.rate_limit = Some(crate::api::client::RateLimit {
        limit: 100,
        remaining: 82,
        reset_secs: 30,
        observed_at,
    });
    let text = screen(&mut app, 120, 40);
    assert!(text.contains("82/100 req, resets in 30s"), "{text}");

    app.now = observed_at + std::time::Duration::from_secs(31);
    let text = screen(&mut app, 120, 40);
    assert!(text.contains("100/100 req"), "{text}");
    assert!(!text.contains("resets in"), "{text}");
}

#[test]
fn long_status_error_is_shown_whole() {
    let mut app = open_app();
    app.rate_limit = Some(crate::api::client::RateLimit {
        limit: 100,
        remaining: 94,
        reset_secs: 55,
        observed_at: app.now,
    });
    let message = "the server is shutting down; the partial reply was saved as incomplete; \
                   press Ctrl+R to retry";
    app.show_error(
        "stream",
        &ApiError::Api {
            status: 503,
            code: "server_shutting_down".into(),
            message: message.into(),
            param: None,
            kind: String::new(),
            retry_after: None,
        },
    );
    let text = screen(&mut app, 120, 40);
    assert!(text.contains("press Ctrl+R to retry"), "{text}");
    assert!(text.contains("94/100 req"), "{text}");
}

#[test]
fn editor_field_error_is_shown_whole() {
    let mut app = loaded_app();
    key(&mut app, KeyCode::Char('e'));
    // The form opens in the instructions; Tab wraps round to the temperature.
    for _ in 0..4 {
        key(&mut app, KeyCode::Tab);
    }
    key(&mut app, KeyCode::Char('x'));
    app.update(Action::Key(KeyEvent::new(
        KeyCode::Char('s'),
        KeyModifiers::CONTROL,
    )));
    let text = screen(&mut app, 120, 40);
    assert!(text.contains("enter a value such as 0.7"), "{text}");
}

#[test]
fn confirm_dialog_hints_match_dialog() {
    let mut app = loaded_app();
    app.dialogs.push(Dialog::DiscardChanges);
    let text = screen(&mut app, 120, 40);
    let hints = text.lines().last().unwrap_or_default();
    assert!(hints.contains("y discard"), "{hints}");
    assert!(hints.contains("n keep editing"), "{hints}");
    assert!(!hints.contains("always allow"), "{hints}");
}

#[test]
fn call_awaiting_approval_counts_as_waiting() {
    let mut app = open_app();
    let call = PendingToolCall {
        id: "call_1".into(),
        name: "weather".into(),
        arguments: serde_json::json!({}),
    };
    app.tool_run = Some(super::super::app::ToolRun {
        thread_id: "thread_1".into(),
        assistant_id: "asst_1".into(),
        queue: Vec::new(),
        outputs: Vec::new(),
        running: None,
    });
    app.dialogs.push(Dialog::ToolApproval { call });
    let text = screen(&mut app, 120, 40);
    assert!(text.contains("tools: 1 waiting"), "{text}");
}
