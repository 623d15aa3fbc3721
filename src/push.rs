//! The forge-neutral description of a push: what each forge's payload is read
//! into (each forge's file in `forge/`) and what the rest of deployd works
//! with. It knows no forge and imports nothing of the crate, so every module
//! may use it.

/// A push, whatever forge sent it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Push {
    /// The full ref, e.g. `refs/heads/main` or `refs/tags/v1.2.0`.
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
    /// The forge says the push was forced (GitHub's and Bitbucket's
    /// `forced`; GitLab, Gitea and Forgejo send no such flag, so their force
    /// pushes are `false` here).
    pub forced: bool,
    /// The head commit's message, whole (empty when the forge sent none):
    /// its first line is `DEPLOY_MESSAGE`, and a skip marker may be in any
    /// line.
    pub message: String,
    /// The paths the push changed, as far as the payload tells; only the
    /// path filter reads them, and they are not kept with a queued request.
    pub files: Files,
    /// Why the path filter let this push through without knowing what it
    /// changed; written at the top of the run's log. Empty otherwise.
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
pub fn changed_paths<'a, I>(lists: I) -> Option<Vec<String>>
where
    I: IntoIterator<Item = Option<[&'a [String]; 3]>>,
{
    let mut paths = std::collections::BTreeSet::new();
    for commit in lists {
        for list in commit? {
            paths.extend(list.iter().cloned());
        }
    }
    Some(paths.into_iter().collect())
}
