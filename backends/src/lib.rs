//! The seam between Trove and the storage providers that hold remote buckets.
//!
//! [`Backend`] is one trait, streaming in both directions, that every provider module implements: [`aws`] (any
//! S3-compatible origin), [`gcp`] (the GCS JSON API) and [`azure`] (Blob storage); [`ais`] speaks AIStore's native
//! API to remote AIS clusters. [`retry::Resilient`] wraps
//! any of them with timeouts, bounded retries with backoff, and request counters. This crate knows nothing
//! about caching: the cache crate drives it on cold GETs, the gateway on writes, listings and bucket checks.

pub mod ais;
pub mod aws;
pub mod azure;
mod chunks;
mod error;
pub mod gcp;
pub mod retry;
mod types;

use async_trait::async_trait;

pub use error::{Error, Result};
pub use types::{ByteRange, ByteStream, GetOptions, GetResult, ListEntry, ListPage, ListRequest, ObjectMeta, Payload};

/// One provider's buckets. Keys, ETags and versions pass through unchanged.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Provider name as AIS prints it (`aws`, `gcp`, `azure`, `ais`).
    fn provider(&self) -> &'static str;

    /// Checks that `bucket` exists and is reachable with the configured credentials.
    async fn head_bucket(&self, bucket: &str) -> Result<()>;

    async fn head(&self, bucket: &str, key: &str) -> Result<ObjectMeta>;

    /// Streams an object or a range of it. Suffix ranges are resolved by the implementation (via `head` for
    /// providers without them).
    async fn get(&self, bucket: &str, key: &str, opts: GetOptions) -> Result<GetResult>;

    /// Uploads a payload; large objects go up in pieces (S3 multipart, GCS resumable chunks, Azure blocks).
    async fn put(&self, bucket: &str, key: &str, body: Payload, meta: &ObjectMeta) -> Result<ObjectMeta>;

    /// Deletes an object; deleting a missing object is not an error (S3 semantics).
    async fn delete(&self, bucket: &str, key: &str) -> Result<()>;

    /// One page of a listing; `ListPage::next_token` continues it.
    async fn list(&self, bucket: &str, req: ListRequest) -> Result<ListPage>;

    /// Server-side copy inside `bucket`; `meta` replaces the metadata when given, else it is copied.
    async fn copy(&self, bucket: &str, src_key: &str, dst_key: &str, meta: Option<&ObjectMeta>) -> Result<ObjectMeta>;

    /// Whether S3 multipart uploads run in lock-step with a backend multipart upload (parts go on as they
    /// arrive). When not, the assembled object is uploaded with [`Backend::put`] at completion.
    fn lockstep_multipart(&self) -> bool {
        true
    }

    /// Starts a backend multipart upload; returns the backend's handle for it. Backends without lock-step
    /// uploads keep this default: they are never asked.
    async fn create_multipart(&self, _bucket: &str, _key: &str, _meta: &ObjectMeta) -> Result<String> {
        Err(Error::Invalid(format!("{}: multipart uploads go to the backend whole, at completion", self.provider())))
    }

    /// Uploads part `number` (1-based); returns the backend's token for the part (an S3 ETag, a block id ...).
    async fn upload_part(
        &self,
        _bucket: &str,
        _key: &str,
        _upload: &str,
        _number: u32,
        _body: Payload,
    ) -> Result<String> {
        Err(Error::Invalid(format!("{}: no backend parts (see create_multipart)", self.provider())))
    }

    /// Joins the parts, in the order given, into the object `key` with `meta`.
    async fn complete_multipart(
        &self,
        _bucket: &str,
        _key: &str,
        _upload: &str,
        _parts: &[(u32, String)],
        _meta: &ObjectMeta,
    ) -> Result<ObjectMeta> {
        Err(Error::Invalid(format!("{}: no backend parts (see create_multipart)", self.provider())))
    }

    /// Aborts a backend multipart upload (nothing to do without lock-step uploads).
    async fn abort_multipart(&self, _bucket: &str, _key: &str, _upload: &str) -> Result<()> {
        Ok(())
    }
}
