//! The README's *Commands* section from the outside: every command of the
//! `deployd` binary, its output and its exit code (0 ok, 1 failed, 2 usage or
//! configuration).

// Helpers here and in common/ are test code: a panic is the failure report.

use crate::common;
use common::*;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Runs `deployd ARGS` with exactly the given extra environment and `stdin`
/// (no `-c` added): for the cases the `cli` helper cannot express.
fn run(args: &[&str], env: &[(&str, &str)], stdin: Option<&[u8]>) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_remove("DEPLOYD_CONFIG")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn deployd");
    if let Some(input) = stdin {
        let mut w = child.stdin.take().unwrap();
        w.write_all(input).unwrap();
    }
    output_within(child, CLI_LIMIT, &format!("deployd {}", args.join(" ")))
}

/// A config with project `app` (the given script) and project `web`.
fn two_projects(dir: &TestDir, script: &Path, app_extra: &str) -> PathBuf {
    let other = dir.script("web.sh", "#!/bin/sh\necho web\n");
    write_config(
        dir,
        "",
        &format!(
            "{}{}",
            project("app", script, app_extra),
            project("web", &other, "branch = \"production\"")
        ),
    )
}

/// Writes `[server]` plus `projects` verbatim (for configs with mistakes).
fn raw_config(dir: &TestDir, projects: &str) -> PathBuf {
    write_config(dir, "", projects)
}

/// The 1-based line of `config` that contains `needle`.
fn line_of(config: &Path, needle: &str) -> usize {
    std::fs::read_to_string(config)
        .unwrap()
        .lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} not in {}", config.display()))
        + 1
}

/// Asserts `deployd check` refuses `config` with exit 2 and a message that
/// names `file:line` and `key`.
fn refused(config: &Path, line: usize, key: &str, words: &[&str]) {
    let out = cli(config, &["check"]);
    let (_, stderr) = expect_code(&out, 2, &format!("check with a bad {key}"));
    let place = format!("{}:{line}:", config.display());
    assert!(
        stderr.contains(&place),
        "error should name {place}:\n{stderr}"
    );
    assert!(stderr.contains(key), "error should name {key}:\n{stderr}");
    for w in words {
        assert!(stderr.contains(w), "error should say {w:?}:\n{stderr}");
    }
}

/// A script that prints `first`, waits (bounded, 20 s) for the file `go` in
/// its directory, then prints `second`: a run that stays running exactly as
/// long as the test needs, without timing guesses.
const GATED: &str = "#!/bin/sh\necho \"first $DEPLOY_SHA\"\ni=0\n\
    while [ ! -e go ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done\n\
    echo \"second $DEPLOY_SHA\"\n";

/// Waits until the newest run of `project` is `running`; returns it.
fn wait_running(config: &Path, project: &str) -> serde_json::Value {
    let mut last = Vec::new();
    wait_until(Duration::from_secs(20), "a running run", || {
        last = history(config, project);
        last.first().is_some_and(|r| r["status"] == "running")
    });
    last.remove(0)
}

/// Whether `s` is an RFC 3339 date-time (`2024-05-01T12:00:00Z`, fractions
/// and offsets allowed).
fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| r.clone().all(|i| b.get(i).is_some_and(u8::is_ascii_digit));
    if b.len() < 20
        || !digits(0..4)
        || b[4] != b'-'
        || !digits(5..7)
        || b[7] != b'-'
        || !digits(8..10)
        || !(b[10] == b'T' || b[10] == b't')
        || !digits(11..13)
        || b[13] != b':'
        || !digits(14..16)
        || b[16] != b':'
        || !digits(17..19)
    {
        return false;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return false;
        }
        rest = &frac[n..];
    }
    match rest {
        "Z" | "z" => true,
        o => {
            let o = o.as_bytes();
            o.len() == 6
                && (o[0] == b'+' || o[0] == b'-')
                && o[1..3].iter().all(u8::is_ascii_digit)
                && o[3] == b':'
                && o[4..6].iter().all(u8::is_ascii_digit)
        }
    }
}

