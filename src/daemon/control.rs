//! The control socket: a Unix socket (never TCP) on which the CLI talks to
//! the running daemon. One JSON request a connection, answered by JSON lines;
//! an output line announces the raw bytes of the run's log that follow it.
//!
//! `deploy` queues a manual request through the daemon's durable queue (so
//! coalescing, the lock and `parallel` apply as for a push), then streams the
//! run that carries it out: its start, its output as it is written, its end.
//! `reload` reloads the config as SIGHUP does, and answers with the outcome.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncSeekExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use crate::daemon::shutdown::Shutdown;
use crate::fsutil;
use crate::intake::ci_gate;
use crate::run::events::RunEvent;
use crate::run::executor::{Cancelled, ProjectStatus};
use crate::run::lifecycle::blocking;
use crate::state::Shared;
use crate::store::history::{History, Run, Status};
use crate::store::queue::{DeployRequest, Trigger};

/// What the CLI asks.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlRequest {
    /// Queue a manual deploy; with `wait`, stream the run.
    Deploy {
        /// The project.
        project: String,
        /// Full ref (default `refs/heads/<branch>`).
        git_ref: Option<String>,
        /// Commit to announce (default empty).
        sha: Option<String>,
        /// Stream the run until it ends.
        wait: bool,
        /// Who asked, for `DEPLOY_PUSHER`.
        user: String,
    },
    /// Cancel the project's running run (`pending`: drop its pending
    /// request instead); answered `Cancelled` once the run is recorded, or
    /// `Error` when there is nothing to cancel.
    Cancel {
        /// The project.
        project: String,
        /// Drop the pending request, not the running run.
        pending: bool,
        /// Who asked, for the daemon's log and the run's.
        #[serde(default)]
        user: String,
    },
    /// Queue a rollback (trigger `rollback`) to the commit of run `to`, or
    /// of the last successful run before the current one; with `wait`,
    /// stream its run as `Deploy` does.
    Rollback {
        /// The project.
        project: String,
        /// The run whose commit to deploy again.
        to: Option<u64>,
        /// Stream the run until it ends.
        wait: bool,
        /// Who asked, for `DEPLOY_PUSHER`.
        user: String,
    },
    /// Live status of every project.
    Status,
    /// Reload the config file, as SIGHUP does; answered once the new config
    /// is live (`Reloaded`) or refused (`Error`, with the config's error).
    Reload,
}

/// What the daemon answers, one JSON line each.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    /// The request is on disk.
    Queued {
        /// Its sequence number.
        seq: u64,
        /// The project's run that was going on when the request was queued:
        /// the request waits for it to finish.
        #[serde(default)]
        behind: Option<Run>,
    },
    /// The run carrying the request started.
    Started(Run),
    /// Output of the run: this many raw bytes of its log follow the line,
    /// exactly as the file holds them (not JSON: the log need not be UTF-8,
    /// and a character may be split across two writes).
    Output(u64),
    /// The run ended.
    Finished(Run),
    /// Status of every project.
    Status(Vec<ProjectStatus>),
    /// The new config is live (the daemon's log line says how many projects).
    Reloaded(String),
    /// What a cancel stopped: a run (its final record) or a request that
    /// never ran.
    Cancelled(Cancelled),
    /// A rollback is about to be queued: the run whose commit it deploys.
    RollingBack(Run),
    /// The request failed.
    Error(String),
}

/// Binds the control socket: removes a stale one left by a dead daemon, but
/// refuses to start beside a live one. Mode 0660: the deployd group may use it.
pub async fn bind(path: &Path) -> io::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        fsutil::create_dir(dir, fsutil::TOP_DIR_MODE)?;
    }
    if path.exists() {
        if let Ok(other) = UnixStream::connect(path).await {
            // The credentials of a listening socket's peer are those of the
            // process that listens: the other daemon.
            let pid = other.peer_cred().ok().and_then(|c| c.pid());
            let (who, kill) = match pid {
                Some(p) => (format!("another deployd (pid {p})"), format!("kill {p}")),
                None => ("another deployd".to_string(), "kill PID".to_string()),
            };
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!(
                    "{who} is running and answers on it; stop it first \
                     (`systemctl stop deployd`, or `{kill}`), or give this one \
                     a config with another control_socket and state_dir"
                ),
            ));
        }
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
    Ok(listener)
}

