//! `deployd history` (a project's runs, as a table or JSON) and `deployd
//! logs` (a run's log, followed while it runs). Both read what is stored;
//! a run recorded `running` whose processes are gone is said to be cut off,
//! with what the next daemon will do about it.

use std::path::PathBuf;

use anyhow::{Context, anyhow};

use super::{
    Config, Failure, Result, duration, lock_held, next_daemon_will, outln, outputs_lines, project,
    runtime,
};
use crate::store::history::{History, Run, Status};
use crate::store::hosts::{self, HostStatus};
use crate::store::log_tail;
use crate::store::queue;
use crate::store::snapshot::Going;

/// `deployd history PROJECT`: its newest `limit` runs.
pub(super) fn history(config: &Config, name: &str, limit: usize, json: bool) -> Result<()> {
    project(config, name)?;
    let h = History::new(&config.server.state_dir, &config.server.log_dir);
    let runs = h
        .list(name, Some(limit))
        .with_context(|| format!("cannot read the history of {name}"))?;
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&runs).map_err(anyhow::Error::from)?
        );
        return Ok(());
    }
    if runs.is_empty() {
        outln!("{name} has not run yet");
        return Ok(());
    }
    let going = Going::of(&runs, lock_held(config, name));
    let mut rows = vec![Row::header()];
    for r in runs {
        // As `status` says it: cut off, and what the next daemon will do.
        let cut_off = going.cut_off(&r).then(|| {
            let pending = queue::read_pending(&config.server.state_dir, name);
            format!(
                "  (was going when its daemon died; {})",
                next_daemon_will(config, &r, pending.as_ref())
            )
        });
        let status = match (r.status, r.exit_code) {
            _ if cut_off.is_some() => Status::Interrupted.to_string(),
            (Status::Failed, Some(c)) => format!("failed({c})"),
            (s, _) => s.to_string(),
        };
        // Why the CI gate stopped it, or that it went past it.
        let ci = match &r.request.ci {
            Some(n) if n.bypassed => format!("  (past its CI: {} pending)", n.pending.join(", ")),
            Some(n) if n.workflow.is_some() => format!(
                "  (CI: {} {})",
                n.workflow.as_deref().unwrap_or_default(),
                n.conclusion.as_deref().unwrap_or_default()
            ),
            Some(n) => format!("  (CI: {} pending)", n.pending.join(", ")),
            None => String::new(),
        };
        let delivery = if r.request.push.delivery.is_empty() {
            "-"
        } else {
            &r.request.push.delivery
        };
        rows.push(Row {
            cells: [
                r.id.to_string(),
                status,
                r.request.trigger.to_string(),
                r.started_at.clone(),
                duration(&r),
                r.short_sha().to_string(),
            ],
            last: format!("{delivery}{ci}{}", cut_off.unwrap_or_default()),
            under: hosts_line(&r)
                .into_iter()
                .chain(outputs_lines(&r))
                .collect(),
        });
    }
    for line in table(&rows) {
        outln!("{line}");
    }
    Ok(())
}

/// `hosts: web1 succeeded, web2 unhealthy, web3 skipped`: a fleet run's
/// hosts, under its row; nothing for a run without hosts.
fn hosts_line(run: &Run) -> Option<String> {
    (!run.hosts.is_empty()).then(|| format!("hosts: {}", hosts::summary(&run.hosts)))
}

/// One line of the `history` table, and the lines printed under it.
struct Row {
    /// Run, status, trigger, started, took, commit.
    cells: [String; 6],
    /// The delivery and any note: the last column, not padded.
    last: String,
    /// Indented lines under the row (the run's outputs).
    under: Vec<String>,
}

impl Row {
    fn header() -> Row {
        Row {
            cells: ["RUN", "STATUS", "TRIGGER", "STARTED", "TOOK", "COMMIT"].map(String::from),
            last: "DELIVERY".into(),
            under: Vec::new(),
        }
    }
}

/// The `history` table's lines. Two spaces between columns, each column as
/// wide as its widest cell and at least as wide as its usual values (the
/// longest status word, a timestamp, a 12-digit commit), so every status
/// word, trigger and duration lines up. Run and took are right-aligned.
fn table(rows: &[Row]) -> Vec<String> {
    let longest_status = Status::ALL
        .iter()
        .map(|s| s.to_string().len())
        .chain(["failed(255)".len()])
        .max()
        .unwrap_or(0);
    let mut widths = [5, longest_status, "rollback".len(), 24, 8, 12];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(&row.cells) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut lines = Vec::new();
    for row in rows {
        let [run, status, trigger, started, took, commit] = &row.cells;
        let [wr, ws, wt, wst, wto, wc] = widths;
        lines.push(format!(
            "{run:>wr$}  {status:<ws$}  {trigger:<wt$}  {started:<wst$}  {took:>wto$}  \
             {commit:<wc$}  {}",
            row.last
        ));
        for u in &row.under {
            lines.push(format!("{:>wr$}  {u}", ""));
        }
    }
    lines
}

