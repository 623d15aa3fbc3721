//! Deploy only what passed CI (`after_ci`): the real binary, signed pushes
//! and CI events in the forges' shapes (GitHub's `workflow_run` as octokit's
//! examples have it, GitLab's documented `Pipeline Hook`), and what the
//! script did, the answers and the history.

// Helpers here and in common/ are test code: a panic is the failure report.

use crate::common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(20);
const SHA_C: &str = "cccccccccccccccccccccccccccccccccccccccc";

/// A script that appends the commit it deployed to `deployed.txt`.
fn setup(name: &str, extra: &str) -> (TestDir, PathBuf) {
    let dir = TestDir::new(name);
    let out = dir.join("deployed.txt");
    let script = dir.script(
        "deploy.sh",
        &format!(
            "#!/bin/sh\necho \"$DEPLOY_SHA $DEPLOY_TRIGGER\" >> {}\n",
            out.display()
        ),
    );
    let config = write_config(&dir, "", &project("app", &script, extra));
    (dir, config)
}

fn deployed(dir: &TestDir) -> Vec<String> {
    std::fs::read_to_string(dir.join("deployed.txt"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// A `workflow_run` event in the shape of octokit's
/// `workflow_run/completed.payload.json` (the fields deployd reads, with
/// their neighbours): the workflow's name under `workflow`, the run's own
/// `name` empty.
pub(crate) fn workflow_run(
    action: &str,
    workflow: &str,
    sha: &str,
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
        "workflow": {"id": 2823525, "name": workflow, "path": format!(".github/workflows/{workflow}.yml"),
                     "state": "active"},
        "workflow_run": {
            "name": "", "id": 289782451, "run_attempt": 1, "run_number": 7,
            "event": "push", "status": status, "conclusion": conclusion,
            "head_branch": "main", "head_sha": sha,
            "head_commit": {"id": sha, "message": "build: check workflow run payload",
                            "timestamp": "2020-10-05T16:32:07Z",
                            "author": {"name": "Octo Cat", "email": "octocat@example.com"}},
            "head_repository": {"full_name": head_repo, "fork": head_repo != "acme/app"},
            "repository": {"full_name": "acme/app"},
            "pull_requests": [],
            "created_at": "2020-10-05T16:33:24Z", "updated_at": "2020-10-05T16:34:24Z",
        },
    })
    .to_string()
}

/// Sends a signed `workflow_run` event. The delivery id goes into a field
/// deployd does not read, so that two events of one run are two bodies (the
/// same body under a new id is a replay, answered `duplicate` by its MAC).
pub(crate) fn send_ci(d: &Daemon, body: &str, delivery: &str) -> (u16, Value) {
    let mut v: Value = serde_json::from_str(body).unwrap();
    v["workflow_run"]["check_suite_node_id"] = delivery.into();
    let body = v.to_string();
    let (code, text) = post(
        d.addr,
        "/hooks/app",
        &github_headers("workflow_run", delivery, &sign(SECRET, body.as_bytes())),
        body.as_bytes(),
    );
    (
        code,
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}")),
    )
}

pub(crate) fn green(d: &Daemon, workflow: &str, sha: &str, delivery: &str) -> (u16, Value) {
    send_ci(
        d,
        &workflow_run("completed", workflow, sha, Some("success"), "acme/app"),
        delivery,
    )
}

fn push(d: &Daemon, sha: &str, delivery: &str) -> (u16, Value) {
    let (code, text) = d.push("app", "refs/heads/main", sha, delivery);
    (
        code,
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}")),
    )
}

fn ignored(answer: (u16, Value), reason: &str) {
    assert_eq!(answer.0, 200, "{}", answer.1);
    assert_eq!(answer.1["status"], "ignored", "{}", answer.1);
    assert_eq!(answer.1["reason"], reason, "{}", answer.1);
}

fn status(config: &Path) -> String {
    cli_ok(config, &["status"], 0)
}

const GATED: &str = "after_ci = [\"CI\", \"Tests\"]";

