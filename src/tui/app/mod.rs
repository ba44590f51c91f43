//! The app state and `update`, which applies one [`Action`] and returns the
//! [`Effect`]s the runtime must carry out. Nothing here does I/O or reads the clock:
//! time arrives with `Action::Tick`, results arrive as actions.

mod chat;
mod composer;
mod editor;
mod lists;
#[cfg(test)]
pub(crate) mod tests;

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use crossterm::event::{KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use ratatui::layout::{Position, Rect};

use crate::api::ApiError;
use crate::api::client::{RateLimit, RetryNotice};
use crate::api::types::PendingToolCall;
use crate::config::{Config, ToolHandler};
use crate::engine::gguf::ModelStatus;

pub use composer::Composer;
pub use editor::{EditorField, EditorForm, EditorMode, FIELDS};

/// Returns the editor fields in Tab order.
pub fn editor_fields() -> &'static [EditorField] {
    &FIELDS
}
pub use chat::first_line;
pub use lists::{AssistantsPane, ThreadsPane};

use super::action::{Action, Effect, ThreadSummary};
use super::keys::{Command, Context, KeyChord, Keymap};
use super::panes::layout::{Areas, areas};
use super::theme::Styles;
use super::transcript::Transcript;

/// Assistants fetched per page.
pub const PAGE_SIZE: u32 = 20;

/// Which pane has the keyboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    Assistants,
    Threads,
    /// The history, or the instruction editor while it is open.
    Main,
    Composer,
}

const FOCUS_ORDER: [Focus; 4] = [
    Focus::Assistants,
    Focus::Threads,
    Focus::Main,
    Focus::Composer,
];

/// A modal question.
#[derive(Debug, Clone, PartialEq)]
pub enum Dialog {
    DeleteAssistant { id: String, name: String },
    DeleteThread { id: String, title: String },
    DiscardChanges,
    ToolApproval { call: PendingToolCall },
}

/// Code of the error shown when a message is sent while a reply is still running.
pub(super) const BUSY: &str = "busy";

/// An error shown in the status bar until dismissed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShownError {
    pub code: String,
    pub message: String,
}

impl From<&ApiError> for ShownError {
    fn from(err: &ApiError) -> Self {
        ShownError {
            code: err.code().to_owned(),
            message: err.message().to_owned(),
        }
    }
}

/// A retry the client announced: shown as a countdown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryCountdown {
    pub notice: RetryNotice,
    pub until: Instant,
}

/// Tool calls of one `requires_action` event, handled one at a time.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolRun {
    pub thread_id: String,
    pub assistant_id: String,
    pub queue: Vec<PendingToolCall>,
    pub outputs: Vec<crate::api::types::ToolOutput>,
    /// The call whose handler is running.
    pub running: Option<String>,
}

/// The stream in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamState {
    pub id: u64,
    pub thread_id: String,
    pub assistant_id: String,
    /// True until the user message is stored and the stream is open.
    pub connecting: bool,
}

/// The whole state of the app.
pub struct App {
    pub server_label: String,
    pub styles: Styles,
    pub keys: Keymap,
    pub tools: BTreeMap<String, ToolHandler>,
    pub always_allowed: HashSet<String>,
    pub size: (u16, u16),
    pub now: Instant,
    pub focus: Focus,
    pub assistants: AssistantsPane,
    pub threads: ThreadsPane,
    pub transcript: Transcript,
    pub composer: Composer,
    pub editor: Option<EditorForm>,
    pub dialogs: Vec<Dialog>,
    pub help: bool,
    /// Rows the help overlay is scrolled down by.
    pub help_scroll: usize,
    pub error: Option<ShownError>,
    pub rate_limit: Option<RateLimit>,
    pub retry: Option<RetryCountdown>,
    pub stream: Option<StreamState>,
    pub tool_run: Option<ToolRun>,
    pub next_stream_id: u64,
    /// The thread to open once the assistants list shows its assistant.
    pub restore: Option<(String, String)>,
    /// The in-process model's state in local mode; `None` for a remote server.
    pub engine_status: Option<ModelStatus>,
    pub quit: bool,
    /// Something visible changed since the last frame.
    pub dirty: bool,
}

