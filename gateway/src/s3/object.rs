//! Object operations: PutObject, GetObject, HeadObject, DeleteObject, DeleteObjects.

use std::collections::BTreeMap;

use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};
use trove_cache::ObjMeta;

use crate::data::now_ms;
use crate::data::receive::{verify, ALGORITHMS, MAX_OBJECT_SIZE};
use crate::data::{FileBody, SyncBody};
use crate::s3::acl;
use crate::s3::body;
use crate::s3::bucket::timestamp_ms;
use crate::s3::conditions::{self, ReadConditions};
use crate::s3::ctx::{blocking, bucket, caller_opt, check_key};
use crate::s3::errors;
use crate::s3::sse;
use crate::s3::tagging;
use crate::state::SharedState;

pub use crate::data::DEFAULT_CONTENT_TYPE;

pub fn http_date(t: &Timestamp) -> Option<String> {
    let mut buf = Vec::new();
    t.format(TimestampFormat::HttpDate, &mut buf).ok()?;
    String::from_utf8(buf).ok()
}

fn parse_http_date(s: &str) -> Option<Timestamp> {
    Timestamp::parse(TimestampFormat::HttpDate, s).ok()
}

/// `aws-chunked` describes the upload's framing, not the object: S3 drops it from the stored encoding.
pub fn strip_aws_chunked(encoding: Option<String>) -> Option<String> {
    let kept: Vec<&str> =
        encoding.as_deref()?.split(',').map(str::trim).filter(|e| !e.is_empty() && *e != "aws-chunked").collect();
    (!kept.is_empty()).then(|| kept.join(", "))
}

/// Checksums given as headers, by algorithm.
pub fn header_checksums(
    crc32: Option<String>,
    crc32c: Option<String>,
    crc64nvme: Option<String>,
    sha1: Option<String>,
    sha256: Option<String>,
) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for (k, v) in [("CRC32", crc32), ("CRC32C", crc32c), ("CRC64NVME", crc64nvme), ("SHA1", sha1), ("SHA256", sha256)] {
        if let Some(v) = v {
            m.insert(k.to_owned(), v);
        }
    }
    m
}

/// Algorithms to compute for an upload: those with a header value, the SDK's declared algorithm, and those
/// announced in `x-amz-trailer`.
pub fn wanted_algorithms(
    headers: &http::HeaderMap,
    declared: Option<&ChecksumAlgorithm>,
    given: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut v: Vec<String> = given.keys().cloned().collect();
    if let Some(a) = declared {
        v.push(a.as_str().to_ascii_uppercase());
    }
    if let Some(t) = headers.get("x-amz-trailer").and_then(|h| h.to_str().ok()) {
        for name in t.split(',') {
            if let Some(a) = name.trim().strip_prefix("x-amz-checksum-") {
                v.push(a.to_ascii_uppercase());
            }
        }
    }
    v.retain(|a| ALGORITHMS.contains(&a.as_str()));
    v.sort();
    v.dedup();
    v
}

/// Checksum values that arrived in aws-chunked trailers.
pub fn trailer_checksums(req_trailers: Option<&s3s::TrailingHeaders>) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    if let Some(map) = req_trailers.and_then(|t| t.take()) {
        for algo in ALGORITHMS {
            let name = format!("x-amz-checksum-{}", algo.to_ascii_lowercase());
            if let Some(v) = map.get(name.as_str()).and_then(|v| v.to_str().ok()) {
                m.insert(algo.to_owned(), v.to_owned());
            }
        }
    }
    m
}

pub async fn put(state: &SharedState, req: S3Request<PutObjectInput>) -> S3Result<S3Response<PutObjectOutput>> {
    put_with_limits(state, req, (0, MAX_OBJECT_SIZE)).await
}

