//! Bucket identity `(provider, namespace, name)` and S3 bucket-name rules.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Provider;

/// An AIS namespace: `uuid` names a remote AIS cluster (`@uuid`), `name` a namespace inside it (`#name`).
/// Both empty is the global namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Namespace {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uuid: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
}

impl Namespace {
    pub fn is_global(&self) -> bool {
        self.uuid.is_empty() && self.name.is_empty()
    }

    /// Whether this namespace is a remote AIS cluster's.
    pub fn is_remote(&self) -> bool {
        !self.uuid.is_empty()
    }

    /// Parses AIS's `Uname` form of the `namespace` query parameter: `@uuid#name`, either part optional
    /// (`""`, `@#` and `#` are the global namespace; `@uuid` or `@uuid#` a remote cluster's default one).
    pub fn parse_uname(s: &str) -> Option<Namespace> {
        let rest = s.strip_prefix('@').unwrap_or(s);
        let (uuid, name) = rest.split_once('#').unwrap_or((rest, ""));
        if !s.starts_with('@') && !uuid.is_empty() {
            return None;
        }
        if uuid.contains(['/', '@']) || name.contains(['/', '@', '#']) {
            return None;
        }
        Some(Namespace { uuid: uuid.to_owned(), name: name.to_owned() })
    }
}

impl fmt::Display for Namespace {
    /// AIS's `@uuid#name` form; empty for the global namespace.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.uuid.is_empty() {
            write!(f, "@{}", self.uuid)?;
        }
        if !self.name.is_empty() {
            write!(f, "#{}", self.name)?;
        }
        Ok(())
    }
}

/// A bucket's identity, as in AIStore's `cmn.Bck`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Bck {
    pub provider: Provider,
    /// `ns` in Trove's files, `namespace` on AIS's wire.
    #[serde(default, alias = "namespace", skip_serializing_if = "Namespace::is_global")]
    pub ns: Namespace,
    pub name: String,
}

impl Bck {
    pub fn ais(name: impl Into<String>) -> Self {
        Bck { provider: Provider::Ais, ns: Namespace::default(), name: name.into() }
    }

    /// Whether the bucket's objects live elsewhere — a cloud provider, or a remote AIS cluster (`ais://@uuid/b`)
    /// — and what this cluster holds of them are cached copies.
    pub fn is_remote(&self) -> bool {
        self.provider.is_remote() || self.ns.is_remote()
    }

    /// Checks that the name and namespace are ones a provider can have and that each is one safe path
    /// component: the on-disk layout puts them into paths, so `..`, `/`, a leading dot or an absolute name
    /// must never get this far. AIS-local names follow S3's rules; cloud names the union of the providers'
    /// (GCS allows `_` and up to 222 characters; legacy S3 buckets have capitals).
    pub fn validate(&self) -> Result<(), BucketNameError> {
        if self.is_remote() {
            validate_cloud_name(&self.name)?;
        } else {
            validate_s3_bucket_name(&self.name)?;
        }
        for part in [&self.ns.uuid, &self.ns.name] {
            if !part.is_empty() {
                validate_cloud_name(part)?;
            }
        }
        Ok(())
    }
}

fn validate_cloud_name(name: &str) -> Result<(), BucketNameError> {
    let b = name.as_bytes();
    if !(1..=222).contains(&b.len()) {
        return Err(BucketNameError::Length);
    }
    if !b.iter().all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_')) {
        return Err(BucketNameError::Charset);
    }
    if !b[0].is_ascii_alphanumeric() {
        return Err(BucketNameError::Edge);
    }
    Ok(())
}

/// Why a name is not a valid S3 bucket name (the rules of AWS's general-purpose buckets).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BucketNameError {
    #[error("bucket names must be between 3 and 63 characters long")]
    Length,
    #[error("bucket names may contain only lowercase letters, digits, dots and hyphens")]
    Charset,
    #[error("bucket names must begin and end with a letter or digit")]
    Edge,
    #[error("bucket names must not contain two adjacent periods")]
    AdjacentDots,
    #[error("bucket names must not be formatted as an IP address")]
    IpAddress,
    #[error("bucket name {0:?} is reserved")]
    Reserved(&'static str),
}

