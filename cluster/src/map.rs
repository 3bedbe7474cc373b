//! The replicated cluster map: the cluster's identity, the node map (Smap) and the commands that change them
//! or the bucket registry. Every node applies the same commands in the same order (the Raft log), so every
//! node holds the same map and registry, versions included.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use crate::remotes::{RemoteCluster, Remotes};
use trove_namespace::{BucketEntry, Change, Registry};

/// A node's place in the cluster. Only `Active` nodes own objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum NodeState {
    /// Added to the map, not yet serving its share (becomes active once it has caught up).
    #[default]
    Joining,
    Active,
    /// Temporarily out: owns nothing, stays a member.
    Maintenance,
    /// Being decommissioned: owns nothing, leaves the cluster.
    Leaving,
    /// Unreachable from the leader for a while: owns nothing until it has reconciled its copies with the
    /// cluster and made itself active again.
    Down,
}

impl NodeState {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::Joining => "joining",
            NodeState::Active => "active",
            NodeState::Maintenance => "maintenance",
            NodeState::Leaving => "leaving",
            NodeState::Down => "down",
        }
    }
}

/// One node of the map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// The daemon id (AIS's `daemon_id`), stable across restarts.
    pub id: String,
    /// The node's Raft id: new for every incarnation of its data directory.
    pub raft_id: u64,
    /// Base URL for clients and for the other nodes (`http://host:port`).
    pub url: String,
    pub state: NodeState,
    /// Bytes of all mountpaths, for capacity-weighted placement.
    pub capacity: u64,
}

/// The node map: every node, and a version that every change of it increments.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Smap {
    pub version: u64,
    /// By daemon id.
    pub nodes: BTreeMap<String, NodeInfo>,
}

impl Smap {
    /// The nodes that own objects, in id order.
    pub fn active(&self) -> impl Iterator<Item = &NodeInfo> {
        self.nodes.values().filter(|n| n.state == NodeState::Active)
    }

    pub fn by_raft_id(&self, raft_id: u64) -> Option<&NodeInfo> {
        self.nodes.values().find(|n| n.raft_id == raft_id)
    }
}

/// The cluster-wide state besides the bucket registry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterMap {
    /// Set by the first entry of the cluster's log; empty until then.
    pub uuid: String,
    /// RFC 3339.
    pub creation_time: String,
    pub smap: Smap,
    /// Remote AIS clusters attached to this one.
    #[serde(default)]
    pub remotes: Remotes,
}

/// A change of the replicated state: the one way it is written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "kebab-case")]
pub enum Command {
    /// The cluster's identity, written once by the node that founds it.
    Found {
        uuid: String,
        creation_time: String,
    },
    /// A bucket registry change.
    Bucket {
        change: Box<Change>,
    },
    /// A node joins, or an existing node (same daemon id) comes back with a new URL, Raft id or capacity.
    PutNode {
        node: NodeInfo,
    },
    SetState {
        id: String,
        state: NodeState,
    },
    RemoveNode {
        id: String,
    },
    /// Attaches a remote AIS cluster (or adds URLs to it, records its UUID, replaces its token).
    AttachRemote {
        alias: String,
        cluster: RemoteCluster,
    },
    /// Detaches a remote AIS cluster, by alias or UUID.
    DetachRemote {
        alias: String,
    },
}

/// What applying a command produced.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// The bucket entry a registry change created, changed or removed.
    pub entry: Option<BucketEntry>,
    /// Why a command was refused; the state did not change.
    pub refused: Option<Refusal>,
}

/// A refused command, in terms the nodes can turn back into their own errors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", content = "what", rename_all = "kebab-case")]
pub enum Refusal {
    #[error("bucket {0:?} not found")]
    NoSuchBucket(String),
    #[error("bucket {0:?} already exists")]
    BucketExists(String),
    #[error("invalid bucket name: {0}")]
    InvalidBucketName(String),
    #[error("invalid bucket properties: {0}")]
    InvalidProps(String),
    #[error("no node {0:?} in the cluster map")]
    NoSuchNode(String),
    #[error("the cluster already has the identity {0}")]
    AlreadyFounded(String),
    #[error("{0}")]
    InvalidRemote(String),
    #[error("no remote cluster {0:?} is attached")]
    NoSuchRemote(String),
    /// The registry could not be written on this node (its disk); logged where it happened.
    #[error("the registry could not be written: {0}")]
    Storage(String),
}

