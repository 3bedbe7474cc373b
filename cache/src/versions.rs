//! Versions of the objects of S3-versioned buckets.
//!
//! The current version of a key stays where an unversioned object lives (`%ob/<key path>`), so reads of the
//! latest version, listings of current objects, the LRU index and the fast path see no difference. Every other
//! version, and every delete marker, is a file `%ve/<key path>/%%obj/<version id>` on the key's mountpath (with
//! its metadata in the same xattr as any object): archiving a version is a rename out of `%ob`, promoting one a
//! rename back. Under the tree lock this invariant holds: when the newest version of a key is an object, it is
//! the one in `%ob`; otherwise `%ob` has nothing for the key and the newest entry in `%ve` is a delete marker.
//!
//! A write's metadata says what it does: no version id (a bucket never versioned) overwrites as before; a new id
//! (versioning enabled) archives the current version first; the id `null` (versioning suspended) replaces the
//! key's null version, wherever it is, and archives a current version that has an id.

use std::fs::{self, File};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use trove_namespace::Bck;

use crate::layout::{self, escape_segment, DIR_OBJECT};
use crate::list::walk;
use crate::meta::ObjMeta;
use crate::store::{create_dirs, is_missing, prune_empty_dirs, sync_dir, Store};
use crate::{Error, Result};

/// Noncurrent versions and delete markers of a bucket.
pub const VERSIONS_DIR: &str = "%ve";
/// The version id of an object written while versioning was never enabled or suspended.
pub const NULL_VERSION: &str = "null";

/// A new version id and its time (ns since the Unix epoch, strictly increasing within this process): 16 hex
/// digits of the time, then 16 random ones.
pub fn new_version() -> (String, u64) {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = u64::try_from(crate::lru::now_ns()).unwrap_or(0);
    let prev = LAST.fetch_update(Ordering::AcqRel, Ordering::Acquire, |last| Some(now.max(last + 1))).unwrap_or(0);
    let vt = now.max(prev + 1);
    (format!("{vt:016x}{:016x}", rand::random::<u64>()), vt)
}

