//! ListObjects (v1) and ListObjectsV2 over AIS-local buckets.
//!
//! Both versions share one pager: keys come from the store in byte order, a page at a time; keys that contain
//! the delimiter after the prefix fold into a common prefix, and the pager then jumps past everything under
//! that prefix instead of reading it. A common prefix that is not after the marker was already returned.

use base64::Engine;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};
use trove_cache::{ObjMeta, Store};
use trove_namespace::Bck;

use crate::s3::access;
use crate::s3::bucket::timestamp_ms;
use crate::s3::ctx::blocking;
use crate::s3::errors;
use crate::s3::remote;
use crate::state::SharedState;

pub const MAX_KEYS: usize = 1000;

/// One page of a listing.
#[derive(Debug, Default)]
pub struct Page {
    pub objects: Vec<(String, ObjMeta)>,
    pub prefixes: Vec<String>,
    pub truncated: bool,
    /// The last key or common prefix returned: where the next page starts.
    pub last: Option<String>,
    /// The ListObjectsV2 continuation token, when the page source makes its own (remote buckets).
    pub next_token: Option<String>,
}

pub fn list_page(
    store: &Store,
    bck: &Bck,
    prefix: &str,
    delimiter: Option<&str>,
    after: &str,
    max_keys: usize,
) -> trove_cache::Result<Page> {
    let mut page = Page::default();
    if max_keys == 0 {
        return Ok(page);
    }
    let delimiter = delimiter.filter(|d| !d.is_empty());
    // Start at the marker, or right before the prefix: nothing sorts between them that could match.
    let mut pos: Vec<u8> = if after.as_bytes() >= prefix.as_bytes() { after.as_bytes().to_vec() } else { Vec::new() };
    let mut count = 0usize;
    loop {
        let batch = store.list(bck, &pos, prefix, max_keys - count + 1)?;
        if batch.is_empty() {
            return Ok(page);
        }
        let mut skip: Option<String> = None;
        for (key, meta) in batch {
            if skip.as_deref().is_some_and(|cp| key.starts_with(cp)) {
                continue;
            }
            let folded = delimiter
                .and_then(|d| key[prefix.len()..].find(d).map(|i| key[..prefix.len() + i + d.len()].to_owned()));
            match folded {
                Some(cp) => {
                    if cp.as_bytes() > after.as_bytes() {
                        if count == max_keys {
                            page.truncated = true;
                            return Ok(page);
                        }
                        page.prefixes.push(cp.clone());
                        page.last = Some(cp.clone());
                        count += 1;
                    }
                    pos = cp.as_bytes().to_vec();
                    pos.push(0xFF);
                    skip = Some(cp);
                }
                None => {
                    if count == max_keys {
                        page.truncated = true;
                        return Ok(page);
                    }
                    pos = key.as_bytes().to_vec();
                    page.last = Some(key.clone());
                    page.objects.push((key, meta));
                    count += 1;
                }
            }
        }
    }
}

/// What `encoding-type=url` escapes: everything but unreserved characters and `/`.
const URL_ENCODE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~').remove(b'/');

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
    /// The bucket owner, reported as the owner of its objects.
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
) -> S3Result<Listing> {
    let entry = crate::s3::ctx::bucket(req)?;
    check_encoding(encoding)?;
    let max = max_keys(max_keys_param)?;
    let owner = access::owner_of(state, &entry.owner);
    if entry.bck.provider.is_remote() {
        let (after, resume) = match token {
            Some(t) => remote::decode_token(t)
                .ok_or_else(|| s3_error!(InvalidArgument, "The continuation token provided is incorrect"))?,
            None => (after, None),
        };
        let page = remote::list_page(state, &entry, prefix, delimiter, &after, resume, max).await?;
        return Ok(Listing { page, owner, max });
    }
    let after = match token {
        Some(t) => decode_token(t)?,
        None => after,
    };
    let st = state.clone();
    let (p, d) = (prefix.to_owned(), delimiter.map(str::to_owned));
    let page =
        blocking(move || list_page(&st.store, &entry.bck, &p, d.as_deref(), &after, max).map_err(errors::from_store))
            .await?;
    Ok(Listing { page, owner, max })
}

pub async fn v1(state: &SharedState, req: S3Request<ListObjectsInput>) -> S3Result<S3Response<ListObjectsOutput>> {
    let i = &req.input;
    let prefix = i.prefix.clone().unwrap_or_default();
    let marker = i.marker.clone().unwrap_or_default();
    let Listing { page, owner, max } =
        list(state, &req, i.encoding_type.as_ref(), i.max_keys, &prefix, i.delimiter.as_deref(), marker.clone(), None)
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
        contents: Some(page.objects.into_iter().map(|(k, m)| object_entry(k, &m, Some(owner.clone()), &enc)).collect()),
        common_prefixes: Some(page.prefixes.into_iter().map(|p| CommonPrefix { prefix: Some(enc(p)) }).collect()),
        delimiter: i.delimiter.filter(|d| !d.is_empty()).map(&enc),
        encoding_type: i.encoding_type,
        request_charged: None,
    }))
}

pub(crate) fn encode_token(pos: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(pos.as_bytes())
}

