//! Test harness: a temporary deployd setup (config, scripts, state), the real
//! binary started on 127.0.0.1:0, a raw HTTP client, signing, and bounded
//! polls. Failures print everything needed to diagnose them from a CI log.
#![allow(dead_code, missing_docs)]

pub mod git;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_deployd");
pub const SECRET: &str = "test-secret-value-91f3";
pub const SHA_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
pub const SHA_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A fresh directory for one test, removed when the test passes.
pub struct TestDir {
    pub path: PathBuf,
}

impl TestDir {
    pub fn new(name: &str) -> TestDir {
        let path = std::env::temp_dir().join(format!(
            "deployd-it-{name}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TestDir { path }
    }

    pub fn join(&self, p: &str) -> PathBuf {
        self.path.join(p)
    }

    /// Writes an executable script.
    pub fn script(&self, name: &str, body: &str) -> PathBuf {
        let p = self.path.join(name);
        std::fs::write(&p, body).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.path);
        } else {
            eprintln!("test files kept in {}", self.path.display());
        }
    }
}

/// A config with `[server]` pointing into `dir` and the given project tables
/// (TOML text of `[projects.x]` tables, appended as is).
pub fn write_config(dir: &TestDir, server_extra: &str, projects: &str) -> PathBuf {
    let grace = if server_extra.contains("shutdown_grace") {
        ""
    } else {
        "shutdown_grace = \"5s\"\n"
    };
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nstate_dir = \"state\"\nlog_dir = \"logs\"\n\
         control_socket = \"control.sock\"\n{grace}{server_extra}\n{projects}"
    );
    let p = dir.join("deploy.toml");
    std::fs::write(&p, text).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p
}

/// A `[projects.NAME]` table with the test secret.
pub fn project(name: &str, script: &Path, extra: &str) -> String {
    format!(
        "[projects.{name}]\nsecret = \"{SECRET}\"\nrepository = \"acme/{name}\"\nscript = \"{}\"\n{extra}\n",
        script.display()
    )
}

/// A running `deployd serve`.
pub struct Daemon {
    pub child: Child,
    pub addr: SocketAddr,
    pub config: PathBuf,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Daemon {
    /// Starts the daemon on `config` and waits (bounded) for its address.
    pub fn start(config: &Path) -> Daemon {
        Daemon::start_with(config, &[])
    }

    pub fn start_with(config: &Path, env: &[(&str, &str)]) -> Daemon {
        Daemon::start_wrapped(config, env, &[])
    }

    /// Starts `wrapper… deployd serve -c config` (e.g. under
    /// systemd-socket-activate) with extra environment.
    pub fn start_wrapped(config: &Path, env: &[(&str, &str)], wrapper: &[&str]) -> Daemon {
        let mut cmd = match wrapper.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(BIN);
                c
            }
            None => Command::new(BIN),
        };
        cmd.arg("serve")
            .arg("-c")
            .arg(config)
            .env("RUST_LOG", "info")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("JOURNAL_STREAM")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn deployd serve");
        let stderr = child.stderr.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    let addr = line
                        .split("listening on http://")
                        .nth(1)
                        .map(|rest| rest.split_whitespace().next().unwrap_or("").to_string());
                    // Kept before the address is announced, so Daemon::log()
                    // holds the listening line once start() returns.
                    lines.lock().unwrap().push(line);
                    if let Some(addr) = addr {
                        let _ = tx.send(addr);
                    }
                }
            });
        }
        let addr = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(a) => a.parse().unwrap(),
            Err(_) => {
                let _ = child.kill();
                let status = child.wait();
                panic!(
                    "deployd serve -c {} did not start listening within 20s (status {status:?}); stderr:\n{}",
                    config.display(),
                    lines.lock().unwrap().join("\n")
                );
            }
        };
        Daemon {
            child,
            addr,
            config: config.to_path_buf(),
            lines,
        }
    }

    /// Everything the daemon logged so far.
    pub fn log(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// SIGKILL and reap.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends a signal (e.g. "TERM", "HUP").
    pub fn signal(&self, sig: &str) {
        let st = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap();
        assert!(st.success());
    }

    /// Waits (bounded) for the daemon to exit; on a timeout kills it and
    /// panics with its log.
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let lines = self.lines.clone();
        wait_exit(&mut self.child, limit, "deployd serve", || {
            format!("log:\n{}", lines.lock().unwrap().join("\n"))
        })
    }

    /// POSTs a signed GitHub push of `after` to `git_ref` of project `name`.
    pub fn push(&self, name: &str, git_ref: &str, after: &str, delivery: &str) -> (u16, String) {
        let body = push_body(git_ref, after, &format!("acme/{name}"));
        post(
            self.addr,
            &format!("/hooks/{name}"),
            &github_headers("push", delivery, &sign(SECRET, body.as_bytes())),
            body.as_bytes(),
        )
    }

    /// Waits until the daemon's log has a line containing `needle`.
    pub fn wait_log(&self, needle: &str, limit: Duration) {
        poll(
            limit,
            &format!("daemon log line containing {needle:?}"),
            || {
                let log = self.log();
                if log.contains(needle) {
                    Ok(())
                } else {
                    Err(format!("log:\n{log}"))
                }
            },
        );
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!("--- deployd log ---\n{}\n---", self.log());
        }
    }
}

