//! Running a fleet host's deploy over the real OpenSSH client (docs/fleet.md):
//! the `ssh` command line (BatchMode, known_hosts checked, ConnectTimeout,
//! one ControlMaster connection per host reused for the rollback), and the
//! remote side.
//!
//! The remote side is a small POSIX `sh` wrapper given as ssh's command. It
//! takes the script (from stdin, when the local `script` is sent, or
//! `remote_script`), runs it under `setsid` in a process group of its own
//! with the DEPLOY_* variables set by an `env VAR=value …` prefix
//! (shell-quoted here: OpenSSH's `SendEnv` would need every server's
//! `AcceptEnv`), and watches its own stdin: deployd keeps that pipe open for
//! as long as it wants the run to go on. When it closes — deployd stopped
//! the local ssh at a timeout or a cancel, or deployd itself died — the
//! watcher sends SIGTERM to the remote group, then SIGKILL after
//! `kill_grace`. A forced tty (`ssh -tt`) would only SIGHUP the foreground
//! job, which a script's children can ignore, and would mangle a script
//! sent on stdin.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::process::Command;

use crate::config::fleet::{Fleet, Host};

/// How long ssh waits for a host to answer before the host counts as
/// unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Quotes `s` for a POSIX shell: single quotes, each `'` written `'\''`.
pub fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,@+%".contains(&b))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Where the ControlMaster sockets of a project's hosts live, under the
/// daemon's state directory (`%C` keeps each path short and unique).
pub fn control_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("ssh")
}

/// The `ssh` command for `host`, up to its destination: what every call
/// to the host shares.
fn base(fleet: &Fleet, host: &Host, control_dir: &Path) -> Command {
    let mut cmd = Command::new("ssh");
    let control = control_dir.join("%C");
    cmd.arg("-T")
        .args(["-o", "BatchMode=yes"])
        .args(["-o", "StrictHostKeyChecking=yes"])
        .arg("-o")
        .arg(format!("ConnectTimeout={}", CONNECT_TIMEOUT.as_secs()))
        .args(["-o", "ControlMaster=auto"])
        .arg("-o")
        .arg(format!("ControlPath={}", control.display()))
        .args(["-o", "ControlPersist=60"])
        .args([
            "-o",
            "ServerAliveInterval=15",
            "-o",
            "ServerAliveCountMax=3",
        ]);
    if let Some(k) = &fleet.known_hosts {
        cmd.arg("-o")
            .arg(format!("UserKnownHostsFile={}", k.display()));
    }
    if let Some(id) = &host.identity_file {
        cmd.arg("-i").arg(id).args(["-o", "IdentitiesOnly=yes"]);
    }
    if let Some(p) = host.port {
        cmd.arg("-p").arg(p.to_string());
    }
    cmd
}

/// The `ssh` command that runs `remote` (see [`remote_command`]) on `host`.
pub fn command(fleet: &Fleet, host: &Host, control_dir: &Path, remote: &str) -> Command {
    let mut cmd = base(fleet, host, control_dir);
    cmd.arg("--").arg(host.destination()).arg(remote);
    cmd
}

/// The command that closes `host`'s shared connection (`ssh -O exit`), at
/// the end of a rollout.
pub fn close_master(fleet: &Fleet, host: &Host, control_dir: &Path) -> Command {
    let mut cmd = base(fleet, host, control_dir);
    cmd.args(["-O", "exit", "--"]).arg(host.destination());
    cmd
}

/// What the remote side runs: the wrapper described in the module's doc,
/// for a script of `script_len` bytes sent on stdin (`None`: `remote_script`
/// is run instead), with `env` set and `args` given, its group killed
/// `grace` after SIGTERM once stdin closes.
pub fn remote_command(
    script: RemoteScript<'_>,
    env: &[(String, String)],
    args: &[String],
    grace: Duration,
) -> String {
    let take = match script {
        RemoteScript::Sent(len) => format!(
            "head -c {len} <&3 >\"$d/script\" && chmod 700 \"$d/script\" || exit 125; \
             s=\"$d/script\"; "
        ),
        RemoteScript::Path(p) => format!("s={}; ", quote(p)),
    };
    let vars: Vec<String> = env
        .iter()
        .map(|(k, v)| quote(&format!("{k}={v}")))
        .collect();
    let wrapper = format!(
        "exec 3<&0; \
         d=$(mktemp -d \"${{TMPDIR:-/tmp}}/deployd.XXXXXX\") || exit 125; \
         trap 'rm -rf \"$d\"' EXIT; \
         {take}\
         setsid env {vars} DEPLOY_OUTPUT=\"$d/output\" \"$s\" \"$@\" </dev/null 3<&- & p=$!; \
         {{ cat >/dev/null; if [ -d \"$d\" ]; then kill -TERM -$p; sleep {grace}; \
         kill -KILL -$p; fi; }} <&3 >/dev/null 2>&1 & \
         exec 3<&-; \
         wait $p; rc=$?; kill -TERM -$p 2>/dev/null; exit $rc",
        vars = vars.join(" "),
        grace = grace.as_secs().max(1),
    );
    let mut line = format!("sh -c {} deployd", quote(&wrapper));
    for a in args {
        line.push(' ');
        line.push_str(&quote(a));
    }
    line
}

