//! The client's address, believing `X-Forwarded-For` only from configured proxies.

use std::net::IpAddr;

use actix_web::http::header::HeaderMap;

/// Every `X-Forwarded-For` line of a request as one chain, in order: a proxy may add a line of its own
/// rather than append to the client's, and reading only the first line would then believe the client's.
/// A line that is not text stays in the chain as an unparsable hop, where the walk stops.
pub fn forwarded_for(headers: &HeaderMap) -> Option<String> {
    let lines: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .map(|v| v.to_str().unwrap_or("?"))
        .collect();
    (!lines.is_empty()).then(|| lines.join(","))
}

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
    fn a_proxy_line_after_the_clients_is_read() {
        let mut headers = HeaderMap::new();
        for line in ["6.6.6.6", "5.5.5.5"] {
            headers.append(
                actix_web::http::header::HeaderName::from_static("x-forwarded-for"),
                actix_web::http::header::HeaderValue::from_static(line),
            );
        }
        let chain = forwarded_for(&headers);
        assert_eq!(chain.as_deref(), Some("6.6.6.6,5.5.5.5"));
        let trusted = [ip("10.0.0.1")];
        assert_eq!(
            client_ip(Some(ip("10.0.0.1")), chain.as_deref(), &trusted),
            Some(ip("5.5.5.5"))
        );
        assert_eq!(forwarded_for(&HeaderMap::new()), None);
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
