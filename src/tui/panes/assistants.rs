//! The assistants pane: names and models, the filter line, and a "loading more" row.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{List, ListItem, ListState};

use super::super::app::{App, Focus};
use super::super::text::{sanitize_line, truncate_to_width};
use super::{dim_line, pane_block};

pub fn draw(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let pane = &app.assistants;
    let mut title = format!(
        " Assistants ({}{}) ",
        pane.items.len(),
        if pane.has_more { "+" } else { "" }
    );
    if !pane.filter.is_empty() || pane.filter_editing {
        title = format!(
            " Assistants /{}{} ",
            sanitize_line(&pane.filter),
            if pane.filter_editing { "▏" } else { "" }
        );
    }
    let block = pane_block(title, app, Focus::Assistants);
    let inner_width = usize::from(area.width.saturating_sub(2));
    let visible = pane.visible();
    let mut items: Vec<ListItem<'_>> = visible
        .iter()
        .map(|assistant| {
            let name = truncate_to_width(&sanitize_line(&assistant.name), inner_width);
            let model = truncate_to_width(
                &sanitize_line(&assistant.model),
                inner_width.saturating_sub(2),
            );
            ListItem::new(vec![
                Line::from(Span::styled(
                    name,
                    Style::new().add_modifier(Modifier::BOLD),
                )),
                Line::from(Span::styled(format!("  {model}"), app.styles.dim())),
            ])
        })
        .collect();
    if pane.loading {
        items.push(ListItem::new(dim_line("loading…", app)));
    } else if items.is_empty() && pane.loaded_once {
        // Two short lines, so the hint fits the narrow list at 80 columns.
        let lines = if pane.filter.is_empty() {
            vec![
                dim_line("no assistants yet", app),
                dim_line("press n to create one", app),
            ]
        } else {
            vec![dim_line("no match", app)]
        };
        items.push(ListItem::new(lines));
    }
    let focused = app.focus == Focus::Assistants;
    let list = List::new(items)
        .block(block)
        .highlight_style(app.styles.selected(focused));
    let mut state =
        ListState::default().with_selected((!visible.is_empty()).then_some(pane.selected));
    frame.render_stateful_widget(list, area, &mut state);
}
