//! Bucket operations on AIS-local buckets: create, head, delete, list, location, tagging, versioning.

use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};
use trove_namespace::{validate_s3_bucket_name, Bck, BucketEntry, BucketProps, Change, S3Versioning};

use crate::data::now_ms;
use crate::s3::ctx::{bucket, caller};
use crate::s3::errors;
use crate::s3::object_lock;
use crate::s3::tagging::{check_tag_set, to_pairs, to_tag_set};
use crate::state::SharedState;

pub fn timestamp_ms(ms: i64) -> Timestamp {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    Timestamp::from(t)
}

pub async fn create(
    state: &SharedState,
    req: S3Request<CreateBucketInput>,
) -> S3Result<S3Response<CreateBucketOutput>> {
    let user = caller(&req)?.clone();
    let name = req.input.bucket.clone();
    validate_s3_bucket_name(&name).map_err(|e| s3_error!(InvalidBucketName, "{e}"))?;
    let location = req
        .input
        .create_bucket_configuration
        .as_ref()
        .and_then(|c| c.location_constraint.as_ref())
        .map(|l| l.as_str().to_owned())
        .filter(|l| !l.is_empty());
    let canned = req.input.acl.as_ref().map(|a| a.as_str());
    let acl =
        crate::s3::acl::requested(state, None, canned, crate::s3::acl::grant_headers_of!(req.input, write), &user.id)?;
    if let Some(existing) = state.registry.get(&name) {
        // us-east-1 (S3's legacy region) answers 200 when the owner creates its bucket again, unless the
        // request would change it (a different ACL is not applied to the existing bucket).
        let same = existing.owner == user.id && existing.acl == acl;
        if same && state.region == "us-east-1" {
            return Ok(S3Response::new(CreateBucketOutput { location: Some(format!("/{name}")) }));
        }
        return Err(if same {
            s3_error!(
                BucketAlreadyOwnedByYou,
                "Your previous request to create the named bucket succeeded and you already own it."
            )
        } else {
            s3_error!(BucketAlreadyExists, "The requested bucket name is not available.")
        });
    }
    let mut props = BucketProps::default();
    if let Some(loc) = &location {
        props.extra = serde_json::json!({ "location": loc });
    }
    let object_lock = req.input.object_lock_enabled_for_bucket.unwrap_or(false);
    if object_lock {
        // Object Lock keeps versions: a bucket created with it is versioned from the start.
        props.versioning.s3 = S3Versioning::Enabled;
    }
    let mut entry = BucketEntry {
        bck: Bck::ais(&name),
        owner: user.id.clone(),
        created_ms: now_ms(),
        props,
        tags: vec![],
        acl,
        bid: crate::data::new_bid(),
        sealed: false,
        configs: Default::default(),
    };
    if object_lock {
        entry.configs.insert(object_lock::CONFIG.to_owned(), object_lock::Config::enabled().to_doc());
    }
    if let Some(o) = &req.input.object_ownership {
        let value = ownership_value(o.as_str())?;
        if value == ObjectOwnership::BUCKET_OWNER_ENFORCED && entry.acl.is_some() {
            return Err(acl_with_enforced());
        }
        entry.configs.insert(OWNERSHIP.to_owned(), value.to_owned());
    }
    crate::data::apply_registry(state, Change::Create { name: name.clone(), entry }).await.map_err(|e| match e {
        crate::data::Error::BucketExists(_) => s3_error!(BucketAlreadyExists),
        other => errors::from_data(other),
    })?;
    Ok(S3Response::new(CreateBucketOutput { location: Some(format!("/{name}")) }))
}

pub async fn head(state: &SharedState, req: S3Request<HeadBucketInput>) -> S3Result<S3Response<HeadBucketOutput>> {
    let entry = bucket(&req)?;
    if entry.bck.is_remote() {
        // An attached bucket is only as present as its backend bucket.
        let b = crate::data::backend(state, &entry).map_err(errors::from_data)?;
        b.head_bucket(&entry.bck.name).await.map_err(errors::from_backend)?;
    }
    Ok(S3Response::new(HeadBucketOutput { bucket_region: Some(state.region.clone()), ..Default::default() }))
}

pub async fn delete(
    state: &SharedState,
    req: S3Request<DeleteBucketInput>,
) -> S3Result<S3Response<DeleteBucketOutput>> {
    let entry = bucket(&req)?;
    if entry.bck.is_remote() {
        // A cloud bucket is never deleted through Trove (as in AIS): DeleteBucket detaches it.
        crate::data::attach::detach(state, &req.input.bucket).await.map_err(errors::from_data)?;
        return Ok(S3Response::new(DeleteBucketOutput {}));
    }
    crate::data::delete_bucket_if_empty(state, &req.input.bucket, &entry).await.map_err(errors::from_data)?;
    Ok(S3Response::new(DeleteBucketOutput {}))
}

