//! Object storage over a node's mountpaths: staged writes published by rename, reads, deletes.
//!
//! Writers stream into a work file under `<mountpath>/%wk`, set the metadata xattr, fsync, and rename the file
//! into place; a crash at any instant leaves the old object or the new one. Changes of the directory tree
//! (commit, delete, turning a file `a` into a directory when `a/b` arrives) are serialized by one lock per store,
//! held for renames and directory changes only: never for fsyncs, recursive deletes or reads. A read that finds
//! nothing while a file->directory conversion runs looks again (a sequence counter tells it), without the lock.
//! All functions here do blocking file I/O: call them from a blocking context.

use std::fs::{self, File};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use trove_namespace::hrw::{self, Member};
use trove_namespace::Bck;

use std::os::unix::ffi::OsStrExt;

use crate::group_sync::{DirSyncs, GroupSync};
use crate::layout::{self, CONVERSION_TARGET, DIR_OBJECT, DIR_SEGMENT, OBJECTS_DIR, WORK_DIR};
use crate::meta::{check_xattr_support, ObjMeta};
use crate::{Error, Open, Result};

/// Asked under the tree lock right before a write is published: is the bucket incarnation the write began in
/// still the registered one? (The registry lives above the store; the gateway supplies the check.)
pub type BucketGuard = Arc<dyn Fn() -> bool + Send + Sync>;

/// A decision on an object's current metadata, taken under the tree lock.
type MetaCheck<'a> = Box<dyn FnOnce(&ObjMeta) -> bool + 'a>;

/// A check of the current object (if any).
type CurrentCheck<'a> = Box<dyn FnOnce(Option<&ObjMeta>) -> Result<()> + 'a>;

/// What a conditional write must pass under the tree lock.
enum Precondition<'a> {
    Current(CurrentCheck<'a>),
    /// A check that needs no lookup.
    Still(Box<dyn Fn() -> bool + 'a>),
}

/// One disk of this node.
#[derive(Debug)]
pub struct Mountpath {
    pub root: PathBuf,
    member: Member,
}

impl Mountpath {
    pub fn work_dir(&self) -> PathBuf {
        self.root.join(WORK_DIR)
    }
}

/// Objects kept open for repeated reads ([`Store::open_cached`]) at most; each holds a file descriptor, so
/// fewer under a low open-file limit (an eighth of it).
const OPEN_OBJECTS: usize = 4096;

/// How many objects [`Store::open_cached`] keeps open under the process's open-file limit.
pub fn open_objects() -> usize {
    let soft = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
    soft.map_or(OPEN_OBJECTS, |n| OPEN_OBJECTS.min(usize::try_from(n / 8).unwrap_or(OPEN_OBJECTS)))
}

#[derive(Debug)]
pub struct Store {
    mountpaths: Vec<Mountpath>,
    members: Vec<Member>,
    fsync: bool,
    tree: Mutex<()>,
    /// Odd while a file->directory conversion runs; bumped at its start and end.
    conversions: AtomicU64,
    pub(crate) index: crate::lru::Index,
    pub(crate) handles: crate::handles::Handles,
    /// One per mountpath under group commit.
    groups: Vec<GroupSync>,
    group_commit: bool,
    /// Directory fsyncs after renames, shared by concurrent writers into the same directory.
    dir_syncs: DirSyncs,
}

/// A write in progress: a work file that becomes an object (or part) on commit and disappears if dropped.
pub struct Staged {
    pub file: File,
    path: PathBuf,
    mountpath: usize,
    done: bool,
    guard: Option<BucketGuard>,
}

impl std::fmt::Debug for Staged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Staged").field("path", &self.path).field("guarded", &self.guard.is_some()).finish()
    }
}

impl Staged {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Publishing fails with [`Error::BucketGone`] unless `guard` still holds at that instant.
    pub fn guard(&mut self, guard: BucketGuard) {
        self.guard = Some(guard);
    }

    /// Called under the tree lock.
    pub(crate) fn check_guard(&self) -> Result<()> {
        match &self.guard {
            Some(g) if !g() => Err(Error::BucketGone),
            _ => Ok(()),
        }
    }

