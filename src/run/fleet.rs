//! A rolling deploy over a project's hosts (docs/fleet.md): the step of a
//! run's lifecycle that replaces the local script when the project has
//! `hosts`.
//!
//! The hosts go in batches of `batch`, in the order of the config. Each host
//! of a batch runs the deploy script over ssh ([`crate::run::ssh`]), then the
//! project's health check for that host (`{host}` in its arguments is the
//! host's address); the next batch starts only when the whole batch is
//! done. A host that fails counts against `max_failures`; past it the
//! rollout stops, the hosts not reached are `skipped`, and with
//! `on_host_failure = "rollback"` the hosts done get the previous commit
//! again.
//!
//! One run, one record: every host's state is in the record's `hosts`,
//! saved whenever one changes, so that a daemon killed mid-rollout leaves
//! behind which hosts finished. Each host has its own log, written by ssh
//! itself; its lines are copied into the run's log as they come, prefixed
//! `[name] `.
//!
//! Recovery: the request of an interrupted run is queued again (trigger
//! `recovery`, [`crate::run::executor`]); its rollout finds the interrupted
//! run of the same commit and does not run the hosts that finished there
//! again (`already_done`), it says so in the log.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::sync::watch;

use crate::config::Project;
use crate::config::fleet::{Fleet, Host, OnHostFailure};
use crate::fsutil;
use crate::run::health;
use crate::run::lifecycle::blocking;
use crate::run::runner::{self, Outcome};
use crate::run::ssh::{self, RemoteScript};
use crate::store::history::{History, Run, Status};
use crate::store::hosts::{self, HostRun, HostStatus};
use crate::store::log_tail::read_lines;
use crate::store::queue::Trigger;

/// What every host's task of one rollout shares.
struct Ctx {
    project: Project,
    fleet: Fleet,
    /// The ControlMaster sockets' directory.
    control: PathBuf,
    /// The local script's bytes, sent on stdin; empty with `remote_script`.
    script: Vec<u8>,
    stop: watch::Receiver<bool>,
    cancel: watch::Receiver<bool>,
}

/// How one host's part ended.
struct HostEnd {
    status: HostStatus,
    exit_code: Option<i32>,
    note: String,
    outcome: Outcome,
}

