//! The open thread: finished messages, the one reply in progress, and the viewport.
//!
//! Finished messages are immutable, so their wrapped and highlighted lines are cached
//! per width in each [`Entry`]. A frame lays out only the entries it shows, walking
//! from the bottom (when following the stream) or from a pinned top line, so drawing
//! costs the same for ten messages or ten thousand.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Instant;

use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};

use crate::api::types::{Message, MessageStatus, Role, ToolCallRecord, ToolCallStatus};

use super::text::{
    MdLine, render_markdown, sanitize, sanitize_line, truncate_to_width, wrap_md_lines,
};
use super::theme::Styles;

/// Tool blocks longer than this many lines are folded to one line.
const FOLD_THRESHOLD: usize = 1;

/// A finished message with its cached layout.
#[derive(Debug)]
pub struct Entry {
    pub message: Message,
    /// Shown after the time, such as "stopped" or "connection lost".
    pub note: Option<String>,
    cache: RefCell<Option<Cached>>,
}

#[derive(Debug)]
struct Cached {
    width: u16,
    unfolded: bool,
    lines: Arc<Vec<Line<'static>>>,
}

impl Entry {
    pub fn new(message: Message) -> Self {
        Entry {
            message,
            note: None,
            cache: RefCell::new(None),
        }
    }

    pub fn with_note(message: Message, note: impl Into<String>) -> Self {
        Entry {
            note: Some(note.into()),
            ..Entry::new(message)
        }
    }

    /// Returns the laid-out lines, from the cache when the width and folding match.
    /// The cache is memoisation of a pure function, so reading through `&self` keeps
    /// drawing free of visible state changes.
    fn lines(&self, width: u16, unfolded: bool, styles: &Styles) -> Arc<Vec<Line<'static>>> {
        if let Some(cached) = self.cache.borrow().as_ref()
            && cached.width == width
            && cached.unfolded == unfolded
        {
            return Arc::clone(&cached.lines);
        }
        let lines = Arc::new(layout_message(
            &self.message,
            self.note.as_deref(),
            width,
            unfolded,
            styles,
        ));
        *self.cache.borrow_mut() = Some(Cached {
            width,
            unfolded,
            lines: Arc::clone(&lines),
        });
        lines
    }
}

/// The reply being streamed.
#[derive(Debug, Clone)]
pub struct ActiveReply {
    pub message_id: String,
    pub content: String,
    pub tool_calls: Vec<ToolCallRecord>,
    pub tokens: usize,
    pub started: Instant,
    pub created_at: String,
}

impl ActiveReply {
    pub fn new(started: Instant) -> Self {
        ActiveReply {
            message_id: String::new(),
            content: String::new(),
            tool_calls: Vec::new(),
            tokens: 0,
            started,
            created_at: String::new(),
        }
    }

    /// Builds the message this reply becomes when it ends.
    pub fn into_message(self, thread_id: &str, status: MessageStatus) -> Message {
        Message {
            id: self.message_id,
            thread_id: thread_id.to_owned(),
            role: Role::Assistant,
            content: self.content,
            created_at: self.created_at,
            assistant_id: None,
            attachments: Vec::new(),
            tool_calls: self.tool_calls,
            status,
        }
    }
}

/// Where the viewport is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scroll {
    /// The bottom is shown, and new text keeps it shown.
    Follow,
    /// The top line of the view is line `line` of item `item`.
    Pinned { item: usize, line: usize },
}

/// The open thread.
#[derive(Debug)]
pub struct Transcript {
    pub thread_id: Option<String>,
    pub entries: Vec<Entry>,
    pub active: Option<ActiveReply>,
    pub scroll: Scroll,
    /// New text arrived while the view was scrolled up.
    pub unseen_below: bool,
    pub tools_unfolded: bool,
    pub loading: bool,
}

impl Default for Transcript {
    fn default() -> Self {
        Transcript {
            thread_id: None,
            entries: Vec::new(),
            active: None,
            scroll: Scroll::Follow,
            unseen_below: false,
            tools_unfolded: false,
            loading: false,
        }
    }
}

impl Transcript {
    /// Number of items: entries, plus the active reply.
    pub fn item_count(&self) -> usize {
        self.entries.len() + usize::from(self.active.is_some())
    }

