//! `deployd deploy`, `deployd rollback` and `deployd cancel`, as clients:
//! through the daemon when one answers on the control socket. With none,
//! a deploy builds its request here and hands it to the run path
//! (`run::direct`), and a cancel asks that run to stop (`run::cancel`).

use std::io::Write;

use anyhow::{Context, anyhow};

use super::{Config, Failure, Result, ask, no_daemon, project, runtime, user};
use crate::config;
use crate::daemon::control::{self, ControlRequest, Reply};
use crate::intake::ci_gate;
use crate::run::direct::{self, waiting_for};
use crate::run::{cancel as cancel_run, executor};
use crate::store::history::{self, History, Run, Status};
use crate::store::queue::{self, DeployRequest};

/// What `deploy` queues: a manual deploy, or a rollback.
pub(super) enum What {
    /// `deployd deploy`.
    Manual {
        git_ref: Option<String>,
        sha: Option<String>,
    },
    /// `deployd rollback`.
    Rollback { to: Option<u64> },
}

/// `deployd deploy` and `deployd rollback`: through the daemon when one
/// answers, else here under the project's lock.
pub(super) fn deploy(config: &Config, name: &str, what: What, wait: bool) -> Result<()> {
    let p = project(config, name)?;
    let rt = runtime()?;
    let request = match &what {
        What::Manual { git_ref, sha } => ControlRequest::Deploy {
            project: name.to_string(),
            git_ref: git_ref.clone(),
            sha: sha.clone(),
            wait,
            user: user(),
        },
        What::Rollback { to } => ControlRequest::Rollback {
            project: name.to_string(),
            to: *to,
            wait,
            user: user(),
        },
    };
    let mut result: Option<Run> = None;
    let mut error = None;
    let mut out = std::io::stdout();
    let asked = rt.block_on(control::call(
        &config.server.control_socket,
        &request,
        |reply| {
            match reply {
                Reply::Queued { behind, .. } if wait => {
                    eprintln!(
                        "deployd: {name}: queued through the daemon \
                         (Ctrl-C stops following; the run goes on in the daemon)"
                    );
                    if let Some(r) = behind {
                        eprintln!("deployd: {name}: {}", waiting_for(&r));
                    }
                }
                Reply::Queued { .. } => eprintln!("deployd: {name}: queued through the daemon"),
                Reply::Started(r) => eprintln!(
                    "deployd: {name}: run {} started (log {})",
                    r.id,
                    r.log.display()
                ),
                Reply::RollingBack(r) => eprintln!("deployd: {name}: {}", rolling_back(&r)),
                Reply::Finished(r) => result = Some(r),
                Reply::Error(e) => error = Some(e),
                Reply::Output(_) | Reply::Status(_) | Reply::Reloaded(_) | Reply::Cancelled(_) => {}
            }
            Ok(())
        },
        |bytes| {
            out.write_all(bytes)?;
            out.flush()
        },
    ));
    match asked {
        Ok(()) => {
            if let Some(e) = error {
                return Err(Failure::Runtime(anyhow!("{name}: the daemon refused: {e}")));
            }
            if !wait {
                return Ok(());
            }
            match result {
                Some(r) => finish_message(&r, p),
                None => Err(Failure::Runtime(anyhow!(
                    "the daemon closed the connection before the run ended (stopping?); \
                     see `deployd status` and `deployd history {name}`"
                ))),
            }
        }
        Err(e) if no_daemon(&e) => {
            eprintln!(
                "deployd: no daemon answers on {}; running {name} here, under its lock",
                config.server.control_socket.display()
            );
            if !wait {
                eprintln!("deployd: --no-wait needs a daemon; running in the foreground");
            }
            let req = direct_request(config, p, what)?;
            match rt.block_on(direct::deploy(&config.server, p, req, &user())) {
                Ok(run) => finish_message(&run, p),
                Err(direct::Error::NotRolledBack) => Err(Failure::Deploy),
                Err(e @ direct::Error::ForeignRoot { .. }) => Err(Failure::Usage(e.into())),
                Err(direct::Error::Other(e)) => Err(e.into()),
            }
        }
        Err(e) => Err(Failure::Runtime(anyhow!(
            "cannot talk to the daemon on {}: {e}",
            config.server.control_socket.display()
        ))),
    }
}

