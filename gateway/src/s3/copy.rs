//! CopyObject and UploadPartCopy on the S3 wire: the door's check of the source, S3's copy rules and
//! metadata directives; the copies themselves are the data layer's (`data/copy.rs`).

use std::fs::File;

use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};
use trove_cache::ObjMeta;
use trove_namespace::BucketEntry;

use crate::data;
use crate::data::now_ms;
use crate::s3::bucket::timestamp_ms;
use crate::s3::conditions::{self, ReadConditions};
use crate::s3::ctx::{bucket, caller_opt, check_key};
use crate::s3::errors::{self, from_data};
use crate::s3::object::{http_date, DEFAULT_CONTENT_TYPE};
use crate::s3::sse;
use crate::s3::tagging;
use crate::state::{SharedState, User};

/// The source bucket, key and version of a copy, if the door lets `user` read the source object.
fn source<'a>(
    state: &SharedState,
    user: Option<&User>,
    src: &'a CopySource,
    headers: &http::HeaderMap,
) -> S3Result<(BucketEntry, &'a str, Option<&'a str>)> {
    let CopySource::Bucket { bucket, key, version_id } = src else {
        return Err(s3_error!(NotImplemented, "Copying from an access point is not supported"));
    };
    check_key(key)?;
    Ok((source_bucket(state, user, bucket, key, headers)?, key, version_id.as_deref()))
}

/// The source of a copy (a version of it, when named), opened (so later changes of the source do not affect
/// the copy) and checked against the `x-amz-copy-source-if-*` conditions.
async fn open_source(
    state: &SharedState,
    entry: &BucketEntry,
    key: &str,
    version: Option<&str>,
    cond: &ReadConditions<'_>,
) -> S3Result<(File, ObjMeta)> {
    let (file, meta) = match version {
        Some(v) => data::versions::open(state, entry, key, v).await.map_err(from_data)?,
        None => data::copy::open_source(state, entry, key).await.map_err(from_data)?,
    };
    if meta.delete_marker {
        return Err(s3_error!(
            InvalidRequest,
            "The source of a copy request may not specifically refer to a delete marker by version id."
        ));
    }
    conditions::check_copy_source(cond, &meta)?;
    Ok((file, meta))
}

const COPY_TO_ITSELF: &str = "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.";

/// The source bucket of a copy, if the door lets `user` read the source object.
fn source_bucket(
    state: &SharedState,
    user: Option<&User>,
    bucket: &str,
    key: &str,
    headers: &http::HeaderMap,
) -> S3Result<trove_namespace::BucketEntry> {
    let entry = state.registry.get(bucket);
    crate::s3::access::check_copy_source(state, user, entry.as_ref(), key, headers)?;
    entry.ok_or_else(errors::no_such_bucket)
}

