//! `deployd status`: each project's state, from the daemon when one answers,
//! else from what it stored (`store::snapshot`), and the notifications not
//! delivered yet.

use std::time::{Duration, SystemTime};

use super::{Config, Result, duration, lock_held, next_daemon_will, outln, outputs_lines, runtime};
use crate::daemon::control::{self, ControlRequest, Reply};
use crate::intake::ci_gate;
use crate::notify::outbox;
use crate::run::executor::ProjectStatus;
use crate::store::history::History;
use crate::store::reconcile;
use crate::store::snapshot::{self, CiWait, Snapshot};

/// Live status from the daemon, or what the disk says when none answers.
pub(super) fn status(config: &Config, json: bool) -> Result<()> {
    let rt = runtime()?;
    let mut live = None;
    let asked = rt.block_on(control::call(
        &config.server.control_socket,
        &ControlRequest::Status,
        |reply| {
            if let Reply::Status(s) = reply {
                live = Some(s);
            }
            Ok(())
        },
        |_| Ok(()),
    ));
    let (projects, from_daemon) = match (asked, live) {
        (Ok(()), Some(s)) => (s, true),
        _ => (status_from_disk(config), false),
    };
    if json {
        return print_json(config, &projects);
    }
    if !from_daemon {
        outln!(
            "(no daemon answers on {}; state read from disk)",
            config.server.control_socket.display()
        );
    }
    for p in &projects {
        let headline = match (&p.running, p.state.as_str()) {
            (Some(r), "interrupted") => format!(
                "interrupted: run {} ({} {}) was going when its daemon died; {}",
                r.id,
                r.request.trigger,
                r.short_sha(),
                next_daemon_will(config, r, p.pending.as_ref())
            ),
            (Some(r), _) => format!(
                "running run {} ({} {}) since {}",
                r.id,
                r.request.trigger,
                r.short_sha(),
                r.started_at
            ),
            (None, state) => state.to_string(),
        };
        outln!("{}: {headline}", p.project);
        if let Some(CiWait {
            sha,
            since,
            workflows,
        }) = waiting_for_ci(config, &p.project)
        {
            let waited = SystemTime::now().duration_since(since).unwrap_or_default();
            outln!(
                "  waiting for CI on {}: {} ({})",
                crate::text::short_sha(&sha),
                workflows
                    .iter()
                    .map(|s| format!("{} {}", s.workflow, s.state))
                    .collect::<Vec<_>>()
                    .join(", "),
                rough(waited)
            );
        }
        if let Some(q) = &p.pending {
            outln!(
                "  pending: {} {} ({}, received {})",
                q.push.git_ref,
                q.push.short_sha(),
                q.trigger,
                q.received_at
            );
        }
        match &p.last {
            Some(r) => outln!(
                "  last:    run {} {} {} ({} {}, took {})",
                r.id,
                r.status,
                r.started_at,
                r.request.trigger,
                r.short_sha(),
                duration(r)
            ),
            None => outln!("  last:    never run"),
        }
        if let Some(line) = reconcile::status_line(&config.server.state_dir, &p.project) {
            outln!("{line}");
        }
        if let Some(r) = &p.last {
            for line in outputs_lines(r) {
                outln!("           {line}");
            }
        }
    }
    let undelivered = outbox::undelivered(&config.server.state_dir);
    if !undelivered.is_empty() {
        outln!("undelivered notifications and statuses:");
        for (target, t) in undelivered {
            outln!(
                "  {target}: {} waiting, {} given up{}",
                t.pending,
                t.failed,
                t.last_error
                    .map(|e| format!(" (last: {e})"))
                    .unwrap_or_default()
            );
        }
    }
    Ok(())
}

/// `deployd status --json`: each project with the push that waits for its
/// CI, if any: `{"sha", "since", "workflows": [{"workflow", "state"}]}`, and
/// its notifications and statuses not delivered yet, per target:
/// `{"notify.ops": {"pending", "failed", "last_error"}}`.
fn print_json(config: &Config, projects: &[ProjectStatus]) -> Result<()> {
    let mut out = serde_json::to_value(projects).map_err(anyhow::Error::from)?;
    let mut undelivered = outbox::undelivered_by_project(&config.server.state_dir);
    if let Some(list) = out.as_array_mut() {
        for (v, p) in list.iter_mut().zip(projects) {
            v["waiting_for_ci"] = waiting_for_ci(config, &p.project)
                .map(|w| {
                    serde_json::json!({"sha": w.sha, "since": w.since, "workflows": w.workflows})
                })
                .unwrap_or(serde_json::Value::Null);
            v["undelivered"] =
                serde_json::to_value(undelivered.remove(&p.project).unwrap_or_default())
                    .map_err(anyhow::Error::from)?;
            v["reconcile"] = reconcile::status_json(&config.server.state_dir, &p.project);
        }
    }
    outln!(
        "{}",
        serde_json::to_string_pretty(&out).map_err(anyhow::Error::from)?
    );
    Ok(())
}

/// The push of `project` that waits for its CI, if it has a CI gate.
fn waiting_for_ci(config: &Config, project: &str) -> Option<CiWait> {
    let p = config.projects.get(project)?;
    snapshot::waiting_for_ci(&config.server.state_dir, project, &ci_gate::policy(p))
}

/// Each project's status as the disk has it.
fn status_from_disk(config: &Config) -> Vec<ProjectStatus> {
    let s = &config.server;
    let history = History::new(&s.state_dir, &s.log_dir);
    config
        .projects
        .keys()
        .map(|name| {
            let disk = Snapshot::read(&history, &s.state_dir, name, lock_held(config, name));
            ProjectStatus {
                project: name.clone(),
                state: disk.state(),
                running: disk.running().cloned(),
                last: disk.last().cloned(),
                pending: disk.pending,
            }
        })
        .collect()
}

/// A wait in whole seconds, minutes or hours and minutes: `45s`, `12m`,
/// `1h 5m`.
fn rough(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        _ => format!("{}h {}m", s / 3600, s % 3600 / 60),
    }
}
