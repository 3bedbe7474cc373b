//! `archive`: one shard (TAR, TGZ, ZIP or TAR.LZ4) made of many objects of a bucket — a list, a template or a
//! prefix — written into a bucket as one object, as a job (AIS's x-archive). The node that got the request
//! runs it: each object is read where it is kept (this node's copy, read through for cloud objects, or copied
//! from the node that owns it), added to the shard on a blocking thread as it arrives, and the finished shard
//! is stored by its own key's owner. Memory stays bounded: objects pass as files, the shard is written to disk.

use std::fs::File;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde::Deserialize;
use trove_namespace::BucketEntry;

use super::template::{Names, Template};
use super::{spawn, Job, StartError};
use crate::cluster::Owner;
use crate::data::archive::{ArchiveWriter, At, Format};
use crate::state::SharedState;

pub const ARCHIVE: &str = trove_ais::action::ARCHIVE;

/// AIS's `ArchiveBckMsg` (without the destination, resolved by the caller).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ArchiveMsg {
    pub archname: String,
    #[serde(default)]
    pub mime: String,
    #[serde(flatten)]
    pub names: trove_ais::ListRange,
    /// Entry names are the objects' base names.
    #[serde(default)]
    pub bnonly: bool,
    /// Entry names start with the source bucket's name.
    #[serde(default)]
    pub isbn: bool,
    /// Append to an existing shard instead of replacing it.
    #[serde(default)]
    pub aate: bool,
    /// Continue on error: without it the first object that cannot be added stops the job (no shard).
    #[serde(default)]
    pub coer: bool,
}

/// Checks the message and starts the job on this node.
pub fn start(
    state: &SharedState,
    src: &BucketEntry,
    dst: &BucketEntry,
    msg: ArchiveMsg,
) -> Result<Arc<Job>, StartError> {
    let bad = |m: String| StartError::NoBackend(m);
    let format = Format::from_name(&msg.archname)
        .ok_or_else(|| bad(format!("archname {:?} must end in .tar, .tgz, .tar.gz, .zip or .tar.lz4", msg.archname)))?;
    if !msg.mime.is_empty() && Format::from_mime(&msg.mime) != Some(format) {
        return Err(bad(format!("mime mismatch: {:?} for {:?}", msg.mime, msg.archname)));
    }
    crate::s3::ctx::check_key(&msg.archname).map_err(|_| bad(format!("invalid archname {:?}", msg.archname)))?;
    let names = if msg.names.objnames.is_empty() { Some(Template::parse(&msg.names.template)?) } else { None };
    let job = state.jobs.create(ARCHIVE, &src.bck, None);
    let (st, src, dst, j) = (state.clone(), src.clone(), dst.clone(), job.clone());
    spawn(job.clone(), async move { run(&st, &j, &src, &dst, msg, names, format).await });
    Ok(job)
}

async fn run(
    state: &SharedState,
    job: &Job,
    src: &BucketEntry,
    dst: &BucketEntry,
    msg: ArchiveMsg,
    names: Option<Names>,
    format: Format,
) -> Result<(), String> {
    let listed = names.is_none();
    let keys: Vec<String> = match names {
        None => msg.names.objnames.clone(),
        Some(Names::Template(t)) => t.names().collect(),
        Some(Names::Prefix(prefix)) => all_keys(state, src, &prefix).await?,
    };
    let (st, bck, name) = (state.clone(), dst.bck.clone(), msg.archname.clone());
    let staged = crate::data::blocking(move || Ok(st.store.stage(&bck, &name)?)).await.map_err(|e| e.to_string())?;
    let out = staged.file.try_clone().map_err(|e| e.to_string())?;
    // The shard is written on a blocking thread; objects reach it as open files.
    let (tx, rx) = std::sync::mpsc::sync_channel::<(String, u64, u64, Arc<File>)>(4);
    let existing = if msg.aate { shard_file(state, dst, &msg.archname).await } else { None };
    let writer = tokio::task::spawn_blocking(move || -> Result<(u64, [u8; 16], u64), String> {
        let mut w = ArchiveWriter::new(format, out);
        if let Some((file, old_format)) = existing {
            w.copy_from(file, old_format).map_err(|e| e.to_string())?;
        }
        let mut added = 0;
        for (name, size, mtime, file) in rx {
            let mut reader = std::io::BufReader::with_capacity(256 << 10, At::new(file));
            w.add(&name, size, mtime, &mut reader).map_err(|e| e.to_string())?;
            added += 1;
        }
        let (n, md5) = w.finish().map_err(|e| e.to_string())?;
        Ok((n, md5, added))
    });
    let mut stopped_by_error = false;
    for key in keys {
        if job.aborted() {
            break;
        }
        match object_file(state, src, &key).await {
            Ok(Some((file, size, mtime))) => {
                let base = key.rsplit('/').next().unwrap_or(&key);
                let name = match (msg.bnonly, msg.isbn) {
                    (true, true) => format!("{}/{base}", src.bck.name),
                    (true, false) => base.to_owned(),
                    (false, true) => format!("{}/{key}", src.bck.name),
                    (false, false) => key.clone(),
                };
                if tx.send((name, size, mtime, file)).is_err() {
                    break; // the writer failed: its error follows
                }
                job.objs.fetch_add(1, Ordering::Relaxed);
                job.bytes.fetch_add(size, Ordering::Relaxed);
            }
            // A missing object is an error when named, skipped in a range or prefix.
            Ok(None) if listed => {
                job.failed.fetch_add(1, Ordering::Relaxed);
                job.note_error(format!("{key} does not exist"));
                if !msg.coer {
                    stopped_by_error = true;
                    break;
                }
            }
            Ok(None) => {
                job.skipped.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                job.failed.fetch_add(1, Ordering::Relaxed);
                job.note_error(format!("{key}: {e}"));
                if !msg.coer {
                    stopped_by_error = true;
                    break;
                }
            }
        }
    }
    drop(tx);
    if stopped_by_error {
        return Err("stopped: an object could not be added (continue-on-error not set)".to_owned());
    }
    if job.aborted() {
        return Err("stopped".to_owned());
    }
    let (size, md5, added) = writer.await.map_err(|e| e.to_string())??;
    if added == 0 && !msg.aate {
        return Err("empty: no object was added to the shard".to_owned());
    }
    let meta = trove_cache::ObjMeta {
        key: msg.archname.clone(),
        size,
        etag: hex::encode(md5),
        mtime_ms: crate::data::now_ms(),
        content_type: Some(format.content_type().to_owned()),
        ..Default::default()
    };
    super::store(state, dst, staged, meta).await.map_err(|e| e.to_string())
}