    pub(crate) fn mark_done(&mut self) {
        self.done = true;
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.done {
            let _ = fs::remove_file(&self.path);
        }
    }
}

impl Store {
    /// Opens (creating if needed) the mountpaths, checks they can hold Trove's data, and cleans leftover work files.
    pub fn open(paths: &[PathBuf], fsync: bool) -> Result<Store> {
        let mut mountpaths = Vec::with_capacity(paths.len());
        for p in paths {
            fs::create_dir_all(p).map_err(|e| Error::io(p, e))?;
            let root = fs::canonicalize(p).map_err(|e| Error::io(p, e))?;
            if !fs::metadata(&root).map_err(|e| Error::io(&root, e))?.is_dir() {
                return Err(Error::Unsupported(format!("{}: not a directory", root.display())));
            }
            check_xattr_support(&root)?;
            let member = Member::new(root.to_string_lossy());
            mountpaths.push(Mountpath { root, member });
        }
        let members = mountpaths.iter().map(|m| m.member.clone()).collect();
        let store = Store {
            mountpaths,
            members,
            fsync,
            tree: Mutex::new(()),
            conversions: AtomicU64::new(0),
            index: Default::default(),
            handles: crate::handles::Handles::new(open_objects()),
            groups: Vec::new(),
            group_commit: false,
            dir_syncs: DirSyncs::default(),
        };
        for mp in &store.mountpaths {
            crate::space::clean_work_dir(mp)?;
        }
        Ok(store)
    }

    pub fn mountpaths(&self) -> &[Mountpath] {
        &self.mountpaths
    }

    /// The mountpath that holds `key` of `bck` (HRW over this node's mountpaths, AIS's function).
    pub fn mountpath_index(&self, bck: &Bck, key: &str) -> usize {
        let ns = hrw::ns_uname(&bck.ns.uuid, &bck.ns.name);
        let digest = hrw::object_digest(bck.provider.as_str(), &ns, &bck.name, key);
        hrw::owner(&self.members, digest).unwrap_or(0)
    }

    pub(crate) fn objects_root(&self, mp: usize, bck: &Bck) -> PathBuf {
        layout::bucket_dir(&self.mountpaths[mp].root, bck).join(OBJECTS_DIR)
    }

    pub(crate) fn lock_tree(&self) -> std::sync::MutexGuard<'_, ()> {
        self.tree.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn fsync(&self) -> bool {
        self.fsync
    }

    /// Starts a write of `key` into a work file on the key's mountpath.
    pub fn stage(&self, bck: &Bck, key: &str) -> Result<Staged> {
        self.stage_on(self.mountpath_index(bck, key))
    }

    pub(crate) fn stage_on(&self, mp: usize) -> Result<Staged> {
        let dir = self.mountpaths[mp].work_dir();
        let path = dir.join(format!("{:032x}", rand::random::<u128>()));
        let file = match File::create_new(&path) {
            Err(e) if e.kind() == ErrorKind::NotFound => {
                fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
                File::create_new(&path)
            }
            other => other,
        }
        .map_err(|e| Error::io(&path, e))?;
        Ok(Staged { file, path, mountpath: mp, done: false, guard: None })
    }

    /// Publishes a staged write as `key`: metadata xattr, fsync, rename into place.
    pub fn commit(&self, staged: Staged, bck: &Bck, key: &str, meta: &ObjMeta) -> Result<()> {
        self.publish_object(staged, bck, key, meta, None, true)
    }

    /// Publishes a cached copy of a remote object. The data is synced before the rename (per the store's
    /// fsync setting), so a copy is never torn; the directory is not, because a copy whose rename a crash
    /// undoes is only a cache miss: the backend still has the object.
    /// `still_wanted` is asked under the tree lock, right before the rename; `false` drops the copy with
    /// `PreconditionFailed` (a write overtook the fetch).
    pub fn commit_cached_if(
        &self,
        staged: Staged,
        bck: &Bck,
        key: &str,
        meta: &ObjMeta,
        still_wanted: impl Fn() -> bool,
    ) -> Result<()> {
        self.publish_object(staged, bck, key, meta, Some(Precondition::Still(Box::new(still_wanted))), false)
    }

