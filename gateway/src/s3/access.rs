//! Who may do what: S3's default (only the owner) widened by canned ACLs on buckets and objects.
//!
//! s3s is told to let anonymous requests through ([`Access`]); the handlers then ask here. Bucket ACLs grant
//! listing (READ) and writing objects (WRITE); an object's ACL grants reading it. Everything else (tagging,
//! ACL changes, multipart, deleting buckets) stays with the owner.

use s3s::access::{S3Access, S3AccessContext};
use s3s::dto::{Grant, Grantee, Owner, Permission, Type};
use s3s::{s3_error, S3Request, S3Result};
use trove_cache::ObjMeta;
use trove_namespace::BucketEntry;

use crate::s3::errors;
use crate::state::{AppState, User};

/// Lets every request reach the handlers; signatures were already checked by s3s when present.
pub struct Access;

#[async_trait::async_trait]
impl S3Access for Access {
    async fn check(&self, _cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Perm {
    Read,
    Write,
}

const ALL_USERS: &str = "http://acs.amazonaws.com/groups/global/AllUsers";
const AUTHENTICATED_USERS: &str = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers";

/// The canned ACLs Trove stores; the rest of S3's list is accepted as private (their extra grants name the
/// bucket owner, who has full control anyway).
pub fn check_canned(acl: &str) -> S3Result<Option<String>> {
    match acl {
        "private" | "bucket-owner-read" | "bucket-owner-full-control" | "aws-exec-read" => Ok(None),
        "public-read" | "public-read-write" | "authenticated-read" => Ok(Some(acl.to_owned())),
        other => Err(s3_error!(InvalidArgument, "Unknown canned ACL {other:?}")),
    }
}

fn grants_by(acl: Option<&str>, user: Option<&User>, perm: Perm) -> bool {
    match (acl, perm) {
        (Some("public-read-write"), _) | (Some("public-read"), Perm::Read) => true,
        (Some("authenticated-read"), Perm::Read) => user.is_some(),
        _ => false,
    }
}

/// The caller, or `None` for an anonymous request.
pub fn caller_opt<'a, T>(state: &'a AppState, req: &S3Request<T>) -> S3Result<Option<&'a User>> {
    match &req.credentials {
        None => Ok(None),
        Some(c) => state.user(&c.access_key).map(Some).ok_or_else(|| s3_error!(InvalidAccessKeyId)),
    }
}

fn is_owner(entry: &BucketEntry, user: Option<&User>) -> bool {
    user.is_some_and(|u| u.id == entry.owner)
}

/// The bucket, if `user` may list it (Read) or write objects into it (Write).
pub fn bucket_for(state: &AppState, name: &str, user: Option<&User>, perm: Perm) -> S3Result<BucketEntry> {
    let entry = state.registry.get(name).ok_or_else(errors::no_such_bucket)?;
    if is_owner(&entry, user) || grants_by(entry.acl.as_deref(), user, perm) {
        return Ok(entry);
    }
    Err(s3_error!(AccessDenied, "Access Denied"))
}

/// The bucket of an object read: any caller gets past here; [`check_object_read`] decides on the object.
pub fn bucket_for_object_read(state: &AppState, name: &str) -> S3Result<BucketEntry> {
    state.registry.get(name).ok_or_else(errors::no_such_bucket)
}

/// May `user` read this object? A missing object is NoSuchKey only to those who may list the bucket.
pub fn check_object_read(entry: &BucketEntry, user: Option<&User>, meta: Option<&ObjMeta>) -> S3Result<()> {
    if is_owner(entry, user) {
        return Ok(());
    }
    match meta {
        Some(m) if grants_by(m.acl.as_deref(), user, Perm::Read) => Ok(()),
        None if grants_by(entry.acl.as_deref(), user, Perm::Read) => Ok(()),
        _ => Err(s3_error!(AccessDenied, "Access Denied")),
    }
}

