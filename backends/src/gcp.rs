//! Google Cloud Storage through its JSON API, on `gcloud-storage`.
//!
//! Credentials: a service-account JSON file from the config or `GOOGLE_APPLICATION_CREDENTIALS` (else the
//! metadata server on GCE); with an endpoint configured (or `STORAGE_EMULATOR_HOST`) and no credentials, the
//! client is anonymous, as emulators expect. S3 semantics are mapped as follows: ETag = hex MD5 when the object
//! has one (objects written in one piece), else GCS's etag; version = generation; suffix ranges are resolved
//! with a metadata read first. An S3 multipart upload reaches GCS as one resumable upload of the assembled
//! object at completion (`lockstep_multipart` is false): parts can arrive in any order and concurrently, which
//! a resumable session cannot take, and `compose` results cannot be read back from the offline emulator
//! (it sends their `size` as a number, which the client refuses), so that path could not be tested.

use std::collections::BTreeMap;
use std::path::PathBuf;

use async_trait::async_trait;
use base64::Engine;
use futures::TryStreamExt;
use gcloud_storage::client::{Client, ClientConfig};
use gcloud_storage::http::buckets::get::GetBucketRequest;
use gcloud_storage::http::objects::copy::CopyObjectRequest;
use gcloud_storage::http::objects::delete::DeleteObjectRequest;
use gcloud_storage::http::objects::download::Range;
use gcloud_storage::http::objects::get::GetObjectRequest;
use gcloud_storage::http::objects::list::ListObjectsRequest;
use gcloud_storage::http::objects::upload::{UploadObjectRequest, UploadType};
use gcloud_storage::http::objects::Object;
use gcloud_storage::http::resumable_upload_client::{ChunkSize, UploadStatus};

use crate::chunks::Chunker;
use crate::{
    Backend, ByteStream, Error, GetOptions, GetResult, ListEntry, ListPage, ListRequest, ObjectMeta, Payload, Result,
};

/// Resumable-upload chunk: a multiple of 256 KiB, as GCS requires.
const CHUNK: usize = 8 << 20;

#[derive(Debug, Clone, Default)]
pub struct GcpOptions {
    pub endpoint: Option<String>,
    pub credentials_file: Option<PathBuf>,
}

pub struct Gcp {
    client: Client,
}

#[derive(Debug, thiserror::Error)]
#[error("gcp credentials: {0}")]
pub struct ConnectError(String);

impl Gcp {
    pub async fn connect(opts: &GcpOptions) -> Result<Gcp, ConnectError> {
        let endpoint = opts.endpoint.clone().or_else(|| std::env::var("STORAGE_EMULATOR_HOST").ok());
        let creds = opts
            .credentials_file
            .clone()
            .or_else(|| std::env::var_os("GOOGLE_APPLICATION_CREDENTIALS").map(PathBuf::from));
        let mut config = ClientConfig::default();
        config = match (&creds, &endpoint) {
            (Some(path), _) => {
                let file = gcloud_storage::client::google_cloud_auth::credentials::CredentialsFile::new_from_file(
                    path.to_string_lossy().into_owned(),
                )
                .await
                .map_err(|e| ConnectError(format!("{}: {e}", path.display())))?;
                config.with_credentials(file).await.map_err(|e| ConnectError(e.to_string()))?
            }
            (None, Some(_)) => config.anonymous(),
            (None, None) => config.with_auth().await.map_err(|e| ConnectError(e.to_string()))?,
        };
        if let Some(e) = endpoint {
            let e = if e.contains("://") { e } else { format!("http://{e}") };
            config.storage_endpoint = e.trim_end_matches('/').to_owned();
        }
        Ok(Gcp { client: Client::new(config) })
    }
}

