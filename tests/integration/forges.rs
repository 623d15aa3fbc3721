//! Gitea/Forgejo, GitLab and Bitbucket Cloud: one daemon, one config with a
//! project per forge, each receiving deliveries in its forge's own format
//! (headers, signature, payload shape). Each deploys the right commit with the
//! same DEPLOY_* variables a GitHub push gets, refuses a wrong secret (401),
//! ignores other branches, deletions and tags with a reason, and answers a
//! redelivery (by its own delivery-id header) `duplicate`. And in each
//! forge's shape: a new tag deploys with DEPLOY_TAG, file lists drive the
//! path filter (or, cut short or missing, deploy with the reason logged),
//! and the force flag and head message reach the script.

use crate::common;
use common::*;

use std::path::Path;
use std::time::{Duration, SystemTime};

use deployd::forge::{Key, Provider, hmac_hex, sign_headers};
use serde_json::{Value, json};

/// A GitLab signing token: `whsec_` + base64 of a 32-byte key, as GitLab makes them.
const WHSEC: &str = "whsec_ZGVwbG95ZC1mb3JnZXMtdGVzdC1zaWduaW5nLWtleSE=";
const ZEROS: &str = "0000000000000000000000000000000000000000";
const SHA_OLD: &str = "1111111111111111111111111111111111111111";
const WAIT: Duration = Duration::from_secs(30);

/// The script prints what it was told, so the test can read it in the log.
const SCRIPT: &str = "#!/bin/sh\n\
    echo \"project=$DEPLOY_PROJECT sha=$DEPLOY_SHA before=$DEPLOY_BEFORE ref=$DEPLOY_REF \
    branch=$DEPLOY_BRANCH repo=$DEPLOY_REPOSITORY pusher=$DEPLOY_PUSHER delivery=$DEPLOY_DELIVERY\"\n";

fn forge_config(dir: &TestDir) -> std::path::PathBuf {
    let script = dir.script("deploy.sh", SCRIPT);
    let projects = [
        project("gitea", &script, "provider = \"gitea\""),
        // GitLab paths may hold subgroups; `repository` is the full path.
        format!(
            "[projects.gitlab]\nprovider = \"gitlab\"\nsecret = \"{SECRET}\"\n\
             repository = \"acme/platform/gitlab\"\nscript = \"{}\"\n",
            script.display()
        ),
        format!(
            "[projects.gitlab-signed]\nprovider = \"gitlab\"\nsecret = \"{WHSEC}\"\n\
             script = \"{}\"\n",
            script.display()
        ),
        project("bitbucket", &script, "provider = \"bitbucket\""),
    ];
    write_config(dir, "", &projects.concat())
}

fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn json_of(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("response is not JSON ({e}): {body:?}"))
}

