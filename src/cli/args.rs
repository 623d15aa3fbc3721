//! The command line, as docs/commands.md describes it (clap
//! derive types only).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// deployd: verified webhooks in, one deploy at a time out, every line kept.
#[derive(Debug, Parser)]
#[command(
    name = "deployd",
    version,
    // Our own `help` command, so that `deployd help --help` is help too.
    disable_help_subcommand = true,
    about = "Auto-deploy daemon for git pushes: verifies the forge's webhook, runs the \
             project's deploy script one run at a time under a lock, keeps every line of output.",
    after_help = "Exit codes: 0 success, 1 a deploy failed or a runtime error, 2 usage or configuration error.\n\
                  Config: -c FILE, else $DEPLOYD_CONFIG, else /etc/deployd/deploy.toml."
)]
pub struct Cli {
    /// The config file [default: $DEPLOYD_CONFIG, then /etc/deployd/deploy.toml]
    #[arg(short, long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon in the foreground: webhook listener and executor.
    ///
    /// Logs to stderr, one line per event. SIGTERM/SIGINT stop it gracefully
    /// (running deploys get `shutdown_grace`); SIGHUP reloads the config.
    Serve,
    /// Deploy a project now, through the running daemon's queue if it is
    /// reachable, else by running the script here under the same lock.
    ///
    /// Streams the run's output; exits 0 if the run succeeded, 1 if not.
    Deploy {
        /// The project, as named in the config.
        project: String,
        /// The ref to announce to the script [default: refs/heads/<branch>]
        #[arg(long = "ref", value_name = "REF")]
        git_ref: Option<String>,
        /// The commit to announce as DEPLOY_SHA [default: empty]
        #[arg(long, value_name = "SHA")]
        sha: Option<String>,
        /// Return once the request is queued instead of waiting for the run.
        #[arg(long)]
        no_wait: bool,
    },
    /// Validate the config and list each project with its hook path.
    Check,
    /// Stop the project's running run (SIGTERM to its process group,
    /// SIGKILL after kill_grace), recorded `cancelled`.
    ///
    /// Exits 0 once it is stopped; 1 when nothing runs. Through the daemon,
    /// or, without one, by asking the `deployd deploy` that runs it.
    Cancel {
        /// The project.
        project: String,
        /// Drop the pending request instead (it never runs).
        #[arg(long)]
        pending: bool,
    },
    /// Deploy again the commit of the last successful run before the
    /// current one (or of run --to), with trigger `rollback`, through the
    /// same queue and lock as `deploy`.
    ///
    /// Streams the run's output; exits 0 if the run succeeded, 1 if not or
    /// when there is nothing to go back to.
    Rollback {
        /// The project.
        project: String,
        /// The run whose commit to deploy again, as `history` shows it.
        #[arg(long, value_name = "RUN_ID")]
        to: Option<u64>,
        /// Return once the request is queued instead of waiting for the run.
        #[arg(long)]
        no_wait: bool,
    },
    /// Make the running daemon reload its config, and wait for the outcome.
    ///
    /// Exits 0 once the new config is live; 1 when the daemon refuses it
    /// (printing the config's error, file:line: key) and keeps the old one,
    /// or when no daemon answers. The unit's ExecReload= runs this, so
    /// `systemctl reload deployd` fails with the reason.
    Reload,
    /// Show each project: idle, running, pending (or recovering /
    /// interrupted after a crash), and its last run.
    Status {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// List a project's past runs, newest first.
    History {
        /// The project.
        project: String,
        /// How many runs at most (1 or more).
        #[arg(long, short = 'n', default_value_t = 20, value_name = "N", value_parser = at_least_one)]
        limit: usize,
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print a run's log (the latest run by default).
    ///
    /// With --host, the log of one host of a fleet run (docs/fleet.md)
    /// instead of the run's log, whose lines are prefixed with their host.
    Logs {
        /// The project.
        project: String,
        /// The run id, as `history` shows it.
        run_id: Option<u64>,
        /// Keep printing while the run goes on (with --host: until that
        /// host is done).
        #[arg(short, long)]
        follow: bool,
        /// The host of a fleet run whose own log to print, by its name.
        #[arg(long, value_name = "NAME")]
        host: Option<String>,
    },
    /// Print the signature the project's forge would send for FILE (or
    /// stdin), e.g. `sha256=…`, to try a hook by hand with curl.
    ///
    /// Prints the header's value alone; with --header, whole
    /// `Name: value` lines for `curl -H`. A GitLab project whose secret is a
    /// signing token (`whsec_…`) needs --header: its signature comes with a
    /// webhook-id and a webhook-timestamp (valid 5 minutes).
    Sign {
        /// The project whose secret signs.
        project: String,
        /// The body to sign [default: stdin]
        file: Option<PathBuf>,
        /// Print `Name: value` header lines instead of the value alone.
        #[arg(long)]
        header: bool,
    },
    /// Send a test notification to every `[notify.NAME]` target (or the
    /// one named) and print each target's answer.
    ///
    /// Sent at once, not through the outbox: nothing is retried. Exits 1 if
    /// a target did not take it.
    NotifyTest {
        /// The target, as named in the config [default: all]
        target: Option<String>,
    },
    /// Print this help, or the help of the given command.
    Help {
        /// The command to explain.
        command: Option<String>,
    },
}

/// `--limit`: a count of runs to show. 0 is refused rather than read as
/// "all" or answered with nothing, since either could surprise.
fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("0 would show no runs; give 1 or more".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{s:?} is not a number of runs; give 1 or more")),
    }
}
