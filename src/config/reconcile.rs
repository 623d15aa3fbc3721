//! A project's `remote` and `reconcile` keys (docs/catch-up.md): where
//! `git ls-remote` asks for the deploy branch's head, and when. Their shape
//! in the file and their checks live here; what is done with them lives in
//! `intake/catchup.rs`.

use std::time::Duration;

use serde::Deserialize;

/// The shortest `reconcile` interval: a forge asked more often than this
/// would be polled, not reconciled with.
const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// The longest, as for every duration of the config: a century.
const MAX_INTERVAL: Duration = Duration::from_secs(100 * 31_557_600);

/// When deployd compares the forge's head with what it deployed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Once, when the daemon starts (the default).
    Start,
    /// Never.
    Off,
    /// When the daemon starts, and then at this interval (pull mode).
    Every(Duration),
}

/// A project's catch-up settings, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconcile {
    /// The git URL `ls-remote` asks; `None`: the `origin` of `working_dir`,
    /// looked up when the reconcile runs (a checkout may be made after the
    /// config is written).
    pub remote: Option<String>,
    /// When.
    pub mode: Mode,
    /// `reconcile` was written in the file: a project that asked for it and
    /// has no remote is told so, one that did not ask is left alone.
    pub explicit: bool,
}

impl Default for Reconcile {
    fn default() -> Self {
        Reconcile {
            remote: None,
            mode: Mode::Start,
            explicit: false,
        }
    }
}

impl Reconcile {
    /// The interval of pull mode, if any: the one thing that makes a timer.
    pub fn interval(&self) -> Option<Duration> {
        match self.mode {
            Mode::Every(d) => Some(d),
            Mode::Start | Mode::Off => None,
        }
    }
}

/// `remote` as written: a git URL or path.
pub(super) struct RawRemote(String);

/// `reconcile` as written: `"start"`, `"off"` or a duration.
pub(super) struct RawMode(String);

/// A string value or a message in words (not serde's).
fn text<'de, D: serde::Deserializer<'de>>(d: D, what: &str) -> Result<String, D::Error> {
    match toml::Value::deserialize(d)? {
        toml::Value::String(s) => Ok(s),
        toml::Value::Integer(n) => Err(serde::de::Error::custom(format!(
            "expected {what}, found the number {n}"
        ))),
        toml::Value::Boolean(b) => Err(serde::de::Error::custom(format!(
            "expected {what}, found {b}"
        ))),
        _ => Err(serde::de::Error::custom(format!("expected {what}"))),
    }
}

impl<'de> Deserialize<'de> for RawRemote {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        text(d, "a git URL such as \"https://github.com/acme/app.git\"").map(RawRemote)
    }
}

impl<'de> Deserialize<'de> for RawMode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        text(d, "\"start\", \"off\" or an interval such as \"5m\"").map(RawMode)
    }
}

/// Why `remote` cannot be handed to git, if it cannot: empty, or read as
/// an option (`--upload-pack=…` would run a command), or spread over lines.
pub fn remote_problem(remote: &str) -> Option<&'static str> {
    if remote.trim().is_empty() {
        Some("is empty: give a git URL, or leave remote out to use working_dir's origin")
    } else if remote.starts_with('-') {
        Some("may not start with '-': git would read it as an option")
    } else if remote.chars().any(char::is_control) {
        Some("may not hold control characters")
    } else {
        None
    }
}

/// Checks the two keys; an error names the key (`remote` or `reconcile`)
/// and says what is wrong.
pub(super) fn check(
    remote: Option<RawRemote>,
    mode: Option<RawMode>,
) -> Result<Reconcile, (&'static str, String)> {
    let remote = match remote {
        Some(RawRemote(r)) => {
            if let Some(p) = remote_problem(&r) {
                return Err(("remote", format!("{r:?} {p}")));
            }
            Some(r)
        }
        None => None,
    };
    let explicit = mode.is_some();
    let mode = match mode.as_ref().map(|m| m.0.trim()) {
        None | Some("start") => Mode::Start,
        Some("off") => Mode::Off,
        Some(other) => {
            let every = humantime::parse_duration(other).map_err(|e| {
                (
                    "reconcile",
                    format!(
                        "{other:?} is not \"start\", \"off\" or an interval such as \"5m\": {e}"
                    ),
                )
            })?;
            if every < MIN_INTERVAL {
                return Err(("reconcile", "an interval must be at least 1s".into()));
            }
            if every > MAX_INTERVAL {
                return Err(("reconcile", "must be at most 100 years".into()));
            }
            Mode::Every(every)
        }
    };
    Ok(Reconcile {
        remote,
        mode,
        explicit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(remote: Option<&str>, mode: Option<&str>) -> Result<Reconcile, (&'static str, String)> {
        check(
            remote.map(|r| RawRemote(r.into())),
            mode.map(|m| RawMode(m.into())),
        )
    }

    #[test]
    fn modes_and_remotes() {
        assert_eq!(of(None, None).unwrap(), Reconcile::default());
        assert_eq!(of(None, Some("off")).unwrap().mode, Mode::Off);
        let r = of(Some("file:///srv/app.git"), Some("5m")).unwrap();
        assert_eq!(r.mode, Mode::Every(Duration::from_secs(300)));
        assert_eq!(r.interval(), Some(Duration::from_secs(300)));
        assert!(r.explicit);
        assert_eq!(r.remote.as_deref(), Some("file:///srv/app.git"));
        assert_eq!(of(None, Some("start")).unwrap().interval(), None);
    }

    #[test]
    fn refuses_what_git_or_a_timer_cannot_take() {
        for (remote, mode, key, says) in [
            (Some("--upload-pack=touch x"), None, "remote", "option"),
            (Some(" "), None, "remote", "empty"),
            (Some("a\nb"), None, "remote", "control"),
            (None, Some("sometimes"), "reconcile", "not \"start\""),
            (None, Some("0s"), "reconcile", "at least 1s"),
            (None, Some("500ms"), "reconcile", "at least 1s"),
        ] {
            let (k, m) = of(remote, mode).unwrap_err();
            assert_eq!(k, key, "{remote:?} {mode:?}");
            assert!(m.contains(says), "{m}");
        }
    }
}
