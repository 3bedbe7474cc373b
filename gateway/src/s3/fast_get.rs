//! The GET/HEAD fast path in front of s3s (DESIGN §10).
//!
//! A plain, header-signed, path-style read of an object its caller owns is answered here: one pass over the
//! headers, SigV4 verified with a signing key cached per thread (access key, date, region), the object opened
//! inline, headers written directly. Anything else — a query string, a header outside a short allowlist (so
//! ranges, conditionals, checksum mode), a signature this module does not reproduce, any error, anonymous
//! access — returns `None` and the request goes through s3s unchanged. The fast path therefore only ever
//! accepts what it can verify completely, and every error answer still comes from the one S3 frontend.

use std::cell::RefCell;

use http::header::{HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use time::OffsetDateTime;

use crate::cluster::Owner;
use crate::data::FileBody;
use crate::door::{self, Action, Caller, ObjectAcl};
use crate::request::Target;
use crate::s3::bucket::timestamp_ms;
use crate::s3::ctx::MAX_KEY_LEN;
use crate::s3::object::{http_date, read_headers};
use crate::s3::sigv4::{self, Authorization, Canonical};
use crate::state::{AppState, User};

const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/// SigV4's allowed clock skew.
const MAX_SKEW_SECS: i64 = 15 * 60;
/// The longest validity of a presigned URL (7 days).
const MAX_PRESIGNED_SECS: i64 = 604_800;
/// Whether a plain read may carry the header `name`; any other header sends the request to s3s.
fn allowed(name: &str) -> bool {
    use crate::cluster::forward::{FORWARDED, SMAP_VERSION};
    matches!(
        name,
        "accept"
            | "accept-encoding"
            | "amz-sdk-invocation-id"
            | "amz-sdk-request"
            | "authorization"
            | "range"
            | "connection"
            | "content-length"
            | "host"
            | "user-agent"
            | "x-amz-checksum-mode"
            | "x-amz-content-sha256"
            | "x-amz-date"
            | "x-amz-user-agent"
            // A request another node forwarded here: served like the client's own (its signature is checked
            // below).
            | FORWARDED
            | SMAP_VERSION
    )
}

/// The query parameters of a presigned URL the fast path verifies (besides the SDKs' `x-id=GetObject`).
const PRESIGNED: [&str; 6] =
    ["X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders", "X-Amz-Signature"];

/// Whether a read has the shape the fast path takes (allowed headers only; no query, or a presigned URL's):
/// a cheap look at the head alone, no signature or object checked. A node relaying a read uses it to tell
/// whether the owner answered it on its direct path, so that the connection is still one to reuse.
pub fn looks_plain(uri: &http::Uri, h: &http::HeaderMap) -> bool {
    let query_ok = uri.query().is_none_or(|q| {
        q.split('&').all(|p| {
            let name = p.split('=').next().unwrap_or_default();
            name == "x-id" || PRESIGNED.contains(&name)
        })
    });
    query_ok && h.keys().all(|name| allowed(name.as_str()))
}

/// A signing key: deriving one costs four HMACs.
struct SigningKey {
    access_key: String,
    date: String,
    region: String,
    key: [u8; 32],
}

thread_local! {
    /// Recent signing keys, newest last: a node sees few (access key, date, region) at a time, so a short
    /// scan finds one without allocating.
    static KEYS: RefCell<Vec<SigningKey>> = const { RefCell::new(Vec::new()) };
}

fn cached_key(secret: &str, access_key: &str, date: &str, region: &str) -> [u8; 32] {
    KEYS.with(|keys| {
        let mut keys = keys.borrow_mut();
        if let Some(k) = keys.iter().rev().find(|k| k.access_key == access_key && k.date == date && k.region == region)
        {
            return k.key;
        }
        if keys.len() >= 64 {
            keys.remove(0);
        }
        let key = sigv4::signing_key(secret, date, region, "s3");
        keys.push(SigningKey { access_key: access_key.into(), date: date.into(), region: region.into(), key });
        key
    })
}

/// `YYYYMMDDTHHMMSSZ` (SigV4's `x-amz-date`), read by hand: a format description costs more than the rest of
/// the header checks together.
fn parse_amz_date(s: &str) -> Option<OffsetDateTime> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |at: usize, len: usize| -> Option<u32> {
        b[at..at + len].iter().try_fold(0u32, |n, d| d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0')))
    };
    let month = time::Month::try_from(u8::try_from(num(4, 2)?).ok()?).ok()?;
    let date = time::Date::from_calendar_date(num(0, 4)? as i32, month, num(6, 2)? as u8).ok()?;
    let at = time::Time::from_hms(num(9, 2)? as u8, num(11, 2)? as u8, num(13, 2)? as u8).ok()?;
    Some(time::PrimitiveDateTime::new(date, at).assume_utc())
}

/// The caller of a header-signed request (`Authorization: AWS4-HMAC-SHA256 ...`), when its signature is one
/// this module reproduces.
fn header_signed<'s>(state: &'s AppState, method: &Method, path: &str, h: &http::HeaderMap) -> Option<&'s User> {
    let auth = Authorization::parse(h.get(http::header::AUTHORIZATION)?.to_str().ok()?)?;
    if auth.service != "s3" || auth.region != state.region {
        return None;
    }
    // Every signed header present once, names sorted (as SigV4 requires), host and date among them.
    if !auth.signed_headers.windows(2).all(|w| w[0] < w[1])
        || !auth.signed_headers.contains(&"host")
        || !auth.signed_headers.contains(&"x-amz-date")
    {
        return None;
    }
    let signed = signed_values(&auth.signed_headers, h)?;
    let amz_date = h.get("x-amz-date")?.to_str().ok()?;
    let when = parse_amz_date(amz_date)?;
    if auth.date.len() != 8
        || !amz_date.starts_with(auth.date)
        || (OffsetDateTime::now_utc() - when).abs() > time::Duration::seconds(MAX_SKEW_SECS)
    {
        return None;
    }
    let payload_hash = h.get("x-amz-content-sha256")?.to_str().ok()?;
    if payload_hash != "UNSIGNED-PAYLOAD" && payload_hash != EMPTY_SHA256 {
        return None;
    }
    let user = state.user(auth.access_key)?;
    let canonical = Canonical { method: method.as_str(), path, query: "", headers: &signed, payload_hash };
    let key = cached_key(&user.secret_key, auth.access_key, auth.date, auth.region);
    let expected = canonical.signature_bytes(&key, amz_date, &auth.scope());
    sigv4::matches(auth.signature, &expected).then_some(user)
}

