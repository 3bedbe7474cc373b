//! The Raft state machine: the cluster map and the bucket registry, persisted on every apply (the registry in
//! its own file, as on a single node; the map, the last applied log id and membership in `sm.json`), so a
//! restart replays only what came after. Commands are idempotent in effect, so one replayed after a crash
//! between the two files changes nothing. Snapshots are the whole state as JSON; the metadata is small.

// openraft's trait methods return its `StorageError`, whatever its size.
#![allow(clippy::result_large_err)]

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use openraft::storage::{RaftStateMachine, Snapshot, SnapshotMeta};
use openraft::{
    AnyError, BasicNode, Entry, EntryPayload, LogId, OptionalSend, RaftSnapshotBuilder, StorageError, StorageIOError,
    StoredMembership,
};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use trove_namespace::{BucketEntry, Change, Registry, RegistrySnapshot};

use crate::log_store::{read_json, write_durably};
use crate::map::{ClusterMap, Command, Outcome};
use crate::TypeConfig;

type NodeId = u64;

const STATE: &str = "sm.json";
const SNAPSHOT: &str = "snapshot.json";

/// What `sm.json` holds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Applied {
    last_applied: Option<LogId<NodeId>>,
    last_membership: StoredMembership<NodeId, BasicNode>,
    map: ClusterMap,
}

/// A snapshot's contents.
#[derive(Debug, Serialize, Deserialize)]
struct SnapshotData {
    applied: Applied,
    registry: RegistrySnapshot,
}

#[derive(Debug, Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta<NodeId, BasicNode>,
    data: Vec<u8>,
}

/// Called on every node, in log order, for each bucket incarnation that leaves the registry (the node drops its
/// local data of it before any later command, such as a new bucket of the same name, is applied).
pub type RemoveHook = Arc<dyn Fn(&BucketEntry) + Send + Sync>;

struct Shared {
    dir: PathBuf,
    registry: Arc<Registry>,
    on_remove: Option<RemoveHook>,
    applied: Mutex<Applied>,
    map: watch::Sender<Arc<ClusterMap>>,
    snapshot_seq: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateMachine").field("dir", &self.dir).finish_non_exhaustive()
    }
}

impl Shared {
    fn removed(&self, entry: &BucketEntry) {
        if let Some(hook) = &self.on_remove {
            hook(entry);
        }
    }
}

/// The state machine; clones share it (a clone is the snapshot builder).
#[derive(Debug, Clone)]
pub struct StateMachine {
    shared: Arc<Shared>,
}

fn sm_err(e: impl std::fmt::Display) -> StorageError<NodeId> {
    StorageIOError::write_state_machine(AnyError::error(e.to_string())).into()
}

impl StateMachine {
    /// Opens the state under `dir` around the node's registry.
    pub fn open(dir: &Path, registry: Arc<Registry>, on_remove: Option<RemoveHook>) -> std::io::Result<StateMachine> {
        std::fs::create_dir_all(dir)?;
        let applied: Applied = read_json(&dir.join(STATE))?.unwrap_or_default();
        let (map, _) = watch::channel(Arc::new(applied.map.clone()));
        Ok(StateMachine {
            shared: Arc::new(Shared {
                dir: dir.to_owned(),
                registry,
                on_remove,
                applied: Mutex::new(applied),
                map,
                snapshot_seq: Default::default(),
            }),
        })
    }