#[test]
fn a_push_deploys_once_every_required_workflow_passed() {
    let (dir, config) = setup("ci-green", GATED);
    let d = Daemon::start(&config);
    let (code, a) = push(&d, SHA_A, "push-1");
    assert_eq!(code, 202, "{a}");
    assert_eq!(a["status"], "waiting");
    assert_eq!(a["waiting_for"], serde_json::json!(["CI", "Tests"]));
    assert_eq!(a["sha"], SHA_A);

    // Still going, another workflow, a fork's run: none of them count.
    ignored(
        send_ci(
            &d,
            &workflow_run("requested", "CI", SHA_A, None, "acme/app"),
            "ci-0",
        ),
        "in progress",
    );
    ignored(
        green(&d, "Lint", SHA_A, "ci-lint"),
        "not a required workflow",
    );
    ignored(
        send_ci(
            &d,
            &workflow_run("completed", "CI", SHA_A, Some("success"), "mallory/app"),
            "ci-fork",
        ),
        "fork",
    );

    let (code, a) = green(&d, "CI", SHA_A, "ci-1");
    assert_eq!(code, 200, "{a}");
    assert_eq!(a["status"], "waiting");
    assert_eq!(a["waiting_for"], serde_json::json!(["Tests"]));
    let s = status(&config);
    assert!(
        s.contains("waiting for CI on aaaaaaaaaaaa: CI passed, Tests pending ("),
        "{s}"
    );
    // The same event again, under its id or (a replay) another: counted once.
    assert_eq!(green(&d, "CI", SHA_A, "ci-1").1["status"], "duplicate");
    assert_eq!(
        green(&d, "CI", SHA_A, "ci-1-again").1["status"],
        "duplicate"
    );
    assert!(
        deployed(&dir).is_empty(),
        "nothing runs before the gate is green"
    );

    let (code, a) = green(&d, "Tests", SHA_A, "ci-2");
    assert_eq!(code, 202, "{a}");
    assert_eq!(a["status"], "queued");
    assert_eq!(a["sha"], SHA_A);
    assert_eq!(a["push_delivery"], "push-1");
    let runs = wait_runs(&config, "app", 1, LIMIT);
    assert_eq!(runs[0]["status"], "succeeded");
    assert_eq!(runs[0]["trigger"], "webhook");
    assert_eq!(runs[0]["delivery"], "push-1");
    assert_eq!(deployed(&dir), vec![format!("{SHA_A} webhook")]);
    assert!(!status(&config).contains("waiting for CI"));
    // Its CI reported once more deploys nothing again.
    ignored(
        green(&d, "Tests", SHA_A, "ci-3"),
        "not waiting for this commit",
    );
    // A CI event's body replayed under a new id is a duplicate by its MAC,
    // as a push's is.
    let body = workflow_run("completed", "Tests", SHA_A, Some("success"), "acme/app");
    let raw = |id: &str| {
        post(
            d.addr,
            "/hooks/app",
            &github_headers("workflow_run", id, &sign(SECRET, body.as_bytes())),
            body.as_bytes(),
        )
    };
    let (code, text) = raw("replay-1");
    assert!(
        code == 200 && text.contains("not waiting for this commit"),
        "{text}"
    );
    let (code, text) = raw("replay-2");
    assert!(code == 200 && text.contains("\"duplicate\""), "{text}");
}

#[test]
fn red_cancelled_and_skipped() {
    let (dir, config) = setup("ci-red", GATED);
    let d = Daemon::start(&config);
    push(&d, SHA_A, "push-a");
    green(&d, "CI", SHA_A, "ci-a1");
    let (code, a) = send_ci(
        &d,
        &workflow_run("completed", "Tests", SHA_A, Some("failure"), "acme/app"),
        "ci-a2",
    );
    assert_eq!(code, 200, "{a}");
    assert_eq!(a["status"], "ci_failed");
    assert_eq!(
        a["ci"],
        serde_json::json!({"workflow": "Tests", "conclusion": "failure"})
    );
    let runs = wait_runs(&config, "app", 1, LIMIT);
    assert_eq!(runs[0]["status"], "ci_failed");
    assert_eq!(runs[0]["sha"], SHA_A);
    assert_eq!(runs[0]["exit_code"], Value::Null);
    assert_eq!(
        runs[0]["ci"],
        serde_json::json!({"workflow": "Tests", "conclusion": "failure"})
    );
    let log = cli_ok(&config, &["logs", "app"], 0);
    assert!(log.contains("the script did not run"), "{log}");
    let table = cli_ok(&config, &["history", "app"], 0);
    assert!(
        table.contains("ci_failed") && table.contains("(CI: Tests failure)"),
        "{table}"
    );

    // Cancelled fails too; skipped passes.
    push(&d, SHA_B, "push-b");
    let (_, a) = send_ci(
        &d,
        &workflow_run("completed", "CI", SHA_B, Some("skipped"), "acme/app"),
        "ci-b1",
    );
    assert_eq!(a["status"], "waiting", "skipped passes: {a}");
    let (_, a) = send_ci(
        &d,
        &workflow_run("completed", "Tests", SHA_B, Some("cancelled"), "acme/app"),
        "ci-b2",
    );
    assert_eq!(a["status"], "ci_failed", "{a}");
    let runs = wait_runs(&config, "app", 2, LIMIT);
    assert_eq!(runs[0]["ci"]["conclusion"], "cancelled");

    push(&d, SHA_C, "push-c");
    send_ci(
        &d,
        &workflow_run("completed", "CI", SHA_C, Some("skipped"), "acme/app"),
        "ci-c1",
    );
    assert_eq!(green(&d, "Tests", SHA_C, "ci-c2").0, 202);
    wait_runs(&config, "app", 3, LIMIT);
    assert_eq!(
        deployed(&dir),
        vec![format!("{SHA_C} webhook")],
        "only the green one ran"
    );
}

