//! Catch-up with the forge (docs/catch-up.md) against real git: a bare
//! `origin.git` served over `file://`, a developer clone that pushes while
//! no daemon runs, and a deploy checkout whose `origin` is the remote
//! deployd asks with `git ls-remote`.

use crate::common;
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
    /// `origin.git` with one commit on main, `dev/` that pushes to it and
    /// `app/` cloned from its `file://` URL.
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
            &["init", "-q", "--bare", "-b", "main", "origin.git"],
        );
        r.git(&r.dir.path, &["init", "-q", "-b", "main", "dev"]);
        r.git(&r.dev, &["remote", "add", "origin", &r.url()]);
        r.commit("initial");
        r.git(&r.dir.path, &["clone", "-q", &r.url(), "app"]);
        r
    }

    fn url(&self) -> String {
        format!("file://{}", self.origin.display())
    }

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
            .env_remove("GIT_DIR")
            .output()
            .expect("run git");
        assert!(
            out.status.success(),
            "git {} (in {}): {}\n{}",
            args.join(" "),
            cwd.display(),
            out.status,
            text(&out.stderr)
        );
        text(&out.stdout).trim().to_string()
    }

    /// Commits a change in `dev/` and pushes it; returns the commit.
    fn commit(&self, what: &str) -> String {
        std::fs::write(self.dev.join("file.txt"), what).unwrap();
        self.git(&self.dev, &["add", "file.txt"]);
        self.git(&self.dev, &["commit", "-q", "-m", what]);
        self.git(&self.dev, &["push", "-q", "origin", "main"]);
        self.git(&self.dev, &["rev-parse", "HEAD"])
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
    std::thread::sleep(Duration::from_secs(3));
    let after = switches(pid);
    let woke: Vec<String> = before
        .iter()
        .filter_map(|(tid, n)| {
            let m = after.get(tid)?;
            (m > n).then(|| format!("thread {tid}: {n} -> {m} context switches"))
        })
        .collect();
    assert!(
        woke.is_empty(),
        "the idle daemon woke up:\n{}",
        woke.join("\n")
    );
    stop(d);
}

/// Context switches so far of each thread of `pid`.
fn switches(pid: u32) -> std::collections::BTreeMap<String, u64> {
    let mut all = std::collections::BTreeMap::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let task = task.unwrap();
        let Ok(status) = std::fs::read_to_string(task.path().join("status")) else {
            continue;
        };
        let n: u64 = status
            .lines()
            .filter(|l| l.contains("ctxt_switches:"))
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum();
        all.insert(task.file_name().to_string_lossy().into_owned(), n);
    }
    all
}
