//! The data layer's calls to the other nodes of the cluster (`/v1/intra/<call>`, signed with the cluster secret
//! like Raft's own calls) and its answers to theirs: whether a node still holds objects of a bucket, a node's
//! page of a listing, a job's part on every node, an object's bytes for a copy.

use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use trove_namespace::BucketEntry;

use crate::data::{self, Error};
use crate::state::SharedState;

/// Path prefix of the gateway's intra-cluster calls.
pub const PREFIX: &str = "/v1/intra/";

/// The largest intra-cluster request body.
pub const MAX_BODY: usize = 1 << 20;

const BUCKET_EMPTY: &str = "bucket-empty";
const WALK: &str = "walk";
const JOB_START: &str = "job-start";
const JOBS: &str = "jobs";
const JOB_STOP: &str = "job-stop";
const OBJECT: &str = "object";
const DELETE_KEYS: &str = "delete-keys";
const DELETE_VERSIONS: &str = "delete-versions";
const UPLOADS: &str = "uploads";
const REBALANCE_START: &str = "rebalance-start";
const ARCHIVE_TOC: &str = "archive-toc";
const DOWNLOADS: &str = "downloads";
const HELD: &str = "held";
const EVICT_BUCKET: &str = "evict-bucket";

/// Keys of a bucket a node is asked whether it holds.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Held {
    bck: trove_namespace::Bck,
    keys: Vec<String>,
}

/// Keys whose copies a node drops.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct DeleteKeys {
    entry: BucketEntry,
    keys: Vec<String>,
}

/// The header of an object answer that carries its metadata (JSON, base64: values need not be ASCII).
const META_HEADER: &str = "trove-object-meta";

/// An object a node asks another for.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct ObjectRef {
    bck: trove_namespace::Bck,
    key: String,
    /// One version of the object (of a versioned bucket), rather than the current one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    version: Option<String>,
}

/// A job to start on every node under one id.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct JobStart {
    pub kind: String,
    pub id: String,
    /// The bucket's S3 name.
    pub bucket: String,
    pub msg: trove_ais::MultiObjMsg,
    /// A copy job's destination and options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy: Option<crate::jobs::copy::CopySpec>,
    /// A download job's request (`bucket` is its destination).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download: Option<crate::jobs::download::request::DownloadSpec>,
}

/// Which download jobs a node reports (or forgets, with `remove`: the finished ones).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct DownloadQuery {
    pub id: String,
    /// With `id`: the finished tasks and errors too; without: only running jobs.
    pub tasks: bool,
    pub only_active: bool,
    pub remove: bool,
}

/// Which jobs a query or a stop is about (empty: any).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct JobFilter {
    pub id: String,
    pub kind: String,
}

/// How long a node may take to answer another.
const DEADLINE: Duration = Duration::from_secs(10);

/// Answers another node's call; the caller's signature is checked first.
pub async fn handle(state: &SharedState, path: &str, header: Option<&str>, body: Bytes) -> http::Response<s3s::Body> {
    if let Err(e) = state.cluster.verify(header, "POST", path) {
        tracing::warn!(error = %e, path, "refused an intra-cluster call");
        return respond(StatusCode::FORBIDDEN, Bytes::from(e.to_string()));
    }
    let call = path.strip_prefix(PREFIX).unwrap_or_default();
    if call == OBJECT {
        return match serde_json::from_slice::<ObjectRef>(&body) {
            Ok(o) => serve_object(state, o).await,
            Err(e) => respond(StatusCode::BAD_REQUEST, Bytes::from(format!("malformed call: {e}"))),
        };
    }
    let (status, body) = answer(state, call, body).await;
    respond(status, body)
}

