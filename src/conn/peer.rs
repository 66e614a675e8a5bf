//! A peer address in 20 bytes instead of `SocketAddr`'s 32 (no IPv6 flow info or scope:
//! the server only shows and groups addresses). Kept in every connection and session.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// A peer's IP address and port; prints as its `SocketAddr` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Peer {
    ip: IpAddr,
    port: u16,
}

impl Peer {
    /// 0.0.0.0:0, for a restored record whose address does not parse.
    pub const UNKNOWN: Peer = Peer {
        ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        port: 0,
    };

    /// The IP address.
    pub fn ip(&self) -> IpAddr {
        self.ip
    }

    /// As a `SocketAddr` (IPv6 flow info and scope 0).
    pub fn socket_addr(&self) -> SocketAddr {
        SocketAddr::new(self.ip, self.port)
    }
}

impl From<SocketAddr> for Peer {
    fn from(a: SocketAddr) -> Self {
        Peer {
            ip: a.ip(),
            port: a.port(),
        }
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.socket_addr().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_like_a_socket_address_in_20_bytes() {
        for s in ["127.0.0.1:4000", "[::1]:65535", "[2001:db8::7]:1"] {
            let a: SocketAddr = s.parse().unwrap();
            assert_eq!(Peer::from(a).to_string(), s);
            assert_eq!(Peer::from(a).socket_addr(), a);
        }
        assert_eq!(size_of::<Peer>(), 20);
    }
}
