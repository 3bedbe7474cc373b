//! Get/PutBucketAcl and Get/PutObjectAcl, and the ACL a write asks for (canned `x-amz-acl`, `x-amz-grant-*`
//! headers or an AccessControlPolicy body) in S3's vocabulary. The model and its evaluation are in
//! [`crate::acl`].

use s3s::dto::Grantee as Grantee_;
use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};
use trove_namespace::BucketEntry;

use crate::acl::{self, Grantee, Ownership, Perm};
use crate::s3::ctx::{bucket, check_key};
use crate::s3::errors;
use crate::state::{AppState, SharedState};

/// The `x-amz-grant-*` headers of a request.
#[derive(Debug, Default, Clone, Copy)]
pub struct GrantHeaders<'a> {
    pub read: Option<&'a str>,
    pub write: Option<&'a str>,
    pub read_acp: Option<&'a str>,
    pub write_acp: Option<&'a str>,
    pub full_control: Option<&'a str>,
}

impl GrantHeaders<'_> {
    fn is_empty(&self) -> bool {
        self.list().iter().all(|(_, v)| v.is_none())
    }

    fn list(&self) -> [(Perm, Option<&str>); 5] {
        [
            (Perm::Read, self.read),
            (Perm::Write, self.write),
            (Perm::ReadAcp, self.read_acp),
            (Perm::WriteAcp, self.write_acp),
            (Perm::FullControl, self.full_control),
        ]
    }
}

/// The grant headers of an s3s input (`write` only where the operation has it: buckets and their ACL).
macro_rules! grant_headers_of {
    ($i:expr) => {
        $crate::s3::acl::GrantHeaders {
            read: $i.grant_read.as_deref(),
            write: None,
            read_acp: $i.grant_read_acp.as_deref(),
            write_acp: $i.grant_write_acp.as_deref(),
            full_control: $i.grant_full_control.as_deref(),
        }
    };
    ($i:expr, write) => {
        $crate::s3::acl::GrantHeaders { write: $i.grant_write.as_deref(), ..$crate::s3::acl::grant_headers_of!($i) }
    };
}
pub(crate) use grant_headers_of;

/// The stored form of a canned ACL (`None`: private).
pub fn check_canned(name: &str) -> S3Result<Option<String>> {
    match name {
        "private" => Ok(None),
        n if acl::CANNED.contains(&n) => Ok(Some(n.to_owned())),
        other => Err(s3_error!(InvalidArgument, "Unknown canned ACL {other:?}")),
    }
}

/// What a request that creates a bucket or writes an object asks to store as its ACL: a canned ACL or the
/// grant headers, not both. `owner` is the new resource's owner.
pub fn requested(
    state: &AppState,
    entry: Option<&BucketEntry>,
    canned: Option<&str>,
    headers: GrantHeaders<'_>,
    owner: &str,
) -> S3Result<Option<String>> {
    if entry.is_some_and(|e| Ownership::of(e) == Ownership::BucketOwnerEnforced) {
        // ACLs are disabled: only the one canned ACL that says so is accepted.
        if !headers.is_empty() || canned.is_some_and(|c| c != "bucket-owner-full-control") {
            return Err(acls_disabled());
        }
        return Ok(None);
    }
    match (canned, headers.is_empty()) {
        (Some(_), false) => {
            Err(s3_error!(InvalidRequest, "Specifying both Canned ACLs and Header Grants is not allowed"))
        }
        (Some(c), true) => check_canned(c),
        (None, true) => Ok(None),
        (None, false) => {
            let mut list = Vec::new();
            for (perm, value) in headers.list() {
                if let Some(v) = value {
                    for grantee in parse_grant_header(v)? {
                        list.push(acl::Grant { grantee: resolve(state, grantee)?, perm });
                    }
                }
            }
            Ok(acl::encode(&list, owner))
        }
    }
}

/// The ACL and the owner (`None`: the bucket's) of an object that `writer` writes with this request.
pub fn for_new_object(
    state: &AppState,
    entry: &BucketEntry,
    writer: Option<&crate::state::User>,
    canned: Option<&str>,
    headers: GrantHeaders<'_>,
) -> S3Result<(Option<String>, Option<String>)> {
    let owner = Ownership::of(entry).object_owner(entry, writer.map(|u| u.id.as_str()), canned);
    let acl = requested(state, Some(entry), canned, headers, owner.as_deref().unwrap_or(&entry.owner))?;
    Ok((acl, owner))
}

