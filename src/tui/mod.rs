//! The full-screen app: `assisters` with no subcommand.
//!
//! [`app`] holds the state and `update`, [`action`] every input and effect, [`panes`]
//! the pure drawing functions, [`text`] sanitising, markdown and wrapping, and
//! [`runtime`] the terminal, the event loop and the tasks that do I/O.

pub mod action;
pub mod app;
pub mod keys;
pub mod panes;
pub mod runtime;
pub mod text;
pub mod theme;
pub mod transcript;

use std::sync::Arc;

use crate::api::Client;
use crate::config::{Config, Paths};
use crate::engine::gguf::ModelStatus;

/// Reports the state of the in-process model for the status bar; polled on every
/// timer tick, so it must be cheap and must not block.
pub type StatusProbe = Arc<dyn Fn() -> ModelStatus + Send + Sync>;

/// Everything the app needs to start.
pub struct Launch {
    pub client: Client,
    pub config: Config,
    pub paths: Paths,
    /// What the status bar shows for the server: its URL, or "local".
    pub server_label: String,
    /// The in-process model's state, in local mode; `None` for a remote server.
    pub engine_status: Option<StatusProbe>,
}

/// Opens the full-screen app and runs it until the user quits.
pub fn run(launch: Launch) -> anyhow::Result<()> {
    runtime::run(launch)
}
