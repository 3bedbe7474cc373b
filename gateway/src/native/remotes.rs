//! Remote AIS clusters on the native API, as AIS has them: `PUT /v1/cluster/attach?what=remote` and
//! `PUT /v1/cluster/detach?what=remote` with the alias and URL(s) in headers and no body, and
//! `GET /v1/cluster?what=remote` (`{"a": [{"url", "alias", "uuid", "smap"}], "ver"}`). A token for a cluster that
//! requires one travels in `Trove-Remote-Token` (AIS has no header for it).

use bytes::Bytes;
use http::StatusCode;
use serde_json::json;
use trove_ais::{header, query, what};

use super::{json, Call};
use crate::cluster::remotes::{self, RemoteError};
use crate::state::SharedState;

type Reply = Result<http::Response<s3s::Body>, (StatusCode, String)>;

fn status(e: RemoteError) -> (StatusCode, String) {
    let code = match &e {
        RemoteError::Invalid(_) => StatusCode::BAD_REQUEST,
        RemoteError::NotFound(_) => StatusCode::NOT_FOUND,
        RemoteError::Cluster(trove_cluster::Error::NoQuorum(_)) => StatusCode::SERVICE_UNAVAILABLE,
        RemoteError::Cluster(_) => StatusCode::CONFLICT,
    };
    (code, e.to_string())
}

fn alias(call: &Call) -> Result<String, (StatusCode, String)> {
    if call.param(query::WHAT) != Some(what::REMOTE) {
        return Err((StatusCode::BAD_REQUEST, "attach and detach need what=remote".into()));
    }
    let alias = call.headers.get(header::REMOTE_AIS_ALIAS).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if alias.trim().is_empty() {
        return Err((StatusCode::BAD_REQUEST, format!("missing header {}", header::REMOTE_AIS_ALIAS)));
    }
    Ok(alias.trim().to_owned())
}

/// `PUT /v1/cluster/attach?what=remote`: the URLs of every `Ais-Remote-Ais-Url` header, each comma-separated.
pub async fn attach(state: &SharedState, call: &Call) -> Reply {
    let alias = alias(call)?;
    let mut urls = Vec::new();
    for v in call.headers.get_all(header::REMOTE_AIS_URL) {
        let v = v.to_str().map_err(|_| (StatusCode::BAD_REQUEST, "a URL header is not ASCII".to_owned()))?;
        urls.extend(v.split(',').map(str::trim).filter(|u| !u.is_empty()).map(str::to_owned));
    }
    if urls.is_empty() {
        return Err((StatusCode::BAD_REQUEST, format!("missing header {}", header::REMOTE_AIS_URL)));
    }
    let token = call.headers.get(header::TROVE_REMOTE_TOKEN).and_then(|v| v.to_str().ok()).map(str::to_owned);
    remotes::attach(state, &alias, urls, token).await.map_err(status)?;
    Ok(json(StatusCode::OK, Bytes::new()))
}

/// `PUT /v1/cluster/detach?what=remote`: the alias (or UUID) in `Ais-Remote-Ais-Alias`.
pub async fn detach(state: &SharedState, call: &Call) -> Reply {
    let alias = alias(call)?;
    remotes::detach(state, &alias).await.map_err(status)?;
    Ok(json(StatusCode::OK, Bytes::new()))
}

/// `GET /v1/cluster?what=remote`.
pub async fn show(state: &SharedState) -> Reply {
    let (live, version) = remotes::live(state).await;
    let body = json!({"a": live, "ver": version});
    Ok(json(StatusCode::OK, Bytes::from(body.to_string())))
}
