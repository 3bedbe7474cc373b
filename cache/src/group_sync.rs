//! Group commit of a filesystem's syncs: writers that need "everything I wrote is durable" share one `syncfs`.
//!
//! A writer takes a ticket and waits until a sync that *started after* its ticket has finished: that sync
//! covers everything the writer wrote before taking the ticket. While one sync runs, the writers arriving
//! meanwhile wait for the next, which then covers all of them: under load, one sync serves many writes
//! instead of two per write. The guarantee is the one per-file `fsync` gives (data before the rename that
//! publishes it, the rename before the answer), paid once per batch.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::{Condvar, Mutex};

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

#[derive(Debug)]
pub struct GroupSync {
    /// Any open descriptor on the filesystem (the mountpath's root).
    fs: File,
    state: Mutex<State>,
    finished: Condvar,
}

impl GroupSync {
    pub fn open(root: &Path) -> io::Result<GroupSync> {
        Ok(GroupSync { fs: File::open(root)?, state: Mutex::default(), finished: Condvar::new() })
    }

    /// Returns once everything written to the filesystem before the call is durable (blocking).
    pub fn sync(&self) -> io::Result<()> {
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
            // This writer runs the next sync, for every ticket issued so far.
            st.running = true;
            let (from, through) = (st.covered + 1, st.issued);
            drop(st);
            let res = rustix::fs::syncfs(&self.fs);
            st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            st.running = false;
            st.covered = through;
            if let Err(e) = res {
                let e = io::Error::from(e);
                st.failures.push_back((from, through, e.kind(), e.to_string()));
                if st.failures.len() > 64 {
                    st.failures.pop_front();
                }
            }
            self.finished.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::GroupSync;
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
        let st = g.state.lock().unwrap();
        assert_eq!((st.issued, st.covered, st.running), (320, 320, false));
    }
}
