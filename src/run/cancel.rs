//! Cancelling with no daemon (docs/commands.md, the `deployd cancel`
//! section). A run going on then is a `deployd deploy`'s
//! ([`super::direct`]): `deployd cancel` writes a marker file naming the
//! run, the deploy that runs it watches for that file and stops its own
//! script, and the cancel waits for the record to say so. The script is
//! never signalled by the cancel: the process that started it knows its
//! group for sure, a pid read from a record may be stale. A pending request
//! is dropped from the queue's file.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use tokio::sync::watch;

use crate::config::{Project, Server};
use crate::fsutil;
use crate::run::executor::Cancelled;
use crate::run::lock::{self, RunLock};
use crate::run::{direct, runner};
use crate::store::history::{History, Status};
use crate::store::queue::{self, Trigger};
use crate::store::snapshot::Going;

/// How often the marker, and the record of a run asked to stop, are read.
const POLL: Duration = Duration::from_millis(100);

/// Where a direct run looks for a cancel: a file naming its run id.
fn marker(state_dir: &Path, project: &str) -> PathBuf {
    lock::path(state_dir, project).with_extension("cancel")
}

/// Forgets the marker of `project`: a marker left by a cancel of an
/// earlier run does not count for the next one.
pub(crate) fn clear(state_dir: &Path, project: &str) {
    let _ = std::fs::remove_file(marker(state_dir, project));
}

/// Turns `cancel` true once a marker names run `id` of `project`, until
/// `done` turns true. Spawned on the runtime; returns at once.
pub(crate) fn watch_for(
    state_dir: &Path,
    project: &str,
    id: u64,
    cancel: watch::Sender<bool>,
    done: watch::Receiver<bool>,
) {
    let (marker, id) = (marker(state_dir, project), id.to_string());
    tokio::spawn(async move {
        while !*done.borrow() {
            let asked = tokio::fs::read_to_string(&marker).await;
            if asked.is_ok_and(|a| a.trim() == id) {
                let _ = cancel.send(true);
                return;
            }
            tokio::time::sleep(POLL).await;
        }
    });
}

/// `deployd cancel` of `p` with no daemon, asked by `user`: drops its
/// pending request (`pending`), or asks the `deployd deploy` that runs it to
/// stop and waits for the run's record. Returns what was cancelled.
/// Blocking.
pub(crate) fn without_daemon(
    s: &Server,
    p: &Project,
    pending: bool,
    user: &str,
) -> anyhow::Result<Cancelled> {
    let name = p.name.as_str();
    if pending {
        return drop_pending(s, name);
    }
    let h = History::new(&s.state_dir, &s.log_dir);
    let runs = h.list(name, Some(3))?;
    let lock_path = lock::path(&s.state_dir, name);
    let going = Going::of(&runs, RunLock::is_held(&lock_path));
    let Some(run) = runs
        .into_iter()
        .find(|r| r.status == Status::Running && !going.cut_off(r))
    else {
        return Err(anyhow!("{name}: nothing to cancel: no run is going on"));
    };
    let by_hand = format!(
        "processes of the run still hold its lock: stop them by hand \
         (`fuser -v {}` lists them)",
        lock_path.display()
    );
    // Only a daemon starts these: no `deployd deploy` is there to ask.
    if matches!(
        run.request.trigger,
        Trigger::Webhook | Trigger::Recovery | Trigger::Web | Trigger::Catchup
    ) {
        return Err(anyhow!(
            "{name}: run {} ({}) was started by a daemon that is gone, and {by_hand}; \
             a daemon started now waits for them to exit, then runs it again",
            run.id,
            run.request.trigger
        ));
    }
    let marker = marker(&s.state_dir, name);
    fsutil::write_atomic(&marker, run.id.to_string().as_bytes())?;
    runner::note(&run, &format!("cancelled by {user}"));
    let deadline = Instant::now() + p.kill_grace + Duration::from_secs(10);
    loop {
        match h.get(name, run.id)? {
            Some(r) if r.status != Status::Running => return Ok(Cancelled::Run(Box::new(r))),
            _ if Instant::now() > deadline || !RunLock::is_held(&lock_path) => {
                let _ = std::fs::remove_file(&marker);
                return Err(anyhow!(
                    "{name}: run {} did not stop: the `deployd deploy` or the daemon that ran \
                     it may be gone, and {by_hand}",
                    run.id
                ));
            }
            _ => std::thread::sleep(POLL),
        }
    }
}

/// Drops the pending request of `name` from the queue's file, and publishes
/// that it was dropped, for the next daemon's subscribers.
fn drop_pending(s: &Server, name: &str) -> anyhow::Result<Cancelled> {
    let Some(req) = queue::read_pending(&s.state_dir, name) else {
        return Err(anyhow!("{name}: nothing to cancel: no pending request"));
    };
    let file = queue::pending_path(&s.state_dir, name);
    std::fs::remove_file(&file).with_context(|| format!("cannot remove {}", file.display()))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(direct::lifecycle(s).dropped(&req));
    Ok(Cancelled::Request(Box::new(req)))
}
