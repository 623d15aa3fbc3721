//! The executor: one task that owns which project is running, starts runs
//! from the durable queue — one per project, at most `parallel` at once —
//! at start hands runs a previous daemon did not see finish to
//! [`crate::run::recovery`], and on shutdown gives running deploys
//! `shutdown_grace` before interrupting them.
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
use crate::run::lifecycle::{Caller, Ended, Lifecycle, NotRun, blocking, note};
use crate::run::lock;
use crate::run::recovery;
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

pub(super) enum Msg {
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
pub(super) struct Cancelling {
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
        lifecycle.queued(req).await;
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
pub(super) struct RunCtx {
    pub(super) queue: Arc<Queue>,
    /// Carries out each run; its history is the daemon's.
    pub(super) lifecycle: Arc<Lifecycle>,
    pub(super) tx: mpsc::UnboundedSender<Msg>,
    pub(super) stop: watch::Receiver<bool>,
}

impl RunCtx {
    /// Queues `req` ([`enqueue`]).
    pub(super) async fn enqueue(&self, req: DeployRequest) -> io::Result<()> {
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
            spawn_run(
                settings,
                req,
                cancelled,
                self.shared.clone(),
                self.guard.clone(),
            );
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
                recovery::recover_one(&name, runs, &lock_path, &shared).await;
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

/// Resolves once `stop` turns true.
pub(super) async fn stopped(mut stop: watch::Receiver<bool>) {
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

/// Starts the task of one run. Apart from `start_ready`, which every
/// wake-up of the executor calls, idle daemon included: building the task
/// takes a large stack frame (the run's future and tokio's cell around it,
/// which the stack probe touches page by page), needed only when a run
/// starts.
#[inline(never)]
fn spawn_run(
    settings: Project,
    req: DeployRequest,
    cancelled: watch::Receiver<bool>,
    shared: RunCtx,
    guard: Option<Guard>,
) {
    tokio::spawn(async move {
        let _guard = guard;
        let name = settings.name.clone();
        run_one(settings, req, cancelled, &shared).await;
        let _ = shared.tx.send(Msg::Done { project: name });
    });
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
    // Boxed: a run's future is tens of KB (the script, the health check,
    // a fleet's rollout), and unboxed it made this task, and the stack
    // frame of `start_ready` that spawns it, that large: 64 KB of stack,
    // probed page by page, resident in every idle daemon.
    let run = Box::pin(lifecycle.run(&project, req, shared.stop.clone(), cancel, &mut caller));
    let ended = match run.await {
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
        recovery::requeue(&run, shared).await;
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
