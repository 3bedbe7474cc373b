//! S3's side of the door: s3s's access hook, which runs after the signature check and before any request
//! body is read, asks [`crate::door::authorize`] for every operation and leaves the [`Grant`] with the request;
//! plus the canned-ACL vocabulary (names, grant lists) that the ACL operations report.

use s3s::access::{S3Access, S3AccessContext};
use s3s::dto::{Grant, Grantee, Owner, Permission, Type};
use s3s::path::S3Path;
use s3s::{s3_error, S3Error, S3Result};
use trove_namespace::BucketEntry;

use crate::door::{self, Action, Caller, Denied, ObjectAcl};
use crate::s3::errors;
use crate::s3::policy;
use crate::state::{AppState, SharedState, User};

/// The s3s access hook: the door for every request that s3s routes.
pub struct Access(pub SharedState);

#[async_trait::async_trait]
impl S3Access for Access {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let state = &self.0;
        let user = match cx.credentials() {
            None => None,
            Some(c) => Some(state.user(&c.access_key).ok_or_else(|| s3_error!(InvalidAccessKeyId))?),
        };
        let caller = user.map_or(Caller::Anonymous, Caller::User);
        let action = action_of(cx.s3_op().name());
        if user.is_none() && action == Action::ReadObject && has_response_overrides(cx.uri().query()) {
            return Err(s3_error!(
                InvalidRequest,
                "Request specific response headers cannot be used for anonymous GET requests."
            ));
        }
        let (bucket, key) = match cx.s3_path() {
            S3Path::Root => (None, None),
            S3Path::Bucket { bucket } => (Some(bucket.to_string()), None),
            S3Path::Object { bucket, key } => (Some(bucket.to_string()), Some(key.to_string())),
        };
        let entry = match &bucket {
            Some(name) if action != Action::CreateBucket => lookup(state, name, user).await,
            _ => None,
        };
        // `x-amz-expected-bucket-owner`: the request is meant for a bucket of that account only (named by the
        // owner's canonical id, or by an access key of the owner).
        if let (Some(e), Some(expected)) = (&entry, cx.headers().get("x-amz-expected-bucket-owner")) {
            let expected = expected.to_str().unwrap_or_default();
            let owner_key = state.user(expected).is_some_and(|u| u.id == e.owner);
            if expected != e.owner && !owner_key {
                return Err(s3_error!(AccessDenied, "Access Denied"));
            }
        }
        // A bucket policy (and the public access block) decides first; no statement leaves it to the ACLs.
        let verdict = match (&entry, &bucket) {
            (Some(e), Some(b)) if !e.configs.is_empty() => policy_verdict(e, b, key.as_deref(), user, cx)?,
            _ => policy::Verdict::Neutral,
        };
        if verdict == policy::Verdict::Deny {
            return Err(s3_error!(AccessDenied, "Access Denied"));
        }
        // The object's ACL matters only to callers who do not own the bucket (no lookup on the owner's reads).
        let ignore_acls = entry.as_ref().is_some_and(|e| policy::block_of(e).ignore_public_acls);
        let object = match (&entry, &key) {
            (Some(e), Some(k))
                if action == Action::ReadObject && user.is_none_or(|u| u.id != e.owner) && !ignore_acls =>
            {
                object_acl(state, e, k)
            }
            _ => OwnedObjectAcl::Missing,
        };
        if verdict != policy::Verdict::Allow {
            let acl_entry = entry.clone().map(|mut e| {
                if ignore_acls {
                    e.acl = None;
                }
                e
            });
            door::authorize(caller, action, acl_entry.as_ref(), object.as_ref()).map_err(denied)?;
        }
        // Allowed; now the size of a body s3s would read whole (it would read up to its limit, then 500).
        if has_document_body(cx.method(), cx.s3_op().name())
            && crate::request::content_length(cx.headers()) > super::XML_MAX_BODY as u64
        {
            return Err(s3_error!(MaxMessageLengthExceeded, "Your request was too big."));
        }
        cx.extensions_mut().insert(door::Grant { user: user.cloned(), entry });
        Ok(())
    }
}

/// The bucket a request names; an unknown name is auto-attached (when configured) only for an
/// authenticated caller, so anonymous requests never reach a backend.
async fn lookup(state: &SharedState, name: &str, user: Option<&User>) -> Option<BucketEntry> {
    if let Some(e) = state.registry.get(name) {
        return Some(e);
    }
    if user.is_some() && crate::data::attach::auto_attach(state, name).await {
        return state.registry.get(name);
    }
    None
}

/// The ACL of the object's local copy, if there is one. Only asked for callers who do not own the bucket.
fn object_acl(state: &AppState, entry: &BucketEntry, key: &str) -> OwnedObjectAcl {
    // Through the objects kept open: the read that follows the check opens the same object again.
    match state.store.open_cached(&entry.bck, key) {
        Ok(open) => OwnedObjectAcl::Known(open.meta.acl.clone()),
        Err(_) => OwnedObjectAcl::Missing,
    }
}

/// [`ObjectAcl`] holding its string.
enum OwnedObjectAcl {
    Known(Option<String>),
    Missing,
}

impl OwnedObjectAcl {
    fn as_ref(&self) -> ObjectAcl<'_> {
        match self {
            OwnedObjectAcl::Known(a) => ObjectAcl::Known(a.as_deref()),
            OwnedObjectAcl::Missing => ObjectAcl::Missing,
        }
    }
}

