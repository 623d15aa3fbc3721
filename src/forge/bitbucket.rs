//! Bitbucket Cloud: everything deployd knows of its webhooks.
//!
//! | what | where |
//! | --- | --- |
//! | signature | `X-Hub-Signature: sha256=<hex>`, the HMAC-SHA256 of the raw body |
//! | event | `X-Event-Key`: `repo:push`, `diagnostics:ping`, `repo:commit_status_created`, `repo:commit_status_updated`; any other is ignored |
//! | delivery id | `X-Request-UUID` |
//! | push | each of `push.changes` (`old`, `new`, `forced`, `new.target.message`), `repository.full_name`, `actor.nickname`, else `username`, else `display_name`; no file lists |
//! | CI | `commit_status.{key, state, refname, commit.hash, uuid, updated_on}`, `repository.full_name` |

use std::borrow::Cow;
use std::time::SystemTime;

use hyper::HeaderMap;
use serde::Deserialize;

use super::StatusReport;
use super::common::{
    Body, BodyMac, Delivery, Event, EventError, Key, SignatureError, auth_header, header_str,
    hmac_hex, json_of, payload, read_delivery, verify_sha256_prefixed,
};
use crate::forge::ci::{CiRun, CiState};
use crate::forge::push::{Files, Push};
use crate::http_client::Attempt;

/// The delivery-id header.
pub(super) const DELIVERY_HEADERS: &[&str] = &["x-request-uuid"];

/// Checks `X-Hub-Signature` (GitHub's `-256` header name is not Bitbucket's).
pub(super) fn verify(
    key: &Key,
    headers: &HeaderMap,
    body: &[u8],
    _now: SystemTime,
) -> Result<BodyMac, SignatureError> {
    verify_sha256_prefixed(auth_header(headers, "x-hub-signature")?, key, body)
}

/// The header Bitbucket would send for `body`.
pub(super) fn sign(key: &Key, body: &[u8]) -> Vec<(&'static str, String)> {
    vec![("X-Hub-Signature", format!("sha256={}", hmac_hex(key, body)))]
}

/// Reads a verified delivery.
pub(super) fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Delivery, EventError> {
    read_delivery(headers, body, DELIVERY_HEADERS, event)
}

#[derive(Deserialize)]
struct BbPush<'a> {
    #[serde(borrow)]
    push: BbChanges<'a>,
    #[serde(borrow)]
    repository: Option<BbRepo<'a>>,
    #[serde(borrow)]
    actor: Option<BbActor<'a>>,
}

#[derive(Deserialize)]
struct BbRepo<'a> {
    #[serde(borrow)]
    full_name: Option<Cow<'a, str>>,
}

impl BbRepo<'_> {
    /// `owner/name`, empty when the event does not say.
    fn name(repo: Option<Self>) -> String {
        repo.and_then(|r| r.full_name)
            .map(Cow::into_owned)
            .unwrap_or_default()
    }
}

#[derive(Deserialize)]
struct BbChanges<'a> {
    #[serde(borrow, default)]
    changes: Vec<BbChange<'a>>,
}

#[derive(Deserialize)]
struct BbChange<'a> {
    #[serde(borrow)]
    new: Option<BbRef<'a>>,
    #[serde(borrow)]
    old: Option<BbRef<'a>>,
    /// The change rewrote the ref's history.
    #[serde(default)]
    forced: bool,
}

#[derive(Deserialize)]
struct BbRef<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow)]
    target: Option<BbTarget<'a>>,
}

#[derive(Deserialize)]
struct BbTarget<'a> {
    #[serde(borrow)]
    hash: Cow<'a, str>,
    /// The head commit's message (for `new`).
    #[serde(borrow, default)]
    message: Option<Cow<'a, str>>,
}

/// Bitbucket dropped `username` from accounts in 2019 for `nickname`; both
/// are read, then `display_name`.
#[derive(Deserialize)]
struct BbActor<'a> {
    #[serde(borrow, default)]
    nickname: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    username: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    display_name: Option<Cow<'a, str>>,
}

impl BbActor<'_> {
    /// The account's name, the first of them that is given; empty when the
    /// event names no one.
    fn name(actor: Option<Self>) -> String {
        actor
            .and_then(|a| a.nickname.or(a.username).or(a.display_name))
            .map(Cow::into_owned)
            .unwrap_or_default()
    }
}

