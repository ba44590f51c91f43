//! Syntax highlighting of fenced code with syntect. The syntax and theme sets load once,
//! on first use or in the background when [`preload`] is called.

use std::sync::{LazyLock, Once};

use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Span;
use syntect::easy::HighlightLines;
use syntect::highlighting::{FontStyle, Theme, ThemeSet};
use syntect::parsing::SyntaxSet;
use syntect::util::LinesWithEndings;

static SYNTAXES: LazyLock<SyntaxSet> = LazyLock::new(SyntaxSet::load_defaults_newlines);
static THEMES: LazyLock<ThemeSet> = LazyLock::new(ThemeSet::load_defaults);

/// Starts loading the syntax and theme sets on a thread of their own. Loading takes
/// tens of milliseconds, which would otherwise stall the frame that first shows a code
/// block, for instance in the middle of a streamed reply. Later calls do nothing, and
/// a highlight requested while loading waits for it to finish.
pub fn preload() {
    static STARTED: Once = Once::new();
    STARTED.call_once(|| {
        let loader = std::thread::Builder::new()
            .name("syntax-load".to_owned())
            .spawn(|| {
                LazyLock::force(&SYNTAXES);
                LazyLock::force(&THEMES);
            });
        if let Err(err) = loader {
            tracing::debug!(%err, "cannot load syntaxes in the background; loading on first use");
        }
    });
}

/// Theme used when the configured one does not exist.
const FALLBACK_THEME: &str = "base16-ocean.dark";

/// Highlights `code` written in `language` (a fence tag such as `rust` or `py`) and
/// returns one list of spans per line. Unknown languages come back unstyled.
pub fn highlight_code(code: &str, language: &str, theme_name: &str) -> Vec<Vec<Span<'static>>> {
    let syntax = SYNTAXES
        .find_syntax_by_token(language)
        .filter(|_| !language.is_empty());
    let (Some(syntax), Some(theme)) = (syntax, theme(theme_name)) else {
        return code
            .lines()
            .map(|line| vec![Span::raw(line.to_owned())])
            .collect();
    };
    let mut highlighter = HighlightLines::new(syntax, theme);
    let mut out = Vec::new();
    for line in LinesWithEndings::from(code) {
        let spans = match highlighter.highlight_line(line, &SYNTAXES) {
            Ok(ranges) => ranges
                .into_iter()
                .map(|(style, text)| {
                    let text = text.trim_end_matches(['\n', '\r']).to_owned();
                    Span::styled(text, convert(style))
                })
                .filter(|span| !span.content.is_empty())
                .collect(),
            Err(err) => {
                tracing::debug!(%err, "syntax highlighting failed on one line");
                vec![Span::raw(line.trim_end_matches(['\n', '\r']).to_owned())]
            }
        };
        out.push(spans);
    }
    out
}

fn theme(name: &str) -> Option<&'static Theme> {
    THEMES
        .themes
        .get(name)
        .or_else(|| THEMES.themes.get(FALLBACK_THEME))
}

fn convert(style: syntect::highlighting::Style) -> Style {
    let fg = style.foreground;
    let mut out = Style::new().fg(Color::Rgb(fg.r, fg.g, fg.b));
    if style.font_style.contains(FontStyle::BOLD) {
        out = out.add_modifier(Modifier::BOLD);
    }
    if style.font_style.contains(FontStyle::ITALIC) {
        out = out.add_modifier(Modifier::ITALIC);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_code_gets_colours() {
        let lines = highlight_code(
            "fn main() {\n    let x = 1;\n}\n",
            "rust",
            "base16-ocean.dark",
        );
        assert_eq!(lines.len(), 3);
        let colours: std::collections::HashSet<_> = lines
            .iter()
            .flatten()
            .filter_map(|span| span.style.fg)
            .collect();
        assert!(
            colours.len() > 1,
            "expected several colours, got {colours:?}"
        );
        let text: String = lines[1].iter().map(|span| span.content.as_ref()).collect();
        assert_eq!(text, "    let x = 1;");
    }

    #[test]
    fn unknown_language_is_plain() {
        let lines = highlight_code("a\nb", "no-such-language", "base16-ocean.dark");
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0][0].style, Style::default());
    }

    #[test]
    fn unknown_theme_falls_back() {
        let lines = highlight_code("x = 1\n", "python", "no-such-theme");
        assert!(lines[0].iter().any(|span| span.style.fg.is_some()));
    }
}
