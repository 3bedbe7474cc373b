//! Changes of the bucket registry: the one way it is written. Each [`Change`] is a plain, serializable value
//! applied deterministically to a snapshot, so a replicated registry can log changes and apply them in the
//! same order on every node; today [`crate::Registry::apply`] applies them on one.

use serde::{Deserialize, Serialize};

use crate::registry::{BucketEntry, BucketProps, RegistrySnapshot};
use crate::{validate_s3_bucket_name, Error, Result};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Change {
    /// A new bucket under `name`; fails with `AlreadyExists` when the name is taken.
    Create {
        name: String,
        entry: BucketEntry,
    },
    /// `entry.bck` attached under `name`: a new attachment, or new properties for the same one. A name taken
    /// by another bucket fails with `AlreadyExists`.
    Attach {
        name: String,
        entry: BucketEntry,
    },
    /// The bucket under `name` leaves the namespace.
    Remove {
        name: String,
    },
    /// Seals (or unseals) the incarnation `bid` of the bucket under `name`: a DeleteBucket in progress. Fails
    /// with `NotFound` when that incarnation is gone.
    Seal {
        name: String,
        bid: u64,
        sealed: bool,
    },
    /// Bucket properties: an AIS-named partial patch, or back to the defaults with `reset`.
    PatchProps {
        name: String,
        patch: serde_json::Value,
        reset: bool,
    },
    SetAcl {
        name: String,
        acl: Option<String>,
    },
    SetTags {
        name: String,
        tags: Vec<(String, String)>,
    },
    /// Sets (or with `None` removes) the S3 bucket configuration `kind` of the bucket under `name`.
    SetConfig {
        name: String,
        kind: String,
        doc: Option<String>,
    },
    /// Owners renamed (canonical ids replacing access keys in registries written before them).
    RenameOwners {
        renames: Vec<(String, String)>,
    },
}

impl Change {
    /// Applies the change; returns the entry it created, changed or removed (none for owner renames).
    pub fn apply(&self, snap: &mut RegistrySnapshot) -> Result<Option<BucketEntry>> {
        let buckets = &mut snap.buckets;
        match self {
            Change::Create { name, entry } => {
                validate_s3_bucket_name(name)?;
                entry.bck.validate()?;
                if buckets.contains_key(name) {
                    return Err(Error::AlreadyExists(name.clone()));
                }
                buckets.insert(name.clone(), entry.clone());
                Ok(Some(entry.clone()))
            }
            Change::Attach { name, entry } => {
                validate_s3_bucket_name(name)?;
                entry.bck.validate()?;
                match buckets.get_mut(name) {
                    Some(cur) if cur.bck == entry.bck => {
                        cur.props = entry.props.clone();
                        Ok(Some(cur.clone()))
                    }
                    Some(_) => Err(Error::AlreadyExists(name.clone())),
                    None => {
                        buckets.insert(name.clone(), entry.clone());
                        Ok(Some(entry.clone()))
                    }
                }
            }
            Change::Remove { name } => buckets.remove(name).map(Some).ok_or_else(|| Error::NotFound(name.clone())),
            Change::Seal { name, bid, sealed } => match buckets.get_mut(name) {
                Some(e) if e.bid == *bid => {
                    e.sealed = *sealed;
                    Ok(Some(e.clone()))
                }
                _ => Err(Error::NotFound(name.clone())),
            },
            Change::PatchProps { name, patch, reset } => {
                let e = existing(buckets, name)?;
                if *reset {
                    e.props = BucketProps::default();
                } else {
                    e.props.apply(patch).map_err(Error::InvalidProps)?;
                }
                Ok(Some(e.clone()))
            }
            Change::SetAcl { name, acl } => {
                let e = existing(buckets, name)?;
                e.acl = acl.clone();
                Ok(Some(e.clone()))
            }
            Change::SetTags { name, tags } => {
                let e = existing(buckets, name)?;
                e.tags = tags.clone();
                Ok(Some(e.clone()))
            }
            Change::SetConfig { name, kind, doc } => {
                let e = existing(buckets, name)?;
                match doc {
                    Some(d) => e.configs.insert(kind.clone(), d.clone()),
                    None => e.configs.remove(kind),
                };
                Ok(Some(e.clone()))
            }
            Change::RenameOwners { renames } => {
                for e in buckets.values_mut() {
                    if let Some((_, to)) = renames.iter().find(|(from, _)| *from == e.owner) {
                        e.owner = to.clone();
                    }
                }
                Ok(None)
            }
        }
    }
}

fn existing<'a>(
    buckets: &'a mut std::collections::BTreeMap<String, BucketEntry>,
    name: &str,
) -> Result<&'a mut BucketEntry> {
    buckets.get_mut(name).ok_or_else(|| Error::NotFound(name.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Bck, Provider};

    fn entry(bck: Bck) -> BucketEntry {
        BucketEntry::new(bck, "owner".into(), 1, 7)
    }

    #[test]
    fn changes_apply_deterministically() {
        let origin = Bck { provider: Provider::Aws, ns: Default::default(), name: "origin".into() };
        let changes = vec![
            Change::Create { name: "local".into(), entry: entry(Bck::ais("local")) },
            Change::Attach { name: "data".into(), entry: entry(origin.clone()) },
            Change::PatchProps {
                name: "data".into(),
                patch: serde_json::json!({"lru": {"enabled": false}}),
                reset: false,
            },
            Change::SetAcl { name: "local".into(), acl: Some("public-read".into()) },
            Change::SetTags { name: "local".into(), tags: vec![("k".into(), "v".into())] },
            Change::SetConfig { name: "local".into(), kind: "cors".into(), doc: Some("<x/>".into()) },
            Change::RenameOwners { renames: vec![("owner".into(), "canonical".into())] },
        ];
        let (mut a, mut b) = (RegistrySnapshot::default(), RegistrySnapshot::default());
        for c in &changes {
            // What a log carries: the serialized change.
            let wire: Change = serde_json::from_str(&serde_json::to_string(c).unwrap()).unwrap();
            c.apply(&mut a).unwrap();
            wire.apply(&mut b).unwrap();
        }
        assert_eq!(a, b);
        assert!(!a.buckets["data"].props.lru.enabled);
        assert_eq!(a.buckets["local"].owner, "canonical");
        assert_eq!(a.buckets["local"].configs["cors"], "<x/>");
        assert!(matches!(
            Change::Attach { name: "local".into(), entry: entry(origin) }.apply(&mut a),
            Err(Error::AlreadyExists(_))
        ));
        assert!(matches!(Change::Remove { name: "nope".into() }.apply(&mut a), Err(Error::NotFound(_))));
        assert!(matches!(
            Change::Create { name: "..".into(), entry: entry(Bck::ais("ok-name")) }.apply(&mut a),
            Err(Error::InvalidName(_))
        ));
    }
}
