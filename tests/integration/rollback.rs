//! `deployd rollback` and health checks (README, *Cancel and rollback* and
//! *Health checks*) with the shipped `scripts/deploy-git.sh` and real git:
//! a bare `origin.git`, a developer clone `dev/` that commits and pushes, and
//! the deploy checkout `app/`. A tiny HTTP server (python3) answers the
//! health check from what `app/` has checked out: 500 when its page says
//! `broken`, or when the test has put a `down` file beside it.

// Helpers here and in common/ are test code: a panic is the failure report.

use crate::common;
use common::*;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(60);

/// The repositories of one test ([`git::Repos`]), with what these tests
/// do to them.
struct Repos(git::Repos);

impl std::ops::Deref for Repos {
    type Target = git::Repos;
    fn deref(&self) -> &git::Repos {
        &self.0
    }
}

impl Repos {
    /// `origin.git` with one commit on main, `dev/` and `app/` clones of it.
    fn new(name: &str) -> Repos {
        Repos(git::Repos::new(name, "index.html", "initial\n"))
    }

    /// Commits `page` as index.html in `dev/` and pushes it; the new commit.
    fn commit(&self, page: &str) -> String {
        self.commit_file("index.html", &format!("{page}\n"), page)
    }

    /// Project `app` running deploy-git.sh in `app/`, with `extra` keys.
    fn config(&self, extra: &str) -> PathBuf {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/deploy-git.sh");
        write_config(
            &self.dir,
            "",
            &project(
                "app",
                &script,
                &format!(
                    "working_dir = \"{}\"\ntimeout = \"60s\"\nreconcile = \"off\"\n{extra}",
                    self.app.display()
                ),
            ),
        )
    }

    fn daemon(&self, config: &Path) -> Daemon {
        let home = self.dir.path.to_str().unwrap().to_string();
        Daemon::start_with(config, &[("HOME", &home)])
    }

    /// Pushes `sha` and waits for run `id` to finish.
    fn push(&self, d: &Daemon, config: &Path, sha: &str, id: u64) -> Value {
        assert_eq!(
            d.push("app", "refs/heads/main", sha, &format!("d-{id}")).0,
            202
        );
        finished(config, id)
    }

    /// The CLI with HOME in the test directory (a direct run's script
    /// inherits it).
    fn cli(&self, config: &Path, args: &[&str]) -> std::process::Output {
        output_of(
            Command::new(BIN)
                .arg("-c")
                .arg(config)
                .args(args)
                .env("HOME", &self.dir.path)
                .stdin(Stdio::null()),
        )
    }
}

/// Waits until run `id` of `app` has finished; returns its record.
fn finished(config: &Path, id: u64) -> Value {
    poll(LIMIT, &format!("run {id} to finish"), || {
        let runs = history(config, "app");
        runs.iter()
            .find(|r| r["id"] == id && r["status"] != "running")
            .cloned()
            .ok_or_else(|| serde_json::to_string_pretty(&runs).unwrap())
    })
}

fn log_of(run: &Value) -> String {
    std::fs::read_to_string(run["log"].as_str().unwrap()).unwrap_or_default()
}

