//! The instruction editor: a form over an assistant's fields that replaces the history
//! pane. It saves only the fields that changed and shows a server validation error
//! next to the field it names.

use std::collections::BTreeMap;

use crossterm::event::KeyEvent;
use ratatui_textarea::TextArea;

use crate::api::ApiError;
use crate::api::types::{Assistant, AssistantCreate, AssistantUpdate, Settings};

use super::super::action::Effect;
use super::super::keys::Command;
use super::super::text::sanitize;
use super::composer::{textarea_at_end, to_input, unix_newlines};
use super::{App, Dialog, Focus};

/// A field of the form, in Tab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EditorField {
    Name,
    Description,
    Model,
    Temperature,
    TopP,
    Instructions,
}

pub const FIELDS: [EditorField; 6] = [
    EditorField::Name,
    EditorField::Description,
    EditorField::Model,
    EditorField::Temperature,
    EditorField::TopP,
    EditorField::Instructions,
];

impl EditorField {
    pub fn label(self) -> &'static str {
        match self {
            EditorField::Name => "Name",
            EditorField::Description => "Description",
            EditorField::Model => "Model",
            EditorField::Temperature => "Temperature",
            EditorField::TopP => "Top p",
            EditorField::Instructions => "Instructions",
        }
    }

    /// Maps the `param` of an API error (`instructions`, `settings.temperature`) to a
    /// field.
    pub fn from_param(param: &str) -> Option<EditorField> {
        let last = param.rsplit(['.', '/']).next().unwrap_or(param);
        match last {
            "name" => Some(EditorField::Name),
            "description" => Some(EditorField::Description),
            "model" => Some(EditorField::Model),
            "temperature" => Some(EditorField::Temperature),
            "top_p" => Some(EditorField::TopP),
            "instructions" => Some(EditorField::Instructions),
            _ => None,
        }
    }
}

/// Whether the form creates an assistant or edits one.
#[derive(Debug, Clone, PartialEq)]
pub enum EditorMode {
    Create,
    Edit(Box<Assistant>),
}

/// The form's state.
#[derive(Debug)]
pub struct EditorForm {
    pub mode: EditorMode,
    pub fields: BTreeMap<EditorField, TextArea<'static>>,
    /// The values the form opened with, to find what changed.
    original: BTreeMap<EditorField, String>,
    pub focus: EditorField,
    pub errors: BTreeMap<EditorField, String>,
    pub saving: bool,
}

fn number_text(value: Option<f64>) -> String {
    value.map(|v| v.to_string()).unwrap_or_default()
}

impl EditorForm {
    fn with_values(mode: EditorMode, values: BTreeMap<EditorField, String>) -> Self {
        let fields = values
            .iter()
            .map(|(field, value)| (*field, textarea_at_end(value)))
            .collect();
        EditorForm {
            mode,
            fields,
            original: values,
            focus: EditorField::Instructions,
            errors: BTreeMap::new(),
            saving: false,
        }
    }

    /// Opens an empty form to create an assistant, with the cursor on the name.
    pub fn create() -> Self {
        let values = FIELDS.iter().map(|f| (*f, String::new())).collect();
        let mut form = EditorForm::with_values(EditorMode::Create, values);
        form.focus = EditorField::Name;
        form
    }

    /// Opens the form on `assistant`, with the cursor at the end of the instructions.
    /// Server strings are sanitised before they become editable text.
    pub fn edit(assistant: &Assistant) -> Self {
        let values = BTreeMap::from([
            (EditorField::Name, sanitize(&assistant.name).into_owned()),
            (
                EditorField::Description,
                sanitize(&assistant.description).into_owned(),
            ),
            (EditorField::Model, sanitize(&assistant.model).into_owned()),
            (
                EditorField::Temperature,
                number_text(assistant.settings.temperature),
            ),
            (EditorField::TopP, number_text(assistant.settings.top_p)),
            (
                EditorField::Instructions,
                sanitize(&assistant.instructions).into_owned(),
            ),
        ]);
        EditorForm::with_values(EditorMode::Edit(Box::new(assistant.clone())), values)
    }

    pub fn value(&self, field: EditorField) -> String {
        self.fields
            .get(&field)
            .map(|t| t.lines().join("\n"))
            .unwrap_or_default()
    }

    pub fn is_changed(&self) -> bool {
        FIELDS.iter().any(|f| self.field_changed(*f))
    }

    fn field_changed(&self, field: EditorField) -> bool {
        self.original.get(&field).map(String::as_str).unwrap_or("") != self.value(field)
    }

    pub fn input(&mut self, key: KeyEvent) {
        let multi_line = self.focus == EditorField::Instructions;
        let input = to_input(&key);
        if !multi_line && input.key == ratatui_textarea::Key::Enter {
            return;
        }
        if let Some(textarea) = self.fields.get_mut(&self.focus) {
            textarea.input(input);
        }
    }

    pub fn paste(&mut self, text: &str) {
        let text = if self.focus == EditorField::Instructions {
            unix_newlines(text)
        } else {
            text.replace(['\r', '\n'], " ")
        };
        if let Some(textarea) = self.fields.get_mut(&self.focus) {
            textarea.insert_str(text);
        }
    }

