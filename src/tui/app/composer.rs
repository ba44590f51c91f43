//! The composer: a multi-line text area with per-thread drafts, recall of the last
//! message sent, and debounced draft saving.

use std::collections::BTreeMap;
use std::time::Instant;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::style::{Modifier, Style};
use ratatui_textarea::{CursorMove, Input, Key, TextArea, WrapMode};
use unicode_segmentation::UnicodeSegmentation;
use unicode_width::UnicodeWidthStr;

use super::super::action::{DRAFT_DEBOUNCE, Effect};
use super::super::keys::Command;
use super::App;

/// Most rows the composer grows to, borders included.
const MAX_HEIGHT: u16 = 10;

/// The message being written.
#[derive(Debug)]
pub struct Composer {
    pub textarea: TextArea<'static>,
    /// Key of the draft being edited: a thread id, or `new:<assistant id>`.
    pub thread_key: String,
    drafts: BTreeMap<String, String>,
    pub last_sent: Option<String>,
    /// Text sent but not yet confirmed by the server; restored if sending fails.
    pub pending: Option<String>,
    /// Text waiting for its new thread to be created.
    pub queued: Option<String>,
    changed_at: Option<Instant>,
    /// Files uploaded for the next message, shown as chips.
    pub attachments: Vec<AttachedFile>,
    /// Attachments of the message being sent; put back if the send fails.
    pub sending: Vec<AttachedFile>,
    /// The draft set aside while Ctrl+O asks for a path.
    stashed: Option<String>,
    /// The path being uploaded.
    pub uploading: Option<String>,
}

/// A file uploaded for a message.
// NOTE: the history pane shows a sent message's attachments by file id, because
// messages carry only the ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachedFile {
    pub file_id: String,
    pub filename: String,
}

/// The composer command that uploads a file: `/attach PATH`.
pub const ATTACH_COMMAND: &str = "/attach";

/// Converts a crossterm key into the text area's input type.
pub fn to_input(key: &KeyEvent) -> Input {
    let code = match key.code {
        KeyCode::Char(c) => Key::Char(c),
        KeyCode::Backspace => Key::Backspace,
        KeyCode::Enter => Key::Enter,
        KeyCode::Left => Key::Left,
        KeyCode::Right => Key::Right,
        KeyCode::Up => Key::Up,
        KeyCode::Down => Key::Down,
        KeyCode::Tab => Key::Tab,
        KeyCode::Delete => Key::Delete,
        KeyCode::Home => Key::Home,
        KeyCode::End => Key::End,
        KeyCode::PageUp => Key::PageUp,
        KeyCode::PageDown => Key::PageDown,
        KeyCode::Esc => Key::Esc,
        KeyCode::F(n) => Key::F(n),
        _ => Key::Null,
    };
    Input {
        key: code,
        ctrl: key.modifiers.contains(KeyModifiers::CONTROL),
        alt: key.modifiers.contains(KeyModifiers::ALT),
        shift: key.modifiers.contains(KeyModifiers::SHIFT),
    }
}

/// Returns `text` with CRLF and lone CR line breaks turned into LF. Terminals send a
/// pasted line break as CR.
pub(super) fn unix_newlines(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\r', "\n")
}

/// Returns the rows that `line` takes when the text area wraps it at `width` columns.
/// Like ratatui-textarea's word-or-glyph wrapping, a row takes words while they fit,
/// and a word wider than a row is split into rows of its own, so the text after it
/// starts a new row. Counting stops once it passes `limit` rows, so a long pasted line
/// costs little more than a short one.
fn wrapped_rows(line: &str, width: usize, limit: usize) -> usize {
    let width = width.max(1);
    let mut full_rows = 0;
    // Columns taken in the current row, and whether it contains any text yet.
    let mut used = 0;
    let mut started = false;
    for word in line.split_word_bounds() {
        if full_rows > limit {
            break;
        }
        let word_width = word.width();
        if used + word_width <= width {
            used += word_width;
            started = true;
            continue;
        }
        if started {
            full_rows += 1;
            used = 0;
            started = false;
        }
        if word_width <= width {
            used = word_width;
            started = true;
        } else {
            full_rows += word_width.div_ceil(width);
        }
    }
    if started || full_rows == 0 {
        full_rows += 1;
    }
    full_rows
}

