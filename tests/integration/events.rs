//! Run events of a direct `deployd deploy` (no daemon answers) reach the
//! next daemon: they wait in `<state_dir>/events/`, which the daemon
//! publishes and empties when it starts (README, *Development*: `events.rs`).

use crate::common;

use std::time::Duration;

use common::*;

/// The spooled events, oldest first, as JSON.
fn spooled(dir: &TestDir) -> Vec<serde_json::Value> {
    let mut paths: Vec<_> = match std::fs::read_dir(dir.join("state/events")) {
        Ok(entries) => entries.map(|e| e.unwrap().path()).collect(),
        Err(_) => return Vec::new(),
    };
    paths.sort();
    paths
        .iter()
        .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
        .collect()
}

#[test]
fn a_direct_runs_events_wait_for_the_next_daemon() {
    let dir = TestDir::new("events-spool");
    let script = dir.script("deploy.sh", "#!/bin/sh\necho deployed\nexit 3\n");
    let config = write_config(&dir, "", &project("app", &script, ""));

    let out = cli(&config, &["deploy", "app", "--sha", SHA_A]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let events = spooled(&dir);
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e.as_object().unwrap().keys().next().unwrap().as_str())
        .collect();
    assert_eq!(kinds, ["queued", "started", "finished"], "{events:#?}");
    assert_eq!(events[0]["queued"]["trigger"], "manual");
    assert_eq!(events[0]["queued"]["sha"], SHA_A);
    assert_eq!(events[1]["started"]["status"], "running");
    // The end carries the outcome, as the run's record holds it.
    let record = &history(&config, "app")[0];
    assert_eq!(&events[2]["finished"], record);
    assert_eq!(record["status"], "failed");
    assert_eq!(record["exit_code"], 3);

    let d = Daemon::start(&config);
    d.wait_log("published 3 run event(s)", Duration::from_secs(10));
    assert!(spooled(&dir).is_empty(), "the daemon empties the spool");
}

/// A daemon killed after reading a direct run's spooled events, before the
/// outbox wrote what they owe: the next daemon still sends the
/// notification.
#[test]
fn a_kill_between_replay_and_the_outbox_loses_no_notification() {
    let dir = TestDir::new("events-kill-replay");
    let script = dir.script("deploy.sh", "#!/bin/sh\necho deployed\n");
    let out = dir.join("notified.jsonl");
    let cmd = dir.script(
        "notify.sh",
        &format!("#!/bin/sh\ncat >>{0}\necho >>{0}\n", out.display()),
    );
    let targets = format!(
        "[notify.cmd]\nkind = \"command\"\ncommand = [\"{}\"]\non = [\"succeeded\"]\n",
        cmd.display()
    );
    let config = write_config(
        &dir,
        "",
        &format!("{}{targets}", project("app", &script, "")),
    );
    let o = cli(&config, &["deploy", "app", "--sha", SHA_A]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert_eq!(spooled(&dir).len(), 3);

    // Stopped before it listens: started by hand, its log in a file.
    let log = dir.join("first.log");
    let mut first = KillOnDrop(
        std::process::Command::new(BIN)
            .arg("-c")
            .arg(&config)
            .arg("serve")
            .env("DEPLOYD_FAULT", "before-outbox")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    wait_text(
        Duration::from_secs(10),
        "the fault point",
        "fault point before-outbox",
        || std::fs::read_to_string(&log).unwrap_or_default(),
    );
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    assert!(!out.exists(), "notified before the outbox wrote anything");

    let _d = Daemon::start(&config);
    wait_until(
        Duration::from_secs(30),
        "the succeeded notification",
        || std::fs::read_to_string(&out).is_ok_and(|t| t.contains("succeeded")),
    );
    assert!(spooled(&dir).is_empty(), "the daemon empties the spool");
}
