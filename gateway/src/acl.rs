//! Access control lists: S3's grants of permissions to users and groups on a bucket or an object, how a
//! stored ACL reads (a canned ACL's name, or the grant list as JSON, in the registry entry and in object
//! metadata), and the bucket's object ownership setting that decides who owns new objects and whether ACLs
//! count at all. The door evaluates them; the S3 ACL operations read and write them.

use serde::{Deserialize, Serialize};
use trove_namespace::BucketEntry;

/// An S3 permission. `FullControl` covers the other four.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Perm {
    #[serde(rename = "READ")]
    Read,
    #[serde(rename = "WRITE")]
    Write,
    #[serde(rename = "READ_ACP")]
    ReadAcp,
    #[serde(rename = "WRITE_ACP")]
    WriteAcp,
    #[serde(rename = "FULL_CONTROL")]
    FullControl,
}

impl Perm {
    pub const ALL: [Perm; 5] = [Perm::Read, Perm::Write, Perm::ReadAcp, Perm::WriteAcp, Perm::FullControl];

    pub fn as_s3(self) -> &'static str {
        match self {
            Perm::Read => "READ",
            Perm::Write => "WRITE",
            Perm::ReadAcp => "READ_ACP",
            Perm::WriteAcp => "WRITE_ACP",
            Perm::FullControl => "FULL_CONTROL",
        }
    }

    pub fn parse(s: &str) -> Option<Perm> {
        Perm::ALL.into_iter().find(|p| p.as_s3() == s)
    }

    fn covers(self, want: Perm) -> bool {
        self == Perm::FullControl || self == want
    }
}

/// Who a grant is for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Grantee {
    /// A user, by canonical id.
    #[serde(rename = "id")]
    User(String),
    /// Everyone, anonymous callers included.
    #[serde(rename = "all")]
    AllUsers,
    /// Every authenticated caller.
    #[serde(rename = "auth")]
    AuthenticatedUsers,
    /// S3's log delivery group: kept and reported, never a caller here.
    #[serde(rename = "log")]
    LogDelivery,
}

pub const ALL_USERS_URI: &str = "http://acs.amazonaws.com/groups/global/AllUsers";
pub const AUTHENTICATED_USERS_URI: &str = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers";
pub const LOG_DELIVERY_URI: &str = "http://acs.amazonaws.com/groups/s3/LogDelivery";

impl Grantee {
    /// The group a URI names.
    pub fn group(uri: &str) -> Option<Grantee> {
        match uri {
            ALL_USERS_URI => Some(Grantee::AllUsers),
            AUTHENTICATED_USERS_URI => Some(Grantee::AuthenticatedUsers),
            LOG_DELIVERY_URI => Some(Grantee::LogDelivery),
            _ => None,
        }
    }

    pub fn uri(&self) -> Option<&'static str> {
        match self {
            Grantee::User(_) => None,
            Grantee::AllUsers => Some(ALL_USERS_URI),
            Grantee::AuthenticatedUsers => Some(AUTHENTICATED_USERS_URI),
            Grantee::LogDelivery => Some(LOG_DELIVERY_URI),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    #[serde(rename = "g")]
    pub grantee: Grantee,
    #[serde(rename = "p")]
    pub perm: Perm,
}

impl Grant {
    fn new(grantee: Grantee, perm: Perm) -> Grant {
        Grant { grantee, perm }
    }
}

/// The canned ACLs S3 defines.
pub const CANNED: [&str; 8] = [
    "private",
    "public-read",
    "public-read-write",
    "authenticated-read",
    "aws-exec-read",
    "bucket-owner-read",
    "bucket-owner-full-control",
    "log-delivery-write",
];

/// The grants of a stored ACL (`None`: private) on a resource owned by `owner` in a bucket owned by
/// `bucket_owner`. Group grants come first, then the owner's (the order S3-compatible servers report and
/// clients compare).
pub fn grants(stored: Option<&str>, owner: &str, bucket_owner: &str) -> Vec<Grant> {
    let full = Grant::new(Grantee::User(owner.to_owned()), Perm::FullControl);
    let other_owner = bucket_owner != owner;
    match stored.unwrap_or("private") {
        "public-read" => vec![Grant::new(Grantee::AllUsers, Perm::Read), full],
        "public-read-write" => {
            vec![Grant::new(Grantee::AllUsers, Perm::Read), Grant::new(Grantee::AllUsers, Perm::Write), full]
        }
        "authenticated-read" => vec![Grant::new(Grantee::AuthenticatedUsers, Perm::Read), full],
        "bucket-owner-read" if other_owner => {
            vec![full, Grant::new(Grantee::User(bucket_owner.to_owned()), Perm::Read)]
        }
        "bucket-owner-full-control" if other_owner => {
            vec![full, Grant::new(Grantee::User(bucket_owner.to_owned()), Perm::FullControl)]
        }
        "log-delivery-write" => {
            vec![Grant::new(Grantee::LogDelivery, Perm::Write), Grant::new(Grantee::LogDelivery, Perm::ReadAcp), full]
        }
        doc if doc.starts_with('[') => serde_json::from_str(doc).unwrap_or_else(|_| vec![full]),
        _ => vec![full],
    }
}

/// How an explicit grant list is stored; `None` when it is exactly the private ACL.
pub fn encode(list: &[Grant], owner: &str) -> Option<String> {
    if list == [Grant::new(Grantee::User(owner.to_owned()), Perm::FullControl)] {
        return None;
    }
    Some(serde_json::to_string(list).expect("grants serialize"))
}

/// Whether the grants give `caller` (a canonical id; `None` when anonymous) the permission `want`.
pub fn allows(list: &[Grant], caller: Option<&str>, want: Perm) -> bool {
    list.iter().any(|g| {
        g.perm.covers(want)
            && match &g.grantee {
                Grantee::User(id) => caller == Some(id.as_str()),
                Grantee::AllUsers => true,
                Grantee::AuthenticatedUsers => caller.is_some(),
                Grantee::LogDelivery => false,
            }
    })
}

/// Whether a stored ACL grants anything to everyone or to every authenticated caller.
pub fn is_public(stored: Option<&str>) -> bool {
    grants(stored, "", "").iter().any(|g| matches!(g.grantee, Grantee::AllUsers | Grantee::AuthenticatedUsers))
}

/// The bucket configuration that holds its object ownership setting.
pub const OWNERSHIP: &str = "ownership";

/// Who owns the objects written to a bucket (S3's ObjectOwnership).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ownership {
    /// The writer owns what it writes (the default of a bucket without the setting, as in RGW and S3 before
    /// 2023).
    ObjectWriter,
    /// The bucket owner owns objects written with `bucket-owner-full-control`; the writer owns the others.
    BucketOwnerPreferred,
    /// The bucket owner owns every object and ACLs are disabled: they neither grant nor can be changed.
    BucketOwnerEnforced,
}