#[test]
fn rfc3339_checker_knows_the_format() {
    assert!(is_rfc3339("2024-05-01T12:00:00Z"));
    assert!(is_rfc3339("2024-05-01T12:00:00.123+02:00"));
    assert!(!is_rfc3339("2024-05-01 12:00:00"));
    assert!(!is_rfc3339("1714564800"));
    assert!(!is_rfc3339("2024-05-01T12:00:00"));
}

#[test]
fn check_lists_every_project_with_its_hook_path() {
    let dir = TestDir::new("cli-check");
    let script = dir.script("deploy.sh", "#!/bin/sh\ntrue\n");
    let config = two_projects(
        &dir,
        &script,
        "branches = [\"main\", \"release/*\"]\ntags = [\"v*\"]\npaths_ignore = [\"docs/**\"]",
    );
    let out = cli_ok(&config, &["check"], 0);
    // What deploys each project, one line each.
    for line in [
        "deploys: branches main, release/*; new tags v*; ignoring docs/**",
        "deploys: branch production",
    ] {
        assert_eq!(
            out.lines().filter(|l| l.trim() == line).count(),
            1,
            "{line}:\n{out}"
        );
    }
    for p in ["app", "web"] {
        assert!(
            out.lines()
                .any(|l| l.contains(&format!("{p}:")) && l.contains(&format!("POST /hooks/{p}"))),
            "check should list {p} with POST /hooks/{p}:\n{out}"
        );
    }
    assert!(!out.contains(SECRET), "check printed the secret:\n{out}");
}

#[test]
fn check_says_how_a_project_catches_up_and_which_hosts_it_rolls_out_to() {
    let dir = TestDir::new("cli-check-fleet");
    let script = dir.script("deploy.sh", "#!/bin/sh\ntrue\n");
    let config = two_projects(
        &dir,
        &script,
        "remote = \"file:///srv/app.git\"\nreconcile = \"5m\"\n\
         hosts = [\"deploy@web1\", \"deploy@web2:2222\"]\nbatch = 2",
    );
    let out = cli_ok(&config, &["check"], 0);
    for line in [
        "catch-up: at start and every 5m, from file:///srv/app.git",
        "hosts: web1 (deploy@web1), web2 (deploy@web2:2222); batch 2, max_failures 0, \
         on_host_failure stop",
        "catch-up: at start, from the origin of working_dir, if it has one",
    ] {
        assert!(out.lines().any(|l| l.trim() == line), "{line}:\n{out}");
    }
}

#[test]
fn config_errors_name_file_line_and_key() {
    let dir = TestDir::new("cli-config-errors");
    let script = dir.script("deploy.sh", "#!/bin/sh\ntrue\n");
    let s = script.display();

    let c = raw_config(
        &dir,
        &format!("[projects.app]\nsecret = \"{SECRET}\"\nscirpt = \"{s}\"\n"),
    );
    refused(&c, line_of(&c, "scirpt"), "scirpt", &[]);

    let c = raw_config(
        &dir,
        &format!(
            "[projects.app]\nsecret = \"{SECRET}\"\nscript = \"{s}\"\ntimeout = \"5 parsecs\"\n"
        ),
    );
    refused(&c, line_of(&c, "parsecs"), "projects.app.timeout", &[]);

    std::fs::write(dir.join("app.secret"), "from-a-file\n").unwrap();
    let c = raw_config(
        &dir,
        &format!(
            "[projects.app]\nsecret = \"{SECRET}\"\nscript = \"{s}\"\nsecret_file = \"app.secret\"\n"
        ),
    );
    refused(
        &c,
        line_of(&c, "secret_file"),
        "projects.app.secret_file",
        &["exactly one"],
    );

    std::fs::write(dir.join("empty.secret"), "\n").unwrap();
    let c = raw_config(
        &dir,
        &format!("[projects.app]\nsecret_file = \"empty.secret\"\nscript = \"{s}\"\n"),
    );
    refused(
        &c,
        line_of(&c, "empty.secret"),
        "projects.app.secret_file",
        &["empty"],
    );

    let c = raw_config(
        &dir,
        &format!("[projects.app]\nsecret = \"{SECRET}\"\nscript = \"no-such-script.sh\"\n"),
    );
    refused(
        &c,
        line_of(&c, "no-such-script"),
        "projects.app.script",
        &["no-such-script.sh"],
    );

    // The daemon refuses the same way, before listening.
    let out = cli(&c, &["serve"]);
    let (_, stderr) = expect_code(&out, 2, "serve with a missing script");
    assert!(stderr.contains("projects.app.script"), "{stderr}");

    let missing = dir.join("nowhere.toml");
    let out = cli(&missing, &["check"]);
    let (_, stderr) = expect_code(&out, 2, "check with a missing config file");
    assert!(
        stderr.contains(&missing.display().to_string()),
        "should name the missing file:\n{stderr}"
    );
    assert_eq!(
        stderr.matches("No such file").count(),
        1,
        "the cause once, not repeated:\n{stderr}"
    );
}

