//! Tombstones: when each AIS-local object was deleted on this node, kept on disk for a day. A copy written
//! before its delete (held by a node that was down, or read by a rebalance just before the delete) is then
//! never brought back: not by a hand-over, not by a repair, not by a neighbour answering a read.
//!
//! Times are wall-clock milliseconds, compared with the objects' modification times (so a key written again
//! after its delete is alive). The file is an append-only log of JSON lines, synced with the store's fsync
//! setting, rewritten without the expired entries when it grows to twice what is live.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use trove_namespace::Bck;

/// How long a delete is remembered. A node away for longer must be wiped before it comes back.
pub const KEEP_MS: i64 = 24 * 3600 * 1000;
/// The most deletes remembered; beyond it the oldest are forgotten first.
const MAX_ENTRIES: usize = 2_000_000;

#[derive(serde::Serialize, serde::Deserialize)]
struct Line {
    b: Bck,
    k: String,
    t: i64,
}

pub struct Tombstones {
    path: PathBuf,
    fsync: bool,
    inner: Mutex<Inner>,
}

struct Inner {
    at: HashMap<(Bck, String), i64>,
    file: File,
    lines: usize,
}

impl std::fmt::Debug for Tombstones {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tombstones").field("path", &self.path).finish()
    }
}

impl Tombstones {
    /// Loads the log at `path` (a torn last line is ignored), dropping what expired.
    pub fn open(path: &Path, fsync: bool) -> std::io::Result<Tombstones> {
        let mut at = HashMap::new();
        let now = super::now_ms();
        if let Ok(f) = File::open(path) {
            for line in BufReader::new(f).lines() {
                let Ok(line) = line else { break };
                let Ok(l) = serde_json::from_str::<Line>(&line) else { continue };
                if now - l.t < KEEP_MS {
                    let slot = at.entry((l.b, l.k)).or_insert(l.t);
                    *slot = (*slot).max(l.t);
                }
            }
        }
        let file = rewrite(path, &at, fsync)?;
        let lines = at.len();
        Ok(Tombstones { path: path.to_owned(), fsync, inner: Mutex::new(Inner { at, file, lines }) })
    }

    /// Records that `keys` of `bck` were deleted at `at_ms` (blocking: it appends and syncs).
    pub fn record(&self, bck: &Bck, keys: &[String], at_ms: i64) -> std::io::Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let mut text = Vec::new();
        for k in keys {
            let line = Line { b: bck.clone(), k: k.clone(), t: at_ms };
            serde_json::to_writer(&mut text, &line).map_err(std::io::Error::other)?;
            text.push(b'\n');
        }
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        for k in keys {
            inner.at.insert((bck.clone(), k.clone()), at_ms);
        }
        inner.file.write_all(&text)?;
        if self.fsync {
            inner.file.sync_data()?;
        }
        inner.lines += keys.len();
        if inner.lines > 2 * inner.at.len() + 10_000 || inner.at.len() > MAX_ENTRIES {
            let now = super::now_ms();
            inner.at.retain(|_, t| now - *t < KEEP_MS);
            if inner.at.len() > MAX_ENTRIES {
                let mut times: Vec<i64> = inner.at.values().copied().collect();
                let cut = times.len() - MAX_ENTRIES * 9 / 10;
                let (_, nth, _) = times.select_nth_unstable(cut);
                let nth = *nth;
                inner.at.retain(|_, t| *t > nth);
            }
            inner.file = rewrite(&self.path, &inner.at, self.fsync)?;
            inner.lines = inner.at.len();
        }
        Ok(())
    }

    /// When `key` of `bck` was last deleted here, if within the kept window.
    pub fn deleted_at(&self, bck: &Bck, key: &str) -> Option<i64> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.at.get(&(bck.clone(), key.to_owned())).copied()
    }

    /// Whether a copy last modified at `mtime_ms` was deleted here since (and must not come back).
    pub fn buries(&self, bck: &Bck, key: &str, mtime_ms: i64) -> bool {
        self.deleted_at(bck, key).is_some_and(|t| t >= mtime_ms)
    }
}

/// Writes the live entries to a new log (temp file, sync, rename) and opens it for appending.
fn rewrite(path: &Path, at: &HashMap<(Bck, String), i64>, fsync: bool) -> std::io::Result<File> {
    let tmp = path.with_extension("tmp");
    {
        let mut w = std::io::BufWriter::new(File::create(&tmp)?);
        for ((b, k), t) in at {
            serde_json::to_writer(&mut w, &Line { b: b.clone(), k: k.clone(), t: *t })
                .map_err(std::io::Error::other)?;
            w.write_all(b"\n")?;
        }
        let f = w.into_inner().map_err(|e| e.into_error())?;
        if fsync {
            f.sync_all()?;
        }
    }
    fs::rename(&tmp, path)?;
    if fsync {
        if let Some(dir) = path.parent() {
            File::open(dir)?.sync_all()?;
        }
    }
    OpenOptions::new().append(true).open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deletes_survive_a_restart_and_bury_only_older_copies() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tombstones.log");
        let t = Tombstones::open(&path, false).unwrap();
        let b = Bck::ais("bkt");
        t.record(&b, &["gone".into(), "also".into()], 1_000).unwrap();
        assert!(t.buries(&b, "gone", 999) && t.buries(&b, "gone", 1_000));
        assert!(!t.buries(&b, "gone", 1_001), "a later write is alive");
        assert!(!t.buries(&b, "other", 0));
        drop(t);
        // A torn last line (a crash mid-append) is ignored.
        std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(b"{\"b\":").unwrap();
        let t = Tombstones::open(&path, false).unwrap();
        // Far in the past: expired on load.
        assert_eq!(t.deleted_at(&b, "gone"), None);
        let now = super::super::now_ms();
        t.record(&b, &["k".into()], now).unwrap();
        drop(t);
        let t = Tombstones::open(&path, false).unwrap();
        assert_eq!(t.deleted_at(&b, "k"), Some(now));
    }
}
