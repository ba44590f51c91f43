//! The full-screen app.

use crate::api::Client;
use crate::config::{Config, Paths};

/// Everything the app needs to start.
pub struct Launch {
    pub client: Client,
    pub config: Config,
    pub paths: Paths,
    /// What the status bar shows for the server: its URL, or "local".
    pub server_label: String,
}

/// Opens the full-screen app and runs it until the user quits.
pub fn run(launch: Launch) -> anyhow::Result<()> {
    let _ = launch;
    anyhow::bail!("the full-screen app is not built yet")
}
