//! Azure Blob storage, on `azure_storage_blobs`.
//!
//! Credentials: a connection string, an account key, or a SAS token from the config, else
//! `AZURE_STORAGE_CONNECTION_STRING` or `AZURE_STORAGE_ACCOUNT` + `AZURE_STORAGE_KEY`; the endpoint may point at
//! an emulator (`http://127.0.0.1:10000/devstoreaccount1`). S3 semantics are mapped as follows: a bucket is a
//! container; ETag = the blob's ETag without quotes; there are no suffix ranges in Azure, so every range is
//! resolved against the blob's size first; large uploads and S3 multipart uploads become uncommitted blocks
//! committed by one Put Block List (block id = upload id + part number, so all ids have the same length).
//! Cache-Control is set with a Set Blob Properties call after the upload (Put Block Blob cannot carry it).

use std::collections::BTreeMap;

use async_trait::async_trait;
use azure_core::request_options::{IfMatchCondition, Metadata};
use azure_storage::{CloudLocation, ConnectionString, StorageCredentials};
use azure_storage_blobs::blob::{BlobBlockType, BlobProperties, BlockList};
use azure_storage_blobs::container::operations::BlobItem;
use azure_storage_blobs::prelude::*;
use futures::{StreamExt, TryStreamExt};

use crate::chunks::Chunker;
use crate::{
    Backend, ByteStream, Error, GetOptions, GetResult, ListEntry, ListPage, ListRequest, ObjectMeta, Payload, Result,
};

/// Uploads up to this size are one Put Blob; larger ones are blocks of this size.
const BLOCK: usize = 8 << 20;

#[derive(Debug, Clone, Default)]
pub struct AzureOptions {
    pub account: Option<String>,
    pub key: Option<String>,
    pub sas: Option<String>,
    pub connection_string: Option<String>,
    /// Blob service URL, e.g. `http://127.0.0.1:10000/devstoreaccount1`.
    pub endpoint: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("azure credentials: {0}")]
pub struct ConnectError(String);

pub struct Azure {
    service: BlobServiceClient,
}

impl Azure {
    pub fn connect(opts: &AzureOptions) -> Result<Azure, ConnectError> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let cs = opts.connection_string.clone().or_else(|| {
            (opts.account.is_none() && opts.key.is_none() && opts.sas.is_none())
                .then(|| env("AZURE_STORAGE_CONNECTION_STRING"))
                .flatten()
        });
        let (account, creds, mut endpoint) = if let Some(cs) = &cs {
            let parsed = ConnectionString::new(cs).map_err(|e| ConnectError(e.to_string()))?;
            let creds = parsed.storage_credentials().map_err(|e| ConnectError(e.to_string()))?;
            let account = parsed.account_name.map(str::to_owned).unwrap_or_default();
            (account, creds, parsed.blob_endpoint.map(str::to_owned))
        } else {
            let account = opts.account.clone().or_else(|| env("AZURE_STORAGE_ACCOUNT")).ok_or_else(|| {
                ConnectError("no account: set backends.azure.account or AZURE_STORAGE_ACCOUNT".into())
            })?;
            let creds = if let Some(sas) = &opts.sas {
                StorageCredentials::sas_token(sas.trim_start_matches('?')).map_err(|e| ConnectError(e.to_string()))?
            } else if let Some(key) = opts.key.clone().or_else(|| env("AZURE_STORAGE_KEY")) {
                StorageCredentials::access_key(account.clone(), key)
            } else {
                StorageCredentials::anonymous()
            };
            (account, creds, None)
        };
        if opts.endpoint.is_some() {
            endpoint.clone_from(&opts.endpoint);
        }
        let location = match endpoint {
            Some(uri) => CloudLocation::Custom { account: account.clone(), uri: uri.trim_end_matches('/').to_owned() },
            None => CloudLocation::Public { account: account.clone() },
        };
        let service = ClientBuilder::new(account, creds)
            .cloud_location(location)
            .retry(azure_core::RetryOptions::none())
            .blob_service_client();
        Ok(Azure { service })
    }

    fn blob(&self, bucket: &str, key: &str) -> BlobClient {
        self.service.container_client(bucket).blob_client(key)
    }

    /// The blob of `key`, refusing names the SDK would change: it trims `/` from both ends of blob names, so
    /// `dir/` would silently become `dir`.
    fn blob_checked(&self, bucket: &str, key: &str) -> Result<BlobClient> {
        if key.starts_with('/') || key.ends_with('/') {
            return Err(Error::Invalid(format!(
                "Azure blob names starting or ending with '/' are not supported by this gateway: {key:?}"
            )));
        }
        Ok(self.blob(bucket, key))
    }
}

