//! The help overlay: every binding, from the same table that handles keys.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use super::super::app::App;
use super::{centered, title_style};

pub fn draw(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let key_style = Style::new()
        .fg(app.styles.accent)
        .add_modifier(Modifier::BOLD);
    let mut lines = Vec::new();
    for (title, rows) in app.keys.help_sections() {
        if rows.is_empty() {
            continue;
        }
        lines.push(Line::from(Span::styled(
            title,
            Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
        )));
        for (keys, description) in rows {
            lines.push(Line::from(vec![
                Span::styled(format!(" {keys:<14} "), key_style),
                Span::raw(description),
            ]));
        }
    }
    let popup = centered(area, 110, area.height);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(title_style(app))
        .title(" Keys · ? or F1 or Esc closes ");
    frame.render_widget(Clear, popup);
    let inner = block.inner(popup);
    frame.render_widget(block, popup);
    // As many columns as the list needs to fit the popup's height.
    let rows = usize::from(inner.height).max(1);
    let columns = lines.len().div_ceil(rows).clamp(1, 3);
    let per_column = lines.len().div_ceil(columns).max(1);
    let width = inner.width / u16::try_from(columns).unwrap_or(1);
    for (index, chunk) in lines.chunks(per_column).enumerate() {
        let x = inner.x + width * u16::try_from(index).unwrap_or(0);
        let column = Rect::new(x, inner.y, width, inner.height);
        frame.render_widget(Paragraph::new(chunk.to_vec()), column);
    }
}
