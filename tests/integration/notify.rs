//! Closing the loop: script outputs (`DEPLOY_OUTPUT`), notifications to
//! every kind of target and commit statuses on every forge, checked against
//! real HTTP servers on 127.0.0.1 that record what they receive.

use crate::common;
use common::*;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{KeyInit, Mac};
use serde_json::Value;

const T: Duration = Duration::from_secs(30);
/// A third commit: the same push twice is a replay, answered `duplicate`.
const SHA_C: &str = "cccccccccccccccccccccccccccccccccccccccc";

#[test]
fn script_outputs_are_recorded_and_shown() {
    let dir = TestDir::new("outputs");
    let script = dir.script(
        "deploy.sh",
        "#!/bin/sh\n\
         echo \"url=https://app.example.com\" >>\"$DEPLOY_OUTPUT\"\n\
         echo \"sha=cafe0123\" >>\"$DEPLOY_OUTPUT\"\n\
         echo \"summary=v1.2 is out\" >>\"$DEPLOY_OUTPUT\"\n\
         echo \"password=hunter2\" >>\"$DEPLOY_OUTPUT\"\n\
         echo \"no equals sign\" >>\"$DEPLOY_OUTPUT\"\n",
    );
    let config = write_config(&dir, "", &project("app", &script, ""));
    cli_ok(&config, &["deploy", "app"], 0);
    let runs = history(&config, "app");
    let outputs = &runs[0]["outputs"];
    assert_eq!(outputs["url"], "https://app.example.com", "{outputs}");
    assert_eq!(outputs["sha"], "cafe0123");
    assert_eq!(outputs["summary"], "v1.2 is out");
    assert_eq!(outputs.as_object().unwrap().len(), 3, "{outputs}");
    let log = std::fs::read_to_string(Path::new(runs[0]["log"].as_str().unwrap())).unwrap();
    assert!(log.contains("unknown key \"password\" left out"), "{log}");
    assert!(log.contains("line 5: not key=value"), "{log}");
    assert!(!log.contains("hunter2"), "{log}");
    // The file is gone once read.
    assert!(!Path::new(&runs[0]["log"].as_str().unwrap().replace(".log", ".output")).exists());
    let shown = cli_ok(&config, &["history", "app"], 0);
    assert!(shown.contains("url: https://app.example.com"), "{shown}");
    let status = cli_ok(&config, &["status"], 0);
    assert!(status.contains("summary: v1.2 is out"), "{status}");
}

/// One request a stand-in received.
#[derive(Debug, Clone)]
struct Received {
    method: String,
    path: String,
    /// Lower-case names.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "{} {}: body is not JSON ({e}): {:?}",
                self.method,
                self.path,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// How a stand-in answers.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Answer {
    /// 200 (201 with `{"id": 42}` for a GitHub deployment).
    Ok,
    /// This status.
    Status(u16),
    /// 429 with `Retry-After: 1`.
    TooMany,
    /// Reads the request and never answers.
    Hang,
}

/// An HTTP server on 127.0.0.1 that records every request and answers as
/// told: the stand-in for Slack, Discord, ntfy, a webhook receiver and
/// each forge's API.
#[derive(Clone)]
struct Recorder {
    addr: SocketAddr,
    got: Arc<Mutex<Vec<Received>>>,
    answer: Arc<Mutex<Answer>>,
}

impl Recorder {
    fn start() -> Recorder {
        Recorder::on(TcpListener::bind("127.0.0.1:0").unwrap(), None)
    }