    /// Like [`Store::commit`], but first checks the current object (if any) with `check` under the tree lock, so a
    /// conditional write (`If-None-Match: *`, `If-Match`) cannot race another writer.
    pub fn commit_if(
        &self,
        staged: Staged,
        bck: &Bck,
        key: &str,
        meta: &ObjMeta,
        check: impl FnOnce(Option<&ObjMeta>) -> Result<()>,
    ) -> Result<()> {
        self.publish_object(staged, bck, key, meta, Some(Precondition::Current(Box::new(check))), true)
    }

    fn publish_object(
        &self,
        mut staged: Staged,
        bck: &Bck,
        key: &str,
        meta: &ObjMeta,
        check: Option<Precondition<'_>>,
        durable_rename: bool,
    ) -> Result<()> {
        meta.write_to(&staged.file, &staged.path)?;
        if self.fsync {
            self.sync_file(staged.mountpath, &staged.file, &staged.path)?;
        }
        let root = self.objects_root(staged.mountpath, bck);
        let (rel, hashed_dirs) = layout::key_path(key);
        let mut dirty = Vec::new();
        let parent = {
            let _tree = self.lock_tree();
            staged.check_guard()?;
            match check {
                Some(Precondition::Current(check)) => {
                    let current = match self.try_open(bck, key) {
                        Ok((_, m)) => Some(m),
                        Err(Error::NotFound) => None,
                        Err(e) => return Err(e),
                    };
                    check(current.as_ref())?;
                }
                Some(Precondition::Still(ok)) if !ok() => return Err(Error::PreconditionFailed),
                Some(Precondition::Still(_)) | None => {}
            }
            // The bucket's first object on this node: nothing of it is on disk that the index lacks, so its
            // listings need no scan (a bucket filled after start-up would otherwise be scanned at its first
            // listing, seconds for a million objects).
            if !self.index.is_scanned(bck) && (0..self.mountpaths.len()).all(|mp| !self.objects_root(mp, bck).exists())
            {
                self.index.mark_scanned(bck);
            }
            if meta.vid.is_some() {
                self.order_last(bck, key, meta, &staged.file, &staged.path)?;
                self.make_way(bck, key, meta, &mut dirty)?;
            }
            let target = self.prepare_parents(staged.mountpath, &root, &rel, &hashed_dirs, &mut dirty)?;
            let target = match fs::symlink_metadata(&target) {
                Ok(m) if m.is_dir() => target.join(DIR_OBJECT),
                _ => target,
            };
            fs::rename(&staged.path, &target).map_err(|e| Error::io(&target, e))?;
            staged.done = true;
            self.index.committed(bck, key, meta.size);
            self.handles.changed(bck, key);
            target.parent().map(Path::to_path_buf)
        };
        // The directory fsync makes the rename durable; it runs after the lock so that slow syncs do not hold
        // up other writers. The caller answers the client only after it returns.
        // New directories (and file->directory conversions) on the way are synced too, deepest first, so the
        // path to the object survives a crash as well as its last entry.
        if self.fsync && durable_rename {
            if let Some(group) = self.group_sync(staged.mountpath) {
                // One filesystem sync covers the rename and every new directory on the way.
                return group.sync().map_err(|e| Error::io(&root, e));
            }
            let dir = parent.as_deref().unwrap_or(&root);
            self.dir_syncs.sync(dir).map_err(|e| Error::io(dir, e))?;
            for d in dirty.iter().rev() {
                sync_dir(d)?;
            }
        }
        Ok(())
    }

