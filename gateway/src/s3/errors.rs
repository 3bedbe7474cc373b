//! The one mapping from storage and registry errors to S3 errors. Client mistakes never become 500s; real
//! internal failures are logged here, once, and answered with InternalError.

use s3s::{s3_error, S3Error, S3ErrorCode};

pub fn from_store(e: trove_cache::Error) -> S3Error {
    use trove_cache::Error as E;
    match e {
        E::NotFound => s3_error!(NoSuchKey, "The specified key does not exist."),
        E::NoSuchUpload => s3_error!(
            NoSuchUpload,
            "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed."
        ),
        E::PreconditionFailed => crate::s3::conditions::precondition_failed(),
        E::MetadataTooLarge => s3_error!(MetadataTooLarge, "Your metadata headers exceed the maximum allowed metadata size."),
        E::NoSpace { path } => {
            tracing::warn!(path = %path.display(), "no space left on a mountpath");
            insufficient_storage()
        }
        E::BucketGone => no_such_bucket(),
        E::NotEmpty => s3_error!(BucketNotEmpty, "The bucket you tried to delete is not empty"),
        E::Backend(b) => from_backend(b),
        other => internal(other),
    }
}

/// A backend's failure as the S3 client sees it: the backend's verdict for missing objects and refusals,
/// 503 for an unreachable, slow or overloaded backend, 500 with the backend's message otherwise.
pub fn from_backend(e: trove_backends::Error) -> S3Error {
    use trove_backends::Error as B;
    match e {
        B::NotFound { .. } => s3_error!(NoSuchKey, "The specified key does not exist."),
        B::NoSuchBucket(b) => s3_error!(NoSuchBucket, "The backend bucket {b} does not exist"),
        B::AccessDenied(m) => s3_error!(AccessDenied, "The backend denied access: {m}"),
        B::PreconditionFailed => crate::s3::conditions::precondition_failed(),
        B::RangeNotSatisfiable => s3_error!(InvalidRange, "The requested range is not satisfiable"),
        B::Invalid(m) => s3_error!(InvalidRequest, "The backend refused the request: {m}"),
        B::Unavailable { message, .. } => {
            tracing::warn!(error = %message, "backend unavailable");
            if message.contains("429") || message.contains("SlowDown") || message.contains("hrottl") {
                s3_error!(SlowDown, "Backend throttled: {message}")
            } else {
                s3_error!(ServiceUnavailable, "Backend unavailable: {message}")
            }
        }
        other => {
            tracing::error!(error = %other, "backend error");
            s3_error!(InternalError, "Backend error: {other}")
        }
    }
}

pub fn from_registry(e: trove_namespace::Error) -> S3Error {
    use trove_namespace::Error as E;
    match e {
        E::NotFound(_) => no_such_bucket(),
        E::AlreadyExists(_) => s3_error!(BucketAlreadyExists),
        E::InvalidName(reason) => s3_error!(InvalidBucketName, "{reason}"),
        other => internal(other),
    }
}

pub fn internal(e: impl std::fmt::Display) -> S3Error {
    tracing::error!(error = %e, "internal error");
    s3_error!(InternalError, "We encountered an internal error. Please try again.")
}

/// 507: the node is above its out-of-space mark (or a disk is full).
pub fn insufficient_storage() -> S3Error {
    let mut err =
        S3Error::with_message(S3ErrorCode::Custom("InsufficientStorage".into()), "Insufficient storage on the node.");
    err.set_status_code(http::StatusCode::INSUFFICIENT_STORAGE);
    err
}

/// Refuses new data when the node is above its out-of-space mark.
pub fn check_space(state: &crate::state::SharedState) -> s3s::S3Result<()> {
    if state.capacity.out_of_space(state) {
        return Err(insufficient_storage());
    }
    Ok(())
}

pub fn no_such_bucket() -> S3Error {
    s3_error!(NoSuchBucket, "The specified bucket does not exist")
}


