//! A project's fleet: the keys that make one run roll out host by host over
//! OpenSSH (`hosts`, `batch`, `max_failures`, `on_host_failure`,
//! `remote_script`, `known_hosts`; docs/fleet.md), their serde shape and
//! their checks. Without `hosts` a project runs its script locally, as
//! always, and the other keys are refused as having no effect.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// A project's hosts and how a run rolls out over them, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fleet {
    /// In the order written: batches are taken from the front.
    pub hosts: Vec<Host>,
    /// Hosts deployed at once (`batch`, default 1).
    pub batch: usize,
    /// Hosts that may fail before the rollout stops (`max_failures`,
    /// default 0: the first failure stops it).
    pub max_failures: usize,
    /// What a failure past `max_failures` does to the hosts already done.
    pub on_host_failure: OnHostFailure,
    /// The script's path on the hosts; `None` sends the local `script` on
    /// stdin instead, so the hosts need nothing installed but a shell.
    pub remote_script: Option<String>,
    /// The known_hosts file checked (`StrictHostKeyChecking=yes`); `None`
    /// is ssh's own default (`~/.ssh/known_hosts` of the daemon's user).
    pub known_hosts: Option<PathBuf>,
}

/// One host of a fleet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// How logs, records and `logs --host` name it; unique in the project.
    /// Defaults to the address.
    pub name: String,
    /// The address ssh connects to (a name or an IP address).
    pub address: String,
    /// The login; `None` is ssh's default (its config, else the daemon's
    /// user).
    pub user: Option<String>,
    /// The port; `None` is ssh's default.
    pub port: Option<u16>,
    /// The private key offered (`-i`, with `IdentitiesOnly=yes`).
    pub identity_file: Option<PathBuf>,
}

impl Host {
    /// `user@address` (or the address alone), as ssh takes it.
    pub fn destination(&self) -> String {
        match &self.user {
            Some(u) => format!("{u}@{}", self.address),
            None => self.address.clone(),
        }
    }
}

/// `on_host_failure`: what a failed host does past `max_failures`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnHostFailure {
    /// The rollout stops; the hosts done keep the new commit.
    Stop,
    /// The rollout stops and the hosts done get the previous commit again.
    Rollback,
}

/// The fleet keys as the file wrote them.
#[derive(Default)]
pub(super) struct RawFleet {
    pub(super) hosts: Option<Hosts>,
    pub(super) batch: Option<Whole>,
    pub(super) max_failures: Option<Whole>,
    pub(super) on_host_failure: Option<Failure>,
    pub(super) remote_script: Option<RemotePath>,
    pub(super) known_hosts: Option<RemotePath>,
}

/// `hosts`: a list of `"user@address:port"` texts or of tables.
pub(super) struct Hosts(Vec<Host>);

/// `batch`, `max_failures`: a whole number (0 allowed; `batch` checks it).
pub(super) struct Whole(usize);

/// `on_host_failure`.
pub(super) struct Failure(OnHostFailure);

/// A path in quotes, kept as written (a remote path is not resolved here).
pub(super) struct RemotePath(String);

fn custom<E: serde::de::Error>(m: String) -> E {
    E::custom(m)
}

impl<'de> Deserialize<'de> for Hosts {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        const WHAT: &str = "a list of hosts, such as [\"deploy@web1\", \"deploy@web2:2222\"]";
        let items = match toml::Value::deserialize(d)? {
            toml::Value::Array(items) if !items.is_empty() => items,
            toml::Value::Array(_) => {
                return Err(custom(format!(
                    "the list is empty: give {WHAT}, or remove the key to run the script here"
                )));
            }
            v => {
                return Err(custom(format!(
                    "expected {WHAT}, found {}",
                    super::shape::found(&v)
                )));
            }
        };
        items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                match item {
                    toml::Value::String(s) => parse_host(s),
                    toml::Value::Table(t) => host_table(t),
                    v => Err(format!(
                        "expected \"user@address:port\" or a table, found {}",
                        super::shape::found(v)
                    )),
                }
                .map_err(|m| custom(format!("host {}: {m}", i + 1)))
            })
            .collect::<Result<_, _>>()
            .map(Hosts)
    }
}

/// `"deploy@web2:2222"`, `"web1"`, `"deploy@[2001:db8::1]:22"`.
pub fn parse_host(text: &str) -> Result<Host, String> {
    let (user, rest) = match text.rsplit_once('@') {
        Some((u, r)) => (Some(u.to_string()), r),
        None => (None, text),
    };
    let (address, port) = if let Some(inner) = rest.strip_prefix('[') {
        let Some((addr, after)) = inner.split_once(']') else {
            return Err(format!("{text:?}: a '[' without its ']'"));
        };
        match after.strip_prefix(':') {
            Some(p) => (addr.to_string(), Some(p)),
            None if after.is_empty() => (addr.to_string(), None),
            None => return Err(format!("{text:?}: expected :PORT after ']'")),
        }
    } else if rest.matches(':').count() == 1 {
        let (a, p) = rest.split_once(':').unwrap_or((rest, ""));
        (a.to_string(), Some(p))
    } else {
        (rest.to_string(), None)
    };
    let port = match port {
        Some(p) => Some(
            p.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("{text:?}: {p:?} is not a port"))?,
        ),
        None => None,
    };
    let host = Host {
        name: address.clone(),
        address,
        user,
        port,
        identity_file: None,
    };
    host_problem(&host).map_or(Ok(host), Err)
}

