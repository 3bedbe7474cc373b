//! The routing seam of DESIGN §8: which node owns an object.
//!
//! Ownership is AIS's HRW over the live nodes, from the same object digest that picks the mountpath. Until
//! membership (gossip) and in-cluster forwarding exist, the node list is this node alone, so every object is
//! local; the data path already asks here, so adding nodes changes this module, not the handlers.

use trove_namespace::hrw::{self, Member};
use trove_namespace::Bck;

#[derive(Debug)]
pub struct Cluster {
    nodes: Vec<Member>,
    local: usize,
}

/// Where a request for an object must be served.
#[derive(Debug, PartialEq, Eq)]
pub enum Owner<'a> {
    Local,
    Remote(&'a Member),
}

impl Cluster {
    /// A cluster of one: this node.
    pub fn single(node_id: &str) -> Cluster {
        Cluster { nodes: vec![Member::new(node_id)], local: 0 }
    }

    pub fn owner(&self, bck: &Bck, key: &str) -> Owner<'_> {
        let ns = hrw::ns_uname(&bck.ns.uuid, &bck.ns.name);
        let digest = hrw::object_digest(bck.provider.as_str(), &ns, &bck.name, key);
        match hrw::owner(&self.nodes, digest) {
            Some(i) if i != self.local => Owner::Remote(&self.nodes[i]),
            _ => Owner::Local,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_node_owns_everything() {
        let c = Cluster::single("node-a");
        for i in 0..100 {
            assert_eq!(c.owner(&Bck::ais("b"), &format!("k{i}")), Owner::Local);
        }
    }

    #[test]
    fn other_nodes_own_their_share() {
        let c = Cluster { nodes: vec![Member::new("a"), Member::new("b"), Member::new("c")], local: 0 };
        let remote = (0..300).filter(|i| c.owner(&Bck::ais("b"), &format!("k{i}")) != Owner::Local).count();
        assert!((150..250).contains(&remote), "{remote}");
    }
}
