//! Key bindings as data: one table maps keys to commands per context, and the same
//! table renders the status-bar hints and the help overlay, so they never disagree.
//!
//! `[keys]` in the config file rebinds a command: `"ctrl-n" = "new_thread"` replaces
//! the default keys of `new_thread` in every context where it is bound.

use std::collections::BTreeMap;
use std::fmt;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// Something a key can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Command {
    Quit,
    Interrupt,
    Help,
    FocusNext,
    FocusPrev,
    NewThread,
    Cancel,
    Regenerate,
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    Open,
    New,
    Edit,
    Delete,
    Refresh,
    Filter,
    Toggle,
    NextTool,
    PrevTool,
    Send,
    Newline,
    ExternalEditor,
    RecallLast,
    AttachFile,
    Save,
    Yes,
    No,
    Always,
}

/// Names used in the config file, one per command.
const NAMES: [(Command, &str); 32] = [
    (Command::Quit, "quit"),
    (Command::Interrupt, "interrupt"),
    (Command::Help, "help"),
    (Command::FocusNext, "focus_next"),
    (Command::FocusPrev, "focus_prev"),
    (Command::NewThread, "new_thread"),
    (Command::Cancel, "cancel"),
    (Command::Regenerate, "regenerate"),
    (Command::Up, "up"),
    (Command::Down, "down"),
    (Command::PageUp, "page_up"),
    (Command::PageDown, "page_down"),
    (Command::Top, "top"),
    (Command::Bottom, "bottom"),
    (Command::Open, "open"),
    (Command::New, "new"),
    (Command::Edit, "edit"),
    (Command::Delete, "delete"),
    (Command::Refresh, "refresh"),
    (Command::Filter, "filter"),
    (Command::Toggle, "toggle"),
    (Command::NextTool, "next_tool"),
    (Command::PrevTool, "prev_tool"),
    (Command::Send, "send"),
    (Command::Newline, "newline"),
    (Command::ExternalEditor, "external_editor"),
    (Command::RecallLast, "recall_last"),
    (Command::AttachFile, "attach_file"),
    (Command::Save, "save"),
    (Command::Yes, "yes"),
    (Command::No, "no"),
    (Command::Always, "always"),
];

impl Command {
    /// Returns the config-file name of the command.
    pub fn name(self) -> &'static str {
        NAMES
            .iter()
            .find(|(command, _)| *command == self)
            .map(|(_, name)| *name)
            .unwrap_or("unknown")
    }

    /// Parses a config-file name.
    pub fn from_name(name: &str) -> Option<Command> {
        NAMES
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(command, _)| *command)
    }
}

/// The pane or dialog a binding belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Context {
    Global,
    Assistants,
    Threads,
    History,
    Composer,
    Editor,
    Dialog,
}

impl Context {
    fn title(self) -> &'static str {
        match self {
            Context::Global => "Everywhere",
            Context::Assistants => "Assistants",
            Context::Threads => "Threads",
            Context::History => "History",
            Context::Composer => "Composer",
            Context::Editor => "Instruction editor",
            Context::Dialog => "Dialogs",
        }
    }
}

/// A key with its modifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyChord {
    pub code: KeyCode,
    pub modifiers: KeyModifiers,
}

impl KeyChord {
    pub const fn new(code: KeyCode, modifiers: KeyModifiers) -> Self {
        KeyChord { code, modifiers }
    }

    const fn plain(code: KeyCode) -> Self {
        KeyChord::new(code, KeyModifiers::NONE)
    }

    const fn ctrl(c: char) -> Self {
        KeyChord::new(KeyCode::Char(c), KeyModifiers::CONTROL)
    }

