//! The executor: one task that owns which project is running, starts runs
//! from the durable queue — one per project, at most `parallel` at once —
//! recovers runs a previous daemon did not see finish, and on shutdown gives
//! running deploys `shutdown_grace` before interrupting them.
//!
//! A run itself, from its lock to its final record, is carried out by
//! [`crate::run::lifecycle`], which also publishes the run events; the executor
//! only decides when each starts and what a daemon does around it (settle
//! its queued request, queue an interrupted one again).
//!
//! Everything else talks to it through a [`Handle`]: the HTTP side and the
//! control socket say "something was queued" or ask for status. Nobody
//! waits on a deploy except who asked to.

use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, watch};

use crate::config::{Config, OnNewPush, OnUnhealthy, Project};
use crate::daemon::shutdown::{Guard, Shutdown};
use crate::fsutil;
use crate::run::lifecycle::{Caller, Ended, Lifecycle, NotRun, blocking, note};
use crate::run::lock::{self, RunLock};
use crate::run::runner::Outcome;
use crate::store::history::{History, Run, Status};
use crate::store::queue::{DeployRequest, Queue, Trigger};
pub(crate) use crate::store::snapshot::ProjectState;

/// One project's state as `deployd status` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProjectStatus {
    /// The project.
    pub project: String,
    /// What it is doing.
    pub state: ProjectState,
    /// The run going on now.
    pub running: Option<Run>,
    /// The request waiting for its turn (coalesced: only the newest).
    pub pending: Option<DeployRequest>,
    /// The newest finished run.
    pub last: Option<Run>,
}

enum Msg {
    Queued,
    Started(Box<Run>),
    Done {
        project: String,
    },
    Status(oneshot::Sender<Vec<ProjectStatus>>),
    Cancel {
        project: String,
        pending: bool,
        run: Option<u64>,
        who: String,
        reply: oneshot::Sender<Option<Cancelling>>,
    },
}

/// What the executor answers a cancel: what it stops, and for a run
/// already started, the switch that stops its script, not yet turned, so
/// that the note of who cancelled it is in the run's log before the
/// script's last lines and the run's summary ([`Handle::cancel`]).
struct Cancelling {
    what: Cancelled,
    stop: Option<watch::Sender<bool>>,
}

/// What `deployd cancel` stopped.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cancelled {
    /// The running run: it is being stopped (SIGTERM, SIGKILL after
    /// `kill_grace`) and is recorded `cancelled` when it is.
    Run(Box<Run>),
    /// A request that had not started (it waited for the lock, or, with
    /// `--pending`, for its turn): it is dropped and never runs.
    Request(Box<DeployRequest>),
}

/// The one way a request enters the queue, for every path (a push, a CI
/// gate turned green, `deployd deploy` through the control socket, the
/// status page, a rollback, a run queued again after an interruption): the
/// durable write, then [`RunEvent::Queued`], then the executor is woken.
/// Returns once the request is on disk and announced; `Err` when it could
/// not be written (then nothing was announced).
///
/// [`RunEvent::Queued`]: crate::run::events::RunEvent::Queued
async fn enqueue(
    queue: &Arc<Queue>,
    lifecycle: &Lifecycle,
    wake: &mpsc::UnboundedSender<Msg>,
    req: DeployRequest,
) -> io::Result<()> {
    // A copy for the run event only when something listens: the fast path
    // stays free of it.
    let announced = lifecycle.listened().then(|| req.clone());
    queue.push(req).await?;
    crate::fault::point(crate::fault::BEFORE_ACK).await;
    if let Some(req) = announced {
        lifecycle.queued(&req).await;
    }
    let _ = wake.send(Msg::Queued);
    Ok(())
}

/// A cheap, cloneable way to talk to the executor.
#[derive(Clone)]
pub struct Handle {
    tx: mpsc::UnboundedSender<Msg>,
    /// Where [`Handle::enqueue`] writes.
    queue: Arc<Queue>,
    /// What announces a queued request.
    lifecycle: Arc<Lifecycle>,
    /// What runs and what waits, republished after every change, from
    /// memory alone (no `last` run: that is read from disk on request).
    live: watch::Receiver<Vec<ProjectStatus>>,
}

impl Handle {
    /// Queues `req` ([`enqueue`]): how every request enters the queue.
    pub(crate) async fn enqueue(&self, req: DeployRequest) -> io::Result<()> {
        enqueue(&self.queue, &self.lifecycle, &self.tx, req).await
    }

