//! Listing a bucket in binary key order with bounded memory.
//!
//! A bucket the index has scanned in ([`crate::lru`]) is listed from its ordered keys: a page costs its own
//! keys' metadata reads, wherever it starts. Otherwise (a start that is not a key, or no index yet) the
//! directories are walked: a directory's children are ranges of keys: a file is one key, a directory `d` is every key starting with
//! `d/` (plus the key `d` itself when it holds `%%obj`). To produce the next `n` keys after a position, each
//! directory is scanned and only the `n` smallest candidate children are kept (a bounded heap), so a page
//! costs one scan per visited directory and memory proportional to the page, never to the bucket.

use std::collections::BinaryHeap;
use std::fs;
use std::path::{Path, PathBuf};

use trove_namespace::Bck;

use crate::layout::{decode_name, Decoded, DIR_OBJECT, DIR_SEGMENT};
use crate::meta::ObjMeta;
use crate::store::{is_missing, Store};
use crate::{Error, Result};

#[derive(Debug, PartialEq, Eq)]
enum Child {
    /// An object with this full key.
    Object(Vec<u8>, PathBuf),
    /// A directory whose keys all start with this prefix (which ends in `/`).
    Dir(Vec<u8>, PathBuf),
}

impl Child {
    fn sort_key(&self) -> &[u8] {
        match self {
            Child::Object(k, _) | Child::Dir(k, _) => k,
        }
    }
}

/// Children order by the smallest key they can hold; the bounded heap relies on this (not on the variant).
impl Ord for Child {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.sort_key().cmp(other.sort_key())
    }
}

impl PartialOrd for Child {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Store {
    /// Up to `limit` objects of `bck` whose keys start with `prefix` and sort after `start` (bytewise), in order.
    /// The first listing of a bucket the index has not scanned in yet scans it in (so never under the tree lock).
    pub fn list(&self, bck: &Bck, start: &[u8], prefix: &str, limit: usize) -> Result<Vec<(String, ObjMeta)>> {
        if !self.index.is_scanned(bck) {
            self.scan_in(bck, &Default::default())?;
        }
        match self.index.keys_after(bck, start, prefix, limit) {
            Some(keys) => self.listed(bck, keys),
            None => self.list_walking(bck, start, prefix, limit),
        }
    }

