//! systemd integration without a systemd library: readiness and status
//! notifications over `$NOTIFY_SOCKET` (a path or an abstract `@name`), the
//! watchdog, and a socket passed by socket activation (`LISTEN_FDS`).
//!
//! Everything here is a no-op when not run by systemd.

use std::io;
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// Sends one notification (`READY=1`, `STATUS=…`, …); silently nothing when
/// `$NOTIFY_SOCKET` is unset.
pub fn notify(state: &str) {
    if let Some(path) = std::env::var_os("NOTIFY_SOCKET")
        && let Err(e) = send(&path.to_string_lossy(), state)
    {
        tracing::debug!("sd_notify {state:?} failed: {e}");
    }
}

fn send(path: &str, state: &str) -> io::Result<()> {
    let sock = UnixDatagram::unbound()?;
    if let Some(name) = path.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
        sock.send_to_addr(state.as_bytes(), &addr)?;
    } else {
        sock.send_to(state.as_bytes(), path)?;
    }
    Ok(())
}

/// Whether systemd listens for notifications (`$NOTIFY_SOCKET` is set).
pub fn enabled() -> bool {
    std::env::var_os("NOTIFY_SOCKET").is_some()
}

/// `RELOADING=1` with the `MONOTONIC_USEC` systemd wants beside it.
pub fn reloading() {
    let usec = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| t.tv_sec() as u64 * 1_000_000 + t.tv_nsec() as u64 / 1000)
        .unwrap_or(0);
    notify(&format!("RELOADING=1\nMONOTONIC_USEC={usec}"));
}

/// Half the watchdog interval, when systemd asked for pings.
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID")
        && pid.parse::<u32>().ok() != Some(std::process::id())
    {
        return None;
    }
    // A nonsensical WatchdogSec of a few microseconds must not make the
    // status loop spin.
    (usec > 0).then(|| Duration::from_micros(usec / 2).max(Duration::from_millis(100)))
}

/// The listening socket systemd passed, if any (fd 3, `LISTEN_PID` ours),
/// made non-blocking for tokio.
pub fn activated_listener() -> io::Result<Option<std::net::TcpListener>> {
    // Only sockets passed to this very process: a LISTEN_FDS inherited by
    // accident (no LISTEN_PID, or another pid's) is not ours to take.
    let ours = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        == Some(std::process::id());
    if !ours {
        return Ok(None);
    }
    let mut fds = listenfd::ListenFd::from_env();
    let listener = fds.take_tcp_listener(0)?;
    if let Some(l) = &listener {
        l.set_nonblocking(true)?;
    }
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifies_path_and_abstract_sockets() {
        let dir = std::env::temp_dir().join(format!("deployd-notify-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify.sock");
        let rx = UnixDatagram::bind(&path).unwrap();
        send(path.to_str().unwrap(), "READY=1").unwrap();
        let mut buf = [0u8; 64];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");

        use std::os::linux::net::SocketAddrExt;
        let name = format!("deployd-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let rx = UnixDatagram::bind_addr(&addr).unwrap();
        send(&format!("@{name}"), "STATUS=idle").unwrap();
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STATUS=idle");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
