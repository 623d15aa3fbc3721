//! Journal priorities: when stderr is the journal (JOURNAL_STREAM names it),
//! each line carries the `<N>` prefix of its level, and a failed deploy is an
//! error (`<3>`, what `journalctl -p err` shows), not a warning.

use crate::common;
use common::*;
use std::os::unix::fs::MetadataExt;
use std::process::{Command, Stdio};
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

#[test]
fn a_failed_deploy_is_logged_at_priority_err() {
    let dir = TestDir::new("journal-err");
    let script = dir.script("deploy.sh", "#!/bin/sh\necho broken build\nexit 3\n");
    let config = write_config(&dir, "", &project("app", &script, ""));
    let log_path = dir.join("stderr.log");
    let file = std::fs::File::create(&log_path).unwrap();
    let meta = file.metadata().unwrap();
    let mut child = KillOnDrop(
        Command::new(BIN)
            .args(["serve", "-c", config.to_str().unwrap()])
            .env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()))
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap(),
    );
    let read = || std::fs::read_to_string(&log_path).unwrap_or_default();
    wait_text(T, "the daemon's log", "listening on", read);
    let addr = read()
        .lines()
        .find_map(|l| l.split("listening on http://").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap();
    let body = push_body("refs/heads/main", SHA_A, "acme/app");
    let (status, _) = post(
        addr,
        "/hooks/app",
        &github_headers("push", "j-1", &sign(SECRET, body.as_bytes())),
        body.as_bytes(),
    );
    assert_eq!(status, 202);
    wait_text(T, "the daemon's log", "run 1 failed", read);
    let _ = child.0.kill();
    let _ = child.0.wait();
    let text = read();
    let line = text.lines().find(|l| l.contains("run 1 failed")).unwrap();
    assert!(
        line.starts_with("<3>app: run 1 failed (exit code 3;"),
        "{line:?}\n{text}"
    );
}
