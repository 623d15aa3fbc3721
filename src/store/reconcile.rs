//! The last reconcile of each project with its forge (`intake/catchup.rs`):
//! when, which head it saw, what came of it, the error if `ls-remote`
//! failed. One small file per project, `<state_dir>/reconcile/<project>.json`,
//! written atomically, so `deployd status` reads it with or without a
//! daemon, and the next daemon knows the tags the last one saw.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::fsutil;

/// What the last reconcile of a project found and did. Its JSON is the
/// `reconcile` object of `deployd status --json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Last {
    /// When it ran (RFC 3339).
    pub at: String,
    /// The remote it asked, without any credentials the URL held.
    pub remote: String,
    /// The ref it compared (`refs/heads/main`, or a tag's ref).
    #[serde(rename = "ref", default)]
    pub git_ref: String,
    /// The commit it saw there; `None` when `ls-remote` failed or the ref
    /// does not exist.
    #[serde(default)]
    pub head: Option<String>,
    /// What came of it, in words: `queued`, `waiting for CI`, `up to date`,
    /// `failed`, `no such ref`.
    pub outcome: String,
    /// Why it failed, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The newest commit catch-up queued, so the next look does not queue
    /// it again while it waits or runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queued: Option<String>,
    /// The project's tags as the forge last listed them (name → commit): a
    /// tag not among them next time is new. `None` until a look that asked
    /// for tags succeeded (a project without `tags` asks for none): the
    /// next such look is a baseline, and deploys no tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
}

fn file(state_dir: &Path, project: &str) -> PathBuf {
    state_dir.join("reconcile").join(format!("{project}.json"))
}

/// The last reconcile of `project`, if there was one and its file reads.
pub fn load(state_dir: &Path, project: &str) -> Option<Last> {
    let data = fs::read(file(state_dir, project)).ok()?;
    serde_json::from_slice(&data).ok()
}

/// Writes `last` as the last reconcile of `project`. Blocking.
pub fn save(state_dir: &Path, project: &str, last: &Last) -> io::Result<()> {
    let path = file(state_dir, project);
    if let Some(dir) = path.parent() {
        fsutil::create_dir(dir, fsutil::STATE_DIR_MODE)?;
    }
    let data = serde_json::to_vec_pretty(last).map_err(io::Error::other)?;
    fsutil::write_atomic(&path, &data)
}

/// Where the time of `project`'s last look at its GitHub hook's deliveries
/// is kept (`intake/redeliver.rs`).
fn redelivery_file(state_dir: &Path, project: &str) -> PathBuf {
    state_dir
        .join("reconcile")
        .join(format!("{project}.redelivered"))
}

/// When deployd last looked at `project`'s failed deliveries (RFC 3339),
/// if it ever did: deliveries since then are the ones it may have missed.
pub fn redelivery_mark(state_dir: &Path, project: &str) -> Option<String> {
    let text = fs::read_to_string(redelivery_file(state_dir, project)).ok()?;
    Some(text.trim().to_string()).filter(|t| !t.is_empty())
}

/// Records `at` as the time of `project`'s last look. Blocking.
pub fn save_redelivery_mark(state_dir: &Path, project: &str, at: &str) -> io::Result<()> {
    let path = redelivery_file(state_dir, project);
    if let Some(dir) = path.parent() {
        fsutil::create_dir(dir, fsutil::STATE_DIR_MODE)?;
    }
    fsutil::write_atomic(&path, format!("{at}\n").as_bytes())
}

/// The `reconcile` field of `deployd status --json` for `project`: its
/// last reconcile, or null when it never had one.
pub fn status_json(state_dir: &Path, project: &str) -> serde_json::Value {
    load(state_dir, project)
        .and_then(|l| serde_json::to_value(l).ok())
        .unwrap_or(serde_json::Value::Null)
}

/// `deployd status`'s line about the last reconcile of `project`, if any.
pub fn status_line(state_dir: &Path, project: &str) -> Option<String> {
    load(state_dir, project).map(|l| format!("  {}", describe(&l)))
}

/// `deployd status`'s line about it: `reconcile: 2024-… head 1a2b3c4d5e6f
/// (up to date)`, with the error when there was one.
pub fn describe(last: &Last) -> String {
    let head = last
        .head
        .as_deref()
        .map(|h| format!(" head {}", crate::text::short_sha(h)))
        .unwrap_or_default();
    let error = last
        .error
        .as_deref()
        .map(|e| format!(": {e}"))
        .unwrap_or_default();
    format!(
        "reconcile: {} {}{head} ({}{error})",
        last.at, last.git_ref, last.outcome
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fsutil::tests::scratch;

    #[test]
    fn saved_reads_back_and_describes_itself() {
        let dir = scratch("unit-reconcile");
        assert_eq!(load(&dir, "app"), None);
        let last = Last {
            at: "2024-05-01T10:00:00.000Z".into(),
            remote: "file:///srv/app.git".into(),
            git_ref: "refs/heads/main".into(),
            head: Some("a".repeat(40)),
            outcome: "queued".into(),
            queued: Some("a".repeat(40)),
            ..Last::default()
        };
        save(&dir, "app", &last).unwrap();
        assert_eq!(load(&dir, "app"), Some(last.clone()));
        assert_eq!(
            describe(&last),
            "reconcile: 2024-05-01T10:00:00.000Z refs/heads/main head aaaaaaaaaaaa (queued)"
        );
        let failed = Last {
            head: None,
            outcome: "failed".into(),
            error: Some("ls-remote timed out".into()),
            ..last
        };
        assert!(describe(&failed).ends_with("(failed: ls-remote timed out)"));
        fs::remove_dir_all(&dir).unwrap();
    }
}
