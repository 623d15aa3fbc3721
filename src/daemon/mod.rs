//! `deployd serve`: wires the queue, history, executor, HTTP listener and
//! control socket together, and handles signals — SIGTERM/SIGINT stop
//! gracefully, SIGHUP reloads the config (an invalid one is refused).

pub(crate) mod control;

use std::sync::Arc;

use anyhow::Context;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use crate::config::{self, Config};
use crate::fsutil;
use crate::http::{self, App};
use crate::intake::ci_gate;
use crate::notify::outbox::{self, Outbox};
use crate::run::events::{Bus, Publisher};
use crate::run::executor;
use crate::run::executor::Executor;
use crate::run::lifecycle::Lifecycle;
use crate::run::lock::StateLock;
use crate::state::Shared;
use crate::state::metrics;
use crate::store::deliveries::Deliveries;
use crate::store::history::History;
use crate::store::queue::Queue;
use crate::store::{gates, queue};
use crate::systemd;
use crate::web;

/// Runs the daemon until SIGTERM or SIGINT.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let config = Arc::new(config);
    for w in &config.warnings {
        tracing::warn!("{w}");
    }
    let s = &config.server;
    fsutil::create_top_dirs(&s.state_dir, &s.log_dir)?;
    // Before anything reads the queue: a second daemon on this state_dir
    // would run the same requests again.
    let _state_lock = StateLock::acquire(&s.state_dir, &s.control_socket)?;
    let queue = Arc::new(
        Queue::open(&s.state_dir)
            .with_context(|| format!("cannot open the queue in {}", s.state_dir.display()))?,
    );
    let history = Arc::new(History::new(&s.state_dir, &s.log_dir));
    let deliveries =
        Arc::new(Deliveries::open(&s.state_dir).context("cannot read the delivery ids")?);
    // Ids and body MACs of accepted deliveries also live in queued requests
    // and run records (read off the runtime's thread).
    {
        let (history, queue, deliveries) = (history.clone(), queue.clone(), deliveries.clone());
        let state_dir = s.state_dir.clone();
        let gated: Vec<String> = config
            .projects
            .values()
            .filter(|p| !p.after_ci.is_empty())
            .map(|p| p.name.clone())
            .collect();
        tokio::task::spawn_blocking(move || {
            for project in history.projects() {
                let runs = history.list(&project, None).unwrap_or_default();
                for r in &runs {
                    deliveries.remember(r.request.deliveries());
                }
                if let Some(p) = queue.pending(&project) {
                    deliveries.remember(p.deliveries());
                }
            }
            // And in pushes that wait for their CI.
            for project in gated {
                let g: std::io::Result<gates::Gate<queue::Request>> =
                    gates::load(&state_dir, &project);
                if let Ok(Some(w)) = g.as_ref().map(gates::Gate::waiting) {
                    deliveries.remember(w.request.deliveries());
                }
            }
        })
        .await?;
    }

    // The control socket first: it is what tells a second daemon on the
    // same config that one is already running.
    let control = control::bind(&s.control_socket)
        .await
        .with_context(|| format!("control socket {}", s.control_socket.display()))?;
    let listener = match systemd::activated_listener().context("LISTEN_FDS")? {
        Some(l) => tokio::net::TcpListener::from_std(l)?,
        None => tokio::net::TcpListener::bind(s.listen)
            .await
            .with_context(|| format!("cannot listen on {}", s.listen))?,
    };

    let bus = Bus::new();
    let lifecycle = Arc::new(Lifecycle {
        history: history.clone(),
        state_dir: s.state_dir.clone(),
        events: Publisher::Bus(bus.clone()),
    });
    let (config_tx, config_rx) = watch::channel(config.clone());
    let (exec, handle) = Executor::new(config_rx, queue.clone(), lifecycle.clone());
    let shared = Arc::new(Shared::new(
        config_tx,
        queue,
        history,
        deliveries,
        handle.clone(),
        lifecycle,
        bus.clone(),
    ));
    let (stop_tx, stop_rx) = watch::channel(false);
    // The status page's run counts: from every run's end, direct ones too.
    if config.web.is_some() {
        tokio::spawn(metrics::count_runs(
            shared.metrics.clone(),
            bus.subscribe(),
            stop_rx.clone(),
        ));
    }
    // Notifications and commit statuses: the outbox writes what each run
    // event owes to disk as the event comes, and sends it in the background
    // with the config in force (reloads included).
    let c = config.clone();
    let outbox = Arc::new(
        tokio::task::spawn_blocking(move || Outbox::open(c))
            .await?
            .with_context(|| format!("cannot open the outbox in {}", s.state_dir.display()))?,
    );
    {
        let shared = shared.clone();
        outbox.follow_config(move || shared.config());
    }
    // The events of direct runs made while no daemon ran are published now,
    // once, each recorded by the outbox before its spool file goes. Nothing
    // publishes before this (the executor and the listeners start below),
    // so the outbox follows the bus from here on and misses nothing.
    let spooled = {
        let (bus, dir) = (bus.clone(), s.state_dir.clone());
        let (outbox, history) = (outbox.clone(), shared.history.clone());
        tokio::task::spawn_blocking(move || {
            bus.replay(&dir, |event| {
                crate::fault::point_blocking(crate::fault::BEFORE_OUTBOX);
                owe(&outbox, &history, event)
            })
        })
        .await?
    };
    match spooled {
        Ok(0) => {}
        Ok(n) => tracing::info!("published {n} run event(s) of runs made without the daemon"),
        Err(e) => tracing::warn!("cannot read the spooled run events: {e}"),
    }
    tokio::spawn(outbox::follow(
        bus.subscribe(),
        outbox.clone(),
        shared.history.clone(),
    ));
    if !outbox.is_empty() {
        tracing::info!("outbox: {} notification(s) left to send", outbox.len());
        outbox.start_lanes();
    }
    let app = Arc::new(App::new(shared.clone()));
    let web_task = match &config.web {
        Some(web) => Some(start_web(web, &shared, &stop_rx).await?),
        None => None,
    };
    let executor_task = tokio::spawn(exec.run(stop_rx.clone()));
    let control_task = tokio::spawn(control::serve(control, shared.clone()));
    // Pushes that wait for their CI time out here; armed only while one waits.
    tokio::spawn(ci_gate::expiry(shared.clone(), stop_rx.clone()));
    // Catch-up with the forge: once now; a timer only for pull mode.
    tokio::spawn(crate::intake::catchup::run(shared.clone(), stop_rx.clone()));
    // Installed here, before READY: a SIGHUP that arrived before the
    // handler was would take its default action and end the daemon.
    let installed = Signals {
        term: signal(SignalKind::terminate()).context("cannot handle SIGTERM")?,
        int: signal(SignalKind::interrupt()).context("cannot handle SIGINT")?,
        hup: signal(SignalKind::hangup()).context("cannot handle SIGHUP")?,
    };
    tokio::spawn(signals(installed, shared, stop_tx));
    if systemd::enabled() {
        tokio::spawn(status_loop(handle.watch(), stop_rx.clone()));
    }

    tracing::info!(
        "listening on http://{} ({} project(s); control socket {})",
        listener.local_addr()?,
        config.projects.len(),
        s.control_socket.display()
    );
    systemd::notify("READY=1\nSTATUS=idle");

    let mut stop = stop_rx.clone();
    http::run(listener, app, async move {
        let _ = stop.wait_for(|s| *s).await;
    })
    .await;
    systemd::notify("STOPPING=1\nSTATUS=stopping: finishing running deploys");
    let _ = executor_task.await;
    if let Some(t) = web_task {
        let _ = t.await;
    }
    control_task.abort();
    // Off the runtime's thread, as every file operation of the daemon.
    let socket = config.server.control_socket.clone();
    crate::run::lifecycle::blocking(move || {
        let _ = std::fs::remove_file(&socket);
    })
    .await;
    tracing::info!("stopped");
    Ok(())
}

