//! The client's address, believing `X-Forwarded-For` only from configured proxies.

use std::net::IpAddr;

/// The rightmost address in the chain that is not one of our trusted proxies: entries to its left were
/// written by the client and may be forged.
pub fn client_ip(peer: Option<IpAddr>, forwarded_for: Option<&str>, trusted: &[IpAddr]) -> Option<IpAddr> {
    let peer = peer?;
    if !trusted.contains(&peer) {
        return Some(peer);
    }
    let Some(chain) = forwarded_for else {
        return Some(peer);
    };
    let mut last = peer;
    for hop in chain.rsplit(',') {
        match hop.trim().parse::<IpAddr>() {
            Ok(ip) if trusted.contains(&ip) => last = ip,
            Ok(ip) => return Some(ip),
            Err(_) => return Some(last),
        }
    }
    Some(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn untrusted_peers_cannot_forge() {
        assert_eq!(
            client_ip(Some(ip("1.2.3.4")), Some("9.9.9.9"), &[]),
            Some(ip("1.2.3.4"))
        );
    }

    #[test]
    fn trusted_proxy_chain_is_walked_from_the_right() {
        let trusted = [ip("10.0.0.1"), ip("10.0.0.2")];
        assert_eq!(
            client_ip(Some(ip("10.0.0.1")), Some("6.6.6.6, 5.5.5.5, 10.0.0.2"), &trusted),
            Some(ip("5.5.5.5"))
        );
        assert_eq!(
            client_ip(Some(ip("10.0.0.1")), None, &trusted),
            Some(ip("10.0.0.1"))
        );
        assert_eq!(
            client_ip(Some(ip("10.0.0.1")), Some("garbage"), &trusted),
            Some(ip("10.0.0.1"))
        );
    }
}
