//! The AIS bucket URI grammar: `scheme://[@uuid][#namespace/]name[/object]`.
//!
//! Schemes are AIS's: `ais`, `s3`/`aws`, `gs`/`gcp`, `az`/`azure`. Examples: `ais://b`, `s3://#ns/b`,
//! `ais://@uuid/b`, `ais://@alias#ns/b/some/key`. A bare name (`b`) means `ais://b`, as in the AIS CLI.

use std::fmt;
use std::str::FromStr;

use crate::{Bck, Error, Namespace, Provider};

impl Bck {
    /// Parses `scheme://[@uuid][#ns/]bucket[/object]`, returning the bucket and the object name (possibly empty).
    pub fn parse_with_object(uri: &str) -> Result<(Bck, &str), Error> {
        let bad = |reason| Error::InvalidUri { uri: uri.to_owned(), reason };
        let (provider, rest) = match uri.split_once("://") {
            Some((scheme, rest)) => (scheme.parse::<Provider>()?, rest),
            None => (Provider::Ais, uri),
        };
        let mut ns = Namespace::default();
        let rest = if let Some(after_at) = rest.strip_prefix('@') {
            // `@uuid[#ns]/bucket`: the namespace part ends at the first `/`.
            let (ns_part, rest) = after_at.split_once('/').ok_or_else(|| bad("missing bucket name after namespace"))?;
            match ns_part.split_once('#') {
                Some((uuid, name)) => {
                    ns.uuid = uuid.to_owned();
                    ns.name = name.to_owned();
                }
                None => ns.uuid = ns_part.to_owned(),
            }
            if ns.uuid.is_empty() {
                return Err(bad("empty remote cluster name after '@'"));
            }
            rest
        } else if let Some(after_hash) = rest.strip_prefix('#') {
            let (name, rest) = after_hash.split_once('/').ok_or_else(|| bad("missing bucket name after namespace"))?;
            ns.name = name.to_owned();
            rest
        } else {
            rest
        };
        if ns.uuid.contains(['/', '#']) || ns.name.contains(['/', '@']) {
            return Err(bad("malformed namespace"));
        }
        let (name, object) = rest.split_once('/').unwrap_or((rest, ""));
        if name.is_empty() {
            return Err(bad("missing bucket name"));
        }
        if ns.is_remote() && provider != Provider::Ais {
            return Err(bad("a remote cluster namespace (@uuid) is only valid with ais://"));
        }
        Ok((Bck { provider, ns, name: name.to_owned() }, object))
    }
}

impl FromStr for Bck {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let (bck, object) = Bck::parse_with_object(s)?;
        if !object.is_empty() {
            return Err(Error::InvalidUri { uri: s.to_owned(), reason: "a bucket URI must not name an object" });
        }
        Ok(bck)
    }
}

impl fmt::Display for Bck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://", self.provider.scheme())?;
        if !self.ns.is_global() {
            write!(f, "{}/", self.ns)?;
        }
        f.write_str(&self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Bck {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn all_forms() {
        assert_eq!(p("ais://b"), Bck::ais("b"));
        assert_eq!(p("b"), Bck::ais("b"));
        assert_eq!(p("s3://b").provider, Provider::Aws);
        assert_eq!(p("aws://b").provider, Provider::Aws);
        assert_eq!(p("gs://b").provider, Provider::Gcp);
        assert_eq!(p("gcp://b").provider, Provider::Gcp);
        assert_eq!(p("az://b").provider, Provider::Azure);
        assert_eq!(p("azure://b").provider, Provider::Azure);
        let b = p("s3://#ns/b");
        assert_eq!((b.ns.uuid.as_str(), b.ns.name.as_str(), b.name.as_str()), ("", "ns", "b"));
        let b = p("ais://@Uuid1/b");
        assert_eq!((b.ns.uuid.as_str(), b.ns.name.as_str()), ("Uuid1", ""));
        let b = p("ais://@remais#ns2/b");
        assert_eq!((b.ns.uuid.as_str(), b.ns.name.as_str(), b.name.as_str()), ("remais", "ns2", "b"));
    }

    #[test]
    fn display_round_trips() {
        for s in ["ais://b", "s3://b", "gs://b", "az://b", "s3://#ns/b", "ais://@u/b", "ais://@u#n/b"] {
            assert_eq!(p(s).to_string(), s);
        }
    }

    #[test]
    fn with_object() {
        let (b, o) = Bck::parse_with_object("gs://#n/b/dir/obj.tar").unwrap();
        assert_eq!(b.to_string(), "gs://#n/b");
        assert_eq!(o, "dir/obj.tar");
        let (_, o) = Bck::parse_with_object("ais://b/a//c/").unwrap();
        assert_eq!(o, "a//c/");
    }

    #[test]
    fn rejects() {
        for s in ["ais://", "ftp://b", "ais://@/b", "ais://#ns", "s3://@u/b", "ais://b/o"] {
            assert!(s.parse::<Bck>().is_err(), "{s}");
        }
    }
}
