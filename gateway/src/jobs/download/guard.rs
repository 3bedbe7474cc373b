//! Which hosts a download may reach. A download is a request the cluster makes for a client, so a link must not
//! turn it against the cluster's own network (SSRF): every address a download connects to is checked — the
//! resolver refuses a name with any non-public address, IP literals are checked before the request and on
//! every redirect — unless the operator listed the host in `[download] allow_hosts`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::Url;

/// The hosts downloads may reach (`[download]`).
#[derive(Debug, Clone, Default)]
pub struct HostPolicy {
    /// Lower-case names, `*.suffix` patterns and IP addresses.
    allow: Vec<String>,
    public: bool,
}

/// Why a link was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("downloads from {host} are not allowed: {why} (see [download] allow_hosts)")]
pub struct Refused {
    host: String,
    why: String,
}

impl HostPolicy {
    pub fn new(cfg: &trove_config::DownloadConfig) -> HostPolicy {
        let allow = cfg
            .allow_hosts
            .iter()
            .map(|h| h.trim().trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect();
        HostPolicy { allow, public: cfg.allow_public }
    }

    /// Whether the operator listed `host` (a name, or an address as the URL writes it).
    fn listed(&self, host: &str) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']').trim_end_matches('.').to_ascii_lowercase();
        self.allow.iter().any(|a| match a.strip_prefix("*.") {
            Some(suffix) => host.strip_suffix(suffix).is_some_and(|head| head.ends_with('.')),
            None => *a == host,
        })
    }

    fn refuse(host: &str, why: impl Into<String>) -> Refused {
        Refused { host: host.to_owned(), why: why.into() }
    }

    /// Whether `host` may be reached at the addresses it resolved to.
    fn check_addrs(&self, host: &str, addrs: &[IpAddr]) -> Result<(), Refused> {
        if self.listed(host) {
            return Ok(());
        }
        if !self.public {
            return Err(Self::refuse(host, "the host is not listed"));
        }
        match addrs.iter().find(|ip| !is_public(**ip)) {
            Some(ip) => Err(Self::refuse(host, format!("{ip} is not a public address"))),
            None => Ok(()),
        }
    }

    /// What can be said of a link before connecting: an http(s) URL whose host is listed, or an address that
    /// may be reached, or a name (which the resolver checks).
    pub fn check_url(&self, url: &Url) -> Result<(), Refused> {
        let host = url.host_str().unwrap_or_default().to_owned();
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Self::refuse(&host, format!("the scheme {:?} is not http or https", url.scheme())));
        }
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            Err(Self::refuse(&host, "the link has no host"))
        } else if let Ok(ip) = bare.parse::<IpAddr>() {
            self.check_addrs(&host, &[ip])
        } else if self.listed(&host) {
            Ok(())
        } else if !self.public {
            Err(Self::refuse(&host, "the host is not listed"))
        } else if host.eq_ignore_ascii_case("localhost")
            || host.trim_end_matches('.').to_ascii_lowercase().ends_with(".localhost")
            || host.eq_ignore_ascii_case("localhost.")
        {
            Err(Self::refuse(&host, "it is this machine"))
        } else {
            Ok(())
        }
    }

    /// An HTTP client that reaches only what this policy allows: names through a checking resolver, IP
    /// literals and redirects checked here, no proxy from the environment (it would connect for us).
    pub fn client(&self) -> reqwest::Result<reqwest::Client> {
        let policy = Arc::new(self.clone());
        let redirects = policy.clone();
        reqwest::Client::builder()
            .no_proxy()
            .dns_resolver(Arc::new(Resolver(policy)))
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() >= 10 {
                    return attempt.error("too many redirects");
                }
                match redirects.check_url(attempt.url()) {
                    Ok(()) => attempt.follow(),
                    Err(e) => attempt.error(e),
                }
            }))
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("trove/", env!("CARGO_PKG_VERSION"), " (downloader)"))
            .build()
    }
}

