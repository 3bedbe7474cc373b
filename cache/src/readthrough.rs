//! Read-through of remote buckets: cold GETs fill the cache while clients read.
//!
//! A cold GET starts a *fill*: one backend fetch streamed into a work file, committed as a cached copy (with
//! the backend's ETag, version and headers) when the last byte is on disk. Every client of that object —
//! the one that started the fill and any number arriving while it runs — reads the work file behind the
//! writer through its own descriptor, so clients receive bytes as they arrive and the backend is asked once
//! (single flight). A fill runs in its own task: a client that disconnects does not stop it. Objects above a
//! size threshold are fetched as parallel ranged reads; the first response's stream supplies the first chunk,
//! so small objects cost exactly one backend request. A failed fill removes its work file: no partial object
//! is ever visible.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::watch;
use trove_backends::{Backend, ByteRange, ByteStream, GetOptions};
use trove_namespace::Bck;

use crate::{Error, ObjMeta, Result, Store};

/// The largest object S3 (and so a cache of it) holds: 5 TiB.
pub const MAX_OBJECT_SIZE: u64 = 5 << 40;

/// How cold objects are fetched.
#[derive(Debug, Clone, Copy)]
pub struct FetchConfig {
    /// Objects larger than this are fetched with parallel ranged reads.
    pub parallel_threshold: u64,
    /// Size of one ranged read.
    pub chunk_size: u64,
    /// Ranged reads in flight per object.
    pub workers: usize,
}

impl Default for FetchConfig {
    fn default() -> Self {
        FetchConfig { parallel_threshold: 64 << 20, chunk_size: 16 << 20, workers: 4 }
    }
}

/// What the read-through path did, for metrics.
#[derive(Debug, Default)]
pub struct Counters {
    /// Fills started, by provider (`Provider as usize`): backend object fetches on behalf of cold GETs, one per
    /// object however many readers.
    pub cold_gets: [AtomicU64; 4],
    /// Bytes written into the cache by fills.
    pub cold_bytes: AtomicU64,
    /// Fills that failed.
    pub cold_failures: AtomicU64,
}

#[derive(Debug, Clone)]
enum State {
    Starting,
    Streaming { written: u64 },
    Done,
    Failed(Failure),
}

/// Why a fill failed: the backend's answer (passed on to every reader as such) or a local problem.
#[derive(Debug, Clone)]
enum Failure {
    Backend(trove_backends::Error),
    /// The mountpath filled up (readers get 507, not 500).
    NoSpace(Arc<std::path::PathBuf>),
    Local(Arc<String>),
}

impl Failure {
    fn of(e: Error) -> Failure {
        match e {
            Error::Backend(b) => Failure::Backend(b),
            Error::NoSpace { path } => Failure::NoSpace(Arc::new(path)),
            other => Failure::Local(Arc::new(other.to_string())),
        }
    }

    fn error(&self) -> Error {
        match self {
            Failure::Backend(b) => Error::Backend(b.clone()),
            Failure::NoSpace(p) => Error::NoSpace { path: p.to_path_buf() },
            Failure::Local(m) => Error::Internal(m.to_string()),
        }
    }
}

/// One object being fetched into the cache.
pub struct Fill {
    rx: watch::Receiver<State>,
    meta: OnceLock<ObjMeta>,
    file: OnceLock<Arc<File>>,
    /// Set when a write or delete of the object overtook this fill: its bytes must not become the cached copy.
    stale: Arc<AtomicBool>,
    /// Set by [`ReadThrough::abandon`]: the fill stops writing at its next chunk.
    abandoned: AtomicBool,
    /// Every byte of the object is in the work file.
    written_all: AtomicBool,
}

type Key = (Bck, String);

pub struct ReadThrough {
    store: Arc<Store>,
    inflight: Mutex<HashMap<Key, Arc<Fill>>>,
    cfg: FetchConfig,
    counters: Arc<Counters>,
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| Error::Internal(format!("blocking task: {e}")))?
}

