//! Group commit of syncs: writers that need "everything I wrote is durable" share one sync call.
//!
//! A writer takes a ticket and waits until a sync that *started after* its ticket has finished: that sync
//! covers everything the writer wrote before taking the ticket. While one sync runs, the writers arriving
//! meanwhile wait for the next, which then covers all of them: under load, one sync serves many writes
//! instead of one per write. Two uses: a filesystem's `syncfs` for data and renames alike
//! (`storage.group_commit`), and each directory's `fsync` after renames into it ([`DirSyncs`], always: the
//! data of every object is still synced on its own). The guarantee is the one a sync per write gives (data
//! before the rename that publishes it, the rename before the answer), paid once per batch.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

#[derive(Debug, Default)]
struct State {
    /// Tickets handed out.
    issued: u64,
    /// Every ticket up to this one is covered by a finished sync.
    covered: u64,
    running: bool,
    /// Recent failed syncs: the tickets they covered and the error.
    failures: VecDeque<(u64, u64, io::ErrorKind, String)>,
}

/// Tickets for one thing to sync.
#[derive(Debug, Default)]
struct Tickets {
    state: Mutex<State>,
    finished: Condvar,
}

impl Tickets {
    /// Returns once a `sync` that started after this call has finished (blocking); the caller may be the one
    /// that runs it, for everyone waiting.
    fn share(&self, sync: impl FnOnce() -> io::Result<()>) -> io::Result<()> {
        let mut sync = Some(sync);
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.issued += 1;
        let ticket = st.issued;
        loop {
            if st.covered >= ticket {
                return match st.failures.iter().find(|(from, to, _, _)| (*from..=*to).contains(&ticket)) {
                    Some((_, _, kind, msg)) => Err(io::Error::new(*kind, msg.clone())),
                    None => Ok(()),
                };
            }
            if st.running {
                st = self.finished.wait(st).unwrap_or_else(|e| e.into_inner());
                continue;
            }
            // A writer runs at most one sync, which covers its own ticket: the closure is always there.
            let Some(run) = sync.take() else { return Err(io::Error::other("a sync did not cover its writer")) };
            // This writer runs the next sync, for every ticket issued so far.
            st.running = true;
            let (from, through) = (st.covered + 1, st.issued);
            drop(st);
            let res = run();
            st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            st.running = false;
            st.covered = through;
            if let Err(e) = res {
                st.failures.push_back((from, through, e.kind(), e.to_string()));
                if st.failures.len() > 64 {
                    st.failures.pop_front();
                }
            }
            self.finished.notify_all();
        }
    }
}

/// A filesystem's syncs, shared (`syncfs`).
#[derive(Debug)]
pub struct GroupSync {
    /// Any open descriptor on the filesystem (the mountpath's root).
    fs: File,
    tickets: Tickets,
}

impl GroupSync {
    pub fn open(root: &Path) -> io::Result<GroupSync> {
        Ok(GroupSync { fs: File::open(root)?, tickets: Tickets::default() })
    }

    /// Returns once everything written to the filesystem before the call is durable (blocking).
    pub fn sync(&self) -> io::Result<()> {
        self.tickets.share(|| rustix::fs::syncfs(&self.fs).map_err(io::Error::from))
    }
}

/// Directory syncs, shared by the renames into each directory.
#[derive(Debug, Default)]
pub struct DirSyncs {
    /// The directories with a sync wanted or running; an entry goes when its last writer leaves.
    dirs: Mutex<HashMap<PathBuf, Arc<Tickets>>>,
}

impl DirSyncs {
    /// Returns once the entries of `dir` as they were at the call are durable (blocking).
    pub fn sync(&self, dir: &Path) -> io::Result<()> {
        let tickets = {
            let mut dirs = self.dirs.lock().unwrap_or_else(|e| e.into_inner());
            dirs.entry(dir.to_path_buf()).or_default().clone()
        };
        let res = tickets.share(|| File::open(dir)?.sync_all());
        let mut dirs = self.dirs.lock().unwrap_or_else(|e| e.into_inner());
        // Clones are only made under this lock: two references are the map's and this one.
        if Arc::strong_count(&tickets) == 2 {
            dirs.remove(dir);
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use super::{DirSyncs, GroupSync};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn concurrent_writers_share_syncs_and_all_return() {
        let dir = tempfile::tempdir().unwrap();
        let g = Arc::new(GroupSync::open(dir.path()).unwrap());
        let done = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..16)
            .map(|i| {
                let (g, done, path) = (g.clone(), done.clone(), dir.path().join(format!("f{i}")));
                std::thread::spawn(move || {
                    for n in 0..20 {
                        std::fs::write(&path, format!("{n}")).unwrap();
                        g.sync().unwrap();
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(done.load(Ordering::Relaxed), 16);
        let st = g.tickets.state.lock().unwrap();
        assert_eq!((st.issued, st.covered, st.running), (320, 320, false));
    }

    #[test]
    fn renames_into_a_directory_share_its_syncs() {
        let dir = tempfile::tempdir().unwrap();
        let syncs = Arc::new(DirSyncs::default());
        let threads: Vec<_> = (0..16)
            .map(|i| {
                let (syncs, root) = (syncs.clone(), dir.path().to_path_buf());
                std::thread::spawn(move || {
                    for n in 0..20 {
                        let tmp = root.join(format!(".tmp{i}"));
                        std::fs::write(&tmp, format!("{n}")).unwrap();
                        std::fs::rename(&tmp, root.join(format!("f{i}-{n}"))).unwrap();
                        syncs.sync(&root).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert!(syncs.dirs.lock().unwrap().is_empty(), "entries outlive their writers");
        // A directory that cannot be opened fails its writer, and only it.
        assert!(syncs.sync(&dir.path().join("gone")).is_err());
        syncs.sync(dir.path()).unwrap();
    }
}