/// An intra-cluster answer: JSON (or a plain message) with `status`.
pub(crate) fn respond(status: StatusCode, body: Bytes) -> http::Response<s3s::Body> {
    let mut r = http::Response::new(s3s::Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    r
}

/// This node's copy of an object, streamed, its metadata in a header.
async fn serve_object(state: &SharedState, o: ObjectRef) -> http::Response<s3s::Body> {
    use base64::Engine;
    let st = state.clone();
    let opened = tokio::task::spawn_blocking(move || match o.version.as_deref() {
        Some(v) if trove_cache::valid_version_id(v) => st.store.open_version(&o.bck, &o.key, v),
        Some(_) => Err(trove_cache::Error::NoSuchVersion),
        None => st.store.open_object(&o.bck, &o.key),
    })
    .await;
    let (file, meta) = match opened {
        Ok(Ok(x)) => x,
        Ok(Err(trove_cache::Error::NotFound | trove_cache::Error::NoSuchVersion)) => {
            return respond(StatusCode::NOT_FOUND, Bytes::from("no such object"))
        }
        Ok(Err(e)) => return respond(StatusCode::SERVICE_UNAVAILABLE, Bytes::from(e.to_string())),
        Err(e) => return respond(StatusCode::SERVICE_UNAVAILABLE, Bytes::from(e.to_string())),
    };
    let encoded = base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(&meta).unwrap_or_default());
    let body = data::FileBody::new(file, 0, data::sse::stored_len(&meta)).into_blob();
    let mut r = http::Response::new(s3s::Body::from(body));
    if let Ok(v) = http::HeaderValue::from_str(&encoded) {
        r.headers_mut().insert(META_HEADER, v);
    }
    r
}

/// Fetches `key` of `bck` (or one version of it) from whichever other node holds it (owner first) into a work
/// file of this node's store; returns the open file (its name is gone once the copy is done) and the object's
/// metadata.
pub async fn fetch_object(
    state: &SharedState,
    bck: &trove_namespace::Bck,
    key: &str,
    version: Option<&str>,
) -> Result<(std::fs::File, trove_cache::ObjMeta), Error> {
    let map = state.cluster.map();
    let ranked = crate::cluster::ranked(&map, bck, key);
    let others = map.smap.nodes.values().filter(|n| !ranked.iter().any(|r| r.id == n.id));
    let nodes: Vec<&trove_cluster::NodeInfo> = ranked.iter().copied().chain(others).collect();
    let missing = if version.is_some() { Error::NoSuchVersion } else { Error::NoSuchKey };
    let (staged, meta) = fetch_from(state, &nodes, bck, key, version).await?.ok_or(missing)?;
    let file = staged.file.try_clone().map_err(|e| Error::from(trove_cache::Error::io(staged.path(), e)))?;
    Ok((file, meta))
}

/// The table of contents of shard `key` from another node holding it (owner first); `None` when none does.
pub async fn archive_toc(
    state: &SharedState,
    bck: &trove_namespace::Bck,
    key: &str,
) -> Result<Option<Vec<data::archive::Member>>, Error> {
    let map = state.cluster.map();
    let call = ObjectRef { bck: bck.clone(), key: key.to_owned(), version: None };
    for node in crate::cluster::ranked(&map, bck, key).into_iter().filter(|n| n.id != state.node_id) {
        let path = format!("{PREFIX}{ARCHIVE_TOC}");
        match state.cluster.call::<_, Vec<data::archive::Member>>(&node.url, &path, &call, DEADLINE).await {
            Ok(toc) => return Ok(Some(toc)),
            Err(e) => tracing::debug!(node = %node.id, error = %e, "no table of contents from this node"),
        }
    }
    Ok(None)
}

/// A cold read of a cloud object on this node: a copy another node cached (the object's previous owner, after
/// a join) is pulled in-cluster instead of from the backend, kept here as the cached copy, and opened. `None`
/// when no other node has one. Only the next two nodes in HRW order are asked, to bound a miss's cost.
pub async fn pull_cached(
    state: &SharedState,
    entry: &BucketEntry,
    key: &str,
) -> Result<Option<(std::fs::File, trove_cache::ObjMeta)>, Error> {
    let map = state.cluster.map();
    let ranked = crate::cluster::ranked(&map, &entry.bck, key);
    let nodes: Vec<&trove_cluster::NodeInfo> =
        ranked.iter().copied().filter(|n| n.id != state.node_id).take(2).collect();
    let Some((mut staged, meta)) = fetch_from(state, &nodes, &entry.bck, key, None).await? else { return Ok(None) };
    staged.guard(data::bucket_guard(state, entry));
    let (st, bck, k, m) = (state.clone(), entry.bck.clone(), key.to_owned(), meta.clone());
    let opened = data::blocking(move || {
        // A copy that appeared here meanwhile (a fill, a write-through) wins; ours is dropped.
        match st.store.commit_if(staged, &bck, &k, &m, |cur| match cur {
            Some(_) => Err(trove_cache::Error::PreconditionFailed),
            None => Ok(()),
        }) {
            Ok(()) | Err(trove_cache::Error::PreconditionFailed) => Ok(st.store.open_object(&bck, &k)?),
            Err(e) => Err(e.into()),
        }
    })
    .await?;
    state.metrics.neighbor_fills.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Ok(Some(opened))
}

