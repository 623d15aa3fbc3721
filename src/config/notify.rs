//! One `[notify.NAME]` table: a notification target, what it is, where it
//! sends, which events of which projects it hears about; checked from
//! [`RawNotify`] into [`NotifyTarget`].

use std::collections::BTreeMap;
use std::time::Duration;

use crate::config::events;
use crate::config::project::{Project, name_problem};
use crate::config::secrets::{self, Rule, SECRET, Secret, URL};
use crate::config::shape::{Args, RawNotify, Text};
use crate::config::{ConfigError, Context, MAX_DURATION};
use crate::forge::Key;

/// The kinds of notification target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyKind {
    /// POST the documented JSON document, signed when a secret is set.
    Webhook,
    /// A Slack incoming webhook.
    Slack,
    /// A Discord webhook.
    Discord,
    /// An ntfy topic.
    Ntfy,
    /// A local command, with the JSON document on stdin.
    Command,
}

impl NotifyKind {
    /// Every kind with its name in the config.
    pub const ALL: [(NotifyKind, &'static str); 5] = [
        (NotifyKind::Webhook, "webhook"),
        (NotifyKind::Slack, "slack"),
        (NotifyKind::Discord, "discord"),
        (NotifyKind::Ntfy, "ntfy"),
        (NotifyKind::Command, "command"),
    ];

    /// Its name in the config.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(k, _)| *k == self)
            .map_or("webhook", |(_, n)| n)
    }
}

/// One `[notify.NAME]` table.
#[derive(Debug, Clone)]
pub struct NotifyTarget {
    /// Its name.
    pub name: String,
    /// What it is.
    pub kind: NotifyKind,
    /// Where to send (every kind but `command`); often a secret itself.
    pub url: Option<Secret>,
    /// Where the URL came from, for `check` (never the URL).
    pub url_source: String,
    /// Signs webhook bodies (`X-Deployd-Signature-256`).
    pub key: Option<Key>,
    /// Where the secret came from, for `check`.
    pub secret_source: Option<String>,
    /// The events it gets (names from `notify::events::EVENTS`).
    pub on: Vec<String>,
    /// The projects it hears about; `None`: all.
    pub projects: Option<Vec<String>>,
    /// `command`: the program and its arguments (no shell).
    pub command: Vec<String>,
    /// `command`: how long it may take.
    pub timeout: Duration,
}

impl NotifyTarget {
    /// Whether `event` of `project` is for this target. A `recovered` run
    /// also succeeded: a target that asks for `succeeded` gets it too.
    pub fn wants(&self, event: &str, project: &str) -> bool {
        let project_ok = self
            .projects
            .as_ref()
            .is_none_or(|ps| ps.iter().any(|p| p == project));
        let event_ok = self
            .on
            .iter()
            .any(|e| e == event || (event == "recovered" && e == "succeeded"));
        project_ok && event_ok
    }
}

/// The path of `key` in target `name`'s table.
fn at<'a>(name: &'a str, key: &'a str) -> [&'a str; 3] {
    ["notify", name, key]
}