/// Rolls `run` out over `fleet`'s hosts (see the module's doc); `run.hosts`
/// holds each host's part when it returns, and the outcome is the run's:
/// `Exited(0)` when no more than `max_failures` hosts failed, the first
/// failure's outcome past it, `Interrupted`/`Cancelled` when `stop`/`cancel`
/// turned true.
pub(crate) async fn rollout(
    project: &Project,
    fleet: &Fleet,
    run: &mut Run,
    history: &Arc<History>,
    state_dir: &Path,
    stop: watch::Receiver<bool>,
    cancel: watch::Receiver<bool>,
) -> Outcome {
    let control = ssh::control_dir(state_dir);
    if let Err(e) = fsutil::create_dir(&control, fsutil::STATE_DIR_MODE) {
        let msg = format!("cannot create {}: {e}", control.display());
        runner::note(run, &msg);
        return Outcome::NotStarted(msg);
    }
    let script = match &fleet.remote_script {
        Some(_) => Vec::new(),
        None => match std::fs::read(&project.script) {
            Ok(s) => s,
            Err(e) => {
                let msg = format!("cannot read {}: {e}", project.script.display());
                runner::note(run, &msg);
                return Outcome::NotStarted(msg);
            }
        },
    };
    plan(project, fleet, run, history).await;
    let ctx = Arc::new(Ctx {
        project: project.clone(),
        fleet: fleet.clone(),
        control,
        script,
        stop: stop.clone(),
        cancel: cancel.clone(),
    });
    let mut failed: Option<Outcome> = None;
    let mut failures = 0;
    let todo: Vec<usize> = (0..run.hosts.len())
        .filter(|i| run.hosts[*i].status == HostStatus::Pending)
        .collect();
    for batch in todo.chunks(fleet.batch) {
        if *stop.borrow() || *cancel.borrow() || failed.is_some() {
            break;
        }
        let mut tasks = tokio::task::JoinSet::new();
        for &i in batch {
            let h = &mut run.hosts[i];
            h.status = HostStatus::Running;
            h.started_at = Some(fsutil::now_rfc3339());
            let (ctx, host, env_run) = (ctx.clone(), fleet.hosts[i].clone(), run.clone());
            tasks.spawn(async move { (i, deploy_host(&ctx, &host, &env_run).await) });
        }
        save(history, run).await;
        while let Some(joined) = tasks.join_next().await {
            let Ok((i, end)) = joined else { continue };
            let h = &mut run.hosts[i];
            h.status = end.status;
            h.exit_code = end.exit_code;
            h.note = end.note;
            h.finished_at = Some(fsutil::now_rfc3339());
            runner::note(run, &host_line(&run.hosts[i]));
            if end.status.failure() {
                failures += 1;
                if failures > fleet.max_failures && failed.is_none() {
                    failed = Some(end.outcome);
                }
            }
            save(history, run).await;
        }
    }
    let cancelled = *cancel.borrow();
    for h in &mut run.hosts {
        // Left pending when the daemon stops: the recovery run deploys them.
        if h.status == HostStatus::Pending && (failed.is_some() || cancelled) {
            h.status = HostStatus::Skipped;
        }
    }
    // What the hosts say, not what the signals say now: a stop or a cancel
    // that comes after the last host ended changes nothing, and a rollout
    // that failed stays failed (a recovery would deploy the failing commit
    // again).
    let past_max = failed.is_some();
    let outcome = match failed {
        Some(f) => f,
        None if run
            .hosts
            .iter()
            .any(|h| matches!(h.status, HostStatus::Interrupted | HostStatus::Pending)) =>
        {
            Outcome::Interrupted(None)
        }
        None if cancelled && run.hosts.iter().any(|h| !h.status.done()) => Outcome::Cancelled(None),
        None => Outcome::Exited(0),
    };
    if past_max {
        runner::note(
            run,
            &format!(
                "{failures} host(s) failed, more than max_failures = {}: the rollout stops",
                fleet.max_failures
            ),
        );
        if fleet.on_host_failure == OnHostFailure::Rollback {
            if *stop.borrow() || *cancel.borrow() {
                runner::note(run, "no rollback of the hosts done: the run was stopped");
            } else {
                roll_back(&ctx, run, history).await;
            }
        }
    }
    close_masters(&ctx, &run.hosts).await;
    runner::note(run, &format!("hosts: {}", hosts::summary(&run.hosts)));
    outcome
}

/// Fills `run.hosts` with every host pending, except, for a `recovery` run,
/// those that finished in the interrupted run of the same commit.
async fn plan(project: &Project, fleet: &Fleet, run: &mut Run, history: &Arc<History>) {
    let done_in = if run.request.trigger == Trigger::Recovery {
        let (h, name, id, sha) = (
            history.clone(),
            project.name.clone(),
            run.id,
            run.request.push.after.clone(),
        );
        blocking(move || h.list(&name, Some(50)))
            .await
            .unwrap_or_default()
            .into_iter()
            .find(|r| {
                r.id < id
                    && r.status == Status::Interrupted
                    && r.request.push.after == sha
                    && !r.hosts.is_empty()
            })
    } else {
        None
    };
    run.hosts = fleet
        .hosts
        .iter()
        .map(|host| {
            let before = done_in
                .as_ref()
                .and_then(|r| r.hosts.iter().find(|h| h.name == host.name))
                .filter(|h| h.status.done());
            HostRun {
                name: host.name.clone(),
                status: if before.is_some() {
                    HostStatus::AlreadyDone
                } else {
                    HostStatus::Pending
                },
                exit_code: before.and(Some(0)),
                started_at: None,
                finished_at: None,
                log: hosts::log_path(&run.log, &host.name),
                note: done_in
                    .as_ref()
                    .filter(|_| before.is_some())
                    .map(|r| format!("finished in interrupted run {}: not run again", r.id))
                    .unwrap_or_default(),
            }
        })
        .collect();
    for h in run.hosts.clone() {
        if h.status == HostStatus::AlreadyDone {
            runner::note(run, &format!("[{}] {}", h.name, h.note));
        }
    }
}