/// S3's answer where ACLs are disabled by `BucketOwnerEnforced`.
pub fn acls_disabled() -> s3s::S3Error {
    errors::custom("AccessControlListNotSupported", http::StatusCode::BAD_REQUEST, "The bucket does not allow ACLs")
}

/// A grantee as a request names it, before it is resolved to a user or group.
enum Named {
    Id(String),
    Email(String),
    Uri(String),
}

/// `id="...", uri="...", emailAddress="..."`, comma-separated.
fn parse_grant_header(v: &str) -> S3Result<Vec<Named>> {
    v.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|part| {
            let (k, val) = part.split_once('=').ok_or_else(|| s3_error!(InvalidArgument, "Invalid grant {part:?}"))?;
            let val = val.trim().trim_matches('"').to_owned();
            match k.trim().to_ascii_lowercase().as_str() {
                "id" => Ok(Named::Id(val)),
                "emailaddress" => Ok(Named::Email(val)),
                "uri" => Ok(Named::Uri(val)),
                _ => Err(s3_error!(InvalidArgument, "Invalid grant {part:?}")),
            }
        })
        .collect()
}

/// The user or group a grant names; unknown users and e-mail addresses are refused as S3 refuses them.
fn resolve(state: &AppState, named: Named) -> S3Result<Grantee> {
    match named {
        Named::Id(id) if state.users.values().any(|u| u.id == id) => Ok(Grantee::User(id)),
        Named::Id(_) => Err(s3_error!(InvalidArgument, "Invalid id")),
        Named::Email(email) => state
            .users
            .values()
            .find(|u| u.email.as_deref().is_some_and(|e| e.eq_ignore_ascii_case(&email)))
            .map(|u| Grantee::User(u.id.clone()))
            .ok_or_else(|| {
                errors::custom(
                    "UnresolvableGrantByEmailAddress",
                    http::StatusCode::BAD_REQUEST,
                    "The e-mail address you provided does not match any account on record.",
                )
            }),
        Named::Uri(uri) => Grantee::group(&uri).ok_or_else(|| s3_error!(InvalidArgument, "Invalid group uri")),
    }
}

/// A Put*Acl request: the canned header, the grant headers, or the AccessControlPolicy body (exactly one).
fn put_request(
    state: &AppState,
    entry: &BucketEntry,
    canned: Option<&str>,
    headers: GrantHeaders<'_>,
    body: Option<&AccessControlPolicy>,
    owner: &str,
) -> S3Result<Option<String>> {
    if Ownership::of(entry) == Ownership::BucketOwnerEnforced {
        return Err(acls_disabled());
    }
    let Some(policy) = body else {
        if canned.is_none() && headers.is_empty() {
            return Err(s3_error!(MissingSecurityHeader, "Your request was missing a required header: x-amz-acl"));
        }
        return requested(state, Some(entry), canned, headers, owner);
    };
    if canned.is_some() || !headers.is_empty() {
        return Err(s3_error!(UnexpectedContent, "This request does not support content"));
    }
    let mut list = Vec::new();
    for g in policy.grants.iter().flatten() {
        let perm = g
            .permission
            .as_ref()
            .and_then(|p| Perm::parse(p.as_str()))
            .ok_or_else(|| s3_error!(MalformedACLError, "The XML you provided was not well-formed"))?;
        list.push(acl::Grant { grantee: grantee_of(state, g.grantee.as_ref())?, perm });
    }
    Ok(acl::encode(&list, owner))
}

/// The user or group an S3 `Grantee` element names.
pub fn grantee_of(state: &AppState, ge: Option<&Grantee_>) -> S3Result<Grantee> {
    let ge = ge.ok_or_else(|| s3_error!(MalformedACLError, "A grant names no grantee"))?;
    let named = match (ge.type_.as_str(), &ge.id, &ge.email_address, &ge.uri) {
        (Type::CANONICAL_USER, Some(id), _, _) => Named::Id(id.clone()),
        (Type::AMAZON_CUSTOMER_BY_EMAIL, _, Some(e), _) => Named::Email(e.clone()),
        (Type::GROUP, _, _, Some(u)) => Named::Uri(u.clone()),
        _ => return Err(s3_error!(MalformedACLError, "The XML you provided was not well-formed")),
    };
    resolve(state, named)
}

