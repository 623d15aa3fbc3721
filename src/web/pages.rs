//! The pages, rendered on the server into one `String` each: plain data in,
//! HTML out, no I/O, so a test can time a render of 100 projects × 100 runs
//! on its own. Everything that comes from outside (names, refs, pushers,
//! log text) goes through [`esc`] or the ANSI renderer, which escapes too.

use std::fmt::Write;
use std::time::SystemTime;

use crate::config::Project;
use crate::run::executor::{ProjectState, ProjectStatus};
use crate::store::history::Run;
use crate::store::hosts::HostRun;
use crate::store::queue::DeployRequest;

use super::ansi::Ansi;

mod hosts;
use hosts::{host_facts, hosts_row};

/// How every run status and project state looks: its CSS class. One table
/// to extend when a status is added; anything not in it is shown grey as
/// `unknown`, with its own name as the label.
pub const LOOKS: &[(&str, &str)] = &[
    ("succeeded", "ok"),
    ("failed", "bad"),
    ("timed_out", "bad"),
    ("interrupted", "warn"),
    ("cancelled", "warn"),
    ("unhealthy", "bad"),
    ("ci_failed", "bad"),
    ("ci_timeout", "warn"),
    ("running", "run"),
    ("pending", "wait"),
    ("recovering", "wait"),
    ("starting", "wait"),
    ("waiting for CI", "wait"),
    ("idle", "idle"),
    // A host's part of a fleet run (docs/fleet.md).
    ("skipped", "idle"),
    ("rolled_back", "warn"),
    ("rollback_failed", "bad"),
    ("already_done", "ok"),
];

/// The CSS class of a status or state ([`LOOKS`]).
pub fn class_of(status: &str) -> &'static str {
    LOOKS
        .iter()
        .find(|(s, _)| *s == status)
        .map_or("unknown", |(_, c)| c)
}

/// What every page needs besides its data.
pub struct Ctx<'a> {
    /// The CSRF token for forms, when actions are on.
    pub csrf: Option<&'a str>,
    /// A logout button makes sense (a token is configured).
    pub logout: bool,
    /// Links are made against this (public_url), or are relative.
    pub base: &'a str,
    /// For elapsed times.
    pub now: SystemTime,
}

/// HTML-escapes `s` into `out`.
pub fn esc_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// `s`, HTML-escaped.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    esc_into(&mut out, s);
    out
}