/// One host's deploy: the script over ssh, then the health check.
async fn deploy_host(ctx: &Ctx, host: &Host, run: &Run) -> HostEnd {
    let log = hosts::log_path(&run.log, &host.name);
    let outcome = remote(ctx, host, run, &log, "deploy").await;
    let mut end = ended(ctx, host, &log, outcome);
    if end.status == HostStatus::Succeeded && !ctx.project.health_check.is_empty() {
        let mut project = ctx.project.clone();
        for a in &mut project.health_check {
            *a = a.replace("{host}", &host.address);
        }
        project.env.insert("DEPLOY_HOST".into(), host.name.clone());
        let mut r = run.clone();
        r.log = log.clone();
        let mut tail = Tail::new(&log, &run.log, &host.name);
        let check = health::check(&project, &r, ctx.stop.clone(), ctx.cancel.clone());
        let outcome = tail.during(check).await;
        end = match outcome {
            Outcome::Exited(0) => end,
            Outcome::Unhealthy => HostEnd {
                status: HostStatus::Unhealthy,
                exit_code: Some(0),
                note: "the script succeeded, its health check did not".into(),
                outcome,
            },
            other => ended(ctx, host, &log, other),
        };
    }
    end
}

/// What an outcome of the remote script means for the host.
fn ended(ctx: &Ctx, host: &Host, log: &Path, outcome: Outcome) -> HostEnd {
    let (status, exit_code, note) = match &outcome {
        Outcome::Exited(0) => (HostStatus::Succeeded, Some(0), String::new()),
        Outcome::Exited(255) => {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let why = ssh::ssh_failure(&text, host, &ctx.fleet)
                .unwrap_or_else(|| "ssh or the script exited 255 (see its log)".into());
            (HostStatus::Failed, Some(255), why)
        }
        Outcome::Exited(c) => (
            HostStatus::Failed,
            Some(*c),
            format!("the script failed with exit code {c}"),
        ),
        Outcome::Signaled(s) => (
            HostStatus::Failed,
            None,
            format!("ssh was killed by signal {s}"),
        ),
        Outcome::TimedOut(_) => (
            HostStatus::TimedOut,
            None,
            format!(
                "timeout of {} reached",
                humantime::format_duration(ctx.project.timeout)
            ),
        ),
        Outcome::Interrupted(_) => (HostStatus::Interrupted, None, "deployd stopped".into()),
        Outcome::Cancelled(_) => (HostStatus::Cancelled, None, "cancelled".into()),
        Outcome::Unhealthy => (HostStatus::Unhealthy, Some(0), String::new()),
        Outcome::NotStarted(m) => (HostStatus::Failed, None, m.clone()),
    };
    HostEnd {
        status,
        exit_code,
        note,
        outcome,
    }
}

