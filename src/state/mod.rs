//! What the daemon's parts share: the live config, the queue, the run
//! records, the remembered deliveries, the executor's handle, the run
//! lifecycle and its events, and the metrics. `daemon.rs` builds it once; the HTTP server,
//! the control socket and the signal handlers each hold an `Arc` of it, so
//! none of them reaches another's parts through a third.
//!
//! The config lives here once, as a `watch` of `Arc<Config>`: a reload
//! ([`Shared::set_config`]) swaps it in one step, and every part reads the
//! same current version. The executor follows it through
//! the receiver of the same `watch`, which it gets before this exists.
//! [`Shared::reload`] is the one reload, for SIGHUP and `deployd reload`
//! alike.

pub(crate) mod metrics;

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::watch;

use crate::config::{self, Config};
use crate::run::events::Bus;
use crate::run::executor::{self, Cancelled, Handle};
use crate::run::lifecycle::{Lifecycle, blocking};
use crate::state::metrics::Metrics;
use crate::store::deliveries::Deliveries;
use crate::store::gates::Gates;
use crate::store::history::{History, Run, rollback_target};
use crate::store::queue::{DeployRequest, Queue};
use crate::systemd;

/// The daemon's shared state.
pub(crate) struct Shared {
    /// The config in force; replaced whole on reload, so whoever holds an
    /// `Arc` of it sees one consistent version from start to end.
    config: watch::Sender<Arc<Config>>,
    /// The durable queue requests go to before they are acknowledged.
    pub(crate) queue: Arc<Queue>,
    /// The run records.
    pub(crate) history: Arc<History>,
    /// Delivery ids and body MACs already accepted.
    pub(crate) deliveries: Arc<Deliveries>,
    /// To tell the executor a request is queued, and ask for status.
    pub(crate) executor: Handle,
    /// Announces queued requests; carries out runs (through the executor).
    pub(crate) lifecycle: Arc<Lifecycle>,
    /// The run events, for whatever reacts to runs.
    pub(crate) events: Bus,
    /// Every project's CI gate: pushes waiting for their CI (see `gate.rs`).
    pub(crate) gates: Gates<DeployRequest>,
    /// Counted by the HTTP side (deliveries) and from the run events (runs),
    /// served by the status page.
    pub(crate) metrics: Arc<Metrics>,
    /// Set once shutdown began: new deliveries and deploys are refused.
    stopping: AtomicBool,
    /// Held during a reload: two overlapping ones (a SIGHUP and a `deployd
    /// reload`) could otherwise install the older file's config last.
    reloading: tokio::sync::Mutex<()>,
}

impl Shared {
    /// Shares the parts; `config` is the sender whose receivers the
    /// executor already follows.
    pub(crate) fn new(
        config: watch::Sender<Arc<Config>>,
        queue: Arc<Queue>,
        history: Arc<History>,
        deliveries: Arc<Deliveries>,
        executor: Handle,
        lifecycle: Arc<Lifecycle>,
        events: Bus,
    ) -> Shared {
        // Under the state_dir the daemon started with, like the queue: a
        // change takes effect at the next restart.
        let gates = Gates::new(&config.borrow().server.state_dir);
        Shared {
            config,
            queue,
            history,
            deliveries,
            executor,
            lifecycle,
            events,
            gates,
            metrics: Arc::new(Metrics::new()),
            stopping: AtomicBool::new(false),
            reloading: tokio::sync::Mutex::new(()),
        }
    }

    /// The config now in force.
    pub(crate) fn config(&self) -> Arc<Config> {
        self.config.borrow().clone()
    }

    /// Follows the config in force: what waits for a reload without a
    /// timer (catch-up's intervals, `intake/catchup.rs`).
    pub(crate) fn config_changes(&self) -> watch::Receiver<Arc<Config>> {
        self.config.subscribe()
    }

    /// Puts `config` in force for every part at once, from now on.
    pub(crate) fn set_config(&self, config: Arc<Config>) {
        self.config.send_replace(config);
    }

    /// Reloads the config file the daemon was started with (SIGHUP, or
    /// `deployd reload` over the control socket). The new config replaces the
    /// running one whole, or, when it is invalid, is refused and the running one
    /// kept. The new config is in force for every part at once
    /// ([`Shared::set_config`]). Returns what to tell the operator: the `config reloaded` line, or
    /// the config's error (file:line: key: what is wrong).
    pub(crate) async fn reload(&self) -> Result<String, String> {
        // One reload at a time: two overlapping ones (a SIGHUP and a `deployd
        // reload`) could otherwise install the older file's config last.
        let _one = self.reloading.lock().await;
        systemd::reloading();
        let path = self.config().path.clone();
        let loaded = tokio::task::spawn_blocking(move || {
            config::load(&path).and_then(|c| c.require_projects().map(|()| c))
        })
        .await;
        let outcome = match loaded {
            Ok(Ok(new)) => {
                let old = self.config();
                let notes = restart_notes(&old, &new);
                for note in &notes {
                    tracing::warn!("reload: {note}");
                }
                for w in &new.warnings {
                    tracing::warn!("{w}");
                }
                let mut done = format!("config reloaded: {} project(s)", new.projects.len());
                tracing::info!("{done}");
                // Said to whoever ran `deployd reload` too, who reads no log.
                for note in &notes {
                    done.push_str(&format!("; {note}"));
                }
                self.set_config(Arc::new(new));
                Ok(done)
            }
            Ok(Err(e)) => {
                tracing::error!("reload refused, the running config is kept: {e}");
                Err(format!("reload refused, the running config is kept: {e}"))
            }
            Err(e) => {
                tracing::error!("reload failed: {e}");
                Err(format!("reload failed: {e}"))
            }
        };
        systemd::notify("READY=1");
        outcome
    }

