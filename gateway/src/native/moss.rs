//! GetBatch (`GET /v1/ml/moss[/<bucket>]` with a JSON `MossReq` body, AIS 4.0): many objects, files inside
//! shards and byte ranges, from any buckets, returned as one archive (TAR, or TGZ, TAR.LZ4, ZIP by `mime`) in
//! request order. Each entry is read where it is kept: from this node's store, or streamed from the node that
//! owns it (a native GET with the admin token, `presence=2` so nothing is fetched from a backend: GetBatch
//! serves in-cluster data, as AIS's does).
//!
//! With `coer` a missing entry keeps its place as an empty `__404__/<name>` entry, up to `[get_batch]
//! max_soft_errs` of them; without it, or beyond that, the batch fails. Streamed (`strm`, the default), the
//! 200 is sent first and a failure ends the archive early, as in AIS; buffered (`strm: false`), the archive is
//! spooled to a work file and the answer is AIS's two-part `multipart/mixed`: the `MossResp` metadata (each
//! entry's size or error), then the archive — or an error status when the batch failed. Memory stays bounded
//! either way: entries stream one after the other through a small channel.

use std::sync::Arc;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use http::StatusCode;
use serde::Deserialize;
use trove_backends::ByteStream;
use trove_namespace::BucketEntry;

use crate::cluster::Owner;
use crate::data::archive::Format;
use crate::state::SharedState;

type Reply = Result<http::Response<s3s::Body>, (StatusCode, String)>;

/// Where missing entries go when continuing on error (AIS's `MossMissingDir`).
const MISSING_DIR: &str = "__404__";
/// The largest request body (an input list of many thousands of entries).
pub const MAX_REQUEST: usize = 8 << 20;

/// The multipart parts of a buffered answer (AIS's `MossMetaPart`, `MossDataPart`).
const META_PART: &str = "metadata";
const DATA_PART: &str = "archive";

#[derive(Debug, Deserialize)]
struct MossReq {
    #[serde(rename = "in", default)]
    items: Vec<MossIn>,
    #[serde(default)]
    mime: String,
    #[serde(default)]
    coer: bool,
    #[serde(default)]
    onob: bool,
    #[serde(default = "yes")]
    strm: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
struct MossIn {
    objname: String,
    #[serde(default)]
    bucket: String,
    #[serde(default)]
    provider: String,
    #[serde(default)]
    uname: String,
    #[serde(default)]
    archpath: String,
    #[serde(default)]
    start: i64,
    #[serde(default)]
    length: i64,
    /// The caller's own bytes (base64), returned with the entry.
    #[serde(default)]
    opaque: Option<serde_json::Value>,
}

/// What happened to one entry (AIS's `MossOut`), reported by a buffered answer.
#[derive(Debug, Default, serde::Serialize)]
struct MossOut {
    objname: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    archpath: String,
    bucket: String,
    provider: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    opaque: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "String::is_empty")]
    err_msg: String,
    size: u64,
}

/// One entry to deliver: its bucket, what to read, and its name in the answer.
struct Item {
    entry: BucketEntry,
    key: String,
    archpath: Option<String>,
    /// `[start, start+len)`; `None` length: to the end.
    range: Option<(u64, Option<u64>)>,
    name: String,
    opaque: Option<serde_json::Value>,
}

impl Item {
    fn out(&self) -> MossOut {
        MossOut {
            objname: self.key.clone(),
            archpath: self.archpath.clone().unwrap_or_default(),
            bucket: self.entry.bck.name.clone(),
            provider: self.entry.bck.provider.as_str().to_owned(),
            opaque: self.opaque.clone(),
            ..Default::default()
        }
    }
}

/// Why a batch failed, with the status a buffered answer gives.
type Failed = (StatusCode, String);

/// The status of a batch whose reader went away (nobody gets it).
const GONE: StatusCode = StatusCode::GONE;

fn bad(msg: impl Into<String>) -> (StatusCode, String) {
    (StatusCode::BAD_REQUEST, msg.into())
}

