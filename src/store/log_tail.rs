//! Reading a run's log file back while it grows: `deployd logs --follow`,
//! a direct `deployd deploy` that shows its script's output as it runs, the
//! status page's live log, and a fleet host's log copied into its run's.
//! The script writes straight into the file; this only reads it.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::Duration;

/// The most [`read_lines`] reads at once.
pub(crate) const CHUNK: usize = 32 * 1024;

/// How often a growing log is read again.
const POLL: Duration = Duration::from_millis(100);

/// Copies `log` to `out` as it grows, until `done()` says the run ended
/// (then once more, for the last lines).
pub(crate) async fn follow(
    log: &Path,
    out: &mut impl Write,
    mut done: impl FnMut() -> bool,
) -> std::io::Result<()> {
    let mut offset = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let finished = done();
        if let Ok(mut f) = std::fs::File::open(log) {
            f.seek(SeekFrom::Start(offset))?;
            // A piece at a time: a log of any size costs one buffer.
            loop {
                let n = f.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                offset += n as u64;
                out.write_all(&buf[..n])?;
            }
            out.flush()?;
        } else if finished {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("log {} is gone", log.display()),
            ));
        }
        if finished {
            return Ok(());
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Up to [`CHUNK`] bytes of `path` from `offset`, cut after the last
/// newline; a partial last line only when `all` (the run ended) or when a
/// whole chunk holds no newline.
pub(crate) fn read_lines(path: &Path, offset: u64, all: bool) -> Vec<u8> {
    let Ok(mut f) = std::fs::File::open(path) else {
        return Vec::new();
    };
    if f.seek(SeekFrom::Start(offset)).is_err() {
        return Vec::new();
    }
    let mut buf = Vec::with_capacity(CHUNK);
    if f.take(CHUNK as u64).read_to_end(&mut buf).is_err() {
        return Vec::new();
    }
    if all || buf.len() == CHUNK && !buf.contains(&b'\n') {
        return buf;
    }
    match buf.iter().rposition(|&b| b == b'\n') {
        Some(i) => {
            buf.truncate(i + 1);
            buf
        }
        None => Vec::new(),
    }
}
