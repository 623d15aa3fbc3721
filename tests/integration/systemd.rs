//! systemd integration: notifications (path and abstract sockets), watchdog,
//! reload, socket activation, credentials, journald-style logs, and children
//! that inherit none of systemd's variables.

use crate::common;
use common::*;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

/// Collects every datagram sent to `sock` in the background.
fn collect(sock: UnixDatagram) -> Arc<Mutex<Vec<String>>> {
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = got.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = sock.recv(&mut buf) {
            g.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    });
    got
}

fn wait_msg(got: &Arc<Mutex<Vec<String>>>, what: &str) {
    wait_until(T, &format!("notification {what:?}"), || {
        got.lock().unwrap().iter().any(|m| m.contains(what))
    });
}

/// A project whose run lasts until the file `go` appears in the test
/// directory (20 s at most): the test decides what happens during the run.
fn slow_project(dir: &TestDir) -> std::path::PathBuf {
    let script = dir.script(
        "deploy.sh",
        "#!/bin/sh\nenv > env.txt\ni=0\n\
         while [ ! -e go ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done\n",
    );
    write_config(
        dir,
        "",
        &project(
            "app",
            &script,
            &format!("working_dir = \"{}\"", dir.path.display()),
        ),
    )
}

fn notifications(name: &str, socket_env: impl Fn(&TestDir) -> (String, UnixDatagram)) {
    let dir = TestDir::new(name);
    let config = slow_project(&dir);
    let (notify_env, sock) = socket_env(&dir);
    let got = collect(sock);
    let mut d = Daemon::start_with(
        &config,
        &[("NOTIFY_SOCKET", &notify_env), ("WATCHDOG_USEC", "400000")],
    );
    wait_msg(&got, "READY=1");
    wait_msg(&got, "STATUS=idle");
    assert_eq!(d.push("app", "refs/heads/main", SHA_A, "n-1").0, 202);
    wait_msg(&got, "STATUS=deploying app aaaaaaaaaaaa");
    wait_until(T, "at least 3 watchdog pings", || {
        got.lock()
            .unwrap()
            .iter()
            .filter(|m| *m == "WATCHDOG=1")
            .count()
            >= 3
    });
    d.signal("HUP");
    wait_msg(&got, "RELOADING=1");
    let msgs = got.lock().unwrap().clone();
    let reloading = msgs.iter().find(|m| m.contains("RELOADING=1")).unwrap();
    assert!(reloading.contains("MONOTONIC_USEC="), "{reloading}");
    wait_until(T, "READY=1 after RELOADING=1", || {
        let m = got.lock().unwrap();
        let r = m.iter().position(|x| x.contains("RELOADING=1")).unwrap();
        m[r..].iter().any(|x| x.starts_with("READY=1"))
    });
    // The reload happened during the run; now let it end.
    std::fs::write(dir.join("go"), "").unwrap();
    wait_runs(&config, "app", 1, T);
    d.signal("TERM");
    assert!(d.wait_exit(T).success());
    wait_msg(&got, "STOPPING=1");
    // The script saw none of systemd's variables.
    let env = std::fs::read_to_string(dir.join("env.txt")).unwrap();
    for var in [
        "NOTIFY_SOCKET",
        "WATCHDOG_USEC",
        "WATCHDOG_PID",
        "LISTEN_FDS",
        "LISTEN_PID",
    ] {
        assert!(!env.contains(var), "{var} leaked into the script:\n{env}");
    }
}

#[test]
fn notify_on_a_path_socket() {
    notifications("notify-path", |dir| {
        let p = dir.join("notify.sock");
        let sock = UnixDatagram::bind(&p).unwrap();
        (p.display().to_string(), sock)
    });
}

