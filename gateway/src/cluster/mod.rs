//! The gateway's side of the cluster: which node owns an object under the committed cluster map (DESIGN §8),
//! and forwarding requests to it (`forward.rs`; reads on direct-read connections: `relay.rs`).
//!
//! Ownership is AIS's HRW over the active nodes, from the same object digest that picks the mountpath,
//! weighted by capacity where nodes differ by more than about a sixteenth. The map itself is replicated by
//! `trove-cluster`; this only reads it.

pub mod forward;
pub mod liveness;
pub mod relay;
pub mod remotes;

use trove_cluster::{ClusterMap, NodeInfo};
use trove_namespace::hrw::{self, Member};
use trove_namespace::Bck;

/// Where a request for an object must be served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    Local,
    Remote(NodeInfo),
}

/// The object's nodes in HRW order (owner first) among the map's active nodes.
pub fn ranked<'a>(map: &'a ClusterMap, bck: &Bck, key: &str) -> Vec<&'a NodeInfo> {
    let nodes: Vec<&NodeInfo> = map.smap.active().collect();
    let members: Vec<Member> = nodes.iter().map(|n| Member::new(n.id.clone())).collect();
    let weights = weights(&nodes);
    let ns = hrw::ns_uname(&bck.ns.uuid, &bck.ns.name);
    let digest = hrw::object_digest(bck.provider.as_str(), &ns, &bck.name, key);
    hrw::ranked(&members, &weights, digest).into_iter().map(|i| nodes[i]).collect()
}

/// Capacities in sixteenths of the largest, so nodes of about the same size weigh the same (AIS's placement).
fn weights(nodes: &[&NodeInfo]) -> Vec<u64> {
    let max = nodes.iter().map(|n| n.capacity).max().unwrap_or(0).max(1);
    nodes.iter().map(|n| ((n.capacity as u128 * 16 + max as u128 / 2) / max as u128).max(1) as u64).collect()
}

/// The owner of an object for the node `me`. A map without active nodes (a node that has not entered its
/// cluster yet) leaves everything local.
pub fn owner(map: &ClusterMap, me: &str, bck: &Bck, key: &str) -> Owner {
    // The common case of one node costs no hashing on the cache-hit path.
    if map.smap.nodes.is_empty() || (map.smap.nodes.len() == 1 && map.smap.nodes.contains_key(me)) {
        return Owner::Local;
    }
    match ranked(map, bck, key).first() {
        Some(n) if n.id != me => Owner::Remote((*n).clone()),
        _ => Owner::Local,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trove_cluster::NodeState;

    fn map(ids: &[(&str, u64)]) -> ClusterMap {
        let mut m = ClusterMap::default();
        for (i, (id, cap)) in ids.iter().enumerate() {
            let n = NodeInfo {
                id: (*id).into(),
                raft_id: i as u64,
                url: format!("http://{id}"),
                state: NodeState::Active,
                capacity: *cap,
            };
            m.smap.nodes.insert((*id).into(), n);
        }
        m
    }

    #[test]
    fn a_single_node_owns_everything() {
        let m = map(&[("node-a", 100)]);
        for i in 0..100 {
            assert_eq!(owner(&m, "node-a", &Bck::ais("b"), &format!("k{i}")), Owner::Local);
        }
        assert_eq!(owner(&ClusterMap::default(), "x", &Bck::ais("b"), "k"), Owner::Local);
    }

    #[test]
    fn nodes_of_different_sizes_own_in_proportion() {
        let m = map(&[("small", 1 << 40), ("large", 2 << 40), ("other", 2 << 40)]);
        let mut owned = std::collections::HashMap::new();
        for i in 0..10_000 {
            let first = ranked(&m, &Bck::ais("b"), &format!("k{i}"))[0].id.clone();
            *owned.entry(first).or_insert(0) += 1;
        }
        // Shares 1:2:2 of 10,000: 2,000 and 4,000 each, within a few percent.
        assert!((1_800..2_200).contains(&owned["small"]), "{owned:?}");
        assert!((3_800..4_200).contains(&owned["large"]), "{owned:?}");
    }

    #[test]
    fn other_nodes_own_their_share_and_inactive_nodes_none() {
        let mut m = map(&[("a", 100), ("b", 99), ("c", 101)]);
        let remote = (0..300).filter(|i| owner(&m, "a", &Bck::ais("b"), &format!("k{i}")) != Owner::Local).count();
        assert!((150..250).contains(&remote), "{remote}");
        m.smap.nodes.get_mut("b").unwrap().state = NodeState::Maintenance;
        m.smap.nodes.get_mut("c").unwrap().state = NodeState::Leaving;
        assert!((0..100).all(|i| owner(&m, "a", &Bck::ais("b"), &format!("k{i}")) == Owner::Local));
    }
}