/// A path segment as [`seg`] wrote it, decoded: what the route matches.
pub fn unseg(s: &str) -> String {
    form_urlencoded::parse(format!("s={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// A URL path segment, percent-encoded (project names are already limited
/// to letters, digits, `-`, `_` and `.`, but the page does not rely on it).
fn seg(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn elapsed(since: &str, now: SystemTime) -> Option<f64> {
    let start = humantime::parse_rfc3339_weak(since).ok()?;
    now.duration_since(start).ok().map(|d| d.as_secs_f64())
}

/// `4.2s`, `3m 05s`, `2h 10m`.
pub fn human(secs: f64) -> String {
    let s = secs.max(0.0);
    if s < 60.0 {
        format!("{s:.1}s")
    } else if s < 3600.0 {
        format!("{}m {:02}s", (s / 60.0) as u64, (s % 60.0) as u64)
    } else {
        format!(
            "{}h {:02}m",
            (s / 3600.0) as u64,
            ((s % 3600.0) / 60.0) as u64
        )
    }
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(10)]
}

/// `2026-11-30 13:40:12` out of an RFC 3339 timestamp, in a `<time>`.
fn time(out: &mut String, ts: &str) {
    let shown = ts.get(..19).unwrap_or(ts).replace('T', " ");
    let _ = write!(
        out,
        "<time datetime=\"{}\">{} UTC</time>",
        esc(ts),
        esc(&shown)
    );
}

fn badge(out: &mut String, status: &str) {
    let _ = write!(
        out,
        "<span class=\"st {}\">{}</span>",
        class_of(status),
        esc(&status.replace('_', " "))
    );
}

/// The page around `main`.
pub fn layout(ctx: &Ctx, title: &str, live: Option<&str>, main: &str) -> String {
    let mut out = String::with_capacity(main.len() + 2048);
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"color-scheme\" content=\"light dark\">\
         <title>{} · deployd</title>\
         <link rel=\"stylesheet\" href=\"{base}/static/style.css\">\
         <script src=\"{base}/static/app.js\" defer></script></head>\
         <body{}><header><nav aria-label=\"site\"><a href=\"{base}/\" class=\"home\">deployd</a>",
        esc(title),
        live.map(|l| format!(" data-live=\"{}\"", esc(l)))
            .unwrap_or_default(),
        base = esc(ctx.base),
    );
    if ctx.logout {
        let _ = write!(
            out,
            "<form method=\"post\" action=\"{}/logout\" class=\"logout\">\
             <button type=\"submit\">Log out</button></form>",
            esc(ctx.base)
        );
    }
    out.push_str("</nav></header>\n<main id=\"main\">");
    out.push_str(main);
    out.push_str("</main></body></html>\n");
    out
}

/// The login page.
pub fn login(ctx: &Ctx, next: &str, failed: bool) -> String {
    let mut m = String::new();
    m.push_str("<h1>Log in</h1>");
    if failed {
        m.push_str("<p class=\"error\" role=\"alert\">That token is not right.</p>");
    }
    let _ = write!(
        m,
        "<form method=\"post\" action=\"{}/login\" class=\"login\">\
         <input type=\"hidden\" name=\"next\" value=\"{}\">\
         <label for=\"token\">Token</label>\
         <input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"current-password\" required autofocus>\
         <button type=\"submit\">Log in</button></form>",
        esc(ctx.base),
        esc(next)
    );
    layout(ctx, "Log in", None, &m)
}

/// The page for a path that leads nowhere (the answer is a 404).
pub fn not_found(ctx: &Ctx) -> String {
    let m = format!(
        "<h1>Not found</h1><p>There is no such project, run or page here.</p>\
         <p><a href=\"{}/\">All projects</a></p>",
        esc(ctx.base)
    );
    layout(ctx, "Not found", None, &m)
}

/// One project on the overview.
pub struct ProjectRow<'a> {
    /// Live state from the executor.
    pub status: &'a ProjectStatus,
    /// Its newest runs, newest first (up to 20 are drawn).
    pub runs: &'a [Run],
}

/// Overview: every project, its state, last outcome and a strip of runs.
pub fn overview(ctx: &Ctx, rows: &[ProjectRow]) -> String {
    let mut m = String::with_capacity(rows.len() * 4096);
    m.push_str(
        "<h1>Projects</h1><div class=\"scroll\"><table class=\"projects\">\
        <caption class=\"sr\">Every project: its state, its last run and its recent runs</caption>\
        <thead><tr><th scope=\"col\">Project</th><th scope=\"col\">State</th>\
        <th scope=\"col\">Last run</th><th scope=\"col\">Commit</th>\
        <th scope=\"col\">Recent runs (newest first)</th></tr></thead><tbody>",
    );
    for row in rows {
        let p = row.status;
        let name = esc(&p.project);
        let _ = write!(
            m,
            "<tr><th scope=\"row\"><a href=\"{}/projects/{}\">{name}</a></th><td>",
            esc(ctx.base),
            seg(&p.project)
        );
        state(&mut m, ctx, p);
        m.push_str("</td><td>");
        let last = row
            .runs
            .iter()
            .find(|r| r.status != crate::store::history::Status::Running);
        match last {
            Some(r) => {
                let _ = write!(m, "<a href=\"{}\">#{}</a> ", run_url(ctx, r), r.id);
                badge(&mut m, &r.status.to_string());
            }
            None => m.push('—'),
        }
        m.push_str("</td><td>");
        if let Some(r) = last {
            let _ = write!(m, "<code>{}</code>", esc(short(&r.request.push.after)));
        }
        m.push_str("</td><td><ol class=\"strip\">");
        for r in row.runs.iter().take(20) {
            let status = r.status.to_string();
            let _ = write!(
                m,
                "<li><a class=\"{}\" href=\"{}\" title=\"#{} {}\">\
                 <span class=\"sr\">#{} {}</span></a></li>",
                class_of(&status),
                run_url(ctx, r),
                r.id,
                esc(&status),
                r.id,
                esc(&status)
            );
        }
        m.push_str("</ol></td></tr>\n");
    }
    m.push_str("</tbody></table></div>");
    if rows.is_empty() {
        m.push_str("<p>No projects are configured.</p>");
    }
    layout(ctx, "Projects", Some("status"), &m)
}

/// The address of run `r`'s page, escaped for an attribute.
fn run_url(ctx: &Ctx, r: &Run) -> String {
    format!(
        "{}/projects/{}/runs/{}",
        esc(ctx.base),
        seg(r.project()),
        r.id
    )
}

/// `running #7 for 1m 02s`, `pending`, `idle`.
fn state(m: &mut String, ctx: &Ctx, p: &ProjectStatus) {
    badge(m, p.state.as_str());
    if let Some(r) = &p.running {
        let _ = write!(m, " <a href=\"{}\">#{}</a>", run_url(ctx, r), r.id);
        if let Some(s) = elapsed(&r.started_at, ctx.now) {
            let _ = write!(m, " for {}", human(s));
        }
    }
    if p.pending.is_some() && p.state != ProjectState::Pending {
        m.push_str(" · ");
        badge(m, "pending");
    }
}

/// What the project page shows besides its runs.
pub struct ProjectPage<'a> {
    /// The project's settings (None: it left the config but has records).
    pub project: Option<&'a Project>,
    /// Live state.
    pub status: Option<&'a ProjectStatus>,
    /// Runs after the filters, newest first.
    pub runs: &'a [Run],
    /// The newest 100 runs unfiltered, newest first, for the plot.
    pub plot: &'a [Run],
    /// The filters in force.
    pub status_filter: &'a str,
    /// The trigger filter in force.
    pub trigger_filter: &'a str,
    /// The run a rollback would deploy the commit of, when there is one.
    pub rollback: Option<&'a Run>,
}