#[test]
fn deployd_config_env_is_used_without_c() {
    let dir = TestDir::new("cli-env-config");
    let script = dir.script("deploy.sh", "#!/bin/sh\ntrue\n");
    let config = two_projects(&dir, &script, "");
    let c = config.display().to_string();
    let out = run(&["check"], &[("DEPLOYD_CONFIG", &c)], None);
    let (stdout, _) = expect_code(&out, 0, "check with DEPLOYD_CONFIG");
    assert!(stdout.contains(&c), "should read {c}:\n{stdout}");
    assert!(stdout.contains("POST /hooks/web"), "{stdout}");
    // -c wins over the variable.
    let out = run(
        &["-c", &c, "check"],
        &[("DEPLOYD_CONFIG", "/nonexistent/deploy.toml")],
        None,
    );
    expect_code(&out, 0, "-c over DEPLOYD_CONFIG");
    // And a variable naming a missing file is a configuration error.
    let out = run(
        &["check"],
        &[("DEPLOYD_CONFIG", "/nonexistent/deploy.toml")],
        None,
    );
    let (_, stderr) = expect_code(&out, 2, "DEPLOYD_CONFIG naming a missing file");
    assert!(stderr.contains("/nonexistent/deploy.toml"), "{stderr}");
}

#[test]
fn sign_prints_the_github_signature() {
    let dir = TestDir::new("cli-sign");
    let script = dir.script("deploy.sh", "#!/bin/sh\necho \"deployed $DEPLOY_SHA\"\n");
    let config = write_config(
        &dir,
        "",
        &format!(
            "{}[projects.gh]\nsecret = \"It's a Secret to Everybody\"\nscript = \"{}\"\n",
            project("app", &script, ""),
            script.display()
        ),
    );
    let body = push_body("refs/heads/main", SHA_A, "acme/app");
    let file = dir.join("push.json");
    std::fs::write(&file, &body).unwrap();
    let out = cli_ok(&config, &["sign", "app", file.to_str().unwrap()], 0);
    assert_eq!(out.trim(), sign(SECRET, body.as_bytes()), "sign app FILE");

    let c = config.display().to_string();
    let out = run(&["-c", &c, "sign", "app"], &[], Some(body.as_bytes()));
    let (stdout, _) = expect_code(&out, 0, "sign app < FILE");
    assert_eq!(
        stdout.trim(),
        sign(SECRET, body.as_bytes()),
        "sign from stdin"
    );

    // GitHub's published test vector.
    let vector = dir.join("hello.txt");
    std::fs::write(&vector, "Hello, World!").unwrap();
    let gh = cli_ok(&config, &["sign", "gh", vector.to_str().unwrap()], 0);
    assert_eq!(
        gh.trim(),
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    );

    // What `sign` prints is what a running daemon accepts, as curl would send it.
    let d = Daemon::start(&config);
    let (s, b) = post(
        d.addr,
        "/hooks/gh",
        &github_headers("ping", "vector-1", gh.trim()),
        b"Hello, World!",
    );
    assert_eq!(s, 200, "ping signed with the test vector: {b}");
    let gh_body = push_body("refs/heads/main", SHA_B, "acme/gh");
    let gh_file = dir.join("gh.json");
    std::fs::write(&gh_file, &gh_body).unwrap();
    let sig = cli_ok(&config, &["sign", "gh", gh_file.to_str().unwrap()], 0);
    let (s, b) = post(
        d.addr,
        "/hooks/gh",
        &github_headers("push", "by-hand-1", sig.trim()),
        gh_body.as_bytes(),
    );
    assert_eq!(s, 202, "push signed by `deployd sign`: {b}");
    let runs = wait_runs(&config, "gh", 1, Duration::from_secs(20));
    assert_eq!(runs[0]["sha"], SHA_B, "{runs:#?}");
    assert_eq!(runs[0]["status"], "succeeded", "{runs:#?}");
}

