//! The durable queue of deploy requests, coalesced: at most one pending
//! request per project, the newest, kept in `<state_dir>/queue/<project>.json`.
//!
//! A push returns only once its request is on disk (written, fsynced,
//! renamed, directory fsynced): that is what a 202 promises. Pushes that
//! arrive while a write is in flight ride on the next write (group commit),
//! so a burst costs a few fsyncs, not one each; the HTTP side waits for it
//! without holding a thread ([`Queue::push`]: one blocking thread
//! writes for all of them). The executor [`Queue::take`]s
//! a request only once it is durable, and [`Queue::settle`]s it (removes the
//! file) once the run's record is on disk, so at every moment a request is
//! on disk as pending, or as a run record, or both.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::config::Project;
use crate::forge::ci::CiNote;
use crate::forge::push::{Files, Push};
use crate::fsutil;

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    /// A verified push from the forge.
    Webhook,
    /// `deployd deploy`.
    Manual,
    /// Re-run of a run the daemon did not see finish.
    Recovery,
    /// The deploy button of the status page (`pusher`: the token's name).
    Web,
    /// `deployd rollback`, or an unhealthy run rolled back
    /// (`on_unhealthy = "rollback"`): the commit of an earlier run.
    Rollback,
    /// The forge's head, found by `git ls-remote` at start or at the
    /// project's `reconcile` interval, differed from what was deployed (a
    /// push deployd never heard of: see `intake/catchup.rs`).
    Catchup,
}

impl std::fmt::Display for Trigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Trigger::Webhook => "webhook",
            Trigger::Manual => "manual",
            Trigger::Recovery => "recovery",
            Trigger::Web => "web",
            Trigger::Rollback => "rollback",
            Trigger::Catchup => "catchup",
        })
    }
}

/// A request to deploy a project: what the script will see as `DEPLOY_*`.
/// Its JSON (queue files, `status --json`) is flat: the push's fields sit
/// beside `seq`, `project` and `trigger`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployRequest {
    /// Increases with every request, across restarts; a run of a project
    /// covers every request of it with a `seq` up to its own.
    pub seq: u64,
    /// The project.
    pub project: String,
    /// What asked for the run.
    pub trigger: Trigger,
    /// What to deploy: the push, or for a manual run what `deployd deploy`
    /// named.
    #[serde(flatten)]
    pub push: Push,
    /// When deployd accepted it (RFC 3339).
    #[serde(default)]
    pub received_at: String,
    /// Delivery ids of older requests this one replaced while pending, so
    /// they stay known as accepted (redeliveries are duplicates) through a
    /// crash. Bounded to the newest [`MAX_COALESCED`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub coalesced: Vec<String>,
    /// What the CI gate had to do with it, if anything (docs/ci-gate.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci: Option<CiNote>,
    /// The remembered body MACs (`deliveries::body_entry`) of this request
    /// and of those it replaced: durable with the request, as its delivery
    /// ids are, so a replay under a new id stays a duplicate through a
    /// crash. Bounded like `coalesced`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bodies: Vec<String>,
}

/// How many replaced delivery ids a pending request carries at most.
pub const MAX_COALESCED: usize = 1000;

impl DeployRequest {
    /// A request for `push`, accepted now. Every request is built here, by
    /// [`DeployRequest::manual`] or by [`DeployRequest::web`]. It keeps of the push what
    /// a run needs: the message's first line (`DEPLOY_MESSAGE`), and no file
    /// lists, which only the filter reads before a push is queued (a long
    /// push's lists would otherwise sit in memory until its run).
    pub fn new(seq: u64, project: &str, trigger: Trigger, mut push: Push) -> DeployRequest {
        push.message.truncate(push.title().len());
        push.files = Files::default();
        DeployRequest {
            seq,
            project: project.to_string(),
            trigger,
            push,
            received_at: fsutil::now_rfc3339(),
            coalesced: Vec::new(),
            ci: None,
            bodies: Vec::new(),
        }
    }

