//! Hostile input and load: stalled clients, floods of bad signatures, large
//! bodies, connection caps — while a real signed push is still acknowledged
//! at once and deploys.

use crate::common;
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(30);

fn setup(name: &str, server_extra: &str) -> (TestDir, std::path::PathBuf) {
    let dir = TestDir::new(name);
    let script = dir.script("deploy.sh", "#!/bin/sh\necho \"deployed $DEPLOY_SHA\"\n");
    let config = write_config(&dir, server_extra, &project("app", &script, ""));
    (dir, config)
}

/// Opens a connection and sends the start of a request, never finishing it.
fn stall(addr: std::net::SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"POST /hooks/app HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .unwrap();
    s
}

/// Whether the server closed `s` within `limit` (EOF or reset).
fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    s.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 512];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue, // an error answer before the close is fine
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                return false;
            }
            Err(_) => return true,
        }
    }
}

fn rss_kib(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap()
}

#[test]
fn stalled_clients_do_not_delay_a_real_push() {
    // A header deadline far beyond the client's read timeout: the stalled
    // connections hold their slots for the whole test, so the push can only
    // succeed if the daemon serves it beside them.
    let (_dir, config) = setup("stalled", "header_timeout = \"120s\"");
    let d = Daemon::start(&config);
    let _stalled: Vec<TcpStream> = (0..200).map(|_| stall(d.addr)).collect();
    let (status, body) = d.push("app", "refs/heads/main", SHA_A, "real-1");
    assert_eq!(status, 202, "{body}");
    let runs = wait_runs(&config, "app", 1, T);
    assert_eq!(runs[0]["status"], "succeeded");
}

#[test]
fn a_stalled_connection_is_closed_by_the_header_deadline() {
    let (_dir, config) = setup("header-deadline", "header_timeout = \"1s\"");
    let d = Daemon::start(&config);
    let mut s = stall(d.addr);
    let started = Instant::now();
    assert!(closed_within(&mut s, Duration::from_secs(10)));
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(800),
        "closed before the deadline: {took:?}"
    );
}

#[test]
fn a_slow_body_is_cut_by_the_request_deadline() {
    let (_dir, config) = setup("body-deadline", "request_timeout = \"1s\"");
    let d = Daemon::start(&config);
    let mut s = TcpStream::connect(d.addr).unwrap();
    s.write_all(b"POST /hooks/app HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"ref\"")
        .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let (status, _) = parse_response(&resp);
    assert_eq!(status, 408);
}

#[test]
fn an_idle_keep_alive_connection_is_closed() {
    let (_dir, config) = setup("idle", "idle_timeout = \"1s\"");
    let d = Daemon::start(&config);
    let mut s = TcpStream::connect(d.addr).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 1024];
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let n = s.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    assert!(
        closed_within(&mut s, Duration::from_secs(10)),
        "idle connection kept open"
    );
}

#[test]
fn connections_over_the_cap_are_refused_at_once() {
    let (_dir, config) = setup("cap", "max_connections = 10\nheader_timeout = \"20s\"");
    let d = Daemon::start(&config);
    let _held: Vec<TcpStream> = (0..10).map(|_| stall(d.addr)).collect();
    // Give the daemon a moment to accept all ten (bounded poll on a probe).
    let mut refused = None;
    wait_until(T, "an 11th connection to be refused", || {
        let started = Instant::now();
        let mut s = TcpStream::connect(d.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut resp = Vec::new();
        let _ = s.read_to_end(&mut resp);
        if resp.starts_with(b"HTTP/1.1 503") {
            refused = Some(started.elapsed());
            true
        } else {
            false
        }
    });
    assert!(
        refused.unwrap() < Duration::from_secs(1),
        "refusal took {refused:?}"
    );
}

#[test]
fn a_flood_of_bad_signatures_deploys_nothing_and_logs_little() {
    let (_dir, config) = setup("flood", "");
    let d = Daemon::start(&config);
    let body = push_body("refs/heads/main", SHA_A, "acme/app");
    for i in 0..300 {
        let sig = sign(&format!("wrong-{i}"), body.as_bytes());
        let (status, resp) = post(
            d.addr,
            "/hooks/app",
            &github_headers("push", &format!("bad-{i}"), &sig),
            body.as_bytes(),
        );
        assert_eq!(status, 401, "{resp}");
    }
    // A real push still goes through.
    assert_eq!(d.push("app", "refs/heads/main", SHA_B, "good").0, 202);
    let runs = wait_runs(&config, "app", 1, T);
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["sha"], SHA_B);
    let rejected = d.log().lines().filter(|l| l.contains(" 401 ")).count();
    assert!(
        rejected <= 25,
        "{rejected} lines logged for 300 rejected requests"
    );
}