pub async fn copy_object(
    state: &SharedState,
    req: S3Request<CopyObjectInput>,
) -> S3Result<S3Response<CopyObjectOutput>> {
    let user = caller_opt(&req)?.cloned();
    let dest = bucket(&req)?;
    let S3Request { input: i, headers, .. } = req;
    check_key(&i.key)?;
    let cond = ReadConditions {
        if_match: i.copy_source_if_match.as_ref(),
        if_none_match: i.copy_source_if_none_match.as_ref(),
        if_modified_since: i.copy_source_if_modified_since.as_ref(),
        if_unmodified_since: i.copy_source_if_unmodified_since.as_ref(),
    };
    errors::check_space(state)?;
    let replace = i.metadata_directive.as_ref().is_some_and(|d| d.as_str() == MetadataDirective::REPLACE);
    let (src, src_key, src_version) = source(state, user.as_ref(), &i.copy_source, &headers)?;
    if src.bck.is_remote() && src.bck == dest.bck && src_version.is_none() {
        // Same backend bucket: the backend copies; nothing moves through Trove.
        let new_meta = replace.then(|| ObjMeta {
            content_type: Some(i.content_type.clone().unwrap_or_else(|| DEFAULT_CONTENT_TYPE.to_owned())),
            content_encoding: i.content_encoding.clone(),
            content_disposition: i.content_disposition.clone(),
            content_language: i.content_language.clone(),
            cache_control: i.cache_control.clone(),
            user: i.metadata.clone().unwrap_or_default().into_iter().collect(),
            ..Default::default()
        });
        if src_key == i.key && new_meta.is_none() {
            return Err(s3_error!(InvalidRequest, "{COPY_TO_ITSELF}"));
        }
        let meta =
            data::copy::copy_within(state, &dest, src_key, &i.key, new_meta.as_ref()).await.map_err(from_data)?;
        return Ok(S3Response::new(CopyObjectOutput {
            copy_object_result: Some(CopyObjectResult {
                e_tag: Some(ETag::Strong(meta.etag.clone())),
                last_modified: Some(timestamp_ms(meta.mtime_ms)),
                ..Default::default()
            }),
            ..Default::default()
        }));
    }
    if dest.bck.is_remote() {
        return Err(s3_error!(
            NotImplemented,
            "CopyObject into a cloud bucket from a different bucket is not supported; copy through a client"
        ));
    }
    let (src_file, src_meta) = open_source(state, &src, src_key, src_version, &cond).await?;
    let src_bck = src.bck.clone();
    let src = source_reader(
        state,
        src_file,
        &src_meta,
        &i.copy_source_sse_customer_algorithm,
        &i.copy_source_sse_customer_key,
        &i.copy_source_sse_customer_key_md5,
    )?;
    let customer = sse::customer_key_of!(i)?;
    let explicit = i.server_side_encryption.is_some() || customer.is_some();
    let encryption =
        sse::requested(state, &dest, i.server_side_encryption.as_ref(), i.ssekms_key_id.as_deref(), customer)?;
    if src_bck == dest.bck
        && src_key == i.key
        && src_version.is_none()
        && !replace
        && !explicit
        && i.storage_class.is_none()
        && i.website_redirect_location.is_none()
    {
        return Err(s3_error!(InvalidRequest, "{COPY_TO_ITSELF}"));
    }
    let replace_tags = i.tagging_directive.as_ref().is_some_and(|d| d.as_str() == TaggingDirective::REPLACE);
    let mut meta = if replace {
        ObjMeta {
            content_type: Some(i.content_type.unwrap_or_else(|| DEFAULT_CONTENT_TYPE.to_owned())),
            content_encoding: i.content_encoding,
            content_disposition: i.content_disposition,
            content_language: i.content_language,
            cache_control: i.cache_control,
            expires: i.expires.as_ref().and_then(http_date),
            user: i.metadata.unwrap_or_default().into_iter().collect(),
            ..Default::default()
        }
    } else {
        ObjMeta {
            content_type: src_meta.content_type.clone(),
            content_encoding: src_meta.content_encoding.clone(),
            content_disposition: src_meta.content_disposition.clone(),
            content_language: src_meta.content_language.clone(),
            cache_control: src_meta.cache_control.clone(),
            expires: src_meta.expires.clone(),
            user: src_meta.user.clone(),
            ..Default::default()
        }
    };
    meta.tags = if replace_tags {
        i.tagging.as_deref().map(tagging::parse_header).transpose()?.unwrap_or_default()
    } else {
        src_meta.tags.clone()
    };
    meta.key = i.key.clone();
    meta.size = src_meta.size;
    // A copy gets the ACL its request names (private otherwise) and the owner a PUT would give it.
    let canned = i.acl.as_ref().map(|a| a.as_str());
    let headers = crate::s3::acl::grant_headers_of!(i);
    (meta.acl, meta.owner) = crate::s3::acl::for_new_object(state, &dest, user.as_ref(), canned, headers)?;
    meta.mtime_ms = now_ms();
    meta.storage_class = i.storage_class.map(|s| s.as_str().to_owned()).filter(|s| s != "STANDARD");
    // A copy is a single-part object: a multipart source's ETag and checksums do not describe it.
    let multipart_source = !src_meta.parts.is_empty();
    if !multipart_source {
        meta.etag.clone_from(&src_meta.etag);
        meta.checksums.clone_from(&src_meta.checksums);
    }
    crate::s3::object_lock::for_new_object(
        &dest,
        &mut meta,
        i.object_lock_mode.as_ref(),
        i.object_lock_retain_until_date.as_ref(),
        i.object_lock_legal_hold_status.as_ref(),
    )?;
    let seal = match &encryption {
        Some(enc) => Some(sse::seal_new(state, enc, &mut meta)?),
        None => None,
    };
    let meta = data::copy::copy_object(state, &dest, src, meta, multipart_source, seal).await.map_err(from_data)?;
    let c = &meta.checksums;
    let mut resp = S3Response::new(CopyObjectOutput {
        copy_object_result: Some(CopyObjectResult {
            e_tag: Some(ETag::Strong(meta.etag.clone())),
            last_modified: Some(timestamp_ms(meta.mtime_ms)),
            checksum_crc32: c.get("CRC32").cloned(),
            checksum_crc32c: c.get("CRC32C").cloned(),
            checksum_crc64nvme: c.get("CRC64NVME").cloned(),
            checksum_sha1: c.get("SHA1").cloned(),
            checksum_sha256: c.get("SHA256").cloned(),
            ..Default::default()
        }),
        version_id: crate::s3::object::written_version(&meta),
        copy_source_version_id: src_meta.vid.clone(),
        ..Default::default()
    });
    sse::headers(&meta, &mut resp.headers);
    Ok(resp)
}

