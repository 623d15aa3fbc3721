//! The file's shape as TOML writes it: one serde type per table, and a
//! type of its own for every kind of leaf value, so that a wrong value is
//! answered in words ("expected a duration such as …, found the number 15")
//! rather than in serde's terms ("invalid type: integer 15, expected a
//! duration"). The parser attaches each value's span to the error its type
//! returns; [`super::spans`] turns that span into a line and a key.
//!
//! Nothing here checks one value against another or looks at the disk: the
//! validators beside this file ([`super::server`], [`super::project`], …)
//! turn these into the checked types.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;

use crate::config::pattern::{Kind, Patterns};
use crate::config::{OnNewPush, OnUnhealthy};
use crate::forge::Provider;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default)]
    pub(super) server: RawServer,
    #[serde(default)]
    pub(super) projects: BTreeMap<String, RawProject>,
    pub(super) web: Option<RawWeb>,
    #[serde(default)]
    pub(super) notify: BTreeMap<String, RawNotify>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWeb {
    pub(super) listen: Option<Text>,
    pub(super) token: Option<SecretText>,
    pub(super) token_file: Option<PathText>,
    pub(super) token_env: Option<Text>,
    pub(super) token_credential: Option<Text>,
    pub(super) token_name: Option<Text>,
    pub(super) public_url: Option<Text>,
    pub(super) actions: Option<bool>,
    pub(super) metrics_public: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNotify {
    pub(super) kind: Option<Text>,
    pub(super) url: Option<SecretText>,
    pub(super) url_file: Option<PathText>,
    pub(super) url_env: Option<Text>,
    pub(super) url_credential: Option<Text>,
    pub(super) secret: Option<SecretText>,
    pub(super) secret_file: Option<PathText>,
    pub(super) secret_env: Option<Text>,
    pub(super) secret_credential: Option<Text>,
    pub(super) on: Option<Args>,
    pub(super) projects: Option<Args>,
    pub(super) command: Option<Args>,
    pub(super) timeout: Option<Human>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawReport {
    pub(super) token: Option<SecretText>,
    pub(super) token_file: Option<PathText>,
    pub(super) token_env: Option<Text>,
    pub(super) token_credential: Option<Text>,
    pub(super) api_url: Option<Text>,
    pub(super) context: Option<Text>,
    pub(super) environment: Option<Text>,
    /// GitHub: the repository webhook whose failed deliveries are
    /// redelivered at start (docs/catch-up.md).
    pub(super) hook_id: Option<Count>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
    pub(super) listen: Option<Text>,
    pub(super) state_dir: Option<PathText>,
    pub(super) log_dir: Option<PathText>,
    pub(super) max_body: Option<Size>,
    pub(super) parallel: Option<Count>,
    pub(super) shutdown_grace: Option<Human>,
    pub(super) control_socket: Option<PathText>,
    pub(super) max_connections: Option<Count>,
    pub(super) header_timeout: Option<Human>,
    pub(super) request_timeout: Option<Human>,
    pub(super) idle_timeout: Option<Human>,
    pub(super) max_age: Option<Human>,
    pub(super) allow_from: Option<Nets>,
    pub(super) trusted_proxies: Option<Nets>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProject {
    pub(super) provider: Option<Forge>,
    pub(super) secret: Option<SecretText>,
    pub(super) secret_file: Option<PathText>,
    pub(super) secret_env: Option<Text>,
    pub(super) secret_credential: Option<Text>,
    pub(super) secret_previous: Option<SecretText>,
    pub(super) secret_previous_file: Option<PathText>,
    pub(super) secret_previous_env: Option<Text>,
    pub(super) secret_previous_credential: Option<Text>,
    pub(super) max_age: Option<Human>,
    pub(super) allow_from: Option<Nets>,
    pub(super) repository: Option<Text>,
    pub(super) branch: Option<Text>,
    pub(super) branches: Option<NameGlobs>,
    pub(super) tags: Option<NameGlobs>,
    pub(super) paths: Option<PathGlobs>,
    pub(super) paths_ignore: Option<PathGlobs>,
    /// Required, but checked by hand: "missing" then points at the project.
    pub(super) script: Option<PathText>,
    #[serde(default)]
    pub(super) args: Args,
    pub(super) working_dir: Option<PathText>,
    pub(super) timeout: Option<Human>,
    pub(super) kill_grace: Option<Human>,
    #[serde(default)]
    pub(super) env: Env,
    pub(super) keep_runs: Option<Count>,
    pub(super) report: Option<RawReport>,
    pub(super) on_new_push: Option<NewPush>,
    pub(super) health_check: Option<Argv>,
    pub(super) health_timeout: Option<Human>,
    pub(super) health_retries: Option<Count>,
    pub(super) health_interval: Option<Human>,
    pub(super) on_unhealthy: Option<Unhealthy>,
    pub(super) after_ci: Option<AfterCi>,
    pub(super) ci_timeout: Option<Human>,
    pub(super) remote: Option<super::reconcile::RawRemote>,
    pub(super) reconcile: Option<super::reconcile::RawMode>,
    // The fleet keys (config/fleet.rs).
    pub(super) hosts: Option<super::fleet::Hosts>,
    pub(super) batch: Option<super::fleet::Whole>,
    pub(super) max_failures: Option<super::fleet::Whole>,
    pub(super) on_host_failure: Option<super::fleet::Failure>,
    pub(super) remote_script: Option<super::fleet::RemotePath>,
    pub(super) known_hosts: Option<super::fleet::RemotePath>,
}

/// A value as the file wrote it, in words, for "expected …, found …".
pub(super) fn found(value: &toml::Value) -> String {
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
pub(super) struct Text(pub(super) String);

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
pub(super) struct SecretText(pub(super) String);

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
pub(super) struct PathText(pub(super) PathBuf);

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
pub(super) struct Count(pub(super) usize);

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
pub(super) struct Human(pub(super) Duration);

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
pub(super) struct Nets(pub(super) Vec<IpNet>);

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
pub(super) struct Size(pub(super) u64);

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
pub(super) struct Forge(pub(super) Provider);

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
pub(super) enum AfterCi {
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
pub(super) struct NameGlobs(pub(super) Patterns);

impl<'de> Deserialize<'de> for NameGlobs {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        globs(d, Kind::Name).map(NameGlobs)
    }
}

/// `paths` and `paths_ignore`: gitignore-style globs of paths.
pub(super) struct PathGlobs(pub(super) Patterns);

impl<'de> Deserialize<'de> for PathGlobs {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        globs(d, Kind::Path).map(PathGlobs)
    }
}

/// The script's arguments: a list of text.
#[derive(Default)]
pub(super) struct Args(pub(super) Vec<String>);

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
pub(super) struct Argv(pub(super) Vec<String>);

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

/// One of a few words, each standing for a `T`; `what` says them all.
fn choice<'de, D: serde::Deserializer<'de>, T: Copy>(
    d: D,
    what: &str,
    choices: &[(&str, T)],
) -> Result<T, D::Error> {
    match value(d)? {
        toml::Value::String(s) => choices
            .iter()
            .find(|(word, _)| *word == s)
            .map(|(_, t)| *t)
            .ok_or_else(|| {
                serde::de::Error::custom(format!("{s:?} is not a choice here: give {what}"))
            }),
        v => Err(expected(what, &v)),
    }
}

/// `on_new_push`: `"queue"` or `"cancel"`.
pub(super) struct NewPush(pub(super) OnNewPush);

impl<'de> Deserialize<'de> for NewPush {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        const WHAT: &str = "\"queue\" (a newer push waits) or \"cancel\" \
                            (a newer push cancels the running deploy)";
        let choices = [("queue", OnNewPush::Queue), ("cancel", OnNewPush::Cancel)];
        choice(d, WHAT, &choices).map(NewPush)
    }
}

/// `on_unhealthy`: `"keep"` or `"rollback"`.
pub(super) struct Unhealthy(pub(super) OnUnhealthy);

impl<'de> Deserialize<'de> for Unhealthy {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        const WHAT: &str = "\"keep\" (record the run unhealthy) or \"rollback\" \
                            (then deploy the last healthy commit again)";
        let choices = [
            ("keep", OnUnhealthy::Keep),
            ("rollback", OnUnhealthy::Rollback),
        ];
        choice(d, WHAT, &choices).map(Unhealthy)
    }
}

/// Extra environment: a table of text values.
#[derive(Default)]
pub(super) struct Env(pub(super) BTreeMap<String, String>);

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigError;
    use crate::config::test_support::*;

    /// Every key, given values of the wrong kind: each error is in words,
    /// on the key's own line, with none of serde's or Rust's vocabulary.
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
    fn sizes() {
        assert_eq!(parse_size("25MiB").unwrap(), 25 << 20);
        assert_eq!(parse_size("1 GiB").unwrap(), 1 << 30);
        assert_eq!(parse_size("512k").unwrap(), 512_000);
        assert_eq!(parse_size("1024").unwrap(), 1024);
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("99999999999999GiB").is_err());
    }
}
