//! Catch-up with the forge (docs/catch-up.md): a push made while deployd
//! was stopped, upgrading or unreachable reached no webhook, so at start —
//! and, in pull mode, at the project's `reconcile` interval — deployd asks
//! the remote for the deploy branch's head (and the project's tags) with
//! `git ls-remote`, and queues a request with trigger `catchup` when that
//! head is a commit it never deployed nor queued. The request goes the way
//! a push goes: the filters, the CI gate, the queue, the notifications.
//!
//! `ls-remote` runs as a child process under a timeout, awaited without
//! holding the runtime; the webhook path never waits on it. A failing one
//! is logged once per change of its error, recorded for `deployd status`
//! ([`crate::store::reconcile`]), and deploys nothing. With no project on
//! an interval there is no timer at all: after the start, the task only
//! waits for a reload or the stop.
//!
//! A gated catch-up of a project with a report token asks the forge's API
//! for its commit's CI ([`crate::forge::ci_of_commit`]) while it waits in
//! the gate, and feeds the answers to [`ci_gate::ci`] as CI events; the
//! task also starts GitHub's redelivery of failed deliveries
//! ([`redeliver`]) at start. Both end with it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::daemon::shutdown::Shutdown;
use tokio::process::Command;
use tokio::time::Instant;

use crate::config::reconcile::{Mode, remote_problem};
use crate::config::{Config, Project};
use crate::forge::push::{Files, Push};
use crate::fsutil;
use crate::intake::{ci_gate, filter, redeliver};
use crate::run::lifecycle::blocking;
use crate::state::Shared;
use crate::store::gates::{self, Gate};
use crate::store::history::Status;
use crate::store::queue::{DeployRequest, Trigger};
use crate::store::reconcile::{self, Last};

/// How long one `git ls-remote` (or the lookup of `origin`) may take.
const GIT_TIMEOUT: Duration = Duration::from_secs(30);

/// The outcome of a catch-up that waits in the CI gate.
const WAITING: &str = "waiting for CI";

/// Why the path filter cannot be applied to a catch-up (`Push::note`).
const NO_FILES: &str = "a catch-up sees the forge's head only, not what the missed pushes changed";

