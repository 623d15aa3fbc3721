//! The config as `check` and `serve` see it: what is refused before a run
//! would fail, with file, line and key (README, "Configuration"), and how
//! deployd says where a config is looked for.

// Helpers here and in common/ are test code: a panic is the failure report.

use crate::common;
use common::*;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The 1-based line of `config` that contains `needle`.
fn line_of(config: &Path, needle: &str) -> usize {
    std::fs::read_to_string(config)
        .unwrap()
        .lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} not in {}", config.display()))
        + 1
}

/// Asserts `deployd check` and `deployd serve` both refuse `config` with
/// exit 2 and a message naming `file:line:`, `key` and each of `words`.
fn refused(config: &Path, line: usize, key: &str, words: &[&str]) {
    for command in ["check", "serve"] {
        let out = cli(config, &[command]);
        let (_, stderr) = expect_code(&out, 2, &format!("{command} with a bad {key}"));
        let place = format!("{}:{line}: {key}: ", config.display());
        assert!(
            stderr.contains(&place),
            "{command}: the error should start with {place:?}:\n{stderr}"
        );
        for w in words {
            assert!(
                stderr.contains(w),
                "{command}: the error should say {w:?}:\n{stderr}"
            );
        }
    }
}

#[test]
fn a_script_that_cannot_be_executed_is_refused_before_any_run() {
    let dir = TestDir::new("config-script");
    let script = dir.script("deploy.sh", "#!/bin/sh\ntrue\n");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();
    let config = write_config(&dir, "", &project("app", &script, ""));
    refused(
        &config,
        line_of(&config, "script ="),
        "projects.app.script",
        &[&script.display().to_string(), "not executable", "chmod +x"],
    );

    // A directory is not a script, even an executable one.
    std::fs::create_dir(dir.join("scripts.d")).unwrap();
    let config = write_config(
        &dir,
        "",
        &project("app", &dir.join("scripts.d"), "# a directory"),
    );
    refused(
        &config,
        line_of(&config, "script ="),
        "projects.app.script",
        &["scripts.d", "not a file"],
    );

    // Executable, but its #! names an interpreter that is not there: exec
    // would fail with "No such file or directory" about a script that exists.
    let odd = dir.script("odd.sh", "#!/no/such/interpreter -e\ntrue\n");
    let config = write_config(&dir, "", &project("app", &odd, ""));
    refused(
        &config,
        line_of(&config, "script ="),
        "projects.app.script",
        &["#!/no/such/interpreter", "not an executable file"],
    );

    // The same when the '\r' of Windows line ends is part of the name.
    let crlf = dir.script("crlf.sh", "#!/bin/sh\r\ntrue\r\n");
    let config = write_config(&dir, "", &project("app", &crlf, ""));
    refused(
        &config,
        line_of(&config, "script ="),
        "projects.app.script",
        &["#!/bin/sh,", "Windows line ends"],
    );

    // Relative to the config's directory, as the runner will execute it:
    // executable there, so accepted wherever check runs from.
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = write_config(
        &dir,
        "",
        "[projects.app]\nsecret_env = \"S\"\nscript = \"deploy.sh\"\n",
    );
    let out = output_of(
        Command::new(BIN)
            .args(["-c", config.to_str().unwrap(), "check"])
            .current_dir("/")
            .env("S", "a-secret"),
    );
    let (stdout, _) = expect_code(&out, 0, "check with a relative, executable script");
    assert!(
        stdout.contains(&format!("script {}", script.display())),
        "{stdout}"
    );
}

#[test]
fn a_working_dir_that_is_not_a_directory_is_refused_before_any_run() {
    let dir = TestDir::new("config-workdir");
    let script = dir.script("deploy.sh", "#!/bin/sh\ntrue\n");
    let config = write_config(
        &dir,
        "",
        &project("app", &script, "working_dir = \"no-such-dir\""),
    );
    let missing = dir.join("no-such-dir").display().to_string();
    refused(
        &config,
        line_of(&config, "working_dir"),
        "projects.app.working_dir",
        &[&missing, "does not exist"],
    );

    std::fs::write(dir.join("plain-file"), "").unwrap();
    let config = write_config(
        &dir,
        "",
        &project("app", &script, "working_dir = \"plain-file\""),
    );
    refused(
        &config,
        line_of(&config, "working_dir"),
        "projects.app.working_dir",
        &["plain-file", "not a directory"],
    );

    std::fs::create_dir(dir.join("checkout")).unwrap();
    let config = write_config(
        &dir,
        "",
        &project("app", &script, "working_dir = \"checkout\""),
    );
    expect_code(
        &cli(&config, &["check"]),
        0,
        "check with a real working_dir",
    );
}

