//! The TOML configuration: its serde shape, the checked type the rest of the
//! program uses, and the errors that point at a file, a line and a key.
//!
//! Parsing is split in two, like ripgrep does it: [`parse`] turns text into a
//! [`Config`] (unit tests cover it; it looks at the disk only for the script
//! and working directory a run will use), [`load`] reads the file and the
//! secrets it names. Lines and keys in errors come from the TOML parser's own
//! spans, so a quoted name, an inline table or a dotted key is found where
//! it is written.

pub mod events;
pub mod fleet;
pub mod pattern;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;
use toml::de::{DeTable, DeValue};

use crate::config::pattern::{Kind, Patterns};
use crate::forge::{self, Key, Provider};

/// Where the config is looked for when neither `-c` nor `$DEPLOYD_CONFIG` says.
pub const DEFAULT_PATH: &str = "/etc/deployd/deploy.toml";

/// The longest duration accepted, a century: "never" for any timeout or
/// grace. humantime parses up to `u64::MAX` seconds, but the daemon adds
/// these to the clock (`Instant::now() + kill_grace`), which panics when
/// the sum overflows; the fuzz target in `fuzz/` checks for that.
const MAX_DURATION: Duration = Duration::from_secs(100 * 31_557_600);

/// `max_age` when the config does not say: GitHub lets a delivery be
/// redelivered for three days.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(72 * 3600);

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
    /// Deliveries whose signed time is older are stale; projects inherit it.
    pub max_age: Duration,
    /// Who may call a hook; `None` is anyone. Projects inherit it.
    pub allow_from: Option<Vec<IpNet>>,
    /// Reverse proxies whose `X-Forwarded-For` / `Forwarded` say who the
    /// client is; a request from anyone else is judged by its own address.
    pub trusted_proxies: Vec<IpNet>,
}

/// The `[web]` table, checked: the status page's own listener (never the
/// webhook one: the hook is public, this is not).
#[derive(Debug, Clone)]
pub struct Web {
    /// TCP address of the status page and `/metrics`.
    pub listen: SocketAddr,
    /// The token that opens the page; `None` only on a loopback `listen`.
    pub token: Option<WebToken>,
    /// Where users reach the page (e.g. behind a proxy), without a trailing
    /// slash; links use it, and the session cookie is `Secure` when it is https.
    pub public_url: Option<String>,
    /// Show the deploy button (POST with a CSRF token).
    pub actions: bool,
    /// Serve `/metrics` without the token.
    pub metrics_public: bool,
}

/// The web token and who it stands for.
#[derive(Clone)]
pub struct WebToken {
    /// The token itself; never printed (see the `Debug` impl).
    pub secret: String,
    /// Who uses it, recorded as the `pusher` of a deploy started from the page.
    pub name: String,
    /// Where it came from, for `check` (never the token itself).
    pub source: String,
}

impl std::fmt::Debug for WebToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebToken")
            .field("name", &self.name)
            .field("source", &self.source)
            .finish_non_exhaustive()
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
    /// The secret being rotated out, accepted alongside `key` until the
    /// forge uses the new one (`secret_previous`).
    pub previous_key: Option<Key>,
    /// Where the previous secret came from, for `check`.
    pub previous_source: Option<String>,
    /// Deliveries whose signed time is older are stale (`max_age`).
    pub max_age: Duration,
    /// Who may call the hook; `None` is anyone (`allow_from`).
    pub allow_from: Option<Vec<IpNet>>,
    /// `owner/name`: when set, deliveries from other repositories are ignored.
    pub repository: Option<String>,
    /// Branches whose pushes deploy: `branch` (one name or glob, default
    /// `main`) or `branches` (a list; empty for none).
    pub branches: Patterns,
    /// Tags whose creation deploys (`tags`; none by default).
    pub tags: Patterns,
    /// A branch push deploys only when it changed a path matching one of
    /// these (`paths`; empty: any path).
    pub paths: Patterns,
    /// Changed paths that do not count (`paths_ignore`).
    pub paths_ignore: Patterns,
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
    /// Where runs report their outcome on the forge, `[projects.NAME.report]`.
    pub report: Option<Report>,
    /// What a newer request does to a running deploy.
    pub on_new_push: OnNewPush,
    /// The health check run after the script succeeds (a command and its
    /// arguments, no shell); empty for none.
    pub health_check: Vec<String>,
    /// How long one try of the health check may take.
    pub health_timeout: Duration,
    /// How many times the health check is tried before the run is
    /// `unhealthy`.
    pub health_retries: usize,
    /// The pause between two tries.
    pub health_interval: Duration,
    /// What follows an unhealthy run.
    pub on_unhealthy: OnUnhealthy,
    /// The CI a push waits for before it deploys (README, "Deploy only what
    /// passed CI"): GitHub's and Gitea's workflow names, Bitbucket's build
    /// status keys, `["pipeline"]` for GitLab's `after_ci = true`. Empty:
    /// a push deploys at once.
    pub after_ci: Vec<String>,
    /// How long a push may wait for its CI before it is dropped.
    pub ci_timeout: Duration,
    /// The hosts a run rolls out over, by ssh (`hosts` and its keys:
    /// docs/fleet.md); `None` runs the script here.
    pub fleet: Option<fleet::Fleet>,
}

/// A secret value read from one of the four sources (a token, or a URL
/// that is itself a secret): never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

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

/// One `[projects.NAME.report]` table: the commit status on the forge.
#[derive(Debug, Clone)]
pub struct Report {
    /// The API token.
    pub token: Secret,
    /// Where the token came from, for `check`.
    pub token_source: String,
    /// The API's base URL (a default per provider).
    pub api_url: String,
    /// The status's name on the commit.
    pub context: String,
    /// GitHub: report as a deployment to this environment instead.
    pub environment: Option<String>,
}

/// `on_new_push`: what a request queued while a run of the project goes on
/// does to that run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnNewPush {
    /// It waits, coalesced with other waiting requests (the default).
    Queue,
    /// It cancels the running run, and runs next.
    Cancel,
}

/// `on_unhealthy`: what follows a run whose health check failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnUnhealthy {
    /// Nothing: the run is recorded `unhealthy` (the default).
    Keep,
    /// A rollback to the last healthy commit is queued (unless the unhealthy
    /// run was a rollback itself).
    Rollback,
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

impl Project {
    /// The hook path the forge must POST to.
    pub fn hook_path(&self) -> String {
        format!("/hooks/{}", self.name)
    }

    /// The ref a manual deploy without `--ref` deploys: the first branch
    /// given by name rather than by a glob. `None` when every branch is a
    /// glob (or there is none).
    pub fn default_ref(&self) -> Option<String> {
        self.branches
            .written()
            .iter()
            .find(|b| !b.contains(['*', '?', '[', '{', '\\']))
            .map(|b| format!("refs/heads/{b}"))
    }

    /// What deploys, in one line for `check`: branches, tags and paths.
    pub fn triggers(&self) -> String {
        let list = |p: &Patterns| p.written().join(", ");
        let mut parts = vec![match self.branches.written() {
            [] => "no branch".to_string(),
            [one] => format!("branch {one}"),
            _ => format!("branches {}", list(&self.branches)),
        }];
        if !self.tags.is_empty() {
            parts.push(format!("new tags {}", list(&self.tags)));
        }
        if !self.paths.is_empty() {
            parts.push(format!("paths {}", list(&self.paths)));
        }
        if !self.paths_ignore.is_empty() {
            parts.push(format!("ignoring {}", list(&self.paths_ignore)));
        }
        parts.join("; ")
    }
}