/// Reconciles every project at start, then those with an interval at their
/// interval, following reloads, until the daemon's shutdown begins.
pub(crate) async fn run(shared: Arc<Shared>, mut stop: Shutdown) {
    let errors = Arc::new(Mutex::new(HashMap::new()));
    let mut config = shared.config_changes();
    let mut first = true;
    // Per project in pull mode: its interval, and when it looks next.
    let mut next: HashMap<String, (Duration, Instant)> = HashMap::new();
    // The tasks that ask a forge's API (a gated catch-up's CI, GitHub's
    // redeliveries): they end on their own, and with this task at the stop.
    let mut watchers = tokio::task::JoinSet::new();
    loop {
        let now_config: Arc<Config> = config.borrow_and_update().clone();
        let now = Instant::now();
        let mut due = Vec::new();
        for p in now_config.projects.values() {
            match p.reconcile.mode {
                Mode::Off => {
                    next.remove(&p.name);
                }
                Mode::Start if first => due.push(p.clone()),
                Mode::Start => {
                    next.remove(&p.name);
                }
                Mode::Every(every) => {
                    let (was, at) = next
                        .entry(p.name.clone())
                        .or_insert((every, if first { now } else { now + every }));
                    // A reload that shortens the interval applies at once.
                    if *was != every {
                        *at = (*at).min(now + every);
                        *was = every;
                    }
                    if *at <= now {
                        due.push(p.clone());
                        *at = now + every;
                    }
                }
            }
        }
        next.retain(|name, _| now_config.projects.contains_key(name));
        if first {
            for p in now_config.projects.values() {
                if let Some(job) = redeliver::Job::of(p) {
                    watchers.spawn(redeliver::run(shared.clone(), job));
                }
            }
        }
        first = false;
        let mut set = tokio::task::JoinSet::new();
        for p in due {
            set.spawn(once(shared.clone(), p, errors.clone()));
        }
        let reconciled = async {
            let mut waits = Vec::new();
            while let Some(done) = set.join_next().await {
                waits.extend(done.ok().flatten());
            }
            waits
        };
        tokio::select! {
            waits = reconciled => for w in waits {
                watchers.spawn(ask_ci(shared.clone(), w));
            },
            () = stop.recv() => return,
        }
        let earliest = next.values().map(|(_, at)| *at).min();
        let sleep = async {
            match earliest {
                Some(at) => tokio::time::sleep_until(at).await,
                // No project on an interval: no timer.
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = sleep => {}
            changed = config.changed() => if changed.is_err() {
                return;
            },
            // A finished watcher is reaped; nothing else to do.
            Some(_) = watchers.join_next(), if !watchers.is_empty() => {}
            () = stop.recv() => return,
        }
    }
}

/// One reconcile of `project`: ask, compare, queue, record. Returns the
/// catch-up that waits in the CI gate when the forge's API is to be asked
/// for its CI.
async fn once(
    shared: Arc<Shared>,
    project: Project,
    errors: Arc<Mutex<HashMap<String, String>>>,
) -> Option<Waits> {
    let name = project.name.clone();
    let remote = match remote_of(&project).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            if project.reconcile.explicit {
                note_error(
                    &errors,
                    &name,
                    "no remote to reconcile with: set remote, or make working_dir a git checkout \
                     with an origin",
                );
            }
            return None;
        }
        Err(e) => {
            note_error(&errors, &name, &e);
            return None;
        }
    };
    let state_dir = shared.config().server.state_dir.clone();
    let previous = {
        let (dir, n) = (state_dir.clone(), name.clone());
        blocking(move || reconcile::load(&dir, &n)).await
    };
    let mut last = Last {
        at: fsutil::now_rfc3339(),
        remote: without_credentials(&remote),
        git_ref: project.default_ref().unwrap_or_default(),
        queued: previous.as_ref().and_then(|l| l.queued.clone()),
        ..Last::default()
    };
    match ls_remote(&remote, &project).await {
        Err(e) => {
            note_error(
                &errors,
                &name,
                &format!("git ls-remote {}: {e}", last.remote),
            );
            last.outcome = "failed".into();
            last.error = Some(e);
            // The tags seen before stay what a tag is new against.
            last.tags = previous.and_then(|p| p.tags);
        }
        Ok(refs) => {
            if errors
                .lock()
                .map(|mut e| e.remove(&name))
                .ok()
                .flatten()
                .is_some()
            {
                tracing::info!("{name}: catch-up: {} answers again", last.remote);
            }
            compare_and_queue(&shared, &project, refs, previous, &mut last).await;
        }
    }
    let waits = (last.outcome == WAITING && asks_forge(&project))
        .then(|| {
            Some(Waits {
                project: name.clone(),
                sha: last.head.clone()?,
                branch: last.git_ref.strip_prefix("refs/heads/")?.to_string(),
            })
        })
        .flatten();
    let saved = blocking(move || reconcile::save(&state_dir, &name, &last).map(|()| name)).await;
    if let Err(e) = saved {
        tracing::warn!("{}: cannot record the reconcile: {e}", project.name);
    }
    waits
}

/// Logs `error` for `project` unless it is the one logged last time.
fn note_error(errors: &Mutex<HashMap<String, String>>, project: &str, error: &str) {
    let Ok(mut errors) = errors.lock() else {
        return;
    };
    if errors.get(project).map(String::as_str) != Some(error) {
        tracing::warn!("{project}: catch-up: {error}; nothing deployed (webhooks still work)");
        errors.insert(project.to_string(), error.to_string());
    }
}