/// PutObject with the body's size bounded to `min..=max` (a browser form's `content-length-range`).
pub async fn put_with_limits(
    state: &SharedState,
    req: S3Request<PutObjectInput>,
    (min, max): (u64, u64),
) -> S3Result<S3Response<PutObjectOutput>> {
    let max = max.min(MAX_OBJECT_SIZE);
    let entry = bucket(&req)?;
    let writer = caller_opt(&req)?.cloned();
    let S3Request { input, headers, trailing_headers, .. } = req;
    check_key(&input.key)?;
    if input.content_length.is_some_and(|l| l as u64 > max) {
        return Err(s3_error!(EntityTooLarge, "Your proposed upload exceeds the maximum allowed object size."));
    }
    errors::check_space(state)?;
    let tags = input.tagging.as_deref().map(tagging::parse_header).transpose()?.unwrap_or_default();
    let canned = input.acl.as_ref().map(|a| a.as_str());
    let (acl, owner) = acl::for_new_object(state, &entry, writer.as_ref(), canned, acl::grant_headers_of!(input))?;
    let mut expected = header_checksums(
        input.checksum_crc32,
        input.checksum_crc32c,
        input.checksum_crc64nvme,
        input.checksum_sha1,
        input.checksum_sha256,
    );
    let algorithms = wanted_algorithms(&headers, input.checksum_algorithm.as_ref(), &expected);

    let customer = sse::customer_key_of!(input)?;
    let encryption =
        sse::requested(state, &entry, input.server_side_encryption.as_ref(), input.ssekms_key_id.as_deref(), customer)?;
    let mut sealed = ObjMeta::default();
    let sealer = match &encryption {
        Some(enc) => Some(crate::data::sse::Sealer::new(&sse::seal_new(state, enc, &mut sealed)?)),
        None => None,
    };

    let st = state.clone();
    let (bck, key) = (entry.bck.clone(), input.key.clone());
    let staged = blocking(move || st.store.stage(&bck, &key).map_err(errors::from_store)).await?;
    let received = body::receive_sealed(&staged, input.body, &algorithms, max, sealer).await?;
    if received.size < min {
        return Err(s3_error!(EntityTooSmall, "Your proposed upload is smaller than the minimum allowed object size."));
    }
    if let Some(len) = input.content_length {
        if len as u64 != received.size {
            return Err(s3_error!(
                IncompleteBody,
                "You did not provide the number of bytes specified by the Content-Length HTTP header."
            ));
        }
    }
    expected.extend(trailer_checksums(trailing_headers.as_ref()));
    verify(&received, input.content_md5.as_deref(), &expected).map_err(errors::from_data)?;

    let meta = ObjMeta {
        key: input.key.clone(),
        size: received.size,
        etag: received.etag(),
        mtime_ms: now_ms(),
        content_type: Some(input.content_type.unwrap_or_else(|| DEFAULT_CONTENT_TYPE.to_owned())),
        content_encoding: strip_aws_chunked(input.content_encoding),
        content_disposition: input.content_disposition,
        content_language: input.content_language,
        cache_control: input.cache_control,
        expires: input.expires.as_ref().and_then(http_date),
        user: input.metadata.unwrap_or_default().into_iter().collect(),
        tags,
        checksums: received.checksums.clone(),
        storage_class: input.storage_class.map(|s| s.as_str().to_owned()).filter(|s| s != "STANDARD"),
        acl,
        owner,
        sse: sealed.sse,
        ..Default::default()
    };
    let mut meta = meta;
    crate::s3::object_lock::for_new_object(
        &entry,
        &mut meta,
        input.object_lock_mode.as_ref(),
        input.object_lock_retain_until_date.as_ref(),
        input.object_lock_legal_hold_status.as_ref(),
    )?;
    let (if_match, if_none_match) = (input.if_match, input.if_none_match);
    let check = conditions::write_precondition(if_match, if_none_match);
    let meta = crate::data::put(state, &entry, staged, meta, check).await.map_err(errors::from_data)?;
    let mut resp = S3Response::new(PutObjectOutput {
        e_tag: Some(ETag::Strong(meta.etag.clone())),
        version_id: written_version(&meta),
        ..Default::default()
    });
    resp.headers.extend(checksum_headers(&meta.checksums, Some(ChecksumType::FULL_OBJECT)));
    sse::headers(&meta, &mut resp.headers);
    crate::s3::lifecycle::expiration_header(&entry, &meta, &mut resp.headers);
    Ok(resp)
}