impl From<trove_namespace::Error> for Refusal {
    fn from(e: trove_namespace::Error) -> Self {
        use trove_namespace::Error as N;
        match e {
            N::NotFound(b) => Refusal::NoSuchBucket(b),
            N::AlreadyExists(b) => Refusal::BucketExists(b),
            N::InvalidName(r) => Refusal::InvalidBucketName(r.to_string()),
            N::InvalidUri { .. } | N::UnknownProvider(_) => Refusal::InvalidBucketName(e.to_string()),
            N::InvalidProps(r) => Refusal::InvalidProps(r),
            other => {
                let cause = std::error::Error::source(&other).map(|s| format!(": {s}")).unwrap_or_default();
                tracing::error!(error = %other, cause, "applying a registry change");
                Refusal::Storage(format!("{other}{cause}"))
            }
        }
    }
}

impl ClusterMap {
    /// Applies `cmd`: the map in place, registry changes to `registry` (which persists them).
    pub fn apply(&mut self, cmd: &Command, registry: &Registry) -> Outcome {
        let refused = |r: Refusal| Outcome { entry: None, refused: Some(r) };
        match cmd {
            Command::Found { uuid, creation_time } => {
                if !self.uuid.is_empty() && &self.uuid != uuid {
                    return refused(Refusal::AlreadyFounded(self.uuid.clone()));
                }
                self.uuid.clone_from(uuid);
                self.creation_time.clone_from(creation_time);
            }
            Command::Bucket { change } => {
                return match registry.apply(change) {
                    Ok(entry) => Outcome { entry, refused: None },
                    Err(e) => refused(e.into()),
                }
            }
            Command::PutNode { node } => {
                self.smap.nodes.insert(node.id.clone(), node.clone());
                self.smap.version += 1;
            }
            Command::SetState { id, state } => match self.smap.nodes.get_mut(id) {
                Some(n) => {
                    n.state = *state;
                    self.smap.version += 1;
                }
                None => return refused(Refusal::NoSuchNode(id.clone())),
            },
            Command::RemoveNode { id } => {
                if self.smap.nodes.remove(id).is_none() {
                    return refused(Refusal::NoSuchNode(id.clone()));
                }
                self.smap.version += 1;
            }
            Command::AttachRemote { alias, cluster } => {
                if let Err(e) = self.remotes.attach(alias, cluster, &self.uuid) {
                    return refused(Refusal::InvalidRemote(e));
                }
            }
            Command::DetachRemote { alias } => {
                if self.remotes.detach(alias).is_none() {
                    return refused(Refusal::NoSuchRemote(alias.clone()));
                }
            }
        }
        Outcome::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trove_namespace::Bck;

    fn node(id: &str, raft_id: u64) -> NodeInfo {
        NodeInfo { id: id.into(), raft_id, url: format!("http://{id}"), state: NodeState::Joining, capacity: 1 }
    }

    #[test]
    fn commands_change_the_map_and_its_version() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::open(dir.path().join("bmd.json")).unwrap();
        let mut m = ClusterMap::default();
        let ok = Outcome::default();
        assert_eq!(m.apply(&Command::Found { uuid: "u1".into(), creation_time: "t".into() }, &reg), ok);
        assert_eq!(m.apply(&Command::PutNode { node: node("a", 1) }, &reg), ok);
        assert_eq!(m.apply(&Command::SetState { id: "a".into(), state: NodeState::Active }, &reg), ok);
        assert_eq!(m.smap.version, 2);
        assert_eq!(m.smap.active().count(), 1);
        let r = m.apply(&Command::SetState { id: "zz".into(), state: NodeState::Active }, &reg);
        assert_eq!(r.refused, Some(Refusal::NoSuchNode("zz".into())));
        assert_eq!(m.smap.version, 2);
        let r = m.apply(&Command::Found { uuid: "u2".into(), creation_time: "t".into() }, &reg);
        assert_eq!(r.refused, Some(Refusal::AlreadyFounded("u1".into())));
    }

    #[test]
    fn registry_refusals_are_outcomes() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::open(dir.path().join("bmd.json")).unwrap();
        let mut m = ClusterMap::default();
        let entry = BucketEntry::new(Bck::ais("bkt1"), "me".into(), 1, 1);
        let create = Command::Bucket { change: Box::new(Change::Create { name: "bkt1".into(), entry }) };
        assert!(m.apply(&create, &reg).entry.is_some());
        assert_eq!(m.apply(&create, &reg).refused, Some(Refusal::BucketExists("bkt1".into())));
        assert_eq!(reg.snapshot().version, 1);
        // A command survives the log's encoding unchanged.
        let bytes = serde_json::to_vec(&create).unwrap();
        assert_eq!(serde_json::from_slice::<Command>(&bytes).unwrap(), create);
    }
}
