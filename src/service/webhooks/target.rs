//! Where a webhook may point: `http(s)` URLs, and (unless private targets are allowed) no
//! loopback, private, link-local or other internal address, checked when the URL is saved
//! and again for every address a name resolves to when a delivery connects.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use reqwest::Url;

/// Longest accepted URL.
pub const MAX_URL_LEN: usize = 2048;

/// True for addresses a webhook must not reach unless private targets are allowed.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_internal_v4(v4),
        IpAddr::V6(v6) => {
            if v6.is_loopback() || v6.is_unspecified() {
                return true;
            }
            // IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible (::a.b.c.d) addresses.
            if let Some(v4) = v6.to_ipv4() {
                return is_internal_v4(v4);
            }
            let seg = v6.segments();
            let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
            match seg[0] {
                // NAT64 well-known prefix 64:ff9b::/96: the IPv4 address is the last 32 bits.
                0x0064 if seg[1] == 0xff9b && seg[2..6] == [0, 0, 0, 0] => {
                    is_internal_v4(embedded(seg[6], seg[7]))
                }
                // Local-use NAT64 (64:ff9b:1::/48): translates to anything; refuse.
                0x0064 if seg[1] == 0xff9b => true,
                // 6to4 (2002::/16): the IPv4 address is bits 16–48.
                0x2002 => is_internal_v4(embedded(seg[1], seg[2])),
                // Teredo (2001:0::/32) tunnels to hosts it hides; refuse.
                0x2001 if seg[1] == 0 => true,
                first => {
                    v6.is_multicast()
                        || (first & 0xfe00) == 0xfc00 // unique local fc00::/7
                        || (first & 0xffc0) == 0xfe80 // link-local fe80::/10
                        || (first & 0xffc0) == 0xfec0 // site-local (deprecated)
                }
            }
        }
    }
}

fn is_internal_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT 100.64.0.0/10
        || (a == 192 && b == 0 && ip.octets()[2] == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking 198.18.0.0/15
        || a >= 240 // reserved
}

/// Validates a webhook URL; the reason it is refused otherwise.
pub async fn check_url(raw: &str, allow_private: bool) -> Result<Url, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err("url is required".into());
    }
    if raw.len() > MAX_URL_LEN {
        return Err(format!("url must be at most {MAX_URL_LEN} characters"));
    }
    let url = Url::parse(raw).map_err(|_| "url must be a valid http or https URL".to_owned())?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("url must use http or https".into());
    }
    let Some(host) = url.host_str().filter(|h| !h.is_empty()) else {
        return Err("url must name a host".into());
    };
    if allow_private {
        return Ok(url);
    }
    let refused = || {
        "url points at a loopback or private address; set WAGATE_WEBHOOK_ALLOW_PRIVATE=true to allow it"
            .to_owned()
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse::<IpAddr>() {
        return if is_internal(ip) {
            Err(refused())
        } else {
            Ok(url)
        };
    }
    let lower = host.to_ascii_lowercase();
    if lower == "localhost" || lower.ends_with(".localhost") || lower.ends_with(".internal") {
        return Err(refused());
    }
    let port = url.port_or_known_default().unwrap_or(443);
    // A name that does not resolve now is accepted (DNS may be down); every delivery checks
    // the addresses it connects to.
    let lookup = tokio::net::lookup_host((lower.as_str(), port));
    if let Ok(Ok(addrs)) = tokio::time::timeout(std::time::Duration::from_secs(5), lookup).await {
        let addrs: Vec<SocketAddr> = addrs.collect();
        if addrs.iter().any(|a| is_internal(a.ip())) {
            return Err(refused());
        }
    }
    Ok(url)
}

/// A resolver that drops internal addresses, so a public name that resolves (or later
/// re-resolves) to one is never connected to.
pub struct PublicOnlyResolver;

impl reqwest::dns::Resolve for PublicOnlyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| !is_internal(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(format!("{host} resolves only to internal addresses").into());
            }
            let iter: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(iter)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_ranges() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::127.0.0.1",
            "64:ff9b::7f00:1",
            "64:ff9b::a00:1",
            "64:ff9b:1::1",
            "2002:7f00:1::1",
            "2002:c0a8:101::1",
            "2001:0:4136:e378::1",
        ] {
            assert!(is_internal(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert!(!is_internal(ip.parse().unwrap()), "{ip}");
        }
    }

    #[tokio::test]
    async fn urls() {
        assert!(check_url("ftp://example.com/x", true).await.is_err());
        assert!(check_url("not a url", true).await.is_err());
        assert!(check_url("http://127.0.0.1:9/x", true).await.is_ok());
        assert!(check_url("http://127.0.0.1:9/x", false).await.is_err());
        assert!(check_url("http://[::1]:9/x", false).await.is_err());
        assert!(check_url("http://localhost:9/x", false).await.is_err());
        assert!(check_url("https://8.8.8.8/hook", false).await.is_ok());
    }
}
