//! In-cluster forwarding: a request for an object that another node owns is passed to that node and its answer
//! streamed back, both bodies streamed (never held whole, never a redirect: AIS #240). The owner authenticates
//! and authorizes the caller itself from the original head, which travels unchanged (its signature covers the
//! Host header and, for aws-chunked uploads, the body chunks that only the node consuming the body can check).
//!
//! A forwarded request carries `trove-forwarded` (signed with the cluster secret, so nobody outside can pose as
//! a node) and the sender's Smap version; the receiver waits briefly to reach that version and then serves it
//! itself, so a request is forwarded at most once. When the owner cannot be reached, a read of a cloud object
//! goes to the next node in HRW order (which fills from the backend), a read of a mirrored object to the node
//! with its next copy; anything else is answered 503, which S3 clients retry (until the leader marks the node
//! down and the next node owns its objects).

use std::time::Duration;

use http::{HeaderValue, Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use trove_cluster::NodeInfo;
use trove_namespace::BucketEntry;

use crate::request::{Api, Target};
use crate::state::{AppState, SharedState};

/// Marks a request a node passed on; the value is the cluster's signature of the method and path.
pub const FORWARDED: &str = "trove-forwarded";
/// The Smap version the forwarding node routed by.
pub const SMAP_VERSION: &str = "trove-smap-version";
/// On a forwarded request: answer from this node's own copy only (a neighbor asked, not a client).
pub const NEIGHBOR: &str = "trove-neighbor";

/// How long a receiver behind the sender's Smap waits to catch up.
const CATCH_UP: Duration = Duration::from_secs(2);

/// Headers that belong to one connection, not to the request (RFC 9110 §7.6.1), and `Expect`, which the
/// forwarding node has already answered.
pub(super) const HOP_BY_HOP: [&str; 8] =
    ["connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade", "proxy-authorization", "expect"];

/// The client nodes forward with: pooled keep-alive connections to the other nodes.
#[derive(Clone)]
pub struct Forwarder {
    client: Client<HttpConnector, s3s::Body>,
}

impl std::fmt::Debug for Forwarder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Forwarder")
    }
}

impl Default for Forwarder {
    fn default() -> Self {
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(Duration::from_secs(2)));
        http.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(60)).build(http);
        Forwarder { client }
    }
}

impl Forwarder {
    /// Sends a request to another node.
    pub async fn request(
        &self,
        req: Request<s3s::Body>,
    ) -> Result<Response<hyper::body::Incoming>, hyper_util::client::legacy::Error> {
        self.client.request(req).await
    }
}

/// What routing decided for a request.
pub enum Routed {
    /// Serve it here.
    Local(Request<s3s::Body>),
    /// Answered by another node (or refused).
    Answered(Response<s3s::Body>),
}

/// Routes `req`: a forwarded request is checked and served here; a request for an object another node owns
/// is forwarded to it. Here, a read of an AIS-local object this node lacks asks the other nodes (objects
/// written before the node joined stay where they were until a rebalance moves them), and a delete reaches
/// their copies too.
pub async fn route(state: &SharedState, req: Request<s3s::Body>, target: &Target) -> Routed {
    let forwarded = match req.headers().get(FORWARDED) {
        None => false,
        Some(v) => {
            let header = v.to_str().ok();
            if let Err(e) = state.cluster.verify(header, &forward_method(req.method()), req.uri().path()) {
                tracing::warn!(error = %e, "refused a request posing as forwarded");
                return Routed::Answered(refusal(target.api, StatusCode::FORBIDDEN, "AccessDenied", "Access Denied"));
            }
            let wanted = req.headers().get(SMAP_VERSION).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
            if let Some(v) = wanted.filter(|v| *v > state.cluster.map().smap.version) {
                let mut watch = state.cluster.watch();
                let _ = tokio::time::timeout(CATCH_UP, watch.wait_for(|m| m.smap.version >= v)).await;
            }
            true
        }
    };
    // A neighbor's question is about this node's own copy only.
    if forwarded && req.headers().contains_key(NEIGHBOR) {
        return Routed::Local(req);
    }
    let map = state.cluster.map();
    // One node: nothing to route, and no bucket lookup or hashing spent finding that out.
    if map.smap.nodes.len() <= 1 {
        return Routed::Local(req);
    }
    let Some((entry, key)) = object_of(state, target, req.uri()) else {
        return Routed::Local(req);
    };
    let ranked = super::ranked(&map, &entry.bck, &key);
    match ranked.first() {
        Some(owner) if owner.id != state.node_id && !forwarded => to_owner(state, req, target, &entry, &ranked).await,
        _ if map.smap.nodes.len() > 1 && !entry.bck.is_remote() => {
            with_neighbors(state, req, target, &entry, &key).await
        }
        _ => Routed::Local(req),
    }
}