impl Ownership {
    pub fn parse(s: &str) -> Option<Ownership> {
        match s {
            "ObjectWriter" => Some(Ownership::ObjectWriter),
            "BucketOwnerPreferred" => Some(Ownership::BucketOwnerPreferred),
            "BucketOwnerEnforced" => Some(Ownership::BucketOwnerEnforced),
            _ => None,
        }
    }

    pub fn as_s3(self) -> &'static str {
        match self {
            Ownership::ObjectWriter => "ObjectWriter",
            Ownership::BucketOwnerPreferred => "BucketOwnerPreferred",
            Ownership::BucketOwnerEnforced => "BucketOwnerEnforced",
        }
    }

    pub fn of(entry: &BucketEntry) -> Ownership {
        entry.configs.get(OWNERSHIP).and_then(|v| Ownership::parse(v)).unwrap_or(Ownership::ObjectWriter)
    }

    /// The owner of an object `writer` (a canonical id; `None` when anonymous) writes with the canned ACL
    /// `canned`, as stored in its metadata: `None` when that is the bucket owner.
    pub fn object_owner(self, entry: &BucketEntry, writer: Option<&str>, canned: Option<&str>) -> Option<String> {
        let by_bucket = match self {
            Ownership::BucketOwnerEnforced => true,
            Ownership::BucketOwnerPreferred => canned == Some("bucket-owner-full-control"),
            Ownership::ObjectWriter => false,
        };
        match writer {
            Some(w) if !by_bucket && w != entry.owner => Some(w.to_owned()),
            // An anonymous writer (let in by a public-write grant) owns nothing: the bucket owner does.
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canned_acls_expand_to_s3_grants() {
        let g = grants(Some("public-read-write"), "o", "o");
        assert_eq!(g.len(), 3);
        assert!(allows(&g, None, Perm::Write));
        assert!(!allows(&g, None, Perm::ReadAcp));
        assert!(allows(&g, Some("o"), Perm::WriteAcp));
        let g = grants(Some("authenticated-read"), "o", "o");
        assert!(allows(&g, Some("x"), Perm::Read) && !allows(&g, None, Perm::Read));
        // bucket-owner-* name the bucket owner only when someone else owns the object.
        assert_eq!(grants(Some("bucket-owner-read"), "o", "o"), grants(None, "o", "o"));
        let g = grants(Some("bucket-owner-read"), "w", "o");
        assert!(allows(&g, Some("o"), Perm::Read) && !allows(&g, Some("o"), Perm::WriteAcp));
        assert!(allows(&g, Some("w"), Perm::WriteAcp));
        assert!(is_public(Some("public-read")) && !is_public(Some("bucket-owner-full-control")) && !is_public(None));
    }

    #[test]
    fn explicit_grants_round_trip() {
        let list = vec![
            Grant::new(Grantee::User("alt".into()), Perm::ReadAcp),
            Grant::new(Grantee::AuthenticatedUsers, Perm::Write),
        ];
        let stored = encode(&list, "o").unwrap();
        assert_eq!(grants(Some(&stored), "o", "o"), list);
        assert!(allows(&list, Some("alt"), Perm::ReadAcp) && !allows(&list, Some("alt"), Perm::Read));
        assert!(is_public(Some(&stored)));
        // No grants at all: even the owner's FULL_CONTROL is gone from the list (the door still lets owners in).
        let none = encode(&[], "o").unwrap();
        assert!(grants(Some(&none), "o", "o").is_empty());
        assert_eq!(encode(&grants(None, "o", "o"), "o"), None);
    }

    #[test]
    fn ownership_decides_object_owners() {
        let mut e = BucketEntry::new(trove_namespace::Bck::ais("b"), "o".into(), 0, 1);
        let own = |e: &BucketEntry, w, c| Ownership::of(e).object_owner(e, w, c);
        assert_eq!(own(&e, Some("w"), None).as_deref(), Some("w"));
        assert_eq!(own(&e, Some("o"), None), None);
        assert_eq!(own(&e, None, None), None);
        e.configs.insert(OWNERSHIP.into(), "BucketOwnerPreferred".into());
        assert_eq!(own(&e, Some("w"), Some("bucket-owner-full-control")), None);
        assert_eq!(own(&e, Some("w"), Some("private")).as_deref(), Some("w"));
        e.configs.insert(OWNERSHIP.into(), "BucketOwnerEnforced".into());
        assert_eq!(own(&e, Some("w"), None), None);
    }
}