/// Writes what a spooled run event owes (its notifications and status
/// reports) to the outbox, durably, as [`outbox::follow`] does for live
/// events. Blocking.
fn owe(
    outbox: &Outbox,
    history: &History,
    event: &crate::run::events::RunEvent,
) -> std::io::Result<()> {
    use crate::run::events::RunEvent;
    let (RunEvent::Started(run) | RunEvent::Finished(run)) = event else {
        return Ok(());
    };
    match crate::notify::document_for(run, history) {
        Some(doc) => outbox.add(&doc).map(drop),
        None => Ok(()),
    }
}

/// Binds the status page's listener and starts serving it.
async fn start_web(
    web: &config::Web,
    shared: &Arc<Shared>,
    stop: &watch::Receiver<bool>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(web.listen)
        .await
        .with_context(|| format!("cannot listen on {} (web.listen)", web.listen))?;
    tracing::info!(
        "status page on http://{}{}",
        listener.local_addr()?,
        web.public_url
            .as_ref()
            .map(|u| format!(" (public_url {u})"))
            .unwrap_or_default()
    );
    let site = Arc::new(web::Site::new(web.clone(), shared.clone(), stop.clone()));
    Ok(tokio::spawn(web::run(listener, site)))
}

/// The signals the daemon handles, installed before it says it is ready.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

async fn signals(
    Signals {
        mut term,
        mut int,
        mut hup,
    }: Signals,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
) {
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                let _ = shared.reload().await;
            }
        }
    }
    tracing::info!("stopping: no new deliveries; finishing requests in flight");
    let _ = stop.send(true);
}

/// Keeps systemd's STATUS= line current and pings the watchdog at half its
/// interval. Only started under systemd. It wakes when the executor's state
/// changes and for the pings, and neither reads a file: an idle daemon
/// without a watchdog never wakes at all.
async fn status_loop(
    mut live: watch::Receiver<Vec<executor::ProjectStatus>>,
    mut stop: watch::Receiver<bool>,
) {
    let watchdog = systemd::watchdog_interval();
    let mut ping = watchdog.map(|every| {
        let mut i = tokio::time::interval(every);
        i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        i
    });
    let mut last = String::new();
    loop {
        let status = describe(&live.borrow_and_update());
        if status != last {
            systemd::notify(&format!("STATUS={status}"));
            last = status;
        }
        tokio::select! {
            _ = tick(&mut ping) => systemd::notify("WATCHDOG=1"),
            changed = live.changed() => if changed.is_err() {
                return;
            },
            _ = stop.changed() => return,
        }
    }
}

/// The next tick of `interval`; never, without one.
async fn tick(interval: &mut Option<tokio::time::Interval>) {
    match interval {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// `idle`, `deploying app 1a2b3c4d`, `… , 2 pending`.
pub fn describe(projects: &[executor::ProjectStatus]) -> String {
    let running: Vec<String> = projects
        .iter()
        .filter_map(|p| p.running.as_ref())
        .map(|r| format!("deploying {} {}", r.project(), r.short_sha()))
        .collect();
    let pending = projects.iter().filter(|p| p.pending.is_some()).count();
    let mut parts = running;
    if pending > 0 {
        parts.push(format!("{pending} pending"));
    }
    if parts.is_empty() {
        "idle".into()
    } else {
        parts.join(", ")
    }
}