/// The caller of a presigned URL (`?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=...`) that carries only
/// SigV4's parameters (and the SDKs' `x-id=GetObject`), within its validity, with a signature this module
/// reproduces. s3s's checks, in the same order, decide the refusals.
fn presigned<'s>(
    state: &'s AppState,
    method: &Method,
    path: &str,
    pairs: &[(String, String)],
    h: &http::HeaderMap,
) -> Option<&'s User> {
    // A second signature, or a body hash to check: s3s.
    if h.contains_key(http::header::AUTHORIZATION) || h.contains_key("x-amz-content-sha256") {
        return None;
    }
    let mut got: [Option<&str>; 6] = [None; 6];
    for (k, v) in pairs {
        if k == "x-id" && v == "GetObject" {
            continue;
        }
        let slot = PRESIGNED.iter().position(|n| n == k)?;
        if got[slot].replace(v.as_str()).is_some() {
            return None;
        }
    }
    let [Some(algorithm), Some(credential), Some(amz_date), Some(expires), Some(signed_headers), Some(signature)] = got
    else {
        return None;
    };
    if algorithm != "AWS4-HMAC-SHA256" {
        return None;
    }
    let mut parts = credential.split('/');
    let (access_key, date, region, service, terminal) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || terminal != "aws4_request" || service != "s3" || region != state.region {
        return None;
    }
    let when = parse_amz_date(amz_date)?;
    if date.len() != 8 || !amz_date.starts_with(date) {
        return None;
    }
    let expires: i64 = expires.parse().ok().filter(|n| (0..=MAX_PRESIGNED_SECS).contains(n))?;
    // To the nanosecond, as s3s compares: a URL valid for 0 seconds is expired at once.
    let age = OffsetDateTime::now_utc() - when;
    if age > time::Duration::seconds(expires) || age < -time::Duration::seconds(MAX_SKEW_SECS) {
        return None;
    }
    let names: Vec<&str> = signed_headers.split(';').collect();
    if !names.windows(2).all(|w| w[0] < w[1]) || !names.contains(&"host") {
        return None;
    }
    let signed = signed_values(&names, h)?;
    let mut encoded: Vec<(String, String)> = pairs
        .iter()
        .filter(|(k, _)| k != "X-Amz-Signature")
        .map(|(k, v)| (sigv4::uri_encode(k), sigv4::uri_encode(v)))
        .collect();
    encoded.sort_by(|a, b| a.0.cmp(&b.0));
    let mut canonical_query = String::with_capacity(encoded.iter().map(|(k, v)| k.len() + v.len() + 2).sum());
    for (i, (k, v)) in encoded.iter().enumerate() {
        if i > 0 {
            canonical_query.push('&');
        }
        canonical_query.push_str(k);
        canonical_query.push('=');
        canonical_query.push_str(v);
    }
    let user = state.user(access_key)?;
    let canonical = Canonical {
        method: method.as_str(),
        path,
        query: &canonical_query,
        headers: &signed,
        payload_hash: "UNSIGNED-PAYLOAD",
    };
    let key = cached_key(&user.secret_key, access_key, date, region);
    let expected = canonical.signature_bytes(&key, amz_date, &format!("{date}/{region}/s3/aws4_request"));
    sigv4::matches(signature, &expected).then_some(user)
}

