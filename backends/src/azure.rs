//! Azure Blob storage, on `azure_storage_blobs`.
//!
//! Credentials: a connection string, an account key, or a SAS token from the config, else
//! `AZURE_STORAGE_CONNECTION_STRING` or `AZURE_STORAGE_ACCOUNT` + `AZURE_STORAGE_KEY`; the endpoint may point at
//! an emulator (`http://127.0.0.1:10000/devstoreaccount1`). S3 semantics are mapped as follows: a bucket is a
//! container; ETag = the blob's ETag without quotes; there are no suffix ranges in Azure, so every range is
//! resolved against the blob's size first; large uploads and S3 multipart uploads become uncommitted blocks
//! committed by one Put Block List (block id = upload id + part number, so all ids have the same length).
//!
//! Containers (HEAD, listing) go through `azure_storage_blobs`. Blob requests are built here and sent through
//! the SDK's own pipeline (its shared-key/SAS signing): its blob client trims `/` from both ends of blob names
//! (so `dir/` would become `dir`), reads Content-Disposition from the wrong header, and cannot set
//! Cache-Control on uploads.

use std::collections::BTreeMap;

use async_trait::async_trait;
use azure_core::headers::Headers;
use azure_core::{Body, ClientOptions, Context, Method, Pipeline, Url};
use azure_storage::clients::ServiceType;
use azure_storage::{CloudLocation, ConnectionString, StorageCredentials};
use azure_storage_blobs::blob::BlobProperties;
use azure_storage_blobs::container::operations::BlobItem;
use azure_storage_blobs::prelude::*;
use base64::Engine;
use bytes::Bytes;
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
    pipeline: Pipeline,
    /// Blob service URL without a trailing `/`, e.g. `http://127.0.0.1:10000/devstoreaccount1`.
    base: String,
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
        let base = location.url(ServiceType::Blob).map_err(|e| ConnectError(e.to_string()))?.to_string();
        let options = ClientOptions::default().retry(azure_core::RetryOptions::none());
        let pipeline = azure_storage::clients::new_pipeline_from_options(options, creds.clone());
        let service = ClientBuilder::new(account, creds)
            .cloud_location(location)
            .retry(azure_core::RetryOptions::none())
            .blob_service_client();
        Ok(Azure { service, pipeline, base: base.trim_end_matches('/').to_owned() })
    }

    /// The URL of blob `key` with `query` (`""` or `?comp=...`): every `/` of the name kept, each segment
    /// percent-encoded. `.` and `..` segments are refused: URL parsing would resolve them away.
    fn blob_url(&self, bucket: &str, key: &str, query: &str) -> Result<Url> {
        let mut path = String::with_capacity(key.len() * 3 / 2);
        for (i, seg) in key.split('/').enumerate() {
            if seg == "." || seg == ".." {
                return Err(Error::Invalid(format!(
                    "Azure blob names with '.' or '..' segments are not supported: {key:?}"
                )));
            }
            if i > 0 {
                path.push('/');
            }
            path.extend(percent_encoding::utf8_percent_encode(seg, SEGMENT));
        }
        Url::parse(&format!("{}/{bucket}/{path}{query}", self.base))
            .map_err(|e| Error::Invalid(format!("blob URL: {e}")))
    }

    async fn send(
        &self,
        method: Method,
        url: Url,
        headers: Headers,
        body: Option<Bytes>,
        bucket: &str,
        key: &str,
    ) -> Result<azure_core::Response> {
        let mut req = azure_storage::clients::finalize_request(url, method, headers, body.map(Body::from))
            .map_err(|e| Error::Other(format!("azure: {e}")))?;
        let mut ctx = Context::new();
        self.pipeline.send(ctx.insert(ServiceType::Blob), &mut req).await.map_err(|e| map_err(e, bucket, key))
    }

    async fn properties(&self, bucket: &str, key: &str) -> Result<ObjectMeta> {
        let url = self.blob_url(bucket, key, "")?;
        let r = self.send(Method::Head, url, Headers::new(), None, bucket, key).await?;
        Ok(to_meta(r.headers(), None))
    }

    /// Put Block List with the object's headers and metadata.
    async fn commit_blocks(&self, bucket: &str, key: &str, ids: &[String], meta: &ObjectMeta) -> Result<ObjectMeta> {
        let mut xml = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>");
        for id in ids {
            xml.push_str("<Latest>");
            xml.push_str(&base64::engine::general_purpose::STANDARD.encode(id));
            xml.push_str("</Latest>");
        }
        xml.push_str("</BlockList>");
        let url = self.blob_url(bucket, key, "?comp=blocklist")?;
        self.send(Method::Put, url, blob_headers(meta), Some(Bytes::from(xml)), bucket, key).await?;
        self.properties(bucket, key).await
    }

    async fn put_block(&self, bucket: &str, key: &str, id: &str, data: Bytes) -> Result<()> {
        let block = base64::engine::general_purpose::STANDARD.encode(id);
        let q = format!("?comp=block&blockid={}", percent_encoding::utf8_percent_encode(&block, SEGMENT));
        let url = self.blob_url(bucket, key, &q)?;
        self.send(Method::Put, url, Headers::new(), Some(data), bucket, key).await?;
        Ok(())
    }
}

