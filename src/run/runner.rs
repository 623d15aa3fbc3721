//! Running one deploy script: no shell, its own process group, stdin from
//! /dev/null, stdout and stderr appended straight to the run's log file, an
//! environment cleared down to the list in docs/configuration.md's *What
//! the script gets*, and a timeout that stops the whole group (SIGTERM, then
//! SIGKILL after `kill_grace`).
//!
//! The child writes into the log file itself — no pipe for the daemon to
//! drain, and the output survives the daemon dying. It also inherits a
//! descriptor of the run lock, so the lock lasts exactly as long as the
//! run's processes.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::process::{Child, Command};
use tokio::sync::watch;

use crate::config::Project;
use crate::fsutil;
use crate::run::lock::RunLock;
use crate::store::history::{Run, Status};

/// Serializes spawns: while one child is being forked it must be the only one
/// to inherit the lock descriptor made inheritable for it.
pub(crate) static SPAWN: Mutex<()> = Mutex::new(());

/// The `PATH` given to scripts when the daemon itself has none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// How a run ended, before it becomes a [`Status`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The script exited with this code.
    Exited(i32),
    /// The script was killed by this signal (not by deployd).
    Signaled(i32),
    /// deployd stopped it at its timeout; the signal that ended the script,
    /// when it died of one (15 if SIGTERM sufficed, 9 if SIGKILL was needed).
    TimedOut(Option<i32>),
    /// deployd stopped it because the daemon is stopping (or a recovering
    /// daemon found it cut off: then the signal is unknown).
    Interrupted(Option<i32>),
    /// `deployd cancel` (or a newer push, `on_new_push = "cancel"`) stopped
    /// it; the signal that ended the script, as for `TimedOut`.
    Cancelled(Option<i32>),
    /// The script succeeded, then every try of the health check failed.
    Unhealthy,
    /// The script could not be started.
    NotStarted(String),
}

impl Outcome {
    /// Fills the end of a run record.
    pub fn apply(&self, run: &mut Run) {
        let (status, code, signal) = match self {
            Outcome::Exited(0) => (Status::Succeeded, Some(0), None),
            Outcome::Exited(c) => (Status::Failed, Some(*c), None),
            Outcome::Signaled(s) => (Status::Failed, None, Some(*s)),
            Outcome::TimedOut(s) => (Status::TimedOut, None, *s),
            Outcome::Interrupted(s) => (Status::Interrupted, None, *s),
            Outcome::Cancelled(s) => (Status::Cancelled, None, *s),
            Outcome::Unhealthy => (Status::Unhealthy, Some(0), None),
            Outcome::NotStarted(_) => (Status::Failed, None, None),
        };
        run.status = status;
        run.exit_code = code;
        run.signal = signal;
        run.finished_at = Some(fsutil::now_rfc3339());
    }
}

/// The environment a script gets: the list in docs/configuration.md's *What the
/// script gets* and nothing else. What it says of the push comes from
/// [`crate::forge::push::Push::env`].
pub fn environment(project: &Project, run: &Run) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    env.insert(
        "PATH".to_string(),
        std::env::var("PATH").unwrap_or_else(|_| DEFAULT_PATH.to_string()),
    );
    for var in ["HOME", "LANG"] {
        if let Ok(v) = std::env::var(var) {
            env.insert(var.to_string(), v);
        }
    }
    env.extend(project.env.clone());
    let req = &run.request;
    for (k, v) in [
        ("DEPLOY_PROJECT", req.project.clone()),
        ("DEPLOY_RUN_ID", run.id.to_string()),
        ("DEPLOY_TRIGGER", req.trigger.to_string()),
        ("DEPLOY_DELIVERY", req.push.delivery.clone()),
        ("DEPLOY_LOG", run.log.to_string_lossy().into_owned()),
        (
            "DEPLOY_OUTPUT",
            crate::store::outputs::path(&run.log)
                .to_string_lossy()
                .into_owned(),
        ),
    ]
    .into_iter()
    .chain(req.push.env())
    {
        env.insert(k.to_string(), v);
    }
    env
}