/// Statuses offered by the filter.
const STATUSES: &[&str] = &[
    "running",
    "succeeded",
    "failed",
    "timed_out",
    "interrupted",
    "cancelled",
    "unhealthy",
    "ci_failed",
    "ci_timeout",
];
/// Triggers offered by the filter.
const TRIGGERS: &[&str] = &[
    "webhook", "manual", "web", "recovery", "rollback", "catchup",
];

/// A project: state, pending request, triggers, plot and history.
pub fn project(ctx: &Ctx, name: &str, page: &ProjectPage) -> String {
    let mut m = String::with_capacity(page.runs.len() * 600 + 8192);
    let _ = write!(
        m,
        "<h1>{}</h1><section aria-labelledby=\"now\"><h2 id=\"now\">Now</h2><p>",
        esc(name)
    );
    match page.status {
        Some(s) => state(&mut m, ctx, s),
        None => m.push_str("not in the config any more"),
    }
    m.push_str("</p>");
    if let Some(req) = page.status.and_then(|s| s.pending.as_ref()) {
        pending(&mut m, req);
    }
    if let (Some(_), Some(_)) = (ctx.csrf, page.project) {
        m.push_str("<div class=\"actions\">");
        action(&mut m, ctx, name, "deploy", "", None, "Deploy now");
        if let Some(r) = page.status.and_then(|s| s.running.as_ref()) {
            let label = format!("Cancel run #{}", r.id);
            action(
                &mut m,
                ctx,
                name,
                "cancel",
                "stop",
                Some(("run", r.id)),
                &label,
            );
        }
        if let Some(r) = page.rollback {
            let label = format!("Roll back to {}", short(&r.request.push.after));
            action(
                &mut m,
                ctx,
                name,
                "rollback",
                "back",
                Some(("to", r.id)),
                &label,
            );
            let _ = write!(
                m,
                "<span class=\"hint\">the commit of <a href=\"{}/projects/{}/runs/{}\">run #{}</a></span>",
                esc(ctx.base),
                seg(name),
                r.id,
                r.id
            );
        }
        m.push_str("</div>");
    }
    m.push_str("</section>");
    if let Some(p) = page.project {
        triggers(&mut m, ctx, p);
    }
    m.push_str(
        "<section aria-labelledby=\"plot\"><h2 id=\"plot\">Durations of the last 100 runs</h2>",
    );
    plot(&mut m, ctx, page.plot);
    m.push_str("</section><section aria-labelledby=\"runs\"><h2 id=\"runs\">Runs</h2>");
    let _ = write!(
        m,
        "<form method=\"get\" class=\"filters\"><label for=\"f-status\">Status</label>\
         <select id=\"f-status\" name=\"status\"><option value=\"\">any</option>"
    );
    for s in STATUSES {
        let sel = if *s == page.status_filter {
            " selected"
        } else {
            ""
        };
        let _ = write!(
            m,
            "<option value=\"{s}\"{sel}>{}</option>",
            s.replace('_', " ")
        );
    }
    m.push_str("</select><label for=\"f-trigger\">Trigger</label><select id=\"f-trigger\" name=\"trigger\"><option value=\"\">any</option>");
    for t in TRIGGERS {
        let sel = if *t == page.trigger_filter {
            " selected"
        } else {
            ""
        };
        let _ = write!(m, "<option value=\"{t}\"{sel}>{t}</option>");
    }
    m.push_str("</select><button type=\"submit\">Filter</button></form>");
    runs_table(&mut m, ctx, page.runs);
    m.push_str("</section>");
    layout(ctx, name, Some("status"), &m)
}