/// One delivery may carry several ref changes, each a [`Push`];
/// `filter::choose` deploys the one to the project's branch.
fn event(headers: &HeaderMap, kind: Body, body: &[u8]) -> Result<Event, EventError> {
    let event =
        header_str(headers, "x-event-key").ok_or(EventError::MissingEvent("X-Event-Key"))?;
    Ok(match event {
        "repo:push" => {
            let json = json_of(kind, body)?;
            let p: BbPush = payload(&json)?;
            let repository = BbRepo::name(p.repository);
            let pusher = BbActor::name(p.actor);
            Event::Push(
                p.push
                    .changes
                    .into_iter()
                    .map(|c| change(c, &repository, &pusher))
                    .collect(),
            )
        }
        // What Bitbucket's "Test connection" sends (Data Center has it).
        "diagnostics:ping" => Event::Ping,
        "repo:commit_status_created" | "repo:commit_status_updated" => {
            Event::Ci(read_commit_status(kind, body)?)
        }
        other => Event::Other(other.to_string()),
    })
}

#[derive(Deserialize)]
struct BbStatusEvent<'a> {
    #[serde(borrow)]
    commit_status: BbStatus<'a>,
    #[serde(borrow)]
    repository: Option<BbRepo<'a>>,
    #[serde(borrow)]
    actor: Option<BbActor<'a>>,
}

#[derive(Deserialize)]
struct BbStatus<'a> {
    #[serde(borrow, default)]
    key: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    uuid: Option<Cow<'a, str>>,
    #[serde(borrow)]
    state: Cow<'a, str>,
    #[serde(borrow, default)]
    refname: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    updated_on: Option<Cow<'a, str>>,
    #[serde(borrow)]
    commit: Option<BbTarget<'a>>,
}

/// A build status on a commit (`repo:commit_status_created`/`_updated`):
/// the gate's "workflow" is the status `key` (the build's identifier, the
/// same for every commit), `refname` the branch. `SUCCESSFUL` passes;
/// `FAILED` and `STOPPED` fail; `INPROGRESS` is still going. Bitbucket does
/// not say whether the commit came from a fork.
fn read_commit_status(kind: Body, body: &[u8]) -> Result<CiRun, EventError> {
    let json = json_of(kind, body)?;
    let e: BbStatusEvent = payload(&json)?;
    let s = e.commit_status;
    let state = status_state(&s.state);
    let text = |c: Option<Cow<'_, str>>| c.map(Cow::into_owned).unwrap_or_default();
    Ok(CiRun {
        workflow: text(s.key),
        sha: s.commit.map(|c| c.hash.into_owned()).unwrap_or_default(),
        branch: text(s.refname),
        repository: BbRepo::name(e.repository),
        head_repository: String::new(),
        state,
        conclusion: s.state.into_owned(),
        run: format!("{}@{}", text(s.uuid), text(s.updated_on)),
        actor: BbActor::name(e.actor),
    })
}

/// One entry of `push.changes`: `new` is the ref after the push (`null` when
/// it was deleted), `old` the ref before (`null` when it was created).
fn change(c: BbChange<'_>, repository: &str, pusher: &str) -> Push {
    let hash = |r: &Option<BbRef<'_>>| {
        r.as_ref()
            .and_then(|r| r.target.as_ref())
            .map(|t| t.hash.to_string())
            .unwrap_or_else(|| "0".repeat(40))
    };
    let (before, after) = (hash(&c.old), hash(&c.new));
    let git_ref = c
        .new
        .as_ref()
        .or(c.old.as_ref())
        .map(|r| match r.kind.as_ref() {
            "branch" | "named_branch" => format!("refs/heads/{}", r.name),
            "tag" | "annotated_tag" => format!("refs/tags/{}", r.name),
            // Mercurial bookmarks and whatever comes next: not a branch.
            other => format!("{other}:{}", r.name),
        })
        .unwrap_or_default();
    let message = c
        .new
        .as_ref()
        .and_then(|r| r.target.as_ref())
        .and_then(|t| t.message.as_deref())
        .unwrap_or("")
        .to_string();
    Push {
        git_ref,
        before,
        deleted: c.new.is_none(),
        after,
        repository: repository.to_string(),
        pusher: pusher.to_string(),
        forced: c.forced,
        message,
        // Bitbucket Cloud's `commits` (at most 5, then `truncated`) carry no
        // file lists at all.
        files: Files::Unknown("Bitbucket sends no file lists".into()),
        note: String::new(),
        delivery: String::new(),
    }
}

