//! Rolling deploys over OpenSSH (docs/fleet.md), on real sshd servers: each
//! host is a network namespace of this machine with its own veth pair and
//! sshd (scripts/fleet-hosts.sh), and the deploy script checks out the
//! pushed commit from a bare repository by its path (namespaces share the
//! filesystem). Needs root: without it the tests say so loudly and pass.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::*;

const LIMIT: Duration = Duration::from_secs(60);

/// The test hosts of one test, torn down when it ends (also on a panic).
struct Hosts {
    dir: PathBuf,
    addresses: Vec<String>,
}

impl Hosts {
    /// `count` hosts in set `id`, or `None` (said loudly) when not root.
    fn up(dir: &Path, id: u32, count: u32) -> Option<Hosts> {
        if !nix_root() {
            eprintln!(
                "\n!!! SKIPPED: the fleet tests need root (network namespaces and sshd); \
                 run them as root to test deploys over ssh\n"
            );
            return None;
        }
        let net = dir.join("net");
        let out = output_of(
            Command::new(script_path())
                .arg("up")
                .arg(&net)
                .arg(id.to_string())
                .arg(count.to_string()),
        );
        let hosts = Hosts {
            dir: net,
            addresses: text(&out.stdout).lines().map(str::to_string).collect(),
        };
        assert!(
            out.status.success() && hosts.addresses.len() == count as usize,
            "cannot set up the test hosts (does this machine allow `ip netns add` and \
             veth pairs?)\n{}",
            describe("fleet-hosts.sh up", &out)
        );
        Some(hosts)
    }

    /// An inline table for host `i` (from 0), as `name` (logs in as root).
    fn table(&self, i: usize, name: &str, port: u16) -> String {
        format!(
            "{{ name = \"{name}\", address = \"{}\", user = \"root\", port = {port}, \
             identity_file = \"{}\" }}",
            self.addresses[i],
            self.dir.join("id_ed25519").display()
        )
    }

    fn known_hosts(&self) -> PathBuf {
        self.dir.join("known_hosts")
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        let _ = Command::new(script_path())
            .arg("down")
            .arg(&self.dir)
            .status();
    }
}

fn nix_root() -> bool {
    text(&output_of(Command::new("id").arg("-u")).stdout).trim() == "0"
}

fn script_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/fleet-hosts.sh")
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = output_of(Command::new("git").arg("-C").arg(dir).args(args));
    assert!(out.status.success(), "{}", describe("git", &out));
    text(&out.stdout).trim().to_string()
}

/// A bare repository with two commits; returns (its path, [sha1, sha2]).
fn repo(dir: &TestDir) -> (PathBuf, Vec<String>) {
    let work = dir.join("work");
    let bare = dir.join("app.git");
    std::fs::create_dir_all(&work).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    let mut shas = Vec::new();
    for v in ["one", "two"] {
        std::fs::write(work.join("version"), v).unwrap();
        git(&work, &["add", "version"]);
        git(
            &work,
            &[
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@e",
                "commit",
                "-qm",
                v,
            ],
        );
        shas.push(git(&work, &["rev-parse", "HEAD"]));
    }
    let out = output_of(
        Command::new("git")
            .args(["clone", "-q", "--bare"])
            .arg(&work)
            .arg(&bare),
    );
    assert!(out.status.success(), "{}", describe("git clone", &out));
    (bare, shas)
}

/// The deploy script, sent on stdin to each host: a checkout of DEPLOY_SHA
/// in `$ROOT/$DEPLOY_HOST`, a line per deploy in `$ROOT/deploys`, and a wait
/// while `$ROOT/block-$DEPLOY_HOST` exists (its pid in `$ROOT/pid-…`); a
/// rollback fails while `$ROOT/no-rollback` exists.
const DEPLOY: &str = r#"#!/bin/sh
set -eu
echo "$DEPLOY_HOST $DEPLOY_TRIGGER $DEPLOY_SHA" >> "$ROOT/deploys"
if [ "$DEPLOY_TRIGGER" = rollback ] && [ -e "$ROOT/no-rollback" ]; then
  echo "rollback refused"; exit 3
fi
t="$ROOT/$DEPLOY_HOST"
[ -d "$t/.git" ] || git clone -q "$REPO" "$t"
git -C "$t" fetch -q origin
git -C "$t" checkout -q --detach "$DEPLOY_SHA"
if [ -e "$ROOT/block-$DEPLOY_HOST" ]; then
  echo $$ > "$ROOT/pid-$DEPLOY_HOST"
  while [ -e "$ROOT/block-$DEPLOY_HOST" ]; do sleep 0.1; done
