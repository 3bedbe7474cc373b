//! `/v1/daemon` and `/v1/cluster`: the cluster map (`what=smap`) as AIS sends it — every Trove node is both
//! gateway and storage, so each node stands in the proxy map and in the target map — and the job queries
//! (`what=status|status_all|qryxstats|running_all`) and job stop (`PUT /v1/cluster {"action":"stop"}`), which
//! gather every node's part of a job.

use bytes::Bytes;
use http::StatusCode;
use serde_json::json;

use trove_ais::{action, path as ais_path, query, what};

use trove_cluster::{NodeInfo, NodeState};

use super::{json, Call};
use crate::data::peers::{jobs_everywhere, JobFilter};
use crate::jobs::JobView;
use crate::state::SharedState;

type Reply = Result<http::Response<s3s::Body>, (StatusCode, String)>;

/// AIS's `Snode` of `node` in the role `daemon_type` (`proxy` or `target`).
fn snode(node: &NodeInfo, daemon_type: &str) -> serde_json::Value {
    let hostport = node.url.split_once("://").map_or(node.url.as_str(), |(_, r)| r).trim_end_matches('/');
    let (host, port) = hostport.rsplit_once(':').unwrap_or((hostport, "80"));
    let net = json!({
        "node_ip_addr": host,
        "daemon_port": port,
        "direct_url": node.url,
    });
    // AIS's flags: 4 in maintenance, 8 being decommissioned.
    let flags = match node.state {
        NodeState::Maintenance => 4,
        NodeState::Leaving => 8,
        // AIS's "node failed" flag would be NodeInfo's; 4 (not serving) is what clients act on.
        NodeState::Down => 4,
        NodeState::Active | NodeState::Joining => 0,
    };
    json!({
        "public_net": net,
        "intra_control_net": net,
        "intra_data_net": net,
        "daemon_type": daemon_type,
        "daemon_id": node.id,
        "flags": flags,
        "id_digest": trove_namespace::hrw::Member::new(node.id.clone()).digest(),
        "trove": {"state": node.state.as_str(), "capacity": node.capacity},
    })
}

/// The cluster map in AIS's Smap shape: every node is both gateway and storage, so each stands in the proxy
/// map and in the target map; the Raft leader is the primary.
pub fn smap(state: &SharedState) -> serde_json::Value {
    let map = state.cluster.map();
    let status = state.cluster.status();
    let leader = status.leader.clone().unwrap_or_else(|| state.node_id.clone());
    let mut pmap = serde_json::Map::new();
    let mut tmap = serde_json::Map::new();
    for (id, n) in &map.smap.nodes {
        pmap.insert(id.clone(), snode(n, "proxy"));
        tmap.insert(id.clone(), snode(n, "target"));
    }
    let primary = map.smap.nodes.get(&leader).or_else(|| map.smap.nodes.get(&state.node_id));
    json!({
        "pmap": pmap,
        "tmap": tmap,
        "proxy_si": primary.map(|n| snode(n, "proxy")).unwrap_or(serde_json::Value::Null),
        "uuid": map.uuid,
        "creation_time": map.creation_time,
        "version": map.smap.version.to_string(),
        // Trove's Raft view, as this node sees it (AIS clients ignore the extra field).
        "trove": {
            "leader": status.leader, "voters": status.voters, "learners": status.learners, "term": status.term,
            "registry_version": state.registry.snapshot().version,
        },
    })
}

/// AIS's job query (`xact.QueryMsg`); its SDK sends Go field names (`ID`, `Kind`), AIS's own docs lower case.
#[derive(Debug, Default, serde::Deserialize)]
struct JobQuery {
    #[serde(default, alias = "ID")]
    id: String,
    #[serde(default, alias = "Kind")]
    kind: String,
    #[serde(default)]
    show_active: bool,
}

/// AIS's `nl.Status` of the cluster's job (all nodes' parts).
fn status(j: &JobView) -> serde_json::Value {
    json!({
        "kind": j.kind,
        "uuid": j.id,
        "err": j.err.clone().unwrap_or_default(),
        "end_time": j.end_ns,
        "aborted": j.aborted,
        "is_idle": j.finished(),
    })
}