    fn number(&mut self, field: EditorField) -> Option<Option<f64>> {
        let text = self.value(field);
        let text = text.trim();
        if text.is_empty() {
            return Some(None);
        }
        match text.parse::<f64>() {
            Ok(value) if value.is_finite() => Some(Some(value)),
            _ => {
                self.errors.insert(
                    field,
                    format!("{text:?} is not a number; enter a value such as 0.7"),
                );
                None
            }
        }
    }

    /// Builds the request, or records field errors and returns `None`.
    pub fn request(&mut self) -> Option<Effect> {
        self.errors.clear();
        let temperature = self.number(EditorField::Temperature);
        let top_p = self.number(EditorField::TopP);
        let (temperature, top_p) = (temperature?, top_p?);
        let settings_changed =
            self.field_changed(EditorField::Temperature) || self.field_changed(EditorField::TopP);
        let settings = Settings { temperature, top_p };
        match &self.mode {
            EditorMode::Create => {
                let name = self.value(EditorField::Name);
                if name.trim().is_empty() {
                    self.errors
                        .insert(EditorField::Name, "a name is required".to_owned());
                    return None;
                }
                let optional = |text: String| if text.is_empty() { None } else { Some(text) };
                Some(Effect::CreateAssistant(AssistantCreate {
                    name,
                    description: optional(self.value(EditorField::Description)),
                    instructions: optional(self.value(EditorField::Instructions)),
                    model: optional(self.value(EditorField::Model)),
                    settings: settings_changed.then_some(settings),
                    ..AssistantCreate::default()
                }))
            }
            EditorMode::Edit(assistant) => {
                let changed = |field| self.field_changed(field).then(|| self.value(field));
                // NOTE: settings is one object in the API, so a change to either number
                // sends both current values.
                let body = AssistantUpdate {
                    name: changed(EditorField::Name),
                    description: changed(EditorField::Description),
                    instructions: changed(EditorField::Instructions),
                    model: changed(EditorField::Model),
                    settings: settings_changed.then_some(settings),
                    ..AssistantUpdate::default()
                };
                Some(Effect::UpdateAssistant {
                    id: assistant.id.clone(),
                    body,
                })
            }
        }
    }

    /// Records a server error next to its field, or returns false when it names none.
    pub fn show_error(&mut self, err: &ApiError) -> bool {
        let Some(field) = err.param().and_then(EditorField::from_param) else {
            return false;
        };
        self.errors
            .insert(field, sanitize(err.message()).into_owned());
        self.focus = field;
        true
    }
}

impl App {
    pub(super) fn editor_field(&mut self, step: isize) -> Vec<Effect> {
        if let Some(editor) = &mut self.editor {
            let index = FIELDS.iter().position(|f| *f == editor.focus).unwrap_or(0) as isize;
            editor.focus = FIELDS[(index + step).rem_euclid(FIELDS.len() as isize) as usize];
        }
        Vec::new()
    }

    pub(super) fn editor_command(&mut self, command: Command, key: KeyEvent) -> Vec<Effect> {
        let Some(editor) = &mut self.editor else {
            return Vec::new();
        };
        match command {
            Command::Save => {
                if editor.saving {
                    return Vec::new();
                }
                if let EditorMode::Edit(_) = editor.mode
                    && !editor.is_changed()
                {
                    self.editor = None;
                    return Vec::new();
                }
                let Some(effect) = editor.request() else {
                    return Vec::new();
                };
                editor.saving = true;
                vec![effect]
            }
            _ => {
                editor.input(key);
                Vec::new()
            }
        }
    }

    /// Esc in the editor: leave, asking first when there are unsaved changes.
    pub(super) fn leave_editor(&mut self) -> Vec<Effect> {
        if self.editor.as_ref().is_some_and(EditorForm::is_changed) {
            self.dialogs.push(Dialog::DiscardChanges);
        } else {
            self.editor = None;
            self.focus = Focus::Assistants;
        }
        Vec::new()
    }

    pub(super) fn on_assistant_saved(
        &mut self,
        result: Result<Assistant, ApiError>,
    ) -> Vec<Effect> {
        let Some(editor) = &mut self.editor else {
            return Vec::new();
        };
        editor.saving = false;
        match result {
            Ok(assistant) => {
                let created = matches!(editor.mode, EditorMode::Create);
                self.editor = None;
                self.focus = Focus::Assistants;
                self.error = None;
                match self
                    .assistants
                    .items
                    .iter_mut()
                    .find(|a| a.id == assistant.id)
                {
                    Some(existing) => *existing = assistant,
                    None => {
                        self.assistants.items.insert(0, assistant);
                        self.assistants.filter.clear();
                        self.assistants.selected = 0;
                    }
                }
                if created {
                    self.threads_of_new_assistant()
                } else {
                    Vec::new()
                }
            }
            Err(err) => {
                if !editor.show_error(&err) {
                    self.show_error("saving the assistant", &err);
                } else {
                    tracing::warn!(
                        code = err.code(),
                        "the server rejected a field of the assistant"
                    );
                }
                Vec::new()
            }
        }
    }

    fn threads_of_new_assistant(&mut self) -> Vec<Effect> {
        let id = self.assistants.selected().map(|a| a.id.clone());
        self.threads = super::ThreadsPane {
            assistant_id: id,
            source: None,
            ..Default::default()
        };
        Vec::new()
    }
}
