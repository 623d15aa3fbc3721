//! GitLab: everything deployd knows of its webhooks.
//!
//! | what | where |
//! | --- | --- |
//! | authentication | `X-Gitlab-Token: <secret>`, or `webhook-signature: v1,<base64>` over `{webhook-id}.{webhook-timestamp}.{body}` |
//! | event | `X-Gitlab-Event`: `Push Hook`, `Tag Push Hook`, `Pipeline Hook`; any other is ignored |
//! | delivery id | `Idempotency-Key`, else `webhook-id`, else `X-Gitlab-Webhook-UUID` |
//! | push | `ref`, `before`, `after`, `project.path_with_namespace`, `user_username` (else `user_name`), `commits[]` (message and `added`/`modified`/`removed`; at most 20 of `total_commits_count` by default); no force flag |
//! | signed time | `webhook-timestamp` (Standard Webhooks) |
//! | CI | `Pipeline Hook`: `object_attributes.{id, ref, tag, sha, status}`, `project.path_with_namespace`, `merge_request.{source_project_id, target_project_id}`, `user.username` |
//!
//! GitLab has two mechanisms and a project has one secret, so either proves a
//! delivery: the secret token sent as is, or a Standard Webhooks signature
//! made with the secret as GitLab *signing token* (`whsec_` + base64 of the
//! key), whose timestamp may not be more than [`TOLERANCE`] ahead of our
//! clock. Both need the secret; the signature also covers the body and the
//! timestamp, which becomes the delivery's signed time: one older than
//! `max_age` is answered `stale delivery` by the server (docs/security.md,
//! *What deployd defends against*).

use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::Mac;
use hyper::HeaderMap;
use serde::Deserialize;

use super::StatusReport;
use super::common::{
    Body, BodyMac, Commit, Delivery, Event, EventError, Key, SignatureError, WHSEC, auth_header,
    files_of, header_str, json_of, payload, read_delivery, signing_key, unix_seconds,
};
use crate::forge::ci::{CiRun, CiState};
use crate::forge::push::{Push, zeros};
use crate::http_client::Attempt;

/// How far ahead of our clock a Standard Webhooks `webhook-timestamp` may
/// be: the spec's recommendation. A timestamp in the past is not refused
/// here; it is the delivery's signed time, held against `max_age`.
pub const TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// The delivery-id headers, best first. Idempotency-Key (GitLab 17.4+) is
/// kept across retries and equals webhook-id; X-Gitlab-Webhook-UUID is new
/// on every request, so it only names the request when nothing better is
/// there.
pub(super) const DELIVERY_HEADERS: &[&str] =
    &["idempotency-key", "webhook-id", "x-gitlab-webhook-uuid"];

/// Why `secret` cannot be used by a GitLab project, for `check`: a secret
/// that looks like a signing token (`whsec_…`) but whose key does not decode
/// would silently never verify a signature.
pub(super) fn secret_problem(secret: &str) -> Option<String> {
    (secret.starts_with(WHSEC) && signing_key(secret.as_bytes()).is_none()).then(|| {
        "a GitLab signing token is \"whsec_\" followed by base64 (as GitLab generates it); \
         this one does not decode"
            .to_string()
    })
}

/// The secret token as is, or a Standard Webhooks signature.
pub(super) fn verify(
    key: &Key,
    headers: &HeaderMap,
    body: &[u8],
    now: SystemTime,
) -> Result<BodyMac, SignatureError> {
    // A token, or a signature over more than the body: no body MAC learnt.
    let token = headers.get("x-gitlab-token");
    if token.is_some_and(|t| key.verify_token(t.as_bytes())) {
        return Ok(None);
    }
    if headers.contains_key("webhook-signature") {
        return standard_webhooks(key, headers, body, now).map(|()| None);
    }
    Err(if token.is_some() {
        SignatureError::Mismatch
    } else {
        SignatureError::Missing
    })
}

