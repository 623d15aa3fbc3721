//! A `deployd deploy` or `deployd rollback` that finds no daemon runs the
//! script in its own process, through the same run [`Lifecycle`] the daemon
//! uses: same lock, same environment, same log and record. It speaks on
//! stderr, copies the log to stdout as it grows, rolls back an unhealthy
//! run as the daemon would, and stops when `deployd cancel` asks
//! ([`super::cancel`]). Its run events go to the spool, for the next
//! daemon's subscribers.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, anyhow};
use tokio::sync::watch;

use crate::config::{OnUnhealthy, Project, Server};
use crate::fsutil;
use crate::run::events::{Publisher, Spool};
use crate::run::lifecycle::{Caller, Ended, Lifecycle, NotRun};
use crate::run::{cancel, executor, runner};
use crate::store::history::{self, History, Run, Status};
use crate::store::log_tail;
use crate::store::queue::{DeployRequest, Trigger};

/// Why a direct deploy did not end in a run's record.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// It may not run here at all: bad usage.
    #[error(
        "{state_dir} belongs to {owner}: run the deploy as that user \
             (sudo -u {owner} deployd deploy …) so its files keep their owner"
    )]
    ForeignRoot {
        /// The `state_dir` of the config.
        state_dir: String,
        /// Who owns it.
        owner: String,
    },
    /// An unhealthy run that was to be rolled back could not be; its log
    /// and stderr already say why.
    #[error("the unhealthy run was not rolled back")]
    NotRolledBack,
    /// Anything else.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// The run lifecycle of a process with no daemon: its events go to the
/// spool of `s.state_dir`.
pub(crate) fn lifecycle(s: &Server) -> Lifecycle {
    Lifecycle {
        history: Arc::new(History::new(&s.state_dir, &s.log_dir)),
        state_dir: s.state_dir.clone(),
        events: Publisher::Spool(Arc::new(Spool::new(&s.state_dir))),
    }
}

/// Runs `req` of `p` here, and an unhealthy run's rollback when `p` asks
/// for one (as `user`). Returns the last run, recorded.
pub(crate) async fn deploy(
    s: &Server,
    p: &Project,
    req: DeployRequest,
    user: &str,
) -> Result<Run, Error> {
    refuse_foreign_root(&s.state_dir)?;
    fsutil::create_top_dirs(&s.state_dir, &s.log_dir).map_err(anyhow::Error::from)?;
    // Ctrl-C gives up waiting for the lock, or interrupts the script.
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        let _ = stop_tx.send(true);
    });
    let lifecycle = lifecycle(s);
    let mut req = req;
    loop {
        let ended = run(&lifecycle, p, req, stop_rx.clone()).await?;
        ended.saved.context("cannot save the run record")?;
        let run = ended.run;
        if run.status != Status::Unhealthy || p.on_unhealthy != OnUnhealthy::Rollback {
            return Ok(run);
        }
        eprintln!("deployd: {}: run {} unhealthy", p.name, run.id);
        req = rollback_of(&lifecycle.history, p, &run, user)?;
    }
}

/// The rollback that follows the unhealthy `run` (docs/operations.md,
/// *Health checks*): once, and only to a run that was healthy.
fn rollback_of(
    history: &History,
    p: &Project,
    run: &Run,
    user: &str,
) -> Result<DeployRequest, Error> {
    let note = |text: &str| {
        if let Ok(mut log) = runner::open_log(run) {
            runner::log_line(&mut log, text);
        }
        eprintln!("deployd: {}: {text}", p.name);
    };
    if run.request.trigger == Trigger::Rollback {
        note("this unhealthy run was a rollback: not rolling back again");
        return Err(Error::NotRolledBack);
    }
    let runs = history.list(&p.name, None).map_err(anyhow::Error::from)?;
    let target = match history::rollback_target(&runs, None, Some(run)) {
        Ok(t) => t,
        Err(why) => {
            note(&format!("on_unhealthy = \"rollback\", but {why}"));
            return Err(Error::NotRolledBack);
        }
    };
    note(&format!(
        "unhealthy: rolling back to {} (the commit of run {})",
        target.short_sha(),
        target.id
    ));
    Ok(executor::rollback_request(
        &target,
        run.request.seq + 1,
        user,
    ))
}

