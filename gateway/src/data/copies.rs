//! Copies of objects between nodes: a rebalance or repair handing a copy to a node that should hold it, the
//! probe that tells which copies a node lacks (so only those travel), and the two phases of a mirrored write
//! (every other copy received and synced first, committed once the writer's own copy is).
//!
//! Which copy wins is decided the same way everywhere: a copy deleted here at or after its modification time
//! stays deleted (tombstones), and otherwise the newer modification time wins (the ETag breaks ties).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::StatusCode;
use trove_cache::{ObjMeta, Staged};
use trove_cluster::NodeInfo;
use trove_namespace::BucketEntry;

use crate::data::peers::respond;
use crate::data::{self, Error};
use crate::state::SharedState;

/// The path of a copy one node sends another (its body streams).
pub const COPY_PATH: &str = "/v1/intra/copy";
/// The header of a sent copy: its bucket, key, metadata and purpose (JSON, base64).
const COPY_HEADER: &str = "trove-copy";
/// Intra-cluster call: which of a batch of copies the receiving node lacks.
pub const PROBE: &str = "probe";
/// Intra-cluster call: commit (or drop) a staged copy of a mirrored write.
pub const REPLICA_COMMIT: &str = "replica-commit";

/// A copy one node sends another.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Sent {
    entry: BucketEntry,
    key: String,
    meta: ObjMeta,
    /// A mirrored write's copy: received and synced, kept aside until the writer commits it.
    #[serde(default)]
    stage: bool,
    /// The rebalance job that sent it (the receiver counts it in its part of that job).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    job: String,
}

/// What a node did with a copy handed to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Handed {
    /// Stored: the node's copy is this one now.
    Installed,
    /// The node has this copy or a newer one (written after the placement changed): not needed.
    Kept,
    /// The object was deleted on the node since this copy was written: it must not come back.
    Deleted,
    /// A cached copy the node has no room for (above its high watermark): it stays where it was.
    NoRoom,
}

/// What a node holds of one object, compared with a copy another node has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Have {
    /// The same copy.
    Same,
    /// A newer copy: the asker's is stale.
    Newer,
    /// No copy, or an older one: the asker should send its own.
    Lacks,
    /// Deleted here after the asker's copy was written.
    Deleted,
}

/// A batch of copies one node holds, to compare with another's.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Probe {
    pub entry: BucketEntry,
    /// Key, modification time, ETag.
    pub items: Vec<(String, i64, String)>,
}

/// A staged copy's commit or drop.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ReplicaCommit {
    pub token: u64,
    pub commit: bool,
}

/// Mirrored writes' copies staged here, by token.
#[derive(Default)]
pub struct PendingReplicas {
    next: AtomicU64,
    staged: std::sync::Mutex<HashMap<u64, Pending>>,
}

struct Pending {
    staged: Staged,
    entry: BucketEntry,
    key: String,
    meta: ObjMeta,
    at: Instant,
}

/// A staged copy whose writer never came back for it is dropped after this.
const PENDING_TTL: Duration = Duration::from_secs(300);

impl PendingReplicas {
    fn put(&self, p: Pending) -> u64 {
        let token = self.next.fetch_add(1, Ordering::Relaxed) ^ rand::random::<u64>();
        let expired: Vec<Pending> = {
            let mut map = self.staged.lock().unwrap_or_else(|e| e.into_inner());
            let old: Vec<u64> = map.iter().filter(|(_, p)| p.at.elapsed() > PENDING_TTL).map(|(t, _)| *t).collect();
            let expired = old.iter().filter_map(|t| map.remove(t)).collect();
            map.insert(token, p);
            expired
        };
        // Dropping a staged copy removes its work file: not under the lock.
        drop(expired);
        token
    }

    fn take(&self, token: u64) -> Option<Pending> {
        self.staged.lock().unwrap_or_else(|e| e.into_inner()).remove(&token)
    }
}

