//! The one door: who may do what, decided in one function for every API.
//!
//! [`authorize`] takes the caller, the kind of operation, the bucket's registry entry and (for object reads)
//! the object's ACL, and says yes or why not. The S3 fast path, s3s's access hook (which runs after the
//! signature check and before any body is read) and the native API all ask it; handlers then act on the
//! [`Grant`] it produced and decide nothing themselves.
//!
//! The rules are S3's ACL rules: the bucket owner may do everything; a bucket's grants give listing (READ),
//! writing or deleting objects (WRITE), and reading or changing the bucket's ACL (READ_ACP, WRITE_ACP); an
//! object's grants give reading it and its ACL, and its owner (the writer, see [`crate::acl::Ownership`]) has
//! them all. Under `BucketOwnerEnforced` ACLs grant nothing. The same holds for every provider: a cloud object
//! that has no cached copy carries no ACL here, so only the owner reads it.

use trove_namespace::BucketEntry;

use crate::acl::{self, Ownership, Perm};
use crate::state::User;

/// Who is asking. The signature (or the admin token) has been verified before anyone builds one of these.
#[derive(Debug, Clone, Copy)]
pub enum Caller<'a> {
    Anonymous,
    User(&'a User),
    /// The native API's bearer token: the node's operator.
    Admin,
}

/// What the request does, as far as permissions go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// ListBuckets.
    ListBuckets,
    /// CreateBucket: any authenticated user.
    CreateBucket,
    /// Listing a bucket, HeadBucket, listing uploads (bucket READ).
    ReadBucket,
    /// PUT/DELETE of objects and their multipart uploads (bucket WRITE).
    WriteObject,
    /// GET/HEAD of one object (object READ).
    ReadObject,
    /// GetBucketAcl (bucket READ_ACP).
    ReadBucketAcl,
    /// PutBucketAcl (bucket WRITE_ACP).
    WriteBucketAcl,
    /// GetObjectAcl (object READ_ACP).
    ReadObjectAcl,
    /// PutObjectAcl (object WRITE_ACP).
    WriteObjectAcl,
    /// Everything else on a bucket or its objects (ACLs, tagging, deleting the bucket...): the owner only.
    Owner,
}

/// What is known about the object's ACL, for the object actions.
#[derive(Debug, Clone, Copy)]
pub enum ObjectAcl<'a> {
    /// The object exists here with this stored ACL (`None`: private) and owner (`None`: the bucket owner).
    Known { acl: Option<&'a str>, owner: Option<&'a str> },
    /// No copy of the object exists here.
    Missing,
}

/// Why not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    NoSuchBucket,
    AccessDenied,
}

/// The door's answer, kept with the request so that handlers act on exactly what was allowed.
#[derive(Debug, Clone)]
pub struct Grant {
    pub user: Option<User>,
    pub entry: Option<BucketEntry>,
}

/// Whether a stored ACL of a resource owned by `owner` gives this caller `perm`.
fn acl_grants(acl: Option<&str>, owner: &str, bucket_owner: &str, caller: Caller<'_>, perm: Perm) -> bool {
    let id = match caller {
        Caller::User(u) => Some(u.id.as_str()),
        Caller::Anonymous | Caller::Admin => None,
    };
    if id == Some(owner) {
        return true;
    }
    acl::allows(&acl::grants(acl, owner, bucket_owner), id, perm)
}

fn is_owner(entry: &BucketEntry, caller: Caller<'_>) -> bool {
    match caller {
        Caller::Admin => true,
        Caller::User(u) => u.id == entry.owner,
        Caller::Anonymous => false,
    }
}

/// The native API's caller: `Authorization: Bearer <admin token>`, compared in constant time. Start-up refuses
/// an empty or short token, so no header can match "nothing".
pub fn bearer(headers: &http::HeaderMap, admin_token: &str) -> Option<Caller<'static>> {
    let given = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))?;
    let want = admin_token.as_bytes();
    (!want.is_empty() && constant_time_eq(given.as_bytes(), want)).then_some(Caller::Admin)
}