pub async fn handle(state: &SharedState, path_bucket: Option<&str>, query: &[(String, String)], body: Bytes) -> Reply {
    let req: MossReq = serde_json::from_slice(&body).map_err(|e| bad(format!("invalid GetBatch request: {e}")))?;
    if req.items.is_empty() {
        return Err(bad("moss: empty input"));
    }
    let format = match req.mime.to_ascii_lowercase().as_str() {
        "" | ".tar" | "tar" => Format::Tar,
        ".tgz" | "tgz" | ".tar.gz" | "tar.gz" => Format::TarGz,
        ".tar.lz4" | "tar.lz4" => Format::TarLz4,
        ".zip" | "zip" => Format::Zip,
        other => {
            return Err(bad(format!("invalid GetBatch output format {other:?} (.tar, .tgz, .tar.gz, .zip, .tar.lz4)")))
        }
    };
    let mut items = Vec::with_capacity(req.items.len());
    for i in req.items {
        items.push(resolve(state, path_bucket, query, i, req.onob).await?);
    }
    let batch = Batch { coer: req.coer, max_soft: state.get_batch_max_soft_errs };
    if !req.strm {
        return buffered(state, items, batch, format).await;
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(8);
    let st = state.clone();
    tokio::spawn(async move {
        if let Err((_, e)) = assemble(&st, items, batch, &tx).await {
            tracing::debug!(error = %e, "GetBatch ended early");
            let _ = tx.send(Err(std::io::Error::other(e))).await;
        }
    });
    let tar = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) });
    let body = crate::data::archive::from_tar(format, Box::pin(tar));
    let blob = s3s::dto::StreamingBlob::wrap(crate::data::SyncBody::new(body));
    let mut r = http::Response::new(s3s::Body::from(blob));
    r.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static(format.content_type()));
    Ok(r)
}

/// The buffered answer: the archive spooled to a work file (removed when the answer ends), then sent after
/// the entries' metadata as `multipart/mixed`.
async fn buffered(state: &SharedState, items: Vec<Item>, batch: Batch, format: Format) -> Reply {
    let internal = |e: String| (StatusCode::INTERNAL_SERVER_ERROR, e);
    let (st, bck, key) = (state.clone(), items[0].entry.bck.clone(), items[0].key.clone());
    let staged =
        crate::data::blocking(move || Ok(st.store.stage(&bck, &key)?)).await.map_err(|e| internal(e.to_string()))?;
    let file = staged.file.try_clone().map_err(|e| internal(e.to_string()))?;
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(8);
    let tar = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) });
    let mut encoded = crate::data::archive::from_tar(format, Box::pin(tar));
    let spool = async move {
        use tokio::io::AsyncWriteExt;
        let mut out = tokio::io::BufWriter::with_capacity(1 << 20, tokio::fs::File::from_std(file));
        let mut size = 0u64;
        while let Some(chunk) = encoded.next().await {
            let chunk = chunk?;
            size += chunk.len() as u64;
            out.write_all(&chunk).await?;
        }
        out.flush().await?;
        Ok::<u64, std::io::Error>(size)
    };
    let assembled = async move {
        let outs = assemble(state, items, batch, &tx).await;
        drop(tx);
        outs
    };
    let (outs, spooled) = tokio::join!(assembled, spool);
    // A batch that failed cuts the archive short (which the encoder may take for an error); an encoder or
    // spool that failed stops taking entries (which the batch takes for a client gone): each reports its own.
    let (outs, size) = match (outs, spooled) {
        (Err(failed), _) if failed.0 != GONE => return Err(failed),
        (_, Err(e)) => return Err(internal(format!("writing the archive: {e}"))),
        (Err(failed), Ok(_)) => return Err(failed),
        (Ok(outs), Ok(size)) => (outs, size),
    };
    let uuid = format!("{:016x}", rand::random::<u64>());
    let meta = serde_json::json!({ "uuid": uuid, "out": outs });
    let boundary = format!("{:032x}", rand::random::<u128>());
    let head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"{META_PART}\"\r\nContent-Type: application/json\r\n\r\n{meta}\n\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"{DATA_PART}\"; filename=\"batch-{uuid}.{}\"\r\nContent-Type: {}\r\n\r\n",
        format.extension(),
        format.content_type()
    );
    let tail = format!("\r\n--{boundary}--\r\n");
    let length = head.len() as u64 + size + tail.len() as u64;
    let file = Arc::new(staged.file.try_clone().map_err(|e| internal(e.to_string()))?);
    // The work file lives until the answer's last bytes are taken.
    let tail = futures::stream::once(async move {
        drop(staged);
        Ok::<Bytes, std::io::Error>(Bytes::from(tail))
    });
    let body = futures::stream::once(async move { Ok::<Bytes, std::io::Error>(Bytes::from(head)) })
        .chain(trove_cache::file_stream(file, 0, size))
        .chain(tail);
    let blob = s3s::dto::StreamingBlob::wrap(crate::data::SyncBody::new(Box::pin(body)));
    let mut r = http::Response::new(s3s::Body::from(blob));
    let ct = format!("multipart/mixed; boundary={boundary}");
    r.headers_mut()
        .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_str(&ct).map_err(|e| internal(e.to_string()))?);
    r.headers_mut().insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(length));
    Ok(r)
}