/// Bitbucket Cloud build statuses:
/// `POST /2.0/repositories/{workspace}/{repo}/commit/{sha}/statuses/build`
/// with `key`, `state` (`INPROGRESS`, `SUCCESSFUL`, `FAILED`), `name`,
/// `url` (required: `outputs.url`, else the commit's page) and
/// `description`. A token holding `:` is `user:app-password` (Basic);
/// otherwise it is an access token (Bearer).
pub(super) fn report(api_url: &str, token: &str, s: &StatusReport) -> Attempt {
    use super::CommitState::*;
    let state = match s.state {
        Pending => "INPROGRESS",
        Success => "SUCCESSFUL",
        Failure | Error => "FAILED",
    };
    let auth = authorization(token);
    // Keys are at most 40 characters.
    let key: String = s.context.chars().take(40).collect();
    let requests =
        s.shas
            .iter()
            .map(|sha| {
                let url = s.target_url.clone().unwrap_or_else(|| {
                    format!("https://bitbucket.org/{}/commits/{sha}", s.repository)
                });
                let body = serde_json::json!({
                    "key": key,
                    "state": state,
                    "name": s.context,
                    "url": url,
                    "description": s.description,
                });
                crate::http_client::Outgoing::json(
                    &format!(
                        "{api_url}/2.0/repositories/{}/commit/{sha}/statuses/build",
                        s.repository
                    ),
                    &body,
                )
                .header("Authorization", auth.clone())
            })
            .collect();
    super::send_all(
        requests,
        "check the report token (Bitbucket: an access token with repository:write, \
         or user:app-password), api_url, and the project's repository (workspace/slug)",
    )
}

/// The `Authorization` of a Bitbucket API call: a token holding `:` is
/// `user:app-password` (Basic); otherwise it is an access token (Bearer).
fn authorization(token: &str) -> String {
    use base64::Engine;
    if token.contains(':') {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(token)
        )
    } else {
        format!("Bearer {token}")
    }
}

/// What a build status's `state` means for the gate: `SUCCESSFUL` passes,
/// `INPROGRESS` is still going, anything else (`FAILED`, `STOPPED`) fails.
fn status_state(state: &str) -> CiState {
    match state {
        "SUCCESSFUL" => CiState::Passed,
        "INPROGRESS" => CiState::Running,
        _ => CiState::Failed,
    }
}

#[derive(Deserialize)]
struct BbStatusList {
    #[serde(default)]
    values: Vec<BbListedStatus>,
}

/// A listed build status's fields the gate needs, owned.
#[derive(Deserialize)]
struct BbListedStatus {
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    uuid: Option<String>,
    state: String,
    #[serde(default)]
    refname: Option<String>,
    #[serde(default)]
    updated_on: Option<String>,
}

/// Reads a page of commit statuses (`{"values": [...]}`) of `repository`
/// into CI results, oldest update first; each is named as a
/// `repo:commit_status_*` event names it (`uuid@updated_on`).
fn read_statuses(body: &str, repository: &str, sha: &str) -> Result<Vec<CiRun>, String> {
    let list: BbStatusList = serde_json::from_str(body)
        .map_err(|e| format!("the list of commit statuses does not read: {e}"))?;
    let mut runs: Vec<(String, CiRun)> = list
        .values
        .into_iter()
        .map(|s| {
            let updated = s.updated_on.unwrap_or_default();
            let run = CiRun {
                workflow: s.key.unwrap_or_default(),
                sha: sha.to_string(),
                branch: s.refname.unwrap_or_default(),
                repository: repository.to_string(),
                head_repository: String::new(),
                state: status_state(&s.state),
                conclusion: s.state,
                run: format!("{}@{updated}", s.uuid.unwrap_or_default()),
                actor: String::new(),
            };
            (updated, run)
        })
        .collect();
    runs.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(runs.into_iter().map(|(_, r)| r).collect())
}

