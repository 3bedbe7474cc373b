//! The bucket registry (AIS's "BMD"): S3 names -> bucket identity and properties, versioned and persisted.
//!
//! Every change produces a new immutable snapshot with `version + 1`, written with atomic replace (temp file,
//! fsync, rename, fsync of the directory) before it becomes visible, so a crash leaves either the old or the
//! new registry on disk. Readers take an `Arc` of the current snapshot and never block writers for long.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use serde::{Deserialize, Serialize};

use crate::Change;

use crate::{Bck, Error, Result};

/// Per-bucket properties, named as AIS names them on the wire (`lru.enabled`, `versioning.validate_warm_get`, ...).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BucketProps {
    #[serde(default)]
    pub lru: LruProps,
    #[serde(default)]
    pub versioning: VersioningProps,
    #[serde(default)]
    pub cache: CacheProps,
    #[serde(default)]
    pub mirror: MirrorProps,
    /// For attached cloud buckets: the backend bucket this S3 name stands for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_bck: Option<Bck>,
    /// Provider-specific settings (`extra.aws.endpoint`, ...), kept verbatim.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub extra: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LruProps {
    pub enabled: bool,
    /// Seconds after the last access during which a cached copy is never evicted.
    pub dont_evict_time: u64,
}

impl Default for LruProps {
    fn default() -> Self {
        LruProps { enabled: true, dont_evict_time: 7200 }
    }
}

/// How the cache treats a remote bucket (Trove's own properties; AIS has no equivalent names).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CacheProps {
    /// A ranged cold GET is answered from a backend range at once; with this, the whole object is then
    /// fetched into the cache in the background.
    pub background_fill: bool,
    /// When the backend is unreachable during a revalidating warm GET, serve the cached copy anyway.
    pub serve_stale: bool,
    /// After a cluster membership change, hand warm cached copies over to their new owners (a rebalance moves
    /// them like AIS-local objects). Off: nothing moves; the new owner pulls the old owner's copy on first read.
    pub move_warm_copies: bool,
}

impl Default for CacheProps {
    fn default() -> Self {
        CacheProps { background_fill: true, serve_stale: false, move_warm_copies: false }
    }
}

/// Redundancy of AIS-local objects, with AIS's names. Unlike AIS (copies on one target's mountpaths), Trove
/// keeps the copies on distinct nodes, the first `copies` in HRW order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MirrorProps {
    pub enabled: bool,
    pub copies: u32,
}

impl Default for MirrorProps {
    fn default() -> Self {
        MirrorProps { enabled: false, copies: 2 }
    }
}

/// The most copies a bucket may ask for.
pub const MAX_COPIES: u32 = 16;

impl BucketProps {
    /// Applies a partial property tree with AIS names (`{"versioning":{"validate_warm_get":true}}`), as
    /// AIS's `set-bprops` does; unknown names are refused.
    pub fn apply(&mut self, patch: &serde_json::Value) -> std::result::Result<(), String> {
        fn merge(
            base: &mut serde_json::Value,
            patch: &serde_json::Value,
            path: &str,
        ) -> std::result::Result<(), String> {
            match (base, patch) {
                (serde_json::Value::Object(b), serde_json::Value::Object(p)) => {
                    for (k, v) in p {
                        let here = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                        match b.get_mut(k) {
                            Some(slot) if slot.is_object() && v.is_object() => merge(slot, v, &here)?,
                            Some(slot) => *slot = v.clone(),
                            None if matches!(k.as_str(), "backend_bck" | "extra") => {
                                b.insert(k.clone(), v.clone());
                            }
                            None => return Err(format!("unknown bucket property {here}")),
                        }
                    }
                    Ok(())
                }
                (_, serde_json::Value::Null) => Ok(()),
                _ => Err("bucket properties must be a JSON object".into()),
            }
        }
        let mut tree = serde_json::to_value(&*self).map_err(|e| e.to_string())?;
        merge(&mut tree, patch, "")?;
        let next: BucketProps = serde_json::from_value(tree).map_err(|e| format!("invalid bucket properties: {e}"))?;
        if !(1..=MAX_COPIES).contains(&next.mirror.copies) {
            return Err(format!("mirror.copies must be between 1 and {MAX_COPIES}"));
        }
        *self = next;
        Ok(())
    }

