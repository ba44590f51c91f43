//! State tests: one action in, the state and effects out.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};

use crate::api::ApiError;
use crate::api::types::*;
use crate::config::{Approval, Config, ToolHandler};

use super::super::action::{Action, Effect, ThreadSource, ThreadSummary};
use super::super::transcript::Scroll;
use super::*;

pub(crate) fn assistant(id: &str, name: &str) -> Assistant {
    Assistant {
        id: id.into(),
        name: name.into(),
        description: "Answers questions".into(),
        instructions: "Be brief.".into(),
        model: "scripted-1".into(),
        tools: Vec::new(),
        settings: Settings {
            temperature: Some(0.7),
            top_p: None,
        },
        file_ids: Vec::new(),
        created_at: "2024-05-20T12:00:00Z".into(),
        updated_at: "2024-05-20T12:00:00Z".into(),
    }
}

pub(crate) fn message(id: &str, role: Role, content: &str) -> Message {
    Message {
        id: id.into(),
        thread_id: "thread_1".into(),
        role,
        content: content.into(),
        created_at: "2024-05-20T12:06:00Z".into(),
        assistant_id: None,
        attachments: Vec::new(),
        tool_calls: Vec::new(),
        status: MessageStatus::Completed,
    }
}

fn key(code: KeyCode) -> Action {
    Action::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

fn ctrl(c: char) -> Action {
    Action::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL))
}

fn typed(app: &mut App, text: &str) {
    for c in text.chars() {
        app.update(key(KeyCode::Char(c)));
    }
}

fn app_with(config: &Config) -> App {
    let mut app = App::new("local".into(), config, Instant::now(), BTreeMap::new());
    app.update(Action::Resize(120, 40));
    app
}

/// Builds an app with two assistants loaded and the first one's threads listed.
pub(crate) fn loaded_app() -> App {
    let mut app = app_with(&Config::default());
    app.start();
    app.update(Action::AssistantsLoaded {
        offset: 0,
        result: Ok(Page {
            data: vec![
                assistant("asst_1", "Help Bot"),
                assistant("asst_2", "Coder"),
            ],
            total: 2,
            has_more: false,
        }),
    });
    app.update(Action::ThreadsLoaded {
        assistant_id: "asst_1".into(),
        result: Ok((
            vec![ThreadSummary {
                id: "thread_1".into(),
                assistant_id: "asst_1".into(),
                title: "Opening hours?".into(),
                created_at: "2024-05-20T12:05:00Z".into(),
            }],
            ThreadSource::Server,
        )),
    });
    // As after the user moves from the message box to the list.
    app.focus = Focus::Assistants;
    app
}

/// Builds an app with thread_1 open and two messages in it.
pub(crate) fn open_app() -> App {
    let mut app = loaded_app();
    app.focus = Focus::Threads;
    let effects = app.update(key(KeyCode::Enter));
    assert!(
        effects.contains(&Effect::LoadMessages {
            thread_id: "thread_1".into()
        }),
        "{effects:?}"
    );
    app.update(Action::MessagesLoaded {
        thread_id: "thread_1".into(),
        result: Ok(vec![
            message("msg_1", Role::User, "What are your hours?"),
            message("msg_2", Role::Assistant, "9 to 5, **Monday** to Friday."),
        ]),
    });
    app
}

fn stream_id(effects: &[Effect]) -> u64 {
    effects
        .iter()
        .find_map(|e| match e {
            Effect::Send { stream_id, .. }
            | Effect::OpenStream { stream_id, .. }
            | Effect::SubmitToolOutputs { stream_id, .. } => Some(*stream_id),
            _ => None,
        })
        .unwrap_or(0)
}

fn send_hello(app: &mut App) -> u64 {
    app.focus = Focus::Composer;
    typed(app, "hello");
    let effects = app.update(key(KeyCode::Enter));
    let id = stream_id(&effects);
    assert_ne!(id, 0, "{effects:?}");
    app.update(Action::MessageSent {
        thread_id: "thread_1".into(),
        result: Ok(message("msg_3", Role::User, "hello")),
    });
    id
}

fn delta(app: &mut App, id: u64, text: &str) {
    app.update(Action::StreamEvent {
        stream_id: id,
        event: Ok(StreamEvent::Delta {
            id: "msg_4".into(),
            content: text.into(),
        }),
    });
}

#[test]
fn start_loads_first_page() {
    let mut app = app_with(&Config::default());
    assert_eq!(
        app.start(),
        vec![Effect::LoadAssistants {
            offset: 0,
            limit: PAGE_SIZE
        }]
    );
    assert!(app.assistants.loading);
}

#[test]
fn assistants_loaded_selects_first_and_loads_threads() {
    let mut app = app_with(&Config::default());
    let effects = app.update(Action::AssistantsLoaded {
        offset: 0,
        result: Ok(Page {
            data: vec![assistant("asst_1", "A")],
            total: 1,
            has_more: false,
        }),
    });
    assert_eq!(
        effects,
        vec![Effect::LoadThreads {
            assistant_id: "asst_1".into()
        }]
    );
    assert_eq!(
        app.assistants.selected().map(|a| a.id.as_str()),
        Some("asst_1")
    );
}

