//! Display-width measurement and wrapping of styled lines.
//!
//! Widths come from `unicode-width`: CJK and most emoji take two columns, combining
//! marks none. A line never breaks before a zero-width character, so a combining mark
//! stays with its base.

use ratatui::style::Style;
use ratatui::text::{Line, Span};
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use super::markdown::MdLine;

/// Returns the number of terminal columns `text` takes.
pub fn display_width(text: &str) -> usize {
    text.width()
}

/// Returns the longest prefix of `text` that fits in `width` columns, with `…` when
/// something was cut.
pub fn truncate_to_width(text: &str, width: usize) -> String {
    if text.width() <= width {
        return text.to_owned();
    }
    if width == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w > width - 1 {
            break;
        }
        out.push(c);
        used += w;
    }
    out.push('…');
    out
}

/// Wraps every markdown line to `width` columns.
pub fn wrap_md_lines(lines: &[MdLine], width: usize) -> Vec<Line<'static>> {
    let mut out = Vec::with_capacity(lines.len());
    for line in lines {
        out.extend(wrap_line(&line.spans, width, line.indent, line.hard));
    }
    out
}

/// Wraps styled spans into lines of at most `width` columns. Continuation lines start
/// with `indent` spaces. Without `hard`, lines break after a space when one is on the
/// line; words longer than a line are broken anywhere.
pub fn wrap_line(
    spans: &[Span<'static>],
    width: usize,
    indent: usize,
    hard: bool,
) -> Vec<Line<'static>> {
    wrap_line_from(spans, width, indent, hard, LineStart::default()).0
}

/// The start of a wrapped line: its number among the lines of its source line, and
/// the span and byte offset of its first character.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LineStart {
    pub line: usize,
    pub span: usize,
    pub byte: usize,
}