    /// Live state of every project.
    pub async fn status(&self) -> Vec<ProjectStatus> {
        let (tx, rx) = oneshot::channel();
        let _ = self.tx.send(Msg::Status(tx));
        rx.await.unwrap_or_default()
    }

    /// Cancels `project`'s running run (or, with `pending`, drops its
    /// pending request), as `who` asked; with `run`, only if that is the
    /// run going on. `None` when there is none. A started run's log says
    /// `cancelled by WHO` first, then its script is stopped. Through
    /// [`crate::state::Shared::cancel`].
    pub(crate) async fn cancel(
        &self,
        project: &str,
        pending: bool,
        run: Option<u64>,
        who: &str,
    ) -> Option<Cancelled> {
        let (reply, rx) = oneshot::channel();
        let _ = self.tx.send(Msg::Cancel {
            project: project.to_string(),
            pending,
            run,
            who: who.to_string(),
            reply,
        });
        let Cancelling { what, stop } = rx.await.ok().flatten()?;
        if let (Cancelled::Run(run), Some(stop)) = (&what, stop) {
            let (r, line) = ((**run).clone(), format!("cancelled by {who}"));
            // On a task of its own: a caller dropped meanwhile (the status
            // page's client hung up) must not leave the note without the
            // stop.
            let _ = tokio::spawn(async move {
                note(&r, &line).await;
                stop.send_replace(true);
            })
            .await;
        }
        Some(what)
    }

    /// Live state of every project without its `last` run, updated when it
    /// changes: to follow without polling and without file I/O.
    pub fn watch(&self) -> watch::Receiver<Vec<ProjectStatus>> {
        self.live.clone()
    }
}

enum Busy {
    /// Waiting for the lock or running.
    Run {
        /// The record, once it exists.
        run: Option<Box<Run>>,
        /// The request it carries out.
        request: Box<DeployRequest>,
        /// Turned true to cancel it.
        cancel: watch::Sender<bool>,
    },
    /// Waiting for the processes of an interrupted run to exit.
    Recovering,
}

/// What the run tasks share (named apart from the daemon's
/// [`crate::state::Shared`], which holds a [`Handle`] to this task).
#[derive(Clone)]
struct RunCtx {
    queue: Arc<Queue>,
    /// Carries out each run; its history is the daemon's.
    lifecycle: Arc<Lifecycle>,
    tx: mpsc::UnboundedSender<Msg>,
    stop: watch::Receiver<bool>,
}

impl RunCtx {
    /// Queues `req` ([`enqueue`]).
    async fn enqueue(&self, req: DeployRequest) -> io::Result<()> {
        enqueue(&self.queue, &self.lifecycle, &self.tx, req).await
    }
}

/// The executor task's state.
pub struct Executor {
    /// The daemon's live config (see `state.rs`): read when a run starts,
    /// followed so that a reload that brings a project back starts its
    /// pending request.
    config: watch::Receiver<Arc<Config>>,
    shared: RunCtx,
    rx: mpsc::UnboundedReceiver<Msg>,
    busy: HashMap<String, Busy>,
    stop_tx: watch::Sender<bool>,
    live: watch::Sender<Vec<ProjectStatus>>,
    /// Held by every task the executor starts (runs, recoveries, the
    /// removal of a cancelled request, a status read), so the daemon's
    /// shutdown waits for each; set when [`Executor::run`] starts.
    guard: Option<Guard>,
}

impl Executor {
    /// A new executor and its handle.
    pub(crate) fn new(
        config: watch::Receiver<Arc<Config>>,
        queue: Arc<Queue>,
        lifecycle: Arc<Lifecycle>,
    ) -> (Executor, Handle) {
        let (tx, rx) = mpsc::unbounded_channel();
        let (stop_tx, stop) = watch::channel(false);
        let (live, live_rx) = watch::channel(Vec::new());
        let handle = Handle {
            tx: tx.clone(),
            queue: queue.clone(),
            lifecycle: lifecycle.clone(),
            live: live_rx,
        };
        let exec = Executor {
            config,
            shared: RunCtx {
                queue,
                lifecycle,
                tx,
                stop,
            },
            rx,
            busy: HashMap::new(),
            stop_tx,
            live,
            guard: None,
        };
        (exec, handle)
    }

