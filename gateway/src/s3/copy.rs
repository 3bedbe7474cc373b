//! CopyObject and UploadPartCopy: server-side copies between AIS-local objects.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};

use md5::{Digest, Md5};
use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};
use trove_cache::{ObjMeta, Staged};

use crate::s3::bucket::timestamp_ms;
use crate::s3::conditions::{self, ReadConditions};
use crate::s3::ctx::{blocking, bucket, caller_opt, check_key};
use crate::s3::errors;
use crate::s3::object::{http_date, now_ms, DEFAULT_CONTENT_TYPE};
use crate::s3::tagging;
use crate::state::{SharedState, User};

/// The source of a copy, opened (so later changes of the source do not affect the copy) and checked against the
/// `x-amz-copy-source-if-*` conditions.
fn open_source(
    state: &SharedState,
    user: Option<&User>,
    src: &CopySource,
    cond: &ReadConditions<'_>,
) -> S3Result<(File, ObjMeta, trove_namespace::Bck)> {
    let CopySource::Bucket { bucket, key, .. } = src else {
        return Err(s3_error!(NotImplemented, "Copying from an access point is not supported"));
    };
    check_key(key)?;
    let entry = source_bucket(state, user, bucket, key)?;
    let (file, meta) = state.store.open_object(&entry.bck, key).map_err(errors::from_store)?;
    conditions::check_copy_source(cond, &meta)?;
    Ok((file, meta, entry.bck))
}

/// The source bucket of a copy, if the door lets `user` read the source object.
fn source_bucket(
    state: &SharedState,
    user: Option<&User>,
    bucket: &str,
    key: &str,
) -> S3Result<trove_namespace::BucketEntry> {
    let entry = state.registry.get(bucket);
    crate::s3::access::check_copy_source(state, user, entry.as_ref(), key)?;
    entry.ok_or_else(errors::no_such_bucket)
}

/// Copies `[start, end)` of `src` into the staged file; returns the MD5 of the bytes when `hash` is set.
fn copy_bytes(
    mut src: File,
    staged: &mut Staged,
    start: u64,
    end: u64,
    hash: bool,
) -> std::io::Result<Option<[u8; 16]>> {
    src.seek(SeekFrom::Start(start))?;
    let mut limited = src.take(end - start);
    if !hash {
        std::io::copy(&mut limited, &mut staged.file)?;
        return Ok(None);
    }
    let mut md5 = Md5::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = limited.read(&mut buf)?;
        if n == 0 {
            break;
        }
        md5.update(&buf[..n]);
        staged.file.write_all(&buf[..n])?;
    }
    Ok(Some(md5.finalize().into()))
}

