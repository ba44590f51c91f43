//! The help overlay: every binding, from the same table that handles keys.
//!
//! Sections are laid out in as few columns as fit the screen's height, up to three as
//! long as each column keeps room for readable descriptions. The key column is as wide
//! as the longest key list up to [`MAX_KEY_WIDTH`], and a longer key list takes its own
//! line. A long description wraps onto indented continuation lines. A section header always
//! stays with its first entry. When the list is taller than the overlay, it scrolls and
//! the bottom border says so.

use ratatui::Frame;
use ratatui::layout::{Rect, Size};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use super::super::app::App;
use super::super::text::{display_width, wrap_line};
use super::{centered, title_style};

/// Widest key column; a longer key list goes on a line of its own.
const MAX_KEY_WIDTH: usize = 16;
/// Narrowest description a column may leave before fewer columns are used.
const MIN_DESCRIPTION: usize = 20;
const MAX_COLUMNS: usize = 3;
/// Widest the overlay gets.
const POPUP_WIDTH: u16 = 110;

/// The overlay's lines cut into columns.
struct Layout {
    columns: Vec<Vec<Line<'static>>>,
    /// Rows of the tallest column.
    height: usize,
}

pub fn draw(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let (popup, inner, layout) = place(app, area);
    let visible = usize::from(inner.height);
    let max_offset = layout.height.saturating_sub(visible);
    let offset = app.help_scroll.min(max_offset);
    let mut block = frame_block(app);
    if let Some(marker) = scroll_marker(offset, max_offset) {
        block = block.title_bottom(Line::styled(marker, app.styles.dim()).right_aligned());
    }
    frame.render_widget(Clear, popup);
    frame.render_widget(block, popup);
    let count = u16::try_from(layout.columns.len().max(1)).unwrap_or(1);
    let width = inner.width / count;
    let scroll = u16::try_from(offset).unwrap_or(u16::MAX);
    for (index, lines) in layout.columns.into_iter().enumerate() {
        let x = inner.x + width * u16::try_from(index).unwrap_or(0);
        let column = Rect::new(x, inner.y, width, inner.height);
        frame.render_widget(Paragraph::new(lines).scroll((scroll, 0)), column);
    }
}

/// Returns the largest useful scroll offset for a screen of `size`.
pub fn max_scroll(app: &App, size: Size) -> usize {
    let (_, inner, layout) = place(app, Rect::new(0, 0, size.width, size.height));
    layout.height.saturating_sub(usize::from(inner.height))
}

fn frame_block(app: &App) -> Block<'static> {
    Block::default()
        .borders(Borders::ALL)
        .border_style(title_style(app))
        .title(" Keys · ? or F1 or Esc closes ")
}

/// Lays the bindings out for `area` and returns the overlay, its inside and the
/// columns. The overlay is only as tall as the columns need.
fn place(app: &App, area: Rect) -> (Rect, Rect, Layout) {
    let full = centered(area, POPUP_WIDTH, area.height);
    let inner = frame_block(app).inner(full);
    let layout = arrange(app, inner.width, inner.height);
    let needed = u16::try_from(layout.height + 2).unwrap_or(u16::MAX);
    let popup = centered(area, POPUP_WIDTH, needed);
    (popup, frame_block(app).inner(popup), layout)
}

fn scroll_marker(offset: usize, max_offset: usize) -> Option<&'static str> {
    match (offset > 0, offset < max_offset) {
        (_, true) => Some(" ↓ more below · j/k PgUp/PgDn scroll "),
        (true, false) => Some(" ↑ more above "),
        (false, false) => None,
    }
}

/// Picks the fewest columns that show everything, or else the most that stay readable.
fn arrange(app: &App, width: u16, height: u16) -> Layout {
    let sections = app.keys.help_sections();
    let key_width = sections
        .iter()
        .flat_map(|(_, rows)| rows.iter().map(|(keys, _)| display_width(keys)))
        .filter(|&w| w <= MAX_KEY_WIDTH)
        .max()
        .unwrap_or(0);
    let mut best = None;
    for count in 1..=MAX_COLUMNS {
        let column_width = usize::from(width) / count;
        // One column of gap on the right of each column.
        let text_width = column_width.saturating_sub(1);
        if count > 1 && text_width < key_width + 3 + MIN_DESCRIPTION {
            break;
        }
        let groups = groups(app, &sections, key_width, text_width);
        let layout = pack(groups, count);
        let fits = layout.height <= usize::from(height);
        best = Some(layout);
        if fits {
            break;
        }
    }
    best.unwrap_or(Layout {
        columns: Vec::new(),
        height: 0,
    })
}

