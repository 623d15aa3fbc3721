//! Notifications: which events there are, the JSON document that describes
//! one, and the message each kind of target gets (one file per kind). The
//! outbox ([`crate::notify::outbox`]) stores the documents and sends them.
//!
//! The events are one table, [`EVENTS`]: a new run status (say `cancelled`)
//! becomes an event by adding one line.

pub mod command;
pub mod discord;
pub mod ntfy;
pub(crate) mod outbox;
pub mod slack;
pub mod webhook;

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use serde::{Deserialize, Serialize};

pub use crate::config::events::{EVENTS, Event, Tone, event};
use crate::config::{NotifyKind, NotifyTarget};
use crate::http_client::{self, Attempt};
use crate::store::history::{Run, Status};
use crate::store::hosts::HostStatus;

/// The event a run's record stands for: `started` while it runs, else its
/// status — or `recovered` for a success after a run that was not one.
/// `previous` is the status of the project's run before it, if any.
pub fn event_of(run: &Run, previous: Option<Status>) -> Option<&'static Event> {
    if run.status == Status::Running {
        return event("started");
    }
    if run.status == Status::Succeeded
        && matches!(
            previous,
            Some(Status::Failed | Status::TimedOut | Status::Interrupted | Status::Unhealthy)
        )
    {
        return event("recovered");
    }
    event(&run.status.to_string())
}

/// The JSON document a webhook target receives (and a command target reads
/// on stdin); docs/notifications.md documents it field by field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Document {
    /// The event: `started`, `succeeded`, `failed`, `timed_out`,
    /// `interrupted`, `recovered` or `test`.
    pub event: String,
    /// The project.
    pub project: String,
    /// The run's id.
    pub run_id: u64,
    /// The run's status (`running` for `started`).
    pub status: String,
    /// `webhook`, `manual` or `recovery`.
    pub trigger: String,
    /// Full ref.
    #[serde(rename = "ref")]
    pub git_ref: String,
    /// The pushed commit (empty for a manual run without `--sha`).
    pub sha: String,
    /// The commit before the push.
    pub before: String,
    /// `owner/name`.
    pub repository: String,
    /// Who pushed.
    pub pusher: String,
    /// The first line of the head commit's message (`DEPLOY_MESSAGE`);
    /// empty when the forge sent none. Absent from messages queued by
    /// earlier versions.
    #[serde(default)]
    pub message: String,
    /// The forge's delivery id.
    pub delivery: String,
    /// RFC 3339.
    pub started_at: String,
    /// RFC 3339; null for `started`.
    pub finished_at: Option<String>,
    /// How long the run took; null for `started`.
    pub duration_ms: Option<u64>,
    /// The script's outputs (`url`, `sha`, `summary`).
    pub outputs: BTreeMap<String, String>,
    /// The last lines of the run's log.
    pub log_tail: String,
    /// The host deployd runs on.
    pub host: String,
    /// A fleet run's hosts that failed, `web2 (unhealthy)` (docs/fleet.md);
    /// left out when none did.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_hosts: Vec<String>,
}

/// Lines of the log kept in a document.
pub const TAIL_LINES: usize = 20;

impl Document {
    /// The document for `event` of `run`.
    pub fn new(run: &Run, event: &Event) -> Document {
        let duration_ms = run.finished_at.as_deref().and_then(|end| {
            let a = humantime::parse_rfc3339(&run.started_at).ok()?;
            let b = humantime::parse_rfc3339(end).ok()?;
            Some(b.duration_since(a).ok()?.as_millis() as u64)
        });
        let push = &run.request.push;
        Document {
            event: event.name.to_string(),
            project: run.project().to_string(),
            run_id: run.id,
            status: run.status.to_string(),
            trigger: run.request.trigger.to_string(),
            git_ref: push.git_ref.clone(),
            sha: push.after.clone(),
            before: push.before.clone(),
            repository: push.repository.clone(),
            pusher: push.pusher.clone(),
            message: push.title().to_string(),
            delivery: push.delivery.clone(),
            started_at: run.started_at.clone(),
            finished_at: run.finished_at.clone(),
            duration_ms,
            outputs: run.outputs.clone(),
            failed_hosts: run
                .hosts
                .iter()
                // A failed rollback too: that host needs a look most.
                .filter(|h| h.status.failure() || h.status == HostStatus::RollbackFailed)
                .map(|h| format!("{} ({})", h.name, h.status))
                .collect(),
            log_tail: if run.status == Status::Running {
                String::new()
            } else {
                log_tail(&run.log, TAIL_LINES)
            },
            host: host(),
        }
    }

