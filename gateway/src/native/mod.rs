//! The AIS-compatible native API under `/v1/`. This scope is health; the rest of the AIS surface
//! (buckets, objects, jobs, cluster maps) arrives with the cache-tier work and answers 404 until then.

use bytes::Bytes;
use http::{Response, StatusCode};

use crate::state::SharedState;

/// `/v1/...` is the native API; a bare `/v1` stays S3 so that CreateBucket("v1") gets InvalidBucketName.
pub fn is_native_path(path: &str) -> bool {
    path.starts_with("/v1/")
}

pub fn handle(
    state: &SharedState,
    method: &http::Method,
    path: &str,
    headers: &http::HeaderMap,
) -> Response<s3s::Body> {
    match (method, path) {
        (&http::Method::GET | &http::Method::HEAD, "/v1/health") => json(StatusCode::OK, Bytes::new()),
        _ if !authorized(state, headers) => {
            error(StatusCode::UNAUTHORIZED, method, path, "missing or invalid bearer token")
        }
        _ => error(StatusCode::NOT_FOUND, method, path, &format!("unsupported native API path {path}")),
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

fn json(status: StatusCode, body: Bytes) -> Response<s3s::Body> {
    let mut r = Response::new(s3s::Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    r
}