/// The grants S3 reports for a canned ACL.
pub fn grants(owner: &Owner, acl: Option<&str>) -> Vec<Grant> {
    let group = |uri: &str, p: &'static str| Grant {
        grantee: Some(Grantee {
            type_: Type::from_static(Type::GROUP),
            uri: Some(uri.to_owned()),
            display_name: None,
            email_address: None,
            id: None,
        }),
        permission: Some(Permission::from_static(p)),
    };
    let mut g = vec![Grant {
        grantee: Some(Grantee {
            type_: Type::from_static(Type::CANONICAL_USER),
            id: owner.id.clone(),
            display_name: owner.display_name.clone(),
            email_address: None,
            uri: None,
        }),
        permission: Some(Permission::from_static(Permission::FULL_CONTROL)),
    }];
    match acl {
        Some("public-read") => g.push(group(ALL_USERS, Permission::READ)),
        Some("public-read-write") => {
            g.push(group(ALL_USERS, Permission::READ));
            g.push(group(ALL_USERS, Permission::WRITE));
        }
        Some("authenticated-read") => g.push(group(AUTHENTICATED_USERS, Permission::READ)),
        _ => {}
    }
    g
}

/// Reduces a PutBucketAcl/PutObjectAcl request to a canned ACL: the `x-amz-acl` header, or a policy body that is
/// exactly one of the canned grant sets. Arbitrary grants are not supported.
pub fn requested_acl(
    canned: Option<&str>,
    policy: Option<&s3s::dto::AccessControlPolicy>,
    owner: &Owner,
) -> S3Result<Option<String>> {
    if let Some(c) = canned {
        return check_canned(c);
    }
    let Some(policy) = policy else {
        return Err(s3_error!(MissingSecurityHeader, "Your request was missing a required header: x-amz-acl"));
    };
    let given = policy.grants.clone().unwrap_or_default();
    for candidate in [None, Some("public-read"), Some("public-read-write"), Some("authenticated-read")] {
        if same_grants(&given, &grants(owner, candidate)) {
            return Ok(candidate.map(str::to_owned));
        }
    }
    Err(s3_error!(NotImplemented, "Only canned ACLs (and their equivalent grant lists) are supported"))
}

fn same_grants(a: &[Grant], b: &[Grant]) -> bool {
    let key = |g: &Grant| {
        let ge = g.grantee.as_ref();
        (
            ge.and_then(|x| x.id.clone()).unwrap_or_default(),
            ge.and_then(|x| x.uri.clone()).unwrap_or_default(),
            g.permission.as_ref().map(|p| p.as_str().to_owned()).unwrap_or_default(),
        )
    };
    let mut ka: Vec<_> = a.iter().map(key).collect();
    let mut kb: Vec<_> = b.iter().map(key).collect();
    ka.sort();
    kb.sort();
    ka == kb
}

/// The owner identity of a canonical id, with the display name of the configured user that has it.
pub fn owner_of(state: &AppState, id: &str) -> Owner {
    let display = state.users.values().find(|u| u.id == id).map_or_else(|| id.to_owned(), |u| u.display_name.clone());
    Owner { id: Some(id.to_owned()), display_name: Some(display) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> User {
        User { secret_key: "s".into(), id: "u".into(), display_name: "U".into() }
    }

    #[test]
    fn canned_acls_grant_what_s3_says() {
        let u = user();
        for (acl, anon_read, anon_write, auth_read) in [
            (None, false, false, false),
            (Some("public-read"), true, false, true),
            (Some("public-read-write"), true, true, true),
            (Some("authenticated-read"), false, false, true),
        ] {
            assert_eq!(grants_by(acl, None, Perm::Read), anon_read, "{acl:?}");
            assert_eq!(grants_by(acl, None, Perm::Write), anon_write, "{acl:?}");
            assert_eq!(grants_by(acl, Some(&u), Perm::Read), auth_read, "{acl:?}");
        }
    }

    #[test]
    fn canned_names() {
        assert_eq!(check_canned("private").unwrap(), None);
        assert_eq!(check_canned("bucket-owner-full-control").unwrap(), None);
        assert_eq!(check_canned("public-read").unwrap().as_deref(), Some("public-read"));
        assert!(check_canned("world-writable").is_err());
    }

    #[test]
    fn grant_lists_round_trip_to_canned() {
        let owner = Owner { id: Some("u".into()), display_name: Some("U".into()) };
        for acl in [None, Some("public-read"), Some("public-read-write"), Some("authenticated-read")] {
            let policy =
                s3s::dto::AccessControlPolicy { grants: Some(grants(&owner, acl)), owner: Some(owner.clone()) };
            assert_eq!(requested_acl(None, Some(&policy), &owner).unwrap().as_deref(), acl);
        }
        let odd = s3s::dto::AccessControlPolicy { grants: Some(vec![]), owner: None };
        assert!(requested_acl(None, Some(&odd), &owner).is_err());
    }
}