    /// How many nodes keep each object of a bucket with these properties (mirroring applies to AIS-local
    /// buckets; a cache of a remote bucket has its backend as the other copy).
    pub fn copies(&self, remote: bool) -> usize {
        if self.mirror.enabled && !remote {
            self.mirror.copies.max(1) as usize
        } else {
            1
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VersioningProps {
    #[serde(default)]
    pub validate_warm_get: bool,
    /// S3 versioning of an AIS-local bucket: once enabled, a bucket keeps every version of its objects until it
    /// is suspended (S3 never lets a bucket go back to unversioned).
    #[serde(default)]
    pub s3: S3Versioning,
}

/// A bucket's S3 versioning state (`GetBucketVersioning`'s `Status`, absent when never enabled).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum S3Versioning {
    #[default]
    Unversioned,
    Enabled,
    Suspended,
}

impl S3Versioning {
    pub fn is_unversioned(&self) -> bool {
        *self == S3Versioning::Unversioned
    }
}

/// One registered bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BucketEntry {
    pub bck: Bck,
    /// Canonical id of the owning user.
    pub owner: String,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_ms: i64,
    #[serde(default)]
    pub props: BucketProps,
    /// S3 bucket tags, in the order they were given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<(String, String)>,
    /// S3 canned ACL (`private`, `public-read`, `public-read-write`, `authenticated-read`); `None` is private.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acl: Option<String>,
    /// This incarnation of the bucket (AIS's BID): a bucket deleted and created again under the same name is
    /// another bucket, and a write that began in the old one must not land in the new one. 0 in registries
    /// written before it existed.
    #[serde(default)]
    pub bid: u64,
    /// Set while a DeleteBucket checks the nodes for objects: no write lands in a sealed bucket.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sealed: bool,
    /// S3 bucket configurations by name (`object-lock`, `policy`, `cors`, ...), each a document the S3
    /// frontend writes and reads; the registry only keeps and replicates them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub configs: BTreeMap<String, String>,
}

impl BucketEntry {
    /// A new incarnation of `bck`, owned by `owner`, with default properties.
    pub fn new(bck: Bck, owner: String, created_ms: i64, bid: u64) -> BucketEntry {
        BucketEntry {
            bck,
            owner,
            created_ms,
            props: BucketProps::default(),
            tags: Vec::new(),
            acl: None,
            bid,
            configs: BTreeMap::new(),
            sealed: false,
        }
    }
}

/// An immutable, versioned view of the registry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RegistrySnapshot {
    pub version: u64,
    /// S3 name -> bucket. A `BTreeMap` so ListBuckets comes out sorted.
    pub buckets: BTreeMap<String, BucketEntry>,
}

/// The persisted registry of one node.
#[derive(Debug)]
pub struct Registry {
    path: PathBuf,
    current: RwLock<Arc<RegistrySnapshot>>,
    /// Serializes writers so versions never fork; readers only touch `current`.
    write: Mutex<()>,
}

impl Registry {
    /// Loads the registry at `path`, or starts an empty one (version 0) when the file does not exist.
    pub fn open(path: impl Into<PathBuf>) -> Result<Registry> {
        let path = path.into();
        let snap = match fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|source| Error::Corrupt { path: path.clone(), source })?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => RegistrySnapshot::default(),
            Err(source) => return Err(Error::Io { path, source }),
        };
        Ok(Registry { path, current: RwLock::new(Arc::new(snap)), write: Mutex::new(()) })
    }

    pub fn snapshot(&self) -> Arc<RegistrySnapshot> {
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn get(&self, s3_name: &str) -> Option<BucketEntry> {
        self.snapshot().buckets.get(s3_name).cloned()
    }

    /// Applies `change` to a copy of the current snapshot, persists it as the next version and publishes it;
    /// returns the entry the change created, changed or removed. The one way the registry is written.
    /// Blocking (file I/O): call from a blocking context.
    pub fn apply(&self, change: &Change) -> Result<Option<BucketEntry>> {
        let _writer = self.write.lock().unwrap_or_else(|e| e.into_inner());
        let mut next = RegistrySnapshot::clone(&self.snapshot());
        let out = change.apply(&mut next)?;
        next.version += 1;
        persist(&self.path, &next)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(next);
        Ok(out)
    }

    /// Replaces the whole registry (a replicated registry installing a snapshot of the cluster's). Blocking.
    pub fn replace(&self, snap: RegistrySnapshot) -> Result<()> {
        let _writer = self.write.lock().unwrap_or_else(|e| e.into_inner());
        persist(&self.path, &snap)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(snap);
        Ok(())
    }
}