/// A request to a project's hook, as one forge sends it.
struct Req {
    path: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Req {
    fn new(project: &str, headers: Vec<(String, String)>, body: &str) -> Req {
        Req {
            path: format!("/hooks/{project}"),
            headers,
            body: body.to_string(),
        }
    }
}

/// One step of a forge's conversation with the daemon: the cases of the
/// table each forge's function below returns.
enum Step {
    /// Send the request; expect its HTTP status, its `status` field (or
    /// `error`), and a reason containing the text ("" for any).
    Send(Req, u16, &'static str, &'static str),
    /// Wait for `project`'s `n`th run and check it ran `sha` from
    /// `delivery`, with the DEPLOY_* variables a GitHub push would give.
    Ran {
        project: &'static str,
        n: usize,
        sha: &'static str,
        delivery: String,
        repo: &'static str,
        pusher: &'static str,
    },
    /// Wait for a daemon log line containing the text.
    Logged(&'static str),
}

impl Step {
    #[track_caller]
    fn play(self, d: &Daemon, config: &Path) {
        match self {
            Step::Send(req, status, what, reason) => {
                let answer = post(d.addr, &req.path, &req.headers, req.body.as_bytes());
                expect(answer, status, what, reason);
            }
            Step::Ran {
                project,
                n,
                sha,
                delivery,
                repo,
                pusher,
            } => expect_run(config, project, n, sha, &delivery, repo, pusher),
            Step::Logged(needle) => d.wait_log(needle, WAIT),
        }
    }
}

/// Asserts an answer: its status, its `status` field (or `error`), and that
/// its reason (when given) contains `reason`.
#[track_caller]
fn expect(answer: (u16, String), status: u16, what: &str, reason: &str) {
    let (code, body) = answer;
    let v = json_of(&body);
    let got = v["status"].as_str().or(v["error"].as_str()).unwrap_or("");
    assert!(
        code == status && got == what && v["reason"].as_str().unwrap_or("").contains(reason),
        "expected {status} {what:?} (reason containing {reason:?}), got {code} {body}"
    );
}

/// Waits for `project`'s `n`th run and checks it ran `sha` from `delivery`
/// with the DEPLOY_* variables a GitHub push would give.
#[track_caller]
fn expect_run(
    config: &Path,
    project: &str,
    n: usize,
    sha: &str,
    delivery: &str,
    repo: &str,
    pusher: &str,
) {
    let runs = wait_runs(config, project, n, WAIT);
    let run = &runs[0];
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["trigger"], "webhook", "{run}");
    assert_eq!(run["sha"], sha, "{run}");
    assert_eq!(run["ref"], "refs/heads/main", "{run}");
    assert_eq!(run["delivery"], delivery, "{run}");
    let log = cli_ok(config, &["logs", project], 0);
    let want = format!(
        "project={project} sha={sha} before={SHA_OLD} ref=refs/heads/main branch=main \
         repo={repo} pusher={pusher} delivery={delivery}"
    );
    assert!(
        log.contains(&want),
        "log of {project} lacks {want:?}:\n{log}"
    );
}

/// The answers every forge's table shares.
const QUEUED: (u16, &str) = (202, "queued");
const DUPLICATE: (u16, &str) = (200, "duplicate");
const PONG: (u16, &str) = (200, "pong");
const IGNORED: (u16, &str) = (200, "ignored");
const UNAUTHORIZED: (u16, &str) = (401, "invalid signature");

/// A [`Step::Send`] from a request, an answer of the list above and a reason.
fn send(req: Req, (status, what): (u16, &'static str), reason: &'static str) -> Step {
    Step::Send(req, status, what, reason)
}

// ---- Gitea / Forgejo ----------------------------------------------------

fn gitea_body(git_ref: &str, before: &str, after: &str) -> String {
    json!({
        "ref": git_ref, "before": before, "after": after,
        "compare_url": "https://git.example.com/acme/gitea/compare/a...b",
        "commits": [{"id": after, "message": "Deploy me", "author": {"name": "Gitea", "username": "gitea-user"}}],
        "repository": {"id": 7, "name": "gitea", "full_name": "acme/gitea",
                       "owner": {"id": 1, "login": "acme", "username": "acme"}},
        "pusher": {"id": 2, "login": "gitea-user", "full_name": "Gitea User", "username": "gitea-user"},
        "sender": {"id": 2, "login": "gitea-user", "username": "gitea-user"},
    })
    .to_string()
}

/// Headers as Gitea sends them (it also sends GitHub's names, with the same values).
fn gitea_headers(
    event: &str,
    delivery: &str,
    signed_json: &str,
    secret: &str,
) -> Vec<(String, String)> {
    let hex = hmac_hex(&Key::new(secret.as_bytes()), signed_json.as_bytes());
    h(&[
        ("Content-Type", "application/json"),
        ("X-Gitea-Event", event),
        ("X-Gitea-Event-Type", event),
        ("X-Gitea-Delivery", delivery),
        ("X-Gitea-Signature", &hex),
        ("X-GitHub-Event", event),
        ("X-GitHub-Delivery", delivery),
        ("X-Hub-Signature-256", &format!("sha256={hex}")),
    ])
}

/// A Gitea delivery of `event`, signed with `secret`.
fn gitea(event: &str, delivery: &str, body: &str, secret: &str) -> Req {
    Req::new("gitea", gitea_headers(event, delivery, body, secret), body)
}

fn gitea_steps() -> Vec<Step> {
    // "Test delivery": a push with before == after; answered like GitHub's ping.
    let test = gitea_body("refs/heads/main", ZEROS, ZEROS);
    let push = gitea_body("refs/heads/main", SHA_OLD, SHA_A);
    let mut unsigned = gitea_headers("push", "gt-3", &push, SECRET);
    unsigned.retain(|(k, _)| !k.contains("Signature"));
    let dev = gitea_body("refs/heads/dev", SHA_OLD, SHA_B);
    // Gitea reports a deleted branch as a `delete` event; a push to zeros
    // would be one too.
    let del = json!({"ref": "main", "ref_type": "branch", "pusher_type": "user"}).to_string();
    let gone = gitea_body("refs/heads/main", SHA_A, ZEROS);
    let tag = gitea_body("refs/tags/v1.0", ZEROS, SHA_B);
    // Forgejo, form content type: the signature covers the JSON of the
    // `payload` field (as Forgejo computes it), not the encoded body.
    let form: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &dev)
        .finish();
    let forgejo = |sig: String| {
        let headers = h(&[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("X-Forgejo-Event", "push"),
            ("X-Forgejo-Delivery", "fj-1"),
            ("X-Forgejo-Signature", &sig),
        ]);
        Req::new("gitea", headers, &form)
    };
    let key = Key::new(SECRET.as_bytes());
    vec![
        send(gitea("push", "gt-test", &test, SECRET), PONG, ""),
        send(gitea("push", "gt-1", &push, SECRET), QUEUED, ""),
        Step::Ran {
            project: "gitea",
            n: 1,
            sha: SHA_A,
            delivery: "gt-1".into(),
            repo: "acme/gitea",
            pusher: "gitea-user",
        },
        send(gitea("push", "gt-1", &push, SECRET), DUPLICATE, ""),
        // The same signed body under a delivery id of the sender's choosing.
        send(gitea("push", "gt-replay", &push, SECRET), DUPLICATE, ""),
        send(
            gitea("push", "gt-2", &push, "wrong secret"),
            UNAUTHORIZED,
            "",
        ),
        send(Req::new("gitea", unsigned, &push), UNAUTHORIZED, ""),
        send(gitea("push", "gt-4", &dev, SECRET), IGNORED, "branch dev"),
        send(gitea("delete", "gt-5", &del, SECRET), IGNORED, "delete"),
        send(gitea("push", "gt-6", &gone, SECRET), IGNORED, "deleted"),
        send(gitea("push", "gt-7", &tag, SECRET), IGNORED, "tag v1.0"),
        send(
            forgejo(hmac_hex(&key, dev.as_bytes())),
            IGNORED,
            "branch dev",
        ),
        send(forgejo(hmac_hex(&key, form.as_bytes())), UNAUTHORIZED, ""),
    ]
}

// ---- GitLab ---------------------------------------------------------------

fn gitlab_body(git_ref: &str, before: &str, after: &str) -> String {
    let kind = if git_ref.starts_with("refs/tags/") {
        "tag_push"
    } else {
        "push"
    };
    json!({
        "object_kind": kind, "event_name": kind,
        "before": before, "after": after, "ref": git_ref, "ref_protected": true,
        "checkout_sha": if after == ZEROS { Value::Null } else { after.into() },
        "user_id": 4, "user_name": "John Smith", "user_username": "jsmith",
        "user_email": "john@example.com",
        "project_id": 15,
        "project": {"id": 15, "name": "gitlab", "namespace": "platform",
                    "path_with_namespace": "acme/platform/gitlab", "default_branch": "main",
                    "web_url": "https://gitlab.example.com/acme/platform/gitlab"},
        "commits": [{"id": after, "message": "Deploy me", "title": "Deploy me",
                     "author": {"name": "John Smith", "email": "john@example.com"}}],
        "total_commits_count": 1,
        "repository": {"name": "gitlab", "visibility_level": 0},
    })
    .to_string()
}

/// Headers as GitLab 17.4+ sends them with a secret token.
fn gitlab_headers(
    event: &str,
    idempotency_key: &str,
    token: Option<&str>,
) -> Vec<(String, String)> {
    // A new X-Gitlab-Webhook-UUID on every request, retries included.
    let request_uuid = SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
        .to_string();
    let mut v = h(&[
        ("Content-Type", "application/json"),
        ("User-Agent", "GitLab/17.5.1"),
        ("X-Gitlab-Event", event),
        ("X-Gitlab-Instance", "https://gitlab.example.com"),
        ("X-Gitlab-Webhook-UUID", &request_uuid),
        (
            "X-Gitlab-Event-UUID",
            "13792a34-cac6-4fda-95a8-c58e00a3954e",
        ),
        ("Idempotency-Key", idempotency_key),
    ]);
    if let Some(t) = token {
        v.push(("X-Gitlab-Token".into(), t.into()));
    }
    v
}

/// A GitLab delivery of `event` with Idempotency-Key `key` and `token`.
fn gitlab(event: &str, key: &str, body: &str, token: Option<&str>) -> Req {
    Req::new("gitlab", gitlab_headers(event, key, token), body)
}

fn gitlab_steps() -> Vec<Step> {
    let tok = Some(SECRET);
    let push = gitlab_body("refs/heads/main", SHA_OLD, SHA_A);
    let dev = gitlab_body("refs/heads/dev", SHA_OLD, SHA_B);
    let gone = gitlab_body("refs/heads/main", SHA_A, ZEROS);
    let tag = gitlab_body("refs/tags/v1.0.0", ZEROS, SHA_B);
    let mr = json!({"object_kind": "merge_request"}).to_string();
    vec![
        send(gitlab("Push Hook", "gl-1", &push, tok), QUEUED, ""),
        Step::Ran {
            project: "gitlab",
            n: 1,
            sha: SHA_A,
            delivery: "gl-1".into(),
            repo: "acme/platform/gitlab",
            pusher: "jsmith",
        },
        // A retry keeps its Idempotency-Key (its X-Gitlab-Webhook-UUID is new).
        send(gitlab("Push Hook", "gl-1", &push, tok), DUPLICATE, ""),
        // A captured delivery replayed under a new Idempotency-Key.
        send(gitlab("Push Hook", "gl-replay", &push, tok), DUPLICATE, ""),
        // Older GitLab's "Test → Tag push events" sent a branch push as a
        // Tag Push Hook: never a branch push, whatever its ref.
        send(
            gitlab("Tag Push Hook", "gl-tag-test", &push, tok),
            IGNORED,
            "Tag Push Hook of the non-tag ref refs/heads/main",
        ),
        send(
            gitlab("Push Hook", "gl-2", &push, Some("wrong secret")),
            UNAUTHORIZED,
            "",
        ),
        send(gitlab("Push Hook", "gl-3", &push, None), UNAUTHORIZED, ""),
        send(
            gitlab("Push Hook", "gl-4", &dev, tok),
            IGNORED,
            "branch dev",
        ),
        send(gitlab("Push Hook", "gl-5", &gone, tok), IGNORED, "deleted"),
        send(
            gitlab("Tag Push Hook", "gl-6", &tag, tok),
            IGNORED,
            "tag v1.0.0",
        ),
        send(
            gitlab("Merge Request Hook", "gl-7", &mr, tok),
            IGNORED,
            "Merge Request Hook",
        ),
    ]
}

/// Standard Webhooks headers for `push` signed with `key` at `at`, as a
/// GitLab `Push Hook`.
fn gitlab_signed(key: &Key, push: &str, at: SystemTime, id: &str) -> Req {
    let mut headers: Vec<(String, String)> =
        sign_headers(Provider::Gitlab, key, push.as_bytes(), at, id)
            .unwrap()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
    headers.extend(h(&[
        ("Content-Type", "application/json"),
        ("X-Gitlab-Event", "Push Hook"),
    ]));
    Req::new("gitlab-signed", headers, push)
}

/// A GitLab project whose secret is a signing token: Standard Webhooks
/// signatures (webhook-id, webhook-timestamp, webhook-signature).
fn gitlab_signed_steps(config: &Path, dir: &TestDir) -> Vec<Step> {
    let push = gitlab_body("refs/heads/main", SHA_OLD, SHA_A)
        .replace("acme/platform/gitlab", "acme/gitlab-signed");
    let file = dir.join("gitlab-push.json");
    std::fs::write(&file, &push).unwrap();
    // What `deployd sign --header` prints is what curl -H sends.
    let lines = cli_ok(
        config,
        &["sign", "gitlab-signed", file.to_str().unwrap(), "--header"],
        0,
    );
    let mut signed: Vec<(String, String)> = lines
        .lines()
        .map(|l| {
            let (k, v) = l
                .split_once(": ")
                .unwrap_or_else(|| panic!("not a header line: {l:?}"));
            (k.to_string(), v.to_string())
        })
        .collect();
    let names: Vec<&str> = signed.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        ["webhook-id", "webhook-timestamp", "webhook-signature"],
        "{lines}"
    );
    let id = signed[0].1.clone();
    signed.push(("Content-Type".into(), "application/json".into()));
    signed.push(("X-Gitlab-Event".into(), "Push Hook".into()));
    let as_signed = |body: &str| Req::new("gitlab-signed", signed.clone(), body);
    // A changed body under the same signature.
    let other = push.replace(SHA_A, SHA_B);
    // Signed with the right key: a new push, but 73 hours ago (over the
    // default max_age), and one ten minutes in the future (a clock that
    // is off).
    let key = Key::new(WHSEC.as_bytes());
    let stale = push.replace(SHA_A, SHA_B);
    let then = SystemTime::now() - Duration::from_secs(73 * 3600);
    let ahead = SystemTime::now() + Duration::from_secs(600);
    // Signed with another signing token.
    let forged_key = Key::new(b"whsec_b3RoZXIgc2lnbmluZyBrZXk=");
    vec![
        send(as_signed(&push), QUEUED, ""),
        Step::Ran {
            project: "gitlab-signed",
            n: 1,
            sha: SHA_A,
            delivery: id,
            repo: "acme/gitlab-signed",
            pusher: "jsmith",
        },
        // A replay within the window: the signed webhook-id makes it a duplicate.
        send(as_signed(&push), DUPLICATE, ""),
        send(as_signed(&other), UNAUTHORIZED, ""),
        // The same body signed again under a new message id.
        send(
            gitlab_signed(&key, &push, SystemTime::now(), "msg-again"),
            DUPLICATE,
            "",
        ),
        send(
            gitlab_signed(&key, &stale, then, "msg-stale"),
            IGNORED,
            "stale delivery",
        ),
        send(
            gitlab_signed(&key, &stale, ahead, "msg-ahead"),
            UNAUTHORIZED,
            "",
        ),
        send(
            gitlab_signed(&forged_key, &push, SystemTime::now(), "msg-forged"),
            UNAUTHORIZED,
            "",
        ),
        Step::Logged("signature timestamp outside the allowed window"),
    ]
}