/// Wraps `spans` as [`wrap_line`] does, starting at `from`, and returns the lines from
/// `from.line` on with the start of the last of them.
///
/// `from` must be the start of a line that an earlier call returned for a prefix of
/// the same spans, at the same width, indent and `hard`: the start of its last line,
/// or of any line before it. Lines before the last are unchanged by text appended
/// later, because each of them ended where a character did not fit, so a text that
/// grows needs only its last line wrapped again.
pub fn wrap_line_from(
    spans: &[Span<'static>],
    width: usize,
    indent: usize,
    hard: bool,
    from: LineStart,
) -> (Vec<Line<'static>>, LineStart) {
    let width = width.max(1);
    let indent = if indent * 2 > width { 0 } else { indent };
    let whole = from == LineStart::default();
    if whole {
        let total: usize = spans.iter().map(|span| span.content.width()).sum();
        if total <= width {
            return (vec![Line::from(spans.to_vec())], from);
        }
    }
    let cells = flatten(spans, from);
    let mut lines = Vec::new();
    let mut start = 0;
    let mut number = from.line;
    let mut last = from;
    while start < cells.len() {
        let first = number == 0;
        let available = if first { width } else { width - indent };
        let end = break_point(&cells, start, available, hard);
        let mut line_spans = Vec::new();
        if !first && indent > 0 {
            line_spans.push(Span::raw(" ".repeat(indent)));
        }
        let mut trimmed_end = end;
        if !hard {
            while trimmed_end > start && cells[trimmed_end - 1].ch == ' ' {
                trimmed_end -= 1;
            }
        }
        line_spans.extend(group(&cells[start..trimmed_end], spans));
        lines.push(Line::from(line_spans));
        last = LineStart {
            line: number,
            span: cells[start].span,
            byte: cells[start].byte,
        };
        number += 1;
        start = end;
        if !hard {
            while start < cells.len() && cells[start].ch == ' ' {
                start += 1;
            }
        }
    }
    if lines.is_empty() && whole {
        lines.push(Line::default());
    }
    (lines, last)
}

/// Returns whether `new` is `old` with text appended: the same indent and wrapping,
/// and the same spans, except that the last span of `old` may have grown (keeping its
/// style) and more spans may follow.
pub fn extends_line(old: &MdLine, new: &MdLine) -> bool {
    if old.indent != new.indent || old.hard != new.hard || new.spans.len() < old.spans.len() {
        return false;
    }
    let Some((last, before)) = old.spans.split_last() else {
        return true;
    };
    let grown = &new.spans[before.len()];
    before == &new.spans[..before.len()]
        && grown.style == last.style
        && grown.content.starts_with(last.content.as_ref())
}

#[derive(Clone, Copy)]
struct Cell {
    ch: char,
    width: usize,
    span: usize,
    /// Byte offset of `ch` in its span.
    byte: usize,
}

/// Returns the characters of `spans` from `from` on.
fn flatten(spans: &[Span<'static>], from: LineStart) -> Vec<Cell> {
    let mut cells = Vec::new();
    for (index, span) in spans.iter().enumerate().skip(from.span) {
        let skip = if index == from.span { from.byte } else { 0 };
        let Some(text) = span.content.get(skip..) else {
            continue;
        };
        for (offset, ch) in text.char_indices() {
            cells.push(Cell {
                ch,
                width: ch.width().unwrap_or(0),
                span: index,
                byte: skip + offset,
            });
        }
    }
    cells
}

/// Returns the index one past the last cell of the line that starts at `start`.
fn break_point(cells: &[Cell], start: usize, available: usize, hard: bool) -> usize {
    let mut used = 0;
    let mut last_space = None;
    for (index, cell) in cells.iter().enumerate().skip(start) {
        if cell.width > 0 && used + cell.width > available && index > start {
            if !hard && let Some(space) = last_space {
                return space + 1;
            }
            return index;
        }
        used += cell.width;
        if cell.ch == ' ' {
            last_space = Some(index);
        }
    }
    cells.len()
}

/// Rebuilds spans from consecutive cells that share a source span.
fn group(cells: &[Cell], spans: &[Span<'static>]) -> Vec<Span<'static>> {
    let mut out: Vec<Span<'static>> = Vec::new();
    let mut current = String::new();
    let mut current_span = None;
    for cell in cells {
        if current_span != Some(cell.span) {
            if let Some(index) = current_span {
                out.push(Span::styled(
                    std::mem::take(&mut current),
                    style_of(spans, index),
                ));
            }
            current_span = Some(cell.span);
        }
        current.push(cell.ch);
    }
    if let Some(index) = current_span {
        out.push(Span::styled(current, style_of(spans, index)));
    }
    out
}

fn style_of(spans: &[Span<'static>], index: usize) -> Style {
    spans.get(index).map(|span| span.style).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(lines: &[Line<'static>]) -> Vec<String> {
        lines.iter().map(|line| line.to_string()).collect()
    }

    fn wrap(text: &str, width: usize) -> Vec<String> {
        texts(&wrap_line(&[Span::raw(text.to_owned())], width, 0, false))
    }

    #[test]
    fn short_line_is_unchanged() {
        assert_eq!(wrap("hello", 10), vec!["hello"]);
    }

    #[test]
    fn breaks_at_spaces() {
        assert_eq!(
            wrap("the quick brown fox", 10),
            vec!["the quick", "brown fox"]
        );
    }

    #[test]
    fn long_word_is_broken() {
        assert_eq!(wrap("abcdefghijkl", 5), vec!["abcde", "fghij", "kl"]);
    }

    #[test]
    fn cjk_counts_two_columns() {
        let lines = wrap("你好世界你好", 5);
        assert_eq!(lines, vec!["你好", "世界", "你好"]);
        for line in &lines {
            assert!(display_width(line) <= 5, "{line}");
        }
    }

    #[test]
    fn emoji_counts_two_columns() {
        assert_eq!(display_width("😀"), 2);
        let lines = wrap("😀😀😀", 4);
        assert_eq!(lines, vec!["😀😀", "😀"]);
    }

    #[test]
    fn combining_mark_stays_with_base() {
        // "e" + combining acute, four times: four columns.
        let text = "e\u{301}e\u{301}e\u{301}e\u{301}";
        assert_eq!(display_width(text), 4);
        let lines = wrap(text, 2);
        assert_eq!(lines, vec!["e\u{301}e\u{301}", "e\u{301}e\u{301}"]);
    }

    #[test]
    fn wide_char_in_one_column_still_progresses() {
        let lines = wrap("你好", 1);
        assert_eq!(lines, vec!["你", "好"]);
    }

    #[test]
    fn styles_survive_wrapping() {
        let bold = Style::new().bold();
        let spans = vec![Span::raw("plain "), Span::styled("bold words here", bold)];
        let lines = wrap_line(&spans, 12, 0, false);
        assert_eq!(texts(&lines), vec!["plain bold", "words here"]);
        assert_eq!(lines[1].spans[0].style, bold);
    }

    #[test]
    fn continuation_lines_are_indented() {
        let spans = vec![Span::raw("- one two three four")];
        let lines = wrap_line(&spans, 10, 2, false);
        assert_eq!(texts(&lines), vec!["- one two", "  three", "  four"]);
    }

    #[test]
    fn hard_wrap_keeps_spaces() {
        let lines = wrap_line(&[Span::raw("a  b  c  d")], 4, 0, true);
        assert_eq!(texts(&lines), vec!["a  b", "  c ", " d"]);
    }

    /// Wraps `text` whole, and again by resuming at the last line of each of its
    /// prefixes, and checks that both give the same lines.
    fn check_resume(spans: &[Span<'static>], width: usize, indent: usize, hard: bool) {
        let whole = wrap_line(spans, width, indent, hard);
        let total: usize = spans.iter().map(|span| span.content.len()).sum();
        for cut in 0..=total {
            let Some(prefix) = cut_spans(spans, cut) else {
                continue;
            };
            let (mut lines, last) =
                wrap_line_from(&prefix, width, indent, hard, LineStart::default());
            lines.truncate(last.line);
            let (more, _) = wrap_line_from(spans, width, indent, hard, last);
            lines.extend(more);
            assert_eq!(
                texts(&lines),
                texts(&whole),
                "cut at byte {cut}, width {width}"
            );
            assert_eq!(lines, whole, "styles differ; cut at byte {cut}");
        }
    }

    /// Returns the first `bytes` bytes of `spans`, or `None` inside a character.
    fn cut_spans(spans: &[Span<'static>], mut bytes: usize) -> Option<Vec<Span<'static>>> {
        let mut out = Vec::new();
        for span in spans {
            if bytes == 0 {
                break;
            }
            let take = bytes.min(span.content.len());
            let text = span.content.get(..take)?;
            out.push(Span::styled(text.to_owned(), span.style));
            bytes -= take;
        }
        Some(out)
    }

    #[test]
    fn resumed_wrap_equals_whole_wrap() {
        let bold = Style::new().bold();
        let spans = vec![
            Span::raw("plain words then "),
            Span::styled("bold words 你好世界 and e\u{301}e\u{301}", bold),
            Span::raw("  two spaces and averyveryverylongword at the end "),
        ];
        for width in [1, 3, 7, 10, 16] {
            check_resume(&spans, width, 0, false);
            check_resume(&spans, width, 2, false);
            check_resume(&spans, width, 0, true);
        }
    }

    #[test]
    fn grown_line_extends_old_one() {
        let bold = Style::new().bold();
        let line = |spans: Vec<Span<'static>>| MdLine {
            spans,
            indent: 0,
            hard: false,
        };
        let old = line(vec![Span::raw("a "), Span::styled("bo", bold)]);
        let grown = line(vec![Span::raw("a "), Span::styled("bold", bold)]);
        let more = line(vec![
            Span::raw("a "),
            Span::styled("bold", bold),
            Span::raw(" more"),
        ]);
        let restyled = line(vec![Span::raw("a "), Span::raw("bold")]);
        let changed = line(vec![Span::raw("b "), Span::styled("bold", bold)]);
        assert!(extends_line(&old, &grown));
        assert!(extends_line(&old, &more));
        assert!(extends_line(&line(Vec::new()), &more));
        assert!(!extends_line(&old, &restyled));
        assert!(!extends_line(&old, &changed));
        assert!(!extends_line(&more, &old));
        let mut indented = grown.clone();
        indented.indent = 2;
        assert!(!extends_line(&old, &indented));
    }

    #[test]
    fn truncate_adds_ellipsis() {
        assert_eq!(truncate_to_width("hello world", 6), "hello…");
        assert_eq!(truncate_to_width("你好世界", 5), "你好…");
        assert_eq!(truncate_to_width("short", 10), "short");
    }
}
