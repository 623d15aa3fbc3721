//! GitHub: everything deployd knows of its webhooks.
//!
//! | what | where |
//! | --- | --- |
//! | signature | `X-Hub-Signature-256: sha256=<hex>`, the HMAC-SHA256 of the raw body |
//! | event | `X-GitHub-Event`: `push`, `ping`, `workflow_run`; any other is ignored |
//! | delivery id | `X-GitHub-Delivery` |
//! | push | `ref`, `before`, `after`, `deleted`, `forced`, `repository.full_name`, `pusher.name`, `head_commit.message`, `commits[].added/modified/removed` (at most 2048 commits) |
//! | CI | `workflow_run`: `action`, `workflow.name`, `workflow_run.{head_sha, head_branch, head_repository.full_name, status, conclusion, id, run_attempt}`, `repository.full_name`, `sender.login` |
//! | signed time | `repository.pushed_at` of a push (Unix seconds; ISO 8601 text elsewhere) |
//!
//! Gitea and Forgejo send the same push shape: [`read_push`] serves them too;
//! Gitea's `workflow_run` is GitHub's shape as well ([`read_workflow_run`]).

use std::borrow::Cow;
use std::time::SystemTime;

use hyper::HeaderMap;
use serde::Deserialize;

use super::Reading;
use super::common::{
    Body, BodyMac, Commit, Delivery, Event, EventError, Key, SignatureError, auth_header,
    content_type, files_of, first_header, header_str, hmac_hex, json_of, payload,
    verify_sha256_prefixed,
};
use crate::forge::ci::{CiRun, CiState};
use crate::forge::push::{Files, Push, zeros};

/// The delivery-id header.
pub(super) const DELIVERY_HEADERS: &[&str] = &["x-github-delivery"];

/// Checks `X-Hub-Signature-256`; the older SHA-1 `X-Hub-Signature` alone
/// does not count.
pub(super) fn verify(
    key: &Key,
    headers: &HeaderMap,
    body: &[u8],
    _now: SystemTime,
) -> Result<BodyMac, SignatureError> {
    verify_sha256_prefixed(auth_header(headers, "x-hub-signature-256")?, key, body)
}

/// The header GitHub would send for `body`.
pub(super) fn sign(key: &Key, body: &[u8]) -> Vec<(&'static str, String)> {
    vec![(
        "X-Hub-Signature-256",
        format!("sha256={}", hmac_hex(key, body)),
    )]
}

/// Reads a verified delivery. A push's `repository.pushed_at` is inside the
/// signed body, so it is the delivery's signed time: a captured push
/// replayed days later shows its age (docs/security.md, *What deployd
/// defends against*).
pub(super) fn parse(
    headers: &HeaderMap,
    body: &[u8],
    reading: &Reading<'_>,
) -> Result<Delivery, EventError> {
    let kind = content_type(headers)?;
    let id = first_header(headers, DELIVERY_HEADERS).map(str::to_string);
    let event =
        header_str(headers, "x-github-event").ok_or(EventError::MissingEvent("X-GitHub-Event"))?;
    let mut signed_at = None;
    let event = match event {
        "ping" => Event::Ping,
        "push" => {
            let (push, at) = read_push_at(kind, body, Shape::Github, reading)?;
            signed_at = at;
            Event::Push(vec![push])
        }
        "workflow_run" => Event::Ci(read_workflow_run(kind, body)?),
        other => Event::Other(other.to_string()),
    };
    Ok(Delivery {
        id,
        event,
        signed_at,
    })
}

/// A push as GitHub shapes it; Gitea and Forgejo send the same shape (and
/// `total_commits`). The commits' file lists are needed for path filters,
/// and GitHub sends them last, so the whole body is read.
#[derive(Deserialize)]
#[serde(bound(deserialize = "C: Deserialize<'de>"))]
struct GhPush<'a, C> {
    #[serde(rename = "ref", borrow)]
    git_ref: Cow<'a, str>,
    #[serde(borrow, default)]
    before: Cow<'a, str>,
    #[serde(borrow)]
    after: Cow<'a, str>,
    #[serde(default)]
    deleted: bool,
    #[serde(default)]
    forced: bool,
    #[serde(borrow, default)]
    repository: Option<Repo<'a>>,
    #[serde(borrow, default)]
    pusher: Option<Who<'a>>,
    #[serde(default = "Option::default")]
    commits: Option<Vec<C>>,
    #[serde(borrow, default)]
    head_commit: Option<Head<'a>>,
    /// Gitea 1.18 and later, and Forgejo: how many commits the push had;
    /// `commits` holds at most a configured number of them.
    #[serde(default)]
    total_commits: Option<u64>,
}

/// Whose shape: the two differ in how they cut the commit list short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Shape {
    /// GitHub: `commits` holds at most [`GITHUB_MAX_COMMITS`].
    Github,
    /// Gitea and Forgejo: `commits` holds some of `total_commits`.
    Gitea,
}

/// GitHub's documented cap on a push webhook's `commits` ("a maximum of
/// 2048 commits"; the 20-commit cap is the timeline's, not webhooks').
pub(super) const GITHUB_MAX_COMMITS: usize = 2048;

#[derive(Deserialize)]
struct Repo<'a> {
    #[serde(borrow)]
    full_name: Option<Cow<'a, str>>,
    /// When the push happened: Unix seconds in a push event, ISO 8601 text
    /// in GitHub's other events (and in Gitea's, which is not read).
    #[serde(default)]
    pushed_at: Option<Stamp>,
}

/// A push's `repository` as the push's `owner/name` (empty when there is
/// none) and its signed time.
fn name_and_time(repository: Option<Repo<'_>>) -> (String, Option<SystemTime>) {
    match repository {
        Some(r) => (
            r.full_name.map(Cow::into_owned).unwrap_or_default(),
            r.pushed_at.as_ref().and_then(Stamp::time),
        ),
        None => (String::new(), None),
    }
}

/// A time as GitHub writes it: Unix seconds, or ISO 8601 text.
#[derive(Deserialize)]
#[serde(untagged)]
enum Stamp {
    Secs(i64),
    Text(String),
    /// Anything else (null, a fraction) is no time, not a bad payload.
    Other(serde::de::IgnoredAny),
}

impl Stamp {
    fn time(&self) -> Option<SystemTime> {
        match self {
            Stamp::Secs(s) => {
                let s = u64::try_from(*s).ok()?;
                SystemTime::UNIX_EPOCH.checked_add(std::time::Duration::from_secs(s))
            }
            Stamp::Text(t) => humantime::parse_rfc3339_weak(t).ok(),
            Stamp::Other(_) => None,
        }
    }
}

