//! Writes deployd's man pages and shell completions, generated from its clap
//! definitions, so they never drift from `deployd --help`:
//!
//!     cargo run --example gen-docs -- OUT_DIR
//!
//! OUT_DIR/man/deployd.1 and one page per subcommand (deployd-reload.1, …),
//! OUT_DIR/completions/deployd.bash, _deployd (zsh) and deployd.fish.
//! scripts/build-deb.sh and scripts/install.sh install them.

use std::path::PathBuf;

use clap::CommandFactory;
use clap_complete::Shell;
use deployd::cli::Cli;

fn main() -> std::io::Result<()> {
    let Some(out) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: gen-docs OUT_DIR");
        std::process::exit(2);
    };
    let man = out.join("man");
    let completions = out.join("completions");
    std::fs::create_dir_all(&man)?;
    std::fs::create_dir_all(&completions)?;
    clap_mangen::generate_to(Cli::command(), &man)?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        clap_complete::generate_to(shell, &mut Cli::command(), "deployd", &completions)?;
    }
    Ok(())
}
