//! Rebalance and repair: one walk that makes every copy this node holds sit where the committed map places
//! it. An AIS-local object belongs on the first `mirror.copies` active nodes in HRW order (one without
//! mirroring); a cached copy of a cloud bucket moves only when its bucket says `cache.move_warm_copies`. For
//! each object the walk asks the nodes that should hold it which copies they lack (one probe per node and
//! batch), sends only those, and drops its own copy when it is misplaced, stale or deleted elsewhere. It runs
//! as a job (`g<map version>`, AIS's naming) after each placement change (nodes joining, leaving, going down or
//! coming back; a bucket's mirroring changed), at start (so an interrupted one resumes by walking what is
//! still misplaced), when a mirrored write lost a copy, and when an operator starts one. A newer change stops the running walk and starts
//! the next. Sends are throttled (`[rebalance] rate_bytes_per_sec`).
//!
//! Reads stay correct meanwhile: an owner that lacks an object asks the other nodes (get-from-neighbour). A
//! moved copy is dropped only after its new holders have it, and only after a grace period, so a listing that
//! walks the nodes while objects move still sees each key (the merge counts it once). A newer write wins over
//! a late copy, and a delete (tombstones) over any copy written before it.
//!
//! The walk also ends a node's `down` and `leaving` states: a node marked down comes back as active once a
//! walk finds nothing of its own left to reconcile; a leaving node removes itself from the cluster once it has
//! handed everything over.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use trove_cache::ObjMeta;
use trove_cluster::{NodeInfo, NodeState};
use trove_namespace::{Bck, BucketEntry};

use super::{spawn, Job};
use crate::data::copies::{hand_over, probe, Handed, Have, Probe};
use crate::state::SharedState;

pub const REBALANCE: &str = "rebalance";

/// How long a moved object's old copy stays (for listings in flight) before it is dropped.
const GRACE: Duration = Duration::from_secs(5);
/// Objects listed, probed and reconciled together.
const BATCH: usize = 256;

/// Active nodes with their capacities; buckets with their copy counts.
type Placement = (Vec<(String, u64)>, Vec<(String, usize)>);

/// What decides where copies belong: the active nodes with their weights, and the buckets whose copies move
/// (mirrored ones with their copy count, cached ones that move warm copies). A change of anything else in the
/// map moves nothing.
fn placement(state: &SharedState) -> Placement {
    let nodes = state.cluster.map().smap.active().map(|n| (n.id.clone(), n.capacity)).collect();
    let buckets = state
        .registry
        .snapshot()
        .buckets
        .iter()
        .filter(|(_, e)| e.props.copies(e.bck.is_remote()) > 1 || e.props.cache.move_warm_copies)
        .map(|(n, e)| (n.clone(), e.props.copies(e.bck.is_remote())))
        .collect();
    (nodes, buckets)
}

/// Watches the cluster map for the life of the node and runs a walk after each placement change, once at
/// start, and whenever a repair is asked for.
pub async fn watch(state: SharedState) {
    let mut map = state.cluster.watch();
    let mut current: Option<Arc<Job>> = None;
    let mut last = (Vec::new(), Vec::new());
    let mut nudged = false;
    loop {
        let now = placement(&state);
        let several = state.cluster.map().smap.nodes.len() > 1;
        if (now != last || nudged) && several {
            if let Some(j) = current.take() {
                j.abort();
            }
            let asked = if nudged { state.walk_id.lock().unwrap_or_else(|e| e.into_inner()).take() } else { None };
            let id = asked.unwrap_or_else(|| format!("g{}", state.cluster.map().smap.version));
            current = Some(start(&state, &id));
        }
        last = now;
        tokio::select! {
            changed = map.changed() => {
                if changed.is_err() {
                    return;
                }
                nudged = false;
            }
            _ = state.walk_wanted.notified() => nudged = true,
        }
    }
}

/// Starts this node's walk as job `id`.
fn start(state: &SharedState, id: &str) -> Arc<Job> {
    let job = state.jobs.create(REBALANCE, &Bck::ais(""), Some(id));
    let (st, j) = (state.clone(), job.clone());
    spawn(job.clone(), async move { run(&st, &j).await });
    job
}

