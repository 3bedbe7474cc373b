//! Tag sets: S3's limits, the `x-amz-tagging` header form, and object tagging operations.

use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};

use crate::s3::ctx::{bucket, check_key};
use crate::s3::errors;
use crate::state::SharedState;

const MAX_KEY: usize = 128;
const MAX_VALUE: usize = 256;
/// Objects allow 10 tags, buckets 50.
pub const MAX_OBJECT_TAGS: usize = 10;

pub fn check_tag_set(tags: &[Tag], max: usize) -> S3Result<()> {
    if tags.len() > max {
        return Err(s3_error!(InvalidTag, "Object tags cannot be greater than {max}"));
    }
    let mut seen = std::collections::HashSet::new();
    for t in tags {
        let k = t.key.as_deref().unwrap_or_default();
        let v = t.value.as_deref().unwrap_or_default();
        if k.is_empty() || k.chars().count() > MAX_KEY {
            return Err(s3_error!(InvalidTag, "The TagKey you have provided is invalid"));
        }
        if v.chars().count() > MAX_VALUE {
            return Err(s3_error!(InvalidTag, "The TagValue you have provided is invalid"));
        }
        if !seen.insert(k) {
            return Err(s3_error!(InvalidTag, "Cannot provide multiple Tags with the same key"));
        }
    }
    Ok(())
}

pub fn to_pairs(tags: &[Tag]) -> Vec<(String, String)> {
    tags.iter().map(|t| (t.key.clone().unwrap_or_default(), t.value.clone().unwrap_or_default())).collect()
}

pub fn to_tag_set(pairs: &[(String, String)]) -> TagSet {
    pairs.iter().map(|(k, v)| Tag { key: Some(k.clone()), value: Some(v.clone()) }).collect()
}

/// Parses the URL-query form of `x-amz-tagging` (`k1=v1&k2=v2`).
pub fn parse_header(h: &str) -> S3Result<Vec<(String, String)>> {
    let pairs: Vec<(String, String)> = crate::request::query_pairs(h);
    let tags: Vec<Tag> = pairs.iter().map(|(k, v)| Tag { key: Some(k.clone()), value: Some(v.clone()) }).collect();
    check_tag_set(&tags, MAX_OBJECT_TAGS)?;
    Ok(pairs)
}

pub async fn get_object(
    state: &SharedState,
    req: S3Request<GetObjectTaggingInput>,
) -> S3Result<S3Response<GetObjectTaggingOutput>> {
    let entry = bucket(&req)?;
    let i = req.input;
    check_key(&i.key)?;
    let meta =
        crate::data::versions::head(state, &entry, &i.key, i.version_id.as_deref()).await.map_err(errors::from_data)?;
    let mut tags = meta.tags;
    tags.sort();
    Ok(S3Response::new(GetObjectTaggingOutput { tag_set: to_tag_set(&tags), version_id: meta.vid }))
}

pub async fn put_object(
    state: &SharedState,
    req: S3Request<PutObjectTaggingInput>,
) -> S3Result<S3Response<PutObjectTaggingOutput>> {
    let entry = bucket(&req)?;
    let i = req.input;
    check_key(&i.key)?;
    check_tag_set(&i.tagging.tag_set, MAX_OBJECT_TAGS)?;
    let tags = to_pairs(&i.tagging.tag_set);
    let meta = set_tags(state, &entry, &i.key, i.version_id, tags).await?;
    Ok(S3Response::new(PutObjectTaggingOutput { version_id: meta.vid }))
}

pub async fn delete_object(
    state: &SharedState,
    req: S3Request<DeleteObjectTaggingInput>,
) -> S3Result<S3Response<DeleteObjectTaggingOutput>> {
    let entry = bucket(&req)?;
    let i = req.input;
    check_key(&i.key)?;
    let meta = set_tags(state, &entry, &i.key, i.version_id, Vec::new()).await?;
    Ok(S3Response::new(DeleteObjectTaggingOutput { version_id: meta.vid }))
}

/// Replaces the tags of an object (one version of it, when named); a delete marker has none to change.
async fn set_tags(
    state: &SharedState,
    entry: &trove_namespace::BucketEntry,
    key: &str,
    version: Option<String>,
    tags: Vec<(String, String)>,
) -> S3Result<trove_cache::ObjMeta> {
    crate::data::versions::update_meta(state, entry, key, version, move |m| {
        if m.delete_marker {
            return Err(trove_cache::Error::NotFound);
        }
        m.tags = tags;
        Ok(())
    })
    .await
    .map_err(errors::from_data)
}
