//! The data layer's one error type: what went wrong, in terms both frontends can word (S3 XML errors in
//! `s3/errors.rs`, AIS JSON errors in `native/errors.rs`). Storage and backend errors convert into it here,
//! exhaustively, so neither frontend looks at errno values or message text.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no such bucket")]
    NoSuchBucket,
    #[error("bucket {0} already exists")]
    BucketExists(String),
    #[error("invalid bucket name: {0}")]
    InvalidBucketName(String),
    #[error("invalid bucket properties: {0}")]
    InvalidProps(String),
    #[error("no such object")]
    NoSuchKey,
    #[error("no such upload")]
    NoSuchUpload,
    #[error("no such version")]
    NoSuchVersion,
    #[error("invalid version id specified")]
    InvalidVersionId,
    /// Refused for what the object is (an Object Lock retention or legal hold), named why.
    #[error("{0}")]
    Forbidden(String),
    /// Server-side encryption asked for in a way that cannot be served (named).
    #[error("{0}")]
    InvalidSse(String),
    /// The object is encrypted with a customer key, and the request gave none.
    #[error("the object was stored with a customer-provided key; the request must provide it")]
    SseKeyRequired,
    /// The customer key given is not the object's.
    #[error("the customer-provided key is not the object's key")]
    SseWrongKey,
    #[error("the bucket is not empty")]
    BucketNotEmpty,
    #[error("precondition failed")]
    PreconditionFailed,
    #[error("the continuation token provided is incorrect")]
    InvalidToken,
    #[error("the requested range is not satisfiable")]
    InvalidRange,
    #[error("object metadata is too large")]
    MetadataTooLarge,
    #[error("the object exceeds the maximum allowed object size")]
    EntityTooLarge,
    #[error("the Content-MD5 is not valid")]
    InvalidDigest,
    /// The client's Content-MD5 or a checksum (named) did not match the body.
    #[error("the {0} you specified did not match what was received")]
    BadDigest(String),
    #[error("a part of the list was not uploaded, or its ETag does not match")]
    InvalidPart,
    #[error("the list of parts is not in ascending order")]
    InvalidPartOrder,
    #[error("a part other than the last is smaller than the minimum part size")]
    EntityTooSmall,
    /// A CompleteMultipartUpload part list that is empty or longer than S3 allows.
    #[error("the list of parts is empty or too long")]
    MalformedParts,
    /// An archive request that cannot be served: not an archive, a corrupt one, a bad selection (named).
    #[error("{0}")]
    InvalidArchive(String),
    /// A request Trove does not carry out for this kind of bucket (named).
    #[error("{0} is not supported")]
    NotImplemented(&'static str),
    /// A full mountpath, or the node above its out-of-space mark.
    #[error("insufficient storage: no space left on the node")]
    NoSpace,
    /// The bucket's provider has no client on this node.
    #[error("provider {0} is not set up: give [backends.{0}] in the config or its standard environment (see docs/backends.md)")]
    NoProvider(&'static str),
    /// The bucket's remote AIS cluster is not attached (any more).
    #[error("remote AIS cluster {0} is not attached (see `trove cluster remote-attach`)")]
    NoRemoteCluster(String),
    #[error("{0} is not a cloud bucket (use s3://, gs:// or az://)")]
    NotRemote(String),
    #[error("the backend bucket {0} does not exist")]
    BackendNoSuchBucket(String),
    #[error("the backend denied access: {0}")]
    BackendDenied(String),
    #[error("the backend refused the request: {0}")]
    BackendInvalid(String),
    #[error("the backend throttled the request: {message}")]
    Throttled { message: String, retry_after: Option<Duration> },
    #[error("the backend is unavailable: {0}")]
    Unavailable(String),
    /// The cluster cannot make a metadata change now (no quorum, or a node that had to answer did not).
    #[error("the cluster cannot make the change now: {0}")]
    ClusterUnavailable(String),
    /// Anything else; logged once where it is converted.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<trove_backends::Error> for Error {
    fn from(e: trove_backends::Error) -> Self {
        use trove_backends::Error as B;
        match e {
            B::NotFound { .. } => Error::NoSuchKey,
            B::NoSuchBucket(b) => Error::BackendNoSuchBucket(b),
            B::AccessDenied(m) => Error::BackendDenied(m),
            B::PreconditionFailed => Error::PreconditionFailed,
            B::RangeNotSatisfiable => Error::InvalidRange,
            B::Invalid(m) => Error::BackendInvalid(m),
            B::Throttled { message, retry_after } => Error::Throttled { message, retry_after },
            B::Unavailable { message, .. } => Error::Unavailable(message),
            other => Error::Internal(format!("backend: {other}")),
        }
    }
}

impl From<trove_cluster::Error> for Error {
    fn from(e: trove_cluster::Error) -> Self {
        use trove_cluster::Error as K;
        match e {
            K::NoQuorum(_) => Error::ClusterUnavailable(e.to_string()),
            K::NoSuchNode(_) | K::Refused(_) => Error::InvalidProps(e.to_string()),
            other => Error::Internal(format!("cluster: {other}")),
        }
    }
}

impl From<trove_cache::Error> for Error {
    fn from(e: trove_cache::Error) -> Self {
        use trove_cache::Error as C;
        match e {
            C::NotFound => Error::NoSuchKey,
            C::NoSuchUpload => Error::NoSuchUpload,
            C::NoSuchVersion => Error::NoSuchVersion,
            C::Refused(why) => Error::Forbidden(why),
            C::PreconditionFailed => Error::PreconditionFailed,
            C::MetadataTooLarge => Error::MetadataTooLarge,
            C::NoSpace { path } => {
                tracing::warn!(path = %path.display(), "no space left on a mountpath");
                Error::NoSpace
            }
            C::BucketGone => Error::NoSuchBucket,
            C::NotEmpty => Error::BucketNotEmpty,
            C::Backend(b) => b.into(),
            other => Error::Internal(format!("{other}{}", source_text(&other))),
        }
    }
}

impl From<trove_namespace::Error> for Error {
    fn from(e: trove_namespace::Error) -> Self {
        use trove_namespace::Error as N;
        match e {
            N::NotFound(_) => Error::NoSuchBucket,
            N::AlreadyExists(name) => Error::BucketExists(name),
            N::InvalidName(reason) => Error::InvalidBucketName(reason.to_string()),
            N::InvalidProps(reason) => Error::InvalidProps(reason),
            N::Io { ref source, .. } if is_no_space(source) => Error::NoSpace,
            other => Error::Internal(format!("bucket registry: {other}{}", cause(&other))),
        }
    }
}

fn is_no_space(e: &std::io::Error) -> bool {
    use rustix::io::Errno;
    matches!(Errno::from_io_error(e), Some(Errno::NOSPC | Errno::DQUOT))
}

fn cause(e: &dyn std::error::Error) -> String {
    e.source().map(|s| format!(": {s}")).unwrap_or_default()
}

/// The cause of an I/O error (its path alone is the Display), for the one log line.
fn source_text(e: &trove_cache::Error) -> String {
    std::error::Error::source(e).map(|s| format!(": {s}")).unwrap_or_default()
}
