//! Output of the scripting subcommands: JSON, aligned tables, and server text made
//! safe for a terminal.
//!
//! Every string that came from the server goes through [`Sanitizer`] before it reaches
//! a terminal, so a name or reply cannot move the cursor, change colours, set the
//! window title or reverse the text direction. `--json` output is the API's data and is
//! not changed, because JSON escapes control characters anyway.

#![allow(clippy::print_stdout)]

use std::io::Write;

use serde::Serialize;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use crate::api::client::RetryNotice;
use crate::api::types::Page;

use super::error::CliError;

/// Maximum width of a table cell, in terminal columns. Longer cells end with `…`.
const MAX_CELL_WIDTH: usize = 48;

/// Maximum length of an escape string (OSC, DCS and similar) that is dropped. After it
/// the sanitizer treats the rest as text, so an unterminated one cannot hide a reply.
const MAX_ESCAPE_STRING: usize = 512;

/// Removes terminal control sequences and control characters from text that may
/// arrive in pieces: a sequence split across two [`Sanitizer::push`] calls is still
/// removed whole. Newlines and tabs are kept.
#[derive(Debug, Default)]
pub struct Sanitizer {
    state: EscapeState,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum EscapeState {
    #[default]
    Text,
    /// After ESC.
    Escape,
    /// Inside `ESC [` (CSI) parameters.
    Csi,
    /// Inside a string sequence (OSC, DCS, SOS, PM, APC) after this many characters.
    String(usize),
    /// After ESC inside a string sequence, where `\` ends it.
    StringEscape,
}

impl Sanitizer {
    /// Returns the safe part of `input`, keeping state for the next piece.
    pub fn push(&mut self, input: &str) -> String {
        let mut out = String::with_capacity(input.len());
        for c in input.chars() {
            if let Some(kept) = self.step(c) {
                out.push(kept);
            }
        }
        out
    }

    fn step(&mut self, c: char) -> Option<char> {
        use EscapeState::*;
        let (next, kept) = match self.state {
            Text => match c {
                '\x1b' => (Escape, None),
                '\u{9b}' => (Csi, None),
                '\u{90}' | '\u{98}' | '\u{9d}' | '\u{9e}' | '\u{9f}' => (String(0), None),
                '\n' | '\t' => (Text, Some(c)),
                c if c.is_control() || is_bidi_control(c) => (Text, None),
                c => (Text, Some(c)),
            },
            Escape => match c {
                '[' => (Csi, None),
                ']' | 'P' | 'X' | '^' | '_' => (String(0), None),
                '\u{20}'..='\u{2f}' => (Escape, None),
                _ => (Text, None),
            },
            Csi => match c {
                '\u{20}'..='\u{3f}' => (Csi, None),
                _ => (Text, None),
            },
            String(count) => match c {
                '\x07' | '\u{9c}' => (Text, None),
                '\x1b' => (StringEscape, None),
                _ if count >= MAX_ESCAPE_STRING => (Text, None),
                _ => (String(count + 1), None),
            },
            StringEscape => (Text, None),
        };
        self.state = next;
        kept
    }
}

/// Unicode characters that reorder the text around them.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}')
}

/// Returns `text` without control sequences; newlines and tabs are kept.
pub fn sanitize_text(text: &str) -> String {
    Sanitizer::default().push(text)
}

/// Returns `text` as one line without control sequences.
pub fn sanitize_line(text: &str) -> String {
    sanitize_text(text).replace(['\n', '\t'], " ")
}

/// Returns the stderr line shown before a retry, so that a wait does not look like a
/// hang.
pub fn retry_line(notice: &RetryNotice) -> String {
    format!(
        "retrying in {:.1} s (attempt {}): {}",
        notice.delay.as_secs_f64(),
        notice.attempt,
        sanitize_line(&notice.reason.to_string())
    )
}

/// Prints a value as pretty JSON.
pub fn print_json<T: Serialize>(value: &T) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|err| CliError::Failed("output_error", format!("cannot encode JSON: {err}")))?;
    println!("{text}");
    Ok(())
}

/// Prints text as it is; it must already be sanitized.
pub fn print_text(text: &str) {
    print!("{text}");
    let _ = std::io::stdout().flush();
}