#[test]
fn large_bad_bodies_keep_memory_bounded() {
    let (_dir, config) = setup("memory", "max_body = \"8MiB\"\nrequest_timeout = \"20s\"");
    let d = Daemon::start(&config);
    let before = rss_kib(d.pid());
    let addr = d.addr;
    // 64 clients each sending a 4 MiB badly signed body at once: 256 MiB if
    // buffered together; the body budget lets 64 MiB in at a time.
    let handles: Vec<_> = (0..64)
        .map(|i| {
            std::thread::spawn(move || {
                let body = vec![b'x'; 4 << 20];
                let sig = sign("not-the-secret", &body);
                let mut h = github_headers("push", &format!("big-{i}"), &sig);
                h[0].1 = "application/json".into();
                post(addr, "/hooks/app", &h, &body).0
            })
        })
        .collect();
    for h in handles {
        let status = h.join().unwrap();
        assert!(
            status == 401 || status == 503 || status == 408,
            "status {status}"
        );
    }
    let peak = rss_kib(d.pid());
    assert!(
        peak < before + 160 * 1024,
        "peak RSS {peak} KiB (started at {before} KiB) under 256 MiB of bad bodies"
    );
    assert!(history(&config, "app").is_empty());
}

#[test]
fn a_3_mb_body_over_a_1_mib_limit_is_413() {
    let (_dir, config) = setup("toolarge", "max_body = \"1MiB\"");
    let d = Daemon::start(&config);
    let body = vec![b'{'; 3_000_000];
    let (status, _) = post(
        d.addr,
        "/hooks/app",
        &github_headers("push", "big", &sign(SECRET, &body)),
        &body,
    );
    assert_eq!(status, 413);
    assert!(history(&config, "app").is_empty());
}

#[test]
fn garbage_never_panics_the_daemon() {
    let (_dir, config) = setup("garbage", "header_timeout = \"1s\"");
    let d = Daemon::start(&config);
    let samples: Vec<Vec<u8>> = vec![
        b"\x00\x01\x02\xff\xfe\r\n\r\n".to_vec(),
        b"GET / HTTP/1.1\r\n\r\n".to_vec(),
        b"BREW /hooks/app HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        b"POST /hooks/../../etc/passwd HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".to_vec(),
        b"POST /hooks/app HTTP/1.1\r\nContent-Length: -1\r\n\r\n".to_vec(),
        b"POST /hooks/app HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n".to_vec(),
        b"POST /hooks/app HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_vec(),
        b"POST /hooks/app HTTP/1.1\r\nX-Hub-Signature-256: sha256=\xff\xff\r\nContent-Length: 2\r\n\r\n{}".to_vec(),
        format!("POST /hooks/{} HTTP/1.1\r\n\r\n", "a".repeat(70_000)).into_bytes(),
        format!("GET /healthz HTTP/1.1\r\n{}\r\n", "X-A: b\r\n".repeat(500)).into_bytes(),
    ];
    for s in samples {
        let mut c = TcpStream::connect(d.addr).unwrap();
        let _ = c.write_all(&s);
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut out = Vec::new();
        let _ = c.read_to_end(&mut out);
    }
    let (status, _) = request(d.addr, "GET", "/healthz", &[], b"");
    assert_eq!(status, 200, "daemon unhealthy after garbage:\n{}", d.log());
    assert!(!d.log().contains("panicked"), "{}", d.log());
}

#[test]
fn files_are_private_and_an_inline_secret_in_a_readable_config_is_flagged() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, config) = setup("modes", "");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    // A private config: no warning.
    let out = cli(&config, &["check"]);
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("readable"),
        "{}",
        explain(&config, &["check"], &out)
    );
    // Group- or world-readable with an inline secret: warned in check and at start.
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = cli(&config, &["check"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.contains("inline secret"),
        "{}",
        explain(&config, &["check"], &out)
    );
    let d = Daemon::start(&config);
    d.wait_log("inline secret", T);
    assert_eq!(d.push("app", "refs/heads/main", SHA_A, "m-1").0, 202);
    let runs = wait_runs(&config, "app", 1, T);
    let log = std::path::PathBuf::from(runs[0]["log"].as_str().unwrap());
    assert_eq!(mode(&log), 0o640, "run log");
    assert_eq!(
        mode(&dir.join("state/runs/app/1.json")),
        0o600,
        "run record"
    );
    // Appended right after the answer, not before it.
    wait_until(T, "the delivery ids file", || {
        dir.join("state/deliveries").exists()
    });
    assert_eq!(mode(&dir.join("state/deliveries")), 0o600, "delivery ids");
    assert_eq!(mode(&dir.join("state/locks/app.lock")), 0o600, "lock");
    assert_eq!(mode(&dir.join("control.sock")), 0o660, "control socket");
}