    /// Creates the directories above `rel`, turning a file that stands where a directory must be into
    /// `dir/%%obj`. Caller holds the tree lock. Directories whose entries changed are added to `dirty`, for
    /// the caller to sync after the lock.
    pub(crate) fn prepare_parents(
        &self,
        mp: usize,
        root: &Path,
        rel: &Path,
        hashed_dirs: &[(usize, String)],
        dirty: &mut Vec<PathBuf>,
    ) -> Result<PathBuf> {
        let mut cur = root.to_path_buf();
        if !cur.is_dir() {
            create_dirs(&cur, dirty)?;
        }
        let comps: Vec<_> = rel.components().collect();
        for (i, c) in comps.iter().enumerate() {
            cur.push(c);
            if i + 1 == comps.len() {
                break;
            }
            match fs::symlink_metadata(&cur) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    self.file_to_dir(mp, &cur)?;
                    dirty.push(cur.clone());
                    dirty.extend(cur.parent().map(Path::to_path_buf));
                }
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    fs::create_dir(&cur).map_err(|e| Error::io(&cur, e))?;
                    dirty.extend(cur.parent().map(Path::to_path_buf));
                    if let Some((_, seg)) = hashed_dirs.iter().find(|(idx, _)| *idx == i) {
                        self.write_segment(&cur, seg)?;
                        dirty.push(cur.clone());
                    }
                }
                Err(e) => return Err(Error::io(&cur, e)),
            }
        }
        Ok(cur)
    }

    /// Records the full segment of hashed directory `dir` in its `%%seg` file.
    pub(crate) fn write_segment(&self, dir: &Path, seg: &str) -> Result<()> {
        let p = dir.join(DIR_SEGMENT);
        let write = || -> std::io::Result<()> {
            let mut f = File::create(&p)?;
            std::io::Write::write_all(&mut f, seg.as_bytes())?;
            if self.fsync {
                f.sync_all()?;
            }
            Ok(())
        };
        write().map_err(|e| Error::io(&p, e))
    }

    /// Replaces file `path` by a directory holding it as `%%obj`, via a work directory so that a crash in
    /// between is repaired at start-up (see `space::clean_work_dir`).
    fn file_to_dir(&self, mp: usize, path: &Path) -> Result<()> {
        self.conversions.fetch_add(1, Ordering::AcqRel);
        let res = self.file_to_dir_inner(mp, path);
        self.conversions.fetch_add(1, Ordering::AcqRel);
        res
    }

    fn file_to_dir_inner(&self, mp: usize, path: &Path) -> Result<()> {
        let tmp = self.mountpaths[mp].work_dir().join(format!("conv-{:032x}", rand::random::<u128>()));
        fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
        fs::write(tmp.join(CONVERSION_TARGET), path.as_os_str().as_bytes()).map_err(|e| Error::io(&tmp, e))?;
        fs::rename(path, tmp.join(DIR_OBJECT)).map_err(|e| Error::io(path, e))?;
        fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
        let _ = fs::remove_file(path.join(CONVERSION_TARGET));
        Ok(())
    }

    /// Makes a written file durable: a shared filesystem sync under group commit, else its own fsync.
    pub(crate) fn sync_file(&self, mp: usize, file: &File, path: &Path) -> Result<()> {
        match self.group_sync(mp) {
            Some(group) => group.sync().map_err(|e| Error::io(path, e)),
            None => file.sync_all().map_err(|e| Error::io(path, e)),
        }
    }

    pub(crate) fn group_sync(&self, mp: usize) -> Option<&GroupSync> {
        self.group_commit.then(|| self.groups.get(mp)).flatten()
    }

    /// Group commit (`storage.group_commit`): concurrent writes on a mountpath share one filesystem sync for
    /// their data and one for their renames, instead of an fsync of each file and each directory.
    pub fn set_group_commit(&mut self, on: bool) -> Result<()> {
        self.groups = Vec::new();
        if on {
            for m in &self.mountpaths {
                self.groups.push(GroupSync::open(&m.root).map_err(|e| Error::io(&m.root, e))?);
            }
        }
        self.group_commit = on;
        Ok(())
    }

    /// Path of the object `key`, following `%%obj` when the key's path is a directory.
    pub(crate) fn locate(&self, bck: &Bck, key: &str) -> Result<PathBuf> {
        let root = self.objects_root(self.mountpath_index(bck, key), bck);
        let p = root.join(layout::key_path(key).0);
        match fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => Ok(p.join(DIR_OBJECT)),
            Ok(_) => Ok(p),
            Err(e) if is_missing(&e) => Err(Error::NotFound),
            Err(e) => Err(Error::io(&p, e)),
        }
    }

    /// An object opened for reading, from the handles kept for recent reads when it is there (an LRU access
    /// either way). The open file stays valid even if the object is replaced or deleted.
    pub fn open_cached(&self, bck: &Bck, key: &str) -> Result<Arc<Open>> {
        if let Some(open) = self.handles.get(bck, key) {
            // Access times a second apart rank the same for eviction: a hot object updates the index (a
            // lookup in its bucket's key tree) at most once a second.
            let now = crate::lru::now_ns();
            if now - open.touched.load(Ordering::Relaxed) >= 1_000_000_000 {
                open.touched.store(now, Ordering::Relaxed);
                self.index.touch(bck, key);
            }
            return Ok(open);
        }
        let generation = self.handles.generation(bck, key);
        let (file, meta) = self.open_object(bck, key)?;
        let open = Arc::new(Open::new(file, meta));
        self.handles.keep(bck, key, generation, open.clone());
        Ok(open)
    }

    /// Opens an object for reading. The open file stays valid even if the object is replaced or deleted.
    pub fn open_object(&self, bck: &Bck, key: &str) -> Result<(File, ObjMeta)> {
        let opened = self.open_object_untouched(bck, key);
        if opened.is_ok() {
            self.index.touch(bck, key);
        }
        opened
    }

    /// Opens an object without counting it as used (no LRU touch): for moving it, not serving it.
    pub fn open_object_untouched(&self, bck: &Bck, key: &str) -> Result<(File, ObjMeta)> {
        self.unhidden(|| self.try_open(bck, key))
    }

    /// Runs a lookup; a miss that overlapped a file->directory conversion (which hides an object for an
    /// instant) is looked up again, so that a miss is reported only when no conversion could explain it.
    fn unhidden<T>(&self, mut lookup: impl FnMut() -> Result<T>) -> Result<T> {
        let mut tries = 0;
        loop {
            let before = self.conversions.load(Ordering::Acquire);
            let res = lookup();
            match res {
                Err(Error::NotFound | Error::Corrupt { .. }) => {
                    let after = self.conversions.load(Ordering::Acquire);
                    tries += 1;
                    if (before == after && before.is_multiple_of(2)) || tries > 1000 {
                        return res;
                    }
                    std::thread::yield_now();
                }
                other => return other,
            }
        }
    }

    pub(crate) fn try_open(&self, bck: &Bck, key: &str) -> Result<(File, ObjMeta)> {
        // Open the key's path directly (`open_at` follows a directory to its `%%obj`): one system call fewer
        // than `locate` on the read path.
        let root = self.objects_root(self.mountpath_index(bck, key), bck);
        open_at(root.join(layout::key_path(key).0))
    }

    /// The metadata of the object whose file was found at `path` by a directory scan. Like reads, it looks
    /// again under the tree lock when a concurrent file->directory conversion hides the object.
    pub(crate) fn meta_at(&self, path: &Path) -> Result<ObjMeta> {
        self.unhidden(|| open_at(path.to_path_buf()).map(|(_, m)| m))
    }

    /// The metadata of an object; not an access for LRU.
    pub fn head(&self, bck: &Bck, key: &str) -> Result<ObjMeta> {
        self.open_object_untouched(bck, key).map(|(_, m)| m)
    }

    /// Rewrites an object's metadata in place (tags); atomic because one xattr set is.
    pub fn update_meta(&self, bck: &Bck, key: &str, change: impl FnOnce(&mut ObjMeta)) -> Result<ObjMeta> {
        let _tree = self.lock_tree();
        let p = self.locate(bck, key)?;
        let mut meta = ObjMeta::read_at(&p).map_err(|e| match e {
            Error::Io { source, .. } if is_missing(&source) => Error::NotFound,
            other => other,
        })?;
        change(&mut meta);
        meta.write_at(&p)?;
        self.handles.changed(bck, key);
        Ok(meta)
    }

    /// Deletes an object; `Ok(false)` when it did not exist. Empty directories left behind are removed.
    pub fn delete(&self, bck: &Bck, key: &str) -> Result<bool> {
        self.delete_checked(bck, key, None)
    }

    /// Deletes an object if `check` accepts its current metadata (read under the tree lock, so no write slips
    /// in between); `Ok(false)` when it did not exist or `check` refused.
    pub fn delete_if(&self, bck: &Bck, key: &str, check: impl FnOnce(&ObjMeta) -> bool) -> Result<bool> {
        self.delete_checked(bck, key, Some(Box::new(check)))
    }

    fn delete_checked(&self, bck: &Bck, key: &str, check: Option<MetaCheck<'_>>) -> Result<bool> {
        let mp = self.mountpath_index(bck, key);
        let root = self.objects_root(mp, bck);
        let p = {
            let _tree = self.lock_tree();
            let p = match self.locate(bck, key) {
                Ok(p) => p,
                Err(Error::NotFound) => return Ok(false),
                Err(e) => return Err(e),
            };
            if let Some(check) = check {
                if !check(&ObjMeta::read_at(&p)?) {
                    return Ok(false);
                }
            }
            match fs::remove_file(&p) {
                Ok(()) => {
                    self.index.removed(bck, key);
                    self.handles.changed(bck, key);
                }
                Err(e) if is_missing(&e) => return Ok(false),
                Err(e) => return Err(Error::io(&p, e)),
            }
            prune_empty_dirs(&root, p.parent())?;
            p
        };
        if self.fsync {
            if let Some(group) = self.group_sync(mp) {
                group.sync().map_err(|e| Error::io(&root, e))?;
            } else if let Some(parent) = p.parent().filter(|d| d.exists()) {
                sync_dir(parent)?;
            }
        }
        Ok(true)
    }

    /// True when no mountpath holds an object of `bck`.
    /// Never scans the bucket into the index: callers may hold the tree lock, which a scan takes.
    pub fn bucket_is_empty(&self, bck: &Bck) -> Result<bool> {
        if self.has_versions(bck)? {
            return Ok(false);
        }
        if let Some(keys) = self.index.keys_after(bck, b"", "", 1) {
            return Ok(keys.is_empty());
        }
        Ok(self.list_walking(bck, b"", "", 1)?.is_empty())
    }

    /// Removes all data of `bck` (objects and uploads) from every mountpath.
    pub fn remove_bucket(&self, bck: &Bck) -> Result<()> {
        self.remove_bucket_if(bck, false, || Ok(()))
    }

    /// Takes all data of `bck` out of the bucket's place at once (renamed into the work directories under the
    /// tree lock) and returns what is left to delete, for the caller to delete when it suits it (a crash before
    /// that leaves work files, which start-up removes).
    pub fn unlink_bucket(&self, bck: &Bck) -> Result<Vec<PathBuf>> {
        let _tree = self.lock_tree();
        let trash = self.move_to_trash(bck)?;
        self.index.removed_bucket(bck);
        self.handles.changed_bucket(bck);
        Ok(trash.into_iter().map(|(_, t)| t).collect())
    }

    fn move_to_trash(&self, bck: &Bck) -> Result<Vec<(PathBuf, PathBuf)>> {
        let mut trash = Vec::new();
        for mp in &self.mountpaths {
            let dir = layout::bucket_dir(&mp.root, bck);
            if !dir.exists() {
                continue;
            }
            let wk = mp.work_dir();
            fs::create_dir_all(&wk).map_err(|e| Error::io(&wk, e))?;
            let t = wk.join(format!("del-{:032x}", rand::random::<u128>()));
            if let Err(e) = fs::rename(&dir, &t) {
                self.restore(&trash);
                return Err(Error::io(&dir, e));
            }
            trash.push((dir, t));
        }
        Ok(trash)
    }

    /// Removes all data of `bck` if `unregister` succeeds, atomically with respect to writes: under the tree
    /// lock, the bucket is checked to hold no object (with `require_empty`: [`Error::NotEmpty`]), each bucket
    /// directory is renamed into the work directory first (a crash then leaves an empty,
    /// still registered bucket, never old objects under a name that may be reused), then `unregister` runs
    /// (the registry removal: writes check their bucket guard under the same lock, so none lands after it).
    /// The recursive delete happens after the lock is released. If `unregister` fails, the directories are
    /// put back.
    pub fn remove_bucket_if(
        &self,
        bck: &Bck,
        require_empty: bool,
        unregister: impl FnOnce() -> Result<()>,
    ) -> Result<()> {
        let trash;
        {
            let _tree = self.lock_tree();
            if require_empty && !self.bucket_is_empty(bck)? {
                return Err(Error::NotEmpty);
            }
            trash = self.move_to_trash(bck)?;
            if let Err(e) = unregister() {
                self.restore(&trash);
                return Err(e);
            }
            self.index.removed_bucket(bck);
            self.handles.changed_bucket(bck);
        }
        for (_, t) in trash {
            fs::remove_dir_all(&t).map_err(|e| Error::io(&t, e))?;
        }
        Ok(())
    }

    fn restore(&self, moved: &[(PathBuf, PathBuf)]) {
        for (dir, t) in moved {
            if let Err(e) = fs::rename(t, dir) {
                tracing::error!(dir = %dir.display(), error = %e, "could not put a bucket directory back");
            }
        }
    }
}

