//! The README's *HTTP* section from the outside: one test per HTTP answer, and
//! the order in which the checks run (method → project → size → signature →
//! content type → event/payload → filters → duplicate → record), against the
//! real daemon.

// Helpers here and in common/ are test code: a panic is the failure report.

use crate::common;
use common::*;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A daemon serving project `app` (repository acme/app, branch main) whose
/// script prints the commit it deploys.
fn setup(name: &str, server_extra: &str) -> (TestDir, PathBuf, Daemon) {
    let dir = TestDir::new(name);
    let script = dir.script(
        "deploy.sh",
        "#!/bin/sh\necho \"deploying $DEPLOY_SHA from $DEPLOY_DELIVERY\"\n",
    );
    let config = write_config(&dir, server_extra, &project("app", &script, ""));
    let d = Daemon::start(&config);
    (dir, config, d)
}

/// Headers of a GitHub delivery with an explicit content type.
fn headers_with(
    content_type: &str,
    event: Option<&str>,
    delivery: &str,
    signature: Option<&str>,
) -> Vec<(String, String)> {
    let mut h = vec![("Content-Type".to_string(), content_type.to_string())];
    if let Some(e) = event {
        h.push(("X-GitHub-Event".into(), e.into()));
    }
    h.push(("X-GitHub-Delivery".into(), delivery.into()));
    if let Some(s) = signature {
        h.push(("X-Hub-Signature-256".into(), s.into()));
    }
    h
}

/// POSTs a signed JSON `event` with `body` to /hooks/app.
fn signed(d: &Daemon, event: &str, delivery: &str, body: &str) -> (u16, String) {
    post(
        d.addr,
        "/hooks/app",
        &github_headers(event, delivery, &sign(SECRET, body.as_bytes())),
        body.as_bytes(),
    )
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("response is not JSON ({e}): {body:?}"))
}

fn assert_answer(got: (u16, String), status: u16, what: &str) -> serde_json::Value {
    assert_eq!(
        got.0, status,
        "{what}: expected {status}, got {} {:?}",
        got.0, got.1
    );
    json(&got.1)
}

/// Sends `head` then `chunks` (one write each, `pace` apart) on one
/// connection from a writer thread, while this thread reads the answer:
/// a server that answers early and closes is seen answering, not as a
/// reset. Panics unless an answer arrives within `limit`.
fn exchange(
    addr: SocketAddr,
    head: String,
    chunks: Vec<Vec<u8>>,
    pace: Duration,
    limit: Duration,
) -> (u16, String, Duration) {
    let started = Instant::now();
    let mut reader = TcpStream::connect(addr).unwrap();
    reader.set_read_timeout(Some(limit)).unwrap();
    let mut writer = reader.try_clone().unwrap();
    std::thread::spawn(move || {
        if writer.write_all(head.as_bytes()).is_err() {
            return;
        }
        for c in chunks {
            if writer.write_all(&c).is_err() {
                return;
            }
            if !pace.is_zero() {
                // A slow client is the point: the body arrives in pieces.
                std::thread::sleep(pace);
            }
        }
    });
    let mut resp = Vec::new();
    let mut buf = [0u8; 8192];
    // Read until the head and the announced body are in, or the peer closes.
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                resp.extend_from_slice(&buf[..n]);
                if complete(&resp) {
                    break;
                }
            }
            Err(e) if !resp.is_empty() => {
                eprintln!("read ended with {e} after {} bytes", resp.len());
                break;
            }
            Err(e) => panic!(
                "no answer from {addr} within {limit:?} ({e}); elapsed {:?}",
                started.elapsed()
            ),
        }
    }
    let (status, body) = parse_response(&resp);
    (status, body, started.elapsed())
}

/// Whether `resp` holds a whole response with a Content-Length body.
fn complete(resp: &[u8]) -> bool {
    let text = String::from_utf8_lossy(resp);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    let len = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(usize::MAX);
    body.len() >= len
}