fn persist(path: &Path, snap: &RegistrySnapshot) -> Result<()> {
    let io = |source| Error::Io { path: path.to_owned(), source };
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(io)?;
    let tmp = path.with_extension("tmp");
    let bytes = serde_json::to_vec_pretty(snap).map_err(|source| Error::Corrupt { path: path.to_owned(), source })?;
    let mut f = fs::File::create(&tmp).map_err(io)?;
    f.write_all(&bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    fs::rename(&tmp, path).map_err(io)?;
    fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_properties_use_ais_names_and_apply_to_ais_buckets_only() {
        let mut p = BucketProps::default();
        assert_eq!(p.copies(false), 1);
        p.apply(&serde_json::json!({"mirror": {"enabled": true, "copies": 3}})).unwrap();
        assert_eq!((p.copies(false), p.copies(true)), (3, 1));
        assert!(p.apply(&serde_json::json!({"mirror": {"copies": 0}})).is_err());
        assert!(p.apply(&serde_json::json!({"mirror": {"copies": 17}})).is_err());
        assert_eq!(p.copies(false), 3, "a refused patch changes nothing");
        p.apply(&serde_json::json!({"cache": {"move_warm_copies": true}})).unwrap();
        assert!(p.cache.move_warm_copies);
    }

    fn entry(name: &str) -> BucketEntry {
        BucketEntry {
            bck: Bck::ais(name),
            owner: "me".into(),
            created_ms: 1,
            props: BucketProps::default(),
            tags: vec![],
            acl: None,
            bid: 1,
            sealed: false,
            configs: BTreeMap::new(),
        }
    }

    #[test]
    fn insert_refuses_names_that_could_leave_the_mountpath() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::open(dir.path().join("bmd.json")).unwrap();
        let create = |n: &str, e: &str| Change::Create { name: n.into(), entry: entry(e) };
        assert!(matches!(reg.apply(&create("ok-name", "..")), Err(Error::InvalidName(_))));
        assert!(matches!(reg.apply(&create("..", "ok-name")), Err(Error::InvalidName(_))));
        assert_eq!(reg.snapshot().version, 0);
    }

    #[test]
    fn versioned_and_persisted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bmd.json");
        let reg = Registry::open(&path).unwrap();
        assert_eq!(reg.snapshot().version, 0);
        let create = |n: &str| Change::Create { name: n.into(), entry: entry(n) };
        let remove = || Change::Remove { name: "aaa".into() };
        reg.apply(&create("aaa")).unwrap();
        reg.apply(&create("bbb")).unwrap();
        assert!(matches!(reg.apply(&create("aaa")), Err(Error::AlreadyExists(_))));
        reg.apply(&Change::SetTags { name: "bbb".into(), tags: vec![("k".into(), "v".into())] }).unwrap();
        reg.apply(&remove()).unwrap();
        assert!(matches!(reg.apply(&remove()), Err(Error::NotFound(_))));
        let snap = reg.snapshot();
        assert_eq!(snap.version, 4);

        let again = Registry::open(&path).unwrap();
        assert_eq!(*again.snapshot(), *snap);
        assert_eq!(again.get("bbb").unwrap().tags, vec![("k".to_owned(), "v".to_owned())]);
        assert!(!path.with_extension("tmp").exists());
    }

    #[test]
    fn failed_change_keeps_version() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::open(dir.path().join("bmd.json")).unwrap();
        assert!(reg.apply(&Change::SetAcl { name: "nope".into(), acl: None }).is_err());
        assert_eq!(reg.snapshot().version, 0);
    }

    #[test]
    fn corrupt_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bmd.json");
        fs::write(&path, b"{not json").unwrap();
        assert!(matches!(Registry::open(&path), Err(Error::Corrupt { .. })));
    }

    #[test]
    fn props_apply_partial_trees_with_ais_names() {
        let mut p = BucketProps::default();
        p.apply(&serde_json::json!({"versioning": {"validate_warm_get": true}, "cache": {"serve_stale": true}}))
            .unwrap();
        assert!(p.versioning.validate_warm_get);
        assert!(p.cache.serve_stale);
        assert!(p.cache.background_fill, "untouched leaves keep their values");
        assert!(p.lru.enabled);
        p.apply(&serde_json::Value::Null).unwrap();
        assert!(p.versioning.validate_warm_get, "null changes nothing");
        assert!(p.apply(&serde_json::json!({"versioning": {"nope": 1}})).unwrap_err().contains("versioning.nope"));
        assert!(p.apply(&serde_json::json!({"lru": {"enabled": "yes"}})).is_err(), "wrong types are refused");
        assert!(p.apply(&serde_json::json!([1])).is_err());
    }

    #[test]
    fn attached_bucket_round_trips_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bmd.json");
        let reg = Registry::open(&path).unwrap();
        let mut e = entry("origin");
        e.bck = "gs://origin".parse().unwrap();
        e.props.apply(&serde_json::json!({"versioning": {"validate_warm_get": true}})).unwrap();
        reg.apply(&Change::Attach { name: "imagenet".into(), entry: e.clone() }).unwrap();
        let again = Registry::open(&path).unwrap();
        assert_eq!(again.get("imagenet"), Some(e));
        // Files written before the cache properties existed still load, with defaults.
        let old = r#"{"version":3,"buckets":{"b":{"bck":{"provider":"aws","name":"b"},"owner":"o","created_ms":1,"props":{"lru":{"enabled":true,"dont_evict_time":7200},"versioning":{"validate_warm_get":false}}}}}"#;
        fs::write(&path, old).unwrap();
        let loaded = Registry::open(&path).unwrap();
        assert_eq!(loaded.get("b").unwrap().props.cache, CacheProps::default());
        assert_eq!(loaded.snapshot().version, 3);
    }
}
