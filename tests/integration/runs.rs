//! Running deploys (README, *What the script gets* and *Guarantees and how they
//! are kept*): coalescing, the lock against overlapping runs (daemon, manual
//! through the daemon, manual without it), timeouts that stop the whole process
//! group, leftovers, the script's environment, `parallel` and `keep_runs`.
//!
//! Runs are held open with gate files rather than sleeps: a gated script
//! writes `start …` to a marker file, waits until its gate file exists, and
//! writes `end …`. The test opens the gate once it has seen what it wants to
//! see while the run is going, so nothing depends on timing.

// Helpers here and in common/ are test code: a panic is the failure report.

use crate::common;
use common::*;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::time::Duration;

use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(30);

/// A deploy script that appends `start <project> <sha> <trigger>` to
/// `marker`, prints `ran <sha> (<trigger>)`, holds until `gate-<sha>` or
/// `gate-all` exists in the test directory (30 s at most), then appends
/// `end <project> <sha>`. Returns the script and the marker file.
fn gated_script(dir: &TestDir) -> (PathBuf, PathBuf) {
    let marker = dir.join("marker");
    let gates = dir.path.display();
    let script = dir.script(
        "deploy.sh",
        &format!(
            r#"#!/bin/sh
echo "start $DEPLOY_PROJECT $DEPLOY_SHA $DEPLOY_TRIGGER" >> "{marker}"
echo "ran $DEPLOY_SHA ($DEPLOY_TRIGGER)"
i=0
while [ ! -e "{gates}/gate-$DEPLOY_SHA" ] && [ ! -e "{gates}/gate-all" ] && [ $i -lt 600 ]; do
    sleep 0.05
    i=$((i+1))
done
# A little time inside the run after the gate opens, so a second run
# started too early would show up between this run's start and end.
sleep 0.2
echo "end $DEPLOY_PROJECT $DEPLOY_SHA" >> "{marker}"
"#,
            marker = marker.display()
        ),
    );
    (script, marker)
}

/// Lets the gated run of `sha` (or every run, for `"all"`) finish.
fn open_gate(dir: &TestDir, sha: &str) {
    std::fs::write(dir.join(&format!("gate-{sha}")), "").unwrap();
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// The `(project, sha)` of every run in the marker file, in order; panics
/// (showing the file) unless starts and ends strictly alternate, each end
/// closing the run its start opened.
fn alternating(marker: &Path) -> Vec<(String, String)> {
    let text = read(marker);
    let mut open: Option<(String, String)> = None;
    let mut runs = Vec::new();
    for line in text.lines() {
        let mut words = line.split(' ');
        let (kind, project, sha) = (
            words.next().unwrap_or(""),
            words.next().unwrap_or("").to_string(),
            words.next().unwrap_or("").to_string(),
        );
        match (kind, &open) {
            ("start", None) => {
                open = Some((project.clone(), sha.clone()));
                runs.push((project, sha));
            }
            ("end", Some(o)) if *o == (project.clone(), sha.clone()) => open = None,
            _ => panic!(
                "runs overlapped (or the marker is malformed) at line {line:?}; marker:\n{text}"
            ),
        }
    }
    assert!(open.is_none(), "a run did not end; marker:\n{text}");
    runs
}

fn started(marker: &Path, project: &str, sha: &str) -> bool {
    read(marker)
        .lines()
        .any(|l| l.starts_with(&format!("start {project} {sha} ")))
}

/// `status --json`, by project.
fn status(config: &Path) -> BTreeMap<String, Value> {
    let out = cli_ok(config, &["status", "--json"], 0);
    let list: Vec<Value> =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("status --json: {e}: {out}"));
    list.into_iter()
        .map(|p| (p["project"].as_str().unwrap_or("").to_string(), p))
        .collect()
}

/// Waits until `project` is idle with nothing pending: no further run will
/// come, so the history is final.
fn wait_idle(config: &Path, project: &str) {
    poll(
        LIMIT,
        &format!("{project} idle with nothing pending"),
        || {
            let last = status(config).remove(project).unwrap_or(Value::Null);
            if last["state"] == "idle" && last["pending"].is_null() {
                Ok(())
            } else {
                Err(format!(
                    "status: {last:#}\nhistory: {:#}",
                    Value::Array(history(config, project))
                ))
            }
        },
    )
}

fn pretty(runs: &[Value]) -> String {
    serde_json::to_string_pretty(runs).unwrap()
}

