//! `assisters`: a full-screen terminal chat client for the Assisters API, the local
//! server that implements the same API, and the reply engines behind it.

pub mod api;
pub mod cli;
pub mod config;
pub mod engine;
pub mod model;
pub mod server;
pub mod tui;

use std::process::ExitCode;

/// Runs the parsed command line and returns the process exit code: 0 on success,
/// 1 on an API or transport error, 2 on a usage error.
pub fn run(cli: cli::Cli) -> ExitCode {
    if let Some(cli::Command::Model(command)) = &cli.command {
        return cli::model::run(command);
    }
    let _ = cli;
    // TODO: dispatch to the server, the scripting subcommands and the TUI.
    ExitCode::SUCCESS
}