#[test]
fn notify_on_an_abstract_socket() {
    notifications("notify-abstract", |_| {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("deployd-it-notify-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        (format!("@{name}"), UnixDatagram::bind_addr(&addr).unwrap())
    });
}

#[test]
fn socket_activation_through_systemd_socket_activate() {
    let Ok(tool) = which("systemd-socket-activate") else {
        eprintln!("SKIPPED: systemd-socket-activate is not installed (Debian package systemd)");
        return;
    };
    let dir = TestDir::new("activate");
    let script = dir.script("deploy.sh", "#!/bin/sh\nenv > env.txt\n");
    // An address deployd could never bind: the socket must come from systemd.
    let config = write_config(
        &dir,
        "",
        &project(
            "app",
            &script,
            &format!("working_dir = \"{}\"", dir.path.display()),
        ),
    );
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("listen = \"127.0.0.1:0\"", "listen = \"192.0.2.1:9\"");
    std::fs::write(&config, text).unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let listen = format!("127.0.0.1:{port}");
    // systemd-socket-activate starts the service at the first connection,
    // as systemd does for a socket unit.
    let first = std::thread::spawn(move || {
        let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        poll(T, &format!("something listening on {addr}"), || {
            std::net::TcpStream::connect(addr).map_err(|e| e.to_string())
        });
        request(addr, "GET", "/healthz", &[], b"").0
    });
    let d = Daemon::start_wrapped(&config, &[], &[&tool, "-l", &listen]);
    assert_eq!(
        first.join().unwrap(),
        200,
        "the first connection was not served"
    );
    assert_eq!(d.addr.port(), port, "{}", d.log());
    assert_eq!(d.push("app", "refs/heads/main", SHA_A, "a-1").0, 202);
    wait_runs(&config, "app", 1, T);
    let env = std::fs::read_to_string(dir.join("env.txt")).unwrap();
    assert!(
        !env.contains("LISTEN_"),
        "LISTEN_* leaked into the script:\n{env}"
    );
}

fn which(tool: &str) -> Result<String, ()> {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .map_err(|_| ())?;
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if out.status.success() && !path.is_empty() {
        Ok(path)
    } else {
        Err(())
    }
}

#[test]
fn secret_from_a_systemd_credential() {
    let dir = TestDir::new("credential");
    let creds = dir.join("credentials");
    std::fs::create_dir(&creds).unwrap();
    std::fs::write(creds.join("app.secret"), format!("{SECRET}\n")).unwrap();
    let script = dir.script("deploy.sh", "#!/bin/sh\nenv > env.txt\n");
    let table = format!(
        "[projects.app]\nsecret_credential = \"app.secret\"\nrepository = \"acme/app\"\nscript = \"{}\"\nworking_dir = \"{}\"\n",
        script.display(),
        dir.path.display()
    );
    let config = write_config(&dir, "", &table);
    // Without $CREDENTIALS_DIRECTORY, check says the credential is missing.
    let out = cli(&config, &["check"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        explain(&config, &["check"], &out)
    );
    assert!(
        stderr.contains("projects.app.secret_credential") && stderr.contains("missing"),
        "{stderr}"
    );
    let mut cmd = Command::new(BIN);
    cmd.args(["-c", config.to_str().unwrap(), "check"])
        .env("CREDENTIALS_DIRECTORY", &creds);
    let ok = output_of(&mut cmd);
    assert!(
        ok.status.success(),
        "{}",
        describe(&format!("{cmd:?}"), &ok)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("secret_credential app.secret"));
    // The daemon reads it, trailing newline trimmed: the test secret signs.
    let d = Daemon::start_with(
        &config,
        &[("CREDENTIALS_DIRECTORY", creds.to_str().unwrap())],
    );
    assert_eq!(d.push("app", "refs/heads/main", SHA_A, "c-1").0, 202);
    wait_runs(&config, "app", 1, T);
    let env = std::fs::read_to_string(dir.join("env.txt")).unwrap();
    assert!(
        !env.contains("CREDENTIALS_DIRECTORY") && !env.contains(SECRET),
        "{env}"
    );
}

#[test]
fn journal_format_when_stderr_is_the_journal() {
    let dir = TestDir::new("journal");
    let config = slow_project(&dir);
    let log_path = dir.join("stderr.log");
    let file = std::fs::File::create(&log_path).unwrap();
    let meta = file.metadata().unwrap();
    let stream = format!("{}:{}", meta.dev(), meta.ino());
    let mut child = KillOnDrop(
        Command::new(BIN)
            .args(["serve", "-c", config.to_str().unwrap()])
            .env("JOURNAL_STREAM", &stream)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap(),
    );
    wait_text(T, "the daemon's log", "listening on", || {
        let mut text = String::new();
        std::fs::File::open(&log_path)
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        text
    });
    let _ = Command::new("kill").arg(child.0.id().to_string()).status();
    wait_exit(&mut child.0, T, "deployd serve after SIGTERM", || {
        format!(
            "stderr:\n{}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        )
    });
    let text = std::fs::read_to_string(&log_path).unwrap();
    for line in text.lines() {
        assert!(
            line.starts_with("<6>") || line.starts_with("<4>") || line.starts_with("<3>"),
            "not a journal line: {line:?}\n{text}"
        );
        assert!(!line.contains("\x1b["), "colour in {line:?}");
        assert!(!line.contains(" INFO "), "plain level in {line:?}");
    }
    assert!(text.contains("<6>listening on http://127.0.0.1:"), "{text}");
    // On a plain file (no JOURNAL_STREAM), lines carry a timestamp and level.
    let d = Daemon::start(&config);
    assert!(
        d.log().lines().next().unwrap().contains(" INFO "),
        "{}",
        d.log()
    );
}
