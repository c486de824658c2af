//! Fetching a URL found in a webhook body, which anyone who can reach the receiver, or
//! make a model print a URL, can write. Without these checks a text model could be made
//! to print `http://127.0.0.1:9001/...` (the Lambda Runtime API) or a VPC address, and
//! the copy would keep the answer as "the output".
//!
//! A URL is fetched only when:
//! - it is `https` (plain `http` only with `OUTPUT_URL_ALLOW_HTTP=true`), with no
//!   credentials in it;
//! - its host is in `OUTPUT_URL_HOSTS`, when that is set;
//! - its address is public: loopback, private, link-local, CGNAT, multicast, broadcast,
//!   unspecified, documentation and reserved ranges are refused, v4 and v6, with v4
//!   inside v6 (mapped, translated, compatible, NAT64, 6to4) read as the v4 it holds,
//!   and local-use NAT64 refused whatever it holds. A host name is
//!   checked after DNS resolution, and the connection is made to the address that was
//!   checked, so a name that resolves to a public address once and a private one the
//!   next time (DNS rebinding) cannot slip past. An address literal in
//!   `OUTPUT_URL_HOSTS` (`127.0.0.1:8768`, as the local stack sets) is allowed as named,
//!   private or not: the operator wrote it;
//! - every redirect (at most [`MAX_REDIRECTS`]) passes the same checks;
//! - no proxy is used: one would make the address check meaningless.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use crate::config::ConfigError;
use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Redirects followed at most, each checked as the first URL was.
pub const MAX_REDIRECTS: usize = 5;

/// Why a URL is not fetched. Permanent: the same URL is refused again.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("not a URL")]
    NotUrl,
    #[error("only https URLs are fetched (OUTPUT_URL_ALLOW_HTTP allows http)")]
    Scheme,
    #[error("a URL with credentials is not fetched")]
    Credentials,
    #[error("the host is not in OUTPUT_URL_HOSTS")]
    Host,
    #[error("{ip} is a {kind} address")]
    Address { ip: IpAddr, kind: &'static str },
    #[error("the host resolves to no public address")]
    NoPublicAddress,
    #[error("the host does not resolve: {0}")]
    Unresolvable(String),
    #[error("more than {MAX_REDIRECTS} redirects")]
    Redirects,
}

/// One entry of `OUTPUT_URL_HOSTS`: a host, and the port when one is given.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Allowed {
    host: url::Host<String>,
    port: Option<u16>,
}

/// Which URLs may be fetched (`OUTPUT_URL_ALLOW_HTTP`, `OUTPUT_URL_HOSTS`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UrlPolicy {
    allow_http: bool,
    /// Empty: any host with a public address.
    hosts: Vec<Allowed>,
}

impl UrlPolicy {
    /// `hosts`: comma-separated `host` or `host:port` (`[v6]:port` for v6).
    pub fn new(allow_http: bool, hosts: Option<&str>) -> Result<Self, ConfigError> {
        let invalid = |entry: &str| ConfigError::Invalid {
            var: "OUTPUT_URL_HOSTS",
            reason: format!("{entry:?} is not a host or host:port"),
        };
        let mut allowed = Vec::new();
        for entry in hosts.unwrap_or_default().split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let url = Url::parse(&format!("http://{entry}/")).map_err(|_| invalid(entry))?;
            let host = url.host().ok_or_else(|| invalid(entry))?.to_owned();
            if url.path() != "/" || !url.username().is_empty() {
                return Err(invalid(entry));
            }
            // `Url` drops a port that is the scheme's default; keep what was written.
            let port = url.port().or_else(|| entry.ends_with(":80").then_some(80));
            allowed.push(Allowed { host, port });
        }
        Ok(Self { allow_http, hosts: allowed })
    }

    /// The checks that need no DNS: scheme, credentials, the allow-list, and the address
    /// when the host is an address literal. A host name's addresses are checked when it
    /// is resolved ([`client`]).
    pub fn check(&self, url: &Url) -> Result<(), Refused> {
        match url.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            _ => return Err(Refused::Scheme),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Refused::Credentials);
        }
        let host = url.host().ok_or(Refused::Host)?;
        let port = url.port_or_known_default();
        let named = |entry: &Allowed| entry.host == host.to_owned() && entry.port.is_none_or(|p| Some(p) == port);
        let listed = self.hosts.iter().find(|entry| named(entry));
        if !self.hosts.is_empty() && listed.is_none() {
            return Err(Refused::Host);
        }
        let ip = match host {
            url::Host::Domain(_) => return Ok(()),
            url::Host::Ipv4(ip) => IpAddr::V4(ip),
            url::Host::Ipv6(ip) => IpAddr::V6(ip),
        };
        // An address the operator listed is theirs to allow.
        if listed.is_some() {
            return Ok(());
        }
        public(ip).map_err(|kind| Refused::Address { ip, kind })
    }
}