/// The bucket, key, archived path, range and answer name of one input.
async fn resolve(
    state: &SharedState,
    path_bucket: Option<&str>,
    query: &[(String, String)],
    i: MossIn,
    only_name: bool,
) -> Result<Item, (StatusCode, String)> {
    crate::s3::ctx::check_key(&i.objname).map_err(|_| bad(format!("invalid object name {:?}", i.objname)))?;
    let (bucket, provider) = if !i.uname.is_empty() {
        let mut parts = i.uname.trim_end_matches('/').splitn(3, '/');
        let (Some(p), Some(_ns), Some(b)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad(format!("invalid bucket uname {:?}", i.uname)));
        };
        (b.to_owned(), p.to_owned())
    } else if !i.bucket.is_empty() {
        (i.bucket.clone(), i.provider.clone())
    } else if let Some(b) = path_bucket {
        let p = query.iter().find(|(k, _)| k == "provider").map(|(_, v)| v.clone()).unwrap_or_default();
        (b.to_owned(), p)
    } else {
        return Err(bad(format!("missing bucket specification for object {:?}", i.objname)));
    };
    let provider = if provider == "s3" { "aws".to_owned() } else { provider };
    let params = vec![("provider".to_owned(), provider)];
    let (_, entry) = super::bucket(state, &bucket, &params).await?;
    let range = match (i.start, i.length) {
        (0, 0) => None,
        (s, l) if s < 0 || l < -1 || (s != 0 && l == 0) => {
            return Err((StatusCode::RANGE_NOT_SATISFIABLE, format!("invalid range start={s} length={l}")))
        }
        (s, -1) => Some((s as u64, None)),
        (s, l) => Some((s as u64, Some(l as u64))),
    };
    let archpath = Some(i.archpath.clone()).filter(|a| !a.is_empty());
    let mut name = if only_name { i.objname.clone() } else { format!("{}/{}", entry.bck.name, i.objname) };
    if let Some(a) = &archpath {
        if !a.starts_with('/') {
            name.push('/');
        }
        name.push_str(a);
    }
    Ok(Item { entry, key: i.objname, archpath, range, name, opaque: i.opaque })
}

/// How a batch treats missing entries.
#[derive(Clone, Copy)]
struct Batch {
    coer: bool,
    /// Missing entries tolerated with `coer` (AIS's `get_batch.max_soft_errs`).
    max_soft: usize,
}

/// Writes every entry, in order, as a TAR into `tx`; what happened to each.
async fn assemble(
    state: &SharedState,
    items: Vec<Item>,
    batch: Batch,
    tx: &tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
) -> Result<Vec<MossOut>, Failed> {
    let gone = || (GONE, "the client went away".to_owned());
    let send = |b: Bytes| async move { tx.send(Ok(b)).await.map_err(|_| gone()) };
    let hard = |e: std::io::Error| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
    let mut outs = Vec::with_capacity(items.len());
    let mut soft = 0;
    for item in items {
        let mut out = item.out();
        match open(state, &item).await {
            Ok((size, mtime, mut body)) => {
                send(Bytes::from(entry_head(&item.name, size, mtime).map_err(hard)?)).await?;
                let mut sent = 0u64;
                while let Some(chunk) = body.next().await {
                    let chunk = chunk.map_err(|e| (StatusCode::SERVICE_UNAVAILABLE, format!("{}: {e}", item.name)))?;
                    sent += chunk.len() as u64;
                    if sent > size {
                        return Err((
                            StatusCode::INTERNAL_SERVER_ERROR,
                            format!("{}: more bytes than announced", item.name),
                        ));
                    }
                    send(chunk).await?;
                }
                if sent != size {
                    return Err((StatusCode::SERVICE_UNAVAILABLE, format!("{}: {sent} of {size} bytes", item.name)));
                }
                send(Bytes::from(vec![0u8; padding(size)])).await?;
                out.size = size;
            }
            Err(Failure::Missing) if batch.coer => {
                soft += 1;
                if soft > batch.max_soft {
                    return Err((
                        StatusCode::NOT_FOUND,
                        format!(
                            "{} does not exist: exceeded soft-errors limit: {soft} (max: {})",
                            item.name, batch.max_soft
                        ),
                    ));
                }
                send(Bytes::from(entry_head(&format!("{MISSING_DIR}/{}", item.name), 0, 0).map_err(hard)?)).await?;
                out.err_msg = format!("{} does not exist", item.name);
            }
            Err(Failure::Missing) => return Err((StatusCode::NOT_FOUND, format!("{} does not exist", item.name))),
            Err(Failure::Hard(status, why)) => return Err((status, why)),
        }
        outs.push(out);
    }
    send(Bytes::from(vec![0u8; 1024])).await?;
    Ok(outs)
}