impl App {
    /// Builds the app from the config; `drafts` maps thread keys to saved drafts.
    pub fn new(
        server_label: String,
        config: &Config,
        now: Instant,
        drafts: BTreeMap<String, String>,
    ) -> App {
        let (keys, mut problems) = Keymap::with_overrides(&config.keys);
        let (styles, theme_problems) = Styles::from_theme(&config.theme);
        problems.extend(theme_problems);
        let error = problems.first().map(|message| ShownError {
            code: "invalid_config".to_owned(),
            message: message.clone(),
        });
        App {
            server_label,
            styles,
            keys,
            tools: config.tools.clone(),
            always_allowed: HashSet::new(),
            size: (80, 24),
            now,
            focus: Focus::Assistants,
            assistants: AssistantsPane::default(),
            threads: ThreadsPane::default(),
            transcript: Transcript::default(),
            composer: Composer::new(drafts),
            editor: None,
            dialogs: Vec::new(),
            help: false,
            help_scroll: 0,
            error,
            rate_limit: None,
            retry: None,
            stream: None,
            tool_run: None,
            next_stream_id: 1,
            restore: None,
            engine_status: None,
            quit: false,
            dirty: true,
        }
    }

    /// Returns the effects that start the app: the first page of assistants.
    pub fn start(&mut self) -> Vec<Effect> {
        self.assistants.loading = true;
        vec![Effect::LoadAssistants {
            offset: 0,
            limit: PAGE_SIZE,
        }]
    }

    /// Applies one action.
    pub fn update(&mut self, action: Action) -> Vec<Effect> {
        let is_tick = matches!(action, Action::Tick { .. });
        let effects = match action {
            Action::Key(key) => self.on_key(key),
            Action::Paste(text) => self.on_paste(&text),
            Action::Mouse(mouse) => self.on_mouse(mouse),
            Action::Resize(width, height) => {
                self.size = (width, height);
                Vec::new()
            }
            Action::Tick { now, rate_limit } => self.on_tick(now, rate_limit),
            Action::Retrying(notice) => {
                let until = self.now + notice.delay;
                self.retry = Some(RetryCountdown { notice, until });
                Vec::new()
            }
            Action::Terminate => self.quit_now(),
            other => self.on_result(other),
        };
        if !is_tick {
            self.dirty = true;
        }
        effects
    }

    fn on_tick(&mut self, now: Instant, rate_limit: Option<RateLimit>) -> Vec<Effect> {
        let countdown_before = self.rate_limit_reset_secs();
        let second_changed = now.duration_since(self.now) >= Duration::from_secs(1)
            || self.stream.is_some()
            || self.retry.is_some();
        let limit_changed = rate_limit != self.rate_limit;
        self.now = now;
        self.rate_limit = rate_limit;
        // Ticks come more often than once a second, so the countdown is compared
        // itself rather than the time since the previous tick.
        if limit_changed || second_changed || countdown_before != self.rate_limit_reset_secs() {
            self.dirty = true;
        }
        if self.retry.as_ref().is_some_and(|retry| retry.until <= now) {
            self.retry = None;
        }
        self.composer.due_draft(now).into_iter().collect()
    }

    /// Returns the whole seconds until the rate-limit window resets, as of `self.now`.
    pub fn rate_limit_reset_secs(&self) -> Option<u64> {
        let limit = self.rate_limit.as_ref()?;
        let elapsed = self.now.saturating_duration_since(limit.observed_at);
        Some(
            Duration::from_secs(limit.reset_secs)
                .saturating_sub(elapsed)
                .as_secs(),
        )
    }

    /// Records the in-process model's state; the status bar shows it.
    pub fn set_engine_status(&mut self, status: ModelStatus) {
        if self.engine_status.as_ref() != Some(&status) {
            self.engine_status = Some(status);
            self.dirty = true;
        }
    }

    /// Returns the layout of the current screen size.
    pub fn areas(&self) -> Areas {
        areas(
            Rect::new(0, 0, self.size.0, self.size.1),
            self.editor.is_some(),
            |width| self.composer.height(width),
        )
    }

    /// The binding context of the focused pane or the open dialog.
    pub fn context(&self) -> Context {
        if !self.dialogs.is_empty() {
            return Context::Dialog;
        }
        match self.focus {
            Focus::Assistants => Context::Assistants,
            Focus::Threads => Context::Threads,
            Focus::Main if self.editor.is_some() => Context::Editor,
            Focus::Main => Context::History,
            Focus::Composer => Context::Composer,
        }
    }