// The file's shape. Every leaf has a type of its own below, so that a wrong
// value is answered in words ("expected a duration such as …, found the
// number 15") rather than in serde's terms ("invalid type: integer 15,
// expected a duration").

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    projects: BTreeMap<String, RawProject>,
    web: Option<RawWeb>,
    #[serde(default)]
    notify: BTreeMap<String, RawNotify>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWeb {
    listen: Option<Text>,
    token: Option<SecretText>,
    token_file: Option<PathText>,
    token_env: Option<Text>,
    token_credential: Option<Text>,
    token_name: Option<Text>,
    public_url: Option<Text>,
    actions: Option<bool>,
    metrics_public: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNotify {
    kind: Option<Text>,
    url: Option<SecretText>,
    url_file: Option<PathText>,
    url_env: Option<Text>,
    url_credential: Option<Text>,
    secret: Option<SecretText>,
    secret_file: Option<PathText>,
    secret_env: Option<Text>,
    secret_credential: Option<Text>,
    on: Option<Args>,
    projects: Option<Args>,
    command: Option<Args>,
    timeout: Option<Human>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReport {
    token: Option<SecretText>,
    token_file: Option<PathText>,
    token_env: Option<Text>,
    token_credential: Option<Text>,
    api_url: Option<Text>,
    context: Option<Text>,
    environment: Option<Text>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<Text>,
    state_dir: Option<PathText>,
    log_dir: Option<PathText>,
    max_body: Option<Size>,
    parallel: Option<Count>,
    shutdown_grace: Option<Human>,
    control_socket: Option<PathText>,
    max_connections: Option<Count>,
    header_timeout: Option<Human>,
    request_timeout: Option<Human>,
    idle_timeout: Option<Human>,
    max_age: Option<Human>,
    allow_from: Option<Nets>,
    trusted_proxies: Option<Nets>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProject {
    provider: Option<Forge>,
    secret: Option<SecretText>,
    secret_file: Option<PathText>,
    secret_env: Option<Text>,
    secret_credential: Option<Text>,
    secret_previous: Option<SecretText>,
    secret_previous_file: Option<PathText>,
    secret_previous_env: Option<Text>,
    secret_previous_credential: Option<Text>,
    max_age: Option<Human>,
    allow_from: Option<Nets>,
    repository: Option<Text>,
    branch: Option<Text>,
    branches: Option<NameGlobs>,
    tags: Option<NameGlobs>,
    paths: Option<PathGlobs>,
    paths_ignore: Option<PathGlobs>,
    /// Required, but checked by hand: "missing" then points at the project.
    script: Option<PathText>,
    #[serde(default)]
    args: Args,
    working_dir: Option<PathText>,
    timeout: Option<Human>,
    kill_grace: Option<Human>,
    #[serde(default)]
    env: Env,
    keep_runs: Option<Count>,
    report: Option<RawReport>,
    on_new_push: Option<NewPush>,
    health_check: Option<Argv>,
    health_timeout: Option<Human>,
    health_retries: Option<Count>,
    health_interval: Option<Human>,
    on_unhealthy: Option<Unhealthy>,
    after_ci: Option<AfterCi>,
    ci_timeout: Option<Human>,
    // The fleet keys (config/fleet.rs).
    hosts: Option<fleet::Hosts>,
    batch: Option<fleet::Whole>,
    max_failures: Option<fleet::Whole>,
    on_host_failure: Option<fleet::Failure>,
    remote_script: Option<fleet::RemotePath>,
    known_hosts: Option<fleet::RemotePath>,
}

/// A value as the file wrote it, in words, for "expected …, found …".
fn found(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) if s.is_empty() => "empty text \"\"".into(),
        toml::Value::String(s) => format!("the text {s:?}"),
        toml::Value::Integer(n) => format!("the number {n}"),
        toml::Value::Float(f) => format!("the number {f:?}"),
        toml::Value::Boolean(b) => format!("{b}"),
        toml::Value::Datetime(d) => format!("the date {d}"),
        toml::Value::Array(_) => "a list [...]".into(),
        toml::Value::Table(_) => "a table {...}".into(),
    }
}

fn expected<E: serde::de::Error>(what: &str, value: &toml::Value) -> E {
    E::custom(format!("expected {what}, found {}", found(value)))
}

/// Deserializes any value, to be judged by the types below. The parser
/// attaches the value's span to whatever error they return.
fn value<'de, D: serde::Deserializer<'de>>(d: D) -> Result<toml::Value, D::Error> {
    toml::Value::deserialize(d)
}

/// Text in quotes: an address, a name, a variable.
struct Text(String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match value(d)? {
            toml::Value::String(s) => Ok(Text(s)),
            v => Err(expected("text in quotes", &v)),
        }
    }
}

/// An inline secret: like [`Text`], but a wrong value is not repeated in
/// the error, which may end up in a log.
struct SecretText(String);

impl<'de> Deserialize<'de> for SecretText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let kind = match value(d)? {
            toml::Value::String(s) => return Ok(SecretText(s)),
            toml::Value::Integer(_) | toml::Value::Float(_) => "a number",
            toml::Value::Boolean(_) => "true or false",
            toml::Value::Datetime(_) => "a date",
            toml::Value::Array(_) => "a list",
            toml::Value::Table(_) => "a table",
        };
        Err(serde::de::Error::custom(format!(
            "expected the secret as text in quotes, found {kind}"
        )))
    }
}

/// A path in quotes; relative ones resolve against the config's directory.
struct PathText(PathBuf);

impl<'de> Deserialize<'de> for PathText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match value(d)? {
            toml::Value::String(s) if !s.is_empty() => Ok(PathText(s.into())),
            v => Err(expected("a path in quotes, such as \"/srv/app\"", &v)),
        }
    }
}

/// A whole number of 1 or more: `parallel`, `max_connections`, `keep_runs`
/// (none of them means anything at 0).
struct Count(usize);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        const WHAT: &str = "a whole number of 1 or more";
        match value(d)? {
            toml::Value::Integer(n) if n >= 1 => usize::try_from(n)
                .map(Count)
                .map_err(|_| serde::de::Error::custom(format!("{n} is too large"))),
            toml::Value::String(s) if s.trim().parse::<u64>().is_ok_and(|n| n >= 1) => {
                Err(serde::de::Error::custom(format!(
                    "expected {WHAT}, found the text {s:?}: write {} without quotes",
                    s.trim()
                )))
            }
            v => Err(expected(WHAT, &v)),
        }
    }
}

/// A duration written for people: `"90s"`, `"15m"`, `"1h 30m"`.
struct Human(Duration);

impl<'de> Deserialize<'de> for Human {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        const WHAT: &str = "a duration such as \"15m\" or \"90s\"";
        match value(d)? {
            toml::Value::String(s) => humantime::parse_duration(&s)
                .map(Human)
                .map_err(|e| serde::de::Error::custom(format!("{s:?} is not {WHAT}: {e}"))),
            toml::Value::Integer(n) => Err(serde::de::Error::custom(format!(
                "expected {WHAT}, found the number {n}: give the unit too, \
                 e.g. \"{n}s\" for {n} seconds"
            ))),
            v => Err(expected(WHAT, &v)),
        }
    }
}

/// A list of addresses and networks: `["140.82.112.0/20", "::1"]`. A bare
/// address is the network of that one address. Parsed by `ipnet`, so what
/// is accepted is what the standard library's addresses are, with a prefix.
struct Nets(Vec<IpNet>);

impl<'de> Deserialize<'de> for Nets {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        const WHAT: &str = "a list of addresses or networks such as \
                            [\"192.0.2.0/24\", \"2001:db8::/32\"]";
        let items = match value(d)? {
            toml::Value::Array(items) => items,
            v => {
                return Err(serde::de::Error::custom(format!(
                    "expected {WHAT}, found {}: put the entries in [ ]",
                    found(&v)
                )));
            }
        };
        if items.is_empty() {
            return Err(serde::de::Error::custom(
                "the list is empty, which would refuse everyone: remove the key to allow \
                 any address",
            ));
        }
        items
            .iter()
            .map(|item| match item {
                toml::Value::String(s) => parse_net(s).ok_or_else(|| {
                    serde::de::Error::custom(format!(
                        "{s:?} is not an address or network such as \"192.0.2.0/24\", \
                         \"2001:db8::/32\" or \"127.0.0.1\""
                    ))
                }),
                v => Err(expected("an address or network in quotes", v)),
            })
            .collect::<Result<_, _>>()
            .map(Nets)
    }
}

