//! The open thread: finished messages, the one reply in progress, and the viewport.
//!
//! Finished messages are immutable, so their wrapped and highlighted lines are cached
//! per width in each [`Entry`]. A frame lays out only the entries it shows, walking
//! from the bottom (when following the stream) or from a pinned top line, so drawing
//! costs the same for ten messages or ten thousand.

use std::cell::RefCell;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use ratatui::text::Line;

use crate::api::types::{Message, MessageStatus, Role, ToolCallRecord};

use super::text::{
    LineStart, MdLine, StreamingMarkdown, extends_line, wrap_line_from, wrap_md_lines,
};
use super::theme::Styles;

mod layout;
#[cfg(test)]
mod tests;

pub use layout::short_time;
use layout::{header, layout_message, tool_block};

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
    folds: FoldKey,
    lines: Arc<Vec<Line<'static>>>,
    /// First line of each tool block.
    tool_starts: Vec<usize>,
}

/// Fold state of the tool blocks of one message: unfolded or not, and the index of
/// the selected one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct FoldKey {
    unfolded: Vec<bool>,
    selected: Option<usize>,
}

/// Fold state of the thread: the ids of unfolded tool calls, and the one selected in
/// the history pane.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Folds {
    pub unfolded: HashSet<String>,
    pub selected: Option<String>,
}

impl Folds {
    fn key(&self, calls: &[ToolCallRecord]) -> FoldKey {
        if calls.is_empty() {
            return FoldKey::default();
        }
        FoldKey {
            unfolded: calls
                .iter()
                .map(|c| self.unfolded.contains(&c.id))
                .collect(),
            selected: self
                .selected
                .as_ref()
                .and_then(|id| calls.iter().position(|c| &c.id == id)),
        }
    }

    /// Unfolds a folded block, or folds an unfolded one.
    pub fn toggle(&mut self, call_id: &str) {
        if !self.unfolded.remove(call_id) {
            self.unfolded.insert(call_id.to_owned());
        }
    }
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