/// The form of an action (`super::Action`): a POST to
/// `/projects/NAME/<action>` with the CSRF token and `field`, if any.
fn action(
    m: &mut String,
    ctx: &Ctx,
    name: &str,
    what: &str,
    class: &str,
    field: Option<(&str, u64)>,
    label: &str,
) {
    let _ = write!(
        m,
        "<form method=\"post\" action=\"{}/projects/{}/{what}\" class=\"{}\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        esc(ctx.base),
        seg(name),
        if class.is_empty() {
            "action".to_string()
        } else {
            format!("action {class}")
        },
        esc(ctx.csrf.unwrap_or_default())
    );
    if let Some((k, v)) = field {
        let _ = write!(m, "<input type=\"hidden\" name=\"{k}\" value=\"{v}\">");
    }
    let _ = write!(m, "<button type=\"submit\">{}</button></form>", esc(label));
}

/// The page of an action that found nothing to act on, saying why.
pub fn refused(ctx: &Ctx, project: &str, title: &str, why: &str) -> String {
    let m = format!(
        "<h1>{}</h1><p>{}</p><p><a href=\"{}/projects/{}\">Back to {}</a></p>",
        esc(title),
        esc(why),
        esc(ctx.base),
        seg(project),
        esc(project)
    );
    layout(ctx, title, None, &m)
}

fn pending(m: &mut String, req: &DeployRequest) {
    let _ = write!(
        m,
        "<p>Waiting for its turn: {} of <code>{}</code> <code>{}</code>{}, received ",
        esc(&req.trigger.to_string()),
        esc(&req.push.git_ref),
        esc(short(&req.push.after)),
        if req.push.pusher.is_empty() {
            String::new()
        } else {
            format!(" by {}", esc(&req.push.pusher))
        }
    );
    time(m, &req.received_at);
    m.push_str("</p>");
}

fn triggers(m: &mut String, ctx: &Ctx, p: &Project) {
    let _ = write!(
        m,
        "<section aria-labelledby=\"triggers\"><h2 id=\"triggers\">Triggers</h2><ul>\
         <li>{} webhook at <code>{}</code>: deploys {}{}</li>\
         <li>manual: <code>deployd deploy {}</code></li>",
        esc(&p.provider.to_string()),
        esc(&p.hook_path()),
        esc(&p.triggers()),
        p.repository
            .as_ref()
            .map(|r| format!(" of <code>{}</code>", esc(r)))
            .unwrap_or_default(),
        esc(&p.name)
    );
    if ctx.csrf.is_some() {
        m.push_str("<li>web: the Deploy now button</li>");
    }
    let _ = write!(
        m,
        "<li>rollback: <code>deployd rollback {}</code>{}</li>",
        esc(&p.name),
        if ctx.csrf.is_some() {
            ", or the Roll back button"
        } else {
            ""
        }
    );
    m.push_str("</ul></section>");
}