/// Forwards to the owner (`ranked[0]`); a cloud object read falls back to the next nodes (each fills from the
/// backend), the local node among them.
async fn to_owner(
    state: &SharedState,
    req: Request<s3s::Body>,
    target: &Target,
    entry: &BucketEntry,
    ranked: &[&NodeInfo],
) -> Routed {
    let owner = ranked[0];
    let readonly = matches!(*req.method(), http::Method::GET | http::Method::HEAD);
    // A cloud object can be filled anywhere; a mirrored one is read from its next copy.
    let copies = entry.props.copies(entry.bck.is_remote());
    let fallbacks: &[&NodeInfo] = match (readonly, entry.bck.is_remote()) {
        (true, true) => &ranked[1..],
        (true, false) => &ranked[1..copies.min(ranked.len())],
        (false, _) => &[],
    };
    let version = state.cluster.map().smap.version;
    let (parts, body) = req.into_parts();
    let mut body = Some(body);
    for node in std::iter::once(owner).chain(fallbacks.iter().copied()) {
        if node.id == state.node_id {
            return Routed::Local(Request::from_parts(parts, body.take().unwrap_or_default()));
        }
        let attempt = build(state, &parts, node, version, body.take().unwrap_or_default(), false);
        match state.forwarder.client.request(attempt).await {
            Ok(resp) => return Routed::Answered(resp.map(s3s::Body::http_body)),
            // The client's body stopped arriving: S3's answer is 400 RequestTimeout, the owner is fine.
            Err(e) if body_timed_out(&e) => {
                return Routed::Answered(refusal(
                    target.api,
                    StatusCode::BAD_REQUEST,
                    "RequestTimeout",
                    "Your socket connection to the server was not read from or written to within the timeout period.",
                ));
            }
            Err(e) => {
                tracing::warn!(node = %node.id, error = %e, "forwarding failed");
                // Only a body-less read can be tried again elsewhere.
                if !readonly {
                    break;
                }
                body = Some(s3s::Body::empty());
            }
        }
    }
    Routed::Answered(refusal(
        target.api,
        StatusCode::SERVICE_UNAVAILABLE,
        "ServiceUnavailable",
        &format!("the node that owns this object ({}) cannot be reached; retry", owner.id),
    ))
}

/// Passes a request this node rebuilt (a browser form upload, whose key was in its body) to `node`, the key's
/// owner, as a forwarded request; the answer is streamed back. The owner authenticates it as it would the
/// original (a form carries its own signature).
pub async fn pass_to(
    state: &SharedState,
    parts: &http::request::Parts,
    node: &NodeInfo,
    body: s3s::Body,
) -> Response<s3s::Body> {
    let req = build(state, parts, node, state.cluster.map().smap.version, body, false);
    match state.forwarder.client.request(req).await {
        Ok(resp) => resp.map(s3s::Body::http_body),
        Err(e) => {
            tracing::warn!(node = %node.id, error = %e, "forwarding failed");
            let msg = format!("the node that owns this object ({}) cannot be reached; retry", node.id);
            refusal(Api::S3, StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable", &msg)
        }
    }
}

/// Whether forwarding failed because the client's request body timed out (`conn::TimedBody`'s error, somewhere
/// in the client error's source chain).
fn body_timed_out(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err.downcast_ref::<s3s::S3Error>().is_some_and(|s| *s.code() == s3s::S3ErrorCode::RequestTimeout) {
            return true;
        }
        cur = err.source();
    }
    false
}

