//! Highest-random-weight (rendezvous) placement, the same function AIStore uses (`core/meta/hrw.go`).
//!
//! `uname = provider/ns-uname/bucket/object`, `digest = xxh64(uname, MLCG32)`; each member (node or mountpath)
//! has `xxh64(id, MLCG32)`; the owner is the member with the highest `xoshiro256_hash(member ^ digest)`. The same
//! digest drives both levels (node, then mountpath), and an object's home is stable while the member set does
//! not change: removing a member moves only that member's objects.

use xxhash_rust::xxh64::xxh64;

/// AIS's seed for every digest (`cos.MLCG32`).
const MLCG32: u64 = 1_103_515_245;

/// A placement target (a node or a mountpath) with its precomputed digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: String,
    digest: u64,
}

impl Member {
    pub fn new(id: impl Into<String>) -> Self {
        let id = id.into();
        let digest = xxh64(id.as_bytes(), MLCG32);
        Member { id, digest }
    }

    pub fn digest(&self) -> u64 {
        self.digest
    }
}

/// AIS's namespace "uname": `@uuid#name`, `@#` for the global namespace.
pub fn ns_uname(uuid: &str, name: &str) -> String {
    format!("@{uuid}#{name}")
}

/// The digest of an object, computed once per request and reused for node and mountpath choice.
pub fn object_digest(provider: &str, ns_uname: &str, bucket: &str, object: &str) -> u64 {
    let mut u = String::with_capacity(provider.len() + ns_uname.len() + bucket.len() + object.len() + 3);
    u.push_str(provider);
    u.push('/');
    u.push_str(ns_uname);
    u.push('/');
    u.push_str(bucket);
    u.push('/');
    u.push_str(object);
    xxh64(u.as_bytes(), MLCG32)
}

/// AIS's `xoshiro256.Hash`: a splitmix-style finalizer.
fn xoshiro256_hash(mut z: u64) -> u64 {
    const A: u64 = 0x9e37_79b9_7f4a_7c15;
    const B: u64 = 0xbf58_476d_1ce4_e5b9;
    const C: u64 = 0x94d0_49bb_1331_11eb;
    z = z.wrapping_add(A);
    z = (z ^ (z >> 30)).wrapping_mul(B);
    z = (z ^ (z >> 27)).wrapping_mul(C);
    z = (z ^ (z >> 31)).wrapping_add(A);
    z = (z ^ (z >> 30)).wrapping_mul(B);
    z = (z ^ (z >> 27)).wrapping_mul(C);
    z = (z ^ (z >> 31)).wrapping_mul(5);
    z.rotate_left(7).wrapping_mul(9)
}

/// Index of the member with the highest score for `digest`, or `None` when there are no members.
/// Ties go to the later member, as in AIS (`>=`).
pub fn owner(members: &[Member], digest: u64) -> Option<usize> {
    let mut best: Option<(usize, u64)> = None;
    for (i, m) in members.iter().enumerate() {
        let score = xoshiro256_hash(m.digest ^ digest);
        if best.is_none_or(|(_, b)| score >= b) {
            best = Some((i, score));
        }
    }
    best.map(|(i, _)| i)
}

/// Members in HRW order for `digest`, owner first. With `weights` that differ (capacity-weighted placement),
/// each member's score is `weight / -ln(u)` for its uniform hash `u`, so a member of twice the weight owns
/// about twice the share; with equal weights the order is AIS's unweighted one.
pub fn ranked(members: &[Member], weights: &[u64], digest: u64) -> Vec<usize> {
    let weighted = weights.len() == members.len() && weights.windows(2).any(|w| w[0] != w[1]);
    let mut order: Vec<(usize, f64, u64)> = members
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let h = xoshiro256_hash(m.digest ^ digest);
            let score = if weighted {
                // u in (0, 1): never 0, so -ln(u) is finite and positive.
                let u = (h >> 11) as f64 / (1u64 << 53) as f64 + f64::EPSILON;
                weights[i].max(1) as f64 / -u.ln()
            } else {
                0.0
            };
            (i, score, h)
        })
        .collect();
    // Highest first; among equal hashes the later member wins, as in `owner`.
    order.sort_by(|a, b| b.1.total_cmp(&a.1).then(b.2.cmp(&a.2)).then(b.0.cmp(&a.0)));
    order.into_iter().map(|(i, _, _)| i).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranking_starts_with_the_owner_and_weights_shift_shares() {
        let ms = members(4);
        for k in 0..200u64 {
            let d = object_digest("ais", "@#", "b", &format!("k{k}"));
            let r = ranked(&ms, &[7, 7, 7, 7], d);
            assert_eq!(Some(r[0]), owner(&ms, d));
            assert_eq!(r.len(), 4);
        }
        let heavy = (0..4000u64)
            .filter(|k| ranked(&ms, &[3, 1, 1, 1], object_digest("ais", "@#", "b", &format!("k{k}")))[0] == 0)
            .count();
        // Weight 3 of 6: about half of the objects.
        assert!((1700..2300).contains(&heavy), "{heavy}");
    }

    fn d(obj: &str) -> u64 {
        object_digest("ais", &ns_uname("", ""), "bck", obj)
    }

    fn members(n: usize) -> Vec<Member> {
        (0..n).map(|i| Member::new(format!("/mnt/disk{i}"))).collect()
    }

    #[test]
    fn deterministic_and_total() {
        let ms = members(4);
        assert_eq!(owner(&[], 1), None);
        for i in 0..100 {
            let k = format!("obj-{i}");
            assert_eq!(owner(&ms, d(&k)), owner(&ms, d(&k)));
        }
    }

    #[test]
    fn spreads_evenly() {
        let ms = members(4);
        let mut counts = [0usize; 4];
        for i in 0..8000 {
            counts[owner(&ms, d(&format!("shard-{i:05}.tar"))).unwrap()] += 1;
        }
        for c in counts {
            assert!((1600..2400).contains(&c), "{counts:?}");
        }
    }

    #[test]
    fn removing_a_member_moves_only_its_objects() {
        let ms = members(5);
        let fewer: Vec<Member> = ms.iter().filter(|m| m.id != "/mnt/disk2").cloned().collect();
        for i in 0..2000 {
            let k = format!("k{i}");
            let before = &ms[owner(&ms, d(&k)).unwrap()].id;
            let after = &fewer[owner(&fewer, d(&k)).unwrap()].id;
            if before != "/mnt/disk2" {
                assert_eq!(before, after, "{k} moved although its owner stayed");
            }
        }
    }

    #[test]
    fn stable_values() {
        // Pin the hash so an accidental change of placement (which would orphan data on disk) fails loudly.
        let ms = members(3);
        let picks: Vec<usize> = (0..8).map(|i| owner(&ms, d(&format!("o{i}"))).unwrap()).collect();
        assert_eq!(picks, PINNED.to_vec());
    }

    const PINNED: [usize; 8] = [2, 0, 2, 0, 0, 2, 1, 0];
}
