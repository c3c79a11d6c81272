//! Whose address a request comes from, for the inbound limit. The TCP peer, unless the peer
//! is a trusted proxy (`TRUSTED_PROXIES`): then the right-most `X-Forwarded-For` entry that
//! is not itself a trusted proxy. Entries to its left were written by the client and prove
//! nothing, so they are never read; a client behind the proxy cannot pick its own bucket.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

/// A network (`10.0.0.0/8`, `fd00::/8`) or one address (`192.0.2.1`, `::1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// Whether `ip` lies in this network (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let (net, width) = bits(self.addr);
        let (ip, ip_width) = bits(ip.to_canonical());
        if width != ip_width {
            return false;
        }
        let shift = u32::from(width - self.prefix);
        shift >= 128 || net >> shift == ip >> shift
    }
}

/// The address as a number, and how many bits it has.
fn bits(ip: IpAddr) -> (u128, u8) {
    match ip {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
        IpAddr::V6(v6) => (u128::from(v6), 128),
    }
}

impl FromStr for IpNet {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s, None),
        };
        let addr = IpAddr::from_str(addr.trim())
            .map_err(|_| format!("`{s}` is not an IP address or a CIDR network"))?
            .to_canonical();
        let width = bits(addr).1;
        let prefix = match prefix {
            None => width,
            Some(p) => match p.trim().parse::<u8>() {
                Ok(p) if p <= width => p,
                _ => return Err(format!("`{s}`: the prefix length must be 0 to {width}")),
            },
        };
        Ok(Self { addr, prefix })
    }
}

/// The proxies whose `X-Forwarded-For` is believed; empty = none (the peer is the client).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses the `TRUSTED_PROXIES` entries (blank entries are skipped).
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, String> {
        entries
            .iter()
            .map(|e| e.as_ref().trim())
            .filter(|e| !e.is_empty())
            .map(IpNet::from_str)
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    /// Whether `ip` is a trusted proxy.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(ip))
    }

    /// The client's address, given the TCP peer and the `X-Forwarded-For` header values in
    /// the order they arrived. When the peer is trusted, the entries are read right to left,
    /// skipping trusted proxies; the first other entry is the client. If that entry is not an
    /// address (the proxy did not write it), or every entry is a trusted proxy, the peer is
    /// the answer: its bucket is shared, but nobody can choose it.
    pub fn client_addr(&self, peer: IpAddr, forwarded_for: &[&str]) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.contains(peer) {
            return peer;
        }
        for entry in forwarded_for.iter().rev().flat_map(|v| v.rsplit(',')) {
            match parse_entry(entry) {
                Some(ip) if self.contains(ip) => continue,
                Some(ip) => return ip,
                None => return peer,
            }
        }
        peer
    }
}

/// One `X-Forwarded-For` entry: an address, or an address with a port (`192.0.2.1:4711`,
/// `[2001:db8::1]:4711`), which some proxies write.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    IpAddr::from_str(entry)
        .or_else(|_| SocketAddr::from_str(entry).map(|s| s.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

/// The address a bucket is kept for: IPv4 addresses as they are, IPv6 addresses by their
/// /64 (one subscriber usually holds a whole /64, so single IPv6 addresses are free to pick).
pub fn bucket_of(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn proxies(list: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(list).unwrap()
    }

    #[test]
    fn networks_and_single_addresses_parse_and_match() {
        let net: IpNet = "10.0.0.0/8".parse().unwrap();
        assert!(net.contains(ip("10.255.0.1")));
        assert!(!net.contains(ip("11.0.0.1")));
        assert!(net.contains(ip("::ffff:10.1.2.3")), "IPv4-mapped addresses are IPv4");
        let one: IpNet = " 192.0.2.1 ".parse().unwrap();
        assert!(one.contains(ip("192.0.2.1")) && !one.contains(ip("192.0.2.2")));
        let v6: IpNet = "fd00::/8".parse().unwrap();
        assert!(v6.contains(ip("fd12::1")) && !v6.contains(ip("fe80::1")) && !v6.contains(ip("10.0.0.1")));
        let all: IpNet = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("203.0.113.9")));
        let all6: IpNet = "::/0".parse().unwrap();
        assert!(all6.contains(ip("2001:db8::1")));
    }

    #[test]
    fn bad_entries_are_refused_and_blank_ones_skipped() {
        for bad in ["10.0.0.0/33", "::/129", "proxy.example", "10.0.0.1/x", "10.0.0/8"] {
            assert!(TrustedProxies::parse(&[bad]).is_err(), "{bad} was accepted");
        }
        assert_eq!(TrustedProxies::parse(&["", " "]).unwrap(), TrustedProxies::default());
    }

    #[test]
    fn without_trusted_proxies_the_header_is_ignored() {
        let none = TrustedProxies::default();
        assert_eq!(none.client_addr(ip("192.0.2.7"), &["198.51.100.1"]), ip("192.0.2.7"));
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let trusted = proxies(&["10.0.0.0/8"]);
        assert_eq!(trusted.client_addr(ip("192.0.2.7"), &["10.0.0.1"]), ip("192.0.2.7"));
    }

    #[test]
    fn behind_a_trusted_proxy_the_right_most_untrusted_entry_is_the_client() {
        let trusted = proxies(&["10.0.0.0/8", "192.0.2.10"]);
        let peer = ip("10.0.0.2");
        assert_eq!(trusted.client_addr(peer, &["198.51.100.1"]), ip("198.51.100.1"));
        // The client wrote the left part itself; only what the proxies appended counts.
        assert_eq!(
            trusted.client_addr(peer, &["203.0.113.66, 198.51.100.1, 192.0.2.10"]),
            ip("198.51.100.1")
        );
        // Several header lines are one list, in order.
        assert_eq!(
            trusted.client_addr(peer, &["203.0.113.66", "198.51.100.1 ,10.1.1.1"]),
            ip("198.51.100.1")
        );
        assert_eq!(trusted.client_addr(peer, &["198.51.100.1:4711"]), ip("198.51.100.1"));
        assert_eq!(trusted.client_addr(peer, &["[2001:db8::5]:4711"]), ip("2001:db8::5"));
    }

    #[test]
    fn a_trusted_peer_without_a_usable_entry_is_its_own_client() {
        let trusted = proxies(&["10.0.0.0/8"]);
        let peer = ip("10.0.0.2");
        assert_eq!(trusted.client_addr(peer, &[]), peer);
        assert_eq!(trusted.client_addr(peer, &["10.0.0.3, 10.0.0.4"]), peer);
        // Garbage where the proxy should have written an address: nobody picks a bucket.
        assert_eq!(trusted.client_addr(peer, &["198.51.100.1, unknown"]), peer);
        assert_eq!(trusted.client_addr(peer, &["198.51.100.1,"]), peer);
    }

    #[test]
    fn ipv6_clients_share_a_bucket_per_64_and_ipv4_clients_do_not() {
        assert_eq!(
            bucket_of(ip("2001:db8:1:2:aaaa::1")),
            bucket_of(ip("2001:db8:1:2:bbbb::9"))
        );
        assert_ne!(bucket_of(ip("2001:db8:1:2::1")), bucket_of(ip("2001:db8:1:3::1")));
        assert_ne!(bucket_of(ip("192.0.2.1")), bucket_of(ip("192.0.2.2")));
        assert_eq!(bucket_of(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
    }
}
