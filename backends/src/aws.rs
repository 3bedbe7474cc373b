//! AWS S3 and any S3-compatible origin, on `aws-sdk-s3`.
//!
//! Endpoint, region, path-style addressing and credentials come from Trove's config when given, else from the
//! SDK's standard chain (`AWS_*` environment, profiles, `AWS_ENDPOINT_URL`). The SDK's own retries are off:
//! [`crate::retry::Resilient`] owns retrying, so attempts are bounded in one place.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream as SdkStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, MetadataDirective};
use aws_sdk_s3::Client;
use bytes::Bytes;

use crate::chunks::Chunker;
use crate::{
    Backend, ByteStream, Error, GetOptions, GetResult, ListEntry, ListPage, ListRequest, ObjectMeta, Payload, Result,
};

/// Uploads up to this size go up as one PutObject; larger ones as a multipart upload of parts this size.
const PART_SIZE: usize = 8 << 20;

#[derive(Debug, Clone, Default)]
pub struct AwsOptions {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    /// Access key and secret; `None` uses the SDK's credential chain.
    pub credentials: Option<(String, String)>,
    pub path_style: bool,
    pub connect_timeout: Option<Duration>,
}

pub struct Aws {
    client: Client,
}

impl Aws {
    pub async fn connect(opts: &AwsOptions) -> Aws {
        let mut loader =
            aws_config::defaults(BehaviorVersion::latest()).retry_config(aws_config::retry::RetryConfig::disabled());
        if let Some(r) = &opts.region {
            loader = loader.region(Region::new(r.clone()));
        }
        if let Some(e) = &opts.endpoint {
            loader = loader.endpoint_url(e);
        }
        if let Some((ak, sk)) = &opts.credentials {
            loader = loader.credentials_provider(Credentials::new(ak, sk, None, None, "trove-config"));
        }
        if let Some(t) = opts.connect_timeout {
            loader = loader.timeout_config(aws_config::timeout::TimeoutConfig::builder().connect_timeout(t).build());
        }
        let sdk = loader.load().await;
        // Checksums only where S3 requires them: asking for response checksums makes some origins (moto,
        // gateways) compute them per request, and Trove verifies lengths and re-serves the origin's ETag.
        let mut conf = aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(opts.path_style)
            .response_checksum_validation(aws_sdk_s3::config::ResponseChecksumValidation::WhenRequired)
            .request_checksum_calculation(aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired);
        if sdk.region().is_none() {
            conf = conf.region(Region::new("us-east-1"));
        }
        Aws { client: Client::from_conf(conf.build()) }
    }
}

fn map_err<E: ProvideErrorMetadata + std::error::Error + 'static>(
    e: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    bucket: &str,
    key: &str,
) -> Error {
    match &e {
        SdkError::ServiceError(se) => {
            let status = se.raw().status().as_u16();
            let err = se.err();
            Error::from_status(status, err.code(), err.message().unwrap_or(""), bucket, key)
        }
        // The SDK resolves credentials while dispatching: having none is a refusal, not an outage.
        SdkError::DispatchFailure(_) if causes(&e).contains("no credentials") => {
            Error::AccessDenied(format!("aws: no usable credentials: {}", causes(&e)))
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            Error::unavailable(format!("aws: {}", causes(&e)))
        }
        _ => Error::Other(format!("aws: {}", DisplayErrorContext(&e))),
    }
}

/// The error and its causes, each displayed once, on one line (the SDK's own context adds a debug dump).
fn causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur = Some(e);
    while let Some(err) = cur {
        let text = err.to_string();
        if !text.is_empty() && !parts.last().is_some_and(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = err.source();
    }
    parts.join(": ")
}

fn unquote(s: Option<&str>) -> String {
    s.unwrap_or_default().trim_matches('"').to_owned()
}

fn millis(t: Option<&aws_sdk_s3::primitives::DateTime>) -> i64 {
    t.and_then(|t| t.to_millis().ok()).unwrap_or(0)
}

/// Total size from `Content-Range: bytes a-b/size`.
fn total_from_range(cr: Option<&str>) -> Option<u64> {
    cr?.rsplit_once('/')?.1.parse().ok()
}

fn sdk_to_stream(body: SdkStream) -> ByteStream {
    Box::pin(futures::stream::unfold(Some(body), |state| async move {
        let mut body = state?;
        match body.try_next().await {
            Ok(Some(b)) => Some((Ok(b), Some(body))),
            Ok(None) => None,
            Err(e) => Some((Err(std::io::Error::other(e)), None)),
        }
    }))
}

