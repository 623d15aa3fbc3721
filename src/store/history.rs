//! Run records: one JSON file per run under `<state_dir>/runs/<project>/`,
//! its log at `<log_dir>/<project>/<id>.log`, the newest `keep_runs` kept.
//!
//! Run ids are per-project numbers (1, 2, 3 …), short enough to type in
//! `deployd logs app 7`. An id is reserved by creating its record file with
//! `O_EXCL`, so the daemon and a manual `deployd deploy` never share one.
//!
//! The newest [`RECENT`] runs of each project are also kept in memory once
//! read ([`History::recent`]): the status page's overview and `deployd
//! status` read them on every look, which would otherwise be thousands of
//! files. The files stay the truth, written by this process and by others
//! (a direct `deployd deploy` beside the daemon): every look checks the
//! project's directory, and reads again what changed.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::forge::ci::CiNote;
use crate::forge::push::Push;
use crate::fsutil;
use crate::store::queue::{DeployRequest, Trigger};

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
    /// Stopped by `deployd cancel`, or by a newer push (`on_new_push =
    /// "cancel"`).
    Cancelled,
    /// The script succeeded but every try of its `health_check` failed.
    Unhealthy,
    /// A required CI workflow did not pass: the push was dropped and the
    /// script never ran (docs/ci-gate.md).
    CiFailed,
    /// The push waited `ci_timeout` for its CI and was dropped; the script
    /// never ran.
    CiTimeout,
}

impl Status {
    /// Every status, in the order of the enum.
    pub const ALL: [Status; 9] = [
        Status::Running,
        Status::Succeeded,
        Status::Failed,
        Status::TimedOut,
        Status::Interrupted,
        Status::Cancelled,
        Status::Unhealthy,
        Status::CiFailed,
        Status::CiTimeout,
    ];
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Running => "running",
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
            Status::TimedOut => "timed_out",
            Status::Interrupted => "interrupted",
            Status::Cancelled => "cancelled",
            Status::Unhealthy => "unhealthy",
            Status::CiFailed => "ci_failed",
            Status::CiTimeout => "ci_timeout",
        })
    }
}

/// One run: the request it carries out, and what became of it.
///
/// On disk and in `history --json` a record is one flat JSON object (the
/// shape of [`Record`]), the same as before a run held its request: records
/// written by earlier versions read back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Record", into = "Record")]
pub struct Run {
    /// Per-project run number.
    pub id: u64,
    /// The request this run carried out (and, through its `coalesced`, the
    /// ones it replaced).
    pub request: DeployRequest,
    /// How it ended.
    pub status: Status,
    /// Exit code; null when killed by a signal or not finished.
    pub exit_code: Option<i32>,
    /// The signal that ended the script, if one did.
    pub signal: Option<i32>,
    /// RFC 3339.
    pub started_at: String,
    /// RFC 3339; null while running.
    pub finished_at: Option<String>,
    /// The run's log file.
    pub log: PathBuf,
    /// The script's process id (its process group id too).
    pub pid: Option<u32>,
    /// What the script wrote to `DEPLOY_OUTPUT` (`url`, `sha`, `summary`),
    /// read when it ended (docs/configuration.md, *What the script gets*).
    pub outputs: BTreeMap<String, String>,
    /// Each host's part, for a project with `hosts` (docs/fleet.md);
    /// empty otherwise.
    pub hosts: Vec<crate::store::hosts::HostRun>,
}

/// A run record as it is written: flat, its request's fields beside its
/// own, with the request's `seq` named `request_seq`. The one place the
/// format of records and `history --json` is spelled out.
#[derive(Serialize, Deserialize)]
struct Record {
    id: u64,
    project: String,
    trigger: Trigger,
    #[serde(flatten)]
    push: Push,
    status: Status,
    exit_code: Option<i32>,
    #[serde(default)]
    signal: Option<i32>,
    started_at: String,
    finished_at: Option<String>,
    log: PathBuf,
    request_seq: u64,
    #[serde(default)]
    received_at: String,
    #[serde(default)]
    pid: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    coalesced: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ci: Option<CiNote>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    bodies: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    outputs: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    hosts: Vec<crate::store::hosts::HostRun>,
}

