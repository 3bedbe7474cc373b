//! `/v1/objects/B/O`: object GET, PUT, HEAD (with AIS's `presence`) and DELETE for the native API, over the
//! same read-through, write-through and storage paths as S3. No redirects: the node answers itself.

use http::{Request, Response, StatusCode};

use s3s::dto::StreamingBlob;
use trove_backends::ByteRange;
use trove_cache::ObjMeta;
use trove_namespace::BucketEntry;

use trove_ais::{header, query as ais_query};

use super::errors::from_data;
use crate::data::receive::{receive, Interrupted, MAX_OBJECT_SIZE};
use crate::data::{now_ms, DEFAULT_CONTENT_TYPE};
use crate::s3::bucket::timestamp_ms;
use crate::s3::object::{self, http_date};
use crate::state::SharedState;

type Reply = Result<Response<s3s::Body>, (StatusCode, String)>;

fn param<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// The bucket and object a `/v1/objects/<bucket>/<object>` path names.
async fn target(
    state: &SharedState,
    rest: &str,
    query: &[(String, String)],
) -> Result<(BucketEntry, String), (StatusCode, String)> {
    let (bucket, key) = rest
        .split_once('/')
        .filter(|(_, k)| !k.is_empty())
        .ok_or((StatusCode::BAD_REQUEST, "expected /v1/objects/<bucket>/<object>".to_owned()))?;
    let key = percent_encoding::percent_decode_str(key)
        .decode_utf8()
        .map_err(|_| (StatusCode::BAD_REQUEST, "object name is not UTF-8".to_owned()))?
        .into_owned();
    crate::s3::ctx::check_key(&key)
        .map_err(|e| (StatusCode::BAD_REQUEST, e.message().unwrap_or("bad name").to_owned()))?;
    let (_, entry) = super::bucket(state, bucket, query).await?;
    Ok((entry, key))
}

/// GET, HEAD and PUT: the object's data.
pub async fn handle(state: &SharedState, req: Request<s3s::Body>, rest: &str, query: &[(String, String)]) -> Reply {
    let (entry, key) = target(state, rest, query).await?;
    if req.method() == http::Method::PUT && param(query, "archpath").is_some_and(|p| !p.is_empty()) {
        write_archived(state, &entry, &key, req, query).await
    } else if req.method() == http::Method::PUT {
        write(state, &entry, &key, req).await
    } else {
        read(state, &entry, &key, req, query).await
    }
}

/// DELETE (plain, or AIS's single-object evict), and the POST/PATCH actions on objects, which Trove does not
/// implement and names in its refusal.
pub async fn control(state: &SharedState, call: &super::Call, rest: &str) -> Reply {
    let action = call.msg.action.as_str();
    if call.method != http::Method::DELETE {
        let what = if action.is_empty() { format!("{} of an object", call.method) } else { format!("action {action}") };
        return Err((StatusCode::BAD_REQUEST, format!("{what} is not supported by Trove")));
    }
    let (entry, key) = target(state, rest, &call.query).await?;
    match action {
        "" => {
            let existed = crate::data::delete(state, &entry, &key).await.map_err(|e| from_data(e, &entry, &key))?;
            if !existed {
                return Err(from_data(crate::data::Error::NoSuchKey, &entry, &key));
            }
        }
        // AIS's `api.EvictObject`: the cached copy goes, the backend keeps the object.
        trove_ais::action::EVICT if entry.bck.is_remote() => {
            let cached = state.store.head(&entry.bck, &key).is_ok();
            crate::data::drop_cached(state, &entry, &key).await.map_err(|e| from_data(e, &entry, &key))?;
            if !cached {
                return Err(from_data(crate::data::Error::NoSuchKey, &entry, &key));
            }
        }
        trove_ais::action::EVICT => {
            return Err((
                StatusCode::BAD_REQUEST,
                format!("{action}: ais://{} is not a remote bucket", entry.bck.name),
            ));
        }
        other => return Err((StatusCode::BAD_REQUEST, format!("action {other} is not supported by Trove"))),
    }
    Ok(super::json(StatusCode::OK, bytes::Bytes::new()))
}

