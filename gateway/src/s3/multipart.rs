//! Multipart uploads: create, upload part, complete (ETag `md5(md5s)-N`, composite or full-object checksums),
//! abort, list parts, list uploads.

use std::collections::BTreeMap;

use base64::Engine;
use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};
use trove_cache::multipart::multipart_etag;
use trove_cache::{CompleteError, CompletedPart as StoreCompletedPart, ObjMeta, Upload};

use crate::s3::access::owner_of;
use crate::s3::body::{self, MAX_OBJECT_SIZE};
use crate::s3::bucket::timestamp_ms;
use crate::s3::conditions;
use crate::s3::ctx::{blocking, bucket, caller_opt, check_key};
use crate::s3::errors;
use crate::s3::object::{
    checksum_headers, header_checksums, http_date, now_ms, trailer_checksums, wanted_algorithms, DEFAULT_CONTENT_TYPE,
};
use crate::s3::tagging;
use crate::state::SharedState;

/// S3's largest part.
const MAX_PART_SIZE: u64 = MAX_OBJECT_SIZE;
const MAX_PART_NUMBER: i32 = 10_000;

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
    let initiator = caller_opt(&req)?.map_or_else(|| "anonymous".to_owned(), |u| u.id.clone());
    let entry = bucket(&req)?;
    let i = req.input;
    check_key(&i.key)?;
    let tags = i.tagging.as_deref().map(tagging::parse_header).transpose()?.unwrap_or_default();
    let algorithm = i.checksum_algorithm.as_ref().map(|a| a.as_str().to_ascii_uppercase());
    let checksum_type = i.checksum_type.as_ref().map(|t| t.as_str().to_owned()).or_else(|| {
        // AWS: CRC64NVME is always full-object; the others default to composite.
        algorithm
            .as_deref()
            .map(|a| if a == "CRC64NVME" { ChecksumType::FULL_OBJECT } else { ChecksumType::COMPOSITE }.to_owned())
    });
    let upload = Upload {
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
            ..Default::default()
        },
        checksum_algorithm: algorithm.clone(),
        backend_upload: None,
    };
    let mut upload = upload;
    if entry.bck.provider.is_remote()
        && crate::data::backend(state, &entry).map_err(errors::from_data)?.lockstep_multipart()
    {
        // The backend's upload runs in lock-step: parts go on as they arrive, Complete joins them there.
        upload.backend_upload =
            Some(crate::data::start_upload(state, &entry, &upload.key, &upload.meta).await.map_err(errors::from_data)?);
    }
    let st = state.clone();
    let up = upload.clone();
    blocking(move || st.store.create_upload(&entry.bck, &up).map_err(errors::from_store)).await?;
    Ok(S3Response::new(CreateMultipartUploadOutput {
        bucket: Some(i.bucket),
        key: Some(i.key),
        upload_id: Some(upload.upload_id),
        checksum_algorithm: algorithm.map(ChecksumAlgorithm::from),
        checksum_type: checksum_type.map(ChecksumType::from),
        ..Default::default()
    }))
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
    let st = state.clone();
    let (bck, key, upload_id) = (entry.bck.clone(), i.key.clone(), i.upload_id.clone());
    let (staged, upload) = blocking(move || {
        let upload = st.store.get_upload(&bck, &key, &upload_id).map_err(errors::from_store)?;
        let staged = st.store.stage_part(&bck, &key, &upload_id).map_err(errors::from_store)?;
        Ok((staged, upload))
    })
    .await?;
    let mut algorithms = wanted_algorithms(&headers, i.checksum_algorithm.as_ref(), &expected);
    if let Some(a) = &upload.checksum_algorithm {
        algorithms.push(a.clone());
    }
    let received = body::receive(&staged, i.body, &algorithms, MAX_PART_SIZE).await?;
    expected.extend(trailer_checksums(trailing_headers.as_ref()));
    body::verify(&received, i.content_md5.as_deref(), &expected)?;
    let mut meta = ObjMeta {
        size: received.size,
        etag: received.etag(),
        mtime_ms: now_ms(),
        checksums: received.checksums.clone(),
        ..Default::default()
    };
    if let Some(handle) = &upload.backend_upload {
        let n = i.part_number as u32;
        meta.version = Some(
            crate::data::upload_part(state, &entry, &i.key, handle, n, &staged, meta.size)
                .await
                .map_err(errors::from_data)?,
        );
    }
    let st = state.clone();
    let (bck, key, upload_id, n) = (entry.bck.clone(), i.key.clone(), i.upload_id.clone(), i.part_number as u32);
    let m = meta.clone();
    blocking(move || st.store.commit_part(staged, &bck, &key, &upload_id, n, &m).map_err(errors::from_store)).await?;
    let mut resp =
        S3Response::new(UploadPartOutput { e_tag: Some(ETag::Strong(meta.etag.clone())), ..Default::default() });
    resp.headers.extend(checksum_headers(&meta.checksums, None));
    Ok(resp)
}

