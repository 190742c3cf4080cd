//! Network addresses: `host:port` strings of peers and the sockets the node listens on.

use std::net::SocketAddr;

use crate::error::ConfigError;

/// Checks a `host:port` address of another node or region: a DNS name, an IPv4 address, or a
/// bracketed IPv6 address (`[::1]:7000`), and a port in 1..=65535. Names are not resolved here.
pub(crate) fn check_host_port(field: &str, address: &str) -> Result<(), ConfigError> {
    let bad = |reason: &str| Err(ConfigError::invalid(field, format!("{address:?} is not host:port ({reason})")));
    let Some((host, port)) = address.rsplit_once(':') else {
        return bad("no port");
    };
    match port.parse::<u16>() {
        Ok(0) => return bad("port 0"),
        Ok(_) => {}
        Err(_) => return bad("port is not a number in 1..=65535"),
    }
    if let Some(inner) = host.strip_prefix('[') {
        return match inner.strip_suffix(']').map(str::parse::<std::net::Ipv6Addr>) {
            Some(Ok(_)) => Ok(()),
            _ => bad("bad bracketed IPv6 address"),
        };
    }
    if host.is_empty() {
        return bad("empty host");
    }
    if host.len() > 253 {
        return bad("host longer than 253 characters");
    }
    if !host.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.') {
        return bad("host may only hold letters, digits, '-' and '.'; write IPv6 as [addr]");
    }
    Ok(())
}

/// Whether two listen addresses would collide: the same port on the same IP, or on any IP when
/// one of them is the unspecified address (`0.0.0.0`, `::`). Port 0 (let the OS choose) never
/// collides.
pub(crate) fn listen_conflict(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() != 0 && a.port() == b.port() && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_forms() {
        for ok in ["127.0.0.1:7000", "node-1.us-east.internal:7000", "[::1]:7000", "h:65535"] {
            assert!(check_host_port("f", ok).is_ok(), "{ok}");
        }
        for bad in
            ["", "127.0.0.1", ":7000", "h:0", "h:65536", "h:x", "::1:7000", "[::1:7000", "[nope]:7000", "h st:7000"]
        {
            assert!(check_host_port("f", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn listen_conflicts() {
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert!(listen_conflict(a("127.0.0.1:80"), a("127.0.0.1:80")));
        assert!(listen_conflict(a("0.0.0.0:80"), a("127.0.0.1:80")));
        assert!(listen_conflict(a("10.0.0.1:80"), a("[::]:80")));
        assert!(!listen_conflict(a("127.0.0.1:80"), a("127.0.0.2:80")));
        assert!(!listen_conflict(a("127.0.0.1:80"), a("127.0.0.1:81")));
        assert!(!listen_conflict(a("127.0.0.1:0"), a("127.0.0.1:0")));
    }
}