/// The standard headers a GET can override with `response-*` query parameters.
#[derive(Default)]
pub struct Headers {
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub content_disposition: Option<String>,
    pub content_language: Option<String>,
    pub cache_control: Option<String>,
    pub expires: Option<Timestamp>,
}

impl Headers {
    /// These overrides, falling back to what the object has stored.
    fn or_stored(self, meta: &ObjMeta) -> Headers {
        Headers {
            content_type: self.content_type.or_else(|| meta.content_type.clone()),
            content_encoding: self.content_encoding.or_else(|| meta.content_encoding.clone()),
            content_disposition: self.content_disposition.or_else(|| meta.content_disposition.clone()),
            content_language: self.content_language.or_else(|| meta.content_language.clone()),
            cache_control: self.cache_control.or_else(|| meta.cache_control.clone()),
            expires: self.expires.or_else(|| meta.expires.as_deref().and_then(parse_http_date)),
        }
    }
}

/// `x-amz-checksum-<algorithm>` headers for `sums`, plus `x-amz-checksum-type` when there are any.
pub fn checksum_headers(sums: &BTreeMap<String, String>, kind: Option<&str>) -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    for (algo, value) in sums {
        let name = http::HeaderName::from_bytes(format!("x-amz-checksum-{}", algo.to_ascii_lowercase()).as_bytes());
        if let (Ok(name), Ok(value)) = (name, http::HeaderValue::from_str(value)) {
            h.insert(name, value);
        }
    }
    if let Some(kind) = kind.filter(|_| !sums.is_empty()).and_then(|k| http::HeaderValue::from_str(k).ok()) {
        h.insert("x-amz-checksum-type", kind);
    }
    h
}

/// The headers of a read that s3s's output types do not carry the same way for GET and HEAD: the tag count,
/// and the checksums (none unless asked for; for a part of a multipart object, that part's).
pub fn read_headers(meta: &ObjMeta, checksums_asked: bool, part: Option<usize>) -> http::HeaderMap {
    let mut sums = BTreeMap::new();
    if checksums_asked {
        match part {
            Some(n) if !meta.part_checksums.is_empty() => {
                if let (Some(algo), Some(v)) = (meta.checksums.keys().next(), meta.part_checksums.get(n - 1)) {
                    sums.insert(algo.clone(), v.clone());
                }
            }
            _ => sums.clone_from(&meta.checksums),
        }
    }
    let kind = meta.checksum_type.as_deref().unwrap_or(ChecksumType::FULL_OBJECT);
    let mut h = checksum_headers(&sums, Some(kind));
    if !meta.tags.is_empty() {
        h.insert("x-amz-tagging-count", http::HeaderValue::from(meta.tags.len()));
    }
    if let Some(v) = meta.vid.as_deref().and_then(|v| http::HeaderValue::from_str(v).ok()) {
        h.insert("x-amz-version-id", v);
    }
    crate::s3::object_lock::headers(meta, &mut h);
    sse::headers(meta, &mut h);
    h
}