// ---- Bitbucket Cloud ------------------------------------------------------

/// One entry of `push.changes`: `old` and `new` as (type, name, hash), `None` for null.
fn bb_change(old: Option<(&str, &str, &str)>, new: Option<(&str, &str, &str)>) -> Value {
    let state = |s: Option<(&str, &str, &str)>| match s {
        None => Value::Null,
        Some((kind, name, hash)) => json!({
            "type": kind, "name": name,
            "target": {"type": "commit", "hash": hash, "message": "Deploy me\n",
                       "author": {"type": "author", "raw": "Alex <alex@example.com>"}},
            "links": {"html": {"href": "https://bitbucket.org/acme/bitbucket/branch/x"}},
        }),
    };
    json!({
        "old": state(old), "new": state(new),
        "created": old.is_none(), "closed": new.is_none(), "forced": false, "truncated": false,
        "commits": [],
    })
}

fn bitbucket_body(changes: Vec<Value>) -> String {
    json!({
        "push": {"changes": changes},
        "actor": {"type": "user", "display_name": "Alex Doe", "nickname": "alexd",
                  "uuid": "{58e8bb1e-704e-4239-b082-b4ceaf8cc369}", "account_id": "557058:1"},
        "repository": {"type": "repository", "name": "bitbucket", "full_name": "acme/bitbucket",
                       "uuid": "{5b6cc2a1-4841-469e-aebe-b0b58e14ffd3}", "is_private": true},
    })
    .to_string()
}