/// Whether `id` can name a version: `null`, or an id [`new_version`] makes. Anything else would be a path
/// component chosen by the client.
pub fn valid_version_id(id: &str) -> bool {
    id == NULL_VERSION || (id.len() == 32 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

/// A key's versions, newest first.
pub type Versions = Vec<ObjMeta>;

impl Store {
    fn versions_root(&self, mp: usize, bck: &Bck) -> PathBuf {
        layout::bucket_dir(&self.mountpaths()[mp].root, bck).join(VERSIONS_DIR)
    }

    /// `(versions root, the key's version directory)` on the key's mountpath.
    fn version_dir(&self, bck: &Bck, key: &str) -> (PathBuf, PathBuf) {
        let root = self.versions_root(self.mountpath_index(bck, key), bck);
        let dir = root.join(layout::key_path(key).0).join(DIR_OBJECT);
        (root, dir)
    }

    /// Creates the key's version directory (and `%%seg` files for hashed segments, the last one included: the
    /// version directory is where listings learn the key from). Caller holds the tree lock.
    fn ensure_version_dir(&self, bck: &Bck, key: &str, dirty: &mut Vec<PathBuf>) -> Result<PathBuf> {
        let (root, _) = self.version_dir(bck, key);
        create_dirs(&root, dirty)?;
        let mut cur = root;
        let segs = key.split('/').map(|s| (escape_segment(s), Some(s))).chain([((DIR_OBJECT.into(), false), None)]);
        for ((name, hashed), seg) in segs {
            cur.push(name);
            match fs::create_dir(&cur) {
                Ok(()) => {
                    dirty.extend(cur.parent().map(Path::to_path_buf));
                    if let Some(seg) = seg.filter(|_| hashed) {
                        self.write_segment(&cur, seg)?;
                        dirty.push(cur.clone());
                    }
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                Err(e) => return Err(Error::io(&cur, e)),
            }
        }
        Ok(cur)
    }

    /// The current version of `key` (the object in `%ob`), with its path. Caller holds the tree lock.
    fn current(&self, bck: &Bck, key: &str) -> Result<Option<(PathBuf, ObjMeta)>> {
        let p = match self.locate(bck, key) {
            Ok(p) => p,
            Err(Error::NotFound) => return Ok(None),
            Err(e) => return Err(e),
        };
        match ObjMeta::read_at(&p) {
            Ok(m) => Ok(Some((p, m))),
            Err(Error::Io { source, .. }) if is_missing(&source) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Before `new` becomes the current version of `key`: archives the current version unless `new` replaces
    /// it (both null), and drops an archived null version that a new null one replaces. Caller holds the tree
    /// lock; directories whose entries changed are added to `dirty`.
    pub(crate) fn make_way(&self, bck: &Bck, key: &str, new: &ObjMeta, dirty: &mut Vec<PathBuf>) -> Result<()> {
        let new_id = new.version_id();
        if let Some((p, cur)) = self.current(bck, key)? {
            if cur.version_id() != new_id {
                // A link, not a rename: the current version stays in place until the new object's rename
                // replaces it, so a crash in between leaves it current (and archived twice, which reads
                // ignore) rather than leave the key with no current version.
                let dir = self.ensure_version_dir(bck, key, dirty)?;
                let to = dir.join(cur.version_id());
                match fs::hard_link(&p, &to) {
                    Ok(()) => {}
                    Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                        fs::remove_file(&to).map_err(|e| Error::io(&to, e))?;
                        fs::hard_link(&p, &to).map_err(|e| Error::io(&to, e))?;
                    }
                    Err(e) => return Err(Error::io(&to, e)),
                }
                dirty.push(dir);
            }
        }
        if new_id == NULL_VERSION {
            let (_, dir) = self.version_dir(bck, key);
            match fs::remove_file(dir.join(NULL_VERSION)) {
                Ok(()) => dirty.push(dir),
                Err(e) if is_missing(&e) => {}
                Err(e) => return Err(Error::io(&dir, e)),
            }
        }
        Ok(())
    }

    /// Where a version committed now must sort to be the key's newest, when its stamp does not already put it
    /// there. S3 orders versions by when their writes complete, while Trove stamps a write when it arrives: of
    /// two writes racing on a key, the later stamped can finish first, and the other must still become the
    /// newest (the current object and the listing's first entry). Caller holds the tree lock.
    fn later_order(&self, bck: &Bck, key: &str, new: &ObjMeta) -> Result<Option<u64>> {
        let newest = match self.current(bck, key)? {
            Some((_, cur)) => Some(cur.version_order()),
            None => Self::archived(&self.version_dir(bck, key).1)?.first().map(|(_, m)| m.version_order()),
        };
        Ok(newest.filter(|&n| n >= new.version_order()).map(|n| n + 1))
    }

    /// Makes the staged version `meta` sort after every version of `key` (see [`Store::later_order`]),
    /// rewriting its metadata when it must move. Caller holds the tree lock.
    pub(crate) fn order_last(&self, bck: &Bck, key: &str, meta: &ObjMeta, file: &File, path: &Path) -> Result<()> {
        if let Some(vt) = self.later_order(bck, key, meta)? {
            let mut moved = meta.clone();
            moved.vt = vt;
            moved.write_to(file, path)?;
        }
        Ok(())
    }

    /// The archived versions in `dir`, newest first, with their paths.
    fn archived(dir: &Path) -> Result<Vec<(PathBuf, ObjMeta)>> {
        let entries = match fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if is_missing(&e) => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(dir, e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let path = entry.map_err(|e| Error::io(dir, e))?.path();
            match ObjMeta::read_at(&path) {
                Ok(m) => out.push((path, m)),
                Err(Error::Io { source, .. }) if is_missing(&source) => {}
                Err(e) => return Err(e),
            }
        }
        out.sort_by_key(|(_, m)| std::cmp::Reverse(m.version_order()));
        Ok(out)
    }

    /// Makes `marker` (a delete marker with its version id) the newest version of `key`.
    pub fn place_delete_marker(&self, bck: &Bck, key: &str, marker: &ObjMeta) -> Result<()> {
        let mp = self.mountpath_index(bck, key);
        let mut staged = self.stage_on(mp)?;
        marker.write_to(&staged.file, staged.path())?;
        if self.fsync() {
            self.sync_file(mp, &staged.file, staged.path())?;
        }
        let mut dirty = Vec::new();
        {
            let _tree = self.lock_tree();
            staged.check_guard()?;
            self.order_last(bck, key, marker, &staged.file, staged.path())?;
            self.make_way(bck, key, marker, &mut dirty)?;
            let dir = self.ensure_version_dir(bck, key, &mut dirty)?;
            let to = dir.join(marker.version_id());
            fs::rename(staged.path(), &to).map_err(|e| Error::io(&to, e))?;
            staged.mark_done();
            dirty.push(dir);
            // Archived (or replaced, for a null marker over a null object) above: the key's place empties last.
            if let Some((p, _)) = self.current(bck, key)? {
                self.unlink_current(bck, key, &p, &mut dirty)?;
            }
        }
        self.sync_dirs(mp, dirty)
    }

    /// Removes the version `vid` of `key` for good, if `check` accepts it (under the tree lock), and returns
    /// it. When it was the newest, the next one becomes current (an object moves back into place).
    pub fn remove_version(
        &self,
        bck: &Bck,
        key: &str,
        vid: &str,
        check: impl FnOnce(&ObjMeta) -> Result<()>,
    ) -> Result<ObjMeta> {
        let mp = self.mountpath_index(bck, key);
        let mut dirty = Vec::new();
        let removed = {
            let _tree = self.lock_tree();
            let (vroot, dir) = self.version_dir(bck, key);
            let current = self.current(bck, key)?;
            let target = match &current {
                Some((_, cur)) if cur.version_id() == vid => cur.clone(),
                _ => match ObjMeta::read_at(&dir.join(vid)) {
                    Ok(m) => m,
                    Err(Error::Io { source, .. }) if is_missing(&source) => return Err(Error::NoSuchVersion),
                    Err(e) => return Err(e),
                },
            };
            check(&target)?;
            let removed = match current {
                Some((p, cur)) if cur.version_id() == vid => {
                    // The next version, when it is an object, replaces the current one in one rename.
                    let next = Self::archived(&dir)?.into_iter().find(|(_, m)| m.version_id() != vid);
                    match next {
                        Some((from, m)) if !m.delete_marker => {
                            fs::rename(&from, &p).map_err(|e| Error::io(&from, e))?;
                            dirty.push(dir.clone());
                            dirty.extend(p.parent().map(Path::to_path_buf));
                            self.index.committed(bck, key, m.size);
                            self.handles.changed(bck, key);
                        }
                        _ => self.unlink_current(bck, key, &p, &mut dirty)?,
                    }
                    // A copy archived by a write that a crash interrupted.
                    let _ = fs::remove_file(dir.join(vid));
                    cur
                }
                _ => {
                    let p = dir.join(vid);
                    let m = match ObjMeta::read_at(&p) {
                        Ok(m) => m,
                        Err(Error::Io { source, .. }) if is_missing(&source) => return Err(Error::NoSuchVersion),
                        Err(e) => return Err(e),
                    };
                    fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
                    dirty.push(dir.clone());
                    m
                }
            };
            self.settle(bck, key, &mut dirty)?;
            prune_empty_dirs(&vroot, Some(&dir))?;
            removed
        };
        self.sync_dirs(mp, dirty)?;
        Ok(removed)
    }

    /// Removes the current object file `p` of `key` from its place. Caller holds the tree lock.
    fn unlink_current(&self, bck: &Bck, key: &str, p: &Path, dirty: &mut Vec<PathBuf>) -> Result<()> {
        fs::remove_file(p).map_err(|e| Error::io(p, e))?;
        dirty.extend(p.parent().map(Path::to_path_buf));
        self.index.removed(bck, key);
        self.handles.changed(bck, key);
        prune_empty_dirs(&self.objects_root(self.mountpath_index(bck, key), bck), p.parent())
    }

    /// Restores the invariant after a removal: with no current object, the newest archived version moves
    /// back into place when it is an object. Caller holds the tree lock.
    fn settle(&self, bck: &Bck, key: &str, dirty: &mut Vec<PathBuf>) -> Result<()> {
        if self.current(bck, key)?.is_some() {
            return Ok(());
        }
        let (_, dir) = self.version_dir(bck, key);
        let Some((from, newest)) = Self::archived(&dir)?.into_iter().next() else { return Ok(()) };
        if newest.delete_marker {
            return Ok(());
        }
        let mp = self.mountpath_index(bck, key);
        let root = self.objects_root(mp, bck);
        let (rel, hashed_dirs) = layout::key_path(key);
        let target = self.prepare_parents(mp, &root, &rel, &hashed_dirs, dirty)?;
        let target = match fs::symlink_metadata(&target) {
            Ok(m) if m.is_dir() => target.join(DIR_OBJECT),
            _ => target,
        };
        fs::rename(&from, &target).map_err(|e| Error::io(&from, e))?;
        dirty.push(dir);
        dirty.extend(target.parent().map(Path::to_path_buf));
        self.index.committed(bck, key, newest.size);
        self.handles.changed(bck, key);
        Ok(())
    }

    /// Makes the renames of a version change durable (one filesystem sync under group commit).
    fn sync_dirs(&self, mp: usize, mut dirty: Vec<PathBuf>) -> Result<()> {
        if !self.fsync() {
            return Ok(());
        }
        if let Some(group) = self.group_sync(mp) {
            let root = &self.mountpaths()[mp].root;
            return group.sync().map_err(|e| Error::io(root, e));
        }
        dirty.sort();
        dirty.dedup();
        // Deepest first, so that a directory's entry is durable after the directory's own contents.
        for d in dirty.iter().rev().filter(|d| d.exists()) {
            sync_dir(d)?;
        }
        Ok(())
    }

    /// Opens version `vid` of `key` (the current object when it has that id). A delete marker opens too: the
    /// caller decides what reading one means.
    pub fn open_version(&self, bck: &Bck, key: &str, vid: &str) -> Result<(File, ObjMeta)> {
        let _tree = self.lock_tree();
        let path = match self.current(bck, key)? {
            Some((p, cur)) if cur.version_id() == vid => p,
            _ => self.version_dir(bck, key).1.join(vid),
        };
        let file =
            File::open(&path).map_err(|e| if is_missing(&e) { Error::NoSuchVersion } else { Error::io(&path, e) })?;
        let meta = ObjMeta::read_from(&file, &path)?;
        Ok((file, meta))
    }

    /// The delete marker that hides `key`, if its newest version is one. A key found without a current object
    /// while its newest version is one (a removal a crash interrupted) gets it back first.
    pub fn current_marker(&self, bck: &Bck, key: &str) -> Result<Option<ObjMeta>> {
        let _tree = self.lock_tree();
        let mut dirty = Vec::new();
        self.settle(bck, key, &mut dirty)?;
        if self.current(bck, key)?.is_some() {
            return Ok(None);
        }
        let (_, dir) = self.version_dir(bck, key);
        Ok(Self::archived(&dir)?.into_iter().next().map(|(_, m)| m).filter(|m| m.delete_marker))
    }

    /// Every version of `key`, newest first.
    pub fn versions_of(&self, bck: &Bck, key: &str) -> Result<Versions> {
        let _tree = self.lock_tree();
        let (_, dir) = self.version_dir(bck, key);
        let mut all: Versions = self.current(bck, key)?.map(|(_, m)| m).into_iter().collect();
        let current = all.first().map(|m| m.version_id().to_owned());
        // An archived copy of the current version is a write's link that a crash left behind.
        all.extend(
            Self::archived(&dir)?.into_iter().map(|(_, m)| m).filter(|m| Some(m.version_id()) != current.as_deref()),
        );
        all.sort_by_key(|m| std::cmp::Reverse(m.version_order()));
        Ok(all)
    }

    /// Rewrites the metadata of version `vid` of `key` (the current object without one) in place, when
    /// `change` accepts it (tags, ACL, retention).
    pub fn update_version_meta(
        &self,
        bck: &Bck,
        key: &str,
        vid: Option<&str>,
        change: impl FnOnce(&mut ObjMeta) -> Result<()>,
    ) -> Result<ObjMeta> {
        let _tree = self.lock_tree();
        let path = match (self.current(bck, key)?, vid) {
            (Some((p, _)), None) => p,
            (None, None) => return Err(Error::NotFound),
            (Some((p, cur)), Some(vid)) if cur.version_id() == vid => p,
            (_, Some(vid)) => self.version_dir(bck, key).1.join(vid),
        };
        let mut meta = match ObjMeta::read_at(&path) {
            Ok(m) => m,
            Err(Error::Io { source, .. }) if is_missing(&source) => return Err(Error::NoSuchVersion),
            Err(e) => return Err(e),
        };
        change(&mut meta)?;
        meta.write_at(&path)?;
        self.handles.changed(bck, key);
        Ok(meta)
    }

    /// Up to `limit` keys of `bck` after `start` with `prefix` that have any version (current or not), in
    /// order, each with all its versions, newest first.
    pub fn list_versioned(
        &self,
        bck: &Bck,
        start: &[u8],
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<(String, Versions)>> {
        let mut keys: Vec<Vec<u8>> =
            self.list(bck, start, prefix, limit)?.into_iter().map(|(k, _)| k.into_bytes()).collect();
        for mp in 0..self.mountpaths().len() {
            let mut out = Vec::new();
            walk(&self.versions_root(mp, bck), &[], start, prefix.as_bytes(), limit, &mut out)?;
            keys.extend(out.into_iter().map(|(k, _)| k));
        }
        keys.sort();
        keys.dedup();
        keys.truncate(limit);
        let mut listed = Vec::with_capacity(keys.len());
        for key in keys {
            let key = String::from_utf8(key).map_err(|_| Error::Internal("a listed key is not UTF-8".into()))?;
            let versions = self.versions_of(bck, &key)?;
            if !versions.is_empty() {
                listed.push((key, versions));
            }
        }
        Ok(listed)
    }

    /// Whether any mountpath keeps noncurrent versions or delete markers of `bck`.
    pub(crate) fn has_versions(&self, bck: &Bck) -> Result<bool> {
        for mp in 0..self.mountpaths().len() {
            let root = self.versions_root(mp, bck);
            match fs::read_dir(&root) {
                Ok(mut entries) => {
                    if entries.next().is_some() {
                        return Ok(true);
                    }
                }
                Err(e) if is_missing(&e) => {}
                Err(e) => return Err(Error::io(&root, e)),
            }
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn put(store: &Store, bck: &Bck, key: &str, body: &str, vid: Option<&str>) -> ObjMeta {
        let mut st = store.stage(bck, key).unwrap();
        st.file.write_all(body.as_bytes()).unwrap();
        let (id, vt) = new_version();
        let meta = ObjMeta {
            key: key.into(),
            size: body.len() as u64,
            etag: body.into(),
            vid: vid.map(|v| if v == "new" { id } else { v.to_owned() }),
            vt,
            ..Default::default()
        };
        store.commit(st, bck, key, &meta).unwrap();
        meta
    }

    fn marker(key: &str, vid: Option<String>) -> ObjMeta {
        let (id, vt) = new_version();
        ObjMeta { key: key.into(), vid: Some(vid.unwrap_or(id)), vt, delete_marker: true, ..Default::default() }
    }

    fn ids(v: &Versions) -> Vec<String> {
        v.iter().map(|m| format!("{}{}", m.etag, if m.delete_marker { "(dm)" } else { "" })).collect()
    }

    #[test]
    fn versions_archive_promote_and_list() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&[dir.path().join("a"), dir.path().join("b")], false).unwrap();
        let bck = Bck::ais("b");
        let long = format!("{}/x", "d".repeat(300));
        for key in ["k", "k/sub", long.as_str()] {
            put(&store, &bck, key, "v0", None); // from before versioning: the null version
            let v1 = put(&store, &bck, key, "v1", Some("new"));
            let v2 = put(&store, &bck, key, "v2", Some("new"));
            assert_eq!(ids(&store.versions_of(&bck, key).unwrap()), ["v2", "v1", "v0"]);
            assert_eq!(store.head(&bck, key).unwrap().etag, "v2");
            assert_eq!(store.open_version(&bck, key, "null").unwrap().1.etag, "v0");
            assert_eq!(store.open_version(&bck, key, v1.version_id()).unwrap().1.etag, "v1");

            // A delete marker hides the key; removing it brings v2 back.
            let dm = marker(key, None);
            store.place_delete_marker(&bck, key, &dm).unwrap();
            assert!(matches!(store.head(&bck, key), Err(Error::NotFound)));
            assert_eq!(store.current_marker(&bck, key).unwrap().unwrap().vid, dm.vid);
            assert!(store.remove_version(&bck, key, dm.version_id(), |_| Ok(())).unwrap().delete_marker);
            assert_eq!(store.head(&bck, key).unwrap().etag, "v2");

            // Removing the current version promotes the next one.
            store.remove_version(&bck, key, v2.version_id(), |_| Ok(())).unwrap();
            assert_eq!(store.head(&bck, key).unwrap().etag, "v1");
            assert!(matches!(store.remove_version(&bck, key, v2.version_id(), |_| Ok(())), Err(Error::NoSuchVersion)));

            // Suspended: a null write replaces the null version, and archives v1.
            put(&store, &bck, key, "n1", Some("null"));
            assert_eq!(ids(&store.versions_of(&bck, key).unwrap()), ["n1", "v1"]);
            put(&store, &bck, key, "n2", Some("null"));
            assert_eq!(ids(&store.versions_of(&bck, key).unwrap()), ["n2", "v1"]);
            store.place_delete_marker(&bck, key, &marker(key, Some("null".into()))).unwrap();
            assert_eq!(ids(&store.versions_of(&bck, key).unwrap()), ["(dm)", "v1"]);
        }
        let listed = store.list_versioned(&bck, b"", "", 10).unwrap();
        let keys: Vec<&str> = listed.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, [long.as_str(), "k", "k/sub"]);
        assert_eq!(store.list_versioned(&bck, b"k", "", 10).unwrap().len(), 1);
        assert!(!store.bucket_is_empty(&bck).unwrap(), "versions keep a bucket from being empty");

        for (key, versions) in listed {
            for v in versions {
                store.remove_version(&bck, &key, v.version_id(), |_| Ok(())).unwrap();
            }
        }
        assert!(store.bucket_is_empty(&bck).unwrap());
        assert!(store.list_versioned(&bck, b"", "", 10).unwrap().is_empty());
    }

    #[test]
    fn the_last_committed_version_is_the_newest_whatever_its_stamp() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&[dir.path().join("a")], false).unwrap();
        let bck = Bck::ais("b");
        let stamped = |body: &str, dm: bool| {
            let (id, vt) = new_version();
            let size = body.len() as u64;
            ObjMeta {
                key: "k".into(),
                size,
                etag: body.into(),
                vid: Some(id),
                vt,
                delete_marker: dm,
                ..Default::default()
            }
        };
        let commit = |meta: &ObjMeta| {
            let mut st = store.stage(&bck, "k").unwrap();
            st.file.write_all(meta.etag.as_bytes()).unwrap();
            store.commit(st, &bck, "k", meta).unwrap();
        };
        // Stamped in the order a, b, c, d; finished in the order b, a, d (a marker), c.
        let (a, b, c, d) = (stamped("a", false), stamped("b", false), stamped("c", false), stamped("", true));
        commit(&b);
        commit(&a);
        assert_eq!(store.head(&bck, "k").unwrap().etag, "a");
        store.place_delete_marker(&bck, "k", &d).unwrap();
        assert!(matches!(store.head(&bck, "k"), Err(Error::NotFound)));
        assert_eq!(ids(&store.versions_of(&bck, "k").unwrap()), ["(dm)", "a", "b"]);
        commit(&c);
        assert_eq!(store.head(&bck, "k").unwrap().etag, "c");
        assert_eq!(ids(&store.versions_of(&bck, "k").unwrap()), ["c", "(dm)", "a", "b"]);
    }

    #[test]
    fn version_ids_sort_by_age_and_refuse_paths() {
        let (a, ta) = new_version();
        let (b, tb) = new_version();
        assert!(a < b && ta < tb);
        assert!(valid_version_id(&a) && valid_version_id("null"));
        for bad in ["", "../x", "NULL", &a.to_uppercase(), &format!("{a}0"), "%%obj"] {
            assert!(!valid_version_id(bad), "{bad}");
        }
    }
}
