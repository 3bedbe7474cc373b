//! `prefetch-listrange`: fetch objects of a remote bucket into the cache.
//!
//! Names come from one producer (the list, the template, or a single paged listing of the backend for a prefix
//! or the whole bucket — never one listing per worker) through a bounded channel to the workers. A cached copy
//! is skipped unless `latest-ver` asks to check it against the backend. Each fetch is the read-through fill, so
//! a prefetch and clients reading the same object share one backend fetch.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::{mpsc, Mutex};
use trove_backends::{Backend, ListRequest};
use trove_namespace::BucketEntry;

use super::template::{Names, Template};
use super::{spawn, Job, MultiObjMsg, StartError, PREFETCH};
use crate::state::SharedState;

/// Starts a prefetch job; errors in the message are reported before anything starts.
/// Starts this node's part of a prefetch job (the objects it owns); `id` names the cluster's job when another
/// node started it.
pub fn start(
    state: &SharedState,
    entry: &BucketEntry,
    msg: MultiObjMsg,
    id: Option<&str>,
) -> Result<Arc<Job>, StartError> {
    let backend = crate::data::backend(state, entry).map_err(|e| StartError::NoBackend(e.to_string()))?;
    let names = if msg.names.objnames.is_empty() { Some(Template::parse(&msg.names.template)?) } else { None };
    let job = state.jobs.create(PREFETCH, &entry.bck, id);
    let (tx, rx) = mpsc::channel::<String>(256);
    let explicit = names.is_none();
    {
        let (job, backend, bucket, objnames) =
            (job.clone(), backend.clone(), entry.bck.name.clone(), msg.names.objnames.clone());
        tokio::spawn(async move {
            let produced = produce(&job, &*backend, &bucket, objnames, names, &tx).await;
            if let Err(e) = produced {
                job.note_error(e);
                job.abort();
            }
        });
    }
    let (st, e, j) = (state.clone(), entry.clone(), job.clone());
    spawn(job.clone(), async move {
        let rx = Arc::new(Mutex::new(rx));
        let workers = (0..msg.workers()).map(|_| {
            let (st, e, j, rx, msg) = (st.clone(), e.clone(), j.clone(), rx.clone(), msg.clone());
            async move {
                loop {
                    if j.aborted() {
                        return;
                    }
                    let Some(name) = rx.lock().await.recv().await else { return };
                    // Every node sees every name; each fetches the ones it owns.
                    if st.owner(&e.bck, &name) != crate::cluster::Owner::Local {
                        continue;
                    }
                    let mut cfg = st.readthrough.config();
                    if msg.blob_threshold > 0 {
                        cfg.parallel_threshold = msg.blob_threshold;
                    }
                    match crate::data::prefetch(&st, &e, &name, msg.latest_ver, cfg).await {
                        Ok(Some(bytes)) => {
                            j.objs.fetch_add(1, Ordering::Relaxed);
                            j.bytes.fetch_add(bytes, Ordering::Relaxed);
                        }
                        Ok(None) => {
                            j.skipped.fetch_add(1, Ordering::Relaxed);
                        }
                        // A template may name objects that do not exist; a list names them on purpose.
                        Err(crate::data::Error::NoSuchKey) if !explicit => {
                            j.skipped.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(err) => {
                            j.failed.fetch_add(1, Ordering::Relaxed);
                            j.note_error(format!("{name}: {err}"));
                            if !msg.coer {
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

/// Feeds the names to the workers; a prefix (or the whole bucket) is one paged listing of the backend.
async fn produce(
    job: &Job,
    backend: &dyn Backend,
    bucket: &str,
    objnames: Vec<String>,
    names: Option<Names>,
    tx: &mpsc::Sender<String>,
) -> Result<(), String> {
    match names {
        None => {
            for n in objnames {
                if job.aborted() || tx.send(n).await.is_err() {
                    break;
                }
            }
        }
        Some(Names::Template(t)) => {
            for n in t.names() {
                if job.aborted() || tx.send(n).await.is_err() {
                    break;
                }
            }
        }
        Some(Names::Prefix(prefix)) => {
            let mut token = None;
            loop {
                let req =
                    ListRequest { prefix: prefix.clone(), token: token.clone(), max_keys: 1000, ..Default::default() };
                let page = backend.list(bucket, req).await.map_err(|e| format!("listing {bucket}: {e}"))?;
                for entry in page.entries {
                    if job.aborted() || tx.send(entry.key).await.is_err() {
                        return Ok(());
                    }
                }
                token = page.next_token;
                if token.is_none() {
                    break;
                }
            }
        }
    }
    Ok(())
}