fn map_err(e: gcloud_storage::http::Error, bucket: &str, key: &str) -> Error {
    use gcloud_storage::http::Error as G;
    match e {
        G::Response(r) => {
            let reason = r.errors.first().map(|i| i.reason.clone());
            Error::from_status(r.code, reason.as_deref(), &r.message, bucket, key)
        }
        G::HttpClient(h) => match h.status() {
            Some(s) => Error::from_status(s.as_u16(), None, &h.to_string(), bucket, key),
            None => Error::unavailable(format!("gcp: {h}")),
        },
        G::RawResponse(h, body) => match h.status() {
            Some(s) => Error::from_status(s.as_u16(), None, &body, bucket, key),
            None => Error::unavailable(format!("gcp: {h}: {body}")),
        },
        G::HttpMiddleware(m) => Error::unavailable(format!("gcp: {m}")),
        other => Error::Other(format!("gcp: {other}")),
    }
}

fn to_meta(o: &Object) -> ObjectMeta {
    let md5_hex =
        o.md5_hash.as_deref().and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok()).map(hex::encode);
    let ms = |t: Option<time::OffsetDateTime>| t.map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64);
    ObjectMeta {
        size: o.size.max(0) as u64,
        etag: md5_hex.unwrap_or_else(|| o.etag.clone()),
        last_modified_ms: ms(o.updated).or(ms(o.time_created)).unwrap_or(0),
        version: (o.generation != 0).then(|| o.generation.to_string()),
        content_type: o.content_type.clone(),
        content_encoding: o.content_encoding.clone(),
        cache_control: o.cache_control.clone(),
        content_disposition: o.content_disposition.clone(),
        content_language: o.content_language.clone(),
        user_meta: o.metadata.clone().map(|m| m.into_iter().collect::<BTreeMap<_, _>>()).unwrap_or_default(),
    }
}

fn to_object(key: &str, m: &ObjectMeta) -> Object {
    Object {
        name: key.to_owned(),
        content_type: m.content_type.clone(),
        content_encoding: m.content_encoding.clone(),
        cache_control: m.cache_control.clone(),
        content_disposition: m.content_disposition.clone(),
        content_language: m.content_language.clone(),
        metadata: (!m.user_meta.is_empty()).then(|| m.user_meta.clone().into_iter().collect()),
        ..Default::default()
    }
}

impl Gcp {
    async fn object(&self, bucket: &str, key: &str) -> Result<Object> {
        let req = GetObjectRequest { bucket: bucket.to_owned(), object: key.to_owned(), ..Default::default() };
        self.client.get_object(&req).await.map_err(|e| map_err(e, bucket, key))
    }