/// S3's grant list for a stored ACL.
pub fn grants_of(state: &AppState, stored: Option<&str>, owner: &str, bucket_owner: &str) -> Vec<Grant> {
    let mut list = acl::grants(stored, owner, bucket_owner);
    // Groups first, then users (each in the order given): the order S3-compatible servers report.
    list.sort_by_key(|g| matches!(g.grantee, Grantee::User(_)));
    list.into_iter()
        .map(|g| {
            let grantee = match &g.grantee {
                Grantee::User(id) => {
                    let o = owner_of(state, id);
                    Grantee_ {
                        type_: Type::from_static(Type::CANONICAL_USER),
                        id: o.id,
                        display_name: o.display_name,
                        email_address: None,
                        uri: None,
                    }
                }
                group => Grantee_ {
                    type_: Type::from_static(Type::GROUP),
                    uri: group.uri().map(str::to_owned),
                    id: None,
                    display_name: None,
                    email_address: None,
                },
            };
            Grant { grantee: Some(grantee), permission: Some(Permission::from(g.perm.as_s3().to_owned())) }
        })
        .collect()
}

/// The owner identity of a canonical id, with the display name of the configured user that has it.
pub fn owner_of(state: &AppState, id: &str) -> Owner {
    let display = state.users.values().find(|u| u.id == id).map_or_else(|| id.to_owned(), |u| u.display_name.clone());
    Owner { id: Some(id.to_owned()), display_name: Some(display) }
}

pub async fn get_bucket(
    state: &SharedState,
    req: S3Request<GetBucketAclInput>,
) -> S3Result<S3Response<GetBucketAclOutput>> {
    let entry = bucket(&req)?;
    let grants = grants_of(state, entry.acl.as_deref(), &entry.owner, &entry.owner);
    Ok(S3Response::new(GetBucketAclOutput { grants: Some(grants), owner: Some(owner_of(state, &entry.owner)) }))
}

pub async fn put_bucket(
    state: &SharedState,
    req: S3Request<PutBucketAclInput>,
) -> S3Result<S3Response<PutBucketAclOutput>> {
    let entry = bucket(&req)?;
    let i = &req.input;
    let canned = i.acl.as_ref().map(|a| a.as_str());
    let acl = put_request(
        state,
        &entry,
        canned,
        grant_headers_of!(i, write),
        i.access_control_policy.as_ref(),
        &entry.owner,
    )?;
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
    let meta = crate::data::versions::head(state, &entry, &req.input.key, req.input.version_id.as_deref())
        .await
        .map_err(errors::from_data)?;
    let owner = meta.owner.clone().unwrap_or_else(|| entry.owner.clone());
    Ok(S3Response::new(GetObjectAclOutput {
        grants: Some(grants_of(state, meta.acl.as_deref(), &owner, &entry.owner)),
        owner: Some(owner_of(state, &owner)),
        request_charged: None,
    }))
}

pub async fn put_object(
    state: &SharedState,
    req: S3Request<PutObjectAclInput>,
) -> S3Result<S3Response<PutObjectAclOutput>> {
    let entry = bucket(&req)?;
    let i = &req.input;
    check_key(&i.key)?;
    let meta =
        crate::data::versions::head(state, &entry, &i.key, i.version_id.as_deref()).await.map_err(errors::from_data)?;
    let owner = meta.owner.clone().unwrap_or_else(|| entry.owner.clone());
    let canned = i.acl.as_ref().map(|a| a.as_str());
    let acl =
        put_request(state, &entry, canned, grant_headers_of!(i, write), i.access_control_policy.as_ref(), &owner)?;
    crate::data::versions::update_meta(state, &entry, &i.key, i.version_id.clone(), move |m| {
        m.acl = acl;
        Ok(())
    })
    .await
    .map_err(errors::from_data)?;
    Ok(S3Response::new(PutObjectAclOutput::default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canned_names() {
        assert_eq!(check_canned("private").unwrap(), None);
        assert_eq!(check_canned("bucket-owner-full-control").unwrap().as_deref(), Some("bucket-owner-full-control"));
        assert_eq!(check_canned("public-read").unwrap().as_deref(), Some("public-read"));
        assert!(check_canned("world-writable").is_err());
    }

    #[test]
    fn grant_headers_parse() {
        let v =
            parse_grant_header(r#"id="abc", uri="http://acs.amazonaws.com/groups/global/AllUsers",emailAddress="a@b""#)
                .unwrap();
        assert!(matches!(&v[..], [Named::Id(i), Named::Uri(_), Named::Email(e)] if i == "abc" && e == "a@b"));
        assert!(parse_grant_header("nonsense").is_err());
        assert!(parse_grant_header(r#"name="x""#).is_err());
    }
}
