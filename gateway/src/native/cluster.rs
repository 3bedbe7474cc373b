//! `/v1/daemon?what=smap` and `/v1/cluster?what=smap`: the cluster map as AIS sends it. Every Trove node is
//! both gateway and storage, so the node stands in the proxy map and in the target map.

use bytes::Bytes;
use http::StatusCode;
use serde_json::json;

use super::{json, Call};
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

pub fn handle(state: &SharedState, call: &Call, path: &str) -> Reply {
    match (&call.method, call.param("what")) {
        (&http::Method::GET, Some("smap")) => Ok(json(StatusCode::OK, Bytes::from(smap(state).to_string()))),
        (_, what) => Err((
            StatusCode::BAD_REQUEST,
            format!("unsupported {} {path} query what={}", call.method, what.unwrap_or("")),
        )),
    }
}
