//! The status page and `/metrics`, on a listener of their own (`[web]`):
//! an overview of every project, a page per project and per run with its
//! log followed live, and Prometheus metrics. Server-rendered HTML with a
//! little plain JavaScript for live updates, all embedded in the binary.
//!
//! It reads the daemon's shared state ([`Shared`]), as the control socket
//! does: the config in force (the one live config), the run records, the
//! executor's live status, the run events (which the live streams follow)
//! and the metrics. Its buttons act as the commands do, through the same
//! code: Deploy now queues its request the way `deployd deploy` does
//! ([`Shared::enqueue`]), Cancel and Roll back go through
//! [`Shared::cancel`] and [`Shared::rollback`] as `deployd cancel` and
//! `deployd rollback` do. The accept loop, connection cap and
//! deadlines are the webhook listener's own ([`crate::http::serve`]).

pub(crate) mod ansi;
pub(crate) mod auth;
pub(crate) mod pages;
pub(crate) mod sse;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::{Config, Web};
use crate::http::{Limits, Quiet};
use crate::run::executor::{Cancelled, ProjectStatus};
use crate::run::lifecycle::blocking;
use crate::state::Shared;
use crate::store::history::{Run, Status, rollback_target};
use crate::store::queue;

use auth::{Access, Auth};
use pages::{Ctx, LogPart};

/// A response body: a page at once, or an event stream.
type Body = BoxBody<Bytes, Infallible>;

/// The stylesheet, embedded.
const STYLE: &str = include_str!("assets/style.css");
/// The live updates, embedded.
const SCRIPT: &str = include_str!("assets/app.js");

/// The largest form accepted (login, deploy).
const MAX_FORM: usize = 8 * 1024;
/// The most of a log a run page shows; the plain-text link has all of it.
const PAGE_LOG: u64 = 1 << 20;

/// The actions the page may offer (`actions = true`), each a POST to
/// `/projects/NAME/<action>` with the CSRF token. To add one, add a
/// variant here, its route in [`Site::action`], and its form next to the
/// others in [`pages::project`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// Queue a deploy of the branch's head, as `deployd deploy` does.
    Deploy,
    /// Cancel the running run (the form's `run`, when given), as `deployd
    /// cancel` does.
    Cancel,
    /// Queue a rollback to the commit of run `to` (by default the last
    /// successful run before the current one), as `deployd rollback` does.
    Rollback,
}

impl Action {
    fn parse(s: &str) -> Option<Action> {
        match s {
            "deploy" => Some(Action::Deploy),
            "cancel" => Some(Action::Cancel),
            "rollback" => Some(Action::Rollback),
            _ => None,
        }
    }
}

/// The status page's state.
pub(crate) struct Site {
    /// The daemon's parts and live config.
    shared: Arc<Shared>,
    /// `[web]` as it was at start (its `listen` is fixed until a restart).
    first: Web,
    /// Keys for the token of the config in force, rebuilt when it changes.
    auth: Mutex<(Option<Arc<Config>>, Arc<Auth>)>,
    quiet: Quiet,
    stop: watch::Receiver<bool>,
}

impl Site {
    /// The page for `web`, reading `shared`; streams end when `stop` turns
    /// true.
    pub(crate) fn new(web: Web, shared: Arc<Shared>, stop: watch::Receiver<bool>) -> Site {
        let auth = Arc::new(Auth::new(&web));
        Site {
            shared,
            first: web,
            auth: Mutex::new((None, auth)),
            quiet: Quiet::default(),
            stop,
        }
    }

    /// `[web]` in force, and the keys for its token.
    fn settings(&self) -> (Arc<Config>, Web, Arc<Auth>) {
        let config = self.shared.config();
        let web = config.web.clone().unwrap_or_else(|| self.first.clone());
        let mut cached = self.auth.lock().unwrap_or_else(|e| e.into_inner());
        if !cached.0.as_ref().is_some_and(|c| Arc::ptr_eq(c, &config)) {
            *cached = (Some(config.clone()), Arc::new(Auth::new(&web)));
        }
        (config, web, cached.1.clone())
    }
}

/// Serves the page on `listener` until `stop` turns true.
pub(crate) async fn run(listener: TcpListener, site: Arc<Site>) {
    let limits = Limits::of(&site.shared.config().server);
    let mut stop = site.stop.clone();
    let handler = {
        let site = site.clone();
        move |req, _peer| {
            let site = site.clone();
            async move { site.handle(req).await }
        }
    };
    serve_with(listener, limits, &site, handler, async move {
        let _ = stop.wait_for(|s| *s).await;
    })
    .await;
}

