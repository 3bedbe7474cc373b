//! SigV2 as strictly as S3 checks it, before s3s sees the request.
//!
//! s3s verifies SigV2 without looking at the clock (a header-signed request never expires, a presigned URL may
//! live forever) and compares signatures with `!=`. This module refuses what S3 refuses: a `Date` (or
//! `x-amz-date`) more than 15 minutes from the server's clock (RequestTimeTooSkewed), a presigned `Expires` in
//! the past or more than seven days ahead, and any signature that does not match, compared in constant time.
//! It builds the string to sign exactly as s3s does, so the two never disagree on a valid request. SigV2 can
//! be switched off (`[s3] sigv2 = false`): S3's answer for regions without SigV2 is then given.

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use http::{HeaderMap, Method, StatusCode, Uri};
use time::OffsetDateTime;

use crate::state::AppState;

/// SigV2's allowed clock skew, as S3's.
const MAX_SKEW_SECS: i64 = 15 * 60;
/// The longest a presigned URL may live, as for SigV4.
const MAX_EXPIRES_SECS: i64 = 7 * 24 * 3600;

/// Sub-resources that are part of SigV2's canonicalized resource (s3s's list).
const INCLUDED_QUERY: &[&str] = &[
    "accelerate",
    "acl",
    "analytics",
    "cors",
    "defaultObjectAcl",
    "delete",
    "inventory",
    "lifecycle",
    "location",
    "logging",
    "metrics",
    "notification",
    "object-lock",
    "partNumber",
    "policy",
    "replication",
    "requestPayment",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "restore",
    "select",
    "select-type",
    "storageClass",
    "tagging",
    "torrent",
    "uploadId",
    "uploads",
    "versionId",
    "versioning",
    "versions",
    "website",
];

/// Why a SigV2 request is refused: the S3 status, code and message.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: &'static str,
}

const fn refuse(status: StatusCode, code: &'static str, message: &'static str) -> Refusal {
    Refusal { status, code, message }
}

const DISABLED: Refusal = refuse(
    StatusCode::BAD_REQUEST,
    "InvalidRequest",
    "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.",
);
const SKEWED: Refusal = refuse(
    StatusCode::FORBIDDEN,
    "RequestTimeTooSkewed",
    "The difference between the request time and the current time is too large.",
);
const NO_DATE: Refusal =
    refuse(StatusCode::FORBIDDEN, "AccessDenied", "AWS authentication requires a valid Date or x-amz-date header");
const EXPIRED: Refusal = refuse(StatusCode::FORBIDDEN, "AccessDenied", "Request has expired");
const TOO_LONG: Refusal =
    refuse(StatusCode::FORBIDDEN, "AccessDenied", "A presigned URL may be valid for at most seven days");
const MALFORMED: Refusal = refuse(
    StatusCode::BAD_REQUEST,
    "AuthorizationHeaderMalformed",
    "The authorization header or query parameters are malformed.",
);
const UNKNOWN_KEY: Refusal = refuse(
    StatusCode::FORBIDDEN,
    "InvalidAccessKeyId",
    "The AWS Access Key Id you provided does not exist in our records.",
);
const MISMATCH: Refusal = refuse(
    StatusCode::FORBIDDEN,
    "SignatureDoesNotMatch",
    "The request signature we calculated does not match the signature you provided.",
);

/// The parts of a request SigV2 signs.
pub struct Signed<'a> {
    pub method: &'a Method,
    pub uri: &'a Uri,
    pub headers: &'a HeaderMap,
    /// The query's decoded pairs (the request target's).
    pub query: &'a [(String, String)],
    /// The bucket of a virtual-hosted request (it leads the canonicalized resource).
    pub vh_bucket: Option<&'a str>,
}

/// Which resource the signature was made over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Matched {
    /// The request's path, as sent.
    AsSent,
    /// `/bucket/` for a path-style `/bucket` (how botocore signs bucket requests): s3s must see that path to
    /// verify the same signature.
    WithSlash,
}

