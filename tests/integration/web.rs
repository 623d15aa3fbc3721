//! The status page and /metrics through the real binary: every page, the
//! token (none, wrong, right, cookie, bearer), CSRF on the deploy button,
//! escaping of log text, the live log, a scrape read by a real OpenMetrics
//! parser, render time with many projects, and an idle daemon's wake-ups.

use crate::common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::*;

const T: Duration = Duration::from_secs(30);
pub(crate) const TOKEN: &str = "web-token-5e2a9c";

/// An answer with its head kept.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) head: String,
    pub(crate) body: String,
}

impl Answer {
    pub(crate) fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
}

pub(crate) fn fetch(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut s = send(addr, method, path, &headers, body.as_bytes());
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let text = String::from_utf8_lossy(&resp).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {text:?}"));
    Answer {
        status,
        head: head.to_string(),
        body: body.to_string(),
    }
}

pub(crate) fn get(addr: SocketAddr, path: &str, auth: &[(&str, &str)]) -> Answer {
    fetch(addr, "GET", path, auth, "")
}

/// The status page's address, from the daemon's log.
pub(crate) fn web_addr(d: &Daemon) -> SocketAddr {
    d.wait_log("status page on http://", T);
    d.log()
        .split("status page on http://")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap()
}

pub(crate) fn bearer() -> (&'static str, String) {
    ("Authorization", format!("Bearer {TOKEN}"))
}

/// A daemon with one project `app` whose script prints `script_body`.
fn setup(dir: &TestDir, web_extra: &str, script_body: &str) -> (Daemon, SocketAddr) {
    let script = dir.script("deploy.sh", &format!("#!/bin/sh\n{script_body}\n"));
    let config = write_config(
        dir,
        &format!(
            "[web]\nlisten = \"127.0.0.1:0\"\ntoken = \"{TOKEN}\"\ntoken_name = \"alice\"\n{web_extra}\n"
        ),
        &project("app", &script, ""),
    );
    let d = Daemon::start(&config);
    let w = web_addr(&d);
    (d, w)
}