/// The opened copy source as the data layer reads it: an encrypted source opened with its key (a customer's
/// from the `x-amz-copy-source-server-side-encryption-customer-*` headers).
fn source_reader(
    state: &SharedState,
    file: File,
    meta: &ObjMeta,
    alg: &Option<String>,
    key: &Option<String>,
    md5: &Option<String>,
) -> S3Result<data::copy::Source> {
    let customer = sse::customer_key(alg.as_deref(), key.as_deref(), md5.as_deref())?;
    sse::refuse_key_for_plaintext(meta, customer.as_ref())?;
    let key = meta.sse.as_ref().map(|s| sse::open_key(state, s, customer.as_ref())).transpose()?;
    Ok(data::copy::Source::new(file, meta, key))
}

/// Parses `x-amz-copy-source-range`: exactly `bytes=first-last`, `first <= last` (else InvalidArgument), and
/// inside the source (else InvalidRange). Returns `[start, end)`.
pub fn parse_copy_range(s: &str, size: u64) -> S3Result<(u64, u64)> {
    let bad = || {
        s3_error!(InvalidArgument, "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy")
    };
    let spec = s.strip_prefix("bytes=").ok_or_else(bad)?;
    let (a, b) = spec.split_once('-').ok_or_else(bad)?;
    let first: u64 = a.parse().map_err(|_| bad())?;
    let last: u64 = b.parse().map_err(|_| bad())?;
    if first > last {
        return Err(bad());
    }
    if last >= size {
        return Err(s3_error!(InvalidRange, "The requested range is not satisfiable"));
    }
    Ok((first, last + 1))
}

pub async fn upload_part_copy(
    state: &SharedState,
    req: S3Request<UploadPartCopyInput>,
) -> S3Result<S3Response<UploadPartCopyOutput>> {
    let user = caller_opt(&req)?.cloned();
    let dest = bucket(&req)?;
    let S3Request { input: i, headers, .. } = req;
    check_key(&i.key)?;
    crate::s3::multipart::check_part_number(i.part_number)?;
    let cond = ReadConditions {
        if_match: i.copy_source_if_match.as_ref(),
        if_none_match: i.copy_source_if_none_match.as_ref(),
        if_modified_since: i.copy_source_if_modified_since.as_ref(),
        if_unmodified_since: i.copy_source_if_unmodified_since.as_ref(),
    };
    let (src, src_key, src_version) = source(state, user.as_ref(), &i.copy_source, &headers)?;
    let (src_file, src_meta) = open_source(state, &src, src_key, src_version, &cond).await?;
    let (start, end) = match i.copy_source_range.as_deref() {
        Some(r) => parse_copy_range(r, src_meta.size)?,
        None => (0, src_meta.size),
    };
    let src = source_reader(
        state,
        src_file,
        &src_meta,
        &i.copy_source_sse_customer_algorithm,
        &i.copy_source_sse_customer_key,
        &i.copy_source_sse_customer_key_md5,
    )?;
    let customer = sse::customer_key_of!(i)?;
    let upload = crate::data::multipart::upload_of(state, &dest, &i.key, &i.upload_id).await.map_err(from_data)?;
    let seal = crate::s3::multipart::part_key(state, &upload.meta, customer.as_ref())?;
    let number = i.part_number as u32;
    let meta = data::copy::copy_part(state, &dest, &i.key, &i.upload_id, number, src, start, end, seal)
        .await
        .map_err(from_data)?;
    let mut resp = S3Response::new(UploadPartCopyOutput {
        copy_part_result: Some(CopyPartResult {
            e_tag: Some(ETag::Strong(meta.etag)),
            last_modified: Some(timestamp_ms(meta.mtime_ms)),
            ..Default::default()
        }),
        copy_source_version_id: src_meta.vid.clone(),
        ..Default::default()
    });
    sse::headers(&upload.meta, &mut resp.headers);
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::parse_copy_range;

    #[test]
    fn copy_ranges() {
        assert_eq!(parse_copy_range("bytes=0-4", 5).unwrap(), (0, 5));
        assert_eq!(parse_copy_range("bytes=2-2", 5).unwrap(), (2, 3));
        for bad in ["0-2", "bytes=0", "bytes=hello-world", "bytes=0-bar", "bytes=hello-", "bytes=0-2,3-5", "bytes=3-1"]
        {
            assert_eq!(parse_copy_range(bad, 5).unwrap_err().code().as_str(), "InvalidArgument", "{bad}");
        }
        assert_eq!(parse_copy_range("bytes=0-21", 5).unwrap_err().code().as_str(), "InvalidRange");
    }
}