#[test]
fn repository_must_be_owner_and_name() {
    let dir = TestDir::new("config-repository");
    let script = dir.script("deploy.sh", "#!/bin/sh\ntrue\n");
    for bad in [
        "notaslash",
        "acme/",
        "/app",
        "acme//app",
        "https://github.com/acme/app",
    ] {
        let config = write_config(
            &dir,
            "",
            &format!(
                "[projects.app]\nsecret = \"{SECRET}\"\nscript = \"{}\"\nrepository = \"{bad}\"\n",
                script.display()
            ),
        );
        refused(
            &config,
            line_of(&config, "repository ="),
            "projects.app.repository",
            &[bad, "owner/name"],
        );
    }
    // GitLab groups nest: group/subgroup/name is a repository too.
    for good in ["acme/app", "group/sub/app"] {
        let config = write_config(
            &dir,
            "",
            &format!(
                "[projects.app]\nsecret = \"{SECRET}\"\nscript = \"{}\"\nrepository = \"{good}\"\n",
                script.display()
            ),
        );
        let out = cli_ok(&config, &["check"], 0);
        assert!(out.contains(&format!("of {good};")), "{out}");
    }
}

#[test]
fn a_config_without_projects_warns_in_check_and_stops_serve() {
    let dir = TestDir::new("config-empty");
    let config = write_config(&dir, "", "");
    let (stdout, stderr) = expect_code(&cli(&config, &["check"]), 0, "check of no projects");
    assert!(stdout.contains("OK, 0 project(s)"), "{stdout}");
    assert!(
        stderr.contains("warning:") && stderr.contains("no projects"),
        "check should warn that nothing will deploy:\n{stderr}"
    );
    assert!(stderr.contains("[projects."), "say what to add:\n{stderr}");

    let out = cli(&config, &["serve"]);
    let (_, stderr) = expect_code(&out, 2, "serve of no projects");
    assert!(
        stderr.contains(&config.display().to_string()) && stderr.contains("no projects"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("listening"),
        "refused before listening:\n{stderr}"
    );
}

#[test]
fn a_reload_to_no_projects_is_refused() {
    let dir = TestDir::new("config-reload-empty");
    let script = dir.script("deploy.sh", "#!/bin/sh\ntrue\n");
    let config = write_config(&dir, "", &project("app", &script, ""));
    let d = Daemon::start(&config);
    write_config(&dir, "", "");
    d.signal("HUP");
    d.wait_log("reload refused", Duration::from_secs(20));
    assert!(d.log().contains("no projects"), "{}", d.log());
    // The old config still serves its project.
    assert_eq!(
        d.push("app", "refs/heads/main", SHA_A, "reload-empty-1").0,
        202
    );
}

#[test]
fn no_config_anywhere_says_how_to_give_one() {
    let default = Path::new("/etc/deployd/deploy.toml");
    if default.exists() {
        eprintln!("skipped: {} exists on this machine", default.display());
        return;
    }
    let out = output_of(
        Command::new(BIN)
            .arg("check")
            .env_remove("DEPLOYD_CONFIG")
            .stdin(Stdio::null()),
    );
    let (_, stderr) = expect_code(&out, 2, "check without any config");
    for w in [
        "/etc/deployd/deploy.toml",
        "-c FILE",
        "DEPLOYD_CONFIG",
        "deploy.example.toml",
    ] {
        assert!(stderr.contains(w), "should say {w:?}:\n{stderr}");
    }
    assert!(
        !stderr.contains("os error"),
        "no raw OS error for a missing default:\n{stderr}"
    );
}

#[test]
fn names_and_keys_are_shown_where_they_are_written() {
    let dir = TestDir::new("config-names");
    let script = dir.script("deploy.sh", "#!/bin/sh\ntrue\n");
    let table = |name: &str, extra: &str| {
        format!(
            "[projects.{name:?}]\nsecret = \"{SECRET}\"\nscript = \"{}\"\n{extra}\n",
            script.display()
        )
    };
    for (name, problem) in [
        (".hidden", "starts with a dot"),
        ("my app", "holds a space"),
    ] {
        let config = write_config(&dir, "", &table(name, ""));
        refused(
            &config,
            line_of(&config, "[projects."),
            &format!("projects.{name:?}"),
            &[problem],
        );
    }
    // A name with a dot is allowed; a key under it keeps its quotes.
    let config = write_config(&dir, "", &table("my.app", "timeout = 15"));
    refused(
        &config,
        line_of(&config, "timeout"),
        "projects.\"my.app\".timeout",
        &["expected a duration such as \"15m\" or \"90s\", found the number 15"],
    );
}

#[test]
fn a_missing_config_file_says_how_to_name_one() {
    let dir = TestDir::new("config-missing-file");
    let missing = dir.join("nothere.toml");
    let out = Command::new(BIN)
        .arg("-c")
        .arg(&missing)
        .arg("status")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let (_, stderr) = expect_code(&out, 2, "status with a missing -c file");
    assert!(
        stderr.contains(&format!("{}: No such file or directory", missing.display()))
            && stderr.contains("-c FILE")
            && !stderr.contains("os error"),
        "{stderr}"
    );
}