pub async fn list(state: &SharedState, req: S3Request<ListBucketsInput>) -> S3Result<S3Response<ListBucketsOutput>> {
    let user = caller(&req)?;
    let snap = state.registry.snapshot();
    let prefix = req.input.prefix.clone().unwrap_or_default();
    let max = req.input.max_buckets.map_or(10_000, |m| m.clamp(1, 10_000) as usize);
    let after = req.input.continuation_token.clone().unwrap_or_default();
    let mut buckets: Vec<Bucket> = Vec::new();
    let mut next = None;
    for (name, entry) in
        snap.buckets.range::<str, _>((std::ops::Bound::Excluded(after.as_str()), std::ops::Bound::Unbounded))
    {
        if entry.owner != user.id || !name.starts_with(&prefix) {
            continue;
        }
        if buckets.len() == max {
            next = buckets.last().and_then(|b| b.name.clone());
            break;
        }
        buckets.push(Bucket {
            name: Some(name.clone()),
            creation_date: Some(timestamp_ms(entry.created_ms)),
            bucket_region: Some(state.region.clone()),
        });
    }
    Ok(S3Response::new(ListBucketsOutput {
        buckets: Some(buckets),
        owner: Some(Owner { id: Some(user.id.clone()), display_name: Some(user.display_name.clone()) }),
        continuation_token: next,
        prefix: req.input.prefix,
    }))
}

pub async fn location(
    _state: &SharedState,
    req: S3Request<GetBucketLocationInput>,
) -> S3Result<S3Response<GetBucketLocationOutput>> {
    let entry = bucket(&req)?;
    let loc = entry
        .props
        .extra
        .get("location")
        .and_then(|v| v.as_str())
        .map(|s| BucketLocationConstraint::from(s.to_owned()));
    Ok(S3Response::new(GetBucketLocationOutput { location_constraint: loc }))
}

pub async fn put_tagging(
    state: &SharedState,
    req: S3Request<PutBucketTaggingInput>,
) -> S3Result<S3Response<PutBucketTaggingOutput>> {
    bucket(&req)?;
    check_tag_set(&req.input.tagging.tag_set, 50)?;
    let tags = to_pairs(&req.input.tagging.tag_set);
    let name = req.input.bucket.clone();
    crate::data::apply_registry(state, Change::SetTags { name, tags }).await.map_err(errors::from_data)?;
    Ok(S3Response::new(PutBucketTaggingOutput {}))
}

pub async fn get_tagging(
    _state: &SharedState,
    req: S3Request<GetBucketTaggingInput>,
) -> S3Result<S3Response<GetBucketTaggingOutput>> {
    let entry = bucket(&req)?;
    if entry.tags.is_empty() {
        return Err(s3_error!(NoSuchTagSet, "The TagSet does not exist"));
    }
    Ok(S3Response::new(GetBucketTaggingOutput { tag_set: to_tag_set(&entry.tags) }))
}

pub async fn delete_tagging(
    state: &SharedState,
    req: S3Request<DeleteBucketTaggingInput>,
) -> S3Result<S3Response<DeleteBucketTaggingOutput>> {
    bucket(&req)?;
    let name = req.input.bucket.clone();
    crate::data::apply_registry(state, Change::SetTags { name, tags: Vec::new() }).await.map_err(errors::from_data)?;
    Ok(S3Response::new(DeleteBucketTaggingOutput {}))
}

/// The bucket's S3 versioning state: no status until versioning was first enabled (or suspended).
pub async fn versioning(
    _state: &SharedState,
    req: S3Request<GetBucketVersioningInput>,
) -> S3Result<S3Response<GetBucketVersioningOutput>> {
    let entry = bucket(&req)?;
    let status = match entry.props.versioning.s3 {
        S3Versioning::Unversioned => None,
        S3Versioning::Enabled => Some(BucketVersioningStatus::from_static(BucketVersioningStatus::ENABLED)),
        S3Versioning::Suspended => Some(BucketVersioningStatus::from_static(BucketVersioningStatus::SUSPENDED)),
    };
    Ok(S3Response::new(GetBucketVersioningOutput { status, mfa_delete: None }))
}