/// The owner's side for an AIS-local object: a read it cannot serve from its own disk is asked of the other
/// nodes (503 rather than 404 when one that may hold it is down or silent and the bucket keeps no second copy);
/// a delete is sent to them too (each drops its copy, if any) before this node deletes its own.
async fn with_neighbors(
    state: &SharedState,
    req: Request<s3s::Body>,
    target: &Target,
    entry: &BucketEntry,
    key: &str,
) -> Routed {
    let method = req.method().clone();
    let object_call = target.api == Api::Native || is_plain_object_call(&req);
    // Every version of a key lives on its owner, which alone places delete markers and removes versions: the
    // neighbours have nothing to add to a read or a delete.
    if !object_call || crate::data::versions::is_versioned(entry) {
        return Routed::Local(req);
    }
    let others: Vec<NodeInfo> =
        state.cluster.map().smap.nodes.values().filter(|n| n.id != state.node_id).cloned().collect();
    let version = state.cluster.map().smap.version;
    let (parts, body) = req.into_parts();
    match method {
        http::Method::GET | http::Method::HEAD => {
            let (st, bck, k) = (state.clone(), entry.bck.clone(), key.to_owned());
            // Deleted through this node: a copy a neighbour still holds (it was away) must not answer.
            let here = tokio::task::spawn_blocking(move || {
                st.store.head(&bck, &k).is_ok() || st.tombstones.deleted_at(&bck, &k).is_some()
            })
            .await
            .unwrap_or(true);
            if !here {
                // A node that may hold the object and does not answer: without a second copy elsewhere, "no
                // such key" would be a guess.
                let mut silent = None;
                for node in &others {
                    if node.state == trove_cluster::NodeState::Down {
                        silent = Some(node.id.clone());
                        continue;
                    }
                    let ask = build(state, &parts, node, version, s3s::Body::empty(), true);
                    match state.forwarder.client.request(ask).await {
                        // The neighbour's answer about its copy; anything else (a refusal of this node's call)
                        // counts as not having it, and the client gets this node's own answer.
                        Ok(resp)
                            if resp.status() != StatusCode::NOT_FOUND && resp.status() != StatusCode::FORBIDDEN =>
                        {
                            return Routed::Answered(resp.map(s3s::Body::http_body));
                        }
                        Ok(resp) if resp.status() == StatusCode::FORBIDDEN => {
                            tracing::warn!(node = %node.id, "a neighbour refused this node's read");
                        }
                        Ok(_) => {}
                        Err(e) => {
                            tracing::debug!(node = %node.id, error = %e, "a neighbor did not answer a read");
                            silent = Some(node.id.clone());
                        }
                    }
                }
                if let Some(id) = silent.filter(|_| entry.props.copies(false) < 2) {
                    return Routed::Answered(refusal(
                        target.api,
                        StatusCode::SERVICE_UNAVAILABLE,
                        "ServiceUnavailable",
                        &format!("node {id}, which may hold this object, cannot be reached; retry"),
                    ));
                }
            }
        }
        http::Method::DELETE => {
            let mut asks = tokio::task::JoinSet::new();
            for node in &others {
                let ask = build(state, &parts, node, version, s3s::Body::empty(), true);
                let client = state.forwarder.client.clone();
                asks.spawn(async move { client.request(ask).await.map(|r| r.status()) });
            }
            while asks.join_next().await.is_some() {}
        }
        _ => {}
    }
    Routed::Local(Request::from_parts(parts, body))
}