/// `Ok` for an address anyone on the internet could reach; else what kind it is.
pub fn public(ip: IpAddr) -> Result<(), &'static str> {
    match ip {
        IpAddr::V4(v4) => public_v4(v4),
        IpAddr::V6(v6) => public_v6(v6),
    }
}

fn public_v4(ip: Ipv4Addr) -> Result<(), &'static str> {
    let [a, b, c, _] = ip.octets();
    let kind = match (a, b, c) {
        _ if ip.is_unspecified() => "unspecified",
        _ if ip.is_loopback() => "loopback",
        _ if ip.is_private() => "private",
        _ if ip.is_link_local() => "link-local",
        _ if ip.is_multicast() => "multicast",
        _ if ip.is_broadcast() => "broadcast",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation",
        (0, _, _) => "\"this network\"",
        (100, 64..=127, _) => "shared (CGNAT)",
        (192, 0, 0) => "IETF protocol assignment",
        (192, 88, 99) => "6to4 relay",
        (198, 18..=19, _) => "benchmarking",
        (240..=255, _, _) => "reserved",
        _ => return Ok(()),
    };
    Err(kind)
}

fn public_v6(ip: Ipv6Addr) -> Result<(), &'static str> {
    let segments = ip.segments();
    // v4 carried inside v6: mapped (::ffff:a.b.c.d), translated (::ffff:0:a.b.c.d),
    // compatible (::a.b.c.d), NAT64 (64:ff9b::a.b.c.d) and 6to4 (2002:AABB:CCDD::):
    // judged as the v4 they carry.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return public_v4(v4);
    }
    let octets = ip.octets();
    let embedded = |at: usize| Ipv4Addr::new(octets[at], octets[at + 1], octets[at + 2], octets[at + 3]);
    if segments[..6] == [0; 6] && !ip.is_unspecified() && !ip.is_loopback() {
        return public_v4(embedded(12));
    }
    if segments[..6] == [0, 0, 0, 0, 0xffff, 0] || segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return public_v4(embedded(12));
    }
    // Local-use NAT64 (RFC 8215) reaches whatever v4 its operator's translator does,
    // wherever in the address the v4 sits: never a public address.
    if segments[..3] == [0x64, 0xff9b, 1] {
        return Err("local-use NAT64");
    }
    if segments[0] == 0x2002 {
        return public_v4(embedded(2));
    }
    let kind = match segments[0] {
        _ if ip.is_unspecified() => "unspecified",
        _ if ip.is_loopback() => "loopback",
        _ if ip.is_multicast() => "multicast",
        s if s & 0xfe00 == 0xfc00 => "unique local (private)",
        s if s & 0xffc0 == 0xfe80 => "link-local",
        s if s & 0xffc0 == 0xfec0 => "site-local",
        0x2001 if segments[1] == 0 => "Teredo",
        0x2001 if segments[1] == 0xdb8 => "documentation",
        0x0100 if segments[1..4] == [0, 0, 0] => "discard-only",
        _ => return Ok(()),
    };
    Err(kind)
}