#[test]
fn scrolling_near_end_loads_next_page() {
    let mut app = app_with(&Config::default());
    let data: Vec<Assistant> = (0..5)
        .map(|i| assistant(&format!("asst_{i}"), &format!("A{i}")))
        .collect();
    app.update(Action::AssistantsLoaded {
        offset: 0,
        result: Ok(Page {
            data,
            total: 9,
            has_more: true,
        }),
    });
    app.focus = Focus::Assistants;
    let effects = app.update(key(KeyCode::Char('j')));
    assert_eq!(
        effects,
        vec![Effect::LoadThreads {
            assistant_id: "asst_1".into()
        }]
    );
    let effects = app.update(key(KeyCode::Char('j')));
    assert!(
        effects.contains(&Effect::LoadAssistants {
            offset: 5,
            limit: PAGE_SIZE
        }),
        "{effects:?}"
    );
    app.update(Action::AssistantsLoaded {
        offset: 5,
        result: Ok(Page {
            data: vec![assistant("asst_5", "A5")],
            total: 6,
            has_more: false,
        }),
    });
    assert_eq!(app.assistants.items.len(), 6);
    assert!(!app.assistants.has_more);
}

#[test]
fn filter_narrows_by_name() {
    let mut app = loaded_app();
    app.update(key(KeyCode::Char('/')));
    assert!(app.in_text_field());
    typed(&mut app, "cod");
    assert_eq!(app.assistants.visible().len(), 1);
    assert_eq!(
        app.assistants.selected().map(|a| a.name.as_str()),
        Some("Coder")
    );
    app.update(key(KeyCode::Esc));
    assert_eq!(app.assistants.visible().len(), 2);
    assert!(!app.assistants.filter_editing);
}

#[test]
fn delete_assistant_asks_first() {
    let mut app = loaded_app();
    app.update(key(KeyCode::Char('d')));
    assert!(
        matches!(app.dialogs.last(), Some(Dialog::DeleteAssistant { id, .. }) if id == "asst_1")
    );
    assert_eq!(app.update(key(KeyCode::Char('n'))), Vec::<Effect>::new());
    assert!(app.dialogs.is_empty());
    app.update(key(KeyCode::Char('d')));
    assert_eq!(
        app.update(key(KeyCode::Char('y'))),
        vec![Effect::DeleteAssistant {
            id: "asst_1".into()
        }]
    );
    app.update(Action::AssistantDeleted {
        id: "asst_1".into(),
        result: Ok(()),
    });
    assert_eq!(app.assistants.items.len(), 1);
}

#[test]
fn delete_thread_asks_then_forgets() {
    let mut app = loaded_app();
    app.focus = Focus::Threads;
    app.update(key(KeyCode::Char('d')));
    assert!(matches!(
        app.dialogs.last(),
        Some(Dialog::DeleteThread { .. })
    ));
    assert_eq!(
        app.update(key(KeyCode::Char('y'))),
        vec![Effect::DeleteThread {
            id: "thread_1".into()
        }]
    );
    let effects = app.update(Action::ThreadDeleted {
        id: "thread_1".into(),
        result: Ok(()),
    });
    assert_eq!(
        effects,
        vec![Effect::ForgetThread {
            id: "thread_1".into()
        }]
    );
    assert!(app.threads.items.is_empty());
}

#[test]
fn local_index_source_is_kept() {
    let mut app = loaded_app();
    app.update(key(KeyCode::Char('r')));
    app.threads.assistant_id = Some("asst_1".into());
    app.update(Action::ThreadsLoaded {
        assistant_id: "asst_1".into(),
        result: Ok((Vec::new(), ThreadSource::LocalIndex)),
    });
    assert_eq!(app.threads.source, Some(ThreadSource::LocalIndex));
}

/// Returns an untitled thread of `asst_1` created at `at`.
fn thread_of_asst_1(id: &str, at: &str) -> ThreadSummary {
    ThreadSummary {
        id: id.into(),
        assistant_id: "asst_1".into(),
        title: String::new(),
        created_at: at.into(),
    }
}

#[test]
fn threads_sorted_newest_first() {
    let mut app = loaded_app();
    app.update(Action::ThreadsLoaded {
        assistant_id: "asst_1".into(),
        result: Ok((
            vec![
                thread_of_asst_1("old", "2024-01-01T00:00:00Z"),
                thread_of_asst_1("new", "2024-06-01T00:00:00Z"),
            ],
            ThreadSource::Server,
        )),
    });
    assert_eq!(app.threads.items[0].id, "new");
}

#[test]
fn thread_reload_keeps_highlight() {
    let mut app = loaded_app();
    let load = |app: &mut App, threads: Vec<ThreadSummary>| {
        app.update(Action::ThreadsLoaded {
            assistant_id: "asst_1".into(),
            result: Ok((threads, ThreadSource::Server)),
        });
    };
    let old = thread_of_asst_1("old", "2024-01-01T00:00:00Z");
    let new = thread_of_asst_1("new", "2024-06-01T00:00:00Z");
    let newest = thread_of_asst_1("newest", "2024-09-01T00:00:00Z");
    load(&mut app, vec![old.clone(), new.clone()]);
    app.threads.selected = 1;
    load(&mut app, vec![old.clone(), new.clone(), newest.clone()]);
    assert_eq!(app.threads.items[app.threads.selected].id, "old");

    // With no highlighted thread, the open one is highlighted.
    app.threads.items.clear();
    app.transcript.thread_id = Some("new".into());
    load(&mut app, vec![old, new, newest]);
    assert_eq!(app.threads.items[app.threads.selected].id, "new");
}

