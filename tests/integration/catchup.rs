//! Catch-up with the forge (docs/catch-up.md) against real git: a bare
//! `origin.git` served over `file://`, a developer clone that pushes while
//! no daemon runs, and a deploy checkout whose `origin` is the remote
//! deployd asks with `git ls-remote`.

use crate::common;
use common::*;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(30);

/// The repositories of one test ([`git::Repos`]: origin served over
/// `file://`), with what these tests do to them.
struct Repos(git::Repos);

impl std::ops::Deref for Repos {
    type Target = git::Repos;
    fn deref(&self) -> &git::Repos {
        &self.0
    }
}

impl Repos {
    /// `origin.git` with one commit on main, `dev/` that pushes to it and
    /// `app/` cloned from its `file://` URL.
    fn new(name: &str) -> Repos {
        Repos(git::Repos::new(name, "file.txt", "initial"))
    }

    /// Commits a change in `dev/` and pushes it; returns the commit.
    fn commit(&self, what: &str) -> String {
        self.commit_file("file.txt", what, what)
    }

    /// A script that appends `TRIGGER SHA BEFORE DELIVERY` to `runs.txt`,
    /// and a notification command that appends its stdin to `notes.txt`.
    fn config(&self, extra: &str, exit: i32) -> PathBuf {
        let runs = self.dir.join("runs.txt");
        let script = self.dir.script(
            "deploy.sh",
            &format!(
                "#!/bin/sh\necho \"$DEPLOY_TRIGGER $DEPLOY_SHA $DEPLOY_BEFORE [$DEPLOY_DELIVERY]\" >> {}\nexit {exit}\n",
                runs.display()
            ),
        );
        let notes = self.dir.join("notes.txt");
        let note = self.dir.script(
            "note.sh",
            &format!(
                "#!/bin/sh\ncat >> {}\necho >> {}\n",
                notes.display(),
                notes.display()
            ),
        );
        let projects = format!(
            "{}working_dir = \"{}\"\n\n[notify.cmd]\nkind = \"command\"\ncommand = [\"{}\"]\non = [\"succeeded\"]\n",
            project("app", &script, extra),
            self.app.display(),
            note.display()
        );
        write_config(&self.dir, "", &projects)
    }