    async fn delete_quiet(&self, bucket: &str, key: &str) -> Result<()> {
        let req = DeleteObjectRequest { bucket: bucket.to_owned(), object: key.to_owned(), ..Default::default() };
        match self.client.delete_object(&req).await.map_err(|e| map_err(e, bucket, key)) {
            Ok(()) | Err(Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[async_trait]
impl Backend for Gcp {
    fn provider(&self) -> &'static str {
        "gcp"
    }

    async fn head_bucket(&self, bucket: &str) -> Result<()> {
        let req = GetBucketRequest { bucket: bucket.to_owned(), ..Default::default() };
        self.client.get_bucket(&req).await.map_err(|e| map_err(e, bucket, ""))?;
        Ok(())
    }

    async fn head(&self, bucket: &str, key: &str) -> Result<ObjectMeta> {
        Ok(to_meta(&self.object(bucket, key).await?))
    }

    async fn get(&self, bucket: &str, key: &str, opts: GetOptions) -> Result<GetResult> {
        // The media download carries no metadata: read it first and pin the download to its generation.
        let obj = self.object(bucket, key).await?;
        let meta = to_meta(&obj);
        if opts.if_match.as_deref().is_some_and(|e| e != meta.etag) {
            return Err(Error::PreconditionFailed);
        }
        let (range, span) = match opts.range {
            None => (Range::default(), (0, meta.size)),
            Some(r) => {
                let (s, e) = r.resolve(meta.size).ok_or(Error::RangeNotSatisfiable)?;
                (Range(Some(s), Some(e - 1)), (s, e))
            }
        };
        let req = GetObjectRequest {
            bucket: bucket.to_owned(),
            object: key.to_owned(),
            generation: (obj.generation != 0).then_some(obj.generation),
            ..Default::default()
        };
        let stream = if meta.size == 0 {
            Box::pin(futures::stream::empty()) as ByteStream
        } else {
            let s = self.client.download_streamed_object(&req, &range).await.map_err(|e| map_err(e, bucket, key))?;
            Box::pin(s.map_err(std::io::Error::other)) as ByteStream
        };
        Ok(GetResult { meta, range: span, body: stream })
    }

    async fn put(&self, bucket: &str, key: &str, body: Payload, meta: &ObjectMeta) -> Result<ObjectMeta> {
        let req = UploadObjectRequest { bucket: bucket.to_owned(), ..Default::default() };
        let upload_type = UploadType::Multipart(Box::new(to_object(key, meta)));
        let mut chunks = Chunker::new((body.open)(0), CHUNK);
        let read_err = |e: std::io::Error| Error::Other(format!("reading the upload: {e}"));
        if body.size <= CHUNK as u64 {
            let data = chunks.next().await.map_err(read_err)?.unwrap_or_default();
            let o = self.client.upload_object(&req, data, &upload_type).await.map_err(|e| map_err(e, bucket, key))?;
            return Ok(to_meta(&o));
        }
        let session =
            self.client.prepare_resumable_upload(&req, &upload_type).await.map_err(|e| map_err(e, bucket, key))?;
        let mut offset = 0u64;
        while let Some(chunk) = chunks.next().await.map_err(read_err)? {
            let len = chunk.len() as u64;
            if len == 0 {
                break;
            }
            let range = ChunkSize::new(offset, offset + len - 1, Some(body.size));
            match session.upload_multiple_chunk(chunk, &range).await.map_err(|e| map_err(e, bucket, key))? {
                UploadStatus::Ok(o) => return Ok(to_meta(&o)),
                UploadStatus::ResumeIncomplete(_) | UploadStatus::NotStarted => offset += len,
            }
        }
        Err(Error::Other(format!("gcp: resumable upload of {key} ended without the object")))
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<()> {
        self.delete_quiet(bucket, key).await
    }

    async fn list(&self, bucket: &str, req: ListRequest) -> Result<ListPage> {
        let lreq = ListObjectsRequest {
            bucket: bucket.to_owned(),
            prefix: (!req.prefix.is_empty()).then(|| req.prefix.clone()),
            delimiter: req.delimiter.clone(),
            max_results: Some(req.max_keys.clamp(1, 1000) as i32),
            page_token: req.token.clone(),
            start_offset: req.start_after.clone(),
            include_trailing_delimiter: None,
            ..Default::default()
        };
        let o = self.client.list_objects(&lreq).await.map_err(|e| map_err(e, bucket, ""))?;
        let after = req.start_after.as_deref().unwrap_or("");
        let entries = o
            .items
            .unwrap_or_default()
            .iter()
            .filter(|i| i.name.as_str() > after)
            .map(|i| ListEntry { key: i.name.clone(), meta: to_meta(i) })
            .collect();
        let common_prefixes = o.prefixes.unwrap_or_default().into_iter().filter(|p| p.as_str() > after).collect();
        Ok(ListPage { entries, common_prefixes, next_token: o.next_page_token.filter(|t| !t.is_empty()) })
    }

    async fn copy(&self, bucket: &str, src: &str, dst: &str, meta: Option<&ObjectMeta>) -> Result<ObjectMeta> {
        let req = CopyObjectRequest {
            destination_bucket: bucket.to_owned(),
            destination_object: dst.to_owned(),
            source_bucket: bucket.to_owned(),
            source_object: src.to_owned(),
            metadata: meta.map(|m| to_object(dst, m)),
            ..Default::default()
        };
        let o = self.client.copy_object(&req).await.map_err(|e| map_err(e, bucket, src))?;
        Ok(to_meta(&o))
    }

    fn lockstep_multipart(&self) -> bool {
        false
    }
}
