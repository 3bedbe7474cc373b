//! ListObjects (v1), ListObjectsV2 and ListObjectVersions: S3's wire shapes over the data layer's pages
//! (`crate::data::list`).

use percent_encoding::{utf8_percent_encode, AsciiSet};
use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};
use trove_cache::ObjMeta;

use crate::data::{ListOpts, Page};
use crate::s3::bucket::timestamp_ms;
use crate::s3::errors;
use crate::state::{AppState, SharedState};

pub const MAX_KEYS: usize = 1000;

/// What `encoding-type=url` escapes: everything but unreserved characters and `/`.
const URL_ENCODE: &AsciiSet = crate::request::PATH;

fn encoder(encoding: Option<&EncodingType>) -> impl Fn(String) -> String {
    let url = encoding.is_some_and(|e| e.as_str() == EncodingType::URL);
    move |s: String| {
        if url {
            utf8_percent_encode(&s, URL_ENCODE).to_string()
        } else {
            s
        }
    }
}

fn check_encoding(encoding: Option<&EncodingType>) -> S3Result<()> {
    match encoding {
        Some(e) if e.as_str() != EncodingType::URL => {
            Err(s3_error!(InvalidArgument, "Invalid Encoding Method specified in Request"))
        }
        _ => Ok(()),
    }
}

fn max_keys(m: Option<i32>) -> S3Result<usize> {
    match m {
        None => Ok(MAX_KEYS),
        Some(n) if n < 0 => Err(s3_error!(InvalidArgument, "max-keys cannot be negative")),
        Some(n) => Ok((n as usize).min(MAX_KEYS)),
    }
}

/// The owner S3 reports for an object: its writer where that is not the bucket owner.
fn owner_of_object(state: &AppState, meta: &ObjMeta, bucket_owner: &Owner) -> Owner {
    meta.owner.as_deref().map_or_else(|| bucket_owner.clone(), |id| crate::s3::acl::owner_of(state, id))
}

fn object_entry(key: String, meta: &ObjMeta, owner: Option<Owner>, enc: &impl Fn(String) -> String) -> Object {
    Object {
        key: Some(enc(key)),
        size: Some(meta.size as i64),
        e_tag: Some(ETag::Strong(meta.etag.clone())),
        last_modified: Some(timestamp_ms(meta.mtime_ms)),
        storage_class: Some(ObjectStorageClass::from(
            meta.storage_class.clone().unwrap_or_else(|| "STANDARD".to_owned()),
        )),
        owner,
        checksum_algorithm: (!meta.checksums.is_empty())
            .then(|| meta.checksums.keys().map(|k| ChecksumAlgorithm::from(k.clone())).collect()),
        ..Default::default()
    }
}

/// What every listing call does first: who may list, the request's limits, and one page from the store.
struct Listing {
    page: Page,
    /// The bucket owner, reported as the owner of the objects it owns.
    owner: Owner,
    max: usize,
}

#[allow(clippy::too_many_arguments)]
async fn list<T>(
    state: &SharedState,
    req: &S3Request<T>,
    encoding: Option<&EncodingType>,
    max_keys_param: Option<i32>,
    prefix: &str,
    delimiter: Option<&str>,
    after: String,
    token: Option<&str>,
    versions: Option<bool>,
) -> S3Result<Listing> {
    let entry = crate::s3::ctx::bucket(req)?;
    check_encoding(encoding)?;
    // Listings are always in order; asking for no order is fine, but not together with a delimiter (as S3).
    let unordered = req.uri.query().is_some_and(|q| q.split('&').any(|p| p == "allow-unordered=true"));
    if unordered && delimiter.is_some_and(|d| !d.is_empty()) {
        return Err(s3_error!(InvalidArgument, "Cannot specify allow-unordered query along with delimiter"));
    }
    let max = max_keys(max_keys_param)?;
    let owner = crate::s3::acl::owner_of(state, &entry.owner);
    let opts = ListOpts {
        prefix: prefix.to_owned(),
        delimiter: delimiter.map(str::to_owned),
        after,
        token: token.map(str::to_owned),
        // A page that continues inside a key may find nothing left of it: one key more keeps it moving.
        max: max + usize::from(versions == Some(true)),
        cached_only: false,
        versions: versions.is_some(),
        after_inclusive: versions.unwrap_or(false),
    };
    let page = crate::data::list(state, &entry, opts).await.map_err(errors::from_data)?;
    Ok(Listing { page, owner, max })
}