/// The byte range to serve: a part, a Range header, or everything. `Err` is S3's 416.
fn select_range(meta: &ObjMeta, range: Option<&Range>, part: Option<i32>) -> S3Result<(u64, u64, bool)> {
    if let Some(n) = part {
        let n = usize::try_from(n).ok().filter(|n| *n >= 1).ok_or_else(|| {
            s3_error!(InvalidArgument, "Part number must be an integer between 1 and 10000, inclusive")
        })?;
        let (s, e) = meta.part_range(n).ok_or_else(|| {
            // Ceph's answer, which the s3-tests suite asserts (AWS says 416 InvalidPartNumber).
            s3_error!(InvalidPart, "The requested partnumber is not satisfiable")
        })?;
        return Ok((s, e, meta.parts_count() > 1 || n > 1 || !meta.parts.is_empty()));
    }
    match range {
        None => Ok((0, meta.size, false)),
        Some(r) => {
            let br = match *r {
                Range::Int { first, last } => trove_backends::ByteRange::FromTo { first, last },
                Range::Suffix { length } => trove_backends::ByteRange::Suffix(length),
            };
            let (s, e) = br.resolve(meta.size).ok_or_else(|| {
                let err = s3_error!(InvalidRange, "The requested range is not satisfiable");
                let mut h = http::HeaderMap::new();
                if let Ok(v) = http::HeaderValue::from_str(&format!("bytes */{}", meta.size)) {
                    h.insert(http::header::CONTENT_RANGE, v);
                }
                errors::with_headers(err, h)
            })?;
            Ok((s, e, true))
        }
    }
}

/// `?latest-ver=true` (AIS): revalidate a cached copy against the backend for this request.
fn wants_latest(uri: &http::Uri) -> bool {
    uri.query().is_some_and(|q| q.split('&').any(|p| p == "latest-ver=true" || p == "latest-ver=1"))
}

/// GET and HEAD of one object, local or remote, through the data layer.
async fn read_any(
    state: &SharedState,
    entry: trove_namespace::BucketEntry,
    i: GetObjectInput,
    with_body: bool,
    latest: bool,
) -> S3Result<(GetObjectOutput, http::HeaderMap, bool)> {
    check_key(&i.key)?;
    let range = i.range.as_ref().map(|r| match *r {
        Range::Int { first, last } => trove_backends::ByteRange::FromTo { first, last },
        Range::Suffix { length } => trove_backends::ByteRange::Suffix(length),
    });
    let customer = sse::customer_key_of!(i)?;
    if let Some(version) = i.version_id.clone() {
        let (file, meta) =
            crate::data::versions::open(state, &entry, &i.key, &version).await.map_err(errors::from_data)?;
        if meta.delete_marker {
            return Err(marker_error(
                s3_error!(MethodNotAllowed, "The specified method is not allowed against this resource."),
                &meta,
            ));
        }
        let key = read_key(state, &meta, customer.as_ref())?;
        let body = crate::data::Body::File(std::sync::Arc::new(file));
        let m = meta.clone();
        let mut r = respond(&meta, i, with_body, move |start, end| into_plain_blob(body, &m, key, start, end))?;
        crate::s3::lifecycle::expiration_header(&entry, &meta, &mut r.1);
        return Ok(r);
    }
    let opts = crate::data::ReadOpts { range, latest, with_body };
    let o = match crate::data::read(state, &entry, &i.key, opts).await {
        Ok(o) => o,
        Err(crate::data::Error::NoSuchKey) => {
            let err = errors::from_data(crate::data::Error::NoSuchKey);
            return Err(match crate::data::versions::hiding_marker(state, &entry, &i.key).await {
                Some(marker) => marker_error(err, &marker),
                None => not_a_marker(err),
            });
        }
        Err(e) => return Err(errors::from_data(e)),
    };
    // A part or range that is not there is refused before the object's key is asked for (S3's order).
    select_range(&o.meta, i.range.as_ref(), i.part_number)?;
    let key = read_key(state, &o.meta, customer.as_ref())?;
    let (body, m) = (o.body, o.meta.clone());
    let mut r = respond(&o.meta, i, with_body, move |start, end| into_plain_blob(body, &m, key, start, end))?;
    crate::s3::lifecycle::expiration_header(&entry, &o.meta, &mut r.1);
    Ok(r)
}

/// The data key a read of `meta` needs (none for a plaintext object, which must not be read with a key).
fn read_key(
    state: &SharedState,
    meta: &ObjMeta,
    customer: Option<&crate::data::sse::CustomerKey>,
) -> S3Result<Option<crate::data::sse::DataKey>> {
    sse::refuse_key_for_plaintext(meta, customer)?;
    meta.sse.as_ref().map(|s| sse::open_key(state, s, customer)).transpose()
}

