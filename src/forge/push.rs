//! The forge-neutral description of a push: what each forge's payload is read
//! into (each forge's file in `forge/`) and what the rest of deployd works
//! with. A queued request ([`crate::store::queue::DeployRequest`]) holds one, and a run
//! record holds its request, so a field added here reaches the queue file, the
//! run record and `history --json` at once. It knows no forge and imports
//! nothing of the crate, so every module may use it.

use serde::{Deserialize, Serialize};

/// A push, whatever forge sent it. Its JSON names (`ref`, `sha`, `before`,
/// `repository`, `pusher`, `delivery`, `forced`, `message`, `note`) are
/// those of queue files, run records and `history --json` (docs/commands.md,
/// the `deployd history` section).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Push {
    /// The full ref, e.g. `refs/heads/main` or `refs/tags/v1.2.0`.
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
    /// The forge says the push was forced (GitHub's and Bitbucket's
    /// `forced`; GitLab, Gitea and Forgejo send no such flag, so their force
    /// pushes are `false` here). Written out only when set.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub forced: bool,
    /// The head commit's message (empty when the forge sent none): whole as
    /// the forge sent it, since a skip marker may be in any line; a queued
    /// request keeps only its first line, `DEPLOY_MESSAGE`
    /// ([`crate::store::queue::DeployRequest::new`]).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// The paths the push changed, as far as the payload tells. Only the
    /// path filter reads them, before the push is queued: a queued request
    /// drops them and they are never written out, so a request read back
    /// has the default (unknown).
    #[serde(skip)]
    pub files: Files,
    /// Why the path filter let this push through without knowing what it
    /// changed; written at the top of the run's log. Empty otherwise.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
}

/// What a push's payload says about the paths it changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Files {
    /// Every path added, modified or removed by the pushed commits: the
    /// payload listed every commit, each with its three lists.
    Listed(Vec<String>),
    /// The payload cannot tell (the reason, in words): a forge that sends no
    /// file lists, a list cut short, a new branch or a force push.
    Unknown(String),
}

impl Default for Files {
    fn default() -> Self {
        Files::Unknown("the forge sent no file lists".into())
    }
}

impl Push {
    /// The tag's name when the ref is a tag (`v1.2.0` for `refs/tags/v1.2.0`).
    pub fn tag(&self) -> Option<&str> {
        self.git_ref.strip_prefix("refs/tags/")
    }

    /// The branch's name when the ref is a branch.
    pub fn branch(&self) -> Option<&str> {
        self.git_ref.strip_prefix("refs/heads/")
    }

    /// The first line of the head commit's message (`DEPLOY_MESSAGE`).
    pub fn title(&self) -> &str {
        self.message.lines().next().unwrap_or("").trim_end()
    }

    /// What the script sees of the push, besides who asked and which run
    /// it is: the one place these `DEPLOY_*` variables are made. A ref that
    /// is not a branch or a tag (a manual `--ref`) is `DEPLOY_BRANCH` as
    /// given, as before tags deployed.
    pub fn env(&self) -> [(&'static str, String); 9] {
        let branch = match (self.branch(), self.tag()) {
            (Some(b), _) => b,
            (None, Some(_)) => "",
            (None, None) => &self.git_ref,
        };
        [
            ("DEPLOY_REF", self.git_ref.clone()),
            ("DEPLOY_BRANCH", branch.to_string()),
            ("DEPLOY_TAG", self.tag().unwrap_or("").to_string()),
            ("DEPLOY_SHA", self.after.clone()),
            ("DEPLOY_BEFORE", self.before.clone()),
            ("DEPLOY_REPOSITORY", self.repository.clone()),
            ("DEPLOY_PUSHER", self.pusher.clone()),
            (
                "DEPLOY_FORCED",
                if self.forced { "1" } else { "0" }.to_string(),
            ),
            ("DEPLOY_MESSAGE", self.title().to_string()),
        ]
    }

    /// `after`, cut to 12 characters, or `-` when empty: for one-line
    /// summaries.
    pub fn short_sha(&self) -> &str {
        if self.after.is_empty() {
            "-"
        } else {
            crate::text::short_sha(&self.after)
        }
    }
}

/// Whether `sha` is git's "no commit": all zeros (what a forge sends as
/// `after` for a deleted ref and as `before` for a new one).
pub fn zeros(sha: &str) -> bool {
    !sha.is_empty() && sha.bytes().all(|b| b == b'0')
}

/// The paths a forge's commit lists name: `added`, `modified` and `removed`
/// of every commit together (a removed file is a change too), each once.
/// `lists` is one entry per commit, `None` where a commit came without its
/// lists.
pub fn changed_paths<'a, I, S>(lists: I) -> Option<Vec<String>>
where
    I: IntoIterator<Item = Option<[&'a [S]; 3]>>,
    S: AsRef<str> + 'a,
{
    // Borrowed until deduplicated: a path changed by many commits is
    // copied once.
    let mut paths = std::collections::BTreeSet::new();
    for commit in lists {
        for list in commit? {
            paths.extend(list.iter().map(AsRef::as_ref));
        }
    }
    Some(paths.into_iter().map(str::to_string).collect())
}
