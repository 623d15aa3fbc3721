//! The TOML configuration: the checked [`Config`] the rest of the program
//! uses, [`parse`] and [`load`], and [`ConfigError`], whose messages point
//! at a file, a line and a key.
//!
//! Parsing is split in two, like ripgrep does it: [`parse`] turns text into a
//! [`Config`] (unit tests cover it; it looks at the disk only for the script
//! and working directory a run will use), [`load`] reads the file and the
//! secrets it names. Lines and keys in errors come from the TOML parser's own
//! spans, so a quoted name, an inline table or a dotted key is found where
//! it is written.
//!
//! How the work is shared, in the order a config goes through it:
//! - `shape`: the serde types as the file writes them, a type per kind of
//!   value so that a wrong one is answered in words;
//! - `spans`: where each key is in the text, for the errors;
//! - one validator per table, each turning its shape into the checked
//!   type it defines: `server` (`[server]`), `project`
//!   (`[projects.NAME]`), `report` (`[projects.NAME.report]`), `notify`
//!   (`[notify.NAME]`), `web` (`[web]`);
//! - `secrets`: the one rule for every secret value (at most one of `X`,
//!   `X_file`, `X_env`, `X_credential`), reading it, saying where it came
//!   from;
//! - `places`: where relative paths resolve, the default locations, and
//!   whether a run's script and directory are there.

pub mod events;
pub mod fleet;
pub mod pattern;
pub mod reconcile;

mod notify;
mod places;
mod project;
mod report;
mod secrets;
mod server;
mod shape;
mod spans;
mod web;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::de::DeTable;

pub use notify::{NotifyKind, NotifyTarget};
pub use places::{CREDENTIALS_DIR, DEFAULT_PATH, control_socket_of};
pub use project::{OnNewPush, OnUnhealthy, Project};
pub use report::Report;
pub use secrets::{Secret, Secrets, SystemSecrets};
pub use server::{DEFAULT_MAX_AGE, Server};
pub use shape::parse_size;
pub use web::{Web, WebToken};

use places::{base_dir, readable_by_others, resolve_in};
use secrets::NoSecrets;
use shape::RawConfig;
use spans::Spans;

/// The longest duration accepted, a century: "never" for any timeout or
/// grace. humantime parses up to `u64::MAX` seconds, but the daemon adds
/// these to the clock (`Instant::now() + kill_grace`), which panics when
/// the sum overflows; the fuzz target in `fuzz/` checks for that.
const MAX_DURATION: Duration = Duration::from_secs(100 * 31_557_600);

/// A configuration error, already pointing at where the user must look.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read at all.
    #[error("{path}: {}", read_problem(error))]
    Read {
        /// The config file.
        path: PathBuf,
        /// Why reading failed. Not named `source`: the message already says
        /// it, and `{:#}` would print it twice as the error's cause.
        error: std::io::Error,
    },
    /// Nothing named a config (no `-c`, no `$DEPLOYD_CONFIG`) and there is
    /// none at [`DEFAULT_PATH`]: say how to give one, not only "No such file".
    #[error(
        "no config at {DEFAULT_PATH}, where deployd looks when neither -c nor $DEPLOYD_CONFIG \
         names one.\n  Point at yours with -c FILE (or DEPLOYD_CONFIG=FILE).\n  To write one: \
         deploy.example.toml, at the top of deployd's source, shows every key with a comment \
         (and runs as a demo: deployd serve -c deploy.example.toml); scripts/install.sh \
         installs it as {DEFAULT_PATH}."
    )]
    NoConfig,
    /// The config holds no project: a daemon would never deploy anything.
    /// An error for `serve` and a reload, a warning for `check`.
    #[error(
        "{path}: no projects, so nothing will deploy: add a [projects.NAME] table \
         (deploy.example.toml shows one)"
    )]
    NoProjects {
        /// The config file.
        path: PathBuf,
    },
    /// The file was read but something in it is wrong.
    #[error("{file}:{line}: {key}: {message}")]
    Invalid {
        /// The config file (as given).
        file: String,
        /// 1-based line of the offending key; for a key left out, of the
        /// table it belongs in.
        line: usize,
        /// Dotted key path as TOML writes it, e.g. `projects.myapp.timeout`
        /// or `projects."my.app".timeout`.
        key: String,
        /// What is wrong, in words.
        message: String,
    },
}