/// The composite checksum of a multipart object: the checksum of the concatenated binary part checksums, `-N`.
fn composite_checksum(algorithm: &str, part_values: &[String]) -> Option<String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut h = body::hasher_for(&[algorithm.to_owned()]);
    for v in part_values {
        h.update(&b64.decode(v).ok()?);
    }
    let value = body::checksum_map(h.finalize()).remove(algorithm)?;
    Some(format!("{value}-{}", part_values.len()))
}

pub async fn complete(
    state: &SharedState,
    req: S3Request<CompleteMultipartUploadInput>,
) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
    let entry = bucket(&req)?;
    let i = req.input;
    check_key(&i.key)?;
    let parts = i.multipart_upload.and_then(|m| m.parts).unwrap_or_default();
    if parts.is_empty() {
        return Err(s3_error!(
            MalformedXML,
            "The XML you provided was not well-formed or did not validate against our published schema"
        ));
    }
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
    let st = state.clone();
    let (bck, key, upload_id) = (entry.bck.clone(), i.key.clone(), i.upload_id.clone());
    let assembled = blocking(move || {
        let upload = match st.store.get_upload(&bck, &key, &upload_id) {
            Ok(u) => u,
            // S3 answers a repeated Complete of a finished upload with the same result.
            Err(trove_cache::Error::NoSuchUpload) => return already_completed(&st, &bck, &key, &wanted).map(Err),
            Err(e) => return Err(errors::from_store(e)),
        };
        let algorithm = upload.checksum_algorithm.clone();
        let full_object = upload.meta.checksum_type.as_deref() == Some(ChecksumType::FULL_OBJECT);
        let mut hasher = algorithm.as_ref().filter(|_| full_object).map(|a| body::hasher_for(std::slice::from_ref(a)));
        let mut feed = |d: &[u8]| {
            if let Some(h) = hasher.as_mut() {
                h.update(d);
            }
        };
        let on_data: Option<&mut trove_cache::multipart::DataSink<'_>> =
            if full_object && algorithm.is_some() { Some(&mut feed) } else { None };
        let (upload, chosen, staged) =
            match st.store.assemble_upload(&bck, &key, &upload_id, &wanted, on_data).map_err(errors::from_store)? {
                Ok(x) => x,
                Err(e) => return Err(complete_error(e)),
            };
        let mut meta = ObjMeta {
            key: key.clone(),
            size: chosen.iter().map(|p| p.meta.size).sum(),
            etag: multipart_etag(&chosen),
            mtime_ms: now_ms(),
            parts: chosen.iter().map(|p| p.meta.size).collect(),
            ..upload.meta.clone()
        };
        if let Some(algo) = &algorithm {
            let part_values: Vec<String> = chosen.iter().filter_map(|p| p.meta.checksums.get(algo).cloned()).collect();
            let value = if full_object {
                hasher.and_then(|h| body::checksum_map(h.finalize()).remove(algo))
            } else if part_values.len() == chosen.len() {
                composite_checksum(algo, &part_values)
            } else {
                None
            };
            if let Some(v) = value {
                meta.checksums = BTreeMap::from([(algo.clone(), v)]);
                meta.part_checksums = part_values;
            }
        }
        for (algo, want) in &expected {
            if meta.checksums.get(algo) != Some(want) {
                return Err(s3_error!(BadDigest, "The {algo} you specified did not match the calculated checksum."));
            }
        }
        let tokens: Vec<(u32, Option<String>)> = chosen.iter().map(|p| (p.number, p.meta.version.clone())).collect();
        Ok(Ok((staged, meta, upload.backend_upload.clone(), tokens)))
    })
    .await?;
    let meta = match assembled {
        Err(done) => done,
        Ok((mut staged, mut meta, handle, tokens)) => {
            staged.guard(crate::data::bucket_guard(state, &entry));
            match handle {
                Some(handle) => {
                    let parts =
                        tokens.into_iter().map(|(n, t)| t.map(|t| (n, t))).collect::<Option<Vec<_>>>().ok_or_else(
                            || s3_error!(InvalidPart, "A part was not uploaded to the backend; upload it again."),
                        )?;
                    crate::data::complete_upload(state, &entry, &handle, &parts, &mut meta)
                        .await
                        .map_err(errors::from_data)?;
                }
                // Backends without lock-step uploads (GCS) get the assembled object in one upload.
                None if entry.bck.provider.is_remote() => {
                    crate::data::write_through(state, &entry, &staged, &mut meta).await.map_err(errors::from_data)?;
                }
                None => {}
            }
            let st = state.clone();
            let (bck, key, upload_id) = (entry.bck.clone(), i.key.clone(), i.upload_id.clone());
            blocking(move || {
                st.store
                    .commit_if(staged, &bck, &key, &meta, |cur| {
                        conditions::check_write(if_match.as_ref(), if_none_match.as_ref(), cur)
                    })
                    .map_err(errors::from_store)?;
                st.store.finish_upload(&bck, &key, &upload_id).map_err(errors::from_store)?;
                Ok(meta)
            })
            .await?
        }
    };
    let c = &meta.checksums;
    Ok(S3Response::new(CompleteMultipartUploadOutput {
        bucket: Some(i.bucket.clone()),
        key: Some(i.key.clone()),
        e_tag: Some(ETag::Strong(meta.etag.clone())),
        location: Some(format!("/{}/{}", i.bucket, i.key)),
        checksum_crc32: c.get("CRC32").cloned(),
        checksum_crc32c: c.get("CRC32C").cloned(),
        checksum_crc64nvme: c.get("CRC64NVME").cloned(),
        checksum_sha1: c.get("SHA1").cloned(),
        checksum_sha256: c.get("SHA256").cloned(),
        checksum_type: (!c.is_empty()).then(|| meta.checksum_type.clone().map(ChecksumType::from)).flatten(),
        ..Default::default()
    }))
}