/// Sends `file` (a copy of `key` with `meta`) to `node`, streamed; the node's JSON answer.
async fn send<R: serde::de::DeserializeOwned>(
    state: &SharedState,
    node: &NodeInfo,
    entry: &BucketEntry,
    file: std::fs::File,
    meta: &ObjMeta,
    stage: bool,
    job: &str,
) -> Result<R, Error> {
    use base64::Engine;
    use http_body_util::BodyExt;
    let header = Sent { entry: entry.clone(), key: meta.key.clone(), meta: meta.clone(), stage, job: job.to_owned() };
    let header = base64::engine::general_purpose::STANDARD
        .encode(serde_json::to_vec(&header).map_err(|e| Error::Internal(e.to_string()))?);
    let body = data::FileBody::new(file, 0, data::sse::stored_len(meta)).into_blob();
    let req = http::Request::post(format!("{}{COPY_PATH}", node.url.trim_end_matches('/')))
        .header(trove_cluster::AUTH_HEADER, state.cluster.sign("POST", COPY_PATH))
        .header(COPY_HEADER, header)
        .header(http::header::CONTENT_LENGTH, data::sse::stored_len(meta))
        .body(s3s::Body::from(body))
        .map_err(|e| Error::Internal(e.to_string()))?;
    let exchange = async {
        let resp =
            state.forwarder.request(req).await.map_err(|e| Error::Unavailable(format!("node {}: {e}", node.id)))?;
        let status = resp.status();
        let body = resp.into_body().collect().await.map_err(|e| Error::Unavailable(e.to_string()))?.to_bytes();
        Ok::<_, Error>((status, body))
    };
    let (status, body) = tokio::time::timeout(SEND_DEADLINE, exchange)
        .await
        .map_err(|_| Error::Unavailable(format!("node {} did not take a copy in time", node.id)))??;
    if !status.is_success() {
        return Err(Error::Unavailable(format!("node {} refused a copy: {}", node.id, String::from_utf8_lossy(&body))));
    }
    serde_json::from_slice(&body).map_err(|e| Error::Internal(format!("node {}: {e}", node.id)))
}

/// How long one copy may take to send (bodies stream; a stalled peer must not stall a rebalance or a write).
const SEND_DEADLINE: Duration = Duration::from_secs(600);

/// Hands this node's copy of `key` to `node` for rebalance job `job`; the local copy stays until the caller
/// drops it. `None` when the local copy is gone (deleted meanwhile).
pub async fn hand_over(
    state: &SharedState,
    node: &NodeInfo,
    entry: &BucketEntry,
    key: &str,
    job: &str,
) -> Result<Option<(Handed, ObjMeta)>, Error> {
    let (st, bck, k) = (state.clone(), entry.bck.clone(), key.to_owned());
    let opened = data::blocking(move || match st.store.open_object_untouched(&bck, &k) {
        Ok(x) => Ok(Some(x)),
        Err(trove_cache::Error::NotFound) => Ok(None),
        Err(e) => Err(e.into()),
    })
    .await?;
    let Some((file, meta)) = opened else { return Ok(None) };
    let handed = send(state, node, entry, file, &meta, false, job).await?;
    Ok(Some((handed, meta)))
}

/// Phase one of a mirrored write: `node` receives and syncs a copy of the staged object, kept aside; the
/// token commits or drops it.
pub async fn stage_on(
    state: &SharedState,
    node: &NodeInfo,
    entry: &BucketEntry,
    staged: &Staged,
    meta: &ObjMeta,
) -> Result<u64, Error> {
    let file = staged.file.try_clone().map_err(|e| Error::from(trove_cache::Error::io(staged.path(), e)))?;
    send(state, node, entry, file, meta, true, "").await
}

/// Phase two of a mirrored write: `node` publishes (or drops) the copy it staged.
pub async fn finish_on(state: &SharedState, node: &NodeInfo, token: u64, commit: bool) -> Result<Handed, Error> {
    let path = format!("{}{REPLICA_COMMIT}", data::peers::PREFIX);
    state
        .cluster
        .call::<_, Option<Handed>>(&node.url, &path, &ReplicaCommit { token, commit }, Duration::from_secs(30))
        .await
        .map_err(|e| Error::Unavailable(format!("node {}: {e}", node.id)))?
        .ok_or_else(|| Error::Unavailable(format!("node {} no longer had the copy it staged", node.id)))
}

