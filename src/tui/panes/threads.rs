//! The threads pane: the selected assistant's threads, newest first.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{List, ListItem, ListState};

use super::super::action::ThreadSource;
use super::super::app::{App, Focus};
use super::super::text::{sanitize_line, truncate_to_width};
use super::super::transcript::short_time;
use super::{dim_line, pane_block};

pub fn draw(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let pane = &app.threads;
    let source = match pane.source {
        Some(ThreadSource::LocalIndex) => " (local index)",
        _ => "",
    };
    let block = pane_block(format!(" Threads{source} "), app, Focus::Threads);
    let width = usize::from(area.width.saturating_sub(2));
    let mut items: Vec<ListItem<'_>> = pane
        .items
        .iter()
        .map(|thread| {
            let title = if thread.title.is_empty() {
                "(empty thread)".to_owned()
            } else {
                sanitize_line(&thread.title)
            };
            ListItem::new(vec![
                Line::from(truncate_to_width(&title, width)),
                Line::from(Span::styled(
                    format!("  {}", short_time(&thread.created_at)),
                    app.styles.dim(),
                )),
            ])
        })
        .collect();
    if pane.loading {
        items.push(ListItem::new(dim_line("loading…", app)));
    } else if items.is_empty() && pane.assistant_id.is_some() {
        items.push(ListItem::new(dim_line(
            "no threads; Ctrl+N starts one",
            app,
        )));
    }
    let focused = app.focus == Focus::Threads;
    let list = List::new(items)
        .block(block)
        .highlight_style(app.styles.selected(focused));
    let mut state =
        ListState::default().with_selected((!pane.items.is_empty()).then_some(pane.selected));
    frame.render_stateful_widget(list, area, &mut state);
}
