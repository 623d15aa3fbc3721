//! Run records: one JSON file per run under `<state_dir>/runs/<project>/`,
//! its log at `<log_dir>/<project>/<id>.log`, the newest `keep_runs` kept.
//!
//! Run ids are per-project numbers (1, 2, 3 …), short enough to type in
//! `deployd logs app 7`. An id is reserved by creating its record file with
//! `O_EXCL`, so the daemon and a manual `deployd deploy` never share one.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::fsutil;
use crate::queue::{Request, Trigger};

/// How a run ended (or that it has not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Its script is running (or the daemon died while it was).
    Running,
    /// Exit status 0.
    Succeeded,
    /// Non-zero exit, killed by a signal, or the script could not start.
    Failed,
    /// Stopped at its `timeout`.
    TimedOut,
    /// The daemon stopped or died during the run.
    Interrupted,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Running => "running",
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
            Status::TimedOut => "timed_out",
            Status::Interrupted => "interrupted",
        })
    }
}

/// One run, as `history --json` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    /// Per-project run number.
    pub id: u64,
    /// The project.
    pub project: String,
    /// What started it.
    pub trigger: Trigger,
    /// Full ref.
    #[serde(rename = "ref")]
    pub git_ref: String,
    /// Pushed commit (empty for a manual run without `--sha`).
    pub sha: String,
    /// Commit before the push.
    pub before: String,
    /// `owner/name`.
    pub repository: String,
    /// Who pushed.
    pub pusher: String,
    /// Forge delivery id (empty for manual runs).
    pub delivery: String,
    /// How it ended.
    pub status: Status,
    /// Exit code; null when killed by a signal or not finished.
    pub exit_code: Option<i32>,
    /// The signal that ended the script, if one did.
    #[serde(default)]
    pub signal: Option<i32>,
    /// RFC 3339.
    pub started_at: String,
    /// RFC 3339; null while running.
    pub finished_at: Option<String>,
    /// The run's log file.
    pub log: PathBuf,
    /// `seq` of the request this run carried out (and the ones it coalesced).
    pub request_seq: u64,
    /// When the request was accepted.
    #[serde(default)]
    pub received_at: String,
    /// The script's process id (its process group id too).
    #[serde(default)]
    pub pid: Option<u32>,
    /// Delivery ids of the pushes this run's request replaced (coalesced).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub coalesced: Vec<String>,
    /// What the script wrote to `DEPLOY_OUTPUT` (`url`, `sha`, `summary`),
    /// read when it ended (README, "Script outputs").
    #[serde(default)]
    pub outputs: std::collections::BTreeMap<String, String>,
}

impl Run {
    /// Rebuilds the request a run carried out, e.g. to run it again.
    pub fn request(&self, seq: u64, trigger: Trigger) -> Request {
        Request {
            seq,
            project: self.project.clone(),
            trigger,
            git_ref: self.git_ref.clone(),
            sha: self.sha.clone(),
            before: self.before.clone(),
            repository: self.repository.clone(),
            pusher: self.pusher.clone(),
            delivery: self.delivery.clone(),
            received_at: fsutil::now_rfc3339(),
            coalesced: self.coalesced.clone(),
        }
    }

    /// `abc1234` or `(no commit)`, for one-line summaries.
    pub fn short_sha(&self) -> &str {
        if self.sha.is_empty() {
            "-"
        } else {
            &self.sha[..self.sha.len().min(12)]
        }
    }
}

/// The run records of all projects.
#[derive(Debug, Clone)]
pub struct History {
    runs_dir: PathBuf,
    log_dir: PathBuf,
}

impl History {
    /// Records under `<state_dir>/runs`, logs under `log_dir`.
    pub fn new(state_dir: &Path, log_dir: &Path) -> History {
        History {
            runs_dir: state_dir.join("runs"),
            log_dir: log_dir.to_path_buf(),
        }
    }

    fn dir(&self, project: &str) -> PathBuf {
        self.runs_dir.join(project)
    }

    fn record_path(&self, project: &str, id: u64) -> PathBuf {
        self.dir(project).join(format!("{id}.json"))
    }

    /// Starts a record for `req`: reserves the next id, creates the (empty)
    /// log file, and writes the record as `running`, durably. Blocking.
    pub fn create(&self, req: &Request) -> io::Result<Run> {
        let dir = self.dir(&req.project);
        fsutil::create_dir(&dir, fsutil::STATE_DIR_MODE)?;
        let log_dir = self.log_dir.join(&req.project);
        fsutil::create_dir(&log_dir, fsutil::LOG_DIR_MODE)?;
        let mut id = self.ids(&req.project)?.into_iter().max().unwrap_or(0) + 1;
        loop {
            match fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(self.record_path(&req.project, id))
            {
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => id += 1,
                Err(e) => return Err(e),
            }
        }
        let run = Run {
            id,
            project: req.project.clone(),
            trigger: req.trigger,
            git_ref: req.git_ref.clone(),
            sha: req.sha.clone(),
            before: req.before.clone(),
            repository: req.repository.clone(),
            pusher: req.pusher.clone(),
            delivery: req.delivery.clone(),
            status: Status::Running,
            exit_code: None,
            signal: None,
            started_at: fsutil::now_rfc3339(),
            finished_at: None,
            log: log_dir.join(format!("{id}.log")),
            request_seq: req.seq,
            received_at: req.received_at.clone(),
            pid: None,
            coalesced: req.coalesced.clone(),
            outputs: Default::default(),
        };
        self.save(&run)?;
        Ok(run)
    }

