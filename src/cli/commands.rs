//! The CLI commands (the README's *Commands* section), each a function from
//! parsed arguments to a result; `main` turns the result into an exit code.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context, anyhow};
use tokio::sync::watch;

use crate::cli::args::{Cli, Command};
use crate::config::{self, Config, ConfigError};
use crate::daemon::control::{self, ControlRequest, Reply};
use crate::intake::ci_gate;
use crate::notify::outbox;
use crate::run::events::{Publisher, Spool};
use crate::run::executor::{self, ProjectState, ProjectStatus};
use crate::run::lifecycle::{Caller, Lifecycle, NotRun};
use crate::run::lock::{self, RunLock};
use crate::store::gates;
use crate::store::history::{History, Run, Status};
use crate::store::queue::{self, Request};
use crate::{daemon, forge, fsutil, notify};

/// Prints a line on stdout; a closed pipe (`deployd history | head`) ends
/// the command quietly instead of panicking like `println!`.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)?;
    }};
}

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
        Command::Serve => {
            let config = load(&path)?;
            config
                .require_projects()
                .map_err(|e| Failure::Usage(e.into()))?;
            // One thread serves every connection; blocking work (fsync,
            // flock, children) goes to tokio's blocking threads, started on
            // demand. Against 2 and 1 multi-thread workers, on 2 CPUs shared
            // with wrk (docs/performance.md): less CPU per request, a p99 as
            // low or lower, 0.4 MB less at idle, and a flood of requests
            // takes one core at most.
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let served = rt.block_on(daemon::serve(config)).map_err(Failure::Runtime);
            // A notification being sent to a hanging target must not hold
            // up the stop: it is on disk and is sent again at the next start.
            rt.shutdown_timeout(Duration::from_secs(1));
            served
        }
        Command::Check => check(&load(&path)?),
        Command::Reload => reload(&path.path),
        Command::Status { json } => status(&load_quiet(&path)?, json),
        Command::History {
            project,
            limit,
            json,
        } => history(&load_quiet(&path)?, &project, limit, json),
        Command::Logs {
            project,
            run_id,
            follow,
        } => logs(&load_quiet(&path)?, &project, run_id, follow),
        Command::Sign {
            project,
            file,
            header,
        } => sign(&load(&path)?, &project, file.as_deref(), header),
        Command::Deploy {
            project,
            git_ref,
            sha,
            no_wait,
        } => deploy(
            &load_quiet(&path)?,
            &project,
            What::Manual { git_ref, sha },
            !no_wait,
        ),
        Command::Rollback {
            project,
            to,
            no_wait,
        } => deploy(
            &load_quiet(&path)?,
            &project,
            What::Rollback { to },
            !no_wait,
        ),
        Command::Cancel { project, pending } => cancel(&load_quiet(&path)?, &project, pending),
        Command::NotifyTest { target } => notify_test(&load(&path)?, target.as_deref()),
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

fn project<'a>(config: &'a Config, name: &str) -> Result<&'a config::Project> {
    config.projects.get(name).ok_or_else(|| {
        let known: Vec<&str> = config.projects.keys().map(String::as_str).collect();
        Failure::Usage(anyhow!(
            "no project {name:?} in {} (projects: {})",
            config.path.display(),
            if known.is_empty() {
                "none".into()
            } else {
                known.join(", ")
            }
        ))
    })
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

fn check(config: &Config) -> Result<()> {
    for w in &config.warnings {
        eprintln!("warning: {w}");
    }
    if let Err(e) = config.require_projects() {
        eprintln!("warning: {e}");
    }
    outln!(
        "{}: OK, {} project(s)",
        config.path.display(),
        config.projects.len()
    );
    outln!(
        "  listen {}  state {}  logs {}  control {}",
        config.server.listen,
        config.server.state_dir.display(),
        config.server.log_dir.display(),
        config.server.control_socket.display()
    );
    for p in config.projects.values() {
        outln!(
            "  {}: POST {}  ({} push{}{}; script {}; {})",
            p.name,
            p.hook_path(),
            p.provider,
            p.repository
                .as_ref()
                .map(|r| format!(" of {r}"))
                .unwrap_or_default(),
            if p.after_ci.is_empty() {
                String::new()
            } else {
                format!(
                    ", after CI: {} (at most {})",
                    p.after_ci.join(", "),
                    humantime::format_duration(p.ci_timeout)
                )
            },
            p.script.display(),
            p.secret_source
        );
        outln!("    deploys: {}", p.triggers());
        if let Some(previous) = &p.previous_source {
            outln!(
                "    secret rotation under way: {} and {previous} are both accepted; \
                 once the forge signs with the new secret, remove the previous one",
                p.secret_source
            );
        }
        if let Some(allow) = &p.allow_from {
            let nets: Vec<String> = allow.iter().map(ToString::to_string).collect();
            outln!("    allow_from {}", nets.join(", "));
        }
        if let Some(r) = &p.report {
            outln!(
                "    report: {} {} at {} as {:?} ({})",
                p.provider,
                match &r.environment {
                    Some(e) => format!("deployment to {e}"),
                    None => "commit status".into(),
                },
                r.api_url,
                r.context,
                r.token_source
            );
        }
    }
    for t in config.notify.values() {
        outln!(
            "  notify {}: {} on {}; {}; {}",
            t.name,
            t.kind.name(),
            t.on.join(", "),
            match &t.projects {
                Some(ps) => format!("projects {}", ps.join(", ")),
                None => "every project".into(),
            },
            if t.command.is_empty() {
                let mut s = t.url_source.clone();
                if let Some(k) = &t.secret_source {
                    s.push_str(&format!(", signed ({k})"));
                }
                s
            } else {
                format!("runs {}", t.command[0])
            }
        );
    }
    if let Some(w) = &config.web {
        outln!(
            "  web: http://{}{}  ({}; actions {}; /metrics {})",
            w.listen,
            w.public_url
                .as_ref()
                .map(|u| format!(" as {u}"))
                .unwrap_or_default(),
            w.token
                .as_ref()
                .map_or("no token: loopback only".to_string(), |t| t.source.clone()),
            if w.actions { "on" } else { "off" },
            if w.metrics_public {
                "public"
            } else {
                "behind the token"
            }
        );
    }
    Ok(())
}

