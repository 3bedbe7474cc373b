//! The cluster: Trove's nodes agree on one cluster map through Raft (openraft, embedded in every node).
//!
//! This crate owns the replicated state — the cluster's identity, the node map (Smap), the remote AIS clusters
//! attached to it and the bucket registry (applied to the node's [`trove_namespace::Registry`]) — its durable Raft log and snapshots on the node's disk,
//! founding and joining a cluster, metadata writes from any node through the leader, membership changes, and
//! the authenticated calls between nodes. Reads of the map are local. Placement and request forwarding, which
//! need the HTTP frontends, live in the gateway on top of [`Cluster::map`].

mod auth;
mod log_store;
mod map;
mod network;
mod node;
mod remotes;
mod state_machine;

pub use auth::{AuthError, ClusterAuth, MIN_SECRET_LEN};
pub use map::{ClusterMap, Command, NodeInfo, NodeState, Outcome, Refusal, RemoteCluster, Remotes, Smap};
pub use network::{CallError, PREFIX};
pub use node::{hello, Cluster, Error, Hello, StartOpts, Status, AUTH_HEADER};
pub use state_machine::RemoveHook;

openraft::declare_raft_types!(
    /// Raft's types for the cluster map: commands in, outcomes out, nodes addressed by URL.
    pub TypeConfig:
        D = Command,
        R = Outcome,
        NodeId = u64,
        Node = openraft::BasicNode,
        SnapshotData = std::io::Cursor<Vec<u8>>,
);

#[cfg(test)]
mod storage_suite;
