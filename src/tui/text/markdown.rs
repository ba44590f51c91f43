//! Markdown to styled lines with pulldown-cmark: headings, emphasis, lists, quotes,
//! tables, links and fenced code highlighted by syntect.
//!
//! The output is not wrapped yet: each [`MdLine`] is one logical line with the indent
//! its continuation lines need, and [`super::wrap_md_lines`] fits them to a width.

use pulldown_cmark::{CodeBlockKind, Event, HeadingLevel, Options, Parser, Tag, TagEnd};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Span;

use super::highlight::{highlight_code, highlight_code_if_ready};
use super::sanitize::sanitize;
use super::wrap::display_width;

/// One logical line of rendered markdown.
#[derive(Debug, Clone, PartialEq)]
pub struct MdLine {
    pub spans: Vec<Span<'static>>,
    /// Columns of indent for continuation lines.
    pub indent: usize,
    /// Break anywhere and keep spaces (code), instead of breaking after words.
    pub hard: bool,
}

impl MdLine {
    fn blank() -> Self {
        MdLine {
            spans: Vec::new(),
            indent: 0,
            hard: false,
        }
    }
}

const OPTIONS: Options = Options::ENABLE_TABLES
    .union(Options::ENABLE_STRIKETHROUGH)
    .union(Options::ENABLE_TASKLISTS);

/// Renders markdown `text` (sanitised here first) into logical lines.
pub fn render_markdown(text: &str, code_theme: &str) -> Vec<MdLine> {
    let clean = sanitize(text);
    let mut lines = render_raw(&clean, code_theme, false, false).lines;
    trim_blank_end(&mut lines);
    lines
}

pub(super) fn trim_blank_end(lines: &mut Vec<MdLine>) {
    while lines.last().is_some_and(|line| line.spans.is_empty()) {
        lines.pop();
    }
}

/// A place where rendering can resume: the byte offset of a line that starts a final
/// top-level block, and the number of lines rendered before it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Checkpoint {
    pub offset: usize,
    pub lines: usize,
}

pub(super) struct Rendered {
    pub lines: Vec<MdLine>,
    pub checkpoint: Option<Checkpoint>,
}

/// Renders `clean` without trimming blank lines at the end, and finds the last
/// checkpoint. `prior_text` says the line before these ones has content.
///
/// With `streaming`, a code block whose syntax is not ready is shown unstyled rather
/// than stalling the frame (see [`highlight_code_if_ready`]), and no checkpoint
/// follows it, so the block is rendered again, highlighted, on a later call.
pub(super) fn render_raw(
    clean: &str,
    code_theme: &str,
    prior_text: bool,
    streaming: bool,
) -> Rendered {
    let mut renderer = Renderer {
        code_theme,
        prior_text,
        streaming,
        ..Renderer::default()
    };
    let mut depth = 0usize;
    let mut after_fence = false;
    let mut checkpoint = None;
    for (event, range) in Parser::new_ext(clean, OPTIONS).into_offset_iter() {
        if depth == 0 && matches!(event, Event::Start(_) | Event::Rule) {
            if let Some(offset) = resume_offset(clean, range.start, after_fence)
                && renderer.at_top_level()
                && !renderer.unstyled_code
            {
                checkpoint = Some(Checkpoint {
                    offset,
                    lines: renderer.lines.len(),
                });
            }
            after_fence = matches!(
                event,
                Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(_)))
            );
        }
        match event {
            Event::Start(_) => depth += 1,
            Event::End(_) => depth = depth.saturating_sub(1),
            _ => {}
        }
        renderer.event(event);
    }
    Rendered {
        lines: renderer.finish(),
        checkpoint,
    }
}

/// Returns the start of the line of a top-level block starting at `start` when
/// appended text can no longer change the blocks before it: its first line is
/// complete, and a blank line or a closed code fence comes before it.
fn resume_offset(clean: &str, start: usize, after_fence: bool) -> Option<usize> {
    let line_start = clean.get(..start)?.rfind('\n')? + 1;
    let indent = &clean[line_start..start];
    if !indent.chars().all(|c| c == ' ' || c == '\t') || !clean[start..].contains('\n') {
        return None;
    }
    let before = &clean[..line_start - 1];
    let previous = &before[before.rfind('\n').map_or(0, |i| i + 1)..];
    let blank_before = line_start >= 2 && previous.trim().is_empty();
    (after_fence || blank_before).then_some(line_start)
}