    /// Runs until `shutdown` begins and every run has ended (running ones
    /// are interrupted `shutdown_grace` after that).
    pub(crate) async fn run(mut self, mut shutdown: Shutdown) {
        self.guard = Some(shutdown.guard());
        self.recover().await;
        self.start_ready();
        self.publish();
        let mut grace_end: Option<tokio::time::Instant> = None;
        let mut interrupted = false;
        let mut following = true;
        loop {
            if grace_end.is_some() && self.busy.is_empty() {
                break;
            }
            let grace_sleep = async {
                match grace_end {
                    Some(t) if !interrupted => tokio::time::sleep_until(t).await,
                    _ => std::future::pending().await,
                }
            };
            tokio::select! {
                msg = self.rx.recv() => match msg {
                    Some(msg) => self.handle(msg, grace_end.is_some()),
                    None => break,
                },
                changed = self.config.changed(), if following => {
                    // A reload: the new config is in force for runs started
                    // from now on.
                    following = changed.is_ok();
                    if grace_end.is_none() {
                        self.start_ready();
                    }
                    self.publish();
                }
                () = shutdown.recv(), if grace_end.is_none() => {
                    let grace = self.config.borrow().server.shutdown_grace;
                    let running = self.busy.len();
                    if running > 0 {
                        tracing::info!(
                            "stopping: waiting up to {} for {running} running deploy(s)",
                            humantime::format_duration(grace)
                        );
                    }
                    grace_end = Some(tokio::time::Instant::now() + grace);
                    if !self.busy.values().any(|b| matches!(b, Busy::Run { .. })) {
                        // Only recoveries waiting on orphans: nothing to finish.
                        interrupted = true;
                        let _ = self.stop_tx.send(true);
                    }
                }
                _ = grace_sleep => {
                    tracing::warn!("shutdown_grace over: interrupting running deploys");
                    interrupted = true;
                    let _ = self.stop_tx.send(true);
                }
            }
        }
        let _ = self.stop_tx.send(true);
    }

    fn handle(&mut self, msg: Msg, stopping: bool) {
        match msg {
            Msg::Queued => self.cancel_superseded(),
            Msg::Started(started) => {
                if let Some(Busy::Run { run, .. }) = self.busy.get_mut(&started.request.project) {
                    *run = Some(started);
                }
            }
            Msg::Cancel {
                project,
                pending,
                run,
                who,
                reply,
            } => {
                let _ = reply.send(self.cancel(&project, pending, run, &who));
            }
            Msg::Done { project } => {
                self.busy.remove(&project);
            }
            Msg::Status(reply) => {
                // The `last` runs are read off the runtime's thread; the
                // executor goes on meanwhile.
                let live = self.live_status();
                let history = self.shared.lifecycle.history.clone();
                let guard = self.guard.clone();
                tokio::spawn(async move {
                    let _guard = guard;
                    let all = blocking(move || with_last(live, &history)).await;
                    let _ = reply.send(all);
                });
            }
        }
        if !stopping {
            self.start_ready();
        }
        self.publish();
    }

    /// Cancels `project`'s running run (with `only`, if it is that run),
    /// or with `pending` drops its pending request (its file is removed in
    /// the background); says in the daemon's log that `who` asked.
    fn cancel(
        &mut self,
        project: &str,
        pending: bool,
        only: Option<u64>,
        who: &str,
    ) -> Option<Cancelling> {
        if pending {
            let req = self.shared.queue.take(project)?;
            tracing::info!(
                "{project}: pending request cancelled by {who} ({} {} {}, received {})",
                req.trigger,
                req.push.git_ref,
                req.push.short_sha(),
                req.received_at
            );
            let shared = self.shared.clone();
            let dropped = req.clone();
            let guard = self.guard.clone();
            tokio::spawn(async move {
                let _guard = guard;
                let p = &dropped.project;
                if let Err(e) = shared.queue.settle(p, dropped.seq).await {
                    tracing::warn!("{p}: cannot remove the cancelled request: {e}");
                }
                shared.lifecycle.dropped(&dropped).await;
            });
            return Some(Cancelling {
                what: Cancelled::Request(Box::new(req)),
                stop: None,
            });
        }
        match self.busy.get(project)? {
            Busy::Run {
                run,
                request,
                cancel,
            } => {
                if only.is_some() && run.as_ref().map(|r| r.id) != only {
                    return None;
                }
                Some(match run {
                    Some(run) => {
                        tracing::info!("{project}: cancelling run {}, as {who} asked", run.id);
                        // Turned by the handle, once the log says who asked.
                        Cancelling {
                            what: Cancelled::Run(run.clone()),
                            stop: Some(cancel.clone()),
                        }
                    }
                    None => {
                        tracing::info!(
                            "{project}: cancelling the request waiting for the lock \
                             ({} {}), as {who} asked",
                            request.trigger,
                            request.push.short_sha()
                        );
                        // No record, no log yet: nothing to write first.
                        cancel.send_replace(true);
                        Cancelling {
                            what: Cancelled::Request(request.clone()),
                            stop: None,
                        }
                    }
                })
            }
            Busy::Recovering => None,
        }
    }

