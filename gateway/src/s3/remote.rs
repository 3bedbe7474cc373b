//! S3 operations on remote buckets (cloud buckets attached under an S3 name) that are still expressed in S3
//! terms: write-through PUT and multipart uploads, server-side copies, and listings paged from the backend.
//! Reads and deletes live in the data layer (`crate::data`).
//!
//! The cached copy of an object lives in the store under the backend bucket's identity (`@aws/origin/...`,
//! as in AIS) with the backend's ETag, version and headers, so a warm GET is the same disk read as an
//! AIS-local GET, and revalidation (`versioning.validate_warm_get`, `?latest-ver=true`) compares like with like.

use std::sync::Arc;

use s3s::dto::*;
use s3s::S3Result;
use trove_backends::Backend;
use trove_cache::{ObjMeta, Staged};
use trove_namespace::BucketEntry;

use crate::s3::body::SyncBody;
use crate::s3::errors;
use crate::state::{AppState, SharedState};

/// The backend client of a remote bucket.
pub fn backend(state: &AppState, entry: &BucketEntry) -> S3Result<Arc<dyn Backend>> {
    crate::data::backend(state, entry).map_err(errors::from_data)
}

pub fn blob(stream: trove_backends::ByteStream) -> StreamingBlob {
    StreamingBlob::wrap(SyncBody::new(stream))
}

async fn drop_cached(state: &SharedState, entry: &BucketEntry, key: &str) -> S3Result<()> {
    crate::data::drop_cached(state, entry, key).await.map_err(errors::from_data)
}

/// Starts the backend's multipart upload that mirrors a client's upload to a remote bucket.
pub async fn start_upload(state: &SharedState, entry: &BucketEntry, key: &str, meta: &ObjMeta) -> S3Result<String> {
    let b = backend(state, entry)?;
    b.create_multipart(&entry.bck.name, key, &meta.to_backend()).await.map_err(errors::from_backend)
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
) -> S3Result<String> {
    let b = backend(state, entry)?;
    let payload = crate::data::payload_of(staged, size).map_err(errors::from_data)?;
    b.upload_part(&entry.bck.name, key, handle, number, payload).await.map_err(errors::from_backend)
}

/// Completes the backend's upload with `parts` (number, backend token); `meta` takes the backend's ETag,
/// version and time.
pub async fn complete_upload(
    state: &SharedState,
    entry: &BucketEntry,
    handle: &str,
    parts: &[(u32, String)],
    meta: &mut ObjMeta,
) -> S3Result<()> {
    let b = backend(state, entry)?;
    let m = b
        .complete_multipart(&entry.bck.name, &meta.key, handle, parts, &meta.to_backend())
        .await
        .map_err(errors::from_backend)?;
    crate::data::adopt(state, entry, meta, m);
    Ok(())
}

pub async fn abort_upload(state: &SharedState, entry: &BucketEntry, key: &str, handle: &str) -> S3Result<()> {
    let b = backend(state, entry)?;
    b.abort_multipart(&entry.bck.name, key, handle).await.map_err(errors::from_backend)
}

/// Server-side copy inside one backend bucket; the destination's cached copy (if any) is dropped.
pub async fn copy_within(
    state: &SharedState,
    entry: &BucketEntry,
    src: &str,
    dst: &str,
    replace: Option<&ObjMeta>,
) -> S3Result<ObjMeta> {
    let b = backend(state, entry)?;
    let m = b
        .copy(&entry.bck.name, src, dst, replace.map(ObjMeta::to_backend).as_ref())
        .await
        .map_err(errors::from_backend)?;
    drop_cached(state, entry, dst).await?;
    Ok(ObjMeta::from_backend(dst, &m))
}