/// A plain object GET, HEAD or DELETE on the S3 API: no sub-resource (tagging, ACL, uploads) in the query.
fn is_plain_object_call(req: &Request<s3s::Body>) -> bool {
    let query = req.uri().query().unwrap_or_default();
    !["tagging", "acl", "uploadId", "uploads", "attributes", "retention", "legal-hold", "torrent"]
        .iter()
        .any(|sub| query.split('&').any(|p| p == *sub || p.starts_with(&format!("{sub}="))))
}

/// The headers nodes add to the requests they pass on: a client's own never travel (a client could otherwise
/// confine the owner to its own copy with `trove-neighbor`).
pub(super) fn is_internal(name: &str) -> bool {
    matches!(name, FORWARDED | SMAP_VERSION | NEIGHBOR)
}

/// The method as signed in `trove-forwarded` (distinct from Raft's and the gateways' own calls).
pub(super) fn forward_method(m: &http::Method) -> String {
    format!("FWD {m}")
}

/// The request as sent to `node`: same method, path, query, head (minus hop-by-hop headers) and body.
fn build(
    state: &SharedState,
    parts: &http::request::Parts,
    node: &NodeInfo,
    smap_version: u64,
    body: s3s::Body,
    neighbor: bool,
) -> Request<s3s::Body> {
    let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let uri: Uri = format!("{}{path_and_query}", node.url.trim_end_matches('/')).parse().unwrap_or_default();
    let mut req = Request::new(body);
    *req.method_mut() = parts.method.clone();
    *req.uri_mut() = uri;
    let headers = req.headers_mut();
    for (name, value) in &parts.headers {
        if !HOP_BY_HOP.contains(&name.as_str()) && !is_internal(name.as_str()) {
            headers.append(name.clone(), value.clone());
        }
    }
    let signed = state.cluster.sign(&forward_method(&parts.method), parts.uri.path());
    if let Ok(v) = HeaderValue::from_str(&signed) {
        headers.insert(FORWARDED, v);
    }
    headers.insert(SMAP_VERSION, HeaderValue::from(smap_version));
    if neighbor {
        headers.insert(NEIGHBOR, HeaderValue::from_static("1"));
        // No body travels with a neighbor's read or delete.
        headers.remove(http::header::CONTENT_LENGTH);
    }
    req
}

/// The bucket entry and key of an object-level request, when the bucket exists (anything else is served
/// where it arrives: bucket operations, listings, errors).
pub(super) fn object_of(state: &AppState, target: &Target, uri: &Uri) -> Option<(BucketEntry, String)> {
    let path = uri.path();
    match target.api {
        Api::S3 => {
            let rest =
                if target.virtual_host { path.strip_prefix('/')? } else { path.strip_prefix('/')?.split_once('/')?.1 };
            if rest.is_empty() {
                return None;
            }
            let key = percent_encoding::percent_decode_str(rest).decode_utf8().ok()?.into_owned();
            let entry = state.registry.get(target.bucket.as_deref()?)?;
            Some((entry, key))
        }
        Api::Native => {
            let rest = path.strip_prefix(trove_ais::path::OBJECTS)?;
            let (bucket, key) = rest.split_once('/').filter(|(_, k)| !k.is_empty())?;
            let key = percent_encoding::percent_decode_str(key).decode_utf8().ok()?.into_owned();
            let (provider, ns) = crate::native::addressed(&target.query).ok()?;
            let (_, entry) = crate::data::bucket_named(state, bucket, provider, &ns)?;
            Some((entry, key))
        }
    }
}

/// An error in the shape of the API asked: S3's XML, or AIS's plain message.
fn refusal(api: Api, status: StatusCode, code: &str, message: &str) -> Response<s3s::Body> {
    match api {
        Api::S3 => crate::s3::errors::xml_response(status, code, message),
        Api::Native => {
            let mut r = Response::new(s3s::Body::from(message.to_owned()));
            *r.status_mut() = status;
            r.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            r
        }
    }
}