/// A Standard Webhooks signature: `webhook-signature` holds space-separated
/// `v1,<base64>` entries, one of which must be the HMAC-SHA256 of
/// `{webhook-id}.{webhook-timestamp}.{body}` under the decoded signing key;
/// the timestamp (Unix seconds) may be at most [`TOLERANCE`] after `now`.
fn standard_webhooks(
    key: &Key,
    headers: &HeaderMap,
    body: &[u8],
    now: SystemTime,
) -> Result<(), SignatureError> {
    let malformed = |_| SignatureError::Malformed;
    let id = auth_header(headers, "webhook-id").map_err(malformed)?;
    let ts_text = auth_header(headers, "webhook-timestamp").map_err(malformed)?;
    let ts: i64 = ts_text.parse().map_err(|_| SignatureError::Malformed)?;
    let candidates: Vec<[u8; 32]> = auth_header(headers, "webhook-signature")?
        .split_whitespace()
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .filter_map(|b64| BASE64.decode(b64).ok()?.try_into().ok())
        .collect();
    if candidates.is_empty() {
        return Err(SignatureError::Malformed);
    }
    let Some(signing) = key.signing() else {
        // The project's secret is a plain token: no signature can match.
        return Err(SignatureError::Mismatch);
    };
    let mut m = signing.clone();
    for part in [id.as_bytes(), b".", ts_text.as_bytes(), b".", body] {
        m.update(part);
    }
    if !candidates.iter().any(|c| m.clone().verify_slice(c).is_ok()) {
        return Err(SignatureError::Mismatch);
    }
    // Checked after the signature, so only an authentic delivery is ever
    // reported as expired: that line then means a clock that is off. An old
    // timestamp is the server's to judge (`max_age`, answered 200 so the
    // forge stops retrying).
    if ts > unix_seconds(now) && ts.abs_diff(unix_seconds(now)) > TOLERANCE.as_secs() {
        return Err(SignatureError::Expired);
    }
    Ok(())
}

/// For a project whose secret is a signing token, the Standard Webhooks
/// trio for message `id` at time `now`. `None` for a plain secret token:
/// GitLab sends the token itself, there is nothing to compute, and deployd
/// never prints a secret.
pub(super) fn sign(
    key: &Key,
    body: &[u8],
    now: SystemTime,
    id: &str,
) -> Option<Vec<(&'static str, String)>> {
    let mut m = key.signing()?.clone();
    let ts = unix_seconds(now).to_string();
    for part in [id.as_bytes(), b".", ts.as_bytes(), b".", body] {
        m.update(part);
    }
    let sig = BASE64.encode(m.finalize().into_bytes());
    Some(vec![
        ("webhook-id", id.to_string()),
        ("webhook-timestamp", ts),
        ("webhook-signature", format!("v1,{sig}")),
    ])
}

/// Reads a verified delivery; a Standard Webhooks `webhook-timestamp` is
/// its signed time. (Sent beside a secret token it is not signed, but
/// whoever holds the token can forge anything anyway.)
pub(super) fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Delivery, EventError> {
    let mut d = read_delivery(headers, body, DELIVERY_HEADERS, event)?;
    d.signed_at = header_str(headers, "webhook-timestamp")
        .and_then(|t| t.parse::<u64>().ok())
        .and_then(|s| UNIX_EPOCH.checked_add(Duration::from_secs(s)));
    Ok(d)
}

#[derive(Deserialize)]
struct GlPush<'a> {
    #[serde(rename = "ref", borrow)]
    git_ref: Cow<'a, str>,
    #[serde(borrow, default)]
    before: Cow<'a, str>,
    #[serde(borrow)]
    after: Cow<'a, str>,
    #[serde(borrow, default)]
    user_username: Option<Cow<'a, str>>,
    /// The display name: GitLab's sample data, its tag pushes and older
    /// push events have no `user_username`.
    #[serde(borrow, default)]
    user_name: Option<Cow<'a, str>>,
    /// `push` or `tag_push`.
    #[serde(borrow, default)]
    object_kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    project: Option<GlProject<'a>>,
    /// At most 20 of the push's commits (GitLab's default), newest last.
    #[serde(borrow, default)]
    commits: Vec<Commit<'a>>,
    /// How many commits the push had; `commits` may hold fewer.
    #[serde(default)]
    total_commits_count: Option<u64>,
}

#[derive(Deserialize)]
struct GlProject<'a> {
    #[serde(borrow)]
    path_with_namespace: Option<Cow<'a, str>>,
}