/// A `deployd` CLI running in the background, its stdout and stderr going to
/// files that can be read while it runs. Killed if still running when dropped.
struct Bg {
    child: Child,
    args: String,
    out: PathBuf,
    err: PathBuf,
    /// Held open so the CLI's stdin never reaches end of file on its own.
    _stdin: Option<ChildStdin>,
}

impl Bg {
    fn spawn(dir: &TestDir, config: &Path, args: &[&str], tag: &str) -> Bg {
        Bg::spawn_with_stdin(dir, config, args, tag, false)
    }

    /// With `open_stdin`, the CLI's stdin is a pipe this test keeps open: a
    /// script that inherited it would block reading it.
    fn spawn_with_stdin(
        dir: &TestDir,
        config: &Path,
        args: &[&str],
        tag: &str,
        open_stdin: bool,
    ) -> Bg {
        let out = dir.join(&format!("{tag}.stdout"));
        let err = dir.join(&format!("{tag}.stderr"));
        let mut child = Command::new(BIN)
            .arg("-c")
            .arg(config)
            .args(args)
            .stdin(if open_stdin {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(File::create(&out).unwrap())
            .stderr(File::create(&err).unwrap())
            .spawn()
            .expect("spawn deployd");
        Bg {
            _stdin: child.stdin.take(),
            child,
            args: format!("deployd -c {} {}", config.display(), args.join(" ")),
            out,
            err,
        }
    }

    fn stdout(&self) -> String {
        read(&self.out)
    }

    fn stderr(&self) -> String {
        read(&self.err)
    }

    fn describe(&self) -> String {
        format!(
            "{}\nstdout:\n{}\nstderr:\n{}",
            self.args,
            self.stdout(),
            self.stderr()
        )
    }

    /// Waits until its stderr contains `needle`.
    fn wait_stderr(&mut self, needle: &str) {
        poll(LIMIT, &format!("{needle:?} on stderr"), || {
            if self.stderr().contains(needle) {
                return Ok(());
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                if self.stderr().contains(needle) {
                    return Ok(());
                }
                panic!(
                    "exited ({st}) without {needle:?} on stderr:\n{}",
                    self.describe()
                );
            }
            Err(self.describe())
        })
    }

    /// Waits (bounded) for it to exit; panics unless with `code`.
    fn expect_exit(&mut self, code: i32) -> ExitStatus {
        let (out, err) = (self.out.clone(), self.err.clone());
        let status = wait_exit(&mut self.child, LIMIT, &self.args, || {
            format!("stdout:\n{}\nstderr:\n{}", read(&out), read(&err))
        });
        assert_eq!(
            status.code(),
            Some(code),
            "unexpected exit:\n{}",
            self.describe()
        );
        status
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!("--- background CLI ---\n{}\n---", self.describe());
        }
    }
}

/// A 40-hex commit id, distinct for each `i`.
fn sha(i: u32) -> String {
    format!("{:040x}", 0x00c0_ffee_0000_u64 + u64::from(i))
}

#[test]
fn burst_during_a_run_coalesces_into_one_run_of_the_newest() {
    let dir = TestDir::new("burst");
    let (script, marker) = gated_script(&dir);
    let config = write_config(&dir, "", &project("app", &script, ""));
    let d = Daemon::start(&config);

    let first = sha(0);
    let (code, body) = d.push("app", "refs/heads/main", &first, "burst-0");
    assert_eq!(code, 202, "{body}");
    wait_until(LIMIT, "run 1 to start", || started(&marker, "app", &first));

    let burst: Vec<String> = (1..=10).map(sha).collect();
    for (i, s) in burst.iter().enumerate() {
        let (code, body) = d.push("app", "refs/heads/main", s, &format!("burst-{}", i + 1));
        assert_eq!(code, 202, "push {} of the burst: {body}", i + 1);
    }
    let newest = burst.last().unwrap();
    // All ten arrived while run 1 is held: one pending request, the newest.
    let st = status(&config).remove("app").unwrap();
    assert_eq!(st["state"], "running", "{st:#}");
    assert_eq!(st["running"]["sha"], first.as_str(), "{st:#}");
    assert_eq!(st["pending"]["sha"], newest.as_str(), "{st:#}");

    open_gate(&dir, "all");
    wait_runs(&config, "app", 2, LIMIT);
    wait_idle(&config, "app");
    let runs = history(&config, "app");
    assert_eq!(runs.len(), 2, "exactly two runs:\n{}", pretty(&runs));
    assert_eq!(runs[1]["sha"], first.as_str(), "{}", pretty(&runs));
    assert_eq!(runs[0]["sha"], newest.as_str(), "{}", pretty(&runs));
    assert_eq!(runs[0]["delivery"], "burst-10", "{}", pretty(&runs));
    for r in &runs {
        assert_eq!(r["status"], "succeeded", "{}", pretty(&runs));
        assert_eq!(r["trigger"], "webhook", "{}", pretty(&runs));
    }
    let order: Vec<String> = alternating(&marker).into_iter().map(|(_, s)| s).collect();
    assert_eq!(order, vec![first, newest.clone()], "{}", read(&marker));
}

#[test]
fn webhook_and_manual_runs_through_the_daemon_never_overlap() {
    let dir = TestDir::new("overlap");
    let (script, marker) = gated_script(&dir);
    let config = write_config(&dir, "", &project("app", &script, ""));
    let d = Daemon::start(&config);
    let (a, b, m) = (sha(1), sha(2), sha(3));

    assert_eq!(d.push("app", "refs/heads/main", &a, "ov-1").0, 202);
    wait_until(LIMIT, "run of A to start", || started(&marker, "app", &a));
    assert_eq!(d.push("app", "refs/heads/main", &b, "ov-2").0, 202);
    let st = status(&config).remove("app").unwrap();
    assert_eq!(st["state"], "running", "{st:#}");
    assert_eq!(st["pending"]["sha"], b.as_str(), "{st:#}");

    // A ends; B starts (and holds). A manual deploy sent now is queued.
    open_gate(&dir, &a);
    wait_until(LIMIT, "run of B to start", || started(&marker, "app", &b));
    let mut manual = Bg::spawn(&dir, &config, &["deploy", "app", "--sha", &m], "manual");
    manual.wait_stderr("queued through the daemon");
    let st = status(&config).remove("app").unwrap();
    assert_eq!(st["running"]["sha"], b.as_str(), "{st:#}");
    assert_eq!(st["pending"]["sha"], m.as_str(), "{st:#}");
    assert_eq!(st["pending"]["trigger"], "manual", "{st:#}");
    assert!(
        !started(&marker, "app", &m),
        "the manual run started during B:\n{}",
        read(&marker)
    );

    open_gate(&dir, &b);
    open_gate(&dir, &m);
    manual.expect_exit(0);
    let out = manual.stdout();
    assert!(
        out.contains(&format!("ran {m} (manual)")),
        "the CLI did not stream its run's output:\n{}",
        manual.describe()
    );
    assert!(
        !out.contains(&format!("ran {b}")),
        "the CLI streamed another run:\n{}",
        manual.describe()
    );
    wait_idle(&config, "app");
    let runs = history(&config, "app");
    let got: Vec<(String, String)> = runs
        .iter()
        .rev()
        .map(|r| {
            (
                r["sha"].as_str().unwrap().to_string(),
                r["trigger"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (a.clone(), "webhook".to_string()),
            (b.clone(), "webhook".to_string()),
            (m.clone(), "manual".to_string())
        ],
        "{}",
        pretty(&runs)
    );
    assert!(
        runs.iter().all(|r| r["status"] == "succeeded"),
        "{}",
        pretty(&runs)
    );
    let order: Vec<String> = alternating(&marker).into_iter().map(|(_, s)| s).collect();
    assert_eq!(order, vec![a, b, m]);
    drop(d);
}

#[test]
fn manual_deploy_without_a_daemon_runs_the_script_itself() {
    let dir = TestDir::new("direct");
    let ok = dir.script(
        "ok.sh",
        "#!/bin/sh\n\
         echo \"ran $DEPLOY_SHA ($DEPLOY_TRIGGER) stdin=$(readlink /proc/$$/fd/0)\"\n\
         # Blocks if stdin were the CLI's (a pipe the test keeps open).\n\
         cat\n\
         echo stdin-eof\n",
    );
    let bad = dir.script("bad.sh", "#!/bin/sh\necho about to fail\nexit 3\n");
    let config = write_config(
        &dir,
        "",
        &(project("app", &ok, "") + &project("bad", &bad, "")),
    );
    let x = sha(7);

    let mut ok_cli =
        Bg::spawn_with_stdin(&dir, &config, &["deploy", "app", "--sha", &x], "ok", true);
    ok_cli.expect_exit(0);
    assert!(
        ok_cli.stderr().contains("no daemon answers"),
        "{}",
        ok_cli.describe()
    );
    let out = ok_cli.stdout();
    assert!(
        out.contains(&format!("ran {x} (manual) stdin=/dev/null")) && out.contains("stdin-eof"),
        "the script's output was not streamed, or stdin was not /dev/null:\n{}",
        ok_cli.describe()
    );
    let runs = history(&config, "app");
    assert_eq!(runs.len(), 1, "{}", pretty(&runs));
    assert_eq!(runs[0]["trigger"], "manual", "{}", pretty(&runs));
    assert_eq!(runs[0]["sha"], x.as_str(), "{}", pretty(&runs));
    assert_eq!(runs[0]["status"], "succeeded", "{}", pretty(&runs));
    assert_eq!(runs[0]["exit_code"], 0, "{}", pretty(&runs));
    let log = read(Path::new(runs[0]["log"].as_str().unwrap()));
    assert!(log.contains(&format!("ran {x} (manual)")), "{log}");

    let out = cli(&config, &["deploy", "bad"]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "a failed direct deploy must exit 1\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("about to fail"), "{stdout}\n{stderr}");
    let runs = history(&config, "bad");
    assert_eq!(runs.len(), 1, "{}", pretty(&runs));
    assert_eq!(runs[0]["status"], "failed", "{}", pretty(&runs));
    assert_eq!(runs[0]["exit_code"], 3, "{}", pretty(&runs));
    assert_eq!(runs[0]["trigger"], "manual", "{}", pretty(&runs));
}

#[test]
fn direct_deploy_waits_for_another_direct_deploy() {
    let dir = TestDir::new("direct2");
    let (script, marker) = gated_script(&dir);
    let config = write_config(&dir, "", &project("app", &script, ""));
    let (a, b) = (sha(1), sha(2));

    let mut first = Bg::spawn(&dir, &config, &["deploy", "app", "--sha", &a], "first");
    wait_until(LIMIT, "the first direct run to start", || {
        started(&marker, "app", &a)
    });
    let mut second = Bg::spawn(&dir, &config, &["deploy", "app", "--sha", &b], "second");
    // It names what it waits for.
    let first_run = history(&config, "app").remove(0);
    second.wait_stderr(&format!(
        "deployd: app: waiting for run 1 (manual {}, started {}) to finish",
        &a[..12],
        first_run["started_at"].as_str().unwrap()
    ));
    assert!(
        !started(&marker, "app", &b),
        "the second run started while the first held the lock:\n{}",
        read(&marker)
    );
    open_gate(&dir, "all");
    first.expect_exit(0);
    second.expect_exit(0);
    assert!(
        second.stderr().contains("no daemon answers"),
        "{}",
        second.describe()
    );
    assert!(
        second.stdout().contains(&format!("ran {b} (manual)")),
        "{}",
        second.describe()
    );
    let order: Vec<String> = alternating(&marker).into_iter().map(|(_, s)| s).collect();
    assert_eq!(order, vec![a.clone(), b.clone()]);
    let runs = history(&config, "app");
    assert_eq!(runs.len(), 2, "{}", pretty(&runs));
    assert_eq!(runs[0]["sha"], b.as_str(), "{}", pretty(&runs));
    assert_eq!(runs[1]["sha"], a.as_str(), "{}", pretty(&runs));
    assert!(
        runs.iter().all(|r| r["status"] == "succeeded"),
        "{}",
        pretty(&runs)
    );
}

#[test]
fn deploy_through_the_daemon_says_which_run_it_waits_for() {
    let dir = TestDir::new("behind");
    let (script, marker) = gated_script(&dir);
    let config = write_config(&dir, "", &project("app", &script, ""));
    let d = Daemon::start(&config);
    let (a, b) = (sha(1), sha(2));
    assert_eq!(d.push("app", "refs/heads/main", &a, "behind-1").0, 202);
    wait_until(LIMIT, "the webhook run to start", || {
        started(&marker, "app", &a)
    });
    let first_run = history(&config, "app").remove(0);
    let mut manual = Bg::spawn(&dir, &config, &["deploy", "app", "--sha", &b], "manual");
    manual.wait_stderr(&format!(
        "deployd: app: waiting for run 1 (webhook {}, started {}) to finish",
        &a[..12],
        first_run["started_at"].as_str().unwrap()
    ));
    assert!(!started(&marker, "app", &b), "{}", read(&marker));
    open_gate(&dir, "all");
    manual.expect_exit(0);
    assert!(
        manual.stderr().contains("run 2 started"),
        "{}",
        manual.describe()
    );
}

#[test]
fn direct_deploy_and_daemon_runs_share_the_lock() {
    let dir = TestDir::new("direct3");
    let (script, marker) = gated_script(&dir);
    let config = write_config(&dir, "", &project("app", &script, ""));
    // The same setup, but a control socket nobody listens on: the CLI cannot
    // reach the daemon and runs the script itself, in the same state_dir.
    let text = read(&config).replace(
        "control_socket = \"control.sock\"",
        "control_socket = \"elsewhere.sock\"",
    );
    assert!(text.contains("elsewhere.sock"), "{text}");
    let blind = dir.join("blind.toml");
    std::fs::write(&blind, text).unwrap();
    std::fs::set_permissions(&blind, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let d = Daemon::start(&config);
    let (a, m, n, p) = (sha(1), sha(2), sha(3), sha(4));

    // A direct deploy while the daemon's webhook run holds the lock waits.
    assert_eq!(d.push("app", "refs/heads/main", &a, "lock-1").0, 202);
    wait_until(LIMIT, "the webhook run to start", || {
        started(&marker, "app", &a)
    });
    let mut direct = Bg::spawn(&dir, &blind, &["deploy", "app", "--sha", &m], "direct-m");
    direct.wait_stderr(&format!(
        "deployd: app: waiting for run 1 (webhook {}, started ",
        &a[..12]
    ));
    assert!(
        direct.stderr().contains("no daemon answers"),
        "{}",
        direct.describe()
    );
    assert!(!started(&marker, "app", &m), "{}", read(&marker));
    open_gate(&dir, &a);
    open_gate(&dir, &m);
    direct.expect_exit(0);
    assert!(
        direct.stdout().contains(&format!("ran {m} (manual)")),
        "{}",
        direct.describe()
    );

    // And the daemon waits for a direct deploy that holds the lock.
    let mut direct = Bg::spawn(&dir, &blind, &["deploy", "app", "--sha", &n], "direct-n");
    wait_until(LIMIT, "the direct run to start", || {
        started(&marker, "app", &n)
    });
    assert_eq!(d.push("app", "refs/heads/main", &p, "lock-2").0, 202);
    d.wait_log("waiting for the run lock", LIMIT);
    assert!(!started(&marker, "app", &p), "{}", read(&marker));
    open_gate(&dir, &n);
    open_gate(&dir, &p);
    direct.expect_exit(0);
    wait_runs(&config, "app", 4, LIMIT);
    wait_idle(&config, "app");

    let order: Vec<String> = alternating(&marker).into_iter().map(|(_, s)| s).collect();
    assert_eq!(order, vec![a.clone(), m.clone(), n.clone(), p.clone()]);
    let runs = history(&config, "app");
    let got: Vec<(u64, String, String)> = runs
        .iter()
        .rev()
        .map(|r| {
            (
                r["id"].as_u64().unwrap(),
                r["sha"].as_str().unwrap().to_string(),
                r["trigger"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (1, a, "webhook".into()),
            (2, m, "manual".into()),
            (3, n, "manual".into()),
            (4, p, "webhook".into())
        ],
        "{}",
        pretty(&runs)
    );
    assert!(
        runs.iter().all(|r| r["status"] == "succeeded"),
        "{}",
        pretty(&runs)
    );
}

#[test]
fn timeout_kills_the_whole_process_group() {
    let dir = TestDir::new("timeout");
    let pidfile = dir.join("grandchild.pid");
    let script = dir.script(
        "deploy.sh",
        &format!(
            "#!/bin/sh\n\
             sh -c 'trap \"\" TERM; echo $$ > \"{}\"; exec sleep 60' &\n\
             echo spawned a grandchild that ignores SIGTERM\n\
             sleep 60\n",
            pidfile.display()
        ),
    );
    let config = write_config(
        &dir,
        "",
        &project("app", &script, "timeout = \"1s\"\nkill_grace = \"1s\""),
    );
    let d = Daemon::start(&config);
    assert_eq!(d.push("app", "refs/heads/main", SHA_A, "to-1").0, 202);
    let runs = wait_runs(&config, "app", 1, LIMIT);
    let run = &runs[0];
    let pid: i32 = read(&pidfile).trim().parse().unwrap_or_else(|_| {
        panic!(
            "no grandchild pid in {}; runs:\n{}",
            pidfile.display(),
            pretty(&runs)
        )
    });
    assert_eq!(run["status"], "timed_out", "{}", pretty(&runs));
    assert!(run["exit_code"].is_null(), "{}", pretty(&runs));
    // SIGKILL went out kill_grace after SIGTERM; the grandchild is gone (a
    // zombie nobody reaped yet counts as gone).
    wait_until(
        Duration::from_secs(5),
        "the grandchild to be killed",
        || !alive(pid),
    );
    if let Some(p) = run["pid"].as_i64() {
        assert!(!alive(p as i32), "the script {p} outlived its run");
    }
    let log = cli_ok(&config, &["logs", "app"], 0);
    assert!(log.contains("timeout of 1s reached"), "{log}");
    assert!(log.contains("timed out"), "{log}");
    d.wait_log("run 1 timed out after 1s (", LIMIT);
}

#[test]
fn a_timed_out_deploy_says_so_in_words() {
    let dir = TestDir::new("timeout-words");
    let script = dir.script("deploy.sh", "#!/bin/sh\nsleep 60\n");
    let config = write_config(
        &dir,
        "",
        &project("app", &script, "timeout = \"1s\"\nkill_grace = \"1s\""),
    );
    // Without a daemon, the command runs the script itself; then through one.
    let direct = cli(&config, &["deploy", "app"]);
    let (_, stderr) = expect_code(&direct, 1, "deploy app (no daemon)");
    assert!(
        stderr.contains("app: run 1 timed out after 1s\n"),
        "{stderr}"
    );
    assert!(!stderr.contains("timed_out"), "{stderr}");
    let _d = Daemon::start(&config);
    let queued = cli(&config, &["deploy", "app"]);
    let (_, stderr) = expect_code(&queued, 1, "deploy app (through the daemon)");
    assert!(
        stderr.contains("app: run 2 timed out after 1s\n"),
        "{stderr}"
    );
    assert!(!stderr.contains("timed_out"), "{stderr}");
}

#[test]
fn processes_left_behind_by_a_successful_script_are_stopped() {
    let dir = TestDir::new("leftover");
    let polite = dir.join("polite.pid");
    let stubborn = dir.join("stubborn.pid");
    let script = dir.script(
        "deploy.sh",
        &format!(
            "#!/bin/sh\n\
             sleep 60 &\n\
             echo $! > \"{}\"\n\
             sh -c 'trap \"\" TERM; echo $$ > \"{}\"; exec sleep 60' &\n\
             while [ ! -s \"{1}\" ]; do sleep 0.02; done\n\
             echo leaving two processes behind\n",
            polite.display(),
            stubborn.display()
        ),
    );
    let config = write_config(
        &dir,
        "",
        &project("app", &script, "kill_grace = \"1s\"\ntimeout = \"20s\""),
    );
    let d = Daemon::start(&config);
    assert_eq!(d.push("app", "refs/heads/main", SHA_A, "lo-1").0, 202);
    let runs = wait_runs(&config, "app", 1, LIMIT);
    assert_eq!(runs[0]["status"], "succeeded", "{}", pretty(&runs));
    assert_eq!(runs[0]["exit_code"], 0, "{}", pretty(&runs));
    for f in [&polite, &stubborn] {
        let pid: i32 = read(f)
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("no pid in {}", f.display()));
        // Stopped before the record was written: no waiting here.
        assert!(
            !alive(pid),
            "{} (pid {pid}) outlived the run; runs:\n{}\ndaemon log:\n{}",
            f.display(),
            pretty(&runs),
            d.log()
        );
    }
    let log = cli_ok(&config, &["logs", "app"], 0);
    assert!(log.contains("left processes behind"), "{log}");
}

#[test]
fn the_script_gets_exactly_the_documented_environment() {
    let dir = TestDir::new("env");
    let work = dir.join("work");
    std::fs::create_dir(&work).unwrap();
    let script = dir.script(
        "deploy.sh",
        "#!/bin/sh\n\
         # The environment exactly as deployd passed it to exec (no shell additions).\n\
         cat /proc/$$/environ > environ.bin\n\
         env > env.txt\n\
         readlink /proc/$$/fd/0 > stdin.txt\n\
         cat > stdin-data.txt\n\
         pwd -P > cwd.txt\n\
         echo $$ > pid.txt\n\
         ps -o pgid= -p $$ > pgid.txt\n",
    );
    let config = write_config(
        &dir,
        "",
        &project(
            "app",
            &script,
            &format!(
                "working_dir = \"{}\"\nenv = {{ APP_ENV = \"prod\" }}",
                work.display()
            ),
        ),
    );
    let home = dir.path.display().to_string();
    let d = Daemon::start_with(
        &config,
        &[
            ("HOME", &home),
            ("LANG", "C.UTF-8"),
            ("NOTIFY_SOCKET", "/nonexistent"),
            ("LISTEN_FDS", "7"),
            // Another process's sockets: the daemon itself must ignore them.
            ("LISTEN_PID", "1"),
            ("WATCHDOG_USEC", "600000000"),
            ("WATCHDOG_PID", "1"),
            ("SECRET_LEAK", "x"),
            ("DEPLOYD_CONFIG", "/nonexistent.toml"),
        ],
    );
    assert_eq!(d.push("app", "refs/heads/main", SHA_A, "env-1").0, 202);
    let runs = wait_runs(&config, "app", 1, LIMIT);
    let run = &runs[0];
    assert_eq!(run["status"], "succeeded", "{}", pretty(&runs));

    let raw = std::fs::read(work.join("environ.bin")).unwrap_or_else(|e| {
        panic!(
            "no environ.bin in working_dir {}: {e}; log:\n{}",
            work.display(),
            cli_ok(&config, &["logs", "app"], 0)
        )
    });
    let text = String::from_utf8_lossy(&raw).into_owned();
    let env: BTreeMap<String, String> = text
        .split('\0')
        .filter(|s| !s.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k.to_string(), v.to_string())
        })
        .collect();
    let shown = text.replace('\0', "\n");
    let keys: BTreeSet<&str> = env.keys().map(String::as_str).collect();
    let expected: BTreeSet<&str> = [
        "PATH",
        "HOME",
        "LANG",
        "APP_ENV",
        "DEPLOY_PROJECT",
        "DEPLOY_RUN_ID",
        "DEPLOY_TRIGGER",
        "DEPLOY_REF",
        "DEPLOY_BRANCH",
        "DEPLOY_SHA",
        "DEPLOY_BEFORE",
        "DEPLOY_REPOSITORY",
        "DEPLOY_PUSHER",
        "DEPLOY_DELIVERY",
        "DEPLOY_LOG",
        "DEPLOY_OUTPUT",
        "DEPLOY_TAG",
        "DEPLOY_FORCED",
        "DEPLOY_MESSAGE",
    ]
    .into_iter()
    .collect();
    assert_eq!(keys, expected, "environment:\n{shown}");
    assert!(
        !text.contains(SECRET),
        "the secret reached the script:\n{shown}"
    );
    assert!(
        !read(&work.join("env.txt")).contains(SECRET),
        "the secret reached the script"
    );
    let want = [
        ("PATH", std::env::var("PATH").unwrap_or_default()),
        ("HOME", home.clone()),
        ("LANG", "C.UTF-8".to_string()),
        ("APP_ENV", "prod".to_string()),
        ("DEPLOY_PROJECT", "app".to_string()),
        ("DEPLOY_RUN_ID", run["id"].to_string()),
        ("DEPLOY_TRIGGER", "webhook".to_string()),
        ("DEPLOY_REF", "refs/heads/main".to_string()),
        ("DEPLOY_BRANCH", "main".to_string()),
        ("DEPLOY_SHA", SHA_A.to_string()),
        ("DEPLOY_BEFORE", "1".repeat(40)),
        ("DEPLOY_REPOSITORY", "acme/app".to_string()),
        ("DEPLOY_PUSHER", "octocat".to_string()),
        ("DEPLOY_DELIVERY", "env-1".to_string()),
        ("DEPLOY_TAG", String::new()),
        ("DEPLOY_FORCED", "0".to_string()),
        // The head commit's first line, kept through the queue and the record.
        ("DEPLOY_MESSAGE", "Deploy me".to_string()),
        ("DEPLOY_LOG", run["log"].as_str().unwrap().to_string()),
        (
            "DEPLOY_OUTPUT",
            run["log"].as_str().unwrap().replace(".log", ".output"),
        ),
    ];
    for (k, v) in want {
        assert_eq!(env.get(k), Some(&v), "{k}; environment:\n{shown}");
    }
    assert!(
        Path::new(&env["DEPLOY_LOG"]).is_file(),
        "DEPLOY_LOG is not the log file:\n{shown}"
    );

    assert_eq!(read(&work.join("stdin.txt")).trim(), "/dev/null");
    assert_eq!(read(&work.join("stdin-data.txt")), "");
    assert_eq!(
        read(&work.join("cwd.txt")).trim(),
        work.canonicalize().unwrap().to_str().unwrap()
    );
    let pid = read(&work.join("pid.txt")).trim().to_string();
    let pgid = read(&work.join("pgid.txt")).trim().to_string();
    assert!(!pid.is_empty(), "no pid.txt");
    assert_eq!(
        pgid, pid,
        "the script is not the leader of its own process group"
    );
    assert_eq!(run["pid"].to_string(), pid, "{}", pretty(&runs));
}

/// Two projects with the gated script, sharing one marker file.
fn two_projects(dir: &TestDir, parallel: usize) -> (PathBuf, PathBuf) {
    let (script, marker) = gated_script(dir);
    let config = write_config(
        dir,
        &format!("parallel = {parallel}"),
        &(project("one", &script, "") + &project("two", &script, "")),
    );
    (config, marker)
}

fn running(config: &Path) -> Vec<String> {
    status(config)
        .into_iter()
        .filter(|(_, s)| s["state"] == "running")
        .map(|(p, _)| p)
        .collect()
}

#[test]
fn parallel_two_runs_two_projects_at_once() {
    let dir = TestDir::new("par2");
    let (config, marker) = two_projects(&dir, 2);
    let d = Daemon::start(&config);
    assert_eq!(d.push("one", "refs/heads/main", SHA_A, "p2-1").0, 202);
    assert_eq!(d.push("two", "refs/heads/main", SHA_B, "p2-2").0, 202);
    wait_until(LIMIT, "both projects' scripts to be running", || {
        started(&marker, "one", SHA_A) && started(&marker, "two", SHA_B)
    });
    let now = running(&config);
    assert_eq!(now, vec!["one", "two"], "status while both are held");
    open_gate(&dir, "all");
    for p in ["one", "two"] {
        let runs = wait_runs(&config, p, 1, LIMIT);
        assert_eq!(runs[0]["status"], "succeeded", "{}", pretty(&runs));
    }
}

#[test]
fn parallel_one_runs_one_project_at_a_time() {
    let dir = TestDir::new("par1");
    let (config, marker) = two_projects(&dir, 1);
    let d = Daemon::start(&config);
    assert_eq!(d.push("one", "refs/heads/main", SHA_A, "p1-1").0, 202);
    assert_eq!(d.push("two", "refs/heads/main", SHA_B, "p1-2").0, 202);
    wait_until(LIMIT, "one project's script to be running", || {
        started(&marker, "one", SHA_A) || started(&marker, "two", SHA_B)
    });
    let st = status(&config);
    let states: Vec<(&str, &str)> = st
        .iter()
        .map(|(p, s)| (p.as_str(), s["state"].as_str().unwrap_or("")))
        .collect();
    let mut sorted: Vec<&str> = states.iter().map(|(_, s)| *s).collect();
    sorted.sort();
    assert_eq!(
        sorted,
        vec!["pending", "running"],
        "with parallel = 1 one runs and the other waits: {states:?}\nmarker:\n{}",
        read(&marker)
    );
    open_gate(&dir, "all");
    for p in ["one", "two"] {
        let runs = wait_runs(&config, p, 1, LIMIT);
        assert_eq!(runs[0]["status"], "succeeded", "{}", pretty(&runs));
    }
    let order = alternating(&marker);
    assert_eq!(order.len(), 2, "{}", read(&marker));
}

#[test]
fn keep_runs_keeps_the_newest_records_and_logs() {
    let dir = TestDir::new("keep");
    let script = dir.script("deploy.sh", "#!/bin/sh\necho \"deploying $DEPLOY_SHA\"\n");
    let config = write_config(&dir, "", &project("app", &script, "keep_runs = 3"));
    let d = Daemon::start(&config);
    for i in 1..=5u32 {
        let s = sha(i);
        let (code, body) = d.push("app", "refs/heads/main", &s, &format!("keep-{i}"));
        assert_eq!(code, 202, "{body}");
        poll(LIMIT, &format!("run {i} to finish"), || {
            let last = history(&config, "app");
            if last
                .first()
                .is_some_and(|r| r["id"] == i && r["status"] != "running")
            {
                Ok(())
            } else {
                Err(format!("history:\n{}", pretty(&last)))
            }
        });
    }
    let logs_dir = dir.join("logs/app");
    let records_dir = dir.join("state/runs/app");
    let names = |d: &Path| -> BTreeSet<String> {
        std::fs::read_dir(d)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    // Pruning follows the record's save by a moment.
    wait_until(LIMIT, "pruning down to 3 runs", || {
        names(&logs_dir).len() == 3 && history(&config, "app").len() == 3
    });
    let runs = history(&config, "app");
    let ids: Vec<u64> = runs.iter().map(|r| r["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, vec![5, 4, 3], "{}", pretty(&runs));
    let want: BTreeSet<String> = ["3.log", "4.log", "5.log"].map(String::from).into();
    assert_eq!(names(&logs_dir), want);
    let records: BTreeSet<String> = names(&records_dir)
        .into_iter()
        .filter(|n| n.ends_with(".json"))
        .collect();
    assert_eq!(
        records,
        ["3.json", "4.json", "5.json"].map(String::from).into()
    );
    assert!(
        runs.iter().all(|r| r["status"] == "succeeded"),
        "{}",
        pretty(&runs)
    );
    assert_eq!(runs[0]["sha"], sha(5).as_str());
}