    /// Queues `req` durably, announces it ([`RunEvent::Queued`]) and tells
    /// the executor, through the executor's one enqueue: how every request
    /// enters the queue (a push, a green CI gate, `deployd deploy` through
    /// the control socket, the status page's deploy button). Returns once
    /// the request is on disk.
    ///
    /// [`RunEvent::Queued`]: crate::run::events::RunEvent::Queued
    pub(crate) async fn enqueue(&self, req: DeployRequest) -> io::Result<()> {
        self.executor.enqueue(req).await
    }

    /// Cancels `project`'s running run, or with `pending` drops its
    /// pending request, as `who` asked: `deployd cancel` through the control
    /// socket, and the status page's Cancel button. With `run`, only if that
    /// is the run going on (a page may be older than the run it shows). The
    /// run is recorded `cancelled` once its script is stopped; its log says
    /// who asked, before the script's last lines. `Err` says, in words, why nothing was cancelled.
    pub(crate) async fn cancel(
        &self,
        project: &str,
        pending: bool,
        run: Option<u64>,
        who: &str,
    ) -> Result<Cancelled, String> {
        // The executor's handle writes the note before it stops the script.
        match self.executor.cancel(project, pending, run, who).await {
            Some(c) => Ok(c),
            None if pending => Err(format!("{project} has no pending request")),
            None => Err(match run {
                Some(id) => format!("run {id} of {project} is not running any more"),
                None => format!("{project} has no running run"),
            }),
        }
    }

    /// The rollback `who` asks for (`deployd rollback`, the status page's
    /// Roll back button): a request with trigger `rollback` for the commit
    /// of run `to`, or by default of the last successful run before the
    /// current one ([`rollback_target`]), and the run whose commit it
    /// deploys. The caller queues it ([`Shared::enqueue`]). `Err` says, in
    /// words, why there is nothing to roll back to.
    pub(crate) async fn rollback(
        &self,
        project: &str,
        to: Option<u64>,
        who: &str,
    ) -> Result<(Run, DeployRequest), String> {
        let (history, p) = (self.history.clone(), project.to_string());
        let target = blocking(move || {
            let runs = history.list(&p, None).map_err(|e| e.to_string())?;
            rollback_target(&runs, to, None)
        })
        .await?;
        let req = executor::rollback_request(&target, self.queue.next_seq(), who);
        Ok((target, req))
    }

    /// Says shutdown began.
    pub(crate) fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    /// Whether shutdown began.
    pub(crate) fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }
}

/// What a reload from `old` to `new` leaves for the next restart: the
/// listeners, directories, limits and connection deadlines the daemon set
/// up when it started.
fn restart_notes(old: &Config, new: &Config) -> Vec<String> {
    let (n, o) = (&new.server, &old.server);
    let web_listen = |c: &Config| c.web.as_ref().map(|w| w.listen);
    let mut later = Vec::new();
    for (key, changed) in [
        ("server.listen", n.listen != o.listen),
        ("server.state_dir", n.state_dir != o.state_dir),
        ("server.log_dir", n.log_dir != o.log_dir),
        (
            "server.control_socket",
            n.control_socket != o.control_socket,
        ),
        (
            "server.max_connections",
            n.max_connections != o.max_connections,
        ),
        // Set on each listener's connections when it starts (hyper's
        // header deadline, the idle keep-alive check). `request_timeout`,
        // the body's deadline, is read for each request: a reload applies it.
        (
            "server.header_timeout",
            n.header_timeout != o.header_timeout,
        ),
        ("server.idle_timeout", n.idle_timeout != o.idle_timeout),
        (
            "web.listen",
            old.web.is_some() && new.web.is_some() && web_listen(old) != web_listen(new),
        ),
    ] {
        if changed {
            later.push(key);
        }
    }
    let mut notes = Vec::new();
    if !later.is_empty() {
        notes.push(format!(
            "a change of {} takes effect at the next restart",
            later.join(", ")
        ));
    }
    match (&old.web, &new.web) {
        (None, Some(_)) => {
            notes.push("[web] was added: the status page starts at the next restart".into())
        }
        (Some(_), None) => {
            notes.push("[web] was removed: the status page stays up until the next restart".into())
        }
        _ => {}
    }
    notes
}
