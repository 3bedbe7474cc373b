//! The AIS-compatible native API under `/v1/`: health, metrics, the cluster map (`what=smap`), and buckets
//! (list, attach with `create-bck`, properties, detach). Bearer-token auth except for health and (by default)
//! metrics. Objects and jobs are the cache-tier work and answer 404 until then.

mod buckets;
mod cluster;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde::Deserialize;

use crate::state::SharedState;

/// `/v1/...` is the native API; a bare `/v1` stays S3 so that CreateBucket("v1") gets InvalidBucketName.
pub fn is_native_path(path: &str) -> bool {
    path.starts_with("/v1/")
}

/// Control messages are JSON bodies `{"action", "name", "value"}`, as AIS clients send them.
#[derive(Debug, Default, Deserialize)]
pub struct ActionMsg {
    #[serde(default)]
    pub action: String,
    #[serde(default)]
    pub value: serde_json::Value,
}

/// The request as the handlers see it: method, path, query, headers, and the (small) JSON body.
pub struct Call {
    pub method: http::Method,
    pub query: Vec<(String, String)>,
    pub msg: ActionMsg,
}

impl Call {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Control bodies are small; anything bigger is refused rather than buffered.
const MAX_BODY: usize = 1 << 20;

pub async fn handle(state: &SharedState, req: Request<Incoming>) -> Response<s3s::Body> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    match (&method, path.as_str()) {
        (&http::Method::GET | &http::Method::HEAD, "/v1/health") => return json(StatusCode::OK, Bytes::new()),
        (&http::Method::GET, "/v1/metrics") if state.public_metrics || authorized(state, req.headers()) => {
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
    let query = req
        .uri()
        .query()
        .map(|q| {
            q.split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    let dec = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
                    (dec(k), dec(v))
                })
                .collect()
        })
        .unwrap_or_default();
    let body = match http_body_util::Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return error(StatusCode::PAYLOAD_TOO_LARGE, &method, &path, "request body too large"),
    };
    let msg = if body.iter().all(u8::is_ascii_whitespace) {
        ActionMsg::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(m) => m,
            Err(e) => return error(StatusCode::BAD_REQUEST, &method, &path, &format!("invalid JSON body: {e}")),
        }
    };
    let call = Call { method: method.clone(), query, msg };
    let result = if let Some(rest) = path.strip_prefix("/v1/buckets") {
        buckets::handle(state, &call, rest.trim_start_matches('/')).await
    } else if path == "/v1/daemon" || path == "/v1/cluster" {
        cluster::handle(state, &call, &path)
    } else {
        Err((StatusCode::NOT_FOUND, format!("unsupported native API path {path}")))
    };
    match result {
        Ok(r) => r,
        Err((status, message)) => error(status, &method, &path, &message),
    }
}

/// `Authorization: Bearer <admin token>`, compared in constant time.
fn authorized(state: &SharedState, headers: &http::HeaderMap) -> bool {
    let given = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .unwrap_or_default();
    let want = state.admin_token.as_bytes();
    given.len() == want.len() && given.bytes().zip(want).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// An error in AIS's JSON shape.
fn error(status: StatusCode, method: &http::Method, path: &str, message: &str) -> Response<s3s::Body> {
    let body = serde_json::json!({
        "message": message,
        "method": method.as_str(),
        "url_path": path,
        "status": status.as_u16(),
    });
    json(status, Bytes::from(body.to_string()))
}

pub fn json(status: StatusCode, body: Bytes) -> Response<s3s::Body> {
    let mut r = Response::new(s3s::Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    r
}