    /// Builds the chord of a key event. Shift is dropped from characters, which
    /// already carry it (`?` rather than shift-/).
    pub fn from_event(event: &KeyEvent) -> Self {
        let mut modifiers =
            event.modifiers & (KeyModifiers::CONTROL | KeyModifiers::ALT | KeyModifiers::SHIFT);
        let code = match event.code {
            KeyCode::Char(c) if modifiers.contains(KeyModifiers::CONTROL) => {
                KeyCode::Char(c.to_ascii_lowercase())
            }
            KeyCode::BackTab => {
                modifiers |= KeyModifiers::SHIFT;
                KeyCode::Tab
            }
            code => code,
        };
        if matches!(code, KeyCode::Char(_)) {
            modifiers.remove(KeyModifiers::SHIFT);
        }
        KeyChord { code, modifiers }
    }

    /// True when the chord cannot be typed as text, so it may act inside a text field.
    pub fn works_in_text(self) -> bool {
        let printable = matches!(self.code, KeyCode::Char(_));
        !printable
            || self
                .modifiers
                .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT)
    }

    /// Parses `ctrl-n`, `alt-enter`, `shift-tab`, `f1`, `?`, `space`, `pagedown`.
    pub fn parse(text: &str) -> Option<KeyChord> {
        let lower = text.trim().to_ascii_lowercase();
        let mut modifiers = KeyModifiers::NONE;
        let mut rest = lower.as_str();
        loop {
            if let Some(tail) = rest.strip_prefix("ctrl-") {
                modifiers |= KeyModifiers::CONTROL;
                rest = tail;
            } else if let Some(tail) = rest.strip_prefix("alt-") {
                modifiers |= KeyModifiers::ALT;
                rest = tail;
            } else if let Some(tail) = rest.strip_prefix("shift-") {
                modifiers |= KeyModifiers::SHIFT;
                rest = tail;
            } else {
                break;
            }
        }
        let code = match rest {
            "enter" | "return" => KeyCode::Enter,
            "esc" | "escape" => KeyCode::Esc,
            "tab" => KeyCode::Tab,
            "backspace" => KeyCode::Backspace,
            "space" => KeyCode::Char(' '),
            "up" => KeyCode::Up,
            "down" => KeyCode::Down,
            "left" => KeyCode::Left,
            "right" => KeyCode::Right,
            "home" => KeyCode::Home,
            "end" => KeyCode::End,
            "pageup" => KeyCode::PageUp,
            "pagedown" => KeyCode::PageDown,
            "delete" | "del" => KeyCode::Delete,
            f if f.len() > 1 && f.starts_with('f') => KeyCode::F(f[1..].parse().ok()?),
            single => {
                // Keep the case of the original text: `G` and `g` are different keys.
                let trimmed = text.trim();
                let original = trimmed.get(trimmed.len() - single.len()..)?;
                let mut chars = original.chars();
                let c = chars.next()?;
                if chars.next().is_some() {
                    return None;
                }
                KeyCode::Char(c)
            }
        };
        Some(KeyChord::new(code, modifiers))
    }
}

impl fmt::Display for KeyChord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.modifiers.contains(KeyModifiers::CONTROL) {
            f.write_str("Ctrl+")?;
        }
        if self.modifiers.contains(KeyModifiers::ALT) {
            f.write_str("Alt+")?;
        }
        if self.modifiers.contains(KeyModifiers::SHIFT) {
            f.write_str("Shift+")?;
        }
        match self.code {
            KeyCode::Char(' ') => f.write_str("Space"),
            KeyCode::Char(c) if self.modifiers.contains(KeyModifiers::CONTROL) => {
                write!(f, "{}", c.to_ascii_uppercase())
            }
            KeyCode::Char(c) => write!(f, "{c}"),
            KeyCode::F(n) => write!(f, "F{n}"),
            KeyCode::Enter => f.write_str("Enter"),
            KeyCode::Esc => f.write_str("Esc"),
            KeyCode::Tab => f.write_str("Tab"),
            KeyCode::Up => f.write_str("↑"),
            KeyCode::Down => f.write_str("↓"),
            KeyCode::PageUp => f.write_str("PgUp"),
            KeyCode::PageDown => f.write_str("PgDn"),
            other => write!(f, "{other:?}"),
        }
    }
}