/// Serves CLI connections until the shutdown's phase begins (once every
/// run ended, see `daemon/shutdown.rs`); a connection in progress then has
/// [`LINGER`] more to send its last lines (a streamed run's end), and
/// every connection holds the shutdown, so the daemon waits for it.
pub(crate) async fn serve(listener: UnixListener, shared: Arc<Shared>, mut sd: Shutdown) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = sd.recv() => return,
        };
        let Ok((stream, _)) = accepted else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let (shared, mut sd) = (shared.clone(), sd.clone());
        tokio::spawn(async move {
            let closing = async {
                sd.recv().await;
                tokio::time::sleep(LINGER).await;
            };
            tokio::select! {
                served = connection(stream, &shared) => if let Err(e) = served {
                    tracing::debug!("control connection: {e}");
                },
                () = closing => {}
            }
        });
    }
}

/// How long a connection goes on once the control socket stops: enough for
/// a stream to see the record of the run that just ended ([`POLL`]).
const LINGER: Duration = Duration::from_secs(1);

async fn send(w: &mut (impl AsyncWriteExt + Unpin), reply: &Reply) -> io::Result<()> {
    let mut line = serde_json::to_vec(reply).map_err(io::Error::other)?;
    line.push(b'\n');
    w.write_all(&line).await
}

/// Reads one request and answers it.
async fn connection(stream: UnixStream, shared: &Shared) -> io::Result<()> {
    let (r, mut w) = stream.into_split();
    let mut line = String::new();
    // A request is a few hundred bytes; do not let a client make it more.
    BufReader::new(r.take(64 * 1024))
        .read_line(&mut line)
        .await?;
    let request: ControlRequest = match serde_json::from_str(&line) {
        Ok(r) => r,
        Err(e) => return send(&mut w, &Reply::Error(format!("bad request: {e}"))).await,
    };
    match request {
        ControlRequest::Status => {
            send(&mut w, &Reply::Status(shared.executor.status().await)).await
        }
        ControlRequest::Reload => match shared.reload().await {
            Ok(done) => send(&mut w, &Reply::Reloaded(done)).await,
            Err(e) => send(&mut w, &Reply::Error(e)).await,
        },
        ControlRequest::Cancel {
            project,
            pending,
            user,
        } => cancel(&mut w, shared, &project, pending, &user).await,
        ControlRequest::Rollback {
            project,
            to,
            wait,
            user,
        } => {
            let config = shared.config();
            if !config.projects.contains_key(&project) {
                return send(&mut w, &Reply::Error(no_project(&config, &project))).await;
            }
            let (target, req) = match shared.rollback(&project, to, &user).await {
                Ok(r) => r,
                Err(why) => return send(&mut w, &Reply::Error(why)).await,
            };
            send(&mut w, &Reply::RollingBack(target)).await?;
            queue_and_stream(&mut w, shared, req, wait).await
        }
        ControlRequest::Deploy {
            project,
            git_ref,
            sha,
            wait,
            user,
        } => {
            let config = shared.config();
            let Some(p) = config.projects.get(&project) else {
                return send(&mut w, &Reply::Error(no_project(&config, &project))).await;
            };
            let req = match deploy_request(shared, p, git_ref, sha, user).await {
                Ok(req) => req,
                Err(why) => return send(&mut w, &Reply::Error(why)).await,
            };
            queue_and_stream(&mut w, shared, req, wait).await
        }
    }
}