impl Fill {
    /// Waits until the backend answered; returns the object's metadata, or the backend's refusal.
    pub async fn started(&self) -> Result<ObjMeta> {
        let mut rx = self.rx.clone();
        loop {
            let st = rx.borrow_and_update().clone();
            match st {
                State::Starting => {}
                State::Failed(f) => return Err(f.error()),
                State::Streaming { .. } | State::Done => {
                    return self.meta.get().cloned().ok_or_else(|| Error::Internal("fill without metadata".into()))
                }
            }
            if rx.changed().await.is_err() {
                return Err(Error::Internal("cold GET abandoned".into()));
            }
        }
    }

    /// Waits for the whole object to be cached.
    pub async fn finished(&self) -> Result<()> {
        let mut rx = self.rx.clone();
        loop {
            let st = rx.borrow_and_update().clone();
            match st {
                State::Done => return Ok(()),
                State::Failed(f) => return Err(f.error()),
                _ => {}
            }
            if rx.changed().await.is_err() {
                return Err(Error::Internal("cold GET abandoned".into()));
            }
        }
    }

    /// Bytes `[start, end)` as the fill writes them. Call after [`Fill::started`] succeeded.
    pub fn reader(self: &Arc<Self>, start: u64, end: u64) -> ByteStream {
        Box::pin(futures::stream::unfold((self.clone(), start), move |(fill, pos)| async move {
            if pos >= end {
                return None;
            }
            let size = fill.meta.get().map_or(0, |m| m.size);
            let mut rx = fill.rx.clone();
            // Wait for a worthwhile amount (or the end of what is wanted): each read is a system call and a
            // frame to the client.
            let want = (pos + MIN_READ).min(end);
            // The read that reaches the object's end also waits for the commit: once a client has the whole
            // object, the cached copy is in place, so its next request (a DELETE, a PUT) cannot be overtaken
            // by this fill.
            let last = want >= size;
            let avail = loop {
                let st = rx.borrow_and_update().clone();
                match st {
                    State::Streaming { written } if written >= want && !last => break written,
                    State::Done => break size,
                    // All bytes arrived; only publishing the copy failed: the bytes are still right.
                    State::Failed(_) if last && fill.written_all.load(Ordering::Acquire) => break size,
                    State::Failed(f) => {
                        let msg = f.error().to_string();
                        return Some((Err(std::io::Error::other(format!("cold GET failed: {msg}"))), (fill, end)));
                    }
                    _ => {}
                }
                if rx.changed().await.is_err() {
                    return Some((Err(std::io::Error::other("cold GET abandoned")), (fill, end)));
                }
            };
            let n = (avail.min(end) - pos).min(MAX_READ) as usize;
            let Some(file) = fill.file.get().cloned() else {
                return Some((Err(std::io::Error::other("cold GET without a file")), (fill, end)));
            };
            match read_at(file, pos, n).await {
                Ok(b) => Some((Ok(b), (fill, pos + n as u64))),
                Err(e) => Some((Err(e), (fill, end))),
            }
        }))
    }
}

/// A large object's ranged reads start once its first response has delivered this much.
const FIRST_BYTES: u64 = 1 << 20;

/// Reads from an open file are this large at most.
const MAX_READ: u64 = 256 << 10;
/// A reader behind a fill waits until this much is available past its position.
const MIN_READ: u64 = 64 << 10;

/// `n` bytes at `pos`: inline when they are in the page cache (they usually are: just written, or just read),
/// else on a blocking thread.
async fn read_at(file: Arc<File>, pos: u64, n: usize) -> std::io::Result<Bytes> {
    let mut buf = vec![0u8; n];
    let nowait =
        rustix::io::preadv2(&*file, &mut [std::io::IoSliceMut::new(&mut buf)], pos, rustix::io::ReadWriteFlags::NOWAIT);
    if let Ok(got) = nowait {
        if got == n {
            return Ok(Bytes::from(buf));
        }
    }
    tokio::task::spawn_blocking(move || {
        let mut buf = vec![0u8; n];
        file.read_exact_at(&mut buf, pos).map(|()| Bytes::from(buf))
    })
    .await
    .unwrap_or_else(|e| Err(std::io::Error::other(e)))
}

