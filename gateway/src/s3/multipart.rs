//! Multipart uploads on the S3 wire: create, upload part, complete, abort, list parts, list uploads. The
//! uploads themselves are the data layer's (`data/multipart.rs`); this converts S3's types around it.

use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};
use trove_cache::{CompletedPart as StoreCompletedPart, ObjMeta, Upload};

use crate::data::multipart::{self as mpu, MAX_PART_NUMBER};
use crate::data::now_ms;
use crate::data::receive::{verify, MAX_OBJECT_SIZE};
use crate::s3::acl::owner_of;
use crate::s3::body;
use crate::s3::bucket::timestamp_ms;
use crate::s3::conditions;
use crate::s3::ctx::{bucket, caller_opt, check_key};
use crate::s3::errors::{self, from_data};
use crate::s3::object::{
    checksum_headers, header_checksums, http_date, trailer_checksums, wanted_algorithms, DEFAULT_CONTENT_TYPE,
};
use crate::s3::sse;
use crate::s3::tagging;
use crate::state::SharedState;

pub fn check_part_number(n: i32) -> S3Result<()> {
    if !(1..=MAX_PART_NUMBER).contains(&n) {
        return Err(s3_error!(InvalidArgument, "Part number must be an integer between 1 and 10000, inclusive"));
    }
    Ok(())
}

pub async fn create(
    state: &SharedState,
    req: S3Request<CreateMultipartUploadInput>,
) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
    // S3 names an anonymous initiator "anonymous" (the door let it in through a public-read-write ACL).
    let writer = caller_opt(&req)?.cloned();
    let initiator = writer.as_ref().map_or_else(|| "anonymous".to_owned(), |u| u.id.clone());
    let entry = bucket(&req)?;
    let i = req.input;
    check_key(&i.key)?;
    let canned = i.acl.as_ref().map(|a| a.as_str());
    let (acl, owner) =
        crate::s3::acl::for_new_object(state, &entry, writer.as_ref(), canned, crate::s3::acl::grant_headers_of!(i))?;
    let tags = i.tagging.as_deref().map(tagging::parse_header).transpose()?.unwrap_or_default();
    let algorithm = i.checksum_algorithm.as_ref().map(|a| a.as_str().to_ascii_uppercase());
    let checksum_type = i.checksum_type.as_ref().map(|t| t.as_str().to_owned()).or_else(|| {
        // AWS: CRC64NVME is always full-object; the others default to composite.
        algorithm.as_deref().map(|a| if a == "CRC64NVME" { mpu::FULL_OBJECT } else { mpu::COMPOSITE }.to_owned())
    });
    let mut upload = Upload {
        key: i.key.clone(),
        upload_id: format!("{:032x}", rand::random::<u128>()),
        initiated_ms: now_ms(),
        owner: initiator,
        meta: ObjMeta {
            content_type: Some(i.content_type.unwrap_or_else(|| DEFAULT_CONTENT_TYPE.to_owned())),
            content_encoding: crate::s3::object::strip_aws_chunked(i.content_encoding),
            content_disposition: i.content_disposition,
            content_language: i.content_language,
            cache_control: i.cache_control,
            expires: i.expires.as_ref().and_then(http_date),
            user: i.metadata.unwrap_or_default().into_iter().collect(),
            tags,
            storage_class: i.storage_class.map(|s| s.as_str().to_owned()).filter(|s| s != "STANDARD"),
            checksum_type: checksum_type.clone(),
            acl,
            owner,
            ..Default::default()
        },
        checksum_algorithm: algorithm.clone(),
        backend_upload: None,
    };
    let customer = sse::customer_key_of!(i)?;
    let encryption =
        sse::requested(state, &entry, i.server_side_encryption.as_ref(), i.ssekms_key_id.as_deref(), customer)?;
    if let Some(enc) = &encryption {
        sse::seal_new(state, enc, &mut upload.meta)?;
    }
    crate::s3::object_lock::for_new_object(
        &entry,
        &mut upload.meta,
        i.object_lock_mode.as_ref(),
        i.object_lock_retain_until_date.as_ref(),
        i.object_lock_legal_hold_status.as_ref(),
    )?;
    let upload = mpu::create(state, &entry, upload).await.map_err(from_data)?;
    let mut sse_headers = http::HeaderMap::new();
    sse::headers(&upload.meta, &mut sse_headers);
    let mut resp = S3Response::new(CreateMultipartUploadOutput {
        bucket: Some(i.bucket),
        key: Some(i.key),
        upload_id: Some(upload.upload_id),
        checksum_algorithm: algorithm.map(ChecksumAlgorithm::from),
        checksum_type: checksum_type.map(ChecksumType::from),
        ..Default::default()
    });
    resp.headers.extend(sse_headers);
    Ok(resp)
}

