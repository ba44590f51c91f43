//! The assistants and threads panes: selection, paging, filtering, and their
//! commands and results.

use crossterm::event::{KeyCode, KeyEvent};

use crate::api::ApiError;
use crate::api::types::{Assistant, Page};

use super::super::action::{Effect, ThreadSource, ThreadSummary};
use super::super::keys::Command;
use super::{App, Dialog, EditorForm, Focus, PAGE_SIZE};

/// The paginated assistants list.
#[derive(Debug, Default)]
pub struct AssistantsPane {
    pub items: Vec<Assistant>,
    /// Index into the filtered list.
    pub selected: usize,
    pub has_more: bool,
    pub loading: bool,
    pub loaded_once: bool,
    /// Case-insensitive name filter.
    pub filter: String,
    pub filter_editing: bool,
}

impl AssistantsPane {
    /// Returns the assistants that match the filter.
    pub fn visible(&self) -> Vec<&Assistant> {
        let needle = self.filter.to_lowercase();
        self.items
            .iter()
            .filter(|a| needle.is_empty() || a.name.to_lowercase().contains(&needle))
            .collect()
    }

    pub fn selected(&self) -> Option<&Assistant> {
        self.visible().get(self.selected).copied()
    }

    pub fn clamp(&mut self) {
        let count = self.visible().len();
        self.selected = self.selected.min(count.saturating_sub(1));
    }
}

/// The selected assistant's threads, newest first.
#[derive(Debug, Default)]
pub struct ThreadsPane {
    pub assistant_id: Option<String>,
    pub items: Vec<ThreadSummary>,
    pub selected: usize,
    pub loading: bool,
    pub source: Option<ThreadSource>,
}

impl ThreadsPane {
    pub fn selected(&self) -> Option<&ThreadSummary> {
        self.items.get(self.selected)
    }

    pub fn move_by(&mut self, delta: isize) {
        let last = self.items.len().saturating_sub(1) as isize;
        self.selected = (self.selected as isize + delta).clamp(0, last.max(0)) as usize;
    }

    /// Puts a thread first (newest), or updates its title.
    pub fn upsert(&mut self, summary: ThreadSummary) {
        match self.items.iter_mut().find(|t| t.id == summary.id) {
            Some(existing) => {
                if existing.title.is_empty() {
                    existing.title = summary.title;
                }
            }
            None => self.items.insert(0, summary),
        }
    }
}