/// Opens (creating) a run's log for appending.
pub fn open_log(run: &Run) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(fsutil::LOG_MODE)
        .open(&run.log)
}

/// Adds `text` to `run`'s log as a line of deployd's own ([`log_line`]);
/// a log that does not open is left as it is.
pub fn note(run: &Run, text: &str) {
    if let Ok(mut log) = open_log(run) {
        log_line(&mut log, text);
    }
}

/// A line of deployd's own in a run's log, marked so it stands out from the
/// script's output.
pub fn log_line(log: &mut File, text: &str) {
    let _ = writeln!(log, "=== deployd: {text}");
}

/// The first line of a run's log: which run, of what, since when.
pub fn header(run: &Run) -> String {
    let (req, push) = (&run.request, &run.request.push);
    format!(
        "run {} of {} ({}) {} {} started {}",
        run.id,
        req.project,
        req.trigger,
        push.git_ref,
        if push.after.is_empty() {
            "(no commit given)"
        } else {
            &push.after
        },
        run.started_at
    )
}

/// Runs `project`'s script for `run` under `lock`, its output appended to
/// the run's log after the lines the run lifecycle wrote there first. `stop`
/// turning true interrupts it (daemon shutdown), `cancel` turning true
/// cancels it. `spawned` gets the script's pid. What the script wrote to
/// `DEPLOY_OUTPUT` ends up in `run.outputs`. The log's last line (how the
/// run ended) is written by the caller, [`summary`], once the run's outcome
/// is final.
pub async fn run(
    project: &Project,
    run: &mut Run,
    lock: &RunLock,
    stop: watch::Receiver<bool>,
    cancel: watch::Receiver<bool>,
    spawned: impl FnOnce(u32),
) -> Outcome {
    let output_path = crate::store::outputs::path(&run.log);
    // Created empty (owner-only) so that `>>"$DEPLOY_OUTPUT"` works and no
    // one else reads what the script writes there.
    let _ = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(fsutil::STATE_MODE)
        .open(&output_path);
    let outcome = run_script(project, run, lock, stop, cancel, spawned).await;
    let (outputs, warnings) = crate::store::outputs::collect(&output_path);
    run.outputs = outputs;
    if !warnings.is_empty()
        && let Ok(mut log) = open_log(run)
    {
        for w in &warnings {
            log_line(&mut log, w);
        }
    }
    outcome
}

async fn run_script(
    project: &Project,
    run: &Run,
    lock: &RunLock,
    stop: watch::Receiver<bool>,
    cancel: watch::Receiver<bool>,
    spawned: impl FnOnce(u32),
) -> Outcome {
    let mut log = match open_log(run) {
        Ok(f) => f,
        Err(e) => {
            return Outcome::NotStarted(format!("cannot open {}: {e}", run.log.display()));
        }
    };
    let mut child = match spawn(project, run, lock, &log) {
        Ok(c) => c,
        Err(e) => {
            let msg = not_started(project, &e);
            log_line(&mut log, &msg);
            return Outcome::NotStarted(msg);
        }
    };
    spawned(child.id().unwrap_or(0));
    supervise(&mut child, &mut log, project, (stop, cancel), || {}, true).await
}