pub async fn upload_part(
    state: &SharedState,
    req: S3Request<UploadPartInput>,
) -> S3Result<S3Response<UploadPartOutput>> {
    let entry = bucket(&req)?;
    let S3Request { input: i, headers, trailing_headers, .. } = req;
    check_key(&i.key)?;
    check_part_number(i.part_number)?;
    errors::check_space(state)?;
    let mut expected =
        header_checksums(i.checksum_crc32, i.checksum_crc32c, i.checksum_crc64nvme, i.checksum_sha1, i.checksum_sha256);
    let (staged, upload) = mpu::stage_part(state, &entry, &i.key, &i.upload_id).await.map_err(from_data)?;
    let mut algorithms = wanted_algorithms(&headers, i.checksum_algorithm.as_ref(), &expected);
    if let Some(a) = &upload.checksum_algorithm {
        algorithms.push(a.clone());
    }
    let customer = sse::customer_key_of!(i)?;
    let sealer = part_key(state, &upload.meta, customer.as_ref())?.map(|k| crate::data::sse::Sealer::new(&k));
    let received = body::receive_sealed(&staged, i.body, &algorithms, MAX_OBJECT_SIZE, sealer).await?;
    expected.extend(trailer_checksums(trailing_headers.as_ref()));
    verify(&received, i.content_md5.as_deref(), &expected).map_err(from_data)?;
    let meta = ObjMeta {
        size: received.size,
        etag: received.etag(),
        mtime_ms: now_ms(),
        checksums: received.checksums,
        ..Default::default()
    };
    let meta = mpu::commit_part(state, &entry, &upload, i.part_number as u32, staged, meta).await.map_err(from_data)?;
    let mut resp =
        S3Response::new(UploadPartOutput { e_tag: Some(ETag::Strong(meta.etag.clone())), ..Default::default() });
    resp.headers.extend(checksum_headers(&meta.checksums, None));
    sse::headers(&upload.meta, &mut resp.headers);
    Ok(resp)
}

/// The data key that seals the parts of an encrypted upload (an SSE-C upload's parts must give its key); none
/// for a plaintext upload, whose parts must not name a key.
pub fn part_key(
    state: &SharedState,
    upload_meta: &ObjMeta,
    customer: Option<&crate::data::sse::CustomerKey>,
) -> S3Result<Option<crate::data::sse::DataKey>> {
    match &upload_meta.sse {
        Some(s) => sse::open_key(state, s, customer).map(Some),
        None if customer.is_some() => {
            Err(s3_error!(InvalidRequest, "The upload was not initiated with a customer-provided encryption key."))
        }
        None => Ok(None),
    }
}

