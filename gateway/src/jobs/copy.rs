//! `copy-bck` and `copy-listrange`: copy objects of one bucket into another, between any providers (AIS-local,
//! cloud, remote AIS), as a job on every node. Each node copies the source objects it owns: named ones (a list
//! or a template), the objects it keeps (a whole bucket or a prefix of an AIS-local bucket, or of a cloud bucket
//! as far as it is cached: AIS's default `presence`), or a cloud bucket's listing (`presence=0`). A copy is
//! read from the source (read-through for cloud objects), staged here, and then stored by the destination
//! key's owner: here, or sent to it (the object's metadata travels with it); a cloud destination is written
//! through to its backend. Names are `prepend + name`.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, Mutex};
use trove_backends::ListRequest;
use trove_namespace::BucketEntry;

use super::template::{Names, Template};
use super::{spawn, Job, MultiObjMsg, StartError};
use crate::cluster::Owner;
use crate::state::SharedState;

pub const COPY_BCK: &str = trove_ais::action::COPY_BCK;
pub const COPY_LISTRANGE: &str = trove_ais::action::COPY_LISTRANGE;

/// What a copy job copies where, beside its names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopySpec {
    /// The destination bucket's name in the namespace.
    pub to: String,
    #[serde(default)]
    pub prefix: String,
    #[serde(default)]
    pub prepend: String,
    #[serde(default)]
    pub dry_run: bool,
    /// Copy only what the cluster holds of a cloud source (AIS's default `presence`); else list its backend.
    #[serde(default)]
    pub cached_only: bool,
}

/// Starts this node's part of a copy job.
pub fn start(
    state: &SharedState,
    src: &BucketEntry,
    msg: MultiObjMsg,
    spec: CopySpec,
    kind: &'static str,
    id: Option<&str>,
) -> Result<Arc<Job>, StartError> {
    let dst = state
        .registry
        .get(&spec.to)
        .ok_or_else(|| StartError::NoBackend(format!("destination bucket {} does not exist", spec.to)))?;
    let names = if !msg.names.objnames.is_empty() {
        None
    } else {
        let t = if msg.names.template.is_empty() { spec.prefix.clone() } else { msg.names.template.clone() };
        Some(Template::parse(&t)?)
    };
    let job = state.jobs.create(kind, &src.bck, id);
    let (tx, rx) = mpsc::channel::<String>(256);
    {
        let (st, job, src, spec, objnames) =
            (state.clone(), job.clone(), src.clone(), spec.clone(), msg.names.objnames.clone());
        tokio::spawn(async move {
            if let Err(e) = produce(&st, &job, &src, &spec, objnames, names, &tx).await {
                job.note_error(e);
                job.abort();
            }
        });
    }
    let (st, s, d, j) = (state.clone(), src.clone(), dst, job.clone());
    spawn(job.clone(), async move {
        let rx = Arc::new(Mutex::new(rx));
        let workers = (0..msg.workers()).map(|_| {
            let (st, s, d, j, rx, spec) = (st.clone(), s.clone(), d.clone(), j.clone(), rx.clone(), spec.clone());
            async move {
                loop {
                    if j.aborted() {
                        return;
                    }
                    let Some(name) = rx.lock().await.recv().await else { return };
                    // Every node may see every name; each copies the ones it owns.
                    if st.owner(&s.bck, &name) != Owner::Local {
                        continue;
                    }
                    match copy_one(&st, &s, &d, &spec, &name).await {
                        Ok(Some(bytes)) => {
                            j.objs.fetch_add(1, Ordering::Relaxed);
                            j.bytes.fetch_add(bytes, Ordering::Relaxed);
                        }
                        Ok(None) => {
                            j.skipped.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            j.failed.fetch_add(1, Ordering::Relaxed);
                            j.note_error(format!("{name}: {e}"));
                            if !msg.coer && kind == COPY_LISTRANGE {
                                j.abort();
                            }
                        }
                    }
                }
            }
        });
        futures::future::join_all(workers).await;
        Ok(())
    });
    Ok(job)
}