/// A bar per run, oldest left, height by duration, colour by outcome.
fn plot(m: &mut String, ctx: &Ctx, runs: &[Run]) {
    let durations: Vec<(&Run, f64)> = runs
        .iter()
        .rev()
        .filter_map(|r| r.duration_secs().map(|d| (r, d)))
        .collect();
    if durations.is_empty() {
        m.push_str("<p>No finished runs yet.</p>");
        return;
    }
    let max = durations
        .iter()
        .map(|d| d.1)
        .fold(0.0f64, f64::max)
        .max(0.001);
    let (w, h, left) = (600.0, 160.0, 44.0);
    let step = (w - left) / durations.len().max(20) as f64;
    let _ = write!(
        m,
        "<svg class=\"plot\" viewBox=\"0 0 {w} {}\" role=\"img\" aria-labelledby=\"plot-desc\">\
         <desc id=\"plot-desc\">Durations of {} runs, the longest {}</desc>\
         <text x=\"0\" y=\"12\" class=\"axis\">{}</text><text x=\"0\" y=\"{h}\" class=\"axis\">0s</text>\
         <line x1=\"{}\" y1=\"0\" x2=\"{}\" y2=\"{h}\" class=\"axis\"/>",
        h + 4.0,
        durations.len(),
        human(max),
        human(max),
        left - 4.0,
        left - 4.0
    );
    for (i, (r, d)) in durations.iter().enumerate() {
        let bh = (d / max * (h - 4.0)).max(1.5);
        let status = r.status.to_string();
        let _ = write!(
            m,
            "<a href=\"{}\"><rect class=\"{}\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\">\
             <title>#{} {} {}</title></rect></a>",
            run_url(ctx, r),
            class_of(&status),
            left + i as f64 * step,
            h - bh,
            (step * 0.8).max(1.0),
            bh,
            r.id,
            esc(&status),
            human(*d)
        );
    }
    m.push_str("</svg>");
}

fn runs_table(m: &mut String, ctx: &Ctx, runs: &[Run]) {
    if runs.is_empty() {
        m.push_str("<p>No runs match.</p>");
        return;
    }
    // A column of hosts only for a project that ran on hosts.
    let fleet = runs.iter().any(|r| !r.hosts.is_empty());
    m.push_str(
        "<div class=\"scroll\"><table class=\"runs\"><thead><tr><th scope=\"col\">Run</th>\
         <th scope=\"col\">Status</th><th scope=\"col\">Trigger</th><th scope=\"col\">Ref</th>\
         <th scope=\"col\">Commit</th><th scope=\"col\">By</th><th scope=\"col\">Started</th>\
         <th scope=\"col\">Took</th>",
    );
    if fleet {
        m.push_str("<th scope=\"col\">Hosts</th>");
    }
    m.push_str("</tr></thead><tbody>");
    for r in runs {
        let _ = write!(
            m,
            "<tr><th scope=\"row\"><a href=\"{}\">#{}</a></th><td>",
            run_url(ctx, r),
            r.id
        );
        badge(m, &r.status.to_string());
        let _ = write!(
            m,
            "</td><td>{}</td><td><code>{}</code></td><td><code>{}</code></td><td>{}</td><td>",
            esc(&r.request.trigger.to_string()),
            esc(r
                .request
                .push
                .git_ref
                .strip_prefix("refs/heads/")
                .unwrap_or(&r.request.push.git_ref)),
            esc(short(&r.request.push.after)),
            esc(&r.request.push.pusher)
        );
        time(m, &r.started_at);
        m.push_str("</td><td>");
        match r.duration_secs() {
            Some(d) => m.push_str(&human(d)),
            None => m.push('—'),
        }
        if fleet {
            m.push_str("</td><td>");
            hosts_row(m, ctx, r, false);
        }
        m.push_str("</td></tr>\n");
    }
    m.push_str("</tbody></table></div>");
}

