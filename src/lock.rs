//! The per-project run lock: an exclusive `flock` on
//! `<state_dir>/locks/<project>.lock`, shared by the daemon and by a manual
//! `deployd deploy` that runs the script itself.
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
    path: PathBuf,
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
            Ok(()) => Ok(Some(RunLock {
                file,
                path: path.to_path_buf(),
            })),
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

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
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
}
