//! The daemon as a process among others: one daemon per state directory and
//! per control socket, and what an idle daemon costs.

use crate::common;
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
    let child = Command::new(BIN)
        .args(["serve", "-c"])
        .arg(config)
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    output_within(
        child,
        T,
        &format!("a second deployd serve -c {}", config.display()),
    )
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
        explain(&b, &["deploy", "app"], &out)
    );

    // The kernel drops the lock of a killed daemon: a new one starts.
    first.kill9();
    let mut second = Daemon::start(&b);
    let status = cli_ok(&b, &["status"], 0);
    assert!(!status.contains("no daemon answers"), "{status}");
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

/// A field of /proc/<pid>/io (`syscr`: read-like system calls so far).
fn io_field(pid: u32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}: ")))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// A daemon that ran one deploy, then waits for the run to be recorded.
fn after_one_run(dir: &TestDir, env: &[(&str, &str)]) -> Daemon {
    let script = dir.script("deploy.sh", "#!/bin/sh\necho deployed\n");
    let config = write_config(
        dir,
        "",
        &project(
            "app",
            &script,
            &format!("working_dir = \"{}\"", dir.path.display()),
        ),
    );
    let d = Daemon::start_with(&config, env);
    assert_eq!(d.push("app", "refs/heads/main", SHA_A, "idle-1").0, 202);
    wait_runs(&config, "app", 1, T);
    d
}

#[test]
fn an_idle_daemon_without_systemd_never_wakes() {
    let dir = TestDir::new("idle");
    let d = after_one_run(&dir, &[]);
    let pid = d.child.id();
    // Let what the push and the run started settle (the record written,
    // the connection closed): no thread switching for 200 ms.
    let mut last = (switches(pid), Instant::now());
    let before = poll(T, "the daemon to go quiet for 200 ms after the run", || {
        let now = switches(pid);
        if now != last.0 {
            last = (now, Instant::now());
            return Err(format!("still switching: {:?}", last.0));
        }
        if last.1.elapsed() >= Duration::from_millis(200) {
            Ok(now)
        } else {
            Err(format!("quiet for {:?} only", last.1.elapsed()))
        }
    });
    // Nothing to wait for but the clock: the test is that nothing happens
    // for longer than any periodic timer deployd ever had (5 s).
    sleeps_through(pid, &before, Duration::from_secs(6));
}

#[test]
fn watchdog_pings_read_no_file() {
    use std::os::unix::net::UnixDatagram;
    use std::sync::{Arc, Mutex};
    let dir = TestDir::new("idle-watchdog");
    let sock_path = dir.join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    let got = Arc::new(Mutex::new(Vec::<String>::new()));
    {
        let got = got.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = sock.recv(&mut buf) {
                got.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
        });
    }
    let pings = || {
        got.lock()
            .unwrap()
            .iter()
            .filter(|m| *m == "WATCHDOG=1")
            .count()
    };
    let d = after_one_run(
        &dir,
        &[
            ("NOTIFY_SOCKET", sock_path.to_str().unwrap()),
            ("WATCHDOG_USEC", "200000"),
        ],
    );
    let pid = d.child.id();
    // The run is recorded; a few pings later the executor has taken note
    // of its end too.
    let settled = pings();
    wait_until(T, "three watchdog pings after the run", || {
        pings() >= settled + 3
    });
    assert!(
        got.lock().unwrap().iter().any(|m| m == "STATUS=idle"),
        "{:?}",
        got.lock().unwrap()
    );
    let (reads, first) = (io_field(pid, "syscr"), pings());
    wait_until(T, "ten more watchdog pings", || pings() >= first + 10);
    let reads_after = io_field(pid, "syscr");
    assert_eq!(
        reads,
        reads_after,
        "{} read calls during {} watchdog pings",
        reads_after - reads,
        pings() - first
    );
}

/// 30 unsigned pushes: 20 logged, then the rest counted.
fn thirty_unsigned(d: &Daemon) {
    let body = push_body("refs/heads/main", SHA_A, "acme/app");
    for i in 0..30 {
        let headers = github_headers("push", &format!("unsigned-{i}"), "sha256=00");
        assert_eq!(post(d.addr, "/hooks/app", &headers, body.as_bytes()).0, 401);
    }
    wait_until(T, "20 logged rejections", || {
        d.log().matches(" 401 (").count() >= 20
    });
}

fn quiet_daemon(dir: &TestDir) -> Daemon {
    let script = dir.script("deploy.sh", "#!/bin/sh\ntrue\n");
    let config = write_config(
        dir,
        "",
        &project(
            "app",
            &script,
            &format!("working_dir = \"{}\"", dir.path.display()),
        ),
    );
    Daemon::start(&config)
}

#[test]
fn rejections_left_out_of_the_log_are_counted_when_the_window_ends() {
    let dir = TestDir::new("quiet-window");
    let d = quiet_daemon(&dir);
    thirty_unsigned(&d);
    // The window is 10 s; nothing more arrives to trigger the count.
    d.wait_log(
        "10 more rejected requests in the last 10s were not logged",
        Duration::from_secs(25),
    );
    assert_eq!(d.log().matches(" 401 (").count(), 20, "{}", d.log());
}

#[test]
fn rejections_left_out_of_the_log_are_counted_at_shutdown() {
    let dir = TestDir::new("quiet-stop");
    let mut d = quiet_daemon(&dir);
    thirty_unsigned(&d);
    d.signal("TERM");
    assert!(d.wait_exit(T).success());
    let log = d.log();
    assert!(
        log.contains("10 more rejected requests in the last 10s were not logged"),
        "{log}"
    );
    let counted = log.find("were not logged").unwrap();
    assert!(counted < log.find("stopped").unwrap(), "{log}");
}