/// Waits for `child`, the leader of its own process group, to end; or
/// stops the group (SIGTERM, SIGKILL after `kill_grace`) at `project`'s
/// timeout, or when `stop` (daemon shutdown) or `cancel` turn true, saying
/// why in `log`. `before_stop` runs first when deployd stops it: a host's
/// ssh has its stdin closed then, the remote side's signal to stop. With
/// `leftovers`, processes the child left in its group when it exited are
/// stopped too (a script's; not ssh's, whose shared connection lives on in
/// its group until the rollout closes it).
pub(crate) async fn supervise(
    child: &mut Child,
    log: &mut File,
    project: &Project,
    (mut stop, mut cancel): (watch::Receiver<bool>, watch::Receiver<bool>),
    before_stop: impl FnOnce(),
    leftovers: bool,
) -> Outcome {
    let pgid = Pid::from_raw(child.id().unwrap_or(0) as i32);
    let mut outcome = tokio::select! {
        status = child.wait() => match status {
            Ok(s) => from_status(s),
            Err(e) => Outcome::NotStarted(format!("waiting for the script: {e}")),
        },
        _ = tokio::time::sleep(project.timeout) => {
            log_line(log, &format!(
                "timeout of {} reached: stopping the run (SIGTERM, SIGKILL after {})",
                humantime::format_duration(project.timeout),
                humantime::format_duration(project.kill_grace)));
            Outcome::TimedOut(None)
        }
        _ = stop.wait_for(|s| *s) => {
            log_line(log, "deployd is stopping: interrupting the run");
            Outcome::Interrupted(None)
        }
        Ok(_) = cancel.wait_for(|c| *c) => {
            log_line(log, &format!(
                "cancelled: stopping the run (SIGTERM, SIGKILL after {})",
                humantime::format_duration(project.kill_grace)));
            Outcome::Cancelled(None)
        }
    };
    let stopped = matches!(
        outcome,
        Outcome::TimedOut(_) | Outcome::Interrupted(_) | Outcome::Cancelled(_)
    );
    let killed = if stopped {
        before_stop();
        let (killed, signal) = stop_script(pgid, child, project.kill_grace).await;
        outcome = match outcome {
            Outcome::TimedOut(_) => Outcome::TimedOut(signal),
            Outcome::Interrupted(_) => Outcome::Interrupted(signal),
            Outcome::Cancelled(_) => Outcome::Cancelled(signal),
            other => other,
        };
        killed
    } else if leftovers && group_alive(pgid) {
        log_line(
            log,
            "the script exited but left processes behind: stopping them",
        );
        stop_group(pgid, None, project.kill_grace).await
    } else {
        false
    };
    if killed {
        log_line(
            log,
            &format!(
                "processes still there {} after SIGTERM got SIGKILL",
                humantime::format_duration(project.kill_grace)
            ),
        );
    }
    outcome
}

/// The last line deployd writes into a run's log: how it ended.
pub fn summary(run: &Run, outcome: &Outcome, started: Instant) -> String {
    let elapsed =
        humantime::format_duration(Duration::from_millis(started.elapsed().as_millis() as u64));
    match outcome {
        Outcome::Exited(0) => format!("run {} succeeded in {elapsed}", run.id),
        Outcome::Exited(c) => format!("run {} failed with exit code {c} after {elapsed}", run.id),
        Outcome::Signaled(s) => format!("run {} killed by signal {s} after {elapsed}", run.id),
        Outcome::TimedOut(_) => format!("run {} timed out after {elapsed}", run.id),
        Outcome::Interrupted(_) => format!("run {} interrupted after {elapsed}", run.id),
        Outcome::Cancelled(_) => format!("run {} cancelled after {elapsed}", run.id),
        Outcome::Unhealthy => format!("run {} unhealthy after {elapsed}", run.id),
        Outcome::NotStarted(m) => format!("run {} failed: {m}", run.id),
    }
}

/// Why the script could not be started. A `working_dir` that cannot be
/// entered fails the spawn with the same error as a missing script (the
/// `chdir` happens in the child, before `exec`), so look at the directory
/// first and name whichever of the two is at fault.
fn not_started(project: &Project, e: &io::Error) -> String {
    let dir = &project.working_dir;
    let dir_problem = match std::fs::metadata(dir) {
        Err(de) => Some(de.to_string()),
        Ok(m) if !m.is_dir() => Some("not a directory".to_string()),
        Ok(_) => nix::unistd::access(dir, nix::unistd::AccessFlags::X_OK)
            .err()
            .map(|errno| io::Error::from(errno).to_string()),
    };
    match dir_problem {
        Some(why) => format!("cannot enter working_dir {}: {why}", dir.display()),
        None => format!("cannot start {}: {e}", project.script.display()),
    }
}