#[test]
fn older_ci_never_deploys_after_a_newer_push() {
    let (dir, config) = setup("ci-order", GATED);
    let d = Daemon::start(&config);
    push(&d, SHA_A, "push-a");
    green(&d, "CI", SHA_A, "ci-a1");
    let (code, b) = push(&d, SHA_B, "push-b");
    assert_eq!((code, b["status"].as_str()), (202, Some("waiting")));
    // A's last workflow finishes after B's push.
    ignored(green(&d, "Tests", SHA_A, "ci-a2"), "superseded");
    green(&d, "CI", SHA_B, "ci-b1");
    assert_eq!(green(&d, "Tests", SHA_B, "ci-b2").0, 202);
    wait_runs(&config, "app", 1, LIMIT);
    // A's push, redelivered, is a duplicate: B's request holds its id.
    assert_eq!(push(&d, SHA_A, "push-a").1["status"], "duplicate");
    assert_eq!(
        history(&config, "app")[0]["coalesced"],
        serde_json::json!(["push-a"])
    );
    // And after B deployed, A's re-run is still older.
    ignored(green(&d, "CI", SHA_A, "ci-a3"), "superseded");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(deployed(&dir), vec![format!("{SHA_B} webhook")]);
    assert_eq!(history(&config, "app").len(), 1);
}

#[test]
fn ci_results_before_their_push_are_counted() {
    let (dir, config) = setup("ci-early", GATED);
    let d = Daemon::start(&config);
    push(&d, SHA_A, "push-a");
    // B's CI is in before B's push (forges promise no order).
    ignored(
        green(&d, "CI", SHA_B, "ci-b1"),
        "not waiting for this commit",
    );
    ignored(
        green(&d, "Tests", SHA_B, "ci-b2"),
        "not waiting for this commit",
    );
    let (code, b) = push(&d, SHA_B, "push-b");
    assert_eq!(code, 202, "{b}");
    assert_eq!(b["status"], "queued", "{b}");
    wait_runs(&config, "app", 1, LIMIT);
    assert_eq!(deployed(&dir), vec![format!("{SHA_B} webhook")]);
}