/// What stays unescaped in a path segment: RFC 3986 unreserved characters.
const SEGMENT: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

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

/// Object attributes from a blob response's headers (Get Blob Properties, Get Blob).
fn to_meta(h: &Headers, size: Option<u64>) -> ObjectMeta {
    let get = |name: &str| h.iter().find(|(k, _)| k.as_str() == name).map(|(_, v)| v.as_str().to_owned());
    let user_meta = h
        .iter()
        .filter_map(|(k, v)| k.as_str().strip_prefix("x-ms-meta-").map(|n| (n.to_owned(), v.as_str().to_owned())))
        .collect::<BTreeMap<_, _>>();
    ObjectMeta {
        size: size.or_else(|| get("content-length").and_then(|v| v.parse().ok())).unwrap_or(0),
        etag: get("etag").unwrap_or_default().trim_matches('"').to_owned(),
        last_modified_ms: get("last-modified")
            .and_then(|v| azure_core::date::parse_rfc1123(&v).ok())
            .map_or(0, |t| (t.unix_timestamp_nanos() / 1_000_000) as i64),
        version: None,
        content_type: get("content-type").filter(|c| !c.is_empty()),
        content_encoding: get("content-encoding"),
        cache_control: get("cache-control"),
        content_disposition: get("content-disposition"),
        content_language: get("content-language"),
        user_meta,
    }
}

/// Object attributes of a listed blob.
fn listed_meta(p: &BlobProperties, metadata: Option<&std::collections::HashMap<String, String>>) -> ObjectMeta {
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
        user_meta: metadata.map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default(),
    }
}

/// The `x-ms-blob-*` headers and `x-ms-meta-*` metadata of Put Blob, Put Block List and Set Blob Properties.
fn blob_headers(m: &ObjectMeta) -> Headers {
    let mut h = Headers::new();
    let fields = [
        ("x-ms-blob-content-type", &m.content_type),
        ("x-ms-blob-content-encoding", &m.content_encoding),
        ("x-ms-blob-content-language", &m.content_language),
        ("x-ms-blob-content-disposition", &m.content_disposition),
        ("x-ms-blob-cache-control", &m.cache_control),
    ];
    for (name, value) in fields {
        if let Some(v) = value {
            h.insert(name, v.clone());
        }
    }
    for (k, v) in &m.user_meta {
        h.insert(format!("x-ms-meta-{k}"), v.clone());
    }
    h
}

