//! Markdown of a reply that is still streaming, rendered again only from the last
//! block that can still change.

use super::markdown::{MdLine, render_raw, trim_blank_end};
use super::sanitize::sanitize;

/// Markdown of a growing text (a reply being streamed), rendered again on each call
/// from the last block that could still change.
///
/// A top-level block is final once a later block has started on a complete line after
/// a blank line or after a closing code fence: text appended later cannot join it to
/// the next block or change how it parses. The lines of final blocks are kept; a call
/// parses and renders only the rest. The result equals
/// [`render_markdown`](super::render_markdown) of the whole text, except that a code
/// block whose syntax is still being compiled in the background is shown unstyled for
/// a few frames rather than stalling one.
///
/// Sanitising is incremental too: no escape sequence or tab stop reaches past a
/// newline, so complete lines are sanitised once.
///
/// NOTE: the open block is rendered again whole on each call, so a long fenced code
/// block or table that is still streaming costs time in proportion to its length.
#[derive(Debug, Default, Clone)]
pub struct StreamingMarkdown {
    /// The raw text up to its last newline, as of the last call.
    raw_lines: String,
    /// `raw_lines`, sanitised.
    clean_lines: String,
    /// Bytes of `clean_lines` whose blocks are final.
    done_bytes: usize,
    /// Lines of the final blocks, with trailing blank lines kept.
    done: Vec<MdLine>,
    /// Bumped whenever `done` is rebuilt rather than extended.
    generation: u64,
    /// The text may hold a link reference definition, which changes links in earlier
    /// blocks: it is rendered whole from then on.
    whole: bool,
}

/// One rendering of a [`StreamingMarkdown`]: `done[..done_len]` followed by `tail`,
/// which equals [`render_markdown`](super::render_markdown) of the text apart from
/// code that is not highlighted yet.
#[derive(Debug)]
pub struct StreamedLines<'a> {
    /// Lines of the final blocks; they only grow until `generation` changes.
    pub done: &'a [MdLine],
    /// How many of `done` belong to this rendering (trailing blank lines are cut when
    /// nothing follows them).
    pub done_len: usize,
    pub tail: Vec<MdLine>,
    pub generation: u64,
}