    fn runs(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("runs.txt"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

/// `deployd status --json`'s `reconcile` object of `app`.
fn reconcile_of(config: &Path) -> Value {
    let out = cli_ok(config, &["status", "--json"], 0);
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    v[0]["reconcile"].clone()
}

fn stop(mut d: Daemon) {
    d.signal("TERM");
    let status = d.wait_exit(LIMIT);
    assert!(status.success(), "deployd serve: {status}\n{}", d.log());
}

/// The scripted scenario: pushes made while the daemon was stopped deploy
/// once, the newest of them, with trigger `catchup`, and the notification
/// says so; a start with nothing new deploys nothing.
#[test]
fn pushes_made_while_stopped_deploy_once_at_start() {
    let r = Repos::new("catchup-start");
    // No `remote`: the origin of working_dir.
    let config = r.config("", 0);
    let first = r.git(&r.dev, &["rev-parse", "HEAD"]);
    let d = Daemon::start(&config);
    let runs = wait_runs(&config, "app", 1, LIMIT);
    assert_eq!(runs[0]["trigger"], "catchup", "{runs:?}");
    assert_eq!(runs[0]["sha"], first.as_str());
    stop(d);

    r.commit("second");
    let third = r.commit("third");
    let d = Daemon::start(&config);
    let runs = wait_runs(&config, "app", 2, LIMIT);
    assert_eq!(runs[0]["trigger"], "catchup", "{runs:?}");
    assert_eq!(runs[0]["sha"], third.as_str());
    assert_eq!(runs[0]["before"], first.as_str());
    assert_eq!(runs[0]["delivery"], "");
    let note = poll(LIMIT, "the notification of the catch-up's run", || {
        let notes = std::fs::read_to_string(r.dir.join("notes.txt")).unwrap_or_default();
        match notes.lines().find(|l| l.contains(&third)) {
            Some(l) => Ok(l.to_string()),
            None => Err(notes),
        }
    });
    let note: Value = serde_json::from_str(&note).unwrap_or_else(|e| panic!("{e}: {note}"));
    assert_eq!(note["trigger"], "catchup", "{note}");
    assert_eq!(note["event"], "succeeded", "{note}");
    assert!(
        d.log().contains("catch-up: refs/heads/main is at"),
        "{}",
        d.log()
    );
    let rec = reconcile_of(&config);
    assert_eq!(rec["head"], third.as_str(), "{rec}");
    assert_eq!(rec["outcome"], "queued", "{rec}");
    let text = cli_ok(&config, &["status"], 0);
    assert!(
        text.contains("reconcile: ") && text.contains("(queued)"),
        "{text}"
    );
    stop(d);

    // Nothing new: a start deploys nothing.
    let d = Daemon::start(&config);
    poll(LIMIT, "a reconcile that finds the head deployed", || {
        let rec = reconcile_of(&config);
        if rec["outcome"] == "up to date" {
            Ok(())
        } else {
            Err(rec.to_string())
        }
    });
    stop(d);
    assert_eq!(
        r.runs(),
        vec![
            format!("catchup {first}  []"),
            format!("catchup {third} {first} []")
        ]
    );
    assert_eq!(history(&config, "app").len(), 2);
}

/// A remote that does not answer: logged once, recorded for `status`,
/// nothing deployed, and webhooks deploy as ever.
#[test]
fn a_failing_ls_remote_deploys_nothing_and_blocks_no_webhook() {
    let r = Repos::new("catchup-fail");
    let missing = r.dir.join("missing.git");
    let config = r.config(&format!("remote = \"file://{}\"\n", missing.display()), 0);
    let d = Daemon::start(&config);
    let rec = poll(LIMIT, "the failed reconcile in status", || {
        let rec = reconcile_of(&config);
        if rec["outcome"] == "failed" {
            Ok(rec)
        } else {
            Err(rec.to_string())
        }
    });
    assert!(
        rec["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{rec}"
    );
    assert_eq!(rec["head"], Value::Null);
    let (code, body) = d.push("app", "refs/heads/main", SHA_A, "d-1");
    assert_eq!(code, 202, "{body}");
    let runs = wait_runs(&config, "app", 1, LIMIT);
    assert_eq!(runs[0]["trigger"], "webhook");
    let lines = r.runs();
    assert!(
        lines.len() == 1 && lines[0].starts_with(&format!("webhook {SHA_A}")),
        "{lines:?}"
    );
    assert_eq!(
        d.log().matches("catch-up: git ls-remote").count(),
        1,
        "{}",
        d.log()
    );
    stop(d);
}

/// Pull mode: with an interval and no webhook at all, a push deploys; a
/// commit whose deploy failed is not deployed again at the next looks.
#[test]
fn pull_mode_deploys_pushes_and_does_not_retry_a_failed_commit() {
    let r = Repos::new("catchup-pull");
    let config = r.config("reconcile = \"1s\"\n", 1);
    let first = r.git(&r.dev, &["rev-parse", "HEAD"]);
    let d = Daemon::start(&config);
    wait_runs(&config, "app", 1, LIMIT);
    let second = r.commit("second");
    let runs = wait_runs(&config, "app", 2, LIMIT);
    assert_eq!(runs[0]["sha"], second.as_str(), "{runs:?}");
    assert_eq!(runs[0]["trigger"], "catchup");
    assert_eq!(runs[0]["status"], "failed");
    // Two more looks after the failed run: still two runs.
    let seen = reconcile_of(&config)["at"].clone();
    for _ in 0..2 {
        let before = reconcile_of(&config)["at"].clone();
        poll(LIMIT, "another look", || {
            let at = reconcile_of(&config)["at"].clone();
            if at != before {
                Ok(())
            } else {
                Err(at.to_string())
            }
        });
    }
    assert_ne!(reconcile_of(&config)["at"], seen);
    assert_eq!(reconcile_of(&config)["outcome"], "up to date");
    stop(d);
    assert_eq!(r.runs().len(), 2, "{:?} (first {first})", r.runs());
}

/// A reload that shortens the interval applies at once, not after the
/// interval it replaces.
#[test]
fn a_reload_that_shortens_the_interval_applies_at_once() {
    let r = Repos::new("catchup-reload");
    let config = r.config("reconcile = \"1h\"\n", 0);
    let d = Daemon::start(&config);
    wait_runs(&config, "app", 1, LIMIT);
    let second = r.commit("second");
    let config = r.config("reconcile = \"1s\"\n", 0);
    cli_ok(&config, &["reload"], 0);
    let runs = wait_runs(&config, "app", 2, LIMIT);
    assert_eq!(runs[0]["sha"], second.as_str(), "{runs:?}");
    assert_eq!(runs[0]["trigger"], "catchup");
    stop(d);
}

/// A gated project's catch-up waits for its CI as a push does; without a
/// report token the log says it waits for a CI event.
#[test]
fn a_gated_catchup_waits_for_ci() {
    let r = Repos::new("catchup-gated");
    let config = r.config("after_ci = [\"CI\"]\n", 0);
    let head = r.git(&r.dev, &["rev-parse", "HEAD"]);
    let d = Daemon::start(&config);
    d.wait_log("waits for a CI event", LIMIT);
    let out = cli_ok(&config, &["status", "--json"], 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["waiting_for_ci"]["sha"], head.as_str(), "{out}");
    assert_eq!(v[0]["reconcile"]["outcome"], "waiting for CI", "{out}");
    stop(d);
    assert!(history(&config, "app").is_empty());
}

/// A wrong `reconcile` or `remote` is a config error naming its key.
#[test]
fn wrong_keys_are_refused_by_check() {
    let r = Repos::new("catchup-check");
    for (extra, key) in [
        ("reconcile = \"sometimes\"\n", "projects.app.reconcile"),
        (
            "remote = \"--upload-pack=touch x\"\n",
            "projects.app.remote",
        ),
    ] {
        let config = r.config(extra, 0);
        let out = cli(&config, &["check"]);
        let (_, err) = expect_code(&out, 2, "deployd check");
        assert!(err.contains(key), "{err}");
    }
}

/// With `reconcile = "start"` there is no timer: once the start's
/// reconcile and its run are done, the daemon does not wake.
#[test]
fn after_the_start_reconcile_an_idle_daemon_never_wakes() {
    let r = Repos::new("catchup-idle");
    let config = r.config("reconcile = \"start\"\n", 0);
    let d = Daemon::start(&config);
    wait_runs(&config, "app", 1, LIMIT);
    d.wait_log("run 1 succeeded", LIMIT);
    let pid = d.child.id();
    // Measured over a window: the notification's send settles first.
    std::thread::sleep(Duration::from_millis(500));
    let before = switches(pid);
    sleeps_through(pid, &before, Duration::from_secs(3));
    stop(d);
}

/// One request the stand-in API received.
#[derive(Debug, Clone)]
struct Asked {
    method: String,
    /// With the query.
    target: String,
    /// Lower-case names.
    headers: Vec<(String, String)>,
}

impl Asked {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Method, path prefix, status, body.
type Route = (String, String, u16, String);

/// A forge's API on 127.0.0.1: answers a request whose path starts with a
/// route's prefix with that route's status and body (the last route added
/// first), anything else `200 {}`; records every request.
#[derive(Clone)]
struct FakeApi {
    addr: std::net::SocketAddr,
    routes: std::sync::Arc<std::sync::Mutex<Vec<Route>>>,
    asked: std::sync::Arc<std::sync::Mutex<Vec<Asked>>>,
}

impl FakeApi {
    fn start() -> FakeApi {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let api = FakeApi {
            addr: listener.local_addr().unwrap(),
            routes: Default::default(),
            asked: Default::default(),
        };
        let me = api.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let me = me.clone();
                std::thread::spawn(move || me.serve(stream));
            }
        });
        api
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Answers `method` requests to `prefix` with `status` and `body`.
    fn route(&self, method: &str, prefix: &str, status: u16, body: &str) {
        self.routes.lock().unwrap().insert(
            0,
            (
                method.to_string(),
                prefix.to_string(),
                status,
                body.to_string(),
            ),
        );
    }

    fn serve(&self, mut s: std::net::TcpStream) {
        use std::io::Write;
        let Some(HttpRequest {
            method,
            target,
            headers,
            ..
        }) = read_request(&mut s)
        else {
            return;
        };
        let (status, answer) = self
            .routes
            .lock()
            .unwrap()
            .iter()
            .find(|(m, p, _, _)| *m == method && target.starts_with(p.as_str()))
            .map(|(_, _, c, b)| (*c, b.clone()))
            .unwrap_or((200, "{}".to_string()));
        self.asked.lock().unwrap().push(Asked {
            method,
            target,
            headers,
        });
        let _ = write!(
            s,
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{answer}",
            answer.len()
        );
    }

    /// The requests so far whose method is `method` and target starts
    /// with `prefix`.
    fn asked(&self, method: &str, prefix: &str) -> Vec<Asked> {
        self.asked
            .lock()
            .unwrap()
            .iter()
            .filter(|a| a.method == method && a.target.starts_with(prefix))
            .cloned()
            .collect()
    }

    /// Waits for `n` such requests.
    fn wait(&self, method: &str, prefix: &str, n: usize) -> Vec<Asked> {
        poll(LIMIT, &format!("{n} {method} {prefix}"), || {
            let got = self.asked(method, prefix);
            if got.len() >= n {
                Ok(got)
            } else {
                Err(format!("{:#?}", self.asked.lock().unwrap()))
            }
        })
    }
}

/// A config of `r` for a gated project on `provider` whose report goes to
/// `api` with token `t0k`, and `extra` keys of its report table.
fn gated_config(r: &Repos, provider: &str, after_ci: &str, api: &FakeApi, extra: &str) -> PathBuf {
    let config = r.config(
        &format!("provider = \"{provider}\"\nafter_ci = {after_ci}\nci_timeout = \"10s\"\n"),
        0,
    );
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "\n[projects.app.report]\ntoken = \"t0k\"\napi_url = \"{}\"\n{extra}",
        api.url()
    ));
    std::fs::write(&config, text).unwrap();
    config
}

/// GitHub's `workflow_runs` list with one run of `head`.
fn gh_runs(head: &str, status: &str, conclusion: &str) -> String {
    let conclusion = if conclusion.is_empty() {
        "null".to_string()
    } else {
        format!("\"{conclusion}\"")
    };
    format!(
        r#"{{"total_count": 2, "workflow_runs": [
          {{"id": 30433642, "name": "CI", "head_branch": "main", "head_sha": "{head}",
            "run_attempt": 1, "status": "{status}", "conclusion": {conclusion},
            "event": "push", "head_repository": {{"full_name": "acme/app"}},
            "actor": {{"login": "octocat"}}}},
          {{"id": 30433641, "name": "Lint", "head_branch": "main", "head_sha": "{head}",
            "run_attempt": 1, "status": "completed", "conclusion": "failure"}}
        ]}}"#
    )
}

