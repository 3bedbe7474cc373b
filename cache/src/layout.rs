//! On-disk naming: how a bucket and an S3 key become a path under a mountpath. Pure; no I/O.
//!
//! ```text
//! <mountpath>/@<provider>/[<ns-uname>/]<bucket>/%ob/<seg>/<seg>/.../<seg>    object data (+ metadata xattr)
//! <mountpath>/@<provider>/[<ns-uname>/]<bucket>/%mp/<upload-id>/...          multipart uploads in progress
//! <mountpath>/%wk/...                                                        work files (staged writes)
//! ```
//!
//! A key is split at `/`; each segment becomes one path component, escaped so that every valid S3 key maps to a
//! unique path that stays inside the bucket directory, and ordinary keys stay readable:
//! - `%` becomes `%25` and NUL `%00`; the segments `.` and `..` become `%2E` and `%2E%2E`.
//! - an empty segment (from `a//b` or a trailing `/`) becomes `%%e`.
//! - a segment whose escaped form exceeds 255 bytes keeps a readable prefix followed by `%%h` and a 128-bit hash;
//!   the full segment is kept in the object's metadata (files) or in a `%%seg` file (directories).
//! - names starting with `%%` are reserved. `%%obj` inside directory `d` holds the object whose key ends at `d`
//!   (so `a` and `a/b` can both exist).
//!
//! Escaped names never contain `/` or NUL and never equal `.` or `..`, so no key can resolve outside its bucket.

use std::path::{Path, PathBuf};

use trove_namespace::Bck;
use xxhash_rust::xxh64::xxh64;

/// Object data directory of a bucket.
pub const OBJECTS_DIR: &str = "%ob";
/// Multipart uploads of a bucket.
pub const UPLOADS_DIR: &str = "%mp";
/// Work files of a mountpath.
pub const WORK_DIR: &str = "%wk";
/// The object whose key ends at the enclosing directory.
pub const DIR_OBJECT: &str = "%%obj";
/// Full segment of a directory whose name had to be hashed.
pub const DIR_SEGMENT: &str = "%%seg";
/// In a file->directory conversion's work directory: the path it is being moved to.
pub const CONVERSION_TARGET: &str = "%%target";
const EMPTY_SEGMENT: &str = "%%e";
const HASH_MARK: &str = "%%h";
const NAME_MAX: usize = 255;
/// Readable prefix kept in front of the hash of a long segment.
const HASHED_PREFIX_MAX: usize = 200;

/// Directory of a bucket under one mountpath.
pub fn bucket_dir(mountpath: &Path, bck: &Bck) -> PathBuf {
    let mut p = mountpath.join(format!("@{}", bck.provider.as_str()));
    if !bck.ns.is_global() {
        p.push(trove_namespace::hrw::ns_uname(&bck.ns.uuid, &bck.ns.name));
    }
    p.push(&bck.name);
    p
}

/// The escaped directory/file name for one key segment, and whether it was hashed.
pub fn escape_segment(seg: &str) -> (String, bool) {
    match seg {
        "" => return (EMPTY_SEGMENT.to_owned(), false),
        "." => return ("%2E".to_owned(), false),
        ".." => return ("%2E%2E".to_owned(), false),
        _ => {}
    }
    // NUL cannot appear in a file name; `%` is the escape character itself.
    let escaped = seg.replace('%', "%25").replace('\0', "%00");
    if escaped.len() <= NAME_MAX {
        return (escaped, false);
    }
    let mut cut = HASHED_PREFIX_MAX;
    while !escaped.is_char_boundary(cut) {
        cut -= 1;
    }
    // Do not split a `%25` escape; the prefix is cosmetic, the hash makes the name unique.
    let prefix = escaped[..cut].trim_end_matches(['%', '2']);
    let b = seg.as_bytes();
    (format!("{prefix}{HASH_MARK}{:016x}{:016x}", xxh64(b, 0), xxh64(b, 0x0054_524f_5645)), true)
}

/// What a directory entry stands for, decoded from its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// The key segment this name encodes.
    Segment(String),
    /// A hashed long segment: the full segment must be read from metadata or `%%seg`.
    Hashed,
    /// A reserved name (`%%obj`, `%%seg`, ...), not a key segment.
    Reserved,
}

pub fn decode_name(name: &str) -> Decoded {
    if name == EMPTY_SEGMENT {
        return Decoded::Segment(String::new());
    }
    if name.contains(HASH_MARK) {
        return Decoded::Hashed;
    }
    if name.starts_with("%%") {
        return Decoded::Reserved;
    }
    match percent_decode(name) {
        Some(s) => Decoded::Segment(s),
        None => Decoded::Reserved,
    }
}

