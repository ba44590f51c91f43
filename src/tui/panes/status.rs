//! The status bar: server, model, rate limit and stream state on the first line. The
//! second line has the last error, if any, and the key hints of the focused pane.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::api::client::RetryReason;
use crate::engine::gguf::ModelStatus;

use super::super::app::{App, Dialog};
use super::super::text::sanitize_line;

pub fn draw(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let lines = vec![state_line(app), hints_line(app)];
    frame.render_widget(Paragraph::new(lines), area);
}

fn state_line(app: &App) -> Line<'static> {
    let dim = app.styles.dim();
    let sep = || Span::styled(" │ ", Style::new().fg(ratatui::style::Color::DarkGray));
    let mut spans = vec![Span::styled(
        format!(" {}", sanitize_line(&app.server_label)),
        Style::new().fg(app.styles.accent),
    )];
    match &app.engine_status {
        Some(ModelStatus::Loading) => {
            spans.push(sep());
            spans.push(Span::styled("loading model…", dim));
        }
        Some(status @ ModelStatus::Failed(_)) => {
            spans.push(sep());
            spans.push(Span::styled(
                sanitize_line(&status.to_string()),
                Style::new().fg(app.styles.error),
            ));
        }
        Some(ModelStatus::Ready) | None => {}
    }
    // The server picks its default model when an assistant names none.
    if let Some(assistant) = app
        .assistants
        .selected()
        .filter(|assistant| !assistant.model.is_empty())
    {
        spans.push(sep());
        spans.push(Span::raw(sanitize_line(&assistant.model)));
    }
    if let (Some(limit), Some(reset)) = (&app.rate_limit, app.rate_limit_reset_secs()) {
        // Once the window has reset, the whole limit is available again until the
        // next response reports another count.
        let text = if reset == 0 {
            format!("{0}/{0} req", limit.limit)
        } else {
            format!(
                "{}/{} req, resets in {reset}s",
                limit.remaining, limit.limit
            )
        };
        spans.push(sep());
        spans.push(Span::styled(text, dim));
    }
    if let Some(retry) = &app.retry {
        let left = retry.until.saturating_duration_since(app.now).as_secs();
        let why = match &retry.notice.reason {
            RetryReason::RateLimited => "rate limited".to_owned(),
            RetryReason::ServerError(status) => format!("server error {status}"),
            RetryReason::Transport(_) => "connection failed".to_owned(),
        };
        spans.push(sep());
        spans.push(Span::styled(
            format!("{why}, retry {} in {left}s", retry.notice.attempt),
            Style::new().fg(app.styles.error),
        ));
    }
    if let Some(stream) = &app.stream {
        spans.push(sep());
        let text = match &app.transcript.active {
            _ if stream.connecting => "connecting…".to_owned(),
            Some(active) => {
                let elapsed = app
                    .now
                    .saturating_duration_since(active.started)
                    .as_secs_f32();
                format!("streaming {} tokens, {elapsed:.1}s", active.tokens)
            }
            None => "streaming".to_owned(),
        };
        spans.push(Span::styled(text, Style::new().fg(app.styles.assistant)));
    } else if let Some(run) = &app.tool_run {
        // A call whose approval dialog is open has left the queue but not started.
        let asking = app
            .dialogs
            .iter()
            .filter(|dialog| matches!(dialog, Dialog::ToolApproval { .. }))
            .count();
        spans.push(sep());
        spans.push(Span::styled(
            format!(
                "tools: {} waiting",
                run.queue.len() + usize::from(run.running.is_some()) + asking
            ),
            Style::new().fg(app.styles.tool),
        ));
    }
    Line::from(spans)
}

/// Builds the second line: the last error, when there is one, then the key hints.
/// The error goes first on a line of its own so that a long message, and the retry
/// advice at its end, is not cut off by the state before it.
fn hints_line(app: &App) -> Line<'static> {
    let key = Style::new()
        .fg(app.styles.accent)
        .add_modifier(Modifier::BOLD);
    let mut spans = vec![Span::raw(" ")];
    if let Some(error) = &app.error {
        let text = format!(
            "✗ {}: {} (Esc dismisses)",
            sanitize_line(&error.code),
            sanitize_line(&error.message)
        );
        spans.push(Span::styled(
            text,
            Style::new()
                .fg(app.styles.error)
                .add_modifier(Modifier::BOLD),
        ));
        spans.push(Span::raw("  "));
    }
    let hints = match app.dialogs.last() {
        Some(dialog) => super::dialog::choices(app, dialog),
        None => app.keys.hints(app.context()),
    };
    for (index, (chord, description)) in hints.into_iter().enumerate() {
        if index > 0 {
            spans.push(Span::raw("  "));
        }
        spans.push(Span::styled(chord, key));
        spans.push(Span::styled(format!(" {description}"), app.styles.dim()));
    }
    Line::from(spans)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Instant;

    use super::*;
    use crate::config::Config;

    fn first_line(app: &App) -> String {
        state_line(app)
            .spans
            .iter()
            .map(|span| span.content.as_ref())
            .collect()
    }

    #[test]
    fn local_model_state_follows_the_label() {
        let mut app = App::new(
            "local".to_owned(),
            &Config::default(),
            Instant::now(),
            BTreeMap::new(),
        );
        assert_eq!(
            first_line(&app),
            " local",
            "a remote server shows no model state"
        );

        app.set_engine_status(ModelStatus::Loading);
        assert_eq!(first_line(&app), " local │ loading model…");

        app.set_engine_status(ModelStatus::Failed("bad\u{1b}[2J file".to_owned()));
        let line = first_line(&app);
        assert!(
            line.starts_with(" local │ model failed to load: bad"),
            "{line}"
        );
        assert!(
            !line.contains('\u{1b}'),
            "escape sequences are stripped: {line:?}"
        );

        app.set_engine_status(ModelStatus::Ready);
        assert_eq!(first_line(&app), " local");
    }

    #[test]
    fn empty_model_adds_no_separator() {
        let mut app = crate::tui::app::tests::loaded_app();
        app.assistants.items[0].model = String::new();
        assert_eq!(first_line(&app), " local");
    }
}