impl App {
    pub(super) fn assistants_command(&mut self, command: Command) -> Vec<Effect> {
        match command {
            Command::Up => self.move_assistant(-1),
            Command::Down => self.move_assistant(1),
            Command::PageUp => self.move_assistant(-10),
            Command::PageDown => self.move_assistant(10),
            Command::Open => {
                self.focus = Focus::Threads;
                Vec::new()
            }
            Command::New => {
                self.editor = Some(EditorForm::create());
                self.focus = Focus::Main;
                Vec::new()
            }
            Command::Edit => {
                if let Some(assistant) = self.assistants.selected() {
                    self.editor = Some(EditorForm::edit(assistant));
                    self.focus = Focus::Main;
                }
                Vec::new()
            }
            Command::Delete => {
                if let Some(assistant) = self.assistants.selected() {
                    let dialog = Dialog::DeleteAssistant {
                        id: assistant.id.clone(),
                        name: assistant.name.clone(),
                    };
                    self.dialogs.push(dialog);
                }
                Vec::new()
            }
            Command::Refresh => self.refresh_assistants(),
            Command::Filter => {
                self.assistants.filter_editing = true;
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    fn refresh_assistants(&mut self) -> Vec<Effect> {
        self.assistants.loading = true;
        self.assistants.has_more = false;
        vec![Effect::LoadAssistants {
            offset: 0,
            limit: PAGE_SIZE,
        }]
    }

    /// Moves the selection; loads the next page near the end, and the threads of a
    /// newly selected assistant.
    pub(super) fn move_assistant(&mut self, delta: isize) -> Vec<Effect> {
        let before = self.assistants.selected().map(|a| a.id.clone());
        let count = self.assistants.visible().len();
        let last = count.saturating_sub(1) as isize;
        self.assistants.selected =
            (self.assistants.selected as isize + delta).clamp(0, last.max(0)) as usize;
        let mut effects = Vec::new();
        if self.assistants_near_end() {
            effects.extend(self.next_assistants_page());
        }
        let after = self.assistants.selected().map(|a| a.id.clone());
        if after != before {
            effects.extend(self.load_threads_of_selected());
        }
        effects
    }

    /// True when the selection is within three rows of the end of the visible list.
    fn assistants_near_end(&self) -> bool {
        self.assistants.selected + 3 >= self.assistants.visible().len()
    }

    /// Returns the request for the next page of assistants, unless none is left or
    /// one is already on its way.
    fn next_assistants_page(&mut self) -> Option<Effect> {
        if !self.assistants.has_more || self.assistants.loading {
            return None;
        }
        self.assistants.loading = true;
        let offset = u32::try_from(self.assistants.items.len()).unwrap_or(u32::MAX);
        Some(Effect::LoadAssistants {
            offset,
            limit: PAGE_SIZE,
        })
    }

    fn load_threads_of_selected(&mut self) -> Vec<Effect> {
        let Some(id) = self.assistants.selected().map(|a| a.id.clone()) else {
            self.threads = ThreadsPane::default();
            return Vec::new();
        };
        self.threads = ThreadsPane {
            assistant_id: Some(id.clone()),
            loading: true,
            ..ThreadsPane::default()
        };
        vec![Effect::LoadThreads { assistant_id: id }]
    }

    pub(super) fn filter_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        let before = self.assistants.selected().map(|a| a.id.clone());
        match key.code {
            KeyCode::Esc => {
                self.assistants.filter.clear();
                self.assistants.filter_editing = false;
            }
            KeyCode::Enter => self.assistants.filter_editing = false,
            KeyCode::Backspace => {
                self.assistants.filter.pop();
            }
            KeyCode::Char(c) if !App::has_command_modifier(&key) => self.assistants.filter.push(c),
            _ => {}
        }
        self.assistants.clamp();
        let after = self.assistants.selected().map(|a| a.id.clone());
        let mut effects = if after != before {
            self.load_threads_of_selected()
        } else {
            Vec::new()
        };
        // The filter sees only the pages loaded so far, so it asks for more.
        if !self.assistants.filter.is_empty() && self.assistants_near_end() {
            effects.extend(self.next_assistants_page());
        }
        effects
    }

    pub(super) fn threads_command(&mut self, command: Command) -> Vec<Effect> {
        match command {
            Command::Up => self.threads.move_by(-1),
            Command::Down => self.threads.move_by(1),
            Command::PageUp => self.threads.move_by(-10),
            Command::PageDown => self.threads.move_by(10),
            Command::Open => return self.open_selected_thread(),
            Command::New => return self.new_thread(),
            Command::Refresh => return self.load_threads_of_selected(),
            Command::Delete => {
                if let Some(thread) = self.threads.selected() {
                    let dialog = Dialog::DeleteThread {
                        id: thread.id.clone(),
                        title: thread.title.clone(),
                    };
                    self.dialogs.push(dialog);
                }
            }
            _ => {}
        }
        Vec::new()
    }

    pub(super) fn on_assistants_loaded(
        &mut self,
        offset: u32,
        result: Result<Page<Assistant>, ApiError>,
    ) -> Vec<Effect> {
        self.assistants.loading = false;
        let page = match result {
            Ok(page) => page,
            Err(err) => {
                self.show_error("loading assistants", &err);
                return Vec::new();
            }
        };
        let before = self.assistants.selected().map(|a| a.id.clone());
        let first_load = !self.assistants.loaded_once;
        if offset == 0 {
            self.assistants.items = page.data;
        } else {
            self.assistants.items.extend(page.data);
        }
        self.assistants.has_more = page.has_more;
        self.assistants.loaded_once = true;
        self.assistants.clamp();
        // The first screen is ready to chat: typed text goes to the message box rather
        // than to the list's single-letter commands. With no assistant, the list
        // keeps the focus so that `n` creates one.
        if first_load && self.focus == Focus::Assistants && self.assistants.selected().is_some() {
            self.focus = Focus::Composer;
        }
        let mut effects = self.restore_selection();
        let restore_pending = effects.is_empty() && self.restore.is_some();
        let after = self.assistants.selected().map(|a| a.id.clone());
        if effects.is_empty() && (after != before || offset == 0) {
            effects.extend(self.load_threads_of_selected());
        }
        // Keep loading while the assistant to restore, or a filter match, may be on a
        // later page.
        let filtering = !self.assistants.filter.is_empty();
        if restore_pending || (filtering && self.assistants_near_end()) {
            effects.extend(self.next_assistants_page());
        }
        effects
    }

    /// Selects the assistant of the thread open at the last quit.
    fn restore_selection(&mut self) -> Vec<Effect> {
        let Some((assistant_id, _)) = &self.restore else {
            return Vec::new();
        };
        let position = self
            .assistants
            .visible()
            .iter()
            .position(|a| &a.id == assistant_id);
        match position {
            Some(index) => {
                self.assistants.selected = index;
                self.load_threads_of_selected()
            }
            None => {
                if !self.assistants.has_more {
                    self.restore = None;
                }
                Vec::new()
            }
        }
    }

    pub(super) fn on_threads_loaded(
        &mut self,
        assistant_id: String,
        result: Result<(Vec<ThreadSummary>, ThreadSource), ApiError>,
    ) -> Vec<Effect> {
        if self.threads.assistant_id.as_deref() != Some(assistant_id.as_str()) {
            return Vec::new();
        }
        self.threads.loading = false;
        match result {
            Ok((mut items, source)) => {
                items.sort_by(|a, b| b.created_at.cmp(&a.created_at));
                // A reload keeps the highlight on the thread it was on, or else on
                // the open thread, so it still matches the history pane.
                let keep = self
                    .threads
                    .items
                    .get(self.threads.selected)
                    .map(|thread| thread.id.clone())
                    .or_else(|| self.transcript.thread_id.clone());
                self.threads.selected = keep
                    .and_then(|id| items.iter().position(|thread| thread.id == id))
                    .unwrap_or(0);
                self.threads.items = items;
                self.threads.source = Some(source);
            }
            Err(err) => {
                self.show_error("loading threads", &err);
                return Vec::new();
            }
        }
        let Some((restore_assistant, thread_id)) = self.restore.clone() else {
            return Vec::new();
        };
        self.restore = None;
        match self.threads.items.iter().position(|t| t.id == thread_id) {
            Some(index) if restore_assistant == assistant_id => {
                self.threads.selected = index;
                self.open_selected_thread()
            }
            _ => Vec::new(),
        }
    }

    pub(super) fn on_deleted_assistant(
        &mut self,
        id: &str,
        result: Result<(), ApiError>,
    ) -> Vec<Effect> {
        if let Err(err) = result {
            self.show_error("deleting the assistant", &err);
            return Vec::new();
        }
        self.assistants.items.retain(|a| a.id != id);
        self.assistants.clamp();
        self.load_threads_of_selected()
    }

    pub(super) fn on_deleted_thread(
        &mut self,
        id: &str,
        result: Result<(), ApiError>,
    ) -> Vec<Effect> {
        if let Err(err) = result {
            self.show_error("deleting the thread", &err);
            return Vec::new();
        }
        self.threads.items.retain(|t| t.id != id);
        self.threads.move_by(0);
        if self.transcript.thread_id.as_deref() == Some(id) {
            self.transcript = Default::default();
        }
        vec![Effect::ForgetThread { id: id.to_owned() }]
    }
}