    /// The metadata of listed keys. A key whose object is gone was deleted since (skipped, as S3 listings are
    /// not snapshots either), or is a ghost a scan raced in: that one is dropped from the index.
    fn listed(&self, bck: &Bck, keys: Vec<String>) -> Result<Vec<(String, ObjMeta)>> {
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            match self.head(bck, &key) {
                Ok(meta) => out.push((key, meta)),
                Err(Error::NotFound) => self.drop_if_absent(bck, &key),
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    pub(crate) fn list_walking(
        &self,
        bck: &Bck,
        start: &[u8],
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<(String, ObjMeta)>> {
        let mut merged: Vec<(Vec<u8>, PathBuf)> = Vec::new();
        for mp in 0..self.mountpaths().len() {
            let root = self.objects_root(mp, bck);
            let mut out = Vec::new();
            walk(&root, &[], start, prefix.as_bytes(), limit, &mut out)?;
            merged.extend(out);
        }
        merged.sort_by(|a, b| a.0.cmp(&b.0));
        merged.truncate(limit);
        let mut result = Vec::with_capacity(merged.len());
        for (key, path) in merged {
            match self.meta_at(&path) {
                Ok(meta) => result.push((String::from_utf8(key).unwrap_or_default(), meta)),
                // Deleted between the scan and now: skip it, as S3 listings are not snapshots either.
                Err(Error::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(result)
    }
}

/// Whether a subtree whose keys all start with `sub` may hold keys `> start` that start with `prefix`.
fn dir_wanted(sub: &[u8], start: &[u8], prefix: &[u8]) -> bool {
    let prefix_overlaps = sub.starts_with(prefix) || prefix.starts_with(sub);
    let all_before_start = sub < start && !start.starts_with(sub);
    // `sub` + 0xFF is the position right after the whole subtree (0xFF never occurs in UTF-8).
    let past_subtree = start.starts_with(sub) && start.get(sub.len()) == Some(&0xFF);
    prefix_overlaps && !all_before_start && !past_subtree
}

fn key_wanted(key: &[u8], start: &[u8], prefix: &[u8]) -> bool {
    key > start && key.starts_with(prefix)
}

pub(crate) fn walk(
    dir: &Path,
    dir_key: &[u8],
    start: &[u8],
    prefix: &[u8],
    limit: usize,
    out: &mut Vec<(Vec<u8>, PathBuf)>,
) -> Result<()> {
    let mut pos = start.to_vec();
    loop {
        let need = limit - out.len();
        if need == 0 {
            return Ok(());
        }
        let batch = smallest_children(dir, dir_key, &pos, prefix, need)?;
        let exhausted = batch.len() < need;
        for child in batch {
            if out.len() >= limit {
                return Ok(());
            }
            match child {
                Child::Object(key, path) => {
                    pos.clone_from(&key);
                    out.push((key, path));
                }
                Child::Dir(sub, path) => {
                    walk(&path, &sub, &pos, prefix, limit, out)?;
                    // The whole subtree is done (or the page is full): continue after it.
                    pos = sub;
                    pos.push(0xFF);
                }
            }
        }
        if exhausted {
            return Ok(());
        }
    }
}

/// The `need` smallest children of `dir` that can contribute keys after `start` with `prefix`.
fn smallest_children(dir: &Path, dir_key: &[u8], start: &[u8], prefix: &[u8], need: usize) -> Result<Vec<Child>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if is_missing(&e) => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(dir, e)),
    };
    let mut heap: BinaryHeap<Child> = BinaryHeap::new();
    let offer = |c: Child, heap: &mut BinaryHeap<Child>| {
        if heap.len() < need {
            heap.push(c);
        } else if heap.peek().is_some_and(|top| c.sort_key() < top.sort_key()) {
            heap.pop();
            heap.push(c);
        }
    };
    for entry in entries {
        let Some((seg, path, is_dir)) = child(dir, entry)? else { continue };
        let mut key = dir_key.to_vec();
        key.extend_from_slice(seg.as_bytes());
        if is_dir {
            if path.join(DIR_OBJECT).exists() && key_wanted(&key, start, prefix) {
                offer(Child::Object(key.clone(), path.join(DIR_OBJECT)), &mut heap);
            }
            key.push(b'/');
            if dir_wanted(&key, start, prefix) {
                offer(Child::Dir(key, path), &mut heap);
            }
        } else if key_wanted(&key, start, prefix) {
            offer(Child::Object(key, path), &mut heap);
        }
    }
    let mut v = heap.into_vec();
    v.sort_by(|a, b| a.sort_key().cmp(b.sort_key()));
    Ok(v)
}

/// A directory entry as a key segment: `(segment, path, is a directory)`; `None` for reserved names, entries
/// gone meanwhile, and hashed names whose full segment cannot be read.
fn child(dir: &Path, entry: std::io::Result<fs::DirEntry>) -> Result<Option<(String, PathBuf, bool)>> {
    let entry = entry.map_err(|e| Error::io(dir, e))?;
    let name = entry.file_name();
    let Some(name) = name.to_str() else { return Ok(None) };
    let path = entry.path();
    let is_dir = match entry.file_type() {
        Ok(t) => t.is_dir(),
        Err(e) if is_missing(&e) => return Ok(None),
        Err(e) => return Err(Error::io(&path, e)),
    };
    let seg = match decode_name(name) {
        Decoded::Segment(s) => s,
        Decoded::Reserved => return Ok(None),
        Decoded::Hashed => match full_segment(&path, is_dir) {
            Some(s) => s,
            None => return Ok(None),
        },
    };
    Ok(Some((seg, path, is_dir)))
}

/// The full segment behind a hashed name: the last segment of the object's key, or the `%%seg` file.
fn full_segment(path: &Path, is_dir: bool) -> Option<String> {
    if is_dir {
        fs::read_to_string(path.join(DIR_SEGMENT)).ok()
    } else {
        let key = ObjMeta::read_at(path).ok()?.key;
        key.rsplit('/').next().map(str::to_owned)
    }
}

/// Calls `f(key, path)` for every object under the bucket root `root`, in directory order (one pass, no
/// sorting): for scanning a bucket into the index.
pub(crate) fn each_object(root: &Path, f: &mut dyn FnMut(String, PathBuf) -> Result<()>) -> Result<()> {
    fn visit(dir: &Path, dir_key: &str, f: &mut dyn FnMut(String, PathBuf) -> Result<()>) -> Result<()> {
        let entries = match fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if is_missing(&e) => return Ok(()),
            Err(e) => return Err(Error::io(dir, e)),
        };
        for entry in entries {
            let Some((seg, path, is_dir)) = child(dir, entry)? else { continue };
            let key = format!("{dir_key}{seg}");
            if is_dir {
                let obj = path.join(DIR_OBJECT);
                if obj.exists() {
                    f(key.clone(), obj)?;
                }
                visit(&path, &format!("{key}/"), f)?;
            } else {
                f(key, path)?;
            }
        }
        Ok(())
    }
    visit(root, "", f)
}