/// reqwest's name resolution through the address check: only public addresses are
/// returned, so reqwest connects to an address that was checked.
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let found: Vec<SocketAddr> = match tokio::net::lookup_host((name.as_str(), 0)).await {
                Ok(found) => found.collect(),
                // A resolver that failed for now (EAI_AGAIN) may answer later; a name that
                // does not exist will not.
                Err(err) if err.to_string().contains("Temporary failure") => return Err(Box::new(err) as _),
                Err(err) => return Err(Box::new(Refused::Unresolvable(err.to_string())) as _),
            };
            let public: Vec<SocketAddr> = found.into_iter().filter(|addr| public(addr.ip()).is_ok()).collect();
            if public.is_empty() {
                return Err(Box::new(Refused::NoPublicAddress) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

/// Why a fetch did not bring an answer.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The URL, a redirect or an address was refused: for good.
    #[error("refused: {0}")]
    Refused(#[from] Refused),
    /// It failed on the way (connection, timeout, the server): it may work later.
    #[error(transparent)]
    Failed(reqwest::Error),
}

/// The HTTP client that fetches URLs from webhook bodies, under the policy.
#[derive(Clone, Debug)]
pub struct Fetcher {
    http: reqwest::Client,
    policy: Arc<UrlPolicy>,
}

impl Fetcher {
    /// `timeout` bounds connecting and each wait for the next bytes (a whole-request
    /// timeout would fail a large file).
    pub fn new(policy: UrlPolicy, timeout: Duration) -> reqwest::Result<Self> {
        let policy = Arc::new(policy);
        let checked = policy.clone();
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > MAX_REDIRECTS {
                return attempt.error(Refused::Redirects);
            }
            match checked.check(attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(refused) => attempt.error(refused),
            }
        });
        let http = reqwest::Client::builder()
            .connect_timeout(timeout)
            .read_timeout(timeout)
            .no_proxy()
            .redirect(redirects)
            .dns_resolver(Arc::new(PublicOnly))
            .build()?;
        Ok(Self { http, policy })
    }

    /// GETs `url` if the policy allows it and every redirect on the way, connecting only
    /// to checked addresses. Any answer is returned, error statuses included.
    pub async fn get(&self, url: &str) -> Result<reqwest::Response, FetchError> {
        let url = Url::parse(url).map_err(|_| Refused::NotUrl)?;
        self.policy.check(&url)?;
        self.http.get(url).send().await.map_err(|err| match refusal(&err) {
            Some(refused) => FetchError::Refused(refused),
            None => FetchError::Failed(err),
        })
    }
}

