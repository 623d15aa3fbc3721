//! `deployd serve`: wires the queue, history, executor, HTTP listener and
//! control socket together, and handles signals — SIGTERM/SIGINT stop
//! gracefully, SIGHUP reloads the config (an invalid one is refused).

use std::sync::Arc;

use anyhow::Context;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use crate::config::{self, Config};
use crate::deliveries::Deliveries;
use crate::executor::Executor;
use crate::fsutil;
use crate::history::History;
use crate::lock::StateLock;
use crate::outbox::{self, Outbox};
use crate::queue::Queue;
use crate::server::{self, App};
use crate::systemd;
use crate::{control, executor};

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
    // Ids of accepted deliveries also live in queued requests and run records.
    for project in history.projects() {
        let runs = history.list(&project, None).unwrap_or_default();
        for r in &runs {
            deliveries.remember(
                std::iter::once(&r.delivery)
                    .chain(&r.coalesced)
                    .map(String::as_str),
            );
        }
        if let Some(p) = queue.pending(&project) {
            deliveries.remember(
                std::iter::once(&p.delivery)
                    .chain(&p.coalesced)
                    .map(String::as_str),
            );
        }
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

    let (exec, handle) = Executor::new(config.clone(), queue.clone(), history.clone());
    // Before the executor runs: recovery's events are notified too.
    let c = config.clone();
    let outbox = Arc::new(
        tokio::task::spawn_blocking(move || Outbox::open(c))
            .await?
            .with_context(|| format!("cannot open the outbox in {}", s.state_dir.display()))?,
    );
    tokio::spawn(outbox::follow(
        handle.subscribe(),
        outbox.clone(),
        history.clone(),
    ));
    let app = Arc::new(App::new(config.clone(), queue, deliveries, handle.clone()));
    // Messages are sent with the config in force, reloads included.
    let live = app.clone();
    outbox.follow_config(move || live.config());
    if !outbox.is_empty() {
        tracing::info!("outbox: {} notification(s) left to send", outbox.len());
        outbox.start_lanes();
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let executor_task = tokio::spawn(exec.run(stop_rx.clone()));
    let control_task = tokio::spawn(control::serve(control, app.clone(), history));
    // Installed here, before READY: a SIGHUP that arrived before the
    // handler was would take its default action and end the daemon.
    let installed = Signals {
        term: signal(SignalKind::terminate()).context("cannot handle SIGTERM")?,
        int: signal(SignalKind::interrupt()).context("cannot handle SIGINT")?,
        hup: signal(SignalKind::hangup()).context("cannot handle SIGHUP")?,
    };
    tokio::spawn(signals(installed, app.clone(), stop_tx));
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
    server::run(listener, app, async move {
        let _ = stop.wait_for(|s| *s).await;
    })
    .await;
    systemd::notify("STOPPING=1\nSTATUS=stopping: finishing running deploys");
    let _ = executor_task.await;
    control_task.abort();
    let _ = std::fs::remove_file(&config.server.control_socket);
    tracing::info!("stopped");
    Ok(())
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
    app: Arc<App>,
    stop: watch::Sender<bool>,
) {
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                let _ = reload(&app).await;
            }
        }
    }
    tracing::info!("stopping: no new deliveries; finishing requests in flight");
    let _ = stop.send(true);
}

/// Reloads the config file the daemon was started with (SIGHUP, or
/// `deployd reload` over the control socket). The new config replaces the
/// running one whole, or, when it is invalid, is refused and the running one
/// kept. Returns what to tell the operator: the `config reloaded` line, or
/// the config's error (file:line: key: what is wrong).
pub async fn reload(app: &App) -> Result<String, String> {
    // One reload at a time: two overlapping ones (a SIGHUP and a `deployd
    // reload`) could otherwise install the older file's config last.
    static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _one = ONE_AT_A_TIME.lock().await;
    systemd::reloading();
    let path = app.config().path.clone();
    let loaded = tokio::task::spawn_blocking(move || {
        config::load(&path).and_then(|c| c.require_projects().map(|()| c))
    })
    .await;
    let outcome = match loaded {
        Ok(Ok(new)) => {
            let old = app.config();
            let (n, o) = (&new.server, &old.server);
            let mut later = Vec::new();
            for (key, changed) in [
                ("listen", n.listen != o.listen),
                ("state_dir", n.state_dir != o.state_dir),
                ("log_dir", n.log_dir != o.log_dir),
                ("control_socket", n.control_socket != o.control_socket),
                ("max_connections", n.max_connections != o.max_connections),
            ] {
                if changed {
                    later.push(key);
                }
            }
            if !later.is_empty() {
                tracing::warn!(
                    "reload: a change of server.{} takes effect at the next restart",
                    later.join(", server.")
                );
            }
            for w in &new.warnings {
                tracing::warn!("{w}");
            }
            let done = format!("config reloaded: {} project(s)", new.projects.len());
            tracing::info!("{done}");
            let new = Arc::new(new);
            app.set_config(new.clone());
            app.executor.reload(new);
            Ok(done)
        }
        Ok(Err(e)) => {
            tracing::error!("reload refused, keeping the running config: {e}");
            Err(format!("reload refused, keeping the running config: {e}"))
        }
        Err(e) => {
            tracing::error!("reload failed: {e}");
            Err(format!("reload failed: {e}"))
        }
    };
    systemd::notify("READY=1");
    outcome
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
        .map(|r| format!("deploying {} {}", r.project, r.short_sha()))
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
