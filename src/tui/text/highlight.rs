//! Syntax highlighting of fenced code with syntect. The syntax and theme sets load once,
//! on first use or in the background when [`preload`] is called.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex, Once, OnceLock};

use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Span;
use syntect::easy::HighlightLines;
use syntect::highlighting::{FontStyle, Theme, ThemeSet};
use syntect::parsing::{SyntaxReference, SyntaxSet};
use syntect::util::LinesWithEndings;

static SYNTAXES: OnceLock<SyntaxSet> = OnceLock::new();
static THEMES: OnceLock<ThemeSet> = OnceLock::new();

/// Syntaxes by name whose first highlight has started, with `true` once it finished.
/// syntect compiles a syntax's regular expressions when they are first matched, which
/// takes tens of milliseconds for a large syntax such as Python's.
static FIRST_USE: LazyLock<Mutex<HashMap<String, bool>>> = LazyLock::new(Mutex::default);

fn syntaxes() -> &'static SyntaxSet {
    SYNTAXES.get_or_init(SyntaxSet::load_defaults_newlines)
}

fn themes() -> &'static ThemeSet {
    THEMES.get_or_init(ThemeSet::load_defaults)
}

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
                syntaxes();
                themes();
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
    let lines = highlight_now(code, language, theme_name);
    if let Some(syntax) = find_syntax(language)
        && let Ok(mut first_use) = FIRST_USE.lock()
    {
        first_use.insert(syntax.name.clone(), true);
    }
    lines
}

/// Highlights as [`highlight_code`] does when that cannot stall: the syntax sets are
/// loaded and the language's syntax has been used before. Otherwise it returns `None`
/// and prepares what is missing on a background thread, so a later call succeeds.
pub fn highlight_code_if_ready(
    code: &str,
    language: &str,
    theme_name: &str,
) -> Option<Vec<Vec<Span<'static>>>> {
    if SYNTAXES.get().is_none() || THEMES.get().is_none() {
        preload();
        return None;
    }
    let Some(syntax) = find_syntax(language) else {
        return Some(highlight_now(code, language, theme_name));
    };
    let Ok(mut first_use) = FIRST_USE.lock() else {
        return Some(highlight_now(code, language, theme_name));
    };
    match first_use.get(&syntax.name) {
        Some(true) => {
            drop(first_use);
            Some(highlight_now(code, language, theme_name))
        }
        Some(false) => None,
        None => {
            first_use.insert(syntax.name.clone(), false);
            drop(first_use);
            let owned = (code.to_owned(), language.to_owned(), theme_name.to_owned());
            let warm_up = std::thread::Builder::new()
                .name("syntax-compile".to_owned())
                .spawn(move || highlight_code(&owned.0, &owned.1, &owned.2));
            match warm_up {
                Ok(_) => None,
                Err(err) => {
                    tracing::debug!(%err, "cannot compile a syntax in the background");
                    Some(highlight_code(code, language, theme_name))
                }
            }
        }
    }
}

fn find_syntax(language: &str) -> Option<&'static SyntaxReference> {
    if language.is_empty() {
        return None;
    }
    syntaxes().find_syntax_by_token(language)
}

fn highlight_now(code: &str, language: &str, theme_name: &str) -> Vec<Vec<Span<'static>>> {
    let syntax = find_syntax(language);
    let (Some(syntax), Some(theme)) = (syntax, theme(theme_name)) else {
        return code
            .lines()
            .map(|line| vec![Span::raw(line.to_owned())])
            .collect();
    };
    let mut highlighter = HighlightLines::new(syntax, theme);
    let mut out = Vec::new();
    for line in LinesWithEndings::from(code) {
        let spans = match highlighter.highlight_line(line, syntaxes()) {
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
    let themes = themes();
    themes
        .themes
        .get(name)
        .or_else(|| themes.themes.get(FALLBACK_THEME))
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