#[test]
fn history_lists_runs_newest_first_with_every_field() {
    let dir = TestDir::new("cli-history");
    // SHA_A succeeds, SHA_B fails with 3.
    let script = dir.script(
        "deploy.sh",
        &format!("#!/bin/sh\necho \"run for $DEPLOY_SHA\"\n[ \"$DEPLOY_SHA\" = {SHA_B} ] && exit 3\nexit 0\n"),
    );
    let config = write_config(&dir, "", &project("app", &script, ""));
    let d = Daemon::start(&config);
    let (s, b) = d.push("app", "refs/heads/main", SHA_A, "hist-1");
    assert_eq!(s, 202, "{b}");
    wait_runs(&config, "app", 1, Duration::from_secs(20));
    let (s, b) = d.push("app", "refs/heads/main", SHA_B, "hist-2");
    assert_eq!(s, 202, "{b}");
    wait_runs(&config, "app", 2, Duration::from_secs(20));

    let out = cli_ok(&config, &["history", "app", "--json"], 0);
    let runs: Vec<serde_json::Value> =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("not a JSON array ({e}):\n{out}"));
    assert_eq!(runs.len(), 2, "{out}");
    let fields = [
        "id",
        "project",
        "trigger",
        "ref",
        "sha",
        "delivery",
        "status",
        "exit_code",
        "started_at",
        "finished_at",
        "log",
    ];
    for r in &runs {
        for f in fields {
            assert!(r.get(f).is_some(), "run lacks {f}: {r:#}");
        }
        assert_eq!(r["project"], "app", "{r:#}");
        assert_eq!(r["trigger"], "webhook", "{r:#}");
        assert_eq!(r["ref"], "refs/heads/main", "{r:#}");
        for t in ["started_at", "finished_at"] {
            let v = r[t].as_str().unwrap_or_default();
            assert!(is_rfc3339(v), "{t} {v:?} is not RFC 3339: {r:#}");
        }
        let log = PathBuf::from(r["log"].as_str().unwrap_or_default());
        assert!(log.is_file(), "log {} missing: {r:#}", log.display());
    }
    // Newest first.
    assert_eq!(runs[0]["id"], 2, "{out}");
    assert_eq!(runs[0]["sha"], SHA_B, "{out}");
    assert_eq!(runs[0]["delivery"], "hist-2", "{out}");
    assert_eq!(runs[0]["status"], "failed", "{out}");
    assert_eq!(runs[0]["exit_code"], 3, "{out}");
    assert_eq!(runs[1]["id"], 1, "{out}");
    assert_eq!(runs[1]["sha"], SHA_A, "{out}");
    assert_eq!(runs[1]["status"], "succeeded", "{out}");
    assert_eq!(runs[1]["exit_code"], 0, "{out}");
    assert!(
        runs[0]["started_at"].as_str() >= runs[1]["finished_at"].as_str(),
        "runs overlap: {out}"
    );

    let one = cli_ok(&config, &["history", "app", "--json", "--limit", "1"], 0);
    let one: Vec<serde_json::Value> = serde_json::from_str(&one).unwrap();
    assert_eq!(one.len(), 1, "{one:?}");
    assert_eq!(one[0]["id"], 2, "{one:?}");

    let table = cli_ok(&config, &["history", "app"], 0);
    let ids: Vec<&str> = table
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(ids, vec!["2", "1"], "table:\n{table}");
    assert!(
        table.contains("failed(3)"),
        "table should show the exit code:\n{table}"
    );
    assert!(table.contains("succeeded"), "{table}");
    assert!(
        table.contains("hist-2") && table.contains("hist-1"),
        "{table}"
    );
}

