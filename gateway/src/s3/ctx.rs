//! Per-request context: what the door granted (caller, bucket), and a way to run blocking storage work.

use s3s::{s3_error, S3Request, S3Result};
use trove_namespace::BucketEntry;

use crate::door::Grant;
use crate::s3::errors;
use crate::state::User;

/// S3's limit on key length, in bytes of UTF-8.
pub const MAX_KEY_LEN: usize = 1024;

/// What the door granted this request. Every routed S3 operation passes the access hook, so a missing grant
/// is a bug; it fails closed.
fn grant<T>(req: &S3Request<T>) -> S3Result<&Grant> {
    req.extensions.get::<Grant>().ok_or_else(|| s3_error!(AccessDenied, "Access Denied"))
}

/// The caller, or `None` for an anonymous request the door let in.
pub fn caller_opt<T>(req: &S3Request<T>) -> S3Result<Option<&User>> {
    Ok(grant(req)?.user.as_ref())
}

/// The authenticated caller, for operations that record who did them (owners, initiators).
pub fn caller<T>(req: &S3Request<T>) -> S3Result<&User> {
    caller_opt(req)?.ok_or_else(|| s3_error!(AccessDenied, "Anonymous access is not allowed"))
}

/// The bucket the request names, as the door found it.
pub fn bucket<T>(req: &S3Request<T>) -> S3Result<BucketEntry> {
    grant(req)?.entry.clone().ok_or_else(errors::no_such_bucket)
}

pub fn check_key(key: &str) -> S3Result<()> {
    if key.len() > MAX_KEY_LEN {
        return Err(s3_error!(KeyTooLongError, "Your key is too long"));
    }
    if key.is_empty() {
        return Err(s3_error!(InvalidArgument, "The key must not be empty"));
    }
    // C1 control characters are not valid in an S3 key (what arrives as them was mis-encoded).
    if key.chars().any(|c| ('\u{80}'..='\u{9f}').contains(&c)) {
        return Err(s3_error!(InvalidURI, "Couldn't parse the specified URI."));
    }
    Ok(())
}

/// Runs blocking storage work off the async worker threads.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> S3Result<T> + Send + 'static) -> S3Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(errors::internal)?
}
