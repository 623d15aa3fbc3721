//! What the README's *Security notes* promise, tried through the binary: a
//! captured GitHub push replayed under new delivery ids never deploys again
//! (across a restart too), a push whose signed `pushed_at` is older than
//! `max_age` is ignored, a secret rotates without a lost delivery, and only
//! `allow_from` may call a hook — directly or through a trusted proxy, over
//! IPv4 and IPv6. (The other forges' replays are in tests/forges.rs.)

use crate::common;
use common::*;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const WAIT: Duration = Duration::from_secs(30);
const OLD_SECRET: &str = "the-secret-being-rotated-out";

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A GitHub push of `after` to `git_ref` whose `repository.pushed_at` is
/// `pushed_at` (Unix seconds, as GitHub writes it in a push).
fn push_at(git_ref: &str, after: &str, repo: &str, pushed_at: u64) -> String {
    let mut v: serde_json::Value = serde_json::from_str(&push_body(git_ref, after, repo)).unwrap();
    v["repository"]["pushed_at"] = pushed_at.into();
    v.to_string()
}

fn send(addr: SocketAddr, name: &str, body: &str, secret: &str, delivery: &str) -> (u16, String) {
    send_with(addr, name, body, secret, delivery, &[])
}

fn send_with(
    addr: SocketAddr,
    name: &str,
    body: &str,
    secret: &str,
    delivery: &str,
    extra: &[(&str, &str)],
) -> (u16, String) {
    let mut headers = github_headers("push", delivery, &sign(secret, body.as_bytes()));
    headers.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    post(addr, &format!("/hooks/{name}"), &headers, body.as_bytes())
}

#[track_caller]
fn expect(answer: (u16, String), status: u16, needle: &str) {
    assert!(
        answer.0 == status && answer.1.contains(needle),
        "expected {status} with {needle:?}, got {answer:?}"
    );
}

#[test]
fn a_replayed_push_never_deploys_twice_and_a_stale_one_never_deploys() {
    let dir = TestDir::new("sec-replay");
    let script = dir.script("deploy.sh", "#!/bin/sh\necho deployed $DEPLOY_SHA\n");
    let config = write_config(
        &dir,
        "",
        &(project("app", &script, "") + &project("short", &script, "max_age = \"1h\"")),
    );
    let d = Daemon::start(&config);
    let body = push_at("refs/heads/main", SHA_A, "acme/app", now_secs());
    expect(send(d.addr, "app", &body, SECRET, "d-1"), 202, "queued");
    wait_runs(&config, "app", 1, WAIT);
    // The forge's redelivery, then a capture under ids of the sender's choosing.
    for id in ["d-1", "d-2", "attacker-3"] {
        expect(send(d.addr, "app", &body, SECRET, id), 200, "\"duplicate\"");
    }
    // A push signed long ago: over the default 72h.
    let old = push_at("refs/heads/main", SHA_B, "acme/app", now_secs() - 73 * 3600);
    expect(
        send(d.addr, "app", &old, SECRET, "d-old"),
        200,
        "stale delivery",
    );
    // A project's own max_age.
    let two_hours = push_at(
        "refs/heads/main",
        SHA_B,
        "acme/short",
        now_secs() - 2 * 3600,
    );
    expect(
        send(d.addr, "short", &two_hours, SECRET, "d-short"),
        200,
        "stale delivery",
    );
    let fresh = push_at("refs/heads/main", SHA_B, "acme/short", now_secs() - 60);
    expect(
        send(d.addr, "short", &fresh, SECRET, "d-fresh"),
        202,
        "queued",
    );
    wait_runs(&config, "short", 1, WAIT);

    // Remembered across a hard kill and restart, even without the
    // (unsynced) deliveries file: the run record holds the body's MAC as it
    // holds the delivery id.
    drop(d);
    let file = dir.join("state/deliveries");
    if file.exists() {
        std::fs::remove_file(&file).unwrap();
    }
    let d = Daemon::start(&config);
    expect(
        send(d.addr, "app", &body, SECRET, "d-after-restart"),
        200,
        "\"duplicate\"",
    );
    assert_eq!(history(&config, "app").len(), 1);
    assert_eq!(history(&config, "short").len(), 1);
}

fn rotation_config(dir: &TestDir) -> PathBuf {
    let script = dir.script("deploy.sh", "#!/bin/sh\necho deployed $DEPLOY_SHA\n");
    let old = dir.join("old.secret");
    std::fs::write(&old, format!("{OLD_SECRET}\n")).unwrap();
    write_config(
        dir,
        "",
        &project(
            "app",
            &script,
            &format!("secret_previous_file = \"{}\"", old.display()),
        ),
    )
}