/// `cancel`: answered once the run is recorded cancelled (or whatever it
/// ended as, had it ended meanwhile), or at once for a request that never
/// ran.
async fn cancel(
    w: &mut (impl AsyncWriteExt + Unpin),
    shared: &Shared,
    project: &str,
    pending: bool,
    user: &str,
) -> io::Result<()> {
    let config = shared.config();
    if !config.projects.contains_key(project) {
        return send(w, &Reply::Error(no_project(&config, project))).await;
    }
    let who = if user.is_empty() {
        "deployd cancel"
    } else {
        user
    };
    match shared.cancel(project, pending, None, who).await {
        Err(why) => send(w, &Reply::Error(why)).await,
        Ok(Cancelled::Run(run)) => {
            let mut run = *run;
            loop {
                let (history, p, id) = (shared.history.clone(), project.to_string(), run.id);
                if let Some(now) = blocking(move || history.get(&p, id)).await? {
                    run = now;
                }
                if run.status != Status::Running {
                    break;
                }
                tokio::time::sleep(POLL).await;
            }
            send(w, &Reply::Cancelled(Cancelled::Run(Box::new(run)))).await
        }
        Ok(c) => send(w, &Reply::Cancelled(c)).await,
    }
}

/// The request of `deploy`: with `--sha` of the push that waits for its CI,
/// that push, now, past its CI (a manual run whose record says so);
/// otherwise a manual request for the ref and commit asked. `Err` is what
/// to answer.
async fn deploy_request(
    shared: &Shared,
    p: &crate::config::Project,
    git_ref: Option<String>,
    sha: Option<String>,
    user: String,
) -> Result<DeployRequest, String> {
    let waiting = match &sha {
        Some(sha) if !sha.is_empty() => ci_gate::bypass(shared, p, sha)
            .await
            .map_err(|e| format!("cannot read the CI gate: {e}"))?,
        _ => None,
    };
    let seq = shared.queue.next_seq();
    match waiting {
        Some(waiting) => {
            tracing::info!(
                "{}: deploying {} past its CI, as {user} asked",
                p.name,
                waiting.push.short_sha()
            );
            Ok(
                DeployRequest::new(seq, &p.name, Trigger::Manual, waiting.push.clone())
                    .with_ci(waiting.ci),
            )
        }
        None => DeployRequest::manual(seq, p, git_ref, sha, user),
    }
}

fn no_project(config: &crate::config::Config, project: &str) -> String {
    format!("no project {project:?} in {}", config.path.display())
}

/// Queues `req` (a manual deploy or a rollback) through the daemon's
/// durable queue, answers `Queued`, and with `wait` streams its run.
async fn queue_and_stream(
    w: &mut (impl AsyncWriteExt + Unpin),
    shared: &Shared,
    req: DeployRequest,
    wait: bool,
) -> io::Result<()> {
    if shared.stopping() {
        return send(w, &Reply::Error("deployd is stopping".into())).await;
    }
    let project = req.project.clone();
    let seq = req.seq;
    // Asked before queueing, so the run found is the one before ours.
    let behind = shared
        .executor
        .status()
        .await
        .into_iter()
        .find(|s| s.project == project)
        .and_then(|s| s.running);
    // Before the request is queued: its run may start at once.
    let events = shared.events.subscribe();
    let trigger = req.trigger;
    if let Err(e) = shared.enqueue(req).await {
        return send(w, &Reply::Error(format!("cannot queue the request: {e}"))).await;
    }
    tracing::info!("{project}: {trigger} deploy queued");
    send(w, &Reply::Queued { seq, behind }).await?;
    if wait {
        stream_run(w, &shared.history, events, &project, seq).await?;
    }
    Ok(())
}

