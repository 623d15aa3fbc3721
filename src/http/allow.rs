//! Who may call a hook: `allow_from` and `trusted_proxies`
//! (docs/security.md, *What deployd defends against*). Decided from the
//! connection's peer address and the request's headers alone, so that a
//! refused request is answered 403 before its body is read.
//!
//! Behind a reverse proxy the peer is the proxy. Only when the peer is one
//! of `trusted_proxies` are `Forwarded` (RFC 7239) or, without it,
//! `X-Forwarded-For` read; the client is the right-most address in them that
//! is not a trusted proxy, since each proxy appends the address it saw and
//! everything to the left of the last trusted one is whatever the client
//! chose to send. From any other peer these headers are ignored.

use std::net::IpAddr;

use hyper::HeaderMap;
use ipnet::IpNet;

/// Why a request from `peer` with `headers` may not call a hook allowing
/// `allow`, in words for the log; `None` when it may.
pub(crate) fn refused(
    allow: &[IpNet],
    trusted: &[IpNet],
    peer: IpAddr,
    headers: &HeaderMap,
) -> Option<String> {
    let peer = peer.to_canonical();
    match client(trusted, peer, headers) {
        Ok(client) if within(allow, client) => None,
        Ok(client) if client == peer => Some(format!("{client} is not in allow_from")),
        Ok(client) => Some(format!(
            "{client} (forwarded by {peer}) is not in allow_from"
        )),
        Err(why) => Some(format!("{why} (forwarded by {peer})")),
    }
}

fn within(nets: &[IpNet], addr: IpAddr) -> bool {
    nets.iter().any(|n| n.contains(&addr))
}

/// The client's address: the peer's own, or, from a trusted proxy, the
/// right-most forwarded address that is not a trusted proxy (the left-most
/// when all are). An entry that is not an address (`unknown`, an obfuscated
/// name) where the client should be is an error: it cannot be allowed.
fn client(trusted: &[IpNet], peer: IpAddr, headers: &HeaderMap) -> Result<IpAddr, String> {
    if !within(trusted, peer) {
        return Ok(peer);
    }
    let (header, chain) = forwarded_chain(headers);
    let mut client = peer;
    for entry in chain.iter().rev() {
        let Some(addr) = address(entry) else {
            return Err(format!(
                "{header} names the client {entry:?}, not an address"
            ));
        };
        client = addr.to_canonical();
        if !within(trusted, client) {
            break;
        }
    }
    Ok(client)
}

/// The forwarded addresses, left to right, and the header they came from:
/// `Forwarded`'s `for=` parameters when that header is present, else
/// `X-Forwarded-For`'s entries. Every line of the header counts, in order.
fn forwarded_chain(headers: &HeaderMap) -> (&'static str, Vec<String>) {
    let lines = |name| {
        headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect::<Vec<_>>()
    };
    let forwarded = lines("forwarded");
    if !forwarded.is_empty() {
        let chain = forwarded
            .iter()
            .flat_map(|l| l.split(','))
            .filter_map(|element| {
                element.split(';').find_map(|pair| {
                    let (k, v) = pair.split_once('=')?;
                    k.trim()
                        .eq_ignore_ascii_case("for")
                        .then(|| v.trim().trim_matches('"').to_string())
                })
            })
            .collect();
        return ("Forwarded", chain);
    }
    let chain = lines("x-forwarded-for")
        .iter()
        .flat_map(|l| l.split(','))
        .map(|e| e.trim().to_string())
        .filter(|e| !e.is_empty())
        .collect();
    ("X-Forwarded-For", chain)
}

/// An address as proxies write it: `192.0.2.1`, `192.0.2.1:4711`,
/// `2001:db8::1`, `[2001:db8::1]` or `[2001:db8::1]:4711`.
fn address(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    if let Ok(a) = entry.parse() {
        return Some(a);
    }
    if let Some(rest) = entry.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    let (host, port) = entry.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    fn h(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_peer_alone_without_trusted_proxies() {
        let allow = nets(&["140.82.112.0/20", "2a0a:a440::/29"]);
        let none = HeaderMap::new();
        assert_eq!(refused(&allow, &[], ip("140.82.115.1"), &none), None);
        assert_eq!(refused(&allow, &[], ip("2a0a:a440::1"), &none), None);
        // An IPv4 peer on a dual-stack socket is the IPv4 address.
        assert_eq!(refused(&allow, &[], ip("::ffff:140.82.115.1"), &none), None);
        assert!(refused(&allow, &[], ip("192.0.2.1"), &none).is_some());
        // A spoofed header from a peer that is not a trusted proxy counts
        // for nothing.
        let spoof = h(&[("x-forwarded-for", "140.82.115.1")]);
        let why = refused(&allow, &[], ip("192.0.2.1"), &spoof).unwrap();
        assert_eq!(why, "192.0.2.1 is not in allow_from");
        let trusted = nets(&["127.0.0.1/32"]);
        assert!(refused(&allow, &trusted, ip("192.0.2.1"), &spoof).is_some());
    }

    #[test]
    fn the_right_most_untrusted_forwarded_address() {
        let allow = nets(&["140.82.112.0/20", "2a0a:a440::/29"]);
        let trusted = nets(&["127.0.0.1/32", "::1/128", "10.0.0.0/8"]);
        let lo = ip("127.0.0.1");
        let ok = |pairs: &[(&'static str, &str)]| refused(&allow, &trusted, lo, &h(pairs));
        assert_eq!(ok(&[("x-forwarded-for", "140.82.115.1")]), None);
        // The client prepended a forged address: the proxy's entry wins.
        assert!(ok(&[("x-forwarded-for", "140.82.115.1, 192.0.2.7")]).is_some());
        // Through two trusted proxies.
        assert_eq!(
            ok(&[("x-forwarded-for", "192.0.2.7, 140.82.115.1, 10.1.2.3")]),
            None
        );
        assert_eq!(
            ok(&[
                ("x-forwarded-for", "192.0.2.7"),
                ("x-forwarded-for", "2a0a:a440::5")
            ]),
            None
        );
        // Forwarded wins over X-Forwarded-For; quoted, bracketed, with ports.
        assert_eq!(
            ok(&[
                (
                    "forwarded",
                    r#"for=192.0.2.7, for="[2a0a:a440::5]:4711";proto=https"#
                ),
                ("x-forwarded-for", "192.0.2.8"),
            ]),
            None
        );
        assert_eq!(ok(&[("forwarded", "for=140.82.115.1:80")]), None);
        let why = ok(&[("forwarded", "for=unknown")]).unwrap();
        assert!(why.contains("not an address"), "{why}");
        // The proxy itself, with nothing forwarded: judged as itself.
        assert!(ok(&[]).is_some());
        let allow_lo = nets(&["127.0.0.0/8"]);
        assert_eq!(refused(&allow_lo, &trusted, lo, &HeaderMap::new()), None);
        // IPv6 proxy.
        assert_eq!(
            refused(
                &allow,
                &trusted,
                ip("::1"),
                &h(&[("x-forwarded-for", "2a0a:a440::9")])
            ),
            None
        );
    }
}