/// Streams `key` of `bck` from the first of `nodes` that has it into a work file here.
async fn fetch_from(
    state: &SharedState,
    nodes: &[&trove_cluster::NodeInfo],
    bck: &trove_namespace::Bck,
    key: &str,
    version: Option<&str>,
) -> Result<Option<(trove_cache::Staged, trove_cache::ObjMeta)>, Error> {
    use base64::Engine;
    use http_body_util::BodyExt;
    let path = format!("{PREFIX}{OBJECT}");
    let body =
        serde_json::to_vec(&ObjectRef { bck: bck.clone(), key: key.to_owned(), version: version.map(str::to_owned) })
            .map_err(|e| Error::Internal(e.to_string()))?;
    for node in nodes.iter().filter(|n| n.id != state.node_id) {
        let req = http::Request::post(format!("{}{path}", node.url.trim_end_matches('/')))
            .header(trove_cluster::AUTH_HEADER, state.cluster.sign("POST", &path))
            .body(s3s::Body::from(Bytes::from(body.clone())))
            .map_err(|e| Error::Internal(e.to_string()))?;
        let resp = match state.forwarder.request(req).await {
            Ok(r) if r.status().is_success() => r,
            Ok(_) => continue,
            Err(e) => {
                tracing::debug!(node = %node.id, error = %e, "a node did not answer an object fetch");
                continue;
            }
        };
        let meta: trove_cache::ObjMeta = resp
            .headers()
            .get(META_HEADER)
            .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v.as_bytes()).ok())
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| Error::Internal(format!("node {} sent an object without its metadata", node.id)))?;
        let (st, b, k) = (state.clone(), bck.clone(), key.to_owned());
        let staged = data::blocking(move || Ok(st.store.stage(&b, &k)?)).await?;
        let mut stream = resp.into_body().into_data_stream();
        let received = data::receive::receive(&staged, Some(&mut stream), &[], data::receive::MAX_OBJECT_SIZE)
            .await
            .map_err(|e| match e {
                data::receive::Interrupted::Body(e) => Error::Unavailable(format!("fetching from {}: {e}", node.id)),
                data::receive::Interrupted::Data(e) => e,
            })?;
        if received.size != data::sse::stored_len(&meta) {
            return Err(Error::Unavailable(format!("node {} sent a short object", node.id)));
        }
        return Ok(Some((staged, meta)));
    }
    Ok(None)
}

