//! The seam between Trove and the storage providers that hold remote buckets.
//!
//! [`Backend`] is one trait, streaming in both directions, that every provider module implements (AWS S3,
//! GCS, Azure Blob, remote AIS). It knows nothing about caching: the cache crate drives it on cold GETs and
//! write-through PUTs, the gateway for listing and bucket checks. Provider modules arrive with the cloud-backend
//! work; this crate fixes the contract they fill.

mod error;
mod types;

use async_trait::async_trait;

pub use error::{Error, Result};
pub use types::{
    ByteRange, ByteStream, GetOptions, GetResult, ListEntry, ListPage, ListRequest, ObjectMeta, PutOptions,
};

/// One provider's buckets. Keys, ETags and versions pass through unchanged.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Provider name as AIS prints it (`aws`, `gcp`, `azure`, `ais`).
    fn provider(&self) -> &'static str;

    /// Checks that `bucket` exists and is reachable with the configured credentials.
    async fn head_bucket(&self, bucket: &str) -> Result<()>;

    async fn head(&self, bucket: &str, key: &str) -> Result<ObjectMeta>;

    /// Streams an object or a range of it. Suffix ranges may be resolved by the implementation via `head`.
    async fn get(&self, bucket: &str, key: &str, opts: GetOptions) -> Result<GetResult>;

    /// Uploads a stream of known or unknown length; large objects go up as a backend multipart upload.
    async fn put(&self, bucket: &str, key: &str, body: ByteStream, opts: PutOptions) -> Result<ObjectMeta>;

    async fn delete(&self, bucket: &str, key: &str) -> Result<()>;

    /// One page of a listing; `ListPage::next_token` continues it.
    async fn list(&self, bucket: &str, req: ListRequest) -> Result<ListPage>;
}