    /// `on_new_push = "cancel"`: a run with a newer request pending is
    /// cancelled, and the newer request runs next.
    fn cancel_superseded(&mut self) {
        let config = self.config.borrow().clone();
        for (project, busy) in &self.busy {
            let Busy::Run {
                request, cancel, ..
            } = busy
            else {
                continue;
            };
            let cancels = config
                .projects
                .get(project)
                .is_some_and(|p| p.on_new_push == OnNewPush::Cancel);
            let newer = self
                .shared
                .queue
                .pending(project)
                .is_some_and(|p| p.seq > request.seq);
            if cancels && newer && !*cancel.borrow() {
                tracing::info!(
                    "{project}: a newer request is queued: cancelling the running deploy \
                     (on_new_push = \"cancel\")"
                );
                cancel.send_replace(true);
            }
        }
    }

    /// Republishes the live status if it changed.
    fn publish(&mut self) {
        let now = self.live_status();
        self.live.send_if_modified(|old| {
            let same = old.len() == now.len()
                && old.iter().zip(&now).all(|(a, b)| {
                    a.project == b.project
                        && a.state == b.state
                        && a.running.as_ref().map(|r| r.id) == b.running.as_ref().map(|r| r.id)
                        && a.pending.as_ref().map(|r| r.seq) == b.pending.as_ref().map(|r| r.seq)
                });
            if !same {
                *old = now;
            }
            !same
        });
    }

    /// Starts every durable pending request that may start now.
    fn start_ready(&mut self) {
        let config = self.config.borrow().clone();
        for project in self.shared.queue.ready() {
            if self.busy.len() >= config.server.parallel {
                return;
            }
            if self.busy.contains_key(&project) {
                continue;
            }
            let Some(settings) = config.projects.get(&project).cloned() else {
                // The project left the config (reload): its request stays on
                // disk and runs if the project comes back.
                continue;
            };
            let Some(req) = self.shared.queue.take(&project) else {
                continue;
            };
            let (cancel, cancelled) = watch::channel(false);
            self.busy.insert(
                project,
                Busy::Run {
                    run: None,
                    request: Box::new(req.clone()),
                    cancel,
                },
            );
            let (shared, guard) = (self.shared.clone(), self.guard.clone());
            tokio::spawn(async move {
                let _guard = guard;
                let name = settings.name.clone();
                run_one(settings, req, cancelled, &shared).await;
                let _ = shared.tx.send(Msg::Done { project: name });
            });
        }
    }

    /// Finds runs a previous daemon left unfinished and schedules their
    /// recovery: once every process of the old run has exited (its lock is
    /// free), it is recorded `interrupted` and queued again as `recovery`,
    /// unless a newer push is already pending.
    async fn recover(&mut self) {
        let config = self.config.borrow().clone();
        // Read off the runtime's thread, before anything else is started.
        let history = self.shared.lifecycle.history.clone();
        let names: Vec<String> = config.projects.keys().cloned().collect();
        let found = blocking(move || {
            names
                .into_iter()
                .map(|name| {
                    let runs = history.unfinished(&name);
                    (name, runs)
                })
                .collect::<Vec<_>>()
        })
        .await;
        for (name, runs) in found {
            let name = &name;
            let runs = match runs {
                Ok(r) if !r.is_empty() => r,
                Ok(_) => continue,
                Err(e) => {
                    tracing::error!("{name}: cannot read run history: {e}");
                    continue;
                }
            };
            self.busy.insert(name.clone(), Busy::Recovering);
            let shared = self.shared.clone();
            let lock_path = lock::path(&self.shared.lifecycle.state_dir, name);
            let (name, guard) = (name.clone(), self.guard.clone());
            tokio::spawn(async move {
                let _guard = guard;
                recover_one(&name, runs, &lock_path, &shared).await;
                let _ = shared.tx.send(Msg::Done { project: name });
            });
        }
    }

