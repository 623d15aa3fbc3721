//! The per-project run lock: an exclusive `flock` on
//! `<state_dir>/locks/<project>.lock`, shared by the daemon and by a manual
//! `deployd deploy` that runs the script itself. And the daemon's lock on
//! its whole state directory ([`StateLock`]): one daemon per `state_dir`.
//!
//! The lock lives on an open file description. The run's script inherits a
//! descriptor of it (see [`RunLock::inheritable`]), so the lock stays held
//! while any process of the run lives — even when the daemon that took it
//! has died. A new daemon trying to run the project waits until the orphaned
//! run is gone instead of starting a second run on top of it.

use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::fsutil;

/// How often a waiting run retries the lock. Polling keeps the wait
/// cancellable and off the blocking thread pool.
const POLL: Duration = Duration::from_millis(100);

/// A held run lock; released when dropped (and every inherited copy closed).
#[derive(Debug)]
pub struct RunLock {
    file: File,
}

/// The lock file of `project`.
pub fn path(state_dir: &Path, project: &str) -> PathBuf {
    state_dir.join("locks").join(format!("{project}.lock"))
}

impl RunLock {
    /// Takes the lock if it is free, without waiting.
    pub fn try_acquire(path: &Path) -> io::Result<Option<RunLock>> {
        if let Some(dir) = path.parent() {
            fsutil::create_dir(dir, fsutil::STATE_DIR_MODE)?;
        }
        // A fresh open each time: flock is per open file description, and a
        // second lock on the same description would wrongly succeed.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(fsutil::STATE_MODE)
            .open(path)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(RunLock { file })),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(e)) => Err(e),
        }
    }

    /// Waits for the lock, calling `waiting` once if it is held, and giving
    /// up with `None` when `cancel` resolves first.
    pub async fn acquire(
        path: &Path,
        waiting: impl FnOnce(),
        cancel: impl std::future::Future<Output = ()>,
    ) -> io::Result<Option<RunLock>> {
        let mut waiting = Some(waiting);
        tokio::pin!(cancel);
        loop {
            if let Some(lock) = RunLock::try_acquire(path)? {
                return Ok(Some(lock));
            }
            if let Some(w) = waiting.take() {
                w();
            }
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = &mut cancel => return Ok(None),
            }
        }
    }

    /// Whether some run holds the lock of `path` right now.
    pub fn is_held(path: &Path) -> bool {
        matches!(RunLock::try_acquire(path), Ok(None))
    }

    /// A duplicate of the locked descriptor without close-on-exec, for the
    /// script to inherit: the lock then lasts as long as the run's processes.
    pub fn inheritable(&self) -> io::Result<OwnedFd> {
        // dup(2) never copies FD_CLOEXEC, so the duplicate survives exec.
        Ok(nix::unistd::dup(&self.file)?)
    }
}

/// The daemon's hold on its `state_dir`: an exclusive `flock` on
/// `<state_dir>/daemon.lock`, taken at start and kept for the daemon's
/// lifetime, so that two daemons never share a queue and run the same
/// request twice. The kernel releases it when the daemon dies, however it
/// dies. The descriptor is close-on-exec: a run's script does not keep it
/// (the per-project run lock is what outlives a daemon). A direct `deployd
/// deploy` does not take it; it works under the run lock alone.
#[derive(Debug)]
pub struct StateLock {
    _file: File,
}

/// Why [`StateLock::acquire`] failed.
#[derive(Debug, thiserror::Error)]
pub enum StateLockError {
    /// Another process holds the lock.
    #[error(
        "another deployd ({holder}) uses {state_dir}; \
         stop it first (`systemctl stop deployd`, or `kill {pid}`), \
         or give this one a config with another state_dir",
        state_dir = .state_dir.display(),
        pid = .pid.map(|p| p.to_string()).unwrap_or_else(|| "PID".into()),
    )]
    Held {
        /// The state directory.
        state_dir: PathBuf,
        /// The holder's pid, as it wrote it.
        pid: Option<u32>,
        /// How to name the holder: `pid N, control socket S`.
        holder: String,
    },
    /// The lock file could not be opened, locked or written.
    #[error("cannot lock {}: {source}", .path.display())]
    Io {
        /// The lock file.
        path: PathBuf,
        /// What failed.
        source: io::Error,
    },
}

impl StateLock {
    /// The lock file of `state_dir`.
    pub fn path(state_dir: &Path) -> PathBuf {
        state_dir.join("daemon.lock")
    }

    /// Takes the lock without waiting and writes this process's pid and
    /// `control_socket` into it, for whoever finds it held.
    pub fn acquire(state_dir: &Path, control_socket: &Path) -> Result<StateLock, StateLockError> {
        use std::io::{Read, Seek, Write};
        let path = StateLock::path(state_dir);
        let io_err = |source| StateLockError::Io {
            path: path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(fsutil::STATE_MODE)
            .open(&path)
            .map_err(io_err)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                let mut lines = text.lines();
                let pid = lines.next().and_then(|l| l.trim().parse::<u32>().ok());
                let socket = lines.next().map(str::trim).filter(|s| !s.is_empty());
                let holder = match (pid, socket) {
                    (Some(p), Some(s)) => format!("pid {p}, control socket {s}"),
                    (Some(p), None) => format!("pid {p}"),
                    // Locked but not yet written: it is starting right now.
                    _ => "starting".into(),
                };
                return Err(StateLockError::Held {
                    state_dir: state_dir.to_path_buf(),
                    pid,
                    holder,
                });
            }
            Err(TryLockError::Error(e)) => return Err(io_err(e)),
        }
        let text = format!("{}\n{}\n", std::process::id(), control_socket.display());
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(text.as_bytes()))
            .map_err(io_err)?;
        Ok(StateLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive_until_dropped() {
        let dir = std::env::temp_dir().join(format!("deployd-lock-{}", std::process::id()));
        let p = path(&dir, "app");
        let held = RunLock::try_acquire(&p).unwrap().expect("free at first");
        assert!(RunLock::is_held(&p));
        assert!(RunLock::try_acquire(&p).unwrap().is_none());
        // A duplicate keeps it held after the original is gone.
        let dup = held.inheritable().unwrap();
        drop(held);
        assert!(RunLock::is_held(&p));
        drop(dup);
        assert!(!RunLock::is_held(&p));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn state_lock_names_its_holder() {
        let dir = std::env::temp_dir().join(format!("deployd-state-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let held = StateLock::acquire(&dir, Path::new("/run/a.sock")).unwrap();
        let err = StateLock::acquire(&dir, Path::new("/run/b.sock")).unwrap_err();
        let msg = err.to_string();
        let me = std::process::id();
        assert!(
            msg.contains(&format!("pid {me}, control socket /run/a.sock")),
            "{msg}"
        );
        assert!(msg.contains(&format!("kill {me}")), "{msg}");
        drop(held);
        // Free again once dropped. A child another test forks at that moment
        // holds a copy of the descriptor until its exec closes it, so the
        // lock is asked for again over a bounded while.
        let again = (0..100)
            .find_map(|_| {
                let got = StateLock::acquire(&dir, Path::new("/run/b.sock")).ok();
                if got.is_none() {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                got
            })
            .expect("the state lock is free once its holder is dropped");
        drop(again);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
