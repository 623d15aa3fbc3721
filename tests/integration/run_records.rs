//! What a run leaves behind, whoever ran it (the daemon, or `deployd deploy`
//! with no daemon): the last line of its log when the script cannot start,
//! which of script and working directory is at fault, the signal of a run
//! stopped at its timeout, the modes of every file and directory created,
//! the end time of an interrupted run, and what `status` says after a crash.

use crate::common;
use common::*;

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

const T: Duration = Duration::from_secs(30);

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

fn pretty(runs: &[Value]) -> String {
    serde_json::to_string_pretty(runs).unwrap()
}

/// The log of the newest run of `project`.
fn last_log(config: &Path, project: &str) -> (Value, String) {
    let runs = history(config, project);
    let run = runs.first().cloned().expect("a run");
    let log = read(Path::new(run["log"].as_str().unwrap()));
    (run, log)
}

/// The last line of `text`.
fn last_line(text: &str) -> &str {
    text.lines().last().unwrap_or("")
}

/// Runs `project` once through a daemon (a push), waits for the run to end.
fn run_by_daemon(config: &Path, project: &str) -> (Value, String) {
    run_by_daemon_after(config, project, || {})
}

/// [`run_by_daemon`], calling `meanwhile` once the daemon has started: to
/// break what the daemon's start-up checks would have refused.
fn run_by_daemon_after(config: &Path, project: &str, meanwhile: impl FnOnce()) -> (Value, String) {
    let d = Daemon::start(config);
    meanwhile();
    let delivery = format!("d-{project}");
    assert_eq!(d.push(project, "refs/heads/main", SHA_A, &delivery).0, 202);
    wait_runs(config, project, 1, T);
    drop(d);
    last_log(config, project)
}

/// Runs `project` once with `deployd deploy` and no daemon; expects exit 1.
fn run_direct(config: &Path, project: &str) -> (Value, String) {
    let out = cli(config, &["deploy", project]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    last_log(config, project)
}

#[test]
fn a_script_that_cannot_start_still_gets_the_final_line() {
    let dir = TestDir::new("not-exec");
    let script = dir.join("deploy.sh");
    std::fs::write(&script, "#!/bin/sh\necho never\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = write_config(&dir, "", &project("app", &script, ""));
    // `serve` refuses a script it cannot run: it breaks after the start.
    let chmod = || {
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();
    };
    for (who, (run, log)) in [
        ("daemon", run_by_daemon_after(&config, "app", chmod)),
        ("direct deploy", run_direct(&config, "app")),
    ] {
        let id = run["id"].as_u64().unwrap();
        assert_eq!(run["status"], "failed", "{who}: {run}");
        assert!(
            log.contains(&format!("=== deployd: cannot start {}", script.display())),
            "{who}:\n{log}"
        );
        assert!(
            last_line(&log).starts_with(&format!("=== deployd: run {id} failed: cannot start ")),
            "{who}: the log must end with the final line:\n{log}"
        );
    }
}

/// Holds the project's run lock, as another run would, until dropped.
fn hold_lock(config_dir: &TestDir, project: &str) -> File {
    let dir = config_dir.join("state/locks");
    std::fs::create_dir_all(&dir).unwrap();
    let f = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(format!("{project}.lock")))
        .unwrap();
    f.lock().unwrap();
    f
}

/// A CLI in the background whose stderr is collected line by line.
fn spawn_cli(config: &Path, args: &[&str]) -> (Child, Arc<Mutex<String>>) {
    let mut child = Command::new(BIN)
        .arg("-c")
        .arg(config)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = Arc::new(Mutex::new(String::new()));
    let stderr = child.stderr.take().unwrap();
    let e = err.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let mut e = e.lock().unwrap();
            e.push_str(&line);
            e.push('\n');
        }
    });
    (child, err)
}

