//! Get/PutBucketAcl and Get/PutObjectAcl with canned ACLs (see `access`).

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result};

use crate::s3::access::{grants, owner_of, requested_acl};
use crate::s3::ctx::{blocking, bucket, check_key};
use crate::s3::errors;
use crate::state::SharedState;

pub async fn get_bucket(
    state: &SharedState,
    req: S3Request<GetBucketAclInput>,
) -> S3Result<S3Response<GetBucketAclOutput>> {
    let entry = bucket(&req)?;
    let owner = owner_of(state, &entry.owner);
    Ok(S3Response::new(GetBucketAclOutput { grants: Some(grants(&owner, entry.acl.as_deref())), owner: Some(owner) }))
}

pub async fn put_bucket(
    state: &SharedState,
    req: S3Request<PutBucketAclInput>,
) -> S3Result<S3Response<PutBucketAclOutput>> {
    let entry = bucket(&req)?;
    let owner = owner_of(state, &entry.owner);
    let acl =
        requested_acl(req.input.acl.as_ref().map(|a| a.as_str()), req.input.access_control_policy.as_ref(), &owner)?;
    let change = trove_namespace::Change::SetAcl { name: req.input.bucket.clone(), acl };
    crate::data::apply_registry(state, change).await.map_err(errors::from_data)?;
    Ok(S3Response::new(PutBucketAclOutput {}))
}

pub async fn get_object(
    state: &SharedState,
    req: S3Request<GetObjectAclInput>,
) -> S3Result<S3Response<GetObjectAclOutput>> {
    let entry = bucket(&req)?;
    check_key(&req.input.key)?;
    let meta = state.store.head(&entry.bck, &req.input.key).map_err(errors::from_store)?;
    let owner = owner_of(state, &entry.owner);
    Ok(S3Response::new(GetObjectAclOutput {
        grants: Some(grants(&owner, meta.acl.as_deref())),
        owner: Some(owner),
        request_charged: None,
    }))
}

pub async fn put_object(
    state: &SharedState,
    req: S3Request<PutObjectAclInput>,
) -> S3Result<S3Response<PutObjectAclOutput>> {
    let entry = bucket(&req)?;
    check_key(&req.input.key)?;
    let owner = owner_of(state, &entry.owner);
    let acl =
        requested_acl(req.input.acl.as_ref().map(|a| a.as_str()), req.input.access_control_policy.as_ref(), &owner)?;
    let st = state.clone();
    let key = req.input.key.clone();
    blocking(move || st.store.update_meta(&entry.bck, &key, |m| m.acl = acl).map_err(errors::from_store)).await?;
    Ok(S3Response::new(PutObjectAclOutput::default()))
}
