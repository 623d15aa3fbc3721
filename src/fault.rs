//! Fault-injection points for crash and hang-up tests: with
//! `DEPLOYD_FAULT=<point>` (comma-separated for several), the daemon logs
//! `fault point <point>` and stops there, so a test can SIGKILL it, or hang
//! up on it, at exactly that moment. It stops for an hour, or, with
//! `DEPLOYD_FAULT_RELEASE=<file>`, until that file exists. Without the
//! variable every point is a no-op.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A delivery is verified and judged, its dedupe keys reserved; nothing is
/// written yet.
pub const BEFORE_WRITE: &str = "before-write";
/// A request is on disk, not yet announced, the executor not yet woken and
/// the 202 not yet sent.
pub const BEFORE_ACK: &str = "before-ack";
/// A direct run's spooled event is read, what the outbox owes for it not
/// yet written (nor the event published or its file deleted).
pub const BEFORE_OUTBOX: &str = "before-outbox";
/// The run's lock is taken, its record not yet written.
pub const BEFORE_RUN: &str = "before-run";
/// The script has exited, its final record not yet written.
pub const BEFORE_RECORD: &str = "before-record";

fn points() -> &'static [String] {
    static POINTS: OnceLock<Vec<String>> = OnceLock::new();
    POINTS.get_or_init(|| {
        std::env::var("DEPLOYD_FAULT")
            .map(|v| v.split(',').map(|s| s.trim().to_string()).collect())
            .unwrap_or_default()
    })
}

/// Whether the tests asked to pause at `name`.
pub fn armed(name: &str) -> bool {
    points().iter().any(|p| p == name)
}

/// Pauses here if the tests asked for it.
pub async fn point(name: &str) {
    if !armed(name) {
        return;
    }
    tracing::warn!("fault point {name}: pausing (DEPLOYD_FAULT)");
    let release = std::env::var_os("DEPLOYD_FAULT_RELEASE").map(PathBuf::from);
    let until = Instant::now() + Duration::from_secs(3600);
    while Instant::now() < until {
        if release.as_ref().is_some_and(|f| f.exists()) {
            tracing::warn!("fault point {name}: released");
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// [`point`] for a blocking thread (a `spawn_blocking` closure).
pub fn point_blocking(name: &str) {
    if !armed(name) {
        return;
    }
    tracing::warn!("fault point {name}: pausing (DEPLOYD_FAULT)");
    let release = std::env::var_os("DEPLOYD_FAULT_RELEASE").map(PathBuf::from);
    let until = Instant::now() + Duration::from_secs(3600);
    while Instant::now() < until && !release.as_ref().is_some_and(|f| f.exists()) {
        std::thread::sleep(Duration::from_millis(20));
    }
}