#[test]
fn open_thread_shows_messages() {
    let app = open_app();
    assert_eq!(app.transcript.entries.len(), 2);
    assert_eq!(app.focus, Focus::Composer);
    assert_eq!(
        app.composer.last_sent.as_deref(),
        Some("What are your hours?")
    );
}

#[test]
fn send_streams_into_active_reply() {
    let mut app = open_app();
    let id = send_hello(&mut app);
    assert!(app.composer.is_empty());
    assert_eq!(app.transcript.entries.len(), 3);
    delta(&mut app, id, "Hi");
    delta(&mut app, id, " there");
    let active = app
        .transcript
        .active
        .as_ref()
        .map(|a| (a.content.clone(), a.tokens));
    assert_eq!(active, Some(("Hi there".into(), 2)));
    let mut final_message = message("msg_4", Role::Assistant, "Hi there");
    final_message.created_at = "2024-05-20T12:07:00Z".into();
    app.update(Action::StreamEvent {
        stream_id: id,
        event: Ok(StreamEvent::Final(final_message)),
    });
    app.update(Action::StreamEvent {
        stream_id: id,
        event: Ok(StreamEvent::Done),
    });
    assert!(app.transcript.active.is_none());
    assert!(app.stream.is_none());
    assert_eq!(app.transcript.entries.len(), 4);
    assert_eq!(app.transcript.entries[3].message.content, "Hi there");
}

#[test]
fn esc_stops_and_keeps_partial() {
    let mut app = open_app();
    let id = send_hello(&mut app);
    delta(&mut app, id, "partial");
    let effects = app.update(key(KeyCode::Esc));
    assert_eq!(effects, vec![Effect::CancelStream { stream_id: id }]);
    let last = app
        .transcript
        .entries
        .last()
        .map(|e| (e.message.content.clone(), e.note.clone(), e.message.status));
    assert_eq!(
        last,
        Some((
            "partial".into(),
            Some("stopped".into()),
            MessageStatus::Incomplete
        ))
    );
    delta(&mut app, id, " late");
    assert!(
        app.transcript.active.is_none(),
        "events of a cancelled stream are ignored"
    );
}

#[test]
fn ctrl_c_cancels_stream_then_quits() {
    let mut app = open_app();
    let id = send_hello(&mut app);
    let effects = app.update(ctrl('c'));
    assert_eq!(
        effects.first(),
        Some(&Effect::CancelStream { stream_id: id })
    );
    assert_eq!(effects.last(), Some(&Effect::Quit));
    assert!(app.quit);
}

#[test]
fn failed_send_returns_text_to_composer() {
    let mut app = open_app();
    typed(&mut app, "important");
    app.update(key(KeyCode::Enter));
    assert!(app.composer.is_empty());
    app.update(Action::MessageSent {
        thread_id: "thread_1".into(),
        result: Err(ApiError::Transport("connection refused".into())),
    });
    assert_eq!(app.composer.text(), "important");
    assert_eq!(
        app.error.as_ref().map(|e| e.code.as_str()),
        Some("transport_error")
    );
    assert!(app.stream.is_none());
}

#[test]
fn dropped_stream_keeps_text_and_offers_retry() {
    let mut app = open_app();
    let id = send_hello(&mut app);
    delta(&mut app, id, "half");
    app.update(Action::StreamEvent {
        stream_id: id,
        event: Err(ApiError::Transport("reset".into())),
    });
    let last = app
        .transcript
        .entries
        .last()
        .map(|e| (e.message.content.clone(), e.note.clone()));
    assert_eq!(last, Some(("half".into(), Some("connection lost".into()))));
    assert!(
        app.error
            .as_ref()
            .is_some_and(|e| e.message.contains("Ctrl+R"))
    );
    let effects = app.update(ctrl('r'));
    assert!(
        matches!(
            effects.as_slice(),
            [Effect::OpenStream {
                regenerate: true,
                ..
            }]
        ),
        "{effects:?}"
    );
    assert_eq!(
        app.transcript.entries.len(),
        3,
        "the partial reply is replaced"
    );
}

#[test]
fn retry_notice_counts_down() {
    let mut app = open_app();
    let start = app.now;
    app.update(Action::Retrying(crate::api::client::RetryNotice {
        attempt: 1,
        delay: Duration::from_secs(3),
        reason: crate::api::client::RetryReason::RateLimited,
    }));
    assert!(app.retry.is_some());
    app.update(Action::Tick {
        now: start + Duration::from_secs(4),
        rate_limit: None,
    });
    assert!(app.retry.is_none());
}

#[test]
fn empty_composer_up_recalls_last() {
    let mut app = open_app();
    app.update(key(KeyCode::Up));
    assert_eq!(app.composer.text(), "What are your hours?");
}

