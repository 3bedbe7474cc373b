//! Errors of the storage layer.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("no such object")]
    NotFound,
    #[error("precondition failed")]
    PreconditionFailed,
    #[error("no such upload")]
    NoSuchUpload,
    #[error("object metadata is too large for this filesystem")]
    MetadataTooLarge,
    /// Displays the path only: the I/O error is the `source`, which error reports print after it.
    #[error("{}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: unreadable object metadata")]
    Corrupt { path: PathBuf },
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    Internal(String),
    /// The backend of a remote bucket failed or refused.
    #[error(transparent)]
    Backend(#[from] trove_backends::Error),
}

impl Error {
    pub fn io(path: &Path, source: std::io::Error) -> Error {
        Error::Io { path: path.to_owned(), source }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
