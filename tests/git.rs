//! The shipped `scripts/deploy-git.sh` end to end with real git: a bare
//! `origin.git`, a developer clone `dev/` that commits and pushes, and the
//! deploy checkout `app/` that deployd brings to the pushed commit.
//!
//! git runs with `HOME` set to the test directory and identity from the
//! environment, so it works on a machine with no git configuration at all.

// Helpers here and in common/ are test code: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(30);

/// The repositories of one test.
struct Repos {
    dir: TestDir,
    origin: PathBuf,
    dev: PathBuf,
    app: PathBuf,
}

impl Repos {
    /// `origin.git` with one commit on main, `dev/` and `app/` clones of it.
    fn new(name: &str) -> Repos {
        let dir = TestDir::new(name);
        let (origin, dev, app) = (dir.join("origin.git"), dir.join("dev"), dir.join("app"));
        let r = Repos {
            dir,
            origin,
            dev,
            app,
        };
        r.git(
            &r.dir.path,
            &["init", "--quiet", "--bare", "-b", "main", "origin.git"],
        );
        r.git(&r.dir.path, &["init", "--quiet", "-b", "main", "dev"]);
        r.git(
            &r.dev,
            &["remote", "add", "origin", r.origin.to_str().unwrap()],
        );
        r.commit("initial");
        r.git(
            &r.dir.path,
            &["clone", "--quiet", r.origin.to_str().unwrap(), "app"],
        );
        r
    }