#[derive(Deserialize)]
struct Who<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    login: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    username: Option<Cow<'a, str>>,
}

impl Who<'_> {
    /// GitHub's pusher has `name` (the login); Gitea's has `login` and
    /// `username` (both the login) and a `full_name` not wanted here.
    fn user(&self) -> String {
        self.login
            .as_ref()
            .or(self.username.as_ref())
            .or(self.name.as_ref())
            .map(|s| s.to_string())
            .unwrap_or_default()
    }
}

/// A GitHub-shaped push body (JSON, or a form's `payload`) as a [`Push`],
/// read as far as `reading` needs.
pub(super) fn read_push(
    kind: Body,
    body: &[u8],
    shape: Shape,
    reading: &Reading<'_>,
) -> Result<Push, EventError> {
    read_push_at(kind, body, shape, reading).map(|(push, _)| push)
}

/// A commit of a push read for its id and message only: its file lists
/// are skipped over, nothing of them kept.
#[derive(Deserialize)]
struct Head<'a> {
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    message: Option<Cow<'a, str>>,
}

/// What a push's commit is read for whatever else is: its id and message.
trait Headed {
    fn id(&self) -> Option<&str>;
    fn message(&self) -> Option<&str>;
}

impl Headed for Commit<'_> {
    fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }
    fn message(&self) -> Option<&str> {
        self.message.as_deref()
    }
}

/// A commit skipped over whole.
impl Headed for serde::de::IgnoredAny {
    fn id(&self) -> Option<&str> {
        None
    }
    fn message(&self) -> Option<&str> {
        None
    }
}

impl Headed for Head<'_> {
    fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }
    fn message(&self) -> Option<&str> {
        self.message.as_deref()
    }
}

/// [`read_push`], and the push's `repository.pushed_at` when there is one.
/// A push that cannot deploy (`reading.may_deploy`) is read no further than
/// its first fields ([`first_fields`]). Without `reading.files` the commits
/// are skipped or read as [`Head`]s: the body is still read to its end
/// (GitHub sends `head_commit` last), but no path is kept.
fn read_push_at(
    kind: Body,
    body: &[u8],
    shape: Shape,
    reading: &Reading<'_>,
) -> Result<(Push, Option<SystemTime>), EventError> {
    let json = json_of(kind, body)?;
    if let Some(may_deploy) = reading.may_deploy
        && let Some((push, at)) = first_fields(&json, shape == Shape::Github || reading.repository)
        && !may_deploy(&push)
    {
        return Ok((push, at));
    }
    if !reading.files {
        // The commits skipped whole; read for their ids and messages only
        // when there is no head_commit to take the message from.
        let p: GhPush<serde::de::IgnoredAny> = payload(&json)?;
        let (mut push, at) = if p.head_commit.is_none() && p.commits.is_some() {
            let p: GhPush<Head> = payload(&json)?;
            let (push, at, _, _) = fields(p);
            (push, at)
        } else {
            let (push, at, _, _) = fields(p);
            (push, at)
        };
        push.files = Files::Unknown("not read: the project has no path filters".into());
        return Ok((push, at));
    }
    let p: GhPush<Commit> = payload(&json)?;
    let (mut push, at, commits, total) = fields(p);
    let listed = commits.len();
    let cut = match shape {
        Shape::Github => (listed >= GITHUB_MAX_COMMITS).then(|| {
            format!(
                "GitHub lists at most {GITHUB_MAX_COMMITS} commits of a push, and listed {listed}"
            )
        }),
        Shape::Gitea => match total {
            Some(total) if total as usize > listed => Some(format!(
                "the forge listed {listed} of the push's {total} commits \
                 (Gitea's and Forgejo's webhook commit limit)"
            )),
            Some(_) => None,
            None => Some(
                "no total_commits in the payload (Gitea before 1.18), \
                 so the commit list may be cut short"
                    .into(),
            ),
        },
    };
    push.files = files_of(&push, &commits, cut);
    Ok((push, at))
}

/// A push's `ref`, `before`, `after` and, with `repository`, its
/// `repository` (GitHub's carries the signed time, `pushed_at`), read from
/// the start of `json` and no further: GitHub sends them first, ahead of
/// the commits that are most of a body (Gitea sends its `repository`
/// last). `None` when the body does not hold them all or is not what
/// serde_json reads as an object: the caller then reads it whole, with the
/// whole reading's errors. What is read is checked by serde_json; the rest
/// of a body whose signature checked out is not looked at.
fn first_fields(json: &[u8], repository: bool) -> Option<(Push, Option<SystemTime>)> {
    use serde::de::{self, Deserializer as _, IgnoredAny, MapAccess, Visitor};

    #[derive(Deserialize)]
    #[serde(field_identifier, rename_all = "lowercase")]
    enum Field {
        Ref,
        Before,
        After,
        Repository,
        #[serde(other)]
        Other,
    }

    #[derive(Default)]
    struct First<'a> {
        git_ref: Option<Cow<'a, str>>,
        before: Option<Cow<'a, str>>,
        after: Option<Cow<'a, str>>,
        repository: Option<Option<Repo<'a>>>,
    }

    struct Walk<'p, 'a> {
        first: &'p mut First<'a>,
        repository: bool,
    }

    impl First<'_> {
        fn complete(&self, repository: bool) -> bool {
            self.git_ref.is_some()
                && self.before.is_some()
                && self.after.is_some()
                && (!repository || self.repository.is_some())
        }
    }

    /// A field seen twice is left to the whole reading to refuse.
    fn once<'a, A: MapAccess<'a>, T: Deserialize<'a>>(
        map: &mut A,
        slot: &mut Option<T>,
    ) -> Result<(), A::Error> {
        if slot.is_some() {
            return Err(de::Error::custom("a field twice"));
        }
        *slot = Some(map.next_value()?);
        Ok(())
    }

    impl<'a> Visitor<'a> for Walk<'_, 'a> {
        type Value = ();

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a push payload (a JSON object)")
        }

        fn visit_map<A: MapAccess<'a>>(self, mut map: A) -> Result<(), A::Error> {
            let f = self.first;
            while let Some(key) = map.next_key::<Field>()? {
                match key {
                    Field::Ref => once(&mut map, &mut f.git_ref)?,
                    Field::Before => once(&mut map, &mut f.before)?,
                    Field::After => once(&mut map, &mut f.after)?,
                    Field::Repository => once(&mut map, &mut f.repository)?,
                    Field::Other => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                if f.complete(self.repository) {
                    // Fails on purpose: serde_json stops reading here.
                    return Err(de::Error::custom("every field read"));
                }
            }
            Ok(())
        }
    }

    let mut first = First::default();
    let mut de = serde_json::Deserializer::from_slice(json);
    // Its error is either the stop above or one the whole reading reports.
    let _ = de.deserialize_map(Walk {
        first: &mut first,
        repository,
    });
    if !first.complete(repository) {
        return None;
    }
    let after = first.after?.into_owned();
    let (repository, pushed_at) = name_and_time(first.repository.flatten());
    let push = Push {
        deleted: zeros(&after),
        git_ref: first.git_ref?.into_owned(),
        before: first.before?.into_owned(),
        after,
        repository,
        files: Files::Unknown("not read: the push cannot deploy".into()),
        ..Push::default()
    };
    Some((push, pushed_at))
}