#[test]
fn a_push_still_waiting_after_ci_timeout_is_dropped() {
    let (dir, config) = setup("ci-timeout", &format!("{GATED}\nci_timeout = \"1s\""));
    let d = Daemon::start(&config);
    push(&d, SHA_A, "push-a");
    green(&d, "Tests", SHA_A, "ci-a1");
    let runs = wait_runs(&config, "app", 1, LIMIT);
    assert_eq!(runs[0]["status"], "ci_timeout");
    assert_eq!(runs[0]["ci"], serde_json::json!({"pending": ["CI"]}));
    d.wait_log("ci_timeout", LIMIT);
    // Its CI, late, deploys nothing.
    ignored(
        green(&d, "CI", SHA_A, "ci-a2"),
        "not waiting for this commit",
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(deployed(&dir).is_empty());
    assert!(!status(&config).contains("waiting for CI"));
}

#[test]
fn sigkill_while_waiting_loses_neither_the_push_nor_the_results() {
    let (dir, config) = setup("ci-kill", GATED);
    let mut d = Daemon::start(&config);
    push(&d, SHA_A, "push-a");
    green(&d, "CI", SHA_A, "ci-a1");
    d.kill9();
    // Read from disk without a daemon.
    let s = status(&config);
    assert!(
        s.contains("waiting for CI on aaaaaaaaaaaa: CI passed, Tests pending"),
        "{s}"
    );
    let js: Value = serde_json::from_str(&cli_ok(&config, &["status", "--json"], 0)).unwrap();
    assert_eq!(js[0]["waiting_for_ci"]["sha"], SHA_A);
    assert_eq!(
        js[0]["waiting_for_ci"]["workflows"],
        serde_json::json!([{"workflow": "CI", "state": "passed"}, {"workflow": "Tests", "state": "pending"}])
    );
    // The ids file is written without fsync (a machine crash may lose its
    // tail); the waiting push's own id is on disk in the gate file.
    std::fs::remove_file(dir.join("state/deliveries")).unwrap();
    let d = Daemon::start(&config);
    // The push and the CI event redelivered are still duplicates; the next
    // CI event completes the gate.
    assert_eq!(push(&d, SHA_A, "push-a").1["status"], "duplicate");
    assert_eq!(green(&d, "CI", SHA_A, "ci-a1").1["status"], "duplicate");
    assert_eq!(green(&d, "Tests", SHA_A, "ci-a2").0, 202);
    wait_runs(&config, "app", 1, LIMIT);
    assert_eq!(deployed(&dir), vec![format!("{SHA_A} webhook")]);
}

#[test]
fn the_operator_deploys_past_the_gate() {
    let (dir, config) = setup("ci-bypass", GATED);
    let d = Daemon::start(&config);
    push(&d, SHA_A, "push-a");
    // `deploy` without --sha runs at once; the push keeps waiting.
    cli_ok(&config, &["deploy", "app"], 0);
    assert!(status(&config).contains("waiting for CI on aaaaaaaaaaaa"));
    // `--sha` of the waiting push deploys it now, past its CI.
    cli_ok(&config, &["deploy", "app", "--sha", &SHA_A[..10]], 0);
    let runs = wait_runs(&config, "app", 2, LIMIT);
    assert_eq!(runs[0]["trigger"], "manual");
    assert_eq!(runs[0]["sha"], SHA_A);
    assert_eq!(runs[0]["delivery"], "push-a");
    assert_eq!(
        runs[0]["ci"],
        serde_json::json!({"pending": ["CI", "Tests"], "bypassed": true})
    );
    assert!(!status(&config).contains("waiting for CI"));
    // Its CI, later, deploys it no second time.
    green(&d, "CI", SHA_A, "ci-a1");
    ignored(
        green(&d, "Tests", SHA_A, "ci-a2"),
        "not waiting for this commit",
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        deployed(&dir),
        vec![" manual".to_string(), format!("{SHA_A} manual")]
    );
}

#[test]
fn a_hook_with_only_workflow_runs_deploys_green_commits_in_order() {
    let (dir, config) = setup("ci-only", "after_ci = [\"CI\"]");
    let d = Daemon::start(&config);
    // A's and B's runs start in push order; B's finishes first.
    for (sha, id) in [(SHA_A, "req-a"), (SHA_B, "req-b")] {
        ignored(
            send_ci(
                &d,
                &workflow_run("requested", "CI", sha, None, "acme/app"),
                id,
            ),
            "in progress",
        );
    }
    let (code, b) = green(&d, "CI", SHA_B, "ci-b");
    assert_eq!((code, b["status"].as_str()), (202, Some("queued")), "{b}");
    ignored(green(&d, "CI", SHA_A, "ci-a"), "superseded");
    let runs = wait_runs(&config, "app", 1, LIMIT);
    assert_eq!(runs[0]["ref"], "refs/heads/main");
    assert_eq!(runs[0]["pusher"], "Codertocat");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(deployed(&dir), vec![format!("{SHA_B} webhook")]);
}

/// GitLab's documented `Pipeline Hook` (the fields deployd reads, with
/// their neighbours).
fn pipeline(sha: &str, status: &str) -> String {
    serde_json::json!({
        "object_kind": "pipeline",
        "object_attributes": {
            "id": 31, "iid": 3, "ref": "main", "tag": false, "sha": sha,
            "before_sha": "bcbb5ec396a2c0f828686f14fac9b80b780504f2", "source": "push",
            "status": status, "detailed_status": status, "stages": ["build", "test"],
            "created_at": "2016-08-12 15:23:28 UTC", "finished_at": null, "duration": null,
        },
        "merge_request": null,
        "user": {"id": 1, "name": "Administrator", "username": "root"},
        "project": {"id": 1, "name": "app", "path_with_namespace": "acme/app", "default_branch": "main"},
        "commit": {"id": sha, "message": "test\n"},
        "builds": [],
    })
    .to_string()
}

fn gitlab_post(d: &Daemon, event: &str, body: &str, id: &str) -> (u16, Value) {
    let headers = vec![
        ("Content-Type".to_string(), "application/json".to_string()),
        ("X-Gitlab-Event".to_string(), event.to_string()),
        ("X-Gitlab-Token".to_string(), SECRET.to_string()),
        ("X-Gitlab-Webhook-UUID".to_string(), id.to_string()),
    ];
    let (code, text) = post(d.addr, "/hooks/app", &headers, body.as_bytes());
    (
        code,
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}")),
    )
}

