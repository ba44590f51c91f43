//! The composer pane.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;

use super::super::app::{App, Focus};
use super::pane_block;

pub fn draw(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let focused = app.focus == Focus::Composer && app.dialogs.is_empty() && !app.help;
    let title = match &app.stream {
        Some(stream) if stream.connecting => " Message · sending… ",
        Some(_) => " Message · replying (Esc stops) ",
        None => " Message ",
    };
    let chips = attachment_chips(app);
    let title = if chips.is_empty() {
        title.to_owned()
    } else {
        format!("{title}· {chips} ")
    };
    let block = pane_block(title, app, Focus::Composer);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if focused && !app.composer.is_empty() {
        // Drawn itself rather than a copy, the text area records its size and scroll
        // position, which Up and Down use to move between wrapped rows.
        frame.render_widget(&app.composer.textarea, inner);
        return;
    }
    let mut textarea = app.composer.textarea.clone();
    if !focused {
        textarea.set_cursor_style(Style::new());
    }
    if app.composer.is_empty() {
        textarea.set_placeholder_text("Enter sends · Alt+Enter newline · Ctrl+E $EDITOR");
        textarea.set_placeholder_style(app.styles.dim());
    }
    frame.render_widget(&textarea, inner);
}

/// The files attached to the next message as `[+ name]` chips, and the upload in
/// progress.
fn attachment_chips(app: &App) -> String {
    let mut chips: Vec<String> = app
        .composer
        .attachments
        .iter()
        .map(|file| format!("[+ {}]", crate::tui::text::sanitize_line(&file.filename)))
        .collect();
    if let Some(path) = &app.composer.uploading {
        chips.push(format!(
            "[uploading {}…]",
            crate::tui::text::sanitize_line(path)
        ));
    }
    chips.join(" ")
}