/// Bytes `[start, end)` of a complete file as a stream (uploads to a backend read staged files this way).
pub fn file_stream(file: Arc<File>, start: u64, end: u64) -> ByteStream {
    Box::pin(futures::stream::unfold(start, move |pos| {
        let file = file.clone();
        async move {
            if pos >= end {
                return None;
            }
            let n = (end - pos).min(MAX_READ) as usize;
            match read_at(file, pos, n).await {
                Ok(b) => Some((Ok(b), pos + n as u64)),
                Err(e) => Some((Err(e), end)),
            }
        }
    }))
}

impl ReadThrough {
    pub fn new(store: Arc<Store>, cfg: FetchConfig) -> ReadThrough {
        ReadThrough { store, inflight: Mutex::default(), cfg, counters: Arc::default() }
    }

    pub fn counters(&self) -> Arc<Counters> {
        self.counters.clone()
    }

    /// A write or delete of `key` is about to change it: the fill in flight (if any) must not publish its
    /// copy, and later reads must not join it. Call before the write's own commit or delete.
    pub fn invalidate(&self, bck: &Bck, key: &str) {
        let removed = self.inflight.lock().unwrap_or_else(|e| e.into_inner()).remove(&(bck.clone(), key.to_owned()));
        if let Some(f) = removed {
            f.stale.store(true, Ordering::Release);
        }
    }

    /// Invalidates the fill of `key` and stops it writing: nobody will read the rest (an object too large to
    /// cache is passed through instead).
    pub fn abandon(&self, bck: &Bck, key: &str) {
        let removed = self.inflight.lock().unwrap_or_else(|e| e.into_inner()).remove(&(bck.clone(), key.to_owned()));
        if let Some(f) = removed {
            f.stale.store(true, Ordering::Release);
            f.abandoned.store(true, Ordering::Release);
        }
    }

