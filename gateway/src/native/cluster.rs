//! `/v1/daemon` and `/v1/cluster`: the cluster map (`what=smap`) as AIS sends it — every Trove node is both
//! gateway and storage, so the node stands in the proxy map and in the target map — and the job queries
//! (`what=status|status_all|qryxstats|running_all`) and job stop (`PUT /v1/cluster {"action":"stop"}`).

use bytes::Bytes;
use http::StatusCode;
use serde_json::json;

use std::sync::atomic::Ordering;

use trove_ais::{action, path as ais_path, query, what};

use super::{json, Call};
use crate::jobs::Job;
use crate::state::SharedState;

type Reply = Result<http::Response<s3s::Body>, (StatusCode, String)>;

/// AIS's `Snode` for this node in the role `daemon_type` (`proxy` or `target`).
fn snode(state: &SharedState, daemon_type: &str) -> serde_json::Value {
    let addr = state.listen;
    let net = json!({
        "node_ip_addr": addr.ip().to_string(),
        "daemon_port": addr.port().to_string(),
        "direct_url": format!("http://{addr}"),
    });
    json!({
        "public_net": net,
        "intra_control_net": net,
        "intra_data_net": net,
        "daemon_type": daemon_type,
        "daemon_id": state.node_id,
        "flags": 0,
        "id_digest": trove_namespace::hrw::Member::new(state.node_id.clone()).digest(),
    })
}

pub fn smap(state: &SharedState) -> serde_json::Value {
    let id = state.node_id.clone();
    json!({
        "pmap": { id.clone(): snode(state, "proxy") },
        "tmap": { id: snode(state, "target") },
        "proxy_si": snode(state, "proxy"),
        "uuid": state.identity.uuid,
        "creation_time": state.identity.creation_time,
        "version": "1",
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

/// AIS's `nl.Status`.
fn status(j: &Job) -> serde_json::Value {
    json!({
        "kind": j.kind,
        "uuid": j.id,
        "err": j.error().unwrap_or_default(),
        "end_time": j.end_ns(),
        "aborted": j.aborted(),
        "is_idle": j.finished(),
    })
}

/// AIS's `core.Snap` (counters as strings, as AIS sends int64s), plus Trove's skipped/failed counts.
fn snap(j: &Job) -> serde_json::Value {
    let n = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed).to_string();
    let (objs, bytes) = (n(&j.objs), n(&j.bytes));
    let fetched = j.kind == crate::jobs::PREFETCH;
    json!({
        "id": j.id,
        "kind": j.kind,
        "start-time": rfc3339(j.start_ns),
        "end-time": if j.finished() { rfc3339(j.end_ns()) } else { String::new() },
        "bck": {"name": j.bck.name, "provider": j.bck.provider.as_str(), "namespace": {"uuid": j.bck.ns.uuid, "name": j.bck.ns.name}},
        "stats": {
            "loc-objs": objs, "loc-bytes": bytes,
            "in-objs": if fetched { objs.clone() } else { "0".into() },
            "in-bytes": if fetched { bytes.clone() } else { "0".into() },
            "out-objs": "0", "out-bytes": "0",
        },
        "trove": {"skipped": n(&j.skipped), "failed": n(&j.failed)},
        "aborted": j.aborted(),
        "is_idle": j.finished(),
        "abort-err": if j.aborted() { j.error().unwrap_or_else(|| "aborted".into()) } else { String::new() },
        "err": j.error().unwrap_or_default(),
        "glob.id": "0",
    })
}

fn query(call: &Call) -> JobQuery {
    serde_json::from_value(call.raw.clone()).unwrap_or_default()
}

fn matching(state: &SharedState, q: &JobQuery) -> Vec<std::sync::Arc<Job>> {
    let kind = Some(q.kind.as_str()).filter(|k| !k.is_empty());
    state.jobs.list(kind).into_iter().filter(|j| q.id.is_empty() || j.id == q.id).collect()
}

fn reply(v: serde_json::Value) -> Reply {
    Ok(json(StatusCode::OK, Bytes::from(v.to_string())))
}

pub fn handle(state: &SharedState, call: &Call, path: &str) -> Reply {
    match (&call.method, call.param(query::WHAT)) {
        (&http::Method::GET, Some(what::SMAP)) => reply(smap(state)),
        (&http::Method::GET, Some(what::STATUS)) => {
            let q = query(call);
            let job = state.jobs.get(&q.id).ok_or((StatusCode::NOT_FOUND, format!("job {:?} not found", q.id)))?;
            reply(status(&job))
        }
        (&http::Method::GET, Some(what::STATUS_ALL)) => {
            let q = query(call);
            let all: Vec<_> =
                matching(state, &q).iter().filter(|j| !q.show_active || !j.finished()).map(|j| status(j)).collect();
            reply(json!(all))
        }
        (&http::Method::GET, Some(what::QUERY_XSTATS)) => {
            let q = query(call);
            let snaps: Vec<_> =
                matching(state, &q).iter().filter(|j| !q.show_active || !j.finished()).map(|j| snap(j)).collect();
            reply(json!({ state.node_id.clone(): snaps }))
        }
        (&http::Method::GET, Some(what::RUNNING_ALL)) => {
            let q = query(call);
            let running: Vec<_> =
                matching(state, &q).iter().filter(|j| !j.finished()).map(|j| format!("{}[{}]", j.kind, j.id)).collect();
            reply(json!(running))
        }
        (&http::Method::PUT, _) if path == ais_path::CLUSTER && call.msg.action == action::STOP => {
            let q: JobQuery = serde_json::from_value(call.msg.value.clone()).unwrap_or_default();
            if q.id.is_empty() && q.kind.is_empty() {
                return Err((StatusCode::BAD_REQUEST, "stop needs a job id or kind".into()));
            }
            let jobs = matching(state, &q);
            if jobs.is_empty() && !q.id.is_empty() {
                return Err((StatusCode::NOT_FOUND, format!("job {:?} not found", q.id)));
            }
            for j in jobs {
                j.abort();
            }
            Ok(json(StatusCode::OK, Bytes::new()))
        }
        (_, what) => Err((
            StatusCode::BAD_REQUEST,
            format!("unsupported {} {path} (what={}, action={:?})", call.method, what.unwrap_or(""), call.msg.action),
        )),
    }
}
