//! Outbound webhook delivery rules, apart from any I/O: when a failed delivery is tried
//! again, and which addresses a webhook may reach.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

/// When a failed delivery is tried again: delays after each failed attempt; after the
/// last one the delivery has failed for good.
#[derive(Debug, Clone, PartialEq)]
pub struct RetrySchedule(pub Vec<Duration>);

impl RetrySchedule {
    /// Reads seconds, comma-separated (`"5,300,1800"`; fractions allowed), each above 0
    /// and at most a day.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let delays = raw
            .split(',')
            .map(|part| {
                let secs: f64 = part
                    .trim()
                    .parse()
                    .map_err(|_| format!("`{part}` is not a number of seconds"))?;
                if !(secs > 0.0 && secs <= 86_400.0) {
                    return Err(format!("{secs} s is out of range (above 0, at most 86400)"));
                }
                Ok(Duration::from_secs_f64(secs))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if delays.is_empty() || delays.len() > 20 {
            return Err("give 1 to 20 delays".to_owned());
        }
        Ok(Self(delays))
    }

    /// The delay before the next attempt after `failed` failed attempts (1 = the first
    /// failed), with ±10 % jitter from `unit` (0..1); `None` when retries are exhausted.
    pub fn after(&self, failed: u32, unit: f64) -> Option<Duration> {
        let base = self.0.get(usize::try_from(failed).ok()?.checked_sub(1)?)?;
        Some(base.mul_f64(0.9 + 0.2 * unit.clamp(0.0, 1.0)))
    }
}

/// Whether a webhook may be sent to `ip` when private targets are not allowed: public
/// unicast only — no loopback, private, shared (CGNAT), link-local (cloud metadata),
/// unspecified, broadcast, documentation, benchmarking, multicast or reserved ranges.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (b == 18 || b == 19))
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        || first == 0x2001 && ip.segments()[1] == 0x0db8
        || first == 0x0064 && ip.segments()[1] == 0xff9b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_unicast_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn a_schedule_gives_each_retry_its_delay_then_gives_up() {
        let s = RetrySchedule::parse("5, 300,0.5").unwrap();
        assert_eq!(s.after(1, 0.5), Some(Duration::from_secs(5)));
        assert_eq!(s.after(2, 0.0), Some(Duration::from_secs(270)));
        assert_eq!(s.after(2, 1.0), Some(Duration::from_secs(330)));
        assert_eq!(s.after(3, 0.5), Some(Duration::from_millis(500)));
        assert_eq!(s.after(4, 0.5), None);
        assert_eq!(s.after(0, 0.5), None);
        for bad in ["", "0", "-1", "x", "90000"] {
            assert!(RetrySchedule::parse(bad).is_err(), "{bad}");
        }
    }
}
