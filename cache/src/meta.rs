//! The per-object metadata record and its encoding in an extended attribute.
//!
//! The record is set on the work file before it is renamed into place, so data and metadata are published by
//! one atomic rename (as AIS does). Tag changes rewrite the attribute in place, which is atomic too.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

const XATTR: &str = "user.trove.meta";
/// What one object's metadata may take: ext4 keeps about 4 KiB of extended attributes per file in all.
const XATTR_BUDGET: usize = 3800;

/// Everything S3 reports about an object besides its bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjMeta {
    /// The full key; needed to decode hashed path names and for rebuilds.
    pub key: String,
    pub size: u64,
    /// Hex MD5, or `md5(md5s)-N` for multipart uploads; without quotes.
    pub etag: String,
    pub mtime_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_encoding: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_disposition: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_language: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<String>,
    /// HTTP-date string, kept as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub user: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<(String, String)>,
    /// Algorithm (`CRC32`, `CRC32C`, `CRC64NVME`, `SHA1`, `SHA256`) -> base64 value, as S3 returns them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub checksums: BTreeMap<String, String>,
    /// `COMPOSITE` or `FULL_OBJECT` for checksums of multipart objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum_type: Option<String>,
    /// Per-part checksums of a multipart object (of its checksum algorithm), in part order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub part_checksums: Vec<String>,
    /// Sizes of the parts of a multipart object, in order; empty for a single PUT. Stored as runs of equal
    /// sizes (`[[size, count], ...]`), so a 10,000-part upload takes a few bytes.
    #[serde(default, skip_serializing_if = "Vec::is_empty", with = "runs")]
    pub parts: Vec<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<String>,
    /// S3 ACL of the object as the gateway stores it (a canned ACL's name or a grant list); `None` is private.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acl: Option<String>,
    /// Canonical id of the object's owner when that is not the bucket's owner (an object another user wrote).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// For a cached copy: the backend's version of the object (S3 version id, GCS generation). For a part of
    /// an upload to a remote bucket: the backend's token for the part (an S3 part ETag, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// S3 version id of an object of a versioned AIS-local bucket (`null` for the null version written while
    /// versioning was suspended); `None` for objects written before versioning was ever enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vid: Option<String>,
    /// When this version was written, in nanoseconds since the Unix epoch: orders a key's versions.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub vt: u64,
    /// An S3 delete marker (no data).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub delete_marker: bool,
    /// S3 Object Lock retention: `GOVERNANCE` or `COMPLIANCE`, until `lock_until_ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock_until_ms: Option<i64>,
    /// S3 Object Lock legal hold.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub legal_hold: bool,
    /// Server-side encryption: the stored bytes are sealed segments, not the plaintext (`size` stays the
    /// plaintext's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sse: Option<SseMeta>,
}

/// How an object's bytes are encrypted at rest: the algorithm S3 reports, and the object's data key wrapped by
/// the key-encryption key it names. The gateway seals and opens; the store only keeps the record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SseMeta {
    /// `AES256` or `aws:kms`.
    pub algorithm: String,
    /// SSE-C: the key is the customer's, given with each request.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub customer: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    /// SSE-C: base64 MD5 of the customer's key (tells a wrong key; S3 reports it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_key_md5: Option<String>,
    /// The wrapped data key, base64.
    pub key: String,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

impl ObjMeta {
    /// The record of a cached copy of a backend object: its ETag, version, time and headers as the backend has them.
    pub fn from_backend(key: &str, m: &trove_backends::ObjectMeta) -> ObjMeta {
        ObjMeta {
            key: key.to_owned(),
            size: m.size,
            etag: m.etag.clone(),
            mtime_ms: m.last_modified_ms,
            content_type: m.content_type.clone(),
            content_encoding: m.content_encoding.clone(),
            content_disposition: m.content_disposition.clone(),
            content_language: m.content_language.clone(),
            cache_control: m.cache_control.clone(),
            user: m.user_meta.clone(),
            version: m.version.clone(),
            ..Default::default()
        }
    }

    /// What a backend is told about an object written through Trove.
    pub fn to_backend(&self) -> trove_backends::ObjectMeta {
        trove_backends::ObjectMeta {
            size: self.size,
            etag: self.etag.clone(),
            last_modified_ms: self.mtime_ms,
            version: self.version.clone(),
            content_type: self.content_type.clone(),
            content_encoding: self.content_encoding.clone(),
            cache_control: self.cache_control.clone(),
            content_disposition: self.content_disposition.clone(),
            content_language: self.content_language.clone(),
            user_meta: self.user.clone(),
        }
    }

    /// Whether a cached copy still matches the backend's object (AIS's `CheckEq`, reduced to what every
    /// provider reports: size, then version when both have one, then ETag).
    pub fn same_as_backend(&self, m: &trove_backends::ObjectMeta) -> bool {
        if self.size != m.size {
            return false;
        }
        if let (Some(a), Some(b)) = (&self.version, &m.version) {
            return a == b;
        }
        self.etag == m.etag
    }
}

impl ObjMeta {
    /// The S3 version id: `null` for an object without one.
    pub fn version_id(&self) -> &str {
        self.vid.as_deref().unwrap_or(crate::versions::NULL_VERSION)
    }

    /// Position among the versions of its key (larger is newer); objects from before versioning have only
    /// their modification time.
    pub fn version_order(&self) -> u64 {
        if self.vt != 0 {
            self.vt
        } else {
            u64::try_from(self.mtime_ms).unwrap_or(0).saturating_mul(1_000_000)
        }
    }

