//! The command line: the clap types ([`args`]) and what each command does
//! ([`commands`]). Commands talk to the running daemon over its control
//! socket, or read what the daemon stored; a direct `deploy` hands its run
//! to the same run path the daemon uses.

pub mod args;
pub mod commands;

pub use args::Cli;
