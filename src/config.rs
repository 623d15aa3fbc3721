//! The TOML configuration: its serde shape, the checked type the rest of the
//! program uses, and the errors that point at a file, a line and a key.
//!
//! Parsing is split in two, like ripgrep does it: [`parse`] turns text into a
//! [`Config`] without touching the disk (unit tests cover it), [`load`] reads
//! the file and the secrets it names.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::signature::Key;

/// Where the config is looked for when neither `-c` nor `$DEPLOYD_CONFIG` says.
pub const DEFAULT_PATH: &str = "/etc/deployd/deploy.toml";

/// The longest duration accepted, a century: "never" for any timeout or
/// grace. humantime parses up to `u64::MAX` seconds, but the daemon adds
/// these to the clock (`Instant::now() + kill_grace`), which panics when
/// the sum overflows; the fuzz target in `fuzz/` checks for that.
const MAX_DURATION: Duration = Duration::from_secs(100 * 31_557_600);

/// A configuration error, already pointing at where the user must look.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read at all.
    #[error("{path}: {error}")]
    Read {
        /// The config file.
        path: PathBuf,
        /// Why reading failed. Not named `source`: the message already says
        /// it, and `{:#}` would print it twice as the error's cause.
        error: std::io::Error,
    },
    /// The file was read but something in it is wrong.
    #[error("{file}:{line}: {key}: {message}")]
    Invalid {
        /// The config file (as given).
        file: String,
        /// 1-based line of the offending key, 0 when it is not in the file.
        line: usize,
        /// Dotted key path, e.g. `projects.myapp.timeout`.
        key: String,
        /// What is wrong, in words.
        message: String,
    },
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
    /// Things worth telling the operator that do not stop the daemon
    /// (an inline secret in a readable file, for example).
    pub warnings: Vec<String>,
}

/// The `[server]` table, with defaults filled in.
#[derive(Debug, Clone)]
pub struct Server {
    /// TCP address of the webhook listener (ignored under socket activation).
    pub listen: SocketAddr,
    /// Pending requests, run records, delivery ids and locks live here.
    pub state_dir: PathBuf,
    /// `<log_dir>/<project>/<run-id>.log`.
    pub log_dir: PathBuf,
    /// Largest body accepted, in bytes; GitHub never sends more than 25 MB.
    pub max_body: u64,
    /// Deploys running at once, all projects together.
    pub parallel: usize,
    /// How long a running deploy may go on after SIGTERM reached the daemon.
    pub shutdown_grace: Duration,
    /// The Unix socket the CLI talks to the daemon on.
    pub control_socket: PathBuf,
    /// Connections served at once; more are refused immediately.
    pub max_connections: usize,
    /// Deadline for a client to send the request line and headers.
    pub header_timeout: Duration,
    /// Deadline for the body once the headers are in; with `header_timeout`
    /// it bounds a whole request.
    pub request_timeout: Duration,
    /// How long an idle keep-alive connection is kept open.
    pub idle_timeout: Duration,
}

/// Which forge sends a project's webhooks; decides header names, signature
/// format and payload shape (see `signature.rs` and `event.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// GitHub: `X-Hub-Signature-256`, `X-GitHub-Event`, `X-GitHub-Delivery`.
    #[default]
    Github,
    /// Gitea and Forgejo: `X-Gitea-Signature`/`X-Forgejo-Signature` (bare hex).
    Gitea,
    /// GitLab: `X-Gitlab-Token` (and Standard Webhooks signatures).
    Gitlab,
    /// Bitbucket Cloud: `X-Hub-Signature`, `X-Event-Key`.
    Bitbucket,
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Provider::Github => "github",
            Provider::Gitea => "gitea",
            Provider::Gitlab => "gitlab",
            Provider::Bitbucket => "bitbucket",
        })
    }
}