/// `Push Hook` for branches, `Tag Push Hook` for tags (read as a push of
/// `refs/tags/…`, which the filter ignores with its reason). A tag push is
/// never a branch push, whatever its `ref`: older GitLab's "Test → Tag push
/// events" sent the branch push data under `Tag Push Hook`, which must not
/// deploy. A deleted
/// branch has zeros for `after` (and `checkout_sha: null`); for a branch
/// push `checkout_sha` is `after`, so `after` is what deploys. GitLab's
/// "Test" button sends an ordinary-looking Push Hook of the default branch's
/// head: it deploys like a push, as nothing tells it apart.
fn event(headers: &HeaderMap, kind: Body, body: &[u8]) -> Result<Event, EventError> {
    let event =
        header_str(headers, "x-gitlab-event").ok_or(EventError::MissingEvent("X-Gitlab-Event"))?;
    Ok(match event {
        "Push Hook" | "Tag Push Hook" => {
            let json = json_of(kind, body)?;
            let p: GlPush = payload(&json)?;
            let after = p.after.into_owned();
            let tag = event == "Tag Push Hook" || p.object_kind.as_deref() == Some("tag_push");
            if tag && !p.git_ref.starts_with("refs/tags/") {
                return Ok(Event::Other(format!(
                    "{event} of the non-tag ref {}",
                    p.git_ref
                )));
            }
            let message = p
                .commits
                .iter()
                .find(|c| c.id.as_deref() == Some(&after))
                .and_then(|c| c.message.as_deref())
                .unwrap_or("")
                .to_string();
            let mut push = Push {
                deleted: zeros(&after),
                git_ref: p.git_ref.into_owned(),
                before: p.before.into_owned(),
                after,
                repository: p
                    .project
                    .and_then(|p| p.path_with_namespace)
                    .map(Cow::into_owned)
                    .unwrap_or_default(),
                pusher: p
                    .user_username
                    .or(p.user_name)
                    .map(Cow::into_owned)
                    .unwrap_or_default(),
                message,
                // GitLab sends no force flag.
                ..Push::default()
            };
            let listed = p.commits.len();
            let cut = match p.total_commits_count {
                Some(total) if total as usize > listed => Some(format!(
                    "GitLab listed {listed} of the push's {total} commits \
                     (it lists at most 20 by default)"
                )),
                Some(_) => None,
                None => Some("no total_commits_count in the payload".into()),
            };
            push.files = files_of(&push, &p.commits, cut);
            Event::Push(vec![push])
        }
        "Pipeline Hook" => Event::Ci(read_pipeline(kind, body)?),
        other => Event::Other(other.to_string()),
    })
}

/// GitLab commit statuses: `POST /projects/{url-encoded path}/statuses/{sha}`
/// with `PRIVATE-TOKEN` and `state` (`running`, `success`, `failed`),
/// `name`, `target_url`, `description`.
pub(super) fn report(api_url: &str, token: &str, s: &StatusReport) -> Attempt {
    use super::CommitState::*;
    let state = match s.state {
        Pending => "running",
        Success => "success",
        Failure | Error => "failed",
    };
    let project: String =
        form_urlencoded::byte_serialize(s.repository.as_bytes()).collect::<String>();
    let requests = s
        .shas
        .iter()
        .map(|sha| {
            let mut body = serde_json::json!({
                "state": state,
                "name": s.context,
                "description": s.description,
            });
            if let Some(u) = &s.target_url {
                body["target_url"] = serde_json::json!(u);
            }
            crate::http_client::Outgoing::json(
                &format!("{api_url}/projects/{project}/statuses/{sha}"),
                &body,
            )
            .header("PRIVATE-TOKEN", token)
        })
        .collect();
    super::send_all(
        requests,
        "check the report token (GitLab: a project or personal access token with scope api, \
         role Developer or more), api_url, and the project's repository (the full path)",
    )
}

#[derive(Deserialize)]
struct GlPipeline<'a> {
    #[serde(borrow)]
    object_attributes: GlPipelineAttrs<'a>,
    #[serde(borrow, default)]
    project: Option<GlProject<'a>>,
    #[serde(default)]
    merge_request: Option<GlMergeRequest>,
    #[serde(borrow, default)]
    user: Option<GlUser<'a>>,
}

#[derive(Deserialize)]
struct GlPipelineAttrs<'a> {
    #[serde(default)]
    id: Option<u64>,
    #[serde(rename = "ref", borrow, default)]
    git_ref: Option<Cow<'a, str>>,
    #[serde(default)]
    tag: bool,
    #[serde(borrow)]
    sha: Cow<'a, str>,
    #[serde(borrow)]
    status: Cow<'a, str>,
}

#[derive(Deserialize)]
struct GlMergeRequest {
    #[serde(default)]
    source_project_id: Option<u64>,
    #[serde(default)]
    target_project_id: Option<u64>,
}

#[derive(Deserialize)]
struct GlUser<'a> {
    #[serde(borrow, default)]
    username: Option<Cow<'a, str>>,
}