/// Checks a SigV2 request (header-signed or presigned). `Ok` lets it on to s3s.
pub fn check(state: &AppState, req: &Signed<'_>, presigned: bool, now: OffsetDateTime) -> Result<Matched, Refusal> {
    if !state.sigv2 {
        return Err(DISABLED);
    }
    let qs = sorted(req.query.to_vec());
    let headers = ordered_headers(req.headers);
    let (access_key, given) = if presigned {
        let access_key = unique(&qs, "AWSAccessKeyId").ok_or(MALFORMED)?;
        let expires = unique(&qs, "Expires").and_then(|e| e.parse::<i64>().ok()).ok_or(MALFORMED)?;
        let left = expires - now.unix_timestamp();
        if left < 0 {
            return Err(EXPIRED);
        }
        if left > MAX_EXPIRES_SECS {
            return Err(TOO_LONG);
        }
        let sig = unique(&qs, "Signature").ok_or(MALFORMED)?;
        (access_key.to_owned(), percent_encoding::percent_decode_str(sig).decode_utf8_lossy().into_owned())
    } else {
        let auth = unique(&headers, "authorization").ok_or(MALFORMED)?;
        let (access_key, sig) = auth.strip_prefix("AWS ").and_then(|r| r.rsplit_once(':')).ok_or(MALFORMED)?;
        let date = unique(&headers, "x-amz-date").or_else(|| unique(&headers, "date")).ok_or(NO_DATE)?;
        let when = parse_date(date).ok_or(NO_DATE)?;
        if (now - when).whole_seconds().abs() > MAX_SKEW_SECS {
            return Err(SKEWED);
        }
        (access_key.to_owned(), sig.to_owned())
    };
    let user = state.user(&access_key).ok_or(UNKNOWN_KEY)?;
    let sign = |to_sign: &str| {
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(user.secret_key.as_bytes()).map_err(|_| MISMATCH)?;
        mac.update(to_sign.as_bytes());
        let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        Ok::<_, Refusal>(crate::door::constant_time_eq(expected.as_bytes(), given.as_bytes()))
    };
    let path = req.uri.path();
    if sign(&string_to_sign(req, path, &qs, &headers, presigned))? {
        return Ok(Matched::AsSent);
    }
    // A path-style bucket request (`/bucket`) is signed by some clients (botocore) as the virtual-hosted
    // form's resource, `/bucket/`: the same resource.
    let bucket_only = req.vh_bucket.is_none() && path.len() > 1 && !path[1..].contains('/');
    if bucket_only && sign(&string_to_sign(req, &format!("{path}/"), &qs, &headers, presigned))? {
        return Ok(Matched::WithSlash);
    }
    Err(MISMATCH)
}

/// `Date` forms SigV2 clients send: RFC 1123 (`Mon, 01 Jan 2001 00:00:00 GMT`), RFC 2822 with a numeric zone,
/// and ISO 8601 basic (`20010101T000000Z`).
fn parse_date(s: &str) -> Option<OffsetDateTime> {
    let rfc1123 = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let basic = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    time::PrimitiveDateTime::parse(s.trim(), &rfc1123)
        .map(time::PrimitiveDateTime::assume_utc)
        .or_else(|_| OffsetDateTime::parse(s.trim(), &time::format_description::well_known::Rfc2822))
        .or_else(|_| time::PrimitiveDateTime::parse(s.trim(), &basic).map(time::PrimitiveDateTime::assume_utc))
        .ok()
}

/// Query pairs sorted by name (stable), as s3s orders them.
fn sorted(mut pairs: Vec<(String, String)>) -> Vec<(String, String)> {
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    pairs
}

/// Header `(name, value)` pairs with UTF-8 values, sorted by name (stable), as s3s does.
fn ordered_headers(h: &HeaderMap) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> =
        h.iter().filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned()))).collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// The value of `name` when it occurs exactly once.
fn unique<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    let mut it = pairs.iter().filter(|(k, _)| k == name);
    let first = it.next()?;
    it.next().is_none().then_some(first.1.as_str())
}