/// Feeds the names to copy.
async fn produce(
    state: &SharedState,
    job: &Job,
    src: &BucketEntry,
    spec: &CopySpec,
    objnames: Vec<String>,
    names: Option<Names>,
    tx: &mpsc::Sender<String>,
) -> Result<(), String> {
    let send = |n: String| async move { !job.aborted() && tx.send(n).await.is_ok() };
    match names {
        None => {
            for n in objnames {
                if !send(n).await {
                    break;
                }
            }
        }
        Some(Names::Template(t)) => {
            for n in t.names().filter(|n| n.starts_with(&spec.prefix)) {
                if !send(n).await {
                    break;
                }
            }
        }
        // A cloud bucket's listing, when the cluster's copies are not all that is wanted.
        Some(Names::Prefix(prefix)) if src.bck.is_remote() && !spec.cached_only => {
            let backend = crate::data::backend(state, src).map_err(|e| e.to_string())?;
            let mut token = None;
            loop {
                let req =
                    ListRequest { prefix: prefix.clone(), token: token.clone(), max_keys: 1000, ..Default::default() };
                let page = backend.list(&src.bck.name, req).await.map_err(|e| format!("listing {}: {e}", src.bck))?;
                for entry in page.entries {
                    if !send(entry.key).await {
                        return Ok(());
                    }
                }
                token = page.next_token;
                if token.is_none() {
                    break;
                }
            }
        }
        // What this node keeps (AIS-local objects, cached copies).
        Some(Names::Prefix(prefix)) => {
            let mut after = String::new();
            loop {
                let walk = crate::data::Walk {
                    bck: src.bck.clone(),
                    prefix: prefix.clone(),
                    delimiter: None,
                    after: after.clone(),
                    max: 1000,
                    versions: false,
                    after_inclusive: false,
                };
                let page =
                    crate::data::walk_local(state, walk).await.map_err(|e| format!("walking {}: {e}", src.bck))?;
                for (key, _) in page.objects {
                    after.clone_from(&key);
                    if !send(key).await {
                        return Ok(());
                    }
                }
                if !page.truncated {
                    break;
                }
            }
        }
    }
    Ok(())
}

/// Copies one object; `None` when there was nothing to copy (not held, in a cached-only copy; a dry run).
async fn copy_one(
    state: &SharedState,
    src: &BucketEntry,
    dst: &BucketEntry,
    spec: &CopySpec,
    name: &str,
) -> Result<Option<u64>, crate::data::Error> {
    use crate::data::Error;
    let dest_key = format!("{}{name}", spec.prepend);
    crate::s3::ctx::check_key(&dest_key)
        .map_err(|_| Error::InvalidProps(format!("invalid destination name {dest_key:?}")))?;
    if src.bck.is_remote() && spec.cached_only && state.store.head(&src.bck, name).is_err() {
        return Ok(None);
    }
    let read =
        crate::data::read(state, src, name, crate::data::ReadOpts { range: None, latest: false, with_body: true })
            .await?;
    if spec.dry_run {
        return Ok(Some(read.meta.size));
    }
    let key = read.meta.sse.as_ref().map(|s| crate::data::sse::data_key(&state.sse, s, None)).transpose()?;
    let size = read.meta.size;
    let blob = crate::s3::object::into_plain_blob(read.body, &read.meta, key, 0, size);
    let (st, bck, k) = (state.clone(), dst.bck.clone(), dest_key.clone());
    let staged = crate::data::blocking(move || Ok(st.store.stage(&bck, &k)?)).await?;
    let received = crate::data::receive::receive(&staged, Some(blob), &[], crate::data::receive::MAX_OBJECT_SIZE)
        .await
        .map_err(|e| match e {
            crate::data::receive::Interrupted::Data(e) => e,
            crate::data::receive::Interrupted::Body(e) => Error::Unavailable(format!("reading {name}: {e}")),
        })?;
    if received.size != size {
        return Err(Error::Unavailable(format!("{name}: read {} of {size} bytes", received.size)));
    }
    // What S3 reports about the object travels with it; what described its stored form does not.
    let meta = trove_cache::ObjMeta {
        key: dest_key.clone(),
        size,
        etag: received.etag(),
        mtime_ms: crate::data::now_ms(),
        content_type: read.meta.content_type.clone(),
        content_encoding: read.meta.content_encoding.clone(),
        content_disposition: read.meta.content_disposition.clone(),
        content_language: read.meta.content_language.clone(),
        cache_control: read.meta.cache_control.clone(),
        expires: read.meta.expires.clone(),
        user: read.meta.user.clone(),
        tags: read.meta.tags.clone(),
        ..Default::default()
    };
    super::store(state, dst, staged, meta).await?;
    Ok(Some(size))
}