async fn read(
    state: &SharedState,
    entry: &BucketEntry,
    key: &str,
    req: Request<s3s::Body>,
    query: &[(String, String)],
) -> Reply {
    let head = req.method() == http::Method::HEAD;
    // Archive mode: a file (or files) inside the object, not the object (AIS: `archpath` set, or `archmode`
    // given; `archregx` alone is not enough).
    let archpath = param(query, "archpath").filter(|p| !p.is_empty());
    if !head && (archpath.is_some() || query.iter().any(|(k, _)| k == "archmode")) {
        return read_archived(state, entry, key, &req, query).await;
    }
    let presence = matches!(param(query, ais_query::PRESENCE), Some("2" | "3" | "4"));
    // `Ais-Present` and `presence` need the local state; a GET's body read does not look twice.
    let cached = (head || presence).then(|| state.store.head(&entry.bck, key).ok()).flatten();
    // presence=2|3|4: "is it in the cluster?" — answered from local state only, never by the backend.
    if presence && cached.is_none() {
        return Err((
            StatusCode::NOT_FOUND,
            format!("{}://{}/{key} is not present", entry.bck.provider.as_str(), entry.bck.name),
        ));
    }
    let range = match req.headers().get(http::header::RANGE).and_then(|h| h.to_str().ok()) {
        Some(r) => Some(ByteRange::parse(r).ok_or((StatusCode::RANGE_NOT_SATISFIABLE, format!("invalid range {r}")))?),
        None => None,
    };
    let latest = matches!(param(query, ais_query::LATEST_VER), Some("true" | "True" | "1"));
    let opts = crate::data::ReadOpts { range, latest, with_body: !head };
    let o = crate::data::read(state, entry, key, opts).await.map_err(|e| from_data(e, entry, key))?;
    // An encrypted object is served opened (SSE-S3, SSE-KMS); a customer key cannot be given here (SSE-C: 400).
    let sealed = o
        .meta
        .sse
        .as_ref()
        .map(|s| crate::data::sse::data_key(&state.sse, s, None))
        .transpose()
        .map_err(|e| from_data(e, entry, key))?;
    let size = o.meta.size;
    let (start, end) = match range {
        Some(r) => r.resolve(size).ok_or_else(|| from_data(crate::data::Error::InvalidRange, entry, key))?,
        None => (0, size),
    };
    let partial = range.is_some();
    let mut resp = Response::builder().status(if partial { StatusCode::PARTIAL_CONTENT } else { StatusCode::OK });
    let h = resp.headers_mut().ok_or((StatusCode::INTERNAL_SERVER_ERROR, "response".to_owned()))?;
    let mut set = |name: &'static str, value: String| {
        if let Ok(v) = http::HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    };
    set("content-length", (end - start).to_string());
    if partial {
        set("content-range", format!("bytes {start}-{}/{size}", end.saturating_sub(1)));
    }
    set("etag", format!("\"{}\"", o.meta.etag));
    if let Some(t) = http_date(&timestamp_ms(o.meta.mtime_ms)) {
        set("last-modified", t);
    }
    set("content-type", o.meta.content_type.clone().unwrap_or_else(|| DEFAULT_CONTENT_TYPE.to_owned()));
    if head || presence {
        set(header::PRESENT, cached.is_some().to_string());
    }
    if let Some(v) = cached.as_ref().and_then(|m| m.version.clone()) {
        set(header::VERSION, v);
    }
    let body = if head {
        s3s::Body::empty()
    } else {
        s3s::Body::from(object::into_plain_blob(o.body, &o.meta, sealed, start, end))
    };
    resp.body(body).map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