/// `deployd logs PROJECT [RUN] [--host NAME]`: the log of run `id`, else
/// of the newest run (with `host`: that host's own log); with `follow`,
/// copied as it grows until the run ends (or the host is done).
pub(super) fn logs(
    config: &Config,
    name: &str,
    id: Option<u64>,
    follow: bool,
    host: Option<&str>,
) -> Result<()> {
    project(config, name)?;
    let h = History::new(&config.server.state_dir, &config.server.log_dir);
    let run = match id {
        Some(id) => h.get(name, id)?.ok_or_else(|| {
            Failure::Usage(anyhow!(
                "{name} has no run {id} (see `deployd history {name}`)"
            ))
        })?,
        None => h
            .latest(name)?
            .ok_or_else(|| Failure::Runtime(anyhow!("{name} has not run yet")))?,
    };
    let log = match host {
        Some(host) => host_log(&run, host, follow)?,
        None => run.log.clone(),
    };
    let mut orphaned = false;
    let mut out = std::io::stdout();
    runtime()?.block_on(log_tail::follow(&log, &mut out, || {
        if !follow {
            return true;
        }
        match h.get(name, run.id) {
            // The host followed is done; the run may go on with others.
            Ok(Some(r))
                if host.is_some_and(|host| {
                    r.hosts.iter().any(|h| {
                        h.name == host
                            && !matches!(h.status, HostStatus::Pending | HostStatus::Running)
                    })
                }) =>
            {
                true
            }
            // Recorded running but nothing holds the lock: its daemon died
            // and no process of the run is left; do not wait forever.
            Ok(Some(r)) if r.status == Status::Running => {
                orphaned = !lock_held(config, name);
                orphaned
            }
            _ => true,
        }
    }))?;
    if orphaned {
        let newest_running = h
            .list(name, None)
            .unwrap_or_default()
            .into_iter()
            .find(|r| r.status == Status::Running);
        let next = match newest_running {
            // Only the newest interrupted run can be run again.
            Some(r) if r.id == run.id => {
                let pending = queue::read_pending(&config.server.state_dir, name);
                next_daemon_will(config, &run, pending.as_ref())
            }
            _ => "it is not run again: a later run came after it".into(),
        };
        eprintln!(
            "deployd: run {} is recorded running but none of its processes is left: \
             its daemon died. The next daemon records it interrupted; {next}.",
            run.id
        );
    }
    Ok(())
}

/// The own log of host `host` of `run`, or why there is none: a run
/// without hosts, a name not among its hosts (they are listed), a host
/// never started (unless `follow` waits for it to start).
fn host_log(run: &Run, host: &str, follow: bool) -> Result<PathBuf> {
    let project = run.project();
    if run.hosts.is_empty() {
        return Err(Failure::Usage(anyhow!(
            "run {} of {project} has no hosts: it ran its script on this machine \
             (see `deployd logs {project} {}` for its log)",
            run.id,
            run.id
        )));
    }
    let Some(h) = run.hosts.iter().find(|h| h.name == host) else {
        let names: Vec<&str> = run.hosts.iter().map(|h| h.name.as_str()).collect();
        return Err(Failure::Usage(anyhow!(
            "run {} of {project} has no host {host:?}; its hosts: {}",
            run.id,
            names.join(", ")
        )));
    };
    let waits = follow && run.status == Status::Running;
    if !waits && !h.log.exists() {
        let why = if h.note.is_empty() {
            String::new()
        } else {
            format!(" ({})", h.note)
        };
        return Err(Failure::Runtime(anyhow!(
            "{host} has no log in run {} of {project}: it is {}{why}",
            run.id,
            h.status
        )));
    }
    Ok(h.log.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where the header's columns named `names` start.
    fn starts(header: &str, names: &[&str]) -> Vec<usize> {
        names
            .iter()
            .map(|n| header.find(n).unwrap_or(usize::MAX))
            .collect()
    }

    #[test]
    fn history_columns_line_up_for_every_status_word() {
        let mut rows = vec![Row::header()];
        let words = Status::ALL
            .iter()
            .map(|s| s.to_string())
            .chain(["failed(3)".to_string(), "failed(255)".to_string()]);
        for (i, status) in words.enumerate() {
            // A run of hours takes more room than the column's usual width.
            let took = if i == 0 { "1h 2m 3s 400ms" } else { "2s 115ms" };
            rows.push(Row {
                cells: [
                    (i + 1).to_string(),
                    status,
                    "recovery".into(),
                    "2026-11-26T22:46:47.491Z".into(),
                    took.into(),
                    "68e6095da7c6".into(),
                ],
                last: "d-1".into(),
                under: vec![],
            });
        }
        let lines = table(&rows);
        let header = &lines[0];
        let cols = starts(header, &["TRIGGER", "STARTED", "COMMIT", "DELIVERY"]);
        for line in &lines[1..] {
            for (c, want) in cols
                .iter()
                .zip(["recovery", "2026-", "68e6095da7c6", "d-1"])
            {
                assert_eq!(
                    line.get(*c..*c + want.len()),
                    Some(want),
                    "\n{header}\n{line}"
                );
                assert_eq!(line.get(c - 2..*c), Some("  "), "\n{header}\n{line}");
            }
        }
    }
}
