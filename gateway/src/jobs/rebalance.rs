//! Rebalance: after the set of active nodes changes, every node hands the AIS-local objects it holds but no
//! longer owns over to their owners (HRW under the new map), as a job (`g<map version>`, AIS's naming) with
//! progress in `what=status`. Cached copies of cloud buckets do not move (the new owner refills them).
//!
//! Reads stay correct meanwhile: an owner that lacks an object asks the other nodes (get-from-neighbour). A
//! moved copy is dropped only after the owner has it, and only after a grace period, so a listing that walks
//! the nodes while objects move still sees each key (the merge counts it once). A PUT on the owner wins over a
//! late move (newer copy kept), and a DELETE on the owner refuses any copy moved in after it. A newer map change
//! stops the running rebalance and starts the next; a restarted node starts one too, so an interrupted
//! rebalance resumes by walking what is still misplaced.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use trove_cache::ObjMeta;
use trove_namespace::{Bck, BucketEntry};

use super::{spawn, Job};
use crate::data::peers::{hand_over, Handed};
use crate::state::SharedState;

pub const REBALANCE: &str = "rebalance";

/// How long a moved object's old copy stays (for listings in flight) before it is dropped.
const GRACE: Duration = Duration::from_secs(5);
/// Objects in flight to their owners at once.
const PARALLEL: usize = 4;

/// What decides placement: the active nodes and their weights. A change of anything else in the map (a URL,
/// a node joining as `joining`) moves nothing.
fn placement(state: &SharedState) -> Vec<(String, u64)> {
    state.cluster.map().smap.active().map(|n| (n.id.clone(), n.capacity)).collect()
}

/// Watches the cluster map for the life of the node and runs a rebalance after each placement change (and once
/// at start, to finish one a restart interrupted).
pub async fn watch(state: SharedState) {
    let mut map = state.cluster.watch();
    let mut current: Option<Arc<Job>> = None;
    let mut last = Vec::new();
    loop {
        let now = placement(&state);
        let several = state.cluster.map().smap.nodes.len() > 1;
        if now != last && several {
            if let Some(j) = current.take() {
                j.abort();
            }
            current = Some(start(&state, state.cluster.map().smap.version));
        }
        last = now;
        if map.changed().await.is_err() {
            return;
        }
    }
}

/// Starts this node's rebalance for map `version`.
pub fn start(state: &SharedState, version: u64) -> Arc<Job> {
    let job = state.jobs.create(REBALANCE, &Bck::ais(""), Some(&format!("g{version}")));
    let (st, j) = (state.clone(), job.clone());
    spawn(job.clone(), async move { run(&st, &j).await });
    job
}

/// Most walks one rebalance makes: a write routed by a node that had not applied the new map yet can land on
/// a former owner after the walk passed its key, so walks repeat until one finds nothing to move.
const MAX_WALKS: usize = 10;

async fn run(state: &SharedState, job: &Arc<Job>) -> Result<(), String> {
    let mut moved: Vec<(Bck, String, ObjMeta, Instant)> = Vec::new();
    for walk in 0..MAX_WALKS {
        if walk > 0 {
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        let before = job.objs.load(Ordering::Relaxed) + job.failed.load(Ordering::Relaxed);
        walk_once(state, job, &mut moved).await?;
        if job.aborted() {
            return Ok(());
        }
        if job.objs.load(Ordering::Relaxed) + job.failed.load(Ordering::Relaxed) == before {
            break;
        }
    }
    // The last copies go once their grace is over (unless a newer rebalance or a stop came first).
    while !moved.is_empty() && !job.aborted() {
        tokio::time::sleep(Duration::from_millis(500)).await;
        drop_moved(state, &mut moved, GRACE).await;
    }
    Ok(())
}

/// One walk over this node's AIS-local objects, handing over those another node owns.
async fn walk_once(
    state: &SharedState,
    job: &Arc<Job>,
    moved: &mut Vec<(Bck, String, ObjMeta, Instant)>,
) -> Result<(), String> {
    let buckets: Vec<BucketEntry> =
        state.registry.snapshot().buckets.values().filter(|e| !e.bck.provider.is_remote()).cloned().collect();
    for entry in buckets {
        let mut pos: Vec<u8> = Vec::new();
        loop {
            if job.aborted() {
                return Ok(());
            }
            let (st, bck, from) = (state.clone(), entry.bck.clone(), pos.clone());
            let batch = tokio::task::spawn_blocking(move || st.store.list(&bck, &from, "", 256))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
            let Some((last, _)) = batch.last() else { break };
            pos = last.as_bytes().to_vec();
            // Copies handed over already wait out their grace here: not moved twice.
            let waiting = |key: &str| moved.iter().any(|(b, k, ..)| *b == entry.bck && k == key);
            let todo: Vec<String> = batch.into_iter().map(|(key, _)| key).filter(|k| !waiting(k)).collect();
            let outcomes = futures::stream::iter(todo.into_iter().map(|key| {
                let entry = entry.clone();
                async move { (move_one(state, &entry, &key).await, key) }
            }))
            .buffer_unordered(PARALLEL)
            .collect::<Vec<_>>()
            .await;
            for (outcome, key) in outcomes {
                match outcome {
                    Ok(Some((_, meta))) => {
                        job.objs.fetch_add(1, Ordering::Relaxed);
                        job.bytes.fetch_add(meta.size, Ordering::Relaxed);
                        moved.push((entry.bck.clone(), key, meta, Instant::now()));
                    }
                    Ok(None) => {}
                    Err(e) => {
                        // Left where it is (still readable from here); the next walk tries again.
                        job.failed.fetch_add(1, Ordering::Relaxed);
                        job.note_error(format!("{}/{key}: {e}", entry.bck));
                    }
                }
            }
            drop_moved(state, moved, GRACE).await;
        }
    }
    Ok(())
}

/// Hands `key` over to its owner when that is another node; `None` when it stays (owned here, or gone).
async fn move_one(
    state: &SharedState,
    entry: &BucketEntry,
    key: &str,
) -> Result<Option<(Handed, ObjMeta)>, crate::data::Error> {
    let map = state.cluster.map();
    let Some(owner) = crate::cluster::ranked(&map, &entry.bck, key).first().map(|n| (*n).clone()) else {
        return Ok(None);
    };
    if owner.id == state.node_id {
        return Ok(None);
    }
    hand_over(state, &owner, entry, key).await
}

/// Drops the old copies whose grace is over, each only if it is still the copy that was moved (a write here
/// since then is newer and stays for the next rebalance to move).
async fn drop_moved(state: &SharedState, moved: &mut Vec<(Bck, String, ObjMeta, Instant)>, grace: Duration) {
    let due: Vec<_> = {
        let (due, keep): (Vec<_>, Vec<_>) = moved.drain(..).partition(|(.., at)| at.elapsed() >= grace);
        *moved = keep;
        due
    };
    if due.is_empty() {
        return;
    }
    let st = state.clone();
    let _ = tokio::task::spawn_blocking(move || {
        for (bck, key, meta, _) in due {
            let unchanged = |cur: &ObjMeta| cur.etag == meta.etag && cur.mtime_ms == meta.mtime_ms;
            if let Err(e) = st.store.delete_if(&bck, &key, unchanged) {
                tracing::warn!(bucket = %bck, key, error = %e, "could not drop a moved object's old copy");
            }
        }
    })
    .await;
}