/// Columns of text, aligned by display width. Cells are sanitized as they are added.
#[derive(Debug)]
pub struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&'static str]) -> Self {
        Table {
            headers: headers.to_vec(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows
            .push(cells.iter().map(|cell| fit(&sanitize_line(cell))).collect());
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Returns the table as lines, each ending in a newline.
    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.width()).collect();
        for row in &self.rows {
            for (index, cell) in row.iter().enumerate() {
                if let Some(width) = widths.get_mut(index) {
                    *width = (*width).max(cell.width());
                }
            }
        }
        let headers: Vec<String> = self.headers.iter().map(|h| (*h).to_owned()).collect();
        let mut out = String::new();
        for row in std::iter::once(&headers).chain(&self.rows) {
            let last = row.len().saturating_sub(1);
            for (index, cell) in row.iter().enumerate() {
                out.push_str(cell);
                if index < last {
                    let column = widths.get(index).copied().unwrap_or(0);
                    let pad = column.saturating_sub(cell.width());
                    out.push_str(&" ".repeat(pad + 2));
                }
            }
            out.push('\n');
        }
        out
    }
}

/// Cuts a cell to [`MAX_CELL_WIDTH`] columns.
fn fit(cell: &str) -> String {
    if cell.width() <= MAX_CELL_WIDTH {
        return cell.to_owned();
    }
    let mut out = String::new();
    let mut width = 0;
    for c in cell.chars() {
        let char_width = UnicodeWidthChar::width(c).unwrap_or(0);
        if width + char_width > MAX_CELL_WIDTH - 1 {
            break;
        }
        width += char_width;
        out.push(c);
    }
    out.push('…');
    out
}

/// Prints a list command's table (unless the page is empty) and its footer.
pub fn print_page<T>(table: &Table, page: &Page<T>, offset: u32) {
    if !table.is_empty() {
        print_text(&table.render());
    }
    print_text(&page_footer(
        page.data.len(),
        offset,
        page.total,
        page.has_more,
    ));
}

/// Describes where a page sits in the whole list, with the flag for the next page.
pub fn page_footer(shown: usize, offset: u32, total: u64, has_more: bool) -> String {
    if shown == 0 {
        return format!("no items at offset {offset} (total {total})\n");
    }
    let first = u64::from(offset) + 1;
    let last = u64::from(offset) + shown as u64;
    let mut line = format!("{first}-{last} of {total}");
    if has_more {
        line.push_str(&format!("; next page: --offset {last}"));
    }
    line.push('\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_line_names_wait_and_reason() {
        let notice = RetryNotice {
            attempt: 2,
            delay: std::time::Duration::from_millis(1250),
            reason: crate::api::client::RetryReason::RateLimited,
        };
        assert_eq!(
            retry_line(&notice),
            "retrying in 1.2 s (attempt 2): rate limited (429)"
        );
    }

    #[test]
    fn escape_sequences_are_removed() {
        let cases = [
            ("plain text\n", "plain text\n"),
            ("\x1b[31mred\x1b[0m", "red"),
            ("\x1b]0;title\x07after", "after"),
            ("\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\", "link"),
            ("bell\x07 and back\x08space\r", "bell and backspace"),
            ("\u{202e}reversed", "reversed"),
            ("\u{9b}2Jclear", "clear"),
            ("tab\tkept", "tab\tkept"),
        ];
        for (input, expected) in cases {
            assert_eq!(sanitize_text(input), expected, "input {input:?}");
        }
    }

    #[test]
    fn sequence_split_across_pushes() {
        let mut sanitizer = Sanitizer::default();
        let first = sanitizer.push("one \x1b[3");
        let second = sanitizer.push("1mtwo");
        assert_eq!(first, "one ");
        assert_eq!(second, "two");
    }

    #[test]
    fn unterminated_string_sequence_is_bounded() {
        let text = format!("\x1b]{}", "x".repeat(MAX_ESCAPE_STRING + 10));
        let kept = sanitize_text(&text);
        assert!(kept.len() < 20, "{kept:?}");
    }

    #[test]
    fn table_aligns_wide_characters() {
        let mut table = Table::new(&["ID", "NAME"]);
        table.row(vec!["asst_1".into(), "日本".into()]);
        table.row(vec!["asst_22".into(), "x\x1b[2Jy".into()]);
        assert_eq!(
            table.render(),
            "ID       NAME\nasst_1   日本\nasst_22  xy\n"
        );
    }

    #[test]
    fn long_cell_is_cut() {
        let cell = fit(&"é".repeat(100));
        assert_eq!(cell.width(), MAX_CELL_WIDTH);
        assert!(cell.ends_with('…'));
    }

    #[test]
    fn footer_names_next_offset() {
        assert_eq!(
            page_footer(20, 0, 45, true),
            "1-20 of 45; next page: --offset 20\n"
        );
        assert_eq!(page_footer(5, 40, 45, false), "41-45 of 45\n");
        assert_eq!(
            page_footer(0, 50, 45, false),
            "no items at offset 50 (total 45)\n"
        );
    }
}