/// With a report token, a gated catch-up asks GitHub for its commit's
/// workflow runs, again while they run, and deploys once CI passed.
#[test]
fn a_gated_catchup_deploys_when_githubs_api_says_ci_passed() {
    let r = Repos::new("catchup-api-pass");
    let head = r.git(&r.dev, &["rev-parse", "HEAD"]);
    let api = FakeApi::start();
    let runs = "/repos/acme/app/actions/runs";
    api.route("GET", runs, 200, &gh_runs(&head, "in_progress", ""));
    let config = gated_config(&r, "github", "[\"CI\"]", &api, "");
    let d = Daemon::start(&config);
    d.wait_log("asks the forge's API for its CI", LIMIT);
    let first = api.wait("GET", runs, 1);
    let a = &first[0];
    assert_eq!(
        a.target,
        format!("{runs}?head_sha={head}&per_page=100"),
        "{a:?}"
    );
    assert_eq!(a.header("authorization"), Some("Bearer t0k"), "{a:?}");
    assert_eq!(a.header("accept"), Some("application/vnd.github+json"));
    assert_eq!(a.header("x-github-api-version"), Some("2022-11-28"));
    assert!(history(&config, "app").is_empty(), "still running: no run");
    // Asked again at its pace (a tenth of ci_timeout: 1s) while it waits.
    api.route("GET", runs, 200, &gh_runs(&head, "completed", "success"));
    let done = wait_runs(&config, "app", 1, LIMIT);
    assert_eq!(done[0]["trigger"], "catchup", "{done:?}");
    assert_eq!(done[0]["sha"], head.as_str());
    assert_eq!(done[0]["status"], "succeeded", "{done:?}");
    assert!(api.asked("GET", runs).len() >= 2);
    // Gone from the gate: no more asking.
    let n = api.asked("GET", runs).len();
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(api.asked("GET", runs).len(), n, "asked after it went");
    stop(d);
    assert_eq!(r.runs(), vec![format!("catchup {head}  []")]);
}