/// Every key of a bucket under `prefix`, in the cluster (or its backend's listing).
async fn all_keys(state: &SharedState, src: &BucketEntry, prefix: &str) -> Result<Vec<String>, String> {
    let mut keys = Vec::new();
    let mut token = None;
    loop {
        let opts =
            crate::data::ListOpts { prefix: prefix.to_owned(), token: token.clone(), max: 1000, ..Default::default() };
        let page = crate::data::list(state, src, opts).await.map_err(|e| format!("listing {}: {e}", src.bck))?;
        let last = page.objects.last().map(|(k, _)| k.clone());
        keys.extend(page.objects.into_iter().map(|(k, _)| k));
        if !page.truncated {
            return Ok(keys);
        }
        token = page.next_token.or(last);
    }
}

/// An object as an open file with its size and time: this node's copy (read through for a cloud object it
/// owns), else a copy from the node that keeps it. `None` when it does not exist.
async fn object_file(
    state: &SharedState,
    src: &BucketEntry,
    key: &str,
) -> Result<Option<(Arc<File>, u64, u64)>, crate::data::Error> {
    use crate::data::Error;
    let local = matches!(state.owner(&src.bck, key), Owner::Local) || state.store.head(&src.bck, key).is_ok();
    let (file, meta) = if local {
        if src.bck.is_remote() {
            match crate::data::ensure_cached(state, src, key).await {
                Ok(()) => {}
                Err(Error::NoSuchKey) => return Ok(None),
                Err(e) => return Err(e),
            }
        }
        let (st, bck, k) = (state.clone(), src.bck.clone(), key.to_owned());
        match crate::data::blocking(move || Ok(st.store.open_cached(&bck, &k)?)).await {
            Ok(open) => (open.file.clone(), open.meta.clone()),
            Err(Error::NoSuchKey) => return Ok(None),
            Err(e) => return Err(e),
        }
    } else {
        match crate::data::peers::fetch_object(state, &src.bck, key, None).await {
            Ok((f, m)) => (Arc::new(f), m),
            Err(Error::NoSuchKey) if !src.bck.is_remote() => return Ok(None),
            Err(Error::NoSuchKey) => return Box::pin(object_file_here(state, src, key)).await,
            Err(e) => return Err(e),
        }
    };
    if meta.sse.is_some() {
        return Err(Error::NotImplemented("putting encrypted objects into a shard"));
    }
    Ok(Some((file, meta.size, (meta.mtime_ms.max(0) / 1000) as u64)))
}

/// A cloud object no node holds yet: read through here.
async fn object_file_here(
    state: &SharedState,
    src: &BucketEntry,
    key: &str,
) -> Result<Option<(Arc<File>, u64, u64)>, crate::data::Error> {
    match crate::data::ensure_cached(state, src, key).await {
        Ok(()) => {}
        Err(crate::data::Error::NoSuchKey) => return Ok(None),
        Err(e) => return Err(e),
    }
    let (st, bck, k) = (state.clone(), src.bck.clone(), key.to_owned());
    let open = crate::data::blocking(move || Ok(st.store.open_cached(&bck, &k)?)).await?;
    Ok(Some((open.file.clone(), open.meta.size, (open.meta.mtime_ms.max(0) / 1000) as u64)))
}

/// The current shard, for appending (`aate`), with its format.
async fn shard_file(state: &SharedState, dst: &BucketEntry, name: &str) -> Option<(Arc<File>, Format)> {
    let (file, _, _) = object_file(state, dst, name).await.ok().flatten()?;
    let format = crate::data::archive::format_of(&file, name, None).ok()?;
    Some((file, format))
}