/// `(name, value)` of each signed header, present once, in a form that needs no SigV4 trimming or space
/// folding (values that do go to s3s, so the two can never differ on them).
fn signed_values<'h>(names: &[&'h str], h: &'h http::HeaderMap) -> Option<Vec<(&'h str, &'h str)>> {
    let mut signed = Vec::with_capacity(names.len());
    for name in names {
        let mut values = h.get_all(*name).iter();
        let value = values.next()?.to_str().ok()?;
        if values.next().is_some() || value.trim() != value || value.contains("  ") {
            return None;
        }
        signed.push((*name, value));
    }
    Some(signed)
}

/// A read the fast path answers: the open object, the bytes `[start, end)` to send, and the response's header
/// lines (Content-Length among them).
pub struct Hit {
    pub open: std::sync::Arc<trove_cache::Open>,
    pub status: StatusCode,
    pub start: u64,
    pub end: u64,
    /// HEAD: the headers only.
    pub head: bool,
    /// This answer's own lines; `None`: a whole object's, kept with its handle.
    lines: Option<Vec<u8>>,
}

impl Hit {
    /// The header lines, `name: value\r\n` each.
    pub fn lines(&self) -> &[u8] {
        self.lines.as_deref().or(self.open.rendered.get().map(|l| &l[..])).unwrap_or_default()
    }

    fn header_map(&self) -> Option<http::HeaderMap> {
        let mut headers = http::HeaderMap::with_capacity(16);
        for line in self.lines().split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let line = line.strip_suffix(b"\r")?;
            let at = line.iter().position(|b| *b == b':')?;
            let value = line[at + 1..].strip_prefix(b" ")?;
            headers.append(HeaderName::from_bytes(&line[..at]).ok()?, HeaderValue::from_bytes(value).ok()?);
        }
        Some(headers)
    }
}

/// Answers the request when it is a plain signed read of an owned object; `None` hands it to s3s.
pub fn try_serve<B>(state: &AppState, req: &Request<B>, target: &Target) -> Option<Response<s3s::Body>> {
    let hit = decide(state, req.method(), req.uri(), req.headers(), target)?;
    let mut resp = Response::builder().status(hit.status);
    *resp.headers_mut()? = hit.header_map()?;
    let body = if hit.head {
        s3s::Body::empty()
    } else {
        s3s::Body::from(FileBody::shared(hit.open.file.clone(), hit.start, hit.end).into_blob())
    };
    resp.body(body).ok()
}