async fn answer(state: &SharedState, call: &str, body: Bytes) -> (StatusCode, Bytes) {
    let answer = match call {
        BUCKET_EMPTY => match serde_json::from_slice::<BucketEntry>(&body) {
            Ok(entry) => data::locally_empty(state, &entry).await.map(|b| serde_json::json!(b)),
            Err(e) => return (StatusCode::BAD_REQUEST, Bytes::from(format!("malformed call: {e}"))),
        },
        WALK => match serde_json::from_slice::<data::Walk>(&body) {
            Ok(walk) => data::walk_local(state, walk).await.and_then(|p| {
                serde_json::to_value(p).map_err(|e| Error::Internal(format!("encoding a listing page: {e}")))
            }),
            Err(e) => return (StatusCode::BAD_REQUEST, Bytes::from(format!("malformed call: {e}"))),
        },
        DELETE_KEYS => match serde_json::from_slice::<DeleteKeys>(&body) {
            Ok(d) => Ok(serde_json::json!(data::delete_local(state, &d.entry, d.keys).await)),
            Err(e) => return (StatusCode::BAD_REQUEST, Bytes::from(format!("malformed call: {e}"))),
        },
        DELETE_VERSIONS => match serde_json::from_slice::<data::versions::DeleteVersions>(&body) {
            Ok(d) => Ok(serde_json::json!(data::versions::delete_owned(state, d).await)),
            Err(e) => return (StatusCode::BAD_REQUEST, Bytes::from(format!("malformed call: {e}"))),
        },
        UPLOADS => match serde_json::from_slice::<BucketEntry>(&body) {
            Ok(entry) => local_uploads(state, &entry)
                .await
                .and_then(|u| serde_json::to_value(u).map_err(|e| Error::Internal(format!("encoding uploads: {e}")))),
            Err(e) => return (StatusCode::BAD_REQUEST, Bytes::from(format!("malformed call: {e}"))),
        },
        data::copies::PROBE => match serde_json::from_slice::<data::copies::Probe>(&body) {
            Ok(p) => data::copies::answer_probe(state, p).await.map(|h| serde_json::json!(h)),
            Err(e) => return (StatusCode::BAD_REQUEST, Bytes::from(format!("malformed call: {e}"))),
        },
        data::copies::REPLICA_COMMIT => match serde_json::from_slice::<data::copies::ReplicaCommit>(&body) {
            Ok(c) => data::copies::answer_commit(state, c).await.map(|h| serde_json::json!(h)),
            Err(e) => return (StatusCode::BAD_REQUEST, Bytes::from(format!("malformed call: {e}"))),
        },
        ARCHIVE_TOC => match serde_json::from_slice::<ObjectRef>(&body) {
            Ok(o) => data::archive::local_toc(state, &o.bck, &o.key).await.map(|t| serde_json::json!(*t)),
            Err(e) => return (StatusCode::BAD_REQUEST, Bytes::from(format!("malformed call: {e}"))),
        },
        REBALANCE_START => match serde_json::from_slice::<String>(&body) {
            Ok(id) => {
                state.request_walk(Some(id));
                Ok(serde_json::json!(true))
            }
            Err(e) => return (StatusCode::BAD_REQUEST, Bytes::from(format!("malformed call: {e}"))),
        },
        JOB_START => match serde_json::from_slice::<JobStart>(&body) {
            Ok(j) => start_local(state, &j).map(|_| serde_json::json!(true)),
            Err(e) => return (StatusCode::BAD_REQUEST, Bytes::from(format!("malformed call: {e}"))),
        },
        EVICT_BUCKET => match serde_json::from_slice::<trove_namespace::Bck>(&body) {
            Ok(bck) => evict_bucket_here(state, bck).await.map(|()| serde_json::json!(true)),
            Err(e) => return (StatusCode::BAD_REQUEST, Bytes::from(format!("malformed call: {e}"))),
        },
        HELD => match serde_json::from_slice::<Held>(&body) {
            Ok(h) => held_here(state, h).await.map(|keys| serde_json::json!(keys)),
            Err(e) => return (StatusCode::BAD_REQUEST, Bytes::from(format!("malformed call: {e}"))),
        },
        DOWNLOADS => match serde_json::from_slice::<DownloadQuery>(&body) {
            Ok(q) => serde_json::to_value(local_downloads(state, &q)).map_err(|e| Error::Internal(e.to_string())),
            Err(e) => return (StatusCode::BAD_REQUEST, Bytes::from(format!("malformed call: {e}"))),
        },
        JOBS | JOB_STOP => match serde_json::from_slice::<JobFilter>(&body) {
            Ok(f) => {
                let jobs = local_jobs(state, &f);
                if call == JOB_STOP {
                    jobs.iter().for_each(|j| j.abort());
                }
                let views: Vec<_> = jobs.iter().map(|j| j.view()).collect();
                serde_json::to_value(views).map_err(|e| Error::Internal(e.to_string()))
            }
            Err(e) => return (StatusCode::BAD_REQUEST, Bytes::from(format!("malformed call: {e}"))),
        },
        _ => return (StatusCode::NOT_FOUND, Bytes::from(format!("no intra-cluster call {call:?}"))),
    };
    match answer {
        Ok(v) => (StatusCode::OK, Bytes::from(v.to_string())),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, Bytes::from(e.to_string())),
    }
}