/// One `[projects.NAME]` table, checked.
#[derive(Debug, Clone)]
pub struct Project {
    /// The table's name; also the hook path `/hooks/<name>`.
    pub name: String,
    /// The forge that sends its webhooks.
    pub provider: Provider,
    /// The HMAC key, with its key schedule done once at load.
    pub key: Key,
    /// Where the secret came from, for `check` (never the secret itself).
    pub secret_source: String,
    /// `owner/name`: when set, deliveries from other repositories are ignored.
    pub repository: Option<String>,
    /// Pushes to `refs/heads/<branch>` deploy.
    pub branch: String,
    /// The deploy script, run directly without a shell.
    pub script: PathBuf,
    /// Arguments given to the script.
    pub args: Vec<String>,
    /// The script's working directory.
    pub working_dir: PathBuf,
    /// After this long the run's process group gets SIGTERM.
    pub timeout: Duration,
    /// After SIGTERM, how long before SIGKILL.
    pub kill_grace: Duration,
    /// Extra environment for the script.
    pub env: BTreeMap<String, String>,
    /// Run records and logs kept per project.
    pub keep_runs: usize,
}

impl Project {
    /// The hook path the forge must POST to.
    pub fn hook_path(&self) -> String {
        format!("/hooks/{}", self.name)
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    projects: BTreeMap<String, RawProject>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<String>,
    state_dir: Option<PathBuf>,
    log_dir: Option<PathBuf>,
    max_body: Option<Size>,
    parallel: Option<usize>,
    #[serde(default, with = "humantime_serde")]
    shutdown_grace: Option<Duration>,
    control_socket: Option<PathBuf>,
    max_connections: Option<usize>,
    #[serde(default, with = "humantime_serde")]
    header_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    request_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    idle_timeout: Option<Duration>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProject {
    #[serde(default)]
    provider: Provider,
    secret: Option<String>,
    secret_file: Option<PathBuf>,
    secret_env: Option<String>,
    secret_credential: Option<String>,
    repository: Option<String>,
    branch: Option<String>,
    script: PathBuf,
    #[serde(default)]
    args: Vec<String>,
    working_dir: Option<PathBuf>,
    #[serde(default, with = "humantime_serde")]
    timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    kill_grace: Option<Duration>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    keep_runs: Option<usize>,
}

/// A byte size written as `25MiB`, `512KB`, `1048576` or `"1 GiB"`.
#[derive(Debug, Clone, Copy)]
struct Size(u64);

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Int(u64),
            Text(String),
        }
        match Either::deserialize(d)? {
            Either::Int(n) => Ok(Size(n)),
            Either::Text(s) => parse_size(&s).map(Size).map_err(serde::de::Error::custom),
        }
    }
}

/// Parses `25MiB`, `10 MB`, `512k`, `1024`: binary (KiB, MiB, GiB) and decimal
/// (KB, MB, GB) units, case-insensitive, bytes when there is none.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("invalid size {text:?}: expected e.g. \"25MiB\""))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        other => return Err(format!("invalid size {text:?}: unknown unit {other:?}")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("invalid size {text:?}: too large"))
}

/// Where a secret comes from, before it is read.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SecretSource {
    Inline(String),
    File(PathBuf),
    Env(String),
    Credential(String),
}

/// Reads the config file at `path` and everything it refers to (secrets).
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
        path: path.to_path_buf(),
        error,
    })?;
    let mut config = parse(&text, path, &SystemSecrets)?;
    if config
        .projects
        .values()
        .any(|p| p.secret_source == INLINE_SOURCE)
        && readable_by_others(path)
    {
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
    let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
        path: path.to_path_buf(),
        error,
    })?;
    parse(&text, path, &NoSecrets)
}

/// Stands in for every secret source (see [`load_without_secrets`]).
struct NoSecrets;

impl Secrets for NoSecrets {
    fn file(&self, _: &Path) -> std::io::Result<String> {
        Ok("secret not loaded".into())
    }
    fn env(&self, name: &str) -> Option<String> {
        Some(if name == "CREDENTIALS_DIRECTORY" {
            "/".into()
        } else {
            "secret not loaded".into()
        })
    }
}

fn readable_by_others(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o044 != 0)
        .unwrap_or(false)
}

/// Reads secrets named by a config; a trait so tests need no files or variables.
pub trait Secrets {
    /// Contents of a secret file.
    fn file(&self, path: &Path) -> std::io::Result<String>;
    /// Value of an environment variable.
    fn env(&self, name: &str) -> Option<String>;
}

/// The real sources: the filesystem and the process environment.
pub struct SystemSecrets;