    /// Status from memory alone: `last` is left out.
    fn live_status(&self) -> Vec<ProjectStatus> {
        self.config
            .borrow()
            .projects
            .keys()
            .map(|name| {
                let pending = self.shared.queue.pending(name);
                let (state, running) = match self.busy.get(name) {
                    Some(Busy::Run { run, .. }) => (ProjectState::Running, run.as_deref().cloned()),
                    Some(Busy::Recovering) => (ProjectState::Recovering, None),
                    None if pending.is_some() => (ProjectState::Pending, None),
                    None => (ProjectState::Idle, None),
                };
                ProjectStatus {
                    project: name.clone(),
                    state,
                    running,
                    pending,
                    last: None,
                }
            })
            .collect()
    }
}

/// `live` with each project's newest finished run. Blocking.
fn with_last(mut live: Vec<ProjectStatus>, history: &History) -> Vec<ProjectStatus> {
    for p in &mut live {
        p.last = history
            .list(&p.project, Some(3))
            .ok()
            .and_then(|runs| runs.into_iter().find(|r| r.status != Status::Running));
    }
    live
}

async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// The daemon's side of a run's steps (see [`Caller`]).
struct Daemon<'a> {
    shared: &'a RunCtx,
    name: &'a str,
}

impl Caller for Daemon<'_> {
    fn waiting(&mut self) {
        tracing::info!(
            "{}: waiting for the run lock (another run of it is going on)",
            self.name
        );
    }

    async fn started(&mut self, run: &Run) {
        let name = self.name;
        // First: status shows the run as soon as its record exists.
        let _ = self.shared.tx.send(Msg::Started(Box::new(run.clone())));
        // The run's record is on disk: its request may leave the queue.
        let queue = self.shared.queue.clone();
        let (p, seq) = (name.to_string(), run.request.seq);
        if let Err(e) = queue.settle(&p, seq).await {
            tracing::warn!("{name}: cannot remove the queued request: {e}");
        }
        tracing::info!(
            "{name}: run {} started ({} {} {})",
            run.id,
            run.request.trigger,
            run.request.push.git_ref,
            run.short_sha()
        );
    }
}

async fn run_one(
    project: Project,
    req: DeployRequest,
    cancel: watch::Receiver<bool>,
    shared: &RunCtx,
) {
    let name = project.name.clone();
    let mut caller = Daemon {
        shared,
        name: &name,
    };
    let lifecycle = &shared.lifecycle;
    let ended = match lifecycle
        .run(&project, req, shared.stop.clone(), cancel, &mut caller)
        .await
    {
        Ok(ended) => ended,
        Err((req, NotRun::Cancelled)) => {
            // Cancelled before it started: the request is dropped.
            tracing::info!(
                "{name}: request cancelled before its run started ({} {})",
                req.push.git_ref,
                req.push.short_sha()
            );
            if let Err(e) = shared.queue.settle(&name, req.seq).await {
                tracing::warn!("{name}: cannot remove the cancelled request: {e}");
            }
            lifecycle.dropped(&req).await;
            return;
        }
        Err((req, why)) => {
            shared.queue.untake(req);
            match why {
                NotRun::Stopped | NotRun::Cancelled => {}
                NotRun::Lock(e) => {
                    tracing::error!(
                        "{name}: cannot take the run lock {}: {e}",
                        lock::path(&lifecycle.state_dir, &name).display()
                    );
                    tokio::time::sleep(Duration::from_secs(5)).await;
                }
                NotRun::Record(e) => {
                    tracing::error!("{name}: cannot record a new run (retrying in 5s): {e}");
                    tokio::time::sleep(Duration::from_secs(5)).await;
                }
            }
            return;
        }
    };
    let Ended {
        run,
        outcome,
        saved,
    } = ended;
    if let Err(e) = saved {
        tracing::error!("{name}: cannot save the record of run {}: {e}", run.id);
    }
    let how = || {
        format!(
            "{name}: run {} {} ({}; log {})",
            run.id,
            run.ended_as(project.timeout),
            match (run.exit_code, run.signal) {
                _ if run.status == Status::Unhealthy => {
                    "the script succeeded, its health check did not".into()
                }
                (Some(c), _) => format!("exit code {c}"),
                (None, Some(s)) => format!("killed by signal {s}"),
                (None, None) => "stopped by deployd".into(),
            },
            run.log.display()
        )
    };
    match &outcome {
        Outcome::Exited(0) => tracing::info!("{name}: run {} succeeded", run.id),
        Outcome::NotStarted(m) => tracing::error!("{name}: run {} failed: {m}", run.id),
        // A failed deploy is an error for the operator (journal priority err,
        // so `journalctl -p err` finds it); an interrupted one runs again.
        _ if matches!(run.status, Status::Failed | Status::TimedOut) => {
            tracing::error!("{}", how())
        }
        _ => tracing::warn!("{}", how()),
    }
    if matches!(outcome, Outcome::Interrupted(_)) {
        requeue(&run, shared).await;
    }
    if run.status == Status::Unhealthy && project.on_unhealthy == OnUnhealthy::Rollback {
        roll_back(&run, shared).await;
    }
}