impl From<Record> for Run {
    fn from(r: Record) -> Run {
        Run {
            id: r.id,
            request: DeployRequest {
                seq: r.request_seq,
                project: r.project,
                trigger: r.trigger,
                push: r.push,
                received_at: r.received_at,
                coalesced: r.coalesced,
                ci: r.ci,
                bodies: r.bodies,
            },
            status: r.status,
            exit_code: r.exit_code,
            signal: r.signal,
            started_at: r.started_at,
            finished_at: r.finished_at,
            log: r.log,
            pid: r.pid,
            outputs: r.outputs,
            hosts: r.hosts,
        }
    }
}

impl From<Run> for Record {
    fn from(r: Run) -> Record {
        let DeployRequest {
            seq,
            project,
            trigger,
            push,
            received_at,
            coalesced,
            ci,
            bodies,
        } = r.request;
        Record {
            id: r.id,
            project,
            trigger,
            push,
            status: r.status,
            exit_code: r.exit_code,
            signal: r.signal,
            started_at: r.started_at,
            finished_at: r.finished_at,
            log: r.log,
            request_seq: seq,
            received_at,
            pid: r.pid,
            coalesced,
            ci,
            bodies,
            outputs: r.outputs,
            hosts: r.hosts,
        }
    }
}

impl Run {
    /// The request this run carried out, to run it again: the same push,
    /// a new `seq` and `trigger`, accepted now.
    pub fn request(&self, seq: u64, trigger: Trigger) -> DeployRequest {
        DeployRequest {
            seq,
            trigger,
            received_at: fsutil::now_rfc3339(),
            ..self.request.clone()
        }
    }

    /// The project.
    pub fn project(&self) -> &str {
        &self.request.project
    }

    /// The first 12 characters of the commit, or `-` when none was given,
    /// for one-line summaries.
    pub fn short_sha(&self) -> &str {
        self.request.push.short_sha()
    }

    /// How it ended, in words for a sentence (`run 3 timed out after 15m`):
    /// `timed out after` the project's `timeout`, `CI failed`, or the status
    /// word as it is.
    pub fn ended_as(&self, timeout: std::time::Duration) -> String {
        match self.status {
            Status::TimedOut => format!("timed out after {}", humantime::format_duration(timeout)),
            Status::CiFailed => "CI failed".into(),
            Status::CiTimeout => "CI did not finish in time".into(),
            s => s.to_string(),
        }
    }

    /// Seconds from `started_at` to `finished_at`; None while it runs (or
    /// when a time does not read), for durations shown and measured.
    pub fn duration_secs(&self) -> Option<f64> {
        let start = humantime::parse_rfc3339_weak(&self.started_at).ok()?;
        let end = humantime::parse_rfc3339_weak(self.finished_at.as_deref()?).ok()?;
        end.duration_since(start).ok().map(|d| d.as_secs_f64())
    }
}

/// What a rollback deploys: the run whose commit it runs again, chosen from
/// `runs` (one project's, newest first) — run `to` when given, else the
/// newest succeeded run before `current` (by default the newest succeeded
/// run: what is deployed now) whose commit differs from `current`'s.
/// `Err` says, in words, why there is nothing to roll back to.
pub fn rollback_target(
    runs: &[Run],
    to: Option<u64>,
    current: Option<&Run>,
) -> Result<Run, String> {
    let has_commit = |r: &Run| {
        !r.request.push.after.is_empty() && !crate::forge::push::zeros(&r.request.push.after)
    };
    if let Some(id) = to {
        let run = runs
            .iter()
            .find(|r| r.id == id)
            .ok_or_else(|| match runs.first() {
                Some(r) => format!(
                    "there is no run {id} (see `deployd history {}`)",
                    r.project()
                ),
                None => format!("there is no run {id}: nothing has run yet"),
            })?;
        if !has_commit(run) {
            return Err(format!(
                "run {id} has no commit to go back to (it was started without one: \
                 a manual deploy without --sha)"
            ));
        }
        return Ok(run.clone());
    }
    let succeeded = |r: &&Run| r.status == Status::Succeeded;
    let current = match current {
        Some(c) => c.clone(),
        None => runs
            .iter()
            .find(succeeded)
            .cloned()
            .ok_or("nothing to go back to: no run has succeeded yet")?,
    };
    runs.iter()
        .filter(|r| r.id < current.id)
        .filter(succeeded)
        .find(|r| has_commit(r) && r.request.push.after != current.request.push.after)
        .cloned()
        .ok_or_else(|| {
            format!(
                "nothing to go back to: no successful run with another commit than {} \
                 before run {} (give one with --to RUN_ID)",
                current.short_sha(),
                current.id
            )
        })
}

