//! What a run record says of each host of a fleet (docs/fleet.md): its
//! state, timings, exit code and log. Kept in the run's record (`hosts` in
//! `history --json`), saved after every change of state, so that a daemon
//! killed mid-rollout leaves behind which hosts finished.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One host's part of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRun {
    /// The host's name in the config.
    pub name: String,
    /// Where it stands.
    pub status: HostStatus,
    /// The remote script's exit code (255: ssh itself failed); null while
    /// pending or when killed.
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// RFC 3339; null while pending.
    #[serde(default)]
    pub started_at: Option<String>,
    /// RFC 3339; null until it ends.
    #[serde(default)]
    pub finished_at: Option<String>,
    /// This host's own log (the run's log holds the same lines, prefixed).
    pub log: PathBuf,
    /// Why it ended as it did, in words; empty when it succeeded.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
}

/// The states of a host in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostStatus {
    /// Not started yet.
    Pending,
    /// Its script (or its health check) is going on.
    Running,
    /// Script and health check passed.
    Succeeded,
    /// The script failed (or ssh could not reach the host).
    Failed,
    /// The script passed, the health check did not.
    Unhealthy,
    /// Stopped at the project's timeout.
    TimedOut,
    /// Stopped by `deployd cancel`.
    Cancelled,
    /// The daemon stopped (or died) while it ran.
    Interrupted,
    /// Not deployed: the rollout stopped before it.
    Skipped,
    /// Deployed, then given the previous commit again (`on_host_failure =
    /// "rollback"`).
    RolledBack,
    /// Deployed, then its rollback failed: it may run either commit, or
    /// neither whole, and needs a look.
    RollbackFailed,
    /// Finished in the interrupted run this one recovers: not run again.
    AlreadyDone,
}

impl HostStatus {
    /// Its word, as in records.
    pub fn as_str(self) -> &'static str {
        match self {
            HostStatus::Pending => "pending",
            HostStatus::Running => "running",
            HostStatus::Succeeded => "succeeded",
            HostStatus::Failed => "failed",
            HostStatus::Unhealthy => "unhealthy",
            HostStatus::TimedOut => "timed_out",
            HostStatus::Cancelled => "cancelled",
            HostStatus::Interrupted => "interrupted",
            HostStatus::Skipped => "skipped",
            HostStatus::RolledBack => "rolled_back",
            HostStatus::RollbackFailed => "rollback_failed",
            HostStatus::AlreadyDone => "already_done",
        }
    }

    /// Whether the host ended with the run's commit deployed and healthy.
    pub fn done(self) -> bool {
        matches!(self, HostStatus::Succeeded | HostStatus::AlreadyDone)
    }

    /// Whether it counts against `max_failures`.
    pub fn failure(self) -> bool {
        matches!(
            self,
            HostStatus::Failed | HostStatus::Unhealthy | HostStatus::TimedOut
        )
    }
}

impl std::fmt::Display for HostStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The log of host `name` in the run whose log is `run_log`: `3.log` gives
/// `3.web1.log`, beside it.
pub fn log_path(run_log: &Path, name: &str) -> PathBuf {
    let stem = run_log
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    run_log.with_file_name(format!("{stem}.{name}.log"))
}

/// `web1 succeeded, web2 failed (exit code 3)`: one line for notifications
/// and summaries.
pub fn summary(hosts: &[HostRun]) -> String {
    hosts
        .iter()
        .map(|h| match (h.status, h.exit_code) {
            (s, Some(c)) if s.failure() && c != 0 => format!("{} {s} (exit code {c})", h.name),
            (s, _) => format!("{} {s}", h.name),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_log_beside_the_run_log() {
        assert_eq!(
            log_path(Path::new("/l/app/3.log"), "web1"),
            Path::new("/l/app/3.web1.log")
        );
    }
}