type Sections = [(&'static str, Vec<(String, &'static str)>)];

/// Cuts the sections into groups of lines that must stay in one column: one per
/// entry, the first entry of a section together with the section's header.
fn groups(
    app: &App,
    sections: &Sections,
    key_width: usize,
    text_width: usize,
) -> Vec<Vec<Line<'static>>> {
    let header_style = Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED);
    let key_style = Style::new()
        .fg(app.styles.accent)
        .add_modifier(Modifier::BOLD);
    let mut out = Vec::new();
    for (title, rows) in sections {
        for (index, (keys, description)) in rows.iter().enumerate() {
            let mut group = Vec::new();
            if index == 0 {
                group.push(Line::from(Span::styled(*title, header_style)));
            }
            group.extend(entry(keys, description, key_width, text_width, key_style));
            out.push(group);
        }
    }
    out
}

/// Lines of one binding: ` keys  description`, the description wrapped under itself.
fn entry(
    keys: &str,
    description: &str,
    key_width: usize,
    text_width: usize,
    key_style: Style,
) -> Vec<Line<'static>> {
    let indent = key_width + 3;
    let description_width = text_width.saturating_sub(indent).max(1);
    let mut lines = Vec::new();
    let keys_width = display_width(keys);
    let first_prefix = if keys_width > key_width {
        // Too long for the key column: keys alone, the description below.
        lines.push(Line::from(Span::styled(format!(" {keys}"), key_style)));
        None
    } else {
        let pad = " ".repeat(key_width - keys_width);
        Some(Span::styled(format!(" {keys}{pad}  "), key_style))
    };
    let wrapped = wrap_line(
        &[Span::raw(description.to_owned())],
        description_width,
        0,
        false,
    );
    for (index, line) in wrapped.into_iter().enumerate() {
        let prefix = match (&first_prefix, index) {
            (Some(prefix), 0) => prefix.clone(),
            _ => Span::raw(" ".repeat(indent)),
        };
        let mut spans = vec![prefix];
        spans.extend(line.spans);
        lines.push(Line::from(spans));
    }
    lines
}

/// Places the groups in order into `count` columns, as short as they can be.
fn pack(groups: Vec<Vec<Line<'static>>>, count: usize) -> Layout {
    let sizes: Vec<usize> = groups.iter().map(Vec::len).collect();
    let total: usize = sizes.iter().sum();
    let tallest = sizes.iter().copied().max().unwrap_or(0);
    let mut height = total.div_ceil(count.max(1)).max(tallest);
    // Bounded: at `total` rows everything fits in one column.
    while height < total && columns_needed(&sizes, height) > count {
        height += 1;
    }
    let mut columns: Vec<Vec<Line<'static>>> = vec![Vec::new()];
    for group in groups {
        let used = columns.last().map_or(0, Vec::len);
        if used > 0 && used + group.len() > height {
            columns.push(Vec::new());
        }
        if let Some(column) = columns.last_mut() {
            column.extend(group);
        }
    }
    let height = columns.iter().map(Vec::len).max().unwrap_or(0);
    Layout { columns, height }
}

fn columns_needed(sizes: &[usize], height: usize) -> usize {
    let mut columns = 1;
    let mut used = 0;
    for &size in sizes {
        if used > 0 && used + size > height {
            columns += 1;
            used = 0;
        }
        used += size;
    }
    columns
}

#[cfg(test)]
mod tests {
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    use super::super::super::action::Action;
    use super::super::super::app::tests::loaded_app;
    use super::*;

    fn press(app: &mut App, code: KeyCode) {
        app.update(Action::Key(KeyEvent::new(code, KeyModifiers::NONE)));
    }