/// Resolves names and refuses those the policy does not let a download reach.
struct Resolver(Arc<HostPolicy>);

impl Resolve for Resolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.0.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let ips: Vec<IpAddr> = addrs.iter().map(SocketAddr::ip).collect();
            policy.check_addrs(&host, &ips)?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// Whether `ip` is an address of the public internet: not loopback, private, link-local (cloud metadata),
/// shared (CGNAT), unspecified, multicast, broadcast, documentation or reserved, nor an IPv6 form of one.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => public_v4(v4),
        IpAddr::V6(v6) => public_v6(v6),
    }
}

fn public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (18..20).contains(&b))
        || a >= 240)
}

fn public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return public_v4(v4);
    }
    let s = ip.segments();
    // NAT64 (64:ff9b::/96) reaches the IPv4 address in its last 32 bits.
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        return public_v4(Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8));
    }
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00
        || (s[0] & 0xffc0) == 0xfe80
        || (s[0] == 0x2001 && s[1] == 0x0db8)
        || s[0..6] == [0, 0, 0, 0, 0, 0])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allow: &[&str], public: bool) -> HostPolicy {
        HostPolicy::new(&trove_config::DownloadConfig {
            allow_hosts: allow.iter().map(|s| s.to_string()).collect(),
            allow_public: public,
            timeout_secs: 1,
        })
    }

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn addresses_of_the_public_internet() {
        for ip in ["8.8.8.8", "1.1.1.1", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "192.0.2.1",
            "198.18.0.1",
            "240.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "fc00::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::7f00:1",
            "2001:db8::1",
            "::127.0.0.1",
            "ff02::1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn links_by_default_reach_only_public_hosts() {
        let p = policy(&[], true);
        assert!(p.check_url(&url("https://data.example.com/a.tar")).is_ok());
        assert!(p.check_url(&url("http://8.8.8.8/x")).is_ok());
        for bad in [
            "http://127.0.0.1:8080/x",
            "http://[::1]/x",
            "http://169.254.169.254/latest/meta-data",
            "http://localhost/x",
            "http://LOCALHOST./x",
            "http://a.localhost/x",
            "http://10.0.0.1/x",
            "http://0x7f000001/x",
            "http://2130706433/x",
            "file:///etc/passwd",
            "ftp://example.com/x",
            "http://[::ffff:7f00:1]/x",
        ] {
            assert!(p.check_url(&url(bad)).is_err(), "{bad}");
        }
        // A name that resolves to a private address is the resolver's to refuse.
        assert!(p.check_addrs("evil.example.com", &["8.8.8.8".parse().unwrap(), "10.0.0.1".parse().unwrap()]).is_err());
        assert!(p.check_addrs("good.example.com", &["8.8.8.8".parse().unwrap()]).is_ok());
    }

    #[test]
    fn listed_hosts_are_trusted_and_only_they_when_public_is_off() {
        let p = policy(&["127.0.0.1", "*.corp.example", "Files.Local", "[::1]"], false);
        assert!(p.check_url(&url("http://127.0.0.1:9000/x")).is_ok());
        assert!(p.check_url(&url("http://[::1]:9000/x")).is_ok());
        assert!(p.check_url(&url("http://files.local/x")).is_ok());
        assert!(p.check_addrs("a.b.corp.example", &["10.0.0.1".parse().unwrap()]).is_ok());
        assert!(p.check_url(&url("http://corp.example/x")).is_err(), "a pattern names subdomains only");
        assert!(p.check_url(&url("http://xcorp.example/x")).is_err());
        assert!(p.check_url(&url("https://data.example.com/x")).is_err());
        assert!(p.check_url(&url("http://localhost:9000/x")).is_err());
        assert!(p.check_addrs("8.8.8.8", &["8.8.8.8".parse().unwrap()]).is_err());
    }
}