impl Secrets for SystemSecrets {
    fn file(&self, path: &Path) -> std::io::Result<String> {
        std::fs::read_to_string(path)
    }
    fn env(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

/// Parses and validates config text. `path` names the file in errors and is
/// the base for relative paths; `secrets` reads the secrets it names.
pub fn parse(text: &str, path: &Path, secrets: &dyn Secrets) -> Result<Config, ConfigError> {
    let file = path.display().to_string();
    let invalid = |key: &str, message: String| ConfigError::Invalid {
        file: file.clone(),
        line: locate_key(text, key),
        key: key.to_string(),
        message,
    };
    let raw: RawConfig = toml::from_str(text).map_err(|e| {
        let offset = e.span().map(|s| s.start).unwrap_or(0);
        let (line, key) = key_at(text, offset);
        ConfigError::Invalid {
            file: file.clone(),
            line,
            key,
            message: e.message().trim().to_string(),
        }
    })?;
    let base = path
        .parent()
        .map(|p| {
            if p.as_os_str().is_empty() {
                Path::new(".")
            } else {
                p
            }
        })
        .unwrap_or(Path::new("."));
    let base = std::path::absolute(base).unwrap_or_else(|_| base.to_path_buf());
    let resolve = |p: &Path| -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            base.join(p)
        }
    };

    let s = raw.server;
    let listen_text = s.listen.unwrap_or_else(|| "127.0.0.1:9000".into());
    let listen: SocketAddr = listen_text.parse().map_err(|_| {
        invalid(
            "server.listen",
            format!("{listen_text:?} is not an address like \"127.0.0.1:9000\""),
        )
    })?;
    let state_dir = resolve(
        s.state_dir
            .as_deref()
            .unwrap_or(Path::new("/var/lib/deployd")),
    );
    let server = Server {
        listen,
        log_dir: resolve(
            s.log_dir
                .as_deref()
                .unwrap_or(Path::new("/var/log/deployd")),
        ),
        control_socket: s
            .control_socket
            .as_deref()
            .map(resolve)
            .unwrap_or_else(|| state_dir.join("control.sock")),
        state_dir,
        max_body: s.max_body.map(|s| s.0).unwrap_or(25 << 20),
        parallel: s.parallel.unwrap_or(1),
        shutdown_grace: s.shutdown_grace.unwrap_or(Duration::from_secs(60)),
        max_connections: s.max_connections.unwrap_or(512),
        header_timeout: s.header_timeout.unwrap_or(Duration::from_secs(10)),
        request_timeout: s.request_timeout.unwrap_or(Duration::from_secs(30)),
        idle_timeout: s.idle_timeout.unwrap_or(Duration::from_secs(30)),
    };
    if server.parallel == 0 {
        return Err(invalid("server.parallel", "must be at least 1".into()));
    }
    if server.max_connections == 0 {
        return Err(invalid(
            "server.max_connections",
            "must be at least 1".into(),
        ));
    }
    if server.max_body == 0 {
        return Err(invalid("server.max_body", "must be more than 0".into()));
    }
    for (key, d) in [
        ("server.header_timeout", server.header_timeout),
        ("server.request_timeout", server.request_timeout),
        ("server.idle_timeout", server.idle_timeout),
    ] {
        if d.is_zero() {
            return Err(invalid(key, "must be more than 0s".into()));
        }
    }
    for (key, d) in [
        ("server.shutdown_grace", server.shutdown_grace),
        ("server.header_timeout", server.header_timeout),
        ("server.request_timeout", server.request_timeout),
        ("server.idle_timeout", server.idle_timeout),
    ] {
        if d > MAX_DURATION {
            return Err(invalid(key, "must be at most 100 years".into()));
        }
    }

