//! A fleet run's hosts on the status page (docs/fleet.md): the row of
//! badges on a run's page and in a project's runs, and the facts of one
//! host's page.

use std::fmt::Write;

use super::{Ctx, class_of, esc, human, seg, time};
use crate::store::history::Run;
use crate::store::hosts::HostRun;

/// The facts of a host's page: its state, timings, exit code and why.
pub(super) fn host_facts(m: &mut String, h: &HostRun) {
    m.push_str("<dl class=\"facts\">");
    let mut fact = |k: &str, v: String| {
        if !v.is_empty() {
            let _ = write!(m, "<dt>{k}</dt><dd>{v}</dd>");
        }
    };
    fact("Status", esc(&h.status.as_str().replace('_', " ")));
    if let Some(s) = &h.started_at {
        let mut t = String::new();
        time(&mut t, s);
        fact("Started", t);
    }
    if let Some(f) = &h.finished_at {
        let mut t = String::new();
        time(&mut t, f);
        fact("Finished", t);
    }
    let took = h
        .started_at
        .as_deref()
        .zip(h.finished_at.as_deref())
        .and_then(|(s, f)| {
            let (s, f) = (
                humantime::parse_rfc3339_weak(s).ok()?,
                humantime::parse_rfc3339_weak(f).ok()?,
            );
            f.duration_since(s).ok()
        });
    if let Some(d) = took {
        fact("Took", human(d.as_secs_f64()));
    }
    if let Some(c) = h.exit_code {
        fact("Exit code", c.to_string());
    }
    fact("Why", esc(&h.note));
    m.push_str("</dl>");
}

/// A fleet run's hosts in rollout order, as a row of badges each saying
/// its host's name and state in words (the colour only repeats the state);
/// with `links`, each leads to that host's page and log. Nothing for a run
/// without hosts.
pub(super) fn hosts_row(m: &mut String, ctx: &Ctx, run: &Run, links: bool) {
    if run.hosts.is_empty() {
        return;
    }
    m.push_str("<ul class=\"hosts\" aria-label=\"Hosts\">");
    for h in &run.hosts {
        let status = h.status.as_str();
        let label = format!("{}: {}", esc(&h.name), esc(&status.replace('_', " ")));
        let title = if h.note.is_empty() {
            String::new()
        } else {
            format!(" title=\"{}\"", esc(&h.note))
        };
        if links {
            let _ = write!(
                m,
                "<li><a class=\"st {}\" href=\"{}/projects/{}/runs/{}/hosts/{}\"{title}>{label}</a></li>",
                class_of(status),
                esc(ctx.base),
                seg(run.project()),
                run.id,
                seg(&h.name),
            );
        } else {
            let _ = write!(
                m,
                "<li><span class=\"st {}\"{title}>{label}</span></li>",
                class_of(status)
            );
        }
    }
    m.push_str("</ul>");
}