/// Where the remote script comes from.
#[derive(Debug, Clone, Copy)]
pub enum RemoteScript<'a> {
    /// The local script, this many bytes of it sent first on stdin.
    Sent(usize),
    /// A path on the host (`remote_script`).
    Path(&'a str),
}

/// Why ssh exited 255 (its own failure, not the script's), read from the
/// host's log: a sentence for the record, or `None` when the log does not
/// say.
pub fn ssh_failure(log: &str, host: &Host, fleet: &Fleet) -> Option<String> {
    let known = fleet
        .known_hosts
        .as_ref()
        .map_or("~/.ssh/known_hosts of deployd's user".to_string(), |k| {
            k.display().to_string()
        });
    if log.contains("Host key verification failed")
        || log.contains("No ED25519 host key is known")
        || log.contains("host key is known")
    {
        return Some(format!(
            "the host key of {} is not in {known} (StrictHostKeyChecking=yes): \
             check its fingerprint, then add it, e.g. ssh-keyscan{} {} >> {known}",
            host.address,
            host.port.map_or(String::new(), |p| format!(" -p {p}")),
            host.address
        ));
    }
    if log.contains("REMOTE HOST IDENTIFICATION HAS CHANGED") {
        return Some(format!(
            "the host key of {} changed since it was added to {known}: \
             find out why before you replace it",
            host.address
        ));
    }
    if log.contains("Permission denied") {
        return Some(format!(
            "{} refused the key (BatchMode: no password is asked)",
            host.destination()
        ));
    }
    [
        "Connection refused",
        "timed out",
        "No route to host",
        "Could not resolve",
    ]
    .iter()
    .find(|m| log.contains(**m))
    .map(|m| format!("{} is unreachable ({m})", host.address))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote("abc"), "abc");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("it's a $x"), r"'it'\''s a $x'");
    }

    #[test]
    fn the_wrapper_runs_in_sh() {
        // The quoting survives a real shell: the wrapper is given to sh as
        // ssh would give it to the login shell.
        let env = vec![(
            "DEPLOY_MESSAGE".to_string(),
            "it's \"here\" $HOME".to_string(),
        )];
        let line = remote_command(
            RemoteScript::Path("/bin/sh"),
            &env,
            &[
                "-c".into(),
                "echo \"$DEPLOY_MESSAGE|$1\"; exit 3".into(),
                "sh".into(),
                "x y".into(),
            ],
            Duration::from_secs(1),
        );
        // stdin held open: its end is what stops the script.
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg(&line)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let out = child.wait_with_output().unwrap();
        drop(stdin);
        assert_eq!(out.status.code(), Some(3), "{line}\n{out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "it's \"here\" $HOME|x y\n"
        );
    }

    #[test]
    fn closing_stdin_kills_the_remote_group() {
        let dir = std::env::temp_dir().join(format!("deployd-ssh-wrapper-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pidfile = dir.join("pid");
        let line = remote_command(
            RemoteScript::Path("/bin/sh"),
            &[],
            &[
                "-c".into(),
                format!("echo $$ > {}; sleep 30 & wait", pidfile.display()),
                "sh".into(),
            ],
            Duration::from_secs(1),
        );
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg(&line)
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let start = std::time::Instant::now();
        let pid = loop {
            if let Some(p) = std::fs::read_to_string(&pidfile)
                .ok()
                .and_then(|t| t.trim().parse::<i32>().ok())
            {
                break p;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the script never started"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        // What ssh does when deployd stops it or dies: the stdin pipe closes.
        drop(child.stdin.take());
        let status = child.wait().unwrap();
        assert!(!status.success());
        let gone = |p: i32| {
            std::fs::read_to_string(format!("/proc/{p}/stat")).map_or(true, |s| {
                s.split(") ").nth(1).is_some_and(|r| r.starts_with('Z'))
            })
        };
        while !gone(pid) {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the script survived"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