/// One entry of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub context: Context,
    pub chord: KeyChord,
    pub command: Command,
    pub description: &'static str,
    /// Shown in the status bar of its context.
    pub hint: bool,
}

/// The table of every binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keymap {
    bindings: Vec<Binding>,
}

impl Default for Keymap {
    fn default() -> Self {
        Keymap {
            bindings: default_bindings(),
        }
    }
}

fn default_bindings() -> Vec<Binding> {
    use Command as C;
    use Context as X;
    use KeyCode as K;
    let none = KeyModifiers::NONE;
    let rows: Vec<(Context, KeyChord, Command, &'static str, bool)> = vec![
        (
            X::Global,
            KeyChord::ctrl('c'),
            C::Interrupt,
            "quit (stops a reply first)",
            false,
        ),
        (
            X::Global,
            KeyChord::plain(K::Char('q')),
            C::Quit,
            "quit",
            true,
        ),
        (
            X::Global,
            KeyChord::plain(K::Char('?')),
            C::Help,
            "help",
            true,
        ),
        (X::Global, KeyChord::plain(K::F(1)), C::Help, "help", false),
        (
            X::Global,
            KeyChord::plain(K::Tab),
            C::FocusNext,
            "next pane",
            false,
        ),
        (
            X::Global,
            KeyChord::new(K::Tab, KeyModifiers::SHIFT),
            C::FocusPrev,
            "previous pane",
            false,
        ),
        (
            X::Global,
            KeyChord::ctrl('n'),
            C::NewThread,
            "new thread",
            false,
        ),
        (
            X::Global,
            KeyChord::plain(K::Esc),
            C::Cancel,
            "dismiss error, stop reply, close dialog",
            false,
        ),
        (
            X::Global,
            KeyChord::ctrl('r'),
            C::Regenerate,
            "regenerate last reply",
            false,
        ),
        (
            X::Assistants,
            KeyChord::plain(K::Char('n')),
            C::New,
            "new",
            true,
        ),
        (
            X::Assistants,
            KeyChord::plain(K::Char('e')),
            C::Edit,
            "edit",
            true,
        ),
        (
            X::Assistants,
            KeyChord::plain(K::Char('d')),
            C::Delete,
            "delete",
            true,
        ),
        (
            X::Assistants,
            KeyChord::plain(K::Char('r')),
            C::Refresh,
            "refresh",
            true,
        ),
        (
            X::Assistants,
            KeyChord::plain(K::Char('/')),
            C::Filter,
            "filter",
            true,
        ),
        (
            X::Assistants,
            KeyChord::plain(K::Enter),
            C::Open,
            "show threads",
            false,
        ),
        (X::Threads, KeyChord::plain(K::Enter), C::Open, "open", true),
        (
            X::Threads,
            KeyChord::plain(K::Char('n')),
            C::New,
            "new",
            true,
        ),
        (
            X::Threads,
            KeyChord::plain(K::Char('d')),
            C::Delete,
            "delete",
            true,
        ),
        (
            X::Threads,
            KeyChord::plain(K::Char('r')),
            C::Refresh,
            "refresh",
            false,
        ),
        (
            X::History,
            KeyChord::plain(K::Enter),
            C::Toggle,
            "fold/unfold tool",
            true,
        ),
        (
            X::History,
            KeyChord::plain(K::Char(' ')),
            C::Toggle,
            "fold/unfold tool",
            false,
        ),
        (
            X::History,
            KeyChord::plain(K::Char(']')),
            C::NextTool,
            "next tool block",
            true,
        ),
        (
            X::History,
            KeyChord::plain(K::Char('[')),
            C::PrevTool,
            "previous tool block",
            false,
        ),
        (
            X::History,
            KeyChord::plain(K::Char('g')),
            C::Top,
            "top",
            true,
        ),
        (
            X::History,
            KeyChord::plain(K::Char('G')),
            C::Bottom,
            "bottom",
            true,
        ),
        (
            X::Composer,
            KeyChord::plain(K::Enter),
            C::Send,
            "send",
            true,
        ),
        (
            X::Composer,
            KeyChord::new(K::Enter, KeyModifiers::ALT),
            C::Newline,
            "newline",
            true,
        ),
        (
            X::Composer,
            KeyChord::ctrl('j'),
            C::Newline,
            "newline",
            false,
        ),
        (
            X::Composer,
            KeyChord::new(K::Enter, KeyModifiers::SHIFT),
            C::Newline,
            "newline",
            false,
        ),
        (
            X::Composer,
            KeyChord::ctrl('e'),
            C::ExternalEditor,
            "edit in $EDITOR",
            true,
        ),
        (
            X::Composer,
            KeyChord::plain(K::Up),
            C::RecallLast,
            "recall last (when empty)",
            false,
        ),
        (
            X::Composer,
            KeyChord::ctrl('o'),
            C::AttachFile,
            "attach a file",
            false,
        ),
        (X::Editor, KeyChord::ctrl('s'), C::Save, "save", true),
        (
            X::Editor,
            KeyChord::plain(K::Tab),
            C::FocusNext,
            "next field",
            true,
        ),
        (
            X::Editor,
            KeyChord::new(K::Tab, KeyModifiers::SHIFT),
            C::FocusPrev,
            "previous field",
            false,
        ),
        (
            X::Dialog,
            KeyChord::plain(K::Char('y')),
            C::Yes,
            "yes / run once",
            true,
        ),
        (
            X::Dialog,
            KeyChord::plain(K::Char('a')),
            C::Always,
            "always allow this tool",
            true,
        ),
        (
            X::Dialog,
            KeyChord::plain(K::Char('n')),
            C::No,
            "no / decline",
            true,
        ),
    ];
    let mut bindings: Vec<Binding> = rows
        .into_iter()
        .map(|(context, chord, command, description, hint)| Binding {
            context,
            chord,
            command,
            description,
            hint,
        })
        .collect();
    for context in [X::Assistants, X::Threads, X::History] {
        let moves = [
            (KeyChord::plain(K::Char('k')), C::Up, "up", true),
            (KeyChord::plain(K::Up), C::Up, "up", false),
            (KeyChord::plain(K::Char('j')), C::Down, "down", true),
            (KeyChord::plain(K::Down), C::Down, "down", false),
            (KeyChord::new(K::PageUp, none), C::PageUp, "page up", false),
            (
                KeyChord::new(K::PageDown, none),
                C::PageDown,
                "page down",
                false,
            ),
        ];
        for (chord, command, description, hint) in moves {
            bindings.push(Binding {
                context,
                chord,
                command,
                description,
                hint: hint && context == X::History,
            });
        }
    }
    bindings
}