/// The fast path's decision on a request head: a [`Hit`] when it is a plain signed read of an owned object
/// that this node serves, `None` for anything that must go through s3s.
/// `target` is the request's, parsed once by the server (its query pairs among it).
pub fn decide(state: &AppState, method: &Method, uri: &http::Uri, h: &http::HeaderMap, target: &Target) -> Option<Hit> {
    let head = match *method {
        Method::GET => false,
        Method::HEAD => true,
        _ => return None,
    };
    let path = uri.path();
    let (bucket, raw_key) = path.strip_prefix('/')?.split_once('/')?;
    if raw_key.is_empty() || bucket.contains('%') {
        return None;
    }
    if h.keys().any(|name| !allowed(name.as_str())) {
        return None;
    }
    if h.get(http::header::CONTENT_LENGTH).is_some_and(|v| v.as_bytes() != b"0") {
        return None;
    }
    // Which object, and whether this node serves it, before any signature work: a node that forwards the
    // request (another node owns the object) spends nothing on it here.
    let key = percent_encoding::percent_decode_str(raw_key).decode_utf8().ok()?;
    if key.len() > MAX_KEY_LEN {
        return None;
    }
    let snapshot = state.registry.snapshot();
    let entry = snapshot.buckets.get(bucket)?;
    // Cached copies that must be revalidated against their backend go through s3s.
    let revalidate = entry.bck.is_remote() && entry.props.versioning.validate_warm_get;
    // A bucket policy or public access block is evaluated by s3s's access hook; CORS headers are added there;
    // requests to a logged bucket are recorded there; requester-pays buckets check a header there.
    let policed = !entry.configs.is_empty()
        && ["policy", "public-access-block", "cors", "lifecycle", "logging", "request-payment"]
            .iter()
            .any(|c| entry.configs.contains_key(*c));
    if revalidate || policed || state.owner(&entry.bck, &key) != Owner::Local {
        return None;
    }
    let user = match uri.query() {
        None => header_signed(state, method, path, h)?,
        Some(_) => presigned(state, method, path, &target.query, h)?,
    };
    // One satisfiable byte range of a GET is answered here (206); anything else about ranges, s3s answers.
    let range = match h.get(http::header::RANGE) {
        None => None,
        Some(_) if head => return None,
        Some(v) => Some(s3s::dto::Range::parse(v.to_str().ok()?).ok()?),
    };

    let open = state.store.open_cached(&entry.bck, &key).ok()?;
    let meta = &open.meta;
    let (start, end) = match range {
        None => (0, meta.size),
        Some(r) => match r {
            s3s::dto::Range::Int { first, last } => trove_backends::ByteRange::FromTo { first, last },
            s3s::dto::Range::Suffix { length } => trove_backends::ByteRange::Suffix(length),
        }
        .resolve(meta.size)?,
    };
    // The door decides as it does for s3s; a refusal goes to s3s, which words the error.
    door::authorize(
        Caller::User(user),
        Action::ReadObject,
        Some(entry),
        ObjectAcl::Known { acl: meta.acl.as_deref(), owner: meta.owner.as_deref() },
    )
    .ok()?;
    if entry.bck.is_remote() {
        state.metrics.hits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    // Checksums describe whole objects: a range gets none.
    let whole = range.is_none();
    let checksums = whole && h.get("x-amz-checksum-mode").is_some_and(|v| v.as_bytes() == b"ENABLED");
    let lines = if whole && !checksums {
        if open.rendered.get().is_none() {
            let _ = open.rendered.set(render(meta, None, false)?.into_boxed_slice());
        }
        None
    } else {
        Some(render(meta, range.map(|_| (start, end)), checksums)?)
    };
    let status = if range.is_some() { StatusCode::PARTIAL_CONTENT } else { StatusCode::OK };
    Some(Hit { open, status, start, end, head, lines })
}

/// The header lines (`name: value\r\n` each) of the answer to a read of `meta`: all of it, or the bytes
/// `range` (start, end) of it. `None` when a value needs encoding the fast path does not do (s3s answers).
fn render(meta: &trove_cache::ObjMeta, range: Option<(u64, u64)>, checksums: bool) -> Option<Vec<u8>> {
    // Encrypted objects are opened chunk by chunk, with keys a request may have to give: s3s serves them.
    if meta.sse.is_some() {
        return None;
    }
    let mut out = Vec::with_capacity(384);
    let mut put = |name: &str, value: &str| -> Option<()> {
        // What `HeaderValue::from_str` accepts: visible ASCII, space and tab.
        if !value.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b)) {
            return None;
        }
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
        Some(())
    };
    let (start, end) = range.unwrap_or((0, meta.size));
    put("content-length", &(end - start).to_string())?;
    if range.is_some() {
        put("content-range", &format!("bytes {start}-{}/{}", end.saturating_sub(1), meta.size))?;
    }
    put("accept-ranges", "bytes")?;
    put("etag", &format!("\"{}\"", meta.etag))?;
    put("last-modified", &http_date(&timestamp_ms(meta.mtime_ms))?)?;
    for (name, value) in [
        ("content-type", &meta.content_type),
        ("content-encoding", &meta.content_encoding),
        ("content-disposition", &meta.content_disposition),
        ("content-language", &meta.content_language),
        ("cache-control", &meta.cache_control),
        ("expires", &meta.expires),
        ("x-amz-storage-class", &meta.storage_class),
    ] {
        if let Some(v) = value {
            put(name, v)?;
        }
    }
    let mut name = String::with_capacity(32);
    for (k, v) in &meta.user {
        // Non-ASCII values need s3s's encoding; leave those objects to it.
        if !v.is_ascii() || HeaderName::from_bytes(k.as_bytes()).is_err() {
            return None;
        }
        name.clear();
        name.push_str("x-amz-meta-");
        name.extend(k.chars().map(|c| c.to_ascii_lowercase()));
        put(&name, v)?;
    }
    for (name, value) in &read_headers(meta, checksums, None) {
        put(name.as_str(), value.to_str().ok()?)?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::parse_amz_date;

    #[test]
    fn amz_dates_parse_as_the_format_description_did() {
        let fmt = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
        for s in ["20261206T163000Z", "20240229T235959Z", "19700101T000000Z"] {
            let want = time::PrimitiveDateTime::parse(s, &fmt).unwrap().assume_utc();
            assert_eq!(parse_amz_date(s), Some(want), "{s}");
        }
        for bad in [
            "20230229T000000Z",
            "20261306T000000Z",
            "20261206T240000Z",
            "20261206 163000Z",
            "20261206T163000",
            "2026120GT163000Z",
            "+0261206T163000Z",
            "",
        ] {
            assert_eq!(parse_amz_date(bad), None, "{bad}");
        }
    }
}
