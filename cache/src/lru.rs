//! The index of a node's objects: key, size and last access of every object, kept in memory, in key order per
//! bucket.
//!
//! The store updates it on every commit, delete and read, so byte accounting is exact once the start-up scan
//! ([`Store::rebuild_index`]) has run, and a bucket's listing is a range of its ordered keys once the bucket
//! has been scanned (so a page costs the same at the start and at the end of a bucket of millions of keys); access times are persisted lazily ([`Index::save_atimes`]) and read back
//! by that scan, so LRU order survives restarts. Eviction ([`Store::evict`]) removes cached copies of remote
//! objects only — AIS-local objects are primary data — oldest access first, skipping what the caller's policy
//! protects (`lru.enabled = false`, younger than `dont_evict_time`). A reader streaming an object while it is
//! evicted keeps its open file and finishes intact (the file is unlinked, not truncated).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, Write};
use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};

use trove_namespace::Bck;

use crate::{Error, Result, Store};

type Key = (Bck, String);

#[derive(Debug)]
struct Entry {
    size: AtomicU64,
    /// Last access, nanoseconds since the Unix epoch.
    atime: AtomicI64,
}

/// One bucket's objects in key order (bytewise, as S3 lists them).
type Keys = BTreeMap<Box<str>, Entry>;

#[derive(Debug, Default)]
pub struct Index {
    buckets: RwLock<hashbrown::HashMap<Bck, Keys>>,
    objects: AtomicU64,
    total: AtomicU64,
    evictable: AtomicU64,
    /// The start-up scan has finished: totals cover every object on disk.
    complete: AtomicBool,
    /// Buckets whose objects on disk have all been scanned in: their listings come from the index.
    scanned: RwLock<HashSet<Bck>>,
    /// One scan at a time: a listing that needs a bucket the start-up scan is reading waits for it.
    scanning: Mutex<()>,
    evicted_objects: AtomicU64,
    evicted_bytes: AtomicU64,
}

/// The lower bound of keys `> start` as a string bound: `start` itself, or, for a start that is a prefix
/// followed by 0xFF (the position right after every key with that prefix), the first string after all of them.
/// `None` for any other non-UTF-8 start.
fn after(start: &[u8]) -> Option<Bound<String>> {
    if let Ok(s) = std::str::from_utf8(start) {
        return Some(if s.is_empty() { Bound::Unbounded } else { Bound::Excluded(s.to_owned()) });
    }
    let prefix = std::str::from_utf8(start.strip_suffix(&[0xFF])?).ok()?;
    let mut chars: Vec<char> = prefix.chars().collect();
    // The successor of the last character that has one (code-point order is UTF-8 byte order).
    while let Some(c) = chars.pop() {
        let next = (u32::from(c) + 1..=u32::from(char::MAX)).find_map(char::from_u32);
        if let Some(n) = next {
            chars.push(n);
            return Some(Bound::Included(chars.into_iter().collect()));
        }
    }
    None
}

/// Undoes the key escaping of [`Index::save_atimes`].
fn unescape(k: &str) -> String {
    let mut out = String::with_capacity(k.len());
    let mut chars = k.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

pub fn now_ns() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i64)
}

/// Byte accounting and eviction counters, for capacity checks and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Bytes of all objects (AIS-local and cached copies).
    pub total: u64,
    /// Bytes of cached copies of remote objects.
    pub evictable: u64,
    pub objects: u64,
    pub evicted_objects: u64,
    pub evicted_bytes: u64,
    pub complete: bool,
}

impl Index {
    fn put(&self, bck: &Bck, key: &str, size: u64, atime: i64) {
        self.put_if(bck, key, size, atime, true);
    }

