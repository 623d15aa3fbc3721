//! The command line (docs/commands.md): the clap types
//! ([`args`]), [`run`] that carries out the command they name, and one file
//! per group of commands. Commands talk to the running daemon over its
//! control socket, or read what the daemon stored; none runs a deploy
//! itself: a `deploy` with no daemon hands its request to the run path
//! (`run::direct`). `main` turns the result into an exit code.

pub mod args;
mod check;
mod deploy;
mod history;
mod serve;
mod status;

use std::path::PathBuf;

use anyhow::anyhow;

use crate::config::{self, Config, ConfigError};
use crate::daemon::control::{self, ControlRequest, Reply};
use crate::run::lock::{self, RunLock};
use crate::run::recovery;
use crate::store::history::{History, Run};
use crate::store::queue::DeployRequest;

pub use args::Cli;
use args::Command;

/// Prints a line on stdout; a closed pipe (`deployd history | head`) ends
/// the command quietly instead of panicking like `println!`.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)?;
    }};
}
pub(crate) use outln;

/// Why a command did not succeed; decides the exit code.
#[derive(Debug)]
pub enum Failure {
    /// Whoever read our output went away (a closed pipe): stop, quietly.
    Closed,
    /// A deploy ran and failed (its output already said so): exit 1.
    Deploy,
    /// Bad usage or configuration: exit 2.
    Usage(anyhow::Error),
    /// Anything else: exit 1.
    Runtime(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Failure {
        if e.downcast_ref::<ConfigError>().is_some() {
            Failure::Usage(e)
        } else {
            Failure::Runtime(e)
        }
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Failure {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            Failure::Closed
        } else {
            Failure::Runtime(e.into())
        }
    }
}

type Result<T> = std::result::Result<T, Failure>;

/// Runs the command `cli` names.
pub fn run(cli: Cli) -> Result<()> {
    let path = config_path(cli.config);
    match cli.command {
        Command::Serve => serve::serve(load(&path)?),
        Command::Check => check::check(&load(&path)?),
        Command::Reload => serve::reload(&path.path),
        Command::Status { json } => status::status(&load_quiet(&path)?, json),
        Command::History {
            project,
            limit,
            json,
        } => history::history(&load_quiet(&path)?, &project, limit, json),
        Command::Logs {
            project,
            run_id,
            follow,
            host,
        } => history::logs(
            &load_quiet(&path)?,
            &project,
            run_id,
            follow,
            host.as_deref(),
        ),
        Command::Sign {
            project,
            file,
            header,
        } => check::sign(&load(&path)?, &project, file.as_deref(), header),
        Command::Deploy {
            project,
            git_ref,
            sha,
            no_wait,
        } => deploy::deploy(
            &load_quiet(&path)?,
            &project,
            deploy::What::Manual { git_ref, sha },
            !no_wait,
        ),
        Command::Rollback {
            project,
            to,
            no_wait,
        } => deploy::deploy(
            &load_quiet(&path)?,
            &project,
            deploy::What::Rollback { to },
            !no_wait,
        ),
        Command::Cancel { project, pending } => {
            deploy::cancel(&load_quiet(&path)?, &project, pending)
        }
        Command::NotifyTest { target } => check::notify_test(&load(&path)?, target.as_deref()),
        Command::Help { command } => help(command.as_deref()),
    }
}

/// `deployd help [COMMAND]`: exactly what `deployd [COMMAND] --help` prints.
fn help(name: Option<&str>) -> Result<()> {
    use clap::Parser as _;
    let args = ["deployd"].into_iter().chain(name).chain(["--help"]);
    match Cli::try_parse_from(args) {
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelp => {
            e.print()?;
            Ok(())
        }
        _ => {
            let cli = <Cli as clap::CommandFactory>::command();
            let known: Vec<&str> = cli.get_subcommands().map(|c| c.get_name()).collect();
            Err(Failure::Usage(anyhow!(
                "no command {:?} (commands: {})",
                name.unwrap_or_default(),
                known.join(", ")
            )))
        }
    }
}

/// The config file a command reads.
struct ConfigPath {
    path: PathBuf,
    /// Nothing named it (no `-c`, no `$DEPLOYD_CONFIG`): it is the default,
    /// and its absence says how to give one.
    by_default: bool,
}

fn config_path(given: Option<PathBuf>) -> ConfigPath {
    match given.or_else(|| std::env::var_os("DEPLOYD_CONFIG").map(PathBuf::from)) {
        Some(path) => ConfigPath {
            path,
            by_default: false,
        },
        None => ConfigPath {
            path: PathBuf::from(config::DEFAULT_PATH),
            by_default: true,
        },
    }
}

fn load(path: &ConfigPath) -> Result<Config> {
    config::load(&path.path).map_err(|e| config_failure(path, e))
}

/// The config for commands that need no secret (see `load_without_secrets`).
fn load_quiet(path: &ConfigPath) -> Result<Config> {
    config::load_without_secrets(&path.path).map_err(|e| config_failure(path, e))
}

fn config_failure(path: &ConfigPath, e: ConfigError) -> Failure {
    Failure::Usage(match e {
        ConfigError::Read { error, .. }
            if path.by_default && error.kind() == std::io::ErrorKind::NotFound =>
        {
            ConfigError::NoConfig.into()
        }
        e => e.into(),
    })
}

/// The project `name` of `config`, or a usage error listing the known ones.
fn project<'a>(config: &'a Config, name: &str) -> Result<&'a config::Project> {
    config.projects.get(name).ok_or_else(|| {
        Failure::Usage(anyhow!(
            "no project {name:?} in {}",
            listing(config, "projects", config.projects.keys())
        ))
    })
}