/// The push's own fields, its signed time, its commits and the forge's
/// count of them.
fn fields<C: Headed>(p: GhPush<'_, C>) -> (Push, Option<SystemTime>, Vec<C>, Option<u64>) {
    let after = p.after.into_owned();
    let commits = p.commits.unwrap_or_default();
    // Gitea sends `head_commit` too; the commit with the pushed id is the
    // same, for a forge that does not.
    let message = match &p.head_commit {
        Some(head) => head.message(),
        None => commits
            .iter()
            .find(|c| c.id() == Some(&after))
            .and_then(Headed::message),
    }
    .unwrap_or("")
    .to_string();
    let (repository, pushed_at) = name_and_time(p.repository);
    let push = Push {
        deleted: p.deleted || zeros(&after),
        forced: p.forced,
        git_ref: p.git_ref.into_owned(),
        before: p.before.into_owned(),
        after,
        repository,
        pusher: p.pusher.map(|w| w.user()).unwrap_or_default(),
        message,
        ..Push::default()
    };
    (push, pushed_at, commits, p.total_commits)
}

/// One commit status request per commit, without its headers:
/// `POST /repos/{owner}/{repo}/statuses/{sha}` with `state` (`pending`,
/// `success`, `failure`, `error`), `description`, `context` and
/// `target_url`. Gitea and Forgejo serve the same call.
pub(super) fn commit_statuses(
    api_url: &str,
    s: &super::StatusReport,
    description: &str,
) -> Vec<crate::http_client::Outgoing> {
    use super::CommitState::*;
    let state = match s.state {
        Pending => "pending",
        Success => "success",
        Failure => "failure",
        Error => "error",
    };
    s.shas
        .iter()
        .map(|sha| {
            let mut body = serde_json::json!({
                "state": state,
                "description": description,
                "context": s.context,
            });
            if let Some(u) = &s.target_url {
                body["target_url"] = serde_json::json!(u);
            }
            crate::http_client::Outgoing::json(
                &format!("{api_url}/repos/{}/statuses/{sha}", s.repository),
                &body,
            )
        })
        .collect()
}

/// What to check when GitHub refuses a status.
const REPORT_HINT: &str = "check the report token (fine-grained: \"Commit statuses: write\", \
     or \"Deployments: write\" with environment), api_url, and the project's repository";

/// The headers of every GitHub API call.
fn api(req: crate::http_client::Outgoing, token: &str) -> crate::http_client::Outgoing {
    req.header("Authorization", format!("Bearer {token}"))
        .header("Accept", "application/vnd.github+json")
        .header("X-GitHub-Api-Version", "2022-11-28")
}

/// GitHub: a commit status (`POST /repos/{owner}/{repo}/statuses/{sha}`:
/// `state` `pending` → `success`/`failure`/`error`, `target_url`,
/// `description`, `context`), or with `environment`, a deployment
/// (`POST /repos/{o}/{r}/deployments` with the sha, `auto_merge: false`,
/// `required_contexts: []`, the environment) and its statuses
/// (`in_progress` → `success`/`failure`/`error`, `environment_url`). The
/// deployment's id is kept in `store` between the run's start and end.
pub(super) fn report(
    api_url: &str,
    token: &str,
    s: &super::StatusReport,
    store: &std::path::Path,
) -> crate::http_client::Attempt {
    use super::CommitState::*;
    use crate::http_client::{Attempt, Outgoing};
    let description: String = s.description.chars().take(140).collect();
    let Some(environment) = &s.environment else {
        let requests = commit_statuses(api_url, s, &description)
            .into_iter()
            .map(|r| api(r, token))
            .collect();
        return super::send_all(requests, REPORT_HINT);
    };
    let state = match s.state {
        Pending => "in_progress",
        Success => "success",
        Failure => "failure",
        Error => "error",
    };
    // The deployment is of the commit that goes out: the last of `shas`.
    let Some(sha) = s.shas.last() else {
        return Attempt::Delivered("no commit".into());
    };
    let kept = store.join(format!("github-deployment-{}-{}", s.project, s.run_id));
    let id = match std::fs::read_to_string(&kept)
        .ok()
        .and_then(|t| t.trim().parse::<u64>().ok())
    {
        Some(id) => id,
        None => {
            let body = serde_json::json!({
                "ref": sha,
                "environment": environment,
                "auto_merge": false,
                "required_contexts": [],
                "description": description,
            });
            let req = api(
                Outgoing::json(
                    &format!("{api_url}/repos/{}/deployments", s.repository),
                    &body,
                ),
                token,
            );
            let resp = match crate::http_client::send(&req) {
                Ok(r) => r,
                Err(error) => return Attempt::Retry { error, after: None },
            };
            let attempt = Attempt::from_response(&resp, REPORT_HINT);
            if !matches!(attempt, Attempt::Delivered(_)) {
                return attempt;
            }
            let Some(id) = serde_json::from_str::<serde_json::Value>(&resp.body)
                .ok()
                .and_then(|v| v["id"].as_u64())
            else {
                return Attempt::Refused {
                    error: format!("HTTP {}: no deployment id in the answer", resp.status),
                    hint: REPORT_HINT.into(),
                };
            };
            let _ = crate::fsutil::write_atomic(&kept, id.to_string().as_bytes());
            id
        }
    };
    let mut body = serde_json::json!({
        "state": state,
        "description": description,
        "environment": environment,
    });
    if let Some(u) = &s.target_url {
        body["environment_url"] = serde_json::json!(u);
    }
    let req = api(
        Outgoing::json(
            &format!("{api_url}/repos/{}/deployments/{id}/statuses", s.repository),
            &body,
        ),
        token,
    );
    let attempt = super::send_all(vec![req], REPORT_HINT);
    if s.state != Pending && matches!(attempt, Attempt::Delivered(_)) {
        let _ = std::fs::remove_file(&kept);
    }
    attempt
}