fn head(addr: SocketAddr, extra: &[(String, String)]) -> String {
    let mut h = format!("POST /hooks/app HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in extra {
        h.push_str(&format!("{k}: {v}\r\n"));
    }
    h.push_str("\r\n");
    h
}

/// Every regular file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else if p.is_file() {
            out.push(p);
        }
    }
    out
}

#[test]
fn healthz_methods_and_unknown_paths() {
    let (_dir, _config, d) = setup("http-routes", "");
    let (s, b) = request(d.addr, "GET", "/healthz", &[], b"");
    assert_eq!(s, 200, "GET /healthz: {b}");
    let (s, b) = request(d.addr, "POST", "/healthz", &[], b"");
    assert_eq!(s, 405, "POST /healthz: {b}");
    let (s, b) = request(d.addr, "GET", "/hooks/app", &[], b"");
    assert_eq!(s, 405, "GET /hooks/app: {b}");
    // The method is checked before the project: an unknown one is 405 too.
    let (s, b) = request(d.addr, "GET", "/hooks/nope", &[], b"");
    assert_eq!(s, 405, "GET /hooks/nope (method before project): {b}");
    // A signed push to an unknown project is 404, not 401 or 202.
    let body = push_body("refs/heads/main", SHA_A, "acme/app");
    let (s, b) = post(
        d.addr,
        "/hooks/nope",
        &github_headers("push", "r-1", &sign(SECRET, body.as_bytes())),
        body.as_bytes(),
    );
    assert_eq!(s, 404, "POST /hooks/nope: {b}");
    let (s, b) = post(d.addr, "/elsewhere", &[], b"{}");
    assert_eq!(s, 404, "POST /elsewhere: {b}");
    let (s, b) = post(d.addr, "/hooks/", &[], b"{}");
    assert_eq!(s, 404, "POST /hooks/: {b}");
    let (s, b) = post(d.addr, "/hooks/app/extra", &[], b"{}");
    assert_eq!(s, 404, "POST /hooks/app/extra: {b}");
}

#[test]
fn declared_length_over_max_body_is_refused_unread() {
    let (_dir, config, d) = setup("http-413-len", "max_body = \"1KiB\"");
    // Headers only: a server that waited for the 2048 announced bytes would
    // not answer until its request deadline (30 s), and this read gives up at 10.
    // No signature either: size is checked first, so 413, not 401.
    let h = head(
        d.addr,
        &[
            ("Content-Type".into(), "application/json".into()),
            ("X-GitHub-Event".into(), "push".into()),
            ("Content-Length".into(), "2048".into()),
        ],
    );
    let (s, b, took) = exchange(d.addr, h, vec![], Duration::ZERO, Duration::from_secs(10));
    assert_eq!(s, 413, "Content-Length 2048 over 1KiB: {b}");
    assert!(took < Duration::from_secs(5), "413 took {took:?}");
    assert_eq!(json(&b)["error"], "body too large", "{b}");

    // Just at the limit passes the size check (and fails the signature).
    let body = vec![b'x'; 1024];
    let (s, b) = post(
        d.addr,
        "/hooks/app",
        &github_headers("push", "len-ok", "sha256=00"),
        &body,
    );
    assert_eq!(s, 401, "1024 bytes at a 1KiB limit: {b}");
    assert!(history(&config, "app").is_empty());
}

