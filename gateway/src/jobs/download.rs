//! The downloader (AIS's `/v1/download`): HTTP(S) links by name, list or brace template, or a cloud bucket's
//! objects under a prefix, fetched into a bucket as a job. The job runs on every node under one `dnl-` id and
//! each node fetches the objects it owns, so a download spreads over the cluster as the data will.
//!
//! Links are fetched through a client that reaches only what [`guard::HostPolicy`] allows. A file streams
//! from the link into a staged file and is published only when complete: an abort, a timeout or a short body
//! leaves nothing behind. An object already fetched from the same link is skipped when the server still has
//! the same file (same size and ETag or Last-Modified, asked with a HEAD), so posting an aborted request
//! again resumes it.

pub mod guard;
pub mod request;
mod status;

use status::{rfc3339, ZERO_TIME};
pub use status::{JobRecord, Status, TaskError, TaskInfo};

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::mpsc;
use trove_namespace::BucketEntry;

use self::request::{DownloadSpec, Sources};
use super::template::{Names, Template};
use super::{now_ns, spawn, Job};
use crate::cluster::Owner;
use crate::state::SharedState;

/// The job kind, as AIS lists it.
pub const DOWNLOAD: &str = "download";
/// AIS's prefix of download job ids.
pub const ID_PREFIX: &str = "dnl-";

/// User metadata a downloaded object keeps: where it came from, and what identified that file then.
const SOURCE: &str = "trove-source";
const VALIDATOR: &str = "trove-source-validator";

/// Concurrent downloads per node when a request sets no `limits.connections`.
const DEFAULT_CONNECTIONS: usize = 4;
/// Attempts per file when the failure may pass (a timeout, a reset connection, a 5xx or 429).
const ATTEMPTS: u32 = 3;
/// Finished tasks and errors a node remembers per job (the counters count them all).
const KEEP_TASKS: usize = 10_000;
/// The largest file a download stores (S3's largest object).
const MAX_FILE: u64 = 5 << 40;

/// A new job id: `dnl-` and a job id, as AIS makes them.
pub fn new_id() -> String {
    format!("{ID_PREFIX}{}", super::new_id())
}

/// A file being fetched.
#[derive(Debug)]
struct Task {
    /// `Content-Length`, when the server sent one.
    total: AtomicU64,
    downloaded: AtomicU64,
    start_ns: i64,
}

/// This node's part of one download job: the generic job (counters, abort) and what AIS reports beside.
#[derive(Debug)]
pub struct Download {
    pub job: Arc<Job>,
    pub description: String,
    /// Objects of this node's part; -1 while unknown (a backend listing).
    total: AtomicI64,
    scheduled: AtomicU64,
    all_dispatched: AtomicBool,
    current: Mutex<BTreeMap<String, Arc<Task>>>,
    finished: Mutex<VecDeque<TaskInfo>>,
    errors: Mutex<VecDeque<TaskError>>,
}

impl Download {
    pub fn finished(&self) -> bool {
        self.job.finished()
    }

