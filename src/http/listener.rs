//! The accept loop that the webhook listener and the status page share:
//! the connection cap (more are answered 503 unread), the header, body and
//! idle deadlines, graceful close at shutdown, and the rate limit on log
//! lines about rejected requests ([`Quiet`]).

use std::net::IpAddr;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc, watch};

/// Answered to connections over `max_connections`, without reading them.
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
content-length: 33\r\nconnection: close\r\n\r\n{\"error\":\"too many connections\"}\n";

/// The connection cap and deadlines a listener enforces: the `[server]`
/// ones, for the webhook listener and the status page alike.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Connections served at once; more get 503 without being read.
    pub max_connections: usize,
    /// Deadline for the request line and headers.
    pub header_timeout: Duration,
    /// Deadline for a body; also how long shutdown waits for requests.
    pub request_timeout: Duration,
    /// How long an idle keep-alive connection stays open.
    pub idle_timeout: Duration,
}

impl Limits {
    /// The limits `[server]` sets.
    pub fn of(s: &crate::config::Server) -> Limits {
        Limits {
            max_connections: s.max_connections,
            header_timeout: s.header_timeout,
            request_timeout: s.request_timeout,
            idle_timeout: s.idle_timeout,
        }
    }
}

/// The accept loop every listener shares: refuses connections over the
/// cap, serves each with `handler` under the header and idle deadlines, and
/// once `shutdown` resolves stops accepting, asks every
/// connection to close after its request in flight and waits (at most
/// `request_timeout` and a second) for them.
pub(crate) async fn serve<H, F, B>(
    listener: TcpListener,
    limits: Limits,
    quiet: &Quiet,
    handler: H,
    shutdown: impl Future<Output = ()>,
) where
    H: Fn(Request<Incoming>, IpAddr) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<B>> + Send + 'static,
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let max = limits.max_connections;
    let slots = Arc::new(Semaphore::new(max));
    let (stop_tx, stop_rx) = watch::channel(Closing::No);
    // Each connection task holds a clone; recv() returns None when all are gone.
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    let mut shutdown = pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            quiet.warn(&format!(
                "connection from {peer} refused: {max} connections open"
            ));
            tokio::spawn(async move {
                let mut stream = stream;
                let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(BUSY)).await;
            });
            continue;
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        let stop = stop_rx.clone();
        let done = done_tx.clone();
        tokio::spawn(async move {
            serve_connection(stream, peer.ip(), limits, handler, stop).await;
            drop(permit);
            drop(done);
        });
    }
    drop(listener);
    let _ = stop_tx.send(Closing::AfterRequest);
    drop(done_tx);
    let grace = limits.request_timeout + Duration::from_secs(1);
    if tokio::time::timeout(grace, done_rx.recv()).await.is_err() {
        tracing::warn!("connections still open after {grace:?}; closing them");
        let _ = stop_tx.send(Closing::Now);
        let _ = done_rx.recv().await;
    }
}

/// What the accept loop asks of its connections at shutdown.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Closing {
    No,
    /// Close once the request in flight is answered.
    AfterRequest,
    /// The grace is over: close, answered or not.
    Now,
}

/// When a connection last finished a request, and how many are in progress.
#[derive(Default)]
struct Activity {
    last_ms: AtomicU64,
    busy: AtomicUsize,
}

async fn serve_connection<H, F, B>(
    stream: tokio::net::TcpStream,
    peer: IpAddr,
    limits: Limits,
    handler: H,
    mut stop: watch::Receiver<Closing>,
) where
    H: Fn(Request<Incoming>, IpAddr) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<B>> + Send + 'static,
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let born = Instant::now();
    let activity = Arc::new(Activity::default());
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |req| {
            let (handler, activity) = (handler.clone(), activity.clone());
            async move {
                activity.busy.fetch_add(1, Ordering::SeqCst);
                let resp = handler(req, peer).await;
                activity
                    .last_ms
                    .store(born.elapsed().as_millis() as u64, Ordering::SeqCst);
                activity.busy.fetch_sub(1, Ordering::SeqCst);
                Ok::<_, std::convert::Infallible>(resp)
            }
        })
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(64 * 1024)
        .keep_alive(true);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    let mut conn = pin!(conn);
    let idle_ms = limits.idle_timeout.as_millis() as u64;
    let mut tick = tokio::time::interval(Duration::from_millis((idle_ms / 4).clamp(50, 1000)));
    let mut closing = false;
    loop {
        // What this connection waits to be told next.
        let next = if closing {
            Closing::Now
        } else {
            Closing::AfterRequest
        };
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!("connection ended: {e}");
                }
                return;
            }
            told = stop.wait_for(move |s| *s >= next) => {
                // Dropping the connection closes it; a push it was
                // accepting goes on in its own task (http/hooks.rs).
                if told.map_or(true, |s| *s == Closing::Now) {
                    return;
                }
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = tick.tick(), if !closing => {
                let idle = born.elapsed().as_millis() as u64
                    - activity.last_ms.load(Ordering::SeqCst);
                if activity.busy.load(Ordering::SeqCst) == 0 && idle > idle_ms {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// Rate-limits log lines about rejected requests: up to [`Quiet::BURST`] a
/// window, then one line saying how many were left out, when the window
/// ends. The timer for that line is armed only while something is left
/// uncounted, so a quiet daemon has no timer; at shutdown, [`Quiet::flush`]
/// says what is still uncounted.
pub(crate) struct Quiet {
    state: Arc<Mutex<QuietState>>,
    /// What the lines are about, for the line that counts those left out.
    what: &'static str,
}

impl Default for Quiet {
    fn default() -> Quiet {
        Quiet::named("rejected requests")
    }
}

#[derive(Default)]
struct QuietState {
    /// When the current window began.
    start: Option<Instant>,
    /// Lines logged in it.
    shown: u64,
    /// Rejections left out of the log and not yet counted in a line.
    hidden: u64,
    /// A task is waiting for the window's end to count them.
    armed: bool,
}

impl QuietState {
    fn count(&mut self, what: &str) {
        if self.hidden > 0 {
            tracing::warn!(
                "{} more {what} in the last {}s were not logged",
                self.hidden,
                Quiet::WINDOW.as_secs()
            );
            self.hidden = 0;
        }
    }
}

impl Quiet {
    const BURST: u64 = 20;
    const WINDOW: Duration = Duration::from_secs(10);

    /// A rate limiter whose summary line counts `what`.
    pub(crate) fn named(what: &'static str) -> Quiet {
        Quiet {
            state: Arc::default(),
            what,
        }
    }

    pub(crate) fn warn(&self, line: &str) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if s.start
            .is_none_or(|t| now.duration_since(t) >= Self::WINDOW)
        {
            s.count(self.what);
            s.start = Some(now);
            s.shown = 0;
        }
        if s.shown < Self::BURST {
            s.shown += 1;
            tracing::warn!("{line}");
            return;
        }
        s.hidden += 1;
        if !s.armed {
            s.armed = true;
            let end = s.start.unwrap_or(now) + Self::WINDOW;
            let (state, what) = (self.state.clone(), self.what);
            tokio::spawn(async move {
                tokio::time::sleep_until(end.into()).await;
                let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
                s.armed = false;
                s.count(what);
            });
        }
    }

    /// Logs how many rejections are still uncounted (at shutdown).
    pub(crate) fn flush(&self) {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .count(self.what);
    }
}
