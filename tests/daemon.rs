//! The daemon as a process among others: one daemon per state directory and
//! per control socket, and what an idle daemon costs.
#![allow(clippy::unwrap_used)]

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(30);

/// A config file `file` in `dir` with its own control socket and the given
/// state directory.
fn config_with(dir: &TestDir, file: &str, state: &str, socket: &str, script: &Path) -> PathBuf {
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nstate_dir = \"{state}\"\nlog_dir = \"logs\"\n\
         control_socket = \"{socket}\"\nshutdown_grace = \"5s\"\n\n{}",
        project(
            "app",
            script,
            &format!("working_dir = \"{}\"", dir.path.display())
        )
    );
    let p = dir.join(file);
    std::fs::write(&p, text).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p
}

/// Runs `deployd serve -c config`, expecting it to refuse and exit by itself
/// (bounded); returns what it printed.
fn serve_refused(config: &Path) -> Output {
    let mut child = Command::new(BIN)
        .args(["serve", "-c"])
        .arg(config)
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > T {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "a second serve kept running; stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn a_second_daemon_on_the_same_state_dir_is_refused_until_the_first_dies() {
    let dir = TestDir::new("state-lock");
    let script = dir.script("deploy.sh", "#!/bin/sh\necho deployed >> deployed.txt\n");
    let a = config_with(&dir, "a.toml", "state", "a.sock", &script);
    let b = config_with(&dir, "b.toml", "state", "b.sock", &script);
    let mut first = Daemon::start(&a);

    let out = serve_refused(&b);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr:\n{err}");
    let socket = dir.join("a.sock");
    assert!(
        err.contains(&format!(
            "pid {}, control socket {}",
            first.pid(),
            socket.display()
        )),
        "the refusal names neither the holder's pid nor its socket:\n{err}"
    );
    assert!(err.contains("systemctl stop deployd"), "{err}");
    // It did not take over the first daemon's socket or touch its queue.
    assert!(dir.join("a.sock").exists());
    assert!(!dir.join("b.sock").exists());

    // A direct deploy (no daemon answers on b.sock) works beside the
    // daemon: it needs only the project's run lock.
    let out = cli(&b, &["deploy", "app"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "direct deploy beside a daemon: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The kernel drops the lock of a killed daemon: a new one starts.
    first.kill9();
    let mut second = Daemon::start(&b);
    second.signal("TERM");
    assert!(second.wait_exit(T).success(), "{}", second.log());
}

#[test]
fn a_second_daemon_on_the_same_control_socket_names_the_first() {
    let dir = TestDir::new("socket-taken");
    let script = dir.script("deploy.sh", "#!/bin/sh\ntrue\n");
    let a = config_with(&dir, "a.toml", "state-a", "control.sock", &script);
    let b = config_with(&dir, "b.toml", "state-b", "control.sock", &script);
    let first = Daemon::start(&a);
    let out = serve_refused(&b);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr:\n{err}");
    assert!(
        err.contains(&format!("another deployd (pid {})", first.pid())),
        "the refusal does not name the other daemon's pid:\n{err}"
    );
    assert!(
        err.contains("systemctl stop deployd") && err.contains("another control_socket"),
        "the refusal does not say what to do:\n{err}"
    );
}