#[test]
fn newline_keys_insert_newlines() {
    let mut app = open_app();
    typed(&mut app, "a");
    app.update(Action::Key(KeyEvent::new(
        KeyCode::Enter,
        KeyModifiers::ALT,
    )));
    typed(&mut app, "b");
    app.update(ctrl('j'));
    typed(&mut app, "c");
    app.update(Action::Key(KeyEvent::new(
        KeyCode::Enter,
        KeyModifiers::SHIFT,
    )));
    typed(&mut app, "d");
    assert_eq!(app.composer.text(), "a\nb\nc\nd");
}

#[test]
fn paste_is_inserted_whole() {
    let mut app = open_app();
    let big = "line\n".repeat(10_000);
    app.update(Action::Paste(big.clone()));
    assert_eq!(app.composer.text(), big);
}

#[test]
fn q_quits_only_outside_text() {
    let mut app = open_app();
    typed(&mut app, "q");
    assert!(!app.quit);
    assert_eq!(app.composer.text(), "q");
    app.focus = Focus::Threads;
    app.update(key(KeyCode::Char('q')));
    assert!(app.quit);
}

#[test]
fn tab_cycles_focus() {
    let mut app = loaded_app();
    app.focus = Focus::Assistants;
    app.update(key(KeyCode::Tab));
    assert_eq!(app.focus, Focus::Threads);
    app.update(Action::Key(KeyEvent::new(
        KeyCode::BackTab,
        KeyModifiers::SHIFT,
    )));
    assert_eq!(app.focus, Focus::Assistants);
}

#[test]
fn click_focuses_pane() {
    let mut app = loaded_app();
    let composer = app.areas().composer;
    app.update(Action::Mouse(MouseEvent {
        kind: MouseEventKind::Down(MouseButton::Left),
        column: composer.x + 2,
        row: composer.y + 1,
        modifiers: KeyModifiers::NONE,
    }));
    assert_eq!(app.focus, Focus::Composer);
}

#[test]
fn help_toggles_outside_text() {
    let mut app = loaded_app();
    app.update(key(KeyCode::Char('?')));
    assert!(app.help);
    app.update(key(KeyCode::Esc));
    assert!(!app.help);
    app.update(key(KeyCode::F(1)));
    assert!(app.help);
}

#[test]
fn ctrl_n_creates_thread_then_sends_queued() {
    let mut app = loaded_app();
    let effects = app.update(ctrl('n'));
    assert_eq!(
        effects,
        vec![Effect::CreateThread {
            assistant_id: "asst_1".into()
        }]
    );
    assert_eq!(app.focus, Focus::Composer);
    app.update(Action::ThreadCreated {
        assistant_id: "asst_1".into(),
        result: Ok(Thread {
            id: "thread_9".into(),
            created_at: "2024-05-21T00:00:00Z".into(),
            metadata: BTreeMap::new(),
        }),
    });
    assert_eq!(app.transcript.thread_id.as_deref(), Some("thread_9"));
    assert_eq!(app.threads.items[0].id, "thread_9");
    typed(&mut app, "first words");
    let effects = app.update(key(KeyCode::Enter));
    assert!(
        effects
            .iter()
            .any(|e| matches!(e, Effect::IndexThread(s) if s.title == "first words")),
        "{effects:?}"
    );
    assert!(
        effects
            .iter()
            .any(|e| matches!(e, Effect::Send { content, .. } if content == "first words"))
    );
}

#[test]
fn history_scrolls_and_marks_new_text() {
    let mut app = open_app();
    for i in 0..60 {
        app.transcript
            .entries
            .push(super::super::transcript::Entry::new(message(
                &format!("m{i}"),
                Role::Assistant,
                "line",
            )));
    }
    app.focus = Focus::Main;
    app.update(key(KeyCode::Char('k')));
    assert!(matches!(app.transcript.scroll, Scroll::Pinned { .. }));
    app.update(key(KeyCode::Char('g')));
    assert_eq!(app.transcript.scroll, Scroll::Pinned { item: 0, line: 0 });
    let id = send_hello(&mut app);
    assert_eq!(
        app.transcript.scroll,
        Scroll::Follow,
        "sending jumps to the bottom"
    );
    app.focus = Focus::Main;
    app.update(key(KeyCode::PageUp));
    delta(&mut app, id, "more");
    assert!(app.transcript.unseen_below);
    app.update(key(KeyCode::Char('G')));
    assert_eq!(app.transcript.scroll, Scroll::Follow);
    assert!(!app.transcript.unseen_below);
}

fn with_tool_calls(app: &mut App, message_id: &str, call_ids: &[&str]) {
    let mut reply = message(message_id, Role::Assistant, "checking");
    for id in call_ids {
        reply.tool_calls.push(ToolCallRecord {
            id: (*id).into(),
            name: "weather".into(),
            arguments: serde_json::json!({}),
            status: ToolCallStatus::Completed,
            output: Some("line one\nline two".into()),
        });
    }
    app.transcript
        .entries
        .push(super::super::transcript::Entry::new(reply));
}

