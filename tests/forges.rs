//! Gitea/Forgejo, GitLab and Bitbucket Cloud: one daemon, one config with a
//! project per forge, each receiving deliveries in its forge's own format
//! (headers, signature, payload shape). Each deploys the right commit with the
//! same DEPLOY_* variables a GitHub push gets, refuses a wrong secret (401),
//! ignores other branches, deletions and tags with a reason, and answers a
//! redelivery (by its own delivery-id header) `duplicate`.

#![allow(clippy::unwrap_used)]

mod common;
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

fn gitea_post(d: &Daemon, event: &str, delivery: &str, body: &str, secret: &str) -> (u16, String) {
    post(
        d.addr,
        "/hooks/gitea",
        &gitea_headers(event, delivery, body, secret),
        body.as_bytes(),
    )
}

fn exercise_gitea(d: &Daemon, config: &Path) {
    // "Test delivery": a push with before == after; answered like GitHub's ping.
    let test = gitea_body("refs/heads/main", ZEROS, ZEROS);
    expect(
        gitea_post(d, "push", "gt-test", &test, SECRET),
        200,
        "pong",
        "",
    );

    let push = gitea_body("refs/heads/main", SHA_OLD, SHA_A);
    expect(
        gitea_post(d, "push", "gt-1", &push, SECRET),
        202,
        "queued",
        "",
    );
    expect_run(
        config,
        "gitea",
        1,
        SHA_A,
        "gt-1",
        "acme/gitea",
        "gitea-user",
    );
    expect(
        gitea_post(d, "push", "gt-1", &push, SECRET),
        200,
        "duplicate",
        "",
    );

    expect(
        gitea_post(d, "push", "gt-2", &push, "wrong secret"),
        401,
        "invalid signature",
        "",
    );
    let mut unsigned = gitea_headers("push", "gt-3", &push, SECRET);
    unsigned.retain(|(k, _)| !k.contains("Signature"));
    expect(
        post(d.addr, "/hooks/gitea", &unsigned, push.as_bytes()),
        401,
        "invalid signature",
        "",
    );

    let dev = gitea_body("refs/heads/dev", SHA_OLD, SHA_B);
    expect(
        gitea_post(d, "push", "gt-4", &dev, SECRET),
        200,
        "ignored",
        "branch dev",
    );
    // Gitea reports a deleted branch as a `delete` event; a push to zeros
    // would be one too.
    let del = json!({"ref": "main", "ref_type": "branch", "pusher_type": "user"}).to_string();
    expect(
        gitea_post(d, "delete", "gt-5", &del, SECRET),
        200,
        "ignored",
        "delete",
    );
    let gone = gitea_body("refs/heads/main", SHA_A, ZEROS);
    expect(
        gitea_post(d, "push", "gt-6", &gone, SECRET),
        200,
        "ignored",
        "deleted",
    );
    let tag = gitea_body("refs/tags/v1.0", ZEROS, SHA_B);
    expect(
        gitea_post(d, "push", "gt-7", &tag, SECRET),
        200,
        "ignored",
        "tag v1.0",
    );

    // Forgejo, form content type: the signature covers the JSON of the
    // `payload` field (as Forgejo computes it), not the encoded body.
    let form: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &dev)
        .finish();
    let forgejo = |sig: String| {
        h(&[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("X-Forgejo-Event", "push"),
            ("X-Forgejo-Delivery", "fj-1"),
            ("X-Forgejo-Signature", &sig),
        ])
    };
    let key = Key::new(SECRET.as_bytes());
    let right = forgejo(hmac_hex(&key, dev.as_bytes()));
    expect(
        post(d.addr, "/hooks/gitea", &right, form.as_bytes()),
        200,
        "ignored",
        "branch dev",
    );
    let raw = forgejo(hmac_hex(&key, form.as_bytes()));
    expect(
        post(d.addr, "/hooks/gitea", &raw, form.as_bytes()),
        401,
        "invalid signature",
        "",
    );

    assert_eq!(history(config, "gitea").len(), 1);
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

fn gitlab_post(
    d: &Daemon,
    event: &str,
    key: &str,
    body: &str,
    token: Option<&str>,
) -> (u16, String) {
    post(
        d.addr,
        "/hooks/gitlab",
        &gitlab_headers(event, key, token),
        body.as_bytes(),
    )
}