fn string_to_sign(
    req: &Signed<'_>,
    path: &str,
    qs: &[(String, String)],
    headers: &[(String, String)],
    presigned: bool,
) -> String {
    let mut s = String::with_capacity(256);
    s.push_str(req.method.as_str());
    s.push('\n');
    s.push_str(unique(headers, "content-md5").unwrap_or_default());
    s.push('\n');
    s.push_str(unique(headers, "content-type").unwrap_or_default());
    s.push('\n');
    if presigned {
        s.push_str(unique(qs, "Expires").unwrap_or_default());
    } else if unique(headers, "x-amz-date").is_none() {
        s.push_str(unique(headers, "date").unwrap_or_default());
    }
    s.push('\n');
    let mut last = "";
    for (name, _) in headers {
        if !name.starts_with("x-amz-") || name == last {
            continue;
        }
        last = name;
        let values: Vec<&str> = headers.iter().filter(|(k, _)| k == name).map(|(_, v)| v.trim()).collect();
        s.push_str(name);
        s.push(':');
        s.push_str(&values.join(","));
        s.push('\n');
    }
    if let Some(b) = req.vh_bucket {
        s.push('/');
        s.push_str(b);
    }
    s.push_str(path);
    let mut first = true;
    for q in INCLUDED_QUERY {
        if let Some(v) = unique(qs, q) {
            s.push(if first { '?' } else { '&' });
            first = false;
            s.push_str(q);
            if !v.is_empty() {
                s.push('=');
                s.push_str(v);
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed<'a>(method: &'a Method, uri: &'a Uri, headers: &'a HeaderMap) -> Signed<'a> {
        Signed { method, uri, headers, query: &[], vh_bucket: None }
    }

    /// AWS's SigV2 documentation example (Object GET, virtual-hosted).
    #[test]
    fn aws_example_string_to_sign() {
        let mut h = HeaderMap::new();
        h.insert("date", "Tue, 27 Mar 2007 19:36:42 +0000".parse().unwrap());
        let (m, u) = (Method::GET, "/photos/puppy.jpg".parse::<Uri>().unwrap());
        let req = Signed { vh_bucket: Some("awsexamplebucket1"), ..signed(&m, &u, &h) };
        let s = string_to_sign(&req, u.path(), &[], &ordered_headers(&h), false);
        assert_eq!(s, "GET\n\n\nTue, 27 Mar 2007 19:36:42 +0000\n/awsexamplebucket1/photos/puppy.jpg");
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(b"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY").unwrap();
        mac.update(s.as_bytes());
        let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        assert_eq!(sig, "qgk2+6Sv9/oM7G3qLEjTH1a1l1g=");
    }

    #[test]
    fn sub_resources_and_amz_headers() {
        let mut h = HeaderMap::new();
        h.append("x-amz-meta-b", "2".parse().unwrap());
        h.append("x-amz-meta-a", " 1 ".parse().unwrap());
        h.append("x-amz-meta-a", "3".parse().unwrap());
        h.insert("x-amz-date", "Tue, 27 Mar 2007 19:36:42 +0000".parse().unwrap());
        h.insert("date", "ignored".parse().unwrap());
        let (m, u) = (Method::PUT, "/b/k?uploadId=u1&partNumber=2&foo=bar".parse::<Uri>().unwrap());
        let req = signed(&m, &u, &h);
        let qs = sorted(crate::request::query_pairs(u.query().unwrap()));
        let s = string_to_sign(&req, u.path(), &qs, &ordered_headers(&h), false);
        assert_eq!(
            s,
            "PUT\n\n\n\nx-amz-date:Tue, 27 Mar 2007 19:36:42 +0000\nx-amz-meta-a:1,3\nx-amz-meta-b:2\n\
             /b/k?partNumber=2&uploadId=u1"
        );
    }

    #[test]
    fn dates() {
        let t = parse_date("Mon, 01 Jan 2001 00:00:00 GMT").unwrap();
        assert_eq!(t.unix_timestamp(), 978_307_200);
        assert_eq!(parse_date("Mon, 01 Jan 2001 00:00:00 +0000").unwrap(), t);
        assert_eq!(parse_date("20010101T000000Z").unwrap(), t);
        assert!(parse_date("yesterday").is_none());
    }
}