/// A `Pipeline Hook`: GitLab has one pipeline per commit and ref, so the
/// gate's one "workflow" is `pipeline`. `success` and `skipped` pass;
/// `failed` and `canceled` fail (so does any other final word); `created`,
/// `waiting_for_resource`, `preparing`, `pending`, `running`, `manual` and
/// `scheduled` are still going. A tag pipeline has no branch; a merge
/// request pipeline from a fork names the fork's project as its source.
fn read_pipeline(kind: Body, body: &[u8]) -> Result<CiRun, EventError> {
    let json = json_of(kind, body)?;
    let p: GlPipeline = payload(&json)?;
    let a = p.object_attributes;
    let status = a.status.into_owned();
    let state = pipeline_state(&status);
    let repository = p
        .project
        .and_then(|p| p.path_with_namespace)
        .map(Cow::into_owned)
        .unwrap_or_default();
    let fork = p.merge_request.is_some_and(|m| {
        m.source_project_id.is_some() && m.source_project_id != m.target_project_id
    });
    let git_ref = a.git_ref.map(Cow::into_owned).unwrap_or_default();
    Ok(CiRun {
        workflow: "pipeline".into(),
        sha: a.sha.into_owned(),
        branch: if a.tag {
            String::new()
        } else {
            git_ref
                .strip_prefix("refs/heads/")
                .unwrap_or(&git_ref)
                .to_string()
        },
        // GitLab names no fork's path here; a made-up one tells the gate.
        head_repository: if fork {
            "(a fork)".into()
        } else {
            repository.clone()
        },
        repository,
        state,
        conclusion: status,
        run: a.id.unwrap_or(0).to_string(),
        actor: p
            .user
            .and_then(|u| u.username)
            .map(Cow::into_owned)
            .unwrap_or_default(),
    })
}

/// What a pipeline's `status` means for the gate: `success` and `skipped`
/// pass; `created`, `waiting_for_resource`, `preparing`, `pending`,
/// `running`, `manual` and `scheduled` are still going; anything else
/// (`failed`, `canceled`…) fails.
fn pipeline_state(status: &str) -> CiState {
    match status {
        "success" | "skipped" => CiState::Passed,
        "created"
        | "waiting_for_resource"
        | "preparing"
        | "pending"
        | "running"
        | "manual"
        | "scheduled" => CiState::Running,
        _ => CiState::Failed,
    }
}

/// A listed pipeline's fields the gate needs, owned.
#[derive(Deserialize)]
struct GlListedPipeline {
    #[serde(default)]
    id: Option<u64>,
    sha: String,
    #[serde(rename = "ref", default)]
    git_ref: Option<String>,
    status: String,
}

/// Reads `GET /projects/:id/pipelines` (an array, newest first) of
/// `repository` into CI results, oldest first; each is the gate's one
/// workflow, `pipeline`, named by its id as a `Pipeline Hook` names it.
fn read_pipelines(body: &str, repository: &str) -> Result<Vec<CiRun>, String> {
    let list: Vec<GlListedPipeline> = serde_json::from_str(body)
        .map_err(|e| format!("the list of pipelines does not read: {e}"))?;
    let mut runs: Vec<CiRun> = list
        .into_iter()
        .map(|p| {
            let git_ref = p.git_ref.unwrap_or_default();
            CiRun {
                workflow: "pipeline".into(),
                sha: p.sha,
                branch: git_ref
                    .strip_prefix("refs/heads/")
                    .unwrap_or(&git_ref)
                    .to_string(),
                repository: repository.to_string(),
                head_repository: repository.to_string(),
                state: pipeline_state(&p.status),
                conclusion: p.status,
                run: p.id.unwrap_or(0).to_string(),
                actor: String::new(),
            }
        })
        .collect();
    runs.reverse();
    Ok(runs)
}

