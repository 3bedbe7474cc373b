//! Tables of contents of uncompressed TAR shards, so that a file is read with one seek, not a scan. Each is
//! read once per shard version (bucket, key, ETag, time) and kept twice: in memory (bounded) and on disk, in
//! `.trove/toc/` of a mountpath, so a restart does not scan every shard again. A table on disk names the
//! version it describes; one that does not match (the shard was rewritten) or cannot be read (a crash cut its
//! write short) is read again from the shard and replaced. Tables of deleted shards are pruned, oldest first,
//! once there are more than [`MAX_ON_DISK`].

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use sha2::Digest;
use trove_cache::ObjMeta;

use super::{contents, Error, Format, Member};

type ShardVersion = (String, String, String, i64);

/// Shards whose tables stay in memory (a full table starts over).
const IN_MEMORY: usize = 4096;
/// Tables kept on disk before the oldest are pruned.
const MAX_ON_DISK: usize = 65_536;
/// Tables written between two prunes.
const PRUNE_EVERY: usize = 1024;

/// A table of contents as kept on disk.
#[derive(serde::Serialize, serde::Deserialize)]
struct Stored {
    bucket: String,
    key: String,
    etag: String,
    mtime_ms: i64,
    members: Vec<Member>,
}

/// Clones share the tables.
#[derive(Default, Clone)]
pub struct Index {
    tocs: Arc<Mutex<HashMap<ShardVersion, Arc<Vec<Member>>>>>,
    /// `.trove/toc` of each mountpath (none: memory only).
    dirs: Arc<Vec<PathBuf>>,
    written: Arc<AtomicUsize>,
}

