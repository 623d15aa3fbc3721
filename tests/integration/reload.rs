//! `deployd reload`: asks the running daemon over its control socket to
//! reload, and says how it went — exit 0 once the new config is live, exit 1
//! with the config's error when it is refused, exit 1 when no daemon answers.

use crate::common;
use common::*;
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn reload_applies_a_valid_config_before_it_returns() {
    let dir = TestDir::new("reload-valid");
    let script = dir.script("deploy.sh", "#!/bin/sh\ntrue\n");
    let config = write_config(&dir, "", &project("app", &script, ""));
    let d = Daemon::start(&config);
    assert_eq!(d.push("other", "refs/heads/main", SHA_A, "d-0").0, 404);

    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&project("other", &script, ""));
    std::fs::write(&config, &text).unwrap();
    let out = cli_ok(&config, &["reload"], 0);
    assert!(out.contains("config reloaded: 2 project(s)"), "{out}");
    // Live when `reload` returns: no waiting, no retrying.
    assert_eq!(d.push("other", "refs/heads/main", SHA_A, "d-1").0, 202);
    wait_runs(&config, "other", 1, T);
}

#[test]
fn reload_says_what_waits_for_a_restart() {
    let dir = TestDir::new("reload-restart");
    let script = dir.script("deploy.sh", "#!/bin/sh\ntrue\n");
    let config = write_config(&dir, "", &project("app", &script, ""));
    let d = Daemon::start(&config);
    // A status page added by a reload does not start until a restart: the
    // one who reloads is told, and so is the log.
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{text}[web]\nlisten = \"127.0.0.1:0\"\n")).unwrap();
    let out = cli_ok(&config, &["reload"], 0);
    assert!(
        out.contains("config reloaded: 1 project(s); [web] was added: the status page starts at the next restart"),
        "{out}"
    );
    d.wait_log("reload: [web] was added", T);
    // The same for a changed limit, and for the page taken away.
    let text = text.replace("[server]\n", "[server]\nmax_connections = 7\n");
    std::fs::write(&config, text).unwrap();
    let out = cli_ok(&config, &["reload"], 0);
    assert!(
        out.contains("a change of server.max_connections takes effect at the next restart")
            && out.contains("[web] was removed"),
        "{out}"
    );
}

#[test]
fn reload_says_connection_deadlines_wait_for_a_restart() {
    let dir = TestDir::new("reload-deadlines");
    let script = dir.script("deploy.sh", "#!/bin/sh\ntrue\n");
    let config = write_config(&dir, "", &project("app", &script, ""));
    let _d = Daemon::start(&config);
    let text = std::fs::read_to_string(&config).unwrap();
    let changed = text.replace(
        "[server]\n",
        "[server]\nheader_timeout = \"3s\"\nidle_timeout = \"4s\"\n",
    );
    std::fs::write(&config, changed).unwrap();
    let out = cli_ok(&config, &["reload"], 0);
    assert!(
        out.contains(
            "a change of server.header_timeout, server.idle_timeout takes effect at the next restart"
        ),
        "{out}"
    );
    // The body's deadline is read for each request: a reload applies it,
    // and says nothing about a restart.
    let changed = text.replace(
        "[server]\n",
        "[server]\nheader_timeout = \"3s\"\nidle_timeout = \"4s\"\nrequest_timeout = \"5s\"\n",
    );
    std::fs::write(&config, changed).unwrap();
    let out = cli_ok(&config, &["reload"], 0);
    assert!(
        out.contains("config reloaded") && !out.contains("next restart"),
        "{out}"
    );
}

#[test]
fn reload_of_a_file_that_does_not_parse_fails_with_file_line_and_key() {
    let dir = TestDir::new("reload-invalid");
    let script = dir.script("deploy.sh", "#!/bin/sh\ntrue\n");
    let config = write_config(&dir, "", &project("app", &script, ""));
    let d = Daemon::start(&config);
    let good = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{good}scirpt = \"typo\"\n")).unwrap();
    let out = cli(&config, &["reload"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        explain(&config, &["reload"], &out)
    );
    let err = stderr(&out);
    assert!(err.contains("deploy.toml:"), "no file:line in: {err}");
    assert!(err.contains("scirpt"), "the bad key is not named: {err}");
    assert!(err.contains("running config is kept"), "{err}");
    // Whoever watches the daemon's log sees the refusal too, as for SIGHUP.
    d.wait_log("reload refused, the running config is kept: ", T);
    assert!(d.log().contains("scirpt"), "{}", d.log());
    // The running config still serves.
    assert_eq!(d.push("app", "refs/heads/main", SHA_A, "d-1").0, 202);

    // Not even TOML: still the daemon's to refuse, and to log.
    std::fs::write(&config, format!("{good}[projects.half\n")).unwrap();
    let out = cli(&config, &["reload"]);
    let (_, err) = expect_code(&out, 1, "reload of broken TOML");
    assert!(
        err.starts_with("deployd: reload refused, the running config is kept: ")
            && err.contains("deploy.toml:"),
        "{err}"
    );
    poll(T, "the daemon's log to say so", || {
        let log = d.log();
        let refusals = log.matches("reload refused").count();
        if refusals == 2 { Ok(()) } else { Err(log) }
    });
    assert_eq!(d.push("app", "refs/heads/main", SHA_B, "d-2").0, 202);
}