/// The pipelines GitLab holds for commit `sha` (blocking):
/// `GET /projects/:id/pipelines?sha={sha}` with `PRIVATE-TOKEN`, the
/// project named by its URL-encoded full path.
pub(super) fn ci_of_commit(
    api_url: &str,
    token: &str,
    repository: &str,
    sha: &str,
) -> Result<Vec<CiRun>, String> {
    let project: String = form_urlencoded::byte_serialize(repository.as_bytes()).collect();
    let req = crate::http_client::Outgoing::bare(
        "GET",
        &format!("{api_url}/projects/{project}/pipelines?sha={sha}&per_page=100"),
    )
    .header("PRIVATE-TOKEN", token);
    let body = super::fetch(
        &req,
        "check the report token (GitLab: scope read_api or api), api_url, and the \
         project's repository (the full path)",
    )?;
    read_pipelines(&body, repository)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::forge::common::tests::{SHA, headers, passed_run, push_of};
    use crate::forge::push::Files;
    use std::time::UNIX_EPOCH;

    /// The Standard Webhooks reference vector (also Svix's documented example).
    const SW_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SW_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const SW_TS: u64 = 1614265330;
    const SW_BODY: &str = r#"{"test": 2432232314}"#;
    const SW_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn gitlab_secret_token() {
        let key = Key::new(b"forge secret");
        let body = b"{}";
        let check = |h: &HeaderMap| verify(&key, h, body, SystemTime::now());
        assert_eq!(
            check(&headers(&[("x-gitlab-token", "forge secret")])),
            Ok(None)
        );
        for wrong in ["forge secreT", "forge secret ", "forge", ""] {
            let mut h = HeaderMap::new();
            h.insert(
                "x-gitlab-token",
                hyper::header::HeaderValue::from_str(wrong).unwrap(),
            );
            assert_eq!(check(&h), Err(SignatureError::Mismatch), "{wrong:?}");
        }
        assert_eq!(check(&HeaderMap::new()), Err(SignatureError::Missing));
        assert!(!key.has_signing_token());
        // (That `sign_header` has no one-header form for GitLab is in
        // mod.rs's tests.)
        assert!(sign(&key, body, at(SW_TS), "id").is_none());
    }

    #[test]
    fn gitlab_signing_token_reference_vector() {
        let key = Key::new(SW_SECRET.as_bytes());
        assert!(key.has_signing_token());
        let body = SW_BODY.as_bytes();
        let h = headers(&[
            ("webhook-id", SW_ID),
            ("webhook-timestamp", "1614265330"),
            ("webhook-signature", SW_SIG),
        ]);
        assert_eq!(verify(&key, &h, body, at(SW_TS)), Ok(None));
        let signed = sign(&key, body, at(SW_TS), SW_ID).unwrap();
        assert_eq!(
            signed,
            vec![
                ("webhook-id", SW_ID.to_string()),
                ("webhook-timestamp", SW_TS.to_string()),
                ("webhook-signature", SW_SIG.to_string()),
            ]
        );
        // At most the window ahead of our clock; further ahead, expired.
        // Behind it, any age: the server holds the signed time against
        // `max_age` and answers a stale delivery 200, not 401.
        let window = TOLERANCE.as_secs();
        for now in [SW_TS - window, SW_TS + window + 1, SW_TS + 365 * 86400] {
            assert_eq!(verify(&key, &h, body, at(now)), Ok(None));
        }
        for now in [SW_TS - window - 1, 0] {
            assert_eq!(
                verify(&key, &h, body, at(now)),
                Err(SignatureError::Expired)
            );
        }
        // The secret token header with the same secret also passes.
        let h = headers(&[("x-gitlab-token", SW_SECRET)]);
        assert_eq!(verify(&key, &h, body, at(SW_TS)), Ok(None));
    }

    #[test]
    fn gitlab_signing_token_rejections() {
        let key = Key::new(SW_SECRET.as_bytes());
        let body = SW_BODY.as_bytes();
        let now = at(SW_TS);
        let check =
            |pairs: &[(&'static str, &str)], body: &[u8]| verify(&key, &headers(pairs), body, now);
        let id = ("webhook-id", SW_ID);
        let ts = ("webhook-timestamp", "1614265330");
        let sig = ("webhook-signature", SW_SIG);
        // Changed body, id or timestamp: the signature covers all three.
        assert_eq!(check(&[id, ts, sig], b"{}"), Err(SignatureError::Mismatch));
        assert_eq!(
            check(&[("webhook-id", "msg_other"), ts, sig], body),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            check(&[id, ("webhook-timestamp", "1614265331"), sig], body),
            Err(SignatureError::Mismatch)
        );
        // One right entry among several is enough; none right is a mismatch.
        let other = format!("v1,{}", BASE64.encode([0u8; 32]));
        let several = format!("v2,xyz {other} {SW_SIG}");
        assert_eq!(
            check(&[id, ts, ("webhook-signature", &several)], body),
            Ok(None)
        );
        assert_eq!(
            check(&[id, ts, ("webhook-signature", &other)], body),
            Err(SignatureError::Mismatch)
        );
        // Malformed: no v1 entry, bad base64, wrong length, bad timestamp,
        // a signature without its id or timestamp.
        for bad in ["", "v1,", "v1g0hM9SsE", "v1,%%%", "v1,AAAA", "v2,abc"] {
            assert_eq!(
                check(&[id, ts, ("webhook-signature", bad)], body),
                Err(SignatureError::Malformed),
                "{bad:?}"
            );
        }
        for bad_ts in ["", "soon", "1614265330.5", "99999999999999999999"] {
            assert_eq!(
                check(&[id, ("webhook-timestamp", bad_ts), sig], body),
                Err(SignatureError::Malformed),
                "{bad_ts:?}"
            );
        }
        assert_eq!(check(&[ts, sig], body), Err(SignatureError::Malformed));
        assert_eq!(check(&[id, sig], body), Err(SignatureError::Malformed));
        // A signature made with another signing token.
        let other_key = Key::new(format!("whsec_{}", BASE64.encode(b"another key")).as_bytes());
        let forged = sign(&other_key, body, now, SW_ID).unwrap();
        let forged: Vec<(&'static str, &str)> =
            forged.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(check(&forged, body), Err(SignatureError::Mismatch));
        // A plain-token project cannot be satisfied by any signature, and a
        // wrong token does not stop a right signature from counting.
        let plain = Key::new(b"forge secret");
        assert_eq!(
            verify(&plain, &headers(&[id, ts, sig]), body, now),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            check(&[("x-gitlab-token", "nope"), id, ts, sig], body),
            Ok(None)
        );
        assert_eq!(
            check(&[("x-gitlab-token", "nope")], body),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn signing_token_form() {
        // Only `whsec_` + base64 is a signing token; anything else is a plain
        // secret token, and `check` refuses a `whsec_` that does not decode.
        assert!(Key::new(b"whsec_c2VjcmV0").has_signing_token());
        assert!(!Key::new(b"c2VjcmV0").has_signing_token());
        assert!(!Key::new(b"whsec_").has_signing_token());
        assert!(!Key::new(b"whsec_not base64!").has_signing_token());
        assert!(secret_problem("whsec_not base64!").is_some());
        assert!(secret_problem("whsec_").is_some());
        assert!(secret_problem(SW_SECRET).is_none());
        assert!(secret_problem("plain token").is_none());
        // (Other forges take any secret: mod.rs's tests.)
    }

    /// A GitLab Push Hook in the documented shape (trimmed).
    pub(crate) fn gitlab_push(git_ref: &str, before: &str, after: &str, path: &str) -> String {
        let kind = if git_ref.starts_with("refs/tags/") {
            "tag_push"
        } else {
            "push"
        };
        serde_json::json!({
            "object_kind": kind,
            "event_name": kind,
            "before": before,
            "after": after,
            "ref": git_ref,
            "ref_protected": true,
            "checkout_sha": if zeros(after) { serde_json::Value::Null } else { after.into() },
            "message": null,
            "user_id": 4,
            "user_name": "John Smith",
            "user_username": "jsmith",
            "user_email": "john@example.com",
            "user_avatar": "https://s.gravatar.com/avatar/d4c74594d841139328695756648b6bd6?s=8://s.gravatar.com/avatar/d4c74594d841139328695756648b6bd6?s=80",
            "project_id": 15,
            "project": {
                "id": 15,
                "name": "Diaspora",
                "web_url": "http://example.com/mike/diaspora",
                "namespace": "Mike",
                "visibility_level": 0,
                "path_with_namespace": path,
                "default_branch": "master"
            },
            "commits": [{
                "id": after,
                "message": "fixed readme",
                "title": "fixed readme",
                "timestamp": "2012-01-03T23:36:29+02:00",
                "author": {"name": "GitLab dev user", "email": "gitlabdev@dv6700.(none)"},
                "added": ["CHANGELOG"], "modified": ["app/controller/application.rb"], "removed": []
            }],
            "total_commits_count": 1,
            "repository": {"name": "Diaspora", "url": "git@example.com:mike/diaspora.git", "visibility_level": 0}
        })
        .to_string()
    }

    /// Parses a GitLab delivery of `event` with its usual headers and `extra`.
    pub(crate) fn gitlab(event: &str, extra: &[(&'static str, &str)], body: &str) -> Delivery {
        let mut h = vec![
            ("content-type", "application/json"),
            ("x-gitlab-event", event),
            ("x-gitlab-instance", "https://gitlab.example.com"),
            (
                "x-gitlab-event-uuid",
                "13792a34-cac6-4fda-95a8-c58e00a3954e",
            ),
        ];
        h.extend_from_slice(extra);
        parse(&headers(&h), body.as_bytes()).unwrap()
    }

    /// GitLab's own tag push example (docs, "Webhook events": Tag events),
    /// which has `user_name` but no `user_username`.
    const GITLAB_TAG_EXAMPLE: &str = r#"{
      "object_kind": "tag_push",
      "event_name": "tag_push",
      "before": "0000000000000000000000000000000000000000",
      "after": "82b3d5ae55f7080f1e6022629cdb57bfae7cccc7",
      "ref": "refs/tags/v1.0.0",
      "ref_protected": true,
      "checkout_sha": "82b3d5ae55f7080f1e6022629cdb57bfae7cccc7",
      "user_id": 1,
      "user_name": "John Smith",
      "user_avatar": "https://s.gravatar.com/avatar/d4c74594d841139328695756648b6bd6?s=8://s.gravatar.com/avatar/d4c74594d841139328695756648b6bd6?s=80",
      "project_id": 1,
      "project":{
        "id": 1,
        "name":"Example",
        "description":"",
        "web_url":"http://example.com/jsmith/example",
        "avatar_url":null,
        "git_ssh_url":"git@example.com:jsmith/example.git",
        "git_http_url":"http://example.com/jsmith/example.git",
        "namespace":"Jsmith",
        "visibility_level":0,
        "path_with_namespace":"jsmith/example",
        "default_branch":"master",
        "homepage":"http://example.com/jsmith/example",
        "url":"git@example.com:jsmith/example.git",
        "ssh_url":"git@example.com:jsmith/example.git",
        "http_url":"http://example.com/jsmith/example.git"
      },
      "repository":{
        "name": "Example",
        "url": "ssh://git@example.com/jsmith/example.git",
        "description": "",
        "homepage": "http://example.com/jsmith/example",
        "git_http_url":"http://example.com/jsmith/example.git",
        "git_ssh_url":"git@example.com:jsmith/example.git",
        "visibility_level":0
      },
      "commits": [],
      "total_commits_count": 0
    }"#;

    #[test]
    fn the_pusher_falls_back_to_the_display_name() {
        let p = push_of(gitlab("Tag Push Hook", &[], GITLAB_TAG_EXAMPLE).event).remove(0);
        assert_eq!(p.git_ref, "refs/tags/v1.0.0");
        assert_eq!(p.pusher, "John Smith");
        // With both, the username.
        let both = gitlab_push("refs/heads/main", SHA, SHA, "g/app");
        assert_eq!(
            push_of(gitlab("Push Hook", &[], &both).event)[0].pusher,
            "jsmith"
        );
    }

    #[test]
    fn the_signing_timestamp_is_the_signed_time() {
        let body = gitlab_push("refs/heads/main", SHA, SHA, "g/app");
        let d = gitlab("Push Hook", &[("webhook-timestamp", "1614265330")], &body);
        assert_eq!(d.signed_at, Some(at(SW_TS)));
        assert_eq!(gitlab("Push Hook", &[], &body).signed_at, None);
        let bad = gitlab("Push Hook", &[("webhook-timestamp", "soon")], &body);
        assert_eq!(bad.signed_at, None);
    }

    #[test]
    fn gitlab_push_is_read() {
        let after = SHA.replace('0', "d");
        let body = gitlab_push("refs/heads/master", SHA, &after, "mike/diaspora");
        let d = gitlab(
            "Push Hook",
            &[
                ("idempotency-key", "a5461c4d-9c7f-4af9-add6-cddebe3c426f"),
                (
                    "x-gitlab-webhook-uuid",
                    "3c5c0404-c866-44bc-a5f6-452bb1bfc76e",
                ),
            ],
            &body,
        );
        // The id kept across retries wins over the per-request one.
        assert_eq!(
            d.id.as_deref(),
            Some("a5461c4d-9c7f-4af9-add6-cddebe3c426f")
        );
        let p = push_of(d.event).remove(0);
        assert_eq!(
            p,
            Push {
                git_ref: "refs/heads/master".into(),
                before: SHA.into(),
                after: after.clone(),
                repository: "mike/diaspora".into(),
                pusher: "jsmith".into(),
                delivery: String::new(),
                deleted: false,
                forced: false,
                message: "fixed readme".into(),
                // Added, modified and removed, all of them.
                files: Files::Listed(vec![
                    "CHANGELOG".into(),
                    "app/controller/application.rb".into()
                ]),
                note: String::new(),
            }
        );
        // Before GitLab 17.4 there is no Idempotency-Key.
        let d = gitlab("Push Hook", &[("x-gitlab-webhook-uuid", "w-1")], &body);
        assert_eq!(d.id.as_deref(), Some("w-1"));
        assert_eq!(gitlab("Push Hook", &[], &body).id, None);

        // Subgroups: the full path is the repository, kept as is (and the
        // filter's view of it is in filter.rs's tests).
        let nested = gitlab_push("refs/heads/main", SHA, &after, "group/sub/app");
        let p = push_of(gitlab("Push Hook", &[], &nested).event).remove(0);
        assert_eq!(p.repository, "group/sub/app");
    }

    #[test]
    fn gitlab_deletion_tags_and_other_events() {
        let zero = "0".repeat(40);
        let deleted = gitlab_push("refs/heads/main", SHA, &zero, "g/app");
        let p = push_of(gitlab("Push Hook", &[], &deleted).event).remove(0);
        assert!(p.deleted);
        // Tag Push Hook: a push of refs/tags/… (what the filter says of
        // deletions, new branches and tags is in filter.rs's tests).
        let tag = gitlab_push("refs/tags/v1.0.0", &zero, SHA, "g/app");
        let p = push_of(gitlab("Tag Push Hook", &[], &tag).event).remove(0);
        assert_eq!(p.git_ref, "refs/tags/v1.0.0");
        // Older GitLab's "Test → Tag push events" sent the branch push data
        // under Tag Push Hook: never a branch push, whatever its ref. Nor
        // is a body that says it is a tag push.
        let branch = gitlab_push("refs/heads/main", SHA, SHA, "g/app");
        assert!(matches!(
            gitlab("Tag Push Hook", &[], &branch).event,
            Event::Other(e) if e.contains("refs/heads/main")
        ));
        let tagged = branch.replace(r#""object_kind":"push""#, r#""object_kind":"tag_push""#);
        assert_ne!(tagged, branch);
        assert!(matches!(
            gitlab("Push Hook", &[], &tagged).event,
            Event::Other(_)
        ));
        let other = gitlab(
            "Merge Request Hook",
            &[],
            r#"{"object_kind":"merge_request"}"#,
        );
        assert_eq!(other.event, Event::Other("Merge Request Hook".into()));
        assert_eq!(
            parse(
                &headers(&[("content-type", "application/json")]),
                deleted.as_bytes()
            ),
            Err(EventError::MissingEvent("X-Gitlab-Event"))
        );
        assert!(matches!(
            parse(
                &headers(&[
                    ("content-type", "application/json"),
                    ("x-gitlab-event", "Push Hook")
                ]),
                br#"{"object_kind":"push"}"#
            ),
            Err(EventError::Payload(_))
        ));
    }

    /// A `Pipeline Hook` as GitLab's webhook documentation shows it (the
    /// fields deployd reads, with their neighbours).
    pub(crate) fn gitlab_pipeline(sha: &str, git_ref: &str, status: &str) -> String {
        serde_json::json!({
            "object_kind": "pipeline",
            "object_attributes": {
                "id": 31, "iid": 3, "name": "Pipeline for branch: master",
                "ref": git_ref, "tag": false, "sha": sha,
                "before_sha": "bcbb5ec396a2c0f828686f14fac9b80b780504f2",
                "source": "push", "status": status, "detailed_status": status,
                "stages": ["build", "test", "deploy"],
                "created_at": "2016-08-12 15:23:28 UTC", "finished_at": "2016-08-12 15:26:29 UTC",
                "duration": 63, "queued_duration": 12, "variables": [],
            },
            "merge_request": null,
            "user": {"id": 1, "name": "Administrator", "username": "root"},
            "project": {"id": 1, "name": "Gitlab Test", "path_with_namespace": "gitlab-org/gitlab-test",
                "default_branch": "master"},
            "commit": {"id": sha, "message": "test\n"},
            "builds": [],
        })
        .to_string()
    }

    #[test]
    fn pipeline_hooks_are_read() {
        let ci = |body: &str| match gitlab("Pipeline Hook", &[], body).event {
            Event::Ci(run) => run,
            e => panic!("not a CI event: {e:?}"),
        };
        let run = ci(&gitlab_pipeline(SHA, "master", "success"));
        assert_eq!(
            run,
            passed_run("pipeline", "master", "gitlab-org/gitlab-test", "31", "root")
        );
        for (status, state) in [
            ("failed", CiState::Failed),
            ("canceled", CiState::Failed),
            ("skipped", CiState::Passed),
            ("running", CiState::Running),
            ("pending", CiState::Running),
            ("created", CiState::Running),
            ("manual", CiState::Running),
        ] {
            assert_eq!(
                ci(&gitlab_pipeline(SHA, "master", status)).state,
                state,
                "{status}"
            );
        }
        let mut tag: serde_json::Value =
            serde_json::from_str(&gitlab_pipeline(SHA, "v1.0", "success")).unwrap();
        tag["object_attributes"]["tag"] = true.into();
        assert_eq!(ci(&tag.to_string()).branch, "");
        let mut fork: serde_json::Value =
            serde_json::from_str(&gitlab_pipeline(SHA, "master", "success")).unwrap();
        fork["merge_request"] =
            serde_json::json!({"iid": 1, "source_project_id": 7, "target_project_id": 1});
        let run = ci(&fork.to_string());
        assert_ne!(run.head_repository, run.repository);
    }

    #[test]
    fn listed_pipelines_read_oldest_first() {
        let body = r#"[
            {"id": 47, "iid": 12, "project_id": 3, "sha": "abc", "ref": "main",
             "status": "running", "source": "push", "web_url": "https://x/47"},
            {"id": 46, "iid": 11, "project_id": 3, "sha": "abc", "ref": "main",
             "status": "failed", "source": "push"}
        ]"#;
        let runs = read_pipelines(body, "group/app").unwrap();
        assert_eq!(runs.len(), 2);
        assert_eq!(
            (runs[0].run.as_str(), runs[0].state),
            ("46", CiState::Failed)
        );
        assert_eq!(
            (runs[1].run.as_str(), runs[1].state),
            ("47", CiState::Running)
        );
        assert_eq!(runs[1].workflow, "pipeline");
        assert_eq!(runs[1].branch, "main");
        assert_eq!(runs[1].repository, "group/app");
        assert_eq!(pipeline_state("skipped"), CiState::Passed);
        assert_eq!(pipeline_state("canceled"), CiState::Failed);
    }
}