    /// The event's row of [`EVENTS`] (`test` reads as `succeeded`).
    pub fn event(&self) -> &'static Event {
        event(&self.event).unwrap_or(&EVENTS[1])
    }

    /// The commit that went out: the script's `sha` output, else the push's.
    pub fn commit(&self) -> &str {
        self.outputs
            .get("sha")
            .map(String::as_str)
            .filter(|s| !s.is_empty())
            .unwrap_or(&self.sha)
    }

    /// `app: deploy failed`.
    pub fn title(&self) -> String {
        if self.event == "test" {
            return format!("{}: test notification from deployd", self.project);
        }
        format!("{}: {}", self.project, self.event().says)
    }

    /// What a chat message says under its title, one fact a line: the
    /// commit and who pushed, the commit's first line, how it ended and how
    /// long it took, the summary, the link.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if self.event == "test" {
            let on = if self.host.is_empty() {
                String::new()
            } else {
                format!(" on {}", self.host)
            };
            lines.push(format!(
                "A test message from deployd{on}: this target works."
            ));
            return lines;
        }
        let commit = self.commit();
        let branch = self
            .git_ref
            .strip_prefix("refs/heads/")
            .unwrap_or(&self.git_ref);
        let mut first = format!("run {} ({})", self.run_id, self.trigger);
        if !commit.is_empty() {
            first.push_str(&format!(", commit {}", crate::text::short_sha(commit)));
        }
        if !branch.is_empty() {
            first.push_str(&format!(" on {branch}"));
        }
        if !self.pusher.is_empty() {
            // A push's author pushed; anyone else asked for the run.
            let by = match self.trigger.as_str() {
                "webhook" | "recovery" => "pushed by",
                _ => "started by",
            };
            first.push_str(&format!(", {by} {}", self.pusher));
        }
        lines.push(first);
        if !self.message.is_empty() {
            lines.push(format!("\"{}\"", self.message));
        }
        // A push the CI gate dropped never ran: nothing took any time.
        if let Some(ms) = self.duration_ms
            && !self.status.starts_with("ci_")
        {
            lines.push(format!(
                "{} after {}",
                self.status.replace('_', " "),
                took(ms)
            ));
        }
        if !self.failed_hosts.is_empty() {
            lines.push(format!("failed on {}", self.failed_hosts.join(", ")));
        }
        if let Some(s) = self.outputs.get("summary") {
            lines.push(s.clone());
        }
        if let Some(u) = self.outputs.get("url") {
            lines.push(u.clone());
        }
        lines
    }

    /// A document for `deployd notify-test`.
    pub fn test(project: &str) -> Document {
        let now = crate::fsutil::now_rfc3339();
        Document {
            event: "test".into(),
            project: project.to_string(),
            run_id: 0,
            status: "succeeded".into(),
            trigger: "manual".into(),
            git_ref: String::new(),
            sha: String::new(),
            before: String::new(),
            repository: String::new(),
            pusher: String::new(),
            message: String::new(),
            delivery: String::new(),
            started_at: now.clone(),
            finished_at: Some(now),
            duration_ms: Some(0),
            outputs: BTreeMap::new(),
            log_tail: String::new(),
            host: host(),
            failed_hosts: Vec::new(),
        }
    }
}

/// How long a run took, as a person would say it: to the millisecond under
/// ten seconds (`8ms`, `2s 115ms`), to the second above (`15m 10s`).
fn took(ms: u64) -> String {
    let d = if ms < 10_000 {
        std::time::Duration::from_millis(ms)
    } else {
        std::time::Duration::from_secs((ms + 500) / 1000)
    };
    humantime::format_duration(d).to_string()
}

/// The last `n` lines of a log (at most 8 KiB of it, each line at most 300
/// bytes), lossily decoded.
pub fn log_tail(path: &Path, n: usize) -> String {
    let Ok(mut f) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(8192)));
    let mut bytes = Vec::new();
    let _ = f.take(8192).read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(n);
    lines[start..]
        .iter()
        .map(|l| crate::text::truncate(l, 300))
        .collect::<Vec<_>>()
        .join("\n")
}

/// This machine's name.
pub fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

/// Sends `doc` to `target` once (blocking): what came of it.
pub fn send(target: &NotifyTarget, doc: &Document) -> Attempt {
    let url = target.url.as_ref().map(|u| u.0.as_str()).unwrap_or("");
    let request = match target.kind {
        NotifyKind::Command => return command::run(target, doc),
        NotifyKind::Webhook => webhook::request(target, url, doc),
        NotifyKind::Slack => slack::request(url, doc),
        NotifyKind::Discord => discord::request(url, doc),
        NotifyKind::Ntfy => ntfy::request(url, doc),
    };
    match http_client::send(&request) {
        Ok(resp) => Attempt::from_response(&resp, hint(target.kind)),
        Err(e) => Attempt::Retry {
            error: e,
            after: None,
        },
    }
}