#[test]
fn a_missing_working_dir_is_named_not_the_script() {
    let dir = TestDir::new("no-workdir");
    let script = dir.script("ok.sh", "#!/bin/sh\necho fine\n");
    let work = dir.join("work");
    std::fs::create_dir(&work).unwrap();
    let extra = format!("working_dir = \"{}\"", work.display());
    let config = write_config(&dir, "", &project("app", &script, &extra));
    // The directory is there when the config is read, gone when the run
    // starts (it was deleted in between, as happens on a live server).
    let d = Daemon::start(&config);
    std::fs::remove_dir(&work).unwrap();
    assert_eq!(d.push("app", "refs/heads/main", SHA_A, "d-1").0, 202);
    wait_runs(&config, "app", 1, T);
    drop(d);
    let daemon = last_log(&config, "app");

    std::fs::create_dir(&work).unwrap();
    let lock = hold_lock(&dir, "app");
    let (mut child, stderr) = spawn_cli(&config, &["deploy", "app"]);
    poll(T, "the direct deploy to wait for the lock", || {
        let e = stderr.lock().unwrap();
        if e.contains("waiting") {
            Ok(())
        } else {
            Err(format!("stderr:\n{e}"))
        }
    });
    std::fs::remove_dir(&work).unwrap();
    drop(lock);
    let status = wait_exit(&mut child, T, "deployd deploy app", || {
        format!("stderr:\n{}", stderr.lock().unwrap())
    });
    assert_eq!(status.code(), Some(1), "{}", stderr.lock().unwrap());
    let direct = last_log(&config, "app");

    for (who, (run, log)) in [("daemon", daemon), ("direct deploy", direct)] {
        let id = run["id"].as_u64().unwrap();
        let want = format!(
            "cannot enter working_dir {}: No such file or directory",
            work.display()
        );
        assert!(
            log.contains(&format!("=== deployd: {want}")),
            "{who}: the directory must be named:\n{log}"
        );
        assert!(
            !log.contains("cannot start"),
            "{who}: the script is not at fault:\n{log}"
        );
        assert!(
            last_line(&log).starts_with(&format!("=== deployd: run {id} failed: {want}")),
            "{who}: the log must end with the final line:\n{log}"
        );
    }
}

#[test]
fn a_run_killed_at_its_timeout_records_the_signal() {
    let dir = TestDir::new("timeout-signal");
    // Ignores SIGTERM (and so do its children): only SIGKILL ends it.
    let stubborn = dir.script(
        "stubborn.sh",
        "#!/bin/sh\ntrap '' TERM\necho started\nwhile :; do sleep 0.1; done\n",
    );
    // Dies of the SIGTERM deployd sends at the timeout.
    let meek = dir.script("meek.sh", "#!/bin/sh\necho started\nexec sleep 60\n");
    let limits = "timeout = \"1s\"\nkill_grace = \"1s\"";
    let config = write_config(
        &dir,
        "",
        &(project("stubborn", &stubborn, limits) + &project("meek", &meek, limits)),
    );
    let mut seen = Vec::new();
    for (name, signal) in [("stubborn", 9), ("meek", 15)] {
        let (run, log) = run_by_daemon(&config, name);
        seen.push((format!("daemon {name}"), run, log, signal));
        let (run, log) = run_direct(&config, name);
        seen.push((format!("direct {name}"), run, log, signal));
    }
    for (who, run, log, signal) in seen {
        assert_eq!(run["status"], "timed_out", "{who}: {run}\n{log}");
        assert!(run["exit_code"].is_null(), "{who}: {run}");
        assert_eq!(run["signal"], signal, "{who}: {run}\n{log}");
    }
    let runs = history(&config, "stubborn");
    assert_eq!(runs.len(), 2, "{}", pretty(&runs));
}

/// Runs `deployd ARGS` under umask 022, the usual default, which would let
/// anything created without an explicit mode come out 0755 / 0644.
fn under_umask() -> Vec<&'static str> {
    vec!["sh", "-c", "umask 022; exec \"$0\" \"$@\""]
}

/// Every directory and file under `root`, with its mode, `root` first.
fn modes(root: &Path) -> Vec<(String, bool, u32)> {
    let mut out = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(p) = todo.pop() {
        let m = std::fs::symlink_metadata(&p).unwrap();
        out.push((
            p.display().to_string(),
            m.is_dir(),
            m.permissions().mode() & 0o7777,
        ));
        if m.is_dir() {
            for e in std::fs::read_dir(&p).unwrap() {
                todo.push(e.unwrap().path());
            }
        }
    }
    out
}

