//! Logging setup: tracing to `assisters.log` in the state directory, created with mode
//! 0600, filtered by `RUST_LOG` (default `info`). Only `serve` also logs to stderr; the
//! TUI and the scripting subcommands never write logs to the terminal.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::Paths;

/// File name of the log in the state directory.
pub const LOG_FILE: &str = "assisters.log";

/// Log lines the writer thread may have queued, outside the server. The writer's
/// queue is allocated whole when logging starts, so tracing-appender's default of
/// 128,000 lines would cost the app 4 MiB of memory for a log that gets a few lines
/// a minute. Lines past the limit are dropped, and the appender counts them.
const APP_QUEUED_LINES: usize = 1_024;

/// Keeps the log writer running; dropping it flushes the file.
pub struct LogGuard {
    _file: Option<WorkerGuard>,
    /// The log file, when one could be opened.
    pub path: Option<PathBuf>,
}

/// Installs the global subscriber. With `also_stderr` (the server), logs also go to
/// stderr and the file writer keeps tracing-appender's default queue of 128,000 lines
/// for bursts of requests. A log file that cannot be opened is reported once on stderr
/// and skipped.
pub fn init(paths: Option<&Paths>, also_stderr: bool) -> LogGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let opened = paths.map(|paths| (open_log(&paths.state_dir), paths.state_dir.join(LOG_FILE)));
    let (file_layer, guard, path) = match opened {
        Some((Ok(file), path)) => {
            let mut builder = tracing_appender::non_blocking::NonBlockingBuilder::default();
            if !also_stderr {
                builder = builder.buffered_lines_limit(APP_QUEUED_LINES);
            }
            let (writer, guard) = builder.finish(file);
            let layer = tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(writer);
            (Some(layer), Some(guard), Some(path))
        }
        Some((Err(err), path)) => {
            eprintln!(
                "warning: cannot open the log file {}: {err}",
                path.display()
            );
            (None, None, None)
        }
        None => (None, None, None),
    };
    let stderr_layer = also_stderr.then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
    });
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(file_layer)
        .with(stderr_layer)
        .try_init();
    LogGuard { _file: guard, path }
}

/// Opens (or creates) the log file for appending, readable only by its owner.
fn open_log(dir: &Path) -> std::io::Result<File> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(LOG_FILE);
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        let file = options.open(&path)?;
        // An older file may have been created with wider permissions.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        Ok(file)
    }
    #[cfg(not(unix))]
    {
        options.open(&path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn log_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let Ok(dir) = tempfile::tempdir() else {
            panic!("temp dir");
        };
        let state = dir.path().join("state");
        let path = state.join(LOG_FILE);
        std::fs::create_dir_all(&state).unwrap_or_default();
        std::fs::write(&path, "old\n").unwrap_or_default();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap_or_default();

        assert!(open_log(&state).is_ok());

        let mode = std::fs::metadata(&path).map(|m| m.permissions().mode() & 0o777);
        assert_eq!(mode.ok(), Some(0o600));
    }
}