fn exercise_gitlab(d: &Daemon, config: &Path) {
    let tok = Some(SECRET);
    let push = gitlab_body("refs/heads/main", SHA_OLD, SHA_A);
    expect(
        gitlab_post(d, "Push Hook", "gl-1", &push, tok),
        202,
        "queued",
        "",
    );
    expect_run(
        config,
        "gitlab",
        1,
        SHA_A,
        "gl-1",
        "acme/platform/gitlab",
        "jsmith",
    );
    // A retry keeps its Idempotency-Key (its X-Gitlab-Webhook-UUID is new).
    expect(
        gitlab_post(d, "Push Hook", "gl-1", &push, tok),
        200,
        "duplicate",
        "",
    );

    expect(
        gitlab_post(d, "Push Hook", "gl-2", &push, Some("wrong secret")),
        401,
        "invalid signature",
        "",
    );
    expect(
        gitlab_post(d, "Push Hook", "gl-3", &push, None),
        401,
        "invalid signature",
        "",
    );

    let dev = gitlab_body("refs/heads/dev", SHA_OLD, SHA_B);
    expect(
        gitlab_post(d, "Push Hook", "gl-4", &dev, tok),
        200,
        "ignored",
        "branch dev",
    );
    let gone = gitlab_body("refs/heads/main", SHA_A, ZEROS);
    expect(
        gitlab_post(d, "Push Hook", "gl-5", &gone, tok),
        200,
        "ignored",
        "deleted",
    );
    let tag = gitlab_body("refs/tags/v1.0.0", ZEROS, SHA_B);
    expect(
        gitlab_post(d, "Tag Push Hook", "gl-6", &tag, tok),
        200,
        "ignored",
        "tag v1.0.0",
    );
    let mr = json!({"object_kind": "merge_request"}).to_string();
    expect(
        gitlab_post(d, "Merge Request Hook", "gl-7", &mr, tok),
        200,
        "ignored",
        "Merge Request Hook",
    );

    assert_eq!(history(config, "gitlab").len(), 1);
}