/// `192.0.2.0/24`, `2001:db8::/32`, or a bare address (a network of one).
fn parse_net(text: &str) -> Option<IpNet> {
    let text = text.trim();
    text.parse::<IpNet>()
        .ok()
        .or_else(|| text.parse::<std::net::IpAddr>().ok().map(IpNet::from))
        .map(|n| n.trunc())
}

/// A byte size written as `25MiB`, `512KB`, `1048576` or `"1 GiB"`.
struct Size(u64);

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match value(d)? {
            toml::Value::Integer(n) if n >= 0 => Ok(Size(n.unsigned_abs())),
            toml::Value::String(s) => parse_size(&s).map(Size).map_err(serde::de::Error::custom),
            v => Err(expected(
                "a size such as \"25MiB\" or \"512KB\", or a number of bytes",
                &v,
            )),
        }
    }
}

/// A forge's name, as `provider` takes it.
struct Forge(Provider);

impl<'de> Deserialize<'de> for Forge {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        const NAMES: &str = "\"github\", \"gitea\" (also for Forgejo), \"gitlab\" or \"bitbucket\"";
        match value(d)? {
            toml::Value::String(s) => match s.as_str() {
                "github" => Ok(Forge(Provider::Github)),
                "gitea" => Ok(Forge(Provider::Gitea)),
                "gitlab" => Ok(Forge(Provider::Gitlab)),
                "bitbucket" => Ok(Forge(Provider::Bitbucket)),
                other => Err(serde::de::Error::custom(format!(
                    "{other:?} is not a forge deployd knows: give {NAMES}{}",
                    if other.chars().any(|c| c.is_ascii_uppercase()) {
                        ", in lower case"
                    } else {
                        ""
                    }
                ))),
            },
            v => Err(expected(&format!("one of {NAMES}"), &v)),
        }
    }
}

/// `after_ci`: `true`/`false`, or a list of names.
enum AfterCi {
    Flag(bool),
    Names(Vec<String>),
}

impl<'de> Deserialize<'de> for AfterCi {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        const WHAT: &str = "a list of workflow names, such as [\"CI\", \"Tests\"], or true/false";
        match value(d)? {
            toml::Value::Boolean(b) => Ok(AfterCi::Flag(b)),
            toml::Value::Array(items) => items
                .into_iter()
                .enumerate()
                .map(|(i, item)| match item {
                    toml::Value::String(s) if !s.trim().is_empty() => Ok(s),
                    v => Err(serde::de::Error::custom(format!(
                        "name {}: expected a workflow name in quotes, found {}",
                        i + 1,
                        found(&v)
                    ))),
                })
                .collect::<Result<_, _>>()
                .map(AfterCi::Names),
            toml::Value::String(s) => Err(serde::de::Error::custom(format!(
                "expected {WHAT}, found the text {s:?}: write [{s:?}]"
            ))),
            v => Err(expected(WHAT, &v)),
        }
    }
}

/// A list of globs in quotes, each compiled as `kind` reads it: a glob that
/// does not compile is an error of this value.
fn globs<'de, D: serde::Deserializer<'de>>(d: D, kind: Kind) -> Result<Patterns, D::Error> {
    let example = match kind {
        Kind::Name => "[\"main\", \"release/*\"]",
        Kind::Path => "[\"api/**\", \"Cargo.lock\"]",
    };
    match value(d)? {
        toml::Value::Array(items) => {
            let written = items
                .into_iter()
                .enumerate()
                .map(|(i, item)| match item {
                    toml::Value::String(s) => Ok(s),
                    v => Err(serde::de::Error::custom(format!(
                        "glob {}: expected text in quotes, found {}",
                        i + 1,
                        found(&v)
                    ))),
                })
                .collect::<Result<Vec<_>, _>>()?;
            Patterns::new(kind, &written).map_err(serde::de::Error::custom)
        }
        toml::Value::String(s) => Err(serde::de::Error::custom(format!(
            "expected a list of globs, found the text {s:?}: write [{s:?}]"
        ))),
        v => Err(expected(&format!("a list of globs, such as {example}"), &v)),
    }
}

/// `branches` and `tags`: globs of names (`release/*`, `v*`).
struct NameGlobs(Patterns);

impl<'de> Deserialize<'de> for NameGlobs {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        globs(d, Kind::Name).map(NameGlobs)
    }
}

/// `paths` and `paths_ignore`: gitignore-style globs of paths.
struct PathGlobs(Patterns);

impl<'de> Deserialize<'de> for PathGlobs {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        globs(d, Kind::Path).map(PathGlobs)
    }
}

/// The script's arguments: a list of text.
#[derive(Default)]
struct Args(Vec<String>);

impl<'de> Deserialize<'de> for Args {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match value(d)? {
            toml::Value::Array(items) => items
                .into_iter()
                .enumerate()
                .map(|(i, item)| match item {
                    toml::Value::String(s) => Ok(s),
                    v => Err(serde::de::Error::custom(format!(
                        "argument {}: expected text in quotes, found {}",
                        i + 1,
                        found(&v)
                    ))),
                })
                .collect::<Result<_, _>>()
                .map(Args),
            v => Err(expected("a list of text, such as [\"--prod\", \"eu\"]", &v)),
        }
    }
}

/// A command to run without a shell: a non-empty list of text, the program
/// first (`health_check`).
struct Argv(Vec<String>);

impl<'de> Deserialize<'de> for Argv {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        const WHAT: &str = "a command as a list of text, such as \
                            [\"curl\", \"-fsS\", \"http://127.0.0.1:8080/up\"]";
        match value(d)? {
            toml::Value::Array(items) if !items.is_empty() => items
                .into_iter()
                .enumerate()
                .map(|(i, item)| match item {
                    toml::Value::String(s) if !(i == 0 && s.is_empty()) => Ok(s),
                    v => Err(serde::de::Error::custom(format!(
                        "{} {}: expected text in quotes, found {}",
                        if i == 0 { "the program," } else { "argument" },
                        i,
                        found(&v)
                    ))),
                })
                .collect::<Result<_, _>>()
                .map(Argv),
            toml::Value::String(s) => Err(serde::de::Error::custom(format!(
                "expected {WHAT}, found the text {s:?}: no shell runs it, \
                 give the program and each argument in quotes"
            ))),
            v => Err(expected(WHAT, &v)),
        }
    }
}

/// `on_new_push`: `"queue"` or `"cancel"`.
struct NewPush(OnNewPush);

impl<'de> Deserialize<'de> for NewPush {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        const WHAT: &str = "\"queue\" (a newer push waits) or \"cancel\" \
                            (a newer push cancels the running deploy)";
        match value(d)? {
            toml::Value::String(s) if s == "queue" => Ok(NewPush(OnNewPush::Queue)),
            toml::Value::String(s) if s == "cancel" => Ok(NewPush(OnNewPush::Cancel)),
            toml::Value::String(s) => Err(serde::de::Error::custom(format!(
                "{s:?} is not a choice here: give {WHAT}"
            ))),
            v => Err(expected(WHAT, &v)),
        }
    }
}

/// `on_unhealthy`: `"keep"` or `"rollback"`.
struct Unhealthy(OnUnhealthy);

impl<'de> Deserialize<'de> for Unhealthy {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        const WHAT: &str = "\"keep\" (record the run unhealthy) or \"rollback\" \
                            (then deploy the last healthy commit again)";
        match value(d)? {
            toml::Value::String(s) if s == "keep" => Ok(Unhealthy(OnUnhealthy::Keep)),
            toml::Value::String(s) if s == "rollback" => Ok(Unhealthy(OnUnhealthy::Rollback)),
            toml::Value::String(s) => Err(serde::de::Error::custom(format!(
                "{s:?} is not a choice here: give {WHAT}"
            ))),
            v => Err(expected(WHAT, &v)),
        }
    }
}