/// Why a config file could not be read, in words: a missing file says how
/// to name the right one (the io error alone would say "os error 2").
fn read_problem(error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::NotFound => {
            "No such file or directory: give the config's path with -c FILE \
             or DEPLOYD_CONFIG=FILE (deploy.example.toml at the top of the source is \
             a commented example)"
                .into()
        }
        std::io::ErrorKind::PermissionDenied => "this user may not read it: run the command \
             as the daemon's user (sudo -u deployd …) or as root"
            .into(),
        _ => format!("cannot read it: {error}"),
    }
}

/// The whole, validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from; relative paths in it were resolved against its directory.
    pub path: PathBuf,
    /// The `[server]` table.
    pub server: Server,
    /// Projects by name; a `BTreeMap` so listings come out sorted.
    pub projects: BTreeMap<String, Project>,
    /// The `[web]` table: the status page and `/metrics`; `None` when absent
    /// (the page is off unless configured).
    pub web: Option<Web>,
    /// Notification targets, `[notify.NAME]` (docs/notifications.md).
    pub notify: BTreeMap<String, NotifyTarget>,
    /// Things worth telling the operator that do not stop the daemon
    /// (an inline secret in a readable file, for example).
    pub warnings: Vec<String>,
}

impl Config {
    /// [`ConfigError::NoProjects`] when there is nothing to deploy.
    pub fn require_projects(&self) -> Result<(), ConfigError> {
        if self.projects.is_empty() {
            Err(ConfigError::NoProjects {
                path: self.path.clone(),
            })
        } else {
            Ok(())
        }
    }
}

/// Reads the config file at `path` and everything it refers to (secrets).
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = read(path)?;
    let mut config = parse(&text, path, &SystemSecrets)?;
    let inline = config.projects.values().any(|p| {
        secrets::is_inline(&p.secret_source)
            || p.previous_source.as_deref().is_some_and(secrets::is_inline)
            || p.report
                .as_ref()
                .is_some_and(|r| secrets::is_inline(&r.token_source))
    }) || config.notify.values().any(|n| {
        secrets::is_inline(&n.url_source)
            || n.secret_source.as_deref().is_some_and(secrets::is_inline)
    }) || config
        .web
        .as_ref()
        .and_then(|w| w.token.as_ref())
        .is_some_and(|t| secrets::is_inline(&t.source));
    if inline && readable_by_others(path) {
        config.warnings.push(format!(
            "{}: holds an inline secret but is readable by group or others; \
             use secret_file or secret_credential, or chmod 600 it",
            path.display()
        ));
    }
    Ok(config)
}

/// Reads the config file at `path` without reading any secret: for the CLI
/// commands that never sign or verify (status, history, logs, deploy), so
/// they work where the secrets are out of reach — a `secret_credential`
/// outside the service, a root-only secret file. Each key holds a
/// placeholder that verifies nothing a forge would send.
pub fn load_without_secrets(path: &Path) -> Result<Config, ConfigError> {
    parse(&read(path)?, path, &NoSecrets)
}

/// The config file's text.
fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
        path: path.to_path_buf(),
        error,
    })
}

/// What every table's validator needs: where keys are written (for its
/// errors), where relative paths resolve, and how secrets are read.
struct Context<'a> {
    /// The config file as given, for errors.
    file: String,
    /// Where each key is in the text.
    spans: Spans<'a>,
    /// The config file's directory.
    base: PathBuf,
    /// Reads the secrets the file names.
    secrets: &'a dyn Secrets,
}