pub fn denied(d: Denied) -> S3Error {
    match d {
        Denied::NoSuchBucket => errors::no_such_bucket(),
        Denied::AccessDenied => s3_error!(AccessDenied, "Access Denied"),
    }
}

/// What the bucket's policy says about this request (Neutral when it has none), after its public access block:
/// a public ACL asked for where they are blocked is refused, and a public policy grants nothing to others
/// where public buckets are restricted.
fn policy_verdict(
    entry: &trove_namespace::BucketEntry,
    bucket: &str,
    key: Option<&str>,
    user: Option<&crate::state::User>,
    cx: &S3AccessContext<'_>,
) -> S3Result<policy::Verdict> {
    let block = policy::block_of(entry);
    let acl = cx.headers().get("x-amz-acl").and_then(|v| v.to_str().ok()).unwrap_or_default();
    if block.block_public_acls && matches!(acl, "public-read" | "public-read-write" | "authenticated-read") {
        return Err(s3_error!(AccessDenied, "The bucket's public access block forbids public ACLs"));
    }
    let Some(p) = policy::of(entry) else { return Ok(policy::Verdict::Neutral) };
    let mut context = std::collections::BTreeMap::new();
    for (name, value) in cx.headers() {
        let name = name.as_str();
        if name.starts_with("x-amz-") && !name.starts_with("x-amz-meta-") {
            if let Ok(v) = value.to_str() {
                context.insert(format!("s3:{name}"), v.to_owned());
            }
        }
    }
    for (k, v) in crate::request::query_pairs(cx.uri().query().unwrap_or_default()) {
        if matches!(k.as_str(), "prefix" | "delimiter" | "max-keys" | "versionId") {
            context.insert(format!("s3:{}", k.to_ascii_lowercase()), v);
        }
    }
    context.insert("aws:securetransport".to_owned(), "false".to_owned());
    let resource = match key {
        Some(k) => format!("arn:aws:s3:::{bucket}/{k}"),
        None => format!("arn:aws:s3:::{bucket}"),
    };
    let action = policy::action_name(cx.s3_op().name());
    let ask = policy::Ask { user: user.map(|u| u.id.as_str()), action: &action, resource, context };
    let verdict = p.evaluate(&ask);
    let outsider = user.is_none_or(|u| u.id != entry.owner);
    // The owner can always change or remove the policy (no policy locks its own bucket's owner out).
    let policy_op = matches!(cx.s3_op().name(), "PutBucketPolicy" | "GetBucketPolicy" | "DeleteBucketPolicy");
    if verdict == policy::Verdict::Deny && policy_op && !outsider {
        return Ok(policy::Verdict::Neutral);
    }
    if verdict == policy::Verdict::Allow && block.restrict_public_buckets && outsider && p.is_public() {
        return Ok(policy::Verdict::Neutral);
    }
    Ok(verdict)
}

/// PUTs and POSTs other than object data carry an XML (or JSON) document that s3s reads whole.
fn has_document_body(method: &http::Method, op: &str) -> bool {
    matches!(*method, http::Method::PUT | http::Method::POST)
        && !matches!(op, "PutObject" | "UploadPart" | "PostObject")
}

fn has_response_overrides(query: Option<&str>) -> bool {
    query.is_some_and(|q| q.split('&').any(|p| p.starts_with("response-")))
}

/// What each s3s operation needs (S3's permission model for canned ACLs). Unknown names are owner-only, so
/// an operation added later is closed until someone decides otherwise.
pub fn action_of(op: &str) -> Action {
    match op {
        "ListBuckets" => Action::ListBuckets,
        "CreateBucket" => Action::CreateBucket,
        "HeadBucket" | "ListObjects" | "ListObjectsV2" | "ListObjectVersions" | "ListMultipartUploads" => {
            Action::ReadBucket
        }
        "GetObject" | "HeadObject" => Action::ReadObject,
        "PutObject"
        | "PostObject"
        | "DeleteObject"
        | "DeleteObjects"
        | "CopyObject"
        | "CreateMultipartUpload"
        | "UploadPart"
        | "UploadPartCopy"
        | "CompleteMultipartUpload"
        | "AbortMultipartUpload"
        | "ListParts" => Action::WriteObject,
        _ => Action::Owner,
    }
}

/// The door's decision for a copy source: the caller must be allowed to read the source object.
pub fn check_copy_source(
    state: &AppState,
    user: Option<&User>,
    entry: Option<&BucketEntry>,
    key: &str,
) -> S3Result<()> {
    let caller = user.map_or(Caller::Anonymous, Caller::User);
    let object = match entry {
        Some(e) => object_acl(state, e, key),
        None => OwnedObjectAcl::Missing,
    };
    door::authorize(caller, Action::ReadObject, entry, object.as_ref()).map_err(denied)
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
    // Group grants first, then the owner's (the order S3-compatible servers report, which clients compare).
    let mut g = match acl {
        Some("public-read") => vec![group(ALL_USERS, Permission::READ)],
        Some("public-read-write") => vec![group(ALL_USERS, Permission::READ), group(ALL_USERS, Permission::WRITE)],
        Some("authenticated-read") => vec![group(AUTHENTICATED_USERS, Permission::READ)],
        _ => Vec::new(),
    };
    g.push(Grant {
        grantee: Some(Grantee {
            type_: Type::from_static(Type::CANONICAL_USER),
            id: owner.id.clone(),
            display_name: owner.display_name.clone(),
            email_address: None,
            uri: None,
        }),
        permission: Some(Permission::from_static(Permission::FULL_CONTROL)),
    });
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