#[test]
fn logs_show_a_runs_output() {
    let dir = TestDir::new("cli-logs");
    let script = dir.script(
        "deploy.sh",
        "#!/bin/sh\necho \"out of $DEPLOY_SHA\"\necho \"err of $DEPLOY_SHA\" >&2\n",
    );
    let config = write_config(&dir, "", &project("app", &script, ""));
    let out = cli(&config, &["logs", "app"]);
    let (_, stderr) = expect_code(&out, 1, "logs before any run");
    assert!(stderr.contains("not run yet"), "{stderr}");

    let d = Daemon::start(&config);
    let (s, b) = d.push("app", "refs/heads/main", SHA_A, "logs-1");
    assert_eq!(s, 202, "{b}");
    wait_runs(&config, "app", 1, Duration::from_secs(20));
    let (s, b) = d.push("app", "refs/heads/main", SHA_B, "logs-2");
    assert_eq!(s, 202, "{b}");
    wait_runs(&config, "app", 2, Duration::from_secs(20));

    let latest = cli_ok(&config, &["logs", "app"], 0);
    assert!(
        latest.contains(&format!("out of {SHA_B}")),
        "latest log:\n{latest}"
    );
    assert!(
        latest.contains(&format!("err of {SHA_B}")),
        "stderr kept too:\n{latest}"
    );
    assert!(!latest.contains(SHA_A), "latest is run 2 only:\n{latest}");
    let first = cli_ok(&config, &["logs", "app", "1"], 0);
    assert!(
        first.contains(&format!("out of {SHA_A}")),
        "run 1 log:\n{first}"
    );
    assert!(!first.contains(SHA_B), "run 1 only:\n{first}");

    let out = cli(&config, &["logs", "app", "99"]);
    let (stdout, stderr) = expect_code(&out, 2, "logs of a run that does not exist");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(stderr.contains("99") && stderr.contains("app"), "{stderr}");
}

#[test]
fn logs_follow_returns_when_the_run_ends() {
    let dir = TestDir::new("cli-logs-follow");
    let script = dir.script("deploy.sh", GATED);
    let config = write_config(&dir, "", &project("app", &script, ""));
    let d = Daemon::start(&config);
    let (s, b) = d.push("app", "refs/heads/main", SHA_A, "follow-1");
    assert_eq!(s, 202, "{b}");
    let running = wait_running(&config, "app");
    let log = PathBuf::from(running["log"].as_str().unwrap());
    wait_until(Duration::from_secs(20), "the script's first line", || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("first"))
    });

    let mut child = Command::new(BIN)
        .arg("-c")
        .arg(&config)
        .args(["logs", "app", "-f"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let seen = Arc::new(Mutex::new(String::new()));
    let reader = {
        let (seen, stdout) = (seen.clone(), child.stdout.take().unwrap());
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let mut s = seen.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        })
    };
    wait_until(
        Duration::from_secs(20),
        "logs -f printing the first line",
        || seen.lock().unwrap().contains("first"),
    );
    assert!(
        child.try_wait().unwrap().is_none(),
        "logs -f exited while the run was still going:\n{}",
        seen.lock().unwrap()
    );
    let still: Vec<serde_json::Value> = history(&config, "app");
    assert_eq!(still[0]["status"], "running", "{still:#?}");

    std::fs::write(dir.join("go"), "").unwrap();
    let status = wait_exit(
        &mut child,
        Duration::from_secs(20),
        "logs -f (the run was let go)",
        || format!("stdout:\n{}", seen.lock().unwrap()),
    );
    reader.join().unwrap();
    let out = seen.lock().unwrap().clone();
    assert!(status.success(), "logs -f: {status:?}\n{out}");
    assert!(out.contains(&format!("first {SHA_A}")), "{out}");
    assert!(out.contains(&format!("second {SHA_A}")), "{out}");
    let runs = wait_runs(&config, "app", 1, Duration::from_secs(20));
    assert_eq!(runs[0]["status"], "succeeded", "{runs:#?}");
}