/// The target table `name`, checked; `projects` are the config's own, which
/// its `projects` key may name.
pub(super) fn check(
    name: &str,
    n: RawNotify,
    projects: &BTreeMap<String, Project>,
    cx: &Context<'_>,
) -> Result<NotifyTarget, ConfigError> {
    let k = |key| at(name, key);
    let invalid = |(key, m): secrets::Problem| cx.invalid(&k(key), m);
    if let Some(problem) = name_problem(name) {
        return Err(cx.invalid(
            &["notify", name],
            format!(
                "the target name {name:?} {problem}: it may only hold letters, digits, \
                 '-', '_' and '.', and may not start with '.'"
            ),
        ));
    }
    let kind = kind(name, n.kind, cx)?;
    let url = secrets::given(n.url, n.url_file, n.url_env, n.url_credential, &cx.base);
    let (url, url_source) = match (kind, secrets::choose(URL, url, Rule::ExactlyOne)) {
        (_, Err(problem)) => return Err(invalid(problem)),
        (NotifyKind::Command, Ok(Some(chosen))) => {
            return Err(cx.invalid(
                &k(chosen.key),
                "a command target has no URL: give `command` instead".into(),
            ));
        }
        (NotifyKind::Command, Ok(None)) => (None, String::new()),
        (_, Ok(None)) => {
            return Err(cx.invalid(
                &k("url"),
                "missing: give one of url, url_file, url_env, url_credential".into(),
            ));
        }
        (_, Ok(Some(chosen))) => {
            let url = chosen.read(cx.secrets).map_err(invalid)?;
            let url = url.trim().to_string();
            if !(url.starts_with("https://") || url.starts_with("http://"))
                && url != "secret not loaded"
            {
                // The URL may be a secret: not repeated.
                return Err(cx.invalid(&k(chosen.key), "is not an http(s) URL".into()));
            }
            (Some(Secret(url)), chosen.describe("url", cx.secrets))
        }
    };
    let secret = secrets::given(
        n.secret,
        n.secret_file,
        n.secret_env,
        n.secret_credential,
        &cx.base,
    );
    let (key, secret_source) = match secrets::choose(SECRET, secret, Rule::ExactlyOne) {
        Err(problem) => return Err(invalid(problem)),
        Ok(None) => (None, None),
        Ok(Some(chosen)) if kind != NotifyKind::Webhook => {
            return Err(cx.invalid(
                &k(chosen.key),
                "only a webhook target signs what it sends".into(),
            ));
        }
        Ok(Some(chosen)) => {
            let s = chosen.read_filled("secret", cx.secrets).map_err(invalid)?;
            (
                Some(Key::new(s.as_bytes())),
                Some(chosen.describe("secret", cx.secrets)),
            )
        }
    };
    let on = on(name, n.on, cx)?;
    let target_projects = match n.projects {
        None => None,
        Some(list) => {
            if let Some(p) = list.0.iter().find(|p| !projects.contains_key(*p)) {
                return Err(cx.invalid(
                    &k("projects"),
                    format!("{p:?} is not a project of this config"),
                ));
            }
            Some(list.0)
        }
    };
    let command = command(name, kind, n.command, cx)?;
    let timeout = n.timeout.map_or(Duration::from_secs(30), |d| d.0);
    if timeout.is_zero() || timeout > MAX_DURATION {
        return Err(cx.invalid(
            &k("timeout"),
            "must be more than 0s and at most 100 years".into(),
        ));
    }
    Ok(NotifyTarget {
        name: name.to_string(),
        kind,
        url,
        url_source,
        key,
        secret_source,
        on,
        projects: target_projects,
        command,
        timeout,
    })
}

/// `kind`, which every target must say.
fn kind(name: &str, given: Option<Text>, cx: &Context<'_>) -> Result<NotifyKind, ConfigError> {
    let kinds = || {
        NotifyKind::ALL
            .iter()
            .map(|(_, n)| *n)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let Some(t) = given else {
        return Err(cx.invalid(
            &at(name, "kind"),
            format!("missing: say what the target is, one of {}", kinds()),
        ));
    };
    NotifyKind::ALL
        .iter()
        .find(|(_, n)| *n == t.0)
        .map(|(k, _)| *k)
        .ok_or_else(|| {
            cx.invalid(
                &at(name, "kind"),
                format!("{:?} is not a kind of target: one of {}", t.0, kinds()),
            )
        })
}

/// `on`: the events the target gets, each one deployd sends.
fn on(name: &str, given: Option<Args>, cx: &Context<'_>) -> Result<Vec<String>, ConfigError> {
    let Some(list) = given else {
        return Ok(events::default_on());
    };
    if let Some(e) = list.0.iter().find(|e| events::event(e).is_none()) {
        return Err(cx.invalid(
            &at(name, "on"),
            format!(
                "{e:?} is not an event: one of {}",
                events::event_names().join(", ")
            ),
        ));
    }
    Ok(list.0)
}

/// `command`: required of a `command` target, refused of any other.
fn command(
    name: &str,
    kind: NotifyKind,
    given: Option<Args>,
    cx: &Context<'_>,
) -> Result<Vec<String>, ConfigError> {
    let command = given.map(|c| c.0).unwrap_or_default();
    match kind {
        NotifyKind::Command if command.is_empty() => Err(cx.invalid(
            &at(name, "command"),
            "missing: the program to run and its arguments, e.g. \
             [\"/usr/local/bin/mail-deploy\", \"ops@example.com\"]"
                .into(),
        )),
        NotifyKind::Command => Ok(command),
        _ if !command.is_empty() => Err(cx.invalid(
            &at(name, "command"),
            "only a target of kind \"command\" runs a command".into(),
        )),
        _ => Ok(command),
    }
}