impl Index {
    /// An index that keeps its tables on the given mountpaths too.
    pub fn on_disk<'a>(mountpaths: impl IntoIterator<Item = &'a Path>) -> Index {
        let dirs = mountpaths.into_iter().map(|m| m.join(".trove").join("toc")).collect();
        Index { dirs: Arc::new(dirs), ..Default::default() }
    }

    /// Where the table of a shard is kept: a mountpath chosen by the shard's name, a directory by its hash.
    fn path_of(&self, bucket: &str, key: &str) -> Option<PathBuf> {
        let digest = sha2::Sha256::new().chain_update(bucket).chain_update([0]).chain_update(key).finalize();
        let name = hex::encode(&digest[..16]);
        let mp = usize::from(digest[16]) % self.dirs.len().max(1);
        Some(self.dirs.get(mp)?.join(&name[..2]).join(format!("{name}.toc")))
    }

    /// The shard's table of contents, read once per version (blocking).
    pub fn toc(
        &self,
        bucket: &str,
        meta: &ObjMeta,
        file: &Arc<File>,
        format: Format,
    ) -> Result<Arc<Vec<Member>>, Error> {
        let id = (bucket.to_owned(), meta.key.clone(), meta.etag.clone(), meta.mtime_ms);
        if let Some(t) = self.tocs.lock().unwrap_or_else(|e| e.into_inner()).get(&id) {
            return Ok(t.clone());
        }
        let path = self.path_of(bucket, &meta.key);
        let toc = match path.as_deref().and_then(|p| Self::load(p, &id)) {
            Some(members) => Arc::new(members),
            None => {
                let toc = Arc::new(contents(file.clone(), format)?);
                if let Some(p) = &path {
                    self.store(p, &id, &toc);
                }
                toc
            }
        };
        let mut tocs = self.tocs.lock().unwrap_or_else(|e| e.into_inner());
        if tocs.len() >= IN_MEMORY {
            tocs.clear();
        }
        tocs.insert(id, toc.clone());
        Ok(toc)
    }

    /// The table kept at `path`, if it describes this version of the shard.
    fn load(path: &Path, id: &ShardVersion) -> Option<Vec<Member>> {
        let bytes = std::fs::read(path).ok()?;
        let s: Stored = serde_json::from_slice(&bytes).ok()?;
        ((s.bucket.as_str(), s.key.as_str(), s.etag.as_str(), s.mtime_ms) == (&id.0, &id.1, &id.2, id.3))
            .then_some(s.members)
    }

    /// Keeps a table on disk (written aside, then renamed over the old one). A failure only costs a scan
    /// after the next restart, so it is logged, not returned.
    fn store(&self, path: &Path, id: &ShardVersion, members: &[Member]) {
        let stored = Stored {
            bucket: id.0.clone(),
            key: id.1.clone(),
            etag: id.2.clone(),
            mtime_ms: id.3,
            members: members.to_vec(),
        };
        let tmp = path.with_extension(format!("tmp{:x}", rand::random::<u32>()));
        let written = (|| -> std::io::Result<()> {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let mut f = std::io::BufWriter::new(File::create(&tmp)?);
            serde_json::to_writer(&mut f, &stored)?;
            f.flush()?;
            std::fs::rename(&tmp, path)
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            tracing::warn!(path = %path.display(), error = %e, "could not keep a shard's table of contents");
            return;
        }
        if self.written.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            self.prune(MAX_ON_DISK);
        }
    }

    /// Drops the oldest tables (by when they were written) beyond `keep`.
    fn prune(&self, keep: usize) {
        let mut all: Vec<(std::time::SystemTime, PathBuf)> = Vec::new();
        for dir in self.dirs.iter() {
            let Ok(subdirs) = std::fs::read_dir(dir) else { continue };
            for sub in subdirs.flatten() {
                let Ok(files) = std::fs::read_dir(sub.path()) else { continue };
                for f in files.flatten() {
                    let modified = f.metadata().and_then(|m| m.modified()).unwrap_or(std::time::UNIX_EPOCH);
                    all.push((modified, f.path()));
                }
            }
        }
        if all.len() <= keep {
            return;
        }
        all.sort();
        let excess = all.len() - keep * 9 / 10;
        for (_, p) in all.into_iter().take(excess) {
            let _ = std::fs::remove_file(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(dir: &Path, files: &[(&str, usize)]) -> Arc<File> {
        let path = dir.join("shard.tar");
        let mut b = tar::Builder::new(File::create(&path).unwrap());
        for (name, size) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(*size as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, &vec![b'x'; *size][..]).unwrap();
        }
        b.finish().unwrap();
        Arc::new(File::open(path).unwrap())
    }

    #[test]
    fn tables_survive_a_restart_and_follow_the_shard_version() {
        let dir = tempfile::tempdir().unwrap();
        let mps = [dir.path().join("a"), dir.path().join("b")];
        let file = shard(dir.path(), &[("x/1.jpg", 10), ("x/2.jpg", 600)]);
        let meta = ObjMeta { key: "s/0.tar".into(), etag: "e1".into(), mtime_ms: 7, ..Default::default() };
        let first = Index::on_disk(mps.iter().map(PathBuf::as_path));
        let toc = first.toc("b", &meta, &file, Format::Tar).unwrap();
        assert_eq!(
            toc.iter().map(|m| (m.name.as_str(), m.offset)).collect::<Vec<_>>(),
            [("x/1.jpg", Some(512)), ("x/2.jpg", Some(1536))]
        );
        // A new process reads the table from disk: a shard that is not a TAR cannot have been scanned.
        let restarted = Index::on_disk(mps.iter().map(PathBuf::as_path));
        let not_a_tar = Arc::new(File::open("/dev/null").unwrap());
        assert_eq!(restarted.toc("b", &meta, &not_a_tar, Format::Tar).unwrap(), toc);
        // Another version of the shard is scanned again, and its table replaces the old one.
        let file2 = shard(dir.path(), &[("y.txt", 3)]);
        let meta2 = ObjMeta { etag: "e2".into(), ..meta.clone() };
        assert_eq!(restarted.toc("b", &meta2, &file2, Format::Tar).unwrap()[0].name, "y.txt");
        let path = restarted.path_of("b", "s/0.tar").unwrap();
        assert!(std::fs::read_to_string(&path).unwrap().contains("\"e2\""));
        // A torn table is read from the shard again.
        std::fs::write(&path, b"{\"bucket\":").unwrap();
        let fresh = Index::on_disk(mps.iter().map(PathBuf::as_path));
        assert_eq!(fresh.toc("b", &meta2, &file2, Format::Tar).unwrap()[0].name, "y.txt");
        // Pruning keeps the newest tables.
        for i in 0..20 {
            let m = ObjMeta { key: format!("k{i}"), ..meta.clone() };
            fresh.toc("b", &m, &file, Format::Tar).unwrap();
        }
        fresh.prune(10);
        let left: usize = fresh
            .dirs
            .iter()
            .flat_map(|d| std::fs::read_dir(d).into_iter().flatten().flatten())
            .map(|sub| std::fs::read_dir(sub.path()).unwrap().count())
            .sum();
        assert_eq!(left, 9);
    }
}