/// Stops the group of a script still running (timeout, shutdown); returns
/// whether SIGKILL was needed and the signal the script itself died of.
async fn stop_script(pgid: Pid, child: &mut Child, grace: Duration) -> (bool, Option<i32>) {
    let killed = stop_group(pgid, Some(child), grace).await;
    let signal = match child.try_wait() {
        Ok(Some(status)) => status.signal(),
        _ => None,
    };
    (killed, signal)
}

fn spawn(project: &Project, run: &Run, lock: &RunLock, log: &File) -> io::Result<Child> {
    let mut cmd = Command::new(&project.script);
    cmd.args(&project.args)
        .current_dir(&project.working_dir)
        .env_clear()
        .envs(environment(project, run))
        .stdin(Stdio::null());
    spawn_grouped(&mut cmd, log, Some(lock))
}

/// Starts `cmd` in a process group of its own (so that it can be stopped
/// whole), its stdout and stderr appended to `log`, and with `lock`'s
/// descriptor inherited when one is given. The script, each health check try
/// and each host's ssh start here, one at a time (see [`SPAWN`]): a child
/// forked meanwhile would keep another run's lock alive.
pub(crate) fn spawn_grouped(
    cmd: &mut Command,
    log: &File,
    lock: Option<&RunLock>,
) -> io::Result<Child> {
    cmd.stdout(log.try_clone()?)
        .stderr(log.try_clone()?)
        .process_group(0)
        .kill_on_drop(false);
    // The guard protects no data, only the fork below; a panic elsewhere
    // while holding it cannot leave anything inconsistent.
    let _guard = SPAWN.lock().unwrap_or_else(|e| e.into_inner());
    let inherited = lock.map(RunLock::inheritable).transpose()?;
    let child = cmd.spawn();
    drop(inherited);
    child
}

pub(crate) fn from_status(s: ExitStatus) -> Outcome {
    match (s.code(), s.signal()) {
        (Some(c), _) => Outcome::Exited(c),
        (None, Some(sig)) => Outcome::Signaled(sig),
        (None, None) => Outcome::Exited(-1),
    }
}

/// Whether any live process of the group is left. Zombies do not count: an
/// orphan that exited waits for init to reap it, and where no init reaps
/// (a container without one) it would otherwise look alive forever.
pub fn group_alive(pgid: Pid) -> bool {
    if pgid.as_raw() <= 0 || killpg(pgid, None).is_err() {
        return false;
    }
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return true;
    };
    procs
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .any(|stat| {
            // "pid (comm) state ppid pgrp …"; comm may hold spaces and parens.
            let Some((_, rest)) = stat.rsplit_once(") ") else {
                return false;
            };
            let mut fields = rest.split(' ');
            let state = fields.next();
            let pgrp = fields.nth(1).and_then(|f| f.parse::<i32>().ok());
            pgrp == Some(pgid.as_raw()) && state != Some("Z")
        })
}

/// SIGTERM to the group; SIGKILL after `grace` to whatever is left. Returns
/// when the script (if given) is reaped and the group is empty, or a few
/// seconds after SIGKILL at most; says whether SIGKILL was needed.
pub async fn stop_group(pgid: Pid, mut child: Option<&mut Child>, grace: Duration) -> bool {
    if pgid.as_raw() <= 0 {
        return false;
    }
    let _ = killpg(pgid, Signal::SIGTERM);
    let mut deadline = Instant::now() + grace;
    let mut killed = false;
    loop {
        let reaped = match child.as_mut() {
            Some(c) => !matches!(c.try_wait(), Ok(None)),
            None => true,
        };
        if reaped && !group_alive(pgid) {
            return killed;
        }
        if Instant::now() >= deadline {
            if killed {
                tracing::warn!("process group {pgid} survived SIGKILL for 5s");
                return killed;
            }
            let _ = killpg(pgid, Signal::SIGKILL);
            killed = true;
            deadline = Instant::now() + Duration::from_secs(5);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