impl Keymap {
    /// Builds the default table with config overrides applied. Returns the table and
    /// one message per override that could not be applied.
    pub fn with_overrides(overrides: &BTreeMap<String, String>) -> (Keymap, Vec<String>) {
        let mut keymap = Keymap::default();
        let mut errors = Vec::new();
        let mut by_command: BTreeMap<Command, Vec<KeyChord>> = BTreeMap::new();
        for (key, name) in overrides {
            let Some(chord) = KeyChord::parse(key) else {
                errors.push(format!("[keys] {key:?} is not a key; use names like \"ctrl-n\", \"alt-enter\" or \"f1\""));
                continue;
            };
            let Some(command) = Command::from_name(name) else {
                let known: Vec<&str> = NAMES.iter().map(|(_, n)| *n).collect();
                errors.push(format!(
                    "[keys] {key:?} = {name:?}: unknown action; known: {}",
                    known.join(", ")
                ));
                continue;
            };
            by_command.entry(command).or_default().push(chord);
        }
        for (command, chords) in by_command {
            keymap.rebind(command, &chords);
        }
        (keymap, errors)
    }

    fn rebind(&mut self, command: Command, chords: &[KeyChord]) {
        let mut templates: Vec<Binding> = Vec::new();
        for binding in self.bindings.iter().filter(|b| b.command == command) {
            if !templates.iter().any(|t| t.context == binding.context) {
                templates.push(binding.clone());
            }
        }
        if templates.is_empty() {
            return;
        }
        self.bindings.retain(|b| b.command != command);
        for template in templates {
            for chord in chords {
                self.bindings
                    .retain(|b| !(b.context == template.context && b.chord == *chord));
                self.bindings.push(Binding {
                    chord: *chord,
                    ..template.clone()
                });
            }
        }
    }

