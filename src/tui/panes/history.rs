//! The history pane: the visible lines of the open thread, and the "new text below"
//! marker when the view is scrolled up while text arrives.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::super::app::{App, Focus};
use super::{dim_line, pane_block};

pub fn draw(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let title = match app.assistants.selected() {
        Some(_) if app.transcript.thread_id.is_none() => " History · new thread ".to_owned(),
        _ => " History ".to_owned(),
    };
    let block = pane_block(title, app, Focus::Main);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if inner.width == 0 || inner.height == 0 {
        return;
    }
    let transcript = &app.transcript;
    let lines: Vec<Line<'static>> = if transcript.loading {
        vec![dim_line("loading messages…", app)]
    } else if transcript.item_count() == 0 {
        vec![dim_line("Type a message below and press Enter.", app)]
    } else {
        transcript.visible_lines(inner.width, inner.height, &app.styles)
    };
    // The lines are wrapped to the pane already, so they are written straight into
    // the buffer, which is cheaper than a `Paragraph` laying them out again.
    let buffer = frame.buffer_mut();
    for (row, line) in (inner.y..inner.bottom()).zip(&lines) {
        buffer.set_line(inner.x, row, line, inner.width);
    }
    if transcript.unseen_below && app.scrolled_up() {
        let marker = " ↓ new text below (G) ";
        let width = u16::try_from(marker.chars().count())
            .unwrap_or(0)
            .min(inner.width);
        let spot = Rect::new(
            inner.x + inner.width - width,
            inner.y + inner.height - 1,
            width,
            1,
        );
        let style = Style::new()
            .bg(app.styles.accent)
            .fg(ratatui::style::Color::Black)
            .add_modifier(Modifier::BOLD);
        frame.render_widget(
            Paragraph::new(Line::from(Span::styled(marker, style))),
            spot,
        );
    }
}
