//! Connection limits: how many connections a node holds, and how long a client may leave one waiting.
//!
//! Every accepted socket is wrapped in [`Watched`], which notes when bytes last moved and whether a request
//! head has begun. A watchdog per connection closes it when the client stalls: half a request head for longer
//! than the header timeout, an idle keep-alive connection for longer than the idle timeout, or a response the
//! client stops reading for longer than the body timeout. A request body that stops arriving is cut by
//! [`TimedBody`] (S3's 400 RequestTimeout). Above `max_connections` a new socket is closed at once.

use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The configured bounds (`[server]` in the config).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_read: Duration,
    pub idle: Duration,
    pub body: Duration,
    pub max_connections: usize,
}

impl Limits {
    pub fn from_config(c: &trove_config::ServerConfig) -> Limits {
        Limits {
            header_read: Duration::from_secs_f64(c.header_read_timeout_secs),
            idle: Duration::from_secs_f64(c.idle_timeout_secs),
            body: Duration::from_secs_f64(c.body_timeout_secs),
            max_connections: fit_open_files(c.max_connections),
        }
    }
}

/// Raises the soft open-file limit to the hard one, as servers do (a shell's default soft limit of 1,024
/// would cap connections and kept-open objects far below what the machine allows). Before anything sizes
/// itself by the limit.
pub fn raise_open_files_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let limit = getrlimit(Resource::Nofile);
    // An unlimited hard limit still stops at the kernel's nr_open (1,048,576 by default).
    let Some(current) = limit.current else { return };
    let target = limit.maximum.unwrap_or(1 << 20);
    if current < target {
        let raised = rustix::process::Rlimit { current: Some(target), maximum: limit.maximum };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            tracing::warn!(error = %e, "cannot raise the open-file limit");
        }
    }
}

/// Each connection holds a descriptor, and the node needs more for its objects (those kept open for repeated
/// reads among them), mountpaths and backends: a limit above the process's open-file limit would turn into
/// failed accepts and opens instead of refusals.
fn fit_open_files(wanted: usize) -> usize {
    let reserved = 256 + trove_cache::open_objects() as u64;
    let soft = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
    match soft {
        Some(n) if (wanted as u64).saturating_add(reserved) > n => {
            let fitted = n.saturating_sub(reserved).max(16) as usize;
            tracing::warn!(
                wanted,
                fitted,
                open_files = n,
                "server.max_connections lowered to fit the open-file limit (ulimit -n)"
            );
            fitted
        }
        _ => wanted,
    }
}

/// Open connections of the node, shared by all workers.
#[derive(Debug, Default)]
pub struct Gate {
    open: AtomicUsize,
}

/// One admitted connection; leaving the gate when dropped.
pub struct Admitted(Arc<Gate>);

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Gate {
    pub fn admit(self: &Arc<Self>, max: usize) -> Option<Admitted> {
        let mut n = self.open.load(Ordering::Acquire);
        loop {
            if n >= max {
                return None;
            }
            match self.open.compare_exchange_weak(n, n + 1, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Some(Admitted(self.clone())),
                Err(now) => n = now,
            }
        }
    }

    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }
}

/// What the watchdog knows about one connection.
#[derive(Debug)]
pub struct Activity {
    epoch: Instant,
    /// Milliseconds since `epoch` when bytes last moved either way.
    last_ms: AtomicU64,
    /// Requests between their head and the end of their response body.
    in_flight: AtomicUsize,
    /// Bytes arrived since the last request was handed over: a head is being received.
    head_started: AtomicBool,
    /// The last write could not proceed (the client is not reading).
    write_blocked: AtomicBool,
}

impl Activity {
    pub fn new() -> Arc<Activity> {
        Arc::new(Activity {
            epoch: Instant::now(),
            last_ms: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            head_started: AtomicBool::new(false),
            write_blocked: AtomicBool::new(false),
        })
    }