/// `deployd notify-test [TARGET]`: one test message to each target, sent
/// now; prints each answer.
fn notify_test(config: &Config, only: Option<&str>) -> Result<()> {
    if let Some(name) = only
        && !config.notify.contains_key(name)
    {
        let known: Vec<&str> = config.notify.keys().map(String::as_str).collect();
        return Err(Failure::Usage(anyhow!(
            "no target {name:?} in {} (targets: {})",
            config.path.display(),
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        )));
    }
    if config.notify.is_empty() {
        return Err(Failure::Usage(anyhow!(
            "{} has no [notify.NAME] target",
            config.path.display()
        )));
    }
    let project = config
        .projects
        .keys()
        .next()
        .cloned()
        .unwrap_or_else(|| "deployd".into());
    let doc = notify::Document::test(&project);
    let mut failed = 0;
    for t in config.notify.values() {
        if only.is_some_and(|n| n != t.name) {
            continue;
        }
        let said = match notify::send(t, &doc) {
            crate::http_client::Attempt::Delivered(a) => format!("delivered ({a})"),
            crate::http_client::Attempt::Retry { error, .. } => {
                failed += 1;
                format!("FAILED ({error}); a real notification would be tried again")
            }
            crate::http_client::Attempt::Refused { error, hint } => {
                failed += 1;
                format!("REFUSED ({error}): {hint}")
            }
        };
        outln!("{} ({}): {said}", t.name, t.kind.name());
    }
    if failed > 0 {
        return Err(Failure::Runtime(anyhow!(
            "{failed} target(s) did not take the test notification"
        )));
    }
    Ok(())
}

/// Where `reload` looks for the daemon when it cannot read the config (so
/// the `control_socket` it names is unknown): the unit's socket, then the
/// default one.
const FALLBACK_SOCKETS: [&str; 2] = ["/run/deployd/control.sock", "/var/lib/deployd/control.sock"];

/// Asks the daemon to reload its config and waits for its answer.
///
/// The daemon judges the file, also when it is invalid here: it refuses it
/// and says so in its own log, where whoever watches the daemon looks (a
/// SIGHUP's refusal is logged there too). What this command found wrong
/// with the file is said only when no daemon answers.
fn reload(path: &Path) -> Result<()> {
    let (sockets, invalid_here) = match config::load_without_secrets(path) {
        Ok(c) => (vec![c.server.control_socket], None),
        Err(ConfigError::NoConfig) => {
            return Err(Failure::Usage(anyhow!(
                "nothing to reload: {}",
                ConfigError::NoConfig
            )));
        }
        // Invalid: the daemon is found through the file's [server] table
        // alone, or at the usual places.
        Err(e @ (ConfigError::Invalid { .. } | ConfigError::NoProjects { .. })) => {
            let mut sockets: Vec<PathBuf> = config::control_socket_of(path).into_iter().collect();
            for s in FALLBACK_SOCKETS.iter().map(PathBuf::from) {
                if !sockets.contains(&s) {
                    sockets.push(s);
                }
            }
            (sockets, Some(e))
        }
        // Unreadable here (this user may not read it) is not unreadable for
        // the daemon: find the daemon at the usual places, it reads the file.
        Err(ConfigError::Read { .. }) => {
            (FALLBACK_SOCKETS.iter().map(PathBuf::from).collect(), None)
        }
    };
    let rt = runtime()?;
    let mut tried = Vec::new();
    for socket in &sockets {
        let mut answer = None;
        let asked = rt.block_on(control::call(
            socket,
            &ControlRequest::Reload,
            |reply| {
                match reply {
                    Reply::Reloaded(done) => answer = Some(Ok(done)),
                    Reply::Error(e) => answer = Some(Err(e)),
                    _ => {}
                }
                Ok(())
            },
            |_| Ok(()),
        ));
        match (asked, answer) {
            (_, Some(Ok(done))) => {
                outln!("deployd: {done}");
                return Ok(());
            }
            (_, Some(Err(e))) => return Err(Failure::Runtime(anyhow!("{e}"))),
            (Ok(()), None) => {
                return Err(Failure::Runtime(anyhow!(
                    "the daemon on {} closed the connection without answering \
                     (stopping? see `systemctl status deployd`)",
                    socket.display()
                )));
            }
            (Err(e), None) => tried.push(format!("{}: {e}", socket.display())),
        }
    }
    if let Some(e) = invalid_here {
        return Err(Failure::Runtime(anyhow!(
            "{e}\n(no daemon answers ({}), so nothing was reloaded)",
            tried.join("; ")
        )));
    }
    Err(Failure::Runtime(anyhow!(
        "no daemon answers ({}): nothing to reload. Is deployd running? \
         (`systemctl status deployd`; a socket-activated deployd starts with \
         the first delivery, and reads the config then)",
        tried.join("; ")
    )))
}

