//! Buckets in the replicated registry: every registry write goes through the cluster (`apply`), a bucket's
//! incarnation and the check that a write still belongs to it, deleting a bucket across the nodes, and what a
//! node does with its local data when a bucket incarnation leaves the registry.

use trove_cache::{ReadThrough, Store};
use trove_cluster::{Command, Refusal};
use trove_namespace::{BucketEntry, Change, Provider, Registry};

use super::Error;
use crate::state::{AppState, SharedState};

/// A fresh bucket incarnation id (never 0, which marks entries written before incarnations existed).
pub fn new_bid() -> u64 {
    rand::random::<u64>() | 1
}

/// Whether the incarnation `bid` of `bck` is still registered and not sealed (cluster-wide, or here by a
/// DeleteBucket in progress on this node): checked under the store's tree lock right before a write is
/// published, so a write racing DeleteBucket either lands first (and the delete finds the bucket not empty)
/// or fails, never surfacing in a bucket created later under the same name.
pub fn guard(state: &SharedState, entry: &BucketEntry) -> trove_cache::BucketGuard {
    let (st, bck, bid) = (state.clone(), entry.bck.clone(), entry.bid);
    std::sync::Arc::new(move || {
        !st.sealed_here.lock().unwrap_or_else(|e| e.into_inner()).contains(&bid)
            && st.registry.snapshot().buckets.values().any(|e| e.bck == bck && e.bid == bid && !e.sealed)
    })
}

/// The registry entry a native call names: `NAME` as an S3 name, or (with a cloud `provider`) the S3 name
/// that stands for that cloud bucket, or (with a remote cluster's namespace, `@alias` or `@uuid`) the S3 name
/// that stands for that cluster's bucket.
pub fn named(
    state: &AppState,
    name: &str,
    provider: Option<Provider>,
    ns: &trove_namespace::Namespace,
) -> Option<(String, BucketEntry)> {
    let snap = state.registry.snapshot();
    if ns.is_remote() {
        // Only through an attached cluster: a detached one's buckets are out of reach by alias and by UUID.
        let map = state.cluster.map();
        let uuid = map.remotes.find(&ns.uuid)?.1.uuid.as_str();
        return snap
            .buckets
            .iter()
            .find(|(_, e)| e.bck.ns.uuid == uuid && e.bck.ns.name == ns.name && e.bck.name == name)
            .map(|(n, e)| (n.clone(), e.clone()));
    }
    if let Some(e) = snap.buckets.get(name) {
        if provider.is_none_or(|p| p == Provider::Ais || p == e.bck.provider) {
            return Some((name.to_owned(), e.clone()));
        }
    }
    let p = provider.filter(|p| p.is_remote())?;
    snap.buckets.iter().find(|(_, e)| e.bck.provider == p && e.bck.name == name).map(|(n, e)| (n.clone(), e.clone()))
}

/// Writes `change` to the cluster's registry; returns once every reachable node has applied it. Without a
/// quorum this fails (503) within a bound.
pub async fn apply(state: &SharedState, change: Change) -> Result<Option<BucketEntry>, Error> {
    let outcome = state.cluster.propose(Command::Bucket { change: Box::new(change) }).await?;
    match outcome.refused {
        None => Ok(outcome.entry),
        Some(r) => Err(match r {
            Refusal::NoSuchBucket(_) => Error::NoSuchBucket,
            Refusal::BucketExists(name) => Error::BucketExists(name),
            Refusal::InvalidBucketName(m) => Error::InvalidBucketName(m),
            Refusal::InvalidProps(m) => Error::InvalidProps(m),
            other => Error::Internal(other.to_string()),
        }),
    }
}