/// Asks every other node of the map `call` with `req`, all at once; each node's id with its answer.
async fn ask_others<Req, Resp>(state: &SharedState, call: &str, req: &Req) -> Vec<(String, Result<Resp, String>)>
where
    Req: serde::Serialize + Clone + Send + Sync + 'static,
    Resp: serde::de::DeserializeOwned + Send + 'static,
{
    let path = format!("{PREFIX}{call}");
    let mut asks = tokio::task::JoinSet::new();
    for node in state.cluster.map().smap.nodes.values().filter(|n| n.id != state.node_id) {
        let (st, url, path, id, req) = (state.clone(), node.url.clone(), path.clone(), node.id.clone(), req.clone());
        asks.spawn(async move {
            let answer = st.cluster.call::<_, Resp>(&url, &path, &req, DEADLINE).await.map_err(|e| e.to_string());
            (id, answer)
        });
    }
    let mut out = Vec::new();
    while let Some(done) = asks.join_next().await {
        match done {
            Ok(answer) => out.push(answer),
            Err(e) => tracing::warn!(error = %e, call, "an intra-cluster call task failed"),
        }
    }
    out
}

/// The answers of every other node, or 503 naming one that did not answer (`what` it was asked).
fn every_answer<Resp>(answers: Vec<(String, Result<Resp, String>)>, what: &str) -> Result<Vec<Resp>, Error> {
    answers
        .into_iter()
        .map(|(id, a)| a.map_err(|e| Error::ClusterUnavailable(format!("node {id} did not answer {what}: {e}"))))
        .collect()
}

/// Whether no other node of the cluster holds an object of `entry`. Every node must answer: one that does not
/// makes the question unanswerable (503), since it may hold objects.
pub async fn bucket_empty_everywhere(state: &SharedState, entry: &BucketEntry) -> Result<bool, Error> {
    let answers = ask_others::<_, bool>(state, BUCKET_EMPTY, entry).await;
    Ok(every_answer(answers, "whether it holds objects")?.into_iter().all(|empty| empty))
}

/// One page of a bucket walked on every node and merged. Every node must answer: a listing is never short.
pub async fn walk_everywhere(state: &SharedState, walk: &data::Walk) -> Result<data::Page, Error> {
    let (local, others) = tokio::join!(data::walk_local(state, walk.clone()), ask_others(state, WALK, walk));
    let mut pages = every_answer(others, "a listing")?;
    pages.push(local?);
    Ok(data::merge_walks(pages, walk.max))
}

/// Starts this node's part of a job.
pub fn start_local(state: &SharedState, j: &JobStart) -> Result<std::sync::Arc<crate::jobs::Job>, Error> {
    let entry = state.registry.get(&j.bucket).ok_or(Error::NoSuchBucket)?;
    let id = (!j.id.is_empty()).then_some(j.id.as_str());
    let started = if j.kind == crate::jobs::PREFETCH {
        crate::jobs::start_prefetch(state, &entry, j.msg.clone(), id)
    } else if j.kind == crate::jobs::EVICT {
        crate::jobs::start_evict(state, &entry, j.msg.clone(), id)
    } else if let (crate::jobs::download::DOWNLOAD, Some(spec)) = (j.kind.as_str(), &j.download) {
        return crate::jobs::download::start(state, &entry, spec.clone(), &j.id).map_err(Error::InvalidProps);
    } else if let (Some(spec), Some(kind)) =
        (&j.copy, [crate::jobs::copy::COPY_BCK, crate::jobs::copy::COPY_LISTRANGE].into_iter().find(|k| *k == j.kind))
    {
        crate::jobs::copy::start(state, &entry, j.msg.clone(), spec.clone(), kind, id)
    } else {
        return Err(Error::InvalidProps(format!("no job kind {:?}", j.kind)));
    };
    started.map_err(|e| Error::InvalidProps(e.to_string()))
}

