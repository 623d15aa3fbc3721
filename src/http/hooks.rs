//! The webhook route: `POST /hooks/<project>` and `GET /healthz`. Checks
//! the source, reads the body under its deadline and the shared budget,
//! verifies the signature before anything reads the body, judges the
//! delivery (filters, duplicates, CI gate), records it durably and answers;
//! it never waits on a deploy. [`Reject::status`] is the one mapping of a
//! refusal to an HTTP status.
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::allow;
use super::listener::{Limits, Quiet, serve};
use crate::config::{Config, Project};
use crate::daemon::shutdown::Guards;
use crate::forge::push::Push;
use crate::forge::{self, Event, EventError, Rejected, SignatureError};
use crate::intake::ci_gate;
use crate::intake::filter;
use crate::state::Shared;
use crate::store::deliveries::{self, Seen};
use crate::store::queue::{self, Trigger};

/// What every connection shares: the daemon's shared state, and what only
/// the HTTP side needs.
pub(crate) struct App {
    /// The daemon's parts and live config (see `state.rs`).
    pub(crate) shared: Arc<Shared>,
    /// Bytes of request bodies buffered at once, all connections together
    /// (in KiB permits): a flood of large bodies cannot exhaust memory.
    body_budget: Arc<Semaphore>,
    /// Keeps rejected requests from flooding the log.
    quiet: Quiet,
    /// Keeps deliveries signed with a project's previous secret from
    /// flooding the log: one line says the rotation is unfinished.
    rotation: Quiet,
    /// A guard for each delivery's accept task ([`settle`]), so the daemon
    /// exits only once every push it took in is written or released. Weak:
    /// connections that outlive the listener keep this alive, and must not
    /// keep the daemon waiting themselves.
    tasks: Guards,
}

impl App {
    /// The HTTP side of `shared`; its accept tasks hold one of `tasks`.
    pub(crate) fn new(shared: Arc<Shared>, tasks: Guards) -> App {
        let max_body = shared.config().server.max_body;
        let budget_kib = ((max_body * 2).max(64 << 20) >> 10) as usize;
        App {
            shared,
            body_budget: Arc::new(Semaphore::new(budget_kib.min(Semaphore::MAX_PERMITS))),
            quiet: Quiet::default(),
            rotation: Quiet::named("deliveries signed with a previous secret"),
            tasks,
        }
    }
}

/// Accepts connections until `shutdown` resolves, then lets requests in
/// flight finish (at most `request_timeout`) and returns.
pub(crate) async fn run(listener: TcpListener, app: Arc<App>, shutdown: impl Future<Output = ()>) {
    let limits = Limits::of(&app.shared.config().server);
    let handler = {
        let app = app.clone();
        move |req, peer| {
            let app = app.clone();
            async move { handle(req, &app, peer).await }
        }
    };
    serve(listener, limits, &app.quiet, handler, shutdown).await;
    app.quiet.flush();
    app.rotation.flush();
}

/// Why a request is refused; [`Reject::status`] is the one mapping to HTTP.
#[derive(Debug)]
enum Reject {
    NotFound,
    Method,
    TooLarge,
    Timeout,
    /// Not from `allow_from`; the reason is for the log only.
    Forbidden(String),
    Signature(SignatureError),
    Event(EventError),
    BadBody(String),
    Unavailable(String),
}