/// Validates a name for S3 CreateBucket. `v1` is reserved: the native API lives under `/v1/`.
pub fn validate_s3_bucket_name(name: &str) -> Result<(), BucketNameError> {
    if name == "v1" {
        return Err(BucketNameError::Reserved("v1"));
    }
    let b = name.as_bytes();
    if !(3..=63).contains(&b.len()) {
        return Err(BucketNameError::Length);
    }
    if !b.iter().all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-') {
        return Err(BucketNameError::Charset);
    }
    let edge_ok = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if !edge_ok(b[0]) || !edge_ok(b[b.len() - 1]) {
        return Err(BucketNameError::Edge);
    }
    if name.contains("..") || name.contains(".-") || name.contains("-.") {
        return Err(BucketNameError::AdjacentDots);
    }
    if name.parse::<std::net::Ipv4Addr>().is_ok() {
        return Err(BucketNameError::IpAddress);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_identities_are_safe_path_components() {
        let cloud = |name: &str| Bck { provider: Provider::Aws, ns: Namespace::default(), name: name.into() };
        for ok in ["origin", "My_Legacy.Bucket-1", "a"] {
            assert_eq!(cloud(ok).validate(), Ok(()), "{ok}");
        }
        for bad in ["", ".", "..", "../x", "/etc", "a/b", ".trove", "%ob", "-x", "a b", "a\0b"] {
            assert!(cloud(bad).validate().is_err(), "{bad:?}");
        }
        assert!(cloud(&"a".repeat(223)).validate().is_err());
        assert!(Bck::ais("Upper").validate().is_err());
        assert!(Bck::ais("v1").validate().is_err());
        let mut ns = cloud("ok");
        ns.ns.name = "../x".into();
        assert!(ns.validate().is_err());
    }

    #[test]
    fn bucket_names() {
        for ok in ["abc", "my-bucket.data", "a1b", &"a".repeat(63)] {
            assert_eq!(validate_s3_bucket_name(ok), Ok(()), "{ok}");
        }
        assert_eq!(validate_s3_bucket_name("ab"), Err(BucketNameError::Length));
        assert_eq!(validate_s3_bucket_name(&"a".repeat(64)), Err(BucketNameError::Length));
        assert_eq!(validate_s3_bucket_name("Abc"), Err(BucketNameError::Charset));
        assert_eq!(validate_s3_bucket_name("a_b"), Err(BucketNameError::Charset));
        assert_eq!(validate_s3_bucket_name("-ab"), Err(BucketNameError::Edge));
        assert_eq!(validate_s3_bucket_name("ab."), Err(BucketNameError::Edge));
        assert_eq!(validate_s3_bucket_name("a..b"), Err(BucketNameError::AdjacentDots));
        assert_eq!(validate_s3_bucket_name("192.168.1.1"), Err(BucketNameError::IpAddress));
        assert_eq!(validate_s3_bucket_name("v1"), Err(BucketNameError::Reserved("v1")));
    }

    #[test]
    fn namespace_unames() {
        let ns = |u: &str, n: &str| Some(Namespace { uuid: u.into(), name: n.into() });
        assert_eq!(Namespace::parse_uname(""), ns("", ""));
        assert_eq!(Namespace::parse_uname("@#"), ns("", ""));
        assert_eq!(Namespace::parse_uname("@Zx1#"), ns("Zx1", ""));
        assert_eq!(Namespace::parse_uname("@Zx1"), ns("Zx1", ""));
        assert_eq!(Namespace::parse_uname("@alias#prod"), ns("alias", "prod"));
        assert_eq!(Namespace::parse_uname("#prod"), ns("", "prod"));
        assert_eq!(Namespace::parse_uname("Zx1"), None);
        assert_eq!(Namespace::parse_uname("@a/b"), None);
    }

    #[test]
    fn namespace_display() {
        let ns = Namespace { uuid: "Zx1".into(), name: "prod".into() };
        assert_eq!(ns.to_string(), "@Zx1#prod");
        assert_eq!(Namespace::default().to_string(), "");
    }
}