    /// Serves on `listener`, over TLS when a config is given.
    fn on(listener: TcpListener, tls: Option<Arc<rustls::ServerConfig>>) -> Recorder {
        let r = Recorder {
            addr: listener.local_addr().unwrap(),
            got: Arc::default(),
            answer: Arc::new(Mutex::new(Answer::Ok)),
        };
        let me = r.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let me = me.clone();
                let tls = tls.clone();
                std::thread::spawn(move || match tls {
                    Some(cfg) => {
                        let conn = rustls::ServerConnection::new(cfg).unwrap();
                        me.serve(rustls::StreamOwned::new(conn, stream));
                    }
                    None => me.serve(stream),
                });
            }
        });
        r
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn set(&self, a: Answer) {
        *self.answer.lock().unwrap() = a;
    }

    fn serve(&self, mut s: impl Read + Write) {
        let Some(HttpRequest {
            method,
            target: path,
            headers,
            body,
        }) = read_request(&mut s)
        else {
            return;
        };
        let answer = *self.answer.lock().unwrap();
        let deployment = method == "POST" && path.ends_with("/deployments");
        self.got.lock().unwrap().push(Received {
            method,
            path,
            headers,
            body,
        });
        let (status, extra, body) = match answer {
            Answer::Hang => {
                std::thread::sleep(Duration::from_secs(600));
                return;
            }
            Answer::Ok if deployment => (201, "", "{\"id\": 42}"),
            Answer::Ok => (200, "", "ok"),
            Answer::Status(c) => (c, "", "no"),
            Answer::TooMany => (429, "Retry-After: 1\r\n", "slow down"),
        };
        let _ = write!(
            s,
            "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n{body}",
            body.len()
        );
        let _ = s.flush();
    }

    fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Waits until `n` requests whose path starts with `prefix` came in.
    fn wait(&self, prefix: &str, n: usize, limit: Duration) -> Vec<Received> {
        let start = Instant::now();
        loop {
            let got: Vec<Received> = self
                .received()
                .into_iter()
                .filter(|r| r.path.starts_with(prefix))
                .collect();
            if got.len() >= n {
                return got;
            }
            if start.elapsed() > limit {
                panic!(
                    "timed out after {limit:?} waiting for {n} request(s) to {prefix}; got:\n{:#?}",
                    self.received()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The requests to `prefix` so far.
    fn to(&self, prefix: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.path.starts_with(prefix))
            .collect()
    }
}

/// Retries fast, for tests (README, "Development").
const FAST: &str = "300ms,300ms,300ms,300ms,300ms";

/// `deployd deploy PROJECT` without a daemon, with extra environment.
fn direct_deploy(config: &Path, project: &str, env: &[(&str, &str)]) -> std::process::Output {
    Command::new(BIN)
        .arg("-c")
        .arg(config)
        .args(["deploy", project])
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

fn hmac_hex(secret: &str, body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

fn states(got: &[Received], field: &str) -> Vec<String> {
    got.iter()
        .map(|r| r.json()[field].as_str().unwrap_or("").to_string())
        .collect()
}

/// The new user's loop: a Slack-shaped target, a signed generic webhook and
/// GitHub commit statuses against stand-ins. A failing deploy gives one
/// failure message and a `failure` status; the fix gives `recovered` and
/// `success`; with the default `on`, nothing while all is well.
#[test]
fn failure_then_recovery_reaches_chat_webhook_and_commit() {
    let dir = TestDir::new("loop");
    let stand_in = Recorder::start();
    let flag = dir.join("broken");
    std::fs::write(&flag, "").unwrap();
    let script = dir.script(
        "deploy.sh",
        &format!(
            "#!/bin/sh\necho deploying $DEPLOY_SHA\n\
             echo url=https://app.example.com >>\"$DEPLOY_OUTPUT\"\n\
             if [ -e {} ]; then echo 'migration 12 failed'; exit 3; fi\n",
            flag.display()
        ),
    );
    let secret_file = dir.join("hook.secret");
    std::fs::write(&secret_file, "receiver-secret\n").unwrap();
    let extra = format!(
        "[projects.app.report]\ntoken = \"ghp_test_token\"\napi_url = \"{}\"\n\
         [notify.chat]\nkind = \"slack\"\nurl = \"{}\"\n\
         [notify.hook]\nkind = \"webhook\"\nurl = \"{}\"\nsecret_file = \"{}\"\n",
        stand_in.url("/github"),
        stand_in.url("/slack/T000/B000/XXXX"),
        stand_in.url("/hook"),
        secret_file.display()
    );
    let config = write_config(&dir, "", &format!("{}{extra}", project("app", &script, "")));
    let d = Daemon::start(&config);
    assert_eq!(d.push("app", "refs/heads/main", SHA_A, "d-1").0, 202);
    wait_runs(&config, "app", 1, T);
    let slack = stand_in.wait("/slack/", 1, T);
    let hook = stand_in.wait("/hook", 1, T);
    let statuses = stand_in.wait("/github/", 2, T);
    let run = &history(&config, "app")[0];
    assert_eq!(run["status"], "failed");

    // Slack: an incoming-webhook JSON body with `text`.
    assert_eq!(slack[0].method, "POST");
    assert_eq!(slack[0].header("content-type"), Some("application/json"));
    let text = slack[0].json()["text"].as_str().unwrap().to_string();
    assert!(text.contains("app: deploy failed"), "{text}");
    let detail = slack[0].json()["attachments"][0]["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        detail.contains(&SHA_A[..12]) && detail.contains("https://app.example.com"),
        "{detail}"
    );
    // What the commit was about, and how it ended in words.
    assert!(
        detail.contains("\"Deploy me\"") && detail.contains("failed after"),
        "{detail}"
    );

    // The webhook: the documented document, signed.
    let doc = hook[0].json();
    assert_eq!(hook[0].header("x-deployd-event"), Some("failed"));
    assert_eq!(
        hook[0].header("x-deployd-signature-256").unwrap(),
        format!("sha256={}", hmac_hex("receiver-secret", &hook[0].body))
    );
    for k in [
        "event",
        "project",
        "run_id",
        "status",
        "trigger",
        "ref",
        "sha",
        "before",
        "repository",
        "pusher",
        "message",
        "delivery",
        "started_at",
        "finished_at",
        "duration_ms",
        "outputs",
        "log_tail",
        "host",
    ] {
        assert!(doc.get(k).is_some(), "the document lacks {k}: {doc}");
    }
    assert_eq!(doc["event"], "failed");
    assert_eq!(doc["status"], "failed");
    assert_eq!(doc["sha"], SHA_A);
    assert_eq!(doc["delivery"], "d-1");
    assert_eq!(doc["run_id"], 1);
    assert_eq!(doc["outputs"]["url"], "https://app.example.com");
    assert!(
        doc["log_tail"]
            .as_str()
            .unwrap()
            .contains("migration 12 failed"),
        "{doc}"
    );

    // GitHub: pending, then failure, on the pushed commit.
    for s in &statuses {
        assert_eq!(s.method, "POST");
        assert_eq!(s.path, format!("/github/repos/acme/app/statuses/{SHA_A}"));
        assert_eq!(s.header("authorization"), Some("Bearer ghp_test_token"));
        assert_eq!(s.header("accept"), Some("application/vnd.github+json"));
        assert_eq!(s.json()["context"], "deployd/app");
        assert_eq!(
            s.json()["target_url"].as_str().is_some(),
            s.json()["state"] != "pending"
        );
    }
    assert_eq!(states(&statuses, "state"), ["pending", "failure"]);

    // The fix.
    std::fs::remove_file(&flag).unwrap();
    assert_eq!(d.push("app", "refs/heads/main", SHA_B, "d-2").0, 202);
    wait_runs(&config, "app", 2, T);
    let slack = stand_in.wait("/slack/", 2, T);
    let hook = stand_in.wait("/hook", 2, T);
    let statuses = stand_in.wait("/github/", 4, T);
    assert!(
        slack[1].json()["text"]
            .as_str()
            .unwrap()
            .contains("deployed again after a failure")
    );
    assert_eq!(hook[1].json()["event"], "recovered");
    assert_eq!(hook[1].json()["status"], "succeeded");
    assert_eq!(states(&statuses[2..], "state"), ["pending", "success"]);
    assert_eq!(
        statuses[3].path,
        format!("/github/repos/acme/app/statuses/{SHA_B}")
    );
    assert_eq!(statuses[3].json()["target_url"], "https://app.example.com");

    // All is well again: no message for a plain success (default `on`).
    assert_eq!(d.push("app", "refs/heads/main", SHA_C, "d-3").0, 202);
    wait_runs(&config, "app", 3, T);
    stand_in.wait("/github/", 6, T);
    assert_eq!(stand_in.to("/slack/").len(), 2);
    assert_eq!(stand_in.to("/hook").len(), 2);
    // The URL, a secret, is in no log line.
    assert!(!d.log().contains("XXXX"), "{}", d.log());
}

fn lines_of(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Every kind of target, from a deploy made without a daemon, with `on`
/// and `projects` choosing who hears what.
#[test]
fn every_kind_from_a_direct_deploy_with_on_and_projects() {
    let dir = TestDir::new("kinds");
    let stand_in = Recorder::start();
    let bad = dir.script("bad.sh", "#!/bin/sh\necho broken; exit 1\n");
    let good = dir.script(
        "good.sh",
        "#!/bin/sh\necho fine\necho url=https://other.example.com >>\"$DEPLOY_OUTPUT\"\n",
    );
    let out = dir.join("command-out.jsonl");
    let cmd = dir.script(
        "notify-cmd.sh",
        &format!("#!/bin/sh\ncat >>{0}\necho >>{0}\n", out.display()),
    );
    let targets = format!(
        "[notify.disc]\nkind = \"discord\"\nurl = \"{}\"\non = [\"started\", \"succeeded\", \"failed\"]\nprojects = [\"app\"]\n\
         [notify.push]\nkind = \"ntfy\"\nurl = \"{}\"\n\
         [notify.cmd]\nkind = \"command\"\ncommand = [\"{}\"]\non = [\"started\", \"succeeded\"]\n\
         [notify.hook]\nkind = \"webhook\"\nurl = \"{}\"\non = [\"succeeded\"]\nprojects = [\"other\"]\n",
        stand_in.url("/discord/api/webhooks/1/tok"),
        stand_in.url("/ntfy/deploys"),
        cmd.display(),
        stand_in.url("/hook"),
    );
    let config = write_config(
        &dir,
        "",
        &format!(
            "{}{}{targets}",
            project("app", &bad, ""),
            project("other", &good, "")
        ),
    );
    // Without a daemon: the runs' events wait on disk for the next one.
    let o = direct_deploy(&config, "app", &[]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = direct_deploy(&config, "other", &[]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(stand_in.received().is_empty());
    let _d = Daemon::start(&config);
    let disc = stand_in.wait("/discord/", 2, T);
    let events: Vec<String> = disc
        .iter()
        .map(|r| r.json()["content"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(events, ["app: deploy started", "app: deploy failed"]);
    let embed = &disc[1].json()["embeds"][0];
    assert_eq!(embed["title"], "app: deploy failed");
    assert!(embed["color"].as_u64().is_some());
    assert_eq!(
        disc[1].json()["allowed_mentions"]["parse"],
        serde_json::json!([])
    );
    let ntfy = stand_in.wait("/ntfy/", 1, T);
    assert_eq!(ntfy[0].header("title"), Some("app: deploy failed"));
    assert_eq!(ntfy[0].header("priority"), Some("high"));
    assert!(ntfy[0].header("tags").unwrap().contains("rotating_light"));
    assert!(
        ntfy[0].text().contains("run 1 (manual)"),
        "{}",
        ntfy[0].text()
    );
    let hook = stand_in.wait("/hook", 1, T);
    assert_eq!(hook[0].json()["event"], "succeeded");
    assert_eq!(hook[0].json()["project"], "other");
    assert_eq!(
        hook[0].header("x-deployd-signature-256"),
        None,
        "no secret, no signature"
    );
    wait_until(T, "the command's three events", || {
        lines_of(&out).len() >= 3
    });
    let cmd_got = lines_of(&out);
    let seen: Vec<(String, String)> = cmd_got
        .iter()
        .map(|d| {
            (
                d["project"].as_str().unwrap().into(),
                d["event"].as_str().unwrap().into(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = [
        ("app", "started"),
        ("other", "started"),
        ("other", "succeeded"),
    ]
    .iter()
    .map(|(p, e)| (p.to_string(), e.to_string()))
    .collect();
    assert_eq!(seen, want);
    assert_eq!(cmd_got[2]["outputs"]["url"], "https://other.example.com");
    wait_until(T, "the outbox to empty", || {
        !cli_ok(&config, &["status"], 0).contains("undelivered")
    });
    // Filtering: discord is for app only, ntfy only for failures, the
    // webhook for other's successes only.
    assert_eq!(stand_in.to("/discord/").len(), 2);
    assert_eq!(stand_in.to("/ntfy/").len(), 1);
    assert_eq!(stand_in.to("/hook").len(), 1);
}

/// Each forge's status API as its documentation shapes it: method, path,
/// auth header, fields and the states in order.
#[test]
fn commit_status_on_every_forge() {
    let dir = TestDir::new("forges");
    let api = Recorder::start();
    let script = dir.script(
        "deploy.sh",
        &format!(
            "#!/bin/sh\necho url=https://app.example.com >>\"$DEPLOY_OUTPUT\"\n\
             [ \"$DEPLOY_PROJECT\" = gh ] && echo sha={SHA_B} >>\"$DEPLOY_OUTPUT\"\nexit 0\n"
        ),
    );
    let mut projects = String::new();
    for (name, provider, extra) in [
        ("gt", "gitea", "token_env = \"GITEA_TOKEN\"\n"),
        (
            "gl",
            "gitlab",
            "token = \"glpat-x\"\ncontext = \"deploy/production\"\n",
        ),
        ("bb", "bitbucket", "token = \"bb-access\"\n"),
        (
            "gh",
            "github",
            "token = \"ghp-x\"\nenvironment = \"production\"\n",
        ),
    ] {
        projects.push_str(&project(
            name,
            &script,
            &format!("provider = \"{provider}\""),
        ));
        projects.push_str(&format!(
            "[projects.{name}.report]\napi_url = \"{}\"\n{extra}",
            api.url(&format!("/{name}"))
        ));
    }
    let config = write_config(&dir, "", &projects);
    for name in ["gt", "gl", "bb", "gh"] {
        let o = Command::new(BIN)
            .arg("-c")
            .arg(&config)
            .args(["deploy", name, "--sha", SHA_A])
            .output()
            .unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    // The daemon sends what the direct runs left.
    let _d = Daemon::start_with(&config, &[("GITEA_TOKEN", "gitea-tok")]);
    for name in ["gt", "gl", "bb"] {
        api.wait(&format!("/{name}/"), 2, T);
    }
    api.wait("/gh/", 3, T);
    // Gitea / Forgejo.
    let gt = api.to("/gt/");
    assert_eq!(states(&gt, "state"), ["pending", "success"]);
    for r in &gt {
        assert_eq!(
            (r.method.as_str(), r.path.as_str()),
            ("POST", &*format!("/gt/repos/acme/gt/statuses/{SHA_A}"))
        );
        assert_eq!(r.header("authorization"), Some("token gitea-tok"));
        assert_eq!(r.json()["context"], "deployd/gt");
    }
    assert_eq!(gt[1].json()["target_url"], "https://app.example.com");
    // GitLab: the path URL-encoded, PRIVATE-TOKEN, running → success.
    let gl = api.to("/gl/");
    assert_eq!(states(&gl, "state"), ["running", "success"]);
    for r in &gl {
        assert_eq!(r.path, format!("/gl/projects/acme%2Fgl/statuses/{SHA_A}"));
        assert_eq!(r.header("private-token"), Some("glpat-x"));
        assert_eq!(r.json()["name"], "deploy/production");
    }
    // Bitbucket: INPROGRESS → SUCCESSFUL, key and url required.
    let bb = api.to("/bb/");
    assert_eq!(states(&bb, "state"), ["INPROGRESS", "SUCCESSFUL"]);
    for r in &bb {
        assert_eq!(
            r.path,
            format!("/bb/2.0/repositories/acme/bb/commit/{SHA_A}/statuses/build")
        );
        assert_eq!(r.header("authorization"), Some("Bearer bb-access"));
        assert_eq!(r.json()["key"], "deployd/bb");
        assert!(r.json()["url"].as_str().unwrap().starts_with("https://"));
    }
    // GitHub Deployments: one deployment of the commit that went out, then
    // in_progress → success with the environment's URL.
    let gh = api.to("/gh/");
    let paths: Vec<&str> = gh.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/gh/repos/acme/gh/deployments",
            "/gh/repos/acme/gh/deployments/42/statuses",
            "/gh/repos/acme/gh/deployments/42/statuses",
        ]
    );
    let create = gh[0].json();
    assert_eq!(
        create["ref"], SHA_A,
        "at the start only the pushed commit is known"
    );
    assert_eq!(create["environment"], "production");
    assert_eq!(create["auto_merge"], false);
    assert_eq!(create["required_contexts"], serde_json::json!([]));
    assert_eq!(states(&gh[1..], "state"), ["in_progress", "success"]);
    assert_eq!(gh[2].json()["environment_url"], "https://app.example.com");
    for r in &gh {
        assert_eq!(r.header("authorization"), Some("Bearer ghp-x"));
        assert_eq!(r.header("x-github-api-version"), Some("2022-11-28"));
    }
    // `check` names the reports, never the tokens.
    let o = Command::new(BIN)
        .arg("-c")
        .arg(&config)
        .arg("check")
        .env("GITEA_TOKEN", "gitea-tok")
        .output()
        .unwrap();
    let checked = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(o.status.code(), Some(0), "{checked}");
    assert!(
        checked.contains("report: github deployment to production"),
        "{checked}"
    );
    assert!(checked.contains("token_env $GITEA_TOKEN"), "{checked}");
    assert!(
        !checked.contains("glpat-x") && !checked.contains("gitea-tok"),
        "{checked}"
    );
}

/// A port with nothing listening on it (for now).
fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// A target that is down when the run ends gets its message once it is
/// back; a 429 is waited out; neither changes the run's status.
#[test]
fn target_down_at_first_gets_it_later() {
    let dir = TestDir::new("down");
    let down = free_port();
    let busy = Recorder::start();
    busy.set(Answer::TooMany);
    let script = dir.script("deploy.sh", "#!/bin/sh\necho ok\n");
    let targets = format!(
        "[notify.later]\nkind = \"webhook\"\nurl = \"http://{down}/hook\"\non = [\"succeeded\"]\n\
         [notify.busy]\nkind = \"slack\"\nurl = \"{}\"\non = [\"succeeded\"]\n",
        busy.url("/slack")
    );
    let config = write_config(
        &dir,
        "",
        &format!("{}{targets}", project("app", &script, "")),
    );
    let d = Daemon::start_with(&config, &[("DEPLOYD_RETRY_DELAYS", FAST)]);
    assert_eq!(d.push("app", "refs/heads/main", SHA_A, "d-1").0, 202);
    let runs = wait_runs(&config, "app", 1, T);
    assert_eq!(runs[0]["status"], "succeeded");
    d.wait_log("notify.later (succeeded of app run 1): not delivered", T);
    d.wait_log(
        "notify.busy (succeeded of app run 1): not delivered (HTTP 429",
        T,
    );
    let status = cli_ok(&config, &["status"], 0);
    assert!(status.contains("notify.later: 1 waiting"), "{status}");
    // The same per project in --json, with what the last try said.
    let js: Value = serde_json::from_str(&cli_ok(&config, &["status", "--json"], 0)).unwrap();
    let later = &js[0]["undelivered"]["notify.later"];
    assert_eq!(js[0]["project"], "app", "{js}");
    assert_eq!(later["pending"], 1, "{js}");
    assert_eq!(later["failed"], 0, "{js}");
    assert!(later["last_error"].is_string(), "{js}");
    busy.set(Answer::Ok);
    // Back after a while, on the same port.
    std::thread::sleep(Duration::from_millis(700));
    let back = Recorder::on(TcpListener::bind(down).unwrap(), None);
    let got = back.wait("/hook", 1, T);
    assert_eq!(got[0].json()["event"], "succeeded");
    let slack = busy.wait("/slack", 2, T);
    assert_eq!(slack.len(), 2, "one 429, then delivered");
    wait_until(T, "the outbox to empty", || {
        !cli_ok(&config, &["status"], 0).contains("undelivered")
    });
    let js: Value = serde_json::from_str(&cli_ok(&config, &["status", "--json"], 0)).unwrap();
    assert_eq!(js[0]["undelivered"], serde_json::json!({}), "{js}");
    assert_eq!(history(&config, "app")[0]["status"], "succeeded");
}

/// A target that never answers holds up neither the webhook's answer, nor
/// the runs, nor another target.
#[test]
fn hanging_target_delays_nothing() {
    let dir = TestDir::new("hang");
    let hang = Recorder::start();
    hang.set(Answer::Hang);
    let fine = Recorder::start();
    let script = dir.script("deploy.sh", "#!/bin/sh\necho ok\n");
    let targets = format!(
        "[notify.stuck]\nkind = \"webhook\"\nurl = \"{}\"\non = [\"started\", \"succeeded\"]\n\
         [notify.fine]\nkind = \"webhook\"\nurl = \"{}\"\non = [\"started\", \"succeeded\"]\n",
        hang.url("/stuck"),
        fine.url("/fine")
    );
    let config = write_config(
        &dir,
        "",
        &format!("{}{targets}", project("app", &script, "")),
    );
    let mut d = Daemon::start(&config);
    for (i, sha) in [SHA_A, SHA_B, SHA_C].iter().enumerate() {
        let t = Instant::now();
        let (code, _) = d.push("app", "refs/heads/main", sha, &format!("d-{i}"));
        assert_eq!(code, 202);
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "202 took {:?}",
            t.elapsed()
        );
        wait_runs(&config, "app", i + 1, T);
    }
    let runs = history(&config, "app");
    assert!(runs.iter().all(|r| r["status"] == "succeeded"), "{runs:?}");
    let got = fine.wait("/fine", 6, T);
    let events: Vec<String> = got
        .iter()
        .map(|r| r.json()["event"].as_str().unwrap().into())
        .collect();
    assert_eq!(
        events,
        [
            "started",
            "succeeded",
            "started",
            "succeeded",
            "started",
            "succeeded"
        ]
    );
    assert_eq!(
        hang.to("/stuck").len(),
        1,
        "the stuck target's lane waits on its first message"
    );
    // Stopping is not held up by the send in flight.
    let t = Instant::now();
    d.signal("TERM");
    d.wait_exit(Duration::from_secs(10));
    assert!(
        t.elapsed() < Duration::from_secs(8),
        "stop took {:?}",
        t.elapsed()
    );
}

/// A message pending when the daemon is SIGKILLed is sent after restart.
#[test]
fn pending_message_survives_sigkill() {
    let dir = TestDir::new("kill");
    let down = free_port();
    let script = dir.script("deploy.sh", "#!/bin/sh\nexit 1\n");
    let targets = format!("[notify.ops]\nkind = \"slack\"\nurl = \"http://{down}/ops\"\n");
    let config = write_config(
        &dir,
        "",
        &format!("{}{targets}", project("app", &script, "")),
    );
    let slow = "1h,1h,1h,1h,1h";
    let mut d = Daemon::start_with(&config, &[("DEPLOYD_RETRY_DELAYS", slow)]);
    assert_eq!(d.push("app", "refs/heads/main", SHA_A, "d-1").0, 202);
    wait_runs(&config, "app", 1, T);
    d.wait_log("notify.ops (failed of app run 1): not delivered", T);
    d.kill9();
    drop(d);
    let back = Recorder::on(TcpListener::bind(down).unwrap(), None);
    let d = Daemon::start_with(&config, &[("DEPLOYD_RETRY_DELAYS", slow)]);
    let got = back.wait("/ops", 1, T);
    assert!(
        got[0].json()["text"]
            .as_str()
            .unwrap()
            .contains("app: deploy failed")
    );
    // The try before the kill was recorded (it is logged once saved).
    d.wait_log("delivered at try 2", T);
    wait_until(T, "the outbox to empty", || {
        !cli_ok(&config, &["status"], 0).contains("undelivered")
    });
    assert_eq!(back.to("/ops").len(), 1);
}

/// `deployd notify-test` sends one message to each target and says what
/// each answered.
#[test]
fn notify_test_prints_each_answer() {
    let dir = TestDir::new("notify-test");
    let ok = Recorder::start();
    let broken = Recorder::start();
    broken.set(Answer::Status(404));
    let script = dir.script("deploy.sh", "#!/bin/sh\n");
    let targets = format!(
        "[notify.good]\nkind = \"discord\"\nurl = \"{}\"\n\
         [notify.gone]\nkind = \"slack\"\nurl = \"{}\"\n",
        ok.url("/d/secret-part"),
        broken.url("/s/secret-part")
    );
    let config = write_config(
        &dir,
        "",
        &format!("{}{targets}", project("app", &script, "")),
    );
    let out = cli(&config, &["notify-test"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("good (discord): delivered (HTTP 200"),
        "{text}"
    );
    assert!(text.contains("gone (slack): REFUSED (HTTP 404"), "{text}");
    assert!(!text.contains("secret-part"), "{text}");
    assert_eq!(
        ok.to("/d/")[0].json()["content"],
        "app: test notification from deployd"
    );
    let text = cli_ok(&config, &["notify-test", "good"], 0);
    assert!(text.contains("good (discord): delivered"), "{text}");
    assert_eq!(ok.to("/d/").len(), 2);
    assert_eq!(broken.to("/s/").len(), 1);
    let out = cli(&config, &["notify-test", "nosuch"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("targets: gone, good"));
}

/// Over TLS, the client trusts what the system's roots say: a CA made for
/// the test, named by SSL_CERT_FILE, and nothing else.
#[test]
fn tls_target_trusted_through_the_system_roots() {
    let dir = TestDir::new("tls");
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "deployd test CA");
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let server = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![cert.der().clone()],
        rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
    )
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let tls = Recorder::on(listener, Some(Arc::new(server)));
    let script = dir.script("deploy.sh", "#!/bin/sh\n");
    let targets = format!(
        "[notify.secure]\nkind = \"webhook\"\nurl = \"https://localhost:{port}/secure\"\nsecret = \"s3\"\n"
    );
    let config = write_config(
        &dir,
        "",
        &format!("{}{targets}", project("app", &script, "")),
    );
    let run = |env: &[(&str, &str)]| {
        Command::new(BIN)
            .arg("-c")
            .arg(&config)
            .arg("notify-test")
            .env_remove("SSL_CERT_FILE")
            .env_remove("SSL_CERT_DIR")
            .envs(env.iter().copied())
            .output()
            .unwrap()
    };
    // Unknown to the system's roots: refused.
    let out = run(&[]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(tls.to("/secure").is_empty());
    // Trusted through SSL_CERT_FILE.
    let out = run(&[("SSL_CERT_FILE", ca_file.to_str().unwrap())]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let got = tls.to("/secure");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].header("x-deployd-event"), Some("test"));
    assert_eq!(
        got[0].header("x-deployd-signature-256").unwrap(),
        format!("sha256={}", hmac_hex("s3", &got[0].body))
    );
}

/// Mistakes in targets and reports are refused with the key at fault, and
/// never repeat a URL.
#[test]
fn check_refuses_bad_targets_by_key() {
    let dir = TestDir::new("bad-targets");
    let script = dir.script("deploy.sh", "#!/bin/sh\n");
    for (table, key, says) in [
        (
            "[notify.x]\nkind = \"slack\"\nurl = \"https://h/p\"\non = [\"deployed\"]\n",
            "notify.x.on",
            "\"deployed\" is not an event: one of started, succeeded",
        ),
        (
            "[notify.x]\nkind = \"pager\"\nurl = \"https://h/p\"\n",
            "notify.x.kind",
            "one of webhook, slack, discord, ntfy, command",
        ),
        (
            "[notify.x]\nkind = \"discord\"\n",
            "notify.x.url",
            "missing",
        ),
        (
            "[notify.x]\nkind = \"slack\"\nurl = \"hooks.example/SECRETPART\"\n",
            "notify.x.url",
            "is not an http(s) URL",
        ),
        (
            "[notify.x]\nkind = \"webhook\"\nurl = \"https://h/p\"\nurl_env = \"U\"\n",
            "notify.x.url_env",
            "give exactly one of url, url_file, url_env, url_credential",
        ),
        (
            "[notify.x]\nkind = \"command\"\n",
            "notify.x.command",
            "missing",
        ),
        (
            "[notify.x]\nkind = \"slack\"\nurl = \"https://h/p\"\nsecret = \"s\"\n",
            "notify.x.secret",
            "only a webhook target signs",
        ),
        (
            "[notify.x]\nkind = \"slack\"\nurl = \"https://h/p\"\nprojects = [\"nope\"]\n",
            "notify.x.projects",
            "\"nope\" is not a project",
        ),
        (
            "[projects.app.report]\napi_url = \"https://h\"\n",
            "projects.app.report",
            "needs an API token",
        ),
        (
            "[projects.app.report]\ntoken = \"t\"\nenvironment = \"prod\"\nprovider = \"x\"\n",
            "projects.app.report.provider",
            "",
        ),
    ] {
        let config = write_config(&dir, "", &format!("{}{table}", project("app", &script, "")));
        let out = cli(&config, &["check"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{table}: {err}");
        assert!(err.contains(key) && err.contains(says), "{table}: {err}");
        assert!(!err.contains("SECRETPART"), "{err}");
    }
}

/// A refusal (401/403/404) is not retried, is logged once per target with
/// what to check, and is counted by `status`.
#[test]
fn refused_is_logged_once_and_not_retried() {
    let dir = TestDir::new("refused");
    let api = Recorder::start();
    api.set(Answer::Status(401));
    let script = dir.script("deploy.sh", "#!/bin/sh\n");
    let report = format!(
        "[projects.app.report]\ntoken = \"expired-token\"\napi_url = \"{}\"\n",
        api.url("/api")
    );
    let config = write_config(
        &dir,
        "",
        &format!("{}{report}", project("app", &script, "")),
    );
    let d = Daemon::start_with(&config, &[("DEPLOYD_RETRY_DELAYS", FAST)]);
    assert_eq!(d.push("app", "refs/heads/main", SHA_A, "d-1").0, 202);
    wait_runs(&config, "app", 1, T);
    assert_eq!(d.push("app", "refs/heads/main", SHA_B, "d-2").0, 202);
    wait_runs(&config, "app", 2, T);
    wait_until(T, "four refusals counted", || {
        cli_ok(&config, &["status"], 0).contains("report.app: 0 waiting, 4 given up")
    });
    // Past every retry delay: nothing more was sent.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        api.to("/api/").len(),
        4,
        "pending and success of two runs, once each"
    );
    let log = d.log();
    assert_eq!(log.matches("refused (HTTP 401").count(), 1, "{log}");
    assert!(log.contains("Commit statuses: write"), "{log}");
    assert!(!log.contains("expired-token"), "{log}");
    assert!(
        history(&config, "app")
            .iter()
            .all(|r| r["status"] == "succeeded")
    );
}