/// Refuses to run a deploy as root over a state_dir another user owns (the
/// daemon's): the script would run outside the unit's sandbox and leave
/// root-owned files that later break the daemon's own deploys.
fn refuse_foreign_root(state_dir: &Path) -> Result<(), Error> {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(state_dir) else {
        return Ok(());
    };
    if !nix::unistd::geteuid().is_root() || meta.uid() == 0 {
        return Ok(());
    }
    let owner = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(meta.uid()))
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| meta.uid().to_string());
    Err(Error::ForeignRoot {
        state_dir: state_dir.display().to_string(),
        owner,
    })
}

/// One run of a direct deploy, its log copied to stdout.
async fn run(
    lifecycle: &Lifecycle,
    p: &Project,
    req: DeployRequest,
    stop_rx: watch::Receiver<bool>,
) -> anyhow::Result<Ended> {
    lifecycle.queued(req.clone()).await;
    let (cancel_tx, cancel_rx) = watch::channel(false);
    let mut direct = Direct {
        history: &lifecycle.history,
        name: &p.name,
        state_dir: &lifecycle.state_dir,
        cancel: Some(cancel_tx),
        tail: None,
    };
    let ended = lifecycle.run(p, req, stop_rx, cancel_rx, &mut direct).await;
    if let Some((done, tail)) = direct.tail {
        let _ = done.send(true);
        let _ = tail.await;
    }
    cancel::clear(&lifecycle.state_dir, &p.name);
    match ended {
        Ok(ended) => Ok(ended),
        Err((_, NotRun::Stopped | NotRun::Cancelled)) => {
            Err(anyhow!("interrupted while waiting for the lock"))
        }
        Err((_, NotRun::Lock(e))) => {
            Err(anyhow::Error::from(e).context("cannot take the run lock"))
        }
        Err((_, NotRun::Record(e))) => Err(anyhow::Error::from(e).context("cannot record the run")),
    }
}

/// What a deploy waits for when another run of the project is going on.
pub(crate) fn waiting_for(run: &Run) -> String {
    format!(
        "waiting for run {} ({} {}, started {}) to finish",
        run.id,
        run.request.trigger,
        run.short_sha(),
        run.started_at
    )
}

/// A direct deploy's side of a run's steps: it speaks on stderr and copies
/// the log to stdout as it grows.
struct Direct<'a> {
    history: &'a History,
    name: &'a str,
    state_dir: &'a Path,
    /// Turned true when `deployd cancel` asks for this run (see
    /// [`cancel::watch_for`]); moved to the task that watches for it.
    cancel: Option<watch::Sender<bool>>,
    /// Says the run ended, to the task copying its log.
    tail: Option<(
        watch::Sender<bool>,
        tokio::task::JoinHandle<std::io::Result<()>>,
    )>,
}

impl Caller for Direct<'_> {
    fn waiting(&mut self) {
        // The newest run recorded running holds the lock, unless
        // processes of a run whose daemon died do (no record says so).
        let holder = self
            .history
            .list(self.name, Some(3))
            .unwrap_or_default()
            .into_iter()
            .find(|r| r.status == Status::Running);
        match holder {
            Some(r) => eprintln!("deployd: {}: {}", self.name, waiting_for(&r)),
            None => eprintln!(
                "deployd: {}: another run of it holds its lock; waiting for it to finish",
                self.name
            ),
        }
    }

    async fn started(&mut self, run: &Run) {
        eprintln!(
            "deployd: {}: run {} started (log {})",
            self.name,
            run.id,
            run.log.display()
        );
        let (done_tx, done_rx) = watch::channel(false);
        // No clearing of the marker here: one left by an older run names
        // another id, which watch_for passes over, and a cancel of this run
        // written since its record exists must not be wiped.
        if let Some(tx) = self.cancel.take() {
            cancel::watch_for(self.state_dir, self.name, run.id, tx, done_rx.clone());
        }
        let log = run.log.clone();
        let tail = tokio::spawn(async move {
            log_tail::follow(&log, &mut std::io::stdout(), || *done_rx.borrow()).await
        });
        self.tail = Some((done_tx, tail));
    }
}