/// Returns a text area containing `text`, with the cursor at its end, long lines
/// wrapped at word boundaries and the styles of a focused field.
pub(super) fn textarea_at_end(text: &str) -> TextArea<'static> {
    let lines: Vec<String> = if text.is_empty() {
        vec![String::new()]
    } else {
        text.split('\n').map(str::to_owned).collect()
    };
    let mut textarea = TextArea::new(lines);
    textarea.set_wrap_mode(WrapMode::WordOrGlyph);
    // The styles of a focused field: a reversed cursor and no cursor line.
    textarea.set_cursor_style(Style::new().add_modifier(Modifier::REVERSED));
    textarea.set_cursor_line_style(Style::new());
    textarea.move_cursor(CursorMove::Bottom);
    textarea.move_cursor(CursorMove::End);
    textarea
}

impl Composer {
    pub fn new(drafts: BTreeMap<String, String>) -> Self {
        Composer {
            textarea: textarea_at_end(""),
            thread_key: "new".to_owned(),
            drafts,
            last_sent: None,
            pending: None,
            queued: None,
            changed_at: None,
            attachments: Vec::new(),
            sending: Vec::new(),
            stashed: None,
            uploading: None,
        }
    }

    /// Ids of the attachments of the message being sent.
    pub fn sending_ids(&self) -> Vec<String> {
        self.sending.iter().map(|f| f.file_id.clone()).collect()
    }

    /// The path of a `/attach PATH` command in the composer, if it holds one.
    pub fn attach_path(&self) -> Option<String> {
        let text = self.text();
        let rest = text.trim().strip_prefix(ATTACH_COMMAND)?;
        if !rest.is_empty() && !rest.starts_with(char::is_whitespace) {
            return None;
        }
        Some(rest.trim().to_owned())
    }

    pub fn text(&self) -> String {
        self.textarea.lines().join("\n")
    }

    pub fn is_empty(&self) -> bool {
        self.textarea.lines().iter().all(String::is_empty)
    }

    /// Returns the rows the composer takes, borders included, when `width` columns
    /// fit inside its borders: one row for each line of the draft as it wraps there.
    pub fn height(&self, width: u16) -> u16 {
        let max_rows = usize::from(MAX_HEIGHT - 2);
        let mut rows = 0;
        for line in self.textarea.lines() {
            rows += wrapped_rows(line, usize::from(width), max_rows);
            if rows >= max_rows {
                break;
            }
        }
        let rows = u16::try_from(rows.clamp(1, max_rows)).unwrap_or(MAX_HEIGHT - 2);
        rows + 2
    }

    fn set_text(&mut self, text: &str) {
        self.textarea = textarea_at_end(text);
    }

    fn changed(&mut self, now: Instant) {
        self.changed_at = Some(now);
    }

    pub fn paste(&mut self, text: &str, now: Instant) {
        self.textarea.insert_str(unix_newlines(text));
        self.changed(now);
    }

    /// Shows the draft of another thread, keeping the current one in memory.
    pub fn switch_thread(&mut self, key: &str) {
        let text = self.text();
        if text.is_empty() {
            self.drafts.remove(&self.thread_key);
        } else {
            self.drafts.insert(self.thread_key.clone(), text);
        }
        self.thread_key = key.to_owned();
        let draft = self.drafts.get(key).cloned().unwrap_or_default();
        self.set_text(&draft);
        self.last_sent = None;
    }