#[test]
fn brackets_select_tool_blocks_and_enter_folds_one() {
    let mut app = open_app();
    with_tool_calls(&mut app, "msg_a", &["call_1", "call_2"]);
    with_tool_calls(&mut app, "msg_b", &["call_3"]);
    app.focus = Focus::Main;
    let selected = |app: &App| app.transcript.folds.selected.clone();
    app.update(key(KeyCode::Char(']')));
    assert_eq!(
        selected(&app).as_deref(),
        Some("call_3"),
        "starts at the last"
    );
    app.update(key(KeyCode::Char('[')));
    app.update(key(KeyCode::Char('[')));
    assert_eq!(selected(&app).as_deref(), Some("call_1"));
    app.update(key(KeyCode::Char('[')));
    assert_eq!(
        selected(&app).as_deref(),
        Some("call_1"),
        "stops at the first"
    );
    app.update(key(KeyCode::Enter));
    let unfolded = |app: &App| {
        let mut ids: Vec<String> = app.transcript.folds.unfolded.iter().cloned().collect();
        ids.sort();
        ids
    };
    assert_eq!(unfolded(&app), vec!["call_1".to_owned()]);
    app.update(key(KeyCode::Char(']')));
    app.update(key(KeyCode::Char(' ')));
    assert_eq!(
        unfolded(&app),
        vec!["call_1".to_owned(), "call_2".to_owned()]
    );
    app.update(key(KeyCode::Enter));
    assert_eq!(
        unfolded(&app),
        vec!["call_1".to_owned()],
        "Enter folds it again"
    );
}

#[test]
fn enter_without_selection_folds_the_last_block() {
    let mut app = open_app();
    app.focus = Focus::Main;
    app.update(key(KeyCode::Enter));
    assert!(app.transcript.folds.unfolded.is_empty(), "no tool blocks");
    assert_eq!(app.transcript.folds.selected, None);
    with_tool_calls(&mut app, "msg_a", &["call_1", "call_2"]);
    app.update(key(KeyCode::Enter));
    assert_eq!(app.transcript.folds.selected.as_deref(), Some("call_2"));
    assert!(app.transcript.folds.unfolded.contains("call_2"));
    assert!(!app.transcript.folds.unfolded.contains("call_1"));
}

#[test]
fn selecting_a_tool_block_scrolls_it_into_view() {
    let mut app = open_app();
    with_tool_calls(&mut app, "msg_a", &["call_1"]);
    for i in 0..80 {
        app.transcript
            .entries
            .push(super::super::transcript::Entry::new(message(
                &format!("m{i}"),
                Role::Assistant,
                "filler",
            )));
    }
    with_tool_calls(&mut app, "msg_b", &["call_2"]);
    app.focus = Focus::Main;
    app.update(key(KeyCode::Char(']')));
    assert_eq!(
        app.transcript.scroll,
        Scroll::Follow,
        "the last block is in view"
    );
    app.update(key(KeyCode::Char('[')));
    assert_eq!(
        app.transcript.scroll,
        Scroll::Pinned { item: 2, line: 2 },
        "the first block's line is at the top"
    );
}

#[test]
fn editor_opens_at_end_of_instructions() {
    let mut app = loaded_app();
    app.update(key(KeyCode::Char('e')));
    let form = app.editor.as_ref().map(|f| {
        (f.focus, {
            let c = f.fields[&EditorField::Instructions].cursor();
            (c.0, c.1)
        })
    });
    assert_eq!(form, Some((EditorField::Instructions, (0, 9))));
    assert_eq!(app.focus, Focus::Main);
}

#[test]
fn editor_saves_only_changed_fields() {
    let mut app = loaded_app();
    app.update(key(KeyCode::Char('e')));
    typed(&mut app, " Very.");
    let effects = app.update(ctrl('s'));
    assert_eq!(effects, instructions_update("Be brief. Very."));
    let mut saved = assistant("asst_1", "Help Bot");
    saved.instructions = "Be brief. Very.".into();
    app.update(Action::AssistantSaved(Ok(saved)));
    assert!(app.editor.is_none());
    assert_eq!(app.assistants.items[0].instructions, "Be brief. Very.");
}

#[test]
fn editor_paste_saves_line_breaks_as_lf() {
    let mut app = loaded_app();
    app.update(key(KeyCode::Char('e')));
    app.update(Action::Paste("\rone\rtwo\r\nthree".into()));
    let effects = app.update(ctrl('s'));
    assert_eq!(effects, instructions_update("Be brief.\none\ntwo\nthree"));
}

/// Returns the effects of saving `instructions` as the only change to `asst_1`.
fn instructions_update(instructions: &str) -> Vec<Effect> {
    vec![Effect::UpdateAssistant {
        id: "asst_1".into(),
        body: AssistantUpdate {
            instructions: Some(instructions.into()),
            ..AssistantUpdate::default()
        },
    }]
}