#[derive(Deserialize)]
struct GhWorkflowRunEvent<'a> {
    #[serde(borrow, default)]
    action: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    workflow: Option<GhWorkflow<'a>>,
    #[serde(borrow)]
    workflow_run: GhWorkflowRun<'a>,
    #[serde(borrow, default)]
    repository: Option<Repo<'a>>,
    #[serde(borrow, default)]
    sender: Option<Who<'a>>,
}

#[derive(Deserialize)]
struct GhWorkflow<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct GhWorkflowRun<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(default)]
    id: Option<u64>,
    #[serde(default)]
    run_attempt: Option<u64>,
    #[serde(borrow)]
    head_sha: Cow<'a, str>,
    #[serde(borrow, default)]
    head_branch: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    head_repository: Option<Repo<'a>>,
    #[serde(borrow, default)]
    status: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    conclusion: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    actor: Option<Who<'a>>,
}

/// What a finished run's `conclusion` means for the gate: `success`,
/// `skipped` and `neutral` pass (a workflow whose jobs were all skipped by
/// their `if:` did nothing wrong); every other final word fails.
pub(super) fn conclusion_state(conclusion: &str) -> CiState {
    match conclusion {
        "success" | "skipped" | "neutral" => CiState::Passed,
        _ => CiState::Failed,
    }
}

/// A `workflow_run` event, GitHub's shape (Gitea's too): `requested` and
/// `in_progress` are a run still going; `completed` carries the conclusion.
/// The workflow's name is `workflow.name`, else `workflow_run.name` (the
/// run's name, which is the workflow's unless `run-name` changed it).
pub(super) fn read_workflow_run(kind: Body, body: &[u8]) -> Result<CiRun, EventError> {
    let json = json_of(kind, body)?;
    let e: GhWorkflowRunEvent = payload(&json)?;
    let r = e.workflow_run;
    let completed =
        e.action.as_deref() == Some("completed") || r.status.as_deref() == Some("completed");
    let conclusion = r.conclusion.as_deref().unwrap_or_default();
    let (state, word) = if completed {
        (conclusion_state(conclusion), conclusion.to_string())
    } else {
        let word = e
            .action
            .as_deref()
            .or(r.status.as_deref())
            .unwrap_or("running");
        (CiState::Running, word.to_string())
    };
    let name = |n: Option<Cow<'_, str>>| n.map(Cow::into_owned).filter(|n| !n.is_empty());
    Ok(CiRun {
        workflow: name(e.workflow.and_then(|w| w.name))
            .or_else(|| name(r.name))
            .unwrap_or_default(),
        sha: r.head_sha.into_owned(),
        branch: r.head_branch.map(Cow::into_owned).unwrap_or_default(),
        repository: e
            .repository
            .and_then(|r| r.full_name)
            .map(Cow::into_owned)
            .unwrap_or_default(),
        head_repository: r
            .head_repository
            .and_then(|r| r.full_name)
            .map(Cow::into_owned)
            .unwrap_or_default(),
        state,
        conclusion: word,
        run: format!("{}#{}", r.id.unwrap_or(0), r.run_attempt.unwrap_or(1)),
        actor: r.actor.or(e.sender).map(|w| w.user()).unwrap_or_default(),
    })
}

/// What to check when GitHub refuses to list a commit's workflow runs.
const RUNS_HINT: &str = "check the report token (fine-grained: \"Actions: read\"), api_url, \
     and the project's repository";

/// What to check when GitHub refuses to list or redeliver a hook's deliveries.
const HOOK_HINT: &str = "check hook_id and the report token (fine-grained: \"Webhooks: \
     read and write\"; classic: admin:repo_hook)";

/// `GET /repos/{owner}/{repo}/actions/runs?head_sha={sha}`, without its
/// headers: the workflow runs of one commit, newest first. Gitea (1.24 and
/// later) serves the same call, in the same shape.
pub(super) fn workflow_runs_request(
    api_url: &str,
    repository: &str,
    sha: &str,
) -> crate::http_client::Outgoing {
    crate::http_client::Outgoing::bare(
        "GET",
        &format!("{api_url}/repos/{repository}/actions/runs?head_sha={sha}&per_page=100"),
    )
}

#[derive(Deserialize)]
struct GhRunList {
    #[serde(default)]
    workflow_runs: Vec<GhListedRun>,
}

/// The fields of a listed workflow run the gate needs, owned: the list is
/// read from a `String` the caller keeps no longer.
#[derive(Deserialize)]
struct GhListedRun {
    #[serde(default)]
    id: Option<u64>,
    #[serde(default)]
    run_attempt: Option<u64>,
    #[serde(default)]
    name: Option<String>,
    head_sha: String,
    #[serde(default)]
    head_branch: Option<String>,
    #[serde(default)]
    head_repository: Option<GhListedRepo>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    conclusion: Option<String>,
    #[serde(default)]
    actor: Option<GhListedUser>,
}

#[derive(Deserialize)]
struct GhListedRepo {
    #[serde(default)]
    full_name: Option<String>,
}

#[derive(Deserialize)]
struct GhListedUser {
    #[serde(default)]
    login: Option<String>,
}

/// Reads a list of workflow runs (`{"workflow_runs": [...]}`) of
/// `repository` into CI results, oldest first (the API lists newest
/// first; the gate keeps the last result of each workflow it is told).
/// A run is the same run a `workflow_run` event names (`id#attempt`), so a
/// later event of it is a duplicate.
pub(super) fn read_workflow_runs(body: &str, repository: &str) -> Result<Vec<CiRun>, String> {
    let list: GhRunList = serde_json::from_str(body)
        .map_err(|e| format!("the list of workflow runs does not read: {e}"))?;
    let mut runs: Vec<CiRun> = list
        .workflow_runs
        .into_iter()
        .map(|r| {
            let completed = r.status.as_deref() == Some("completed");
            let (state, conclusion) = if completed {
                let c = r.conclusion.unwrap_or_default();
                (conclusion_state(&c), c)
            } else {
                (
                    CiState::Running,
                    r.status.unwrap_or_else(|| "running".into()),
                )
            };
            CiRun {
                workflow: r.name.unwrap_or_default(),
                sha: r.head_sha,
                branch: r.head_branch.unwrap_or_default(),
                repository: repository.to_string(),
                head_repository: r
                    .head_repository
                    .and_then(|h| h.full_name)
                    .unwrap_or_default(),
                state,
                conclusion,
                run: format!("{}#{}", r.id.unwrap_or(0), r.run_attempt.unwrap_or(1)),
                actor: r.actor.and_then(|a| a.login).unwrap_or_default(),
            }
        })
        .collect();
    runs.reverse();
    Ok(runs)
}

