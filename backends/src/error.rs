//! Backend errors, reduced to what the S3 layer must decide on, and the one classification of provider
//! answers (HTTP status + provider error code) into them.

use std::time::Duration;

#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("not found: {bucket}/{key}")]
    NotFound { bucket: String, key: String },
    #[error("backend bucket {0} does not exist")]
    NoSuchBucket(String),
    #[error("access denied by the backend: {0}")]
    AccessDenied(String),
    #[error("precondition failed")]
    PreconditionFailed,
    /// Retryable: the backend is down or timed out.
    #[error("backend unavailable: {message}")]
    Unavailable { message: String, retry_after: Option<Duration> },
    /// Retryable: the backend asks us to slow down (429, S3's SlowDown, Azure's ServerBusy, GCS's rate limits).
    #[error("backend throttled: {message}")]
    Throttled { message: String, retry_after: Option<Duration> },
    /// The requested range starts past the end of the object.
    #[error("range not satisfiable")]
    RangeNotSatisfiable,
    /// The request is not valid for this backend (a name it refuses, an unsupported option).
    #[error("invalid request for the backend: {0}")]
    Invalid(String),
    #[error("backend error: {0}")]
    Other(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn unavailable(message: impl Into<String>) -> Error {
        Error::Unavailable { message: message.into(), retry_after: None }
    }

    /// Whether trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Unavailable { .. } | Error::Throttled { .. })
    }

    /// Classifies a provider's error answer. `code` is the provider's error code (`NoSuchKey`, `BlobNotFound`,
    /// `ContainerNotFound`, ...) when it sent one; `key` is empty for bucket-level requests.
    pub fn from_status(status: u16, code: Option<&str>, message: &str, bucket: &str, key: &str) -> Error {
        let msg = || match code {
            Some(c) if !message.contains(c) => format!("{status} {c}: {message}"),
            _ => format!("{status}: {message}"),
        };
        let bucket_missing = matches!(code, Some("NoSuchBucket" | "ContainerNotFound"))
            || (key.is_empty() && status == 404)
            || (status == 404 && message.contains("bucket") && message.contains("not") && code.is_none());
        match status {
            404 | 410 if bucket_missing => Error::NoSuchBucket(bucket.to_owned()),
            404 | 410 => Error::NotFound { bucket: bucket.to_owned(), key: key.to_owned() },
            401 | 403 => Error::AccessDenied(msg()),
            412 => Error::PreconditionFailed,
            429 => Error::Throttled { message: msg(), retry_after: None },
            500..=599 if code.is_some_and(is_throttling_code) => Error::Throttled { message: msg(), retry_after: None },
            408 | 500..=599 => Error::Unavailable { message: msg(), retry_after: None },
            416 => Error::RangeNotSatisfiable,
            400 | 405 | 409 | 411 | 413 | 414 => Error::Invalid(msg()),
            _ => Error::Other(msg()),
        }
    }
}

/// Provider error codes that mean "too many requests" (S3, Azure, GCS).
fn is_throttling_code(code: &str) -> bool {
    matches!(
        code,
        "SlowDown"
            | "Throttling"
            | "ThrottlingException"
            | "RequestLimitExceeded"
            | "TooManyRequests"
            | "ServerBusy"
            | "rateLimitExceeded"
            | "userRateLimitExceeded"
    )
}

#[cfg(test)]
mod tests {
    use super::Error;

    #[test]
    fn statuses_map_to_kinds() {
        assert!(matches!(Error::from_status(404, Some("NoSuchKey"), "", "b", "k"), Error::NotFound { .. }));
        assert!(matches!(Error::from_status(404, Some("NoSuchBucket"), "", "b", "k"), Error::NoSuchBucket(_)));
        assert!(matches!(Error::from_status(404, Some("ContainerNotFound"), "", "b", "k"), Error::NoSuchBucket(_)));
        assert!(matches!(Error::from_status(404, None, "", "b", ""), Error::NoSuchBucket(_)));
        assert!(matches!(Error::from_status(404, Some("BlobNotFound"), "", "b", "k"), Error::NotFound { .. }));
        assert!(matches!(Error::from_status(403, Some("AccessDenied"), "", "b", "k"), Error::AccessDenied(_)));
        assert!(matches!(Error::from_status(401, None, "", "b", "k"), Error::AccessDenied(_)));
        assert!(matches!(Error::from_status(412, None, "", "b", "k"), Error::PreconditionFailed));
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(Error::from_status(s, Some("SlowDown"), "x", "b", "k").is_retryable(), "{s}");
        }
        assert!(matches!(Error::from_status(429, None, "", "b", "k"), Error::Throttled { .. }));
        assert!(matches!(Error::from_status(503, Some("SlowDown"), "", "b", "k"), Error::Throttled { .. }));
        assert!(matches!(Error::from_status(503, Some("ServerBusy"), "", "b", "k"), Error::Throttled { .. }));
        assert!(matches!(Error::from_status(503, None, "down", "b", "k"), Error::Unavailable { .. }));
        assert!(matches!(Error::from_status(400, Some("InvalidArgument"), "", "b", "k"), Error::Invalid(_)));
        assert!(matches!(Error::from_status(418, None, "", "b", "k"), Error::Other(_)));
        assert!(!Error::from_status(403, None, "", "b", "k").is_retryable());
    }
}
