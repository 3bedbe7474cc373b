//! The data layer under both frontends and the jobs: reading objects (local, warm, cold fill, revalidation,
//! ranged-first), receiving bodies, writing them (write-through with preconditions checked before the backend
//! is touched; local commits with preconditions under the tree lock), multipart uploads, server-side copies,
//! deleting, listing, and prefetch of one object. S3 and
//! native handlers translate their wire types to and from these calls; jobs call the same functions. Errors are
//! [`Error`], mapped once per wire format.

pub mod archive;
pub mod attach;
mod buckets;
pub mod copies;
pub mod copy;
mod error;
mod file_body;
mod list;
pub mod mirror;
pub mod multipart;
pub mod peers;
mod read;
pub mod receive;
pub mod sse;
mod tombstones;
pub mod versions;
mod write;

use std::sync::Arc;

use trove_backends::Backend;
use trove_namespace::BucketEntry;

pub use buckets::{
    apply as apply_registry, delete_if_empty as delete_bucket_if_empty, guard as bucket_guard, locally_empty,
    named as bucket_named, new_bid, on_removed as on_bucket_removed,
};
pub use error::Error;
pub use file_body::{FileBody, SyncBody};
pub use list::{list, merge as merge_walks, walk_local, ListOpts, Page, Walk};
pub use read::{backend_current, check_space, drop_cached, ensure_cached, prefetch, read, Body, ReadOpts};
pub use tombstones::Tombstones;
pub use write::{adopt, delete, delete_local, delete_many, payload_of, put, write_through, Precondition};

use crate::state::AppState;

/// The backend client of a remote bucket.
pub fn backend(state: &AppState, entry: &BucketEntry) -> Result<Arc<dyn Backend>, Error> {
    backend_of(state, &entry.bck)
}

/// The backend client of `bck`: its cloud provider's, or its remote AIS cluster's (named by UUID or alias).
pub fn backend_of(state: &AppState, bck: &trove_namespace::Bck) -> Result<Arc<dyn Backend>, Error> {
    if bck.ns.is_remote() {
        let map = state.cluster.map();
        let (_, cluster) = map
            .remotes
            .find(&bck.ns.uuid)
            .filter(|(_, c)| !c.uuid.is_empty())
            .ok_or_else(|| Error::NoRemoteCluster(bck.ns.uuid.clone()))?;
        return Ok(state.providers.remote_ais(cluster, &state.ais_client));
    }
    match state.providers.get(bck.provider) {
        Some(b) => Ok(b),
        None => Err(Error::NoProvider(bck.provider.as_str())),
    }
}

/// Runs blocking storage work off the async worker threads.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, Error> + Send + 'static) -> Result<T, Error> {
    tokio::task::spawn_blocking(f).await.map_err(|e| Error::Internal(format!("blocking task: {e}")))?
}

/// The content type of an object whose writer named none (S3's).
pub const DEFAULT_CONTENT_TYPE: &str = "binary/octet-stream";

/// Milliseconds since the epoch, the store's time unit.
pub fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}
