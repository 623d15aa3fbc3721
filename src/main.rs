//! The `deployd` binary: parse the command line, set up logging, run the
//! command, and turn its result into an exit code (0 ok, 1 failed, 2 usage
//! or configuration).

use std::process::ExitCode;

use clap::Parser;
use deployd::cli::Cli;
use deployd::commands::{self, Failure};

fn main() -> ExitCode {
    let cli = Cli::parse();
    deployd::logging::init();
    match commands::run(cli) {
        Ok(()) | Err(Failure::Closed) => ExitCode::SUCCESS,
        Err(Failure::Deploy) => ExitCode::from(1),
        Err(Failure::Usage(e)) => {
            eprintln!("deployd: {e:#}");
            ExitCode::from(2)
        }
        Err(Failure::Runtime(e)) => {
            eprintln!("deployd: {e:#}");
            ExitCode::from(1)
        }
    }
}