    /// Invalidates every fill of `bck` in flight (the bucket's cached copies are being dropped).
    pub fn invalidate_bucket(&self, bck: &Bck) {
        let mut map = self.inflight.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|(b, _), f| {
            if b == bck {
                f.stale.store(true, Ordering::Release);
            }
            b != bck
        });
    }

    /// The fill of `key` in flight, if any.
    pub fn in_flight(&self, bck: &Bck, key: &str) -> Option<Arc<Fill>> {
        self.inflight.lock().unwrap_or_else(|e| e.into_inner()).get(&(bck.clone(), key.to_owned())).cloned()
    }

    pub fn config(&self) -> FetchConfig {
        self.cfg
    }

    /// Starts a fill of `key` from `backend` (bucket `bck.name`), or joins the one in flight.
    pub fn fill(self: &Arc<Self>, backend: Arc<dyn Backend>, bck: &Bck, key: &str) -> Arc<Fill> {
        self.fill_with(backend, bck, key, self.cfg)
    }

    /// [`ReadThrough::fill`] with its own fetch settings (a prefetch's `blob-threshold`); a fill already in
    /// flight is joined as it is.
    pub fn fill_with(self: &Arc<Self>, backend: Arc<dyn Backend>, bck: &Bck, key: &str, cfg: FetchConfig) -> Arc<Fill> {
        let k = (bck.clone(), key.to_owned());
        let mut map = self.inflight.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = map.get(&k) {
            return f.clone();
        }
        let (tx, rx) = watch::channel(State::Starting);
        let fill = Arc::new(Fill {
            rx,
            meta: OnceLock::new(),
            file: OnceLock::new(),
            stale: Arc::new(AtomicBool::new(false)),
            abandoned: AtomicBool::new(false),
            written_all: AtomicBool::new(false),
        });
        map.insert(k.clone(), fill.clone());
        drop(map);
        self.counters.cold_gets[bck.provider as usize].fetch_add(1, Ordering::Relaxed);
        let this = self.clone();
        let f = fill.clone();
        tokio::spawn(async move {
            let tx = Arc::new(tx);
            let outcome = this.fetch(&f, &tx, backend, &k.0, &k.1, cfg).await;
            // Leave the in-flight map before announcing the end: a request that sees this fill finished must
            // not find it still there (a failed fill would answer it with the old failure).
            {
                let mut map = this.inflight.lock().unwrap_or_else(|e| e.into_inner());
                // An invalidated fill may already have been replaced by a newer one.
                if map.get(&k).is_some_and(|cur| Arc::ptr_eq(cur, &f)) {
                    map.remove(&k);
                }
            }
            match outcome {
                Ok(()) => {
                    tx.send_replace(State::Done);
                }
                Err(e) => {
                    match &e {
                        Error::Backend(
                            trove_backends::Error::NotFound { .. } | trove_backends::Error::NoSuchBucket(_),
                        ) => {
                            tracing::debug!(bucket = %k.0.name, key = %k.1, error = %e, "cold GET: not in the backend")
                        }
                        _ => tracing::warn!(bucket = %k.0.name, key = %k.1, error = %e, "cold GET failed"),
                    }
                    this.counters.cold_failures.fetch_add(1, Ordering::Relaxed);
                    tx.send_replace(State::Failed(Failure::of(e)));
                }
            }
        });
        fill
    }

    async fn fetch(
        &self,
        fill: &Fill,
        tx: &Arc<watch::Sender<State>>,
        backend: Arc<dyn Backend>,
        bck: &Bck,
        key: &str,
        cfg: FetchConfig,
    ) -> Result<()> {
        let store = self.store.clone();
        let (b, k) = (bck.clone(), key.to_owned());
        // The work file is created while the backend is asked: creating it (a directory insert, a hop to the
        // blocking pool) took ~0.4 ms of a cold GET's time to first byte when it came first.
        let (staged, first) =
            tokio::join!(blocking(move || store.stage(&b, &k)), backend.get(&bck.name, key, GetOptions::default()));
        let (staged, first) = (staged?, first?);
        let file = Arc::new(staged.file.try_clone().map_err(|e| Error::io(staged.path(), e))?);
        let meta = ObjMeta::from_backend(key, &first.meta);
        let size = meta.size;
        if size > MAX_OBJECT_SIZE {
            // S3's own limit: a backend reporting more is broken or hostile; nothing is sized from it.
            return Err(Error::Backend(trove_backends::Error::Invalid(format!("object size {size} exceeds 5 TiB"))));
        }
        let _ = fill.meta.set(meta.clone());
        let _ = fill.file.set(file.clone());
        tx.send_replace(State::Streaming { written: 0 });

        let written = if size > cfg.parallel_threshold && cfg.chunk_size > 0 {
            self.fetch_parallel(first.body, tx, &file, backend, bck, key, size, cfg, &fill.abandoned).await?
        } else {
            write_stream(first.body, &file, 0, u64::MAX, tx.clone(), &fill.abandoned).await?
        };
        if written != size {
            return Err(Error::Backend(trove_backends::Error::unavailable(format!(
                "backend sent {written} of {size} bytes"
            ))));
        }
        fill.written_all.store(true, Ordering::Release);
        self.counters.cold_bytes.fetch_add(size, Ordering::Relaxed);
        let store = self.store.clone();
        let (b, k) = (bck.clone(), key.to_owned());
        let stale = fill.stale.clone();
        blocking(move || {
            // Checked under the store's tree lock, which writers and deletes take too: either this copy lands
            // before the write (which then replaces or removes it), or the write marked it stale first.
            match store.commit_cached_if(staged, &b, &k, &meta, || !stale.load(Ordering::Acquire)) {
                Err(Error::PreconditionFailed) => Ok(()),
                other => other,
            }
        })
        .await
    }

    /// Chunk 0 from the first response, the rest as ranged reads by `workers` tasks; the readers' watermark
    /// advances over the chunks finished in order.
    #[allow(clippy::too_many_arguments)]
    async fn fetch_parallel(
        &self,
        first: ByteStream,
        tx: &Arc<watch::Sender<State>>,
        file: &Arc<File>,
        backend: Arc<dyn Backend>,
        bck: &Bck,
        key: &str,
        size: u64,
        cfg: FetchConfig,
        stop: &AtomicBool,
    ) -> Result<u64> {
        let chunk = cfg.chunk_size;
        let chunks = size.div_ceil(chunk) as usize;
        let done = Arc::new(Mutex::new(vec![false; chunks]));
        // The readers' watermark only rises: the first response streams chunk 0 into it byte by byte (so the
        // first bytes reach a client as soon as for a small object), then completed chunks in order.
        let raise = |upto: u64| {
            tx.send_if_modified(|st| match st {
                State::Streaming { written } if *written < upto => {
                    *written = upto;
                    true
                }
                _ => false,
            });
        };
        let mark = |i: usize| {
            let mut d = done.lock().unwrap_or_else(|e| e.into_inner());
            d[i] = true;
            raise(d.iter().position(|x| !x).map_or(size, |p| p as u64 * chunk));
        };
        // How the first response ended: whole (`true`) or not.
        let first_over = watch::Sender::new(None::<bool>);
        let first_chunk = async {
            let n0 = write_stream(first, file, 0, chunk, tx.clone(), stop).await;
            let whole = n0.as_ref().is_ok_and(|n| *n == chunk.min(size));
            first_over.send_replace(Some(whole));
            if !whole {
                n0?;
                return Err(Error::Backend(trove_backends::Error::unavailable("backend stream ended early")));
            }
            mark(0);
            Ok(())
        };
        let next = AtomicU64::new(1);
        let worker = || async {
            // The first response goes first: ranged reads started with it took the CPU and bandwidth its first
            // bytes needed (a 1 GiB object's time to first byte was 3× a small one's).
            let mut rx = tx.subscribe();
            let mut over = first_over.subscribe();
            let start_at = FIRST_BYTES.min(chunk);
            tokio::select! {
                _ = rx.wait_for(|st| !matches!(st, State::Streaming { written } if *written < start_at)) => {}
                _ = over.wait_for(|over| over.is_some()) => {}
            }
            // A failed first response fails the fill: nothing more to fetch.
            if *over.borrow() == Some(false) {
                return Ok(());
            }
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                if i >= chunks {
                    return Ok::<(), Error>(());
                }
                let start = i as u64 * chunk;
                let end = (start + chunk).min(size);
                let range = ByteRange::FromTo { first: start, last: Some(end - 1) };
                let r = backend.get(&bck.name, key, GetOptions { range: Some(range), if_match: None }).await?;
                // A private progress channel: readers see a chunk once it is complete.
                let (ptx, _prx) = watch::channel(State::Starting);
                let n = write_stream(r.body, file, start, end - start, Arc::new(ptx), stop).await?;
                if n != end - start {
                    return Err(Error::Backend(trove_backends::Error::unavailable("ranged read ended early")));
                }
                mark(i);
            }
        };
        // The ranged reads run alongside the first response: `workers` backend streams in all.
        let workers = cfg.workers.saturating_sub(1).max(1).min(chunks - 1);
        let (first, rest) = futures::join!(first_chunk, futures::future::join_all((0..workers).map(|_| worker())));
        first?;
        rest.into_iter().collect::<Result<Vec<()>>>()?;
        Ok(size)
    }
}

