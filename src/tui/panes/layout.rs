//! Where each pane goes. `update` uses the same layout for mouse clicks that drawing
//! uses, so both agree.

use ratatui::layout::{Constraint, Layout, Rect};

/// The rectangles of the screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Areas {
    pub assistants: Rect,
    pub threads: Rect,
    /// The history, or the instruction editor.
    pub main: Rect,
    pub composer: Rect,
    pub status: Rect,
}

/// Splits `area`: a left column for the lists, the main pane and composer on the
/// right, and two status lines at the bottom.
/// `composer_height` returns the composer's rows, borders included, for the width
/// inside its borders.
pub fn areas(area: Rect, _editor_open: bool, composer_height: impl Fn(u16) -> u16) -> Areas {
    let [body, status] = Layout::vertical([Constraint::Min(3), Constraint::Length(2)]).areas(area);
    let left_width = (body.width / 3).clamp(20, 36).min(body.width);
    let [left, right] =
        Layout::horizontal([Constraint::Length(left_width), Constraint::Min(10)]).areas(body);
    let [assistants, threads] =
        Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(left);
    let composer_height =
        composer_height(right.width.saturating_sub(2)).min(right.height.saturating_sub(3));
    let [main, composer] =
        Layout::vertical([Constraint::Min(3), Constraint::Length(composer_height)]).areas(right);
    Areas {
        assistants,
        threads,
        main,
        composer,
        status,
    }
}