    /// Finds the command of `chord` in `context`, falling back to global bindings. In a
    /// text field, only chords that cannot be typed as text match global bindings.
    pub fn lookup(&self, context: Context, chord: KeyChord, in_text: bool) -> Option<Command> {
        let find = |ctx: Context| {
            self.bindings
                .iter()
                .find(|b| b.context == ctx && b.chord == chord)
                .map(|b| b.command)
        };
        find(context).or_else(|| {
            if context == Context::Dialog || (in_text && !chord.works_in_text()) {
                None
            } else {
                find(Context::Global)
            }
        })
    }

    /// Returns the first chord bound to `command` in `context` (or globally).
    pub fn chord_for(&self, context: Context, command: Command) -> Option<KeyChord> {
        let find = |ctx: Context| {
            self.bindings
                .iter()
                .find(|b| b.context == ctx && b.command == command)
                .map(|b| b.chord)
        };
        find(context).or_else(|| find(Context::Global))
    }

    /// Returns `(key, description)` pairs for the status bar of `context`.
    pub fn hints(&self, context: Context) -> Vec<(String, &'static str)> {
        let mut seen = Vec::new();
        let mut hints = Vec::new();
        for binding in self
            .bindings
            .iter()
            .filter(|b| b.hint && (b.context == context || b.context == Context::Global))
        {
            if context != Context::Dialog
                && binding.context == Context::Global
                && !binding.chord.works_in_text()
                && matches!(context, Context::Composer | Context::Editor)
            {
                continue;
            }
            if context == Context::Dialog && binding.context == Context::Global {
                continue;
            }
            if seen.contains(&binding.command) && binding.context == Context::Global {
                continue;
            }
            seen.push(binding.command);
            hints.push((binding.chord.to_string(), binding.description));
        }
        hints
    }

