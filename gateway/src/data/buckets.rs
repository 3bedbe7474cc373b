//! Bucket incarnations: the identity a bucket gets when it is created, and the check that a write still
//! belongs to it.

use trove_namespace::BucketEntry;

use crate::state::SharedState;

/// A fresh bucket incarnation id (never 0, which marks entries written before incarnations existed).
pub fn new_bid() -> u64 {
    rand::random::<u64>() | 1
}

/// Whether the incarnation `bid` of `bck` is still registered: checked under the store's tree lock right
/// before a write is published, so a write racing DeleteBucket either lands first (and the delete finds the
/// bucket not empty) or fails, never surfacing in a bucket created later under the same name.
pub fn guard(state: &SharedState, entry: &BucketEntry) -> trove_cache::BucketGuard {
    let (st, bck, bid) = (state.clone(), entry.bck.clone(), entry.bid);
    std::sync::Arc::new(move || st.registry.snapshot().buckets.values().any(|e| e.bck == bck && e.bid == bid))
}
