//! The backend side of uploads and copies to cloud buckets: multipart uploads in lock-step with the
//! backend's (S3 multipart, Azure blocks), and server-side copies inside one backend bucket. The local side
//! (parts, assembly, commit) is the store's; the frontends translate their wire types around both.

use trove_cache::{ObjMeta, Staged};
use trove_namespace::BucketEntry;

use super::{adopt, backend, drop_cached, payload_of, Error};
use crate::state::SharedState;

/// Starts the backend's multipart upload that mirrors a client's upload to a remote bucket.
pub async fn start_upload(
    state: &SharedState,
    entry: &BucketEntry,
    key: &str,
    meta: &ObjMeta,
) -> Result<String, Error> {
    let b = backend(state, entry)?;
    Ok(b.create_multipart(&entry.bck.name, key, &meta.to_backend()).await?)
}

/// Sends a received (verified) part on to the backend; returns the backend's token for it.
pub async fn upload_part(
    state: &SharedState,
    entry: &BucketEntry,
    key: &str,
    handle: &str,
    number: u32,
    staged: &Staged,
    size: u64,
) -> Result<String, Error> {
    let b = backend(state, entry)?;
    let payload = payload_of(staged, size)?;
    Ok(b.upload_part(&entry.bck.name, key, handle, number, payload).await?)
}

/// Completes the backend's upload with `parts` (number, backend token); `meta` takes the backend's ETag,
/// version and time.
pub async fn complete_upload(
    state: &SharedState,
    entry: &BucketEntry,
    handle: &str,
    parts: &[(u32, String)],
    meta: &mut ObjMeta,
) -> Result<(), Error> {
    let b = backend(state, entry)?;
    let m = b.complete_multipart(&entry.bck.name, &meta.key, handle, parts, &meta.to_backend()).await?;
    adopt(state, entry, meta, m);
    Ok(())
}

pub async fn abort_upload(state: &SharedState, entry: &BucketEntry, key: &str, handle: &str) -> Result<(), Error> {
    let b = backend(state, entry)?;
    Ok(b.abort_multipart(&entry.bck.name, key, handle).await?)
}

/// Server-side copy inside one backend bucket; the destination's cached copy (if any) is dropped.
pub async fn copy_within(
    state: &SharedState,
    entry: &BucketEntry,
    src: &str,
    dst: &str,
    replace: Option<&ObjMeta>,
) -> Result<ObjMeta, Error> {
    let b = backend(state, entry)?;
    let m = b.copy(&entry.bck.name, src, dst, replace.map(ObjMeta::to_backend).as_ref()).await?;
    drop_cached(state, entry, dst).await?;
    Ok(ObjMeta::from_backend(dst, &m))
}