    /// Watches the cluster map as this node applies it.
    pub fn map(&self) -> watch::Receiver<Arc<ClusterMap>> {
        self.shared.map.subscribe()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Applied> {
        self.shared.applied.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Shared) -> Result<T, StorageError<NodeId>> + Send + 'static,
    ) -> Result<T, StorageError<NodeId>> {
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || f(&shared)).await.map_err(sm_err)?
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let seq = self.shared.snapshot_seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.blocking(move |sh| {
            let applied = sh.applied.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let registry = RegistrySnapshot::clone(&sh.registry.snapshot());
            let meta = SnapshotMeta {
                last_log_id: applied.last_applied,
                last_membership: applied.last_membership.clone(),
                snapshot_id: format!(
                    "{}-{}-{seq}",
                    applied.last_applied.map(|l| l.leader_id.term).unwrap_or(0),
                    applied.last_applied.map(|l| l.index).unwrap_or(0)
                ),
            };
            let data = serde_json::to_vec(&SnapshotData { applied, registry }).map_err(sm_err)?;
            let stored = StoredSnapshot { meta: meta.clone(), data };
            write_durably(&sh.dir.join(SNAPSHOT), &stored)
                .map_err(|e| StorageIOError::write_snapshot(None, AnyError::new(&e)))?;
            Ok(Snapshot { meta, snapshot: Box::new(Cursor::new(stored.data)) })
        })
        .await
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = StateMachine;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>), StorageError<NodeId>> {
        let a = self.lock();
        Ok((a.last_applied, a.last_membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Outcome>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<Entry<TypeConfig>> = entries.into_iter().collect();
        self.blocking(move |sh| {
            let mut next = sh.applied.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let mut out = Vec::with_capacity(entries.len());
            for e in entries {
                next.last_applied = Some(e.log_id);
                out.push(match e.payload {
                    EntryPayload::Blank => Outcome::default(),
                    EntryPayload::Normal(cmd) => {
                        let outcome = next.map.apply(&cmd, &sh.registry);
                        if let (Command::Bucket { change }, Some(gone)) = (&cmd, &outcome.entry) {
                            if matches!(**change, Change::Remove { .. }) {
                                sh.removed(gone);
                            }
                        }
                        outcome
                    }
                    EntryPayload::Membership(m) => {
                        next.last_membership = StoredMembership::new(Some(e.log_id), m);
                        Outcome::default()
                    }
                });
            }
            write_durably(&sh.dir.join(STATE), &next).map_err(sm_err)?;
            let map = Arc::new(next.map.clone());
            *sh.applied.lock().unwrap_or_else(|e| e.into_inner()) = next;
            sh.map.send_replace(map);
            Ok(out)
        })
        .await
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let meta = meta.clone();
        self.blocking(move |sh| {
            let bytes = snapshot.into_inner();
            let data: SnapshotData = serde_json::from_slice(&bytes)
                .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), AnyError::new(&e)))?;
            let mut applied = data.applied;
            applied.last_applied = meta.last_log_id;
            applied.last_membership = meta.last_membership.clone();
            let before = sh.registry.snapshot();
            let kept = |e: &BucketEntry| data.registry.buckets.values().any(|n| n.bck == e.bck && n.bid == e.bid);
            let gone: Vec<BucketEntry> = before.buckets.values().filter(|e| !kept(e)).cloned().collect();
            sh.registry.replace(data.registry).map_err(sm_err)?;
            for e in &gone {
                sh.removed(e);
            }
            write_durably(&sh.dir.join(STATE), &applied).map_err(sm_err)?;
            write_durably(&sh.dir.join(SNAPSHOT), &StoredSnapshot { meta, data: bytes })
                .map_err(|e| StorageIOError::write_snapshot(None, AnyError::new(&e)))?;
            let map = Arc::new(applied.map.clone());
            *sh.applied.lock().unwrap_or_else(|e| e.into_inner()) = applied;
            sh.map.send_replace(map);
            Ok(())
        })
        .await
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        self.blocking(|sh| {
            let stored: Option<StoredSnapshot> = read_json(&sh.dir.join(SNAPSHOT))
                .map_err(|e| StorageIOError::read_snapshot(None, AnyError::new(&e)))?;
            Ok(stored.map(|s| Snapshot { meta: s.meta, snapshot: Box::new(Cursor::new(s.data)) }))
        })
        .await
    }
}