/// `on_unhealthy = "rollback"`: queues a rollback of unhealthy `run` to the
/// last healthy commit, and says so in the run's log. Not when `run` was a
/// rollback itself: that would go on rolling back.
async fn roll_back(run: &Run, shared: &RunCtx) {
    let name = run.project();
    if run.request.trigger == Trigger::Rollback {
        let text = "this unhealthy run was a rollback: not rolling back again";
        tracing::warn!("{name}: run {}: {text}", run.id);
        note(run, text).await;
        return;
    }
    let history = shared.lifecycle.history.clone();
    let (p, current) = (name.to_string(), run.clone());
    let target = blocking(move || {
        let runs = history.list(&p, None).map_err(|e| e.to_string())?;
        crate::store::history::rollback_target(&runs, None, Some(&current))
    })
    .await;
    let target = match target {
        Ok(t) => t,
        Err(why) => {
            let text = format!("on_unhealthy = \"rollback\", but {why}");
            tracing::error!("{name}: run {}: {text}", run.id);
            note(run, &text).await;
            return;
        }
    };
    let req = rollback_request(&target, shared.queue.next_seq(), "deployd");
    let text = format!(
        "unhealthy: rolling back to {} (the commit of run {})",
        target.short_sha(),
        target.id
    );
    note(run, &text).await;
    match shared.enqueue(req).await {
        Ok(()) => tracing::warn!("{name}: run {} {text}", run.id),
        Err(e) => tracing::error!("{name}: cannot queue the rollback of run {}: {e}", run.id),
    }
}

/// The request of a rollback to `target`'s commit, asked by `user`: its
/// ref, commit and repository; trigger `rollback`.
pub(crate) fn rollback_request(target: &Run, seq: u64, user: &str) -> DeployRequest {
    let mut req = target.request(seq, Trigger::Rollback);
    req.push.pusher = user.to_string();
    req.push.delivery.clear();
    req.push.before.clear();
    // Not the deliveries of the run it goes back to: those were that run's.
    req.coalesced.clear();
    req.bodies.clear();
    req
}

/// What a daemon does about an interrupted run (docs/operations.md,
/// *Guarantees and how they are kept*).
/// One decision, used by recovery itself and by `deployd status` and
/// `deployd logs` when they tell what the next daemon will do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovery {
    /// Its request is queued again, with trigger `recovery`.
    RunAgain,
    /// A newer request is pending: it runs instead.
    Superseded,
    /// A later run (say, a `deployd deploy` made while no daemon ran)
    /// carried out a newer intent; running the old request again could roll
    /// the deploy back.
    LaterRun(Box<Run>),
}

/// Decides about `interrupted`, the newest interrupted run of its project,
/// given the project's `latest` run and its `pending` request.
pub fn recovery_plan(
    interrupted: &Run,
    latest: Option<&Run>,
    pending: Option<&DeployRequest>,
) -> Recovery {
    match latest {
        Some(later) if later.id > interrupted.id => Recovery::LaterRun(Box::new(later.clone())),
        _ if pending.is_some_and(|p| p.seq > interrupted.request.seq) => Recovery::Superseded,
        _ => Recovery::RunAgain,
    }
}