/// The workflow runs GitHub holds for commit `sha` (blocking).
pub(super) fn ci_of_commit(
    api_url: &str,
    token: &str,
    repository: &str,
    sha: &str,
) -> Result<Vec<CiRun>, String> {
    let req = api(workflow_runs_request(api_url, repository, sha), token);
    let body = super::fetch(&req, RUNS_HINT)?;
    read_workflow_runs(&body, repository)
}

/// One delivery of a repository webhook, as
/// `GET /repos/{owner}/{repo}/hooks/{hook_id}/deliveries` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct HookDelivery {
    /// This delivery's id: what a redelivery is asked for.
    pub id: u64,
    /// The event's id, shared by a delivery and its redeliveries (the
    /// `X-GitHub-Delivery` deployd dedupes on).
    #[serde(default)]
    pub guid: String,
    /// When it was delivered (RFC 3339).
    #[serde(default)]
    pub delivered_at: String,
    /// Whether it is itself a redelivery.
    #[serde(default)]
    pub redelivery: bool,
    /// The HTTP status deployd (or whatever stood in its place) answered;
    /// none when there was no answer.
    #[serde(default)]
    pub status_code: Option<u16>,
    /// The event (`push`, `workflow_run`…).
    #[serde(default)]
    pub event: String,
}

impl HookDelivery {
    /// Answered 2xx.
    pub fn delivered(&self) -> bool {
        self.status_code.is_some_and(|c| (200..300).contains(&c))
    }
}

/// The 100 most recent deliveries of repository webhook `hook_id`
/// (blocking), newest first.
pub fn hook_deliveries(
    api_url: &str,
    token: &str,
    repository: &str,
    hook_id: u64,
) -> Result<Vec<HookDelivery>, String> {
    let req = api(
        crate::http_client::Outgoing::bare(
            "GET",
            &format!("{api_url}/repos/{repository}/hooks/{hook_id}/deliveries?per_page=100"),
        ),
        token,
    );
    let body = super::fetch(&req, HOOK_HINT)?;
    serde_json::from_str(&body).map_err(|e| format!("the list of deliveries does not read: {e}"))
}

