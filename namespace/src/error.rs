//! Errors of the namespace crate.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("invalid bucket URI {uri:?}: {reason}")]
    InvalidUri { uri: String, reason: &'static str },
    #[error("unknown provider {0:?} (expected ais, aws/s3, gcp/gs, azure/az)")]
    UnknownProvider(String),
    #[error("invalid bucket name: {0}")]
    InvalidName(#[from] crate::BucketNameError),
    #[error("bucket {0:?} already exists")]
    AlreadyExists(String),
    #[error("bucket {0:?} not found")]
    NotFound(String),
    #[error("invalid bucket properties: {0}")]
    InvalidProps(String),
    /// Display names the file; the cause is the `source`, which error reports print after it.
    #[error("registry file {}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("registry file {} is corrupt", path.display())]
    Corrupt { path: PathBuf, source: serde_json::Error },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
