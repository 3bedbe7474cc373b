//! Jobs (AIS "xactions"): prefetch and evict over a list of names, a template, a prefix or a whole bucket.
//!
//! A job runs in its own task with bounded concurrency, counts objects and bytes done, skipped and failed,
//! can be stopped, and stays queryable for a while after it ends. IDs are short random strings, as AIS's.

mod evict;
mod prefetch;
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
    #[error("provider {0} is not set up on this node")]
    NoProvider(&'static str),
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
}

pub fn now_ns() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64
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

    pub fn create(&self, kind: &'static str, bck: &Bck) -> Arc<Job> {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_";
        let id: String = (0..9).map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char).collect();
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
        });
        let mut all = self.all.lock().unwrap_or_else(|e| e.into_inner());
        let horizon = now_ns() - self.keep.as_nanos() as i64;
        all.retain(|_, j| !j.finished() || j.end_ns() > horizon);
        all.insert(id, job.clone());
        job
    }

    pub fn get(&self, id: &str) -> Option<Arc<Job>> {
        self.all.lock().unwrap_or_else(|e| e.into_inner()).get(id).cloned()
    }

    /// Jobs matching `kind` (when given), newest first.
    pub fn list(&self, kind: Option<&str>) -> Vec<Arc<Job>> {
        let all = self.all.lock().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<_> = all.values().filter(|j| kind.is_none_or(|k| k == j.kind)).cloned().collect();
        v.sort_by_key(|j| std::cmp::Reverse(j.start_ns));
        v
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