/// Hosts named by their address (the default) that share it with another
/// host are named `address:port` instead, so that two sshd at one address
/// (one machine, or ports forwarded by one gateway) are two names.
fn name_by_port(hosts: &mut [Host]) {
    let shared: Vec<bool> = hosts
        .iter()
        .map(|h| h.name == h.address && hosts.iter().filter(|o| o.name == h.name).count() > 1)
        .collect();
    for (h, shared) in hosts.iter_mut().zip(shared) {
        if let (true, Some(port)) = (shared, h.port) {
            h.name = format!("{}:{port}", h.address);
        }
    }
}

fn host_table(t: &toml::Table) -> Result<Host, String> {
    let text = |key: &str| -> Result<Option<String>, String> {
        match t.get(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s.clone())),
            Some(v) => Err(format!(
                "{key}: expected text in quotes, found {}",
                super::shape::found(v)
            )),
        }
    };
    for key in t.keys() {
        if !["name", "address", "user", "port", "identity_file"].contains(&key.as_str()) {
            return Err(format!(
                "unknown key {key:?}: a host has name, address, user, port and identity_file"
            ));
        }
    }
    let Some(address) = text("address")? else {
        return Err("address: missing: say where ssh connects, e.g. address = \"web1\"".into());
    };
    let port = match t.get("port") {
        None => None,
        Some(toml::Value::Integer(n)) => Some(
            u16::try_from(*n)
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("port: {n} is not a port"))?,
        ),
        Some(v) => {
            return Err(format!(
                "port: expected a number, found {}",
                super::shape::found(v)
            ));
        }
    };
    let host = Host {
        name: text("name")?.unwrap_or_else(|| address.clone()),
        address,
        user: text("user")?,
        port,
        identity_file: text("identity_file")?.map(PathBuf::from),
    };
    host_problem(&host).map_or(Ok(host), Err)
}

/// What is wrong with a host, if anything: a name that cannot be a file
/// name, an address or user ssh would read as an option or split.
fn host_problem(h: &Host) -> Option<String> {
    let bad = |s: &str| s.is_empty() || s.starts_with('-') || s.contains(char::is_whitespace);
    if bad(&h.address) || h.address.contains('@') {
        return Some(format!(
            "{:?} is not an address ssh can connect to",
            h.address
        ));
    }
    if let Some(u) = &h.user
        && (bad(u) || u.contains(['@', ':']))
    {
        return Some(format!("{u:?} is not a user name"));
    }
    let name_ok = !h.name.is_empty()
        && !h.name.starts_with('.')
        && h.name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c));
    if !name_ok {
        return Some(format!(
            "the name {:?} may only hold letters, digits, '-', '_', '.' and ':' \
             (it names the host's log file); give name = \"…\"",
            h.name
        ));
    }
    None
}

impl<'de> Deserialize<'de> for Whole {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match toml::Value::deserialize(d)? {
            toml::Value::Integer(n) if n >= 0 => usize::try_from(n)
                .map(Whole)
                .map_err(|_| custom(format!("{n} is too large"))),
            v => Err(custom(format!(
                "expected a whole number, found {}",
                super::shape::found(&v)
            ))),
        }
    }
}

impl<'de> Deserialize<'de> for Failure {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        const WHAT: &str = "\"stop\" (the hosts done keep the new commit) or \"rollback\" \
                            (the hosts done get the previous commit again)";
        match toml::Value::deserialize(d)? {
            toml::Value::String(s) if s == "stop" => Ok(Failure(OnHostFailure::Stop)),
            toml::Value::String(s) if s == "rollback" => Ok(Failure(OnHostFailure::Rollback)),
            toml::Value::String(s) => {
                Err(custom(format!("{s:?} is not a choice here: give {WHAT}")))
            }
            v => Err(custom(format!(
                "expected {WHAT}, found {}",
                super::shape::found(&v)
            ))),
        }
    }
}

impl<'de> Deserialize<'de> for RemotePath {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match toml::Value::deserialize(d)? {
            toml::Value::String(s) if !s.trim().is_empty() => Ok(RemotePath(s)),
            v => Err(custom(format!(
                "expected a path in quotes, found {}",
                super::shape::found(&v)
            ))),
        }
    }
}