pub async fn v1(state: &SharedState, req: S3Request<ListObjectsInput>) -> S3Result<S3Response<ListObjectsOutput>> {
    let i = &req.input;
    let prefix = i.prefix.clone().unwrap_or_default();
    let marker = i.marker.clone().unwrap_or_default();
    let Listing { page, owner, max } = list(
        state,
        &req,
        i.encoding_type.as_ref(),
        i.max_keys,
        &prefix,
        i.delimiter.as_deref(),
        marker.clone(),
        None,
        None,
    )
    .await?;
    let i = req.input;
    let enc = encoder(i.encoding_type.as_ref());
    Ok(S3Response::new(ListObjectsOutput {
        name: Some(i.bucket),
        // v1 echoes Prefix unencoded (botocore does not decode it, and s3-tests checks it raw).
        prefix: Some(prefix),
        marker: Some(enc(marker)),
        max_keys: Some(max as i32),
        is_truncated: Some(page.truncated),
        next_marker: if page.truncated { page.last.clone().map(&enc) } else { None },
        contents: Some(
            page.objects
                .into_iter()
                .map(|(k, m)| object_entry(k, &m, Some(owner_of_object(state, &m, &owner)), &enc))
                .collect(),
        ),
        common_prefixes: Some(page.prefixes.into_iter().map(|p| CommonPrefix { prefix: Some(enc(p)) }).collect()),
        delimiter: i.delimiter.filter(|d| !d.is_empty()).map(&enc),
        encoding_type: i.encoding_type,
        request_charged: None,
    }))
}

pub async fn v2(state: &SharedState, req: S3Request<ListObjectsV2Input>) -> S3Result<S3Response<ListObjectsV2Output>> {
    let i = &req.input;
    let prefix = i.prefix.clone().unwrap_or_default();
    let after = i.start_after.clone().unwrap_or_default();
    let Listing { page, owner, max } = list(
        state,
        &req,
        i.encoding_type.as_ref(),
        i.max_keys,
        &prefix,
        i.delimiter.as_deref(),
        after,
        i.continuation_token.as_deref(),
        None,
    )
    .await?;
    let i = req.input;
    let enc = encoder(i.encoding_type.as_ref());
    let owner = i.fetch_owner.unwrap_or(false).then_some(owner);
    let key_count = (page.objects.len() + page.prefixes.len()) as i32;
    Ok(S3Response::new(ListObjectsV2Output {
        name: Some(i.bucket),
        prefix: Some(enc(prefix)),
        max_keys: Some(max as i32),
        key_count: Some(key_count),
        continuation_token: i.continuation_token,
        is_truncated: Some(page.truncated),
        next_continuation_token: if page.truncated { page.next_token.clone() } else { None },
        contents: Some(
            page.objects
                .into_iter()
                .map(|(k, m)| object_entry(k, &m, owner.as_ref().map(|o| owner_of_object(state, &m, o)), &enc))
                .collect(),
        ),
        common_prefixes: Some(page.prefixes.into_iter().map(|p| CommonPrefix { prefix: Some(enc(p)) }).collect()),
        delimiter: i.delimiter.filter(|d| !d.is_empty()).map(&enc),
        encoding_type: i.encoding_type,
        start_after: i.start_after.map(&enc),
        request_charged: None,
    }))
}