/// What the last look found, against what the project deployed or holds.
async fn compare_and_queue(
    shared: &Arc<Shared>,
    project: &Project,
    refs: BTreeMap<String, String>,
    previous: Option<Last>,
    last: &mut Last,
) {
    let known = known(shared, project).await;
    let head = refs.get(&last.git_ref).cloned();
    last.head = head.clone();
    last.tags = (!project.tags.is_empty()).then(|| {
        refs.iter()
            .filter_map(|(r, sha)| Some((r.strip_prefix("refs/tags/")?.to_string(), sha.clone())))
            .filter(|(tag, _)| project.tags.matches(tag))
            .collect()
    });
    let seen_tags = previous.and_then(|p| p.tags);
    let no_tags = BTreeMap::new();
    let Some((git_ref, sha)) = decide(
        &last.git_ref,
        head.as_deref(),
        last.tags.as_ref().unwrap_or(&no_tags),
        seen_tags.as_ref(),
        &known,
        last.queued.as_deref(),
    ) else {
        last.outcome = if last.git_ref.is_empty() {
            "no branch named without a glob".into()
        } else if head.is_none() {
            "no such ref".into()
        } else {
            "up to date".into()
        };
        return;
    };
    last.git_ref = git_ref.clone();
    last.head = Some(sha.clone());
    last.outcome = queue(shared, project, git_ref, sha.clone(), &known).await;
    if last.outcome != "failed" && !last.outcome.starts_with("ignored") {
        last.queued = Some(sha);
    }
}

/// The commits of `project` deployed or tried (every kept run record,
/// whatever its status: a failed deploy is not retried on every look),
/// pending, or waiting for CI; and the newest one that succeeded, per ref.
struct Known {
    shas: HashSet<String>,
    succeeded: HashMap<String, String>,
}

async fn known(shared: &Shared, project: &Project) -> Known {
    let (history, name) = (shared.history.clone(), project.name.clone());
    let dir = shared.config().server.state_dir.clone();
    let gated = !project.after_ci.is_empty();
    let pending = shared.queue.pending(&project.name);
    // Taken by the executor, its run not recorded yet (waiting for the lock).
    let taken = shared.queue.taken(&project.name);
    blocking(move || {
        let runs = history.list(&name, None).unwrap_or_default();
        let mut k = Known {
            shas: runs.iter().map(|r| r.request.push.after.clone()).collect(),
            succeeded: HashMap::new(),
        };
        // Newest first: the first success of a ref is its last.
        for r in runs.iter().filter(|r| r.status == Status::Succeeded) {
            k.succeeded
                .entry(r.request.push.git_ref.clone())
                .or_insert_with(|| r.request.push.after.clone());
        }
        k.shas.extend(pending.map(|p| p.push.after));
        k.shas.extend(taken);
        if gated {
            let g: std::io::Result<Gate<DeployRequest>> = gates::load(&dir, &name);
            if let Ok(Some(w)) = g.as_ref().map(Gate::waiting) {
                k.shas.insert(w.sha.clone());
            }
        }
        k.shas.remove("");
        k
    })
    .await
}

/// What to queue, if anything: the branch's head when it is a commit not
/// known; otherwise (or without a branch) the greatest new tag — one the
/// last look did not list, of a commit not known. On the first look there
/// is no last look: its tags are the baseline, none of them deploys.
fn decide(
    branch_ref: &str,
    head: Option<&str>,
    tags: &BTreeMap<String, String>,
    seen_tags: Option<&BTreeMap<String, String>>,
    known: &Known,
    queued: Option<&str>,
) -> Option<(String, String)> {
    let fresh = |sha: &str| !known.shas.contains(sha) && queued != Some(sha);
    if let Some(h) = head
        && fresh(h)
    {
        return Some((branch_ref.to_string(), h.to_string()));
    }
    let seen = seen_tags?;
    tags.iter()
        .filter(|(t, sha)| seen.get(*t) != Some(sha) && fresh(sha))
        .max_by(|a, b| version_order(a.0, b.0))
        .map(|(t, sha)| (format!("refs/tags/{t}"), sha.clone()))
}