#[test]
fn status_with_and_without_a_daemon() {
    let dir = TestDir::new("cli-status");
    let script = dir.script("deploy.sh", GATED);
    let config = two_projects(&dir, &script, "");

    // No daemon: read from disk, and said so.
    let out = cli_ok(&config, &["status"], 0);
    assert!(
        out.contains("no daemon"),
        "should say it read the disk:\n{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("app") && l.contains("idle")),
        "{out}"
    );
    assert!(out.contains("never run"), "{out}");
    let v: serde_json::Value =
        serde_json::from_str(&cli_ok(&config, &["status", "--json"], 0)).unwrap();
    let states: Vec<(&str, &str)> = v
        .as_array()
        .unwrap_or_else(|| panic!("status --json is not an array: {v}"))
        .iter()
        .map(|p| (p["project"].as_str().unwrap(), p["state"].as_str().unwrap()))
        .collect();
    assert_eq!(states, vec![("app", "idle"), ("web", "idle")], "{v:#}");

    let mut d = Daemon::start(&config);
    let out = cli_ok(&config, &["status"], 0);
    assert!(!out.contains("no daemon"), "the daemon is up:\n{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("app") && l.contains("idle")),
        "{out}"
    );

    let (s, b) = d.push("app", "refs/heads/main", SHA_A, "status-1");
    assert_eq!(s, 202, "{b}");
    let running = wait_running(&config, "app");
    let mut live = serde_json::Value::Null;
    wait_until(
        Duration::from_secs(20),
        "status --json saying app runs",
        || {
            live = serde_json::from_str(&cli_ok(&config, &["status", "--json"], 0)).unwrap();
            live[0]["state"] == "running"
        },
    );
    assert_eq!(live[0]["project"], "app", "{live:#}");
    assert_eq!(live[0]["running"]["id"], running["id"], "{live:#}");
    assert_eq!(live[0]["running"]["sha"], SHA_A, "{live:#}");
    assert_eq!(live[1]["state"], "idle", "{live:#}");
    let out = cli_ok(&config, &["status"], 0);
    assert!(
        out.lines()
            .any(|l| l.starts_with("app: running run 1") && l.contains(&SHA_A[..12])),
        "status should show app running #1:\n{out}"
    );

    std::fs::write(dir.join("go"), "").unwrap();
    wait_runs(&config, "app", 1, Duration::from_secs(20));
    wait_until(Duration::from_secs(20), "status idle again", || {
        let v: serde_json::Value =
            serde_json::from_str(&cli_ok(&config, &["status", "--json"], 0)).unwrap();
        v[0]["state"] == "idle" && v[0]["last"]["status"] == "succeeded"
    });
    let out = cli_ok(&config, &["status"], 0);
    assert!(
        out.contains("app: idle\n  last:    run 1 succeeded"),
        "status should show the last run:\n{out}"
    );

    // The daemon gone: the disk still knows the last run.
    d.signal("TERM");
    let st = d.wait_exit(Duration::from_secs(20));
    assert!(st.success(), "daemon exit: {st:?}");
    let out = cli_ok(&config, &["status"], 0);
    assert!(out.contains("no daemon"), "{out}");
    assert!(
        out.contains("app: idle\n  last:    run 1 succeeded"),
        "{out}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&cli_ok(&config, &["status", "--json"], 0)).unwrap();
    assert_eq!(v[0]["state"], "idle", "{v:#}");
    assert_eq!(v[0]["last"]["id"], 1, "{v:#}");
}

#[test]
fn unknown_projects_are_usage_errors_naming_the_known_ones() {
    let dir = TestDir::new("cli-unknown");
    let script = dir.script("deploy.sh", "#!/bin/sh\ntrue\n");
    let config = two_projects(&dir, &script, "");
    let body = dir.join("body");
    std::fs::write(&body, "{}").unwrap();
    let b = body.to_str().unwrap();
    for args in [
        vec!["history", "nope"],
        vec!["logs", "nope"],
        vec!["logs", "nope", "1"],
        vec!["sign", "nope", b],
        vec!["deploy", "nope"],
    ] {
        let out = cli(&config, &args);
        let (_, stderr) = expect_code(&out, 2, &args.join(" "));
        assert!(stderr.contains("nope"), "{}: {stderr}", args.join(" "));
        assert!(
            stderr.contains("app") && stderr.contains("web"),
            "{}: should name the known projects: {stderr}",
            args.join(" ")
        );
    }
    assert!(history(&config, "app").is_empty());
}

#[test]
fn help_mentions_every_command_and_option() {
    let out = run(&["--help"], &[], None);
    let (stdout, _) = expect_code(&out, 0, "deployd --help");
    for cmd in [
        "serve",
        "deploy",
        "check",
        "status",
        "history",
        "logs",
        "sign",
        "notify-test",
    ] {
        assert!(
            stdout
                .lines()
                .any(|l| l.split_whitespace().next() == Some(cmd)),
            "--help lacks a line for {cmd:?}:\n{stdout}"
        );
    }
    assert!(
        stdout.contains("-c, --config"),
        "--help lacks -c, --config:\n{stdout}"
    );
    let out = run(&["deploy", "--help"], &[], None);
    let (stdout, _) = expect_code(&out, 0, "deployd deploy --help");
    for w in ["PROJECT", "--ref", "--sha", "--no-wait", "--config"] {
        assert!(stdout.contains(w), "deploy --help lacks {w:?}:\n{stdout}");
    }
    for (cmd, words) in [
        ("status", vec!["--json"]),
        ("history", vec!["PROJECT", "--limit", "--json"]),
        ("logs", vec!["PROJECT", "RUN_ID", "--follow", "-f"]),
        ("sign", vec!["PROJECT", "FILE"]),
        ("notify-test", vec!["TARGET"]),
    ] {
        let out = run(&[cmd, "--help"], &[], None);
        let (stdout, _) = expect_code(&out, 0, &format!("deployd {cmd} --help"));
        for w in words {
            assert!(stdout.contains(w), "{cmd} --help lacks {w:?}:\n{stdout}");
        }
    }
    // A usage error is exit 2.
    let out = run(&["frobnicate"], &[], None);
    expect_code(&out, 2, "an unknown command");
}

#[test]
fn help_is_a_command_that_has_help_too() {
    let out = run(&["help", "--help"], &[], None);
    let (stdout, _) = expect_code(&out, 0, "deployd help --help");
    assert!(stdout.contains("deployd help"), "{stdout}");
    let out = run(&["help"], &[], None);
    let (stdout, _) = expect_code(&out, 0, "deployd help");
    assert_eq!(
        stdout,
        expect_code(&run(&["--help"], &[], None), 0, "--help").0
    );
    let out = run(&["help", "deploy"], &[], None);
    let (stdout, _) = expect_code(&out, 0, "deployd help deploy");
    assert!(stdout.contains("Usage: deployd deploy"), "{stdout}");
    let out = run(&["help", "frobnicate"], &[], None);
    let (_, stderr) = expect_code(&out, 2, "deployd help frobnicate");
    assert!(stderr.contains("deploy, check"), "{stderr}");
}

#[test]
fn sign_help_says_it_prints_the_value() {
    // What it prints is the header's value (`sha256=…`), not a header line;
    // `--header` prints those.
    let out = run(&["--help"], &[], None);
    let (stdout, _) = expect_code(&out, 0, "deployd --help");
    let line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("sign "))
        .unwrap_or_else(|| panic!("no sign line:\n{stdout}"));
    assert!(
        !line.contains("signature header") && line.contains("sha256="),
        "{line}"
    );
    let out = run(&["sign", "--help"], &[], None);
    let (stdout, _) = expect_code(&out, 0, "deployd sign --help");
    let first = stdout.lines().next().unwrap_or("");
    assert!(
        !first.contains("signature header") && first.contains("sha256="),
        "{stdout}"
    );
}

