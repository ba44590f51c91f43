//! Removal of terminal escape sequences and control characters.
//!
//! Each escape sequence (ESC, CSI, OSC, DCS, SOS, PM, APC, in their 7-bit and C1 forms)
//! becomes one visible `␛`; other C0 controls become their Unicode control pictures
//! (`␇` for BEL), other C1 controls and DEL become `�` and `␡`, bidirectional overrides
//! are dropped, and tabs are expanded to the next multiple of [`TAB_WIDTH`] columns.
//! Newlines are kept; a carriage return before a newline is dropped.
//!
//! Emoji joiners, skin-tone modifiers and variation selectors are dropped too. Terminals
//! disagree on how wide a joined or modified emoji is (tmux draws each part of
//! `👨‍👩‍👧` in two columns), while `unicode-width` counts the whole sequence as two, so a
//! line holding one would push the border out. Without them every emoji stands alone,
//! so its measured width matches what such terminals draw.
//! NOTE: flags (regional-indicator pairs) and keycaps are left as they are.

use std::borrow::Cow;

use unicode_width::UnicodeWidthChar;

/// Columns between tab stops.
pub const TAB_WIDTH: usize = 4;

/// What replaces a whole escape sequence.
const ESCAPE_PLACEHOLDER: char = '\u{241B}';

/// Returns `input` with every escape sequence and control character made harmless.
pub fn sanitize(input: &str) -> Cow<'_, str> {
    if !input.chars().any(needs_care) {
        return Cow::Borrowed(input);
    }
    let mut out = String::with_capacity(input.len());
    let mut column = 0usize;
    let mut chars = input.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' => {
                out.push('\n');
                column = 0;
            }
            '\t' => {
                let spaces = TAB_WIDTH - column % TAB_WIDTH;
                out.extend(std::iter::repeat_n(' ', spaces));
                column += spaces;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\u{1b}' => {
                skip_escape(&mut chars);
                out.push(ESCAPE_PLACEHOLDER);
                column += 1;
            }
            '\u{9b}' | '\u{9d}' | '\u{90}' | '\u{98}' | '\u{9e}' | '\u{9f}' => {
                skip_c1_sequence(c, &mut chars);
                out.push(ESCAPE_PLACEHOLDER);
                column += 1;
            }
            c if is_bidi_control(c) || is_emoji_joiner(c) => {}
            c if (c as u32) < 0x20 => {
                out.push(char::from_u32(0x2400 + c as u32).unwrap_or('\u{FFFD}'));
                column += 1;
            }
            '\u{7f}' => {
                out.push('\u{2421}');
                column += 1;
            }
            c if ('\u{80}'..='\u{9f}').contains(&c) => {
                out.push('\u{FFFD}');
                column += 1;
            }
            c => {
                out.push(c);
                column += c.width().unwrap_or(0);
            }
        }
    }
    Cow::Owned(out)
}

/// Sanitises a string that must stay on one line, such as a name: newlines become
/// spaces as well.
pub fn sanitize_line(input: &str) -> String {
    let clean = sanitize(input);
    if clean.contains('\n') {
        clean.replace('\n', " ")
    } else {
        clean.into_owned()
    }
}

fn needs_care(c: char) -> bool {
    (c < ' ' && c != '\n')
        || ('\u{7f}'..='\u{9f}').contains(&c)
        || is_bidi_control(c)
        || is_emoji_joiner(c)
}

