//! The forge-neutral description of a push: what each forge's payload is read
//! into (each forge's file in `forge/`) and what the rest of deployd works
//! with. A queued request ([`crate::queue::Request`]) holds one, and a run
//! record holds its request, so a field added here reaches the queue file, the
//! run record and `history --json` at once. It knows no forge and imports
//! nothing of the crate, so every module may use it.

use serde::{Deserialize, Serialize};

/// A push, whatever forge sent it. Its JSON names (`ref`, `sha`, `before`,
/// `repository`, `pusher`, `delivery`) are those of queue files, run records
/// and `history --json` (README, *Commands*).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Push {
    /// The full ref, e.g. `refs/heads/main`.
    #[serde(rename = "ref")]
    pub git_ref: String,
    /// Commit after the push (40 zeros for a deleted branch; empty for a
    /// manual run without `--sha`). Named `sha` on disk: it is what a run
    /// deploys.
    #[serde(rename = "sha")]
    pub after: String,
    /// Commit before the push (40 zeros for a new branch).
    #[serde(default)]
    pub before: String,
    /// `owner/name`; for GitLab the full path, which may hold subgroups
    /// (`group/sub/name`).
    #[serde(default)]
    pub repository: String,
    /// Who pushed (a user name; for a manual run, who ran `deployd deploy`).
    #[serde(default)]
    pub pusher: String,
    /// The forge's delivery id (empty for manual runs and for forges that
    /// send none). Set by the server, which reads it from the headers.
    #[serde(default)]
    pub delivery: String,
    /// The push deleted the ref. Such a push never deploys, so it is not
    /// written out unless set.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
}

impl Push {
    /// `after`, cut to 12 characters, or `-` when empty: for one-line
    /// summaries.
    pub fn short_sha(&self) -> &str {
        if self.after.is_empty() {
            "-"
        } else {
            &self.after[..self.after.len().min(12)]
        }
    }
}

/// Whether `sha` is git's "no commit": all zeros (what a forge sends as
/// `after` for a deleted ref and as `before` for a new one).
pub fn zeros(sha: &str) -> bool {
    !sha.is_empty() && sha.bytes().all(|b| b == b'0')
}
