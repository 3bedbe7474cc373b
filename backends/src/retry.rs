//! Timeouts, bounded retries with exponential backoff, and request counters around any [`Backend`].
//!
//! A backend that is down, slow or answering 5xx must never hang a client: every call is bounded by the
//! policy's timeout, retryable failures are tried again at most `max_attempts` times in all, and a body stream
//! that stalls longer than the timeout ends with an error. Uploads are retried from their [`Payload`], which can
//! be reopened; a stream already handed to a client is never retried.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;

use crate::{Backend, ByteStream, Error, GetOptions, GetResult, ListPage, ListRequest, ObjectMeta, Payload, Result};

#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Bound of one backend call (time to the first byte for reads; idle gap inside a body stream).
    pub timeout: Duration,
    /// Attempts in all, including the first.
    pub max_attempts: u32,
    /// First backoff; doubled after every failed attempt.
    pub backoff: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy { timeout: Duration::from_secs(30), max_attempts: 3, backoff: Duration::from_millis(200) }
    }
}

/// Backend operations, as counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    HeadBucket,
    Head,
    Get,
    Put,
    Delete,
    List,
    Copy,
    Multipart,
}

impl Op {
    pub const ALL: [Op; 8] =
        [Op::HeadBucket, Op::Head, Op::Get, Op::Put, Op::Delete, Op::List, Op::Copy, Op::Multipart];

    pub fn as_str(self) -> &'static str {
        match self {
            Op::HeadBucket => "head_bucket",
            Op::Head => "head",
            Op::Get => "get",
            Op::Put => "put",
            Op::Delete => "delete",
            Op::List => "list",
            Op::Copy => "copy",
            Op::Multipart => "multipart",
        }
    }
}

/// Requests sent to one backend, by operation, and those that failed after all attempts.
#[derive(Debug, Default)]
pub struct Stats {
    requests: [AtomicU64; 8],
    errors: [AtomicU64; 8],
}

impl Stats {
    pub fn requests(&self, op: Op) -> u64 {
        self.requests[op as usize].load(Ordering::Relaxed)
    }

    pub fn errors(&self, op: Op) -> u64 {
        self.errors[op as usize].load(Ordering::Relaxed)
    }
}

pub struct Resilient {
    inner: Arc<dyn Backend>,
    policy: Policy,
    stats: Arc<Stats>,
}

impl Resilient {
    pub fn new(inner: Arc<dyn Backend>, policy: Policy) -> Resilient {
        Resilient { inner, policy, stats: Arc::default() }
    }

    pub fn stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    /// Runs `call` with the timeout `limit`, retrying retryable failures with backoff.
    async fn run<T, F, Fut>(&self, op: Op, limit: Duration, mut call: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut backoff = self.policy.backoff;
        let mut attempt = 1;
        loop {
            self.stats.requests[op as usize].fetch_add(1, Ordering::Relaxed);
            let span = tracing::debug_span!("backend", provider = self.inner.provider(), op = op.as_str(), attempt);
            let outcome = match tracing::Instrument::instrument(tokio::time::timeout(limit, call()), span).await {
                Ok(r) => r,
                Err(_) => Err(Error::unavailable(format!(
                    "{} {} timed out after {:.1} s",
                    self.inner.provider(),
                    op.as_str(),
                    limit.as_secs_f64()
                ))),
            };
            match outcome {
                Err(e) if e.is_retryable() && attempt < self.policy.max_attempts => {
                    let wait = match &e {
                        Error::Unavailable { retry_after: Some(d), .. }
                        | Error::Throttled { retry_after: Some(d), .. } => (*d).min(backoff * 4),
                        _ => backoff,
                    };
                    tracing::debug!(provider = self.inner.provider(), op = op.as_str(), attempt, error = %e, "retrying");
                    tokio::time::sleep(wait).await;
                    backoff *= 2;
                    attempt += 1;
                }
                Err(e) => {
                    self.stats.errors[op as usize].fetch_add(1, Ordering::Relaxed);
                    return Err(e);
                }
                ok => return ok,
            }
        }
    }