/// Why an entry cannot be delivered: it is not in the cluster (or not in its shard), which `coer` tolerates,
/// or anything else (a range beyond its end, an encrypted object...), which ends the batch.
enum Failure {
    Missing,
    Hard(StatusCode, String),
}

/// The size, time and bytes of one entry (the range of it, when one is asked).
async fn open(state: &SharedState, item: &Item) -> Result<(u64, u64, ByteStream), Failure> {
    // The owner's copy; a copy kept here (not yet moved by a rebalance) serves as well.
    let (size, mtime, body) = match state.owner(&item.entry.bck, &item.key) {
        Owner::Remote(node) => match local(state, item).await {
            Err(Failure::Missing) => from_node(state, &node.url, item).await?,
            other => other?,
        },
        Owner::Local => local(state, item).await?,
    };
    match (&item.archpath, item.range) {
        // A range of a file taken out of a shard is cut from its bytes.
        (Some(_), Some((start, len))) => {
            let (start, len) = window(start, len, size).ok_or_else(|| out_of_range(item, size))?;
            Ok((len, 0, cut(body, start, len)))
        }
        _ => Ok((size, mtime, body)),
    }
}

/// `[start, start+len)` within `size` bytes; `None` when it starts at or beyond the end (S3's and AIS's 416).
fn window(start: u64, len: Option<u64>, size: u64) -> Option<(u64, u64)> {
    (start < size).then(|| (start, len.unwrap_or(size - start).min(size - start)))
}

fn out_of_range(item: &Item, size: u64) -> Failure {
    Failure::Hard(StatusCode::RANGE_NOT_SATISFIABLE, format!("{}: range not satisfiable (size {size})", item.name))
}

