//! `kind = "command"`: a local program (no shell) with the JSON document on
//! stdin and `DEPLOY_EVENT` in its environment — for mail, Matrix, anything.
//! Exit status 0 is delivered; anything else, or running past `timeout`
//! (then it is killed), is tried again later.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::Document;
use crate::config::NotifyTarget;
use crate::http_client::Attempt;

/// Runs the target's command for `doc` (blocking, at most its timeout).
pub fn run(target: &NotifyTarget, doc: &Document) -> Attempt {
    let Some((program, args)) = target.command.split_first() else {
        return refused("no command configured".into());
    };
    let body = serde_json::to_vec(doc).unwrap_or_default();
    let mut child = match Command::new(program)
        .args(args)
        .env("DEPLOY_EVENT", &doc.event)
        .env("DEPLOY_PROJECT", &doc.project)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
    {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return refused(format!("cannot start {program}: {e}"));
        }
        Err(e) => {
            return Attempt::Retry {
                error: format!("cannot start {program}: {e}"),
                after: None,
            };
        }
    };
    // Written from a thread: a command that does not read its stdin must
    // not hold up the timeout.
    if let Some(mut stdin) = child.stdin.take() {
        std::thread::spawn(move || {
            let _ = stdin.write_all(&body);
        });
    }
    let deadline = Instant::now() + target.timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if Instant::now() >= deadline => break None,
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(_) => break None,
        }
    };
    let Some(status) = status else {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = child.wait();
        return Attempt::Retry {
            error: format!(
                "{program} ran longer than {} and was killed",
                humantime::format_duration(target.timeout)
            ),
            after: None,
        };
    };
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = (&mut e).take(2048).read_to_string(&mut err);
    }
    let err = err.trim().replace('\n', " ");
    if status.success() {
        Attempt::Delivered(format!("{program} exited 0"))
    } else {
        Attempt::Retry {
            error: format!("{program} exited with {status}: {err}"),
            after: None,
        }
    }
}

fn refused(error: String) -> Attempt {
    Attempt::Refused {
        error,
        hint: "check the target's command".into(),
    }
}
