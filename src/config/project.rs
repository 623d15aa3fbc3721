//! One `[projects.NAME]` table: which pushes deploy, the secret that signs
//! them, the script that runs and how long it may take, its health check
//! and the CI it waits for; checked from [`RawProject`] into [`Project`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;

use crate::config::pattern::{Kind, Patterns};
use crate::config::places::{dir_problem, script_problem};
use crate::config::report::{self, Report};
use crate::config::secrets::{self, Chosen, Keys, Rule, SECRET, SECRET_PREVIOUS, SecretSource};
use crate::config::shape::{AfterCi, Human, NameGlobs, PathText, RawProject, Text};
use crate::config::{ConfigError, Context, MAX_DURATION, Server};
use crate::forge::{self, Key, Provider};

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
    /// The CI a push waits for before it deploys (docs/ci-gate.md):
    /// GitHub's and Gitea's workflow names, Bitbucket's build status keys,
    /// `["pipeline"]` for GitLab's `after_ci = true`. Empty: a push deploys
    /// at once.
    pub after_ci: Vec<String>,
    /// How long a push may wait for its CI before it is dropped.
    pub ci_timeout: Duration,
    /// `remote` and `reconcile`: catch-up with the forge (`reconcile.rs`).
    pub reconcile: super::reconcile::Reconcile,
    /// The hosts a run rolls out over, by ssh (`hosts` and its keys:
    /// docs/fleet.md); `None` runs the script here.
    pub fleet: Option<super::fleet::Fleet>,
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

/// The path of `key` in project `name`'s table.
fn at<'a>(name: &'a str, key: &'a str) -> [&'a str; 3] {
    ["projects", name, key]
}

/// The project table `name`, checked; it inherits `max_age` and
/// `allow_from` from `server`. The checks run in the order the keys are
/// documented, so that of several mistakes the first is the one reported.
pub(super) fn check(
    name: &str,
    p: RawProject,
    server: &Server,
    cx: &Context<'_>,
) -> Result<Project, ConfigError> {
    if let Some(problem) = name_problem(name) {
        return Err(cx.invalid(
            &["projects", name],
            format!(
                "the project name {name:?} {problem}: it becomes a URL path and a \
                 file name, so it may only hold letters, digits, '-', '_' and '.', \
                 and may not start with '.'"
            ),
        ));
    }
    let provider = p.provider.map_or(Provider::default(), |f| f.0);
    // The secret, then the one being rotated out: the same four sources
    // under two sets of names.
    let given = secrets::given(
        p.secret,
        p.secret_file,
        p.secret_env,
        p.secret_credential,
        &cx.base,
    );
    let Some((key, source)) = hook_key(name, SECRET, given, provider, cx)? else {
        return Err(cx.invalid(
            &at(name, "secret"),
            "give exactly one of secret, secret_file, secret_env, secret_credential".into(),
        ));
    };
    let given = secrets::given(
        p.secret_previous,
        p.secret_previous_file,
        p.secret_previous_env,
        p.secret_previous_credential,
        &cx.base,
    );
    let previous = hook_key(name, SECRET_PREVIOUS, given, provider, cx)?;
    let report = p
        .report
        .map(|r| report::check(r, name, provider, cx))
        .transpose()?;
    let max_age = p.max_age.map_or(server.max_age, |d| d.0);
    if max_age.is_zero() {
        return Err(cx.invalid(&at(name, "max_age"), "must be more than 0s".into()));
    }
    let repository = repository(name, p.repository, cx)?;
    let branches = branches(name, p.branch, p.branches, cx)?;
    let (script, working_dir) = run_paths(name, p.script, p.working_dir.as_ref(), cx)?;
    let given = [p.timeout, p.kill_grace, p.health_timeout, p.health_interval];
    let times = Times::check(name, given, max_age, cx)?;
    let (after_ci, ci_timeout) = ci(name, provider, p.after_ci, p.ci_timeout, cx)?;
    let reconcile = super::reconcile::check(p.remote, p.reconcile)
        .map_err(|(key, m)| cx.invalid(&at(name, key), m))?;
    let fleet = super::fleet::check(
        super::fleet::RawFleet {
            hosts: p.hosts,
            batch: p.batch,
            max_failures: p.max_failures,
            on_host_failure: p.on_host_failure,
            remote_script: p.remote_script,
            known_hosts: p.known_hosts,
        },
        &cx.base,
    )
    .map_err(|(key, m)| cx.invalid(&at(name, key), m))?;
    for var in p.env.0.keys() {
        if var.is_empty() || var.contains('=') || var.contains('\0') {
            return Err(cx.invalid(&at(name, "env"), format!("{var:?} is not a variable name")));
        }
    }
    Ok(Project {
        name: name.to_string(),
        provider,
        key,
        secret_source: secrets::describe_source(&source, cx.secrets),
        previous_source: previous
            .as_ref()
            .map(|(_, s)| format!("previous {}", secrets::describe_source(s, cx.secrets))),
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
        timeout: times.timeout,
        kill_grace: times.kill_grace,
        env: p.env.0,
        keep_runs: p.keep_runs.map_or(100, |n| n.0),
        report,
        on_new_push: p.on_new_push.map_or(OnNewPush::Queue, |c| c.0),
        health_check: p.health_check.map(|c| c.0).unwrap_or_default(),
        health_timeout: times.health_timeout,
        health_retries: p.health_retries.map_or(5, |n| n.0),
        health_interval: times.health_interval,
        on_unhealthy: p.on_unhealthy.map_or(OnUnhealthy::Keep, |c| c.0),
        after_ci,
        ci_timeout,
        reconcile,
        fleet,
    })
}