#[test]
fn editor_tab_moves_fields_and_validates_numbers() {
    let mut app = loaded_app();
    app.update(key(KeyCode::Char('e')));
    app.update(key(KeyCode::Tab));
    assert_eq!(
        app.editor.as_ref().map(|f| f.focus),
        Some(EditorField::Name)
    );
    for _ in 0..3 {
        app.update(key(KeyCode::Tab));
    }
    assert_eq!(
        app.editor.as_ref().map(|f| f.focus),
        Some(EditorField::Temperature)
    );
    typed(&mut app, "x");
    assert_eq!(app.update(ctrl('s')), Vec::<Effect>::new());
    assert!(
        app.editor
            .as_ref()
            .is_some_and(|f| f.errors.contains_key(&EditorField::Temperature))
    );
}

#[test]
fn editor_shows_server_error_by_field() {
    let mut app = loaded_app();
    app.update(key(KeyCode::Char('e')));
    typed(&mut app, "!");
    app.update(ctrl('s'));
    let err = ApiError::Api {
        status: 400,
        code: "invalid_value".into(),
        message: "instructions are too long".into(),
        param: Some("instructions".into()),
        kind: "invalid_request_error".into(),
        retry_after: None,
    };
    app.update(Action::AssistantSaved(Err(err)));
    let form = app.editor.as_ref();
    assert_eq!(
        form.and_then(|f| f.errors.get(&EditorField::Instructions))
            .map(String::as_str),
        Some("instructions are too long")
    );
    assert!(app.error.is_none());
}

#[test]
fn editor_esc_asks_to_discard() {
    let mut app = loaded_app();
    app.update(key(KeyCode::Char('e')));
    app.update(key(KeyCode::Esc));
    assert!(app.editor.is_none(), "no changes: leaves at once");
    app.update(key(KeyCode::Char('e')));
    typed(&mut app, "x");
    app.update(key(KeyCode::Esc));
    assert_eq!(app.dialogs.last(), Some(&Dialog::DiscardChanges));
    app.update(key(KeyCode::Char('n')));
    assert!(app.editor.is_some());
    app.update(key(KeyCode::Esc));
    app.update(key(KeyCode::Char('y')));
    assert!(app.editor.is_none());
}

#[test]
fn new_assistant_form_creates() {
    let mut app = loaded_app();
    app.update(key(KeyCode::Char('n')));
    assert_eq!(
        app.editor.as_ref().map(|f| f.focus),
        Some(EditorField::Name)
    );
    assert_eq!(
        app.update(ctrl('s')),
        Vec::<Effect>::new(),
        "a name is required"
    );
    typed(&mut app, "Fresh");
    let effects = app.update(ctrl('s'));
    assert!(
        matches!(effects.as_slice(), [Effect::CreateAssistant(body)] if body.name == "Fresh" && body.instructions.is_none()),
        "{effects:?}"
    );
    app.update(Action::AssistantSaved(Ok(assistant("asst_9", "Fresh"))));
    assert_eq!(
        app.assistants.selected().map(|a| a.id.as_str()),
        Some("asst_9")
    );
}

fn tool_config(approval: Approval) -> Config {
    let handler = ToolHandler {
        command: Some(vec!["/bin/true".into()]),
        url: None,
        timeout_secs: 5,
        max_output_bytes: 1024,
        approval,
    };
    Config {
        tools: BTreeMap::from([("weather".to_owned(), handler)]),
        ..Config::default()
    }
}

fn requires_weather(app: &mut App, id: u64) -> Vec<Effect> {
    let call = PendingToolCall {
        id: "call_1".into(),
        name: "weather".into(),
        arguments: serde_json::json!({"city": "Oslo"}),
    };
    app.update(Action::StreamEvent {
        stream_id: id,
        event: Ok(StreamEvent::RequiresAction {
            message_id: "msg_4".into(),
            tool_calls: vec![call],
        }),
    });
    app.update(Action::StreamEvent {
        stream_id: id,
        event: Ok(StreamEvent::Done),
    })
}

fn tool_app(approval: Approval) -> (App, u64) {
    let mut app = app_with(&tool_config(approval));
    let loaded = loaded_app();
    app.assistants = loaded.assistants;
    app.threads = loaded.threads;
    app.transcript.thread_id = Some("thread_1".into());
    let id = send_hello(&mut app);
    (app, id)
}

#[test]
fn tool_call_asks_then_runs_once() {
    let (mut app, id) = tool_app(Approval::Ask);
    assert!(requires_weather(&mut app, id).is_empty());
    assert!(
        matches!(app.dialogs.last(), Some(Dialog::ToolApproval { call }) if call.name == "weather")
    );
    let effects = app.update(key(KeyCode::Char('y')));
    assert!(
        matches!(effects.as_slice(), [Effect::RunTool { call, .. }] if call.id == "call_1"),
        "{effects:?}"
    );
    let effects = app.update(Action::ToolFinished {
        call_id: "call_1".into(),
        output: "sunny".into(),
        failed: false,
    });
    let outputs = vec![ToolOutput {
        tool_call_id: "call_1".into(),
        output: "sunny".into(),
    }];
    assert!(
        matches!(effects.as_slice(), [Effect::SubmitToolOutputs { outputs: o, .. }] if *o == outputs),
        "{effects:?}"
    );
    let active = app.transcript.active.as_ref().map(|a| {
        a.tool_calls
            .iter()
            .map(|c| c.output.clone())
            .collect::<Vec<_>>()
    });
    assert_eq!(active, Some(vec![Some("sunny".to_owned())]));
}

