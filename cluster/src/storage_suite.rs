//! openraft's own contract tests for the log store and state machine.

use std::sync::Arc;

use openraft::testing::{StoreBuilder, Suite};
use openraft::StorageError;
use trove_namespace::Registry;

use crate::log_store::LogStore;
use crate::state_machine::StateMachine;
use crate::TypeConfig;

struct OnDisk;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for OnDisk {
    async fn build(&self) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError<u64>> {
        let dir = tempfile::tempdir().expect("tempdir");
        let registry = Arc::new(Registry::open(dir.path().join("bmd.json")).expect("registry"));
        let log = LogStore::open(&dir.path().join("log")).expect("log store");
        let sm = StateMachine::open(&dir.path().join("sm"), registry, None).expect("state machine");
        Ok((dir, log, sm))
    }
}

#[test]
fn the_stores_keep_openraft_s_contract() {
    Suite::test_all(OnDisk).expect("storage suite");
}

#[tokio::test]
async fn the_log_survives_a_reopen() {
    use openraft::storage::RaftLogStorage;
    use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, RaftLogReader, Vote};
    let dir = tempfile::tempdir().unwrap();
    let mut log = LogStore::open(dir.path()).unwrap();
    log.save_vote(&Vote::new(3, 7)).await.unwrap();
    let entries: Vec<Entry<TypeConfig>> = (1..=5)
        .map(|i| Entry { log_id: LogId::new(CommittedLeaderId::new(3, 7), i), payload: EntryPayload::Blank })
        .collect();
    // Appends go through the trait in the suite; here the files are what matters.
    for e in &entries {
        let path = dir.path().join("log").join(format!("{:020}.json", e.log_id.index));
        std::fs::write(path, serde_json::to_vec(e).unwrap()).unwrap();
    }
    // A torn last entry (a crash before its append was acknowledged) is dropped on open.
    std::fs::write(dir.path().join("log").join(format!("{:020}.json", 6)), b"{\"log_id\":").unwrap();
    drop(log);
    let mut log = LogStore::open(dir.path()).unwrap();
    assert_eq!(log.read_vote().await.unwrap(), Some(Vote::new(3, 7)));
    assert_eq!(log.try_get_log_entries(0..100).await.unwrap().len(), 5);
    log.purge(LogId::new(CommittedLeaderId::new(3, 7), 2)).await.unwrap();
    log.truncate(LogId::new(CommittedLeaderId::new(3, 7), 5)).await.unwrap();
    drop(log);
    let mut log = LogStore::open(dir.path()).unwrap();
    let left: Vec<u64> = log.try_get_log_entries(0..100).await.unwrap().iter().map(|e| e.log_id.index).collect();
    assert_eq!(left, vec![3, 4]);
    let state = log.get_log_state().await.unwrap();
    assert_eq!(state.last_purged_log_id.map(|l| l.index), Some(2));
}
