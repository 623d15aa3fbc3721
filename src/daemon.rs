//! `deployd serve`: wires the queue, history, executor, HTTP listener and
//! control socket together, and handles signals — SIGTERM/SIGINT stop
//! gracefully, SIGHUP reloads the config (an invalid one is refused).

use std::sync::Arc;

use anyhow::Context;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use crate::config::{self, Config};
use crate::deliveries::Deliveries;
use crate::executor::{Executor, Handle};
use crate::fsutil;
use crate::history::History;
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
    fsutil::create_dir(&s.state_dir, 0o750)
        .with_context(|| format!("cannot create state_dir {}", s.state_dir.display()))?;
    fsutil::create_dir(&s.log_dir, 0o750)
        .with_context(|| format!("cannot create log_dir {}", s.log_dir.display()))?;
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
    let app = Arc::new(App::new(config.clone(), queue, deliveries, handle.clone()));
    let (stop_tx, stop_rx) = watch::channel(false);
    let executor_task = tokio::spawn(exec.run(stop_rx.clone()));
    let control_task = tokio::spawn(control::serve(control, app.clone(), history));
    tokio::spawn(signals(app.clone(), stop_tx));
    tokio::spawn(status_loop(handle.clone(), stop_rx.clone()));

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

async fn signals(app: Arc<App>, stop: watch::Sender<bool>) {
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return;
    };
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
    let loaded = tokio::task::spawn_blocking(move || config::load(&path)).await;
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

/// Keeps systemd's STATUS= line current (on every run event, and every few
/// seconds for pending requests) and pings the watchdog at half its interval.
async fn status_loop(handle: Handle, mut stop: watch::Receiver<bool>) {
    let watchdog = systemd::watchdog_interval();
    let tick = watchdog
        .unwrap_or(std::time::Duration::from_secs(5))
        .min(std::time::Duration::from_secs(5));
    let mut events = handle.subscribe();
    let mut next_ping = tokio::time::Instant::now();
    let mut last = String::new();
    let mut settle = false;
    loop {
        let status = describe(&handle.status().await);
        if status != last {
            systemd::notify(&format!("STATUS={status}"));
            last = status;
        }
        if watchdog.is_some() && tokio::time::Instant::now() >= next_ping {
            systemd::notify("WATCHDOG=1");
            next_ping = tokio::time::Instant::now() + tick;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(next_ping.max(tokio::time::Instant::now() + std::time::Duration::from_millis(10))), if watchdog.is_some() => {}
            _ = tokio::time::sleep(tick), if watchdog.is_none() => {}
            _ = events.recv() => settle = true,
            _ = stop.changed() => return,
        }
        if settle {
            // The executor updates its state right after the event.
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            settle = false;
        }
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