impl Context<'_> {
    /// The error for the value at `key`, on its line.
    fn invalid(&self, key: &[&str], message: String) -> ConfigError {
        self.spans.invalid(&self.file, key, message)
    }

    /// The address at `key`: as given, or `default`.
    fn address(
        &self,
        key: &[&str],
        given: Option<shape::Text>,
        default: &str,
    ) -> Result<SocketAddr, ConfigError> {
        let text = given.map_or_else(|| default.to_string(), |t| t.0);
        text.parse().map_err(|_| {
            self.invalid(
                key,
                format!("{text:?} is not an address like \"{default}\""),
            )
        })
    }

    /// `p`, when relative, under the config file's directory.
    fn resolve(&self, p: &Path) -> PathBuf {
        resolve_in(&self.base, p)
    }
}

/// Parses and validates config text. `path` names the file in errors and is
/// the base for relative paths; `secrets` reads the secrets it names. The
/// disk is only looked at for the paths a run will use (the script and its
/// working directory), so that what `check` accepts is what can run.
pub fn parse(text: &str, path: &Path, secrets: &dyn Secrets) -> Result<Config, ConfigError> {
    let file = path.display().to_string();
    let doc = DeTable::parse(text).map_err(|e| Spans::syntax_error(text, file.clone(), &e))?;
    let cx = Context {
        spans: Spans {
            text,
            root: doc.get_ref().clone(),
        },
        file,
        base: base_dir(path),
        secrets,
    };
    cx.spans.tables_are_tables().map_err(|(key, message)| {
        let key: Vec<&str> = key.iter().map(String::as_str).collect();
        cx.invalid(&key, message)
    })?;
    let raw = RawConfig::deserialize(toml::de::Deserializer::from(doc))
        .map_err(|e| cx.spans.shape_error(cx.file.clone(), &e))?;
    let server = server::check(raw.server, &cx)?;
    let mut projects = BTreeMap::new();
    for (name, p) in raw.projects {
        let project = project::check(&name, p, &server, &cx)?;
        projects.insert(name, project);
    }
    let mut notify = BTreeMap::new();
    for (name, n) in raw.notify {
        let target = notify::check(&name, n, &projects, &cx)?;
        notify.insert(name, target);
    }
    let mut warnings = Vec::new();
    let web = raw
        .web
        .map(|w| web::check(w, server.listen, &mut warnings, &cx))
        .transpose()?;
    Ok(Config {
        path: path.to_path_buf(),
        server,
        projects,
        web,
        notify,
        warnings,
    })
}

#[cfg(test)]
mod test_support {
    //! What the unit tests of every table share: secrets that need no
    //! files or variables, and a parse of a config text.

    use std::path::Path;

    use super::{Config, ConfigError, Secrets, parse};

    pub(in crate::config) struct Fake;

    impl Secrets for Fake {
        fn file(&self, path: &Path) -> std::io::Result<String> {
            match path.file_name().and_then(|f| f.to_str()) {
                Some("good.secret") => Ok("s3cret\n".into()),
                Some("empty.secret") => Ok("\n".into()),
                _ => Err(std::io::Error::from(std::io::ErrorKind::NotFound)),
            }
        }
        fn env(&self, name: &str) -> Option<String> {
            match name {
                "HOOK_SECRET" => Some("from-env".into()),
                "CREDENTIALS_DIRECTORY" => Some("/run/credentials/deployd.service".into()),
                _ => None,
            }
        }
    }

    /// A script path that exists on every Unix machine.
    pub(in crate::config) const SCRIPT: &str = "/bin/sh";

    pub(in crate::config) fn cfg(text: &str) -> Result<Config, ConfigError> {
        parse(text, Path::new("/etc/deployd/deploy.toml"), &Fake)
    }