#[test]
fn history_limit_zero_is_refused_plainly() {
    let dir = TestDir::new("cli-limit0");
    let script = dir.script("deploy.sh", "#!/bin/sh\necho hi\n");
    let config = write_config(&dir, "", &project("big", &script, ""));
    cli_ok(&config, &["deploy", "big"], 0);
    let out = cli(&config, &["history", "big", "-n", "0"]);
    let (stdout, stderr) = expect_code(&out, 2, "history big -n 0");
    assert!(!stdout.contains("has not run yet"), "{stdout}");
    assert!(stderr.contains("give 1 or more"), "{stderr}");
    let table = cli_ok(&config, &["history", "big", "-n", "1"], 0);
    assert!(table.contains("succeeded"), "{table}");
}

#[test]
fn command_line_mistakes_begin_with_deployd_like_every_error() {
    let dir = TestDir::new("cli-clap");
    let script = dir.script("deploy.sh", "#!/bin/sh\necho hi\n");
    let config = write_config(&dir, "", &project("app", &script, ""));
    for (args, says) in [
        (vec!["bogus"], "deployd: unrecognized subcommand 'bogus'"),
        (
            vec!["history"],
            "deployd: the following required arguments were not provided",
        ),
        (
            vec!["history", "app", "-n", "0"],
            "deployd: invalid value '0' for '--limit <N>'",
        ),
        (
            vec!["deploy", "app", "--sha"],
            "deployd: a value is required for '--sha <SHA>'",
        ),
    ] {
        let out = cli(&config, &args);
        let (_, stderr) = expect_code(&out, 2, &args.join(" "));
        assert!(stderr.starts_with(says), "{}: {stderr}", args.join(" "));
        assert!(!stderr.contains("error:"), "{}: {stderr}", args.join(" "));
        // Still clap's help on what to do next.
        assert!(
            stderr.contains("try '--help'"),
            "{}: {stderr}",
            args.join(" ")
        );
    }
    // Help and version are not errors.
    let out = cli(&config, &["--version"]);
    let (stdout, _) = expect_code(&out, 0, "--version");
    assert!(stdout.starts_with("deployd "), "{stdout}");
}