fi
echo "deployed $(cat "$t/version") on $DEPLOY_HOST at $(ip -4 -o addr show scope global | awk '{print $4}')"
"#;

fn checked_out(root: &Path, host: &str) -> String {
    git(&root.join(host), &["rev-parse", "HEAD"])
}

fn config(dir: &TestDir, hosts: &Hosts, root: &Path, repo: &Path, extra: &str) -> PathBuf {
    let script = dir.script("deploy.sh", DEPLOY);
    let fail = root.join("unhealthy");
    let table = format!(
        "hosts = [{}, {}, {}]\nknown_hosts = \"{}\"\n\
         env = {{ ROOT = \"{}\", REPO = \"{}\" }}\n\
         health_check = [\"sh\", \"-c\", \"! grep -qx \\\"$1\\\" {}\", \"sh\", \"{{host}}\"]\n\
         health_retries = 1\n{extra}",
        hosts.table(0, "web1", 22),
        hosts.table(1, "web2", 22),
        hosts.table(2, "web3", 22),
        hosts.known_hosts().display(),
        root.display(),
        repo.display(),
        fail.display(),
    );
    write_config(dir, "", &project("app", &script, &table))
}

fn host_states(run: &serde_json::Value) -> Vec<(String, String)> {
    run["hosts"]
        .as_array()
        .unwrap_or_else(|| panic!("no hosts in {run}"))
        .iter()
        .map(|h| {
            (
                h["name"].as_str().unwrap().to_string(),
                h["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn rolling_deploy_health_gate_and_rollback() {
    let dir = TestDir::new("fleet-roll");
    let Some(hosts) = Hosts::up(&dir.path, 1, 3) else {
        return;
    };
    let (bare, shas) = repo(&dir);
    let root = dir.join("www");
    std::fs::create_dir_all(&root).unwrap();
    let config = config(
        &dir,
        &hosts,
        &root,
        &bare,
        "on_host_failure = \"rollback\"\n",
    );

    // Every host gets the first commit, one after the other, each checked.
    // web2 and web3 wait at first, for `logs -f --host web2` to follow
    // web2's log while it deploys, and to stop when web2 is done though
    // the run goes on.
    std::fs::write(root.join("block-web2"), "").unwrap();
    std::fs::write(root.join("block-web3"), "").unwrap();
    let mut deploy = KillOnDrop(
        Command::new(BIN)
            .arg("-c")
            .arg(&config)
            .args(["deploy", "app", "--sha", &shas[0]])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_until(LIMIT, "web2 deploying", || root.join("pid-web2").exists());
    let follower = Command::new(BIN)
        .arg("-c")
        .arg(&config)
        .args(["logs", "app", "-f", "--host", "web2"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::fs::remove_file(root.join("block-web2")).unwrap();
    let followed = output_within(follower, LIMIT, "logs -f --host web2");
    let (own, _) = expect_code(&followed, 0, "logs -f --host web2");
    assert!(
        own.contains("deployed one on web2") && !own.contains("on web1"),
        "{own}"
    );
    assert!(
        deploy.0.try_wait().unwrap().is_none(),
        "the run ended before web3 was let go"
    );
    std::fs::remove_file(root.join("block-web3")).unwrap();
    let status = wait_exit(&mut deploy.0, LIMIT, "the first deploy", String::new);
    assert!(status.success(), "{status:?}");
    let run = &history(&config, "app")[0];
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(
        host_states(run),
        pairs(&[
            ("web1", "succeeded"),
            ("web2", "succeeded"),
            ("web3", "succeeded")
        ])
    );
    for h in ["web1", "web2", "web3"] {
        assert_eq!(checked_out(&root, h), shas[0]);
    }
    let log = cli_ok(&config, &["logs", "app"], 0);
    for (i, h) in ["web1", "web2", "web3"].iter().enumerate() {
        // Ran inside that host's namespace, its lines prefixed in the run's log.
        let line = format!("[{h}] deployed one on {h} at {}/24", hosts.addresses[i]);
        assert!(log.contains(&line), "{line:?} not in\n{log}");
    }
    let web2_log = PathBuf::from(run["hosts"][1]["log"].as_str().unwrap());
    let own = std::fs::read_to_string(&web2_log).unwrap();
    assert!(
        own.contains("deployed one on web2") && !own.contains("on web1"),
        "{own}"
    );
    assert!(
        log.find("[web1] deployed").unwrap() < log.find("health check passed").unwrap()
            && log.find("[web1] succeeded").unwrap() < log.find("[web2] deployed").unwrap(),
        "web2 started before web1 was checked:\n{log}"
    );

    // The second commit: web2's health check fails. The rollout stops,
    // web3 is never touched, web1 gets the first commit again.
    std::fs::write(root.join("unhealthy"), format!("{}\n", hosts.addresses[1])).unwrap();
    cli_ok(&config, &["deploy", "app", "--sha", &shas[1]], 1);
    let run = &history(&config, "app")[0];
    assert_eq!(run["status"], "unhealthy", "{run}");
    assert_eq!(
        host_states(run),
        pairs(&[
            ("web1", "rolled_back"),
            ("web2", "unhealthy"),
            ("web3", "skipped")
        ])
    );
    assert!(
        run["hosts"][0]["note"]
            .as_str()
            .unwrap()
            .starts_with("rolled back to"),
        "{run}"
    );
    let table = cli_ok(&config, &["history", "app"], 0);
    assert!(
        table.contains("hosts: web1 rolled_back, web2 unhealthy, web3 skipped"),
        "{table}"
    );
    assert_eq!(checked_out(&root, "web1"), shas[0]);
    assert_eq!(checked_out(&root, "web3"), shas[0]);
    let deploys = std::fs::read_to_string(root.join("deploys")).unwrap();
    assert!(
        deploys.contains(&format!("web1 rollback {}", shas[0])),
        "{deploys}"
    );
    assert!(
        !deploys.contains(&format!("web3 manual {}", shas[1])),
        "{deploys}"
    );

    // Once more, and web1's rollback fails too: it is not shown as a host
    // that got its commit back.
    std::fs::write(root.join("no-rollback"), "").unwrap();
    cli_ok(&config, &["deploy", "app", "--sha", &shas[1]], 1);
    let run = &history(&config, "app")[0];
    assert_eq!(
        host_states(run),
        pairs(&[
            ("web1", "rollback_failed"),
            ("web2", "unhealthy"),
            ("web3", "skipped")
        ])
    );
    let note = run["hosts"][0]["note"].as_str().unwrap();
    assert!(
        note.starts_with("rollback to") && note.contains("exit code 3"),
        "{run}"
    );
}

#[test]
fn unreachable_hosts_and_unknown_keys_count_as_failures() {
    let dir = TestDir::new("fleet-fail");
    let Some(hosts) = Hosts::up(&dir.path, 2, 3) else {
        return;
    };
    let (bare, shas) = repo(&dir);
    let root = dir.join("www");
    std::fs::create_dir_all(&root).unwrap();
    // web2: nothing listens on its port; web3: its key is not known.
    let known = std::fs::read_to_string(hosts.known_hosts()).unwrap();
    let first_two: Vec<&str> = known.lines().take(2).collect();
    std::fs::write(hosts.known_hosts(), first_two.join("\n") + "\n").unwrap();
    let script = dir.script("deploy.sh", DEPLOY);
    let table = format!(
        "hosts = [{}, {}, {}]\nknown_hosts = \"{}\"\nmax_failures = 2\n\
         env = {{ ROOT = \"{}\", REPO = \"{}\" }}\n",
        hosts.table(0, "web1", 22),
        hosts.table(1, "web2", 2299),
        hosts.table(2, "web3", 22),
        hosts.known_hosts().display(),
        root.display(),
        bare.display(),
    );
    let config = write_config(&dir, "", &project("app", &script, &table));
    cli_ok(&config, &["deploy", "app", "--sha", &shas[0]], 0);
    let run = &history(&config, "app")[0];
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(
        host_states(run),
        pairs(&[
            ("web1", "succeeded"),
            ("web2", "failed"),
            ("web3", "failed")
        ])
    );
    let note = |i: usize| run["hosts"][i]["note"].as_str().unwrap().to_string();
    assert!(note(1).contains("unreachable"), "{run}");
    assert!(
        note(2).contains("not in") && note(2).contains("ssh-keyscan"),
        "{run}"
    );
    assert!(
        !root.join("web3").exists(),
        "web3 ran despite its unknown key"
    );
}

#[test]
fn timeout_and_cancel_kill_the_remote_script_and_recovery_resumes_after_kill9() {
    let dir = TestDir::new("fleet-crash");
    let Some(hosts) = Hosts::up(&dir.path, 3, 3) else {
        return;
    };
    let (bare, shas) = repo(&dir);
    let root = dir.join("www");
    std::fs::create_dir_all(&root).unwrap();
    let config = config(
        &dir,
        &hosts,
        &root,
        &bare,
        "timeout = \"3s\"\nkill_grace = \"1s\"\n",
    );

    // The timeout stops ssh, and with it the script on the host.
    std::fs::write(root.join("block-web1"), "").unwrap();
    cli_ok(&config, &["deploy", "app", "--sha", &shas[0]], 1);
    let run = &history(&config, "app")[0];
    assert_eq!(run["status"], "timed_out", "{run}");
    assert_eq!(host_states(run)[0], ("web1".into(), "timed_out".into()));
    let pid: i32 = std::fs::read_to_string(root.join("pid-web1"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    wait_until(LIMIT, "the remote script gone after the timeout", || {
        !alive(pid)
    });
    std::fs::remove_file(root.join("block-web1")).unwrap();

    // kill -9 of the daemon while web2 deploys: web1 is recorded done, and
    // the recovery run deploys web2 and web3 only.
    let config = config_with_timeout(&dir, &hosts, &root, &bare);
    std::fs::write(root.join("block-web2"), "").unwrap();
    let _ = std::fs::remove_file(root.join("deploys"));
    let mut d = Daemon::start(&config);
    let deploy = Command::new(BIN)
        .arg("-c")
        .arg(&config)
        .args(["deploy", "app", "--sha", &shas[1]])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _deploy = KillOnDrop(deploy);
    wait_until(LIMIT, "web2 deploying", || root.join("pid-web2").exists());
    let pid: i32 = std::fs::read_to_string(root.join("pid-web2"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    poll(LIMIT, "web1 recorded done", || {
        let runs = history(&config, "app");
        let states = host_states(&runs[0]);
        if states[0].1 == "succeeded" && states[1].1 == "running" {
            Ok(())
        } else {
            Err(format!("{states:?}"))
        }
    });
    d.kill9();
    // The host's side ends with the daemon's ssh connection.
    wait_until(LIMIT, "web2's script gone after kill -9", || !alive(pid));
    std::fs::remove_file(root.join("block-web2")).unwrap();
    let d = Daemon::start(&config);
    let runs = poll(LIMIT, "the recovery run", || {
        let runs = history(&config, "app");
        match runs.first() {
            Some(r) if r["trigger"] == "recovery" && r["status"] == "succeeded" => Ok(runs),
            _ => Err(format!("{runs:?}")),
        }
    });
    assert_eq!(
        host_states(&runs[1]),
        pairs(&[
            ("web1", "succeeded"),
            ("web2", "interrupted"),
            ("web3", "pending")
        ])
    );
    assert_eq!(
        host_states(&runs[0]),
        pairs(&[
            ("web1", "already_done"),
            ("web2", "succeeded"),
            ("web3", "succeeded")
        ])
    );
    let deploys = std::fs::read_to_string(root.join("deploys")).unwrap();
    assert_eq!(
        deploys.matches("web1 ").count(),
        1,
        "web1 ran again:\n{deploys}"
    );
    for h in ["web1", "web2", "web3"] {
        assert_eq!(checked_out(&root, h), shas[1]);
    }

    // `deployd cancel` stops ssh, and with it the script on the host, as
    // the timeout does.
    let _ = std::fs::remove_file(root.join("pid-web1"));
    std::fs::write(root.join("block-web1"), "").unwrap();
    cli_ok(
        &config,
        &["deploy", "app", "--sha", &shas[0], "--no-wait"],
        0,
    );
    wait_until(LIMIT, "web1 deploying again", || {
        root.join("pid-web1").exists()
    });
    let pid: i32 = std::fs::read_to_string(root.join("pid-web1"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    cli_ok(&config, &["cancel", "app"], 0);
    wait_until(LIMIT, "the remote script gone after cancel", || !alive(pid));
    let run = poll(LIMIT, "the run recorded cancelled", || {
        let runs = history(&config, "app");
        match runs.first() {
            Some(r) if r["status"] == "cancelled" => Ok(r.clone()),
            _ => Err(format!("{runs:?}")),
        }
    });
    assert_eq!(host_states(&run)[0], ("web1".into(), "cancelled".into()));
    std::fs::remove_file(root.join("block-web1")).unwrap();
    drop(d);
}

/// The same project without its short timeout.
fn config_with_timeout(dir: &TestDir, hosts: &Hosts, root: &Path, repo: &Path) -> PathBuf {
    config(dir, hosts, root, repo, "")
}