#[test]
fn reload_of_an_invalid_file_with_no_daemon_says_both() {
    let dir = TestDir::new("reload-invalid-nodaemon");
    let script = dir.script("deploy.sh", "#!/bin/sh\ntrue\n");
    let config = write_config(&dir, "", &project("app", &script, ""));
    let good = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{good}scirpt = \"typo\"\n")).unwrap();
    let out = cli(&config, &["reload"]);
    let (_, err) = expect_code(&out, 1, "reload with no daemon");
    assert!(err.contains("scirpt"), "the bad key is not named: {err}");
    assert!(
        err.contains("no daemon answers") && err.contains("control.sock"),
        "{err}"
    );
}

#[test]
fn reload_refused_by_the_daemon_fails_with_its_reason_and_keeps_the_old_config() {
    let dir = TestDir::new("reload-refused");
    let script = dir.script("deploy.sh", "#!/bin/sh\ntrue\n");
    let config = write_config(&dir, "", &project("app", &script, ""));
    let d = Daemon::start(&config);
    // Well-formed, so the CLI finds the daemon; but the secret file is
    // missing, which only the daemon (reading secrets) finds out.
    let mut text = std::fs::read_to_string(&config).unwrap();
    let missing = dir.join("missing.secret");
    text.push_str(&format!(
        "[projects.other]\nsecret_file = \"{}\"\nscript = \"{}\"\n",
        missing.display(),
        script.display()
    ));
    std::fs::write(&config, &text).unwrap();
    let out = cli(&config, &["reload"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        explain(&config, &["reload"], &out)
    );
    let err = stderr(&out);
    assert!(err.contains("missing.secret"), "no reason given: {err}");
    assert!(err.contains("deploy.toml:"), "no file:line in: {err}");
    d.wait_log("reload refused", T);
    assert_eq!(d.push("app", "refs/heads/main", SHA_A, "d-1").0, 202);
    assert_eq!(d.push("other", "refs/heads/main", SHA_A, "d-2").0, 404);
}

#[test]
fn reload_without_a_daemon_fails_and_says_so() {
    let dir = TestDir::new("reload-nodaemon");
    let script = dir.script("deploy.sh", "#!/bin/sh\ntrue\n");
    let config = write_config(&dir, "", &project("app", &script, ""));
    let out = cli(&config, &["reload"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        explain(&config, &["reload"], &out)
    );
    let err = stderr(&out);
    assert!(err.contains("no daemon answers"), "{err}");
    assert!(
        err.contains("control.sock"),
        "the socket tried is not named: {err}"
    );
}

#[test]
fn the_docs_show_what_reload_says() {
    let docs =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/commands.md")).unwrap();
    let example = docs
        .lines()
        .find_map(|l| {
            let start = l.find("`deployd: reload refused")? + 1;
            let len = l[start..].find('`')?;
            Some(l[start..start + len].to_string())
        })
        .expect("docs/commands.md's example of a refused reload");
    let dir = TestDir::new("reload-readme");
    let script = dir.script("deploy.sh", "#!/bin/sh\ntrue\n");
    let config = write_config(&dir, "", &project("myapp", &script, ""));
    let _d = Daemon::start(&config);
    let good = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{good}scirpt = \"typo\"\n")).unwrap();
    let out = cli(&config, &["reload"]);
    let (_, said) = expect_code(&out, 1, "reload");
    // The same words, but for the file's path and line, up to the docs' `…`.
    let words = |s: &str| -> (String, String) {
        let (head, rest) = s.split_once(": projects.").unwrap_or((s, ""));
        let head = head.rsplit_once(": ").map_or(head, |(h, _)| h);
        (
            head.to_string(),
            rest.trim_end_matches('…').trim_end().to_string(),
        )
    };
    let (want_head, want) = words(&example);
    let (got_head, got) = words(said.trim_end());
    assert_eq!(got_head, want_head, "docs: {example}\nsaid: {said}");
    assert!(got.starts_with(&want), "docs: {example}\nsaid: {said}");
}