    let mut projects = BTreeMap::new();
    for (name, p) in raw.projects {
        let k = |key: &str| format!("projects.{name}.{key}");
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
            || name.starts_with('.')
        {
            return Err(invalid(
                &format!("projects.{name}"),
                "a project name may only hold letters, digits, '-', '_' and '.' \
                 (it becomes a URL path and a file name)"
                    .into(),
            ));
        }
        let mut sources = Vec::new();
        if let Some(s) = p.secret {
            sources.push(("secret", SecretSource::Inline(s)));
        }
        if let Some(f) = p.secret_file {
            sources.push(("secret_file", SecretSource::File(resolve(&f))));
        }
        if let Some(v) = p.secret_env {
            sources.push(("secret_env", SecretSource::Env(v)));
        }
        if let Some(c) = p.secret_credential {
            sources.push(("secret_credential", SecretSource::Credential(c)));
        }
        if sources.len() != 1 {
            let key = sources.get(1).map(|s| s.0).unwrap_or("secret");
            return Err(invalid(
                &k(key),
                "give exactly one of secret, secret_file, secret_env, secret_credential".into(),
            ));
        }
        let (skey, source) = sources.remove(0);
        let secret = read_secret(&source, secrets).map_err(|m| invalid(&k(skey), m))?;
        if secret.is_empty() {
            return Err(invalid(&k(skey), "the secret is empty".into()));
        }
        if let Some(problem) = crate::signature::secret_problem(p.provider, &secret) {
            return Err(invalid(&k(skey), problem));
        }
        let branch = p.branch.unwrap_or_else(|| "main".into());
        if branch.is_empty() || branch.starts_with("refs/") {
            return Err(invalid(
                &k("branch"),
                "give the branch name alone, e.g. \"main\"".into(),
            ));
        }
        let script = resolve(&p.script);
        if !script.is_file() {
            return Err(invalid(
                &k("script"),
                format!("{} does not exist or is not a file", script.display()),
            ));
        }
        let working_dir = match p.working_dir {
            Some(w) => resolve(&w),
            None => script.parent().unwrap_or(&base).to_path_buf(),
        };
        let timeout = p.timeout.unwrap_or(Duration::from_secs(15 * 60));
        if timeout.is_zero() {
            return Err(invalid(&k("timeout"), "must be more than 0s".into()));
        }
        let kill_grace = p.kill_grace.unwrap_or(Duration::from_secs(10));
        for (key, d) in [("timeout", timeout), ("kill_grace", kill_grace)] {
            if d > MAX_DURATION {
                return Err(invalid(&k(key), "must be at most 100 years".into()));
            }
        }
        for var in p.env.keys() {
            if var.is_empty() || var.contains('=') || var.contains('\0') {
                return Err(invalid(
                    &k("env"),
                    format!("{var:?} is not a variable name"),
                ));
            }
        }
        let keep_runs = p.keep_runs.unwrap_or(100);
        if keep_runs == 0 {
            return Err(invalid(&k("keep_runs"), "must be at least 1".into()));
        }
        projects.insert(
            name.clone(),
            Project {
                name: name.clone(),
                provider: p.provider,
                key: Key::new(secret.as_bytes()),
                secret_source: describe_source(&source, secrets),
                repository: p.repository.filter(|r| !r.is_empty()),
                branch,
                script,
                args: p.args,
                working_dir,
                timeout,
                kill_grace,
                env: p.env,
                keep_runs,
            },
        );
    }
    Ok(Config {
        path: path.to_path_buf(),
        server,
        projects,
        warnings: Vec::new(),
    })
}

/// Where the shipped unit's `LoadCredential=deployd:<dir>` loads credentials
/// from: the file `<dir>/NAME` becomes the credential `deployd_NAME`.
pub const CREDENTIALS_DIR: &str = "/etc/deployd/credentials";
const CREDENTIAL_PREFIX: &str = "deployd_";

/// The file a credential is read from: in `$CREDENTIALS_DIRECTORY` inside
/// the service; outside it (`deployd check` or `sign` run by an admin), the
/// file in [`CREDENTIALS_DIR`] the unit loads it from, for a `deployd_…` name.
fn credential_file(name: &str, secrets: &dyn Secrets) -> Option<PathBuf> {
    match secrets.env("CREDENTIALS_DIRECTORY") {
        Some(dir) => Some(Path::new(&dir).join(name)),
        None => name
            .strip_prefix(CREDENTIAL_PREFIX)
            .filter(|rest| !rest.is_empty() && !rest.contains('/'))
            .map(|rest| Path::new(CREDENTIALS_DIR).join(rest)),
    }
}

/// What `deployd check` says of an inline `secret`.
const INLINE_SOURCE: &str = "secret inline in the config";

/// What `deployd check` says of a project's secret: the key, and where the
/// secret is read from.
fn describe_source(source: &SecretSource, secrets: &dyn Secrets) -> String {
    match source {
        SecretSource::Inline(_) => INLINE_SOURCE.into(),
        SecretSource::File(p) => format!("secret_file {}", p.display()),
        SecretSource::Env(v) => format!("secret_env ${v}"),
        SecretSource::Credential(c) => match credential_file(c, secrets) {
            Some(f) => format!("secret_credential {c} from {}", f.display()),
            None => format!("secret_credential {c}"),
        },
    }
}