/// [`into_blob`], opening the sealed bytes of an encrypted object.
pub fn into_plain_blob(
    body: crate::data::Body,
    meta: &ObjMeta,
    key: Option<crate::data::sse::DataKey>,
    start: u64,
    end: u64,
) -> StreamingBlob {
    match (body, key) {
        (crate::data::Body::File(f), Some(key)) => {
            StreamingBlob::wrap(SyncBody::new(crate::data::sse::open_stream(f, meta, key, start, end)))
        }
        (body, _) => into_blob(body, start, end),
    }
}

/// The version id a write reports: a new version's; none for a null version (a suspended bucket), as S3 does.
pub fn written_version(meta: &ObjMeta) -> Option<String> {
    meta.vid.clone().filter(|v| v != trove_cache::NULL_VERSION)
}

/// An error about a delete marker carries its headers: `x-amz-delete-marker`, its version id, its time.
fn marker_error(err: s3s::S3Error, marker: &ObjMeta) -> s3s::S3Error {
    let mut h = http::HeaderMap::new();
    h.insert("x-amz-delete-marker", http::HeaderValue::from_static("true"));
    if let Ok(v) = http::HeaderValue::from_str(marker.version_id()) {
        h.insert("x-amz-version-id", v);
    }
    if let Some(v) = http_date(&timestamp_ms(marker.mtime_ms)).and_then(|d| http::HeaderValue::from_str(&d).ok()) {
        h.insert(http::header::LAST_MODIFIED, v);
    }
    errors::with_headers(err, h)
}

/// A missing key that no delete marker hides says so (`x-amz-delete-marker: false`, as RGW answers).
fn not_a_marker(err: s3s::S3Error) -> s3s::S3Error {
    let mut h = http::HeaderMap::new();
    h.insert("x-amz-delete-marker", http::HeaderValue::from_static("false"));
    errors::with_headers(err, h)
}

/// The bytes `[start, end)` of a read as a response body (a backend range is already just those bytes).
pub fn into_blob(body: crate::data::Body, start: u64, end: u64) -> StreamingBlob {
    use crate::data::Body;
    match body {
        Body::File(f) => FileBody::shared(f, start, end).into_blob(),
        Body::Fill(fill) => StreamingBlob::wrap(SyncBody::new(fill.reader(start, end))),
        Body::Backend(stream) => StreamingBlob::wrap(SyncBody::new(stream)),
        Body::None => StreamingBlob::from(s3s::Body::empty()),
    }
}

pub async fn get(state: &SharedState, req: S3Request<GetObjectInput>) -> S3Result<S3Response<GetObjectOutput>> {
    let entry = bucket(&req)?;
    sse::refuse_on_read(&req)?;
    let latest = wants_latest(&req.uri);
    let (output, headers, _) = read_any(state, entry, req.input, true, latest).await?;
    let mut resp = S3Response::new(output);
    resp.headers.extend(headers);
    Ok(resp)
}

