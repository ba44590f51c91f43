//! Laying out messages and tool blocks into wrapped, styled lines.

use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};

use crate::api::types::{Message, MessageStatus, Role, ToolCallRecord, ToolCallStatus};

use super::super::text::{
    MdLine, render_markdown, sanitize, sanitize_line, truncate_to_width, wrap_md_lines,
};
use super::super::theme::Styles;
use super::FoldKey;

/// Tool blocks longer than this many lines are folded to one line.
const FOLD_THRESHOLD: usize = 1;

fn role_label(role: Role) -> &'static str {
    match role {
        Role::User => "You",
        Role::Assistant => "Assistant",
        Role::System => "System",
        Role::Tool => "Tool",
        Role::Unknown => "Other",
    }
}

/// Formats an RFC 3339 timestamp as `YYYY-MM-DD HH:MM` (UTC, as sent).
pub fn short_time(timestamp: &str) -> String {
    let clean = sanitize_line(timestamp);
    match (clean.get(..10), clean.get(11..16)) {
        (Some(date), Some(time)) if clean.len() >= 16 => format!("{date} {time}"),
        _ => clean,
    }
}

pub(super) fn header(
    role: Role,
    created_at: &str,
    note: Option<&str>,
    styles: &Styles,
) -> Line<'static> {
    let colour = match role {
        Role::User => styles.user,
        Role::Assistant => styles.assistant,
        Role::Tool => styles.tool,
        _ => styles.accent,
    };
    let mut spans = vec![Span::styled(
        role_label(role),
        Style::new().fg(colour).add_modifier(Modifier::BOLD),
    )];
    if !created_at.is_empty() {
        spans.push(Span::styled(
            format!(" · {}", short_time(created_at)),
            styles.dim(),
        ));
    }
    if let Some(note) = note {
        spans.push(Span::styled(
            format!(" · {}", sanitize_line(note)),
            Style::new().fg(styles.error),
        ));
    }
    Line::from(spans)
}

fn body_lines(role: Role, content: &str, width: u16, styles: &Styles) -> Vec<Line<'static>> {
    let md = if role == Role::User {
        sanitize(content)
            .lines()
            .map(|line| MdLine {
                spans: vec![Span::raw(line.to_owned())],
                indent: 0,
                hard: false,
            })
            .collect()
    } else {
        render_markdown(content, &styles.code_theme)
    };
    wrap_md_lines(&md, usize::from(width))
}

/// Lays out a finished message; returns its lines and the first line of each tool
/// block.
pub(super) fn layout_message(
    message: &Message,
    note: Option<&str>,
    width: u16,
    folds: &FoldKey,
    styles: &Styles,
) -> (Vec<Line<'static>>, Vec<usize>) {
    let note = note.or(match message.status {
        MessageStatus::Incomplete => Some("incomplete"),
        _ => None,
    });
    let mut lines = vec![header(message.role, &message.created_at, note, styles)];
    lines.extend(body_lines(message.role, &message.content, width, styles));
    for attachment in &message.attachments {
        let label = format!("attached {}", sanitize_line(&attachment.file_id));
        lines.push(Line::styled(
            truncate_to_width(&label, usize::from(width)),
            styles.dim(),
        ));
    }
    let mut tool_starts = Vec::with_capacity(message.tool_calls.len());
    for (index, call) in message.tool_calls.iter().enumerate() {
        tool_starts.push(lines.len());
        lines.extend(tool_block(call, width, folds, index, styles));
    }
    lines.push(Line::default());
    (lines, tool_starts)
}

fn status_label(status: ToolCallStatus) -> &'static str {
    match status {
        ToolCallStatus::InProgress => "running",
        ToolCallStatus::RequiresAction => "waiting for approval",
        ToolCallStatus::Completed => "done",
        ToolCallStatus::Failed => "failed",
        ToolCallStatus::Unknown => "unknown",
    }
}

/// Lays out one tool call: name, arguments, status and output. Blocks longer than
/// one line fold to one line unless unfolded; the selected block is marked with `»`.
pub(super) fn tool_block(
    call: &ToolCallRecord,
    width: u16,
    folds: &FoldKey,
    index: usize,
    styles: &Styles,
) -> Vec<Line<'static>> {
    let selected = folds.selected == Some(index);
    let unfolded = folds.unfolded.get(index).copied().unwrap_or(false);
    let mut tool = Style::new().fg(styles.tool);
    if selected {
        tool = tool.add_modifier(Modifier::REVERSED);
    }
    let arguments = sanitize_line(&call.arguments.to_string());
    let output = call.output.as_deref().map(sanitize);
    let title = format!(
        "{}⚙ {}({arguments}) · {}",
        if selected { "» " } else { "" },
        sanitize_line(&call.name),
        status_label(call.status)
    );
    let output_lines = output.as_ref().map(|o| o.lines().count()).unwrap_or(0);
    let long = output_lines + 1 > FOLD_THRESHOLD + 1 || title.len() + 2 > usize::from(width);
    if long && !unfolded {
        let first = output
            .as_ref()
            .and_then(|o| o.lines().next().map(str::to_owned))
            .unwrap_or_default();
        let text = if first.is_empty() {
            title
        } else {
            format!("{title} → {first}")
        };
        let folded = truncate_to_width(&format!("{text} ▸"), usize::from(width));
        return vec![Line::from(Span::styled(folded, tool))];
    }
    let title = if long { format!("{title} ▾") } else { title };
    let mut md = vec![MdLine {
        spans: vec![Span::styled(title, tool)],
        indent: 2,
        hard: false,
    }];
    let tool = tool.remove_modifier(Modifier::REVERSED);
    if let Some(output) = output {
        for (index, line) in output.lines().enumerate() {
            let lead = if index == 0 { "  ↳ " } else { "    " };
            md.push(MdLine {
                spans: vec![Span::styled(lead, tool), Span::raw(line.to_owned())],
                indent: 4,
                hard: false,
            });
        }
    }
    wrap_md_lines(&md, usize::from(width))
}