/// A GitHub push payload, as GitHub shapes it (only the fields deployd reads
/// matter, but a few others are there so parsing skips them).
pub fn push_body(git_ref: &str, after: &str, repo: &str) -> String {
    let zeros = after.chars().all(|c| c == '0');
    serde_json::json!({
        "ref": git_ref,
        "before": "1111111111111111111111111111111111111111",
        "after": after,
        "created": false,
        "deleted": zeros,
        "forced": false,
        "repository": {"id": 1, "name": repo.split('/').nth(1).unwrap_or(repo), "full_name": repo,
                        "owner": {"login": "acme"}, "private": true},
        "pusher": {"name": "octocat", "email": "octocat@example.com"},
        "sender": {"login": "octocat"},
        "head_commit": {"id": after, "message": "Deploy me"},
        "commits": [],
    })
    .to_string()
}

/// `sha256=<hex>` of `body` under `secret`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    format!(
        "sha256={}",
        deployd::forge::hmac_hex(&deployd::forge::Key::new(secret.as_bytes()), body)
    )
}

pub fn github_headers(event: &str, delivery: &str, signature: &str) -> Vec<(String, String)> {
    vec![
        ("Content-Type".into(), "application/json".into()),
        ("X-GitHub-Event".into(), event.into()),
        ("X-GitHub-Delivery".into(), delivery.into()),
        ("X-Hub-Signature-256".into(), signature.into()),
    ]
}

/// One HTTP/1.1 request over a fresh connection; returns status and body.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> (u16, String) {
    let mut s = send(addr, method, path, headers, body);
    // Longer than any deadline a test gives the server (request_timeout
    // of 20 s at most): a slow answer is the server's to give, a 408
    // included, not lost to the client giving up first.
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    parse_response(&resp)
}

/// Connects to `addr` and writes one request (`Connection: close`),
/// leaving its answer unread: for the caller to read, or to hang up on.
pub fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> TcpStream {
    let mut s = TcpStream::connect(addr)
        .unwrap_or_else(|e| panic!("{method} {path}: cannot connect to {addr}: {e}"));
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    // The server may answer (413) and close before reading a large body.
    let _ = s.write_all(body);
    s
}

pub fn parse_response(resp: &[u8]) -> (u16, String) {
    let text = String::from_utf8_lossy(resp).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            panic!("no HTTP status in response {text:?} (closed, reset or timed out)")
        });
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

