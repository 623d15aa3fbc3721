//! Shutdown (README, *Running it*): SIGTERM stops taking work, and the
//! daemon exits only once every task it started ended. A push whose accept
//! task is still writing it when the signal comes is written (or answered
//! 503 and released), never dropped, even past the request deadline: the
//! daemon waits for it, and the next daemon deploys it once.

use crate::common;
use common::*;
use std::io::Read;
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

#[test]
fn sigterm_waits_for_a_push_being_written_and_the_next_daemon_deploys_it() {
    let dir = TestDir::new("shutdown-accept");
    let script = dir.script("deploy.sh", "#!/bin/sh\necho \"$DEPLOY_SHA\" >> \"$OUT\"\n");
    let out = dir.join("deployed");
    let config = write_config(
        &dir,
        "request_timeout = \"1s\"\n",
        &project(
            "app",
            &script,
            &format!("env = {{ OUT = \"{}\" }}\n", out.display()),
        ),
    );
    let release = dir.join("release");
    let mut d = Daemon::start_with(
        &config,
        &[
            ("DEPLOYD_FAULT", "before-write"),
            ("DEPLOYD_FAULT_RELEASE", release.to_str().unwrap()),
        ],
    );
    // The push's accept task stops at the fault point: verified, its
    // dedupe keys reserved, nothing written yet.
    let body = push_body("refs/heads/main", SHA_A, "acme/app");
    let headers = github_headers("push", "s-1", &sign(SECRET, body.as_bytes()));
    let mut s = send(d.addr, "POST", "/hooks/app", &headers, body.as_bytes());
    d.wait_log("fault point before-write: pausing", T);
    d.signal("TERM");
    // Past the request deadline (1 s, and the listener's second): the
    // connection is given up, the accept task is not.
    d.wait_log("connections still open after", T);
    // ... and closed: the forge's side sees the connection end.
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut rest = Vec::new();
    assert!(
        s.read_to_end(&mut rest).is_ok(),
        "the connection was left open after the grace:\n{}",
        d.log()
    );
    d.wait_log("deliveries still being recorded after", T);
    assert!(
        d.child.try_wait().unwrap().is_none(),
        "deployd exited with a push still being written:\n{}",
        d.log()
    );
    drop(s);
    std::fs::write(&release, "").unwrap();
    let status = d.wait_exit(T);
    assert!(status.success(), "{status:?}\n{}", d.log());
    // Every task ended before the last line.
    let log = d.log();
    let released = log.find("fault point before-write: released");
    let stopped = log.rfind("stopped");
    assert!(
        released.is_some() && released < stopped,
        "the daemon stopped before the accept task ended:\n{log}"
    );
    let last = log.trim_end().lines().last().unwrap_or_default();
    assert!(
        last.contains("stopped"),
        "the last line is not the stop:\n{log}"
    );
    assert!(!out.exists(), "deployed while stopping");
    drop(d);

    // Written: the next daemon deploys it once, and its redelivery is a
    // duplicate.
    let d = Daemon::start(&config);
    let runs = wait_runs(&config, "app", 1, T);
    assert_eq!(runs[0]["status"], "succeeded", "{runs:?}");
    assert_eq!(runs[0]["sha"], SHA_A, "{runs:?}");
    let (code, answer) = post(d.addr, "/hooks/app", &headers, body.as_bytes());
    assert_eq!(code, 200, "{answer}");
    assert!(answer.contains("\"duplicate\""), "{answer}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), format!("{SHA_A}\n"));
}
