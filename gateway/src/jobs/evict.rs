//! `evict-listrange`: drop cached copies of a remote bucket's objects; the backend is never touched. Names come
//! from the list, the template, or (prefix / whole bucket) a walk of the cached copies themselves.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use trove_namespace::BucketEntry;

use super::template::{Names, Template};
use super::{spawn, Job, MultiObjMsg, StartError, EVICT};
use crate::state::SharedState;

/// Starts this node's part of an evict job: its own cached copies (whoever owns the object: a copy filled
/// while the owner was down is dropped too); `id` names the cluster's job when another node started it.
pub fn start(
    state: &SharedState,
    entry: &BucketEntry,
    msg: MultiObjMsg,
    id: Option<&str>,
) -> Result<Arc<Job>, StartError> {
    let names = if msg.names.objnames.is_empty() { Some(Template::parse(&msg.names.template)?) } else { None };
    let job = state.jobs.create(EVICT, &entry.bck, id);
    let (st, e, j) = (state.clone(), entry.clone(), job.clone());
    spawn(job.clone(), async move {
        // Blocking store work, in batches, off the async threads.
        tokio::task::spawn_blocking(move || {
            let evict = |key: &str| -> Result<(), String> {
                st.readthrough.invalidate(&e.bck, key);
                match st.store.head(&e.bck, key) {
                    Ok(m) => {
                        if st.store.delete(&e.bck, key).map_err(|err| format!("{key}: {err}"))? {
                            j.objs.fetch_add(1, Ordering::Relaxed);
                            j.bytes.fetch_add(m.size, Ordering::Relaxed);
                        }
                    }
                    // A missing copy counts once in the cluster: on the object's owner.
                    Err(trove_cache::Error::NotFound) if st.owner(&e.bck, key) == crate::cluster::Owner::Local => {
                        j.skipped.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(trove_cache::Error::NotFound) => {}
                    Err(err) => return Err(format!("{key}: {err}")),
                }
                Ok(())
            };
            let run = |key: &str| -> bool {
                if j.aborted() {
                    return false;
                }
                if let Err(err) = evict(key) {
                    j.failed.fetch_add(1, Ordering::Relaxed);
                    j.note_error(err);
                    if !msg.coer {
                        j.abort();
                        return false;
                    }
                }
                true
            };
            match names {
                None => {
                    for n in &msg.names.objnames {
                        if !run(n) {
                            break;
                        }
                    }
                }
                Some(Names::Template(t)) => {
                    for n in t.names() {
                        if !run(&n) {
                            break;
                        }
                    }
                }
                Some(Names::Prefix(prefix)) => {
                    let mut pos: Vec<u8> = Vec::new();
                    loop {
                        let batch = st.store.list(&e.bck, &pos, &prefix, 1000).map_err(|err| err.to_string())?;
                        let Some((last, _)) = batch.last() else { break };
                        pos = last.as_bytes().to_vec();
                        if !batch.iter().all(|(k, _)| run(k)) {
                            break;
                        }
                    }
                }
            }
            Ok(())
        })
        .await
        .map_err(|err| err.to_string())?
    });
    Ok(job)
}