pub fn post(
    addr: SocketAddr,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> (u16, String) {
    request(addr, "POST", path, headers, body)
}

/// How long any one CLI command may take: longer than the longest run a
/// test holds open (30 s gates), so only a command that hangs reaches it.
pub const CLI_LIMIT: Duration = Duration::from_secs(120);

/// Runs the CLI with `-c config` (bounded by [`CLI_LIMIT`]); returns its
/// output.
pub fn cli(config: &Path, args: &[&str]) -> Output {
    output_of(
        Command::new(BIN)
            .arg("-c")
            .arg(config)
            .args(args)
            .stdin(Stdio::null()),
    )
}

/// `cmd.output()` bounded by [`CLI_LIMIT`]: stdout and stderr captured, a
/// command that hangs killed and shown (program, arguments, environment
/// changes, output so far).
pub fn output_of(cmd: &mut Command) -> Output {
    let what = format!("{cmd:?}");
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    output_within(child, CLI_LIMIT, &what)
}

/// Everything about one CLI run, for a failure message: the command, its
/// exit status, its stdout and its stderr.
pub fn explain(config: &Path, args: &[&str], out: &Output) -> String {
    let what = format!("deployd -c {} {}", config.display(), args.join(" "));
    describe(&what, out)
}

/// `what` (a command line) with its exit status, stdout and stderr.
pub fn describe(what: &str, out: &Output) -> String {
    format!(
        "{what}: exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs the CLI and panics, showing everything, unless it exits with `code`.
pub fn cli_ok(config: &Path, args: &[&str], code: i32) -> String {
    let out = cli(config, args);
    assert_eq!(
        out.status.code(),
        Some(code),
        "{}",
        explain(config, args, &out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `history --json` as JSON values, newest first.
pub fn history(config: &Path, project: &str) -> Vec<serde_json::Value> {
    let out = cli_ok(
        config,
        &["history", project, "--json", "--limit", "1000"],
        0,
    );
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("history --json: {e}: {out}"))
}

/// The pause before the `n`th look again: short at first, so a condition
/// that is nearly met is seen at once, then up to 100 ms, so a long wait
/// (many `deployd history` processes) does not crowd a busy machine.
fn pause(n: u32) -> Duration {
    Duration::from_millis((10u64 << n.min(4)).min(100))
}

/// The one bounded poll: calls `look` until it returns `Ok`, pausing between
/// looks; after `limit` gives up with the last `Err` it returned (what was
/// seen instead of what was awaited).
pub fn try_poll<T>(
    limit: Duration,
    mut look: impl FnMut() -> Result<T, String>,
) -> Result<T, String> {
    let start = Instant::now();
    let mut n = 0;
    loop {
        match look() {
            Ok(v) => return Ok(v),
            Err(seen) if start.elapsed() > limit => return Err(seen),
            Err(_) => {}
        }
        std::thread::sleep(pause(n));
        n += 1;
    }
}

/// [`try_poll`], panicking on a timeout with `what` was awaited and what
/// was seen last.
pub fn poll<T>(limit: Duration, what: &str, look: impl FnMut() -> Result<T, String>) -> T {
    try_poll(limit, look).unwrap_or_else(|seen| {
        if seen.is_empty() {
            panic!("timed out after {limit:?} waiting for {what}")
        } else {
            panic!("timed out after {limit:?} waiting for {what}; last seen:\n{seen}")
        }
    })
}

/// Polls `f` until it is true; panics after `limit`.
pub fn wait_until(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    poll(
        limit,
        what,
        || if f() { Ok(()) } else { Err(String::new()) },
    )
}

/// Waits (bounded) for `child` to exit. On a timeout kills and reaps it,
/// then panics naming `what` with `detail()` (its output, a log, ...).
pub fn wait_exit(
    child: &mut Child,
    limit: Duration,
    what: &str,
    detail: impl FnOnce() -> String,
) -> ExitStatus {
    match try_poll(limit, || child.try_wait().unwrap().ok_or_else(String::new)) {
        Ok(status) => status,
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} still running after {limit:?}; killed\n{}", detail())
        }
    }
}

/// Waits until `project` has `n` finished runs; returns the history.
pub fn wait_runs(
    config: &Path,
    project: &str,
    n: usize,
    limit: Duration,
) -> Vec<serde_json::Value> {
    poll(limit, &format!("{n} finished runs of {project}"), || {
        let last = history(config, project);
        let done = last.iter().filter(|r| r["status"] != "running").count();
        if done >= n {
            Ok(last)
        } else {
            Err(format!(
                "history:\n{}",
                serde_json::to_string_pretty(&last).unwrap()
            ))
        }
    })
}

/// What a child writes to one of its pipes, read in the background so the
/// pipe never fills, and readable while the child runs.
pub struct Drained {
    pub buf: Arc<Mutex<Vec<u8>>>,
    thread: std::thread::JoinHandle<()>,
}

pub fn drain(mut pipe: impl Read + Send + 'static) -> Drained {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let b = buf.clone();
    let thread = std::thread::spawn(move || {
        let mut chunk = [0u8; 8192];
        while let Ok(n @ 1..) = pipe.read(&mut chunk) {
            b.lock().unwrap().extend_from_slice(&chunk[..n]);
        }
    });
    Drained { buf, thread }
}

impl Drained {
    /// Everything, once the pipe is closed.
    pub fn wait(self) -> Vec<u8> {
        let _ = self.thread.join();
        std::mem::take(&mut *self.buf.lock().unwrap())
    }
}

/// `child.wait_with_output()`, bounded: on a timeout the child is killed
/// and the panic shows `what` and what it printed so far. Pipes the caller
/// took (or never asked for) are left out.
pub fn output_within(mut child: Child, limit: Duration, what: &str) -> Output {
    let out = child.stdout.take().map(drain);
    let err = child.stderr.take().map(drain);
    let shown = |d: &Option<Drained>| d.as_ref().map(|d| d.buf.clone());
    let (o, e) = (shown(&out), shown(&err));
    let status = wait_exit(&mut child, limit, what, move || {
        let text = |b: Option<Arc<Mutex<Vec<u8>>>>| {
            b.map(|b| String::from_utf8_lossy(&b.lock().unwrap()).into_owned())
                .unwrap_or_else(|| "(not captured)".into())
        };
        format!("stdout:\n{}\nstderr:\n{}", text(o), text(e))
    });
    Output {
        status,
        stdout: out.map(Drained::wait).unwrap_or_default(),
        stderr: err.map(Drained::wait).unwrap_or_default(),
    }
}

/// A child killed and reaped when dropped, so a failing test leaves no
/// process behind (`Daemon` does this for daemons it starts itself).
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Waits until the text `read()` returns contains `needle`; on a timeout
/// panics with that text (a daemon's log written to a file, say).
pub fn wait_text(limit: Duration, what: &str, needle: &str, read: impl Fn() -> String) {
    poll(limit, &format!("{what} containing {needle:?}"), || {
        let text = read();
        if text.contains(needle) {
            Ok(())
        } else {
            Err(text)
        }
    })
}

/// Whether a process with this pid exists.
pub fn alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.split(") ").nth(1).is_some_and(|r| r.starts_with('Z')))
            .unwrap_or(true)
}

/// Output bytes as text, for messages and assertions.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Panics, showing the exit status, stdout and stderr, unless `out` exited
/// with `code`; returns (stdout, stderr).
pub fn expect_code(out: &Output, code: i32, what: &str) -> (String, String) {
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(
        out.status.code(),
        Some(code),
        "{what}: exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    (stdout, stderr)
}

/// One HTTP/1.1 request as a stand-in server (a forge's API, a chat
/// service) read it.
pub struct HttpRequest {
    pub method: String,
    /// The request target: path and query.
    pub target: String,
    /// Header names lowercased, values trimmed.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Reads one request, its head and a `Content-Length` body, from `s`;
/// `None` when the peer closes before it is whole.
pub fn read_request(s: &mut impl Read) -> Option<HttpRequest> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return None,
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let method = first.next().unwrap_or("").to_string();
    let target = first.next().unwrap_or("").to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    s.read_exact(&mut body).ok()?;
    Some(HttpRequest {
        method,
        target,
        headers,
        body,
    })
}

/// Context switches so far of each thread of `pid`, by thread id.
pub fn switches(pid: u32) -> std::collections::BTreeMap<String, u64> {
    let mut all = std::collections::BTreeMap::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let task = task.unwrap();
        let Ok(status) = std::fs::read_to_string(task.path().join("status")) else {
            continue; // the thread just exited
        };
        let n: u64 = status
            .lines()
            .filter(|l| l.contains("ctxt_switches:"))
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum();
        all.insert(task.file_name().to_string_lossy().into_owned(), n);
    }
    all
}

/// Waits `window`, then panics naming each thread of `pid` that switched
/// since `before` (its [`switches`]): an idle daemon must not wake up.
pub fn sleeps_through(
    pid: u32,
    before: &std::collections::BTreeMap<String, u64>,
    window: Duration,
) {
    std::thread::sleep(window);
    let after = switches(pid);
    let woke: Vec<String> = before
        .iter()
        .filter_map(|(tid, n)| {
            let m = after.get(tid)?;
            (m > n).then(|| format!("thread {tid}: {n} -> {m} context switches"))
        })
        .collect();
    assert!(
        woke.is_empty(),
        "the idle daemon woke up:\n{}",
        woke.join("\n")
    );
}
