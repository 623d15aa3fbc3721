//! Run events: what happened to a run (queued, started, finished with its
//! outcome), published by the run lifecycle ([`crate::run::lifecycle`]) and
//! nowhere else, for whatever reacts to runs.
//!
//! Two ways an event travels, one [`Publisher`] for both:
//!
//! - In the daemon, a [`Bus`]: an in-process broadcast. A part that reacts
//!   to runs (the control socket's `deploy` stream today; notifications,
//!   forge status reports, a status page or metrics next) calls
//!   [`Bus::subscribe`] once, before `serve` replays the spool, and sees every
//!   run: the daemon's and, through the spool, direct ones.
//! - In a direct `deployd deploy` (no daemon answers), a [`Spool`]: each
//!   event is written durably to `<state_dir>/events/` as one JSON file. The
//!   next daemon publishes them on its bus when it starts
//!   ([`Bus::replay`]), oldest first, and deletes each once its durable
//!   consumer (the outbox) recorded it.
//!
//! The bus is best effort: a subscriber that falls more than
//! [`Bus::CAPACITY`] events behind loses the oldest (it gets
//! `RecvError::Lagged`). A consumer that must not lose one (a notification
//! outbox) writes what it owes to disk when it receives the event.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::fsutil;
use crate::store::history::Run;
use crate::store::queue::DeployRequest;

/// Something that happened to a run. Its JSON is that of the spool files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RunEvent {
    /// A request is on disk, waiting for its run (a direct deploy's request
    /// is queued and started at once). The rollback queued after an
    /// unhealthy run (`on_unhealthy = "rollback"`) is announced here, with
    /// trigger `rollback`, right after that run's `Finished`.
    Queued(DeployRequest),
    /// A run started: its record (status `running`) is on disk, the script
    /// is about to be spawned.
    Started(Run),
    /// A run ended: its final record (status, exit code, signal, end time)
    /// is on disk.
    Finished(Run),
    /// A request was cancelled before its run started (`deployd cancel
    /// --pending`, or a cancel while it waited for the lock): it never runs,
    /// and it has no run record; this event is its record.
    Dropped(DeployRequest),
}

/// What a subscriber to the run events receives.
pub(crate) type Events = broadcast::Receiver<Arc<RunEvent>>;

/// The daemon's in-process broadcast of run events. Each event is shared
/// (`Arc`): the channel keeps [`Bus::CAPACITY`] slots allocated from the
/// start, and a slot holding a whole run record (600 bytes) made them
/// 150 KB of an idle daemon's memory; a receiver clones a pointer, not
/// the record.
#[derive(Clone)]
pub(crate) struct Bus {
    tx: broadcast::Sender<Arc<RunEvent>>,
}

impl Bus {
    /// How many events a subscriber may fall behind before it loses some.
    pub(crate) const CAPACITY: usize = 256;

    /// A bus nobody listens to yet.
    pub(crate) fn new() -> Bus {
        Bus {
            tx: broadcast::channel(Self::CAPACITY).0,
        }
    }

    /// Events published from now on.
    pub(crate) fn subscribe(&self) -> Events {
        self.tx.subscribe()
    }

    /// Sends `event` to every subscriber (none is fine).
    pub(crate) fn send(&self, event: RunEvent) {
        let _ = self.tx.send(Arc::new(event));
    }

    /// Publishes the events direct runs spooled under `state_dir` while no
    /// daemon ran, oldest first. Each goes first to `record`, the consumer
    /// that must not lose one (the outbox writes what the event owes), then
    /// on the bus, and its file is deleted only then: a daemon killed
    /// before `record` returned publishes it again at its next start, and
    /// a bus subscriber that lags loses nothing `record` needed. When
    /// `record` fails the event and those after it stay spooled. Blocking.
    pub(crate) fn replay(
        &self,
        state_dir: &Path,
        mut record: impl FnMut(&RunEvent) -> io::Result<()>,
    ) -> io::Result<usize> {
        let spool = Spool::new(state_dir);
        let mut sent = 0;
        for (path, event) in spool.read()? {
            if let Err(e) = record(&event) {
                if sent > 0 {
                    fsutil::sync_dir(&spool.dir)?;
                }
                return Err(e);
            }
            self.send(event);
            fs::remove_file(&path)?;
            sent += 1;
        }
        if sent > 0 {
            fsutil::sync_dir(&spool.dir)?;
        }
        Ok(sent)
    }
}

/// Where a direct run's events wait for the next daemon:
/// `<state_dir>/events/<nanoseconds>-<pid>-<n>.json`, names that sort in
/// the order the events happened.
pub(crate) struct Spool {
    dir: PathBuf,
    count: AtomicU64,
    /// How many events wait at most ([`Spool::MAX`]; fewer in tests).
    max: usize,
}

impl Spool {
    /// How many events wait at most: the newest are kept.
    pub(crate) const MAX: usize = 3000;

    /// The spool under `state_dir` (created on the first write).
    pub(crate) fn new(state_dir: &Path) -> Spool {
        Spool {
            dir: state_dir.join("events"),
            count: AtomicU64::new(0),
            max: Self::MAX,
        }
    }