/// HEAD is a GET without the body: the same checks, range and headers.
pub async fn head(state: &SharedState, req: S3Request<HeadObjectInput>) -> S3Result<S3Response<HeadObjectOutput>> {
    let entry = bucket(&req)?;
    sse::refuse_on_read(&req)?;
    let latest = wants_latest(&req.uri);
    let i = req.input;
    let as_get = GetObjectInput {
        bucket: i.bucket,
        key: i.key,
        version_id: i.version_id,
        checksum_mode: i.checksum_mode,
        if_match: i.if_match,
        if_none_match: i.if_none_match,
        if_modified_since: i.if_modified_since,
        if_unmodified_since: i.if_unmodified_since,
        part_number: i.part_number,
        range: i.range,
        response_cache_control: i.response_cache_control,
        response_content_disposition: i.response_content_disposition,
        response_content_encoding: i.response_content_encoding,
        response_content_language: i.response_content_language,
        response_content_type: i.response_content_type,
        response_expires: i.response_expires,
        sse_customer_algorithm: i.sse_customer_algorithm,
        sse_customer_key: i.sse_customer_key,
        sse_customer_key_md5: i.sse_customer_key_md5,
        ..Default::default()
    };
    let (o, headers, partial) = read_any(state, entry, as_get, false, latest).await?;
    let mut resp = S3Response::new(HeadObjectOutput {
        content_length: o.content_length,
        content_range: o.content_range,
        accept_ranges: o.accept_ranges,
        e_tag: o.e_tag,
        last_modified: o.last_modified,
        content_type: o.content_type,
        content_encoding: o.content_encoding,
        content_disposition: o.content_disposition,
        content_language: o.content_language,
        cache_control: o.cache_control,
        expires: o.expires,
        metadata: o.metadata,
        parts_count: o.parts_count,
        storage_class: o.storage_class,
        ..Default::default()
    });
    resp.headers.extend(headers);
    // s3s always answers HeadObject with 200: the server turns this marker into 206.
    if partial {
        resp.extensions.insert(crate::s3::PartialContent);
    }
    Ok(resp)
}

/// The answer to a GET or HEAD of an object described by `meta`: conditions, range, headers, and the body
/// from `body(start, end)`.
pub fn respond(
    meta: &ObjMeta,
    i: GetObjectInput,
    with_body: bool,
    body: impl FnOnce(u64, u64) -> StreamingBlob,
) -> S3Result<(GetObjectOutput, http::HeaderMap, bool)> {
    let cond = ReadConditions {
        if_match: i.if_match.as_ref(),
        if_none_match: i.if_none_match.as_ref(),
        if_modified_since: i.if_modified_since.as_ref(),
        if_unmodified_since: i.if_unmodified_since.as_ref(),
    };
    conditions::check(&cond, meta)?;
    let (start, end, partial) = select_range(meta, i.range.as_ref(), i.part_number)?;
    let headers = Headers {
        content_type: i.response_content_type,
        content_encoding: i.response_content_encoding,
        content_disposition: i.response_content_disposition,
        content_language: i.response_content_language,
        cache_control: i.response_cache_control,
        expires: i.response_expires,
    };
    let part = i.part_number.map(|n| n as usize);
    // Checksums describe whole objects (or whole parts), so a plain range gets none.
    let checksum_mode = i.checksum_mode.is_some_and(|m| m.as_str() == ChecksumMode::ENABLED)
        || (with_body && part.is_some() && !meta.part_checksums.is_empty());
    let whole_or_part = (start == 0 && end == meta.size) || part.is_some();
    let h = headers.or_stored(meta);
    let extra = read_headers(meta, checksum_mode && whole_or_part, part);
    let output = GetObjectOutput {
        body: with_body.then(|| body(start, end)),
        content_length: Some((end - start) as i64),
        content_range: partial.then(|| format!("bytes {start}-{}/{}", end.saturating_sub(1), meta.size)),
        accept_ranges: Some("bytes".to_owned()),
        e_tag: Some(ETag::Strong(meta.etag.clone())),
        last_modified: Some(timestamp_ms(meta.mtime_ms)),
        content_type: h.content_type,
        content_encoding: h.content_encoding,
        content_disposition: h.content_disposition,
        content_language: h.content_language,
        cache_control: h.cache_control,
        expires: h.expires,
        metadata: (!meta.user.is_empty()).then(|| meta.user.clone().into_iter().collect()),
        parts_count: part.map(|_| meta.parts_count() as i32),
        storage_class: meta.storage_class.clone().map(StorageClass::from),
        ..Default::default()
    };
    Ok((output, extra, partial))
}

