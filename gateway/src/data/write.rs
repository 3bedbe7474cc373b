//! Writes and deletes. A write publishes a staged, verified body: to a cloud bucket it goes through (the
//! backend first, its precondition checked against the backend's object before the backend is touched, the
//! cached copy then carrying the backend's identity); to an AIS-local bucket it is committed with its
//! precondition checked under the store's tree lock. Either way the bucket incarnation the write began in is
//! checked at the instant of publishing. A delete reaches the backend first, then the cached copy.

use std::sync::Arc;

use trove_backends::Payload;
use trove_cache::{file_stream, ObjMeta, Staged};
use trove_namespace::BucketEntry;

use super::{backend, backend_current, blocking, bucket_guard, drop_cached, Error};
use crate::state::SharedState;

/// A write's precondition on the current object (`If-Match`, `If-None-Match`), decided by the frontend that
/// parsed it.
pub type Precondition = Box<dyn Fn(Option<&ObjMeta>) -> Result<(), trove_cache::Error> + Send + Sync>;

/// Publishes `staged` as `meta.key` of `entry`; returns the metadata as stored (a cloud bucket's ETag and
/// version are the backend's).
pub async fn put(
    state: &SharedState,
    entry: &BucketEntry,
    mut staged: Staged,
    mut meta: ObjMeta,
    check: Option<Precondition>,
) -> Result<ObjMeta, Error> {
    staged.guard(bucket_guard(state, entry));
    let st = state.clone();
    let bck = entry.bck.clone();
    if entry.bck.is_remote() {
        if let Some(check) = &check {
            check(backend_current(state, entry, &meta.key).await?.as_ref())?;
        }
        write_through(state, entry, &staged, &mut meta).await?;
        let m = meta.clone();
        // The backend has it now: the cached copy follows whatever the old copy was.
        blocking(move || Ok(st.store.commit(staged, &bck, &m.key, &m)?)).await?;
        return Ok(meta);
    }
    super::mirror::publish(state, entry, staged, &mut meta, check).await?;
    Ok(meta)
}

/// Write-through: uploads the staged (already verified) body to the backend; on success `meta` takes the
/// backend's ETag, version and time, and the caller commits the staged file as the cached copy.
pub async fn write_through(
    state: &SharedState,
    entry: &BucketEntry,
    staged: &Staged,
    meta: &mut ObjMeta,
) -> Result<(), Error> {
    let b = backend(state, entry)?;
    let payload = payload_of(staged, meta.size)?;
    let m = b.put(&entry.bck.name, &meta.key, payload, &meta.to_backend()).await?;
    adopt(state, entry, meta, m);
    Ok(())
}

/// After the backend accepted a write: the cached copy takes the backend's ETag, version and time, and a cold
/// GET that started before the write must not publish the old bytes after it.
pub fn adopt(state: &SharedState, entry: &BucketEntry, meta: &mut ObjMeta, m: trove_backends::ObjectMeta) {
    state.readthrough.invalidate(&entry.bck, &meta.key);
    meta.etag = m.etag;
    meta.version = m.version;
    if m.last_modified_ms > 0 {
        meta.mtime_ms = m.last_modified_ms;
    }
}

/// A staged file as a payload the backend can read (and read again on a retry).
pub fn payload_of(staged: &Staged, size: u64) -> Result<Payload, Error> {
    let file = staged.file.try_clone().map_err(|e| Error::from(trove_cache::Error::io(staged.path(), e)))?;
    let file = Arc::new(file);
    Ok(Payload { size, open: Arc::new(move |off| file_stream(file.clone(), off, size)) })
}

/// Deletes many keys of one bucket (S3's DeleteObjects): from the backend first for a cloud bucket, then every
/// node's copies (in a cluster any node may hold one). Returns each key's outcome, in order.
pub async fn delete_many(
    state: &SharedState,
    entry: &BucketEntry,
    keys: Vec<String>,
) -> Vec<(String, Result<(), Error>)> {
    let mut outcomes: Vec<(String, Result<(), Error>)> = Vec::with_capacity(keys.len());
    let mut local = Vec::with_capacity(keys.len());
    for key in keys {
        if entry.bck.is_remote() {
            let deleted = match backend(state, entry) {
                Ok(b) => b.delete(&entry.bck.name, &key).await.map_err(Error::from),
                Err(e) => Err(e),
            };
            if let Err(e) = deleted {
                outcomes.push((key, Err(e)));
                continue;
            }
        }
        local.push(key.clone());
        outcomes.push((key, Ok(())));
    }
    let failed = super::peers::delete_everywhere(state, entry, local).await;
    for (key, outcome) in &mut outcomes {
        if let Some(e) = failed.iter().find(|(k, _)| k == key).map(|(_, e)| e) {
            *outcome = Err(Error::Internal(e.clone()));
        }
    }
    outcomes
}

/// Deletes this node's copies of `keys` (cached copies of a cloud bucket, or AIS objects); returns the keys that
/// failed, with why.
pub async fn delete_local(state: &SharedState, entry: &BucketEntry, keys: Vec<String>) -> Vec<(String, String)> {
    let (st, bck) = (state.clone(), entry.bck.clone());
    let remote = entry.bck.is_remote();
    blocking(move || {
        let mut failed = Vec::new();
        if !remote {
            st.remember_deletes(&bck, &keys);
        }
        for key in keys {
            if remote {
                st.readthrough.invalidate(&bck, &key);
            }
            if let Err(e) = st.store.delete(&bck, &key) {
                tracing::warn!(bucket = %bck, key, error = %e, "deleting a copy");
                failed.push((key, e.to_string()));
            }
        }
        Ok(failed)
    })
    .await
    .unwrap_or_default()
}

/// Deletes `key`; `Ok(false)` when an AIS-local object did not exist (a cloud backend does not say).
pub async fn delete(state: &SharedState, entry: &BucketEntry, key: &str) -> Result<bool, Error> {
    if entry.bck.is_remote() {
        backend(state, entry)?.delete(&entry.bck.name, key).await?;
        drop_cached(state, entry, key).await?;
        return Ok(true);
    }
    let (st, bck, key) = (state.clone(), entry.bck.clone(), key.to_owned());
    blocking(move || {
        st.remember_deletes(&bck, std::slice::from_ref(&key));
        Ok(st.store.delete(&bck, &key)?)
    })
    .await
}