/// Runs the script on `host` for `run` (its environment: the push of
/// `run`), its output appended to `log` and copied, prefixed, into the
/// run's log. Stopped at the project's timeout, or when `stop`/`cancel`
/// turn true: the local ssh gets SIGTERM and its stdin closes, which stops
/// the remote side (see [`crate::run::ssh`]).
async fn remote(ctx: &Ctx, host: &Host, run: &Run, log: &Path, what: &str) -> Outcome {
    let mut file = match std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(fsutil::LOG_MODE)
        .open(log)
    {
        Ok(f) => f,
        Err(e) => return Outcome::NotStarted(format!("cannot open {}: {e}", log.display())),
    };
    let mut tail = Tail::new(log, &run.log, &host.name);
    runner::log_line(
        &mut file,
        &format!(
            "{what} of {} on {} ({}) started {}",
            run.request.push.short_sha(),
            host.name,
            host.destination(),
            fsutil::now_rfc3339()
        ),
    );
    let env = remote_env(&ctx.project, host, run);
    let script = match &ctx.fleet.remote_script {
        Some(p) => RemoteScript::Path(p),
        None => RemoteScript::Sent(ctx.script.len()),
    };
    let line = ssh::remote_command(script, &env, &ctx.project.args, ctx.project.kill_grace);
    let mut cmd = ssh::command(&ctx.fleet, host, &ctx.control, &line);
    cmd.stdin(Stdio::piped());
    let mut child = match runner::spawn_grouped(&mut cmd, &file, None) {
        Ok(c) => c,
        Err(e) => {
            let msg = format!("cannot start ssh: {e} (is openssh-client installed?)");
            runner::log_line(&mut file, &msg);
            return Outcome::NotStarted(msg);
        }
    };
    // Kept open until the script ends: its closing is the remote side's
    // signal to stop.
    let mut stdin = child.stdin.take();
    if let Some(s) = stdin.as_mut()
        && !ctx.script.is_empty()
    {
        let _ = s.write_all(&ctx.script).await;
        let _ = s.flush().await;
    }
    let signals = (ctx.stop.clone(), ctx.cancel.clone());
    let close = || drop(stdin.take());
    let supervised = runner::supervise(&mut child, &mut file, &ctx.project, signals, close, false);
    let outcome = tail.during(supervised).await;
    drop(stdin);
    outcome
}

/// The variables the remote script gets: the local script's (docs/configuration.md,
/// *What the script gets*) less what names this machine (`PATH`, `HOME`, `LANG`,
/// `DEPLOY_LOG`; `DEPLOY_OUTPUT` is a file on the host), plus `DEPLOY_HOST`
/// (the host's name) and `DEPLOY_HOST_ADDRESS`.
fn remote_env(project: &Project, host: &Host, run: &Run) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = runner::environment(project, run)
        .into_iter()
        .filter(|(k, _)| {
            !["PATH", "HOME", "LANG", "DEPLOY_LOG", "DEPLOY_OUTPUT"].contains(&k.as_str())
        })
        .collect();
    env.push(("DEPLOY_HOST".into(), host.name.clone()));
    env.push(("DEPLOY_HOST_ADDRESS".into(), host.address.clone()));
    env
}

/// `on_host_failure = "rollback"`: the hosts this run deployed get the
/// commit of the last successful run before it again (the same script,
/// trigger `rollback`), no health check.
async fn roll_back(ctx: &Ctx, run: &mut Run, history: &Arc<History>) {
    let (h, name) = (history.clone(), run.request.project.clone());
    let runs = blocking(move || h.list(&name, None))
        .await
        .unwrap_or_default();
    let target = match crate::store::history::rollback_target(&runs, None, Some(run)) {
        Ok(t) => t,
        Err(why) => {
            runner::note(run, &format!("on_host_failure = \"rollback\": {why}"));
            return;
        }
    };
    runner::note(
        run,
        &format!(
            "rolling back the hosts done to {} (run {})",
            target.short_sha(),
            target.id
        ),
    );
    let mut back = run.clone();
    back.request.push = target.request.push.clone();
    back.request.trigger = Trigger::Rollback;
    for i in 0..run.hosts.len() {
        // Those that hold this run's commit: deployed now, or in the
        // interrupted run this one recovers.
        if !run.hosts[i].status.done() {
            continue;
        }
        let host = &ctx.fleet.hosts[i];
        let log = run.hosts[i].log.clone();
        let outcome = remote(ctx, host, &back, &log, "rollback").await;
        let h = &mut run.hosts[i];
        if outcome == Outcome::Exited(0) {
            h.status = HostStatus::RolledBack;
            h.note = format!("rolled back to {}", target.short_sha());
        } else {
            let why = ended(ctx, host, &log, outcome).note;
            h.status = HostStatus::RollbackFailed;
            h.note = format!("rollback to {} failed: {why}", target.short_sha());
        }
        runner::note(run, &host_line(&run.hosts[i]));
        save(history, run).await;
    }
}