/// A failed workflow on GitHub: the catch-up is recorded `ci_failed` and
/// its script never runs.
#[test]
fn a_gated_catchup_is_ci_failed_when_githubs_api_says_ci_failed() {
    let r = Repos::new("catchup-api-fail");
    let head = r.git(&r.dev, &["rev-parse", "HEAD"]);
    let api = FakeApi::start();
    let runs = "/repos/acme/app/actions/runs";
    api.route("GET", runs, 200, &gh_runs(&head, "completed", "failure"));
    let config = gated_config(&r, "github", "[\"CI\"]", &api, "");
    let d = Daemon::start(&config);
    let done = wait_runs(&config, "app", 1, LIMIT);
    assert_eq!(done[0]["status"], "ci_failed", "{done:?}");
    assert_eq!(done[0]["trigger"], "catchup", "{done:?}");
    assert_eq!(done[0]["ci"]["workflow"], "CI", "{done:?}");
    assert_eq!(done[0]["ci"]["conclusion"], "failure", "{done:?}");
    stop(d);
    assert!(r.runs().is_empty(), "{:?}", r.runs());
}

/// Gitea, GitLab and Bitbucket are asked with their own calls and
/// headers; a pass deploys, a failure is `ci_failed`.
#[test]
fn every_forges_api_is_asked_for_a_gated_catchup() {
    for (provider, after_ci, verdict) in [
        ("gitea", "[\"CI\"]", "passed"),
        ("gitlab", "true", "passed"),
        ("gitlab", "true", "failed"),
        ("bitbucket", "[\"build\"]", "passed"),
        ("bitbucket", "[\"build\"]", "failed"),
    ] {
        let r = Repos::new(&format!("catchup-api-{provider}-{verdict}"));
        let head = r.git(&r.dev, &["rev-parse", "HEAD"]);
        let pass = verdict == "passed";
        let api = FakeApi::start();
        let (path, query, auth, body) = match provider {
            "gitea" => (
                "/repos/acme/app/actions/runs".to_string(),
                format!("?head_sha={head}&per_page=100"),
                "token t0k",
                gh_runs(&head, "completed", if pass { "success" } else { "failure" }),
            ),
            "gitlab" => (
                "/projects/acme%2Fapp/pipelines".to_string(),
                format!("?sha={head}&per_page=100"),
                "t0k",
                format!(
                    r#"[{{"id": 47, "iid": 12, "project_id": 3, "sha": "{head}", "ref": "main",
                        "status": "{}", "source": "push"}}]"#,
                    if pass { "success" } else { "failed" }
                ),
            ),
            _ => (
                format!("/2.0/repositories/acme/app/commit/{head}/statuses"),
                "?pagelen=100".to_string(),
                "Bearer t0k",
                format!(
                    r#"{{"pagelen": 100, "page": 1, "size": 1, "values": [
                        {{"type": "build", "uuid": "{{u-1}}", "key": "build", "refname": null,
                          "state": "{}", "name": "build", "updated_on": "2024-05-01T10:00:00Z"}}]}}"#,
                    if pass { "SUCCESSFUL" } else { "FAILED" }
                ),
            ),
        };
        api.route("GET", &path, 200, &body);
        let config = gated_config(&r, provider, after_ci, &api, "");
        let d = Daemon::start(&config);
        let done = wait_runs(&config, "app", 1, LIMIT);
        let a = &api.wait("GET", &path, 1)[0];
        assert_eq!(a.target, format!("{path}{query}"), "{provider}: {a:?}");
        let got = if provider == "gitlab" {
            a.header("private-token")
        } else {
            a.header("authorization")
        };
        assert_eq!(got, Some(auth), "{provider}: {a:?}");
        assert_eq!(done[0]["trigger"], "catchup", "{provider}: {done:?}");
        let want = if pass { "succeeded" } else { "ci_failed" };
        assert_eq!(done[0]["status"], want, "{provider} {verdict}: {done:?}");
        stop(d);
        assert_eq!(
            r.runs().len(),
            usize::from(pass),
            "{provider}: {:?}",
            r.runs()
        );
    }
}

