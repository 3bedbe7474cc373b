//! Failure detection: the Raft leader checks every active node each second and marks one it could not reach
//! for `[rebalance] down_after_secs` as `down` in the map. A down node owns nothing, so writes go to the next
//! nodes in HRW order and the walks on the others restore mirrored copies there; the node itself, once back,
//! reconciles its copies and makes itself active again (`jobs/rebalance.rs`). Only a leader with a quorum can
//! change the map, so a partitioned minority marks nobody.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use trove_cluster::NodeState;

use crate::state::SharedState;

const EVERY: Duration = Duration::from_secs(1);
/// A check that takes longer than this failed.
const CHECK_DEADLINE: Duration = Duration::from_secs(2);

/// Runs for the life of the node.
pub async fn watch(state: SharedState) {
    let down_after = Duration::from_secs(state.rebalance.down_after_secs);
    let mut failing: HashMap<String, Instant> = HashMap::new();
    loop {
        tokio::time::sleep(EVERY).await;
        if state.cluster.status().leader.as_deref() != Some(state.node_id.as_str()) {
            failing.clear();
            continue;
        }
        let map = state.cluster.map();
        let nodes: Vec<_> =
            map.smap.active().filter(|n| n.id != state.node_id).map(|n| (n.id.clone(), n.url.clone())).collect();
        failing.retain(|id, _| nodes.iter().any(|(n, _)| n == id));
        let checks = nodes.into_iter().map(|(id, url)| {
            let st = state.clone();
            async move { (id, alive(&st, &url).await) }
        });
        for (id, up) in futures::future::join_all(checks).await {
            if up {
                failing.remove(&id);
                continue;
            }
            let since = *failing.entry(id.clone()).or_insert_with(Instant::now);
            if since.elapsed() < down_after {
                continue;
            }
            failing.remove(&id);
            // Still active in the map as applied now (it may have come back and been marked already).
            if state.cluster.map().smap.nodes.get(&id).map(|n| n.state) != Some(NodeState::Active) {
                continue;
            }
            tracing::warn!(node = %id, after = ?down_after, "marking an unreachable node down");
            if let Err(e) = state.cluster.set_state(&id, NodeState::Down).await {
                tracing::warn!(node = %id, error = %e, "could not mark a node down");
            }
        }
    }
}

/// Whether the node at `url` answers HTTP at all (a node starting up answers its health check with 503: it is
/// there).
async fn alive(state: &SharedState, url: &str) -> bool {
    let Ok(req) = http::Request::get(format!("{}{}", url.trim_end_matches('/'), trove_ais::path::HEALTH))
        .body(s3s::Body::empty())
    else {
        return false;
    };
    matches!(tokio::time::timeout(CHECK_DEADLINE, state.forwarder.request(req)).await, Ok(Ok(_)))
}