    /// Moves the draft of a thread being created to the new thread's id.
    pub fn adopt_new_thread(&mut self, old_key: &str, thread_id: &str) -> Vec<Effect> {
        if self.thread_key == old_key {
            self.thread_key = thread_id.to_owned();
        }
        self.drafts.remove(old_key);
        vec![Effect::SaveDraft {
            thread_key: old_key.to_owned(),
            text: String::new(),
        }]
    }

    /// Clears the composer for a send, remembers the text for recall, and returns the
    /// removal of the thread's saved draft, so a restart does not offer the sent text
    /// again. A send that fails puts the text back and saves it again.
    pub fn take_for_send(&mut self) -> Effect {
        let text = self.text();
        self.sending = std::mem::take(&mut self.attachments);
        self.last_sent = Some(text);
        self.set_text("");
        self.changed_at = None;
        self.drafts.remove(&self.thread_key);
        Effect::SaveDraft {
            thread_key: self.thread_key.clone(),
            text: String::new(),
        }
    }

    /// Puts back text that failed to send, before anything typed since.
    pub fn restore(&mut self, content: &str, now: Instant) {
        let mut sent = std::mem::take(&mut self.sending);
        sent.append(&mut self.attachments);
        self.attachments = sent;
        let typed = self.text();
        let text = if typed.is_empty() {
            content.to_owned()
        } else {
            format!("{content}\n{typed}")
        };
        self.set_text(&text);
        self.changed(now);
    }

    /// Returns the save of a draft unchanged for [`DRAFT_DEBOUNCE`].
    pub fn due_draft(&mut self, now: Instant) -> Option<Effect> {
        let changed_at = self.changed_at?;
        if now.duration_since(changed_at) < DRAFT_DEBOUNCE {
            return None;
        }
        self.changed_at = None;
        Some(Effect::SaveDraft {
            thread_key: self.thread_key.clone(),
            text: self.text(),
        })
    }

    /// Returns the save of an unsaved draft now.
    pub fn flush_draft(&mut self) -> Vec<Effect> {
        if self.changed_at.take().is_none() {
            return Vec::new();
        }
        vec![Effect::SaveDraft {
            thread_key: self.thread_key.clone(),
            text: self.text(),
        }]
    }
}

impl App {
    pub(super) fn composer_command(&mut self, command: Command, key: KeyEvent) -> Vec<Effect> {
        match command {
            Command::Send if self.composer.attach_path().is_some() => self.start_upload(),
            Command::Send => self.send(),
            Command::AttachFile => {
                if self.composer.attach_path().is_none() {
                    let draft = self.composer.text();
                    self.composer.stashed = Some(draft);
                    self.composer.set_text(&format!("{ATTACH_COMMAND} "));
                }
                Vec::new()
            }
            Command::Newline => {
                self.composer.textarea.insert_newline();
                self.composer.changed(self.now);
                Vec::new()
            }
            Command::ExternalEditor => vec![Effect::EditExternally {
                text: self.composer.text(),
            }],
            Command::RecallLast if self.composer.is_empty() => {
                if let Some(last) = self.composer.last_sent.clone() {
                    self.composer.set_text(&last);
                    self.composer.changed(self.now);
                }
                Vec::new()
            }
            _ => self.composer_input(key),
        }
    }

    pub(super) fn composer_input(&mut self, key: KeyEvent) -> Vec<Effect> {
        if self.composer.textarea.input(to_input(&key)) {
            self.composer.changed(self.now);
        }
        Vec::new()
    }

    /// Uploads the file named by `/attach PATH`; the command leaves the composer.
    fn start_upload(&mut self) -> Vec<Effect> {
        let path = self.composer.attach_path().unwrap_or_default();
        if path.is_empty() {
            self.show_local_error(
                "no_path",
                "type a file path after /attach, such as /attach notes.md".to_owned(),
            );
            return Vec::new();
        }
        if self.composer.uploading.is_some() {
            self.show_local_error("busy", "a file is still uploading; wait for it".to_owned());
            return Vec::new();
        }
        let draft = self.composer.stashed.take().unwrap_or_default();
        self.composer.set_text(&draft);
        self.composer.changed(self.now);
        self.composer.uploading = Some(path.clone());
        vec![Effect::UploadFile { path }]
    }