/// How many of a project's newest runs [`History::recent`] keeps in
/// memory: what the overview's strip draws.
pub const RECENT: usize = 20;

/// How long after its last change a file's or directory's times are
/// trusted to tell the next change. The kernel stamps changes with a clock
/// that ticks every few milliseconds (some file systems keep whole or even
/// two seconds), so a change within the tick of the one before can leave
/// the same times; one made after this long cannot.
const SETTLED: Duration = Duration::from_secs(2);

/// What tells a file or directory from the same one changed: its inode and
/// its times. A record is only ever replaced whole (written aside and
/// renamed over), which gives it a new inode and its directory new times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    /// The stamp of `meta`, or None while its last change is too recent
    /// (less than [`SETTLED`] before `now`, or after it) to tell the next.
    fn settled(meta: &fs::Metadata, now: SystemTime) -> Option<Stamp> {
        let stamp = Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        };
        let changed = stamp.mtime.max(stamp.ctime);
        let at = SystemTime::UNIX_EPOCH
            + Duration::new(
                u64::try_from(changed.0).unwrap_or(0),
                u32::try_from(changed.1).unwrap_or(0),
            );
        let age = now.duration_since(at).ok()?;
        (age >= SETTLED).then_some(stamp)
    }
}

/// A project's newest runs as last read.
#[derive(Debug, Default)]
struct Recent {
    /// The project's directory when they were read; None when that, or
    /// one of the records, was too freshly changed to be trusted, or when
    /// this process wrote a record meanwhile: then the next look checks
    /// every record.
    dir: Option<Stamp>,
    /// Newest first.
    runs: Vec<Slot>,
}

/// One record as read, with the stamp it had before it was read.
#[derive(Debug, Clone)]
struct Slot {
    stamp: Option<Stamp>,
    run: Run,
}

/// The run records of all projects.
#[derive(Debug)]
pub struct History {
    runs_dir: PathBuf,
    log_dir: PathBuf,
    /// Each project's newest runs, once read ([`History::recent`]).
    recent: Mutex<HashMap<String, Recent>>,
    /// Records this process created, wrote or removed so far: a look that
    /// overlapped one does not trust what it read.
    writes: AtomicU64,
}

impl History {
    /// Records under `<state_dir>/runs`, logs under `log_dir`.
    pub fn new(state_dir: &Path, log_dir: &Path) -> History {
        History {
            runs_dir: state_dir.join("runs"),
            log_dir: log_dir.to_path_buf(),
            recent: Mutex::new(HashMap::new()),
            writes: AtomicU64::new(0),
        }
    }