#[derive(Default)]
struct Renderer<'t> {
    code_theme: &'t str,
    /// Code blocks are highlighted only when that cannot stall.
    streaming: bool,
    /// A code block was shown unstyled because its syntax was not ready.
    unstyled_code: bool,
    /// The line before the first of `lines` has content (rendering resumed after it).
    prior_text: bool,
    lines: Vec<MdLine>,
    current: Vec<Span<'static>>,
    styles: Vec<Style>,
    quote_depth: usize,
    /// One entry per open list: the next number, or `None` for bullets.
    lists: Vec<Option<u64>>,
    /// The bullet of an item whose first line is not flushed yet.
    bullet: Option<String>,
    code: Option<(String, String)>,
    table: Option<Table>,
    link: Option<String>,
}

#[derive(Default)]
struct Table {
    rows: Vec<Vec<Vec<Span<'static>>>>,
    header_rows: usize,
}

impl Renderer<'_> {
    fn style(&self) -> Style {
        self.styles.last().copied().unwrap_or_default()
    }

    fn push_style(&mut self, change: impl FnOnce(Style) -> Style) {
        let next = change(self.style());
        self.styles.push(next);
    }

    fn text(&mut self, text: &str, style: Style) {
        if let Some((_, code)) = &mut self.code {
            code.push_str(text);
            return;
        }
        let span = Span::styled(text.to_owned(), style);
        if let Some(table) = &mut self.table {
            if let Some(cell) = table.rows.last_mut().and_then(|row| row.last_mut()) {
                cell.push(span);
            }
            return;
        }
        self.current.push(span);
    }

    fn event(&mut self, event: Event<'_>) {
        match event {
            Event::Start(tag) => self.start(tag),
            Event::End(tag) => self.end(tag),
            Event::Text(text) => self.text(&text, self.style()),
            Event::Code(code) => {
                let style = self.style().fg(Color::Yellow);
                self.text(&code, style);
            }
            Event::SoftBreak => self.text(" ", self.style()),
            Event::HardBreak => self.flush(false),
            Event::Rule => {
                self.flush(false);
                self.lines.push(MdLine {
                    spans: vec![Span::styled(
                        "─".repeat(24),
                        Style::new().fg(Color::DarkGray),
                    )],
                    indent: 0,
                    hard: true,
                });
                self.blank();
            }
            Event::Html(html) | Event::InlineHtml(html) => {
                let style = self.style().fg(Color::DarkGray);
                self.text(html.trim_end_matches('\n'), style);
            }
            Event::TaskListMarker(done) => {
                self.text(if done { "[x] " } else { "[ ] " }, self.style());
            }
            Event::FootnoteReference(name) => self.text(&format!("[^{name}]"), self.style()),
            Event::InlineMath(math) | Event::DisplayMath(math) => self.text(&math, self.style()),
        }
    }

    fn start(&mut self, tag: Tag<'_>) {
        match tag {
            Tag::Heading { level, .. } => {
                self.flush(false);
                let marker = "#".repeat(heading_depth(level));
                let style = Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD);
                self.current.push(Span::styled(
                    format!("{marker} "),
                    style.add_modifier(Modifier::DIM),
                ));
                self.styles.push(style);
            }
            Tag::Paragraph => self.flush(false),
            Tag::BlockQuote(_) => {
                self.flush(false);
                self.quote_depth += 1;
                self.push_style(|s| s.fg(Color::Gray).add_modifier(Modifier::ITALIC));
            }
            Tag::CodeBlock(kind) => {
                self.flush(false);
                let language = match kind {
                    CodeBlockKind::Fenced(tag) => {
                        tag.split([' ', ',']).next().unwrap_or("").to_owned()
                    }
                    CodeBlockKind::Indented => String::new(),
                };
                self.code = Some((language, String::new()));
            }
            Tag::List(start) => {
                self.flush(false);
                self.lists.push(start);
            }
            Tag::Item => {
                self.flush(false);
                let bullet = match self.lists.last_mut() {
                    Some(Some(number)) => {
                        let text = format!("{number}. ");
                        *number += 1;
                        text
                    }
                    _ => "• ".to_owned(),
                };
                self.bullet = Some(bullet);
            }
            Tag::Emphasis => self.push_style(|s| s.add_modifier(Modifier::ITALIC)),
            Tag::Strong => self.push_style(|s| s.add_modifier(Modifier::BOLD)),
            Tag::Strikethrough => self.push_style(|s| s.add_modifier(Modifier::CROSSED_OUT)),
            Tag::Link { dest_url, .. } => {
                self.link = Some(dest_url.to_string());
                self.push_style(|s| s.fg(Color::Blue).add_modifier(Modifier::UNDERLINED));
            }
            Tag::Image { .. } => self.push_style(|s| s.add_modifier(Modifier::DIM)),
            Tag::Table(_) => {
                self.flush(false);
                self.table = Some(Table::default());
            }
            Tag::TableHead | Tag::TableRow => {
                if let Some(table) = &mut self.table {
                    table.rows.push(Vec::new());
                }
            }
            Tag::TableCell => {
                if let Some(row) = self.table.as_mut().and_then(|t| t.rows.last_mut()) {
                    row.push(Vec::new());
                }
            }
            _ => {}
        }
    }

    fn end(&mut self, tag: TagEnd) {
        match tag {
            TagEnd::Heading(_) => {
                self.styles.pop();
                self.flush(true);
            }
            TagEnd::Paragraph => self.flush(self.lists.is_empty()),
            TagEnd::BlockQuote(_) => {
                self.flush(false);
                self.styles.pop();
                self.quote_depth = self.quote_depth.saturating_sub(1);
                self.blank();
            }
            TagEnd::CodeBlock => self.end_code(),
            TagEnd::List(_) => {
                self.flush(false);
                self.lists.pop();
                if self.lists.is_empty() {
                    self.blank();
                }
            }
            TagEnd::Item => self.flush(false),
            TagEnd::Emphasis | TagEnd::Strong | TagEnd::Strikethrough | TagEnd::Image => {
                self.styles.pop();
            }
            TagEnd::Link => {
                self.styles.pop();
                if let Some(url) = self.link.take() {
                    let shown: String = self.current.iter().map(|s| s.content.as_ref()).collect();
                    if !url.is_empty() && !shown.ends_with(&url) {
                        self.text(&format!(" ({url})"), Style::new().fg(Color::DarkGray));
                    }
                }
            }
            TagEnd::TableHead => {
                if let Some(table) = &mut self.table {
                    table.header_rows = table.rows.len();
                }
            }
            TagEnd::Table => self.end_table(),
            _ => {}
        }
    }

    /// Ends the current line, if it has content, adding the quote and list prefix.
    fn flush(&mut self, then_blank: bool) {
        if !self.current.is_empty() {
            let (mut prefix, indent) = self.prefix();
            prefix.append(&mut self.current);
            self.lines.push(MdLine {
                spans: prefix,
                indent,
                hard: false,
            });
        }
        if then_blank {
            self.blank();
        }
    }

    fn prefix(&mut self) -> (Vec<Span<'static>>, usize) {
        let mut spans = Vec::new();
        let mut width = 0;
        if self.quote_depth > 0 {
            let bars = "│ ".repeat(self.quote_depth);
            width += display_width(&bars);
            spans.push(Span::styled(bars, Style::new().fg(Color::DarkGray)));
        }
        if !self.lists.is_empty() {
            let nesting = "  ".repeat(self.lists.len() - 1);
            let marker = match self.bullet.take() {
                Some(bullet) => bullet,
                None => "  ".to_owned(),
            };
            let text = format!("{nesting}{marker}");
            width += display_width(&text);
            spans.push(Span::styled(text, Style::new().fg(Color::Cyan)));
        }
        (spans, width)
    }

    /// True between top-level blocks, with nothing carried over to the next one.
    fn at_top_level(&self) -> bool {
        self.current.is_empty()
            && self.styles.is_empty()
            && self.quote_depth == 0
            && self.lists.is_empty()
            && self.bullet.is_none()
            && self.code.is_none()
            && self.table.is_none()
            && self.link.is_none()
    }

    fn blank(&mut self) {
        let last_has_text = match self.lines.last() {
            Some(line) => !line.spans.is_empty(),
            None => self.prior_text,
        };
        if last_has_text {
            self.lines.push(MdLine::blank());
        }
    }

    fn end_code(&mut self) {
        let Some((language, code)) = self.code.take() else {
            return;
        };
        let (prefix, indent) = self.prefix();
        let gutter = Span::styled("▏ ", Style::new().fg(Color::DarkGray));
        let highlighted = if self.streaming {
            highlight_code_if_ready(&code, &language, self.code_theme)
        } else {
            Some(highlight_code(&code, &language, self.code_theme))
        };
        let highlighted = highlighted.unwrap_or_else(|| {
            self.unstyled_code = true;
            code.lines()
                .map(|line| vec![Span::raw(line.to_owned())])
                .collect()
        });
        for spans in highlighted {
            let mut line = prefix.clone();
            line.push(gutter.clone());
            line.extend(spans);
            self.lines.push(MdLine {
                spans: line,
                indent: indent + 2,
                hard: true,
            });
        }
        self.blank();
    }

    fn end_table(&mut self) {
        let Some(table) = self.table.take() else {
            return;
        };
        let columns = table.rows.iter().map(Vec::len).max().unwrap_or(0);
        let mut widths = vec![0; columns];
        for row in &table.rows {
            for (index, cell) in row.iter().enumerate() {
                let width = cell
                    .iter()
                    .map(|span| display_width(&span.content))
                    .sum::<usize>();
                widths[index] = widths[index].max(width);
            }
        }
        let border = Style::new().fg(Color::DarkGray);
        for (row_index, row) in table.rows.into_iter().enumerate() {
            let mut spans = Vec::new();
            for (index, cell) in row.into_iter().enumerate() {
                if index > 0 {
                    spans.push(Span::styled(" │ ", border));
                }
                let used: usize = cell.iter().map(|span| display_width(&span.content)).sum();
                let header = row_index < table.header_rows;
                spans.extend(cell.into_iter().map(|span| {
                    if header {
                        span.patch_style(Style::new().add_modifier(Modifier::BOLD))
                    } else {
                        span
                    }
                }));
                spans.push(Span::raw(" ".repeat(widths[index].saturating_sub(used))));
            }
            self.lines.push(MdLine {
                spans,
                indent: 0,
                hard: true,
            });
            if row_index + 1 == table.header_rows {
                let rule: Vec<String> = widths.iter().map(|w| "─".repeat(*w)).collect();
                self.lines.push(MdLine {
                    spans: vec![Span::styled(rule.join("─┼─"), border)],
                    indent: 0,
                    hard: true,
                });
            }
        }
        self.blank();
    }

    fn finish(mut self) -> Vec<MdLine> {
        if let Some((language, code)) = &self.code {
            // An unclosed fence while a reply is still streaming.
            let (language, code) = (language.clone(), code.clone());
            self.code = Some((language, code));
            self.end_code();
        }
        self.flush(false);
        self.lines
    }
}