fn map_err(e: azure_core::Error, bucket: &str, key: &str) -> Error {
    match e.kind() {
        azure_core::error::ErrorKind::HttpResponse { status, error_code } => {
            Error::from_status(u16::from(*status), error_code.as_deref(), &e.to_string(), bucket, key)
        }
        azure_core::error::ErrorKind::Io => Error::unavailable(format!("azure: {e}")),
        _ => {
            // Connection failures arrive as `Other` with a reqwest error inside.
            let text = format!("{e:?}");
            if text.contains("onnect") || text.contains("reqwest") || text.contains("timed out") {
                Error::unavailable(format!("azure: {e}"))
            } else {
                Error::Other(format!("azure: {e}"))
            }
        }
    }
}

fn to_meta(p: &BlobProperties, metadata: Option<&std::collections::HashMap<String, String>>) -> ObjectMeta {
    ObjectMeta {
        size: p.content_length,
        etag: p.etag.to_string().trim_matches('"').to_owned(),
        last_modified_ms: (p.last_modified.unix_timestamp_nanos() / 1_000_000) as i64,
        version: None,
        content_type: Some(p.content_type.clone()).filter(|c| !c.is_empty()),
        content_encoding: p.content_encoding.clone(),
        cache_control: p.cache_control.clone(),
        content_disposition: p.content_disposition.clone(),
        content_language: p.content_language.clone(),
        user_meta: metadata
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect::<BTreeMap<_, _>>())
            .unwrap_or_default(),
    }
}

fn metadata(m: &ObjectMeta) -> Metadata {
    let mut md = Metadata::new();
    for (k, v) in &m.user_meta {
        md.insert(k.clone(), v.clone());
    }
    md
}

/// Block ids of one upload: same length for every block, as Azure requires.
fn block_id(upload: &str, n: u32) -> BlockId {
    BlockId::new(format!("{upload}-{n:05}"))
}

impl Azure {
    async fn properties(&self, bucket: &str, key: &str) -> Result<ObjectMeta> {
        let r = self.blob_checked(bucket, key)?.get_properties().await.map_err(|e| map_err(e, bucket, key))?;
        Ok(to_meta(&r.blob.properties, r.blob.metadata.as_ref()))
    }

    /// Put Block List with the object's headers; then Cache-Control, which that call cannot carry.
    async fn commit_blocks(&self, bucket: &str, key: &str, ids: Vec<BlockId>, meta: &ObjectMeta) -> Result<ObjectMeta> {
        let blob = self.blob_checked(bucket, key)?;
        let list = BlockList { blocks: ids.into_iter().map(BlobBlockType::Uncommitted).collect() };
        let mut call = blob.put_block_list(list).metadata(metadata(meta));
        if let Some(v) = &meta.content_type {
            call = call.content_type(v.clone());
        }
        if let Some(v) = &meta.content_encoding {
            call = call.content_encoding(v.clone());
        }
        if let Some(v) = &meta.content_disposition {
            call = call.content_disposition(v.clone());
        }
        if let Some(v) = &meta.content_language {
            call = call.content_language(v.clone());
        }
        call.await.map_err(|e| map_err(e, bucket, key))?;
        self.finish_headers(bucket, key, meta).await
    }

