//! `/v1/buckets`: AIS's bucket calls. Cloud buckets are attached with `create-bck` on `?provider=aws|gcp|azure`
//! (S3 name = the cloud bucket's name), or on an `ais` name with `{"backend_bck": {...}}` in the value (S3 name =
//! that name, AIS's "bucket with a backend"); `destroy-bck` / `evict-remote-bck` detach them again.

use bytes::Bytes;
use http::{Response, StatusCode};
use serde_json::json;
use trove_namespace::{Bck, BucketEntry, Change, Provider};

use trove_ais::{action, header, query};

use super::errors::about;
use super::{json, Call};
use crate::data::attach;
use crate::data::bucket_named as find;
use crate::state::SharedState;

type Reply = Result<Response<s3s::Body>, (StatusCode, String)>;

fn bck_json(b: &Bck) -> serde_json::Value {
    json!({"name": b.name, "provider": b.provider.as_str(), "namespace": {"uuid": b.ns.uuid, "name": b.ns.name}})
}

/// AIS's view of a registry entry: a cloud bucket under its own name, or an `ais` bucket with a backend.
fn entry_json(name: &str, e: &BucketEntry) -> serde_json::Value {
    if e.bck.is_remote() && e.bck.name != name {
        json!({"name": name, "provider": "ais", "namespace": {"uuid": "", "name": ""}, "backend_bck": bck_json(&e.bck)})
    } else {
        let mut v = bck_json(&Bck { name: name.to_owned(), ..e.bck.clone() });
        if e.bck.is_remote() {
            v["backend_bck"] = bck_json(&e.bck);
        }
        v
    }
}

fn props_json(name: &str, e: &BucketEntry) -> serde_json::Value {
    let mut v = serde_json::to_value(&e.props).unwrap_or_default();
    v["provider"] = json!(e.bck.provider.as_str());
    v["created"] = json!((e.created_ms as i128 * 1_000_000).to_string());
    if e.bck.is_remote() {
        v["backend_bck"] = bck_json(&e.bck);
    }
    v["name"] = json!(name);
    v
}

/// `create-bck` of an AIS-local bucket (owned by the root user, like buckets made with S3 CreateBucket).
pub(super) async fn create_ais(state: &SharedState, name: &str, props: &serde_json::Value) -> Reply {
    trove_namespace::validate_s3_bucket_name(name).map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))?;
    let mut p = trove_namespace::BucketProps::default();
    p.apply(props).map_err(|e| (StatusCode::BAD_REQUEST, e))?;
    let entry = BucketEntry {
        bck: Bck::ais(name),
        owner: state.root_id.clone(),
        created_ms: (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64,
        props: p,
        tags: Vec::new(),
        acl: None,
        bid: crate::data::new_bid(),
        sealed: false,
        configs: Default::default(),
    };
    crate::data::apply_registry(state, Change::Create { name: name.to_owned(), entry })
        .await
        .map_err(|e| about(e, &format!("ais://{name}")))?;
    Ok(json(StatusCode::OK, Bytes::new()))
}