    /// `[start, end)` of part `n` (1-based) of a multipart object; a single-PUT object is one part.
    pub fn part_range(&self, n: usize) -> Option<(u64, u64)> {
        if self.parts.is_empty() {
            return (n == 1).then_some((0, self.size));
        }
        let start: u64 = self.parts.iter().take(n.checked_sub(1)?).sum();
        let len = *self.parts.get(n - 1)?;
        Some((start, start + len))
    }

    pub fn parts_count(&self) -> usize {
        self.parts.len().max(1)
    }

    /// The JSON record. Per-part checksums of uploads with many parts do not fit the budget; they are dropped
    /// then (the object's own checksum stays), rather than refusing the upload.
    fn encode(&self) -> Result<Vec<u8>> {
        let enc = |m: &ObjMeta| serde_json::to_vec(m).map_err(|e| Error::Internal(format!("encoding metadata: {e}")));
        let bytes = enc(self)?;
        if bytes.len() <= XATTR_BUDGET || self.part_checksums.is_empty() {
            return Ok(bytes);
        }
        enc(&ObjMeta { part_checksums: Vec::new(), ..self.clone() })
    }

    fn decode(bytes: &[u8], path: &Path) -> Result<ObjMeta> {
        serde_json::from_slice(bytes).map_err(|_| Error::Corrupt { path: path.to_owned() })
    }

    pub fn write_to(&self, file: &File, path: &Path) -> Result<()> {
        let bytes = self.encode()?;
        xattr::FileExt::set_xattr(file, XATTR, &bytes).map_err(|e| xattr_error(e, path, bytes.len()))
    }

    pub fn write_at(&self, path: &Path) -> Result<()> {
        let bytes = self.encode()?;
        xattr::set(path, XATTR, &bytes).map_err(|e| xattr_error(e, path, bytes.len()))
    }

    pub fn read_from(file: &File, path: &Path) -> Result<ObjMeta> {
        match xattr::FileExt::get_xattr(file, XATTR) {
            Ok(Some(b)) => Self::decode(&b, path),
            Ok(None) => Err(Error::Corrupt { path: path.to_owned() }),
            Err(e) => Err(Error::io(path, e)),
        }
    }

    pub fn read_at(path: &Path) -> Result<ObjMeta> {
        match xattr::get(path, XATTR) {
            Ok(Some(b)) => Self::decode(&b, path),
            Ok(None) => Err(Error::Corrupt { path: path.to_owned() }),
            Err(e) => Err(Error::io(path, e)),
        }
    }
}

/// ext4 answers ENOSPC both when a value does not fit beside the inode and when the disk is full: a record
/// within the budget that every supported filesystem holds can only have failed for want of space.
fn xattr_error(e: std::io::Error, path: &Path, len: usize) -> Error {
    match e.raw_os_error() {
        Some(libc::E2BIG) | Some(libc::ERANGE) => Error::MetadataTooLarge,
        Some(libc::ENOSPC) if len > XATTR_BUDGET => Error::MetadataTooLarge,
        _ => Error::io(path, e),
    }
}

/// Checks that `dir`'s filesystem keeps user extended attributes (Trove's metadata lives there).
pub fn check_xattr_support(dir: &Path) -> Result<()> {
    let probe = dir.join(".trove-xattr-probe");
    let f = File::create(&probe).map_err(|e| Error::io(&probe, e))?;
    let res = xattr::FileExt::set_xattr(&f, XATTR, b"{}");
    let _ = std::fs::remove_file(&probe);
    res.map_err(|e| {
        Error::Unsupported(format!("{}: the filesystem does not keep user extended attributes ({e})", dir.display()))
    })
}

/// Serde for part sizes as runs of equal values.
mod runs {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(sizes: &[u64], s: S) -> Result<S::Ok, S::Error> {
        let mut runs: Vec<(u64, u64)> = Vec::new();
        for &size in sizes {
            match runs.last_mut() {
                Some((v, n)) if *v == size => *n += 1,
                _ => runs.push((size, 1)),
            }
        }
        runs.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u64>, D::Error> {
        let runs = Vec::<(u64, u64)>::deserialize(d)?;
        Ok(runs.into_iter().flat_map(|(v, n)| std::iter::repeat_n(v, n as usize)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_thousand_parts_fit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o");
        let f = File::create(&path).unwrap();
        let mut parts = vec![8 << 20; 9_999];
        parts.push(123);
        let m = ObjMeta {
            key: "k".repeat(1024),
            parts,
            part_checksums: vec!["AAAAAA==".into(); 10_000],
            checksums: [("CRC32".to_owned(), "BBBBBB==".to_owned())].into(),
            ..Default::default()
        };
        m.write_to(&f, &path).unwrap();
        let back = ObjMeta::read_at(&path).unwrap();
        assert_eq!(back.parts, m.parts);
        assert!(back.part_checksums.is_empty(), "dropped to fit");
        assert_eq!(back.checksums, m.checksums);
    }

    #[test]
    fn xattr_round_trip_and_part_ranges() {
        let dir = tempfile::tempdir().unwrap();
        check_xattr_support(dir.path()).unwrap();
        let path = dir.path().join("o");
        let f = File::create(&path).unwrap();
        let mut m =
            ObjMeta { key: "k".into(), size: 15, etag: "abc-3".into(), parts: vec![5, 5, 5], ..Default::default() };
        m.user.insert("color".into(), "blue".into());
        m.write_to(&f, &path).unwrap();
        assert_eq!(ObjMeta::read_at(&path).unwrap(), m);
        assert_eq!(m.part_range(1), Some((0, 5)));
        assert_eq!(m.part_range(3), Some((10, 15)));
        assert_eq!(m.part_range(4), None);
        assert_eq!(m.part_range(0), None);
        let single = ObjMeta { size: 7, ..Default::default() };
        assert_eq!(single.part_range(1), Some((0, 7)));
        assert_eq!(single.part_range(2), None);
    }
}
