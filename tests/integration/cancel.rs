//! `deployd cancel` (README, *Cancel and rollback*): a running run is
//! stopped at once with its whole process group and recorded `cancelled`,
//! through the daemon and without one; `--pending` drops the waiting
//! request; nothing to cancel exits 1; `on_new_push = "cancel"` lets a newer
//! push cancel the running deploy and run next.

// Helpers here and in common/ are test code: a panic is the failure report.

use crate::common;
use common::*;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(30);

/// A script that hangs: it ignores SIGTERM (so the cancel needs SIGKILL
/// after kill_grace), starts a grandchild that hangs too, writes both pids
/// to `pids`, then waits. A run of commit `b…` does not hang.
const HANGING: &str = r#"#!/bin/sh
trap '' TERM
echo "deploying $DEPLOY_SHA"
echo "$DEPLOY_SHA" >> "$PWD/shas"
case "$DEPLOY_SHA" in b*) exit 0 ;; esac
sleep 300 &
echo "$$ $!" > "$PWD/pids"
echo "hanging"
wait
"#;

fn sha(c: char) -> String {
    c.to_string().repeat(40)
}

/// The newest run of `app` once it has status `status`.
fn run_with(config: &Path, id: u64, status: &str) -> Value {
    poll(LIMIT, &format!("run {id} {status}"), || {
        let runs = history(config, "app");
        runs.iter()
            .find(|r| r["id"] == id && r["status"] == status)
            .cloned()
            .ok_or_else(|| serde_json::to_string_pretty(&runs).unwrap())
    })
}

/// The pids the hanging script wrote, once it wrote them.
fn pids(dir: &TestDir) -> Vec<i32> {
    poll(LIMIT, "the script's pids", || {
        let text = std::fs::read_to_string(dir.join("pids")).unwrap_or_default();
        let pids: Vec<i32> = text
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        if pids.len() == 2 { Ok(pids) } else { Err(text) }
    })
}

fn setup(name: &str, extra: &str) -> (TestDir, std::path::PathBuf) {
    let dir = TestDir::new(name);
    let script = dir.script("deploy.sh", HANGING);
    let config = write_config(
        &dir,
        "",
        &project(
            "app",
            &script,
            &format!(
                "working_dir = \"{}\"\nkill_grace = \"1s\"\n{extra}",
                dir.path.display()
            ),
        ),
    );
    (dir, config)
}

#[test]
fn cancel_stops_a_hanging_run_and_all_its_processes() {
    let (dir, config) = setup("cancel-run", "");
    let d = Daemon::start(&config);
    // Nothing runs yet: exit 1, with why.
    let out = cli(&config, &["cancel", "app"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        explain(&config, &["cancel", "app"], &out)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no running run"),
        "{}",
        explain(&config, &["cancel", "app"], &out)
    );

    assert_eq!(d.push("app", "refs/heads/main", &sha('a'), "c-1").0, 202);
    let pids = pids(&dir);
    run_with(&config, 1, "running");
    let start = Instant::now();
    let out = cli(&config, &["cancel", "app"]);
    let took = start.elapsed();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        explain(&config, &["cancel", "app"], &out)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("run 1 cancelled"),
        "{}",
        explain(&config, &["cancel", "app"], &out)
    );
    // kill_grace is 1 s: SIGTERM ignored, SIGKILL after it, nothing more.
    assert!(took < Duration::from_secs(8), "cancel took {took:?}");
    let run = run_with(&config, 1, "cancelled");
    assert_eq!(run["signal"], 9, "{run:#}");
    for pid in pids {
        assert!(!alive(pid), "process {pid} of the cancelled run survived");
    }
    let log = std::fs::read_to_string(run["log"].as_str().unwrap()).unwrap();
    assert!(log.contains("cancelled: stopping the run"), "{log}");
    assert!(log.contains("run 1 cancelled after"), "{log}");
    // Who asked is written before the script is stopped: there already as
    // the record says cancelled, and before the run's last lines.
    let note = log.find("=== deployd: cancelled by ");
    let stopping = log.find("cancelled: stopping the run");
    assert!(
        note.is_some() && note < stopping,
        "the note of who cancelled is not before the stop:\n{log}"
    );
    // The status page knows it.
    let status = cli_ok(&config, &["status"], 0);
    assert!(status.contains("run 1 cancelled"), "{status}");
    // And again: nothing runs now.
    cli_ok(&config, &["cancel", "app"], 1);
}