pub async fn copy_object(
    state: &SharedState,
    req: S3Request<CopyObjectInput>,
) -> S3Result<S3Response<CopyObjectOutput>> {
    let user = caller_opt(&req)?.cloned();
    let dest = bucket(&req)?;
    let i = req.input;
    check_key(&i.key)?;
    let cond = ReadConditions {
        if_match: i.copy_source_if_match.as_ref(),
        if_none_match: i.copy_source_if_none_match.as_ref(),
        if_modified_since: i.copy_source_if_modified_since.as_ref(),
        if_unmodified_since: i.copy_source_if_unmodified_since.as_ref(),
    };
    errors::check_space(state)?;
    let replace = i.metadata_directive.as_ref().is_some_and(|d| d.as_str() == MetadataDirective::REPLACE);
    if let CopySource::Bucket { bucket, key, .. } = &i.copy_source {
        let src = source_bucket(state, user.as_ref(), bucket, key)?;
        check_key(key)?;
        if src.bck.provider.is_remote() && src.bck == dest.bck {
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
            if **key == i.key && new_meta.is_none() {
                return Err(s3_error!(
                    InvalidRequest,
                    "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes."
                ));
            }
            let meta = crate::data::copy_within(state, &dest, key, &i.key, new_meta.as_ref())
                .await
                .map_err(errors::from_data)?;
            return Ok(S3Response::new(CopyObjectOutput {
                copy_object_result: Some(CopyObjectResult {
                    e_tag: Some(ETag::Strong(meta.etag.clone())),
                    last_modified: Some(timestamp_ms(meta.mtime_ms)),
                    ..Default::default()
                }),
                ..Default::default()
            }));
        }
        if dest.bck.provider.is_remote() {
            return Err(s3_error!(
                NotImplemented,
                "CopyObject into a cloud bucket from a different bucket is not supported; copy through a client"
            ));
        }
        if src.bck.provider.is_remote() {
            crate::data::ensure_cached(state, &src, key).await.map_err(errors::from_data)?;
        }
    }
    let (src_file, src_meta, src_bck) = open_source(state, user.as_ref(), &i.copy_source, &cond)?;
    let replace_tags = i.tagging_directive.as_ref().is_some_and(|d| d.as_str() == TaggingDirective::REPLACE);
    if src_bck == dest.bck
        && src_meta.key == i.key
        && !replace
        && i.storage_class.is_none()
        && i.website_redirect_location.is_none()
    {
        return Err(s3_error!(
            InvalidRequest,
            "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes."
        ));
    }
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
    meta.mtime_ms = now_ms();
    meta.storage_class = i.storage_class.map(|s| s.as_str().to_owned()).filter(|s| s != "STANDARD");
    // A copy is a single-part object: a multipart source's ETag and checksums do not describe it.
    let multipart_source = !src_meta.parts.is_empty();
    if !multipart_source {
        meta.etag.clone_from(&src_meta.etag);
        meta.checksums.clone_from(&src_meta.checksums);
    }
    let st = state.clone();
    let bck = dest.bck.clone();
    let size = src_meta.size;
    let guard = crate::data::bucket_guard(state, &dest);
    let meta = blocking(move || {
        let mut staged = st.store.stage(&bck, &meta.key).map_err(errors::from_store)?;
        staged.guard(guard);
        let md5 = copy_bytes(src_file, &mut staged, 0, size, multipart_source)
            .map_err(|e| errors::from_store(trove_cache::Error::io(staged.path(), e)))?;
        if let Some(md5) = md5 {
            meta.etag = hex::encode(md5);
        }
        st.store.commit(staged, &bck, &meta.key, &meta).map_err(errors::from_store)?;
        Ok(meta)
    })
    .await?;
    let c = &meta.checksums;
    Ok(S3Response::new(CopyObjectOutput {
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
        ..Default::default()
    }))
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
    let i = req.input;
    check_key(&i.key)?;
    crate::s3::multipart::check_part_number(i.part_number)?;
    let cond = ReadConditions {
        if_match: i.copy_source_if_match.as_ref(),
        if_none_match: i.copy_source_if_none_match.as_ref(),
        if_modified_since: i.copy_source_if_modified_since.as_ref(),
        if_unmodified_since: i.copy_source_if_unmodified_since.as_ref(),
    };
    if let CopySource::Bucket { bucket, key, .. } = &i.copy_source {
        let src = source_bucket(state, user.as_ref(), bucket, key)?;
        if src.bck.provider.is_remote() {
            check_key(key)?;
            crate::data::ensure_cached(state, &src, key).await.map_err(errors::from_data)?;
        }
    }
    let (src_file, src_meta, _) = open_source(state, user.as_ref(), &i.copy_source, &cond)?;
    let (start, end) = match i.copy_source_range.as_deref() {
        Some(r) => parse_copy_range(r, src_meta.size)?,
        None => (0, src_meta.size),
    };
    let st = state.clone();
    let (bck, key, upload_id, number) = (dest.bck.clone(), i.key.clone(), i.upload_id.clone(), i.part_number as u32);
    let (staged, mut meta, upload) = blocking(move || {
        let upload = st.store.get_upload(&bck, &key, &upload_id).map_err(errors::from_store)?;
        let mut staged = st.store.stage_part(&bck, &key, &upload_id).map_err(errors::from_store)?;
        let md5 = copy_bytes(src_file, &mut staged, start, end, true)
            .map_err(|e| errors::from_store(trove_cache::Error::io(staged.path(), e)))?
            .unwrap_or_default();
        let meta = ObjMeta { size: end - start, etag: hex::encode(md5), mtime_ms: now_ms(), ..Default::default() };
        Ok((staged, meta, upload))
    })
    .await?;
    if let Some(handle) = &upload.backend_upload {
        meta.version = Some(
            crate::data::upload_part(state, &dest, &i.key, handle, number, &staged, meta.size)
                .await
                .map_err(errors::from_data)?,
        );
    }
    let st = state.clone();
    let (bck, key, upload_id) = (dest.bck.clone(), i.key.clone(), i.upload_id.clone());
    let meta = blocking(move || {
        st.store.commit_part(staged, &bck, &key, &upload_id, number, &meta).map_err(errors::from_store)?;
        Ok(meta)
    })
    .await?;
    Ok(S3Response::new(UploadPartCopyOutput {
        copy_part_result: Some(CopyPartResult {
            e_tag: Some(ETag::Strong(meta.etag)),
            last_modified: Some(timestamp_ms(meta.mtime_ms)),
            ..Default::default()
        }),
        ..Default::default()
    }))
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