/// Most walks in a row: a write routed by a node that had not applied the new map yet can land on a former
/// owner after the walk passed its key, so walks repeat until one finds nothing to send.
const MAX_WALKS: usize = 10;

/// A copy sent away (or found stale), dropped here once its grace is over.
struct Moved {
    bck: Bck,
    key: String,
    meta: ObjMeta,
    at: Instant,
}

async fn run(state: &SharedState, job: &Arc<Job>) -> Result<(), String> {
    let throttle = Throttle::new(state.rebalance.rate_bytes_per_sec);
    let mut moved: Vec<Moved> = Vec::new();
    loop {
        let mut clean = false;
        for walk in 0..MAX_WALKS {
            if walk > 0 {
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            let before = (job.objs.load(Ordering::Relaxed), job.failed.load(Ordering::Relaxed));
            walk_once(state, job, &throttle, &mut moved).await?;
            if job.aborted() {
                return Ok(());
            }
            let after = (job.objs.load(Ordering::Relaxed), job.failed.load(Ordering::Relaxed));
            if after.1 == before.1 && after.0 == before.0 {
                clean = true;
                break;
            }
        }
        // The last copies go once their grace is over (unless a newer walk or a stop came first).
        while !moved.is_empty() && !job.aborted() {
            tokio::time::sleep(Duration::from_millis(500)).await;
            drop_moved(state, &mut moved, GRACE).await;
        }
        if job.aborted() {
            return Ok(());
        }
        let mine = state.cluster.map().smap.nodes.get(&state.node_id).map(|n| n.state);
        match mine {
            Some(NodeState::Down) if clean => {
                tracing::info!("reconciled after being down: serving my share again");
                state.cluster.set_state(&state.node_id, NodeState::Active).await.map_err(|e| e.to_string())?;
                return Ok(());
            }
            Some(NodeState::Leaving) if clean => {
                tracing::info!("drained: leaving the cluster");
                state.cluster.remove(&state.node_id).await.map_err(|e| e.to_string())?;
                return Ok(());
            }
            // Not done until everything found its place: walk again after a pause.
            Some(NodeState::Down | NodeState::Leaving) => tokio::time::sleep(Duration::from_secs(5)).await,
            _ => return Ok(()),
        }
    }
}

/// One walk over the buckets whose copies move.
async fn walk_once(
    state: &SharedState,
    job: &Arc<Job>,
    throttle: &Throttle,
    moved: &mut Vec<Moved>,
) -> Result<(), String> {
    let buckets: Vec<BucketEntry> = state
        .registry
        .snapshot()
        .buckets
        .values()
        .filter(|e| !e.bck.is_remote() || e.props.cache.move_warm_copies)
        .cloned()
        .collect();
    let mut seen = std::collections::HashSet::new();
    for entry in buckets {
        // A cloud bucket attached under two names is one set of copies.
        if !seen.insert(entry.bck.clone()) {
            continue;
        }
        let mut pos: Vec<u8> = Vec::new();
        loop {
            if job.aborted() {
                return Ok(());
            }
            let (st, bck, from) = (state.clone(), entry.bck.clone(), pos.clone());
            let batch = tokio::task::spawn_blocking(move || st.store.list(&bck, &from, "", BATCH))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
            let Some((last, _)) = batch.last() else { break };
            pos = last.as_bytes().to_vec();
            // Copies handed over already wait out their grace here: not moved twice.
            let waiting = |key: &str| moved.iter().any(|m| m.bck == entry.bck && m.key == key);
            let todo: Vec<(String, ObjMeta)> = batch.into_iter().filter(|(k, _)| !waiting(k)).collect();
            reconcile(state, job, throttle, &entry, todo, moved).await;
            drop_moved(state, moved, GRACE).await;
        }
    }
    Ok(())
}

/// What the walk does with one of its copies.
enum Step {
    /// Where it belongs, as it should be.
    Stay,
    /// Send it to these nodes (they lack it); drop it here afterwards unless this node is one of its holders.
    Send(Vec<NodeInfo>, bool),
    /// Stale or deleted elsewhere: drop it here now.
    Drop,
    /// Not placed this time (a holder did not answer): the next walk tries again.
    Failed(String),
}

/// Reconciles one batch of a bucket's copies with the nodes that should hold them.
async fn reconcile(
    state: &SharedState,
    job: &Arc<Job>,
    throttle: &Throttle,
    entry: &BucketEntry,
    batch: Vec<(String, ObjMeta)>,
    moved: &mut Vec<Moved>,
) {
    let copies = entry.props.copies(entry.bck.is_remote());
    let map = state.cluster.map();
    // Each key's holders under the map, and whether this node is one.
    let mut holders: Vec<(Vec<NodeInfo>, bool)> = Vec::with_capacity(batch.len());
    let mut asks: HashMap<String, (NodeInfo, Vec<usize>)> = HashMap::new();
    for (i, (key, _)) in batch.iter().enumerate() {
        let ranked = crate::cluster::ranked(&map, &entry.bck, key);
        let mut others: Vec<NodeInfo> = ranked.iter().take(copies).map(|n| (*n).clone()).collect();
        let mine = others.iter().any(|n| n.id == state.node_id);
        others.retain(|n| n.id != state.node_id);
        for n in &others {
            asks.entry(n.id.clone()).or_insert_with(|| (n.clone(), Vec::new())).1.push(i);
        }
        holders.push((others, mine));
    }
    // One probe per node: which of these copies does it lack?
    let probes = asks.into_values().map(|(node, idx)| {
        let items = idx.iter().map(|&i| (batch[i].0.clone(), batch[i].1.mtime_ms, batch[i].1.etag.clone())).collect();
        let p = Probe { entry: entry.clone(), items };
        async move { (node.id.clone(), idx, probe(state, &node, &p).await) }
    });
    let mut answers: Vec<HashMap<String, Result<Have, String>>> = vec![HashMap::new(); batch.len()];
    for (node, idx, answer) in futures::future::join_all(probes).await {
        match answer {
            Ok(haves) => idx.iter().zip(haves).for_each(|(&i, h)| drop(answers[i].insert(node.clone(), Ok(h)))),
            Err(e) => idx.iter().for_each(|&i| drop(answers[i].insert(node.clone(), Err(e.to_string())))),
        }
    }
    let steps: Vec<Step> = holders
        .iter()
        .zip(&answers)
        .map(|((others, mine), answer)| {
            if others.is_empty() {
                // This node alone keeps it (or no node is active: nothing can be decided).
                return Step::Stay;
            }
            let mut lacking = Vec::new();
            for n in others {
                match answer.get(&n.id) {
                    Some(Ok(Have::Deleted | Have::Newer)) => return Step::Drop,
                    Some(Ok(Have::Same)) => {}
                    Some(Ok(Have::Lacks)) => lacking.push(n.clone()),
                    Some(Err(e)) => return Step::Failed(e.clone()),
                    None => return Step::Failed(format!("node {} was not asked", n.id)),
                }
            }
            match (lacking.is_empty(), mine) {
                (true, true) => Step::Stay,
                // Every holder has it already: this misplaced copy only goes.
                (true, false) => Step::Send(Vec::new(), false),
                (false, _) => Step::Send(lacking, *mine),
            }
        })
        .collect();
    let work = batch.into_iter().zip(steps).map(|((key, meta), step)| async move {
        let outcome = match step {
            Step::Stay => Ok(None),
            Step::Drop => Ok(Some(false)),
            Step::Failed(e) => Err(e),
            Step::Send(to, mine) => send_to(state, job, throttle, entry, &key, &meta, &to).await.map(|keep| {
                // A copy this node holds by placement stays; a misplaced one goes once every holder has it.
                if mine || keep {
                    None
                } else {
                    Some(true)
                }
            }),
        };
        (key, meta, outcome)
    });
    let done: Vec<_> = futures::stream::iter(work).buffer_unordered(state.rebalance.parallel).collect().await;
    let mut stale = Vec::new();
    for (key, meta, outcome) in done {
        match outcome {
            Ok(None) => {}
            // Misplaced and now held where it belongs: dropped after the grace.
            Ok(Some(true)) => moved.push(Moved { bck: entry.bck.clone(), key, meta, at: Instant::now() }),
            Ok(Some(false)) => stale.push(Moved { bck: entry.bck.clone(), key, meta, at: Instant::now() }),
            Err(e) => {
                job.failed.fetch_add(1, Ordering::Relaxed);
                state.metrics.rebalance_failures.fetch_add(1, Ordering::Relaxed);
                job.note_error(format!("{}/{key}: {e}", entry.bck));
            }
        }
    }
    // A stale or deleted copy goes at once: it must not answer a read.
    drop_moved(state, &mut stale, Duration::ZERO).await;
}

/// Sends this node's copy of `key` to the nodes that lack it; `Ok(true)` when the copy must stay here anyway
/// (a node had no room for a cached copy, or the walk was stopped).
async fn send_to(
    state: &SharedState,
    job: &Job,
    throttle: &Throttle,
    entry: &BucketEntry,
    key: &str,
    meta: &ObjMeta,
    to: &[NodeInfo],
) -> Result<bool, String> {
    let mut keep = false;
    for node in to {
        throttle.take(meta.size).await;
        // A stopped (or superseded) walk sends nothing more; what it did not send stays here.
        if job.aborted() {
            return Ok(true);
        }
        match hand_over(state, node, entry, key, &job.id).await.map_err(|e| e.to_string())? {
            None => return Ok(false),
            Some((handed, sent)) => {
                state.metrics.rebalance_sent_objects.fetch_add(1, Ordering::Relaxed);
                state.metrics.rebalance_sent_bytes.fetch_add(sent.size, Ordering::Relaxed);
                job.objs.fetch_add(1, Ordering::Relaxed);
                job.bytes.fetch_add(sent.size, Ordering::Relaxed);
                if handed == Handed::NoRoom {
                    keep = true;
                }
            }
        }
    }
    Ok(keep)
}

/// Drops the copies whose grace is over, each only if it is still the copy that was judged (a write here
/// since then is newer and stays for the next walk to place).
async fn drop_moved(state: &SharedState, moved: &mut Vec<Moved>, grace: Duration) {
    let due: Vec<Moved> = {
        let (due, keep): (Vec<_>, Vec<_>) = moved.drain(..).partition(|m| m.at.elapsed() >= grace);
        *moved = keep;
        due
    };
    if due.is_empty() {
        return;
    }
    let st = state.clone();
    let _ = tokio::task::spawn_blocking(move || {
        for m in due {
            let unchanged = |cur: &ObjMeta| cur.etag == m.meta.etag && cur.mtime_ms == m.meta.mtime_ms;
            match st.store.delete_if(&m.bck, &m.key, unchanged) {
                Ok(true) => drop(st.metrics.rebalance_dropped.fetch_add(1, Ordering::Relaxed)),
                Ok(false) => {}
                Err(e) => tracing::warn!(bucket = %m.bck, key = m.key, error = %e, "could not drop a copy"),
            }
        }
    })
    .await;
}

/// Spaces sends out to an average rate (bytes per second; 0: no limit).
struct Throttle {
    rate: u64,
    next: tokio::sync::Mutex<tokio::time::Instant>,
}

impl Throttle {
    fn new(rate: u64) -> Throttle {
        Throttle { rate, next: tokio::sync::Mutex::new(tokio::time::Instant::now()) }
    }

    async fn take(&self, bytes: u64) {
        if self.rate == 0 {
            return;
        }
        let at = {
            let mut next = self.next.lock().await;
            let at = (*next).max(tokio::time::Instant::now());
            *next = at + Duration::from_secs_f64(bytes as f64 / self.rate as f64);
            at
        };
        tokio::time::sleep_until(at).await;
    }
}