pub async fn delete(
    state: &SharedState,
    req: S3Request<DeleteObjectInput>,
) -> S3Result<S3Response<DeleteObjectOutput>> {
    let entry = bucket(&req)?;
    let bypass = crate::s3::object_lock::bypass(&req, &entry, req.input.bypass_governance_retention)?;
    let i = req.input;
    check_key(&i.key)?;
    let deleted =
        crate::data::versions::delete(state, &entry, &i.key, i.version_id, bypass).await.map_err(errors::from_data)?;
    Ok(S3Response::new(DeleteObjectOutput {
        delete_marker: deleted.delete_marker.then_some(true),
        version_id: deleted.version_id,
        ..Default::default()
    }))
}

/// S3's limit on keys per DeleteObjects request.
const MAX_DELETE_KEYS: usize = 1000;

pub async fn delete_many(
    state: &SharedState,
    req: S3Request<DeleteObjectsInput>,
) -> S3Result<S3Response<DeleteObjectsOutput>> {
    let entry = bucket(&req)?;
    let bypass = crate::s3::object_lock::bypass(&req, &entry, req.input.bypass_governance_retention)?;
    let objects = req.input.delete.objects;
    if objects.len() > MAX_DELETE_KEYS {
        return Err(s3_error!(
            MalformedXML,
            "The XML you provided was not well-formed or did not validate against our published schema"
        ));
    }
    let quiet = req.input.delete.quiet.unwrap_or(false);
    let mut deleted = Vec::new();
    let mut errs = Vec::new();
    let mut wanted = Vec::with_capacity(objects.len());
    let failed = |key: String, version_id: Option<String>, e: s3s::S3Error| Error {
        key: Some(key),
        code: Some(e.code().as_str().to_owned()),
        message: e.message().map(str::to_owned),
        version_id,
    };
    for o in objects {
        match check_key(&o.key) {
            Ok(()) => wanted.push((o.key, o.version_id)),
            Err(e) => errs.push(failed(o.key, o.version_id, e)),
        }
    }
    if wanted.iter().any(|(_, v)| v.is_some()) || crate::data::versions::is_versioned(&entry) {
        let outcomes = crate::data::versions::delete_many(state, &entry, wanted.clone(), bypass).await;
        for ((key, version), outcome) in wanted.into_iter().zip(outcomes) {
            match outcome.map_err(errors::from_data) {
                Ok(d) if !quiet => deleted.push(DeletedObject {
                    key: Some(key),
                    // Removing a version names it; a new delete marker is named as the marker.
                    version_id: version.clone(),
                    delete_marker: d.delete_marker.then_some(true),
                    delete_marker_version_id: d.delete_marker.then_some(d.version_id).flatten(),
                }),
                Ok(_) => {}
                Err(e) => errs.push(failed(key, version, e)),
            }
        }
    } else {
        let keys = wanted.into_iter().map(|(k, _)| k).collect();
        for (key, outcome) in crate::data::delete_many(state, &entry, keys).await {
            match outcome.map_err(errors::from_data) {
                Ok(()) if !quiet => deleted.push(DeletedObject { key: Some(key), ..Default::default() }),
                Ok(()) => {}
                Err(e) => errs.push(failed(key, None, e)),
            }
        }
    }
    Ok(S3Response::new(DeleteObjectsOutput {
        deleted: Some(deleted),
        errors: (!errs.is_empty()).then_some(errs),
        request_charged: None,
    }))
}