    pub(super) fn on_file_uploaded(
        &mut self,
        path: &str,
        result: Result<crate::api::types::File, crate::api::ApiError>,
    ) -> Vec<Effect> {
        self.composer.uploading = None;
        match result {
            Ok(file) => self.composer.attachments.push(AttachedFile {
                file_id: file.id,
                filename: file.filename,
            }),
            Err(err) => self.show_error(&format!("attaching {path}"), &err),
        }
        Vec::new()
    }

    pub(super) fn on_draft_edited(&mut self, result: Result<String, String>) -> Vec<Effect> {
        match result {
            Ok(text) => {
                self.composer.set_text(text.trim_end_matches('\n'));
                self.composer.changed(self.now);
                self.focus = super::Focus::Composer;
            }
            Err(message) => self.show_local_error("editor_failed", message),
        }
        Vec::new()
    }
}

#[cfg(test)]
mod wrap_tests {
    use super::*;

    #[test]
    fn rows_of_short_and_empty_lines() {
        assert_eq!(wrapped_rows("", 10, 100), 1);
        assert_eq!(wrapped_rows("hello", 10, 100), 1);
        assert_eq!(wrapped_rows("0123456789", 10, 100), 1);
    }

    #[test]
    fn rows_break_at_words() {
        // "hello " fills 6 columns, and "world" no longer fits in the 4 left.
        assert_eq!(wrapped_rows("hello world", 10, 100), 2);
        assert_eq!(wrapped_rows("aa bb cc dd ee", 5, 100), 3);
    }

    #[test]
    fn rows_split_a_word_wider_than_the_row() {
        assert_eq!(wrapped_rows("abcdefghijkl", 5, 100), 3);
        // "hi " takes a row, the word two more, and " x" starts a row after it.
        assert_eq!(wrapped_rows("hi abcdefghij x", 5, 100), 4);
        assert_eq!(
            wrapped_rows(&format!("start {} tail", "a".repeat(104)), 82, 100),
            4
        );
    }

    #[test]
    fn rows_match_the_text_area() {
        let lines = [
            "",
            "hello world",
            "aa bb cc dd ee",
            "abcdefghijkl",
            "hi abcdefghij x",
            "a draft long enough to wrap over several rows of the composer",
            "你好你好你好 and 😀 emoji",
            "two  spaces and ,.;: punctuation",
        ];
        for line in lines {
            for width in [3_u16, 5, 7, 10, 16] {
                let mut textarea = TextArea::new(vec![line.to_owned()]);
                textarea.set_wrap_mode(WrapMode::WordOrGlyph);
                let area = ratatui::layout::Rect::new(0, 0, width, 40);
                let mut buffer = ratatui::buffer::Buffer::empty(area);
                ratatui::widgets::Widget::render(&textarea, area, &mut buffer);
                // The cursor is at the start, so the drawn rows begin at row 0.
                let drawn = (0..40)
                    .filter(|&y| (0..width).any(|x| buffer[(x, y)].symbol() != " "))
                    .max()
                    .map_or(1, |y| usize::from(y) + 1);
                assert_eq!(
                    wrapped_rows(line, usize::from(width), 100),
                    drawn,
                    "{line:?} at width {width}"
                );
            }
        }
    }

    #[test]
    fn rows_stop_at_the_limit() {
        let rows = wrapped_rows(&"word ".repeat(1_000), 10, 8);
        assert!((9..=10).contains(&rows), "{rows} rows");
        assert_eq!(wrapped_rows(&"x".repeat(1_000), 10, 8), 100);
    }

    #[test]
    fn rows_count_wide_characters() {
        assert_eq!(wrapped_rows("你好你好你好", 6, 100), 2);
    }