/// A Bitbucket delivery of `event` with X-Request-UUID `request`, signed
/// with `secret`.
fn bitbucket(event: &str, request: &str, body: &str, secret: &str) -> Req {
    let sig = format!(
        "sha256={}",
        hmac_hex(&Key::new(secret.as_bytes()), body.as_bytes())
    );
    let headers = h(&[
        ("Content-Type", "application/json"),
        ("User-Agent", "Bitbucket-Webhooks/2.0"),
        ("X-Event-Key", event),
        ("X-Hook-UUID", "{0c1ff0b2-7d07-4f3e-a1c6-2e6c0f0b9d3e}"),
        ("X-Request-UUID", request),
        ("X-Attempt-Number", "1"),
        ("X-Hub-Signature", &sig),
    ]);
    Req::new("bitbucket", headers, body)
}

fn bitbucket_steps() -> Vec<Step> {
    // One push of a tag, another branch and the deploy branch: it deploys.
    let push = bitbucket_body(vec![
        bb_change(None, Some(("tag", "v1.0", SHA_B))),
        bb_change(
            Some(("branch", "dev", SHA_OLD)),
            Some(("branch", "dev", SHA_B)),
        ),
        bb_change(
            Some(("branch", "main", SHA_OLD)),
            Some(("branch", "main", SHA_A)),
        ),
    ]);
    // GitHub's header name does not count for Bitbucket.
    let sig = sign(SECRET, push.as_bytes());
    let github_style = h(&[
        ("Content-Type", "application/json"),
        ("X-Event-Key", "repo:push"),
        ("X-Request-UUID", "bb-3"),
        ("X-Hub-Signature-256", &sig),
    ]);
    let dev = bitbucket_body(vec![bb_change(
        Some(("branch", "dev", SHA_OLD)),
        Some(("branch", "dev", SHA_B)),
    )]);
    let gone = bitbucket_body(vec![bb_change(Some(("branch", "main", SHA_A)), None)]);
    let tag = bitbucket_body(vec![bb_change(
        None,
        Some(("annotated_tag", "v2.0", SHA_B)),
    )]);
    let pr = json!({"pullrequest": {"id": 1}}).to_string();
    vec![
        send(bitbucket("repo:push", "bb-1", &push, SECRET), QUEUED, ""),
        Step::Ran {
            project: "bitbucket",
            n: 1,
            sha: SHA_A,
            delivery: "bb-1".into(),
            repo: "acme/bitbucket",
            pusher: "alexd",
        },
        send(bitbucket("repo:push", "bb-1", &push, SECRET), DUPLICATE, ""),
        send(
            bitbucket("repo:push", "bb-replay", &push, SECRET),
            DUPLICATE,
            "",
        ),
        send(
            bitbucket("repo:push", "bb-2", &push, "wrong secret"),
            UNAUTHORIZED,
            "",
        ),
        send(Req::new("bitbucket", github_style, &push), UNAUTHORIZED, ""),
        send(
            bitbucket("repo:push", "bb-4", &dev, SECRET),
            IGNORED,
            "branch dev",
        ),
        send(
            bitbucket("repo:push", "bb-5", &gone, SECRET),
            IGNORED,
            "deleted",
        ),
        send(
            bitbucket("repo:push", "bb-6", &tag, SECRET),
            IGNORED,
            "tag v2.0",
        ),
        send(
            bitbucket("pullrequest:created", "bb-7", &pr, SECRET),
            IGNORED,
            "pullrequest:created",
        ),
    ]
}