    /// Writes a record durably. Blocking.
    pub fn save(&self, run: &Run) -> io::Result<()> {
        let data = serde_json::to_vec_pretty(run).map_err(io::Error::other)?;
        fsutil::write_atomic(&self.record_path(&run.project, run.id), &data)
    }

    fn ids(&self, project: &str) -> io::Result<Vec<u64>> {
        let mut ids = Vec::new();
        match fs::read_dir(self.dir(project)) {
            Ok(entries) => {
                for e in entries {
                    let name = e?.file_name();
                    let name = name.to_string_lossy();
                    if let Some(id) = name.strip_suffix(".json").and_then(|s| s.parse().ok()) {
                        ids.push(id);
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok(ids)
    }

    /// One run, if its record exists and reads.
    pub fn get(&self, project: &str, id: u64) -> io::Result<Option<Run>> {
        match fs::read(self.record_path(project, id)) {
            Ok(b) if b.is_empty() => Ok(None),
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(io::Error::other),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Runs of `project`, newest first; at most `limit` when given.
    /// Records that do not read (an id reserved by a process that then
    /// died) are skipped.
    pub fn list(&self, project: &str, limit: Option<usize>) -> io::Result<Vec<Run>> {
        let mut ids = self.ids(project)?;
        ids.sort_unstable_by(|a, b| b.cmp(a));
        let mut runs = Vec::new();
        for id in ids {
            if limit.is_some_and(|l| runs.len() >= l) {
                break;
            }
            if let Ok(Some(run)) = self.get(project, id) {
                runs.push(run);
            }
        }
        Ok(runs)
    }

    /// The newest run of `project`.
    pub fn latest(&self, project: &str) -> io::Result<Option<Run>> {
        Ok(self.list(project, Some(1))?.into_iter().next())
    }

    /// Runs recorded as running: unfinished, if no live daemon owns them.
    pub fn unfinished(&self, project: &str) -> io::Result<Vec<Run>> {
        let mut runs: Vec<Run> = self
            .list(project, None)?
            .into_iter()
            .filter(|r| r.status == Status::Running)
            .collect();
        runs.reverse();
        Ok(runs)
    }

    /// Deletes all but the newest `keep` records and logs of `project`
    /// (never a running one). Blocking.
    pub fn prune(&self, project: &str, keep: usize) -> io::Result<usize> {
        let mut ids = self.ids(project)?;
        ids.sort_unstable_by(|a, b| b.cmp(a));
        let mut removed = 0;
        for id in ids.into_iter().skip(keep) {
            let run = self.get(project, id).ok().flatten();
            if run.as_ref().is_some_and(|r| r.status == Status::Running) {
                continue;
            }
            let log = run
                .map(|r| r.log)
                .unwrap_or_else(|| self.log_dir.join(project).join(format!("{id}.log")));
            let _ = fs::remove_file(crate::outputs::path(&log));
            let _ = fs::remove_file(log);
            fs::remove_file(self.record_path(project, id))?;
            removed += 1;
        }
        Ok(removed)
    }

    /// Projects that have records on disk (some may have left the config).
    pub fn projects(&self) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(&self.runs_dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .filter(|e| e.path().is_dir())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(seq: u64) -> Request {
        Request {
            seq,
            project: "app".into(),
            trigger: Trigger::Webhook,
            git_ref: "refs/heads/main".into(),
            sha: "abc".into(),
            before: String::new(),
            repository: "acme/app".into(),
            pusher: "octocat".into(),
            delivery: "d".into(),
            received_at: fsutil::now_rfc3339(),
            coalesced: Vec::new(),
        }
    }

    #[test]
    fn ids_grow_and_retention_keeps_the_newest() {
        let dir = std::env::temp_dir().join(format!("deployd-history-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let h = History::new(&dir.join("state"), &dir.join("logs"));
        for seq in 1..=5 {
            let mut run = h.create(&req(seq)).unwrap();
            assert_eq!(run.id, seq);
            fs::write(&run.log, b"output\n").unwrap();
            run.status = Status::Succeeded;
            run.exit_code = Some(0);
            h.save(&run).unwrap();
        }
        let running = h.create(&req(6)).unwrap();
        assert_eq!(h.unfinished("app").unwrap(), vec![running.clone()]);
        assert_eq!(h.prune("app", 3).unwrap(), 3);
        let ids: Vec<u64> = h.list("app", None).unwrap().iter().map(|r| r.id).collect();
        assert_eq!(ids, vec![6, 5, 4]);
        assert!(!dir.join("logs/app/1.log").exists());
        assert!(dir.join("logs/app/5.log").exists());
        assert_eq!(h.list("app", Some(1)).unwrap()[0].id, 6);
        // The JSON names the SPEC's fields.
        let v = serde_json::to_value(&running).unwrap();
        for k in [
            "id",
            "project",
            "trigger",
            "ref",
            "sha",
            "delivery",
            "status",
            "exit_code",
            "started_at",
            "finished_at",
            "log",
        ] {
            assert!(v.get(k).is_some(), "missing {k}");
        }
        assert_eq!(v["status"], "running");
        assert_eq!(v["trigger"], "webhook");
        fs::remove_dir_all(&dir).unwrap();
    }
}