/// A GitLab project whose secret is a signing token: Standard Webhooks
/// signatures (webhook-id, webhook-timestamp, webhook-signature).
fn exercise_gitlab_signed(d: &Daemon, config: &Path, dir: &TestDir) {
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
    let path = "/hooks/gitlab-signed";
    expect(
        post(d.addr, path, &signed, push.as_bytes()),
        202,
        "queued",
        "",
    );
    expect_run(
        config,
        "gitlab-signed",
        1,
        SHA_A,
        &id,
        "acme/gitlab-signed",
        "jsmith",
    );
    // A replay within the window: the signed webhook-id makes it a duplicate.
    expect(
        post(d.addr, path, &signed, push.as_bytes()),
        200,
        "duplicate",
        "",
    );
    // A changed body under the same signature.
    let other = push.replace(SHA_A, SHA_B);
    expect(
        post(d.addr, path, &signed, other.as_bytes()),
        401,
        "invalid signature",
        "",
    );

    // Signed with the right key, but ten minutes ago: a replay.
    let key = Key::new(WHSEC.as_bytes());
    let then = SystemTime::now() - Duration::from_secs(600);
    let mut stale: Vec<(String, String)> =
        sign_headers(Provider::Gitlab, &key, push.as_bytes(), then, "msg-stale")
            .unwrap()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
    stale.extend(h(&[
        ("Content-Type", "application/json"),
        ("X-Gitlab-Event", "Push Hook"),
    ]));
    expect(
        post(d.addr, path, &stale, push.as_bytes()),
        401,
        "invalid signature",
        "",
    );
    // Signed with another signing token.
    let forged_key = Key::new(b"whsec_b3RoZXIgc2lnbmluZyBrZXk=");
    let mut forged: Vec<(String, String)> = sign_headers(
        Provider::Gitlab,
        &forged_key,
        push.as_bytes(),
        SystemTime::now(),
        "msg-forged",
    )
    .unwrap()
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    forged.extend(h(&[
        ("Content-Type", "application/json"),
        ("X-Gitlab-Event", "Push Hook"),
    ]));
    expect(
        post(d.addr, path, &forged, push.as_bytes()),
        401,
        "invalid signature",
        "",
    );
    d.wait_log("signature timestamp outside the allowed window", WAIT);

    assert_eq!(history(config, "gitlab-signed").len(), 1);
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

fn bitbucket_post(
    d: &Daemon,
    event: &str,
    request: &str,
    body: &str,
    secret: &str,
) -> (u16, String) {
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
    post(d.addr, "/hooks/bitbucket", &headers, body.as_bytes())
}

fn exercise_bitbucket(d: &Daemon, config: &Path) {
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
    expect(
        bitbucket_post(d, "repo:push", "bb-1", &push, SECRET),
        202,
        "queued",
        "",
    );
    expect_run(
        config,
        "bitbucket",
        1,
        SHA_A,
        "bb-1",
        "acme/bitbucket",
        "alexd",
    );
    expect(
        bitbucket_post(d, "repo:push", "bb-1", &push, SECRET),
        200,
        "duplicate",
        "",
    );

    expect(
        bitbucket_post(d, "repo:push", "bb-2", &push, "wrong secret"),
        401,
        "invalid signature",
        "",
    );
    // GitHub's header name does not count for Bitbucket.
    let sig = sign(SECRET, push.as_bytes());
    let github_style = h(&[
        ("Content-Type", "application/json"),
        ("X-Event-Key", "repo:push"),
        ("X-Request-UUID", "bb-3"),
        ("X-Hub-Signature-256", &sig),
    ]);
    expect(
        post(d.addr, "/hooks/bitbucket", &github_style, push.as_bytes()),
        401,
        "invalid signature",
        "",
    );

    let dev = bitbucket_body(vec![bb_change(
        Some(("branch", "dev", SHA_OLD)),
        Some(("branch", "dev", SHA_B)),
    )]);
    expect(
        bitbucket_post(d, "repo:push", "bb-4", &dev, SECRET),
        200,
        "ignored",
        "branch dev",
    );
    let gone = bitbucket_body(vec![bb_change(Some(("branch", "main", SHA_A)), None)]);
    expect(
        bitbucket_post(d, "repo:push", "bb-5", &gone, SECRET),
        200,
        "ignored",
        "deleted",
    );
    let tag = bitbucket_body(vec![bb_change(
        None,
        Some(("annotated_tag", "v2.0", SHA_B)),
    )]);
    expect(
        bitbucket_post(d, "repo:push", "bb-6", &tag, SECRET),
        200,
        "ignored",
        "tag v2.0",
    );
    let pr = json!({"pullrequest": {"id": 1}}).to_string();
    expect(
        bitbucket_post(d, "pullrequest:created", "bb-7", &pr, SECRET),
        200,
        "ignored",
        "pullrequest:created",
    );

    assert_eq!(history(config, "bitbucket").len(), 1);
}

#[test]
fn each_forge_deploys_in_its_own_format() {
    let dir = TestDir::new("forges");
    let config = forge_config(&dir);
    let d = Daemon::start(&config);
    exercise_gitea(&d, &config);
    exercise_gitlab(&d, &config);
    exercise_gitlab_signed(&d, &config, &dir);
    exercise_bitbucket(&d, &config);
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

    assert_eq!(
        cli_ok(&config, &["sign", "gitea", file], 0),
        format!("{hex}\n")
    );
    assert_eq!(
        cli_ok(&config, &["sign", "gitea", file, "--header"], 0),
        format!("X-Gitea-Signature: {hex}\n")
    );
    assert_eq!(
        cli_ok(&config, &["sign", "bitbucket", file], 0),
        format!("sha256={hex}\n")
    );
    assert_eq!(
        cli_ok(&config, &["sign", "bitbucket", file, "--header"], 0),
        format!("X-Hub-Signature: sha256={hex}\n")
    );

    // GitLab with a secret token: nothing to compute, and the secret is not printed.
    let out = cli(&config, &["sign", "gitlab", file]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        out.stdout.is_empty() && err.contains("X-Gitlab-Token") && !err.contains(SECRET),
        "{err}"
    );
    // A signing token's signature needs its id and timestamp: --header.
    let out = cli(&config, &["sign", "gitlab-signed", file]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(out.stdout.is_empty() && err.contains("--header"), "{err}");
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
        assert_eq!(out.status.code(), Some(2), "{extra}: {err}");
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
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("projects.app.secret") && err.contains("whsec_"),
        "{err}"
    );
}