fn percent_decode(name: &str) -> Option<String> {
    if !name.contains('%') {
        return Some(name.to_owned());
    }
    let b = name.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Relative path of a key inside the bucket's `%ob` directory, plus, for each directory component that had to
/// be hashed, the full segment to record in its `%%seg` file.
pub fn key_path(key: &str) -> (PathBuf, Vec<(usize, String)>) {
    let mut p = PathBuf::new();
    let mut hashed_dirs = Vec::new();
    let segs: Vec<&str> = key.split('/').collect();
    let last = segs.len() - 1;
    for (i, seg) in segs.iter().enumerate() {
        let (name, hashed) = escape_segment(seg);
        if hashed && i != last {
            hashed_dirs.push((i, (*seg).to_owned()));
        }
        p.push(name);
    }
    (p, hashed_dirs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Component;

    const HOSTILE: &[&str] = &[
        "a",
        "a/b",
        "dir/",
        "x//y",
        "//",
        "/",
        "./p",
        "../q",
        "a/./b",
        "a/../b",
        "..",
        ".",
        "...",
        "%",
        "%2E",
        "%%obj",
        "%%e",
        "a%2Fb",
        "nul\0byte",
        "sp ace+plus%pct#hash~tilde",
        "日本語/ключ ü",
        "\u{1F600}",
        "a\\b",
        "-",
        "~",
        "*",
        "%25",
    ];

    fn decode_path(p: &Path) -> String {
        p.components()
            .map(|c| match c {
                Component::Normal(n) => match decode_name(n.to_str().unwrap()) {
                    Decoded::Segment(s) => s,
                    other => panic!("{p:?}: {other:?}"),
                },
                other => panic!("{p:?} has {other:?}"),
            })
            .collect::<Vec<_>>()
            .join("/")
    }

    #[test]
    fn hostile_keys_round_trip_and_stay_inside() {
        for key in HOSTILE {
            let (p, hashed) = key_path(key);
            assert!(hashed.is_empty());
            assert!(p.is_relative(), "{key}");
            assert!(p.components().all(|c| matches!(c, Component::Normal(_))), "{key} -> {p:?}");
            assert_eq!(decode_path(&p), *key, "{key} -> {p:?}");
        }
    }

    #[test]
    fn distinct_keys_distinct_paths() {
        let mut seen = std::collections::HashMap::new();
        for key in HOSTILE {
            let (p, _) = key_path(key);
            if let Some(other) = seen.insert(p.clone(), key) {
                panic!("{key} and {other} both map to {p:?}");
            }
        }
    }

    #[test]
    fn ordinary_keys_stay_readable() {
        assert_eq!(key_path("images/train/0001.jpg").0, PathBuf::from("images/train/0001.jpg"));
    }

    #[test]
    fn reserved_names_never_come_from_keys() {
        for key in ["%%obj", "%%seg", "%%e", "%%h"] {
            let (p, _) = key_path(key);
            assert!(!p.to_str().unwrap().starts_with("%%"), "{key} -> {p:?}");
        }
        assert_eq!(decode_name(DIR_OBJECT), Decoded::Reserved);
        assert_eq!(decode_name(DIR_SEGMENT), Decoded::Reserved);
    }

    #[test]
    fn long_segments_are_hashed_within_name_max() {
        let long = "x".repeat(300);
        let pct = "%".repeat(100); // escapes to 300 bytes
        let multibyte = "é".repeat(200); // 400 bytes
        for seg in [&long, &pct, &multibyte] {
            let (name, hashed) = escape_segment(seg);
            assert!(hashed);
            assert!(name.len() <= NAME_MAX, "{}", name.len());
            assert_eq!(decode_name(&name), Decoded::Hashed);
        }
        assert_ne!(escape_segment(&long).0, escape_segment(&format!("{long}y")).0);
        let key = format!("{long}/file");
        let (p, dirs) = key_path(&key);
        assert_eq!(dirs, vec![(0, long.clone())]);
        assert_eq!(p.components().count(), 2);
        let (_, dirs) = key_path(&format!("dir/{long}"));
        assert!(dirs.is_empty(), "a hashed final segment is recovered from the object's metadata");
    }

    #[test]
    fn max_length_key() {
        let key = "k/".repeat(511) + "ab"; // 1024 bytes, 512 segments
        let (p, _) = key_path(&key);
        assert_eq!(decode_path(&p), key);
    }

    #[test]
    fn bucket_dirs() {
        let mp = Path::new("/mnt/d1");
        assert_eq!(bucket_dir(mp, &Bck::ais("b")), PathBuf::from("/mnt/d1/@ais/b"));
        let b: Bck = "s3://#prod/b".parse().unwrap();
        assert_eq!(bucket_dir(mp, &b), PathBuf::from("/mnt/d1/@aws/@#prod/b"));
    }

    /// Keys built from the pieces that make mappings go wrong: separators, dot segments, escapes, reserved
    /// names, NUL, multi-byte characters and long runs.
    fn hostile_key() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let piece = prop_oneof![
            Just("/".to_owned()),
            Just(".".to_owned()),
            Just("..".to_owned()),
            Just("%".to_owned()),
            Just("%%obj".to_owned()),
            Just("%%seg".to_owned()),
            Just("\0".to_owned()),
            Just("\\".to_owned()),
            any::<char>().prop_map(|c| c.to_string()),
            (1usize..120).prop_map(|n| "x".repeat(n)),
            (1usize..60).prop_map(|n| "é".repeat(n)),
        ];
        proptest::collection::vec(piece, 1..40)
            .prop_map(|v| v.concat())
            .prop_filter("S3 keys are 1..=1024 bytes", |k| (1..=1024).contains(&k.len()))
    }

    proptest::proptest! {
        #[test]
        fn any_key_maps_inside_and_round_trips(key in hostile_key()) {
            let (p, hashed) = key_path(&key);
            proptest::prop_assert!(p.is_relative());
            proptest::prop_assert!(p.components().all(|c| matches!(c, Component::Normal(_))), "{:?} -> {:?}", key, p);
            for c in p.components() {
                proptest::prop_assert!(c.as_os_str().len() <= NAME_MAX);
            }
            // A long last segment is hashed and recovered from the object's metadata; all else decodes back.
            let last_hashed = key.rsplit('/').next().is_some_and(|seg| escape_segment(seg).1);
            if hashed.is_empty() && !last_hashed {
                proptest::prop_assert_eq!(decode_path(&p), key);
            }
        }

        #[test]
        fn distinct_keys_never_share_a_path(a in hostile_key(), b in hostile_key()) {
            proptest::prop_assume!(a != b);
            proptest::prop_assert_ne!(key_path(&a).0, key_path(&b).0);
        }
    }
}