#[test]
fn cancel_pending_drops_the_waiting_request() {
    let (dir, config) = setup("cancel-pending", "");
    let d = Daemon::start(&config);
    cli_ok(&config, &["cancel", "app", "--pending"], 1);
    assert_eq!(d.push("app", "refs/heads/main", &sha('a'), "p-1").0, 202);
    pids(&dir);
    // The pending request: a manual deploy that follows its run.
    let follower = Command::new(BIN)
        .arg("-c")
        .arg(&config)
        .args(["deploy", "app", "--sha", &sha('c')])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut follower = KillOnDrop(follower);
    poll(LIMIT, "a pending request", || {
        let s = cli_ok(&config, &["status"], 0);
        if s.contains("pending:") {
            Ok(())
        } else {
            Err(s)
        }
    });
    let out = cli(&config, &["cancel", "app", "--pending"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("request cancelled before it ran"), "{err}");
    assert!(err.contains(&sha('c')[..12]), "{err}");
    // Who followed it is told, and fails.
    let stderr = drain(follower.0.stderr.take().unwrap());
    let status = wait_exit(&mut follower.0, LIMIT, "deployd deploy", String::new);
    let said = stderr.wait();
    let said = String::from_utf8_lossy(&said);
    assert_eq!(status.code(), Some(1), "{said}");
    assert!(said.contains("cancelled before it ran"), "{said}");
    // The running run goes on; then is cancelled too.
    run_with(&config, 1, "running");
    cli_ok(&config, &["cancel", "app"], 0);
    run_with(&config, 1, "cancelled");
    // The dropped request never runs, and is gone from the disk too.
    d.wait_log("pending request cancelled", LIMIT);
    poll(LIMIT, "the queue file removed", || {
        let f = dir.join("state/queue/app.json");
        if f.exists() {
            Err(std::fs::read_to_string(f).unwrap_or_default())
        } else {
            Ok(())
        }
    });
    let status = cli_ok(&config, &["status"], 0);
    assert!(!status.contains("pending:"), "{status}");
    assert_eq!(history(&config, "app").len(), 1);
    let shas = std::fs::read_to_string(dir.join("shas")).unwrap();
    assert_eq!(shas.lines().count(), 1, "{shas}");
}

#[test]
fn a_newer_push_cancels_the_running_deploy_with_on_new_push_cancel() {
    let (dir, config) = setup("cancel-newer", "on_new_push = \"cancel\"");
    let d = Daemon::start(&config);
    assert_eq!(d.push("app", "refs/heads/main", &sha('a'), "n-1").0, 202);
    let pids = pids(&dir);
    assert_eq!(d.push("app", "refs/heads/main", &sha('b'), "n-2").0, 202);
    run_with(&config, 1, "cancelled");
    let run = run_with(&config, 2, "succeeded");
    assert_eq!(run["sha"], sha('b').as_str(), "{run:#}");
    for pid in pids {
        assert!(!alive(pid), "process {pid} of the cancelled run survived");
    }
}

#[test]
fn by_default_a_newer_push_waits() {
    let (dir, config) = setup("cancel-queue", "");
    let d = Daemon::start(&config);
    assert_eq!(d.push("app", "refs/heads/main", &sha('a'), "q-1").0, 202);
    pids(&dir);
    assert_eq!(d.push("app", "refs/heads/main", &sha('b'), "q-2").0, 202);
    poll(LIMIT, "a pending request", || {
        let s = cli_ok(&config, &["status"], 0);
        if s.contains("pending:") {
            Ok(())
        } else {
            Err(s)
        }
    });
    run_with(&config, 1, "running");
    cli_ok(&config, &["cancel", "app"], 0);
    run_with(&config, 2, "succeeded");
}

#[test]
fn cancel_without_a_daemon_stops_a_direct_deploy() {
    let (dir, config) = setup("cancel-direct", "");
    let deploy = Command::new(env!("CARGO_BIN_EXE_deployd"))
        .arg("-c")
        .arg(&config)
        .args(["deploy", "app", "--sha", &sha('a')])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut deploy = KillOnDrop(deploy);
    let pids = pids(&dir);
    run_with(&config, 1, "running");
    let out = cli(&config, &["cancel", "app"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        explain(&config, &["cancel", "app"], &out)
    );
    let status = wait_exit(&mut deploy.0, LIMIT, "deployd deploy", String::new);
    assert_eq!(status.code(), Some(1));
    let run = run_with(&config, 1, "cancelled");
    assert_eq!(run["trigger"], "manual");
    for pid in pids {
        assert!(!alive(pid), "process {pid} of the cancelled run survived");
    }
    // Nothing runs now.
    cli_ok(&config, &["cancel", "app"], 1);
}

#[test]
fn cancel_of_a_dead_daemons_run_says_at_once_what_to_do() {
    let (dir, config) = setup("cancel-orphan", "");
    let mut d = Daemon::start(&config);
    assert_eq!(d.push("app", "refs/heads/main", &sha('a'), "o-1").0, 202);
    let pids = pids(&dir);
    d.kill9();
    // Nobody is left to ask: no waiting, and where to look instead.
    let start = Instant::now();
    let out = cli(&config, &["cancel", "app"]);
    let took = start.elapsed();
    let (_, stderr) = expect_code(&out, 1, "cancel app");
    for pid in &pids {
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
    }
    assert!(
        stderr.contains("run 1 (webhook) was started by a daemon that is gone")
            && stderr.contains("fuser -v ")
            && stderr.contains("locks/app.lock"),
        "{stderr}"
    );
    assert!(took < Duration::from_secs(5), "cancel took {took:?}");
}

#[test]
fn the_health_check_gets_the_run_and_can_be_cancelled() {
    let dir = TestDir::new("cancel-health");
    let script = dir.script("deploy.sh", "#!/bin/sh\necho deployed\n");
    let check = dir.script(
        "check.sh",
        "#!/bin/sh\necho \"check $DEPLOY_SHA in $(pwd)\"\n\
         if [ -e hang ]; then exec sleep 300; fi\nexit 1\n",
    );
    let config = write_config(
        &dir,
        "",
        &project(
            "app",
            &script,
            &format!(
                "working_dir = \"{}\"\nkill_grace = \"1s\"\nhealth_check = [\"{}\"]\n\
                 health_retries = 3\nhealth_interval = \"50ms\"\nhealth_timeout = \"60s\"",
                dir.path.display(),
                check.display()
            ),
        ),
    );
    let d = Daemon::start(&config);
    // Every try fails: unhealthy; on_unhealthy is "keep" by default.
    assert_eq!(d.push("app", "refs/heads/main", &sha('a'), "h-1").0, 202);
    let run = run_with(&config, 1, "unhealthy");
    assert_eq!(run["exit_code"], 0, "{run:#}");
    let log = std::fs::read_to_string(run["log"].as_str().unwrap()).unwrap();
    let seen = format!("check {} in {}", sha('a'), dir.path.display());
    assert_eq!(log.matches(&seen).count(), 3, "{log}");
    assert!(log.contains("the run is unhealthy"), "{log}");
    assert!(!log.contains("rolling back"), "{log}");

    // A check that hangs is cancelled like a script.
    std::fs::write(dir.join("hang"), "").unwrap();
    assert_eq!(d.push("app", "refs/heads/main", &sha('c'), "h-2").0, 202);
    let run = poll(LIMIT, "the health check going", || {
        let runs = history(&config, "app");
        let run = runs.iter().find(|r| r["id"] == 2).cloned();
        match run {
            Some(r)
                if std::fs::read_to_string(r["log"].as_str().unwrap())
                    .unwrap_or_default()
                    .contains(&format!("check {}", sha('c'))) =>
            {
                Ok(r)
            }
            _ => Err(serde_json::to_string_pretty(&runs).unwrap()),
        }
    });
    assert_eq!(run["status"], "running", "{run:#}");
    cli_ok(&config, &["cancel", "app"], 0);
    let run = run_with(&config, 2, "cancelled");
    let log = std::fs::read_to_string(run["log"].as_str().unwrap()).unwrap();
    assert!(log.contains("cancelled during the health check"), "{log}");
    assert_eq!(history(&config, "app").len(), 2);
}
