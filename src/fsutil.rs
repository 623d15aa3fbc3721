//! Small filesystem helpers with the durability rules deployd promises:
//! a file is written to a temporary name, fsynced, renamed over the real
//! name, and the directory fsynced, so a crash leaves the old or the new
//! content, never half of one.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

// Every mode deployd gives what it creates is decided here, for the daemon
// and for a `deployd deploy` that runs the script itself alike
// (docs/security.md, *What deployd defends against*: state files 0600 in
// 0700 directories, logs 0640 in 0750 directories).

/// Mode of state files: they name deliveries and commits, nothing for others.
pub const STATE_MODE: u32 = 0o600;
/// Mode of the directories under `state_dir` (queue, runs, locks).
pub const STATE_DIR_MODE: u32 = 0o700;
/// Mode of run logs: readable by the deployd group (operators).
pub const LOG_MODE: u32 = 0o640;
/// Mode of `log_dir` and the directories under it.
pub const LOG_DIR_MODE: u32 = 0o750;
/// Mode of `state_dir` itself and of the control socket's directory: the
/// deployd group may pass through to reach the control socket.
pub const TOP_DIR_MODE: u32 = 0o750;

/// Writes `data` to `path` durably (temp file, fsync, rename, fsync dir).
pub fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path without a file name"))?;
    let tmp = dir.join(format!(".{}.tmp", name.to_string_lossy()));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(STATE_MODE)
            .open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Fsyncs a directory, making a rename or removal in it durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Creates `dir` and whichever of its parents are missing, each with `mode`
/// exactly (whatever the umask). Directories that exist are left as they are.
pub fn create_dir(dir: &Path, mode: u32) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_dir(parent, mode)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => fs::set_permissions(dir, fs::Permissions::from_mode(mode)),
        // Created meanwhile by another process (a daemon and a direct deploy).
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(e),
    }
}

/// Creates `state_dir` and `log_dir` if they are missing: what the daemon and
/// a direct `deployd deploy` both do first.
pub fn create_top_dirs(state_dir: &Path, log_dir: &Path) -> io::Result<()> {
    create_dir(state_dir, TOP_DIR_MODE).map_err(|e| with_path(e, "state_dir", state_dir))?;
    create_dir(log_dir, LOG_DIR_MODE).map_err(|e| with_path(e, "log_dir", log_dir))
}

fn with_path(e: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(
        e.kind(),
        format!("cannot create {what} {}: {e}", path.display()),
    )
}

/// Now, as RFC 3339 in UTC with millisecond precision (so durations
/// computed from a record's times are right to the millisecond).
pub fn now_rfc3339() -> String {
    rfc3339(std::time::SystemTime::now())
}

/// `t` as a record timestamp: RFC 3339 in UTC, milliseconds.
pub fn rfc3339(t: std::time::SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

#[cfg(test)]
pub(crate) mod tests {
    use std::path::PathBuf;

    /// A path of this test process's own under the temporary directory
    /// (`deployd-NAME-PID`), with nothing left there by an earlier run: not
    /// created, for the tests of what happens when it is missing.
    pub(crate) fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("deployd-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }
}
