//! Conditional requests with S3's precedence rules (RFC 9110 §13.2.2).
//!
//! Reads: `If-Match` (412) outranks `If-Unmodified-Since`; `If-None-Match` (304) outranks `If-Modified-Since`.
//! Times compare at one-second resolution, as HTTP dates carry no more.

use s3s::dto::{ETagCondition, Timestamp};
use s3s::{s3_error, S3Error, S3Result};
use time::OffsetDateTime;
use trove_cache::ObjMeta;

pub struct ReadConditions<'a> {
    pub if_match: Option<&'a ETagCondition>,
    pub if_none_match: Option<&'a ETagCondition>,
    pub if_modified_since: Option<&'a Timestamp>,
    pub if_unmodified_since: Option<&'a Timestamp>,
}

/// What a condition check says to do instead of answering normally.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Proceed,
    NotModified,
    PreconditionFailed,
}

fn etag_matches(cond: &ETagCondition, etag: &str) -> bool {
    match cond {
        ETagCondition::Any => true,
        ETagCondition::ETag(e) => e.value().trim_matches('"') == etag,
    }
}

fn secs(t: &Timestamp) -> i64 {
    OffsetDateTime::from(t.clone()).unix_timestamp()
}

pub fn evaluate(c: &ReadConditions<'_>, meta: &ObjMeta) -> Outcome {
    let modified = meta.mtime_ms.div_euclid(1000);
    match (c.if_match, c.if_unmodified_since) {
        (Some(m), _) if !etag_matches(m, &meta.etag) => return Outcome::PreconditionFailed,
        (None, Some(t)) if modified > secs(t) => return Outcome::PreconditionFailed,
        _ => {}
    }
    match (c.if_none_match, c.if_modified_since) {
        (Some(m), _) if etag_matches(m, &meta.etag) => Outcome::NotModified,
        (None, Some(t)) if modified <= secs(t) => Outcome::NotModified,
        _ => Outcome::Proceed,
    }
}

pub fn check(c: &ReadConditions<'_>, meta: &ObjMeta) -> S3Result<()> {
    match evaluate(c, meta) {
        Outcome::Proceed => Ok(()),
        Outcome::NotModified => Err(not_modified(meta)),
        Outcome::PreconditionFailed => Err(precondition_failed()),
    }
}

/// For CopyObject / UploadPartCopy, every failed `x-amz-copy-source-if-*` condition is a 412.
pub fn check_copy_source(c: &ReadConditions<'_>, meta: &ObjMeta) -> S3Result<()> {
    match evaluate(c, meta) {
        Outcome::Proceed => Ok(()),
        _ => Err(precondition_failed()),
    }
}

pub fn precondition_failed() -> S3Error {
    s3_error!(PreconditionFailed, "At least one of the pre-conditions you specified did not hold")
}

fn not_modified(meta: &ObjMeta) -> S3Error {
    let mut e = S3Error::new(s3s::S3ErrorCode::NotModified);
    e.set_status_code(http::StatusCode::NOT_MODIFIED);
    let mut h = http::HeaderMap::new();
    if let Ok(v) = http::HeaderValue::from_str(&format!("\"{}\"", meta.etag)) {
        h.insert(http::header::ETAG, v);
    }
    e.set_headers(h);
    e
}

/// A write's `If-Match` / `If-None-Match` as the data layer's precondition; `None` when neither is given.
pub fn write_precondition(
    if_match: Option<ETagCondition>,
    if_none_match: Option<ETagCondition>,
) -> Option<crate::data::Precondition> {
    (if_match.is_some() || if_none_match.is_some()).then(|| -> crate::data::Precondition {
        Box::new(move |cur| check_write(if_match.as_ref(), if_none_match.as_ref(), cur))
    })
}

/// Conditional writes: `If-None-Match: *` fails when the key exists; `If-Match` needs an existing object
/// with that ETag (404 when there is none).
pub fn check_write(
    if_match: Option<&ETagCondition>,
    if_none_match: Option<&ETagCondition>,
    current: Option<&ObjMeta>,
) -> Result<(), trove_cache::Error> {
    if let Some(cond) = if_none_match {
        if current.is_some_and(|m| etag_matches(cond, &m.etag)) {
            return Err(trove_cache::Error::PreconditionFailed);
        }
    }
    if let Some(cond) = if_match {
        match current {
            None => return Err(trove_cache::Error::NotFound),
            Some(m) if !etag_matches(cond, &m.etag) => return Err(trove_cache::Error::PreconditionFailed),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use s3s::dto::ETag;

    fn meta() -> ObjMeta {
        ObjMeta { etag: "abc".into(), mtime_ms: 1_000_000, ..Default::default() }
    }

    fn ts(secs: i64) -> Timestamp {
        Timestamp::from(OffsetDateTime::from_unix_timestamp(secs).unwrap())
    }

    fn tag(s: &str) -> ETagCondition {
        ETagCondition::ETag(ETag::Strong(s.into()))
    }

    fn eval(im: Option<&str>, inm: Option<&str>, ims: Option<i64>, ius: Option<i64>) -> Outcome {
        let (im, inm) = (im.map(tag), inm.map(tag));
        let (ims, ius) = (ims.map(ts), ius.map(ts));
        let c = ReadConditions {
            if_match: im.as_ref(),
            if_none_match: inm.as_ref(),
            if_modified_since: ims.as_ref(),
            if_unmodified_since: ius.as_ref(),
        };
        evaluate(&c, &meta())
    }

    #[test]
    fn precedence() {
        use Outcome::*;
        assert_eq!(eval(None, None, None, None), Proceed);
        assert_eq!(eval(Some("abc"), None, None, None), Proceed);
        assert_eq!(eval(Some("nope"), None, None, None), PreconditionFailed);
        assert_eq!(eval(None, Some("abc"), None, None), NotModified);
        assert_eq!(eval(None, Some("nope"), None, None), Proceed);
        assert_eq!(eval(None, None, Some(999), None), Proceed);
        assert_eq!(eval(None, None, Some(1000), None), NotModified);
        assert_eq!(eval(None, None, None, Some(999)), PreconditionFailed);
        assert_eq!(eval(None, None, None, Some(1000)), Proceed);
        // If-Match true wins over a failing If-Unmodified-Since.
        assert_eq!(eval(Some("abc"), None, None, Some(999)), Proceed);
        // If-None-Match false (ETag matches) with If-Modified-Since true: 304.
        assert_eq!(eval(None, Some("abc"), Some(999), None), NotModified);
        // If-None-Match true wins over a failing If-Modified-Since.
        assert_eq!(eval(None, Some("nope"), Some(2000), None), Proceed);
    }

    #[test]
    fn conditional_writes() {
        let m = meta();
        let any = ETagCondition::Any;
        assert!(check_write(None, Some(&any), None).is_ok());
        assert!(matches!(check_write(None, Some(&any), Some(&m)), Err(trove_cache::Error::PreconditionFailed)));
        assert!(check_write(Some(&tag("abc")), None, Some(&m)).is_ok());
        assert!(matches!(check_write(Some(&tag("x")), None, Some(&m)), Err(trove_cache::Error::PreconditionFailed)));
        assert!(matches!(check_write(Some(&tag("x")), None, None), Err(trove_cache::Error::NotFound)));
    }
}