/// Extra environment: a table of text values.
#[derive(Default)]
struct Env(BTreeMap<String, String>);

impl<'de> Deserialize<'de> for Env {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match value(d)? {
            toml::Value::Table(vars) => vars
                .into_iter()
                .map(|(name, v)| match v {
                    toml::Value::String(s) => Ok((name, s)),
                    v => Err(serde::de::Error::custom(format!(
                        "{name}: expected text in quotes (an environment variable \
                         holds text), found {}",
                        found(&v)
                    ))),
                })
                .collect::<Result<_, _>>()
                .map(Env),
            v => Err(expected(
                "a table of variables, such as { APP_ENV = \"prod\" }",
                &v,
            )),
        }
    }
}

/// Parses `25MiB`, `10 MB`, `512k`, `1024`: binary (KiB, MiB, GiB) and decimal
/// (KB, MB, GB) units, case-insensitive, bytes when there is none.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let not = || format!("{text:?} is not a size such as \"25MiB\" or \"512KB\"");
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    if digits.is_empty() {
        return Err(format!("{}: it must start with a number", not()));
    }
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{}: the number is too large", not()))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        other => {
            return Err(format!(
                "{}: {other:?} is not a unit (KiB, MiB, GiB, KB, MB, GB)",
                not()
            ));
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("{text:?} is too large a size"))
}

/// Where a secret comes from, before it is read.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SecretSource {
    Inline(String),
    File(PathBuf),
    Env(String),
    Credential(String),
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