/// `copy-bck` (destination in `?bck_to=<provider>/<ns>/<name>/`) and `copy-listrange` (`tobck` in the value):
/// a copy job on every node; a missing AIS-local destination is created. Answers the job id.
async fn copy(state: &SharedState, call: &Call, name: &str, action: &str) -> Reply {
    let bad = |m: String| (StatusCode::BAD_REQUEST, m);
    let (bucket, src) = super::bucket(state, name, &call.query).await?;
    let v = &call.msg.value;
    let text = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or_default().to_owned();
    let flag = |k: &str| v.get(k).and_then(|x| x.as_bool()).unwrap_or(false);
    // The destination: name, provider and AIS namespace (`@uuid#name`; `@#` or empty: this cluster's).
    let (to_name, to_provider, to_ns) = if action == action::COPY_BCK {
        let uname =
            call.param("bck_to").ok_or_else(|| bad("copy-bck needs bck_to=<provider>/<namespace>/<name>/".into()))?;
        let mut parts = uname.trim_end_matches('/').splitn(3, '/');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(p), Some(ns), Some(n)) if !n.is_empty() => (n.to_owned(), p.to_owned(), ns.to_owned()),
            _ => return Err(bad(format!("invalid bck_to {uname:?}"))),
        }
    } else {
        let to = v.get("tobck").ok_or_else(|| bad("copy-listrange needs tobck".into()))?;
        let n = to.get("name").and_then(|x| x.as_str()).unwrap_or_default();
        if n.is_empty() {
            let ns = if src.bck.ns.is_global() {
                String::new()
            } else {
                format!("@{}#{}", src.bck.ns.uuid, src.bck.ns.name)
            };
            (src.bck.name.clone(), src.bck.provider.as_str().to_owned(), ns)
        } else {
            let ns = to.get("namespace");
            let field = |k: &str| ns.and_then(|x| x.get(k)).and_then(|x| x.as_str()).unwrap_or_default();
            let ns = format!("@{}#{}", field("uuid"), field("name"));
            (n.to_owned(), to.get("provider").and_then(|x| x.as_str()).unwrap_or("ais").to_owned(), ns)
        }
    };
    let to_ns = if matches!(to_ns.as_str(), "" | "@#" | "@") { None } else { Some(to_ns) };
    let (prepend, dry_run) = (text("prepend"), flag("dry_run"));
    if flag("synchronize") && !prepend.is_empty() {
        return Err(bad(format!("prepend option ({prepend}) is incompatible with the request to synchronize buckets")));
    }
    let provider = if to_provider.is_empty() { "ais".to_owned() } else { to_provider };
    let mut params = vec![(query::PROVIDER.to_owned(), provider.clone())];
    params.extend(to_ns.clone().map(|ns| (query::NAMESPACE.to_owned(), ns)));
    let (dst_name, dst) = match super::bucket(state, &to_name, &params).await {
        Ok(found) => found,
        // A missing bucket of this cluster is made; one of a remote cluster is the remote's to make.
        Err((StatusCode::NOT_FOUND, _)) if provider == "ais" && to_ns.is_none() => {
            create_ais(state, &to_name, &serde_json::json!({})).await?;
            super::bucket(state, &to_name, &params).await?
        }
        Err(e) => return Err(e),
    };
    if action == action::COPY_BCK && dst.bck == src.bck && !dry_run {
        return Err(bad(format!("cannot copy-bck bucket {} onto itself", src.bck)));
    }
    let msg: trove_ais::MultiObjMsg =
        serde_json::from_value(v.clone()).map_err(|err| bad(format!("invalid {action} message: {err}")))?;
    let presence =
        call.param("presence").map_or(Ok(2), |p| p.parse::<u8>()).map_err(|_| bad("invalid presence".into()))?;
    let spec = crate::jobs::copy::CopySpec {
        to: dst_name,
        prefix: text("prefix").trim_end_matches('*').to_owned(),
        prepend,
        dry_run,
        // copy-bck copies what the cluster holds of a cloud bucket unless `presence=0`; named objects are read.
        cached_only: action == action::COPY_BCK && presence != 0,
    };
    let start = crate::data::peers::JobStart {
        kind: action.to_owned(),
        id: String::new(),
        bucket,
        msg,
        copy: Some(spec),
        download: None,
    };
    let id = crate::data::peers::start_everywhere(state, start).await.map_err(|err| bad(err.to_string()))?;
    Ok(super::job_id(id))
}

