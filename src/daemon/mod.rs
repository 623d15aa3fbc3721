//! `deployd serve`: wires the queue, history, executor, HTTP listener and
//! control socket together, and handles signals — SIGTERM/SIGINT stop
//! gracefully, SIGHUP reloads the config (an invalid one is refused).
//!
//! [`serve`] is a sequence of named steps: open the state (dirs, the state
//! lock, the queue, history and deliveries), remember what was accepted
//! before, bind the sockets, share the parts, start the outbox, start the
//! executor, start the listeners, handle signals, wait for the stop, drain.
//! Every task it starts holds a [`shutdown::Shutdown`] and is joined in the
//! drain ([`shutdown`] says how, in two phases).

pub(crate) mod control;
pub(crate) mod shutdown;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::{TcpListener, UnixListener};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{self, Config};
use crate::fsutil;
use crate::http::{self, App};
use crate::intake::ci_gate;
use crate::notify::outbox::{self, Outbox};
use crate::run::events::{Bus, Publisher};
use crate::run::executor;
use crate::run::executor::Executor;
use crate::run::lifecycle::{Lifecycle, blocking};
use crate::run::lock::StateLock;
use crate::state::Shared;
use crate::state::metrics;
use crate::store::deliveries::Deliveries;
use crate::store::history::History;
use crate::store::queue::Queue;
use crate::store::{gates, queue};
use crate::systemd;
use crate::web;
use shutdown::{Shutdown, Tasks, Trigger};

/// Runs the daemon until SIGTERM or SIGINT, then drains: running deploys get
/// `shutdown_grace`, requests in flight their deadline, and every task ends
/// before this returns.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let config = Arc::new(config);
    for w in &config.warnings {
        tracing::warn!("{w}");
    }
    let state = open_state(&config)?;
    remember_deliveries(&config, &state).await?;
    let sockets = bind(&config.server).await?;
    let (shared, exec) = share(&config, &state);
    let phases = Phases::default();
    start_outbox(&config, &shared, &phases.reporting).await?;
    let executor = tokio::spawn(exec.run(phases.intake.shutdown()));
    let addr = sockets.hooks.local_addr()?;
    start_listeners(sockets, &config, &shared, &phases).await?;
    handle_signals(&shared, &phases.intake)?;
    if systemd::enabled() {
        let sd = phases.reporting.shutdown();
        tokio::spawn(status_loop(shared.executor.watch(), sd));
    }
    tracing::info!(
        "listening on http://{addr} ({} project(s); control socket {})",
        config.projects.len(),
        config.server.control_socket.display()
    );
    systemd::notify("READY=1\nSTATUS=idle");
    phases.intake.shutdown().recv().await;
    drain(&shared, executor, phases).await;
    drop(state);
    tracing::info!("stopped");
    Ok(())
}

/// The two phases of the shutdown (see [`shutdown`]).
#[derive(Default)]
struct Phases {
    /// What takes in and carries out work: begun by the signal.
    intake: Tasks,
    /// What reports on runs: begun once every run ended, so it sees the
    /// runs' last events.
    reporting: Tasks,
}

/// What the daemon keeps open on its state_dir for as long as it runs.
struct State {
    /// Held until [`serve`] returns: a second daemon on this state_dir
    /// would run the same requests again.
    _lock: StateLock,
    queue: Arc<Queue>,
    history: Arc<History>,
    deliveries: Arc<Deliveries>,
}

/// Creates the top directories, takes the state lock (before anything
/// reads the queue), opens the queue and the remembered deliveries. At
/// start, before any task: blocking here stalls nothing.
fn open_state(config: &Config) -> anyhow::Result<State> {
    let s = &config.server;
    fsutil::create_top_dirs(&s.state_dir, &s.log_dir)?;
    let lock = StateLock::acquire(&s.state_dir, &s.control_socket)?;
    let queue = Arc::new(
        Queue::open(&s.state_dir)
            .with_context(|| format!("cannot open the queue in {}", s.state_dir.display()))?,
    );
    let history = Arc::new(History::new(&s.state_dir, &s.log_dir));
    let deliveries =
        Arc::new(Deliveries::open(&s.state_dir).context("cannot read the delivery ids")?);
    Ok(State {
        _lock: lock,
        queue,
        history,
        deliveries,
    })
}

/// Remembers the ids and body MACs of accepted deliveries that also live in
/// queued requests, run records and pushes waiting for their CI, so their
/// redeliveries are duplicates. Read off the runtime's thread.
async fn remember_deliveries(config: &Config, state: &State) -> anyhow::Result<()> {
    let (history, queue, deliveries) = (
        state.history.clone(),
        state.queue.clone(),
        state.deliveries.clone(),
    );
    let state_dir = config.server.state_dir.clone();
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
        for project in gated {
            let g: std::io::Result<gates::Gate<queue::DeployRequest>> =
                gates::load(&state_dir, &project);
            if let Ok(Some(w)) = g.as_ref().map(gates::Gate::waiting) {
                deliveries.remember(w.request.deliveries());
            }
        }
    })
    .await?;
    Ok(())
}