fn read_secret(source: &SecretSource, secrets: &dyn Secrets) -> Result<String, String> {
    let trim = |s: String| {
        s.strip_suffix('\n')
            .map(|s| s.strip_suffix('\r').unwrap_or(s).to_string())
            .unwrap_or(s)
    };
    match source {
        SecretSource::Inline(s) => Ok(s.clone()),
        SecretSource::File(p) => secrets
            .file(p)
            .map(trim)
            .map_err(|e| format!("cannot read {}: {e}", p.display())),
        SecretSource::Env(v) => secrets
            .env(v)
            .ok_or_else(|| format!("the environment variable {v} is not set")),
        SecretSource::Credential(c) => {
            let p = credential_file(c, secrets).ok_or_else(|| {
                format!(
                    "credential {c:?} is missing: $CREDENTIALS_DIRECTORY is not set \
                     (the shipped unit loads /etc/deployd/credentials/NAME as \
                     \"deployd_NAME\"; or add LoadCredential={c}:/path/to/secret)"
                )
            })?;
            secrets.file(&p).map(trim).map_err(|e| {
                format!(
                    "credential {c:?} is missing: cannot read {}: {e}",
                    p.display()
                )
            })
        }
    }
}

/// The 1-based line and dotted key path of the key at byte `offset`.
fn key_at(text: &str, offset: usize) -> (usize, String) {
    let offset = offset.min(text.len());
    let line_no = text[..offset].matches('\n').count() + 1;
    let mut table = String::new();
    let mut key = String::new();
    for (i, line) in text.lines().enumerate() {
        if i + 1 > line_no {
            break;
        }
        let t = line.trim();
        if let Some(h) = t.strip_prefix('[') {
            table = h
                .trim_start_matches('[')
                .split(']')
                .next()
                .unwrap_or("")
                .trim()
                .replace(' ', "");
            key.clear();
        } else if let Some((k, _)) = t.split_once('=') {
            key = k.trim().trim_matches('"').to_string();
        }
        if i + 1 == line_no && !t.contains('=') && !t.starts_with('[') {
            key.clear();
        }
    }
    let path = match (table.is_empty(), key.is_empty()) {
        (true, _) => key,
        (false, true) => table,
        (false, false) => format!("{table}.{key}"),
    };
    (
        line_no,
        if path.is_empty() {
            "(top level)".into()
        } else {
            path
        },
    )
}

/// The 1-based line where a dotted key is set, or the line of its table when
/// the key itself is absent (a default was used); 0 when neither is there.
fn locate_key(text: &str, dotted: &str) -> usize {
    let (table, key) = dotted.rsplit_once('.').unwrap_or(("", dotted));
    let mut current = String::new();
    let mut table_line = 0;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if let Some(h) = t.strip_prefix('[') {
            current = h.split(']').next().unwrap_or("").trim().replace(' ', "");
            if current == table || format!("{current}.") == format!("{table}.") {
                table_line = i + 1;
            }
            continue;
        }
        if current == table
            && let Some((k, _)) = t.split_once('=')
            && k.trim().trim_matches('"') == key
        {
            return i + 1;
        }
    }
    if table_line == 0 {
        // Perhaps `dotted` itself names a table (e.g. `projects.x`).
        for (i, line) in text.lines().enumerate() {
            let t = line.trim();
            if t.starts_with('[') && t.trim_matches(|c| c == '[' || c == ']').trim() == dotted {
                return i + 1;
            }
        }
    }
    table_line
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(p.branch, "main");
        assert_eq!(p.timeout, Duration::from_secs(900));
        assert_eq!(p.working_dir, Path::new("/bin"));
        assert_eq!(p.keep_runs, 100);
        assert_eq!(p.provider, Provider::Github);
        assert!(p.key.verify_hex(
            &crate::signature::hmac_hex(&Key::new(b"s3cret"), b"x"),
            b"x"
        ));
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
    fn sizes() {
        assert_eq!(parse_size("25MiB").unwrap(), 25 << 20);
        assert_eq!(parse_size("1 GiB").unwrap(), 1 << 30);
        assert_eq!(parse_size("512k").unwrap(), 512_000);
        assert_eq!(parse_size("1024").unwrap(), 1024);
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("99999999999999GiB").is_err());
    }
}
