//! The life of a run, in one place: the daemon's executor and a direct
//! `deployd deploy` (no daemon answers) both carry out a run through
//! [`Lifecycle::run`], and every run event ([`RunEvent`]) is published from
//! here.
//!
//! A run's steps, in order:
//!
//! 1. its project's lock ([`crate::run::lock`]): one run of a project at a time,
//!    across the daemon and direct deploys;
//! 2. its record, status `running` ([`History::create`]), durably;
//! 3. [`RunEvent::Started`], then the caller's own [`Caller::started`] (the
//!    daemon settles the queued request; a direct deploy prints and tails
//!    the log);
//! 4. the log's header, and the push's note when it has one (why its paths
//!    were not checked); then the script ([`runner::run`]): environment,
//!    process group, timeout, `stop`, `cancel`;
//! 5. when the script succeeded and the project has a `health_check`, the
//!    check ([`crate::run::health`]), still under the lock: the run is
//!    `unhealthy` when every try fails;
//! 6. its outcome applied to the record, the record saved, retention
//!    (`keep_runs`);
//! 7. [`RunEvent::Finished`], then the lock is released.
//!
//! A run a previous daemon did not see end is closed by
//! [`Lifecycle::interrupted`] instead (steps 5 and 6), a push the CI gate
//! dropped (`ci_failed`, `ci_timeout`) is recorded by
//! [`Lifecycle::not_run`] (its record, finished from the start, and step 6),
//! and a request that waits for its run is announced by
//! [`Lifecycle::queued`].
//!
//! Where what comes next hooks in:
//!
//! - what reacts to runs (notifications, forge status reports, a status
//!   page, metrics) subscribes to the daemon's [`crate::run::events::Bus`] and
//!   sees direct runs too, through the spool (see [`crate::run::events`]);
//! - a gate before a run (deploys gated on CI) goes between steps 1 and 2,
//!   or before the request is queued;
//! - a rollback is a new request built from an earlier run
//!   ([`Run::request`], [`crate::store::history::rollback_target`]), queued by
//!   whoever decides it (`deployd rollback` and the status page's button,
//!   through `Shared::rollback`; the executor after an unhealthy run);
//! - cancelling a run is turning its `cancel` to true (`deployd cancel` and
//!   the status page's button, through `Shared::cancel`; a newer push);
//!   `stop` is the daemon's shutdown, or Ctrl-C of a direct deploy.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::watch;

use crate::config::Project;
use crate::run::events::{Publisher, RunEvent};
use crate::run::health;
use crate::run::lock::{self, RunLock};
use crate::run::runner::{self, Outcome};
use crate::store::history::{History, Run, Status};
use crate::store::queue::DeployRequest;

/// What every run of one process shares.
pub(crate) struct Lifecycle {
    /// Where runs are recorded.
    pub(crate) history: Arc<History>,
    /// Where the project locks live (the state_dir of the config the
    /// process started with: a change takes effect at the next restart).
    pub(crate) state_dir: PathBuf,
    /// Where the run events go.
    pub(crate) events: Publisher,
}

/// What the caller of a run does at its steps: the daemon and a direct
/// deploy differ only here.
pub(crate) trait Caller {
    /// Another run holds the project's lock: this one waits for it. Called
    /// at most once.
    fn waiting(&mut self);

    /// The run's record is on disk and [`RunEvent::Started`] published; the
    /// script starts when this returns.
    async fn started(&mut self, run: &Run);
}

/// Why a run did not start; its request comes back with it.
#[derive(Debug)]
pub(crate) enum NotRun {
    /// `stop` turned true while the run waited for its lock.
    Stopped,
    /// `cancel` turned true while the run waited for its lock.
    Cancelled,
    /// The lock could not be taken.
    Lock(io::Error),
    /// The record could not be created.
    Record(io::Error),
}

/// How a run ended.
pub(crate) struct Ended {
    /// Its final record.
    pub(crate) run: Run,
    /// What the script did.
    pub(crate) outcome: Outcome,
    /// Whether the final record reached the disk.
    pub(crate) saved: io::Result<()>,
}

impl Lifecycle {
    /// Whether anything receives the events (to skip building them).
    pub(crate) fn listened(&self) -> bool {
        self.events.listened()
    }

    /// Announces a request that waits for its run (queued durably). The
    /// caller makes the copy, and only when [`Lifecycle::listened`].
    pub(crate) async fn queued(&self, req: DeployRequest) {
        self.events.publish(RunEvent::Queued(req)).await;
    }

    /// Announces a request cancelled before its run started (it never
    /// runs).
    pub(crate) async fn dropped(&self, req: &DeployRequest) {
        if self.listened() {
            self.events.publish(RunEvent::Dropped(req.clone())).await;
        }
    }