    fn cache(&self) -> MutexGuard<'_, HashMap<String, Recent>> {
        self.recent.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// This process changed record `id` of `project` (created, wrote or
    /// removed it): what the cache holds of it is dropped, and the next
    /// look checks every record of the project.
    fn changed(&self, project: &str, id: u64) {
        self.writes.fetch_add(1, Ordering::SeqCst);
        if let Some(r) = self.cache().get_mut(project) {
            r.dir = None;
            r.runs.retain(|s| s.run.id != id);
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
    pub fn create(&self, req: &DeployRequest) -> io::Result<Run> {
        self.reserve(req, Status::Running)
    }

    /// A record for `req` whose script never ran (`ci_failed`,
    /// `ci_timeout`), written finished from the start: never `running` on
    /// disk, so a crash cannot make recovery run it. Blocking.
    pub fn closed(&self, req: &DeployRequest, status: Status) -> io::Result<Run> {
        self.reserve(req, status)
    }

    fn reserve(&self, req: &DeployRequest, status: Status) -> io::Result<Run> {
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
                Ok(_) => {
                    self.changed(&req.project, id);
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => id += 1,
                Err(e) => return Err(e),
            }
        }
        let started_at = fsutil::now_rfc3339();
        let run = Run {
            id,
            request: req.clone(),
            status,
            exit_code: None,
            signal: None,
            finished_at: (status != Status::Running).then(|| started_at.clone()),
            started_at,
            log: log_dir.join(format!("{id}.log")),
            pid: None,
            outputs: BTreeMap::new(),
            hosts: Vec::new(),
        };
        self.save(&run)?;
        Ok(run)
    }

    /// Writes a record durably. Blocking.
    pub fn save(&self, run: &Run) -> io::Result<()> {
        let data = serde_json::to_vec_pretty(run).map_err(io::Error::other)?;
        let written = fsutil::write_atomic(&self.record_path(run.project(), run.id), &data);
        self.changed(run.project(), run.id);
        written
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
    /// died) are skipped. Up to [`RECENT`] of them come from memory, as
    /// [`History::recent`] has them.
    pub fn list(&self, project: &str, limit: Option<usize>) -> io::Result<Vec<Run>> {
        if let Some(n) = limit.filter(|n| *n <= RECENT) {
            let mut runs = self.recent(project)?;
            runs.truncate(n);
            return Ok(runs);
        }
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

    /// The newest [`RECENT`] runs of `project`, newest first, as
    /// [`History::list`] reads them, from memory as far as they did not
    /// change since the last look. Blocking.
    ///
    /// A look costs one `stat` of the project's directory while nothing
    /// changed in it. A record is only ever replaced by a rename in that
    /// directory, which changes the directory's times: when they differ
    /// from the last look's, the records are listed again, each is looked
    /// at (`stat`), and those whose inode or times changed are read again.
    /// That holds whoever wrote them: this process, or another one (a
    /// direct `deployd deploy` that was running when the daemon started).
    /// Times that were too fresh to tell the next change ([`SETTLED`]) are
    /// not trusted: such a project is checked record by record until they
    /// settle. The records this process writes are also dropped from memory
    /// as it writes them ([`History::save`], [`History::prune`]).
    pub fn recent(&self, project: &str) -> io::Result<Vec<Run>> {
        self.recent_at(project, SystemTime::now())
    }

    /// [`History::recent`] as if it were `now`.
    fn recent_at(&self, project: &str, now: SystemTime) -> io::Result<Vec<Run>> {
        let writes = self.writes.load(Ordering::SeqCst);
        let dir = match fs::metadata(self.dir(project)) {
            Ok(m) => Stamp::settled(&m, now),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.cache().remove(project);
                return Ok(Vec::new());
            }
            Err(e) => return Err(e),
        };
        let mut known: HashMap<u64, Slot> = {
            let mut cache = self.cache();
            match cache.get(project) {
                Some(r) if r.dir.is_some() && r.dir == dir => {
                    return Ok(r.runs.iter().map(|s| s.run.clone()).collect());
                }
                _ => cache
                    .remove(project)
                    .map(|r| r.runs.into_iter().map(|s| (s.run.id, s)).collect())
                    .unwrap_or_default(),
            }
        };
        let mut ids = self.ids(project)?;
        ids.sort_unstable_by(|a, b| b.cmp(a));
        let mut runs: Vec<Slot> = Vec::new();
        let mut settled = dir.is_some();
        for id in ids {
            if runs.len() >= RECENT {
                break;
            }
            // Looked at before it is read: should it change in between, the
            // next look sees another stamp.
            let Ok(meta) = fs::metadata(self.record_path(project, id)) else {
                continue;
            };
            let stamp = Stamp::settled(&meta, now);
            settled &= stamp.is_some();
            match known.remove(&id) {
                Some(slot) if stamp.is_some() && slot.stamp == stamp => runs.push(slot),
                _ => {
                    if let Ok(Some(run)) = self.get(project, id) {
                        runs.push(Slot { stamp, run });
                    }
                }
            }
        }
        let out = runs.iter().map(|s| s.run.clone()).collect();
        let raced = self.writes.load(Ordering::SeqCst) != writes;
        self.cache().insert(
            project.to_string(),
            Recent {
                dir: dir.filter(|_| settled && !raced),
                runs,
            },
        );
        Ok(out)
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
                .as_ref()
                .map(|r| r.log.clone())
                .unwrap_or_else(|| self.log_dir.join(project).join(format!("{id}.log")));
            for h in run.iter().flat_map(|r| &r.hosts) {
                let _ = fs::remove_file(&h.log);
            }
            let _ = fs::remove_file(crate::store::outputs::path(&log));
            let _ = fs::remove_file(log);
            let gone = fs::remove_file(self.record_path(project, id));
            self.changed(project, id);
            gone?;
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
    use crate::fsutil::tests::scratch;

    fn req(seq: u64) -> DeployRequest {
        let push = Push {
            git_ref: "refs/heads/main".into(),
            after: "abc".into(),
            repository: "acme/app".into(),
            pusher: "octocat".into(),
            delivery: "d".into(),
            ..Push::default()
        };
        DeployRequest::new(seq, "app", Trigger::Webhook, push)
    }

    #[test]
    fn rollback_goes_back_one_good_commit() {
        let run = |id: u64, sha: &str, status: Status| {
            let mut r = req(id);
            r.push.after = sha.into();
            Run {
                id,
                request: r,
                status,
                exit_code: None,
                signal: None,
                started_at: String::new(),
                finished_at: None,
                log: PathBuf::new(),
                pid: None,
                outputs: Default::default(),
                hosts: Vec::new(),
            }
        };
        // Newest first.
        let runs = vec![
            run(6, "c", Status::Failed),
            run(5, "c", Status::Succeeded),
            run(4, "c", Status::Succeeded),
            run(3, "", Status::Succeeded),
            run(2, "b", Status::Cancelled),
            run(1, "a", Status::Succeeded),
        ];
        assert_eq!(rollback_target(&runs, None, None).unwrap().id, 1);
        assert_eq!(rollback_target(&runs, Some(4), None).unwrap().id, 4);
        let e = rollback_target(&runs, Some(3), None).unwrap_err();
        assert_eq!(
            e,
            "run 3 has no commit to go back to (it was started without one: \
             a manual deploy without --sha)"
        );
        let e = rollback_target(&runs, Some(9), None).unwrap_err();
        assert_eq!(e, "there is no run 9 (see `deployd history app`)");
        let e = rollback_target(&[], Some(9), None).unwrap_err();
        assert_eq!(e, "there is no run 9: nothing has run yet");
        let e = rollback_target(&runs[..4], None, None).unwrap_err();
        assert_eq!(
            e,
            "nothing to go back to: no successful run with another commit than c \
             before run 5 (give one with --to RUN_ID)"
        );
        assert!(rollback_target(&[], None, None).is_err());
        // From an unhealthy run: its last healthy predecessor.
        let bad = run(7, "d", Status::Unhealthy);
        assert_eq!(rollback_target(&runs, None, Some(&bad)).unwrap().id, 5);
    }

    #[test]
    fn ids_grow_and_retention_keeps_the_newest() {
        let dir = scratch("history");
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
        // The JSON names the fields `history --json` shows (docs/commands.md).
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

    /// The body MACs a request carries reach its run record, after
    /// `coalesced` as `history --json` shows them (docs/commands.md), and read
    /// back into the request (to be remembered at start, and carried by a
    /// recovery run).
    #[test]
    fn records_keep_their_requests_body_macs() {
        let dir = scratch("history-bodies");
        let h = History::new(&dir.join("state"), &dir.join("logs"));
        let request = DeployRequest {
            coalesced: vec!["d-0".into()],
            bodies: vec!["=0a".into(), "=1b".into()],
            ..req(1)
        };
        let run = h.create(&request).unwrap();
        let text = serde_json::to_string_pretty(&run).unwrap();
        let (coalesced, bodies) = (
            text.find("\"coalesced\"").unwrap(),
            text.find("\"bodies\"").unwrap(),
        );
        assert!(coalesced < bodies, "{text}");
        let back = &h.list("app", None).unwrap()[0];
        assert_eq!(back.request.bodies, vec!["=0a", "=1b"]);
        assert_eq!(
            back.request.deliveries().collect::<Vec<_>>(),
            vec!["d", "d-0", "=0a", "=1b"]
        );
        assert_eq!(back.request(2, Trigger::Recovery).bodies, request.bodies);
        fs::remove_dir_all(&dir).unwrap();
    }

    /// What the push said beyond the earlier fields (forced, the head
    /// commit's first line, the filter's note) is in the flat record, as
    /// `history --json` shows it, and reads back; left out when unset.
    #[test]
    fn records_show_forced_message_and_note() {
        let dir = scratch("history-push");
        let h = History::new(&dir.join("state"), &dir.join("logs"));
        let mut r = req(1);
        r.push.forced = true;
        r.push.message = "Fix the login page".into();
        r.push.note = "paths not checked, deploying anyway: a force push".into();
        let run = h.create(&r).unwrap();
        let v = serde_json::to_value(&run).unwrap();
        assert_eq!(v["forced"], true);
        assert_eq!(v["message"], "Fix the login page");
        assert_eq!(
            v["note"],
            "paths not checked, deploying anyway: a force push"
        );
        assert!(
            v.get("request").is_none() && v.get("push").is_none(),
            "{v:#}"
        );
        assert_eq!(h.get("app", run.id).unwrap(), Some(run));
        let plain = serde_json::to_value(h.create(&req(2)).unwrap()).unwrap();
        for k in ["forced", "message", "note"] {
            assert!(plain.get(k).is_none(), "{k} in {plain:#}");
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    /// The newest runs kept in memory never lag the files, whoever writes
    /// them: here another `History` on the same directories, as a direct
    /// `deployd deploy` beside the daemon is.
    #[test]
    fn recent_runs_follow_records_written_by_another_process() {
        let dir = scratch("history-recent");
        let (state, logs) = (dir.join("state"), dir.join("logs"));
        let (daemon, other) = (History::new(&state, &logs), History::new(&state, &logs));
        let ids = |runs: Vec<Run>| runs.iter().map(|r| (r.id, r.status)).collect::<Vec<_>>();
        assert!(daemon.recent("app").unwrap().is_empty());
        let mut runs: Vec<Run> = (1..=3)
            .map(|seq| other.create(&req(seq)).unwrap())
            .collect();
        use Status::*;
        assert_eq!(
            ids(daemon.recent("app").unwrap()),
            [(3, Running), (2, Running), (1, Running)]
        );
        // Changed right after the look, within the same clock tick: the
        // times are too fresh to be trusted, so the record is read again.
        runs[2].status = Succeeded;
        other.save(&runs[2]).unwrap();
        assert_eq!(daemon.recent("app").unwrap()[0].status, Succeeded);
        assert_eq!(daemon.list("app", Some(1)).unwrap()[0].status, Succeeded);
        // A new run, then old ones pruned.
        runs.push(other.create(&req(4)).unwrap());
        for r in &mut runs[..2] {
            r.status = Failed;
            other.save(r).unwrap();
        }
        assert_eq!(
            ids(daemon.recent("app").unwrap()),
            [(4, Running), (3, Succeeded), (2, Failed), (1, Failed)]
        );
        other.prune("app", 2).unwrap();
        assert_eq!(
            ids(daemon.recent("app").unwrap()),
            [(4, Running), (3, Succeeded)]
        );
        // Once the times have settled (here: looked at as if later), a look
        // is one stat of the directory: a record changed in place, which
        // deployd never does, is not read again...
        let later = SystemTime::now() + Duration::from_secs(60);
        daemon.recent_at("app", later).unwrap();
        let path = daemon.record_path("app", 3);
        let text = fs::read_to_string(&path).unwrap();
        fs::write(&path, text.replace("succeeded", "cancelled")).unwrap();
        assert_eq!(daemon.recent_at("app", later).unwrap()[1].status, Succeeded);
        // ...but one replaced as deployd does (a new file renamed over it)
        // changes the directory, and is. The sleep puts the change on
        // another clock tick: what the times would show had it been made
        // after `SETTLED`.
        std::thread::sleep(Duration::from_millis(50));
        runs[3].status = Unhealthy;
        other.save(&runs[3]).unwrap();
        assert_eq!(
            ids(daemon.recent_at("app", later).unwrap()),
            [(4, Unhealthy), (3, Cancelled)]
        );
        // What this process writes itself is dropped from memory at once.
        std::thread::sleep(Duration::from_millis(50));
        daemon.recent_at("app", later).unwrap();
        runs[3].status = Succeeded;
        daemon.save(&runs[3]).unwrap();
        assert_eq!(daemon.recent_at("app", later).unwrap()[0].status, Succeeded);
        // At most RECENT, newest first; `list` beyond that reads them all.
        for seq in 5..=30 {
            other.create(&req(seq)).unwrap();
        }
        let recent = daemon.recent("app").unwrap();
        assert_eq!(recent.len(), RECENT);
        assert_eq!(recent[0].id, 30);
        assert_eq!(daemon.list("app", None).unwrap().len(), 28);
        fs::remove_dir_all(&dir).unwrap();
    }

    /// A record as versions before runs held their request wrote it: it
    /// reads back, and is written again with the same fields and values.
    #[test]
    fn reads_and_rewrites_records_in_the_earlier_format() {
        let earlier = r#"{
  "id": 7,
  "project": "app",
  "trigger": "webhook",
  "ref": "refs/heads/main",
  "sha": "0123456789abcdef0123456789abcdef01234567",
  "before": "1111111111111111111111111111111111111111",
  "repository": "acme/app",
  "pusher": "octocat",
  "delivery": "d-7",
  "status": "failed",
  "exit_code": 3,
  "signal": null,
  "started_at": "2026-01-02T03:04:05.006Z",
  "finished_at": "2026-01-02T03:04:06.007Z",
  "log": "/var/log/deployd/app/7.log",
  "request_seq": 1767323045006000000,
  "received_at": "2026-01-02T03:04:05.000Z",
  "pid": 4242,
  "coalesced": [
    "d-5",
    "d-6"
  ]
}"#;
        let run: Run = serde_json::from_str(earlier).unwrap();
        assert_eq!(run.id, 7);
        assert_eq!(run.project(), "app");
        assert_eq!(run.request.seq, 1767323045006000000);
        assert_eq!(run.request.trigger, Trigger::Webhook);
        assert_eq!(
            run.request.push.after,
            "0123456789abcdef0123456789abcdef01234567"
        );
        assert_eq!(run.request.push.delivery, "d-7");
        assert_eq!(run.request.coalesced, vec!["d-5", "d-6"]);
        assert_eq!(run.status, Status::Failed);
        assert_eq!(run.exit_code, Some(3));
        assert_eq!(run.pid, Some(4242));
        assert_eq!(run.short_sha(), "0123456789ab");
        // Written again: the same text, field for field and in order.
        assert_eq!(serde_json::to_string_pretty(&run).unwrap(), earlier);
        // The oldest records had no signal, received_at, pid or coalesced.
        let oldest = r#"{"id":1,"project":"app","trigger":"manual","ref":"refs/heads/main",
            "sha":"","before":"","repository":"","pusher":"root","delivery":"",
            "status":"succeeded","exit_code":0,"started_at":"x","finished_at":"y",
            "log":"1.log","request_seq":5}"#;
        let run: Run = serde_json::from_str(oldest).unwrap();
        assert_eq!(run.request.trigger, Trigger::Manual);
        assert_eq!(run.request.push.pusher, "root");
        assert_eq!((run.signal, run.pid), (None, None));
        assert!(run.request.coalesced.is_empty());
    }
}