#[test]
fn tool_call_declined_sends_notice() {
    let (mut app, id) = tool_app(Approval::Ask);
    requires_weather(&mut app, id);
    let effects = app.update(key(KeyCode::Char('n')));
    assert!(
        matches!(effects.as_slice(), [Effect::SubmitToolOutputs { outputs, .. }] if outputs[0].output == chat::DECLINED_OUTPUT),
        "{effects:?}"
    );
}

#[test]
fn tool_always_allow_skips_later_dialogs() {
    let (mut app, id) = tool_app(Approval::Ask);
    requires_weather(&mut app, id);
    app.update(key(KeyCode::Char('a')));
    assert!(app.always_allowed.contains("weather"));
    let effects = app.update(Action::ToolFinished {
        call_id: "call_1".into(),
        output: "sunny".into(),
        failed: false,
    });
    let next = stream_id(&effects);
    app.update(Action::ToolOutputsSubmitted(Ok(())));
    let effects = requires_weather(&mut app, next);
    assert!(
        matches!(effects.as_slice(), [Effect::RunTool { .. }]),
        "{effects:?}"
    );
    assert!(app.dialogs.is_empty());
}

#[test]
fn tool_approval_always_in_config_runs_at_once() {
    let (mut app, id) = tool_app(Approval::Always);
    let effects = requires_weather(&mut app, id);
    assert!(
        matches!(effects.as_slice(), [Effect::RunTool { .. }]),
        "{effects:?}"
    );
}

#[test]
fn tool_without_handler_reports_and_answers() {
    let (mut app, id) = tool_app(Approval::Ask);
    app.tools.clear();
    let effects = requires_weather(&mut app, id);
    assert!(
        matches!(effects.as_slice(), [Effect::SubmitToolOutputs { outputs, .. }] if outputs[0].output.contains("no handler is configured")),
        "{effects:?}"
    );
    assert_eq!(
        app.error.as_ref().map(|e| e.code.as_str()),
        Some("tool_not_configured")
    );
}

#[test]
fn drafts_save_after_debounce() {
    let mut app = open_app();
    let start = app.now;
    typed(&mut app, "draft");
    let effects = app.update(Action::Tick {
        now: start + Duration::from_millis(100),
        rate_limit: None,
    });
    assert!(effects.is_empty());
    let effects = app.update(Action::Tick {
        now: start + Duration::from_secs(1),
        rate_limit: None,
    });
    assert_eq!(
        effects,
        vec![Effect::SaveDraft {
            thread_key: "thread_1".into(),
            text: "draft".into()
        }]
    );
}

#[test]
fn send_removes_saved_draft() {
    let mut app = open_app();
    let start = app.now;
    typed(&mut app, "hello");
    let saved = app.update(Action::Tick {
        now: start + Duration::from_secs(1),
        rate_limit: None,
    });
    assert_eq!(saved.len(), 1, "{saved:?}");
    let effects = app.update(key(KeyCode::Enter));
    assert!(
        effects.contains(&Effect::SaveDraft {
            thread_key: "thread_1".into(),
            text: String::new()
        }),
        "{effects:?}"
    );
    assert!(
        effects.iter().any(|e| matches!(e, Effect::Send { .. })),
        "{effects:?}"
    );
}

#[test]
fn quit_flushes_unsaved_draft() {
    let mut app = open_app();
    typed(&mut app, "unsaved");
    app.focus = Focus::Threads;
    let effects = app.update(key(KeyCode::Char('q')));
    assert!(
        effects.contains(&Effect::SaveDraft {
            thread_key: "thread_1".into(),
            text: "unsaved".into()
        }),
        "{effects:?}"
    );
}

#[test]
fn restore_reopens_last_thread() {
    let mut app = app_with(&Config::default());
    app.restore = Some(("asst_2".into(), "thread_7".into()));
    let effects = app.update(Action::AssistantsLoaded {
        offset: 0,
        result: Ok(Page {
            data: vec![assistant("asst_1", "A"), assistant("asst_2", "B")],
            total: 2,
            has_more: false,
        }),
    });
    assert_eq!(
        effects,
        vec![Effect::LoadThreads {
            assistant_id: "asst_2".into()
        }]
    );
    let thread = ThreadSummary {
        id: "thread_7".into(),
        assistant_id: "asst_2".into(),
        title: "t".into(),
        created_at: String::new(),
    };
    let effects = app.update(Action::ThreadsLoaded {
        assistant_id: "asst_2".into(),
        result: Ok((vec![thread], ThreadSource::Server)),
    });
    assert!(
        effects.contains(&Effect::LoadMessages {
            thread_id: "thread_7".into()
        }),
        "{effects:?}"
    );
}

#[test]
fn key_override_from_config_applies() {
    let config = Config {
        keys: BTreeMap::from([("ctrl-t".to_owned(), "new_thread".to_owned())]),
        ..Config::default()
    };
    let mut app = app_with(&config);
    app.assistants = loaded_app().assistants;
    assert_eq!(
        app.update(ctrl('t')),
        vec![Effect::CreateThread {
            assistant_id: "asst_1".into()
        }]
    );
}