fn sign(config: &Config, name: &str, file: Option<&Path>, as_headers: bool) -> Result<()> {
    let p = project(config, name)?;
    let mut body = Vec::new();
    match file {
        Some(f) => {
            body = std::fs::read(f).with_context(|| format!("cannot read {}", f.display()))?
        }
        None => {
            std::io::stdin().read_to_end(&mut body)?;
        }
    }
    // A fresh message id for a GitLab signing token. (The same body signed
    // again is still answered `duplicate`: deployd remembers bodies too.)
    // Always the current secret: the previous one is only for receiving.
    let now = std::time::SystemTime::now();
    let id = format!(
        "msg_deployd_sign_{}",
        now.duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos()
    );
    let Some(headers) = forge::sign_headers(p.provider, &p.key, &body, now, &id) else {
        return Err(Failure::Usage(anyhow!(
            "{name} is a {} project with a secret token: GitLab sends the token itself in \
             X-Gitlab-Token, there is no signature to compute (send -H 'X-Gitlab-Token: <the \
             secret>'). A secret that is a GitLab signing token (whsec_…) gets signatures.",
            p.provider
        )));
    };
    if as_headers {
        for (header, value) in &headers {
            outln!("{header}: {value}");
        }
        return Ok(());
    }
    match headers.as_slice() {
        [(header, value)] => {
            outln!("{value}");
            if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
                eprintln!("(send it as the {header} header)");
            }
            Ok(())
        }
        _ => Err(Failure::Usage(anyhow!(
            "{name} is a {} project with a signing token: its signature goes with a webhook-id \
             and a webhook-timestamp; run `deployd sign --header` to print all three",
            p.provider
        ))),
    }
}

/// Live status from the daemon, or what the disk says when none answers.
fn status(config: &Config, json: bool) -> Result<()> {
    let rt = runtime()?;
    let mut live = None;
    let asked = rt.block_on(control::call(
        &config.server.control_socket,
        &ControlRequest::Status,
        |reply| {
            if let Reply::Status(s) = reply {
                live = Some(s);
            }
            Ok(())
        },
        |_| Ok(()),
    ));
    let (projects, from_daemon) = match (asked, live) {
        (Ok(()), Some(s)) => (s, true),
        _ => (status_from_disk(config), false),
    };
    if json {
        // Each project with the push that waits for its CI, if any:
        // `{"sha", "since", "workflows": [{"workflow", "state"}]}`, and its
        // notifications and statuses not delivered yet, per target:
        // `{"notify.ops": {"pending", "failed", "last_error"}}`.
        let mut out = serde_json::to_value(&projects).map_err(anyhow::Error::from)?;
        let mut undelivered = outbox::undelivered_by_project(&config.server.state_dir);
        if let Some(list) = out.as_array_mut() {
            for (v, p) in list.iter_mut().zip(&projects) {
                v["waiting_for_ci"] = waiting_for_ci(config, &p.project)
                    .map(|(sha, since, states)| {
                        serde_json::json!({"sha": sha, "since": since, "workflows": states})
                    })
                    .unwrap_or(serde_json::Value::Null);
                v["undelivered"] =
                    serde_json::to_value(undelivered.remove(&p.project).unwrap_or_default())
                        .map_err(anyhow::Error::from)?;
            }
        }
        outln!(
            "{}",
            serde_json::to_string_pretty(&out).map_err(anyhow::Error::from)?
        );
        return Ok(());
    }
    if !from_daemon {
        outln!(
            "(no daemon answers on {}; state read from disk)",
            config.server.control_socket.display()
        );
    }
    for p in &projects {
        let headline = match (&p.running, p.state.as_str()) {
            (Some(r), "interrupted") => format!(
                "interrupted: run {} ({} {}) was going when its daemon died; {}",
                r.id,
                r.request.trigger,
                r.short_sha(),
                next_daemon_will(config, r, p.pending.as_ref())
            ),
            (Some(r), _) => format!(
                "running run {} ({} {}) since {}",
                r.id,
                r.request.trigger,
                r.short_sha(),
                r.started_at
            ),
            (None, state) => state.to_string(),
        };
        outln!("{}: {headline}", p.project);
        if let Some((sha, since, states)) = waiting_for_ci(config, &p.project) {
            let waited = SystemTime::now().duration_since(since).unwrap_or_default();
            outln!(
                "  waiting for CI on {}: {} ({})",
                &sha[..sha.len().min(12)],
                states
                    .iter()
                    .map(|s| format!("{} {}", s.workflow, s.state))
                    .collect::<Vec<_>>()
                    .join(", "),
                rough(waited)
            );
        }
        if let Some(q) = &p.pending {
            outln!(
                "  pending: {} {} ({}, received {})",
                q.push.git_ref,
                q.push.short_sha(),
                q.trigger,
                q.received_at
            );
        }
        match &p.last {
            Some(r) => outln!(
                "  last:    run {} {} {} ({} {}, took {})",
                r.id,
                r.status,
                r.started_at,
                r.request.trigger,
                r.short_sha(),
                duration(r)
            ),
            None => outln!("  last:    never run"),
        }
        if let Some(r) = &p.last {
            for line in outputs_lines(r) {
                outln!("           {line}");
            }
        }
    }
    let undelivered = outbox::undelivered(&config.server.state_dir);
    if !undelivered.is_empty() {
        outln!("undelivered notifications and statuses:");
        for (target, t) in undelivered {
            outln!(
                "  {target}: {} waiting, {} given up{}",
                t.pending,
                t.failed,
                t.last_error
                    .map(|e| format!(" (last: {e})"))
                    .unwrap_or_default()
            );
        }
    }
    Ok(())
}

