//! Runs the chosen subcommand: the server, the TUI or a scripting subcommand.

use std::sync::Arc;

use crate::api::Client;
use crate::config::Paths;

use super::error::CliError;
use super::output::retry_line;
use super::setup::{self, Setup};
use super::{Command, GlobalArgs, ServeArgs, app_config, assistants, chat, local, threads};

/// Runs `assisters serve` until SIGINT or SIGTERM.
pub fn serve(args: ServeArgs) -> Result<(), CliError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(runtime_error)?;
    runtime.block_on(crate::server::serve(args)).map_err(|err| {
        match err.downcast_ref::<crate::server::ConfigError>() {
            Some(config) => CliError::Usage(config.to_string()),
            None => CliError::Failed("server_error", format!("{err:#}")),
        }
    })
}

/// Opens the full-screen app: on an in-process server with `--local`, or when no key
/// and no base URL are configured; on the configured server otherwise.
pub fn tui(global: &GlobalArgs, paths: Option<Paths>) -> Result<(), CliError> {
    if global.local {
        return local::tui(global, paths);
    }
    let setup = setup::resolve(global, paths.as_ref())?;
    if setup.unconfigured {
        tracing::info!("no API key and no base URL configured: starting in local mode");
        return local::tui(global, paths);
    }
    reject_model_flag(global)?;
    app_config::check(&setup.config, setup.config_path.as_deref())?;
    let Some(paths) = paths else {
        return Err(CliError::Failed(
            "no_home",
            "cannot find the home directory, which holds the app's config and logs; set HOME"
                .to_owned(),
        ));
    };
    let client = setup.client()?;
    let launch = crate::tui::Launch {
        server_label: client.base_url().to_owned(),
        client,
        config: setup.config,
        paths,
        engine_status: None,
    };
    crate::tui::run(launch).map_err(|err| CliError::Failed("tui_error", format!("{err:#}")))
}

/// Runs `assistants`, `threads` or `chat`.
pub fn subcommand(
    command: Command,
    global: &GlobalArgs,
    paths: Option<&Paths>,
) -> Result<(), CliError> {
    if global.local {
        return local::subcommand(command, global, paths);
    }
    reject_model_flag(global)?;
    let setup = setup::resolve(global, paths)?;
    setup::require_key(&setup)?;
    let client = setup
        .client()?
        .with_retry_observer(Arc::new(|notice| eprintln!("{}", retry_line(notice))));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(runtime_error)?;
    runtime.block_on(run_api_command(command, &client, &setup, global.json))
}

/// `--model` picks the model of local mode; a remote server has its own.
fn reject_model_flag(global: &GlobalArgs) -> Result<(), CliError> {
    match &global.local_model {
        Some(path) => Err(CliError::Usage(format!(
            "--model {} applies to local mode only; add --local",
            path.display()
        ))),
        None => Ok(()),
    }
}

/// Runs one API subcommand with a ready client.
pub(super) async fn run_api_command(
    command: Command,
    client: &Client,
    setup: &Setup,
    json: bool,
) -> Result<(), CliError> {
    match command {
        Command::Assistants(command) => assistants::run(&command, client, json).await,
        Command::Threads(command) => threads::run(&command, client, json).await,
        Command::Chat(args) => {
            chat::run(&args, client, &setup.config, setup.config_path.as_deref()).await
        }
        Command::Serve(_) | Command::Model(_) => Err(CliError::Usage(
            "this subcommand does not talk to the API".to_owned(),
        )),
    }
}

fn runtime_error(err: std::io::Error) -> CliError {
    CliError::Failed(
        "runtime_error",
        format!("cannot start the async runtime: {err}"),
    )
}