#[test]
fn chunked_body_growing_past_max_body_is_refused() {
    let (_dir, config, d) = setup("http-413-chunked", "max_body = \"1KiB\"");
    // 200-byte chunks, 20 ms apart, never a final chunk: only a server that
    // counts as it reads answers (after the sixth), the others wait forever.
    let chunk = {
        let mut c = format!("{:x}\r\n", 200).into_bytes();
        c.extend_from_slice(&[b'{'; 200]);
        c.extend_from_slice(b"\r\n");
        c
    };
    let body = push_body("refs/heads/main", SHA_A, "acme/app");
    let h = head(
        d.addr,
        &[
            ("Content-Type".into(), "application/json".into()),
            ("X-GitHub-Event".into(), "push".into()),
            ("X-GitHub-Delivery".into(), "chunked-1".into()),
            ("X-Hub-Signature-256".into(), sign(SECRET, body.as_bytes())),
            ("Transfer-Encoding".into(), "chunked".into()),
        ],
    );
    let (s, b, _) = exchange(
        d.addr,
        h,
        vec![chunk; 200],
        Duration::from_millis(20),
        Duration::from_secs(10),
    );
    assert_eq!(s, 413, "chunked body growing past 1KiB: {b}");
    assert_eq!(json(&b)["error"], "body too large", "{b}");
    // A chunked body within the limit is read whole and judged on its merits.
    let mut small = format!("{:x}\r\n", body.len()).into_bytes();
    small.extend_from_slice(body.as_bytes());
    small.extend_from_slice(b"\r\n0\r\n\r\n");
    let h = head(
        d.addr,
        &[
            ("Content-Type".into(), "application/json".into()),
            ("X-GitHub-Event".into(), "push".into()),
            ("X-GitHub-Delivery".into(), "chunked-2".into()),
            ("X-Hub-Signature-256".into(), sign(SECRET, body.as_bytes())),
            ("Transfer-Encoding".into(), "chunked".into()),
        ],
    );
    assert!(body.len() < 1024, "test push body is {} bytes", body.len());
    let (s, b, _) = exchange(
        d.addr,
        h,
        vec![small],
        Duration::ZERO,
        Duration::from_secs(10),
    );
    assert_eq!(s, 202, "small chunked push: {b}");
    let runs = wait_runs(&config, "app", 1, Duration::from_secs(20));
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["delivery"], "chunked-2", "{runs:?}");
}

#[test]
fn three_megabytes_over_one_mebibyte_is_refused() {
    let (_dir, config, d) = setup("http-413-big", "max_body = \"1MiB\"");
    let big = vec![b' '; 3_000_000];
    let sig = sign(SECRET, &big);
    // Declared length: refused on the headers.
    let mut h = github_headers("push", "big-1", &sig);
    h.push(("Content-Length".into(), big.len().to_string()));
    let chunks: Vec<Vec<u8>> = big.chunks(64 * 1024).map(<[u8]>::to_vec).collect();
    let (s, b, _) = exchange(
        d.addr,
        head(d.addr, &h),
        chunks.clone(),
        Duration::ZERO,
        Duration::from_secs(10),
    );
    assert_eq!(s, 413, "3 MB with Content-Length over 1MiB: {b}");
    // Streamed without a length: refused once the count passes 1 MiB.
    let mut h = github_headers("push", "big-2", &sig);
    h.push(("Transfer-Encoding".into(), "chunked".into()));
    let framed: Vec<Vec<u8>> = chunks
        .iter()
        .map(|c| {
            let mut f = format!("{:x}\r\n", c.len()).into_bytes();
            f.extend_from_slice(c);
            f.extend_from_slice(b"\r\n");
            f
        })
        .chain(std::iter::once(b"0\r\n\r\n".to_vec()))
        .collect();
    let (s, b, _) = exchange(
        d.addr,
        head(d.addr, &h),
        framed,
        Duration::ZERO,
        Duration::from_secs(10),
    );
    assert_eq!(s, 413, "3 MB chunked over 1MiB: {b}");
    // The daemon is still fine and deployed nothing.
    let (s, b) = request(d.addr, "GET", "/healthz", &[], b"");
    assert_eq!(s, 200, "healthz after big bodies: {b}");
    assert!(history(&config, "app").is_empty());
}