macro_rules! object_meta {
    ($o:expr, $size:expr) => {
        ObjectMeta {
            size: $size,
            etag: unquote($o.e_tag()),
            last_modified_ms: millis($o.last_modified()),
            version: $o.version_id().filter(|v| *v != "null").map(str::to_owned),
            content_type: $o.content_type().map(str::to_owned),
            content_encoding: $o.content_encoding().map(str::to_owned),
            cache_control: $o.cache_control().map(str::to_owned),
            content_disposition: $o.content_disposition().map(str::to_owned),
            content_language: $o.content_language().map(str::to_owned),
            user_meta: $o.metadata().map(|m| m.clone().into_iter().collect()).unwrap_or_default(),
        }
    };
}

/// Sets the standard headers and user metadata of `m` on a PutObject, CreateMultipartUpload or CopyObject
/// builder (different types with the same setters).
macro_rules! with_headers {
    ($call:expr, $m:expr) => {{
        let m: &ObjectMeta = $m;
        $call
            .set_content_type(m.content_type.clone())
            .set_content_encoding(m.content_encoding.clone())
            .set_cache_control(m.cache_control.clone())
            .set_content_disposition(m.content_disposition.clone())
            .set_content_language(m.content_language.clone())
            .set_metadata(Some(m.user_meta.clone().into_iter().collect()))
    }};
}

async fn read_one(p: &Payload) -> Result<Bytes> {
    let mut c = Chunker::new((p.open)(0), p.size.max(1) as usize);
    let b = c.next().await.map_err(|e| Error::Other(format!("reading the upload: {e}")))?.unwrap_or_default();
    if b.len() as u64 != p.size {
        return Err(Error::Other(format!("upload body has {} bytes, expected {}", b.len(), p.size)));
    }
    Ok(b)
}