#[test]
fn the_token_opens_the_page_by_bearer_or_login_cookie() {
    let dir = TestDir::new("web-auth");
    let (d, w) = setup(&dir, "", "echo hi");
    // No token: pages send to the login, streams and metrics say 401.
    let a = get(w, "/", &[]);
    assert_eq!(a.status, 303, "{}", a.head);
    assert_eq!(a.header("location").as_deref(), Some("/login?next=%2F"));
    assert_eq!(get(w, "/projects/app", &[]).status, 303);
    assert_eq!(get(w, "/events", &[]).status, 401);
    let none = get(w, "/metrics", &[]);
    assert_eq!(none.status, 401);
    assert!(none.body.starts_with("token required"), "{}", none.body);
    assert_eq!(
        fetch(w, "POST", "/projects/app/deploy", &[], "").status,
        401
    );
    // A wrong bearer token is refused, and told it is wrong: a script
    // sent it, which a login page would not help.
    let wrong = [("Authorization", "Bearer nope")];
    for path in ["/", "/metrics", "/events"] {
        let a = get(w, path, &wrong);
        assert_eq!(a.status, 401, "{path}: {}", a.head);
        assert_eq!(a.body, "wrong token\n", "{path}");
    }
    let a = fetch(w, "POST", "/projects/app/deploy", &wrong, "");
    assert_eq!((a.status, a.body.as_str()), (401, "wrong token\n"));
    // The right one opens everything.
    let (k, v) = bearer();
    let a = get(w, "/", &[(k, &v)]);
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(a.body.contains(">app</a>"), "{}", a.body);
    assert_eq!(get(w, "/metrics", &[(k, &v)]).status, 200);
    // The login page: a labelled password field; a wrong token is told so.
    let login = get(w, "/login?next=%2Fprojects%2Fapp", &[]);
    assert_eq!(login.status, 200);
    assert!(
        login.body.contains("<label for=\"token\">") && login.body.contains("type=\"password\"")
    );
    let bad = fetch(
        w,
        "POST",
        "/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        "token=nope&next=%2F",
    );
    assert_eq!(bad.status, 401);
    assert!(bad.header("set-cookie").is_none());
    assert!(bad.body.contains("not right"));
    // The right token: a cookie that is HttpOnly, SameSite=Strict, not
    // Secure (no https public_url), and does not hold the token.
    let ok = fetch(
        w,
        "POST",
        "/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &format!("token={TOKEN}&next=%2Fprojects%2Fapp"),
    );
    assert_eq!(ok.status, 303, "{}", ok.body);
    assert_eq!(ok.header("location").as_deref(), Some("/projects/app"));
    let cookie = ok.header("set-cookie").unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(
        !cookie.contains("Secure") && !cookie.contains(TOKEN),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap().to_string();
    let a = get(w, "/projects/app", &[("Cookie", &pair)]);
    assert_eq!(a.status, 200);
    // Elsewhere than a local path, the login goes home.
    let away = fetch(
        w,
        "POST",
        "/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &format!("token={TOKEN}&next=%2F%2Fevil.example"),
    );
    assert_eq!(away.header("location").as_deref(), Some("/"));
    // No page ever holds the token.
    assert!(!a.body.contains(TOKEN) && !login.body.contains(TOKEN));
    // A changed token logs everyone out: the cookie was bound to the old one.
    let config = std::fs::read_to_string(&d.config).unwrap();
    std::fs::write(&d.config, config.replace(TOKEN, "another-token-77")).unwrap();
    d.signal("HUP");
    d.wait_log("config reloaded", T);
    assert_eq!(get(w, "/projects/app", &[("Cookie", &pair)]).status, 303);
    assert_eq!(
        get(w, "/", &[("Authorization", "Bearer another-token-77")]).status,
        200
    );
}

#[test]
fn pages_show_runs_and_escape_the_log() {
    let dir = TestDir::new("web-pages");
    let (d, w) = setup(
        &dir,
        "",
        "echo 'first <script>alert(1)</script> & more'\nprintf '\\033[1;31mred\\033[0m plain\\n'\necho last",
    );
    assert_eq!(d.push("app", "refs/heads/main", SHA_A, "web-1").0, 202);
    wait_runs(&d.config, "app", 1, T);
    let (k, v) = bearer();
    let auth = [(k, v.as_str())];
    let overview = get(w, "/", &auth);
    assert_eq!(overview.status, 200);
    assert!(
        overview
            .header("content-security-policy")
            .unwrap()
            .contains("script-src 'self'")
    );
    assert!(overview.body.contains("<table") && overview.body.contains("scope=\"col\""));
    assert!(
        overview.body.contains("class=\"st ok\">succeeded"),
        "{}",
        overview.body
    );
    assert!(overview.body.contains(&SHA_A[..10]));
    assert!(overview.body.contains("href=\"/projects/app/runs/1\""));

    let project = get(w, "/projects/app", &auth);
    assert_eq!(project.status, 200);
    assert!(
        project.body.contains("<svg class=\"plot\""),
        "{}",
        project.body
    );
    assert!(project.body.contains("<rect class=\"ok\""));
    assert!(project.body.contains("refs/heads/main") || project.body.contains("<code>main</code>"));
    assert!(project.body.contains("/hooks/app"), "the triggers in force");
    assert!(
        !project.body.contains("Deploy now"),
        "no actions unless actions = true"
    );
    let failed = get(w, "/projects/app?status=failed", &auth);
    assert!(failed.body.contains("No runs match"), "{}", failed.body);
    let webhook = get(w, "/projects/app?trigger=webhook", &auth);
    assert!(webhook.body.contains("href=\"/projects/app/runs/1\""));

    let run = get(w, "/projects/app/runs/1", &auth);
    assert_eq!(run.status, 200);
    assert!(
        run.body
            .contains("first &lt;script&gt;alert(1)&lt;/script&gt; &amp; more"),
        "{}",
        run.body
    );
    assert!(!run.body.contains("<script>alert"));
    assert!(run.body.contains("<span class=\"f1 b\">red</span> plain"));
    assert!(run.body.contains("id=\"L2\"") && run.body.contains("href=\"#L2\""));
    assert!(run.body.contains("web-1") && run.body.contains(SHA_A));
    let raw = get(w, "/projects/app/runs/1/log", &auth);
    assert!(
        raw.header("content-type")
            .unwrap()
            .starts_with("text/plain")
    );
    assert!(raw.body.contains("first <script>alert(1)</script> & more"));
    // The whole log as events, then its end; resuming from an offset
    // sends only what follows it, numbered on.
    let events = get(w, "/projects/app/runs/1/events", &auth);
    assert!(
        events
            .header("content-type")
            .unwrap()
            .starts_with("text/event-stream")
    );
    assert!(events.body.contains("&lt;script&gt;") && !events.body.contains("<script>"));
    assert!(events.body.contains("event: end"), "{}", events.body);
    let log = std::fs::read(dir.join("logs/app/1.log")).unwrap();
    let second = log.iter().position(|&b| b == b'\n').unwrap() + 1;
    let resumed = get(
        w,
        "/projects/app/runs/1/events",
        &[(k, &v), ("Last-Event-ID", &second.to_string())],
    );
    assert!(!resumed.body.contains("id=\"L1\""), "{}", resumed.body);
    assert!(resumed.body.contains("id=\"L2\""), "{}", resumed.body);

    assert_eq!(get(w, "/projects/app/runs/9", &auth).status, 404);
    assert_eq!(get(w, "/projects/nope", &auth).status, 404);
    assert_eq!(get(w, "/static/style.css", &[]).status, 200);
    // The hook listener knows nothing of the page.
    assert_eq!(request(d.addr, "GET", "/", &[], b"").0, 404);
}

#[test]
fn a_running_log_streams_live_in_order() {
    let dir = TestDir::new("web-live");
    let (d, w) = setup(
        &dir,
        "",
        "for i in 1 2 3 4 5 6; do echo \"step $i\"; sleep 0.2; done",
    );
    assert_eq!(d.push("app", "refs/heads/main", SHA_A, "live-1").0, 202);
    let (k, v) = bearer();
    wait_until(T, "the run to start", || {
        get(w, "/projects/app/runs/1", &[(k, &v)]).status == 200
    });
    let started = Instant::now();
    let events = get(w, "/projects/app/runs/1/events", &[(k, &v)]);
    // It followed the run to its end (not only what was there at once).
    assert!(started.elapsed() > Duration::from_millis(300));
    let mut at = 0;
    for i in 1..=6 {
        let needle = format!("step {i}");
        let found = events.body[at..]
            .find(&needle)
            .unwrap_or_else(|| panic!("{needle} missing or out of order:\n{}", events.body));
        at += found;
    }
    assert!(events.body[at..].contains("event: end"));
}

#[test]
fn the_deploy_button_needs_the_csrf_token_and_records_who() {
    let dir = TestDir::new("web-csrf");
    let (d, w) = setup(&dir, "actions = true", "echo deployed");
    let login = fetch(
        w,
        "POST",
        "/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &format!("token={TOKEN}"),
    );
    let cookie = login
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let page = get(w, "/projects/app", &[("Cookie", &cookie)]);
    assert!(page.body.contains("Deploy now"), "{}", page.body);
    let csrf = page
        .body
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_string();
    let form = [
        ("Cookie", cookie.as_str()),
        ("Content-Type", "application/x-www-form-urlencoded"),
    ];
    // Without the token, or with a wrong one: refused, nothing queued.
    assert_eq!(
        fetch(w, "POST", "/projects/app/deploy", &form, "").status,
        403
    );
    assert_eq!(
        fetch(w, "POST", "/projects/app/deploy", &form, "csrf=0000").status,
        403
    );
    assert!(history(&d.config, "app").is_empty());
    let ok = fetch(
        w,
        "POST",
        "/projects/app/deploy",
        &form,
        &format!("csrf={csrf}"),
    );
    assert_eq!(ok.status, 303, "{}", ok.body);
    assert_eq!(ok.header("location").as_deref(), Some("/projects/app"));
    let runs = wait_runs(&d.config, "app", 1, T);
    assert_eq!(runs[0]["trigger"], "web");
    assert_eq!(runs[0]["pusher"], "alice");
    // A bearer client is no browser: no CSRF token needed.
    let (k, v) = bearer();
    assert_eq!(
        fetch(w, "POST", "/projects/app/deploy", &[(k, &v)], "").status,
        303
    );
    wait_runs(&d.config, "app", 2, T);
    // Unknown actions and projects.
    assert_eq!(
        fetch(w, "POST", "/projects/app/explode", &[(k, &v)], "").status,
        404
    );
    assert_eq!(
        fetch(w, "POST", "/projects/nope/deploy", &[(k, &v)], "").status,
        404
    );
}

#[test]
fn without_actions_there_is_no_deploy() {
    let dir = TestDir::new("web-noactions");
    let (_d, w) = setup(&dir, "", "echo x");
    let (k, v) = bearer();
    assert_eq!(
        fetch(w, "POST", "/projects/app/deploy", &[(k, &v)], "").status,
        404
    );
}

#[test]
fn metrics_parse_as_openmetrics() {
    let dir = TestDir::new("web-metrics");
    let (d, w) = setup(&dir, "metrics_public = true", "echo one; exit 3");
    assert_eq!(d.push("app", "refs/heads/main", SHA_A, "m-1").0, 202);
    assert_eq!(d.push("app", "refs/heads/main", SHA_A, "m-1").0, 200);
    wait_runs(&d.config, "app", 1, T);
    // The run event reaches the counter a moment after the record.
    let mut text = String::new();
    wait_until(T, "the run counted", || {
        text = get(w, "/metrics", &[]).body;
        text.contains("deployd_runs_total{project=\"app\",status=\"failed\"} 1")
    });
    for needle in [
        "deployd_deliveries_total{project=\"app\",answer=\"202\"} 1",
        "deployd_deliveries_total{project=\"app\",answer=\"200\"} 1",
        "deployd_run_duration_seconds_count{project=\"app\"} 1",
        "deployd_pending_requests 0",
        "deployd_running_runs 0",
        "deployd_build_info{version=",
        "process_resident_memory_bytes ",
        "# EOF",
    ] {
        assert!(text.contains(needle), "{needle} missing:\n{text}");
    }
    let names = openmetrics_families(&text);
    for n in [
        "deployd_deliveries",
        "deployd_runs",
        "deployd_run_duration_seconds",
        "process_cpu_seconds",
    ] {
        assert!(
            names.split_whitespace().any(|f| f == n),
            "{n} not parsed: {names}"
        );
    }
    // An unknown hook path adds no label.
    request(d.addr, "POST", "/hooks/zzz", &[], b"{}");
    assert!(!get(w, "/metrics", &[]).body.contains("zzz"));
}

/// The families a real parser reads in the scrape `text` (the Python
/// client's OpenMetrics parser: Debian's python3-prometheus-client;
/// scripts/test.sh installs it), space-separated; panics when it refuses it.
pub(crate) fn openmetrics_families(text: &str) -> String {
    let parser = "import sys\nfrom prometheus_client.openmetrics.parser import text_string_to_metric_families as p\n\
                  fams = list(p(sys.stdin.read()))\nprint(' '.join(sorted(f.name for f in fams)))\n";
    let mut child = std::process::Command::new("/usr/bin/python3")
        .args(["-c", parser])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("/usr/bin/python3 (apt-get install python3-prometheus-client)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the OpenMetrics parser refused the scrape (needs python3-prometheus-client):\n{}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn no_token_only_on_loopback() {
    let dir = TestDir::new("web-notoken");
    let script = dir.script("deploy.sh", "#!/bin/sh\necho x\n");
    let config = write_config(
        &dir,
        "[web]\nlisten = \"0.0.0.0:0\"\n",
        &project("app", &script, ""),
    );
    let out = cli(&config, &["check"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("web.listen") && err.contains("needs a token"),
        "{err}"
    );
    // With a token from a file, check says where it is read from, not what it is.
    std::fs::write(dir.join("web-token"), format!("{TOKEN}\n")).unwrap();
    let config = write_config(
        &dir,
        "[web]\nlisten = \"0.0.0.0:0\"\ntoken_file = \"web-token\"\nactions = true\n",
        &project("app", &script, ""),
    );
    let out = cli(&config, &["check"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("web: http://0.0.0.0:0")
            && text.contains("token_file ")
            && text.contains("actions on"),
        "{text}"
    );
    assert!(!text.contains(TOKEN), "{text}");
    let config = write_config(
        &dir,
        "[web]\nlisten = \"127.0.0.1:0\"\n",
        &project("app", &script, ""),
    );
    let d = Daemon::start(&config);
    let w = web_addr(&d);
    assert!(d.log().contains("web: no token"), "{}", d.log());
    let a = get(w, "/", &[]);
    assert_eq!(a.status, 200);
    assert!(!a.body.contains("Log out"));
}

/// Writes `runs` finished records for each of `projects` projects straight
/// into the state directory, in the daemon's format (without its fsyncs,
/// which would make this test take minutes).
fn fill_history(dir: &TestDir, projects: usize, runs: usize) -> String {
    let script = dir.script("deploy.sh", "#!/bin/sh\necho x\n");
    let mut tables = String::new();
    for p in 0..projects {
        let name = format!("p{p:03}");
        tables.push_str(&project(&name, &script, ""));
        let records = dir.join(&format!("state/runs/{name}"));
        let logs = dir.join(&format!("logs/{name}"));
        std::fs::create_dir_all(&records).unwrap();
        std::fs::create_dir_all(&logs).unwrap();
        for i in 1..=runs as u64 {
            // The flat record format of `history --json` (README, *Commands*).
            let run = serde_json::json!({
                "id": i,
                "project": name,
                "trigger": "webhook",
                "ref": "refs/heads/main",
                "sha": SHA_A,
                "before": "",
                "repository": format!("acme/{name}"),
                "pusher": "octocat",
                "delivery": format!("d-{p}-{i}"),
                "status": if i % 7 == 0 { "failed" } else { "succeeded" },
                "exit_code": 0,
                "signal": null,
                "started_at": "2026-01-01T00:00:00.000Z",
                "finished_at": format!("2026-01-01T00:00:{:02}.000Z", i % 60),
                "log": logs.join(format!("{i}.log")),
                "request_seq": i,
                "received_at": "2026-01-01T00:00:00.000Z",
                "pid": null,
            });
            std::fs::write(
                records.join(format!("{i}.json")),
                serde_json::to_vec_pretty(&run).unwrap(),
            )
            .unwrap();
        }
    }
    tables
}

#[test]
fn a_hundred_projects_of_a_hundred_runs_render_fast() {
    let dir = TestDir::new("web-many");
    let tables = fill_history(&dir, 100, 100);
    let config = write_config(
        &dir,
        &format!("[web]\nlisten = \"127.0.0.1:0\"\ntoken = \"{TOKEN}\"\n"),
        &tables,
    );
    let d = Daemon::start(&config);
    let w = web_addr(&d);
    let (k, v) = bearer();
    let best = |path: &str| {
        (0..5)
            .map(|_| {
                let t = Instant::now();
                let a = get(w, path, &[(k, &v)]);
                assert_eq!(a.status, 200);
                t.elapsed()
            })
            .min()
            .unwrap()
    };
    let overview = best("/");
    let project = best("/projects/p050");
    eprintln!("100 projects x 100 runs: overview {overview:?}, project page {project:?}");
    // The target is 50 ms for a release build (scripts/bench.sh measures
    // it); this test runs a debug build beside other tests, hence the margin.
    assert!(
        overview < Duration::from_millis(1000),
        "overview took {overview:?}"
    );
    assert!(
        project < Duration::from_millis(1000),
        "project page took {project:?}"
    );
    let page = get(w, "/", &[(k, &v)]).body;
    assert_eq!(page.matches("<tr><th scope=\"row\">").count(), 100);
    assert!(
        page.contains("class=\"bad\""),
        "failed runs are red in the strip"
    );
}

#[test]
fn an_idle_daemon_with_the_page_never_wakes() {
    let dir = TestDir::new("web-idle");
    let (d, w) = setup(&dir, "", "echo x");
    assert_eq!(d.push("app", "refs/heads/main", SHA_A, "idle-1").0, 202);
    wait_runs(&d.config, "app", 1, T);
    let (k, v) = bearer();
    assert_eq!(get(w, "/", &[(k, &v)]).status, 200);
    assert_eq!(get(w, "/metrics", &[(k, &v)]).status, 200);
    let pid = d.child.id();
    std::thread::sleep(Duration::from_millis(500));
    let before = switches(pid);
    sleeps_through(pid, &before, Duration::from_secs(6));
}

/// Opens `path` on the page and reads only the response head: a browser
/// that stopped reading.
fn stalled(addr: SocketAddr, path: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    let (k, v) = bearer();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n{k}: {v}\r\n\r\n").unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    let mut head = [0u8; 64];
    let n = s.read(&mut head).unwrap();
    assert!(String::from_utf8_lossy(&head[..n]).contains("200"));
    s
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn a_follower_that_stops_reading_does_not_grow_the_daemon() {
    let dir = TestDir::new("web-slow");
    let gate = dir.join("gate");
    std::fs::write(&gate, "").unwrap();
    // 40 MB of log lines, then the run waits (bounded) for the gate to go.
    let (d, w) = setup(
        &dir,
        "",
        &format!(
            "head -c 40000000 /dev/zero | tr '\\0' 'x' | fold -w 99\n\
             i=0; while [ -e {} ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done",
            gate.display()
        ),
    );
    assert_eq!(d.push("app", "refs/heads/main", SHA_A, "slow-1").0, 202);
    let log = dir.join("logs/app/1.log");
    wait_until(T, "the run to start", || log.exists());
    let pid = d.child.id();
    let before = rss_kib(pid);
    let _followers: Vec<TcpStream> = (0..3)
        .map(|_| stalled(w, "/projects/app/runs/1/events"))
        .collect();
    wait_until(T, "the whole log written", || {
        std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0) >= 40_000_000
    });
    // Let the followers' tasks run into their full channels and sockets.
    std::thread::sleep(Duration::from_secs(2));
    let after = rss_kib(pid);
    // Rendered as HTML the log would be about 100 MB per follower.
    assert!(
        after < before + 16 * 1024,
        "RSS grew from {before} KiB to {after} KiB with 3 stalled followers"
    );
    std::fs::remove_file(&gate).unwrap();
}

#[test]
fn open_streams_do_not_hold_up_a_stop() {
    let dir = TestDir::new("web-stop");
    let (mut d, w) = setup(&dir, "", "echo x");
    let _status = stalled(w, "/events");
    let started = Instant::now();
    d.signal("TERM");
    d.wait_exit(Duration::from_secs(20));
    // request_timeout (30 s) would be the wait if the stream did not end.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "stopping took {:?}",
        started.elapsed()
    );
}

#[test]
fn the_page_has_the_hook_listeners_connection_cap() {
    let dir = TestDir::new("web-cap");
    let script = dir.script("deploy.sh", "#!/bin/sh\necho x\n");
    let config = write_config(
        &dir,
        &format!("max_connections = 2\n[web]\nlisten = \"127.0.0.1:0\"\ntoken = \"{TOKEN}\"\n"),
        &project("app", &script, ""),
    );
    let d = Daemon::start(&config);
    let w = web_addr(&d);
    let _a = stalled(w, "/events");
    let _b = stalled(w, "/events");
    let third = get(w, "/", &[]);
    assert_eq!(third.status, 503, "{}", third.body);
}

#[test]
fn direct_runs_made_without_the_daemon_are_counted_when_it_starts() {
    let dir = TestDir::new("web-metrics-direct");
    let script = dir.script("deploy.sh", "#!/bin/sh\necho direct\nexit 3\n");
    let config = write_config(
        &dir,
        "[web]\nlisten = \"127.0.0.1:0\"\nmetrics_public = true\n",
        &project("app", &script, ""),
    );
    // No daemon answers: the run is carried out directly, its events spooled.
    cli_ok(&config, &["deploy", "app", "--sha", SHA_A], 1);
    cli_ok(&config, &["deploy", "app", "--sha", SHA_A], 1);
    let d = Daemon::start(&config);
    let w = web_addr(&d);
    d.wait_log("published 6 run event(s)", T);
    let mut text = String::new();
    wait_until(T, "the direct runs counted", || {
        text = get(w, "/metrics", &[]).body;
        text.contains("deployd_runs_total{project=\"app\",status=\"failed\"} 2")
    });
    assert!(
        text.contains("deployd_run_duration_seconds_count{project=\"app\"} 2"),
        "{text}"
    );
}

/// A project whose script prints `started`, waits for the returned gate
/// file (at most 30 s), then prints `ended`; `[web]` with [`TOKEN`].
fn held_project_with_web(name: &str) -> (TestDir, std::path::PathBuf, std::path::PathBuf) {
    let dir = TestDir::new(name);
    let gate = dir.join("gate");
    let script = dir.script(
        "deploy.sh",
        &format!(
            "#!/bin/sh\necho started\ni=0\nwhile [ ! -e {} ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done\necho ended\n",
            gate.display()
        ),
    );
    let config = write_config(
        &dir,
        &format!("[web]\nlisten = \"127.0.0.1:0\"\ntoken = \"{TOKEN}\"\n"),
        &project("app", &script, ""),
    );
    (dir, gate, config)
}

#[test]
fn a_log_follower_sees_the_end_of_a_direct_run_the_daemon_started_beside() {
    let (_dir, gate, config) = held_project_with_web("web-direct-follow");
    // A direct deploy (no daemon yet), held inside its script.
    let mut direct = KillOnDrop(
        std::process::Command::new(BIN)
            .arg("-c")
            .arg(&config)
            .args(["deploy", "app"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_until(T, "the direct run to start", || {
        history(&config, "app")
            .first()
            .is_some_and(|r| r["status"] == "running")
    });
    // A daemon starts beside it: the run's end reaches no bus of its.
    let d = Daemon::start(&config);
    let w = web_addr(&d);
    let mut s = TcpStream::connect(w).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "GET /projects/app/runs/1/events HTTP/1.1\r\nHost: {w}\r\nConnection: close\r\n\
         Authorization: Bearer {TOKEN}\r\n\r\n"
    )
    .unwrap();
    // Following the running log...
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("started") {
        let n = s.read(&mut buf).expect("the log stream");
        assert!(n > 0, "{}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    // ...when the run ends.
    std::fs::write(&gate, "").unwrap();
    let status = poll(T, "the direct deploy to exit", || {
        direct
            .0
            .try_wait()
            .unwrap()
            .ok_or_else(|| "running".to_string())
    });
    assert!(status.success(), "the direct deploy: {status:?}");
    let rest = {
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        seen.extend_from_slice(&rest);
        String::from_utf8_lossy(&seen).into_owned()
    };
    assert!(
        rest.contains("ended") && rest.contains("event: end") && rest.contains("data: succeeded"),
        "the follower did not see the run end:\n{rest}"
    );
    drop(d);
}

/// The overview's strip of recent runs (kept in memory by the daemon)
/// never lags the records: a run the daemon carries out shows its end at
/// once, and so does one a direct `deployd deploy` (another process,
/// started before the daemon) finishes while the daemon runs.
#[test]
fn the_overview_follows_every_run_to_its_end() {
    let (_dir, gate, config) = held_project_with_web("web-overview-fresh");
    let mut direct = KillOnDrop(
        std::process::Command::new(BIN)
            .arg("-c")
            .arg(&config)
            .args(["deploy", "app", "--sha", SHA_A])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_until(T, "the direct run to start", || {
        history(&config, "app")
            .first()
            .is_some_and(|r| r["status"] == "running")
    });
    let d = Daemon::start(&config);
    let w = web_addr(&d);
    let (k, v) = bearer();
    let overview = || {
        let a = get(w, "/", &[(k, &v)]);
        assert_eq!(a.status, 200);
        a.body
    };
    let page = overview();
    assert!(page.contains("title=\"#1 running\""), "{page}");
    // The direct deploy ends: its record is written by that process.
    std::fs::write(&gate, "").unwrap();
    let status = poll(T, "the direct deploy to exit", || {
        direct
            .0
            .try_wait()
            .unwrap()
            .ok_or_else(|| "running".to_string())
    });
    assert!(status.success(), "the direct deploy: {status:?}");
    let page = overview();
    assert!(page.contains("title=\"#1 succeeded\""), "{page}");
    // A run of the daemon's own, seen running and then ended.
    std::fs::remove_file(&gate).unwrap();
    assert_eq!(d.push("app", "refs/heads/main", SHA_B, "fresh-2").0, 202);
    wait_until(T, "run 2 to start", || {
        overview().contains("title=\"#2 running\"")
    });
    std::fs::write(&gate, "").unwrap();
    wait_until(T, "run 2 to end", || {
        history(&config, "app")
            .first()
            .is_some_and(|r| r["id"] == 2 && r["status"] == "succeeded")
    });
    let page = overview();
    assert!(
        page.contains("title=\"#2 succeeded\"") && page.contains("title=\"#1 succeeded\""),
        "{page}"
    );
}

/// The run page shows what the script wrote to DEPLOY_OUTPUT: its summary,
/// its commit, and its url, a link only when it is http(s), escaped either
/// way.
#[test]
fn the_run_page_shows_the_scripts_outputs() {
    let dir = TestDir::new("web-outputs");
    let (d, w) = setup(
        &dir,
        "",
        "case \"$DEPLOY_SHA\" in\n\
         a*) echo 'url=https://app.example.com/x?a=1&b=<i>\"' ;;\n\
         *) echo 'url=javascript:alert(1)' ;;\n\
         esac >>\"$DEPLOY_OUTPUT\"\n\
         echo 'summary=deployed <b>v1.4</b>' >>\"$DEPLOY_OUTPUT\"\n\
         echo \"sha=$DEPLOY_SHA\" >>\"$DEPLOY_OUTPUT\"",
    );
    assert_eq!(d.push("app", "refs/heads/main", SHA_A, "out-1").0, 202);
    wait_runs(&d.config, "app", 1, T);
    assert_eq!(d.push("app", "refs/heads/main", SHA_B, "out-2").0, 202);
    wait_runs(&d.config, "app", 2, T);
    let (k, v) = bearer();
    let page = get(w, "/projects/app/runs/1", &[(k, &v)]).body;
    assert!(
        page.contains(
            "<dt>URL</dt><dd><a href=\"https://app.example.com/x?a=1&amp;b=&lt;i&gt;&quot;\" \
             rel=\"noopener noreferrer\">https://app.example.com/x?a=1&amp;b=&lt;i&gt;&quot;</a></dd>"
        ),
        "{page}"
    );
    assert!(
        page.contains("<dt>Summary</dt><dd>deployed &lt;b&gt;v1.4&lt;/b&gt;</dd>"),
        "{page}"
    );
    assert!(
        page.contains(&format!(
            "<dt>Deployed commit</dt><dd><code>{SHA_A}</code></dd>"
        )),
        "{page}"
    );
    let page = get(w, "/projects/app/runs/2", &[(k, &v)]).body;
    assert!(
        page.contains("<dt>URL</dt><dd>javascript:alert(1)</dd>"),
        "{page}"
    );
    assert!(!page.contains("href=\"javascript"), "{page}");
}

/// A path that leads nowhere is a 404 that is still a page: the layout,
/// a heading, and the way back to the overview.
#[test]
fn a_path_that_leads_nowhere_is_a_404_page() {
    let dir = TestDir::new("web-404");
    let (_d, w) = setup(&dir, "", "echo x");
    let (k, v) = bearer();
    for path in [
        "/nope",
        "/projects/nope",
        "/projects/app/runs/99",
        "/projects/app/runs/x",
        "/projects/app/runs/99/log",
    ] {
        let a = get(w, path, &[(k, &v)]);
        assert_eq!(a.status, 404, "{path}: {}", a.body);
        assert_eq!(
            a.header("content-type").as_deref(),
            Some("text/html; charset=utf-8"),
            "{path}"
        );
        assert!(
            a.body.starts_with("<!doctype html>")
                && a.body.contains("<title>Not found · deployd</title>")
                && a.body.contains("<h1>Not found</h1>")
                && a.body.contains("<a href=\"/\">All projects</a>"),
            "{path}: {}",
            a.body
        );
    }
    // Without the token a browser is still sent to the login first.
    assert_eq!(get(w, "/nope", &[]).status, 303);
}

/// The value of the hidden field `name` in the form posting to `action`.
fn form_field(page: &str, action: &str, name: &str) -> Option<String> {
    let form = page.split(&format!("action=\"{action}\"")).nth(1)?;
    let form = &form[..form.find("</form>")?];
    form.split(&format!("name=\"{name}\" value=\""))
        .nth(1)?
        .split('"')
        .next()
        .map(str::to_string)
}

/// Cancel and Roll back, with `actions = true`: each shown only when it
/// can act, each a POST that needs the CSRF token, each doing what `deployd
/// cancel` and `deployd rollback` do, recorded with the token's name.
#[test]
fn cancel_and_rollback_from_the_page() {
    let dir = TestDir::new("web-undo");
    let gate = dir.join("gate");
    const SHA_C: &str = "cccccccccccccccccccccccccccccccccccccccc";
    // A push of commit c… runs until the gate opens (at most 60 s).
    let (d, w) = setup(
        &dir,
        "actions = true",
        &format!(
            "echo \"deploying $DEPLOY_SHA\"\n\
             case \"$DEPLOY_SHA\" in c*) i=0; while [ ! -e {} ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done ;; esac",
            gate.display()
        ),
    );
    let login = fetch(
        w,
        "POST",
        "/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &format!("token={TOKEN}"),
    );
    let cookie = login
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let form = [
        ("Cookie", cookie.as_str()),
        ("Content-Type", "application/x-www-form-urlencoded"),
    ];
    let page = |path: &str| {
        let a = get(w, path, &[("Cookie", &cookie)]);
        assert_eq!(a.status, 200, "{path}");
        a.body
    };
    let (k, v) = bearer();

    // No run yet: nothing to cancel, nothing to roll back to.
    let p = page("/projects/app");
    assert!(p.contains("Deploy now"), "{p}");
    assert!(
        !p.contains("/projects/app/cancel") && !p.contains("/projects/app/rollback"),
        "{p}"
    );
    let none = fetch(w, "POST", "/projects/app/rollback", &[(k, &v)], "");
    assert_eq!(none.status, 409, "{}", none.body);
    assert!(
        none.body.contains("<h1>Nothing to roll back to</h1>")
            && none.body.contains("no run has succeeded yet"),
        "{}",
        none.body
    );
    let none = fetch(w, "POST", "/projects/app/cancel", &[(k, &v)], "");
    assert_eq!(none.status, 409, "{}", none.body);
    assert!(
        none.body.contains("app has no running run"),
        "{}",
        none.body
    );

    // Two good deploys: A, then B (the current one).
    assert_eq!(d.push("app", "refs/heads/main", SHA_A, "undo-1").0, 202);
    wait_runs(&d.config, "app", 1, T);
    assert_eq!(d.push("app", "refs/heads/main", SHA_B, "undo-2").0, 202);
    wait_until(T, "run 2 to succeed", || {
        history(&d.config, "app")
            .first()
            .is_some_and(|r| r["id"] == 2 && r["status"] == "succeeded")
    });
    let p = page("/projects/app");
    assert!(p.contains("Roll back to aaaaaaaaaa"), "{p}");
    assert_eq!(
        form_field(&p, "/projects/app/rollback", "to").as_deref(),
        Some("1")
    );
    assert!(!p.contains("Cancel run"), "{p}");

    // C runs until cancelled: the button is on the project page and on
    // that run's page only.
    assert_eq!(d.push("app", "refs/heads/main", SHA_C, "undo-3").0, 202);
    let mut p = String::new();
    wait_until(T, "run 3 to show running", || {
        p = page("/projects/app");
        p.contains("Cancel run #3")
    });
    let csrf = form_field(&p, "/projects/app/cancel", "csrf").unwrap();
    assert_eq!(
        form_field(&p, "/projects/app/cancel", "run").as_deref(),
        Some("3")
    );
    let r3 = page("/projects/app/runs/3");
    assert!(r3.contains("Cancel run #3"), "{r3}");
    assert!(!page("/projects/app/runs/2").contains("Cancel run"));
    // Without the CSRF token, or for a run that is not the one going on:
    // refused, the run goes on.
    assert_eq!(
        fetch(w, "POST", "/projects/app/cancel", &form, "run=3").status,
        403
    );
    let stale = fetch(
        w,
        "POST",
        "/projects/app/cancel",
        &form,
        &format!("csrf={csrf}&run=2"),
    );
    assert_eq!(stale.status, 409, "{}", stale.body);
    assert!(stale.body.contains("run 2 of app is not running any more"));
    assert_eq!(history(&d.config, "app")[0]["status"], "running");
    let ok = fetch(
        w,
        "POST",
        "/projects/app/cancel",
        &form,
        &format!("csrf={csrf}&run=3"),
    );
    assert_eq!(ok.status, 303, "{}", ok.body);
    assert_eq!(
        ok.header("location").as_deref(),
        Some("/projects/app/runs/3")
    );
    wait_until(T, "run 3 to be recorded cancelled", || {
        history(&d.config, "app")[0]["status"] == "cancelled"
    });
    // The note is written as the script is stopped, so it may land a moment
    // after the record says cancelled.
    wait_until(T, "run 3's log to say who cancelled it", || {
        std::fs::read_to_string(dir.join("logs/app/3.log"))
            .is_ok_and(|log| log.contains("=== deployd: cancelled by alice"))
    });
    d.wait_log("app: cancelling run 3, as alice asked", T);
    let p = page("/projects/app");
    assert!(!p.contains("Cancel run"), "{p}");
    assert!(!page("/projects/app/runs/3").contains("Cancel run"));

    // Roll back: B is still the current one, so to A (run 1).
    assert_eq!(
        form_field(&p, "/projects/app/rollback", "to").as_deref(),
        Some("1")
    );
    assert_eq!(
        fetch(w, "POST", "/projects/app/rollback", &form, "to=1").status,
        403
    );
    assert_eq!(history(&d.config, "app").len(), 3);
    let ok = fetch(
        w,
        "POST",
        "/projects/app/rollback",
        &form,
        &format!("csrf={csrf}&to=1"),
    );
    assert_eq!(ok.status, 303, "{}", ok.body);
    assert_eq!(ok.header("location").as_deref(), Some("/projects/app"));
    let runs = wait_runs(&d.config, "app", 4, T);
    assert_eq!(runs[0]["trigger"], "rollback");
    assert_eq!(runs[0]["sha"], SHA_A);
    assert_eq!(runs[0]["pusher"], "alice");
    wait_until(T, "the rollback to succeed", || {
        history(&d.config, "app")[0]["status"] == "succeeded"
    });
    // A run id that is not a number is refused.
    assert_eq!(
        fetch(
            w,
            "POST",
            "/projects/app/rollback",
            &form,
            &format!("csrf={csrf}&to=x")
        )
        .status,
        400
    );
}

#[test]
fn without_actions_there_is_no_cancel_or_rollback() {
    let dir = TestDir::new("web-noundo");
    let (d, w) = setup(&dir, "", "echo x");
    assert_eq!(d.push("app", "refs/heads/main", SHA_A, "nu-1").0, 202);
    wait_runs(&d.config, "app", 1, T);
    assert_eq!(d.push("app", "refs/heads/main", SHA_B, "nu-2").0, 202);
    wait_runs(&d.config, "app", 2, T);
    let (k, v) = bearer();
    let p = get(w, "/projects/app", &[(k, &v)]).body;
    assert!(
        !p.contains("<form method=\"post\" action=\"/projects"),
        "{p}"
    );
    for action in ["cancel", "rollback"] {
        let path = format!("/projects/app/{action}");
        assert_eq!(fetch(w, "POST", &path, &[(k, &v)], "").status, 404);
    }
}
