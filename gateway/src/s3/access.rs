//! S3's side of the door: s3s's access hook, which runs after the signature check and before any request
//! body is read, asks [`crate::door::authorize`] for every operation and leaves the [`Grant`] with the request.

use s3s::access::{S3Access, S3AccessContext};
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
        if let Some(e) = &entry {
            check_payer(e, user, cx.headers())?;
        }
        // A bucket policy (and the public access block) decides first; no statement leaves it to the ACLs.
        let verdict = match (&entry, &bucket) {
            (Some(e), Some(b)) if !e.configs.is_empty() => {
                let ask = Asked { op: cx.s3_op().name(), headers: cx.headers(), query: cx.uri().query() };
                policy_verdict(state, e, b, key.as_deref(), user, &ask)?
            }
            _ => policy::Verdict::Neutral,
        };
        if verdict == policy::Verdict::Deny {
            return Err(s3_error!(AccessDenied, "Access Denied"));
        }
        // The object's ACL and owner (the bucket owner's reads too: another user may own the object).
        let ignore_acls = entry.as_ref().is_some_and(|e| policy::block_of(e).ignore_public_acls);
        let object_action = matches!(action, Action::ReadObject | Action::ReadObjectAcl | Action::WriteObjectAcl);
        let object = match (&entry, &key) {
            (Some(e), Some(k)) if object_action => object_acl(state, e, k, ignore_acls),
            _ => OwnedObjectAcl::Missing,
        };
        if verdict != policy::Verdict::Allow {
            let acl_entry = entry.clone().map(|mut e| {
                if ignore_acls {
                    e.acl = None;
                }
                e
            });
            let decided = door::authorize(caller, action, acl_entry.as_ref(), object.as_ref());
            if let Err(d) = decided {
                // A missing object: who may list its name (by the policy) learns that it is missing (404).
                let listable = match (&entry, &key) {
                    (Some(e), Some(k)) if action == Action::ReadObject && matches!(object, OwnedObjectAcl::Missing) => {
                        may_list(state, e, k, user, cx.headers())?
                    }
                    _ => false,
                };
                if !listable {
                    return Err(denied(d));
                }
            }
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

/// A requester-pays bucket serves others only when they say they pay (S3's 403 otherwise).
fn check_payer(entry: &BucketEntry, user: Option<&User>, headers: &http::HeaderMap) -> S3Result<()> {
    let pays = || headers.get("x-amz-request-payer").is_some_and(|v| v.as_bytes() == b"requester");
    if entry.configs.contains_key(crate::s3::logging::PAYMENT) && user.is_none_or(|u| u.id != entry.owner) && !pays() {
        return Err(s3_error!(AccessDenied, "Access Denied"));
    }
    Ok(())
}

/// The door for a browser form upload (POST Object), asked as for the PUT it stands for: the bucket's policy,
/// its public access block, requester-pays, then its ACL. Returns the bucket.
pub fn check_form_upload(
    state: &AppState,
    user: Option<&User>,
    bucket: &str,
    key: &str,
    headers: &http::HeaderMap,
) -> S3Result<BucketEntry> {
    let entry = state.registry.get(bucket).ok_or_else(errors::no_such_bucket)?;
    check_payer(&entry, user, headers)?;
    let verdict = if entry.configs.is_empty() {
        policy::Verdict::Neutral
    } else {
        let ask = Asked { op: "PostObject", headers, query: None };
        policy_verdict(state, &entry, bucket, Some(key), user, &ask)?
    };
    match verdict {
        policy::Verdict::Deny => Err(s3_error!(AccessDenied, "Access Denied")),
        policy::Verdict::Allow => Ok(entry),
        policy::Verdict::Neutral => {
            let caller = user.map_or(Caller::Anonymous, Caller::User);
            door::authorize(caller, Action::WriteObject, Some(&entry), ObjectAcl::Missing).map_err(denied)?;
            Ok(entry)
        }
    }
}

/// Whether the bucket's policy lets `user` list the name `key` (`s3:ListBucket` with `s3:prefix` the key).
fn may_list(
    state: &AppState,
    entry: &BucketEntry,
    key: &str,
    user: Option<&User>,
    headers: &http::HeaderMap,
) -> S3Result<bool> {
    if policy::of(entry).is_none() {
        return Ok(false);
    }
    let query = format!("prefix={}", percent_encoding::utf8_percent_encode(key, percent_encoding::NON_ALPHANUMERIC));
    let ask = Asked { op: "ListObjects", headers, query: Some(&query) };
    Ok(policy_verdict(state, entry, &entry.bck.name, None, user, &ask)? == policy::Verdict::Allow)
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

/// The ACL and owner of the object's local copy, if there is one (its ACL read as private where the public
/// access block ignores ACLs).
fn object_acl(state: &AppState, entry: &BucketEntry, key: &str, ignore_acls: bool) -> OwnedObjectAcl {
    // Through the objects kept open: the read that follows the check opens the same object again.
    match state.store.open_cached(&entry.bck, key) {
        Ok(open) => OwnedObjectAcl::Known {
            acl: open.meta.acl.clone().filter(|_| !ignore_acls),
            owner: open.meta.owner.clone(),
        },
        Err(_) => OwnedObjectAcl::Missing,
    }
}

/// [`ObjectAcl`] holding its strings.
enum OwnedObjectAcl {
    Known { acl: Option<String>, owner: Option<String> },
    Missing,
}

impl OwnedObjectAcl {
    fn as_ref(&self) -> ObjectAcl<'_> {
        match self {
            OwnedObjectAcl::Known { acl, owner } => ObjectAcl::Known { acl: acl.as_deref(), owner: owner.as_deref() },
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

const EXISTING_TAG: &str = "s3:ExistingObjectTag/";

/// The parts of a request a bucket policy looks at: the operation (s3s's name), headers and query.
struct Asked<'a> {
    op: &'a str,
    headers: &'a http::HeaderMap,
    query: Option<&'a str>,
}

/// What the bucket's policy says about this request (Neutral when it has none), after its public access block:
/// a public ACL asked for where they are blocked is refused, and a public policy grants nothing to others
/// where public buckets are restricted.
fn policy_verdict(
    state: &AppState,
    entry: &trove_namespace::BucketEntry,
    bucket: &str,
    key: Option<&str>,
    user: Option<&crate::state::User>,
    cx: &Asked<'_>,
) -> S3Result<policy::Verdict> {
    let block = policy::block_of(entry);
    let acl = cx.headers.get("x-amz-acl").and_then(|v| v.to_str().ok()).unwrap_or_default();
    if block.block_public_acls && matches!(acl, "public-read" | "public-read-write" | "authenticated-read") {
        return Err(s3_error!(AccessDenied, "The bucket's public access block forbids public ACLs"));
    }
    let Some(p) = policy::of(entry) else { return Ok(policy::Verdict::Neutral) };
    let mut context = std::collections::BTreeMap::new();
    for (name, value) in cx.headers {
        let name = name.as_str();
        if name.starts_with("x-amz-") && !name.starts_with("x-amz-meta-") {
            if let Ok(v) = value.to_str() {
                context.insert(format!("s3:{name}"), v.to_owned());
            }
        }
    }
    for (k, v) in crate::request::query_pairs(cx.query.unwrap_or_default()) {
        if matches!(k.as_str(), "prefix" | "delimiter" | "max-keys" | "versionId") {
            context.insert(format!("s3:{}", k.to_ascii_lowercase()), v);
        }
    }
    context.insert("aws:securetransport".to_owned(), "false".to_owned());
    if let Some(r) = cx.headers.get(http::header::REFERER).and_then(|v| v.to_str().ok()) {
        context.insert("aws:referer".to_owned(), r.to_owned());
    }
    // The tags a write asks for, and (only where a statement looks at them) the tags the object has.
    if let Some(t) = cx.headers.get("x-amz-tagging").and_then(|v| v.to_str().ok()) {
        for (k, v) in crate::request::query_pairs(t) {
            context.insert(policy::condition_key(&format!("s3:RequestObjectTag/{k}")), v);
        }
    }
    if let Some(k) = key.filter(|_| p.looks_at(EXISTING_TAG)) {
        if let Ok(open) = state.store.open_cached(&entry.bck, k) {
            for (tk, tv) in &open.meta.tags {
                context.insert(policy::condition_key(&format!("{EXISTING_TAG}{tk}")), tv.clone());
            }
        }
    }
    let resource = match key {
        Some(k) => format!("arn:aws:s3:::{bucket}/{k}"),
        None => format!("arn:aws:s3:::{bucket}"),
    };
    let action = policy::action_name(cx.op);
    let ask = policy::Ask { user: user.map(|u| u.id.as_str()), action: &action, resource, context };
    let verdict = p.evaluate(&ask);
    let outsider = user.is_none_or(|u| u.id != entry.owner);
    // The owner can always change or remove the policy (no policy locks its own bucket's owner out).
    let policy_op = matches!(cx.op, "PutBucketPolicy" | "GetBucketPolicy" | "DeleteBucketPolicy");
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
        "GetBucketAcl" => Action::ReadBucketAcl,
        "PutBucketAcl" => Action::WriteBucketAcl,
        "GetObjectAcl" => Action::ReadObjectAcl,
        "PutObjectAcl" => Action::WriteObjectAcl,
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

/// The door's decision for a copy source: the caller must be allowed to read the source object, by the source
/// bucket's policy or, where it says nothing, by the ACLs.
pub fn check_copy_source(
    state: &AppState,
    user: Option<&User>,
    entry: Option<&BucketEntry>,
    key: &str,
    headers: &http::HeaderMap,
) -> S3Result<()> {
    if let Some(e) = entry.filter(|e| !e.configs.is_empty()) {
        let ask = Asked { op: "GetObject", headers, query: None };
        match policy_verdict(state, e, &e.bck.name, Some(key), user, &ask)? {
            policy::Verdict::Deny => return Err(s3_error!(AccessDenied, "Access Denied")),
            policy::Verdict::Allow => return Ok(()),
            policy::Verdict::Neutral => {}
        }
    }
    let caller = user.map_or(Caller::Anonymous, Caller::User);
    let object = match entry {
        Some(e) => object_acl(state, e, key, policy::block_of(e).ignore_public_acls),
        None => OwnedObjectAcl::Missing,
    };
    door::authorize(caller, Action::ReadObject, entry, object.as_ref()).map_err(denied)
}