    /// Uploads move at least ~1 MiB/s before they count as stalled.
    fn upload_limit(&self, size: u64) -> Duration {
        self.policy.timeout + Duration::from_secs(size >> 20)
    }
}

/// Ends `body` with a timeout error when no bytes arrive for `idle`.
fn idle_bounded(body: ByteStream, idle: Duration) -> ByteStream {
    Box::pin(futures::stream::unfold(Some(body), move |state| async move {
        let mut body = state?;
        match tokio::time::timeout(idle, body.next()).await {
            Ok(Some(item)) => Some((item, Some(body))),
            Ok(None) => None,
            Err(_) => Some((Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "backend stream stalled")), None)),
        }
    }))
}

#[async_trait]
impl Backend for Resilient {
    fn provider(&self) -> &'static str {
        self.inner.provider()
    }

    fn lockstep_multipart(&self) -> bool {
        self.inner.lockstep_multipart()
    }

    async fn head_bucket(&self, bucket: &str) -> Result<()> {
        self.run(Op::HeadBucket, self.policy.timeout, || self.inner.head_bucket(bucket)).await
    }

    async fn head(&self, bucket: &str, key: &str) -> Result<ObjectMeta> {
        self.run(Op::Head, self.policy.timeout, || self.inner.head(bucket, key)).await
    }

    async fn get(&self, bucket: &str, key: &str, opts: GetOptions) -> Result<GetResult> {
        let mut r = self.run(Op::Get, self.policy.timeout, || self.inner.get(bucket, key, opts.clone())).await?;
        r.body = idle_bounded(r.body, self.policy.timeout);
        Ok(r)
    }

    async fn put(&self, bucket: &str, key: &str, body: Payload, meta: &ObjectMeta) -> Result<ObjectMeta> {
        let limit = self.upload_limit(body.size);
        self.run(Op::Put, limit, || self.inner.put(bucket, key, body.clone(), meta)).await
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<()> {
        self.run(Op::Delete, self.policy.timeout, || self.inner.delete(bucket, key)).await
    }

    async fn list(&self, bucket: &str, req: ListRequest) -> Result<ListPage> {
        self.run(Op::List, self.policy.timeout, || self.inner.list(bucket, req.clone())).await
    }

    async fn copy(&self, bucket: &str, src: &str, dst: &str, meta: Option<&ObjectMeta>) -> Result<ObjectMeta> {
        // Server-side copies take time proportional to the object: allow several timeouts.
        self.run(Op::Copy, self.policy.timeout * 4, || self.inner.copy(bucket, src, dst, meta)).await
    }

    async fn create_multipart(&self, bucket: &str, key: &str, meta: &ObjectMeta) -> Result<String> {
        self.run(Op::Multipart, self.policy.timeout, || self.inner.create_multipart(bucket, key, meta)).await
    }

    async fn upload_part(&self, bucket: &str, key: &str, upload: &str, number: u32, body: Payload) -> Result<String> {
        let limit = self.upload_limit(body.size);
        self.run(Op::Multipart, limit, || self.inner.upload_part(bucket, key, upload, number, body.clone())).await
    }

    async fn complete_multipart(
        &self,
        bucket: &str,
        key: &str,
        upload: &str,
        parts: &[(u32, String)],
        meta: &ObjectMeta,
    ) -> Result<ObjectMeta> {
        self.run(Op::Multipart, self.policy.timeout * 4, || {
            self.inner.complete_multipart(bucket, key, upload, parts, meta)
        })
        .await
    }

    async fn abort_multipart(&self, bucket: &str, key: &str, upload: &str) -> Result<()> {
        self.run(Op::Multipart, self.policy.timeout, || self.inner.abort_multipart(bucket, key, upload)).await
    }
}