impl Reject {
    fn status(&self) -> StatusCode {
        match self {
            Reject::NotFound => StatusCode::NOT_FOUND,
            Reject::Method => StatusCode::METHOD_NOT_ALLOWED,
            Reject::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Reject::Timeout => StatusCode::REQUEST_TIMEOUT,
            Reject::Forbidden(_) => StatusCode::FORBIDDEN,
            Reject::Signature(_) => StatusCode::UNAUTHORIZED,
            Reject::Event(EventError::ContentType(_)) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Reject::Event(_) | Reject::BadBody(_) => StatusCode::BAD_REQUEST,
            Reject::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn message(&self) -> String {
        match self {
            Reject::NotFound => "not found".into(),
            Reject::Method => "method not allowed".into(),
            Reject::TooLarge => "body too large".into(),
            Reject::Timeout => "request took too long".into(),
            Reject::Forbidden(_) => "forbidden".into(),
            // The same words whatever went wrong: a prober learns nothing.
            Reject::Signature(_) => "invalid signature".into(),
            Reject::Event(e) => e.to_string(),
            Reject::BadBody(m) => m.clone(),
            Reject::Unavailable(m) => m.clone(),
        }
    }
}

/// What a `200` answer that deploys nothing was (`ignored: <reason>`,
/// `duplicate`), for the request's log line.
#[derive(Clone)]
struct Said(String);

fn respond(status: StatusCode, body: serde_json::Value) -> Response<Full<Bytes>> {
    let mut bytes = serde_json::to_vec(&body).unwrap_or_default();
    bytes.push(b'\n');
    let mut r = Response::new(Full::new(Bytes::from(bytes)));
    if let Some(said @ ("ignored" | "duplicate")) = body["status"].as_str() {
        let said = match body["reason"].as_str() {
            Some(reason) => format!("{said}: {reason}"),
            None => said.to_string(),
        };
        r.extensions_mut().insert(Said(said));
    }
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// One request: route, answer, and log one line.
async fn handle(req: Request<Incoming>, app: &App, peer: IpAddr) -> Response<Full<Bytes>> {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    // The id the dedupe will use, whichever forge sent it.
    let delivery = forge::any_delivery_id(req.headers())
        .map(|s| s.chars().take(64).collect::<String>())
        .unwrap_or_else(|| "-".into());
    let mut waiting = HungUp(Some((&path, &delivery)));
    let result = route(req, app, peer, &method, &path).await;
    waiting.0 = None;
    let mut detail = String::new();
    let (resp, quiet) = match result {
        Ok(r) => {
            if let Some(Said(said)) = r.extensions().get::<Said>() {
                detail = format!(" ({})", loggable(said));
            }
            (r, false)
        }
        Err(reject) => {
            match &reject {
                Reject::Signature(e) => detail = format!(" ({e})"),
                Reject::Forbidden(why) => detail = format!(" ({why})"),
                // What the sender was told, so the log says why too.
                Reject::Event(_) | Reject::BadBody(_) => {
                    detail = format!(" ({})", loggable(&reject.message()))
                }
                _ => {}
            }
            let mut r = respond(reject.status(), json!({"error": reject.message()}));
            if matches!(reject, Reject::Method) {
                r.headers_mut().insert(
                    header::ALLOW,
                    HeaderValue::from_static(if path == "/healthz" {
                        "GET, HEAD"
                    } else {
                        "POST"
                    }),
                );
            }
            if matches!(reject, Reject::TooLarge | Reject::Timeout) || app.shared.stopping() {
                r.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            (r, !matches!(reject, Reject::Unavailable(_)))
        }
    };
    if let Some(name) = path.strip_prefix("/hooks/")
        && app.shared.config().projects.contains_key(name)
    {
        // Only configured names: a label per path tried would let anyone
        // grow the metrics without bound.
        app.shared.metrics.delivery(name, resp.status().as_u16());
    }
    let line = format!(
        "{method} {} {}{detail} delivery={delivery} {:.1}ms",
        printable(&path),
        resp.status().as_u16(),
        started.elapsed().as_secs_f64() * 1000.0
    );
    if quiet {
        app.quiet.warn(&line);
    } else if path != "/healthz" {
        tracing::info!("{line}");
    }
    resp
}

/// Says in the log that a client hung up before its answer (hyper then
/// drops the request's future): what it had sent goes on being recorded on
/// its own task (see [`settle`]) when it got that far.
struct HungUp<'a>(Option<(&'a str, &'a str)>);

impl Drop for HungUp<'_> {
    fn drop(&mut self) {
        if let Some((path, delivery)) = self.0 {
            tracing::info!(
                "{}: the client hung up before the answer (delivery={delivery})",
                printable(path)
            );
        }
    }
}

/// A reason that quotes the request (a header, a piece of the body) as it
/// may appear in a log line: control characters escaped, cut short.
fn loggable(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars().take(300) {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// A path as it may appear in a log line: control characters escaped, cut short.
fn printable(path: &str) -> String {
    path.chars()
        .take(200)
        .flat_map(char::escape_default)
        .collect()
}

async fn route(
    req: Request<Incoming>,
    app: &App,
    peer: IpAddr,
    method: &Method,
    path: &str,
) -> Result<Response<Full<Bytes>>, Reject> {
    if path == "/healthz" {
        return if method == Method::GET || method == Method::HEAD {
            Ok(respond(StatusCode::OK, json!({"status": "ok"})))
        } else {
            Err(Reject::Method)
        };
    }
    let Some(name) = path.strip_prefix("/hooks/") else {
        return Err(Reject::NotFound);
    };
    if method != Method::POST {
        return Err(Reject::Method);
    }
    let config = app.shared.config();
    let Some(project) = config.projects.get(name) else {
        return Err(Reject::NotFound);
    };
    // Before the body is read: a refused caller costs no buffer.
    if let Some(allow) = &project.allow_from
        && let Some(why) =
            allow::refused(allow, &config.server.trusted_proxies, peer, req.headers())
    {
        return Err(Reject::Forbidden(why));
    }
    if app.shared.stopping() {
        return Err(Reject::Unavailable(
            "deployd is stopping; retry shortly".into(),
        ));
    }
    hook(req, app, &config, project).await
}

/// Reads a body of at most `max` bytes within `deadline`. Refuses at once
/// on a Content-Length over `max`; stops reading as soon as the stream passes
/// it. Memory comes from the shared body budget: a body with a length
/// reserves all of it before reading (waiting its turn within the deadline,
/// so no request holds part of the budget while waiting for more); a chunked
/// body takes it as it grows and is refused with 503 when none is left.
async fn read_body(
    req: Request<Incoming>,
    app: &App,
    max: u64,
    deadline: Duration,
) -> Result<(hyper::HeaderMap, Bytes, Vec<OwnedSemaphorePermit>), Reject> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max) {
        return Err(Reject::TooLarge);
    }
    let (parts, mut body) = req.into_parts();
    let kib = |bytes: u64| (bytes.div_ceil(1024).max(1)).min(u32::MAX as u64) as u32;
    let read = async {
        let mut permits = Vec::new();
        if let Some(n) = declared {
            permits.push(
                app.body_budget
                    .clone()
                    .acquire_many_owned(kib(n))
                    .await
                    .map_err(|_| Reject::Unavailable("shutting down".into()))?,
            );
        }
        let mut buf = BytesMut::with_capacity(body_capacity(declared.unwrap_or(8192).min(max)));
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| Reject::BadBody(format!("reading the body: {e}")))?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            if buf.len() as u64 + data.len() as u64 > max {
                return Err(Reject::TooLarge);
            }
            let need = (buf.len() + data.len()) as u64;
            if need > buf.capacity() as u64 {
                // To a small body's size, then once to a large one's: no
                // doubling through mid-sized buffers (see `body_capacity`).
                let size = if need <= SMALL_BODY { SMALL_BODY } else { max };
                let mut bigger = BytesMut::with_capacity(body_capacity(size));
                bigger.extend_from_slice(&buf);
                buf = bigger;
            }
            if declared.is_none() {
                permits.push(
                    app.body_budget
                        .clone()
                        .try_acquire_many_owned(kib(data.len() as u64))
                        .map_err(|_| Reject::Unavailable("busy; retry later".into()))?,
                );
            }
            buf.extend_from_slice(&data);
        }
        Ok((buf.freeze(), permits))
    };
    match tokio::time::timeout(deadline, read).await {
        Ok(Ok((body, permits))) => Ok((parts.headers, body, permits)),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(Reject::Timeout),
    }
}

/// Bodies up to this size are read into a buffer of their size.
const SMALL_BODY: u64 = 64 * 1024;

/// Larger ones get a buffer of at least this size: over glibc's largest
/// dynamic mmap threshold (32 MiB on 64-bit), so that it is always mapped on
/// its own and unmapped when freed. A buffer of a few MiB to 32 MiB would
/// raise that threshold when freed, and the next one would come from the
/// heap and stay resident after it is freed: one 20 MB request refused with
/// 401 left the daemon 20 MB larger. Only the pages a body fills are ever
/// resident, so the large capacity costs address space, not memory.
const LARGE_BODY_CAPACITY: u64 = 33 << 20;

/// The capacity to read a body of `len` bytes into.
fn body_capacity(len: u64) -> usize {
    let cap = if len <= SMALL_BODY {
        len
    } else {
        len.max(LARGE_BODY_CAPACITY)
    };
    usize::try_from(cap).unwrap_or(usize::MAX)
}

async fn hook(
    req: Request<Incoming>,
    app: &App,
    config: &Arc<Config>,
    project: &Project,
) -> Result<Response<Full<Bytes>>, Reject> {
    let (headers, body, _permits) = read_body(
        req,
        app,
        config.server.max_body,
        config.server.request_timeout,
    )
    .await?;
    match judge(app, project, &headers, &body)? {
        Judged::Answer(response) => Ok(response),
        judged => settle(app, config.clone(), project.name.clone(), judged).await,
    }
}

/// Carries out a delivery that deploys (a push, a CI result) on a task of
/// its own, and answers once it is done. hyper drops a request's future
/// when its client hangs up: done in that future, the work could stop
/// between the dedupe reservation and its keep or release (the redelivery
/// would then be a duplicate of a push never queued), between the durable
/// write and waking the executor, or halfway through a CI gate's change.
/// On its own task it runs to its end whatever the client does. The task
/// also keeps the request's future small: the cheap answers (a bad
/// signature, an ignored push) never spawn one. It holds a guard of the
/// shutdown: a SIGTERM meanwhile waits for it (the delivery is written and
/// answered, or released and answered 503), never drops it.
async fn settle(
    app: &App,
    config: Arc<Config>,
    name: String,
    judged: Judged,
) -> Result<Response<Full<Bytes>>, Reject> {
    let shared = app.shared.clone();
    let named = name.clone();
    let guard = app.tasks.guard();
    let task = tokio::spawn(async move {
        let _guard = guard;
        // Looked up again in the same config: the task must own what it reads.
        let Some(project) = config.projects.get(&named) else {
            return Err(Reject::NotFound);
        };
        match judged {
            Judged::Answer(response) => Ok(response),
            Judged::Ci { run, id, mac } => ci(&shared, project, run, id, mac).await,
            Judged::Push { push, id, mac } => accept(&shared, project, push, id, mac).await,
        }
    });
    task.await.unwrap_or_else(|e| {
        tracing::error!("{name}: recording the delivery failed: {e}");
        Err(Reject::Unavailable(
            "could not record the request; retry later".into(),
        ))
    })
}

/// What a verified delivery comes to before anything is written.
enum Judged {
    /// Answered already: a ping, an event or push that does not deploy, a
    /// stale delivery.
    Answer(Response<Full<Bytes>>),
    /// A CI result for a project with `after_ci`.
    Ci {
        run: crate::forge::ci::CiRun,
        id: String,
        mac: [u8; 32],
    },
    /// A push that deploys the project.
    Push {
        push: Push,
        id: String,
        mac: [u8; 32],
    },
}

/// Verifies and reads a delivery's body, and decides what it comes to.
fn judge(
    app: &App,
    project: &Project,
    headers: &hyper::HeaderMap,
    body: &[u8],
) -> Result<Judged, Reject> {
    let now = SystemTime::now();
    // A push to a branch the project does not deploy is answered from its
    // first fields: the filter below sees them and gives the same reason.
    let may_deploy = |push: &Push| filter::may_deploy(project, push);
    let received = forge::receive(
        project.provider,
        &project.key,
        project.previous_key.as_ref(),
        headers,
        body,
        now,
        &forge::Reading {
            files: !(project.paths.is_empty() && project.paths_ignore.is_empty()),
            repository: project.repository.is_some(),
            may_deploy: Some(&may_deploy),
        },
    )
    .map_err(|e| match e {
        Rejected::Signature(e) => Reject::Signature(e),
        Rejected::Event(e) => Reject::Event(e),
    })?;
    let delivery = received.delivery;
    if received.previous {
        app.rotation.warn(&format!(
            "{}: delivery {} signed with the previous secret; finish the rotation \
             (set the new secret in the forge, then remove secret_previous)",
            project.name,
            delivery.id.as_deref().unwrap_or("-")
        ));
    }
    let answer = |body| Ok(Judged::Answer(respond(StatusCode::OK, body)));
    if let Some(at) = delivery.signed_at
        && now
            .duration_since(at)
            .is_ok_and(|age| age > project.max_age)
    {
        return answer(json!({"status": "ignored", "reason": "stale delivery"}));
    }
    let id = delivery.id.unwrap_or_default();
    let mac = received.mac;
    let pushes = match delivery.event {
        Event::Ping => return answer(json!({"status": "pong"})),
        Event::Other(name) => {
            return answer(
                json!({"status": "ignored", "reason": format!("event {name:?} does not deploy")}),
            );
        }
        Event::Ci(_) if project.after_ci.is_empty() => {
            return answer(
                json!({"status": "ignored", "reason": "CI event: this project has no after_ci"}),
            );
        }
        Event::Ci(run) => return Ok(Judged::Ci { run, id, mac }),
        Event::Push(p) => p,
    };
    match filter::choose(project, pushes) {
        Ok(push) => Ok(Judged::Push { push, id, mac }),
        Err(reason) => answer(json!({"status": "ignored", "reason": reason})),
    }
}

/// A CI result for a project with `after_ci`: deduped as a push is (by id,
/// and by body MAC against replays), then through the gate.
async fn ci(
    shared: &Shared,
    project: &Project,
    run: crate::forge::ci::CiRun,
    id: String,
    mac: [u8; 32],
) -> Result<Response<Full<Bytes>>, Reject> {
    let keys = match Keys::claim(shared, project, id, &mac).await {
        Ok(keys) => keys,
        Err(duplicate) => return Ok(duplicate),
    };
    let decided = ci_gate::ci(shared, project, run, keys.id.clone());
    gated(shared, project, &keys, decided).await
}

/// A delivery's dedupe keys: its id, which catches the forge's
/// redeliveries, and its body's MAC, which catches the same signed body
/// under an id of the sender's choosing (docs/security.md, *What deployd defends against*).
struct Keys {
    /// Empty when the forge sent none.
    id: String,
    body_mac: String,
}

impl Keys {
    /// The keys of `project`'s delivery `id` with body MAC `mac`, held
    /// until [`Keys::keep`] or [`Keys::release`] and past the fault point
    /// before the first write; or, for a delivery accepted before, the
    /// answer to the duplicate. A push and a CI result are deduped alike.
    async fn claim(
        shared: &Shared,
        project: &Project,
        id: String,
        mac: &[u8; 32],
    ) -> Result<Keys, Response<Full<Bytes>>> {
        let keys = Keys {
            id,
            body_mac: deliveries::body_entry(&project.name, mac),
        };
        if let Some(duplicate) = keys.duplicate(shared) {
            return Err(duplicate);
        }
        crate::fault::point(crate::fault::BEFORE_WRITE).await;
        Ok(keys)
    }