/// The daemon's sockets, bound before anything is started.
struct Sockets {
    control: UnixListener,
    hooks: TcpListener,
}

/// Binds the control socket first (it is what tells a second daemon on the
/// same config that one is already running), then the webhook listener
/// (handed by systemd, or bound here).
async fn bind(s: &config::Server) -> anyhow::Result<Sockets> {
    let control = control::bind(&s.control_socket)
        .await
        .with_context(|| format!("control socket {}", s.control_socket.display()))?;
    let hooks = match systemd::activated_listener().context("LISTEN_FDS")? {
        Some(l) => TcpListener::from_std(l)?,
        None => TcpListener::bind(s.listen)
            .await
            .with_context(|| format!("cannot listen on {}", s.listen))?,
    };
    Ok(Sockets { control, hooks })
}

/// The run lifecycle, the executor and the shared state over `state`; the
/// executor is started by the caller.
fn share(config: &Arc<Config>, state: &State) -> (Arc<Shared>, Executor) {
    let bus = Bus::new();
    let lifecycle = Arc::new(Lifecycle {
        history: state.history.clone(),
        state_dir: config.server.state_dir.clone(),
        events: Publisher::Bus(bus.clone()),
    });
    let (config_tx, config_rx) = watch::channel(config.clone());
    let (exec, handle) = Executor::new(config_rx, state.queue.clone(), lifecycle.clone());
    let shared = Arc::new(Shared::new(
        config_tx,
        state.queue.clone(),
        state.history.clone(),
        state.deliveries.clone(),
        handle,
        lifecycle,
        bus,
    ));
    (shared, exec)
}

