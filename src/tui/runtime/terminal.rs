//! Terminal setup and teardown. The terminal is restored on a normal exit, by the
//! panic hook before the panic message prints, and after SIGTERM or SIGHUP (the event
//! loop turns those into a normal exit).

use std::fs::File;
use std::io::{BufWriter, Write, stdout};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};

use crossterm::event::{
    DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture,
    KeyboardEnhancementFlags, PopKeyboardEnhancementFlags, PushKeyboardEnhancementFlags,
};
use crossterm::execute;
use crossterm::terminal::{
    Clear, ClearType, EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode,
    enable_raw_mode, supports_keyboard_enhancement,
};
use ratatui::backend::CrosstermBackend;
use ratatui::layout::Rect;
use ratatui::{Terminal, TerminalOptions, Viewport};

/// The terminal the app draws on. A frame is gathered in a buffer and written with one
/// system call when ratatui flushes, rather than through stdout's line buffer, which
/// writes every kilobyte. The viewport is fixed and follows resize events, so a draw
/// does not ask the terminal for its size.
pub type Tui = Terminal<CrosstermBackend<BufWriter<File>>>;

/// Bytes of one frame gathered before a write: a full redraw of a large screen.
const FRAME_BUFFER: usize = 256 * 1024;

/// Set while the terminal is in the app's mode, so restoring runs once.
static ACTIVE: AtomicBool = AtomicBool::new(false);
/// Set when keyboard enhancement flags were pushed and must be popped.
static ENHANCED: AtomicBool = AtomicBool::new(false);

/// Enters raw mode and the alternate screen, and turns on bracketed paste, mouse
/// capture and (when the terminal supports it) keyboard enhancement, which lets
/// Shift+Enter be told apart from Enter.
pub fn enter() -> std::io::Result<Tui> {
    install_panic_hook();
    enable_raw_mode()?;
    ACTIVE.store(true, Ordering::SeqCst);
    let mut out = stdout();
    execute!(
        out,
        EnterAlternateScreen,
        EnableBracketedPaste,
        EnableMouseCapture
    )?;
    if supports_keyboard_enhancement().unwrap_or(false) {
        execute!(
            out,
            PushKeyboardEnhancementFlags(KeyboardEnhancementFlags::DISAMBIGUATE_ESCAPE_CODES)
        )?;
        ENHANCED.store(true, Ordering::SeqCst);
    }
    // Cleared directly: `Terminal::clear` queries the terminal for the cursor position,
    // which some terminals and terminal emulators in tests never answer.
    execute!(out, Clear(ClearType::All))?;
    let (width, height) = crossterm::terminal::size()?;
    let screen = File::from(out.as_fd().try_clone_to_owned()?);
    let backend = CrosstermBackend::new(BufWriter::with_capacity(FRAME_BUFFER, screen));
    let viewport = Viewport::Fixed(Rect::new(0, 0, width, height));
    Terminal::with_options(backend, TerminalOptions { viewport })
}

/// Sets the drawing area after the terminal changed size, and clears the screen so
/// the next frame is drawn whole.
pub fn resize(terminal: &mut Tui, width: u16, height: u16) -> std::io::Result<()> {
    terminal.resize(Rect::new(0, 0, width, height))
}

/// Restores the terminal. Safe to call more than once.
pub fn restore() {
    if !ACTIVE.swap(false, Ordering::SeqCst) {
        return;
    }
    let mut out = stdout();
    if ENHANCED.swap(false, Ordering::SeqCst) {
        let _ = execute!(out, PopKeyboardEnhancementFlags);
    }
    let _ = execute!(
        out,
        DisableMouseCapture,
        DisableBracketedPaste,
        LeaveAlternateScreen,
        crossterm::cursor::Show
    );
    let _ = disable_raw_mode();
    let _ = out.flush();
}

/// Leaves the app's terminal mode so another program (the external editor) can use
/// the terminal; [`resume`] comes back.
pub fn suspend() {
    restore();
}

/// Returns to the app's terminal mode after [`suspend`], at the terminal's current
/// size, which may have changed meanwhile. The whole screen is drawn again on the
/// next frame.
pub fn resume(terminal: &mut Tui) -> std::io::Result<()> {
    enable_raw_mode()?;
    ACTIVE.store(true, Ordering::SeqCst);
    execute!(
        stdout(),
        EnterAlternateScreen,
        EnableBracketedPaste,
        EnableMouseCapture
    )?;
    if supports_keyboard_enhancement().unwrap_or(false) {
        execute!(
            stdout(),
            PushKeyboardEnhancementFlags(KeyboardEnhancementFlags::DISAMBIGUATE_ESCAPE_CODES)
        )?;
        ENHANCED.store(true, Ordering::SeqCst);
    }
    // Not `Terminal::clear`, which queries the terminal for the cursor position and
    // fails where the terminal never replies.
    let (width, height) = crossterm::terminal::size()?;
    resize(terminal, width, height)
}

fn install_panic_hook() {
    static INSTALLED: AtomicBool = AtomicBool::new(false);
    if INSTALLED.swap(true, Ordering::SeqCst) {
        return;
    }
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore();
        tracing::error!(%info, "panic");
        previous(info);
    }));
}