    fn list(&self) -> Vec<&str> {
        if self.id.is_empty() {
            vec![&self.body_mac]
        } else {
            vec![&self.id, &self.body_mac]
        }
    }

    /// The answer to a delivery accepted before, when this is one; otherwise
    /// its keys are held until [`Keys::keep`] or [`Keys::release`].
    fn duplicate(&self, shared: &Shared) -> Option<Response<Full<Bytes>>> {
        (shared.deliveries.check(&self.list()) == Seen::Duplicate).then(|| {
            respond(
                StatusCode::OK,
                json!({"status": "duplicate", "delivery": self.id}),
            )
        })
    }

    /// Remembered: the delivery's decision is on disk.
    fn keep(&self, shared: &Shared) {
        for key in self.list() {
            shared.deliveries.keep_soon(key);
        }
    }

    /// Forgotten, so that a redelivery is accepted.
    fn release(&self, shared: &Shared) {
        for key in self.list() {
            shared.deliveries.release(key);
        }
    }
}

/// A push that deploys the project: deduped, then queued durably (or handed
/// to the CI gate) before the 202.
async fn accept(
    shared: &Shared,
    project: &Project,
    push: Push,
    id: String,
    mac: [u8; 32],
) -> Result<Response<Full<Bytes>>, Reject> {
    let keys = match Keys::claim(shared, project, id, &mac).await {
        Ok(keys) => keys,
        Err(duplicate) => return Ok(duplicate),
    };
    let push = Push {
        delivery: keys.id.clone(),
        ..push
    };
    let request = queue::DeployRequest {
        bodies: vec![keys.body_mac.clone()],
        ..queue::DeployRequest::new(
            shared.queue.next_seq(),
            &project.name,
            Trigger::Webhook,
            push,
        )
    };
    if ci_gate::gates(project, &request.push) {
        let decided = ci_gate::push(shared, project, request);
        return gated(shared, project, &keys, decided).await;
    }
    let answer = json!({
        "status": "queued",
        "project": project.name,
        "ref": request.push.git_ref,
        "sha": request.push.after,
        "delivery": keys.id,
    });
    if let Err(e) = shared.enqueue(request).await {
        keys.release(shared);
        tracing::error!(
            "{}: cannot record the request durably (answering 503 so the forge retries): {e}",
            project.name
        );
        return Err(Reject::Unavailable(
            "could not record the request; retry later".into(),
        ));
    }
    // Not waited for: the request file (`delivery`, `coalesced`, `bodies`)
    // already holds the id and MAC durably; this file is the longer,
    // unsynced memory.
    keys.keep(shared);
    Ok(respond(StatusCode::ACCEPTED, answer))
}

/// Answers a delivery that went through the CI gate (`intake/ci_gate.rs`): a
/// push of a project with `after_ci`, or a CI event, its `keys` checked
/// already. They are kept once the gate's decision is on disk; if it could
/// not be, 503, and they are forgotten so a redelivery is accepted.
async fn gated(
    shared: &Shared,
    project: &Project,
    keys: &Keys,
    decided: impl Future<Output = std::io::Result<ci_gate::Answer>>,
) -> Result<Response<Full<Bytes>>, Reject> {
    match decided.await {
        Ok((status, body)) => {
            keys.keep(shared);
            crate::fault::point(crate::fault::BEFORE_ACK).await;
            Ok(respond(status, body))
        }
        Err(e) => {
            keys.release(shared);
            tracing::error!(
                "{}: cannot record the CI gate's decision durably (answering 503 so the forge retries): {e}",
                project.name
            );
            Err(Reject::Unavailable(
                "could not record the request; retry later".into(),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of the future an async function returns, without calling it.
    fn future_size<'a, F: Future>(
        _: impl FnOnce(Request<Incoming>, &'a App, IpAddr) -> F,
    ) -> usize {
        std::mem::size_of::<F>()
    }

    /// Each request's future is copied whole as it moves into hyper and down
    /// the awaits, on every request, the cheapest included: the deploy
    /// path's state (17 KB, boxed in `hook`) once made it 19.5 KB, and a
    /// bad signature cost a fifth more CPU. About 3.3 KB now.
    #[test]
    fn a_request_future_stays_small() {
        let size = future_size(handle);
        assert!(size < 8 * 1024, "handle's future is {size} bytes");
    }
}