/// From this node's copy (never from a backend).
async fn local(state: &SharedState, item: &Item) -> Result<(u64, u64, ByteStream), Failure> {
    let (st, bck, key) = (state.clone(), item.entry.bck.clone(), item.key.clone());
    let open = tokio::task::spawn_blocking(move || st.store.open_cached(&bck, &key))
        .await
        .map_err(|e| Failure::Hard(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|_| Failure::Missing)?;
    if open.meta.sse.is_some() {
        return Err(Failure::Hard(
            StatusCode::NOT_IMPLEMENTED,
            format!("{}: encrypted objects are not served by GetBatch", item.name),
        ));
    }
    let mtime = (open.meta.mtime_ms.max(0) / 1000) as u64;
    let Some(path) = &item.archpath else {
        let size = open.meta.size;
        let (start, len) = match item.range {
            Some((s, l)) => window(s, l, size).ok_or_else(|| out_of_range(item, size))?,
            None => (0, size),
        };
        let body = crate::data::FileBody::shared(open.file.clone(), start, start + len).into_blob();
        return Ok((len, mtime, Box::pin(body.map_err(std::io::Error::other))));
    };
    let format = crate::data::archive::format_of(&open.file, &item.key, None)
        .map_err(|e| Failure::Hard(StatusCode::BAD_REQUEST, format!("{}: {e}", item.name)))?;
    let read = crate::data::archive::read_one(
        &state.shards,
        &item.entry.bck.name,
        open.file.clone(),
        &open.meta,
        format,
        path,
    )
    .await
    .map_err(|e| match e {
        crate::data::Error::NoSuchKey => Failure::Missing,
        other => Failure::Hard(StatusCode::INTERNAL_SERVER_ERROR, format!("{}: {other}", item.name)),
    })?;
    Ok(match read {
        crate::data::archive::Extracted::Range { file, start, end } => {
            let body = crate::data::FileBody::shared(file, start, end).into_blob();
            (end - start, 0, Box::pin(body.map_err(std::io::Error::other)))
        }
        crate::data::archive::Extracted::Stream { size, body } => (size, 0, body),
    })
}

/// From the node that keeps it: its native GET (admin token, `presence=2`, the range as a Range header),
/// streamed.
async fn from_node(state: &SharedState, url: &str, item: &Item) -> Result<(u64, u64, ByteStream), Failure> {
    use crate::request::{encode as enc, PATH, SEGMENT};
    let mut target = format!(
        "{}/v1/objects/{}/{}?provider={}&presence=2",
        url.trim_end_matches('/'),
        enc(&item.entry.bck.name, SEGMENT),
        enc(&item.key, PATH),
        item.entry.bck.provider.as_str()
    );
    if let Some(a) = &item.archpath {
        target.push_str(&format!("&archpath={}", enc(a, SEGMENT)));
    }
    let mut req =
        http::Request::get(target).header(http::header::AUTHORIZATION, format!("Bearer {}", state.admin_token));
    if let (None, Some((start, len))) = (&item.archpath, item.range) {
        let last = len.map_or(String::new(), |l| (start + l - 1).to_string());
        req = req.header(http::header::RANGE, format!("bytes={start}-{last}"));
    }
    let unavailable = |e: String| Failure::Hard(StatusCode::SERVICE_UNAVAILABLE, e);
    let req = req.body(s3s::Body::empty()).map_err(|e| unavailable(e.to_string()))?;
    let resp = state.forwarder.request(req).await.map_err(|e| unavailable(format!("{}: {e}", item.name)))?;
    match resp.status() {
        s if s.is_success() => {}
        StatusCode::NOT_FOUND => return Err(Failure::Missing),
        s => return Err(unavailable(format!("{}: the node that keeps it answered {s}", item.name))),
    }
    let size = resp
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        .ok_or_else(|| unavailable(format!("{}: no length from the node that keeps it", item.name)))?;
    let body = http_body_util::BodyDataStream::new(resp.into_body()).map_err(std::io::Error::other);
    Ok((size, 0, Box::pin(body)))
}

/// `[start, start+len)` of a stream.
fn cut(body: ByteStream, start: u64, len: u64) -> ByteStream {
    let state = Arc::new(std::sync::Mutex::new((start, len)));
    Box::pin(body.try_filter_map(move |chunk: Bytes| {
        let state = state.clone();
        async move {
            let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
            let (skip, left) = &mut *s;
            let mut chunk = chunk;
            if *skip > 0 {
                let n = (*skip).min(chunk.len() as u64) as usize;
                chunk = chunk.slice(n..);
                *skip -= n as u64;
            }
            let take = (*left).min(chunk.len() as u64) as usize;
            *left -= take as u64;
            Ok((take > 0).then(|| chunk.slice(..take)))
        }
    }))
}

/// Bytes after an entry's data up to the next 512-byte block.
fn padding(size: u64) -> usize {
    ((512 - size % 512) % 512) as usize
}

/// The header block(s) of one regular-file entry (a GNU long-name block first for names over 100 bytes).
fn entry_head(name: &str, size: u64, mtime: u64) -> std::io::Result<Vec<u8>> {
    let mut h = tar::Header::new_gnu();
    h.set_size(0);
    h.set_mode(0o644);
    h.set_mtime(mtime);
    h.set_entry_type(tar::EntryType::Regular);
    let mut b = tar::Builder::new(Vec::new());
    b.append_data(&mut h, name, std::io::empty())?;
    let mut out = b.into_inner()?;
    out.truncate(out.len() - 1024); // the end-of-archive blocks `into_inner` wrote
    h.set_size(size);
    h.set_cksum();
    let last = out.len() - 512;
    out[last..].copy_from_slice(h.as_bytes());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_back(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
        let mut a = tar::Archive::new(bytes);
        a.entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let mut data = Vec::new();
                std::io::Read::read_to_end(&mut e, &mut data).unwrap();
                (e.path().unwrap().to_string_lossy().into_owned(), data)
            })
            .collect()
    }

    #[test]
    fn entries_are_plain_tar_with_long_names() {
        let long = format!("b/{}", "x".repeat(180));
        let mut tarball = Vec::new();
        for (name, data) in [("b/short", &b"hello"[..]), (long.as_str(), &b""[..]), ("b/odd", &[7u8; 513][..])] {
            tarball.extend(entry_head(name, data.len() as u64, 1).unwrap());
            tarball.extend_from_slice(data);
            tarball.extend(vec![0u8; padding(data.len() as u64)]);
        }
        tarball.extend(vec![0u8; 1024]);
        let back = read_back(&tarball);
        assert_eq!(back.len(), 3);
        assert_eq!(back[0], ("b/short".to_owned(), b"hello".to_vec()));
        assert_eq!(back[1].0, long);
        assert_eq!(back[2].1, vec![7u8; 513]);
    }

    #[tokio::test]
    async fn cut_takes_a_window_across_chunks() {
        let chunks: Vec<std::io::Result<Bytes>> =
            vec![Ok(Bytes::from_static(b"0123")), Ok(Bytes::from_static(b"4567")), Ok(Bytes::from_static(b"89"))];
        let body: ByteStream = Box::pin(futures::stream::iter(chunks));
        let got: Vec<Bytes> = cut(body, 3, 5).try_collect().await.unwrap();
        assert_eq!(got.concat(), b"34567");
    }
}