/// GetObjectAttributes: ETag, checksum, parts, size and storage class from stored metadata.
pub async fn attributes(
    state: &SharedState,
    req: S3Request<GetObjectAttributesInput>,
) -> S3Result<S3Response<GetObjectAttributesOutput>> {
    let entry = bucket(&req)?;
    let i = req.input;
    check_key(&i.key)?;
    let meta = match &i.version_id {
        Some(v) => crate::data::versions::open(state, &entry, &i.key, v).await.map_err(errors::from_data)?.1,
        None => state.store.head(&entry.bck, &i.key).map_err(errors::from_store)?,
    };
    if meta.delete_marker {
        return Err(marker_error(
            s3_error!(MethodNotAllowed, "The specified method is not allowed against this resource."),
            &meta,
        ));
    }
    let customer = sse::customer_key_of!(i)?;
    read_key(state, &meta, customer.as_ref())?;
    // Clients send one comma-separated header; s3s may hand it over as a single element.
    let wants = |a: &str| i.object_attributes.iter().any(|x| x.as_str().split(',').any(|v| v.trim() == a));
    let checksum = (wants(ObjectAttributes::CHECKSUM) && !meta.checksums.is_empty()).then(|| {
        let c = &meta.checksums;
        Checksum {
            checksum_crc32: c.get("CRC32").cloned(),
            checksum_crc32c: c.get("CRC32C").cloned(),
            checksum_crc64nvme: c.get("CRC64NVME").cloned(),
            checksum_sha1: c.get("SHA1").cloned(),
            checksum_sha256: c.get("SHA256").cloned(),
            checksum_type: Some(ChecksumType::from(
                meta.checksum_type.clone().unwrap_or_else(|| ChecksumType::FULL_OBJECT.to_owned()),
            )),
        }
    });
    let object_parts = (wants(ObjectAttributes::OBJECT_PARTS) && !meta.parts.is_empty()).then(|| {
        let max = i.max_parts.map_or(1000, |m| m.clamp(0, 1000) as usize);
        let marker = i.part_number_marker.map_or(0, |m| m.max(0) as usize);
        let algo = meta.checksums.keys().next().cloned();
        let all: Vec<ObjectPart> = meta
            .parts
            .iter()
            .enumerate()
            .skip(marker)
            .map(|(idx, size)| {
                let sum = meta.part_checksums.get(idx).cloned();
                let is = |a: &str| if algo.as_deref() == Some(a) { sum.clone() } else { None };
                ObjectPart {
                    part_number: Some(idx as i32 + 1),
                    size: Some(*size as i64),
                    checksum_crc32: is("CRC32"),
                    checksum_crc32c: is("CRC32C"),
                    checksum_crc64nvme: is("CRC64NVME"),
                    checksum_sha1: is("SHA1"),
                    checksum_sha256: is("SHA256"),
                }
            })
            .collect();
        let truncated = all.len() > max;
        let parts: Vec<ObjectPart> = all.into_iter().take(max).collect();
        GetObjectAttributesParts {
            total_parts_count: Some(meta.parts.len() as i32),
            part_number_marker: i.part_number_marker,
            next_part_number_marker: parts.last().and_then(|p| p.part_number),
            max_parts: Some(max as i32),
            is_truncated: Some(truncated),
            parts: Some(parts),
        }
    });
    let mut resp = S3Response::new(GetObjectAttributesOutput {
        e_tag: wants(ObjectAttributes::ETAG).then(|| ETag::Strong(meta.etag.clone())),
        checksum,
        object_parts,
        object_size: wants(ObjectAttributes::OBJECT_SIZE).then_some(meta.size as i64),
        storage_class: wants(ObjectAttributes::STORAGE_CLASS)
            .then(|| StorageClass::from(meta.storage_class.clone().unwrap_or_else(|| "STANDARD".to_owned()))),
        last_modified: Some(timestamp_ms(meta.mtime_ms)),
        version_id: meta.vid.clone(),
        ..Default::default()
    });
    resp.extensions.insert(crate::s3::UnquotedETag);
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::strip_aws_chunked;

    #[test]
    fn aws_chunked_is_not_a_stored_encoding() {
        assert_eq!(strip_aws_chunked(None), None);
        assert_eq!(strip_aws_chunked(Some("aws-chunked".into())), None);
        assert_eq!(strip_aws_chunked(Some("gzip, aws-chunked".into())).as_deref(), Some("gzip"));
        assert_eq!(strip_aws_chunked(Some("aws-chunked,br".into())).as_deref(), Some("br"));
        assert_eq!(strip_aws_chunked(Some("gzip".into())).as_deref(), Some("gzip"));
    }
}