#[test]
fn each_forge_deploys_in_its_own_format() {
    let dir = TestDir::new("forges");
    let config = forge_config(&dir);
    let d = Daemon::start(&config);
    for project in ["gitea", "gitlab", "gitlab-signed", "bitbucket"] {
        // Each table is built just before it is played: the GitLab
        // signatures carry the time they were made.
        let steps = match project {
            "gitea" => gitea_steps(),
            "gitlab" => gitlab_steps(),
            "gitlab-signed" => gitlab_signed_steps(&config, &dir),
            _ => bitbucket_steps(),
        };
        for step in steps {
            step.play(&d, &config);
        }
        // Only the one push to the deploy branch ran.
        assert_eq!(history(&config, project).len(), 1, "{project}");
    }
    // The log line names each delivery by the id the dedupe uses.
    for id in [
        "delivery=gt-1",
        "delivery=gl-1",
        "delivery=bb-1",
        "delivery=fj-1",
    ] {
        assert!(d.log().contains(id), "daemon log lacks {id}:\n{}", d.log());
    }
}

#[test]
fn sign_prints_what_each_forge_sends() {
    let dir = TestDir::new("forges-sign");
    let config = forge_config(&dir);
    let body = dir.join("body.json");
    std::fs::write(&body, b"{\"ref\":\"refs/heads/main\"}").unwrap();
    let file = body.to_str().unwrap();
    let hex = hmac_hex(
        &Key::new(SECRET.as_bytes()),
        b"{\"ref\":\"refs/heads/main\"}",
    );

    for (args, want) in [
        (&["sign", "gitea", file][..], format!("{hex}\n")),
        (
            &["sign", "gitea", file, "--header"],
            format!("X-Gitea-Signature: {hex}\n"),
        ),
        (&["sign", "bitbucket", file], format!("sha256={hex}\n")),
        (
            &["sign", "bitbucket", file, "--header"],
            format!("X-Hub-Signature: sha256={hex}\n"),
        ),
    ] {
        assert_eq!(cli_ok(&config, args, 0), want, "{args:?}");
    }

    // GitLab with a secret token: nothing to compute, and the secret is not printed.
    let args = ["sign", "gitlab", file];
    let out = cli(&config, &args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        explain(&config, &args, &out)
    );
    assert!(
        out.stdout.is_empty() && err.contains("X-Gitlab-Token") && !err.contains(SECRET),
        "{}",
        explain(&config, &args, &out)
    );
    // A signing token's signature needs its id and timestamp: --header.
    let args = ["sign", "gitlab-signed", file];
    let out = cli(&config, &args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        explain(&config, &args, &out)
    );
    assert!(
        out.stdout.is_empty() && err.contains("--header"),
        "{}",
        explain(&config, &args, &out)
    );
}