/// The build statuses Bitbucket holds for commit `sha` (blocking):
/// `GET /2.0/repositories/{workspace}/{repo}/commit/{sha}/statuses`.
pub(super) fn ci_of_commit(
    api_url: &str,
    token: &str,
    repository: &str,
    sha: &str,
) -> Result<Vec<CiRun>, String> {
    let req = crate::http_client::Outgoing::bare(
        "GET",
        &format!("{api_url}/2.0/repositories/{repository}/commit/{sha}/statuses?pagelen=100"),
    )
    .header("Authorization", authorization(token))
    .header("Accept", "application/json");
    let body = super::fetch(
        &req,
        "check the report token (Bitbucket: repository read), api_url, and the project's \
         repository (workspace/slug)",
    )?;
    read_statuses(&body, repository, sha)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::forge::common::tests::{SHA, headers, push_of};

    fn check(key: &Key, h: &HeaderMap, body: &[u8]) -> Result<(), SignatureError> {
        verify(key, h, body, SystemTime::now()).map(|_| ())
    }

    #[test]
    fn bitbucket_prefixed_sha256() {
        let key = Key::new(b"forge secret");
        let body = br#"{"push":{"changes":[]}}"#;
        let hex = hmac_hex(&key, body);
        let check_value = |v: &str| check(&key, &headers(&[("x-hub-signature", v)]), body);
        assert_eq!(check_value(&format!("sha256={hex}")), Ok(()));
        let (name, value) = sign(&key, body).remove(0);
        assert_eq!((name, check_value(&value)), ("X-Hub-Signature", Ok(())));
        assert_eq!(check_value(&hex), Err(SignatureError::Malformed));
        assert_eq!(
            check_value(&format!("sha256={}", hmac_hex(&key, b"x"))),
            Err(SignatureError::Mismatch)
        );
        // GitHub's header name is not Bitbucket's.
        let h = headers(&[("x-hub-signature-256", &format!("sha256={hex}"))]);
        assert_eq!(check(&key, &h, body), Err(SignatureError::Missing));
    }

    /// A Bitbucket Cloud ref state (`new` or `old` of a change), documented
    /// shape (trimmed).
    pub(crate) fn bb_ref(kind: &str, name: &str, hash: &str) -> serde_json::Value {
        serde_json::json!({
            "type": kind,
            "name": name,
            "target": {
                "type": "commit",
                "hash": hash,
                "author": {"type": "author", "raw": "Alex <alex@example.com>"},
                "message": "conflict free\n",
                "date": "2024-05-15T23:09:07+00:00",
                "parents": [{"type": "commit", "hash": "4c0d03e075d808b9241ec760087e114d6d0ccf00"}],
                "links": {"html": {"href": "https://bitbucket.org/acme/app/commits/x"}}
            },
            "links": {"html": {"href": "https://bitbucket.org/acme/app/branch/x"}}
        })
    }

    /// A `repo:push` body with these `(old, new)` changes.
    pub(crate) fn bb_push(changes: Vec<(serde_json::Value, serde_json::Value)>) -> String {
        let changes: Vec<_> = changes
            .into_iter()
            .map(|(old, new)| {
                serde_json::json!({
                    "new": new, "old": old,
                    "created": false, "forced": false, "closed": false, "truncated": false,
                    "links": {"diff": {"href": "https://api.bitbucket.org/2.0/x"}},
                    "commits": []
                })
            })
            .collect();
        serde_json::json!({
            "push": {"changes": changes},
            "actor": {
                "type": "user",
                "display_name": "Alex Doe",
                "nickname": "alexd",
                "uuid": "{58e8bb1e-704e-4239-b082-b4ceaf8cc369}",
                "account_id": "557058:c0b72ad0-1cb5-4018-9cdc-0cde8492c443"
            },
            "repository": {
                "type": "repository",
                "name": "app",
                "full_name": "acme/app",
                "uuid": "{5b6cc2a1-4841-469e-aebe-b0b58e14ffd3}",
                "is_private": true,
                "workspace": {"slug": "acme", "type": "workspace"}
            }
        })
        .to_string()
    }

    /// The push of a Bitbucket delivery that deletes `branch`, whose head
    /// was `old`: its change has `new: null`.
    pub(crate) fn bb_deletion(branch: &str, old: &str) -> Push {
        let change = (bb_ref("branch", branch, old), serde_json::Value::Null);
        push_of(bitbucket("repo:push", &bb_push(vec![change])).event).remove(0)
    }

    /// Parses a Bitbucket delivery of `event` with its usual headers.
    pub(crate) fn bitbucket(event: &str, body: &str) -> Delivery {
        parse(
            &headers(&[
                ("content-type", "application/json"),
                ("x-event-key", event),
                ("x-hook-uuid", "{hook-uuid}"),
                ("x-request-uuid", "req-1"),
                ("x-attempt-number", "1"),
            ]),
            body.as_bytes(),
        )
        .unwrap()
    }

    #[test]
    fn bitbucket_push_is_read() {
        let old = "1".repeat(40);
        let body = bb_push(vec![(
            bb_ref("branch", "main", &old),
            bb_ref("branch", "main", SHA),
        )]);
        let d = bitbucket("repo:push", &body);
        assert_eq!(d.id.as_deref(), Some("req-1"));
        let p = push_of(d.event).remove(0);
        assert_eq!(
            p,
            Push {
                git_ref: "refs/heads/main".into(),
                before: old.clone(),
                after: SHA.into(),
                repository: "acme/app".into(),
                pusher: "alexd".into(),
                delivery: String::new(),
                deleted: false,
                forced: false,
                message: "conflict free\n".into(),
                files: Files::Unknown("Bitbucket sends no file lists".into()),
                note: String::new(),
            }
        );
        // An account without a nickname: the older username, then the name.
        let body = body.replace("\"nickname\":\"alexd\",", "");
        assert_eq!(
            push_of(bitbucket("repo:push", &body).event)[0].pusher,
            "Alex Doe"
        );
    }

    #[test]
    fn bitbucket_deletion_ping_and_other_events() {
        let old = "1".repeat(40);
        // `new: null` is a deletion, named by `old` (what the filter and
        // `choose` make of changes is in filter.rs's tests).
        let deleted = bb_deletion("main", &old);
        assert!(deleted.deleted);
        assert_eq!(
            (deleted.before.as_str(), deleted.after.as_str()),
            (old.as_str(), "0000000000000000000000000000000000000000")
        );
        // Ping, other events, no event header.
        assert_eq!(bitbucket("diagnostics:ping", "{}").event, Event::Ping);
        assert_eq!(
            bitbucket("pullrequest:created", "{}").event,
            Event::Other("pullrequest:created".into())
        );
        assert_eq!(
            parse(&headers(&[("content-type", "application/json")]), b"{}"),
            Err(EventError::MissingEvent("X-Event-Key"))
        );
    }

    /// A `repo:commit_status_updated` as Bitbucket Cloud's event payloads
    /// page shows it (the fields deployd reads, with their neighbours).
    pub(crate) fn bb_status(key: &str, state: &str, hash: &str, refname: &str) -> String {
        serde_json::json!({
            "actor": {"nickname": "octo", "display_name": "Octo Cat"},
            "repository": {"full_name": "acme/app", "name": "app"},
            "commit_status": {
                "type": "build", "key": key, "name": format!("{key} #12"),
                "uuid": "{5fcb7b8d-7b8d-4d0e-9a2a-000000000001}",
                "state": state, "refname": refname, "url": "https://ci.example.com/12",
                "description": "", "created_on": "2026-11-30T10:00:00Z",
                "updated_on": "2026-11-30T10:05:00Z",
                "commit": {"hash": hash, "type": "commit"},
            },
        })
        .to_string()
    }

    #[test]
    fn bitbucket_commit_statuses_are_read() {
        let ci = |event: &str, body: &str| match bitbucket(event, body).event {
            Event::Ci(run) => run,
            e => panic!("not a CI event: {e:?}"),
        };
        let run = ci(
            "repo:commit_status_updated",
            &bb_status("build", "SUCCESSFUL", SHA, "main"),
        );
        assert_eq!(
            (
                run.workflow.as_str(),
                run.sha.as_str(),
                run.branch.as_str(),
                run.repository.as_str()
            ),
            ("build", SHA, "main", "acme/app")
        );
        assert_eq!(run.state, CiState::Passed);
        for (state, want) in [
            ("FAILED", CiState::Failed),
            ("STOPPED", CiState::Failed),
            ("INPROGRESS", CiState::Running),
        ] {
            let run = ci(
                "repo:commit_status_created",
                &bb_status("build", state, SHA, "main"),
            );
            assert_eq!((run.state, run.conclusion.as_str()), (want, state));
        }
    }

    #[test]
    fn listed_statuses_read_oldest_update_first() {
        let body = r#"{"size": 2, "page": 1, "pagelen": 100, "values": [
            {"type": "build", "key": "deploy", "uuid": "{b}", "state": "INPROGRESS",
             "refname": "main", "updated_on": "2024-05-01T10:05:00Z", "links": {}},
            {"type": "build", "key": "build", "uuid": "{a}", "state": "FAILED",
             "refname": null, "updated_on": "2024-05-01T10:01:00Z"}
        ]}"#;
        let runs = read_statuses(body, "team/app", "abc").unwrap();
        assert_eq!(runs[0].workflow, "build");
        assert_eq!(runs[0].state, CiState::Failed);
        assert_eq!(runs[0].run, "{a}@2024-05-01T10:01:00Z");
        assert_eq!(runs[0].branch, "", "null: the caller's branch");
        assert_eq!(runs[1].state, CiState::Running);
        assert_eq!(runs[1].sha, "abc");
        assert_eq!(authorization("user:pw"), "Basic dXNlcjpwdw==");
        assert_eq!(authorization("tok"), "Bearer tok");
    }
}
