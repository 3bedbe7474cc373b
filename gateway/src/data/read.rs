//! Reads: an AIS-local object from disk; a cloud object from its cached copy (revalidated when the bucket or
//! the caller asks) or from the backend through the single-flight fill, a range of an uncached object straight
//! from the backend at once (the whole object following in the background), and prefetch's fetch of one object.
//! In a cluster, a cold read first pulls a copy another node cached (in-cluster bytes beat cloud egress).
//!
//! The cached copy of a cloud object lives in the store under the backend bucket's identity (`@aws/origin/...`,
//! as in AIS) with the backend's ETag, version and headers, so a warm GET is the same disk read as an AIS-local
//! GET, and revalidation (`versioning.validate_warm_get`, `?latest-ver=true`) compares like with like.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use trove_backends::{ByteRange, ByteStream, GetOptions};
use trove_cache::{FetchConfig, Fill, ObjMeta};
use trove_namespace::BucketEntry;

use super::{backend, blocking, Error};
use crate::state::SharedState;

/// What a read asks for.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadOpts {
    /// The byte range the caller will ask of the body (an uncached range is fetched alone).
    pub range: Option<ByteRange>,
    /// Check a cached copy against the backend first (`?latest-ver=true`).
    pub latest: bool,
    /// A GET (`false`: HEAD, which never fills the cache).
    pub with_body: bool,
}

/// Where the bytes of a read come from.
pub enum Body {
    /// An open file of a local object or cached copy (maybe one kept open for repeated reads).
    File(Arc<std::fs::File>),
    /// A fill in progress (or just finished): readers tail its work file.
    Fill(Arc<Fill>),
    /// The backend's answer itself: exactly the requested bytes (the range, or the whole object when it is
    /// passed through uncached).
    Backend(ByteStream),
    /// A HEAD.
    None,
}

/// An object's metadata and its bytes.
pub struct Object {
    pub meta: ObjMeta,
    pub body: Body,
}

/// Reads `key` of the bucket `entry`.
pub async fn read(state: &SharedState, entry: &BucketEntry, key: &str, opts: ReadOpts) -> Result<Object, Error> {
    if !entry.bck.is_remote() {
        // Inline open (kept open for the next read): a page-cached open + getxattr is cheaper than a hop to the
        // blocking pool (DESIGN §10).
        let open = state.store.open_cached(&entry.bck, key)?;
        return Ok(Object { meta: open.meta.clone(), body: Body::File(open.file.clone()) });
    }
    let bck = &entry.bck;
    let validate = opts.latest || entry.props.versioning.validate_warm_get;
    match state.store.open_cached(bck, key) {
        Ok(open) => {
            if !validate || revalidate(state, entry, &open.meta).await? {
                state.metrics.hits.fetch_add(1, Ordering::Relaxed);
                return Ok(Object { meta: open.meta.clone(), body: Body::File(open.file.clone()) });
            }
        }
        Err(trove_cache::Error::NotFound) => {}
        Err(e) => return Err(e.into()),
    }
    let several = state.cluster.map().smap.nodes.len() > 1;
    if opts.with_body && !validate && several && state.readthrough.in_flight(bck, key).is_none() {
        // In-cluster bytes beat cloud egress: another node (the previous owner, after a join) may have it.
        if let Some((file, meta)) = super::peers::pull_cached(state, entry, key).await? {
            return Ok(Object { meta, body: Body::File(Arc::new(file)) });
        }
        // A fill by a concurrent reader may have finished while the neighbours were asked.
        match state.store.open_object(bck, key) {
            Ok((file, meta)) => {
                state.metrics.hits.fetch_add(1, Ordering::Relaxed);
                return Ok(Object { meta, body: Body::File(Arc::new(file)) });
            }
            Err(trove_cache::Error::NotFound) => {}
            Err(e) => return Err(e.into()),
        }
    }
    state.metrics.misses.fetch_add(1, Ordering::Relaxed);
    let b = backend(state, entry)?;
    if !opts.with_body {
        let m = b.head(&bck.name, key).await?;
        return Ok(Object { meta: ObjMeta::from_backend(key, &m), body: Body::None });
    }
    // A cold GET fills the cache: not above the out-of-space mark.
    check_space(state)?;
    if let Some(range) = opts.range.filter(|_| state.readthrough.in_flight(bck, key).is_none()) {
        // A range of an uncached object comes straight from the backend, at once; the whole object follows
        // into the cache in the background when the bucket wants it.
        let r = b.get(&bck.name, key, GetOptions { range: Some(range), if_match: None }).await?;
        if entry.props.cache.background_fill {
            state.readthrough.fill(b.clone(), bck, key);
        }
        return Ok(Object { meta: ObjMeta::from_backend(key, &r.meta), body: Body::Backend(r.body) });
    }
    let mut fill = state.readthrough.fill(b.clone(), bck, key);
    let mut meta = fill.started().await?;
    if !state.capacity.room_for(state, bck, key, meta.size) {
        // Larger than the room left where it would be cached: the client still gets it, passed through from
        // the backend, and the cache keeps nothing (the fill is dropped before it can fill the disk).
        tracing::warn!(bucket = %bck.name, key, size = meta.size, "no room to cache: passing the object through");
        state.readthrough.abandon(bck, key);
        let r = b.get(&bck.name, key, GetOptions::default()).await?;
        return Ok(Object { meta: ObjMeta::from_backend(key, &r.meta), body: Body::Backend(r.body) });
    }
    if validate {
        // A fill that was already running may have started before the backend changed.
        let now = b.head(&bck.name, key).await?;
        if !meta.same_as_backend(&now) {
            state.readthrough.invalidate(bck, key);
            fill = state.readthrough.fill(b, bck, key);
            meta = fill.started().await?;
        }
    }
    Ok(Object { meta, body: Body::Fill(fill) })
}