/// Asks `node` which of `probe`'s copies it lacks.
pub async fn probe(state: &SharedState, node: &NodeInfo, probe: &Probe) -> Result<Vec<Have>, Error> {
    let path = format!("{}{PROBE}", data::peers::PREFIX);
    let answer: Vec<Have> = state
        .cluster
        .call(&node.url, &path, probe, Duration::from_secs(30))
        .await
        .map_err(|e| Error::Unavailable(format!("node {}: {e}", node.id)))?;
    if answer.len() != probe.items.len() {
        return Err(Error::Internal(format!(
            "node {} answered a probe of {} with {}",
            node.id,
            probe.items.len(),
            answer.len()
        )));
    }
    Ok(answer)
}

/// The receiving side of a probe.
pub async fn answer_probe(state: &SharedState, p: Probe) -> Result<Vec<Have>, Error> {
    let st = state.clone();
    data::blocking(move || {
        Ok(p.items
            .iter()
            .map(|(key, mtime, etag)| match st.store.head(&p.entry.bck, key) {
                Ok(cur) => match newer(&cur, *mtime, etag) {
                    std::cmp::Ordering::Equal => Have::Same,
                    std::cmp::Ordering::Greater => Have::Newer,
                    std::cmp::Ordering::Less => Have::Lacks,
                },
                _ if st.tombstones.buries(&p.entry.bck, key, *mtime) => Have::Deleted,
                _ => Have::Lacks,
            })
            .collect())
    })
    .await
}

/// The receiving side of a mirrored write's phase two.
pub async fn answer_commit(state: &SharedState, c: ReplicaCommit) -> Result<Option<Handed>, Error> {
    let Some(p) = state.pending_replicas.take(c.token) else { return Ok(None) };
    if !c.commit {
        data::blocking(move || {
            drop(p);
            Ok(())
        })
        .await?;
        return Ok(Some(Handed::Kept));
    }
    // The writer decided: its write lands here too, unless a newer one already did.
    install(state, p.staged, &p.entry, &p.key, &p.meta, false).await.map(Some)
}

/// The receiving side of a sent copy: the body is received into a work file and checked (size, and the MD5 of
/// a single-part object), then installed, or staged for a mirrored write.
pub async fn receive(
    state: &SharedState,
    auth: Option<&str>,
    headers: &http::HeaderMap,
    body: s3s::Body,
) -> http::Response<s3s::Body> {
    use base64::Engine;
    use http_body_util::BodyExt;
    if let Err(e) = state.cluster.verify(auth, "POST", COPY_PATH) {
        tracing::warn!(error = %e, "refused a copy from a node");
        return respond(StatusCode::FORBIDDEN, Bytes::from(e.to_string()));
    }
    let Some(a) = headers
        .get(COPY_HEADER)
        .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v.as_bytes()).ok())
        .and_then(|b| serde_json::from_slice::<Sent>(&b).ok())
    else {
        return respond(StatusCode::BAD_REQUEST, Bytes::from("no object description"));
    };
    let json = |v: serde_json::Value| respond(StatusCode::OK, Bytes::from(v.to_string()));
    let remote = a.entry.bck.is_remote();
    if !a.stage {
        // Answered before any byte is read: a deleted object, or a cached copy with no room for it here.
        if !remote && state.tombstones.buries(&a.entry.bck, &a.key, a.meta.mtime_ms) {
            return json(serde_json::json!(Handed::Deleted));
        }
        if remote && state.capacity.above_high(state) {
            return json(serde_json::json!(Handed::NoRoom));
        }
    }
    let (st, bck, key) = (state.clone(), a.entry.bck.clone(), a.key.clone());
    let staged = match data::blocking(move || Ok(st.store.stage(&bck, &key)?)).await {
        Ok(s) => s,
        Err(e) => return respond(StatusCode::SERVICE_UNAVAILABLE, Bytes::from(e.to_string())),
    };
    let mut stream = body.into_data_stream();
    let stored = data::sse::stored_len(&a.meta);
    let received = data::receive::receive(&staged, Some(&mut stream), &[], stored).await;
    let received = match received {
        Ok(r) if r.size == stored => r,
        Ok(_) => return respond(StatusCode::BAD_REQUEST, Bytes::from("short object")),
        Err(_) => return respond(StatusCode::BAD_REQUEST, Bytes::from("the object's body failed")),
    };
    // A single-part object's ETag is its MD5: the bytes are checked end to end.
    if a.meta.parts.is_empty() && a.meta.etag.len() == 32 && received.etag() != a.meta.etag {
        return respond(StatusCode::BAD_REQUEST, Bytes::from("the object's bytes do not match its ETag"));
    }
    let mut staged = staged;
    staged.guard(data::bucket_guard(state, &a.entry));
    if a.stage {
        let synced = data::blocking(move || {
            staged.file.sync_data().map_err(|e| Error::from(trove_cache::Error::io(staged.path(), e)))?;
            Ok(staged)
        })
        .await;
        return match synced {
            Ok(staged) => {
                let token = state.pending_replicas.put(Pending {
                    staged,
                    entry: a.entry,
                    key: a.key,
                    meta: a.meta,
                    at: Instant::now(),
                });
                json(serde_json::json!(token))
            }
            Err(e) => respond(StatusCode::SERVICE_UNAVAILABLE, Bytes::from(e.to_string())),
        };
    }
    match install(state, staged, &a.entry, &a.key, &a.meta, true).await {
        Ok(h) => {
            if h == Handed::Installed {
                count_received(state, &a.job, a.meta.size);
            }
            json(serde_json::json!(h))
        }
        Err(e) => respond(StatusCode::SERVICE_UNAVAILABLE, Bytes::from(e.to_string())),
    }
}