/// The push of `project` that waits for its CI, read from its gate file
/// (durable and current, daemon or not): its commit, since when it waits,
/// and each required workflow's state.
fn waiting_for_ci(
    config: &Config,
    project: &str,
) -> Option<(String, SystemTime, Vec<gates::WorkflowState>)> {
    let p = config.projects.get(project)?;
    if p.after_ci.is_empty() {
        return None;
    }
    let g: gates::Gate<Request> = gates::load(&config.server.state_dir, project).ok()?;
    let w = g.waiting()?;
    let policy = ci_gate::policy(p);
    Some((
        w.sha.clone(),
        SystemTime::UNIX_EPOCH + Duration::from_millis(w.since),
        g.states(&policy),
    ))
}

/// A wait in whole seconds, minutes or hours and minutes: `45s`, `12m`,
/// `1h 5m`.
fn rough(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        _ => format!("{}h {}m", s / 3600, s % 3600 / 60),
    }
}

/// What the next daemon will do about `interrupted`, the newest run of its
/// project left recorded `running` (the decision recovery itself takes).
fn next_daemon_will(config: &Config, interrupted: &Run, pending: Option<&Request>) -> String {
    let history = History::new(&config.server.state_dir, &config.server.log_dir);
    let latest = history.latest(&interrupted.request.project).ok().flatten();
    executor::recovery_plan(interrupted, latest.as_ref(), pending).describe()
}

fn status_from_disk(config: &Config) -> Vec<ProjectStatus> {
    let history = History::new(&config.server.state_dir, &config.server.log_dir);
    config
        .projects
        .keys()
        .map(|name| {
            let runs = history.list(name, Some(3)).unwrap_or_default();
            let going = Going::of(&config.server.state_dir, name, &runs);
            let running = runs.iter().find(|r| r.status == Status::Running).cloned();
            let pending = queue::read_pending(&config.server.state_dir, name);
            let state = match (&running, &pending) {
                (Some(r), _) if going.cut_off(r) => ProjectState::Interrupted,
                (Some(_), _) => ProjectState::Running,
                (None, Some(_)) => ProjectState::Pending,
                _ => ProjectState::Idle,
            };
            ProjectStatus {
                project: name.clone(),
                state,
                running,
                pending,
                last: runs.into_iter().find(|r| r.status != Status::Running),
            }
        })
        .collect()
}

/// Which of a project's runs recorded `running` still run, judged from disk
/// as `status` and `history` judge them without a daemon's word.
struct Going {
    /// The newest run recorded `running`: the only one that can still be
    /// going, since runs of a project never overlap.
    newest: Option<u64>,
    /// Whether something holds the project's lock: that run's processes (a
    /// daemon waiting for them to exit holds nothing).
    held: bool,
}

impl Going {
    /// For `project`, whose newest runs, newest first, are `runs`.
    fn of(state_dir: &Path, project: &str, runs: &[Run]) -> Going {
        Going {
            newest: runs
                .iter()
                .find(|r| r.status == Status::Running)
                .map(|r| r.id),
            held: RunLock::is_held(&lock::path(state_dir, project)),
        }
    }

    /// Whether `run` is recorded `running` but was cut off: whoever ran it
    /// (a daemon, a `deployd deploy`) died and none of its processes is
    /// left. Only the next daemon records it `interrupted`.
    fn cut_off(&self, run: &Run) -> bool {
        run.status == Status::Running && (self.newest != Some(run.id) || !self.held)
    }
}

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

fn history(config: &Config, name: &str, limit: usize, json: bool) -> Result<()> {
    project(config, name)?;
    let h = History::new(&config.server.state_dir, &config.server.log_dir);
    let runs = h
        .list(name, Some(limit))
        .with_context(|| format!("cannot read the history of {name}"))?;
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&runs).map_err(anyhow::Error::from)?
        );
        return Ok(());
    }
    if runs.is_empty() {
        outln!("{name} has not run yet");
        return Ok(());
    }
    let going = Going::of(&config.server.state_dir, name, &runs);
    let mut rows = vec![Row::header()];
    for r in runs {
        // As `status` says it: cut off, and what the next daemon will do.
        let cut_off = going.cut_off(&r).then(|| {
            let pending = queue::read_pending(&config.server.state_dir, name);
            format!(
                "  (was going when its daemon died; {})",
                next_daemon_will(config, &r, pending.as_ref())
            )
        });
        let status = match (r.status, r.exit_code) {
            _ if cut_off.is_some() => Status::Interrupted.to_string(),
            (Status::Failed, Some(c)) => format!("failed({c})"),
            (s, _) => s.to_string(),
        };
        // Why the CI gate stopped it, or that it went past it.
        let ci = match &r.request.ci {
            Some(n) if n.bypassed => format!("  (past its CI: {} pending)", n.pending.join(", ")),
            Some(n) if n.workflow.is_some() => format!(
                "  (CI: {} {})",
                n.workflow.as_deref().unwrap_or_default(),
                n.conclusion.as_deref().unwrap_or_default()
            ),
            Some(n) => format!("  (CI: {} pending)", n.pending.join(", ")),
            None => String::new(),
        };
        let delivery = if r.request.push.delivery.is_empty() {
            "-"
        } else {
            &r.request.push.delivery
        };
        rows.push(Row {
            cells: [
                r.id.to_string(),
                status,
                r.request.trigger.to_string(),
                r.started_at.clone(),
                duration(&r),
                r.short_sha().to_string(),
            ],
            last: format!("{delivery}{ci}{}", cut_off.unwrap_or_default()),
            under: outputs_lines(&r),
        });
    }
    for line in table(&rows) {
        outln!("{line}");
    }
    Ok(())
}

/// One line of the `history` table, and the lines printed under it.
struct Row {
    /// Run, status, trigger, started, took, commit.
    cells: [String; 6],
    /// The delivery and any note: the last column, not padded.
    last: String,
    /// Indented lines under the row (the run's outputs).
    under: Vec<String>,
}