async fn serve_with<H, F>(
    listener: TcpListener,
    limits: Limits,
    site: &Site,
    handler: H,
    shutdown: impl Future<Output = ()>,
) where
    H: Fn(Request<Incoming>, std::net::IpAddr) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    crate::http::serve(listener, limits, &site.quiet, handler, shutdown).await;
    site.quiet.flush();
}

fn full(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(Full::new(body.into()).boxed());
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn html(status: StatusCode, page: String) -> Response<Body> {
    full(status, "text/html; charset=utf-8", page)
}

fn text(status: StatusCode, t: &str) -> Response<Body> {
    full(status, "text/plain; charset=utf-8", format!("{t}\n"))
}

fn redirect(to: &str) -> Response<Body> {
    let mut r = full(StatusCode::SEE_OTHER, "text/plain; charset=utf-8", "");
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// `r` with the `Set-Cookie` header `cookie`.
fn with_cookie(mut r: Response<Body>, cookie: &str) -> Response<Body> {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// 405, with the methods `path` takes.
fn method_not_allowed(path: &str) -> Response<Body> {
    let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    r.headers_mut().insert(
        header::ALLOW,
        HeaderValue::from_static(if path.starts_with("/projects/") {
            "GET, POST"
        } else {
            "GET, HEAD"
        }),
    );
    r
}

/// The path part of `public_url` (`https://x.example/deploy` → `/deploy`),
/// which every link starts with.
fn base(web: &Web) -> String {
    web.public_url
        .as_deref()
        .and_then(|u| u.split_once("://"))
        .and_then(|(_, rest)| {
            rest.find('/')
                .map(|i| rest[i..].trim_end_matches('/').to_string())
        })
        .unwrap_or_default()
}

/// Query parameter `key`, decoded.
fn query(req_query: Option<&str>, key: &str) -> Option<String> {
    form_urlencoded::parse(req_query.unwrap_or("").as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

/// A local path to go back to after the login (never another site).
fn local(next: &str) -> &str {
    if next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') {
        next
    } else {
        "/"
    }
}

impl Site {
    async fn handle(&self, req: Request<Incoming>) -> Response<Body> {
        let started = std::time::Instant::now();
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let mut resp = self.route(req).await;
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; \
                 connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            ),
        );
        h.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        h.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        );
        if !h.contains_key(header::CACHE_CONTROL) {
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
        let status = resp.status().as_u16();
        let line = format!(
            "web: {method} {} {status} {:.1}ms",
            path.chars()
                .take(200)
                .flat_map(char::escape_default)
                .collect::<String>(),
            started.elapsed().as_secs_f64() * 1000.0
        );
        if status == 401 || status == 403 {
            self.quiet.warn(&line);
        } else {
            tracing::debug!("{line}");
        }
        resp
    }

    async fn route(&self, req: Request<Incoming>) -> Response<Body> {
        let (config, web, auth) = self.settings();
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let q = req.uri().query().map(str::to_string);
        let base = base(&web);
        let get = method == Method::GET || method == Method::HEAD;
        match (path.as_str(), get) {
            ("/static/style.css", true) => return asset("text/css; charset=utf-8", STYLE),
            ("/static/app.js", true) => return asset("text/javascript; charset=utf-8", SCRIPT),
            // Browsers ask for it on their own; there is none.
            ("/favicon.ico", true) => return full(StatusCode::NO_CONTENT, "image/x-icon", ""),
            ("/login", true) => {
                let ctx = self.ctx(&base, None, false);
                let next = query(q.as_deref(), "next").unwrap_or_else(|| "/".into());
                return html(StatusCode::OK, pages::login(&ctx, local(&next), false));
            }
            ("/login", false) if method == Method::POST => {
                return self.log_in(req, &config, &auth, &base).await;
            }
            ("/logout", false) if method == Method::POST => {
                return with_cookie(redirect(&format!("{base}/login")), &auth.clear_cookie());
            }
            _ => {}
        }
        let access = auth.check(req.headers());
        if let Some(refused) = self.gate(&web, access, &path, get, &base) {
            return refused;
        }
        let csrf = web.actions.then(|| auth.csrf().to_string());
        let ctx = self.ctx(&base, csrf.as_deref(), auth.has_token());
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match (parts.as_slice(), get) {
            ([""], true) => self.overview(&ctx, &config).await,
            (["events"], true) => self.status_events(),
            (["projects", name], true) => self.project(&ctx, &config, name, q.as_deref()).await,
            (["projects", name, "runs", id, host @ ..], true) => {
                // A fleet run's host: its page, log and live log.
                let (host, rest) = match host {
                    ["hosts", h, rest @ ..] => (Some(pages::unseg(h)), rest),
                    rest => (None, rest),
                };
                match (id.parse(), rest) {
                    (Ok(id), []) => self.run_page(&ctx, name, id, host).await,
                    (Ok(id), ["log"]) => self.raw_log(&ctx, name, id, host).await,
                    (Ok(id), ["events"]) => self.log_events(&req, name, id, host, q.as_deref()),
                    _ => not_found(&ctx),
                }
            }
            (["projects", name, action], false) if method == Method::POST => {
                let Some(action) = Action::parse(action).filter(|_| web.actions) else {
                    return not_found(&ctx);
                };
                let name = name.to_string();
                let Some(form) = self.form(req, &config).await else {
                    return text(StatusCode::BAD_REQUEST, "bad form");
                };
                if access != Access::Bearer
                    && !auth.csrf_ok(&form_get(&form, "csrf").unwrap_or_default())
                {
                    return text(
                        StatusCode::FORBIDDEN,
                        "the form's CSRF token is missing or stale: reload the page",
                    );
                }
                let who = web.token.as_ref().map_or("web", |t| &t.name).to_string();
                self.action(&ctx, &config, &name, action, &form, &who).await
            }
            (_, true) => not_found(&ctx),
            _ => method_not_allowed(&path),
        }
    }

    /// `POST /login`: the token checked, a session cookie set and back to
    /// where the visitor was going, or the login page again.
    async fn log_in(
        &self,
        req: Request<Incoming>,
        config: &Config,
        auth: &Auth,
        base: &str,
    ) -> Response<Body> {
        let Some(form) = self.form(req, config).await else {
            return text(StatusCode::BAD_REQUEST, "bad form");
        };
        let next = form_get(&form, "next").unwrap_or_else(|| "/".into());
        if auth.login(&form_get(&form, "token").unwrap_or_default()) {
            return with_cookie(
                redirect(&format!("{base}{}", local(&next))),
                &auth.set_cookie(),
            );
        }
        let ctx = self.ctx(base, None, false);
        html(
            StatusCode::UNAUTHORIZED,
            pages::login(&ctx, local(&next), true),
        )
    }

    /// What a request without access gets instead of its page: `/metrics`
    /// (answered here, since it may be public), a refusal, or the login
    /// page. `None` when the request may go on.
    fn gate(
        &self,
        web: &Web,
        access: Access,
        path: &str,
        get: bool,
        base: &str,
    ) -> Option<Response<Body>> {
        let refused = |why: &str| {
            let mut r = text(StatusCode::UNAUTHORIZED, why);
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            Some(r)
        };
        if path == "/metrics" && get {
            if !(web.metrics_public || access.allowed()) {
                return refused(if access == Access::WrongToken {
                    "wrong token"
                } else {
                    "token required: send Authorization: Bearer TOKEN"
                });
            }
            let live = self.shared.executor.watch().borrow().clone();
            return Some(full(
                StatusCode::OK,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                self.shared.metrics.render(&live),
            ));
        }
        // A bearer token is a script's, never a browser's: told it is wrong,
        // not sent to a login page.
        if access == Access::WrongToken {
            return refused("wrong token");
        }
        if !access.allowed() {
            if get && !path.ends_with("/events") {
                let next: String = form_urlencoded::byte_serialize(path.as_bytes()).collect();
                return Some(redirect(&format!("{base}/login?next={next}")));
            }
            return refused("log in first, or send Authorization: Bearer TOKEN");
        }
        None
    }

    fn ctx<'a>(&self, base: &'a str, csrf: Option<&'a str>, logout: bool) -> Ctx<'a> {
        Ctx {
            csrf,
            logout,
            base,
            now: SystemTime::now(),
        }
    }

    /// Reads a small urlencoded form within the request deadline.
    async fn form(&self, req: Request<Incoming>, config: &Config) -> Option<Vec<(String, String)>> {
        let body = Limited::new(req.into_body(), MAX_FORM);
        let bytes = tokio::time::timeout(config.server.request_timeout, body.collect())
            .await
            .ok()?
            .ok()?
            .to_bytes();
        Some(
            form_urlencoded::parse(&bytes)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    async fn overview(&self, ctx: &Ctx<'_>, config: &Config) -> Response<Body> {
        let live = self.shared.executor.watch().borrow().clone();
        let history = self.shared.history.clone();
        let names: Vec<String> = config.projects.keys().cloned().collect();
        let page = render(ctx, move |ctx| {
            // Each project's newest runs from memory, checked against its
            // directory (History::recent): one stat a project while nothing
            // changed.
            let runs: Vec<Vec<Run>> = names
                .iter()
                .map(|n| history.recent(n).unwrap_or_default())
                .collect();
            let starting: Vec<ProjectStatus> = names
                .iter()
                .filter(|n| !live.iter().any(|s| &s.project == *n))
                .map(|n| starting(n))
                .collect();
            let rows: Vec<pages::ProjectRow> = names
                .iter()
                .zip(&runs)
                .filter_map(|(name, runs)| {
                    live.iter()
                        .chain(&starting)
                        .find(|s| &s.project == name)
                        .map(|status| pages::ProjectRow { status, runs })
                })
                .collect();
            pages::overview(ctx, &rows)
        })
        .await;
        html(StatusCode::OK, page)
    }

    async fn project(
        &self,
        ctx: &Ctx<'_>,
        config: &Arc<Config>,
        name: &str,
        q: Option<&str>,
    ) -> Response<Body> {
        let live = self.shared.executor.watch().borrow().clone();
        let (history, config, n) = (
            self.shared.history.clone(),
            config.clone(),
            name.to_string(),
        );
        let status_filter = query(q, "status").unwrap_or_default();
        let trigger_filter = query(q, "trigger").unwrap_or_default();
        let page = render(ctx, move |ctx| {
            let all = history.list(&n, None)?;
            let project = config.projects.get(&n);
            if project.is_none() && all.is_empty() {
                return Ok(None);
            }
            let runs: Vec<Run> = all
                .iter()
                .filter(|r| status_filter.is_empty() || r.status.to_string() == status_filter)
                .filter(|r| {
                    trigger_filter.is_empty() || r.request.trigger.to_string() == trigger_filter
                })
                .take(100)
                .cloned()
                .collect();
            let first = project.map(|_| starting(&n));
            let back = project
                .and(ctx.csrf)
                .and_then(|_| rollback_target(&all, None, None).ok());
            let page = pages::ProjectPage {
                project,
                status: live.iter().find(|s| s.project == n).or(first.as_ref()),
                runs: &runs,
                plot: &all[..all.len().min(100)],
                status_filter: &status_filter,
                trigger_filter: &trigger_filter,
                rollback: back.as_ref(),
            };
            Ok::<_, std::io::Error>(Some(pages::project(ctx, &n, &page)))
        })
        .await;
        match page {
            Ok(Some(page)) => html(StatusCode::OK, page),
            Ok(None) => not_found(ctx),
            Err(e) => text(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("cannot read the history: {e}"),
            ),
        }
    }

    async fn run_page(
        &self,
        ctx: &Ctx<'_>,
        name: &str,
        id: u64,
        host: Option<String>,
    ) -> Response<Body> {
        let history = self.shared.history.clone();
        let n = name.to_string();
        // Only the daemon's running run can be cancelled from here (not a
        // direct deploy's, recorded running too).
        let running = self
            .shared
            .executor
            .watch()
            .borrow()
            .iter()
            .any(|s| s.project == name && s.running.as_ref().is_some_and(|r| r.id == id));
        let page = render(ctx, move |ctx| {
            let run = history.get(&n, id).ok().flatten()?;
            let host = match host {
                Some(name) => Some(run.hosts.iter().find(|h| h.name == name)?.clone()),
                None => None,
            };
            let mut shown = run.clone();
            if let Some(h) = &host {
                shown.log = h.log.clone();
            }
            let part = read_tail(&shown);
            let cancel = running && run.status == Status::Running;
            Some(pages::run(ctx, &run, &part, cancel, host.as_ref()))
        })
        .await;
        match page {
            Some(page) => html(StatusCode::OK, page),
            None => not_found(ctx),
        }
    }

    async fn raw_log(
        &self,
        ctx: &Ctx<'_>,
        name: &str,
        id: u64,
        host: Option<String>,
    ) -> Response<Body> {
        let history = self.shared.history.clone();
        let n = name.to_string();
        let Some(run) = blocking(move || history.get(&n, id).ok().flatten()).await else {
            return not_found(ctx);
        };
        let log = match host {
            Some(name) => match run.hosts.into_iter().find(|h| h.name == name) {
                Some(h) => h.log,
                None => return not_found(ctx),
            },
            None => run.log,
        };
        // Streamed in bounded chunks, like the live log.
        let body = sse::ChannelBody::file(log);
        let mut r = Response::new(body.boxed());
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        r
    }

    fn status_events(&self) -> Response<Body> {
        let body = sse::status(
            self.shared.executor.watch(),
            self.shared.events.subscribe(),
            self.stop.clone(),
        );
        event_stream(body)
    }

    fn log_events(
        &self,
        req: &Request<Incoming>,
        name: &str,
        id: u64,
        host: Option<String>,
        q: Option<&str>,
    ) -> Response<Body> {
        let resumed = req
            .headers()
            .get("last-event-id")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let from = match resumed {
            Some(offset) => sse::From { offset, line: None },
            None => sse::From {
                offset: query(q, "offset").and_then(|v| v.parse().ok()).unwrap_or(0),
                line: query(q, "line").and_then(|v| v.parse().ok()),
            },
        };
        let body = sse::log(
            self.shared.history.clone(),
            name.to_string(),
            id,
            host,
            from,
            self.shared.events.subscribe(),
            self.stop.clone(),
        );
        event_stream(body)
    }

    async fn action(
        &self,
        ctx: &Ctx<'_>,
        config: &Config,
        name: &str,
        action: Action,
        form: &[(String, String)],
        who: &str,
    ) -> Response<Body> {
        let Some(p) = config.projects.get(name) else {
            return not_found(ctx);
        };
        let seg: String = form_urlencoded::byte_serialize(name.as_bytes()).collect();
        let project_page = format!("{}/projects/{seg}", ctx.base);
        // A number the form may carry (`run`, `to`); a wrong one is refused.
        let number = |key: &str| match form_get(form, key).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => v
                .parse::<u64>()
                .map(Some)
                .map_err(|_| format!("{key} is not a run id")),
        };
        match action {
            Action::Deploy => {
                if self.shared.stopping() {
                    return text(StatusCode::SERVICE_UNAVAILABLE, "deployd is stopping");
                }
                let req = match queue::DeployRequest::web(
                    self.shared.queue.next_seq(),
                    p,
                    who.to_string(),
                ) {
                    Ok(req) => req,
                    Err(e) => return text(StatusCode::BAD_REQUEST, &e),
                };
                if let Err(e) = self.shared.enqueue(req).await {
                    tracing::error!("{name}: cannot queue the deploy asked on the page: {e}");
                    return text(StatusCode::SERVICE_UNAVAILABLE, "cannot queue the request");
                }
                tracing::info!("{name}: deploy queued from the page by {who}");
                redirect(&project_page)
            }
            Action::Cancel => {
                let run = match number("run") {
                    Ok(r) => r,
                    Err(e) => return text(StatusCode::BAD_REQUEST, &e),
                };
                match self.shared.cancel(name, false, run, who).await {
                    Ok(Cancelled::Run(r)) => redirect(&format!("{project_page}/runs/{}", r.id)),
                    Ok(Cancelled::Request(_)) => redirect(&project_page),
                    Err(why) => refused(ctx, name, "Nothing to cancel", &why),
                }
            }
            Action::Rollback => {
                if self.shared.stopping() {
                    return text(StatusCode::SERVICE_UNAVAILABLE, "deployd is stopping");
                }
                let to = match number("to") {
                    Ok(t) => t,
                    Err(e) => return text(StatusCode::BAD_REQUEST, &e),
                };
                let (target, req) = match self.shared.rollback(name, to, who).await {
                    Ok(r) => r,
                    Err(why) => return refused(ctx, name, "Nothing to roll back to", &why),
                };
                if let Err(e) = self.shared.enqueue(req).await {
                    tracing::error!("{name}: cannot queue the rollback asked on the page: {e}");
                    return text(StatusCode::SERVICE_UNAVAILABLE, "cannot queue the request");
                }
                tracing::info!(
                    "{name}: rollback to {} (the commit of run {}) queued from the page by {who}",
                    target.short_sha(),
                    target.id
                );
                redirect(&project_page)
            }
        }
    }
}

/// An action that found nothing to act on (the run ended meanwhile, no
/// commit to go back to): a 409 page saying why.
fn refused(ctx: &Ctx, project: &str, title: &str, why: &str) -> Response<Body> {
    html(
        StatusCode::CONFLICT,
        pages::refused(ctx, project, title, why),
    )
}

/// The state shown for a configured project the executor has not
/// published yet: the page answers from the daemon's first moments, while
/// the executor still looks for runs to recover.
fn starting(project: &str) -> ProjectStatus {
    ProjectStatus {
        project: project.to_string(),
        state: crate::run::executor::ProjectState::Starting,
        running: None,
        pending: None,
        last: None,
    }
}

/// Runs `f`, which reads what a page shows and renders it, on the blocking
/// pool with a copy of `ctx`: a big page (100 projects, a megabyte of log)
/// takes milliseconds, which the async thread, the one the hooks are
/// answered on, must not spend.
async fn render<T: Send + 'static>(ctx: &Ctx<'_>, f: impl FnOnce(&Ctx) -> T + Send + 'static) -> T {
    let (base, csrf) = (ctx.base.to_string(), ctx.csrf.map(str::to_string));
    let (logout, now) = (ctx.logout, ctx.now);
    blocking(move || {
        f(&Ctx {
            csrf: csrf.as_deref(),
            logout,
            base: &base,
            now,
        })
    })
    .await
}

fn form_get(form: &[(String, String)], key: &str) -> Option<String> {
    form.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
}

/// The 404 page, in the layout (with its way back to the overview).
fn not_found(ctx: &Ctx) -> Response<Body> {
    html(StatusCode::NOT_FOUND, pages::not_found(ctx))
}

fn asset(content_type: &'static str, body: &'static str) -> Response<Body> {
    let mut r = full(StatusCode::OK, content_type, body);
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    r
}

fn event_stream(body: sse::ChannelBody) -> Response<Body> {
    let mut r = Response::new(body.boxed());
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    // nginx: pass events through as they come.
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    r
}

/// What a run page shows of its log: all of it up to [`PAGE_LOG`], else
/// the last [`PAGE_LOG`] bytes from a line start; whole lines only while
/// the run goes on (the live stream goes on from there).
fn read_tail(run: &Run) -> LogPart {
    let size = std::fs::metadata(&run.log).map(|m| m.len()).unwrap_or(0);
    let mut start = size.saturating_sub(PAGE_LOG);
    let running = run.status == crate::store::history::Status::Running;
    let mut bytes = Vec::new();
    let mut at = start;
    while at < size {
        let chunk = crate::store::log_tail::read_lines(&run.log, at, !running);
        if chunk.is_empty() {
            break;
        }
        at += chunk.len() as u64;
        bytes.extend_from_slice(&chunk);
    }
    if start > 0 {
        // From the first line start inside the part.
        let cut = bytes
            .iter()
            .position(|&b| b == b'\n')
            .map_or(bytes.len(), |i| i + 1);
        bytes.drain(..cut);
        start += cut as u64;
    }
    let first_line = if start > 0 {
        sse::count_lines(&run.log, start)
    } else {
        1
    };
    LogPart {
        end: start + bytes.len() as u64,
        bytes,
        start,
        first_line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fsutil::tests::scratch;

    #[test]
    fn a_long_log_shows_its_tail_from_a_line_start_numbered_right() {
        let dir = scratch("web-tail");
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("1.log");
        let text: String = (1..=200_000).map(|n| format!("line {n}\n")).collect();
        std::fs::write(&log, &text).unwrap();
        let push = crate::forge::push::Push {
            git_ref: "refs/heads/main".into(),
            ..crate::forge::push::Push::default()
        };
        let run = Run {
            id: 1,
            request: queue::DeployRequest::new(1, "app", queue::Trigger::Webhook, push),
            status: crate::store::history::Status::Succeeded,
            exit_code: Some(0),
            signal: None,
            started_at: String::new(),
            finished_at: None,
            log: log.clone(),
            pid: None,
            outputs: Default::default(),
            hosts: Vec::new(),
        };
        let part = read_tail(&run);
        assert!(part.start > 0 && part.end == text.len() as u64);
        assert!(part.bytes.len() as u64 <= PAGE_LOG);
        let first = String::from_utf8_lossy(&part.bytes[..20]).to_string();
        assert!(
            first.starts_with(&format!("line {}\n", part.first_line)),
            "{first:?} is not line {}",
            part.first_line
        );
        assert_eq!(
            &text.as_bytes()[part.start as usize - 1..part.start as usize],
            b"\n"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