    /// Runs git in `cwd`; panics with its output unless it succeeds; returns
    /// its stdout, trimmed.
    fn git(&self, cwd: &Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .args(args)
            .current_dir(cwd)
            .env("HOME", &self.dir.path)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "Dev")
            .env("GIT_AUTHOR_EMAIL", "dev@example.com")
            .env("GIT_COMMITTER_NAME", "Dev")
            .env("GIT_COMMITTER_EMAIL", "dev@example.com")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .env_remove("GIT_INDEX_FILE")
            .output()
            .expect("run git");
        assert!(
            out.status.success(),
            "git {} (in {}): {}\nstdout:\n{}\nstderr:\n{}",
            args.join(" "),
            cwd.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Commits a change in `dev/` and pushes it to origin's main; returns
    /// the new commit.
    fn commit(&self, message: &str) -> String {
        std::fs::write(self.dev.join("index.html"), format!("<p>{message}</p>\n")).unwrap();
        self.git(&self.dev, &["add", "index.html"]);
        self.git(&self.dev, &["commit", "--quiet", "-m", message]);
        self.git(
            &self.dev,
            &["push", "--quiet", "origin", "HEAD:refs/heads/main"],
        );
        self.git(&self.dev, &["rev-parse", "HEAD"])
    }

    /// The commit `app/` has checked out.
    fn deployed(&self) -> String {
        self.git(&self.app, &["rev-parse", "HEAD"])
    }

    /// A config with project `app` running deploy-git.sh in `app/`.
    fn config(&self) -> PathBuf {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/deploy-git.sh");
        write_config(
            &self.dir,
            "",
            &project(
                "app",
                &script,
                &format!(
                    "working_dir = \"{}\"\ntimeout = \"60s\"\n\
                     env = {{ DEPLOY_BUILD = \"echo built > build.txt\", DEPLOY_RESTART = \"echo restarted\" }}",
                    self.app.display()
                ),
            ),
        )
    }

    /// The daemon, with HOME in the test directory (scripts inherit it).
    fn daemon(&self, config: &Path) -> Daemon {
        let home = self.dir.path.to_str().unwrap().to_string();
        Daemon::start_with(config, &[("HOME", &home)])
    }
}

/// Waits until run `id` of `app` has finished; returns it and its log.
fn finished(config: &Path, id: u64) -> (Value, String) {
    poll(LIMIT, &format!("run {id} to finish"), || {
        let runs = history(config, "app");
        match runs
            .iter()
            .find(|r| r["id"] == id && r["status"] != "running")
        {
            Some(r) => {
                let log =
                    std::fs::read_to_string(r["log"].as_str().unwrap_or("")).unwrap_or_default();
                Ok((r.clone(), log))
            }
            None => Err(format!(
                "history:\n{}",
                serde_json::to_string_pretty(&runs).unwrap()
            )),
        }
    })
}

#[test]
fn pushes_deploy_the_pushed_commit_and_replays_never_roll_back() {
    let repos = Repos::new("git-deploy");
    let config = repos.config();
    let d = repos.daemon(&config);
    let initial = repos.deployed();

    // First push.
    let c1 = repos.commit("first");
    assert_ne!(c1, initial);
    let (code, body) = d.push("app", "refs/heads/main", &c1, "git-1");
    assert_eq!(code, 202, "{body}");
    let (run, log) = finished(&config, 1);
    assert_eq!(run["status"], "succeeded", "{run:#}\nlog:\n{log}");
    assert_eq!(run["sha"], c1.as_str(), "{run:#}");
    assert_eq!(repos.deployed(), c1, "log:\n{log}");
    let built = std::fs::read_to_string(repos.app.join("build.txt")).unwrap_or_default();
    assert_eq!(
        built, "built\n",
        "the build did not run in app/; log:\n{log}"
    );
    assert!(log.contains(&format!("deployed {c1}")), "{log}");
    assert!(
        log.contains("restarted"),
        "the restart did not run; log:\n{log}"
    );

    // Second push.
    std::fs::remove_file(repos.app.join("build.txt")).unwrap();
    let c2 = repos.commit("second");
    assert_eq!(d.push("app", "refs/heads/main", &c2, "git-2").0, 202);
    let (run, log) = finished(&config, 2);
    assert_eq!(run["status"], "succeeded", "{run:#}\nlog:\n{log}");
    assert_eq!(repos.deployed(), c2, "log:\n{log}");
    assert!(repos.app.join("build.txt").is_file(), "log:\n{log}");
    assert_eq!(
        std::fs::read_to_string(repos.app.join("index.html")).unwrap(),
        "<p>second</p>\n"
    );

    // The first push replayed under a new delivery id: the same signed body
    // is a duplicate and deploys nothing.
    let (code, body) = d.push("app", "refs/heads/main", &c1, "git-1-replayed");
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"duplicate\""), "{body}");
    // A late push of c1 in another body (a delivery of an older push that
    // arrives now): deploys the tip, not c1.
    let late = push_body("refs/heads/main", &c1, "acme/app")
        .replace("\"forced\":false", "\"forced\":true");
    assert!(late.contains("\"forced\":true"), "{late}");
    let (code, body) = post(
        d.addr,
        "/hooks/app",
        &github_headers("push", "git-1-late", &sign(SECRET, late.as_bytes())),
        late.as_bytes(),
    );
    assert_eq!(code, 202, "{body}");
    let (run, log) = finished(&config, 3);
    assert_eq!(run["status"], "succeeded", "{run:#}\nlog:\n{log}");
    assert_eq!(run["sha"], c1.as_str(), "{run:#}");
    assert_eq!(
        repos.deployed(),
        c2,
        "a replayed old push rolled back; log:\n{log}"
    );
    assert!(log.contains("moved on since the push"), "{log}");
    assert!(log.contains(&format!("deployed {c2}")), "{log}");

    // A manual deploy without --sha (through the daemon) deploys the tip.
    let c3 = repos.commit("third");
    let out = cli_ok(&config, &["deploy", "app"], 0);
    assert!(out.contains(&format!("deployed {c3}")), "{out}");
    assert_eq!(repos.deployed(), c3, "{out}");
    let (run, _) = finished(&config, 4);
    assert_eq!(run["trigger"], "manual", "{run:#}");
}

#[test]
fn a_failed_fetch_fails_the_run_and_leaves_the_checkout_alone() {
    let repos = Repos::new("git-fetch");
    let config = repos.config();
    let d = repos.daemon(&config);
    let before = repos.deployed();
    let c1 = repos.commit("unreachable");
    repos.git(&repos.app, &["remote", "set-url", "origin", "/nonexistent"]);

    assert_eq!(d.push("app", "refs/heads/main", &c1, "fetch-1").0, 202);
    let (run, log) = finished(&config, 1);
    assert_eq!(run["status"], "failed", "{run:#}\nlog:\n{log}");
    assert!(
        run["exit_code"].as_i64().is_some_and(|c| c != 0),
        "{run:#}\nlog:\n{log}"
    );
    assert_eq!(repos.deployed(), before, "the checkout moved; log:\n{log}");
    assert!(
        !repos.app.join("build.txt").exists(),
        "the build ran; log:\n{log}"
    );
    assert!(
        log.contains("ERROR") && log.contains("git fetch") && log.contains("FAILED"),
        "no loud error in the log:\n{log}"
    );
    assert!(log.contains("Nothing was deployed"), "{log}");
    assert!(!log.contains("restarted"), "the restart ran; log:\n{log}");
    d.wait_log("failed", LIMIT);
}
