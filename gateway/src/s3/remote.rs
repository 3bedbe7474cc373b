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
use trove_backends::{Backend, ListRequest};
use trove_cache::{ObjMeta, Staged};
use trove_namespace::BucketEntry;

use crate::s3::body::SyncBody;
use crate::s3::errors;
use crate::s3::list::Page;
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

/// A continuation token of a remote listing: where the page ended, and the backend's own token to go on.
#[derive(serde::Serialize, serde::Deserialize)]
struct Token {
    after: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    backend: Option<String>,
}

pub fn decode_token(t: &str) -> Option<(String, Option<String>)> {
    use base64::Engine;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(t).ok()?;
    let tok: Token = serde_json::from_slice(&raw).ok()?;
    Some((tok.after, tok.backend))
}

fn encode_token(after: String, backend: Option<String>) -> String {
    use base64::Engine;
    let raw = serde_json::to_vec(&Token { after, backend }).unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

/// One page of a listing of a remote bucket, paged from the backend: keys after `after`, continuing the
/// backend's own listing when `resume` holds its token. Backends that cannot start after a key (Azure) are
/// paged from their start, skipping what was returned already.
pub async fn list_page(
    state: &SharedState,
    entry: &BucketEntry,
    prefix: &str,
    delimiter: Option<&str>,
    after: &str,
    resume: Option<String>,
    max_keys: usize,
) -> S3Result<Page> {
    let mut page = Page::default();
    if max_keys == 0 {
        return Ok(page);
    }
    let b = backend(state, entry)?;
    let mut token = resume;
    loop {
        let req = ListRequest {
            prefix: prefix.to_owned(),
            delimiter: delimiter.filter(|d| !d.is_empty()).map(str::to_owned),
            start_after: (!after.is_empty()).then(|| after.to_owned()),
            token: token.clone(),
            max_keys: max_keys - page.objects.len() - page.prefixes.len(),
        };
        let got = b.list(&entry.bck.name, req).await.map_err(errors::from_backend)?;
        let mut items: Vec<(String, Option<ObjMeta>)> = got
            .entries
            .into_iter()
            .filter(|e| e.key.as_str() > after)
            .map(|e| (e.key.clone(), Some(ObjMeta::from_backend(&e.key, &e.meta))))
            .chain(got.common_prefixes.into_iter().filter(|p| p.as_str() > after).map(|p| (p, None)))
            .collect();
        items.sort_by(|a, b| a.0.cmp(&b.0));
        for (k, m) in items {
            if page.objects.len() + page.prefixes.len() == max_keys {
                page.truncated = true;
                break;
            }
            page.last = Some(k.clone());
            match m {
                Some(m) => page.objects.push((k, m)),
                None => page.prefixes.push(k),
            }
        }
        token = got.next_token;
        if page.truncated {
            // Stopped inside a backend page: the next page starts after our last key.
            page.next_token = page.last.clone().map(|l| encode_token(l, None));
            return Ok(page);
        }
        match token {
            None => return Ok(page),
            Some(t) if page.objects.len() + page.prefixes.len() == max_keys => {
                page.truncated = true;
                page.next_token = Some(encode_token(page.last.clone().unwrap_or_default(), Some(t)));
                return Ok(page);
            }
            Some(_) => {}
        }
    }
}