    /// The request of a `deployd deploy` (through the daemon or not): the
    /// project's first branch named without a glob unless `git_ref` names
    /// another ref, the commit given (if any), its repository, and `user` as
    /// the pusher. Refused, with the reason, when there is no such branch
    /// and no `git_ref`.
    pub fn manual(
        seq: u64,
        project: &Project,
        git_ref: Option<String>,
        sha: Option<String>,
        user: String,
    ) -> Result<DeployRequest, String> {
        let git_ref = git_ref.or_else(|| project.default_ref()).ok_or_else(|| {
            format!(
                "{}: every branch it deploys is a glob; say which with --ref",
                project.name
            )
        })?;
        let push = Push {
            git_ref,
            after: sha.unwrap_or_default(),
            repository: project.repository.clone().unwrap_or_default(),
            pusher: user,
            ..Push::default()
        };
        Ok(DeployRequest::new(
            seq,
            &project.name,
            Trigger::Manual,
            push,
        ))
    }

    /// Takes in `old`, an older request this one replaces: its delivery id
    /// and body MACs (and those it had taken in) stay known as accepted, so
    /// their redeliveries are duplicates through a crash. Bounded to the
    /// newest [`MAX_COALESCED`] of each.
    pub fn absorb(&mut self, old: DeployRequest) {
        let mine = std::mem::replace(&mut self.coalesced, old.coalesced);
        if !old.push.delivery.is_empty() {
            self.coalesced.push(old.push.delivery);
        }
        self.coalesced.extend(mine);
        let excess = self.coalesced.len().saturating_sub(MAX_COALESCED);
        self.coalesced.drain(..excess);
        let mine = std::mem::replace(&mut self.bodies, old.bodies);
        self.bodies.extend(mine);
        let excess = self.bodies.len().saturating_sub(MAX_COALESCED);
        self.bodies.drain(..excess);
    }

    /// This request with what the CI gate had to do with it.
    pub fn with_ci(self, ci: Option<CiNote>) -> DeployRequest {
        DeployRequest { ci, ..self }
    }

    /// The request of the status page's deploy button: the project's branch,
    /// as [`DeployRequest::manual`] builds it, with `who` (the token's name) as the
    /// pusher and [`Trigger::Web`].
    pub fn web(seq: u64, project: &Project, who: String) -> Result<DeployRequest, String> {
        Ok(DeployRequest {
            trigger: Trigger::Web,
            ..DeployRequest::manual(seq, project, None, None, who)?
        })
    }

    /// What the remembered deliveries keep of this request: its delivery id,
    /// those it coalesced, and the body MACs of them all.
    pub fn deliveries(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.push.delivery.as_str())
            .chain(self.coalesced.iter().map(String::as_str))
            .chain(self.bodies.iter().map(String::as_str))
    }
}

/// The file that holds the pending request of `project`, for whoever reads
/// or drops it without opening the queue (the CLI, a run with no daemon).
pub(crate) fn pending_path(state_dir: &Path, project: &str) -> PathBuf {
    state_dir.join("queue").join(format!("{project}.json"))
}

/// The pending request of `project` as a previous or running daemon left it
/// on disk, read without opening the queue (for the CLI).
pub fn read_pending(state_dir: &Path, project: &str) -> Option<DeployRequest> {
    let data = fs::read(pending_path(state_dir, project)).ok()?;
    serde_json::from_slice(&data).ok()
}

/// One project's slot.
#[derive(Default)]
struct Slot {
    /// The newest request not yet taken by the executor.
    latest: Option<DeployRequest>,
    /// Bumped by every push; `durable` catches up when a write lands.
    version: u64,
    /// The version last written to disk.
    durable: u64,
    /// A write is in flight (outside the mutex).
    writing: bool,
    /// The newest failed write: pushes up to that version get its error.
    failed: Option<(u64, String)>,
    /// `seq` of the request in the file on disk, if any.
    on_disk: Option<u64>,
    /// The request the executor took (its `seq` and commit), from the take
    /// until its run is recorded ([`Queue::settle`]) or it is put back: in
    /// neither the queue nor the run records meanwhile.
    taken: Option<(u64, String)>,
}

