//! A project's state read back from what is stored, for when no daemon
//! answers (`deployd status`, `history`, `logs`, `cancel`): its newest runs,
//! which of them still goes, its pending request, and the push that waits
//! for its CI. Whether the project's run lock is held is the caller's to
//! say: the lock is the run path's, and this module reads files only.

use std::path::Path;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::store::gates::{self, Policy, WorkflowState};
use crate::store::history::{History, Run, Status};
use crate::store::queue::{self, DeployRequest};

/// One project as the disk has it.
pub(crate) struct Snapshot {
    /// Its newest runs, newest first (the last three: enough to find the
    /// one going on and the last finished one).
    runs: Vec<Run>,
    /// Its pending request, as the queue left it on disk.
    pub(crate) pending: Option<DeployRequest>,
    /// Which of its runs recorded `running` still run.
    going: Going,
}

impl Snapshot {
    /// Reads `project`; `held` says whether something holds its run lock.
    pub(crate) fn read(history: &History, state_dir: &Path, project: &str, held: bool) -> Self {
        let runs = history.list(project, Some(3)).unwrap_or_default();
        Snapshot {
            going: Going::of(&runs, held),
            pending: queue::read_pending(state_dir, project),
            runs,
        }
    }

    /// The run recorded `running`, going on or cut off.
    pub(crate) fn running(&self) -> Option<&Run> {
        self.runs.iter().find(|r| r.status == Status::Running)
    }

    /// The newest finished run.
    pub(crate) fn last(&self) -> Option<&Run> {
        self.runs.iter().find(|r| r.status != Status::Running)
    }

    /// `interrupted`, `running`, `pending` or `idle`, as `deployd status`
    /// says it.
    pub(crate) fn state(&self) -> ProjectState {
        match (self.running(), &self.pending) {
            (Some(r), _) if self.going.cut_off(r) => ProjectState::Interrupted,
            (Some(_), _) => ProjectState::Running,
            (None, Some(_)) => ProjectState::Pending,
            _ => ProjectState::Idle,
        }
    }
}

/// Which of a project's runs recorded `running` still run, judged from disk
/// as `status` and `history` judge them without a daemon's word.
pub(crate) struct Going {
    /// The newest run recorded `running`: the only one that can still be
    /// going, since runs of a project never overlap.
    newest: Option<u64>,
    /// Whether something holds the project's lock: that run's processes (a
    /// daemon waiting for them to exit holds nothing).
    held: bool,
}

impl Going {
    /// For a project whose newest runs, newest first, are `runs`, and whose
    /// run lock is `held` or not.
    pub(crate) fn of(runs: &[Run], held: bool) -> Going {
        Going {
            newest: runs
                .iter()
                .find(|r| r.status == Status::Running)
                .map(|r| r.id),
            held,
        }
    }

    /// Whether `run` is recorded `running` but was cut off: whoever ran it
    /// (a daemon, a `deployd deploy`) died and none of its processes is
    /// left. Only the next daemon records it `interrupted`.
    pub(crate) fn cut_off(&self, run: &Run) -> bool {
        run.status == Status::Running && (self.newest != Some(run.id) || !self.held)
    }
}

/// The push of a project that waits for its CI.
pub(crate) struct CiWait {
    /// Its commit.
    pub(crate) sha: String,
    /// Since when it waits.
    pub(crate) since: SystemTime,
    /// Each required workflow's state.
    pub(crate) workflows: Vec<WorkflowState>,
}

/// The push of `project` (whose gate rules are `policy`) that waits for its
/// CI, read from its gate file: durable and current, daemon or not.
pub(crate) fn waiting_for_ci(state_dir: &Path, project: &str, policy: &Policy) -> Option<CiWait> {
    if policy.required.is_empty() {
        return None;
    }
    let g: gates::Gate<DeployRequest> = gates::load(state_dir, project).ok()?;
    let w = g.waiting()?;
    Some(CiWait {
        sha: w.sha.clone(),
        since: SystemTime::UNIX_EPOCH + Duration::from_millis(w.since),
        workflows: g.states(policy),
    })
}

/// What a project is doing, as `deployd status` and the status page name it
/// (`Display` and serde give the same lowercase words).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ProjectState {
    /// Nothing runs or waits.
    #[default]
    Idle,
    /// A run is going on (or waits for its lock).
    Running,
    /// A request waits for its turn.
    Pending,
    /// The executor waits for an interrupted run's processes to exit.
    Recovering,
    /// A run is recorded `running` but its daemon is gone (read from disk
    /// when no daemon answers).
    Interrupted,
    /// The status page answers before the executor published its state.
    Starting,
}

impl ProjectState {
    /// The word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            ProjectState::Idle => "idle",
            ProjectState::Running => "running",
            ProjectState::Pending => "pending",
            ProjectState::Recovering => "recovering",
            ProjectState::Interrupted => "interrupted",
            ProjectState::Starting => "starting",
        }
    }
}

impl std::fmt::Display for ProjectState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
