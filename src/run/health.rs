//! The health check after a successful script (`health_check`,
//! `health_timeout`, `health_retries`, `health_interval`: README, *Health
//! checks*): a command run without a shell, in the project's `working_dir`,
//! with the run's environment, its output appended to the run's log, tried
//! until it exits 0 or the tries run out. It runs under the run's lock,
//! inside the run ([`crate::run::lifecycle`], step 5).
//!
//! Each try gets its own process group, stopped as a script's is (SIGTERM,
//! SIGKILL after `kill_grace`) when it outlives `health_timeout`.

use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;

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
    let Some((program, args)) = project.health_check.split_first() else {
        return Outcome::Exited(0);
    };
    let tries = project.health_retries;
    for n in 1..=tries {
        runner::log_line(
            &mut log,
            &format!(
                "health check, try {n} of {tries}: {}",
                project.health_check.join(" ")
            ),
        );
        let (Ok(out), Ok(err)) = (log.try_clone(), log.try_clone()) else {
            return Outcome::Unhealthy;
        };
        let mut cmd = Command::new(program);
        cmd.args(args)
            .current_dir(&project.working_dir)
            .env_clear()
            .envs(runner::environment(project, run))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .kill_on_drop(false);
        // Not while a script is forked with its lock inheritable (see
        // `runner::SPAWN`): this try must not hold another run's lock.
        let spawned = {
            let _guard = runner::SPAWN.lock().unwrap_or_else(|e| e.into_inner());
            cmd.spawn()
        };
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => {
                runner::log_line(
                    &mut log,
                    &format!("health check: cannot start {program}: {e}"),
                );
                // A missing program will not appear between tries.
                return Outcome::Unhealthy;
            }
        };
        let pgid = Pid::from_raw(child.id().unwrap_or(0) as i32);
        let verdict = tokio::select! {
            status = child.wait() => match status {
                Ok(s) if s.success() => Some(true),
                Ok(s) => {
                    let how = match (s.code(), s.signal()) {
                        (Some(c), _) => format!("exit code {c}"),
                        (None, Some(sig)) => format!("killed by signal {sig}"),
                        (None, None) => s.to_string(),
                    };
                    runner::log_line(&mut log, &format!("health check failed ({how})"));
                    Some(false)
                }
                Err(e) => {
                    runner::log_line(&mut log, &format!("health check: waiting for it: {e}"));
                    Some(false)
                }
            },
            _ = tokio::time::sleep(project.health_timeout) => {
                runner::log_line(&mut log, &format!(
                    "health check took longer than {}: stopping it",
                    humantime::format_duration(project.health_timeout)));
                Some(false)
            }
            _ = stop.wait_for(|s| *s) => None,
            Ok(_) = cancel.wait_for(|c| *c) => None,
        };
        // Whatever it left behind (or the try itself, when it is cut off).
        if verdict != Some(true) || runner::group_alive(pgid) {
            runner::stop_group(pgid, Some(&mut child), project.kill_grace).await;
        }
        match verdict {
            Some(true) => {
                runner::log_line(&mut log, &format!("health check passed (try {n})"));
                return Outcome::Exited(0);
            }
            Some(false) => {}
            None if *cancel.borrow() => {
                runner::log_line(&mut log, "cancelled during the health check");
                return Outcome::Cancelled(None);
            }
            None => {
                runner::log_line(
                    &mut log,
                    "deployd is stopping: interrupting the health check",
                );
                return Outcome::Interrupted(None);
            }
        }
        if n < tries {
            tokio::select! {
                _ = tokio::time::sleep(project.health_interval) => {}
                _ = stop.wait_for(|s| *s) => {}
                Ok(_) = cancel.wait_for(|c| *c) => {}
            }
            if *cancel.borrow() {
                runner::log_line(&mut log, "cancelled during the health check");
                return Outcome::Cancelled(None);
            }
            if *stop.borrow() {
                runner::log_line(
                    &mut log,
                    "deployd is stopping: interrupting the health check",
                );
                return Outcome::Interrupted(None);
            }
        }
    }
    runner::log_line(
        &mut log,
        &format!("health check failed {tries} time(s): the run is unhealthy"),
    );
    Outcome::Unhealthy
}