    /// Carries out `req`, a request of `project`, from its lock to its final
    /// record (see the module's steps). `stop` turning true interrupts it:
    /// before the script starts the run does not happen, after it the script
    /// is stopped and the run recorded `interrupted`. `cancel` turning true
    /// does the same, recorded `cancelled`.
    pub(crate) async fn run(
        &self,
        project: &Project,
        req: DeployRequest,
        stop: watch::Receiver<bool>,
        cancel: watch::Receiver<bool>,
        caller: &mut impl Caller,
    ) -> Result<Ended, (DeployRequest, NotRun)> {
        let lock_path = lock::path(&self.state_dir, &project.name);
        let given_up = {
            let (mut stop, mut cancel) = (stop.clone(), cancel.clone());
            async move {
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => {}
                    Ok(_) = cancel.wait_for(|c| *c) => {}
                }
            }
        };
        let lock = match RunLock::acquire(&lock_path, || caller.waiting(), given_up).await {
            Ok(Some(l)) => l,
            Ok(None) if *cancel.borrow() => return Err((req, NotRun::Cancelled)),
            Ok(None) => return Err((req, NotRun::Stopped)),
            Err(e) => return Err((req, NotRun::Lock(e))),
        };
        crate::fault::point(crate::fault::BEFORE_RUN).await;
        let history = self.history.clone();
        let r = req.clone();
        let mut run = match blocking(move || history.create(&r)).await {
            Ok(run) => run,
            Err(e) => return Err((req, NotRun::Record(e))),
        };
        self.events.publish(RunEvent::Started(run.clone())).await;
        caller.started(&run).await;

        let started = std::time::Instant::now();
        // Should the log not open, the script does not start either, and
        // the runner says why.
        let r = run.clone();
        blocking(move || {
            if let Ok(mut log) = runner::open_log(&r) {
                runner::log_line(&mut log, &runner::header(&r));
                let note = &r.request.push.note;
                if !note.is_empty() {
                    runner::log_line(&mut log, note);
                }
            }
        })
        .await;
        let mut pid = None;
        let outcome = if let Some(fleet) = &project.fleet {
            // A project with hosts rolls out over them instead (steps 4
            // and 5 per host: run::fleet).
            // Boxed: the rollout's state is large (a batch of hosts, each
            // with its ssh, log and health check), and every run's task,
            // and the stack frame that spawns it, would otherwise be that
            // size, fleet or not.
            let (history, dir) = (&self.history, &self.state_dir);
            Box::pin(crate::run::fleet::rollout(
                project, fleet, &mut run, history, dir, stop, cancel,
            ))
            .await
        } else {
            let mut outcome = runner::run(
                project,
                &mut run,
                &lock,
                stop.clone(),
                cancel.clone(),
                |p| pid = Some(p),
            )
            .await;
            if outcome == Outcome::Exited(0) && !project.health_check.is_empty() {
                outcome = health::check(project, &run, stop, cancel).await;
            }
            outcome
        };
        note(&run, &runner::summary(&run, &outcome, started)).await;
        run.pid = pid;
        crate::fault::point(crate::fault::BEFORE_RECORD).await;
        outcome.apply(&mut run);
        let history = self.history.clone();
        let (r, keep) = (run.clone(), project.keep_runs);
        let saved = blocking(move || {
            history.save(&r)?;
            if let Err(e) = history.prune(r.project(), keep) {
                tracing::warn!("{}: cannot remove old runs: {e}", r.project());
            }
            Ok(())
        })
        .await;
        self.events.publish(RunEvent::Finished(run.clone())).await;
        drop(lock);
        Ok(Ended {
            run,
            outcome,
            saved,
        })
    }

    /// Records `req`, a push the CI gate dropped (`status` is `ci_failed` or
    /// `ci_timeout`), as a run whose script never ran: its record, finished
    /// from the start, a log saying `why`, retention, and its
    /// [`RunEvent::Finished`], like any run's end. No lock: nothing runs.
    pub(crate) async fn not_run(
        &self,
        project: &Project,
        req: DeployRequest,
        status: Status,
        why: String,
    ) -> io::Result<Run> {
        let history = self.history.clone();
        let keep = project.keep_runs;
        let run = blocking(move || {
            let run = history.closed(&req, status)?;
            if let Ok(mut log) = runner::open_log(&run) {
                runner::log_line(
                    &mut log,
                    &format!(
                        "run {} of {} ({}) {} {}: {status}: {why}; the script did not run",
                        run.id,
                        run.project(),
                        run.request.trigger,
                        run.request.push.git_ref,
                        run.request.push.after
                    ),
                );
            }
            if let Err(e) = history.prune(run.project(), keep) {
                tracing::warn!("{}: cannot remove old runs: {e}", run.project());
            }
            Ok::<_, io::Error>(run)
        })
        .await?;
        self.events.publish(RunEvent::Finished(run.clone())).await;
        Ok(run)
    }

    /// Closes `run`, which a previous daemon left recorded `running` and
    /// none of whose processes is left: says so in its log, records it
    /// `interrupted` as of `last_alive` (RFC 3339) and publishes its end.
    /// The caller holds the project's lock.
    pub(crate) async fn interrupted(&self, mut run: Run, last_alive: String) -> io::Result<Run> {
        let text = format!(
            "deployd stopped during this run; recorded as interrupted \
             (its processes were last known alive at {last_alive})"
        );
        note(&run, &text).await;
        Outcome::Interrupted(None).apply(&mut run);
        crate::run::fleet::interrupted_hosts(&mut run);
        run.finished_at = Some(last_alive);
        let history = self.history.clone();
        let r = run.clone();
        blocking(move || history.save(&r)).await?;
        self.events.publish(RunEvent::Finished(run.clone())).await;
        Ok(run)
    }
}

/// Writes a line of deployd's own into `run`'s log, off the runtime's
/// thread (a log that does not open is left alone: the record says the
/// same).
pub(crate) async fn note(run: &Run, text: &str) {
    let (r, text) = (run.clone(), text.to_string());
    blocking(move || runner::note(&r, &text)).await;
}

/// Runs a blocking closure on the blocking pool (fsync, directory reads).
pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => v,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}
