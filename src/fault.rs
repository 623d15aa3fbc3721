//! Fault-injection points for crash tests: with `DEPLOYD_FAULT=<point>`
//! (comma-separated for several), the daemon logs `fault point <point>` and
//! stops there for an hour, so a test can SIGKILL it at exactly that moment.
//! Without the variable every point is a no-op.

use std::sync::OnceLock;
use std::time::Duration;

/// The request is on disk, the 202 not yet sent.
pub const BEFORE_ACK: &str = "before-ack";
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

/// Pauses here if the tests asked for it.
pub async fn point(name: &str) {
    if points().iter().any(|p| p == name) {
        tracing::warn!("fault point {name}: pausing (DEPLOYD_FAULT)");
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
}