/// Equality of secrets (signatures, tokens) in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The decision. `entry` is `None` when the bucket does not exist (or, for the account-level actions, when
/// the request names none); `object` matters only for [`Action::ReadObject`].
pub fn authorize(
    caller: Caller<'_>,
    action: Action,
    entry: Option<&BucketEntry>,
    object: ObjectAcl<'_>,
) -> Result<(), Denied> {
    if let Action::ListBuckets | Action::CreateBucket = action {
        return match caller {
            Caller::Anonymous => Err(Denied::AccessDenied),
            Caller::User(_) | Caller::Admin => Ok(()),
        };
    }
    let Some(entry) = entry else {
        return Err(Denied::NoSuchBucket);
    };
    // An object someone else owns is the bucket owner's only as far as its ACL says (S3's rule; the owner can
    // still delete it, a bucket WRITE).
    let object_action = matches!(action, Action::ReadObject | Action::ReadObjectAcl | Action::WriteObjectAcl);
    let foreign = match (object, caller) {
        (ObjectAcl::Known { owner: Some(o), .. }, Caller::User(u)) => u.id != o,
        _ => false,
    };
    if is_owner(entry, caller) && !(object_action && foreign) {
        return Ok(());
    }
    if Ownership::of(entry) == Ownership::BucketOwnerEnforced {
        return Err(Denied::AccessDenied);
    }
    let owner = entry.owner.as_str();
    let on_bucket = |perm| acl_grants(entry.acl.as_deref(), owner, owner, caller, perm);
    let on_object = |perm| match object {
        ObjectAcl::Known { acl, owner: object_owner } => {
            acl_grants(acl, object_owner.unwrap_or(owner), owner, caller, perm)
        }
        // A cloud object without a cached copy has no ACL here: private, as S3 makes every object by
        // default, so nobody but the owner makes Trove fetch it.
        ObjectAcl::Missing if entry.bck.is_remote() => false,
        // Those who may list the bucket learn that the key is missing (NoSuchKey); nobody else does.
        ObjectAcl::Missing => on_bucket(Perm::Read),
    };
    let allowed = match action {
        Action::ListBuckets | Action::CreateBucket | Action::Owner => false,
        Action::ReadBucket => on_bucket(Perm::Read),
        Action::WriteObject => on_bucket(Perm::Write),
        Action::ReadBucketAcl => on_bucket(Perm::ReadAcp),
        Action::WriteBucketAcl => on_bucket(Perm::WriteAcp),
        Action::ReadObject => on_object(Perm::Read),
        Action::ReadObjectAcl => on_object(Perm::ReadAcp),
        Action::WriteObjectAcl => on_object(Perm::WriteAcp),
    };
    if allowed {
        Ok(())
    } else {
        Err(Denied::AccessDenied)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trove_namespace::{Bck, Provider};

    fn entry(acl: Option<&str>, provider: Provider) -> BucketEntry {
        let mut e = BucketEntry::new(Bck { provider, ns: Default::default(), name: "b".into() }, "owner".into(), 0, 1);
        e.acl = acl.map(str::to_owned);
        e
    }

    fn user(id: &str) -> User {
        User { secret_key: "s".into(), id: id.into(), display_name: id.into(), email: None }
    }

    #[test]
    fn owner_and_admin_may_do_everything() {
        let owner = user("owner");
        for provider in [Provider::Ais, Provider::Aws] {
            let e = entry(None, provider);
            for a in [Action::ReadBucket, Action::WriteObject, Action::ReadObject, Action::Owner] {
                assert_eq!(authorize(Caller::User(&owner), a, Some(&e), ObjectAcl::Missing), Ok(()));
                assert_eq!(authorize(Caller::Admin, a, Some(&e), ObjectAcl::Missing), Ok(()));
            }
        }
    }

    #[test]
    fn canned_acls_grant_what_s3_says() {
        let other = user("other");
        for provider in [Provider::Ais, Provider::Aws] {
            for (acl, anon_list, anon_write, user_list) in [
                (None, false, false, false),
                (Some("public-read"), true, false, true),
                (Some("public-read-write"), true, true, true),
                (Some("authenticated-read"), false, false, true),
            ] {
                let e = entry(acl, provider);
                let ok = |c, a| authorize(c, a, Some(&e), ObjectAcl::Known { acl: None, owner: None }).is_ok();
                assert_eq!(ok(Caller::Anonymous, Action::ReadBucket), anon_list, "{acl:?}");
                assert_eq!(ok(Caller::Anonymous, Action::WriteObject), anon_write, "{acl:?}");
                assert_eq!(ok(Caller::User(&other), Action::ReadBucket), user_list, "{acl:?}");
                // A bucket ACL never grants reading a private object, on any provider.
                assert!(!ok(Caller::Anonymous, Action::ReadObject), "{acl:?}");
                assert!(!ok(Caller::User(&other), Action::Owner), "{acl:?}");
            }
        }
    }

    #[test]
    fn object_acl_decides_reads() {
        let e = entry(None, Provider::Aws);
        let read =
            |acl| authorize(Caller::Anonymous, Action::ReadObject, Some(&e), ObjectAcl::Known { acl, owner: None });
        assert_eq!(read(Some("public-read")), Ok(()));
        assert_eq!(read(None), Err(Denied::AccessDenied));
        assert_eq!(
            authorize(Caller::Anonymous, Action::ReadObject, Some(&e), ObjectAcl::Missing),
            Err(Denied::AccessDenied)
        );
        let listable = entry(Some("public-read"), Provider::Ais);
        assert_eq!(authorize(Caller::Anonymous, Action::ReadObject, Some(&listable), ObjectAcl::Missing), Ok(()));
        let cloud = entry(Some("public-read"), Provider::Aws);
        assert_eq!(
            authorize(Caller::Anonymous, Action::ReadObject, Some(&cloud), ObjectAcl::Missing),
            Err(Denied::AccessDenied)
        );
    }

    #[test]
    fn grants_and_object_owners() {
        let (owner, alt, other) = (user("owner"), user("alt"), user("other"));
        let mut e = entry(None, Provider::Ais);
        let grant = |who: &str, p: &str| format!(r#"[{{"g":{{"id":"{who}"}},"p":"{p}"}}]"#);
        e.acl = Some(grant("alt", "READ_ACP"));
        let missing = ObjectAcl::Missing;
        assert_eq!(authorize(Caller::User(&alt), Action::ReadBucketAcl, Some(&e), missing), Ok(()));
        assert!(authorize(Caller::User(&alt), Action::WriteBucketAcl, Some(&e), missing).is_err());
        assert!(authorize(Caller::User(&alt), Action::ReadBucket, Some(&e), missing).is_err());
        // An object alt wrote: alt has it all, the bucket owner only what its ACL grants, others nothing.
        let alts = ObjectAcl::Known { acl: None, owner: Some("alt") };
        for a in [Action::ReadObject, Action::ReadObjectAcl, Action::WriteObjectAcl] {
            assert_eq!(authorize(Caller::User(&alt), a, Some(&e), alts), Ok(()));
            assert!(authorize(Caller::User(&owner), a, Some(&e), alts).is_err());
            assert!(authorize(Caller::User(&other), a, Some(&e), alts).is_err());
        }
        let acl = grant("owner", "READ");
        let shared = ObjectAcl::Known { acl: Some(&acl), owner: Some("alt") };
        assert_eq!(authorize(Caller::User(&owner), Action::ReadObject, Some(&e), shared), Ok(()));
        assert!(authorize(Caller::User(&owner), Action::WriteObjectAcl, Some(&e), shared).is_err());
        assert_eq!(authorize(Caller::User(&owner), Action::WriteObject, Some(&e), missing), Ok(()));
        // BucketOwnerEnforced: ACLs grant nothing.
        e.acl = Some("public-read".into());
        e.configs.insert(crate::acl::OWNERSHIP.into(), "BucketOwnerEnforced".into());
        assert!(authorize(Caller::Anonymous, Action::ReadBucket, Some(&e), missing).is_err());
        assert_eq!(authorize(Caller::User(&owner), Action::ReadBucket, Some(&e), missing), Ok(()));
    }

    #[test]
    fn constant_time_compare() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        let mut h = http::HeaderMap::new();
        h.insert(http::header::AUTHORIZATION, "Bearer a-long-enough-token".parse().unwrap());
        assert!(bearer(&h, "a-long-enough-token").is_some());
        assert!(bearer(&h, "a-long-enough-tokeN").is_none());
        assert!(bearer(&http::HeaderMap::new(), "").is_none());
    }

    #[test]
    fn account_actions_need_a_user() {
        let u = user("u");
        assert_eq!(
            authorize(Caller::Anonymous, Action::ListBuckets, None, ObjectAcl::Missing),
            Err(Denied::AccessDenied)
        );
        assert_eq!(authorize(Caller::User(&u), Action::CreateBucket, None, ObjectAcl::Missing), Ok(()));
        assert_eq!(
            authorize(Caller::User(&u), Action::ReadBucket, None, ObjectAcl::Missing),
            Err(Denied::NoSuchBucket)
        );
    }
}