pub async fn complete(
    state: &SharedState,
    req: S3Request<CompleteMultipartUploadInput>,
) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
    let entry = bucket(&req)?;
    let i = req.input;
    check_key(&i.key)?;
    // An upload sealed with a customer key completes only with that key (a finished one answers as before).
    let customer = sse::customer_key_of!(i)?;
    if let Ok(upload) = mpu::upload_of(state, &entry, &i.key, &i.upload_id).await {
        if upload.meta.sse.as_ref().is_some_and(|s| s.customer) || customer.is_some() {
            part_key(state, &upload.meta, customer.as_ref())?;
        }
    }
    let parts = i.multipart_upload.and_then(|m| m.parts).unwrap_or_default();
    let wanted: Vec<StoreCompletedPart> = parts
        .iter()
        .map(|p| StoreCompletedPart {
            number: p.part_number.unwrap_or(0).max(0) as u32,
            etag: p.e_tag.as_ref().map(|e| e.value().trim_matches('"').to_owned()).unwrap_or_default(),
        })
        .collect();
    let expected =
        header_checksums(i.checksum_crc32, i.checksum_crc32c, i.checksum_crc64nvme, i.checksum_sha1, i.checksum_sha256);
    let (if_match, if_none_match) = (i.if_match, i.if_none_match);
    let check = conditions::write_precondition(if_match, if_none_match);
    let meta = mpu::complete(state, &entry, &i.key, &i.upload_id, wanted, expected, check).await.map_err(from_data)?;
    let c = &meta.checksums;
    let mut resp = S3Response::new(CompleteMultipartUploadOutput {
        bucket: Some(i.bucket.clone()),
        key: Some(i.key.clone()),
        e_tag: Some(ETag::Strong(meta.etag.clone())),
        version_id: crate::s3::object::written_version(&meta),
        location: Some(format!("/{}/{}", i.bucket, i.key)),
        checksum_crc32: c.get("CRC32").cloned(),
        checksum_crc32c: c.get("CRC32C").cloned(),
        checksum_crc64nvme: c.get("CRC64NVME").cloned(),
        checksum_sha1: c.get("SHA1").cloned(),
        checksum_sha256: c.get("SHA256").cloned(),
        checksum_type: (!c.is_empty()).then(|| meta.checksum_type.clone().map(ChecksumType::from)).flatten(),
        ..Default::default()
    });
    sse::headers(&meta, &mut resp.headers);
    Ok(resp)
}

pub async fn abort(
    state: &SharedState,
    req: S3Request<AbortMultipartUploadInput>,
) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
    let entry = bucket(&req)?;
    check_key(&req.input.key)?;
    mpu::abort(state, &entry, &req.input.key, &req.input.upload_id).await.map_err(from_data)?;
    Ok(S3Response::new(AbortMultipartUploadOutput::default()))
}

pub async fn list_parts(state: &SharedState, req: S3Request<ListPartsInput>) -> S3Result<S3Response<ListPartsOutput>> {
    let entry = bucket(&req)?;
    let i = req.input;
    check_key(&i.key)?;
    let max = i.max_parts.map_or(1000, |m| m.clamp(0, 1000) as usize);
    let marker = i.part_number_marker.map_or(0, |m| m.max(0) as u32);
    let (upload, parts) = mpu::parts(state, &entry, &i.key, &i.upload_id).await.map_err(from_data)?;
    let after: Vec<_> = parts.into_iter().filter(|p| p.number > marker).collect();
    let truncated = after.len() > max;
    let page: Vec<_> = after.into_iter().take(max).collect();
    let initiator = owner_of(state, &upload.owner);
    // The owner of the object the upload makes (the bucket's, where it owns what others write).
    let owner = owner_of(state, upload.meta.owner.as_deref().unwrap_or(&entry.owner));
    Ok(S3Response::new(ListPartsOutput {
        bucket: Some(i.bucket),
        key: Some(i.key),
        upload_id: Some(i.upload_id),
        max_parts: Some(max as i32),
        is_truncated: Some(truncated),
        part_number_marker: i.part_number_marker,
        next_part_number_marker: page.last().map(|p| p.number as i32),
        initiator: Some(Initiator { id: initiator.id, display_name: initiator.display_name }),
        owner: Some(owner),
        storage_class: Some(StorageClass::from(upload.meta.storage_class.clone().unwrap_or_else(|| "STANDARD".into()))),
        checksum_algorithm: upload.checksum_algorithm.clone().map(ChecksumAlgorithm::from),
        parts: Some(
            page.into_iter()
                .map(|p| Part {
                    part_number: Some(p.number as i32),
                    size: Some(p.meta.size as i64),
                    e_tag: Some(ETag::Strong(p.meta.etag.clone())),
                    last_modified: Some(timestamp_ms(p.meta.mtime_ms)),
                    checksum_crc32: p.meta.checksums.get("CRC32").cloned(),
                    checksum_crc32c: p.meta.checksums.get("CRC32C").cloned(),
                    checksum_crc64nvme: p.meta.checksums.get("CRC64NVME").cloned(),
                    checksum_sha1: p.meta.checksums.get("SHA1").cloned(),
                    checksum_sha256: p.meta.checksums.get("SHA256").cloned(),
                })
                .collect(),
        ),
        ..Default::default()
    }))
}