    /// Writes `event` durably, dropping the oldest events beyond
    /// [`Spool::MAX`] (deployd used without a daemon for long). Blocking.
    pub(crate) fn write(&self, event: &RunEvent) -> io::Result<()> {
        fsutil::create_dir(&self.dir, fsutil::STATE_DIR_MODE)?;
        let spooled = self.paths()?;
        for old in spooled
            .iter()
            .take((spooled.len() + 1).saturating_sub(self.max))
        {
            fs::remove_file(old)?;
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let n = self.count.fetch_add(1, Ordering::Relaxed);
        let name = format!("{nanos:020}-{}-{n:06}.json", std::process::id());
        let data = serde_json::to_vec_pretty(event).map_err(io::Error::other)?;
        fsutil::write_atomic(&self.dir.join(name), &data)
    }

    /// The spooled files, oldest first.
    fn paths(&self) -> io::Result<Vec<PathBuf>> {
        let mut paths: Vec<PathBuf> = match fs::read_dir(&self.dir) {
            Ok(entries) => entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "json"))
                .collect(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        paths.sort();
        Ok(paths)
    }

    /// The spooled events, oldest first, with their files. A file that does
    /// not read is logged and left alone.
    fn read(&self) -> io::Result<Vec<(PathBuf, RunEvent)>> {
        let mut events = Vec::new();
        for path in self.paths()? {
            match fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
            {
                Ok(event) => events.push((path, event)),
                Err(e) => tracing::warn!("skipping unreadable event {}: {e}", path.display()),
            }
        }
        Ok(events)
    }
}

/// Where the lifecycle sends a run's events: the daemon's bus, or a direct
/// run's spool.
pub(crate) enum Publisher {
    /// In the daemon.
    Bus(Bus),
    /// In a direct `deployd deploy`.
    Spool(Arc<Spool>),
}

impl Publisher {
    /// Whether an event published now reaches anyone: a bus subscriber, or
    /// the spool (always).
    pub(crate) fn listened(&self) -> bool {
        match self {
            Publisher::Bus(bus) => bus.tx.receiver_count() > 0,
            Publisher::Spool(_) => true,
        }
    }

    /// Publishes `event`. A spool that cannot be written is logged: the run
    /// itself goes on, its record holds the same facts.
    pub(crate) async fn publish(&self, event: RunEvent) {
        match self {
            Publisher::Bus(bus) => bus.send(event),
            Publisher::Spool(spool) => {
                let s = spool.clone();
                let written = tokio::task::spawn_blocking(move || s.write(&event))
                    .await
                    .map_err(io::Error::other)
                    .and_then(|r| r);
                if let Err(e) = written {
                    tracing::warn!("cannot spool a run event in {}: {e}", spool.dir.display());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forge::push::Push;
    use crate::store::queue::Trigger;

    fn req(seq: u64) -> DeployRequest {
        let push = Push {
            git_ref: "refs/heads/main".into(),
            ..Push::default()
        };
        DeployRequest {
            received_at: "2026-01-02T03:04:05.000Z".into(),
            ..DeployRequest::new(seq, "app", Trigger::Manual, push)
        }
    }

    #[tokio::test]
    async fn spooled_events_reach_the_bus_in_order_once() {
        let dir = std::env::temp_dir().join(format!("deployd-events-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let spool = Publisher::Spool(Arc::new(Spool::new(&dir)));
        assert!(spool.listened());
        for seq in 1..=12 {
            spool.publish(RunEvent::Queued(req(seq))).await;
        }
        let bus = Bus::new();
        let publisher = Publisher::Bus(bus.clone());
        assert!(!publisher.listened(), "nobody subscribed yet");
        let mut rx = bus.subscribe();
        assert!(publisher.listened());
        assert_eq!(bus.replay(&dir, |_| Ok(())).unwrap(), 12);
        for seq in 1..=12 {
            assert_eq!(*rx.try_recv().unwrap(), RunEvent::Queued(req(seq)));
        }
        assert!(rx.try_recv().is_err());
        // Published once: the files are gone.
        assert_eq!(bus.replay(&dir, |_| Ok(())).unwrap(), 0);
        assert_eq!(fs::read_dir(dir.join("events")).unwrap().count(), 0);
        fs::remove_dir_all(&dir).unwrap();
    }

    /// An event its consumer could not record stays spooled, with those
    /// after it, and is neither published nor deleted.
    #[tokio::test]
    async fn an_event_not_recorded_stays_spooled() {
        let dir = std::env::temp_dir().join(format!("deployd-unrecorded-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let spool = Publisher::Spool(Arc::new(Spool::new(&dir)));
        for seq in 1..=3 {
            spool.publish(RunEvent::Queued(req(seq))).await;
        }
        let bus = Bus::new();
        let mut rx = bus.subscribe();
        let mut seen = 0;
        let failed = bus.replay(&dir, |_| {
            seen += 1;
            if seen == 2 {
                Err(io::Error::other("disk full"))
            } else {
                Ok(())
            }
        });
        assert!(failed.is_err());
        assert_eq!(*rx.try_recv().unwrap(), RunEvent::Queued(req(1)));
        assert!(rx.try_recv().is_err(), "an unrecorded event was published");
        // The next start publishes the other two.
        assert_eq!(bus.replay(&dir, |_| Ok(())).unwrap(), 2);
        assert_eq!(*rx.try_recv().unwrap(), RunEvent::Queued(req(2)));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_spool_keeps_the_newest() {
        let dir = std::env::temp_dir().join(format!("deployd-spool-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let spool = Spool {
            max: 3,
            ..Spool::new(&dir)
        };
        for seq in 1..=5 {
            spool.write(&RunEvent::Queued(req(seq))).unwrap();
        }
        let kept: Vec<u64> = spool
            .read()
            .unwrap()
            .into_iter()
            .map(|(_, e)| match e {
                RunEvent::Queued(r) => r.seq,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(kept, vec![3, 4, 5]);
        fs::remove_dir_all(&dir).unwrap();
    }
}
