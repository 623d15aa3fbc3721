//! The health check after a successful script (`health_check`,
//! `health_timeout`, `health_retries`, `health_interval`:
//! docs/operations.md, *Health checks*): a command run without a shell, in
//! the project's `working_dir`, with the run's environment, its output
//! appended to the run's log, tried until it exits 0 or the tries run out.
//! It runs under the run's lock, inside the run ([`crate::run::lifecycle`],
//! step 5).
//!
//! Each try gets its own process group, stopped as a script's is (SIGTERM,
//! SIGKILL after `kill_grace`) when it outlives `health_timeout`.

use std::fs::File;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::time::Duration;

use nix::unistd::Pid;
use tokio::process::Command;
use tokio::sync::watch;

use crate::config::Project;
use crate::run::runner::{self, Outcome};
use crate::store::history::Run;

/// Runs `project`'s health check for `run`, whose script succeeded.
/// `Exited(0)` when a try passed, `Unhealthy` when none did, or
/// `Interrupted`/`Cancelled` when `stop`/`cancel` turned true meanwhile.
pub(crate) async fn check(
    project: &Project,
    run: &Run,
    mut stop: watch::Receiver<bool>,
    mut cancel: watch::Receiver<bool>,
) -> Outcome {
    let Ok(mut log) = runner::open_log(run) else {
        return Outcome::Unhealthy;
    };
    if project.health_check.is_empty() {
        return Outcome::Exited(0);
    }
    let tries = project.health_retries;
    for n in 1..=tries {
        runner::log_line(
            &mut log,
            &format!(
                "health check, try {n} of {tries}: {}",
                project.health_check.join(" ")
            ),
        );
        match try_once(project, run, &mut log, &mut stop, &mut cancel).await {
            Try::Passed => {
                runner::log_line(&mut log, &format!("health check passed (try {n})"));
                return Outcome::Exited(0);
            }
            Try::Failed => {}
            // A missing program will not appear between tries.
            Try::NotStarted => return Outcome::Unhealthy,
            Try::Stopped => return stopped(&mut log, &cancel),
        }
        if n < tries && !pause(project.health_interval, &mut stop, &mut cancel).await {
            return stopped(&mut log, &cancel);
        }
    }
    runner::log_line(
        &mut log,
        &format!("health check failed {tries} time(s): the run is unhealthy"),
    );
    Outcome::Unhealthy
}

/// How one try of the health check went.
enum Try {
    /// It exited 0.
    Passed,
    /// It exited otherwise, could not be waited for, or outlived
    /// `health_timeout`; said in the log.
    Failed,
    /// It could not be started.
    NotStarted,
    /// `stop` or `cancel` turned true while it ran.
    Stopped,
}

/// Runs the health check command once, and stops whatever of it is left
/// afterwards.
async fn try_once(
    project: &Project,
    run: &Run,
    log: &mut File,
    stop: &mut watch::Receiver<bool>,
    cancel: &mut watch::Receiver<bool>,
) -> Try {
    let Some((program, args)) = project.health_check.split_first() else {
        return Try::Passed;
    };
    let mut cmd = Command::new(program);
    cmd.args(args)
        .current_dir(&project.working_dir)
        .env_clear()
        .envs(runner::environment(project, run))
        .stdin(Stdio::null());
    // Not with a lock: this try must not hold another run's lock.
    let mut child = match runner::spawn_grouped(&mut cmd, log, None) {
        Ok(c) => c,
        Err(e) => {
            runner::log_line(log, &format!("health check: cannot start {program}: {e}"));
            return Try::NotStarted;
        }
    };
    let pgid = Pid::from_raw(child.id().unwrap_or(0) as i32);
    let verdict = tokio::select! {
        status = child.wait() => match status {
            Ok(s) if s.success() => Try::Passed,
            Ok(s) => {
                let how = match (s.code(), s.signal()) {
                    (Some(c), _) => format!("exit code {c}"),
                    (None, Some(sig)) => format!("killed by signal {sig}"),
                    (None, None) => s.to_string(),
                };
                runner::log_line(log, &format!("health check failed ({how})"));
                Try::Failed
            }
            Err(e) => {
                runner::log_line(log, &format!("health check: waiting for it: {e}"));
                Try::Failed
            }
        },
        _ = tokio::time::sleep(project.health_timeout) => {
            runner::log_line(log, &format!(
                "health check took longer than {}: stopping it",
                humantime::format_duration(project.health_timeout)));
            Try::Failed
        }
        _ = stop.wait_for(|s| *s) => Try::Stopped,
        Ok(_) = cancel.wait_for(|c| *c) => Try::Stopped,
    };
    // Whatever it left behind (or the try itself, when it is cut off).
    if !matches!(verdict, Try::Passed) || runner::group_alive(pgid) {
        runner::stop_group(pgid, Some(&mut child), project.kill_grace).await;
    }
    verdict
}

/// Waits `interval` between two tries; false when `stop` or `cancel`
/// turned true by its end.
async fn pause(
    interval: Duration,
    stop: &mut watch::Receiver<bool>,
    cancel: &mut watch::Receiver<bool>,
) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(interval) => {}
        _ = stop.wait_for(|s| *s) => {}
        Ok(_) = cancel.wait_for(|c| *c) => {}
    }
    !*cancel.borrow() && !*stop.borrow()
}

/// The outcome of a health check cut short, said in the log: cancelled
/// when `cancel` is set, interrupted by the daemon stopping otherwise.
fn stopped(log: &mut File, cancel: &watch::Receiver<bool>) -> Outcome {
    if *cancel.borrow() {
        runner::log_line(log, "cancelled during the health check");
        Outcome::Cancelled(None)
    } else {
        runner::log_line(log, "deployd is stopping: interrupting the health check");
        Outcome::Interrupted(None)
    }
}