impl Row {
    fn header() -> Row {
        Row {
            cells: ["RUN", "STATUS", "TRIGGER", "STARTED", "TOOK", "COMMIT"].map(String::from),
            last: "DELIVERY".into(),
            under: Vec::new(),
        }
    }
}

/// The `history` table's lines. Two spaces between columns, each column as
/// wide as its widest cell and at least as wide as its usual values (the
/// longest status word, a timestamp, a 12-digit commit), so every status
/// word, trigger and duration lines up. Run and took are right-aligned.
fn table(rows: &[Row]) -> Vec<String> {
    let longest_status = Status::ALL
        .iter()
        .map(|s| s.to_string().len())
        .chain(["failed(255)".len()])
        .max()
        .unwrap_or(0);
    let mut widths = [5, longest_status, "rollback".len(), 24, 8, 12];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(&row.cells) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut lines = Vec::new();
    for row in rows {
        let [run, status, trigger, started, took, commit] = &row.cells;
        let [wr, ws, wt, wst, wto, wc] = widths;
        lines.push(format!(
            "{run:>wr$}  {status:<ws$}  {trigger:<wt$}  {started:<wst$}  {took:>wto$}  \
             {commit:<wc$}  {}",
            row.last
        ));
        for u in &row.under {
            lines.push(format!("{:>wr$}  {u}", ""));
        }
    }
    lines
}

/// A run's script outputs (README, "Script outputs"), one `key: value`
/// line each, for `history` and `status`.
fn outputs_lines(run: &Run) -> Vec<String> {
    run.outputs
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect()
}

fn logs(config: &Config, name: &str, id: Option<u64>, follow: bool) -> Result<()> {
    project(config, name)?;
    let h = History::new(&config.server.state_dir, &config.server.log_dir);
    let run = match id {
        Some(id) => h.get(name, id)?.ok_or_else(|| {
            Failure::Usage(anyhow!(
                "{name} has no run {id} (see `deployd history {name}`)"
            ))
        })?,
        None => h
            .latest(name)?
            .ok_or_else(|| Failure::Runtime(anyhow!("{name} has not run yet")))?,
    };
    let lock_path = lock::path(&config.server.state_dir, name);
    let mut orphaned = false;
    runtime()?.block_on(follow_log(&run.log, || {
        if !follow {
            return true;
        }
        match h.get(name, run.id) {
            // Recorded running but nothing holds the lock: its daemon died
            // and no process of the run is left; do not wait forever.
            Ok(Some(r)) if r.status == Status::Running => {
                orphaned = !RunLock::is_held(&lock_path);
                orphaned
            }
            _ => true,
        }
    }))?;
    if orphaned {
        let newest_running = h
            .list(name, None)
            .unwrap_or_default()
            .into_iter()
            .find(|r| r.status == Status::Running);
        let next = match newest_running {
            // Only the newest interrupted run can be run again.
            Some(r) if r.id == run.id => {
                let pending = queue::read_pending(&config.server.state_dir, name);
                next_daemon_will(config, &run, pending.as_ref())
            }
            _ => "it is not run again: a later run came after it".into(),
        };
        eprintln!(
            "deployd: run {} is recorded running but none of its processes is left: \
             its daemon died. The next daemon records it interrupted; {next}.",
            run.id
        );
    }
    Ok(())
}