impl Recovery {
    /// What happens to run `id`, as the end of a sentence about it.
    pub fn describe(&self) -> String {
        match self {
            Recovery::RunAgain => "it runs again when deployd starts".into(),
            Recovery::Superseded => {
                "it is not run again: the newer pending request runs instead when deployd starts"
                    .into()
            }
            Recovery::LaterRun(r) => format!(
                "it is not run again: run {} ({}) came after it",
                r.id, r.request.trigger
            ),
        }
    }
}

/// Queues an interrupted run again as `recovery`, unless a newer request is
/// already pending (it supersedes the old commit).
async fn requeue(run: &Run, shared: &RunCtx) {
    let queue = shared.queue.clone();
    let pending = queue.pending(&run.request.project);
    if recovery_plan(run, None, pending.as_ref()) == Recovery::Superseded {
        tracing::info!(
            "{}: interrupted run {} superseded by a newer pending push",
            run.request.project,
            run.id
        );
        return;
    }
    let req = run.request(queue.next_seq(), Trigger::Recovery);
    match shared.enqueue(req).await {
        Ok(()) => {
            tracing::info!(
                "{}: run {} queued again for recovery",
                run.project(),
                run.id
            )
        }
        Err(e) => tracing::error!(
            "{}: cannot queue run {} again: {e}",
            run.request.project,
            run.id
        ),
    }
}

async fn recover_one(name: &str, runs: Vec<Run>, lock_path: &std::path::Path, shared: &RunCtx) {
    let ids: Vec<String> = runs.iter().map(|r| r.id.to_string()).collect();
    let mut waited = false;
    let lock = match RunLock::acquire(
        lock_path,
        || {
            waited = true;
            tracing::warn!(
                "{name}: run {} is still going without a daemon; waiting for its processes to exit",
                ids.join(", ")
            )
        },
        stopped(shared.stop.clone()),
    )
    .await
    {
        Ok(Some(l)) => l,
        Ok(None) => return,
        Err(e) => {
            tracing::error!("{name}: cannot take the run lock: {e}");
            return;
        }
    };
    // Seen within one lock poll of the last process exiting.
    let released_at = fsutil::now_rfc3339();
    // Re-read the records now that the old processes are gone: a run that
    // was going on under a manual `deployd deploy` has finished meanwhile
    // and recorded its own result.
    let history = shared.lifecycle.history.clone();
    let project = name.to_string();
    let (runs, latest) = blocking(move || {
        let runs: Vec<Run> = runs
            .into_iter()
            .filter_map(|r| match history.get(r.project(), r.id) {
                Ok(Some(now)) if now.status == Status::Running => Some(now),
                Ok(_) => None,
                Err(_) => Some(r),
            })
            .collect();
        (runs, history.latest(&project).ok().flatten())
    })
    .await;
    let Some(newest) = runs.last().cloned() else {
        return;
    };
    // A run started after the interrupted one (a manual `deployd deploy`
    // while no daemon ran) carried out a newer intent: running the old
    // request again could roll the deploy back.
    let later = latest.filter(|r| r.id > newest.id);
    for run in runs {
        // When its processes were last known alive: when this daemon saw the
        // lock they held released, if they held it (the newest run, with no
        // later one that could have held it instead); else the last write
        // to its log (they were gone before this daemon started, and it
        // cannot know how much longer they went on silently).
        let last_alive = if waited && run.id == newest.id && later.is_none() {
            released_at.clone()
        } else {
            let r = run.clone();
            blocking(move || last_write(&r))
                .await
                .unwrap_or_else(fsutil::now_rfc3339)
        };
        let id = run.id;
        match shared.lifecycle.interrupted(run, last_alive).await {
            Ok(_) => tracing::warn!("{name}: run {id} was interrupted"),
            Err(e) => tracing::error!("{name}: cannot record run {id} as interrupted: {e}"),
        }
    }
    match recovery_plan(&newest, later.as_ref(), shared.queue.pending(name).as_ref()) {
        Recovery::LaterRun(r) => tracing::info!(
            "{name}: not running interrupted run {} again: run {} ({}) came after it",
            newest.id,
            r.id,
            r.request.trigger
        ),
        _ => requeue(&newest, shared).await,
    }
    drop(lock);
}