/// Writes `body` at `offset` (at most `limit` bytes) on a blocking thread fed through a bounded channel,
/// publishing progress after every write. Returns the bytes written.
async fn write_stream(
    mut body: ByteStream,
    file: &Arc<File>,
    offset: u64,
    limit: u64,
    progress: Arc<watch::Sender<State>>,
    stop: &AtomicBool,
) -> Result<u64> {
    let (chunks_tx, mut chunks_rx) = tokio::sync::mpsc::channel::<Bytes>(16);
    let f = file.clone();
    let writer = tokio::task::spawn_blocking(move || -> Result<u64> {
        let mut pos = offset;
        let io = |e| Error::io(std::path::Path::new("<cold GET work file>"), e);
        while let Some(first) = chunks_rx.blocking_recv() {
            // Everything queued meanwhile goes in the same round: fewer wake-ups of readers.
            f.write_all_at(&first, pos).map_err(io)?;
            pos += first.len() as u64;
            while let Ok(b) = chunks_rx.try_recv() {
                f.write_all_at(&b, pos).map_err(io)?;
                pos += b.len() as u64;
            }
            progress.send_replace(State::Streaming { written: pos });
        }
        Ok(pos - offset)
    });
    let mut sent = 0u64;
    let mut failure = None;
    let mut abandoned = false;
    while sent < limit {
        if stop.load(Ordering::Acquire) {
            abandoned = true;
            break;
        }
        match body.next().await {
            Some(Ok(mut b)) => {
                if sent + b.len() as u64 > limit {
                    b.truncate((limit - sent) as usize);
                }
                sent += b.len() as u64;
                if chunks_tx.send(b).await.is_err() {
                    break;
                }
            }
            Some(Err(e)) => {
                failure = Some(e);
                break;
            }
            None => break,
        }
    }
    drop(chunks_tx);
    let written = writer.await.map_err(|e| Error::Internal(format!("writer: {e}")))??;
    if abandoned {
        // Only ever for want of room (see `ReadThrough::abandon`): any other reader of this fill gets 507.
        return Err(Error::NoSpace { path: std::path::PathBuf::from("<cold GET work file>") });
    }
    match failure {
        Some(e) => Err(Error::Backend(trove_backends::Error::unavailable(format!("reading from the backend: {e}")))),
        None => Ok(written),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    use async_trait::async_trait;
    use trove_backends::{GetResult, ListPage, ListRequest, ObjectMeta, Payload};

    use super::*;

    /// A backend holding one object, serving it in small slow pieces, counting GETs; `fail_at` cuts the
    /// stream short with an error after that many bytes.
    struct Slow {
        data: Bytes,
        gets: AtomicUsize,
        fail_at: Option<usize>,
    }

    fn meta(size: u64) -> ObjectMeta {
        ObjectMeta {
            size,
            etag: "e1".into(),
            version: Some("7".into()),
            content_type: Some("x/y".into()),
            ..Default::default()
        }
    }

    #[async_trait]
    impl Backend for Slow {
        fn provider(&self) -> &'static str {
            "aws"
        }
        async fn head_bucket(&self, _: &str) -> trove_backends::Result<()> {
            Ok(())
        }
        async fn head(&self, _: &str, _: &str) -> trove_backends::Result<ObjectMeta> {
            Ok(meta(self.data.len() as u64))
        }
        async fn get(&self, _: &str, _: &str, opts: GetOptions) -> trove_backends::Result<GetResult> {
            self.gets.fetch_add(1, Ordering::SeqCst);
            let size = self.data.len() as u64;
            let (s, e) = match opts.range {
                Some(r) => r.resolve(size).ok_or(trove_backends::Error::RangeNotSatisfiable)?,
                None => (0, size),
            };
            let mut pieces: Vec<std::io::Result<Bytes>> = Vec::new();
            let mut pos = s as usize;
            while pos < e as usize {
                let end = (pos + 1000).min(e as usize);
                if self.fail_at.is_some_and(|f| end > f) {
                    pieces.push(Err(std::io::Error::other("connection reset")));
                    break;
                }
                pieces.push(Ok(self.data.slice(pos..end)));
                pos = end;
            }
            let body = futures::stream::iter(pieces).then(|p| async move {
                tokio::time::sleep(Duration::from_millis(1)).await;
                p
            });
            Ok(GetResult { meta: meta(size), range: (s, e), body: Box::pin(body) })
        }
        async fn put(&self, _: &str, _: &str, _: Payload, _: &ObjectMeta) -> trove_backends::Result<ObjectMeta> {
            Err(trove_backends::Error::Other("read-only".into()))
        }
        async fn delete(&self, _: &str, _: &str) -> trove_backends::Result<()> {
            Ok(())
        }
        async fn list(&self, _: &str, _: ListRequest) -> trove_backends::Result<ListPage> {
            Ok(ListPage::default())
        }
        async fn copy(&self, _: &str, _: &str, _: &str, _: Option<&ObjectMeta>) -> trove_backends::Result<ObjectMeta> {
            Err(trove_backends::Error::Other("read-only".into()))
        }
        async fn create_multipart(&self, _: &str, _: &str, _: &ObjectMeta) -> trove_backends::Result<String> {
            Err(trove_backends::Error::Other("read-only".into()))
        }
        async fn upload_part(&self, _: &str, _: &str, _: &str, _: u32, _: Payload) -> trove_backends::Result<String> {
            Err(trove_backends::Error::Other("read-only".into()))
        }
        async fn complete_multipart(
            &self,
            _: &str,
            _: &str,
            _: &str,
            _: &[(u32, String)],
            _: &ObjectMeta,
        ) -> trove_backends::Result<ObjectMeta> {
            Err(trove_backends::Error::Other("read-only".into()))
        }
        async fn abort_multipart(&self, _: &str, _: &str, _: &str) -> trove_backends::Result<()> {
            Ok(())
        }
    }

    fn setup(cfg: FetchConfig) -> (tempfile::TempDir, Arc<Store>, Arc<ReadThrough>) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&[dir.path().join("mp")], false).unwrap());
        let rt = Arc::new(ReadThrough::new(store.clone(), cfg));
        (dir, store, rt)
    }

    fn data(n: usize) -> Bytes {
        Bytes::from((0..n).map(|i| (i * 7 % 251) as u8).collect::<Vec<u8>>())
    }

    async fn collect(mut s: ByteStream) -> std::io::Result<Vec<u8>> {
        let mut v = Vec::new();
        while let Some(b) = s.next().await {
            v.extend_from_slice(&b?);
        }
        Ok(v)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_cold_gets_share_one_fetch() {
        let (_d, store, rt) = setup(FetchConfig::default());
        let backend = Arc::new(Slow { data: data(50_000), gets: AtomicUsize::new(0), fail_at: None });
        let bck: Bck = "s3://origin".parse().unwrap();
        let mut readers = Vec::new();
        for i in 0..8 {
            let (rt, b, bck) = (rt.clone(), backend.clone() as Arc<dyn Backend>, bck.clone());
            readers.push(tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(i * 3)).await;
                let fill = rt.fill(b, &bck, "k");
                let m = fill.started().await.unwrap();
                assert_eq!((m.etag.as_str(), m.version.as_deref()), ("e1", Some("7")));
                collect(fill.reader(0, m.size)).await.unwrap()
            }));
        }
        for r in readers {
            assert_eq!(r.await.unwrap(), backend.data.to_vec());
        }
        assert_eq!(backend.gets.load(Ordering::SeqCst), 1);
        assert_eq!(rt.counters().cold_gets[bck.provider as usize].load(Ordering::SeqCst), 1);
        // Committed as a cached copy with the backend's metadata.
        let fill = rt.fill(backend.clone(), &bck, "k");
        fill.finished().await.unwrap();
        let (_, m) = store.open_object(&bck, "k").unwrap();
        assert_eq!((m.size, m.etag.as_str(), m.content_type.as_deref()), (50_000, "e1", Some("x/y")));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn failed_fill_leaves_nothing() {
        let (_d, store, rt) = setup(FetchConfig::default());
        let backend = Arc::new(Slow { data: data(20_000), gets: AtomicUsize::new(0), fail_at: Some(9_000) });
        let bck: Bck = "s3://origin".parse().unwrap();
        let fill = rt.fill(backend, &bck, "k");
        let m = fill.started().await.unwrap();
        assert!(collect(fill.reader(0, m.size)).await.is_err(), "the reader sees the failure");
        assert!(fill.finished().await.is_err());
        assert!(matches!(store.open_object(&bck, "k"), Err(Error::NotFound)));
        let wk = store.mountpaths()[0].work_dir();
        for _ in 0..100 {
            if std::fs::read_dir(&wk).map(|d| d.count()).unwrap_or(0) == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(std::fs::read_dir(&wk).unwrap().count(), 0, "work file removed");
        assert!(rt.in_flight(&bck, "k").is_none());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn large_objects_arrive_in_parallel_ranges() {
        let cfg = FetchConfig { parallel_threshold: 10_000, chunk_size: 7_000, workers: 3 };
        let (_d, store, rt) = setup(cfg);
        let backend = Arc::new(Slow { data: data(45_500), gets: AtomicUsize::new(0), fail_at: None });
        let bck: Bck = "s3://origin".parse().unwrap();
        let fill = rt.fill(backend.clone(), &bck, "big");
        let m = fill.started().await.unwrap();
        // A reader of the middle only.
        assert_eq!(collect(fill.reader(10_000, 30_000)).await.unwrap(), backend.data[10_000..30_000].to_vec());
        fill.finished().await.unwrap();
        assert_eq!(backend.gets.load(Ordering::SeqCst), 7, "one whole-object GET + 6 ranged reads");
        let (f, _) = store.open_object(&bck, "big").unwrap();
        let mut buf = vec![0; m.size as usize];
        f.read_exact_at(&mut buf, 0).unwrap();
        assert_eq!(buf, backend.data.to_vec());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_large_objects_first_bytes_come_before_its_first_chunk_is_whole() {
        let cfg = FetchConfig { parallel_threshold: 10_000, chunk_size: 100_000, workers: 3 };
        let (_d, store, rt) = setup(cfg);
        let backend = Arc::new(Slow { data: data(250_000), gets: AtomicUsize::new(0), fail_at: None });
        let bck: Bck = "s3://origin".parse().unwrap();
        let fill = rt.fill(backend.clone(), &bck, "big");
        fill.started().await.unwrap();
        assert_eq!(collect(fill.reader(0, 1000)).await.unwrap(), backend.data[..1000].to_vec());
        // Chunk 0 arrives at 1,000 bytes a millisecond: far from whole when its first bytes were read.
        assert!(matches!(*fill.rx.borrow(), State::Streaming { written } if written < 100_000));
        fill.finished().await.unwrap();
        let (f, _) = store.open_object(&bck, "big").unwrap();
        let mut buf = vec![0; 250_000];
        f.read_exact_at(&mut buf, 0).unwrap();
        assert_eq!(buf, backend.data.to_vec());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_overtaken_fill_does_not_publish() {
        let (_d, store, rt) = setup(FetchConfig::default());
        let backend = Arc::new(Slow { data: data(50_000), gets: AtomicUsize::new(0), fail_at: None });
        let bck: Bck = "s3://origin".parse().unwrap();
        let fill = rt.fill(backend.clone(), &bck, "k");
        let m = fill.started().await.unwrap();
        rt.invalidate(&bck, "k"); // a PUT or DELETE of "k" went through meanwhile
        assert!(rt.in_flight(&bck, "k").is_none(), "new readers start a new fill");
        assert_eq!(collect(fill.reader(0, m.size)).await.unwrap(), backend.data.to_vec(), "old readers finish");
        fill.finished().await.unwrap();
        assert!(matches!(store.open_object(&bck, "k"), Err(Error::NotFound)), "no stale copy");
    }
}