fn heading_depth(level: HeadingLevel) -> usize {
    match level {
        HeadingLevel::H1 => 1,
        HeadingLevel::H2 => 2,
        HeadingLevel::H3 => 3,
        HeadingLevel::H4 => 4,
        HeadingLevel::H5 => 5,
        HeadingLevel::H6 => 6,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(text: &str) -> Vec<String> {
        render_markdown(text, "base16-ocean.dark")
            .iter()
            .map(|line| line.spans.iter().map(|s| s.content.as_ref()).collect())
            .collect()
    }

    #[test]
    fn heading_and_paragraph() {
        assert_eq!(
            render("# Title\n\nBody text."),
            vec!["# Title", "", "Body text."]
        );
    }

    #[test]
    fn emphasis_is_styled() {
        let lines = render_markdown("a *b* **c**", "base16-ocean.dark");
        let spans = &lines[0].spans;
        assert!(spans[1].style.add_modifier.contains(Modifier::ITALIC));
        assert!(spans[3].style.add_modifier.contains(Modifier::BOLD));
    }

    #[test]
    fn lists_get_bullets_and_numbers() {
        assert_eq!(render("- one\n- two\n"), vec!["• one", "• two"]);
        assert_eq!(render("3. a\n4. b\n"), vec!["3. a", "4. b"]);
        assert_eq!(render("- a\n  - b\n"), vec!["• a", "  • b"]);
    }

    #[test]
    fn list_continuation_indent() {
        let lines = render_markdown("- one two", "base16-ocean.dark");
        assert_eq!(lines[0].indent, 2);
    }

    #[test]
    fn quotes_get_bars() {
        assert_eq!(render("> quoted"), vec!["│ quoted"]);
    }

    #[test]
    fn fenced_code_is_highlighted() {
        let lines = render_markdown("```rust\nlet x = 1;\n```\n", "base16-ocean.dark");
        assert_eq!(lines.len(), 1);
        assert!(lines[0].hard);
        assert!(
            lines[0]
                .spans
                .iter()
                .any(|s| matches!(s.style.fg, Some(Color::Rgb(..))))
        );
    }

    #[test]
    fn unclosed_fence_still_renders() {
        assert_eq!(render("```\npartial"), vec!["▏ partial"]);
    }

    #[test]
    fn table_columns_align() {
        let lines = render("| a | bb |\n|---|---|\n| ccc | d |\n");
        assert_eq!(lines, vec!["a   │ bb", "────┼───", "ccc │ d "]);
    }

    #[test]
    fn link_shows_target() {
        assert_eq!(
            render("[docs](http://127.0.0.1/x)"),
            vec!["docs (http://127.0.0.1/x)"]
        );
    }

    #[test]
    fn escape_sequences_are_sanitised() {
        let lines = render("hi \u{1b}]0;pwned\u{7} \u{1b}[2J there");
        assert_eq!(lines, vec!["hi \u{241B} \u{241B} there"]);
    }
}