fn already_completed(
    st: &SharedState,
    bck: &trove_namespace::Bck,
    key: &str,
    wanted: &[StoreCompletedPart],
) -> S3Result<ObjMeta> {
    let etag = trove_cache::multipart::multipart_etag_of_list(wanted);
    match st.store.head(bck, key) {
        Ok(meta) if meta.etag == etag => Ok(meta),
        _ => Err(errors::from_store(trove_cache::Error::NoSuchUpload)),
    }
}

fn complete_error(e: CompleteError) -> s3s::S3Error {
    match e {
        CompleteError::InvalidPart(_) => s3_error!(
            InvalidPart,
            "One or more of the specified parts could not be found. The part might not have been uploaded, or the specified entity tag might not have matched the part's entity tag."
        ),
        CompleteError::InvalidPartOrder => s3_error!(InvalidPartOrder, "The list of parts was not in ascending order. Parts must be ordered by part number."),
        CompleteError::EntityTooSmall(_) => s3_error!(EntityTooSmall, "Your proposed upload is smaller than the minimum allowed object size."),
        CompleteError::Empty => s3_error!(MalformedXML, "The XML you provided was not well-formed or did not validate against our published schema"),
        CompleteError::TooManyParts => s3_error!(MalformedXML, "The XML you provided was not well-formed or did not validate against our published schema"),
    }
}

pub async fn abort(
    state: &SharedState,
    req: S3Request<AbortMultipartUploadInput>,
) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
    let entry = bucket(&req)?;
    check_key(&req.input.key)?;
    let st = state.clone();
    let (key, upload_id) = (req.input.key.clone(), req.input.upload_id.clone());
    if entry.bck.provider.is_remote() {
        let (st, bck, k, u) = (state.clone(), entry.bck.clone(), key.clone(), upload_id.clone());
        let upload = blocking(move || st.store.get_upload(&bck, &k, &u).map_err(errors::from_store)).await?;
        if let Some(handle) = &upload.backend_upload {
            crate::data::abort_upload(state, &entry, &key, handle).await.map_err(errors::from_data)?;
        }
    }
    blocking(move || st.store.abort_upload(&entry.bck, &key, &upload_id).map_err(errors::from_store)).await?;
    Ok(S3Response::new(AbortMultipartUploadOutput::default()))
}

pub async fn list_parts(state: &SharedState, req: S3Request<ListPartsInput>) -> S3Result<S3Response<ListPartsOutput>> {
    let entry = bucket(&req)?;
    let i = req.input;
    check_key(&i.key)?;
    let max = i.max_parts.map_or(1000, |m| m.clamp(0, 1000) as usize);
    let marker = i.part_number_marker.map_or(0, |m| m.max(0) as u32);
    let st = state.clone();
    let (key, upload_id) = (i.key.clone(), i.upload_id.clone());
    let (upload, parts) = blocking(move || {
        let up = st.store.get_upload(&entry.bck, &key, &upload_id).map_err(errors::from_store)?;
        let parts = st.store.list_parts(&entry.bck, &key, &upload_id).map_err(errors::from_store)?;
        Ok((up, parts))
    })
    .await?;
    let after: Vec<_> = parts.into_iter().filter(|p| p.number > marker).collect();
    let truncated = after.len() > max;
    let page: Vec<_> = after.into_iter().take(max).collect();
    let owner = owner_of(state, &upload.owner);
    Ok(S3Response::new(ListPartsOutput {
        bucket: Some(i.bucket),
        key: Some(i.key),
        upload_id: Some(i.upload_id),
        max_parts: Some(max as i32),
        is_truncated: Some(truncated),
        part_number_marker: i.part_number_marker,
        next_part_number_marker: page.last().map(|p| p.number as i32),
        initiator: Some(Initiator { id: owner.id.clone(), display_name: owner.display_name.clone() }),
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
    let st = state.clone();
    let all = blocking(move || st.store.list_uploads(&entry.bck).map_err(errors::from_store)).await?;
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