#[test]
fn bad_signatures_all_get_the_same_401_and_deploy_nothing() {
    let (dir, config, d) = setup("http-401", "");
    let body = push_body("refs/heads/main", SHA_A, "acme/app");
    let good = sign(SECRET, body.as_bytes());
    let hex = good.strip_prefix("sha256=").unwrap().to_string();
    let changed = body.replace(SHA_A, SHA_B);
    let cases: Vec<(&str, Option<String>, &str)> = vec![
        ("missing", None, &body),
        ("empty", Some(String::new()), &body),
        ("non-hex", Some("sha256=zz".into()), &body),
        ("sha1 prefix", Some(format!("sha1={hex}")), &body),
        ("no prefix", Some(hex.clone()), &body),
        ("short", Some(format!("sha256={}", &hex[..62])), &body),
        (
            "another secret",
            Some(sign("not-the-secret", body.as_bytes())),
            &body,
        ),
        ("body changed after signing", Some(good.clone()), &changed),
    ];
    let mut bodies = Vec::new();
    for (i, (what, sig, payload)) in cases.iter().enumerate() {
        let h = headers_with(
            "application/json",
            Some("push"),
            &format!("bad-{i}"),
            sig.as_deref(),
        );
        let (s, b) = post(d.addr, "/hooks/app", &h, payload.as_bytes());
        assert_eq!(s, 401, "{what}: {b}");
        assert_eq!(
            json(&b),
            serde_json::json!({"error": "invalid signature"}),
            "{what}: {b}"
        );
        bodies.push((what, b));
    }
    for (what, b) in &bodies {
        assert_eq!(
            b, &bodies[0].1,
            "{what} answered differently from {}",
            bodies[0].0
        );
    }
    // The signature is checked before the payload: a bad signature on
    // garbage is still 401, never 400.
    let h = headers_with("application/json", None, "bad-garbage", Some("sha256=zz"));
    let (s, b) = post(d.addr, "/hooks/app", &h, b"not json");
    assert_eq!(
        s, 401,
        "bad signature on a malformed body without event header: {b}"
    );

    // Nothing was recorded: no run, nothing pending.
    assert!(history(&config, "app").is_empty());
    let pending: Vec<PathBuf> = files_under(&dir.join("state"))
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("queue"))
        .collect();
    assert!(
        pending.is_empty(),
        "queued after bad signatures: {pending:?}"
    );
    // And a good delivery after them is the only run.
    let (s, b) = d.push("app", "refs/heads/main", SHA_A, "good-1");
    assert_eq!(s, 202, "{b}");
    let runs = wait_runs(&config, "app", 1, Duration::from_secs(20));
    assert_eq!(runs.len(), 1, "{runs:#?}");
    assert_eq!(runs[0]["delivery"], "good-1");
}

#[test]
fn content_type_is_checked_after_the_signature() {
    let (_dir, config, d) = setup("http-415", "");
    let body = push_body("refs/heads/main", SHA_A, "acme/app");
    let sig = sign(SECRET, body.as_bytes());
    let h = headers_with("text/plain", Some("push"), "ct-1", Some(&sig));
    let v = assert_answer(
        post(d.addr, "/hooks/app", &h, body.as_bytes()),
        415,
        "signed text/plain",
    );
    assert!(
        v["error"]
            .as_str()
            .is_some_and(|e| e.contains("text/plain")),
        "415 should name the type: {v}"
    );
    let h = headers_with("text/plain", Some("push"), "ct-2", Some("sha256=zz"));
    assert_answer(
        post(d.addr, "/hooks/app", &h, body.as_bytes()),
        401,
        "badly signed text/plain",
    );
    // No content type at all is not JSON either.
    let h: Vec<(String, String)> =
        headers_with("application/json", Some("push"), "ct-3", Some(&sig))
            .into_iter()
            .filter(|(k, _)| k != "Content-Type")
            .collect();
    assert_answer(
        post(d.addr, "/hooks/app", &h, body.as_bytes()),
        415,
        "signed, no content type",
    );
    // Parameters after the media type are fine.
    let h = headers_with(
        "application/json; charset=utf-8",
        Some("push"),
        "ct-4",
        Some(&sig),
    );
    assert_answer(
        post(d.addr, "/hooks/app", &h, body.as_bytes()),
        202,
        "application/json; charset=utf-8",
    );
    let runs = wait_runs(&config, "app", 1, Duration::from_secs(20));
    assert_eq!(runs.len(), 1, "{runs:#?}");
    assert_eq!(runs[0]["delivery"], "ct-4");
}