/// `PATH (WHAT: a, b)`, or `PATH (WHAT: none)`: where to look for a name
/// not found, and the names there are.
fn listing<'a>(config: &Config, what: &str, names: impl Iterator<Item = &'a String>) -> String {
    let names: Vec<&str> = names.map(String::as_str).collect();
    format!(
        "{} ({what}: {})",
        config.path.display(),
        if names.is_empty() {
            "none".into()
        } else {
            names.join(", ")
        }
    )
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// Who runs the command, for DEPLOY_PUSHER and the notes of a cancel: the
/// user behind sudo, else this process's login name.
fn user() -> String {
    std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(|| {
            nix::unistd::User::from_uid(nix::unistd::getuid())
                .ok()
                .flatten()
                .map(|u| u.name)
        })
        .unwrap_or_else(|| "manual".into())
}

/// Whether a failed call to the control socket means no daemon runs (no
/// socket, or nobody listening on it), rather than one that misbehaves.
fn no_daemon(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
    )
}

/// Asks the daemon on `socket` one question whose answer is one reply, as
/// `pick` finds it among the replies (an error reply is the daemon's `Err`).
/// `Ok(None)`: the daemon closed the connection without answering.
async fn ask<T>(
    socket: &std::path::Path,
    request: &ControlRequest,
    mut pick: impl FnMut(Reply) -> Option<T>,
) -> std::io::Result<Option<std::result::Result<T, String>>> {
    let mut answer = None;
    let asked = control::call(
        socket,
        request,
        |reply| {
            match reply {
                Reply::Error(e) => answer = Some(Err(e)),
                reply => {
                    if let Some(t) = pick(reply) {
                        answer = Some(Ok(t));
                    }
                }
            }
            Ok(())
        },
        |_| Ok(()),
    )
    .await;
    match (asked, answer) {
        (_, Some(answer)) => Ok(Some(answer)),
        (Ok(()), None) => Ok(None),
        (Err(e), None) => Err(e),
    }
}

/// Whether something holds the run lock of project `name`: a run of it
/// still goes on.
fn lock_held(config: &Config, name: &str) -> bool {
    RunLock::is_held(&lock::path(&config.server.state_dir, name))
}

/// What the next daemon will do about `interrupted`, the newest run of its
/// project left recorded `running`, while `pending` waits (the decision
/// recovery itself takes).
fn next_daemon_will(config: &Config, interrupted: &Run, pending: Option<&DeployRequest>) -> String {
    let history = History::new(&config.server.state_dir, &config.server.log_dir);
    let latest = history.latest(&interrupted.request.project).ok().flatten();
    recovery::recovery_plan(interrupted, latest.as_ref(), pending).describe()
}

/// A run's script outputs (docs/configuration.md, *What the script gets*),
/// one `key: value` line each, for `history` and `status`.
fn outputs_lines(run: &Run) -> Vec<String> {
    run.outputs
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect()
}

/// How long a run took, or `-` while it runs.
fn duration(run: &Run) -> String {
    let (Ok(a), Some(Ok(b))) = (
        humantime::parse_rfc3339(&run.started_at),
        run.finished_at.as_deref().map(humantime::parse_rfc3339),
    ) else {
        return "-".into();
    };
    b.duration_since(a)
        .map(|d| humantime::format_duration(d).to_string())
        .unwrap_or_else(|_| "-".into())
}