pub(crate) fn decode_token(token: &str) -> S3Result<String> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| s3_error!(InvalidArgument, "The continuation token provided is incorrect"))
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
        next_continuation_token: if page.truncated {
            page.next_token.clone().or_else(|| page.last.as_deref().map(encode_token))
        } else {
            None
        },
        contents: Some(page.objects.into_iter().map(|(k, m)| object_entry(k, &m, owner.clone(), &enc)).collect()),
        common_prefixes: Some(page.prefixes.into_iter().map(|p| CommonPrefix { prefix: Some(enc(p)) }).collect()),
        delimiter: i.delimiter.filter(|d| !d.is_empty()).map(&enc),
        encoding_type: i.encoding_type,
        start_after: i.start_after.map(&enc),
        request_charged: None,
    }))
}

/// ListObjectVersions on a bucket without versioning: every object is its only version, `null`, and latest.
pub async fn versions(
    state: &SharedState,
    req: S3Request<ListObjectVersionsInput>,
) -> S3Result<S3Response<ListObjectVersionsOutput>> {
    let i = &req.input;
    let prefix = i.prefix.clone().unwrap_or_default();
    let marker = i.key_marker.clone().unwrap_or_default();
    let Listing { page, owner, max } =
        list(state, &req, i.encoding_type.as_ref(), i.max_keys, &prefix, i.delimiter.as_deref(), marker.clone(), None)
            .await?;
    let i = req.input;
    let enc = encoder(i.encoding_type.as_ref());
    let versions = page
        .objects
        .into_iter()
        .map(|(k, m)| ObjectVersion {
            key: Some(enc(k)),
            version_id: Some("null".to_owned()),
            is_latest: Some(true),
            size: Some(m.size as i64),
            e_tag: Some(ETag::Strong(m.etag.clone())),
            last_modified: Some(timestamp_ms(m.mtime_ms)),
            storage_class: Some(ObjectVersionStorageClass::from(
                m.storage_class.clone().unwrap_or_else(|| "STANDARD".to_owned()),
            )),
            owner: Some(owner.clone()),
            ..Default::default()
        })
        .collect();
    Ok(S3Response::new(ListObjectVersionsOutput {
        name: Some(i.bucket),
        prefix: Some(enc(prefix)),
        key_marker: Some(enc(marker)),
        version_id_marker: i.version_id_marker,
        max_keys: Some(max as i32),
        is_truncated: Some(page.truncated),
        next_key_marker: if page.truncated { page.last.clone().map(&enc) } else { None },
        next_version_id_marker: page.truncated.then(|| "null".to_owned()),
        versions: Some(versions),
        delete_markers: None,
        common_prefixes: Some(page.prefixes.into_iter().map(|p| CommonPrefix { prefix: Some(enc(p)) }).collect()),
        delimiter: i.delimiter.filter(|d| !d.is_empty()).map(&enc),
        encoding_type: i.encoding_type,
        request_charged: None,
    }))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn store_with(keys: &[&str]) -> (tempfile::TempDir, Store, Bck) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&[dir.path().join("mp")], false).unwrap();
        let bck = Bck::ais("b");
        for k in keys {
            let mut st = store.stage(&bck, k).unwrap();
            st.file.write_all(k.as_bytes()).unwrap();
            store.commit(st, &bck, k, &ObjMeta { key: (*k).into(), ..Default::default() }).unwrap();
        }
        (dir, store, bck)
    }

    fn page(
        s: &Store,
        b: &Bck,
        prefix: &str,
        delim: Option<&str>,
        after: &str,
        max: usize,
    ) -> (Vec<String>, Vec<String>, bool) {
        let p = list_page(s, b, prefix, delim, after, max).unwrap();
        (p.objects.into_iter().map(|(k, _)| k).collect(), p.prefixes, p.truncated)
    }

    #[test]
    fn delimiter_folds_and_pages() {
        let (_d, s, b) = store_with(&["a/1", "a/2", "b", "c/x/1", "c/y", "d"]);
        let (o, p, t) = page(&s, &b, "", Some("/"), "", 1000);
        assert_eq!((o, p, t), (vec!["b".into(), "d".into()], vec!["a/".into(), "c/".into()], false));
        // Paging by two: the marker may be a common prefix, which is then skipped as a whole.
        let (o, p, t) = page(&s, &b, "", Some("/"), "", 2);
        assert_eq!((o, p, t), (vec!["b".into()], vec!["a/".into()], true));
        let (o, p, t) = page(&s, &b, "", Some("/"), "b", 2);
        assert_eq!((o, p, t), (vec!["d".into()], vec!["c/".into()], false));
        let (o, p, _) = page(&s, &b, "", Some("/"), "a/", 10);
        assert_eq!((o, p), (vec!["b".into(), "d".into()], vec!["c/".into()]));
        // Prefix plus delimiter, and a multi-character delimiter.
        let (o, p, _) = page(&s, &b, "c/", Some("/"), "", 10);
        assert_eq!((o, p), (vec!["c/y".into()], vec!["c/x/".into()]));
        let (o, p, _) = page(&s, &b, "", Some("/1"), "", 10);
        assert_eq!(
            (o, p),
            (vec!["a/2".into(), "b".into(), "c/y".into(), "d".into()], vec!["a/1".into(), "c/x/1".into()])
        );
        assert_eq!(page(&s, &b, "", None, "", 0), (vec![], vec![], false));
    }
}