#[test]
fn malformed_deliveries_get_400() {
    let (_dir, config, d) = setup("http-400", "");
    let body = push_body("refs/heads/main", SHA_A, "acme/app");
    let h = headers_with(
        "application/json",
        None,
        "no-event",
        Some(&sign(SECRET, body.as_bytes())),
    );
    let v = assert_answer(
        post(d.addr, "/hooks/app", &h, body.as_bytes()),
        400,
        "signed push without X-GitHub-Event",
    );
    assert!(
        v["error"]
            .as_str()
            .is_some_and(|e| e.contains("X-GitHub-Event")),
        "{v}"
    );
    // The log says why, as the answer does.
    let said = v["error"].as_str().unwrap_or_default();
    d.wait_log(
        &format!("400 ({said}) delivery=no-event"),
        Duration::from_secs(10),
    );

    let bad = r#"{"ref": "refs/heads/main", "after": "#;
    let v = assert_answer(
        signed(&d, "push", "bad-json", bad),
        400,
        "signed malformed JSON",
    );
    assert!(
        v["error"].as_str().is_some_and(|e| e.contains("malformed")),
        "{v}"
    );
    let said = v["error"].as_str().unwrap_or_default();
    d.wait_log(
        &format!("400 ({said}) delivery=bad-json"),
        Duration::from_secs(10),
    );

    let form = "foo=bar&other=1";
    let h = headers_with(
        "application/x-www-form-urlencoded",
        Some("push"),
        "no-payload",
        Some(&sign(SECRET, form.as_bytes())),
    );
    let v = assert_answer(
        post(d.addr, "/hooks/app", &h, form.as_bytes()),
        400,
        "signed form without payload",
    );
    assert!(
        v["error"].as_str().is_some_and(|e| e.contains("payload")),
        "{v}"
    );

    // JSON that is not a push (no ref/after) is malformed for a push event.
    let v = assert_answer(
        signed(&d, "push", "not-push", r#"{"zen":"hi"}"#),
        400,
        "push without ref",
    );
    assert!(v["error"].is_string(), "{v}");
    assert!(history(&config, "app").is_empty());
}

#[test]
fn ping_and_ignored_deliveries_get_200() {
    let (_dir, config, d) = setup("http-200", "");
    let v = assert_answer(
        signed(
            &d,
            "ping",
            "ping-1",
            r#"{"zen":"Keep it logically awesome.","hook_id":1}"#,
        ),
        200,
        "signed ping",
    );
    assert_eq!(v, serde_json::json!({"status": "pong"}));

    let zeros = "0".repeat(40);
    let cases = [
        (
            "other branch",
            "push",
            push_body("refs/heads/develop", SHA_A, "acme/app"),
            vec!["develop"],
        ),
        (
            "tag",
            "push",
            push_body("refs/tags/v1", SHA_A, "acme/app"),
            vec!["tag", "v1"],
        ),
        (
            "deleted branch",
            "push",
            push_body("refs/heads/main", &zeros, "acme/app"),
            vec!["deleted"],
        ),
        (
            "other repository",
            "push",
            push_body("refs/heads/main", SHA_A, "evil/app"),
            vec!["evil/app"],
        ),
        (
            "another event",
            "issues",
            r#"{"action":"opened","issue":{"number":1}}"#.to_string(),
            vec!["issues"],
        ),
    ];
    for (i, (what, event, body, words)) in cases.iter().enumerate() {
        let v = assert_answer(signed(&d, event, &format!("ign-{i}"), body), 200, what);
        assert_eq!(v["status"], "ignored", "{what}: {v}");
        let reason = v["reason"].as_str().unwrap_or_default();
        for w in words {
            assert!(
                reason.contains(w),
                "{what}: reason {reason:?} should mention {w:?}"
            );
        }
    }
    // Nothing of that deploys; a push to main afterwards is the only run.
    assert!(history(&config, "app").is_empty());
    let (s, b) = d.push("app", "refs/heads/main", SHA_B, "after-ignored");
    assert_eq!(s, 202, "{b}");
    let runs = wait_runs(&config, "app", 1, Duration::from_secs(20));
    assert_eq!(runs.len(), 1, "{runs:#?}");
    assert_eq!(runs[0]["sha"], SHA_B);
}

#[test]
fn pushes_to_main_are_queued_in_both_content_types() {
    let (_dir, config, d) = setup("http-202", "");
    let body = push_body("refs/heads/main", SHA_A, "acme/app");
    let v = assert_answer(
        signed(&d, "push", "json-1", &body),
        202,
        "JSON push to main",
    );
    assert_eq!(v["status"], "queued", "{v}");
    assert_eq!(v["ref"], "refs/heads/main", "{v}");
    assert_eq!(v["sha"], SHA_A, "{v}");
    assert_eq!(v["delivery"], "json-1", "{v}");
    let runs = wait_runs(&config, "app", 1, Duration::from_secs(20));
    assert_eq!(runs[0]["status"], "succeeded", "{runs:#?}");

    // The form GitHub sends when the hook's content type is "form": the
    // JSON url-encoded in `payload`, the HMAC over the form bytes as sent.
    let body = push_body("refs/heads/main", SHA_B, "acme/app");
    let form: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &body)
        .finish();
    assert!(form.contains('%'), "the form should be encoded: {form}");
    let h = headers_with(
        "application/x-www-form-urlencoded",
        Some("push"),
        "form-1",
        Some(&sign(SECRET, form.as_bytes())),
    );
    let v = assert_answer(
        post(d.addr, "/hooks/app", &h, form.as_bytes()),
        202,
        "form push to main",
    );
    assert_eq!(v["status"], "queued", "{v}");
    assert_eq!(v["sha"], SHA_B, "{v}");
    let runs = wait_runs(&config, "app", 2, Duration::from_secs(20));
    assert_eq!(runs.len(), 2, "{runs:#?}");
    assert_eq!(runs[0]["sha"], SHA_B, "{runs:#?}");
    assert_eq!(runs[0]["delivery"], "form-1", "{runs:#?}");
    assert_eq!(runs[1]["sha"], SHA_A, "{runs:#?}");
    assert_eq!(runs[1]["delivery"], "json-1", "{runs:#?}");
    assert!(runs.iter().all(|r| r["status"] == "succeeded"), "{runs:#?}");
    // The HMAC is over the raw form, not the decoded JSON inside it.
    let h = headers_with(
        "application/x-www-form-urlencoded",
        Some("push"),
        "form-2",
        Some(&sign(SECRET, body.as_bytes())),
    );
    assert_answer(
        post(d.addr, "/hooks/app", &h, form.as_bytes()),
        401,
        "form signed over the inner JSON",
    );
}