/// Reads the config file at `path` and everything it refers to (secrets).
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
        path: path.to_path_buf(),
        error,
    })?;
    let mut config = parse(&text, path, &SystemSecrets)?;
    let inline = config.projects.values().any(|p| {
        p.secret_source == INLINE_SOURCE
            || p.previous_source.as_deref() == Some(&format!("previous {INLINE_SOURCE}"))
            || p.report
                .as_ref()
                .is_some_and(|r| r.token_source == "token inline in the config")
    }) || config.notify.values().any(|n| {
        n.url_source == "url inline in the config"
            || n.secret_source.as_deref() == Some(INLINE_SOURCE)
    }) || config
        .web
        .as_ref()
        .and_then(|w| w.token.as_ref())
        .is_some_and(|t| t.source == INLINE_SOURCE.replacen("secret", "token", 1));
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
    fn check_run_paths(&self) -> bool {
        false
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
    /// Whether the paths a run will use (script, working directory) are
    /// looked at too. The commands that only read state (status, history,
    /// logs) say no: they must still work when a script has just broken —
    /// that is when an operator reads the history.
    fn check_run_paths(&self) -> bool {
        true
    }
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

/// The directory a config file's relative paths resolve against: its own.
fn base_dir(path: &Path) -> PathBuf {
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::path::absolute(base).unwrap_or_else(|_| base.to_path_buf())
}

/// `p`, when relative, under `base`.
fn resolve_in(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// `server.state_dir` and `server.control_socket`, as the file gives them
/// (or not), resolved against `base`, with their defaults.
fn state_and_socket(
    base: &Path,
    state_dir: Option<&Path>,
    control_socket: Option<&Path>,
) -> (PathBuf, PathBuf) {
    let state_dir = resolve_in(base, state_dir.unwrap_or(Path::new("/var/lib/deployd")));
    let socket = control_socket
        .map(|p| resolve_in(base, p))
        .unwrap_or_else(|| state_dir.join("control.sock"));
    (state_dir, socket)
}

/// The control socket the config file at `path` names, read from its
/// `[server]` table alone, so that it is found even in a file that is
/// otherwise invalid, or not even TOML past some line: `deployd reload` of
/// such a file still asks the daemon, which refuses it and says so in its
/// log. None when the file cannot be read.
pub fn control_socket_of(path: &Path) -> Option<PathBuf> {
    let text = std::fs::read_to_string(path).ok()?;
    let (doc, _) = DeTable::parse_recoverable(&text);
    let doc = doc.into_inner();
    let server = match doc.get("server").map(|v| v.get_ref()) {
        Some(DeValue::Table(t)) => Some(t),
        _ => None,
    };
    let given = |key: &str| match server.and_then(|t| t.get(key)).map(|v| v.get_ref()) {
        Some(DeValue::String(s)) if !s.is_empty() => Some(PathBuf::from(s.as_ref())),
        _ => None,
    };
    let (state_dir, socket) = (given("state_dir"), given("control_socket"));
    Some(state_and_socket(&base_dir(path), state_dir.as_deref(), socket.as_deref()).1)
}

/// Parses and validates config text. `path` names the file in errors and is
/// the base for relative paths; `secrets` reads the secrets it names. The
/// disk is only looked at for the paths a run will use (the script and its
/// working directory), so that what `check` accepts is what can run.
pub fn parse(text: &str, path: &Path, secrets: &dyn Secrets) -> Result<Config, ConfigError> {
    let file = path.display().to_string();
    let doc = match DeTable::parse(text) {
        Ok(doc) => doc,
        Err(e) => {
            // Broken TOML: the part before the mistake still says which
            // key it is in.
            let (partial, _) = DeTable::parse_recoverable(text);
            let places = Places {
                text,
                root: partial.into_inner(),
            };
            let (offset, key) = match e.span() {
                Some(span) => (span.start, places.path_at(span.start)),
                None => (0, Vec::new()),
            };
            return Err(ConfigError::Invalid {
                file,
                line: places.line(offset),
                key: if key.is_empty() {
                    "(TOML syntax)".into()
                } else {
                    dotted(&key)
                },
                message: e.message().trim().replace('`', "\""),
            });
        }
    };
    let places = Places {
        text,
        root: doc.get_ref().clone(),
    };
    let invalid = |key: &[&str], message: String| ConfigError::Invalid {
        file: file.clone(),
        line: places.line_of(key),
        key: dotted(key),
        message,
    };
    places.tables_are_tables().map_err(|(key, message)| {
        let key: Vec<&str> = key.iter().map(String::as_str).collect();
        invalid(&key, message)
    })?;
    let raw = RawConfig::deserialize(toml::de::Deserializer::from(doc)).map_err(|e| {
        // Without a span (none seen so far), line 1 and no key: better
        // than whatever key happens to start the file.
        let (offset, mut key) = match e.span() {
            Some(span) => (span.start, places.path_at(span.start)),
            None => (0, Vec::new()),
        };
        let message = match in_words(e.message()) {
            (Some(missing), message) => {
                key.push(missing);
                message
            }
            (None, message) => message,
        };
        ConfigError::Invalid {
            file: file.clone(),
            line: places.line(offset),
            key: if key.is_empty() {
                "(top level)".into()
            } else {
                dotted(&key)
            },
            message,
        }
    })?;
    let base = base_dir(path);
    let resolve = |p: &Path| -> PathBuf { resolve_in(&base, p) };

    let s = raw.server;
    let listen_text = s
        .listen
        .map(|t| t.0)
        .unwrap_or_else(|| "127.0.0.1:9000".into());
    let listen: SocketAddr = listen_text.parse().map_err(|_| {
        invalid(
            &["server", "listen"],
            format!("{listen_text:?} is not an address like \"127.0.0.1:9000\""),
        )
    })?;
    let (state_dir, control_socket) = state_and_socket(
        &base,
        s.state_dir.as_ref().map(|p| p.0.as_path()),
        s.control_socket.as_ref().map(|p| p.0.as_path()),
    );
    let server = Server {
        listen,
        log_dir: resolve(
            s.log_dir
                .as_ref()
                .map_or(Path::new("/var/log/deployd"), |p| &p.0),
        ),
        control_socket,
        state_dir,
        max_body: s.max_body.map(|s| s.0).unwrap_or(25 << 20),
        parallel: s.parallel.map_or(1, |n| n.0),
        shutdown_grace: s.shutdown_grace.map_or(Duration::from_secs(60), |d| d.0),
        max_connections: s.max_connections.map_or(512, |n| n.0),
        header_timeout: s.header_timeout.map_or(Duration::from_secs(10), |d| d.0),
        request_timeout: s.request_timeout.map_or(Duration::from_secs(30), |d| d.0),
        idle_timeout: s.idle_timeout.map_or(Duration::from_secs(30), |d| d.0),
        max_age: s.max_age.map_or(DEFAULT_MAX_AGE, |d| d.0),
        allow_from: s.allow_from.map(|n| n.0),
        trusted_proxies: s.trusted_proxies.map(|n| n.0).unwrap_or_default(),
    };
    if server.max_body == 0 {
        return Err(invalid(
            &["server", "max_body"],
            "must be more than 0".into(),
        ));
    }
    for (key, d) in [
        ("header_timeout", server.header_timeout),
        ("request_timeout", server.request_timeout),
        ("idle_timeout", server.idle_timeout),
        ("max_age", server.max_age),
    ] {
        if d.is_zero() {
            return Err(invalid(&["server", key], "must be more than 0s".into()));
        }
    }
    for (key, d) in [
        ("shutdown_grace", server.shutdown_grace),
        ("header_timeout", server.header_timeout),
        ("request_timeout", server.request_timeout),
        ("idle_timeout", server.idle_timeout),
        ("max_age", server.max_age),
    ] {
        if d > MAX_DURATION {
            return Err(invalid(
                &["server", key],
                "must be at most 100 years".into(),
            ));
        }
    }

    let mut projects = BTreeMap::new();
    for (name, p) in raw.projects {
        let k = |key: &'static str| ["projects", name.as_str(), key];
        if let Some(problem) = name_problem(&name) {
            return Err(invalid(
                &["projects", &name],
                format!(
                    "the project name {name:?} {problem}: it becomes a URL path and a \
                     file name, so it may only hold letters, digits, '-', '_' and '.', \
                     and may not start with '.'"
                ),
            ));
        }
        let provider = p.provider.map_or(Provider::default(), |f| f.0);
        // The secret, then the one being rotated out: the same four
        // sources under two sets of names.
        let read_one = |names: [&'static str; 4],
                        given: [Option<SecretSource>; 4]|
         -> Result<Option<(Key, SecretSource)>, ConfigError> {
            let mut sources: Vec<_> = names
                .into_iter()
                .zip(given)
                .filter_map(|(n, s)| Some((n, s?)))
                .collect();
            if sources.len() > 1 {
                return Err(invalid(
                    &k(sources[1].0),
                    format!("give exactly one of {}", names.join(", ")),
                ));
            }
            let Some((skey, source)) = sources.pop() else {
                return Ok(None);
            };
            let secret = read_secret(&source, secrets).map_err(|m| invalid(&k(skey), m))?;
            if secret.is_empty() {
                return Err(invalid(&k(skey), "the secret is empty".into()));
            }
            if let Some(problem) = forge::secret_problem(provider, &secret) {
                return Err(invalid(&k(skey), problem));
            }
            Ok(Some((Key::new(secret.as_bytes()), source)))
        };
        let Some((key, source)) = read_one(
            ["secret", "secret_file", "secret_env", "secret_credential"],
            [
                p.secret.map(|s| SecretSource::Inline(s.0)),
                p.secret_file.map(|f| SecretSource::File(resolve(&f.0))),
                p.secret_env.map(|v| SecretSource::Env(v.0)),
                p.secret_credential.map(|c| SecretSource::Credential(c.0)),
            ],
        )?
        else {
            return Err(invalid(
                &k("secret"),
                "give exactly one of secret, secret_file, secret_env, secret_credential".into(),
            ));
        };
        let previous = read_one(
            [
                "secret_previous",
                "secret_previous_file",
                "secret_previous_env",
                "secret_previous_credential",
            ],
            [
                p.secret_previous.map(|s| SecretSource::Inline(s.0)),
                p.secret_previous_file
                    .map(|f| SecretSource::File(resolve(&f.0))),
                p.secret_previous_env.map(|v| SecretSource::Env(v.0)),
                p.secret_previous_credential
                    .map(|c| SecretSource::Credential(c.0)),
            ],
        )?;
        let report = match p.report {
            None => None,
            Some(r) => {
                let rk = |key: &'static str| ["projects", name.as_str(), "report", key];
                let source = one_source(
                    "token",
                    [
                        r.token.map(|t| SecretSource::Inline(t.0)),
                        r.token_file.map(|f| SecretSource::File(resolve(&f.0))),
                        r.token_env.map(|v| SecretSource::Env(v.0)),
                        r.token_credential.map(|c| SecretSource::Credential(c.0)),
                    ],
                )
                .map_err(|(key, m)| invalid(&rk(key), m))?
                .ok_or_else(|| {
                    invalid(
                        &["projects", name.as_str(), "report"],
                        "needs an API token: one of token, token_file, token_env, token_credential"
                            .into(),
                    )
                })?;
                let token =
                    read_secret(&source.1, secrets).map_err(|m| invalid(&rk(source.0), m))?;
                if token.is_empty() {
                    return Err(invalid(&rk(source.0), "the token is empty".into()));
                }
                let api_url = r
                    .api_url
                    .map(|u| u.0.trim_end_matches('/').to_string())
                    .unwrap_or_else(|| forge::default_api_url(provider).to_string());
                if !(api_url.starts_with("https://") || api_url.starts_with("http://")) {
                    return Err(invalid(
                        &rk("api_url"),
                        format!("{api_url:?} is not an http(s) URL"),
                    ));
                }
                let environment = r.environment.map(|e| e.0).filter(|e| !e.is_empty());
                if environment.is_some() && provider != Provider::Github {
                    return Err(invalid(
                        &rk("environment"),
                        "only GitHub has deployments; leave it out for this provider".into(),
                    ));
                }
                Some(Report {
                    token: Secret(token),
                    token_source: describe_as("token", &source.1, secrets),
                    api_url,
                    context: r
                        .context
                        .map(|c| c.0)
                        .unwrap_or_else(|| format!("deployd/{name}")),
                    environment,
                })
            }
        };
        let max_age = p.max_age.map_or(server.max_age, |d| d.0);
        if max_age.is_zero() {
            return Err(invalid(&k("max_age"), "must be more than 0s".into()));
        }
        let repository = p.repository.map(|r| r.0).filter(|r| !r.is_empty());
        if let Some(r) = &repository
            && (r.split('/').count() < 2 || r.split('/').any(str::is_empty))
        {
            return Err(invalid(
                &k("repository"),
                format!(
                    "{r:?} is not owner/name, such as \"acme/app\" \
                     (GitLab groups may nest: \"group/subgroup/app\")"
                ),
            ));
        }
        let branches = match (p.branch, p.branches) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    &k("branches"),
                    "give branch (one name or glob) or branches (a list), not both".into(),
                ));
            }
            (None, Some(list)) => list.0,
            (branch, None) => {
                let branch = branch.map_or_else(|| "main".into(), |b| b.0);
                if branch.is_empty() || branch.starts_with("refs/") {
                    return Err(invalid(
                        &k("branch"),
                        "give the branch name alone, e.g. \"main\"".into(),
                    ));
                }
                Patterns::new(Kind::Name, &[branch]).map_err(|m| invalid(&k("branch"), m))?
            }
        };
        let Some(script) = p.script else {
            return Err(invalid(
                &k("script"),
                "missing: every project needs the deploy script to run, \
                 e.g. script = \"/usr/local/share/deployd/deploy-git.sh\""
                    .into(),
            ));
        };
        let script = resolve(&script.0);
        if let Some(problem) = secrets
            .check_run_paths()
            .then(|| script_problem(&script))
            .flatten()
        {
            return Err(invalid(&k("script"), problem));
        }
        let working_dir = match &p.working_dir {
            Some(w) => resolve(&w.0),
            None => script.parent().unwrap_or(&base).to_path_buf(),
        };
        if let Some(problem) = secrets
            .check_run_paths()
            .then(|| dir_problem(&working_dir))
            .flatten()
        {
            return Err(invalid(&k("working_dir"), problem));
        }
        let timeout = p.timeout.map_or(Duration::from_secs(15 * 60), |d| d.0);
        if timeout.is_zero() {
            return Err(invalid(&k("timeout"), "must be more than 0s".into()));
        }
        let kill_grace = p.kill_grace.map_or(Duration::from_secs(10), |d| d.0);
        let health_timeout = p.health_timeout.map_or(Duration::from_secs(10), |d| d.0);
        if health_timeout.is_zero() {
            return Err(invalid(&k("health_timeout"), "must be more than 0s".into()));
        }
        let health_interval = p.health_interval.map_or(Duration::from_secs(3), |d| d.0);
        for (key, d) in [
            ("timeout", timeout),
            ("kill_grace", kill_grace),
            ("health_timeout", health_timeout),
            ("health_interval", health_interval),
            ("max_age", max_age),
        ] {
            if d > MAX_DURATION {
                return Err(invalid(&k(key), "must be at most 100 years".into()));
            }
        }
        let after_ci = after_ci(provider, p.after_ci).map_err(|m| invalid(&k("after_ci"), m))?;
        let ci_timeout_given = p.ci_timeout.is_some();
        let ci_timeout = p.ci_timeout.map_or(Duration::from_secs(3600), |d| d.0);
        if ci_timeout_given && after_ci.is_empty() {
            return Err(invalid(
                &k("ci_timeout"),
                "has no effect without after_ci: set after_ci, or remove ci_timeout".into(),
            ));
        }
        if ci_timeout.is_zero() {
            return Err(invalid(&k("ci_timeout"), "must be more than 0s".into()));
        }
        if ci_timeout > MAX_DURATION {
            return Err(invalid(
                &k("ci_timeout"),
                "must be at most 100 years".into(),
            ));
        }
        for var in p.env.0.keys() {
            if var.is_empty() || var.contains('=') || var.contains('\0') {
                return Err(invalid(
                    &k("env"),
                    format!("{var:?} is not a variable name"),
                ));
            }
        }
        let fleet = fleet::check(
            fleet::RawFleet {
                hosts: p.hosts,
                batch: p.batch,
                max_failures: p.max_failures,
                on_host_failure: p.on_host_failure,
                remote_script: p.remote_script,
                known_hosts: p.known_hosts,
            },
            &base,
        )
        .map_err(|(key, m)| invalid(&k(key), m))?;
        projects.insert(
            name.clone(),
            Project {
                name: name.clone(),
                provider,
                key,
                secret_source: describe_source(&source, secrets),
                previous_source: previous
                    .as_ref()
                    .map(|(_, s)| format!("previous {}", describe_source(s, secrets))),
                previous_key: previous.map(|(k, _)| k),
                max_age,
                allow_from: p.allow_from.map(|n| n.0).or(server.allow_from.clone()),
                repository,
                branches,
                tags: p.tags.map(|t| t.0).unwrap_or_default(),
                paths: p.paths.map(|t| t.0).unwrap_or_default(),
                paths_ignore: p.paths_ignore.map(|t| t.0).unwrap_or_default(),
                script,
                args: p.args.0,
                working_dir,
                timeout,
                kill_grace,
                env: p.env.0,
                keep_runs: p.keep_runs.map_or(100, |n| n.0),
                report,
                on_new_push: p.on_new_push.map_or(OnNewPush::Queue, |c| c.0),
                health_check: p.health_check.map(|c| c.0).unwrap_or_default(),
                health_timeout,
                health_retries: p.health_retries.map_or(5, |n| n.0),
                health_interval,
                on_unhealthy: p.on_unhealthy.map_or(OnUnhealthy::Keep, |c| c.0),
                after_ci,
                ci_timeout,
                fleet,
            },
        );
    }
    let mut notify = BTreeMap::new();
    for (name, n) in raw.notify {
        let k = |key: &'static str| ["notify", name.as_str(), key];
        if let Some(problem) = name_problem(&name) {
            return Err(invalid(
                &["notify", &name],
                format!(
                    "the target name {name:?} {problem}: it may only hold letters, digits, \
                     '-', '_' and '.', and may not start with '.'"
                ),
            ));
        }
        let kinds = || {
            NotifyKind::ALL
                .iter()
                .map(|(_, n)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let kind = match n.kind {
            None => {
                return Err(invalid(
                    &k("kind"),
                    format!("missing: say what the target is, one of {}", kinds()),
                ));
            }
            Some(t) => NotifyKind::ALL
                .iter()
                .find(|(_, n)| *n == t.0)
                .map(|(k, _)| *k)
                .ok_or_else(|| {
                    invalid(
                        &k("kind"),
                        format!("{:?} is not a kind of target: one of {}", t.0, kinds()),
                    )
                })?,
        };
        let url_source = one_source(
            "url",
            [
                n.url.map(|t| SecretSource::Inline(t.0)),
                n.url_file.map(|f| SecretSource::File(resolve(&f.0))),
                n.url_env.map(|v| SecretSource::Env(v.0)),
                n.url_credential.map(|c| SecretSource::Credential(c.0)),
            ],
        )
        .map_err(|(key, m)| invalid(&k(key), m))?;
        let (url, url_source) = match (kind, url_source) {
            (NotifyKind::Command, Some((key, _))) => {
                return Err(invalid(
                    &k(key),
                    "a command target has no URL: give `command` instead".into(),
                ));
            }
            (NotifyKind::Command, None) => (None, String::new()),
            (_, None) => {
                return Err(invalid(
                    &k("url"),
                    "missing: give one of url, url_file, url_env, url_credential".into(),
                ));
            }
            (_, Some((key, source))) => {
                let url = read_secret(&source, secrets).map_err(|m| invalid(&k(key), m))?;
                let url = url.trim().to_string();
                if !(url.starts_with("https://") || url.starts_with("http://"))
                    && url != "secret not loaded"
                {
                    // The URL may be a secret: not repeated.
                    return Err(invalid(&k(key), "is not an http(s) URL".into()));
                }
                (Some(Secret(url)), describe_as("url", &source, secrets))
            }
        };
        let secret = one_source(
            "secret",
            [
                n.secret.map(|t| SecretSource::Inline(t.0)),
                n.secret_file.map(|f| SecretSource::File(resolve(&f.0))),
                n.secret_env.map(|v| SecretSource::Env(v.0)),
                n.secret_credential.map(|c| SecretSource::Credential(c.0)),
            ],
        )
        .map_err(|(key, m)| invalid(&k(key), m))?;
        let (key, secret_source) = match secret {
            None => (None, None),
            Some((skey, _)) if kind != NotifyKind::Webhook => {
                return Err(invalid(
                    &k(skey),
                    "only a webhook target signs what it sends".into(),
                ));
            }
            Some((skey, source)) => {
                let s = read_secret(&source, secrets).map_err(|m| invalid(&k(skey), m))?;
                if s.is_empty() {
                    return Err(invalid(&k(skey), "the secret is empty".into()));
                }
                (
                    Some(Key::new(s.as_bytes())),
                    Some(describe_source(&source, secrets)),
                )
            }
        };
        let on = match n.on {
            None => crate::config::events::default_on(),
            Some(list) => {
                for e in &list.0 {
                    if crate::config::events::event(e).is_none() {
                        return Err(invalid(
                            &k("on"),
                            format!(
                                "{e:?} is not an event: one of {}",
                                crate::config::events::event_names().join(", ")
                            ),
                        ));
                    }
                }
                list.0
            }
        };
        let target_projects = match n.projects {
            None => None,
            Some(list) => {
                for p in &list.0 {
                    if !projects.contains_key(p) {
                        return Err(invalid(
                            &k("projects"),
                            format!("{p:?} is not a project of this config"),
                        ));
                    }
                }
                Some(list.0)
            }
        };
        let command = n.command.map(|c| c.0).unwrap_or_default();
        match kind {
            NotifyKind::Command if command.is_empty() => {
                return Err(invalid(
                    &k("command"),
                    "missing: the program to run and its arguments, e.g. \
                     [\"/usr/local/bin/mail-deploy\", \"ops@example.com\"]"
                        .into(),
                ));
            }
            NotifyKind::Command => {}
            _ if !command.is_empty() => {
                return Err(invalid(
                    &k("command"),
                    "only a target of kind \"command\" runs a command".into(),
                ));
            }
            _ => {}
        }
        let timeout = n.timeout.map_or(Duration::from_secs(30), |d| d.0);
        if timeout.is_zero() || timeout > MAX_DURATION {
            return Err(invalid(
                &k("timeout"),
                "must be more than 0s and at most 100 years".into(),
            ));
        }
        notify.insert(
            name.clone(),
            NotifyTarget {
                name: name.clone(),
                kind,
                url,
                url_source,
                key,
                secret_source,
                on,
                projects: target_projects,
                command,
                timeout,
            },
        );
    }
    let mut warnings = Vec::new();
    let web = match raw.web {
        None => None,
        Some(w) => {
            let k = |key: &'static str| ["web", key];
            let text = w
                .listen
                .map(|t| t.0)
                .unwrap_or_else(|| "127.0.0.1:9001".into());
            let listen: SocketAddr = text.parse().map_err(|_| {
                invalid(
                    &k("listen"),
                    format!("{text:?} is not an address like \"127.0.0.1:9001\""),
                )
            })?;
            if listen == server.listen && listen.port() != 0 {
                return Err(invalid(
                    &k("listen"),
                    "must differ from server.listen: the webhook listener is public, \
                     the status page is not"
                        .into(),
                ));
            }
            let mut sources = Vec::new();
            if let Some(s) = w.token {
                sources.push(("token", SecretSource::Inline(s.0)));
            }
            if let Some(f) = w.token_file {
                sources.push(("token_file", SecretSource::File(resolve(&f.0))));
            }
            if let Some(v) = w.token_env {
                sources.push(("token_env", SecretSource::Env(v.0)));
            }
            if let Some(c) = w.token_credential {
                sources.push(("token_credential", SecretSource::Credential(c.0)));
            }
            if sources.len() > 1 {
                return Err(invalid(
                    &k(sources[1].0),
                    "give at most one of token, token_file, token_env, token_credential".into(),
                ));
            }
            let token = match sources.pop() {
                Some((key, source)) => {
                    let secret = read_secret(&source, secrets).map_err(|m| invalid(&k(key), m))?;
                    if secret.is_empty() {
                        return Err(invalid(&k(key), "the token is empty".into()));
                    }
                    Some(WebToken {
                        secret,
                        name: w.token_name.map_or_else(|| "web".into(), |n| n.0),
                        source: describe_source(&source, secrets).replacen("secret", "token", 1),
                    })
                }
                None if listen.ip().is_loopback() => {
                    warnings.push(format!(
                        "web: no token: anyone who can reach {listen} on this machine \
                         sees the status page{}",
                        if w.actions == Some(true) {
                            " and may deploy"
                        } else {
                            ""
                        }
                    ));
                    None
                }
                None => {
                    return Err(invalid(
                        &k("listen"),
                        format!(
                            "{listen} is not a loopback address, so the page needs a token: \
                             set token_file, token_env, token_credential or token"
                        ),
                    ));
                }
            };
            let public_url = match w.public_url.map(|u| u.0) {
                None => None,
                Some(u) if u.starts_with("https://") || u.starts_with("http://") => {
                    Some(u.trim_end_matches('/').to_string())
                }
                Some(u) => {
                    return Err(invalid(
                        &k("public_url"),
                        format!("{u:?} is not an http:// or https:// URL"),
                    ));
                }
            };
            Some(Web {
                listen,
                token,
                public_url,
                actions: w.actions.unwrap_or(false),
                metrics_public: w.metrics_public.unwrap_or(false),
            })
        }
    };
    Ok(Config {
        path: path.to_path_buf(),
        server,
        projects,
        web,
        notify,
        warnings,
    })
}

/// At most one of the four sources of a secret value named `what` (`url`,
/// `secret`, `token`): which key gave it, or an error on the second key.
fn one_source(
    what: &'static str,
    given: [Option<SecretSource>; 4],
) -> Result<Option<(&'static str, SecretSource)>, (&'static str, String)> {
    let keys: [&'static str; 4] = match what {
        "url" => ["url", "url_file", "url_env", "url_credential"],
        "token" => ["token", "token_file", "token_env", "token_credential"],
        _ => ["secret", "secret_file", "secret_env", "secret_credential"],
    };
    let mut found = None;
    for (key, source) in keys.into_iter().zip(given) {
        if let Some(source) = source {
            if found.is_some() {
                return Err((key, format!("give exactly one of {}", keys.join(", "))));
            }
            found = Some((key, source));
        }
    }
    Ok(found)
}

/// The names a push waits for, from `after_ci` as `provider` takes it:
/// GitHub, Gitea and Bitbucket name what must pass (a list); GitLab has one
/// pipeline per commit (`true`).
fn after_ci(provider: Provider, raw: Option<AfterCi>) -> Result<Vec<String>, String> {
    let list_of = match provider {
        Provider::Github | Provider::Gitea => "workflow names (each workflow file's name:)",
        Provider::Bitbucket => "build status keys (the key your CI reports its status under)",
        Provider::Gitlab => "",
    };
    match raw {
        None | Some(AfterCi::Flag(false)) => Ok(Vec::new()),
        Some(AfterCi::Flag(true)) if provider == Provider::Gitlab => Ok(vec!["pipeline".into()]),
        Some(AfterCi::Flag(true)) => Err(format!(
            "for {provider}, list the {list_of} that must pass, e.g. after_ci = [\"CI\", \"Tests\"]"
        )),
        Some(AfterCi::Names(_)) if provider == Provider::Gitlab => {
            Err("GitLab runs one pipeline per commit: write after_ci = true to wait for it".into())
        }
        Some(AfterCi::Names(names)) if names.is_empty() => Err(format!(
            "an empty list waits for nothing: list the {list_of} that must pass, or remove after_ci"
        )),
        Some(AfterCi::Names(names)) => {
            let mut out: Vec<String> = Vec::new();
            for n in names {
                if !out.contains(&n) {
                    out.push(n);
                }
            }
            Ok(out)
        }
    }
}

/// What is wrong with a project name, if anything, said of the name itself.
fn name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("is empty".into());
    }
    if name.starts_with('.') {
        return Some("starts with a dot".into());
    }
    let bad = name
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'))?;
    Some(match bad {
        ' ' => "holds a space".into(),
        '/' => "holds a '/'".into(),
        c if c.is_whitespace() || c.is_control() => format!("holds the character {c:?}"),
        c => format!("holds '{c}'"),
    })
}