/// AIS's `core.Snap` of one node's part (counters as strings, as AIS sends int64s), plus Trove's
/// skipped/failed counts.
fn snap(j: &JobView) -> serde_json::Value {
    let (objs, bytes) = (j.objs.to_string(), j.bytes.to_string());
    let fetched = j.kind == crate::jobs::PREFETCH;
    // A rebalance's objects are the copies this node sent (out) and received (in).
    let moved = j.kind == crate::jobs::rebalance::REBALANCE;
    let zero = || "0".to_owned();
    json!({
        "id": j.id,
        "kind": j.kind,
        "start-time": crate::jobs::rfc3339(j.start_ns),
        "end-time": if j.finished() { crate::jobs::rfc3339(j.end_ns) } else { String::new() },
        "bck": {"name": j.bck.name, "provider": j.bck.provider.as_str(), "namespace": {"uuid": j.bck.ns.uuid, "name": j.bck.ns.name}},
        "stats": {
            "loc-objs": if moved { zero() } else { objs.clone() },
            "loc-bytes": if moved { zero() } else { bytes.clone() },
            "in-objs": if fetched { objs.clone() } else if moved { j.in_objs.to_string() } else { zero() },
            "in-bytes": if fetched { bytes.clone() } else if moved { j.in_bytes.to_string() } else { zero() },
            "out-objs": if moved { objs } else { zero() },
            "out-bytes": if moved { bytes } else { zero() },
        },
        "trove": {"skipped": j.skipped.to_string(), "failed": j.failed.to_string()},
        "aborted": j.aborted,
        "is_idle": j.finished(),
        "abort-err": if j.aborted { j.err.clone().unwrap_or_else(|| "aborted".into()) } else { String::new() },
        "err": j.err.clone().unwrap_or_default(),
        "glob.id": "0",
    })
}

/// The membership actions Trove carries out (AIS's names).
const NODE_ACTIONS: [&str; 5] = [
    action::START_MAINTENANCE,
    action::STOP_MAINTENANCE,
    action::DECOMMISSION_NODE,
    action::RM_NODE_UNSAFE,
    action::SHUTDOWN_NODE,
];

/// Takes a node out of (or back into) the cluster: maintenance keeps it a member that owns nothing;
/// decommission makes it leave placement for good (its AIS-local objects stay reachable from it until it is
/// removed); `rm-unsafe` removes it from the Raft membership and the map at once.
async fn node_action(state: &SharedState, call: &Call) -> Reply {
    let v: trove_ais::NodeActionValue = serde_json::from_value(call.msg.value.clone())
        .map_err(|e| (StatusCode::BAD_REQUEST, format!("invalid {} value: {e}", call.msg.action)))?;
    if v.sid.is_empty() {
        return Err((StatusCode::BAD_REQUEST, format!("{} needs the node's id (\"sid\")", call.msg.action)));
    }
    if v.rm_user_data || v.keep_initial_config || v.no_shutdown {
        return Err((
            StatusCode::BAD_REQUEST,
            "rm_user_data, keep_initial_config and no_shutdown are not supported by Trove".into(),
        ));
    }
    let cluster = &state.cluster;
    let done = match call.msg.action.as_str() {
        action::START_MAINTENANCE => cluster.set_state(&v.sid, NodeState::Maintenance).await,
        action::STOP_MAINTENANCE => cluster.set_state(&v.sid, NodeState::Active).await,
        action::DECOMMISSION_NODE => cluster.set_state(&v.sid, NodeState::Leaving).await,
        action::RM_NODE_UNSAFE => cluster.remove(&v.sid).await,
        other => return Err((StatusCode::BAD_REQUEST, format!("{other} is not supported by Trove"))),
    };
    done.map_err(|e| match e {
        trove_cluster::Error::NoSuchNode(_) => (StatusCode::NOT_FOUND, e.to_string()),
        trove_cluster::Error::NoQuorum(_) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        other => (StatusCode::CONFLICT, other.to_string()),
    })?;
    Ok(json(StatusCode::OK, Bytes::new()))
}

fn query(call: &Call) -> JobQuery {
    serde_json::from_value(call.raw.clone()).unwrap_or_default()
}

fn filter(q: &JobQuery) -> JobFilter {
    JobFilter { id: q.id.clone(), kind: q.kind.clone() }
}