    #[test]
    fn height_counts_wrapped_rows() {
        let mut composer = Composer::new(BTreeMap::new());
        assert_eq!(composer.height(40), 3, "an empty draft takes one row");
        composer.set_text("one\ntwo");
        assert_eq!(composer.height(40), 4);
        composer.set_text(&"word ".repeat(20));
        assert_eq!(
            composer.height(40),
            5,
            "100 columns of words wrap to 3 rows"
        );
        assert_eq!(composer.height(200), 3);
        composer.set_text(&"word ".repeat(400));
        assert_eq!(composer.height(40), MAX_HEIGHT);
    }
}

#[cfg(test)]
mod attach_tests {
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

    use super::super::super::action::{Action, Effect};
    use super::super::Focus;
    use super::super::tests::open_app;
    use crate::api::ApiError;
    use crate::api::types::File;

    fn press(code: KeyCode, modifiers: KeyModifiers) -> Action {
        Action::Key(KeyEvent::new(code, modifiers))
    }

    fn file(id: &str, name: &str) -> File {
        File {
            id: id.into(),
            object: "file".into(),
            filename: name.into(),
            purpose: "assistants".into(),
            content_type: "text/markdown".into(),
            bytes: 10,
            passages: 1,
            created_at: String::new(),
        }
    }

    #[test]
    fn attach_command_uploads_and_the_next_send_carries_the_file() {
        let mut app = open_app();
        app.focus = Focus::Composer;
        app.update(Action::Paste("/attach notes/plan.md".into()));
        let effects = app.update(press(KeyCode::Enter, KeyModifiers::NONE));
        assert_eq!(
            effects,
            vec![Effect::UploadFile {
                path: "notes/plan.md".into()
            }]
        );
        assert!(app.composer.is_empty());
        assert_eq!(app.composer.uploading.as_deref(), Some("notes/plan.md"));

        app.update(Action::FileUploaded {
            path: "notes/plan.md".into(),
            result: Ok(file("file_1", "plan.md")),
        });
        assert_eq!(app.composer.uploading, None);
        assert_eq!(app.composer.attachments.len(), 1);
        assert_eq!(app.composer.attachments[0].filename, "plan.md");

        app.update(Action::Paste("summarise it".into()));
        let effects = app.update(press(KeyCode::Enter, KeyModifiers::NONE));
        let sent = effects.iter().find_map(|effect| match effect {
            Effect::Send {
                content,
                attachments,
                ..
            } => Some((content.clone(), attachments.clone())),
            _ => None,
        });
        assert_eq!(
            sent,
            Some(("summarise it".to_owned(), vec!["file_1".to_owned()]))
        );
        assert!(app.composer.attachments.is_empty());
    }

    #[test]
    fn ctrl_o_keeps_the_draft_and_a_failed_upload_shows_in_the_status_bar() {
        let mut app = open_app();
        app.focus = Focus::Composer;
        app.update(Action::Paste("keep this draft".into()));
        app.update(press(KeyCode::Char('o'), KeyModifiers::CONTROL));
        assert_eq!(app.composer.text(), "/attach ");
        app.update(Action::Paste("big.pdf".into()));
        let effects = app.update(press(KeyCode::Enter, KeyModifiers::NONE));
        assert_eq!(
            effects,
            vec![Effect::UploadFile {
                path: "big.pdf".into()
            }]
        );
        assert_eq!(app.composer.text(), "keep this draft");

        app.update(Action::FileUploaded {
            path: "big.pdf".into(),
            result: Err(ApiError::Api {
                status: 413,
                code: "file_too_large".into(),
                message: "the file is larger than the upload limit of 20971520 bytes".into(),
                param: Some("file".into()),
                kind: "invalid_request_error".into(),
                retry_after: None,
            }),
        });
        let shown = app
            .error
            .as_ref()
            .map(|e| e.message.clone())
            .unwrap_or_default();
        assert!(shown.contains("upload limit"), "{shown}");
        assert!(app.composer.attachments.is_empty());
        assert_eq!(app.composer.text(), "keep this draft");
    }
}