/// The HMAC key from whichever of `keys` gives it (`None`: none does),
/// with where it came from: a secret that is there, not empty, and one
/// `provider` accepts.
fn hook_key(
    name: &str,
    keys: Keys,
    given: [Option<SecretSource>; 4],
    provider: Provider,
    cx: &Context<'_>,
) -> Result<Option<(Key, SecretSource)>, ConfigError> {
    let invalid = |(key, m): secrets::Problem| cx.invalid(&at(name, key), m);
    let Some(chosen) = secrets::choose(keys, given, Rule::ExactlyOne).map_err(invalid)? else {
        return Ok(None);
    };
    let secret = chosen.read_filled("secret", cx.secrets).map_err(invalid)?;
    if let Some(problem) = forge::secret_problem(provider, &secret) {
        return Err(invalid((chosen.key, problem)));
    }
    let Chosen { source, .. } = chosen;
    Ok(Some((Key::new(secret.as_bytes()), source)))
}

/// `repository`: `owner/name` (GitLab groups may nest); empty is none.
fn repository(
    name: &str,
    given: Option<Text>,
    cx: &Context<'_>,
) -> Result<Option<String>, ConfigError> {
    let repository = given.map(|r| r.0).filter(|r| !r.is_empty());
    if let Some(r) = &repository
        && (r.split('/').count() < 2 || r.split('/').any(str::is_empty))
    {
        return Err(cx.invalid(
            &at(name, "repository"),
            format!(
                "{r:?} is not owner/name, such as \"acme/app\" \
                 (GitLab groups may nest: \"group/subgroup/app\")"
            ),
        ));
    }
    Ok(repository)
}

/// `branch` (one name or glob, `main` when neither is given) or `branches`
/// (a list), not both.
fn branches(
    name: &str,
    branch: Option<Text>,
    list: Option<NameGlobs>,
    cx: &Context<'_>,
) -> Result<Patterns, ConfigError> {
    match (branch, list) {
        (Some(_), Some(_)) => Err(cx.invalid(
            &at(name, "branches"),
            "give branch (one name or glob) or branches (a list), not both".into(),
        )),
        (None, Some(list)) => Ok(list.0),
        (branch, None) => {
            let branch = branch.map_or_else(|| "main".into(), |b| b.0);
            if branch.is_empty() || branch.starts_with("refs/") {
                return Err(cx.invalid(
                    &at(name, "branch"),
                    "give the branch name alone, e.g. \"main\"".into(),
                ));
            }
            Patterns::new(Kind::Name, &[branch]).map_err(|m| cx.invalid(&at(name, "branch"), m))
        }
    }
}