/// Tags compared as versions where their digits are (`v1.10.0` after
/// `v1.9.0`), as text elsewhere.
fn version_order(a: &str, b: &str) -> std::cmp::Ordering {
    let parts = |s: &str| -> Vec<(u64, String)> {
        s.split(|c: char| !c.is_ascii_alphanumeric())
            .map(|p| {
                let digits: String = p.chars().filter(char::is_ascii_digit).collect();
                (digits.parse().unwrap_or(0), p.to_string())
            })
            .collect()
    };
    parts(a).cmp(&parts(b))
}

/// Queues the catch-up of `sha` on `git_ref` the way a push goes: filter,
/// CI gate, queue. Returns the outcome, in words.
async fn queue(
    shared: &Arc<Shared>,
    project: &Project,
    git_ref: String,
    sha: String,
    known: &Known,
) -> String {
    let push = Push {
        before: known.succeeded.get(&git_ref).cloned().unwrap_or_default(),
        git_ref,
        after: sha,
        repository: project.repository.clone().unwrap_or_default(),
        files: Files::Unknown(NO_FILES.into()),
        ..Push::default()
    };
    let push = match filter::choose(project, vec![push]) {
        Ok(push) => push,
        Err(reason) => {
            tracing::info!("{}: catch-up ignored: {reason}", project.name);
            return format!("ignored: {reason}");
        }
    };
    if !push.note.is_empty() {
        tracing::info!(
            "{}: catch-up of {}: {}",
            project.name,
            push.short_sha(),
            push.note
        );
    }
    let line = format!(
        "{}: catch-up: {} is at {} on the forge, deployed last: {}",
        project.name,
        push.git_ref,
        push.short_sha(),
        if push.before.is_empty() {
            "nothing known".to_string()
        } else {
            crate::text::short_sha(&push.before).to_string()
        }
    );
    let req = DeployRequest::new(
        shared.queue.next_seq(),
        &project.name,
        Trigger::Catchup,
        push,
    );
    if ci_gate::gates(project, &req.push) {
        let sha = req.push.after.clone();
        return match ci_gate::push(shared, project, req).await {
            Ok((_, body)) => {
                let status = body["status"].as_str().unwrap_or_default().to_string();
                tracing::info!("{line}; through the CI gate: {status}");
                if status == "waiting" {
                    if asks_forge(project) {
                        tracing::info!(
                            "{}: catch-up of {}: asks the forge's API for its CI",
                            project.name,
                            crate::text::short_sha(&sha)
                        );
                    } else {
                        // Its CI events may have come while deployd was
                        // down: a redelivery of them, or a re-run, lets it
                        // through.
                        tracing::info!(
                            "{}: catch-up of {}: waits for a CI event",
                            project.name,
                            crate::text::short_sha(&sha)
                        );
                    }
                    return WAITING.into();
                }
                status
            }
            Err(e) => {
                tracing::error!(
                    "{}: catch-up: cannot record the CI gate's decision: {e}",
                    project.name
                );
                "failed".into()
            }
        };
    }
    match shared.enqueue(req).await {
        Ok(()) => {
            tracing::info!("{line}; queued (trigger catchup)");
            "queued".into()
        }
        Err(e) => {
            tracing::error!(
                "{}: catch-up: cannot record the request durably: {e}",
                project.name
            );
            "failed".into()
        }
    }
}

/// A catch-up waiting in the CI gate, whose CI the forge's API is asked for.
struct Waits {
    project: String,
    sha: String,
    /// The branch it was caught up on, without `refs/heads/`: what a result
    /// whose forge names no branch is counted for.
    branch: String,
}

/// Whether a gated catch-up of `project` asks the forge's API for its CI:
/// it needs the report's token and the repository to name.
fn asks_forge(project: &Project) -> bool {
    !project.after_ci.is_empty() && project.report.is_some() && project.repository.is_some()
}

