//! Calls between the gateways of one cluster (`/v1/intra/<call>`, signed with the cluster secret like Raft's
//! own calls): what one node must ask every other node, such as whether it still holds objects of a bucket.

use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use trove_namespace::BucketEntry;

use crate::data::{self, Error};
use crate::state::SharedState;

/// Path prefix of the gateway's intra-cluster calls.
pub const PREFIX: &str = "/v1/intra/";

/// The largest intra-cluster request body.
pub const MAX_BODY: usize = 1 << 20;

const BUCKET_EMPTY: &str = "bucket-empty";
const WALK: &str = "walk";

/// How long a node may take to answer another.
const DEADLINE: Duration = Duration::from_secs(10);

/// Answers another node's call; the caller's signature is checked first.
pub async fn handle(state: &SharedState, path: &str, header: Option<&str>, body: Bytes) -> (StatusCode, Bytes) {
    if let Err(e) = state.cluster.verify(header, "POST", path) {
        tracing::warn!(error = %e, path, "refused an intra-cluster call");
        return (StatusCode::FORBIDDEN, Bytes::from(e.to_string()));
    }
    let call = path.strip_prefix(PREFIX).unwrap_or_default();
    let answer = match call {
        BUCKET_EMPTY => match serde_json::from_slice::<BucketEntry>(&body) {
            Ok(entry) => data::locally_empty(state, &entry).await.map(|b| serde_json::json!(b)),
            Err(e) => return (StatusCode::BAD_REQUEST, Bytes::from(format!("malformed call: {e}"))),
        },
        WALK => match serde_json::from_slice::<data::Walk>(&body) {
            Ok(walk) => data::walk_local(state, walk).await.and_then(|p| {
                serde_json::to_value(p).map_err(|e| Error::Internal(format!("encoding a listing page: {e}")))
            }),
            Err(e) => return (StatusCode::BAD_REQUEST, Bytes::from(format!("malformed call: {e}"))),
        },
        _ => return (StatusCode::NOT_FOUND, Bytes::from(format!("no intra-cluster call {call:?}"))),
    };
    match answer {
        Ok(v) => (StatusCode::OK, Bytes::from(v.to_string())),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, Bytes::from(e.to_string())),
    }
}

/// Whether no node of the cluster holds an object of `entry`. Every node must answer: one that does not makes
/// the question unanswerable (503), since it may hold objects.
pub async fn bucket_empty_everywhere(state: &SharedState, entry: &BucketEntry) -> Result<bool, Error> {
    if !data::locally_empty(state, entry).await? {
        return Ok(false);
    }
    let map = state.cluster.map();
    let path = format!("{PREFIX}{BUCKET_EMPTY}");
    let mut asks = tokio::task::JoinSet::new();
    for node in map.smap.nodes.values().filter(|n| n.id != state.node_id) {
        let (st, url, entry, path, id) =
            (state.clone(), node.url.clone(), entry.clone(), path.clone(), node.id.clone());
        asks.spawn(async move { (id, st.cluster.call::<_, bool>(&url, &path, &entry, DEADLINE).await) });
    }
    let mut empty = true;
    while let Some(done) = asks.join_next().await {
        let (id, answer) = done.map_err(|e| Error::Internal(e.to_string()))?;
        match answer {
            Ok(e) => empty &= e,
            Err(e) => return Err(Error::ClusterUnavailable(format!("node {id} did not answer: {e}"))),
        }
    }
    Ok(empty)
}

/// One page of a bucket walked on every node and merged. Every node must answer: a listing is never short.
pub async fn walk_everywhere(state: &SharedState, walk: &data::Walk) -> Result<data::Page, Error> {
    let map = state.cluster.map();
    let path = format!("{PREFIX}{WALK}");
    let mut asks = tokio::task::JoinSet::new();
    for node in map.smap.nodes.values().filter(|n| n.id != state.node_id) {
        let (st, url, walk, path, id) = (state.clone(), node.url.clone(), walk.clone(), path.clone(), node.id.clone());
        asks.spawn(async move { (id, st.cluster.call::<_, data::WalkPage>(&url, &path, &walk, DEADLINE).await) });
    }
    let mut pages = vec![data::walk_local(state, walk.clone()).await?];
    while let Some(done) = asks.join_next().await {
        let (id, answer) = done.map_err(|e| Error::Internal(e.to_string()))?;
        match answer {
            Ok(p) => pages.push(p),
            Err(e) => return Err(Error::ClusterUnavailable(format!("node {id} did not answer a listing: {e}"))),
        }
    }
    Ok(data::merge_walks(pages, walk.max))
}
