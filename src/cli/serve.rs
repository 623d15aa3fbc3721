//! `deployd serve` (the daemon itself) and `deployd reload` (asking the
//! running one to read its config again).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::anyhow;

use super::{Failure, Result, ask, outln, runtime};
use crate::config::{self, Config, ConfigError};
use crate::daemon;
use crate::daemon::control::{ControlRequest, Reply};

/// `deployd serve`: the daemon, until it is stopped.
pub(super) fn serve(config: Config) -> Result<()> {
    config
        .require_projects()
        .map_err(|e| Failure::Usage(e.into()))?;
    // One thread serves every connection; blocking work (fsync,
    // flock, children) goes to tokio's blocking threads, started on
    // demand. Against 2 and 1 multi-thread workers, on 2 CPUs shared
    // with wrk (docs/performance.md): less CPU per request, a p99 as
    // low or lower, 0.4 MB less at idle, and a flood of requests
    // takes one core at most.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let served = rt.block_on(daemon::serve(config)).map_err(Failure::Runtime);
    // A notification being sent to a hanging target must not hold
    // up the stop: it is on disk and is sent again at the next start.
    rt.shutdown_timeout(Duration::from_secs(1));
    served
}

/// Where `reload` looks for the daemon when it cannot read the config (so
/// the `control_socket` it names is unknown): the unit's socket, then the
/// default one.
const FALLBACK_SOCKETS: [&str; 2] = ["/run/deployd/control.sock", "/var/lib/deployd/control.sock"];

/// Asks the daemon to reload its config and waits for its answer.
///
/// The daemon judges the file, also when it is invalid here: it refuses it
/// and says so in its own log, where whoever watches the daemon looks (a
/// SIGHUP's refusal is logged there too). What this command found wrong
/// with the file is said only when no daemon answers.
pub(super) fn reload(path: &Path) -> Result<()> {
    let (sockets, invalid_here) = match config::load_without_secrets(path) {
        Ok(c) => (vec![c.server.control_socket], None),
        Err(ConfigError::NoConfig) => {
            return Err(Failure::Usage(anyhow!(
                "nothing to reload: {}",
                ConfigError::NoConfig
            )));
        }
        // Invalid: the daemon is found through the file's [server] table
        // alone, or at the usual places.
        Err(e @ (ConfigError::Invalid { .. } | ConfigError::NoProjects { .. })) => {
            let mut sockets: Vec<PathBuf> = config::control_socket_of(path).into_iter().collect();
            for s in FALLBACK_SOCKETS.iter().map(PathBuf::from) {
                if !sockets.contains(&s) {
                    sockets.push(s);
                }
            }
            (sockets, Some(e))
        }
        // Unreadable here (this user may not read it) is not unreadable for
        // the daemon: find the daemon at the usual places, it reads the file.
        Err(ConfigError::Read { .. }) => {
            (FALLBACK_SOCKETS.iter().map(PathBuf::from).collect(), None)
        }
    };
    let rt = runtime()?;
    let mut tried = Vec::new();
    for socket in &sockets {
        let answer = rt.block_on(ask(socket, &ControlRequest::Reload, |reply| match reply {
            Reply::Reloaded(done) => Some(done),
            _ => None,
        }));
        match answer {
            Ok(Some(Ok(done))) => {
                outln!("deployd: {done}");
                return Ok(());
            }
            Ok(Some(Err(e))) => return Err(Failure::Runtime(anyhow!("{e}"))),
            Ok(None) => {
                return Err(Failure::Runtime(anyhow!(
                    "the daemon on {} closed the connection without answering \
                     (stopping? see `systemctl status deployd`)",
                    socket.display()
                )));
            }
            Err(e) => tried.push(format!("{}: {e}", socket.display())),
        }
    }
    if let Some(e) = invalid_here {
        return Err(Failure::Runtime(anyhow!(
            "{e}\n(no daemon answers ({}), so nothing was reloaded)",
            tried.join("; ")
        )));
    }
    Err(Failure::Runtime(anyhow!(
        "no daemon answers ({}): nothing to reload. Is deployd running? \
         (`systemctl status deployd`; a socket-activated deployd starts with \
         the first delivery, and reads the config then)",
        tried.join("; ")
    )))
}