/// When a run's log was last written, as RFC 3339 (not before its start).
/// Blocking.
fn last_write(run: &Run) -> Option<String> {
    let modified = std::fs::metadata(&run.log).ok()?.modified().ok()?;
    let started = humantime::parse_rfc3339(&run.started_at).ok()?;
    Some(fsutil::rfc3339(modified.max(started)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(id: u64, request_seq: u64, trigger: Trigger) -> Run {
        let push = crate::forge::push::Push {
            git_ref: "refs/heads/main".into(),
            ..Default::default()
        };
        Run {
            id,
            request: DeployRequest::new(request_seq, "app", trigger, push),
            status: Status::Running,
            exit_code: None,
            signal: None,
            started_at: String::new(),
            finished_at: None,
            log: format!("{id}.log").into(),
            pid: None,
            outputs: Default::default(),
            hosts: Vec::new(),
        }
    }

    #[test]
    fn recovery_plan_prefers_what_came_later() {
        let cut = run(5, 100, Trigger::Webhook);
        // Alone: run again.
        assert_eq!(recovery_plan(&cut, Some(&cut), None), Recovery::RunAgain);
        // An older pending request (impossible in practice) does not count.
        let old = cut.request(50, Trigger::Webhook);
        assert_eq!(
            recovery_plan(&cut, Some(&cut), Some(&old)),
            Recovery::RunAgain
        );
        // A newer pending request runs instead.
        let newer = cut.request(200, Trigger::Webhook);
        assert_eq!(
            recovery_plan(&cut, Some(&cut), Some(&newer)),
            Recovery::Superseded
        );
        // A later run wins over everything.
        let later = run(6, 150, Trigger::Manual);
        let plan = recovery_plan(&cut, Some(&later), Some(&newer));
        assert_eq!(plan, Recovery::LaterRun(Box::new(later)));
        assert_eq!(
            plan.describe(),
            "it is not run again: run 6 (manual) came after it"
        );
    }
}

#[cfg(test)]
mod enqueue_tests {
    use super::*;
    use crate::run::events::{Bus, Publisher, RunEvent};

    /// An interrupted run queued again goes through the one enqueue: on
    /// disk, announced `Queued` with trigger `recovery`, and the executor
    /// woken (it once was not).
    #[tokio::test]
    async fn a_requeued_run_is_announced_and_wakes_the_executor() {
        let dir = std::env::temp_dir().join(format!("deployd-requeue-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let queue = Arc::new(Queue::open(&dir).unwrap());
        let bus = Bus::new();
        let mut events = bus.subscribe();
        let lifecycle = Arc::new(Lifecycle {
            history: Arc::new(History::new(&dir, &dir.join("logs"))),
            state_dir: dir.clone(),
            events: Publisher::Bus(bus),
        });
        let (tx, mut rx) = mpsc::unbounded_channel();
        let ctx = RunCtx {
            queue: queue.clone(),
            lifecycle,
            tx,
            stop: watch::channel(false).1,
        };
        let push = crate::forge::push::Push {
            git_ref: "refs/heads/main".into(),
            ..Default::default()
        };
        let cut = Run {
            id: 3,
            request: DeployRequest::new(1, "app", Trigger::Webhook, push),
            status: Status::Interrupted,
            exit_code: None,
            signal: None,
            started_at: String::new(),
            finished_at: None,
            log: dir.join("3.log"),
            pid: None,
            outputs: Default::default(),
            hosts: Vec::new(),
        };
        requeue(&cut, &ctx).await;
        let pending = queue.pending("app").expect("queued again");
        assert_eq!(pending.trigger, Trigger::Recovery);
        match events.try_recv() {
            Ok(RunEvent::Queued(r)) => assert_eq!(r.trigger, Trigger::Recovery),
            other => panic!("no Queued event: {other:?}"),
        }
        assert!(
            matches!(rx.try_recv(), Ok(Msg::Queued)),
            "executor not woken"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[cfg(test)]
mod state_tests {
    use super::ProjectState;

    #[test]
    fn project_states_keep_their_words() {
        for (state, word) in [
            (ProjectState::Idle, "idle"),
            (ProjectState::Running, "running"),
            (ProjectState::Pending, "pending"),
            (ProjectState::Recovering, "recovering"),
            (ProjectState::Interrupted, "interrupted"),
            (ProjectState::Starting, "starting"),
        ] {
            assert_eq!(state.to_string(), word);
            assert_eq!(
                serde_json::to_string(&state).unwrap(),
                format!("\"{word}\"")
            );
            let back: ProjectState = serde_json::from_str(&format!("\"{word}\"")).unwrap();
            assert_eq!(back, state);
        }
    }
}