/// Refuses new data above the node's out-of-space mark.
pub fn check_space(state: &SharedState) -> Result<(), Error> {
    if state.capacity.out_of_space(state) {
        return Err(Error::NoSpace);
    }
    Ok(())
}

/// Drops the cached copy of `key` (the backend no longer has that version), and any fill of it in flight.
pub async fn drop_cached(state: &SharedState, entry: &BucketEntry, key: &str) -> Result<(), Error> {
    state.readthrough.invalidate(&entry.bck, key);
    let (st, bck, key) = (state.clone(), entry.bck.clone(), key.to_owned());
    blocking(move || st.store.delete(&bck, &key).map(drop).map_err(Error::from)).await
}

/// HEADs the backend for a cached copy: `Ok(true)` when it may be served, `Ok(false)` when it is stale (and
/// has been dropped).
async fn revalidate(state: &SharedState, entry: &BucketEntry, meta: &ObjMeta) -> Result<bool, Error> {
    let b = backend(state, entry)?;
    match b.head(&entry.bck.name, &meta.key).await {
        Ok(m) if meta.same_as_backend(&m) => Ok(true),
        Ok(_) => {
            drop_cached(state, entry, &meta.key).await?;
            Ok(false)
        }
        Err(trove_backends::Error::NotFound { .. }) => {
            drop_cached(state, entry, &meta.key).await?;
            Err(Error::NoSuchKey)
        }
        Err(e) if e.is_retryable() && entry.props.cache.serve_stale => {
            tracing::warn!(bucket = %entry.bck.name, key = %meta.key, error = %e, "backend unreachable: serving the cached copy");
            Ok(true)
        }
        Err(e) => Err(e.into()),
    }
}

/// Makes sure `key` is in the cache (a copy source, for instance), fetching it when it is not.
pub async fn ensure_cached(state: &SharedState, entry: &BucketEntry, key: &str) -> Result<(), Error> {
    if state.store.head(&entry.bck, key).is_ok() {
        return Ok(());
    }
    let fill = state.readthrough.fill(backend(state, entry)?, &entry.bck, key);
    fill.started().await?;
    Ok(fill.finished().await?)
}

/// Prefetch of one object: fetched unless a current copy is cached. `Some(size)` when fetched, `None` when
/// skipped. `latest` checks a cached copy against the backend; `cfg` may lower the parallel-fetch threshold.
pub async fn prefetch(
    state: &SharedState,
    entry: &BucketEntry,
    key: &str,
    latest: bool,
    cfg: FetchConfig,
) -> Result<Option<u64>, Error> {
    let b = backend(state, entry)?;
    if let Ok(cached) = state.store.head(&entry.bck, key) {
        if !latest {
            return Ok(None);
        }
        if cached.same_as_backend(&b.head(&entry.bck.name, key).await?) {
            return Ok(None);
        }
        state.readthrough.invalidate(&entry.bck, key);
    }
    check_space(state)?;
    let fill = state.readthrough.fill_with(b, &entry.bck, key, cfg);
    let meta = fill.started().await?;
    fill.finished().await?;
    Ok(Some(meta.size))
}

/// The backend's current object (`None` when it has none), as write conditions see it.
pub async fn backend_current(state: &SharedState, entry: &BucketEntry, key: &str) -> Result<Option<ObjMeta>, Error> {
    match backend(state, entry)?.head(&entry.bck.name, key).await {
        Ok(m) => Ok(Some(ObjMeta { key: key.to_owned(), size: m.size, etag: m.etag, ..Default::default() })),
        Err(trove_backends::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}