/// Checks the fleet keys of one project; `base` resolves relative local
/// paths (identity files, known_hosts). `Err` names the key at fault.
pub(super) fn check(raw: RawFleet, base: &Path) -> Result<Option<Fleet>, (&'static str, String)> {
    let Some(Hosts(mut hosts)) = raw.hosts else {
        for (key, given) in [
            ("batch", raw.batch.is_some()),
            ("max_failures", raw.max_failures.is_some()),
            ("on_host_failure", raw.on_host_failure.is_some()),
            ("remote_script", raw.remote_script.is_some()),
            ("known_hosts", raw.known_hosts.is_some()),
        ] {
            if given {
                return Err((
                    key,
                    "has no effect without hosts: set hosts, or remove it".into(),
                ));
            }
        }
        return Ok(None);
    };
    name_by_port(&mut hosts);
    for (i, h) in hosts.iter().enumerate() {
        if hosts[..i].iter().any(|o| o.name == h.name) {
            return Err((
                "hosts",
                format!(
                    "two hosts are named {:?}: give each a name of its own",
                    h.name
                ),
            ));
        }
    }
    for h in &mut hosts {
        if let Some(f) = &h.identity_file {
            h.identity_file = Some(base.join(f));
        }
    }
    let batch = raw.batch.map_or(1, |b| b.0);
    if batch == 0 {
        return Err(("batch", "must be 1 or more (hosts deployed at once)".into()));
    }
    if let Some(RemotePath(p)) = &raw.remote_script
        && !p.starts_with('/')
    {
        return Err((
            "remote_script",
            format!("{p:?}: give the script's absolute path on the hosts"),
        ));
    }
    Ok(Some(Fleet {
        hosts,
        batch,
        max_failures: raw.max_failures.map_or(0, |m| m.0),
        on_host_failure: raw.on_host_failure.map_or(OnHostFailure::Stop, |f| f.0),
        remote_script: raw.remote_script.map(|p| p.0),
        known_hosts: raw.known_hosts.map(|p| base.join(p.0)),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_texts() {
        let h = parse_host("deploy@web2:2222").unwrap();
        assert_eq!(
            (h.name.as_str(), h.user.as_deref(), h.port),
            ("web2", Some("deploy"), Some(2222))
        );
        assert_eq!(h.destination(), "deploy@web2");
        let h = parse_host("web1").unwrap();
        assert_eq!((h.user, h.port), (None, None));
        let h = parse_host("root@[2001:db8::1]:22").unwrap();
        assert_eq!((h.address.as_str(), h.port), ("2001:db8::1", Some(22)));
        assert!(parse_host("deploy@web1:99999").is_err());
        assert!(parse_host("-oProxyCommand=x").is_err());
        assert!(parse_host("deploy@").is_err());
    }

    fn parse(extra: &str) -> Result<super::super::Config, String> {
        let text = format!("[projects.app]\nsecret = \"x\"\nscript = \"/d.sh\"\n{extra}\n");
        super::super::parse(
            &text,
            Path::new("/etc/deployd/deploy.toml"),
            &super::super::secrets::NoSecrets,
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn hosts_at_one_address_are_named_by_their_ports() {
        let c = parse("hosts = [\"deploy@127.0.0.1:2201\", \"deploy@127.0.0.1:2202\", \"web\"]")
            .unwrap();
        let names: Vec<_> = c.projects["app"]
            .fleet
            .clone()
            .unwrap()
            .hosts
            .into_iter()
            .map(|h| h.name)
            .collect();
        assert_eq!(names, ["127.0.0.1:2201", "127.0.0.1:2202", "web"]);
        // Without ports to tell them apart, they are refused.
        let e = parse("hosts = [\"a@web\", \"b@web\"]").unwrap_err();
        assert!(e.contains("two hosts are named \"web\""), "{e}");
    }

    #[test]
    fn fleet_keys_in_a_project() {
        let c = parse(
            "hosts = [\"deploy@web1\", { name = \"b\", address = \"10.0.0.2\", port = 2222, \
             identity_file = \"id\" }]\nbatch = 2\non_host_failure = \"rollback\"",
        )
        .unwrap();
        let f = c.projects["app"].fleet.clone().unwrap();
        assert_eq!((f.batch, f.max_failures), (2, 0));
        assert_eq!(f.on_host_failure, OnHostFailure::Rollback);
        assert_eq!(
            f.hosts[1].identity_file.as_deref(),
            Some(Path::new("/etc/deployd/id"))
        );
        assert!(parse("").unwrap().projects["app"].fleet.is_none());
        let e = parse("batch = 2").unwrap_err();
        assert!(e.contains("batch") && e.contains("without hosts"), "{e}");
        let e = parse("hosts = [{ adress = \"x\" }]").unwrap_err();
        assert!(e.contains("unknown key"), "{e}");
        let e = parse("hosts = [\"a\", \"deploy@a\"]").unwrap_err();
        assert!(e.contains("two hosts"), "{e}");
    }
}
