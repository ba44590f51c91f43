//! The runtime: terminal setup and teardown, the event loop, and the tasks that carry
//! out effects.
//!
//! One `select!` waits on terminal input, the channel of task results and signals, and
//! a timer. The loop drains every waiting event before it draws, and draws only when
//! the state changed, at most once per [`FRAME`]. Network and disk work run in
//! spawned tasks, so a slow server never blocks keys.

pub mod store;
mod tasks;
pub mod terminal;

use std::time::{Duration, Instant};

use crossterm::event::{Event, EventStream, KeyEventKind};
use futures::StreamExt;
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

use crate::api::client::RetryObserver;

use super::action::{Action, Effect};
use super::app::App;
use super::panes;
use super::{Launch, StatusProbe};
use store::LocalStore;
use tasks::Tasks;
use terminal::Tui;

/// Shortest time between two frames (60 per second).
const FRAME: Duration = Duration::from_micros(16_667);
/// Shortest time between two frames that only show more streamed text (40 per
/// second). Text then reaches the screen within 25 ms plus the time of one frame,
/// and a long reply costs a third fewer frames. Keys and other events keep [`FRAME`].
const STREAM_FRAME: Duration = Duration::from_millis(25);
/// Timer period: status countdowns and draft saves.
const TICK: Duration = Duration::from_millis(250);
/// Most events applied before a frame is considered, so a flood cannot starve drawing.
const MAX_DRAIN: usize = 4096;

/// Runs the app on a new single-threaded tokio runtime, or on the current one when
/// called from inside a runtime.
pub fn run(launch: Launch) -> anyhow::Result<()> {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => tokio::task::block_in_place(|| handle.block_on(run_async(launch))),
        Err(_) => {
            // One thread: the app's work is small and mostly waiting, and stream events
            // then reach the loop without waking another thread.
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(run_async(launch))
        }
    }
}

async fn run_async(launch: Launch) -> anyhow::Result<()> {
    let (sender, receiver) = unbounded_channel();
    let retry_sender = sender.clone();
    let observer: RetryObserver = std::sync::Arc::new(move |notice| {
        let _ = retry_sender.send(Action::Retrying(notice.clone()));
    });
    let client = launch.client.with_retry_observer(observer);
    let store = LocalStore::open(&launch.paths.data_dir);
    let drafts = store.drafts.clone();
    let last_thread = store.last_thread.clone();
    let tasks = Tasks::new(client, store, sender.clone());
    let mut app = App::new(launch.server_label, &launch.config, Instant::now(), drafts);
    app.restore = last_thread.map(|last| (last.assistant_id, last.thread_id));
    let probe = launch.engine_status;
    poll_engine(&mut app, probe.as_ref());
    spawn_signal_watch(sender);
    let mut terminal = terminal::enter()?;
    let result = event_loop(&mut terminal, &mut app, &tasks, receiver, probe.as_ref()).await;
    terminal::restore();
    result
}

/// Turns SIGTERM and SIGHUP into [`Action::Terminate`], so the loop exits normally and
/// restores the terminal.
fn spawn_signal_watch(sender: tokio::sync::mpsc::UnboundedSender<Action>) {
    use tokio::signal::unix::{SignalKind, signal};
    tokio::spawn(async move {
        let (Ok(mut term), Ok(mut hup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) else {
            tracing::warn!("cannot watch SIGTERM and SIGHUP");
            return;
        };
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received"),
            _ = hup.recv() => tracing::info!("SIGHUP received"),
        }
        let _ = sender.send(Action::Terminate);
    });
}

async fn event_loop(
    terminal: &mut Tui,
    app: &mut App,
    tasks: &Tasks,
    mut receiver: UnboundedReceiver<Action>,
    probe: Option<&StatusProbe>,
) -> anyhow::Result<()> {
    let size = terminal.size()?;
    app.update(Action::Resize(size.width, size.height));
    let effects = app.start();
    let mut input = Input::start();
    let mut ticker = tokio::time::interval(TICK);
    let mut last_frame: Option<Instant> = None;
    // Set when something other than streamed text changed since the last frame.
    let mut urgent = true;
    apply(terminal, app, tasks, effects, &mut input).await?;
    loop {
        if app.quit {
            return Ok(());
        }
        let interval = if urgent { FRAME } else { STREAM_FRAME };
        let wait = frame_wait(app, last_frame, interval);
        let first = match wait {
            // A frame is pending: wait for it or for a key, and let results gather in
            // the channel meanwhile, so a stream of small events costs one wake-up per
            // frame rather than one per event.
            Some(wait) if !wait.is_zero() => tokio::select! {
                biased;
                event = input.next() => input_action(event)?,
                _ = tokio::time::sleep(wait) => None,
            },
            _ => tokio::select! {
                biased;
                event = input.next() => input_action(event)?,
                action = receiver.recv() => action,
                _ = ticker.tick() => {
                    poll_engine(app, probe);
                    Some(tick(tasks))
                }
                // A frame is due and nothing else is ready: draw it.
                _ = std::future::ready(()), if wait.is_some() => None,
            },
        };
        let mut pending = first.into_iter().collect::<Vec<_>>();
        while pending.len() < MAX_DRAIN {
            match receiver.try_recv() {
                Ok(action) => pending.push(action),
                Err(_) => break,
            }
        }
        for action in pending {
            if let Action::Resize(width, height) = action {
                terminal::resize(terminal, width, height)?;
            }
            urgent |= !matches!(action, Action::StreamEvent { .. } | Action::Tick { .. });
            let effects = app.update(action);
            apply(terminal, app, tasks, effects, &mut input).await?;
        }
        let interval = if urgent { FRAME } else { STREAM_FRAME };
        if app.dirty && last_frame.is_none_or(|at| at.elapsed() >= interval) {
            terminal.draw(|frame| panes::draw(frame, app))?;
            app.dirty = false;
            urgent = false;
            last_frame = Some(Instant::now());
        }
    }
}

