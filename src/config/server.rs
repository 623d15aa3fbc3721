//! The `[server]` table: the webhook listener, its limits, and where state
//! and logs live; checked from [`RawServer`] with its defaults filled in.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;

use crate::config::places::state_and_socket;
use crate::config::shape::RawServer;
use crate::config::{ConfigError, Context, MAX_DURATION};

/// `max_age` when the config does not say: GitHub lets a delivery be
/// redelivered for three days.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(72 * 3600);

/// The `[server]` table, with defaults filled in.
#[derive(Debug, Clone)]
pub struct Server {
    /// TCP address of the webhook listener (ignored under socket activation).
    pub listen: SocketAddr,
    /// Pending requests, run records, delivery ids and locks live here.
    pub state_dir: PathBuf,
    /// `<log_dir>/<project>/<run-id>.log`.
    pub log_dir: PathBuf,
    /// Largest body accepted, in bytes; GitHub never sends more than 25 MB.
    pub max_body: u64,
    /// Deploys running at once, all projects together.
    pub parallel: usize,
    /// How long a running deploy may go on after SIGTERM reached the daemon.
    pub shutdown_grace: Duration,
    /// The Unix socket the CLI talks to the daemon on.
    pub control_socket: PathBuf,
    /// Connections served at once; more are refused immediately.
    pub max_connections: usize,
    /// Deadline for a client to send the request line and headers.
    pub header_timeout: Duration,
    /// Deadline for the body once the headers are in; with `header_timeout`
    /// it bounds a whole request.
    pub request_timeout: Duration,
    /// How long an idle keep-alive connection is kept open.
    pub idle_timeout: Duration,
    /// Deliveries whose signed time is older are stale; projects inherit it.
    pub max_age: Duration,
    /// Who may call a hook; `None` is anyone. Projects inherit it.
    pub allow_from: Option<Vec<IpNet>>,
    /// Reverse proxies whose `X-Forwarded-For` / `Forwarded` say who the
    /// client is; a request from anyone else is judged by its own address.
    pub trusted_proxies: Vec<IpNet>,
}

/// `[server]` as the file gives it (or not), checked.
pub(super) fn check(s: RawServer, cx: &Context<'_>) -> Result<Server, ConfigError> {
    let listen = cx.address(&["server", "listen"], s.listen, "127.0.0.1:9000")?;
    let (state_dir, control_socket) = state_and_socket(
        &cx.base,
        s.state_dir.as_ref().map(|p| p.0.as_path()),
        s.control_socket.as_ref().map(|p| p.0.as_path()),
    );
    let server = Server {
        listen,
        log_dir: cx.resolve(
            s.log_dir
                .as_ref()
                .map_or(Path::new("/var/log/deployd"), |p| &p.0),
        ),
        control_socket,
        state_dir,
        max_body: s.max_body.map(|s| s.0).unwrap_or(25 << 20),
        parallel: s.parallel.map_or(1, |n| n.0),
        shutdown_grace: s.shutdown_grace.map_or(Duration::from_secs(60), |d| d.0),
        max_connections: s.max_connections.map_or(512, |n| n.0),
        header_timeout: s.header_timeout.map_or(Duration::from_secs(10), |d| d.0),
        request_timeout: s.request_timeout.map_or(Duration::from_secs(30), |d| d.0),
        idle_timeout: s.idle_timeout.map_or(Duration::from_secs(30), |d| d.0),
        max_age: s.max_age.map_or(DEFAULT_MAX_AGE, |d| d.0),
        allow_from: s.allow_from.map(|n| n.0),
        trusted_proxies: s.trusted_proxies.map(|n| n.0).unwrap_or_default(),
    };
    if server.max_body == 0 {
        return Err(cx.invalid(&["server", "max_body"], "must be more than 0".into()));
    }
    for (key, d) in [
        ("header_timeout", server.header_timeout),
        ("request_timeout", server.request_timeout),
        ("idle_timeout", server.idle_timeout),
        ("max_age", server.max_age),
    ] {
        if d.is_zero() {
            return Err(cx.invalid(&["server", key], "must be more than 0s".into()));
        }
    }
    for (key, d) in [
        ("shutdown_grace", server.shutdown_grace),
        ("header_timeout", server.header_timeout),
        ("request_timeout", server.request_timeout),
        ("idle_timeout", server.idle_timeout),
        ("max_age", server.max_age),
    ] {
        if d > MAX_DURATION {
            return Err(cx.invalid(&["server", key], "must be at most 100 years".into()));
        }
    }
    Ok(server)
}
