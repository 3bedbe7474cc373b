//! The AIS-compatible native API under `/v1/`: health, metrics, the cluster map (`what=smap`), buckets (list,
//! attach with `create-bck`, properties, detach, list objects, prefetch and evict jobs), jobs (status, stats,
//! stop) and objects (GET, PUT, HEAD with `presence`, DELETE). Bearer-token auth except for health and (by
//! default) metrics. Wire shapes follow what AIS sends and what its Python SDK decodes.

mod buckets;
mod cluster;
mod download;
mod errors;
mod listing;
mod moss;
mod objects;
mod remotes;
mod strict;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;

use trove_ais::path as ais_path;

use crate::state::SharedState;

pub use trove_ais::ActionMsg;

/// The request as the handlers see it: method, query, and the (small) JSON body, raw and as a control message.
pub struct Call {
    pub method: http::Method,
    pub query: Vec<(String, String)>,
    pub msg: ActionMsg,
    pub raw: serde_json::Value,
    /// The `Accept` header (list objects answers msgpack when asked).
    pub accept: String,
    /// The request's headers (calls that take arguments in them, as attaching a remote cluster).
    pub headers: http::HeaderMap,
}

impl Call {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// The bucket identity parameters of a call: `provider` (none: an S3 name or AIS-local) and `namespace` (AIS's
/// `@uuid#name`; a remote cluster by UUID or alias).
pub fn addressed(
    query: &[(String, String)],
) -> Result<(Option<trove_namespace::Provider>, trove_namespace::Namespace), (StatusCode, String)> {
    let get = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty());
    let provider = match get(trove_ais::query::PROVIDER) {
        Some(p) => Some(p.parse().map_err(|e: trove_namespace::Error| (StatusCode::BAD_REQUEST, e.to_string()))?),
        None => None,
    };
    let ns = match get(trove_ais::query::NAMESPACE) {
        Some(n) => trove_namespace::Namespace::parse_uname(n)
            .ok_or_else(|| (StatusCode::BAD_REQUEST, format!("invalid namespace {n:?}")))?,
        None => Default::default(),
    };
    Ok((provider, ns))
}

/// The bucket a native call names (`name` with `?provider=` and `?namespace=`). A remote bucket not yet in the
/// namespace is added on first use, as AIS adds it, unless the call says `dont_add_remote_bck_md`.
pub async fn bucket(
    state: &SharedState,
    name: &str,
    query: &[(String, String)],
) -> Result<(String, trove_namespace::BucketEntry), (StatusCode, String)> {
    let (provider, ns) = addressed(query)?;
    if let Some(found) = crate::data::bucket_named(state, name, provider, &ns) {
        return Ok(found);
    }
    let bck =
        trove_namespace::Bck { provider: provider.unwrap_or(trove_namespace::Provider::Ais), ns, name: name.into() };
    let no_add = query.iter().any(|(k, v)| k == trove_ais::query::DONT_ADD_REMOTE_BCK_MD && v != "false");
    if !bck.is_remote() || no_add {
        return Err((StatusCode::NOT_FOUND, format!("bucket {bck} does not exist")));
    }
    let what = bck.to_string();
    crate::data::attach::on_first_use(state, bck).await.map_err(|e| errors::about(e, &what))
}

/// Control bodies are small; anything bigger is refused rather than buffered.
const MAX_BODY: usize = 1 << 20;