#[test]
fn a_closed_pipe_ends_output_quietly() {
    let dir = TestDir::new("cli-pipe");
    let script = dir.script("deploy.sh", "#!/bin/sh\necho hi\n");
    let config = write_config(&dir, "", &project("app", &script, ""));
    cli_ok(&config, &["deploy", "app"], 0);
    for args in [
        &["history", "app", "--json"][..],
        &["history", "app"],
        &["status"],
        &["status", "--json"],
        &["check"],
        &["logs", "app"],
    ] {
        let mut child = std::process::Command::new(BIN)
            .arg("-c")
            .arg(&config)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Close the reading end before the command writes anything.
        drop(child.stdout.take());
        let out = output_within(child, CLI_LIMIT, &format!("deployd {args:?}"));
        assert_eq!(
            out.status.code(),
            Some(0),
            "deployd {args:?} into a closed pipe: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn root_does_not_deploy_over_another_users_state() {
    if !nix_is_root() {
        eprintln!("SKIPPED: needs root to own files as another user");
        return;
    }
    let dir = TestDir::new("cli-foreign");
    let script = dir.script("deploy.sh", "#!/bin/sh\necho ran > ran.txt\n");
    let config = write_config(&dir, "", &project("app", &script, ""));
    let state = dir.join("state");
    std::fs::create_dir(&state).unwrap();
    std::os::unix::fs::chown(&state, Some(65534), Some(65534)).unwrap();
    let out = cli(&config, &["deploy", "app"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("run the deploy as that user"), "{stderr}");
    assert!(!dir.join("ran.txt").exists(), "the script ran as root");
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
}