    /// True when typed characters go into a text field.
    pub fn in_text_field(&self) -> bool {
        self.dialogs.is_empty()
            && (self.focus == Focus::Composer
                || (self.focus == Focus::Main && self.editor.is_some())
                || (self.focus == Focus::Assistants && self.assistants.filter_editing))
    }

    /// Scrolls the help overlay with the history pane's movement keys. Returns false
    /// for any other key.
    fn scroll_help(&mut self, chord: KeyChord) -> bool {
        let size = ratatui::layout::Size::new(self.size.0, self.size.1);
        let max = super::panes::help::max_scroll(self, size);
        let page = usize::from(self.size.1).saturating_sub(3).max(1);
        let offset = self.help_scroll.min(max);
        self.help_scroll = match self.keys.lookup(Context::History, chord, false) {
            Some(Command::Up) => offset.saturating_sub(1),
            Some(Command::Down) => (offset + 1).min(max),
            Some(Command::PageUp) => offset.saturating_sub(page),
            Some(Command::PageDown) => (offset + page).min(max),
            Some(Command::Top) => 0,
            Some(Command::Bottom) => max,
            _ => return false,
        };
        true
    }

    fn on_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        let chord = KeyChord::from_event(&key);
        if self.help {
            let command = self.keys.lookup(Context::Global, chord, false);
            if matches!(
                command,
                Some(Command::Help | Command::Cancel | Command::Quit)
            ) {
                self.help = false;
                self.help_scroll = 0;
                return Vec::new();
            }
            if self.scroll_help(chord) {
                return Vec::new();
            }
            if command != Some(Command::Interrupt) {
                return Vec::new();
            }
        }
        if self.focus == Focus::Assistants
            && self.assistants.filter_editing
            && self.dialogs.is_empty()
        {
            return self.filter_key(key);
        }
        let context = self.context();
        let command = self.keys.lookup(context, chord, self.in_text_field());
        match command {
            Some(command) => self.on_command(command, key),
            None => self.on_unbound_key(key),
        }
    }

    fn on_unbound_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        if !self.dialogs.is_empty() {
            return Vec::new();
        }
        match self.focus {
            Focus::Composer => self.composer_input(key),
            Focus::Main if self.editor.is_some() => {
                if let Some(editor) = &mut self.editor {
                    editor.input(key);
                }
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    fn on_command(&mut self, command: Command, key: KeyEvent) -> Vec<Effect> {
        if !self.dialogs.is_empty() && !matches!(command, Command::Interrupt | Command::Cancel) {
            return self.dialog_command(command);
        }
        match command {
            Command::Quit => self.quit_now(),
            Command::Interrupt => self.quit_now(),
            Command::Help => {
                self.help = !self.help;
                self.help_scroll = 0;
                Vec::new()
            }
            Command::FocusNext if self.context() == Context::Editor => self.editor_field(1),
            Command::FocusPrev if self.context() == Context::Editor => self.editor_field(-1),
            Command::FocusNext => self.cycle_focus(1),
            Command::FocusPrev => self.cycle_focus(-1),
            Command::NewThread => self.new_thread(),
            Command::Cancel => self.cancel(),
            Command::Regenerate => self.regenerate(),
            _ => self.pane_command(command, key),
        }
    }

    fn pane_command(&mut self, command: Command, key: KeyEvent) -> Vec<Effect> {
        match self.context() {
            Context::Assistants => self.assistants_command(command),
            Context::Threads => self.threads_command(command),
            Context::History => self.history_command(command),
            Context::Composer => self.composer_command(command, key),
            Context::Editor => self.editor_command(command, key),
            Context::Global | Context::Dialog => Vec::new(),
        }
    }

    fn cycle_focus(&mut self, step: isize) -> Vec<Effect> {
        let index = FOCUS_ORDER
            .iter()
            .position(|f| *f == self.focus)
            .unwrap_or(0) as isize;
        let next = (index + step).rem_euclid(FOCUS_ORDER.len() as isize) as usize;
        self.focus = FOCUS_ORDER[next];
        Vec::new()
    }

    /// Esc: dismiss an error shown while a reply runs, else cancel the stream, else
    /// close the top dialog or the editor, else dismiss the error. The error's hint
    /// offers Esc to dismiss it, so that press must not stop the reply as well. The
    /// exception is the error that asks the user to press Esc to stop the reply.
    fn cancel(&mut self) -> Vec<Effect> {
        let streaming = self.stream.is_some() || self.tool_run.is_some();
        if streaming && self.error.as_ref().is_some_and(|e| e.code != BUSY) {
            self.error = None;
            return Vec::new();
        }
        if let Some(effects) = self.stop_stream() {
            if self.error.as_ref().is_some_and(|e| e.code == BUSY) {
                self.error = None;
            }
            return effects;
        }
        if let Some(dialog) = self.dialogs.pop() {
            return self.dialog_closed(dialog);
        }
        if self.focus == Focus::Main && self.editor.is_some() {
            return self.leave_editor();
        }
        self.error = None;
        self.retry = None;
        Vec::new()
    }

    fn quit_now(&mut self) -> Vec<Effect> {
        let mut effects = self.stop_stream().unwrap_or_default();
        effects.extend(self.composer.flush_draft());
        self.quit = true;
        effects.push(Effect::Quit);
        effects
    }

    /// Shows an error in the status bar and logs it.
    pub fn show_error(&mut self, context: &str, err: &ApiError) {
        tracing::warn!(
            code = err.code(),
            message = err.message(),
            "{context} failed"
        );
        self.error = Some(ShownError::from(err));
    }

    fn show_local_error(&mut self, code: &str, message: String) {
        tracing::warn!(code, %message, "local error");
        self.error = Some(ShownError {
            code: code.to_owned(),
            message,
        });
    }

    fn on_mouse(&mut self, mouse: MouseEvent) -> Vec<Effect> {
        let areas = self.areas();
        let position = Position::new(mouse.column, mouse.row);
        match mouse.kind {
            MouseEventKind::Down(MouseButton::Left) if self.dialogs.is_empty() && !self.help => {
                let targets = [
                    (areas.assistants, Focus::Assistants),
                    (areas.threads, Focus::Threads),
                    (areas.main, Focus::Main),
                    (areas.composer, Focus::Composer),
                ];
                if let Some((_, focus)) = targets.iter().find(|(rect, _)| rect.contains(position)) {
                    self.focus = *focus;
                }
                Vec::new()
            }
            MouseEventKind::ScrollUp | MouseEventKind::ScrollDown => {
                let delta = if mouse.kind == MouseEventKind::ScrollUp {
                    -3
                } else {
                    3
                };
                if areas.main.contains(position) && self.editor.is_none() {
                    self.scroll_history(delta);
                } else if areas.assistants.contains(position) {
                    return self.move_assistant(delta.signum());
                } else if areas.threads.contains(position) {
                    self.threads.move_by(delta.signum());
                }
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    fn on_paste(&mut self, text: &str) -> Vec<Effect> {
        match self.focus {
            Focus::Main if self.editor.is_some() => {
                if let Some(editor) = &mut self.editor {
                    editor.paste(text);
                }
                Vec::new()
            }
            Focus::Assistants if self.assistants.filter_editing => {
                self.assistants
                    .filter
                    .push_str(&text.replace(['\n', '\r'], " "));
                self.assistants.clamp();
                Vec::new()
            }
            _ => {
                self.focus = Focus::Composer;
                self.composer.paste(text, self.now);
                Vec::new()
            }
        }
    }

    /// Returns the thread key of drafts: the open thread, or `new:<assistant>`.
    pub fn draft_key(&self) -> String {
        match (&self.transcript.thread_id, self.assistants.selected()) {
            (Some(thread), _) => thread.clone(),
            (None, Some(assistant)) => format!("new:{}", assistant.id),
            (None, None) => "new".to_owned(),
        }
    }

    /// Returns summaries the threads pane can add for a thread created here.
    fn summary(
        &self,
        thread_id: &str,
        assistant_id: &str,
        title: &str,
        created_at: &str,
    ) -> ThreadSummary {
        ThreadSummary {
            id: thread_id.to_owned(),
            assistant_id: assistant_id.to_owned(),
            title: title.to_owned(),
            created_at: created_at.to_owned(),
        }
    }

    /// True when Ctrl or Alt is held.
    fn has_command_modifier(key: &KeyEvent) -> bool {
        key.modifiers
            .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT)
    }
}
