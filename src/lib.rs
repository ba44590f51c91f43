//! `assisters`: a full-screen terminal chat client for the Assisters API, the local
//! server that implements the same API, and the reply engines behind it.

pub mod api;
pub mod cli;
pub mod config;
pub mod engine;
pub mod local;
pub mod model;
pub mod server;
pub mod tools;
pub mod tui;

use std::process::ExitCode;

use cli::Command;

/// Runs the parsed command line and returns the process exit code: 0 on success,
/// 1 on an API or transport error, 2 on a usage error.
pub fn run(cli: cli::Cli) -> ExitCode {
    let cli::Cli { global, command } = cli;
    if let Some(Command::Model(command)) = &command {
        return cli::model::run(command);
    }
    let paths = config::Paths::discover();
    let is_server = matches!(command, Some(Command::Serve(_)));
    let _log = cli::logging::init(paths.as_ref(), is_server);
    let result = match command {
        Some(Command::Serve(args)) => cli::dispatch::serve(args),
        None => cli::dispatch::tui(&global, paths),
        Some(command) => cli::dispatch::subcommand(command, &global, paths.as_ref()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(code = err.code(), "command failed");
            eprintln!("{}", err.report());
            err.exit_code()
        }
    }
}