    pub(in crate::config) fn err(text: &str) -> (usize, String, String) {
        match cfg(text) {
            Err(ConfigError::Invalid {
                line, key, message, ..
            }) => (line, key, message),
            other => panic!("expected an Invalid error for\n{text}\ngot {other:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_support::*;
    use crate::forge::{Key, Provider};

    #[test]
    fn defaults_and_relative_paths() {
        let c = cfg(&format!(
            "[server]\nstate_dir = \"state\"\n[projects.app]\nsecret_file = \"good.secret\"\nscript = \"{SCRIPT}\"\n"
        ))
        .unwrap();
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:9000");
        assert_eq!(c.server.state_dir, Path::new("/etc/deployd/state"));
        assert_eq!(
            c.server.control_socket,
            Path::new("/etc/deployd/state/control.sock")
        );
        assert_eq!(c.server.max_body, 25 << 20);
        assert_eq!(c.server.parallel, 1);
        let p = &c.projects["app"];
        assert_eq!(p.branches.written(), ["main"]);
        assert_eq!(p.default_ref().as_deref(), Some("refs/heads/main"));
        assert!(p.tags.is_empty() && p.paths.is_empty() && p.paths_ignore.is_empty());
        assert_eq!(p.timeout, Duration::from_secs(900));
        assert_eq!(p.working_dir, Path::new("/bin"));
        assert_eq!(p.keep_runs, 100);
        assert_eq!(p.on_new_push, OnNewPush::Queue);
        assert!(p.health_check.is_empty());
        assert_eq!(p.health_timeout, Duration::from_secs(10));
        assert_eq!(p.health_retries, 5);
        assert_eq!(p.health_interval, Duration::from_secs(3));
        assert_eq!(p.on_unhealthy, OnUnhealthy::Keep);
        assert_eq!(p.provider, Provider::Github);
        assert_eq!(p.key.sign(b"x"), Key::new(b"s3cret").sign(b"x"));
    }

    #[test]
    fn long_messages_read_as_one_line() {
        let app = format!("[projects.app]\nsecret = \"x\"\nscript = \"{SCRIPT}\"\n");
        for (text, says) in [
            (
                format!("[server]\nallow_from = \"10.0.0.1\"\n{app}"),
                "a list of addresses or networks such as [\"192.0.2.0/24\"",
            ),
            (
                format!("{app}[notify.\".x\"]\nkind = \"command\"\ncommand = [\"/bin/true\"]\n"),
                "it may only hold letters, digits, '-', '_' and '.'",
            ),
            (
                format!("{app}[notify.mail]\nkind = \"command\"\n"),
                "its arguments, e.g. [\"/usr/local/bin/mail-deploy\"",
            ),
        ] {
            let (_, _, msg) = err(&text);
            assert!(msg.contains(says), "{msg}");
            assert!(!msg.contains("  "), "a run of spaces in: {msg}");
        }
    }

    #[test]
    fn invalid_values() {
        assert_eq!(err("[server]\nlisten = \"nowhere\"\n").1, "server.listen");
        assert_eq!(err("[server]\nparallel = 0\n").0, 2);
        assert_eq!(
            err("[server]\nmax_body = \"12 parsecs\"\n").1,
            "server.max_body"
        );
        let bad_name = err(&format!(
            "[projects.\"a/b\"]\nsecret = \"x\"\nscript = \"{SCRIPT}\"\n"
        ));
        assert!(bad_name.2.contains("project name"));
        let missing_script =
            err("[projects.app]\nsecret = \"x\"\nscript = \"/nonexistent/deploy.sh\"\n");
        assert_eq!(missing_script.1, "projects.app.script");
        assert_eq!(missing_script.0, 3);
        let provider = err(&format!(
            "[projects.app]\nprovider = \"sourcehut\"\nsecret = \"x\"\nscript = \"{SCRIPT}\"\n"
        ));
        assert_eq!(provider.1, "projects.app.provider");
        // Past a century is refused: the daemon adds durations to the clock,
        // and humantime reads up to u64::MAX seconds, which would overflow it.
        let huge = err(&format!(
            "[projects.app]\nsecret = \"x\"\nscript = \"{SCRIPT}\"\nkill_grace = \"18446744073709551615s\"\n"
        ));
        assert_eq!((huge.0, huge.1.as_str()), (4, "projects.app.kill_grace"));
        assert_eq!(
            err("[server]\nshutdown_grace = \"101years\"\n").1,
            "server.shutdown_grace"
        );
        assert!(
            cfg(&format!(
                "[projects.app]\nsecret = \"x\"\nscript = \"{SCRIPT}\"\ntimeout = \"100years\"\n"
            ))
            .is_ok()
        );
    }
}