#[test]
fn a_redelivery_is_answered_duplicate_and_runs_once() {
    let (_dir, config, d) = setup("http-dup", "");
    let (s, b) = d.push("app", "refs/heads/main", SHA_A, "dup-1");
    assert_eq!(s, 202, "first delivery: {b}");
    let (s, b) = d.push("app", "refs/heads/main", SHA_A, "dup-1");
    let v = assert_answer((s, b), 200, "redelivery");
    assert_eq!(v["status"], "duplicate", "{v}");
    wait_runs(&config, "app", 1, Duration::from_secs(20));
    // Still a duplicate after its run finished.
    let v = assert_answer(
        d.push("app", "refs/heads/main", SHA_A, "dup-1"),
        200,
        "redelivery after the run",
    );
    assert_eq!(v["status"], "duplicate", "{v}");
    // A sentinel push: had a redelivery been queued, it would run before it.
    let (s, b) = d.push("app", "refs/heads/main", SHA_B, "dup-2");
    assert_eq!(s, 202, "new delivery: {b}");
    let runs = wait_runs(&config, "app", 2, Duration::from_secs(20));
    let got: Vec<(&str, &str)> = runs
        .iter()
        .map(|r| (r["delivery"].as_str().unwrap(), r["sha"].as_str().unwrap()))
        .collect();
    assert_eq!(got, vec![("dup-2", SHA_B), ("dup-1", SHA_A)], "{runs:#?}");
}