    fn screen(app: &mut App, width: u16, height: u16) -> Vec<String> {
        app.update(Action::Resize(width, height));
        let mut terminal = match Terminal::new(TestBackend::new(width, height)) {
            Ok(terminal) => terminal,
            Err(err) => panic!("test backend: {err}"),
        };
        if let Err(err) = terminal.draw(|frame| super::super::draw(frame, app)) {
            panic!("draw: {err}");
        }
        let buffer = terminal.backend().buffer();
        (0..height)
            .map(|y| {
                (0..width)
                    .filter_map(|x| buffer.cell((x, y)))
                    .map(|cell| cell.symbol())
                    .collect()
            })
            .collect()
    }

    fn open_help() -> App {
        let mut app = loaded_app();
        press(&mut app, KeyCode::Char('?'));
        app
    }

    /// Collects every screen from the top of the overlay to its end, one page at a time.
    fn all_pages(app: &mut App, width: u16, height: u16) -> Vec<Vec<String>> {
        let mut pages = vec![screen(app, width, height)];
        for _ in 0..20 {
            let before = app.help_scroll;
            press(app, KeyCode::PageDown);
            if app.help_scroll == before {
                break;
            }
            pages.push(screen(app, width, height));
        }
        pages
    }

    #[test]
    fn every_binding_is_readable_at_80x24() {
        let mut app = open_help();
        let pages = all_pages(&mut app, 80, 24);
        assert!(pages.len() > 1, "80x24 needs scrolling");
        let text = pages.concat().join("\n");
        assert!(!text.contains('…'), "{text}");
        for (title, rows) in app.keys.help_sections() {
            assert!(text.contains(title), "{title} missing");
            for (keys, description) in rows {
                assert!(text.contains(&keys), "{keys} missing");
                for word in description.split(' ') {
                    assert!(text.contains(word), "{word} of {description} missing");
                }
            }
        }
        assert!(pages[0][23].contains("more below"), "{:?}", pages[0][23]);
        let last = pages
            .last()
            .map(|page| page[23].clone())
            .unwrap_or_default();
        assert!(last.contains("more above"), "{last:?}");
    }

    #[test]
    fn descriptions_line_up_and_wrap_under_themselves() {
        let text = entry("Ctrl+C", "quit (stops a reply first)", 12, 30, Style::new());
        let lines: Vec<String> = text.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                " Ctrl+C        quit (stops a",
                "               reply first)"
            ]
        );
        let long = entry(
            "Alt+Enter/Ctrl+J/Shift+Enter",
            "newline",
            12,
            30,
            Style::new(),
        );
        let lines: Vec<String> = long.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [" Alt+Enter/Ctrl+J/Shift+Enter", "               newline"]
        );
    }

    #[test]
    fn header_never_ends_a_column() {
        let app = open_help();
        for (width, height) in [(80, 24), (80, 12), (120, 40), (60, 20), (110, 16)] {
            let layout = arrange(&app, width, height);
            for column in &layout.columns {
                let last = column.last().map(|line| line.spans.len());
                // Headers are a single span; every entry line has at least two.
                assert_ne!(last, Some(1), "{width}x{height}");
            }
        }
    }

    #[test]
    fn scrolling_stops_at_both_ends() {
        let mut app = open_help();
        screen(&mut app, 80, 24);
        let max = max_scroll(&app, Size::new(80, 24));
        assert!(max > 0);
        for _ in 0..50 {
            press(&mut app, KeyCode::Char('j'));
        }
        assert_eq!(app.help_scroll, max);
        press(&mut app, KeyCode::Up);
        assert_eq!(app.help_scroll, max - 1);
        press(&mut app, KeyCode::PageUp);
        assert_eq!(app.help_scroll, 0);
        press(&mut app, KeyCode::Char('G'));
        assert_eq!(app.help_scroll, max);
        insta::assert_snapshot!("help_scrolled_80x24", screen(&mut app, 80, 24).join("\n"));
        press(&mut app, KeyCode::Esc);
        assert!(!app.help);
        press(&mut app, KeyCode::Char('?'));
        assert_eq!(app.help_scroll, 0, "reopened help starts at the top");
    }

    #[test]
    fn large_screen_needs_no_scrolling() {
        let app = open_help();
        assert_eq!(max_scroll(&app, Size::new(120, 40)), 0);
    }
}