/// How often a waiting catch-up's CI is asked for again: every minute, or
/// every tenth of `ci_timeout` when that is shorter (at least a second).
fn ci_pace(ci_timeout: Duration) -> Duration {
    (ci_timeout / 10).clamp(Duration::from_secs(1), Duration::from_secs(60))
}

/// Asks the forge for the CI of the catch-up `w` at once, then at
/// [`ci_pace`] while it still waits in the gate, within `ci_timeout`. What
/// the forge answers goes into the CI gate as a CI event would: a pass
/// queues the catch-up, a failure records it `ci_failed`. A reload that
/// takes the report, the repository or `after_ci` away ends it; so does
/// the gate ceasing to wait for that commit (it went, failed, timed out,
/// or a newer push replaced it).
async fn ask_ci(shared: Arc<Shared>, w: Waits) {
    let deadline = Instant::now() + {
        let config = shared.config();
        config
            .projects
            .get(&w.project)
            .map_or(Duration::ZERO, |p| p.ci_timeout)
    };
    let short = crate::text::short_sha(&w.sha).to_string();
    let mut last_error: Option<String> = None;
    // What each workflow was last said to be: a run in progress is asked
    // about every minute, and logged once.
    let mut said_last: HashMap<String, String> = HashMap::new();
    loop {
        let Some(project) = shared.config().projects.get(&w.project).cloned() else {
            return;
        };
        let (Some(report), Some(repository), true) = (
            project.report.clone(),
            project.repository.clone(),
            asks_forge(&project),
        ) else {
            return;
        };
        let (provider, sha) = (project.provider, w.sha.clone());
        let asked = blocking(move || {
            crate::forge::ci_of_commit(
                provider,
                &report.api_url,
                &report.token.0,
                &repository,
                &sha,
            )
        })
        .await;
        match asked {
            Ok(runs) => {
                if last_error.take().is_some() {
                    tracing::info!(
                        "{}: catch-up of {short}: the forge's API answers again",
                        w.project
                    );
                }
                for mut run in runs {
                    if !project.after_ci.contains(&run.workflow) {
                        continue;
                    }
                    if run.branch.is_empty() {
                        run.branch = w.branch.clone();
                    }
                    let said = format!("{} {}", run.workflow, run.conclusion);
                    let workflow = run.workflow.clone();
                    match ci_gate::ci(&shared, &project, run, String::new()).await {
                        Ok((_, body)) => {
                            let status = body["status"].as_str().unwrap_or_default();
                            let news = said_last.insert(workflow, format!("{said}: {status}"))
                                != Some(format!("{said}: {status}"));
                            if status != "duplicate" && news {
                                tracing::info!(
                                    "{}: catch-up of {short}: the forge says {said}: {status}",
                                    w.project
                                );
                            }
                        }
                        Err(e) => tracing::error!(
                            "{}: catch-up of {short}: cannot record the CI gate's decision: {e}",
                            w.project
                        ),
                    }
                }
            }
            Err(e) => {
                if last_error.as_deref() != Some(e.as_str()) {
                    tracing::warn!(
                        "{}: catch-up of {short}: asking the forge's API for its CI: {e}; \
                         it waits for a CI event",
                        w.project
                    );
                    last_error = Some(e);
                }
            }
        }
        let waiting = shared
            .gates
            .get(&w.project)
            .await
            .is_ok_and(|g| g.waiting().is_some_and(|x| x.sha == w.sha));
        let now = Instant::now();
        if !waiting || now >= deadline {
            return;
        }
        tokio::time::sleep_until((now + ci_pace(project.ci_timeout)).min(deadline)).await;
    }
}