#[test]
fn a_secret_rotates_without_a_lost_delivery() {
    let dir = TestDir::new("sec-rotate");
    let config = rotation_config(&dir);
    let out = cli_ok(&config, &["check"], 0);
    assert!(
        out.contains("secret rotation under way")
            && out.contains("previous secret_file")
            && out.contains("old.secret"),
        "{out}"
    );
    // `sign` signs with the current secret.
    let body_file = dir.join("body.json");
    std::fs::write(&body_file, b"{}").unwrap();
    assert_eq!(
        cli_ok(&config, &["sign", "app", body_file.to_str().unwrap()], 0),
        format!("{}\n", sign(SECRET, b"{}"))
    );

    let d = Daemon::start(&config);
    let now = now_secs();
    // The forge still on the old secret: accepted, and the log says so.
    let a = push_at("refs/heads/main", SHA_A, "acme/app", now);
    expect(send(d.addr, "app", &a, OLD_SECRET, "d-old"), 202, "queued");
    d.wait_log(
        "app: delivery d-old signed with the previous secret; finish the rotation",
        WAIT,
    );
    wait_runs(&config, "app", 1, WAIT);
    // Then on the new one.
    let b = push_at("refs/heads/main", SHA_B, "acme/app", now);
    expect(send(d.addr, "app", &b, SECRET, "d-new"), 202, "queued");
    wait_runs(&config, "app", 2, WAIT);
    // Neither.
    let c = push_at("refs/heads/main", SHA_A, "acme/app", now + 1);
    expect(
        send(d.addr, "app", &c, "not-the-secret", "d-neither"),
        401,
        "invalid signature",
    );
    // The old capture re-signed? It cannot be; but the old one replayed
    // under a new id is a duplicate, whichever secret signed it.
    expect(
        send(d.addr, "app", &a, OLD_SECRET, "d-old-again"),
        200,
        "\"duplicate\"",
    );

    // The line is rate-limited: 30 more old-secret deliveries (to another
    // branch, ignored) log at most 20 lines in the window.
    for i in 0..30 {
        let body = push_at(&format!("refs/heads/dev-{i}"), SHA_B, "acme/app", now);
        expect(
            send(d.addr, "app", &body, OLD_SECRET, &format!("d-dev-{i}")),
            200,
            "ignored",
        );
    }
    let lines = d
        .log()
        .lines()
        .filter(|l| l.contains("signed with the previous secret"))
        .count();
    assert!((2..=20).contains(&lines), "{lines} lines:\n{}", d.log());
    assert_eq!(history(&config, "app").len(), 2);
}

/// Headers alone, with a Content-Length whose body never comes: answered
/// at once (not after request_timeout) when refused before the body is read.
fn headers_only(addr: SocketAddr, path: &str, extra: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 1000000\r\n{extra}\r\n"
    )
    .unwrap();
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    parse_response(&resp)
}