#[test]
fn gitlab_waits_for_the_pipeline() {
    let (dir, config) = setup("ci-gitlab", "provider = \"gitlab\"\nafter_ci = true");
    let d = Daemon::start(&config);
    let push = serde_json::json!({
        "object_kind": "push", "ref": "refs/heads/main",
        "before": "95790bf891e76fee5e1747ab589903a6a1f80f22", "after": SHA_A,
        "user_username": "jsmith", "project": {"path_with_namespace": "acme/app"},
        "commits": [], "total_commits_count": 0,
    })
    .to_string();
    let (code, a) = gitlab_post(&d, "Push Hook", &push, "gl-1");
    assert_eq!((code, a["status"].as_str()), (202, Some("waiting")), "{a}");
    assert_eq!(a["waiting_for"], serde_json::json!(["pipeline"]));
    ignored(
        gitlab_post(&d, "Pipeline Hook", &pipeline(SHA_A, "running"), "gl-2"),
        "in progress",
    );
    let (code, a) = gitlab_post(&d, "Pipeline Hook", &pipeline(SHA_A, "success"), "gl-3");
    assert_eq!((code, a["status"].as_str()), (202, Some("queued")), "{a}");
    wait_runs(&config, "app", 1, LIMIT);
    assert_eq!(deployed(&dir), vec![format!("{SHA_A} webhook")]);
    let (code, a) = gitlab_post(&d, "Push Hook", &push.replace(SHA_A, SHA_B), "gl-4");
    assert_eq!((code, a["status"].as_str()), (202, Some("waiting")), "{a}");
    let (_, a) = gitlab_post(&d, "Pipeline Hook", &pipeline(SHA_B, "failed"), "gl-5");
    assert_eq!(a["status"], "ci_failed", "{a}");
    let runs = wait_runs(&config, "app", 2, LIMIT);
    assert_eq!(
        runs[0]["ci"],
        serde_json::json!({"workflow": "pipeline", "conclusion": "failed"})
    );
}

#[test]
fn ci_events_without_after_ci_are_ignored_and_check_shows_the_gate() {
    let dir = TestDir::new("ci-off");
    let script = dir.script("deploy.sh", "#!/bin/sh\n");
    let config = write_config(
        &dir,
        "",
        &(project("app", &script, "") + &project("gated", &script, GATED)),
    );
    let out = cli_ok(&config, &["check"], 0);
    assert!(out.contains("after CI: CI, Tests (at most 1h)"), "{out}");
    let d = Daemon::start(&config);
    ignored(
        green(&d, "CI", SHA_A, "ci-1"),
        "CI event: this project has no after_ci",
    );
}

#[test]
fn without_a_daemon_deploy_sha_takes_the_push_out_of_the_gate_too() {
    let (dir, config) = setup("ci-bypass-direct", GATED);
    let mut d = Daemon::start(&config);
    push(&d, SHA_A, "push-a");
    d.kill9();
    drop(d);
    cli_ok(&config, &["deploy", "app", "--sha", SHA_A], 0);
    let runs = wait_runs(&config, "app", 1, LIMIT);
    assert_eq!(runs[0]["trigger"], "manual");
    assert_eq!(runs[0]["ci"]["bypassed"], true);
    assert!(!status(&config).contains("waiting for CI"));
    // The next daemon does not deploy it again when its CI comes.
    let d = Daemon::start(&config);
    green(&d, "CI", SHA_A, "ci-a1");
    ignored(
        green(&d, "Tests", SHA_A, "ci-a2"),
        "not waiting for this commit",
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(deployed(&dir), vec![format!("{SHA_A} manual")]);
}

#[test]
fn a_tag_push_deploys_at_once() {
    let (dir, config) = setup("ci-tag", &format!("{GATED}\ntags = [\"v*\"]"));
    let d = Daemon::start(&config);
    let (code, text) = d.push("app", "refs/tags/v1.0", SHA_A, "tag-1");
    assert_eq!(code, 202, "{text}");
    assert!(text.contains("\"queued\""), "{text}");
    wait_runs(&config, "app", 1, LIMIT);
    assert_eq!(deployed(&dir), vec![format!("{SHA_A} webhook")]);
    // A branch push still waits.
    assert_eq!(push(&d, SHA_B, "push-b").1["status"], "waiting");
}