/// Copies `log` to stdout as it grows, until `done()` says the run ended
/// (then once more, for the last lines).
async fn follow_log(log: &Path, mut done: impl FnMut() -> bool) -> std::io::Result<()> {
    let mut offset = 0u64;
    let mut out = std::io::stdout();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let finished = done();
        if let Ok(mut f) = std::fs::File::open(log) {
            use std::io::Seek;
            f.seek(std::io::SeekFrom::Start(offset))?;
            // A piece at a time: a log of any size costs one buffer.
            loop {
                let n = f.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                offset += n as u64;
                out.write_all(&buf[..n])?;
            }
            out.flush()?;
        } else if finished {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("log {} is gone", log.display()),
            ));
        }
        if finished {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Who runs `deployd deploy`, for DEPLOY_PUSHER: the user behind sudo, else
/// this process's login name.
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

/// What `deploy` queues: a manual deploy, or a rollback.
enum What {
    /// `deployd deploy`.
    Manual {
        git_ref: Option<String>,
        sha: Option<String>,
    },
    /// `deployd rollback`.
    Rollback { to: Option<u64> },
}

/// `deployd deploy` and `deployd rollback`: through the daemon when one
/// answers, else here under the project's lock.
fn deploy(config: &Config, name: &str, what: What, wait: bool) -> Result<()> {
    let p = project(config, name)?;
    let rt = runtime()?;
    let request = match &what {
        What::Manual { git_ref, sha } => ControlRequest::Deploy {
            project: name.to_string(),
            git_ref: git_ref.clone(),
            sha: sha.clone(),
            wait,
            user: user(),
        },
        What::Rollback { to } => ControlRequest::Rollback {
            project: name.to_string(),
            to: *to,
            wait,
            user: user(),
        },
    };
    let mut result: Option<Run> = None;
    let mut error = None;
    let mut out = std::io::stdout();
    let asked = rt.block_on(control::call(
        &config.server.control_socket,
        &request,
        |reply| {
            match reply {
                Reply::Queued { behind, .. } if wait => {
                    eprintln!(
                        "deployd: {name}: queued through the daemon \
                         (Ctrl-C stops following; the run goes on in the daemon)"
                    );
                    if let Some(r) = behind {
                        eprintln!("deployd: {name}: {}", waiting_for(&r));
                    }
                }
                Reply::Queued { .. } => eprintln!("deployd: {name}: queued through the daemon"),
                Reply::Started(r) => eprintln!(
                    "deployd: {name}: run {} started (log {})",
                    r.id,
                    r.log.display()
                ),
                Reply::RollingBack(r) => eprintln!("deployd: {name}: {}", rolling_back(&r)),
                Reply::Finished(r) => result = Some(r),
                Reply::Error(e) => error = Some(e),
                Reply::Output(_) | Reply::Status(_) | Reply::Reloaded(_) | Reply::Cancelled(_) => {}
            }
            Ok(())
        },
        |bytes| {
            out.write_all(bytes)?;
            out.flush()
        },
    ));
    match asked {
        Ok(()) => {
            if let Some(e) = error {
                return Err(Failure::Runtime(anyhow!("{name}: the daemon refused: {e}")));
            }
            if !wait {
                return Ok(());
            }
            match result {
                Some(r) => finish_message(&r, p),
                None => Err(Failure::Runtime(anyhow!(
                    "the daemon closed the connection before the run ended (stopping?); \
                     see `deployd status` and `deployd history {name}`"
                ))),
            }
        }
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            eprintln!(
                "deployd: no daemon answers on {}; running {name} here, under its lock",
                config.server.control_socket.display()
            );
            if !wait {
                eprintln!("deployd: --no-wait needs a daemon; running in the foreground");
            }
            let seq = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0);
            let req = match what {
                What::Manual { git_ref, sha } => {
                    // `--sha` of the push that waits for its CI: that push,
                    // past its CI.
                    let waiting = match &sha {
                        Some(sha) if !sha.is_empty() => {
                            ci_gate::bypass_on_disk(&config.server.state_dir, p, sha)
                                .context("cannot read the CI gate")?
                        }
                        _ => None,
                    };
                    match waiting {
                        Some(w) => {
                            Request::new(seq, &p.name, queue::Trigger::Manual, w.push.clone())
                                .with_ci(w.ci)
                        }
                        None => Request::manual(seq, p, git_ref, sha, user())
                            .map_err(|e| Failure::Usage(anyhow!(e)))?,
                    }
                }
                What::Rollback { to } => {
                    let h = History::new(&config.server.state_dir, &config.server.log_dir);
                    let runs = h.list(name, None)?;
                    let target = crate::store::history::rollback_target(&runs, to, None)
                        .map_err(|why| Failure::Runtime(anyhow!("{name}: {why}")))?;
                    eprintln!("deployd: {name}: {}", rolling_back(&target));
                    executor::rollback_request(&target, seq, &user())
                }
            };
            rt.block_on(deploy_direct(config, p, req))
        }
        Err(e) => Err(Failure::Runtime(anyhow!(
            "cannot talk to the daemon on {}: {e}",
            config.server.control_socket.display()
        ))),
    }
}

/// What a rollback deploys, in words.
fn rolling_back(target: &Run) -> String {
    format!(
        "rolling back to {} {} (the commit of run {}, {} {})",
        target.request.push.git_ref,
        target.request.push.after,
        target.id,
        target.status,
        target.started_at
    )
}

/// Where a direct run (no daemon) looks for a cancel: a file naming its run
/// id, written by `deployd cancel`.
fn cancel_marker(state_dir: &Path, project: &str) -> PathBuf {
    lock::path(state_dir, project).with_extension("cancel")
}

/// `deployd cancel`: through the daemon, or without one by asking the
/// `deployd deploy` that runs the project (README, *Cancel*).
fn cancel(config: &Config, name: &str, pending: bool) -> Result<()> {
    let p = project(config, name)?;
    let rt = runtime()?;
    let mut answer = None;
    let asked = rt.block_on(control::call(
        &config.server.control_socket,
        &ControlRequest::Cancel {
            project: name.to_string(),
            pending,
            user: user(),
        },
        |reply| {
            match reply {
                Reply::Cancelled(c) => answer = Some(Ok(c)),
                Reply::Error(e) => answer = Some(Err(e)),
                _ => {}
            }
            Ok(())
        },
        |_| Ok(()),
    ));
    match (asked, answer) {
        (_, Some(Ok(c))) => {
            say_cancelled(name, &c);
            Ok(())
        }
        (_, Some(Err(e))) => Err(Failure::Runtime(anyhow!("{name}: nothing to cancel: {e}"))),
        (Ok(()), None) => Err(Failure::Runtime(anyhow!(
            "the daemon closed the connection without answering (stopping?)"
        ))),
        (Err(e), None)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            cancel_direct(config, p, pending)
        }
        (Err(e), None) => Err(Failure::Runtime(anyhow!(
            "cannot talk to the daemon on {}: {e}",
            config.server.control_socket.display()
        ))),
    }
}

fn say_cancelled(name: &str, c: &executor::Cancelled) {
    match c {
        executor::Cancelled::Run(r) => eprintln!(
            "deployd: {name}: run {} {} ({} {})",
            r.id,
            r.status,
            r.request.trigger,
            r.short_sha()
        ),
        executor::Cancelled::Request(q) => eprintln!(
            "deployd: {name}: request cancelled before it ran ({} {} {}, received {})",
            q.trigger,
            q.push.git_ref,
            q.push.short_sha(),
            q.received_at
        ),
    }
}