impl StreamingMarkdown {
    pub fn render(&mut self, text: &str, code_theme: &str) -> StreamedLines<'_> {
        if !text.starts_with(self.raw_lines.as_str()) {
            self.start_over(true);
        }
        let new = &text[self.raw_lines.len()..];
        if let Some(newline) = new.rfind('\n') {
            let lines = &new[..=newline];
            self.clean_lines.push_str(&sanitize(lines));
            self.raw_lines.push_str(lines);
        }
        let last_line = sanitize(&text[self.raw_lines.len()..]);
        if !self.whole
            && (self.clean_lines[self.done_bytes..].contains("]:") || last_line.contains("]:"))
        {
            self.whole = true;
            self.start_over(false);
        }
        let mut tail_text =
            String::with_capacity(self.clean_lines.len() - self.done_bytes + last_line.len());
        tail_text.push_str(&self.clean_lines[self.done_bytes..]);
        tail_text.push_str(&last_line);
        let prior = self.done.last().is_some_and(|line| !line.spans.is_empty());
        let rendered = render_raw(&tail_text, code_theme, prior, true);
        let mut tail = rendered.lines;
        // A checkpoint always lies within complete lines, so inside `clean_lines`.
        if let Some(checkpoint) = rendered.checkpoint.filter(|_| !self.whole) {
            self.done_bytes += checkpoint.offset;
            self.done.extend(tail.drain(..checkpoint.lines));
        }
        trim_blank_end(&mut tail);
        let mut done_len = self.done.len();
        if tail.is_empty() {
            while done_len > 0 && self.done[done_len - 1].spans.is_empty() {
                done_len -= 1;
            }
        }
        StreamedLines {
            done: &self.done,
            done_len,
            tail,
            generation: self.generation,
        }
    }

    /// Forgets the final blocks, and with `text_changed` the sanitised text too.
    fn start_over(&mut self, text_changed: bool) {
        if self.done_bytes > 0 || !self.done.is_empty() {
            self.generation += 1;
        }
        self.done_bytes = 0;
        self.done.clear();
        if text_changed {
            self.raw_lines.clear();
            self.clean_lines.clear();
            self.whole = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::text::render_markdown;

    /// A reply with every kind of block, including ones that continue across blank
    /// lines (loose lists, code with blank lines, ordered lists).
    const STREAMED: &str = "# Plan\n\nFirst paragraph with *emphasis*, `code` and a [link](http://127.0.0.1/a).\nIt continues here.\n\n- one\n- two\n\n  still two\n- three\n\n1. first\n\n2. second\n\n10. tenth\n\n```rust\nfn main() {\n\n    let x = 1;\n}\n```\nRight after the fence.\n\n| a | b |\n|---|---|\n| 1 | 2 |\n| 3 | 4 |\n\n> quoted\n> more\n\n> second quote\n\n---\n\n    indented code\n\n    more indented\n\nSetext\n===\n\n<div>\nhtml\n</div>\n\nlast words\tand a tab\n";

    fn check_chunking(text: &str, seed: u64) {
        use rand::{Rng, SeedableRng};
        // Streamed code is highlighted only once its syntax has been used, and the
        // comparison needs it highlighted.
        crate::tui::text::highlight_code("fn main() {}", "rust", "base16-ocean.dark");
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut stream = StreamingMarkdown::default();
        let mut end = 0;
        while end < text.len() {
            let step = rng.random_range(1..=12);
            end = (end + step).min(text.len());
            while !text.is_char_boundary(end) {
                end += 1;
            }
            let prefix = &text[..end];
            let rendered = stream.render(prefix, "base16-ocean.dark");
            let mut lines = rendered.done[..rendered.done_len].to_vec();
            lines.extend(rendered.tail);
            assert_eq!(
                lines,
                render_markdown(prefix, "base16-ocean.dark"),
                "seed {seed}, after {end} bytes: {prefix:?}"
            );
        }
    }

    #[test]
    fn streamed_rendering_equals_full_rendering() {
        for seed in 0..40 {
            check_chunking(STREAMED, seed);
        }
    }

    /// Returns the lines of one rendering, how many of them are final, and whether its
    /// code line has colours.
    fn code_styled(stream: &mut StreamingMarkdown, text: &str) -> (Vec<MdLine>, usize, bool) {
        let rendered = stream.render(text, "base16-ocean.dark");
        let done_len = rendered.done_len;
        let mut lines = rendered.done[..rendered.done_len].to_vec();
        lines.extend(rendered.tail);
        let code = lines.iter().find(|line| {
            line.spans
                .iter()
                .any(|span| span.content.contains("module"))
        });
        let styled = code.is_some_and(|line| {
            line.spans
                .iter()
                .skip(1)
                .any(|span| span.style != ratatui::style::Style::default())
        });
        (lines, done_len, styled)
    }

    #[test]
    fn cold_syntax_code_is_not_kept_unstyled() {
        // Loads the syntax sets; no other test highlights Erlang.
        crate::tui::text::highlight_code("fn main() {}", "rust", "base16-ocean.dark");
        let text = "```erlang\n-module(m).\nf(X) -> X + 1.\n```\n\nAfter the code.\n\nMore.";
        let mut stream = StreamingMarkdown::default();
        let (_, done_len, styled) = code_styled(&mut stream, text);
        assert!(!styled, "the first rendering waited for the syntax");
        assert_eq!(done_len, 0, "unstyled code must stay open");

        // The syntax compiles in the background; a later rendering is highlighted.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let lines = loop {
            let (lines, _, styled) = code_styled(&mut stream, text);
            if styled {
                break lines;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the Erlang code was never highlighted"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        assert_eq!(lines, render_markdown(text, "base16-ocean.dark"));
    }

    #[test]
    fn streamed_rendering_reuses_finished_blocks() {
        let mut stream = StreamingMarkdown::default();
        // "three" may still become a list item or a table, so "two" stays open too.
        let rendered = stream.render("one\n\ntwo\n\nthree", "base16-ocean.dark");
        assert_eq!(rendered.done_len, 2, "{rendered:?}");
        assert_eq!(rendered.tail.len(), 3);
        let generation = rendered.generation;
        let rendered = stream.render("one\n\ntwo\n\nthree four\nfive", "base16-ocean.dark");
        assert_eq!(rendered.generation, generation);
        assert_eq!(rendered.done_len, 4, "{rendered:?}");
        assert_eq!(rendered.tail.len(), 1);
        // A text that no longer extends the finished part starts over.
        let rendered = stream.render("other", "base16-ocean.dark");
        assert_ne!(rendered.generation, generation);
        assert_eq!(rendered.done_len, 0);
    }

    #[test]
    fn streamed_rendering_with_link_definitions_and_escapes() {
        let text = "See [docs].\n\nMore \u{1b}]0;title\n\nstill\u{7} text.\n\n[docs]: http://127.0.0.1/d\n\nEnd.\n";
        for seed in 0..20 {
            check_chunking(text, seed);
        }
    }
}