#[test]
fn check_refuses_unknown_providers_and_bad_signing_tokens() {
    let dir = TestDir::new("forges-check");
    let script = dir.script("deploy.sh", SCRIPT);
    let ok = forge_config(&dir);
    let out = cli_ok(&ok, &["check"], 0);
    for (name, provider) in [
        ("gitea", "gitea"),
        ("gitlab", "gitlab"),
        ("bitbucket", "bitbucket"),
    ] {
        assert!(
            out.contains(&format!("{name}: POST /hooks/{name}  ({provider} push")),
            "{out}"
        );
    }

    for (extra, key) in [
        ("provider = \"gogs\"", "projects.app.provider"),
        ("provider = \"GitHub\"", "projects.app.provider"),
    ] {
        let config = write_config(&dir, "", &project("app", &script, extra));
        let out = cli(&config, &["check"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{extra}: {}",
            explain(&config, &["check"], &out)
        );
        assert!(
            err.contains(key) && err.contains("github"),
            "{extra}: {err}"
        );
    }
    let bad = format!(
        "[projects.app]\nprovider = \"gitlab\"\nsecret = \"whsec_not base64!\"\nscript = \"{}\"\n",
        script.display()
    );
    let config = write_config(&dir, "", &bad);
    let out = cli(&config, &["check"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        explain(&config, &["check"], &out)
    );
    assert!(
        err.contains("projects.app.secret") && err.contains("whsec_"),
        "{err}"
    );
}

/// The newest run of `project` once it has `n` runs: it succeeded; its log.
#[track_caller]
fn nth_run_log(config: &Path, project: &str, n: usize) -> String {
    let runs = wait_runs(config, project, n, WAIT);
    let log = cli_ok(config, &["logs", project], 0);
    assert_eq!(runs[0]["status"], "succeeded", "{}\n{log}", runs[0]);
    log
}

/// A commit as GitHub, Gitea, Forgejo and GitLab list it.
fn listed(id: &str, message: &str, added: &[&str], removed: &[&str]) -> Value {
    json!({"id": id, "message": message, "timestamp": "2026-01-01T00:00:00Z",
           "author": {"name": "Dev", "email": "dev@example.com"},
           "added": added, "modified": [], "removed": removed})
}

#[test]
fn tags_paths_force_and_message_in_each_forges_shape() {
    let dir = TestDir::new("forges-triggers");
    let script = dir.script(
        "deploy.sh",
        "#!/bin/sh\necho \"tag=$DEPLOY_TAG ref=$DEPLOY_REF branch=[$DEPLOY_BRANCH] \
         forced=$DEPLOY_FORCED message=$DEPLOY_MESSAGE\"\n",
    );
    let triggers = "tags = [\"v*\"]\npaths = [\"api/**\"]";
    let config = write_config(
        &dir,
        "",
        &[
            project(
                "gitea",
                &script,
                &format!("provider = \"gitea\"\n{triggers}"),
            ),
            format!(
                "[projects.gitlab]\nprovider = \"gitlab\"\nsecret = \"{SECRET}\"\n\
                 script = \"{}\"\n{triggers}\n",
                script.display()
            ),
            project(
                "bitbucket",
                &script,
                &format!("provider = \"bitbucket\"\n{triggers}"),
            ),
        ]
        .concat(),
    );
    let d = Daemon::start(&config);
    let answer = |req: Req| post(d.addr, &req.path, &req.headers, req.body.as_bytes());

    // Gitea/Forgejo: a new tag; a docs-only push; a push removing an API file.
    let tag = gitea_body("refs/tags/v1.0", ZEROS, SHA_A);
    expect(
        answer(gitea("push", "t-1", &tag, SECRET)),
        202,
        "queued",
        "",
    );
    let log = nth_run_log(&config, "gitea", 1);
    assert!(
        log.contains("tag=v1.0 ref=refs/tags/v1.0 branch=[] forced=0"),
        "{log}"
    );
    let mut push: Value =
        serde_json::from_str(&gitea_body("refs/heads/main", SHA_OLD, SHA_B)).unwrap();
    let docs = listed(SHA_B, "docs: typo", &["docs/a.md"], &[]);
    push["commits"] = json!([docs]);
    push["head_commit"] = docs;
    push["total_commits"] = json!(1);
    let body = push.to_string();
    expect(
        answer(gitea("push", "t-2", &body, SECRET)),
        200,
        "ignored",
        "no changed path matches",
    );
    let api = listed(SHA_B, "api: drop x\n\nWhy.", &["docs/b.md"], &["api/x.rs"]);
    push["commits"] = json!([api]);
    push["head_commit"] = api;
    let body = push.to_string();
    expect(
        answer(gitea("push", "t-3", &body, SECRET)),
        202,
        "queued",
        "",
    );
    let log = nth_run_log(&config, "gitea", 2);
    assert!(
        log.contains("branch=[main] forced=0 message=api: drop x\n"),
        "{log}"
    );

    // GitLab: a Tag Push Hook; 25 commits of which 20 are listed; a skip marker.
    let tag = gitlab_body("refs/tags/v2.0", ZEROS, SHA_A);
    expect(
        answer(gitlab("Tag Push Hook", "k-1", &tag, Some(SECRET))),
        202,
        "queued",
        "",
    );
    let log = nth_run_log(&config, "gitlab", 1);
    assert!(
        log.contains("tag=v2.0 ref=refs/tags/v2.0 branch=[]"),
        "{log}"
    );
    let mut push: Value =
        serde_json::from_str(&gitlab_body("refs/heads/main", SHA_OLD, SHA_B)).unwrap();
    let commits: Vec<Value> = (0..20)
        .map(|i| {
            listed(
                if i == 19 { SHA_B } else { SHA_A },
                "docs",
                &["docs/a.md"],
                &[],
            )
        })
        .collect();
    push["commits"] = json!(commits);
    push["total_commits_count"] = json!(25);
    let body = push.to_string();
    expect(
        answer(gitlab("Push Hook", "k-2", &body, Some(SECRET))),
        202,
        "queued",
        "",
    );
    let log = nth_run_log(&config, "gitlab", 2);
    assert!(
        log.contains("=== deployd: paths not checked, deploying anyway: GitLab listed 20 of the push's 25 commits"),
        "{log}"
    );
    push["commits"] = json!([listed(SHA_B, "api: wip [skip deploy]", &["api/y.rs"], &[])]);
    push["total_commits_count"] = json!(1);
    let body = push.to_string();
    expect(
        answer(gitlab("Push Hook", "k-3", &body, Some(SECRET))),
        200,
        "ignored",
        "[skip deploy]",
    );

    // Bitbucket: a new tag; a forced push, which sends no file lists.
    let tag = bitbucket_body(vec![bb_change(None, Some(("tag", "v3.0", SHA_A)))]);
    expect(
        answer(bitbucket("repo:push", "b-1", &tag, SECRET)),
        202,
        "queued",
        "",
    );
    let log = nth_run_log(&config, "bitbucket", 1);
    assert!(
        log.contains("tag=v3.0 ref=refs/tags/v3.0 branch=[] forced=0 message=Deploy me"),
        "{log}"
    );
    let mut change = bb_change(
        Some(("branch", "main", SHA_OLD)),
        Some(("branch", "main", SHA_B)),
    );
    change["forced"] = json!(true);
    let body = bitbucket_body(vec![change]);
    expect(
        answer(bitbucket("repo:push", "b-2", &body, SECRET)),
        202,
        "queued",
        "",
    );
    let log = nth_run_log(&config, "bitbucket", 2);
    assert!(log.contains("branch=[main] forced=1"), "{log}");
    assert!(
        log.contains("paths not checked, deploying anyway: Bitbucket sends no file lists"),
        "{log}"
    );
}