#[test]
fn rollback_goes_back_exactly_one_good_deploy() {
    let repos = Repos::new("rollback");
    let config = repos.config("");
    let d = repos.daemon(&config);
    // Nothing has run: nothing to go back to.
    let out = repos.cli(&config, &["rollback", "app"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe("rollback", &out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nothing to go back to"),
        "{}",
        describe("rollback", &out)
    );

    let c1 = repos.commit("one");
    let c2 = repos.commit("two");
    let c3 = repos.commit("three");
    for (id, c) in [(1, &c1), (2, &c2), (3, &c3)] {
        let run = repos.push(&d, &config, c, id);
        assert_eq!(run["status"], "succeeded", "{run:#}\n{}", log_of(&run));
    }
    assert_eq!(repos.deployed(), c3);

    // Back one good deploy: c2, exactly, though the branch tip is c3.
    let out = repos.cli(&config, &["rollback", "app"]);
    let shown = describe("rollback", &out);
    assert_eq!(out.status.code(), Some(0), "{shown}");
    assert!(
        shown.contains(&format!("rolling back to refs/heads/main {c2}")),
        "{shown}"
    );
    assert!(
        shown.contains(&format!("deploying exactly {c2}")),
        "streamed: {shown}"
    );
    assert_eq!(repos.deployed(), c2);
    let run = finished(&config, 4);
    assert_eq!(run["trigger"], "rollback", "{run:#}");
    assert_eq!(run["sha"], c2.as_str(), "{run:#}");
    let table =
        String::from_utf8_lossy(&repos.cli(&config, &["history", "app"]).stdout).into_owned();
    assert!(table.contains("rollback"), "{table}");

    // --to a run: its commit.
    let out = repos.cli(&config, &["rollback", "app", "--to", "1"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        describe("rollback --to 1", &out)
    );
    assert_eq!(repos.deployed(), c1);

    // Refusals, with the reason: no such run; a run without a commit.
    let out = repos.cli(&config, &["rollback", "app", "--to", "99"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("there is no run 99"),
        "{}",
        describe("--to 99", &out)
    );
    let out = repos.cli(&config, &["deploy", "app"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe("deploy", &out));
    assert_eq!(
        repos.deployed(),
        c3,
        "a manual deploy without --sha deploys the tip"
    );
    let out = repos.cli(&config, &["rollback", "app", "--to", "6"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("run 6 has no commit"),
        "{}",
        describe("--to 6", &out)
    );

    // A commit the repository does not have fails clearly, checkout untouched.
    let missing = "0123456789abcdef0123456789abcdef01234567";
    let out = repos.cli(&config, &["deploy", "app", "--sha", missing]);
    let shown = describe("deploy --sha", &out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains(&format!("commit {missing} is not in the repository")),
        "{shown}"
    );
    assert_eq!(repos.deployed(), c3);

    // Without a daemon, the same: run 2's commit, here.
    drop(d);
    let out = repos.cli(&config, &["rollback", "app", "--to", "2"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        describe("direct rollback", &out)
    );
    assert_eq!(repos.deployed(), c2);
    let run = finished(&config, 8);
    assert_eq!(run["trigger"], "rollback", "{run:#}");
}

/// The health server: answers GET /up from `app/index.html`.
const SERVER: &str = r#"
import http.server, os, sys
app, down = sys.argv[1], sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        page = open(os.path.join(app, "index.html")).read()
        bad = "broken" in page or os.path.exists(down)
        self.send_response(500 if bad else 200)
        self.end_headers()
        self.wfile.write(b"down\n" if bad else b"up\n")
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"#;

#[test]
fn an_unhealthy_deploy_rolls_back_to_the_last_healthy_commit_once() {
    let repos = Repos::new("health");
    let down = repos.dir.join("down");
    let server = Command::new("python3")
        .args(["-c", SERVER])
        .arg(&repos.app)
        .arg(&down)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut server = KillOnDrop(server);
    let mut port = String::new();
    BufReader::new(server.0.stdout.take().unwrap())
        .read_line(&mut port)
        .unwrap();
    let port = port.trim().to_string();
    let config = repos.config(&format!(
        "health_check = [\"curl\", \"-fsS\", \"http://127.0.0.1:{port}/up\"]\n\
         health_retries = 2\nhealth_interval = \"100ms\"\nhealth_timeout = \"5s\"\n\
         on_unhealthy = \"rollback\""
    ));
    let d = repos.daemon(&config);

    let good = repos.commit("good");
    let run = repos.push(&d, &config, &good, 1);
    assert_eq!(run["status"], "succeeded", "{run:#}\n{}", log_of(&run));
    assert!(
        log_of(&run).contains("health check passed (try 1)"),
        "{}",
        log_of(&run)
    );

    // A broken commit: the script succeeds, the check fails twice, the run
    // is unhealthy, and the last healthy commit is deployed again.
    let bad = repos.commit("broken");
    let run = repos.push(&d, &config, &bad, 2);
    let log = log_of(&run);
    assert_eq!(run["status"], "unhealthy", "{run:#}\n{log}");
    assert!(log.contains("health check, try 2 of 2"), "{log}");
    // curl's own exit code, said as deployd says a script's.
    assert!(log.contains("health check failed (exit code 22)"), "{log}");
    d.wait_log(
        "app: run 2 unhealthy (the script succeeded, its health check did not; log ",
        LIMIT,
    );
    assert!(
        log.contains("500"),
        "the check's output is in the log:\n{log}"
    );
    assert!(
        log.contains(&format!("rolling back to {}", &good[..12])),
        "{log}"
    );
    let run = finished(&config, 3);
    assert_eq!(run["trigger"], "rollback", "{run:#}");
    assert_eq!(run["sha"], good.as_str(), "{run:#}");
    assert_eq!(run["status"], "succeeded", "{run:#}\n{}", log_of(&run));
    assert_eq!(repos.deployed(), good);
    let status = String::from_utf8_lossy(&repos.cli(&config, &["status"]).stdout).into_owned();
    assert!(status.contains("rollback"), "{status}");

    // The service goes down whatever is deployed: the next deploy is
    // unhealthy, its rollback too, and that one does not roll back again.
    let next = repos.commit("fine");
    std::fs::write(&down, "").unwrap();
    let run = repos.push(&d, &config, &next, 4);
    assert_eq!(run["status"], "unhealthy", "{run:#}\n{}", log_of(&run));
    let run = finished(&config, 5);
    assert_eq!(run["trigger"], "rollback", "{run:#}");
    assert_eq!(run["sha"], good.as_str(), "{run:#}");
    assert_eq!(run["status"], "unhealthy", "{run:#}\n{}", log_of(&run));
    d.wait_log("not rolling back again", LIMIT);
    assert!(
        log_of(&run).contains("not rolling back again"),
        "{}",
        log_of(&run)
    );
    let status = String::from_utf8_lossy(&repos.cli(&config, &["status"]).stdout).into_owned();
    assert!(status.contains("idle"), "{status}");
    assert_eq!(history(&config, "app").len(), 5);
}