/// The request a deploy with no daemon runs: what the daemon would have
/// queued for `what`.
fn direct_request(config: &Config, p: &config::Project, what: What) -> Result<DeployRequest> {
    let name = p.name.as_str();
    let seq = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    Ok(match what {
        What::Manual { git_ref, sha } => {
            // `--sha` of the push that waits for its CI: that push,
            // past its CI.
            let waiting = match &sha {
                Some(sha) if !sha.is_empty() => {
                    ci_gate::bypass_on_disk(&config.server.state_dir, p, sha)
                        .context("cannot read the CI gate")?
                }
                _ => None,
            };
            match waiting {
                Some(w) => DeployRequest::new(seq, name, queue::Trigger::Manual, w.push.clone())
                    .with_ci(w.ci),
                None => DeployRequest::manual(seq, p, git_ref, sha, user())
                    .map_err(|e| Failure::Usage(anyhow!(e)))?,
            }
        }
        What::Rollback { to } => {
            let h = History::new(&config.server.state_dir, &config.server.log_dir);
            let runs = h.list(name, None)?;
            let target = history::rollback_target(&runs, to, None)
                .map_err(|why| Failure::Runtime(anyhow!("{name}: {why}")))?;
            eprintln!("deployd: {name}: {}", rolling_back(&target));
            executor::rollback_request(&target, seq, &user())
        }
    })
}

/// What a rollback deploys, in words.
fn rolling_back(target: &Run) -> String {
    format!(
        "rolling back to {} {} (the commit of run {}, {} {})",
        target.request.push.git_ref,
        target.request.push.after,
        target.id,
        target.status,
        target.started_at
    )
}

/// `deployd cancel`: through the daemon, or without one by asking the
/// `deployd deploy` that runs the project (docs/commands.md,
/// the `deployd cancel` section).
pub(super) fn cancel(config: &Config, name: &str, pending: bool) -> Result<()> {
    let p = project(config, name)?;
    let rt = runtime()?;
    let request = ControlRequest::Cancel {
        project: name.to_string(),
        pending,
        user: user(),
    };
    let answer = rt.block_on(ask(
        &config.server.control_socket,
        &request,
        |reply| match reply {
            Reply::Cancelled(c) => Some(c),
            _ => None,
        },
    ));
    let cancelled = match answer {
        Ok(Some(Ok(c))) => c,
        Ok(Some(Err(e))) => {
            return Err(Failure::Runtime(anyhow!("{name}: nothing to cancel: {e}")));
        }
        Ok(None) => {
            return Err(Failure::Runtime(anyhow!(
                "the daemon closed the connection without answering (stopping?)"
            )));
        }
        Err(e) if no_daemon(&e) => cancel_run::without_daemon(&config.server, p, pending, &user())?,
        Err(e) => {
            return Err(Failure::Runtime(anyhow!(
                "cannot talk to the daemon on {}: {e}",
                config.server.control_socket.display()
            )));
        }
    };
    say_cancelled(name, &cancelled);
    Ok(())
}

/// What a cancel stopped, on stderr.
fn say_cancelled(name: &str, c: &executor::Cancelled) {
    match c {
        executor::Cancelled::Run(r) => eprintln!(
            "deployd: {name}: run {} {} ({} {})",
            r.id,
            r.status,
            r.request.trigger,
            r.short_sha()
        ),
        executor::Cancelled::Request(q) => eprintln!(
            "deployd: {name}: request cancelled before it ran ({} {} {}, received {})",
            q.trigger,
            q.push.git_ref,
            q.push.short_sha(),
            q.received_at
        ),
    }
}

/// How a deploy ended, on stderr; a run that did not succeed fails the
/// command.
fn finish_message(run: &Run, p: &config::Project) -> Result<()> {
    eprintln!(
        "deployd: {}: run {} {}",
        run.request.project,
        run.id,
        run.ended_as(p.timeout)
    );
    if run.status == Status::Succeeded {
        Ok(())
    } else {
        Err(Failure::Deploy)
    }
}