/// Block ids of one upload: same length for every block, as Azure requires.
fn block_id(upload: &str, n: u32) -> String {
    format!("{upload}-{n:05}")
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
        let mut h = Headers::new();
        h.insert("x-ms-range", format!("bytes={s}-{}", e - 1));
        h.insert("if-match", format!("\"{}\"", meta.etag));
        let url = self.blob_url(bucket, key, "")?;
        let r = self.send(Method::Get, url, h, None, bucket, key).await?;
        let body: ByteStream = Box::pin(r.into_body().map_err(std::io::Error::other));
        Ok(GetResult { meta, range: (s, e), body })
    }

    async fn put(&self, bucket: &str, key: &str, body: Payload, meta: &ObjectMeta) -> Result<ObjectMeta> {
        let mut chunks = Chunker::new((body.open)(0), BLOCK);
        let read_err = |e: std::io::Error| Error::Other(format!("reading the upload: {e}"));
        if body.size <= BLOCK as u64 {
            let data = chunks.next().await.map_err(read_err)?.unwrap_or_default();
            let mut h = blob_headers(meta);
            h.insert("x-ms-blob-type", "BlockBlob");
            let url = self.blob_url(bucket, key, "")?;
            self.send(Method::Put, url, h, Some(data), bucket, key).await?;
            return self.properties(bucket, key).await;
        }
        let upload = format!("{:016x}", rand::random::<u64>());
        let mut ids = Vec::new();
        let mut n = 1;
        while let Some(chunk) = chunks.next().await.map_err(read_err)? {
            if chunk.is_empty() {
                break;
            }
            let id = block_id(&upload, n);
            self.put_block(bucket, key, &id, chunk).await?;
            ids.push(id);
            n += 1;
        }
        self.commit_blocks(bucket, key, &ids, meta).await
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<()> {
        let url = self.blob_url(bucket, key, "")?;
        match self.send(Method::Delete, url, Headers::new(), None, bucket, key).await {
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
                BlobItem::Blob(b) if b.name.as_str() > after => entries
                    .push(ListEntry { key: b.name.clone(), meta: listed_meta(&b.properties, b.metadata.as_ref()) }),
                BlobItem::BlobPrefix(p) if p.name.as_str() > after => common_prefixes.push(p.name.clone()),
                _ => {}
            }
        }
        let next_token = page.next_marker.map(|m| m.as_str().to_owned()).filter(|m| !m.is_empty());
        Ok(ListPage { entries, common_prefixes, next_token })
    }

    async fn copy(&self, bucket: &str, src: &str, dst: &str, meta: Option<&ObjectMeta>) -> Result<ObjectMeta> {
        let source = self.blob_url(bucket, src, "")?;
        let mut h = Headers::new();
        h.insert("x-ms-copy-source", source.to_string());
        if let Some(m) = meta {
            // Metadata given with Copy Blob replaces the source's; without any, the source's is copied.
            for (k, v) in &m.user_meta {
                h.insert(format!("x-ms-meta-{k}"), v.clone());
            }
        }
        let url = self.blob_url(bucket, dst, "")?;
        self.send(Method::Put, url, h, None, bucket, src).await?;
        // Within an account the copy is usually done when the call returns; wait (bounded) when it is not.
        for _ in 0..300 {
            let url = self.blob_url(bucket, dst, "")?;
            let r = self.send(Method::Head, url, Headers::new(), None, bucket, dst).await?;
            let status =
                r.headers().iter().find(|(k, _)| k.as_str() == "x-ms-copy-status").map(|(_, v)| v.as_str().to_owned());
            if status.as_deref() != Some("pending") {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        if let Some(m) = meta {
            // Set Blob Properties replaces all standard headers at once.
            let url = self.blob_url(bucket, dst, "?comp=properties")?;
            let mut h = blob_headers(&ObjectMeta { user_meta: BTreeMap::new(), ..m.clone() });
            h.insert("x-ms-blob-content-type", m.content_type.clone().unwrap_or_default());
            self.send(Method::Put, url, h, None, bucket, dst).await?;
        }
        self.properties(bucket, dst).await
    }

    async fn create_multipart(&self, _bucket: &str, _key: &str, _meta: &ObjectMeta) -> Result<String> {
        Ok(format!("{:016x}", rand::random::<u64>()))
    }

    async fn upload_part(&self, bucket: &str, key: &str, upload: &str, number: u32, body: Payload) -> Result<String> {
        let mut chunks = Chunker::new((body.open)(0), body.size.max(1) as usize);
        let data = chunks.next().await.map_err(|e| Error::Other(format!("reading the part: {e}")))?.unwrap_or_default();
        let id = block_id(upload, number);
        self.put_block(bucket, key, &id, data).await?;
        Ok(id)
    }

    async fn complete_multipart(
        &self,
        bucket: &str,
        key: &str,
        upload: &str,
        parts: &[(u32, String)],
        meta: &ObjectMeta,
    ) -> Result<ObjectMeta> {
        let ids: Vec<String> = parts.iter().map(|(n, _)| block_id(upload, *n)).collect();
        self.commit_blocks(bucket, key, &ids, meta).await
    }

    async fn abort_multipart(&self, _bucket: &str, _key: &str, _upload: &str) -> Result<()> {
        // Uncommitted blocks are garbage-collected by Azure after a week; nothing to do.
        Ok(())
    }
}
