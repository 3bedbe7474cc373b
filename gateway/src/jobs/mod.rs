//! Jobs (AIS "xactions"): prefetch, evict and copy over a list of names, a template, a prefix or a whole
//! bucket; downloads of links into a bucket.
//!
//! A job runs in its own task with bounded concurrency, counts objects and bytes done, skipped and failed,
//! can be stopped, and stays queryable for a while after it ends. IDs are short random strings, as AIS's.
//! In a cluster one job runs on every node under one ID, each node handling the objects it owns; nodes
//! report their part as a [`JobView`] and the views of one ID add up to the cluster's job.

pub mod archive;
pub mod copy;
pub mod download;
mod evict;
pub mod lifecycle;
mod prefetch;
pub mod rebalance;
pub mod template;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use trove_namespace::Bck;

pub use evict::start as start_evict;
pub use prefetch::start as start_prefetch;

pub use trove_ais::MultiObjMsg;

/// Why a job could not start; the message's mistakes are reported before anything runs.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Template(#[from] template::TemplateError),
    #[error("{0}")]
    NoBackend(String),
}

pub const PREFETCH: &str = trove_ais::action::PREFETCH;
pub const EVICT: &str = trove_ais::action::EVICT;

/// One job and its counters.
#[derive(Debug)]
pub struct Job {
    pub id: String,
    pub kind: &'static str,
    pub bck: Bck,
    pub start_ns: i64,
    /// 0 while running.
    end_ns: AtomicI64,
    aborted: AtomicBool,
    err: Mutex<Option<String>>,
    pub objs: AtomicU64,
    pub bytes: AtomicU64,
    pub skipped: AtomicU64,
    pub failed: AtomicU64,
    /// Objects and bytes other nodes sent this node's part of the job (a rebalance's incoming copies).
    pub in_objs: AtomicU64,
    pub in_bytes: AtomicU64,
}

pub fn now_ns() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64
}

/// A new job id: nine random characters, as AIS's short ids.
pub fn new_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_";
    (0..9).map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char).collect()
}

/// A job time (ns since the Unix epoch) as AIS reports it: RFC 3339 with nine fraction digits, so that times
/// also compare as strings.
pub fn rfc3339(ns: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(ns.into()).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.nanosecond()
    )
}

impl Job {
    pub fn finished(&self) -> bool {
        self.end_ns.load(Ordering::Acquire) != 0
    }

    pub fn end_ns(&self) -> i64 {
        self.end_ns.load(Ordering::Acquire)
    }

    pub fn aborted(&self) -> bool {
        self.aborted.load(Ordering::Acquire)
    }

    pub fn error(&self) -> Option<String> {
        self.err.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Records the first error; the job goes on unless the caller stops it.
    pub fn note_error(&self, e: String) {
        let mut err = self.err.lock().unwrap_or_else(|e| e.into_inner());
        if err.is_none() {
            *err = Some(e);
        }
    }

    /// Asks the job to stop; it ends after the objects in flight.
    pub fn abort(&self) {
        self.aborted.store(true, Ordering::Release);
    }

    fn finish(&self) {
        let _ = self.end_ns.compare_exchange(0, now_ns().max(1), Ordering::AcqRel, Ordering::Acquire);
    }
}

/// All jobs of the node: running ones, and finished ones for `keep`.
#[derive(Debug)]
pub struct Jobs {
    all: Mutex<HashMap<String, Arc<Job>>>,
    keep: Duration,
}

impl Jobs {
    pub fn new(keep: Duration) -> Jobs {
        Jobs { all: Mutex::default(), keep }
    }

    /// A new job; `id` is given when another node started the cluster's job.
    pub fn create(&self, kind: &'static str, bck: &Bck, id: Option<&str>) -> Arc<Job> {
        let id: String = id.map(str::to_owned).unwrap_or_else(new_id);
        let job = Arc::new(Job {
            id: id.clone(),
            kind,
            bck: bck.clone(),
            start_ns: now_ns(),
            end_ns: AtomicI64::new(0),
            aborted: AtomicBool::new(false),
            err: Mutex::new(None),
            objs: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            in_objs: AtomicU64::new(0),
            in_bytes: AtomicU64::new(0),
        });
        let mut all = self.all.lock().unwrap_or_else(|e| e.into_inner());
        let horizon = now_ns() - self.keep.as_nanos() as i64;
        all.retain(|_, j| !j.finished() || j.end_ns() > horizon);
        all.insert(id, job.clone());
        job
    }

    pub fn contains(&self, id: &str) -> bool {
        self.all.lock().unwrap_or_else(|e| e.into_inner()).contains_key(id)
    }