/// Asks GitHub to deliver `delivery` again (blocking):
/// `POST /repos/{owner}/{repo}/hooks/{hook_id}/deliveries/{delivery}/attempts`,
/// answered 202.
pub fn redeliver(
    api_url: &str,
    token: &str,
    repository: &str,
    hook_id: u64,
    delivery: u64,
) -> Result<(), String> {
    let req = api(
        crate::http_client::Outgoing::bare(
            "POST",
            &format!("{api_url}/repos/{repository}/hooks/{hook_id}/deliveries/{delivery}/attempts"),
        ),
        token,
    );
    super::fetch(&req, HOOK_HINT).map(|_| ())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Reads as for a project with path filters: everything.
    fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Delivery, EventError> {
        super::parse(headers, body, &Reading::ALL)
    }

    /// As for a project without path filters.
    const NO_FILES: Reading<'static> = Reading {
        files: false,
        ..Reading::ALL
    };

    #[test]
    fn without_path_filters_the_same_push_is_read_but_not_its_paths() {
        let github = format!(
            r#"{{"ref":"refs/heads/main","before":"{SHA}","after":"{SHA}","forced":true,
               "repository":{{"full_name":"o/r","pushed_at":1700000000}},"pusher":{{"name":"me"}},
               "commits":[{{"id":"{SHA}","message":"Fix it\n\nbody","added":["a"],"modified":[],"removed":[]}}],
               "head_commit":{{"id":"{SHA}","message":"Fix it\n\nbody","added":["a"],"modified":[],"removed":[]}}}}"#
        );
        // Gitea before head_commit: the message is the pushed commit's.
        let gitea = github.replace(r#""head_commit":"#, r#""other":"#);
        for (body, shape) in [(&github, Shape::Github), (&gitea, Shape::Gitea)] {
            let (all, at) =
                read_push_at(Body::Json, body.as_bytes(), shape, &Reading::ALL).unwrap();
            let (some, at2) = read_push_at(Body::Json, body.as_bytes(), shape, &NO_FILES).unwrap();
            assert_eq!(at, at2);
            assert_eq!(some.message, "Fix it\n\nbody");
            assert_eq!(
                Push {
                    files: Files::default(),
                    ..some.clone()
                },
                Push {
                    files: Files::default(),
                    ..all
                }
            );
            assert!(matches!(&some.files, Files::Unknown(w) if w.contains("no path filters")));
        }
    }

    #[test]
    fn a_push_that_cannot_deploy_is_read_no_further_than_its_first_fields() {
        let head = format!(
            r#"{{"ref":"refs/heads/feat","before":"{SHA}","after":"{SHA}",
               "repository":{{"full_name":"o/r","pushed_at":1700000000}},"#
        );
        // The rest is not read: a body broken after the first fields is
        // still answered, when the push cannot deploy.
        let broken = format!("{head} \"commits\": [ {{ not json");
        let asked = std::cell::RefCell::new(Vec::new());
        let judge = |deploys: bool| {
            let asked = &asked;
            move |p: &Push| {
                asked
                    .borrow_mut()
                    .push((p.git_ref.clone(), p.repository.clone()));
                deploys
            }
        };
        let no = judge(false);
        let reading = Reading {
            may_deploy: Some(&no),
            ..NO_FILES
        };
        let (push, at) =
            read_push_at(Body::Json, broken.as_bytes(), Shape::Github, &reading).unwrap();
        assert_eq!(push.git_ref, "refs/heads/feat");
        assert_eq!((push.before.as_str(), push.after.as_str()), (SHA, SHA));
        assert_eq!(push.repository, "o/r");
        assert_eq!(
            at,
            Some(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000))
        );
        assert_eq!(
            asked.take(),
            [("refs/heads/feat".to_string(), "o/r".to_string())]
        );
        // A push that may deploy is read whole, with the whole reading's errors.
        let yes = judge(true);
        let reading = Reading {
            may_deploy: Some(&yes),
            ..NO_FILES
        };
        let err = read_push_at(Body::Json, broken.as_bytes(), Shape::Github, &reading).unwrap_err();
        assert!(matches!(err, EventError::Payload(_)), "{err:?}");
        let whole = format!(
            r#"{head} "pusher":{{"name":"me"}}, "head_commit":{{"id":"{SHA}","message":"Fix it"}}}}"#
        );
        let (push, _) =
            read_push_at(Body::Json, whole.as_bytes(), Shape::Github, &reading).unwrap();
        assert_eq!(
            (push.pusher.as_str(), push.message.as_str()),
            ("me", "Fix it")
        );
        // Fields missing or out of GitHub's order: read whole, as without a judge.
        for body in [
            format!(
                r#"{{"commits":[],"ref":"refs/heads/feat","after":"{SHA}","before":"{SHA}","repository":null}}"#
            ),
            format!(
                r#"{{"ref":"refs/heads/feat","after":"{SHA}","repository":{{"full_name":"o/r"}}}}"#
            ),
        ] {
            let seen = read_push_at(
                Body::Json,
                body.as_bytes(),
                Shape::Github,
                &Reading {
                    may_deploy: Some(&no),
                    ..NO_FILES
                },
            );
            let whole = read_push_at(Body::Json, body.as_bytes(), Shape::Github, &NO_FILES);
            assert_eq!(
                seen.as_ref()
                    .map(|(p, _)| (&p.git_ref, &p.after, &p.repository)),
                whole
                    .as_ref()
                    .map(|(p, _)| (&p.git_ref, &p.after, &p.repository)),
                "{body}"
            );
        }
        // Gitea sends its repository last: it is waited for only when the
        // project names one.
        let gitea = format!(
            r#"{{"ref":"refs/heads/feat","before":"{SHA}","after":"{SHA}","commits": [ not json"#
        );
        let without = Reading {
            may_deploy: Some(&no),
            repository: false,
            ..NO_FILES
        };
        let (push, at) =
            read_push_at(Body::Json, gitea.as_bytes(), Shape::Gitea, &without).unwrap();
        assert_eq!(
            (push.git_ref.as_str(), push.repository.as_str(), at),
            ("refs/heads/feat", "", None)
        );
        let with = Reading {
            may_deploy: Some(&no),
            ..NO_FILES
        };
        assert!(read_push_at(Body::Json, gitea.as_bytes(), Shape::Gitea, &with).is_err());
        // GitHub's repository carries the signed time: always waited for.
        assert!(read_push_at(Body::Json, gitea.as_bytes(), Shape::Github, &without).is_err());
    }
    pub(crate) use crate::forge::common::tests::SHA;
    use crate::forge::common::tests::{headers, passed_run};
    use crate::forge::push::Files;
    use hyper::header::HeaderValue;

    /// GitHub's published test vector for X-Hub-Signature-256.
    const GH_SECRET: &str = "It's a Secret to Everybody";
    const GH_BODY: &str = "Hello, World!";
    const GH_SIG: &str = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    fn check(key: &Key, h: &HeaderMap, body: &[u8]) -> Result<(), SignatureError> {
        verify(key, h, body, SystemTime::now()).map(|_| ())
    }

    #[test]
    fn github_published_vector() {
        let key = Key::new(GH_SECRET.as_bytes());
        let (name, value) = sign(&key, GH_BODY.as_bytes()).remove(0);
        assert_eq!(name, "X-Hub-Signature-256");
        assert_eq!(value, GH_SIG);
        let h = headers(&[("x-hub-signature-256", GH_SIG)]);
        assert_eq!(check(&key, &h, GH_BODY.as_bytes()), Ok(()));
        // Upper-case hex is the same signature.
        let h = headers(&[("x-hub-signature-256", &GH_SIG.replace("ea0e", "EA0E"))]);
        assert_eq!(check(&key, &h, GH_BODY.as_bytes()), Ok(()));
    }

    #[test]
    fn github_rejections() {
        let key = Key::new(GH_SECRET.as_bytes());
        let body = GH_BODY.as_bytes();
        let check = |h: &HeaderMap| check(&key, h, body);
        assert_eq!(check(&HeaderMap::new()), Err(SignatureError::Missing));
        for bad in [
            "",
            "sha256=",
            "sha1=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
            "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e1",
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17aa",
            "sha256=z57107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
            "sha256=💥",
        ] {
            let mut h = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_str(bad) {
                h.insert("x-hub-signature-256", v);
                assert_eq!(check(&h), Err(SignatureError::Malformed), "{bad:?}");
            }
        }
        let mut h = HeaderMap::new();
        h.insert(
            "x-hub-signature-256",
            HeaderValue::from_bytes(b"sha256=\xff\xfe").unwrap(),
        );
        assert_eq!(check(&h), Err(SignatureError::Malformed));
        // Right format, wrong secret or changed body.
        let other = Key::new(b"another secret");
        let h = headers(&[("x-hub-signature-256", GH_SIG)]);
        assert_eq!(
            verify(&other, &h, body, SystemTime::now()),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(&key, &h, b"Hello, World?", SystemTime::now()),
            Err(SignatureError::Mismatch)
        );
        // The old SHA-1 header alone does not count.
        let h = headers(&[("x-hub-signature", GH_SIG)]);
        assert_eq!(check(&h), Err(SignatureError::Missing));
    }

    /// A GitHub push in the documented order (fields first, commits last).
    pub(crate) fn gh_push(git_ref: &str, after: &str, repo: &str) -> String {
        serde_json::json!({
            "ref": git_ref, "before": "1111111111111111111111111111111111111111", "after": after,
            "created": false, "deleted": zeros(after),
            "repository": {"full_name": repo, "name": "x", "owner": {"login": "acme"}},
            "pusher": {"name": "octocat", "email": "o@example.com"},
            "commits": [{"id": after, "message": "a \"quoted\" message\n"}],
        })
        .to_string()
    }

    /// Parses a GitHub delivery of `event` with content type `ctype`.
    pub(crate) fn gh(event: &str, ctype: &str, body: &[u8]) -> Result<Delivery, EventError> {
        parse(
            &headers(&[
                ("x-github-event", event),
                ("x-github-delivery", "d-1"),
                ("content-type", ctype),
            ]),
            body,
        )
    }

    #[test]
    fn json_and_form_bodies_parse_alike() {
        let json = gh_push("refs/heads/main", SHA, "acme/app");
        let a = gh("push", "application/json", json.as_bytes()).unwrap();
        let form: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("payload", &json)
            .finish();
        let b = gh("push", "application/x-www-form-urlencoded", form.as_bytes()).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.id.as_deref(), Some("d-1"));
        let Event::Push(mut p) = a.event else {
            panic!()
        };
        let p = p.remove(0);
        assert_eq!(p.git_ref, "refs/heads/main");
        assert_eq!(p.after, SHA);
        assert_eq!(p.repository, "acme/app");
        assert_eq!(p.pusher, "octocat");
        assert!(!p.deleted);
        // Charset parameters and case do not matter.
        assert!(gh("push", "Application/JSON; charset=utf-8", json.as_bytes()).is_ok());
    }

    /// octokit/webhooks' `push` example, trimmed to what matters: a forced
    /// push of two commits, one adding, modifying and removing files.
    pub(crate) fn octokit_push(forced: bool, before: &str) -> String {
        serde_json::json!({
            "ref": "refs/heads/main", "before": before, "after": SHA,
            "repository": {"id": 1, "full_name": "acme/app"},
            "pusher": {"name": "octocat", "email": "o@example.com"},
            "sender": {"login": "octocat"},
            "created": false, "deleted": false, "forced": forced,
            "base_ref": null, "compare": "https://github.com/acme/app/compare/a...b",
            "commits": [
                {"id": "1".repeat(40), "distinct": true, "message": "api: add route",
                 "added": ["api/new.rs"], "removed": [], "modified": ["api/lib.rs"]},
                {"id": SHA, "distinct": true, "message": "Drop the old page\n\nLong story.",
                 "added": [], "removed": ["docs/old.md"], "modified": []},
            ],
            "head_commit": {"id": SHA, "message": "Drop the old page\n\nLong story.",
                 "added": [], "removed": ["docs/old.md"], "modified": []},
        })
        .to_string()
    }

    #[test]
    fn what_a_github_push_says() {
        let one = |body: &str| {
            let d = gh("push", "application/json", body.as_bytes()).unwrap();
            let Event::Push(mut p) = d.event else {
                panic!()
            };
            p.remove(0)
        };
        let p = one(&octokit_push(false, &"2".repeat(40)));
        assert!(!p.forced);
        assert_eq!(p.message, "Drop the old page\n\nLong story.");
        assert_eq!(p.title(), "Drop the old page");
        // Added, modified and removed files all count.
        assert_eq!(
            p.files,
            Files::Listed(vec![
                "api/lib.rs".into(),
                "api/new.rs".into(),
                "docs/old.md".into()
            ])
        );
        let forced = one(&octokit_push(true, &"2".repeat(40)));
        assert!(forced.forced);
        assert!(matches!(&forced.files, Files::Unknown(w) if w.contains("force push")));
        let new_branch = one(&octokit_push(false, &"0".repeat(40)));
        assert!(matches!(&new_branch.files, Files::Unknown(w) if w.contains("new branch")));
        // At GitHub's cap the list may be cut short.
        let mut many: serde_json::Value =
            serde_json::from_str(&octokit_push(false, &"2".repeat(40))).unwrap();
        let c = many["commits"][0].clone();
        many["commits"] = vec![c; GITHUB_MAX_COMMITS].into();
        let capped = one(&many.to_string());
        assert!(matches!(&capped.files, Files::Unknown(w) if w.contains("2048")));
        // A commit without its lists: unknown, not "nothing changed".
        let mut bare: serde_json::Value =
            serde_json::from_str(&octokit_push(false, &"2".repeat(40))).unwrap();
        bare["commits"][0].as_object_mut().unwrap().remove("added");
        assert!(matches!(one(&bare.to_string()).files, Files::Unknown(_)));
        let twice = r#"{"ref":"refs/heads/a","ref":"refs/heads/b","after":"1"}"#;
        assert!(matches!(
            gh("push", "application/json", twice.as_bytes()),
            Err(EventError::Payload(e)) if e.contains("duplicate field `ref`")
        ));
    }

    #[test]
    fn pushed_at_is_the_signed_time() {
        // A push event writes it in Unix seconds (as in GitHub's and
        // octokit's push examples); other events in ISO 8601. It is inside
        // `repository`, so the early stop still reads it.
        let at = |repo: serde_json::Value| {
            let body = serde_json::json!({
                "ref": "refs/heads/main", "before": SHA, "after": SHA,
                "repository": repo, "pusher": {"name": "octocat"}, "deleted": false,
                "commits": [],
            });
            gh("push", "application/json", body.to_string().as_bytes())
                .unwrap()
                .signed_at
        };
        let secs = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_763_600_000);
        assert_eq!(
            at(serde_json::json!({"full_name": "a/b", "pushed_at": 1_763_600_000})),
            Some(secs)
        );
        assert_eq!(
            at(serde_json::json!({"full_name": "a/b", "pushed_at": "2025-11-20T00:53:20Z"})),
            Some(secs)
        );
        for none in [
            serde_json::json!({"full_name": "a/b"}),
            serde_json::json!({"full_name": "a/b", "pushed_at": null}),
            serde_json::json!({"full_name": "a/b", "pushed_at": 1.5}),
            serde_json::json!({"full_name": "a/b", "pushed_at": -5}),
        ] {
            assert_eq!(at(none.clone()), None, "{none}");
        }
        // Only a push carries one.
        assert_eq!(
            gh("ping", "application/json", b"{}").unwrap().signed_at,
            None
        );
        // The benchmark's push, a full GitHub payload, stops early and
        // still has it.
        let full = include_bytes!("../../benches/push-8k.json");
        let d = gh("push", "application/json", full).unwrap();
        assert_eq!(d.signed_at, Some(secs));
    }

    #[test]
    fn malformed_input() {
        assert!(matches!(
            gh("push", "text/plain", b"{}"),
            Err(EventError::ContentType(_))
        ));
        assert!(matches!(
            gh("push", "", b"{}"),
            Err(EventError::ContentType(_))
        ));
        assert!(matches!(
            gh("push", "application/json", b"{\"ref\": 1}"),
            Err(EventError::Payload(_))
        ));
        assert!(matches!(
            gh("push", "application/json", b"\xff\xfe"),
            Err(EventError::Payload(_))
        ));
        assert!(matches!(
            gh("push", "application/x-www-form-urlencoded", b"other=1"),
            Err(EventError::Payload(_))
        ));
        let no_event = parse(&headers(&[("content-type", "application/json")]), b"{}");
        assert_eq!(no_event, Err(EventError::MissingEvent("X-GitHub-Event")));
        // Ping and other events need no particular payload.
        assert_eq!(
            gh("ping", "application/json", b"{}").unwrap().event,
            Event::Ping
        );
        assert_eq!(
            gh("issues", "application/json", b"{}").unwrap().event,
            Event::Other("issues".into())
        );
    }

    /// A `workflow_run` delivery in the shape of octokit's
    /// `workflow_run/completed.payload.json` example (the fields deployd
    /// reads, with their neighbours): `workflow_run.name` empty, the
    /// workflow's name under `workflow`.
    pub(crate) fn gh_workflow_run(
        action: &str,
        workflow: &str,
        sha: &str,
        branch: &str,
        conclusion: Option<&str>,
        head_repo: &str,
    ) -> String {
        let status = if action == "completed" {
            "completed"
        } else {
            action
        };
        serde_json::json!({
            "action": action,
            "organization": {"login": "acme"},
            "repository": {"full_name": "acme/app", "name": "app", "fork": false},
            "sender": {"login": "Codertocat", "type": "User"},
            "workflow": {"id": 2823525, "name": workflow, "path": ".github/workflows/ci.yml", "state": "active"},
            "workflow_run": {
                "name": "", "id": 289782451, "run_attempt": 1, "run_number": 7,
                "event": "push", "status": status, "conclusion": conclusion,
                "head_branch": branch, "head_sha": sha,
                "head_commit": {"id": sha, "message": "build: check workflow run payload",
                    "timestamp": "2020-10-05T16:32:07Z", "author": {"name": "Octo Cat"}},
                "head_repository": {"full_name": head_repo, "fork": head_repo != "acme/app"},
                "repository": {"full_name": "acme/app"},
                "pull_requests": [],
            },
        })
        .to_string()
    }

    fn ci_of(body: &str) -> CiRun {
        match gh("workflow_run", "application/json", body.as_bytes())
            .unwrap()
            .event
        {
            Event::Ci(run) => run,
            e => panic!("not a CI event: {e:?}"),
        }
    }

    #[test]
    fn workflow_run_events_are_read() {
        let done = ci_of(&gh_workflow_run(
            "completed",
            "CI",
            SHA,
            "main",
            Some("success"),
            "acme/app",
        ));
        assert_eq!(
            done,
            passed_run("CI", "main", "acme/app", "289782451#1", "Codertocat")
        );
        for (word, state) in [
            ("skipped", CiState::Passed),
            ("neutral", CiState::Passed),
            ("failure", CiState::Failed),
            ("cancelled", CiState::Failed),
            ("timed_out", CiState::Failed),
            ("action_required", CiState::Failed),
            ("startup_failure", CiState::Failed),
            ("stale", CiState::Failed),
            ("a word from the future", CiState::Failed),
        ] {
            let run = ci_of(&gh_workflow_run(
                "completed",
                "CI",
                SHA,
                "main",
                Some(word),
                "acme/app",
            ));
            assert_eq!((run.state, run.conclusion.as_str()), (state, word));
        }
        // requested and in_progress come with a null conclusion.
        for action in ["requested", "in_progress"] {
            let run = ci_of(&gh_workflow_run(
                action, "CI", SHA, "main", None, "acme/app",
            ));
            assert_eq!(
                (run.state, run.conclusion.as_str()),
                (CiState::Running, action)
            );
        }
        let fork = ci_of(&gh_workflow_run(
            "completed",
            "CI",
            SHA,
            "main",
            Some("success"),
            "mallory/app",
        ));
        assert_eq!(fork.head_repository, "mallory/app");
        // Without `workflow`, the run's own name is the workflow's.
        let bare = r#"{"action":"completed","workflow_run":{"name":"Tests","head_sha":"abc","head_branch":"main","status":"completed","conclusion":"success"}}"#;
        assert_eq!(ci_of(bare).workflow, "Tests");
        assert!(matches!(
            gh(
                "workflow_run",
                "application/json",
                br#"{"action":"completed"}"#
            ),
            Err(EventError::Payload(_))
        ));
    }

    #[test]
    fn listed_workflow_runs_read_oldest_first_as_events_name_them() {
        let body = r#"{"total_count": 3, "workflow_runs": [
            {"id": 3, "run_attempt": 2, "name": "CI", "head_sha": "abc", "head_branch": "main",
             "status": "completed", "conclusion": "success",
             "head_repository": {"full_name": "acme/app"}, "actor": {"login": "octocat"},
             "unknown": {"deep": [1, 2, 3]}},
            {"id": 2, "name": "Lint", "head_sha": "abc", "head_branch": null,
             "status": "in_progress", "conclusion": null},
            {"id": 1, "name": "CI", "head_sha": "abc", "status": "completed",
             "conclusion": "timed_out"}
        ]}"#;
        let runs = read_workflow_runs(body, "acme/app").unwrap();
        let seen: Vec<(&str, CiState, &str, &str)> = runs
            .iter()
            .map(|r| {
                (
                    r.workflow.as_str(),
                    r.state,
                    r.conclusion.as_str(),
                    r.run.as_str(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            vec![
                ("CI", CiState::Failed, "timed_out", "1#1"),
                ("Lint", CiState::Running, "in_progress", "2#1"),
                ("CI", CiState::Passed, "success", "3#2"),
            ]
        );
        assert_eq!(runs[2].branch, "main");
        assert_eq!(runs[2].repository, "acme/app");
        assert_eq!(runs[2].head_repository, "acme/app");
        assert_eq!(runs[2].actor, "octocat");
        assert!(read_workflow_runs("<html>", "acme/app").is_err());
        let deliveries: Vec<HookDelivery> = serde_json::from_str(
            r#"[{"id": 42, "guid": "58474f00-b361-11eb-836d-0e4f3503ccbe",
                 "delivered_at": "2021-05-12T20:33:44Z", "redelivery": false, "duration": 0.03,
                 "status": "failed to connect", "status_code": 502, "event": "issues",
                 "action": "opened", "installation_id": 123, "repository_id": 456}]"#,
        )
        .unwrap();
        assert_eq!(deliveries[0].id, 42);
        assert!(!deliveries[0].delivered());
    }
}
