//! Styles of the app, built once from the config's `[theme]`.

use ratatui::style::{Color, Modifier, Style};

use crate::config::Theme;

/// The styles panes draw with.
#[derive(Debug, Clone, PartialEq)]
pub struct Styles {
    pub accent: Color,
    pub user: Color,
    pub assistant: Color,
    pub tool: Color,
    pub error: Color,
    pub code_theme: String,
}

impl Default for Styles {
    fn default() -> Self {
        Styles::from_theme(&Theme::default()).0
    }
}

impl Styles {
    /// Builds the styles; returns a message for each colour that is not a colour name
    /// or `#rrggbb`, which then keeps its default.
    pub fn from_theme(theme: &Theme) -> (Styles, Vec<String>) {
        let defaults = Theme::default();
        let mut errors = Vec::new();
        let mut colour = |key: &str, value: &str, fallback: &str| {
            value.parse::<Color>().unwrap_or_else(|_| {
                errors.push(format!("[theme] {key} = {value:?} is not a colour; use a name such as \"cyan\" or \"#rrggbb\""));
                fallback.parse().unwrap_or(Color::Reset)
            })
        };
        let styles = Styles {
            accent: colour("accent", &theme.accent, &defaults.accent),
            user: colour("user", &theme.user, &defaults.user),
            assistant: colour("assistant", &theme.assistant, &defaults.assistant),
            tool: colour("tool", &theme.tool, &defaults.tool),
            error: colour("error", &theme.error, &defaults.error),
            code_theme: theme.code_theme.clone(),
        };
        (styles, errors)
    }

    pub fn border(&self, focused: bool) -> Style {
        if focused {
            Style::new().fg(self.accent).add_modifier(Modifier::BOLD)
        } else {
            Style::new().fg(Color::DarkGray)
        }
    }

    pub fn selected(&self, focused: bool) -> Style {
        if focused {
            Style::new().bg(self.accent).fg(Color::Black)
        } else {
            Style::new().add_modifier(Modifier::REVERSED)
        }
    }

    pub fn dim(&self) -> Style {
        Style::new().fg(Color::DarkGray)
    }
}