    pub fn remove(&self, id: &str) {
        self.all.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
    }

    /// Jobs matching `kind` (when given), newest first.
    pub fn list(&self, kind: Option<&str>) -> Vec<Arc<Job>> {
        let all = self.all.lock().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<_> = all.values().filter(|j| kind.is_none_or(|k| k == j.kind)).cloned().collect();
        v.sort_by_key(|j| std::cmp::Reverse(j.start_ns));
        v
    }
}

/// One node's part of a job, as nodes exchange it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct JobView {
    pub id: String,
    pub kind: String,
    pub bck: Bck,
    pub start_ns: i64,
    /// 0 while running.
    pub end_ns: i64,
    pub aborted: bool,
    pub err: Option<String>,
    pub objs: u64,
    pub bytes: u64,
    pub skipped: u64,
    pub failed: u64,
    #[serde(default)]
    pub in_objs: u64,
    #[serde(default)]
    pub in_bytes: u64,
}

impl Job {
    pub fn view(&self) -> JobView {
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
        JobView {
            id: self.id.clone(),
            kind: self.kind.to_owned(),
            bck: self.bck.clone(),
            start_ns: self.start_ns,
            end_ns: self.end_ns(),
            aborted: self.aborted(),
            err: self.error(),
            objs: n(&self.objs),
            bytes: n(&self.bytes),
            skipped: n(&self.skipped),
            failed: n(&self.failed),
            in_objs: n(&self.in_objs),
            in_bytes: n(&self.in_bytes),
        }
    }
}

impl JobView {
    pub fn finished(&self) -> bool {
        self.end_ns != 0
    }

    /// The nodes' parts of each job added up into the cluster's job (running while any part runs), newest
    /// first.
    pub fn merge(parts: impl IntoIterator<Item = JobView>) -> Vec<JobView> {
        let mut by_id: HashMap<String, JobView> = HashMap::new();
        for p in parts {
            match by_id.get_mut(&p.id) {
                None => {
                    by_id.insert(p.id.clone(), p);
                }
                Some(j) => {
                    j.start_ns = j.start_ns.min(p.start_ns);
                    j.end_ns = if j.end_ns == 0 || p.end_ns == 0 { 0 } else { j.end_ns.max(p.end_ns) };
                    j.aborted |= p.aborted;
                    if j.err.is_none() {
                        j.err = p.err;
                    }
                    j.objs += p.objs;
                    j.bytes += p.bytes;
                    j.skipped += p.skipped;
                    j.failed += p.failed;
                    j.in_objs += p.in_objs;
                    j.in_bytes += p.in_bytes;
                }
            }
        }
        let mut all: Vec<JobView> = by_id.into_values().collect();
        all.sort_by_key(|j| std::cmp::Reverse(j.start_ns));
        all
    }
}

/// Runs `work` for a job and marks it finished whatever happens.
pub(crate) fn spawn(job: Arc<Job>, work: impl std::future::Future<Output = Result<(), String>> + Send + 'static) {
    tokio::spawn(async move {
        if let Err(e) = work.await {
            job.note_error(e);
        }
        job.finish();
        tracing::info!(
            id = %job.id, kind = job.kind, objs = job.objs.load(Ordering::Relaxed),
            failed = job.failed.load(Ordering::Relaxed), aborted = job.aborted(), "job finished"
        );
    });
}

/// Stores a staged object as `meta.key` of `dst` where that key belongs: here when this node owns it, else
/// sent to its owner (the metadata travels with it); a cloud destination is written through to its backend.
/// In a versioned bucket the object becomes the key's new version.
pub(crate) async fn store(
    state: &crate::state::SharedState,
    dst: &trove_namespace::BucketEntry,
    staged: trove_cache::Staged,
    meta: trove_cache::ObjMeta,
) -> Result<(), crate::data::Error> {
    use crate::cluster::Owner;
    match state.owner(&dst.bck, &meta.key) {
        Owner::Local => {
            crate::data::put(state, dst, staged, meta, None).await?;
        }
        Owner::Remote(_) if dst.bck.is_remote() => {
            // The backend gets it from here; its owner caches it when first read.
            let mut meta = meta;
            crate::data::write_through(state, dst, &staged, &mut meta).await?;
        }
        Owner::Remote(node) => {
            // The version is made here, as a write received here would make it; the owner keeps it as sent.
            let mut meta = meta;
            crate::data::versions::stamp(dst, &mut meta);
            let token = crate::data::copies::stage_on(state, &node, dst, &staged, &meta).await?;
            crate::data::copies::finish_on(state, &node, token, true).await?;
        }
    }
    Ok(())
}