/// A run: what started it, timings, its hosts and its log (`log` is the
/// part read so far, `offset` where it ends, for the live stream to go on
/// from); with `cancel` (it is the daemon's running run, and actions are
/// on), its Cancel button. With `host`, the page of that host of a fleet
/// run: its state and its own log instead of the run's.
pub fn run(ctx: &Ctx, run: &Run, log: &LogPart, cancel: bool, host: Option<&HostRun>) -> String {
    let (skipped, offset) = (log.start, log.end);
    let mut m = String::with_capacity(log.bytes.len() * 2 + 4096);
    let status = run.status.to_string();
    let run_page = run_url(ctx, run);
    let _ = write!(
        m,
        "<p class=\"crumbs\"><a href=\"{}/projects/{}\">{}</a>",
        esc(ctx.base),
        seg(run.project()),
        esc(run.project()),
    );
    if let Some(h) = host {
        let _ = write!(
            m,
            " · <a href=\"{run_page}\">run #{}</a></p><h1>Host {} of run #{} ",
            run.id,
            esc(&h.name),
            run.id
        );
        badge(&mut m, h.status.as_str());
    } else {
        let _ = write!(m, "</p><h1>Run #{} ", run.id);
        badge(&mut m, &status);
    }
    m.push_str("</h1>");
    if cancel && ctx.csrf.is_some() {
        m.push_str("<div class=\"actions\">");
        let label = format!("Cancel run #{}", run.id);
        action(
            &mut m,
            ctx,
            run.project(),
            "cancel",
            "stop",
            Some(("run", run.id)),
            &label,
        );
        m.push_str("</div>");
    }
    match host {
        Some(h) => host_facts(&mut m, h),
        None => run_facts(&mut m, ctx, run),
    }
    let live = run.status == crate::store::history::Status::Running;
    // The page's own address, the log's and the live stream's hang off it.
    let here = match host {
        Some(h) => format!("{run_page}/hosts/{}", seg(&h.name)),
        None => run_page.clone(),
    };
    let _ = write!(
        m,
        "<h2 id=\"log-h\">{}</h2><p class=\"logmeta\"><a href=\"{here}/log\">plain text</a>",
        match host {
            Some(h) => format!("Log of {}", esc(&h.name)),
            None => "Log".into(),
        }
    );
    if host.is_some() {
        let _ = write!(m, " · <a href=\"{run_page}\">the run's log, every host</a>");
    }
    if skipped > 0 {
        let _ = write!(m, " · the first {skipped} bytes are left out here");
    }
    if live {
        m.push_str(" · <span id=\"live\" role=\"status\">running: reload for more, or let the page follow it</span>");
    }
    let mut lines = String::with_capacity(log.bytes.len() * 2);
    // data-line: the number the next line gets, for the live stream.
    let next = log_lines(&mut lines, &log.bytes, log.first_line);
    let _ = write!(
        m,
        "</p><pre id=\"log\" class=\"log\" aria-labelledby=\"log-h\" tabindex=\"0\" \
         data-offset=\"{offset}\" data-line=\"{next}\">{lines}</pre>"
    );
    // Unescaped: the layout escapes the attribute.
    let live_attr = live.then(|| {
        let here = match host {
            Some(h) => format!("/hosts/{}", seg(&h.name)),
            None => String::new(),
        };
        format!(
            "{}/projects/{}/runs/{}{here}/events",
            ctx.base,
            seg(run.project()),
            run.id
        )
    });
    let title = match host {
        Some(h) => format!("{} #{} {}", run.project(), run.id, h.name),
        None => format!("{} #{}", run.project(), run.id),
    };
    layout(ctx, &title, live_attr.as_deref(), &m)
}

