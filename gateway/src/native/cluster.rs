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
    let leader = state.cluster.status().leader.unwrap_or_else(|| state.node_id.clone());
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

fn rfc3339(ns: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(ns as i128)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
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
    json!({
        "id": j.id,
        "kind": j.kind,
        "start-time": rfc3339(j.start_ns),
        "end-time": if j.finished() { rfc3339(j.end_ns) } else { String::new() },
        "bck": {"name": j.bck.name, "provider": j.bck.provider.as_str(), "namespace": {"uuid": j.bck.ns.uuid, "name": j.bck.ns.name}},
        "stats": {
            "loc-objs": objs, "loc-bytes": bytes,
            "in-objs": if fetched { objs.clone() } else { "0".into() },
            "in-bytes": if fetched { bytes.clone() } else { "0".into() },
            "out-objs": "0", "out-bytes": "0",
        },
        "trove": {"skipped": j.skipped.to_string(), "failed": j.failed.to_string()},
        "aborted": j.aborted,
        "is_idle": j.finished(),
        "abort-err": if j.aborted { j.err.clone().unwrap_or_else(|| "aborted".into()) } else { String::new() },
        "err": j.err.clone().unwrap_or_default(),
        "glob.id": "0",
    })
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
        (_, what) => Err((
            StatusCode::BAD_REQUEST,
            format!("unsupported {} {path} (what={}, action={:?})", call.method, what.unwrap_or(""), call.msg.action),
        )),
    }
}