/// The remote to ask: `remote`, or the `origin` of `working_dir` when it
/// is a git checkout (`None` when it is not, or has no origin).
async fn remote_of(project: &Project) -> Result<Option<String>, String> {
    if let Some(r) = &project.reconcile.remote {
        return Ok(Some(r.clone()));
    }
    // The checkout itself, not a directory inside some other repository
    // (git would find that one's origin).
    if !project.working_dir.join(".git").exists() {
        return Ok(None);
    }
    let mut cmd = git();
    cmd.arg("-C")
        .arg(&project.working_dir)
        .args(["config", "--get", "remote.origin.url"]);
    match output(cmd).await {
        Ok(url) => {
            let url = url.trim().to_string();
            match remote_problem(&url) {
                None => Ok(Some(url)),
                Some(p) => Err(format!("the origin of working_dir {p}")),
            }
        }
        // Not a checkout, or no origin: nothing to reconcile with.
        Err(_) => Ok(None),
    }
}

/// `git ls-remote` of the project's branch (and tags): ref → commit, with
/// an annotated tag's commit rather than the tag object.
async fn ls_remote(remote: &str, project: &Project) -> Result<BTreeMap<String, String>, String> {
    let mut cmd = git();
    cmd.args(["ls-remote", "--", remote]);
    if let Some(r) = project.default_ref() {
        cmd.arg(r);
    }
    if !project.tags.is_empty() {
        cmd.arg("refs/tags/*");
    }
    output(cmd).await.map(|text| parse_ls_remote(&text))
}

/// A git command that never asks anyone anything: no terminal prompt for
/// a password, no ssh prompt, stdin closed.
fn git() -> Command {
    let mut cmd = Command::new("git");
    cmd.env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    cmd
}

/// Runs `cmd` under [`GIT_TIMEOUT`]: its stdout, or why it failed (the
/// last line git wrote to stderr).
async fn output(mut cmd: Command) -> Result<String, String> {
    let out = tokio::time::timeout(GIT_TIMEOUT, cmd.output())
        .await
        .map_err(|_| format!("no answer within {}s", GIT_TIMEOUT.as_secs()))?
        .map_err(|e| format!("cannot run git: {e}"))?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    Err(git_failure(
        out.status,
        &String::from_utf8_lossy(&out.stderr),
    ))
}

/// Why git failed, in one line: its `fatal:` line (git follows it with
/// hints such as "Please make sure you have the correct access rights / and
/// the repository exists.", which alone say nothing), else its last line.
fn git_failure(status: std::process::ExitStatus, stderr: &str) -> String {
    let lines = || stderr.lines().map(str::trim).filter(|l| !l.is_empty());
    let why = lines()
        .find_map(|l| l.strip_prefix("fatal:"))
        .map(str::trim)
        .or_else(|| lines().next_back())
        .unwrap_or("");
    let code = status
        .code()
        .map_or_else(|| status.to_string(), |c| format!("exit code {c}"));
    if why.is_empty() {
        format!("git failed ({code})")
    } else {
        format!("{why} (git, {code})")
    }
}

/// `sha<TAB>ref` lines; a peeled `ref^{}` line (an annotated tag's commit)
/// wins over its tag's line.
fn parse_ls_remote(text: &str) -> BTreeMap<String, String> {
    let mut refs = BTreeMap::new();
    let mut peeled = Vec::new();
    for line in text.lines() {
        let Some((sha, r)) = line.split_once('\t') else {
            continue;
        };
        match r.strip_suffix("^{}") {
            Some(r) => peeled.push((r.to_string(), sha.to_string())),
            None => {
                refs.insert(r.to_string(), sha.to_string());
            }
        }
    }
    refs.extend(peeled);
    refs
}

