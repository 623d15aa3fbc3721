//! Nothing acknowledged is lost: SIGKILL at every stage, restarts, dedupe
//! across restarts, graceful stop, reload, and an unwritable state_dir.

use crate::common;
use common::*;
use std::path::{Path, PathBuf};
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

/// A project whose script logs start/end to `marker`, sleeps `sleep`
/// seconds, and appends the deployed sha to `deployed`.
fn setup(name: &str, sleep: &str, server_extra: &str) -> (TestDir, PathBuf) {
    let dir = TestDir::new(name);
    let script = dir.script(
        "deploy.sh",
        "#!/bin/sh\necho \"start $DEPLOY_SHA $DEPLOY_TRIGGER\" >> marker\n\
         sleep \"$SLEEP\"\necho \"end $DEPLOY_SHA\" >> marker\necho \"$DEPLOY_SHA\" >> deployed\n",
    );
    let extra = format!(
        "working_dir = \"{}\"\nenv = {{ SLEEP = \"{sleep}\" }}\n",
        dir.path.display()
    );
    let config = write_config(&dir, server_extra, &project("app", &script, &extra));
    (dir, config)
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

/// start/end lines strictly alternate: no two runs ever overlapped.
fn assert_no_overlap(marker: &str) {
    let mut open = false;
    for line in marker.lines() {
        if line.starts_with("start") {
            assert!(!open, "two runs overlapped:\n{marker}");
            open = true;
        } else if line.starts_with("end") {
            open = false;
        }
    }
}

fn statuses(runs: &[serde_json::Value]) -> Vec<(String, String, String)> {
    let mut v: Vec<_> = runs
        .iter()
        .map(|r| {
            (
                r["trigger"].as_str().unwrap_or("").to_string(),
                r["status"].as_str().unwrap_or("").to_string(),
                r["sha"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    v.reverse(); // oldest first
    v
}

/// The push of SHA_A ran exactly once, as a webhook run, and succeeded.
fn assert_deployed_once(dir: &TestDir, config: &Path) {
    let runs = wait_runs(config, "app", 1, T);
    assert_eq!(
        statuses(&runs),
        vec![("webhook".into(), "succeeded".into(), SHA_A.into())]
    );
    assert_eq!(read(&dir.join("deployed")), format!("{SHA_A}\n"));
}

#[test]
fn kill_before_the_202_then_restart_runs_the_recorded_request() {
    let (dir, config) = setup("kill-before-ack", "0", "");
    let mut d = Daemon::start_with(&config, &[("DEPLOYD_FAULT", "before-ack")]);
    let addr = d.addr;
    let client = std::thread::spawn(move || {
        let body = push_body("refs/heads/main", SHA_A, "acme/app");
        std::panic::catch_unwind(|| {
            post(
                addr,
                "/hooks/app",
                &github_headers("push", "d-1", &sign(SECRET, body.as_bytes())),
                body.as_bytes(),
            )
        })
    });
    d.wait_log("fault point before-ack", T);
    d.kill9();
    // The client saw no 202 (the connection died).
    let answer = client.join().unwrap();
    assert!(
        !matches!(answer, Ok((202, _))),
        "a 202 escaped before the fault point: {answer:?}"
    );
    // The request was already durable: the next daemon runs it, once.
    let _d = Daemon::start(&config);
    assert_deployed_once(&dir, &config);
}

#[test]
fn kill_after_the_202_before_the_run() {
    let (dir, config) = setup("kill-before-run", "0", "");
    let mut d = Daemon::start_with(&config, &[("DEPLOYD_FAULT", "before-run")]);
    let (status, body) = d.push("app", "refs/heads/main", SHA_A, "d-1");
    assert_eq!(status, 202, "{body}");
    d.wait_log("fault point before-run", T);
    d.kill9();
    assert!(history(&config, "app").is_empty());
    let _d = Daemon::start(&config);
    assert_deployed_once(&dir, &config);
}

#[test]
fn kill_mid_run_waits_for_the_orphan_then_recovers() {
    let (dir, config) = setup("kill-mid-run", "2", "");
    let mut d = Daemon::start(&config);
    assert_eq!(d.push("app", "refs/heads/main", SHA_A, "d-1").0, 202);
    wait_until(T, "the script to start", || {
        read(&dir.join("marker")).contains("start")
    });
    d.kill9();
    // The script goes on without its daemon, holding the run lock; a new
    // daemon must wait for it before running the push again.
    let d2 = Daemon::start(&config);
    d2.wait_log("waiting for its processes to exit", T);
    let runs = wait_runs(&config, "app", 2, T);
    assert_eq!(
        statuses(&runs),
        vec![
            ("webhook".into(), "interrupted".into(), SHA_A.into()),
            ("recovery".into(), "succeeded".into(), SHA_A.into()),
        ],
        "{}",
        d2.log()
    );
    let marker = read(&dir.join("marker"));
    assert_no_overlap(&marker);
    assert_eq!(marker.matches("start").count(), 2, "{marker}");
    let text = cli_ok(&config, &["history", "app"], 0);
    assert!(
        text.contains("interrupted") && text.contains("recovery"),
        "{text}"
    );
}

#[test]
fn kill_after_the_script_before_the_record() {
    let (dir, config) = setup("kill-before-record", "0", "");
    let mut d = Daemon::start_with(&config, &[("DEPLOYD_FAULT", "before-record")]);
    assert_eq!(d.push("app", "refs/heads/main", SHA_A, "d-1").0, 202);
    d.wait_log("fault point before-record", T);
    d.kill9();
    let _d = Daemon::start(&config);
    let runs = wait_runs(&config, "app", 2, T);
    assert_eq!(
        statuses(&runs),
        vec![
            ("webhook".into(), "interrupted".into(), SHA_A.into()),
            ("recovery".into(), "succeeded".into(), SHA_A.into()),
        ]
    );
    assert_eq!(read(&dir.join("deployed")), format!("{SHA_A}\n{SHA_A}\n"));
}

#[test]
fn a_newer_pending_push_supersedes_the_recovery() {
    let (dir, config) = setup("supersede", "2", "");
    let mut d = Daemon::start(&config);
    assert_eq!(d.push("app", "refs/heads/main", SHA_A, "d-1").0, 202);
    wait_until(T, "the script to start", || {
        read(&dir.join("marker")).contains("start")
    });
    assert_eq!(d.push("app", "refs/heads/main", SHA_B, "d-2").0, 202);
    d.kill9();
    let _d = Daemon::start(&config);
    let runs = wait_runs(&config, "app", 2, T);
    assert_eq!(
        statuses(&runs),
        vec![
            ("webhook".into(), "interrupted".into(), SHA_A.into()),
            ("webhook".into(), "succeeded".into(), SHA_B.into()),
        ]
    );
}

/// Pushes with SIGKILLs at pseudo-random moments: the newest acknowledged
/// commit is always the last one deployed.
#[test]
fn random_kills_never_lose_the_newest_acknowledged_push() {
    let (dir, config) = setup("random-kills", "0.3", "");
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rand = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let mut newest_acked = None;
    let mut n = 0;
    for _round in 0..5 {
        let mut d = Daemon::start(&config);
        for _ in 0..(1 + rand(4)) {
            n += 1;
            let sha = format!("{n:040x}");
            if d.push("app", "refs/heads/main", &sha, &format!("d-{n}")).0 == 202 {
                newest_acked = Some(sha);
            }
            // Random gaps are the point: the kill must land at any moment
            // of a push's life, not at one the test can wait for.
            std::thread::sleep(Duration::from_millis(rand(300)));
        }
        d.kill9();
    }
    let d = Daemon::start(&config);
    let newest = newest_acked.expect("some push was acknowledged");
    wait_until(T, "the newest acknowledged commit to deploy", || {
        read(&dir.join("deployed")).lines().last() == Some(newest.as_str())
            && cli_ok(&config, &["status", "--json"], 0).contains("\"idle\"")
    });
    assert_no_overlap(&read(&dir.join("marker")));
    drop(d);
}

#[test]
fn a_redelivery_is_a_duplicate_across_restarts() {
    let (_dir, config) = setup("dedupe-restart", "0", "");
    let mut d = Daemon::start(&config);
    assert_eq!(d.push("app", "refs/heads/main", SHA_A, "same-id").0, 202);
    wait_runs(&config, "app", 1, T);
    d.signal("TERM");
    assert!(d.wait_exit(T).success());
    let mut d = Daemon::start(&config);
    let (status, body) = d.push("app", "refs/heads/main", SHA_A, "same-id");
    assert_eq!((status, body.contains("duplicate")), (200, true), "{body}");
    d.kill9();
    let d = Daemon::start(&config);
    let (status, body) = d.push("app", "refs/heads/main", SHA_A, "same-id");
    assert_eq!((status, body.contains("duplicate")), (200, true), "{body}");
    assert_eq!(history(&config, "app").len(), 1);
}

/// Pushes, sends SIGTERM while the run goes on, checks the daemon exits 0,
/// and returns the history.
fn term_during_a_run(config: &Path) -> Vec<serde_json::Value> {
    let mut d = Daemon::start(config);
    assert_eq!(d.push("app", "refs/heads/main", SHA_A, "d-1").0, 202);
    wait_until(T, "the run to start", || {
        history(config, "app")
            .first()
            .is_some_and(|r| r["status"] == "running")
    });
    d.signal("TERM");
    let status = d.wait_exit(T);
    assert!(status.success(), "exit {status:?}\n{}", d.log());
    history(config, "app")
}

#[test]
fn sigterm_lets_a_short_deploy_finish() {
    let (_dir, config) = setup("term-within-grace", "1", "shutdown_grace = \"10s\"");
    let runs = term_during_a_run(&config);
    assert_eq!(
        statuses(&runs),
        vec![("webhook".into(), "succeeded".into(), SHA_A.into())]
    );
}

#[test]
fn sigterm_interrupts_a_long_deploy_after_the_grace_and_requeues_it() {
    let (_dir, config) = setup("term-beyond-grace", "30", "shutdown_grace = \"1s\"");
    let runs = term_during_a_run(&config);
    assert_eq!(
        statuses(&runs),
        vec![("webhook".into(), "interrupted".into(), SHA_A.into())]
    );
    // It runs again at the next start, as a recovery (shortened this time).
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("SLEEP = \"30\"", "SLEEP = \"0\"");
    std::fs::write(&config, text).unwrap();
    let _d = Daemon::start(&config);
    let runs = wait_runs(&config, "app", 2, T);
    assert_eq!(
        statuses(&runs)[1],
        ("recovery".into(), "succeeded".into(), SHA_A.into())
    );
}

#[test]
fn sighup_applies_a_valid_config_and_refuses_an_invalid_one() {
    let (dir, config) = setup("reload", "0", "");
    let d = Daemon::start(&config);
    assert_eq!(d.push("other", "refs/heads/main", SHA_A, "d-0").0, 404);
    let script = dir.join("deploy.sh");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&project(
        "other",
        &script,
        &format!(
            "working_dir = \"{}\"\nenv = {{ SLEEP = \"0\" }}",
            dir.path.display()
        ),
    ));
    std::fs::write(&config, &text).unwrap();
    d.signal("HUP");
    d.wait_log("config reloaded: 2 project(s)", T);
    assert_eq!(d.push("other", "refs/heads/main", SHA_A, "d-1").0, 202);
    wait_runs(&config, "other", 1, T);

    std::fs::write(&config, format!("{text}\n[projects.other]\nscirpt = 1\n")).unwrap();
    d.signal("HUP");
    d.wait_log("reload refused", T);
    let log = d.log();
    assert!(
        log.contains("deploy.toml:"),
        "no file:line in the refusal:\n{log}"
    );
    // The old config still serves both projects.
    assert_eq!(d.push("app", "refs/heads/main", SHA_B, "d-2").0, 202);
    assert_eq!(d.push("other", "refs/heads/main", SHA_B, "d-3").0, 202);
}

#[test]
fn an_unwritable_state_dir_answers_503_and_recovers() {
    let (dir, config) = setup("unwritable", "0", "");
    let d = Daemon::start(&config);
    // Root ignores permissions, so make the queue directory impossible to
    // write into by replacing it with a plain file.
    let queue = dir.join("state/queue");
    std::fs::remove_dir_all(&queue).unwrap();
    std::fs::write(&queue, b"not a directory").unwrap();
    let (status, body) = d.push("app", "refs/heads/main", SHA_A, "d-1");
    assert_eq!(status, 503, "{body}");
    d.wait_log("cannot record the request durably", T);
    assert!(history(&config, "app").is_empty());
    // The disk is back: the forge's retry of the same delivery is accepted.
    std::fs::remove_file(&queue).unwrap();
    std::fs::create_dir(&queue).unwrap();
    let (status, body) = d.push("app", "refs/heads/main", SHA_A, "d-1");
    assert_eq!(status, 202, "{body}");
    let runs = wait_runs(&config, "app", 1, T);
    assert_eq!(runs[0]["status"], "succeeded");
}

#[test]
fn deploy_through_the_daemon_streams_and_no_wait_returns_once_queued() {
    let (dir, config) = setup("manual-socket", "0.5", "");
    let _d = Daemon::start(&config);
    let out = cli(&config, &["deploy", "app", "--sha", SHA_B]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stderr.contains("queued through the daemon"), "{stderr}");
    assert!(
        stdout.contains("=== deployd: run 1 of app (manual)"),
        "{stdout}"
    );
    assert!(stdout.contains("succeeded"), "{stdout}");
    let out = cli_ok(&config, &["deploy", "app", "--no-wait"], 0);
    let _ = out;
    let runs = wait_runs(&config, "app", 2, T);
    assert!(runs.iter().all(|r| r["trigger"] == "manual"));
    assert_no_overlap(&read(&dir.join("marker")));
}

#[test]
fn a_manual_run_after_a_crash_supersedes_the_recovery() {
    let (dir, config) = setup("manual-after-crash", "1", "");
    let mut d = Daemon::start(&config);
    assert_eq!(d.push("app", "refs/heads/main", SHA_A, "d-1").0, 202);
    wait_until(T, "the script to start", || {
        read(&dir.join("marker")).contains("start")
    });
    d.kill9();
    wait_until(T, "the orphaned script to end", || {
        read(&dir.join("marker")).contains("end")
    });
    // With no daemon, status tells the story instead of "idle".
    let status = cli_ok(&config, &["status"], 0);
    assert!(status.contains("interrupted: run 1"), "{status}");
    // The operator deploys a newer commit by hand...
    cli_ok(&config, &["deploy", "app", "--sha", SHA_B], 0);
    // ...so the next daemon must not roll back to the interrupted commit.
    let d = Daemon::start(&config);
    d.wait_log("not running interrupted run 1 again", T);
    let runs = history(&config, "app");
    assert_eq!(
        statuses(&runs),
        vec![
            ("webhook".into(), "interrupted".into(), SHA_A.into()),
            ("manual".into(), "succeeded".into(), SHA_B.into()),
        ]
    );
    assert_eq!(read(&dir.join("deployed")).lines().last(), Some(SHA_B));
}
