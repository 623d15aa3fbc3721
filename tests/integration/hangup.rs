//! A forge that hangs up mid-request loses nothing: once a push is verified
//! and judged, recording it runs to its end on its own task. At each step
//! (a fault point holds the request there) the client closes its
//! connection; the push still deploys exactly once, and its redelivery is
//! then a duplicate.

use crate::common;
use common::*;
use std::path::{Path, PathBuf};
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

/// Sends `body` with `headers` to `app` over a raw connection, waits for the
/// daemon to stop at `point`, hangs up, and releases the point.
fn send_and_hang_up(
    d: &Daemon,
    point: &str,
    release: &Path,
    body: &str,
    headers: &[(String, String)],
) {
    let s = send(d.addr, "POST", "/hooks/app", headers, body.as_bytes());
    d.wait_log(&format!("fault point {point}: pausing"), T);
    drop(s);
    // hyper saw the hang-up and dropped the request's future.
    d.wait_log("the client hung up before the answer (delivery=d-1)", T);
    std::fs::write(release, "").unwrap();
}

/// A project `app` whose script appends DEPLOY_SHA to the file returned,
/// with `extra` keys, and a daemon held at fault `point` until the file
/// returned second exists.
fn held_at(dir: &TestDir, point: &str, extra: &str) -> (Daemon, PathBuf, PathBuf) {
    let script = dir.script("deploy.sh", "#!/bin/sh\necho \"$DEPLOY_SHA\" >> \"$OUT\"\n");
    let out = dir.join("deployed");
    let keys = format!("env = {{ OUT = \"{}\" }}\n{extra}", out.display());
    let config = write_config(dir, "", &project("app", &script, &keys));
    let release = dir.join("release");
    let d = Daemon::start_with(
        &config,
        &[
            ("DEPLOYD_FAULT", point),
            ("DEPLOYD_FAULT_RELEASE", release.to_str().unwrap()),
        ],
    );
    (d, out, release)
}

/// Sends a signed push of SHA_A to `app`, hangs up at `point`, and checks
/// it deploys once and its redelivery is a duplicate.
fn hang_up_at(point: &str) {
    let dir = TestDir::new(&format!("hangup-{point}"));
    let (d, out, release) = held_at(&dir, point, "");
    let config = d.config.clone();
    let body = push_body("refs/heads/main", SHA_A, "acme/app");
    let headers = github_headers("push", "d-1", &sign(SECRET, body.as_bytes()));
    send_and_hang_up(&d, point, &release, &body, &headers);
    let runs = wait_runs(&config, "app", 1, T);
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["status"], "succeeded", "{runs:?}");
    // Kept: the forge's redelivery is a duplicate, and deploys nothing.
    let (code, answer) = post(d.addr, "/hooks/app", &headers, body.as_bytes());
    assert_eq!(code, 200, "{answer}");
    assert!(answer.contains("\"duplicate\""), "{answer}");
    let runs = history(&config, "app");
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), format!("{SHA_A}\n"));
}

/// The same for a push that waits for its CI (`after_ci`): the gate's
/// decision is written whole after the hang-up, so the push waits for its
/// CI, its redelivery is a duplicate, and the CI result deploys it once.
fn hang_up_gated_at(point: &str) {
    let dir = TestDir::new(&format!("hangup-gated-{point}"));
    let (d, out, release) = held_at(&dir, point, "after_ci = [\"CI\"]\n");
    let config = d.config.clone();
    let body = push_body("refs/heads/main", SHA_A, "acme/app");
    let headers = github_headers("push", "d-1", &sign(SECRET, body.as_bytes()));
    send_and_hang_up(&d, point, &release, &body, &headers);
    wait_until(T, "the push to wait for its CI", || {
        cli_ok(&config, &["status"], 0).contains("waiting for CI")
    });
    let (code, answer) = post(d.addr, "/hooks/app", &headers, body.as_bytes());
    assert_eq!(code, 200, "{answer}");
    assert!(answer.contains("\"duplicate\""), "{answer}");
    let (code, answer) = crate::ci_gate::green(&d, "CI", SHA_A, "ci-1");
    assert_eq!(code, 202, "{answer}");
    let runs = wait_runs(&config, "app", 1, T);
    assert_eq!(runs[0]["status"], "succeeded", "{runs:?}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), format!("{SHA_A}\n"));
}

#[test]
fn a_hang_up_after_the_dedupe_reservation_loses_nothing() {
    hang_up_at("before-write");
}

#[test]
fn a_hang_up_after_the_durable_write_still_wakes_the_executor() {
    hang_up_at("before-ack");
}

#[test]
fn a_hang_up_before_the_gate_writes_a_gated_push_loses_nothing() {
    hang_up_gated_at("before-write");
}

#[test]
fn a_hang_up_after_the_gate_wrote_a_gated_push_loses_nothing() {
    hang_up_gated_at("before-ack");
}