    /// Returns every binding grouped by context, for the help overlay. Keys of one
    /// command in one context are joined, as in `k/↑`.
    pub fn help_sections(&self) -> Vec<(&'static str, Vec<(String, &'static str)>)> {
        let contexts = [
            Context::Global,
            Context::Assistants,
            Context::Threads,
            Context::History,
            Context::Composer,
            Context::Editor,
            Context::Dialog,
        ];
        let mut sections = Vec::new();
        for context in contexts {
            let mut rows: Vec<(Command, String, &'static str)> = Vec::new();
            for binding in self.bindings.iter().filter(|b| b.context == context) {
                // Movement keys share one row: `k ↑ j ↓ PgUp PgDn  move`.
                let moves = matches!(
                    binding.command,
                    Command::Up | Command::Down | Command::PageUp | Command::PageDown
                );
                let (group, description, joiner) = if moves {
                    (Command::Up, "move", " ")
                } else {
                    (binding.command, binding.description, "/")
                };
                match rows.iter_mut().find(|(command, _, _)| *command == group) {
                    Some(row) => row.1 = format!("{}{joiner}{}", row.1, binding.chord),
                    None => rows.push((group, binding.chord.to_string(), description)),
                }
            }
            let rows = rows
                .into_iter()
                .map(|(_, keys, description)| (keys, description))
                .collect();
            sections.push((context.title(), rows));
        }
        sections
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode, modifiers: KeyModifiers) -> KeyChord {
        KeyChord::from_event(&KeyEvent::new(code, modifiers))
    }

    #[test]
    fn parse_key_names() {
        assert_eq!(KeyChord::parse("ctrl-n"), Some(KeyChord::ctrl('n')));
        assert_eq!(
            KeyChord::parse("alt-enter"),
            Some(KeyChord::new(KeyCode::Enter, KeyModifiers::ALT))
        );
        assert_eq!(KeyChord::parse("f1"), Some(KeyChord::plain(KeyCode::F(1))));
        assert_eq!(
            KeyChord::parse("?"),
            Some(KeyChord::plain(KeyCode::Char('?')))
        );
        assert_eq!(KeyChord::parse("ctrl--"), Some(KeyChord::ctrl('-')));
        assert_eq!(KeyChord::parse("ctrl-nope"), None);
        assert_eq!(
            KeyChord::parse("G"),
            Some(KeyChord::plain(KeyCode::Char('G')))
        );
    }

    #[test]
    fn global_printable_keys_skip_text_fields() {
        let map = Keymap::default();
        let q = key(KeyCode::Char('q'), KeyModifiers::NONE);
        assert_eq!(
            map.lookup(Context::Assistants, q, false),
            Some(Command::Quit)
        );
        assert_eq!(map.lookup(Context::Composer, q, true), None);
        let ctrl_c = key(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(
            map.lookup(Context::Composer, ctrl_c, true),
            Some(Command::Interrupt)
        );
    }

    #[test]
    fn backtab_is_shift_tab() {
        let map = Keymap::default();
        let chord = key(KeyCode::BackTab, KeyModifiers::SHIFT);
        assert_eq!(
            map.lookup(Context::Threads, chord, false),
            Some(Command::FocusPrev)
        );
    }

    #[test]
    fn override_replaces_default_key() {
        let overrides = BTreeMap::from([("ctrl-t".to_owned(), "new_thread".to_owned())]);
        let (map, errors) = Keymap::with_overrides(&overrides);
        assert!(errors.is_empty(), "{errors:?}");
        let ctrl_t = key(KeyCode::Char('t'), KeyModifiers::CONTROL);
        let ctrl_n = key(KeyCode::Char('n'), KeyModifiers::CONTROL);
        assert_eq!(
            map.lookup(Context::History, ctrl_t, false),
            Some(Command::NewThread)
        );
        assert_eq!(map.lookup(Context::History, ctrl_n, false), None);
    }

    #[test]
    fn override_errors_name_the_problem() {
        let overrides = BTreeMap::from([
            ("ctrl-x".to_owned(), "explode".to_owned()),
            ("hyper-q".to_owned(), "quit".to_owned()),
        ]);
        let (_, errors) = Keymap::with_overrides(&overrides);
        assert_eq!(errors.len(), 2);
        assert!(errors.iter().any(|e| e.contains("explode")), "{errors:?}");
        assert!(errors.iter().any(|e| e.contains("hyper-q")), "{errors:?}");
    }

    #[test]
    fn help_lists_every_command_once_per_context() {
        let map = Keymap::default();
        let sections = map.help_sections();
        let history = sections
            .iter()
            .find(|(title, _)| *title == "History")
            .map(|(_, rows)| rows.clone())
            .unwrap_or_default();
        assert!(
            history
                .iter()
                .any(|(keys, d)| *d == "move" && keys == "k ↑ j ↓ PgUp PgDn"),
            "{history:?}"
        );
        let names: Vec<&str> = NAMES.iter().map(|(_, n)| *n).collect();
        for (command, name) in NAMES {
            assert_eq!(Command::from_name(name), Some(command));
            assert_eq!(command.name(), name);
        }
        assert_eq!(names.len(), 32);
    }
}