/// Drops this node's cached copies of the cloud bucket `bck` (its backend keeps the objects).
async fn evict_bucket_here(state: &SharedState, bck: trove_namespace::Bck) -> Result<(), Error> {
    state.readthrough.invalidate_bucket(&bck);
    let st = state.clone();
    data::blocking(move || Ok(st.store.remove_bucket(&bck)?)).await
}

/// Drops every node's cached copies of the cloud bucket `bck` (AIS's `evict-remote-bck` with `keep_bck_md`).
/// Every node must answer: one that does not still holds copies.
pub async fn evict_bucket_everywhere(state: &SharedState, bck: &trove_namespace::Bck) -> Result<(), Error> {
    evict_bucket_here(state, bck.clone()).await?;
    every_answer(ask_others::<_, bool>(state, EVICT_BUCKET, bck).await, "the eviction of a bucket")?;
    Ok(())
}

/// The keys of `h` this node holds a copy of.
async fn held_here(state: &SharedState, h: Held) -> Result<Vec<String>, Error> {
    let st = state.clone();
    data::blocking(move || Ok(h.keys.into_iter().filter(|k| st.store.head(&h.bck, k).is_ok()).collect())).await
}

/// Which of `keys` some node of the cluster holds a copy of (a node that does not answer holds none).
pub async fn held_anywhere(
    state: &SharedState,
    bck: &trove_namespace::Bck,
    keys: Vec<String>,
) -> Result<std::collections::HashSet<String>, Error> {
    let ask = Held { bck: bck.clone(), keys };
    let mut held: std::collections::HashSet<String> = held_here(state, ask.clone()).await?.into_iter().collect();
    if state.cluster.map().smap.nodes.len() > 1 {
        for (id, answer) in ask_others::<_, Vec<String>>(state, HELD, &ask).await {
            match answer {
                Ok(keys) => held.extend(keys),
                Err(e) => tracing::warn!(node = %id, error = %e, "a node did not say which objects it holds"),
            }
        }
    }
    Ok(held)
}

/// This node's parts of the download jobs `q` names (after forgetting the finished ones, with `remove`).
fn local_downloads(state: &SharedState, q: &DownloadQuery) -> Vec<crate::jobs::download::Status> {
    let found = match state.downloads.get(&q.id) {
        Some(d) => vec![d],
        None if q.id.is_empty() => state.downloads.all(),
        None => Vec::new(),
    };
    let parts = found.iter().filter(|d| !q.only_active || !d.finished()).map(|d| d.status(q.tasks)).collect();
    if q.remove {
        found.iter().for_each(|d| {
            state.downloads.remove(state, &d.job.id);
        });
    }
    parts
}

/// The parts of the download jobs `q` names of every node that answers (a node that does not is left out).
pub async fn downloads_everywhere(state: &SharedState, q: &DownloadQuery) -> Vec<crate::jobs::download::Status> {
    let mut parts = local_downloads(state, q);
    for (id, answer) in ask_others::<_, Vec<crate::jobs::download::Status>>(state, DOWNLOADS, q).await {
        match answer {
            Ok(p) => parts.extend(p),
            Err(e) => tracing::warn!(node = %id, error = %e, "a node did not report its downloads"),
        }
    }
    parts
}

fn local_jobs(state: &SharedState, f: &JobFilter) -> Vec<std::sync::Arc<crate::jobs::Job>> {
    let kind = Some(f.kind.as_str()).filter(|k| !k.is_empty());
    state.jobs.list(kind).into_iter().filter(|j| f.id.is_empty() || j.id == f.id).collect()
}

/// Starts a job on every node under one id: here first (errors in the message are reported before anything
/// runs), then on the others. A node that cannot be reached does not do its part; the job records that.
pub async fn start_everywhere(state: &SharedState, mut j: JobStart) -> Result<String, Error> {
    let job = start_local(state, &j)?;
    j.id = job.id.clone();
    for (id, answer) in ask_others::<_, bool>(state, JOB_START, &j).await {
        if let Err(e) = answer {
            job.note_error(format!("node {id} did not start its part: {e}"));
        }
    }
    Ok(job.id.clone())
}