/// The script (required) and its working directory (the script's own by
/// default), resolved; both looked at on disk unless `cx.secrets` says the
/// run paths do not matter to this command.
fn run_paths(
    name: &str,
    script: Option<PathText>,
    working_dir: Option<&PathText>,
    cx: &Context<'_>,
) -> Result<(PathBuf, PathBuf), ConfigError> {
    let Some(script) = script else {
        return Err(cx.invalid(
            &at(name, "script"),
            "missing: every project needs the deploy script to run, \
             e.g. script = \"/usr/local/share/deployd/deploy-git.sh\""
                .into(),
        ));
    };
    let script = cx.resolve(&script.0);
    let check = cx.secrets.check_run_paths();
    if let Some(problem) = check.then(|| script_problem(&script)).flatten() {
        return Err(cx.invalid(&at(name, "script"), problem));
    }
    let working_dir = match working_dir {
        Some(w) => cx.resolve(&w.0),
        None => script.parent().unwrap_or(&cx.base).to_path_buf(),
    };
    if let Some(problem) = check.then(|| dir_problem(&working_dir)).flatten() {
        return Err(cx.invalid(&at(name, "working_dir"), problem));
    }
    Ok((script, working_dir))
}

/// A project's run and health-check durations, with their defaults.
struct Times {
    timeout: Duration,
    kill_grace: Duration,
    health_timeout: Duration,
    health_interval: Duration,
}

impl Times {
    /// `timeout`, `kill_grace`, `health_timeout` and `health_interval` as
    /// given, each within its bounds (`max_age`, already resolved, is
    /// bounded here too).
    fn check(
        name: &str,
        given: [Option<Human>; 4],
        max_age: Duration,
        cx: &Context<'_>,
    ) -> Result<Times, ConfigError> {
        let [timeout, kill_grace, health_timeout, health_interval] = given.map(|d| d.map(|d| d.0));
        let times = Times {
            timeout: timeout.unwrap_or(Duration::from_secs(15 * 60)),
            kill_grace: kill_grace.unwrap_or(Duration::from_secs(10)),
            health_timeout: health_timeout.unwrap_or(Duration::from_secs(10)),
            health_interval: health_interval.unwrap_or(Duration::from_secs(3)),
        };
        if times.timeout.is_zero() {
            return Err(cx.invalid(&at(name, "timeout"), "must be more than 0s".into()));
        }
        if times.health_timeout.is_zero() {
            return Err(cx.invalid(&at(name, "health_timeout"), "must be more than 0s".into()));
        }
        for (key, d) in [
            ("timeout", times.timeout),
            ("kill_grace", times.kill_grace),
            ("health_timeout", times.health_timeout),
            ("health_interval", times.health_interval),
            ("max_age", max_age),
        ] {
            if d > MAX_DURATION {
                return Err(cx.invalid(&at(name, key), "must be at most 100 years".into()));
            }
        }
        Ok(times)
    }
}

/// `after_ci` and `ci_timeout`: what a push waits for, and how long.
fn ci(
    name: &str,
    provider: Provider,
    after_ci: Option<AfterCi>,
    ci_timeout: Option<Human>,
    cx: &Context<'_>,
) -> Result<(Vec<String>, Duration), ConfigError> {
    let k = |key| at(name, key);
    let after_ci = waits_for(provider, after_ci).map_err(|m| cx.invalid(&k("after_ci"), m))?;
    let ci_timeout_given = ci_timeout.is_some();
    let ci_timeout = ci_timeout.map_or(Duration::from_secs(3600), |d| d.0);
    if ci_timeout_given && after_ci.is_empty() {
        return Err(cx.invalid(
            &k("ci_timeout"),
            "has no effect without after_ci: set after_ci, or remove ci_timeout".into(),
        ));
    }
    if ci_timeout.is_zero() {
        return Err(cx.invalid(&k("ci_timeout"), "must be more than 0s".into()));
    }
    if ci_timeout > MAX_DURATION {
        return Err(cx.invalid(&k("ci_timeout"), "must be at most 100 years".into()));
    }
    Ok((after_ci, ci_timeout))
}

/// The names a push waits for, from `after_ci` as `provider` takes it:
/// GitHub, Gitea and Bitbucket name what must pass (a list); GitLab has one
/// pipeline per commit (`true`).
fn waits_for(provider: Provider, raw: Option<AfterCi>) -> Result<Vec<String>, String> {
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

/// What is wrong with a project's (or a notify target's) name, if
/// anything, said of the name itself.
pub(super) fn name_problem(name: &str) -> Option<String> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_support::*;

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
    fn bad_duration_names_its_key() {
        let (line, key, _) = err(&format!(
            "[projects.app]\nsecret = \"x\"\nscript = \"{SCRIPT}\"\ntimeout = \"15 fortnights\"\n"
        ));
        assert_eq!((line, key.as_str()), (4, "projects.app.timeout"));
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
}