    fn item_lines(&self, item: usize, width: u16, styles: &Styles) -> Arc<Vec<Line<'static>>> {
        match self.entries.get(item) {
            Some(entry) => entry.lines(width, self.tools_unfolded, styles),
            // TODO: cache the finished paragraphs of the reply in progress; it is laid out
            // whole on every frame, which grows with its length.
            None => match &self.active {
                Some(active) => Arc::new(layout_active(active, width, self.tools_unfolded, styles)),
                None => Arc::new(Vec::new()),
            },
        }
    }

    /// Returns the lines of a `width` x `height` view.
    pub fn visible_lines(&self, width: u16, height: u16, styles: &Styles) -> Vec<Line<'static>> {
        let height = usize::from(height);
        let (item, line) = match self.scroll {
            Scroll::Follow => self.bottom_top(width, height, styles),
            Scroll::Pinned { item, line } => (item, line),
        };
        let mut out = Vec::with_capacity(height);
        let mut skip = line;
        for index in item..self.item_count() {
            let lines = self.item_lines(index, width, styles);
            for line in lines.iter().skip(skip) {
                if out.len() == height {
                    return out;
                }
                out.push(line.clone());
            }
            skip = 0;
        }
        out
    }

    /// Returns the top position that shows the last `height` lines.
    fn bottom_top(&self, width: u16, height: usize, styles: &Styles) -> (usize, usize) {
        let mut needed = height;
        for item in (0..self.item_count()).rev() {
            let count = self.item_lines(item, width, styles).len();
            if count >= needed {
                return (item, count - needed);
            }
            needed -= count;
        }
        (0, 0)
    }

    /// Counts lines from `(item, line)` to the end, stopping once past `limit`.
    fn lines_below(&self, top: (usize, usize), width: u16, limit: usize, styles: &Styles) -> usize {
        let mut count = 0;
        for item in top.0..self.item_count() {
            let lines = self.item_lines(item, width, styles).len();
            count += if item == top.0 {
                lines.saturating_sub(top.1)
            } else {
                lines
            };
            if count > limit {
                break;
            }
        }
        count
    }

    /// Scrolls by `delta` lines (negative is up) in a `width` x `height` view.
    pub fn scroll_by(&mut self, delta: isize, width: u16, height: u16, styles: &Styles) {
        let height = usize::from(height);
        let (mut item, mut line) = match self.scroll {
            Scroll::Follow => self.bottom_top(width, height, styles),
            Scroll::Pinned { item, line } => (item, line),
        };
        if delta < 0 {
            let mut up = delta.unsigned_abs();
            while up > 0 {
                if line >= up {
                    line -= up;
                    break;
                }
                up -= line;
                if item == 0 {
                    line = 0;
                    break;
                }
                item -= 1;
                line = self.item_lines(item, width, styles).len();
            }
        } else {
            let mut down = delta.unsigned_abs();
            while down > 0 && item < self.item_count() {
                let count = self.item_lines(item, width, styles).len();
                let left = count.saturating_sub(line);
                if down < left {
                    line += down;
                    break;
                }
                down -= left;
                item += 1;
                line = 0;
            }
        }
        if self.lines_below((item, line), width, height, styles) <= height {
            self.follow();
        } else {
            self.scroll = Scroll::Pinned { item, line };
        }
    }

    pub fn scroll_to_top(&mut self, width: u16, height: u16, styles: &Styles) {
        self.scroll = Scroll::Pinned { item: 0, line: 0 };
        if self.lines_below((0, 0), width, usize::from(height), styles) <= usize::from(height) {
            self.follow();
        }
    }

    pub fn follow(&mut self) {
        self.scroll = Scroll::Follow;
        self.unseen_below = false;
    }

    /// Records that text was added at the bottom.
    pub fn note_new_text(&mut self) {
        if self.scroll != Scroll::Follow {
            self.unseen_below = true;
        }
    }

    /// Finds a tool call by id in the active reply or the recent entries.
    pub fn tool_call_mut(&mut self, call_id: &str) -> Option<&mut ToolCallRecord> {
        if let Some(active) = &mut self.active
            && let Some(call) = active.tool_calls.iter_mut().find(|c| c.id == call_id)
        {
            return Some(call);
        }
        let entry = self
            .entries
            .iter_mut()
            .rev()
            .take(8)
            .find(|e| e.message.tool_calls.iter().any(|c| c.id == call_id))?;
        entry.cache.replace(None);
        entry
            .message
            .tool_calls
            .iter_mut()
            .find(|c| c.id == call_id)
    }
}

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

fn header(role: Role, created_at: &str, note: Option<&str>, styles: &Styles) -> Line<'static> {
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

fn layout_message(
    message: &Message,
    note: Option<&str>,
    width: u16,
    unfolded: bool,
    styles: &Styles,
) -> Vec<Line<'static>> {
    let note = note.or(match message.status {
        MessageStatus::Incomplete => Some("incomplete"),
        _ => None,
    });
    let mut lines = vec![header(message.role, &message.created_at, note, styles)];
    lines.extend(body_lines(message.role, &message.content, width, styles));
    for call in &message.tool_calls {
        lines.extend(tool_block(call, width, unfolded, styles));
    }
    lines.push(Line::default());
    lines
}

fn layout_active(
    active: &ActiveReply,
    width: u16,
    unfolded: bool,
    styles: &Styles,
) -> Vec<Line<'static>> {
    let mut lines = vec![header(
        Role::Assistant,
        &active.created_at,
        Some("streaming…"),
        styles,
    )];
    lines.extend(body_lines(Role::Assistant, &active.content, width, styles));
    for call in &active.tool_calls {
        lines.extend(tool_block(call, width, unfolded, styles));
    }
    lines.push(Line::default());
    lines
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
/// one line fold to one line unless `unfolded`.
fn tool_block(
    call: &ToolCallRecord,
    width: u16,
    unfolded: bool,
    styles: &Styles,
) -> Vec<Line<'static>> {
    let tool = Style::new().fg(styles.tool);
    let arguments = sanitize_line(&call.arguments.to_string());
    let output = call.output.as_deref().map(sanitize);
    let title = format!(
        "⚙ {}({arguments}) · {}",
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
    let mut md = vec![MdLine {
        spans: vec![Span::styled(title, tool)],
        indent: 2,
        hard: false,
    }];
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
