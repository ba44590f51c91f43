//! The instruction editor form, drawn where the history pane is.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use unicode_width::UnicodeWidthStr;

use super::super::app::editor_fields;
use super::super::app::{App, EditorField, EditorForm, EditorMode, Focus};
use super::super::text::sanitize_line;
use super::pane_block;

pub fn draw(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let Some(form) = &app.editor else {
        return;
    };
    let title = match &form.mode {
        EditorMode::Create => " New assistant · Ctrl+S saves · Esc leaves ".to_owned(),
        EditorMode::Edit(assistant) => format!(
            " Edit {} · Ctrl+S saves · Esc leaves ",
            sanitize_line(&assistant.name)
        ),
    };
    let title = if form.saving {
        format!("{title}· saving… ")
    } else {
        title
    };
    let block = pane_block(title, app, Focus::Main);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let single = editor_fields()
        .iter()
        .filter(|f| **f != EditorField::Instructions)
        .count();
    let mut constraints = vec![Constraint::Length(1); single];
    constraints.push(Constraint::Min(3));
    let rows = Layout::vertical(constraints).split(inner);
    let focused = app.focus == Focus::Main && app.dialogs.is_empty() && !app.help;
    for (index, field) in editor_fields().iter().enumerate() {
        if let Some(row) = rows.get(index) {
            draw_field(
                frame,
                *row,
                app,
                form,
                *field,
                focused && form.focus == *field,
            );
        }
    }
}

fn draw_field(
    frame: &mut Frame<'_>,
    area: Rect,
    app: &App,
    form: &EditorForm,
    field: EditorField,
    focused: bool,
) {
    let label_style = if focused {
        Style::new()
            .fg(app.styles.accent)
            .add_modifier(Modifier::BOLD)
    } else {
        Style::new()
    };
    let error = form.errors.get(&field).map(|e| sanitize_line(e));
    let Some(textarea) = form.fields.get(&field) else {
        return;
    };
    // The focused field is drawn itself rather than a copy, so it records its size
    // and scroll position, which Up and Down use to move between wrapped rows.
    let unfocused;
    let textarea = if focused {
        textarea
    } else {
        let mut copy = textarea.clone();
        copy.set_cursor_style(Style::new());
        unfocused = copy;
        &unfocused
    };
    if field == EditorField::Instructions {
        let mut title = vec![Span::styled(format!(" {} ", field.label()), label_style)];
        if let Some(error) = error {
            title.push(Span::styled(
                format!("✗ {error} "),
                Style::new().fg(app.styles.error),
            ));
        }
        let block = Block::default()
            .borders(Borders::TOP)
            .border_style(app.styles.dim())
            .title(Line::from(title));
        let inner = block.inner(area);
        frame.render_widget(block, area);
        frame.render_widget(textarea, inner);
        return;
    }
    // The error takes the room it needs, up to all but 8 columns of the value.
    let error_width = error.as_ref().map_or(0, |error| {
        let needed = u16::try_from(error.width() + 2).unwrap_or(u16::MAX);
        needed.min(area.width.saturating_sub(13 + 8))
    });
    let [label, value, message] = Layout::horizontal([
        Constraint::Length(13),
        Constraint::Min(8),
        Constraint::Length(error_width),
    ])
    .areas(area);
    frame.render_widget(
        Paragraph::new(Span::styled(format!("{}:", field.label()), label_style)),
        label,
    );
    frame.render_widget(textarea, value);
    if let Some(error) = error {
        frame.render_widget(
            Paragraph::new(Span::styled(
                format!("✗ {error}"),
                Style::new().fg(app.styles.error),
            )),
            message,
        );
    }
}
