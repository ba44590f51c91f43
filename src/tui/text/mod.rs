//! Text preparation for drawing: sanitising server strings, measuring and wrapping by
//! display width, and rendering markdown into styled lines.
//!
//! Every string that came from the server goes through [`sanitize`] before it reaches a
//! ratatui buffer, so escape sequences and control characters can never act on the
//! terminal.

mod highlight;
mod markdown;
mod sanitize;
mod streaming;
mod wrap;

pub use highlight::{highlight_code, preload as preload_highlighting};
pub use markdown::{MdLine, render_markdown};
pub use sanitize::{TAB_WIDTH, sanitize, sanitize_line};
pub use streaming::{StreamedLines, StreamingMarkdown};
pub use wrap::{
    LineStart, display_width, extends_line, truncate_to_width, wrap_line, wrap_line_from,
    wrap_md_lines,
};
