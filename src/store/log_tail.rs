//! Reading a run's log file back while it grows: `deployd logs --follow`,
//! and a direct `deployd deploy` that shows its script's output as it runs.
//! The script writes straight into the file; this only reads it.

use std::io::{Read, Seek, Write};
use std::path::Path;
use std::time::Duration;

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
            f.seek(std::io::SeekFrom::Start(offset))?;
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