/// With `hook_id`, the first start only records when it looked; the next
/// start asks GitHub to redeliver exactly the deliveries that failed since
/// then and did not succeed later.
#[test]
fn github_redelivers_the_failed_deliveries_since_the_last_start() {
    let r = Repos::new("catchup-redeliver");
    let api = FakeApi::start();
    let hooks = "/repos/acme/app/hooks/4242/deliveries";
    api.route("GET", hooks, 200, "[]");
    let config = r.config("reconcile = \"off\"\n", 0);
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "\n[projects.app.report]\ntoken = \"t0k\"\napi_url = \"{}\"\nhook_id = 4242\n",
        api.url()
    ));
    std::fs::write(&config, text).unwrap();
    let d = Daemon::start(&config);
    d.wait_log("GitHub redelivery: first look at hook 4242", LIMIT);
    stop(d);
    assert!(
        api.asked("GET", hooks).is_empty(),
        "the first look lists nothing"
    );

    // While it was stopped: a failed push, a failed one redelivered with
    // success, one failed twice, and an old failure from before.
    // After the first start's look (kept to the millisecond), before the
    // next one.
    // A millisecond apart, in the order of their ids, as GitHub lists them.
    let now = std::time::SystemTime::now();
    let at = |id: u64| {
        humantime::format_rfc3339_millis(now - Duration::from_millis(20 - id)).to_string()
    };
    let old =
        humantime::format_rfc3339_seconds(std::time::SystemTime::now() - Duration::from_secs(3600));
    let listed = format!(
        r#"[
          {{"id": 16, "guid": "g-twice", "delivered_at": "{}", "redelivery": true,
            "status_code": 502, "event": "push"}},
          {{"id": 15, "guid": "g-fixed", "delivered_at": "{}", "redelivery": true,
            "status_code": 202, "event": "push"}},
          {{"id": 14, "guid": "g-twice", "delivered_at": "{}", "redelivery": false,
            "status_code": 503, "event": "push"}},
          {{"id": 13, "guid": "g-fixed", "delivered_at": "{}", "redelivery": false,
            "status_code": 0, "event": "push"}},
          {{"id": 12, "guid": "g-down", "delivered_at": "{}", "redelivery": false,
            "status_code": 0, "event": "workflow_run"}},
          {{"id": 11, "guid": "g-ok", "delivered_at": "{}", "redelivery": false,
            "status_code": 202, "event": "push"}},
          {{"id": 10, "guid": "g-old", "delivered_at": "{old}", "redelivery": false,
            "status_code": 500, "event": "push"}}
        ]"#,
        at(16),
        at(15),
        at(14),
        at(13),
        at(12),
        at(11)
    );
    api.route("GET", hooks, 200, &listed);
    api.route("POST", hooks, 202, "{}");
    let d = Daemon::start(&config);
    d.wait_log("GitHub redelivery: asked for 2 of 2", LIMIT);
    let list = api.wait("GET", hooks, 1);
    assert_eq!(list[0].target, format!("{hooks}?per_page=100"), "{list:?}");
    assert_eq!(list[0].header("authorization"), Some("Bearer t0k"));
    assert_eq!(list[0].header("x-github-api-version"), Some("2022-11-28"));
    let posted: Vec<String> = api
        .asked("POST", hooks)
        .iter()
        .map(|a| a.target.clone())
        .collect();
    assert_eq!(
        posted,
        vec![
            format!("{hooks}/12/attempts"),
            format!("{hooks}/16/attempts")
        ]
    );
    stop(d);
}

/// `hook_id` is GitHub's: `check` refuses it for another forge.
#[test]
fn hook_id_is_refused_off_github() {
    let r = Repos::new("catchup-hook-id");
    let api = FakeApi::start();
    let config = gated_config(&r, "gitlab", "true", &api, "hook_id = 7\n");
    let out = cli(&config, &["check"]);
    let (_, err) = expect_code(&out, 2, "deployd check");
    assert!(err.contains("projects.app.report.hook_id"), "{err}");
}
