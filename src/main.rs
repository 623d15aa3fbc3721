//! The `deployd` binary: parse the command line, set up logging, run the
//! command, and turn its result into an exit code (0 ok, 1 failed, 2 usage
//! or configuration).

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;
use deployd::cli::{self, Cli, Failure};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    deployd::logging::init();
    match cli::run(cli) {
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

/// A command line clap refused: its message, which says what is wrong and
/// what to try, begun with `deployd:` as every other error of ours rather
/// than clap's `error:`; exit status 2. Help and version are clap's to print.
fn usage_error(e: clap::Error) -> ExitCode {
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        e.exit();
    }
    let text = e.render().to_string();
    eprint!("deployd: {}", text.strip_prefix("error: ").unwrap_or(&text));
    ExitCode::from(2)
}