/// `url` without the `user:password@` a URL may carry, for the log and
/// the status: a token in a remote URL is a secret.
fn without_credentials(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://")
        && let Some((userinfo, host)) = rest.split_once('@')
        && !userinfo.contains('/')
    {
        return format!("{scheme}://{host}");
    }
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    const C: &str = "cccccccccccccccccccccccccccccccccccccccc";

    fn known(shas: &[&str]) -> Known {
        Known {
            shas: shas.iter().map(|s| s.to_string()).collect(),
            succeeded: HashMap::new(),
        }
    }

    fn tags(list: &[(&str, &str)]) -> BTreeMap<String, String> {
        list.iter()
            .map(|(t, s)| (t.to_string(), s.to_string()))
            .collect()
    }

    #[test]
    fn reads_ls_remote_with_peeled_tags() {
        let text = format!(
            "{A}\trefs/heads/main\n{B}\trefs/tags/v1\n{C}\trefs/tags/v1^{{}}\n{B}\trefs/tags/light\n"
        );
        let refs = parse_ls_remote(&text);
        assert_eq!(refs["refs/heads/main"], A);
        assert_eq!(refs["refs/tags/v1"], C, "the commit, not the tag object");
        assert_eq!(refs["refs/tags/light"], B);
        assert_eq!(refs.len(), 3);
    }

    #[test]
    fn the_head_deploys_unless_deployed_tried_pending_or_queued() {
        let main = "refs/heads/main";
        let none = BTreeMap::new();
        let go = decide(main, Some(B), &none, None, &known(&[A]), None);
        assert_eq!(go, Some((main.to_string(), B.to_string())));
        // Deployed or tried (a failed run counts; so does a commit rolled
        // back from, whose record is kept), pending, or queued by the last
        // look: nothing.
        assert_eq!(decide(main, Some(A), &none, None, &known(&[A]), None), None);
        assert_eq!(
            decide(main, Some(B), &none, None, &known(&[A]), Some(B)),
            None
        );
        assert_eq!(decide(main, None, &none, None, &known(&[]), None), None);
    }

    #[test]
    fn only_new_tags_deploy_and_the_first_look_is_a_baseline() {
        let main = "refs/heads/main";
        let now = tags(&[("v1.9.0", A), ("v1.10.0", B), ("v1.2.0", C)]);
        let k = known(&[A]);
        assert_eq!(
            decide(main, Some(A), &now, None, &k, None),
            None,
            "baseline"
        );
        let before = tags(&[("v1.9.0", A)]);
        assert_eq!(
            decide(main, Some(A), &now, Some(&before), &k, None),
            Some(("refs/tags/v1.10.0".to_string(), B.to_string())),
            "the greatest version among the new ones"
        );
        assert_eq!(decide(main, Some(A), &now, Some(&now), &k, None), None);
        // The branch goes first.
        assert_eq!(
            decide(main, Some(C), &now, Some(&before), &k, None),
            Some((main.to_string(), C.to_string()))
        );
    }

    #[test]
    fn credentials_stay_out_of_the_status() {
        assert_eq!(
            without_credentials("https://x-access-token:ghs_1@github.com/acme/app.git"),
            "https://github.com/acme/app.git"
        );
        assert_eq!(
            without_credentials("git@github.com:acme/app.git"),
            "git@github.com:acme/app.git"
        );
        assert_eq!(
            without_credentials("file:///srv/app.git"),
            "file:///srv/app.git"
        );
    }

    #[test]
    fn a_git_failure_says_what_git_said_first() {
        use std::os::unix::process::ExitStatusExt;
        let status = std::process::ExitStatus::from_raw(128 << 8);
        let stderr = "fatal: '/srv/app.git' does not appear to be a git repository\n\
                      fatal: Could not read from remote repository.\n\n\
                      Please make sure you have the correct access rights\n\
                      and the repository exists.\n";
        assert_eq!(
            git_failure(status, stderr),
            "'/srv/app.git' does not appear to be a git repository (git, exit code 128)"
        );
        assert_eq!(
            git_failure(status, "error: something odd\n"),
            "error: something odd (git, exit code 128)"
        );
        assert_eq!(git_failure(status, ""), "git failed (exit code 128)");
    }
}
