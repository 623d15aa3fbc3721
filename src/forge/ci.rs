//! The forge-neutral description of a CI result: what each forge's CI event
//! (GitHub's and Gitea's `workflow_run`, GitLab's `Pipeline Hook`,
//! Bitbucket's `repo:commit_status_*`) is read into, and what the CI gate
//! (`gate.rs`) works with. Like `push.rs`, it knows no forge and imports
//! nothing of the crate, so every module may use it.

/// Where a CI run stands, as far as the gate cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CiState {
    /// Requested, queued or running: not a result yet.
    #[default]
    Running,
    /// Finished and counts as green: GitHub's `success`, `skipped` and
    /// `neutral`; GitLab's `success` and `skipped`; Bitbucket's `SUCCESSFUL`.
    Passed,
    /// Finished and did not pass: anything else that is final (GitHub's
    /// `failure`, `cancelled`, `timed_out`, `action_required`,
    /// `startup_failure`, `stale`; GitLab's `failed`, `canceled`; Bitbucket's
    /// `FAILED`, `STOPPED`). An unknown final word fails too: deploying on a
    /// word deployd does not know would be a guess.
    Failed,
}

/// One CI run's news about one commit, whatever forge sent it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CiRun {
    /// The name `after_ci` lists: GitHub's and Gitea's workflow name,
    /// Bitbucket's status name; `pipeline` for GitLab, which has one
    /// pipeline per commit.
    pub workflow: String,
    /// The commit the run tested.
    pub sha: String,
    /// The branch the run was for, without `refs/heads/` (empty when the
    /// forge does not say).
    pub branch: String,
    /// The repository the event came from (`owner/name`).
    pub repository: String,
    /// The repository the tested commit came from: differs from
    /// `repository` for a pull request from a fork, whose branch may carry
    /// the deploy branch's name. Empty when the forge does not say.
    pub head_repository: String,
    /// Running, passed or failed.
    pub state: CiState,
    /// The forge's own word for the state (`success`, `failure`,
    /// `cancelled`, `running`…): what `history` and the answer show.
    pub conclusion: String,
    /// The run's identity, with its attempt (`289782451#1`): the same run
    /// reported twice is a duplicate; a re-run is news.
    pub run: String,
    /// Who caused the run (a user name), for a deploy started by CI alone.
    pub actor: String,
}

/// What the CI gate had to do with a run, in its record (`"ci"` in
/// `history --json`): the workflow that failed and how, the workflows still
/// pending at `ci_timeout` or when the operator deployed past the gate.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct CiNote {
    /// The required workflow that did not pass (`ci_failed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow: Option<String>,
    /// Its conclusion, in the forge's word (`failure`, `cancelled`…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conclusion: Option<String>,
    /// The required workflows that had not passed (`ci_timeout`, or a
    /// deploy past the gate).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<String>,
    /// `deployd deploy --sha` deployed the waiting push past its CI.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub bypassed: bool,
}