/// Closes the shared connections of the rollout's hosts that were reached,
/// all at once, within 5 s: each `ssh -O exit` is started as every child of
/// a run is (never while a script is forked with its lock inheritable), and
/// killed if it has not ended by then.
async fn close_masters(ctx: &Ctx, reached: &[HostRun]) {
    let mut closing = Vec::new();
    for (host, h) in ctx.fleet.hosts.iter().zip(reached) {
        if h.started_at.is_none() {
            continue;
        }
        let mut cmd = ssh::close_master(&ctx.fleet, host, &ctx.control);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        let spawned = {
            let _guard = runner::SPAWN.lock().unwrap_or_else(|e| e.into_inner());
            cmd.spawn()
        };
        closing.extend(spawned.ok());
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    for mut c in closing {
        let _ = tokio::time::timeout_at(deadline, c.wait()).await;
    }
}

/// `[web1] succeeded`, `[web2] failed (exit code 3): …`: a host's end in
/// the run's log.
fn host_line(h: &HostRun) -> String {
    let mut line = format!("[{}] {}", h.name, h.status);
    if let Some(c) = h.exit_code.filter(|c| *c != 0) {
        line.push_str(&format!(" (exit code {c})"));
    }
    if !h.note.is_empty() {
        line.push_str(&format!(": {}", h.note));
    }
    line
}

/// Saves the record; a record that does not reach the disk is logged (the
/// rollout goes on: the final save tries again).
async fn save(history: &Arc<History>, run: &Run) {
    let (h, r) = (history.clone(), run.clone());
    if let Err(e) = blocking(move || h.save(&r)).await {
        tracing::error!("{}: cannot save run {}: {e}", run.project(), run.id);
    }
}

/// Copies the lines a host's log gains into the run's log, prefixed with
/// the host's name.
struct Tail {
    from: PathBuf,
    to: PathBuf,
    prefix: String,
    /// Where the next line of `from` starts.
    offset: u64,
}

impl Tail {
    fn new(from: &Path, to: &Path, name: &str) -> Tail {
        let offset = std::fs::metadata(from).map_or(0, |m| m.len());
        Tail {
            from: from.to_path_buf(),
            to: to.to_path_buf(),
            prefix: format!("[{name}] "),
            offset,
        }
    }

    /// Runs `f`, copying every quarter of a second meanwhile, and what is
    /// left, a last line without its newline included, at its end.
    async fn during<T>(&mut self, f: impl std::future::Future<Output = T>) -> T {
        tokio::pin!(f);
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tokio::select! {
                v = &mut f => {
                    self.pump(true);
                    return v;
                }
                _ = tick.tick() => self.pump(false),
            }
        }
    }

    /// Copies what was added since the last call: whole lines, and with
    /// `all` a last one without its newline too (given one here).
    fn pump(&mut self, all: bool) {
        loop {
            let chunk = read_lines(&self.from, self.offset, all);
            if chunk.is_empty() {
                return;
            }
            self.offset += chunk.len() as u64;
            let mut out = Vec::with_capacity(chunk.len() + 32);
            for line in chunk.split_inclusive(|b| *b == b'\n') {
                out.extend_from_slice(self.prefix.as_bytes());
                out.extend_from_slice(line);
            }
            if !out.ends_with(b"\n") {
                out.push(b'\n');
            }
            if let Ok(mut log) = std::fs::OpenOptions::new().append(true).open(&self.to) {
                // One write for the whole chunk: lines of hosts deploying at
                // once do not interleave within a line.
                let _ = log.write_all(&out);
            }
        }
    }
}

/// A run a previous daemon did not see end: its hosts still `running` are
/// recorded `interrupted` (their ssh's stdin closed with the daemon, which
/// stopped their remote side).
pub(crate) fn interrupted_hosts(run: &mut Run) {
    for h in &mut run.hosts {
        if h.status == HostStatus::Running {
            h.status = HostStatus::Interrupted;
            h.note = "deployd stopped during this host's deploy".into();
        }
    }
}