/// Starts a rebalance walk on every node under one id (`g<map version>.<n>`); a node that cannot be reached
/// is named in the error (the others run theirs).
pub async fn rebalance_everywhere(state: &SharedState) -> Result<String, Error> {
    let id = format!("g{}.{}", state.cluster.map().smap.version, rand::random_range(1000..10000));
    state.request_walk(Some(id.clone()));
    every_answer(ask_others::<_, bool>(state, REBALANCE_START, &id).await, "the start of a rebalance")?;
    Ok(id)
}

/// Every node's part of the jobs `f` names (after stopping them, with `stop`), per node id. A node that does
/// not answer is left out.
pub async fn jobs_everywhere(
    state: &SharedState,
    f: &JobFilter,
    stop: bool,
) -> Vec<(String, Vec<crate::jobs::JobView>)> {
    let local = local_jobs(state, f);
    if stop {
        local.iter().for_each(|j| j.abort());
    }
    let mut out = vec![(state.node_id.clone(), local.iter().map(|j| j.view()).collect())];
    for (id, answer) in ask_others(state, if stop { JOB_STOP } else { JOBS }, f).await {
        match answer {
            Ok(views) => out.push((id, views)),
            Err(e) => tracing::warn!(node = %id, error = %e, "a node did not report its jobs"),
        }
    }
    out
}

/// Deletes every node's copies of `keys`; returns the keys that failed somewhere (a node that cannot be
/// reached fails them all: it may hold them).
pub async fn delete_everywhere(state: &SharedState, entry: &BucketEntry, keys: Vec<String>) -> Vec<(String, String)> {
    if keys.is_empty() {
        return Vec::new();
    }
    let call = DeleteKeys { entry: entry.clone(), keys: keys.clone() };
    let (mut failed, others) = tokio::join!(
        data::delete_local(state, entry, keys.clone()),
        ask_others::<_, Vec<(String, String)>>(state, DELETE_KEYS, &call)
    );
    for (id, answer) in others {
        match answer {
            Ok(f) => failed.extend(f),
            Err(e) => failed.extend(keys.iter().map(|k| (k.clone(), format!("node {id}: {e}")))),
        }
    }
    failed
}

/// The versioned deletes of `call` that the other nodes own, carried out there; by their place in the request. A
/// node that does not answer leaves its keys without an outcome.
pub async fn delete_versions_elsewhere(
    state: &SharedState,
    call: &data::versions::DeleteVersions,
) -> Vec<(usize, Result<data::versions::Deleted, data::versions::Failure>)> {
    let answers = ask_others::<_, Vec<(usize, Result<data::versions::Deleted, data::versions::Failure>)>>(
        state,
        DELETE_VERSIONS,
        call,
    );
    let mut done = Vec::new();
    for (id, answer) in answers.await {
        match answer {
            Ok(outcomes) => done.extend(outcomes),
            Err(e) => tracing::warn!(node = %id, error = %e, "a node did not carry out its versioned deletes"),
        }
    }
    done
}

/// The multipart uploads in progress of a bucket on every node (each upload lives on its key's owner), by key
/// then initiation. Every node must answer: the list is never short.
pub async fn uploads_everywhere(state: &SharedState, entry: &BucketEntry) -> Result<Vec<trove_cache::Upload>, Error> {
    let (local, others) = tokio::join!(local_uploads(state, entry), ask_others(state, UPLOADS, entry));
    let mut all = local?;
    for u in every_answer::<Vec<trove_cache::Upload>>(others, "its uploads")? {
        all.extend(u);
    }
    // As one node orders them: by key, then by initiation.
    all.sort_by(|a, b| (a.key.as_bytes(), a.initiated_ms).cmp(&(b.key.as_bytes(), b.initiated_ms)));
    all.dedup_by(|a, b| a.key == b.key && a.upload_id == b.upload_id);
    Ok(all)
}

/// The bucket's uploads in progress on this node.
async fn local_uploads(state: &SharedState, entry: &BucketEntry) -> Result<Vec<trove_cache::Upload>, Error> {
    let (st, bck) = (state.clone(), entry.bck.clone());
    data::blocking(move || Ok(st.store.list_uploads(&bck)?)).await
}