    async fn finish_headers(&self, bucket: &str, key: &str, meta: &ObjectMeta) -> Result<ObjectMeta> {
        if let Some(cc) = &meta.cache_control {
            let blob = self.blob(bucket, key);
            let mut call = blob.set_properties().cache_control(cc.clone());
            if let Some(v) = &meta.content_type {
                call = call.content_type(v.clone());
            }
            if let Some(v) = &meta.content_encoding {
                call = call.content_encoding(v.clone());
            }
            if let Some(v) = &meta.content_disposition {
                call = call.content_disposition(v.clone());
            }
            if let Some(v) = &meta.content_language {
                call = call.content_language(v.clone());
            }
            call.await.map_err(|e| map_err(e, bucket, key))?;
        }
        self.properties(bucket, key).await
    }
}

#[async_trait]
impl Backend for Azure {
    fn provider(&self) -> &'static str {
        "azure"
    }

    async fn head_bucket(&self, bucket: &str) -> Result<()> {
        self.service.container_client(bucket).get_properties().await.map_err(|e| map_err(e, bucket, ""))?;
        Ok(())
    }

    async fn head(&self, bucket: &str, key: &str) -> Result<ObjectMeta> {
        self.properties(bucket, key).await
    }

    async fn get(&self, bucket: &str, key: &str, opts: GetOptions) -> Result<GetResult> {
        // Azure has no suffix ranges and refuses any range on an empty blob: size first, then one exact range,
        // pinned to the ETag just read so the bytes and the metadata belong together.
        let meta = self.properties(bucket, key).await?;
        if opts.if_match.as_deref().is_some_and(|e| e != meta.etag) {
            return Err(Error::PreconditionFailed);
        }
        let (s, e) = match opts.range {
            None => (0, meta.size),
            Some(r) => r.resolve(meta.size).ok_or(Error::RangeNotSatisfiable)?,
        };
        if e == s {
            return Ok(GetResult { meta, range: (s, e), body: Box::pin(futures::stream::empty()) });
        }
        let blob = self.blob(bucket, key);
        let mut pages = blob
            .get()
            .range(s..e)
            .chunk_size(e - s)
            .if_match(IfMatchCondition::Match(format!("\"{}\"", meta.etag)))
            .into_stream();
        let first = match pages.next().await {
            Some(r) => r.map_err(|err| map_err(err, bucket, key))?,
            None => return Err(Error::Other("azure: empty download".into())),
        };
        let body: ByteStream = Box::pin(first.data.map_err(std::io::Error::other));
        Ok(GetResult { meta, range: (s, e), body })
    }

    async fn put(&self, bucket: &str, key: &str, body: Payload, meta: &ObjectMeta) -> Result<ObjectMeta> {
        let mut chunks = Chunker::new((body.open)(0), BLOCK);
        let read_err = |e: std::io::Error| Error::Other(format!("reading the upload: {e}"));
        let blob = self.blob_checked(bucket, key)?;
        if body.size <= BLOCK as u64 {
            let data = chunks.next().await.map_err(read_err)?.unwrap_or_default();
            let mut call = blob.put_block_blob(data).metadata(metadata(meta));
            if let Some(v) = &meta.content_type {
                call = call.content_type(v.clone());
            }
            if let Some(v) = &meta.content_encoding {
                call = call.content_encoding(v.clone());
            }
            if let Some(v) = &meta.content_disposition {
                call = call.content_disposition(v.clone());
            }
            if let Some(v) = &meta.content_language {
                call = call.content_language(v.clone());
            }
            call.await.map_err(|e| map_err(e, bucket, key))?;
            return self.finish_headers(bucket, key, meta).await;
        }
        let upload = format!("{:016x}", rand::random::<u64>());
        let mut ids = Vec::new();
        let mut n = 1;
        while let Some(chunk) = chunks.next().await.map_err(read_err)? {
            if chunk.is_empty() {
                break;
            }
            let id = block_id(&upload, n);
            blob.put_block(id.clone(), chunk).await.map_err(|e| map_err(e, bucket, key))?;
            ids.push(id);
            n += 1;
        }
        self.commit_blocks(bucket, key, ids, meta).await
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<()> {
        match self.blob_checked(bucket, key)?.delete().await.map_err(|e| map_err(e, bucket, key)) {
            Ok(_) | Err(Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn list(&self, bucket: &str, req: ListRequest) -> Result<ListPage> {
        let container = self.service.container_client(bucket);
        let mut call = container.list_blobs().include_metadata(true).max_results(
            std::num::NonZeroU32::new(req.max_keys.clamp(1, 5000) as u32).unwrap_or(std::num::NonZeroU32::MIN),
        );
        if !req.prefix.is_empty() {
            call = call.prefix(req.prefix.clone());
        }
        if let Some(d) = &req.delimiter {
            call = call.delimiter(d.clone());
        }
        if let Some(t) = &req.token {
            call = call.marker(t.clone());
        }
        let page = match call.into_stream().next().await {
            Some(r) => r.map_err(|e| map_err(e, bucket, ""))?,
            None => return Ok(ListPage::default()),
        };
        let after = req.start_after.as_deref().unwrap_or("");
        let mut entries = Vec::new();
        let mut common_prefixes = Vec::new();
        for item in &page.blobs.items {
            match item {
                BlobItem::Blob(b) if b.name.as_str() > after => {
                    entries.push(ListEntry { key: b.name.clone(), meta: to_meta(&b.properties, b.metadata.as_ref()) })
                }
                BlobItem::BlobPrefix(p) if p.name.as_str() > after => common_prefixes.push(p.name.clone()),
                _ => {}
            }
        }
        let next_token = page.next_marker.map(|m| m.as_str().to_owned()).filter(|m| !m.is_empty());
        Ok(ListPage { entries, common_prefixes, next_token })
    }

    async fn copy(&self, bucket: &str, src: &str, dst: &str, meta: Option<&ObjectMeta>) -> Result<ObjectMeta> {
        let source = self.blob_checked(bucket, src)?.url().map_err(|e| Error::Other(format!("azure: {e}")))?;
        let target = self.blob_checked(bucket, dst)?;
        let mut call = target.copy(source);
        if let Some(m) = meta {
            call = call.metadata(metadata(m));
        }
        call.await.map_err(|e| map_err(e, bucket, src))?;
        match meta {
            // Copy Blob copies the source's headers; replaced ones are set afterwards.
            Some(m) => {
                let blob = self.blob(bucket, dst);
                let mut call = blob.set_properties();
                if let Some(v) = &m.content_type {
                    call = call.content_type(v.clone());
                }
                if let Some(v) = &m.content_encoding {
                    call = call.content_encoding(v.clone());
                }
                if let Some(v) = &m.content_disposition {
                    call = call.content_disposition(v.clone());
                }
                if let Some(v) = &m.content_language {
                    call = call.content_language(v.clone());
                }
                if let Some(v) = &m.cache_control {
                    call = call.cache_control(v.clone());
                }
                call.await.map_err(|e| map_err(e, bucket, dst))?;
                self.properties(bucket, dst).await
            }
            None => self.properties(bucket, dst).await,
        }
    }

    async fn create_multipart(&self, _bucket: &str, _key: &str, _meta: &ObjectMeta) -> Result<String> {
        Ok(format!("{:016x}", rand::random::<u64>()))
    }

    async fn upload_part(&self, bucket: &str, key: &str, upload: &str, number: u32, body: Payload) -> Result<String> {
        let mut chunks = Chunker::new((body.open)(0), body.size.max(1) as usize);
        let data = chunks.next().await.map_err(|e| Error::Other(format!("reading the part: {e}")))?.unwrap_or_default();
        let id = block_id(upload, number);
        self.blob_checked(bucket, key)?.put_block(id, data).await.map_err(|e| map_err(e, bucket, key))?;
        Ok(format!("{upload}-{number:05}"))
    }

    async fn complete_multipart(
        &self,
        bucket: &str,
        key: &str,
        upload: &str,
        parts: &[(u32, String)],
        meta: &ObjectMeta,
    ) -> Result<ObjectMeta> {
        let ids = parts.iter().map(|(n, _)| block_id(upload, *n)).collect();
        self.commit_blocks(bucket, key, ids, meta).await
    }

    async fn abort_multipart(&self, _bucket: &str, _key: &str, _upload: &str) -> Result<()> {
        // Uncommitted blocks are garbage-collected by Azure after a week; nothing to do.
        Ok(())
    }
}
