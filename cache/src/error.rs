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
    /// The version id names no version of the key.
    #[error("no such version")]
    NoSuchVersion,
    /// A caller's check, run under the tree lock, refused the change (named why).
    #[error("{0}")]
    Refused(String),
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
    /// The filesystem is full (ENOSPC, EDQUOT): nothing was published, the previous object is intact.
    #[error("{}: no space left on the device", path.display())]
    NoSpace { path: PathBuf },
    /// The bucket still holds objects.
    #[error("the bucket is not empty")]
    NotEmpty,
    /// The bucket was deleted (or deleted and created anew) while the write was in progress.
    #[error("the bucket no longer exists")]
    BucketGone,
    /// The backend of a remote bucket failed or refused.
    #[error(transparent)]
    Backend(#[from] trove_backends::Error),
}

impl Error {
    /// An I/O failure at `path`; a full filesystem becomes [`Error::NoSpace`], so that no caller has to
    /// look at errno.
    pub fn io(path: &Path, source: std::io::Error) -> Error {
        match source.raw_os_error() {
            Some(libc::ENOSPC) | Some(libc::EDQUOT) => Error::NoSpace { path: path.to_owned() },
            _ => Error::Io { path: path.to_owned(), source },
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
