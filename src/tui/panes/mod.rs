//! Drawing: one pure function per pane or dialog, each reading the [`App`] and writing
//! a ratatui buffer. Nothing here changes state or does I/O.

mod assistants;
mod composer;
mod dialog;
mod editor;
pub(crate) mod help;
mod history;
pub mod layout;
mod status;
#[cfg(test)]
mod tests;
mod threads;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders};

use super::app::{App, Focus};

/// Draws the whole screen.
pub fn draw(frame: &mut Frame<'_>, app: &App) {
    let areas = app.areas();
    assistants::draw(frame, areas.assistants, app);
    threads::draw(frame, areas.threads, app);
    if app.editor.is_some() {
        editor::draw(frame, areas.main, app);
    } else {
        history::draw(frame, areas.main, app);
    }
    composer::draw(frame, areas.composer, app);
    status::draw(frame, areas.status, app);
    if let Some(top) = app.dialogs.last() {
        dialog::draw(frame, frame.area(), app, top);
    }
    if app.help {
        help::draw(frame, frame.area(), app);
    }
}

/// Builds a pane border, highlighted when the pane has focus.
pub(crate) fn pane_block<'a>(title: impl Into<Line<'a>>, app: &App, focus: Focus) -> Block<'a> {
    let focused = app.focus == focus && app.dialogs.is_empty() && !app.help;
    Block::default()
        .borders(Borders::ALL)
        .border_type(if focused {
            BorderType::Thick
        } else {
            BorderType::Plain
        })
        .border_style(app.styles.border(focused))
        .title(title)
}

/// Returns a rectangle of `width` x `height` centred in `area`.
pub(crate) fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect::new(
        area.x + (area.width - width) / 2,
        area.y + (area.height - height) / 2,
        width,
        height,
    )
}

pub(crate) fn dim_line(text: impl Into<String>, app: &App) -> Line<'static> {
    Line::from(Span::styled(text.into(), app.styles.dim()))
}

pub(crate) fn title_style(app: &App) -> Style {
    Style::new().fg(app.styles.accent)
}