/// GET of files inside an archive object: one by `archpath` (its bytes), or those `archregx` selects in
/// `archmode` (a TAR of them). A cold shard is fetched whole first.
async fn read_archived(
    state: &SharedState,
    entry: &BucketEntry,
    key: &str,
    req: &Request<s3s::Body>,
    query: &[(String, String)],
) -> Reply {
    use crate::data::archive::{self, Extracted, Selection};
    let fail = |e| from_data(e, entry, key);
    let archpath = param(query, "archpath").filter(|p| !p.is_empty());
    let mode = param(query, "archmode");
    if archpath.is_some() && mode.is_some() {
        return Err((StatusCode::BAD_REQUEST, "archpath and archmode are mutually exclusive".to_owned()));
    }
    if req.headers().contains_key(http::header::RANGE) {
        return Err((StatusCode::NOT_IMPLEMENTED, "range-reading archived content is not supported".to_owned()));
    }
    // With `presence` the shard must already be in the cluster (GetBatch asks this way); else it is fetched.
    if matches!(param(query, ais_query::PRESENCE), Some("2" | "3" | "4")) {
        if state.store.head(&entry.bck, key).is_err() {
            return Err(fail(crate::data::Error::NoSuchKey));
        }
    } else {
        crate::data::ensure_cached(state, entry, key).await.map_err(fail)?;
    }
    let (st, bck, k) = (state.clone(), entry.bck.clone(), key.to_owned());
    let open = tokio::task::spawn_blocking(move || st.store.open_cached(&bck, &k))
        .await
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| fail(e.into()))?;
    if open.meta.sse.is_some() {
        return Err(fail(crate::data::Error::NotImplemented("reading files inside an encrypted archive")));
    }
    let format = archive::format_of(&open.file, key, param(query, "archmime")).map_err(fail)?;
    let builder = Response::builder().status(StatusCode::OK);
    let Some(path) = archpath else {
        let sel =
            Selection::parse(mode.unwrap_or_default(), param(query, "archregx").unwrap_or_default()).map_err(fail)?;
        let body = archive::select(open.file.clone(), format, sel).await.map_err(|e| from_data(e, entry, key))?;
        let blob = StreamingBlob::wrap(crate::data::SyncBody::new(body));
        return builder
            .header("content-type", archive::Format::Tar.content_type())
            .body(s3s::Body::from(blob))
            .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()));
    };
    // A path that repeats the shard's name is taken relative to it (`shard.tar/a/b` is `a/b`).
    let path = path.strip_prefix('/').unwrap_or(path);
    let path = path.strip_prefix(key).and_then(|p| p.strip_prefix('/')).unwrap_or(path);
    let read = archive::read_one(&state.shards, &entry.bck.name, open.file.clone(), &open.meta, format, path)
        .await
        .map_err(|e| from_data(e, entry, &format!("{key}/{path}")))?;
    let (size, blob) = match read {
        Extracted::Range { file, start, end } => {
            (end - start, crate::data::FileBody::shared(file, start, end).into_blob())
        }
        Extracted::Stream { size, body } => (size, StreamingBlob::wrap(crate::data::SyncBody::new(body))),
    };
    builder
        .header("content-type", "application/octet-stream")
        .header("content-length", size.to_string())
        .body(s3s::Body::from(blob))
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