/// `deployd cancel` with no daemon: a run going on is a `deployd deploy`'s
/// (its lock is held): it is asked, through [`cancel_marker`], to stop its
/// script and record it cancelled, and this waits for that record. The
/// script is never signalled from here: the process that started it knows
/// its group for sure, a pid read from a record may be stale.
fn cancel_direct(config: &Config, p: &config::Project, pending: bool) -> Result<()> {
    let (s, name) = (&config.server, p.name.as_str());
    if pending {
        let file = s.state_dir.join("queue").join(format!("{name}.json"));
        let Some(req) = queue::read_pending(&s.state_dir, name) else {
            return Err(Failure::Runtime(anyhow!(
                "{name}: nothing to cancel: no pending request"
            )));
        };
        std::fs::remove_file(&file).with_context(|| format!("cannot remove {}", file.display()))?;
        // Its record: the event, for the next daemon's subscribers.
        let lifecycle = Lifecycle {
            history: Arc::new(History::new(&s.state_dir, &s.log_dir)),
            state_dir: s.state_dir.clone(),
            events: Publisher::Spool(Arc::new(Spool::new(&s.state_dir))),
        };
        runtime()?.block_on(lifecycle.dropped(&req));
        say_cancelled(name, &executor::Cancelled::Request(Box::new(req)));
        return Ok(());
    }
    let h = History::new(&s.state_dir, &s.log_dir);
    let runs = h.list(name, Some(3))?;
    let going = Going::of(&s.state_dir, name, &runs);
    let Some(run) = runs
        .into_iter()
        .find(|r| r.status == Status::Running && !going.cut_off(r))
    else {
        return Err(Failure::Runtime(anyhow!(
            "{name}: nothing to cancel: no run is going on"
        )));
    };
    let lock_path = lock::path(&s.state_dir, name);
    let by_hand = format!(
        "processes of the run still hold its lock: stop them by hand \
         (`fuser -v {}` lists them)",
        lock_path.display()
    );
    // Only a daemon starts these: no `deployd deploy` is there to ask.
    if matches!(
        run.request.trigger,
        queue::Trigger::Webhook | queue::Trigger::Recovery | queue::Trigger::Web
    ) {
        return Err(Failure::Runtime(anyhow!(
            "{name}: run {} ({}) was started by a daemon that is gone, and {by_hand}; \
             a daemon started now waits for them to exit, then runs it again",
            run.id,
            run.request.trigger
        )));
    }
    let marker = cancel_marker(&s.state_dir, name);
    fsutil::write_atomic(&marker, run.id.to_string().as_bytes())?;
    crate::run::runner::note(&run, &format!("cancelled by {}", user()));
    let deadline = std::time::Instant::now() + p.kill_grace + Duration::from_secs(10);
    loop {
        match h.get(name, run.id)? {
            Some(r) if r.status != Status::Running => {
                say_cancelled(name, &executor::Cancelled::Run(Box::new(r)));
                return Ok(());
            }
            _ if std::time::Instant::now() > deadline || !RunLock::is_held(&lock_path) => {
                let _ = std::fs::remove_file(&marker);
                return Err(Failure::Runtime(anyhow!(
                    "{name}: run {} did not stop: the `deployd deploy` or the daemon that ran \
                     it may be gone, and {by_hand}",
                    run.id
                )));
            }
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// What a deploy waits for when another run of the project is going on.
fn waiting_for(run: &Run) -> String {
    format!(
        "waiting for run {} ({} {}, started {}) to finish",
        run.id,
        run.request.trigger,
        run.short_sha(),
        run.started_at
    )
}

fn finish_message(run: &Run, p: &config::Project) -> Result<()> {
    eprintln!(
        "deployd: {}: run {} {}",
        run.request.project,
        run.id,
        run.ended_as(p.timeout)
    );
    if run.status == Status::Succeeded {
        Ok(())
    } else {
        Err(Failure::Deploy)
    }
}

/// Refuses to run a deploy as root over a state_dir another user owns (the
/// daemon's): the script would run outside the unit's sandbox and leave
/// root-owned files that later break the daemon's own deploys.
fn refuse_foreign_root(state_dir: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(state_dir) else {
        return Ok(());
    };
    if !nix::unistd::geteuid().is_root() || meta.uid() == 0 {
        return Ok(());
    }
    let owner = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(meta.uid()))
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| meta.uid().to_string());
    Err(Failure::Usage(anyhow!(
        "{} belongs to {owner}: run the deploy as that user \
         (sudo -u {owner} deployd deploy …) so its files keep their owner",
        state_dir.display()
    )))
}

/// Runs the script in this process exactly as the daemon would, through
/// the same run lifecycle: same lock, same environment, same log and record
/// (trigger `manual`). Its run events go to the spool, for the next daemon's
/// subscribers.
async fn deploy_direct(config: &Config, p: &config::Project, req: Request) -> Result<()> {
    let s = &config.server;
    refuse_foreign_root(&s.state_dir)?;
    fsutil::create_top_dirs(&s.state_dir, &s.log_dir)?;
    // Ctrl-C gives up waiting for the lock, or interrupts the script.
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        let _ = stop_tx.send(true);
    });
    let history = Arc::new(History::new(&s.state_dir, &s.log_dir));
    let lifecycle = Lifecycle {
        history: history.clone(),
        state_dir: s.state_dir.clone(),
        events: Publisher::Spool(Arc::new(Spool::new(&s.state_dir))),
    };
    let mut req = req;
    loop {
        let ended = run_direct(&lifecycle, &history, p, req, stop_rx.clone()).await?;
        ended.saved.context("cannot save the run record")?;
        let run = ended.run;
        if run.status != Status::Unhealthy || p.on_unhealthy != config::OnUnhealthy::Rollback {
            return finish_message(&run, p);
        }
        eprintln!("deployd: {}: run {} unhealthy", p.name, run.id);
        // As the daemon does (README, *Health checks*): once.
        let note = |text: &str| {
            if let Ok(mut log) = crate::run::runner::open_log(&run) {
                crate::run::runner::log_line(&mut log, text);
            }
            eprintln!("deployd: {}: {text}", p.name);
        };
        if run.request.trigger == queue::Trigger::Rollback {
            note("this unhealthy run was a rollback: not rolling back again");
            return Err(Failure::Deploy);
        }
        let runs = history.list(&p.name, None)?;
        let target = match crate::store::history::rollback_target(&runs, None, Some(&run)) {
            Ok(t) => t,
            Err(why) => {
                note(&format!("on_unhealthy = \"rollback\", but {why}"));
                return Err(Failure::Deploy);
            }
        };
        note(&format!(
            "unhealthy: rolling back to {} (the commit of run {})",
            target.short_sha(),
            target.id
        ));
        req = executor::rollback_request(&target, run.request.seq + 1, &user());
    }
}