/// Counts a copy a rebalance brought here, in the metrics and in this node's part of the sender's job.
fn count_received(state: &SharedState, job: &str, size: u64) {
    state.metrics.rebalance_received_objects.fetch_add(1, Ordering::Relaxed);
    state.metrics.rebalance_received_bytes.fetch_add(size, Ordering::Relaxed);
    if let Some(job) = state.jobs.list(None).iter().find(|j| j.id == job) {
        job.in_objs.fetch_add(1, Ordering::Relaxed);
        job.in_bytes.fetch_add(size, Ordering::Relaxed);
    }
}

/// How copy `cur` compares with another of the same object: by modification time, then (two writes in one
/// millisecond) by ETag, so every node picks the same winner and two copies never both yield to each other.
fn newer(cur: &ObjMeta, mtime_ms: i64, etag: &str) -> std::cmp::Ordering {
    (cur.mtime_ms, cur.etag.as_str()).cmp(&(mtime_ms, etag))
}

/// Publishes a received copy unless this node has the same or a newer one, or (`tombstones`) deleted the
/// object after the copy was written. The check runs under the store's tree lock, with the publish.
async fn install(
    state: &SharedState,
    staged: Staged,
    entry: &BucketEntry,
    key: &str,
    meta: &ObjMeta,
    tombstones: bool,
) -> Result<Handed, Error> {
    let (st, bck, key, meta) = (state.clone(), entry.bck.clone(), key.to_owned(), meta.clone());
    let remote = entry.bck.is_remote();
    data::blocking(move || {
        let deleted = || tombstones && !remote && st.tombstones.buries(&bck, &key, meta.mtime_ms);
        let mut buried = false;
        let outcome = st.store.commit_if(staged, &bck, &key, &meta, |cur| match cur {
            Some(c) if newer(c, meta.mtime_ms, &meta.etag).is_ge() => Err(trove_cache::Error::PreconditionFailed),
            _ if deleted() => {
                buried = true;
                Err(trove_cache::Error::PreconditionFailed)
            }
            _ => Ok(()),
        });
        match outcome {
            Ok(()) => Ok(Handed::Installed),
            Err(trove_cache::Error::PreconditionFailed) if buried => Ok(Handed::Deleted),
            Err(trove_cache::Error::PreconditionFailed) => Ok(Handed::Kept),
            Err(e) => Err(e.into()),
        }
    })
    .await
}