fn reply(v: serde_json::Value) -> Reply {
    Ok(json(StatusCode::OK, Bytes::from(v.to_string())))
}

pub async fn handle(state: &SharedState, call: &Call, path: &str) -> Reply {
    match (&call.method, call.param(query::WHAT)) {
        (&http::Method::GET, Some(what::SMAP)) => reply(smap(state)),
        (&http::Method::GET, Some(what::REMOTE)) if path == ais_path::CLUSTER => super::remotes::show(state).await,
        (&http::Method::GET, Some(what::STATUS)) => {
            let q = query(call);
            let parts = jobs_everywhere(state, &filter(&q), false).await;
            let job = JobView::merge(parts.into_iter().flat_map(|(_, v)| v)).into_iter().find(|j| j.id == q.id);
            let job = job.ok_or((StatusCode::NOT_FOUND, format!("job {:?} not found", q.id)))?;
            reply(status(&job))
        }
        (&http::Method::GET, Some(what::STATUS_ALL)) => {
            let q = query(call);
            let parts = jobs_everywhere(state, &filter(&q), false).await;
            let all: Vec<_> = JobView::merge(parts.into_iter().flat_map(|(_, v)| v))
                .iter()
                .filter(|j| !q.show_active || !j.finished())
                .map(status)
                .collect();
            reply(json!(all))
        }
        (&http::Method::GET, Some(what::QUERY_XSTATS)) => {
            // AIS answers per node: {node id: [snaps]}.
            let q = query(call);
            let mut out = serde_json::Map::new();
            for (node, views) in jobs_everywhere(state, &filter(&q), false).await {
                let snaps: Vec<_> = views.iter().filter(|j| !q.show_active || !j.finished()).map(snap).collect();
                out.insert(node, json!(snaps));
            }
            reply(serde_json::Value::Object(out))
        }
        (&http::Method::GET, Some(what::RUNNING_ALL)) => {
            let q = query(call);
            let parts = jobs_everywhere(state, &filter(&q), false).await;
            let running: Vec<_> = JobView::merge(parts.into_iter().flat_map(|(_, v)| v))
                .iter()
                .filter(|j| !j.finished())
                .map(|j| format!("{}[{}]", j.kind, j.id))
                .collect();
            reply(json!(running))
        }
        (&http::Method::PUT, _) if path == ais_path::CLUSTER && call.msg.action == action::START => {
            let q: JobQuery = serde_json::from_value(call.msg.value.clone()).unwrap_or_default();
            if q.kind != crate::jobs::rebalance::REBALANCE {
                return Err((
                    StatusCode::BAD_REQUEST,
                    format!("start: kind {:?} cannot be started here (rebalance can; prefetch and evict start on their bucket)", q.kind),
                ));
            }
            if state.cluster.map().smap.nodes.len() < 2 {
                return Err((
                    StatusCode::BAD_REQUEST,
                    "start: a rebalance needs a cluster of two or more nodes".into(),
                ));
            }
            let id = crate::data::peers::rebalance_everywhere(state)
                .await
                .map_err(|e| (StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
            Ok(super::job_id(id))
        }
        (&http::Method::PUT, _) if path == ais_path::CLUSTER && call.msg.action == action::STOP => {
            let q: JobQuery = serde_json::from_value(call.msg.value.clone()).unwrap_or_default();
            if q.id.is_empty() && q.kind.is_empty() {
                return Err((StatusCode::BAD_REQUEST, "stop needs a job id or kind".into()));
            }
            let stopped = jobs_everywhere(state, &filter(&q), true).await;
            if stopped.iter().all(|(_, v)| v.is_empty()) && !q.id.is_empty() {
                return Err((StatusCode::NOT_FOUND, format!("job {:?} not found", q.id)));
            }
            Ok(json(StatusCode::OK, Bytes::new()))
        }
        (&http::Method::PUT, _) if path == ais_path::CLUSTER && NODE_ACTIONS.contains(&call.msg.action.as_str()) => {
            node_action(state, call).await
        }
        (_, what) => Err((
            StatusCode::BAD_REQUEST,
            format!("unsupported {} {path} (what={}, action={:?})", call.method, what.unwrap_or(""), call.msg.action),
        )),
    }
}
