//! The shipped `scripts/deploy-git.sh` end to end with real git: a bare
//! `origin.git`, a developer clone `dev/` that commits and pushes, and the
//! deploy checkout `app/` that deployd brings to the pushed commit.
//!
//! git runs with `HOME` set to the test directory and identity from the
//! environment, so it works on a machine with no git configuration at all.

// Helpers here and in common/ are test code: a panic is the failure report.

use crate::common;
use common::*;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(30);

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
        Repos(git::Repos::new(name, "index.html", "<p>initial</p>\n"))
    }

    /// Commits a change in `dev/` and pushes it to origin's main; returns
    /// the new commit.
    fn commit(&self, message: &str) -> String {
        self.commit_file("index.html", &format!("<p>{message}</p>\n"), message)
    }

    /// Commits in `dev/` (without pushing) writing each `(path, Some(text))`
    /// and removing each `(path, None)`; returns the commit.
    fn change(&self, files: &[(&str, Option<&str>)], message: &str) -> String {
        for (path, text) in files {
            let full = self.dev.join(path);
            match text {
                Some(t) => {
                    std::fs::create_dir_all(full.parent().unwrap()).unwrap();
                    std::fs::write(&full, t).unwrap();
                    self.git(&self.dev, &["add", path]);
                }
                None => {
                    self.git(&self.dev, &["rm", "--quiet", path]);
                }
            }
        }
        self.git(&self.dev, &["commit", "--quiet", "-m", message]);
        self.git(&self.dev, &["rev-parse", "HEAD"])
    }

    /// Pushes `dev/`'s HEAD to origin's main.
    fn push_main(&self) {
        self.git(
            &self.dev,
            &["push", "--quiet", "origin", "HEAD:refs/heads/main"],
        );
    }

    /// A commit as GitLab lists it in a Push Hook: its message and the
    /// paths it added, modified and removed, as git says.
    fn gitlab_commit(&self, sha: &str) -> Value {
        let (mut added, mut modified, mut removed) = (vec![], vec![], vec![]);
        let status = self.git(
            &self.dev,
            &["diff-tree", "--no-commit-id", "--name-status", "-r", sha],
        );
        for line in status.lines() {
            let (kind, path) = line.split_once('\t').unwrap();
            match kind {
                "A" => added.push(path),
                "M" => modified.push(path),
                "D" => removed.push(path),
                other => panic!("unexpected change {other} in {line}"),
            }
        }
        serde_json::json!({
            "id": sha,
            "message": self.git(&self.dev, &["log", "-1", "--format=%B", sha]),
            "timestamp": "2026-01-01T00:00:00+00:00",
            "author": {"name": "Dev", "email": "dev@example.com"},
            "added": added, "modified": modified, "removed": removed,
        })
    }

    /// The commit `app/` has checked out.
    fn deployed(&self) -> String {
        self.git(&self.app, &["rev-parse", "HEAD"])
    }

    /// A config with project `app` running deploy-git.sh in `app/`.
    fn config(&self) -> PathBuf {
        self.config_with("")
    }

    /// [`Repos::config`] with more keys for the project.
    fn config_with(&self, extra: &str) -> PathBuf {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/deploy-git.sh");
        write_config(
            &self.dir,
            "",
            &project(
                "app",
                &script,
                &format!(
                    "working_dir = \"{}\"\ntimeout = \"60s\"\nreconcile = \"off\"\n\
                     env = {{ DEPLOY_BUILD = \"echo built > build.txt\", DEPLOY_RESTART = \"echo restarted\" }}\n{extra}",
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

/// POSTs a GitLab Push Hook for `acme/app` with the GitLab test secret
/// token; returns status and body.
fn gitlab_push(d: &Daemon, body: &Value, delivery: &str) -> (u16, String) {
    post(
        d.addr,
        "/hooks/app",
        &[
            ("Content-Type".into(), "application/json".into()),
            ("X-Gitlab-Event".into(), "Push Hook".into()),
            ("X-Gitlab-Token".into(), SECRET.into()),
            ("X-Gitlab-Webhook-UUID".into(), delivery.into()),
        ],
        body.to_string().as_bytes(),
    )
}

/// A Push Hook in GitLab's shape of `before..after` on main: the commits
/// newest last, at most `listed` of them (GitLab's default is 20), and the
/// true count in `total_commits_count`.
fn gitlab_body(repos: &Repos, before: &str, after: &str, listed: usize) -> Value {
    let range = format!("{before}..{after}");
    let all: Vec<String> = repos
        .git(&repos.dev, &["rev-list", "--reverse", &range])
        .lines()
        .map(str::to_string)
        .collect();
    let shown = &all[all.len().saturating_sub(listed)..];
    serde_json::json!({
        "object_kind": "push", "event_name": "push",
        "before": before, "after": after, "ref": "refs/heads/main",
        "checkout_sha": after, "user_username": "dev",
        "project": {"id": 1, "path_with_namespace": "acme/app", "default_branch": "main"},
        "commits": shown.iter().map(|c| repos.gitlab_commit(c)).collect::<Vec<_>>(),
        "total_commits_count": all.len(),
    })
}

#[test]
fn path_filters_read_added_modified_and_removed_files_of_a_real_push() {
    let repos = Repos::new("git-paths");
    repos.change(
        &[
            ("api/old.rs", Some("old\n")),
            ("api/lib.rs", Some("lib\n")),
            ("docs/guide.md", Some("guide\n")),
        ],
        "layout",
    );
    repos.push_main();
    let config = repos.config_with(
        "provider = \"gitlab\"\npaths = [\"api/**\", \"Cargo.lock\"]\npaths_ignore = [\"docs/**\"]\n",
    );
    let d = repos.daemon(&config);
    let mut base = repos.git(&repos.dev, &["rev-parse", "HEAD"]);

    // Docs only, added and modified: nothing to deploy.
    repos.change(
        &[
            ("docs/new.md", Some("new\n")),
            ("docs/guide.md", Some("v2\n")),
        ],
        "docs: more",
    );
    let docs = repos.change(&[("docs/guide.md", Some("v3\n"))], "docs: fix");
    repos.push_main();
    let (code, body) = gitlab_push(&d, &gitlab_body(&repos, &base, &docs, 20), "p-1");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (code, answer),
        (
            200,
            serde_json::json!({"status": "ignored", "reason": "no changed path matches"})
        )
    );
    base = docs;

    // Removing an API file (next to a docs change) is a change to api/.
    let removal = repos.change(
        &[("api/old.rs", None), ("docs/guide.md", Some("v4\n"))],
        "api: drop old.rs",
    );
    repos.push_main();
    let (code, body) = gitlab_push(&d, &gitlab_body(&repos, &base, &removal, 20), "p-2");
    assert_eq!(code, 202, "{body}");
    let (run, log) = finished(&config, 1);
    assert_eq!(run["status"], "succeeded", "{run:#}\nlog:\n{log}");
    assert_eq!(repos.deployed(), removal, "log:\n{log}");
    assert!(!log.contains("paths not checked"), "{log}");
    base = removal;

    // 25 commits, docs only as listed: GitLab lists 20, so what the other 5
    // changed is unknown, and it deploys, saying why in the run's log.
    let mut tip = String::new();
    for i in 0..25 {
        tip = repos.change(
            &[("docs/guide.md", Some(&format!("{i}\n")))],
            &format!("docs {i}"),
        );
    }
    repos.push_main();
    let body25 = gitlab_body(&repos, &base, &tip, 20);
    assert_eq!(body25["commits"].as_array().unwrap().len(), 20);
    let (code, body) = gitlab_push(&d, &body25, "p-3");
    assert_eq!(code, 202, "{body}");
    let (run, log) = finished(&config, 2);
    assert_eq!(run["status"], "succeeded", "{run:#}\nlog:\n{log}");
    assert!(
        log.contains(
            "paths not checked, deploying anyway: GitLab listed 20 of the push's 25 commits"
        ),
        "{log}"
    );
    // The same 25 commits listed in full: docs only, ignored.
    let (code, body) = gitlab_push(&d, &gitlab_body(&repos, &base, &tip, 25), "p-4");
    assert_eq!(
        (code, body.contains("no changed path matches")),
        (200, true),
        "{body}"
    );
}

#[test]
fn a_new_tag_deploys_the_tagged_commit() {
    let repos = Repos::new("git-tags");
    let config = repos.config_with("tags = [\"v*\"]\n");
    let d = repos.daemon(&config);
    let release = repos.commit("release");
    // An annotated tag: forges send the tag object's id as `after`.
    repos.git(
        &repos.dev,
        &["tag", "-a", "-m", "Release 1.2.0", "v1.2.0", &release],
    );
    repos.git(&repos.dev, &["push", "--quiet", "origin", "v1.2.0"]);
    let tag_object = repos.git(&repos.dev, &["rev-parse", "v1.2.0"]);
    assert_ne!(tag_object, release);
    // main moves on before the tag's delivery arrives.
    let newer = repos.commit("newer");

    let (code, body) = d.push("app", "refs/tags/v1.2.0", &tag_object, "tag-1");
    assert_eq!(code, 202, "{body}");
    let (run, log) = finished(&config, 1);
    assert_eq!(run["status"], "succeeded", "{run:#}\nlog:\n{log}");
    assert_eq!(run["ref"], "refs/tags/v1.2.0");
    assert_eq!(
        repos.deployed(),
        release,
        "not the tagged commit; log:\n{log}"
    );
    assert!(log.contains("tag 'v1.2.0'"), "{log}");
    assert!(log.contains(&format!("deployed {release}")), "{log}");

    // A tag no glob matches, and a deleted tag: ignored.
    let (code, body) = d.push("app", "refs/tags/nightly", &newer, "tag-2");
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("matches no glob of tags"), "{body}");
    let zero = "0".repeat(40);
    let (code, body) = d.push("app", "refs/tags/v1.2.0", &zero, "tag-3");
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("tag v1.2.0 was deleted"), "{body}");

    // The branch still deploys its tip.
    assert_eq!(d.push("app", "refs/heads/main", &newer, "main-1").0, 202);
    let (run, log) = finished(&config, 2);
    assert_eq!(run["status"], "succeeded", "{run:#}\nlog:\n{log}");
    assert_eq!(repos.deployed(), newer, "log:\n{log}");
}