/// ListObjectVersions. An AIS-local bucket lists every version and delete marker of each key, newest first; a
/// page may end inside a key (`NextVersionIdMarker`). A cloud bucket lists its objects, each the only
/// (`null`) and latest version: the cache knows no older ones.
pub async fn versions(
    state: &SharedState,
    req: S3Request<ListObjectVersionsInput>,
) -> S3Result<S3Response<ListObjectVersionsOutput>> {
    let entry = crate::s3::ctx::bucket(&req)?;
    let i = &req.input;
    let prefix = i.prefix.clone().unwrap_or_default();
    let marker = i.key_marker.clone().unwrap_or_default();
    let vid_marker = i.version_id_marker.clone().filter(|v| !v.is_empty());
    if let Some(v) = &vid_marker {
        if marker.is_empty() {
            return Err(s3_error!(InvalidArgument, "A version-id marker cannot be specified without a key marker."));
        }
        if !trove_cache::valid_version_id(v) {
            return Err(s3_error!(InvalidArgument, "Invalid version id specified"));
        }
    }
    let local = !entry.bck.is_remote();
    let mode = local.then_some(vid_marker.is_some());
    let delimiter = i.delimiter.as_deref();
    let Listing { page, owner, max } =
        list(state, &req, i.encoding_type.as_ref(), i.max_keys, &prefix, delimiter, marker.clone(), None, mode).await?;
    let i = req.input;
    let enc = encoder(i.encoding_type.as_ref());
    let version_entry = |k: &str, m: &ObjMeta, latest: bool| ObjectVersion {
        key: Some(enc(k.to_owned())),
        version_id: Some(m.version_id().to_owned()),
        is_latest: Some(latest),
        size: Some(m.size as i64),
        e_tag: Some(ETag::Strong(m.etag.clone())),
        last_modified: Some(timestamp_ms(m.mtime_ms)),
        storage_class: Some(ObjectVersionStorageClass::from(
            m.storage_class.clone().unwrap_or_else(|| "STANDARD".to_owned()),
        )),
        owner: Some(owner_of_object(state, m, &owner)),
        checksum_algorithm: (!m.checksums.is_empty())
            .then(|| m.checksums.keys().map(|k| ChecksumAlgorithm::from(k.clone())).collect()),
        ..Default::default()
    };
    let mut versions = Vec::new();
    let mut markers = Vec::new();
    let mut prefixes = Vec::new();
    let mut truncated = page.truncated;
    let mut next: Option<(String, Option<String>)> = None;
    if !local {
        for (k, m) in &page.objects {
            versions.push(version_entry(k, m, true));
        }
        next = page.last.clone().map(|l| (l, Some("null".to_owned())));
    } else {
        // Keys and common prefixes in one order; each key's versions newest first.
        let mut entries: Vec<(String, Option<trove_cache::Versions>)> =
            page.versions.into_iter().map(|(k, v)| (k, Some(v))).collect();
        entries.extend(page.prefixes.into_iter().map(|p| (p, None)));
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let mut count = 0;
        'entries: for (key, item) in entries {
            let Some(all) = item else {
                if count == max {
                    truncated = true;
                    break;
                }
                prefixes.push(CommonPrefix { prefix: Some(enc(key.clone())) });
                next = Some((key, None));
                count += 1;
                continue;
            };
            // Continuing inside the marker's key: only the versions older than the marker version.
            let skip = match (&vid_marker, key == marker) {
                (Some(v), true) => all.iter().position(|m| m.version_id() == v).map_or(all.len(), |p| p + 1),
                _ => 0,
            };
            for (idx, m) in all.iter().enumerate().skip(skip) {
                if count == max {
                    truncated = true;
                    break 'entries;
                }
                if m.delete_marker {
                    markers.push(DeleteMarkerEntry {
                        key: Some(enc(key.clone())),
                        version_id: Some(m.version_id().to_owned()),
                        is_latest: Some(idx == 0),
                        last_modified: Some(timestamp_ms(m.mtime_ms)),
                        owner: Some(owner_of_object(state, m, &owner)),
                    });
                } else {
                    versions.push(version_entry(&key, m, idx == 0));
                }
                next = Some((key.clone(), Some(m.version_id().to_owned())));
                count += 1;
            }
        }
    }
    let (next_key, next_vid) = match next.filter(|_| truncated) {
        Some((k, v)) => (Some(enc(k)), v),
        None => (None, None),
    };
    Ok(S3Response::new(ListObjectVersionsOutput {
        name: Some(i.bucket),
        prefix: Some(enc(prefix)),
        key_marker: Some(enc(marker)),
        version_id_marker: i.version_id_marker,
        max_keys: Some(max as i32),
        is_truncated: Some(truncated),
        next_key_marker: next_key,
        next_version_id_marker: next_vid,
        versions: (!versions.is_empty()).then_some(versions),
        delete_markers: (!markers.is_empty()).then_some(markers),
        common_prefixes: (!prefixes.is_empty()).then_some(prefixes),
        delimiter: i.delimiter.filter(|d| !d.is_empty()).map(&enc),
        encoding_type: i.encoding_type,
        request_charged: None,
    }))
}