/// Enables or suspends versioning of an AIS-local bucket. A cloud bucket's versions are its backend's, and a
/// mirrored bucket's copies would not follow version deletes: both are refused.
pub async fn put_versioning(
    state: &SharedState,
    req: S3Request<PutBucketVersioningInput>,
) -> S3Result<S3Response<PutBucketVersioningOutput>> {
    let entry = bucket(&req)?;
    let config = &req.input.versioning_configuration;
    if config.mfa_delete.as_ref().is_some_and(|m| m.as_str() == MFADelete::ENABLED) {
        return Err(s3_error!(NotImplemented, "MFA delete is not supported"));
    }
    let wanted = match config.status.as_ref().map(|s| s.as_str()) {
        None => return Ok(S3Response::new(PutBucketVersioningOutput {})),
        Some(BucketVersioningStatus::ENABLED) => S3Versioning::Enabled,
        Some(BucketVersioningStatus::SUSPENDED) => S3Versioning::Suspended,
        Some(_) => {
            return Err(s3_error!(
                MalformedXML,
                "The XML you provided was not well-formed or did not validate against our published schema"
            ))
        }
    };
    if entry.bck.is_remote() {
        return Err(s3_error!(NotImplemented, "Versioning of a cloud bucket is its backend's: set it there"));
    }
    if entry.props.mirror.enabled {
        return Err(s3_error!(InvalidBucketState, "Versioning is not supported on a mirrored bucket (mirror.enabled)"));
    }
    if wanted == S3Versioning::Suspended && object_lock::Config::of(&entry).is_some() {
        return Err(s3_error!(
            InvalidBucketState,
            "An Object Lock configuration is present on this bucket, so the versioning state cannot be changed."
        ));
    }
    if entry.props.versioning.s3 != wanted {
        let name = req.input.bucket.clone();
        let patch = serde_json::json!({ "versioning": { "s3": wanted } });
        crate::data::apply_registry(state, Change::PatchProps { name, patch, reset: false })
            .await
            .map_err(errors::from_data)?;
    }
    Ok(S3Response::new(PutBucketVersioningOutput {}))
}

use crate::acl::OWNERSHIP;

fn acl_with_enforced() -> s3s::S3Error {
    errors::custom(
        "InvalidBucketAclWithObjectOwnership",
        http::StatusCode::BAD_REQUEST,
        "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting",
    )
}

fn ownership_value(v: &str) -> S3Result<&'static str> {
    crate::acl::Ownership::parse(v)
        .map(|o| o.as_s3())
        .ok_or_else(|| s3_error!(MalformedXML, "Unknown ObjectOwnership {v:?}"))
}

/// Object ownership (see [`crate::acl::Ownership`]): `BucketOwnerEnforced` is refused while the bucket has an
/// ACL other than private (S3's InvalidBucketAclWithObjectOwnership).
pub async fn put_ownership(
    state: &SharedState,
    req: S3Request<PutBucketOwnershipControlsInput>,
) -> S3Result<S3Response<PutBucketOwnershipControlsOutput>> {
    let entry = bucket(&req)?;
    let [rule] = req.input.ownership_controls.rules.as_slice() else {
        return Err(s3_error!(MalformedXML, "Exactly one ownership rule is supported"));
    };
    let value = ownership_value(rule.object_ownership.as_str())?;
    if value == ObjectOwnership::BUCKET_OWNER_ENFORCED && entry.acl.is_some() {
        return Err(acl_with_enforced());
    }
    crate::s3::bucket::set_config(state, req.input.bucket, OWNERSHIP, Some(value.to_owned())).await?;
    Ok(S3Response::new(PutBucketOwnershipControlsOutput {}))
}

pub async fn get_ownership(
    _state: &SharedState,
    req: S3Request<GetBucketOwnershipControlsInput>,
) -> S3Result<S3Response<GetBucketOwnershipControlsOutput>> {
    let entry = bucket(&req)?;
    let value = entry.configs.get(OWNERSHIP).ok_or_else(|| {
        errors::custom(
            "OwnershipControlsNotFoundError",
            http::StatusCode::NOT_FOUND,
            "The bucket ownership controls were not found",
        )
    })?;
    Ok(S3Response::new(GetBucketOwnershipControlsOutput {
        ownership_controls: Some(OwnershipControls {
            rules: vec![OwnershipControlsRule { object_ownership: ObjectOwnership::from(value.clone()) }],
        }),
    }))
}

pub async fn delete_ownership(
    state: &SharedState,
    req: S3Request<DeleteBucketOwnershipControlsInput>,
) -> S3Result<S3Response<DeleteBucketOwnershipControlsOutput>> {
    bucket(&req)?;
    crate::s3::bucket::set_config(state, req.input.bucket, OWNERSHIP, None).await?;
    Ok(S3Response::new(DeleteBucketOwnershipControlsOutput {}))
}

/// Sets (or with `None` removes) the S3 configuration `kind` of the bucket `name` through the registry (and
/// so the cluster).
pub async fn set_config(state: &SharedState, name: String, kind: &str, doc: Option<String>) -> S3Result<()> {
    let change = Change::SetConfig { name, kind: kind.to_owned(), doc };
    crate::data::apply_registry(state, change).await.map_err(errors::from_data)?;
    Ok(())
}