/// One run of a direct deploy, its log copied to stdout.
async fn run_direct(
    lifecycle: &Lifecycle,
    history: &Arc<History>,
    p: &config::Project,
    req: Request,
    stop_rx: watch::Receiver<bool>,
) -> Result<crate::run::lifecycle::Ended> {
    let state_dir = lifecycle.state_dir.clone();
    lifecycle.queued(&req).await;
    let (cancel_tx, cancel_rx) = watch::channel(false);
    let mut direct = Direct {
        history,
        name: &p.name,
        state_dir: &state_dir,
        cancel: Some(cancel_tx),
        tail: None,
    };
    let ended = lifecycle.run(p, req, stop_rx, cancel_rx, &mut direct).await;
    if let Some((done, tail)) = direct.tail {
        let _ = done.send(true);
        let _ = tail.await;
    }
    let _ = std::fs::remove_file(cancel_marker(&state_dir, &p.name));
    match ended {
        Ok(ended) => Ok(ended),
        Err((_, NotRun::Stopped | NotRun::Cancelled)) => Err(Failure::Runtime(anyhow!(
            "interrupted while waiting for the lock"
        ))),
        Err((_, NotRun::Lock(e))) => Err(anyhow::Error::from(e)
            .context("cannot take the run lock")
            .into()),
        Err((_, NotRun::Record(e))) => Err(anyhow::Error::from(e)
            .context("cannot record the run")
            .into()),
    }
}

/// A direct deploy's side of a run's steps: it speaks on stderr and copies
/// the log to stdout as it grows.
struct Direct<'a> {
    history: &'a History,
    name: &'a str,
    state_dir: &'a Path,
    /// Turned true when `deployd cancel` asks for this run (see
    /// [`cancel_marker`]); moved to the task that watches for it.
    cancel: Option<watch::Sender<bool>>,
    /// Says the run ended, to the task copying its log.
    tail: Option<(
        watch::Sender<bool>,
        tokio::task::JoinHandle<std::io::Result<()>>,
    )>,
}

impl Caller for Direct<'_> {
    fn waiting(&mut self) {
        // The newest run recorded running holds the lock, unless
        // processes of a run whose daemon died do (no record says so).
        let holder = self
            .history
            .list(self.name, Some(3))
            .unwrap_or_default()
            .into_iter()
            .find(|r| r.status == Status::Running);
        match holder {
            Some(r) => eprintln!("deployd: {}: {}", self.name, waiting_for(&r)),
            None => eprintln!(
                "deployd: {}: another run of it holds its lock; waiting for it to finish",
                self.name
            ),
        }
    }

    async fn started(&mut self, run: &Run) {
        eprintln!(
            "deployd: {}: run {} started (log {})",
            self.name,
            run.id,
            run.log.display()
        );
        let (done_tx, done_rx) = watch::channel(false);
        // A marker left by a cancel of an earlier run does not count.
        let marker = cancel_marker(self.state_dir, self.name);
        let _ = std::fs::remove_file(&marker);
        if let Some(cancel) = self.cancel.take() {
            let (id, done) = (run.id.to_string(), done_rx.clone());
            tokio::spawn(async move {
                while !*done.borrow() {
                    let asked = tokio::fs::read_to_string(&marker).await;
                    if asked.is_ok_and(|a| a.trim() == id) {
                        let _ = cancel.send(true);
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            });
        }
        let log = run.log.clone();
        let tail = tokio::spawn(async move { follow_log(&log, || *done_rx.borrow()).await });
        self.tail = Some((done_tx, tail));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where the header's columns named `names` start.
    fn starts(header: &str, names: &[&str]) -> Vec<usize> {
        names
            .iter()
            .map(|n| header.find(n).unwrap_or(usize::MAX))
            .collect()
    }

    #[test]
    fn history_columns_line_up_for_every_status_word() {
        let mut rows = vec![Row::header()];
        let words = Status::ALL
            .iter()
            .map(|s| s.to_string())
            .chain(["failed(3)".to_string(), "failed(255)".to_string()]);
        for (i, status) in words.enumerate() {
            // A run of hours takes more room than the column's usual width.
            let took = if i == 0 { "1h 2m 3s 400ms" } else { "2s 115ms" };
            rows.push(Row {
                cells: [
                    (i + 1).to_string(),
                    status,
                    "recovery".into(),
                    "2026-11-26T22:46:47.491Z".into(),
                    took.into(),
                    "68e6095da7c6".into(),
                ],
                last: "d-1".into(),
                under: vec![],
            });
        }
        let lines = table(&rows);
        let header = &lines[0];
        let cols = starts(header, &["TRIGGER", "STARTED", "COMMIT", "DELIVERY"]);
        for line in &lines[1..] {
            for (c, want) in cols
                .iter()
                .zip(["recovery", "2026-", "68e6095da7c6", "d-1"])
            {
                assert_eq!(
                    line.get(*c..*c + want.len()),
                    Some(want),
                    "\n{header}\n{line}"
                );
                assert_eq!(line.get(c - 2..*c), Some("  "), "\n{header}\n{line}");
            }
        }
    }
}