    fn moved(&self) {
        self.last_ms.store(self.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// A write that bypassed [`Watched`] (`sendfile`) made progress (`true`) or found the socket full.
    pub fn wrote(&self, progressed: bool) {
        self.write_blocked.store(!progressed, Ordering::Relaxed);
        if progressed {
            self.moved();
        }
    }

    /// A request head was parsed: the response is the server's business until it is written.
    pub fn request_started(self: &Arc<Self>) -> InFlight {
        self.head_started.store(false, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(self.clone())
    }

    /// How long until the connection counts as stalled (zero: now).
    pub fn remaining(&self, limits: &Limits) -> Duration {
        let quiet = self.epoch.elapsed().saturating_sub(Duration::from_millis(self.last_ms.load(Ordering::Relaxed)));
        let bound = if self.in_flight.load(Ordering::Acquire) > 0 {
            if !self.write_blocked.load(Ordering::Relaxed) {
                // The server is working (or the request body is being read, which TimedBody bounds).
                return limits.body.max(Duration::from_secs(1));
            }
            limits.body
        } else if self.head_started.load(Ordering::Relaxed) {
            limits.header_read
        } else {
            limits.idle
        };
        bound.saturating_sub(quiet)
    }
}

/// A request in flight; its end (the response body dropped) makes the connection idle again.
pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.moved();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Closes the connection (by finishing) when `activity` says it stalled.
pub async fn watchdog(activity: Arc<Activity>, limits: Limits) {
    loop {
        let left = activity.remaining(&limits);
        if left.is_zero() {
            return;
        }
        tokio::time::sleep(left.max(Duration::from_millis(100))).await;
    }
}

/// A socket that reports its progress to [`Activity`].
pub struct Watched<T> {
    inner: T,
    activity: Arc<Activity>,
    /// Bytes already read from the socket that the next reader gets first (a connection handed to hyper by
    /// the direct reads, with the request they did not answer).
    replay: Bytes,
}

impl<T> Watched<T> {
    pub fn new(inner: T, activity: Arc<Activity>) -> Self {
        Watched { inner, activity, replay: Bytes::new() }
    }

    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    /// Reads return `bytes` before anything more from the socket.
    pub fn replay(&mut self, bytes: Bytes) {
        self.replay = bytes;
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if !self.replay.is_empty() {
            let n = self.replay.len().min(buf.remaining());
            buf.put_slice(&self.replay[..n]);
            bytes::Buf::advance(&mut self.replay, n);
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let res = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(res, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.moved();
            if self.activity.in_flight.load(Ordering::Acquire) == 0 {
                self.activity.head_started.store(true, Ordering::Relaxed);
            }
        }
        res
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let res = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.note_write(&res);
        res
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let res = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.note_write(&res);
        res
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl<T> Watched<T> {
    fn note_write(&self, res: &Poll<io::Result<usize>>) {
        match res {
            Poll::Ready(Ok(n)) if *n > 0 => {
                self.activity.write_blocked.store(false, Ordering::Relaxed);
                self.activity.moved();
            }
            Poll::Pending => self.activity.write_blocked.store(true, Ordering::Relaxed),
            _ => {}
        }
    }
}

/// A request body whose next bytes must arrive within the body timeout once the server waits for them;
/// otherwise it ends with S3's RequestTimeout, which the handlers pass on as a 400. The clock runs only while
/// the handler is waiting for the client, never while the server itself is busy.
pub struct TimedBody {
    inner: hyper::body::Incoming,
    timeout: Duration,
    waiting: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl TimedBody {
    pub fn new(inner: hyper::body::Incoming, timeout: Duration) -> Self {
        TimedBody { inner, timeout, waiting: None }
    }
}

impl http_body::Body for TimedBody {
    type Data = Bytes;
    type Error = s3s::StdError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                self.waiting = None;
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                let timeout = self.timeout;
                let sleep = self.waiting.get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(s3s::s3_error!(
                        RequestTimeout,
                        "Your socket connection to the server was not read from or written to within the timeout period."
                    ))))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that marks the request finished when it is dropped (fully written or abandoned).
pub struct TrackedBody {
    inner: s3s::Body,
    _in_flight: InFlight,
}

impl TrackedBody {
    pub fn new(inner: s3s::Body, in_flight: InFlight) -> Self {
        TrackedBody { inner, _in_flight: in_flight }
    }
}

impl http_body::Body for TrackedBody {
    type Data = Bytes;
    type Error = s3s::StdError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