    /// Records an object; with `replace` false, an object already known is left as it is (the scan must not
    /// undo a commit that overtook it).
    fn put_if(&self, bck: &Bck, key: &str, size: u64, atime: i64, replace: bool) {
        let evictable = bck.is_remote();
        let mut map = self.buckets.write().unwrap_or_else(|e| e.into_inner());
        let keys = match map.get_mut(bck) {
            Some(k) => k,
            None => map.entry(bck.clone()).or_default(),
        };
        match keys.get(key) {
            Some(_) if !replace => return,
            Some(e) => {
                let old = e.size.swap(size, Ordering::Relaxed);
                e.atime.store(atime, Ordering::Relaxed);
                self.total.fetch_sub(old, Ordering::Relaxed);
                if evictable {
                    self.evictable.fetch_sub(old, Ordering::Relaxed);
                }
            }
            None => {
                keys.insert(key.into(), Entry { size: AtomicU64::new(size), atime: AtomicI64::new(atime) });
                self.objects.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.total.fetch_add(size, Ordering::Relaxed);
        if evictable {
            self.evictable.fetch_add(size, Ordering::Relaxed);
        }
    }

    /// Records an access (a read): a shared lock and one atomic store.
    pub(crate) fn touch(&self, bck: &Bck, key: &str) {
        let map = self.buckets.read().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = map.get(bck).and_then(|k| k.get(key)) {
            e.atime.store(now_ns(), Ordering::Relaxed);
        }
    }

    pub(crate) fn committed(&self, bck: &Bck, key: &str, size: u64) {
        self.put(bck, key, size, now_ns());
    }

    pub(crate) fn removed(&self, bck: &Bck, key: &str) {
        let mut map = self.buckets.write().unwrap_or_else(|e| e.into_inner());
        let Some(keys) = map.get_mut(bck) else { return };
        if let Some(e) = keys.remove(key) {
            self.forget(bck, &e);
        }
        if keys.is_empty() {
            map.remove(bck);
        }
    }

    fn forget(&self, bck: &Bck, e: &Entry) {
        let size = e.size.load(Ordering::Relaxed);
        self.objects.fetch_sub(1, Ordering::Relaxed);
        self.total.fetch_sub(size, Ordering::Relaxed);
        if bck.is_remote() {
            self.evictable.fetch_sub(size, Ordering::Relaxed);
        }
    }

    pub(crate) fn removed_bucket(&self, bck: &Bck) {
        let mut map = self.buckets.write().unwrap_or_else(|e| e.into_inner());
        if let Some(keys) = map.remove(bck) {
            for e in keys.values() {
                self.forget(bck, e);
            }
        }
    }

    /// `bck` has nothing on disk that the index lacks (its first object is being written): its listings come
    /// from the index without a scan.
    pub(crate) fn mark_scanned(&self, bck: &Bck) {
        self.scanned.write().unwrap_or_else(|e| e.into_inner()).insert(bck.clone());
    }

    pub(crate) fn is_scanned(&self, bck: &Bck) -> bool {
        self.scanned.read().unwrap_or_else(|e| e.into_inner()).contains(bck)
    }

    /// Up to `limit` keys of `bck` after `start` (bytewise; see [`after`]) that begin with `prefix`, in order;
    /// `None` when the bucket has not been scanned in.
    pub(crate) fn keys_after(&self, bck: &Bck, start: &[u8], prefix: &str, limit: usize) -> Option<Vec<String>> {
        if !self.is_scanned(bck) {
            return None;
        }
        let from = after(start)?;
        let map = self.buckets.read().unwrap_or_else(|e| e.into_inner());
        let Some(keys) = map.get(bck) else { return Some(Vec::new()) };
        // Nothing before the prefix can match: start at whichever bound is later.
        let lower = match &from {
            Bound::Excluded(s) if s.as_str() >= prefix => Bound::Excluded(s.as_str()),
            Bound::Included(s) if s.as_str() >= prefix => Bound::Included(s.as_str()),
            _ => Bound::Included(prefix),
        };
        Some(
            keys.range::<str, _>((lower, Bound::Unbounded))
                .take_while(|(k, _)| k.starts_with(prefix))
                .take(limit)
                .map(|(k, _)| k.to_string())
                .collect(),
        )
    }

    /// Bytes of all objects: one atomic load, for checks on the request path.
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    pub fn usage(&self) -> Usage {
        Usage {
            total: self.total.load(Ordering::Relaxed),
            evictable: self.evictable.load(Ordering::Relaxed),
            objects: self.objects.load(Ordering::Relaxed),
            evicted_objects: self.evicted_objects.load(Ordering::Relaxed),
            evicted_bytes: self.evicted_bytes.load(Ordering::Relaxed),
            complete: self.complete.load(Ordering::Relaxed),
        }
    }

    /// Writes the access times of cached copies to `path` (temp file + rename): one line per object,
    /// `atime provider bucket key`, tab-separated, with `\` and newlines in keys escaped.
    pub fn save_atimes(&self, path: &Path) -> Result<()> {
        let tmp = path.with_extension("tmp");
        let io = |e| Error::io(path, e);
        {
            let f = std::fs::File::create(&tmp).map_err(io)?;
            let mut w = std::io::BufWriter::new(f);
            let map = self.buckets.read().unwrap_or_else(|e| e.into_inner());
            for (bck, keys) in map.iter().filter(|(b, _)| b.is_remote()) {
                for (key, e) in keys {
                    let key = key.replace('\\', "\\\\").replace('\n', "\\n");
                    let atime = e.atime.load(Ordering::Relaxed);
                    writeln!(w, "{atime}\t{}\t{}\t{key}", bck.provider.as_str(), bck.name).map_err(io)?;
                }
            }
            w.flush().map_err(io)?;
        }
        std::fs::rename(&tmp, path).map_err(io)
    }

    fn load_atimes(path: &Path) -> HashMap<Key, i64> {
        let mut out = HashMap::new();
        let Ok(f) = std::fs::File::open(path) else { return out };
        for line in std::io::BufReader::new(f).lines().map_while(std::io::Result::ok) {
            let mut parts = line.splitn(4, '\t');
            let (Some(t), Some(p), Some(b), Some(k)) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
                continue;
            };
            let (Ok(t), Ok(p)) = (t.parse::<i64>(), p.parse()) else { continue };
            let key = unescape(k);
            out.insert((Bck { provider: p, ns: Default::default(), name: b.to_owned() }, key), t);
        }
        out
    }
}

impl Store {
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// Fills the index from the objects on disk of `buckets`, with access times from `atimes` (objects not in
    /// it count as accessed when last modified). Runs while the node serves; entries the node adds meanwhile are
    /// kept (a commit during the scan is newer than what the scan read).
    pub fn rebuild_index(&self, buckets: &[Bck], atimes: &Path) -> Result<()> {
        let saved = Index::load_atimes(atimes);
        for bck in buckets {
            self.scan_in(bck, &saved)?;
        }
        self.index.complete.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Adds every object of `bck` on disk to the index, in one pass over its directories (no ordering work, one
    /// `stat` per object: an object's file holds exactly its bytes), and from then on lists the bucket from
    /// the index.
    pub(crate) fn scan_in(&self, bck: &Bck, saved: &HashMap<Key, i64>) -> Result<()> {
        let _one = self.index.scanning.lock().unwrap_or_else(|e| e.into_inner());
        if self.index.is_scanned(bck) {
            return Ok(());
        }
        for mp in 0..self.mountpaths().len() {
            let root = self.objects_root(mp, bck);
            crate::list::each_object(&root, &mut |key, path| {
                let atime = saved.get(&(bck.clone(), key.clone())).copied();
                // Under the tree lock, as commits and deletes update the index: an object deleted since the
                // directory was read is not added back.
                let _tree = self.lock_tree();
                let stat = match std::fs::symlink_metadata(&path) {
                    Ok(m) => m,
                    Err(e) if crate::store::is_missing(&e) => return Ok(()),
                    Err(e) => return Err(Error::io(&path, e)),
                };
                let mtime_ns = stat
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_nanos() as i64);
                self.index.put_if(bck, &key, stat.len(), atime.unwrap_or(mtime_ns), false);
                Ok(())
            })?;
        }
        self.index.scanned.write().unwrap_or_else(|e| e.into_inner()).insert(bck.clone());
        Ok(())
    }

    /// Drops `key` from the index if its object is not on disk (checked under the tree lock, which commits hold
    /// while they add to the index).
    pub(crate) fn drop_if_absent(&self, bck: &Bck, key: &str) {
        let _tree = self.lock_tree();
        if matches!(self.try_open(bck, key), Err(Error::NotFound)) {
            self.index.removed(bck, key);
        }
    }

    /// Evicts cached copies, least recently used first, until at most `target` bytes of objects remain (or
    /// nothing evictable is left). `protected_until(bck)` gives, per bucket, the access time (ns) after which a
    /// copy is spared (`now - dont_evict_time`), or `None` when the bucket's LRU is off. Returns bytes freed.
    pub fn evict(&self, target: u64, protected_until: impl Fn(&Bck) -> Option<i64>) -> Result<u64> {
        let mut candidates: Vec<(i64, Key, u64)> = {
            let map = self.index.buckets.read().unwrap_or_else(|e| e.into_inner());
            map.iter()
                .filter(|(b, _)| b.is_remote())
                .filter_map(|(b, keys)| protected_until(b).map(|limit| (b, keys, limit)))
                .flat_map(|(b, keys, limit)| {
                    keys.iter().filter_map(move |(k, e)| {
                        let atime = e.atime.load(Ordering::Relaxed);
                        (atime < limit).then(|| (atime, (b.clone(), k.to_string()), e.size.load(Ordering::Relaxed)))
                    })
                })
                .collect()
        };
        candidates.sort_by_key(|c| c.0);
        let mut freed = 0;
        for (_, (bck, key), size) in candidates {
            if self.index.total.load(Ordering::Relaxed) <= target {
                break;
            }
            if self.delete(&bck, &key)? {
                freed += size;
                self.index.evicted_objects.fetch_add(1, Ordering::Relaxed);
                self.index.evicted_bytes.fetch_add(size, Ordering::Relaxed);
            }
        }
        Ok(freed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ObjMeta;

    fn put(store: &Store, bck: &Bck, key: &str, size: usize) {
        let mut staged = store.stage(bck, key).unwrap();
        std::io::Write::write_all(&mut staged.file, &vec![7u8; size]).unwrap();
        let meta = ObjMeta { key: key.into(), size: size as u64, etag: "e".into(), mtime_ms: 1, ..Default::default() };
        store.commit(staged, bck, key, &meta).unwrap();
    }

    #[test]
    fn evicts_oldest_cached_copies_only_and_survives_restart() {
        let dir = tempfile::tempdir().unwrap();
        let mp = dir.path().join("mp");
        let store = Store::open(std::slice::from_ref(&mp), false).unwrap();
        let cloud: Bck = "s3://origin".parse().unwrap();
        let local = Bck::ais("mine");
        put(&store, &local, "primary", 1000);
        for i in 0..5 {
            put(&store, &cloud, &format!("c{i}"), 100);
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        store.open_object(&cloud, "c0").unwrap(); // c0 becomes the most recent
        let u = store.index().usage();
        assert_eq!((u.total, u.evictable, u.objects), (1500, 500, 6));

        // Down to 1300 bytes: the two oldest copies go (c1, c2), never the local object.
        let freed = store.evict(1300, |_| Some(now_ns())).unwrap();
        assert_eq!(freed, 200);
        for (k, present) in [("c0", true), ("c1", false), ("c2", false), ("c3", true), ("c4", true)] {
            assert_eq!(store.head(&cloud, k).is_ok(), present, "{k}");
        }
        assert!(store.head(&local, "primary").is_ok());
        // Protected buckets keep their copies.
        assert_eq!(store.evict(0, |_| None).unwrap(), 0);
        assert_eq!(store.index().usage().total, 1300);

        // Access times saved and read back: after a restart the order is the same.
        let atimes = dir.path().join("atime.tsv");
        store.index().save_atimes(&atimes).unwrap();
        drop(store);
        let store = Store::open(&[mp], false).unwrap();
        store.rebuild_index(&[cloud.clone(), local.clone()], &atimes).unwrap();
        let u = store.index().usage();
        assert_eq!((u.total, u.evictable, u.objects, u.complete), (1300, 300, 4, true));
        store.evict(1200, |_| Some(now_ns())).unwrap();
        assert!(store.head(&cloud, "c3").is_err(), "c3 was the oldest");
        assert!(store.head(&cloud, "c0").is_ok() && store.head(&cloud, "c4").is_ok());
    }

    #[test]
    fn key_escaping_round_trips() {
        for k in ["plain", "a\\b", "new\nline", "tail\\", "\\n literally"] {
            let escaped = k.replace('\\', "\\\\").replace('\n', "\\n");
            assert_eq!(unescape(&escaped), k);
        }
    }
}