pub async fn list_uploads(
    state: &SharedState,
    req: S3Request<ListMultipartUploadsInput>,
) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
    let entry = bucket(&req)?;
    let i = req.input;
    let max = i.max_uploads.map_or(1000, |m| m.clamp(0, 1000) as usize);
    let prefix = i.prefix.clone().unwrap_or_default();
    let key_marker = i.key_marker.clone().unwrap_or_default();
    let id_marker = i.upload_id_marker.clone().unwrap_or_default();
    let all = mpu::uploads(state, &entry).await.map_err(from_data)?;
    let mut uploads = Vec::new();
    let mut prefixes: Vec<String> = Vec::new();
    let mut truncated = false;
    for up in all {
        if !up.key.starts_with(&prefix) {
            continue;
        }
        let after_marker = up.key.as_str() > key_marker.as_str()
            || (up.key == key_marker && !id_marker.is_empty() && up.upload_id.as_str() > id_marker.as_str());
        if !key_marker.is_empty() && !after_marker {
            continue;
        }
        if let Some(d) = i.delimiter.as_deref().filter(|d| !d.is_empty()) {
            if let Some(idx) = up.key[prefix.len()..].find(d) {
                let cp = up.key[..prefix.len() + idx + d.len()].to_owned();
                if prefixes.last() != Some(&cp) {
                    if uploads.len() + prefixes.len() == max {
                        truncated = true;
                        break;
                    }
                    prefixes.push(cp);
                }
                continue;
            }
        }
        if uploads.len() + prefixes.len() == max {
            truncated = true;
            break;
        }
        uploads.push(up);
    }
    let next_key = uploads.last().map(|u: &Upload| u.key.clone());
    let next_id = uploads.last().map(|u| u.upload_id.clone());
    Ok(S3Response::new(ListMultipartUploadsOutput {
        bucket: Some(i.bucket),
        prefix: i.prefix,
        delimiter: i.delimiter,
        key_marker: i.key_marker,
        upload_id_marker: i.upload_id_marker,
        max_uploads: Some(max as i32),
        is_truncated: Some(truncated),
        next_key_marker: if truncated { next_key } else { None },
        next_upload_id_marker: if truncated { next_id } else { None },
        common_prefixes: (!prefixes.is_empty())
            .then(|| prefixes.into_iter().map(|p| CommonPrefix { prefix: Some(p) }).collect()),
        uploads: Some(
            uploads
                .into_iter()
                .map(|u| {
                    let owner = owner_of(state, &u.owner);
                    MultipartUpload {
                        key: Some(u.key),
                        upload_id: Some(u.upload_id),
                        initiated: Some(timestamp_ms(u.initiated_ms)),
                        initiator: Some(Initiator { id: owner.id.clone(), display_name: owner.display_name.clone() }),
                        owner: Some(owner),
                        storage_class: Some(StorageClass::from(
                            u.meta.storage_class.unwrap_or_else(|| "STANDARD".into()),
                        )),
                        checksum_algorithm: u.checksum_algorithm.map(ChecksumAlgorithm::from),
                        ..Default::default()
                    }
                })
                .collect(),
        ),
        encoding_type: i.encoding_type,
        request_charged: None,
    }))
}