#[async_trait]
impl Backend for Aws {
    fn provider(&self) -> &'static str {
        "aws"
    }

    async fn head_bucket(&self, bucket: &str) -> Result<()> {
        self.client.head_bucket().bucket(bucket).send().await.map_err(|e| map_err(e, bucket, ""))?;
        Ok(())
    }

    async fn head(&self, bucket: &str, key: &str) -> Result<ObjectMeta> {
        let o = self.client.head_object().bucket(bucket).key(key).send().await.map_err(|e| map_err(e, bucket, key))?;
        Ok(object_meta!(o, o.content_length().unwrap_or(0).max(0) as u64))
    }

    async fn get(&self, bucket: &str, key: &str, opts: GetOptions) -> Result<GetResult> {
        let o = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .set_range(opts.range.map(|r| r.header()))
            .set_if_match(opts.if_match.map(|e| format!("\"{e}\"")))
            .send()
            .await
            .map_err(|e| map_err(e, bucket, key))?;
        let len = o.content_length().unwrap_or(0).max(0) as u64;
        let (size, range) = match total_from_range(o.content_range()) {
            Some(total) => {
                let start = o
                    .content_range()
                    .and_then(|c| c.strip_prefix("bytes "))
                    .and_then(|c| c.split('-').next())
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                (total, (start, start + len))
            }
            None => (len, (0, len)),
        };
        let meta = object_meta!(o, size);
        Ok(GetResult { meta, range, body: sdk_to_stream(o.body) })
    }

    async fn put(&self, bucket: &str, key: &str, body: Payload, meta: &ObjectMeta) -> Result<ObjectMeta> {
        if body.size > PART_SIZE as u64 {
            let upload = self.create_multipart(bucket, key, meta).await?;
            let mut chunks = Chunker::new((body.open)(0), PART_SIZE);
            let mut parts = Vec::new();
            let mut n = 1;
            let outcome: Result<()> = async {
                while let Some(chunk) =
                    chunks.next().await.map_err(|e| Error::Other(format!("reading the upload: {e}")))?
                {
                    let etag = self.upload_part(bucket, key, &upload, n, Payload::from_bytes(chunk)).await?;
                    parts.push((n, etag));
                    n += 1;
                }
                Ok(())
            }
            .await;
            if let Err(e) = outcome {
                let _ = self.abort_multipart(bucket, key, &upload).await;
                return Err(e);
            }
            return self.complete_multipart(bucket, key, &upload, &parts, meta).await;
        }
        let data = read_one(&body).await?;
        let call = self.client.put_object().bucket(bucket).key(key);
        let o = with_headers!(call, meta)
            .content_length(body.size as i64)
            .body(SdkStream::from(data))
            .send()
            .await
            .map_err(|e| map_err(e, bucket, key))?;
        Ok(ObjectMeta {
            size: body.size,
            etag: unquote(o.e_tag()),
            version: o.version_id().map(str::to_owned),
            last_modified_ms: now_ms(),
            ..meta.clone()
        })
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<()> {
        match self.client.delete_object().bucket(bucket).key(key).send().await {
            Ok(_) => Ok(()),
            Err(e) => match map_err(e, bucket, key) {
                Error::NotFound { .. } => Ok(()),
                other => Err(other),
            },
        }
    }

    async fn list(&self, bucket: &str, req: ListRequest) -> Result<ListPage> {
        let o = self
            .client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(&req.prefix)
            .set_delimiter(req.delimiter.clone())
            .set_start_after(req.start_after.clone())
            .set_continuation_token(req.token.clone())
            .max_keys(req.max_keys.clamp(1, 1000) as i32)
            .send()
            .await
            .map_err(|e| map_err(e, bucket, ""))?;
        let entries = o
            .contents()
            .iter()
            .map(|c| ListEntry {
                key: c.key().unwrap_or_default().to_owned(),
                meta: ObjectMeta {
                    size: c.size().unwrap_or(0).max(0) as u64,
                    etag: unquote(c.e_tag()),
                    last_modified_ms: millis(c.last_modified()),
                    ..Default::default()
                },
            })
            .collect();
        let common_prefixes = o.common_prefixes().iter().filter_map(|p| p.prefix().map(str::to_owned)).collect();
        let next_token =
            if o.is_truncated().unwrap_or(false) { o.next_continuation_token().map(str::to_owned) } else { None };
        Ok(ListPage { entries, common_prefixes, next_token })
    }

    async fn copy(&self, bucket: &str, src: &str, dst: &str, meta: Option<&ObjectMeta>) -> Result<ObjectMeta> {
        let source = format!("{bucket}/{}", percent_encoding::utf8_percent_encode(src, COPY_SOURCE));
        let mut call = self.client.copy_object().bucket(bucket).key(dst).copy_source(source);
        if let Some(m) = meta {
            call = with_headers!(call.metadata_directive(MetadataDirective::Replace), m);
        }
        call.send().await.map_err(|e| map_err(e, bucket, src))?;
        self.head(bucket, dst).await
    }

    async fn create_multipart(&self, bucket: &str, key: &str, meta: &ObjectMeta) -> Result<String> {
        let o = with_headers!(self.client.create_multipart_upload().bucket(bucket).key(key), meta)
            .send()
            .await
            .map_err(|e| map_err(e, bucket, key))?;
        o.upload_id()
            .map(str::to_owned)
            .ok_or_else(|| Error::Other("aws: CreateMultipartUpload without an upload id".into()))
    }

    async fn upload_part(&self, bucket: &str, key: &str, upload: &str, number: u32, body: Payload) -> Result<String> {
        let data = read_one(&body).await?;
        let o = self
            .client
            .upload_part()
            .bucket(bucket)
            .key(key)
            .upload_id(upload)
            .part_number(number as i32)
            .content_length(body.size as i64)
            .body(SdkStream::from(data))
            .send()
            .await
            .map_err(|e| map_err(e, bucket, key))?;
        Ok(unquote(o.e_tag()))
    }

    async fn complete_multipart(
        &self,
        bucket: &str,
        key: &str,
        upload: &str,
        parts: &[(u32, String)],
        _meta: &ObjectMeta,
    ) -> Result<ObjectMeta> {
        let done = CompletedMultipartUpload::builder()
            .set_parts(Some(
                parts
                    .iter()
                    .map(|(n, etag)| {
                        CompletedPart::builder().part_number(*n as i32).e_tag(format!("\"{etag}\"")).build()
                    })
                    .collect(),
            ))
            .build();
        self.client
            .complete_multipart_upload()
            .bucket(bucket)
            .key(key)
            .upload_id(upload)
            .multipart_upload(done)
            .send()
            .await
            .map_err(|e| map_err(e, bucket, key))?;
        self.head(bucket, key).await
    }

    async fn abort_multipart(&self, bucket: &str, key: &str, upload: &str) -> Result<()> {
        match self.client.abort_multipart_upload().bucket(bucket).key(key).upload_id(upload).send().await {
            Ok(_) => Ok(()),
            Err(e) => match map_err(e, bucket, key) {
                Error::NotFound { .. } => Ok(()),
                other => Err(other),
            },
        }
    }
}

/// `x-amz-copy-source` is `bucket/key` with the key URL-encoded; `/` stays.
const COPY_SOURCE: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'/').remove(b'-').remove(b'_').remove(b'.').remove(b'~');

pub(crate) fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

#[cfg(test)]
mod tests {
    #[test]
    fn content_range_total() {
        assert_eq!(super::total_from_range(Some("bytes 0-9/100")), Some(100));
        assert_eq!(super::total_from_range(None), None);
    }
}