/// Waits for the run of `project` that carries request `seq` (the first run
/// whose request is that one or newer), then streams its log until it ends.
/// The run events on `events` (subscribed before the request was queued)
/// say when it starts and ends; the records are read too, every
/// [`POLL`], so a missed event (a lagging receiver) only delays the stream.
/// The log itself is read every [`POLL`] while the run goes on.
async fn stream_run(
    w: &mut (impl AsyncWriteExt + Unpin),
    history: &Arc<History>,
    mut events: crate::run::events::Events,
    project: &str,
    seq: u64,
) -> io::Result<()> {
    let run = loop {
        if let Some(run) = carrying(history, project, seq).await {
            break run;
        }
        let started = tokio::time::timeout(POLL, async {
            loop {
                match events.recv().await.as_deref() {
                    Ok(RunEvent::Started(r)) if r.project() == project && r.request.seq >= seq => {
                        return Some(Ok(r.clone()));
                    }
                    // Ours, or a newer one that had replaced ours.
                    Ok(RunEvent::Dropped(r)) if r.project == project && r.seq >= seq => {
                        return Some(Err(r.clone()));
                    }
                    Ok(_) => {}
                    // Lagged: the records tell; closed: the daemon stops.
                    Err(_) => return None,
                }
            }
        })
        .await;
        match started {
            Ok(Some(Ok(run))) => break run,
            Ok(Some(Err(_))) => {
                return send(
                    w,
                    &Reply::Error(
                        "the request was cancelled before it ran (deployd cancel)".into(),
                    ),
                )
                .await;
            }
            _ => {}
        }
    };
    send(w, &Reply::Started(run.clone())).await?;
    let mut offset = 0u64;
    loop {
        let record = {
            let (history, project, id) = (history.clone(), project.to_string(), run.id);
            blocking(move || history.get(&project, id)).await?
        }
        .unwrap_or_else(|| run.clone());
        let done = record.status != Status::Running;
        offset = forward_log(w, &record.log, offset).await?;
        if done {
            return send(w, &Reply::Finished(record)).await;
        }
        // Woken early by the run's end; the record says it again above.
        let _ = tokio::time::timeout(POLL, async {
            loop {
                match events.recv().await.as_deref() {
                    Ok(RunEvent::Finished(r)) if r.project() == project && r.id == run.id => return,
                    Ok(_) => {}
                    Err(_) => return std::future::pending().await,
                }
            }
        })
        .await;
    }
}

/// How often a stream looks at the records and the log.
const POLL: Duration = Duration::from_millis(100);

/// The first run of `project` whose request is `seq` or newer, read off
/// the runtime's thread.
async fn carrying(history: &Arc<History>, project: &str, seq: u64) -> Option<Run> {
    let (history, project) = (history.clone(), project.to_string());
    blocking(move || history.list(&project, Some(8)).unwrap_or_default())
        .await
        .into_iter()
        .filter(|r| r.request.seq >= seq)
        .min_by_key(|r| r.id)
}

/// How much of a log is read, sent and held at once, whatever its size: the
/// socket's backpressure keeps a slow reader from making the daemon buffer.
const CHUNK: usize = 64 * 1024;

/// Sends what the log file holds past `offset`, in chunks of at most
/// [`CHUNK`] bytes; returns the new offset.
async fn forward_log(
    w: &mut (impl AsyncWriteExt + Unpin),
    log: &Path,
    mut offset: u64,
) -> io::Result<u64> {
    let Ok(mut f) = tokio::fs::File::open(log).await else {
        return Ok(offset);
    };
    f.seek(io::SeekFrom::Start(offset)).await?;
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = f.read(&mut buf).await?;
        if n == 0 {
            return Ok(offset);
        }
        send(w, &Reply::Output(n as u64)).await?;
        w.write_all(&buf[..n]).await?;
        offset += n as u64;
    }
}

/// The CLI's side: sends `request`, calls `each` for every reply and
/// `output` for the raw log bytes that follow an [`Reply::Output`], in
/// pieces of at most 64 KiB.
pub async fn call(
    socket: &Path,
    request: &ControlRequest,
    mut each: impl FnMut(Reply) -> io::Result<()>,
    mut output: impl FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<()> {
    let stream = UnixStream::connect(socket).await?;
    let (r, mut w) = stream.into_split();
    let mut line = serde_json::to_vec(request).map_err(io::Error::other)?;
    line.push(b'\n');
    w.write_all(&line).await?;
    let mut r = BufReader::with_capacity(CHUNK, r);
    let mut line = String::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        line.clear();
        if r.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        match serde_json::from_str(&line).map_err(io::Error::other)? {
            Reply::Output(mut left) => {
                while left > 0 {
                    let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    let n = r.read(&mut buf[..want]).await?;
                    if n == 0 {
                        return Err(io::ErrorKind::UnexpectedEof.into());
                    }
                    output(&buf[..n])?;
                    left -= n as u64;
                }
            }
            reply => each(reply)?,
        }
    }
}