/// Why the runner could not execute `script`, if it could not: it runs the
/// path as it is (no shell, no `$PATH` search), so it must be a file this
/// user may execute. Checked as the user running this command: run `check`
/// as the daemon's user to see what the daemon sees.
fn script_problem(script: &Path) -> Option<String> {
    let shown = script.display();
    match std::fs::metadata(script) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Some(format!("{shown} does not exist"))
        }
        Err(e) => Some(format!("cannot look at {shown}: {e}")),
        Ok(m) if !m.is_file() => Some(format!("{shown} is not a file")),
        Ok(_) => match nix::unistd::access(script, nix::unistd::AccessFlags::X_OK) {
            Err(e) => Some(format!(
                "{shown} is not executable ({}): the script runs directly, without a \
                 shell; chmod +x it",
                e.desc()
            )),
            Ok(()) => interpreter_problem(script),
        },
    }
}

/// Why the `#!` line of `script` names nothing the kernel can run, if it
/// does not: exec then fails with "No such file or directory", naming the
/// script, which exists. Only an absolute interpreter path is looked at
/// (`#!/usr/bin/env bash` is checked as far as `env`); a script that cannot
/// be read, or a binary, is left to the kernel.
fn interpreter_problem(script: &Path) -> Option<String> {
    use std::io::Read;
    let mut head = [0u8; 256];
    let n = std::fs::File::open(script)
        .and_then(|mut f| f.read(&mut head))
        .ok()?;
    let line = head[..n].strip_prefix(b"#!")?;
    let line = &line[..line.iter().position(|&b| b == b'\n').unwrap_or(line.len())];
    // Split as the kernel does, on spaces and tabs only: a '\r' left by
    // Windows line ends is part of the name it looks for.
    let interpreter = std::str::from_utf8(line)
        .ok()?
        .split([' ', '\t'])
        .find(|s| !s.is_empty())?;
    let path = Path::new(interpreter);
    if !path.is_absolute() {
        return None;
    }
    let usable =
        path.is_file() && nix::unistd::access(path, nix::unistd::AccessFlags::X_OK).is_ok();
    (!usable).then(|| {
        format!(
            "{} starts with #!{}, which is not an executable file here{}",
            script.display(),
            interpreter.trim_end_matches('\r'),
            if interpreter.ends_with('\r') {
                " (the line ends in \\r: the file has Windows line ends)"
            } else {
                ""
            }
        )
    })
}

