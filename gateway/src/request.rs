//! The request target, computed once per request from its head: which API, how the bucket is addressed,
//! which bucket, the operation class (for metrics and routing) and how the caller signs. The server builds it
//! first and hands it to metrics, the fast path, the front checks and (as a request extension) to s3s.

use http::{HeaderMap, Method, Uri};

/// Which of the node's APIs a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    S3,
    /// `/v1/...` on the node's own host: the AIS-compatible native API.
    Native,
}

/// How the caller proves who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthKind {
    Anonymous,
    SigV4,
    SigV4Presigned,
    SigV2,
    SigV2Presigned,
}

#[derive(Debug, Clone)]
pub struct Target {
    pub api: Api,
    /// `bucket.<domain>` addressing.
    pub virtual_host: bool,
    /// The bucket as addressed (path segment or host label), not yet validated.
    pub bucket: Option<String>,
    /// The operation class, as metrics report it (`GetObject`, `ListObjects`, `Native`...).
    pub op: &'static str,
    pub auth: AuthKind,
    /// The query's pairs, decoded as `application/x-www-form-urlencoded` (as S3, AIS and s3s read them), in
    /// their order.
    pub query: Vec<(String, String)>,
}

impl Target {
    pub fn parse(method: &Method, uri: &Uri, headers: &HeaderMap, domain: Option<&str>) -> Target {
        let host_bucket = domain.and_then(|d| virtual_host_bucket(headers, d));
        let virtual_host = host_bucket.is_some();
        let api = if !virtual_host && uri.path().starts_with(trove_ais::path::V1) { Api::Native } else { Api::S3 };
        let bucket = host_bucket.or_else(|| {
            let seg = uri.path().strip_prefix('/')?.split('/').next()?;
            (!seg.is_empty()).then(|| seg.to_owned())
        });
        let op = crate::metrics::operation(method, uri, headers, virtual_host);
        let raw = uri.query().unwrap_or_default();
        Target { api, virtual_host, bucket, op, auth: auth_kind(raw, headers), query: query_pairs(raw) }
    }

    /// The value of query parameter `name`, if given.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// The declared `Content-Length` (0 when absent or unreadable).
pub fn content_length(h: &HeaderMap) -> u64 {
    h.get(http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse().ok()).unwrap_or(0)
}

/// `a=1&b=x+y&c` as `[(a, 1), (b, "x y"), (c, "")]`.
/// What URI encoding keeps of a path segment: RFC 3986's unreserved characters; everything else is escaped.
pub const SEGMENT: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');
/// [`SEGMENT`] for a path of segments (object keys): `/` is kept too.
pub const PATH: &percent_encoding::AsciiSet = &SEGMENT.remove(b'/');

/// `s` percent-encoded with `set`.
pub fn encode(s: &str, set: &'static percent_encoding::AsciiSet) -> String {
    percent_encoding::utf8_percent_encode(s, set).to_string()
}

pub fn query_pairs(query: &str) -> Vec<(String, String)> {
    let dec = |s: &str| percent_encoding::percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned();
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (dec(k), dec(v))
        })
        .collect()
}

/// The bucket label of `Host: bucket.<domain>[:port]`.
fn virtual_host_bucket(headers: &HeaderMap, domain: &str) -> Option<String> {
    let host = headers.get(http::header::HOST)?.to_str().ok()?;
    let host = match host.rsplit_once(':') {
        Some((h, port)) if !h.ends_with(']') && port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    };
    let label = host.strip_suffix(domain)?.strip_suffix('.')?;
    (!label.is_empty()).then(|| label.to_owned())
}

fn auth_kind(query: &str, headers: &HeaderMap) -> AuthKind {
    if let Some(a) = headers.get(http::header::AUTHORIZATION).map(http::HeaderValue::as_bytes) {
        if a.starts_with(b"AWS4-") {
            return AuthKind::SigV4;
        }
        if a.starts_with(b"AWS ") {
            return AuthKind::SigV2;
        }
    }
    let has = |name: &str| query.split('&').any(|p| p.split('=').next() == Some(name));
    if has("X-Amz-Signature") || has("X-Amz-Credential") {
        AuthKind::SigV4Presigned
    } else if has("Signature") {
        AuthKind::SigV2Presigned
    } else {
        AuthKind::Anonymous
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(method: Method, uri: &str, headers: &[(&str, &str)]) -> Target {
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.insert(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        Target::parse(&method, &uri.parse().unwrap(), &h, Some("localhost"))
    }

    #[test]
    fn addressing_and_api() {
        let t = target(Method::GET, "/b/k", &[("host", "127.0.0.1:8080")]);
        assert_eq!((t.api, t.virtual_host, t.bucket.as_deref(), t.op), (Api::S3, false, Some("b"), "GetObject"));
        let t = target(Method::GET, "/k", &[("host", "b.localhost:8080")]);
        assert_eq!((t.virtual_host, t.bucket.as_deref(), t.op), (true, Some("b"), "GetObject"));
        let t = target(Method::GET, "/v1/buckets", &[("host", "127.0.0.1")]);
        assert_eq!(t.api, Api::Native);
        // On a virtual host, /v1/... is an object key.
        let t = target(Method::GET, "/v1/buckets", &[("host", "b.localhost")]);
        assert_eq!(t.api, Api::S3);
        let t = target(Method::GET, "/", &[("host", "localhost")]);
        assert_eq!((t.bucket, t.op), (None, "ListBuckets"));
    }

    #[test]
    fn query_decoded_once() {
        let t = target(Method::GET, "/b?prefix=a+b%2Fc&list-type=2&flag", &[]);
        assert_eq!(t.param("prefix"), Some("a b/c"));
        assert_eq!(t.param("flag"), Some(""));
        assert_eq!(t.param("nope"), None);
    }

    #[test]
    fn auth_kinds() {
        let k = |uri: &str, auth: Option<&str>| {
            let h: Vec<(&str, &str)> = auth.map(|a| ("authorization", a)).into_iter().collect();
            target(Method::GET, uri, &h).auth
        };
        assert_eq!(k("/b/k", None), AuthKind::Anonymous);
        assert_eq!(k("/b/k", Some("AWS4-HMAC-SHA256 Credential=x")), AuthKind::SigV4);
        assert_eq!(k("/b/k", Some("AWS AK:sig")), AuthKind::SigV2);
        assert_eq!(k("/b/k?X-Amz-Signature=ab&X-Amz-Credential=c", None), AuthKind::SigV4Presigned);
        assert_eq!(k("/b/k?AWSAccessKeyId=a&Expires=1&Signature=s", None), AuthKind::SigV2Presigned);
        assert_eq!(k("/b/k?prefix=Signature", None), AuthKind::Anonymous);
    }
}