#[test]
fn esc_dismisses_error() {
    let mut app = loaded_app();
    app.show_error("x", &ApiError::Transport("down".into()));
    app.update(key(KeyCode::Esc));
    assert!(app.error.is_none());
}

#[test]
fn esc_dismisses_error_before_stopping_reply() {
    let mut app = open_app();
    let id = send_hello(&mut app);
    delta(&mut app, id, "partial");
    app.show_error("x", &ApiError::Transport("down".into()));

    let effects = app.update(key(KeyCode::Esc));
    assert!(effects.is_empty(), "{effects:?}");
    assert!(app.error.is_none());
    assert!(app.stream.is_some(), "the reply must keep running");

    let effects = app.update(key(KeyCode::Esc));
    assert_eq!(effects, vec![Effect::CancelStream { stream_id: id }]);
}

#[test]
fn esc_after_busy_error_stops_reply() {
    let mut app = open_app();
    let id = send_hello(&mut app);
    typed(&mut app, "another");
    app.update(key(KeyCode::Enter));
    assert_eq!(app.error.as_ref().map(|e| e.code.as_str()), Some("busy"));

    let effects = app.update(key(KeyCode::Esc));
    assert_eq!(effects, vec![Effect::CancelStream { stream_id: id }]);
    assert!(app.error.is_none());
}

#[test]
fn idle_ticks_redraw_rate_limit_countdown() {
    let mut app = open_app();
    let start = app.now;
    let limit = crate::api::client::RateLimit {
        limit: 100,
        remaining: 90,
        reset_secs: 30,
        observed_at: start,
    };
    app.update(Action::Tick {
        now: start,
        rate_limit: Some(limit),
    });
    app.dirty = false;
    // Ticks come every 250 ms; the countdown changes once a second.
    for quarter in 1..=4u64 {
        app.update(Action::Tick {
            now: start + Duration::from_millis(250 * quarter),
            rate_limit: Some(limit),
        });
    }
    assert!(
        app.dirty,
        "a second passed, so the countdown must be redrawn"
    );
}

/// Builds an app whose first page of five assistants says more pages follow.
fn first_of_two_pages() -> App {
    let mut app = app_with(&Config::default());
    let data: Vec<Assistant> = (0..5)
        .map(|i| assistant(&format!("asst_{i}"), &format!("A{i}")))
        .collect();
    app.update(Action::AssistantsLoaded {
        offset: 0,
        result: Ok(Page {
            data,
            total: 6,
            has_more: true,
        }),
    });
    app.focus = Focus::Assistants;
    app
}

#[test]
fn filter_loads_pages_not_yet_listed() {
    let mut app = first_of_two_pages();
    app.update(key(KeyCode::Char('/')));
    let effects = app.update(key(KeyCode::Char('z')));
    assert!(
        effects.contains(&Effect::LoadAssistants {
            offset: 5,
            limit: PAGE_SIZE
        }),
        "{effects:?}"
    );
    let effects = app.update(Action::AssistantsLoaded {
        offset: 5,
        result: Ok(Page {
            data: vec![assistant("asst_5", "Zed")],
            total: 6,
            has_more: false,
        }),
    });
    assert_eq!(
        app.assistants.selected().map(|a| a.name.as_str()),
        Some("Zed")
    );
    assert_eq!(
        effects,
        vec![Effect::LoadThreads {
            assistant_id: "asst_5".into()
        }]
    );
}

#[test]
fn restore_loads_pages_until_assistant_found() {
    let mut app = app_with(&Config::default());
    app.restore = Some(("asst_5".into(), "thread_7".into()));
    let data: Vec<Assistant> = (0..5)
        .map(|i| assistant(&format!("asst_{i}"), &format!("A{i}")))
        .collect();
    let effects = app.update(Action::AssistantsLoaded {
        offset: 0,
        result: Ok(Page {
            data,
            total: 6,
            has_more: true,
        }),
    });
    assert!(
        effects.contains(&Effect::LoadAssistants {
            offset: 5,
            limit: PAGE_SIZE
        }),
        "{effects:?}"
    );
}

#[test]
fn first_load_focuses_composer() {
    let mut app = app_with(&Config::default());
    app.start();
    app.update(Action::AssistantsLoaded {
        offset: 0,
        result: Ok(Page {
            data: vec![assistant("asst_1", "Assistant")],
            total: 1,
            has_more: false,
        }),
    });
    assert_eq!(
        app.focus,
        Focus::Composer,
        "the first screen is ready to type"
    );
    // Typing must reach the message, not run the list's single-letter commands.
    typed(&mut app, "Hi there");
    assert_eq!(app.composer.text(), "Hi there");
    assert!(app.editor.is_none());
}

#[test]
fn first_load_without_assistants_keeps_list_focus() {
    let mut app = app_with(&Config::default());
    app.start();
    app.update(Action::AssistantsLoaded {
        offset: 0,
        result: Ok(Page {
            data: Vec::new(),
            total: 0,
            has_more: false,
        }),
    });
    assert_eq!(
        app.focus,
        Focus::Assistants,
        "n creates the first assistant"
    );
}
