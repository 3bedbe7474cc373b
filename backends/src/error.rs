//! Backend errors, reduced to what the S3 layer must decide on.

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("not found: {bucket}/{key}")]
    NotFound { bucket: String, key: String },
    #[error("access denied by the backend: {0}")]
    AccessDenied(String),
    #[error("precondition failed")]
    PreconditionFailed,
    /// Retryable: the backend is down, timed out or throttled us.
    #[error("backend unavailable: {message}")]
    Unavailable { message: String, retry_after: Option<std::time::Duration> },
    #[error("backend error: {0}")]
    Other(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