/// Starts what reports on runs, before anything can publish a run event:
/// the status page's run counts, and the outbox (notifications and commit
/// statuses), which writes what each run event owes to disk as the event
/// comes and sends it in the background with the config in force. The
/// events of direct runs made while no daemon ran are published first,
/// once, each recorded by the outbox before its spool file goes.
async fn start_outbox(
    config: &Arc<Config>,
    shared: &Arc<Shared>,
    reporting: &Tasks,
) -> anyhow::Result<()> {
    let bus = &shared.events;
    if config.web.is_some() {
        // The run counts follow a plain signal; this task holds the
        // shutdown meanwhile.
        let sd = reporting.shutdown();
        let counts = metrics::count_runs(shared.metrics.clone(), bus.subscribe(), sd.signal());
        tokio::spawn(async move {
            counts.await;
            drop(sd);
        });
    }
    let c = config.clone();
    let dir = config.server.state_dir.clone();
    let outbox = Arc::new(
        blocking(move || Outbox::open(c))
            .await
            .with_context(|| format!("cannot open the outbox in {}", dir.display()))?,
    );
    {
        let shared = shared.clone();
        outbox.follow_config(move || shared.config());
    }
    let spooled = {
        let (bus, dir) = (bus.clone(), config.server.state_dir.clone());
        let (outbox, history) = (outbox.clone(), shared.history.clone());
        blocking(move || {
            bus.replay(&dir, |event| {
                crate::fault::point_blocking(crate::fault::BEFORE_OUTBOX);
                owe(&outbox, &history, event)
            })
        })
        .await
    };
    match spooled {
        Ok(0) => {}
        Ok(n) => tracing::info!("published {n} run event(s) of runs made without the daemon"),
        Err(e) => tracing::warn!("cannot read the spooled run events: {e}"),
    }
    // Subscribed after the replay, whose events the outbox recorded
    // already; nothing else publishes before this (the executor and the
    // listeners start later), so it misses nothing.
    outbox.hold_lanes(reporting.shutdown());
    tokio::spawn(outbox::follow(
        bus.subscribe(),
        outbox.clone(),
        shared.history.clone(),
        reporting.shutdown(),
    ));
    if !outbox.is_empty() {
        tracing::info!("outbox: {} notification(s) left to send", outbox.len());
        outbox.start_lanes();
    }
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

/// Starts the webhook listener, the status page (with `[web]`), the
/// control socket, the CI gate's timer and catch-up with the forge. The
/// listeners stop at the signal; the control socket goes on through the
/// drain (`deployd status` answers, a `deploy --wait` sees its run end).
async fn start_listeners(
    sockets: Sockets,
    config: &Config,
    shared: &Arc<Shared>,
    phases: &Phases,
) -> anyhow::Result<()> {
    let sd = phases.intake.shutdown();
    let app = Arc::new(App::new(shared.clone(), sd.guards()));
    tokio::spawn(async move {
        let mut stop = sd.clone();
        http::run(sockets.hooks, app, async move { stop.recv().await }).await;
        drop(sd);
    });
    if let Some(web) = &config.web {
        start_web(web, shared, phases.intake.shutdown()).await?;
    }
    tokio::spawn(control::serve(
        sockets.control,
        shared.clone(),
        phases.reporting.shutdown(),
    ));
    // Pushes that wait for their CI time out here; armed only while one waits.
    tokio::spawn(ci_gate::expiry(shared.clone(), phases.intake.shutdown()));
    // Catch-up with the forge: once now; a timer only for pull mode.
    tokio::spawn(crate::intake::catchup::run(
        shared.clone(),
        phases.intake.shutdown(),
    ));
    Ok(())
}

/// Binds the status page's listener and starts serving it until the
/// signal (its streams follow the same one).
async fn start_web(web: &config::Web, shared: &Arc<Shared>, sd: Shutdown) -> anyhow::Result<()> {
    let listener = TcpListener::bind(web.listen)
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
    let site = Arc::new(web::Site::new(web.clone(), shared.clone(), sd.signal()));
    tokio::spawn(async move {
        web::run(listener, site).await;
        drop(sd);
    });
    Ok(())
}

/// Installs the signal handlers and starts the task that follows them.
/// Installed before READY: a SIGHUP that arrived before the handler was
/// would take its default action and end the daemon.
fn handle_signals(shared: &Arc<Shared>, intake: &Tasks) -> anyhow::Result<()> {
    let installed = Signals {
        term: signal(SignalKind::terminate()).context("cannot handle SIGTERM")?,
        int: signal(SignalKind::interrupt()).context("cannot handle SIGINT")?,
        hup: signal(SignalKind::hangup()).context("cannot handle SIGHUP")?,
    };
    tokio::spawn(signals(
        installed,
        shared.clone(),
        intake.trigger(),
        intake.shutdown(),
    ));
    Ok(())
}

/// After the signal: the executor gives running deploys `shutdown_grace`
/// and ends once every run did; the rest of the first phase (requests in
/// flight, pushes being written on their accept tasks) gets the request
/// deadline, counted from the signal, as the listeners do; then what
/// reports on runs is stopped and joined. Last, the control socket's file
/// goes.
async fn drain(shared: &Shared, executor: JoinHandle<()>, phases: Phases) {
    systemd::notify("STOPPING=1\nSTATUS=stopping: finishing running deploys");
    let since = tokio::time::Instant::now();
    let _ = executor.await;
    let config = shared.config();
    let Phases {
        mut intake,
        mut reporting,
    } = phases;
    let deadline = config.server.request_timeout + Duration::from_secs(2);
    let left = deadline.saturating_sub(since.elapsed());
    if !intake.join(left.max(Duration::from_secs(1))).await {
        // Pushes being written on their accept tasks: bounded by the disk,
        // and each must end written or released, never cut off.
        tracing::warn!(
            "stopping: deliveries still being recorded after {}; waiting for them",
            humantime::format_duration(deadline)
        );
        intake.wait().await;
    }
    reporting.begin();
    if !reporting.join(REPORTING_GRACE).await {
        tracing::warn!(
            "stopping: notifications still being sent after {}; \
             they stay in the outbox for the next start",
            humantime::format_duration(REPORTING_GRACE)
        );
    }
    // Off the runtime's thread, as every file operation of the daemon.
    let socket = config.server.control_socket.clone();
    blocking(move || {
        let _ = std::fs::remove_file(&socket);
    })
    .await;
}

/// How long the drain waits for what reports on runs once every run ended:
/// a notification being sent (its message stays on disk until the target
/// took it, and is sent again at the next start), a control stream's last
/// lines.
const REPORTING_GRACE: Duration = Duration::from_secs(5);

/// The signals the daemon handles, installed before it says it is ready.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

/// Reloads at SIGHUP; begins the shutdown at SIGTERM or SIGINT.
async fn signals(
    Signals {
        mut term,
        mut int,
        mut hup,
    }: Signals,
    shared: Arc<Shared>,
    stop: Trigger,
    mut sd: Shutdown,
) {
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                let _ = shared.reload().await;
            }
            _ = sd.recv() => return,
        }
    }
    tracing::info!("stopping: no new deliveries; finishing requests in flight");
    // Refused from this moment on, by every part that takes a request (a
    // deploy asked over the control socket or the page included), before
    // any task sees the stop.
    shared.stop();
    stop.begin();
}

/// Keeps systemd's STATUS= line current and pings the watchdog at half its
/// interval, through the drain too (a long `shutdown_grace` must not look
/// like a hang). Only started under systemd. It wakes when the executor's
/// state changes and for the pings, and neither reads a file: an idle
/// daemon without a watchdog never wakes at all.
async fn status_loop(mut live: watch::Receiver<Vec<executor::ProjectStatus>>, mut sd: Shutdown) {
    let watchdog = systemd::watchdog_interval();
    let mut ping = watchdog.map(|every| {
        let mut i = tokio::time::interval(every);
        i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        i
    });
    let mut last = String::new();
    let mut following = true;
    loop {
        let status = describe(&live.borrow_and_update());
        if status != last {
            systemd::notify(&format!("STATUS={status}"));
            last = status;
        }
        tokio::select! {
            _ = tick(&mut ping) => systemd::notify("WATCHDOG=1"),
            // The executor gone (the drain): only the pings are left.
            changed = live.changed(), if following => following = changed.is_ok(),
            _ = sd.recv() => return,
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