pub async fn handle(state: &SharedState, call: &Call, name: &str) -> Reply {
    let (provider, ns) = super::addressed(&call.query)?;
    let find = |state: &SharedState, n: &str, provider: Option<Provider>| find(state, n, provider, &ns);
    let action = call.msg.action.as_str();
    let bool_param = |n: &str| call.param(n).is_some_and(|v| matches!(v, "true" | "True" | "TRUE" | "1" | "t" | "T"));
    match (&call.method, name, action) {
        (&http::Method::GET, n, action::LIST) if !n.is_empty() => {
            let (_, e) = super::bucket(state, n, &call.query).await?;
            super::listing::list_objects(state, &e, &call.msg.value, &call.accept).await
        }
        (&http::Method::POST, n, action::PREFETCH) | (&http::Method::DELETE, n, action::EVICT) if !n.is_empty() => {
            let (bucket, e) = super::bucket(state, n, &call.query).await?;
            if !e.bck.is_remote() {
                return Err((StatusCode::BAD_REQUEST, format!("{action}: ais://{n} is not a remote bucket")));
            }
            let msg: trove_ais::MultiObjMsg = serde_json::from_value(call.msg.value.clone())
                .map_err(|err| (StatusCode::BAD_REQUEST, format!("invalid {action} message: {err}")))?;
            let kind = if action == action::PREFETCH { crate::jobs::PREFETCH } else { crate::jobs::EVICT };
            let start = crate::data::peers::JobStart {
                kind: kind.to_owned(),
                id: String::new(),
                bucket,
                msg,
                copy: None,
                download: None,
            };
            let id = crate::data::peers::start_everywhere(state, start)
                .await
                .map_err(|err| (StatusCode::BAD_REQUEST, err.to_string()))?;
            Ok(super::job_id(id))
        }
        (&http::Method::PUT, n, action::ARCHIVE) if !n.is_empty() => {
            let (_, src) = super::bucket(state, n, &call.query).await?;
            let to = call.msg.value.get("tobck");
            let to_name = to.and_then(|t| t.get("name")).and_then(|x| x.as_str()).filter(|x| !x.is_empty());
            let dst = match to_name {
                None => src.clone(),
                Some(name) => {
                    let provider = to.and_then(|t| t.get("provider")).and_then(|x| x.as_str()).unwrap_or("ais");
                    let params = vec![(query::PROVIDER.to_owned(), provider.to_owned())];
                    super::bucket(state, name, &params).await?.1
                }
            };
            let msg: crate::jobs::archive::ArchiveMsg = serde_json::from_value(call.msg.value.clone())
                .map_err(|err| (StatusCode::BAD_REQUEST, format!("invalid archive message: {err}")))?;
            let job = crate::jobs::archive::start(state, &src, &dst, msg)
                .map_err(|err| (StatusCode::BAD_REQUEST, err.to_string()))?;
            Ok(super::job_id(job.id.clone()))
        }
        (&http::Method::POST, n, action::COPY_BCK | action::COPY_LISTRANGE) if !n.is_empty() => {
            copy(state, call, n, action).await
        }
        (&http::Method::GET, "", "" | action::LIST) if ns.is_remote() || call.param(query::NAMESPACE) == Some("@") => {
            // AIS's `namespace=@`: the buckets of every attached cluster (or of the one named), live.
            let only = Some(ns.uuid.as_str()).filter(|u| !u.is_empty());
            let list: Vec<_> = crate::cluster::remotes::buckets(state, only)
                .await
                .into_iter()
                .map(|(uuid, name)| {
                    bck_json(&Bck {
                        provider: Provider::Ais,
                        ns: trove_namespace::Namespace { uuid, name: String::new() },
                        name,
                    })
                })
                .collect();
            Ok(json(StatusCode::OK, Bytes::from(serde_json::to_vec(&list).unwrap_or_default())))
        }
        (&http::Method::GET, "", "" | action::LIST) => {
            let snap = state.registry.snapshot();
            let list: Vec<_> = match provider.filter(|p| p.is_remote()) {
                // A cloud provider's buckets by their identity (`aws://origin`, as every other native call
                // addresses them), each once, with the S3 name that stands for it as an extra field.
                Some(p) => {
                    let mut seen = std::collections::HashSet::new();
                    snap.buckets
                        .iter()
                        .filter(|(_, e)| e.bck.provider == p && seen.insert(e.bck.clone()))
                        .map(|(n, e)| {
                            let mut v = bck_json(&e.bck);
                            v["s3_name"] = json!(n);
                            v
                        })
                        .collect()
                }
                None => snap
                    .buckets
                    .iter()
                    .filter(|(_, e)| provider.is_none_or(|p| p == e.bck.provider))
                    .map(|(n, e)| entry_json(n, e))
                    .collect(),
            };
            Ok(json(StatusCode::OK, Bytes::from(serde_json::to_vec(&list).unwrap_or_default())))
        }
        (&http::Method::HEAD, n, _) if !n.is_empty() => {
            let (s3_name, e) = super::bucket(state, n, &call.query).await?;
            let mut r = json(StatusCode::OK, Bytes::new());
            if let Ok(v) = http::HeaderValue::from_str(&props_json(&s3_name, &e).to_string()) {
                r.headers_mut().insert(header::BUCKET_PROPS, v);
            }
            Ok(r)
        }
        (&http::Method::POST, n, action::CREATE_BCK) if !n.is_empty() => {
            let check = !bool_param(query::DONT_HEAD_REMOTE_BCK);
            let (s3_name, bck, mut props) = match provider {
                // A remote cluster's bucket, under its own name (AIS adds it on first use).
                _ if ns.is_remote() => (
                    n.to_owned(),
                    Bck { provider: Provider::Ais, ns: ns.clone(), name: n.to_owned() },
                    call.msg.value.clone(),
                ),
                Some(p) if p.is_remote() => (
                    n.to_owned(),
                    Bck { provider: p, ns: Default::default(), name: n.to_owned() },
                    call.msg.value.clone(),
                ),
                _ => {
                    let mut props = call.msg.value.clone();
                    let Some(backend) = props.get("backend_bck").cloned().filter(|b| !b.is_null()) else {
                        return create_ais(state, n, &props).await;
                    };
                    let bck: Bck = serde_json::from_value(backend)
                        .map_err(|e| (StatusCode::BAD_REQUEST, format!("invalid backend_bck: {e}")))?;
                    if let Some(o) = props.as_object_mut() {
                        o.remove("backend_bck");
                    }
                    (n.to_owned(), bck, props)
                }
            };
            if props.is_null() {
                props = json!({});
            }
            attach::attach(state, &s3_name, bck, &props, check).await.map_err(|e| about(e, n))?;
            Ok(json(StatusCode::OK, Bytes::new()))
        }
        (&http::Method::PATCH, n, action::SET_BPROPS | action::RESET_BPROPS) if !n.is_empty() => {
            let (s3_name, _) = super::bucket(state, n, &call.query).await?;
            let (patch, reset) = (call.msg.value.clone(), action == action::RESET_BPROPS);
            crate::data::apply_registry(state, Change::PatchProps { name: s3_name, patch, reset })
                .await
                .map_err(|e| about(e, n))?;
            Ok(json(StatusCode::OK, Bytes::new()))
        }
        (&http::Method::DELETE, n, action::DESTROY_BCK | action::EVICT_REMOTE_BCK) if !n.is_empty() => {
            let (s3_name, e) =
                find(state, n, provider).ok_or((StatusCode::NOT_FOUND, format!("bucket {n} does not exist")))?;
            if !e.bck.is_remote() {
                if action != action::DESTROY_BCK {
                    return Err((StatusCode::BAD_REQUEST, format!("{action}: ais://{n} is not a remote bucket")));
                }
                // AIS's destroy-bck: the bucket and all its objects (every node drops its own on the removal).
                crate::data::apply_registry(state, Change::Remove { name: s3_name })
                    .await
                    .map_err(|err| about(err, &format!("ais://{n}")))?;
                return Ok(json(StatusCode::OK, Bytes::new()));
            }
            if action == action::EVICT_REMOTE_BCK && bool_param(query::KEEP_BCK_MD) {
                crate::data::peers::evict_bucket_everywhere(state, &e.bck).await.map_err(|err| about(err, n))?;
            } else {
                attach::detach(state, &s3_name).await.map_err(|e| about(e, n))?;
            }
            Ok(json(StatusCode::OK, Bytes::new()))
        }
        _ => Err((
            StatusCode::BAD_REQUEST,
            format!("unsupported bucket call: {} /v1/buckets/{name} action {:?}", call.method, action),
        )),
    }
}