    /// Returns the laid-out lines and the first line of each tool block, from the
    /// cache when the width and folding match. The cache is memoisation of a pure
    /// function, so reading through `&self` keeps drawing free of visible state
    /// changes.
    fn layout(
        &self,
        width: u16,
        folds: &Folds,
        styles: &Styles,
    ) -> (Arc<Vec<Line<'static>>>, Vec<usize>) {
        let key = folds.key(&self.message.tool_calls);
        if let Some(cached) = self.cache.borrow().as_ref()
            && cached.width == width
            && cached.folds == key
        {
            return (Arc::clone(&cached.lines), cached.tool_starts.clone());
        }
        let (lines, tool_starts) =
            layout_message(&self.message, self.note.as_deref(), width, &key, styles);
        let lines = Arc::new(lines);
        *self.cache.borrow_mut() = Some(Cached {
            width,
            folds: key,
            lines: Arc::clone(&lines),
            tool_starts: tool_starts.clone(),
        });
        (lines, tool_starts)
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
    /// Rendered lines of the finished blocks of `content`; see [`StreamingMarkdown`].
    body: RefCell<StreamBody>,
}

/// The wrapped lines of the finished markdown blocks of a reply in progress.
#[derive(Debug, Clone, Default)]
struct StreamBody {
    markdown: StreamingMarkdown,
    width: u16,
    generation: u64,
    /// Markdown lines wrapped into `wrapped` so far.
    wrapped_md: usize,
    wrapped: Arc<Vec<Line<'static>>>,
    /// The last layout (text, width, count of `wrapped` lines shown, wrapped rest),
    /// kept because one frame requests the layout more than once.
    last: Option<(String, u16, usize, Vec<Line<'static>>)>,
    /// The markdown lines after the final blocks as of the last layout, each with its
    /// wrapped lines, at `width`. A long paragraph that is still streaming then costs
    /// a wrap of its last line per frame rather than of the whole paragraph.
    tail: Vec<WrappedLine>,
}

/// One markdown line and its wrapped lines.
#[derive(Debug, Clone)]
struct WrappedLine {
    markdown: MdLine,
    lines: Vec<Line<'static>>,
    /// The start of the last of `lines`.
    last: LineStart,
}

/// Wraps the markdown lines of `markdown` to `width` and returns all their lines.
/// `cache` contains the previous call's lines at the same width, and is replaced by
/// this call's: a line that did not change is reused, and a line that grew is
/// wrapped again only from its last wrapped line.
fn wrap_tail(
    cache: &mut Vec<WrappedLine>,
    markdown: &[MdLine],
    width: usize,
) -> Vec<Line<'static>> {
    let mut previous = std::mem::take(cache).into_iter();
    let mut out = Vec::new();
    for line in markdown {
        let entry = match previous.next() {
            Some(old) if old.markdown == *line => old,
            Some(old) if extends_line(&old.markdown, line) => {
                let mut lines = old.lines;
                lines.truncate(old.last.line);
                let (more, last) =
                    wrap_line_from(&line.spans, width, line.indent, line.hard, old.last);
                lines.extend(more);
                WrappedLine {
                    markdown: line.clone(),
                    lines,
                    last,
                }
            }
            _ => {
                let (lines, last) = wrap_line_from(
                    &line.spans,
                    width,
                    line.indent,
                    line.hard,
                    LineStart::default(),
                );
                WrappedLine {
                    markdown: line.clone(),
                    lines,
                    last,
                }
            }
        };
        out.extend(entry.lines.iter().cloned());
        cache.push(entry);
    }
    out
}

impl StreamBody {
    /// Lays out `content` at `width`: the wrapped final blocks (shared, and only
    /// extended while the text grows), how many of them to show, and the wrapped rest.
    fn layout(
        &mut self,
        content: &str,
        width: u16,
        code_theme: &str,
    ) -> (Arc<Vec<Line<'static>>>, usize, Vec<Line<'static>>) {
        if let Some((text, last_width, shown, tail)) = &self.last
            && *last_width == width
            && text == content
        {
            return (Arc::clone(&self.wrapped), *shown, tail.clone());
        }
        let rendered = self.markdown.render(content, code_theme);
        if self.width != width || self.generation != rendered.generation {
            self.width = width;
            self.generation = rendered.generation;
            self.wrapped_md = 0;
            self.wrapped = Arc::new(Vec::new());
            self.tail.clear();
        }
        if self.wrapped_md < rendered.done.len() {
            let more = wrap_md_lines(&rendered.done[self.wrapped_md..], usize::from(width));
            Arc::make_mut(&mut self.wrapped).extend(more);
            self.wrapped_md = rendered.done.len();
        }
        // Every blank markdown line wraps to exactly one line.
        let cut = rendered.done.len() - rendered.done_len;
        let shown = self.wrapped.len() - cut;
        let tail = wrap_tail(&mut self.tail, &rendered.tail, usize::from(width));
        let mut text = match self.last.take() {
            Some((text, ..)) => text,
            None => String::new(),
        };
        text.clear();
        text.push_str(content);
        self.last = Some((text, width, shown, tail.clone()));
        (Arc::clone(&self.wrapped), shown, tail)
    }
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
            body: RefCell::default(),
        }
    }

    /// Lays out the reply. Only the markdown blocks that may still change are rendered
    /// again; the result equals a layout of the whole text.
    fn item_lines(&self, width: u16, folds: &Folds, styles: &Styles) -> ItemLines {
        let (done, done_len, mut rest) =
            self.body
                .borrow_mut()
                .layout(&self.content, width, &styles.code_theme);
        let key = folds.key(&self.tool_calls);
        let mut tool_starts = Vec::with_capacity(self.tool_calls.len());
        for (index, call) in self.tool_calls.iter().enumerate() {
            tool_starts.push(1 + done_len + rest.len());
            rest.extend(tool_block(call, width, &key, index, styles));
        }
        rest.push(Line::default());
        ItemLines {
            header: Some(header(
                Role::Assistant,
                &self.created_at,
                Some("streaming…"),
                styles,
            )),
            done,
            done_len,
            rest,
            tool_starts,
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

/// The lines of one item of the transcript: an optional header, a shared run of
/// cached lines, and lines laid out for this frame.
pub struct ItemLines {
    header: Option<Line<'static>>,
    done: Arc<Vec<Line<'static>>>,
    done_len: usize,
    rest: Vec<Line<'static>>,
    /// First line of each tool block.
    tool_starts: Vec<usize>,
}

impl ItemLines {
    fn cached(lines: Arc<Vec<Line<'static>>>, tool_starts: Vec<usize>) -> Self {
        ItemLines {
            header: None,
            done_len: lines.len(),
            done: lines,
            rest: Vec::new(),
            tool_starts,
        }
    }

    pub fn len(&self) -> usize {
        usize::from(self.header.is_some()) + self.done_len + self.rest.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn iter(&self) -> impl Iterator<Item = &Line<'static>> {
        self.header
            .iter()
            .chain(self.done[..self.done_len].iter())
            .chain(self.rest.iter())
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
    pub folds: Folds,
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
            folds: Folds::default(),
            loading: false,
        }
    }
}

impl Transcript {
    /// Number of items: entries, plus the active reply.
    pub fn item_count(&self) -> usize {
        self.entries.len() + usize::from(self.active.is_some())
    }

    fn item_lines(&self, item: usize, width: u16, styles: &Styles) -> ItemLines {
        match self.entries.get(item) {
            Some(entry) => {
                let (lines, tool_starts) = entry.layout(width, &self.folds, styles);
                ItemLines::cached(lines, tool_starts)
            }
            None => match &self.active {
                Some(active) => active.item_lines(width, &self.folds, styles),
                None => ItemLines::cached(Arc::default(), Vec::new()),
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

    /// Returns every tool block in thread order, as (item, tool call id).
    fn tool_blocks(&self) -> Vec<(usize, &str)> {
        let entries = self.entries.iter().map(|e| &e.message.tool_calls);
        let active = self.active.iter().map(|a| &a.tool_calls);
        entries
            .chain(active)
            .enumerate()
            .flat_map(|(item, calls)| calls.iter().map(move |c| (item, c.id.as_str())))
            .collect()
    }

    /// Moves the tool block selection by `step` blocks (the last block when none is
    /// selected) and scrolls it into a `width` x `height` view. Returns false when the
    /// thread has no tool blocks.
    pub fn select_tool(&mut self, step: isize, width: u16, height: u16, styles: &Styles) -> bool {
        let blocks = self.tool_blocks();
        let Some(last) = blocks.len().checked_sub(1) else {
            return false;
        };
        let current = self
            .folds
            .selected
            .as_deref()
            .and_then(|id| blocks.iter().position(|(_, b)| *b == id));
        let next = match current {
            Some(index) => index.saturating_add_signed(step).min(last),
            None => last,
        };
        let (item, id) = blocks[next];
        self.folds.selected = Some(id.to_owned());
        self.reveal_tool(item, width, height, styles);
        true
    }

    /// Folds or unfolds the selected tool block, selecting the last one when none is.
    pub fn toggle_selected(&mut self, width: u16, height: u16, styles: &Styles) {
        let selected_exists = self
            .folds
            .selected
            .as_deref()
            .is_some_and(|id| self.tool_blocks().iter().any(|(_, b)| *b == id));
        if !selected_exists && !self.select_tool(0, width, height, styles) {
            return;
        }
        if let Some(id) = self.folds.selected.clone() {
            self.folds.toggle(&id);
        }
    }

    /// Scrolls so that the first line of the selected block of `item` is in view.
    fn reveal_tool(&mut self, item: usize, width: u16, height: u16, styles: &Styles) {
        let lines = self.item_lines(item, width, styles);
        let index = self.folds.selected.as_deref().and_then(|id| {
            let calls = match self.entries.get(item) {
                Some(entry) => &entry.message.tool_calls,
                None => &self.active.as_ref()?.tool_calls,
            };
            calls.iter().position(|c| c.id == id)
        });
        let Some(line) = index.and_then(|i| lines.tool_starts.get(i).copied()) else {
            return;
        };
        let height = usize::from(height);
        let top = match self.scroll {
            Scroll::Follow => self.bottom_top(width, height, styles),
            Scroll::Pinned { item, line } => (item, line),
        };
        if top <= (item, line)
            && self.lines_between(top, (item, line), width, height, styles) < height
        {
            return;
        }
        if self.lines_below((item, line), width, height, styles) <= height {
            self.follow();
        } else {
            self.scroll = Scroll::Pinned { item, line };
        }
    }

    /// Counts the lines from `from` up to `to` (which comes after it), stopping once
    /// past `limit`.
    fn lines_between(
        &self,
        from: (usize, usize),
        to: (usize, usize),
        width: u16,
        limit: usize,
        styles: &Styles,
    ) -> usize {
        if from.0 == to.0 {
            return to.1.saturating_sub(from.1);
        }
        let mut count = self
            .item_lines(from.0, width, styles)
            .len()
            .saturating_sub(from.1);
        for item in from.0 + 1..to.0 {
            if count > limit {
                return count;
            }
            count += self.item_lines(item, width, styles).len();
        }
        count + to.1
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