/// PUT of one file into an archive object (`?archpath=`): a new archive of just that file, or (with
/// `Ais-Pine: 1`, or `2` which also creates) the existing archive with the file added. The result is written as
/// a new object (copy, then rename), so an interrupted PUT leaves the archive as it was.
async fn write_archived(
    state: &SharedState,
    entry: &BucketEntry,
    key: &str,
    req: Request<s3s::Body>,
    query: &[(String, String)],
) -> Reply {
    use crate::data::archive::{self, PutMode};
    let fail = |e| from_data(e, entry, key);
    let raw = param(query, "archpath").unwrap_or_default();
    let path = raw.strip_prefix('/').unwrap_or(raw);
    let path = path.strip_prefix(key).and_then(|p| p.strip_prefix('/')).unwrap_or(path).to_owned();
    if path.is_empty() || path.ends_with('/') || path.split('/').any(|c| c == "." || c == "..") {
        return Err((StatusCode::BAD_REQUEST, format!("invalid archpath {raw:?}")));
    }
    let length = req.headers().get(http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let Some(length) = length.filter(|l| *l > 0) else {
        return Err((StatusCode::BAD_REQUEST, "missing Content-Length".to_owned()));
    };
    let pine = req.headers().get("ais-pine").and_then(|v| v.to_str().ok());
    let mode = PutMode::parse(pine).map_err(fail)?;
    crate::data::check_space(state).map_err(fail)?;
    let existing = if mode == PutMode::Replace {
        None
    } else {
        if entry.bck.is_remote() {
            match crate::data::ensure_cached(state, entry, key).await {
                Ok(()) | Err(crate::data::Error::NoSuchKey) => {}
                Err(e) => return Err(fail(e)),
            }
        }
        state.store.open_cached(&entry.bck, key).ok()
    };
    if mode == PutMode::Append && existing.is_none() {
        return Err(fail(crate::data::Error::NoSuchKey));
    }
    if existing.as_ref().is_some_and(|o| o.meta.sse.is_some()) {
        return Err(fail(crate::data::Error::NotImplemented("adding to an encrypted archive")));
    }
    let format = match (param(query, "archmime").and_then(archive::Format::from_mime), archive::Format::from_name(key))
    {
        (Some(f), _) | (None, Some(f)) => f,
        (None, None) => match &existing {
            Some(o) => archive::format_of(&o.file, key, None).map_err(fail)?,
            None => return Err((StatusCode::BAD_REQUEST, format!("{key} is not named as an archive; give archmime"))),
        },
    };
    let stage = |st: SharedState, bck: trove_namespace::Bck, k: String| async move {
        tokio::task::spawn_blocking(move || st.store.stage(&bck, &k))
            .await
            .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
    };
    let incoming = stage(state.clone(), entry.bck.clone(), key.to_owned()).await?.map_err(|e| fail(e.into()))?;
    let blob = StreamingBlob::from(req.into_body());
    let received = receive(&incoming, Some(blob), &[], MAX_OBJECT_SIZE).await.map_err(|e| match e {
        Interrupted::Body(e) => (StatusCode::BAD_REQUEST, format!("the request body was not received: {e}")),
        Interrupted::Data(e) => fail(e),
    })?;
    if received.size != length {
        return Err((StatusCode::BAD_REQUEST, "the body is shorter than Content-Length".to_owned()));
    }
    let out = stage(state.clone(), entry.bck.clone(), key.to_owned()).await?.map_err(|e| fail(e.into()))?;
    let old = existing.map(|o| o.file.clone());
    let (in_path, out_file) = (
        incoming.path().to_owned(),
        out.file.try_clone().map_err(|e| fail(crate::data::Error::Internal(e.to_string())))?,
    );
    let written = tokio::task::spawn_blocking(move || {
        let mut file = std::fs::File::open(&in_path).map_err(|e| crate::data::Error::Internal(e.to_string()))?;
        archive::write_with(old, format, &path, &mut file, length, &out_file)
    })
    .await
    .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    .map_err(fail)?;
    drop(incoming);
    let meta = ObjMeta {
        key: key.to_owned(),
        size: written.0,
        etag: hex::encode(written.1),
        mtime_ms: now_ms(),
        content_type: Some(DEFAULT_CONTENT_TYPE.to_owned()),
        ..Default::default()
    };
    crate::data::put(state, entry, out, meta, None).await.map_err(fail)?;
    Ok(super::json(StatusCode::OK, bytes::Bytes::new()))
}

async fn write(state: &SharedState, entry: &BucketEntry, key: &str, req: Request<s3s::Body>) -> Reply {
    let length = req.headers().get(http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    crate::data::check_space(state).map_err(|e| from_data(e, entry, key))?;
    if length.is_some_and(|l| l > MAX_OBJECT_SIZE) {
        return Err((StatusCode::PAYLOAD_TOO_LARGE, "object too large".to_owned()));
    }
    let (st, bck, k) = (state.clone(), entry.bck.clone(), key.to_owned());
    let staged = tokio::task::spawn_blocking(move || st.store.stage(&bck, &k))
        .await
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| from_data(e.into(), entry, key))?;
    let blob = StreamingBlob::from(req.into_body());
    let received = receive(&staged, Some(blob), &[], MAX_OBJECT_SIZE).await.map_err(|e| match e {
        Interrupted::Body(e) => (StatusCode::BAD_REQUEST, format!("the request body was not received: {e}")),
        Interrupted::Data(e) => from_data(e, entry, key),
    })?;
    if length.is_some_and(|l| l != received.size) {
        return Err((StatusCode::BAD_REQUEST, "the body is shorter than Content-Length".to_owned()));
    }
    // AIS clients label object bodies `application/json`: that says nothing about the object.
    let meta = ObjMeta {
        key: key.to_owned(),
        size: received.size,
        etag: received.etag(),
        mtime_ms: now_ms(),
        content_type: Some(DEFAULT_CONTENT_TYPE.to_owned()),
        ..Default::default()
    };
    crate::data::put(state, entry, staged, meta, None).await.map_err(|e| from_data(e, entry, key))?;
    Ok(super::json(StatusCode::OK, bytes::Bytes::new()))
}
