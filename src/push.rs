//! The forge-neutral description of a push: what each forge's payload is read
//! into (each forge's file in `forge/`) and what the rest of deployd works
//! with. It knows no forge and imports nothing of the crate, so every module
//! may use it.

/// A push, whatever forge sent it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Push {
    /// The full ref, e.g. `refs/heads/main`.
    pub git_ref: String,
    /// Commit before the push (40 zeros for a new branch).
    pub before: String,
    /// Commit after the push (40 zeros for a deleted branch).
    pub after: String,
    /// `owner/name`; for GitLab the full path, which may hold subgroups
    /// (`group/sub/name`).
    pub repository: String,
    /// Who pushed (a user name).
    pub pusher: String,
    /// The push deleted the ref.
    pub deleted: bool,
}

/// Whether `sha` is git's "no commit": all zeros (what a forge sends as
/// `after` for a deleted ref and as `before` for a new one).
pub fn zeros(sha: &str) -> bool {
    !sha.is_empty() && sha.bytes().all(|b| b == b'0')
}