#[test]
fn secrets_never_leak() {
    let dir = TestDir::new("http-leak");
    // The script dumps its whole environment into its log.
    let script = dir.script("deploy.sh", "#!/bin/sh\nenv\necho done\n");
    let config = write_config(&dir, "", &project("app", &script, ""));
    let d = Daemon::start(&config);
    let mut sent_sigs = Vec::new();
    let mut answers = Vec::new();
    let mut send = |h: Vec<(String, String)>, body: &[u8]| {
        for (k, v) in &h {
            if k == "X-Hub-Signature-256" && v.len() > 16 {
                let hex = v.rsplit('=').next().unwrap().to_string();
                sent_sigs.push(hex);
            }
        }
        let (s, b) = post(d.addr, "/hooks/app", &h, body);
        answers.push(format!("{s} {b}"));
        s
    };
    let body = push_body("refs/heads/main", SHA_A, "acme/app");
    let good = sign(SECRET, body.as_bytes());
    assert_eq!(
        send(github_headers("push", "leak-1", &good), body.as_bytes()),
        202
    );
    let wrong = sign("guess", body.as_bytes());
    assert_eq!(
        send(github_headers("push", "leak-2", &wrong), body.as_bytes()),
        401
    );
    let changed = body.replace(SHA_A, SHA_B);
    assert_eq!(
        send(github_headers("push", "leak-3", &good), changed.as_bytes()),
        401
    );
    let ping = r#"{"zen":"hi"}"#;
    assert_eq!(
        send(
            github_headers("ping", "leak-4", &sign(SECRET, ping.as_bytes())),
            ping.as_bytes()
        ),
        200
    );
    let h = headers_with(
        "text/plain",
        Some("push"),
        "leak-5",
        Some(&sign(SECRET, body.as_bytes())),
    );
    // Same body as leak-1: its signature is already in the list.
    assert_eq!(send(h, body.as_bytes()), 415);
    let h = headers_with("application/json", Some("push"), "leak-6", Some(SECRET));
    assert_eq!(send(h, body.as_bytes()), 401);
    let tag = push_body("refs/tags/v1", SHA_B, "acme/app");
    assert_eq!(
        send(
            github_headers("push", "leak-7", &sign(SECRET, tag.as_bytes())),
            tag.as_bytes()
        ),
        200
    );
    assert_eq!(
        send(github_headers("push", "leak-1", &good), body.as_bytes()),
        200
    );
    let runs = wait_runs(&config, "app", 1, Duration::from_secs(20));
    assert_eq!(runs[0]["status"], "succeeded", "{runs:#?}");
    let log = cli_ok(&config, &["logs", "app"], 0);
    assert!(
        log.contains("DEPLOY_PROJECT=app"),
        "the script's env should be in its log: {log}"
    );
    d.wait_log(
        "POST /hooks/app 200 (duplicate) delivery=leak-1",
        Duration::from_secs(10),
    );

    let mut haystacks: Vec<(String, String)> = vec![
        ("daemon stderr".into(), d.log()),
        (
            "history --json".into(),
            cli_ok(&config, &["history", "app", "--json"], 0),
        ),
        ("history".into(), cli_ok(&config, &["history", "app"], 0)),
        (
            "status --json".into(),
            cli_ok(&config, &["status", "--json"], 0),
        ),
        ("check".into(), cli_ok(&config, &["check"], 0)),
    ];
    for (i, a) in answers.iter().enumerate() {
        haystacks.push((format!("response {i}"), a.clone()));
    }
    let mut files = files_under(&dir.join("state"));
    files.extend(files_under(&dir.join("logs")));
    assert!(
        files
            .iter()
            .any(|f| f.extension().is_some_and(|e| e == "log")),
        "expected a run log among {files:?}"
    );
    for f in files {
        let bytes = std::fs::read(&f).unwrap_or_default();
        haystacks.push((
            f.display().to_string(),
            String::from_utf8_lossy(&bytes).into_owned(),
        ));
    }
    let mut needles = vec![SECRET.to_string()];
    needles.extend(sent_sigs.iter().cloned());
    assert!(sent_sigs.len() >= 5, "signatures sent: {sent_sigs:?}");
    for (name, text) in &haystacks {
        for n in &needles {
            assert!(
                !text.contains(n.as_str()),
                "{name} contains {:?}:\n{text}",
                if n == SECRET {
                    "the secret"
                } else {
                    n.as_str()
                }
            );
        }
    }
}