/// `create_dir_all`, noting the parent of every directory it creates in `dirty`.
pub(crate) fn create_dirs(dir: &Path, dirty: &mut Vec<PathBuf>) -> Result<()> {
    let mut missing = Vec::new();
    let mut cur = Some(dir);
    while let Some(d) = cur.filter(|d| !d.is_dir()) {
        missing.push(d.to_path_buf());
        cur = d.parent();
    }
    for d in missing.iter().rev() {
        match fs::create_dir(d) {
            Ok(()) => dirty.extend(d.parent().map(Path::to_path_buf)),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::io(d, e)),
        }
    }
    Ok(())
}

/// Opens the object file at `p` with its metadata. The file may have become a directory (`a/b` arrived)
/// since `p` was found: the object is then that directory's `%%obj`.
fn open_at(mut p: PathBuf) -> Result<(File, ObjMeta)> {
    let mut f = open_existing(&p)?;
    if f.metadata().map_err(|e| Error::io(&p, e))?.is_dir() {
        p.push(DIR_OBJECT);
        f = open_existing(&p)?;
    }
    let meta = ObjMeta::read_from(&f, &p)?;
    Ok((f, meta))
}

fn open_existing(p: &Path) -> Result<File> {
    File::open(p).map_err(|e| if is_missing(&e) { Error::NotFound } else { Error::io(p, e) })
}

pub(crate) fn is_missing(e: &std::io::Error) -> bool {
    e.kind() == ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR)
}

pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| Error::io(dir, e))
}

/// Removes `dir` and its parents up to (not including) `root` while they hold no objects.
pub(crate) fn prune_empty_dirs(root: &Path, mut dir: Option<&Path>) -> Result<()> {
    while let Some(d) = dir {
        if d == root || !d.starts_with(root) {
            break;
        }
        let mut entries = match fs::read_dir(d) {
            Ok(e) => e,
            Err(e) if is_missing(&e) => break,
            Err(e) => return Err(Error::io(d, e)),
        };
        let only_reserved =
            entries.all(|e| e.is_ok_and(|e| e.file_name() == DIR_SEGMENT || e.file_name() == CONVERSION_TARGET));
        if !only_reserved {
            break;
        }
        let _ = fs::remove_file(d.join(DIR_SEGMENT));
        let _ = fs::remove_file(d.join(CONVERSION_TARGET));
        match fs::remove_dir(d) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::DirectoryNotEmpty => break,
            Err(e) => return Err(Error::io(d, e)),
        }
        dir = d.parent();
    }
    Ok(())
}