/// Deletes the AIS-local bucket `name` if no node holds an object of it (else `BucketNotEmpty`). This node
/// checks its own objects and seals the bucket against its own writes in one step under the store's tree lock;
/// in a cluster the bucket is then sealed on every node, so no write lands while the others are asked, and
/// finally removed or unsealed.
pub async fn delete_if_empty(state: &SharedState, name: &str, entry: &BucketEntry) -> Result<(), Error> {
    let bid = entry.bid;
    if !seal_here_if_empty(state, entry).await? {
        return Err(Error::BucketNotEmpty);
    }
    let decided = async {
        if state.cluster.map().smap.nodes.len() <= 1 {
            return apply(state, Change::Remove { name: name.to_owned() }).await.map(drop);
        }
        apply(state, Change::Seal { name: name.to_owned(), bid, sealed: true }).await?;
        match super::peers::bucket_empty_everywhere(state, entry).await {
            Ok(true) => apply(state, Change::Remove { name: name.to_owned() }).await.map(drop),
            other => {
                apply(state, Change::Seal { name: name.to_owned(), bid, sealed: false }).await?;
                other.and(Err(Error::BucketNotEmpty))
            }
        }
    }
    .await;
    state.sealed_here.lock().unwrap_or_else(|e| e.into_inner()).remove(&bid);
    decided
}

/// Under the store's tree lock (a write in flight finishes first): if this node holds no object of `entry`,
/// seals it against this node's writes (empty directories go with it) and answers true.
async fn seal_here_if_empty(state: &SharedState, entry: &BucketEntry) -> Result<bool, Error> {
    let (st, bck, bid) = (state.clone(), entry.bck.clone(), entry.bid);
    super::blocking(move || {
        let sealed = st.store.remove_bucket_if(&bck, true, || {
            st.sealed_here.lock().unwrap_or_else(|e| e.into_inner()).insert(bid);
            Ok(())
        });
        match sealed {
            Ok(()) => Ok(true),
            Err(trove_cache::Error::NotEmpty) => Ok(false),
            Err(e) => Err(e.into()),
        }
    })
    .await
}

/// Whether this node holds no object of `entry` (checked under the store's tree lock, so a write in flight
/// finishes first; empty directories go with it).
pub async fn locally_empty(state: &SharedState, entry: &BucketEntry) -> Result<bool, Error> {
    let (st, bck) = (state.clone(), entry.bck.clone());
    super::blocking(move || match st.store.remove_bucket_if(&bck, true, || Ok(())) {
        Ok(()) => Ok(true),
        Err(trove_cache::Error::NotEmpty) => Ok(false),
        Err(e) => Err(e.into()),
    })
    .await
}

/// Run by the cluster on every node, in log order, when a bucket incarnation leaves the registry: drops this
/// node's data of it (an AIS bucket's objects; a cloud bucket's cached copies unless another name still stands
/// for the same cloud bucket). Blocking; runs on the Raft state machine's thread.
pub fn on_removed(store: &Store, registry: &Registry, readthrough: &ReadThrough, gone: &BucketEntry) {
    // Another name for the same cloud bucket keeps its cache; an AIS bucket created again (a snapshot that
    // skipped both changes) owns the data now.
    if registry.snapshot().buckets.values().any(|e| e.bck == gone.bck) {
        return;
    }
    if gone.bck.is_remote() {
        readthrough.invalidate_bucket(&gone.bck);
    }
    // Out of the bucket's place now (before any later change applies); the recursive delete, which may be
    // long for a big bucket, happens off the Raft apply path.
    match store.unlink_bucket(&gone.bck) {
        Ok(trash) if !trash.is_empty() => {
            let spawned = std::thread::Builder::new().name("trove-rm-bucket".into()).spawn(move || {
                for t in trash {
                    if let Err(e) = std::fs::remove_dir_all(&t) {
                        tracing::warn!(dir = %t.display(), error = %e, "could not delete a removed bucket's data");
                    }
                }
            });
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "could not start deleting a removed bucket's data (start-up will)");
            }
        }
        Ok(_) => {}
        Err(e) => tracing::error!(bucket = %gone.bck, error = %e, "could not drop the data of a removed bucket"),
    }
}
