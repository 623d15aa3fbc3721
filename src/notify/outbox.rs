//! The outbox: durable, at-least-once delivery of notifications and commit
//! statuses (docs/notifications.md).
//!
//! A message — a [`Document`] and the name of the target it is for — is
//! written to `<state_dir>/outbox/<seq>.json` (written, fsynced, renamed, as
//! the queue's requests are) before anything is sent, and removed once the
//! target took it. Each target has its own lane: a task that exists only
//! while the target has messages, sends them in order on the blocking pool,
//! and waits out its retries itself, so a slow or dead target holds up
//! nothing but its own later messages — never a 202, a run, or another
//! target. An empty outbox has no task and no timer.
//!
//! A failed attempt (transport error, 408, 429, 5xx) is tried again after
//! the next of [`DEFAULT_DELAYS`] (6 tries over about 15 minutes), or later
//! when the answer's `Retry-After` says so. A refusal that will not pass by
//! itself (401, 403, 404, other 4xx) is not retried; it is logged once per
//! target with what to check. A message that runs out of tries is moved to
//! `outbox/failed/`, where `deployd status` counts it. At most
//! [`MAX_PENDING`] messages wait; past that the oldest is dropped, with a
//! log line. A notification never changes a run's status.

use std::collections::{BTreeMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::daemon::shutdown::Shutdown;
use crate::forge::{self, StatusReport};
use crate::fsutil;
use crate::http_client::Attempt;
use crate::notify::{self, Document};

/// Waits between tries: 6 tries over about 15 minutes. Tests shorten them
/// with `DEPLOYD_RETRY_DELAYS` (docs/development.md, *Where the tests live*).
pub const DEFAULT_DELAYS: [Duration; 5] = [
    Duration::from_secs(30),
    Duration::from_secs(60),
    Duration::from_secs(120),
    Duration::from_secs(240),
    Duration::from_secs(480),
];

/// The most messages waiting at once; past that the oldest is dropped.
pub const MAX_PENDING: usize = 1000;

/// The most given-up messages kept in `outbox/failed/`.
pub const MAX_FAILED: usize = 100;

/// The longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// One message on its way.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Message {
    /// Order of arrival (nanoseconds since the epoch, made unique).
    pub seq: u64,
    /// `notify.NAME` or `report.PROJECT`.
    pub target: String,
    /// What happened.
    pub doc: Document,
    /// Tries so far.
    pub attempts: u32,
    /// Not to be tried before this (ms since the epoch).
    pub not_before_ms: u64,
    /// What the last try said (never a secret).
    pub last_error: Option<String>,
    /// When it was written.
    pub queued_at: String,
}

/// The outbox of one `state_dir`.
pub struct Outbox {
    dir: PathBuf,
    /// The config messages are sent with, unless `live` is set.
    config: Mutex<Arc<Config>>,
    /// The daemon's config in force (reloads included).
    live: std::sync::OnceLock<Box<dyn Fn() -> Arc<Config> + Send + Sync>>,
    inner: Mutex<Inner>,
    delays: Vec<Duration>,
    /// [`MAX_PENDING`], but in tests.
    limit: usize,
    /// The daemon's shutdown, a clone for each lane it starts, so the
    /// daemon waits for a send in progress and lanes end at the shutdown
    /// instead of waiting out a retry. Taken away when [`follow`] ends,
    /// so it does not keep the daemon waiting itself. None outside the
    /// daemon.
    shutdown: Mutex<Option<Shutdown>>,
}

#[derive(Default)]
struct Inner {
    pending: BTreeMap<u64, Message>,
    /// Targets whose lane task is running.
    lanes: HashSet<String>,
    last_seq: u64,
    /// Targets whose refusal was logged (logged once each).
    warned: HashSet<String>,
}

/// The directory of the outbox of `state_dir`.
pub fn dir(state_dir: &Path) -> PathBuf {
    state_dir.join("outbox")
}

