//! The one mapping from storage and registry errors to S3 errors. Client mistakes never become 500s; real
//! internal failures are logged here, once, and answered with InternalError.

use s3s::{s3_error, S3Error, S3ErrorCode};

pub fn from_store(e: trove_cache::Error) -> S3Error {
    from_data(e.into())
}

pub fn from_backend(e: trove_backends::Error) -> S3Error {
    from_data(e.into())
}

/// The data layer's errors as S3 words them: the backend's verdict for missing objects and refusals, 503 for an
/// unreachable, slow or overloaded backend, 507 for a full node, 500 (logged here, once) for the rest.
pub fn from_data(e: crate::data::Error) -> S3Error {
    use crate::data::Error as D;
    match e {
        D::NoSuchBucket => no_such_bucket(),
        D::BucketExists(_) => s3_error!(BucketAlreadyExists, "The requested bucket name is not available."),
        D::InvalidBucketName(reason) => s3_error!(InvalidBucketName, "{reason}"),
        D::InvalidProps(reason) => s3_error!(InvalidArgument, "{reason}"),
        D::NoSuchKey => s3_error!(NoSuchKey, "The specified key does not exist."),
        D::NoSuchVersion => s3_error!(NoSuchVersion, "The specified version does not exist."),
        D::InvalidVersionId => s3_error!(InvalidArgument, "Invalid version id specified"),
        D::Forbidden(why) => s3_error!(AccessDenied, "{why}"),
        D::InvalidSse(why) => s3_error!(InvalidArgument, "{why}"),
        D::SseKeyRequired => s3_error!(
            InvalidRequest,
            "The object was stored using a form of Server Side Encryption. The correct parameters must be provided to retrieve the object."
        ),
        D::SseWrongKey => s3_error!(
            InvalidRequest,
            "The provided encryption parameters did not match the ones used originally."
        ),
        D::NoSuchUpload => s3_error!(
            NoSuchUpload,
            "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed."
        ),
        D::BucketNotEmpty => s3_error!(BucketNotEmpty, "The bucket you tried to delete is not empty"),
        D::PreconditionFailed => crate::s3::conditions::precondition_failed(),
        D::InvalidRange => s3_error!(InvalidRange, "The requested range is not satisfiable"),
        D::InvalidToken => s3_error!(InvalidArgument, "The continuation token provided is incorrect"),
        D::InvalidArchive(m) => s3_error!(InvalidArgument, "{m}"),
        D::MetadataTooLarge => {
            s3_error!(MetadataTooLarge, "Your metadata headers exceed the maximum allowed metadata size.")
        }
        D::EntityTooLarge => {
            s3_error!(EntityTooLarge, "Your proposed upload exceeds the maximum allowed object size.")
        }
        D::InvalidDigest => s3_error!(InvalidDigest, "The Content-MD5 you specified is not valid."),
        D::BadDigest(what) if what == "Content-MD5" => {
            s3_error!(BadDigest, "The Content-MD5 you specified did not match what we received.")
        }
        D::BadDigest(algo) => s3_error!(BadDigest, "The {algo} you specified did not match the calculated checksum."),
        D::InvalidPart => s3_error!(
            InvalidPart,
            "One or more of the specified parts could not be found. The part might not have been uploaded, or the specified entity tag might not have matched the part's entity tag."
        ),
        D::InvalidPartOrder => s3_error!(
            InvalidPartOrder,
            "The list of parts was not in ascending order. Parts must be ordered by part number."
        ),
        D::EntityTooSmall => {
            s3_error!(EntityTooSmall, "Your proposed upload is smaller than the minimum allowed object size.")
        }
        D::MalformedParts => s3_error!(
            MalformedXML,
            "The XML you provided was not well-formed or did not validate against our published schema"
        ),
        D::NotImplemented(what) => s3_error!(NotImplemented, "{what} is not supported"),
        D::NoSpace => insufficient_storage(),
        D::NoProvider(p) => s3_error!(ServiceUnavailable, "The bucket's provider {p} is not set up on this node"),
        D::NoRemoteCluster(u) => s3_error!(ServiceUnavailable, "The bucket's remote AIS cluster {u} is not attached"),
        D::NotRemote(what) => s3_error!(InvalidArgument, "{what} is not a cloud bucket"),
        D::BackendNoSuchBucket(b) => s3_error!(NoSuchBucket, "The backend bucket {b} does not exist"),
        D::BackendDenied(m) => s3_error!(AccessDenied, "The backend denied access: {m}"),
        D::BackendInvalid(m) => s3_error!(InvalidRequest, "The backend refused the request: {m}"),
        D::Throttled { message, .. } => {
            tracing::warn!(error = %message, "backend throttled");
            s3_error!(SlowDown, "Backend throttled: {message}")
        }
        D::Unavailable(message) => {
            tracing::warn!(error = %message, "backend unavailable");
            s3_error!(ServiceUnavailable, "Backend unavailable: {message}")
        }
        D::ClusterUnavailable(m) => {
            tracing::warn!(error = %m, "cluster metadata write failed");
            s3_error!(ServiceUnavailable, "{m}")
        }
        D::Internal(m) => internal(m),
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

/// An S3 error code s3s has no name for, with its status.
pub fn custom(code: &'static str, status: http::StatusCode, message: &str) -> S3Error {
    let mut err = S3Error::with_message(S3ErrorCode::Custom(code.into()), message.to_owned());
    err.set_status_code(status);
    err
}

/// An error answered with extra headers. s3s sends an error's own headers instead of its defaults, so the
/// body's `Content-Type` is set here too.
pub fn with_headers(mut err: S3Error, mut h: http::HeaderMap) -> S3Error {
    h.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/xml"));
    err.set_headers(h);
    err
}

/// Refuses new data when the node is above its out-of-space mark.
pub fn check_space(state: &crate::state::SharedState) -> s3s::S3Result<()> {
    crate::data::check_space(state).map_err(from_data)
}

pub fn no_such_bucket() -> S3Error {
    s3_error!(NoSuchBucket, "The specified bucket does not exist")
}

/// Text as XML character data.
pub fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// An S3 error answered outside s3s (before it, or for a request another node was to serve): S3's XML body.
pub fn xml_response(status: http::StatusCode, code: &str, message: &str) -> http::Response<s3s::Body> {
    let (code, message) = (xml_escape(code), xml_escape(message));
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    );
    let mut r = http::Response::new(s3s::Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/xml"));
    r
}