/// Terminal input, read by a task of its own that forwards each event through a
/// channel. crossterm's `EventStream` takes a lock on every poll, and its reader thread
/// keeps that lock while it waits for input, so each poll costs a burst of
/// `sched_yield` calls. Polling a channel instead costs nothing, however often the
/// loop wakes for stream events and frames.
struct Input {
    events: UnboundedReceiver<std::io::Result<Event>>,
    reader: tokio::task::JoinHandle<()>,
}

impl Input {
    fn start() -> Input {
        let (sender, events) = unbounded_channel();
        let reader = tokio::spawn(async move {
            let mut stream = EventStream::new();
            while let Some(event) = stream.next().await {
                if sender.send(event).is_err() {
                    return;
                }
            }
        });
        Input { events, reader }
    }

    /// Returns the next terminal event, or `None` once the terminal has no more input.
    async fn next(&mut self) -> Option<std::io::Result<Event>> {
        self.events.recv().await
    }

    /// Stops reading the terminal, so another program gets every key. Waiting for
    /// the aborted task makes sure its `EventStream` is dropped, which signals
    /// crossterm's reader thread to stop polling.
    async fn stop(&mut self) {
        self.reader.abort();
        let _ = (&mut self.reader).await;
    }
}

impl Drop for Input {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Returns how long to wait before a pending frame may be drawn, `interval` after the
/// last one.
fn frame_wait(app: &App, last_frame: Option<Instant>, interval: Duration) -> Option<Duration> {
    if !app.dirty {
        return None;
    }
    let since = last_frame.map(|at| at.elapsed()).unwrap_or(interval);
    Some(interval.saturating_sub(since))
}

/// Copies the in-process model's state into the app, in local mode.
fn poll_engine(app: &mut App, probe: Option<&StatusProbe>) {
    if let Some(probe) = probe {
        app.set_engine_status(probe());
    }
}

fn tick(tasks: &Tasks) -> Action {
    Action::Tick {
        now: Instant::now(),
        rate_limit: tasks.client.rate_limit(),
    }
}

/// Converts what the terminal's event stream returned; its end quits the app.
fn input_action(event: Option<std::io::Result<Event>>) -> anyhow::Result<Option<Action>> {
    match event {
        Some(Ok(event)) => Ok(terminal_action(event)),
        Some(Err(err)) => Err(err.into()),
        None => Ok(Some(Action::Terminate)),
    }
}

/// Converts a terminal event; key releases are dropped.
fn terminal_action(event: Event) -> Option<Action> {
    match event {
        Event::Key(key) if key.kind == KeyEventKind::Release => None,
        Event::Key(key) => Some(Action::Key(key)),
        Event::Paste(text) => Some(Action::Paste(text)),
        Event::Mouse(mouse) => Some(Action::Mouse(mouse)),
        Event::Resize(width, height) => Some(Action::Resize(width, height)),
        Event::FocusGained | Event::FocusLost => None,
    }
}

async fn apply(
    terminal: &mut Tui,
    app: &mut App,
    tasks: &Tasks,
    effects: Vec<Effect>,
    input: &mut Input,
) -> anyhow::Result<()> {
    for effect in effects {
        match effect {
            Effect::EditExternally { text } => {
                let result = edit_externally(terminal, &text, input).await?;
                // The terminal may have changed size while the editor had it.
                let area = terminal.get_frame().area();
                app.update(Action::Resize(area.width, area.height));
                let more = app.update(Action::DraftEdited(result));
                for effect in more {
                    tasks.spawn(effect);
                }
            }
            other => tasks.spawn(other),
        }
    }
    Ok(())
}

/// Suspends the screen, runs `$VISUAL` or `$EDITOR` on a temporary file holding the
/// draft, and returns the edited text.
async fn edit_externally(
    terminal: &mut Tui,
    text: &str,
    input: &mut Input,
) -> anyhow::Result<Result<String, String>> {
    // An empty variable counts as unset.
    let editor = ["VISUAL", "EDITOR"]
        .into_iter()
        .filter_map(|name| std::env::var(name).ok())
        .find(|value| !value.trim().is_empty())
        .unwrap_or_default();
    let mut words = editor.split_whitespace();
    let Some(program) = words.next() else {
        return Ok(Err(
            "set $VISUAL or $EDITOR to edit the draft in an editor".to_owned()
        ));
    };
    let args: Vec<&str> = words.collect();
    // NOTE: the file stays behind when the app is killed while the editor runs.
    let path = std::env::temp_dir().join(format!("assisters-draft-{}.md", std::process::id()));
    if let Err(err) = write_private(&path, text) {
        return Ok(Err(format!(
            "cannot write the draft to {}: {err}",
            path.display()
        )));
    }
    // Stop reading the terminal so the editor gets every key.
    input.stop().await;
    terminal::suspend();
    let status = std::process::Command::new(program)
        .args(&args)
        .arg(&path)
        .status();
    terminal::resume(terminal)?;
    *input = Input::start();
    let edited = std::fs::read_to_string(&path);
    let _ = std::fs::remove_file(&path);
    Ok(match status {
        Ok(status) if status.success() => edited
            .map_err(|err| format!("cannot read the edited draft: {err}; the draft is unchanged")),
        Ok(status) => Err(format!(
            "the editor {program:?} failed ({status}); the draft is unchanged"
        )),
        Err(err) => Err(format!("cannot start the editor {program:?}: {err}")),
    })
}

/// Writes `text` to a new file readable only by the user.
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())
}