/// State: 0600 files in 0700 directories (state_dir itself 0750, so the
/// group can reach a control socket kept there); logs: 0640 in 0750.
fn assert_documented_modes(dir: &TestDir, who: &str) {
    let (state, logs) = (dir.join("var/state"), dir.join("var/logs"));
    let mut wrong = Vec::new();
    let mut seen = 0;
    for (root, top, dirs, files) in [(&state, 0o750, 0o700, 0o600), (&logs, 0o750, 0o750, 0o640)] {
        for (path, is_dir, mode) in modes(root) {
            seen += 1;
            let want = if path == root.display().to_string() {
                top
            } else if is_dir {
                dirs
            } else {
                files
            };
            if mode != want {
                wrong.push(format!("{path}: {mode:o}, want {want:o}"));
            }
        }
    }
    // The parent made for them holds nothing of others either.
    let var = std::fs::metadata(dir.join("var"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    if var != 0o750 {
        wrong.push(format!("var: {var:o}, want 750"));
    }
    assert!(
        seen >= 8,
        "{who}: too few files to mean anything:\n{:#?}",
        modes(&dir.path)
    );
    assert!(
        wrong.is_empty(),
        "{who}: wrong modes:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn daemon_and_direct_deploy_create_files_with_the_documented_modes() {
    for who in ["daemon", "direct deploy"] {
        let dir = TestDir::new("modes");
        let script = dir.script("deploy.sh", "#!/bin/sh\necho hi\n");
        // Fresh directories, one level deeper than the config, so that a
        // missing parent has to be made too.
        let text = read(&write_config(&dir, "", &project("app", &script, "")))
            .replace("state_dir = \"state\"", "state_dir = \"var/state\"")
            .replace("log_dir = \"logs\"", "log_dir = \"var/logs\"");
        let config = dir.join("deploy.toml");
        std::fs::write(&config, text).unwrap();
        if who == "daemon" {
            let d = Daemon::start_wrapped(&config, &[], &under_umask());
            assert_eq!(d.push("app", "refs/heads/main", SHA_A, "m-1").0, 202);
            wait_runs(&config, "app", 1, T);
            drop(d);
        } else {
            let wrap = under_umask();
            let mut cmd = Command::new(wrap[0]);
            cmd.args(&wrap[1..])
                .arg(BIN)
                .arg("-c")
                .arg(&config)
                .args(["deploy", "app"])
                .stdin(Stdio::null());
            let out = output_of(&mut cmd);
            assert!(
                out.status.success(),
                "{}",
                describe(&format!("{cmd:?}"), &out)
            );
        }
        assert_documented_modes(&dir, who);
    }
}

/// A project whose script appends `start SHA` and `end SHA` to `marker`
/// around a sleep of `sleep` seconds, and says `done` in its log last (as
/// deploy scripts do).
fn sleeper(name: &str, sleep: &str) -> (TestDir, std::path::PathBuf) {
    let dir = TestDir::new(name);
    let script = dir.script(
        "deploy.sh",
        &format!(
            "#!/bin/sh\necho \"start $DEPLOY_SHA\" >> marker\nsleep {sleep}\necho done\n\
             echo \"end $DEPLOY_SHA\" >> marker\n"
        ),
    );
    let extra = format!("working_dir = \"{}\"", dir.path.display());
    let config = write_config(&dir, "", &project("app", &script, &extra));
    (dir, config)
}

fn time(v: &Value) -> std::time::SystemTime {
    humantime::parse_rfc3339(v.as_str().unwrap_or_else(|| panic!("not a time: {v}"))).unwrap()
}

fn status_text(config: &Path) -> String {
    cli_ok(config, &["status"], 0)
}

/// Run `id`'s line of the `history` table.
fn history_row(config: &Path, id: u64) -> String {
    let table = cli_ok(config, &["history", "app"], 0);
    table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(&id.to_string()))
        .unwrap_or_else(|| panic!("no run {id} in:\n{table}"))
        .to_string()
}

#[test]
fn status_after_a_crash_says_what_the_next_daemon_will_do() {
    // Run 1 is cut off by kill -9; nothing else happened: it runs again.
    let (dir, config) = sleeper("crash-status", "0.5");
    let mut d = Daemon::start(&config);
    assert_eq!(d.push("app", "refs/heads/main", SHA_A, "c-1").0, 202);
    wait_until(T, "the script to start", || {
        read(&dir.join("marker")).contains("start")
    });
    d.kill9();
    wait_until(T, "the orphan to end", || {
        read(&dir.join("marker")).contains("end")
    });
    let s = status_text(&config);
    assert!(
        s.contains("interrupted: run 1") && s.contains("it runs again when deployd starts"),
        "{s}"
    );
    // history agrees with status: not `running`, and what comes of it.
    let h = history_row(&config, 1);
    assert!(
        h.contains(" interrupted ")
            && !h.contains("running ")
            && h.contains("(was going when its daemon died; it runs again when deployd starts)"),
        "{h}"
    );
    // A manual deploy with no daemon comes after it: the next daemon does
    // not run it again, and status must say so.
    cli_ok(&config, &["deploy", "app", "--sha", SHA_B], 0);
    let s = status_text(&config);
    assert!(
        s.contains("interrupted: run 1")
            && s.contains("it is not run again: run 2 (manual) came after it")
            && !s.contains("runs again when deployd starts"),
        "{s}"
    );
    let h = history_row(&config, 1);
    assert!(
        h.contains(" interrupted ")
            && h.contains("it is not run again: run 2 (manual) came after it"),
        "{h}"
    );
    let d = Daemon::start(&config);
    d.wait_log(
        "not running interrupted run 1 again: run 2 (manual) came after it",
        T,
    );
    drop(d);

    // A newer push was pending when the daemon died: it runs instead.
    let (dir, config) = sleeper("crash-status-pending", "0.5");
    let mut d = Daemon::start(&config);
    assert_eq!(d.push("app", "refs/heads/main", SHA_A, "p-1").0, 202);
    wait_until(T, "the script to start", || {
        read(&dir.join("marker")).contains("start")
    });
    assert_eq!(d.push("app", "refs/heads/main", SHA_B, "p-2").0, 202);
    d.kill9();
    wait_until(T, "the orphan to end", || {
        read(&dir.join("marker")).contains("end")
    });
    let s = status_text(&config);
    assert!(
        s.contains("interrupted: run 1")
            && s.contains("the newer pending request runs instead")
            && s.contains("pending: refs/heads/main bbbbbbbbbbbb"),
        "{s}"
    );
    let d = Daemon::start(&config);
    d.wait_log("interrupted run 1 superseded by a newer pending push", T);
    let runs = wait_runs(&config, "app", 2, T);
    assert_eq!(runs[0]["sha"], SHA_B, "{}", pretty(&runs));
    assert_eq!(runs.len(), 2, "{}", pretty(&runs));
}

/// Kills whoever runs the script (`kill`), waits for the orphaned script to
/// end, lets time pass with nobody watching, restarts the daemon, and
/// checks the interrupted run's end time is not the restart's.
fn assert_downtime_not_counted(dir: &TestDir, config: &Path, kill: impl FnOnce()) {
    kill();
    wait_until(T, "the orphan to end", || {
        read(&dir.join("marker")).contains("end")
    });
    // Downtime: the daemon is not running; nothing to wait for but the clock.
    std::thread::sleep(Duration::from_millis(1500));
    let restart = std::time::SystemTime::now();
    let d = Daemon::start(config);
    d.wait_log("run 1 was interrupted", T);
    let runs = history(config, "app");
    let run = runs.iter().find(|r| r["id"] == 1).unwrap();
    assert_eq!(run["status"], "interrupted", "{}", pretty(&runs));
    let (start, end) = (time(&run["started_at"]), time(&run["finished_at"]));
    // The script slept 1 s: it was alive at least that long (less the
    // few ms by which a file's time, kept on the kernel's coarse clock,
    // may lag the clock that stamped started_at)...
    assert!(
        end.duration_since(start).unwrap() >= Duration::from_millis(980),
        "{}",
        pretty(&runs)
    );
    // ...and had ended well before the restart.
    assert!(
        end < restart,
        "the downtime was counted:\n{}",
        pretty(&runs)
    );
    let log = read(Path::new(run["log"].as_str().unwrap()));
    assert!(
        last_line(&log).contains(&format!(
            "its processes were last known alive at {}",
            run["finished_at"].as_str().unwrap()
        )),
        "{log}"
    );
}

#[test]
fn an_interrupted_run_ends_when_its_processes_were_last_known_alive() {
    // Cut off with its daemon.
    let (dir, config) = sleeper("downtime-daemon", "1");
    let mut d = Daemon::start(&config);
    assert_eq!(d.push("app", "refs/heads/main", SHA_A, "t-1").0, 202);
    wait_until(T, "the script to start", || {
        read(&dir.join("marker")).contains("start")
    });
    assert_downtime_not_counted(&dir, &config, || d.kill9());

    // Cut off with the `deployd deploy` that ran it itself.
    let (dir, config) = sleeper("downtime-direct", "1");
    let mut direct = Command::new(BIN)
        .arg("-c")
        .arg(&config)
        .args(["deploy", "app", "--sha", SHA_A])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until(T, "the script to start", || {
        read(&dir.join("marker")).contains("start")
    });
    assert_downtime_not_counted(&dir, &config, || {
        direct.kill().unwrap();
        direct.wait().unwrap();
    });
}

#[test]
fn a_run_the_restarted_daemon_waited_for_ends_when_it_saw_it_end() {
    let (dir, config) = sleeper("downtime-wait", "2");
    let mut d = Daemon::start(&config);
    assert_eq!(d.push("app", "refs/heads/main", SHA_A, "w-1").0, 202);
    wait_until(T, "the script to start", || {
        read(&dir.join("marker")).contains("start")
    });
    d.kill9();
    let d = Daemon::start(&config);
    d.wait_log("waiting for its processes to exit", T);
    wait_until(T, "the orphan to end", || {
        read(&dir.join("marker")).contains("end")
    });
    let ended = std::time::SystemTime::now();
    d.wait_log("run 1 was interrupted", T);
    let runs = history(&config, "app");
    let run = runs.iter().find(|r| r["id"] == 1).unwrap();
    let (start, end) = (time(&run["started_at"]), time(&run["finished_at"]));
    assert!(
        end.duration_since(start).unwrap() >= Duration::from_secs(2),
        "{}",
        pretty(&runs)
    );
    // Seen within a lock poll (and a loaded machine's scheduling) of the end.
    assert!(end <= ended + Duration::from_secs(2), "{}", pretty(&runs));
}