impl Slot {
    /// What became of the push that staged `version`, once known.
    fn outcome(&self, version: u64) -> Option<io::Result<()>> {
        if self.durable >= version {
            return Some(Ok(()));
        }
        match &self.failed {
            Some((v, e)) if *v >= version => Some(Err(io::Error::other(e.clone()))),
            _ => None,
        }
    }
}

/// The queue; shared between the HTTP side (push) and the executor (take).
pub struct Queue {
    dir: PathBuf,
    slots: Mutex<HashMap<String, Slot>>,
    /// Wakes whoever waits on a slot ([`Queue::push`], [`Queue::settle`])
    /// when a write lands or a slot's file is free again: the one way to
    /// wait for the disk.
    durable_changed: tokio::sync::Notify,
    last_seq: Mutex<u64>,
}

impl Queue {
    /// Opens `<state_dir>/queue`, loading the requests a previous daemon left.
    pub fn open(state_dir: &Path) -> io::Result<Queue> {
        let dir = state_dir.join("queue");
        fsutil::create_dir(&dir, fsutil::STATE_DIR_MODE)?;
        let mut slots = HashMap::new();
        let mut last_seq = 0;
        for entry in fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let req: DeployRequest = match fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
            {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!("skipping unreadable queue file {}: {e}", path.display());
                    continue;
                }
            };
            last_seq = last_seq.max(req.seq);
            slots.insert(
                req.project.clone(),
                Slot {
                    on_disk: Some(req.seq),
                    latest: Some(req),
                    version: 1,
                    durable: 1,
                    ..Slot::default()
                },
            );
        }
        Ok(Queue {
            dir,
            slots: Mutex::new(slots),
            durable_changed: tokio::sync::Notify::new(),
            last_seq: Mutex::new(last_seq),
        })
    }

    fn file(&self, project: &str) -> PathBuf {
        self.dir.join(format!("{project}.json"))
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Slot>> {
        // A panic while holding the lock leaves consistent data (every
        // field is set in one step), so a poisoned lock is still usable.
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A fresh, increasing sequence number (nanoseconds since the epoch, or
    /// one more than the last, whichever is larger), so order survives restarts.
    pub fn next_seq(&self) -> u64 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let mut last = self.last_seq.lock().unwrap_or_else(|e| e.into_inner());
        *last = (*last + 1).max(now);
        *last
    }

    /// Makes `req` its project's pending request, replacing an older one, and
    /// returns once it is on disk. The request is staged at once, and the
    /// task waits (without holding a thread) until a write covers it. One
    /// blocking thread per project writes, for every push that arrived while
    /// the previous write was in flight.
    pub async fn push(self: &Arc<Self>, req: DeployRequest) -> io::Result<()> {
        let project = req.project.clone();
        let mine = self.stage(req);
        loop {
            let notified = self.durable_changed.notified();
            let mut notified = std::pin::pin!(notified);
            // Registered before the check, so a write landing in between
            // still wakes this task.
            notified.as_mut().enable();
            let start = {
                let mut slots = self.lock();
                let slot = slots.entry(project.clone()).or_default();
                if let Some(result) = slot.outcome(mine) {
                    return result;
                }
                !std::mem::replace(&mut slot.writing, true)
            };
            if start {
                let (queue, project) = (self.clone(), project.clone());
                // Detached: the writer runs to the end whoever waits.
                drop(tokio::task::spawn_blocking(move || {
                    queue.write_pending(&project)
                }));
            }
            notified.await;
        }
    }

    /// Puts `req` in its project's slot, coalescing the older pending
    /// request into it; returns the version a write must reach.
    fn stage(&self, req: DeployRequest) -> u64 {
        let mut slots = self.lock();
        let slot = slots.entry(req.project.clone()).or_default();
        let mut req = req;
        if let Some(old) = slot.latest.take() {
            req.absorb(old);
        }
        slot.latest = Some(req);
        slot.version += 1;
        slot.version
    }

    /// Writes `project`'s newest request until the file holds the newest
    /// version (group commit: each write covers every push staged before
    /// it), then clears `writing`. The caller set `writing`. Blocking.
    fn write_pending(&self, project: &str) {
        let path = self.file(project);
        let mut slots = self.lock();
        loop {
            let slot = slots.entry(project.to_string()).or_default();
            if slot.durable >= slot.version {
                slot.writing = false;
                break;
            }
            let version = slot.version;
            let snapshot = slot.latest.clone();
            drop(slots);
            let result = match &snapshot {
                Some(r) => serde_json::to_vec_pretty(r)
                    .map_err(io::Error::other)
                    .and_then(|data| fsutil::write_atomic(&path, &data)),
                None => Ok(()),
            };
            slots = self.lock();
            let slot = slots.entry(project.to_string()).or_default();
            match result {
                Ok(()) => {
                    slot.durable = version;
                    if let Some(r) = snapshot {
                        slot.on_disk = Some(r.seq);
                    }
                }
                Err(e) => {
                    // Pushes up to `version` get the error; a later push
                    // starts a new attempt.
                    slot.failed = Some((version, e.to_string()));
                    slot.writing = false;
                    break;
                }
            }
            self.durable_changed.notify_waiters();
        }
        drop(slots);
        self.durable_changed.notify_waiters();
    }

    /// Projects with a durable pending request, oldest request first.
    pub fn ready(&self) -> Vec<String> {
        let slots = self.lock();
        let mut ready: Vec<(u64, String)> = slots
            .iter()
            .filter_map(|(name, s)| match &s.latest {
                Some(r) if !s.writing && s.durable >= s.version => Some((r.seq, name.clone())),
                _ => None,
            })
            .collect();
        ready.sort();
        ready.into_iter().map(|(_, n)| n).collect()
    }

    /// The pending request of `project`, if any (durable or not).
    pub fn pending(&self, project: &str) -> Option<DeployRequest> {
        self.lock().get(project).and_then(|s| s.latest.clone())
    }

    /// Takes `project`'s pending request for a run, if it is durable.
    /// Its file stays until [`Queue::settle`].
    pub fn take(&self, project: &str) -> Option<DeployRequest> {
        let mut slots = self.lock();
        let slot = slots.get_mut(project)?;
        if slot.writing || slot.durable < slot.version {
            return None;
        }
        let req = slot.latest.take()?;
        slot.taken = Some((req.seq, req.push.after.clone()));
        Some(req)
    }

    /// The commit of the request the executor took for `project` and has
    /// not recorded a run of yet.
    pub fn taken(&self, project: &str) -> Option<String> {
        self.lock()
            .get(project)
            .and_then(|s| s.taken.as_ref().map(|(_, sha)| sha.clone()))
    }

    /// Puts a taken request back when its run could not start; a newer
    /// request pushed meanwhile wins.
    pub fn untake(&self, req: DeployRequest) {
        let mut slots = self.lock();
        let slot = slots.entry(req.project.clone()).or_default();
        slot.taken = None;
        if slot.latest.is_none() {
            slot.latest = Some(req);
        }
    }

    /// Removes the file of a request whose run record is now on disk, unless
    /// a newer request replaced it. Waits (without holding a thread) for a
    /// write in flight, and keeps writes out while it removes the file.
    pub async fn settle(self: &Arc<Self>, project: &str, seq: u64) -> io::Result<()> {
        if let Some(slot) = self.lock().get_mut(project)
            && slot.taken.as_ref().is_some_and(|(s, _)| *s == seq)
        {
            slot.taken = None;
        }
        loop {
            let notified = self.durable_changed.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            {
                let mut slots = self.lock();
                let Some(slot) = slots.get_mut(project) else {
                    return Ok(());
                };
                if !slot.writing {
                    if slot.on_disk != Some(seq) {
                        return Ok(());
                    }
                    slot.writing = true;
                    break;
                }
            }
            notified.await;
        }
        let (path, dir) = (self.file(project), self.dir.clone());
        let removed = tokio::task::spawn_blocking(move || {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            fsutil::sync_dir(&dir)
        })
        .await
        .unwrap_or_else(|e| Err(io::Error::other(e)));
        {
            let mut slots = self.lock();
            let slot = slots.entry(project.to_string()).or_default();
            slot.writing = false;
            if removed.is_ok() {
                slot.on_disk = None;
            }
        }
        // Pushes staged meanwhile wake and start their write.
        self.durable_changed.notify_waiters();
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn req(q: &Queue, project: &str, sha: &str) -> DeployRequest {
        let push = Push {
            git_ref: "refs/heads/main".into(),
            after: sha.into(),
            repository: "acme/app".into(),
            pusher: "octocat".into(),
            delivery: format!("d-{sha}"),
            ..Push::default()
        };
        DeployRequest::new(q.next_seq(), project, Trigger::Webhook, push)
    }

    fn tempdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("deployd-queue-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[tokio::test]
    async fn a_taken_request_is_known_until_settled_or_put_back() {
        let dir = tempdir("taken");
        let q = Arc::new(Queue::open(&dir).unwrap());
        q.push(req(&q, "app", "a")).await.unwrap();
        assert_eq!(q.taken("app"), None);
        let a = q.take("app").unwrap();
        assert_eq!(q.taken("app").as_deref(), Some("a"));
        q.untake(a);
        assert_eq!(q.taken("app"), None);
        let a = q.take("app").unwrap();
        // A newer push meanwhile does not make the taken one unknown.
        q.push(req(&q, "app", "b")).await.unwrap();
        assert_eq!(q.taken("app").as_deref(), Some("a"));
        q.settle("app", a.seq).await.unwrap();
        assert_eq!(q.taken("app"), None);
        let _ = fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn coalesces_and_survives_reopen() {
        let dir = tempdir("reopen");
        let q = Arc::new(Queue::open(&dir).unwrap());
        q.push(req(&q, "app", "a")).await.unwrap();
        q.push(req(&q, "app", "b")).await.unwrap();
        q.push(req(&q, "other", "c")).await.unwrap();
        assert_eq!(q.ready(), vec!["app".to_string(), "other".to_string()]);
        drop(q);
        let q = Arc::new(Queue::open(&dir).unwrap());
        assert_eq!(q.pending("app").unwrap().push.after, "b");
        assert_eq!(q.pending("app").unwrap().coalesced, vec!["d-a".to_string()]);
        let taken = q.take("app").unwrap();
        assert!(q.take("app").is_none());
        // A push after the take is a new pending request; settling the taken
        // one must not remove it.
        q.push(req(&q, "app", "d")).await.unwrap();
        q.settle("app", taken.seq).await.unwrap();
        drop(q);
        let q = Arc::new(Queue::open(&dir).unwrap());
        assert_eq!(q.pending("app").unwrap().push.after, "d");
        let d = q.take("app").unwrap();
        q.settle("app", d.seq).await.unwrap();
        drop(q);
        let q = Arc::new(Queue::open(&dir).unwrap());
        assert!(q.pending("app").is_none());
        assert!(q.next_seq() > d.seq);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn concurrent_pushes_keep_the_newest() {
        let dir = tempdir("burst");
        let q = Arc::new(Queue::open(&dir).unwrap());
        let handles: Vec<_> = (0..16)
            .map(|i| {
                let q = q.clone();
                std::thread::spawn(move || {
                    let r = req(&q, "app", &format!("{i}"));
                    // A runtime each: pushes from threads that share nothing.
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .build()
                        .unwrap();
                    rt.block_on(q.push(r.clone())).unwrap();
                    r.seq
                })
            })
            .collect();
        let max = handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .max()
            .unwrap();
        let pending = q.pending("app").unwrap();
        // The last push to take the lock wins; all were acknowledged.
        let on_disk: DeployRequest =
            serde_json::from_slice(&fs::read(dir.join("queue/app.json")).unwrap()).unwrap();
        assert_eq!(on_disk, pending);
        assert!(pending.seq <= max);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn async_pushes_return_once_durable() {
        let dir = tempdir("async");
        let q = Arc::new(Queue::open(&dir).unwrap());
        let tasks: Vec<_> = (0..32)
            .map(|i| {
                let q = q.clone();
                tokio::spawn(async move { q.push(req(&q, "app", &format!("{i}"))).await })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        // Every push answered means the newest is on disk, and only it.
        let pending = q.pending("app").unwrap();
        let on_disk: DeployRequest =
            serde_json::from_slice(&fs::read(dir.join("queue/app.json")).unwrap()).unwrap();
        assert_eq!(on_disk, pending);
        assert_eq!(pending.coalesced.len(), 31);
        assert_eq!(q.ready(), vec!["app".to_string()]);
        // A write that fails answers the pushes it covered with the error.
        fs::remove_dir_all(dir.join("queue")).unwrap();
        assert!(q.push(req(&q, "app", "x")).await.is_err());
        fsutil::create_dir(&dir.join("queue"), 0o700).unwrap();
        q.push(req(&q, "app", "y")).await.unwrap();
        assert_eq!(q.take("app").unwrap().push.after, "y");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn failed_write_is_reported() {
        let dir = tempdir("fail");
        let q = Arc::new(Queue::open(&dir).unwrap());
        fs::remove_dir_all(dir.join("queue")).unwrap();
        assert!(q.push(req(&q, "app", "a")).await.is_err());
        assert!(
            q.take("app").is_none(),
            "a request that is not durable must not run"
        );
        fsutil::create_dir(&dir.join("queue"), 0o700).unwrap();
        q.push(req(&q, "app", "b")).await.unwrap();
        assert_eq!(q.take("app").unwrap().push.after, "b");
        fs::remove_dir_all(&dir).unwrap();
    }

    /// A request keeps the message's first line and the push's flag and
    /// note, and no file list: the queue file says what the run needs,
    /// the same after a restart.
    #[tokio::test]
    async fn requests_keep_the_title_and_drop_file_lists() {
        let dir = tempdir("title");
        let q = Arc::new(Queue::open(&dir).unwrap());
        let push = Push {
            git_ref: "refs/heads/main".into(),
            after: "c".into(),
            forced: true,
            message: "Fix the login page\n\nLonger text [skip deploy] in the body\n".into(),
            files: crate::forge::push::Files::Listed(vec!["api/x.rs".into(), "docs/y.md".into()]),
            note: "paths not checked, deploying anyway: a force push".into(),
            ..Push::default()
        };
        let r = DeployRequest::new(q.next_seq(), "app", Trigger::Webhook, push);
        assert_eq!(r.push.message, "Fix the login page");
        assert_eq!(r.push.files, crate::forge::push::Files::default());
        q.push(r.clone()).await.unwrap();
        let text = fs::read_to_string(dir.join("queue/app.json")).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["forced"], true, "{text}");
        assert_eq!(v["message"], "Fix the login page", "{text}");
        assert_eq!(
            v["note"], "paths not checked, deploying anyway: a force push",
            "{text}"
        );
        assert!(
            !text.contains("api/x.rs") && v.get("files").is_none(),
            "{text}"
        );
        drop(q);
        let q = Queue::open(&dir).unwrap();
        assert_eq!(q.take("app"), Some(r));
        fs::remove_dir_all(&dir).unwrap();
    }

    /// A manual deploy names the project's first branch written without a
    /// glob, or the ref it is given; with only globs and no ref it is
    /// refused with the reason.
    #[test]
    fn manual_requests_need_a_ref_to_deploy() {
        let project = |branches: &str| {
            let text = format!(
                "[projects.app]\nsecret = \"x\"\nscript = \"/bin/sh\"\nbranches = {branches}\n"
            );
            crate::config::parse(&text, Path::new("/x.toml"), &crate::config::SystemSecrets)
                .unwrap()
                .projects
                .remove("app")
                .unwrap()
        };
        let both = project(r#"["release/*", "main"]"#);
        let r = DeployRequest::manual(1, &both, None, Some("abc".into()), "me".into()).unwrap();
        assert_eq!(
            (r.push.git_ref.as_str(), r.push.after.as_str(), r.trigger),
            ("refs/heads/main", "abc", Trigger::Manual)
        );
        let globs = project(r#"["release/*"]"#);
        let e = DeployRequest::manual(2, &globs, None, None, "me".into()).unwrap_err();
        assert!(e.contains("say which with --ref"), "{e}");
        let r = DeployRequest::manual(
            3,
            &globs,
            Some("refs/heads/release/2".into()),
            None,
            "me".into(),
        )
        .unwrap();
        assert_eq!(r.push.git_ref, "refs/heads/release/2");
    }

    /// A queue file as versions before requests held their push wrote it
    /// reads back, and is written again with the same text.
    #[test]
    fn reads_and_rewrites_requests_in_the_earlier_format() {
        let earlier = r#"{
  "seq": 1767323045006000000,
  "project": "app",
  "trigger": "webhook",
  "ref": "refs/heads/main",
  "sha": "0123456789abcdef0123456789abcdef01234567",
  "before": "1111111111111111111111111111111111111111",
  "repository": "acme/app",
  "pusher": "octocat",
  "delivery": "d-7",
  "received_at": "2026-01-02T03:04:05.000Z",
  "coalesced": [
    "d-6"
  ]
}"#;
        let req: DeployRequest = serde_json::from_str(earlier).unwrap();
        assert_eq!(req.push.git_ref, "refs/heads/main");
        assert_eq!(req.push.after, "0123456789abcdef0123456789abcdef01234567");
        assert_eq!(req.push.delivery, "d-7");
        assert!(!req.push.deleted);
        assert_eq!(req.deliveries().collect::<Vec<_>>(), vec!["d-7", "d-6"]);
        assert_eq!(serde_json::to_string_pretty(&req).unwrap(), earlier);
    }

    /// Body MACs ride beside the delivery ids: a coalesced request keeps
    /// those of the one it replaced, they reach the queue file after
    /// `coalesced`, and they are among what the dedupe memory reads back.
    #[tokio::test]
    async fn bodies_coalesce_and_are_remembered_with_the_ids() {
        let dir = tempdir("bodies");
        let q = Arc::new(Queue::open(&dir).unwrap());
        for (sha, mac) in [("a", "=aa"), ("b", "=bb")] {
            let r = DeployRequest {
                bodies: vec![mac.to_string()],
                ..req(&q, "app", sha)
            };
            q.push(r).await.unwrap();
        }
        drop(q);
        let q = Arc::new(Queue::open(&dir).unwrap());
        let pending = q.pending("app").unwrap();
        assert_eq!(pending.bodies, vec!["=aa", "=bb"]);
        assert_eq!(
            pending.deliveries().collect::<Vec<_>>(),
            vec!["d-b", "d-a", "=aa", "=bb"]
        );
        let text = serde_json::to_string_pretty(&pending).unwrap();
        let (coalesced, bodies) = (
            text.find("\"coalesced\"").unwrap(),
            text.find("\"bodies\"").unwrap(),
        );
        assert!(coalesced < bodies, "{text}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