    /// This node's part as AIS reports it; `tasks`: with the finished tasks and errors.
    pub fn status(&self, tasks: bool) -> Status {
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed) as i64;
        let job = JobRecord {
            id: self.job.id.clone(),
            xaction_id: self.job.id.clone(),
            description: self.description.clone(),
            started_time: rfc3339(self.job.start_ns),
            finished_time: rfc3339(self.job.end_ns()),
            finished_cnt: n(&self.job.objs) + n(&self.job.skipped),
            scheduled_cnt: n(&self.scheduled),
            skipped_cnt: n(&self.job.skipped),
            error_cnt: n(&self.job.failed),
            total: self.total.load(Ordering::Relaxed),
            all_dispatched: self.all_dispatched.load(Ordering::Relaxed),
            aborted: self.job.aborted(),
        };
        let current_tasks = lock(&self.current)
            .iter()
            .map(|(name, t)| TaskInfo {
                name: name.clone(),
                downloaded: t.downloaded.load(Ordering::Relaxed).to_string(),
                total: Some(t.total.load(Ordering::Relaxed)).filter(|n| *n > 0).map(|n| n.to_string()),
                start_time: rfc3339(t.start_ns),
                end_time: ZERO_TIME.to_owned(),
            })
            .collect();
        let (finished_tasks, download_errors) = if tasks {
            (lock(&self.finished).iter().cloned().collect(), lock(&self.errors).iter().cloned().collect())
        } else {
            (Vec::new(), Vec::new())
        };
        Status { job, current_tasks, finished_tasks, download_errors }
    }

    fn begin(&self, name: &str) -> Arc<Task> {
        self.scheduled.fetch_add(1, Ordering::Relaxed);
        let task = Arc::new(Task { total: AtomicU64::new(0), downloaded: AtomicU64::new(0), start_ns: now_ns() });
        lock(&self.current).insert(name.to_owned(), task.clone());
        task
    }

    fn end(&self, name: &str, task: &Task, outcome: Result<Fetched, String>) {
        lock(&self.current).remove(name);
        let info = TaskInfo {
            name: name.to_owned(),
            downloaded: task.downloaded.load(Ordering::Relaxed).to_string(),
            total: Some(task.total.load(Ordering::Relaxed)).filter(|n| *n > 0).map(|n| n.to_string()),
            start_time: rfc3339(task.start_ns),
            end_time: rfc3339(now_ns()),
        };
        push_capped(&self.finished, info);
        match outcome {
            Ok(Fetched::Stored(bytes)) => {
                self.job.objs.fetch_add(1, Ordering::Relaxed);
                self.job.bytes.fetch_add(bytes, Ordering::Relaxed);
            }
            Ok(Fetched::Skipped) => {
                self.job.skipped.fetch_add(1, Ordering::Relaxed);
            }
            // An abort cuts files off: they are not failures, and nothing of them was stored.
            Err(_) if self.job.aborted() => {}
            Err(error) => {
                self.job.failed.fetch_add(1, Ordering::Relaxed);
                self.job.note_error(format!("{name}: {error}"));
                push_capped(&self.errors, TaskError { name: name.to_owned(), error });
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn push_capped<T>(list: &Mutex<VecDeque<T>>, item: T) {
    let mut list = lock(list);
    if list.len() == KEEP_TASKS {
        list.pop_front();
    }
    list.push_back(item);
}

/// The node's download jobs, by id (as long as the generic job is kept).
#[derive(Debug, Default)]
pub struct Downloads(Mutex<HashMap<String, Arc<Download>>>);

impl Downloads {
    pub fn get(&self, id: &str) -> Option<Arc<Download>> {
        lock(&self.0).get(id).cloned()
    }

    pub fn all(&self) -> Vec<Arc<Download>> {
        lock(&self.0).values().cloned().collect()
    }

    /// Forgets a finished job; a running one stays (false).
    pub fn remove(&self, state: &SharedState, id: &str) -> bool {
        let mut all = lock(&self.0);
        match all.get(id) {
            Some(d) if d.finished() => {
                all.remove(id);
                state.jobs.remove(id);
                true
            }
            _ => false,
        }
    }

    fn add(&self, state: &SharedState, d: Arc<Download>) {
        let mut all = lock(&self.0);
        all.retain(|id, _| state.jobs.contains(id));
        all.insert(d.job.id.clone(), d);
    }
}

/// What fetching one object did.
enum Fetched {
    Stored(u64),
    Skipped,
}

/// What a node's workers share.
struct Ctx {
    state: SharedState,
    dst: BucketEntry,
    spec: DownloadSpec,
    client: reqwest::Client,
    download: Arc<Download>,
    timeout: Duration,
    throttle: Option<Throttle>,
}

/// Keeps a node's part of a job under its share of `bytes_per_hour`.
struct Throttle {
    bytes_per_sec: f64,
    start: Instant,
    sent: AtomicU64,
}

impl Throttle {
    async fn pass(&self, n: usize) {
        let sent = self.sent.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
        let due = Duration::from_secs_f64(sent as f64 / self.bytes_per_sec);
        if let Some(wait) = due.checked_sub(self.start.elapsed()) {
            tokio::time::sleep(wait).await;
        }
    }
}

/// Starts this node's part of a download job under `id`.
pub fn start(state: &SharedState, dst: &BucketEntry, spec: DownloadSpec, id: &str) -> Result<Arc<Job>, String> {
    let client = state.download_policy.client().map_err(|e| format!("cannot make an HTTP client: {e}"))?;
    let job = state.jobs.create(DOWNLOAD, &dst.bck, Some(id));
    let download = Arc::new(Download {
        job: job.clone(),
        description: spec.description.clone(),
        total: AtomicI64::new(0),
        scheduled: AtomicU64::new(0),
        all_dispatched: AtomicBool::new(false),
        current: Mutex::default(),
        finished: Mutex::default(),
        errors: Mutex::default(),
    });
    state.downloads.add(state, download.clone());
    let nodes = state.cluster.map().smap.nodes.len().max(1) as f64;
    let throttle = (spec.bytes_per_hour > 0).then(|| Throttle {
        bytes_per_sec: (spec.bytes_per_hour as f64 / nodes / 3600.0).max(1.0),
        start: Instant::now(),
        sent: AtomicU64::new(0),
    });
    let timeout = spec.timeout.unwrap_or(Duration::from_secs(state.download_timeout_secs.max(1)));
    let workers = if spec.connections == 0 { DEFAULT_CONNECTIONS } else { spec.connections };
    let ctx = Arc::new(Ctx { state: state.clone(), dst: dst.clone(), spec, client, download, timeout, throttle });
    let (tx, rx) = mpsc::channel::<(String, String)>(256);
    {
        let ctx = ctx.clone();
        tokio::spawn(async move {
            if let Err(e) = produce(&ctx, &tx).await {
                ctx.download.job.note_error(e);
                ctx.download.job.abort();
            }
            ctx.download.all_dispatched.store(true, Ordering::Relaxed);
        });
    }
    spawn(job.clone(), async move {
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        let workers = (0..workers).map(|_| {
            let (ctx, rx) = (ctx.clone(), rx.clone());
            async move {
                loop {
                    if ctx.download.job.aborted() {
                        return;
                    }
                    let Some((name, link)) = rx.lock().await.recv().await else { return };
                    let task = ctx.download.begin(&name);
                    let outcome = tokio::select! {
                        r = fetch(&ctx, &name, &link, &task) => r,
                        () = aborted(&ctx.download.job) => Err("aborted".into()),
                    };
                    ctx.download.end(&name, &task, outcome);
                }
            }
        });
        futures::future::join_all(workers).await;
        Ok(())
    });
    Ok(job)
}

async fn aborted(job: &Job) {
    while !job.aborted() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Sends the workers `(object name, link)` of every object this node owns (for a backend download, the
/// name twice); counts them first when that is cheap, so the job's total is known from the start.
async fn produce(ctx: &Ctx, tx: &mpsc::Sender<(String, String)>) -> Result<(), String> {
    let (state, bck) = (&ctx.state, &ctx.dst.bck);
    let mine = |name: &str| state.owner(bck, name) == Owner::Local;
    let send =
        |name: String, link: String| async move { !ctx.download.job.aborted() && tx.send((name, link)).await.is_ok() };
    match &ctx.spec.sources {
        Sources::Links(links) => {
            let owned: Vec<_> = links.iter().filter(|(n, _)| mine(n)).cloned().collect();
            ctx.download.total.store(owned.len() as i64, Ordering::Relaxed);
            for (name, link) in owned {
                if !send(name, link).await {
                    break;
                }
            }
        }
        Sources::Range { template, subdir } => {
            let Ok(Names::Template(t)) = Template::parse(template) else {
                return Err(format!("invalid template {template:?}"));
            };
            // Counting millions of names is seconds of work: off the async threads.
            let total = {
                let (t, subdir, st, bck) = (t.clone(), subdir.clone(), state.clone(), bck.clone());
                tokio::task::spawn_blocking(move || {
                    t.names()
                        .filter_map(|link| request::range_name(&subdir, &link))
                        .filter(|n| st.owner(&bck, n) == Owner::Local)
                        .count()
                })
                .await
                .map_err(|e| e.to_string())?
            };
            ctx.download.total.store(total as i64, Ordering::Relaxed);
            for (i, link) in t.names().enumerate() {
                // Most names belong to other nodes: give the thread back now and then.
                if i % 1024 == 1023 {
                    tokio::task::yield_now().await;
                }
                let Some(name) = request::range_name(subdir, &link) else { continue };
                if mine(&name) && !send(name, link).await {
                    break;
                }
            }
        }
        Sources::Backend { prefix, suffix, sync } => {
            ctx.download.total.store(-1, Ordering::Relaxed);
            let backend = crate::data::backend(state, &ctx.dst).map_err(|e| e.to_string())?;
            let mut listed = std::collections::HashSet::new();
            let mut token = None;
            loop {
                let req = trove_backends::ListRequest {
                    prefix: prefix.clone(),
                    token: token.clone(),
                    max_keys: 1000,
                    ..Default::default()
                };
                let page = backend.list(&bck.name, req).await.map_err(|e| format!("listing {bck}: {e}"))?;
                for entry in page.entries {
                    if !entry.key.ends_with(suffix.as_str()) || !mine(&entry.key) {
                        continue;
                    }
                    if *sync {
                        listed.insert(entry.key.clone());
                    }
                    if !send(entry.key.clone(), entry.key).await {
                        return Ok(());
                    }
                }
                token = page.next_token;
                if token.is_none() {
                    break;
                }
            }
            if *sync {
                drop_vanished(ctx, prefix, suffix, &listed).await?;
            }
        }
    }
    Ok(())
}

/// A synchronizing backend download drops the cached copies of objects its listing no longer has.
async fn drop_vanished(
    ctx: &Ctx,
    prefix: &str,
    suffix: &str,
    listed: &std::collections::HashSet<String>,
) -> Result<(), String> {
    let (state, bck) = (&ctx.state, &ctx.dst.bck);
    let mut after = String::new();
    loop {
        let walk = crate::data::Walk {
            bck: bck.clone(),
            prefix: prefix.to_owned(),
            delimiter: None,
            after: after.clone(),
            max: 1000,
            versions: false,
            after_inclusive: false,
        };
        let page = crate::data::walk_local(state, walk).await.map_err(|e| format!("walking {bck}: {e}"))?;
        for (key, _) in page.objects {
            after.clone_from(&key);
            if ctx.download.job.aborted() {
                return Ok(());
            }
            if !key.ends_with(suffix) || listed.contains(&key) || state.owner(bck, &key) != Owner::Local {
                continue;
            }
            state.readthrough.invalidate(bck, &key);
            let (st, b, k) = (state.clone(), bck.clone(), key.clone());
            match crate::data::blocking(move || Ok(st.store.delete(&b, &k)?)).await {
                // AIS counts an eviction as a finished task.
                Ok(_) => {
                    ctx.download.scheduled.fetch_add(1, Ordering::Relaxed);
                    ctx.download.job.objs.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    let error = format!("dropping the stale copy: {e}");
                    ctx.download.job.failed.fetch_add(1, Ordering::Relaxed);
                    push_capped(&ctx.download.errors, TaskError { name: key.clone(), error });
                }
            }
        }
        if !page.truncated {
            return Ok(());
        }
    }
}

/// Fetches one object: from its backend for a backend download, else from its link, retrying what may pass.
async fn fetch(ctx: &Ctx, name: &str, link: &str, task: &Task) -> Result<Fetched, String> {
    if let Sources::Backend { sync, .. } = &ctx.spec.sources {
        let cfg = ctx.state.readthrough.config();
        return match crate::data::prefetch(&ctx.state, &ctx.dst, name, *sync, cfg).await {
            Ok(Some(bytes)) => {
                task.downloaded.store(bytes, Ordering::Relaxed);
                Ok(Fetched::Stored(bytes))
            }
            Ok(None) => Ok(Fetched::Skipped),
            Err(e) => Err(e.to_string()),
        };
    }
    // Names from a template are made per link: checked here, as the request's own names were at the start.
    request::check_name(name)?;
    let url = request::check_link(&ctx.state.download_policy, link)?;
    if unchanged(ctx, name, &url).await {
        return Ok(Fetched::Skipped);
    }
    let mut attempt = 1;
    loop {
        match fetch_once(ctx, name, &url, task).await {
            Err(Failure::Transient(e)) if attempt < ATTEMPTS && !ctx.download.job.aborted() => {
                tracing::debug!(%url, attempt, error = %e, "a download failed, retrying");
                tokio::time::sleep(Duration::from_millis(500 << attempt)).await;
                attempt += 1;
            }
            Err(Failure::Transient(e) | Failure::Final(e)) => return Err(e),
            Ok(bytes) => return Ok(Fetched::Stored(bytes)),
        }
    }
}

enum Failure {
    /// Worth another attempt.
    Transient(String),
    Final(String),
}

/// What identifies a server's file across requests: its ETag, else its Last-Modified.
fn validator(headers: &reqwest::header::HeaderMap) -> Option<String> {
    let get = |h: reqwest::header::HeaderName| headers.get(h).and_then(|v| v.to_str().ok()).map(str::to_owned);
    get(reqwest::header::ETAG)
        .map(|e| format!("etag:{e}"))
        .or_else(|| get(reqwest::header::LAST_MODIFIED).map(|l| format!("last-modified:{l}")))
}

/// Whether the object was fetched from this link before and the server's file has not changed since.
async fn unchanged(ctx: &Ctx, name: &str, url: &reqwest::Url) -> bool {
    let (st, bck, key) = (ctx.state.clone(), ctx.dst.bck.clone(), name.to_owned());
    let Ok(Ok(meta)) = tokio::task::spawn_blocking(move || st.store.head(&bck, &key)).await else { return false };
    let (Some(source), Some(kept)) = (meta.user.get(SOURCE), meta.user.get(VALIDATOR)) else { return false };
    if source != url.as_str() {
        return false;
    }
    let mut head = ctx.client.head(url.clone()).timeout(Duration::from_secs(10));
    for (k, v) in &ctx.spec.headers {
        head = head.header(k, v);
    }
    match head.send().await {
        Ok(r) if r.status().is_success() => {
            // The header, not `content_length()`: a HEAD answer's body is empty whatever the file's size.
            let size = r.headers().get(reqwest::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse().ok());
            size.is_none_or(|n: u64| n == meta.size) && validator(r.headers()).as_ref() == Some(kept)
        }
        _ => false,
    }
}

/// One GET of a link, streamed into a staged file and stored.
async fn fetch_once(ctx: &Ctx, name: &str, url: &reqwest::Url, task: &Task) -> Result<u64, Failure> {
    let failed = |e: reqwest::Error| {
        let text = error_chain(&e);
        if text.contains("are not allowed") {
            Failure::Final(text)
        } else if e.is_timeout() || e.is_connect() || e.is_request() || e.is_body() {
            Failure::Transient(text)
        } else {
            Failure::Final(text)
        }
    };
    let mut get = ctx.client.get(url.clone()).timeout(ctx.timeout);
    for (k, v) in &ctx.spec.headers {
        get = get.header(k, v);
    }
    let resp = get.send().await.map_err(failed)?;
    let status = resp.status();
    if status == reqwest::StatusCode::NOT_FOUND || status == reqwest::StatusCode::GONE {
        return Err(Failure::Final(format!("{url} does not exist")));
    }
    if !status.is_success() {
        let e = format!("failed to download {:?}: status {}", url.as_str(), status.as_u16());
        let again = status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS;
        return Err(if again { Failure::Transient(e) } else { Failure::Final(e) });
    }
    let expected = resp.content_length();
    if let Some(n) = expected {
        if n > MAX_FILE {
            return Err(Failure::Final(format!("{url} is {n} bytes, more than an object may hold")));
        }
    }
    task.total.store(expected.unwrap_or(0), Ordering::Relaxed);
    task.downloaded.store(0, Ordering::Relaxed);
    let source_validator = validator(resp.headers());
    let content_type =
        resp.headers().get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (st, bck, key) = (ctx.state.clone(), ctx.dst.bck.clone(), name.to_owned());
    let staged = crate::data::blocking(move || Ok(st.store.stage(&bck, &key)?))
        .await
        .map_err(|e| Failure::Final(format!("cannot stage {name}: {e}")))?;
    let job = &ctx.download.job;
    let body = resp.bytes_stream().then(|chunk| async move {
        let chunk = chunk.map_err(|e| error_chain(&e))?;
        if job.aborted() {
            return Err("aborted".to_owned());
        }
        task.downloaded.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        if let Some(t) = &ctx.throttle {
            t.pass(chunk.len()).await;
        }
        Ok::<Bytes, String>(chunk)
    });
    let received =
        crate::data::receive::receive(&staged, Some(Box::pin(body)), &[], MAX_FILE).await.map_err(|e| match e {
            crate::data::receive::Interrupted::Body(e) => Failure::Transient(format!("reading {url}: {e}")),
            crate::data::receive::Interrupted::Data(e) => Failure::Final(format!("storing {name}: {e}")),
        })?;
    if expected.is_some_and(|n| n != received.size) {
        return Err(Failure::Transient(format!(
            "{url}: received {} of {} bytes",
            received.size,
            expected.unwrap_or_default()
        )));
    }
    let mut user = BTreeMap::new();
    user.insert(SOURCE.to_owned(), url.to_string());
    if let Some(v) = source_validator {
        user.insert(VALIDATOR.to_owned(), v);
    }
    let meta = trove_cache::ObjMeta {
        key: name.to_owned(),
        size: received.size,
        etag: received.etag(),
        mtime_ms: crate::data::now_ms(),
        content_type,
        user,
        ..Default::default()
    };
    super::store(&ctx.state, &ctx.dst, staged, meta)
        .await
        .map_err(|e| Failure::Final(format!("storing {name}: {e}")))?;
    Ok(received.size)
}

/// An error with its causes, which carry what happened (a refused host, a reset connection).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        source = s.source();
    }
    text
}