/// Why `dir` cannot be a run's working directory, if it cannot.
fn dir_problem(dir: &Path) -> Option<String> {
    let shown = dir.display();
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Some(format!("{shown} does not exist"))
        }
        Err(e) => Some(format!("cannot look at {shown}: {e}")),
        Ok(m) if !m.is_dir() => Some(format!("{shown} is not a directory")),
        Ok(_) => None,
    }
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
    describe_as("secret", source, secrets)
}

/// Where a secret value named `what` (`secret`, `url`, `token`) is read
/// from, in the config's words: never the value.
fn describe_as(what: &str, source: &SecretSource, secrets: &dyn Secrets) -> String {
    match source {
        SecretSource::Inline(_) => format!("{what} inline in the config"),
        SecretSource::File(p) => format!("{what}_file {}", p.display()),
        SecretSource::Env(v) => format!("{what}_env ${v}"),
        SecretSource::Credential(c) => match credential_file(c, secrets) {
            Some(f) => format!("{what}_credential {c} from {}", f.display()),
            None => format!("{what}_credential {c}"),
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

/// Where each key is in the text, from the TOML parser's own spans. Quoted
/// names (`[projects."my.app"]`), inline tables and dotted keys all come out
/// of the parser as the same nested tables, so one walk serves them all.
struct Places<'t> {
    text: &'t str,
    root: DeTable<'t>,
}

impl Places<'_> {
    /// The 1-based line holding byte `offset`.
    fn line(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    /// The line of the key at `path`. For a key that is not in the file
    /// (its default was used), the line of the nearest table around it that
    /// is, and line 1 when none is.
    fn line_of(&self, path: &[&str]) -> usize {
        let mut table = &self.root;
        let mut line = 1;
        for segment in path {
            let Some((key, value)) = table.get_key_value(*segment) else {
                break;
            };
            line = self.line(key.span().start);
            match value.get_ref() {
                DeValue::Table(t) => table = t,
                _ => break,
            }
        }
        line
    }

    /// The path of the innermost key whose name or value holds byte
    /// `offset`; empty when none does. A table opened by a `[header]` has
    /// the header as its value's span, and its keys elsewhere, so the
    /// whole tree is searched, not only the branch whose span holds it.
    fn path_at(&self, offset: usize) -> Vec<String> {
        fn walk(
            table: &DeTable<'_>,
            offset: usize,
            path: &mut Vec<String>,
            best: &mut Vec<String>,
        ) {
            for (key, value) in table.iter() {
                path.push(key.get_ref().to_string());
                let holds = |span: std::ops::Range<usize>| {
                    span.contains(&offset) || (span.is_empty() && span.start == offset)
                };
                if (holds(key.span()) || holds(value.span())) && path.len() > best.len() {
                    *best = path.clone();
                }
                if let DeValue::Table(t) = value.get_ref() {
                    walk(t, offset, path, best);
                }
                path.pop();
            }
        }
        let mut best = Vec::new();
        walk(&self.root, offset, &mut Vec::new(), &mut best);
        best
    }

    /// `[server]`, `[projects]` and each `[projects.NAME]` must be tables;
    /// said here, in words, before serde would say "expected struct
    /// RawServer".
    fn tables_are_tables(&self) -> Result<(), (Vec<String>, String)> {
        let not_a_table = |path: Vec<String>, example: &str, value: &DeValue<'_>| {
            let found = match value {
                DeValue::String(s) => format!("the text {s:?}"),
                DeValue::Integer(n) => format!("the number {}", n.as_str()),
                DeValue::Float(f) => format!("the number {}", f.as_str()),
                DeValue::Boolean(b) => format!("{b}"),
                DeValue::Datetime(d) => format!("the date {d}"),
                DeValue::Array(_) => "a list [...]".into(),
                DeValue::Table(_) => "a table".into(),
            };
            Err((path, format!("expected a table ({example}), found {found}")))
        };
        for (key, value) in self.root.iter() {
            let example = match key.get_ref().as_ref() {
                "server" => "[server] and its keys on the lines below",
                "projects" => "[projects.NAME] and the project's keys on the lines below",
                _ => continue, // an unknown key: serde names it.
            };
            let DeValue::Table(table) = value.get_ref() else {
                return not_a_table(vec![key.get_ref().to_string()], example, value.get_ref());
            };
            if key.get_ref() == "projects" {
                for (name, project) in table.iter() {
                    if !matches!(project.get_ref(), DeValue::Table(_)) {
                        return not_a_table(
                            vec!["projects".into(), name.get_ref().to_string()],
                            &format!(
                                "[projects.{}] and the project's keys on the lines below",
                                dotted(&[name.get_ref()])
                            ),
                            project.get_ref(),
                        );
                    }
                }
            }
        }
        Ok(())
    }
}

/// A key path as TOML writes it: `projects."my.app".timeout`. A segment
/// that is not a bare key (a dot, a space, nothing at all) is quoted.
fn dotted<S: AsRef<str>>(path: &[S]) -> String {
    path.iter()
        .map(|s| {
            let s = s.as_ref();
            if !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                s.to_string()
            } else {
                format!("{s:?}")
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// Serde's own messages about a table's keys, in words: "unknown field
/// (x), expected one of (a), (b)" (in backticks) becomes `unknown field "x";
/// the keys here are: a, b`; "missing field (x)" returns the key, to be
/// added to the path, and says it is required. The value types above
/// already speak for themselves.
fn in_words(message: &str) -> (Option<String>, String) {
    let message = message.trim();
    if let Some(rest) = message.strip_prefix("unknown field `")
        && let Some((name, known)) = rest.split_once('`')
    {
        let known = known
            .trim_start_matches(", ")
            .trim_start_matches("expected ")
            .trim_start_matches("one of ")
            .replace('`', "")
            .replace(" or ", ", ");
        return (
            None,
            format!("unknown field {name:?}; the keys here are: {known}"),
        );
    }
    if let Some(rest) = message.strip_prefix("missing field `")
        && let Some((name, _)) = rest.split_once('`')
    {
        return (Some(name.to_string()), "missing: it is required".into());
    }
    (None, message.replace('`', "\""))
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