/// What to check when a target refuses (401/403/404).
fn hint(kind: NotifyKind) -> &'static str {
    match kind {
        NotifyKind::Slack | NotifyKind::Discord => {
            "check the webhook URL: it may have been revoked or the channel deleted"
        }
        NotifyKind::Ntfy => "check the topic URL and, for a protected topic, its access token",
        _ => "check the URL and what the receiver expects",
    }
}

/// The document for `run` as it is now (started, or finished), looking up
/// the status of the project's previous run in `history` for `recovered`.
/// Blocking (reads records).
pub fn document_for(run: &Run, history: &crate::store::history::History) -> Option<Document> {
    let previous = if run.status == Status::Succeeded {
        history
            .list(run.project(), Some(20))
            .unwrap_or_default()
            .into_iter()
            .find(|r| r.id < run.id && r.status != Status::Running)
            .map(|r| r.status)
    } else {
        None
    };
    event_of(run, previous).map(|e| Document::new(run, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finished(event: &str, status: &str, trigger: &str, ms: u64) -> Document {
        let mut d = Document::test("app");
        d.event = event.into();
        d.status = status.into();
        d.trigger = trigger.into();
        d.run_id = 7;
        d.git_ref = "refs/heads/main".into();
        d.sha = "68e6095da7c6cfcfed2710e465170ab1f500ead7".into();
        d.pusher = "octocat".into();
        d.message = "Fix the login form".into();
        d.duration_ms = Some(ms);
        d
    }

    #[test]
    fn chat_lines_name_the_commit() {
        let d = finished("failed", "failed", "webhook", 8);
        assert_eq!(
            d.lines()[..2],
            [
                "run 7 (webhook), commit 68e6095da7c6 on main, pushed by octocat",
                "\"Fix the login form\"",
            ]
        );
        let mut d = d;
        d.message.clear();
        assert!(!d.lines()[1].starts_with('"'), "{:?}", d.lines());
    }

    #[test]
    fn chat_lines_read_as_sentences() {
        let d = finished("failed", "failed", "webhook", 8);
        assert_eq!(
            d.lines(),
            [
                "run 7 (webhook), commit 68e6095da7c6 on main, pushed by octocat",
                "\"Fix the login form\"",
                "failed after 8ms",
            ]
        );
        // Words, not the record's field value; the time as it was.
        let d = finished("timed_out", "timed_out", "webhook", 900_400);
        assert_eq!(d.lines()[2], "timed out after 15m");
        let d = finished("succeeded", "succeeded", "manual", 2_115);
        assert!(
            d.lines()[0].ends_with(", started by octocat"),
            "{:?}",
            d.lines()
        );
        assert_eq!(d.lines()[2], "succeeded after 2s 115ms");
        // The CI gate dropped it: it never ran, so no time is given.
        let d = finished("ci_failed", "ci_failed", "webhook", 0);
        assert_eq!(d.lines().len(), 2, "{:?}", d.lines());
        // A test says it is one, not "run 0 succeeded after 0s".
        let t = Document::test("app");
        assert_eq!(t.lines().len(), 1);
        assert!(t.lines()[0].contains("test message"), "{:?}", t.lines());
        assert!(!t.lines()[0].contains("run 0"), "{:?}", t.lines());
    }

    #[test]
    fn events_and_defaults() {
        assert_eq!(
            crate::config::events::default_on(),
            [
                "failed",
                "timed_out",
                "unhealthy",
                "ci_failed",
                "ci_timeout",
                "recovered"
            ]
        );
        assert!(event("cancelled").is_some_and(|e| !e.default_on));
        assert!(event("queued").is_none());
        for s in [
            Status::Succeeded,
            Status::Failed,
            Status::TimedOut,
            Status::Interrupted,
        ] {
            assert!(event(&s.to_string()).is_some(), "{s}");
        }
    }

    #[test]
    fn a_fleet_run_says_which_hosts_failed() {
        let mut doc = Document::test("app");
        doc.event = "finished".into();
        doc.failed_hosts = vec!["web2 (unhealthy)".into(), "web3 (failed)".into()];
        assert!(
            doc.lines()
                .contains(&"failed on web2 (unhealthy), web3 (failed)".to_string()),
            "{:?}",
            doc.lines()
        );
        let json = serde_json::to_value(&doc).unwrap();
        assert_eq!(json["failed_hosts"][0], "web2 (unhealthy)");
    }
}
