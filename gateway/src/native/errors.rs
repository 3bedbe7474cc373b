//! The data layer's errors as AIS words them: a status and a message naming `prov://bucket/object` (the AIS
//! SDK picks its exception type from "does not exist" in that text). Client mistakes and a full node are never
//! 500; internal failures are logged here, once.

use http::StatusCode;
use trove_namespace::BucketEntry;

use crate::data::Error;

/// An error about `key` of the bucket `entry`.
pub fn from_data(e: Error, entry: &BucketEntry, key: &str) -> (StatusCode, String) {
    status_and_message(e, &format!("{}://{}/{key}", entry.bck.provider.as_str(), entry.bck.name))
}

/// An error about a bucket (or the registry), named `what`.
pub fn about(e: Error, what: &str) -> (StatusCode, String) {
    status_and_message(e, what)
}

fn status_and_message(e: Error, uri: &str) -> (StatusCode, String) {
    let status = match &e {
        Error::NoSuchBucket
        | Error::NoSuchKey
        | Error::NoSuchVersion
        | Error::NoSuchUpload
        | Error::BackendNoSuchBucket(_) => {
            return (StatusCode::NOT_FOUND, format!("{uri} does not exist"));
        }
        Error::BucketNotEmpty | Error::BucketExists(_) => StatusCode::CONFLICT,
        Error::Forbidden(_) => StatusCode::FORBIDDEN,
        Error::InvalidSse(_) | Error::SseKeyRequired | Error::SseWrongKey => StatusCode::BAD_REQUEST,
        Error::InvalidBucketName(_) | Error::InvalidProps(_) | Error::InvalidVersionId | Error::NotRemote(_) => {
            StatusCode::BAD_REQUEST
        }
        Error::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
        Error::InvalidRange => StatusCode::RANGE_NOT_SATISFIABLE,
        Error::InvalidToken | Error::InvalidArchive(_) => StatusCode::BAD_REQUEST,
        Error::MetadataTooLarge | Error::BackendInvalid(_) => StatusCode::BAD_REQUEST,
        Error::EntityTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        Error::InvalidDigest
        | Error::BadDigest(_)
        | Error::InvalidPart
        | Error::InvalidPartOrder
        | Error::EntityTooSmall
        | Error::MalformedParts => StatusCode::BAD_REQUEST,
        Error::NoSpace => StatusCode::INSUFFICIENT_STORAGE,
        Error::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
        Error::BackendDenied(_) => StatusCode::FORBIDDEN,
        Error::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
        // Attaching a bucket of a provider that is not set up is the operator's request to fix.
        Error::NoProvider(_) => StatusCode::BAD_REQUEST,
        Error::NoRemoteCluster(_) => StatusCode::NOT_FOUND,
        Error::Unavailable(_) | Error::ClusterUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        Error::Internal(m) => {
            tracing::error!(error = %m, object = %uri, "internal error");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    (status, format!("{uri}: {e}"))
}
