//! Address ranges for the proxies whose `X-Forwarded-For` is believed.

use std::net::IpAddr;

/// An address or a CIDR range (`10.0.0.0/8`, `fd00::/8`, `192.0.2.7`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    network: IpAddr,
    prefix: u8,
}

impl IpRange {
    pub fn parse(text: &str) -> Option<Self> {
        let (address, prefix) = match text.trim().split_once('/') {
            Some((address, prefix)) => (address, Some(prefix.parse::<u8>().ok()?)),
            None => (text.trim(), None),
        };
        let network: IpAddr = address.parse().ok()?;
        let width = if network.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(width);
        (prefix <= width).then_some(Self { network, prefix })
    }

    pub fn contains(&self, address: IpAddr) -> bool {
        let (network, address) = match (self.network, canonical(address)) {
            (IpAddr::V4(network), IpAddr::V4(address)) => {
                (u128::from(u32::from(network)) << 96, u128::from(u32::from(address)) << 96)
            }
            (IpAddr::V6(network), IpAddr::V6(address)) => (u128::from(network), u128::from(address)),
            _ => return false,
        };
        let mask = if self.prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(self.prefix)) };
        network & mask == address & mask
    }
}

/// IPv4 addresses arriving on a dual-stack socket as `::ffff:a.b.c.d` compare as IPv4.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        v4 => v4,
    }
}

/// The client behind the proxies in `trusted`: the peer itself unless it is a trusted proxy, else
/// the right-most `X-Forwarded-For` address that is not one (each proxy appends the address it
/// saw, so everything left of the nearest untrusted hop is the client's own say-so).
pub fn client_address(peer: IpAddr, forwarded_for: Option<&str>, trusted: &[IpRange]) -> IpAddr {
    let is_trusted = |address: IpAddr| trusted.iter().any(|range| range.contains(address));
    if !is_trusted(peer) {
        return canonical(peer);
    }
    let mut client = canonical(peer);
    for hop in forwarded_for.unwrap_or_default().rsplit(',') {
        let Ok(address) = hop.trim().parse::<IpAddr>() else { break };
        client = canonical(address);
        if !is_trusted(client) {
            break;
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("address")
    }

    #[test]
    fn ranges_contain_their_addresses_only() {
        let private = IpRange::parse("10.0.0.0/8").expect("range");
        assert!(private.contains(ip("10.1.2.3")) && !private.contains(ip("11.0.0.1")));
        assert!(private.contains(ip("::ffff:10.9.9.9")), "mapped IPv4");
        assert!(IpRange::parse("fd00::/8").expect("v6").contains(ip("fd12::1")));
        assert!(IpRange::parse("192.0.2.7").expect("host").contains(ip("192.0.2.7")));
        assert!(IpRange::parse("0.0.0.0/0").expect("all").contains(ip("203.0.113.9")));
        assert!(IpRange::parse("10.0.0.0/33").is_none() && IpRange::parse("ten").is_none());
    }

    #[test]
    fn forwarded_addresses_count_only_behind_trusted_proxies() {
        let ingress = [IpRange::parse("10.0.0.0/8").expect("range")];
        let forged = "1.2.3.4, 203.0.113.9";
        assert_eq!(client_address(ip("198.51.100.1"), Some(forged), &ingress), ip("198.51.100.1"), "untrusted peer");
        assert_eq!(
            client_address(ip("10.0.0.5"), Some(forged), &ingress),
            ip("203.0.113.9"),
            "the hop the ingress saw"
        );
        assert_eq!(client_address(ip("10.0.0.5"), Some("203.0.113.9, 10.0.0.7"), &ingress), ip("203.0.113.9"));
        assert_eq!(client_address(ip("10.0.0.5"), Some("junk"), &ingress), ip("10.0.0.5"));
        assert_eq!(client_address(ip("10.0.0.5"), Some(forged), &[]), ip("10.0.0.5"), "no proxies trusted by default");
    }
}
