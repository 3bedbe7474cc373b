//! Per-request context: who is calling, which bucket, and a way to run blocking storage work.

use s3s::{s3_error, S3Request, S3Result};
use trove_namespace::BucketEntry;

use crate::s3::errors;
use crate::state::{AppState, User};

/// S3's limit on key length, in bytes of UTF-8.
pub const MAX_KEY_LEN: usize = 1024;

/// The authenticated caller. s3s has already verified the signature when credentials are present.
pub fn caller<'a, T>(state: &'a AppState, req: &S3Request<T>) -> S3Result<&'a User> {
    let cred = req.credentials.as_ref().ok_or_else(|| s3_error!(AccessDenied, "Anonymous access is not allowed"))?;
    state.user(&cred.access_key).ok_or_else(|| s3_error!(InvalidAccessKeyId))
}

/// The registry entry of `name`, visible only to its owner (S3's default without ACLs or policies).
pub fn owned_bucket(state: &AppState, name: &str, user: &User) -> S3Result<BucketEntry> {
    let entry = state.registry.get(name).ok_or_else(errors::no_such_bucket)?;
    if entry.owner != user.id {
        return Err(s3_error!(AccessDenied, "Access Denied"));
    }
    Ok(entry)
}

pub fn check_key(key: &str) -> S3Result<()> {
    if key.len() > MAX_KEY_LEN {
        return Err(s3_error!(KeyTooLongError, "Your key is too long"));
    }
    if key.is_empty() {
        return Err(s3_error!(InvalidArgument, "The key must not be empty"));
    }
    Ok(())
}

/// Runs blocking storage work off the async worker threads.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> S3Result<T> + Send + 'static) -> S3Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(errors::internal)?
}

/// The routing seam: objects owned by another node would be forwarded there (DESIGN §8). A cluster of one node
/// owns everything, so this only fails once membership exists without forwarding.
pub fn route(state: &AppState, bck: &trove_namespace::Bck, key: &str) -> S3Result<()> {
    match state.cluster.owner(bck, key) {
        crate::cluster::Owner::Local => Ok(()),
        crate::cluster::Owner::Remote(node) => Err(s3_error!(
            ServiceUnavailable,
            "object is owned by node {}; in-cluster forwarding is not available",
            node.id
        )),
    }
}
