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
pub mod pattern;

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
    /// Notification targets, `[notify.NAME]` (README, "Notifications").
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
mod tests {
    use super::*;
    use crate::config::secrets::{SecretSource, describe_source, read_secret};
    use crate::forge::{Key, Provider};

    struct Fake;
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
    const SCRIPT: &str = "/bin/sh";

    #[test]
    fn the_control_socket_is_found_in_a_file_that_does_not_load() {
        let dir = std::env::temp_dir().join(format!("deployd-unit-socket-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("deploy.toml");
        let at = |text: &str| {
            std::fs::write(&path, text).unwrap();
            control_socket_of(&path)
        };
        // Broken TOML after [server]; the default socket under state_dir.
        assert_eq!(
            at("[server]\nstate_dir = \"st\"\n[projects.half\n"),
            Some(dir.join("st/control.sock"))
        );
        assert_eq!(
            at("[server]\ncontrol_socket = \"/run/x.sock\"\nbogus = 1\n"),
            Some(PathBuf::from("/run/x.sock"))
        );
        assert_eq!(
            at("not toml at all ["),
            Some(PathBuf::from("/var/lib/deployd/control.sock"))
        );
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(control_socket_of(&path), None);
    }

    fn cfg(text: &str) -> Result<Config, ConfigError> {
        parse(text, Path::new("/etc/deployd/deploy.toml"), &Fake)
    }

    fn err(text: &str) -> (usize, String, String) {
        match cfg(text) {
            Err(ConfigError::Invalid {
                line, key, message, ..
            }) => (line, key, message),
            other => panic!("expected an Invalid error for\n{text}\ngot {other:?}"),
        }
    }

    #[test]
    fn trigger_globs() {
        let ok = cfg(&format!(
            "[projects.app]\nsecret = \"x\"\nscript = \"{SCRIPT}\"\nbranches = [\"main\", \"release/*\"]\n\
             tags = [\"v*\"]\npaths = [\"api/**\"]\npaths_ignore = [\"docs/\"]\n"
        ))
        .unwrap();
        let p = &ok.projects["app"];
        assert_eq!(
            p.triggers(),
            "branches main, release/*; new tags v*; paths api/**; ignoring docs/"
        );
        assert_eq!(p.default_ref().as_deref(), Some("refs/heads/main"));
        // Each bad value on its line, under its key, saying why.
        let head = format!("[projects.app]\nsecret = \"x\"\nscript = \"{SCRIPT}\"\n");
        for (line, key, says) in [
            (
                "paths = [\"api/[\"]",
                "projects.app.paths",
                "\"api/[\" is not a glob",
            ),
            (
                "paths_ignore = [\"!x\"]",
                "projects.app.paths_ignore",
                "negation",
            ),
            ("tags = \"v*\"", "projects.app.tags", "write [\"v*\"]"),
            ("tags = [1]", "projects.app.tags", "glob 1: expected text"),
            (
                "branches = [\"refs/heads/x\"]",
                "projects.app.branches",
                "the name alone",
            ),
            (
                "branch = \"a\"\nbranches = [\"b\"]",
                "projects.app.branches",
                "not both",
            ),
        ] {
            let (l, k, m) = err(&format!("{head}{line}\n"));
            let want_line = if line.contains("\nbranches") { 5 } else { 4 };
            assert_eq!((l, k.as_str()), (want_line, key), "{line}: {m}");
            assert!(m.contains(says), "{line}: {m}");
        }
    }

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
    fn unknown_key_names_line_and_key() {
        let (line, key, msg) = err(&format!(
            "[server]\nlisten = \"127.0.0.1:1\"\n\n[projects.app]\nsecret = \"x\"\nscirpt = \"{SCRIPT}\"\n"
        ));
        assert_eq!(line, 6);
        assert_eq!(key, "projects.app.scirpt");
        assert!(msg.contains("unknown field"), "{msg}");
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
    fn bad_duration_names_its_key() {
        let (line, key, _) = err(&format!(
            "[projects.app]\nsecret = \"x\"\nscript = \"{SCRIPT}\"\ntimeout = \"15 fortnights\"\n"
        ));
        assert_eq!((line, key.as_str()), (4, "projects.app.timeout"));
    }

    #[test]
    fn credentials_say_where_they_are_read_from() {
        // Inside the service: systemd's directory.
        let inside = describe_source(&SecretSource::Credential("deployd_app".into()), &Fake);
        assert_eq!(
            inside,
            "secret_credential deployd_app from /run/credentials/deployd.service/deployd_app"
        );
        // Outside it (an admin's `deployd check`): the file the unit loads.
        struct Outside;
        impl Secrets for Outside {
            fn file(&self, path: &Path) -> std::io::Result<String> {
                if path == Path::new("/etc/deployd/credentials/app") {
                    Ok("s3cret\n".into())
                } else {
                    Err(std::io::Error::from(std::io::ErrorKind::NotFound))
                }
            }
            fn env(&self, _: &str) -> Option<String> {
                None
            }
        }
        let ours = SecretSource::Credential("deployd_app".into());
        assert_eq!(
            describe_source(&ours, &Outside),
            "secret_credential deployd_app from /etc/deployd/credentials/app"
        );
        assert_eq!(read_secret(&ours, &Outside).unwrap(), "s3cret");
        // A name the unit does not load from that directory: no guess.
        let other = SecretSource::Credential("app.secret".into());
        assert_eq!(
            describe_source(&other, &Outside),
            "secret_credential app.secret"
        );
        assert!(
            read_secret(&other, &Outside)
                .unwrap_err()
                .contains("not set")
        );
        let escape = SecretSource::Credential("deployd_../x".into());
        assert!(read_secret(&escape, &Outside).is_err());
    }

    #[test]
    fn secret_sources() {
        let two = err(&format!(
            "[projects.app]\nsecret = \"x\"\nsecret_env = \"HOOK_SECRET\"\nscript = \"{SCRIPT}\"\n"
        ));
        assert_eq!(two.1, "projects.app.secret_env");
        let none = err(&format!("[projects.app]\nscript = \"{SCRIPT}\"\n"));
        assert!(none.2.contains("exactly one"), "{}", none.2);
        let empty = err(&format!(
            "[projects.app]\nsecret_file = \"empty.secret\"\nscript = \"{SCRIPT}\"\n"
        ));
        assert_eq!(empty.2, "the secret is empty");
        let missing = err(&format!(
            "[projects.app]\nsecret_env = \"NOPE\"\nscript = \"{SCRIPT}\"\n"
        ));
        assert!(missing.2.contains("NOPE"));
        let env = cfg(&format!(
            "[projects.app]\nsecret_env = \"HOOK_SECRET\"\nscript = \"{SCRIPT}\"\n"
        ))
        .unwrap();
        assert_eq!(env.projects["app"].secret_source, "secret_env $HOOK_SECRET");
        let cred = err(&format!(
            "[projects.app]\nsecret_credential = \"app.secret\"\nscript = \"{SCRIPT}\"\n"
        ));
        assert!(cred.2.contains("missing"), "{}", cred.2);
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

    #[test]
    fn quoted_names_inline_tables_and_dotted_keys_point_at_their_line() {
        // A quoted name holding a dot: the key keeps its quotes, and checks
        // made after parsing find the line too.
        let quoted = format!(
            "[server]\nparallel = 2\n\n[projects.\"my.app\"]\nsecret = \"x\"\nscript = \"{SCRIPT}\"\n"
        );
        let (line, key, _) = err(&format!("{quoted}branch = \"refs/heads/main\"\n"));
        assert_eq!((line, key.as_str()), (7, "projects.\"my.app\".branch"));
        let (line, key, msg) = err(&format!("{quoted}timeout = \"5 parsecs\"\n"));
        assert_eq!(
            (line, key.as_str()),
            (7, "projects.\"my.app\".timeout"),
            "{msg}"
        );
        let (line, key, msg) = err(&format!("{quoted}scirpt = 1\n"));
        assert_eq!((line, key.as_str()), (7, "projects.\"my.app\".scirpt"));
        assert!(msg.contains("unknown field"), "{msg}");
        // A key left out points at its project's table.
        let (line, key, _) = err(&format!(
            "[server]\n\n[projects.\"my.app\"]\nscript = \"{SCRIPT}\"\n"
        ));
        assert_eq!((line, key.as_str()), (3, "projects.\"my.app\".secret"));

        // Inline tables, on one line and (TOML 1.1) over several.
        let (line, key, _) = err(&format!(
            "[server]\nparallel = 2\n\n[projects]\napp = {{ secret = \"x\", script = \"{SCRIPT}\", branch = \"refs/heads/x\" }}\n"
        ));
        assert_eq!((line, key.as_str()), (5, "projects.app.branch"));
        let (line, key, _) = err(&format!(
            "projects = {{ app = {{\n  secret = \"x\",\n  script = \"{SCRIPT}\",\n  timeout = \"0s\" }} }}\n"
        ));
        assert_eq!((line, key.as_str()), (4, "projects.app.timeout"));
        let (line, key, _) = err(&format!(
            "projects = {{ app = {{\n  secret = \"x\",\n  script = \"{SCRIPT}\",\n  timeout = 15 }} }}\n"
        ));
        assert_eq!((line, key.as_str()), (4, "projects.app.timeout"));

        // Dotted keys, at the top level and inside a table.
        let (line, key, _) = err(&format!(
            "projects.app.secret = \"x\"\nprojects.app.script = \"{SCRIPT}\"\n\nprojects.app.kill_grace = \"1 fortnight\"\n"
        ));
        assert_eq!((line, key.as_str()), (4, "projects.app.kill_grace"));
        let (line, key, _) = err(&format!(
            "[projects]\napp.secret = \"x\"\napp.script = \"{SCRIPT}\"\napp.branch = \"refs/heads/x\"\n"
        ));
        assert_eq!((line, key.as_str()), (4, "projects.app.branch"));
        let (line, key, _) = err("[server]\nlisten = \"x\"\n");
        assert_eq!((line, key.as_str()), (2, "server.listen"));

        // Broken TOML still names the key it broke in.
        let (line, key, _) = err(&format!("{quoted}timeout = \n"));
        assert_eq!((line, key.as_str()), (7, "projects.\"my.app\".timeout"));
    }

    #[test]
    fn a_bad_project_name_is_shown_on_its_line_with_what_is_wrong() {
        for (name, problem) in [
            (".hidden", "starts with a dot"),
            ("my app", "holds a space"),
            ("a/b", "holds a '/'"),
            ("", "is empty"),
            ("caf\u{e9}", "holds '\u{e9}'"),
        ] {
            let (line, key, msg) = err(&format!(
                "[server]\nparallel = 2\n\n[projects.{name:?}]\nsecret = \"x\"\nscript = \"{SCRIPT}\"\n"
            ));
            assert_eq!(line, 4, "{name:?}: {msg}");
            assert_eq!(key, format!("projects.{name:?}"));
            assert!(msg.contains(problem), "{name:?}: {msg}");
            assert!(msg.contains("project name"), "{msg}");
        }
        // Allowed: dots inside, dashes, underscores, digits.
        let c = cfg(&format!(
            "[projects.\"my.app-2_b\"]\nsecret = \"x\"\nscript = \"{SCRIPT}\"\n"
        ))
        .unwrap();
        assert_eq!(c.projects["my.app-2_b"].hook_path(), "/hooks/my.app-2_b");
    }

    /// Every key, given values of the wrong kind: each error is in words,
    /// on the key's own line, with none of serde's or Rust's vocabulary.
    #[test]
    fn after_ci_per_forge() {
        let project = |provider: &str, extra: &str| {
            format!(
                "[projects.app]\nprovider = \"{provider}\"\nsecret = \"x\"\nscript = \"{SCRIPT}\"\n{extra}\n"
            )
        };
        let c = cfg(&project("github", "after_ci = [\"CI\", \"Tests\", \"CI\"]")).unwrap();
        let p = &c.projects["app"];
        assert_eq!(p.after_ci, vec!["CI".to_string(), "Tests".to_string()]);
        assert_eq!(p.ci_timeout, Duration::from_secs(3600));
        let c = cfg(&project("gitlab", "after_ci = true\nci_timeout = \"20m\"")).unwrap();
        assert_eq!(c.projects["app"].after_ci, vec!["pipeline".to_string()]);
        assert_eq!(c.projects["app"].ci_timeout, Duration::from_secs(1200));
        for off in ["", "after_ci = false"] {
            assert!(
                cfg(&project("github", off)).unwrap().projects["app"]
                    .after_ci
                    .is_empty()
            );
        }
        assert_eq!(
            cfg(&project("bitbucket", "after_ci = [\"build\"]"))
                .unwrap()
                .projects["app"]
                .after_ci,
            vec!["build".to_string()]
        );
        // Errors name the line and key, and say what to write.
        let (line, key, m) = err(&project("github", "after_ci = true"));
        assert_eq!((line, key.as_str()), (5, "projects.app.after_ci"));
        assert!(m.contains("list the workflow names"), "{m}");
        let (_, _, m) = err(&project("gitlab", "after_ci = [\"CI\"]"));
        assert!(m.contains("write after_ci = true"), "{m}");
        let (_, _, m) = err(&project("github", "after_ci = []"));
        assert!(m.contains("empty list"), "{m}");
        let (_, _, m) = err(&project("github", "after_ci = \"CI\""));
        assert!(m.contains("write [\"CI\"]"), "{m}");
        let (_, _, m) = err(&project("github", "after_ci = [\"CI\", 3]"));
        assert!(m.contains("name 2"), "{m}");
        let (line, key, m) = err(&project("github", "ci_timeout = \"5m\""));
        assert_eq!((line, key.as_str()), (5, "projects.app.ci_timeout"));
        assert!(m.contains("without after_ci"), "{m}");
        let (_, key, _) = err(&project(
            "github",
            "after_ci = [\"CI\"]\nci_timeout = \"0s\"",
        ));
        assert_eq!(key, "projects.app.ci_timeout");
    }

    #[test]
    fn wrong_values_are_answered_in_words() {
        const SERVER: [&str; 14] = [
            "listen",
            "state_dir",
            "log_dir",
            "max_body",
            "parallel",
            "shutdown_grace",
            "control_socket",
            "max_connections",
            "header_timeout",
            "request_timeout",
            "idle_timeout",
            "max_age",
            "allow_from",
            "trusted_proxies",
        ];
        const PROJECT: [&str; 29] = [
            "provider",
            "secret",
            "secret_file",
            "secret_env",
            "secret_credential",
            "repository",
            "branch",
            "script",
            "args",
            "working_dir",
            "timeout",
            "kill_grace",
            "env",
            "keep_runs",
            "on_new_push",
            "health_check",
            "health_timeout",
            "health_retries",
            "health_interval",
            "on_unhealthy",
            "secret",
            "secret_previous",
            "secret_previous_file",
            "secret_previous_env",
            "secret_previous_credential",
            "max_age",
            "allow_from",
            "after_ci",
            "ci_timeout",
        ];
        const WRONG: [&str; 10] = [
            "\"2\"",
            "-1",
            "0",
            "15",
            "1.5",
            "true",
            "[1, 2]",
            "{ a = 1 }",
            "2024-05-01",
            "\"\"",
        ];
        const JARGON: [&str; 14] = [
            "invalid type",
            "invalid value",
            "usize",
            "u64",
            "i64",
            "struct",
            "sequence",
            "a map",
            "variant",
            "untagged",
            "`",
            "expected a string",
            "expected a duration,",
            "data did not match",
        ];
        let mut texts = Vec::new();
        for key in SERVER {
            for v in WRONG {
                texts.push((format!("server.{key}"), format!("[server]\n{key} = {v}\n")));
            }
        }
        for key in PROJECT {
            for v in WRONG {
                let mut text = format!("[projects.app]\n{key} = {v}\n");
                if key != "script" {
                    text.push_str(&format!("script = \"{SCRIPT}\"\n"));
                }
                if !key.starts_with("secret") {
                    text.push_str("secret = \"x\"\n");
                }
                texts.push((format!("projects.app.{key}"), text));
            }
        }
        for v in WRONG {
            texts.push(("server".into(), format!("server = {v}\n")));
            texts.push(("projects".into(), format!("projects = {v}\n")));
            texts.push(("projects.app".into(), format!("[projects]\napp = {v}\n")));
        }
        let mut refused = 0;
        for (want_key, text) in &texts {
            let Err(e) = cfg(text) else { continue };
            refused += 1;
            let shown = e.to_string();
            for word in JARGON {
                assert!(!shown.contains(word), "{word:?} in {shown:?}\nfor\n{text}");
            }
            let ConfigError::Invalid { line, key, .. } = &e else {
                panic!("{e:?}");
            };
            // The key itself, or (for a missing secret) its project.
            assert!(
                key == want_key
                    // {...} for a table: its key "a" is unknown.
                    || key.starts_with(&format!("{want_key}."))
                    // A value left out of its table, or a missing secret.
                    || want_key.starts_with(&format!("{key}."))
                    || key.starts_with("projects.app.secret"),
                "{key} for {want_key}: {shown}\n{text}"
            );
            assert!(*line <= 2, "{shown}\n{text}");
        }
        assert!(
            refused > texts.len() * 3 / 4,
            "{refused} of {}",
            texts.len()
        );

        // What the examples of the report say now.
        let say = |text: &str| {
            err(&format!(
                "[projects.app]\nsecret = \"x\"\nscript = \"{SCRIPT}\"\n{text}\n"
            ))
            .2
        };
        let m = say("keep_runs = \"2\"");
        assert_eq!(
            m,
            "expected a whole number of 1 or more, found the text \"2\": write 2 without quotes"
        );
        let m = say("keep_runs = -1");
        assert_eq!(
            m,
            "expected a whole number of 1 or more, found the number -1"
        );
        let m = say("timeout = 15");
        assert!(
            m.starts_with("expected a duration such as \"15m\" or \"90s\", found the number 15"),
            "{m}"
        );
        assert!(m.contains("\"15s\""), "{m}");
        let m = say("kill_grace = \"15 fortnights\"");
        assert!(
            m.starts_with("\"15 fortnights\" is not a duration such as \"15m\" or \"90s\""),
            "{m}"
        );
        let m = say("provider = \"GitHub\"");
        assert!(m.contains("\"github\"") && m.contains("lower case"), "{m}");
        let m = say("args = \"--prod\"");
        assert!(m.starts_with("expected a list of text"), "{m}");
        let m = say("env = { N = 1 }");
        assert!(m.starts_with("N: expected text in quotes"), "{m}");
        let m = say("on_new_push = \"abort\"");
        assert!(
            m.starts_with("\"abort\" is not a choice here: give \"queue\""),
            "{m}"
        );
        let m = say("health_check = \"curl -f http://x\"");
        assert!(m.contains("no shell runs it"), "{m}");
        let m = say("health_check = []");
        assert!(m.starts_with("expected a command as a list of text"), "{m}");
        let m = say("on_unhealthy = true");
        assert!(m.starts_with("expected \"keep\""), "{m}");
        let m = say("scirpt = 1");
        assert!(
            m.starts_with("unknown field \"scirpt\"; the keys here are: provider, secret,"),
            "{m}"
        );
        let m = err("[server]\nmax_body = -1\n").2;
        assert!(m.starts_with("expected a size such as \"25MiB\""), "{m}");
        let m = err("[server]\nmax_body = \"12 parsecs\"\n").2;
        assert!(m.contains("\"parsecs\" is not a unit"), "{m}");
        // An inline secret of the wrong kind is not repeated.
        let m = err(&format!(
            "[projects.app]\nsecret = 123456789\nscript = \"{SCRIPT}\"\n"
        ))
        .2;
        assert!(!m.contains("123456789") && m.contains("a number"), "{m}");
    }

    #[test]
    fn repository_is_owner_and_name() {
        let repo = |r: &str| {
            cfg(&format!(
                "[projects.app]\nsecret = \"x\"\nscript = \"{SCRIPT}\"\nrepository = \"{r}\"\n"
            ))
        };
        for good in ["acme/app", "group/sub/app", ""] {
            assert!(repo(good).is_ok(), "{good}");
        }
        for bad in [
            "notaslash",
            "acme/",
            "/app",
            "a//b",
            "https://github.com/acme/app",
        ] {
            let Err(ConfigError::Invalid {
                line, key, message, ..
            }) = repo(bad)
            else {
                panic!("{bad} accepted");
            };
            assert_eq!((line, key.as_str()), (4, "projects.app.repository"));
            assert!(message.contains("owner/name"), "{message}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("25MiB").unwrap(), 25 << 20);
        assert_eq!(parse_size("1 GiB").unwrap(), 1 << 30);
        assert_eq!(parse_size("512k").unwrap(), 512_000);
        assert_eq!(parse_size("1024").unwrap(), 1024);
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("99999999999999GiB").is_err());
    }
}