/// The facts of a run page: what started it, timings, exit, outputs, hosts.
fn run_facts(m: &mut String, ctx: &Ctx, run: &Run) {
    m.push_str("<dl class=\"facts\">");
    let mut fact = |k: &str, v: String| {
        if !v.is_empty() {
            let _ = write!(m, "<dt>{k}</dt><dd>{v}</dd>");
        }
    };
    let (req, push) = (&run.request, &run.request.push);
    fact("Trigger", esc(&req.trigger.to_string()));
    fact("Ref", format!("<code>{}</code>", esc(&push.git_ref)));
    if !push.after.is_empty() {
        fact("Commit", format!("<code>{}</code>", esc(&push.after)));
    }
    fact("Repository", esc(&push.repository));
    fact("By", esc(&push.pusher));
    fact("Delivery", esc(&push.delivery));
    let mut t = String::new();
    time(&mut t, &req.received_at);
    if !req.received_at.is_empty() {
        fact("Received", t);
    }
    let mut t = String::new();
    time(&mut t, &run.started_at);
    fact("Started", t);
    if let Some(f) = &run.finished_at {
        let mut t = String::new();
        time(&mut t, f);
        fact("Finished", t);
    }
    if let Some(d) = run.duration_secs() {
        fact("Took", human(d));
    }
    if let Some(c) = run.exit_code {
        fact("Exit code", c.to_string());
    }
    if let Some(s) = run.signal {
        fact("Signal", s.to_string());
    }
    if !req.coalesced.is_empty() {
        fact("Coalesced", esc(&req.coalesced.join(", ")));
    }
    // What the script wrote to DEPLOY_OUTPUT (docs/configuration.md, *What the script gets*).
    if let Some(s) = run.outputs.get("summary") {
        fact("Summary", esc(s));
    }
    if let Some(u) = run.outputs.get("url") {
        fact(
            "URL",
            match web_link(u) {
                Some(u) => format!(
                    "<a href=\"{}\" rel=\"noopener noreferrer\">{}</a>",
                    esc(u),
                    esc(u)
                ),
                None => esc(u),
            },
        );
    }
    if let Some(s) = run.outputs.get("sha") {
        fact("Deployed commit", format!("<code>{}</code>", esc(s)));
    }
    let mut row = String::new();
    hosts_row(&mut row, ctx, run, true);
    fact("Hosts", row);
    m.push_str("</dl>");
}

/// `u` when it is an `http` or `https` URL with a host, the only kind a
/// script's `url` output is made a link of (not `javascript:`, `data:` or
/// a relative path).
pub fn web_link(u: &str) -> Option<&str> {
    let (scheme, rest) = u.split_once("://")?;
    let web = scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https");
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let clean = !u.chars().any(|c| c.is_whitespace() || c.is_control());
    (web && clean && !host.is_empty() && !host.starts_with('@')).then_some(u)
}

/// The part of a log a page shows.
#[derive(Debug, Default)]
pub struct LogPart {
    /// Its bytes: whole lines, from `start` to `end`.
    pub bytes: Vec<u8>,
    /// Byte offset of the first byte shown (more than 0: the start is left out).
    pub start: u64,
    /// Byte offset just past the last byte shown.
    pub end: u64,
    /// The number of its first line.
    pub first_line: u64,
}

/// Renders complete lines of `log` (a partial last line too) as numbered,
/// linkable spans; returns the number the next line gets.
pub fn log_lines(out: &mut String, log: &[u8], first: u64) -> u64 {
    let mut ansi = Ansi::default();
    log_lines_with(out, log, first, &mut ansi)
}

/// [`log_lines`] with the ANSI state carried across calls (the live stream).
pub fn log_lines_with(out: &mut String, log: &[u8], first: u64, ansi: &mut Ansi) -> u64 {
    let mut n = first.max(1);
    if log.is_empty() {
        return n;
    }
    let text = String::from_utf8_lossy(log);
    let text = text.strip_suffix('\n').unwrap_or(&text);
    for line in text.split('\n') {
        let _ = write!(
            out,
            "<span class=\"ln\" id=\"L{n}\"><a href=\"#L{n}\" aria-hidden=\"true\" tabindex=\"-1\">{n}</a>"
        );
        ansi.line(line, out);
        out.push_str("\n</span>");
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_and_https_urls_become_links() {
        for u in [
            "https://app.example.com",
            "HTTP://app.example.com:8080/x?y=1#z",
            "https://user@app.example.com/",
        ] {
            assert_eq!(web_link(u), Some(u), "{u}");
        }
        for u in [
            "javascript:alert(1)",
            "javascript://app.example.com/%0aalert(1)",
            "data:text/html,<b>x</b>",
            "//app.example.com",
            "/relative",
            "https://",
            "https:///path",
            "https://@",
            "https://app.example.com/a b",
            "ftp://app.example.com",
            "app.example.com",
        ] {
            assert_eq!(web_link(u), None, "{u}");
        }
    }
}
