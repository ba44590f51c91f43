//! Modal dialogs: confirm delete, discard changes, tool approval.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use super::super::app::{App, Dialog};
use super::super::keys::{Command, Context};
use super::super::text::{sanitize_line, truncate_to_width};
use super::centered;

pub fn draw(frame: &mut Frame<'_>, area: Rect, app: &App, dialog: &Dialog) {
    let key = Style::new()
        .fg(app.styles.accent)
        .add_modifier(Modifier::BOLD);
    let (title, mut lines): (&str, Vec<Line<'static>>) = match dialog {
        Dialog::DeleteAssistant { id, name } => (
            " Delete assistant ",
            vec![
                Line::from(format!(
                    "Delete {} ({})?",
                    sanitize_line(name),
                    sanitize_line(id)
                )),
                Line::from("This cannot be undone."),
            ],
        ),
        Dialog::DeleteThread { id, title } => {
            let shown = if title.is_empty() {
                sanitize_line(id)
            } else {
                sanitize_line(title)
            };
            (
                " Delete thread ",
                vec![Line::from(format!(
                    "Delete the thread {}?",
                    truncate_to_width(&shown, 40)
                ))],
            )
        }
        Dialog::DiscardChanges => (
            " Unsaved changes ",
            vec![Line::from("Discard your changes to this assistant?")],
        ),
        Dialog::ToolApproval { call } => {
            let arguments = sanitize_line(&call.arguments.to_string());
            (
                " Run tool? ",
                vec![
                    Line::from(vec![
                        Span::raw("The assistant calls "),
                        Span::styled(
                            sanitize_line(&call.name),
                            Style::new()
                                .fg(app.styles.tool)
                                .add_modifier(Modifier::BOLD),
                        ),
                    ]),
                    Line::from(Span::styled(
                        truncate_to_width(&arguments, 200),
                        app.styles.dim(),
                    )),
                ],
            )
        }
    };
    lines.push(Line::default());
    let mut choice_spans = Vec::new();
    for (index, (chord, label)) in choices(app, dialog).into_iter().enumerate() {
        if index > 0 {
            choice_spans.push(Span::raw("   "));
        }
        choice_spans.push(Span::styled(chord, key));
        choice_spans.push(Span::raw(format!(" {label}")));
    }
    lines.push(Line::from(choice_spans));
    let popup = centered(area, 60, 8);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(Style::new().fg(app.styles.accent))
        .title(title);
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false }),
        popup,
    );
}

/// Returns the keys of `dialog` with what each does there, as bound in the keymap.
pub(super) fn choices(app: &App, dialog: &Dialog) -> Vec<(String, &'static str)> {
    let commands: &[(Command, &'static str)] = match dialog {
        Dialog::DeleteAssistant { .. } | Dialog::DeleteThread { .. } => {
            &[(Command::Yes, "delete"), (Command::No, "keep")]
        }
        Dialog::DiscardChanges => &[(Command::Yes, "discard"), (Command::No, "keep editing")],
        Dialog::ToolApproval { .. } => &[
            (Command::Yes, "run once"),
            (Command::Always, "always allow this tool"),
            (Command::No, "decline"),
        ],
    };
    commands
        .iter()
        .filter_map(|(command, label)| {
            let chord = app.keys.chord_for(Context::Dialog, *command)?;
            Some((chord.to_string(), *label))
        })
        .collect()
}