#[test]
fn one_log_line_per_request() {
    let (_dir, config, d) = setup("http-log", "");
    let (s, b) = d.push("app", "refs/heads/main", SHA_A, "log-1");
    assert_eq!(s, 202, "{b}");
    let (s, _) = post(d.addr, "/hooks/nope", &[], b"{}");
    assert_eq!(s, 404);
    // A 200 says what it was: ignored, and why; a duplicate.
    let (s, b) = d.push("app", "refs/heads/feat", SHA_A, "log-ign");
    assert_eq!(s, 200, "{b}");
    let (s, b) = d.push("app", "refs/heads/main", SHA_A, "log-1");
    assert_eq!(s, 200, "{b}");
    let h = headers_with("application/json", Some("push"), "log-bad", None);
    let (s, _) = post(d.addr, "/hooks/app", &h, b"{}");
    assert_eq!(s, 401);
    wait_runs(&config, "app", 1, Duration::from_secs(20));
    d.wait_log("delivery=log-bad", Duration::from_secs(10));
    d.wait_log("POST /hooks/nope 404", Duration::from_secs(10));
    let log = d.log();
    let line_for = |prefix: &str, delivery: &str| -> String {
        let lines: Vec<&str> = log
            .lines()
            .filter(|l| l.contains(prefix) && l.contains(&format!("delivery={delivery} ")))
            .collect();
        assert_eq!(
            lines.len(),
            1,
            "one line with {prefix:?} and delivery={delivery}:\n{log}"
        );
        lines[0].to_string()
    };
    let ok = line_for("POST /hooks/app 202 delivery=log-1", "log-1");
    let bad = line_for("POST /hooks/app 401", "log-bad");
    let nope = line_for("POST /hooks/nope 404", "-");
    let ignored = line_for(
        "POST /hooks/app 200 (ignored: branch feat is not the deploy branch main) delivery=log-ign",
        "log-ign",
    );
    let duplicate = line_for("POST /hooks/app 200 (duplicate) delivery=log-1", "log-1");
    for l in [&ok, &bad, &nope, &ignored, &duplicate] {
        // …ending in the time the request took.
        let last = l.split_whitespace().last().unwrap_or("");
        let ms = last.strip_suffix("ms").and_then(|n| n.parse::<f64>().ok());
        assert!(ms.is_some(), "no duration at the end of {l:?}");
    }
}