/// The retry delays in force: `DEPLOYD_RETRY_DELAYS` (comma-separated
/// durations) or [`DEFAULT_DELAYS`].
fn delays() -> Vec<Duration> {
    std::env::var("DEPLOYD_RETRY_DELAYS")
        .ok()
        .and_then(|v| {
            v.split(',')
                .map(|d| humantime::parse_duration(d.trim()).ok())
                .collect::<Option<Vec<_>>>()
        })
        .unwrap_or_else(|| DEFAULT_DELAYS.to_vec())
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Nothing is left half-changed under these locks by a panic.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Outbox {
    /// Opens (creating) the outbox of `config`'s `state_dir` and reads the
    /// messages a previous process left. Blocking.
    pub fn open(config: Arc<Config>) -> io::Result<Outbox> {
        let dir = dir(&config.server.state_dir);
        fsutil::create_dir(&dir, fsutil::STATE_DIR_MODE)?;
        let mut inner = Inner::default();
        for (seq, path) in files(&dir) {
            match std::fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice::<Message>(&b).ok())
            {
                Some(mut m) => {
                    // Tried at once after a restart: the target may well be
                    // back, and the wait was for the previous process.
                    m.not_before_ms = 0;
                    inner.last_seq = inner.last_seq.max(seq);
                    inner.pending.insert(seq, m);
                }
                None => {
                    tracing::warn!("outbox: {} does not read; removed", path.display());
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        Ok(Outbox {
            dir,
            config: Mutex::new(config),
            live: std::sync::OnceLock::new(),
            inner: Mutex::new(inner),
            delays: delays(),
            limit: MAX_PENDING,
            shutdown: Mutex::new(None),
        })
    }

    /// Sends with whatever config `current` gives at the time (the
    /// daemon's config in force, reloads included) instead of the one the
    /// outbox was opened with.
    pub fn follow_config(&self, current: impl Fn() -> Arc<Config> + Send + Sync + 'static) {
        let _ = self.live.set(Box::new(current));
    }

    fn config(&self) -> Arc<Config> {
        match self.live.get() {
            Some(current) => current(),
            None => lock(&self.config).clone(),
        }
    }

    /// Number of messages waiting.
    pub fn len(&self) -> usize {
        lock(&self.inner).pending.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes a message for each target that wants `doc` (its notification
    /// targets and its project's report), durably. Blocking. Returns their
    /// sequence numbers.
    pub fn add(&self, doc: &Document) -> io::Result<Vec<u64>> {
        let config = self.config();
        let mut seqs = Vec::new();
        for target in targets_for(&config, doc) {
            seqs.push(self.add_for(&target, doc)?);
        }
        Ok(seqs)
    }

    /// Writes one message for `target`, durably. Blocking.
    pub fn add_for(&self, target: &str, doc: &Document) -> io::Result<u64> {
        let seq = {
            let mut inner = lock(&self.inner);
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0);
            inner.last_seq = (inner.last_seq + 1).max(now);
            inner.last_seq
        };
        let msg = Message {
            seq,
            target: target.to_string(),
            doc: doc.clone(),
            attempts: 0,
            not_before_ms: 0,
            last_error: None,
            queued_at: fsutil::now_rfc3339(),
        };
        self.save(&msg)?;
        let dropped = {
            let mut inner = lock(&self.inner);
            inner.pending.insert(seq, msg);
            let mut dropped = Vec::new();
            while inner.pending.len() > self.limit {
                if let Some((_, old)) = inner.pending.pop_first() {
                    dropped.push(old);
                }
            }
            dropped
        };
        for old in dropped {
            tracing::warn!(
                "outbox: more than {} messages waiting; dropped the oldest \
                 ({} for {} run {}, queued {})",
                self.limit,
                old.target,
                old.doc.project,
                old.doc.run_id,
                old.queued_at
            );
            let _ = std::fs::remove_file(self.path(old.seq));
        }
        Ok(seq)
    }

    fn path(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq:020}.json"))
    }

    fn save(&self, msg: &Message) -> io::Result<()> {
        let data = serde_json::to_vec_pretty(msg).map_err(io::Error::other)?;
        fsutil::write_atomic(&self.path(msg.seq), &data)
    }

    /// Records the event `doc` and starts sending it in the background.
    pub async fn record(self: &Arc<Self>, doc: Document) {
        let me = self.clone();
        let added = tokio::task::spawn_blocking(move || me.add(&doc)).await;
        match added {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!("outbox: cannot record a notification: {e}"),
            Err(e) => tracing::error!("outbox: {e}"),
        }
        self.start_lanes();
    }

    /// Lanes started from now on hold `shutdown` and end at it (the
    /// daemon's; see [`Outbox::shutdown`]).
    pub(crate) fn hold_lanes(&self, shutdown: Shutdown) {
        *lock(&self.shutdown) = Some(shutdown);
    }

    /// Starts a lane for every target that has messages and no lane.
    pub fn start_lanes(self: &Arc<Self>) {
        let shutdown = lock(&self.shutdown).clone();
        let mut inner = lock(&self.inner);
        let targets: Vec<String> = inner
            .pending
            .values()
            .map(|m| m.target.clone())
            .collect::<HashSet<_>>()
            .into_iter()
            .filter(|t| !inner.lanes.contains(t))
            .collect();
        for t in targets {
            inner.lanes.insert(t.clone());
            tokio::spawn(self.clone().lane(t, shutdown.clone()));
        }
    }

    /// Sends `target`'s messages in order until none is left. Once
    /// `shutdown` began, it sends those due but waits out no retry: a
    /// message not yet due stays on disk for the next start.
    async fn lane(self: Arc<Self>, target: String, mut shutdown: Option<Shutdown>) {
        let stopping = |s: &Option<Shutdown>| s.as_ref().is_some_and(Shutdown::is_shutdown);
        loop {
            let next = {
                let mut inner = lock(&self.inner);
                let next = inner.pending.values().find(|m| m.target == target).cloned();
                let later = |m: &Message| m.not_before_ms > now_ms() && stopping(&shutdown);
                if next.as_ref().is_none_or(later) {
                    inner.lanes.remove(&target);
                    return;
                }
                next
            };
            let Some(msg) = next else {
                return;
            };
            let wait = msg.not_before_ms.saturating_sub(now_ms());
            if wait > 0 {
                let stopped = async {
                    match &mut shutdown {
                        Some(s) => s.recv().await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(wait)) => {}
                    // The loop's head removes the lane.
                    () = stopped => continue,
                }
            }
            let me = self.clone();
            let m = msg.clone();
            let attempt = tokio::task::spawn_blocking(move || me.attempt(&m))
                .await
                .unwrap_or_else(|e| Attempt::Retry {
                    error: format!("sending failed: {e}"),
                    after: None,
                });
            let me = self.clone();
            let _ = tokio::task::spawn_blocking(move || me.settle(msg, attempt)).await;
        }
    }

    /// Tries `msg` once, with the config in force. Blocking.
    fn attempt(&self, msg: &Message) -> Attempt {
        let config = self.config();
        attempt(&config, msg, &self.dir)
    }

    /// Acts on what an attempt gave: removes, reschedules or gives up.
    /// Blocking. Returns the attempt's outcome in words.
    fn settle(&self, mut msg: Message, attempt: Attempt) {
        let what = format!(
            "{} ({} of {} run {})",
            msg.target, msg.doc.event, msg.doc.project, msg.doc.run_id
        );
        msg.attempts += 1;
        match attempt {
            Attempt::Delivered(_) => {
                if msg.attempts > 1 {
                    tracing::info!("{what}: delivered at try {}", msg.attempts);
                } else {
                    tracing::debug!("{what}: delivered");
                }
                {
                    let mut inner = lock(&self.inner);
                    inner.pending.remove(&msg.seq);
                    // Working again (a fixed token, say): a new refusal is
                    // news worth a line.
                    inner.warned.remove(&msg.target);
                }
                let _ = std::fs::remove_file(self.path(msg.seq));
            }
            Attempt::Retry { error, after } if (msg.attempts as usize) <= self.delays.len() => {
                let delay = self.delays[msg.attempts as usize - 1]
                    .max(after.unwrap_or_default().min(MAX_RETRY_AFTER));
                msg.not_before_ms = now_ms() + delay.as_millis() as u64;
                msg.last_error = Some(error.clone());
                if let Err(e) = self.save(&msg) {
                    tracing::warn!("outbox: cannot update {what}: {e}");
                }
                if msg.attempts == 1 {
                    tracing::warn!(
                        "{what}: not delivered ({error}); trying again in {} (up to {} tries)",
                        humantime::format_duration(delay),
                        self.delays.len() + 1
                    );
                } else {
                    tracing::debug!("{what}: try {} failed: {error}", msg.attempts);
                }
                lock(&self.inner).pending.insert(msg.seq, msg);
            }
            Attempt::Retry { error, .. } => {
                tracing::error!(
                    "{what}: not delivered after {} tries, giving up: {error}",
                    msg.attempts
                );
                msg.last_error = Some(error);
                self.give_up(msg);
            }
            Attempt::Refused { error, hint } => {
                let first = lock(&self.inner).warned.insert(msg.target.clone());
                if first {
                    tracing::error!("{what}: refused ({error}), not retried: {hint}");
                } else {
                    tracing::debug!("{what}: refused ({error})");
                }
                msg.last_error = Some(format!("{error} ({hint})"));
                self.give_up(msg);
            }
        }
    }

    /// Moves `msg` to `failed/`, keeping the newest [`MAX_FAILED`].
    fn give_up(&self, msg: Message) {
        lock(&self.inner).pending.remove(&msg.seq);
        let failed = self.dir.join("failed");
        let _ = fsutil::create_dir(&failed, fsutil::STATE_DIR_MODE);
        if let Ok(data) = serde_json::to_vec_pretty(&msg) {
            let _ = fsutil::write_atomic(&failed.join(format!("{:020}.json", msg.seq)), &data);
        }
        let _ = std::fs::remove_file(self.path(msg.seq));
        let old = files(&failed);
        for (_, p) in old.iter().take(old.len().saturating_sub(MAX_FAILED)) {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// The message files of `dir`, oldest first.
fn files(dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut v: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| {
                    let name = e.file_name();
                    let seq = name.to_str()?.strip_suffix(".json")?.parse().ok()?;
                    Some((seq, e.path()))
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The targets that get `doc`: notification targets whose `on` and
/// `projects` want it, and the project's report when it has one.
pub fn targets_for(config: &Config, doc: &Document) -> Vec<String> {
    let mut targets: Vec<String> = config
        .notify
        .values()
        .filter(|t| t.wants(&doc.event, &doc.project))
        .map(|t| format!("notify.{}", t.name))
        .collect();
    if doc.event != "test"
        && config
            .projects
            .get(&doc.project)
            .is_some_and(|p| p.report.is_some())
    {
        targets.push(format!("report.{}", doc.project));
    }
    targets
}

/// Sends `msg` once with `config` (blocking). `store` keeps what a forge
/// needs between calls.
pub fn attempt(config: &Config, msg: &Message, store: &Path) -> Attempt {
    let gone = |what: &str| Attempt::Refused {
        error: format!("{what} is no longer in the config"),
        hint: "the message was for a target that was removed".into(),
    };
    if let Some(name) = msg.target.strip_prefix("notify.") {
        let Some(target) = config.notify.get(name) else {
            return gone(&format!("[notify.{name}]"));
        };
        return notify::send(target, &msg.doc);
    }
    if let Some(name) = msg.target.strip_prefix("report.") {
        let Some((project, report)) = config
            .projects
            .get(name)
            .and_then(|p| p.report.as_ref().map(|r| (p, r)))
        else {
            return gone(&format!("[projects.{name}.report]"));
        };
        let status = status_report(project, report, &msg.doc);
        return forge::report(
            project.provider,
            &report.api_url,
            &report.token.0,
            &status,
            store,
        );
    }
    gone(&msg.target)
}

/// The commit status a document stands for.
pub fn status_report(
    project: &crate::config::Project,
    report: &crate::config::Report,
    doc: &Document,
) -> StatusReport {
    let mut shas = Vec::new();
    if !doc.sha.is_empty() && !crate::forge::push::zeros(&doc.sha) {
        shas.push(doc.sha.clone());
    }
    if let Some(deployed) = doc.outputs.get("sha")
        && !shas.contains(deployed)
    {
        shas.push(deployed.clone());
    }
    let mut description = doc.title();
    if let Some(s) = doc.outputs.get("summary") {
        description = format!("{description}: {s}");
    }
    StatusReport {
        project: project.name.clone(),
        run_id: doc.run_id,
        repository: if doc.repository.is_empty() {
            project.repository.clone().unwrap_or_default()
        } else {
            doc.repository.clone()
        },
        shas,
        state: doc.event().forge,
        description: crate::text::truncate(&description, 140).to_string(),
        target_url: doc.outputs.get("url").cloned(),
        context: report.context.clone(),
        environment: report.environment.clone(),
    }
}

/// What waits and what was given up, per target, read from disk (for
/// `deployd status`, with or without a daemon).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct TargetState {
    /// Messages waiting to be sent.
    pub pending: usize,
    /// Messages given up on (kept in `outbox/failed/`).
    pub failed: usize,
    /// What the last failed try said.
    pub last_error: Option<String>,
}

/// Per target, what is undelivered in the outbox of `state_dir`.
pub fn undelivered(state_dir: &Path) -> BTreeMap<String, TargetState> {
    let mut out: BTreeMap<String, TargetState> = BTreeMap::new();
    for targets in undelivered_by_project(state_dir).into_values() {
        for (target, t) in targets {
            let e = out.entry(target).or_default();
            e.pending += t.pending;
            e.failed += t.failed;
            if t.last_error.is_some() {
                e.last_error = t.last_error;
            }
        }
    }
    out
}

/// Per project, then per target, what is undelivered in the outbox of
/// `state_dir` (for `deployd status --json`).
pub fn undelivered_by_project(state_dir: &Path) -> BTreeMap<String, BTreeMap<String, TargetState>> {
    let dir = dir(state_dir);
    let mut out: BTreeMap<String, BTreeMap<String, TargetState>> = BTreeMap::new();
    for (failed, d) in [(false, dir.clone()), (true, dir.join("failed"))] {
        for (_, p) in files(&d) {
            let Some(m) = std::fs::read(&p)
                .ok()
                .and_then(|b| serde_json::from_slice::<Message>(&b).ok())
            else {
                continue;
            };
            let e = out
                .entry(m.doc.project)
                .or_default()
                .entry(m.target)
                .or_default();
            if failed {
                e.failed += 1;
            } else {
                e.pending += 1;
            }
            if m.last_error.is_some() {
                e.last_error = m.last_error;
            }
        }
    }
    out
}

/// Turns the run events into outbox messages until `shutdown` begins
/// (the daemon begins it once every run ended), then records the events
/// still received and stops starting lanes. Waits on the channel alone: no
/// timer.
pub(crate) async fn follow(
    mut events: crate::run::events::Events,
    outbox: Arc<Outbox>,
    history: Arc<crate::store::history::History>,
    mut shutdown: Shutdown,
) {
    use crate::run::events::RunEvent;
    use tokio::sync::broadcast::error::{RecvError, TryRecvError};
    let mut draining = false;
    loop {
        let received = if draining {
            events.try_recv().map_err(|e| match e {
                TryRecvError::Lagged(n) => RecvError::Lagged(n),
                // Nothing left: every run's last event is recorded.
                TryRecvError::Empty | TryRecvError::Closed => RecvError::Closed,
            })
        } else {
            tokio::select! {
                r = events.recv() => r,
                () = shutdown.recv() => {
                    draining = true;
                    continue;
                }
            }
        };
        let run = match received.as_deref() {
            Ok(RunEvent::Started(run) | RunEvent::Finished(run)) => run.clone(),
            Ok(RunEvent::Queued(_) | RunEvent::Dropped(_)) => continue,
            Err(RecvError::Lagged(n)) => {
                tracing::error!("outbox: {n} run event(s) missed; their notifications are lost");
                continue;
            }
            Err(RecvError::Closed) => break,
        };
        let h = history.clone();
        let doc = tokio::task::spawn_blocking(move || notify::document_for(&run, &h))
            .await
            .ok()
            .flatten();
        if let Some(doc) = doc {
            outbox.record(doc).await;
        }
    }
    lock(&outbox.shutdown).take();
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Plain;
    impl crate::config::Secrets for Plain {
        fn file(&self, _: &Path) -> io::Result<String> {
            Ok("x".into())
        }
        fn env(&self, _: &str) -> Option<String> {
            None
        }
        fn check_run_paths(&self) -> bool {
            false
        }
    }

    fn setup(name: &str) -> (PathBuf, Arc<Config>) {
        let dir =
            std::env::temp_dir().join(format!("deployd-outbox-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let text = format!(
            "[server]\nstate_dir = \"{}\"\n\
             [projects.app]\nsecret = \"s\"\nscript = \"/bin/true\"\n\
             [projects.app.report]\ntoken = \"t\"\n\
             [projects.web]\nsecret = \"s\"\nscript = \"/bin/true\"\n\
             [notify.quiet]\nkind = \"slack\"\nurl = \"https://h/x\"\n\
             [notify.web]\nkind = \"ntfy\"\nurl = \"https://h/y\"\n\
             on = [\"succeeded\"]\nprojects = [\"web\"]\n",
            dir.display()
        );
        let config = crate::config::parse(&text, &dir.join("deploy.toml"), &Plain).unwrap();
        (dir, Arc::new(config))
    }

    fn doc(project: &str, event: &str) -> Document {
        let mut d = Document::test(project);
        d.event = event.into();
        d
    }

    #[test]
    fn targets_follow_on_and_projects() {
        let (dir, config) = setup("targets");
        let t = |p, e| targets_for(&config, &doc(p, e));
        assert_eq!(t("app", "failed"), ["notify.quiet", "report.app"]);
        assert_eq!(t("app", "started"), ["report.app"]);
        assert_eq!(t("app", "succeeded"), ["report.app"]);
        assert_eq!(t("web", "succeeded"), ["notify.web"]);
        // A recovery is a success too.
        assert_eq!(t("web", "recovered"), ["notify.quiet", "notify.web"]);
        assert!(t("web", "started").is_empty());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn messages_outlive_the_process_and_the_oldest_go_first() {
        let (dir, config) = setup("bound");
        let mut outbox = Outbox::open(config.clone()).unwrap();
        outbox.limit = 3;
        let mut seqs = Vec::new();
        for run in 1..=5 {
            let mut d = doc("app", "failed");
            d.run_id = run;
            seqs.push(outbox.add_for("notify.quiet", &d).unwrap());
        }
        assert!(seqs.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(outbox.len(), 3);
        drop(outbox);
        let again = Outbox::open(config).unwrap();
        let runs: Vec<u64> = lock(&again.inner)
            .pending
            .values()
            .map(|m| m.doc.run_id)
            .collect();
        assert_eq!(runs, [3, 4, 5]);
        assert_eq!(undelivered(&dir)["notify.quiet"].pending, 3);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
