//! The Raft log and vote on the node's disk: one fsynced file per entry under `log/`, the vote and the last
//! purged log id in their own files, all written by rename and followed by a directory fsync. An append is
//! acknowledged only once durable. The metadata log is small (snapshots purge it), so it is also kept in memory
//! for reads.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs;
use std::io::Write;
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{AnyError, Entry, LogId, OptionalSend, RaftLogReader, StorageError, StorageIOError, Vote};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::TypeConfig;

type NodeId = u64;

#[derive(Debug, Default)]
struct Inner {
    entries: BTreeMap<u64, Entry<TypeConfig>>,
    last_purged: Option<LogId<NodeId>>,
    vote: Option<Vote<NodeId>>,
}

/// The log store; clones share it (the clone is also the log reader).
#[derive(Debug, Clone)]
pub struct LogStore {
    dir: PathBuf,
    inner: Arc<Mutex<Inner>>,
}

const VOTE: &str = "vote.json";
const PURGED: &str = "purged.json";
const LOG_DIR: &str = "log";

fn entry_file(dir: &Path, index: u64) -> PathBuf {
    dir.join(LOG_DIR).join(format!("{index:020}.json"))
}

/// Writes `value` to `path` durably: a fsynced temporary file renamed over it, then the directory fsynced.
pub(crate) fn write_durably<T: Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    let bytes = serde_json::to_vec(value).map_err(std::io::Error::other)?;
    let tmp = path.with_extension("tmp");
    let mut f = fs::File::create(&tmp)?;
    f.write_all(&bytes)?;
    f.sync_all()?;
    fs::rename(&tmp, path)?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// Removes the entry files of `indices` (in that order; gone ones are fine), then makes it durable.
fn remove_entries<'a>(dir: &Path, indices: impl Iterator<Item = &'a u64>) -> std::io::Result<()> {
    for i in indices {
        match fs::remove_file(entry_file(dir, *i)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    sync_dir(&dir.join(LOG_DIR))
}

pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

pub(crate) fn read_json<T: DeserializeOwned>(path: &Path) -> std::io::Result<Option<T>> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(std::io::Error::other),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

impl LogStore {
    /// Opens (or creates) the log under `dir`. An entry file that does not parse can only be the last one,
    /// torn by a crash before its append was acknowledged: it and anything after it are dropped.
    pub fn open(dir: &Path) -> std::io::Result<LogStore> {
        fs::create_dir_all(dir.join(LOG_DIR))?;
        let mut inner = Inner {
            vote: read_json(&dir.join(VOTE))?,
            last_purged: read_json(&dir.join(PURGED))?,
            ..Default::default()
        };
        let mut names: Vec<PathBuf> = fs::read_dir(dir.join(LOG_DIR))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        names.sort();
        let mut torn = false;
        for path in names {
            let parsed: Option<Entry<TypeConfig>> = if torn { None } else { read_json(&path).ok().flatten() };
            match parsed {
                Some(e) if inner.last_purged.is_none_or(|p| e.log_id.index > p.index) => {
                    inner.entries.insert(e.log_id.index, e);
                }
                Some(_) => fs::remove_file(&path)?,
                None => {
                    torn = true;
                    tracing::warn!(file = %path.display(), "dropping an unacknowledged, torn Raft log entry");
                    fs::remove_file(&path)?;
                }
            }
        }
        Ok(LogStore { dir: dir.to_owned(), inner: Arc::new(Mutex::new(inner)) })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs blocking file work off the async workers.
    async fn io<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Path) -> std::io::Result<T> + Send + 'static,
        err: fn(AnyError) -> StorageIOError<NodeId>,
    ) -> Result<T, StorageError<NodeId>> {
        let dir = self.dir.clone();
        match tokio::task::spawn_blocking(move || f(&dir)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(err(AnyError::new(&e)).into()),
            Err(e) => Err(err(AnyError::error(format!("log I/O task: {e}"))).into()),
        }
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError<NodeId>> {
        Ok(self.lock().entries.range(range).map(|(_, e)| e.clone()).collect())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<NodeId>> {
        let inner = self.lock();
        let last = inner.entries.values().next_back().map(|e| e.log_id).or(inner.last_purged);
        Ok(LogState { last_purged_log_id: inner.last_purged, last_log_id: last })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        let v = *vote;
        self.io(move |dir| write_durably(&dir.join(VOTE), &v), StorageIOError::write_vote).await?;
        self.lock().vote = Some(v);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        Ok(self.lock().vote)
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<Entry<TypeConfig>> = entries.into_iter().collect();
        let to_write = entries.clone();
        let written = self
            .io(
                move |dir| {
                    for e in &to_write {
                        let path = entry_file(dir, e.log_id.index);
                        let bytes = serde_json::to_vec(e).map_err(std::io::Error::other)?;
                        let tmp = path.with_extension("tmp");
                        let mut f = fs::File::create(&tmp)?;
                        f.write_all(&bytes)?;
                        f.sync_all()?;
                        fs::rename(&tmp, &path)?;
                    }
                    sync_dir(&dir.join(LOG_DIR))
                },
                StorageIOError::write_logs,
            )
            .await;
        if let Err(e) = written {
            callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
            return Err(e);
        }
        {
            let mut inner = self.lock();
            for e in entries {
                inner.entries.insert(e.log_id.index, e);
            }
        }
        callback.log_io_completed(Ok(()));
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let doomed: Vec<u64> = self.lock().entries.range(log_id.index..).map(|(i, _)| *i).collect();
        // Highest first, so a crash half-way leaves no hole.
        let files = doomed.clone();
        self.io(move |dir| remove_entries(dir, files.iter().rev()), StorageIOError::write_logs).await?;
        let mut inner = self.lock();
        for i in doomed {
            inner.entries.remove(&i);
        }
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let doomed: Vec<u64> = self.lock().entries.range(..=log_id.index).map(|(i, _)| *i).collect();
        let files = doomed.clone();
        // The purge point first: a crash after it leaves files that opening drops.
        self.io(
            move |dir| {
                write_durably(&dir.join(PURGED), &log_id)?;
                remove_entries(dir, files.iter())
            },
            StorageIOError::write_logs,
        )
        .await?;
        let mut inner = self.lock();
        inner.last_purged = Some(log_id);
        for i in doomed {
            inner.entries.remove(&i);
        }
        Ok(())
    }
}