/// `query` is the request target's, decoded once.
pub async fn handle(state: &SharedState, req: Request<s3s::Body>, query: Vec<(String, String)>) -> Response<s3s::Body> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    match (&method, path.as_str()) {
        (&http::Method::GET | &http::Method::HEAD, ais_path::HEALTH) => {
            return match strict::check(strict::Route::Health, &query, req.headers()) {
                // AIS: 503 while the node starts (here: until it has founded or joined its cluster).
                Ok(()) if !state.ready.load(std::sync::atomic::Ordering::Acquire) => {
                    error(StatusCode::SERVICE_UNAVAILABLE, &method, &path, "the node is starting")
                }
                Ok(()) => json(StatusCode::OK, Bytes::new()),
                Err((status, message)) => error(status, &method, &path, &message),
            };
        }
        (&http::Method::GET, ais_path::METRICS) if state.public_metrics || authorized(state, req.headers()) => {
            let mut r = Response::new(s3s::Body::from(crate::metrics::render(state)));
            r.headers_mut()
                .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/plain; version=0.0.4"));
            return r;
        }
        _ => {}
    }
    if !authorized(state, req.headers()) {
        return error(StatusCode::UNAUTHORIZED, &method, &path, "missing or invalid bearer token");
    }
    // GetBatch: a GET with a (possibly large) JSON body, answered with a stream.
    if let Some(rest) = path.strip_prefix("/v1/ml/moss") {
        return get_batch(state, req, rest, &query).await;
    }
    let route = if path.starts_with(ais_path::OBJECTS) {
        strict::Route::object(&method)
    } else if path == ais_path::ATTACH || path == ais_path::DETACH {
        strict::Route::RemoteAttach
    } else if let Some(rest) = path.strip_prefix(ais_path::BUCKETS) {
        strict::Route::bucket(&method, rest.trim_start_matches('/'))
    } else {
        strict::Route::Cluster
    };
    let refused = strict::check(route, &query, req.headers());
    // Object data streams; everything else is a small JSON control message (AIS clients send
    // `Content-Type: application/json` on object PUTs too, so the path decides, not the header).
    let data = matches!(method, http::Method::GET | http::Method::HEAD | http::Method::PUT);
    if let (true, Err((status, message))) = (data, &refused) {
        return error(*status, &method, &path, message);
    }
    if let Some(rest) = path.strip_prefix(ais_path::OBJECTS).filter(|_| data) {
        let rest = rest.to_owned();
        return match objects::handle(state, req, &rest, &query).await {
            Ok(r) => r,
            Err((status, message)) => error(status, &method, &path, &message),
        };
    }
    let accept = req.headers().get(http::header::ACCEPT).and_then(|h| h.to_str().ok()).unwrap_or_default().to_owned();
    let headers = req.headers().clone();
    let body = match http_body_util::Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return error(StatusCode::PAYLOAD_TOO_LARGE, &method, &path, "request body too large"),
    };
    let raw: serde_json::Value = if body.iter().all(u8::is_ascii_whitespace) {
        serde_json::Value::Null
    } else {
        match serde_json::from_slice(&body) {
            Ok(m) => m,
            Err(e) => return error(StatusCode::BAD_REQUEST, &method, &path, &format!("invalid JSON body: {e}")),
        }
    };
    let msg: ActionMsg = serde_json::from_value(raw.clone()).unwrap_or_default();
    if let Err((status, message)) = refused {
        // A refused parameter usually belongs to an action Trove lacks as well: name both.
        let message =
            if msg.action.is_empty() { message } else { format!("{message} (action {} with it)", msg.action) };
        return error(status, &method, &path, &message);
    }
    let call = Call { method: method.clone(), query, msg, raw, accept, headers };
    let result = if let Some(rest) = path.strip_prefix(ais_path::OBJECTS) {
        objects::control(state, &call, rest).await
    } else if let Some(rest) = path.strip_prefix(ais_path::BUCKETS) {
        buckets::handle(state, &call, rest.trim_start_matches('/')).await
    } else if (path == ais_path::ATTACH || path == ais_path::DETACH) && method == http::Method::PUT {
        if path == ais_path::ATTACH {
            remotes::attach(state, &call).await
        } else {
            remotes::detach(state, &call).await
        }
    } else if path == ais_path::DOWNLOAD || path.starts_with("/v1/download/") {
        download::handle(state, &call, &path).await
    } else if path == ais_path::DAEMON || path == ais_path::CLUSTER {
        cluster::handle(state, &call, &path).await
    } else {
        Err((StatusCode::NOT_FOUND, format!("unsupported native API path {path}")))
    };
    match result {
        Ok(r) => r,
        Err((status, message)) => error(status, &method, &path, &message),
    }
}

async fn get_batch(
    state: &SharedState,
    req: Request<s3s::Body>,
    rest: &str,
    query: &[(String, String)],
) -> Response<s3s::Body> {
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    if let Some((k, _)) = query.iter().find(|(k, _)| !matches!(k.as_str(), "provider" | "namespace" | "coloc")) {
        return error(
            StatusCode::BAD_REQUEST,
            &method,
            &path,
            &format!("query parameter {k} is not supported by Trove"),
        );
    }
    if method != http::Method::GET {
        return error(StatusCode::METHOD_NOT_ALLOWED, &method, &path, "GetBatch is a GET with a JSON body");
    }
    let bucket = rest.trim_matches('/');
    let bucket = (!bucket.is_empty()).then_some(bucket);
    let body = match http_body_util::Limited::new(req.into_body(), moss::MAX_REQUEST).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return error(StatusCode::PAYLOAD_TOO_LARGE, &method, &path, "request body too large"),
    };
    match moss::handle(state, bucket, query, body).await {
        Ok(r) => r,
        Err((status, message)) => error(status, &method, &path, &message),
    }
}

fn authorized(state: &SharedState, headers: &http::HeaderMap) -> bool {
    crate::door::bearer(headers, &state.admin_token).is_some()
}

/// An error in AIS's JSON shape.
fn error(status: StatusCode, method: &http::Method, path: &str, message: &str) -> Response<s3s::Body> {
    let body = serde_json::json!({
        "message": message,
        "method": method.as_str(),
        "url_path": path,
        "status": status.as_u16(),
    });
    let mut r = json(status, Bytes::from(body.to_string()));
    // A HEAD answer has no body: AIS carries the error in a header.
    if method == http::Method::HEAD {
        if let Ok(v) = http::HeaderValue::from_str(&body.to_string()) {
            r.headers_mut().insert(trove_ais::header::ERROR, v);
        }
    }
    r
}

pub fn json(status: StatusCode, body: Bytes) -> Response<s3s::Body> {
    let mut r = Response::new(s3s::Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    r
}

/// A started job's id, as AIS answers it: plain text.
pub fn job_id(id: String) -> Response<s3s::Body> {
    let mut r = json(StatusCode::OK, Bytes::from(id));
    r.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/plain; charset=utf-8"));
    r
}
