//! Server-Sent Events: a run's log as it grows, and "something changed" for
//! the overview and project pages. Each stream is a task, not a thread, and
//! hands hyper one event at a time through a channel of [`DEPTH`]: a slow
//! browser stops the task reading the log instead of growing memory.
//!
//! Both follow the daemon's run events ([`crate::run::events::Bus`]): the
//! overview's stream wakes on them and on the executor's live status, never
//! on a timer; a log stream learns from [`RunEvent::Finished`] that its run
//! ended. Only a log's growth is looked at every [`POLL`], while its run goes
//! on and someone follows it (the events do not carry output).

use std::convert::Infallible;
use std::io::Read;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::{broadcast, mpsc, watch};

use crate::run::events::RunEvent;
use crate::run::lifecycle::blocking;
use crate::store::history::{History, Status};
use crate::store::log_tail::read_lines;

use super::ansi::Ansi;
use super::pages;

/// Events queued between a stream's task and hyper, per follower.
const DEPTH: usize = 2;
/// How often a follower looks at a growing log (only while the run runs
/// and someone follows it: an idle daemon has no follower).
const POLL: Duration = Duration::from_millis(200);
/// Quiet polls after which a follower reads its run's record anyway: a run
/// of a direct `deployd deploy` that was going on when the daemon started
/// records its end without an event on the daemon's bus.
const RECHECK: u32 = 25;

/// A response body fed by a task through a bounded channel.
pub struct ChannelBody(mpsc::Receiver<Bytes>);

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b))))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

impl ChannelBody {
    /// The whole file at `path`, read a chunk at a time as the client takes it.
    pub fn file(path: PathBuf) -> ChannelBody {
        let (tx, rx) = mpsc::channel(DEPTH);
        tokio::spawn(async move {
            let mut offset = 0u64;
            loop {
                let p = path.clone();
                let chunk = blocking(move || read_lines(&p, offset, true)).await;
                if chunk.is_empty() {
                    return;
                }
                offset += chunk.len() as u64;
                if tx.send(Bytes::from(chunk)).await.is_err() {
                    return;
                }
            }
        });
        ChannelBody(rx)
    }
}

/// An SSE event of `kind` (None: `message`) with `id`, whose `data` may span lines.
fn event(kind: Option<&str>, id: Option<u64>, data: &str) -> Bytes {
    let mut out = String::with_capacity(data.len() + 64);
    if let Some(k) = kind {
        out.push_str("event: ");
        out.push_str(k);
        out.push('\n');
    }
    if let Some(id) = id {
        out.push_str(&format!("id: {id}\n"));
    }
    for line in data.split('\n') {
        out.push_str("data: ");
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
    Bytes::from(out)
}

/// `change` whenever what runs or waits changes, or a run starts or ends.
pub fn status(
    mut live: watch::Receiver<Vec<crate::run::executor::ProjectStatus>>,
    mut events: crate::run::events::Events,
    mut stop: watch::Receiver<bool>,
) -> ChannelBody {
    let (tx, rx) = mpsc::channel(DEPTH);
    tokio::spawn(async move {
        live.mark_unchanged();
        if tx
            .send(Bytes::from_static(b"retry: 2000\n\n"))
            .await
            .is_err()
        {
            return;
        }
        let mut n = 0u64;
        loop {
            tokio::select! {
                r = live.changed() => if r.is_err() { return },
                r = events.recv() => if let Err(broadcast::error::RecvError::Closed) = r { return },
                _ = stop.wait_for(|s| *s) => return,
                _ = tx.closed() => return,
            }
            n += 1;
            if tx
                .send(event(Some("change"), None, &n.to_string()))
                .await
                .is_err()
            {
                return;
            }
        }
    });
    ChannelBody(rx)
}

/// Where a follower starts: a byte offset at a line start, and that line's number.
#[derive(Debug, Clone, Copy)]
pub struct From {
    /// Byte offset.
    pub offset: u64,
    /// Number of the line starting there; None: count.
    pub line: Option<u64>,
}

/// The log of run `id` of `project` from `from` (with `host`: that host's
/// own log), one event per chunk of whole lines rendered as HTML (id: the
/// byte offset after it), then `end` with the run's status once it finished
/// and all of it was sent. `events` is subscribed before the record is
/// read, so an end published after that read is seen.
pub fn log(
    history: Arc<History>,
    project: String,
    id: u64,
    host: Option<String>,
    from: From,
    mut events: crate::run::events::Events,
    mut stop: watch::Receiver<bool>,
) -> ChannelBody {
    let (tx, rx) = mpsc::channel(DEPTH);
    tokio::spawn(async move {
        let mut offset = from.offset;
        let mut ansi = Ansi::default();
        let Some(run) = blocking({
            let h = history.clone();
            let p = project.clone();
            move || h.get(&p, id).ok().flatten()
        })
        .await
        else {
            let _ = tx.send(event(Some("end"), None, "missing")).await;
            return;
        };
        let path = match &host {
            None => run.log.clone(),
            Some(name) => match run.hosts.iter().find(|h| &h.name == name) {
                Some(h) => h.log.clone(),
                None => {
                    let _ = tx.send(event(Some("end"), None, "missing")).await;
                    return;
                }
            },
        };
        let mut line = match from.line {
            Some(l) => l,
            None => {
                let p = path.clone();
                blocking(move || count_lines(&p, offset)).await
            }
        };
        // The final status, once the run ended.
        let mut ended = (run.status != Status::Running).then(|| run.status.to_string());
        let mut quiet = 0u32;
        if tx
            .send(Bytes::from_static(b"retry: 1000\n\n"))
            .await
            .is_err()
        {
            return;
        }
        loop {
            let p = path.clone();
            let last = ended.is_some();
            let chunk = blocking(move || read_lines(&p, offset, last)).await;
            if !chunk.is_empty() {
                quiet = 0;
                let mut html = String::with_capacity(chunk.len() * 2);
                line = pages::log_lines_with(&mut html, &chunk, line, &mut ansi);
                offset += chunk.len() as u64;
                if tx.send(event(None, Some(offset), &html)).await.is_err() {
                    return;
                }
                continue;
            }
            if let Some(status) = &ended {
                let _ = tx.send(event(Some("end"), Some(offset), status)).await;
                return;
            }
            let mut unseen = false;
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {
                    quiet += 1;
                    unseen = quiet.is_multiple_of(RECHECK);
                }
                e = events.recv() => match e.as_deref() {
                    Ok(RunEvent::Finished(r)) if r.project() == project && r.id == id => {
                        ended = Some(r.status.to_string());
                    }
                    Ok(_) => continue,
                    // Events were lost, maybe this run's end: the record says.
                    Err(broadcast::error::RecvError::Lagged(_)) => unseen = true,
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = stop.wait_for(|s| *s) => return,
                _ = tx.closed() => return,
            }
            if unseen {
                let h = history.clone();
                let p = project.clone();
                ended = match blocking(move || h.get(&p, id).ok().flatten()).await {
                    Some(r) if r.status == Status::Running => None,
                    Some(r) => Some(r.status.to_string()),
                    None => Some("unknown".to_string()),
                };
            }
        }
    });
    ChannelBody(rx)
}

/// The number of the line starting at byte `offset` of `path`.
pub fn count_lines(path: &PathBuf, offset: u64) -> u64 {
    let Ok(f) = std::fs::File::open(path) else {
        return 1;
    };
    let mut f = f.take(offset);
    let mut buf = vec![0u8; 64 * 1024];
    let mut lines = 1;
    while let Ok(n) = f.read(&mut buf) {
        if n == 0 {
            break;
        }
        lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
    }
    lines
}
