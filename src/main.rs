use std::process::ExitCode;

use clap::Parser;

use assisters::cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    assisters::run(cli)
}
