//! The help overlay: every binding, from the same table that handles keys.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

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
                Span::styled(format!("  {keys:<18}"), key_style),
                Span::raw(description),
            ]));
        }
    }
    let popup = centered(area, 72, area.height.saturating_sub(2));
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(title_style(app))
        .title(" Keys · ? or F1 or Esc closes ");
    frame.render_widget(Clear, popup);
    let inner = block.inner(popup);
    frame.render_widget(block, popup);
    // Two columns when the list is taller than the popup.
    let half = lines.len().div_ceil(2);
    if lines.len() > usize::from(inner.height) && inner.width >= 60 {
        let right_lines = lines.split_off(half);
        let left = Rect::new(inner.x, inner.y, inner.width / 2, inner.height);
        let right = Rect::new(
            inner.x + inner.width / 2,
            inner.y,
            inner.width - inner.width / 2,
            inner.height,
        );
        frame.render_widget(Paragraph::new(lines), left);
        frame.render_widget(Paragraph::new(right_lines), right);
    } else {
        frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
    }
}