fn allow_config(dir: &TestDir, listen: &str, server: &str, projects: &[(&str, &str)]) -> PathBuf {
    let script = dir.script("deploy.sh", "#!/bin/sh\necho deployed $DEPLOY_SHA\n");
    let path = write_config(
        dir,
        server,
        &projects
            .iter()
            .map(|(name, extra)| project(name, &script, extra))
            .collect::<String>(),
    );
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "listen = \"127.0.0.1:0\"",
        &format!("listen = \"{listen}\""),
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn push(d: &Daemon, name: &str, after: &str, id: &str, extra: &[(&str, &str)]) -> (u16, String) {
    let body = push_at(
        "refs/heads/main",
        after,
        &format!("acme/{name}"),
        now_secs(),
    );
    send_with(d.addr, name, &body, SECRET, id, extra)
}

#[test]
fn only_allow_from_gets_in_ipv4() {
    let dir = TestDir::new("sec-allow4");
    let config = allow_config(
        &dir,
        "127.0.0.1:0",
        "allow_from = [\"192.0.2.0/24\"]",
        &[("closed", ""), ("open", "allow_from = [\"127.0.0.0/8\"]")],
    );
    let d = Daemon::start(&config);
    // The server's list: 127.0.0.1 is not in it. 403 before the body.
    expect(headers_only(d.addr, "/hooks/closed", ""), 403, "forbidden");
    d.wait_log("403 (127.0.0.1 is not in allow_from)", WAIT);
    // A spoofed X-Forwarded-For from a peer that is no trusted proxy
    // counts for nothing.
    let spoofed = push(
        &d,
        "closed",
        SHA_A,
        "c-1",
        &[("X-Forwarded-For", "192.0.2.5")],
    );
    expect(spoofed, 403, "forbidden");
    assert!(!spoofed_reason_leaks(&d), "the reason is in the log only");
    // The project's own list replaces the server's.
    expect(push(&d, "open", SHA_A, "o-1", &[]), 202, "queued");
    wait_runs(&config, "open", 1, WAIT);
    assert!(history(&config, "closed").is_empty());
}

/// Whether a 403 answer said why (it must not).
fn spoofed_reason_leaks(d: &Daemon) -> bool {
    let (_, body) = headers_only(d.addr, "/hooks/closed", "");
    body.contains("allow_from") || body.contains("127.0.0.1")
}

#[test]
fn only_allow_from_gets_in_through_a_trusted_proxy() {
    let dir = TestDir::new("sec-proxy");
    let config = allow_config(
        &dir,
        "127.0.0.1:0",
        "allow_from = [\"140.82.112.0/20\"]\ntrusted_proxies = [\"127.0.0.1\", \"10.0.0.0/8\"]",
        &[("app", "")],
    );
    let d = Daemon::start(&config);
    // The proxy (us) with nothing forwarded is judged as itself.
    expect(push(&d, "app", SHA_A, "p-0", &[]), 403, "forbidden");
    // The forge's address as the proxy saw it.
    expect(
        push(
            &d,
            "app",
            SHA_A,
            "p-1",
            &[("X-Forwarded-For", "140.82.115.7")],
        ),
        202,
        "queued",
    );
    wait_runs(&config, "app", 1, WAIT);
    // A client that forged the left-most entry: the proxy's own entry (the
    // right-most untrusted) is the client.
    expect(
        push(
            &d,
            "app",
            SHA_B,
            "p-2",
            &[("X-Forwarded-For", "140.82.115.7, 203.0.113.9")],
        ),
        403,
        "forbidden",
    );
    d.wait_log(
        "203.0.113.9 (forwarded by 127.0.0.1) is not in allow_from",
        WAIT,
    );
    // Two proxies, the inner one trusted; and RFC 7239 Forwarded.
    expect(
        push(
            &d,
            "app",
            SHA_B,
            "p-3",
            &[("X-Forwarded-For", "203.0.113.9, 140.82.115.8, 10.1.1.1")],
        ),
        202,
        "queued",
    );
    wait_runs(&config, "app", 2, WAIT);
    let forwarded = push_at("refs/heads/main", SHA_A, "acme/app", now_secs() + 1);
    expect(
        send_with(
            d.addr,
            "app",
            &forwarded,
            SECRET,
            "p-4",
            &[("Forwarded", "for=\"140.82.115.9:4711\";proto=https")],
        ),
        202,
        "queued",
    );
    wait_runs(&config, "app", 3, WAIT);
}

#[test]
fn only_allow_from_gets_in_ipv6() {
    let dir = TestDir::new("sec-allow6");
    let config = allow_config(
        &dir,
        "[::1]:0",
        "trusted_proxies = [\"::1/128\"]",
        &[
            ("local", "allow_from = [\"::1/128\"]"),
            ("forge", "allow_from = [\"2a0a:a440::/29\"]"),
        ],
    );
    let d = Daemon::start(&config);
    assert!(d.addr.is_ipv6(), "{}", d.addr);
    // ::1 is a trusted proxy with nothing forwarded: judged as itself.
    expect(push(&d, "local", SHA_A, "v6-1", &[]), 202, "queued");
    expect(headers_only(d.addr, "/hooks/forge", ""), 403, "forbidden");
    d.wait_log("::1 is not in allow_from", WAIT);
    expect(
        push(
            &d,
            "forge",
            SHA_A,
            "v6-2",
            &[("X-Forwarded-For", "2a0a:a440::5")],
        ),
        202,
        "queued",
    );
    expect(
        push(
            &d,
            "forge",
            SHA_B,
            "v6-3",
            &[("X-Forwarded-For", "2001:db8::5")],
        ),
        403,
        "forbidden",
    );
    wait_runs(&config, "local", 1, WAIT);
    wait_runs(&config, "forge", 1, WAIT);
}

#[test]
fn check_words_bad_networks_and_max_age() {
    let dir = TestDir::new("sec-check");
    let script = dir.script("deploy.sh", "#!/bin/sh\n");
    for (server, extra, key, words) in [
        (
            "allow_from = [\"140.82.112.0/33\"]",
            "",
            "server.allow_from",
            "is not an address or network",
        ),
        (
            "trusted_proxies = \"127.0.0.1\"",
            "",
            "server.trusted_proxies",
            "put the entries in [ ]",
        ),
        (
            "",
            "allow_from = []",
            "projects.app.allow_from",
            "refuse everyone",
        ),
        (
            "",
            "max_age = 72",
            "projects.app.max_age",
            "give the unit too",
        ),
        ("max_age = \"0s\"", "", "server.max_age", "more than 0s"),
        (
            "",
            "secret_previous = \"a\"\nsecret_previous_env = \"B\"",
            "projects.app.secret_previous_env",
            "exactly one of secret_previous",
        ),
    ] {
        let config = write_config(&dir, server, &project("app", &script, extra));
        let out = cli(&config, &["check"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{server}{extra}: {err}");
        assert!(
            err.contains(key) && err.contains(words),
            "{server}{extra}: {err}"
        );
    }
}