/// Characters that glue emoji into one picture: the zero-width joiner, the skin-tone
/// modifiers and the text/emoji variation selectors.
fn is_emoji_joiner(c: char) -> bool {
    matches!(
        c,
        '\u{200D}' | '\u{FE0E}' | '\u{FE0F}' | '\u{1F3FB}'..='\u{1F3FF}'
    )
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

type Chars<'a> = std::iter::Peekable<std::str::Chars<'a>>;

/// Skips what follows an ESC: a CSI, a string sequence, or a short escape.
fn skip_escape(chars: &mut Chars<'_>) {
    match chars.peek().copied() {
        Some('[') => {
            chars.next();
            skip_csi_body(chars);
        }
        Some(']' | 'P' | 'X' | '^' | '_') => {
            chars.next();
            skip_string_body(chars);
        }
        Some(c) if (' '..='/').contains(&c) => {
            // Intermediate bytes, then one final byte (for example `ESC ( B`).
            while chars.next_if(|c| (' '..='/').contains(c)).is_some() {}
            chars.next_if(|c| ('0'..='~').contains(c));
        }
        Some(c) if ('0'..='~').contains(&c) => {
            chars.next();
        }
        _ => {}
    }
}

fn skip_c1_sequence(introducer: char, chars: &mut Chars<'_>) {
    if introducer == '\u{9b}' {
        skip_csi_body(chars);
    } else {
        skip_string_body(chars);
    }
}

/// Skips parameter and intermediate bytes up to and including the final byte.
fn skip_csi_body(chars: &mut Chars<'_>) {
    while let Some(c) = chars.peek().copied() {
        if ('0'..='?').contains(&c) || (' '..='/').contains(&c) {
            chars.next();
        } else {
            if ('@'..='~').contains(&c) {
                chars.next();
            }
            return;
        }
    }
}

/// Skips the body of OSC, DCS, SOS, PM and APC up to the string terminator (BEL, ST or
/// `ESC \`). A newline also ends it, so an unterminated sequence cannot hide the rest
/// of a message.
fn skip_string_body(chars: &mut Chars<'_>) {
    while let Some(c) = chars.peek().copied() {
        match c {
            '\u{7}' | '\u{9c}' => {
                chars.next();
                return;
            }
            '\u{1b}' => {
                chars.next();
                chars.next_if_eq(&'\\');
                return;
            }
            '\n' => return,
            _ => {
                chars.next();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean(input: &str) -> String {
        sanitize(input).into_owned()
    }

    fn has_no_controls(text: &str) -> bool {
        text.chars().all(|c| !needs_care(c))
    }

    #[test]
    fn plain_text_is_borrowed() {
        assert!(matches!(sanitize("héllo\nwörld 你好"), Cow::Borrowed(_)));
    }

    #[test]
    fn osc_title_change_is_removed() {
        let out = clean("a\u{1b}]0;pwned\u{7}b");
        assert_eq!(out, "a\u{241B}b");
    }

    #[test]
    fn osc_with_st_terminator_is_removed() {
        assert_eq!(clean("x\u{1b}]8;;http://e\u{1b}\\y"), "x\u{241B}y");
    }

    #[test]
    fn csi_clear_screen_is_removed() {
        assert_eq!(
            clean("\u{1b}[2J\u{1b}[1;31mred\u{1b}[0m"),
            "\u{241B}\u{241B}red\u{241B}"
        );
    }

    #[test]
    fn c1_csi_and_dcs_are_removed() {
        assert_eq!(clean("a\u{9b}31mb"), "a\u{241B}b");
        assert_eq!(clean("a\u{90}qpayload\u{9c}b"), "a\u{241B}b");
        assert_eq!(clean("a\u{1b}Pq#0;2\u{1b}\\b"), "a\u{241B}b");
    }

    #[test]
    fn unterminated_osc_stops_at_newline() {
        assert_eq!(clean("a\u{1b}]0;title\nvisible"), "a\u{241B}\nvisible");
    }

    #[test]
    fn lone_escape_at_end_is_placeholder() {
        assert_eq!(clean("end\u{1b}"), "end\u{241B}");
        assert_eq!(clean("\u{1b}["), "\u{241B}");
    }

    #[test]
    fn charset_escape_is_removed() {
        assert_eq!(clean("\u{1b}(Bok"), "\u{241B}ok");
        assert_eq!(clean("\u{1b}7saved\u{1b}8"), "\u{241B}saved\u{241B}");
    }

    #[test]
    fn c0_controls_become_pictures() {
        assert_eq!(clean("bell\u{7}"), "bell\u{2407}");
        assert_eq!(clean("back\u{8}space"), "back\u{2408}space");
        assert_eq!(clean("nul\u{0}"), "nul\u{2400}");
        assert_eq!(clean("del\u{7f}"), "del\u{2421}");
    }

    #[test]
    fn carriage_returns_are_handled() {
        assert_eq!(clean("a\r\nb"), "a\nb");
        assert_eq!(clean("over\rwrite"), "over\u{240D}write");
    }

    #[test]
    fn other_c1_controls_become_replacement() {
        assert_eq!(clean("a\u{85}b"), "a\u{FFFD}b");
    }

    #[test]
    fn bidi_overrides_are_dropped() {
        assert_eq!(clean("abc\u{202E}fed\u{2066}"), "abcfed");
    }

    #[test]
    fn tabs_expand_to_tab_stops() {
        assert_eq!(clean("\tx"), "    x");
        assert_eq!(clean("ab\tc"), "ab  c");
        assert_eq!(clean("abcd\te\n\tf"), "abcd    e\n    f");
        assert_eq!(clean("你\tx"), "你  x");
    }

    #[test]
    fn sanitize_line_joins_lines() {
        assert_eq!(
            sanitize_line("name\nwith\u{1b}[2J break"),
            "name with\u{241B} break"
        );
    }

    #[test]
    fn every_byte_mix_comes_out_clean() {
        let nasty: String = (0u32..0x200).filter_map(char::from_u32).collect();
        let out = clean(&nasty);
        assert!(has_no_controls(&out), "{out:?}");
        let doubled = format!("{nasty}\u{1b}]0;x{nasty}\u{1b}[{nasty}");
        assert!(has_no_controls(&clean(&doubled)));
    }

    /// Returns the width a terminal that draws every code point on its own uses.
    fn drawn_width(text: &str) -> usize {
        text.chars().map(|c| c.width().unwrap_or(0)).sum()
    }

    const FAMILY: &str = "\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}";
    const THUMB_MEDIUM: &str = "\u{1F44D}\u{1F3FD}";
    const RED_HEART: &str = "\u{2764}\u{FE0F}";

    #[test]
    fn emoji_sequences_measure_as_drawn() {
        use unicode_width::UnicodeWidthStr;
        assert_eq!(FAMILY.width(), 2, "unicode-width joins the family");
        for text in [
            FAMILY,
            THUMB_MEDIUM,
            RED_HEART,
            "a\u{1F3F3}\u{FE0F}\u{200D}\u{1F308}b",
        ] {
            let out = clean(text);
            assert_eq!(out.width(), drawn_width(&out), "{out:?}");
        }
        assert_eq!(clean(FAMILY), "\u{1F468}\u{1F469}\u{1F467}");
        assert_eq!(clean(FAMILY).width(), 6);
        assert_eq!(clean(THUMB_MEDIUM), "\u{1F44D}");
        assert_eq!(clean(RED_HEART), "\u{2764}");
        assert_eq!(
            sanitize_line(&format!("{FAMILY}\t|")),
            "\u{1F468}\u{1F469}\u{1F467}  |"
        );
    }

    #[test]
    fn emoji_line_keeps_the_border_aligned() {
        use ratatui::Terminal;
        use ratatui::backend::TestBackend;
        use ratatui::widgets::{Block, Borders, Paragraph};
        use unicode_width::UnicodeWidthStr;

        let text = format!("{FAMILY} family\n{THUMB_MEDIUM} ok {RED_HEART}\nplain");
        let clean_text: String = clean(&text);
        let mut terminal = match Terminal::new(TestBackend::new(20, 5)) {
            Ok(terminal) => terminal,
            Err(err) => panic!("test backend: {err}"),
        };
        let drawn = terminal.draw(|frame| {
            let block = Block::default().borders(Borders::ALL);
            frame.render_widget(
                Paragraph::new(clean_text.as_str()).block(block),
                frame.area(),
            );
        });
        if let Err(err) = drawn {
            panic!("draw: {err}");
        }
        let buffer = terminal.backend().buffer();
        for y in 0..5 {
            // What reaches the terminal: each cell's symbol, skipping the cells that
            // ratatui leaves behind a symbol it measures as wide.
            let mut row = String::new();
            let mut x = 0;
            while let Some(cell) = buffer.cell((x, y)) {
                row.push_str(cell.symbol());
                x += u16::try_from(cell.symbol().width().max(1)).unwrap_or(1);
            }
            assert_eq!(drawn_width(&row), 20, "row {y}: {row:?}");
            assert!(row.ends_with(['│', '┐', '┘']), "row {y}: {row:?}");
        }
    }
}