/// The refusal behind a failed request, when a check refused it (a redirect, a name).
fn refusal(err: &reqwest::Error) -> Option<Refused> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(err) = source {
        if let Some(refused) = err.downcast_ref::<Refused>() {
            return Some(refused.clone());
        }
        source = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(url: &str, policy: &UrlPolicy) -> Option<Refused> {
        policy.check(&Url::parse(url).unwrap()).err()
    }

    #[test]
    fn only_https_is_fetched_unless_http_is_allowed() {
        let https_only = UrlPolicy::new(false, None).unwrap();
        assert_eq!(refused("https://files.example/a.png", &https_only), None);
        assert_eq!(refused("http://files.example/a.png", &https_only), Some(Refused::Scheme));
        assert_eq!(refused("ftp://files.example/a", &https_only), Some(Refused::Scheme));
        assert_eq!(refused("file:///etc/passwd", &https_only), Some(Refused::Scheme));
        assert_eq!(refused("https://u:p@files.example/a", &https_only), Some(Refused::Credentials));
        assert_eq!(refused("http://files.example/a", &UrlPolicy::new(true, None).unwrap()), None);
    }

    #[test]
    fn every_kind_of_address_that_is_not_public_is_refused_in_every_spelling() {
        let policy = UrlPolicy::new(true, None).unwrap();
        for url in [
            "http://127.0.0.1:9001/2018-06-01/runtime/invocation/next",
            "http://127.1/",
            "http://2130706433/",
            "http://0x7f000001/",
            "http://0.0.0.0/",
            "http://10.0.0.1/",
            "http://172.16.5.4/",
            "http://192.168.1.1/",
            "http://169.254.169.254/latest/meta-data/",
            "http://100.64.0.1/",
            "http://224.0.0.1/",
            "http://255.255.255.255/",
            "http://198.18.0.1/",
            "http://240.0.0.1/",
            "http://[::1]/",
            "http://[::]/",
            "http://[fd00::1]/",
            "http://[fe80::1]/",
            "http://[ff02::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:169.254.169.254]/",
            "http://[::127.0.0.1]/",
            "http://[64:ff9b::a9fe:a9fe]/",
            "http://[::ffff:0:7f00:1]/",
            "http://[::ffff:0:a9fe:a9fe]/",
            "http://[64:ff9b:1::a9fe:a9fe]/",
            "http://[64:ff9b:1:a9fe:a9:fe00::]/",
            "http://[2002:7f00:1::]/",
            "http://[2001::1]/",
        ] {
            assert!(
                matches!(refused(url, &policy), Some(Refused::Address { .. })),
                "{url}: {:?}",
                refused(url, &policy)
            );
        }
        for url in [
            "http://93.184.215.14/",
            "http://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]/",
            "http://[::ffff:8.8.8.8]/",
            "http://[::ffff:0:808:808]/",
        ] {
            assert_eq!(refused(url, &policy), None, "{url}");
        }
    }

    #[test]
    fn with_an_allow_list_only_its_hosts_and_ports_are_fetched() {
        let policy = UrlPolicy::new(true, Some("files.example, 127.0.0.1:8768, [::1]:9")).unwrap();
        assert_eq!(refused("https://files.example/a", &policy), None);
        assert_eq!(refused("https://files.example:8443/a", &policy), None, "a host without a port: any port");
        assert_eq!(refused("https://other.example/a", &policy), Some(Refused::Host));
        assert_eq!(refused("http://127.0.0.1:8768/_sim/files/x", &policy), None, "a listed literal, private or not");
        assert_eq!(refused("http://127.0.0.1:9000/", &policy), Some(Refused::Host));
        assert_eq!(refused("http://127.0.0.2:8768/", &policy), Some(Refused::Host));
        assert_eq!(refused("http://localhost:8768/", &policy), Some(Refused::Host));
        assert_eq!(refused("http://[::1]:9/", &policy), None);
        assert!(UrlPolicy::new(false, Some("a/b")).is_err());
        assert!(UrlPolicy::new(false, Some("u@h")).is_err());
    }

    /// A server on 127.0.0.1 that counts the connections it gets and answers each
    /// request with `answer(path)`: its port and its count.
    async fn server(answer: fn(u16, &str) -> String) -> (u16, Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(AtomicUsize::new(0));
        let count = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let mut head = vec![0; 4096];
                let n = socket.read(&mut head).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&head[..n]).into_owned();
                let path = request.split(' ').nth(1).unwrap_or("/").to_owned();
                let _ = socket.write_all(answer(port, &path).as_bytes()).await;
            }
        });
        (port, seen)
    }

    fn ok(_: u16, _: &str) -> String {
        "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok".into()
    }

    fn redirect_to(location: &str) -> String {
        format!("HTTP/1.1 302 Found\r\nlocation: {location}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
    }

    /// `/go/<url>` redirects to `<url>`; `/loop` to itself; anything else is 200.
    fn redirects(port: u16, path: &str) -> String {
        match path {
            "/loop" => redirect_to(&format!("http://127.0.0.1:{port}/loop")),
            p if p.starts_with("/go/") => redirect_to(&p["/go/".len()..]),
            _ => ok(port, path),
        }
    }

    fn fetcher(allow_http: bool, hosts: Option<&str>) -> Fetcher {
        Fetcher::new(UrlPolicy::new(allow_http, hosts).unwrap(), Duration::from_secs(2)).unwrap()
    }

    async fn refusal_of(fetcher: &Fetcher, url: &str) -> Option<Refused> {
        match fetcher.get(url).await {
            Ok(_) => None,
            Err(FetchError::Refused(refused)) => Some(refused),
            Err(FetchError::Failed(err)) => panic!("{url}: failed instead of refused: {err}"),
        }
    }

    fn hits(seen: &std::sync::atomic::AtomicUsize) -> usize {
        seen.load(std::sync::atomic::Ordering::SeqCst)
    }

    #[tokio::test]
    async fn a_listed_address_is_fetched_and_no_request_reaches_any_other() {
        let (listed, listed_seen) = server(redirects).await;
        let (other, other_seen) = server(ok).await;
        let fetcher = fetcher(true, Some(&format!("127.0.0.1:{listed}")));
        assert_eq!(fetcher.get(&format!("http://127.0.0.1:{listed}/file")).await.unwrap().status(), 200);
        for url in [
            format!("http://127.0.0.1:{other}/"),
            format!("http://localhost:{other}/"),
            format!("http://127.0.0.2:{other}/"),
            format!("http://[::ffff:127.0.0.1]:{other}/"),
            // Redirects from the listed address to anywhere else, checked again.
            format!("http://127.0.0.1:{listed}/go/http://127.0.0.1:{other}/"),
            format!("http://127.0.0.1:{listed}/go/http://localhost:{other}/"),
            format!("http://127.0.0.1:{listed}/go/http://127.0.0.1:{listed}/go/http://127.0.0.1:{other}/"),
        ] {
            assert_eq!(refusal_of(&fetcher, &url).await, Some(Refused::Host), "{url}");
        }
        assert_eq!(hits(&other_seen), 0, "no request reached the other server");
        // A redirect to the listed address itself is followed; a loop is cut.
        let twice = format!("http://127.0.0.1:{listed}/go/http://127.0.0.1:{listed}/file");
        assert_eq!(fetcher.get(&twice).await.unwrap().status(), 200);
        let looped = format!("http://127.0.0.1:{listed}/loop");
        assert_eq!(refusal_of(&fetcher, &looped).await, Some(Refused::Redirects));
        assert!(hits(&listed_seen) >= 3);
    }

    #[tokio::test]
    async fn without_a_listed_address_loopback_is_refused_by_address_and_by_name_before_connecting() {
        let (port, seen) = server(ok).await;
        let fetcher = fetcher(true, None);
        let by_address = refusal_of(&fetcher, &format!("http://127.0.0.1:{port}/")).await;
        assert!(matches!(by_address, Some(Refused::Address { kind: "loopback", .. })), "{by_address:?}");
        // A name is refused after it resolves, so the check holds whatever DNS says.
        assert_eq!(refusal_of(&fetcher, &format!("http://localhost:{port}/")).await, Some(Refused::NoPublicAddress));
        // A name in the allow-list is still resolved and checked: only an address
        // literal is taken as written.
        let named = fetcher_with_name(port);
        assert_eq!(refusal_of(&named, &format!("http://localhost:{port}/")).await, Some(Refused::NoPublicAddress));
        assert_eq!(hits(&seen), 0);
    }

    fn fetcher_with_name(port: u16) -> Fetcher {
        fetcher(true, Some(&format!("localhost:{port}")))
    }

    #[tokio::test]
    async fn plain_http_is_refused_unless_allowed_even_for_a_listed_address() {
        let (port, seen) = server(ok).await;
        let https_only = fetcher(false, Some(&format!("127.0.0.1:{port}")));
        assert_eq!(refusal_of(&https_only, &format!("http://127.0.0.1:{port}/")).await, Some(Refused::Scheme));
        assert_eq!(hits(&seen), 0);
    }
}
